//! What a container reports beyond how it ended ([`ContainerDetail`], the container kind's
//! [`Detail`]): what the [`super::kind::Containers`] kind gathered beyond a process — its shim's
//! pid and steps, its probe, its cgroup's counters while it ran and at its end, its lines. A run
//! of containers is the shared executor's `Run<ContainerDetail>`; its table adds the shim's pid,
//! pid 1's host pid and the memory peak.

use super::cgroup::Stats;
use super::probe::Probe;
use serde::{Deserialize, Serialize};
use virtlab_core::executor::{Detail, UnitReport};
use virtlab_core::units;

/// One container's report: how it ended, as every unit's, and what it brought beyond a
/// process.
pub type ContainerReport = UnitReport<ContainerDetail>;

/// One reading of a container's counters, `t_ms` after its run's first container started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds since the first container started.
    pub t_ms: f64,
    /// The counters then.
    pub stats: Stats,
}

/// What one container brought beyond a process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerDetail {
    /// The shim's pid (the container's outside part), once started.
    pub shim_pid: Option<u32>,
    /// Pid 1 of the container, as the host sees it (from the shim's end).
    pub host_pid: Option<u32>,
    /// Whether the OOM killer ended it.
    pub oom_killed: bool,
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

impl Detail for ContainerDetail {
    fn columns() -> &'static [&'static str] {
        &["shim pid", "pid 1 on the host", "memory peak"]
    }

    fn cells(&self) -> Vec<String> {
        let or_dash = |v: Option<u32>| v.map_or("–".into(), |p| p.to_string());
        vec![
            or_dash(self.shim_pid),
            or_dash(self.host_pid),
            self.end_stats
                .and_then(|s| s.memory_peak_bytes)
                .map_or("?".into(), units::bytes),
        ]
    }
}
