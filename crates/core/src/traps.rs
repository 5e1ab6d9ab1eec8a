//! What traps: the cost of `cpuid` (on a virtual CPU the hypervisor answers it, so it leaves
//! the VM), of a `getppid` system call (our own kernel answers), of `rdtsc` (the CPU answers)
//! and of a plain function call, timed from inside the machine — chapter 6's price of being
//! virtual and chapter 9's evidence of a VM layer.

use crate::Result;
use crate::stats::median;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Operations per timed batch: enough to hide the clock's own cost (~20 ns).
const BATCH: u32 = 200;

/// One operation's cost, the median over batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpCost {
    /// The operation, e.g. `cpuid`.
    pub name: String,
    /// What it shows, in a few words.
    pub why: String,
    /// Median ns per operation.
    pub ns: f64,
}

/// Times `cpuid`, a `getppid` system call, `rdtsc` and a plain function call, `batches` batches
/// of 200 each; reports medians per operation.
pub fn instruction_costs(batches: usize) -> Result<Vec<OpCost>> {
    crate::error::check_range("batches", batches, 1, 100_000)?;
    let mut costs = Vec::new();
    #[cfg(target_arch = "x86_64")]
    costs.push(OpCost {
        name: "cpuid".into(),
        why: "in a VM, traps to the hypervisor".into(),
        ns: per_op(batches, || std::arch::x86_64::__cpuid(0).eax),
    });
    costs.push(OpCost {
        name: "getppid system call".into(),
        why: "our own kernel answers, no hypervisor".into(),
        // SAFETY: getppid has no preconditions.
        ns: per_op(batches, || unsafe { libc::getppid() } as u32),
    });
    #[cfg(target_arch = "x86_64")]
    costs.push(OpCost {
        name: "rdtsc".into(),
        why: "the CPU answers (TSC offsetting), no exit".into(),
        // SAFETY: rdtsc exists on every x86-64 CPU.
        ns: per_op(batches, || unsafe { std::arch::x86_64::_rdtsc() } as u32),
    });
    costs.push(OpCost {
        name: "function call".into(),
        why: "the floor: no kernel, no hypervisor".into(),
        ns: per_op(batches, || call(7)),
    });
    Ok(costs)
}

#[inline(never)]
fn call(x: u32) -> u32 {
    std::hint::black_box(x).wrapping_add(1)
}

/// Median ns per call of `op` over `batches` batches of [`BATCH`] calls.
fn per_op(batches: usize, mut op: impl FnMut() -> u32) -> f64 {
    // One warm-up batch: the first calls pay for page faults and cold caches.
    for _ in 0..BATCH {
        std::hint::black_box(op());
    }
    let mut samples: Vec<f64> = (0..batches)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..BATCH {
                std::hint::black_box(op());
            }
            t.elapsed().as_nanos() as f64 / f64::from(BATCH)
        })
        .collect();
    median(&mut samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operation_is_timed_and_a_bad_count_refused() {
        let costs = instruction_costs(3).unwrap();
        assert!(costs.iter().any(|c| c.name.contains("getppid")));
        assert!(costs.iter().all(|c| c.ns > 0.0), "{costs:?}");
        assert!(instruction_costs(0).is_err());
    }
}
