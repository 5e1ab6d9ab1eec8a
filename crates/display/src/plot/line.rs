//! Line charts: measured series with markers, dashed model series, reference lines, log axes.

use super::ticks::{Axis, Ticked, Ticks};
use super::{
    Chart, FONT, Key, Mark, below_height, draw_below, drawing_failed, render, series_color,
    tick_label,
};
use crate::Figure;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

const HEIGHT: u32 = 440;
/// The plotting area's size inside the chart's margins, caption and label areas (below), in
/// pixels, rounded down: what the ticks have to fit their labels into.
const PLOT_WIDTH: f64 = (super::WIDTH - 2 * MARGIN - Y_LABELS - 8) as f64;
const PLOT_HEIGHT: f64 = (HEIGHT - 2 * MARGIN - X_LABELS - CAPTION) as f64;
const MARGIN: u32 = 12;
const X_LABELS: u32 = 44;
const Y_LABELS: u32 = 64;
/// The caption's height: its 20 px text and the space plotters leaves under it, with room.
const CAPTION: u32 = 40;

#[derive(Debug, Clone)]
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    /// Dashed and without markers: a model or ideal to compare against, not a measurement.
    dashed: bool,
    /// A fixed palette slot (see [`LineChart::color`]); else the series' place on the chart.
    color: Option<usize>,
}

/// A labelled horizontal line, e.g. a machine's peak throughput.
#[derive(Debug, Clone)]
struct Reference {
    name: String,
    y: f64,
}

/// A chart of one or more lines with markers, optional horizontal reference lines and log axes.
#[derive(Debug, Clone)]
pub struct LineChart {
    title: String,
    x_label: String,
    y_label: String,
    series: Vec<Series>,
    references: Vec<Reference>,
    log_x: bool,
    log_y: bool,
    y_from_zero: bool,
    /// Said under the chart, e.g. how it was measured.
    note: Option<String>,
    /// Write each series' name beside its last point (for charts of one point per series).
    label_points: bool,
}

impl LineChart {
    /// An empty chart with this title; add lines with [`LineChart::series`].
    pub fn new(title: impl Into<String>) -> Self {
        LineChart {
            title: title.into(),
            x_label: String::new(),
            y_label: String::new(),
            series: Vec::new(),
            references: Vec::new(),
            log_x: false,
            log_y: false,
            y_from_zero: true,
            note: None,
            label_points: false,
        }
    }

    /// The label under the x axis, with its unit, e.g. `threads`.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// The label beside the y axis, with its unit, e.g. `GFLOP/s`.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// A measured line: solid, with a marker on each point.
    pub fn series(
        self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.with_series(name.into(), points.into_iter().collect(), false)
    }

    /// A model or ideal line: dashed, without markers.
    pub fn dashed_series(
        self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.with_series(name.into(), points.into_iter().collect(), true)
    }

    fn with_series(mut self, name: String, points: Vec<(f64, f64)>, dashed: bool) -> Self {
        self.series.push(Series {
            name,
            points,
            dashed,
            color: None,
        });
        self
    }

    /// Draws the series added last in palette colour `slot`, whatever its place on this chart:
    /// the same slot is the same colour on every chart, so a thing keeps its colour from one
    /// chart to the next (a kind of worker on the cost ladder). Without a series, nothing
    /// changes.
    pub fn color(mut self, slot: usize) -> Self {
        if let Some(last) = self.series.last_mut() {
            last.color = Some(slot);
        }
        self
    }

    /// A labelled horizontal line at height `y`, e.g. a machine's measured peak in GFLOP/s.
    pub fn reference(mut self, name: impl Into<String>, y: f64) -> Self {
        self.references.push(Reference {
            name: name.into(),
            y,
        });
        self
    }

    /// Draws the x axis on a log scale (each step ×10), for sizes that span decades; every
    /// x value must then be above 0.
    pub fn log_x(mut self) -> Self {
        self.log_x = true;
        self
    }

    /// Draws the y axis on a log scale, for values that span decades (a 2-core CPU beside a GPU);
    /// every y value must then be above 0.
    pub fn log_y(mut self) -> Self {
        self.log_y = true;
        self
    }

    /// A note printed under the chart (wrapped), e.g. the method behind the numbers.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }

    /// Writes each series' name beside its last point, so a chart of single points reads
    /// without the legend.
    pub fn label_points(mut self) -> Self {
        self.label_points = true;
        self
    }

