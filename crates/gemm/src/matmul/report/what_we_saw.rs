//! "What this run measured", the chapter's closing table: our kernel against chapter 0's peak
//! and numpy, how throughput went across the sizes, and the GPU, all computed from the run's
//! numbers, none written beforehand.

use super::cpu_precision;
use crate::matmul::numpy::Numpy;
use crate::matmul::{Device, Point, Run};
use crate::peak::Peak;
use std::collections::BTreeSet;
use virtlab_core::outcome::Outcome;
use virtlab_display::Table;

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
    use super::*;
    use crate::matmul::report::fixtures::{cpu_only, no_numpy, numpy, peak, point, run_with};

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
