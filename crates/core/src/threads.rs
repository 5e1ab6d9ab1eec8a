//! The thread as a kind of worker ([`Threads`], run by the shared [`executor`]):
//! each unit an OS thread of this process. Chapter 2 (the facade's `threads`) adds CPU-bound
//! scaling and the price of sharing a counter.
//!
//! ```
//! use virtlab_core::{executor::Options, threads, work::Work};
//!
//! let run = threads::run(&Work::new("thread", 2, 10)?, 3, Options::quiet())?;
//! assert_eq!(run.timeline.pids(), vec![std::process::id()]); // one process, three threads
//! # Ok::<(), virtlab_core::Error>(())
//! ```

use crate::error::check_range;
use crate::executor::{
    self, Kind, Options, Reporter, Run, Status, Stop, Unit, UnitLimit, UnitThreads,
};
use crate::timeline::thread_id;
use crate::work::Work;
use crate::{Error, Result, strict};
use std::sync::Mutex;
use std::time::Instant;

/// The most threads one run starts.
pub const MAX_THREADS: usize = 10_000;

/// Refuses thread counts outside 1..=MAX_THREADS before anything starts.
pub fn check_thread_count(threads: usize) -> Result<usize> {
    check_range("the number of threads", threads, 1, MAX_THREADS)
}

/// The most units of a kind that runs each on a thread of this process (threads, wasm
/// instances, VMs' vCPUs), called `units` in an error.
pub fn thread_limit(units: &'static str) -> UnitLimit {
    UnitLimit {
        units,
        most: MAX_THREADS,
        why: "virtlab's cap on threads in one process".into(),
    }
}

/// The name of this process, as `ps` shows it.
pub fn process_name() -> String {
    std::fs::read_to_string("/proc/self/comm")
        .map(|s| s.trim().to_string())
        .ok()
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| "this process".into())
}

/// Threads as a kind of worker: each unit runs the work on an OS thread of this process,
/// named after the unit (so `top -H` and the process explorer show it). A fault on purpose is
/// a panic, caught and reported as the unit's status.
pub struct Threads {
    process: String,
    caller_tid: u64,
    threads: UnitThreads,
}

impl Threads {
    /// Threads started from the calling thread.
    pub fn new() -> Threads {
        Threads {
            process: process_name(),
            caller_tid: thread_id(),
            threads: UnitThreads::default(),
        }
    }
}

impl Default for Threads {
    fn default() -> Self {
        Threads::new()
    }
}

impl Kind for Threads {
    type Detail = ();

    fn name(&self) -> &'static str {
        "thread"
    }

    fn limit(&self) -> UnitLimit {
        thread_limit("threads")
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        let process = self.process.clone();
        self.threads.spawn(unit, "thread", move |unit| {
            let (tid, pid) = (thread_id(), std::process::id());
            let name = unit.work.name().to_string();
            let status = strict::supervise(|| {
                executor::drive(&unit.work, &reporter, || !stop.is_set(), &mut |i| {
                    if unit.fault_at == Some(i) {
                        panic!("{name} panicked on purpose at iteration {i}");
                    }
                    Ok(Some(format!(
                        "{i}: {name} (tid {tid}) in {process} pid {pid}"
                    )))
                })
            })
            .unwrap_or_else(Status::Panicked);
            reporter.ended(status);
        })
    }

    fn finish(&mut self) -> String {
        let threads = self.threads.join_all();
        format!(
            "{threads} threads in one process ({} pid {}), started from thread {}",
            self.process,
            std::process::id(),
            self.caller_tid
        )
    }
}

/// Runs `work` on `threads` OS threads named `<work.name()>-1` … in this process.
pub fn run(work: &Work, threads: usize, options: Options) -> Result<Run> {
    executor::run(&mut Threads::new(), work, threads, options)
}

