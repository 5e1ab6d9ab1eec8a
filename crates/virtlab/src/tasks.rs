//! Chapter 3: coroutines. The shared [`Work`] run as N tokio tasks on one thread; how many
//! sleeping tasks (and OS threads) a machine holds; the blocking trap that stalls every task
//! when one computes; and tasks that time out or are cancelled, reported rather than lost.
//!
//! Every runtime here runs on a fresh std thread of its own, so it works from any notebook cell,
//! including after a cell with a top-level `.await` (evcxr then runs cells inside its own tokio
//! runtime, where a nested `block_on` panics).

use crate::cost::{CostPoint, Round, sweep};
use crate::display::{Figure, Table};
use crate::error::check_range;
use crate::observer::{self, Snapshot};
use crate::plot::LineChart;
use crate::timeline::{Event, EventKind, Timeline, thread_id};
use crate::work::{Work, burn};
use crate::{Error, Result, strict, units};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The most tasks one run or scale step may start.
pub const MAX_TASKS: usize = 1_000_000_000;
/// A generous upper bound of what one sleeping task holds (its future, header and timer entry),
/// used to refuse counts that cannot fit before allocating anything.
pub const TASK_BYTES_ESTIMATE: u64 = 1024;
/// What one parked OS thread holds at least: its resident stack pages and kernel structures.
pub const THREAD_BYTES_ESTIMATE: u64 = 32 * 1024;

/// Runs `f` on a fresh thread with a runtime built by `build`, returning what `f` returns.
/// Panics inside tasks are supervised: they come back through their JoinHandles.
fn on_own_runtime<T: Send + 'static>(
    build: fn() -> std::io::Result<tokio::runtime::Runtime>,
    f: impl AsyncFnOnce() -> T + Send + 'static,
) -> Result<T> {
    std::thread::Builder::new()
        .name("virtlab-runtime".into())
        .spawn(move || -> Result<T> {
            let runtime = build().map_err(|e| {
                Error::new(
                    format!("could not start a tokio runtime ({e})"),
                    "free some memory or threads and try again",
                )
            })?;
            strict::supervise(|| runtime.block_on(f())).map_err(|message| {
                Error::new(
                    format!("the runtime's thread panicked: {message}"),
                    "report this as a bug in virtlab",
                )
            })
        })
        .map_err(|e| Error::io("starting the runtime's thread", e))?
        .join()
        .map_err(|_| {
            Error::new(
                "the runtime's thread was lost",
                "report this as a bug in virtlab",
            )
        })?
}

fn current_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

fn multi_thread_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
}

// ---- The task executor ----------------------------------------------------------------------

/// How a task run behaves beyond its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Print each task's line as it happens.
    pub echo: bool,
    /// Give every task at most this long; a task still running then is reported as timed out.
    pub timeout: Option<Duration>,
    /// Cancel task number `.0` (1-based) this long after the start.
    pub cancel: Option<(usize, Duration)>,
    /// Make task number `.0` (1-based) panic at iteration `.1`.
    pub panic: Option<(usize, u32)>,
}

