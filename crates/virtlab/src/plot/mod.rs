//! Charts drawn with plotters, rendered once as SVG and once as PNG into a [`Figure`].
//!
//! Text is drawn with the DejaVu Sans font compiled into the crate (plotters' `ab_glyph`
//! feature), so neither build nor run needs system font libraries. Each chart kind implements
//! [`Chart`]; [`render`] draws it on both backends.

mod bars;
mod lanes;
mod line;

pub use bars::BarChart;
pub use lanes::LaneChart;
pub use line::LineChart;

use crate::display::Figure;
use crate::{Error, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use std::sync::Once;

const WIDTH: u32 = 760;
const FONT: &str = "sans-serif";

/// Colours picked to stay distinct for common colour-vision deficiencies (Okabe–Ito).
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

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

/// The axes of a chart with one row per label (the first at the top) over x from 0 to `x_end`:
/// white background, caption, mesh and row labels drawn. Row i sits at y = [`row_y`].
fn rows_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    labels: &[&str],
    x_end: f64,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
    let fail = |e: &dyn std::fmt::Display| drawing_failed(title, e);
    let n = labels.len();
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u32;
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size((longest * 8 + 20).min(380))
        .build_cartesian_2d(0.0..x_end, -0.5..n as f64 - 0.5)
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
        .x_label_formatter(&|v| tick_label(*v))
        .x_desc(x_label)
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| fail(&e))?;
    Ok(chart)
}

/// The y of row `i` of `n` in a [`rows_chart`].
fn row_y(n: usize, i: usize) -> f64 {
    (n - 1 - i) as f64
}

/// The series' legend, in the lower right, the same on every chart.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    title: &str,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .label_font((FONT, 13))
        .draw()
        .map_err(|e| drawing_failed(title, &e))
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
