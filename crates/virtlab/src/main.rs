//! The `virtlab` command: the notebooks' workloads from a terminal, one subcommand per chapter.

#[cfg(target_os = "linux")]
mod container_cli;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use virtlab::machine::Machine;
use virtlab::matmul::{self, Plan};
use virtlab::work::Work;
use virtlab::{Error, Result};
use virtlab::{peak, processes, tasks, threads};

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
    /// Chapter 1: run the work in N worker processes; prints "0: worker-1 pid 4242" lines as they come.
    Processes {
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        workers: usize,
        #[command(flatten)]
        work: WorkArgs,
        /// Print the timeline, worker reports and process-tree snapshot as JSON instead of lines.
        #[arg(long)]
        json: bool,
        /// Skip the process-tree snapshot (for timing runs).
        #[arg(long)]
        no_tree: bool,
        /// Make worker W (1-based) abort at iteration --crash-at, to see a crash reported.
        #[arg(long, value_name = "W", requires = "crash_at")]
        crash_worker: Option<usize>,
        #[arg(long, value_name = "I", requires = "crash_worker")]
        crash_at: Option<u32>,
    },
    /// Chapter 2: run the work on N threads of this one process; prints each thread's lines.
    Threads {
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        threads: usize,
        #[command(flatten)]
        work: WorkArgs,
        /// Print the timeline, threads and process snapshot as JSON instead of lines.
        #[arg(long)]
        json: bool,
        /// Skip the process snapshot (for timing runs).
        #[arg(long)]
        no_tree: bool,
        /// Make thread T (1-based) panic at iteration --panic-at, to see it reported.
        #[arg(long, value_name = "T", requires = "panic_at")]
        panic_thread: Option<usize>,
        #[arg(long, value_name = "I", requires = "panic_thread")]
        panic_at: Option<u32>,
    },
    /// Chapter 2: speed-up of a fixed CPU-bound job on 1 … N threads (std, rayon, Python threads).
    Scale {
        /// Largest thread count (counts above the CPU count show oversubscription).
        #[arg(long, allow_negative_numbers = true)]
        max_threads: Option<usize>,
        /// Size the job to take about this long on one thread.
        #[arg(long, default_value_t = 400, allow_negative_numbers = true)]
        single_thread_ms: u64,
        #[arg(long)]
        json: bool,
    },
    /// Chapter 2: spawn+join cost per thread (µs), one value per round, as JSON.
    ThreadCost {
        #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
        threads: usize,
        #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
        repeats: usize,
    },
    /// Chapter 3: run the work as N tokio tasks on one thread (the essay's One One One Two Two Two).
    Tasks {
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        tasks: usize,
        #[command(flatten)]
        work: WorkArgs,
        /// Report tasks still running this long after the start as timed out.
        #[arg(long, value_name = "MS", allow_negative_numbers = true)]
        timeout_ms: Option<u64>,
        /// Print the timeline, task statuses and thread counts as JSON instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Chapter 3: 1, 10, … N tasks that each sleep, beside as many OS threads as the machine allows.
    TasksScale {
        #[arg(long, default_value_t = 100_000, allow_negative_numbers = true)]
        max: usize,
        #[arg(long, default_value_t = 100, allow_negative_numbers = true)]
        sleep_ms: u64,
        /// Measure tasks only (no OS threads).
        #[arg(long)]
        tasks_only: bool,
        #[arg(long)]
        json: bool,
    },
    /// Chapter 4: multiply two n×n matrices on the CPU and/or the GPU, timed right.
    Matmul {
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
        /// Timed runs per size, after one warm-up.
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
    },
    /// Chapter 7: run the work in N containers (namespaces + a cgroup each), with limits.
    #[cfg(target_os = "linux")]
    Container(container_cli::ContainerArgs),
    /// Chapter 7: start → first line of a container beside a process, crun and runc; its steps.
    #[cfg(target_os = "linux")]
    ContainerCost(container_cli::CostArgs),
    /// One container's shim (started by `container`; not run by hand).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    Contain(container_cli::ContainArgs),
    /// The worker program that `processes` starts (one worker; not usually run by hand).
    Worker {
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
        #[cfg(target_os = "linux")]
        #[command(flatten)]
        container: container_cli::WorkerExtras,
    },
}

