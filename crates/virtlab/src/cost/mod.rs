//! The cost ladder: what one unit of each kind of worker costs — a task, a thread, a process,
//! and the kinds later chapters add — measured by one method for every kind, so they can stand
//! on one chart from a task (µs, bytes) to a virtual machine (ms, MiB).
//!
//! **The method** ([`METHOD`]). Each measurement runs in a fresh `virtlab ladder-probe`
//! process, so no memory is recycled from an earlier round. It starts N units of the kind
//! through the chapter's own executor; each prints its first line and holds until all N run.
//! Then it reads the memory of its process tree (the sum of PSS: shared pages split between
//! sharers) and the kernel's share for that tree (page tables, and a kernel stack per thread —
//! see [`crate::memory`]), and subtracts
//! the same reading taken just before the start. Per unit = that difference / N. The time is
//! from asking the executor for a unit to its first line, median over units and rounds.
//!
//! A saved ladder is reused only when it was measured on this machine (this boot) with the
//! counts asked for; anything else is measured anew.
//!
//! Why one long file: the probe, the ladder and its charts share the one method and its types;
//! about a third of the file is tests.

use crate::display::{Figure, Table};
use crate::executor::{self, Kind, Options};
use crate::plot::LineChart;
use crate::stats::median;
use crate::work::Work;
use crate::{Error, Result, langvm, processes, release, store, tasks, threads, units};
use serde::{Deserialize, Serialize};

/// The method, in one sentence, as charts and tables state it under themselves.
pub const METHOD: &str = "Method: a fresh virtlab process starts N units through the chapter's executor and reads, once all N run, its process tree's memory (sum of PSS) and the kernel's for that tree (page tables, VmPTE, plus one kernel stack per thread), minus the same reading before; per unit = difference / N, median of the rounds. Time: from asking for a unit to its first line, median over units and rounds. Points at or below zero (within a page of noise) cannot sit on a log axis and are left out.";

/// The kinds of worker the ladder can measure so far, cheapest first.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub const KINDS: &[&str] = &["task", "wasm", "thread", "process", "container", "vm"];
/// The kinds of worker the ladder can measure so far, cheapest first.
#[cfg(all(target_os = "linux", not(target_arch = "x86_64")))]
pub const KINDS: &[&str] = &["task", "wasm", "thread", "process", "container"];
/// The kinds of worker the ladder can measure so far, cheapest first.
#[cfg(not(target_os = "linux"))]
pub const KINDS: &[&str] = &["task", "wasm", "thread", "process"];

/// The most rounds per count.
pub const MAX_ROUNDS: usize = 20;

/// The kind of worker called `name`, ready to start units.
fn kind_named(name: &str) -> Result<Box<dyn Kind>> {
    match name {
        "process" => Ok(Box::new(processes::Processes::new()?)),
        "thread" => Ok(Box::new(threads::Threads::new())),
        "task" => Ok(Box::new(tasks::Tasks::new()?)),
        "wasm" => Ok(Box::new(langvm::instance::WasmInstances::new()?)),
        #[cfg(target_os = "linux")]
        "container" => Ok(Box::new(crate::container::kind::Containers::for_ladder()?)),
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        "vm" => Ok(Box::new(crate::vm::Vms::new(crate::vm::LADDER_MEMORY)?)),
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        "vm" => Err(Error::unavailable(
            "virtual machines here need KVM on Linux x86-64",
            "measure the VM rung on a Linux x86-64 machine with /dev/kvm",
        )),
        other => Err(Error::invalid(
            "the kind of worker",
            format!("'{other}'"),
            format!("choose one of {}", KINDS.join(", ")),
        )),
    }
}

/// One round of a probe: what N units of a kind cost, measured in a fresh process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRound {
    /// Per unit: ms from asking for it to its first line.
    pub first_line_ms: Vec<f64>,
    /// User-space memory each unit added (PSS of the process tree).
    pub user_bytes_each: f64,
    /// Kernel memory each unit added (kernel stacks, page tables).
    pub kernel_bytes_each: f64,
}

