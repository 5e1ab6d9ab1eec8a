//! numpy beside our kernel: the essay's own tool, measured live on this machine — what a Python
//! user gets here.
//!
//! The peer is `bench/peers/matmul.py`, the script `scripts/bench` runs, started the same way:
//! with the project venv's Python (or `python3` when there is no venv, e.g. a conda
//! environment), one fresh process per size, the same warm-up ([`super::cpu::WARM_UP`]) and
//! the same number of timed runs as ours. OpenBLAS is held to the thread count our kernel used
//! (`OPENBLAS_NUM_THREADS`), and to its AVX2 (Haswell) kernels when `VIRTLAB_ISA=avx2` holds
//! ours to AVX2, so both sides use the same cores and the same vectors; otherwise OpenBLAS picks
//! its kernels and cache sizes from the CPU itself (the variables in `INHERITED_TUNING` are not passed on). When
//! numpy cannot run, the [`Outcome`] says why.

use super::{Device, Dtype, Run, flops};
use crate::isa::{ISA_ENV, Isa};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use virtlab_core::outcome::Outcome;
use virtlab_core::stats;

/// numpy's products at the sizes and types of one of our runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Numpy {
    /// The peer as it names itself, e.g. `numpy 2.4.6`.
    pub peer: String,
    /// The Python program that ran it.
    pub python: String,
    /// The OpenBLAS kernels it was held to (`OPENBLAS_CORETYPE`), when it was.
    pub coretype: Option<String>,
    /// One point per CPU point of our run, in the same order.
    pub points: Vec<NumpyPoint>,
}

/// One `a @ b` of two n×n matrices, timed by the peer.
#[derive(Debug, Clone, PartialEq)]
pub struct NumpyPoint {
    /// The element type of A, B and C.
    pub dtype: Dtype,
    /// The matrices' side.
    pub n: usize,
    /// The threads OpenBLAS was given: the number our kernel used for the same point.
    pub threads: usize,
    /// Each timed run after the warm-up, in ms.
    pub runs_ms: Vec<f64>,
}

impl NumpyPoint {
    /// The median of [`NumpyPoint::runs_ms`], in ms.
    pub fn median_ms(&self) -> f64 {
        stats::median(&mut self.runs_ms.clone())
    }

    /// 2n³ floating-point operations over the median time.
    pub fn gflops(&self) -> f64 {
        flops(self.n) / (self.median_ms() * 1e-3) / 1e9
    }
}

impl Numpy {
    /// numpy's point for this type and size, if measured.
    pub fn point(&self, dtype: Dtype, n: usize) -> Option<&NumpyPoint> {
        self.points.iter().find(|p| p.dtype == dtype && p.n == n)
    }

    /// The name charts and tables use, with the kernels it was held to: `numpy 2.4.6` or
    /// `numpy 2.4.6 (OPENBLAS_CORETYPE=Haswell)`.
    pub fn label(&self) -> String {
        match &self.coretype {
            Some(core) => format!("{} (OPENBLAS_CORETYPE={core})", self.peer),
            None => self.peer.clone(),
        }
    }
}

/// What the peer prints: its times, or why it could not run (numpy missing).
#[derive(Deserialize)]
#[serde(untagged)]
enum PeerOutput {
    Measured { peer: String, ms: Vec<f64> },
    Skipped { skipped: String },
}

/// Runs numpy's `a @ b` at every CPU size and type of `run`, on the same threads with the same
/// number of timed runs, after it; `on_line` gets a line per size as it completes. Skipped,
/// saying why and how to fix it, when Python or numpy is missing or the peer fails.
pub fn beside(run: &Run, on_line: impl FnMut(&str)) -> Outcome<Numpy> {
    beside_with(&python(), &peer_script(), run, on_line).into()
}

/// The Python to run the peer with: the project venv's, which `scripts/setup` fills with the
/// pinned numpy; `python3` from PATH without one (a conda environment carries numpy too).
fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/peers/matmul.py")
}

/// OpenBLAS settings the peer does not inherit: they would hold it to kernels or blocking other
/// than the ones its label names. The project's 2-vCPU machines export
/// `OPENBLAS_CORETYPE=Haswell` and `OPENBLAS_L2_SIZE=512` to every process: on an AVX-512 Zen 5
/// that kept numpy on its AVX2 kernels at about half its own choice's speed, under a label that
/// did not say so.
const INHERITED_TUNING: [&str; 2] = ["OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"];

