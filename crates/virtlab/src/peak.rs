//! The CPU's floating-point peak, measured with a fused multiply-add loop (chapter 0).
//!
//! Each thread updates independent vector accumulators with `acc = acc * a + b`, enough of them
//! to hide the FMA latency, so the loop runs at the FMA units' throughput. We measure f32 and
//! f64 on 1 thread up to every usable CPU and keep the result: later chapters draw their
//! throughput against it. The widest instruction set the CPU has is chosen at run time.

use crate::display::{Figure, Table};
use crate::error::check_range;
use crate::isa::Isa;
use crate::plot::LineChart;
use crate::{Result, machine, store};
use serde::{Deserialize, Serialize};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Independent accumulators per thread: 12 vectors plus 2 constants fit in 16 AVX2 registers,
/// and 12 in flight cover a 4-cycle FMA latency on two pipes with room to spare.
const ACCUMULATORS: usize = 12;
/// Lanes per accumulator in the portable loop (left to the compiler to vectorise).
const PORTABLE_LANES: usize = 8;
/// Each point is measured this many times; the best run is the peak.
const REPEATS: usize = 3;
/// Where [`Peak::save`] keeps the result.
const STORE_NAME: &str = "cpu-peak";

/// The floating-point width a peak was measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats: a SIMD register holds twice as many, so the peak is about twice f64's.
    F32,
    /// 64-bit floats (`double`).
    F64,
}

impl Precision {
    /// The lowercase name tables and charts show: `f32` or `f64`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }
}

/// What the peak loop needs to know of an instruction set.
impl Isa {
    /// Floating-point operations one loop iteration performs (an FMA counts as two).
    fn flops_per_iteration(self, precision: Precision) -> u64 {
        let bytes_per_element = match precision {
            Precision::F32 => 4,
            Precision::F64 => 8,
        };
        let lanes = match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 64 / bytes_per_element,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2Fma => 32 / bytes_per_element,
            Isa::Portable => PORTABLE_LANES as u64,
        };
        2 * lanes * ACCUMULATORS as u64
    }

    /// Runs `iterations` of the loop; the returned checksum keeps the work from being optimised away.
    fn run(self, precision: Precision, iterations: u64) -> f64 {
        match (self, precision) {
            // SAFETY: `detect` chose these variants only after seeing the CPU features they need.
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, Precision::F64) => unsafe { x86::f64_avx512(iterations) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx512, Precision::F32) => unsafe { x86::f32_avx512(iterations) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2Fma, Precision::F64) => unsafe { x86::f64_avx2(iterations) },
            #[cfg(target_arch = "x86_64")]
            (Isa::Avx2Fma, Precision::F32) => unsafe { x86::f32_avx2(iterations) },
            (Isa::Portable, Precision::F64) => portable_f64(iterations),
            (Isa::Portable, Precision::F32) => portable_f32(iterations),
        }
    }
}

// The multiplier and addend keep every accumulator bounded (it converges to b / (1 - a) = 0.1),
// so no value ever becomes denormal or infinite and slows the loop.
const A: f64 = 0.999_999;
const B: f64 = 1e-7;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{A, ACCUMULATORS, B};
    use std::arch::x86_64::*;

    macro_rules! fma_kernel {
        ($name:ident, $features:literal, $vector:ty, $element:ty, $splat:ident, $fma:ident) => {
            #[target_feature(enable = $features)]
            pub unsafe fn $name(iterations: u64) -> f64 {
                const LANES: usize =
                    std::mem::size_of::<$vector>() / std::mem::size_of::<$element>();
                let a = $splat(A as $element);
                let b = $splat(B as $element);
                let mut acc = [$splat(1.0); ACCUMULATORS];
                for _ in 0..iterations {
                    for r in acc.iter_mut() {
                        *r = $fma(*r, a, b);
                    }
                }
                acc.iter()
                    .map(|v| {
                        // SAFETY: a SIMD vector is exactly LANES elements of this type.
                        let lanes: [$element; LANES] = unsafe { std::mem::transmute(*v) };
                        lanes.iter().map(|x| f64::from(*x)).sum::<f64>()
                    })
                    .sum()
            }
        };
    }

    fma_kernel!(
        f64_avx512,
        "avx512f",
        __m512d,
        f64,
        _mm512_set1_pd,
        _mm512_fmadd_pd
    );
    fma_kernel!(
        f32_avx512,
        "avx512f",
        __m512,
        f32,
        _mm512_set1_ps,
        _mm512_fmadd_ps
    );
    fma_kernel!(
        f64_avx2,
        "avx2,fma",
        __m256d,
        f64,
        _mm256_set1_pd,
        _mm256_fmadd_pd
    );
    fma_kernel!(
        f32_avx2,
        "avx2,fma",
        __m256,
        f32,
        _mm256_set1_ps,
        _mm256_fmadd_ps
    );
}