    /// The legend entries: references first, then the series, in the order they are drawn.
    fn keys(&self) -> Vec<Key> {
        let references = self.references.iter().enumerate().map(|(i, r)| Key {
            name: r.name.clone(),
            color: series_color(self.series.len() + i),
            mark: Mark::Dashed,
        });
        let series = self.series.iter().enumerate().map(|(i, s)| Key {
            name: s.name.clone(),
            color: series_color(s.color.unwrap_or(i)),
            mark: if s.dashed { Mark::Dashed } else { Mark::Line },
        });
        references.chain(series).collect()
    }

    /// Draws this chart.
    pub fn render(&self) -> Result<Figure> {
        render(self)
    }

    /// The data's extent, padded, checked against the axes' kinds.
    fn ranges(&self) -> Result<(Range<f64>, Range<f64>)> {
        let points: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        if points.is_empty() {
            return Err(Error::new(
                format!("the chart '{}' has no finite data points", self.title),
                "run the measurement first, or pass at least one point",
            ));
        }
        let xs = points.iter().map(|p| p.0);
        let ys = points
            .iter()
            .map(|p| p.1)
            .chain(self.references.iter().map(|r| r.y));
        let x = padded(xs, self.log_x, false, "x")?;
        let y = padded(ys, self.log_y, self.y_from_zero && !self.log_y, "y")?;
        Ok((x, y))
    }

    fn draw_on<DB, X, Y>(&self, root: DrawingArea<DB, Shift>, x: X, y: Y) -> Result<()>
    where
        DB: DrawingBackend,
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let fail = |e: &dyn std::fmt::Display| drawing_failed(&self.title, e);
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let (plot_area, below) = root.split_vertically(HEIGHT);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&self.title, (FONT, 20))
            .margin(MARGIN)
            .x_label_area_size(X_LABELS)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(x, y)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_label_formatter(&|v| tick_label(*v))
            .y_label_formatter(&|v| tick_label(*v))
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| fail(&e))?;
        let x_span = chart.x_range();
        for (i, reference) in self.references.iter().enumerate() {
            let color = series_color(self.series.len() + i);
            let style = ShapeStyle {
                color: color.mix(0.8),
                filled: false,
                stroke_width: 2,
            };
            chart
                .draw_series(DashedLineSeries::new(
                    [(x_span.start, reference.y), (x_span.end, reference.y)],
                    8,
                    5,
                    style,
                ))
                .map_err(|e| fail(&e))?;
        }
        for (i, series) in self.series.iter().enumerate() {
            let color = series_color(series.color.unwrap_or(i));
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            let drawn = if series.dashed {
                let style = color.stroke_width(2);
                chart.draw_series(DashedLineSeries::new(points.iter().copied(), 6, 4, style))
            } else {
                let (radius, width) = measured_marker(self.measured_after(i));
                chart
                    .draw_series(
                        points
                            .iter()
                            .map(|p| Circle::new(*p, radius, color.filled())),
                    )
                    .map_err(|e| fail(&e))?;
                chart.draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(width),
                ))
            };
            drawn.map_err(|e| fail(&e))?;
            if let Some(&last) = points.last().filter(|_| self.label_points) {
                // Beside the point, clear of its marker, on the side with room: left of it in
                // the right half of the chart.
                let (px, _) = chart.backend_coord(&last);
                let (left, _) = chart.plotting_area().get_base_pixel();
                let width = chart.plotting_area().dim_in_pixel().0 as i32;
                let (dx, side) = if px - left > width / 2 {
                    (-9, HPos::Right)
                } else {
                    (9, HPos::Left)
                };
                let style = (FONT, 13)
                    .into_font()
                    .color(&color)
                    .pos(Pos::new(side, VPos::Center));
                let label = EmptyElement::at(last) + Text::new(series.name.clone(), (dx, 0), style);
                chart.draw_series([label]).map_err(|e| fail(&e))?;
            }
        }
        draw_below(&below, &self.keys(), self.note.as_deref(), &self.title)?;
        root.present().map_err(|e| fail(&e))?;
        Ok(())
    }
}

impl LineChart {
    /// How many measured (solid) series are drawn after series `i`, over it.
    fn measured_after(&self, i: usize) -> usize {
        self.series[i + 1..].iter().filter(|s| !s.dashed).count()
    }
}

/// Marker radius and line width of a measured series with `later` measured series drawn over
/// it: each earlier one a size larger, so series that measure the same (std threads and rayon
/// on free cores) show as rings and bands around each other instead of one hiding the other.
fn measured_marker(later: usize) -> (i32, u32) {
    let step = later.min(2);
    (4 + 2 * step as i32, 2 + step as u32)
}

impl Chart for LineChart {
    fn title(&self) -> &str {
        &self.title
    }

