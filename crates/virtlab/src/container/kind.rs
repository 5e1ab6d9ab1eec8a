//! Containers as one more kind of worker of the shared [`crate::executor`]: a
//! container is a process with extra options, so the kind is the process kind whose worker
//! command [`Spec::command`] wraps, plus the cgroups it must remove at the end.

use super::{Cgroup, Limits, Spec};
use crate::executor::{Kind, Reporter, Stop, Unit};
use crate::processes::Processes;
use crate::{Result, executor, work::Work};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Containers with the same limits, one per unit, named after the unit (`container-1`, …).
pub struct Containers {
    processes: Processes,
    limits: Limits,
    groups: Arc<Mutex<Vec<Cgroup>>>,
}

impl Containers {
    /// Refuses at once what this machine cannot give (namespaces, a limit's controller).
    pub fn new(limits: Limits) -> Result<Containers> {
        let limits = limits.checked()?;
        super::support::Support::detect().check(&limits)?;
        let groups = Arc::new(Mutex::new(Vec::new()));
        let held = groups.clone();
        let processes = Processes::wrapped(Box::new(move |unit: &Unit, worker| {
            let spec = Spec::new(&unit.work.name)?.with_limits(limits)?;
            let args: Vec<String> = worker
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let (mut command, group) = spec.command(Path::new(worker.get_program()), &args)?;
            for (key, value) in worker.get_envs() {
                if let Some(value) = value {
                    command.env(key, value);
                }
            }
            lock(&held).push(group);
            Ok(command)
        }))?;
        Ok(Containers {
            processes,
            limits,
            groups,
        })
    }
}

impl Containers {
    /// The cost ladder's container: memory and pids limits (what keeps a container from
    /// hurting its neighbours), each left out, with its cgroup, where this machine has none.
    pub fn for_ladder() -> Result<Containers> {
        let wanted = Limits {
            cpu: None,
            memory: Some(LADDER_MEMORY),
            pids: Some(LADDER_PIDS),
        };
        let (allowed, _) = super::support::Support::detect().allowed(&wanted);
        Containers::new(allowed)
    }
}

/// The ladder's container limits: room for the worker, and a pids limit as a fork-bomb fence.
const LADDER_MEMORY: u64 = 256 << 20;
const LADDER_PIDS: u64 = 64;

fn lock(groups: &Mutex<Vec<Cgroup>>) -> std::sync::MutexGuard<'_, Vec<Cgroup>> {
    groups.lock().unwrap_or_else(|e| e.into_inner())
}

impl Kind for Containers {
    fn name(&self) -> &'static str {
        "container"
    }

    fn check(&self, units: usize) -> Result<()> {
        self.processes.check(units)
    }

    fn start(&mut self, unit: Unit, reporter: Reporter, stop: Stop) -> Result<()> {
        self.processes.start(unit, reporter, stop)
    }

    /// Kills the unit's shim; its pid 1 dies with it (it asked to), and `finish` removes the group.
    fn interrupt(&mut self, index: usize) {
        self.processes.interrupt(index);
    }

    fn finish(&mut self) -> String {
        let processes = self.processes.finish();
        // Each shim removed its group already, unless it was killed; dropping removes the rest.
        lock(&self.groups).clear();
        format!(
            "{} as containers ({})",
            processes.replace("worker processes", "workers"),
            self.limits.describe()
        )
    }
}

/// Runs `work` in `containers` containers through the shared executor.
pub fn run(
    work: &Work,
    containers: usize,
    limits: Limits,
    options: executor::Options,
) -> Result<executor::Run> {
    executor::run(&mut Containers::new(limits)?, work, containers, options)
}
