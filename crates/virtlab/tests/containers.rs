//! Chapter 7's containers, for real: what they cannot see or do, their limits acting, and
//! nothing left behind (process, cgroup folder, mount) however they end — normal end, crash,
//! OOM kill, SIGKILL of the CLI that started them.
#![cfg(target_os = "linux")]
#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use virtlab::container::Limits;
use virtlab::container::init::ContainerMessage;
use virtlab::container::kind::{Containers, WorkerFlags};
use virtlab::container::run::{ContainerDetail, ContainerReport};
use virtlab::executor::Run;
use virtlab::protocol::{self, Line, Message};

type ContainerRun = Run<ContainerDetail>;
use virtlab::container::support::Support;
use virtlab::executor;
use virtlab::work::Work;

use virtlab_testkit as common;
use virtlab_testkit::{eventually, is_alive};

mod groups;
use groups::group_dirs_of;

/// How long the tests wait for what a run started to be gone (300 looks 20 ms apart).
const SETTLE: Duration = Duration::from_secs(6);

/// Tests here look for groups and processes by owner, so they must not overlap.
static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the lock, or None (the test skipped, with the reason) where this machine cannot run
/// containers.
fn setup(limits: &Limits) -> Option<std::sync::MutexGuard<'static, ()>> {
    // SAFETY: set before any test thread reads it; every test sets the same value.
    unsafe { std::env::set_var("VIRTLAB_WORKER", env!("CARGO_BIN_EXE_virtlab")) };
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    match Support::detect().check(limits) {
        Ok(()) => Some(guard),
        Err(e) => {
            common::skip(e);
            None
        }
    }
}

fn limits(cpu: Option<f64>, memory: Option<u64>, pids: Option<u64>) -> Limits {
    Limits { cpu, memory, pids }
}

