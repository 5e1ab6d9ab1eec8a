//! The ranks' run as people see it, through the one executor ([`crate::kind::Ranks`]):
//! [`hello`] prints the essay's lines as they come (`0: rank-2 on node-2 pid 7 (host pid
//! 4242)`), [`Hello::table`] is the run's table with each rank's node, pids and MPI_Init, and
//! [`Hello::plot`] draws who ran when, one lane per rank, from the run's timeline.

use crate::cluster::{Cluster, ClusterState};
use crate::hostfile::Hosts;
use crate::kind::{RankDetail, Ranks};
use crate::mpi::MpiRun;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use virtlab_core::executor::{self, Options, Run};
use virtlab_core::timeline::EventKind;
use virtlab_core::work::Work;
use virtlab_display::plot::LaneChart;
use virtlab_display::{Figure, Table};

/// A finished run of the ranks' `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The cluster the ranks ran on (None: the hosts of a hostfile).
    pub cluster: Option<ClusterState>,
    /// The hosts they ran on: the cluster's node names, or the hostfile's hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// The essay's lines, as they came.
    pub essay_lines: Vec<String>,
    /// The executor's run: every rank's status, detail, timeline and asked → first line.
    pub run: Run<RankDetail>,
    /// mpirun's own account: its command, exit, stderr and wall time (None: it never ran).
    pub mpirun: Option<MpiRun>,
}

/// Runs `work` as `ranks` ranks over `cluster` through the executor (its `options`: echo the
/// lines as they come, a fault on purpose, a deadline). Waiting ranks yield when they
/// outnumber the cluster's CPUs, or they would spin against each other.
pub fn hello(cluster: &Cluster, work: &Work, ranks: usize, options: Options) -> Result<Hello> {
    hello_of(Ranks::on(cluster)?, work, ranks, options)
}

/// Runs `work` as `ranks` ranks on the hosts `hosts` lists, through the executor: what
/// [`hello`] does on a cluster, done on real machines (or a cluster's nodes standing in).
pub fn on_hosts(hosts: Hosts, work: &Work, ranks: usize, options: Options) -> Result<Hello> {
    hello_of(Ranks::across(hosts)?, work, ranks, options)
}

/// As [`hello`], with a kind made already (one that prints its lines on stderr, say).
pub fn hello_of(mut kind: Ranks<'_>, work: &Work, ranks: usize, options: Options) -> Result<Hello> {
    let run = executor::run(&mut kind, work, ranks, options)?;
    Ok(Hello {
        cluster: kind.cluster().map(|c| c.state().clone()),
        hosts: kind.hosts(),
        essay_lines: kind.essay_lines(),
        mpirun: kind.account(),
        run,
    })
}

impl Hello {
    /// Each rank: its status, asked → first line, node, pids, MPI_Init, lines.
    pub fn table(&self) -> Table {
        self.run.table()
    }

    /// The mpirun command line the ranks ran under (None: it never started).
    pub fn command(&self) -> Option<&str> {
        self.mpirun.as_ref().map(|m| m.command.as_str())
    }

    /// Shows [`Hello::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// From asking for the ranks to the first rank's line, in milliseconds.
    pub fn first_line_ms(&self) -> Option<f64> {
        self.run
            .units
            .iter()
            .filter_map(|u| u.first_line_ms)
            .min_by(f64::total_cmp)
    }

    /// The median MPI_Init over the ranks, in milliseconds (None without a line).
    pub fn init_ms(&self) -> Option<f64> {
        let mut inits: Vec<f64> = self
            .run
            .units
            .iter()
            .filter_map(|u| u.detail.init_ms)
            .collect();
        (!inits.is_empty()).then(|| virtlab_core::stats::median(&mut inits))
    }

    /// Who ran when: a lane per rank from its process's start to its last line, a tick at each
    /// line; time from the first rank's start, on the host's clock.
    pub fn plot(&self) -> Result<Figure> {
        let events = &self.run.timeline.events;
        let Some(zero) = self.run.timeline.start_ns() else {
            return Err(Error::new(
                "the ranks printed no lines, so there is no timeline to draw",
                "run the ranks again and look at mpirun's stderr in the run",
            ));
        };
        let ms = |t: u64| t.saturating_sub(zero) as f64 / 1e6;
        let mut chart = LaneChart::new(format!(
            "{} ranks on {} nodes: one lane each",
            self.run.units.len(),
            self.hosts.len()
        ))
        .x_label("ms since the first rank's process started");
        for unit in &self.run.units {
            let mine: Vec<_> = events.iter().filter(|e| e.lane == unit.name).collect();
            let (Some(first), Some(last)) = (mine.first(), mine.last()) else {
                continue;
            };
            let ticks = mine
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Iteration(_)))
                .map(|e| ms(e.t_ns))
                .collect();
            let d = &unit.detail;
            chart = chart.lane(
                format!(
                    "{} = rank-{} on {}",
                    unit.name,
                    d.rank.map_or("?".into(), |r| r.to_string()),
                    d.node.as_deref().unwrap_or("?")
                ),
                ms(first.t_ns),
                ms(last.t_ns),
                ticks,
            );
        }
        Ok(chart.render()?)
    }
}

/// A made-up run of ranks, one per `(status, asked → first line ms, MPI_Init ms)`, for tests of
/// what is said about runs.
#[cfg(test)]
pub(crate) fn sample(
    units: &[(virtlab_core::executor::Status, Option<f64>, f64)],
    exit_code: Option<i32>,
) -> Hello {
    use virtlab_core::executor::UnitReport;
    Hello {
        hosts: vec![],
        cluster: Some(ClusterState {
            name: None,
            owner: 1,
            subnet: "10.213.1.0/24".into(),
            host_address: "10.213.1.1".into(),
            dir: "/run/x".into(),
            switch_pid: 2,
            nodes: vec![],
            up_ms: 50.0,
        }),
        essay_lines: vec![],
        run: Run {
            kind: "rank".into(),
            host_pid: 1,
            summary: String::new(),
            units: units
                .iter()
                .enumerate()
                .map(|(i, (status, first_line_ms, init))| UnitReport {
                    name: format!("worker-{}", i + 1),
                    pid: Some(4000 + i as u32),
                    tid: None,
                    status: status.clone(),
                    first_line_ms: *first_line_ms,
                    detail: RankDetail {
                        rank: Some(i as u32),
                        node: Some(format!("node-{}", i + 1)),
                        pid_in_node: Some(7),
                        host_pid: Some(4000 + i as u32),
                        init_ms: Some(*init),
                        lines: 2,
                    },
                })
                .collect(),
            timeline: Default::default(),
            snapshot: None,
            wall_ms: 900.0,
        },
        mpirun: Some(MpiRun {
            command: "mpirun".into(),
            lines: vec![],
            exit_code,
            stderr:
                "noise\nprocess rank 1 with PID 7 on node 10.0.0.2 exited on signal 9 (Killed).\n"
                    .into(),
            first_line_ms: None,
            wall_ms: 900.0,
        }),
    }
}
