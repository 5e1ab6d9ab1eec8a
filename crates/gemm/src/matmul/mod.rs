//! Matrix multiply on the CPU and the GPU, measured right (chapter 4).
//!
//! The essay timed numpy against CuPy on 10000×10000 matrices and never synchronized the GPU, so
//! it timed the launch. Here one [`Plan`] (sizes, element type, devices) runs on the CPU (our
//! packed kernel, [`cpu`]) and on the GPU (cuBLAS through cudarc, [`gpu`]); every [`Point`] keeps
//! its runs, its GFLOP/s, and for the GPU the copy times and the launch-only time beside the
//! synchronized one. A [`Run`] is saved as JSON so results measured on a GPU machine can be drawn
//! beside live ones on a machine without one ([`report`]).
//!
//! Why one long file: the plan, the sweep and the saved run are one pipeline that the CPU and GPU
//! paths (`cpu.rs`, `gpu.rs`) and the reports (`report/`) plug into; splitting it would split
//! the types from the code that checks them.

pub mod cpu;
pub mod gpu;
mod kernel;
mod memory;
pub mod numpy;
pub mod report;

pub use kernel::Scalar;

use serde::{Deserialize, Serialize};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::error::check_range;
use virtlab_core::machine;
use virtlab_core::protocol;
use virtlab_core::stats;
use virtlab_core::units;

/// The element types a product can use. TF32 and BF16 are GPU tensor-core formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 64-bit floats (`double`, numpy's default): 8 bytes, about 16 significant digits.
    F64,
    /// 32-bit floats: 4 bytes, about 7 significant digits, twice as many per SIMD register.
    F32,
    /// f32 data multiplied on tensor cores with 10-bit mantissas (cuBLAS TF32 math mode).
    Tf32,
    /// bfloat16 inputs and output, f32 accumulation.
    Bf16,
}

impl Dtype {
    /// Every element type, from widest to narrowest; the order a sweep over types uses.
    pub const ALL: [Dtype; 4] = [Dtype::F64, Dtype::F32, Dtype::Tf32, Dtype::Bf16];

    /// The lowercase name that tables show and the CLI's `--dtype` takes: `f64`, `f32`, `tf32`
    /// or `bf16`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F64 => "f64",
            Dtype::F32 => "f32",
            Dtype::Tf32 => "tf32",
            Dtype::Bf16 => "bf16",
        }
    }

    /// Bytes per element as stored in memory (TF32 is stored as f32).
    pub fn bytes(self) -> u64 {
        match self {
            Dtype::F64 => 8,
            Dtype::F32 | Dtype::Tf32 => 4,
            Dtype::Bf16 => 2,
        }
    }

    /// The largest error accepted against an f64 reference, relative to Σ|a||b| of the element:
    /// a few units of the format's rounding, which covers input rounding and accumulation order.
    pub fn tolerance(self) -> f64 {
        match self {
            Dtype::F64 => 1e-12,
            Dtype::F32 => 1e-5,
            Dtype::Tf32 => 4e-3,
            Dtype::Bf16 => 2e-2,
        }
    }
}

impl std::fmt::Display for Dtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Dtype {
    type Err = Error;
    fn from_str(s: &str) -> Result<Dtype> {
        Dtype::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                Error::invalid(
                    "element type",
                    format!("'{s}'"),
                    "use f64, f32, tf32 or bf16",
                )
            })
    }
}

/// Which processor computed a [`Point`]; [`Devices`] is what a [`Plan`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The CPU, with our packed kernel on every usable core (or the plan's thread count).
    Cpu,
    /// The first CUDA GPU (device 0), through cuBLAS.
    Gpu,
}

/// Where a plan runs: the CPU, the GPU, or both (the GPU part is skipped, with the reason, when
/// there is none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Devices {
    /// The CPU only.
    Cpu,
    /// The GPU only: an error when there is none.
    Gpu,
    /// The CPU, then the GPU when there is one; without one, the GPU part is skipped and
    /// [`Run::gpu_skipped`] says why.
    Both,
}

impl std::str::FromStr for Devices {
    type Err = Error;
    fn from_str(s: &str) -> Result<Devices> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(Devices::Cpu),
            "gpu" => Ok(Devices::Gpu),
            "both" => Ok(Devices::Both),
            _ => Err(Error::invalid(
                "device",
                format!("'{s}'"),
                "use cpu, gpu or both",
            )),
        }
    }
}

