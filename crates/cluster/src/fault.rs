//! A rank killed mid-run: the ranks print their lines, one is SIGKILLed from the host once it
//! has printed a few, and what MPI does to the whole job is read back — mpirun's exit, its
//! account on stderr, and how every rank ended.

use crate::cluster::Cluster;
use crate::mpi::{self, MpiRun, Mpirun, Program, RankLine, RankState};
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use virtlab_display::Table;

/// What happened to a job when one of its ranks was killed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The rank killed.
    pub victim: u32,
    /// Its node.
    pub node: String,
    /// Its host pid, the one killed (None: it had ended before it could be killed).
    pub host_pid: Option<u32>,
    /// How every rank ended.
    pub ranks: Vec<RankState>,
    /// The run, with mpirun's exit and stderr.
    pub run: MpiRun,
}

/// Runs `ranks` ranks printing a line every `interval_ms` and SIGKILLs rank `victim` from the
/// host once it has printed `after_lines` lines.
pub fn kill_a_rank(
    cluster: &Cluster,
    ranks: usize,
    victim: u32,
    after_lines: u32,
    interval_ms: u64,
) -> Result<Fault> {
    if victim as usize >= ranks {
        return Err(Error::of(
            ErrorKind::Invalid,
            format!("there is no rank {victim} among {ranks} ranks"),
            format!("choose a rank from 0 to {}", ranks.saturating_sub(1)),
        ));
    }
    // Enough lines that the job is still running when the victim dies, whatever the others do.
    let program = Program::Hello {
        iterations: after_lines + 50,
        interval_ms,
    };
    let mut killed: Option<(String, Option<u32>)> = None;
    let run = Mpirun::new(cluster, ranks)
        .yield_when_idle(ranks > cluster.slots())
        .spawn(&program)?
        .finish_live(|line| {
            let RankLine::Hello {
                rank,
                iteration,
                node,
                pid,
                pid_namespace,
                ..
            } = line
            else {
                return;
            };
            if *rank != victim || *iteration + 1 < after_lines || killed.is_some() {
                return;
            }
            let host_pid = mpi::host_pid(pid_namespace, *pid);
            if let Some(p) = host_pid {
                // SAFETY: kill sends SIGKILL to our own rank's process, found in its node's
                // pid namespace a moment ago.
                unsafe { libc::kill(p as i32, libc::SIGKILL) };
            }
            killed = Some((node.clone(), host_pid));
        })?;
    let Some((node, host_pid)) = killed else {
        return Err(Error::new(
            format!(
                "rank {victim} never printed {after_lines} lines, so it was not killed: {}",
                run.stderr.trim()
            ),
            "run it again, or ask for fewer lines before the kill",
        ));
    };
    Ok(Fault {
        victim,
        node,
        host_pid,
        ranks: run.rank_states(ranks as u32),
        run,
    })
}

impl Fault {
    /// Every rank: its lines and how it ended.
    pub fn table(&self) -> Table {
        let mut table = Table::new(
            format!(
                "rank {} on {} killed (host pid {}); mpirun exit {}",
                self.victim,
                self.node,
                self.host_pid.map_or("gone".to_string(), |p| p.to_string()),
                self.run
                    .exit_code
                    .map_or("by a signal".to_string(), |c| c.to_string())
            ),
            ["rank", "lines", "end"],
        );
        for r in &self.ranks {
            table.row([
                format!("rank-{}", r.rank),
                r.lines.to_string(),
                r.state.clone(),
            ]);
        }
        table
    }

    /// Shows [`Fault::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// mpirun's own account of the failure: the lines that name a rank, a signal or an abort.
    pub fn mpirun_said(&self) -> String {
        self.run
            .stderr
            .lines()
            .filter(|l| {
                let l = l.to_lowercase();
                l.contains("rank") || l.contains("signal") || l.contains("abort")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_gives_every_rank_its_end() {
        let fault = Fault {
            victim: 1,
            node: "node-2".into(),
            host_pid: Some(4242),
            ranks: vec![
                RankState {
                    rank: 0,
                    lines: 3,
                    state: "stopped by mpirun".into(),
                },
                RankState {
                    rank: 1,
                    lines: 2,
                    state: "killed by signal 9".into(),
                },
            ],
            run: MpiRun {
                command: "mpirun".into(),
                lines: vec![],
                exit_code: Some(137),
                stderr: "noise\nprocess rank 1 with PID 7 on node 10.0.0.2 exited on signal 9 (Killed).\n".into(),
                first_line_ms: Some(500.0),
                wall_ms: 900.0,
            },
        };
        let table = fault.table();
        assert_eq!(table.rows()[1][2], "killed by signal 9");
        assert!(table.to_string().contains("host pid 4242"));
        assert_eq!(fault.mpirun_said().lines().count(), 1);
    }
}
