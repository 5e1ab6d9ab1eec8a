//! Limits acting: a CPU-bound worker under 100 %, 50 %, 25 % of one CPU (the CPU time it
//! receives and the periods the kernel throttled it, from the group's own counters), a worker
//! that allocates past its memory limit until the OOM killer ends it, and a fork bomb stopped
//! at its pids limit.

use super::Limits;
use super::kind::{Containers, WorkerFlags};
use super::run::ContainerReport;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor::Options;
use virtlab_core::units;
use virtlab_core::work::Work;
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

/// How often the CPU demo reads the group's counters.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// One CPU-bound container under one quota.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaRun {
    /// CPUs' worth of quota (1.0, 0.5, 0.25).
    pub cpu: f64,
    /// CPU time it received per second of wall time, over the whole run.
    pub cpu_share: f64,
    /// CFS periods in which it had work to run.
    pub periods: u64,
    /// Periods that ended with its quota used up.
    pub throttled_periods: u64,
    /// Time it waited for the next period.
    pub throttled_ms: f64,
    /// The container's own report (with the counters sampled every 100 ms).
    pub report: ContainerReport,
}

/// The CPU demo: one worker per quota, each burning CPU for `seconds`, one after the other so
/// they do not compete with each other.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuotaSweep {
    /// One run per quota, in the order given.
    pub runs: Vec<QuotaRun>,
}

/// Runs a CPU-bound container under each quota in `quotas` for about `seconds` each.
pub fn cpu_quotas(quotas: &[f64], seconds: u64) -> Result<QuotaSweep> {
    virtlab_core::error::check_range("seconds per quota", seconds, 1, 600)?;
    if quotas.is_empty() {
        return Err(Error::new(
            "no CPU quotas to compare",
            "give one or more, e.g. &[1.0, 0.5, 0.25]",
        ));
    }
    let limits: Vec<Limits> = quotas
        .iter()
        .map(|&cpu| {
            Limits {
                cpu: Some(cpu),
                ..Limits::default()
            }
            .checked()
        })
        .collect::<Result<_>>()?;
    // Iterations of 100 ms burns with a 1 ms pause: CPU-bound, yet it reports as it goes.
    let work = Work::new("cpu", (seconds * 10) as u32, 1)?.burning(100)?;
    let mut runs = Vec::new();
    for (limits, &cpu) in limits.into_iter().zip(quotas) {
        let run =
            Containers::new(limits)?
                .sampling(SAMPLE_EVERY)
                .run(&work, 1, Options::quiet())?;
        run.check()?;
        let wall_ms = run.wall_ms;
        let report = only(run.units)?;
        let end = report.detail.end_stats.unwrap_or_default();
        runs.push(QuotaRun {
            cpu,
            cpu_share: end.cpu_ns.unwrap_or(0) as f64 / 1e6 / wall_ms,
            periods: end.periods.unwrap_or(0),
            throttled_periods: end.throttled_periods.unwrap_or(0),
            throttled_ms: end.throttled_ns.unwrap_or(0) as f64 / 1e6,
            report,
        });
    }
    Ok(QuotaSweep { runs })
}

