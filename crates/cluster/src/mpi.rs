//! MPI ranks across the cluster, or across the hosts of a hostfile: [`Mpirun`] builds the
//! mpirun command (the hosts' flags from [`Hosts`]: for a cluster, a hostfile of the nodes'
//! addresses, the agent in place of ssh, the subnet for Open MPI's TCP; the yield switch) and
//! runs `virtlab-ranks` under it, returning the ranks' lines as typed values.

use crate::cluster::{Cluster, on_path};
use crate::hostfile::Hosts;
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What the ranks run (modes of `virtlab-ranks`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Program {
    /// Every rank's line, `iterations` times, `interval_ms` apart.
    Hello { iterations: u32, interval_ms: u64 },
    /// The Monte Carlo hit count of `samples` points from `seed`, reduced over the ranks.
    Hits { samples: u64, seed: u64 },
    /// Ping-pong between ranks 0 and 1 at each size in bytes.
    PingPong { sizes: Vec<usize>, rounds: u32 },
}

impl Program {
    /// The program's arguments for this mode.
    pub fn args(&self) -> Vec<String> {
        let s = |v: &dyn ToString| v.to_string();
        match self {
            Program::Hello {
                iterations,
                interval_ms,
            } => vec![
                "hello".into(),
                "--iterations".into(),
                s(iterations),
                "--interval-ms".into(),
                s(interval_ms),
            ],
            Program::Hits { samples, seed } => vec![
                "hits".into(),
                "--samples".into(),
                s(samples),
                "--seed".into(),
                s(seed),
            ],
            Program::PingPong { sizes, rounds } => vec![
                "pingpong".into(),
                "--sizes".into(),
                sizes
                    .iter()
                    .map(|b| b.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                "--rounds".into(),
                s(rounds),
            ],
        }
    }
}

/// One line a rank printed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RankLine {
    /// A live line of `hello`.
    Hello {
        rank: u32,
        size: u32,
        iteration: u32,
        node: String,
        /// The pid inside the node's pid namespace.
        pid: u32,
        pid_namespace: String,
        /// What MPI_Init took in this rank.
        init_ms: f64,
        /// When the rank's process started (Unix seconds).
        started_unix: f64,
        /// When the line was printed (Unix seconds).
        unix: f64,
        /// The line as the rank could write it (the node cannot see its host pid).
        line: String,
    },
    /// One rank's part of the hit count.
    Hits {
        rank: u32,
        size: u32,
        node: String,
        samples: u64,
        hits: u64,
        init_ms: f64,
        compute_ms: f64,
        reduce_ms: f64,
    },
    /// The reduced total (rank 0).
    HitsTotal {
        size: u32,
        samples: u64,
        seed: u64,
        hits: u64,
    },
    /// One message size of ping-pong (rank 0).
    Pingpong {
        bytes: usize,
        rounds: u32,
        one_way_us: f64,
        gb_per_s: f64,
        from: String,
    },
}

/// A finished mpirun.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MpiRun {
    /// The command, as a shell would show it.
    pub command: String,
    /// The ranks' lines, in the order they arrived.
    pub lines: Vec<RankLine>,
    /// mpirun's exit status (None: killed by a signal).
    pub exit_code: Option<i32>,
    /// mpirun's standard error (its account of a failed job).
    pub stderr: String,
    /// From asking (spawning mpirun) to the first rank line, in milliseconds.
    pub first_line_ms: Option<f64>,
    /// From asking to mpirun's exit, in milliseconds.
    pub wall_ms: f64,
}

impl MpiRun {
    /// The hit total, if rank 0 printed it.
    pub fn total_hits(&self) -> Option<u64> {
        self.lines.iter().find_map(|l| match l {
            RankLine::HitsTotal { hits, .. } => Some(*hits),
            _ => None,
        })
    }

