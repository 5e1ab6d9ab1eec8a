//! MPI across real clusters: the same hits for any rank count, ping-pong on one node and
//! across nodes, the yield trap both ways, a rank killed mid-run, ranks on the executor stopped
//! at a deadline or a cancel. Figures are printed (run with
//! --nocapture), never asserted. Needs root, Open MPI and a `virtlab-ranks` built with `mpi`.

mod common;

use common::{cluster, need_mpi, need_root, one_at_a_time};
use std::time::Duration;
use virtlab_cluster::ErrorKind;
use virtlab_cluster::kind::Ranks;
use virtlab_cluster::mpi::{Mpirun, Program, RankLine};
use virtlab_cluster::pingpong;
use virtlab_core::executor::{self, Cancel, Options, Status};
use virtlab_core::work::Work;

#[test]
fn the_hit_count_is_the_same_for_1_3_and_6_ranks() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(3);
    let program = Program::Hits {
        samples: 2_000_000,
        seed: 7,
    };
    let mut totals = Vec::new();
    for ranks in [1, 3, 6] {
        let run = Mpirun::new(&cluster, ranks).run(&program).unwrap();
        assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
        let parts = run
            .lines
            .iter()
            .filter(|l| matches!(l, RankLine::Hits { .. }))
            .count();
        assert_eq!(parts, ranks);
        let worst = run
            .lines
            .iter()
            .filter_map(|l| match l {
                RankLine::Hits {
                    compute_ms,
                    reduce_ms,
                    init_ms,
                    ..
                } => Some((*init_ms, *compute_ms, *reduce_ms)),
                _ => None,
            })
            .fold((0.0f64, 0.0f64, 0.0f64), |a, b| {
                (a.0.max(b.0), a.1.max(b.1), a.2.max(b.2))
            });
        println!(
            "hits {ranks} ranks: {:?}; slowest rank: MPI_Init {:.0} ms, compute {:.1} ms, reduce {:.2} ms; mpirun wall {:.0} ms",
            run.total_hits(),
            worst.0,
            worst.1,
            worst.2,
            run.wall_ms
        );
        totals.push(run.total_hits().unwrap());
    }
    assert!(totals.iter().all(|&t| t == totals[0]), "{totals:?}");
}

#[test]
fn ping_pong_on_one_node_and_across_two_and_the_yield_trap() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(2);
    let program = Program::PingPong {
        sizes: vec![8, 4 << 20],
        rounds: 50,
    };
    let cases = [
        ("one node (shared memory)", vec![1], 2, true),
        (
            "two nodes (TCP over the bridge), yield on",
            vec![1, 2],
            1,
            true,
        ),
        (
            "two nodes (TCP over the bridge), yield off",
            vec![1, 2],
            1,
            false,
        ),
    ];
    for (what, nodes, slots, yield_on) in cases {
        let run = Mpirun::new(&cluster, 2)
            .nodes(&nodes)
            .slots(slots)
            .yield_when_idle(yield_on)
            .timeout(Duration::from_secs(240))
            .run(&program)
            .unwrap();
        assert_eq!(run.exit_code, Some(0), "{what}: {}", run.stderr);
        let points = run.pingpong_points();
        assert_eq!(points.len(), 2, "{what}");
        for (bytes, us, gbs) in points {
            println!("pingpong {what}: {bytes} B one-way {us:.2} µs, {gbs:.3} GB/s");
        }
    }
    let trap = pingpong::yield_trap(&cluster, 8, 50).unwrap();
    for (way, (one, two)) in [("spin", trap.spin), ("yield", trap.yielding)] {
        assert!(one > 0.0 && two > 0.0, "{trap:?}");
        println!("yield trap, {way}: one node {one:.2} µs, two nodes {two:.2} µs");
    }
}

