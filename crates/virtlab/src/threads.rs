//! Chapter 2: one process, many threads. The shared [`Work`] run by N OS threads; what a thread
//! costs; CPU-bound scaling with std threads and rayon against Amdahl's law (and Python's
//! threads, held back by its GIL); and the price of sharing one counter between threads.

use crate::cost::{CostPoint, Round, median, sweep};
use crate::display::{Figure, Table};
use crate::error::check_range;
use crate::observer::{self, Snapshot};
use crate::plot::LineChart;
use crate::timeline::{Event, EventKind, Timeline, thread_id};
use crate::work::Work;
use crate::{Error, Result, machine, strict};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};
use std::time::Instant;

/// The most threads one run starts.
pub const MAX_THREADS: usize = 10_000;

/// Refuses thread counts outside 1..=MAX_THREADS before anything starts.
pub fn check_thread_count(threads: usize) -> Result<usize> {
    check_range("the number of threads", threads, 1, MAX_THREADS)
}

/// How a thread run behaves beyond its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Print the essay's line from each thread as it happens.
    pub echo: bool,
    /// Snapshot this process once every thread has printed its first line.
    pub snapshot: bool,
    /// Make thread number `.0` (1-based) panic at iteration `.1`, on purpose.
    pub panic: Option<(usize, u32)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            echo: true,
            snapshot: true,
            panic: None,
        }
    }
}

/// One thread of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadReport {
    pub name: String,
    pub tid: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadRun {
    pub pid: u32,
    /// The thread that started the others (a notebook cell's thread, or the CLI's main thread).
    pub caller_tid: u64,
    pub threads: Vec<ThreadReport>,
    pub timeline: Timeline,
    pub snapshot: Option<Snapshot>,
    pub wall_ms: f64,
}

impl ThreadRun {
    /// This process's snapshot, taken mid-run.
    pub fn tree(&self) -> Result<Snapshot> {
        observer::taken(&self.snapshot)
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "{} threads in one process (pid {})",
                self.threads.len(),
                self.pid
            ),
            ["thread", "OS thread id"],
        );
        t.row(["(caller)".to_string(), self.caller_tid.to_string()]);
        for th in &self.threads {
            t.row([th.name.clone(), th.tid.to_string()]);
        }
        t
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

enum Message {
    Event(Event),
    Failed(String, u64, String),
}

/// The name of this process, as `ps` shows it.
fn process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| "this process".into())
}

