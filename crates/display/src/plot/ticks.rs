//! Where an axis puts its labelled ticks: at values that match the data (a log axis over sizes
//! 256 to 2048 is labelled at those sizes, not at 500, 1000 and 2000), and never more labels
//! than fit beside each other, so long labels such as 50000 and 100000 never overlap.
//!
//! plotters picks ticks by their count alone and cannot know how wide a label is; here each
//! label's width is estimated from its characters and the ticks are thinned until every pair
//! of neighbours is clear.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// Pixels one character of a label takes at most at its font size (DejaVu Sans at 13 px: a
/// digit is 0.64 em, 8.3 px).
const CHAR_PX: f64 = 8.5;
/// Pixels a label takes along a vertical axis: its line's height.
const LINE_PX: f64 = 15.0;
/// The least clear space between two neighbouring labels.
const GAP_PX: f64 = 8.0;
/// The most ticks an axis gets, however much room it has.
const MOST: usize = 12;

/// The width of `text` drawn at the labels' font size, in pixels, estimated generously.
pub(super) fn text_px(text: &str) -> f64 {
    text.chars().count() as f64 * CHAR_PX
}

/// Ticks to label, and lighter lines between them for the mesh.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Ticks {
    pub labelled: Vec<f64>,
    pub light: Vec<f64>,
}

/// A plotters axis (linear or log) that draws exactly these ticks, its labels written by the
/// chart's own formatter.
#[derive(Clone)]
pub(super) struct Ticked<R> {
    inner: R,
    ticks: Ticks,
}

impl<R: Ranged<ValueType = f64>> Ticked<R> {
    pub fn new(inner: R, ticks: Ticks) -> Self {
        Ticked { inner, ticks }
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticked<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.ticks.light.clone()
        } else {
            self.ticks.labelled.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// An axis as its ticks see it.
pub(super) struct Axis<'a> {
    /// From its start to its end, in the values shown (on a log axis the values, not their logs).
    pub range: Range<f64>,
    /// Logarithmic: equal steps are equal factors.
    pub log: bool,
    /// Its length on the chart, in pixels.
    pub pixels: f64,
    /// Labels sit side by side (an x axis) or one above another (a y axis).
    pub horizontal: bool,
    /// The text of the label at a value.
    pub label: &'a dyn Fn(f64) -> String,
}

impl Axis<'_> {
    /// Where `value` lies along the axis, in pixels from its start.
    fn position(&self, value: f64) -> f64 {
        let Range { start, end } = self.range;
        let share = if self.log {
            (value / start).ln() / (end / start).ln()
        } else {
            (value - start) / (end - start)
        };
        share * self.pixels
    }

    /// Whether labels at `ticks` (in order) keep clear of each other, and are few enough.
    fn fits(&self, ticks: &[f64]) -> bool {
        let extent = |v: f64| {
            if self.horizontal {
                text_px(&(self.label)(v))
            } else {
                LINE_PX
            }
        };
        ticks.len() <= MOST
            && ticks.windows(2).all(|pair| {
                let apart = (self.position(pair[1]) - self.position(pair[0])).abs();
                apart >= (extent(pair[0]) + extent(pair[1])) / 2.0 + GAP_PX
            })
    }

    /// Ticks at the multiples of 1, 2 or 5 × 10ᵏ: the finest step whose labels fit, with lighter
    /// lines between them. `whole` keeps every tick a whole number (counts, or decades when the
    /// values are logs).
    pub fn linear(&self, whole: bool) -> Ticks {
        let Range { start, end } = self.range;
        let span = end - start;
        if !(span > 0.0 && span.is_finite()) {
            return Ticks {
                labelled: vec![start],
                light: Vec::new(),
            };
        }
        // Multiples of mantissa × 10^power, each computed as a literal would be (0.3, not
        // 3 × 0.1 = 0.30000000000000004).
        let at = |mantissa: f64, power: i32| -> Vec<f64> {
            let step = scaled(mantissa, power);
            let first = (start / step).ceil() as i64;
            let last = (end / step).floor() as i64;
            (first..=last)
                .map(|i| scaled(i as f64 * mantissa, power))
                .collect()
        };
        let mut fallback = None;
        let smallest = span.log10().floor() as i32 - 2;
        for power in smallest..smallest + 6 {
            // Each step with the finer one its lighter lines fall on.
            for (mantissa, fine) in [(1.0, 2.0), (2.0, 5.0), (5.0, 10.0)] {
                if whole && scaled(mantissa, power) < 1.0 {
                    continue;
                }
                let labelled = at(mantissa, power);
                if labelled.is_empty() {
                    continue;
                }
                let light = || {
                    let half = scaled(fine, power - 1) / 2.0;
                    at(fine, power - 1)
                        .into_iter()
                        .filter(|v| !labelled.iter().any(|t| (t - v).abs() < half))
                        .collect()
                };
                if self.fits(&labelled) {
                    let light = light();
                    return Ticks { labelled, light };
                }
                fallback = Some(Ticks {
                    light: Vec::new(),
                    labelled: vec![labelled[0]],
                });
            }
        }
        fallback.unwrap_or(Ticks {
            labelled: vec![start],
            light: Vec::new(),
        })
    }