/// Time spent on the GPU around the product itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuTimes {
    /// Host → device copy of A and B (CUDA events).
    pub copy_in_ms: f64,
    /// Device → host copy of C (CUDA events).
    pub copy_out_ms: f64,
    /// Wall time of the cuBLAS call alone, no synchronize: what the essay measured.
    pub launch_only_ms: Vec<f64>,
    /// Wall time of the call plus a stream synchronize: the true cost seen from the host.
    pub synchronized_ms: Vec<f64>,
}

impl GpuTimes {
    /// The median of [`GpuTimes::launch_only_ms`], in ms: how long the host waited for the call to
    /// return, not for the product.
    pub fn launch_only_median_ms(&self) -> f64 {
        stats::median(&mut self.launch_only_ms.clone())
    }

    /// The median of [`GpuTimes::synchronized_ms`], in ms: how long the host waited for the product
    /// to be done.
    pub fn synchronized_median_ms(&self) -> f64 {
        stats::median(&mut self.synchronized_ms.clone())
    }
}

/// One measured product of two n×n matrices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The processor that computed it.
    pub device: Device,
    /// The element type of A, B and C.
    pub dtype: Dtype,
    /// The matrices' side: A, B and C are n×n, so the product costs 2n³ floating-point
    /// operations ([`flops`]).
    pub n: usize,
    /// Compute time of each timed run after the warm-up (GPU: CUDA events around the call).
    pub runs_ms: Vec<f64>,
    /// CPU threads used; absent on the GPU.
    pub threads: Option<usize>,
    /// The CPU kernels' instruction set (`avx512`, `avx2`, `portable`); absent on the GPU.
    #[serde(default)]
    pub isa: Option<String>,
    /// The GPU's copy and launch times around the product; absent on the CPU.
    pub gpu: Option<GpuTimes>,
    /// Largest error on the checked rows, relative to Σ|a||b| of each element (0 is exact;
    /// `1e-5` is about five correct significant digits).
    pub max_error: f64,
    /// The largest relative error [`Point::max_error`] was allowed: [`Dtype::tolerance`].
    pub tolerance: f64,
}

impl Point {
    /// The median of [`Point::runs_ms`], in ms: the time tables show and [`Point::gflops`] uses.
    pub fn median_ms(&self) -> f64 {
        stats::median(&mut self.runs_ms.clone())
    }

    /// 2n³ floating-point operations over the median compute time.
    pub fn gflops(&self) -> f64 {
        flops(self.n) / (self.median_ms() * 1e-3) / 1e9
    }

    /// One line for a terminal or a live notebook cell.
    pub fn line(&self) -> String {
        let device = match (self.device, self.threads) {
            (Device::Cpu, Some(t)) => format!(
                "CPU {} ({t} thread{})",
                self.isa.as_deref().unwrap_or("?"),
                if t == 1 { "" } else { "s" }
            ),
            _ => "GPU".to_string(),
        };
        let mut line = format!(
            "{device:<15} {:>4} n = {:>5}: {:>10.3} ms  {:>9.1} GFLOP/s  (max error {:.1e} ≤ {:.0e})",
            self.dtype.name(),
            self.n,
            self.median_ms(),
            self.gflops(),
            self.max_error,
            self.tolerance
        );
        if let Some(g) = &self.gpu {
            line += &format!(
                "; copy in {:.2} ms, out {:.2} ms; launch only {:.3} ms vs synchronized {:.3} ms",
                g.copy_in_ms,
                g.copy_out_ms,
                g.launch_only_median_ms(),
                g.synchronized_median_ms()
            );
        }
        line
    }
}

/// Floating-point operations in one n×n by n×n product: 2n³ (n multiplies and n adds for
/// each of the n² elements of C). `flops(1000)` is 2·10⁹, i.e. 2 GFLOP.
pub fn flops(n: usize) -> f64 {
    2.0 * (n as f64).powi(3)
}

/// What to measure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The matrix sides to measure, e.g. `[256, 512, 1024]`; each becomes one [`Point`] per device.
    pub sizes: Vec<usize>,
    /// The element type every product uses; TF32 and BF16 run on the GPU only.
    pub dtype: Dtype,
    /// Where to run: the CPU, the GPU or both.
    pub devices: Devices,
    /// CPU threads; every usable CPU when absent.
    pub threads: Option<usize>,
    /// Timed runs per point after the warm-up (on the CPU, [`cpu::WARM_UP`] of products).
    pub repeats: usize,
}

