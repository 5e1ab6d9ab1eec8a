//! Every way a cluster ends leaves nothing: dropped with processes running on its nodes, an
//! error half-way through `up`, a panic, SIGKILL of the process that owns it (its holders clean
//! up, the next `up` sweeps its run folder), and a held cluster taken down by name.

mod common;

use common::{leftovers, namespaces, need_root};
use std::process::Command;
use virtlab_cluster::cluster::BREAK_AT;
use virtlab_cluster::{Cluster, ClusterSpec, ErrorKind, held, rundir};

/// Clusters made in this process one at a time, so the half-way test can tell its own groups.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A panicking test (the panic test panics on purpose) leaves the lock poisoned, not held.
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const KEEPER: &str = env!("CARGO_BIN_EXE_virtlab-cluster");

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

#[test]
fn sigkill_of_the_owner_leaves_nothing_once_swept() {
    if !need_root() {
        return;
    }
    let name = format!("killed-{}", std::process::id());
    let state = held::hold(KEEPER.as_ref(), two_nodes(), &name, false).unwrap();
    busy_nodes(&state);
    let held = namespaces(&state);
    // SAFETY: kill sends SIGKILL to the keeper we started.
    unsafe { libc::kill(state.owner as i32, libc::SIGKILL) };
    // The holders saw their life line end: namespaces, processes and cgroups go by themselves.
    // The run folder stays for the next up's sweep (a holder cannot know it is the last).
    assert_eq!(leftovers(&state, &held, false), Vec::<String>::new());
    rundir::sweep();
    assert!(!state.dir.exists());
}

#[test]
fn a_held_cluster_is_listed_and_taken_down_by_name() {
    if !need_root() {
        return;
    }
    let name = format!("held-{}", std::process::id());
    let up = Command::new(KEEPER)
        .args([
            "up", "--name", &name, "--nodes", "2", "--type", "small", "--json",
        ])
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let state: virtlab_cluster::ClusterState = serde_json::from_slice(&up.stdout).unwrap();
    let held = namespaces(&state);
    assert!(
        held::status()
            .iter()
            .any(|s| s.name.as_deref() == Some(name.as_str()))
    );
    let again = Command::new(KEEPER)
        .args(["up", "--name", &name])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("is up already"));
    let down = Command::new(KEEPER).args(["down", &name]).output().unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    assert_eq!(leftovers(&state, &held, true), Vec::<String>::new());
    assert!(held::find(&name).is_err());
}
