//! What the machine offers: the facts every chapter reads (the core's: CPU model, usable CPUs,
//! free memory, hypervisor) and, with the `machine` feature, chapter 0's whole inventory
//! ([`Machine`]: those with the cgroup limits, SIMD, the GPU and KVM rows).

pub use virtlab_core::machine::{available_memory, cpu_model, hypervisor, usable_cpus};

#[cfg(feature = "machine")]
mod inventory;

#[cfg(feature = "machine")]
pub use inventory::*;