    /// Ticks on a log axis: at the data's own values when they are a few round ones that fit
    /// (sizes 256 to 2048, counts 1, 10, …, 100000), else at every second or third of them, else
    /// at 1-2-5 × 10ᵏ (every digit in a range too narrow for three of those), thinned to 1-3,
    /// whole decades and then every other decade until they fit.
    /// The lighter lines fall on every digit × 10ᵏ between the labels.
    pub fn log(&self, data: &[f64]) -> Ticks {
        let Range { start, end } = self.range;
        let light = |labelled: &[f64]| -> Vec<f64> {
            self.decades(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 1)
                .into_iter()
                .filter(|v| !labelled.iter().any(|t| (t / v - 1.0).abs() < 1e-9))
                .collect()
        };
        let finish = |labelled: Vec<f64>| {
            let light = light(&labelled);
            Ticks { labelled, light }
        };
        let mut values: Vec<f64> = data
            .iter()
            .copied()
            .filter(|v| v.is_finite() && *v >= start && *v <= end)
            .collect();
        values.sort_by(f64::total_cmp);
        values.dedup();
        let round = |v: &f64| {
            (self.label)(*v)
                .parse::<f64>()
                .is_ok_and(|shown| (shown - v).abs() <= 1e-9 * v.abs())
        };
        if values.len() >= 2 && values.iter().all(round) {
            for stride in 1..=3 {
                let picked: Vec<f64> = values.iter().copied().step_by(stride).collect();
                if (stride == 1 || picked.len() >= 3) && self.fits(&picked) {
                    return finish(picked);
                }
            }
        }
        // From every digit to whole decades, each set sparser than the one before, so the first
        // that fits is the finest. A range wide enough for three 1-2-5 ticks starts there.
        const STEPS: [&[f64]; 6] = [
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0],
            &[1.0, 2.0, 3.0, 5.0, 7.0],
            &[1.0, 2.0, 5.0],
            &[1.0, 3.0],
            &[1.0],
        ];
        let from = if self.decades(STEPS[3], 1).len() >= 3 {
            3
        } else {
            0
        };
        let mut candidates: Vec<Vec<f64>> = STEPS[from..]
            .iter()
            .map(|steps| self.decades(steps, 1))
            .collect();
        candidates.extend((2..=6).map(|every| self.decades(&[1.0], every)));
        for labelled in &candidates {
            if labelled.len() >= 2 && self.fits(labelled) {
                return finish(labelled.clone());
            }
        }
        // Room for one label at most: the first candidate that has one.
        let one = candidates
            .iter()
            .find_map(|c| c.first().copied())
            .unwrap_or(start);
        finish(vec![one])
    }

    /// `steps` × 10ᵏ inside the range, for every `every`-th power k.
    fn decades(&self, steps: &[f64], every: usize) -> Vec<f64> {
        let Range { start, end } = self.range;
        let first = start.log10().floor() as i32;
        let last = end.log10().ceil() as i32;
        (first..=last)
            .filter(|power| power.rem_euclid(every as i32) == 0)
            .flat_map(|power| steps.iter().map(move |step| scaled(*step, power)))
            .filter(|v| *v >= start && *v <= end)
            .collect()
    }
}

