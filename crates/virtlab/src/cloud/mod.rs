//! Chapter 9: the cloud. Published prices, the bill, break-even, coin play, a seeded trace and
//! elastic serving come from `virtlab-cloud` (re-exported here under the same names); what
//! needs chapter 7 as well lives here, where both crates are visible: chapter 7's containers as
//! instances ([`container`]), the instance kinds a run may choose ([`InstanceKind`]), and
//! policies served and billed side by side ([`runs`]), noisy neighbours on containers ([`noisy`]), "which layer am I in?" asked natively and in a
//! container ([`layers`]), one job description deployed on every backend ([`deploy`]), and the whole
//! ladder on one chart beside a cold-started instance ([`ladder`]).

pub mod chapter;
pub mod charts;
#[cfg(target_os = "linux")]
pub mod container;
pub mod deploy;
pub mod ladder;
pub mod layers;
#[cfg(target_os = "linux")]
pub mod noisy;
pub mod runs;
pub mod tables;

pub use virtlab_cloud::{
    bill, breakeven, instance, job, neighbours, prices, requests, serve, trace, whereami, work,
};

use crate::{Error, Result};
use instance::{Launcher, ProcessLauncher};
use prices::Size;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The `virtlab` subcommand every instance runs (`virtlab instance`), as a plain process or as
/// pid 1 of a container.
pub const INSTANCE_COMMAND: &str = "instance";

/// What an instance is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceKind {
    /// A plain process (`virtlab instance`): a cold start is a program start.
    Process,
    /// Chapter 7's container with the instance's CPU and memory as its limits: a cold start is
    /// a container start.
    Container,
}

impl InstanceKind {
    /// Both kinds, cheapest start first.
    pub const ALL: [InstanceKind; 2] = [InstanceKind::Process, InstanceKind::Container];

    /// The kind's name as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            InstanceKind::Process => "process",
            InstanceKind::Container => "container",
        }
    }

    /// A kind from the CLI's word.
    pub fn parse(word: &str) -> Result<InstanceKind> {
        InstanceKind::ALL
            .into_iter()
            .find(|k| k.name() == word)
            .ok_or_else(|| {
                Error::invalid(
                    "the instance kind",
                    format!("{word:?}"),
                    "use process or container",
                )
            })
    }

    /// A launcher of this kind's instances, sold as `size`: the release `virtlab` program
    /// running `virtlab instance`, plainly or as pid 1 of a container limited to `size`.
    pub fn launcher(self, size: Size) -> Result<Arc<dyn Launcher>> {
        match self {
            InstanceKind::Process => {
                let program = crate::release::program()?;
                let launcher = ProcessLauncher::new(program, size)?
                    .with_args(vec![INSTANCE_COMMAND.to_string()]);
                Ok(Arc::new(launcher))
            }
            #[cfg(target_os = "linux")]
            InstanceKind::Container => Ok(Arc::new(container::ContainerLauncher::new(size)?)),
            #[cfg(not(target_os = "linux"))]
            InstanceKind::Container => Err(Error::unavailable(
                "container instances need Linux (namespaces and cgroups)",
                "use --instance process here, or run on Linux",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_by_name_and_an_unknown_one_is_refused() {
        for kind in InstanceKind::ALL {
            assert_eq!(InstanceKind::parse(kind.name()).unwrap(), kind);
        }
        let e = InstanceKind::parse("vm").unwrap_err();
        assert!(e.problem().contains("\"vm\""), "{e}");
        assert!(e.fix().contains("process or container"), "{e}");
    }
}