/// Runs `work` on `threads` OS threads named `<work.name>-1` … in this process. A thread that
/// panics fails the run with an error naming it; the others stop at their next pause.
pub fn run(work: &Work, threads: usize, options: Options) -> Result<ThreadRun> {
    check_thread_count(threads)?;
    let works: Vec<Work> = (1..=threads)
        .map(|i| work.named(&format!("{}-{i}", work.name)))
        .collect::<Result<_>>()?;
    let started = Instant::now();
    let pid = std::process::id();
    let process = process_name();
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Message>();
    let mut events = Vec::new();
    let mut reports = Vec::new();
    let mut snapshot = None;
    let mut failure = None;
    std::thread::scope(|scope| {
        let mut handles = Vec::new();
        for (index, w) in works.iter().enumerate() {
            let (tx, stop, process) = (tx.clone(), &stop, process.as_str());
            let panic_at = options
                .panic
                .filter(|(n, _)| *n == index + 1)
                .map(|(_, at)| at);
            let body = move || {
                let tid = thread_id();
                let outcome = strict::supervise(|| {
                    w.run(
                        |e| {
                            if let EventKind::Iteration(i) = e.kind {
                                if options.echo {
                                    println!(
                                        "{i}: {} (tid {tid}) in {process} pid {}",
                                        w.name, e.pid
                                    );
                                }
                                if panic_at == Some(i) {
                                    panic!("{} panicked on purpose at iteration {i}", w.name);
                                }
                            }
                            let _ = tx.send(Message::Event(e.clone()));
                        },
                        || !stop.load(Ordering::Relaxed),
                    )
                });
                if let Err(message) = outcome {
                    let _ = tx.send(Message::Failed(w.name.clone(), tid, message));
                }
                tid
            };
            match std::thread::Builder::new()
                .name(w.name.clone())
                .spawn_scoped(scope, body)
            {
                Ok(handle) => handles.push((w.name.clone(), handle)),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    failure = Some(Error::new(
                        format!(
                            "the OS refused thread {} of {threads} ({e}); the threads already started were stopped",
                            index + 1
                        ),
                        "run fewer threads",
                    ));
                    break;
                }
            }
        }
        drop(tx);
        let mut first_seen = std::collections::HashSet::new();
        for message in &rx {
            match message {
                Message::Event(e) => {
                    if matches!(e.kind, EventKind::Iteration(0)) {
                        first_seen.insert(e.lane.clone());
                        if options.snapshot && snapshot.is_none() && first_seen.len() == threads {
                            snapshot = observer::snapshot(pid).ok();
                        }
                    }
                    events.push(e);
                }
                Message::Failed(name, tid, message) => {
                    stop.store(true, Ordering::Relaxed);
                    failure.get_or_insert(Error::new(
                        format!("thread {name} (tid {tid}) panicked: {message}; the other threads were stopped"),
                        "read the panic message; a thread that panics on purpose (Options::panic) ends this way",
                    ));
                }
            }
        }
        // Panics were caught inside the threads, so a join only fails if one could not be caught.
        reports = handles
            .into_iter()
            .map(|(name, h)| ThreadReport {
                name,
                tid: h.join().unwrap_or(0),
            })
            .collect();
    });
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(ThreadRun {
        pid,
        caller_tid: thread_id(),
        threads: reports,
        timeline: Timeline::new(events),
        snapshot,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// For each count, `repeats` rounds of starting that many threads together: the median time
/// from the spawn call to the thread running, and the resident memory each one adds.
pub fn spawn_cost(counts: &[usize], repeats: usize) -> Result<Vec<CostPoint>> {
    sweep(
        counts,
        repeats,
        |n| check_thread_count(n).map(drop),
        spawn_round,
    )
}

/// Spawn+join cost per thread, one value per round (µs): `n` threads that each record the
/// essay's line ("0: thread-1 pid 4242"), started and joined, as the Python peer does.
pub fn spawn_join_cost(n: usize, repeats: usize) -> Result<Vec<f64>> {
    check_thread_count(n)?;
    check_range("repeats", repeats, 1, 1000)?;
    let pid = std::process::id();
    let mut rounds = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let lines = Mutex::new(Vec::with_capacity(n));
        let started = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            for i in 0..n {
                let lines = &lines;
                let name = format!("thread-{}", i + 1);
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, move || {
                        lines
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("0: {name} pid {pid}"))
                    })
                    .map_err(|e| {
                        Error::new(
                            format!("the OS refused thread {} of {n} ({e})", i + 1),
                            "measure fewer threads at once",
                        )
                    })?;
            }
            Ok(())
        })?;
        rounds.push(started.elapsed().as_secs_f64() * 1e6 / n as f64);
        debug_assert_eq!(lines.into_inner().map(|l| l.len()).unwrap_or(0), n);
    }
    Ok(rounds)
}

/// Starts `n` threads that wait together; returns each one's spawn-to-running time in ms and,
/// where the OS reports it, the resident memory each added.
fn spawn_round(n: usize) -> Result<Round> {
    let before = resident_bytes();
    // Threads block on the read side until we drop the write guard: all stay alive together.
    let gate = Arc::new(RwLock::new(()));
    let hold = gate.write().unwrap_or_else(|e| e.into_inner());
    let (running_tx, running_rx) = mpsc::channel::<f64>();
    let mut handles = Vec::with_capacity(n);
    let mut refused = None;
    for i in 0..n {
        let (gate, running_tx) = (gate.clone(), running_tx.clone());
        let asked = Instant::now();
        let spawned = std::thread::Builder::new()
            .name(format!("cost-{i}"))
            .spawn(move || {
                let _ = running_tx.send(asked.elapsed().as_secs_f64() * 1e3);
                drop(gate.read());
            });
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                refused = Some(Error::new(
                    format!("the OS refused thread {} of {n} ({e})", i + 1),
                    "measure fewer threads at once",
                ));
                break;
            }
        }
    }
    let latencies: Vec<f64> = running_rx.iter().take(handles.len()).collect();
    let during = resident_bytes();
    drop(hold);
    for h in handles {
        let _ = h.join();
    }
    if let Some(error) = refused {
        return Err(error);
    }
    let rss_each = before
        .zip(during)
        .map(|(b, d)| (d as f64 - b as f64) / n as f64);
    Ok(Round {
        latencies_ms: latencies,
        bytes_each: rss_each.into_iter().collect(),
    })
}