/// Spawn+join cost per thread, one value per round (µs): `n` threads that each record the
/// essay's line ("0: thread-1 pid 4242"), started and joined, as the Python peer does.
pub fn spawn_join_cost(n: usize, repeats: usize) -> Result<Vec<f64>> {
    check_thread_count(n)?;
    check_range("repeats", repeats, 1, 1000)?;
    let pid = std::process::id();
    let mut rounds = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let lines = Mutex::new(Vec::with_capacity(n));
        let started = Instant::now();
        std::thread::scope(|scope| -> Result<()> {
            for i in 0..n {
                let lines = &lines;
                let name = format!("thread-{}", i + 1);
                std::thread::Builder::new()
                    .name(name.clone())
                    .spawn_scoped(scope, move || {
                        lines
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("0: {name} pid {pid}"))
                    })
                    .map_err(|e| Error::os(format!("starting thread {} of {n}", i + 1), e))?;
            }
            Ok(())
        })?;
        rounds.push(started.elapsed().as_secs_f64() * 1e6 / n as f64);
        debug_assert_eq!(lines.into_inner().map(|l| l.len()).unwrap_or(0), n);
    }
    Ok(rounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::Status;

    #[test]
    fn threads_run_in_this_process_each_on_its_own_os_thread() {
        // Long enough that every thread is still alive when the snapshot is read, even on a
        // machine whose other programs delay the snapshot's thread (20 ms was not, under load).
        let work = Work::new("thread", 2, 300).unwrap();
        let options = Options {
            echo: false,
            ..Options::default()
        };
        let run = run(&work, 3, options).unwrap();
        assert!(run.succeeded());
        assert_eq!(run.kind, "thread");
        assert_eq!(run.timeline.pids(), vec![std::process::id()]);
        let tids: Vec<u64> = run.units.iter().filter_map(|u| u.tid).collect();
        assert_eq!(tids.len(), 3);
        assert!(!tids.contains(&thread_id()));
        assert_eq!(
            run.timeline.lanes(),
            vec!["thread-1", "thread-2", "thread-3"]
        );
        if cfg!(target_os = "linux") {
            let me = run.tree().unwrap();
            let names: Vec<&str> = me.processes[0]
                .threads
                .iter()
                .map(|t| t.name.as_str())
                .collect();
            for lane in ["thread-1", "thread-2", "thread-3"] {
                assert!(names.contains(&lane), "{lane} missing from {names:?}");
            }
        }
    }

    #[test]
    fn a_panicking_thread_is_reported_and_the_others_stop_early() {
        let work = Work::new("thread", 50, 50).unwrap();
        let run = run(&work, 3, Options::quiet().with_fault(2, 1)).unwrap();
        let statuses: Vec<&Status> = run.units.iter().map(|u| &u.status).collect();
        assert!(
            matches!(statuses[1], Status::Panicked(m) if m.contains("thread-2 panicked on purpose at iteration 1")),
            "{statuses:?}"
        );
        for other in [statuses[0], statuses[2]] {
            assert_eq!(
                other,
                &Status::StoppedBecause {
                    unit: "thread-2".into(),
                    failure: crate::executor::Failure::Panicked
                }
            );
        }
        // The others stopped at their next pause instead of running 50 iterations.
        let iterations = run.timeline.iterations();
        assert!(iterations < 3 * 10, "{iterations} iterations ran");
        let err = run.check().unwrap_err();
        assert!(
            err.problem().starts_with("thread thread-2 panicked: "),
            "{err}"
        );
    }

    #[test]
    fn bad_thread_counts_are_refused() {
        let work = Work::new("t", 1, 1).unwrap();
        assert!(
            run(&work, 0, Options::default())
                .unwrap_err()
                .problem()
                .contains("number of threads cannot be 0")
        );
        assert!(run(&work, MAX_THREADS + 1, Options::default()).is_err());
        assert!(spawn_join_cost(0, 1).is_err());
    }

    #[test]
    fn spawn_join_cost_reports_one_value_per_round() {
        let rounds = spawn_join_cost(4, 3).unwrap();
        assert_eq!(rounds.len(), 3);
        assert!(rounds.iter().all(|us| *us > 0.0 && us.is_finite()));
    }
}
