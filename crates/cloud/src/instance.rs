//! Instances: what a front hands requests to. A [`Launcher`] starts one (its cold start) and an
//! [`Instance`] answers requests and reports what it used until it is dropped, which stops it.
//!
//! The plain-process kind lives here ([`ProcessLauncher`]); other kinds (chapter 7's containers)
//! plug in by implementing the two traits.

use crate::error::{Error, ErrorKind, Result};
use crate::prices::Size;
use crate::requests::Channel;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What an instance has used so far.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// CPU-seconds used since it started.
    pub cpu_s: f64,
    /// Resident memory now, bytes.
    pub rss_bytes: u64,
}

/// One running instance. Dropping it stops it and frees everything it held.
pub trait Instance: Send {
    /// The operating-system process that does the work (for checks that nothing is left).
    fn pid(&self) -> u32;
    /// Does one request's work: `samples` Monte Carlo points of stream `seed`; the hit count.
    fn call(&mut self, samples: u64, seed: u64) -> Result<u64>;
    /// What it has used so far.
    fn reading(&self) -> Result<Reading>;
}

/// Starts instances of one kind and size.
pub trait Launcher: Send + Sync {
    /// The kind, as tables print it ("process", "container").
    fn kind(&self) -> String;
    /// The size an instance is sold as (what the bill charges for).
    fn size(&self) -> Size;
    /// Starts one and returns once it is ready to answer: the cold start.
    fn launch(&self) -> Result<Box<dyn Instance>>;
}

/// Instances as plain processes running `virtlab-instance` (or any program that speaks the
/// request protocol on stdin and stdout, given its arguments).
#[derive(Debug, Clone)]
pub struct ProcessLauncher {
    program: PathBuf,
    args: Vec<String>,
    size: Size,
}

/// The instance program's name.
pub const INSTANCE_PROGRAM: &str = "virtlab-instance";

impl ProcessLauncher {
    /// Instances running the program at `program`, sold as `size`.
    pub fn new(program: impl Into<PathBuf>, size: Size) -> Result<ProcessLauncher> {
        let program = program.into();
        if !program.is_file() {
            return Err(missing_program(&program.display().to_string()));
        }
        if !(size.vcpu > 0.0 && size.memory_gib > 0.0) {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!(
                    "an instance cannot be sold as {} vCPU and {} GiB",
                    size.vcpu, size.memory_gib
                ),
                "give a size above 0, such as 1 vCPU and 2 GiB",
            ));
        }
        Ok(ProcessLauncher {
            program,
            args: Vec::new(),
            size,
        })
    }

    /// The same launcher, starting its program with `args` (e.g. `virtlab instance`).
    pub fn with_args(self, args: Vec<String>) -> ProcessLauncher {
        ProcessLauncher { args, ..self }
    }

    /// Finds `virtlab-instance` beside the running program or in this workspace's target
    /// folder (release first).
    pub fn find(size: Size) -> Result<ProcessLauncher> {
        let mut places: Vec<PathBuf> = Vec::new();
        if let Ok(exe) = std::env::current_exe() {
            // Beside a program, or one up from a test binary in target/<profile>/deps.
            places.extend(
                exe.ancestors()
                    .skip(1)
                    .take(2)
                    .map(|d| d.join(INSTANCE_PROGRAM)),
            );
        }
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
        places.extend(["release", "debug"].map(|p| target.join(p).join(INSTANCE_PROGRAM)));
        match places.iter().find(|p| p.is_file()) {
            Some(found) => ProcessLauncher::new(found, size),
            None => Err(missing_program(&format!(
                "{INSTANCE_PROGRAM} (looked in {})",
                places
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

fn missing_program(what: &str) -> Error {
    Error::unavailable(
        format!("the instance program {what} was not found"),
        "build it with `cargo build --release -p virtlab-cloud --bin virtlab-instance`, or give its path to ProcessLauncher::new",
    )
}

impl Launcher for ProcessLauncher {
    fn kind(&self) -> String {
        "process".into()
    }

    fn size(&self) -> Size {
        self.size
    }

    fn launch(&self) -> Result<Box<dyn Instance>> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| Error::os(format!("starting {}", self.program.display()), e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            stop(&mut child);
            return Err(Error::new(
                "an instance's pipes were not opened",
                "run it again",
            ));
        };
        let channel = Channel::new(
            Box::new(stdin),
            Box::new(stdout),
            format!("instance process {}", child.id()),
            format!(
                "check that {} is built from this workspace (rebuild it), and see its message above",
                self.program.display()
            ),
        );
        // The instance owns the child from here: dropping it on an error stops the child.
        let mut instance = ProcessInstance { child, channel };
        instance.channel.wait_ready()?;
        Ok(Box::new(instance))
    }
}

/// A running instance process and its pipes.
struct ProcessInstance {
    child: Child,
    channel: Channel,
}

fn stop(child: &mut Child) {
    // Killing an exited child fails harmlessly; wait reaps it either way.
    let _ = child.kill();
    let _ = child.wait();
}

impl Instance for ProcessInstance {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn call(&mut self, samples: u64, seed: u64) -> Result<u64> {
        self.channel.call(samples, seed)
    }

    fn reading(&self) -> Result<Reading> {
        read_proc(self.child.id())
    }
}

impl Drop for ProcessInstance {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// What the scheduler kept for a process's main thread (`/proc/<pid>/schedstat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedstat {
    /// Nanoseconds on a CPU.
    pub cpu_ns: u64,
    /// Nanoseconds it was runnable but waited on a run queue for a CPU: for a vCPU thread this
    /// is what KVM reports to its guest as steal time.
    pub run_delay_ns: u64,
}

fn unavailable(pid: u32, file: &str, why: String) -> Error {
    Error::unavailable(
        format!("cannot read /proc/{pid}/{file}: {why}"),
        "run on Linux with /proc mounted (`mount -t proc proc /proc`) and a kernel with schedstat (CONFIG_SCHED_INFO)",
    )
}

/// Reads `/proc/<pid>/schedstat`: CPU time and run-queue wait of the process's main thread.
pub fn schedstat(pid: u32) -> Result<Schedstat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .map_err(|e| unavailable(pid, "schedstat", e.to_string()))?;
    let mut words = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    match (words.next().flatten(), words.next().flatten()) {
        (Some(cpu_ns), Some(run_delay_ns)) => Ok(Schedstat {
            cpu_ns,
            run_delay_ns,
        }),
        _ => Err(unavailable(
            pid,
            "schedstat",
            format!("unexpected text {text:?}"),
        )),
    }
}

/// CPU time (from `/proc/<pid>/schedstat`, nanoseconds on the CPU) and resident memory (from
/// `/proc/<pid>/status`) of a process.
pub fn read_proc(pid: u32) -> Result<Reading> {
    let cpu_ns = schedstat(pid)?.cpu_ns;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| unavailable(pid, "status", e.to_string()))?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| unavailable(pid, "status", "no VmRSS line".into()))?;
    Ok(Reading {
        cpu_s: cpu_ns as f64 / 1e9,
        rss_bytes: rss_kib * 1024,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_can_be_read() {
        let r = read_proc(std::process::id()).unwrap();
        assert!(r.cpu_s > 0.0 && r.rss_bytes > 0);
    }

    #[test]
    fn a_missing_program_says_how_to_build_it() {
        let size = Size {
            vcpu: 1.0,
            memory_gib: 2.0,
        };
        let e = ProcessLauncher::new("/nonexistent/virtlab-instance", size).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unavailable);
        assert!(e.fix().contains("cargo build"), "{e}");
    }
}