/// Cgroup folders named for `owner`, in every hierarchy this machine offers.
fn groups_of(owner: u32) -> Vec<String> {
    group_dirs_of(owner)
        .iter()
        .filter_map(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

/// Fails unless every group of `owner` is gone within [`SETTLE`], naming those left.
fn assert_no_groups_of(owner: u32) {
    assert!(
        eventually(SETTLE, || groups_of(owner).is_empty()),
        "{:?}",
        groups_of(owner)
    );
}

fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

fn assert_nothing_left(run: &ContainerRun) {
    assert_nothing_left_of(&run.units.iter().collect::<Vec<_>>());
}

fn assert_nothing_left_of(containers: &[&ContainerReport]) {
    assert_no_groups_of(std::process::id());
    for c in containers {
        let shim = c.detail.shim_pid.expect("the shim started");
        assert!(!is_alive(shim), "shim of {} alive", c.name);
        if let Some(pid) = c.detail.host_pid {
            assert!(!is_alive(pid), "pid 1 of {} alive", c.name);
        }
    }
}

/// `work` in `count` containers with `limits` whose workers do `flags`, quietly; a failed
/// container does not stop the others.
fn run(work: &Work, count: usize, limits: Limits, flags: WorkerFlags) -> ContainerRun {
    let options = executor::Options {
        fail_fast: false,
        ..executor::Options::quiet()
    };
    Containers::with_extras(limits, flags)
        .unwrap()
        .run(work, count, options)
        .unwrap()
}

#[test]
fn a_container_sees_only_itself_only_lo_and_cannot_write_host_files() {
    let Some(_serial) = setup(&Limits::default()) else {
        return;
    };
    let mounts_before = mount_count();
    let work = Work::new("iso", 1, 10).unwrap();
    let probe = WorkerFlags {
        probe: true,
        ..WorkerFlags::default()
    };
    let run = run(&work, 2, Limits::default(), probe);
    for c in &run.units {
        assert!(c.completed(), "{c:?}");
        let p = c
            .detail
            .probe
            .as_ref()
            .expect("the worker printed its probe");
        assert_eq!(p.pid, 1);
        assert_eq!(p.host_pid, c.detail.host_pid);
        assert_eq!(p.processes, 1, "only itself in /proc");
        assert_eq!(p.interfaces, vec!["lo".to_string()]);
        assert_eq!(p.hostname, c.name);
        let write = p.write_usr.as_deref().unwrap_or("");
        assert!(write.starts_with("refused"), "{write}");
        assert!(
            !p.root
                .iter()
                .any(|n| n == "work" || n == "root" || n == "home")
        );
        assert!(c.detail.lines[0].starts_with(&format!("0: {} pid 1 (host pid", c.name)));
        // Pid 1 is cloned into a network namespace of its own and brings its lo up.
        assert!(
            c.detail.setup.iter().any(|(step, _)| step == "lo up"),
            "{:?}",
            c.detail.setup
        );
    }
    assert_nothing_left(&run);
    assert_eq!(mount_count(), mounts_before, "no mount reached the host");
}

#[test]
fn the_worker_runs_only_inside_its_cgroup() {
    let l = limits(None, Some(64 << 20), Some(32));
    let Some(_serial) = setup(&l) else {
        return;
    };
    // Who the host sees in this run's groups, looked at while they run.
    let me = std::process::id();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let mut seen: Vec<(String, u32)> = Vec::new();
        while stopped.try_recv().is_err() {
            for dir in group_dirs_of(me) {
                let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
                for pid in procs.lines().filter_map(|p| p.trim().parse().ok()) {
                    let entry = (dir.display().to_string(), pid);
                    if !seen.contains(&entry) {
                        seen.push(entry);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    });
    let probe = WorkerFlags {
        probe: true,
        ..WorkerFlags::default()
    };
    let run = run(&Work::new("inside", 3, 200).unwrap(), 1, l, probe);
    stop.send(()).unwrap();
    let seen = watcher.join().unwrap();
    let c = &run.units[0];
    assert!(c.completed(), "{c:?}");
    let host_pid = c.detail.host_pid.expect("the shim said pid 1's host pid");
    // The host sees pid 1 in the container's group on every hierarchy a limit needs…
    for hierarchy in ["memory", "pids"] {
        assert!(
            seen.iter().any(|(dir, pid)| *pid == host_pid
                && dir.contains(hierarchy)
                && dir.ends_with(&format!("virtlab-{me}-{}", c.name))),
            "pid {host_pid} not seen in its {hierarchy} group: {seen:?}"
        );
    }
    // …and the worker, before its first iteration, sees itself at its cgroup namespace's root.
    // That namespace was made after the group was joined, so its root is the group: the
    // worker's first instruction already ran inside it.
    let p = c
        .detail
        .probe
        .as_ref()
        .expect("the worker printed its probe");
    for hierarchy in ["memory", "pids"] {
        let line = p
            .cgroups
            .iter()
            .find(|l| {
                l.split(':')
                    .next()
                    .is_some_and(|c| c.split(',').any(|n| n == hierarchy))
            })
            .unwrap_or_else(|| panic!("no {hierarchy} line in {:?}", p.cgroups));
        assert!(line.ends_with(":/"), "{line}");
    }
    assert_nothing_left(&run);
}

/// The host pid a container's line names: "0: name pid 1 (host pid 4242), hostname …".
fn host_pid_in(line: &str) -> u32 {
    line.split("host pid ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no host pid in {line}"))
}

/// Where cgroup2 is mounted, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<std::path::PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .ok()?
        .lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|r| r.starts_with("cgroup2 "))
        })
        .and_then(|l| l.split(' ').nth(4))
        .map(std::path::PathBuf::from)
}

#[test]
fn on_cgroup_v2_the_container_is_born_in_its_group() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    shim_in_a_v2_group("v2", "cloned (into the v2 group)", |_| {});
}

