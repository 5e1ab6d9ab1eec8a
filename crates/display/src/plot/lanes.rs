//! Lane charts ("who ran when"): one row per worker, a bar for its lifetime and a tick for each
//! iteration, on a shared time axis.

use super::{Chart, drawing_failed, render, row_y, rows_chart, series_color};
use crate::Figure;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

#[derive(Debug, Clone)]
struct Lane {
    label: String,
    start: f64,
    end: f64,
    ticks: Vec<f64>,
}

/// A "who ran when" chart: one row (lane) per worker, a bar from its start to its end and a
/// tick at each iteration, all on one time axis. Drawn with [`LaneChart::render`].
#[derive(Debug, Clone)]
pub struct LaneChart {
    title: String,
    x_label: String,
    lanes: Vec<Lane>,
}

impl LaneChart {
    /// An empty chart with this title; add lanes with [`LaneChart::lane`].
    pub fn new(title: impl Into<String>) -> Self {
        LaneChart {
            title: title.into(),
            x_label: String::new(),
            lanes: Vec::new(),
        }
    }

    /// The label under the time axis, with its unit, e.g. `seconds since the first event`.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Adds a lane (drawn top to bottom in the order added) alive from `start` to `end`.
    pub fn lane(mut self, label: impl Into<String>, start: f64, end: f64, ticks: Vec<f64>) -> Self {
        self.lanes.push(Lane {
            label: label.into(),
            start,
            end,
            ticks,
        });
        self
    }

    /// Draws the chart as a [`Figure`] (SVG and PNG); an error when it has no lanes.
    pub fn render(&self) -> Result<Figure> {
        render(self)
    }

    fn x_end(&self) -> f64 {
        let last = self
            .lanes
            .iter()
            .flat_map(|l| l.ticks.iter().copied().chain([l.end]))
            .fold(0.0, f64::max);
        if last > 0.0 { last * 1.04 } else { 1.0 }
    }
}

impl Chart for LaneChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn height(&self) -> u32 {
        (110 + 30 * self.lanes.len() as u32).max(220)
    }

    fn check(&self) -> Result<()> {
        if self.lanes.is_empty() {
            return Err(Error::new(
                format!("the chart '{}' has no lanes", self.title),
                "run the workers first",
            ));
        }
        let finite = self.lanes.iter().all(|l| {
            l.start.is_finite() && l.end.is_finite() && l.ticks.iter().all(|t| t.is_finite())
        });
        if !finite {
            return Err(Error::new(
                format!("the chart '{}' has a time that is not a number", self.title),
                "report this as a bug in virtlab",
            ));
        }
        Ok(())
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| drawing_failed(&self.title, e);
        let n = self.lanes.len();
        let labels: Vec<&str> = self.lanes.iter().map(|l| l.label.as_str()).collect();
        let mut chart = rows_chart(
            &root,
            &self.title,
            &self.x_label,
            &labels,
            0.0..self.x_end(),
            false,
        )?;
        for (i, lane) in self.lanes.iter().enumerate() {
            let y = row_y(n, i);
            let color = series_color(i);
            chart
                .draw_series([Rectangle::new(
                    [(lane.start, y - 0.28), (lane.end.max(lane.start), y + 0.28)],
                    color.mix(0.3).filled(),
                )])
                .map_err(|e| fail(&e))?;
            chart
                .draw_series(lane.ticks.iter().map(|t| {
                    PathElement::new([(*t, y - 0.36), (*t, y + 0.36)], color.stroke_width(3))
                }))
                .map_err(|e| fail(&e))?;
        }
        root.present().map_err(|e| fail(&e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_labelled_and_the_figure_grows_with_them() {
        let small = LaneChart::new("t").lane("a", 0.0, 1.0, vec![0.5]);
        let big = (0..10).fold(LaneChart::new("t"), |c, i| {
            c.lane(format!("lane-{i}"), 0.0, 1.0, vec![])
        });
        assert!(big.height() > small.height());
        let svg = big.render().unwrap().svg().to_string();
        assert!(svg.contains("lane-0") && svg.contains("lane-9"));
    }

    #[test]
    fn no_lanes_or_nan_times_are_errors() {
        assert!(
            LaneChart::new("t")
                .render()
                .unwrap_err()
                .problem()
                .contains("no lanes")
        );
        let nan = LaneChart::new("t").lane("a", f64::NAN, 1.0, vec![]);
        assert!(nan.render().unwrap_err().problem().contains("not a number"));
    }
}
