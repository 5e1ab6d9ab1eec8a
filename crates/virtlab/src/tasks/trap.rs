//! Chapter 3's blocking trap: a ticker task wants to wake every few milliseconds while CPU work
//! runs beside it, placed four ways; how late each wake-up comes shows why one task computing
//! without awaiting stalls every other task on its thread.

use super::{current_thread_runtime, multi_thread_runtime, on_own_runtime};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use virtlab_core::Result;
use virtlab_core::error::check_range;
use virtlab_core::work::burn;
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

/// Where the CPU-bound work runs while a ticker task measures how late it wakes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Setup {
    /// The ticker alone on a current-thread runtime.
    Alone,
    /// A task on the same current-thread runtime computes without ever awaiting.
    BlockingTask,
    /// The computation is handed to `spawn_blocking` (tokio's pool of blocking threads).
    SpawnBlocking,
    /// A multi-thread runtime: the computing task holds one worker, the ticker uses another.
    MultiThread,
}

impl Setup {
    /// Every setup, in the order tables and charts show them: the ticker alone first, as the
    /// baseline.
    pub const ALL: [Setup; 4] = [
        Setup::Alone,
        Setup::BlockingTask,
        Setup::SpawnBlocking,
        Setup::MultiThread,
    ];

    /// The name tables and legends show, e.g. `CPU work in spawn_blocking`.
    pub fn name(self) -> &'static str {
        match self {
            Setup::Alone => "ticker alone",
            Setup::BlockingTask => "CPU work in a task (blocks the thread)",
            Setup::SpawnBlocking => "CPU work in spawn_blocking",
            Setup::MultiThread => "multi-thread runtime",
        }
    }
}

/// One setup's ticker: how late each wake-up was (ms), sorted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrapResult {
    /// Where the CPU work ran.
    pub setup: Setup,
    /// How late each wake-up came after the moment it was due, in ms, smallest first.
    pub lateness_ms: Vec<f64>,
    /// What other programs and the hypervisor took while this setup ran.
    #[serde(default)]
    pub load: Option<virtlab_core::load::Load>,
}

impl TrapResult {
    /// The `q`-th percentile of the lateness, in ms, for `q` from 0 to 100 (50 is the median, 100
    /// the latest wake-up); NaN when there were no ticks.
    pub fn percentile(&self, q: f64) -> f64 {
        if self.lateness_ms.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lateness_ms.len() - 1) as f64 * q / 100.0).round() as usize;
        self.lateness_ms[i]
    }
}

/// Chapter 3's blocking trap, measured by [`blocking_trap`]: how late a ticker task wakes in each
/// [`Setup`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockingTrap {
    /// How often the ticker wants to wake, in ms.
    pub tick_ms: u64,
    /// How long each setup runs, in ms.
    pub duration_ms: u64,
    /// How long the CPU-bound work runs between its (non-)yields.
    pub burn_ms: u64,
    /// One result per setup, in the order of [`Setup::ALL`].
    pub results: Vec<TrapResult>,
}

/// A ticker wants to wake every `tick_ms` for `duration_ms`; meanwhile CPU work burns in
/// `burn_ms` slices, placed as each [`Setup`] says. Returns each setup's lateness distribution.
pub fn blocking_trap(tick_ms: u64, duration_ms: u64, burn_ms: u64) -> Result<BlockingTrap> {
    check_range("the tick (ms)", tick_ms, 1, 1000)?;
    check_range("the duration (ms)", duration_ms, tick_ms * 5, 60_000)?;
    check_range("the CPU slice (ms)", burn_ms, 1, 1000)?;
    let mut results = Vec::new();
    for setup in Setup::ALL {
        let build = if setup == Setup::MultiThread {
            multi_thread_runtime
        } else {
            current_thread_runtime
        };
        let sampler = virtlab_core::load::Sampler::start();
        let mut lateness = on_own_runtime(build, async move || {
            let total = Duration::from_millis(duration_ms);
            let slice = Duration::from_millis(burn_ms);
            // One schedule for both: the ticker's first tick is due one tick after `start`,
            // and the computation runs from `start` until `until`.
            let start = Instant::now();
            let until = start + total;
            let ticker = tokio::spawn(ticker(start, Duration::from_millis(tick_ms), total));
            let cpu = match setup {
                Setup::Alone => None,
                // Computes a slice, then yields: other tasks get the thread only between slices.
                Setup::BlockingTask | Setup::MultiThread => Some(tokio::spawn(async move {
                    while Instant::now() < until {
                        burn(slice);
                        tokio::task::yield_now().await;
                    }
                })),
                Setup::SpawnBlocking => Some(tokio::task::spawn_blocking(move || {
                    while Instant::now() < until {
                        burn(slice);
                    }
                })),
            };
            let lateness = ticker.await.unwrap_or_default();
            if let Some(cpu) = cpu {
                let _ = cpu.await;
            }
            lateness
        })?;
        lateness.sort_by(f64::total_cmp);
        results.push(TrapResult {
            setup,
            lateness_ms: lateness,
            load: sampler.stop(),
        });
    }
    Ok(BlockingTrap {
        tick_ms,
        duration_ms,
        burn_ms,
        results,
    })
}

