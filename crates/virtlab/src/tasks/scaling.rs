//! Chapter 3's "how many fit": 1, 10, 100, … sleeping tasks beside as many sleeping OS threads
//! as the machine allows, timed, with the memory each unit holds.

use super::{MAX_TASKS, TASK_BYTES_ESTIMATE, THREAD_BYTES_ESTIMATE, check_memory};
use super::{current_thread_runtime, on_own_runtime};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::error::check_range;
use virtlab_core::memory::heap_in_use;
use virtlab_core::units;
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

/// `count` units that each slept `sleep_ms`: the wall time for all of them and the memory each held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalePoint {
    /// How many units ran at once: 1, 10, 100, …
    pub count: usize,
    /// From the first start until every unit had finished its sleep, in ms; the sleep itself is
    /// the floor, anything above it is the cost of starting and ending that many units.
    pub wall_ms: f64,
    /// Memory each unit added: heap bytes for tasks, resident bytes for threads.
    pub bytes_each: f64,
    /// This process's resident memory with all units alive: the run's peak.
    pub peak_rss_bytes: f64,
}

/// Chapter 3's comparison of sleeping tokio tasks with sleeping OS threads, made by [`scale`]:
/// how long starting 1, 10, 100, … of them takes and what each one holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskScaling {
    /// How long each unit slept, in ms.
    pub sleep_ms: u64,
    /// One point per count (1, 10, 100, …) for tokio tasks on one runtime thread.
    pub tasks: Vec<ScalePoint>,
    /// One point per count for OS threads (64 KiB stacks); empty when threads were not measured.
    pub threads: Vec<ScalePoint>,
    /// Why the thread series stops where it does.
    pub thread_limit: String,
    /// What other programs and the hypervisor took while it was measured.
    #[serde(default)]
    pub load: Option<virtlab_core::load::Load>,
}

/// Counts 1, 10, 100, … up to `max`.
pub fn decades(max: usize) -> Vec<usize> {
    std::iter::successors(Some(1usize), |n| n.checked_mul(10))
        .take_while(|n| *n <= max)
        .collect()
}

/// The most threads worth starting here: the OS limits and a memory estimate, capped at 10 000.
fn thread_limit() -> (usize, String) {
    let read = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
    };
    let mut limit = (10_000, "virtlab's cap of 10 000 threads".to_string());
    if let Some(max) = read("/proc/sys/kernel/threads-max").map(|m| m / 2)
        && max < limit.0
    {
        limit = (max, "half the kernel's threads-max".into());
    }
    let by_memory =
        (virtlab_core::machine::available_memory() / 2 / THREAD_BYTES_ESTIMATE) as usize;
    if by_memory < limit.0 {
        limit = (by_memory, "half the available memory".into());
    }
    limit
}

/// Starts 1, 10, … `max_tasks` tasks that each sleep `sleep_ms`, and (if `with_threads`) the same
/// with OS threads up to what this machine allows; reports wall time and memory per unit.
pub fn scale(max_tasks: usize, sleep_ms: u64, with_threads: bool) -> Result<TaskScaling> {
    check_range("the number of tasks", max_tasks, 1, MAX_TASKS)?;
    check_range("the sleep (ms)", sleep_ms, 1, 60_000)?;
    check_memory("tasks", max_tasks, TASK_BYTES_ESTIMATE)?;
    let sleep = Duration::from_millis(sleep_ms);
    let sampler = virtlab_core::load::Sampler::start();
    let mut tasks = Vec::new();
    for n in decades(max_tasks) {
        tasks.push(sleeping_tasks(n, sleep)?);
    }
    let (limit, why) = if with_threads {
        thread_limit()
    } else {
        (0, "threads not measured".to_string())
    };
    let mut threads = Vec::new();
    for n in decades(limit.min(max_tasks)) {
        threads.push(sleeping_threads(n, sleep)?);
    }
    let last = decades(limit.min(max_tasks)).last().copied().unwrap_or(0);
    Ok(TaskScaling {
        sleep_ms,
        tasks,
        threads,
        thread_limit: format!("threads stop at {last} ({why})"),
        load: sampler.stop(),
    })
}

/// Resident memory, for threads (their stacks are mapped outside the heap).
fn resident_bytes() -> f64 {
    virtlab_core::memory::resident_bytes().map_or(f64::NAN, |b| b as f64)
}

