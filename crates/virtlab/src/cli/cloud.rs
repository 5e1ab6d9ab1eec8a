//! Chapter 9's subcommands: `serve` (a trace served by each policy on process or container
//! instances; prints [`virtlab::cloud::runs::Served`]), `bill` (a serve run billed by every
//! product that sells each policy; prints [`virtlab::cloud::runs::Billed`]), `neighbours`
//! (noisy neighbours against overcommit; prints [`virtlab::cloud::neighbours::Neighbours`]),
//! `deploy` (one job file on every backend; prints [`virtlab::cloud::deploy::Deployment`]),
//! `whereami` (which layers this runs in; prints [`virtlab::cloud::whereami::Whereami`]) and the hidden
//! `instance` (one instance, as a plain process or as pid 1 of a container).

use clap::Args;
use std::io::BufReader;
use std::path::PathBuf;
use virtlab::cloud::InstanceKind;
use virtlab::cloud::job::Job;
use virtlab::cloud::layers;
use virtlab::cloud::neighbours::NeighbourSpec;
use virtlab::cloud::noisy::{self, measure};
use virtlab::cloud::prices::{PriceBook, Size};
use virtlab::cloud::requests::answer_requests_on;
use virtlab::cloud::runs::{Plan, Served, bill_served, serve_policies};
use virtlab::cloud::serve::Policy;
use virtlab::cloud::trace::TraceSpec;
use virtlab::cloud::whereami::Whereami;
use virtlab::{Error, Result};

/// `virtlab serve`'s flags.
#[derive(Args)]
pub struct ServeArgs {
    /// Policies to serve the trace with, comma-separated: fixed, autoscale, per-request.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fixed,autoscale,per-request"
    )]
    policy: Vec<String>,
    /// What an instance is: process or container.
    #[arg(long, default_value = "process")]
    instance: String,
    /// The fixed policy's warm instances.
    #[arg(long, default_value_t = 2, allow_negative_numbers = true)]
    fleet: usize,
    /// The most instances at once for autoscale and per-request.
    #[arg(long, default_value_t = 4, allow_negative_numbers = true)]
    max_instances: usize,
    /// Seconds an idle autoscaled instance is kept before it is stopped.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    keep_alive: f64,
    /// Requests per second in a steady stretch of the trace.
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    rate: f64,
    /// The trace's length, seconds.
    #[arg(long, default_value_t = 30.0, allow_negative_numbers = true)]
    duration: f64,
    /// Each stretch's length (steady, burst, idle), seconds.
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    stretch: f64,
    /// A burst's rate as a multiple of the steady rate.
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    burst: f64,
    /// The trace's seed (the same seed, the same requests).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Monte Carlo samples per request: one request's work.
    #[arg(long, default_value_t = 1_000_000)]
    samples: u64,
    /// vCPUs an instance is sold as (a container's CPU quota).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    vcpu: f64,
    /// GiB of memory an instance is sold as (a container's memory limit).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    memory_gib: f64,
    #[arg(long)]
    json: bool,
}

/// `virtlab bill`'s flags.
#[derive(Args)]
pub struct BillArgs {
    /// A run as `virtlab serve --json` printed it (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    run: PathBuf,
    /// The price file (default: the shipped data/cloud-prices.json).
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Only this provider's products (aws, gcp).
    #[arg(long)]
    provider: Option<String>,
    #[arg(long)]
    json: bool,
}

/// `virtlab neighbours`'s flags.
#[derive(Args)]
pub struct NeighboursArgs {
    /// Overcommit ratios (vCPUs sold over this machine's cores), comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,3,4",
        allow_negative_numbers = true
    )]
    ratios: Vec<f64>,
    /// vCPUs each tenant is sold (its CPU quota when quotas are on).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    vcpu: f64,
    /// Each serving tenant's requests per second in a steady stretch.
    #[arg(long, default_value_t = 20.0, allow_negative_numbers = true)]
    rate: f64,
    /// Seconds each serving tenant's trace lasts, per point.
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    duration: f64,
    /// Monte Carlo samples per request: one request's work.
    #[arg(long, default_value_t = 200_000)]
    samples: u64,
    /// The traces' seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long)]
    json: bool,
}

/// `virtlab deploy`'s flags.
#[derive(Args)]
pub struct DeployArgs {
    /// The job file (JSON; data/job.json is an example).
    #[arg(value_name = "JOB")]
    job: PathBuf,
    /// Backends to deploy it on, comma-separated rungs: process, container, vm, rank (any rung
    /// of `virtlab ladder --help`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "process,container,vm,rank"
    )]
    backends: Vec<String>,
    #[arg(long)]
    json: bool,
}

/// `virtlab whereami`'s flags.
#[derive(Args)]
pub struct WhereamiArgs {
    /// Ask natively and inside one of chapter 7's containers, and print one table.
    #[arg(long)]
    everywhere: bool,
    #[arg(long)]
    json: bool,
}

