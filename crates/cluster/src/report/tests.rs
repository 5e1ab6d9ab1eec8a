//! Each branch of each sentence, from made-up runs.

use super::*;
use crate::pingpong::PingpongPoint;
use crate::slurm::{Accounting, JobRecord};
use virtlab_core::executor::{Crash, Failure, Status};

fn hello(first_line_ms: Option<f64>, inits: &[f64]) -> Hello {
    let units: Vec<_> = inits
        .iter()
        .map(|i| (Status::Completed, first_line_ms, *i))
        .collect();
    crate::live::sample(&units, Some(0))
}

#[test]
fn start_says_whether_mpi_init_is_most_of_it() {
    let most = start_said(&hello(Some(500.0), &[300.0, 340.0]));
    assert!(most.contains("500 ms") && most.contains("320 ms"), "{most}");
    assert!(most.contains("MPI_Init is most"), "{most}");
    let launch = start_said(&hello(Some(600.0), &[100.0]));
    assert!(launch.contains("before MPI_Init"), "{launch}");
    assert!(start_said(&hello(None, &[])).contains("No rank"));
}

fn point(ranks: usize, compute_ms: f64, communicate_ms: f64, init_ms: f64) -> ScalingPoint {
    ScalingPoint {
        ranks,
        samples: 1_000_000,
        hits: 785_000,
        compute_ms,
        communicate_ms,
        init_ms,
        wall_ms: 500.0,
        efficiency: None,
        load: None,
    }
}

#[test]
fn scaling_says_how_far_it_sped_up_and_why_it_flattens() {
    let strong = [
        point(1, 100.0, 0.0, 50.0),
        point(2, 50.0, 10.0, 60.0),
        point(4, 48.0, 12.0, 70.0),
    ];
    let said = scaling_said(&strong, &[], 2);
    assert!(
        said.contains("2.1× faster") && said.contains("at 4 ranks"),
        "{said}"
    );
    assert!(
        said.contains("flattens") && said.contains("2 CPUs"),
        "{said}"
    );
    assert!(said.contains("20 %"), "{said}");
    assert!(!said.contains("MPI_Init alone"), "{said}");
    assert!(!said.contains("Weak"), "{said}");
}

#[test]
fn scaling_says_when_nothing_sped_up_and_when_it_still_fell() {
    let strong = [
        point(1, 30.0, 0.0, 200.0),
        point(2, 40.0, 5.0, 210.0),
        point(4, 29.0, 5.0, 230.0),
    ];
    let said = scaling_said(&strong, &[], 2);
    assert!(said.contains("never ran clearly faster"), "{said}");
    assert!(said.contains("still fell"), "{said}");
    assert!(said.contains("MPI_Init alone (200 ms)"), "{said}");
    // Without a reading of the machine, no cause is claimed.
    assert!(said.contains("cannot be read here"), "{said}");
    assert!(
        said.contains("re-run to tell it from run-to-run noise"),
        "{said}"
    );
}

fn loaded(mut point: ScalingPoint, others_cpus: f64) -> ScalingPoint {
    point.load = Some(Load {
        seconds: 2.0,
        machine_cpus: 2,
        others_cpus,
        steal_cpus: 0.0,
    });
    point
}

#[test]
fn scaling_names_a_busy_machine_as_the_cause_and_a_quiet_one_as_not() {
    let flat = |others| {
        [
            loaded(point(1, 30.0, 0.0, 20.0), others),
            loaded(point(2, 40.0, 5.0, 20.0), others),
            loaded(point(4, 29.0, 5.0, 20.0), others),
        ]
    };
    let busy = scaling_said(&flat(1.5), &[], 2);
    assert!(
        busy.contains("never ran clearly faster")
            && busy.contains("other programs kept 1.5 of the 2 CPUs busy"),
        "{busy}"
    );
    assert!(busy.contains("at 2 ranks, other programs"), "{busy}");
    let quiet = scaling_said(&flat(0.01), &[], 2);
    assert!(
        quiet.contains("other programs do not explain it") && quiet.contains("CPU limits"),
        "{quiet}"
    );
    let strong = flat(1.5);
    let findings = Findings {
        scaling: Some((&strong, &[], 2)),
        ..Findings::default()
    };
    let table = findings.table().to_string();
    assert!(
        table.contains("Was the machine quiet?") && table.contains("no: other programs"),
        "{table}"
    );
}

