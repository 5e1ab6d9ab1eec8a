//! What the report's tests share: runs, points, a numpy outcome and a peak made to order, and
//! the texts of a rendered chart.

use crate::matmul::numpy::{Numpy, NumpyPoint};
use crate::matmul::{Device, Dtype, GpuTimes, Plan, Point, Run};
use crate::peak::{Peak, Precision};
use virtlab_core::outcome::Outcome;

pub(super) fn run_with(points: Vec<Point>) -> Run {
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
pub(super) fn cpu_only(points: Vec<Point>) -> Run {
    Run {
        gpu: None,
        gpu_skipped: Some("no GPU: no driver library".into()),
        ..run_with(points)
    }
}

pub(super) fn point(device: Device, n: usize, ms: f64) -> Point {
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

pub(super) fn numpy(points: &[(usize, f64)]) -> Outcome<Numpy> {
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

pub(super) fn no_numpy() -> Outcome<Numpy> {
    Outcome::Skipped("no module named numpy".into())
}

pub(super) fn peak() -> Peak {
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
pub(super) fn texts(svg: &str) -> Vec<String> {
    svg.split("</text>")
        .filter_map(|part| part.rsplit('>').next())
        .map(|t| t.trim().to_string())
        .collect()
}
