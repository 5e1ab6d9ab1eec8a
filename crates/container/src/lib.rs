//! Chapter 7: containers built from the kernel's own parts — namespaces for what a worker can
//! see, a cgroup for what it may use — around the same `virtlab worker` the process executor
//! starts. A container is literally a process with extra options: [`Spec::command`] turns the
//! worker's command line into `virtlab contain … -- worker …`, whose small outside part (the
//! shim, [`init`]) sets up the namespaces in its child after exec, waits, forwards the exit
//! status and removes the cgroup on every exit path.
//!
//! [`kind`] makes containers one more kind of worker of the shared executor, keeping what each
//! container brings beyond a process ([`run`]). [`support`] says what this machine allows,
//! [`cgroup`] holds one group per container, [`probe`] compares what a container sees with
//! the host, [`limits`] watches quotas act, [`cost`] and [`runtimes`] measure what it costs beside
//! a process, crun and runc, and [`report`] sets it beside a process and chapter 6's VM on the
//! cost ladder.

#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cgroup;
pub mod cost;
mod handoff;
pub mod init;
pub mod kind;
pub mod limits;
pub mod probe;
pub mod report;
pub mod run;
pub mod runtimes;
pub mod support;
pub mod worker;

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::{Command, Stdio};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::units;

pub use cgroup::Cgroup;

/// The least memory limit a container may get: the worker's own resident set plus room for
/// the kernel's bookkeeping of its namespaces (a smaller limit only measures the OOM killer).
pub const MIN_MEMORY: u64 = 16 << 20;
/// The kernel's own ceiling for pids.max.
pub const MAX_PIDS: u64 = 4_194_304;
/// The CFS period quotas are expressed in (the kernel's default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// What a container may use; `None` leaves that resource unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// CPUs' worth of time per period, e.g. 0.5 = half of one CPU.
    pub cpu: Option<f64>,
    /// Memory in bytes (swap is turned off for the group where the kernel offers it).
    pub memory: Option<u64>,
    /// How many processes and threads may exist in it at once.
    pub pids: Option<u64>,
}

impl Limits {
    /// Checks every value against what makes sense here: a CPU share above zero and at most
    /// the CPUs this process may use, at least [`MIN_MEMORY`], 1 to [`MAX_PIDS`] pids.
    pub fn checked(self) -> Result<Limits> {
        if let Some(cpu) = self.cpu {
            let cpus = virtlab_core::machine::usable_cpus();
            if !(cpu.is_finite() && cpu > 0.0 && cpu <= cpus as f64) {
                return Err(Error::invalid(
                    "the CPU limit",
                    cpu,
                    format!(
                        "give a share above 0 and at most {cpus} (the CPUs this process may use), e.g. 0.5 for half of one CPU"
                    ),
                ));
            }
        }
        if let Some(memory) = self.memory
            && memory < MIN_MEMORY
        {
            return Err(Error::invalid(
                "the memory limit",
                units::bytes(memory),
                format!(
                    "give at least {} (what a worker needs to start), e.g. 64MiB",
                    units::bytes(MIN_MEMORY)
                ),
            ));
        }
        if let Some(pids) = self.pids {
            virtlab_core::error::check_range("the pids limit", pids, 1, MAX_PIDS)?;
        }
        Ok(self)
    }

    /// Reads the CLI's spellings: `--cpu 0.5`, `--memory 64MiB`, `--pids 64`.
    pub fn parse(cpu: Option<&str>, memory: Option<&str>, pids: Option<&str>) -> Result<Limits> {
        let cpu = cpu
            .map(|t| {
                t.trim().parse::<f64>().map_err(|_| {
                    Error::invalid(
                        "the CPU limit",
                        format!("{t:?}"),
                        "give a number of CPUs such as 0.5 or 1",
                    )
                })
            })
            .transpose()?;
        let memory = memory
            .map(|t| units::parse_bytes("the memory limit", t))
            .transpose()?;
        let pids = pids
            .map(|t| {
                t.trim().parse::<u64>().map_err(|_| {
                    Error::invalid(
                        "the pids limit",
                        format!("{t:?}"),
                        format!("give a whole number from 1 to {MAX_PIDS}, e.g. 64"),
                    )
                })
            })
            .transpose()?;
        Limits { cpu, memory, pids }.checked()
    }

