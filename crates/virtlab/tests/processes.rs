//! Chapter 1's process executor with real worker processes: lines, timeline, tree, and no
//! orphans whether the run ends, a worker crashes, or the parent is killed or interrupted.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use virtlab::executor::{Options, Status};
use virtlab::processes;
use virtlab::timeline::EventKind;
use virtlab::work::Work;
use virtlab_testkit::is_alive;

/// Tests here look at this process's children, so they must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

fn setup() -> std::sync::MutexGuard<'static, ()> {
    // SAFETY: set before any test thread reads it; every test sets the same value.
    unsafe { std::env::set_var("VIRTLAB_WORKER", env!("CARGO_BIN_EXE_virtlab")) };
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait_until_gone(pids: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn children_of_this_process() -> usize {
    virtlab::observer::snapshot(std::process::id())
        .unwrap()
        .children()
        .len()
}

#[test]
fn three_workers_run_as_three_single_threaded_children() {
    let _serial = setup();
    let work = Work::new("worker", 3, 100).unwrap();
    let run = processes::run(
        &work,
        3,
        Options {
            echo: false,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(run.units.len(), 3);
    assert!(run.succeeded(), "{:?}", run.units);
    assert!(
        run.units
            .iter()
            .all(|w| w.first_line_ms.is_some_and(|ms| ms > 0.0))
    );
    let mut pids: Vec<u32> = run.units.iter().filter_map(|w| w.pid).collect();
    pids.sort_unstable();
    assert_eq!(
        run.timeline.pids(),
        pids,
        "the events come from the workers themselves"
    );
    assert!(!pids.contains(&std::process::id()));
    let mut lanes = run.timeline.lanes();
    lanes.sort();
    assert_eq!(lanes, vec!["worker-1", "worker-2", "worker-3"]);
    assert_eq!(run.kind, "process");
    for lane in run.timeline.lanes() {
        let kinds: Vec<EventKind> = run
            .timeline
            .events
            .iter()
            .filter(|e| e.lane == lane)
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::Start,
                EventKind::Iteration(0),
                EventKind::Iteration(1),
                EventKind::Iteration(2),
                EventKind::End
            ],
            "{lane}"
        );
    }
    let tree = run.snapshot.expect("a snapshot is taken mid-run");
    let children = tree.children();
    assert_eq!(children.len(), 3, "{:?}", tree.processes);
    assert!(
        children.iter().all(|c| c.threads.len() == 1),
        "each worker has one thread: {children:?}"
    );
    assert!(wait_until_gone(&pids).is_empty());
    assert_eq!(children_of_this_process(), 0);
}

#[test]
fn a_crashing_worker_is_reported_and_the_others_are_stopped() {
    let _serial = setup();
    let work = Work::new("worker", 50, 100).unwrap();
    let run = processes::run(&work, 3, Options::quiet().with_fault(2, 1)).unwrap();
    assert!(
        matches!(&run.units[1].status, Status::Crashed(how) if how.describe().contains("SIGABRT")),
        "{:?}",
        run.units
    );
    for other in [&run.units[0], &run.units[2]] {
        assert_eq!(
            other.status,
            Status::StoppedBecause {
                unit: "worker-2".into(),
                failure: virtlab::executor::Failure::Crashed
            }
        );
    }
    // Stopped, not waited for: nobody ran its 50 iterations.
    let iterations = run.timeline.iterations();
    assert!(iterations < 30, "{iterations}");
    let err = run.check().unwrap_err();
    assert!(
        err.problem().contains("worker-2") && err.problem().contains("SIGABRT"),
        "{err}"
    );
    assert_eq!(
        children_of_this_process(),
        0,
        "no worker may outlive the failed run"
    );
}

/// Starts `virtlab processes` as a separate parent, returns it and its workers' pids.
fn start_parent() -> (std::process::Child, Vec<u32>) {
    let mut parent = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args([
            "processes",
            "--workers",
            "3",
            "--iterations",
            "100",
            "--interval-ms",
            "100",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(parent.stdout.take().unwrap()).lines();
    let mut pids = Vec::new();
    while pids.len() < 3 {
        let line = lines
            .next()
            .expect("the parent should print its workers' lines")
            .unwrap();
        let pid: u32 = line.rsplit(' ').next().unwrap().parse().unwrap();
        if !pids.contains(&pid) {
            pids.push(pid);
        }
    }
    // Keep reading so the parent never blocks on a full pipe while we look.
    std::thread::spawn(move || lines.for_each(drop));
    (parent, pids)
}

fn kill_parent_and_check_workers_die(signal: i32) {
    let (mut parent, pids) = start_parent();
    assert!(pids.iter().all(|p| is_alive(*p)));
    // SAFETY: sends a signal to a child we started and still own.
    unsafe { libc::kill(parent.id() as i32, signal) };
    parent.wait().unwrap();
    assert_eq!(
        wait_until_gone(&pids),
        Vec::<u32>::new(),
        "orphaned workers after signal {signal}"
    );
}

#[test]
fn killing_the_parent_kills_its_workers() {
    let _serial = setup();
    kill_parent_and_check_workers_die(libc::SIGKILL);
}

#[test]
fn interrupting_the_parent_kills_its_workers() {
    let _serial = setup();
    kill_parent_and_check_workers_die(libc::SIGINT);
}

#[test]
fn a_worker_whose_parent_is_gone_stops_at_once() {
    let _serial = setup();
    let out = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args([
            "worker",
            "--iterations",
            "100",
            "--interval-ms",
            "100",
            "--parent-pid",
            "1",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("parent process is already gone"));
}

#[test]
fn bad_input_is_refused_before_anything_starts() {
    let _serial = setup();
    let cases: [(&[&str], &str); 7] = [
        (&["--workers", "0"], "number of workers cannot be 0"),
        (&["--workers", "-1"], "invalid value '-1' for '--workers"),
        (
            &["--workers", "999999"],
            "number of workers cannot be 999999",
        ),
        (&["--interval-ms", "0"], "interval (ms) cannot be 0"),
        (&["--interval-ms", "-5"], "--interval-ms"),
        (&["--iterations", "0"], "iterations cannot be 0"),
        (&["--fault-unit", "1"], "--fault-at"),
    ];
    for (args, expected) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_virtlab"))
            .arg("processes")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert_eq!(children_of_this_process(), 0);
}

#[test]
fn a_missing_worker_program_is_named_with_the_fix() {
    let _serial = setup();
    let out = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(["processes", "--workers", "1"])
        .env("VIRTLAB_WORKER", "/nonexistent/virtlab")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("VIRTLAB_WORKER names /nonexistent/virtlab") && stderr.contains("Fix:"),
        "{stderr}"
    );
}
