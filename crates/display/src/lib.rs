//! Inline display in notebook cells: one helper type per kind of output, and the charts
//! ([`plot`]: plotters → SVG + PNG). The lowest layer of the lab: it knows nothing of workers.
//!
//! evcxr shows a value that is the last expression of a cell by calling its `evcxr_display`
//! method, which prints `EVCXR_BEGIN_CONTENT <mime>` blocks on stdout. All blocks printed in one
//! cell become one output bundle, so a [`Figure`] carries SVG (crisp in Jupyter) and PNG (survives
//! viewers that strip SVG styles, such as GitHub's) side by side.

mod error;
mod file;
pub mod plot;

pub use error::{Error, Result};
pub use file::write_atomically;

use base64::Engine;
use std::fmt;

/// Prints one MIME bundle in evcxr's display protocol.
fn emit(parts: &[(&str, &str)]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for (mime, content) in parts {
        // A failed write to stdout means the kernel is gone; nothing useful is left to do.
        let _ = writeln!(
            out,
            "EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT"
        );
    }
    let _ = out.flush();
}

/// Escapes text for use inside HTML elements and attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A piece of HTML shown as rich output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Html(pub String);

impl Html {
    /// Shows this HTML as the cell's output in a notebook (evcxr calls it for a cell's last value).
    pub fn evcxr_display(&self) {
        emit(&[("text/html", &self.0)]);
    }
}

impl fmt::Display for Html {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A rendered plot: the same drawing as SVG and as PNG.
#[derive(Clone)]
pub struct Figure {
    title: String,
    svg: String,
    png: Vec<u8>,
}

impl Figure {
    pub(crate) fn new(title: String, svg: String, png: Vec<u8>) -> Self {
        Figure { title, svg, png }
    }

    /// The chart's title, e.g. `Matrix multiply throughput`; also the text a viewer without
    /// images shows, as `[plot: <title>]`.
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The drawing as SVG text: crisp at any zoom in Jupyter.
    pub fn svg(&self) -> &str {
        &self.svg
    }

    /// The same drawing as PNG bytes, for viewers that drop SVG styles (GitHub's, for one).
    pub fn png(&self) -> &[u8] {
        &self.png
    }

    /// Writes the PNG to `path`, replacing any file there only once the new one is complete.
    pub fn save_png(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        write_atomically(path.as_ref(), &self.png)
    }

    /// Writes the SVG to `path`, replacing any file there only once the new one is complete.
    pub fn save_svg(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        write_atomically(path.as_ref(), self.svg.as_bytes())
    }

    /// Shows the chart as the cell's output in a notebook: SVG and PNG in one bundle, so each
    /// viewer picks the one it draws best.
    pub fn evcxr_display(&self) {
        let png = base64::engine::general_purpose::STANDARD.encode(&self.png);
        let text = format!("[plot: {}]", self.title);
        emit(&[
            ("image/svg+xml", &self.svg),
            ("image/png", &png),
            ("text/plain", &text),
        ]);
    }
}

impl fmt::Debug for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Figure({:?}, {} B svg, {} B png)",
            self.title,
            self.svg.len(),
            self.png.len()
        )
    }
}

/// A table with a header row: HTML in a notebook, aligned text in a terminal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    caption: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// First column in a fixed-width font with its spaces kept (for tree indentation).
    monospace_first_column: bool,
}

impl Table {
    /// An empty table with a caption shown above it (`""` for none) and the column headings,
    /// e.g. `Table::new("Your machine", ["what", "value"])`.
    pub fn new<S: Into<String>>(
        caption: impl Into<String>,
        header: impl IntoIterator<Item = S>,
    ) -> Self {
        Table {
            caption: caption.into(),
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            monospace_first_column: false,
        }
    }

    /// Adds a row; missing cells are left empty and extra cells are kept.
    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// Shows the first column in a fixed-width font with its spaces kept, for indented trees.
    pub fn monospace_first_column(mut self) -> Self {
        self.monospace_first_column = true;
        self
    }

    /// The rows added so far, each a list of cells as text (the header row is not among them).
    pub fn rows(&self) -> &[Vec<String>] {
        &self.rows
    }

    /// The table as HTML: the caption in bold above it, every cell escaped.
    pub fn to_html(&self) -> Html {
        // The caption goes above the table, not in a <caption>: a long one would be wrapped to
        // the table's width.
        let mut html = String::from("<div class=\"virtlab\">");
        if !self.caption.is_empty() {
            html += &format!(
                "<p style=\"margin:0.2em 0\"><b>{}</b></p>",
                escape_html(&self.caption)
            );
        }
        html += "<table>";
        html += "<thead><tr>";
        for h in &self.header {
            html += &format!("<th style=\"text-align:left\">{}</th>", escape_html(h));
        }
        html += "</tr></thead><tbody>";
        for row in &self.rows {
            html += "<tr>";
            for (i, cell) in row.iter().enumerate() {
                if i == 0 && self.monospace_first_column {
                    let kept = escape_html(cell).replace(' ', "&nbsp;");
                    html +=
                        &format!("<td style=\"text-align:left;font-family:monospace\">{kept}</td>");
                } else if cell.contains("://") {
                    // A web address has no space to wrap at: without this it pushes its
                    // column, and the table, past the page's right edge.
                    html += &format!(
                        "<td style=\"text-align:left;overflow-wrap:anywhere\">{}</td>",
                        escape_html(cell)
                    );
                } else {
                    html += &format!("<td style=\"text-align:left\">{}</td>", escape_html(cell));
                }
            }
            html += "</tr>";
        }
        html += "</tbody></table></div>";
        Html(html)
    }

    /// Shows the table as HTML as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        if !self.caption.is_empty() {
            writeln!(f, "{}", self.caption)?;
        }
        let line = |f: &mut fmt::Formatter<'_>, row: &[String]| -> fmt::Result {
            let cells: Vec<String> = (0..columns)
                .map(|i| {
                    format!(
                        "{:<w$}",
                        row.get(i).map_or("", String::as_str),
                        w = widths[i]
                    )
                })
                .collect();
            writeln!(f, "{}", cells.join("  ").trim_end())
        };
        line(f, &self.header)?;
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        writeln!(f, "{}", rule.join("  "))?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_cells_and_caption() {
        let mut t = Table::new("a<b", ["name", "value"]);
        t.row(["<script>", "x & y"]);
        let html = t.to_html().0;
        assert!(html.contains("a&lt;b"));
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("x &amp; y"));
        assert!(!html.contains("<script>"));
    }

    #[test]
    fn a_web_address_may_wrap_anywhere_and_other_cells_at_spaces() {
        let mut t = Table::new("", ["product", "source"]);
        t.row(["Lambda", "the page, https://aws.amazon.com/lambda/pricing/"]);
        let html = t.to_html().0;
        assert!(
            html.contains("<td style=\"text-align:left\">Lambda</td>"),
            "{html}"
        );
        assert!(
            html.contains("overflow-wrap:anywhere\">the page, https://"),
            "{html}"
        );
    }

    #[test]
    fn text_table_aligns_columns() {
        let mut t = Table::new("", ["k", "value"]);
        t.row(["long key", "1"]).row(["k2", "22"]);
        let text = t.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "k         value");
        assert_eq!(lines[1], "--------  -----");
        assert_eq!(lines[2], "long key  1");
        assert_eq!(lines[3], "k2        22");
    }
}
