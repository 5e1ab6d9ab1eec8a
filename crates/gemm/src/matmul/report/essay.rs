//! The essay's 10000×10000 f64 case: its figures (numpy 7.8 s, CuPy 0.92 s unsynchronized) beside
//! ours in one table, and an estimate, from this run's throughput, of what running that case here
//! would take in time and memory.

use crate::matmul::numpy::Numpy;
use crate::matmul::{Device, Dtype, Run, flops, footprint};
use virtlab_core::outcome::Outcome;
use virtlab_core::units;
use virtlab_display::Table;

/// The essay's time for one 10000×10000 f64 product with numpy on its CPU, in seconds.
pub const ESSAY_NUMPY_S: f64 = 7.8;
/// The essay's time for the same product with CuPy on its GPU, in seconds. It never waited for
/// the GPU to finish, so this is mostly the copy in and the launch
/// (see [`GpuTimes::launch_only_ms`](crate::matmul::GpuTimes::launch_only_ms)).
pub const ESSAY_CUPY_S: f64 = 0.92;
/// The side of the essay's matrices: 10000×10000.
pub const ESSAY_N: usize = 10_000;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::Point;
    use crate::matmul::report::fixtures::{cpu_only, no_numpy, numpy, point, run_with};

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
}
