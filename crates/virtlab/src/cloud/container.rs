//! Chapter 7's containers as chapter 9's instances: each instance is `virtlab instance` as pid 1
//! of a container whose cgroup limits are the instance type (its vCPUs as a CPU quota, its
//! memory as the memory limit), so a cold start is a real container start, and what an
//! instance used is read from its cgroup (CPU time, memory charged).
//!
//! The request protocol runs over one Unix socket that is the shim's stdout, which pid 1
//! inherits: the shim's stdin is taken by its start-up handshake (and then replaced with
//! /dev/null), and a socket on stdout needs no descriptor passed by hand. Dropping an instance
//! closes the socket (pid 1 sees the end of its requests and exits; the shim removes the
//! cgroup), waits for the shim, and removes the cgroup itself as the last word.

use super::INSTANCE_COMMAND;
use super::instance::{Instance, Launcher, Reading};
use super::prices::Size;
use super::requests::Channel;
use crate::container::support::Support;
use crate::container::{Cgroup, Limits, Spec};
use crate::{Error, Result};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The flag that tells `virtlab instance` its requests come over its stdout, a socket.
pub const OVER_STDOUT: &str = "--over-stdout";
/// The flag that tells `virtlab instance` how many threads share each request's work.
pub const THREADS: &str = "--threads";
/// The most threads an instance may spread a request over (its pids limit leaves room).
pub const MAX_THREADS: usize = 8;
/// Processes and threads an instance's container may hold: pid 1 alone needs one; the rest
/// is room, not a target.
const INSTANCE_PIDS: u64 = 16;
/// How long a stopping instance's shim gets to end on its own before it is told to.
const STOP_PATIENCE: Duration = Duration::from_secs(2);

/// Starts instances as containers limited to their instance type.
pub struct ContainerLauncher {
    program: PathBuf,
    support: Support,
    limits: Limits,
    size: Size,
    /// Threads each instance spreads a request's work over.
    threads: usize,
    /// Names the containers apart from another launcher's in the same process.
    prefix: String,
    /// Numbers the containers (their names, so their cgroups', must differ).
    started: AtomicUsize,
}

impl ContainerLauncher {
    /// Instances sold as `size`, each a container limited to it. Refuses at once what this
    /// machine cannot give (namespaces, a controller, more CPUs than it has).
    pub fn new(size: Size) -> Result<ContainerLauncher> {
        if !(size.memory_gib.is_finite() && size.memory_gib > 0.0) {
            return Err(Error::invalid(
                "an instance's memory",
                format!("{} GiB", size.memory_gib),
                "give a size above 0 GiB, such as 2",
            ));
        }
        let limits = Limits {
            cpu: Some(size.vcpu),
            memory: Some((size.memory_gib * (1u64 << 30) as f64) as u64),
            pids: Some(INSTANCE_PIDS),
        }
        .checked()?;
        let support = Support::detect();
        support.check(&limits)?;
        Ok(ContainerLauncher {
            program: crate::release::program()?,
            support,
            limits,
            size,
            threads: 1,
            prefix: "instance".into(),
            started: AtomicUsize::new(0),
        })
    }

    /// The same launcher with no CPU quota: an instance takes whatever CPU the scheduler gives
    /// it (its CPU time is then its pid 1's own, as there is no CPU controller to count it).
    pub fn without_cpu_quota(self) -> ContainerLauncher {
        ContainerLauncher {
            limits: Limits {
                cpu: None,
                ..self.limits
            },
            ..self
        }
    }

    /// The same launcher whose instances spread each request over `threads` threads (one
    /// instance can then use several CPUs), named `<prefix>-N` (a valid container name).
    pub fn with_threads(self, threads: usize, prefix: &str) -> Result<ContainerLauncher> {
        crate::error::check_range("an instance's threads", threads, 1, MAX_THREADS)?;
        crate::container::Spec::new(prefix)?;
        Ok(ContainerLauncher {
            threads,
            prefix: prefix.into(),
            ..self
        })
    }

    /// The limits every instance's container gets.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

impl Launcher for ContainerLauncher {
    fn kind(&self) -> String {
        "container".into()
    }

    fn size(&self) -> Size {
        self.size
    }

