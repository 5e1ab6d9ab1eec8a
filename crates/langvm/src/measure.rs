//! The measurements: [`Comparison`] (the same job on every runtime: hit counts, speed against
//! native, start-up) and [`Warmup`] (the job cut into chunks run one after another in one
//! runtime: the time of each chunk as the runtime warms up). Both can run in the release
//! `virtlab` program ([`Comparison::in_release_build`]), fully optimised (a notebook's own build
//! is not), and with wasmtime when it was built with the `wasmtime` feature.
//!
//! Both run on a thread of their own whose stack is sized for the plan (`on_own_stack`): in a
//! notebook's build wasmi's stack grows with every sample of one call, and an overflow on the
//! kernel's own thread would end its process with every variable in it.
//!
//! Why one long file: the two measurements share their runtime dispatch, their series type and
//! their tables and charts; a hundred lines are tests.

use super::external::Guests;
use super::{Plan, Runtime, compiled, job, wasm};
use serde::{Deserialize, Serialize};
use std::time::Instant;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::outcome::Outcome;
use virtlab_core::release;
use virtlab_core::stats::median;
use virtlab_display::plot::{BarChart, LineChart};
use virtlab_display::{Figure, Table};

/// Samples in a start-up run: small, so the run is mostly the runtime getting ready.
pub const STARTUP_SAMPLES: u64 = 1000;
/// Start-up runs per runtime (the median is shown).
pub const STARTUP_ROUNDS: usize = 3;
/// Published slowdowns of WebAssembly against native code, drawn beside ours and labelled as
/// published: Jangda et al., "Not So Fast: Analyzing the Performance of WebAssembly vs. Native
/// Code", USENIX ATC 2019 (SPEC CPU benchmarks, geometric mean).
pub const PUBLISHED: [(&str, f64); 2] = [
    ("published: wasm in Firefox, SPEC (Jangda 2019)", 1.45),
    ("published: wasm in Chrome, SPEC (Jangda 2019)", 1.55),
];

/// The stack a measurement's thread gets when wasmi's calls stay shallow: a main thread's.
const BASE_STACK: usize = 8 << 20;
/// Stack per sample of one wasmi call in a build with debug assertions, where it is needed, with
/// margin. wasmi dispatches its instructions by tail calls, which evcxr's build (opt-level 2 with
/// debug assertions) does not all turn into jumps, so one call's stack grows with the samples it
/// runs: on one thread of a cell, 1000 samples needed 2 MiB (1 MiB overflowed), 10,000 16 MiB
/// (8 overflowed), 100,000 128 MiB (64 overflowed): at most 1.3 KiB a sample. A release build,
/// and a build without optimisation (wasmi then loops instead), keep the stack flat.
const WASMI_STACK_PER_SAMPLE: usize = 2 << 10;
/// The most stack a measurement's thread asks for (address space; only what is used is memory).
const MAX_STACK: usize = 1 << 30;

/// The stack a thread needs to run `plan` in this process: [`BASE_STACK`], plus room for the
/// largest wasmi call in a build with debug assertions. Err when that is over [`MAX_STACK`],
/// saying how to run it (`in_release_build`) or the most samples that fit.
fn stack_for(plan: &Plan) -> Result<usize> {
    if !(cfg!(debug_assertions) && plan.runtimes.contains(&Runtime::Wasmi)) {
        return Ok(BASE_STACK);
    }
    let samples = plan.samples.max(STARTUP_SAMPLES);
    let most = ((MAX_STACK - BASE_STACK) / WASMI_STACK_PER_SAMPLE) as u64;
    if samples > most {
        return Err(Error::new(
            format!(
                "{samples} samples in one wasmi call need about {} MiB of stack in a build with \
                 debug assertions (a notebook's: wasmi's tail calls are not all jumps there), \
                 more than the {} MiB this process gives a measurement",
                (samples as usize * WASMI_STACK_PER_SAMPLE) >> 20,
                MAX_STACK >> 20
            ),
            format!(
                "run it with `in_release_build` (the release program runs any size), or with at \
                 most {most} samples here"
            ),
        ));
    }
    Ok(BASE_STACK + samples as usize * WASMI_STACK_PER_SAMPLE)
}

