//! Chapter 2's real parallelism: a fixed CPU-bound job (Monte Carlo π) split across 1, 2, …
//! threads with std threads and with rayon, the speed-up fitted to Amdahl's law, and the same
//! job in Python threads (held back by the GIL) for comparison.

use serde::{Deserialize, Serialize};
use std::time::Instant;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::error::check_range;
use virtlab_core::load::{self, Load};
use virtlab_core::machine;
use virtlab_core::outcome::Outcome;
use virtlab_core::stats::median;
use virtlab_core::threads::check_thread_count;
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

pub use virtlab_core::hits::monte_carlo_hits;

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

/// "on 1 thread", "on 4 threads".
fn on_threads(n: usize) -> String {
    format!("on {n} thread{}", if n == 1 { "" } else { "s" })
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
    /// What other programs and the hypervisor took while this count's runs went on (`None`
    /// where it cannot be read).
    #[serde(default)]
    pub load: Option<Load>,
}

/// A speed-up at or below this on two or more free CPUs is "no scaling": a job that is all
/// parallel gets close to the CPU count.
const NO_SCALING: f64 = 1.3;
/// Monte Carlo samples the Python peer runs: Python takes about a microsecond per sample, so
/// the Rust job's hundred million would take minutes there.
const PYTHON_SAMPLES: u64 = 300_000;

