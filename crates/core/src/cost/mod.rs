//! The cost ladder: what one unit of each kind of worker costs — a task, a thread, a process,
//! and the kinds later chapters add — measured by one method for every kind, so they can stand
//! on one chart from a task (µs, bytes) to a virtual machine (ms, MiB).
//!
//! **The method** ([`METHOD`]). Each measurement runs in a fresh `virtlab ladder-probe`
//! process ([`probe()`]), so no memory is recycled from an earlier round. It starts N units of
//! the kind through the chapter's own executor; each prints its first line and holds until all
//! N run. Then it reads the memory of its process tree (the sum of PSS: shared pages split
//! between sharers) and the kernel's share for that tree (page tables, and a kernel stack per
//! thread — see [`crate::memory`]), and subtracts the same reading taken just before the start.
//! The time is from asking the executor for a unit to its first line, median over units and
//! rounds. What one more unit costs is the slope of that memory against N over the counts
//! measured ([`fit`]), shown beside the fixed part (the intercept).
//!
//! A saved point is reused only when it was measured on this machine (this boot) with at least
//! the rounds asked for; every point carries when it was measured, and whether the call that
//! returned it measured it or reused it ([`Rung::fresh`]), so a chart can say which is which.
//!
//! `mod.rs`: the kinds, [`Rung`], [`Ladder`] (measuring and reusing). `probe.rs`: one round.
//! `fit.rs`: the per-unit line. `report.rs`: tables, charts and "what we saw". `readings.rs`:
//! the ways memory is read, side by side.

pub mod compare;
pub mod fit;
mod probe;
pub mod readings;
mod report;

pub use fit::Fit;
pub use probe::{Measured, ProbeRound, probe, run_measured};
pub use readings::memory_readings;
pub use report::{KindCost, bytes_text, duration_text};

use crate::stats::median;
use crate::{Error, Result, store};
use serde::{Deserialize, Serialize};

/// The method, in one sentence, as charts and tables state it under themselves.
pub const METHOD: &str = "Method: a fresh virtlab process starts N units through the chapter's executor and reads, once all N run, its process tree's memory (sum of PSS) and the kernel's for that tree (page tables, VmPTE, plus one kernel stack per thread), minus the same reading before; medians of the rounds. Per unit = the slope of that memory against N over the counts measured (least squares), beside the fixed part (its intercept); chapter 1's memory-readings table sets PSS beside RSS, heap and cgroup figures. Time: from asking for a unit to its first line, median over units and rounds.";

/// The count every chapter compares kinds at on its one-point-per-kind chart (its
/// `ladder_count` parameter): small enough for a VM or a container, large enough that one
/// unit's noise does not decide the comparison.
pub const COMPARED_COUNT: usize = 16;

/// The most rounds per count.
pub const MAX_ROUNDS: usize = 20;

/// Refuses counts or a number of rounds the ladder cannot measure, before measuring. (Which
/// kinds there are is the `virtlab` program's registry to say: see [`Ladder::measured`].)
pub fn check(counts: &[usize], rounds: usize) -> Result<()> {
    crate::error::check_range("rounds", rounds, 1, MAX_ROUNDS)?;
    if counts.is_empty() {
        return Err(Error::invalid(
            "the list of counts",
            "empty",
            "give at least one count, e.g. [1, 4, 16]",
        ));
    }
    Ok(())
}

/// One kind of worker at one count: medians over rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The kind: "task", "thread", "process", …
    pub kind: String,
    /// The kind's place on the ladder, cheapest first, as the `virtlab` program's registry of
    /// kinds orders them: its row in every table and its colour on every chart. `None` in a
    /// ladder saved before it was kept (measured again), and in rungs made by hand for tests.
    #[serde(default)]
    pub place: Option<usize>,
    /// Units alive together.
    pub count: usize,
    /// From asking for a unit to its first line (median over units and rounds).
    pub asked_to_running_ms: f64,
    /// User-space memory the `count` units held together, divided by `count` (median over
    /// rounds). Not what one more unit costs: see [`KindCost`].
    pub user_bytes_each: f64,
    /// Kernel memory the `count` units held together, divided by `count` (median over rounds).
    pub kernel_bytes_each: f64,
    /// How many fresh probe processes were measured.
    pub rounds: usize,
    /// When it was measured, in seconds since 1970-01-01 UTC; `None` in a ladder saved by an
    /// older virtlab, which is measured again rather than shown undated.
    #[serde(default)]
    pub measured_at: Option<u64>,
    /// Whether the call that returned this ladder measured this point (else it was reused from
    /// an earlier run on this boot).
    #[serde(skip)]
    pub fresh: bool,
    /// What other programs and the hypervisor took while its rounds ran (`None` where it
    /// cannot be read, and in ladders saved before it was kept).
    #[serde(default)]
    pub load: Option<crate::load::Load>,
}

