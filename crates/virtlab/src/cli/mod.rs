//! The `virtlab` command's parts: one module per chapter's subcommands, and the one way every
//! subcommand prints its result — a table for people, or `--json` for programs.
//!
//! `--json` prints the result's serde form, pretty-printed, on stdout (live lines and progress go
//! to stderr then, or are off). What each subcommand prints is the `Serialize` type its handler
//! names: [`virtlab::executor::Run`] for `processes`, `threads`, `tasks`, `container` and `vm`;
//! [`virtlab::cost::Ladder`] for `ladder`; [`virtlab::threads::Scaling`] for `scale`;
//! [`virtlab::tasks::TaskScaling`] for `tasks-scale`; [`virtlab::matmul::Run`] for `matmul`;
//! [`virtlab::langvm::Comparison`] for `runtimes` ([`virtlab::langvm::Warmup`] with `--warmup`);
//! `{"machine": Machine, "peak": Peak | null}` for `machine`; `cli::cluster`'s reports for `mpi`,
//! `pingpong`, `slurm`, [`scaling::ScalingReport`] for `scaling`, and [`virtlab::cluster::ClusterState`] for `cluster up`. `scripts/bench`
//! reads these.

pub mod cloud;
#[cfg(target_os = "linux")]
pub mod cluster;
#[cfg(target_os = "linux")]
pub mod container;
pub mod ladder;
pub mod langvm;
pub mod machine;
pub mod matmul;
#[cfg(target_os = "linux")]
pub mod scaling;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub mod vm;
pub mod workers;

use serde::Serialize;
use virtlab::display::Table;
use virtlab::executor::Run;
use virtlab::work::Work;
use virtlab::{Error, Result};

/// Prints `value` as JSON, or its table.
pub fn print<T: Serialize>(value: &T, json: bool, table: impl FnOnce(&T) -> Table) -> Result<()> {
    if json {
        print_json(value)
    } else {
        print!("{}", table(value));
        Ok(())
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::bug(format!("JSON output failed: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Prints a run (its lines were echoed live when not JSON), then fails if a unit failed, so
/// the exit status says so.
pub fn print_run<D: virtlab::executor::Detail>(run: &Run<D>, json: bool) -> Result<()> {
    print(run, json, Run::table)?;
    run.check().map(drop)
}

/// The shared workload's flags.
#[derive(clap::Args)]
pub struct WorkArgs {
    /// Iterations per worker.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    iterations: u32,
    /// Pause between iterations, in milliseconds.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    interval_ms: u64,
    /// CPU to burn in each iteration, in milliseconds.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    burn_ms: u64,
}

impl WorkArgs {
    /// The work these flags describe, under `name`.
    pub fn work(&self, name: &str) -> Result<Work> {
        Work::new(name, self.iterations, self.interval_ms)?.burning(self.burn_ms)
    }
}