/// Runs `measure` on a thread of its own with `stack` bytes of stack, and returns its result; a
/// panic on it goes on in the caller. A notebook cell runs on the kernel's thread, whose stack
/// is a fixed few MiB, and an overflow there kills the kernel's process silently (no Rust
/// message, every variable lost): what may recurse deeply runs here instead.
fn on_own_stack<T: Send>(stack: usize, measure: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("virtlab-measure".into())
            .stack_size(stack)
            .spawn_scoped(scope, measure)
            .map_err(|e| {
                Error::os(
                    format!("starting a thread with {} MiB of stack", stack >> 20),
                    e,
                )
            })?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// What one runtime did: one entry per run (or chunk), timed by the runtime's own clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Which runtime.
    pub runtime: Runtime,
    /// Its version, as it reports it.
    pub version: String,
    /// The SHA-256 of the `.wasm` module it ran (WebAssembly runtimes only).
    pub module_sha256: Option<String>,
    /// The hit count of each run.
    pub hits: Vec<u64>,
    /// The seconds each run took.
    pub seconds: Vec<f64>,
    /// Seconds from asking for the runtime (spawning it, or making its engine) to the first
    /// result.
    pub first_result_s: f64,
    /// Seconds from asking to our module compiled: making the engine and compiling the module
    /// (WebAssembly in this process).
    pub compile_s: Option<f64>,
}

impl Series {
    /// An empty series for `runtime`.
    pub(super) fn new(runtime: Runtime) -> Series {
        Series {
            runtime,
            version: String::new(),
            module_sha256: None,
            hits: Vec::new(),
            seconds: Vec::new(),
            first_result_s: 0.0,
            compile_s: None,
        }
    }

    /// An empty series for a WebAssembly runtime that ran `module` after compiling it for
    /// `compile_s` seconds.
    pub(super) fn of_module(
        runtime: Runtime,
        version: &str,
        module: &[u8],
        compile_s: f64,
    ) -> Series {
        Series {
            version: version.into(),
            module_sha256: Some(job::sha256(module)),
            compile_s: Some(compile_s),
            ..Series::new(runtime)
        }
    }

    /// Adds a run; the first one also fixes the time from `asked` to the first result.
    pub(super) fn record(&mut self, hits: u64, seconds: f64, asked: Instant) {
        if self.hits.is_empty() {
            self.first_result_s = asked.elapsed().as_secs_f64();
        }
        self.hits.push(hits);
        self.seconds.push(seconds);
    }

    /// Runs `call` (one run of the job, returning its hits) `repeats` times, timing each;
    /// `asked` is when the runtime was asked for.
    pub(super) fn time_runs(
        &mut self,
        repeats: usize,
        asked: Instant,
        mut call: impl FnMut() -> Result<u64>,
    ) -> Result<()> {
        for _ in 0..repeats {
            let started = Instant::now();
            let hits = call()?;
            self.record(hits, started.elapsed().as_secs_f64(), asked);
        }
        Ok(())
    }

    /// The median time of one run, in seconds.
    pub fn median_s(&self) -> f64 {
        median(&mut self.seconds.clone())
    }

    /// A warmed-up chunk's time: the median of the last quarter of the chunks.
    pub fn final_s(&self) -> f64 {
        let last = self.seconds.len().div_ceil(4);
        median(&mut self.seconds[self.seconds.len() - last..].to_vec())
    }

    /// Seconds of chunks run before the first one within 10% of [`Series::final_s`] (that
    /// chunk included): how long the runtime took to reach its final speed.
    pub fn settled_after_s(&self) -> f64 {
        let target = 1.1 * self.final_s();
        let at = self
            .seconds
            .iter()
            .position(|&s| s <= target)
            .unwrap_or(self.seconds.len() - 1);
        self.seconds[..=at].iter().sum()
    }
}

