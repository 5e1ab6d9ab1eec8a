//! What a run of containers gives back: the shared executor's [`Run`] (units, statuses, the
//! timeline, the process tree) and, per container, what the [`super::kind::Containers`] kind
//! gathered beyond a process — its shim's pid and steps, its probe, its cgroup's counters while
//! it ran and at its end, its lines.

use super::Limits;
use super::cgroup::Stats;
use super::probe::Probe;
use serde::{Deserialize, Serialize};
use virtlab_core::Result;
use virtlab_core::executor::{Run, Status};
use virtlab_core::observer::Snapshot;
use virtlab_core::units;
use virtlab_display::Table;

/// One reading of a container's counters, `t_ms` after its run's first container started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the first container started.
    pub t_ms: f64,
    /// The counters then.
    pub stats: Stats,
}

/// How one container went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerReport {
    /// Its name, e.g. `container-2`.
    pub name: String,
    /// The shim's pid (the container's outside part), once started.
    pub shim_pid: Option<u32>,
    /// Pid 1 of the container, as the host sees it (from the shim's end).
    pub host_pid: Option<u32>,
    /// How it ended, as the executor reports it: an OOM kill is
    /// `Crashed("OOM-killed at 64.0 MiB")`, named by the shim.
    pub status: Status,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
    /// From asking for it (its cgroup included) to its first line reaching us.
    pub first_line_ms: Option<f64>,
    /// What it saw, when the run asked for a probe.
    pub probe: Option<Probe>,
    /// The group's counters just before the shim removed it.
    pub end_stats: Option<Stats>,
    /// Its group's counters while it ran (when the kind was asked to sample).
    pub samples: Vec<Sample>,
    /// The container's lines for people (iteration lines, errors).
    pub lines: Vec<String>,
    /// Start-up steps with their CLOCK_MONOTONIC time (ns), from asking for the container to
    /// its first line: ours, the shim's, the child's and the worker's.
    pub setup: Vec<(String, u64)>,
}

impl ContainerReport {
    /// Whether it ran every iteration and pid 1 exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Status::Completed
    }
}

/// Everything one run of containers produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRun {
    /// The executor's run: units, statuses, the timeline, the process tree.
    pub run: Run,
    /// What each container was allowed.
    pub limits: Limits,
    /// One report per container, in order.
    pub containers: Vec<ContainerReport>,
}

impl ContainerRun {
    /// This run, or the error naming its first failed container (see [`Run::check`]).
    pub fn check(&self) -> Result<&ContainerRun> {
        self.run.check().map(|_| self)
    }

    /// The process tree taken mid-run: our process, the shims, pid 1 of each container.
    pub fn tree(&self) -> Result<Snapshot> {
        self.run.tree()
    }

    /// One row per container: shim and host pids, how it ended, ask → first line, memory peak.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            self.run.summary.clone(),
            [
                "container",
                "shim pid",
                "pid 1 on the host",
                "ended",
                "asked → first line",
                "memory peak",
            ],
        );
        let or_dash = |v: Option<u32>| v.map_or("–".into(), |p| p.to_string());
        for c in &self.containers {
            t.row([
                c.name.clone(),
                or_dash(c.shim_pid),
                or_dash(c.host_pid),
                c.status.describe(),
                c.first_line_ms
                    .map_or("never".into(), |ms| format!("{ms:.2} ms")),
                c.end_stats
                    .and_then(|s| s.memory_peak_bytes)
                    .map_or("?".into(), units::bytes),
            ]);
        }
        t
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}
