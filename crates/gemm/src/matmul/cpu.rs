//! The CPU side: the matrix product on ndarray arrays, and its measurement.

use super::kernel::{self, MatMut, MatRef, Scalar};
use super::memory;
use super::{Device, Dtype, Point, check_request, random_values, relative_error};
use crate::isa::Isa;
use ndarray::{Array2, ArrayView2};
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::error::check_range;
use virtlab_core::machine;

/// A·B on `threads` threads with virtlab's packed kernel ([`Isa::chosen`]'s instruction set).
/// Any strides are accepted (transposed or sliced views); the result is a new row-major array.
pub fn multiply<T: Scalar>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    threads: usize,
) -> Result<Array2<T>> {
    check_range("the number of CPU threads", threads, 1, 1024)?;
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    if k != k2 {
        return Err(Error::new(
            format!("A is {m}×{k} and B is {k2}×{n}: A's columns must equal B's rows"),
            "transpose or reshape one of them so the inner sizes match",
        ));
    }
    let bytes = (m as u64)
        .saturating_mul(n as u64)
        .saturating_mul(size_of::<T>() as u64);
    let available = machine::available_memory();
    if bytes > available {
        return Err(Error::new(
            format!(
                "the {m}×{n} result needs {}, more than the {} available",
                virtlab_core::units::bytes(bytes),
                virtlab_core::units::bytes(available)
            ),
            "multiply smaller blocks",
        ));
    }
    Ok(product(Isa::chosen()?, a, b, threads))
}

/// A·B once the instruction set, shapes, thread count and memory are known to be fine.
fn product<T: Scalar>(isa: Isa, a: ArrayView2<T>, b: ArrayView2<T>, threads: usize) -> Array2<T> {
    let (m, n) = (a.nrows(), b.ncols());
    // Not zeroed first: the kernel writes every element of C.
    let mut c = memory::huge_page_array::<T>(m * n)
        .into_shape_with_order((m, n))
        .expect("m·n elements make an m×n array");
    let (a_ref, b_ref) = (mat_ref(&a), mat_ref(&b));
    let c_mut = MatMut {
        ptr: c.as_mut_ptr() as *mut T,
        rows: m,
        cols: n,
        row_stride: n,
    };
    // SAFETY: the views and the fresh array are valid for their shapes, C is a new allocation,
    // the caller checked the shapes, and the kernel initialises all m·n elements.
    unsafe {
        kernel::multiply(isa, a_ref, b_ref, c_mut, threads);
        c.assume_init()
    }
}

/// An n×n matrix of row-major values on huge pages when large, as numpy allocates its arrays
/// (it gives the same hint from 4 MiB), so both sides of the benchmark read memory alike.
fn square_matrix<T: Scalar>(values: &[f64], n: usize) -> Array2<T> {
    assert_eq!(values.len(), n * n, "n·n values");
    let mut storage = memory::huge_page_array(n * n);
    for (slot, &x) in storage.iter_mut().zip(values) {
        slot.write(T::from_f64(x));
    }
    // SAFETY: `values` has n·n elements, so every slot was written.
    unsafe { storage.assume_init() }
        .into_shape_with_order((n, n))
        .expect("n·n values make an n×n array")
}

fn mat_ref<T>(view: &ArrayView2<T>) -> MatRef<T> {
    let (rows, cols) = view.dim();
    MatRef {
        ptr: view.as_ptr(),
        rows,
        cols,
        row_stride: view.strides()[0],
        col_stride: view.strides()[1],
    }
}

/// How long products run before the timed ones (at least one product, whatever its length).
/// On the project's 2-vCPU VM a CPU left idle while the inputs were made ran the first 40-60 ms
/// of a two-thread product at half speed: n = 1024 f32 ran 2-5 products at ~95 GFLOP/s, then
/// ~197 (AMD EPYC Zen 4, 2026-12-01), whatever the threads were (spawned, pinned or rayon's).
/// One warm-up product left the median of 5 timed runs on either side of that. numpy's peer
/// (`bench/peers/matmul.py`) warms up by the same rule.
pub const WARM_UP: Duration = Duration::from_millis(250);

