//! Chapter 0 from a terminal: the machine's inventory and its measured FMA peak.

use super::print_json;
use std::path::{Path, PathBuf};
use virtlab::machine::Machine;
use virtlab::{Error, Result, peak};

/// `virtlab machine`.
pub fn machine(
    json: bool,
    measure_peak: bool,
    peak_ms: Option<u64>,
    plot: Option<PathBuf>,
) -> Result<()> {
    if let Some(path) = &plot {
        check_plot_path(path)?;
    }
    let machine = Machine::detect();
    let peak = if measure_peak {
        let peak = peak::measure(peak_ms.unwrap_or(200))?;
        peak.save()?;
        Some(peak)
    } else {
        None
    };
    if let (Some(path), Some(peak)) = (&plot, &peak) {
        let figure = peak.plot()?;
        if path.extension().is_some_and(|e| e == "svg") {
            figure.save_svg(path)?
        } else {
            figure.save_png(path)?
        }
    }
    if json {
        return print_json(&serde_json::json!({ "machine": machine, "peak": peak }));
    }
    print!("{}", machine.table());
    if let Some(peak) = &peak {
        println!();
        print!("{}", peak.table());
    }
    Ok(())
}

/// Refuses a plot path we would fail to write, before spending time on measurements.
fn check_plot_path(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("png" | "svg") => Ok(()),
        _ => Err(Error::invalid(
            "the plot file",
            format!("'{}'", path.display()),
            "name a file ending in .png or .svg",
        )),
    }
}