impl Options {
    /// Echo on, nothing else: the essay's demo.
    pub fn demo() -> Options {
        Options {
            echo: true,
            ..Options::default()
        }
    }
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum TaskStatus {
    Completed,
    TimedOut(String),
    Cancelled(String),
    Panicked(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskReport {
    pub name: String,
    pub status: TaskStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRun {
    pub pid: u32,
    /// The OS thread every task ran on.
    pub runtime_tid: u64,
    /// Threads of this process just before the runtime started, and while all tasks were alive.
    pub threads_before: usize,
    pub threads_during: usize,
    pub tasks: Vec<TaskReport>,
    pub timeline: Timeline,
    pub snapshot: Option<Snapshot>,
    pub wall_ms: f64,
}

impl TaskRun {
    pub fn tree(&self) -> Result<Snapshot> {
        observer::taken(&self.snapshot)
    }

    /// The proof: one OS thread for every task, and a thread count that grew only by the runtime's own thread.
    pub fn table(&self) -> Table {
        let tids = self.timeline.os_threads();
        let mut t = Table::new(
            format!(
                "{} tasks, {} OS thread(s) ran them (tid {}); threads in this process: {} before, {} during",
                self.tasks.len(),
                tids.len(),
                self.runtime_tid,
                self.threads_before,
                self.threads_during
            ),
            ["task", "ended"],
        );
        for task in &self.tasks {
            let ended = match &task.status {
                TaskStatus::Completed => "completed".to_string(),
                TaskStatus::TimedOut(d) => format!("timed out: {d}"),
                TaskStatus::Cancelled(d) => format!("cancelled: {d}"),
                TaskStatus::Panicked(d) => format!("panicked: {d}"),
            };
            t.row([task.name.clone(), ended]);
        }
        t
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// The word for an iteration in the essay's demo: One, Two, …
fn word(i: u32) -> String {
    const WORDS: [&str; 10] = [
        "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
    ];
    WORDS
        .get(i as usize)
        .map_or_else(|| (i + 1).to_string(), |w| w.to_string())
}

/// `work` as a task: the same events as [`Work::run`], but its pauses are `.await`ed so other
/// tasks run meanwhile. CPU burn, if any, blocks the thread (that is the point of the trap).
async fn run_work(
    work: Work,
    echo: bool,
    panic_at: Option<u32>,
    events: std::sync::mpsc::Sender<Event>,
) {
    let emit = |kind| {
        let event = Event::now(&work.name, kind);
        let _ = events.send(event.clone());
        event
    };
    emit(EventKind::Start);
    for i in 0..work.iterations {
        let event = emit(EventKind::Iteration(i));
        if echo {
            println!("{} ({}, tid {})", word(i), work.name, event.tid);
        }
        if panic_at == Some(i) {
            panic!("{} panicked on purpose at iteration {i}", work.name);
        }
        burn(work.burn);
        if i + 1 < work.iterations {
            tokio::time::sleep(work.interval).await;
        }
    }
    emit(EventKind::End);
}

fn process_threads() -> usize {
    observer::snapshot(std::process::id())
        .ok()
        .map_or(0, |s| s.processes[0].threads.len())
}

/// Runs `work` as `tasks` tokio tasks named `<work.name>-1` … on one current-thread runtime.
pub fn run(work: &Work, tasks: usize, options: Options) -> Result<TaskRun> {
    check_range("the number of tasks", tasks, 1, MAX_TASKS)?;
    check_memory("tasks", tasks, TASK_BYTES_ESTIMATE)?;
    let works: Vec<Work> = (1..=tasks)
        .map(|i| work.named(&format!("{}-{i}", work.name)))
        .collect::<Result<_>>()?;
    let threads_before = process_threads();
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    let (reports, threads_during, snapshot, runtime_tid) =
        on_own_runtime(current_thread_runtime, async move || {
            let runtime_tid = thread_id();
            let mut handles = Vec::new();
            for (index, w) in works.into_iter().enumerate() {
                let name = w.name.clone();
                let panic_at = options
                    .panic
                    .filter(|(n, _)| *n == index + 1)
                    .map(|(_, at)| at);
                handles.push((
                    name,
                    tokio::spawn(run_work(w, options.echo, panic_at, tx.clone())),
                ));
            }
            drop(tx);
            // Let every task reach its first pause, then look at the process.
            tokio::task::yield_now().await;
            let snapshot = observer::snapshot(std::process::id()).ok();
            let threads_during = snapshot
                .as_ref()
                .map_or(0, |s| s.processes[0].threads.len());
            if let Some((n, after)) = options.cancel
                && let Some((_, handle)) = handles.get(n.wrapping_sub(1))
            {
                let abort = handle.abort_handle();
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    abort.abort();
                });
            }
            let mut reports = Vec::new();
            for (name, handle) in handles {
                let status = match options.timeout {
                    Some(limit) => match tokio::time::timeout_at(
                        tokio::time::Instant::from_std(started + limit),
                        handle,
                    )
                    .await
                    {
                        Ok(joined) => joined_status(joined, options.cancel),
                        Err(_) => TaskStatus::TimedOut(format!(
                            "still running {} ms after the start",
                            limit.as_millis()
                        )),
                    },
                    None => joined_status(handle.await, options.cancel),
                };
                reports.push(TaskReport { name, status });
            }
            (reports, threads_during, snapshot, runtime_tid)
        })?;
    Ok(TaskRun {
        pid: std::process::id(),
        runtime_tid,
        threads_before,
        threads_during,
        tasks: reports,
        timeline: Timeline::new(rx.into_iter().collect()),
        snapshot,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

fn joined_status(
    joined: std::result::Result<(), tokio::task::JoinError>,
    cancel: Option<(usize, Duration)>,
) -> TaskStatus {
    match joined {
        Ok(()) => TaskStatus::Completed,
        Err(e) if e.is_cancelled() => {
            TaskStatus::Cancelled(cancel.map_or("aborted".into(), |(_, after)| {
                format!("aborted {} ms after the start", after.as_millis())
            }))
        }
        Err(e) => TaskStatus::Panicked(
            e.into_panic()
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "a panic without a message".into()),
        ),
    }
}

/// Refuses `count` units of `bytes_each` when they would need more than half the available memory.
fn check_memory(what: &str, count: usize, bytes_each: u64) -> Result<()> {
    let available = crate::machine::available_memory();
    let needed = count as u64 * bytes_each;
    if needed > available / 2 {
        return Err(Error::new(
            format!(
                "{count} {what} would need about {} (at {} each), more than half of the {} available",
                units::bytes(needed),
                units::bytes(bytes_each),
                units::bytes(available)
            ),
            format!("use at most {} {what}", available / 2 / bytes_each),
        ));
    }
    Ok(())
}

// ---- How many fit: tasks against threads ----------------------------------------------------

/// `count` units that each slept `sleep_ms`: the wall time for all of them and the memory each held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalePoint {
    pub count: usize,
    pub wall_ms: f64,
    /// Memory each unit added: heap bytes for tasks, resident bytes for threads.
    pub bytes_each: f64,
    /// This process's resident memory with all units alive: the run's peak.
    pub peak_rss_bytes: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScaling {
    pub sleep_ms: u64,
    pub tasks: Vec<ScalePoint>,
    pub threads: Vec<ScalePoint>,
    /// Why the thread series stops where it does.
    pub thread_limit: String,
}

/// Counts 1, 10, 100, … up to `max`.
pub fn decades(max: usize) -> Vec<usize> {
    std::iter::successors(Some(1usize), |n| n.checked_mul(10))
        .take_while(|n| *n <= max)
        .collect()
}

/// The most threads worth starting here: the OS limits and a memory estimate, capped at 10 000.
fn thread_limit() -> (usize, String) {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    let mut limit = (10_000, "virtlab's cap of 10 000 threads".to_string());
    if let Some(max) = read("/proc/sys/kernel/threads-max").map(|m| m / 2)
        && max < limit.0
    {
        limit = (max, "half the kernel's threads-max".into());
    }
    let by_memory = (crate::machine::available_memory() / 2 / THREAD_BYTES_ESTIMATE) as usize;
    if by_memory < limit.0 {
        limit = (by_memory, "half the available memory".into());
    }
    limit
}

/// Starts 1, 10, … `max_tasks` tasks that each sleep `sleep_ms`, and (if `with_threads`) the same
/// with OS threads up to what this machine allows; reports wall time and memory per unit.
pub fn scale(max_tasks: usize, sleep_ms: u64, with_threads: bool) -> Result<TaskScaling> {
    check_range("the number of tasks", max_tasks, 1, MAX_TASKS)?;
    check_range("the sleep (ms)", sleep_ms, 1, 60_000)?;
    check_memory("tasks", max_tasks, TASK_BYTES_ESTIMATE)?;
    let sleep = Duration::from_millis(sleep_ms);
    let mut tasks = Vec::new();
    for n in decades(max_tasks) {
        tasks.push(sleeping_tasks(n, sleep)?);
    }
    let (limit, why) = if with_threads {
        thread_limit()
    } else {
        (0, "threads not measured".to_string())
    };
    let mut threads = Vec::new();
    for n in decades(limit.min(max_tasks)) {
        threads.push(sleeping_threads(n, sleep)?);
    }
    let last = decades(limit.min(max_tasks)).last().copied().unwrap_or(0);
    Ok(TaskScaling {
        sleep_ms,
        tasks,
        threads,
        thread_limit: format!("threads stop at {last} ({why})"),
    })
}

/// Heap bytes in use: what tasks (which live on the heap) add, unaffected by the allocator
/// reusing memory it already holds. glibc's mallinfo2; resident memory elsewhere.
fn heap_in_use() -> f64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as f64
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        crate::threads::resident_bytes().map_or(f64::NAN, |b| b as f64)
    }
}

/// Resident memory, for threads (their stacks are mapped outside the heap).
fn resident_bytes() -> f64 {
    crate::threads::resident_bytes().map_or(f64::NAN, |b| b as f64)
}

fn sleeping_tasks(n: usize, sleep: Duration) -> Result<ScalePoint> {
    on_own_runtime(current_thread_runtime, async move || {
        let before = heap_in_use();
        let started = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| tokio::spawn(tokio::time::sleep(sleep)))
            .collect();
        // All are spawned and parked on their timers once the spawner yields.
        tokio::task::yield_now().await;
        let during = heap_in_use();
        let peak_rss_bytes = resident_bytes();
        for h in handles {
            let _ = h.await;
        }
        ScalePoint {
            count: n,
            wall_ms: started.elapsed().as_secs_f64() * 1e3,
            bytes_each: (during - before) / n as f64,
            peak_rss_bytes,
        }
    })
}

fn sleeping_threads(n: usize, sleep: Duration) -> Result<ScalePoint> {
    let before = resident_bytes();
    let started = Instant::now();
    // Each thread waits at the gate until all exist, so the memory is read with all of them alive.
    let gate = std::sync::RwLock::new(());
    let hold = gate.write().unwrap_or_else(|e| e.into_inner());
    let mut during = f64::NAN;
    std::thread::scope(|scope| -> Result<()> {
        let mut refused = None;
        for i in 0..n {
            let gate = &gate;
            let spawned = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(scope, move || {
                    drop(gate.read());
                    std::thread::sleep(sleep);
                });
            if let Err(e) = spawned {
                refused = Some(Error::new(
                    format!("the OS refused thread {} of {n} ({e})", i + 1),
                    "ask for fewer threads",
                ));
                break;
            }
        }
        during = resident_bytes();
        drop(hold);
        refused.map_or(Ok(()), Err)
    })?;
    Ok(ScalePoint {
        count: n,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
        bytes_each: (during - before) / n as f64,
        peak_rss_bytes: during,
    })
}

impl TaskScaling {
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Units that each sleep {} ms ({})",
                self.sleep_ms, self.thread_limit
            ),
            [
                "unit",
                "count",
                "wall time",
                "memory each",
                "peak RSS of the process",
            ],
        );
        for (name, points) in [("task", &self.tasks), ("thread", &self.threads)] {
            for p in points {
                t.row([
                    name.to_string(),
                    p.count.to_string(),
                    format!("{:.1} ms", p.wall_ms),
                    units::bytes(p.bytes_each.max(0.0) as u64),
                    units::bytes(p.peak_rss_bytes.max(0.0) as u64),
                ]);
            }
        }
        t
    }

