//! Chapter 9 for real: chapter 7's containers as serving instances (a real container start per
//! cold start, resources read from the cgroup), `virtlab serve` and `virtlab bill` with real
//! processes, noisy neighbours against overcommit, "which layer am I in?" natively and in a
//! container, one job file deployed on every backend, bad values refused with a fix, and nothing
//! left behind (no instance, shim or cgroup) when a run ends or its CLI is killed.
#![cfg(target_os = "linux")]

use serde_json::Value;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use virtlab::cloud::InstanceKind;
use virtlab::cloud::container::ContainerLauncher;
use virtlab::cloud::instance::Launcher;
use virtlab::cloud::layers::Place;
use virtlab::cloud::neighbours::Neighbours;
use virtlab::cloud::neighbours::watch::Watched;
use virtlab::cloud::prices::{PriceBook, Size};
use virtlab::cloud::runs::{Billed, Served};
use virtlab::cloud::trace::Trace;
use virtlab::cloud::whereami::{Verdict, Whereami};
use virtlab::cloud::work::monte_carlo_hits;
use virtlab_core::limits::Limit;
use virtlab_testkit as common;
use virtlab_testkit::{children_of, eventually, is_alive};

mod groups;
use groups::group_dirs_of;

/// How long the tests wait for what a run started to be gone.
const SETTLE: Duration = Duration::from_secs(10);

const SIZE: Size = Size {
    vcpu: 1.0,
    memory_gib: 0.25,
};

/// Tests here look for cgroups and processes by owner, so they must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lock, or None (the test skipped, with the reason) where containers cannot run.
fn containers() -> Option<std::sync::MutexGuard<'static, ()>> {
    // SAFETY: set before any test thread reads it; every test sets the same value.
    unsafe { std::env::set_var("VIRTLAB_WORKER", env!("CARGO_BIN_EXE_virtlab")) };
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    match ContainerLauncher::new(SIZE) {
        Ok(_) => Some(guard),
        Err(e) => {
            common::skip(e);
            None
        }
    }
}

fn virtlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A short trace: small requests, so the test's debug build serves them quickly.
const SHORT: [&str; 8] = [
    "--duration",
    "3",
    "--stretch",
    "1",
    "--rate",
    "10",
    "--samples",
    "20000",
];