    /// "0.5 CPU, 64.0 MiB, 64 pids" (or "no limits").
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(cpu) = self.cpu {
            parts.push(format!("{cpu} CPU"));
        }
        if let Some(m) = self.memory {
            parts.push(units::bytes(m));
        }
        if let Some(p) = self.pids {
            parts.push(format!("{p} pids"));
        }
        if parts.is_empty() {
            "no limits".into()
        } else {
            parts.join(", ")
        }
    }
}

/// One container: its name (also the cgroup's and, by default, the hostname) and its limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    /// Its name: the cgroup's name and the default hostname.
    pub name: String,
    /// The hostname it sees.
    pub hostname: String,
    /// What it may use.
    pub limits: Limits,
    /// The shim prints its set-up steps' times and how the container ended as data lines
    /// (what [`kind::Containers`] reads); without it the shim says only what failed, on stderr.
    pub report: bool,
}

impl Spec {
    /// A container named `name` (1-40 of a-z, 0-9 and '-', so it is a valid hostname and
    /// folder name) with hostname `name` and no limits.
    pub fn new(name: &str) -> Result<Spec> {
        let ok = !name.is_empty()
            && name.len() <= 40
            && !name.starts_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(Error::invalid(
                "a container name",
                format!("{name:?}"),
                "use 1 to 40 of a-z, 0-9 and '-', not starting with '-', e.g. \"container-1\"",
            ));
        }
        Ok(Spec {
            name: name.into(),
            hostname: name.into(),
            limits: Limits::default(),
            report: false,
        })
    }

    /// The same container with these limits (checked).
    pub fn with_limits(self, limits: Limits) -> Result<Spec> {
        Ok(Spec {
            limits: limits.checked()?,
            ..self
        })
    }

    /// Turns a worker command (`program worker_args…`) into the containerized one, which
    /// starts `program contain … -- worker_args…`, and starts making the container's cgroup
    /// on a thread of its own while the shim starts; the shim waits for the "go" (see
    /// `handoff`) before it clones pid 1. Made before the start instead, it took 0.25 ms of
    /// a ~4 ms start here. The namespaces are the shim's to make, after exec.
    /// A `--parent-pid` in the worker's arguments goes to the shim instead: pid 1 of a
    /// container has no parent it can see, and the shim is what watches ours.
    /// Once the command is started, [`Preparing::wait`]: its cgroup removes itself when dropped
    /// (the shim removes it too, when the worker ends); keep it until the process has been
    /// waited for. Stdin is null for the worker, as for every worker (a notebook kernel's stdin
    /// is its command pipe); the shim's is the socket it hears "go" on. `support` is what
    /// [`support::Support::detect`] found (asked once per set of containers: it costs some
    /// twenty system calls).
    pub fn command(
        &self,
        support: &support::Support,
        program: &Path,
        worker_args: &[String],
    ) -> Result<(Command, Preparing)> {
        support.check(&self.limits)?;
        let planned = cgroup::Planned::new(support, &self.name, &self.limits);
        let mut command = Command::new(program);
        command
            .arg("contain")
            .args(["--name", &self.name])
            .args(["--hostname", &self.hostname])
            .args(["--parent-pid", &std::process::id().to_string()]);
        if self.report {
            command.arg("--report");
        }
        let mut worker = Vec::new();
        let mut args = worker_args.iter();
        while let Some(arg) = args.next() {
            if arg == "--parent-pid" {
                args.next();
            } else {
                worker.push(arg.clone());
            }
        }
        let dirs = planned.dirs();
        for dir in &dirs {
            command.arg("--cgroup").arg(dir);
        }
        if support.user_namespaces.is_err() {
            // Only reached as root (check() refuses otherwise): namespaces without a user one.
            command.arg("--no-user-namespace");
        }
        let preparing = if dirs.is_empty() {
            command.stdin(Stdio::null());
            Preparing(None)
        } else {
            let (to_shim, shim_end) = std::os::unix::net::UnixStream::pair()
                .map_err(|e| Error::io("creating a container's start socket", e))?;
            command
                .arg("--prepared-on-stdin")
                .stdin(std::os::fd::OwnedFd::from(shim_end));
            Preparing(Some(prepare(planned, to_shim, &self.name)?))
        };
        command.arg("--").args(worker);
        Ok((command, preparing))
    }
}

