//! Charts drawn with plotters, rendered once as SVG and once as PNG into a [`Figure`].
//!
//! Text is drawn with the DejaVu Sans font compiled into the crate (plotters' `ab_glyph`
//! feature), so neither build nor run needs system font libraries. Three kinds of chart:
//! [`LineChart`] (measured lines and models), [`BarChart`] (stacked bars) and [`LaneChart`] (who
//! ran when); each is built step by step and drawn by its `render`.

mod bars;
mod lanes;
mod line;
mod ticks;

pub use bars::BarChart;
pub use lanes::LaneChart;
pub use line::LineChart;

use crate::Figure;
use crate::{Error, Result};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use std::sync::Once;

const WIDTH: u32 = 760;
const FONT: &str = "sans-serif";

/// Sixteen colours, one per series (or bar segment, or lane), each clearly apart from every
/// other: Okabe–Ito's eight, picked to stay distinct for common colour-vision deficiencies
/// (yellow, the faintest on white, last of them), then eight of other hues and lightness, chosen
/// to keep the whole set apart (chapter 7's start has eleven steps). Every pair differs by at
/// least 25 in CIELAB ΔE (the test checks it); under simulated deuteranopia and protanopia
/// (Viénot 1999) the closest pair still differs by about 13, where tints of the first eight made
/// "cgroup joined" and "lo up" two near-identical blues.
const PALETTE: [RGBColor; 16] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
    // crimson, indigo, khaki, plum, cyan, dark grey, lime, brown
    RGBColor(165, 0, 38),
    RGBColor(51, 34, 136),
    RGBColor(189, 183, 107),
    RGBColor(110, 30, 110),
    RGBColor(23, 190, 207),
    RGBColor(80, 80, 80),
    RGBColor(166, 216, 84),
    RGBColor(140, 81, 10),
];

/// The colour of series (or bar segment, or lane) `i`; a seventeenth series starts over.
fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font bytes are compiled in and known to be valid TrueType.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
    });
}

/// A chart that can draw itself on any plotters backend.
trait Chart {
    fn title(&self) -> &str;
    fn height(&self) -> u32;
    /// Checks the data before anything is drawn, so both renderings see the same verdict.
    fn check(&self) -> Result<()>;
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>;
}

fn render(chart: &impl Chart) -> Result<Figure> {
    register_font();
    chart.check()?;
    let height = chart.height();
    let mut svg = String::new();
    chart.draw(SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area())?;
    let mut pixels = vec![0u8; (WIDTH * height * 3) as usize];
    chart.draw(BitMapBackend::with_buffer(&mut pixels, (WIDTH, height)).into_drawing_area())?;
    Ok(Figure::new(
        chart.title().to_string(),
        svg,
        encode_png(&pixels, height)?,
    ))
}

/// The error for a plotters failure while drawing `title`.
fn drawing_failed(title: &str, e: &dyn std::fmt::Display) -> Error {
    Error::new(
        format!("drawing the chart '{title}' failed: {e}"),
        "report this as a bug in virtlab",
    )
}

/// The axes of a chart with one row per label (the first at the top) over the x range `x` (on
/// a log axis, the range of the values' log10):
/// white background, caption, mesh and row labels drawn. Row i sits at y = [`row_y`].
fn rows_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    labels: &[&str],
    x: std::ops::Range<f64>,
    log_x: bool,
) -> Result<ChartContext<'a, DB, Cartesian2d<ticks::Ticked<RangedCoordf64>, RangedCoordf64>>> {
    let fail = |e: &dyn std::fmt::Display| drawing_failed(title, e);
    let n = labels.len();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    // On a log axis x is the value's log10, so whole steps are whole decades.
    let value = |v: f64| if log_x { 10f64.powf(v) } else { v };
    let label = |v: f64| tick_label(value(v));
    let mut ticks = ticks::Axis {
        range: x.clone(),
        log: false,
        pixels: rows_plot_width(labels),
        horizontal: true,
        label: &label,
    }
    .linear(log_x);
    if log_x {
        // Lines between decades at fractions of a log10 mean nothing.
        ticks.light.clear();
    }
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(ROWS_MARGIN)
        .x_label_area_size(44)
        .y_label_area_size(rows_label_width(labels))
        .build_cartesian_2d(
            ticks::Ticked::new(x.clone().into(), ticks),
            -0.5..n as f64 - 0.5,
        )
        .map_err(|e| fail(&e))?;
    let row_label = |v: &f64| {
        let index = v.round();
        if (v - index).abs() > 1e-6 || index < 0.0 || index as usize >= n {
            return String::new();
        }
        labels[n - 1 - index as usize].to_string()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&row_label)
        .x_label_formatter(&|v| label(*v))
        .x_desc(x_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| fail(&e))?;
    Ok(chart)
}

