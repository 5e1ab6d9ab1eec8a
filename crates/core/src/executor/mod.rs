//! One executor for every kind of worker: processes, threads, tasks, WebAssembly instances,
//! virtual machines, containers, and the kinds later chapters add.
//!
//! A kind of worker implements [`Kind`]: how many units it can run, how to start one unit of a
//! [`Work`] (units that can only start together, like MPI ranks, learn their number first), how to wake a unit that should stop, how to clean up, and what it reports about
//! each unit beyond how it ended (its [`Detail`]: a container's shim pid, steps and counters;
//! nothing for a thread). Everything else is written once, here: checking the options (unit
//! counts, a fault, a runaway, a cancel, a deadline), the units' names, echoing their lines, the
//! timeline, the process-tree snapshot once every unit runs, the time from asking for a unit to
//! its first line, and what a run returns when a unit fails.
//!
//! **The rule when a unit fails.** A run that could start returns `Ok(Run)`, whatever its units
//! did; each unit's [`Status`] says how it ended. When a unit crashes, panics or is refused, the
//! others are stopped (their status says why) — as a supervisor would — unless the caller asks
//! for isolation instead ([`Options::fail_fast`] false: the neighbours run on). [`Run::check`] turns a run
//! with a failed unit into the `Err` that names it, for callers that want `?` to stop there (the
//! CLI exits non-zero that way). `Err` from [`run`] itself means nothing could run: bad input.
//!
//! ```
//! use virtlab_core::executor::{self, Options};
//! use virtlab_core::work::Work;
//!
//! let work = Work::new("thread", 2, 10)?;
//! let run = executor::run(&mut virtlab_core::threads::Threads::new(), &work, 3, Options::quiet())?;
//! assert!(run.succeeded());
//! assert_eq!(run.units.len(), 3);
//! # Ok::<(), virtlab_core::Error>(())
//! ```
//!
//! Why one long file: the run loop (start, collect, stop, report) reads top to bottom here, and
//! splitting it would scatter the one rule every kind relies on; the driver and the report types
//! live in `drive.rs` and `report.rs`.

mod drive;
mod report;
mod unit_threads;

pub use drive::{Pause, SleepPause, drive, drive_async};
pub use report::{Crash, Detail, Failure, Run, Status, UnitReport};
pub use unit_threads::UnitThreads;

use crate::observer;
use crate::protocol::{self, NoKindMessages};
use crate::timeline::{Event, EventKind, Timeline};
use crate::work::Work;
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a run behaves beyond its work; the same for every kind of worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Print the units' lines on our stdout as they arrive.
    pub echo: bool,
    /// Snapshot the process tree once every unit has printed its first line.
    pub snapshot: bool,
    /// Stop every unit still running this long after the start: it is reported as timed out.
    pub deadline: Option<Duration>,
    /// Cancel one unit part-way.
    pub cancel: Option<Cancel>,
    /// Make one unit fail on purpose.
    pub fault: Option<Fault>,
    /// Make one unit run away on purpose (loop for ever without reporting): only the deadline
    /// or a cancel stops it. For kinds that can ([`Kind::can_run_away`]).
    pub runaway: Option<Runaway>,
    /// When one unit fails by itself, stop the others (true, the default: a supervisor's rule).
    /// False keeps the neighbours running: what isolation (a container's, say) promises.
    pub fail_fast: bool,
}

/// Cancel unit number `unit` (1-based) `after` the start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancel {
    /// Which unit, counting from 1.
    pub unit: usize,
    /// How long after the run's start.
    pub after: Duration,
}

/// Make unit number `unit` (1-based) fail at iteration `at` (0-based), the way its kind fails:
/// a process aborts, a thread or task panics, a virtual machine triple-faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// Which unit, counting from 1.
    pub unit: usize,
    /// At which iteration, counting from 0.
    pub at: u32,
}

/// Make unit number `unit` (1-based) loop for ever from iteration `at` (0-based), never
/// reporting again: a guest stuck in `jmp $` or a WebAssembly loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runaway {
    /// Which unit, counting from 1.
    pub unit: usize,
    /// From which iteration, counting from 0.
    pub at: u32,
}

impl Default for Options {
    /// Lines echoed and a snapshot taken: the chapters' demos.
    fn default() -> Self {
        Options {
            echo: true,
            snapshot: true,
            deadline: None,
            cancel: None,
            fault: None,
            runaway: None,
            fail_fast: true,
        }
    }
}

impl Options {
    /// No echo, no snapshot: for measurements and tests.
    pub fn quiet() -> Options {
        Options {
            echo: false,
            snapshot: false,
            ..Options::default()
        }
    }

    /// These options with a fault on purpose in unit `unit` at iteration `at`.
    pub fn with_fault(self, unit: usize, at: u32) -> Options {
        Options {
            fault: Some(Fault { unit, at }),
            ..self
        }
    }

