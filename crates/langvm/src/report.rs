//! Chapter 5's "what we saw": every relation the chapter states about its runtimes — how close
//! the compilers came to native, wasmtime against V8 on the same bytes, the interpreters,
//! start-up, warm-up — computed from the run it describes and worded for the result obtained,
//! the surprising one included. Nothing here is asserted beforehand: a run on a loaded or
//! another machine reads differently.

use super::Runtime;
use super::measure::{Comparison, PUBLISHED, Warmup, ms};
use virtlab_core::stats::median;
use virtlab_display::Table;

/// Ratios closer to 1 than this read as "level" (a shared machine moves single runs by more).
const LEVEL: f64 = 0.10;

/// What this run measured, as questions and answers computed from `comparison` and `warmup`.
pub fn what_we_saw(comparison: &Comparison, warmup: &Warmup) -> Table {
    let mut table = Table::new(
        format!(
            "What this run measured ({} samples per run; warm-up {} chunks of {})",
            comparison.plan.samples, warmup.plan.repeats, warmup.plan.samples
        ),
        ["question", "answer, from the numbers above"],
    );
    let speed = Speeds::of(comparison);
    table.row([
        "Did every runtime count the same hits?".to_string(),
        same_answer(comparison),
    ]);
    table.row([
        "How close to native did the compilers come?".to_string(),
        compilers(&speed),
    ]);
    table.row([
        "wasmtime and V8 ran the same bytes: how far apart?".to_string(),
        wasmtime_vs_v8(&speed),
    ]);
    table.row(["And the interpreters?".to_string(), interpreters(&speed)]);
    table.row([
        "JavaScript beside our module, both on V8?".to_string(),
        javascript(&speed),
    ]);
    table.row(["Start-up?".to_string(), startup(comparison)]);
    table.row([
        "Warm-up: how much slower was the first chunk?".to_string(),
        first_chunks(warmup),
    ]);
    table.row([
        "Did a warm chunk run at the speed run's rate?".to_string(),
        chunk_rates(comparison, warmup),
    ]);
    table.row(virtlab_core::load::quiet_row(
        comparison.load.as_ref(),
        "a run that waited for a CPU reads slow, and the ratios between runtimes move",
    ));
    table
}

/// Each measured runtime's median seconds per run, and native's.
struct Speeds {
    native: Option<f64>,
    runs: Vec<(Runtime, f64)>,
}

impl Speeds {
    fn of(comparison: &Comparison) -> Speeds {
        let runs: Vec<(Runtime, f64)> = comparison
            .rows
            .iter()
            .filter_map(|r| Some((r.runtime, r.speed.measured()?.median_s())))
            .collect();
        let native = runs
            .iter()
            .find(|(r, _)| *r == Runtime::Native)
            .map(|(_, s)| *s);
        Speeds { native, runs }
    }

    fn seconds(&self, runtime: Runtime) -> Option<f64> {
        self.runs
            .iter()
            .find(|(r, _)| *r == runtime)
            .map(|(_, s)| *s)
    }

    /// `runtime`'s time over native's.
    fn slowdown(&self, runtime: Runtime) -> Option<f64> {
        Some(self.seconds(runtime)? / self.native?)
    }

    /// "wasmi 31×, CPython 104×" for those of `runtimes` that ran beside native.
    fn slowdowns(&self, runtimes: &[Runtime]) -> Vec<String> {
        runtimes
            .iter()
            .filter_map(|&r| Some(format!("{} {:.2}×", r.label(), self.slowdown(r)?)))
            .collect()
    }
}

/// `a`'s time against `b`'s in words: "A took 1.63× B's time", "level (within 10%)", or the
/// other way round.
fn compare(a: &str, a_s: f64, b: &str, b_s: f64) -> String {
    let ratio = a_s / b_s;
    if (ratio - 1.0).abs() <= LEVEL {
        format!(
            "level: {a} took {ratio:.2}× {b}'s time (within {:.0}%)",
            LEVEL * 100.0
        )
    } else if ratio > 1.0 {
        format!("{a} took {ratio:.2}× {b}'s time")
    } else {
        format!("{b} took {:.2}× {a}'s time", 1.0 / ratio)
    }
}

fn same_answer(comparison: &Comparison) -> String {
    let ran = comparison
        .rows
        .iter()
        .filter(|r| r.speed.measured().is_some())
        .count();
    let skipped: Vec<&str> = comparison
        .rows
        .iter()
        .filter(|r| r.speed.measured().is_none())
        .map(|r| r.runtime.label())
        .collect();
    let verdict = match comparison.check() {
        Ok(()) => format!(
            "yes: {ran} runtimes, {} hits each on every run",
            comparison.native_hits
        ),
        Err(e) => format!("no: {}", e.problem()),
    };
    if skipped.is_empty() {
        verdict
    } else {
        format!("{verdict}; not run here: {}", skipped.join(", "))
    }
}

