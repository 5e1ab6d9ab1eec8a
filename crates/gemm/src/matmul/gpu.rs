//! The GPU side: cuBLAS through cudarc, timed with CUDA events, with the essay's mistake beside
//! the truth.
//!
//! cudarc panics when it cannot load libcuda or libcublas, so both are probed before any call;
//! every failure after that (no device, out of memory, a cuBLAS error) is an [`Error`] naming the
//! step. Every type goes through `cublasGemmEx` (f64: 64-bit compute; f32; TF32 as f32 storage
//! with the fast-TF32 compute type; BF16 stored as raw 16-bit words with f32 accumulation), so
//! no half-precision crate is compiled. cuBLAS is column-major: a row-major C = A·B is computed
//! as the column-major Cᵀ = Bᵀ·Aᵀ, by passing B first.

use super::{
    Device, Dtype, GpuTimes, Point, check_fits, check_request, footprint, random_values,
    relative_error,
};
use crate::gpu::{GpuStatus, probe};
use cudarc::cublas::{CudaBlas, result as cublas_result, sys as cublas_sys};
use cudarc::driver::{
    CudaContext, CudaSlice, CudaStream, DevicePtr, DevicePtrMut, DeviceRepr, DriverError,
    ValidAsZeroBits, sys,
};
use serde::{Deserialize, Serialize};
use std::ffi::c_void;
use std::sync::Arc;
use std::time::Instant;
use virtlab_core::Error;
use virtlab_core::Result;

/// The GPU a run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpuInfo {
    /// The model's name as the driver gives it, e.g. `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Its own memory (device memory, not the machine's RAM), in bytes.
    pub memory_bytes: u64,
    /// The CUDA driver's version, e.g. `13.0`.
    pub driver: String,
    /// The cuBLAS library's version, e.g. `13.1.0`.
    pub cublas_version: String,
}

/// An opened GPU: a context, its stream and a cuBLAS handle.
pub struct Gpu {
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    info: GpuInfo,
}

impl Gpu {
    /// Opens GPU 0, or says why there is none (without panicking).
    pub fn open() -> Result<Gpu> {
        let (driver, device) = match probe() {
            GpuStatus::Present {
                driver,
                mut devices,
            } => (driver, devices.remove(0)),
            GpuStatus::Absent { reason } => {
                return Err(Error::new(
                    format!("no GPU: {reason}"),
                    "run on the CPU (device cpu); chapter 4 also draws a GPU run recorded elsewhere (data/matmul-gpu.json) when there is one",
                ));
            }
        };
        // SAFETY: only tries to open the library by name.
        if !unsafe { cublas_sys::is_culib_present() } {
            return Err(Error::new(
                "the GPU is there but cuBLAS (libcublas.so.13) is not on the library path",
                "install CUDA 13's cuBLAS (e.g. pip install nvidia-cublas) and add its lib folder to LD_LIBRARY_PATH",
            ));
        }
        let context = CudaContext::new(0).map_err(|e| cuda_error("opening GPU 0", e))?;
        let stream = context.default_stream();
        let blas = CudaBlas::new(stream.clone()).map_err(|e| {
            Error::new(
                format!("cuBLAS did not start: {e:?}"),
                "check that the cuBLAS library matches the driver's CUDA version (13)",
            )
        })?;
        let mut version = 0;
        // SAFETY: the handle is live and `version` is a valid out-pointer.
        let cublas_version =
            match unsafe { cublas_sys::cublasGetVersion_v2(*blas.handle(), &mut version) } {
                cublas_sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS => {
                    format!(
                        "{}.{}.{}",
                        version / 10_000,
                        (version % 10_000) / 100,
                        version % 100
                    )
                }
                other => format!("unknown ({other:?})"),
            };
        let info = GpuInfo {
            name: device.name,
            memory_bytes: device.memory_bytes,
            driver,
            cublas_version,
        };
        Ok(Gpu { stream, blas, info })
    }

    /// Which GPU this is, with its driver and cuBLAS versions: what a [`super::Run`] records.
    pub fn info(&self) -> &GpuInfo {
        &self.info
    }

