//! Real VMs on this machine's KVM. Skipped (recorded as skips, see `tests/common`) where
//! `/dev/kvm` cannot be used; the no-KVM path itself is tested in `support` and by the CLI tests.

use super::guest::Ring;
use super::*;
use std::sync::{Mutex, MutexGuard, mpsc};

/// One VM test at a time, so the count of KVM fds in this process is ours alone.
pub(super) fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether KVM works here; when it does not, the calling test is skipped with the reason.
pub(super) fn kvm_usable() -> bool {
    support().ready().map_err(virtlab_testkit::skip).is_ok()
}

/// Open fds of this process that are KVM VMs or vCPUs.
pub(super) fn kvm_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().contains("kvm-"))
                .count()
        })
        .unwrap_or(0)
}

fn run_to_end(vm: &mut Vm) -> Vec<GuestExit> {
    let mut exits = Vec::new();
    loop {
        let exit = vm.run().unwrap();
        let last = !matches!(exit, GuestExit::Report(_));
        exits.push(exit);
        if last {
            return exits;
        }
    }
}

#[test]
fn the_essay_loop_reports_each_iteration_then_halts() {
    let _serial = one_at_a_time();
    if !kvm_usable() {
        return;
    }
    let fds = kvm_fds();
    {
        let mut vm = Vm::new("vm-1", 2 << 20, &Guest::essay_loop(3, None).unwrap()).unwrap();
        assert_eq!(kvm_fds(), fds + 2, "one VM fd and one vCPU fd");
        assert_eq!(
            run_to_end(&mut vm),
            [
                GuestExit::Report(0),
                GuestExit::Report(1),
                GuestExit::Report(2),
                GuestExit::Halted
            ]
        );
        assert!(vm.resident_bytes() >= 4096, "the guest touched its memory");
        let again = vm.run().unwrap_err();
        assert!(again.problem().contains("cannot run again"), "{again}");
    }
    assert_eq!(kvm_fds(), fds, "dropping the VM closes its fds");
}

#[test]
fn a_planned_fault_is_a_triple_fault_in_place_of_its_report() {
    let _serial = one_at_a_time();
    if !kvm_usable() {
        return;
    }
    let mut vm = Vm::new("vm-2", 64 << 10, &Guest::essay_loop(3, Some(1)).unwrap()).unwrap();
    assert_eq!(
        run_to_end(&mut vm),
        [GuestExit::Report(0), GuestExit::TripleFault]
    );
}

#[test]
fn the_compute_guest_marks_its_loop() {
    let _serial = one_at_a_time();
    if !kvm_usable() {
        return;
    }
    let mut vm = Vm::new(
        "vm-c",
        64 << 10,
        &Guest::compute(1000, Ring::Kernel).unwrap(),
    )
    .unwrap();
    assert_eq!(
        run_to_end(&mut vm),
        [
            GuestExit::Report(0),
            GuestExit::Report(1),
            GuestExit::Halted
        ]
    );
}

#[test]
fn the_ring_3_guest_reports_from_ring_3_and_kvm_counts_its_work() {
    let _serial = one_at_a_time();
    if !kvm_usable() {
        return;
    }
    let rounds = 100_000;
    let mut vm = Vm::new(
        "vm-u",
        64 << 10,
        &Guest::compute(rounds, Ring::User).unwrap(),
    )
    .unwrap();
    assert_eq!(vm.ring().unwrap(), 0, "every guest starts in ring 0");
    assert_eq!(vm.run().unwrap(), GuestExit::Report(0));
    assert_eq!(vm.ring().unwrap(), 3, "the iretq reached ring 3");
    let before = vm.counts();
    assert_eq!(vm.run().unwrap(), GuestExit::Report(1));
    assert_eq!(vm.ring().unwrap(), 3);
    // Where the kernel has statistics fds (5.14 and later), the report's exit was counted.
    if let (Some(before), Some(after)) = (before, vm.counts()) {
        assert!(after.exits > before.exits, "{before:?} → {after:?}");
    }
}

#[test]
fn a_runaway_guest_is_stopped_from_another_thread_and_its_thread_ends() {
    let _serial = one_at_a_time();
    if !kvm_usable() {
        return;
    }
    let fds = kvm_fds();
    let (tx, rx) = mpsc::channel();
    let vcpu_thread = std::thread::spawn(move || {
        let mut vm = Vm::new("vm-r", 64 << 10, &Guest::runaway(1).unwrap()).unwrap();
        tx.send((vm.interrupter(), virtlab_core::timeline::thread_id()))
            .unwrap();
        let first = vm.run().unwrap();
        // Now the guest spins in `jmp $` until the interrupter kicks this thread.
        let second = vm.run().unwrap();
        (first, second)
    });
    let (interrupter, tid) = rx.recv().unwrap();
    // Let the guest reach its endless loop more often than not; either way it must stop.
    std::thread::sleep(std::time::Duration::from_millis(20));
    interrupter.interrupt();
    let (first, second) = vcpu_thread.join().unwrap();
    assert_eq!(first, GuestExit::Report(0));
    assert_eq!(second, GuestExit::Interrupted);
    assert!(interrupter.is_interrupted());
    assert!(
        !std::path::Path::new(&format!("/proc/self/task/{tid}")).exists(),
        "the vCPU thread is gone"
    );
    assert_eq!(kvm_fds(), fds, "no KVM fd left");
    // Interrupting a VM that no longer exists is harmless.
    interrupter.interrupt();
}

#[test]
fn an_interrupt_at_any_moment_stops_the_guest() {
    let _serial = one_at_a_time();
    if !kvm_usable() {
        return;
    }
    // No pause between handing out the interrupter and using it: the kick lands before,
    // during or after the thread enters KVM_RUN, and every case must end the run.
    for delay_us in 0..30 {
        let (tx, rx) = mpsc::channel();
        let vcpu_thread = std::thread::spawn(move || {
            let mut vm = Vm::new("vm-race", 64 << 10, &Guest::runaway(1).unwrap()).unwrap();
            tx.send(vm.interrupter()).unwrap();
            let mut exits = Vec::new();
            loop {
                let exit = vm.run().unwrap();
                exits.push(exit.clone());
                if exit == GuestExit::Interrupted {
                    return exits;
                }
            }
        });
        let interrupter = rx.recv().unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay_us * 10));
        interrupter.interrupt();
        let exits = vcpu_thread.join().unwrap();
        assert_eq!(exits.last(), Some(&GuestExit::Interrupted));
        assert!(exits.len() <= 2, "{exits:?}");
    }
}

#[test]
fn an_interrupt_before_the_run_wins_the_race() {
    let _serial = one_at_a_time();
    if !kvm_usable() {
        return;
    }
    let mut vm = Vm::new("vm-i", 64 << 10, &Guest::runaway(1).unwrap()).unwrap();
    vm.interrupter().interrupt();
    assert_eq!(vm.run().unwrap(), GuestExit::Interrupted);
    assert_eq!(
        vm.run().unwrap(),
        GuestExit::Interrupted,
        "and it stays stopped"
    );
}

#[test]
fn bad_memory_sizes_are_refused_before_kvm_is_touched() {
    let guest = Guest::essay_loop(1, None).unwrap();
    let e = Vm::new("vm", 1000, &guest).unwrap_err();
    assert!(e.problem().contains("guest memory"), "{e}");
    let e = Vm::new("vm", (64 << 10) + 1, &guest).unwrap_err();
    assert!(e.fix().contains("4 KiB"), "{e}");
    assert!(Vm::new("vm", 2 << 30, &guest).is_err());
}