#[test]
fn scaling_adds_weak_scaling_and_needs_a_one_rank_run() {
    let strong = [point(1, 100.0, 0.0, 50.0), point(2, 50.0, 1.0, 50.0)];
    let weak = [point(1, 20.0, 0.0, 50.0), point(4, 40.0, 3.0, 50.0)];
    let said = scaling_said(&strong, &weak, 2);
    assert!(said.contains("efficiency of 0.50"), "{said}");
    // No point beyond the CPUs: nothing about flattening.
    assert!(!said.contains("Beyond"), "{said}");
    assert!(scaling_said(&strong[1..], &weak, 2).contains("no 1-rank run"));
    let idle = [point(1, 0.0, 0.0, 1.0)];
    assert!(scaling_said(&idle, &[], 2).contains("no compute time"));
}

fn pingpong(one_node_us: f64, two_nodes_us: f64) -> PingpongReport {
    PingpongReport::made(&[(8, one_node_us, two_nodes_us), (4 << 20, 900.0, 9000.0)])
}

#[test]
fn pingpong_says_how_much_slower_two_nodes_are() {
    let slower = pingpong_said(&pingpong(0.4, 300.0));
    assert!(slower.contains("750× slower"), "{slower}");
    assert!(
        slower.contains("4.66 GB/s") && slower.contains("0.47 GB/s"),
        "{slower}"
    );
    let same = pingpong_said(&pingpong(5.0, 6.0));
    assert!(same.contains("no clear difference"), "{same}");
    let none = PingpongReport {
        points: vec![],
        ..pingpong(1.0, 1.0)
    };
    assert!(pingpong_said(&none).contains("no message size"));
}

#[test]
fn a_smallest_message_slower_than_the_next_size_is_set_aside_and_said() {
    let mut report = pingpong(0.39, 105.6);
    report.points.insert(
        1,
        PingpongPoint {
            bytes: 64,
            one_node_us: 0.35,
            one_node_gb_per_s: 0.18,
            two_nodes_us: 5.5,
            two_nodes_gb_per_s: 0.01,
        },
    );
    let said = pingpong_said(&report);
    assert!(said.contains("A message of 64 B took 5.5 µs"), "{said}");
    assert!(said.contains("16× slower"), "{said}");
    assert!(said.contains("The 8 B message took 105.6 µs"), "{said}");
    // Said once, above, not again among the other sizes.
    assert!(!said.contains("Not what a quiet machine gives"), "{said}");
}

#[test]
fn any_size_dearer_than_a_larger_one_is_flagged_in_either_column() {
    let quiet = PingpongReport::made(&[(8, 0.4, 6.0), (64, 0.45, 6.2), (512, 0.6, 7.0)]);
    assert!(!pingpong_said(&quiet).contains("Not what a quiet machine gives"));
    let busy = PingpongReport::made(&[(8, 0.38, 6.0), (64, 2.02, 6.2), (512, 0.62, 7.0)]);
    let said = pingpong_said(&busy);
    assert!(
        said.contains(
            "Not what a quiet machine gives: 64 B took 2.02 µs on one node, 512 B 0.62 µs"
        ),
        "{said}"
    );
    let across = PingpongReport::made(&[(8, 0.4, 6.0), (64, 0.45, 20.0), (512, 0.6, 7.0)]);
    assert!(
        pingpong_said(&across).contains("64 B took 20.00 µs across nodes, 512 B 7.00 µs"),
        "{}",
        pingpong_said(&across)
    );
}

fn trap(spin: f64, yielding: f64) -> YieldTrap {
    YieldTrap {
        bytes: 8,
        rounds: 50,
        spin: (1.0, spin),
        yielding: (1.0, yielding),
    }
}

