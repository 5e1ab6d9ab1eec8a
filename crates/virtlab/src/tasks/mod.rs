//! Chapter 3: coroutines. The tokio task as a kind of worker ([`Tasks`]: every unit a task on
//! one current-thread runtime, run by the shared [`executor`]); how many
//! sleeping tasks and OS threads a machine holds ([`scaling`]); the blocking trap that stalls
//! every task when one computes ([`trap`]).
//!
//! ```
//! use virtlab::{executor::Options, tasks, work::Work};
//!
//! let run = tasks::run(&Work::new("task", 2, 10)?, 3, Options::quiet())?;
//! assert_eq!(run.timeline.os_threads().len(), 1); // three tasks, one OS thread
//! # Ok::<(), virtlab::Error>(())
//! ```

mod runtime;
pub mod scaling;
pub mod trap;

pub(crate) use runtime::{current_thread_runtime, multi_thread_runtime, on_own_runtime};
pub use scaling::{TaskScaling, decades, scale};
pub use trap::{BlockingTrap, Setup, blocking_trap};

use runtime::RuntimeThread;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::executor::{self, Kind, Options, Reporter, Run, Status, Stop, Unit, UnitLimit};
use virtlab_core::timeline::thread_id;
use virtlab_core::units;
use virtlab_core::work::Work;

/// A tokio pause: the task yields its thread while it waits. A task is stopped by aborting it.
struct TokioPause;

impl executor::Pause for TokioPause {
    async fn pause(&mut self, d: std::time::Duration) -> bool {
        tokio::time::sleep(d).await;
        true
    }
}

/// The most tasks one run or scale step may start.
pub const MAX_TASKS: usize = 1_000_000_000;
/// A generous upper bound of what one sleeping task holds (its future, header and timer entry),
/// used to refuse counts that cannot fit before allocating anything.
pub const TASK_BYTES_ESTIMATE: u64 = 1024;
/// What one parked OS thread holds at least: its resident stack pages and kernel structures.
pub const THREAD_BYTES_ESTIMATE: u64 = 32 * 1024;

/// The word for an iteration in the essay's demo: One, Two, …
fn word(i: u32) -> String {
    const WORDS: [&str; 10] = [
        "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
    ];
    WORDS
        .get(i as usize)
        .map_or_else(|| (i + 1).to_string(), |w| w.to_string())
}

/// Threads of this process (0 where /proc cannot say): one directory read, not a snapshot of
/// every process on the machine.
fn process_threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, |tasks| tasks.count())
}

/// Tasks as a kind of worker: every unit is a tokio task on one current-thread runtime, which
/// runs on a thread of its own (so it works from any cell). A pause is `.await`ed, handing the
/// thread to the next task. A fault on purpose is a panic inside the task; stopping a task
/// aborts it at its next `.await`.
pub struct Tasks {
    threads_before: usize,
    /// The OS threads the tasks' lines came from, so the summary says what happened.
    line_threads: Arc<Mutex<BTreeSet<u64>>>,
    runtime: Option<RuntimeThread>,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Tasks {
    /// A fresh runtime on its own thread.
    pub fn new() -> Result<Tasks> {
        let threads_before = process_threads();
        Ok(Tasks {
            threads_before,
            line_threads: Arc::default(),
            runtime: Some(RuntimeThread::start()?),
            tasks: Vec::new(),
        })
    }
}

impl Kind for Tasks {
    type Detail = ();

    fn name(&self) -> &'static str {
        "task"
    }

