//! The two ways into a cgroup v1 group, timed: a process's pid written into `cgroup.procs` from
//! outside (the kernel then waits for an RCU grace period) and the process writing "0" into
//! `tasks` itself (it does not). A forked child is the process moved; it reports its own time
//! through a pipe, using only async-signal-safe calls.

use crate::support::Support;
use crate::{Cgroup, Limits};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::stats::median;

/// How long a process takes to get into a fresh group, `repeats` times each way, with a pause
/// before each try so the kernel's rcu_sync has gone idle (as it has between two containers):
/// its pid written into `cgroup.procs` from outside (the kernel takes the global
/// `cgroup_threadgroup_rwsem` for writing, whose `rcu_sync_enter` waits for an RCU grace
/// period), and, on cgroup v1, the process writing "0" into `tasks` itself (the current
/// thread moves without that lock). Empty where this machine gives no pids group.
pub fn join_costs(repeats: usize) -> Result<Vec<(String, f64)>> {
    virtlab_core::error::check_range("repeats", repeats, 1, 100)?;
    let wanted = Limits {
        pids: Some(64),
        ..Limits::default()
    };
    let support = Support::detect();
    if support.check(&wanted).is_err() {
        return Ok(Vec::new());
    }
    let group = Cgroup::create(&support, "join-cost", &wanted)?;
    let Some(dir) = group.dirs().first().cloned() else {
        return Ok(Vec::new());
    };
    let v1 = dir.join("tasks").exists();
    let mut by_pid = Vec::new();
    let mut by_itself = Vec::new();
    for _ in 0..repeats {
        // A grace period or two is a few ms; 50 ms leaves rcu_sync idle again.
        std::thread::sleep(std::time::Duration::from_millis(50));
        by_pid.extend(join_once(&dir.join("cgroup.procs"), false)?);
        if v1 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            by_itself.extend(join_once(&dir.join("tasks"), true)?);
        }
    }
    let mut rows = vec![(
        "its pid written into cgroup.procs from outside".to_string(),
        median(&mut by_pid),
    )];
    if !by_itself.is_empty() {
        rows.push((
            "the process writes \"0\" into tasks itself".to_string(),
            median(&mut by_itself),
        ));
    }
    Ok(rows)
}

/// One child moved into the group through `file`, by itself (`"0"`) or by its pid written
/// here; ms for the write, `None` if the child could not be started or moved.
fn join_once(file: &std::path::Path, itself: bool) -> Result<Option<f64>> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(file.as_os_str().as_bytes())
        .map_err(|_| Error::bug("a cgroup path with a NUL byte"))?;
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into a valid array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Error::os(
            "creating a pipe",
            std::io::Error::last_os_error(),
        ));
    }
    let [read_end, write_end] = fds;
    // SAFETY: the child calls only async-signal-safe functions (clock_gettime, open, write,
    // close, pause) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::close(read_end);
            let mut took = 0.0f64;
            if itself {
                let started = now();
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
                let moved = fd >= 0 && libc::write(fd, c"0".as_ptr().cast(), 1) == 1;
                took = if moved { now() - started } else { -1.0 };
            }
            libc::write(write_end, (&raw const took).cast(), 8);
            // Alive while its pid is written; the parent kills it.
            loop {
                libc::pause();
            }
        }
    }
    // SAFETY: closes our copy of the child's end.
    unsafe { libc::close(write_end) };
    if pid < 0 {
        // SAFETY: closes the descriptor we own.
        unsafe { libc::close(read_end) };
        return Ok(None);
    }
    let mut took = -1.0f64;
    // SAFETY: reads 8 bytes into a valid f64.
    let got = unsafe { libc::read(read_end, (&raw mut took).cast(), 8) };
    if got == 8 && !itself {
        let started = now();
        took = match std::fs::write(file, pid.to_string()) {
            Ok(()) => now() - started,
            Err(_) => -1.0,
        };
    }
    // SAFETY: ends and reaps the child we forked; closes our descriptor.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
        libc::close(read_end);
    }
    Ok((got == 8 && took >= 0.0).then_some(took))
}

/// CLOCK_MONOTONIC in ms (clock_gettime is async-signal-safe, unlike `Instant` in theory).
fn now() -> f64 {
    virtlab_core::timeline::now_ns() as f64 / 1e6
}