#[test]
fn the_yield_trap_is_said_each_way() {
    let caught = yield_trap_said(&trap(4000.0, 40.0));
    assert!(
        caught.contains("100×") && caught.contains("4000 µs"),
        "{caught}"
    );
    assert!(yield_trap_said(&trap(5.0, 300.0)).contains("Spinning was the faster"));
    assert!(yield_trap_said(&trap(5.0, 6.0)).contains("about the same"));
}

fn job(id: u64, state: &str, reason: &str) -> JobRecord {
    JobRecord {
        id,
        name: format!("job{id}"),
        state: state.into(),
        reason: reason.into(),
        submit_s: Some(0),
        start_s: Some(3),
        end_s: Some(6),
        nodes: 3,
        cpus: 3,
        node_list: "node-[1-3]".into(),
        exit_code: "0:0".into(),
    }
}

fn account(id: u64, elapsed_s: i64, wait_s: i64) -> Accounting {
    Accounting {
        id,
        name: format!("job{id}"),
        state: "COMPLETED".into(),
        elapsed_s,
        cpus: 3,
        cpu_seconds: 3 * elapsed_s,
        wait_s,
    }
}

fn queue(wait_s: i64) -> QueueDemo {
    QueueDemo {
        first: job(1, "COMPLETED", "None"),
        second_waiting: job(2, "PENDING", "Resources"),
        second: job(2, "COMPLETED", "None"),
        wait_s,
        accounting: vec![account(1, 3, 3), account(2, 3, wait_s)],
    }
}

#[test]
fn the_queue_says_the_wait_and_the_bill() {
    let waited = queue_said(&queue(6));
    assert!(
        waited.contains("Job 2 waited 6 s") && waited.contains("Resources"),
        "{waited}"
    );
    assert!(waited.contains("job 1 held every node for 3 s"), "{waited}");
    assert!(!waited.contains("after job 1 ended"), "{waited}");
    let mut late = queue(6);
    late.second.start_s = Some(9);
    let late = queue_said(&late);
    assert!(late.contains(", 3 s of it after job 1 ended"), "{late}");
    assert!(waited.contains("18 CPU-seconds"), "{waited}");
    assert!(queue_said(&queue(0)).contains("did not wait"));
}

fn fault(statuses: &[Status], exit_code: Option<i32>) -> Fault {
    let units: Vec<_> = statuses
        .iter()
        .map(|s| (s.clone(), Some(1.0), 200.0))
        .collect();
    Fault {
        victim: 1,
        hello: crate::live::sample(&units, exit_code),
    }
}

fn killed() -> Status {
    Status::Crashed(Crash::Signal {
        number: 9,
        said: None,
    })
}

fn stopped() -> Status {
    Status::StoppedBecause {
        unit: "worker-2".into(),
        failure: Failure::Crashed,
    }
}

#[test]
fn the_fault_says_what_happened_to_the_others() {
    let all = fault_said(&fault(&[stopped(), killed(), stopped()], Some(137)));
    assert!(
        all.contains("ended the whole job") && all.contains("exited with 137"),
        "{all}"
    );
    assert!(all.contains("all 2 other"), "{all}");
    let some = fault_said(&fault(&[Status::Completed, killed(), stopped()], None));
    assert!(
        some.contains("stopped 1 of the 2") && some.contains("killed by a signal"),
        "{some}"
    );
}

#[test]
fn findings_say_which_parts_were_skipped() {
    let h = hello(Some(500.0), &[300.0]);
    let p = pingpong(0.4, 300.0);
    let table = Findings {
        hello: Some(&h),
        pingpong: Some(&p),
        ..Findings::default()
    }
    .table();
    let rows = table.rows();
    assert_eq!(rows.len(), 7);
    assert!(rows[0][1].contains("500 ms"));
    assert!(rows[1][1].starts_with("not measured"));
    assert!(rows[2][1].contains("slower"));
    assert!(
        rows[3][1].starts_with("not measured"),
        "no rungs, no sentence"
    );
}
