//! Virtual machines as a kind of worker for the shared executor: each unit is one VM with one
//! vCPU, run on a host thread of its own (so the process explorer shows the vCPUs as threads
//! of our process). The guest runs the essay's loop and reports each iteration through its I/O
//! port; the executor's driver prints the line and pauses before the vCPU is resumed. A fault
//! on purpose is a triple fault in the guest; a guest that never exits again is woken at the
//! deadline by its [`Interrupter`]. A CPU burn in the work runs on the vCPU's host thread while
//! the guest waits in its exit (guest compute is measured on its own in [`super::cost`]).

use super::guest::Guest;
use super::{GuestExit, Interrupter, Vm, support};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor::{self, Kind, Options, Reporter, Run, Status, Stop, Unit, UnitThreads};
use virtlab_core::timeline::thread_id;
use virtlab_core::work::Work;

/// Most VMs one run makes (each holds two fds, a host thread and its guest memory).
pub const MAX_VMS: usize = 64;

/// VMs as the executor's units.
pub struct Vms {
    memory_bytes: u64,
    runaway: Option<usize>,
    interrupters: Vec<Option<Interrupter>>,
    threads: UnitThreads,
}

impl Vms {
    /// VMs with `memory_bytes` of guest memory each (64 KiB to 1 GiB, a multiple of 4 KiB).
    pub fn new(memory_bytes: u64) -> Result<Vms> {
        super::machine::check_memory(memory_bytes)?;
        Ok(Vms {
            memory_bytes,
            runaway: None,
            interrupters: Vec::new(),
            threads: UnitThreads::default(),
        })
    }

    /// Makes unit number `unit` (1-based) a runaway: its guest reports once, then loops
    /// forever without leaving; only the deadline (or a cancel) stops it.
    pub fn with_runaway(self, unit: usize) -> Vms {
        Vms {
            runaway: Some(unit),
            ..self
        }
    }
}

impl Kind for Vms {
    fn name(&self) -> &'static str {
        "vm"
    }

    fn check(&self, units: usize) -> Result<()> {
        virtlab_core::error::check_range("the number of VMs", units, 1, MAX_VMS)?;
        if let Some(runaway) = self.runaway
            && !(1..=units).contains(&runaway)
        {
            return Err(Error::invalid(
                "the runaway VM",
                runaway,
                format!("name a VM between 1 and {units}"),
            ));
        }
        support().ready()
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        // As with the other kinds, a fault past the last iteration never happens.
        let fault_at = unit.fault_at.filter(|&at| at < unit.work.iterations);
        let guest = if self.runaway == Some(unit.index + 1) {
            Guest::runaway()?
        } else {
            Guest::essay_loop(unit.work.iterations, fault_at)?
        };
        // Made here, on the caller's thread, so a VM KVM refuses is reported as refused.
        let vm = Vm::new(&unit.work.name, self.memory_bytes, &guest)?;
        if self.interrupters.len() <= unit.index {
            self.interrupters.resize(unit.index + 1, None);
        }
        self.interrupters[unit.index] = Some(vm.interrupter());
        self.threads
            .spawn(unit, "the vCPU thread of VM", move |unit| {
                let status = run_guest(vm, &unit.work, &reporter, &stop);
                reporter.ended(status);
            })
    }

    fn interrupt(&mut self, index: usize) {
        if let Some(Some(interrupter)) = self.interrupters.get(index) {
            interrupter.interrupt();
        }
    }

    fn finish(&mut self) -> String {
        let vms = self.threads.join_all();
        self.interrupters.clear();
        format!(
            "{vms} VMs, one vCPU each on its own host thread of pid {} ({} of guest memory each; {})",
            std::process::id(),
            virtlab_core::units::bytes(self.memory_bytes),
            support().label()
        )
    }
}

/// The vCPU thread: the work's loop, one guest exit per iteration, then the guest's halt.
/// The VM is dropped (fds closed, memory unmapped) before the status goes back.
fn run_guest(mut vm: Vm, work: &Work, reporter: &Reporter, stop: &Stop) -> Status {
    let tid = thread_id();
    let name = work.name.clone();
    let status = executor::drive(work, reporter, || !stop.is_set(), &mut |i| match vm.run() {
        Ok(GuestExit::Report(n)) if n == i => {
            Ok(Some(format!("{n}: {name} vcpu 0 (host tid {tid})")))
        }
        Ok(exit) => Err(ended(exit, &format!("at iteration {i}"))),
        Err(e) => Err(Status::Crashed(e.problem().to_string())),
    });
    let status = match status {
        // After its last report the guest still has to reach its `hlt`.
        Status::Completed => match vm.run() {
            Ok(GuestExit::Halted) => Status::Completed,
            Ok(exit) => ended(exit, "after its last iteration"),
            Err(e) => Status::Crashed(e.problem().to_string()),
        },
        other => other,
    };
    drop(vm);
    status
}

