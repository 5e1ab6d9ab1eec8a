//! Chapter 4's pictures and tables: throughput against each device's peak, the GPU's time split,
//! launch-only against synchronized, and the essay's 10000×10000 case.

use super::gpu::published_peak_tflops;
use super::{Device, Dtype, GpuTimes, Point, Run};
use crate::display::{Figure, Table};
use crate::peak::{Peak, Precision};
use crate::plot::{BarChart, LineChart};
use crate::{Error, Result};
use std::collections::BTreeSet;

/// The essay's time for one 10000×10000 f64 product with numpy on its CPU, in seconds.
pub const ESSAY_NUMPY_S: f64 = 7.8;
/// The essay's time for the same product with CuPy on its GPU, in seconds. It never waited for
/// the GPU to finish, so this is mostly the copy in and the launch
/// (see [`GpuTimes::launch_only_ms`]).
pub const ESSAY_CUPY_S: f64 = 0.92;

impl Run {
    /// The (device, element type) pairs measured, in a stable order.
    fn groups(&self) -> Vec<(Device, Dtype)> {
        let set: BTreeSet<(Device, Dtype)> =
            self.points.iter().map(|p| (p.device, p.dtype)).collect();
        set.into_iter().collect()
    }

    fn series(&self, device: Device, dtype: Dtype) -> Vec<(f64, f64)> {
        self.points
            .iter()
            .filter(|p| p.device == device && p.dtype == dtype)
            .map(|p| (p.n as f64, p.gflops()))
            .collect()
    }

    /// The points measured on the GPU, in the order they were measured.
    pub fn gpu_points(&self) -> impl Iterator<Item = &Point> {
        self.points.iter().filter(|p| p.device == Device::Gpu)
    }

    /// The point for this device, type and size, if measured.
    pub fn point(&self, device: Device, dtype: Dtype, n: usize) -> Option<&Point> {
        self.points
            .iter()
            .find(|p| p.device == device && p.dtype == dtype && p.n == n)
    }

    fn gpu_name(&self) -> String {
        self.gpu
            .as_ref()
            .map_or_else(|| "GPU".to_string(), |g| g.name.clone())
    }

    /// Every point as a row: size, device, time, GFLOP/s, error; and where it was measured.
    pub fn table(&self) -> Table {
        let gpu = match (&self.gpu, &self.gpu_skipped) {
            (Some(g), _) => format!(
                "{} (driver {}, cuBLAS {})",
                g.name, g.driver, g.cublas_version
            ),
            (None, Some(why)) => format!("not used: {why}"),
            (None, None) => "not asked for".to_string(),
        };
        let mut table = Table::new(
            format!(
                "Matrix products measured {} on {} ({} CPUs, {}); GPU: {gpu}",
                self.date_utc, self.cpu_model, self.usable_cpus, self.cpu_instruction_set
            ),
            [
                "device",
                "type",
                "n",
                "median time",
                "GFLOP/s",
                "max error (limit)",
            ],
        );
        for p in &self.points {
            let device = match p.threads {
                Some(t) => format!("CPU, {t} threads"),
                None => self.gpu_name(),
            };
            table.row([
                device,
                p.dtype.name().to_string(),
                p.n.to_string(),
                format!("{:.3} ms", p.median_ms()),
                format!("{:.1}", p.gflops()),
                format!("{:.1e} ({:.0e})", p.max_error, p.tolerance),
            ]);
        }
        table
    }