macro_rules! portable_kernel {
    ($name:ident, $element:ty) => {
        fn $name(iterations: u64) -> f64 {
            let (a, b) = (A as $element, B as $element);
            let mut acc = [[1.0 as $element; PORTABLE_LANES]; ACCUMULATORS];
            for _ in 0..iterations {
                for row in acc.iter_mut() {
                    for r in row.iter_mut() {
                        *r = *r * a + b;
                    }
                }
            }
            acc.iter().flatten().map(|x| f64::from(*x)).sum()
        }
    };
}

portable_kernel!(portable_f64, f64);
portable_kernel!(portable_f32, f32);

/// One measured point: `threads` threads running the loop together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeakPoint {
    /// The float width the loop used.
    pub precision: Precision,
    /// How many threads ran the loop at once, one per CPU at most.
    pub threads: usize,
    /// All those threads together, in GFLOP/s (10⁹ floating-point operations per second; an FMA
    /// counts as two); the best of three runs.
    pub gflops: f64,
}

/// The measured floating-point peak of this machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    /// The CPU's model name as the OS gives it, e.g. `AMD EPYC 9654 96-Core Processor`.
    pub cpu_model: String,
    /// CPUs this process was allowed to use: the most threads measured.
    pub usable_cpus: usize,
    /// The instruction set the loop used, e.g. `AVX-512 FMA` or `AVX2 FMA`.
    pub instruction_set: String,
    /// About how long each run of each point lasted, in ms (what [`measure`] was given).
    pub ms_per_point: u64,
    /// When it was measured, in seconds since 1970-01-01 UTC (Unix time).
    pub measured_unix_s: u64,
    /// One point per precision and thread count: f64 first, then f32, threads rising.
    pub points: Vec<PeakPoint>,
}

/// Thread counts worth measuring: powers of two below `cpus`, then `cpus` itself.
pub fn thread_counts(cpus: usize) -> Vec<usize> {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
        .take_while(|n| *n < cpus)
        .collect();
    counts.push(cpus.max(1));
    counts
}

/// Measures the peak for f64 and f32 on 1 … all usable CPUs, spending about `ms_per_point`
/// milliseconds on each run (three runs per point; the best counts), with the instruction set
/// the matmul kernels use ([`Isa::chosen`]: the widest, or the one `VIRTLAB_ISA` names), so
/// chapter 4's kernel is held against the peak of its own vectors.
pub fn measure(ms_per_point: u64) -> Result<Peak> {
    check_range("the measuring time per point (ms)", ms_per_point, 10, 5000)?;
    let isa = Isa::chosen()?;
    let cpus = machine::usable_cpus();
    let target = Duration::from_millis(ms_per_point);
    let mut points = Vec::new();
    for precision in [Precision::F64, Precision::F32] {
        let iterations = calibrate(isa, precision, target);
        for threads in thread_counts(cpus) {
            let gflops = (0..REPEATS)
                .map(|_| run_threads(isa, precision, threads, iterations))
                .fold(0.0, f64::max);
            points.push(PeakPoint {
                precision,
                threads,
                gflops,
            });
        }
    }
    Ok(Peak {
        cpu_model: machine::cpu_model(),
        usable_cpus: cpus,
        instruction_set: isa.name().into(),
        ms_per_point,
        measured_unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        points,
    })
}