impl Plan {
    /// A plan for these sizes, type and devices, on every usable CPU, with 3 timed runs per point.
    pub fn new(sizes: &[usize], dtype: Dtype, devices: Devices) -> Plan {
        Plan {
            sizes: sizes.to_vec(),
            dtype,
            devices,
            threads: None,
            repeats: 3,
        }
    }

    /// This plan on `threads` CPU threads instead of every usable CPU (1 to 1024).
    pub fn threads(mut self, threads: usize) -> Plan {
        self.threads = Some(threads);
        self
    }

    /// This plan with `repeats` timed runs per point (1 to 100) after the warm-up.
    pub fn repeats(mut self, repeats: usize) -> Plan {
        self.repeats = repeats;
        self
    }

    fn check(&self) -> Result<()> {
        if self.sizes.is_empty() {
            return Err(Error::new(
                "no matrix sizes were given",
                "give at least one size, e.g. 1024",
            ));
        }
        for &n in &self.sizes {
            check_range("the matrix size n", n, 1, 100_000)?;
        }
        check_range("the number of timed runs", self.repeats, 1, 100)?;
        if let Some(t) = self.threads {
            check_range("the number of CPU threads", t, 1, 1024)?;
        }
        if self.devices != Devices::Gpu && matches!(self.dtype, Dtype::Tf32 | Dtype::Bf16) {
            return Err(not_on_cpu(self.dtype));
        }
        if self.devices != Devices::Gpu {
            crate::isa::Isa::chosen()?;
        }
        Ok(())
    }
}

/// Everything a sweep measured, with where and when: the file `virtlab matmul --json` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// The version of this crate that measured it, e.g. `0.1.0`.
    pub virtlab_version: String,
    /// When the sweep ended, e.g. `2026-11-30 21:40 UTC`.
    pub date_utc: String,
    /// The CPU's model name as the OS gives it, e.g. `AMD EPYC 9654 96-Core Processor`.
    pub cpu_model: String,
    /// CPUs this process was allowed to use when it ran.
    pub usable_cpus: usize,
    /// The SIMD instruction set the CPU kernel used, e.g. `AVX-512 FMA` or `AVX2 FMA`.
    pub cpu_instruction_set: String,
    /// The GPU, its driver and cuBLAS versions, when the GPU part ran.
    pub gpu: Option<gpu::GpuInfo>,
    /// Why the GPU part did not run, when it did not.
    pub gpu_skipped: Option<String>,
    /// What was asked for.
    pub plan: Plan,
    /// Every measured product: the CPU's sizes first, then the GPU's, each in the plan's order.
    pub points: Vec<Point>,
    /// What other programs and the hypervisor took while the CPU part ran (`None` when it did
    /// not run, `/proc/stat` cannot be read, or in runs recorded before this was kept).
    #[serde(default)]
    pub cpu_load: Option<virtlab_core::load::Load>,
}

/// Runs the plan: CPU sizes first, then GPU sizes, calling `on_point` as each completes.
/// With `Devices::Both` and no usable GPU the GPU part is skipped and the reason recorded.
pub fn sweep(plan: &Plan, mut on_point: impl FnMut(&Point)) -> Result<Run> {
    plan.check()?;
    let mut points = Vec::new();
    let mut cpu_load = None;
    if plan.devices != Devices::Gpu {
        let threads = plan.threads.unwrap_or_else(machine::usable_cpus);
        let sampler = virtlab_core::load::Sampler::start();
        for &n in &plan.sizes {
            let point = cpu::measure(n, plan.dtype, threads, plan.repeats)?;
            on_point(&point);
            points.push(point);
        }
        cpu_load = sampler.stop();
    }
    let (mut gpu_info, mut gpu_skipped) = (None, None);
    if plan.devices != Devices::Cpu {
        match gpu::Gpu::open() {
            Ok(device) => {
                for &n in &plan.sizes {
                    let point = device.measure(n, plan.dtype, plan.repeats)?;
                    on_point(&point);
                    points.push(point);
                }
                gpu_info = Some(device.info().clone());
            }
            // The problem alone: with the CPU part done, nothing is wrong to fix.
            Err(e) if plan.devices == Devices::Both => gpu_skipped = Some(e.problem().to_string()),
            Err(e) => return Err(e),
        }
    }
    Ok(Run {
        virtlab_version: env!("CARGO_PKG_VERSION").to_string(),
        date_utc: utc_now(),
        cpu_model: machine::cpu_model(),
        usable_cpus: machine::usable_cpus(),
        cpu_instruction_set: crate::isa::Isa::chosen()?.name().to_string(),
        gpu: gpu_info,
        gpu_skipped,
        plan: plan.clone(),
        points,
        cpu_load,
    })
}

