//! Chapter 2's real parallelism: a fixed CPU-bound job (Monte Carlo π) split across 1, 2, …
//! threads with std threads and with rayon, the speed-up fitted to Amdahl's law, and the same
//! job in Python threads (held back by the GIL) for comparison.

use crate::display::{Figure, Table};
use crate::error::check_range;
use crate::outcome::Outcome;
use crate::plot::LineChart;
use crate::stats::median;
use crate::threads::check_thread_count;
use crate::{Error, Result, machine};
use serde::{Deserialize, Serialize};
use std::time::Instant;

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
    /// The name tables and legends show: `std threads` or `rayon`.
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
    /// How many threads shared the job (more than the CPUs means oversubscribed).
    pub threads: usize,
    /// Wall time of the whole job on that many threads, in seconds (median of 3 runs).
    pub seconds: f64,
    /// How many times faster than on one thread: 1-thread seconds ÷ these seconds (2.0 = twice
    /// as fast).
    pub speedup: f64,
    /// Speed-up per thread: 1.0 (100%) is perfect scaling; lower means threads waited or shared
    /// a core.
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
    /// Monte Carlo samples in the whole job (the same for every thread count), sized so one thread
    /// takes about the asked time.
    pub samples: u64,
    /// CPUs this process was allowed to use: where the ideal line levels off.
    pub usable_cpus: usize,
    /// One point per thread count with the job split into one equal chunk per std thread.
    pub std_threads: Vec<ScalePoint>,
    /// One point per thread count with the job run on a rayon pool of that many threads.
    pub rayon: Vec<ScalePoint>,
    /// Amdahl's parallel fraction p fitted to the std-thread speed-ups up to the CPU count.
    pub amdahl_p: f64,
    /// The same job in Python threads (relative speed-ups), or why it could not run.
    pub python: Outcome<PythonScaling>,
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
        python: python_scaling(&counts).into(),
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
    /// The Python version that ran it, e.g. `3.12.3`.
    pub version: String,
    /// One point per thread count; the speed-ups are relative to Python's own one-thread time.
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
    /// One row per runner and thread count: seconds, speed-up and efficiency; the caption gives
    /// the samples, the usable CPUs and the fitted Amdahl p.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Speed-up of a fixed CPU-bound job ({} samples; {} usable CPUs; Amdahl p = {:.3})",
                self.samples, self.usable_cpus, self.amdahl_p
            ),
            ["runner", "threads", "seconds", "speed-up", "efficiency"],
        );
        let (python_name, python) = match &self.python {
            Outcome::Measured(p) => (format!("Python {} threads", p.version), p.points.as_slice()),
            Outcome::Skipped(why) => {
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

    /// Speed-up against threads for std threads, rayon and Python, beside the ideal (capped at the
    /// CPU count) and the fitted Amdahl curve.
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
        if let Outcome::Measured(python) = &self.python {
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

    /// Shows [`Scaling::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_peer_counts_the_same_hits_as_rust() {
        let peers = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers");
        let out = std::process::Command::new("python3")
            .arg("-c")
            .arg("import sys; sys.path.insert(0, sys.argv[1]); import threads_cpu; print(threads_cpu.hits(7, 20000))")
            .arg(&peers)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("python3 runs on every machine this project supports");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let python: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        assert_eq!(python, monte_carlo_hits(7, 20000));
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
            Outcome::Measured(python) => {
                assert!(python.version.starts_with('3'), "{}", python.version);
                assert_eq!(python.points.len(), counts.len());
            }
            Outcome::Skipped(why) => assert!(why.contains("python"), "{why}"),
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
}
