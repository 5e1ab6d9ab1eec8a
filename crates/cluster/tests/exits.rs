//! Every way a cluster ends leaves nothing: dropped with processes running on its nodes, an
//! error half-way through `up`, a panic. (SIGKILL of a held cluster's keeper and `down` by name
//! are tested through the `virtlab` program, in `crates/virtlab/tests/cluster.rs`.)

mod common;

use common::{need_root, one_at_a_time};
use std::process::Command;
use virtlab_cluster::cluster::BREAK_AT;
use virtlab_cluster::leftovers::{leftovers, namespaces};
use virtlab_cluster::{Cluster, ClusterSpec, ErrorKind, rundir};

fn two_nodes() -> ClusterSpec {
    ClusterSpec {
        nodes: 2,
        ..ClusterSpec::default()
    }
}

/// Starts a long sleep on every node, detached from the agent's caller.
fn busy_nodes(state: &virtlab_cluster::ClusterState) {
    for node in &state.nodes {
        let agent = state.dir.join("agent");
        let out = Command::new(agent)
            .args([&node.name, "sleep 1000 >/dev/null 2>&1 &"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dropped_with_work_running_leaves_nothing() {
    if !need_root() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = Cluster::up(two_nodes()).unwrap();
    let state = cluster.state().clone();
    busy_nodes(&state);
    let held = namespaces(&state);
    drop(cluster);
    assert_eq!(leftovers(&state, &held, true), Vec::<String>::new());
}

#[test]
fn an_error_half_way_through_up_leaves_nothing() {
    if !need_root() {
        return;
    }
    let _serial = one_at_a_time();
    for step in ["after-switch", "after-nodes", "after-network"] {
        let before = rundir::folders();
        // SAFETY: the other tests of this process make clusters only under the lock held here,
        // and the keeper tests' clusters live in other processes, so nothing reads it meanwhile.
        unsafe { std::env::set_var(BREAK_AT, step) };
        let e = Cluster::up(two_nodes()).unwrap_err();
        // SAFETY: as above.
        unsafe { std::env::remove_var(BREAK_AT) };
        assert_eq!(e.kind(), ErrorKind::Failed);
        assert!(e.problem().contains(step), "{e}");
        let after: Vec<_> = rundir::folders()
            .into_iter()
            .filter(|d| !before.contains(d))
            .collect();
        assert_eq!(after, Vec::<std::path::PathBuf>::new(), "{step}");
        let mine = format!("virtlab-{}-c", std::process::id());
        assert_eq!(
            virtlab_cluster::cgroup::cluster_groups(&mine),
            Vec::<std::path::PathBuf>::new()
        );
    }
}

#[test]
fn a_panic_with_a_cluster_up_leaves_nothing() {
    if !need_root() {
        return;
    }
    let _serial = one_at_a_time();
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let cluster = Cluster::up(two_nodes()).unwrap();
        let state = cluster.state().clone();
        busy_nodes(&state);
        tx.send((namespaces(&state), state)).unwrap();
        panic!("a cell panics with the cluster up");
    });
    assert!(result.is_err());
    let (held, state) = rx.recv().unwrap();
    assert_eq!(leftovers(&state, &held, true), Vec::<String>::new());
}