    fn limit(&self) -> UnitLimit {
        let by_memory = virtlab_core::machine::available_memory() / 2 / TASK_BYTES_ESTIMATE;
        UnitLimit {
            units: "tasks",
            most: MAX_TASKS.min(by_memory as usize).max(1),
            why: format!(
                "virtlab's cap of {MAX_TASKS}, and half this machine's free memory at about {} a task",
                units::bytes(TASK_BYTES_ESTIMATE)
            ),
        }
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, _stop: Stop) -> Result<()> {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| Error::bug("tasks started after their runtime was shut down"))?;
        let ender = reporter.clone();
        let line_threads = Arc::clone(&self.line_threads);
        let task = runtime.handle().spawn(async move {
            let name = unit.work.name().to_string();
            executor::drive_async(&unit.work, &reporter, &mut TokioPause, &mut |i| {
                if unit.fault_at == Some(i) {
                    panic!("{name} panicked on purpose at iteration {i}");
                }
                let tid = thread_id();
                if let Ok(mut seen) = line_threads.lock() {
                    seen.insert(tid);
                }
                Ok(Some(format!("{} ({name}, tid {tid})", word(i))))
            })
            .await
        });
        self.tasks.push(task.abort_handle());
        // A second task reports how the first ended, whether it returned, panicked or was aborted.
        runtime.handle().spawn(async move {
            let status = match task.await {
                Ok(status) => status,
                // Aborted by `interrupt`: the executor reports why it stopped the task.
                Err(e) if e.is_cancelled() => Status::Stopped,
                Err(e) => Status::Panicked(
                    e.into_panic()
                        .downcast_ref::<String>()
                        .cloned()
                        .unwrap_or_else(|| "a panic without a message".into()),
                ),
            };
            ender.ended(status);
        });
        Ok(())
    }

    fn interrupt(&mut self, index: usize) {
        if let Some(task) = self.tasks.get(index) {
            task.abort();
        }
    }

    fn finish(&mut self) -> String {
        let threads_during = process_threads();
        let tid = self.runtime.as_ref().map_or(0, RuntimeThread::tid);
        self.runtime = None;
        let seen: Vec<u64> = self
            .line_threads
            .lock()
            .map(|seen| seen.iter().copied().collect())
            .unwrap_or_default();
        let on = match seen.as_slice() {
            [] => format!("one runtime thread (tid {tid}), no line printed"),
            [one] => format!("one OS thread (tid {one})"),
            many => format!(
                "{} OS threads (tids {})",
                many.len(),
                many.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        format!(
            "{} tasks on {on}; threads in this process: {} before, {} while they ran",
            self.tasks.len(),
            self.threads_before,
            threads_during
        )
    }
}

/// Runs `work` as `tasks` tokio tasks named `<work.name()>-1` … on one current-thread runtime.
pub fn run(work: &Work, tasks: usize, options: Options) -> Result<Run> {
    executor::run(&mut Tasks::new()?, work, tasks, options)
}

/// Refuses `count` units of `bytes_each` when they would need more than half the available memory.
pub(crate) fn check_memory(what: &str, count: usize, bytes_each: u64) -> Result<()> {
    let available = virtlab_core::machine::available_memory();
    let needed = count as u64 * bytes_each;
    if needed > available / 2 {
        return Err(Error::invalid(
            &format!("the number of {what}"),
            format!(
                "{count}: they would need about {} (at {} each), more than half of the {} available",
                units::bytes(needed),
                units::bytes(bytes_each),
                units::bytes(available)
            ),
            format!("use at most {} {what}", available / 2 / bytes_each),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use virtlab_core::executor::Cancel;
    use virtlab_core::timeline::EventKind;

    #[test]
    fn tasks_print_in_essay_order_on_one_thread() {
        let work = Work::new("task", 2, 50).unwrap();
        let run = run(&work, 3, Options::quiet()).unwrap();
        let iterations: Vec<(String, EventKind)> = run
            .timeline
            .events
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Iteration(_)))
            .map(|e| (e.lane.clone(), e.kind))
            .collect();
        // One One One Two Two Two: every task's first line comes before any task's second.
        let firsts: Vec<usize> = iterations
            .iter()
            .enumerate()
            .filter(|(_, k)| k.1 == EventKind::Iteration(0))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(firsts, vec![0, 1, 2], "{iterations:?}");
        assert_eq!(
            run.timeline.os_threads().len(),
            1,
            "all tasks on one OS thread"
        );
        assert!(run.succeeded(), "{:?}", run.units);
        assert!(run.summary.starts_with("3 tasks on one OS thread"));
    }

    #[test]
    fn timed_out_cancelled_and_panicked_tasks_are_reported() {
        let work = Work::new("task", 20, 50).unwrap();
        let options = Options {
            deadline: Some(Duration::from_millis(300)),
            cancel: Some(Cancel {
                unit: 1,
                after: Duration::from_millis(100),
            }),
            ..Options::quiet()
        };
        let run = run(&work, 3, options).unwrap();
        assert_eq!(run.units[0].status, Status::Cancelled { after_ms: 100 });
        assert_eq!(run.units[2].status, Status::TimedOut { after_ms: 300 });
        let panicking = run_with_fault();
        assert!(
            matches!(&panicking.units[1].status, Status::Panicked(m) if m.contains("panicked on purpose")),
            "{:?}",
            panicking.units[1]
        );
    }

    fn run_with_fault() -> Run {
        let work = Work::new("task", 3, 20).unwrap();
        run(&work, 2, Options::quiet().with_fault(2, 1)).unwrap()
    }

    #[test]
    fn works_inside_another_tokio_runtime() {
        let outer = tokio::runtime::Builder::new_multi_thread()
            .enable_time()
            .build()
            .unwrap();
        let work = Work::new("task", 1, 1).unwrap();
        let run = outer
            .block_on(async { run(&work, 2, Options::quiet()) })
            .unwrap();
        assert_eq!(run.units.len(), 2);
    }

    #[test]
    fn bad_counts_and_impossible_memory_are_refused() {
        let work = Work::new("task", 1, 1).unwrap();
        assert!(
            run(&work, 0, Options::default())
                .unwrap_err()
                .problem()
                .contains("number of tasks cannot be 0")
        );
        let err = check_memory("tasks", usize::MAX / 2048, TASK_BYTES_ESTIMATE).unwrap_err();
        assert!(err.problem().contains("more than half of the"), "{err}");
    }

    #[test]
    fn words_count_like_the_essay() {
        assert_eq!(word(0), "One");
        assert_eq!(word(1), "Two");
        assert_eq!(word(10), "11");
    }
}