/// Runs the job `repeats` times in one instance of `runtime`.
fn run(
    guests: &Guests,
    runtime: Runtime,
    seed: u64,
    samples: u64,
    repeats: usize,
) -> Result<Outcome<Series>> {
    match runtime {
        Runtime::Native => {
            let asked = Instant::now();
            let mut series = Series::new(runtime);
            series.version = format!(
                "Rust, {} build",
                if cfg!(debug_assertions) {
                    "debug"
                } else {
                    "release"
                }
            );
            series.time_runs(repeats, asked, || {
                Ok(job::hits(seed, std::hint::black_box(samples)))
            })?;
            Ok(Outcome::Measured(series))
        }
        Runtime::Wasmi => wasm::run(seed, samples, repeats).map(Outcome::Measured),
        Runtime::Wasmtime => compiled::run(seed, samples, repeats),
        _ => guests.run(runtime, seed, samples, repeats),
    }
}

/// Milliseconds, three significant digits.
pub(super) fn ms(seconds: f64) -> String {
    let ms = seconds * 1e3;
    match ms {
        m if m >= 100.0 => format!("{m:.0}"),
        m if m >= 10.0 => format!("{m:.1}"),
        m if m >= 1.0 => format!("{m:.2}"),
        m => format!("{m:.3}"),
    }
}

/// Runs `plan` in the release `virtlab` program (`virtlab runtimes … --json`, plus `extra`).
fn in_release_build<T: serde::de::DeserializeOwned>(plan: &Plan, extra: &[&str]) -> Result<T> {
    plan.check()?;
    let names: Vec<&str> = plan.runtimes.iter().map(|r| r.name()).collect();
    let (samples, repeats, seed) = (
        plan.samples.to_string(),
        plan.repeats.to_string(),
        plan.seed.to_string(),
    );
    let mut args = vec![
        "runtimes",
        "--json",
        "--die-with-parent",
        "--samples",
        &samples,
        "--repeats",
        &repeats,
        "--seed",
        &seed,
        "--runtimes",
    ];
    let names = names.join(",");
    args.push(&names);
    args.extend(extra);
    release::json("the runtimes' measuring program", &args)
}

/// One runtime in a [`Comparison`]: its runs, and its start-up times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Which runtime.
    pub runtime: Runtime,
    /// The plan's runs, or why the runtime was skipped.
    pub speed: Outcome<Series>,
    /// Seconds from asking to the first result of a [`STARTUP_SAMPLES`] run, one per round.
    pub startup_s: Vec<f64>,
    /// Seconds of each of those rounds spent making the engine and compiling our module
    /// (WebAssembly in this process; empty for the others): a part of that round's start-up.
    pub compile_s: Vec<f64>,
}

/// The same job on every runtime of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// What was run.
    pub plan: Plan,
    /// The hit count of the crate's own function, which every runtime must match.
    pub native_hits: u64,
    /// One row per runtime, in the plan's order.
    pub rows: Vec<Row>,
    /// What other programs and the hypervisor took while the runtimes ran.
    #[serde(default)]
    pub load: Option<virtlab_core::load::Load>,
}

impl Comparison {
    /// Runs `plan` in this process (wasmtime needs the `wasmtime` feature; see
    /// [`Comparison::in_release_build`]). A missing runtime is skipped; one that fails is an
    /// error. It runs on a thread of its own, with the stack it needs (see `stack_for`). In a
    /// notebook prefer [`Comparison::in_release_build`]: the notebook's build is not fully
    /// optimised, and its wasmi needs stack for every sample of a call (up to about 500,000).
    pub fn measure(plan: &Plan) -> Result<Comparison> {
        plan.check()?;
        on_own_stack(stack_for(plan)?, || Comparison::measure_here(plan))
    }