    /// These options with unit `unit` running away from iteration `at`.
    pub fn with_runaway(self, unit: usize, at: u32) -> Options {
        Options {
            runaway: Some(Runaway { unit, at }),
            ..self
        }
    }
}

/// One unit to start: its index (0-based), its work (already named, e.g. `worker-2`) and the
/// iterations at which it should fail or run away on purpose, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Position in the run, from 0.
    pub index: usize,
    /// The work, under this unit's own name.
    pub work: Work,
    /// Fail on purpose at this iteration.
    pub fault_at: Option<u32>,
    /// Run away (loop for ever, never reporting again) from this iteration.
    pub runaway_at: Option<u32>,
}

/// Set when a unit should stop (deadline, cancel, another unit failed). A unit looks at it
/// between pauses; [`Kind::interrupt`] wakes one that cannot look.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A flag not yet set.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the unit to stop.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the unit was asked to stop.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

enum Body {
    Line(String),
    Event(Event),
    Ended(Status),
}

struct Message {
    index: usize,
    body: Body,
    at: Instant,
}

/// How a unit tells the executor what it does. Cheap to clone and `Send`.
#[derive(Clone)]
pub struct Reporter {
    index: usize,
    sink: Sink,
}

#[derive(Clone)]
enum Sink {
    /// A unit inside this process: straight to the executor.
    Executor(mpsc::Sender<Message>),
    /// A worker program: lines and JSON events on stdout, for its parent to relay.
    Stdout,
}

impl Reporter {
    /// A reporter for a worker program, writing to its stdout as protocol messages (its
    /// parent's process kind reads them back and relays them).
    pub fn stdout() -> Reporter {
        Reporter {
            index: 0,
            sink: Sink::Stdout,
        }
    }

    fn send(&self, body: Body) {
        match &self.sink {
            Sink::Executor(tx) => {
                // A run that has ended stops listening; a late report is of no use to anyone.
                let _ = tx.send(Message {
                    index: self.index,
                    body,
                    at: Instant::now(),
                });
            }
            Sink::Stdout => match body {
                Body::Line(line) => {
                    use std::io::Write;
                    // A parent that stopped reading is noticed by the worker's parent check.
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
                Body::Event(event) => protocol::Message::<NoKindMessages>::Event(event).print(),
                // The parent learns how a program ended from its exit status.
                Body::Ended(_) => {}
            },
        }
    }

    /// A timeline event (Start, each Iteration, End).
    pub fn event(&self, event: Event) {
        self.send(Body::Event(event));
    }

    /// A line for people, e.g. the essay's `0: worker-1 pid 4242`.
    pub fn line(&self, text: impl Into<String>) {
        self.send(Body::Line(text.into()));
    }

    /// How the unit ended; sent once, last.
    pub fn ended(&self, status: Status) {
        self.send(Body::Ended(status));
    }
}

/// How many units a kind can run at once, and why that many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitLimit {
    /// What the units are called in an error: "workers", "threads", "VMs".
    pub units: &'static str,
    /// The most at once.
    pub most: usize,
    /// Why no more, e.g. "virtlab's cap of 4096 and this user's process limit".
    pub why: String,
}

/// A kind of worker. Implement these and [`run`] does the rest.
pub trait Kind {
    /// What the kind reports about each unit beyond how it ended (`()` for nothing).
    type Detail: Detail;

    /// What one unit is called: "process", "thread", "task", "container", "vm".
    fn name(&self) -> &'static str;

    /// How many units this kind can run at once here.
    fn limit(&self) -> UnitLimit;

    /// Refuses to start anything when the machine lacks what the kind needs (KVM, say).
    fn ready(&self) -> Result<()> {
        Ok(())
    }

    /// Whether a unit can run away on purpose ([`Options::runaway`]).
    fn can_run_away(&self) -> bool {
        false
    }

    /// Told, once, how many units the run will ask for, before the first [`Kind::start`]: for
    /// a kind whose units start together (MPI ranks under one `mpirun`, launched at the last
    /// unit's `start`). Kinds that start each unit alone need nothing here.
    fn starting(&mut self, units: usize) {
        let _ = units;
    }

    /// Starts one unit. It reports through `reporter` (its last report is
    /// [`Reporter::ended`]) and stops early when `stop` is set. `Err` means the unit could
    /// not be started (it is reported as refused).
    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()>;

    /// Wakes unit `index` after its `Stop` was set, if it may not be looking (a process to
    /// kill, a vCPU to signal, a task to abort). Units that look at `Stop` need nothing here.
    fn interrupt(&mut self, index: usize) {
        let _ = index;
    }

    /// Waits for and releases every unit (join, reap, remove); called once on every exit path.
    /// Returns the run's one-line summary, e.g. "3 worker processes under pid 4242".
    fn finish(&mut self) -> String;

