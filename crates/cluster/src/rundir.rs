//! The run folder of every cluster, `/run/virtlab-cluster/<owner pid>-<subnet octet>/`
//! (`VIRTLAB_CLUSTER_RUN` replaces the root): its state, the launcher agent, the hostfile and
//! the pids of every process it started (holders, daemons), each with its start time so a
//! reused pid is never killed. A folder whose owner is dead is a stale cluster: [`sweep`],
//! run at every `up`, kills what it recorded, removes its cgroups and the folder.

use crate::cgroup::Cgroup;
use crate::{Error, Result};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The file of recorded processes: one "pid start-time" line each.
pub const PROCS: &str = "procs";
/// The file of the cluster's cgroup folders, one a line.
pub const CGROUPS: &str = "cgroups";
/// The cluster's state, as JSON.
pub const STATE: &str = "cluster.json";

/// The folder all clusters' run folders go under.
pub fn root() -> PathBuf {
    std::env::var_os("VIRTLAB_CLUSTER_RUN")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/run/virtlab-cluster"), PathBuf::from)
}

/// A held lock on the run root (flock), so two `up`s never pick the same subnet.
pub struct Lock {
    /// Open for as long as the lock is held: closing it releases the flock.
    _file: File,
}

/// Takes the run root's lock, making the root if needed.
pub fn lock() -> Result<Lock> {
    let root = root();
    std::fs::create_dir_all(&root)
        .map_err(|e| Error::io(format!("creating {}", root.display()), e))?;
    let path = root.join(".lock");
    let file =
        File::create(&path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // SAFETY: flock on a descriptor we own; blocks until the lock is ours.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(Error::os(
            "locking the cluster run folder",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(Lock { _file: file })
}

/// A process's start time (clock ticks after boot, `/proc/<pid>/stat` field 22), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces, closed by the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Appends `line` to the run folder's file `name`.
pub fn append(dir: &Path, name: &str, line: &str) -> Result<()> {
    use std::io::Write;
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Records process `pid` as the cluster's, to be killed by a sweep should the owner die.
pub fn record_process(dir: &Path, pid: i32) -> Result<()> {
    let start = start_time(pid).unwrap_or(0);
    append(dir, PROCS, &format!("{pid} {start}"))
}

/// The recorded processes that still run (same pid, same start time).
pub fn live_processes(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join(PROCS))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (pid, start) = l.split_once(' ')?;
            let pid: i32 = pid.parse().ok()?;
            (start_time(pid)? == start.parse::<u64>().ok()?).then_some(pid)
        })
        .collect()
}

/// The owner pid a run folder's name starts with.
pub fn owner_of(dir: &Path) -> Option<u32> {
    dir.file_name()?.to_str()?.split('-').next()?.parse().ok()
}

/// Every cluster run folder under the root.
pub fn folders() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root()) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && owner_of(p).is_some())
        .collect();
    dirs.sort();
    dirs
}

/// Kills what a run folder recorded, removes its cgroups, then the folder.
pub fn remove(dir: &Path) {
    let procs = live_processes(dir);
    for &pid in &procs {
        // SAFETY: kill only sends a signal, to a pid whose start time matched our record.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for _ in 0..500 {
        if procs
            .iter()
            .all(|&p| start_time(p).is_none_or(|_| is_zombie(p)))
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let groups = std::fs::read_to_string(dir.join(CGROUPS)).unwrap_or_default();
    for group in groups.lines().filter(|l| !l.is_empty()) {
        // A folder that never came to be is no error here.
        let _ = Cgroup::open(vec![PathBuf::from(group)]).remove();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Whether process `pid` runs (exists and is not a zombie waiting to be reaped).
pub fn alive(pid: i32) -> bool {
    !is_zombie(pid)
}

/// Whether `pid` has exited (gone, or waiting only to be reaped).
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

/// Removes the run folders of dead owners (their holders may be gone already).
pub fn sweep() {
    for dir in folders() {
        if owner_of(&dir).is_some_and(|pid| !alive(pid as i32)) {
            remove(&dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_times_tell_a_live_pid_and_owners_parse() {
        let me = std::process::id() as i32;
        assert!(start_time(me).is_some());
        assert_eq!(start_time(-5), None);
        assert_eq!(
            owner_of(Path::new("/run/virtlab-cluster/4242-7")),
            Some(4242)
        );
        assert_eq!(owner_of(Path::new("/run/virtlab-cluster/.lock")), None);
    }
}
