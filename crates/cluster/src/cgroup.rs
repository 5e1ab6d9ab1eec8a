//! A node's cgroup: its instance type's CPU and memory limits, on cgroup v2 (one folder) or v1
//! (a folder in the cpu and in the memory hierarchy). Groups are named
//! `virtlab-<owner pid>-<name>` like the lab's containers' groups, so whichever run comes next
//! can tell a dead owner's group from a live one and remove it.

use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The CFS period the CPU quota is a share of.
const CPU_PERIOD_US: u64 = 100_000;
/// How long removal waits for the processes inside to go.
const REMOVE_PATIENCE: Duration = Duration::from_secs(5);

/// One group (a folder per hierarchy); [`Cgroup::remove`] kills what is inside and removes it.
#[derive(Debug, Default)]
pub struct Cgroup {
    dirs: Vec<PathBuf>,
}

/// The cgroup filesystems' root (`VIRTLAB_CGROUP_ROOT` replaces it, as for the lab's containers).
fn cgroup_root() -> PathBuf {
    std::env::var_os("VIRTLAB_CGROUP_ROOT")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/sys/fs/cgroup"), PathBuf::from)
}

/// Our own group in the hierarchy holding `controller` (v1), or the v2 one (empty controller
/// list), from /proc/self/cgroup.
fn own_path(controller: Option<&str>) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            let matches = match controller {
                None => list.is_empty(),
                Some(c) => list.split(',').any(|l| l == c),
            };
            matches.then(|| path.to_string())
        })
        .next()
        .unwrap_or_else(|| "/".into())
}

/// `mount` + `path`, or the mount itself where that path is not visible (a cgroup namespace,
/// or a container showing its own group at the top).
fn inside(mount: &Path, path: &str) -> PathBuf {
    let dir = mount.join(path.trim_start_matches('/'));
    if dir.is_dir() {
        dir
    } else {
        mount.to_path_buf()
    }
}

/// The folders groups go under: the v2 one, or the v1 cpu and memory ones; an error naming the
/// missing controller and its fix.
pub fn bases() -> Result<Vec<PathBuf>> {
    let root = cgroup_root();
    if root.join("cgroup.controllers").is_file() {
        let base = inside(&root, &own_path(None));
        let listed = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
        for wanted in ["cpu", "memory"] {
            if !listed.split_whitespace().any(|c| c == wanted) {
                return Err(Error::unavailable(
                    format!(
                        "cgroup v2 does not hand the {wanted} controller to {}",
                        base.display()
                    ),
                    "run as root on a machine whose cgroup v2 root lists cpu and memory (or in a delegated systemd scope)",
                ));
            }
        }
        return Ok(vec![base]);
    }
    ["cpu", "memory"]
        .into_iter()
        .map(|c| {
            let mount = root.join(c);
            if !mount.join("cgroup.procs").is_file() {
                return Err(Error::unavailable(
                    format!("no cgroup filesystem with the {c} controller under {}", root.display()),
                    "mount cgroup2 at /sys/fs/cgroup (most distributions do), or run on a machine with cgroups",
                ));
            }
            Ok(inside(&mount, &own_path(Some(c))))
        })
        .collect()
}

impl Cgroup {
    /// Makes `virtlab-<our pid>-<name>` with `cpus` and `memory` limits; stale groups of dead
    /// owners go first. What was made is removed again when a step fails.
    pub fn create(name: &str, cpus: f64, memory: u64) -> Result<Cgroup> {
        let bases = bases()?;
        let leaf = format!("virtlab-{}-{name}", std::process::id());
        let mut group = Cgroup::default();
        for base in &bases {
            sweep_stale(base);
            if base.join("cgroup.subtree_control").is_file() {
                // v2: a child gets a controller only when its parent passes it down; a failure
                // shows below as a missing limit file.
                let _ = std::fs::write(base.join("cgroup.subtree_control"), "+cpu +memory");
            }
            let dir = base.join(&leaf);
            std::fs::create_dir(&dir)
                .map_err(|e| Error::io(format!("creating the cgroup {}", dir.display()), e))?;
            group.dirs.push(dir);
        }
        let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
        let limits = [
            ("cpu.max", format!("{quota} {CPU_PERIOD_US}")),
            ("cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
            ("cpu.cfs_quota_us", quota.to_string()),
            ("memory.max", memory.to_string()),
            ("memory.limit_in_bytes", memory.to_string()),
        ];
        let mut written = 0;
        for (file, value) in limits {
            if let Some(path) = group.find(file) {
                std::fs::write(&path, &value)
                    .map_err(|e| Error::io(format!("writing {value} to {}", path.display()), e))?;
                written += 1;
            }
        }
        if written < 2 {
            return Err(Error::unavailable(
                format!("the cgroup {leaf} has no CPU or no memory limit file"),
                "run as root with the cpu and memory controllers enabled",
            ));
        }
        Ok(group)
    }

    /// A group known by its folders.
    pub fn from_dirs(dirs: Vec<PathBuf>) -> Cgroup {
        Cgroup { dirs }
    }

    /// The group's folders (one on v2, one per hierarchy on v1).
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    fn find(&self, file: &str) -> Option<PathBuf> {
        self.dirs.iter().map(|d| d.join(file)).find(|p| p.exists())
    }

    /// Host pids of the processes inside.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .dirs
            .iter()
            .flat_map(|d| {
                let text = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                text.lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<u32>>()
            })
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills what is inside and removes every folder; safe to call again.
    pub fn remove(&mut self) -> Result<()> {
        let deadline = Instant::now() + REMOVE_PATIENCE;
        loop {
            self.dirs.retain(|d| d.exists());
            if self.dirs.is_empty() {
                return Ok(());
            }
            for pid in self.pids() {
                // SAFETY: kill only sends a signal; the pid was read from our own group.
                unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            }
            for dir in &self.dirs {
                let _ = std::fs::remove_dir(dir);
            }
            if Instant::now() > deadline {
                return Err(Error::new(
                    format!(
                        "could not remove the cgroup {}: processes are still inside",
                        self.dirs[0].display()
                    ),
                    "a process stuck in the kernel keeps it; the next cluster up removes it once empty",
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}

/// Whether `virtlab-<pid>-…` names a process that no longer exists.
pub fn owner_is_gone(name: &str) -> bool {
    name.strip_prefix("virtlab-")
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| !crate::rundir::alive(pid as i32))
}

/// Removes the groups under `base` whose owner is dead.
fn sweep_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        if owner_is_gone(&entry.file_name().to_string_lossy()) {
            let _ = Cgroup {
                dirs: vec![entry.path()],
            }
            .remove();
        }
    }
}

/// Every cluster group (any owner) under the bases: what a leftover check looks for.
pub fn cluster_groups(tag: &str) -> Vec<PathBuf> {
    bases()
        .unwrap_or_default()
        .iter()
        .filter_map(|b| std::fs::read_dir(b).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(tag))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_owners_are_told_from_live_ones() {
        assert!(!owner_is_gone(&format!(
            "virtlab-{}-node-1",
            std::process::id()
        )));
        // Pids stop well below this on Linux (pid_max is at most 2^22).
        assert!(owner_is_gone("virtlab-999999999-node-1"));
        assert!(!owner_is_gone("someone-else-1"));
    }
}