    /// Multiplies two n×n matrices on the GPU: copies in, warms up, times `repeats` products with
    /// CUDA events, times the launch alone and launch + synchronize from the host, copies out and
    /// checks a few rows against an f64 product on the CPU.
    pub fn measure(&self, n: usize, dtype: Dtype, repeats: usize) -> Result<Point> {
        // The host holds A, B and C in the device format plus f64 copies of A and B for the check.
        check_request(n, dtype, repeats)?;
        let (free, _total) = self
            .stream
            .context()
            .mem_get_info()
            .map_err(|e| cuda_error("asking the GPU for free memory", e))?;
        check_fits(n, dtype, footprint(dtype, false), free as u64, "the GPU")?;
        let (a, b) = (random_values(n * n, 1), random_values(n * n, 2));
        match dtype {
            Dtype::F64 => self.measure_typed(n, dtype, repeats, a, b, |x| x, |x| x),
            Dtype::F32 | Dtype::Tf32 => {
                self.measure_typed(n, dtype, repeats, a, b, |x| x as f32, f64::from)
            }
            Dtype::Bf16 => self.measure_typed(n, dtype, repeats, a, b, bf16_bits, bf16_value),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn measure_typed<T>(
        &self,
        n: usize,
        dtype: Dtype,
        repeats: usize,
        a: Vec<f64>,
        b: Vec<f64>,
        to_device: impl Fn(f64) -> T,
        to_f64: impl Fn(T) -> f64,
    ) -> Result<Point>
    where
        T: DeviceRepr + ValidAsZeroBits + Copy,
    {
        let host_a: Vec<T> = a.iter().map(|x| to_device(*x)).collect();
        let host_b: Vec<T> = b.iter().map(|x| to_device(*x)).collect();
        // The check multiplies the values the GPU saw, after rounding to its format.
        let a: Vec<f64> = host_a.iter().map(|x| to_f64(*x)).collect();
        let b: Vec<f64> = host_b.iter().map(|x| to_f64(*x)).collect();
        let stream = &self.stream;
        let copy_in = |host: &[T]| {
            stream
                .clone_htod(host)
                .map_err(|e| cuda_error("copying A and B to the GPU", e))
        };
        let ((device_a, device_b), copy_in_ms) =
            self.timed(|| Ok((copy_in(&host_a)?, copy_in(&host_b)?)))?;
        let mut device_c: CudaSlice<T> = stream
            .alloc_zeros(n * n)
            .map_err(|e| cuda_error("allocating C on the GPU", e))?;
        let side = n as i32;
        let (data_type, compute_type) = gemm_types(dtype);
        // alpha = 1, beta = 0, in the compute type's precision.
        let (one64, zero64, one32, zero32) = (1.0f64, 0.0f64, 1.0f32, 0.0f32);
        let (alpha, beta) = if dtype == Dtype::F64 {
            (
                &one64 as *const f64 as *const c_void,
                &zero64 as *const f64 as *const c_void,
            )
        } else {
            (
                &one32 as *const f32 as *const c_void,
                &zero32 as *const f32 as *const c_void,
            )
        };
        let mut launch = || -> Result<()> {
            let (b_ptr, _b_done) = device_b.device_ptr(stream);
            let (a_ptr, _a_done) = device_a.device_ptr(stream);
            let (c_ptr, _c_done) = device_c.device_ptr_mut(stream);
            let op = cublas_sys::cublasOperation_t::CUBLAS_OP_N;
            // SAFETY: all three buffers hold n·n elements of `data_type`, the leading dimensions
            // are n, and alpha/beta point at values of the compute type that outlive the call.
            unsafe {
                cublas_result::gemm_ex(
                    *self.blas.handle(),
                    op,
                    op,
                    side,
                    side,
                    side,
                    alpha,
                    b_ptr as *const c_void,
                    data_type,
                    side,
                    a_ptr as *const c_void,
                    data_type,
                    side,
                    beta,
                    c_ptr as *mut c_void,
                    data_type,
                    side,
                    compute_type,
                    cublas_sys::cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
                )
            }
            .map_err(|e| {
                Error::new(
                    format!("cuBLAS {dtype} gemm failed for n = {n}: {e:?}"),
                    "try a smaller n or another element type",
                )
            })
        };
        launch()?;
        stream
            .synchronize()
            .map_err(|e| cuda_error("the warm-up product", e))?;
        let mut runs_ms = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            let ((), ms) = self.timed(&mut launch)?;
            runs_ms.push(ms);
        }
        let (mut launch_only_ms, mut synchronized_ms) = (Vec::new(), Vec::new());
        for _ in 0..repeats {
            let started = Instant::now();
            launch()?;
            // The essay stopped its clock here: the call has returned, the GPU has barely begun.
            launch_only_ms.push(started.elapsed().as_secs_f64() * 1e3);
            stream
                .synchronize()
                .map_err(|e| cuda_error("waiting for the product", e))?;
            synchronized_ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        let (host_c, copy_out_ms) = self.timed(|| {
            stream
                .clone_dtoh(&device_c)
                .map_err(|e| cuda_error("copying C back from the GPU", e))
        })?;
        let c: Vec<f64> = host_c.iter().map(|x| to_f64(*x)).collect();
        let max_error = relative_error(&a, &b, &c, n);
        super::check_error("GPU", n, dtype, max_error)?;
        Ok(Point {
            device: Device::Gpu,
            dtype,
            n,
            runs_ms,
            threads: None,
            isa: None,
            gpu: Some(GpuTimes {
                copy_in_ms,
                copy_out_ms,
                launch_only_ms,
                synchronized_ms,
            }),
            max_error,
            tolerance: dtype.tolerance(),
        })
    }

    /// Runs `work` between two CUDA events on the stream; returns its value and the GPU time.
    fn timed<R>(&self, work: impl FnOnce() -> Result<R>) -> Result<(R, f64)> {
        let flags = Some(sys::CUevent_flags::CU_EVENT_DEFAULT);
        let event = || {
            self.stream
                .record_event(flags)
                .map_err(|e| cuda_error("recording a timing event", e))
        };
        let start = event()?;
        let value = work()?;
        let end = event()?;
        let ms = start
            .elapsed_ms(&end)
            .map_err(|e| cuda_error("reading the timing events", e))?;
        Ok((value, f64::from(ms)))
    }
}

/// How each type is stored on the GPU and which cuBLAS compute type multiplies it.
fn gemm_types(dtype: Dtype) -> (cublas_sys::cudaDataType, cublas_sys::cublasComputeType_t) {
    use cublas_sys::cublasComputeType_t as Compute;
    use cublas_sys::cudaDataType as Data;
    match dtype {
        Dtype::F64 => (Data::CUDA_R_64F, Compute::CUBLAS_COMPUTE_64F),
        Dtype::F32 => (Data::CUDA_R_32F, Compute::CUBLAS_COMPUTE_32F),
        Dtype::Tf32 => (Data::CUDA_R_32F, Compute::CUBLAS_COMPUTE_32F_FAST_TF32),
        Dtype::Bf16 => (Data::CUDA_R_16BF, Compute::CUBLAS_COMPUTE_32F),
    }
}

/// The bfloat16 nearest to `x` (ties to even), as its 16 bits: the top half of an f32.
fn bf16_bits(x: f64) -> u16 {
    let single = x as f32;
    if single.is_nan() {
        return 0x7FC0;
    }
    let bits = single.to_bits();
    ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

fn bf16_value(bits: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(bits) << 16))
}

fn cuda_error(step: &str, e: DriverError) -> Error {
    if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
        return Error::new(
            format!("the GPU ran out of memory while {step}"),
            "choose a smaller n, or free the GPU from other programs (nvidia-smi lists them)",
        );
    }
    Error::new(
        format!("CUDA failed while {step}: {e:?}"),
        "check `nvidia-smi`; if the GPU is healthy, report this as a bug in virtlab",
    )
}