fn compilers(speed: &Speeds) -> String {
    let measured = speed.slowdowns(&[Runtime::Wasmtime, Runtime::NodeWasm, Runtime::Java]);
    if measured.is_empty() {
        return "not measured: no compiling runtime ran beside native Rust".into();
    }
    let published: Vec<String> = PUBLISHED.iter().map(|(_, s)| format!("{s:.2}×")).collect();
    format!(
        "{} native's time; published for WebAssembly in browsers on SPEC CPU (Jangda et al. \
         2019): {} — a different, larger set of programs",
        measured.join(", "),
        published.join(" and ")
    )
}

/// The two compilers of our module side by side, with what to expect from the gap this run
/// showed (the reasons are what we know of each compiler, not measured here).
fn wasmtime_vs_v8(speed: &Speeds) -> String {
    let (Some(wasmtime), Some(v8)) = (
        speed.seconds(Runtime::Wasmtime),
        speed.seconds(Runtime::NodeWasm),
    ) else {
        return "not measured: wasmtime and Node's V8 did not both run".into();
    };
    let ratio = wasmtime / v8;
    let why = if (ratio - 1.0).abs() <= LEVEL {
        "As expected when both turn our loop into much the same machine instructions as native \
         code's"
    } else if ratio > 1.0 {
        "The two compilers chose different machine instructions for the same bytes: Cranelift \
         is built to compile quickly and rewrites less than V8's TurboFan (docs/performance.md \
         shows one such choice, an unsigned conversion, that cost this very loop 1.6× on a \
         Xeon)"
    } else {
        "V8 runs a module first with its baseline compiler (Liftoff) and uses TurboFan's code \
         only from a later call, so its median can include slower runs"
    };
    format!(
        "{}; against native: {}. {why}",
        compare("wasmtime", wasmtime, "V8", v8),
        speed
            .slowdowns(&[Runtime::Wasmtime, Runtime::NodeWasm])
            .join(", ")
    )
}

fn interpreters(speed: &Speeds) -> String {
    let measured = speed.slowdowns(&[Runtime::Wasmi, Runtime::JavaXint, Runtime::Python]);
    if measured.is_empty() {
        return "not measured: no interpreter ran beside native Rust".into();
    }
    format!(
        "{} native's time: each decodes and dispatches every instruction, every time",
        measured.join(", ")
    )
}

fn javascript(speed: &Speeds) -> String {
    match (
        speed.seconds(Runtime::NodeJs),
        speed.seconds(Runtime::NodeWasm),
    ) {
        (Some(js), Some(wasm)) => format!(
            "{}: JavaScript has no 64-bit integer, so its version keeps the state as two 32-bit \
             halves and multiplies in 16-bit pieces",
            compare("the JavaScript version", js, "our module", wasm)
        ),
        _ => "not measured: Node did not run both versions".into(),
    }
}

fn startup(comparison: &Comparison) -> String {
    // Per runtime: median start-up, and for WebAssembly in this process the median engine +
    // compile of the same rounds and the first one in the process (before the timed runs).
    type Compile = Option<(f64, f64)>;
    let mut starts: Vec<(Runtime, f64, Compile)> = comparison
        .rows
        .iter()
        // Native Rust is a call in this process, not a runtime that starts.
        .filter(|r| !r.startup_s.is_empty() && r.runtime != Runtime::Native)
        .map(|r| {
            let first = r.speed.measured().and_then(|s| s.compile_s);
            let compile = first
                .filter(|_| !r.compile_s.is_empty())
                .map(|first| (median(&mut r.compile_s.clone()), first));
            (r.runtime, median(&mut r.startup_s.clone()), compile)
        })
        .collect();
    if starts.is_empty() {
        return "not measured".into();
    }
    starts.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (first, last) = (starts[0], starts[starts.len() - 1]);
    let mut answer = format!(
        "quickest {} in {} ms, slowest {} in {} ms ({:.0}×)",
        first.0.label(),
        ms(first.1),
        last.0.label(),
        ms(last.1),
        last.1 / first.1
    );
    for (runtime, start, compile) in &starts {
        if let Some((compile, first)) = compile {
            answer += &format!(
                "; {}: engine + compile {} of its {} ms (the first in this process, before the \
                 timed runs: {} ms)",
                runtime.label(),
                ms(*compile),
                ms(*start),
                ms(*first)
            );
        }
    }
    answer
}

