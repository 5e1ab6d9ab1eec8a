//! The ladder shown: a table per kind (what one more unit costs, the fixed part, how well the
//! line fits, when each point was measured), every point, the charts (time, memory, the ladder
//! itself), "which one when" and "what we saw", each sentence computed from the ladder shown.
//!
//! Every chart draws a kind in one colour, its place on the ladder ([`Rung::place`]), and says under itself which
//! points this call measured and which it reused from an earlier run, with when.

use super::{Fit, Ladder, METHOD, Rung};
use crate::{Result, memory, units};
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

/// Per-unit memory below this rise across the counts measured is within the readings'
/// granularity: PSS and page tables come in whole pages, and a page or two moves with
/// allocations that have nothing to do with the units.
fn resolution() -> f64 {
    2.0 * memory::page_size() as f64
}

/// What one more unit of a kind costs in memory: lines fitted to the totals its rungs held.
#[derive(Debug, Clone, PartialEq)]
pub struct KindCost {
    /// The kind: "task", "thread", …
    pub kind: String,
    /// User-space bytes (sum of PSS) against units alive.
    pub user: Fit,
    /// Kernel bytes (page tables, kernel stacks) against units alive.
    pub kernel: Fit,
}

impl KindCost {
    /// One more unit, user space and kernel, counting only the parts above the readings'
    /// resolution.
    pub fn per_unit_bytes(&self) -> f64 {
        [self.user, self.kernel]
            .iter()
            .filter(|f| f.resolved(resolution()))
            .map(|f| f.per_unit)
            .sum()
    }

    /// "8.0 KiB", or "< 0.8 B" when the line rises by less than the readings resolve.
    fn part_text(fit: &Fit) -> String {
        if fit.resolved(resolution()) {
            bytes_text(fit.per_unit)
        } else {
            format!("< {}", bytes_text(fit.bound(resolution())))
        }
    }

    /// User space per extra unit, as the tables write it.
    pub fn user_text(&self) -> String {
        Self::part_text(&self.user)
    }

    /// Kernel per extra unit, as the tables write it.
    pub fn kernel_text(&self) -> String {
        Self::part_text(&self.kernel)
    }

    /// One more unit, user space and kernel together, as sentences write it.
    pub fn per_unit_text(&self) -> String {
        bytes_text(self.per_unit_bytes())
    }

    /// What a legend adds to a line it cannot vouch for: " (poor fit)", " (two counts)", "".
    fn caveat(fit: &Fit) -> &'static str {
        match (fit.counts, fit.r_squared) {
            (1, _) => " (one count)",
            (_, None) => " (two counts)",
            _ if !fit.trusted() => " (poor fit)",
            _ => "",
        }
    }

    /// Whether both lines are checked against three counts or more and fit well.
    fn trusted(&self) -> bool {
        self.user.trusted() && self.kernel.trusted()
    }
}