/// This process's resident memory (Linux /proc), None elsewhere.
pub(crate) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page.max(1) as u64)
}

// ---- CPU-bound scaling -------------------------------------------------------------------

/// Counts how many of `samples` pseudo-random points fall inside the unit circle (a Monte
/// Carlo estimate of π/4): pure arithmetic, the same cost per sample, no shared memory.
pub fn monte_carlo_hits(seed: u64, samples: u64) -> u64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        // xorshift64*: fast and good enough for a uniform point cloud.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut hits = 0;
    for _ in 0..samples {
        let (x, y) = (next(), next());
        hits += (x * x + y * y <= 1.0) as u64;
    }
    hits
}

/// Which way the fixed work is split across threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Runner {
    /// One equal chunk per std thread.
    StdThreads,
    /// Eight chunks per thread on a rayon pool of that size (work stealing balances them).
    Rayon,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::StdThreads => "std threads",
            Runner::Rayon => "rayon",
        }
    }

    /// Runs `samples` split across `threads`; returns (hits, seconds).
    fn run(self, threads: usize, samples: u64) -> Result<(u64, f64)> {
        let started = Instant::now();
        let hits = match self {
            Runner::StdThreads => std::thread::scope(|scope| {
                let handles: Vec<_> = chunks(samples, threads)
                    .map(|(seed, n)| scope.spawn(move || monte_carlo_hits(seed, n)))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            }),
            Runner::Rayon => {
                use rayon::prelude::*;
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| {
                        Error::new(
                            format!("could not start a rayon pool of {threads} threads ({e})"),
                            "use fewer threads",
                        )
                    })?;
                let parts: Vec<(u64, u64)> = chunks(samples, threads * 8).collect();
                pool.install(|| {
                    parts
                        .par_iter()
                        .map(|&(seed, n)| monte_carlo_hits(seed, n))
                        .sum()
                })
            }
        };
        Ok((hits, started.elapsed().as_secs_f64()))
    }
}

/// `samples` split into `parts` (seed, count) chunks whose counts add up to `samples`.
fn chunks(samples: u64, parts: usize) -> impl Iterator<Item = (u64, u64)> {
    let parts = parts as u64;
    (0..parts).map(move |i| (i + 1, samples / parts + (i < samples % parts) as u64))
}

/// One thread count of a scaling run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalePoint {
    pub threads: usize,
    pub seconds: f64,
    pub speedup: f64,
    pub efficiency: f64,
}

fn points_from(times: &[(usize, f64)]) -> Vec<ScalePoint> {
    let single = times
        .iter()
        .find(|(t, _)| *t == 1)
        .map_or(f64::NAN, |(_, s)| *s);
    times
        .iter()
        .map(|&(threads, seconds)| {
            let speedup = single / seconds;
            ScalePoint {
                threads,
                seconds,
                speedup,
                efficiency: speedup / threads as f64,
            }
        })
        .collect()
}

/// Speed-up and efficiency of a fixed CPU-bound job on 1 … `max_threads` threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scaling {
    pub samples: u64,
    pub usable_cpus: usize,
    pub std_threads: Vec<ScalePoint>,
    pub rayon: Vec<ScalePoint>,
    /// Amdahl's parallel fraction p fitted to the std-thread speed-ups up to the CPU count.
    pub amdahl_p: f64,
    /// The same job in Python threads (relative speed-ups), or why it could not run.
    pub python: std::result::Result<PythonScaling, String>,
    /// π as estimated by the last run (a check that the work was done).
    pub pi_estimate: f64,
}

