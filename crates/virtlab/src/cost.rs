//! The cost ladder: what one unit of each kind of worker costs — a task, a thread, a process,
//! and the kinds later chapters add — measured by one method for every kind, so they can stand
//! on one chart from a task (µs, bytes) to a virtual machine (ms, MiB).
//!
//! **The method** ([`METHOD`]). Each measurement runs in a fresh `virtlab ladder-probe`
//! process, so no memory is recycled from an earlier round. It starts N units of the kind
//! through the chapter's own executor; each prints its first line and holds until all N run.
//! Then it reads the memory of its process tree (the sum of PSS: shared pages split between
//! sharers) and the kernel's share (kernel stacks and page tables, /proc/meminfo), and subtracts
//! the same reading taken just before the start. Per unit = that difference / N. The time is
//! from asking the executor for a unit to its first line, median over units and rounds.
//!
//! A saved ladder is reused only when it was measured on this machine (this boot) with the
//! counts asked for; anything else is measured anew.

use crate::display::{Figure, Table};
use crate::executor::{self, Kind, Options};
use crate::observer::Snapshot;
use crate::plot::LineChart;
use crate::work::Work;
use crate::{Error, Result, processes, release, store, tasks, threads, units};
use serde::{Deserialize, Serialize};

/// The method, in one sentence, as charts and tables state it under themselves.
pub const METHOD: &str = "Method: a fresh virtlab process starts N units through the chapter's executor and reads, once all N run, its process tree's memory (sum of PSS) and the kernel's (kernel stacks + page tables, /proc/meminfo), minus the same reading before; per unit = difference / N. Time: from asking for a unit to its first line, median over units and rounds.";

/// The kinds of worker the ladder can measure so far, cheapest first.
#[cfg(target_os = "linux")]
pub const KINDS: [&str; 4] = ["task", "thread", "process", "container"];
/// The kinds of worker the ladder can measure so far, cheapest first.
#[cfg(not(target_os = "linux"))]
pub const KINDS: [&str; 3] = ["task", "thread", "process"];

/// The most rounds per count.
pub const MAX_ROUNDS: usize = 20;

/// The kind of worker called `name`, ready to start units.
fn kind_named(name: &str) -> Result<Box<dyn Kind>> {
    match name {
        "process" => Ok(Box::new(processes::Processes::new()?)),
        "thread" => Ok(Box::new(threads::Threads::new())),
        "task" => Ok(Box::new(tasks::Tasks::new()?)),
        #[cfg(target_os = "linux")]
        "container" => Ok(Box::new(crate::container::kind::Containers::for_ladder()?)),
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
    let kernel = |s: &Snapshot| s.kernel.map_or(0, |k| k.total());
    Ok(ProbeRound {
        first_line_ms: run.units.iter().filter_map(|u| u.first_line_ms).collect(),
        user_bytes_each: per_unit(before.user_bytes(), during.user_bytes()),
        kernel_bytes_each: per_unit(kernel(&before), kernel(&during)),
    })
}

/// Runs one probe round in a fresh `virtlab ladder-probe` process.
fn probe_in_fresh_process(kind: &str, count: usize) -> Result<ProbeRound> {
    let output = release::command([
        "ladder-probe",
        "--kind",
        kind,
        "--count",
        &count.to_string(),
    ])?
    .output()
    .map_err(|e| Error::os("starting the ladder's probe process", e))?;
    let stderr: Vec<String> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .map(str::to_string)
        .collect();
    if !output.status.success() {
        return Err(release::failure(
            "the ladder's probe",
            output.status,
            &stderr,
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        Error::bug(format!(
            "the ladder's probe printed something that is not a probe round ({e})"
        ))
    })
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

    /// This machine's ladder with `kind` at `counts`: the saved rungs when they are exactly
    /// these counts, else measured now (`rounds` fresh probe processes per count) and saved.
    pub fn with(kind: &str, counts: &[usize], rounds: usize) -> Result<Ladder> {
        let mut ladder = Ladder::saved()?;
        let saved: Vec<usize> = ladder.rungs_of(kind).iter().map(|r| r.count).collect();
        if saved != counts {
            ladder.measure(kind, counts, rounds)?;
        }
        Ok(ladder)
    }

    /// Measures `kind` at `counts` now, replacing its rungs, and saves the ladder.
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
        self.rungs.retain(|r| r.kind != kind);
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

    /// Each kind's rung at its largest count: where page granularity matters least.
    pub fn top_rungs(&self) -> Vec<&Rung> {
        self.kinds()
            .into_iter()
            .filter_map(|k| self.rungs_of(k).into_iter().max_by_key(|r| r.count))
            .collect()
    }

    /// Every rung: time to running, user-space and kernel memory per unit.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!("The cost ladder on this machine ({})", self.cpu),
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
        t.row([
            "".to_string(),
            "".to_string(),
            METHOD.to_string(),
            "".to_string(),
            "".to_string(),
        ]);
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
                self.rungs_of(kind)
                    .iter()
                    .map(|r| (r.count as f64, r.asked_to_running_ms * 1e3)),
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
                rungs
                    .iter()
                    .map(|r| (r.count as f64, r.user_bytes_each / 1024.0)),
            );
            // A kind whose kernel share is below what this machine can resolve draws no line.
            if rungs.iter().any(|r| r.kernel_bytes_each > 0.0) {
                chart = chart.dashed_series(
                    format!("{kind}: kernel"),
                    rungs
                        .iter()
                        .map(|r| (r.count as f64, r.kernel_bytes_each / 1024.0)),
                );
            }
        }
        chart.note(METHOD).render()
    }

    /// The ladder itself: each kind at its largest count, time to running against memory per
    /// unit, on log axes — the cheapest kind bottom left, the dearest top right.
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("The cost ladder: one point per kind of worker")
            .x_label("µs from asking to running (median)")
            .y_label("KiB per unit, user space + kernel")
            .log_x()
            .log_y();
        for r in self.top_rungs() {
            chart = chart.series(
                format!("{} ({} alive)", r.kind, r.count),
                [(r.asked_to_running_ms * 1e3, r.bytes_each() / 1024.0)],
            );
        }
        chart.note(METHOD).render()
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
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

/// The median of `values` (NaN when empty); sorts in place.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
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
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
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
                .top_rungs()
                .iter()
                .map(|r| r.count)
                .collect::<Vec<_>>(),
            vec![1000, 64, 4]
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
    }

    #[test]
    fn unknown_kinds_and_bad_counts_are_refused_before_measuring() {
        let mut ladder = Ladder::default();
        let err = ladder.measure("vm-ish", &[1], 1).unwrap_err();
        assert!(err.fix().contains("task, thread, process"), "{err}");
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
