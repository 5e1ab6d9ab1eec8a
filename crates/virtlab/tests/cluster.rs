//! Chapter 8's command line, for real: `virtlab cluster up|status|down` with a detached keeper,
//! `mpi`, `pingpong` and `slurm` on real clusters of namespace nodes, bad values refused before
//! anything is made, and nothing left behind (run folder, veth, cgroup, namespace, mpirun, rank,
//! Slurm daemon) after every exit path: normal end, `down`, SIGKILL of the keeper or of the
//! command. Skips, with the reason, where this machine is not root or lacks Open MPI or Slurm.
#![cfg(target_os = "linux")]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use virtlab::cluster::leftovers::{leftovers, namespaces, slurm_leftovers, slurm_pid_namespaces};
use virtlab::cluster::{ClusterState, held, rundir};
use virtlab_testkit::skip;

const VIRTLAB: &str = env!("CARGO_BIN_EXE_virtlab");

/// One cluster command at a time: two on 2 cores would measure each other, and the leftover
/// checks look for processes by name.
static SERIAL: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn virtlab(args: &[&str]) -> Output {
    Command::new(VIRTLAB).args(args).output().unwrap()
}

/// `virtlab` with `line`'s words (split at spaces) as its arguments.
fn virtlab_words(line: &str) -> Output {
    virtlab(&line.split_whitespace().collect::<Vec<_>>())
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether we are root (a cluster needs it); records the skip when not.
fn need_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip("a cluster needs root (veths, bridge, cgroups)");
    }
    root
}

/// Whether MPI runs can be tested here; records the skip when not.
fn need_mpi() -> bool {
    if !need_root() {
        return false;
    }
    if let Err(e) = virtlab::cluster::mpi::ready() {
        skip(e);
        return false;
    }
    true
}

/// Whether Slurm can be tested here; records the skip when not.
fn need_slurm() -> bool {
    if !need_root() {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let found = |p: &str| virtlab::cluster::slurm::find_program(p).is_some();
    if let Err(e) = virtlab::cluster::slurm::check_prerequisites(euid, found) {
        skip(e);
        return false;
    }
    true
}

/// Host pids of live (not zombie) processes named `comm`.
fn processes_named(comm: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let alive = !stat
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'));
            alive
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == comm)
        })
        .collect()
}