    /// [`Comparison::measure`] on the calling thread.
    fn measure_here(plan: &Plan) -> Result<Comparison> {
        let sampler = virtlab_core::load::Sampler::start();
        let guests = Guests::new()?;
        let mut rows = Vec::new();
        for &runtime in &plan.runtimes {
            let speed = run(&guests, runtime, plan.seed, plan.samples, plan.repeats)?;
            let (mut startup_s, mut compile_s) = (Vec::new(), Vec::new());
            if speed.measured().is_some() {
                for _ in 0..STARTUP_ROUNDS {
                    if let Outcome::Measured(s) =
                        run(&guests, runtime, plan.seed, STARTUP_SAMPLES, 1)?
                    {
                        startup_s.push(s.first_result_s);
                        compile_s.extend(s.compile_s);
                    }
                }
            }
            rows.push(Row {
                runtime,
                speed,
                startup_s,
                compile_s,
            });
        }
        Ok(Comparison {
            plan: plan.clone(),
            native_hits: job::hits(plan.seed, plan.samples),
            rows,
            load: sampler.stop(),
        })
    }

    /// Runs `plan` in the release `virtlab` program (`VIRTLAB_WORKER`, or the workspace's
    /// release build), fully optimised (a notebook's build is not); its errors come back as
    /// errors.
    pub fn in_release_build(plan: &Plan) -> Result<Comparison> {
        in_release_build(plan, &[])
    }

    /// `Ok` when every runtime that ran counted the native hits on every run, and every
    /// WebAssembly runtime ran our module (the same SHA-256); else the error naming it.
    pub fn check(&self) -> Result<()> {
        let hash = job::module_hash();
        for row in &self.rows {
            let Some(series) = row.speed.measured() else {
                continue;
            };
            if let Some(hits) = series.hits.iter().find(|&&h| h != self.native_hits) {
                return Err(Error::new(
                    format!(
                        "{} counted {hits} hits, native Rust {}",
                        row.runtime.label(),
                        self.native_hits
                    ),
                    "the versions of the job differ: compare its guest with monte_carlo_hits",
                ));
            }
            if series.module_sha256.as_ref().is_some_and(|h| *h != hash) {
                return Err(Error::new(
                    format!("{} ran another module than ours", row.runtime.label()),
                    "rebuild the `virtlab` program (cargo build --release)",
                ));
            }
        }
        Ok(())
    }

