//! Chapter 4's pictures and tables: throughput against each device's peak, the GPU's time split,
//! launch-only against synchronized, and the essay's 10000×10000 case.

use super::gpu::published_peak_tflops;
use super::numpy::Numpy;
use super::{Device, Dtype, GpuTimes, Point, Run, flops, footprint};
use crate::peak::{Peak, Precision};
use std::collections::BTreeSet;
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::load::Load;
use virtlab_core::outcome::Outcome;
use virtlab_core::units;
use virtlab_display::plot::{BarChart, LineChart};
use virtlab_display::{Figure, Table};

/// The essay's time for one 10000×10000 f64 product with numpy on its CPU, in seconds.
pub const ESSAY_NUMPY_S: f64 = 7.8;
/// The essay's time for the same product with CuPy on its GPU, in seconds. It never waited for
/// the GPU to finish, so this is mostly the copy in and the launch
/// (see [`GpuTimes::launch_only_ms`]).
pub const ESSAY_CUPY_S: f64 = 0.92;
/// The side of the essay's matrices: 10000×10000.
pub const ESSAY_N: usize = 10_000;

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

    /// The point closest to the essay's case on `device`: 10000×10000 f64 when measured, else
    /// the largest f64 size, else the largest size of any type.
    pub fn nearest_to_essay(&self, device: Device) -> Option<&Point> {
        let on_device = || self.points.iter().filter(move |p| p.device == device);
        self.point(device, Dtype::F64, ESSAY_N)
            .or_else(|| {
                on_device()
                    .filter(|p| p.dtype == Dtype::F64)
                    .max_by_key(|p| p.n)
            })
            .or_else(|| on_device().max_by_key(|p| p.n))
    }

    fn gpu_name(&self) -> String {
        self.gpu
            .as_ref()
            .map_or_else(|| "GPU".to_string(), |g| g.name.clone())
    }

    /// Every point as a row: size, device, time, GFLOP/s, error; and where it was measured.
    pub fn table(&self) -> Table {
        self.table_with(None)
    }

    /// [`Run::table`] with numpy's GFLOP/s beside each CPU point and our ratio to it; when numpy
    /// did not run, a last row says why.
    pub fn table_beside(&self, numpy: &Outcome<Numpy>) -> Table {
        self.table_with(Some(numpy))
    }

    fn table_with(&self, numpy: Option<&Outcome<Numpy>>) -> Table {
        let gpu = match (&self.gpu, &self.gpu_skipped) {
            (Some(g), _) => format!(
                "{} (driver {}, cuBLAS {})",
                g.name, g.driver, g.cublas_version
            ),
            (None, Some(why)) => format!("not used: {why}"),
            (None, None) => "not asked for".to_string(),
        };
        let mut header = vec!["device", "type", "n", "median time", "GFLOP/s"];
        let peer = numpy.and_then(Outcome::measured);
        let peer_column = peer.map(|p| format!("{} GFLOP/s (same threads)", p.label()));
        if let Some(column) = &peer_column {
            header.extend([column.as_str(), "ours ÷ numpy"]);
        }
        header.push("max error (limit)");
        let mut table = Table::new(
            format!(
                "Matrix products measured {} on {} ({} CPUs, {}); GPU: {gpu}",
                self.date_utc, self.cpu_model, self.usable_cpus, self.cpu_instruction_set
            ),
            header,
        );
        for p in &self.points {
            let device = match p.threads {
                Some(t) => format!("CPU, {t} threads"),
                None => self.gpu_name(),
            };
            let mut row = vec![
                device,
                p.dtype.name().to_string(),
                p.n.to_string(),
                format!("{:.3} ms", p.median_ms()),
                format!("{:.1}", p.gflops()),
            ];
            if let Some(peer) = peer {
                let theirs = peer.point(p.dtype, p.n).filter(|_| p.device == Device::Cpu);
                row.push(theirs.map_or("—".into(), |t| format!("{:.1}", t.gflops())));
                row.push(theirs.map_or("—".into(), |t| format!("{:.2}×", p.gflops() / t.gflops())));
            }
            row.push(format!("{:.1e} ({:.0e})", p.max_error, p.tolerance));
            table.row(row);
        }
        if let Some(why) = numpy.and_then(Outcome::skipped) {
            table.row(["numpy".to_string(), format!("skipped: {why}")]);
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

/// GFLOP/s against n on one chart: our kernel and numpy measured live, the GPU (live, or from a
/// recording when one is given), chapter 0's FMA peak for the threads used and a drawn GPU's
/// published peak as horizontal lines. The note under the chart says what is missing and why.
/// The y axis is logarithmic only when a GPU is drawn (hundreds of times a small CPU).
pub fn throughput(
    live: &Run,
    numpy: &Outcome<Numpy>,
    recorded: Option<&Run>,
    cpu_peak: Option<&Peak>,
) -> Result<Figure> {
    let mut chart = LineChart::new("Matrix multiply throughput")
        .x_label("n (n×n times n×n)")
        .y_label("GFLOP/s")
        .log_x();
    let mut peaks: Vec<(String, f64)> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let add_peak = |peaks: &mut Vec<(String, f64)>, peak: (String, f64)| {
        if !peaks.contains(&peak) {
            peaks.push(peak);
        }
    };
    for (device, dtype) in live.groups() {
        let points = live.series(device, dtype);
        match device {
            Device::Cpu => {
                let threads = live
                    .points
                    .iter()
                    .find(|p| p.device == device && p.dtype == dtype)
                    .and_then(|p| p.threads)
                    .unwrap_or(live.usable_cpus);
                chart = chart.series(format!("virtlab CPU {dtype}, {threads} threads"), points);
                match cpu_peak.and_then(|p| Some((p, p.gflops(cpu_precision(dtype), threads)?))) {
                    Some((peak, g)) => add_peak(
                        &mut peaks,
                        (
                            format!(
                                "FMA peak {dtype}, {threads} threads (measured {})",
                                peak.measured_utc()
                            ),
                            g,
                        ),
                    ),
                    None => missing.push(format!(
                        "no FMA peak for {dtype} on {threads} threads (run chapter 0 on this machine)"
                    )),
                }
            }
            Device::Gpu => {
                chart = chart.series(format!("{} {dtype}", live.gpu_name()), points);
            }
        }
    }
    match numpy {
        Outcome::Measured(peer) => {
            for dtype in peer.points.iter().map(|p| p.dtype).collect::<BTreeSet<_>>() {
                let points = peer
                    .points
                    .iter()
                    .filter(|p| p.dtype == dtype)
                    .map(|p| (p.n as f64, p.gflops()));
                chart = chart.series(format!("{} {dtype}", peer.label()), points);
            }
        }
        Outcome::Skipped(why) => missing.push(format!("numpy: {why}")),
    }
    let recorded_gpu = recorded.filter(|r| r.gpu_points().next().is_some());
    let gpu_runs: Vec<&Run> = std::iter::once(live)
        .filter(|r| r.gpu_points().next().is_some())
        .chain(recorded_gpu)
        .collect();
    if let Some(r) = recorded_gpu {
        // The day only; a hand-edited date shorter than that is shown whole.
        let day = r.date_utc.get(..10).unwrap_or(&r.date_utc);
        for (device, dtype) in r.groups().into_iter().filter(|g| g.0 == Device::Gpu) {
            chart = chart.dashed_series(
                format!("{} {dtype} (recorded {day})", r.gpu_name()),
                r.series(device, dtype),
            );
        }
    }
    if gpu_runs.is_empty() {
        let here = live
            .gpu_skipped
            .as_deref()
            .unwrap_or("the GPU was not asked for");
        missing.push(format!("no GPU line: {here}; and no recorded GPU run"));
    }
    for run in &gpu_runs {
        let name = run.gpu_name();
        for dtype in run.gpu_points().map(|p| p.dtype).collect::<BTreeSet<_>>() {
            match published_peak_tflops(&name, dtype) {
                Some(t) => add_peak(
                    &mut peaks,
                    (format!("{name} {dtype} published peak"), t * 1e3),
                ),
                None => missing.push(format!("no published {dtype} peak known for {name}")),
            }
        }
    }
    if !gpu_runs.is_empty() {
        chart = chart.log_y();
    }
    for (name, gflops) in peaks {
        chart = chart.reference(name, gflops);
    }
    let mut notes = Vec::new();
    if let Some(peak) = cpu_peak {
        let warnings = peak_warnings(live, numpy, peak);
        if !warnings.is_empty() {
            notes.push(format!("Warning: {}.", warnings.join("; ")));
        }
    }
    if !missing.is_empty() {
        notes.push(format!("Not drawn: {}.", missing.join("; ")));
    }
    if !notes.is_empty() {
        chart = chart.note(notes.join(" "));
    }
    chart.render().map_err(Into::into)
}

/// Why the FMA peak line may not be a true ceiling for this run, each with its likely cause:
/// doubts from the peak's own measurement, a peak measured busier than this run, and any
/// product (ours or numpy's) above it — which no program can do against a true peak.
pub fn peak_warnings(live: &Run, numpy: &Outcome<Numpy>, peak: &Peak) -> Vec<String> {
    let mut warnings: Vec<String> = peak.doubt().into_iter().collect();
    let peak_others =
        Load::busiest(peak.points.iter().filter_map(|p| p.load.as_ref())).map(|l| l.others_cpus);
    if let (Some(peak_others), Some(run)) = (peak_others, &live.cpu_load)
        && peak_others >= run.others_cpus + virtlab_core::load::BUSY_CPUS
    {
        warnings.push(format!(
            "the peak was measured with other programs using {peak_others:.1} CPUs, this run \
             with {:.1}",
            run.others_cpus
        ));
    }
    let numpy_points: Vec<(String, Dtype, usize, usize, f64)> = match numpy {
        Outcome::Measured(peer) => peer
            .points
            .iter()
            .map(|p| (peer.label(), p.dtype, p.n, p.threads, p.gflops()))
            .collect(),
        Outcome::Skipped(_) => Vec::new(),
    };
    let ours = live
        .points
        .iter()
        .filter(|p| p.device == Device::Cpu)
        .map(|p| {
            let threads = p.threads.unwrap_or(live.usable_cpus);
            ("our kernel".to_string(), p.dtype, p.n, threads, p.gflops())
        });
    // The highest product above its ceiling, one per producer and type.
    let mut above: Vec<(String, Dtype, usize, f64, f64)> = Vec::new();
    for (who, dtype, n, threads, gflops) in ours.chain(numpy_points) {
        let Some(ceiling) = peak
            .gflops(cpu_precision(dtype), threads)
            .filter(|&ceiling| gflops > ceiling)
        else {
            continue;
        };
        match above.iter_mut().find(|a| a.0 == who && a.1 == dtype) {
            Some(best) if best.3 >= gflops => {}
            Some(best) => *best = (who, dtype, n, gflops, ceiling),
            None => above.push((who, dtype, n, gflops, ceiling)),
        }
    }
    for (who, dtype, n, gflops, ceiling) in above {
        warnings.push(format!(
            "{who} reached {gflops:.1} GFLOP/s ({dtype}, n = {n}), above the FMA peak line \
             ({ceiling:.1}), which no program can exceed: the peak reads low — re-run chapter \
             0's peak cell (or this chapter) with nothing else running"
        ));
    }
    warnings
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
    chart.render().map_err(Into::into)
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
    chart.render().map_err(Into::into)
}

/// Seconds as a table shows them: three significant digits or more.
fn seconds(ms: f64) -> String {
    let s = ms / 1e3;
    if s >= 1.0 {
        format!("{s:.2}")
    } else {
        format!("{s:.3}")
    }
}

/// The essay's 10000×10000 f64 product (numpy 7.8 s, CuPy 0.92 s unsynchronized) beside ours:
/// our CPU kernel and numpy measured here at the essay's size when `ours` has it, else at its
/// largest size (GFLOP/s make the sizes comparable); the GPU from `ours` when it ran on one,
/// else from `recorded` when given, with where and when.
pub fn essay_comparison(ours: &Run, numpy: &Outcome<Numpy>, recorded: Option<&Run>) -> Table {
    let mut table = Table::new(
        format!(
            "Two n×n matrices multiplied: the essay's figures ({ESSAY_N}×{ESSAY_N} f64) and ours"
        ),
        [
            "who",
            "n",
            "type",
            "seconds",
            "GFLOP/s",
            "what the clock covered",
        ],
    );
    let essay_gflops = |s: f64| format!("{:.0}", flops(ESSAY_N) / s / 1e9);
    table.row([
        "essay: numpy (CPU)".to_string(),
        ESSAY_N.to_string(),
        "f64".into(),
        format!("{ESSAY_NUMPY_S}"),
        essay_gflops(ESSAY_NUMPY_S),
        "the product, on the essay's CPU".into(),
    ]);
    table.row([
        "essay: CuPy (GPU)".to_string(),
        ESSAY_N.to_string(),
        "f64".into(),
        format!("{ESSAY_CUPY_S}"),
        format!("{} (apparent)", essay_gflops(ESSAY_CUPY_S)),
        "no synchronize: mostly the launch and copy in".into(),
    ]);
    match ours.nearest_to_essay(Device::Cpu) {
        Some(p) => {
            table.row([
                format!(
                    "virtlab CPU, {} threads (here, {})",
                    p.threads.unwrap_or(1),
                    ours.cpu_model
                ),
                p.n.to_string(),
                p.dtype.to_string(),
                seconds(p.median_ms()),
                format!("{:.1}", p.gflops()),
                "the product".into(),
            ]);
            let numpy_row = match numpy {
                Outcome::Measured(peer) => peer.point(p.dtype, p.n).map(|t| {
                    [
                        format!("{}, {} threads (here)", peer.label(), t.threads),
                        seconds(t.median_ms()),
                        format!("{:.1}", t.gflops()),
                        "the product".into(),
                    ]
                }),
                Outcome::Skipped(why) => Some([
                    "numpy (here)".into(),
                    "—".into(),
                    "—".into(),
                    format!("skipped: {why}"),
                ]),
            };
            if let Some([who, s, gflops, covered]) = numpy_row {
                table.row([
                    who,
                    p.n.to_string(),
                    p.dtype.to_string(),
                    s,
                    gflops,
                    covered,
                ]);
            }
        }
        None => {
            table.row(["virtlab CPU (here)", "—", "—", "—", "—", "not run"]);
        }
    }
    let gpu = ours
        .nearest_to_essay(Device::Gpu)
        .map(|p| (p, "here".to_string()))
        .or_else(|| {
            let run = recorded?;
            let p = run.nearest_to_essay(Device::Gpu)?;
            let day = run.date_utc.get(..10).unwrap_or(&run.date_utc);
            Some((p, format!("recorded {day} on {}", run.gpu_name())))
        });
    if let Some((p, source)) = gpu
        && let Some(times) = &p.gpu
    {
        let effective = |ms: f64| format!("{:.0}", flops(p.n) / (ms * 1e-3) / 1e9);
        let rows = [
            (
                "launch only",
                times.launch_only_median_ms(),
                "the essay's mistake, reproduced",
            ),
            (
                "synchronized",
                times.synchronized_median_ms(),
                "the product, seen from the host",
            ),
            (
                "copy in + product + copy out",
                times.copy_in_ms + p.median_ms() + times.copy_out_ms,
                "what a numpy user waits for",
            ),
        ];
        for (what, ms, covered) in rows {
            table.row([
                format!("virtlab GPU {what} ({source})"),
                p.n.to_string(),
                p.dtype.to_string(),
                seconds(ms),
                effective(ms),
                covered.to_string(),
            ]);
        }
    }
    table
}

/// How long and how much memory the essay's 10000×10000 f64 case would take here: an estimate
/// from this run's f64 throughput at its largest size (ours, and numpy's when it ran), said to
/// be one. The opt-in multiplies twice on each side, a warm-up and a timed run.
pub fn essay_estimate(live: &Run, numpy: &Outcome<Numpy>) -> String {
    let Some(ours) = live
        .points
        .iter()
        .filter(|p| p.device == Device::Cpu && p.dtype == Dtype::F64)
        .max_by_key(|p| p.n)
    else {
        return "This run has no f64 point on the CPU to estimate the essay's case from.".into();
    };
    let seconds = |gflops: f64| flops(ESSAY_N) / (gflops * 1e9);
    let mut total = 2.0 * seconds(ours.gflops());
    let mut text = format!(
        "An estimate from this sweep's f64 throughput at n = {}, not a measurement: one \
         {ESSAY_N}×{ESSAY_N} product would take ~{:.0} s with our kernel ({:.1} GFLOP/s)",
        ours.n,
        seconds(ours.gflops()),
        ours.gflops()
    );
    if let Outcome::Measured(peer) = numpy
        && let Some(theirs) = peer.point(Dtype::F64, ours.n)
    {
        text += &format!(
            " and ~{:.0} s with numpy ({:.1} GFLOP/s)",
            seconds(theirs.gflops()),
            theirs.gflops()
        );
        total += 2.0 * seconds(theirs.gflops());
    }
    let (matrices, _) = footprint(Dtype::F64, false).bytes(ESSAY_N);
    text += &format!(
        "; the opt-in multiplies twice on each side (a warm-up and a timed run), ~{total:.0} s in \
         all (a size that outgrows a cache, or a busy machine, can make it longer). Memory: our \
         side holds {}; numpy's, run after it in its own process, {} for its A, B and C.",
        footprint(Dtype::F64, true).describe(ESSAY_N, Dtype::F64),
        units::bytes(matrices)
    );
    text
}

/// What this run showed, computed from its numbers: our kernel at its largest size against
/// chapter 0's peak and numpy, how throughput went across the sizes, and the GPU when one ran
/// or was recorded. Nothing here is asserted beforehand: a run under load reads differently.
pub fn what_we_saw(
    live: &Run,
    numpy: &Outcome<Numpy>,
    recorded: Option<&Run>,
    cpu_peak: Option<&Peak>,
) -> Table {
    let mut table = Table::new(
        format!("What this run measured ({})", live.cpu_model),
        ["question", "answer, from the numbers above"],
    );
    for dtype in live
        .points
        .iter()
        .filter(|p| p.device == Device::Cpu)
        .map(|p| p.dtype)
        .collect::<BTreeSet<_>>()
    {
        let points: Vec<&Point> = live
            .points
            .iter()
            .filter(|p| p.device == Device::Cpu && p.dtype == dtype)
            .collect();
        let largest = points.iter().max_by_key(|p| p.n).expect("one per type");
        let threads = largest.threads.unwrap_or(1);
        let mut answer = format!(
            "{:.1} GFLOP/s at n = {} on {threads} threads",
            largest.gflops(),
            largest.n
        );
        if let Some((ceiling, measured)) = cpu_peak
            .and_then(|p| Some((p.gflops(cpu_precision(dtype), threads)?, p.measured_utc())))
        {
            let share = 100.0 * largest.gflops() / ceiling;
            answer += &format!(
                ", {share:.0}% of the FMA peak ({ceiling:.0} GFLOP/s, measured {measured})"
            );
            if share > 100.0 {
                answer += ": above a ceiling no program can pass, so that peak reads low (see \
                           the chart's warning)";
            } else if cpu_peak.and_then(Peak::doubt).is_some() {
                answer += "; that peak was itself measured on a busy machine or did not scale, \
                           so the share is not against a true ceiling (see the chart's warning)";
            }
        }
        table.row([format!("How fast is our {dtype} kernel here?"), answer]);
        let beside = match numpy {
            Outcome::Measured(peer) => match peer.point(dtype, largest.n) {
                Some(t) => format!(
                    "{} did {:.1} GFLOP/s at n = {} on {} threads: ours is {:.2}× numpy",
                    peer.label(),
                    t.gflops(),
                    t.n,
                    t.threads,
                    largest.gflops() / t.gflops()
                ),
                None => format!("{} was not measured at n = {}", peer.label(), largest.n),
            },
            Outcome::Skipped(why) => format!("not measured: {why}"),
        };
        table.row([
            format!("And numpy, what a Python user gets here ({dtype})?"),
            beside,
        ]);
        if points.len() > 1 {
            table.row([
                format!("How did size change it ({dtype})?"),
                size_trend(&points),
            ]);
        }
    }
    let gpu = live
        .nearest_to_essay(Device::Gpu)
        .map(|p| (p, live, "here"))
        .or_else(|| recorded.and_then(|r| Some((r.nearest_to_essay(Device::Gpu)?, r, "recorded"))));
    let answer = match gpu {
        Some((p, run, source)) => {
            let mut answer = format!(
                "{} ({source}, {}): {:.1} TFLOP/s at n = {} {}",
                run.gpu_name(),
                run.date_utc,
                p.gflops() / 1e3,
                p.n,
                p.dtype
            );
            if let Some(times) = &p.gpu {
                answer += &format!(
                    "; the call returned after {:.3} ms, the product was done after {:.3} ms, \
                     and the copies took {:.2} ms more",
                    times.launch_only_median_ms(),
                    times.synchronized_median_ms(),
                    times.copy_in_ms + times.copy_out_ms
                );
            }
            answer
        }
        None => format!(
            "not measured: {}; and no recorded GPU run",
            live.gpu_skipped
                .as_deref()
                .unwrap_or("the GPU was not asked for")
        ),
    };
    table.row(["And the GPU?".to_string(), answer]);
    table.row(virtlab_core::load::quiet_row(
        live.cpu_load.as_ref(),
        "our GFLOP/s read low",
    ));
    table
}

/// How throughput went across the sizes, worded for what happened: the lowest and highest
/// points, and whether it grew with size, fell at the largest, or went up and down.
fn size_trend(points: &[&Point]) -> String {
    let by = |better: fn(f64, f64) -> bool| {
        points
            .iter()
            .copied()
            .reduce(|a, b| if better(b.gflops(), a.gflops()) { b } else { a })
            .expect("two or more points")
    };
    let (low, high) = (by(|b, a| b < a), by(|b, a| b > a));
    let smallest = points.iter().map(|p| p.n).min().unwrap_or(0);
    let largest = points.iter().map(|p| p.n).max().unwrap_or(0);
    let reading = if low.n == smallest && high.n == largest {
        "it grew with size: a small product spends a larger share on packing and on starting \
         threads"
    } else if low.n == largest {
        "it fell at the largest size: matrices that outgrow a cache, or a busy machine, can do \
         that (a run under load moves single points)"
    } else {
        "it did not grow steadily with size: a run under load moves single points, and each size \
         fits the caches differently"
    };
    format!(
        "lowest {:.1} GFLOP/s at n = {}, highest {:.1} at n = {}: {reading}",
        low.gflops(),
        low.n,
        high.gflops(),
        high.n
    )
}

#[cfg(test)]
mod tests {
    use super::super::numpy::NumpyPoint;
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
            cpu_load: None,
        }
    }

    /// A run on a machine without a GPU, as a new user's first run is.
    fn cpu_only(points: Vec<Point>) -> Run {
        Run {
            gpu: None,
            gpu_skipped: Some("no GPU: no driver library".into()),
            ..run_with(points)
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

    fn numpy(points: &[(usize, f64)]) -> Outcome<Numpy> {
        Outcome::Measured(Numpy {
            peer: "numpy 2.4.6".into(),
            python: "python".into(),
            coretype: None,
            points: points
                .iter()
                .map(|&(n, ms)| NumpyPoint {
                    dtype: Dtype::F64,
                    n,
                    threads: 2,
                    runs_ms: vec![ms],
                })
                .collect(),
        })
    }

    fn no_numpy() -> Outcome<Numpy> {
        Outcome::Skipped("no module named numpy".into())
    }

    fn peak() -> Peak {
        Peak {
            cpu_model: "test CPU".into(),
            usable_cpus: 2,
            instruction_set: "AVX-512 FMA".into(),
            ms_per_point: 100,
            measured_unix_s: 0,
            points: vec![crate::peak::PeakPoint {
                precision: Precision::F64,
                threads: 2,
                gflops: 200.0,
                load: None,
            }],
        }
    }

    /// The texts of an SVG's <text> elements.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("</text>")
            .filter_map(|part| part.rsplit('>').next())
            .map(|t| t.trim().to_string())
            .collect()
    }

    #[test]
    fn throughput_draws_ours_numpy_the_peak_and_a_recorded_gpu() {
        let live = cpu_only(vec![
            point(Device::Cpu, 1000, 20.0),
            point(Device::Cpu, 2000, 150.0),
        ]);
        let recorded = run_with(vec![
            point(Device::Gpu, 1000, 0.1),
            point(Device::Gpu, 2000, 0.5),
        ]);
        let figure = throughput(
            &live,
            &numpy(&[(1000, 25.0), (2000, 160.0)]),
            Some(&recorded),
            Some(&peak()),
        )
        .unwrap();
        let svg = figure.svg();
        for text in [
            "virtlab CPU f64, 2 threads",
            "numpy 2.4.6 f64",
            "H100 80GB HBM3 f64 (recorded 2026-11-23)",
            "FMA peak f64, 2 threads (measured 1970-01-01 00:00 UTC)",
            "published peak",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(!svg.contains("Not drawn"), "everything is drawn");
        assert!(!svg.contains("Warning"), "nothing is above the peak");
    }

    #[test]
    fn a_product_above_the_peak_is_flagged_as_a_low_peak() {
        // 2·2048³ flops in 50 ms is 343.6 GFLOP/s, above the fixture's 200 GFLOP/s peak.
        let live = cpu_only(vec![
            point(Device::Cpu, 1024, 20.0),
            point(Device::Cpu, 2048, 50.0),
        ]);
        let warnings = peak_warnings(&live, &no_numpy(), &peak());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(
                "our kernel reached 343.6 GFLOP/s (f64, n = 2048), above the FMA peak line (200.0)"
            ),
            "{}",
            warnings[0]
        );
        let svg = throughput(&live, &no_numpy(), None, Some(&peak())).unwrap();
        assert!(svg.svg().contains("Warning"));
        let said = what_we_saw(&live, &no_numpy(), None, Some(&peak())).to_string();
        assert!(
            said.contains("172% of the FMA peak") && said.contains("reads low"),
            "{said}"
        );
        // A peak measured busier than the run is named too.
        let mut busy_peak = peak();
        busy_peak.points[0].load = Some(Load {
            seconds: 0.6,
            machine_cpus: 2,
            others_cpus: 0.9,
            steal_cpus: 0.0,
        });
        let quiet_run = Run {
            cpu_load: Some(Load {
                seconds: 2.0,
                machine_cpus: 2,
                others_cpus: 0.02,
                steal_cpus: 0.0,
            }),
            ..cpu_only(vec![point(Device::Cpu, 1024, 20.0)])
        };
        let mut not_scaling = peak();
        not_scaling.points.push(crate::peak::PeakPoint {
            threads: 1,
            ..not_scaling.points[0].clone()
        });
        let said = what_we_saw(&quiet_run, &no_numpy(), None, Some(&not_scaling)).to_string();
        assert!(said.contains("not against a true ceiling"), "{said}");
        let warnings = peak_warnings(&quiet_run, &no_numpy(), &busy_peak);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("using 0.9 CPUs, this run with 0.0")),
            "{warnings:?}"
        );
    }

    #[test]
    fn without_gpu_or_numpy_the_chart_says_what_is_missing_and_reads_linearly() {
        let live = cpu_only(vec![
            point(Device::Cpu, 256, 1.5),
            point(Device::Cpu, 2048, 350.0),
        ]);
        let svg = throughput(&live, &no_numpy(), None, Some(&peak()))
            .unwrap()
            .svg()
            .to_string();
        assert!(!svg.contains("published peak") && !svg.contains("H100"));
        for text in [
            "numpy: no module named numpy",
            "no GPU line: no GPU: no driver library",
        ] {
            assert!(svg.contains(text), "the note lacks {text}");
        }
        // A linear axis from 0 to past the 200 GFLOP/s peak, labelled every step.
        let labels: Vec<f64> = texts(&svg).iter().filter_map(|t| t.parse().ok()).collect();
        let y_labels = labels.iter().filter(|&&v| v <= 220.0 && v != 256.0).count();
        assert!(y_labels >= 4, "{labels:?}");
        // A peak for another thread count is not drawn as if it were ours.
        let mut one_thread = live.clone();
        one_thread
            .points
            .iter_mut()
            .for_each(|p| p.threads = Some(1));
        let svg = throughput(&one_thread, &no_numpy(), None, Some(&peak()))
            .unwrap()
            .svg()
            .to_string();
        assert!(svg.contains("no FMA peak for f64 on 1 threads"));
    }

    #[test]
    fn the_sweep_table_puts_numpy_beside_ours_or_says_why_not() {
        let live = cpu_only(vec![
            point(Device::Cpu, 1000, 20.0),
            point(Device::Cpu, 2000, 150.0),
        ]);
        let table = live.table_beside(&numpy(&[(1000, 25.0), (2000, 150.0)]));
        let text = table.to_string();
        assert!(
            text.contains("numpy 2.4.6 GFLOP/s (same threads)"),
            "{text}"
        );
        let last = table.rows().last().unwrap();
        assert_eq!(last[5], "106.7", "numpy's GFLOP/s at n = 2000: {last:?}");
        assert_eq!(last[6], "1.00×");
        assert_eq!(table.rows()[0][6], "1.25×");
        let skipped = live.table_beside(&no_numpy());
        let last = skipped.rows().last().unwrap();
        assert_eq!(last[..], ["numpy", "skipped: no module named numpy"]);
        assert_eq!(
            live.table().rows().len(),
            2,
            "the plain table has no numpy row"
        );
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
        std::fs::remove_dir_all(&dir).unwrap();
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
        let svg = throughput(&live, &no_numpy(), Some(&recorded), None)
            .unwrap()
            .svg()
            .to_string();
        assert!(svg.contains("(recorded today)"));
    }

    #[test]
    fn gpu_charts_need_gpu_points() {
        let cpu = cpu_only(vec![point(Device::Cpu, 10_000, 16_000.0)]);
        assert!(gpu_time_split(&cpu).unwrap_err().fix().contains("recorded"));
        let gpu = run_with(vec![point(Device::Gpu, 10_000, 40.0)]);
        assert!(gpu_time_split(&gpu).unwrap().svg().contains("compute"));
        assert!(
            launch_vs_synchronized(&gpu)
                .unwrap()
                .svg()
                .contains("launch only")
        );
    }

    #[test]
    fn the_essay_table_shows_our_largest_size_and_numpy_and_a_gpu_only_when_recorded() {
        let live = cpu_only(vec![
            point(Device::Cpu, 1024, 25.0),
            point(Device::Cpu, 2048, 400.0),
        ]);
        let table = essay_comparison(&live, &numpy(&[(1024, 20.0), (2048, 380.0)]), None);
        let rows = table.rows();
        assert_eq!(
            rows.len(),
            4,
            "essay numpy, essay CuPy, ours, numpy: {rows:?}"
        );
        assert_eq!(rows[0][4], "256", "the essay's numpy in GFLOP/s");
        assert_eq!(rows[2][1..5], ["2048", "f64", "0.400", "42.9"]);
        assert!(rows[2][0].contains("test CPU"), "{:?}", rows[2]);
        assert_eq!(rows[3][1..5], ["2048", "f64", "0.380", "45.2"]);
        let skipped = essay_comparison(&live, &no_numpy(), None);
        assert!(skipped.rows()[3][5].contains("no module named numpy"));

        let essay = cpu_only(vec![point(Device::Cpu, 10_000, 16_000.0)]);
        let recorded = run_with(vec![
            point(Device::Gpu, 4096, 2.0),
            point(Device::Gpu, 10_000, 40.0),
        ]);
        let table = essay_comparison(&essay, &no_numpy(), Some(&recorded));
        let text = table.to_string();
        assert!(text.contains("16.00") && text.contains("0.040"), "{text}");
        assert!(
            text.contains("recorded 2026-11-23 on NVIDIA H100"),
            "{text}"
        );
        assert_eq!(table.rows().len(), 4 + 3, "{text}");
    }

    #[test]
    fn the_essays_case_is_estimated_from_the_sweep_and_said_to_be() {
        // 2·2048³ flop in 0.4 s is 42.9 GFLOP/s: 2·10000³ flop takes 46.6 s at that rate.
        let live = cpu_only(vec![
            point(Device::Cpu, 1024, 25.0),
            point(Device::Cpu, 2048, 400.0),
        ]);
        let text = essay_estimate(&live, &numpy(&[(2048, 200.0)]));
        for fact in [
            "An estimate from this sweep's f64 throughput at n = 2048, not a measurement",
            "~47 s with our kernel (42.9 GFLOP/s) and ~23 s with numpy (85.9 GFLOP/s)",
            "~140 s in all",
            "2.2 GiB for A, B and C (f64) and 1.5 GiB for the f64 copies",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        let alone = essay_estimate(&live, &no_numpy());
        assert!(
            alone.contains("~93 s in all") && !alone.contains("numpy ("),
            "{alone}"
        );
        let f32_only = cpu_only(vec![Point {
            dtype: Dtype::F32,
            ..point(Device::Cpu, 1024, 10.0)
        }]);
        assert!(essay_estimate(&f32_only, &no_numpy()).contains("no f64 point"));
    }

    #[test]
    fn the_size_reading_follows_the_numbers() {
        let rising = [
            point(Device::Cpu, 256, 1.0),
            point(Device::Cpu, 2048, 200.0),
        ];
        let refs: Vec<&Point> = rising.iter().collect();
        assert!(size_trend(&refs).contains("it grew with size"));
        let mixed = [
            point(Device::Cpu, 256, 1.0),
            point(Device::Cpu, 512, 2.0),
            point(Device::Cpu, 1024, 20.0),
        ];
        let refs: Vec<&Point> = mixed.iter().collect();
        let text = size_trend(&refs);
        assert!(text.contains("did not grow steadily"), "{text}");
    }

    #[test]
    fn what_we_saw_is_computed_from_the_run() {
        let live = cpu_only(vec![
            point(Device::Cpu, 512, 5.0),
            point(Device::Cpu, 1024, 20.0),
            point(Device::Cpu, 2048, 400.0),
        ]);
        let table = what_we_saw(&live, &numpy(&[(2048, 200.0)]), None, Some(&peak()));
        let text = table.to_string();
        for fact in [
            "42.9 GFLOP/s at n = 2048 on 2 threads, 21% of the FMA peak (200 GFLOP/s, measured 1970",
            "ours is 0.50× numpy",
            // Throughput fell with size here: the table says so rather than claiming a climb.
            "lowest 42.9 GFLOP/s at n = 2048, highest 107.4 at n = 1024: it fell at the largest",
            "no GPU: no driver library; and no recorded GPU run",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        let recorded = run_with(vec![point(Device::Gpu, 10_000, 40.0)]);
        let text = what_we_saw(&live, &no_numpy(), Some(&recorded), None).to_string();
        assert!(
            text.contains("not measured: no module named numpy"),
            "{text}"
        );
        assert!(
            text.contains("NVIDIA H100 80GB HBM3 (recorded, 2026-11-23 10:00 UTC): 50.0 TFLOP/s"),
            "{text}"
        );
    }
}
