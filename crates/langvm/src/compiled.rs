//! Our module compiled by wasmtime (Cranelift) inside this process: start-up is making the
//! engine, compiling the module to machine code, instantiating it and the first call. wasmtime
//! is a heavy build, so it is behind the `wasmtime` feature: on in the `virtlab` program (a
//! default feature), off in the notebooks' own builds, which run chapter 5 in that program.
//! Built without it, the wasmtime row is skipped and says how to get a program that has it.

use super::Series;
use virtlab_core::Result;
use virtlab_core::outcome::Outcome;

/// Runs the job `repeats` times in one wasmtime instance.
#[cfg(feature = "wasmtime")]
pub(super) fn run(seed: u64, samples: u64, repeats: usize) -> Result<Outcome<Series>> {
    use super::job;
    use std::time::Instant;
    use virtlab_core::Error;

    let failed = |what: &str, e: wasmtime::Error| {
        Error::new(
            format!("wasmtime {what} failed: {e}"),
            "report this as a bug in virtlab (the module is ours)",
        )
    };
    let asked = Instant::now();
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, job::WASM).map_err(|e| failed("compiling", e))?;
    let compile_s = asked.elapsed().as_secs_f64();
    let mut store = wasmtime::Store::new(&engine, ());
    let line = wasmtime::Func::wrap(&mut store, |_: i32| {});
    let instance = wasmtime::Instance::new(&mut store, &module, &[line.into()])
        .map_err(|e| failed("instantiating", e))?;
    let hits = instance
        .get_typed_func::<(i64, i64), i64>(&mut store, "hits")
        .map_err(|e| failed("finding `hits`", e))?;
    let mut series = Series::of_module(
        super::Runtime::Wasmtime,
        "wasmtime 48 (Cranelift)",
        job::WASM,
        compile_s,
    );
    // The module counts in i64; the bits are the same u64s.
    series.time_runs(repeats, asked, || {
        hits.call(&mut store, (seed as i64, samples as i64))
            .map(|h| h as u64)
            .map_err(|e| failed("running `hits`", e))
    })?;
    Ok(Outcome::Measured(series))
}

/// Without the `wasmtime` feature: skipped, saying where wasmtime runs.
#[cfg(not(feature = "wasmtime"))]
pub(super) fn run(_seed: u64, _samples: u64, _repeats: usize) -> Result<Outcome<Series>> {
    Ok(Outcome::Skipped(
        "this virtlab program was built without wasmtime (the `wasmtime` feature, on by \
         default): rebuild it with `cargo build --release` (or add `--features wasmtime` to \
         a build without default features), or point VIRTLAB_WORKER at a program built so"
            .into(),
    ))
}
