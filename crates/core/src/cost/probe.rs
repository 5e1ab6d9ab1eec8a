//! One measurement of the ladder: N units of one kind started in this process, and what they
//! took (the probe side of [`super::METHOD`]). `virtlab ladder-probe` runs it in a fresh
//! process, so no memory is recycled from an earlier round.

use crate::executor::{AnyKind, Options, Run};
use crate::work::Work;
use crate::{Result, release};
use serde::{Deserialize, Serialize};

/// One round of a probe: what N units of a kind cost, measured in a fresh process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRound {
    /// The kind's place on the ladder, as the program's registry of kinds orders them.
    pub place: usize,
    /// Per unit: ms from asking for it to its first line.
    pub first_line_ms: Vec<f64>,
    /// User-space memory the N units added (PSS of the process tree), divided by N.
    pub user_bytes_each: f64,
    /// Kernel memory the N units added (kernel stacks, page tables), divided by N.
    pub kernel_bytes_each: f64,
}

/// Measures `count` units of `kind` (the ladder's rung `rung`, at `place` in the registry's
/// order) in this process.
pub fn probe(rung: &str, place: usize, kind: &mut dyn AnyKind, count: usize) -> Result<ProbeRound> {
    // Each unit holds after its first line long enough for the last one to start.
    let hold_ms = 300 + count as u64 / 20;
    let measured = run_measured(kind, &Work::new(rung, 2, hold_ms)?, count)?;
    Ok(ProbeRound {
        place,
        first_line_ms: measured
            .run
            .units
            .iter()
            .filter_map(|u| u.first_line_ms)
            .collect(),
        user_bytes_each: measured.user_bytes_each,
        kernel_bytes_each: measured.kernel_bytes_each,
    })
}

/// A run of `count` units, with what they added to this process tree's memory per unit.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The run, as the executor returned it.
    pub run: Run,
    /// User-space memory (PSS of the tree) the units added, divided by their count.
    pub user_bytes_each: f64,
    /// Kernel memory (stacks, page tables) the units added, divided by their count.
    pub kernel_bytes_each: f64,
}

/// Runs `work` as `count` units of `kind` in this process, reading its process tree's memory
/// just before the start and once every unit printed its first line (the ladder's method;
/// the work must outlast the last unit's start for the second reading to hold them all). A
/// unit that failed gives the error naming it.
pub fn run_measured(kind: &mut dyn AnyKind, work: &Work, count: usize) -> Result<Measured> {
    kind.check(count)?;
    let before = crate::observer::snapshot(std::process::id())?;
    let options = Options {
        echo: false,
        snapshot: true,
        ..Options::default()
    };
    let run = kind.run_plain(work, count, options)?;
    run.check()?;
    let during = run.tree()?;
    let per_unit = |b: u64, d: u64| (d as f64 - b as f64) / count as f64;
    Ok(Measured {
        user_bytes_each: per_unit(before.user_bytes(), during.user_bytes()),
        kernel_bytes_each: per_unit(before.kernel_bytes(), during.kernel_bytes()),
        run,
    })
}

/// Runs one probe round in a fresh `virtlab ladder-probe` process.
pub(super) fn in_fresh_process(kind: &str, count: usize) -> Result<ProbeRound> {
    release::json(
        "the ladder's probe",
        &[
            "ladder-probe",
            "--kind",
            kind,
            "--count",
            &count.to_string(),
        ],
    )
}

/// Refuses kinds the `virtlab` program's registry does not know, naming the ones it does.
pub(super) fn check_kinds(kinds: &[&str]) -> Result<()> {
    let known: Vec<String> = release::json("the ladder's kinds", &["ladder-probe", "--rungs"])?;
    match kinds.iter().find(|kind| !known.iter().any(|k| k == *kind)) {
        Some(unknown) => Err(crate::Error::invalid(
            "the kind of worker",
            format!("'{unknown}'"),
            format!("choose one of {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_counts_real_memory_for_threads() {
        let round = probe("thread", 2, &mut crate::threads::Threads::new(), 64).unwrap();
        assert_eq!(round.first_line_ms.len(), 64);
        assert!(round.user_bytes_each > 0.0, "{round:?}");
    }
}