/// Where clone3 is missing (before Linux 5.3, or refused with ENOSYS by a seccomp profile, as
/// older container runtimes' default profiles do), the shim clones the old way and moves pid 1
/// into its v2 group by pid before letting it start.
#[cfg(target_arch = "x86_64")]
#[test]
fn without_clone3_pid_1_is_moved_into_its_v2_group_before_it_starts() {
    use std::os::unix::process::CommandExt;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let statement = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
    let load = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let equal = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    // clone3 fails with ENOSYS; every other call is allowed.
    let filter = [
        statement(load, 4, 0, 0), // seccomp_data.arch
        statement(equal, AUDIT_ARCH_X86_64, 0, 3),
        statement(load, 0, 0, 0), // seccomp_data.nr
        statement(equal, libc::SYS_clone3 as u32, 0, 1),
        statement(ret, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32, 0, 0),
        statement(ret, libc::SECCOMP_RET_ALLOW, 0, 0),
    ];
    shim_in_a_v2_group("noclone3", "cgroup joined (v2, by pid", move |command| {
        // SAFETY: two prctl calls, async-signal-safe, on a program built on this stack.
        unsafe {
            command.pre_exec(move || {
                let program = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr().cast_mut(),
                };
                let fprog = &program as *const libc::sock_fprog;
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, fprog) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        };
    });
}