    /// Rank 0's ping-pong lines: (bytes, one way µs, GB/s) per size.
    pub fn pingpong_points(&self) -> Vec<(usize, f64, f64)> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                RankLine::Pingpong {
                    bytes,
                    one_way_us,
                    gb_per_s,
                    ..
                } => Some((*bytes, *one_way_us, *gb_per_s)),
                _ => None,
            })
            .collect()
    }

    /// The rank mpirun says died by a signal, and the signal: its account on stderr ("process
    /// rank N with PID P on node H exited on signal S"), the one place its words are read.
    pub fn killed_rank(&self) -> Option<(u32, i32)> {
        self.stderr.lines().find_map(|l| {
            let rest = l.split("process rank ").nth(1)?;
            let rank = rest.split_whitespace().next()?.parse().ok()?;
            let signal = l
                .split("exited on signal ")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((rank, signal))
        })
    }
}

/// The essay's line for a rank's `iteration`: `0: rank-2 on node-2 pid 7 (host pid 4242)` (the
/// rank sees its pid inside its node; the host pid is found from the host's /proc while it runs).
pub fn essay_line(
    iteration: u32,
    rank: u32,
    node: &str,
    pid: u32,
    host_pid: Option<u32>,
) -> String {
    let host = host_pid.map_or_else(|| "gone".to_string(), |p| p.to_string());
    format!("{iteration}: rank-{rank} on {node} pid {pid} (host pid {host})")
}

/// The host pid of the process that is `ns_pid` in the pid namespace `pid_namespace`
/// (scanning the host's /proc: `NSpid` lists a process's pid at every level).
pub fn host_pid(pid_namespace: &str, ns_pid: u32) -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let ns = std::fs::read_link(entry.path().join("ns/pid")).ok()?;
            if ns.display().to_string() != pid_namespace {
                return None;
            }
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let last = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))?
                .split_whitespace()
                .last()?;
            (last.parse::<u32>().ok()? == ns_pid).then_some(pid)
        })
}

/// The `virtlab-ranks` program: `$VIRTLAB_RANKS`, else a release (then debug) build beside
/// this program's target folder or in the workspace's, else on PATH.
pub fn ranks_program() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("VIRTLAB_RANKS").filter(|p| !p.is_empty()) {
        let program = PathBuf::from(p);
        crate::cluster::visible_on_nodes(&program)?;
        return Ok(program);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // A notebook's kernel runs from a build folder of its own: then the workspace's target
    // folder, where scripts/setup builds it, is the place to look.
    let workspace_target = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target");
    for dir in exe.ancestors().skip(1).chain([workspace_target.as_path()]) {
        for build in ["release", "debug"] {
            let candidate = dir.join(build).join("virtlab-ranks");
            if candidate.is_file() {
                crate::cluster::visible_on_nodes(&candidate)?;
                return Ok(candidate);
            }
        }
    }
    if on_path("virtlab-ranks") {
        return Ok(PathBuf::from("virtlab-ranks"));
    }
    Err(Error::unavailable(
        "the MPI program virtlab-ranks is not built",
        "run scripts/setup (or cargo build --release -p virtlab-ranks --features mpi), or set VIRTLAB_RANKS to its path",
    ))
}

/// Open MPI's mpirun, or the error saying how to install it.
fn check_mpirun() -> Result<()> {
    if on_path("mpirun") {
        return Ok(());
    }
    Err(Error::unavailable(
        "Open MPI's mpirun is not installed",
        "apt-get install openmpi-bin libopenmpi-dev libclang-dev, then scripts/setup",
    ))
}

/// Whether MPI runs can start here: mpirun on PATH and a `virtlab-ranks` built with Open MPI,
/// asked by running it once alone (a singleton; a build without MPI says so and fails). Returns
/// the program. Checked before a cluster is made, so a missing piece costs no cluster.
pub fn ready() -> Result<PathBuf> {
    check_mpirun()?;
    let program = ranks_program()?;
    let out = Command::new(&program)
        .args(
            Program::Hits {
                samples: 1,
                seed: 1,
            }
            .args(),
        )
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::os(format!("running {}", program.display()), e))?;
    if !out.status.success() {
        // Its own error names what it lacks (built without Open MPI, say).
        return Err(Error::unavailable(
            format!(
                "{} cannot run MPI here: {}",
                program.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "run scripts/setup, which builds it with --features mpi",
        ));
    }
    Ok(program)
}

