//! Chapters 1-3 from a terminal: the same work on processes, threads and tasks, through the one
//! executor; the worker program itself; chapter 2's scaling and chapter 3's sleeping tasks.

use super::{WorkArgs, print, print_json, print_run};
use std::time::Duration;
use virtlab::executor::{Cancel, Fault, Kind, Options, Runaway};
use virtlab::{Error, Result, processes, tasks, threads};

/// The options every run subcommand shares.
#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    work: WorkArgs,
    /// Print the run (timeline, unit reports, process tree) as JSON instead of lines and a table.
    #[arg(long)]
    pub json: bool,
    /// Skip the process-tree snapshot (for timing runs).
    #[arg(long)]
    no_tree: bool,
    /// Stop units still running this long after the start (reported as timed out).
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    timeout_ms: Option<u64>,
    /// Cancel unit U (1-based) after --cancel-after-ms.
    #[arg(long, value_name = "U", requires = "cancel_after_ms")]
    cancel: Option<usize>,
    #[arg(long, value_name = "MS", requires = "cancel")]
    cancel_after_ms: Option<u64>,
    /// Make unit U (1-based) fail on purpose at iteration --fault-at (a process aborts, a
    /// thread or task panics).
    #[arg(long, value_name = "U", requires = "fault_at")]
    fault_unit: Option<usize>,
    #[arg(long, value_name = "I", requires = "fault_unit")]
    fault_at: Option<u32>,
    /// Make unit U (1-based) run away on purpose from iteration --runaway-at (default 1): its
    /// guest loops for ever, and only --timeout-ms or --cancel stops it (VMs, wasm instances).
    #[arg(long, value_name = "U")]
    runaway: Option<usize>,
    #[arg(long, value_name = "I", default_value_t = 1, requires = "runaway")]
    runaway_at: u32,
    /// Keep the other units running when one fails (by default they are stopped).
    #[arg(long)]
    keep_going: bool,
}

impl RunArgs {
    /// The work these flags describe, under `name`.
    pub fn work(&self, name: &str) -> Result<virtlab::work::Work> {
        self.work.work(name)
    }

    /// The executor's options these flags describe.
    pub fn options(&self) -> Result<Options> {
        if self.timeout_ms == Some(0) {
            return Err(Error::invalid(
                "--timeout-ms",
                0,
                "give a timeout of at least 1 ms, or leave it out",
            ));
        }
        Ok(Options {
            echo: !self.json,
            snapshot: !self.no_tree,
            deadline: self.timeout_ms.map(Duration::from_millis),
            cancel: self
                .cancel
                .zip(self.cancel_after_ms)
                .map(|(unit, ms)| Cancel {
                    unit,
                    after: Duration::from_millis(ms),
                }),
            fault: self
                .fault_unit
                .zip(self.fault_at)
                .map(|(unit, at)| Fault { unit, at }),
            runaway: self.runaway.map(|unit| Runaway {
                unit,
                at: self.runaway_at,
            }),
            fail_fast: !self.keep_going,
        })
    }
}

/// Runs the work named `name` as `units` units of `kind` with these flags, and prints the run:
/// for kinds whose handler lives in another chapter's module (VMs, wasm instances).
pub fn run_kind(kind: &mut impl Kind, name: &str, units: usize, args: &RunArgs) -> Result<()> {
    let run = virtlab::executor::run(kind, &args.work.work(name)?, units, args.options()?)?;
    print_run(&run, args.json)
}

/// `virtlab processes`.
pub fn processes(workers: usize, args: &RunArgs) -> Result<()> {
    let run = processes::run(&args.work.work("worker")?, workers, args.options()?)?;
    print_run(&run, args.json)
}

/// `virtlab threads`.
pub fn threads(count: usize, args: &RunArgs) -> Result<()> {
    let run = threads::run(&args.work.work("thread")?, count, args.options()?)?;
    print_run(&run, args.json)
}

/// `virtlab tasks`.
pub fn tasks(count: usize, args: &RunArgs) -> Result<()> {
    let run = tasks::run(&args.work.work("task")?, count, args.options()?)?;
    print_run(&run, args.json)
}

/// The worker program's flags (`virtlab worker`, started by the process and container kinds).
#[derive(clap::Args)]
pub struct WorkerArgs {
    #[arg(long, default_value = "worker")]
    name: String,
    #[command(flatten)]
    work: WorkArgs,
    /// Stop if this process is no longer our parent.
    #[arg(long)]
    parent_pid: Option<u32>,
    /// Abort at this iteration (a crash, on purpose).
    #[arg(long)]
    crash_at: Option<u32>,
    /// Panic at this iteration (on purpose: a container's pid 1 runs this code without an
    /// exec, and a panic must end it as it ends a program).
    #[arg(long, hide = true)]
    panic_at: Option<u32>,
    #[cfg(target_os = "linux")]
    #[command(flatten)]
    container: super::container::WorkerExtras,
}

impl WorkerArgs {
    /// The same worker as pid 1 of a container whose host pid is `host_pid`.
    #[cfg(target_os = "linux")]
    pub fn in_container(self, host_pid: u32) -> WorkerArgs {
        WorkerArgs {
            container: self.container.with_host_pid(host_pid),
            ..self
        }
    }
}

/// `virtlab worker`: one worker, its lines on stdout.
pub fn worker(args: WorkerArgs) -> Result<()> {
    #[cfg(target_os = "linux")]
    let mut extra = super::container::worker_extras(args.container, &args.name)?;
    #[cfg(not(target_os = "linux"))]
    let mut extra = |_| String::new();
    let panic_at = args.panic_at;
    let mut hook = move |i| {
        if panic_at == Some(i) {
            panic!("virtlab worker: a panic on purpose at iteration {i}");
        }
        extra(i)
    };
    processes::worker_main(
        &args.work.work(&args.name)?,
        args.parent_pid,
        args.crash_at,
        &mut hook,
    )
}

/// `virtlab scale`.
pub fn scale(max_threads: Option<usize>, single_thread_ms: u64, json: bool) -> Result<()> {
    let cpus = virtlab::machine::usable_cpus();
    let scaling = threads::scale(max_threads.unwrap_or(4 * cpus), single_thread_ms)?;
    print(&scaling, json, threads::Scaling::table)
}

/// `virtlab thread-cost`: spawn+join µs per thread, one value per round, as JSON.
pub fn thread_cost(count: usize, repeats: usize) -> Result<()> {
    let rounds = threads::spawn_join_cost(count, repeats)?;
    print_json(&serde_json::json!({ "threads": count, "per_thread_us": rounds }))
}

/// `virtlab tasks-scale`.
pub fn tasks_scale(max: usize, sleep_ms: u64, tasks_only: bool, json: bool) -> Result<()> {
    let scaling = tasks::scale(max, sleep_ms, !tasks_only)?;
    print(&scaling, json, tasks::TaskScaling::table)
}