/// Thread counts for a scaling run: 1 … `max_threads`, then oversubscribed 2× and 4× the CPUs.
pub fn scale_counts(max_threads: usize, cpus: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = (1..=max_threads.min(cpus)).collect();
    counts.extend(
        [2 * cpus, 4 * cpus]
            .into_iter()
            .filter(|&n| n <= max_threads && n > cpus),
    );
    counts
}

/// Measures the scaling of a job sized to take about `single_thread_ms` on one thread, on the
/// thread counts of [`scale_counts`] (median of 3 runs each), with std threads and rayon, and
/// runs the same job in Python threads when `python3` is available.
pub fn scale(max_threads: usize, single_thread_ms: u64) -> Result<Scaling> {
    check_thread_count(max_threads)?;
    check_range("the single-thread time (ms)", single_thread_ms, 20, 60_000)?;
    let cpus = machine::usable_cpus();
    let samples = calibrate_samples(single_thread_ms);
    let counts = scale_counts(max_threads, cpus);
    let mut pi_estimate = 0.0;
    let mut measure = |runner: Runner| -> Result<Vec<ScalePoint>> {
        let mut times = Vec::new();
        for &t in &counts {
            let mut runs = Vec::new();
            for _ in 0..3 {
                let (hits, seconds) = runner.run(t, samples)?;
                pi_estimate = 4.0 * hits as f64 / samples as f64;
                runs.push(seconds);
            }
            times.push((t, median(&mut runs)));
        }
        Ok(points_from(&times))
    };
    let std_threads = measure(Runner::StdThreads)?;
    let rayon = measure(Runner::Rayon)?;
    if (pi_estimate - std::f64::consts::PI).abs() > 0.01 {
        return Err(Error::new(
            format!("the Monte Carlo job estimated π as {pi_estimate}"),
            "report this as a bug in virtlab: the work was not done right",
        ));
    }
    let fit: Vec<(usize, f64)> = std_threads
        .iter()
        .filter(|p| p.threads <= cpus)
        .map(|p| (p.threads, p.speedup))
        .collect();
    Ok(Scaling {
        samples,
        usable_cpus: cpus,
        std_threads,
        rayon,
        amdahl_p: fit_amdahl(&fit),
        python: python_scaling(&counts),
        pi_estimate,
    })
}

fn calibrate_samples(target_ms: u64) -> u64 {
    let probe = 200_000;
    let started = Instant::now();
    std::hint::black_box(monte_carlo_hits(1, std::hint::black_box(probe)));
    let per_sample = started.elapsed().as_secs_f64() / probe as f64;
    ((target_ms as f64 / 1e3) / per_sample.max(1e-10)) as u64
}

/// Amdahl's law: the speed-up on `n` threads when a fraction `p` of the work runs in parallel.
pub fn amdahl(p: f64, n: f64) -> f64 {
    1.0 / ((1.0 - p) + p / n)
}

/// The parallel fraction in [0, 1] that best fits the measured (threads, speed-up) pairs.
pub fn fit_amdahl(points: &[(usize, f64)]) -> f64 {
    let error = |p: f64| {
        points
            .iter()
            .map(|&(n, s)| (amdahl(p, n as f64) - s).powi(2))
            .sum::<f64>()
    };
    (0..=2000)
        .map(|i| i as f64 / 2000.0)
        .min_by(|a, b| error(*a).total_cmp(&error(*b)))
        .unwrap_or(1.0)
}

/// The Python peer's speed-ups and the Python version that produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PythonScaling {
    pub version: String,
    pub points: Vec<ScalePoint>,
}

#[derive(Deserialize)]
struct PythonPeerOutput {
    python: String,
    times: Vec<(usize, f64)>,
}

