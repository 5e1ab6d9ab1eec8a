//! The one workload every executor runs (processes, threads, tasks): a named loop of iterations,
//! each optionally burning CPU, separated by a pause. Running it records timeline events.

use crate::error::check_range;
use crate::timeline::{Event, EventKind};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

pub const MAX_ITERATIONS: u32 = 1_000_000;
/// One hour: longer pauses are almost certainly a unit mistake.
pub const MAX_MS: u64 = 3_600_000;
/// How often a pause looks up from its sleep (to notice that it should stop).
const PAUSE_SLICE: Duration = Duration::from_millis(50);

/// What each worker does: `iterations` times, burn `burn` of CPU, then pause `interval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Work {
    pub name: String,
    pub iterations: u32,
    pub interval: Duration,
    pub burn: Duration,
}

impl Work {
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

    /// Runs the loop on the calling thread. `on_event` sees Start, each Iteration and End;
    /// `keep_going` is asked between slices of every pause, and a `false` ends the loop early.
    /// Returns whether the loop ran to the end.
    pub fn run(&self, mut on_event: impl FnMut(&Event), keep_going: impl Fn() -> bool) -> bool {
        on_event(&Event::now(&self.name, EventKind::Start));
        for i in 0..self.iterations {
            on_event(&Event::now(&self.name, EventKind::Iteration(i)));
            burn(self.burn);
            if i + 1 < self.iterations && !pause(self.interval, &keep_going) {
                return false;
            }
        }
        on_event(&Event::now(&self.name, EventKind::End));
        true
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 64 {
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
fn pause(d: Duration, keep_going: &impl Fn() -> bool) -> bool {
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
    fn run_emits_start_each_iteration_and_end_in_order() {
        let work = Work::new("w", 3, 1).unwrap();
        let mut kinds = Vec::new();
        assert!(work.run(|e| kinds.push(e.kind), || true));
        assert_eq!(
            kinds,
            vec![
                EventKind::Start,
                EventKind::Iteration(0),
                EventKind::Iteration(1),
                EventKind::Iteration(2),
                EventKind::End
            ]
        );
    }

    #[test]
    fn run_stops_when_told_and_says_so() {
        let work = Work::new("w", 5, 1000).unwrap();
        let started = Instant::now();
        let mut iterations = 0;
        let finished = work.run(
            |e| iterations += matches!(e.kind, EventKind::Iteration(_)) as u32,
            || false,
        );
        assert!(!finished);
        assert_eq!(iterations, 1);
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "stopping should not wait out the pause"
        );
    }

    #[test]
    fn duration_counts_pauses_between_iterations_only() {
        let work = Work::new("w", 3, 100).unwrap().burning(10).unwrap();
        assert_eq!(work.duration(), Duration::from_millis(230));
    }
}