/// Measures `count` units of `kind` in this process (the probe side of [`METHOD`]).
pub fn probe(kind: &str, count: usize) -> Result<ProbeRound> {
    let mut kind_impl = kind_named(kind)?;
    kind_impl.check(count)?;
    // Each unit holds after its first line long enough for the last one to start.
    let hold_ms = 300 + count as u64 / 20;
    let work = Work::new(kind, 2, hold_ms)?;
    let before = crate::observer::snapshot(std::process::id())?;
    let options = Options {
        echo: false,
        snapshot: true,
        ..Options::default()
    };
    let run = executor::run(kind_impl.as_mut(), &work, count, options)?;
    run.check()?;
    let during = run.tree()?;
    let per_unit = |b: u64, d: u64| (d as f64 - b as f64) / count as f64;
    Ok(ProbeRound {
        first_line_ms: run.units.iter().filter_map(|u| u.first_line_ms).collect(),
        user_bytes_each: per_unit(before.user_bytes(), during.user_bytes()),
        kernel_bytes_each: per_unit(before.kernel_bytes(), during.kernel_bytes()),
    })
}

/// Runs one probe round in a fresh `virtlab ladder-probe` process.
fn probe_in_fresh_process(kind: &str, count: usize) -> Result<ProbeRound> {
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

/// Refuses a kind, count or number of rounds the ladder cannot measure, before measuring.
pub fn check(kind: &str, counts: &[usize], rounds: usize) -> Result<()> {
    crate::error::check_range("rounds", rounds, 1, MAX_ROUNDS)?;
    if counts.is_empty() {
        return Err(Error::invalid(
            "the list of counts",
            "empty",
            "give at least one count, e.g. [1, 4, 16]",
        ));
    }
    let checker = kind_named(kind)?;
    counts.iter().try_for_each(|&n| checker.check(n))
}

/// One kind of worker at one count: medians over rounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rung {
    /// The kind: "task", "thread", "process", …
    pub kind: String,
    /// Units alive together.
    pub count: usize,
    /// From asking for a unit to its first line (median over units and rounds).
    pub asked_to_running_ms: f64,
    /// User-space memory per unit (median over rounds).
    pub user_bytes_each: f64,
    /// Kernel memory per unit (median over rounds).
    pub kernel_bytes_each: f64,
    /// How many fresh probe processes were measured.
    pub rounds: usize,
}

impl Rung {
    /// User-space and kernel memory together.
    pub fn bytes_each(&self) -> f64 {
        self.user_bytes_each.max(0.0) + self.kernel_bytes_each.max(0.0)
    }
}