/// Bytes as the ladder writes them, under a byte or negative too (a reading below the one
/// before is negative): "0.8 B", "-12.0 KiB", "1.1 MiB".
pub fn bytes_text(bytes: f64) -> String {
    let sign = if bytes <= -0.05 { "-" } else { "" };
    let size = bytes.abs();
    if size < 10.0 {
        format!("{sign}{size:.1} B")
    } else {
        format!("{sign}{}", units::bytes(size.round() as u64))
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

/// "01:52 UTC, 38 min before this was drawn": when a reused point was measured.
fn when_text(at: Option<u64>, now: u64) -> String {
    let Some(at) = at else {
        return "at an unknown time".into();
    };
    let minutes = now.saturating_sub(at) / 60;
    let age = if minutes == 0 {
        "under a minute".to_string()
    } else if minutes < 120 {
        format!("{minutes} min")
    } else {
        format!("{:.1} h", minutes as f64 / 60.0)
    };
    format!("{}, {age} before this was shown", clock(at))
}

/// "01:52 UTC": the time of day of a point in time (seconds since 1970).
fn clock(at: u64) -> String {
    format!("{:02}:{:02} UTC", at % 86_400 / 3600, at % 3600 / 60)
}

/// Which of `rungs` this call measured and which it reused, with when: "this run, 3 rounds
/// per count" or "this run at 1, 2; reused from 01:52 UTC, 38 min before this was shown: 16".
fn provenance(rungs: &[&Rung], now: u64) -> String {
    let counts = |fresh: bool| -> Vec<String> {
        rungs
            .iter()
            .filter(|r| r.fresh == fresh)
            .map(|r| r.count.to_string())
            .collect()
    };
    let rounds: Vec<usize> = rungs.iter().map(|r| r.rounds).collect();
    let rounds = match (rounds.iter().min(), rounds.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => format!("{lo} rounds per count"),
        (Some(lo), Some(hi)) => format!("{lo}-{hi} rounds per count"),
        _ => String::new(),
    };
    let (fresh, reused) = (counts(true), counts(false));
    let times: Vec<u64> = rungs
        .iter()
        .filter(|r| !r.fresh)
        .filter_map(|r| r.measured_at)
        .collect();
    let (earliest, latest) = (times.iter().min().copied(), times.iter().max().copied());
    let reused_text = match (earliest, latest) {
        (Some(first), Some(last)) if last / 60 > first / 60 => format!(
            "reused from runs between {}, and {}",
            when_text(Some(first), now),
            clock(last)
        ),
        _ => format!("reused from {}", when_text(earliest, now)),
    };
    match (fresh.is_empty(), reused.is_empty()) {
        (_, true) => format!("this run, {rounds}"),
        (true, false) => format!("{reused_text}; {rounds}"),
        (false, false) => format!(
            "this run at {}; {reused_text} at {}; {rounds}",
            fresh.join(", "),
            reused.join(", ")
        ),
    }
}

impl Ladder {
    /// The memory lines of `kind`, fitted to its rungs; `None` when it has none.
    pub fn cost(&self, kind: &str) -> Option<KindCost> {
        let rungs = self.rungs_of(kind);
        let line = |total: fn(&Rung) -> f64| {
            Fit::of(
                &rungs
                    .iter()
                    .map(|r| (r.count as f64, total(r)))
                    .collect::<Vec<_>>(),
            )
        };
        Some(KindCost {
            kind: kind.to_string(),
            user: line(Rung::user_bytes)?,
            kernel: line(Rung::kernel_bytes)?,
        })
    }

    /// The busiest of this ladder's rungs, as measured.
    pub fn busiest_load(&self) -> Option<&crate::load::Load> {
        crate::load::Load::busiest(self.rungs.iter().filter_map(|r| r.load.as_ref()))
    }

    /// " Warning: …" naming what kept the CPUs busy while a rung was measured; "" when quiet.
    fn busy_warning(&self) -> String {
        self.busiest_load()
            .and_then(crate::load::Load::busy_cause)
            .map_or(String::new(), |cause| {
                format!(" Warning: while some of these points were measured, {cause}.")
            })
    }

    /// The points this call reused from an earlier run, said in one sentence for a chart's note
    /// ("" when it measured them all).
    fn reuse_note(&self, rungs: &[&Rung]) -> String {
        let now = units::unix_now();
        let reused: Vec<String> = self
            .kinds()
            .into_iter()
            .filter_map(|kind| {
                let of_kind: Vec<&Rung> =
                    rungs.iter().copied().filter(|r| r.kind == kind).collect();
                of_kind
                    .iter()
                    .any(|r| !r.fresh)
                    .then(|| format!("{kind}: {}", provenance(&of_kind, now)))
            })
            .collect();
        let lead = if rungs.iter().any(|r| r.fresh) {
            "Not all measured by this run"
        } else {
            "None measured by this run, all reused from an earlier one"
        };
        if reused.is_empty() {
            "Every point measured by this run.".into()
        } else {
            format!("{lead} — {}.", reused.join("; "))
        }
    }

    /// One row per kind: time to running, what one more unit holds (the slope) in user space
    /// and in the kernel, the fixed part, how well the line fits, and when it was measured.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "What one more unit costs, on this machine ({}). Memory per unit is the slope of \
                 the memory all N hold against N, not the total ÷ N (each point's total is in \
                 the points table). {METHOD}{}",
                self.cpu,
                self.busy_warning()
            ),
            [
                "unit",
                "asked → running (fewest → most alive)",
                "one more: user space",
                "one more: kernel",
                "fixed part (user + kernel)",
                "fit (user space; kernel)",
                "measured",
            ],
        );
        let now = units::unix_now();
        for kind in self.kinds() {
            let rungs = self.rungs_of(kind);
            let Some(cost) = self.cost(kind) else {
                continue;
            };
            let (first, last) = (rungs[0], rungs[rungs.len() - 1]);
            let time = if rungs.len() == 1 {
                format!(
                    "{} at {}",
                    duration_text(first.asked_to_running_ms),
                    first.count
                )
            } else {
                format!(
                    "{} at {} → {} at {}",
                    duration_text(first.asked_to_running_ms),
                    first.count,
                    duration_text(last.asked_to_running_ms),
                    last.count
                )
            };
            let fixed = if cost.user.counts == 1 {
                "not separated (one count)".to_string()
            } else {
                bytes_text(cost.user.fixed + cost.kernel.fixed)
            };
            t.row([
                kind.to_string(),
                time,
                cost.user_text(),
                cost.kernel_text(),
                fixed,
                format!("{}; {}", cost.user.verdict(), cost.kernel.verdict()),
                provenance(&rungs, now),
            ]);
        }
        t
    }

    /// Every point: units alive, time to running, what all of them held together (user space
    /// and kernel), and when it was measured.
    pub fn points_table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Every point of the ladder ({}), medians of the rounds",
                self.cpu
            ),
            [
                "unit",
                "alive at once",
                "asked → running",
                "user space, all N together",
                "kernel, all N together",
                "measured",
            ],
        );
        let now = units::unix_now();
        for r in &self.rungs {
            t.row([
                r.kind.clone(),
                r.count.to_string(),
                duration_text(r.asked_to_running_ms),
                bytes_text(r.user_bytes()),
                bytes_text(r.kernel_bytes()),
                provenance(&[r], now),
            ]);
        }
        t
    }

    /// Time from asking to running, per kind, against units started together.
    pub fn time_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("How long until a new unit runs")
            .x_label("units started together")
            .y_label("µs from asking to its first line (median)")
            .log_x()
            .log_y();
        for kind in self.kinds() {
            chart = chart
                .series(
                    kind,
                    positive(
                        self.rungs_of(kind)
                            .iter()
                            .map(|r| (r.count as f64, r.asked_to_running_ms * 1e3)),
                    ),
                )
                .color(self.color_slot(kind));
        }
        let rungs: Vec<&Rung> = self.rungs.iter().collect();
        chart
            .note(format!("{} {METHOD}", self.reuse_note(&rungs)))
            .render()
            .map_err(Into::into)
    }

    /// What N units hold together against N, user space (solid) and kernel (dashed): the slope
    /// of each line is what one more unit costs (named in the legend), where a line meets the
    /// left edge its fixed part.
    pub fn memory_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("Memory N units hold together: user space and kernel")
            .x_label("units alive together")
            .y_label("KiB held by all N (median)")
            .log_x()
            .log_y();
        let mut unresolved = Vec::new();
        for kind in self.kinds() {
            let (rungs, Some(cost)) = (self.rungs_of(kind), self.cost(kind)) else {
                continue;
            };
            let totals = |total: fn(&Rung) -> f64| {
                positive(rungs.iter().map(|r| (r.count as f64, total(r) / 1024.0)))
            };
            chart = chart
                .series(
                    format!(
                        "{kind}: user space, {} per unit{}",
                        cost.user_text(),
                        KindCost::caveat(&cost.user)
                    ),
                    totals(Rung::user_bytes),
                )
                .color(self.color_slot(kind));
            if cost.kernel.resolved(resolution()) {
                chart = chart
                    .dashed_series(
                        format!(
                            "{kind}: kernel, {} per unit{}",
                            cost.kernel_text(),
                            KindCost::caveat(&cost.kernel)
                        ),
                        totals(Rung::kernel_bytes),
                    )
                    .color(self.color_slot(kind));
            } else {
                unresolved.push(format!("{kind} ({} per unit)", cost.kernel_text()));
            }
        }
        let mut note = String::from(
            "Per unit = the slope of the line through a kind's points (least squares); points at or below zero cannot sit on a log axis and are left out. ",
        );
        if !unresolved.is_empty() {
            note += &format!(
                "No kernel line for {}: across the counts measured its kernel share rises by less than {} (two pages; the readings come in whole pages), too little to tell from the readings' whole pages. ",
                unresolved.join(", "),
                units::bytes(resolution() as u64)
            );
        }
        let rungs: Vec<&Rung> = self.rungs.iter().collect();
        chart
            .note(format!("{note}{} {METHOD}", self.reuse_note(&rungs)))
            .render()
            .map_err(Into::into)
    }

    /// The ladder itself: each kind at `count` units alive (every chapter uses its
    /// `ladder_count`, [`super::COMPARED_COUNT`] unless changed), time to running against what one
    /// more unit holds, on log axes — the cheapest kind bottom left, the dearest top right.
    pub fn plot(&self, count: usize) -> Result<Figure> {
        let compared = self.compared(count)?;
        let mut chart = LineChart::new(format!(
            "The cost ladder: one point per kind of worker, {count} alive at once"
        ))
        .x_label("µs from asking to running (median)")
        .y_label("KiB one more unit holds, user space + kernel")
        .log_x()
        .log_y()
        .label_points();
        let mut left_out = Vec::new();
        for r in &compared {
            let bytes = self.cost(&r.kind).map_or(0.0, |c| c.per_unit_bytes());
            if bytes > 0.0 {
                chart = chart
                    .series(
                        r.kind.clone(),
                        [(r.asked_to_running_ms * 1e3, bytes / 1024.0)],
                    )
                    .color(self.color_slot(&r.kind));
            } else {
                left_out.push(r.kind.clone());
            }
        }
        let mut note = String::from(
            "Memory: the slope of each kind's memory against N over the counts it was measured at (its table row). ",
        );
        if !left_out.is_empty() {
            note += &format!(
                "Left out (no memory above the readings' resolution, which a log axis cannot show): {}. ",
                left_out.join(", ")
            );
        }
        chart
            .note(format!("{note}{} {METHOD}", self.reuse_note(&compared)))
            .render()
            .map_err(Into::into)
    }

    /// Processes, threads and tasks side by side at `count` alive, written from this ladder and
    /// the blocking trap (`lateness_alone_ms`, `lateness_blocked_ms`: the ticker's median
    /// lateness).
    pub fn which_one_when(
        &self,
        count: usize,
        lateness_alone_ms: f64,
        lateness_blocked_ms: f64,
    ) -> Result<Table> {
        let compared = self.compared(count)?;
        let mut t = Table::new(
            format!(
                "Which one when (measured on this machine: start at {count} alive at once, memory one more unit holds)"
            ),
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
            let (start, memory) = compared.iter().find(|r| r.kind == kind).map_or(
                ("not measured".into(), "not measured".into()),
                |r| {
                    let memory = self.cost(kind).map_or("not measured".into(), |c| {
                        format!(
                            "{} (user space {}, kernel {})",
                            bytes_text(c.per_unit_bytes()),
                            c.user_text(),
                            c.kernel_text()
                        )
                    });
                    (duration_text(r.asked_to_running_ms), memory)
                },
            );
            t.row([kind.to_string(), start, memory, good.to_string(), careful]);
        }
        Ok(t)
    }

    /// What this ladder shows, computed from it: each kind against the next dearer one (how
    /// much sooner it starts at `count` alive, how much less one more holds), and where each
    /// kind's memory goes (user space against kernel). Worded for the result obtained, whichever
    /// way it went.
    pub fn what_we_saw(&self, count: usize) -> Result<Table> {
        let compared = self.compared(count)?;
        let rungs: Vec<&Rung> = self.rungs.iter().collect();
        let mut t = Table::new(
            format!(
                "What this ladder measured ({}; {count} started together; memory: what one more holds). {}",
                self.cpu,
                self.reuse_note(&rungs)
            ),
            ["question", "answer, from the numbers above"],
        );
        let costs: Vec<(&Rung, KindCost)> = compared
            .iter()
            .filter_map(|r| Some((*r, self.cost(&r.kind)?)))
            .collect();
        for pair in costs.windows(2) {
            let ((a, a_cost), (b, b_cost)) = (&pair[0], &pair[1]);
            t.row([
                format!("A {} or a {}?", a.kind, b.kind),
                compare(a, a_cost, b, b_cost),
            ]);
        }
        for (r, cost) in &costs {
            t.row([
                format!("Where does one more {}'s memory go?", r.kind),
                split_text(cost),
            ]);
        }
        t.row(crate::load::quiet_row(
            self.busiest_load(),
            "the times to running read high",
        ));
        Ok(t)
    }
}