    pub fn plot(&self) -> Result<Figure> {
        let line = |points: &[ScalePoint]| {
            points
                .iter()
                .map(|p| (p.count as f64, p.wall_ms))
                .collect::<Vec<_>>()
        };
        LineChart::new(format!(
            "Starting units that each sleep {} ms",
            self.sleep_ms
        ))
        .x_label("units started together")
        .y_label("wall time until all are done (ms)")
        .log_x()
        .log_y()
        .series("tokio tasks", line(&self.tasks))
        .series("OS threads", line(&self.threads))
        .dashed_series(
            "the sleep itself",
            self.tasks
                .iter()
                .map(|p| (p.count as f64, self.sleep_ms as f64)),
        )
        .render()
    }

    /// Memory each unit held, on log axes (heap bytes per task, resident bytes per thread).
    pub fn memory_plot(&self) -> Result<Figure> {
        // A log axis cannot show zero: counts where a unit added nothing measurable are left out.
        let line = |points: &[ScalePoint]| {
            points
                .iter()
                .filter(|p| p.bytes_each > 0.0)
                .map(|p| (p.count as f64, p.bytes_each))
                .collect::<Vec<_>>()
        };
        LineChart::new("Memory each sleeping unit holds")
            .x_label("units alive together")
            .y_label("bytes per unit")
            .log_x()
            .log_y()
            .series("tokio task (heap)", line(&self.tasks))
            .series("OS thread (resident)", line(&self.threads))
            .render()
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// For each count, `repeats` rounds of spawning that many tasks on one runtime: the median time
/// from the spawn call to the task's first poll, and the heap memory each parked task holds.
pub fn spawn_cost(counts: &[usize], repeats: usize) -> Result<Vec<CostPoint>> {
    let check = |n| {
        check_range("the number of tasks", n, 1, MAX_TASKS)?;
        check_memory("tasks", n, TASK_BYTES_ESTIMATE)
    };
    sweep(counts, repeats, check, |n| {
        on_own_runtime(current_thread_runtime, async move || {
            let before = heap_in_use();
            // Tasks wait behind this gate, so all are parked together when memory is read.
            let (gate_tx, gate_rx) = tokio::sync::watch::channel(false);
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let asked = Instant::now();
                    let mut gate = gate_rx.clone();
                    tokio::spawn(async move {
                        let running = asked.elapsed().as_secs_f64() * 1e3;
                        let _ = gate.wait_for(|open| *open).await;
                        running
                    })
                })
                .collect();
            tokio::task::yield_now().await;
            let during = heap_in_use();
            let _ = gate_tx.send(true);
            let mut latencies_ms = Vec::with_capacity(n);
            for h in handles {
                latencies_ms.extend(h.await.ok());
            }
            Round {
                latencies_ms,
                bytes_each: vec![(during - before) / n as f64],
            }
        })
    })
}

