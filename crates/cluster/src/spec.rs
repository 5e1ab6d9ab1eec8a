//! What a cluster is asked to be: how many nodes, and which instance type each one is (the
//! essay's "ready-made options": a small menu of CPU and memory limits), checked before
//! anything is made.

use crate::{Error, ErrorKind, Result};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Addresses .1 to .253 of the /24 are nodes; .254 is the host's own end.
pub const MAX_NODES: usize = 253;

/// One of the cluster's ready-made node sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InstanceType {
    /// Half a CPU, 256 MiB.
    Small,
    /// One CPU, 512 MiB.
    #[default]
    Medium,
    /// Two CPUs, 1 GiB.
    Large,
}

/// The menu, in order of size.
pub const INSTANCE_TYPES: [InstanceType; 3] = [
    InstanceType::Small,
    InstanceType::Medium,
    InstanceType::Large,
];

impl InstanceType {
    /// The type's name as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            InstanceType::Small => "small",
            InstanceType::Medium => "medium",
            InstanceType::Large => "large",
        }
    }

    /// CPUs the node may use (a CFS quota of this many periods per period).
    pub fn cpus(self) -> f64 {
        match self {
            InstanceType::Small => 0.5,
            InstanceType::Medium => 1.0,
            InstanceType::Large => 2.0,
        }
    }

    /// Memory the node may use, in bytes.
    pub fn memory_bytes(self) -> u64 {
        match self {
            InstanceType::Small => 256 << 20,
            InstanceType::Medium => 512 << 20,
            InstanceType::Large => 1 << 30,
        }
    }

    /// MPI slots (ranks placed before oversubscribing): whole CPUs, at least one.
    pub fn slots(self) -> usize {
        (self.cpus().floor() as usize).max(1)
    }
}

impl fmt::Display for InstanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InstanceType {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        INSTANCE_TYPES
            .into_iter()
            .find(|t| t.name() == s.trim())
            .ok_or_else(|| {
                Error::of(ErrorKind::Invalid,
                    format!("there is no instance type named {s:?}"),
                    "choose small (0.5 CPU, 256 MiB), medium (1 CPU, 512 MiB) or large (2 CPU, 1 GiB)",
                )
            })
    }
}

/// A cluster to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSpec {
    /// How many nodes (1 to [`MAX_NODES`]).
    pub nodes: usize,
    /// Every node's size.
    pub instance_type: InstanceType,
}

impl Default for ClusterSpec {
    fn default() -> Self {
        ClusterSpec {
            nodes: 3,
            instance_type: InstanceType::default(),
        }
    }
}

impl ClusterSpec {
    /// Refuses a node count the subnet cannot hold.
    pub fn check(&self) -> Result<()> {
        if self.nodes == 0 || self.nodes > MAX_NODES {
            return Err(Error::of(
                ErrorKind::Invalid,
                format!("a cluster cannot have {} nodes", self.nodes),
                format!(
                    "ask for 1 to {MAX_NODES} nodes (one private /24: .1-.253 are nodes, .254 the host)"
                ),
            ));
        }
        Ok(())
    }
}

/// Refuses to go on without the privileges a cluster needs: veths between network namespaces
/// and cgroup limits need root; without root, only a user namespace could give them, and the
/// cluster is not built that way.
pub fn check_privileges(euid: u32, user_namespaces_allowed: bool) -> Result<()> {
    if euid == 0 {
        return Ok(());
    }
    let why = if user_namespaces_allowed {
        "this user is not root (the cluster's veths, bridge and cgroup limits need root)"
    } else {
        "this user is not root and this kernel refuses it a user namespace"
    };
    Err(Error::unavailable(
        why,
        "run it as root (sudo), or in a container or VM where you are root",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_types_parse_and_refuse_unknown_names() {
        assert_eq!("small".parse::<InstanceType>(), Ok(InstanceType::Small));
        assert_eq!(" large ".parse::<InstanceType>(), Ok(InstanceType::Large));
        let e = "huge".parse::<InstanceType>().unwrap_err();
        assert!(e.problem().contains("\"huge\""), "{e}");
        assert!(
            e.fix().contains("small") && e.fix().contains("large"),
            "{e}"
        );
        assert_eq!(InstanceType::Small.slots(), 1);
        assert_eq!(InstanceType::Large.slots(), 2);
        assert_eq!(InstanceType::Medium.memory_bytes(), 512 << 20);
    }

    #[test]
    fn node_counts_outside_the_subnet_are_refused() {
        for nodes in [0, MAX_NODES + 1] {
            let spec = ClusterSpec {
                nodes,
                ..ClusterSpec::default()
            };
            let e = spec.check().unwrap_err();
            assert!(e.fix().contains("1 to 253"), "{e}");
        }
        assert!(
            ClusterSpec {
                nodes: MAX_NODES,
                ..ClusterSpec::default()
            }
            .check()
            .is_ok()
        );
    }

    #[test]
    fn not_root_is_refused_with_the_reason() {
        assert!(check_privileges(0, false).is_ok());
        let e = check_privileges(1000, false).unwrap_err();
        assert!(e.problem().contains("user namespace"), "{e}");
        assert!(e.fix().contains("root"), "{e}");
        let e = check_privileges(1000, true).unwrap_err();
        assert!(e.problem().contains("not root"), "{e}");
    }
}