/// The same Monte Carlo loop in Python threads (bench/peers/threads_cpu.py), when python3 runs.
fn python_scaling(counts: &[usize]) -> std::result::Result<PythonScaling, String> {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers/threads_cpu.py");
    let counts_arg = counts
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .args(["--threads", &counts_arg, "--samples", "300000"])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            format!("python3 could not be started ({e}), so the GIL comparison is skipped")
        })?;
    if !output.status.success() {
        return Err(format!(
            "the Python peer failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let peer: PythonPeerOutput = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("the Python peer's output was not understood ({e})"))?;
    Ok(PythonScaling {
        version: peer.python,
        points: points_from(&peer.times),
    })
}

impl Scaling {
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Speed-up of a fixed CPU-bound job ({} samples; {} usable CPUs; Amdahl p = {:.3})",
                self.samples, self.usable_cpus, self.amdahl_p
            ),
            ["runner", "threads", "seconds", "speed-up", "efficiency"],
        );
        let (python_name, python) = match &self.python {
            Ok(p) => (format!("Python {} threads", p.version), p.points.as_slice()),
            Err(why) => {
                t.row(["Python threads".to_string(), format!("skipped: {why}")]);
                (String::new(), &[][..])
            }
        };
        for (name, points) in [
            ("std threads", &self.std_threads[..]),
            ("rayon", &self.rayon[..]),
            (python_name.as_str(), python),
        ] {
            for p in points {
                t.row([
                    name.to_string(),
                    p.threads.to_string(),
                    format!("{:.3}", p.seconds),
                    format!("{:.2}×", p.speedup),
                    format!("{:.0}%", 100.0 * p.efficiency),
                ]);
            }
        }
        t
    }

    pub fn plot(&self) -> Result<Figure> {
        let speedups = |points: &[ScalePoint]| {
            points
                .iter()
                .map(|p| (p.threads as f64, p.speedup))
                .collect::<Vec<_>>()
        };
        let counts: Vec<f64> = self.std_threads.iter().map(|p| p.threads as f64).collect();
        let cpus = self.usable_cpus as f64;
        let mut chart = LineChart::new("Speed-up of a CPU-bound job by thread count")
            .x_label("threads")
            .y_label("speed-up over 1 thread")
            .series("std threads", speedups(&self.std_threads))
            .series("rayon", speedups(&self.rayon));
        if let Ok(python) = &self.python {
            chart = chart.series(
                format!("Python {} threads (GIL)", python.version),
                speedups(&python.points),
            );
        }
        chart
            .dashed_series(
                "ideal (no more than the CPUs)",
                counts.iter().map(|&n| (n, n.min(cpus))),
            )
            .dashed_series(
                format!("Amdahl, p = {:.3}", self.amdahl_p),
                counts
                    .iter()
                    .map(|&n| (n, amdahl(self.amdahl_p, n.min(cpus)))),
            )
            .render()
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

// ---- The price of sharing ------------------------------------------------------------------

/// Ways for threads to add to one total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Every increment takes a lock.
    Mutex,
    /// Every increment is one atomic read-modify-write on a shared cache line.
    Atomic,
    /// Each thread counts privately; the totals are added once at the end.
    PerThreadSums,
}

impl Sharing {
    pub const ALL: [Sharing; 3] = [Sharing::Mutex, Sharing::Atomic, Sharing::PerThreadSums];

