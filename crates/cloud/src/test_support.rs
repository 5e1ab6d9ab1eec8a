//! What the bill's and break-even's tests share: the shipped price book, and money compared to
//! a relative 1e-9 (the sums are hand-computed; only floating-point rounding may differ).

use crate::prices::PriceBook;

/// The prices shipped in `data/cloud-prices.json`.
pub fn book() -> PriceBook {
    PriceBook::load_shipped().unwrap()
}

/// Asserts `got` equals `want` to a relative 1e-9.
pub fn close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1e-9),
        "got {got}, want {want}"
    );
}
