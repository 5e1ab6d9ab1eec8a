//! The price of being virtual, seen from inside this machine (no KVM needed): some instructions
//! cannot run on a virtual CPU without the hypervisor's help. `cpuid` always leaves a VM (the
//! hypervisor answers it), a system call stays inside (our own kernel answers), `rdtsc` is
//! usually answered by the CPU itself. And *steal time*: how long the host gave our vCPUs to
//! someone else while we wanted them, read from `/proc/stat` while a CPU-bound job runs.

use serde::Serialize;
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::load::{MachineTicks, clock_ticks_per_second, parse_stat};
use virtlab_core::machine;
use virtlab_display::plot::BarChart;
use virtlab_display::{Figure, Html, Table};

pub use virtlab_core::traps::{OpCost, instruction_costs};

/// The costs as a table.
pub fn cost_table(costs: &[OpCost]) -> Table {
    let mut t = Table::new(
        "One operation, from inside this machine (median ns)",
        ["operation", "ns", "why"],
    );
    for c in costs {
        t.row([
            c.name.to_string(),
            format!("{:.1}", c.ns),
            c.why.to_string(),
        ]);
    }
    t
}

/// The costs as a bar chart, on a logarithmic axis (they differ a thousandfold).
pub fn cost_plot(costs: &[OpCost]) -> Result<Figure> {
    costs
        .iter()
        .fold(
            BarChart::new("One operation inside this machine", &["ns"])
                .x_label("ns (median), log scale")
                .log_x(),
            |chart, c| chart.bar(c.name.clone(), &[c.ns]),
        )
        .render()
        .map_err(Into::into)
}

/// CPU time the host gave to others while our CPU-bound job wanted every vCPU.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Steal {
    /// CPUs the job ran on.
    pub cpus: usize,
    /// CPUs `/proc/stat` counts (the whole machine).
    pub machine_cpus: usize,
    /// How long the job ran.
    pub wall: Duration,
    /// CPU seconds `/proc/stat` counted on all CPUs over the job, whatever they went to (about
    /// `machine_cpus` × wall; counted in whole clock ticks, so the shares below come from one
    /// counter and add up to 100 %).
    pub capacity_s: f64,
    /// Seconds counted as steal in `/proc/stat` over the job.
    pub steal_s: f64,
    /// Seconds counted as busy (user + system + …) in `/proc/stat` over the job.
    pub busy_s: f64,
}

impl Steal {
    /// Steal as a share of the capacity.
    pub fn share(&self) -> f64 {
        if self.capacity_s > 0.0 {
            self.steal_s / self.capacity_s
        } else {
            0.0
        }
    }

    /// The measurements as a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Steal time while a CPU-bound job ran on {} CPUs for {:.1} s",
                self.cpus,
                self.wall.as_secs_f64()
            ),
            ["what", "CPU seconds", "share"],
        );
        let share = |s: f64| format!("{:.1}%", 100.0 * s / self.capacity_s.max(1e-9));
        let idle = (self.capacity_s - self.busy_s - self.steal_s).max(0.0);
        t.row([
            format!(
                "counted on {} CPUs over the job (/proc/stat)",
                self.machine_cpus
            ),
            format!("{:.2}", self.capacity_s),
            "100%".into(),
        ]);
        t.row([
            "busy (ours and everyone else's on this machine)".to_string(),
            format!("{:.2}", self.busy_s),
            share(self.busy_s),
        ]);
        t.row([
            "stolen: the host ran someone else".to_string(),
            format!("{:.2}", self.steal_s),
            share(self.steal_s),
        ]);
        t.row([
            "idle or waiting for I/O".to_string(),
            format!("{idle:.2}"),
            share(idle),
        ]);
        t
    }

    /// The table as HTML.
    pub fn to_html(&self) -> Html {
        self.table().to_html()
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

/// Runs chapter 2's Monte Carlo job on every usable CPU for `ms` and reads the steal that
/// `/proc/stat` counted meanwhile. Linux only (elsewhere: an error saying so).
pub fn steal_during_job(ms: u64) -> Result<Steal> {
    virtlab_core::error::check_range("the job's duration (ms)", ms, 100, 600_000)?;
    let before = cpu_ticks()?;
    let cpus = machine::usable_cpus();
    let wall = Duration::from_millis(ms);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for seed in 0..cpus {
            scope.spawn(move || {
                while started.elapsed() < wall {
                    std::hint::black_box(virtlab_core::hits::monte_carlo_hits(seed as u64, 50_000));
                }
            });
        }
    });
    let wall = started.elapsed();
    let after = cpu_ticks()?;
    let hz = clock_ticks_per_second();
    let seconds = |f: fn(&MachineTicks) -> u64| (f(&after).saturating_sub(f(&before))) as f64 / hz;
    // /proc/stat counts every CPU of the machine; we ran on `cpus` of them.
    let all_cpus = after.cpus.max(1);
    Ok(Steal {
        cpus,
        machine_cpus: all_cpus,
        wall,
        capacity_s: seconds(|t| t.total),
        steal_s: seconds(|t| t.steal),
        busy_s: seconds(|t| t.busy),
    })
}

fn cpu_ticks() -> Result<MachineTicks> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| {
        Error::new(
            format!("cannot read /proc/stat ({e}): steal time is a Linux statistic"),
            "run the steal measurement on Linux; the instruction costs work everywhere",
        )
    })?;
    parse_stat(&text).ok_or_else(|| {
        Error::new(
            "/proc/stat has no cpu line with a steal column",
            "use a Linux kernel from 2.6.11 or later",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_measured() {
        let costs = instruction_costs(3).unwrap();
        assert!(costs.iter().all(|c| c.ns > 0.0 && c.ns.is_finite()));
        assert!(costs.iter().any(|c| c.name == "getppid system call"));
        assert_eq!(cost_table(&costs).rows().len(), costs.len());
        assert!(instruction_costs(0).is_err());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn steal_is_read_around_a_job() {
        let steal = steal_during_job(100).unwrap();
        assert!(steal.capacity_s > 0.0);
        assert!(steal.share() >= 0.0);
        // Every share is of the same counter: none can pass 100 %.
        assert!(
            steal.busy_s + steal.steal_s <= steal.capacity_s,
            "{steal:?}"
        );
        assert!(steal.table().to_string().contains("stolen"));
        assert!(steal_during_job(10).is_err());
    }
}