/// Runs the shim itself, as `Spec::command` starts it, given only a v2 folder (no limits: this
/// machine's cgroup2 may carry no controllers; being in a group needs none), after `prepare`
/// adds to its command; checks that a set-up step names `step`, that the worker ran in the
/// group, and that the group is gone after.
fn shim_in_a_v2_group(name: &str, step: &str, prepare: impl FnOnce(&mut Command)) {
    let Some(mount) = cgroup2_mount() else {
        return common::skip("no cgroup2 mounted");
    };
    let me = std::process::id();
    let dir = mount.join(format!("virtlab-{me}-{name}"));
    if let Err(e) = std::fs::create_dir(&dir) {
        return common::skip(format!("cannot create {}: {e}", dir.display()));
    }
    let mut command = Command::new(env!("CARGO_BIN_EXE_virtlab"));
    command
        .args(["contain", "--name", name, "--hostname", name, "--report"])
        .arg("--cgroup")
        .arg(&dir)
        .args(["--", "worker", "--name", name, "--iterations", "3"])
        .args(["--interval-ms", "200"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    prepare(&mut command);
    let mut shim = command.spawn().unwrap();
    let mut lines = BufReader::new(shim.stdout.take().unwrap()).lines();
    let mut steps = Vec::new();
    let host_view = loop {
        let line = lines.next().expect("a line").unwrap();
        if line.starts_with(protocol::MARKER) {
            steps.push(line);
            continue;
        }
        let host_pid = host_pid_in(&line);
        break std::fs::read_to_string(format!("/proc/{host_pid}/cgroup")).unwrap();
    };
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    assert!(shim.wait().unwrap().success(), "{rest:?}");
    // The shim's own steps may come after pid 1's first line: both write to one pipe.
    assert!(
        steps.iter().chain(&rest).any(|s| s.contains(step)),
        "{steps:?} {rest:?}"
    );
    assert!(
        host_view
            .lines()
            .any(|l| l == format!("0::/virtlab-{me}-{name}")),
        "{host_view}"
    );
    // The shim removed the group when its worker ended.
    assert!(
        eventually(SETTLE, || !dir.exists()),
        "{} left",
        dir.display()
    );
}

#[test]
fn both_ways_into_a_group_are_measured_and_the_group_removed() {
    let Some(_serial) = setup(&limits(None, None, Some(64))) else {
        return;
    };
    let joins = virtlab::container::cost::join_costs(2).unwrap();
    let v1 = Support::detect()
        .controllers
        .iter()
        .find(|c| c.name == "pids")
        .and_then(|c| c.place.as_ref().ok())
        .is_some_and(|(version, _)| *version == virtlab::container::support::Version::V1);
    assert!(!joins.is_empty());
    assert!(joins[0].0.contains("from outside"), "{joins:?}");
    if v1 {
        assert_eq!(joins.len(), 2, "{joins:?}");
        assert!(joins[1].0.contains("itself"), "{joins:?}");
    }
    assert!(joins.iter().all(|(_, ms)| *ms > 0.0), "{joins:?}");
    assert_no_groups_of(std::process::id());
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    let l = limits(None, None, Some(16));
    let Some(_serial) = setup(&l) else {
        return;
    };
    let bomb = WorkerFlags {
        fork_bomb: true,
        ..WorkerFlags::default()
    };
    let run = run(&Work::new("bomb", 1, 10).unwrap(), 1, l, bomb);
    let c = &run.units[0];
    assert!(c.completed(), "{c:?}");
    let line = &c.detail.lines[0];
    let forks: u64 = line
        .split("stopped after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no fork count in {line}"));
    assert!(forks < 16, "{line}");
    assert!(c.detail.end_stats.and_then(|s| s.pids_refused).unwrap_or(0) >= 1);
    assert_nothing_left(&run);
}

#[test]
fn a_cpu_quota_throttles_a_cpu_bound_worker() {
    let Some(_serial) = setup(&limits(Some(0.25), None, None)) else {
        return;
    };
    let sweep = virtlab::container::limits::cpu_quotas(&[0.25], 1).unwrap();
    let r = &sweep.runs[0];
    assert!(r.report.completed(), "{:?}", r.report);
    assert!(r.periods > 0 && r.throttled_periods > 0, "{r:?}");
    assert!(r.report.detail.samples.len() >= 2, "sampled while running");
    assert!(sweep.throttling_plot().is_ok() && sweep.share_plot().is_ok());
    assert_nothing_left_of(&[&r.report]);
}

#[test]
fn an_allocating_worker_is_reported_oom_killed_and_removed() {
    let l = limits(None, Some(32 << 20), None);
    let Some(_serial) = setup(&l) else {
        return;
    };
    let hog = WorkerFlags {
        allocate_mib: 8,
        ..WorkerFlags::default()
    };
    let run = run(&Work::new("hog", 20, 10).unwrap(), 2, l, hog);
    for c in &run.units {
        assert!(c.detail.oom_killed, "{c:?}");
        // Both were OOM-killed: one failing did not stop the other.
        assert_eq!(
            c.status,
            executor::Status::Crashed(executor::Crash::OutOfMemory {
                at_bytes: Some(32 << 20)
            })
        );
        assert!(
            run.check()
                .is_err_and(|e| e.problem().contains("OOM-killed"))
        );
    }
    assert_nothing_left(&run);
}

#[test]
fn a_crash_is_reported_with_its_signal_and_removed() {
    let l = limits(Some(0.5), Some(64 << 20), Some(64));
    let Some(_serial) = setup(&l) else {
        return;
    };
    let options = executor::Options {
        fail_fast: false,
        ..executor::Options::quiet().with_fault(2, 0)
    };
    let run = Containers::new(l)
        .unwrap()
        .run(&Work::new("crash", 2, 10).unwrap(), 2, options)
        .unwrap();
    assert!(run.units[0].completed());
    // abort() raises SIGABRT, which the kernel does not deliver to pid 1 from inside its own
    // namespace (no handler installed); glibc then ends it with a fault instead (SIGSEGV).
    let status = run.units[1].status.describe();
    assert!(status.starts_with("crashed: killed by signal"), "{status}");
    assert!(!run.units[1].detail.oom_killed);
    assert_nothing_left(&run);
}

#[test]
fn sigkill_of_the_cli_leaves_no_process_group_or_mount() {
    let l = limits(Some(0.5), Some(64 << 20), Some(64));
    let Some(_serial) = setup(&l) else {
        return;
    };
    let mounts_before = mount_count();
    let mut cli = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(["container", "--containers", "2", "--iterations", "1000"])
        .args(["--interval-ms", "100", "--cpu", "0.5", "--memory", "64MiB"])
        .args(["--pids", "64"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let cli_pid = cli.id();
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    let mut workers = Vec::new();
    while workers.len() < 2 {
        let line = lines.next().expect("a line").unwrap();
        let host_pid = host_pid_in(&line);
        if !workers.contains(&host_pid) {
            workers.push(host_pid);
        }
    }
    // cpu, cpuacct, memory, pids on v1; one folder on v2.
    assert_eq!(groups_of(cli_pid).len(), 2 * distinct_hierarchies());
    let shims = shims_of(cli_pid);
    assert_eq!(shims.len(), 2, "{shims:?}");
    cli.kill().unwrap();
    cli.wait().unwrap();
    let started = Instant::now();
    assert!(
        eventually(SETTLE, || groups_of(cli_pid).is_empty()),
        "groups left: {:?}",
        groups_of(cli_pid)
    );
    assert!(eventually(SETTLE, || !shims
        .iter()
        .chain(&workers)
        .any(|p| is_alive(*p))));
    assert_eq!(mount_count(), mounts_before);
    eprintln!(
        "cleaned up {:?} after the CLI was killed",
        started.elapsed()
    );
}

#[test]
fn containers_are_one_more_kind_of_the_shared_executor() {
    let l = limits(Some(0.5), Some(64 << 20), Some(64));
    let Some(_serial) = setup(&l) else {
        return;
    };
    let work = Work::new("container", 2, 10).unwrap();
    let run = virtlab::container::kind::run(&work, 2, l, executor::Options::quiet()).unwrap();
    assert!(run.succeeded(), "{:?}", run.units);
    assert_eq!(run.kind, "container");
    assert!(run.units.iter().all(|u| u.first_line_ms.is_some()));
    assert!(
        run.summary.contains("as containers (0.5 CPU"),
        "{}",
        run.summary
    );
    let options = executor::Options {
        fault: Some(executor::Fault { unit: 2, at: 0 }),
        ..executor::Options::quiet()
    };
    let run = virtlab::container::kind::run(&work, 2, l, options).unwrap();
    match &run.units[1].status {
        executor::Status::Crashed(why) => {
            // pid 1's abort ends in SIGSEGV inside its namespace (see the crash test).
            assert!(why.describe().contains("killed by signal"), "{why:?}")
        }
        other => panic!("{other:?}"),
    }
    assert_no_groups_of(std::process::id());
}

#[test]
fn a_normal_user_gets_root_inside_mapped_to_itself_and_no_cgroup_limits() {
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return common::skip("needs root to run the CLI as another user");
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let nobody = 65534;
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_virtlab"))
            .args(["container", "--containers", "1", "--iterations", "1"])
            .args(args)
            .env("VIRTLAB_WORKER", env!("CARGO_BIN_EXE_virtlab"))
            .current_dir("/")
            .uid(nobody)
            .gid(nobody)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = cli(&["--probe"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && err.contains("user namespace") {
        return common::skip(err);
    }
    assert!(out.status.success(), "{text}{err}");
    let ids = text
        .lines()
        .find(|l| l.starts_with("user id"))
        .unwrap_or_else(|| panic!("no user id row in {text}"));
    assert!(ids.contains(&format!("0 → {nobody}")), "{ids}");
    // Pid 1's network namespace (in its user namespace, made by a normal user) holds only lo.
    let interfaces = text
        .lines()
        .find(|l| l.starts_with("network interfaces"))
        .unwrap_or_else(|| panic!("no interfaces row in {text}"));
    assert_eq!(
        interfaces.split_whitespace().last(),
        Some("lo"),
        "{interfaces}"
    );
    // A v1 hierarchy is root's alone: a limit is refused with the fix, nothing starts.
    let out = cli(&["--memory", "64MiB"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if Support::detect()
        .controllers
        .iter()
        .any(|c| matches!(&c.place, Ok((virtlab::container::support::Version::V1, _))))
    {
        assert!(!out.status.success());
        assert!(
            err.contains("memory limit cannot be set") && err.contains("Fix:"),
            "{err}"
        );
    }
}

#[test]
fn without_a_cgroup_filesystem_a_limit_is_refused_with_its_fix() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(["container", "--containers", "1", "--memory", "64MiB"])
        .env("VIRTLAB_CGROUP_ROOT", "/nonexistent-cgroup-root")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("virtlab error: the memory limit cannot be set: no cgroup filesystem"),
        "{err}"
    );
    assert!(
        err.contains("Fix:") && err.contains("leave out --memory"),
        "{err}"
    );
}

/// The cgroup is made on a thread while the shim starts: when it cannot be made, the unit is
/// refused with the reason, and the shim, never told to go on, stops without starting pid 1.
#[test]
fn a_cgroup_that_cannot_be_made_stops_its_shim_and_says_why() {
    let limits = limits(None, None, Some(64));
    let Some(_serial) = setup(&limits) else {
        return;
    };
    let me = std::process::id();
    let pids_base = Support::detect()
        .controllers
        .into_iter()
        .find(|c| c.name == "pids")
        .and_then(|c| c.place.ok())
        .map(|(_, base)| base)
        .expect("checked by setup");
    // A folder already where the container's group goes: making the group fails.
    let squatter = pids_base.join(format!("virtlab-{me}-container-1"));
    std::fs::create_dir(&squatter).unwrap();
    // Units are named after the work: container-1, container-2, …
    let work = Work::new("container", 2, 50).unwrap();
    let run = Containers::new(limits)
        .unwrap()
        .run(&work, 1, executor::Options::quiet());
    std::fs::remove_dir(&squatter).unwrap();
    let run = run.unwrap();
    let status = format!("{:?}", run.units[0].status);
    assert!(
        status.contains("Refused") && status.contains("creating the cgroup"),
        "{status}"
    );
    assert!(
        eventually(SETTLE, || shims_of(me).is_empty()),
        "{:?}",
        shims_of(me)
    );
    assert!(run.units[0].detail.host_pid.is_none(), "pid 1 started");
    assert!(groups_of(me).is_empty(), "{:?}", groups_of(me));
}

/// Pid 1 runs the worker's code without an exec: a panic there ends it as it ends a program,
/// its message printed and exit status 101, reported as such, with nothing left behind.
#[test]
fn a_panic_in_pid_1_ends_it_with_status_101_and_leaves_nothing() {
    let Some(_serial) = setup(&Limits::default()) else {
        return;
    };
    let mounts_before = mount_count();
    let worker = "worker --name panics --iterations 3 --interval-ms 10 --panic-at 1";
    let (code, stdout, stderr) =
        contain_reporting("panics", &worker.split(' ').collect::<Vec<_>>());
    assert_eq!(code, Some(101), "{stdout}{stderr}");
    assert!(
        stderr.contains("a panic on purpose at iteration 1"),
        "{stderr}"
    );
    let first = stdout
        .lines()
        .find(|l| l.starts_with("0: panics pid 1"))
        .unwrap_or_else(|| panic!("no first line in {stdout}"));
    assert!(!stdout.lines().any(|l| l.starts_with("1: ")), "{stdout}");
    let end = end_line(&stdout);
    assert!(end.contains("exit status 101"), "{end}");
    assert!(!is_alive(host_pid_in(first)), "pid 1 alive");
    assert_eq!(mount_count(), mounts_before, "no mount reached the host");
}

/// The shim reads the worker's command line before it clones pid 1: a line it cannot read
/// still ends pid 1 as an exec'd worker would end, with the parser's message and status 2.
#[test]
fn a_worker_line_that_cannot_be_read_ends_pid_1_with_the_parsers_message() {
    let Some(_serial) = setup(&Limits::default()) else {
        return;
    };
    let (code, stdout, stderr) = contain_reporting("unread", &["worker", "--iterations", "many"]);
    assert_eq!(code, Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("invalid value 'many'"), "{stderr}");
    assert!(stderr.contains("--iterations"), "{stderr}");
    let end = end_line(&stdout);
    assert!(end.contains("exit status 2"), "{end}");
}

/// Runs one shim by hand, `virtlab contain --name N --hostname N --report -- worker…`; returns
/// its exit code, stdout and stderr.
fn contain_reporting(name: &str, worker: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args([
            "contain",
            "--name",
            name,
            "--hostname",
            name,
            "--report",
            "--",
        ])
        .args(worker)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// How the container ended, read from the shim's end message, in words.
fn end_line(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| match protocol::read::<ContainerMessage>(l) {
            Ok(Line::Message(Message::Kind(ContainerMessage::End(end)))) => {
                Some(end.status().describe())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no end message in {stdout}"))
}

#[test]
fn bad_values_are_refused_before_anything_starts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (flag, value, says) in [
        ("--cpu", "0", "CPU limit cannot be 0"),
        ("--cpu", "-0.5", "CPU limit cannot be -0.5"),
        ("--cpu", "4096", "CPU limit cannot be 4096"),
        ("--memory", "1KiB", "memory limit cannot be 1.0 KiB"),
        (
            "--memory",
            "64 parsecs",
            "memory limit cannot be \"64 parsecs\"",
        ),
        ("--pids", "0", "pids limit cannot be 0"),
        ("--containers", "0", "number of containers cannot be 0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_virtlab"))
            .args(["container", flag, value])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains(says) && err.contains("Fix:"),
            "{flag} {value}: {err}"
        );
    }
}

/// Hierarchies a group spans here (one on v2; cpu, memory, pids, cpuacct on v1).
fn distinct_hierarchies() -> usize {
    let mut dirs: Vec<_> = Support::detect()
        .controllers
        .into_iter()
        .filter_map(|c| c.place.ok())
        .collect();
    dirs.dedup();
    dirs.len()
}

/// Pids of `virtlab contain` shims started by `parent`: its children with that command line
/// (each shim's pid 1 runs the worker without an exec, so it shows the same command line, but
/// its parent is the shim).
fn shims_of(parent: u32) -> Vec<u32> {
    let marker = format!("--parent-pid\0{parent}\0");
    let parent_of = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let (_, rest) = stat.rsplit_once(')')?;
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            })
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let c = String::from_utf8_lossy(&c);
                    c.contains("contain\0") && c.contains(&marker)
                })
                .unwrap_or(false)
                && parent_of(pid) == Some(parent)
        })
        .collect()
}