fn sleeping_tasks(n: usize, sleep: Duration) -> Result<ScalePoint> {
    on_own_runtime(current_thread_runtime, async move || {
        let before = heap_in_use();
        let started = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| tokio::spawn(tokio::time::sleep(sleep)))
            .collect();
        // All are spawned and parked on their timers once the spawner yields.
        tokio::task::yield_now().await;
        let during = heap_in_use();
        let peak_rss_bytes = resident_bytes();
        for h in handles {
            let _ = h.await;
        }
        ScalePoint {
            count: n,
            wall_ms: started.elapsed().as_secs_f64() * 1e3,
            bytes_each: (during - before) / n as f64,
            peak_rss_bytes,
        }
    })
}

fn sleeping_threads(n: usize, sleep: Duration) -> Result<ScalePoint> {
    let before = resident_bytes();
    let started = Instant::now();
    // Each thread waits at the gate until all exist, so the memory is read with all of them alive.
    let gate = std::sync::RwLock::new(());
    let hold = gate.write().unwrap_or_else(|e| e.into_inner());
    let mut during = f64::NAN;
    std::thread::scope(|scope| -> Result<()> {
        let mut refused = None;
        for i in 0..n {
            let gate = &gate;
            let spawned = std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(scope, move || {
                    drop(gate.read());
                    std::thread::sleep(sleep);
                });
            if let Err(e) = spawned {
                refused = Some(Error::os(format!("starting thread {} of {n}", i + 1), e));
                break;
            }
        }
        during = resident_bytes();
        drop(hold);
        refused.map_or(Ok(()), Err)
    })?;
    Ok(ScalePoint {
        count: n,
        wall_ms: started.elapsed().as_secs_f64() * 1e3,
        bytes_each: (during - before) / n as f64,
        peak_rss_bytes: during,
    })
}