/// What was prepared for a container while its shim started.
pub struct Prepared {
    /// Its cgroup (no folders when no limit needed one); removes itself when dropped.
    pub cgroup: Cgroup,
    /// When it was ready (timeline ns), as a set-up step.
    pub marks: Vec<(&'static str, u64)>,
}

/// A container's cgroup being made on a thread (see [`Spec::command`]).
pub struct Preparing(Option<std::thread::JoinHandle<Result<Prepared>>>);

impl Preparing {
    /// What was prepared, or why it could not be (the shim, never told "go", has stopped).
    pub fn wait(self) -> Result<Prepared> {
        match self.0 {
            None => Ok(Prepared {
                cgroup: Cgroup::open(Vec::new()),
                marks: Vec::new(),
            }),
            Some(thread) => thread.join().map_err(|_| {
                Error::new(
                    "preparing a container failed: its thread panicked",
                    "this is a bug in virtlab; please report it",
                )
            })?,
        }
    }
}

/// Starts the thread that makes the cgroup, then says "go" to the shim; on failure it says
/// nothing, which stops the shim.
fn prepare(
    planned: cgroup::Planned,
    to_shim: std::os::unix::net::UnixStream,
    name: &str,
) -> Result<std::thread::JoinHandle<Result<Prepared>>> {
    std::thread::Builder::new()
        .name(format!("prepare-{name}"))
        .spawn(move || {
            let cgroup = planned.create()?;
            let marks = vec![(CGROUP_MADE, virtlab_core::timeline::now_ns())];
            handoff::send_go(&to_shim);
            Ok(Prepared { cgroup, marks })
        })
        .map_err(|e| Error::os("starting a thread to prepare a container", e))
}

/// Whether `name` is `<prefix><pid>-…` of a process that no longer exists: what a run of ours
/// killed without a chance to clean up left behind (a cgroup, an OCI bundle).
fn owner_is_gone(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<u32>().ok())
        .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
}

/// The set-up step of the thread that makes a container's cgroup.
const CGROUP_MADE: &str = "cgroup made (beside the shim's start)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_zero_negative_too_many_cpus_and_tiny_memory() {
        let e = Limits::parse(Some("0"), None, None).unwrap_err();
        assert!(e.problem().contains("CPU limit cannot be 0"), "{e}");
        assert!(Limits::parse(Some("-1"), None, None).is_err());
        assert!(Limits::parse(Some("half"), None, None).is_err());
        assert!(Limits::parse(Some("100000"), None, None).is_err());
        let e = Limits::parse(None, Some("1MiB"), None).unwrap_err();
        assert!(e.fix().contains("at least 16.0 MiB"), "{e}");
        assert!(Limits::parse(None, Some("64 furlongs"), None).is_err());
        assert!(Limits::parse(None, None, Some("0")).is_err());
        assert!(Limits::parse(None, None, Some("-3")).is_err());
        let l = Limits::parse(Some("0.5"), Some("64MiB"), Some("64")).unwrap();
        assert_eq!(l.describe(), "0.5 CPU, 64.0 MiB, 64 pids");
    }

    #[test]
    fn only_names_of_processes_that_are_gone_are_stale() {
        // Above the kernel's pid ceiling: no such process can exist.
        assert!(owner_is_gone("virtlab-4194305-container-1", "virtlab-"));
        let ours = format!("virtlab-oci-{}-crun", std::process::id());
        assert!(!owner_is_gone(&ours, "virtlab-oci-"));
        assert!(!owner_is_gone("virtlab-oci-4194305-crun", "virtlab-"));
        assert!(!owner_is_gone("user.slice", "virtlab-"));
    }

    #[test]
    fn names_must_be_hostnames() {
        assert!(Spec::new("container-1").is_ok());
        for bad in ["", "-x", "Big", "a b", "a/b", &"x".repeat(41)] {
            assert!(Spec::new(bad).is_err(), "{bad}");
        }
    }
}
