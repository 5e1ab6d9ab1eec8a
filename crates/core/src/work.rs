//! The one workload every kind of worker runs (process, thread, task, container, VM, …): a named
//! loop of iterations, each optionally burning CPU, separated by a pause. [`Work::steps`] is that
//! loop written once; the executors drive it.

use crate::error::check_range;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The most iterations one [`Work`] may ask for (a million): more is almost certainly a typo.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// One hour: longer pauses are almost certainly a unit mistake.
pub const MAX_MS: u64 = 3_600_000;
/// How often a pause looks up from its sleep (to notice that it should stop).
const PAUSE_SLICE: Duration = Duration::from_millis(50);

/// What each worker does: `iterations` times, burn `burn` of CPU, then pause `interval`.
///
/// Its fields are private, so every `Work` passed [`Work::new`]'s checks — one read from JSON
/// too (it is checked the same way on the way in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WorkData", into = "WorkData")]
pub struct Work {
    name: String,
    iterations: u32,
    interval: Duration,
    burn: Duration,
}

/// A [`Work`] as JSON holds it, before its checks.
#[derive(Serialize, Deserialize)]
struct WorkData {
    name: String,
    iterations: u32,
    interval_ms: u64,
    burn_ms: u64,
}

impl TryFrom<WorkData> for Work {
    type Error = Error;

    fn try_from(data: WorkData) -> Result<Work> {
        Work::new(&data.name, data.iterations, data.interval_ms)?.burning(data.burn_ms)
    }
}

impl From<Work> for WorkData {
    fn from(work: Work) -> WorkData {
        WorkData {
            interval_ms: work.interval.as_millis() as u64,
            burn_ms: work.burn.as_millis() as u64,
            name: work.name,
            iterations: work.iterations,
        }
    }
}

impl Work {
    /// The worker's name, e.g. `worker`; a run gives each unit its own, `worker-1`, `worker-2`, …
    /// (1 to 64 printable characters).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How many times the loop runs (1 to [`MAX_ITERATIONS`]).
    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// The pause between two iterations (none after the last); 1 ms to [`MAX_MS`].
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// CPU time burnt in each iteration before its pause; zero for work that only waits.
    pub fn burn(&self) -> Duration {
        self.burn
    }

    /// A loop of `iterations` separated by `interval_ms` pauses, burning no CPU.
    pub fn new(name: &str, iterations: u32, interval_ms: u64) -> Result<Work> {
        check_name(name)?;
        check_range("iterations", iterations, 1, MAX_ITERATIONS)?;
        check_range("the interval (ms)", interval_ms, 1, MAX_MS)?;
        Ok(Work {
            name: name.into(),
            iterations,
            interval: Duration::from_millis(interval_ms),
            burn: Duration::ZERO,
        })
    }

    /// The same loop, burning `burn_ms` of CPU in each iteration before its pause.
    pub fn burning(self, burn_ms: u64) -> Result<Work> {
        check_range("the CPU burn per iteration (ms)", burn_ms, 0, MAX_MS)?;
        Ok(Work {
            burn: Duration::from_millis(burn_ms),
            ..self
        })
    }

    /// This work under another name, e.g. `worker-2`.
    pub fn named(&self, name: &str) -> Result<Work> {
        check_name(name)?;
        Ok(Work {
            name: name.into(),
            ..self.clone()
        })
    }

    /// How long one run takes at least.
    pub fn duration(&self) -> Duration {
        self.burn * self.iterations + self.interval * (self.iterations - 1)
    }

    /// The loop as steps, in order: Start, then per iteration `Iteration(i)`, `Burn` (when
    /// the work burns CPU) and `Pause` (between iterations), then End. Every executor drives these
    /// same steps (see [`crate::executor::drive`]); only how a pause waits differs.
    pub fn steps(&self) -> impl Iterator<Item = Step> + '_ {
        let iterations = (0..self.iterations).flat_map(move |i| {
            let burn = (!self.burn.is_zero()).then_some(Step::Burn(self.burn));
            let pause = (i + 1 < self.iterations).then_some(Step::Pause(self.interval));
            std::iter::once(Step::Iteration(i)).chain(burn).chain(pause)
        });
        std::iter::once(Step::Start)
            .chain(iterations)
            .chain(std::iter::once(Step::End))
    }
}

/// One step of a [`Work`] loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The unit begins.
    Start,
    /// Iteration `i` (0-based): the essay's line.
    Iteration(u32),
    /// Keep one CPU busy this long.
    Burn(Duration),
    /// Wait this long before the next iteration.
    Pause(Duration),
    /// The unit ran to the end.
    End,
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) || name.chars().count() > 64 {
        return Err(Error::invalid(
            "a worker name",
            format!("{name:?}"),
            "use 1 to 64 printable characters, e.g. \"worker\"",
        ));
    }
    Ok(())
}

/// Keeps one CPU busy for `d` (the kind of work that cannot overlap with more of itself on one core).
pub fn burn(d: Duration) {
    let until = Instant::now() + d;
    let mut x = 1.0f64;
    while Instant::now() < until {
        for _ in 0..1000 {
            x = std::hint::black_box(x * 1.000_000_1 + 1e-9);
        }
    }
    std::hint::black_box(x);
}

/// Sleeps for `d` in short slices, stopping early (returning false) once `keep_going` says no.
pub(crate) fn pause(d: Duration, keep_going: &impl Fn() -> bool) -> bool {
    let until = Instant::now() + d;
    loop {
        if !keep_going() {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(PAUSE_SLICE));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_parameters_are_named_in_the_error() {
        assert!(
            Work::new("w", 0, 10)
                .unwrap_err()
                .problem()
                .contains("iterations cannot be 0")
        );
        assert!(
            Work::new("w", 1, 0)
                .unwrap_err()
                .problem()
                .contains("interval (ms) cannot be 0")
        );
        assert!(Work::new("w", 1, MAX_MS + 1).is_err());
        assert!(
            Work::new("", 1, 1)
                .unwrap_err()
                .problem()
                .contains("worker name")
        );
        assert!(Work::new("a\nb", 1, 1).is_err());
        assert!(Work::new("w", 1, 1).unwrap().burning(MAX_MS + 1).is_err());
    }

    #[test]
    fn steps_are_start_iterations_with_burns_and_pauses_between_then_end() {
        let work = Work::new("w", 3, 5).unwrap().burning(2).unwrap();
        let pause = Step::Pause(Duration::from_millis(5));
        let burn = Step::Burn(Duration::from_millis(2));
        assert_eq!(
            work.steps().collect::<Vec<_>>(),
            vec![
                Step::Start,
                Step::Iteration(0),
                burn,
                pause,
                Step::Iteration(1),
                burn,
                pause,
                Step::Iteration(2),
                burn,
                Step::End
            ]
        );
        let idle = Work::new("w", 1, 5).unwrap();
        assert_eq!(
            idle.steps().collect::<Vec<_>>(),
            vec![Step::Start, Step::Iteration(0), Step::End]
        );
    }

    #[test]
    fn a_pause_told_to_stop_ends_at_once() {
        assert!(!pause(Duration::from_secs(3600), &|| false));
        assert!(pause(Duration::from_millis(1), &|| true));
    }

    #[test]
    fn duration_counts_pauses_between_iterations_only() {
        let work = Work::new("w", 3, 100).unwrap().burning(10).unwrap();
        assert_eq!(work.duration(), Duration::from_millis(230));
    }
}