/// The status of a guest that left its loop with `exit` (`when`: "at iteration 1").
fn ended(exit: GuestExit, when: &str) -> Status {
    match exit {
        GuestExit::TripleFault => Status::Crashed(format!("triple fault {when}")),
        // The executor replaces this with its own reason (deadline, cancel, another's crash).
        GuestExit::Interrupted => Status::Cancelled("stopped from outside".into()),
        other => Status::Crashed(format!("the guest {other} {when}, out of turn")),
    }
}

/// Runs `work` in `vms` VMs named `<work.name>-1` … with `memory_bytes` of guest memory each.
pub fn run(work: &Work, vms: usize, memory_bytes: u64, options: Options) -> Result<Run> {
    executor::run(&mut Vms::new(memory_bytes)?, work, vms, options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use super::super::tests::kvm_usable;

    fn tid_gone(tid: Option<u64>) -> bool {
        tid.is_some_and(|t| !std::path::Path::new(&format!("/proc/self/task/{t}")).exists())
    }

    #[test]
    fn bad_choices_are_refused_before_any_vm() {
        let work = Work::new("vm", 2, 1).unwrap();
        assert!(run(&work, 0, 2 << 20, Options::quiet()).is_err());
        assert!(run(&work, MAX_VMS + 1, 2 << 20, Options::quiet()).is_err());
        assert!(run(&work, 1, 12345, Options::quiet()).is_err());
        let mut runaway = Vms::new(2 << 20).unwrap().with_runaway(3);
        let e = executor::run(&mut runaway, &work, 2, Options::quiet()).unwrap_err();
        assert!(e.problem().contains("runaway VM cannot be 3"), "{e}");
    }

    #[test]
    fn three_vms_report_every_iteration_on_their_own_threads() {
        let _serial = super::super::tests::one_at_a_time();
        if !kvm_usable() {
            return;
        }
        let fds = super::super::tests::kvm_fds();
        let options = Options {
            snapshot: true,
            ..Options::quiet()
        };
        let run = run(&Work::new("vm", 3, 1).unwrap(), 3, 2 << 20, options).unwrap();
        assert!(run.succeeded(), "{}", run.table());
        assert_eq!(super::super::tests::kvm_fds(), fds, "every VM closed");
        let iterations = run.timeline.iterations();
        assert_eq!(iterations, 9);
        assert_eq!(
            run.timeline.os_threads().len(),
            3,
            "one host thread per vCPU"
        );
        assert!(
            run.units.iter().all(|u| tid_gone(u.tid)),
            "vCPU threads joined"
        );
        assert!(run.tree().is_ok());
        assert!(run.summary.contains("3 VMs"), "{}", run.summary);
    }

    #[test]
    fn a_triple_fault_is_a_crash_and_stops_the_others() {
        let _serial = super::super::tests::one_at_a_time();
        if !kvm_usable() {
            return;
        }
        let options = Options::quiet().with_fault(2, 1);
        let run = run(&Work::new("vm", 3, 10).unwrap(), 3, 2 << 20, options).unwrap();
        assert_eq!(
            run.units[1].status,
            Status::Crashed("triple fault at iteration 1".into())
        );
        let e = run.check().unwrap_err();
        assert!(e.problem().contains("triple fault at iteration 1"), "{e}");
    }

    #[test]
    fn a_runaway_guest_is_stopped_at_the_deadline_and_its_thread_ends() {
        let _serial = super::super::tests::one_at_a_time();
        if !kvm_usable() {
            return;
        }
        let fds = super::super::tests::kvm_fds();
        let options = Options {
            deadline: Some(Duration::from_millis(300)),
            ..Options::quiet()
        };
        let mut vms = Vms::new(64 << 10).unwrap().with_runaway(1);
        let run = executor::run(&mut vms, &Work::new("vm", 2, 1).unwrap(), 2, options).unwrap();
        assert!(
            matches!(run.units[0].status, Status::TimedOut(_)),
            "{}",
            run.table()
        );
        assert_eq!(run.units[1].status, Status::Completed);
        assert!(tid_gone(run.units[0].tid));
        assert_eq!(super::super::tests::kvm_fds(), fds, "every VM closed");
    }
}