/// "a thread reached its first line in 38.0 µs, a process in 1.21 ms: the thread 32× sooner.
/// One more thread held 28.0 KiB, one more process 1.2 MiB: the thread 43× less."
fn compare(a: &Rung, a_cost: &KindCost, b: &Rung, b_cost: &KindCost) -> String {
    let times = ratio(
        b.asked_to_running_ms / a.asked_to_running_ms,
        "sooner",
        "later",
    );
    let mut text = format!(
        "a {} reached its first line in {}, a {} in {}: the {} {times}.",
        a.kind,
        duration_text(a.asked_to_running_ms),
        b.kind,
        duration_text(b.asked_to_running_ms),
        a.kind
    );
    let (a_bytes, b_bytes) = (a_cost.per_unit_bytes(), b_cost.per_unit_bytes());
    if a_bytes > 0.0 && b_bytes > 0.0 {
        text += &format!(
            " One more {} held {}, one more {} {}: the {} {}.",
            a.kind,
            bytes_text(a_bytes),
            b.kind,
            bytes_text(b_bytes),
            a.kind,
            ratio(b_bytes / a_bytes, "less", "more")
        );
    }
    if !(a_cost.trusted() && b_cost.trusted()) {
        text += " (A per-unit line is not checked or fits poorly: see the table's fit column.)";
    }
    text
}