fn serve(kind: &str) -> (Served, String) {
    let mut args = vec![
        "serve",
        "--instance",
        kind,
        "--json",
        "--memory-gib",
        "0.25",
    ];
    args.extend(SHORT);
    let out = virtlab(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

/// Every request of every run was served, with the right answer, and every instance is gone.
fn check_served(served: &Served, kind: &str) {
    assert_eq!(served.runs.len(), 3);
    for run in &served.runs {
        assert_eq!(run.kind, kind);
        assert_eq!(run.summary.served, served.trace.arrivals.len());
        for (request, arrival) in run.requests.iter().zip(&served.trace.arrivals) {
            let expected = monte_carlo_hits(served.plan.samples_per_request, arrival.seed);
            assert_eq!(request.hits, Some(expected), "request {}", request.id);
        }
        assert!(run.summary.cpu_s > 0.0 && run.summary.memory_gib_s > 0.0);
        for instance in &run.instances {
            assert!(instance.pid > 1, "{instance:?}");
            assert!(!is_alive(instance.pid), "instance {} is left", instance.pid);
        }
    }
    let per_request = &served.runs[2].summary;
    assert_eq!(per_request.cold, per_request.served);
    assert_eq!(served.runs[0].summary.cold, 0);
}

#[test]
fn a_container_instance_is_pid_1_of_a_limited_cgroup_and_goes_away_whole() {
    let Some(_serial) = containers() else {
        return;
    };
    let me = std::process::id();
    let launcher = ContainerLauncher::new(SIZE).unwrap();
    assert_eq!(launcher.limits().cpu, Some(1.0));
    assert_eq!(launcher.limits().memory, Some(256 << 20));
    let mut instance = launcher.launch().unwrap();
    let groups = group_dirs_of(me);
    assert!(!groups.is_empty(), "no cgroup for the instance");
    for dir in &groups {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert_eq!(
            procs.trim(),
            instance.pid().to_string(),
            "{}",
            dir.display()
        );
    }
    // Pid 1 of its own pid namespace, seen from the host.
    let status = std::fs::read_to_string(format!("/proc/{}/status", instance.pid())).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.trim_end().ends_with("\t1"), "{nspid}");
    let before = instance.reading().unwrap();
    for seed in 0..5 {
        assert_eq!(
            instance.call(200_000, seed).unwrap(),
            monte_carlo_hits(200_000, seed)
        );
    }
    let after = instance.reading().unwrap();
    assert!(after.cpu_s > before.cpu_s, "{before:?} {after:?}");
    assert!(after.rss_bytes > 0);
    let pid = instance.pid();
    drop(instance);
    assert!(!is_alive(pid));
    assert!(group_dirs_of(me).is_empty(), "{:?}", group_dirs_of(me));
}

#[test]
fn serve_on_containers_answers_every_request_and_leaves_nothing() {
    let Some(_serial) = containers() else {
        return;
    };
    let (served, _) = serve("container");
    assert_eq!(served.plan.kind, InstanceKind::Container);
    check_served(&served, "container");
}

#[test]
fn serve_on_processes_then_bill_by_every_product_that_sells_each_policy() {
    let (served, _) = serve("process");
    check_served(&served, "process");
    let dir = std::env::temp_dir().join(format!("virtlab-cloud-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = dir.join("run.json");
    std::fs::write(&run, serde_json::to_string(&served).unwrap()).unwrap();
    let out = virtlab(&["bill", "--run", run.to_str().unwrap(), "--json"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let billed: Billed = serde_json::from_slice(&out.stdout).unwrap();
    let book = PriceBook::load_shipped().unwrap();
    for run in &served.runs {
        let expected: Vec<&str> = book
            .products
            .iter()
            .filter(|p| run.spec.policy.fits(p.model))
            .map(|p| p.id.as_str())
            .collect();
        let got: Vec<&str> = billed
            .bills
            .iter()
            .filter(|b| b.policy == run.spec.policy.name())
            .map(|b| b.bill.product_id.as_str())
            .collect();
        assert_eq!(got, expected, "{}", run.spec.policy.name());
    }
    for b in &billed.bills {
        assert!(!b.bill.date_read.is_empty() && b.bill.source.contains("https://"));
        assert!(b.bill.month_usd > b.bill.run_usd, "{b:?}");
    }
    // Cloud Run is billed at the instance size the run was sold (0.25 GiB), at concurrency 1.
    let cloud_run = billed
        .bills
        .iter()
        .find(|b| b.bill.product_id == "gcp-cloud-run")
        .unwrap();
    assert!(
        cloud_run.bill.run_lines[2]
            .what
            .contains("0.25 GiB at concurrency 1"),
        "{:?}",
        cloud_run.bill.run_lines
    );
    let out = virtlab(&["bill", "--run", run.to_str().unwrap(), "--provider", "gcp"]);
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("prices change") && !table.contains("AWS"),
        "{table}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The command's `--json` output, once it has succeeded and no cgroup of its is left.
fn json_leaving_no_group<T: serde::de::DeserializeOwned>(args: &[&str]) -> T {
    let cli = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let cli_pid = cli.id();
    let out = cli.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    let groups = group_dirs_of(cli_pid);
    assert!(groups.is_empty(), "{args:?} left {groups:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The command fails with a message that names `problem` and says how to fix it.
fn refused(args: &[&str], problem: &str) {
    let out = virtlab(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains(problem), "{args:?}: {stderr}");
    assert!(stderr.contains("Fix:"), "{args:?}: {stderr}");
}

#[test]
fn bad_values_are_refused_with_a_fix() {
    refused(&["serve", "--rate", "0"], "rate cannot be 0");
    refused(
        &["serve", "--policy", "autoscale", "--keep-alive", "-1"],
        "keep-alive window cannot be -1",
    );
    refused(&["serve", "--policy", "spot"], "no serving policy `spot`");
    refused(&["serve", "--instance", "vm"], "instance kind");
    refused(&["serve", "--duration", "-3"], "duration cannot be -3");
    refused(
        &["serve", "--policy", "fixed", "--fleet", "0"],
        "0 instances",
    );
    refused(&["serve", "--vcpu", "0"], "vCPU");
    let dir = std::env::temp_dir().join(format!("virtlab-cloud-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.json");
    let missing = missing.to_str().unwrap();
    refused(&["bill", "--run", missing], "cannot read the serve run");
    let garbled = dir.join("garbled.json");
    std::fs::write(&garbled, "{ not json").unwrap();
    let garbled = garbled.to_str().unwrap();
    refused(&["bill", "--run", garbled], "serve run");
    refused(&["bill", "--run", "-", "--prices", missing], "missing.json");
    refused(&["bill", "--run", "-", "--prices", garbled], "garbled.json");
    // A real run, with a provider the bill does not know.
    let run = dir.join("run.json");
    let (served, _) = serve("process");
    std::fs::write(&run, serde_json::to_string(&served).unwrap()).unwrap();
    let run = run.to_str().unwrap();
    refused(&["bill", "--run", run, "--provider", "azure"], "\"azure\"");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigkill_of_the_cli_leaves_no_instance_shim_or_cgroup() {
    let Some(_serial) = containers() else {
        return;
    };
    for kind in ["container", "process"] {
        // The fleet of two is up: two shims (or instance processes) beside the front.
        let args = [
            "serve",
            "--instance",
            kind,
            "--policy",
            "fixed",
            "--duration",
            "60",
            "--memory-gib",
            "0.25",
            "--samples",
            "20000",
        ];
        let groups = if kind == "process" { 0 } else { 2 };
        let cli = started_with_groups(&args, 2, groups);
        kill_and_check_nothing_is_left(cli);
    }
}

/// `virtlab ARGS`, once it has `children` children (container shims or instance processes)
/// and at least `groups` cgroups of its own, each holding its pid 1 (a shim makes its group
/// before its pid 1 joins it: an empty group means that container is not up yet).
fn started_with_groups(args: &[&str], children: usize, groups: usize) -> std::process::Child {
    let cli = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let cli_pid = cli.id();
    assert!(
        eventually(SETTLE, || {
            let dirs = group_dirs_of(cli_pid);
            children_of(cli_pid).len() == children
                && dirs.len() >= groups
                && dirs.iter().all(|dir| !pids_in(dir).is_empty())
        }),
        "{args:?}: {:?}",
        children_of(cli_pid)
    );
    cli
}

/// The CLI's children and every process in its groups, then SIGKILL to the CLI: its groups
/// must go and every one of those processes end. Returns how many processes there were.
fn kill_and_check_nothing_is_left(mut cli: std::process::Child) -> usize {
    let cli_pid = cli.id();
    let mut left: Vec<u32> = children_of(cli_pid);
    for dir in group_dirs_of(cli_pid) {
        left.extend(pids_in(&dir));
    }
    cli.kill().unwrap();
    cli.wait().unwrap();
    assert!(
        eventually(SETTLE, || group_dirs_of(cli_pid).is_empty()),
        "groups left: {:?}",
        group_dirs_of(cli_pid)
    );
    assert!(
        eventually(SETTLE, || !left.iter().any(|p| is_alive(*p))),
        "left {left:?}"
    );
    left.len()
}

/// The processes in one cgroup folder (none once it is gone).
fn pids_in(dir: &std::path::Path) -> Vec<u32> {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    procs.lines().filter_map(|l| l.parse().ok()).collect()
}

#[test]
fn the_instance_program_refuses_a_stdout_that_is_no_socket() {
    let out = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(["instance", "--over-stdout"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs its stdout to be a socket"),
        "{stderr}"
    );
}

#[test]
fn a_json_serve_run_reads_back_whole() {
    let mut args = vec!["serve", "--policy", "fixed", "--json"];
    args.extend(SHORT);
    let out = virtlab(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["plan"]["kind"], "process");
    assert_eq!(value["runs"][0]["spec"]["policy"]["policy"], "fixed");
}

#[test]
fn a_watched_instance_reports_its_cpu_and_run_queue_wait_when_it_stops() {
    let watched = Watched::new(InstanceKind::Process.launcher(SIZE).unwrap());
    let mut instance = watched.launch().unwrap();
    let pid = instance.pid();
    assert_eq!(
        instance.call(200_000, 1).unwrap(),
        monte_carlo_hits(200_000, 1)
    );
    assert!(watched.lives().is_empty(), "recorded before it stopped");
    drop(instance);
    let lives = watched.lives();
    assert_eq!(lives.len(), 1);
    assert_eq!(lives[0].pid, pid);
    assert!(lives[0].cpu_s > 0.0, "{lives:?}");
    assert!(
        lives[0].alive_s >= lives[0].cpu_s + lives[0].waited_s,
        "{lives:?}"
    );
    assert!(!is_alive(pid));
}

#[test]
fn neighbours_measures_each_ratio_with_and_without_quotas_and_leaves_nothing() {
    let Some(_serial) = containers() else {
        return;
    };
    let n: Neighbours = json_leaving_no_group(&[
        "neighbours",
        "--ratios",
        "1,2",
        "--duration",
        "1",
        "--samples",
        "20000",
    ]);
    assert_eq!(n.points.len(), 4);
    let victim_requests = Trace::generate(n.spec.trace(1)).unwrap().arrivals.len();
    for (p, (ratio, quotas)) in
        n.points
            .iter()
            .zip([(1.0, true), (1.0, false), (2.0, true), (2.0, false)])
    {
        assert_eq!((p.ratio, p.quotas), (ratio, quotas));
        assert_eq!(p.tenants, n.spec.tenants(ratio));
        assert_eq!(p.victim.served, victim_requests, "{p:?}");
        assert!(p.victim.p99_s().is_some() && p.all_p99_s.is_some());
        assert!(p.victim.cpu_s > 0.0 && p.greedy_cpu_s > 0.0, "{p:?}");
        if quotas {
            // The quota holds the greedy tenant to its vCPU (one 100 ms period of slack).
            assert!(p.greedy_cpu_s <= n.spec.vcpu * p.seconds + 0.1, "{p:?}");
        }
    }
    let said = n.what_we_saw().join("\n");
    // Quotas name a winner only where the p99s are a clear ratio apart; either way it is said.
    let quotas_said = said.contains("clearly (at least 1.5×) lower with quotas at")
        || said.contains("Quotas made no clear difference");
    assert!(quotas_said && said.contains("EuroSys 2015"), "{said}");
}

#[test]
fn neighbours_refuses_bad_plans_with_a_fix() {
    refused(
        &["neighbours", "--ratios", "0"],
        "overcommit ratio cannot be 0",
    );
    refused(
        &["neighbours", "--ratios", "0.01"],
        "tenants at ratio 0.01 cannot be 0",
    );
    refused(
        &["neighbours", "--ratios", "1,100"],
        "tenants at ratio 100 cannot be",
    );
    refused(&["neighbours", "--vcpu", "0"], "vCPUs cannot be 0");
    refused(&["neighbours", "--duration", "0"], "seconds cannot be 0");
    refused(&["instance", "--threads", "0"], "threads cannot be 0");
}

#[test]
fn sigkill_of_neighbours_leaves_no_tenant_or_cgroup() {
    let Some(_serial) = containers() else {
        return;
    };
    let tenants = 2 * virtlab_core::machine::usable_cpus();
    // The greedy tenant and every serving one are up: a shim each, pid 1 in each group.
    let cli = started_with_groups(
        &[
            "neighbours",
            "--ratios",
            "2",
            "--duration",
            "60",
            "--samples",
            "20000",
        ],
        tenants,
        tenants,
    );
    let seen = kill_and_check_nothing_is_left(cli);
    assert!(seen > tenants, "no pid 1 found in the groups: {seen}");
}

#[test]
fn whereami_decides_from_its_own_evidence() {
    let out = virtlab(&["whereami", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let here: Whereami = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(here.verdict, Verdict::of(&here.evidence));
    assert!(here.evidence.pid > 1 && here.evidence.syscall_ns > 0.0);
    let text = String::from_utf8_lossy(&virtlab(&["whereami"]).stdout).into_owned();
    assert!(text.contains("the instance it was given"), "{text}");
}

#[test]
fn whereami_in_a_container_and_on_a_node_sees_their_namespaces_and_leaves_nothing() {
    let Some(_serial) = containers() else {
        return;
    };
    let places: Vec<Place> = json_leaving_no_group(&["whereami", "--everywhere"]);
    let [native, inside, node] = places.as_slice() else {
        panic!("{places:?}");
    };
    // A node needs root (and ip, nsenter): where it could not be made, the place says why.
    match &node.answer {
        Some(on_node) => {
            assert!(on_node.verdict.container.found, "{:?}", on_node.verdict);
            // The node's instance type is its cgroup's limits, seen from inside.
            assert!(
                matches!(on_node.evidence.memory_limit, Limit::Set(_)),
                "{:?}",
                on_node.evidence
            );
        }
        None => assert!(node.skipped.as_ref().unwrap().contains("Fix:"), "{node:?}"),
    }
    let native = native.answer.as_ref().unwrap();
    let inside = inside.answer.as_ref().unwrap();
    assert_eq!(inside.evidence.pid, 1);
    assert!(inside.verdict.container.found, "{:?}", inside.verdict);
    let pid_ns = |w: &Whereami| {
        w.evidence
            .namespaces
            .iter()
            .find(|n| n.kind == "pid")
            .map(|n| n.ours)
    };
    assert_ne!(pid_ns(native), pid_ns(inside));
    // The container shares the machine's CPU: the hypervisor CPUID reports is the same.
    assert_eq!(native.evidence.hypervisor, inside.evidence.hypervisor);
    for w in [native, inside] {
        assert_eq!(w.verdict, Verdict::of(&w.evidence));
    }
}

/// A job file in a temp folder of its own, removed (with the folder) when dropped.
struct JobFile {
    path: String,
    _folder: virtlab_testkit::TempDir,
}

impl JobFile {
    fn new(name: &str, text: &str) -> JobFile {
        let folder = virtlab_testkit::TempDir::new(&format!("job-{name}"));
        let path = folder.join("job.json");
        std::fs::write(&path, text).unwrap();
        JobFile {
            path: path.display().to_string(),
            _folder: folder,
        }
    }

    fn path(&self) -> &str {
        &self.path
    }
}

const JOB: &str = r#"{"work": {"name": "job", "iterations": 2, "interval_ms": 300},
                      "instances": 2, "limits": {"cpu": 0.5, "memory_mib": 32}}"#;

#[test]
fn deploy_runs_one_job_on_every_backend_and_leaves_nothing() {
    let Some(_serial) = containers() else {
        return;
    };
    let job = JobFile::new("every", JOB);
    let deployed: virtlab::cloud::deploy::Deployment = json_leaving_no_group(&[
        "deploy",
        job.path(),
        "--backends",
        "process,container,vm,rank",
    ]);
    let rungs: Vec<&str> = deployed.backends.iter().map(|b| b.rung.as_str()).collect();
    assert_eq!(rungs, ["process", "container", "vm", "rank"]);
    assert_eq!(deployed.job["instances"], 2);
    for backend in &deployed.backends {
        match backend.outcome.measured() {
            Some(ran) => {
                assert!(ran.start_ms > 0.0, "{backend:?}");
                assert!(ran.summary.contains('2'), "{backend:?}");
            }
            // Only a facility this machine lacks (KVM, MPI, a cluster's root) leaves a row out.
            None => {
                let why = backend.outcome.skipped().unwrap();
                assert!(why.contains("Fix:"), "{backend:?}");
                assert!(
                    ["vm", "rank"].contains(&backend.rung.as_str()),
                    "{backend:?}"
                );
                common::skip(format!("deploy on {}: {why}", backend.rung));
            }
        }
    }
    // Processes and containers run wherever this test does (it skipped above otherwise).
    assert!(
        deployed.backends[..2]
            .iter()
            .all(|b| b.outcome.measured().is_some())
    );
    assert_eq!(deployed.backends[1].limits, "CPU and memory (its cgroup)");
    assert_eq!(deployed.backends[0].limits, "none");
    // The table shows what was run, beside what a cloud sells it as.
    let out = virtlab(&["deploy", job.path(), "--backends", "process,thread"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("none (a process inside an instance"),
        "{text}"
    );
    assert!(text.contains("× apart"), "{text}");
}

#[test]
fn deploy_refuses_bad_job_files_and_backends_with_a_fix() {
    let good = JobFile::new("good", JOB);
    refused(
        &["deploy", good.path(), "--backends", "process,lambda"],
        "'lambda'",
    );
    refused(
        &["deploy", "/nonexistent/job.json"],
        "cannot read the job file",
    );
    let malformed = JobFile::new("malformed", "{\"work\": ");
    refused(&["deploy", malformed.path()], "it is not a job");
    let missing = JobFile::new(
        "missing",
        r#"{"work": {"name": "job", "iterations": 2, "interval_ms": 300}}"#,
    );
    refused(&["deploy", missing.path()], "missing field `instances`");
    let none = JobFile::new("none", &JOB.replace("\"instances\": 2", "\"instances\": 0"));
    refused(&["deploy", none.path()], "\"instances\" cannot be 0");
}

#[test]
fn sigkill_of_deploy_leaves_no_container_or_cgroup() {
    let Some(_serial) = containers() else {
        return;
    };
    let job = JobFile::new(
        "killed",
        &JOB.replace("\"iterations\": 2", "\"iterations\": 200"),
    );
    // Both instances are up: a shim each, each in its own group.
    let cli = started_with_groups(&["deploy", job.path(), "--backends", "container"], 2, 2);
    let seen = kill_and_check_nothing_is_left(cli);
    assert!(seen > 2, "no pid 1 found in the groups: {seen}");
}