    /// The native run's median seconds, the yardstick of every slowdown.
    fn native_s(&self) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.runtime == Runtime::Native)
            .and_then(|r| r.speed.measured())
            .map(Series::median_s)
    }

    /// Same answer everywhere: per runtime its version, hit count, whether it matches native,
    /// and the SHA-256 of the module it ran.
    pub fn hits_table(&self) -> Table {
        let hash = job::module_hash();
        let mut t = Table::new(
            format!(
                "Hits among {} samples (seed {}): native Rust counts {}; our module's SHA-256 \
                 starts {}",
                self.plan.samples,
                self.plan.seed,
                self.native_hits,
                &hash[..hash.len().min(16)]
            ),
            [
                "runtime",
                "version",
                "hits",
                "same as native",
                "module SHA-256 it ran",
            ],
        );
        for row in &self.rows {
            match &row.speed {
                Outcome::Measured(s) => {
                    let same = s.hits.iter().all(|&h| h == self.native_hits);
                    t.row([
                        row.runtime.label().to_string(),
                        s.version.clone(),
                        s.hits.first().map_or(String::new(), u64::to_string),
                        if same { "yes" } else { "NO" }.to_string(),
                        s.module_sha256.as_deref().map_or("—".into(), |h| {
                            let mark = if *h == hash { "(ours)" } else { "(NOT ours)" };
                            format!("{}… {mark}", &h[..h.len().min(16)])
                        }),
                    ]);
                }
                Outcome::Skipped(why) => {
                    t.row([row.runtime.label(), "skipped", "", "", why.as_str()]);
                }
            }
        }
        t
    }

    /// Speed and start-up per runtime: median time of a run, slowdown against native, median
    /// start-up (asking → first result) and, for WebAssembly in this process, the part of it
    /// spent compiling (median of the same rounds, so never above the start-up).
    pub fn table(&self) -> Table {
        let native = self.native_s();
        let mut t = Table::new(
            format!(
                "The same job on each runtime: {} samples, median of {} runs; start-up = asking \
                 for the runtime → first result of a {STARTUP_SAMPLES}-sample run, and the \
                 engine + compile within it (median of {STARTUP_ROUNDS} rounds, after the timed \
                 runs)",
                self.plan.samples, self.plan.repeats
            ),
            [
                "runtime",
                "time (ms)",
                "slowdown vs native",
                "start-up (ms)",
                "of which engine + compile (ms)",
            ],
        );
        for row in &self.rows {
            match &row.speed {
                Outcome::Measured(s) => {
                    let time = s.median_s();
                    t.row([
                        row.runtime.label().to_string(),
                        ms(time),
                        native.map_or("—".into(), |n| format!("{:.2}×", time / n)),
                        ms(median(&mut row.startup_s.clone())),
                        if row.compile_s.is_empty() {
                            "—".into()
                        } else {
                            ms(median(&mut row.compile_s.clone()))
                        },
                    ]);
                }
                Outcome::Skipped(why) => {
                    t.row([row.runtime.label(), "skipped", "", "", why.as_str()]);
                }
            }
        }
        t
    }

    /// Slowdown against native per runtime, on a log axis, beside the published WebAssembly
    /// figures (labelled as published); an error when native did not run.
    pub fn speed_plot(&self) -> Result<Figure> {
        let native = self.native_s().ok_or_else(|| {
            Error::invalid(
                "a speed chart without native Rust",
                "drawn",
                "include native in the runtimes",
            )
        })?;
        let mut chart = BarChart::new(
            format!(
                "Slowdown against native Rust ({} samples; lower is faster)",
                self.plan.samples
            ),
            &[
                "measured here",
                "published (Jangda et al., USENIX ATC 2019)",
            ],
        )
        .x_label("times slower than native (log scale)")
        .log_x();
        for row in &self.rows {
            if let Some(s) = row.speed.measured() {
                chart = chart.bar(row.runtime.label(), &[s.median_s() / native, 0.0]);
            }
        }
        for (label, slowdown) in PUBLISHED {
            chart = chart.bar(label, &[0.0, slowdown]);
        }
        chart.render().map_err(Into::into)
    }

    /// Start-up per runtime (asking → first result), on a log axis.
    pub fn startup_plot(&self) -> Result<Figure> {
        let mut chart = BarChart::new(
            "Start-up: from asking for the runtime to its first result",
            &["median start-up"],
        )
        .x_label("milliseconds (log scale)")
        .log_x();
        for row in self.rows.iter().filter(|r| !r.startup_s.is_empty()) {
            chart = chart.bar(
                row.runtime.label(),
                &[median(&mut row.startup_s.clone()) * 1e3],
            );
        }
        chart.render().map_err(Into::into)
    }

    /// Shows [`Comparison::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// The job cut into chunks, run one after another in one instance of each runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warmup {
    /// What was run: `samples` per chunk, `repeats` chunks.
    pub plan: Plan,
    /// Each runtime's chunks, or why it was skipped.
    pub rows: Vec<(Runtime, Outcome<Series>)>,
}

impl Warmup {
    /// Runs `plan` as a warm-up in this process, on a thread of its own (see
    /// [`Comparison::measure`]).
    pub fn measure(plan: &Plan) -> Result<Warmup> {
        plan.check()?;
        on_own_stack(stack_for(plan)?, || Warmup::measure_here(plan))
    }

    /// [`Warmup::measure`] on the calling thread.
    fn measure_here(plan: &Plan) -> Result<Warmup> {
        let guests = Guests::new()?;
        let rows = plan
            .runtimes
            .iter()
            .map(|&r| Ok((r, run(&guests, r, plan.seed, plan.samples, plan.repeats)?)))
            .collect::<Result<_>>()?;
        Ok(Warmup {
            plan: plan.clone(),
            rows,
        })
    }

    /// Runs `plan` as a warm-up in the release `virtlab` program.
    pub fn in_release_build(plan: &Plan) -> Result<Warmup> {
        in_release_build(plan, &["--warmup", &plan.repeats.to_string()])
    }

