//! The `virtlab` command: the notebooks' workloads from a terminal, one subcommand per idea.
//! Handlers live in `cli/`, one module per chapter; every result prints as a table, or as JSON
//! with `--json` (see `cli` for what each prints).

mod cli;

use clap::{Parser, Subcommand};
use cli::workers::{RunArgs, WorkerArgs};
use std::path::PathBuf;
use std::process::ExitCode;
use virtlab::release::ERRORS_ENV;

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
        run: RunArgs,
    },
    /// Chapter 2: run the work on N threads of this one process; prints each thread's lines.
    Threads {
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        threads: usize,
        #[command(flatten)]
        run: RunArgs,
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
        run: RunArgs,
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
    /// The cost ladder: time from asking to running and memory per unit, for each kind of worker.
    Ladder {
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "task,thread,process",
            help = format!("Kinds to measure, comma-separated: {}", virtlab::kinds::rungs().join(", "))
        )]
        kinds: Vec<String>,
        /// Units alive together, comma-separated (three or more to fit what one more costs).
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1,4,16,64",
            allow_negative_numbers = true
        )]
        counts: Vec<usize>,
        /// Fresh probe processes per count (medians are reported).
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        rounds: usize,
        #[arg(long)]
        json: bool,
    },
    /// One round of the cost ladder in this fresh process, as JSON (run by `ladder`).
    #[command(hide = true)]
    LadderProbe {
        #[arg(long, required_unless_present = "rungs")]
        kind: Option<String>,
        #[arg(long, allow_negative_numbers = true, required_unless_present = "rungs")]
        count: Option<usize>,
        /// Print the ladder's rungs, cheapest first, as JSON instead.
        #[arg(long)]
        rungs: bool,
    },
    /// Chapter 4: multiply two n×n matrices on the CPU and/or the GPU, timed right.
    Matmul(cli::matmul::MatmulArgs),
    /// Chapter 5: run the work as N WebAssembly instances (wasmi, fuel-metered), one thread each;
    /// --fault-unit makes one read outside its memory (a trap), --runaway loops one for ever.
    Wasm {
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        instances: usize,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Chapter 5: the same job natively and on WebAssembly, CPython, the JVM and V8: hit counts,
    /// speed against native, start-up (--warmup C: time per chunk as each runtime warms up).
    Runtimes(cli::langvm::RuntimesArgs),
    /// Chapter 7: run the work in N containers (namespaces + a cgroup each), with limits.
    /// --fault-unit C --fault-at I makes container C's pid 1 abort; --keep-going keeps the
    /// others running when one fails (an OOM kill, say).
    #[cfg(target_os = "linux")]
    Container(cli::container::ContainerArgs),
    /// Chapter 7: start → first line of a container beside a process, crun and runc; its steps.
    #[cfg(target_os = "linux")]
    ContainerCost(cli::container::CostArgs),
    /// A container runtime run with a hybrid layout's cgroup2 hidden (for `container-cost`).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    HideCgroup2(cli::container::HideArgs),
    /// Chapter 8: a cluster of namespace nodes that stays up: `cluster up|status|down`.
    #[cfg(target_os = "linux")]
    #[command(subcommand)]
    Cluster(cli::cluster::ClusterCommand),
    /// The keeper `cluster up` starts detached (holds the cluster until SIGTERM).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    ClusterKeeper(cli::cluster::KeeperArgs),
    /// Chapter 8: MPI ranks across a cluster of namespace nodes (or the hosts of --hostfile),
    /// each a unit of the executor; prints "0: rank-2 on node-2 pid 7 (host pid 4242)" lines as they come. --kill-rank R
    /// SIGKILLs rank R from the host on purpose.
    #[cfg(target_os = "linux")]
    Mpi(cli::cluster::MpiArgs),
    /// Chapter 8: ping-pong latency and bandwidth, two ranks on one node vs on two nodes.
    #[cfg(target_os = "linux")]
    Pingpong(cli::cluster::PingpongArgs),
    /// Chapter 8: Slurm on a cluster: sinfo, a job by srun, srun's overhead, a queue.
    #[cfg(target_os = "linux")]
    Slurm(cli::cluster::SlurmArgs),
    /// Chapter 8: the parallel hit count's strong (--strong) or weak (--weak) scaling over
    /// --ranks on a cluster: compute, communication, MPI_Init, efficiency, the machine's load.
    #[cfg(target_os = "linux")]
    Scaling(cli::scaling::ScalingArgs),
    /// Chapter 9: a seeded trace served by each policy (fixed, autoscale, per-request) on
    /// process or container instances: latency, cold starts, instances alive, resources used.
    #[cfg(target_os = "linux")]
    Serve(cli::cloud::ServeArgs),
    /// Chapter 9: a `serve --json` run billed by every product that sells each policy, for the
    /// run and a month at its rate, with the prices' sources and dates.
    #[cfg(target_os = "linux")]
    Bill(cli::cloud::BillArgs),
    /// Chapter 9: noisy neighbours. Tenants sold a vCPU each on this machine's cores (1×-4×
    /// overcommit), one greedy: a serving victim's p99 and CPU wait, with and without quotas.
    #[cfg(target_os = "linux")]
    Neighbours(cli::cloud::NeighboursArgs),
    /// Chapter 9: one job file (data/job.json shows the form) deployed unchanged on each
    /// backend through the one executor: start, isolation, memory per instance, limits taken
    /// and what a cloud sells it as, one row each.
    #[cfg(target_os = "linux")]
    Deploy(cli::cloud::DeployArgs),
    // Chapter 6 drives KVM with x86-64 guest code.
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    #[command(flatten)]
    Vm(cli::vm::VmCommand),
    // `worker` and the hidden `contain`.
    #[command(flatten)]
    Started(Started),
}

