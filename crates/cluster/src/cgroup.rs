//! A node's cgroup: one of chapter 7's container groups (`virtlab_container::cgroup`), with
//! its instance type's CPU and memory limits. The nodes are made from chapter 7's parts, so
//! their groups are named, limited, swept when stale and removed as a container's are.

use crate::Result;
use std::path::PathBuf;
use virtlab_container::Limits;
use virtlab_container::support::Support;

pub use virtlab_container::Cgroup;

/// Makes `virtlab-<our pid>-<name>` with `cpus` and `memory` limits (stale groups of dead
/// owners go first), or says which controller is missing and how to get it.
pub fn create(name: &str, cpus: f64, memory: u64) -> Result<Cgroup> {
    let support = Support::detect();
    let limits = Limits {
        cpu: Some(cpus),
        memory: Some(memory),
        pids: None,
    };
    support.check(&limits)?;
    Cgroup::create(&support, name, &limits)
}

/// Every group whose name holds `tag` (any owner), in every hierarchy the lab's groups go in:
/// what a leftover check looks for.
pub fn cluster_groups(tag: &str) -> Vec<PathBuf> {
    let support = Support::detect();
    let mut bases: Vec<PathBuf> = support
        .controllers
        .iter()
        .filter_map(|c| c.place.as_ref().ok().map(|(_, base)| base.clone()))
        .collect();
    bases.sort();
    bases.dedup();
    bases
        .iter()
        .filter_map(|b| std::fs::read_dir(b).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(tag))
        })
        .collect()
}