    fn measured(&self) -> impl Iterator<Item = &Series> {
        self.rows.iter().filter_map(|(_, o)| o.measured())
    }

    /// Per runtime: what it spent before the first chunk, the first chunk, a warm chunk, and
    /// how long until a chunk came within 10% of the warm speed.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Warm-up: {} chunks of {} samples one after another in one runtime",
                self.plan.repeats, self.plan.samples
            ),
            [
                "runtime",
                "before the first chunk (ms)",
                "first chunk (ms)",
                "warm chunk (ms)",
                "first / warm",
                "within 10% of warm after (ms)",
            ],
        );
        for (runtime, outcome) in &self.rows {
            match outcome {
                Outcome::Measured(s) => {
                    t.row([
                        runtime.label().to_string(),
                        ms(before_first_chunk(s)),
                        ms(s.seconds[0]),
                        ms(s.final_s()),
                        format!("{:.1}×", s.seconds[0] / s.final_s()),
                        ms(s.settled_after_s()),
                    ]);
                }
                Outcome::Skipped(why) => {
                    t.row([runtime.label(), "skipped", "", "", "", why.as_str()]);
                }
            }
        }
        t
    }

    /// Time per chunk against chunk number, per runtime, on a log axis: the JIT's chunks fall,
    /// the interpreters' stay flat.
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new(format!(
            "Warm-up: time of each {}-sample chunk, in order",
            self.plan.samples
        ))
        .x_label("chunk (one after another in one runtime)")
        .y_label("ms per chunk (log scale)")
        .log_y();
        // Colours go by drawing order; this order keeps the palette's two oranges on lines far
        // apart (CPython's at the top, wasmtime's near native's) and the JVM in green.
        const ORDER: [Runtime; 8] = [
            Runtime::Native,
            Runtime::Python,
            Runtime::Java,
            Runtime::Wasmi,
            Runtime::Wasmtime,
            Runtime::NodeWasm,
            Runtime::NodeJs,
            Runtime::JavaXint,
        ];
        let mut drawn: Vec<&Series> = self.measured().collect();
        drawn.sort_by_key(|s| ORDER.iter().position(|r| *r == s.runtime));
        for s in drawn {
            let points = s
                .seconds
                .iter()
                .enumerate()
                .map(|(i, sec)| ((i + 1) as f64, sec * 1e3));
            chart = chart.series(s.runtime.label(), points);
        }
        chart.render().map_err(Into::into)
    }

    /// Before the first result, per runtime: getting ready (wasmtime: its Cranelift compile,
    /// its own bar) and the first chunk.
    pub fn first_chunk_plot(&self) -> Result<Figure> {
        let mut chart = BarChart::new(
            "Slower at first: getting ready, then the first chunk",
            &[
                "getting ready (process start; wasm: compile + instantiate)",
                "first chunk",
            ],
        )
        .x_label("milliseconds");
        for s in self.measured() {
            chart = chart.bar(
                s.runtime.label(),
                &[before_first_chunk(s) * 1e3, s.seconds[0] * 1e3],
            );
        }
        chart.render().map_err(Into::into)
    }

    /// Shows [`Warmup::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// Seconds from asking for the runtime to the start of its first chunk.