/// MPI's processes still running (mpirun, its daemons, ranks), waiting up to 10 s for them.
fn mpi_leftovers() -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = ["mpirun", "orted", "virtlab-ranks"]
            .iter()
            .flat_map(|c| processes_named(c))
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Checks that the cluster an `mpi --json` report names left nothing behind (namespaces, veths,
/// cgroups, run folder, MPI's processes); returns it.
fn nothing_left(report: &serde_json::Value) -> ClusterState {
    let state: ClusterState = serde_json::from_value(report["cluster"].clone()).unwrap();
    assert_eq!(leftovers(&state, &[], true), Vec::<String>::new());
    assert_eq!(mpi_leftovers(), Vec::<u32>::new());
    state
}

#[test]
fn bad_values_are_refused_before_anything_is_made() {
    let _serial = one_at_a_time();
    let before = rundir::folders();
    let dir = std::env::temp_dir().join(format!("virtlab-bad-hostfiles-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (empty, malformed) = (file("empty", "# nobody\n"), file("bad", "node1 cores=2\n"));
    let good = file("good", "node1 slots=2\n");
    let missing = dir.join("missing").display().to_string();
    // Each command as one line of words (none holds a space).
    let hostfile_cases = [
        (
            format!("mpi --hostfile {missing}"),
            "cannot be read",
            "node1 slots=2",
        ),
        (
            format!("mpi --hostfile {empty}"),
            "lists no hosts",
            "node1 slots=2",
        ),
        (
            format!("mpi --hostfile {malformed}"),
            "line 1 (\"node1 cores=2\") is malformed",
            "Open MPI's format",
        ),
        (
            format!("mpi --hostfile {good} --agent /no/such/agent"),
            "/no/such/agent is not a file",
            "called like ssh",
        ),
    ];
    let cases = [
        (
            "scaling --strong --ranks 0",
            "rank counts of 1 or more",
            "1 to 8",
        ),
        (
            "scaling --weak --repeats 2",
            "2 runs per rank count",
            "3 runs",
        ),
        ("scaling --strong --samples 0", "0 samples", "1 000 000"),
        ("scaling --strong --ranks 1,65", "65 ranks", "1 to 64"),
        ("mpi --nodes 0", "0 nodes", "1 to 253"),
        ("mpi --nodes 254", "254 nodes", "1 to 253"),
        ("mpi --ranks 0", "--ranks cannot be 0", "--ranks 6"),
        ("mpi --iterations 0", "--iterations", "--iterations 3"),
        ("mpi --type huge", "\"huge\"", "small"),
        (
            "mpi --ranks 3 --kill-rank 3",
            "--kill-rank cannot be 3",
            "from 0 to 2",
        ),
        ("pingpong --sizes 8,0", "above 0 bytes", "--sizes"),
        ("slurm --srun-rounds 0", "--srun-rounds", "--srun-rounds 5"),
    ];
    let name_with_a_space = ["cluster", "up", "--name", "Bad Name"];
    let refused = |args: &[&str], problem: &str, fix: &str| {
        let out = virtlab(args);
        assert!(!out.status.success(), "{args:?}");
        let text = stderr(&out);
        assert!(text.contains(problem), "{args:?}: {text}");
        assert!(
            text.contains("Fix:") && text.contains(fix),
            "{args:?}: {text}"
        );
    };
    let hostfile_cases = hostfile_cases.iter().map(|(c, p, f)| (c.as_str(), *p, *f));
    for (command, problem, fix) in hostfile_cases.chain(cases) {
        refused(
            &command.split_whitespace().collect::<Vec<_>>(),
            problem,
            fix,
        );
    }
    refused(&name_with_a_space, "cannot name", "lowercase");
    let out = virtlab_words("cluster down no-such-cluster");
    assert!(stderr(&out).contains("no cluster named no-such-cluster is up"));
    assert_eq!(rundir::folders(), before);
    assert_eq!(mpi_leftovers(), Vec::<u32>::new());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mpi_prints_the_essays_lines_and_leaves_nothing() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let out = virtlab_words("mpi --nodes 3 --ranks 6 --iterations 2 --interval-ms 50 --json");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines: Vec<&str> = report["essay_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 12, "{lines:?}");
    // The same lines went live to stderr (stdout is the JSON).
    for line in &lines {
        assert!(stderr(&out).contains(line), "{line}");
    }
    for rank in 0..6 {
        for iteration in 0..2 {
            let start = format!("{iteration}: rank-{rank} on node-");
            let line = lines.iter().find(|l| l.starts_with(&start)).unwrap();
            // "… pid 7 (host pid 4242)": the host pid was found while the rank ran.
            let host = line
                .rsplit("host pid ")
                .next()
                .unwrap()
                .trim_end_matches(')');
            assert!(host.parse::<u32>().is_ok(), "{line}");
        }
    }
    // Each rank is a unit of the executor: its status, its host pid from its first event, and
    // where it ran in its detail.
    let units = report["run"]["units"].as_array().unwrap();
    assert_eq!(units.len(), 6);
    for (i, unit) in units.iter().enumerate() {
        assert_eq!(unit["status"]["status"], "completed", "{unit}");
        assert_eq!(unit["detail"]["rank"], i, "{unit}");
        assert_eq!(unit["detail"]["lines"], 2, "{unit}");
        assert_eq!(unit["pid"], unit["detail"]["host_pid"], "{unit}");
        assert!(unit["first_line_ms"].as_f64().unwrap() > 0.0, "{unit}");
    }
    let lanes = report["run"]["timeline"]["events"].as_array().unwrap();
    assert_eq!(lanes.len(), 6 * 4, "start, 2 iterations and end per rank");
    assert_eq!(nothing_left(&report).nodes.len(), 3);
}

#[test]
fn a_rank_killed_on_purpose_crashes_and_mpi_stops_the_others_leaving_nothing() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let out = virtlab_words(
        "mpi --nodes 2 --ranks 4 --iterations 60 --interval-ms 50 --kill-rank 2 --kill-at 2 --json",
    );
    assert!(!out.status.success(), "a unit crashed: the command fails");
    assert!(
        stderr(&out).contains("worker-3 crashed: killed by signal 9"),
        "{}",
        stderr(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let units = report["run"]["units"].as_array().unwrap();
    let victim = &units[2];
    assert_eq!(victim["status"]["status"], "crashed", "{victim}");
    assert_eq!(victim["status"]["detail"]["number"], 9, "{victim}");
    assert_eq!(victim["detail"]["lines"], 2, "{victim}");
    for unit in [&units[0], &units[1], &units[3]] {
        assert_eq!(unit["status"]["status"], "stopped_because", "{unit}");
        assert_eq!(unit["status"]["detail"]["unit"], "worker-3", "{unit}");
        assert!(unit["detail"]["lines"].as_u64().unwrap() < 60, "{unit}");
    }
    assert_ne!(report["mpirun"]["exit_code"], 0);
    nothing_left(&report);
}

#[test]
fn the_ladder_measures_the_rank_rung_on_a_cluster_of_its_own() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let before = rundir::folders();
    let out = virtlab_words("ladder-probe --kind rank --count 3");
    assert!(out.status.success(), "{}", stderr(&out));
    let round: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let firsts = round["first_line_ms"].as_array().unwrap();
    assert_eq!(firsts.len(), 3, "{round}");
    // Open MPI's ranks are processes of their own: each adds memory to the probe's tree.
    assert!(round["user_bytes_each"].as_f64().unwrap() > 0.0, "{round}");
    assert_eq!(mpi_leftovers(), Vec::<u32>::new());
    assert_eq!(rundir::folders(), before, "the probe's cluster is removed");
}

#[test]
fn sigkill_of_mpi_mid_run_leaves_nothing_once_swept() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let before = rundir::folders();
    let mut child = Command::new(VIRTLAB)
        .args([
            "mpi",
            "--ranks",
            "3",
            "--iterations",
            "100",
            "--interval-ms",
            "100",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert!(first.starts_with("0: rank-"), "{first}");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(mpi_leftovers(), Vec::<u32>::new());
    rundir::sweep();
    let new: Vec<_> = rundir::folders()
        .into_iter()
        .filter(|d| !before.contains(d))
        .collect();
    assert_eq!(new, Vec::<std::path::PathBuf>::new());
}

#[test]
fn pingpong_measures_one_node_and_two() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let out = virtlab_words("pingpong --sizes 8,65536 --rounds 20 --json");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        for key in ["one_node_us", "two_nodes_us", "one_node_gb_per_s"] {
            assert!(p[key].as_f64().unwrap() > 0.0, "{p}");
        }
        println!("{p}");
    }
    assert_eq!(mpi_leftovers(), Vec::<u32>::new());
}

#[test]
fn a_held_cluster_is_listed_and_taken_down_by_name() {
    if !need_root() {
        return;
    }
    let _serial = one_at_a_time();
    let name = format!("held-{}", std::process::id());
    let up = virtlab(&[
        "cluster", "up", "--name", &name, "--nodes", "2", "--type", "small", "--json",
    ]);
    assert!(up.status.success(), "{}", stderr(&up));
    let state: ClusterState = serde_json::from_slice(&up.stdout).unwrap();
    let held = namespaces(&state);
    let status = virtlab_words("cluster status --json");
    let listed: Vec<ClusterState> = serde_json::from_slice(&status.stdout).unwrap();
    assert!(listed.iter().any(|s| s.name.as_deref() == Some(&name)));
    let again = virtlab(&["cluster", "up", "--name", &name]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("is up already"),
        "{}",
        stderr(&again)
    );
    let down = virtlab(&["cluster", "down", &name]);
    assert!(down.status.success(), "{}", stderr(&down));
    assert_eq!(leftovers(&state, &held, true), Vec::<String>::new());
    assert!(held::find(&name).is_err());
}

#[test]
fn sigkill_of_the_keeper_leaves_nothing_once_swept() {
    if !need_root() {
        return;
    }
    let _serial = one_at_a_time();
    let name = format!("killed-{}", std::process::id());
    let up = virtlab(&["cluster", "up", "--name", &name, "--nodes", "2", "--json"]);
    assert!(up.status.success(), "{}", stderr(&up));
    let state: ClusterState = serde_json::from_slice(&up.stdout).unwrap();
    let held = namespaces(&state);
    // SAFETY: kill sends SIGKILL to the keeper `up` started.
    unsafe { libc::kill(state.owner as i32, libc::SIGKILL) };
    // The holders saw their life line end; the run folder waits for the next sweep.
    assert_eq!(leftovers(&state, &held, false), Vec::<String>::new());
    rundir::sweep();
    assert!(!state.dir.exists());
}

#[test]
fn sigkill_of_a_slurm_keeper_takes_every_daemon_down() {
    if !need_slurm() {
        return;
    }
    let _serial = one_at_a_time();
    let name = format!("slurm-killed-{}", std::process::id());
    let up = virtlab(&[
        "cluster", "up", "--name", &name, "--nodes", "2", "--slurm", "--json",
    ]);
    assert!(up.status.success(), "{}", stderr(&up));
    let state: ClusterState = serde_json::from_slice(&up.stdout).unwrap();
    let held = namespaces(&state);
    let conf = state.dir.join("slurm").join("slurm.conf");
    let sinfo = Command::new("sinfo")
        .env("SLURM_CONF", &conf)
        .args(["-h", "-N", "-o", "%N %T"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&sinfo.stdout).trim(),
        "node-1 idle\nnode-2 idle"
    );
    // Slurm's processes name its configuration on their command lines.
    let pgrep = Command::new("pgrep")
        .args(["-f", &conf.display().to_string()])
        .output()
        .unwrap();
    let daemons: Vec<i32> = String::from_utf8_lossy(&pgrep.stdout)
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(!daemons.is_empty(), "no Slurm process found");
    let spaces = slurm_pid_namespaces(&state, &daemons);
    // SAFETY: kill sends SIGKILL to the keeper `up` started.
    unsafe { libc::kill(state.owner as i32, libc::SIGKILL) };
    assert_eq!(leftovers(&state, &held, false), Vec::<String>::new());
    rundir::sweep();
    assert_eq!(slurm_leftovers(&state.dir, &spaces), Vec::<String>::new());
}

#[test]
fn slurm_runs_a_job_on_every_node_and_queues_the_second() {
    if !need_slurm() {
        return;
    }
    let _serial = one_at_a_time();
    let out = virtlab_words("slurm --nodes 2 --srun-rounds 2 --hold-s 1 --json");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sinfo = report["sinfo"].as_array().unwrap();
    assert_eq!(sinfo.len(), 2);
    assert!(sinfo.iter().all(|n| n["state"] == "idle"), "{sinfo:?}");
    let hosts = report["srun"]["stdout"].as_str().unwrap();
    assert!(
        hosts.contains("node-1") && hosts.contains("node-2"),
        "{hosts}"
    );
    let queue = &report["queue"];
    assert_eq!(queue["second_waiting"]["state"], "PENDING");
    assert_eq!(queue["accounting"].as_array().unwrap().len(), 2);
    println!(
        "srun overhead median {} ms; second job waited {} s",
        report["overhead"]["median_ms"], queue["wait_s"]
    );
    let state: ClusterState = serde_json::from_value(report["cluster"].clone()).unwrap();
    assert_eq!(leftovers(&state, &[], true), Vec::<String>::new());
    assert_eq!(slurm_leftovers(&state.dir, &[]), Vec::<String>::new());
}

/// A held cluster, taken down however the test ends.
struct Held(String);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = virtlab(&["cluster", "down", &self.0]);
    }
}

#[test]
fn mpi_runs_on_a_hostfile_s_hosts_through_an_agent_and_names_an_unreachable_one() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let name = format!("hosts-{}", std::process::id());
    let up = virtlab(&[
        "cluster", "up", "--name", &name, "--nodes", "2", "--type", "small", "--json",
    ]);
    assert!(up.status.success(), "{}", stderr(&up));
    let held = Held(name);
    let state: ClusterState = serde_json::from_slice(&up.stdout).unwrap();
    let namespaces_held = namespaces(&state);
    // The nodes stand in for hosts: a hostfile of their addresses, the cluster's agent in
    // place of ssh, its subnet as the network.
    let dir = std::env::temp_dir().join(format!("virtlab-hostfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hostfile = dir.join("hosts");
    let listed: String = state
        .nodes
        .iter()
        .map(|n| format!("{} slots=1\n", n.address))
        .collect();
    std::fs::write(&hostfile, format!("# the held cluster\n{listed}")).unwrap();
    let agent = state.dir.join("agent").display().to_string();
    let hostfile = hostfile.display().to_string();
    let out = virtlab(&[
        "mpi",
        "--hostfile",
        &hostfile,
        "--agent",
        &agent,
        "--net",
        &state.subnet,
        "--ranks",
        "3",
        "--iterations",
        "2",
        "--interval-ms",
        "50",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["cluster"].is_null(), "{}", report["cluster"]);
    let addresses: Vec<&str> = state.nodes.iter().map(|n| n.address.as_str()).collect();
    assert_eq!(report["hosts"], serde_json::json!(addresses));
    assert_eq!(report["essay_lines"].as_array().unwrap().len(), 6);
    let nodes: Vec<&str> = report["run"]["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["detail"]["node"].as_str().unwrap())
        .collect();
    assert!(
        nodes.contains(&"node-1") && nodes.contains(&"node-2"),
        "{nodes:?}"
    );
    let command = report["mpirun"]["command"].as_str().unwrap();
    assert!(
        command.contains(&format!("--hostfile {hostfile}"))
            && command.contains(&format!("plm_rsh_agent {agent}")),
        "{command}"
    );
    assert_eq!(mpi_leftovers(), Vec::<u32>::new());
    // A host the agent does not know is named before mpirun starts.
    let stranger = dir.join("stranger");
    std::fs::write(&stranger, format!("{listed}10.255.255.254 slots=1\n")).unwrap();
    let out = virtlab(&[
        "mpi",
        "--hostfile",
        &stranger.display().to_string(),
        "--agent",
        &agent,
    ]);
    assert!(!out.status.success());
    let text = stderr(&out);
    assert!(
        text.contains("host 10.255.255.254") && text.contains("cannot be reached"),
        "{text}"
    );
    assert!(text.contains("Fix:"), "{text}");
    assert_eq!(mpi_leftovers(), Vec::<u32>::new());
    drop(held);
    assert_eq!(
        leftovers(&state, &namespaces_held, true),
        Vec::<String>::new()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scaling_prints_every_point_with_its_load_and_leaves_nothing() {
    if !need_mpi() {
        return;
    }
    let _serial = one_at_a_time();
    let out = virtlab_words("scaling --nodes 2 --ranks 1,2 --samples 2000000 --strong --json");
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["plan"]["scaling"], "strong");
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    // The same seed and samples: the same hits at every rank count.
    assert_eq!(points[0]["hits"], points[1]["hits"]);
    assert_eq!(points[0]["efficiency"].as_f64(), Some(1.0));
    for p in points {
        assert!(p["compute_ms"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p.get("load").is_some(), "{p}");
        println!("{} ranks: efficiency {}", p["ranks"], p["efficiency"]);
    }
    nothing_left(&report);
}