/// Iterations that take about `target` on one thread.
fn calibrate(isa: Isa, precision: Precision, target: Duration) -> u64 {
    let mut iterations: u64 = 1 << 10;
    loop {
        let start = Instant::now();
        std::hint::black_box(isa.run(precision, std::hint::black_box(iterations)));
        let elapsed = start.elapsed();
        if elapsed >= Duration::from_millis(5) || iterations >= 1 << 40 {
            let scale = target.as_secs_f64() / elapsed.as_secs_f64().max(1e-9);
            return ((iterations as f64 * scale) as u64).max(1);
        }
        iterations *= 4;
    }
}

/// GFLOP/s of `threads` threads each running `iterations`, started together at a barrier.
fn run_threads(isa: Isa, precision: Precision, threads: usize, iterations: u64) -> f64 {
    let barrier = Barrier::new(threads);
    let slowest = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    std::hint::black_box(isa.run(precision, std::hint::black_box(iterations)));
                    start.elapsed()
                })
            })
            .collect();
        // The loop cannot panic, so a failed join only means the thread was lost; count it as never finishing.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Duration::MAX))
            .max()
            .unwrap_or(Duration::MAX)
    });
    let flops = (threads as u64 * iterations * isa.flops_per_iteration(precision)) as f64;
    flops / slowest.as_secs_f64() / 1e9
}

impl Peak {
    /// GFLOP/s measured for this precision and thread count.
    pub fn gflops(&self, precision: Precision, threads: usize) -> Option<f64> {
        self.points
            .iter()
            .find(|p| p.precision == precision && p.threads == threads)
            .map(|p| p.gflops)
    }

    /// GFLOP/s with every usable CPU busy: the line later chapters draw against.
    pub fn all_cores(&self, precision: Precision) -> Option<f64> {
        self.gflops(precision, self.usable_cpus)
    }

    /// One row per point: GFLOP/s, per thread, and how close to perfect scaling from one thread.
    pub fn table(&self) -> Table {
        let mut t = Table::new(
            format!(
                "Measured FMA peak ({}, {} ms per run, best of {REPEATS})",
                self.instruction_set, self.ms_per_point
            ),
            [
                "precision",
                "threads",
                "GFLOP/s",
                "per thread",
                "scaling vs 1 thread",
            ],
        );
        for p in &self.points {
            let single = self.gflops(p.precision, 1).unwrap_or(f64::NAN);
            let efficiency = p.gflops / (single * p.threads as f64);
            t.row([
                p.precision.name().to_string(),
                p.threads.to_string(),
                format!("{:.1}", p.gflops),
                format!("{:.1}", p.gflops / p.threads as f64),
                format!("{:.0}%", 100.0 * efficiency),
            ]);
        }
        t
    }

    /// GFLOP/s against threads for f32 and f64, each beside its ideal (one thread's peak × n).
    pub fn plot(&self) -> Result<Figure> {
        let mut chart = LineChart::new(format!("Floating-point peak of {}", self.cpu_model))
            .x_label("threads running the FMA loop")
            .y_label("GFLOP/s");
        for precision in [Precision::F32, Precision::F64] {
            let measured = self
                .points
                .iter()
                .filter(|p| p.precision == precision)
                .map(|p| (p.threads as f64, p.gflops));
            chart = chart.series(format!("{} measured", precision.name()), measured);
            if let Some(single) = self.gflops(precision, 1) {
                let ideal = thread_counts(self.usable_cpus)
                    .into_iter()
                    .map(|t| (t as f64, single * t as f64));
                chart = chart
                    .dashed_series(format!("{} ideal (1 thread × n)", precision.name()), ideal);
            }
        }
        chart.render()
    }

    /// Keeps this measurement for later chapters (atomically), returning where it went.
    pub fn save(&self) -> Result<std::path::PathBuf> {
        store::save(STORE_NAME, self)
    }