/// [`sweep`] run by the release-built `virtlab` program, each progress line passed to `on_line`.
/// Notebooks use this: evcxr compiles the crate with its own profile (opt-level 2, debug
/// assertions, incremental), under which the kernel ran at 40-45% of its release speed
/// (measured 44 vs 110 GFLOP/s at n = 2048 f64).
pub fn sweep_in_release_build(plan: &Plan, mut on_line: impl FnMut(&str)) -> Result<Run> {
    use std::io::{BufRead, Read};
    plan.check()?;
    let sizes: Vec<String> = plan.sizes.iter().map(usize::to_string).collect();
    let devices = match plan.devices {
        Devices::Cpu => "cpu",
        Devices::Gpu => "gpu",
        Devices::Both => "both",
    };
    let mut command = virtlab_core::release::command([
        "matmul",
        "--json",
        "--die-with-parent",
        "--dtype",
        plan.dtype.name(),
        "--device",
        devices,
        "--repeats",
        &plan.repeats.to_string(),
        "--sweep",
        &sizes.join(","),
    ])?;
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(threads) = plan.threads {
        command.args(["--threads", &threads.to_string()]);
    }
    let mut child = command
        .spawn()
        .map_err(|e| Error::os("starting the measuring program", e))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // Read the JSON on its own thread so a full pipe never stalls the child.
    let json = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let mut errors = Vec::new();
    for line in std::io::BufReader::new(child.stderr.take().expect("stderr is piped")).lines() {
        let line = line.map_err(|e| Error::os("reading the measuring program's progress", e))?;
        match protocol::reported_error([line.as_str()]) {
            Some(_) => errors.push(line),
            None => on_line(&line),
        }
    }
    let status = child
        .wait()
        .map_err(|e| Error::os("waiting for the measuring program", e))?;
    let json = json
        .join()
        .map_err(|_| Error::bug("the thread reading the results panicked"))?
        .map_err(|e| Error::os("reading the measuring program's results", e))?;
    if !status.success() {
        return Err(virtlab_core::release::failure(
            "the measuring program",
            status,
            &errors,
        ));
    }
    serde_json::from_str(&json).map_err(|e| {
        Error::new(
            format!("the measuring program printed results that are not a matmul run: {e}"),
            "rebuild it: cargo build --release",
        )
    })
}

impl Run {
    /// Writes the run as JSON (atomically: a reader never sees half a file).
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::new(
                format!("the results could not be written as JSON: {e}"),
                "report this as a bug in virtlab",
            )
        })?;
        virtlab_core::store::write_atomically(path, &json)
    }

    /// Reads a run saved by [`Run::save`] or `virtlab matmul --json`.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Run> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::new(
                format!("{} is not a virtlab matmul result: {e}", path.display()),
                "point at a file written by `virtlab matmul --json` or Run::save",
            )
        })
    }
}

/// Bytes per element of an n×n matrix that a product of `dtype` holds: A, B and C in that type
/// and, when `checked`, the f64 copies of A and B that the result is checked against.
pub(crate) fn footprint(dtype: Dtype, checked: bool) -> Footprint {
    Footprint {
        matrices: 3 * dtype.bytes(),
        check_copies: if checked { 2 * 8 } else { 0 },
    }
}

/// What a product holds in memory, per element of one n×n matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footprint {
    /// A, B and C together, in the product's type (24 for f64).
    pub matrices: u64,
    /// The f64 copies of A and B kept to check the result (16), or 0 where none are kept.
    pub check_copies: u64,
}

impl Footprint {
    /// Bytes for n×n matrices: (A, B and C, the check's copies).
    pub fn bytes(self, n: usize) -> (u64, u64) {
        let elements = (n as u64).saturating_mul(n as u64);
        (
            elements.saturating_mul(self.matrices),
            elements.saturating_mul(self.check_copies),
        )
    }

