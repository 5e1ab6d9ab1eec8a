//! Our module on wasmi, a WebAssembly interpreter, inside this process: start-up is making the
//! engine, translating the module to wasmi's own instructions (its compile), instantiating it
//! and the first call.

use super::{Runtime, Series, job};
use std::time::Instant;
use virtlab_core::Error;
use virtlab_core::Result;

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
    link(store, &module, line)
}

/// `module` instantiated in `store`, with `line` as its import.
fn link<T>(
    store: &mut wasmi::Store<T>,
    module: &wasmi::Module,
    line: impl Fn(wasmi::Caller<'_, T>, i32) + Send + Sync + 'static,
) -> Result<wasmi::Instance> {
    let mut linker = wasmi::Linker::new(store.engine());
    linker
        .func_wrap("host", "line", line)
        .map_err(|e| failed("linking", e))?;
    linker
        .instantiate_and_start(store, module)
        .map_err(|e| failed("instantiating", e))
}

/// Runs the job `repeats` times in one wasmi instance.
pub(super) fn run(seed: u64, samples: u64, repeats: usize) -> Result<Series> {
    let asked = Instant::now();
    // Translated whole before the first call (by default wasmi translates each function at its
    // first call), so the compile column is the translation, as wasmtime's is its compile.
    let mut config = wasmi::Config::default();
    config.compilation_mode(wasmi::CompilationMode::Eager);
    let engine = wasmi::Engine::new(&config);
    let module = wasmi::Module::new(&engine, job::WASM).map_err(|e| failed("compiling", e))?;
    let compile_s = asked.elapsed().as_secs_f64();
    let mut store = wasmi::Store::new(&engine, ());
    let instance = link(&mut store, &module, |_, _| {})?;
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
