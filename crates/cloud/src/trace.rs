//! A seeded request trace: steady, bursty and idle stretches, with Poisson arrivals inside each.
//!
//! The same spec always gives the same arrivals, so every policy is measured on exactly the same
//! requests. Every group of three stretches holds one of each kind, in an order the seed picks,
//! so even a short trace shows a burst and an idle gap.

use crate::error::{Error, ErrorKind, Result};
use crate::work::uniform;
use serde::{Deserialize, Serialize};

/// What a trace looks like.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TraceSpec {
    /// Requests per second in a steady stretch.
    pub rate_per_s: f64,
    /// Length of the whole trace, seconds.
    pub duration_s: f64,
    /// Length of each stretch, seconds.
    pub stretch_s: f64,
    /// A burst's rate as a multiple of the steady rate.
    pub burst_factor: f64,
    pub seed: u64,
}

impl Default for TraceSpec {
    fn default() -> Self {
        TraceSpec {
            rate_per_s: 20.0,
            duration_s: 30.0,
            stretch_s: 5.0,
            burst_factor: 4.0,
            seed: 1,
        }
    }
}

/// The kind of a stretch of the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StretchKind {
    Steady,
    Burst,
    Idle,
}

/// One stretch: `[start_s, end_s)` at `rate_per_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stretch {
    pub start_s: f64,
    pub end_s: f64,
    pub kind: StretchKind,
    pub rate_per_s: f64,
}

/// One request: when it arrives (seconds from the start) and its work's seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Arrival {
    pub at_s: f64,
    pub seed: u64,
}

/// A generated trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub spec: TraceSpec,
    pub stretches: Vec<Stretch>,
    pub arrivals: Vec<Arrival>,
}

fn positive(what: &str, value: f64, fix: &str) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        return Ok(());
    }
    Err(Error::of(
        ErrorKind::Invalid,
        format!("{what} cannot be {value}"),
        fix,
    ))
}

impl TraceSpec {
    /// Refuses a spec that gives no trace.
    pub fn check(&self) -> Result<()> {
        positive(
            "the trace's rate",
            self.rate_per_s,
            "give requests per second above 0 (20 is a fair start)",
        )?;
        positive(
            "the trace's duration",
            self.duration_s,
            "give the trace's length in seconds above 0",
        )?;
        positive(
            "a stretch's length",
            self.stretch_s,
            "give each stretch's length in seconds above 0 (5 is a fair start)",
        )?;
        if !(self.burst_factor.is_finite() && self.burst_factor >= 1.0) {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("the burst factor cannot be {}", self.burst_factor),
                "give a burst's rate as a multiple of the steady rate, 1 or more (4 is a fair start)",
            ));
        }
        Ok(())
    }
}

impl Trace {
    /// The trace `spec` describes; the same spec always gives the same trace.
    pub fn generate(spec: TraceSpec) -> Result<Trace> {
        spec.check()?;
        // Two streams of the one generator: one orders the stretches, one draws the arrivals.
        let order_seed = spec.seed.wrapping_mul(2);
        let arrival_seed = spec.seed.wrapping_mul(2).wrapping_add(1);
        let mut stretches = Vec::new();
        let mut start_s = 0.0;
        let mut index = 0u64;
        while start_s < spec.duration_s {
            let group = index / 3;
            let rotation = (uniform(order_seed, group) * 6.0).ceil() as usize - 1;
            let kind = permutation(rotation)[(index % 3) as usize];
            let rate_per_s = match kind {
                StretchKind::Steady => spec.rate_per_s,
                StretchKind::Burst => spec.rate_per_s * spec.burst_factor,
                StretchKind::Idle => 0.0,
            };
            let end_s = (start_s + spec.stretch_s).min(spec.duration_s);
            stretches.push(Stretch {
                start_s,
                end_s,
                kind,
                rate_per_s,
            });
            start_s = end_s;
            index += 1;
        }
        let mut arrivals = Vec::new();
        let mut draw = 0u64;
        for s in stretches.iter().filter(|s| s.rate_per_s > 0.0) {
            let mut t = s.start_s;
            loop {
                // Exponential gaps: a Poisson process at the stretch's rate.
                t += -uniform(arrival_seed, draw).ln() / s.rate_per_s;
                draw += 1;
                if t >= s.end_s {
                    break;
                }
                arrivals.push(Arrival {
                    at_s: t,
                    seed: crate::work::mix64(arrival_seed ^ draw),
                });
            }
        }
        Ok(Trace {
            spec,
            stretches,
            arrivals,
        })
    }

    /// Requests per second over the whole trace.
    pub fn mean_rate(&self) -> f64 {
        self.arrivals.len() as f64 / self.spec.duration_s
    }
}

/// The `n`-th (0..6) ordering of the three stretch kinds.
fn permutation(n: usize) -> [StretchKind; 3] {
    use StretchKind::{Burst, Idle, Steady};
    [
        [Steady, Burst, Idle],
        [Steady, Idle, Burst],
        [Burst, Steady, Idle],
        [Burst, Idle, Steady],
        [Idle, Steady, Burst],
        [Idle, Burst, Steady],
    ][n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_trace_and_another_seed_another() {
        let a = Trace::generate(TraceSpec::default()).unwrap();
        let b = Trace::generate(TraceSpec::default()).unwrap();
        assert_eq!(a, b);
        let c = Trace::generate(TraceSpec {
            seed: 2,
            ..TraceSpec::default()
        })
        .unwrap();
        assert_ne!(a.arrivals, c.arrivals);
    }

    #[test]
    fn stretches_cover_the_trace_with_every_kind_and_arrivals_follow_them() {
        let spec = TraceSpec {
            rate_per_s: 50.0,
            duration_s: 60.0,
            ..TraceSpec::default()
        };
        let t = Trace::generate(spec).unwrap();
        assert_eq!(t.stretches.len(), 12);
        assert_eq!(t.stretches.last().unwrap().end_s, 60.0);
        for group in t.stretches.chunks(3) {
            for kind in [StretchKind::Steady, StretchKind::Burst, StretchKind::Idle] {
                assert!(group.iter().any(|s| s.kind == kind));
            }
        }
        let within = |kind| {
            let n = t.arrivals.iter().filter(|a| {
                t.stretches
                    .iter()
                    .any(|s| s.kind == kind && a.at_s >= s.start_s && a.at_s < s.end_s)
            });
            n.count() as f64
        };
        assert_eq!(within(StretchKind::Idle), 0.0);
        // 4 steady and 4 burst stretches of 5 s: about 1 000 and 4 000 arrivals.
        assert!((within(StretchKind::Steady) - 1000.0).abs() < 150.0);
        assert!((within(StretchKind::Burst) - 4000.0).abs() < 300.0);
        assert!(t.arrivals.windows(2).all(|w| w[0].at_s <= w[1].at_s));
    }

    #[test]
    fn a_bad_spec_is_refused_with_the_fix() {
        for (spec, word) in [
            (
                TraceSpec {
                    rate_per_s: 0.0,
                    ..TraceSpec::default()
                },
                "rate",
            ),
            (
                TraceSpec {
                    duration_s: -1.0,
                    ..TraceSpec::default()
                },
                "duration",
            ),
            (
                TraceSpec {
                    stretch_s: f64::NAN,
                    ..TraceSpec::default()
                },
                "stretch",
            ),
            (
                TraceSpec {
                    burst_factor: 0.5,
                    ..TraceSpec::default()
                },
                "burst",
            ),
        ] {
            let e = Trace::generate(spec).unwrap_err();
            assert!(e.problem().contains(word) && !e.fix().is_empty(), "{e}");
        }
    }
}
