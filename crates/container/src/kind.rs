//! Containers as one more kind of worker of the shared [`virtlab_core::executor`]: a container is a
//! process with extra options, so the kind is the process kind whose worker command
//! [`Spec::command`] wraps and whose lines it reads with its own messages
//! ([`ContainerMessage`]: the shim's set-up steps and how pid 1 ended — an OOM kill becomes the
//! unit's status —, the worker's probe), plus its cgroup's counters read by a sampler while the
//! units run. Each unit's [`ContainerDetail`] comes back in the executor's run.
//!
//! One container failing need not stop its neighbours: run with
//! [`executor::Options::fail_fast`] false (the OOM demo does).

use super::init::{ContainerMessage, End};
use super::probe::Probe;
use super::run::{ContainerDetail, Sample};
use super::{Cgroup, Limits, Preparing, Spec};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor;
use virtlab_core::executor::{Kind, Reporter, Run, Stop, Unit, UnitLimit};
use virtlab_core::processes::{Processes, Taken, worker_limit};
use virtlab_core::protocol::{Line, Message};
use virtlab_core::timeline::{EventKind, now_ns};
use virtlab_core::work::Work;

/// What the worker in each container does beyond the work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerFlags {
    /// Each container prints what it sees before its first iteration.
    pub probe: bool,
    /// Each container allocates this many MiB more in every iteration…
    pub allocate_mib: u32,
    /// …or only container number `allocate_only` (1-based), when given.
    pub allocate_only: Option<usize>,
    /// Each container forks until its pids limit stops it.
    pub fork_bomb: bool,
}

impl WorkerFlags {
    /// The worker flags for unit `index` (0-based).
    fn args(&self, index: usize) -> Vec<String> {
        let mut args = Vec::new();
        if self.probe {
            args.push("--probe".into());
        }
        if self.allocate_mib > 0 && self.allocate_only.is_none_or(|n| n == index + 1) {
            args.push("--allocate-mib-per-iteration".into());
            args.push(self.allocate_mib.to_string());
        }
        if self.fork_bomb {
            args.push("--fork-bomb".into());
        }
        args
    }
}

/// What one container brought beyond a process, gathered while it ran.
#[derive(Default)]
struct Kept {
    shim_pid: Option<u32>,
    /// Held until `finish`: read by the sampler, removed (killing what is left) when dropped.
    cgroup: Option<Cgroup>,
    /// The cgroup and network while a thread prepares them, from the command to the start.
    preparing: Option<Preparing>,
    probe: Option<Probe>,
    end: Option<End>,
    setup: Vec<(String, u64)>,
    samples: Vec<Sample>,
    lines: Vec<String>,
}

type Units = Arc<Mutex<Vec<Kept>>>;

fn lock(units: &Mutex<Vec<Kept>>) -> MutexGuard<'_, Vec<Kept>> {
    units.lock().unwrap_or_else(|e| e.into_inner())
}

/// Unit `index`'s record, made when first needed.
fn kept(units: &mut Vec<Kept>, index: usize) -> &mut Kept {
    if units.len() <= index {
        units.resize_with(index + 1, Kept::default);
    }
    &mut units[index]
}