/// "32× sooner", "1.3× later", "about the same": how `dearer ÷ cheaper` reads for the cheaper.
fn ratio(times: f64, better: &str, worse: &str) -> String {
    if !times.is_finite() {
        "by a factor this run cannot tell".into()
    } else if (0.9..=1.1).contains(&times) {
        "about the same".into()
    } else if times > 1.0 {
        format!("{} {better}", factor(times))
    } else {
        format!("{} {worse}", factor(1.0 / times))
    }
}

/// "32×", "1.3×".
fn factor(times: f64) -> String {
    if times >= 10.0 {
        format!("{times:.0}×")
    } else {
        format!("{times:.1}×")
    }
}

/// Where one more unit's memory goes, user space against kernel, with the reason for a thread.
fn split_text(cost: &KindCost) -> String {
    let (user, kernel) = (cost.user.per_unit, cost.kernel.per_unit);
    let resolved = |f: &Fit| f.resolved(resolution());
    let side = match (resolved(&cost.user), resolved(&cost.kernel)) {
        (true, true) if kernel > user => "its kernel share is larger than its user-space share",
        (true, true) => "its user-space share is larger than its kernel share",
        (true, false) => "its kernel share is below what the readings resolve",
        (false, true) => "its user-space share is below what the readings resolve",
        (false, false) => "neither share rises above what the readings resolve",
    };
    let mut text = format!(
        "{} in user space, {} in the kernel: {side}.",
        cost.user_text(),
        cost.kernel_text()
    );
    // Every user-space page is mapped by an 8-byte page-table entry: a kernel share near
    // user ÷ 512 (4 KiB pages) is those entries, not a structure of the unit's own.
    let page = memory::page_size() as f64;
    let entries = user * 8.0 / page;
    if resolved(&cost.user) && resolved(&cost.kernel) && (0.5..=2.0).contains(&(kernel / entries)) {
        text += &format!(
            " That kernel share is about what the page-table entries mapping its user-space pages take ({} at 8 bytes per {} page).",
            bytes_text(entries),
            units::bytes(page as u64)
        );
    }
    if cost.kind == "thread" {
        text += &format!(
            " Its user space is the stack pages it touched: Rust reserves {} of address space for each thread's stack ({}), and untouched pages hold no memory.",
            units::bytes(std_thread_stack()),
            if std::env::var_os("RUST_MIN_STACK").is_some() {
                "set by RUST_MIN_STACK here"
            } else {
                "std's default; RUST_MIN_STACK changes it"
            }
        );
        if let Some(stack) = memory::kernel_stack_per_thread() {
            text += &format!(
                " The kernel keeps a {} stack per thread on this machine, plus page tables.",
                units::bytes(stack)
            );
        }
    }
    text
}

