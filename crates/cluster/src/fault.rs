//! A rank killed mid-run: the ranks print their lines, one is SIGKILLed from the host once it
//! has printed a few, and what MPI does to the whole job is read back — mpirun's exit, its
//! account on stderr, and how every rank ended.

use crate::cluster::Cluster;
use crate::kind::RankDetail;
use crate::live::{self, Hello};
use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use virtlab_core::executor::{Detail, Options, Status, UnitReport};
use virtlab_core::work::Work;
use virtlab_display::Table;

/// What happened to a job when one of its ranks was killed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// The rank killed.
    pub victim: u32,
    /// The run through the executor: every rank's status (the victim's crash, what MPI did
    /// to the others) and mpirun's own account.
    pub hello: Hello,
}

/// Runs `ranks` ranks printing a line every `interval_ms` and SIGKILLs rank `victim` from the
/// host once it has printed `after_lines` lines: the executor's fault on purpose, for ranks.
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
    let work = Work::new("worker", after_lines + 50, interval_ms)?;
    let options = Options::quiet().with_fault(victim as usize + 1, after_lines);
    let hello = live::hello(cluster, &work, ranks, options)?;
    let fault = Fault { victim, hello };
    if !matches!(
        fault.victim_report().map(|u| &u.status),
        Some(Status::Crashed(_))
    ) {
        return Err(Error::new(
            format!(
                "rank {victim} never printed {after_lines} lines, so it was not killed: {}",
                fault.hello.mpirun.as_ref().map_or("", |m| m.stderr.trim())
            ),
            "run it again, or ask for fewer lines before the kill",
        ));
    }
    Ok(fault)
}

impl Fault {
    /// The victim's unit in the run.
    pub fn victim_report(&self) -> Option<&UnitReport<RankDetail>> {
        self.hello.run.units.get(self.victim as usize)
    }

    /// mpirun's exit, in words.
    pub fn mpirun_exit(&self) -> String {
        match self.hello.mpirun.as_ref().map(|m| m.exit_code) {
            Some(Some(code)) => format!("exited with {code}"),
            Some(None) => "was killed by a signal".into(),
            None => "never ran".into(),
        }
    }

    /// Every rank: its node, lines and how it ended.
    pub fn table(&self) -> Table {
        let victim = self.victim_report();
        let mut table = Table::new(
            format!(
                "rank {} on {} killed (host pid {}); mpirun {}",
                self.victim,
                victim
                    .and_then(|u| u.detail.node.clone())
                    .unwrap_or_else(|| "?".into()),
                victim
                    .and_then(|u| u.detail.host_pid)
                    .map_or("gone".to_string(), |p| p.to_string()),
                self.mpirun_exit()
            ),
            ["unit", "MPI rank", "node", "lines", "ended"],
        );
        for u in &self.hello.run.units {
            let cells = u.detail.cells();
            table.row([
                u.name.clone(),
                cells[0].clone(),
                cells[1].clone(),
                u.detail.lines.to_string(),
                u.status.describe(),
            ]);
        }
        table
    }

    /// Shows [`Fault::table`] in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }

    /// mpirun's own account of the failure: its messages that name a rank, a signal or an
    /// abort, each whole (Open MPI frames a message between lines of dashes and wraps it;
    /// a single line of one would stop mid-sentence).
    pub fn mpirun_said(&self) -> String {
        let stderr = self.hello.mpirun.as_ref().map_or("", |m| m.stderr.as_str());
        messages(stderr)
            .into_iter()
            .filter(|m| {
                let m = m.to_lowercase();
                m.contains("rank") || m.contains("signal") || m.contains("abort")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// mpirun's messages, one line each: the text between its lines of dashes joined up, and any
/// line outside such a frame on its own.
fn messages(stderr: &str) -> Vec<String> {
    let mut messages = Vec::new();
    let mut framed: Option<Vec<&str>> = None;
    for line in stderr.lines().map(str::trim) {
        let rule = line.len() >= 3 && line.chars().all(|c| c == '-');
        match (&mut framed, rule) {
            (None, true) => framed = Some(Vec::new()),
            (Some(lines), true) => {
                if !lines.is_empty() {
                    messages.push(lines.join(" "));
                }
                framed = None;
            }
            (Some(lines), false) if !line.is_empty() => lines.push(line),
            (None, false) if !line.is_empty() => messages.push(line.to_string()),
            _ => {}
        }
    }
    if let Some(lines) = framed.filter(|l| !l.is_empty()) {
        messages.push(lines.join(" "));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtlab_core::executor::{Crash, Failure};

    #[test]
    fn the_table_gives_every_rank_its_end() {
        let killed = Status::Crashed(Crash::Signal {
            number: 9,
            said: None,
        });
        let stopped = Status::StoppedBecause {
            unit: "worker-2".into(),
            failure: Failure::Crashed,
        };
        let fault = Fault {
            victim: 1,
            hello: live::sample(
                &[(stopped, Some(1.0), 200.0), (killed, Some(1.0), 200.0)],
                Some(137),
            ),
        };
        let table = fault.table();
        assert_eq!(table.rows()[1][4], "crashed: killed by signal 9 (SIGKILL)");
        assert_eq!(
            table.rows()[0][4],
            "cancelled: stopped because worker-2 crashed"
        );
        assert!(table.to_string().contains("host pid 4001"), "{table}");
        assert!(table.to_string().contains("exited with 137"), "{table}");
        assert_eq!(fault.mpirun_said().lines().count(), 1);
    }

    #[test]
    fn mpirun_messages_are_kept_whole() {
        let stderr = "\
--------------------------------------------------------------------------
Primary job  terminated normally, but 1 process returned
a non-zero exit code. Per user-direction, the job has been aborted.
--------------------------------------------------------------------------
--------------------------------------------------------------------------
mpirun noticed that process rank 1 with PID 0 on node node-2 exited on signal 9 (Killed).
--------------------------------------------------------------------------
a stray line
";
        assert_eq!(
            messages(stderr),
            [
                "Primary job  terminated normally, but 1 process returned a non-zero exit code. \
                 Per user-direction, the job has been aborted.",
                "mpirun noticed that process rank 1 with PID 0 on node node-2 exited on signal 9 \
                 (Killed).",
                "a stray line",
            ]
        );
    }
}
