//! Chapter 2's price of sharing: threads adding to one total through a `Mutex`, an atomic, or
//! private sums added once at the end, each checked for lost updates and timed.

use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::error::check_range;
use virtlab_core::load::{self, Load};
use virtlab_core::stats::median;
use virtlab_core::threads::check_thread_count;
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

/// Ways for threads to add to one total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Every increment takes a lock.
    Mutex,
    /// Every increment is one atomic read-modify-write on a shared cache line.
    Atomic,
    /// Each thread counts privately; the totals are added once at the end.
    PerThreadSums,
}

impl Sharing {
    /// Every method, in the order tables and charts show them: the slowest (usually) first.
    pub const ALL: [Sharing; 3] = [Sharing::Mutex, Sharing::Atomic, Sharing::PerThreadSums];

    /// The name tables and legends show: `Mutex<u64>`, `AtomicU64` or `per-thread sums`.
    pub fn name(self) -> &'static str {
        match self {
            Sharing::Mutex => "Mutex<u64>",
            Sharing::Atomic => "AtomicU64",
            Sharing::PerThreadSums => "per-thread sums",
        }
    }

    /// `threads` threads each add 1 `increments` times; returns the final total.
    fn count(self, threads: usize, increments: u64) -> u64 {
        match self {
            Sharing::Mutex => {
                let total = Mutex::new(0u64);
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..increments {
                                *total.lock().unwrap_or_else(|e| e.into_inner()) += 1;
                            }
                        });
                    }
                });
                total.into_inner().unwrap_or_else(|e| e.into_inner())
            }
            Sharing::Atomic => {
                let total = AtomicU64::new(0);
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..increments {
                                total.fetch_add(1, Ordering::Relaxed);
                            }
                        });
                    }
                });
                total.into_inner()
            }
            Sharing::PerThreadSums => std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(move || {
                            let mut mine = 0u64;
                            for _ in 0..increments {
                                mine = std::hint::black_box(mine + 1);
                            }
                            mine
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
            }),
        }
    }
}

/// One method at one thread count, as [`sharing_costs`] measured it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingPoint {
    /// How the threads shared the total.
    pub method: Sharing,
    /// How many threads added at once.
    pub threads: usize,
    /// The final total, checked to be threads × increments per thread: no update was lost.
    pub total: u64,
    /// Wall time of the whole count divided by every increment of every thread, in ns (median of
    /// 3 runs); lower is cheaper. Threads that run in parallel lower it, threads that queue for one
    /// cache line raise it.
    pub ns_per_increment: f64,
}

/// Each method at each thread count (median of 3): the total is checked, the cost reported.
pub fn sharing_costs(
    thread_counts: &[usize],
    increments_per_thread: u64,
) -> Result<Vec<SharingPoint>> {
    check_range(
        "increments per thread",
        increments_per_thread,
        1,
        1_000_000_000,
    )?;
    let mut points = Vec::new();
    for &threads in thread_counts {
        check_thread_count(threads)?;
        for method in Sharing::ALL {
            let mut runs = Vec::new();
            let expected = threads as u64 * increments_per_thread;
            for _ in 0..3 {
                let started = Instant::now();
                let total = method.count(threads, increments_per_thread);
                runs.push(started.elapsed().as_secs_f64());
                if total != expected {
                    return Err(Error::new(
                        format!(
                            "{} lost updates: {total} instead of {expected}",
                            method.name()
                        ),
                        "report this as a bug in virtlab",
                    ));
                }
            }
            points.push(SharingPoint {
                method,
                threads,
                total: expected,
                ns_per_increment: median(&mut runs) * 1e9 / expected as f64,
            });
        }
    }
    Ok(points)
}

/// Tables and plots a set of sharing measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharingCosts {
    /// Every method at every thread count.
    pub points: Vec<SharingPoint>,
    /// What other programs and the hypervisor took while they were measured (each point lasts
    /// milliseconds, too short for `/proc/stat`'s ticks, so one reading covers them all).
    pub load: Option<Load>,
}