/// Where an mpirun places its ranks.
#[derive(Debug, Clone)]
enum Target<'a> {
    /// A cluster's nodes (its hostfile written at each command).
    Nodes(&'a Cluster),
    /// The hosts of a hostfile.
    Listed(&'a Hosts),
}

/// An mpirun across a cluster or a hostfile's hosts, built step by step.
#[derive(Debug, Clone)]
pub struct Mpirun<'a> {
    target: Target<'a>,
    ranks: usize,
    nodes: Vec<usize>,
    slots: Option<usize>,
    yield_when_idle: bool,
    program: Option<PathBuf>,
    timeout: Duration,
}

impl<'a> Mpirun<'a> {
    /// `ranks` ranks over all the cluster's nodes, each node's slots its instance type's CPUs.
    pub fn new(cluster: &'a Cluster, ranks: usize) -> Mpirun<'a> {
        Mpirun {
            target: Target::Nodes(cluster),
            ranks,
            nodes: (1..=cluster.nodes().len()).collect(),
            slots: None,
            yield_when_idle: false,
            program: None,
            timeout: Duration::from_secs(120),
        }
    }

    /// `ranks` ranks over the hosts `hosts` lists, placed by their slots there.
    pub fn across(hosts: &'a Hosts, ranks: usize) -> Mpirun<'a> {
        Mpirun {
            target: Target::Listed(hosts),
            ranks,
            nodes: Vec::new(),
            slots: None,
            yield_when_idle: false,
            program: None,
            timeout: Duration::from_secs(120),
        }
    }

    /// Only these nodes of a cluster (1-based), in this order.
    pub fn nodes(mut self, nodes: &[usize]) -> Self {
        self.nodes = nodes.to_vec();
        self
    }

    /// Slots per node of a cluster (ranks placed on a node before the next one); a hostfile's
    /// hosts keep the slots it gives them.
    pub fn slots(mut self, slots: usize) -> Self {
        self.slots = Some(slots);
        self
    }

    /// `--mca mpi_yield_when_idle 1`: waiting ranks yield the CPU instead of spinning.
    pub fn yield_when_idle(mut self, on: bool) -> Self {
        self.yield_when_idle = on;
        self
    }

    /// The MPI program (default: [`ranks_program`]).
    pub fn program(mut self, path: impl Into<PathBuf>) -> Self {
        self.program = Some(path.into());
        self
    }

    /// How long the run may take before it is killed.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The mpirun command for `program`, hostfile written; errors for bad counts first.
    pub fn command(&self, program: &Program) -> Result<Command> {
        if self.ranks == 0 {
            return Err(Error::of(
                ErrorKind::Invalid,
                "an MPI run cannot have 0 ranks",
                "ask for 1 rank or more",
            ));
        }
        let written;
        let (hosts, bind_to_none) = match self.target {
            Target::Nodes(cluster) => {
                written = Hosts::standing_in(cluster, &self.nodes, self.slots)?;
                (&written, true)
            }
            Target::Listed(hosts) => (hosts, false),
        };
        check_mpirun()?;
        let exe = match &self.program {
            Some(p) => p.clone(),
            None => ranks_program()?,
        };
        let mut c = Command::new("mpirun");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            c.arg("--allow-run-as-root");
        }
        c.args(["--oversubscribe", "-np", &self.ranks.to_string()])
            .args(hosts.mpirun_args());
        if bind_to_none {
            // With 2 ranks or fewer Open MPI binds each rank to a core, and each node's daemon
            // picks its own first core: namespace nodes share this machine's cores, so every
            // node's rank landed on CPU 0 (seen: two ranks on two nodes, both
            // `Cpus_allowed_list: 0`, no speed-up). A node's CPU share is its cgroup's quota.
            c.args(["--bind-to", "none"]);
        }
        if self.yield_when_idle {
            c.args(["--mca", "mpi_yield_when_idle", "1"]);
        }
        c.arg(exe).args(program.args());
        Ok(c)
    }

    /// Starts the run; lines come from [`Running::finish`] (or read live from its stdout).
    pub fn spawn(&self, program: &Program) -> Result<Running> {
        let mut command = self.command(program)?;
        let shown = format!("{command:?}").replace('"', "");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        // SAFETY: prctl is async-signal-safe and changes only the child. Should this process
        // die (SIGKILL of `virtlab mpi`, a killed kernel), mpirun goes too: the nodes' teardown
        // kills its ranks and daemons, but mpirun itself would wait for them for ever.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            })
        };
        let asked = Instant::now();
        let asked_unix = virtlab_core::units::unix_now_f64();
        let child = command
            .spawn()
            .map_err(|e| Error::os("starting mpirun", e))?;
        Ok(Running {
            child,
            asked,
            asked_unix,
            command: shown,
            timeout: self.timeout,
        })
    }

