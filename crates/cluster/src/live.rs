//! The ranks' run as people see it: [`hello`] prints the essay's lines as they come
//! (`0: rank-2 on node-2 pid 7 (host pid 4242)`), [`Hello::table`] gives each rank's node, pid,
//! MPI_Init and end, and [`Hello::plot`] draws who ran when, one lane per rank, from the ranks'
//! own timestamps.

use crate::cluster::{Cluster, ClusterState};
use crate::mpi::{MpiRun, Mpirun, Program, RankLine, RankState};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use virtlab_display::plot::LaneChart;
use virtlab_display::{Figure, Table};

/// A finished run of the ranks' `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// The cluster the ranks ran on.
    pub cluster: ClusterState,
    /// The essay's lines, as they came.
    pub essay_lines: Vec<String>,
    /// How each rank ended.
    pub ranks: Vec<RankState>,
    /// The run: its command, every line, mpirun's exit and stderr, asked → first line, wall.
    pub run: MpiRun,
}

/// Runs `ranks` ranks of `hello` over `cluster`, handing each essay line to `on_line` as it
/// comes (`println!` in a notebook or a terminal). Waiting ranks yield when they outnumber the
/// cluster's CPUs, or they spin against each other.
pub fn hello(
    cluster: &Cluster,
    ranks: usize,
    iterations: u32,
    interval_ms: u64,
    mut on_line: impl FnMut(&str),
) -> Result<Hello> {
    for (flag, value) in [("ranks", ranks as u64), ("iterations", iterations.into())] {
        if value == 0 {
            return Err(Error::invalid(
                flag,
                0,
                format!("give 1 or more {flag}, e.g. 3"),
            ));
        }
    }
    let mut essay_lines = Vec::new();
    let run = Mpirun::new(cluster, ranks)
        .yield_when_idle(ranks > cluster.slots())
        .spawn(&Program::Hello {
            iterations,
            interval_ms,
        })?
        .finish_live(|line| {
            if let Some(text) = MpiRun::essay_line(line) {
                on_line(&text);
                essay_lines.push(text);
            }
        })?;
    Ok(Hello {
        cluster: cluster.state().clone(),
        essay_lines,
        ranks: run.rank_states(ranks as u32),
        run,
    })
}

/// The hello lines of the run, as (rank, node, pid in node, MPI_Init ms, started, printed).
fn hello_lines(run: &MpiRun) -> impl Iterator<Item = (u32, &str, u32, f64, f64, f64)> {
    run.lines.iter().filter_map(|l| match l {
        RankLine::Hello {
            rank,
            node,
            pid,
            init_ms,
            started_unix,
            unix,
            ..
        } => Some((*rank, node.as_str(), *pid, *init_ms, *started_unix, *unix)),
        _ => None,
    })
}

impl Hello {
    /// Each rank: its node, the pid it saw, what MPI_Init took, its lines, how it ended.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            format!(
                "{} ranks on {} nodes: asked → first line {}, all done {:.0} ms",
                self.ranks.len(),
                self.cluster.nodes.len(),
                self.run
                    .first_line_ms
                    .map_or("never".into(), |ms| format!("{ms:.0} ms")),
                self.run.wall_ms
            ),
            ["rank", "node", "pid in node", "MPI_Init ms", "lines", "end"],
        );
        for state in &self.ranks {
            let first = hello_lines(&self.run).find(|l| l.0 == state.rank);
            let (node, pid, init) = first.map_or(("-".into(), "-".into(), "-".into()), |l| {
                (l.1.to_string(), l.2.to_string(), format!("{:.0}", l.3))
            });
            table.row([
                format!("rank-{}", state.rank),
                node,
                pid,
                init,
                state.lines.to_string(),
                state.state.clone(),
            ]);
        }
        table
    }

    /// Shows [`Hello::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// The median MPI_Init over the ranks, in milliseconds (None without a line).
    pub fn init_ms(&self) -> Option<f64> {
        let mut inits: Vec<f64> = self
            .ranks
            .iter()
            .filter_map(|s| hello_lines(&self.run).find(|l| l.0 == s.rank).map(|l| l.3))
            .collect();
        (!inits.is_empty()).then(|| virtlab_core::stats::median(&mut inits))
    }

    /// Who ran when: a lane per rank from its process's start to its last line, a tick at each
    /// line; time from the first rank's start, on the clock the ranks read.
    pub fn plot(&self) -> Result<Figure> {
        let zero = hello_lines(&self.run)
            .map(|l| l.4)
            .fold(f64::INFINITY, f64::min);
        if !zero.is_finite() {
            return Err(Error::new(
                "the ranks printed no lines, so there is no timeline to draw",
                "run the ranks again and look at mpirun's stderr in the run",
            ));
        }
        let ms = |unix: f64| (unix - zero) * 1e3;
        let mut chart = LaneChart::new(format!(
            "{} ranks on {} nodes: one lane each",
            self.ranks.len(),
            self.cluster.nodes.len()
        ))
        .x_label("ms since the first rank's process started");
        for state in &self.ranks {
            let lines: Vec<_> = hello_lines(&self.run)
                .filter(|l| l.0 == state.rank)
                .collect();
            let Some(first) = lines.first() else { continue };
            let ticks: Vec<f64> = lines.iter().map(|l| ms(l.5)).collect();
            let end = ticks.iter().copied().fold(ms(first.4), f64::max);
            chart = chart.lane(
                format!("rank-{} on {}", state.rank, first.1),
                ms(first.4),
                end,
                ticks,
            );
        }
        Ok(chart.render()?)
    }
}
