//! Chapter 8's subcommands: `cluster up|status|down` (a cluster held by a detached keeper,
//! which is this program again under the hidden `cluster-keeper`), `mpi` (ranks across a
//! cluster of their own, or across the hosts of a hostfile, the essay's lines live), `pingpong` (latency and bandwidth between two
//! ranks on one node and across two) and `slurm` (its start, `sinfo`, a job by `srun`, its
//! overhead, the queue of two whole-cluster jobs). Each prints tables, or JSON with `--json`:
//! [`virtlab::cluster::ClusterState`] for `up`, a list of them for `status`,
//! [`virtlab::cluster::live::Hello`], [`virtlab::cluster::pingpong::PingpongReport`] and
//! [`SlurmReport`].

use clap::{Args, Subcommand};
use serde::Serialize;
use std::path::PathBuf;
use std::process::Command;
use virtlab::cluster::cluster::node_table;
use virtlab::cluster::hostfile::Hosts;
use virtlab::cluster::kind::Ranks;
use virtlab::cluster::slurm::{NodeInfo, QueueDemo, SrunOverhead, SrunRun, Startup};
use virtlab::cluster::{Cluster, ClusterSpec, ClusterState, Slurm, held};
use virtlab::cluster::{live, mpi, pingpong};
use virtlab::display::Table;
use virtlab::executor::{Fault, Options};
use virtlab::work::Work;
use virtlab::{Error, Result};

/// The cluster every subcommand makes: how many nodes, of which instance type.
#[derive(Args)]
pub struct NodeArgs {
    /// How many nodes (1 to 253: one private /24).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    nodes: usize,
    /// Every node's instance type: small (0.5 CPU, 256 MiB), medium (1 CPU, 512 MiB) or
    /// large (2 CPUs, 1 GiB).
    #[arg(long = "type", default_value = "medium", allow_hyphen_values = true)]
    instance_type: String,
}

impl NodeArgs {
    /// The cluster these flags ask for, checked.
    pub fn spec(&self) -> Result<ClusterSpec> {
        let spec = ClusterSpec {
            nodes: self.nodes,
            instance_type: self.instance_type.parse()?,
        };
        spec.check()?;
        Ok(spec)
    }
}

/// `virtlab cluster`'s subcommands.
#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Make a cluster that stays up (held by a detached keeper) until `virtlab cluster down NAME`.
    Up {
        /// The name `status` lists and `down` takes.
        #[arg(long, default_value = "lab")]
        name: String,
        #[command(flatten)]
        nodes: NodeArgs,
        /// Run Slurm on it too (its SLURM_CONF is slurm/slurm.conf in the run folder).
        #[arg(long)]
        slurm: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the clusters that are up.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Take a held cluster down: every namespace, veth, cgroup, daemon and folder it made.
    Down {
        /// The name it was made under.
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// The hidden `cluster-keeper`: makes a cluster and holds it until SIGTERM (`cluster up` starts it).
#[derive(Args)]
pub struct KeeperArgs {
    #[arg(long)]
    name: String,
    #[command(flatten)]
    nodes: NodeArgs,
    #[arg(long)]
    slurm: bool,
}

/// `virtlab mpi`'s flags.
#[derive(Args)]
pub struct MpiArgs {
    #[command(flatten)]
    nodes: NodeArgs,
    /// MPI ranks, placed over the nodes by mpirun (a node's slots are its whole CPUs).
    #[arg(long, default_value_t = 6, allow_negative_numbers = true)]
    ranks: usize,
    /// Lines each rank prints.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    iterations: u32,
    /// Pause between a rank's lines, in milliseconds.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    interval_ms: u64,
    /// SIGKILL this MPI rank (0-based) from the host on purpose, at iteration --kill-at: MPI
    /// then ends the whole job.
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    kill_rank: Option<u32>,
    /// The iteration (0-based) at which --kill-rank dies, after printing that many lines.
    #[arg(long, value_name = "I", default_value_t = 2, requires = "kill_rank")]
    kill_at: u32,
    /// Run on the hosts this file lists (Open MPI's hostfile: `host slots=N`, one a line)
    /// instead of making a cluster; mpirun reaches them with ssh unless --agent names another
    /// way. virtlab-ranks must be at the same path on every host.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["nodes", "instance_type", "kill_rank"]
    )]
    hostfile: Option<PathBuf>,
    /// The command mpirun reaches a host with, called like ssh (options, host, command), e.g. a
    /// held cluster's agent (`<run folder>/agent`, see `virtlab cluster status --json`).
    #[arg(
        long,
        value_name = "CMD",
        requires = "hostfile",
        allow_hyphen_values = true
    )]
    agent: Option<String>,
    /// The network the hosts share, which MPI's TCP keeps to: a CIDR (10.0.0.0/24) or an
    /// interface (eth1); a held cluster's is its subnet.
    #[arg(
        long,
        value_name = "CIDR",
        requires = "hostfile",
        allow_hyphen_values = true
    )]
    net: Option<String>,
    #[arg(long)]
    json: bool,
}

