//! Chapter 7's subcommands: `container` (N containers through the shared executor, live lines,
//! limits; prints its [`virtlab::executor::Run`] like every run command), `container-cost`
//! ([`virtlab::container::cost::Costs`]), the hidden `contain` (the shim a container starts as)
//! and the worker's container flags.

use clap::Args;
use std::path::PathBuf;
use virtlab::container::init::{self, Shim, WorkerMain};
use virtlab::container::kind::{Containers, WorkerFlags};
use virtlab::container::probe::Probe;
use virtlab::container::support::Support;
use virtlab::container::worker::{Extras, FORK_BOMB_CAP};
use virtlab::container::{Limits, cost, runtimes};
use virtlab::release::ERRORS_ENV;
use virtlab::{Error, Result};

/// `virtlab container`'s flags.
#[derive(Args)]
pub struct ContainerArgs {
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    containers: usize,
    /// CPU quota per container, in CPUs (0.5 = half of one CPU).
    #[arg(long, allow_hyphen_values = true)]
    cpu: Option<String>,
    /// Memory limit per container, with a unit (64MiB, 1GiB).
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Most processes per container.
    #[arg(long, allow_hyphen_values = true)]
    pids: Option<String>,
    /// Print what each container sees beside what this process sees.
    #[arg(long)]
    probe: bool,
    /// Each container allocates this many MiB more per iteration (to meet its memory limit).
    #[arg(long, value_name = "MIB", allow_negative_numbers = true)]
    allocate_mib_per_iteration: Option<u32>,
    /// Each container forks until its pids limit stops it (needs --pids).
    #[arg(long)]
    fork_bomb: bool,
    /// Print what this machine allows a container, and stop.
    #[arg(long)]
    support: bool,
    #[command(flatten)]
    run: super::workers::RunArgs,
}

/// `virtlab container-cost`'s flags.
#[derive(Args)]
pub struct CostArgs {
    /// Starts measured per kind (process, container, crun, runc).
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    repeats: usize,
    /// Leave out crun and runc.
    #[arg(long)]
    no_runtimes: bool,
    /// Memory limit of the container measured with a cgroup, with a unit (64MiB, 1GiB).
    #[arg(long, default_value = "256MiB", allow_hyphen_values = true)]
    memory: String,
    /// Most processes in the container measured with a cgroup.
    #[arg(long, default_value = "64", allow_hyphen_values = true)]
    pids: String,
    /// Stop when the program that started this one dies (set by the notebooks).
    #[arg(long, hide = true)]
    die_with_parent: bool,
    #[arg(long)]
    json: bool,
}

/// The hidden `contain` subcommand: the shim of one container.
#[derive(Args)]
pub struct ContainArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    hostname: String,
    #[arg(long = "cgroup")]
    cgroups: Vec<PathBuf>,
    #[arg(long)]
    parent_pid: Option<u32>,
    #[arg(long)]
    no_user_namespace: bool,
    /// Print the set-up steps' times and how the container ended as data lines.
    #[arg(long)]
    report: bool,
    /// Wait for "go" on stdin (the cgroup is made) before cloning pid 1.
    #[arg(long)]
    prepared_on_stdin: bool,
    /// The worker's command line after the program: `worker --name …`.
    #[arg(last = true, required = true)]
    worker: Vec<String>,
}

