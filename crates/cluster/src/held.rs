//! Clusters that outlive the command that made them (`virtlab cluster up`): a keeper process
//! ([`serve`], started detached by [`hold`]) owns the cluster until [`down`] asks it to stop
//! (SIGTERM). [`status`] lists every live cluster from the run folders. Should the keeper be
//! SIGKILLed, its holders clean up by themselves and the next `up` sweeps its folder.

use crate::cluster::{Cluster, ClusterState};
use crate::rundir;
use crate::slurm::Slurm;
use crate::spec::ClusterSpec;
use crate::{Error, ErrorKind, Result};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `down` waits for the keeper to remove its cluster.
const DOWN_PATIENCE: Duration = Duration::from_secs(20);

/// Refuses a name that is empty, long, or holds more than letters, digits and dashes.
pub fn check_name(name: &str) -> Result<()> {
    let fine = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !fine {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!("{name:?} cannot name a cluster"),
            "use 1 to 32 lowercase letters, digits and dashes, e.g. lab",
        ));
    }
    Ok(())
}

/// Every live cluster (its owner still runs), held or not.
pub fn status() -> Vec<ClusterState> {
    rundir::folders()
        .iter()
        .filter(|d| rundir::owner_of(d).is_some_and(|p| rundir::alive(p as i32)))
        .filter_map(|d| std::fs::read_to_string(d.join(rundir::STATE)).ok())
        .filter_map(|text| serde_json::from_str(&text).ok())
        .collect()
}

/// The live cluster held under `name`.
pub fn find(name: &str) -> Result<ClusterState> {
    status()
        .into_iter()
        .find(|s| s.name.as_deref() == Some(name))
        .ok_or_else(|| {
            Error::of(ErrorKind::Invalid,
                format!("no cluster named {name} is up"),
                "list them with `virtlab cluster status`, or make it with `virtlab cluster up --name <name>`",
            )
        })
}

/// Runs in the keeper: makes the cluster (and starts Slurm on it when `with_slurm`), prints its
/// state as one JSON line on stdout (or the error, as JSON, on stdout too), then holds it until
/// SIGTERM, SIGINT or SIGHUP.
pub fn serve(spec: ClusterSpec, name: &str, with_slurm: bool) -> Result<()> {
    let made = check_name(name).and_then(|()| {
        if find(name).is_ok() {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("a cluster named {name} is up already"),
                format!(
                    "take it down first (`virtlab cluster down {name}`), or choose another name"
                ),
            ));
        }
        // Blocked before any thread exists, so sigwait below receives them.
        block_stop_signals();
        let cluster = Cluster::up_named(spec, Some(name))?;
        // A Slurm that fails to start drops the cluster with it.
        let slurm = with_slurm.then(|| Slurm::start(&cluster)).transpose()?;
        Ok((cluster, slurm))
    });
    let line = match &made {
        Ok((cluster, _)) => serde_json::to_string(&Ok::<_, Error>(cluster.state())),
        Err(e) => serde_json::to_string(&Err::<ClusterState, _>(e)),
    };
    println!("{}", line.unwrap_or_default());
    let (cluster, slurm) = made?;
    wait_for_stop_signal();
    drop(slurm);
    drop(cluster);
    Ok(())
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset fill a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

fn block_stop_signals() {
    let set = stop_signals();
    // SAFETY: blocks signals in this thread (and the threads it starts) with a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

fn wait_for_stop_signal() {
    let set = stop_signals();
    let mut got = 0;
    // SAFETY: waits for one of the blocked signals, writing its number to a local.
    unsafe { libc::sigwait(&set, &mut got) };
}

/// Starts `keeper` (a command that runs [`serve`], e.g. `virtlab cluster-keeper`) detached, with
/// `--name NAME --nodes N --type TYPE [--slurm]` added, in its own session so a closed terminal
/// does not end it, and returns the held cluster's state once it is up (with Slurm running on it
/// when `with_slurm`), or the keeper's error.
pub fn hold(
    mut keeper: Command,
    spec: ClusterSpec,
    name: &str,
    with_slurm: bool,
) -> Result<ClusterState> {
    check_name(name)?;
    spec.check()?;
    let shown = format!("{keeper:?}").replace('"', "");
    keeper
        .args(["--name", name, "--nodes"])
        .arg(spec.nodes.to_string())
        .args(["--type", spec.instance_type.name()])
        .args(with_slurm.then_some("--slurm"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and changes only the child.
    unsafe {
        keeper.pre_exec(|| {
            libc::setsid();
            Ok(())
        })
    };
    let mut child = keeper
        .spawn()
        .map_err(|e| Error::os(format!("starting the cluster keeper {shown}"), e))?;
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout was piped");
    let _ = BufReader::new(stdout).read_line(&mut line);
    let answer: std::result::Result<ClusterState, Error> =
        serde_json::from_str(&line).map_err(|_| {
            Error::new(
                format!("the cluster keeper {shown} ended without a word"),
                format!("run `{shown} --name {name}` by hand to see why"),
            )
        })?;
    if answer.is_err() {
        let _ = child.wait();
    }
    // A held keeper is not waited for: it lives on after this process; init reaps it.
    answer
}

/// Asks the keeper of cluster `name` to take it down; returns once everything is removed,
/// with how long that took in milliseconds.
pub fn down(name: &str) -> Result<f64> {
    let state = find(name)?;
    let started = Instant::now();
    // SAFETY: kill only sends a signal, to the live owner read from the run folder.
    unsafe { libc::kill(state.owner as libc::pid_t, libc::SIGTERM) };
    while state.dir.exists() {
        if started.elapsed() > DOWN_PATIENCE {
            return Err(Error::new(
                format!("cluster {name} is still there after {DOWN_PATIENCE:?}"),
                format!(
                    "kill its keeper (pid {}) with SIGKILL; its holders clean up and the next up sweeps the rest",
                    state.owner
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("lab-2").is_ok());
        for bad in ["", "Lab", "a b", "x/y", &"a".repeat(33)] {
            let e = check_name(bad).unwrap_err();
            assert!(e.fix().contains("lowercase"), "{e}");
        }
    }
}