impl Rung {
    /// A rung with these figures (3 rounds, undated, fresh), for tests of what is said about a
    /// ladder (this crate's and the chapters' crates').
    #[doc(hidden)]
    pub fn made(kind: &str, count: usize, ms: f64, user_bytes_each: f64) -> Rung {
        Rung {
            kind: kind.into(),
            place: None,
            count,
            asked_to_running_ms: ms,
            user_bytes_each,
            kernel_bytes_each: 0.0,
            rounds: 3,
            measured_at: None,
            fresh: true,
            load: None,
        }
    }

    /// User-space memory all `count` units held together.
    pub fn user_bytes(&self) -> f64 {
        self.user_bytes_each * self.count as f64
    }

    /// Kernel memory all `count` units held together.
    pub fn kernel_bytes(&self) -> f64 {
        self.kernel_bytes_each * self.count as f64
    }
}

/// Kinds of worker measured on this machine, at the counts asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ladder {
    /// This boot of this machine (its boot id): a ladder from elsewhere is not reused.
    pub machine: String,
    /// The CPU it was measured on.
    pub cpu: String,
    /// The rungs, cheapest kind first, then by count.
    pub rungs: Vec<Rung>,
}

const STORE_NAME: &str = "cost-ladder";

/// What identifies this machine's current boot.
fn machine_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| crate::machine::cpu_model())
}

impl Ladder {
    /// A ladder of this machine with no rungs yet.
    fn empty() -> Ladder {
        Ladder {
            machine: machine_id(),
            cpu: crate::machine::cpu_model(),
            rungs: Vec::new(),
        }
    }

    /// Everything saved on this machine (this boot), whichever run measured it; an empty
    /// ladder when nothing was, or it came from elsewhere.
    pub fn saved() -> Result<Ladder> {
        let fresh = Ladder::empty();
        Ok(store::load::<Ladder>(STORE_NAME)?
            .filter(|saved| saved.machine == fresh.machine)
            .unwrap_or(fresh))
    }

    /// `kinds` at `counts`, and nothing else: saved points measured with at least `rounds`
    /// rounds are reused (and marked so), the missing ones measured now (`rounds` fresh probe
    /// processes per count) and saved. Every kind and count is checked before anything is
    /// measured (the kinds against the `virtlab` program's registry). Add kinds measured at other counts with [`Ladder::and`].
    pub fn measured(kinds: &[&str], counts: &[usize], rounds: usize) -> Result<Ladder> {
        Ladder::empty().and(kinds, counts, rounds)
    }

    /// This ladder with `kinds` at `counts` added, reused or measured as [`Ladder::measured`]
    /// does, e.g. tasks at counts a process could not reach.
    pub fn and(self, kinds: &[&str], counts: &[usize], rounds: usize) -> Result<Ladder> {
        self.gather(kinds, counts, rounds, false)
    }

    /// `kinds` at `counts`, all measured now (the `virtlab ladder` command), and saved.
    pub fn measured_anew(kinds: &[&str], counts: &[usize], rounds: usize) -> Result<Ladder> {
        Ladder::empty().gather(kinds, counts, rounds, true)
    }