const ROWS_MARGIN: u32 = 12;

/// The width of the row labels' area beside a [`rows_chart`].
fn rows_label_width(labels: &[&str]) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    (longest * 8 + 20).min(380)
}

/// The width of a [`rows_chart`]'s plotting area, in pixels: what is left of the chart beside
/// its row labels and margins.
fn rows_plot_width(labels: &[&str]) -> f64 {
    f64::from(WIDTH - 2 * ROWS_MARGIN - rows_label_width(labels))
}

/// The y of row `i` of `n` in a [`rows_chart`].
fn row_y(n: usize, i: usize) -> f64 {
    (n - 1 - i) as f64
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// A measured series: a solid line.
    Line,
    /// A model or reference: a dashed line.
    Dashed,
    /// A bar segment: a filled block.
    Block,
}

/// One entry of the legend under a chart.
struct Key {
    name: String,
    color: RGBColor,
    mark: Mark,
}

const KEY_ROW: u32 = 20;
/// The legend's column width: two columns across the chart.
const KEY_COLUMN_WIDTH: i32 = (WIDTH as i32 - 80) / 2;
/// Pixels per character of a legend entry at its font size (a generous average, so a long
/// name is never drawn into the next column's swatch).
const KEY_CHAR_WIDTH: i32 = 7;
const NOTE_LINE: u32 = 16;
/// Characters per line of a note at its font size across the chart's width.
const NOTE_CHARS: usize = 132;

