//! What a run gives back, the same for every kind of worker: one [`UnitReport`] per unit with
//! one [`Status`], the timeline, the process tree taken mid-run, and a table for people.

use crate::observer::{self, Snapshot};
use crate::timeline::Timeline;
use crate::{Error, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use virtlab_display::Table;

/// How one unit ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", content = "detail", rename_all = "snake_case")]
pub enum Status {
    /// It ran every iteration.
    Completed,
    /// It ended by itself before its last iteration.
    Crashed(Crash),
    /// Its code panicked, with the panic's message.
    Panicked(String),
    /// It was still running at the run's deadline, this long after the start, and was stopped.
    TimedOut {
        /// The deadline, from the run's start.
        after_ms: u64,
    },
    /// It was cancelled on purpose ([`Options::cancel`](super::Options::cancel)).
    Cancelled {
        /// When, from the run's start.
        after_ms: u64,
    },
    /// It was stopped because another unit failed by itself (the supervisor's rule,
    /// [`Options::fail_fast`](super::Options::fail_fast)).
    StoppedBecause {
        /// The unit that failed, e.g. `worker-2`.
        unit: String,
        /// How it failed.
        failure: Failure,
    },
    /// It saw its stop flag and ended early before the executor said why (a kind whose unit
    /// stops by itself reports this; the executor puts its own reason in its place).
    Stopped,
    /// It could not be started: the OS or the kind refused it, with the refusal's kind and fix.
    Refused(Error),
}

/// How a unit died by itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "crash", rename_all = "snake_case")]
pub enum Crash {
    /// Its process (for a container: its pid 1) exited with a failure code, with the error it
    /// reported, if any.
    Exit {
        /// The exit code.
        code: i32,
        /// What it said on the way out.
        said: Option<String>,
    },
    /// Its process was killed by a signal.
    Signal {
        /// The signal's number.
        number: i32,
        /// What it said before, if anything.
        said: Option<String>,
    },
    /// The kernel's OOM killer ended it (a container over its memory limit).
    OutOfMemory {
        /// Its memory when killed, if read.
        at_bytes: Option<u64>,
    },
    /// A guest stopped at a fault it could not handle: a WebAssembly trap, a VM's triple fault.
    Trap {
        /// The trap, in the guest's words ("out of bounds memory access", "triple fault").
        what: String,
        /// The iteration it was at, when known.
        iteration: Option<u32>,
    },
    /// A line on the worker protocol that did not parse: a bug on one side of the protocol.
    Protocol {
        /// The line, as read.
        line: String,
        /// What was wrong with it.
        problem: String,
    },
    /// It ended without saying how (its output ended and it could not be waited for, say).
    Unreported(String),
}

/// How a unit failed by itself: what stopped the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// It crashed.
    Crashed,
    /// It panicked.
    Panicked,
    /// It could not be started.
    Refused,
}

impl Failure {
    fn verb(self) -> &'static str {
        match self {
            Failure::Crashed => "crashed",
            Failure::Panicked => "panicked",
            Failure::Refused => "was refused",
        }
    }
}

impl Status {
    /// How this unit failed by itself (crashed, panicked, refused), if it did: what stops the
    /// others.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            Status::Crashed(_) => Some(Failure::Crashed),
            Status::Panicked(_) => Some(Failure::Panicked),
            Status::Refused(_) => Some(Failure::Refused),
            _ => None,
        }
    }

    /// Whether this unit failed by itself (crashed, panicked, refused): what stops the others.
    pub fn is_failure(&self) -> bool {
        self.failure().is_some()
    }

    /// "completed", "crashed: killed by signal 6 (SIGABRT)", …
    pub fn describe(&self) -> String {
        match self {
            Status::Completed => "completed".into(),
            Status::Crashed(crash) => format!("crashed: {}", crash.describe()),
            Status::Panicked(message) => format!("panicked: {message}"),
            Status::TimedOut { after_ms } => {
                format!("timed out: still running {after_ms} ms after the start")
            }
            Status::Cancelled { after_ms } => {
                format!("cancelled: cancelled {after_ms} ms after the start")
            }
            Status::StoppedBecause { unit, failure } => {
                format!("cancelled: stopped because {unit} {}", failure.verb())
            }
            Status::Stopped => "cancelled: stopped before its last iteration".into(),
            Status::Refused(error) => format!("refused: {}", error.problem()),
        }
    }
}

