//! What a unit of concurrency costs — a process, a thread, a task: how long from asking for one
//! to it running, and how much resident memory each adds. Measured, then drawn side by side.

use crate::display::{Figure, Table};
use crate::plot::LineChart;
use crate::{Result, processes, store, threads, units};
use serde::{Deserialize, Serialize};

/// Per-unit medians with `count` units alive at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostPoint {
    pub count: usize,
    /// From the spawn call to the unit's first line (or first instruction) reaching us.
    pub first_line_ms: f64,
    pub rss_bytes: f64,
}

/// Memory and latency samples from one round of starting `count` units.
pub struct Round {
    /// Per unit: ms from asking for it to it running.
    pub latencies_ms: Vec<f64>,
    /// Bytes each unit added (one sample per unit, or one per round).
    pub bytes_each: Vec<f64>,
}

/// Checks every count first, then runs `repeats` rounds per count and keeps the medians.
pub fn sweep(
    counts: &[usize],
    repeats: usize,
    check: impl Fn(usize) -> Result<()>,
    mut round: impl FnMut(usize) -> Result<Round>,
) -> Result<Vec<CostPoint>> {
    crate::error::check_range("repeats", repeats, 1, 100)?;
    for &n in counts {
        check(n)?;
    }
    let mut points = Vec::new();
    for &n in counts {
        let (mut latencies, mut bytes) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let r = round(n)?;
            latencies.extend(r.latencies_ms);
            bytes.extend(r.bytes_each);
        }
        points.push(CostPoint {
            count: n,
            first_line_ms: median(&mut latencies),
            rss_bytes: median(&mut bytes),
        });
    }
    Ok(points)
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

/// Several kinds of unit measured at the same counts, e.g. processes beside threads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub kinds: Vec<(String, Vec<CostPoint>)>,
}

/// Where chapter 1 keeps its process-versus-thread measurement for later chapters.
const STORE_NAME: &str = "unit-costs";

impl Comparison {
    /// Measures processes and threads at the same counts (`repeats` rounds each; processes
    /// hold for 300 ms so all are alive together) and saves the result for later chapters.
    pub fn processes_vs_threads(counts: &[usize], repeats: usize) -> Result<Comparison> {
        let measured = Comparison::of([
            ("process", processes::spawn_cost(counts, repeats, 300)?),
            ("thread", threads::spawn_cost(counts, repeats)?),
        ]);
        store::save(STORE_NAME, &measured)?;
        Ok(measured)
    }

    /// What [`Comparison::processes_vs_threads`] saved last, or a new measurement if none was.
    pub fn saved_or_measured(counts: &[usize], repeats: usize) -> Result<Comparison> {
        match store::load(STORE_NAME)? {
            Some(saved) => Ok(saved),
            None => Comparison::processes_vs_threads(counts, repeats),
        }
    }

    pub fn of<S: Into<String>>(kinds: impl IntoIterator<Item = (S, Vec<CostPoint>)>) -> Comparison {
        Comparison {
            kinds: kinds
                .into_iter()
                .map(|(name, points)| (name.into(), points))
                .collect(),
        }
    }

    /// This comparison with one more kind of unit.
    pub fn with(mut self, name: &str, points: Vec<CostPoint>) -> Comparison {
        self.kinds.push((name.to_string(), points));
        self
    }

    /// The measurement of `kind` at the largest count, if it was measured.
    fn at_largest(&self, kind: &str) -> Option<&CostPoint> {
        self.kinds
            .iter()
            .find(|(name, _)| name == kind)
            .and_then(|(_, points)| points.iter().max_by_key(|p| p.count))
    }

