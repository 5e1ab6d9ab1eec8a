//! Horizontal bar charts: one bar per category, optionally stacked from named segments (e.g. a
//! GPU product split into copy in, compute and copy out), each bar labelled with its total.

use super::ticks::text_px;
use super::{
    Chart, FONT, Key, Mark, below_height, draw_below, drawing_failed, render, row_y, rows_chart,
    rows_plot_width, series_color, tick_label,
};
use crate::Figure;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Pixels kept clear between a bar's total label and the chart's frame.
const LABEL_CLEARANCE_PX: f64 = 6.0;

/// The label written after a bar: its total, set off by a space.
fn total_label(total: f64) -> String {
    format!(" {}", tick_label(total))
}

/// A horizontal bar chart, built step by step and drawn with [`BarChart::render`]: one bar per
/// category, each a stack of named segments, labelled with its total.
#[derive(Debug, Clone)]
pub struct BarChart {
    title: String,
    x_label: String,
    segments: Vec<String>,
    bars: Vec<(String, Vec<f64>)>,
    log_x: bool,
}

impl BarChart {
    /// A chart whose bars are stacks of these segments (one name per segment, in drawing order).
    pub fn new(title: impl Into<String>, segments: &[&str]) -> Self {
        BarChart {
            title: title.into(),
            x_label: String::new(),
            segments: segments.iter().map(|s| s.to_string()).collect(),
            bars: Vec::new(),
            log_x: false,
        }
    }

    /// Draws the value axis on a log scale (whole decades), for values that span them, such as
    /// slowdowns from 1× to 100×; every bar's total must then be above 0.
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    /// The label under the value axis, with its unit, e.g. `milliseconds`.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Adds a bar (drawn top to bottom in the order added): one value per segment.
    pub fn bar(mut self, label: impl Into<String>, values: &[f64]) -> Self {
        self.bars.push((label.into(), values.to_vec()));
        self
    }

    /// Draws the chart as a [`Figure`] (SVG and PNG); an error when there are no bars or a bar's
    /// values do not match the segments or are negative.
    pub fn render(&self) -> Result<Figure> {
        render(self)
    }

    fn plot_height(&self) -> u32 {
        (130 + 34 * self.bars.len() as u32).max(220)
    }

    /// One legend entry per segment, when there is more than one.
    fn keys(&self) -> Vec<Key> {
        if self.segments.len() < 2 {
            return Vec::new();
        }
        self.segments
            .iter()
            .enumerate()
            .map(|(s, name)| Key {
                name: name.clone(),
                color: series_color(s),
                mark: Mark::Block,
            })
            .collect()
    }

    /// The value axis: from 0, or on a log axis from the decade of the smallest total (as
    /// log10), and long enough that every bar's total label ends inside the frame.
    fn x_range(&self) -> std::ops::Range<f64> {
        let labels: Vec<&str> = self.bars.iter().map(|(l, _)| l.as_str()).collect();
        let width = rows_plot_width(&labels);
        let totals = self.bars.iter().map(|(_, v)| v.iter().sum::<f64>());
        let start = if self.log_x {
            // The narrowest bar at least a fifth of a decade long: a bar of 1 on an axis from 1
            // would have no length (native's 1× on chapter 5's slowdown chart).
            (totals.clone().fold(f64::INFINITY, f64::min).log10() - 0.2).floor()
        } else {
            0.0
        };
        // A total drawn at a share s of the axis ends at s·width + its label's width: the
        // axis is made long enough that this stays clear of the frame for every bar.
        let span = totals
            .map(|total| {
                let reach = self.x_of(total, start) - start;
                let room =
                    (width - text_px(&total_label(total)) - LABEL_CLEARANCE_PX).max(width / 4.0);
                reach * width / room
            })
            .fold(0.0, f64::max);
        if self.log_x {
            start..start + span.max(1.0)
        } else {
            start..if span > 0.0 { span } else { 1.0 }
        }
    }

    /// Where `value` (a position along a bar) is drawn: itself, or its log10 clamped to the
    /// axis' start.
    fn x_of(&self, value: f64, start: f64) -> f64 {
        if self.log_x {
            value.log10().max(start)
        } else {
            value
        }
    }
}