    fn gather(
        mut self,
        kinds: &[&str],
        counts: &[usize],
        rounds: usize,
        anew: bool,
    ) -> Result<Ladder> {
        check(counts, rounds)?;
        let mut saved = Ladder::saved()?;
        let missing_of = |saved: &Ladder, kind: &str| {
            let mut missing: Vec<usize> = counts
                .iter()
                .copied()
                .filter(|&n| {
                    anew || saved.rung(kind, n).is_none_or(|r| {
                        // A point measured while other programs held the CPUs is measured
                        // again rather than shown as this machine's cost.
                        r.rounds < rounds
                            || r.measured_at.is_none()
                            || r.place.is_none()
                            || r.load.as_ref().is_some_and(crate::load::Load::is_busy)
                    })
                })
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        if kinds
            .iter()
            .any(|kind| !missing_of(&saved, kind).is_empty())
        {
            probe::check_kinds(kinds)?;
        }
        for kind in kinds {
            let missing = missing_of(&saved, kind);
            if !missing.is_empty() {
                saved.measure(kind, &missing, rounds)?;
            }
            for &n in counts {
                let rung = saved
                    .rung(kind, n)
                    .expect("measured or reused above")
                    .clone();
                self.rungs.retain(|r| r.kind != *kind || r.count != n);
                self.rungs.push(rung);
            }
        }
        self.sort();
        Ok(self)
    }

    /// Measures `kind` at `counts` now, replacing its rungs at those counts, and saves.
    fn measure(&mut self, kind: &str, counts: &[usize], rounds: usize) -> Result<()> {
        let mut rungs = Vec::new();
        for &count in counts {
            let (mut times, mut user, mut kernel) = (Vec::new(), Vec::new(), Vec::new());
            let mut place = None;
            let sampler = crate::load::Sampler::start();
            for _ in 0..rounds {
                let round = probe::in_fresh_process(kind, count)?;
                place = Some(round.place);
                times.extend(round.first_line_ms);
                user.push(round.user_bytes_each);
                kernel.push(round.kernel_bytes_each);
            }
            rungs.push(Rung {
                kind: kind.to_string(),
                place,
                count,
                asked_to_running_ms: median(&mut times),
                user_bytes_each: median(&mut user),
                kernel_bytes_each: median(&mut kernel),
                rounds,
                measured_at: Some(crate::units::unix_now()),
                fresh: true,
                load: sampler.stop(),
            });
        }
        self.rungs
            .retain(|r| r.kind != kind || !counts.contains(&r.count));
        self.rungs.extend(rungs);
        self.sort();
        store::save(STORE_NAME, self)?;
        Ok(())
    }

    fn sort(&mut self) {
        self.rungs
            .sort_by_key(|r| (r.place.unwrap_or(usize::MAX), r.kind.clone(), r.count));
    }

    /// The palette slot of `kind`, the same on every chart: its place on the ladder (or, for
    /// rungs made without one, its place among this ladder's kinds).
    fn color_slot(&self, kind: &str) -> usize {
        let kinds = self.kinds();
        self.rungs
            .iter()
            .find(|r| r.kind == kind)
            .and_then(|r| r.place)
            .or_else(|| kinds.iter().position(|k| *k == kind))
            .unwrap_or(kinds.len())
    }

    /// The rungs of one kind, by count.
    pub fn rungs_of(&self, kind: &str) -> Vec<&Rung> {
        self.rungs.iter().filter(|r| r.kind == kind).collect()
    }

    /// The kinds on this ladder, in ladder order.
    pub fn kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = Vec::new();
        for r in &self.rungs {
            if !kinds.contains(&r.kind.as_str()) {
                kinds.push(&r.kind);
            }
        }
        kinds
    }

    /// The rung of `kind` at `count`, if it was measured.
    pub fn rung(&self, kind: &str, count: usize) -> Option<&Rung> {
        self.rungs
            .iter()
            .find(|r| r.kind == kind && r.count == count)
    }

    /// Each kind's rung at `count`, or an error naming the kinds not measured there and how to
    /// measure them.
    pub fn compared(&self, count: usize) -> Result<Vec<&Rung>> {
        let kinds = self.kinds();
        let missing: Vec<&str> = kinds
            .iter()
            .copied()
            .filter(|k| self.rung(k, count).is_none())
            .collect();
        if kinds.is_empty() || !missing.is_empty() {
            return Err(Error::invalid(
                "the count to compare kinds at",
                format!(
                    "{count}, at which {} not measured",
                    if kinds.is_empty() {
                        "nothing was".to_string()
                    } else {
                        format!("{} was", missing.join(", "))
                    }
                ),
                format!(
                    "include {count} in the counts each kind is measured at, or compare at a count they share"
                ),
            ));
        }
        Ok(kinds
            .into_iter()
            .filter_map(|k| self.rung(k, count))
            .collect())
    }

    /// Shows the per-kind table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_kinds_and_bad_counts_are_refused_before_measuring() {
        let err = Ladder::measured(&["vm-ish"], &[1], 1).unwrap_err();
        assert!(err.fix().contains("task, wasm, thread, process"), "{err}");
        assert!(Ladder::measured(&["thread"], &[], 1).is_err());
        assert!(Ladder::measured(&["thread"], &[1], 0).is_err());
    }

    #[test]
    fn comparing_at_a_count_a_kind_lacks_names_it_and_the_fix() {
        let ladder = report::tests::sample();
        assert_eq!(ladder.compared(16).unwrap().len(), 3);
        let err = ladder.compared(64).unwrap_err();
        assert!(
            err.to_string().contains("process was not measured"),
            "{err}"
        );
        assert!(err.fix().contains("include 64"), "{err}");
        assert!(Ladder::default().compared(16).is_err());
    }
}