fn before_first_chunk(s: &Series) -> f64 {
    (s.first_result_s - s.seconds[0]).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick(runtimes: &[Runtime]) -> Plan {
        Plan::new(20_000, 2).unwrap().runtimes(runtimes)
    }

    #[test]
    fn every_runtime_present_counts_the_same_hits() {
        let comparison = Comparison::measure(&quick(&Runtime::ALL)).unwrap();
        comparison.check().unwrap();
        let ran: Vec<Runtime> = comparison
            .rows
            .iter()
            .filter(|r| r.speed.measured().is_some())
            .map(|r| r.runtime)
            .collect();
        // Python, Java and Node are on every machine this project supports (see the notes).
        for runtime in [
            Runtime::Native,
            Runtime::Wasmi,
            Runtime::Python,
            Runtime::Java,
            Runtime::NodeWasm,
            Runtime::NodeJs,
        ] {
            assert!(
                ran.contains(&runtime),
                "{} did not run: {comparison:?}",
                runtime.name()
            );
        }
        assert_eq!(ran.contains(&Runtime::Wasmtime), cfg!(feature = "wasmtime"));
        for row in &comparison.rows {
            if let Some(s) = row.speed.measured() {
                assert_eq!(
                    s.hits,
                    [comparison.native_hits; 2],
                    "{}",
                    row.runtime.name()
                );
                assert_eq!(row.startup_s.len(), STARTUP_ROUNDS);
            }
        }
        assert!(comparison.hits_table().to_string().contains("(ours)"));
        comparison.speed_plot().unwrap();
        comparison.startup_plot().unwrap();
    }

    #[test]
    fn a_wrong_count_or_module_is_caught() {
        let mut comparison =
            Comparison::measure(&quick(&[Runtime::Native, Runtime::Wasmi])).unwrap();
        comparison.check().unwrap();
        if let Outcome::Measured(s) = &mut comparison.rows[1].speed {
            s.module_sha256 = Some("00".into());
        }
        assert!(
            comparison
                .check()
                .unwrap_err()
                .problem()
                .contains("another module")
        );
        if let Outcome::Measured(s) = &mut comparison.rows[0].speed {
            s.hits[1] += 1;
        }
        assert!(
            comparison
                .check()
                .unwrap_err()
                .problem()
                .contains("native Rust")
        );
    }

    #[test]
    fn warmups_record_every_chunk() {
        let plan = Plan::new(5000, 6)
            .unwrap()
            .runtimes(&[Runtime::Native, Runtime::Wasmi]);
        let warmup = Warmup::measure(&plan).unwrap();
        for (_, outcome) in &warmup.rows {
            let s = outcome.measured().unwrap();
            assert_eq!(s.seconds.len(), 6);
            assert!(s.settled_after_s() > 0.0);
        }
        assert!(warmup.table().to_string().contains("wasmi"));
        warmup.plot().unwrap();
        warmup.first_chunk_plot().unwrap();
    }

    #[test]
    fn a_measurement_gets_the_stack_its_wasmi_calls_need_or_says_how_to_run_it() {
        let plan =
            |samples, runtimes: &[Runtime]| Plan::new(samples, 1).unwrap().runtimes(runtimes);
        assert_eq!(
            stack_for(&plan(1_000_000, &[Runtime::Native])),
            Ok(BASE_STACK)
        );
        let (small, large) = (
            stack_for(&plan(10, &[Runtime::Wasmi])).unwrap(),
            stack_for(&plan(100_000, &[Runtime::Wasmi])).unwrap(),
        );
        if cfg!(debug_assertions) {
            // The start-up runs' samples count too; 100,000 samples needed 128 MiB in a cell.
            assert_eq!(
                small,
                BASE_STACK + STARTUP_SAMPLES as usize * WASMI_STACK_PER_SAMPLE
            );
            assert!(large >= 128 << 20, "{large}");
            let e = stack_for(&plan(crate::MAX_SAMPLES, &[Runtime::Wasmi])).unwrap_err();
            assert!(e.fix().contains("in_release_build"), "{e}");
            assert!(Comparison::measure(&plan(crate::MAX_SAMPLES, &[Runtime::Wasmi])).is_err());
        } else {
            assert_eq!((small, large), (BASE_STACK, BASE_STACK));
        }
        // Run on a thread of its own, the measurement still returns its results.
        let warmup = Warmup::measure(&plan(1000, &[Runtime::Wasmi])).unwrap();
        assert_eq!(warmup.rows.len(), 1);
    }

    #[test]
    fn settling_is_the_time_until_a_chunk_is_within_10_percent_of_the_last() {
        let mut s = Series::new(Runtime::Java);
        s.seconds = vec![8.0, 4.0, 1.05, 1.0, 1.0, 1.0, 1.0, 1.0];
        assert_eq!(s.final_s(), 1.0);
        assert_eq!(s.settled_after_s(), 13.05);
    }
}