/// The stack std reserves for a thread spawned without a size (ours are): `RUST_MIN_STACK`
/// when set, else 2 MiB (std's documented default on every tier-1 platform).
fn std_thread_stack() -> u64 {
    std::env::var("RUST_MIN_STACK")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(2 * 1024 * 1024)
}

/// The points a log axis can show: a difference within a page of noise can come out at or
/// below zero, and is left out (the chart's note says so).
fn positive(points: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    points
        .into_iter()
        .filter(|&(x, y)| x > 0.0 && y > 0.0)
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn rung(kind: &str, count: usize, ms: f64, user_total: f64, kernel_total: f64) -> Rung {
        // The places the program's registry gives these kinds.
        let place = ["task", "wasm", "thread", "process"]
            .iter()
            .position(|k| *k == kind);
        Rung {
            kind: kind.into(),
            place,
            count,
            asked_to_running_ms: ms,
            user_bytes_each: user_total / count as f64,
            kernel_bytes_each: kernel_total / count as f64,
            rounds: 3,
            measured_at: Some(1_000_000),
            fresh: true,
            load: None,
        }
    }

    /// Tasks, threads and processes on known lines: a task 600 B and no kernel memory, a
    /// thread 8 KiB + 20 KiB over a 500 KiB runtime, a process 1 MiB + 96 KiB.
    pub(in crate::cost) fn sample() -> Ladder {
        let mut rungs = Vec::new();
        for n in [1, 16, 1000] {
            rungs.push(rung("task", n, 0.004, 40_960.0 + 600.0 * n as f64, 0.0));
        }
        for n in [1, 4, 16] {
            let n_f = n as f64;
            rungs.push(rung(
                "thread",
                n,
                0.04,
                512_000.0 + 8192.0 * n_f,
                20_480.0 * n_f,
            ));
            rungs.push(rung("process", n, 1.2, 1_048_576.0 * n_f, 98_304.0 * n_f));
        }
        let mut ladder = Ladder {
            machine: "m".into(),
            cpu: "cpu".into(),
            rungs,
        };
        ladder.sort();
        ladder
    }

    #[test]
    fn a_rung_measured_on_a_busy_machine_is_named_under_the_table() {
        let mut ladder = sample();
        assert!(!ladder.table().to_string().contains("Warning"));
        ladder.rungs[0].load = Some(crate::load::Load {
            seconds: 1.0,
            machine_cpus: 2,
            others_cpus: 1.0,
            steal_cpus: 0.0,
        });
        let table = ladder.table().to_string();
        assert!(
            table.contains(
                "Warning: while some of these points were measured, other programs kept 1.0"
            ),
            "{table}"
        );
        let said = ladder.what_we_saw(16).unwrap().to_string();
        assert!(said.contains("no: other programs kept 1.0"), "{said}");
    }

    #[test]
    fn durations_and_sizes_read_in_their_unit() {
        assert_eq!(duration_text(0.0123), "12.3 µs");
        assert_eq!(duration_text(2.151), "2.15 ms");
        assert_eq!(duration_text(f64::NAN), "not measured");
        assert_eq!(bytes_text(0.81), "0.8 B");
        assert_eq!(bytes_text(-12_288.0), "-12.0 KiB");
        assert_eq!(bytes_text(1_153_434.0), "1.1 MiB");
    }

    #[test]
    fn per_unit_memory_is_the_slope_not_the_total_over_n() {
        let ladder = sample();
        let thread = ladder.cost("thread").unwrap();
        // At N = 1 the total ÷ N is 520 KiB; one more thread holds 8 KiB + 20 KiB.
        assert!((thread.user.per_unit - 8192.0).abs() < 1e-6, "{thread:?}");
        assert!((thread.user.fixed - 512_000.0).abs() < 1e-3, "{thread:?}");
        assert!((thread.per_unit_bytes() - 28_672.0).abs() < 1e-6);
        let task = ladder.cost("task").unwrap();
        assert_eq!(
            task.kernel_text(),
            format!("< {}", bytes_text(2.0 * memory::page_size() as f64 / 999.0))
        );
        assert!(
            (task.per_unit_bytes() - 600.0).abs() < 1e-6,
            "no kernel noise added"
        );
        let table = ladder.table().to_string();
        for text in [
            "8.0 KiB",
            "20.0 KiB",
            "1.0 MiB",
            "96.0 KiB",
            "500.0 KiB",
            "R² = 1.000 over 3 counts",
            "this run, 3 rounds per count",
            "not the total ÷ N",
            "Method:",
        ] {
            assert!(table.contains(text), "{text} missing: {table}");
        }
    }

    #[test]
    fn reused_points_say_when_they_were_measured() {
        let mut ladder = sample();
        for r in ladder.rungs.iter_mut().filter(|r| r.kind == "task") {
            r.fresh = false;
            r.measured_at = Some(3600 * 25 + 52 * 60);
        }
        let now = 3600 * 25 + 90 * 60;
        let tasks = ladder.rungs_of("task");
        assert_eq!(
            provenance(&tasks, now),
            "reused from 01:52 UTC, 38 min before this was shown; 3 rounds per count"
        );
        ladder.rungs[1].measured_at = Some(3600 * 25 + 80 * 60);
        let tasks = ladder.rungs_of("task");
        assert_eq!(
            provenance(&tasks, now),
            "reused from runs between 01:52 UTC, 38 min before this was shown, and 02:20 UTC; 3 rounds per count"
        );
        let mixed = [tasks[0], ladder.rungs_of("thread")[0]];
        assert!(provenance(&mixed, now).starts_with("this run at 1; reused from 01:52 UTC"));
        let note = ladder.reuse_note(&ladder.rungs.iter().collect::<Vec<_>>());
        assert!(
            note.starts_with("Not all measured by this run — task: reused from"),
            "{note}"
        );
        assert!(!note.contains("thread"), "{note}");
        assert!(ladder.points_table().to_string().contains("reused from"));
        assert_eq!(when_text(None, now), "at an unknown time");
        assert!(when_text(Some(now - 30), now).contains("under a minute before"));
        for r in &mut ladder.rungs {
            r.fresh = false;
        }
        let all = ladder.rungs.iter().collect::<Vec<_>>();
        assert!(
            ladder
                .reuse_note(&all)
                .starts_with("None measured by this run")
        );
        let saw = ladder.what_we_saw(16).unwrap().to_string();
        assert!(saw.contains("None measured by this run"), "{saw}");
    }

    #[test]
    fn a_kernel_share_the_size_of_the_page_tables_for_the_heap_is_named_so() {
        // 10 000 tasks of 2 KiB each, and the page-table entries for those pages.
        let page = memory::page_size() as f64;
        let counts = [1.0, 1000.0, 10_000.0];
        let line = |each: f64| Fit::of(&counts.map(|n| (n, 300_000.0 + each * n))).unwrap();
        let task = KindCost {
            kind: "task".into(),
            user: line(2048.0),
            kernel: line(2048.0 * 8.0 / page),
        };
        let text = split_text(&task);
        assert!(
            text.contains("page-table entries mapping its user-space pages"),
            "{text}"
        );
    }

    #[test]
    fn charts_draw_every_kind_in_its_colour_and_leave_kernel_noise_out() {
        let ladder = sample();
        let memory = ladder.memory_plot().unwrap().svg().to_string();
        assert!(
            memory.contains("thread: kernel, 20.0 KiB per unit"),
            "{memory}"
        );
        assert!(!memory.contains("task: kernel,"));
        assert!(memory.contains("No kernel line for task"));
        let ladder_svg = ladder.plot(16).unwrap().svg().to_string();
        assert!(ladder_svg.contains("16 alive at once") && ladder_svg.contains("Method:"));
        assert!(ladder.time_plot().unwrap().svg().contains("process"));
        assert!(ladder.plot(4).is_err(), "tasks were not measured at 4");
        assert_eq!(ladder.color_slot("process"), 3);
        assert_eq!(ladder.color_slot("task"), 0);
        let unplaced = Ladder {
            rungs: vec![Rung::made("a", 1, 1.0, 1.0), Rung::made("b", 1, 1.0, 1.0)],
            ..Ladder::default()
        };
        assert_eq!(
            unplaced.color_slot("b"),
            1,
            "its place among the ladder's kinds"
        );
    }

    #[test]
    fn what_we_saw_is_worded_for_the_result_either_way() {
        let ladder = sample();
        let saw = ladder.what_we_saw(16).unwrap().to_string();
        assert!(saw.contains("the task 10× sooner"), "{saw}");
        assert!(saw.contains("the thread 30× sooner"), "{saw}");
        assert!(saw.contains("the thread 40× less"), "{saw}");
        assert!(
            saw.contains("its kernel share is larger than its user-space share"),
            "{saw}"
        );
        assert!(saw.contains("Rust reserves"), "{saw}");
        assert!(!saw.contains("page-table entries"), "{saw}");
        assert_eq!(ratio(0.5, "sooner", "later"), "2.0× later");
        assert_eq!(ratio(1.05, "sooner", "later"), "about the same");
        let advice = ladder.which_one_when(16, 0.05, 12.5).unwrap().to_string();
        assert!(
            advice.contains("16 alive at once") && advice.contains("1.20 ms"),
            "{advice}"
        );
        assert!(
            advice.contains("median lateness 12.50 ms instead of 0.05 ms"),
            "{advice}"
        );
        assert!(ladder.which_one_when(64, 0.05, 12.5).is_err());
    }
}