#[test]
fn hello_lines_carry_node_and_host_pids_and_a_killed_rank_stops_the_job() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(3);
    let quick = Mpirun::new(&cluster, 3)
        .run(&Program::Hello {
            iterations: 1,
            interval_ms: 0,
        })
        .unwrap();
    assert_eq!(quick.exit_code, Some(0), "{}", quick.stderr);
    println!(
        "hello: asked -> first line {:.0} ms",
        quick.first_line_ms.unwrap()
    );
    let nodes: Vec<String> = quick
        .lines
        .iter()
        .filter_map(|l| match l {
            RankLine::Hello { node, init_ms, .. } => {
                println!("MPI_Init {init_ms:.0} ms on {node}");
                Some(node.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(nodes.len(), 3);
    for n in 1..=3 {
        assert!(nodes.contains(&format!("node-{n}")), "{nodes:?}");
    }

    let running = Mpirun::new(&cluster, 3)
        .spawn(&Program::Hello {
            iterations: 100,
            interval_ms: 100,
        })
        .unwrap();
    // Rank processes of node 2 are found from the host, in node 2's pid namespace.
    let node2 =
        std::fs::read_link(format!("/proc/{}/ns/pid", cluster.nodes()[1].holder_pid)).unwrap();
    let ranks_on_node2 = || -> Vec<u32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_link(format!("/proc/{pid}/ns/pid")).is_ok_and(|l| l == node2)
            })
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "virtlab-ranks")
            })
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let victim = loop {
        if let Some(&pid) = ranks_on_node2().first() {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no rank started on node 2"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: kills the rank process found above, in our own cluster's node.
    unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    let run = running.finish().unwrap();
    assert_ne!(run.exit_code, Some(0));
    // mpirun's own account names the rank that died and its signal.
    let (rank, signal) = run
        .killed_rank()
        .unwrap_or_else(|| panic!("{}", run.stderr));
    println!("mpirun: rank {rank} exited on signal {signal}");
    assert_eq!(signal, libc::SIGKILL);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(ranks_on_node2(), Vec::<u32>::new());
}

#[test]
fn zero_ranks_and_a_missing_node_are_clear_errors() {
    if !need_root() {
        return;
    }
    let cluster = cluster(1);
    let program = Program::Hits {
        samples: 10,
        seed: 1,
    };
    let e = Mpirun::new(&cluster, 0).run(&program).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Invalid);
    assert!(e.fix().contains("1 rank"), "{e}");
    let e = Mpirun::new(&cluster, 2)
        .nodes(&[1, 4])
        .run(&program)
        .unwrap_err();
    assert!(e.problem().contains("no node 4"), "{e}");
}

#[test]
fn strong_and_weak_scaling_count_the_same_hits_and_have_their_shape() {
    use virtlab_cluster::scaling::{Scaling, ScalingPlan, sweep, table};
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(3);
    let strong = sweep(&cluster, &ScalingPlan::new(Scaling::Strong, 20_000_000)).unwrap();
    println!(
        "strong scaling, 20 M samples, 3 medium nodes:\n{}",
        table(&strong)
    );
    assert_eq!(
        strong.iter().map(|p| p.ranks).collect::<Vec<_>>(),
        (1..=8).collect::<Vec<_>>()
    );
    assert!(
        strong
            .iter()
            .all(|p| p.hits == strong[0].hits && p.samples == 20_000_000)
    );
    assert!(
        strong
            .iter()
            .all(|p| p.compute_ms > 0.0 && p.communicate_ms >= 0.0)
    );
    assert_eq!(strong[0].efficiency, Some(1.0));

    let weak_plan = ScalingPlan {
        ranks: vec![1, 2, 4],
        ..ScalingPlan::new(Scaling::Weak, 5_000_000)
    };
    let weak = sweep(&cluster, &weak_plan).unwrap();
    println!("weak scaling, 5 M samples per rank:\n{}", table(&weak));
    let samples: Vec<u64> = weak.iter().map(|p| p.samples).collect();
    assert_eq!(samples, [5_000_000, 10_000_000, 20_000_000]);
    // 20 M samples counted by 4 ranks here are the 20 M of the strong sweep: the same hits.
    assert_eq!(weak[2].hits, strong[0].hits);
    assert!(weak[0].hits < weak[1].hits && weak[1].hits < weak[2].hits);
}