#[test]
fn the_cli_takes_the_shared_run_flags_and_prints_the_run() {
    let l = limits(None, Some(64 << 20), Some(64));
    let Some(_serial) = setup(&l) else {
        return;
    };
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_virtlab"))
            .args(["container", "--containers", "2", "--iterations", "2"])
            .args(["--interval-ms", "10", "--memory", "64MiB", "--pids", "64"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // Container 2 aborts; --keep-going lets container 1 finish; the exit status says it failed.
    let out = cli(&[
        "--fault-unit",
        "2",
        "--fault-at",
        "0",
        "--keep-going",
        "--no-tree",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}{err}");
    let row = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row for {name} in {text}"))
            .to_string()
    };
    assert!(row("container-1").contains("completed"), "{text}");
    assert!(
        row("container-2").contains("crashed: killed by signal"),
        "{text}"
    );
    assert!(err.contains("container container-2 crashed"), "{err}");
    assert!(!err.contains("the other units were stopped"), "{err}");
    // A deadline stops both; --json prints the executor's run with each container's detail.
    let out = cli(&["--timeout-ms", "1", "--json"]);
    let run: ContainerRun = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run.kind, "container");
    assert!(run.units.iter().all(|u| matches!(
        u.status,
        executor::Status::TimedOut { .. } | executor::Status::Completed
    )));
    assert!(eventually(SETTLE, || groups_of(run.host_pid).is_empty()));
}
