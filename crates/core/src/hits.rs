//! The lab's one CPU-bound job: a Monte Carlo hit count. Chapter 2 splits it across threads,
//! chapter 5 runs it in every language VM, the busy-machine sampler calibrates with it, and
//! later chapters spread it over ranks and instances: the same arithmetic everywhere, so their
//! answers can be compared exactly.

/// Counts how many of `samples` pseudo-random points fall inside the unit circle (a Monte
/// Carlo estimate of π/4): pure arithmetic, the same cost per sample, no shared memory.
pub fn monte_carlo_hits(seed: u64, samples: u64) -> u64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        // xorshift64*: fast and good enough for a uniform point cloud.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut hits = 0;
    for _ in 0..samples {
        let (x, y) = (next(), next());
        hits += (x * x + y * y <= 1.0) as u64;
    }
    hits
}
