//! Shared by the cluster's tests: whether this machine can run them (root, Open MPI, Slurm),
//! recording the skip with the reason when not ([`virtlab_testkit::skip`]).

// Each test binary uses its own share of these helpers.
#![allow(dead_code)]

pub use virtlab_testkit::skip;

use virtlab_cluster::{Cluster, ClusterSpec};

/// A test binary's clusters one at a time: two at once on 2 cores would measure each other, and
/// the half-way tests set an environment variable and tell their own groups apart.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds this binary's clusters to one at a time while the guard lives.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A panicking test (the panic tests panic on purpose) leaves the lock poisoned, not held.
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A cluster of `nodes` default nodes, up.
pub fn cluster(nodes: usize) -> Cluster {
    Cluster::up(ClusterSpec {
        nodes,
        ..ClusterSpec::default()
    })
    .unwrap()
}

/// Whether we are root (a cluster needs it); records the skip when not.
pub fn need_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip("a cluster needs root (veths, bridge, cgroups)");
    }
    root
}

/// Whether Slurm can be tested here (root, Slurm, munge); records the skip when not.
pub fn need_slurm() -> bool {
    if !need_root() {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let found = |p: &str| virtlab_cluster::slurm::find_program(p).is_some();
    if let Err(e) = virtlab_cluster::slurm::check_prerequisites(euid, found) {
        skip(e);
        return false;
    }
    true
}

/// Whether MPI runs can be tested here (root, Open MPI, `virtlab-ranks` built with it); records
/// the skip when not.
pub fn need_mpi() -> bool {
    if !need_root() {
        return false;
    }
    if let Err(e) = virtlab_cluster::mpi::ready() {
        skip(e);
        return false;
    }
    true
}