/// The OpenBLAS kernels that match ours: Haswell's when `VIRTLAB_ISA` holds ours to AVX2 (on an
/// AVX-512 CPU numpy would otherwise use its AVX-512 kernels); OpenBLAS's own choice otherwise.
fn coretype() -> Option<&'static str> {
    let asked = std::env::var(ISA_ENV).ok()?;
    (Isa::parse(&asked).ok()?.short_name() == "avx2").then_some("Haswell")
}

fn beside_with(
    python: &Path,
    script: &Path,
    run: &Run,
    mut on_line: impl FnMut(&str),
) -> std::result::Result<Numpy, String> {
    let coretype = coretype();
    let mut numpy = Numpy {
        peer: String::new(),
        python: python.display().to_string(),
        coretype: coretype.map(str::to_string),
        points: Vec::new(),
    };
    for point in run.points.iter().filter(|p| p.device == Device::Cpu) {
        let threads = point.threads.unwrap_or(1);
        let command = peer_command(python, script, point, threads, coretype);
        let (peer, runs_ms) = run_peer(python, command)?;
        let measured = NumpyPoint {
            dtype: point.dtype,
            n: point.n,
            threads,
            runs_ms,
        };
        on_line(&format!(
            "{peer:<15} {:>4} n = {:>5}: {:>10.3} ms  {:>9.1} GFLOP/s  ({threads} thread{})",
            measured.dtype.name(),
            measured.n,
            measured.median_ms(),
            measured.gflops(),
            if threads == 1 { "" } else { "s" }
        ));
        numpy.peer = peer;
        numpy.points.push(measured);
    }
    if numpy.points.is_empty() {
        return Err("the run has no CPU products to put numpy beside".to_string());
    }
    Ok(numpy)
}

/// The peer's command for one of our points: same size, type, runs and threads, OpenBLAS held
/// to `coretype` or left to choose.
fn peer_command(
    python: &Path,
    script: &Path,
    point: &super::Point,
    threads: usize,
    coretype: Option<&str>,
) -> Command {
    let mut command = Command::new(python);
    command
        .arg(script)
        .args(["--device", "cpu", "--dtype", point.dtype.name()])
        .args(["--n", &point.n.to_string()])
        .args(["--repeats", &point.runs_ms.len().to_string()])
        .env("OPENBLAS_NUM_THREADS", threads.to_string())
        // A kernel's stdin is its command pipe; the peer reads nothing.
        .stdin(Stdio::null());
    for name in INHERITED_TUNING {
        command.env_remove(name);
    }
    if let Some(core) = coretype {
        command.env("OPENBLAS_CORETYPE", core);
    }
    command
}