    /// Processes, threads and tasks side by side, each row's numbers from these measurements and
    /// the blocking trap (`lateness_alone_ms`, `lateness_blocked_ms`: median ticker lateness).
    pub fn which_one_when(&self, lateness_alone_ms: f64, lateness_blocked_ms: f64) -> Table {
        let mut t = Table::new(
            "Which one when (numbers measured on this machine, at the largest count)",
            [
                "unit",
                "starts in",
                "memory each",
                "use it for",
                "watch out for",
            ],
        );
        let measured = |kind: &str| {
            self.at_largest(kind).map_or(
                ("not measured".to_string(), "not measured".to_string()),
                |p| {
                    (
                        format!("{:.3} ms", p.first_line_ms),
                        units::bytes(p.rss_bytes.max(0.0) as u64),
                    )
                },
            )
        };
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
            let (start, memory) = measured(kind);
            t.row([kind.to_string(), start, memory, good.to_string(), careful]);
        }
        t
    }

    pub fn table(&self) -> Table {
        let mut t = Table::new(
            "Cost per unit (medians)",
            [
                "unit",
                "alive at once",
                "spawn → running",
                "resident memory each",
            ],
        );
        for (name, points) in &self.kinds {
            for p in points.iter() {
                t.row([
                    name.to_string(),
                    p.count.to_string(),
                    format!("{:.3} ms", p.first_line_ms),
                    units::bytes(p.rss_bytes.max(0.0) as u64),
                ]);
            }
        }
        t
    }

    pub fn latency_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("How long until a new unit runs")
            .x_label("units started together")
            .y_label("ms from spawn to running (median)")
            .log_x()
            .log_y();
        for (name, points) in &self.kinds {
            chart = chart.series(
                name.as_str(),
                points.iter().map(|p| (p.count as f64, p.first_line_ms)),
            );
        }
        chart.render()
    }

    pub fn memory_plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("Resident memory each unit adds")
            .x_label("units alive together")
            .y_label("KiB per unit (median)")
            .log_x()
            .log_y();
        for (name, points) in &self.kinds {
            // A log axis cannot show zero: a unit that added no measurable memory is left out.
            chart = chart.series(
                name.as_str(),
                points
                    .iter()
                    .filter(|p| p.rss_bytes > 0.0)
                    .map(|p| (p.count as f64, p.rss_bytes / 1024.0)),
            );
        }
        chart.render()
    }

    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_refuses_a_bad_count_before_measuring_anything() {
        let mut rounds = 0;
        let check = |n: usize| crate::error::check_range("count", n, 1, 10).map(drop);
        let err = sweep(&[1, 2, 99], 3, check, |_| {
            rounds += 1;
            Ok(Round {
                latencies_ms: vec![1.0],
                bytes_each: vec![],
            })
        })
        .unwrap_err();
        assert!(err.problem().contains("count cannot be 99"), "{err}");
        assert_eq!(rounds, 0);
        let points = sweep(&[1, 2], 3, check, |n| {
            Ok(Round {
                latencies_ms: vec![n as f64; n],
                bytes_each: vec![10.0],
            })
        })
        .unwrap();
        assert_eq!(
            points
                .iter()
                .map(|p| (p.count, p.first_line_ms, p.rss_bytes))
                .collect::<Vec<_>>(),
            vec![(1, 1.0, 10.0), (2, 2.0, 10.0)]
        );
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn comparison_tables_and_plots_every_kind() {
        let processes = [
            CostPoint {
                count: 1,
                first_line_ms: 1.5,
                rss_bytes: 3e6,
            },
            CostPoint {
                count: 4,
                first_line_ms: 1.8,
                rss_bytes: 3e6,
            },
        ];
        let threads = [
            CostPoint {
                count: 1,
                first_line_ms: 0.02,
                rss_bytes: 16e3,
            },
            CostPoint {
                count: 4,
                first_line_ms: 0.03,
                rss_bytes: 0.0,
            },
        ];
        let c = Comparison::of([
            ("process", processes.to_vec()),
            ("thread", threads.to_vec()),
        ]);
        assert_eq!(c.table().rows().len(), 4);
        assert!(c.latency_plot().unwrap().svg().contains("thread"));
        assert!(c.memory_plot().unwrap().svg().contains("process"));
        let all = c.with(
            "task",
            vec![CostPoint {
                count: 4,
                first_line_ms: 0.001,
                rss_bytes: 450.0,
            }],
        );
        let advice = all.which_one_when(0.05, 12.5).to_string();
        assert!(
            advice.contains("1.800 ms") && advice.contains("0.001 ms"),
            "{advice}"
        );
        assert!(
            advice.contains("median lateness 12.50 ms instead of 0.05 ms"),
            "{advice}"
        );
    }
}
