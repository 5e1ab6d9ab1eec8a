//! Slurm on real clusters: the node table, srun across the nodes and its overhead, the ranks
//! program under `srun --mpi=<plugin>` with the same hits as under mpirun, the queue of two
//! whole-cluster jobs and their accounting; then every way Slurm ends leaves no daemon (drop
//! with a job running, an error half-way through its start, a panic; SIGKILL of a held cluster's keeper is tested through the `virtlab` program).
//! Figures are printed (run with --nocapture), never asserted. Needs root, Slurm and munge.

mod common;

use common::{cluster, need_mpi, need_slurm, one_at_a_time};
use std::time::Duration;
use virtlab_cluster::leftovers::{leftovers, namespaces, slurm_leftovers, slurm_pid_namespaces};
use virtlab_cluster::mpi::{Mpirun, Program};
use virtlab_cluster::slurm::{BREAK_AT, Batch};
use virtlab_cluster::{ErrorKind, Slurm};

fn daemon_pids(slurm: &Slurm) -> Vec<i32> {
    slurm.daemons().map(|(_, pid)| pid).collect()
}

#[test]
fn slurm_schedules_jobs_on_the_nodes() {
    if !need_slurm() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(3);
    let slurm = Slurm::start(&cluster).unwrap();
    let s = slurm.startup();
    println!(
        "slurm start: munged {:.0} ms, slurmctld {:.0} ms, 3 slurmd to idle {:.0} ms, total {:.0} ms",
        s.munge_ms, s.controller_ms, s.nodes_ms, s.total_ms
    );

    let table = slurm.sinfo().unwrap();
    println!("{table:?}");
    assert_eq!(table.len(), 3);
    for (i, row) in table.iter().enumerate() {
        assert_eq!(row.node, format!("node-{}", i + 1));
        assert_eq!(row.state, "idle");
        assert_eq!(row.cpus, 1, "a medium node is 1 CPU");
        assert_eq!(row.memory_mib, 512);
    }

    let run = slurm.srun(3, 3, &["hostname"]).unwrap();
    assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
    let mut hosts: Vec<&str> = run.stdout.lines().collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["node-1", "node-2", "node-3"], "{}", run.stderr);

    let overhead = slurm.srun_overhead(10).unwrap();
    assert_eq!(overhead.runs_ms.len(), 10);
    println!(
        "srun -N1 -n1 true: median {:.1} ms of {:?}",
        overhead.median_ms, overhead.runs_ms
    );

    let e = slurm.srun(4, 4, &["true"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.fix().contains("1 to 3 nodes"), "{e}");

    let demo = slurm.queue_demo(3).unwrap();
    println!(
        "queue: second job {} while the first ran ({}); waited {} s; accounts {:?}",
        demo.second_waiting.state, demo.second_waiting.reason, demo.wait_s, demo.accounting
    );
    assert_eq!(demo.second_waiting.state, "PENDING");
    assert_eq!(demo.second_waiting.reason, "Resources");
    assert_eq!(demo.first.state, "COMPLETED");
    assert_eq!(demo.second.state, "COMPLETED");
    // It was submitted after the first had started, and started after the first ended
    // (Slurm's whole-second clock).
    assert!(demo.second.start_s >= demo.first.end_s, "{demo:?}");
    assert!(demo.wait_s >= 1, "{demo:?}");
    assert_eq!(demo.accounting.len(), 2);
    for account in &demo.accounting {
        assert_eq!(account.cpus, 3, "exclusive: every CPU of the 3 nodes");
        assert!(account.elapsed_s >= 3, "{account:?}");
        assert_eq!(account.cpu_seconds, account.elapsed_s * 3);
    }
    let out = std::fs::read_to_string(
        slurm
            .dir()
            .join("work")
            .join(format!("first-{}.out", demo.first.id)),
    )
    .unwrap();
    assert_eq!(
        out.trim(),
        "node-1",
        "a batch script runs on the job's first node"
    );
}

#[test]
fn ranks_under_srun_count_the_same_hits_as_under_mpirun() {
    if !need_slurm() || !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(3);
    let slurm = Slurm::start(&cluster).unwrap();
    let program = Program::Hits {
        samples: 2_000_000,
        seed: 7,
    };
    println!("srun --mpi=list: {:?}", slurm.mpi_plugins().unwrap());
    let by_mpirun = Mpirun::new(&cluster, 1).run(&program).unwrap();
    assert_eq!(by_mpirun.exit_code, Some(0), "{}", by_mpirun.stderr);
    for (nodes, ranks) in [(3, 3), (3, 6)] {
        let run = slurm.srun_ranks(nodes, ranks, &program).unwrap();
        assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
        println!(
            "{} -> {:?} hits in {:.0} ms",
            run.command,
            run.total_hits(),
            run.wall_ms
        );
        assert_eq!(run.total_hits(), by_mpirun.total_hits());
    }
}

#[test]
fn dropped_with_a_job_running_leaves_no_daemon_and_starts_again() {
    if !need_slurm() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(2);
    let slurm = Slurm::start(&cluster).unwrap();
    let spaces = slurm_pid_namespaces(cluster.state(), &daemon_pids(&slurm));
    let id = slurm
        .submit(&Batch {
            name: "long".into(),
            nodes: 2,
            exclusive: false,
            command: "sleep 1000".into(),
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while slurm.job(id).unwrap().state != "RUNNING" {
        assert!(std::time::Instant::now() < deadline, "the job never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(slurm);
    assert_eq!(
        slurm_leftovers(cluster.dir(), &spaces),
        Vec::<String>::new()
    );
    // The cluster is untouched: Slurm starts on it again.
    let again = Slurm::start(&cluster).unwrap();
    assert_eq!(again.sinfo().unwrap().len(), 2);
}

#[test]
fn an_error_half_way_through_the_start_leaves_no_daemon() {
    if !need_slurm() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(2);
    for step in ["after-munge", "after-controller", "after-nodes"] {
        // SAFETY: Slurm starts in this process only under the lock held here.
        unsafe { std::env::set_var(BREAK_AT, step) };
        let e = Slurm::start(&cluster).unwrap_err();
        // SAFETY: as above.
        unsafe { std::env::remove_var(BREAK_AT) };
        assert_eq!(e.kind(), ErrorKind::Failed);
        assert!(e.problem().contains(step), "{e}");
        let spaces = slurm_pid_namespaces(cluster.state(), &[]);
        assert_eq!(
            slurm_leftovers(cluster.dir(), &spaces),
            Vec::<String>::new(),
            "{step}"
        );
    }
}

#[test]
fn a_panic_with_slurm_up_leaves_nothing() {
    if !need_slurm() {
        return;
    }
    let _serial = one_at_a_time();
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let cluster = cluster(2);
        let slurm = Slurm::start(&cluster).unwrap();
        let state = cluster.state().clone();
        let spaces = slurm_pid_namespaces(&state, &daemon_pids(&slurm));
        tx.send((namespaces(&state), spaces, state)).unwrap();
        panic!("a cell panics with Slurm up");
    });
    assert!(result.is_err());
    let (held, spaces, state) = rx.recv().unwrap();
    assert_eq!(slurm_leftovers(&state.dir, &spaces), Vec::<String>::new());
    assert_eq!(leftovers(&state, &held, true), Vec::<String>::new());
}
