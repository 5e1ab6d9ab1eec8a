//! Slurm's and munge's daemons, each started inside a namespace by `nsenter` (directly, or
//! through the cluster's agent, which also puts it in its node's cgroup). With `--pid`, nsenter
//! forks: the launcher stays in the host's pid namespace as our child, the daemon is its only
//! child. Both are recorded in the run folder (a stale sweep kills them); stopping kills the
//! daemon, the processes it started (a slurmd's job steps), and reaps the launcher.

use crate::rundir;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use virtlab_core::procfs;

/// How long a launcher has to fork its daemon.
const FORK_PATIENCE: Duration = Duration::from_secs(5);

/// A running daemon.
#[derive(Debug)]
pub struct Daemon {
    /// What it is ("munged", "slurmctld", "slurmd on node-2").
    pub name: String,
    /// Its host pid.
    pub pid: i32,
    /// Its log (the launcher's standard output and error; the daemon's own log is beside it).
    pub log: PathBuf,
    launcher: Option<Child>,
    /// The pid namespace (`/proc/<pid>/ns/pid` link) whose `slurmstepd`s are this daemon's:
    /// slurmd starts each job step as a daemon of its own, reparented to the node's pid 1.
    steps_in: Option<String>,
}

impl Daemon {
    /// Starts `launcher` (an nsenter with `--pid`, or the agent that execs one), its output in
    /// `log`, and records it and its daemon in `run_dir`.
    pub fn spawn(name: &str, mut launcher: Command, run_dir: &Path, log: &Path) -> Result<Daemon> {
        let out = std::fs::File::create(log)
            .map_err(|e| Error::io(format!("creating {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| Error::io(format!("opening {}", log.display()), e))?;
        let child = launcher
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::os(format!("starting {name} (nsenter, from util-linux)"), e))?;
        let launcher_pid = child.id() as i32;
        let mut daemon = Daemon {
            name: name.to_string(),
            pid: 0,
            log: log.to_path_buf(),
            launcher: Some(child),
            steps_in: None,
        };
        rundir::record_process(run_dir, launcher_pid)?;
        let deadline = Instant::now() + FORK_PATIENCE;
        daemon.pid = loop {
            // The agent runs small helpers (sed, tr) before it becomes nsenter: only nsenter's
            // child is the daemon.
            let comm = std::fs::read_to_string(format!("/proc/{launcher_pid}/comm"));
            if comm.is_ok_and(|c| c.trim() == "nsenter")
                && let Some(&pid) = children(launcher_pid).first()
            {
                break pid;
            }
            if !rundir::alive(launcher_pid) || Instant::now() > deadline {
                return Err(Error::new(
                    format!("{name} did not start: {}", tail(log)),
                    "check that nsenter (util-linux) works here and that the node is still up",
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        rundir::record_process(run_dir, daemon.pid)?;
        Ok(daemon)
    }

    /// Marks the `slurmstepd`s of pid namespace `pid_namespace` as this daemon's, to be
    /// killed with it.
    pub fn owns_steps_in(&mut self, pid_namespace: String) {
        self.steps_in = Some(pid_namespace);
    }

    /// Whether the daemon still runs.
    pub fn alive(&self) -> bool {
        self.pid > 0 && rundir::alive(self.pid)
    }

    /// Kills the daemon and every process under it, and reaps the launcher.
    pub fn stop(&mut self) {
        let mut roots = Vec::new();
        if self.pid > 0 {
            roots.push(self.pid);
        }
        if let Some(ns) = &self.steps_in {
            roots.extend(named_in("slurmstepd", ns));
        }
        if !roots.is_empty() {
            kill_with_descendants(&roots);
        }
        if let Some(mut launcher) = self.launcher.take() {
            let _ = launcher.kill();
            let _ = launcher.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last lines of a log, for an error message.
pub fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(4).collect();
    if lines.is_empty() {
        return format!("{} is empty", log.display());
    }
    lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
}

/// The children of `pid` (its main thread's, which is the only one nsenter has).
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Every process's pid and parent pid, from /proc.
fn parents() -> Vec<(i32, i32)> {
    procfs::pids()
        .into_iter()
        .filter_map(|pid| Some((pid as i32, procfs::parent_of(pid)? as i32)))
        .collect()
}

/// The host pids of the processes called `comm` in pid namespace `pid_namespace`.
pub fn named_in(comm: &str, pid_namespace: &str) -> Vec<i32> {
    procfs::pids()
        .into_iter()
        .filter(|&pid| {
            procfs::pid_namespace_of(pid).is_some_and(|ns| ns == pid_namespace)
                && procfs::name_of(pid).is_some_and(|name| name == comm)
        })
        .map(|pid| pid as i32)
        .collect()
}

/// SIGKILLs `roots` and every descendant, children first found then all killed together (a
/// killed parent's children are reparented, so the tree is read before any kill).
pub fn kill_with_descendants(roots: &[i32]) {
    let table = parents();
    let mut doomed: Vec<i32> = roots.to_vec();
    let mut i = 0;
    while i < doomed.len() {
        let parent = doomed[i];
        doomed.extend(
            table
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    for &pid in &doomed {
        // SAFETY: kill only sends a signal, to a daemon we started or a process under it.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while doomed.iter().any(|&p| rundir::alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}
