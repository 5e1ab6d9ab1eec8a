//! Our module on wasmi, a WebAssembly interpreter, inside this process: start-up is making the
//! engine, translating the module, instantiating it and the first call.

use super::{Runtime, Series, job};
use crate::{Error, Result};
use std::time::Instant;

/// A wasmi failure as an error of ours.
pub(super) fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        format!("wasmi {what} failed: {e}"),
        "report this as a bug in virtlab (the module is ours)",
    )
}

/// Our module instantiated in `store`, its `line` import doing nothing (the job never calls it).
pub(super) fn instantiate<T>(
    engine: &wasmi::Engine,
    store: &mut wasmi::Store<T>,
    bytes: &[u8],
    line: impl Fn(wasmi::Caller<'_, T>, i32) + Send + Sync + 'static,
) -> Result<wasmi::Instance> {
    let module = wasmi::Module::new(engine, bytes).map_err(|e| failed("compiling", e))?;
    let mut linker = wasmi::Linker::new(engine);
    linker
        .func_wrap("host", "line", line)
        .map_err(|e| failed("linking", e))?;
    linker
        .instantiate_and_start(store, &module)
        .map_err(|e| failed("instantiating", e))
}

/// Runs the job `repeats` times in one wasmi instance.
pub(super) fn run(seed: u64, samples: u64, repeats: usize) -> Result<Series> {
    let asked = Instant::now();
    let engine = wasmi::Engine::default();
    let mut store = wasmi::Store::new(&engine, ());
    let instance = instantiate(&engine, &mut store, job::WASM, |_, _| {})?;
    let compile_s = asked.elapsed().as_secs_f64();
    let hits = instance
        .get_typed_func::<(i64, i64), i64>(&store, "hits")
        .map_err(|e| failed("finding `hits`", e))?;
    let mut series = Series::of_module(Runtime::Wasmi, "wasmi 2.0", job::WASM, compile_s);
    // The module counts in i64; the bits are the same u64s.
    series.time_runs(repeats, asked, || {
        hits.call(&mut store, (seed as i64, samples as i64))
            .map(|h| h as u64)
            .map_err(|e| failed("running `hits`", e))
    })?;
    Ok(series)
}
