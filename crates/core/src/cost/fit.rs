//! What one more unit costs: a least-squares line through the memory N units hold together,
//! total = fixed + per unit × N, over the counts measured. The slope is the marginal cost of a
//! unit; the intercept is what starting any at all costs (a runtime, a shared library's pages
//! split differently, the first page of a table). Dividing the total by N mixes the two: a
//! thread's 500 KiB "each" at N = 1 is mostly its process's fixed part.

/// A line fitted to (count, total bytes) points, and how far it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Bytes per extra unit: the slope.
    pub per_unit: f64,
    /// Bytes held whatever the count: the intercept (0 when one count cannot separate it).
    pub fixed: f64,
    /// How many distinct counts the line was fitted to.
    pub counts: usize,
    /// The share of the totals' variation the line explains (1 = every point on it); `None`
    /// with fewer than three counts, where a line passes through every point by construction.
    pub r_squared: Option<f64>,
    /// The smallest and largest count.
    pub span: (f64, f64),
}

/// Below this share of variation explained, the per-unit figure is called unreliable.
pub const POOR_FIT: f64 = 0.9;

impl Fit {
    /// The least-squares line through `points` (count, total bytes); `None` without a point.
    /// With a single count the slope is total ÷ count and the fixed part is not separated.
    pub fn of(points: &[(f64, f64)]) -> Option<Fit> {
        let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let (&lo, &hi) = (xs.first()?, xs.last()?);
        let n = points.len() as f64;
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        if xs.len() == 1 {
            return Some(Fit {
                per_unit: mean_y / mean_x,
                fixed: 0.0,
                counts: 1,
                r_squared: None,
                span: (lo, hi),
            });
        }
        let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
        let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
        let per_unit = sxy / sxx;
        let fixed = mean_y - per_unit * mean_x;
        let syy: f64 = points.iter().map(|p| (p.1 - mean_y).powi(2)).sum();
        let residual: f64 = points
            .iter()
            .map(|p| (p.1 - fixed - per_unit * p.0).powi(2))
            .sum();
        // Totals that do not vary at all are fitted exactly by a flat line.
        let r_squared = if syy > 0.0 { 1.0 - residual / syy } else { 1.0 };
        Some(Fit {
            per_unit,
            fixed,
            counts: xs.len(),
            r_squared: (xs.len() >= 3).then_some(r_squared),
            span: (lo, hi),
        })
    }

    /// Whether the line rises by at least `resolution` bytes across the counts measured: below
    /// that, the per-unit figure is within the reading's granularity (whole pages) and noise.
    pub fn resolved(&self, resolution: f64) -> bool {
        self.per_unit * self.reach() >= resolution
    }

    /// The largest per-unit cost the counts measured could hide below `resolution`.
    pub fn bound(&self, resolution: f64) -> f64 {
        resolution / self.reach()
    }

    /// The units the slope is measured across: from the smallest count to the largest, or the
    /// one count's units from none.
    fn reach(&self) -> f64 {
        if self.counts == 1 {
            self.span.1
        } else {
            self.span.1 - self.span.0
        }
    }

    /// Whether the per-unit figure is a fitted slope checked against a third count or more,
    /// with the line explaining at least [`POOR_FIT`] of the variation.
    pub fn trusted(&self) -> bool {
        self.r_squared.is_some_and(|r2| r2 >= POOR_FIT)
    }

    /// How the line was found and how well it fits, in words: "R² = 0.998 over 7 counts",
    /// "poor fit (R² = 0.41): …", "one count: total ÷ N, fixed part not separated".
    pub fn verdict(&self) -> String {
        match (self.counts, self.r_squared) {
            (1, _) => format!(
                "one count (N = {}): total ÷ N, the fixed part not separated",
                self.span.0
            ),
            (_, None) => "two counts: a line through both, unchecked by a third".into(),
            (n, Some(r2)) if r2 < POOR_FIT => {
                format!(
                    "poor fit (R² = {r2:.2} over {n} counts): the per-unit figure is unreliable"
                )
            }
            (n, Some(r2)) => format!("R² = {r2:.3} over {n} counts"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straight_line_is_recovered_exactly() {
        // 500 KiB fixed + 12 KiB per unit, at the counts chapter 1 measures.
        let points: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
            .iter()
            .map(|&n| (n, 512_000.0 + 12_288.0 * n))
            .collect();
        let fit = Fit::of(&points).unwrap();
        assert!((fit.per_unit - 12_288.0).abs() < 1e-6, "{fit:?}");
        assert!((fit.fixed - 512_000.0).abs() < 1e-3, "{fit:?}");
        assert_eq!(fit.counts, 7);
        assert!((fit.r_squared.unwrap() - 1.0).abs() < 1e-12);
        assert!(fit.trusted());
        assert_eq!(fit.verdict(), "R² = 1.000 over 7 counts");
    }

    #[test]
    fn noise_lowers_r_squared_and_a_scatter_is_called_poor() {
        // The textbook example: y = 1 + 0.8x + noise, R² known to be 0.8.
        let points = [(1.0, 2.0), (2.0, 2.0), (3.0, 4.0), (4.0, 4.0)];
        let fit = Fit::of(&points).unwrap();
        assert!((fit.per_unit - 0.8).abs() < 1e-12, "{fit:?}");
        assert!((fit.fixed - 1.0).abs() < 1e-12, "{fit:?}");
        assert!((fit.r_squared.unwrap() - 0.8).abs() < 1e-12, "{fit:?}");
        assert!(!fit.trusted());
        assert!(
            fit.verdict().starts_with("poor fit (R² = 0.80"),
            "{}",
            fit.verdict()
        );
    }

    #[test]
    fn fewer_than_three_counts_are_named_as_such() {
        let one = Fit::of(&[(16.0, 1600.0), (16.0, 1700.0)]).unwrap();
        assert_eq!((one.counts, one.fixed, one.per_unit), (1, 0.0, 103.125));
        assert!(one.verdict().starts_with("one count (N = 16)"));
        assert!(!one.trusted());
        let two = Fit::of(&[(1.0, 10.0), (4.0, 40.0)]).unwrap();
        assert_eq!((two.counts, two.r_squared), (2, None));
        assert!((two.per_unit - 10.0).abs() < 1e-12);
        assert!(two.verdict().starts_with("two counts"));
        assert!(Fit::of(&[]).is_none());
    }

    #[test]
    fn a_rise_of_less_than_the_resolution_is_not_resolved() {
        // A kernel share that is one page at 1 000 tasks and nothing below.
        let points = [(1.0, 0.0), (16.0, 0.0), (64.0, 0.0), (1000.0, 4096.0)];
        let fit = Fit::of(&points).unwrap();
        assert!(!fit.resolved(2.0 * 4096.0), "{fit:?}");
        assert!((fit.bound(2.0 * 4096.0) - 8192.0 / 999.0).abs() < 1e-9);
        let thread = Fit::of(&[(1.0, 20_480.0), (4.0, 69_632.0), (16.0, 266_240.0)]).unwrap();
        assert!(thread.resolved(2.0 * 4096.0), "{thread:?}");
    }
}