/// `mantissa` × 10^`power`, rounded as the literal is: dividing by an exact power of ten where
/// the power is negative.
fn scaled(mantissa: f64, power: i32) -> f64 {
    if power < 0 {
        mantissa / 10f64.powi(-power)
    } else {
        mantissa * 10f64.powi(power)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tick_label;

    fn axis(range: Range<f64>, log: bool, pixels: f64, horizontal: bool) -> Axis<'static> {
        Axis {
            range,
            log,
            pixels,
            horizontal,
            label: &tick_label,
        }
    }

    /// Every pair of neighbouring labels drawn apart by their half-widths and the gap.
    fn clear(axis: &Axis, ticks: &[f64]) -> bool {
        ticks.windows(2).all(|w| {
            let apart = axis.position(w[1]) - axis.position(w[0]);
            let half = |v: f64| text_px(&tick_label(v)) / 2.0;
            apart >= half(w[0]) + half(w[1]) + GAP_PX
        })
    }

    #[test]
    fn log_ticks_for_sizes_256_to_2048_are_the_datas_powers_of_two() {
        let x = axis(204.8..2560.0, true, 670.0, true);
        let ticks = x.log(&[256.0, 512.0, 1024.0, 2048.0, 1024.0]);
        assert_eq!(ticks.labelled, [256.0, 512.0, 1024.0, 2048.0]);
        assert!(ticks.light.contains(&300.0) && !ticks.light.contains(&256.0));
    }

    #[test]
    fn long_labels_never_overlap() {
        // Chapter 3's sleeping tasks: 1 to 100000 on a log axis.
        let x = axis(0.8..125_000.0, true, 670.0, true);
        let counts = [1.0, 10.0, 100.0, 1000.0, 10_000.0, 100_000.0];
        assert_eq!(x.log(&counts).labelled, counts);
        // Without data to follow, 1-2-5 steps thin out until 50000 and 100000 stand apart.
        let ticks = x.log(&[]).labelled;
        assert!(ticks.len() >= 3 && clear(&x, &ticks), "{ticks:?}");
        assert!(!(ticks.contains(&50_000.0) && ticks.contains(&100_000.0)));
        // A linear axis to 100000 on a narrow chart: fewer, wider steps.
        let narrow = axis(0.0..105_000.0, false, 300.0, true);
        let ticks = narrow.linear(false).labelled;
        assert!(ticks.len() >= 2 && clear(&narrow, &ticks), "{ticks:?}");
        let wide = axis(0.0..105_000.0, false, 670.0, true);
        assert!(wide.linear(false).labelled.len() > ticks.len());
    }

    #[test]
    fn many_sizes_are_thinned_and_odd_values_fall_back_to_1_2_5() {
        let x = axis(204.0..12_500.0, true, 670.0, true);
        let sizes = [256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0, 10_000.0];
        let ticks = x.log(&sizes).labelled;
        assert_eq!(
            ticks,
            [256.0, 1024.0, 4096.0, 10_000.0],
            "8192 and 10000 crowd"
        );
        let measured = [310.7, 1234.5];
        assert_eq!(
            x.log(&measured).labelled,
            [500.0, 1000.0, 2000.0, 5000.0, 10_000.0]
        );
        // Chapter 3's wall times, 80 to 475 ms: every digit crowds 90 against 100, so the
        // next finer set after it, not 100 and 200 alone.
        assert_eq!(
            axis(80.0..475.0, true, 332.0, false).log(&[]).labelled,
            [80.0, 100.0, 200.0, 300.0, 400.0]
        );
        // Narrower than a decade: every digit.
        assert_eq!(
            axis(25.0..75.0, true, 340.0, false).log(&[]).labelled,
            [30.0, 40.0, 50.0, 60.0, 70.0]
        );
    }

    #[test]
    fn linear_ticks_are_round_and_whole_when_asked() {
        let y = axis(0.0..230.0, false, 340.0, false);
        let ticks = y.linear(false);
        assert_eq!(ticks.labelled[..3], [0.0, 20.0, 40.0]);
        assert!(ticks.light.contains(&10.0));
        let threads = axis(0.95..2.05, false, 670.0, true);
        assert_eq!(threads.linear(true).labelled, [1.0, 2.0]);
        assert_eq!(threads.linear(false).labelled.len(), 11, "tenths fit");
        let flat = axis(3.0..3.0, false, 670.0, true);
        assert_eq!(flat.linear(false).labelled, [3.0]);
    }
}
