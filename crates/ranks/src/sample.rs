//! The hit count's points: sample `i` of seed `s` is the point (x, y) made from splitmix64 of
//! `s + 2i` and `s + 2i + 1`, so any rank can make any sample by its index alone, and splitting
//! the samples over 1, 3 or 6 ranks gives exactly the same total.

/// splitmix64's output for `state` (Steele, Lea and Flood, "Fast splittable pseudorandom
/// number generators", OOPSLA 2014; the constants of Vigna's reference code).
pub fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in [0, 1) from the top 53 bits.
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// How many samples in `range` fall in the unit quarter circle.
pub fn hits(seed: u64, range: std::ops::Range<u64>) -> u64 {
    range
        .filter(|&i| {
            let x = unit(splitmix64(seed.wrapping_add(2 * i)));
            let y = unit(splitmix64(seed.wrapping_add(2 * i + 1)));
            x * x + y * y <= 1.0
        })
        .count() as u64
}

/// Rank `rank` of `size`'s share of `samples`: contiguous, all shares together exactly once.
pub fn share(samples: u64, rank: u64, size: u64) -> std::ops::Range<u64> {
    let at = |r: u64| (samples as u128 * r as u128 / size as u128) as u64;
    at(rank)..at(rank + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split_gives_the_same_hits() {
        let whole = hits(42, 0..30_000);
        for size in [1, 3, 6, 7] {
            let split: u64 = (0..size).map(|r| hits(42, share(30_000, r, size))).sum();
            assert_eq!(split, whole, "{size} ranks");
        }
        let pi = 4.0 * whole as f64 / 30_000.0;
        assert!((pi - std::f64::consts::PI).abs() < 0.05, "{pi}");
        // Vigna's splitmix64.c with seed 0 gives this first output.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