    fn height(&self) -> u32 {
        HEIGHT + below_height(&self.keys(), self.note.as_deref())
    }

    fn check(&self) -> Result<()> {
        self.ranges().map(|_| ())
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()> {
        let (x, y) = self.ranges()?;
        let (x_ticks, y_ticks) = self.ticks(&x, &y);
        // plotters picks ticks by count and knows no label's width: each axis gets its own.
        let linear = |range: Range<f64>, ticks| Ticked::new(RangedCoordf64::from(range), ticks);
        let log = |range: Range<f64>, ticks| {
            Ticked::<LogCoord<f64>>::new(range.log_scale().into(), ticks)
        };
        match (self.log_x, self.log_y) {
            (false, false) => self.draw_on(root, linear(x, x_ticks), linear(y, y_ticks)),
            (true, false) => self.draw_on(root, log(x, x_ticks), linear(y, y_ticks)),
            (false, true) => self.draw_on(root, linear(x, x_ticks), log(y, y_ticks)),
            (true, true) => self.draw_on(root, log(x, x_ticks), log(y, y_ticks)),
        }
    }
}

impl LineChart {
    /// The ticks of both axes. A log x axis follows the data's own values (the sizes or counts
    /// measured); an x axis of whole numbers (threads, counts) is labelled at whole numbers.
    fn ticks(&self, x: &Range<f64>, y: &Range<f64>) -> (Ticks, Ticks) {
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|x| x.is_finite())
            .collect();
        let whole_x = xs.iter().all(|x| x.fract() == 0.0);
        let x_axis = Axis {
            range: x.clone(),
            log: self.log_x,
            pixels: PLOT_WIDTH,
            horizontal: true,
            label: &tick_label,
        };
        let y_axis = Axis {
            range: y.clone(),
            log: self.log_y,
            pixels: PLOT_HEIGHT,
            horizontal: false,
            label: &tick_label,
        };
        let x_ticks = if self.log_x {
            x_axis.log(&xs)
        } else {
            x_axis.linear(whole_x)
        };
        let y_ticks = if self.log_y {
            y_axis.log(&[])
        } else {
            y_axis.linear(false)
        };
        (x_ticks, y_ticks)
    }
}