impl Crash {
    /// How a finished child process ended, with what it said on the way out.
    pub fn of_exit(status: std::process::ExitStatus, said: Option<String>) -> Crash {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if let Some(number) = status.signal() {
                return Crash::Signal { number, said };
            }
        }
        match status.code() {
            Some(code) => Crash::Exit { code, said },
            None => Crash::Unreported("it ended without a status".into()),
        }
    }

    /// "killed by signal 6 (SIGABRT)", "exit status 3: …", "OOM-killed at 64.0 MiB", …
    pub fn describe(&self) -> String {
        let with = |text: String, said: &Option<String>| match said {
            Some(said) => format!("{text}: {said}"),
            None => text,
        };
        match self {
            Crash::Exit { code, said } => with(format!("exit status {code}"), said),
            Crash::Signal { number, said } => with(
                format!("killed by signal {number}{}", signal_name(*number)),
                said,
            ),
            Crash::OutOfMemory {
                at_bytes: Some(bytes),
            } => {
                format!("OOM-killed at {}", crate::units::bytes(*bytes))
            }
            Crash::OutOfMemory { at_bytes: None } => "OOM-killed".into(),
            Crash::Trap {
                what,
                iteration: Some(i),
            } => format!("{what} at iteration {i}"),
            Crash::Trap {
                what,
                iteration: None,
            } => format!("trap: {what}"),
            Crash::Protocol { line, problem } => {
                format!("it wrote a line virtlab cannot read ({problem}): {line}")
            }
            Crash::Unreported(why) => why.clone(),
        }
    }
}

/// " (SIGABRT)" for the signals a run shows, else "".
fn signal_name(number: i32) -> &'static str {
    #[cfg(unix)]
    {
        match number {
            libc::SIGABRT => " (SIGABRT)",
            libc::SIGKILL => " (SIGKILL)",
            libc::SIGSEGV => " (SIGSEGV)",
            libc::SIGTERM => " (SIGTERM)",
            libc::SIGINT => " (SIGINT)",
            _ => "",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = number;
        ""
    }
}