    /// The saved measurement, if one exists and was taken on this machine (same CPU model and
    /// usable CPU count) with the instruction set chosen now; `Ok(None)` otherwise.
    pub fn saved() -> Result<Option<Peak>> {
        Ok(store::load::<Peak>(STORE_NAME)?.filter(Peak::is_from_this_machine))
    }

    /// Whether this measurement was taken on the machine we run on now, with the instruction
    /// set [`Isa::chosen`] picks now (a peak measured under `VIRTLAB_ISA=avx2` is not the
    /// AVX-512 kernels' peak).
    pub fn is_from_this_machine(&self) -> bool {
        self.usable_cpus == machine::usable_cpus()
            && self.cpu_model == machine::cpu_model()
            && Isa::chosen().is_ok_and(|isa| isa.name() == self.instruction_set)
    }

    /// Shows [`Peak::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.table().evcxr_display();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the loop computes for one element, step by step in f64.
    fn expected_per_element(iterations: u64) -> f64 {
        (0..iterations).fold(1.0, |r, _| r * A + B)
    }

    fn lanes(isa: Isa, precision: Precision) -> u64 {
        isa.flops_per_iteration(precision) / (2 * ACCUMULATORS as u64)
    }

    #[test]
    fn every_kernel_computes_what_it_counts() {
        for isa in Isa::available() {
            for (precision, tolerance) in [(Precision::F64, 1e-9), (Precision::F32, 1e-3)] {
                let iterations = 1000;
                let elements = (lanes(isa, precision) * ACCUMULATORS as u64) as f64;
                let want = elements * expected_per_element(iterations);
                let got = isa.run(precision, iterations);
                assert!(
                    ((got - want) / want).abs() < tolerance,
                    "{isa:?} {precision:?}: got {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn thread_counts_cover_one_to_all() {
        assert_eq!(thread_counts(1), vec![1]);
        assert_eq!(thread_counts(2), vec![1, 2]);
        assert_eq!(thread_counts(6), vec![1, 2, 4, 6]);
        assert_eq!(thread_counts(16), vec![1, 2, 4, 8, 16]);
    }

    #[test]
    fn measure_rejects_out_of_range_time() {
        for bad in [0, 9, 5001] {
            let err = measure(bad).unwrap_err();
            assert!(err.problem().contains("measuring time"), "{err}");
            assert!(err.fix().contains("between 10 and 5000"), "{err}");
        }
    }

    #[test]
    fn measure_saves_and_reloads_with_every_point() {
        crate::store::tests::temp_cache();
        let peak = measure(10).unwrap();
        let counts = thread_counts(machine::usable_cpus());
        assert_eq!(peak.points.len(), 2 * counts.len());
        assert!(
            peak.points
                .iter()
                .all(|p| p.gflops.is_finite() && p.gflops > 0.0)
        );
        assert!(peak.all_cores(Precision::F64).is_some());
        assert_eq!(peak.table().rows().len(), peak.points.len());
        assert!(peak.plot().unwrap().svg().contains("f64 measured"));
        peak.save().unwrap();
        assert_eq!(Peak::saved().unwrap(), Some(peak));
    }

    #[test]
    fn a_peak_from_another_machine_is_recognised() {
        let foreign = Peak {
            cpu_model: "a CPU this is not".into(),
            usable_cpus: machine::usable_cpus(),
            instruction_set: "x".into(),
            ms_per_point: 10,
            measured_unix_s: 0,
            points: vec![],
        };
        assert!(!foreign.is_from_this_machine());
        let fewer_cpus = Peak {
            cpu_model: machine::cpu_model(),
            usable_cpus: 0,
            ..foreign
        };
        assert!(!fewer_cpus.is_from_this_machine());
        let other_vectors = Peak {
            usable_cpus: machine::usable_cpus(),
            ..fewer_cpus
        };
        assert!(!other_vectors.is_from_this_machine());
        let here = Peak {
            instruction_set: Isa::chosen().unwrap().name().into(),
            ..other_vectors
        };
        assert!(here.is_from_this_machine());
    }
}
