//! `virtlab scaling`: the parallel hit count's strong or weak scaling across a cluster of its
//! own (`scaling::sweep`: each rank count run several times, medians kept, the machine's load
//! read around each), printed as the sweep's table and how busy the machine was, or as JSON
//! ([`ScalingReport`]).

use clap::Args;
use serde::Serialize;
use virtlab::Result;
use virtlab::cluster::scaling::{self, Scaling, ScalingPlan, ScalingPoint};
use virtlab::cluster::{Cluster, ClusterState, mpi};
use virtlab::load::Load;

/// `virtlab scaling`'s flags.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["strong", "weak"]))]
pub struct ScalingArgs {
    #[command(flatten)]
    nodes: super::cluster::NodeArgs,
    /// The rank counts, comma-separated (1 to 64 each); a 1 gives the efficiency its base.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4",
        allow_negative_numbers = true
    )]
    ranks: Vec<usize>,
    /// Strong: the job's total samples; weak: each rank's samples.
    #[arg(long, default_value_t = 20_000_000, allow_negative_numbers = true)]
    samples: u64,
    /// Runs per rank count, of which the median is kept (3 or more).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    repeats: usize,
    /// Strong scaling: the same total samples shared by more ranks.
    #[arg(long)]
    strong: bool,
    /// Weak scaling: the same samples per rank, so the job grows with the ranks.
    #[arg(long)]
    weak: bool,
    #[arg(long)]
    json: bool,
}

/// What `virtlab scaling` ran and measured.
#[derive(Serialize)]
pub struct ScalingReport {
    /// The sweep asked for.
    pub plan: ScalingPlan,
    /// The cluster it ran on.
    pub cluster: ClusterState,
    /// Each rank count's medians, efficiency and the machine's load while it ran.
    pub points: Vec<ScalingPoint>,
}

/// `virtlab scaling`: checks the plan, then makes the cluster and sweeps it.
pub fn scaling(args: ScalingArgs) -> Result<()> {
    let spec = args.nodes.spec()?;
    let plan = ScalingPlan {
        ranks: args.ranks,
        repeats: args.repeats,
        ..ScalingPlan::new(
            if args.weak {
                Scaling::Weak
            } else {
                Scaling::Strong
            },
            args.samples,
        )
    };
    plan.check()?;
    mpi::ready()?;
    let cluster = Cluster::up(spec)?;
    let points = scaling::sweep(&cluster, &plan)?;
    let report = ScalingReport {
        plan,
        cluster: cluster.state().clone(),
        points,
    };
    drop(cluster);
    if args.json {
        return super::print_json(&report);
    }
    print!(
        "{} scaling, {} nodes ({} runs per rank count, medians)\n{}",
        if args.weak { "weak" } else { "strong" },
        report.cluster.nodes.len(),
        report.plan.repeats,
        scaling::table(&report.points)
    );
    // A flat curve on a busy machine says more about the other programs than about MPI.
    if let Some(load) = Load::busiest(report.points.iter().filter_map(|p| p.load.as_ref())) {
        let verdict = if load.is_busy() {
            "busy: the efficiencies may be lower than a quiet machine gives; close what else runs and run it again"
        } else {
            "quiet"
        };
        println!(
            "the machine at the busiest rank count: {} ({verdict})",
            load.summary()
        );
    }
    Ok(())
}