/// The programs `virtlab` starts itself, parsed without the other subcommands (`StartedCli`):
/// the whole command line's parser took 0.27-0.44 ms of each worker's and container shim's
/// start, this one 0.16-0.20 ms (in fresh processes, on the 2-vCPU EPYC).
#[derive(Subcommand)]
enum Started {
    /// The worker program that `processes` starts (one worker; not usually run by hand).
    Worker(WorkerArgs),
    /// One container's shim (started by `container`; not run by hand).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    Contain(cli::container::ContainArgs),
    /// One chapter-9 serving instance (started by `serve`; not run by hand).
    #[cfg(target_os = "linux")]
    #[command(hide = true)]
    Instance(cli::cloud::InstanceArgs),
    /// Chapter 9: which layers this program runs in (container, VM) and the instance it was
    /// given, each verdict with its evidence; `--everywhere` asks natively and in a container.
    #[cfg(target_os = "linux")]
    Whereami(cli::cloud::WhereamiArgs),
}

impl Started {
    /// The subcommands this parser knows.
    const NAMES: [&str; 4] = ["worker", "contain", "instance", "whereami"];
}

#[derive(Parser)]
#[command(name = "virtlab")]
struct StartedCli {
    #[command(subcommand)]
    command: Started,
}

fn main() -> ExitCode {
    let started = std::env::args_os()
        .nth(1)
        .is_some_and(|word| Started::NAMES.iter().any(|name| word == *name));
    let command = if started {
        Command::Started(parsed::<StartedCli>().command)
    } else {
        parsed::<Cli>().command
    };
    ExitCode::from(exit_code(run(command)))
}

/// The command line, parsed; clap's own error otherwise, with the fix it cannot give for a
/// negative number where a count is expected ("invalid digit found in string").
fn parsed<C: Parser>() -> C {
    C::try_parse().unwrap_or_else(|e| {
        use clap::error::{ContextKind, ContextValue, ErrorKind};
        let negative = e.kind() == ErrorKind::ValueValidation
            && matches!(e.get(ContextKind::InvalidValue),
                        Some(ContextValue::String(value)) if value.starts_with('-'));
        if negative {
            let _ = e.print();
            eprintln!(
                "Fix: that flag counts something (or sets a size or a time): give 0 or more; \
                 `--help` after the subcommand says what each flag takes"
            );
            std::process::exit(2);
        }
        e.exit()
    })
}

/// 0, or 1 after printing the error.
fn exit_code(result: virtlab::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            // A parent that started us reads the error as data; a person reads the text.
            if std::env::var_os(ERRORS_ENV).is_some_and(|v| v == "json") {
                eprintln!("{}", virtlab::protocol::error_line(&e));
            } else {
                eprintln!("{e}");
            }
            1
        }
    }
}