fn points_from(times: &[(usize, f64, Option<Load>)]) -> Vec<ScalePoint> {
    let single = times
        .iter()
        .find(|(t, _, _)| *t == 1)
        .map_or(f64::NAN, |(_, s, _)| *s);
    times
        .iter()
        .map(|(threads, seconds, load)| {
            let speedup = single / seconds;
            ScalePoint {
                threads: *threads,
                seconds: *seconds,
                speedup,
                efficiency: speedup / *threads as f64,
                load: load.clone(),
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
    /// The same loop in Python threads on a smaller job (relative speed-ups), or why it could
    /// not run.
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
            let sampler = load::Sampler::start();
            let mut runs = Vec::new();
            for _ in 0..3 {
                let (hits, seconds) = runner.run(t, samples)?;
                pi_estimate = 4.0 * hits as f64 / samples as f64;
                runs.push(seconds);
            }
            times.push((t, median(&mut runs), sampler.stop()));
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
    /// Samples in Python's whole job: far fewer than Rust's, so compare time per sample.
    #[serde(default)]
    pub samples: u64,
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
        .args([
            "--threads",
            &counts_arg,
            "--samples",
            &PYTHON_SAMPLES.to_string(),
        ])
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
    let times: Vec<_> = peer.times.into_iter().map(|(t, s)| (t, s, None)).collect();
    Ok(PythonScaling {
        version: peer.python,
        samples: PYTHON_SAMPLES,
        points: points_from(&times),
    })
}

impl Scaling {
    /// One row per runner and thread count: the job's size, seconds, time per sample (the
    /// Python job is smaller, so only this compares the languages), speed-up, efficiency and
    /// what other programs took meanwhile; the caption gives the usable CPUs and Amdahl's p.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Speed-up of a fixed CPU-bound job ({} usable CPUs; Amdahl p = {:.3}; Python runs \
                 a smaller job: compare ns per sample, not seconds)",
                self.usable_cpus, self.amdahl_p
            ),
            [
                "runner",
                "samples",
                "threads",
                "seconds",
                "ns per sample",
                "speed-up",
                "efficiency",
                "other programs' CPUs",
            ],
        );
        let (python_name, python_samples, python) = match &self.python {
            Outcome::Measured(p) => (
                format!("Python {} threads", p.version),
                p.samples,
                p.points.as_slice(),
            ),
            Outcome::Skipped(why) => {
                t.row(["Python threads".to_string(), format!("skipped: {why}")]);
                (String::new(), 0, &[][..])
            }
        };
        for (name, samples, points) in [
            ("std threads", self.samples, &self.std_threads[..]),
            ("rayon", self.samples, &self.rayon[..]),
            (python_name.as_str(), python_samples, python),
        ] {
            for p in points {
                t.row([
                    name.to_string(),
                    samples.to_string(),
                    p.threads.to_string(),
                    format!("{:.3}", p.seconds),
                    format!("{:.1}", 1e9 * p.seconds / samples.max(1) as f64),
                    format!("{:.2}×", p.speedup),
                    format!("{:.0}%", 100.0 * p.efficiency),
                    p.load
                        .as_ref()
                        .map_or("not measured".into(), |l| format!("{:.2}", l.others_cpus)),
                ]);
            }
        }
        t
    }

    /// The best speed-up a runner reached on at most as many threads as usable CPUs, and where.
    fn best_on_free_cpus(&self, points: &[ScalePoint]) -> Option<(usize, f64)> {
        points
            .iter()
            .filter(|p| p.threads <= self.usable_cpus)
            .map(|p| (p.threads, p.speedup))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// What makes this run doubtful, with the likely cause and what to do: no speed-up on two
    /// or more usable CPUs. Empty when it looks like what a quiet machine gives.
    pub fn doubts(&self) -> Vec<String> {
        let cpus = self.usable_cpus;
        let Some((threads, speedup)) = self.best_on_free_cpus(&self.std_threads) else {
            return Vec::new();
        };
        if cpus < 2 || speedup > NO_SCALING {
            return Vec::new();
        }
        let busiest = Load::busiest(
            self.std_threads
                .iter()
                .chain(&self.rayon)
                .filter_map(|p| p.load.as_ref()),
        );
        let cause = match busiest {
            Some(load) => load.busy_cause().unwrap_or_else(|| {
                format!(
                    "no other program was seen taking CPU time ({}): this process may be \
                     limited to fewer CPUs than it reports (a cgroup quota), or the vCPUs share \
                     one physical core",
                    load.summary()
                )
            }),
            None => "whether other programs ran could not be read (/proc/stat)".into(),
        };
        vec![format!(
            "the best speed-up was {speedup:.2}× ({}) with {cpus} usable CPUs, where an \
             all-parallel job gets close to {cpus}×: {cause}",
            on_threads(threads)
        )]
    }

    /// What this run showed, computed from its numbers: how far the threads sped the job up,
    /// what more threads than CPUs did, Amdahl's p, Python under the GIL, and whether the
    /// machine was quiet (with the likely cause and what to do when it was not).
    pub fn what_we_saw(&self) -> Table {
        let cpus = self.usable_cpus;
        let mut t = Table::new(
            "What this run measured",
            ["question", "answer, from the numbers above"],
        );
        for (name, points) in [("std threads", &self.std_threads), ("rayon", &self.rayon)] {
            let Some((threads, speedup)) = self.best_on_free_cpus(points) else {
                continue;
            };
            let verdict = if cpus < 2 {
                "one usable CPU: threads can only take turns".to_string()
            } else if speedup > NO_SCALING {
                format!(
                    "{speedup:.2}× {} ({:.0}% of the {cpus}× that {cpus} CPUs allow)",
                    on_threads(threads),
                    100.0 * speedup / cpus as f64
                )
            } else {
                format!(
                    "{speedup:.2}× at best: NO scaling on {cpus} usable CPUs (see the last row)"
                )
            };
            t.row([format!("How much faster on {cpus} CPUs ({name})?"), verdict]);
        }
        let at_cpus = self.std_threads.iter().find(|p| p.threads == cpus);
        if let (Some(at_cpus), Some(most)) = (at_cpus, self.std_threads.last())
            && most.threads > cpus
        {
            let change = most.speedup / at_cpus.speedup;
            let trend = if (0.9..=1.1).contains(&change) {
                "about the same: the extra threads only take turns on the CPUs"
            } else if change < 0.9 {
                "slower: switching between the extra threads costs more than it gains"
            } else {
                "faster, which more threads than CPUs cannot give on a quiet machine: the run at \
                 the CPU count was probably slowed by another program"
            };
            t.row([
                format!(
                    "And with more threads than CPUs ({} threads)?",
                    most.threads
                ),
                format!(
                    "{:.2}× against {:.2}× on {cpus} threads: {trend}",
                    most.speedup, at_cpus.speedup
                ),
            ]);
        }
        let doubts = self.doubts();
        let share = if !doubts.is_empty() {
            "here p measures the CPUs this process got, not the job (see the last row)"
        } else if self.amdahl_p >= 0.95 {
            "nearly all of the job ran in parallel"
        } else if self.amdahl_p >= 0.5 {
            "part of the job ran as if serial"
        } else {
            "most of the job ran as if serial"
        };
        t.row([
            "Amdahl's fit?".to_string(),
            format!("p = {:.3}: {share}", self.amdahl_p),
        ]);
        if let Outcome::Measured(python) = &self.python
            && let (Some(one), Some(best)) = (
                python.points.first(),
                python
                    .points
                    .iter()
                    .max_by(|a, b| a.speedup.total_cmp(&b.speedup)),
            )
        {
            let rust_per_sample = self
                .std_threads
                .first()
                .map(|p| p.seconds / self.samples.max(1) as f64);
            let gil = if best.speedup > NO_SCALING {
                "so its threads ran in parallel: a free-threaded Python without the GIL?"
            } else {
                "so its threads took turns: the GIL lets one run Python code at a time"
            };
            let mut answer = format!(
                "best {:.2}× ({}), {gil}",
                best.speedup,
                on_threads(best.threads)
            );
            if let Some(rust) = rust_per_sample {
                answer += &format!(
                    "; on one thread a sample took {:.0} ns in Python and {:.1} ns in Rust ({:.0}× \
                     as long)",
                    1e9 * one.seconds / python.samples.max(1) as f64,
                    1e9 * rust,
                    one.seconds / python.samples.max(1) as f64 / rust
                );
            }
            t.row([format!("Python {} threads?", python.version), answer]);
        }
        let quiet = match Load::busiest(
            self.std_threads
                .iter()
                .chain(&self.rayon)
                .filter_map(|p| p.load.as_ref()),
        ) {
            None => "not observable here (/proc/stat cannot be read)".to_string(),
            Some(_) if !doubts.is_empty() => format!("no: {}", doubts.join("; ")),
            Some(busiest) => match busiest.busy_cause() {
                Some(cause) => format!("not quite, though the threads still scaled: {cause}"),
                None => format!("yes: at the busiest count {}", busiest.summary()),
            },
        };
        t.row(["Was the machine quiet?".to_string(), quiet]);
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
        let doubts = self.doubts();
        if !doubts.is_empty() {
            chart = chart.note(format!("Warning: {}.", doubts.join("; ")));
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
            .map_err(Into::into)
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

    /// A 2-CPU run whose std threads and rayon both took these (threads, seconds), with other
    /// programs using `others` CPUs throughout.
    fn two_cpu_run(times: &[(usize, f64)], others: f64) -> Scaling {
        let load = Load {
            seconds: 1.0,
            machine_cpus: 2,
            others_cpus: others,
            steal_cpus: 0.0,
        };
        let points = points_from(
            &times
                .iter()
                .map(|&(t, s)| (t, s, Some(load.clone())))
                .collect::<Vec<_>>(),
        );
        Scaling {
            samples: 100_000_000,
            usable_cpus: 2,
            std_threads: points.clone(),
            rayon: points,
            amdahl_p: 0.0,
            python: Outcome::Measured(PythonScaling {
                version: "3.11.2".into(),
                samples: 300_000,
                points: points_from(&[(1, 0.24, None), (2, 0.25, None)]),
            }),
            pi_estimate: std::f64::consts::PI,
        }
    }

    #[test]
    fn no_speed_up_on_two_busy_cpus_is_flagged_with_its_cause() {
        // The busy render: 1.00× at 2, 4 and 8 threads with a build on one CPU.
        let busy = two_cpu_run(&[(1, 0.4), (2, 0.4), (4, 0.4), (8, 0.4)], 0.95);
        let doubts = busy.doubts();
        assert_eq!(doubts.len(), 1);
        assert!(doubts[0].contains("1.00×") && doubts[0].contains("0.9 of the 2 CPUs"));
        let said = busy.what_we_saw().to_string();
        assert!(said.contains("NO scaling on 2 usable CPUs"), "{said}");
        assert!(said.contains("no: the best speed-up"), "{said}");
        assert!(busy.plot().unwrap().svg().contains("Warning"));
    }

    #[test]
    fn a_quiet_run_that_scales_says_so_and_compares_time_per_sample() {
        let quiet = two_cpu_run(&[(1, 0.4), (2, 0.201), (4, 0.202), (8, 0.205)], 0.02);
        assert!(quiet.doubts().is_empty());
        let said = quiet.what_we_saw().to_string();
        assert!(said.contains("1.99× on 2 threads"), "{said}");
        assert!(said.contains("only take turns"), "{said}");
        assert!(said.contains("yes: at the busiest count"), "{said}");
        // 0.24 s for 300 000 samples is 800 ns a sample; 0.4 s for 10⁸ is 4 ns: 200× as long.
        assert!(
            said.contains("800 ns in Python and 4.0 ns in Rust (200×"),
            "{said}"
        );
        assert!(said.contains("took turns: the GIL"), "{said}");
        let table = quiet.table().to_string();
        assert!(
            table.contains("300000") && table.contains("800.0"),
            "{table}"
        );
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