    /// What unit `index` brought beyond how it ended, asked once after [`Kind::finish`].
    fn detail(&mut self, index: usize) -> Self::Detail {
        let _ = index;
        Self::Detail::default()
    }
}

/// Refuses a unit count `kind` cannot honour, or a machine that lacks what it needs, before
/// anything starts: the one check every kind's units get.
pub fn check<K: Kind + ?Sized>(kind: &K, units: usize) -> Result<()> {
    check_count(kind, units)?;
    kind.ready()
}

/// Refuses a unit count outside the kind's limit.
fn check_count<K: Kind + ?Sized>(kind: &K, units: usize) -> Result<()> {
    let limit = kind.limit();
    if units == 0 || units > limit.most {
        return Err(Error::invalid(
            &format!("the number of {}", limit.units),
            units,
            format!("choose between 1 and {} ({})", limit.most, limit.why),
        ));
    }
    Ok(())
}

/// Any kind of worker, its details left aside: what a registry of kinds, or the cost ladder's
/// probe, holds when it does not know which kind it has.
pub trait AnyKind {
    /// What one unit is called.
    fn name(&self) -> &'static str;
    /// Refuses a unit count this kind cannot honour here ([`check`]).
    fn check(&self, units: usize) -> Result<()>;
    /// [`run`] without the kind's details.
    fn run_plain(&mut self, work: &Work, units: usize, options: Options) -> Result<Run>;
}

impl<K: Kind> AnyKind for K {
    fn name(&self) -> &'static str {
        Kind::name(self)
    }

    fn check(&self, units: usize) -> Result<()> {
        check(self, units)
    }

    fn run_plain(&mut self, work: &Work, units: usize, options: Options) -> Result<Run> {
        run(self, work, units, options).map(Run::plain)
    }
}

/// Calls `finish` when dropped, so every exit path (an error, a panic) releases the units.
struct Finishing<'k, K: Kind + ?Sized> {
    kind: &'k mut K,
    summary: Option<String>,
}

impl<K: Kind + ?Sized> Finishing<'_, K> {
    fn finish(&mut self) -> String {
        self.summary
            .get_or_insert_with(|| self.kind.finish())
            .clone()
    }
}

impl<K: Kind + ?Sized> Drop for Finishing<'_, K> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Where one unit is in its life.
struct Tracked {
    name: String,
    asked: Instant,
    first_line: Option<Instant>,
    first_event: Option<Event>,
    stop: Stop,
    /// Why we stopped it, if we did: this becomes its status unless it completed anyway.
    stopped_because: Option<Status>,
    status: Option<Status>,
}

