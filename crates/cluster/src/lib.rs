//! virtlab-cluster: chapter 8's machinery. A cluster of nodes made of namespaces on this one
//! machine ([`Cluster`]), MPI ranks started across it by mpirun through a launcher agent in
//! place of ssh, and Slurm scheduling jobs on it. Every exit path removes what was made.
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod agent;
pub mod beside;
pub mod cgroup;
pub mod cluster;
pub mod error;
pub mod fault;
pub mod held;
pub mod holder;
pub mod hostfile;
pub mod kind;
pub mod leftovers;
pub mod live;
pub mod mpi;
pub mod net;
pub mod pingpong;
pub mod report;
pub mod rundir;
pub mod scaling;
pub mod slurm;
pub mod spec;
pub mod support;

pub use cluster::{Cluster, ClusterState, Node};
pub use error::{Error, ErrorKind, Result};
pub use slurm::Slurm;
pub use spec::{ClusterSpec, InstanceType};
pub use support::Support;