/// Published dense peak of known GPUs in TFLOP/s (vendor data sheets), for the chart's lines.
pub fn published_peak_tflops(device_name: &str, dtype: Dtype) -> Option<f64> {
    // (name fragment, FP64 tensor, FP32, TF32 dense, BF16 dense)
    const SHEETS: [(&str, f64, f64, f64, f64); 5] = [
        ("H200", 67.0, 67.0, 494.7, 989.4),
        ("H100 PCIe", 51.0, 51.0, 378.0, 756.0),
        ("H100 NVL", 60.0, 60.0, 417.5, 835.0),
        ("H100", 67.0, 67.0, 494.7, 989.4),
        ("A100", 19.5, 19.5, 156.0, 312.0),
    ];
    let (_, f64_peak, f32_peak, tf32_peak, bf16_peak) =
        SHEETS.iter().find(|s| device_name.contains(s.0))?;
    Some(match dtype {
        Dtype::F64 => *f64_peak,
        Dtype::F32 => *f32_peak,
        Dtype::Tf32 => *tf32_peak,
        Dtype::Bf16 => *bf16_peak,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_gpu_opening_says_why_and_what_to_do() {
        match Gpu::open() {
            Ok(gpu) => {
                // On a GPU machine: a small product is right in every format.
                for dtype in Dtype::ALL {
                    let p = gpu.measure(256, dtype, 2).unwrap();
                    assert!(p.max_error <= p.tolerance, "{dtype}: {}", p.max_error);
                    let times = p.gpu.unwrap();
                    assert!(
                        times
                            .synchronized_ms
                            .iter()
                            .zip(&times.launch_only_ms)
                            .all(|(s, l)| s >= l)
                    );
                }
            }
            Err(e) => {
                assert!(
                    e.problem().starts_with("no GPU") || e.problem().contains("cuBLAS"),
                    "{e}"
                );
                assert!(
                    e.fix().contains("cpu") || e.fix().contains("LD_LIBRARY_PATH"),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn bf16_rounds_to_nearest_even_and_back() {
        assert_eq!(bf16_value(bf16_bits(1.0)), 1.0);
        assert_eq!(bf16_value(bf16_bits(0.5)), 0.5);
        // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one, 1.0.
        assert_eq!(bf16_value(bf16_bits(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(bf16_value(bf16_bits(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        for x in [0.1, 0.3337, 0.999] {
            assert!((bf16_value(bf16_bits(x)) - x).abs() <= x / 256.0, "{x}");
        }
    }

    #[test]
    fn published_peaks_know_the_h100_family() {
        assert_eq!(
            published_peak_tflops("NVIDIA H100 80GB HBM3", Dtype::F64),
            Some(67.0)
        );
        assert_eq!(
            published_peak_tflops("NVIDIA H100 PCIe", Dtype::Bf16),
            Some(756.0)
        );
        assert_eq!(
            published_peak_tflops("NVIDIA GeForce GTX 1080", Dtype::F32),
            None
        );
    }
}
