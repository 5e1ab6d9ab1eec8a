//! Chapter 4's pictures and tables: throughput against each device's peak, the GPU's time split,
//! launch-only against synchronized, and the essay's 10000×10000 case.
//!
//! One module per idea: the sweep table (`table`), the throughput chart and its peak warnings
//! (`throughput`), the GPU's time charts (`gpu_charts`), the essay's case (`essay`) and the
//! closing "what this run measured" (`what_we_saw`). Their public items are re-exported here, so
//! notebooks call them as `report::…`. This module keeps what they share: a run's points by
//! device and type, a recorded run loaded from a file, and the peak's precision for a type.

use super::{Device, Dtype, Point, Run};
use crate::peak::Precision;
use std::collections::BTreeSet;
use virtlab_core::Result;

mod essay;
#[cfg(test)]
mod fixtures;
mod gpu_charts;
mod table;
mod throughput;
mod what_we_saw;

pub use essay::{ESSAY_CUPY_S, ESSAY_N, ESSAY_NUMPY_S, essay_comparison, essay_estimate};
pub use gpu_charts::{gpu_time_split, launch_vs_synchronized};
pub use throughput::{peak_warnings, throughput};
pub use what_we_saw::what_we_saw;

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
}

/// Loads results recorded on another machine; a missing file is `None`, not an error.
pub fn load_recorded(path: impl AsRef<std::path::Path>) -> Result<Option<Run>> {
    let path = path.as_ref();
    if !path.exists() {
        return Ok(None);
    }
    Run::load(path).map(Some)
}

fn cpu_precision(dtype: Dtype) -> Precision {
    if dtype == Dtype::F64 {
        Precision::F64
    } else {
        Precision::F32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::{point, run_with};

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
}
