//! What each namespace kind costs alone: fork + unshare(kind) + _exit + waitpid, timed round-robin
//! against a bare fork, so the difference is the namespace's own set-up and teardown.

use crate::support::NAMESPACES;
use std::time::Instant;
use virtlab_core::stats::median;

/// fork + unshare + _exit + waitpid, timed here; "none" is the same without unshare. A user
/// namespace is added to the others when this user is not root (they need it then).
pub(super) fn namespaces_alone(repeats: usize) -> Vec<(String, f64)> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut kinds: Vec<(String, libc::c_int)> = vec![("none".into(), 0)];
    for (name, flag) in NAMESPACES {
        let flag = if root || flag == libc::CLONE_NEWUSER {
            flag
        } else {
            flag | libc::CLONE_NEWUSER
        };
        kinds.push((name.into(), flag));
    }
    // Round-robin, after one warm-up round: measured one kind after another, the first (none)
    // paid for the warm-up and every drift in the machine's load, and came out dearer than
    // namespaces that do more.
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(repeats); kinds.len()];
    for round in 0..=repeats {
        for (i, (_, flag)) in kinds.iter().enumerate() {
            if let Some(ms) = fork_unshare_ms(*flag)
                && round > 0
            {
                samples[i].push(ms);
            }
        }
    }
    kinds
        .into_iter()
        .zip(samples)
        .map(|((name, _), mut ms)| (name, median(&mut ms)))
        .collect()
}

fn fork_unshare_ms(flag: libc::c_int) -> Option<f64> {
    let started = Instant::now();
    // SAFETY: the child calls only async-signal-safe functions (unshare, _exit).
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: unshare changes only this short-lived child; _exit ends it at once.
        unsafe {
            libc::_exit(if flag == 0 || libc::unshare(flag) == 0 {
                0
            } else {
                1
            })
        };
    }
    if pid < 0 {
        return None;
    }
    let mut status = 0;
    // SAFETY: waits for the child just forked.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    // Tearing a namespace down is part of its cost, and happens before the wait returns.
    (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0)
        .then(|| started.elapsed().as_secs_f64() * 1e3)
}