impl SharingCosts {
    /// Measures every method at each of `thread_counts` (each count 1 to 10 000), each
    /// thread adding 1 `increments_per_thread` times (1 to 10⁹); see [`sharing_costs`].
    pub fn measure(thread_counts: &[usize], increments_per_thread: u64) -> Result<SharingCosts> {
        let (points, load) = load::during(|| sharing_costs(thread_counts, increments_per_thread));
        Ok(SharingCosts {
            points: points?,
            load,
        })
    }

    /// One row per method and thread count: the checked total and ns per increment.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "One counter, many threads (median of 3; {})",
                self.load.as_ref().map_or(
                    "other programs' CPU use not observable".into(),
                    Load::summary
                )
            ),
            ["method", "threads", "final total", "ns per increment"],
        );
        for p in &self.points {
            t.row([
                p.method.name().to_string(),
                p.threads.to_string(),
                p.total.to_string(),
                format!("{:.2}", p.ns_per_increment),
            ]);
        }
        t
    }

    /// ns per increment of `method` at its fewest and its most threads.
    fn ends(&self, method: Sharing) -> Option<(&SharingPoint, &SharingPoint)> {
        let points = || self.points.iter().filter(move |p| p.method == method);
        Some((
            points().min_by_key(|p| p.threads)?,
            points().max_by_key(|p| p.threads)?,
        ))
    }

    /// What this run showed, computed from its numbers: how each method's cost per increment
    /// moved from the fewest to the most threads, and which was cheapest with the most threads.
    pub fn what_we_saw(&self) -> Table {
        let mut t = Table::new(
            "What this run measured",
            ["question", "answer, from the numbers above"],
        );
        for method in Sharing::ALL {
            let Some((few, many)) = self.ends(method) else {
                continue;
            };
            if few.threads == many.threads {
                continue;
            }
            let ratio = many.ns_per_increment / few.ns_per_increment;
            // Private counts share nothing, so only two things keep them from running in
            // parallel: other programs on the CPUs, or counts so short that starting a thread
            // takes as long as the count itself.
            let busy = self.load.as_ref().is_some_and(Load::is_busy);
            let private_why = if busy {
                "fewer free CPUs than threads: other programs held them (last row)".to_string()
            } else {
                let per_thread = few.total / few.threads.max(1) as u64;
                format!(
                    "each thread's count took about {:.0} µs alone, about what starting a thread \
                     costs (chapter 1's ladder), so starting the threads ate the parallel gain; \
                     more increments per thread would show it",
                    few.ns_per_increment * per_thread as f64 / 1e3
                )
            };
            let trend = match (method, ratio) {
                (Sharing::PerThreadSums, r) if r > 1.3 || r >= 0.77 => format!(
                    "{}, with no shared line to queue for: {private_why}",
                    if r > 1.3 {
                        "dearer per increment"
                    } else {
                        "about flat"
                    }
                ),
                (_, r) if r > 1.3 => "dearer per increment as threads were added: they queued \
                                      for one lock or cache line and paid to hand it over"
                    .to_string(),
                (_, r) if r < 0.77 => {
                    "cheaper per increment: the threads' increments ran in parallel".to_string()
                }
                _ => "about flat: the increments went one after another whatever the thread \
                      count (no parallel gain), and handing over the lock or cache line added \
                      little here"
                    .to_string(),
            };
            t.row([
                format!(
                    "{} from {} to {} threads?",
                    method.name(),
                    few.threads,
                    many.threads
                ),
                format!(
                    "{:.2} → {:.2} ns per increment ({ratio:.2}×): {trend}",
                    few.ns_per_increment, many.ns_per_increment
                ),
            ]);
        }
        let most = self.points.iter().map(|p| p.threads).max();
        let at_most: Vec<&SharingPoint> = self
            .points
            .iter()
            .filter(|p| Some(p.threads) == most)
            .collect();
        if let (Some(cheapest), Some(dearest)) = (
            at_most
                .iter()
                .min_by(|a, b| a.ns_per_increment.total_cmp(&b.ns_per_increment)),
            at_most
                .iter()
                .max_by(|a, b| a.ns_per_increment.total_cmp(&b.ns_per_increment)),
        ) {
            t.row([
                format!("Cheapest with {} threads?", cheapest.threads),
                format!(
                    "{} at {:.2} ns per increment, {:.0}× cheaper than {} ({:.2} ns)",
                    cheapest.method.name(),
                    cheapest.ns_per_increment,
                    dearest.ns_per_increment / cheapest.ns_per_increment,
                    dearest.method.name(),
                    dearest.ns_per_increment
                ),
            ]);
        }
        t.row(load::quiet_row(
            self.load.as_ref(),
            "the costs with more threads than free CPUs read high",
        ));
        t
    }

    /// ns per increment against threads, one line per method, on a log y axis.
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new("The price of sharing one counter")
            .x_label("threads")
            .y_label("ns per increment (wall time / increments)")
            .log_y();
        for method in Sharing::ALL {
            chart = chart.series(
                method.name(),
                self.points
                    .iter()
                    .filter(|p| p.method == method)
                    .map(|p| (p.threads as f64, p.ns_per_increment)),
            );
        }
        chart.render().map_err(Into::into)
    }

    /// Shows [`SharingCosts::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(method: Sharing, threads: usize, ns_per_increment: f64) -> SharingPoint {
        SharingPoint {
            method,
            threads,
            total: threads as u64,
            ns_per_increment,
        }
    }

    #[test]
    fn what_we_saw_words_each_trend_as_measured() {
        // The flat run: Mutex ~10.9 ns and the atomic 4.6 ns from 1 to 8 threads.
        let costs = SharingCosts {
            load: None,
            points: vec![
                point(Sharing::Mutex, 1, 10.9),
                point(Sharing::Atomic, 1, 4.6),
                point(Sharing::PerThreadSums, 1, 1.0),
                point(Sharing::Mutex, 8, 10.95),
                point(Sharing::Atomic, 8, 9.2),
                point(Sharing::PerThreadSums, 8, 0.5),
            ],
        };
        let said = costs.what_we_saw().to_string();
        assert!(
            said.contains("10.90 → 10.95 ns per increment (1.00×): about flat"),
            "{said}"
        );
        assert!(
            said.contains("4.60 → 9.20 ns per increment (2.00×): dearer"),
            "{said}"
        );
        assert!(said.contains("(0.50×): cheaper"), "{said}");
        assert!(
            said.contains("per-thread sums at 0.50 ns per increment, 22× cheaper than Mutex<u64>"),
            "{said}"
        );
    }

    #[test]
    fn flat_private_counts_are_explained_by_the_load_or_their_length() {
        let flat = |load| SharingCosts {
            load,
            points: vec![
                SharingPoint {
                    total: 200_000,
                    ..point(Sharing::PerThreadSums, 1, 0.33)
                },
                point(Sharing::PerThreadSums, 8, 0.33),
            ],
        };
        let quiet = flat(None).what_we_saw().to_string();
        assert!(
            quiet.contains("about 66 µs alone, about what starting a thread"),
            "{quiet}"
        );
        let busy = flat(Some(Load {
            seconds: 1.0,
            machine_cpus: 2,
            others_cpus: 1.5,
            steal_cpus: 0.0,
        }))
        .what_we_saw()
        .to_string();
        assert!(busy.contains("fewer free CPUs than threads"), "{busy}");
    }

    #[test]
    fn every_sharing_method_reaches_the_same_total() {
        let costs = SharingCosts::measure(&[1, 4], 10_000).unwrap();
        assert_eq!(costs.points.len(), 6);
        assert!(
            costs
                .points
                .iter()
                .all(|p| p.total == p.threads as u64 * 10_000 && p.ns_per_increment > 0.0)
        );
        assert!(costs.plot().unwrap().svg().contains("AtomicU64"));
    }
}
