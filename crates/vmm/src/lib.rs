//! Chapter 6: virtual computers. A hypervisor lets one machine play many: here Linux's KVM,
//! driven from Rust through the rust-vmm crates, runs a small guest program of our own in
//! 64-bit mode, and we measure what being virtual costs.
//!
//! - [`support()`]: can this machine make VMs, and are they hardware-assisted or
//!   paravirtualized (KVM-PVM)?
//! - [`guest`]: the guest program, as assembly text and the bytes it assembles to.
//! - [`layout`]: the guest memory's tables (GDT, identity-mapped page tables).
//! - `virtlab_core::cost::compare` (re-exported as `FIRECRACKER`): starts compared in words, from the cost ladder (chapters 6 and 7).
//! - [`probe`]: the price of being virtual from inside this machine (cpuid, steal time).
//! - `cost` (Linux, x86-64): making a VM phase by phase, an exit's round trip, the same loop
//!   in the guest's ring 0, its ring 3 and natively.
//! - `kind` (Linux, x86-64): VMs as the executor's units, one vCPU thread each; `kind::run`.
//! - `report` (Linux, x86-64): the chapter's conclusions, worded from its run.
//! - `Vm` (Linux, x86-64): one VM with one vCPU, run exit by exit; `Interrupter` stops it
//!   from another thread.
//!
//! A guest talks to us only by leaving: each `out` is a VM exit that returns from `Vm::run`
//! as a [`GuestExit`].

#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod guest;
pub mod layout;
pub mod probe;
pub mod support;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod cost;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod kind;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod machine;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod report;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod vcpu;

pub use guest::{Guest, Ring, native_compute};
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use kind::{VmDetail, Vms};
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use machine::{Startup, VcpuCounts, Vm};
pub use support::{Mode, Support, support};
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub use vcpu::Interrupter;
pub use virtlab_core::cost::compare::FIRECRACKER;

use std::fmt;

/// Guest memory of each VM on the cost ladder: one 2 MiB page, what the smallest real guests
/// of this chapter get.
pub const LADDER_MEMORY: u64 = 2 << 20;

/// Runs `measure` when this machine can make VMs; otherwise prints why not and what to do (on
/// stdout: a notebook shows it as a note, not as a failure) and returns `None`. For the
/// chapter's cells, so that a machine without KVM still shows everything else.
pub fn if_kvm<T>(
    measure: impl FnOnce() -> virtlab_core::Result<T>,
) -> virtlab_core::Result<Option<T>> {
    match support().ready() {
        Ok(()) => measure().map(Some),
        Err(e) => {
            println!("Skipped, no VMs here: {}", e.sentence());
            Ok(None)
        }
    }
}

/// Why [`Vm::run`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    /// The guest reported a number on its port (`out`): an iteration, or a mark in a timed loop.
    Report(u32),
    /// The guest executed `hlt`: it is done.
    Halted,
    /// The guest faulted with nothing to handle the fault: the CPU shut down.
    TripleFault,
    /// An [`Interrupter`] stopped the vCPU.
    Interrupted,
    /// Anything else, in words.
    Other(String),
}

impl fmt::Display for GuestExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestExit::Report(n) => write!(f, "reported {n}"),
            GuestExit::Halted => f.write_str("halted"),
            GuestExit::TripleFault => f.write_str("triple fault"),
            GuestExit::Interrupted => f.write_str("interrupted"),
            GuestExit::Other(what) => f.write_str(what),
        }
    }
}

#[cfg(all(test, target_os = "linux", target_arch = "x86_64"))]
mod tests;

#[cfg(test)]
mod if_kvm_tests {
    #[test]
    fn measures_only_where_kvm_works() {
        let ready = super::support().ready().is_ok();
        let got = super::if_kvm(|| Ok(7)).unwrap();
        assert_eq!(got, ready.then_some(7));
        if ready {
            let e = super::if_kvm(|| Err::<(), _>(virtlab_core::Error::bug("x"))).unwrap_err();
            assert_eq!(e.problem(), "x");
        }
    }
}