// ---- The blocking trap ------------------------------------------------------------------------

/// Where the CPU-bound work runs while a ticker task measures how late it wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setup {
    /// The ticker alone on a current-thread runtime.
    Alone,
    /// A task on the same current-thread runtime computes without ever awaiting.
    BlockingTask,
    /// The computation is handed to `spawn_blocking` (tokio's pool of blocking threads).
    SpawnBlocking,
    /// A multi-thread runtime: the computing task holds one worker, the ticker uses another.
    MultiThread,
}

impl Setup {
    pub const ALL: [Setup; 4] = [
        Setup::Alone,
        Setup::BlockingTask,
        Setup::SpawnBlocking,
        Setup::MultiThread,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Setup::Alone => "ticker alone",
            Setup::BlockingTask => "CPU work in a task (blocks the thread)",
            Setup::SpawnBlocking => "CPU work in spawn_blocking",
            Setup::MultiThread => "multi-thread runtime",
        }
    }
}

/// One setup's ticker: how late each wake-up was (ms), sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrapResult {
    pub setup: Setup,
    pub lateness_ms: Vec<f64>,
}

impl TrapResult {
    pub fn percentile(&self, q: f64) -> f64 {
        if self.lateness_ms.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lateness_ms.len() - 1) as f64 * q / 100.0).round() as usize;
        self.lateness_ms[i]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockingTrap {
    pub tick_ms: u64,
    pub duration_ms: u64,
    /// How long the CPU-bound work runs between its (non-)yields.
    pub burn_ms: u64,
    pub results: Vec<TrapResult>,
}