/// The hidden `hide-cgroup2` subcommand: a runtime run where a hybrid layout's cgroup2 is hidden.
#[derive(Args)]
pub struct HideArgs {
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// The worker's container flags (set by `virtlab container`).
#[derive(Args)]
pub struct WorkerExtras {
    /// Our pid as the host sees it, when we are pid 1 of a container (set by the shim).
    #[arg(skip)]
    host_pid: Option<u32>,
    /// Allocate and keep this many more MiB in each iteration.
    #[arg(long, value_name = "MIB", default_value_t = 0)]
    allocate_mib_per_iteration: u32,
    /// Fork until the pids limit says no (inside a container only).
    #[arg(long)]
    fork_bomb: bool,
    /// Print what this process sees before the first iteration.
    #[arg(long)]
    probe: bool,
}

pub fn container(args: ContainerArgs) -> Result<()> {
    if args.support {
        print!("{}", Support::detect().table());
        return Ok(());
    }
    let limits = Limits::parse(
        args.cpu.as_deref(),
        args.memory.as_deref(),
        args.pids.as_deref(),
    )?;
    if args.fork_bomb && limits.pids.is_none_or(|p| p > FORK_BOMB_CAP) {
        return Err(Error::new(
            "--fork-bomb needs a pids limit to meet",
            format!("add --pids with at most {FORK_BOMB_CAP}, e.g. --pids 64"),
        ));
    }
    if args.allocate_mib_per_iteration == Some(0) {
        return Err(Error::invalid(
            "--allocate-mib-per-iteration",
            0,
            "give at least 1 MiB, or leave it out",
        ));
    }
    let extras = WorkerFlags {
        probe: args.probe,
        allocate_mib: args.allocate_mib_per_iteration.unwrap_or(0),
        fork_bomb: args.fork_bomb,
        ..WorkerFlags::default()
    };
    let work = args.run.work("container")?;
    let fleet = Containers::with_extras(limits, extras)?.run(
        &work,
        args.containers,
        args.run.options()?,
    )?;
    if args.probe && !args.run.json {
        let mut probes = vec![Probe::here("host", None)];
        probes.extend(fleet.units.iter().filter_map(|c| c.detail.probe.clone()));
        print!("{}", Probe::table(&probes));
    }
    super::print_run(&fleet, args.run.json)
}

/// Runs the shim, then exits with the worker's code (or 128 + its signal), as runtimes do.
/// `worker` runs the worker's command line in the container's pid 1 (this program's `main`).
pub fn contain(args: ContainArgs, worker: WorkerMain) -> Result<()> {
    let name = args.name.clone();
    let (end, code) = init::shim_main(&Shim {
        name: args.name,
        hostname: args.hostname,
        cgroup_dirs: args.cgroups,
        prepared_on_stdin: args.prepared_on_stdin,
        parent_pid: args.parent_pid,
        user_namespace: !args.no_user_namespace,
        worker_args: args.worker,
        worker,
        report: args.report,
    })?;
    if let Some(e) = end.failure(&name) {
        // Read as data by a parent that asked for JSON errors, as text by a person.
        if std::env::var_os(ERRORS_ENV).is_some_and(|v| v == "json") {
            eprintln!("{}", virtlab::protocol::error_line(&e));
        } else {
            eprintln!("{e}");
        }
    }
    // The shim has removed everything it holds; nothing is left for destructors to do.
    std::process::exit(code)
}

impl WorkerExtras {
    /// The same flags for pid 1 of a container whose host pid is `host_pid`.
    pub fn with_host_pid(self, host_pid: u32) -> WorkerExtras {
        WorkerExtras {
            host_pid: Some(host_pid),
            ..self
        }
    }
}

/// The worker's container flags as the hook `processes::worker_main` calls per iteration.
pub fn worker_extras(
    extras: WorkerExtras,
    name: &str,
) -> Result<impl FnMut(u32) -> String + Send + use<>> {
    Ok(Extras {
        host_pid: extras.host_pid,
        allocate_mib: extras.allocate_mib_per_iteration,
        fork_bomb: extras.fork_bomb,
        probe: extras.probe,
    }
    .checked()?
    .hook(name))
}

pub fn container_cost(args: CostArgs) -> Result<()> {
    if args.die_with_parent {
        virtlab::release::die_with_parent();
    }
    let limits = Limits::parse(None, Some(&args.memory), Some(&args.pids))?;
    let costs = cost::measure(args.repeats, !args.no_runtimes, &limits)?;
    if args.json {
        super::print_json(&costs)?;
    } else {
        print!("{}", costs.table());
        println!();
        print!("{}", costs.steps_table());
        println!();
        print!("{}", costs.joins_table());
        println!();
        print!("{}", costs.namespaces_table());
    }
    Ok(())
}

/// Execs the command in a mount namespace where cgroup2 is hidden (see `runtimes`).
pub fn hide_cgroup2(args: HideArgs) -> Result<()> {
    runtimes::hide_cgroup2_and_exec(&args.command).map(|never| match never {})
}
