//! Chapter 5 from a terminal: the same job natively and on language VMs (`virtlab runtimes`):
//! hit counts, speed against native and start-up; with `--warmup C`, C chunks one after another
//! in each runtime.

use super::{print, print_json};
use virtlab::langvm::{Comparison, Plan, Runtime, Warmup};
use virtlab::{Result, release};

/// What `virtlab runtimes` was asked for.
#[derive(clap::Args)]
pub struct RuntimesArgs {
    /// Samples per run of the job (per chunk with --warmup).
    #[arg(long, default_value_t = 200_000, allow_negative_numbers = true)]
    samples: u64,
    /// Runtimes, comma-separated: native, wasmi, wasmtime, python, java (JIT and -Xint),
    /// java-xint, node (wasm and JavaScript), node-wasm, node-js, or all.
    #[arg(long, default_value = "all")]
    runtimes: String,
    /// Timed runs per runtime (the median is shown).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    repeats: usize,
    /// The random generator's seed (every runtime gets the same).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Warm-up instead: run the job as this many chunks of --samples, one after another in one
    /// instance of each runtime, and print the time of each.
    #[arg(long, value_name = "CHUNKS", allow_negative_numbers = true)]
    warmup: Option<usize>,
    /// Print the whole result as JSON.
    #[arg(long)]
    json: bool,
    /// Stop when the program that started this one dies (set by the notebooks).
    #[arg(long, hide = true)]
    die_with_parent: bool,
}

/// `virtlab runtimes`.
pub fn runtimes(args: RuntimesArgs) -> Result<()> {
    if args.die_with_parent {
        release::die_with_parent();
    }
    let repeats = args.warmup.unwrap_or(args.repeats);
    let mut plan =
        Plan::new(args.samples, repeats)?.runtimes(&Runtime::parse_list(&args.runtimes)?);
    plan.seed = args.seed;
    if args.warmup.is_some() {
        return print(&Warmup::measure(&plan)?, args.json, Warmup::table);
    }
    let comparison = Comparison::measure(&plan)?;
    if args.json {
        print_json(&comparison)?;
    } else {
        print!("{}\n{}", comparison.hits_table(), comparison.table());
    }
    // Different hit counts are a failure, after they were shown.
    comparison.check()
}