impl QuotaSweep {
    /// Quota, CPU received, periods and time throttled, a row per quota.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            "A CPU-bound worker under a CPU quota (counters from its cgroup)",
            [
                "quota",
                "CPU received per second",
                "periods",
                "throttled periods",
                "time throttled",
            ],
        );
        for r in &self.runs {
            t.row([
                format!("{:.0} % of one CPU", r.cpu * 100.0),
                format!("{:.0} %", r.cpu_share * 100.0),
                r.periods.to_string(),
                r.throttled_periods.to_string(),
                format!("{:.0} ms", r.throttled_ms),
            ]);
        }
        t
    }

    /// Time spent throttled, counted up over time, a line per quota: flat at 100 %, steeper the
    /// smaller the quota (each period the worker waits out what is left of it).
    pub fn throttling_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("Time spent throttled so far, by quota")
            .x_label("seconds since the run started")
            .y_label("ms throttled");
        for r in &self.runs {
            let first = r.report.detail.samples.first().map_or(0.0, |s| s.t_ms);
            chart = chart.series(
                format!("{:.0} %", r.cpu * 100.0),
                r.report.detail.samples.iter().filter_map(|s| {
                    Some(((s.t_ms - first) / 1e3, s.stats.throttled_ns? as f64 / 1e6))
                }),
            );
        }
        chart.render().map_err(Into::into)
    }

    /// CPU received per 100 ms sample, a line per quota: it sits at the quota.
    pub fn share_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("CPU received by the worker, by quota")
            .x_label("seconds since the run started")
            .y_label("% of one CPU");
        for r in &self.runs {
            let s = &r.report.detail.samples;
            let first = s.first().map_or(0.0, |s| s.t_ms);
            let points = s.windows(2).filter_map(|w| {
                let cpu = w[1].stats.cpu_ns?.checked_sub(w[0].stats.cpu_ns?)? as f64 / 1e6;
                Some((
                    (w[1].t_ms - first) / 1e3,
                    100.0 * cpu / (w[1].t_ms - w[0].t_ms),
                ))
            });
            chart = chart.series(format!("{:.0} %", r.cpu * 100.0), points);
        }
        chart.render().map_err(Into::into)
    }

    /// What each quota did, in words chosen from the counters: periods throttled, the wait per
    /// 100 ms period, the CPU received against the quota (below it by more than 5 points of
    /// one CPU: other programs on this machine wanted the CPU too).
    pub fn summary(&self) -> String {
        self.runs
            .iter()
            .map(|r| {
                let quota = 100.0 * r.cpu;
                let received = 100.0 * r.cpu_share;
                let wait = r.throttled_ms / (r.periods.max(1) as f64);
                let against = if received < quota - 5.0 {
                    "below its quota (a ceiling, not a reservation: other programs on this \
                     machine may have wanted the CPU)"
                } else if received > quota + 5.0 {
                    "above its quota"
                } else {
                    "at its quota"
                };
                format!(
                    "At {quota:.0} %: {} of {} periods ended throttled, {wait:.0} ms of each \
                     100 ms period spent waiting on average, and the worker received {received:.0} \
                     % of one CPU, {against}.",
                    r.throttled_periods, r.periods
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// A worker allocating `step_mib` more each iteration in a container limited to `memory`
/// bytes, running beside `bystanders` containers with the same limit that only print: the
/// first is OOM-killed (reported as such), the others end normally: one failing does not stop
/// its neighbours.
pub fn oom(memory: u64, step_mib: u32, bystanders: usize) -> Result<Vec<ContainerReport>> {
    virtlab_core::error::check_range("MiB per step", step_mib, 1, 4096)?;
    let limits = Limits {
        memory: Some(memory),
        ..Limits::default()
    }
    .checked()?;
    let steps = (memory >> 20) as u32 / step_mib + 4;
    let extras = WorkerFlags {
        allocate_mib: step_mib,
        allocate_only: Some(1),
        ..WorkerFlags::default()
    };
    let options = Options {
        fail_fast: false,
        ..Options::default()
    };
    let work = Work::new("box", steps, 100)?;
    Ok(Containers::with_extras(limits, extras)?
        .run(&work, 1 + bystanders, options)?
        .units)
}

/// How each container ended, with its peak memory and OOM kills.
pub fn endings(reports: &[ContainerReport]) -> Table {
    let mut t = Table::new(
        "How each container ended",
        [
            "container",
            "ended with",
            "memory peak",
            "OOM kills",
            "last line",
        ],
    );
    for r in reports {
        let end = r.detail.end_stats.unwrap_or_default();
        t.row([
            r.name.clone(),
            r.status.describe(),
            end.memory_peak_bytes.map_or("?".into(), units::bytes),
            end.oom_kills.map_or("?".into(), |n| n.to_string()),
            r.detail.lines.last().cloned().unwrap_or_default(),
        ]);
    }
    t
}

/// A container with at most `pids` processes that forks until the kernel refuses.
pub fn fork_bomb(pids: u64) -> Result<ContainerReport> {
    virtlab_core::error::check_range("the pids limit", pids, 1, super::worker::FORK_BOMB_CAP)?;
    let limits = Limits {
        pids: Some(pids),
        ..Limits::default()
    }
    .checked()?;
    let extras = WorkerFlags {
        fork_bomb: true,
        ..WorkerFlags::default()
    };
    let run = Containers::with_extras(limits, extras)?.run(
        &Work::new("bomb", 1, 1)?,
        1,
        Options::default(),
    )?;
    only(run.units)
}

/// The one container of a run of one.
fn only(containers: Vec<ContainerReport>) -> Result<ContainerReport> {
    containers
        .into_iter()
        .next()
        .ok_or_else(|| Error::bug("the container left no report"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtlab_core::executor::Status;

    fn run(cpu: f64, cpu_share: f64, periods: u64, throttled: u64, ms: f64) -> QuotaRun {
        QuotaRun {
            cpu,
            cpu_share,
            periods,
            throttled_periods: throttled,
            throttled_ms: ms,
            report: ContainerReport {
                name: "c".into(),
                pid: None,
                tid: None,
                status: Status::Completed,
                first_line_ms: None,
                detail: Default::default(),
            },
        }
    }

    #[test]
    fn the_summary_says_what_each_quota_did() {
        let sweep = QuotaSweep {
            runs: vec![run(1.0, 0.8, 20, 0, 0.0), run(0.5, 0.5, 20, 19, 980.0)],
        };
        let text = sweep.summary();
        assert!(
            text.contains("At 100 %: 0 of 20 periods ended throttled, 0 ms of each 100 ms period"),
            "{text}"
        );
        assert!(
            text.contains("received 80 % of one CPU, below its quota"),
            "{text}"
        );
        assert!(
            text.contains("At 50 %: 19 of 20 periods ended throttled, 49 ms of each"),
            "{text}"
        );
        assert!(
            text.contains("received 50 % of one CPU, at its quota."),
            "{text}"
        );
    }
}