/// `virtlab pingpong`'s flags.
#[derive(Args)]
pub struct PingpongArgs {
    /// Message sizes in bytes, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "8,64,512,4096,32768,262144,4194304",
        allow_negative_numbers = true
    )]
    sizes: Vec<usize>,
    /// Round trips per size.
    #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
    rounds: u32,
    /// Let waiting ranks spin (Open MPI's default) instead of yielding the CPU: the yield trap.
    #[arg(long)]
    spin: bool,
    /// Every node's instance type (two nodes are made).
    #[arg(long = "type", default_value = "medium", allow_hyphen_values = true)]
    instance_type: String,
    #[arg(long)]
    json: bool,
}

/// `virtlab slurm`'s flags.
#[derive(Args)]
pub struct SlurmArgs {
    #[command(flatten)]
    nodes: NodeArgs,
    /// Timed runs of `srun -N1 -n1 true`.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    srun_rounds: usize,
    /// Seconds the queue demo's first job holds every node (the second waits about as long).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    hold_s: u32,
    /// Leave out the queue demo (it takes a few seconds more than --hold-s).
    #[arg(long)]
    no_queue: bool,
    #[arg(long)]
    json: bool,
}

/// Prints `value` as JSON, or the text `text` makes.
fn print<T: Serialize>(value: &T, json: bool, text: impl FnOnce(&T) -> String) -> Result<()> {
    if json {
        super::print_json(value)
    } else {
        print!("{}", text(value));
        Ok(())
    }
}

/// `virtlab cluster up|status|down`.
pub fn cluster(command: ClusterCommand) -> Result<()> {
    match command {
        ClusterCommand::Up {
            name,
            nodes,
            slurm,
            json,
        } => {
            let me =
                std::env::current_exe().map_err(|e| Error::io("finding this program's path", e))?;
            let mut keeper = Command::new(me);
            keeper.arg("cluster-keeper");
            let state = held::hold(keeper, nodes.spec()?, &name, slurm)?;
            print(&state, json, |state| {
                format!(
                    "{}up in {:.0} ms; take it down with: virtlab cluster down {name}\n",
                    node_table(state),
                    state.up_ms
                )
            })
        }
        ClusterCommand::Status { json } => print(&held::status(), json, |clusters| {
            if clusters.is_empty() {
                return "no cluster is up\n".into();
            }
            clusters.iter().map(node_table).collect()
        }),
        ClusterCommand::Down { name, json } => {
            let ms = held::down(&name)?;
            print(
                &serde_json::json!({ "name": name, "down_ms": ms }),
                json,
                |_| format!("cluster {name} removed in {ms:.0} ms\n"),
            )
        }
    }
}

/// The hidden `cluster-keeper`: holds a cluster until asked to stop.
pub fn keeper(args: KeeperArgs) -> Result<()> {
    held::serve(args.nodes.spec()?, &args.name, args.slurm)
}

/// Checks the counts before anything is made.
fn check_positive(flag: &str, value: u64, example: &str) -> Result<()> {
    if value == 0 {
        return Err(Error::invalid(
            flag,
            0,
            format!("give 1 or more, e.g. {flag} {example}"),
        ));
    }
    Ok(())
}

/// `virtlab mpi`: ranks across a cluster of their own, through the executor as units of the
/// rank kind, each line printed as it comes.
pub fn mpi(args: MpiArgs) -> Result<()> {
    let spec = args.nodes.spec()?;
    check_positive("--ranks", args.ranks as u64, "6")?;
    check_positive("--iterations", args.iterations.into(), "3")?;
    let work = Work::new("worker", args.iterations, args.interval_ms)?;
    if let Some(rank) = args.kill_rank.filter(|&r| r as usize >= args.ranks) {
        return Err(Error::invalid(
            "--kill-rank",
            rank,
            format!("name a rank from 0 to {}", args.ranks - 1),
        ));
    }
    mpi::ready()?;
    if let Some(file) = &args.hostfile {
        let hosts = Hosts::read(file, args.agent.as_deref(), args.net.as_deref())?;
        hosts.reach()?;
        return run_ranks(Ranks::across(hosts)?, &work, &args);
    }
    let cluster = Cluster::up(spec)?;
    run_ranks(Ranks::on(&cluster)?, &work, &args)
}