impl TaskScaling {
    /// One row per unit kind and count: wall time, memory each, and the process's peak RSS.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Units that each sleep {} ms ({})",
                self.sleep_ms, self.thread_limit
            ),
            [
                "unit",
                "count",
                "wall time",
                "memory each (task: heap in use; thread: resident)",
                "peak RSS of the process",
            ],
        );
        for (name, points) in [("task", &self.tasks), ("thread", &self.threads)] {
            for p in points {
                t.row([
                    name.to_string(),
                    p.count.to_string(),
                    format!("{:.1} ms", p.wall_ms),
                    units::bytes(p.bytes_each.max(0.0) as u64),
                    units::bytes(p.peak_rss_bytes.max(0.0) as u64),
                ]);
            }
        }
        t
    }

    /// What this run showed, computed from its numbers and worded for the result obtained:
    /// each kind's wall time at its smallest and largest count over the sleep, and tasks beside
    /// threads at the largest count both reached, in time and in memory each.
    pub fn what_we_saw(&self) -> Table {
        let mut t = Table::new(
            format!(
                "What this run measured (units that each sleep {} ms)",
                self.sleep_ms
            ),
            ["question", "answer, from the numbers above"],
        );
        let over = |p: &ScalePoint| {
            format!(
                "{} took {:.1} ms ({:.1} ms over the sleep)",
                p.count,
                p.wall_ms,
                p.wall_ms - self.sleep_ms as f64
            )
        };
        let span = |points: &[ScalePoint]| match (points.first(), points.last()) {
            (Some(first), Some(last)) if points.len() > 1 => {
                format!("{}; {}", over(first), over(last))
            }
            (Some(only), _) => over(only),
            _ => format!("not measured: {}", self.thread_limit),
        };
        t.row([
            "How long did sleeping tasks take?".to_string(),
            span(&self.tasks),
        ]);
        t.row(["And sleeping threads?".to_string(), span(&self.threads)]);
        let common =
            self.tasks.iter().rev().find_map(|task| {
                Some((task, self.threads.iter().find(|t| t.count == task.count)?))
            });
        if let Some((task, thread)) = common {
            let ratio = thread.wall_ms / task.wall_ms;
            let time = if ratio >= 1.1 {
                format!("threads took {ratio:.1}× as long as tasks")
            } else if ratio <= 1.0 / 1.1 {
                format!("tasks took {:.1}× as long as threads here", 1.0 / ratio)
            } else {
                "about the same: the sleep itself dominates at this count".to_string()
            };
            t.row([
                format!("At {} of each, in time?", task.count),
                format!(
                    "tasks {:.1} ms, threads {:.1} ms: {time}",
                    task.wall_ms, thread.wall_ms
                ),
            ]);
            let memory = if task.bytes_each > 0.0 && thread.bytes_each > 0.0 {
                let ratio = thread.bytes_each / task.bytes_each;
                if ratio >= 1.0 {
                    format!("a thread held {ratio:.0}× what a task did")
                } else {
                    format!("a task held {:.1}× what a thread did here", 1.0 / ratio)
                }
            } else {
                "one of them read at or below zero (noise at this count): no ratio".to_string()
            };
            let bytes = |b: f64| units::bytes(b.max(0.0) as u64);
            t.row([
                format!("At {} of each, in memory?", task.count),
                format!(
                    "a task {} of heap, a thread {} resident: {memory}",
                    bytes(task.bytes_each),
                    bytes(thread.bytes_each)
                ),
            ]);
        }
        t.row(virtlab_core::load::quiet_row(
            self.load.as_ref(),
            "units wake late and the times over the sleep read high",
        ));
        t
    }

    /// Wall time against units started, for tasks and threads on log axes, beside the sleep itself.
    pub fn plot(&self) -> Result<Figure> {
        let line = |points: &[ScalePoint]| {
            points
                .iter()
                .map(|p| (p.count as f64, p.wall_ms))
                .collect::<Vec<_>>()
        };
        LineChart::new(format!(
            "Starting units that each sleep {} ms",
            self.sleep_ms
        ))
        .x_label("units started together")
        .y_label("wall time until all are done (ms)")
        .log_x()
        .log_y()
        .series("tokio tasks", line(&self.tasks))
        .series("OS threads", line(&self.threads))
        .dashed_series(
            "the sleep itself",
            self.tasks
                .iter()
                .map(|p| (p.count as f64, self.sleep_ms as f64)),
        )
        .render()
        .map_err(Into::into)
    }

    /// Shows [`TaskScaling::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_measures_tasks_and_threads_at_each_decade() {
        let scaling = scale(100, 20, true).unwrap();
        assert!(scale(10, 5, false).unwrap().threads.is_empty());
        assert_eq!(
            scaling.tasks.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 10, 100]
        );
        assert_eq!(
            scaling.threads.iter().map(|p| p.count).collect::<Vec<_>>(),
            vec![1, 10, 100]
        );
        assert!(
            scaling
                .tasks
                .iter()
                .chain(&scaling.threads)
                .all(|p| p.wall_ms >= 20.0)
        );
        assert!(scaling.plot().unwrap().svg().contains("tokio tasks"));
        assert!(scaling.tasks.iter().all(|p| p.peak_rss_bytes > 0.0));
        assert_eq!(decades(5), vec![1]);
        // Two spans, time and memory at a common count, and whether the machine was quiet.
        assert_eq!(scaling.what_we_saw().rows().len(), 5);
    }

    fn point(count: usize, wall_ms: f64, bytes_each: f64) -> ScalePoint {
        ScalePoint {
            count,
            wall_ms,
            bytes_each,
            peak_rss_bytes: 1e7,
        }
    }

    #[test]
    fn what_we_saw_is_worded_for_the_result_obtained() {
        let scaling = TaskScaling {
            sleep_ms: 100,
            tasks: vec![
                point(1, 100.2, 600.0),
                point(10, 100.5, 500.0),
                point(100, 101.0, 400.0),
            ],
            threads: vec![point(1, 100.3, 12_000.0), point(10, 130.0, 8_000.0)],
            thread_limit: "threads stop at 10 (test)".into(),
            load: None,
        };
        let text = scaling.what_we_saw().to_string();
        for fact in [
            "1 took 100.2 ms (0.2 ms over the sleep); 100 took 101.0 ms (1.0 ms over the sleep)",
            "At 10 of each, in time?",
            "tasks 100.5 ms, threads 130.0 ms: threads took 1.3× as long as tasks",
            "a thread held 16× what a task did",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        // The surprising result is reported as it came.
        let surprising = TaskScaling {
            tasks: vec![point(10, 150.0, -50.0)],
            threads: vec![point(10, 110.0, 8_000.0)],
            ..scaling
        };
        let text = surprising.what_we_saw().to_string();
        assert!(
            text.contains("tasks took 1.4× as long as threads here"),
            "{text}"
        );
        assert!(text.contains("no ratio"), "{text}");
        let no_threads = TaskScaling {
            threads: Vec::new(),
            ..surprising
        };
        let text = no_threads.what_we_saw().to_string();
        assert!(
            text.contains("not measured: threads stop at 10 (test)"),
            "{text}"
        );
        assert_eq!(no_threads.what_we_saw().rows().len(), 3);
    }

    #[test]
    fn bad_scale_parameters_are_refused() {
        assert!(scale(0, 10, true).is_err());
        assert!(
            scale(10, 0, true)
                .unwrap_err()
                .problem()
                .contains("sleep (ms) cannot be 0")
        );
    }
}