/// What a kind of worker reports about each unit beyond how it ended: a container's shim pid,
/// steps, counters and probe; nothing (`()`) for a thread. A run's table shows its columns.
pub trait Detail:
    Clone + fmt::Debug + PartialEq + Default + Serialize + DeserializeOwned + Send + 'static
{
    /// The columns this kind adds to a run's table.
    fn columns() -> &'static [&'static str] {
        &[]
    }

    /// This unit's cells in those columns.
    fn cells(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Nothing beyond how the unit ended: processes, threads, tasks, instances.
impl Detail for () {}

/// One unit of a run, with what its kind reports about it (`D`, see [`Detail`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "D: Detail")]
pub struct UnitReport<D = ()> {
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
    /// What its kind reports beyond that.
    pub detail: D,
}

impl<D> UnitReport<D> {
    /// Whether it ran every iteration.
    pub fn completed(&self) -> bool {
        self.status == Status::Completed
    }
}

/// Everything one run produced; `D` is what its kind reports per unit ([`Detail`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "D: Detail")]
pub struct Run<D = ()> {
    /// The kind of unit: "process", "thread", "task", …
    pub kind: String,
    /// The process that ran the executor (a notebook's, or the CLI's).
    pub host_pid: u32,
    /// The kind's one-line summary, e.g. "3 tasks on 1 OS thread (tid 4243)".
    pub summary: String,
    /// One report per unit, in order.
    pub units: Vec<UnitReport<D>>,
    /// Who ran when.
    pub timeline: Timeline,
    /// The process tree, taken once every unit had printed its first line.
    pub snapshot: Option<Snapshot>,
    /// From the first start to the last unit's end.
    pub wall_ms: f64,
}

impl<D: Detail> Run<D> {
    /// Whether every unit completed.
    pub fn succeeded(&self) -> bool {
        self.units.iter().all(|u| u.status == Status::Completed)
    }

    /// The units that failed by themselves (crashed, panicked, refused).
    pub fn failures(&self) -> Vec<&UnitReport<D>> {
        self.units
            .iter()
            .filter(|u| u.status.is_failure())
            .collect()
    }

    /// This run, or the error that names its first failed unit: for `?` in code that should
    /// stop when a unit failed. A refused unit gives its refusal (its kind and fix kept).
    pub fn check(&self) -> Result<&Run<D>> {
        // Said only when it happened: a run without fail-fast lets the others run on.
        let stopped = self
            .units
            .iter()
            .any(|u| matches!(u.status, Status::StoppedBecause { .. }));
        let others = if stopped {
            "; the other units were stopped"
        } else {
            ""
        };
        let Some(unit) = self.failures().first().copied() else {
            return Ok(self);
        };
        let problem = format!(
            "{} {} {}{others}",
            self.kind,
            unit.name,
            unit.status.describe()
        );
        Err(match &unit.status {
            Status::Refused(refusal) => Error::of(refusal.kind(), problem, refusal.fix()),
            _ => Error::new(
                problem,
                "read the unit's last lines above; a unit that fails on purpose (Options::fault) ends this way",
            ),
        })
    }

    /// This run without its kind's details: what every kind has in common.
    pub fn plain(self) -> Run {
        Run {
            kind: self.kind,
            host_pid: self.host_pid,
            summary: self.summary,
            units: self
                .units
                .into_iter()
                .map(|u| UnitReport {
                    name: u.name,
                    pid: u.pid,
                    tid: u.tid,
                    status: u.status,
                    first_line_ms: u.first_line_ms,
                    detail: (),
                })
                .collect(),
            timeline: self.timeline,
            snapshot: self.snapshot,
            wall_ms: self.wall_ms,
        }
    }

    /// The process tree taken mid-run.
    pub fn tree(&self) -> Result<Snapshot> {
        observer::taken(&self.snapshot)
    }

    /// One row per unit: name, pid, tid, how it ended, ask → first line, and the columns its
    /// kind adds ([`Detail::columns`]).
    pub fn table(&self) -> Table {
        let mut headers = vec![
            self.kind.as_str(),
            "pid",
            "OS thread id",
            "ended",
            "asked → first line",
        ];
        headers.extend(D::columns());
        let mut t = Table::new(self.summary.clone(), headers);
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "–".into());
        for u in &self.units {
            let mut row = vec![
                u.name.clone(),
                or_dash(u.pid.map(|p| p.to_string())),
                or_dash(u.tid.map(|t| t.to_string())),
                u.status.describe(),
                u.first_line_ms
                    .map_or("never".into(), |ms| format!("{ms:.2} ms")),
            ];
            row.extend(u.detail.cells());
            t.row(row);
        }
        t
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn exit_statuses_are_described_in_words() {
        use std::os::unix::process::ExitStatusExt;
        let exit = |raw| Crash::of_exit(std::process::ExitStatus::from_raw(raw), None);
        assert_eq!(exit(3 << 8).describe(), "exit status 3");
        assert_eq!(
            exit(libc::SIGABRT).describe(),
            "killed by signal 6 (SIGABRT)"
        );
        let said = Crash::of_exit(
            std::process::ExitStatus::from_raw(1 << 8),
            Some("no GPU".into()),
        );
        assert_eq!(said.describe(), "exit status 1: no GPU");
    }

    #[test]
    fn a_refused_unit_s_check_keeps_the_refusal_s_kind_and_fix() {
        let refusal = Error::unavailable("no /dev/kvm", "load the kvm module");
        let run = Run {
            kind: "vm".into(),
            host_pid: 1,
            summary: String::new(),
            units: vec![UnitReport {
                name: "vm-1".into(),
                pid: None,
                tid: None,
                status: Status::Refused(refusal.clone()),
                first_line_ms: None,
                detail: (),
            }],
            timeline: Timeline::default(),
            snapshot: None,
            wall_ms: 0.0,
        };
        let err = run.check().unwrap_err();
        assert_eq!(err.kind(), refusal.kind());
        assert_eq!(err.fix(), refusal.fix());
        assert!(err.problem().contains("vm-1 refused: no /dev/kvm"), "{err}");
    }
}
