//! The `virtlab` command as a user runs it: real process, real output, real exit status.
#![deny(clippy::undocumented_unsafe_blocks)]

use std::process::{Command, Output};

fn virtlab(args: &[&str], cache: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_virtlab"))
        .args(args)
        .env("VIRTLAB_CACHE_DIR", cache)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the virtlab binary should start")
}

/// A folder of this test's own, removed when the test ends (passing or failing).
fn temp_dir(name: &str) -> virtlab_testkit::TempDir {
    virtlab_testkit::TempDir::new(&format!("cli-{name}"))
}

/// The essay's lines in a run's output ("0: thread-1 …"), without the table that follows them.
fn essay_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| {
            l.split(':')
                .next()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Each `(args, expected)` must fail with `expected` in its stderr and no panic.
fn assert_refused(dir: &std::path::Path, cases: &[(&[&str], &str)]) {
    for (args, expected) in cases {
        let out = virtlab(args, dir);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: stderr lacks {expected:?}:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    }
}

#[test]
fn machine_prints_the_inventory() {
    let out = virtlab(&["machine"], &temp_dir("inventory"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for row in [
        "CPU model",
        "logical CPUs",
        "CPU affinity",
        "cgroup CPU quota",
        "usable CPUs",
        "memory",
        "hypervisor",
        "virtual machines (KVM)",
        "GPU",
    ] {
        assert!(stdout.contains(row), "missing {row}:\n{stdout}");
    }
}

#[test]
fn machine_peak_json_and_plot_are_written_and_saved() {
    let dir = temp_dir("peak");
    let plot = dir.join("peak.png");
    let out = virtlab(
        &[
            "machine",
            "--json",
            "--peak-ms",
            "10",
            "--plot",
            plot.to_str().unwrap(),
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout should be JSON");
    assert!(json["machine"]["usable_cpus"].as_u64().unwrap() >= 1);
    let points = json["peak"]["points"].as_array().unwrap();
    assert!(points.iter().all(|p| p["gflops"].as_f64().unwrap() > 0.0));
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));
    assert!(
        dir.join("cpu-peak.json").is_file(),
        "the peak should be saved for later chapters"
    );
}

#[test]
fn bad_flags_give_a_clear_error_and_a_non_zero_exit() {
    let dir = temp_dir("bad");
    assert_refused(
        &dir,
        &[
            (&["machine", "--peak-ms", "0"], "between 10 and 5000"),
            (&["machine", "--peak-ms", "-5"], "--peak-ms"),
            // A negative count: clap's words, and the fix.
            (
                &["processes", "--iterations", "-1"],
                "Fix: that flag counts",
            ),
            (&["matmul", "--n", "-5"], "'-5' for '--n <N>'"),
            (&["machine", "--plot", "peak.gif"], "ending in .png or .svg"),
            (
                &["machine", "--cores", "4"],
                "unexpected argument '--cores'",
            ),
        ],
    );
    assert!(!dir.join("peak.gif").exists());
}

#[test]
fn threads_print_one_line_per_iteration_from_one_process() {
    let out = virtlab(
        &[
            "threads",
            "--threads",
            "3",
            "--iterations",
            "2",
            "--interval-ms",
            "10",
        ],
        &temp_dir("threads"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines = essay_lines(&stdout);
    assert_eq!(lines.len(), 6, "{stdout}");
    let pids: std::collections::HashSet<&str> = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "every thread reports the same process: {stdout}"
    );
    for name in ["thread-1", "thread-2", "thread-3"] {
        assert!(stdout.contains(&format!("0: {name} (tid ")), "{stdout}");
    }
}

#[test]
fn a_thread_panic_is_an_error_naming_the_thread() {
    let out = virtlab(
        &[
            "threads",
            "--fault-unit",
            "2",
            "--fault-at",
            "0",
            "--interval-ms",
            "10",
        ],
        &temp_dir("panic"),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("virtlab error: thread thread-2 panicked: thread-2 panicked on purpose"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("stopped because thread-2 panicked"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("panicked at"),
        "the panic is reported once, as an error: {stderr}"
    );
}

#[test]
fn threads_and_scale_refuse_bad_input() {
    let dir = temp_dir("threads-bad");
    assert_refused(
        &dir,
        &[
            (
                &["threads", "--threads", "0"],
                "number of threads cannot be 0",
            ),
            (
                &["threads", "--threads", "1000000"],
                "number of threads cannot be 1000000",
            ),
            (
                &["threads", "--interval-ms", "0"],
                "interval (ms) cannot be 0",
            ),
            (
                &["scale", "--max-threads", "0"],
                "number of threads cannot be 0",
            ),
            (&["scale", "--single-thread-ms", "-1"], "--single-thread-ms"),
        ],
    );
}

#[test]
fn tasks_say_one_one_one_two_two_two_on_one_thread() {
    let out = virtlab(
        &[
            "tasks",
            "--tasks",
            "3",
            "--iterations",
            "2",
            "--interval-ms",
            "20",
        ],
        &temp_dir("tasks"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let words: Vec<&str> = stdout
        .lines()
        .take(6)
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        words,
        ["One", "One", "One", "Two", "Two", "Two"],
        "{stdout}"
    );
    assert!(stdout.contains("3 tasks on one OS thread"), "{stdout}");
}

#[test]
fn tasks_refuse_bad_input() {
    let dir = temp_dir("tasks-bad");
    assert_refused(
        &dir,
        &[
            (&["tasks", "--tasks", "0"], "number of tasks cannot be 0"),
            (
                &["tasks", "--interval-ms", "0"],
                "interval (ms) cannot be 0",
            ),
            (&["tasks", "--timeout-ms", "0"], "--timeout-ms cannot be 0"),
            (
                &["tasks-scale", "--max", "100000000"],
                "more than half of the",
            ),
            (
                &["tasks-scale", "--sleep-ms", "0"],
                "sleep (ms) cannot be 0",
            ),
        ],
    );
}

/// Runs the virtlab command with its address space capped, so the OS refuses thread stacks.
#[cfg(target_os = "linux")]
fn virtlab_with_address_space(args: &[&str], bytes: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_virtlab"));
    // glibc reserves 64 MiB of address space for each extra malloc arena, made when threads
    // contend for the allocator; under the limit that let a 41-byte allocation fail (an abort)
    // before the OS refused a thread (seen once in four full test runs). One arena keeps the
    // limit for what it is here to test: thread stacks.
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("MALLOC_ARENA_MAX", "1");
    // SAFETY: setrlimit is async-signal-safe and only changes the child's own limit.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the virtlab binary should start");
    let pid = child.id();
    let (sent, output) = std::sync::mpsc::channel();
    std::thread::spawn(move || sent.send(child.wait_with_output()));
    // A hang is a failure of its own, said as one, not a test run that never ends.
    match output.recv_timeout(std::time::Duration::from_secs(120)) {
        Ok(out) => out.expect("waiting for virtlab"),
        Err(_) => {
            // SAFETY: kill only sends a signal, to the child this test started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("virtlab {args:?} under a {bytes}-byte address space hung for 2 minutes");
        }
    }
}

#[cfg(target_os = "linux")]
#[test]
fn threads_the_os_refuses_are_a_clear_error_and_the_started_ones_stop() {
    // Each thread reserves a 2 MiB stack: 256 MiB of address space cannot hold 1000 of them.
    let out = virtlab_with_address_space(
        &[
            "threads",
            "--threads",
            "1000",
            "--iterations",
            "100",
            "--interval-ms",
            "100",
        ],
        256 << 20,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused: starting thread") && stderr.contains("Resource temporarily"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the other units were stopped") && stderr.contains("fewer units"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The started threads stopped at their next pause instead of running 100 iterations.
    let stdout = text(&out.stdout);
    assert!(stdout.contains("was refused"), "{stdout}");
    assert!(essay_lines(&stdout).len() < 1000 * 2, "{stdout}");
}

#[test]
fn matmul_prints_a_line_per_size_and_saves_a_loadable_run() {
    let dir = temp_dir("matmul");
    let file = dir.join("run.json");
    let out = virtlab(
        &[
            "matmul",
            "--sweep",
            "48,80",
            "--dtype",
            "f32",
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--json",
            "--out",
            file.to_str().unwrap(),
        ],
        &dir,
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Progress on stderr, one line per size; the whole run as JSON on stdout, and in the file.
    assert_eq!(
        stderr.lines().filter(|l| l.contains("GFLOP/s")).count(),
        2,
        "{stderr}"
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["points"].as_array().unwrap().len(), 2);
    assert_eq!(printed["points"][1]["n"], 80);
    let saved = virtlab::matmul::Run::load(&file).unwrap();
    assert_eq!(saved.points.len(), 2);
    assert!(saved.points.iter().all(|p| p.max_error <= p.tolerance));
}

#[test]
fn matmul_refuses_bad_input_and_explains_a_missing_gpu() {
    let dir = temp_dir("matmul-bad");
    assert_refused(
        &dir,
        &[
            (&["matmul", "--dtype", "f16"], "use f64, f32, tf32 or bf16"),
            (&["matmul", "--device", "tpu"], "use cpu, gpu or both"),
            (&["matmul", "--n", "0", "--device", "cpu"], "matrix size n"),
            (&["matmul", "--n", "90000", "--device", "cpu"], "choose n ≤"),
            (
                &["matmul", "--n", "64", "--dtype", "bf16", "--device", "cpu"],
                "tensor-core format",
            ),
        ],
    );
    if let virtlab::gpu::GpuStatus::Absent { .. } = virtlab::gpu::probe() {
        assert_refused(
            &dir,
            &[(&["matmul", "--n", "64", "--device", "gpu"], "no GPU")],
        );
        let both = virtlab(
            &["matmul", "--n", "64", "--device", "both", "--repeats", "1"],
            &dir,
        );
        assert!(both.status.success(), "{}", text(&both.stderr));
        assert!(text(&both.stdout).contains("GPU skipped: no GPU"));
    }
}

#[test]
fn the_ladder_measures_each_kind_in_fresh_processes_and_saves_it() {
    let dir = temp_dir("ladder");
    let out = virtlab(
        &[
            "ladder",
            "--kinds",
            "thread,task",
            "--counts",
            "2,8",
            "--rounds",
            "1",
            "--json",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ladder: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rungs = ladder["rungs"].as_array().unwrap();
    let kinds: Vec<(&str, u64)> = rungs
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [("task", 2), ("task", 8), ("thread", 2), ("thread", 8)]
    );
    assert!(
        rungs
            .iter()
            .all(|r| r["asked_to_running_ms"].as_f64().unwrap() > 0.0)
    );
    assert!(dir.join("cost-ladder.json").is_file());
    // Another count is added to the saved ladder (the rungs measured before stay), and the
    // command shows only what it measured.
    let out = virtlab(
        &[
            "ladder", "--kinds", "thread", "--counts", "4", "--rounds", "1", "--json",
        ],
        &dir,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let thread_counts = |ladder: serde_json::Value| -> Vec<u64> {
        ladder["rungs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["kind"] == "thread")
            .map(|r| r["count"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        thread_counts(serde_json::from_slice(&out.stdout).unwrap()),
        [4]
    );
    let saved = std::fs::read(dir.join("cost-ladder.json")).unwrap();
    assert_eq!(
        thread_counts(serde_json::from_slice(&saved).unwrap()),
        [2, 4, 8]
    );
    assert_refused(
        &dir,
        &[
            (
                &["ladder", "--kinds", "vm-ish"],
                "kind of worker cannot be 'vm-ish'",
            ),
            (&["ladder", "--rounds", "0"], "rounds cannot be 0"),
            (&["ladder", "--counts", "0"], "number of tasks cannot be 0"),
            (
                &["ladder", "--kinds", "task,vm-ish"],
                "kind of worker cannot be 'vm-ish'",
            ),
        ],
    );
}

#[test]
fn a_run_as_json_reports_every_unit_and_a_deadline_times_them_out() {
    let out = virtlab(
        &[
            "processes",
            "--workers",
            "2",
            "--iterations",
            "50",
            "--interval-ms",
            "20",
            "--timeout-ms",
            "200",
            "--json",
        ],
        &temp_dir("json-run"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["kind"], "process");
    for unit in run["units"].as_array().unwrap() {
        assert_eq!(unit["status"]["status"], "timed_out", "{unit}");
    }
}

#[test]
fn virtlab_isa_forces_the_matmul_kernels_and_the_peak_and_names_them() {
    let dir = temp_dir("isa");
    let run = |isa: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_virtlab"))
            .args(args)
            .env("VIRTLAB_ISA", isa)
            .env("VIRTLAB_CACHE_DIR", dir.as_os_str())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the virtlab binary should start")
    };
    let matmul = [
        "matmul",
        "--device",
        "cpu",
        "--sweep",
        "96",
        "--repeats",
        "1",
    ];
    let out = run("portable", &matmul);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("CPU portable ("),
        "{}",
        text(&out.stdout)
    );
    // Chapter 0's peak is measured with the same vectors, so chapter 4 compares like with like.
    let out = run(
        "portable",
        &["machine", "--peak", "--peak-ms", "10", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let instruction_set = json["peak"]["instruction_set"].as_str().unwrap();
    assert!(instruction_set.starts_with("portable"), "{instruction_set}");
    for args in [&matmul[..], &["machine", "--peak", "--peak-ms", "10"]] {
        let out = run("sse9", args);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("instruction set cannot be 'sse9'") && stderr.contains("Fix:"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn every_kind_in_the_registry_has_its_subcommand() {
    let dir = temp_dir("registry");
    for entry in virtlab::kinds::REGISTRY {
        let out = virtlab(&[entry.command, "--help"], &dir);
        assert!(
            out.status.success(),
            "`virtlab {} --help` (the {} rung's subcommand): {}",
            entry.command,
            entry.rung,
            text(&out.stderr)
        );
    }
}

#[test]
fn wasm_instances_run_the_work_and_a_runaway_is_stopped_at_the_deadline() {
    let dir = temp_dir("wasm");
    let args = [
        "wasm",
        "--instances",
        "2",
        "--iterations",
        "2",
        "--interval-ms",
        "10",
    ];
    let out = virtlab(&args, &dir);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(essay_lines(&text(&out.stdout)).len(), 4);
    let runaway = [&args[..], &["--runaway", "1", "--timeout-ms", "300"]].concat();
    let out = virtlab(&runaway, &dir);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("timed out"), "{stdout}");
    assert_refused(
        &dir,
        &[(
            &["threads", "--runaway", "1"],
            "make a VM or a wasm instance run away",
        )],
    );
}