/// Runs `work` as `virtlab mpi`'s ranks of `ranks` (a cluster's or a hostfile's), lines
/// printed as they come, then the run's table (or JSON); exits 1 where a rank failed.
fn run_ranks(mut ranks: Ranks<'_>, work: &Work, args: &MpiArgs) -> Result<()> {
    // Live lines go to stderr with --json, so stdout stays one JSON value.
    if args.json {
        ranks = ranks.lines_to_stderr();
    }
    let options = Options {
        echo: !args.json,
        fault: args.kill_rank.map(|rank| Fault {
            unit: rank as usize + 1,
            at: args.kill_at,
        }),
        ..Options::default()
    };
    let report = live::hello_of(ranks, work, args.ranks, options)?;
    print(&report, args.json, |r| {
        let command = r.mpirun.as_ref().map(|m| format!("$ {}\n", m.command));
        format!("{}{}", command.unwrap_or_default(), r.table())
    })?;
    report.run.check().map(drop)
}

/// `virtlab pingpong`: two ranks on one node, then on two nodes.
pub fn pingpong(args: PingpongArgs) -> Result<()> {
    let spec = ClusterSpec {
        nodes: 2,
        instance_type: args.instance_type.parse()?,
    };
    pingpong::check(&args.sizes, args.rounds)?;
    mpi::ready()?;
    let cluster = Cluster::up(spec)?;
    let report = pingpong::measure(&cluster, &args.sizes, args.rounds, !args.spin)?;
    drop(cluster);
    print(&report, args.json, |r| r.table().to_string())
}

/// What `virtlab slurm` ran and saw.
#[derive(Serialize)]
pub struct SlurmReport {
    /// The cluster Slurm ran on.
    pub cluster: ClusterState,
    /// How long munged, slurmctld and the slurmds took to start.
    pub startup: Startup,
    /// `sinfo`'s nodes.
    pub sinfo: Vec<NodeInfo>,
    /// `srun -N<nodes> hostname`.
    pub srun: SrunRun,
    /// `srun -N1 -n1 true`, timed.
    pub overhead: SrunOverhead,
    /// Two whole-cluster jobs, the second waiting (None with --no-queue).
    pub queue: Option<QueueDemo>,
}

impl SlurmReport {
    fn text(&self) -> String {
        let mut sinfo = Table::new(
            format!(
                "Slurm up in {:.0} ms (munged {:.0}, slurmctld {:.0}, slurmds to idle {:.0})",
                self.startup.total_ms,
                self.startup.munge_ms,
                self.startup.controller_ms,
                self.startup.nodes_ms
            ),
            ["node", "state", "CPUs", "memory MiB"],
        );
        for n in &self.sinfo {
            sinfo.row([
                n.node.clone(),
                n.state.clone(),
                n.cpus.to_string(),
                n.memory_mib.to_string(),
            ]);
        }
        let mut out = format!(
            "{sinfo}\n$ {}\n{}srun took {:.0} ms; `srun -N1 -n1 true` median {:.1} ms of {}\n",
            self.srun.command,
            self.srun.stdout,
            self.srun.wall_ms,
            self.overhead.median_ms,
            self.overhead.runs_ms.len()
        );
        if let Some(queue) = &self.queue {
            let mut jobs = Table::new(
                format!(
                    "the queue: job {} waited {} s for job {} ({} while it ran)",
                    queue.second.id, queue.wait_s, queue.first.id, queue.second_waiting.reason
                ),
                [
                    "job",
                    "name",
                    "state",
                    "wait s",
                    "elapsed s",
                    "CPUs",
                    "CPU-s",
                ],
            );
            for a in &queue.accounting {
                jobs.row([
                    a.id.to_string(),
                    a.name.clone(),
                    a.state.clone(),
                    a.wait_s.to_string(),
                    a.elapsed_s.to_string(),
                    a.cpus.to_string(),
                    a.cpu_seconds.to_string(),
                ]);
            }
            out.push_str(&format!("\n{jobs}"));
        }
        out
    }
}

/// `virtlab slurm`: Slurm on a cluster of its own, a job by srun, the queue.
pub fn slurm(args: SlurmArgs) -> Result<()> {
    let spec = args.nodes.spec()?;
    check_positive("--srun-rounds", args.srun_rounds as u64, "5")?;
    if !args.no_queue {
        check_positive("--hold-s", args.hold_s.into(), "3")?;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    virtlab::cluster::slurm::check_prerequisites(euid, |p| {
        virtlab::cluster::slurm::find_program(p).is_some()
    })?;
    let cluster = Cluster::up(spec)?;
    let slurm = Slurm::start(&cluster)?;
    let report = SlurmReport {
        cluster: cluster.state().clone(),
        startup: slurm.startup().clone(),
        sinfo: slurm.sinfo()?,
        srun: slurm.srun(spec.nodes, spec.nodes, &["hostname"])?,
        overhead: slurm.srun_overhead(args.srun_rounds)?,
        queue: (!args.no_queue)
            .then(|| slurm.queue_demo(args.hold_s))
            .transpose()?,
    };
    drop(slurm);
    drop(cluster);
    print(&report, args.json, SlurmReport::text)
}
