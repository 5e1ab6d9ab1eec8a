//! The CPU's floating-point peak, measured with a fused multiply-add loop (chapter 0).
//!
//! Each thread updates independent vector accumulators with `acc = acc * a + b`, enough of them
//! to hide the FMA latency, so the loop runs at the FMA units' throughput. We measure f32 and
//! f64 on 1 thread up to every usable CPU and keep the result: later chapters draw their
//! throughput against it. The widest instruction set the CPU has is chosen at run time.

use crate::isa::Isa;
use serde::{Deserialize, Serialize};
use std::sync::Barrier;
use std::time::{Duration, Instant};
use virtlab_core::Result;
use virtlab_core::error::check_range;
use virtlab_core::load::{self, Load};
use virtlab_core::machine;
use virtlab_core::store;
use virtlab_display::plot::LineChart;
use virtlab_display::{Figure, Table};

/// Independent accumulators per thread: 12 vectors plus 2 constants fit in 16 AVX2 registers,
/// and 12 in flight cover a 4-cycle FMA latency on two pipes with room to spare.
const ACCUMULATORS: usize = 12;
/// Lanes per accumulator in the portable loop (left to the compiler to vectorise).
const PORTABLE_LANES: usize = 8;
/// Each point is measured this many times; the best run is the peak.
const REPEATS: usize = 3;
/// Scaling from one thread to every usable CPU below this share of perfect (n × one thread's
/// rate) is not what independent cores give: something else had a share of them.
const SCALING_EXPECTED: f64 = 0.85;
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
            // The x86 loops are compiled for their instruction set and would fault (undefined
            // behaviour) on a CPU without it. `run` is private to this crate, and every caller
            // passes an `Isa` from `Isa::chosen` or `Isa::available`, which name only sets that
            // `is_x86_feature_detected!` saw on this CPU.
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `self` is Avx512, so this CPU has avx512f (see above).
            (Isa::Avx512, Precision::F64) => unsafe { x86::f64_avx512(iterations) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `self` is Avx512, so this CPU has avx512f (see above).
            (Isa::Avx512, Precision::F32) => unsafe { x86::f32_avx512(iterations) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `self` is Avx2Fma, so this CPU has avx2 and fma (see above).
            (Isa::Avx2Fma, Precision::F64) => unsafe { x86::f64_avx2(iterations) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `self` is Avx2Fma, so this CPU has avx2 and fma (see above).
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
    /// What other programs and the hypervisor took while the three runs went on (`None` where
    /// `/proc/stat` cannot be read, and in results saved before it was recorded).
    #[serde(default)]
    pub load: Option<Load>,
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
            let (gflops, load) = load::during(|| {
                (0..REPEATS)
                    .map(|_| run_threads(isa, precision, threads, iterations))
                    .fold(0.0, f64::max)
            });
            points.push(PeakPoint {
                precision,
                threads,
                gflops,
                load,
            });
        }
    }
    Ok(Peak {
        cpu_model: machine::cpu_model(),
        usable_cpus: cpus,
        instruction_set: isa.name().into(),
        ms_per_point,
        measured_unix_s: virtlab_core::units::unix_now(),
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
        self.point(precision, threads).map(|p| p.gflops)
    }

    /// GFLOP/s with every usable CPU busy: the line later chapters draw against.
    pub fn all_cores(&self, precision: Precision) -> Option<f64> {
        self.gflops(precision, self.usable_cpus)
    }

    fn point(&self, precision: Precision, threads: usize) -> Option<&PeakPoint> {
        self.points
            .iter()
            .find(|p| p.precision == precision && p.threads == threads)
    }

    /// Every usable CPU's rate as a share of perfect scaling (`usable_cpus` × one thread's).
    pub fn scaling(&self, precision: Precision) -> Option<f64> {
        let single = self.gflops(precision, 1)?;
        let all = self.all_cores(precision)?;
        Some(all / (single * self.usable_cpus as f64))
    }

    /// What makes this peak doubtful as a ceiling, in one sentence with its likely cause and
    /// what to do: threads that did not scale from one thread to every CPU, a point that shared
    /// the CPUs with other programs. `None` when it looks like what a quiet machine gives.
    pub fn doubt(&self) -> Option<String> {
        let n = self.usable_cpus;
        let mut problems = Vec::new();
        let mut no_scaling = false;
        for precision in [Precision::F64, Precision::F32] {
            let name = precision.name();
            if let Some(scaling) = self
                .scaling(precision)
                .filter(|s| n >= 2 && *s < SCALING_EXPECTED)
            {
                no_scaling = true;
                problems.push(format!(
                    "{name} on {n} threads ran at {:.0}% of {n} × one thread's rate (free cores \
                     give about 100%)",
                    100.0 * scaling
                ));
            }
            // One thread needs one free CPU: only others filling every CPU slows it.
            let single = self.point(precision, 1).and_then(|p| p.load.as_ref());
            if let Some(load) = single.filter(|l| l.free_cpus() < 1.0 - load::BUSY_CPUS) {
                problems.push(format!(
                    "{name} on 1 thread had {:.1} free CPU, so its rate and the ideal line drawn \
                     from it read low",
                    load.free_cpus()
                ));
            }
        }
        let loads: Vec<&Load> = self.points.iter().filter_map(|p| p.load.as_ref()).collect();
        let busy_cause = Load::busiest(loads.iter().copied()).and_then(Load::busy_cause);
        let cause = match busy_cause {
            Some(cause) => cause,
            None if !no_scaling => return None,
            None if loads.is_empty() => {
                "whether other programs ran could not be read (/proc/stat)".to_string()
            }
            None => format!(
                "no other program was seen taking CPU time, so the {n} CPUs themselves share \
                 something: hyperthreads of one core, or a host that gives fewer physical cores \
                 than vCPUs"
            ),
        };
        if problems.is_empty() {
            problems.push("the rates may read low".to_string());
        }
        Some(format!("{}: {cause}", problems.join("; ")))
    }

    /// What this measurement showed, computed from its numbers: the rate on every CPU, how it
    /// scaled from one thread, and whether the machine was quiet, with what to do when it was not.
    pub fn what_we_saw(&self) -> Table {
        let mut t = Table::new(
            format!("What this run measured ({})", self.cpu_model),
            ["question", "answer, from the numbers above"],
        );
        let n = self.usable_cpus;
        for precision in [Precision::F64, Precision::F32] {
            let (Some(all), Some(scaling)) = (self.all_cores(precision), self.scaling(precision))
            else {
                continue;
            };
            let name = precision.name();
            let verdict = if n < 2 {
                "one usable CPU: nothing to scale across".to_string()
            } else if scaling >= SCALING_EXPECTED {
                format!(
                    "{:.2}× one thread ({:.0}% of perfect): the CPUs worked independently",
                    scaling * n as f64,
                    100.0 * scaling
                )
            } else {
                format!(
                    "{:.2}× one thread ({:.0}% of perfect): NOT what {n} free cores give; see \
                     the last row",
                    scaling * n as f64,
                    100.0 * scaling
                )
            };
            t.row([
                format!("How fast on all {n} CPUs ({name})?"),
                format!("{all:.1} GFLOP/s, {:.1} per thread", all / n as f64),
            ]);
            t.row([format!("Did the threads scale ({name})?"), verdict]);
        }
        let busiest = Load::busiest(self.points.iter().filter_map(|p| p.load.as_ref()));
        let quiet = match (self.doubt(), busiest) {
            (Some(doubt), _) => format!("no, this peak is doubtful as a ceiling: {doubt}"),
            (None, Some(busiest)) => format!("yes: at the busiest point {}", busiest.summary()),
            (None, None) => "not observable here (/proc/stat cannot be read)".to_string(),
        };
        t.row([
            "Was the machine quiet, is this a true ceiling?".to_string(),
            quiet,
        ]);
        t
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
                "other programs' CPUs",
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
                p.load
                    .as_ref()
                    .map_or("not observable".into(), |l| format!("{:.2}", l.others_cpus)),
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
        if let Some(doubt) = self.doubt() {
            chart = chart.note(format!("Warning: {doubt}."));
        }
        chart.render().map_err(Into::into)
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

    /// The saved peak when it was measured on this machine and nothing makes it doubtful
    /// ([`Peak::doubt`]); otherwise a new measurement of `ms_per_point` per run, saved when
    /// it is itself beyond doubt. Chapter 4 draws its throughput against this.
    pub fn reuse_or_measure(ms_per_point: u64) -> Result<Peak> {
        // Checked first: a bad value is refused whether or not a saved peak would be reused.
        check_range("the measuring time per point (ms)", ms_per_point, 10, 5000)?;
        if let Some(saved) = Peak::saved()?.filter(|p| p.doubt().is_none()) {
            return Ok(saved);
        }
        let peak = measure(ms_per_point)?;
        if peak.doubt().is_none() {
            peak.save()?;
        }
        Ok(peak)
    }

    /// When it was measured, e.g. `2026-12-07 14:02 UTC`.
    pub fn measured_utc(&self) -> String {
        virtlab_core::units::utc(self.measured_unix_s)
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
            let err = Peak::reuse_or_measure(bad).unwrap_err();
            assert!(err.fix().contains("between 10 and 5000"), "{err}");
            let err = measure(bad).unwrap_err();
            assert!(err.problem().contains("measuring time"), "{err}");
            assert!(err.fix().contains("between 10 and 5000"), "{err}");
        }
    }

    #[test]
    fn measure_saves_and_reloads_with_every_point() {
        virtlab_testkit::temp_cache();
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

    fn two_cpu_peak(f64_gflops: [f64; 2], others_cpus: [f64; 2]) -> Peak {
        let point = |threads: usize| PeakPoint {
            precision: Precision::F64,
            threads,
            gflops: f64_gflops[threads - 1],
            load: Some(Load {
                seconds: 0.6,
                machine_cpus: 2,
                others_cpus: others_cpus[threads - 1],
                steal_cpus: 0.0,
            }),
        };
        Peak {
            cpu_model: "test CPU".into(),
            usable_cpus: 2,
            instruction_set: "AVX-512 FMA".into(),
            ms_per_point: 200,
            measured_unix_s: 0,
            points: vec![point(1), point(2)],
        }
    }

    #[test]
    fn a_quiet_peak_that_scales_has_no_doubts() {
        let peak = two_cpu_peak([123.4, 246.4], [0.02, 0.03]);
        assert_eq!(peak.doubt(), None);
        let said = peak.what_we_saw().to_string();
        assert!(
            said.contains("2.00× one thread (100% of perfect)"),
            "{said}"
        );
        assert!(said.contains("yes: at the busiest point"), "{said}");
    }

    #[test]
    fn a_busy_peak_that_does_not_scale_names_the_other_program() {
        // The case: 123.5 on 1 thread, 123.9 on 2, with a build on one CPU.
        let doubt = two_cpu_peak([123.5, 123.9], [0.9, 0.95]).doubt().unwrap();
        assert!(
            doubt.starts_with("f64 on 2 threads ran at 50% of 2 × one thread"),
            "{doubt}"
        );
        assert!(
            doubt.contains("other programs kept 0.9") && doubt.contains("re-run"),
            "{doubt}"
        );
        let peak = two_cpu_peak([123.5, 123.9], [0.9, 0.95]);
        let said = peak.what_we_saw().to_string();
        assert!(said.contains("NOT what 2 free cores give"), "{said}");
        assert!(said.contains("no, this peak is doubtful"), "{said}");
        assert!(peak.plot().unwrap().svg().contains("Warning"));
    }

    #[test]
    fn no_scaling_on_a_quiet_machine_points_at_shared_cores() {
        let doubt = two_cpu_peak([120.0, 130.0], [0.01, 0.02]).doubt().unwrap();
        assert!(doubt.contains("hyperthreads"), "{doubt}");
    }

    #[test]
    fn a_one_thread_point_without_a_free_cpu_is_doubted() {
        let doubt = two_cpu_peak([60.0, 240.0], [1.8, 0.0]).doubt().unwrap();
        assert!(
            doubt.contains("f64 on 1 thread had 0.2 free CPU"),
            "{doubt}"
        );
        assert!(doubt.contains("other programs kept 1.8"), "{doubt}");
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
