//! Charts drawn with plotters, rendered once as SVG and once as PNG into a [`Figure`].
//!
//! Text is drawn with the DejaVu Sans font compiled into the crate (plotters' `ab_glyph`
//! feature), so neither build nor run needs system font libraries. Each chart kind implements
//! [`Chart`]; [`render`] draws it on both backends.

mod lanes;
mod line;

pub use lanes::LaneChart;
pub use line::LineChart;

use crate::display::Figure;
use crate::{Error, Result};
use plotters::coord::Shift;
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