    /// Runs `program` to the end.
    pub fn run(&self, program: &Program) -> Result<MpiRun> {
        self.spawn(program)?.finish()
    }
}

/// An mpirun in progress; dropping it kills the whole job (mpirun's process group).
#[derive(Debug)]
pub struct Running {
    child: Child,
    asked: Instant,
    /// When it was asked for (Unix seconds).
    pub asked_unix: f64,
    command: String,
    timeout: Duration,
}

impl Running {
    /// mpirun's pid, which leads its process group (SIGTERM to it ends the whole job).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads every line to the end (killing the job after its timeout) and waits for mpirun.
    pub fn finish(self) -> Result<MpiRun> {
        self.finish_live(|_| {})
    }

    /// As [`Running::finish`], handing each rank's line to `on_line` as it arrives (while the
    /// rank still runs, so its host pid can still be found).
    pub fn finish_live(mut self, mut on_line: impl FnMut(&RankLine)) -> Result<MpiRun> {
        let stdout = self.child.stdout.take().expect("stdout was piped");
        let mut stderr = self.child.stderr.take().expect("stderr was piped");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let pgid = self.child.id() as i32;
        let timeout = self.timeout;
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(timeout).is_err() {
                // SAFETY: kills mpirun's own process group (it was started as its leader).
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                return true;
            }
            false
        });
        let mut lines = Vec::new();
        let mut first_line_ms = None;
        for line in BufReader::new(stdout)
            .lines()
            .map_while(std::result::Result::ok)
        {
            if let Ok(parsed) = serde_json::from_str::<RankLine>(&line) {
                first_line_ms.get_or_insert(self.asked.elapsed().as_secs_f64() * 1e3);
                on_line(&parsed);
                lines.push(parsed);
            }
        }
        let status = self
            .child
            .wait()
            .map_err(|e| Error::os("waiting for mpirun", e))?;
        let _ = done_tx.send(());
        let timed_out = watchdog.join().unwrap_or(false);
        let stderr = errors.join().unwrap_or_default();
        if timed_out {
            return Err(Error::new(
                format!(
                    "the MPI run took longer than {:?} and was killed",
                    self.timeout
                ),
                "give it a longer timeout, or fewer samples; with more ranks than cores set yield_when_idle",
            ));
        }
        Ok(MpiRun {
            command: self.command.clone(),
            lines,
            exit_code: status.code(),
            stderr,
            first_line_ms,
            wall_ms: self.asked.elapsed().as_secs_f64() * 1e3,
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // SAFETY: kills mpirun's own process group and reaps mpirun.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}
