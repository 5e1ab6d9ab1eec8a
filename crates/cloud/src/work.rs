//! The unit of CPU work every instance does per request: a Monte Carlo hit count (points of the
//! unit square inside the quarter circle) drawn from a counter-based generator.
//!
//! Counter-based means sample `i` of seed `s` is a pure function of `(s, i)`, so any instance
//! gives the same answer for the same request, and the front can check every answer.

/// SplitMix64's finaliser: a well-mixed 64-bit value from any 64-bit input.
pub fn mix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `i`-th value of stream `seed`, in (0, 1].
pub fn uniform(seed: u64, i: u64) -> f64 {
    let bits = mix64(seed ^ mix64(i)) >> 11;
    (bits + 1) as f64 / (1u64 << 53) as f64
}

/// How many of `samples` points of stream `seed` fall inside the quarter circle.
pub fn monte_carlo_hits(samples: u64, seed: u64) -> u64 {
    hits_in(0..samples, seed)
}

/// The same count on `threads` threads, each taking a slice of the points: the same answer,
/// as point `i` is the same wherever it is drawn (an instance sold several vCPUs uses them).
pub fn monte_carlo_hits_on(samples: u64, seed: u64, threads: usize) -> u64 {
    let threads = threads.max(1) as u64;
    if threads == 1 {
        return monte_carlo_hits(samples, seed);
    }
    let slice = samples.div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * slice).min(samples)..((t + 1) * slice).min(samples);
                scope.spawn(move || hits_in(range, seed))
            })
            .collect();
        parts
            .into_iter()
            .map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .sum()
    })
}

/// The points of `range` of stream `seed` that fall inside the quarter circle.
fn hits_in(range: std::ops::Range<u64>, seed: u64) -> u64 {
    range
        .filter(|i| {
            let v = mix64(seed ^ mix64(*i));
            // Two 32-bit coordinates from one draw, compared exactly in integers.
            let x = (v >> 32) as u128;
            let y = (v & 0xFFFF_FFFF) as u128;
            x * x + y * y < 1u128 << 64
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hit_count_estimates_pi_and_repeats_exactly() {
        let hits = monte_carlo_hits(200_000, 7);
        let pi = 4.0 * hits as f64 / 200_000.0;
        assert!((pi - std::f64::consts::PI).abs() < 0.02, "{pi}");
        assert_eq!(hits, monte_carlo_hits(200_000, 7));
        assert_ne!(hits, monte_carlo_hits(200_000, 8));
    }

    #[test]
    fn the_count_on_several_threads_is_the_same_count() {
        for samples in [0, 1, 7, 100_001] {
            let one = monte_carlo_hits(samples, 11);
            for threads in [1, 2, 3, 8] {
                assert_eq!(
                    monte_carlo_hits_on(samples, 11, threads),
                    one,
                    "{samples} on {threads}"
                );
            }
        }
    }

    #[test]
    fn uniform_values_lie_in_the_half_open_unit_interval() {
        for i in 0..10_000 {
            let u = uniform(3, i);
            assert!(u > 0.0 && u <= 1.0);
        }
    }
}