/// Every kind measured on this machine, at the counts it was measured at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ladder {
    /// This boot of this machine (its boot id): a ladder from elsewhere is not reused.
    pub machine: String,
    /// The CPU it was measured on.
    pub cpu: String,
    /// The rungs, cheapest kind first.
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
    /// The ladder saved on this machine, or an empty one when none was, or it came from elsewhere.
    pub fn saved() -> Result<Ladder> {
        let fresh = Ladder {
            machine: machine_id(),
            cpu: crate::machine::cpu_model(),
            rungs: Vec::new(),
        };
        Ok(store::load::<Ladder>(STORE_NAME)?
            .filter(|saved| saved.machine == fresh.machine)
            .unwrap_or(fresh))
    }

    /// This machine's ladder with each of `kinds` at (at least) `counts`: saved rungs measured
    /// with at least `rounds` rounds are reused, the missing ones measured now (`rounds` fresh
    /// probe processes per count) and added. Rungs at other counts stay on the ladder.
    /// Every kind and count is checked before anything is measured.
    pub fn measured(kinds: &[&str], counts: &[usize], rounds: usize) -> Result<Ladder> {
        for kind in kinds {
            check(kind, counts, rounds)?;
        }
        let mut ladder = Ladder::saved()?;
        for kind in kinds {
            let mut missing: Vec<usize> = counts
                .iter()
                .copied()
                .filter(|&n| ladder.rung(kind, n).is_none_or(|r| r.rounds < rounds))
                .collect();
            missing.sort_unstable();
            missing.dedup();
            if !missing.is_empty() {
                ladder.measure(kind, &missing, rounds)?;
            }
        }
        Ok(ladder)
    }

    /// Measures `kind` at `counts` now, replacing its rungs at those counts, and saves the ladder.
    pub fn measure(&mut self, kind: &str, counts: &[usize], rounds: usize) -> Result<&mut Ladder> {
        check(kind, counts, rounds)?;
        let mut rungs = Vec::new();
        for &count in counts {
            let (mut times, mut user, mut kernel) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds {
                let round = probe_in_fresh_process(kind, count)?;
                times.extend(round.first_line_ms);
                user.push(round.user_bytes_each);
                kernel.push(round.kernel_bytes_each);
            }
            rungs.push(Rung {
                kind: kind.to_string(),
                count,
                asked_to_running_ms: median(&mut times),
                user_bytes_each: median(&mut user),
                kernel_bytes_each: median(&mut kernel),
                rounds,
            });
        }
        self.rungs
            .retain(|r| r.kind != kind || !counts.contains(&r.count));
        self.rungs.extend(rungs);
        let order = |kind: &str| KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len());
        self.rungs
            .sort_by_key(|r| (order(&r.kind), r.kind.clone(), r.count));
        store::save(STORE_NAME, self)?;
        Ok(self)
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

    /// The rungs to compare kinds by: each kind at the largest count all were measured at (so
    /// a task queued behind 9 999 others is not set against one process alone), else each at
    /// its own largest count.
    pub fn compared(&self) -> Vec<&Rung> {
        match self.common_count() {
            Some(n) => self
                .kinds()
                .into_iter()
                .filter_map(|k| self.rung(k, n))
                .collect(),
            None => self
                .kinds()
                .into_iter()
                .filter_map(|k| self.rungs_of(k).into_iter().max_by_key(|r| r.count))
                .collect(),
        }
    }

    /// The largest count at which every kind on the ladder was measured: where their start
    /// times compare like with like.
    pub fn common_count(&self) -> Option<usize> {
        let kinds = self.kinds();
        self.rungs
            .iter()
            .map(|r| r.count)
            .filter(|&n| kinds.iter().all(|k| self.rung(k, n).is_some()))
            .max()
    }

    /// The rung of `kind` at `count`, if it was measured.
    pub fn rung(&self, kind: &str, count: usize) -> Option<&Rung> {
        self.rungs
            .iter()
            .find(|r| r.kind == kind && r.count == count)
    }

    /// Processes, threads and tasks side by side, written from this ladder's [`Ladder::compared`]
    /// rungs and the blocking trap (`lateness_alone_ms`, `lateness_blocked_ms`: the ticker's
    /// median lateness).
    pub fn which_one_when(&self, lateness_alone_ms: f64, lateness_blocked_ms: f64) -> Table {
        let common = self.common_count();
        let mut t = Table::new(
            match common {
                Some(n) => format!("Which one when (measured on this machine, {n} alive at once)"),
                None => "Which one when (measured on this machine)".to_string(),
            },
            [
                "unit",
                "starts in",
                "memory each",
                "use it for",
                "watch out for",
            ],
        );
        let rows = [
            (
                "process",
                "isolation: a crash or a leak stays inside; running other programs",
                "start-up and memory cost; sharing data means copying it between processes"
                    .to_string(),
            ),
            (
                "thread",
                "CPU-bound work across cores; blocking calls",
                "shared data needs locks or atomics; contention costs (chapter 2)".to_string(),
            ),
            (
                "task",
                "many jobs that mostly wait (network, timers, I/O)",
                format!(
                    "one task computing without awaiting stalls every other task: median lateness {lateness_blocked_ms:.2} ms instead of {lateness_alone_ms:.2} ms"
                ),
            ),
        ];
        for (kind, good, careful) in rows {
            let (start, memory) = self.compared().into_iter().find(|r| r.kind == kind).map_or(
                ("not measured".into(), "not measured".into()),
                |r| {
                    (
                        duration_text(r.asked_to_running_ms),
                        units::bytes(r.bytes_each() as u64),
                    )
                },
            );
            t.row([kind.to_string(), start, memory, good.to_string(), careful]);
        }
        t
    }

    /// Every rung: time to running, user-space and kernel memory per unit.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("The cost ladder on this machine ({}). {METHOD}", self.cpu),
            [
                "unit",
                "alive at once",
                "asked → running",
                "user-space memory each",
                "kernel memory each",
            ],
        );
        for r in &self.rungs {
            t.row([
                r.kind.clone(),
                r.count.to_string(),
                duration_text(r.asked_to_running_ms),
                units::bytes(r.user_bytes_each.max(0.0) as u64),
                units::bytes(r.kernel_bytes_each.max(0.0) as u64),
            ]);
        }
        t
    }

    /// Time from asking to running, per kind, against units alive together.
    pub fn time_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("How long until a new unit runs")
            .x_label("units started together")
            .y_label("µs from asking to its first line (median)")
            .log_x()
            .log_y();
        for kind in self.kinds() {
            chart = chart.series(
                kind,
                positive(
                    self.rungs_of(kind)
                        .iter()
                        .map(|r| (r.count as f64, r.asked_to_running_ms * 1e3)),
                ),
            );
        }
        chart.note(METHOD).render()
    }

    /// Memory per unit against units alive together: user space and the kernel's share.
    pub fn memory_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("Memory each unit holds: user space and kernel")
            .x_label("units alive together")
            .y_label("KiB per unit (median)")
            .log_x()
            .log_y();
        for kind in self.kinds() {
            let rungs = self.rungs_of(kind);
            chart = chart.series(
                format!("{kind}: user space"),
                positive(
                    rungs
                        .iter()
                        .map(|r| (r.count as f64, r.user_bytes_each / 1024.0)),
                ),
            );
            // A kind whose kernel share is below what this machine can resolve draws no line.
            if rungs.iter().any(|r| r.kernel_bytes_each > 0.0) {
                chart = chart.dashed_series(
                    format!("{kind}: kernel"),
                    positive(
                        rungs
                            .iter()
                            .map(|r| (r.count as f64, r.kernel_bytes_each / 1024.0)),
                    ),
                );
            }
        }
        chart.note(METHOD).render()
    }

    /// The ladder itself: each kind's [`Ladder::compared`] rung, time to running against memory
    /// per unit, on log axes — the cheapest kind bottom left, the dearest top right.
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("The cost ladder: one point per kind of worker")
            .x_label("µs from asking to running (median)")
            .y_label("KiB per unit, user space + kernel")
            .log_x()
            .log_y()
            .label_points();
        for r in self.compared() {
            chart = chart.series(
                format!("{} ({} alive)", r.kind, r.count),
                positive([(r.asked_to_running_ms * 1e3, r.bytes_each() / 1024.0)]),
            );
        }
        chart.note(METHOD).render()
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// The points a log axis can show: a difference within a page of noise can come out at or
/// below zero, and is left out (the chart's note says so).
fn positive(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    points
        .into_iter()
        .filter(|&(x, y)| x > 0.0 && y > 0.0)
        .collect()
}