/// A container's shim reads its `virtlab worker …` command line here; pid 1, which the shim
/// clones, runs it (the program is already loaded: one program start fewer than exec'ing it
/// again). Only `worker` and chapter 9's `instance` and `whereami` are run this way.
#[cfg(target_os = "linux")]
fn worker_in_container(args: &[String]) -> virtlab::container::init::PreparedWorker {
    let words = std::iter::once("virtlab").chain(args.iter().map(String::as_str));
    match StartedCli::try_parse_from(words).map(|cli| cli.command) {
        Ok(Started::Worker(args)) => Box::new(move |host_pid| {
            exit_code(cli::workers::worker(args.in_container(host_pid))).into()
        }),
        Ok(Started::Instance(args)) => {
            Box::new(move |_| exit_code(cli::cloud::instance(args)).into())
        }
        Ok(Started::Whereami(args)) => {
            Box::new(move |_| exit_code(cli::cloud::whereami(args)).into())
        }
        Ok(_) => Box::new(|_| {
            exit_code(Err(virtlab::Error::new(
                "a container runs only `virtlab worker`, `virtlab instance` or `virtlab whereami`",
                "start containers through `virtlab container` or the chapter-7 notebook",
            )))
            .into()
        }),
        Err(e) => Box::new(move |_| {
            let _ = e.print();
            e.exit_code()
        }),
    }
}

fn run(command: Command) -> virtlab::Result<()> {
    match command {
        Command::Machine {
            json,
            peak,
            peak_ms,
            plot,
        } => cli::machine::machine(
            json,
            peak || peak_ms.is_some() || plot.is_some(),
            peak_ms,
            plot,
        ),
        Command::Processes { workers, run } => cli::workers::processes(workers, &run),
        Command::Threads { threads, run } => cli::workers::threads(threads, &run),
        Command::Tasks { tasks, run } => cli::workers::tasks(tasks, &run),
        Command::Wasm { instances, run } => cli::workers::run_kind(
            &mut virtlab::langvm::instance::WasmInstances::new()?,
            "wasm",
            instances,
            &run,
        ),
        Command::Started(Started::Worker(args)) => cli::workers::worker(args),
        #[cfg(target_os = "linux")]
        Command::Container(args) => cli::container::container(args),
        #[cfg(target_os = "linux")]
        Command::ContainerCost(args) => cli::container::container_cost(args),
        #[cfg(target_os = "linux")]
        Command::Started(Started::Contain(args)) => {
            cli::container::contain(args, worker_in_container)
        }
        #[cfg(target_os = "linux")]
        Command::HideCgroup2(args) => cli::container::hide_cgroup2(args),
        #[cfg(target_os = "linux")]
        Command::Serve(args) => cli::cloud::serve(args),
        #[cfg(target_os = "linux")]
        Command::Bill(args) => cli::cloud::bill(args),
        #[cfg(target_os = "linux")]
        Command::Neighbours(args) => cli::cloud::neighbours(args),
        #[cfg(target_os = "linux")]
        Command::Deploy(args) => cli::cloud::deploy(args),
        #[cfg(target_os = "linux")]
        Command::Started(Started::Instance(args)) => cli::cloud::instance(args),
        #[cfg(target_os = "linux")]
        Command::Started(Started::Whereami(args)) => cli::cloud::whereami(args),
        Command::Scale {
            max_threads,
            single_thread_ms,
            json,
        } => cli::workers::scale(max_threads, single_thread_ms, json),
        Command::ThreadCost { threads, repeats } => cli::workers::thread_cost(threads, repeats),
        Command::TasksScale {
            max,
            sleep_ms,
            tasks_only,
            json,
        } => cli::workers::tasks_scale(max, sleep_ms, tasks_only, json),
        Command::Ladder {
            kinds,
            counts,
            rounds,
            json,
        } => cli::ladder::ladder(&kinds, &counts, rounds, json),
        Command::LadderProbe { kind, count, rungs } => match (kind, count) {
            (Some(kind), Some(count)) if !rungs => cli::ladder::probe(&kind, count),
            _ => cli::ladder::rungs(),
        },
        Command::Matmul(args) => cli::matmul::matmul(args),
        Command::Runtimes(args) => cli::langvm::runtimes(args),
        #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
        Command::Vm(command) => cli::vm::run(command),
        #[cfg(target_os = "linux")]
        Command::Cluster(command) => cli::cluster::cluster(command),
        #[cfg(target_os = "linux")]
        Command::ClusterKeeper(args) => cli::cluster::keeper(args),
        #[cfg(target_os = "linux")]
        Command::Mpi(args) => cli::cluster::mpi(args),
        #[cfg(target_os = "linux")]
        Command::Pingpong(args) => cli::cluster::pingpong(args),
        #[cfg(target_os = "linux")]
        Command::Slurm(args) => cli::cluster::slurm(args),
        #[cfg(target_os = "linux")]
        Command::Scaling(args) => cli::scaling::scaling(args),
    }
}