/// The `virtlab-ranks` processes in `cluster`'s nodes (host pids).
fn ranks_in(cluster: &virtlab_cluster::Cluster) -> Vec<u32> {
    let node_namespaces: Vec<_> = cluster
        .nodes()
        .iter()
        .filter_map(|n| std::fs::read_link(format!("/proc/{}/ns/pid", n.holder_pid)).ok())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|l| node_namespaces.contains(&l))
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "virtlab-ranks")
        })
        .collect()
}

/// The ranks still in `cluster`'s nodes after waiting up to 10 s for them to go.
fn ranks_left(cluster: &virtlab_cluster::Cluster) -> Vec<u32> {
    virtlab_testkit::eventually(Duration::from_secs(10), || ranks_in(cluster).is_empty());
    ranks_in(cluster)
}

/// The CPUs process `pid` may run on, as /proc shows them (e.g. "0-1").
fn allowed_cpus(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or("")
        .trim()
        .to_string()
}

#[test]
fn ranks_on_nodes_may_run_on_every_cpu_the_nodes_share() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(2);
    let running = Mpirun::new(&cluster, 2)
        .spawn(&Program::Hello {
            iterations: 30,
            interval_ms: 100,
        })
        .unwrap();
    assert!(virtlab_testkit::eventually(Duration::from_secs(30), || {
        ranks_in(&cluster).len() == 2
    }));
    // Past MPI_Init (about half a second here), where Open MPI would have bound them.
    std::thread::sleep(Duration::from_millis(1500));
    // Open MPI binds 2 ranks to cores by default, each node's daemon choosing its own first
    // core: both ranks then shared CPU 0 of this machine and two nodes ran no faster than one.
    let ours = allowed_cpus(std::process::id());
    for rank in ranks_in(&cluster) {
        assert_eq!(allowed_cpus(rank), ours, "rank {rank}");
    }
    let run = running.finish().unwrap();
    assert_eq!(run.exit_code, Some(0), "{}", run.stderr);
}

#[test]
fn ranks_on_the_executor_stop_together_at_a_deadline_or_a_cancel_and_leave_no_rank() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let cluster = cluster(2);
    let work = Work::new("worker", 200, 50).unwrap();
    let deadline = Options {
        deadline: Some(Duration::from_millis(1500)),
        ..Options::quiet()
    };
    let run = executor::run(&mut Ranks::on(&cluster).unwrap(), &work, 3, deadline).unwrap();
    for unit in &run.units {
        assert_eq!(unit.status, Status::TimedOut { after_ms: 1500 }, "{unit:?}");
        assert!((1..200).contains(&unit.detail.lines), "{unit:?}");
        assert_eq!(unit.pid, unit.detail.host_pid, "{unit:?}");
    }
    assert!(
        run.check().is_ok(),
        "a deadline is not a rank's own failure"
    );
    assert_eq!(ranks_left(&cluster), Vec::<u32>::new());

    // One rank cancelled stops the job: MPI cannot go on without it.
    let cancel = Options {
        cancel: Some(Cancel {
            unit: 2,
            after: Duration::from_millis(1500),
        }),
        ..Options::quiet()
    };
    let run = executor::run(&mut Ranks::on(&cluster).unwrap(), &work, 3, cancel).unwrap();
    assert_eq!(run.units[1].status, Status::Cancelled { after_ms: 1500 });
    for i in [0, 2] {
        assert_eq!(run.units[i].status, Status::Stopped, "{:?}", run.units[i]);
    }
    assert_eq!(ranks_left(&cluster), Vec::<u32>::new());
}
