//! What a run gives back, the same for every kind of worker: one [`UnitReport`] per unit with
//! one [`Status`], the timeline, the process tree taken mid-run, and a table for people.

use crate::observer::{self, Snapshot};
use crate::timeline::Timeline;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use virtlab_display::Table;

/// How one unit ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Status {
    /// It ran every iteration.
    Completed,
    /// It died: "killed by signal 6 (SIGABRT)", "exit status 3", "triple fault at iteration 1",
    /// "OOM-killed".
    Crashed(String),
    /// Its code panicked, with the panic's message.
    Panicked(String),
    /// It was still running at the run's deadline, and was stopped.
    TimedOut(String),
    /// It was stopped from outside: cancelled, or because another unit failed.
    Cancelled(String),
    /// It could not be started: the OS (or the kind's limits) refused it.
    Refused(String),
}

impl Status {
    /// Whether this unit failed by itself (crashed, panicked, refused): what stops the others.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Status::Crashed(_) | Status::Panicked(_) | Status::Refused(_)
        )
    }

    /// "completed", "crashed: killed by signal 6 (SIGABRT)", …
    pub fn describe(&self) -> String {
        match self {
            Status::Completed => "completed".into(),
            Status::Crashed(d) => format!("crashed: {d}"),
            Status::Panicked(d) => format!("panicked: {d}"),
            Status::TimedOut(d) => format!("timed out: {d}"),
            Status::Cancelled(d) => format!("cancelled: {d}"),
            Status::Refused(d) => format!("refused: {d}"),
        }
    }
}

/// One unit of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitReport {
    /// Its name, e.g. `worker-2`.
    pub name: String,
    /// The process it ran in (from its first event), if it got that far.
    pub pid: Option<u32>,
    /// The OS thread it ran on (from its first event).
    pub tid: Option<u64>,
    /// How it ended.
    pub status: Status,
    /// From asking for it to its first line reaching the executor.
    pub first_line_ms: Option<f64>,
}

/// Everything one run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The kind of unit: "process", "thread", "task", …
    pub kind: String,
    /// The process that ran the executor (a notebook's, or the CLI's).
    pub host_pid: u32,
    /// The kind's one-line summary, e.g. "3 tasks on 1 OS thread (tid 4243)".
    pub summary: String,
    /// One report per unit, in order.
    pub units: Vec<UnitReport>,
    /// Who ran when.
    pub timeline: Timeline,
    /// The process tree, taken once every unit had printed its first line.
    pub snapshot: Option<Snapshot>,
    /// From the first start to the last unit's end.
    pub wall_ms: f64,
}

impl Run {
    /// Whether every unit completed.
    pub fn succeeded(&self) -> bool {
        self.units.iter().all(|u| u.status == Status::Completed)
    }

    /// The units that failed by themselves (crashed, panicked, refused).
    pub fn failures(&self) -> Vec<&UnitReport> {
        self.units
            .iter()
            .filter(|u| u.status.is_failure())
            .collect()
    }

    /// This run, or the error that names its first failed unit: for `?` in code that should
    /// stop when a unit failed.
    pub fn check(&self) -> Result<&Run> {
        // Said only when it happened: a run without fail-fast lets the others run on.
        let stopped = self.units.iter().any(
            |u| matches!(&u.status, Status::Cancelled(why) if why.starts_with("stopped because")),
        );
        match self.failures().first() {
            None => Ok(self),
            Some(unit) => Err(Error::new(
                format!(
                    "{} {} {}{}",
                    self.kind,
                    unit.name,
                    unit.status.describe(),
                    if stopped {
                        "; the other units were stopped"
                    } else {
                        ""
                    }
                ),
                match unit.status {
                    Status::Refused(_) => "run fewer units at once",
                    _ => {
                        "read the unit's last lines above; a unit that fails on purpose (Options::fault) ends this way"
                    }
                },
            )),
        }
    }

    /// The process tree taken mid-run.
    pub fn tree(&self) -> Result<Snapshot> {
        observer::taken(&self.snapshot)
    }

    /// One row per unit: name, pid, tid, how it ended, ask → first line.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            self.summary.clone(),
            [
                self.kind.as_str(),
                "pid",
                "OS thread id",
                "ended",
                "asked → first line",
            ],
        );
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".into());
        for u in &self.units {
            t.row([
                u.name.clone(),
                or_dash(u.pid.map(|p| p.to_string())),
                or_dash(u.tid.map(|t| t.to_string())),
                u.status.describe(),
                u.first_line_ms
                    .map_or("never".into(), |ms| format!("{ms:.2} ms")),
            ]);
        }
        t
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}
