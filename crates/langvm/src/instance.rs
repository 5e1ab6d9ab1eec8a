//! A WebAssembly instance as a kind of worker ([`WasmInstances`]): each unit is one instance of
//! our module (wasmi, with fuel metering) on a thread of its own. At each iteration of the
//! essay's loop the guest calls its `line` import; the host prints the line and pauses. The
//! sandbox shows in two ways: a fault on purpose is the guest reading past the end of its linear
//! memory, which traps and is reported (`trap: out of bounds memory access`) while the host runs
//! on; and a runaway guest (an endless loop) is stopped at the deadline, because the guest runs
//! on fuel and the host looks at the unit's `Stop` each time the fuel runs out.

use super::job;
use super::wasm::{failed, instantiate};
use virtlab_core::Result;
use virtlab_core::executor::{
    self, Crash, Kind, Options, Reporter, Run, Status, Stop, Unit, UnitLimit, UnitThreads,
};
use virtlab_core::threads::{process_name, thread_limit};
use virtlab_core::timeline::thread_id;
use virtlab_core::work::Work;

/// Fuel per slice: a thousand or so guest instructions, so a stop is seen at once. Small on
/// purpose: wasmi dispatches by tail calls, which a notebook's build (opt-level 2 with debug
/// assertions) does not always turn into jumps, so a long slice can overflow the thread's stack.
const FUEL_SLICE: u64 = 1_000;

/// WebAssembly instances as a kind of worker (see the module's description).
pub struct WasmInstances {
    engine: wasmi::Engine,
    process: String,
    threads: UnitThreads,
}

impl WasmInstances {
    /// Instances of our module, on an engine that meters fuel.
    pub fn new() -> Result<WasmInstances> {
        let mut config = wasmi::Config::default();
        config.consume_fuel(true);
        Ok(WasmInstances {
            engine: wasmi::Engine::new(&config),
            process: process_name(),
            threads: UnitThreads::default(),
        })
    }
}

/// What the host keeps per instance: the iteration the guest last asked a line for.
#[derive(Default)]
struct Host {
    asked: Option<i32>,
}

/// Calls `func` in `store`, refilling its fuel slice by slice until it returns; gives up with
/// the status `Stopped` once `stop` is set (the executor then reports why it stopped the
/// unit). A trap becomes a crash ([`Crash::Trap`]).
fn call_with_fuel<P: wasmi::WasmParams, R: wasmi::WasmResults>(
    store: &mut wasmi::Store<Host>,
    func: &wasmi::TypedFunc<P, R>,
    args: P,
    stop: &Stop,
) -> std::result::Result<R, Status> {
    let trap = |e: wasmi::Error| {
        Status::Crashed(Crash::Trap {
            what: e.to_string(),
            iteration: None,
        })
    };
    store.set_fuel(FUEL_SLICE).map_err(trap)?;
    let mut call = func.call_resumable(&mut *store, args).map_err(trap)?;
    loop {
        match call {
            wasmi::TypedResumableCall::Finished(result) => return Ok(result),
            wasmi::TypedResumableCall::OutOfFuel(paused) => {
                if stop.is_set() {
                    return Err(Status::Stopped);
                }
                store.set_fuel(FUEL_SLICE).map_err(trap)?;
                call = paused.resume(&mut *store).map_err(trap)?;
            }
            wasmi::TypedResumableCall::HostTrap(_) => {
                return Err(Status::Crashed(Crash::Trap {
                    what: "a host function failed".into(),
                    iteration: None,
                }));
            }
        }
    }
}

impl Kind for WasmInstances {
    type Detail = ();

    fn name(&self) -> &'static str {
        "wasm instance"
    }

    fn limit(&self) -> UnitLimit {
        thread_limit("wasm instances")
    }

    fn can_run_away(&self) -> bool {
        true
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        let mut store = wasmi::Store::new(&self.engine, Host::default());
        let instance = instantiate(
            &self.engine,
            &mut store,
            job::WASM,
            |mut caller: wasmi::Caller<'_, Host>, i: i32| caller.data_mut().asked = Some(i),
        )?;
        let iteration = instance
            .get_typed_func::<(i32, i32), ()>(&store, "iteration")
            .map_err(|e| failed("finding `iteration`", e))?;
        let spin = instance
            .get_typed_func::<(), ()>(&store, "spin")
            .map_err(|e| failed("finding `spin`", e))?;
        let runaway_at = unit.runaway_at;
        let process = self.process.clone();
        self.threads.spawn(unit, "wasm instance", move |unit| {
            let (tid, pid) = (thread_id(), std::process::id());
            let name = unit.work.name().to_string();
            let status = executor::drive(&unit.work, &reporter, || !stop.is_set(), &mut |i| {
                if runaway_at == Some(i) {
                    call_with_fuel(&mut store, &spin, (), &stop)?;
                }
                let fault = i32::from(unit.fault_at == Some(i));
                store.data_mut().asked = None;
                call_with_fuel(&mut store, &iteration, (i as i32, fault), &stop)?;
                // The guest asked for this iteration's line through its import.
                Ok(store.data().asked.map(|asked| {
                    format!("{asked}: {name} (wasm instance, tid {tid}) in {process} pid {pid}")
                }))
            });
            reporter.ended(status);
        })
    }

    fn finish(&mut self) -> String {
        let instances = self.threads.join_all();
        format!(
            "{instances} wasm instances (wasmi, fuel-metered) in one process ({} pid {}), one \
             thread each",
            self.process,
            std::process::id()
        )
    }
}

/// Runs `work` as `instances` WebAssembly instances named `<work.name()>-1` … in this process.
pub fn run(work: &Work, instances: usize, options: Options) -> Result<Run> {
    executor::run(&mut WasmInstances::new()?, work, instances, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn instances_print_the_essays_lines_through_their_import() {
        let work = Work::new("wasm", 2, 10).unwrap();
        let run = run(&work, 3, Options::quiet()).unwrap();
        assert!(run.succeeded(), "{run:?}");
        assert_eq!(run.timeline.pids(), vec![std::process::id()]);
        assert_eq!(run.timeline.os_threads().len(), 3);
    }

    #[test]
    fn an_out_of_bounds_read_traps_and_is_reported() {
        let work = Work::new("wasm", 3, 10).unwrap();
        let run = run(&work, 2, Options::quiet().with_fault(2, 1)).unwrap();
        match &run.units[1].status {
            Status::Crashed(crash) => {
                let detail = crash.describe();
                assert!(detail.starts_with("trap: out of bounds"), "{detail}")
            }
            other => panic!("expected a trap, got {other:?}"),
        }
        assert!(run.check().unwrap_err().problem().contains("wasm-2"));
    }

    #[test]
    fn a_runaway_guest_is_stopped_at_the_deadline() {
        let work = Work::new("wasm", 3, 10).unwrap();
        let mut kind = WasmInstances::new().unwrap();
        let options = Options {
            deadline: Some(Duration::from_millis(300)),
            ..Options::quiet().with_runaway(1, 1)
        };
        let run = executor::run(&mut kind, &work, 2, options).unwrap();
        assert!(
            matches!(run.units[0].status, Status::TimedOut { .. }),
            "{run:?}"
        );
        assert!(matches!(run.units[1].status, Status::Completed), "{run:?}");
    }
}