/// Multiplies two n×n matrices of random values for [`WARM_UP`] (at least once), then
/// `repeats` times timed, and checks the result against an f64 product on a few rows.
pub fn measure(n: usize, dtype: Dtype, threads: usize, repeats: usize) -> Result<Point> {
    match dtype {
        Dtype::F64 => measure_typed::<f64>(n, dtype, threads, repeats),
        Dtype::F32 => measure_typed::<f32>(n, dtype, threads, repeats),
        Dtype::Tf32 | Dtype::Bf16 => Err(super::not_on_cpu(dtype)),
    }
}

fn measure_typed<T: Scalar>(
    n: usize,
    dtype: Dtype,
    threads: usize,
    repeats: usize,
) -> Result<Point> {
    // A, B and C, and the f64 copies of A and B kept for the check: at most that much is held
    // at once (C's f64 copy is made once A and B are gone).
    check_request(n, dtype, repeats)?;
    let isa = Isa::chosen()?;
    let mut a64 = random_values(n * n, 1);
    let mut b64 = random_values(n * n, 2);
    let (a, b) = (square_matrix::<T>(&a64, n), square_matrix::<T>(&b64, n));
    // The check compares against the values actually multiplied (f32 inputs are rounded),
    // rounded in place rather than copied.
    for x in a64.iter_mut().chain(b64.iter_mut()) {
        *x = T::from_f64(*x).to_f64();
    }
    // Checked once here; the timed runs measure the product alone.
    let warming = Instant::now();
    let mut c = multiply(a.view(), b.view(), threads)?;
    while warming.elapsed() < WARM_UP {
        drop(c);
        c = product(isa, a.view(), b.view(), threads);
    }
    let mut runs_ms = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        // The previous result goes before the next is made, as numpy's `a @ b` in a loop does:
        // with two alive, malloc maps fresh memory for the first few products (measured
        // 9.4-10 ms instead of 8.2 ms at n = 1024 f32 on two threads).
        drop(c);
        let started = Instant::now();
        c = product(isa, a.view(), b.view(), threads);
        runs_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    drop((a, b));
    let c64: Vec<f64> = c.iter().map(|x| x.to_f64()).collect();
    let max_error = relative_error(&a64, &b64, &c64, n);
    super::check_error("CPU", n, dtype, max_error)?;
    Ok(Point {
        device: Device::Cpu,
        dtype,
        n,
        runs_ms,
        threads: Some(threads),
        isa: Some(isa.short_name().to_string()),
        gpu: None,
        max_error,
        tolerance: dtype.tolerance(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, s};

    #[test]
    fn equals_ndarrays_own_product_on_views() {
        let a = Array2::from_shape_fn((37, 50), |(i, j)| (i as f64 - j as f64) / 7.0);
        let b = Array2::from_shape_fn((29, 61), |(i, j)| ((i * j) % 5) as f64);
        // A transposed slice of B: column stride 61, row stride 1.
        let b_used = b.slice(s![.., ..50]).reversed_axes();
        let ours = multiply(a.view(), b_used.view(), 2).unwrap();
        let want = a.dot(&b_used);
        assert_eq!(ours.dim(), want.dim());
        for (x, y) in ours.iter().zip(want.iter()) {
            assert!((x - y).abs() < 1e-10);
        }
    }

    #[test]
    fn mismatched_shapes_and_zero_threads_are_refused() {
        let a = Array2::<f32>::zeros((3, 4));
        let b = Array2::<f32>::zeros((5, 2));
        let e = multiply(a.view(), b.view(), 1).unwrap_err();
        assert!(
            e.problem().contains("3×4") && e.problem().contains("5×2"),
            "{e}"
        );
        assert!(
            multiply(a.view(), a.t(), 0)
                .unwrap_err()
                .to_string()
                .contains("threads")
        );
    }

    #[test]
    fn a_measured_point_is_checked_and_counts_flops() {
        let p = measure(96, Dtype::F32, 2, 2).unwrap();
        assert_eq!((p.n, p.threads, p.runs_ms.len()), (96, Some(2), 2));
        assert!(p.max_error <= p.tolerance);
        assert!(p.gflops() > 0.0 && p.gflops().is_finite());
        assert!(
            measure(8, Dtype::Bf16, 1, 1)
                .unwrap_err()
                .fix()
                .contains("f32 or f64")
        );
    }
}
