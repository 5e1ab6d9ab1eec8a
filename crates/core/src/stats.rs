//! Small statistics the measurements share: the median of repeated runs, and the ratio below
//! which two measurements read as about the same.

/// Two measurements at least this many times apart read as "slower"/"faster" (or "lower");
/// below it, as about the same: on a shared 2-vCPU machine, run-to-run noise alone moves
/// short timings by tens of percent.
pub const CLEAR_RATIO: f64 = 1.5;

/// The median of `values` (NaN when empty); sorts in place.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }
}