    /// What n×n matrices take, in words: `2.2 GiB for A, B and C (f64)`, and the check's copies
    /// when there are any.
    pub fn describe(self, n: usize, dtype: Dtype) -> String {
        let (matrices, copies) = self.bytes(n);
        let mut text = format!("{} for A, B and C ({dtype})", units::bytes(matrices));
        if copies > 0 {
            text += &format!(
                " and {} for the f64 copies of A and B that check the result",
                units::bytes(copies)
            );
        }
        text
    }
}

/// Refuses a size or number of timed runs out of range, and a product whose matrices and
/// their f64 check copies would not fit in this machine's memory: what every device checks
/// first.
pub(crate) fn check_request(n: usize, dtype: Dtype, repeats: usize) -> Result<()> {
    check_range("the matrix size n", n, 1, 100_000)?;
    check_range("the number of timed runs", repeats, 1, 100)?;
    check_fits(
        n,
        dtype,
        footprint(dtype, true),
        machine::available_memory(),
        "this machine",
    )
}

/// Refuses a product whose matrices would not fit in `available` bytes, before allocating.
pub(crate) fn check_fits(
    n: usize,
    dtype: Dtype,
    footprint: Footprint,
    available: u64,
    place: &str,
) -> Result<()> {
    let (matrices, copies) = footprint.bytes(n);
    let needed = matrices.saturating_add(copies);
    if needed <= available {
        return Ok(());
    }
    let per_element = footprint.matrices + footprint.check_copies;
    let largest = ((available as f64 / per_element as f64).sqrt() as usize).max(1);
    let parts = if copies > 0 {
        format!("{}: {}", units::bytes(needed), footprint.describe(n, dtype))
    } else {
        footprint.describe(n, dtype)
    };
    Err(Error::new(
        format!(
            "n = {n} needs {parts}, but {place} has {} available",
            units::bytes(available)
        ),
        format!("choose n ≤ {largest}"),
    ))
}