/// Runs `work` as `units` units of `kind`, named `<work.name()>-1` …, and waits for all of them.
pub fn run<K: Kind + ?Sized>(
    kind: &mut K,
    work: &Work,
    units: usize,
    options: Options,
) -> Result<Run<K::Detail>> {
    // Bad input is said before a missing facility: a wrong option is the same mistake on any
    // machine.
    check_count(kind, units)?;
    if options.runaway.is_some() && !kind.can_run_away() {
        return Err(Error::invalid(
            "a runaway unit",
            format!("asked of a {}", kind.name()),
            "make a VM or a wasm instance run away (their guests can loop for ever); other kinds stop at their stop flag",
        ));
    }
    for (what, unit) in [
        ("cancel", options.cancel.map(|c| c.unit)),
        ("fault", options.fault.map(|f| f.unit)),
        ("run away", options.runaway.map(|r| r.unit)),
    ] {
        if let Some(unit) = unit
            && !(1..=units).contains(&unit)
        {
            return Err(Error::invalid(
                &format!("the unit to {what}"),
                unit,
                format!("name a unit between 1 and {units}"),
            ));
        }
    }
    if options.deadline.is_some_and(|d| d.is_zero()) {
        return Err(Error::invalid(
            "the deadline",
            "0 ms",
            "give at least 1 ms, or no deadline",
        ));
    }
    kind.ready()?;
    let works: Vec<Work> = (1..=units)
        .map(|i| work.named(&format!("{}-{i}", work.name())))
        .collect::<Result<_>>()?;
    let host_pid = std::process::id();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel();
    let mut kind = Finishing {
        kind,
        summary: None,
    };
    let mut tracked: Vec<Tracked> = Vec::with_capacity(units);
    kind.kind.starting(units);
    for (index, work) in works.into_iter().enumerate() {
        let fault_at = options.fault.filter(|f| f.unit == index + 1).map(|f| f.at);
        let runaway_at = options
            .runaway
            .filter(|r| r.unit == index + 1)
            .map(|r| r.at);
        let stop = Stop::new();
        let name = work.name().to_string();
        let reporter = Reporter {
            index,
            sink: Sink::Executor(tx.clone()),
        };
        let asked = Instant::now();
        let outcome = kind.kind.start(
            Unit {
                index,
                work,
                fault_at,
                runaway_at,
            },
            reporter,
            stop.clone(),
        );
        tracked.push(Tracked {
            name,
            asked,
            first_line: None,
            first_event: None,
            stop,
            stopped_because: None,
            status: None,
        });
        if let Err(refusal) = outcome {
            // A refused unit means the machine is out of something: nothing more is started,
            // whatever the failure rule, and the rule decides about those already running.
            tracked[index].status = Some(Status::Refused(refusal));
            if options.fail_fast {
                stop_others(&mut tracked, &mut kind, index, Failure::Refused);
            }
            break;
        }
    }
    drop(tx);

    let mut events = Vec::new();
    let mut snapshot = None;
    let mut failed = tracked.iter().any(|t| t.status.is_some());
    let deadline = options.deadline.map(|d| started + d);
    let cancel_at = options.cancel.map(|c| (c.unit - 1, started + c.after));
    let mut cancel_done = false;
    while tracked.iter().any(|t| t.status.is_none()) {
        let next_timer = [
            deadline,
            cancel_at.filter(|_| !cancel_done).map(|(_, at)| at),
        ]
        .into_iter()
        .flatten()
        .min();
        let message = match next_timer {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
        };
        let Some(Message { index, body, at }) = message else {
            let now = Instant::now();
            if let Some((unit, when)) = cancel_at
                && !cancel_done
                && now >= when
            {
                cancel_done = true;
                let reason = Status::Cancelled {
                    after_ms: when.duration_since(started).as_millis() as u64,
                };
                stop_unit(&mut tracked, &mut kind, unit, reason);
            }
            if let Some(limit) = deadline
                && now >= limit
            {
                let after_ms = limit.duration_since(started).as_millis() as u64;
                for i in 0..tracked.len() {
                    stop_unit(&mut tracked, &mut kind, i, Status::TimedOut { after_ms });
                }
            }
            continue;
        };
        let unit = &mut tracked[index];
        match body {
            Body::Line(text) => {
                unit.first_line.get_or_insert(at);
                if options.echo {
                    println!("{text}");
                }
            }
            Body::Event(event) => {
                if matches!(event.kind, EventKind::Iteration(_)) {
                    unit.first_line.get_or_insert(at);
                }
                unit.first_event.get_or_insert_with(|| event.clone());
                events.push(event);
            }
            Body::Ended(status) => {
                let status = match unit.stopped_because.take() {
                    Some(reason) if status != Status::Completed => reason,
                    _ => status,
                };
                let failure = status.failure().filter(|_| !failed && options.fail_fast);
                unit.status = Some(status);
                if let Some(failure) = failure {
                    failed = true;
                    stop_others(&mut tracked, &mut kind, index, failure);
                }
            }
        }
        if options.snapshot && snapshot.is_none() && tracked.iter().all(|t| t.first_line.is_some())
        {
            snapshot = observer::snapshot(host_pid).ok();
        }
    }
    let summary = kind.finish();
    let units = tracked
        .into_iter()
        .enumerate()
        .map(|(index, t)| UnitReport {
            pid: t.first_event.as_ref().map(|e| e.pid),
            tid: t.first_event.as_ref().map(|e| e.tid),
            first_line_ms: t
                .first_line
                .map(|f| f.duration_since(t.asked).as_secs_f64() * 1e3),
            status: t.status.unwrap_or_else(|| {
                Status::Crashed(Crash::Unreported("it ended without reporting how".into()))
            }),
            name: t.name,
            detail: kind.kind.detail(index),
        })
        .collect();
    Ok(Run {
        kind: kind.kind.name().to_string(),
        host_pid,
        summary,
        units,
        timeline: Timeline::new(events),
        snapshot,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// Stops unit `index` (if still running) for `reason`, and wakes it.
fn stop_unit<K: Kind + ?Sized>(
    tracked: &mut [Tracked],
    kind: &mut Finishing<K>,
    index: usize,
    reason: Status,
) {
    let unit = &mut tracked[index];
    if unit.status.is_some() || unit.stopped_because.is_some() {
        return;
    }
    unit.stopped_because = Some(reason);
    unit.stop.set();
    kind.kind.interrupt(index);
}

/// Stops every unit but `failed`, saying why.
fn stop_others<K: Kind + ?Sized>(
    tracked: &mut [Tracked],
    kind: &mut Finishing<K>,
    failed: usize,
    failure: Failure,
) {
    let unit = tracked[failed].name.clone();
    for i in (0..tracked.len()).filter(|&i| i != failed) {
        let reason = Status::StoppedBecause {
            unit: unit.clone(),
            failure,
        };
        stop_unit(tracked, kind, i, reason);
    }
}

#[cfg(test)]
mod tests;
