//! Is there a CUDA GPU, and what is it? Asked without risking a panic.
//!
//! cudarc panics when it cannot load libcuda, so the driver library's presence is probed first;
//! every later failure (no device, a driver error) becomes a reason in [`GpuStatus::Absent`].

use cudarc::driver::{result, sys};
use serde::{Deserialize, Serialize};

/// One CUDA GPU the driver can see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuDevice {
    /// The driver's number for it, counting from 0: the `#0` in a summary. Chapter 4 uses
    /// device 0 ([`crate::matmul::gpu::Gpu::open`]).
    pub index: usize,
    /// The model's name as the driver gives it, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Its own memory (device memory, not the machine's RAM), in bytes.
    pub memory_bytes: u64,
}

/// Whether this machine has a CUDA GPU the crate can use, and if not, why not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum GpuStatus {
    /// The CUDA driver started and sees at least one device.
    Present {
        /// The driver's CUDA version, e.g. `13.0`.
        driver: String,
        /// Every device it sees, in the driver's order.
        devices: Vec<GpuDevice>,
    },
    /// No GPU to use: the GPU chapter runs on the CPU only.
    Absent {
        /// Why, in words, e.g. `no CUDA driver library (libcuda.so) on this machine`.
        reason: String,
    },
}

impl GpuStatus {
    /// One line for a table or a terminal.
    pub fn summary(&self) -> String {
        match self {
            GpuStatus::Present { driver, devices } => {
                let names: Vec<String> = devices
                    .iter()
                    .map(|d| {
                        format!(
                            "#{} {} ({})",
                            d.index,
                            d.name,
                            virtlab_core::units::bytes(d.memory_bytes)
                        )
                    })
                    .collect();
                format!("{} (CUDA driver {driver})", names.join(", "))
            }
            GpuStatus::Absent { reason } => {
                format!("no GPU: {reason}; the GPU chapter will run CPU-only")
            }
        }
    }
}

/// Looks for CUDA devices through the driver API.
pub fn probe() -> GpuStatus {
    let absent = |reason: String| GpuStatus::Absent { reason };
    // SAFETY: only tries to open the library by name; it touches no CUDA state.
    if !unsafe { sys::is_culib_present() } {
        return absent("no CUDA driver library (libcuda.so) on this machine".into());
    }
    if let Err(e) = result::init() {
        return absent(format!("the CUDA driver did not start ({e:?})"));
    }
    let count = match result::device::get_count() {
        Ok(n) => n,
        Err(e) => return absent(format!("the CUDA driver could not count devices ({e:?})")),
    };
    if count == 0 {
        return absent("the CUDA driver is installed but sees no device".into());
    }
    let mut devices = Vec::new();
    for index in 0..count {
        let described = result::device::get(index).and_then(|dev| {
            let name = result::device::get_name(dev)?;
            // SAFETY: `dev` is a handle the driver just returned for this ordinal.
            let memory = unsafe { result::device::total_mem(dev)? };
            Ok((name, memory))
        });
        match described {
            Ok((name, memory)) => devices.push(GpuDevice {
                index: index as usize,
                name,
                memory_bytes: memory as u64,
            }),
            Err(e) => return absent(format!("GPU #{index} could not be described ({e:?})")),
        }
    }
    let mut version = 0;
    // SAFETY: writes one int through a valid pointer.
    let driver = match unsafe { sys::cuDriverGetVersion(&mut version) } {
        sys::CUresult::CUDA_SUCCESS => format!("{}.{}", version / 1000, (version % 1000) / 10),
        other => format!("unknown ({other:?})"),
    };
    GpuStatus::Present { driver, devices }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_without_panicking_and_explains_absence() {
        match probe() {
            GpuStatus::Present { devices, driver } => {
                assert!(!devices.is_empty());
                assert!(!driver.is_empty());
            }
            GpuStatus::Absent { reason } => {
                assert!(!reason.is_empty());
                let summary = GpuStatus::Absent { reason }.summary();
                assert!(summary.contains("CPU-only"), "{summary}");
            }
        }
    }

    #[test]
    fn present_summary_names_device_and_memory() {
        let status = GpuStatus::Present {
            driver: "13.0".into(),
            devices: vec![GpuDevice {
                index: 0,
                name: "NVIDIA H100".into(),
                memory_bytes: 80 << 30,
            }],
        };
        assert_eq!(
            status.summary(),
            "#0 NVIDIA H100 (80.0 GiB) (CUDA driver 13.0)"
        );
    }
}