/// Fills a matrix with uniform values in [0, 1), like numpy.random.rand, from a fixed seed so
/// every device multiplies the same numbers.
pub(crate) fn random_values(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..len)
        .map(|_| {
            // SplitMix64: fast, and good enough for test data.
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect()
}

/// Largest error of `c` on a few rows against an f64 product of the same (already rounded)
/// inputs, each relative to Σ|a||b| for that element.
pub(crate) fn relative_error(a: &[f64], b: &[f64], c: &[f64], n: usize) -> f64 {
    let rows = [0, n / 3, n / 2, n - 1];
    let mut worst: f64 = 0.0;
    let mut exact = vec![0.0; n];
    let mut scale = vec![0.0; n];
    for &i in rows.iter() {
        exact.fill(0.0);
        scale.fill(0.0);
        for p in 0..n {
            let aip = a[i * n + p];
            let b_row = &b[p * n..(p + 1) * n];
            for j in 0..n {
                exact[j] += aip * b_row[j];
                scale[j] += (aip * b_row[j]).abs();
            }
        }
        for j in 0..n {
            let error = (c[i * n + j] - exact[j]).abs() / scale[j].max(f64::MIN_POSITIVE);
            worst = worst.max(if error.is_nan() { f64::INFINITY } else { error });
        }
    }
    worst
}

/// The refusal of a GPU-only element type on the CPU.
pub(crate) fn not_on_cpu(dtype: Dtype) -> Error {
    Error::new(
        format!("{dtype} is a GPU tensor-core format; the CPU kernels multiply f32 and f64"),
        "use f32 or f64 on the CPU, or run tf32/bf16 on the GPU only (device gpu)",
    )
}

/// Fails when a product's error on the checked rows exceeds what its type allows.
pub(crate) fn check_error(device: &str, n: usize, dtype: Dtype, max_error: f64) -> Result<()> {
    if max_error <= dtype.tolerance() {
        return Ok(());
    }
    Err(Error::new(
        format!(
            "the {device} product of {n}×{n} {dtype} is wrong: error {max_error:.2e} exceeds {:.0e}",
            dtype.tolerance()
        ),
        "report this as a bug in virtlab, with the output of `virtlab machine`",
    ))
}

fn utc_now() -> String {
    virtlab_core::units::utc(virtlab_core::units::unix_now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_parse_and_refuse_with_the_choices() {
        assert_eq!("F64".parse::<Dtype>().unwrap(), Dtype::F64);
        assert_eq!("bf16".parse::<Dtype>().unwrap(), Dtype::Bf16);
        let e = "f16".parse::<Dtype>().unwrap_err();
        assert!(
            e.problem().contains("'f16'") && e.fix().contains("tf32"),
            "{e}"
        );
        assert!(
            "tpu"
                .parse::<Devices>()
                .unwrap_err()
                .fix()
                .contains("cpu, gpu or both")
        );
    }

    #[test]
    fn plans_refuse_bad_sizes_and_cpu_tensor_formats() {
        let e = Plan::new(&[], Dtype::F64, Devices::Cpu)
            .check()
            .unwrap_err();
        assert!(e.problem().contains("no matrix sizes"));
        let e = Plan::new(&[0], Dtype::F64, Devices::Cpu)
            .check()
            .unwrap_err();
        assert!(e.to_string().contains("matrix size"), "{e}");
        let e = Plan::new(&[64], Dtype::Bf16, Devices::Both)
            .check()
            .unwrap_err();
        assert!(
            e.problem().contains("tensor-core") && e.fix().contains("gpu"),
            "{e}"
        );
        assert!(Plan::new(&[64], Dtype::Bf16, Devices::Gpu).check().is_ok());
    }

    #[test]
    fn too_big_is_refused_with_the_numbers_and_a_size_that_fits() {
        let checked = footprint(Dtype::F64, true);
        let e = check_fits(90_000, Dtype::F64, checked, 16 << 30, "this machine").unwrap_err();
        // Three f64 matrices of 90000² are 3·90000²·8 B = 194.4 GB = 181.0 GiB; the check's two
        // f64 copies add 129.6 GB = 120.7 GiB.
        for part in [
            "n = 90000 needs 301.7 GiB: 181.0 GiB for A, B and C (f64)",
            "and 120.7 GiB for the f64 copies of A and B that check the result",
            "this machine has 16.0 GiB available",
        ] {
            assert!(e.problem().contains(part), "{e}");
        }
        let largest: usize = e.fix().trim_start_matches("choose n ≤ ").parse().unwrap();
        assert!(check_fits(largest, Dtype::F64, checked, 16 << 30, "x").is_ok());
        assert!(check_fits(largest + 1, Dtype::F64, checked, 16 << 30, "x").is_err());
        // On a GPU only the three matrices count, in the product's type.
        let gpu = footprint(Dtype::F32, false);
        assert_eq!(gpu.bytes(10_000), (1_200_000_000, 0));
        let e = check_fits(100_000, Dtype::F32, gpu, 80 << 30, "the GPU").unwrap_err();
        assert_eq!(
            e.problem(),
            "n = 100000 needs 111.8 GiB for A, B and C (f32), but the GPU has 80.0 GiB available"
        );
    }

    #[test]
    fn random_values_are_uniform_and_repeatable() {
        let v = random_values(100_000, 7);
        assert_eq!(v, random_values(100_000, 7));
        assert_ne!(v, random_values(100_000, 8));
        assert!(v.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
    }

    #[test]
    fn relative_error_sees_a_wrong_element() {
        let n = 8;
        let (a, b) = (random_values(n * n, 1), random_values(n * n, 2));
        let mut c = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                c[i * n + j] = (0..n).map(|p| a[i * n + p] * b[p * n + j]).sum();
            }
        }
        assert!(relative_error(&a, &b, &c, n) < 1e-15);
        c[(n - 1) * n + 3] += 0.5;
        assert!(relative_error(&a, &b, &c, n) > 0.01);
    }

    #[test]
    fn the_release_build_measures_and_passes_its_errors_on() {
        let mut lines = Vec::new();
        let plan = Plan::new(&[64, 96], Dtype::F32, Devices::Cpu)
            .threads(1)
            .repeats(1);
        let run = sweep_in_release_build(&plan, |line| lines.push(line.to_string())).unwrap();
        assert_eq!(run.points.iter().map(|p| p.n).collect::<Vec<_>>(), [64, 96]);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("n =    96"), "{lines:?}");
        let refused = Plan::new(&[90_000], Dtype::F64, Devices::Cpu);
        let e = sweep_in_release_build(&refused, |_| {}).unwrap_err();
        assert!(
            e.problem().starts_with("n = 90000 needs") && e.fix().starts_with("choose n ≤"),
            "{e}"
        );
    }

    #[test]
    fn dates_are_civil_utc() {
        let now = utc_now();
        assert!(now.ends_with(" UTC") && now.len() == 20, "{now}");
        assert!(now.starts_with("20"), "{now}");
    }
}