impl Chart for BarChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn height(&self) -> u32 {
        self.plot_height() + below_height(&self.keys(), None)
    }

    fn check(&self) -> Result<()> {
        if self.bars.is_empty() {
            return Err(Error::new(
                format!("the chart '{}' has no bars", self.title),
                "measure something first",
            ));
        }
        for (label, values) in &self.bars {
            if values.len() != self.segments.len() {
                return Err(Error::new(
                    format!(
                        "the bar '{label}' has {} values for {} segments",
                        values.len(),
                        self.segments.len()
                    ),
                    "report this as a bug in virtlab",
                ));
            }
            if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(Error::new(
                    format!("the bar '{label}' has a value that is negative or not a number"),
                    "report this as a bug in virtlab",
                ));
            }
            if self.log_x && values.iter().sum::<f64>() <= 0.0 {
                return Err(Error::new(
                    format!("the bar '{label}' is 0, which a log axis cannot show"),
                    "report this as a bug in virtlab",
                ));
            }
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| drawing_failed(&self.title, e);
        let n = self.bars.len();
        let labels: Vec<&str> = self.bars.iter().map(|(l, _)| l.as_str()).collect();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let (plot_area, below) = root.split_vertically(self.plot_height());
        let axis = self.x_range();
        let mut chart = rows_chart(
            &plot_area,
            &self.title,
            &self.x_label,
            &labels,
            axis.clone(),
            self.log_x,
        )?;
        for s in 0..self.segments.len() {
            let color = series_color(s);
            let rectangles = self.bars.iter().enumerate().map(|(i, (_, values))| {
                let y = row_y(n, i);
                let start: f64 = values[..s].iter().sum();
                let (from, to) = (
                    self.x_of(start, axis.start),
                    self.x_of(start + values[s], axis.start),
                );
                Rectangle::new([(from, y - 0.32), (to, y + 0.32)], color.filled())
            });
            chart.draw_series(rectangles).map_err(|e| fail(&e))?;
        }
        chart
            .draw_series(self.bars.iter().enumerate().map(|(i, (_, values))| {
                let total: f64 = values.iter().sum();
                let y = row_y(n, i);
                Text::new(
                    total_label(total),
                    (self.x_of(total, axis.start), y + 0.12),
                    (FONT, 13).into_font(),
                )
            }))
            .map_err(|e| fail(&e))?;
        draw_below(&below, &self.keys(), None, &self.title)?;
        root.present().map_err(|e| fail(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacked_bars_show_labels_segments_and_totals() {
        let chart = BarChart::new("split", &["copy in", "compute", "copy out"])
            .bar("n = 1024", &[1.0, 2.0, 0.5])
            .bar("n = 4096", &[10.0, 100.0, 5.0]);
        let svg = chart.render().unwrap().svg().to_string();
        for text in [
            "n = 1024", "n = 4096", "copy in", "compute", "copy out", "3.5", "115",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
    }

    /// Where each bar's total label ends, in pixels from the plotting area's left edge.
    fn label_ends(chart: &BarChart) -> Vec<f64> {
        let axis = chart.x_range();
        let labels: Vec<&str> = chart.bars.iter().map(|(l, _)| l.as_str()).collect();
        let width = rows_plot_width(&labels);
        chart
            .bars
            .iter()
            .map(|(_, values)| {
                let total: f64 = values.iter().sum();
                let share = (chart.x_of(total, axis.start) - axis.start) / (axis.end - axis.start);
                share * width + text_px(&total_label(total))
            })
            .collect()
    }

    #[test]
    fn total_labels_end_inside_the_frame() {
        let long_name = "a bar whose name takes a good part of the chart's width";
        let linear = BarChart::new("t", &["a"])
            .bar(long_name, &[12_345.6])
            .bar("short", &[9_999.9]);
        // Just under a decade: its label once ran into the frame of a log axis.
        let log = BarChart::new("t", &["a"])
            .log_x()
            .bar(long_name, &[1.0])
            .bar("nearly ten", &[9.9])
            .bar("nearly a hundred", &[98_765.4]);
        for chart in [linear, log] {
            let width = rows_plot_width(
                &chart
                    .bars
                    .iter()
                    .map(|(l, _)| l.as_str())
                    .collect::<Vec<_>>(),
            );
            for end in label_ends(&chart) {
                assert!(end + LABEL_CLEARANCE_PX <= width + 1e-9, "{end} of {width}");
            }
        }
    }

    #[test]
    fn log_bars_span_decades_and_refuse_zero() {
        let chart = BarChart::new("slowdown", &["measured"])
            .log_x()
            .bar("native", &[1.0])
            .bar("python", &[85.0]);
        let axis = chart.x_range();
        assert_eq!(axis.start, -1.0, "1 gets a decade of bar");
        assert!(axis.end >= 85f64.log10() && axis.end < 3.0, "{axis:?}");
        let svg = chart.render().unwrap().svg().to_string();
        // Tick labels on whole decades (each text sits on a line of its own in the SVG).
        for text in ["native", "python", "85", "0.1", "1", "10", "100"] {
            assert!(svg.lines().any(|l| l.trim() == text), "missing {text}");
        }
        let zero = BarChart::new("t", &["a"]).log_x().bar("x", &[0.0]);
        assert!(zero.render().unwrap_err().problem().contains("log axis"));
    }

    #[test]
    fn empty_ragged_or_negative_bars_are_errors() {
        assert!(
            BarChart::new("t", &["a"])
                .render()
                .unwrap_err()
                .problem()
                .contains("no bars")
        );
        let ragged = BarChart::new("t", &["a", "b"]).bar("x", &[1.0]);
        assert!(
            ragged
                .render()
                .unwrap_err()
                .problem()
                .contains("1 values for 2")
        );
        let negative = BarChart::new("t", &["a"]).bar("x", &[-1.0]);
        assert!(
            negative
                .render()
                .unwrap_err()
                .problem()
                .contains("negative")
        );
    }
}
