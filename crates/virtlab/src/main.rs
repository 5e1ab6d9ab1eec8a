//! The `virtlab` command: the notebooks' workloads from a terminal, one subcommand per chapter.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use virtlab::machine::Machine;
use virtlab::peak;
use virtlab::{Error, Result};

#[derive(Parser)]
#[command(
    name = "virtlab",
    version,
    about = "See how a computer shares its work: processes, threads, tasks and the GPU, measured live."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chapter 0: what this machine offers (CPUs, limits, memory, hypervisor, GPU) and its FMA peak.
    Machine {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Also measure the floating-point peak (f32, f64; 1 … all CPUs) and save it for later chapters.
        #[arg(long)]
        peak: bool,
        /// Milliseconds per peak measurement run (10–5000); implies --peak.
        #[arg(long, value_name = "MS", allow_negative_numbers = true)]
        peak_ms: Option<u64>,
        /// Write the peak plot to FILE (.png or .svg); implies --peak.
        #[arg(long, value_name = "FILE")]
        plot: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Machine {
            json,
            peak,
            peak_ms,
            plot,
        } => machine(
            json,
            peak || peak_ms.is_some() || plot.is_some(),
            peak_ms,
            plot,
        ),
    }
}

fn machine(
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
        let value = serde_json::json!({ "machine": machine, "peak": peak });
        println!(
            "{}",
            serde_json::to_string_pretty(&value).map_err(|e| Error::new(
                format!("JSON output failed: {e}"),
                "report this as a bug"
            ))?
        );
    } else {
        print!("{}", machine.table());
        if let Some(peak) = &peak {
            println!();
            print!("{}", peak.table());
        }
    }
    Ok(())
}

/// Refuses a plot path we would fail to write, before spending time on measurements.
fn check_plot_path(path: &std::path::Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("png" | "svg") => Ok(()),
        _ => Err(Error::invalid(
            "the plot file",
            format!("'{}'", path.display()),
            "name a file ending in .png or .svg",
        )),
    }
}