/// Containers with the same limits, one per unit, named after the unit (`container-1`, …).
pub struct Containers {
    processes: Processes<ContainerMessage>,
    limits: Limits,
    units: Units,
    sample_every: Option<Duration>,
    /// The sampler's thread and the sender whose drop stops it.
    sampler: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Containers {
    /// Refuses at once what this machine cannot give (namespaces, a limit's controller).
    pub fn new(limits: Limits) -> Result<Containers> {
        Containers::with_extras(limits, WorkerFlags::default())
    }

    /// Containers whose workers also do `extras` (probe, allocate, fork).
    pub fn with_extras(limits: Limits, extras: WorkerFlags) -> Result<Containers> {
        let limits = limits.checked()?;
        let support = super::support::Support::detect();
        support.check(&limits)?;
        let units: Units = Arc::default();
        let held = units.clone();
        let wrap = move |unit: &Unit, worker: std::process::Command| {
            // Timed from before the cgroup is made: it is part of what a container costs.
            let asked = now_ns();
            let spec = Spec {
                report: true,
                ..Spec::new(unit.work.name())?.with_limits(limits)?
            };
            let mut args: Vec<String> = worker
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            args.extend(extras.args(unit.index));
            let (mut command, preparing) =
                spec.command(&support, Path::new(worker.get_program()), &args)?;
            for (key, value) in worker.get_envs() {
                if let Some(value) = value {
                    command.env(key, value);
                }
            }
            let mut units = lock(&held);
            let kept = kept(&mut units, unit.index);
            kept.setup = vec![("asked".into(), asked), ("shim asked for".into(), now_ns())];
            kept.preparing = Some(preparing);
            Ok(command)
        };
        let taken = units.clone();
        let processes = Processes::wrapped(Box::new(wrap))?
            .taking(Box::new(move |index, line| take(&taken, index, line)));
        Ok(Containers {
            processes,
            limits,
            units,
            sample_every: None,
            sampler: None,
        })
    }

    /// These containers with their cgroups' counters read every `every` while they run.
    pub fn sampling(self, every: Duration) -> Containers {
        Containers {
            sample_every: Some(every),
            ..self
        }
    }

    /// The cost ladder's container: memory and pids limits (what keeps a container from
    /// hurting its neighbours), each left out, with its cgroup, where this machine has none.
    pub fn for_ladder() -> Result<Containers> {
        let wanted = Limits {
            cpu: None,
            memory: Some(LADDER_MEMORY),
            pids: Some(LADDER_PIDS),
        };
        let (allowed, _) = super::support::Support::detect().allowed(&wanted);
        Containers::new(allowed)
    }

    /// Containers held to a job's CPU share and memory, as asked (none where it asks none);
    /// refused, naming the controller and how to get it, where this machine lacks one asked for.
    pub fn limited_to(cpu: Option<f64>, memory: Option<u64>) -> Result<Containers> {
        Containers::new(Limits {
            cpu,
            memory,
            pids: None,
        })
    }

    /// Runs `work` in `containers` of these containers through the shared executor.
    pub fn run(
        mut self,
        work: &Work,
        containers: usize,
        options: executor::Options,
    ) -> Result<Run<ContainerDetail>> {
        executor::run(&mut self, work, containers, options)
    }

    fn start_sampler(&mut self, every: Duration) -> Result<()> {
        let (tx, rx) = mpsc::channel::<()>();
        let units = self.units.clone();
        let started = Instant::now();
        let handle = std::thread::Builder::new()
            .name("cgroup-sampler".into())
            .spawn(move || {
                loop {
                    let t_ms = started.elapsed().as_secs_f64() * 1e3;
                    for k in lock(&units).iter_mut().filter(|k| k.end.is_none()) {
                        let stats = k.cgroup.as_ref().map(Cgroup::stats).unwrap_or_default();
                        if stats.cpu_ns.is_some() || stats.memory_bytes.is_some() {
                            k.samples.push(Sample { t_ms, stats });
                        }
                    }
                    // Stopped when the sender is dropped (in `finish`).
                    if rx.recv_timeout(every) != Err(mpsc::RecvTimeoutError::Timeout) {
                        return;
                    }
                }
            })
            .map_err(|e| Error::os("starting the cgroup sampler", e))?;
        self.sampler = Some((tx, handle));
        Ok(())
    }
}

/// The ladder's container limits: room for the worker, and a pids limit as a fork-bomb fence.
const LADDER_MEMORY: u64 = 256 << 20;
const LADDER_PIDS: u64 = 64;

/// The start-up step that ends when the worker's code starts, by its own clock.
pub(crate) const WORKER_RUNNING: &str = "worker running";

/// The last start-up step: the worker's first line read here.
pub(crate) const FIRST_LINE: &str = "first line read";

/// Keeps a container's messages (the shim's steps and end, the worker's probe) and a copy of
/// its lines for people; the shim's end decides how the unit ended.
fn take(units: &Mutex<Vec<Kept>>, index: usize, line: &Line<ContainerMessage>) -> Taken {
    let mut units = lock(units);
    let kept = kept(&mut units, index);
    match line {
        Line::Message(Message::Event(event)) => {
            match event.kind {
                // The worker's own first event: when it started running, by its clock.
                EventKind::Start => kept.setup.push((WORKER_RUNNING.into(), event.t_ns)),
                // The executor times a unit's first line from its first iteration's event
                // (printed just before the line itself): the last start-up step ends there.
                EventKind::Iteration(_) if !kept.setup.iter().any(|(s, _)| s == FIRST_LINE) => {
                    kept.setup.push((FIRST_LINE.into(), now_ns()))
                }
                _ => {}
            }
            Taken::Relay
        }
        Line::Message(Message::Kind(ContainerMessage::Setup(marks))) => {
            kept.setup.extend(marks.iter().cloned());
            Taken::Kept
        }
        Line::Message(Message::Kind(ContainerMessage::Probe(probe))) => {
            kept.probe = Some(probe.clone());
            Taken::Kept
        }
        Line::Message(Message::Kind(ContainerMessage::End(end))) => {
            kept.end = Some(end.clone());
            Taken::Ends(end.status())
        }
        Line::Message(Message::Error(_)) => Taken::Relay,
        Line::People(text) => {
            kept.lines.push(text.clone());
            Taken::Relay
        }
    }
}

impl Kind for Containers {
    type Detail = ContainerDetail;

    fn name(&self) -> &'static str {
        "container"
    }