    /// Shows [`Run::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

/// Loads results recorded on another machine; a missing file is `None`, not an error.
pub fn load_recorded(path: impl AsRef<std::path::Path>) -> Result<Option<Run>> {
    let path = path.as_ref();
    if !path.exists() {
        return Ok(None);
    }
    Run::load(path).map(Some)
}

/// GFLOP/s against n for every measured line, live and recorded, with the CPU's measured peak
/// (chapter 0) and the GPU's published peak as horizontal lines. Both axes are logarithmic: a
/// GPU is hundreds of times a 2-core CPU.
pub fn throughput(live: &Run, recorded: Option<&Run>, cpu_peak: Option<&Peak>) -> Result<Figure> {
    let mut chart = LineChart::new("Matrix multiply throughput")
        .x_label("n (n×n times n×n)")
        .y_label("GFLOP/s")
        .log_x()
        .log_y();
    let mut peaks: Vec<(String, f64)> = Vec::new();
    let runs = std::iter::once((live, false)).chain(recorded.map(|r| (r, true)));
    for (run, is_recorded) in runs {
        for (device, dtype) in run.groups() {
            let who = match device {
                Device::Cpu => format!("CPU {dtype}"),
                Device::Gpu => format!("{} {dtype}", run.gpu_name()),
            };
            let points = run.series(device, dtype);
            chart = if is_recorded {
                // The day only; a hand-edited date shorter than that is shown whole.
                let day = run.date_utc.get(..10).unwrap_or(&run.date_utc);
                chart.dashed_series(format!("{who} (recorded {day})"), points)
            } else {
                chart.series(format!("{who} (live)"), points)
            };
            let peak = match device {
                Device::Cpu => cpu_peak
                    .and_then(|p| p.all_cores(cpu_precision(dtype)))
                    .map(|g| (format!("CPU {dtype} FMA peak (chapter 0)"), g)),
                Device::Gpu => published_peak_tflops(&run.gpu_name(), dtype).map(|t| {
                    (
                        format!("{} {dtype} published peak", run.gpu_name()),
                        t * 1e3,
                    )
                }),
            };
            if let Some(peak) = peak.filter(|p| !peaks.contains(p)) {
                peaks.push(peak);
            }
        }
    }
    for (name, gflops) in peaks {
        chart = chart.reference(name, gflops);
    }
    chart.render()
}

fn cpu_precision(dtype: Dtype) -> Precision {
    if dtype == Dtype::F64 {
        Precision::F64
    } else {
        Precision::F32
    }
}

/// The run's GPU points with their GPU times, or an error saying there are none.
fn gpu_points_or_error(run: &Run) -> Result<Vec<(&Point, &GpuTimes)>> {
    let points: Vec<(&Point, &GpuTimes)> = run
        .gpu_points()
        .filter_map(|p| p.gpu.as_ref().map(|times| (p, times)))
        .collect();
    if points.is_empty() {
        return Err(Error::new(
            "this run has no GPU measurements",
            "run with device gpu or both on a machine with a GPU, or use the recorded results",
        ));
    }
    Ok(points)
}

/// Where a GPU product's time goes, per size: copying A and B in, the product, copying C out.
pub fn gpu_time_split(run: &Run) -> Result<Figure> {
    let mut chart = BarChart::new(
        format!("Where the time goes on the {}", run.gpu_name()),
        &["copy in (A, B)", "compute", "copy out (C)"],
    )
    .x_label("milliseconds");
    for (p, times) in gpu_points_or_error(run)? {
        chart = chart.bar(
            format!("{} n = {}", p.dtype, p.n),
            &[times.copy_in_ms, p.median_ms(), times.copy_out_ms],
        );
    }
    chart.render()
}

/// The essay's mistake beside the truth: wall time of the call alone, and of call + synchronize.
pub fn launch_vs_synchronized(run: &Run) -> Result<Figure> {
    let mut chart = BarChart::new(
        "Timing the GPU: launch only (the essay) vs synchronized",
        &["milliseconds"],
    )
    .x_label("milliseconds (host clock)");
    for (p, times) in gpu_points_or_error(run)? {
        chart = chart
            .bar(
                format!("{} n = {}: launch only", p.dtype, p.n),
                &[times.launch_only_median_ms()],
            )
            .bar(
                format!("{} n = {}: synchronized", p.dtype, p.n),
                &[times.synchronized_median_ms()],
            );
    }
    chart.render()
}

/// The essay's 10000×10000 f64 product (numpy 7.8 s, CuPy 0.92 s unsynchronized) beside ours.
pub fn essay_comparison(cpu: Option<&Point>, gpu: Option<(&Point, &str)>) -> Table {
    let mut table = Table::new(
        "Two 10000×10000 f64 matrices multiplied: the essay's figures and ours",
        ["who", "seconds", "what the clock covered"],
    );
    table.row([
        "essay: numpy (CPU)".to_string(),
        format!("{ESSAY_NUMPY_S}"),
        "the product, on the essay's CPU".to_string(),
    ]);
    table.row([
        "essay: CuPy (GPU)".to_string(),
        format!("{ESSAY_CUPY_S}"),
        "no synchronize: mostly the launch and copy in".to_string(),
    ]);
    if let Some(p) = cpu.filter(|p| p.n == 10_000) {
        table.row([
            format!("virtlab CPU, {} threads (here)", p.threads.unwrap_or(1)),
            format!("{:.2}", p.median_ms() / 1e3),
            format!("the product ({:.0} GFLOP/s)", p.gflops()),
        ]);
    }
    if let Some((p, source)) = gpu.filter(|(p, _)| p.n == 10_000)
        && let Some(times) = &p.gpu
    {
        let ms = |x: f64| format!("{:.3}", x / 1e3);
        table.row([
            format!("virtlab GPU launch only ({source})"),
            ms(times.launch_only_median_ms()),
            "the essay's mistake, reproduced".to_string(),
        ]);
        table.row([
            format!("virtlab GPU synchronized ({source})"),
            ms(times.synchronized_median_ms()),
            format!("the product ({:.1} TFLOP/s)", p.gflops() / 1e3),
        ]);
        table.row([
            format!("virtlab GPU copy in + product + copy out ({source})"),
            ms(times.copy_in_ms + p.median_ms() + times.copy_out_ms),
            "what a numpy user waits for".to_string(),
        ]);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::super::{GpuTimes, Plan};
    use super::*;

    fn run_with(points: Vec<Point>) -> Run {
        Run {
            virtlab_version: "0".into(),
            date_utc: "2026-11-23 10:00 UTC".into(),
            cpu_model: "test CPU".into(),
            usable_cpus: 2,
            cpu_instruction_set: "AVX-512 FMA".into(),
            gpu: Some(super::super::gpu::GpuInfo {
                name: "NVIDIA H100 80GB HBM3".into(),
                memory_bytes: 80 << 30,
                driver: "13.0".into(),
                cublas_version: "13.0.0".into(),
            }),
            gpu_skipped: None,
            plan: Plan::new(&[1000], Dtype::F64, super::super::Devices::Both),
            points,
        }
    }

    fn point(device: Device, n: usize, ms: f64) -> Point {
        Point {
            device,
            dtype: Dtype::F64,
            n,
            runs_ms: vec![ms],
            threads: (device == Device::Cpu).then_some(2),
            isa: (device == Device::Cpu).then(|| "avx2".to_string()),
            gpu: (device == Device::Gpu).then(|| GpuTimes {
                copy_in_ms: 3.0,
                copy_out_ms: 1.5,
                launch_only_ms: vec![0.01],
                synchronized_ms: vec![ms + 0.02],
            }),
            max_error: 1e-15,
            tolerance: 1e-12,
        }
    }

    #[test]
    fn throughput_draws_live_recorded_and_both_peaks() {
        let live = run_with(vec![
            point(Device::Cpu, 1000, 20.0),
            point(Device::Cpu, 2000, 150.0),
        ]);
        let recorded = run_with(vec![
            point(Device::Gpu, 1000, 0.1),
            point(Device::Gpu, 2000, 0.5),
        ]);
        let peak = Peak {
            cpu_model: "test CPU".into(),
            usable_cpus: 2,
            instruction_set: "AVX-512 FMA".into(),
            ms_per_point: 100,
            measured_unix_s: 0,
            points: vec![crate::peak::PeakPoint {
                precision: Precision::F64,
                threads: 2,
                gflops: 200.0,
            }],
        };
        let svg = throughput(&live, Some(&recorded), Some(&peak))
            .unwrap()
            .svg()
            .to_string();
        for text in [
            "CPU f64 (live)",
            "H100 80GB HBM3 f64 (recorded 2026-11-23)",
            "CPU f64 FMA peak",
            "published peak",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
    }

    #[test]
    fn recordings_load_back_and_a_bad_file_is_named() {
        let dir = std::env::temp_dir().join(format!("virtlab-recorded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(load_recorded(dir.join("missing.json")).unwrap(), None);
        let run = run_with(vec![point(Device::Gpu, 1000, 0.1)]);
        run.save(dir.join("run.json")).unwrap();
        assert_eq!(load_recorded(dir.join("run.json")).unwrap(), Some(run));
        std::fs::write(dir.join("bad.json"), "{ not json").unwrap();
        let e = load_recorded(dir.join("bad.json")).unwrap_err();
        assert!(
            e.problem().contains("bad.json") && e.problem().contains("not a virtlab matmul result"),
            "{e}"
        );
        assert!(e.fix().contains("virtlab matmul --json"), "{e}");
    }

    #[test]
    fn a_recording_with_an_odd_date_is_still_drawn() {
        let live = run_with(vec![point(Device::Cpu, 1000, 20.0)]);
        let mut recorded = run_with(vec![point(Device::Gpu, 1000, 0.1)]);
        recorded.date_utc = "today".into();
        let svg = throughput(&live, Some(&recorded), None)
            .unwrap()
            .svg()
            .to_string();
        assert!(svg.contains("(recorded today)"));
    }

    #[test]
    fn gpu_charts_need_gpu_points_and_the_essay_table_compares() {
        let cpu_only = run_with(vec![point(Device::Cpu, 10_000, 16_000.0)]);
        assert!(
            gpu_time_split(&cpu_only)
                .unwrap_err()
                .fix()
                .contains("recorded")
        );
        let gpu = run_with(vec![point(Device::Gpu, 10_000, 40.0)]);
        assert!(gpu_time_split(&gpu).unwrap().svg().contains("compute"));
        assert!(
            launch_vs_synchronized(&gpu)
                .unwrap()
                .svg()
                .contains("launch only")
        );
        let table = essay_comparison(
            cpu_only.points.first(),
            gpu.points.first().map(|p| (p, "recorded")),
        );
        let text = table.to_string();
        assert!(
            text.contains("16.00") && text.contains("0.040") && text.contains("0.92"),
            "{text}"
        );
    }
}