    fn launch(&self) -> Result<Box<dyn Instance>> {
        let n = self.started.fetch_add(1, Ordering::Relaxed) + 1;
        let name = format!("{}-{n}", self.prefix);
        let spec = Spec::new(&name)?.with_limits(self.limits)?;
        let args = [
            INSTANCE_COMMAND.to_string(),
            OVER_STDOUT.to_string(),
            THREADS.to_string(),
            self.threads.to_string(),
        ];
        let (mut command, preparing) = spec.command(&self.support, &self.program, &args)?;
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| Error::io("creating an instance's socket", e))?;
        command
            .stdout(OwnedFd::from(theirs))
            .stderr(Stdio::inherit());
        let shim = match command.spawn() {
            Ok(shim) => shim,
            Err(e) => {
                // The cgroup is made (or not) on its thread; waiting for it lets it be removed.
                drop(preparing.wait());
                return Err(Error::os(
                    format!("starting a container shim ({})", self.program.display()),
                    e,
                ));
            }
        };
        // Whatever fails from here, dropping the instance stops the shim and removes the group.
        let mut instance = ContainerInstance {
            shim,
            cgroup: None,
            socket: ours.try_clone().ok(),
            channel: None,
            pid: 0,
        };
        instance.cgroup = Some(preparing.wait()?.cgroup);
        let answers = ours
            .try_clone()
            .map_err(|e| Error::io("sharing an instance's socket", e))?;
        let mut channel = Channel::new(
            Box::new(ours),
            Box::new(answers),
            format!("container {name} (shim pid {})", instance.shim.id()),
            "see the container's message above; `virtlab container --support` says what this machine allows",
        );
        channel.wait_ready()?;
        instance.channel = Some(channel);
        instance.pid = instance.pid_one()?;
        Ok(Box::new(instance))
    }
}

/// One running container instance: its shim, its cgroup and the socket to its pid 1.
struct ContainerInstance {
    shim: Child,
    cgroup: Option<Cgroup>,
    /// Kept to shut the connection down however many handles the channel holds.
    socket: Option<UnixStream>,
    channel: Option<Channel>,
    /// Pid 1 of the container, as the host sees it.
    pid: u32,
}

impl ContainerInstance {
    fn cgroup(&self) -> Result<&Cgroup> {
        self.cgroup
            .as_ref()
            .ok_or_else(|| Error::bug("a container instance without its cgroup"))
    }

    /// Pid 1's host pid: the one process in the group once it said `ready`.
    fn pid_one(&self) -> Result<u32> {
        self.cgroup()?.pids().first().copied().ok_or_else(|| {
            Error::new(
                "a container instance said `ready` but its cgroup holds no process",
                "run it again; if it repeats, report it with `virtlab container --support`",
            )
        })
    }
}

impl Instance for ContainerInstance {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn call(&mut self, samples: u64, seed: u64) -> Result<u64> {
        match self.channel.as_mut() {
            Some(channel) => channel.call(samples, seed),
            None => Err(Error::bug("a request to a container instance never ready")),
        }
    }

    /// CPU time and memory charged to the container's cgroup: everything pid 1 does, its
    /// namespaces' kernel memory included, and nothing of the shim outside. Without a CPU
    /// quota the group has no CPU controller: pid 1's own CPU time (all its threads) stands in.
    fn reading(&self) -> Result<Reading> {
        let stats = self.cgroup()?.stats();
        let cpu_s = match stats.cpu_ns {
            Some(cpu_ns) => Some(cpu_ns as f64 / 1e9),
            None => crate::load::process_cpu_s(self.pid),
        };
        match (cpu_s, stats.memory_bytes) {
            (Some(cpu_s), Some(memory)) => Ok(Reading {
                cpu_s,
                rss_bytes: memory,
            }),
            _ => Err(Error::unavailable(
                "a container instance's cgroup keeps no CPU time or memory counter",
                "enable the cpuacct (v1) or cpu (v2) and memory controllers; `virtlab container --support` lists them",
            )),
        }
    }
}

impl Drop for ContainerInstance {
    fn drop(&mut self) {
        // Pid 1 reads the end of its requests and exits; the shim then removes the group.
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
        self.channel = None;
        let deadline = Instant::now() + STOP_PATIENCE;
        while matches!(self.shim.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_micros(500));
        }
        if matches!(self.shim.try_wait(), Ok(None)) {
            // The shim's SIGTERM handler kills pid 1 (and so the namespace) and removes the group.
            // SAFETY: kill sends a signal to our own child, not yet reaped (try_wait said so).
            unsafe { libc::kill(self.shim.id() as libc::pid_t, libc::SIGTERM) };
        }
        let _ = self.shim.wait();
        if let Some(mut cgroup) = self.cgroup.take() {
            // Kills whatever is left inside and removes the folders; nothing when the shim did.
            let _ = cgroup.remove();
        }
    }
}
