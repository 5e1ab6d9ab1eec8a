//! N containers running the shared [`Work`], started as processes with extra options
//! ([`Spec::command`]): their lines echoed as they come, events gathered into a timeline, the
//! cgroups' counters sampled while they run, the process tree taken once all have started, and
//! each container's end as its shim reported it (an OOM kill named as such).
//!
//! A guard kills every shim still running and removes every group on every exit path; the shims
//! themselves remove their group when their worker ends or when this process dies.
//!
//! Why not the shared executor (the [`super::kind::Containers`] kind is that path): here one
//! container failing must not stop its neighbours (the OOM demo shows they carry on), and each
//! container brings data the executor does not carry (its probe, the shim's steps and end, its
//! cgroup's counters sampled while it runs).

use super::cgroup::{Cgroup, Stats};
use super::init::{END_PREFIX, End, SETUP_PREFIX};
use super::probe::{PROBE_PREFIX, Probe};
use super::{Limits, Spec};
use crate::display::Table;
use crate::observer::{self, Snapshot};
use crate::release::ERRORS_ENV;
use crate::timeline::{Event, EventKind, Timeline, now_ns};
use crate::work::Work;
use crate::{Error, Result, processes, units};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const EVENT_PREFIX: &str = "@virtlab-event ";

/// What the containers get and do beyond the work.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Print the containers' lines on our stdout as they arrive.
    pub echo: bool,
    /// What each container may use.
    pub limits: Limits,
    /// Each container prints what it sees before its first iteration.
    pub probe: bool,
    /// Each container allocates this many MiB more in every iteration…
    pub allocate_mib: u32,
    /// …or only container number `allocate_only` (1-based), when given.
    pub allocate_only: Option<usize>,
    /// Each container forks until its pids limit stops it.
    pub fork_bomb: bool,
    /// Container number `.0` (1-based) aborts at iteration `.1`.
    pub crash: Option<(usize, u32)>,
    /// Read every group's counters this often while it runs.
    pub sample_every: Option<Duration>,
    /// Take the process tree once every container has printed its first line.
    pub snapshot: bool,
}

/// One reading of a container's counters, `t_ms` after the run started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the run started.
    pub t_ms: f64,
    /// The counters then.
    pub stats: Stats,
}

/// How one container went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerReport {
    /// Its name, e.g. `container-2`.
    pub name: String,
    /// The shim's pid (the container's outside part).
    pub shim_pid: u32,
    /// Pid 1 of the container, as the host sees it.
    pub host_pid: Option<u32>,
    /// "exit status 0", "OOM-killed at 64.0 MiB", "killed by signal 6 (SIGABRT)", …
    pub status: String,
    /// Whether pid 1 exited with status 0.
    pub success: bool,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
    /// From just before its cgroup was made to its first line reaching us.
    pub first_line_ms: Option<f64>,
    /// What it saw, when the run asked for a probe.
    pub probe: Option<Probe>,
    /// The group's counters just before the shim removed it.
    pub end_stats: Option<Stats>,
    /// Its group's counters while it ran.
    pub samples: Vec<Sample>,
    /// The container's lines for people (iteration lines, errors).
    pub lines: Vec<String>,
    /// Start-up steps with their CLOCK_MONOTONIC time (ns), from asking for the container to
    /// its first line: ours, the shim's, the child's and the worker's.
    pub setup: Vec<(String, u64)>,
}

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRun {
    /// The process that started the containers.
    pub parent_pid: u32,
    /// What each container was allowed.
    pub limits: Limits,
    /// One report per container, in order.
    pub containers: Vec<ContainerReport>,
    /// Who ran when, from the workers' own events.
    pub timeline: Timeline,
    /// The process tree, taken once every container had printed its first line.
    pub snapshot: Option<Snapshot>,
    /// Milliseconds from the first start to the last end.
    pub wall_ms: f64,
}

impl ContainerRun {
    /// The first container that did not end well, as an error naming it and how it ended.
    pub fn failure(&self) -> Option<Error> {
        let c = self.containers.iter().find(|c| !c.success)?;
        let last = c
            .lines
            .last()
            .map_or(String::new(), |l| format!(" (last line: {l})"));
        Some(Error::new(
            format!("container {} ended with {}{last}", c.name, c.status),
            if c.oom_killed {
                "give it more memory (--memory), or let it allocate less"
            } else {
                "look at its lines above; `virtlab container --support` shows what this machine allows"
            },
        ))
    }

    /// The process tree taken mid-run: our process, the shims, pid 1 of each container.
    pub fn tree(&self) -> Result<Snapshot> {
        observer::taken(&self.snapshot)
    }