/// A note wrapped into lines that fit under the chart.
fn wrap(note: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in note.split_whitespace() {
        let line = lines.last_mut().expect("lines starts with one");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > NOTE_CHARS {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines.retain(|l| !l.is_empty());
    lines
}

/// Columns of the legend: two, or one when a name would not fit beside its swatch in half the
/// width.
fn key_columns(keys: &[Key]) -> usize {
    let widest = keys
        .iter()
        .map(|k| k.name.chars().count())
        .max()
        .unwrap_or(0) as i32;
    if 32 + widest * KEY_CHAR_WIDTH > KEY_COLUMN_WIDTH {
        1
    } else {
        2
    }
}

/// The height the legend and note need under a chart.
fn below_height(keys: &[Key], note: Option<&str>) -> u32 {
    let rows = keys.len().div_ceil(key_columns(keys)) as u32;
    let notes = note.map_or(0, |n| wrap(n).len()) as u32;
    if rows + notes == 0 {
        0
    } else {
        8 + rows * KEY_ROW + notes * NOTE_LINE + 8
    }
}

/// The legend (in columns) and the note, drawn under the chart so they never cover its data.
fn draw_below<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
    note: Option<&str>,
    title: &str,
) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| drawing_failed(title, e);
    let columns = key_columns(keys);
    for (i, key) in keys.iter().enumerate() {
        let x = 70 + (i % columns) as i32 * KEY_COLUMN_WIDTH;
        let y = 8 + (i / columns) as i32 * KEY_ROW as i32 + KEY_ROW as i32 / 2;
        let style = key.color.stroke_width(2);
        match key.mark {
            Mark::Line => area.draw(&PathElement::new([(x, y), (x + 24, y)], style)),
            Mark::Dashed => area
                .draw(&PathElement::new([(x, y), (x + 8, y)], style))
                .and_then(|_| area.draw(&PathElement::new([(x + 14, y), (x + 24, y)], style))),
            Mark::Block => area.draw(&Rectangle::new(
                [(x + 4, y - 6), (x + 20, y + 6)],
                key.color.filled(),
            )),
        }
        .map_err(|e| fail(&e))?;
        area.draw(&Text::new(
            key.name.clone(),
            (x + 32, y - 7),
            (FONT, 13).into_font(),
        ))
        .map_err(|e| fail(&e))?;
    }
    let top = 8 + keys.len().div_ceil(columns) as i32 * KEY_ROW as i32;
    for (i, line) in note.map(wrap).unwrap_or_default().iter().enumerate() {
        area.draw(&Text::new(
            line.clone(),
            (12, top + 2 + i as i32 * NOTE_LINE as i32),
            (FONT, 12).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// A tick label with as many digits as its size needs: 450, 12.5, 0.034, 1.2e-5.
fn tick_label(v: f64) -> String {
    let magnitude = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e7).contains(&magnitude) {
        format!("{v:.1e}")
    } else if magnitude >= 100.0 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn encode_png(rgb: &[u8], height: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let fail = |e: png::EncodingError| {
        Error::new(
            format!("encoding the PNG failed: {e}"),
            "report this as a bug in virtlab",
        )
    };
    let mut encoder = png::Encoder::new(&mut out, WIDTH, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::High);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(rgb).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CIELAB (D65) of an sRGB colour.
    fn lab(c: RGBColor) -> [f64; 3] {
        let linear = |u: u8| {
            let u = f64::from(u) / 255.0;
            if u <= 0.04045 {
                u / 12.92
            } else {
                ((u + 0.055) / 1.055).powf(2.4)
            }
        };
        let (r, g, b) = (linear(c.0), linear(c.1), linear(c.2));
        let x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047;
        let y = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        let z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883;
        let f = |t: f64| {
            if t > 0.008856 {
                t.cbrt()
            } else {
                7.787 * t + 16.0 / 116.0
            }
        };
        [
            116.0 * f(y) - 16.0,
            500.0 * (f(x) - f(y)),
            200.0 * (f(y) - f(z)),
        ]
    }

    #[test]
    fn sixteen_series_get_sixteen_clearly_different_colours() {
        let colours: Vec<[f64; 3]> = (0..16).map(|i| lab(series_color(i))).collect();
        for (i, a) in colours.iter().enumerate() {
            for (j, b) in colours.iter().enumerate().skip(i + 1) {
                let delta = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(
                    delta >= 25.0,
                    "series {i} and {j} differ by only ΔE {delta:.1}"
                );
            }
        }
        // Chapter 7's "cgroup joined" and "lo up": the 1st and the 9th series.
        let rgb = |c: RGBColor| (c.0, c.1, c.2);
        assert_ne!(rgb(series_color(0)), rgb(series_color(8)));
        assert_eq!(rgb(series_color(16)), rgb(series_color(0)));
    }

    #[test]
    fn notes_wrap_at_word_boundaries_and_make_room() {
        let note = "word ".repeat(60);
        let lines = wrap(&note);
        assert!(lines.len() >= 2 && lines.iter().all(|l| l.chars().count() <= NOTE_CHARS));
        assert_eq!(lines.join(" ").split(' ').count(), 60);
        let keys = |names: &[&str]| -> Vec<Key> {
            names
                .iter()
                .map(|name| Key {
                    name: name.to_string(),
                    color: series_color(0),
                    mark: Mark::Line,
                })
                .collect()
        };
        assert_eq!(below_height(&[], None), 0);
        let three = keys(&["a", "b", "c"]);
        assert!(below_height(&three, Some("a note")) > below_height(&three, None));
    }

    #[test]
    fn a_legend_name_too_long_for_half_the_width_gets_a_row_of_its_own() {
        let key = |name: &str| Key {
            name: name.to_string(),
            color: series_color(0),
            mark: Mark::Block,
        };
        let short = [key("first chunk"), key("getting ready")];
        assert_eq!(key_columns(&short), 2);
        let long = [
            key("getting ready (process start; wasm: compile + instantiate)"),
            key("first chunk"),
        ];
        assert_eq!(key_columns(&long), 1);
        assert!(below_height(&long, None) > below_height(&short, None));
    }

    #[test]
    fn tick_labels_fit_their_size() {
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(450.0), "450");
        assert_eq!(tick_label(12.5), "12.5");
        assert_eq!(tick_label(2.0), "2");
        assert_eq!(tick_label(0.034), "0.034");
        assert_eq!(tick_label(0.00001234), "1.2e-5");
        assert_eq!(tick_label(2.5e9), "2.5e9");
    }
}