/// The hidden `instance` subcommand's flags.
#[derive(Args)]
pub struct InstanceArgs {
    /// Take requests from stdout, a socket, as pid 1 of a container does (its stdin is not its
    /// own to use).
    #[arg(long)]
    over_stdout: bool,
    /// Threads each request's work is spread over (an instance sold several vCPUs).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// The policies named on the command line, with the numbers each needs.
fn policies(args: &ServeArgs) -> Result<Vec<Policy>> {
    args.policy
        .iter()
        .map(|name| {
            let n = if name == "fixed" {
                args.fleet
            } else {
                args.max_instances
            };
            Policy::parse(name.trim(), n, args.keep_alive)
        })
        .collect()
}

pub fn serve(args: ServeArgs) -> Result<()> {
    let plan = Plan {
        trace: TraceSpec {
            rate_per_s: args.rate,
            duration_s: args.duration,
            stretch_s: args.stretch,
            burst_factor: args.burst,
            seed: args.seed,
        },
        policies: policies(&args)?,
        kind: InstanceKind::parse(&args.instance)?,
        size: Size {
            vcpu: args.vcpu,
            memory_gib: args.memory_gib,
        },
        samples_per_request: args.samples,
    };
    plan.trace.check()?;
    let served = serve_policies(&plan)?;
    super::print(&served, args.json, Served::table)
}

fn read_run(path: &std::path::Path) -> Result<Served> {
    let fix = "write one with `virtlab serve --json > run.json` and give --run run.json";
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .map_err(|e| Error::new(format!("cannot read a serve run from stdin: {e}"), fix))?
    } else {
        std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                format!("cannot read the serve run {}: {e}", path.display()),
                fix,
            )
        })?
    };
    serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            "the serve run",
            format!("{} ({e})", path.display()),
            "give the JSON `virtlab serve --json` prints, unchanged",
        )
    })
}

pub fn bill(args: BillArgs) -> Result<()> {
    let book = match &args.prices {
        Some(path) => PriceBook::load(path)?,
        None => PriceBook::load_shipped()?,
    };
    let served = read_run(&args.run)?;
    let billed = bill_served(&book, &served, args.provider.as_deref())?;
    super::print(&billed, args.json, virtlab::cloud::runs::Billed::table)
}

/// Noisy neighbours: the victim's latency against overcommit, with quotas and without.
pub fn neighbours(args: NeighboursArgs) -> Result<()> {
    let spec = NeighbourSpec {
        ratios: args.ratios,
        vcpu: args.vcpu,
        rate_per_s: args.rate,
        duration_s: args.duration,
        samples_per_request: args.samples,
        seed: args.seed,
        ..NeighbourSpec::new(virtlab_core::machine::usable_cpus())
    };
    let measured = measure(&spec)?;
    if args.json {
        return super::print_json(&measured);
    }
    print!("{}", noisy::table(&measured));
    print!("{}", noisy::what_we_saw(&measured));
    Ok(())
}

/// One job file deployed on each backend, one table.
pub fn deploy(args: DeployArgs) -> Result<()> {
    let job = Job::load(&args.job)?;
    let backends: Vec<String> = args.backends.iter().map(|b| b.trim().to_string()).collect();
    let deployment = virtlab::cloud::deploy::deploy(&job, &backends)?;
    if args.json {
        return super::print_json(&deployment);
    }
    print!("{}", deployment.table());
    println!("{}", deployment.spread());
    Ok(())
}

/// Which layers this program runs in, here or `--everywhere`.
pub fn whereami(args: WhereamiArgs) -> Result<()> {
    let places = if args.everywhere {
        layers::survey()?
    } else {
        let here = Whereami::here();
        if args.json {
            return super::print_json(&here);
        }
        vec![layers::Place {
            place: "here".into(),
            answer: Some(here),
            skipped: None,
        }]
    };
    super::print(&places, args.json, |p| layers::table(p))
}

/// One instance: answers requests until they end.
pub fn instance(args: InstanceArgs) -> Result<()> {
    let threads = virtlab::error::check_range(
        "an instance's threads",
        args.threads,
        1,
        virtlab::cloud::container::MAX_THREADS,
    )?;
    if !args.over_stdout {
        return answer_requests_on(std::io::stdin().lock(), std::io::stdout().lock(), threads);
    }
    use std::os::fd::AsFd;
    let not_a_socket = |why: String| {
        Error::new(
            format!("`virtlab instance --over-stdout` needs its stdout to be a socket ({why})"),
            "leave --over-stdout to the container launcher; run `virtlab instance` to speak over stdin and stdout",
        )
    };
    let fd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| not_a_socket(e.to_string()))?;
    let socket = std::os::unix::net::UnixStream::from(fd);
    socket
        .local_addr()
        .map_err(|e| not_a_socket(e.to_string()))?;
    let requests = socket
        .try_clone()
        .map_err(|e| Error::io("sharing the instance's socket", e))?;
    answer_requests_on(BufReader::new(requests), socket, threads)
}