    /// One row per container: shim and host pids, how it ended, start → first line, memory peak.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "{} containers under pid {} ({})",
                self.containers.len(),
                self.parent_pid,
                self.limits.describe()
            ),
            [
                "container",
                "shim pid",
                "pid 1 on the host",
                "ended with",
                "start → first line",
                "memory peak",
            ],
        );
        for c in &self.containers {
            t.row([
                c.name.clone(),
                c.shim_pid.to_string(),
                c.host_pid.map_or("?".into(), |p| p.to_string()),
                c.status.clone(),
                c.first_line_ms
                    .map_or("never".into(), |ms| format!("{ms:.2} ms")),
                c.end_stats
                    .and_then(|s| s.memory_peak_bytes)
                    .map_or("?".into(), units::bytes),
            ]);
        }
        t
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// Runs `work` in `containers` containers named `<work.name>-1` … and waits for all of them.
/// Refuses before starting anything when this machine cannot give what `options` asks.
pub fn run(work: &Work, containers: usize, options: &Options) -> Result<ContainerRun> {
    processes::check_worker_count(containers)
        .map_err(|e| Error::invalid("the number of containers", containers, e.fix()))?;
    let program = crate::release::program()?;
    let specs = (1..=containers)
        .map(|i| {
            let spec = Spec::new(&format!("{}-{i}", work.name))?.with_limits(options.limits)?;
            Ok(Spec {
                report: true,
                ..spec
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let started = Instant::now();
    let parent_pid = std::process::id();
    let (tx, rx) = mpsc::channel::<Message>();
    let mut fleet = Fleet::default();
    for (index, spec) in specs.iter().enumerate() {
        let args = worker_args(&work.named(&spec.name)?, index, options);
        fleet.start(spec, &program, &args, index, tx.clone())?;
    }
    drop(tx);

    let mut events = Vec::new();
    let mut snapshot = None;
    let tick = options.sample_every.unwrap_or(Duration::from_secs(3600));
    let mut next_sample = Instant::now();
    let mut open = containers;
    while open > 0 {
        if options.sample_every.is_some() && Instant::now() >= next_sample {
            fleet.sample(started);
            next_sample += tick;
        }
        let wait = next_sample.saturating_duration_since(Instant::now());
        let message = match rx.recv_timeout(wait.min(tick)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match message {
            Message::Line(index, line, at) => {
                let report = &mut fleet.units[index].report;
                if let Some(json) = line.strip_prefix(EVENT_PREFIX) {
                    if let Ok(event) = serde_json::from_str::<Event>(json) {
                        report.host_pid.get_or_insert(event.pid);
                        if event.kind == EventKind::Start {
                            report.setup.push(("worker running".into(), event.t_ns));
                        }
                        events.push(event);
                    }
                    continue;
                }
                if Error::from_json_line(&line).is_some() {
                    continue;
                }
                if let Some(json) = line.strip_prefix(SETUP_PREFIX) {
                    let marks: Vec<(String, u64)> = serde_json::from_str(json).unwrap_or_default();
                    report.setup.extend(marks);
                    continue;
                }
                if let Some(json) = line.strip_prefix(PROBE_PREFIX) {
                    report.probe = serde_json::from_str(json).ok();
                    continue;
                }
                if let Some(json) = line.strip_prefix(END_PREFIX) {
                    if let Ok(end) = serde_json::from_str::<End>(json) {
                        report.host_pid = Some(end.host_pid);
                        report.status = end.status;
                        report.success = end.success;
                        report.oom_killed = end.oom_killed;
                        report.end_stats = Some(end.stats);
                    }
                    continue;
                }
                let spawned = fleet.units[index].spawned_at;
                let report = &mut fleet.units[index].report;
                if report.first_line_ms.is_none() {
                    report.first_line_ms = Some(at.duration_since(spawned).as_secs_f64() * 1e3);
                    let asked = report.setup.first().map_or(0, |m| m.1);
                    let read = asked + at.duration_since(spawned).as_nanos() as u64;
                    report.setup.push(("first line read".into(), read));
                }
                report.lines.push(line.clone());
                if options.echo {
                    println!("{line}");
                }
                if options.snapshot
                    && snapshot.is_none()
                    && fleet.units.iter().all(|u| u.report.first_line_ms.is_some())
                {
                    snapshot = observer::snapshot(parent_pid).ok();
                }
            }
            Message::Closed(index) => {
                fleet.reap(index);
                open -= 1;
            }
        }
    }
    Ok(ContainerRun {
        parent_pid,
        limits: options.limits,
        containers: fleet.finish(),
        timeline: Timeline::new(events),
        snapshot,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// `worker --name … ` with the container extras this run asks for.
fn worker_args(work: &Work, index: usize, options: &Options) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "worker".into(),
        "--name".into(),
        work.name.clone(),
        "--iterations".into(),
        work.iterations.to_string(),
        "--interval-ms".into(),
        work.interval.as_millis().to_string(),
        "--burn-ms".into(),
        work.burn.as_millis().to_string(),
    ];
    if let Some((_, at)) = options.crash.filter(|(n, _)| *n == index + 1) {
        args.extend(["--crash-at".into(), at.to_string()]);
    }
    if options.probe {
        args.push("--probe".into());
    }
    if options.allocate_mib > 0 && options.allocate_only.is_none_or(|n| n == index + 1) {
        args.extend([
            "--allocate-mib-per-iteration".into(),
            options.allocate_mib.to_string(),
        ]);
    }
    if options.fork_bomb {
        args.push("--fork-bomb".into());
    }
    args
}

enum Message {
    Line(usize, String, Instant),
    Closed(usize),
}

struct Unit {
    child: Child,
    cgroup: Cgroup,
    spawned_at: Instant,
    reaped: bool,
    report: ContainerReport,
}

/// The running containers. Dropping it kills the shims still running (their workers die with
/// them) and removes every group.
#[derive(Default)]
struct Fleet {
    units: Vec<Unit>,
}

impl Fleet {
    fn start(
        &mut self,
        spec: &Spec,
        program: &std::path::Path,
        args: &[String],
        index: usize,
        tx: mpsc::Sender<Message>,
    ) -> Result<()> {
        // Timed from before the cgroup is made: it is part of what a container costs.
        let spawned_at = Instant::now();
        let mut setup = vec![("asked".to_string(), now_ns())];
        let (mut command, cgroup) = spec.command(program, args)?;
        setup.push(("cgroup created".into(), now_ns()));
        let (reader, writer) =
            std::io::pipe().map_err(|e| Error::io("creating a pipe for a container", e))?;
        let writer_for_stderr = writer
            .try_clone()
            .map_err(|e| Error::io("creating a pipe for a container", e))?;
        // The shim's own error repeats its end line; as JSON it is told apart and skipped.
        command
            .env(ERRORS_ENV, "json")
            .stdout(writer)
            .stderr(writer_for_stderr);
        let child = command.spawn().map_err(|e| {
            Error::new(
                format!("could not start container {} ({e}); the containers already started were stopped", spec.name),
                "check the worker program with `virtlab worker --help`",
            )
        })?;
        // Our copies of the pipe's write end must go, so EOF arrives when the container ends.
        drop(command);
        std::thread::Builder::new()
            .name(format!("read-{}", spec.name))
            .spawn(move || read_lines(index, reader, tx))
            .map_err(|e| Error::io("starting a reader thread", e))?;
        self.units.push(Unit {
            report: ContainerReport {
                name: spec.name.clone(),
                shim_pid: child.id(),
                host_pid: None,
                status: "running".into(),
                success: false,
                oom_killed: false,
                first_line_ms: None,
                probe: None,
                end_stats: None,
                samples: Vec::new(),
                lines: Vec::new(),
                setup,
            },
            child,
            cgroup,
            spawned_at,
            reaped: false,
        });
        Ok(())
    }

    fn sample(&mut self, started: Instant) {
        let t_ms = started.elapsed().as_secs_f64() * 1e3;
        for u in self.units.iter_mut().filter(|u| !u.reaped) {
            let stats = u.cgroup.stats();
            if stats.cpu_ns.is_some() || stats.memory_bytes.is_some() {
                u.report.samples.push(Sample { t_ms, stats });
            }
        }
    }

    /// Waits for a shim whose output closed; without its end line, its own status is the report.
    fn reap(&mut self, index: usize) {
        let u = &mut self.units[index];
        let status = u.child.wait();
        u.reaped = true;
        if u.report.end_stats.is_none() {
            u.report.status = match status {
                Ok(s) => {
                    u.report.success = s.success();
                    format!("shim {}", crate::release::describe_status(s))
                }
                Err(e) => format!("unknown (could not wait for the shim: {e})"),
            };
        }
        let _ = u.cgroup.remove();
    }

    fn finish(&mut self) -> Vec<ContainerReport> {
        let indexes: Vec<usize> = (0..self.units.len())
            .filter(|&i| !self.units[i].reaped)
            .collect();
        for i in indexes {
            self.reap(i);
        }
        self.units.iter().map(|u| u.report.clone()).collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for u in self.units.iter_mut().filter(|u| !u.reaped) {
            let _ = u.child.kill();
            let _ = u.child.wait();
            let _ = u.cgroup.remove();
        }
    }
}

fn read_lines(index: usize, reader: std::io::PipeReader, tx: mpsc::Sender<Message>) {
    for line in BufReader::new(reader).lines() {
        let Ok(line) = line else { break };
        if tx.send(Message::Line(index, line, Instant::now())).is_err() {
            return;
        }
    }
    let _ = tx.send(Message::Closed(index));
}
