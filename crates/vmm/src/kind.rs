//! Virtual machines as a kind of worker for the shared executor: each unit is one VM with one
//! vCPU, run on a host thread of its own (so the process explorer shows the vCPUs as threads
//! of our process). The guest runs the essay's loop and reports each iteration through its I/O
//! port; the executor's driver prints the line and pauses before the vCPU is resumed. A fault
//! on purpose is a triple fault in the guest; a guest that never exits again is woken at the
//! deadline by its [`Interrupter`]. A CPU burn in the work runs on the vCPU's host thread while
//! the guest waits in its exit (guest compute is measured on its own in [`super::cost`]).

use super::guest::Guest;
use super::{GuestExit, Interrupter, VcpuCounts, Vm, support};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor::{
    self, Crash, Detail, Kind, Options, Reporter, Run, Status, Stop, Unit, UnitLimit, UnitThreads,
};
use virtlab_core::timeline::thread_id;
use virtlab_core::work::Work;

/// Most VMs one run makes (each holds two fds, a host thread and its guest memory).
pub const MAX_VMS: usize = 64;

/// What a VM reports beyond how it ended: KVM's own counters for its vCPU over its life (none
/// where KVM has no stats interface).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VmDetail {
    /// Exits to the hypervisor and instructions KVM emulated, read just before the VM closed.
    pub counts: Option<VcpuCounts>,
}

impl Detail for VmDetail {
    fn columns() -> &'static [&'static str] {
        &["guest exits", "emulated instructions"]
    }

    fn cells(&self) -> Vec<String> {
        match &self.counts {
            Some(c) => vec![c.exits.to_string(), c.emulated_instructions.to_string()],
            None => vec!["not counted".into(), "not counted".into()],
        }
    }
}

/// VMs as the executor's units.
pub struct Vms {
    memory_bytes: u64,
    /// Each VM's counters, written by its vCPU thread as the VM closes.
    counts: Arc<Mutex<Vec<Option<VcpuCounts>>>>,
    interrupters: Vec<Option<Interrupter>>,
    threads: UnitThreads,
}

impl Vms {
    /// VMs with `memory_bytes` of guest memory each (64 KiB to 1 GiB, a multiple of 4 KiB).
    pub fn new(memory_bytes: u64) -> Result<Vms> {
        super::machine::check_memory(memory_bytes)?;
        Ok(Vms {
            memory_bytes,
            counts: Arc::default(),
            interrupters: Vec::new(),
            threads: UnitThreads::default(),
        })
    }
}

impl Kind for Vms {
    type Detail = VmDetail;

    fn name(&self) -> &'static str {
        "vm"
    }

    fn limit(&self) -> UnitLimit {
        UnitLimit {
            units: "VMs",
            most: MAX_VMS,
            why: "virtlab's cap: each VM holds two fds, a host thread and its guest memory".into(),
        }
    }

    fn ready(&self) -> Result<()> {
        support().ready()
    }

    fn can_run_away(&self) -> bool {
        true
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        // As with the other kinds, a fault past the last iteration never happens.
        let fault_at = unit.fault_at.filter(|&at| at < unit.work.iterations());
        let guest = if let Some(at) = unit.runaway_at {
            Guest::runaway(at)?
        } else {
            Guest::essay_loop(unit.work.iterations(), fault_at)?
        };
        // Made here, on the caller's thread, so a VM KVM refuses is reported as refused.
        let vm = Vm::new(unit.work.name(), self.memory_bytes, &guest)?;
        if self.interrupters.len() <= unit.index {
            self.interrupters.resize(unit.index + 1, None);
        }
        self.interrupters[unit.index] = Some(vm.interrupter());
        let counts = self.counts.clone();
        self.threads
            .spawn(unit, "the vCPU thread of VM", move |unit| {
                let (status, read) = run_guest(vm, &unit.work, &reporter, &stop);
                let mut counts = counts.lock().unwrap_or_else(|e| e.into_inner());
                if counts.len() <= unit.index {
                    counts.resize(unit.index + 1, None);
                }
                counts[unit.index] = read;
                drop(counts);
                reporter.ended(status);
            })
    }

    fn detail(&mut self, index: usize) -> VmDetail {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        VmDetail {
            counts: counts.get(index).cloned().flatten(),
        }
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
/// The VM's counters are read and the VM dropped (fds closed, memory unmapped) before the
/// status goes back.
fn run_guest(
    mut vm: Vm,
    work: &Work,
    reporter: &Reporter,
    stop: &Stop,
) -> (Status, Option<VcpuCounts>) {
    let tid = thread_id();
    let name = work.name().to_string();
    let status = executor::drive(work, reporter, || !stop.is_set(), &mut |i| match vm.run() {
        Ok(GuestExit::Report(n)) if n == i => {
            Ok(Some(format!("{n}: {name} vcpu 0 (host tid {tid})")))
        }
        Ok(exit) => Err(ended(exit, Some(i))),
        Err(e) => Err(unrunnable(&e)),
    });
    let status = match status {
        // After its last report the guest still has to reach its `hlt`.
        Status::Completed => match vm.run() {
            Ok(GuestExit::Halted) => Status::Completed,
            Ok(exit) => ended(exit, None),
            Err(e) => unrunnable(&e),
        },
        other => other,
    };
    let counts = vm.counts();
    drop(vm);
    (status, counts)
}

/// A vCPU KVM would not run any more.
fn unrunnable(e: &Error) -> Status {
    Status::Crashed(Crash::Unreported(format!(
        "KVM stopped running its vCPU: {}",
        e.problem()
    )))
}

/// The status of a guest that left its loop with `exit` at `iteration` (none: after its last).
fn ended(exit: GuestExit, iteration: Option<u32>) -> Status {
    match exit {
        GuestExit::TripleFault => Status::Crashed(Crash::Trap {
            what: "triple fault".into(),
            iteration,
        }),
        // The executor replaces this with its own reason (deadline, cancel, another's crash).
        GuestExit::Interrupted => Status::Stopped,
        other => Status::Crashed(Crash::Trap {
            what: format!("the guest {other}, out of turn"),
            iteration,
        }),
    }
}

/// Runs `work` in `vms` VMs named `<work.name()>-1` … with `memory_bytes` of guest memory each.
pub fn run(work: &Work, vms: usize, memory_bytes: u64, options: Options) -> Result<Run<VmDetail>> {
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
        let mut vms = Vms::new(2 << 20).unwrap();
        let e = executor::run(&mut vms, &work, 2, Options::quiet().with_runaway(3, 1)).unwrap_err();
        assert!(
            e.problem().contains("the unit to run away cannot be 3"),
            "{e}"
        );
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
        for unit in &run.units {
            // Three reports and the halt each left the guest, whatever else KVM counted.
            let counts = unit.detail.counts.as_ref();
            assert!(counts.is_none_or(|c| c.exits >= 4), "{:?}", unit.detail);
        }
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
            run.units[1].status.describe(),
            "crashed: triple fault at iteration 1"
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
            ..Options::quiet().with_runaway(1, 1)
        };
        let mut vms = Vms::new(64 << 10).unwrap();
        let run = executor::run(&mut vms, &Work::new("vm", 2, 1).unwrap(), 2, options).unwrap();
        assert!(
            matches!(run.units[0].status, Status::TimedOut { .. }),
            "{}",
            run.table()
        );
        assert_eq!(run.units[1].status, Status::Completed);
        assert!(tid_gone(run.units[0].tid));
        assert_eq!(super::super::tests::kvm_fds(), fds, "every VM closed");
    }
}