    pub fn name(self) -> &'static str {
        match self {
            Sharing::Mutex => "Mutex<u64>",
            Sharing::Atomic => "AtomicU64",
            Sharing::PerThreadSums => "per-thread sums",
        }
    }

    /// `threads` threads each add 1 `increments` times; returns the final total.
    fn count(self, threads: usize, increments: u64) -> u64 {
        match self {
            Sharing::Mutex => {
                let total = Mutex::new(0u64);
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..increments {
                                *total.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                            }
                        });
                    }
                });
                total.into_inner().unwrap_or_else(|e| e.into_inner())
            }
            Sharing::Atomic => {
                let total = AtomicU64::new(0);
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..increments {
                                total.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                });
                total.into_inner()
            }
            Sharing::PerThreadSums => std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(move || {
                            let mut mine = 0u64;
                            for _ in 0..increments {
                                mine = std::hint::black_box(mine + 1);
                            }
                            mine
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingPoint {
    pub method: Sharing,
    pub threads: usize,
    pub total: u64,
    pub ns_per_increment: f64,
}

/// Each method at each thread count (median of 3): the total is checked, the cost reported.
pub fn sharing_costs(
    thread_counts: &[usize],
    increments_per_thread: u64,
) -> Result<Vec<SharingPoint>> {
    check_range(
        "increments per thread",
        increments_per_thread,
        1,
        1_000_000_000,
    )?;
    let mut points = Vec::new();
    for &threads in thread_counts {
        check_thread_count(threads)?;
        for method in Sharing::ALL {
            let mut runs = Vec::new();
            let expected = threads as u64 * increments_per_thread;
            for _ in 0..3 {
                let started = Instant::now();
                let total = method.count(threads, increments_per_thread);
                runs.push(started.elapsed().as_secs_f64());
                if total != expected {
                    return Err(Error::new(
                        format!(
                            "{} lost updates: {total} instead of {expected}",
                            method.name()
                        ),
                        "report this as a bug in virtlab",
                    ));
                }
            }
            points.push(SharingPoint {
                method,
                threads,
                total: expected,
                ns_per_increment: median(&mut runs) * 1e9 / expected as f64,
            });
        }
    }
    Ok(points)
}

/// Tables and plots a set of sharing measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingCosts(pub Vec<SharingPoint>);

impl SharingCosts {
    pub fn measure(thread_counts: &[usize], increments_per_thread: u64) -> Result<SharingCosts> {
        sharing_costs(thread_counts, increments_per_thread).map(SharingCosts)
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            "One counter, many threads (median of 3)",
            ["method", "threads", "final total", "ns per increment"],
        );
        for p in &self.0 {
            t.row([
                p.method.name().to_string(),
                p.threads.to_string(),
                p.total.to_string(),
                format!("{:.2}", p.ns_per_increment),
            ]);
        }
        t
    }

    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("The price of sharing one counter")
            .x_label("threads")
            .y_label("ns per increment (wall time / increments)")
            .log_y();
        for method in Sharing::ALL {
            chart = chart.series(
                method.name(),
                self.0
                    .iter()
                    .filter(|p| p.method == method)
                    .map(|p| (p.threads as f64, p.ns_per_increment)),
            );
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
    fn threads_run_in_this_process_each_on_its_own_os_thread() {
        let work = Work::new("thread", 2, 20).unwrap();
        let run = run(
            &work,
            3,
            Options {
                echo: false,
                ..Options::default()
            },
        )
        .unwrap();
        assert_eq!(run.timeline.pids(), vec![std::process::id()]);
        let tids: Vec<u64> = run
            .timeline
            .os_threads()
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert_eq!(tids.len(), 3);
        assert!(!tids.contains(&run.caller_tid));
        let mut lanes = run.timeline.lanes();
        lanes.sort();
        assert_eq!(lanes, vec!["thread-1", "thread-2", "thread-3"]);
        if cfg!(target_os = "linux") {
            let me = run.tree().unwrap();
            let names: Vec<&str> = me.processes[0]
                .threads
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            for lane in ["thread-1", "thread-2", "thread-3"] {
                assert!(names.contains(&lane), "{lane} missing from {names:?}");
            }
        }
    }

    #[test]
    fn a_panicking_thread_is_named_in_the_error_and_the_others_stop() {
        let work = Work::new("thread", 50, 50).unwrap();
        let started = Instant::now();
        let err = run(
            &work,
            3,
            Options {
                echo: false,
                snapshot: false,
                panic: Some((2, 1)),
            },
        )
        .unwrap_err();
        assert!(err.problem().starts_with("thread thread-2 (tid "), "{err}");
        assert!(
            err.problem().contains("panicked on purpose at iteration 1"),
            "{err}"
        );
        assert!(
            started.elapsed().as_secs() < 2,
            "the other threads should stop, not run 50 iterations"
        );
    }

    #[test]
    fn bad_thread_counts_are_refused() {
        let work = Work::new("t", 1, 1).unwrap();
        assert!(
            run(&work, 0, Options::default())
                .unwrap_err()
                .problem()
                .contains("number of threads cannot be 0")
        );
        assert!(run(&work, MAX_THREADS + 1, Options::default()).is_err());
        assert!(spawn_cost(&[0], 1).is_err());
        assert!(
            spawn_cost(&[1], 0)
                .unwrap_err()
                .problem()
                .contains("repeats cannot be 0")
        );
        assert!(scale(0, 100).is_err());
        assert!(
            scale(2, 0)
                .unwrap_err()
                .problem()
                .contains("single-thread time")
        );
        assert!(
            sharing_costs(&[2], 0)
                .unwrap_err()
                .problem()
                .contains("increments per thread cannot be 0")
        );
    }

    #[test]
    fn spawn_cost_measures_every_count() {
        let points = spawn_cost(&[1, 8], 2).unwrap();
        assert_eq!(
            points.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 8]
        );
        assert!(
            points
                .iter()
                .all(|p| p.first_line_ms.is_finite() && p.first_line_ms >= 0.0)
        );
    }

    #[test]
    fn spawn_join_cost_reports_one_value_per_round() {
        let rounds = spawn_join_cost(4, 3).unwrap();
        assert_eq!(rounds.len(), 3);
        assert!(rounds.iter().all(|us| *us > 0.0 && us.is_finite()));
        assert!(spawn_join_cost(0, 1).is_err());
    }

    #[test]
    fn chunks_cover_every_sample_once() {
        let parts: Vec<(u64, u64)> = chunks(10, 3).collect();
        assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), 10);
        assert_eq!(parts.iter().map(|p| p.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn monte_carlo_estimates_pi_and_every_runner_counts_the_same_samples() {
        let pi = 4.0 * monte_carlo_hits(7, 1_000_000) as f64 / 1e6;
        assert!((pi - std::f64::consts::PI).abs() < 0.01, "{pi}");
        for runner in [Runner::StdThreads, Runner::Rayon] {
            let (hits, _) = runner.run(3, 300_000).unwrap();
            let pi = 4.0 * hits as f64 / 300_000.0;
            assert!((pi - std::f64::consts::PI).abs() < 0.02, "{runner:?}: {pi}");
        }
    }

    #[test]
    fn amdahl_fit_recovers_the_fraction_it_was_made_from() {
        let made: Vec<(usize, f64)> = [1, 2, 4, 8]
            .iter()
            .map(|&n| (n, amdahl(0.9, n as f64)))
            .collect();
        assert!((fit_amdahl(&made) - 0.9).abs() < 1e-3);
        assert_eq!(amdahl(1.0, 4.0), 4.0);
        assert_eq!(amdahl(0.0, 4.0), 1.0);
    }

    #[test]
    fn a_small_scaling_run_measures_every_count_and_plots() {
        let scaling = scale(2, 20).unwrap();
        let counts = scale_counts(2, machine::usable_cpus());
        for points in [&scaling.std_threads, &scaling.rayon] {
            assert_eq!(points.iter().map(|p| p.threads).collect::<Vec<_>>(), counts);
            assert_eq!(points[0].speedup, 1.0);
            assert!(points.iter().all(|p| p.seconds > 0.0 && p.efficiency > 0.0));
        }
        assert!((0.0..=1.0).contains(&scaling.amdahl_p));
        match &scaling.python {
            Ok(python) => {
                assert!(python.version.starts_with('3'), "{}", python.version);
                assert_eq!(python.points.len(), counts.len());
            }
            Err(why) => assert!(why.contains("python"), "{why}"),
        }
        assert!(scaling.plot().unwrap().svg().contains("Amdahl, p ="));
    }

    #[test]
    fn scale_counts_add_oversubscription() {
        assert_eq!(scale_counts(8, 2), vec![1, 2, 4, 8]);
        assert_eq!(scale_counts(2, 2), vec![1, 2]);
        assert_eq!(
            scale_counts(16, 16),
            vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        );
    }

    #[test]
    fn every_sharing_method_reaches_the_same_total() {
        let costs = SharingCosts::measure(&[1, 4], 10_000).unwrap();
        assert_eq!(costs.0.len(), 6);
        assert!(
            costs
                .0
                .iter()
                .all(|p| p.total == p.threads as u64 * 10_000 && p.ns_per_increment > 0.0)
        );
        assert!(costs.plot().unwrap().svg().contains("AtomicU64"));
    }
}