/// Sleeps until each planned tick after `start` and records how late it woke (ms).
async fn ticker(start: Instant, tick: Duration, total: Duration) -> Vec<f64> {
    let mut lateness = Vec::new();
    let mut planned = start + tick;
    while planned < start + total {
        tokio::time::sleep_until(tokio::time::Instant::from_std(planned)).await;
        lateness.push(
            Instant::now()
                .saturating_duration_since(planned)
                .as_secs_f64()
                * 1e3,
        );
        // A late tick does not shift the schedule: the next one is still due at its time.
        planned += tick;
        while planned < Instant::now() {
            planned += tick;
        }
    }
    lateness
}

impl BlockingTrap {
    /// The median lateness of one setup's ticks (ms).
    pub fn median(&self, setup: Setup) -> f64 {
        self.results
            .iter()
            .find(|r| r.setup == setup)
            .map_or(f64::NAN, |r| r.percentile(50.0))
    }

    /// One row per setup: ticks counted, median, 90th percentile and worst lateness, in ms.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "How late a {} ms ticker wakes (CPU work in {} ms slices, {} ms in all)",
                self.tick_ms, self.burn_ms, self.duration_ms
            ),
            ["setup", "ticks", "median", "p90", "max"],
        );
        for r in &self.results {
            t.row([
                r.setup.name().to_string(),
                r.lateness_ms.len().to_string(),
                format!("{:.2} ms", r.percentile(50.0)),
                format!("{:.2} ms", r.percentile(90.0)),
                format!("{:.2} ms", r.percentile(100.0)),
            ]);
        }
        t
    }

    /// What this run showed, computed from its numbers and worded for the result obtained:
    /// each setup's median and worst lateness beside the ticker alone and the CPU slice.
    pub fn what_we_saw(&self) -> Table {
        let mut t = Table::new(
            format!(
                "What this run measured ({} ms ticker, CPU work in {} ms slices)",
                self.tick_ms, self.burn_ms
            ),
            ["setup", "what happened"],
        );
        let alone = self.median(Setup::Alone);
        let slice = self.burn_ms as f64;
        for r in &self.results {
            let (median, worst) = (r.percentile(50.0), r.percentile(100.0));
            if r.lateness_ms.is_empty() {
                t.row([r.setup.name(), "no tick woke: nothing to say"]);
                continue;
            }
            let measured = format!("median {median:.2} ms late, worst {worst:.2} ms");
            let beside_alone = if r.setup == Setup::Alone || alone.is_nan() || alone <= 0.01 {
                String::new()
            } else {
                format!(" (median {:.1}× the ticker alone)", median / alone)
            };
            let share = format!(
                "{:.0}% of a {} ms slice",
                100.0 * worst / slice,
                self.burn_ms
            );
            let verdict = match r.setup {
                Setup::Alone if median < 1.5 => {
                    "about tokio's floor: its timer counts in whole milliseconds".to_string()
                }
                Setup::Alone => match r
                    .load
                    .as_ref()
                    .and_then(virtlab_core::load::Load::busy_cause)
                {
                    Some(cause) => format!("above tokio's 1 ms floor: {cause}"),
                    None => "above tokio's 1 ms floor with no other program seen taking CPU \
                             time: this machine's own wake-up latency (a virtual machine's \
                             timer and scheduler add to it)"
                        .to_string(),
                },
                Setup::BlockingTask if worst >= slice / 2.0 && median > 2.0 * alone => {
                    format!("the trap: the worst wake-up waited {share} for the computing task")
                }
                Setup::BlockingTask => format!(
                    "not the trap this time: the worst wake-up waited only {share}, so the \
                     computing task rarely held the thread when a tick was due"
                ),
                Setup::SpawnBlocking | Setup::MultiThread if worst < slice / 2.0 => {
                    "the computation did not hold the ticker up: no wake-up waited half a slice"
                        .to_string()
                }
                Setup::SpawnBlocking | Setup::MultiThread => format!(
                    "a wake-up still waited {share}: tokio did not block the ticker here, but \
                     the threads competed for the machine's cores"
                ),
            };
            t.row([
                r.setup.name().to_string(),
                format!("{measured}{beside_alone}: {verdict}"),
            ]);
        }
        let busiest =
            virtlab_core::load::Load::busiest(self.results.iter().filter_map(|r| r.load.as_ref()));
        t.row(virtlab_core::load::quiet_row(
            busiest,
            "every setup wakes later than on a quiet machine",
        ));
        t
    }

    /// Each setup's lateness distribution: percentile on x, lateness on a log y axis.
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("The blocking trap: how late a ticker task wakes")
            .x_label("percentile of ticks")
            .y_label("ms late (log)")
            .log_y();
        for r in &self.results {
            // A log axis cannot show 0; a wake-up on time is drawn at 1 µs.
            let points = (0..=20).map(|i| (i as f64 * 5.0, r.percentile(i as f64 * 5.0).max(1e-3)));
            chart = chart.series(r.setup.name(), points);
        }
        chart.render().map_err(Into::into)
    }

    /// Shows [`BlockingTrap::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_trap_measures_every_setup() {
        let trap = blocking_trap(5, 100, 20).unwrap();
        assert_eq!(trap.results.len(), 4);
        assert!(trap.results.iter().all(|r| !r.lateness_ms.is_empty()));
        assert!(trap.plot().unwrap().svg().contains("spawn_blocking"));
        assert!(trap.median(Setup::Alone).is_finite());
        // One row per setup, and whether the machine was quiet.
        assert_eq!(trap.what_we_saw().rows().len(), 5);
        assert!(trap.results.iter().all(|r| r.load.is_some()));
    }

    fn trap_with(alone: &[f64], blocked: &[f64], off: &[f64]) -> BlockingTrap {
        let result = |setup, lateness: &[f64]| TrapResult {
            setup,
            lateness_ms: lateness.to_vec(),
            load: None,
        };
        BlockingTrap {
            tick_ms: 10,
            duration_ms: 1000,
            burn_ms: 50,
            results: vec![
                result(Setup::Alone, alone),
                result(Setup::BlockingTask, blocked),
                result(Setup::SpawnBlocking, off),
                result(Setup::MultiThread, off),
            ],
        }
    }

    #[test]
    fn what_we_saw_is_worded_for_the_result_obtained() {
        let trapped = trap_with(&[1.0, 1.1, 1.2], &[20.0, 30.0, 48.0], &[1.0, 1.1, 1.3]);
        let text = trapped.what_we_saw().to_string();
        for fact in [
            "median 1.10 ms late, worst 1.20 ms: about tokio's floor",
            "median 30.00 ms late, worst 48.00 ms (median 27.3× the ticker alone): the trap: \
             the worst wake-up waited 96% of a 50 ms slice",
            "no wake-up waited half a slice",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        // A busy machine: the ticker is late alone, the computing task never caught a tick,
        // and the threads competed for the cores.
        let busy = trap_with(&[3.0, 4.0, 5.0], &[3.0, 4.0, 6.0], &[3.0, 4.0, 40.0]);
        let text = busy.what_we_saw().to_string();
        for fact in [
            "above tokio's 1 ms floor",
            "not the trap this time: the worst wake-up waited only 12% of a 50 ms slice",
            "a wake-up still waited 80% of a 50 ms slice",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        assert!(!text.contains("the trap: "), "{text}");
        // Late alone with nothing else seen running is this machine's latency; with another
        // program on the CPUs, that program is named.
        assert!(text.contains("own wake-up latency"), "{text}");
        let mut loaded = busy.clone();
        loaded.results[0].load = Some(virtlab_core::load::Load {
            seconds: 1.0,
            machine_cpus: 2,
            others_cpus: 1.2,
            steal_cpus: 0.0,
        });
        let text = loaded.what_we_saw().to_string();
        assert!(
            text.contains("above tokio's 1 ms floor: other programs kept 1.2"),
            "{text}"
        );
    }

    #[test]
    fn a_trap_shorter_than_five_ticks_is_refused() {
        assert!(
            blocking_trap(10, 10, 5)
                .unwrap_err()
                .problem()
                .contains("duration")
        );
    }
}