    fn limit(&self) -> UnitLimit {
        UnitLimit {
            units: "containers",
            ..worker_limit()
        }
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        if let Some(every) = self.sample_every
            && self.sampler.is_none()
        {
            self.start_sampler(every)?;
        }
        let index = unit.index;
        let started = self.processes.start(unit, reporter, stop);
        // Waited for whether or not the shim started, so a group made for nothing is removed.
        let preparing = kept(&mut lock(&self.units), index).preparing.take();
        let prepared = preparing.map(Preparing::wait).transpose();
        let mut units = lock(&self.units);
        let kept = kept(&mut units, index);
        match prepared {
            Ok(Some(prepared)) => {
                kept.cgroup = Some(prepared.cgroup);
                kept.setup.extend(
                    prepared
                        .marks
                        .into_iter()
                        .map(|(step, t)| (step.to_string(), t)),
                );
            }
            Ok(None) => {}
            Err(e) => return started.and(Err(e)),
        }
        started?;
        kept.shim_pid = self.processes.pid(index);
        Ok(())
    }

    /// Kills the unit's shim; its pid 1 dies with it (it asked to), and `finish` removes the group.
    fn interrupt(&mut self, index: usize) {
        self.processes.interrupt(index);
    }

    fn detail(&mut self, index: usize) -> ContainerDetail {
        let k = std::mem::take(kept(&mut lock(&self.units), index));
        let mut setup = k.setup;
        setup.sort_by_key(|m| m.1);
        ContainerDetail {
            shim_pid: k.shim_pid,
            host_pid: k.end.as_ref().map(|e| e.host_pid),
            oom_killed: k.end.as_ref().is_some_and(End::oom_killed),
            probe: k.probe,
            end_stats: k.end.map(|e| e.stats),
            samples: k.samples,
            lines: k.lines,
            setup,
        }
    }

    fn finish(&mut self) -> String {
        if let Some((stop, sampler)) = self.sampler.take() {
            drop(stop);
            let _ = sampler.join();
        }
        self.processes.finish();
        // Each shim removed its group already, unless it was killed; dropping removes the rest.
        for kept in lock(&self.units).iter_mut() {
            kept.cgroup = None;
        }
        format!(
            "{} workers under pid {} as containers ({})",
            self.processes.started(),
            std::process::id(),
            self.limits.describe()
        )
    }
}

/// Runs `work` in `containers` containers through the shared executor.
pub fn run(
    work: &Work,
    containers: usize,
    limits: Limits,
    options: executor::Options,
) -> Result<Run<ContainerDetail>> {
    Containers::new(limits)?.run(work, containers, options)
}

#[cfg(test)]
mod tests {
    use super::super::cgroup::Stats;
    use super::*;

    #[test]
    fn messages_are_taken_and_the_end_decides_the_status() {
        use virtlab_core::executor::{Crash, Status};
        use virtlab_core::timeline::Event;
        let units = Mutex::new(Vec::new());
        // Each line goes through the protocol's reader first, as the process kind reads it.
        let line = |text: String| {
            let line = virtlab_core::protocol::read::<ContainerMessage>(&text).unwrap();
            take(&units, 1, &line)
        };
        let event = |kind, t_ns| {
            Message::<ContainerMessage>::Event(Event {
                lane: "box-2".into(),
                kind,
                t_ns,
                pid: 1,
                tid: 1,
            })
            .to_line()
        };
        let setup = Message::Kind(ContainerMessage::Setup(vec![("shim started".into(), 5)]));
        assert_eq!(line(setup.to_line()), Taken::Kept);
        assert_eq!(line(event(EventKind::Start, 6)), Taken::Relay);
        assert_eq!(line(event(EventKind::Iteration(0), 7)), Taken::Relay);
        assert_eq!(line(event(EventKind::Iteration(1), 8)), Taken::Relay);
        assert_eq!(line("0: box-2 pid 1".into()), Taken::Relay);
        let oom = Crash::OutOfMemory {
            at_bytes: Some(64 << 20),
        };
        let end = End {
            host_pid: 42,
            crash: Some(oom.clone()),
            stats: Stats::default(),
        };
        let end = Message::Kind(ContainerMessage::End(end)).to_line();
        assert_eq!(line(end), Taken::Ends(Status::Crashed(oom)));
        let units = lock(&units);
        assert_eq!(units.len(), 2);
        let k = &units[1];
        assert_eq!(k.lines, ["0: box-2 pid 1"]);
        assert_eq!(k.setup[0], ("shim started".to_string(), 5));
        assert_eq!(k.setup[1], (WORKER_RUNNING.to_string(), 6));
        assert_eq!(k.setup[2].0, FIRST_LINE);
        assert_eq!(k.setup.len(), 3, "stamped once: {:?}", k.setup);
        assert_eq!(k.end.as_ref().map(|e| e.host_pid), Some(42));
        assert!(k.end.as_ref().is_some_and(End::oom_killed));
    }
}