/// A ticker wants to wake every `tick_ms` for `duration_ms`; meanwhile CPU work burns in
/// `burn_ms` slices, placed as each [`Setup`] says. Returns each setup's lateness distribution.
pub fn blocking_trap(tick_ms: u64, duration_ms: u64, burn_ms: u64) -> Result<BlockingTrap> {
    check_range("the tick (ms)", tick_ms, 1, 1000)?;
    check_range("the duration (ms)", duration_ms, tick_ms * 5, 60_000)?;
    check_range("the CPU slice (ms)", burn_ms, 1, 1000)?;
    let mut results = Vec::new();
    for setup in Setup::ALL {
        let build = if setup == Setup::MultiThread {
            multi_thread_runtime
        } else {
            current_thread_runtime
        };
        let mut lateness = on_own_runtime(build, async move || {
            let total = Duration::from_millis(duration_ms);
            let slice = Duration::from_millis(burn_ms);
            // One schedule for both: the ticker's first tick is due one tick after `start`,
            // and the computation runs from `start` until `until`.
            let start = Instant::now();
            let until = start + total;
            let ticker = tokio::spawn(ticker(start, Duration::from_millis(tick_ms), total));
            let cpu = match setup {
                Setup::Alone => None,
                // Computes a slice, then yields: other tasks get the thread only between slices.
                Setup::BlockingTask | Setup::MultiThread => Some(tokio::spawn(async move {
                    while Instant::now() < until {
                        burn(slice);
                        tokio::task::yield_now().await;
                    }
                })),
                Setup::SpawnBlocking => Some(tokio::task::spawn_blocking(move || {
                    while Instant::now() < until {
                        burn(slice);
                    }
                })),
            };
            let lateness = ticker.await.unwrap_or_default();
            if let Some(cpu) = cpu {
                let _ = cpu.await;
            }
            lateness
        })?;
        lateness.sort_by(f64::total_cmp);
        results.push(TrapResult {
            setup,
            lateness_ms: lateness,
        });
    }
    Ok(BlockingTrap {
        tick_ms,
        duration_ms,
        burn_ms,
        results,
    })
}