/// The range of `values` with 5% room on each side (multiplicative on log axes).
fn padded(
    values: impl Iterator<Item = f64>,
    log: bool,
    from_zero: bool,
    axis: &str,
) -> Result<Range<f64>> {
    let (mut lo, mut hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if log {
        if lo <= 0.0 {
            return Err(Error::new(
                format!("a log-scale {axis} axis cannot show the value {lo}"),
                "drop zero and negative values, or use a linear axis",
            ));
        }
        // 5% of the decades shown on each side, and at least ×1.25, so that a point at an
        // extreme (the dearest rung of a ladder) sits clear of the frame on wide spans too.
        let decades = (hi / lo).log10();
        let room = 10f64.powf((0.05 * decades).max(1.25f64.log10()));
        return Ok(lo / room..hi * room);
    }
    if from_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        // A single value (or a flat line) still needs a visible span.
        lo -= 0.5 * hi.abs().max(1.0);
        hi += 0.5 * hi.abs().max(1.0);
    }
    let pad = 0.05 * (hi - lo);
    Ok(if from_zero && lo >= 0.0 {
        lo..hi + pad
    } else {
        lo - pad..hi + pad
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        LineChart::new("GFLOP/s by threads")
            .x_label("threads")
            .y_label("GFLOP/s")
            .series("f64", [(1.0, 50.0), (2.0, 99.0)])
            .reference("peak", 112.0)
    }

    #[test]
    fn renders_svg_with_labels_and_a_valid_png() {
        let fig = chart().render().unwrap();
        assert!(fig.svg().starts_with("<svg"));
        for text in ["GFLOP/s by threads", "threads", "f64", "peak"] {
            assert!(fig.svg().contains(text), "svg lacks {text}");
        }
        assert_eq!(&fig.png()[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(fig.png().to_vec()));
        let info = decoder.read_info().unwrap();
        assert_eq!(
            (info.info().width, info.info().height),
            (crate::plot::WIDTH, Chart::height(&chart()))
        );
    }

    #[test]
    fn png_has_ink_not_just_background() {
        let fig = chart().render().unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(fig.png().to_vec()))
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        let dark = buf
            .chunks(3)
            .filter(|px| px.iter().all(|c| *c < 100))
            .count();
        assert!(dark > 500, "only {dark} dark pixels: text and axes missing");
    }

    #[test]
    fn log_axes_render_and_reject_non_positive_values() {
        assert!(chart().log_x().log_y().render().is_ok());
        let err = LineChart::new("t")
            .series("s", [(0.0, 1.0), (1.0, 2.0)])
            .log_x()
            .render()
            .unwrap_err();
        assert!(err.problem().contains("log-scale x axis"), "{err}");
    }

    /// The texts of an SVG's <text> elements.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("</text>")
            .filter_map(|part| part.rsplit('>').next())
            .map(|t| t.trim().to_string())
            .collect()
    }

    #[test]
    fn log_axes_are_labelled_at_the_sizes_measured_and_in_1_2_5_steps() {
        let svg = LineChart::new("throughput")
            .series("f64", [(256.0, 45.0), (512.0, 80.0), (2048.0, 113.0)])
            .log_x()
            .log_y()
            .render()
            .unwrap()
            .svg()
            .to_string();
        let texts = texts(&svg);
        for label in ["256", "512", "2048", "40", "50", "100"] {
            assert!(
                texts.iter().any(|t| t == label),
                "no tick {label} on the log axes: {texts:?}"
            );
        }
        assert!(!texts.iter().any(|t| t == "1000"), "{texts:?}");
    }

    #[test]
    fn a_whole_number_axis_has_no_fractional_ticks() {
        let svg = chart().render().unwrap().svg().to_string();
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t == "1") && texts.iter().any(|t| t == "2"));
        assert!(!texts.iter().any(|t| t == "1.5"), "{texts:?}");
    }

    #[test]
    fn empty_chart_is_an_error_not_a_panic() {
        let err = LineChart::new("nothing").render().unwrap_err();
        assert!(err.problem().contains("no finite data points"));
        let err = LineChart::new("nan")
            .series("s", [(f64::NAN, 1.0)])
            .render()
            .unwrap_err();
        assert!(err.problem().contains("no finite data points"));
    }

    #[test]
    fn dashed_series_are_drawn_and_named() {
        let fig = chart()
            .dashed_series("ideal", [(1.0, 50.0), (2.0, 100.0)])
            .render()
            .unwrap();
        assert!(fig.svg().contains("ideal"));
    }

    #[test]
    fn a_fixed_colour_follows_the_series_not_its_place() {
        let rgb = |slot: usize| {
            let c = series_color(slot);
            format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
        };
        let alone = LineChart::new("t")
            .series("process", [(1.0, 2.0), (2.0, 3.0)])
            .color(3)
            .render()
            .unwrap();
        assert!(alone.svg().contains(&rgb(3)), "slot 3 is drawn");
        assert!(
            !alone.svg().contains(&rgb(0)),
            "not the first series' colour"
        );
        let keys = chart().color(5).keys();
        let last = keys.last().map(|k| (k.color.0, k.color.1, k.color.2));
        let five = series_color(5);
        assert_eq!(last, Some((five.0, five.1, five.2)));
    }

    #[test]
    fn single_point_gets_a_visible_range() {
        let r = padded([3.0].into_iter(), false, false, "y").unwrap();
        assert!(r.start < 3.0 && r.end > 3.0);
    }

    #[test]
    fn log_axes_leave_room_in_proportion_to_the_decades_shown() {
        let narrow = padded([10.0, 100.0].into_iter(), true, false, "y").unwrap();
        assert!((narrow.end / 100.0 - 1.25).abs() < 1e-9, "{narrow:?}");
        // Six decades: 0.3 of a decade each side, ×2 rather than ×1.25.
        let wide = padded([1e-3, 1e3].into_iter(), true, false, "y").unwrap();
        assert!((wide.end / 1e3 - 10f64.powf(0.3)).abs() < 1e-9, "{wide:?}");
        assert!(
            (1e-3 / wide.start - 10f64.powf(0.3)).abs() < 1e-9,
            "{wide:?}"
        );
    }

    #[test]
    fn series_drawn_under_others_are_drawn_larger() {
        assert_eq!(measured_marker(0), (4, 2));
        assert_eq!(measured_marker(1), (6, 3));
        assert_eq!(measured_marker(5), (8, 4));
        let chart = LineChart::new("t")
            .series("std threads", [(1.0, 1.0), (2.0, 2.0)])
            .series("rayon", [(1.0, 1.0), (2.0, 2.0)])
            .dashed_series("ideal", [(1.0, 1.0), (2.0, 2.0)]);
        assert_eq!(
            chart.measured_after(0),
            1,
            "rayon is drawn over std threads"
        );
        assert_eq!(chart.measured_after(1), 0, "the dashed line does not count");
        let svg = chart.render().unwrap();
        assert!(svg.svg().contains(r#"r="6""#) && svg.svg().contains(r#"r="4""#));
    }
}
