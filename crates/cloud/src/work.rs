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
    (0..samples)
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
    fn uniform_values_lie_in_the_half_open_unit_interval() {
        for i in 0..10_000 {
            let u = uniform(3, i);
            assert!(u > 0.0 && u <= 1.0);
        }
    }
}