/// The shared workload's flags.
#[derive(clap::Args)]
struct WorkArgs {
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
    fn work(&self, name: &str) -> Result<Work> {
        Work::new(name, self.iterations, self.interval_ms)?.burning(self.burn_ms)
    }
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
        Command::Processes {
            workers,
            work,
            json,
            no_tree,
            crash_worker,
            crash_at,
        } => {
            let options = processes::Options {
                echo: !json,
                snapshot: !no_tree,
                crash: crash_worker.zip(crash_at),
            };
            let run = processes::run(&work.work("worker")?, workers, options)?;
            if json {
                println!("{}", to_json(&run)?);
            }
            Ok(())
        }
        #[cfg(target_os = "linux")]
        Command::Worker {
            name,
            work,
            parent_pid,
            crash_at,
            container,
        } => container_cli::worker(&work.work(&name)?, parent_pid, crash_at, container),
        #[cfg(not(target_os = "linux"))]
        Command::Worker {
            name,
            work,
            parent_pid,
            crash_at,
        } => processes::worker_main(&work.work(&name)?, parent_pid, crash_at, &mut |_| {
            String::new()
        }),
        #[cfg(target_os = "linux")]
        Command::Container(args) => container_cli::container(args),
        #[cfg(target_os = "linux")]
        Command::ContainerCost(args) => container_cli::container_cost(args),
        #[cfg(target_os = "linux")]
        Command::Contain(args) => container_cli::contain(args),
        Command::Threads {
            threads: count,
            work,
            json,
            no_tree,
            panic_thread,
            panic_at,
        } => {
            let options = threads::Options {
                echo: !json,
                snapshot: !no_tree,
                panic: panic_thread.zip(panic_at),
            };
            let run = threads::run(&work.work("thread")?, count, options)?;
            if json {
                println!("{}", to_json(&run)?);
            }
            Ok(())
        }
        Command::Tasks {
            tasks: count,
            work,
            timeout_ms,
            json,
        } => {
            if timeout_ms == Some(0) {
                return Err(Error::invalid(
                    "--timeout-ms",
                    0,
                    "give a timeout of at least 1 ms, or leave it out",
                ));
            }
            let options = tasks::Options {
                echo: !json,
                timeout: timeout_ms.map(Duration::from_millis),
                ..tasks::Options::default()
            };
            let run = tasks::run(&work.work("task")?, count, options)?;
            if json {
                println!("{}", to_json(&run)?);
            } else {
                print!("{}", run.table());
            }
            Ok(())
        }
        Command::TasksScale {
            max,
            sleep_ms,
            tasks_only,
            json,
        } => {
            let scaling = tasks::scale(max, sleep_ms, !tasks_only)?;
            if json {
                println!("{}", to_json(&scaling)?);
            } else {
                print!("{}", scaling.table());
            }
            Ok(())
        }
        Command::ThreadCost {
            threads: count,
            repeats,
        } => {
            let rounds = threads::spawn_join_cost(count, repeats)?;
            println!(
                "{}",
                to_json(&serde_json::json!({ "threads": count, "per_thread_us": rounds }))?
            );
            Ok(())
        }
        Command::Matmul {
            n,
            dtype,
            device,
            sweep,
            threads,
            repeats,
            json,
            out,
            die_with_parent,
        } => {
            if die_with_parent {
                processes::die_with_parent();
            }
            let sizes = if sweep.is_empty() { vec![n] } else { sweep };
            let mut plan = Plan::new(&sizes, dtype.parse()?, device.parse()?).repeats(repeats);
            if let Some(t) = threads {
                plan = plan.threads(t);
            }
            let run = matmul::sweep(&plan, |point| {
                if json {
                    eprintln!("{}", point.line());
                } else {
                    println!("{}", point.line());
                }
            })?;
            if let Some(path) = &out {
                run.save(path)?;
            }
            if json {
                println!("{}", to_json(&run)?);
            } else if let Some(why) = &run.gpu_skipped {
                println!("GPU skipped: {why}");
            }
            Ok(())
        }
        Command::Scale {
            max_threads,
            single_thread_ms,
            json,
        } => {
            let cpus = virtlab::machine::usable_cpus();
            let scaling = threads::scale(max_threads.unwrap_or(4 * cpus), single_thread_ms)?;
            if json {
                println!("{}", to_json(&scaling)?);
            } else {
                print!("{}", scaling.table());
                if let Err(why) = &scaling.python {
                    println!("Python threads: {why}");
                }
            }
            Ok(())
        }
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
        println!(
            "{}",
            to_json(&serde_json::json!({ "machine": machine, "peak": peak }))?
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

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::new(format!("JSON output failed: {e}"), "report this as a bug"))
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