/// "12.3 µs" or "2.15 ms": a duration in the unit that keeps it readable.
pub fn duration_text(ms: f64) -> String {
    if !ms.is_finite() {
        "not measured".into()
    } else if ms < 1.0 {
        format!("{:.1} µs", ms * 1e3)
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(kind: &str, count: usize, ms: f64, user: f64, kernel: f64) -> Rung {
        Rung {
            kind: kind.into(),
            count,
            asked_to_running_ms: ms,
            user_bytes_each: user,
            kernel_bytes_each: kernel,
            rounds: 1,
        }
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(duration_text(0.0123), "12.3 µs");
        assert_eq!(duration_text(2.151), "2.15 ms");
        assert_eq!(duration_text(f64::NAN), "not measured");
    }

    #[test]
    fn the_ladder_tables_and_draws_every_kind_and_states_its_method() {
        let ladder = Ladder {
            machine: "m".into(),
            cpu: "cpu".into(),
            rungs: vec![
                rung("task", 100, 0.004, 600.0, 0.0),
                rung("task", 1000, 0.005, 550.0, 0.0),
                rung("thread", 4, 0.03, 12_000.0, 17_000.0),
                rung("thread", 64, 0.04, 9_000.0, 16_500.0),
                rung("process", 4, 1.5, 2e6, 1.5e5),
            ],
        };
        assert_eq!(ladder.kinds(), vec!["task", "thread", "process"]);
        assert_eq!(
            ladder
                .compared()
                .iter()
                .map(|r| r.count)
                .collect::<Vec<_>>(),
            vec![1000, 64, 4],
            "no count in common: each kind at its largest"
        );
        let table = ladder.table().to_string();
        assert!(
            table.contains("16.1 KiB") && table.contains("Method:"),
            "{table}"
        );
        let svg = ladder.plot().unwrap().svg().to_string();
        assert!(svg.contains("thread (64 alive)") && svg.contains("Method:"));
        assert!(
            ladder
                .memory_plot()
                .unwrap()
                .svg()
                .contains("thread: kernel")
        );
        assert!(!ladder.memory_plot().unwrap().svg().contains("task: kernel"));
        assert!(ladder.time_plot().unwrap().svg().contains("process"));
        assert_eq!(ladder.common_count(), None);
    }

    #[test]
    fn which_one_when_compares_start_times_at_a_common_count() {
        let ladder = Ladder {
            machine: "m".into(),
            cpu: "cpu".into(),
            rungs: vec![
                rung("task", 64, 0.004, 600.0, 0.0),
                rung("task", 10_000, 0.009, 500.0, 0.0),
                rung("thread", 64, 0.04, 9_000.0, 16_500.0),
                rung("process", 64, 1.8, 2e6, 1.5e5),
            ],
        };
        assert_eq!(ladder.common_count(), Some(64));
        let advice = ladder.which_one_when(0.05, 12.5).to_string();
        assert!(advice.contains("64 alive at once"), "{advice}");
        assert!(
            advice.contains("4.0 µs") && advice.contains("1.80 ms"),
            "{advice}"
        );
        assert!(advice.contains("600 B"), "{advice}");
        assert!(
            advice.contains("median lateness 12.50 ms instead of 0.05 ms"),
            "{advice}"
        );
    }

    #[test]
    fn unknown_kinds_and_bad_counts_are_refused_before_measuring() {
        let mut ladder = Ladder::default();
        let err = ladder.measure("vm-ish", &[1], 1).unwrap_err();
        assert!(err.fix().contains("task, wasm, thread, process"), "{err}");
        assert!(ladder.measure("thread", &[], 1).is_err());
        assert!(ladder.measure("thread", &[1], 0).is_err());
        assert!(
            ladder
                .measure("thread", &[1, threads::MAX_THREADS + 1], 1)
                .is_err()
        );
        assert!(ladder.rungs.is_empty());
    }

    #[test]
    fn a_probe_counts_real_memory_for_threads_and_tasks() {
        for kind in ["thread", "task"] {
            let round = probe(kind, 64).unwrap();
            assert_eq!(round.first_line_ms.len(), 64, "{kind}");
            assert!(round.user_bytes_each > 0.0, "{kind}: {round:?}");
        }
    }
}