/// Sleeps until each planned tick after `start` and records how late it woke (ms).
async fn ticker(start: Instant, tick: Duration, total: Duration) -> Vec<f64> {
    let mut lateness = Vec::new();
    let mut planned = start + tick;
    while planned < start + total {
        tokio::time::sleep_until(tokio::time::Instant::from_std(planned)).await;
        lateness.push(
            Instant::now()
                .saturating_duration_since(planned)
                .as_secs_f64()
                * 1e3,
        );
        // A late tick does not shift the schedule: the next one is still due at its time.
        planned += tick;
        while planned < Instant::now() {
            planned += tick;
        }
    }
    lateness
}

impl BlockingTrap {
    /// The median lateness of one setup's ticks (ms).
    pub fn median(&self, setup: Setup) -> f64 {
        self.results
            .iter()
            .find(|r| r.setup == setup)
            .map_or(f64::NAN, |r| r.percentile(50.0))
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "How late a {} ms ticker wakes (CPU work in {} ms slices, {} ms in all)",
                self.tick_ms, self.burn_ms, self.duration_ms
            ),
            ["setup", "ticks", "median", "p90", "max"],
        );
        for r in &self.results {
            t.row([
                r.setup.name().to_string(),
                r.lateness_ms.len().to_string(),
                format!("{:.2} ms", r.percentile(50.0)),
                format!("{:.2} ms", r.percentile(90.0)),
                format!("{:.2} ms", r.percentile(100.0)),
            ]);
        }
        t
    }

    /// Each setup's lateness distribution: percentile on x, lateness on a log y axis.
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("The blocking trap: how late a ticker task wakes")
            .x_label("percentile of ticks")
            .y_label("ms late (log)")
            .log_y();
        for r in &self.results {
            // A log axis cannot show 0; a wake-up on time is drawn at 1 µs.
            let points = (0..=20).map(|i| (i as f64 * 5.0, r.percentile(i as f64 * 5.0).max(1e-3)));
            chart = chart.series(r.setup.name(), points);
        }
        chart.render()
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_print_in_essay_order_on_one_thread() {
        let work = Work::new("task", 2, 50).unwrap();
        let run = run(&work, 3, Options::default()).unwrap();
        let kinds: Vec<(String, EventKind)> = run
            .timeline
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Iteration(_)))
            .map(|e| (e.lane.clone(), e.kind))
            .collect();
        // One One One Two Two Two: every task's first line comes before any task's second.
        let firsts: Vec<usize> = kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| k.1 == EventKind::Iteration(0))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(firsts, vec![0, 1, 2], "{kinds:?}");
        assert_eq!(
            run.timeline.os_threads().len(),
            1,
            "all tasks on one OS thread"
        );
        assert_eq!(run.timeline.os_threads()[0].1, run.runtime_tid);
        assert!(run.tasks.iter().all(|t| t.status == TaskStatus::Completed));
        if cfg!(target_os = "linux") {
            assert!(
                run.threads_during <= run.threads_before + 1,
                "{} -> {}",
                run.threads_before,
                run.threads_during
            );
        }
    }

    #[test]
    fn timed_out_cancelled_and_panicked_tasks_are_reported() {
        let work = Work::new("task", 20, 50).unwrap();
        let options = Options {
            timeout: Some(Duration::from_millis(300)),
            cancel: Some((1, Duration::from_millis(100))),
            panic: Some((2, 1)),
            echo: false,
        };
        let run = run(&work, 3, options).unwrap();
        assert!(
            matches!(run.tasks[0].status, TaskStatus::Cancelled(_)),
            "{:?}",
            run.tasks[0]
        );
        assert!(
            matches!(&run.tasks[1].status, TaskStatus::Panicked(m) if m.contains("panicked on purpose")),
            "{:?}",
            run.tasks[1]
        );
        assert!(
            matches!(run.tasks[2].status, TaskStatus::TimedOut(_)),
            "{:?}",
            run.tasks[2]
        );
        assert!(
            run.wall_ms < 1000.0,
            "a timed-out task must not be waited for"
        );
    }

    #[test]
    fn works_inside_another_tokio_runtime() {
        let outer = tokio::runtime::Builder::new_multi_thread()
            .enable_time()
            .build()
            .unwrap();
        let work = Work::new("task", 1, 1).unwrap();
        let run = outer
            .block_on(async { run(&work, 2, Options::default()) })
            .unwrap();
        assert_eq!(run.tasks.len(), 2);
    }

    #[test]
    fn bad_counts_and_impossible_memory_are_refused() {
        let work = Work::new("task", 1, 1).unwrap();
        assert!(
            run(&work, 0, Options::default())
                .unwrap_err()
                .problem()
                .contains("number of tasks cannot be 0")
        );
        let err = check_memory("tasks", usize::MAX / 2048, TASK_BYTES_ESTIMATE).unwrap_err();
        assert!(err.problem().contains("more than half of the"), "{err}");
        assert!(scale(0, 10, true).is_err());
        assert!(
            scale(10, 0, true)
                .unwrap_err()
                .problem()
                .contains("sleep (ms) cannot be 0")
        );
        assert!(
            blocking_trap(10, 10, 5)
                .unwrap_err()
                .problem()
                .contains("duration")
        );
    }

    #[test]
    fn scale_measures_tasks_and_threads_at_each_decade() {
        let scaling = scale(100, 20, true).unwrap();
        assert!(scale(10, 5, false).unwrap().threads.is_empty());
        assert_eq!(
            scaling.tasks.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 10, 100]
        );
        assert_eq!(
            scaling.threads.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 10, 100]
        );
        assert!(
            scaling
                .tasks
                .iter()
                .chain(&scaling.threads)
                .all(|p| p.wall_ms >= 20.0)
        );
        assert!(scaling.plot().unwrap().svg().contains("tokio tasks"));
        assert!(
            scaling
                .memory_plot()
                .unwrap()
                .svg()
                .contains("OS thread (resident)")
        );
        assert!(scaling.tasks.iter().all(|p| p.peak_rss_bytes > 0.0));
        assert_eq!(decades(5), vec![1]);
    }

    #[test]
    fn blocking_trap_measures_every_setup() {
        let trap = blocking_trap(5, 100, 20).unwrap();
        assert_eq!(trap.results.len(), 4);
        assert!(trap.results.iter().all(|r| !r.lateness_ms.is_empty()));
        assert!(trap.plot().unwrap().svg().contains("spawn_blocking"));
        assert!(trap.median(Setup::Alone).is_finite());
    }

    #[test]
    fn task_spawn_cost_measures_every_count() {
        let points = spawn_cost(&[1, 100], 2).unwrap();
        assert_eq!(
            points.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 100]
        );
        assert!(
            points
                .iter()
                .all(|p| p.first_line_ms >= 0.0 && p.rss_bytes.is_finite())
        );
        assert!(spawn_cost(&[0], 1).is_err());
    }

    #[test]
    fn words_count_like_the_essay() {
        assert_eq!(word(0), "One");
        assert_eq!(word(1), "Two");
        assert_eq!(word(10), "11");
    }
}