fn first_chunks(warmup: &Warmup) -> String {
    let parts: Vec<String> = warmup
        .rows
        .iter()
        .filter_map(|(runtime, outcome)| {
            let s = outcome.measured()?;
            Some(format!(
                "{} {:.1}× a warm chunk (within 10% after {:.1} ms)",
                runtime.label(),
                s.seconds[0] / s.final_s(),
                s.settled_after_s() * 1e3
            ))
        })
        .collect();
    if parts.is_empty() {
        "not measured".into()
    } else {
        parts.join("; ")
    }
}

/// Per runtime in both runs: a warm chunk's time per sample against the speed run's; the ones
/// more than 25% apart are named, with what to expect for their direction.
fn chunk_rates(comparison: &Comparison, warmup: &Warmup) -> String {
    let per_sample = |seconds: f64, samples: u64| seconds / samples as f64;
    let (mut apart, mut faster) = (Vec::new(), 0);
    let mut compared = 0;
    for (runtime, outcome) in &warmup.rows {
        let Some(chunks) = outcome.measured() else {
            continue;
        };
        let Some(runs) = comparison
            .rows
            .iter()
            .find(|r| r.runtime == *runtime)
            .and_then(|r| r.speed.measured())
        else {
            continue;
        };
        compared += 1;
        let ratio = per_sample(chunks.final_s(), warmup.plan.samples)
            / per_sample(runs.median_s(), comparison.plan.samples);
        if !(0.8..=1.25).contains(&ratio) {
            // A runtime still warming up for the whole speed run (a JIT that settled later than
            // the runs' total time) is said so: its runs' median includes slower code.
            let all_runs: f64 = runs.seconds.iter().sum();
            let warming = if chunks.settled_after_s() > all_runs {
                format!(
                    " (still warming up: its chunks settled after {} ms, its speed runs took {} \
                     ms in all)",
                    ms(chunks.settled_after_s()),
                    ms(all_runs)
                )
            } else {
                String::new()
            };
            apart.push(format!("{} {ratio:.2}×{warming}", runtime.label()));
            faster += usize::from(ratio < 1.0);
        }
    }
    match (compared, apart.is_empty()) {
        (0, _) => "not measured: no runtime ran in both".into(),
        (n, true) => format!(
            "yes: for all {n}, a warm chunk's time per sample was within 25% of the speed run's"
        ),
        (n, false) => {
            // The speed runs and the warm-up ran one after the other, each timed by a wall clock.
            let mut answer = format!(
                "not for all {n}: a warm chunk's time per sample against the speed run's: {}. \
                 The two ran at different moments and every runtime times itself with a wall \
                 clock, so on a machine busy with other work either may include time spent \
                 waiting for a CPU.",
                apart.join(", ")
            );
            if faster > 0 {
                // Each runtime times with a wall clock: a longer timed piece more often includes
                // time spent waiting while other work has the CPU, and a median of many short
                // chunks leaves those out.
                answer += " Faster in chunks: a run of the whole job more often waits than a \
                           short chunk does, and the chunks' median leaves the ones that waited \
                           out.";
            }
            if faster < apart.len() {
                answer += " Slower in chunks: besides a busier moment, what a runtime does once \
                           per call (a timer, a compile it finishes later) weighs more in a chunk, \
                           a fraction of a run.";
            }
            answer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Row, Series};
    use crate::{Plan, job};
    use virtlab_core::outcome::Outcome;

    const SAMPLES: u64 = 1000;

    fn series(runtime: Runtime, seconds: &[f64]) -> Series {
        let mut s = Series::new(runtime);
        s.hits = vec![job::hits(1, SAMPLES); seconds.len()];
        s.seconds = seconds.to_vec();
        s
    }

    /// A comparison with these median seconds per run, 3 ms start-up each.
    fn comparison(runs: &[(Runtime, f64)]) -> Comparison {
        let rows = runs
            .iter()
            .map(|&(runtime, s)| Row {
                runtime,
                speed: Outcome::Measured(Series {
                    compile_s: runtime.runs_wasm().then_some(0.002),
                    ..series(runtime, &[s, s, s])
                }),
                startup_s: vec![0.003],
                compile_s: if runtime.runs_wasm() {
                    vec![0.001]
                } else {
                    vec![]
                },
            })
            .collect();
        Comparison {
            plan: Plan::new(SAMPLES, 3).unwrap(),
            native_hits: job::hits(1, SAMPLES),
            rows,
            load: None,
        }
    }

    /// A warm-up of chunks a tenth the size of [`comparison`]'s runs.
    fn warmup(chunks: &[(Runtime, Vec<f64>)]) -> Warmup {
        Warmup {
            plan: Plan::new(SAMPLES / 10, 4).unwrap(),
            rows: chunks
                .iter()
                .map(|(r, s)| (*r, Outcome::Measured(series(*r, s))))
                .collect(),
        }
    }

    fn answer(table: &Table, question: &str) -> String {
        let row = table.rows().iter().find(|r| r[0].starts_with(question));
        row.unwrap_or_else(|| panic!("no {question} in {table}"))[1].clone()
    }

    #[test]
    fn the_gap_between_wasmtime_and_v8_is_worded_for_the_numbers() {
        let warm = warmup(&[]);
        let apart = comparison(&[
            (Runtime::Native, 1.0),
            (Runtime::Wasmtime, 1.7),
            (Runtime::NodeWasm, 1.0),
        ]);
        let text = answer(&what_we_saw(&apart, &warm), "wasmtime and V8");
        assert!(text.starts_with("wasmtime took 1.70× V8's time"), "{text}");
        assert!(text.contains("different machine instructions"), "{text}");
        let level = comparison(&[
            (Runtime::Native, 1.0),
            (Runtime::Wasmtime, 1.02),
            (Runtime::NodeWasm, 1.05),
        ]);
        let text = answer(&what_we_saw(&level, &warm), "wasmtime and V8");
        assert!(text.starts_with("level"), "{text}");
        let v8_behind = comparison(&[(Runtime::Wasmtime, 1.0), (Runtime::NodeWasm, 1.5)]);
        let text = answer(&what_we_saw(&v8_behind, &warm), "wasmtime and V8");
        assert!(text.starts_with("V8 took 1.50× wasmtime's time"), "{text}");
        assert!(text.contains("Liftoff"), "{text}");
        let alone = comparison(&[(Runtime::Native, 1.0), (Runtime::Wasmtime, 1.0)]);
        let text = answer(&what_we_saw(&alone, &warm), "wasmtime and V8");
        assert!(text.starts_with("not measured"), "{text}");
    }

    #[test]
    fn slowdowns_start_up_and_same_answers_come_from_the_rows() {
        let mut run = comparison(&[
            (Runtime::Native, 0.5),
            (Runtime::Wasmi, 15.0),
            (Runtime::Python, 50.0),
        ]);
        run.rows[2].startup_s = vec![0.030];
        let table = what_we_saw(&run, &warmup(&[]));
        let text = answer(&table, "And the interpreters?");
        assert!(text.contains("wasmi (wasm interpreter) 30.00×"), "{text}");
        assert!(text.contains("CPython 100.00×"), "{text}");
        let text = answer(&table, "Start-up?");
        assert!(
            text.starts_with("quickest wasmi (wasm interpreter) in 3.00 ms"),
            "{text}"
        );
        assert!(text.contains("slowest CPython in 30.0 ms (10×)"), "{text}");
        assert!(
            text.contains(
                "engine + compile 1.00 of its 3.00 ms (the first in this process, before \
                           the timed runs: 2.00 ms)"
            ),
            "{text}"
        );
        assert!(answer(&table, "Did every").starts_with("yes: 3 runtimes"));
        if let Outcome::Measured(s) = &mut run.rows[1].speed {
            s.hits[0] += 1;
        }
        let text = answer(&what_we_saw(&run, &warmup(&[])), "Did every");
        assert!(text.starts_with("no: wasmi"), "{text}");
    }

    #[test]
    fn chunks_off_the_speed_runs_rate_are_named() {
        let run = comparison(&[(Runtime::Native, 1.0), (Runtime::NodeJs, 2.0)]);
        // A tenth of the samples: 0.1 s per chunk is the speed run's rate for native; Node's
        // chunks run at half of it.
        let warm = warmup(&[
            (Runtime::Native, vec![0.2, 0.1, 0.1, 0.1]),
            (Runtime::NodeJs, vec![0.9, 0.4, 0.4, 0.4]),
        ]);
        let table = what_we_saw(&run, &warm);
        let text = answer(&table, "Did a warm chunk");
        assert!(text.starts_with("not for all 2"), "{text}");
        assert!(text.contains("Node V8 (JavaScript) 2.00×."), "{text}");
        assert!(!text.contains("native Rust"), "{text}");
        assert!(text.contains("Slower in chunks"), "{text}");
        assert!(!text.contains("Faster in chunks"), "{text}");
        let text = answer(&table, "Warm-up");
        assert!(text.contains("native Rust 2.0× a warm chunk"), "{text}");
        // A JIT whose chunks settle (after 1.51 s) later than its three 0.3 s runs take in all.
        let run = comparison(&[(Runtime::Java, 0.3)]);
        let warm = warmup(&[(Runtime::Java, vec![1.0, 0.5, 0.01, 0.01])]);
        let text = answer(&what_we_saw(&run, &warm), "Did a warm chunk");
        assert!(
            text.contains("JVM (tiered JIT) 0.33× (still warming up: its chunks settled after 1510 ms, its speed runs took 900 ms in all)"),
            "{text}"
        );
        assert!(text.contains("Faster in chunks"), "{text}");
    }
}
