//! Chapter 4 from a terminal: n×n matrix products on the CPU and the GPU, a line per size.

use super::print_json;
use std::path::PathBuf;
use virtlab::matmul::{self, Plan};
use virtlab::{Result, release};

/// What `virtlab matmul` was asked for.
#[derive(clap::Args)]
pub struct MatmulArgs {
    /// Matrix size n (when --sweep is not given).
    #[arg(long, default_value_t = 4096, allow_negative_numbers = true)]
    n: usize,
    /// Element type: f64, f32, tf32 or bf16 (the last two on the GPU only).
    #[arg(long, default_value = "f64")]
    dtype: String,
    /// Where to multiply: cpu, gpu or both (both skips the GPU, saying why, when there is none).
    #[arg(long, default_value = "both")]
    device: String,
    /// Sizes to measure one after the other, comma-separated (e.g. 256,512,1024).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    sweep: Vec<usize>,
    /// CPU threads (default: every usable CPU).
    #[arg(long, allow_negative_numbers = true)]
    threads: Option<usize>,
    /// Timed runs per size, after the warm-up (on the CPU a quarter of a second of products).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    repeats: usize,
    /// Print the whole run as JSON (device, date, versions, every run); progress goes to stderr.
    #[arg(long)]
    json: bool,
    /// Also save the run as JSON to this file (written whole or not at all).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Stop when the program that started this one dies (set by the notebooks).
    #[arg(long, hide = true)]
    die_with_parent: bool,
}

/// `virtlab matmul`.
pub fn matmul(args: MatmulArgs) -> Result<()> {
    if args.die_with_parent {
        release::die_with_parent();
    }
    let sizes = if args.sweep.is_empty() {
        vec![args.n]
    } else {
        args.sweep
    };
    let mut plan =
        Plan::new(&sizes, args.dtype.parse()?, args.device.parse()?).repeats(args.repeats);
    if let Some(t) = args.threads {
        plan = plan.threads(t);
    }
    let json = args.json;
    let run = matmul::sweep(&plan, |point| {
        if json {
            eprintln!("{}", point.line());
        } else {
            println!("{}", point.line());
        }
    })?;
    if let Some(path) = &args.out {
        run.save(path)?;
    }
    if json {
        print_json(&run)?;
    } else if let Some(why) = &run.gpu_skipped {
        println!("GPU skipped: {why}");
    }
    Ok(())
}
