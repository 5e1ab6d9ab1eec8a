//! The throughput chart: GFLOP/s against n for our kernel, numpy and the GPU, with chapter 0's
//! FMA peak and a drawn GPU's published peak as lines, and the warnings that say when the FMA
//! line is not a true ceiling for the run (a product above it, a peak measured busier).

use super::cpu_precision;
use crate::matmul::gpu::published_peak_tflops;
use crate::matmul::numpy::Numpy;
use crate::matmul::{Device, Dtype, Run};
use crate::peak::Peak;
use std::collections::BTreeSet;
use virtlab_core::Result;
use virtlab_core::load::Load;
use virtlab_core::outcome::Outcome;
use virtlab_display::Figure;
use virtlab_display::plot::LineChart;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::report::fixtures::{
        cpu_only, no_numpy, numpy, peak, point, run_with, texts,
    };
    use crate::matmul::report::what_we_saw;

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
}