/// Runs one peer process: its name and times, or why not, with the fix.
fn run_peer(
    python: &Path,
    mut command: Command,
) -> std::result::Result<(String, Vec<f64>), String> {
    let output = command.output().map_err(|e| {
        format!(
            "{} could not be started ({e}): run scripts/setup, which makes the project's .venv with numpy",
            python.display()
        )
    })?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the numpy peer ended with {}: {}",
            virtlab_core::executor::Crash::of_exit(output.status, None).describe(),
            stderr.trim().lines().last().unwrap_or("no message")
        ));
    }
    match serde_json::from_slice(&output.stdout) {
        Ok(PeerOutput::Measured { peer, ms }) if !ms.is_empty() => Ok((peer, ms)),
        Ok(PeerOutput::Skipped { skipped }) => Err(format!(
            "numpy did not run with {} ({skipped}): run scripts/setup, or pip install numpy",
            python.display()
        )),
        _ => Err(format!(
            "the numpy peer printed something that is not its times: {}",
            String::from_utf8_lossy(&output.stdout).trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Devices, Plan, Point};
    use super::*;

    fn cpu_run(sizes: &[usize]) -> Run {
        let points = sizes
            .iter()
            .map(|&n| Point {
                device: Device::Cpu,
                dtype: Dtype::F32,
                n,
                runs_ms: vec![1.0, 1.0],
                threads: Some(1),
                isa: Some("avx2".into()),
                gpu: None,
                max_error: 0.0,
                tolerance: 1e-5,
            })
            .collect();
        Run {
            virtlab_version: "0".into(),
            date_utc: "2026-12-01 00:00 UTC".into(),
            cpu_model: "test CPU".into(),
            usable_cpus: 1,
            cpu_instruction_set: "AVX2 FMA".into(),
            gpu: None,
            gpu_skipped: Some("no GPU".into()),
            plan: Plan::new(sizes, Dtype::F32, Devices::Cpu),
            points,
            cpu_load: None,
        }
    }

    /// A stand-in peer: a shell script that prints `output` and exits with `status`, so the
    /// parsing and the reasons are tested without numpy.
    fn fake_peer(name: &str, output: &str, status: i32) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("virtlab-numpy-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("peer.sh");
        std::fs::write(
            &script,
            format!("echo '{output}'\necho 'last words' >&2\nexit {status}\n"),
        )
        .unwrap();
        (PathBuf::from("sh"), script)
    }

    #[test]
    fn the_peer_s_times_become_points_in_our_order() {
        let (sh, script) = fake_peer(
            "ok",
            r#"{"peer": "numpy 9.9", "n": 0, "dtype": "f32", "ms": [2.0, 4.0, 3.0]}"#,
            0,
        );
        let mut lines = Vec::new();
        let numpy = beside_with(&sh, &script, &cpu_run(&[64, 128]), |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        std::fs::remove_dir_all(script.parent().unwrap()).unwrap();
        assert_eq!(numpy.peer, "numpy 9.9");
        assert_eq!(
            numpy.points.iter().map(|p| p.n).collect::<Vec<_>>(),
            [64, 128]
        );
        let p = numpy.point(Dtype::F32, 128).unwrap();
        assert_eq!((p.median_ms(), p.threads), (3.0, 1));
        assert!((p.gflops() - flops(128) / 3e-3 / 1e9).abs() < 1e-9);
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("n =   128") && lines[1].contains("1 thread)"));
    }

    #[test]
    fn openblas_is_held_only_to_the_kernels_the_label_names() {
        let point = &cpu_run(&[64]).points[0];
        let env_of = |coretype| {
            let command = peer_command(
                Path::new("python3"),
                Path::new("peer.py"),
                point,
                2,
                coretype,
            );
            command
                .get_envs()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.map(|v| v.to_string_lossy().into_owned()),
                    )
                })
                .collect::<std::collections::HashMap<_, _>>()
        };
        let own_choice = env_of(None);
        assert_eq!(own_choice["OPENBLAS_NUM_THREADS"].as_deref(), Some("2"));
        // Removed, whatever the calling process has set.
        assert_eq!(own_choice["OPENBLAS_CORETYPE"], None);
        assert_eq!(own_choice["OPENBLAS_L2_SIZE"], None);
        let held = env_of(Some("Haswell"));
        assert_eq!(held["OPENBLAS_CORETYPE"].as_deref(), Some("Haswell"));
        assert_eq!(held["OPENBLAS_L2_SIZE"], None);
    }

    #[test]
    fn a_missing_numpy_a_failed_peer_and_no_python_say_why() {
        let (sh, script) = fake_peer(
            "skipped",
            r#"{"skipped": "ModuleNotFoundError: No module named numpy"}"#,
            0,
        );
        let why = beside_with(&sh, &script, &cpu_run(&[64]), |_| {}).unwrap_err();
        assert!(
            why.contains("No module named numpy") && why.contains("pip install numpy"),
            "{why}"
        );
        std::fs::remove_dir_all(script.parent().unwrap()).unwrap();
        let (sh, script) = fake_peer("failed", "", 3);
        let why = beside_with(&sh, &script, &cpu_run(&[64]), |_| {}).unwrap_err();
        assert!(
            why.contains("exit status 3") && why.contains("last words"),
            "{why}"
        );
        std::fs::remove_dir_all(script.parent().unwrap()).unwrap();
        let why = beside_with(
            Path::new("/nonexistent/python"),
            &script,
            &cpu_run(&[64]),
            |_| {},
        )
        .unwrap_err();
        assert!(
            why.contains("/nonexistent/python could not be started")
                && why.contains("scripts/setup"),
            "{why}"
        );
        let why = beside_with(&sh, &script, &cpu_run(&[]), |_| {}).unwrap_err();
        assert!(why.contains("no CPU products"), "{why}");
    }

    #[test]
    fn the_real_peer_runs_or_says_why() {
        match beside(&cpu_run(&[64]), |_| {}) {
            Outcome::Measured(numpy) => {
                assert!(numpy.peer.starts_with("numpy "), "{}", numpy.peer);
                assert_eq!(numpy.points[0].runs_ms.len(), 2);
            }
            Outcome::Skipped(why) => assert!(why.contains("numpy"), "{why}"),
        }
    }
}
