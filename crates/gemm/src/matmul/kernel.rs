//! The CPU matrix product C = A·B: a packed, cache-blocked GEMM in the BLIS design, with one
//! small SIMD "micro-kernel" per instruction set.
//!
//! Why our own and not a crate: on the project's 2-vCPU machines ndarray's `matrixmultiply` has
//! no AVX-512 kernel and stays ~30% behind numpy, and `faer` comes closer but adds ~90 s to a
//! cold notebook build; this file builds in seconds (measured figures in ARCHITECTURE.md).
//!
//! The work is cut so each piece sits in a cache level: B into kc×nc panels packed NR columns
//! per k that fill half the L2; A's kc-deep column panel is packed once, as MR×kc slivers (MR
//! rows per k), and each sliver stays in L1 while the micro-kernel walks it along the B panel,
//! left to right across a strip of C. The micro-kernel holds an MR×NR tile of C in registers
//! for kc steps of k, then adds it to C once; walking along the strip keeps C's rows streaming
//! in order.
//!
//! Why one long file: the blocking, the packing and the micro-kernels are one algorithm whose
//! unsafe code is best reviewed in one place.

use super::memory::PackBuffer;
use crate::isa::Isa;
use std::ops::{Add, Mul};

/// Bytes of one packed row of an A sliver (kc elements) for the AVX2 and portable kernels:
/// 1 KiB, so a 6-row sliver (6 KiB) stays in a 32 KiB L1 while B slivers stream past it.
/// Deeper panels re-read C fewer times (k/kc passes) but push the sliver out of L1: 2 KiB ran
/// level or slower for AVX2 (Zen 4, f32 and f64, 2 threads).
const KC_BYTES: usize = 1024;
/// The same for the AVX-512 kernels: 2 KiB. The 12×2-register tile finishes a panel twice as
/// fast as AVX2's, and half as many panels re-read C half as often: f64 ran 2-6% faster than
/// with 1 KiB at n = 1024-4096 and f32 level (Zen 5, 2 threads, 2026-12-01; on Zen 4, when the
/// threads still met at a barrier after each panel, f64 1-21% and f32 8-11% faster).
const KC_BYTES_AVX512: usize = 2048;
/// L2 size assumed when the OS does not say (a common size for AVX2 and AVX-512 cores).
const DEFAULT_L2_BYTES: usize = 1 << 20;

/// The element types the CPU product supports (f32 and f64).
pub trait Scalar:
    Copy
    + Default
    + Send
    + Sync
    + PartialEq
    + std::fmt::Debug
    + Add<Output = Self>
    + Mul<Output = Self>
    + sealed::Kernels
    + 'static
{
    /// This value as an f64, exactly (to check results against an f64 product).
    fn to_f64(self) -> f64;
    /// The nearest value of this type to `x` (f32 rounds; f64 keeps it).
    fn from_f64(x: f64) -> Self;
}

impl Scalar for f64 {
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(x: f64) -> Self {
        x
    }
}

impl Scalar for f32 {
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
    fn from_f64(x: f64) -> Self {
        x as f32
    }
}

/// A micro-kernel: `c[0..mr][0..nr] (+)= ap · bp` over `kc` steps, C rows `ldc` elements apart,
/// asking meanwhile for the cache lines of [`Ahead`].
type MicroFn<T> = unsafe fn(usize, *const T, *const T, *mut T, usize, bool, Ahead<T>);
/// Packs an A sliver: (A, first row, rows present, first k, kc, out).
type PackFn<T> = unsafe fn(MatRef<T>, usize, usize, usize, usize, &mut [T]);
/// Packs a panel of B: (B, first k, kc, first column, columns, out).
type PackPanelFn<T> = unsafe fn(MatRef<T>, usize, usize, usize, usize, &mut [T]);

mod sealed {
    use super::{MicroFn, PackFn, PackPanelFn};
    use crate::isa::Isa;

    #[derive(Clone, Copy)]
    pub struct Micro<T> {
        pub mr: usize,
        pub nr: usize,
        /// Bytes of one packed row of an A sliver: sets kc (see [`super::KC_BYTES`]).
        pub kc_bytes: usize,
        pub run: MicroFn<T>,
        /// Packs an A sliver of exactly `mr` rows (see `pack_a`).
        pub(crate) pack_a: PackFn<T>,
        /// Packs a panel of B as slivers of exactly `nr` columns (see `pack_b`).
        pub(crate) pack_b: PackPanelFn<T>,
    }

    /// Picks the micro-kernel for an instruction set; sealed so only f32 and f64 implement it.
    pub trait Kernels: Sized {
        fn micro(isa: Isa) -> Micro<Self>;
    }
}
use sealed::Micro;

/// Memory the next micro-kernel calls will read, asked for while this one computes: `lines`
/// cache lines from `start`, one per unrolled step of k (lines beyond the steps are not asked
/// for). Only a request: the lines need not be valid memory.
#[derive(Clone, Copy)]
pub struct Ahead<T> {
    start: *const T,
    lines: usize,
}

impl<T> Ahead<T> {
    const NOTHING: Ahead<T> = Ahead {
        start: std::ptr::null(),
        lines: 0,
    };
}

/// Asks for the cache line holding `p` to be brought into L1. A hint: `p` may point anywhere.
#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// One SIMD register's worth of elements and the few operations a micro-kernel needs.
///
/// # Safety
/// Every method of an x86 vector needs its instruction set (`avx512f`; `avx2` and `fma`) on
/// this CPU; `load` and `store` need `WIDTH` readable or writable elements at `p` (any
/// alignment).
trait Vector: Copy {
    type Element: Scalar;
    const WIDTH: usize;
    unsafe fn zero() -> Self;
    unsafe fn load(p: *const Self::Element) -> Self;
    unsafe fn store(self, p: *mut Self::Element);
    unsafe fn splat(x: Self::Element) -> Self;
    /// self · b + acc
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self;
    unsafe fn add(self, other: Self) -> Self;
}

/// The micro-kernel body, inlined into one wrapper per instruction set so the compiler emits
/// that set's instructions. R rows × NV vectors of accumulators stay in registers.
#[inline(always)]
unsafe fn micro<V: Vector, const R: usize, const NV: usize>(
    kc: usize,
    ap: *const V::Element,
    bp: *const V::Element,
    c: *mut V::Element,
    ldc: usize,
    accumulate: bool,
    ahead: Ahead<V::Element>,
) {
    // SAFETY: the caller passes packed slivers of kc·R (`ap`) and kc·NV·WIDTH (`bp`) elements
    // and a C tile of R rows, each NV·WIDTH wide, `ldc` apart, and runs on a CPU with V's
    // instruction set. Each k step moves `a` by R and `b` by NV·WIDTH, so after kc steps they
    // stand one past their sliver's end and every `micro_step` read lies inside it; the C
    // pointers (rows i < R, elements < NV·WIDTH) stay inside the tile. The prefetch of the
    // next sliver uses wrapping arithmetic and never faults, so `ahead` needs no bounds.
    unsafe {
        let mut acc = [[V::zero(); NV]; R];
        for i in 0..R {
            // C is read once at the end; asking for it now hides the miss behind the k loop.
            // A row of the tile spans up to three cache lines: ask for its first and last
            // (two lines, the usual case, are then both on their way).
            let row = c.add(i * ldc);
            for element in [0, NV * V::WIDTH - 1] {
                prefetch(row.add(element));
            }
        }
        let (mut a, mut b) = (ap, bp);
        for step in 0..kc / UNROLL {
            if step < ahead.lines {
                prefetch(ahead.start.cast::<u8>().wrapping_add(step * LINE));
            }
            for u in 0..UNROLL {
                micro_step::<V, R, NV>(a.add(u * R), b.add(u * NV * V::WIDTH), &mut acc);
            }
            a = a.add(UNROLL * R);
            b = b.add(UNROLL * NV * V::WIDTH);
        }
        for _ in 0..kc % UNROLL {
            micro_step::<V, R, NV>(a, b, &mut acc);
            a = a.add(R);
            b = b.add(NV * V::WIDTH);
        }
        for (i, acc_row) in acc.iter().enumerate() {
            for (v, value) in acc_row.iter().enumerate() {
                let p = c.add(i * ldc + v * V::WIDTH);
                let out = if accumulate {
                    V::load(p).add(*value)
                } else {
                    *value
                };
                out.store(p);
            }
        }
    }
}

/// Steps of k per trip through the micro-kernel's loop.
const UNROLL: usize = 4;
/// Bytes of a cache line, the unit of a prefetch.
const LINE: usize = 64;

/// One step of k: the R×NV accumulators += a column of the A sliver × a row of the B sliver.
/// A function and not a closure: only `#[inline(always)]` makes sure it is inlined into the
/// wrapper that enables the instruction set; a closure left out of line was compiled without
/// AVX and ran 200× slower.
#[inline(always)]
unsafe fn micro_step<V: Vector, const R: usize, const NV: usize>(
    a: *const V::Element,
    b: *const V::Element,
    acc: &mut [[V; NV]; R],
) {
    // SAFETY: the caller passes R readable elements at `a` and NV·WIDTH at `b`.
    unsafe {
        let mut row = [V::zero(); NV];
        for (v, slot) in row.iter_mut().enumerate() {
            *slot = V::load(b.add(v * V::WIDTH));
        }
        for (i, acc_row) in acc.iter_mut().enumerate() {
            let ai = V::splat(*a.add(i));
            for v in 0..NV {
                acc_row[v] = ai.mul_add(row[v], acc_row[v]);
            }
        }
    }
}

/// Portable vectors: plain arrays the compiler vectorises for whatever the target has.
#[derive(Clone, Copy)]
struct Portable<T, const W: usize>([T; W]);

impl<T: Scalar, const W: usize> Vector for Portable<T, W> {
    type Element = T;
    const WIDTH: usize = W;
    unsafe fn zero() -> Self {
        Portable([T::default(); W])
    }
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: the caller guarantees W readable elements at p.
        Portable(unsafe { std::ptr::read_unaligned(p as *const [T; W]) })
    }
    unsafe fn store(self, p: *mut T) {
        // SAFETY: the caller guarantees W writable elements at p.
        unsafe { std::ptr::write_unaligned(p as *mut [T; W], self.0) }
    }
    unsafe fn splat(x: T) -> Self {
        Portable([x; W])
    }
    unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] * b.0[i] + acc.0[i]))
    }
    unsafe fn add(self, other: Self) -> Self {
        Portable(std::array::from_fn(|i| self.0[i] + other.0[i]))
    }
}

macro_rules! micro_kernel {
    ($name:ident, $vector:ty, $element:ty, $rows:literal $(, $features:literal)?) => {
        $(#[target_feature(enable = $features)])?
        pub(super) unsafe fn $name(
            kc: usize,
            ap: *const $element,
            bp: *const $element,
            c: *mut $element,
            ldc: usize,
            accumulate: bool,
            ahead: Ahead<$element>,
        ) {
            // SAFETY: the slivers and tile are the caller's contract (see `micro`); the
            // features enabled here are those of the `Isa` that `Kernels::micro` picked this
            // function for, which `multiply`'s caller guarantees this CPU runs.
            unsafe { micro::<$vector, $rows, 2>(kc, ap, bp, c, ldc, accumulate, ahead) }
        }
    };
}

micro_kernel!(portable_f64, Portable<f64, 4>, f64, 4);
micro_kernel!(portable_f32, Portable<f32, 8>, f32, 4);

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Ahead, Vector, micro};
    use std::arch::x86_64::*;

    macro_rules! vector {
        ($vector:ty, $element:ty, $width:literal, $zero:ident, $load:ident, $store:ident, $splat:ident, $fma:ident, $add:ident) => {
            impl Vector for $vector {
                type Element = $element;
                const WIDTH: usize = $width;
                #[inline(always)]
                unsafe fn zero() -> Self {
                    // SAFETY: registers only; the CPU has the instruction set (trait contract).
                    unsafe { $zero() }
                }
                #[inline(always)]
                unsafe fn load(p: *const $element) -> Self {
                    // SAFETY: an unaligned load (`loadu`) of WIDTH elements, readable at `p`,
                    // on a CPU with the instruction set (the trait's contract).
                    unsafe { $load(p) }
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $element) {
                    // SAFETY: an unaligned store (`storeu`) of WIDTH elements, writable at `p`,
                    // on a CPU with the instruction set (the trait's contract).
                    unsafe { $store(p, self) }
                }
                #[inline(always)]
                unsafe fn splat(x: $element) -> Self {
                    // SAFETY: registers only; the CPU has the instruction set (trait contract).
                    unsafe { $splat(x) }
                }
                #[inline(always)]
                unsafe fn mul_add(self, b: Self, acc: Self) -> Self {
                    // SAFETY: registers only; the CPU has the instruction set (trait contract).
                    unsafe { $fma(self, b, acc) }
                }
                #[inline(always)]
                unsafe fn add(self, other: Self) -> Self {
                    // SAFETY: registers only; the CPU has the instruction set (trait contract).
                    unsafe { $add(self, other) }
                }
            }
        };
    }

    vector!(
        __m512d,
        f64,
        8,
        _mm512_setzero_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_set1_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd
    );
    vector!(
        __m512,
        f32,
        16,
        _mm512_setzero_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_set1_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps
    );
    vector!(
        __m256d,
        f64,
        4,
        _mm256_setzero_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_set1_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd
    );
    vector!(
        __m256,
        f32,
        8,
        _mm256_setzero_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_set1_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps
    );

    // 12 rows × 2 vectors = 24 accumulators + 2 B vectors + 1 broadcast of the 32 AVX-512
    // registers; 6 × 2 = 12 + 3 of the 16 AVX2 ones. 14 AVX-512 rows were chosen on a Xeon
    // with a 48 KiB L1; on Zen 4's 32 KiB L1, where a 14 KiB f64 sliver beside a 16 KiB B
    // sliver leaves no room, they ran 3-5% slower than 12 rows (f64, n = 1024-4096, 1 and 2
    // threads) and level or slower for f32.
    micro_kernel!(avx512_f64, __m512d, f64, 12, "avx512f");
    micro_kernel!(avx512_f32, __m512, f32, 12, "avx512f");
    micro_kernel!(avx2_f64, __m256d, f64, 6, "avx2,fma");
    micro_kernel!(avx2_f32, __m256, f32, 6, "avx2,fma");
}

/// One `Micro`: an `mr` × `nr` micro-kernel with the packers for exactly that shape.
macro_rules! micro {
    ($mr:literal, $nr:expr, $kc_bytes:expr, $run:expr) => {
        Micro {
            mr: $mr,
            nr: $nr,
            kc_bytes: $kc_bytes,
            run: $run,
            pack_a: pack_a::<Self, $mr>,
            pack_b: pack_b::<Self, { $nr }>,
        }
    };
}

macro_rules! kernels {
    ($element:ty, $portable:ident, $avx512:ident, $avx2:ident, $width512:literal, $width256:literal, $portable_width:literal) => {
        impl sealed::Kernels for $element {
            fn micro(isa: Isa) -> Micro<Self> {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => micro!(12, 2 * $width512, KC_BYTES_AVX512, x86::$avx512),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2Fma => micro!(6, 2 * $width256, KC_BYTES, x86::$avx2),
                    Isa::Portable => micro!(4, 2 * $portable_width, KC_BYTES, $portable),
                }
            }
        }
    };
}

kernels!(f64, portable_f64, avx512_f64, avx2_f64, 8, 4, 4);
kernels!(f32, portable_f32, avx512_f32, avx2_f32, 16, 8, 8);

/// How the product is cut for one element type and micro-kernel width.
#[derive(Clone, Copy, Debug)]
struct Blocks {
    /// Depth of a packed panel (steps of k per micro-kernel call).
    kc: usize,
    /// Columns of B packed at once, a multiple of the micro-kernel width.
    nc: usize,
}

impl Blocks {
    /// kc from the kernel's bytes per sliver row (`kc_bytes`); nc so the kc×nc panel of B
    /// fills half the L2, leaving the rest for C's rows and the A sliver's way in.
    fn for_cache<T>(nr: usize, kc_bytes: usize, l2_bytes: usize) -> Self {
        let size = std::mem::size_of::<T>();
        let kc = kc_bytes / size;
        let nc = (l2_bytes / 2 / (kc * size) / nr).max(1) * nr;
        Blocks { kc, nc }
    }
}

/// The L2 cache of CPU 0 in bytes, from sysfs ("2048K"); [`DEFAULT_L2_BYTES`] when unknown.
fn l2_bytes() -> usize {
    static L2: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *L2.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index2/size")
            .ok()
            .and_then(|text| parse_cache_size(text.trim()))
            .unwrap_or(DEFAULT_L2_BYTES)
    })
}

/// "2048K" → 2 MiB, "1M" → 1 MiB, "512" → 512 bytes; None for anything else or zero.
fn parse_cache_size(text: &str) -> Option<usize> {
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let scale = match unit {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        _ => return None,
    };
    let bytes = digits.parse::<usize>().ok()?.checked_mul(scale)?;
    (bytes > 0).then_some(bytes)
}

/// A read-only matrix given by its first element and its row and column strides (in elements).
#[derive(Clone, Copy)]
pub(crate) struct MatRef<T> {
    pub ptr: *const T,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: isize,
    pub col_stride: isize,
}

/// A row-major output matrix, rows `row_stride` elements apart.
#[derive(Clone, Copy)]
pub(crate) struct MatMut<T> {
    pub ptr: *mut T,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

// SAFETY: the pointers are only dereferenced inside `multiply`, whose caller guarantees they are
// valid for its duration (its scoped threads end before it returns). Through a MatRef the
// threads only read A and B, which `T: Sync` allows from several threads at once.
unsafe impl<T: Sync> Send for MatRef<T> {}
// SAFETY: as for MatRef, valid while `multiply` runs; `multiply_with` sends each thread a
// MatMut of its own rows or columns of C, so no element is written by two threads or read by
// one while another writes it.
unsafe impl<T: Send> Send for MatMut<T> {}

impl<T> MatRef<T> {
    /// The address of element (row, col).
    ///
    /// # Safety
    /// (row, col) must lie inside the matrix.
    unsafe fn at(&self, row: usize, col: usize) -> *const T {
        // SAFETY: element (row, col) lives at ptr + row·row_stride + col·col_stride, inside
        // the memory the matrix describes (the caller's contract), so the offset stays in
        // that allocation.
        unsafe {
            self.ptr
                .offset(row as isize * self.row_stride + col as isize * self.col_stride)
        }
    }

    // The sub-matrices' pointers use wrapping arithmetic: a range of a matrix without columns
    // (k = 0) has no element to point at, and nothing reads one except through `at`.
    fn rows_range(self, start: usize, len: usize) -> Self {
        let ptr = self.ptr.wrapping_offset(start as isize * self.row_stride);
        MatRef {
            ptr,
            rows: len,
            ..self
        }
    }

    fn cols_range(self, start: usize, len: usize) -> Self {
        let ptr = self.ptr.wrapping_offset(start as isize * self.col_stride);
        MatRef {
            ptr,
            cols: len,
            ..self
        }
    }
}

impl<T> MatMut<T> {
    // Wrapping arithmetic as for MatRef: a C without columns has no element to point at.
    fn rows_range(self, start: usize, len: usize) -> Self {
        let ptr = self.ptr.wrapping_add(start * self.row_stride);
        MatMut {
            ptr,
            rows: len,
            ..self
        }
    }

    fn cols_range(self, start: usize, len: usize) -> Self {
        let ptr = self.ptr.wrapping_add(start);
        MatMut {
            ptr,
            cols: len,
            ..self
        }
    }
}

/// C = A·B (C is overwritten), split over `threads` threads, with the `isa` kernels.
///
/// # Safety
/// `a`, `b` and `c` must describe valid memory for their shapes, C must not overlap A or B,
/// and `a.cols == b.rows`, `c.rows == a.rows`, `c.cols == b.cols`; `isa` must be one this CPU
/// runs (as [`Isa::chosen`] returns).
pub(crate) unsafe fn multiply<T: Scalar>(
    isa: Isa,
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    threads: usize,
) {
    debug_assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "shapes checked by the caller"
    );
    let micro = T::micro(isa);
    let blocks = Blocks::for_cache::<T>(micro.nr, micro.kc_bytes, l2_bytes());
    // SAFETY: the matrices are as `multiply_with` needs (our caller's contract), and `micro`
    // is the kernel of `isa`, which this CPU runs (also our caller's contract).
    unsafe { multiply_with(micro, blocks, a, b, c, threads) }
}

/// [`multiply`] with a chosen micro-kernel and blocking (tests run every kernel the CPU
/// supports, and small blocks so small matrices still span several panels).
///
/// # Safety
/// As for [`multiply`], with `micro` a kernel this CPU runs. (Blocks of size 0 panic in
/// `step_by`; they cannot make it read out of bounds.)
unsafe fn multiply_with<T: Scalar>(
    micro: Micro<T>,
    blocks: Blocks,
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
    threads: usize,
) {
    let (m, n) = (c.rows, c.cols);
    // Each thread takes its own strip of C, in whole micro-tiles, and packs everything it reads
    // itself: nothing one thread writes is read by another. A strip of rows packs all of B
    // again in every thread, a strip of columns all of A, so columns are cut only when A is
    // the much smaller one (C more than twice as wide as tall). Measured on an AMD EPYC Zen 5
    // (2 vCPU, 2 threads, 2026-12-01): square products ran up to 10% faster in row strips than
    // in column strips sharing one packed A at a barrier (the design before; level at some sizes
    // and moments) and 4-5% faster than column strips each packing all of A; at m = n/2 the two
    // were level, at m = n/4 to n/8 column strips won by up to 6%.
    let split_rows = 2 * m >= n;
    let (extent, unit) = if split_rows {
        (m, micro.mr)
    } else {
        (n, micro.nr)
    };
    let parts = threads.clamp(1, extent.div_ceil(unit).max(1));
    let chunk = extent.div_ceil(parts).div_ceil(unit) * unit;
    if parts == 1 {
        // SAFETY: our own contract, with all of C on this thread.
        unsafe { serial(micro, blocks, a, b, c) };
        return;
    }
    std::thread::scope(|scope| {
        for start in (0..extent).step_by(chunk) {
            let len = chunk.min(extent - start);
            let (a, b, c) = if split_rows {
                (a.rows_range(start, len), b, c.rows_range(start, len))
            } else {
                (a, b.cols_range(start, len), c.cols_range(start, len))
            };
            // SAFETY: each thread gets a strip start..start+len inside C (start < extent) and
            // the same strip of A's rows or B's columns, so the product's shapes still match;
            // the strips are disjoint, so no two threads touch the same element of C; and
            // the scope joins every thread before `multiply` returns, while the memory is
            // still valid.
            scope.spawn(move || unsafe { serial(micro, blocks, a, b, c) });
        }
    });
}

/// The blocked product on the calling thread.
///
/// # Safety
/// As for [`multiply_with`].
unsafe fn serial<T: Scalar>(
    micro: Micro<T>,
    blocks: Blocks,
    a: MatRef<T>,
    b: MatRef<T>,
    c: MatMut<T>,
) {
    let (m, n, k) = (c.rows, c.cols, a.cols);
    let (mr, nr) = (micro.mr, micro.nr);
    if k == 0 {
        for i in 0..m {
            // SAFETY: row i < m of C has n writable elements from ptr + i·row_stride, and no
            // other reference to them exists while this thread owns its part of C.
            unsafe {
                std::slice::from_raw_parts_mut(c.ptr.add(i * c.row_stride), n).fill(T::default())
            };
        }
        return;
    }
    let (kc_max, nc_max) = (blocks.kc, blocks.nc);
    let slivers = m.div_ceil(mr);
    // A full-size B panel whatever n is, so one spare buffer serves every later product.
    let mut b_buffer = PackBuffer::new(kc_max * nc_max);
    let b_packed = b_buffer.as_mut_slice();
    let mut a_buffer = PackBuffer::<T>::new(kc_max * mr * slivers);
    let a_packed = a_buffer.as_mut_slice().as_mut_ptr();
    let mut edge = vec![T::default(); mr * nr];
    for pc in (0..k).step_by(kc_max) {
        let kc = kc_max.min(k - pc);
        // All of A's kc-deep column panel is packed once and reused for every panel of B:
        // packing it again per B panel cost 4-9% of an f32 product (AVX2, n = 2048).
        for (s, i0) in (0..m).step_by(mr).enumerate() {
            let height = mr.min(m - i0);
            // SAFETY: the buffer holds kc_max·mr·slivers elements, and sliver s < slivers with
            // kc ≤ kc_max ends at (s+1)·kc·mr within it; slivers do not overlap, and no other
            // reference into the buffer is live.
            let sliver =
                unsafe { std::slice::from_raw_parts_mut(a_packed.add(s * kc * mr), kc * mr) };
            // SAFETY: rows i0..i0+height (i0 < m, height ≤ m − i0) and columns pc..pc+kc
            // (pc + kc ≤ k) lie inside A.
            unsafe { (micro.pack_a)(a, i0, height, pc, kc, sliver) };
        }
        for jc in (0..n).step_by(nc_max) {
            let nc = nc_max.min(n - jc);
            // SAFETY: rows pc..pc+kc (pc + kc ≤ k, B's rows) and columns jc..jc+nc
            // (jc + nc ≤ n) lie inside B.
            unsafe { (micro.pack_b)(b, pc, kc, jc, nc, b_packed) };
            for (s, i0) in (0..m).step_by(mr).enumerate() {
                let height = mr.min(m - i0);
                // SAFETY: sliver s < slivers lies inside the A buffer (as when it was packed).
                let ap = unsafe { a_packed.add(s * kc * mr) }.cast_const();
                // The next sliver (the first again after the last: the next panel of B starts
                // there) comes from L3 or memory; the tiles along this row ask for it a share
                // each, so it is in L1 when its row starts. Waiting for it there cost 5-10% of
                // a 4096² f32 product, more when the machine's other tenants were busy
                // (AVX-512, Zen 5, one thread: 216-231 GFLOP/s without, 242-248 with).
                let next = a_packed.wrapping_add((s + 1) % slivers * kc * mr);
                let lines = (kc * mr * size_of::<T>()).div_ceil(LINE);
                let share = lines.div_ceil(nc.div_ceil(nr));
                for (sj, j0) in (0..nc).step_by(nr).enumerate() {
                    let width = nr.min(nc - j0);
                    // SAFETY: the tile's corner (i0, jc+j0) is inside C (i0 < m, jc+j0 < n); a
                    // full tile's mr rows and nr columns are inside C too, and a ragged one is
                    // computed into `edge` (mr×nr) and only its height×width part written to
                    // C. `ap` holds kc·mr packed elements; `bp`, sliver sj of the B panel,
                    // holds kc·nr that `pack_b` just wrote (its checked slice indexing would
                    // have panicked had the buffer been short). `micro.run` is the kernel of
                    // an instruction set this CPU runs. The `ahead` lines are only prefetched.
                    unsafe {
                        let tile = c.ptr.add(i0 * c.row_stride + jc + j0);
                        let bp = b_packed.as_ptr().add(sj * kc * nr);
                        if height == mr && width == nr {
                            let ahead = Ahead {
                                start: next.wrapping_add(sj * share * LINE / size_of::<T>()),
                                lines: share.min(lines.saturating_sub(sj * share)),
                            };
                            (micro.run)(kc, ap, bp, tile, c.row_stride, pc > 0, ahead);
                        } else {
                            // A ragged edge: compute the full tile aside, keep the part inside C.
                            (micro.run)(kc, ap, bp, edge.as_mut_ptr(), nr, false, Ahead::NOTHING);
                            for i in 0..height {
                                for j in 0..width {
                                    let out = tile.add(i * c.row_stride + j);
                                    let value = edge[i * nr + j];
                                    *out = if pc > 0 { *out + value } else { value };
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Packs B[pc..pc+kc, jc..jc+nc] as slivers of `NR` columns, each k-major, zero-padded.
///
/// # Safety
/// Rows pc..pc+kc and columns jc..jc+nc must lie inside `b`.
unsafe fn pack_b<T: Scalar, const NR: usize>(
    b: MatRef<T>,
    pc: usize,
    kc: usize,
    jc: usize,
    nc: usize,
    out: &mut [T],
) {
    let mut first_ragged = 0;
    if b.col_stride == 1 {
        // The common case, a row-major B: each row of the panel is read once, in order, and
        // dealt out NR elements to a sliver, a fixed-size copy the compiler inlines as a few
        // vector moves. A runtime-length copy called memmove for every 64 bytes (5.7% of an
        // f32 product, AVX2, n = 1024, 2 threads), and going sliver by sliver read B in 64-byte
        // pieces a whole row apart (4.2%).
        let full = nc / NR;
        for p in 0..kc {
            // SAFETY: row pc+p, columns jc .. jc+full·NR are inside B.
            let row = unsafe { std::slice::from_raw_parts(b.at(pc + p, jc), full * NR) };
            for (s, chunk) in row.chunks_exact(NR).enumerate() {
                let at = (s * kc + p) * NR;
                out[at..at + NR].copy_from_slice(chunk);
            }
        }
        first_ragged = full * NR;
    }
    for (s, j0) in (first_ragged..nc).step_by(NR).enumerate() {
        let s = s + first_ragged / NR;
        let width = NR.min(nc - j0);
        let sliver = &mut out[s * kc * NR..(s + 1) * kc * NR];
        for p in 0..kc {
            let dst = &mut sliver[p * NR..(p + 1) * NR];
            // SAFETY: row pc+p, columns jc+j0 .. jc+j0+width are inside B.
            let src = unsafe { b.at(pc + p, jc + j0) };
            for (j, slot) in dst[..width].iter_mut().enumerate() {
                // SAFETY: j < width, so this is element (pc+p, jc+j0+j), inside B.
                *slot = unsafe { *src.offset(j as isize * b.col_stride) };
            }
            dst[width..].fill(T::default());
        }
    }
}

/// Packs A[i0..i0+height, pc..pc+kc] as one sliver of `MR` rows, k-major, zero-padded.
///
/// # Safety
/// Rows i0..i0+min(height, MR) and columns pc..pc+kc must lie inside `a`.
unsafe fn pack_a<T: Scalar, const MR: usize>(
    a: MatRef<T>,
    i0: usize,
    height: usize,
    pc: usize,
    kc: usize,
    out: &mut [T],
) {
    let sliver = &mut out[..kc * MR];
    if height == MR && a.col_stride == 1 {
        // The common case, a full sliver of a row-major A: MR rows read side by side, the
        // sliver written in order. With MR known at compile time this is straight-line code;
        // a generic loop here cost 6-8% of an f32 product (AVX2, n = 2048, perf).
        // SAFETY: rows i0..i0+MR, columns pc..pc+kc are inside A.
        let rows: [&[T]; MR] =
            std::array::from_fn(|i| unsafe { std::slice::from_raw_parts(a.at(i0 + i, pc), kc) });
        for (p, step) in sliver.chunks_exact_mut(MR).enumerate() {
            for (slot, row) in step.iter_mut().zip(&rows) {
                *slot = row[p];
            }
        }
        return;
    }
    // Eight k at a time: each row is read in short contiguous runs while the writes stay in a
    // few cache lines of the sliver.
    const K_STEP: usize = 8;
    for p0 in (0..kc).step_by(K_STEP) {
        for i in 0..MR {
            for p in p0..(p0 + K_STEP).min(kc) {
                sliver[p * MR + i] = if i < height {
                    // SAFETY: (i0+i, pc+p) is inside A.
                    unsafe { *a.at(i0 + i, pc + p) }
                } else {
                    T::default()
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_major<T>(data: &[T], rows: usize, cols: usize) -> MatRef<T> {
        MatRef {
            ptr: data.as_ptr(),
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for p in 0..k {
                for j in 0..n {
                    c[i * n + j] += a[i * k + p] * b[p * n + j];
                }
            }
        }
        c
    }

    fn filled(len: usize, seed: u64) -> Vec<f64> {
        (0..len as u64)
            .map(|i| ((i * 7919 + seed * 104_729) % 1009) as f64 / 1009.0 - 0.5)
            .collect()
    }

    /// Every kernel this CPU can run, not just the widest: the portable one runs everywhere.
    fn kernels<T: Scalar>() -> Vec<Micro<T>> {
        Isa::available().into_iter().map(T::micro).collect()
    }

    fn check<T: Scalar>(m: usize, k: usize, n: usize, threads: usize, tolerance: f64) {
        check_blocked::<T>(m, k, n, threads, tolerance, None)
    }

    /// `blocks`: None for the blocking `multiply` picks on this machine.
    fn check_blocked<T: Scalar>(
        m: usize,
        k: usize,
        n: usize,
        threads: usize,
        tolerance: f64,
        blocks: Option<Blocks>,
    ) {
        let (a64, b64) = (filled(m * k, 1), filled(k * n, 2));
        let want = naive(&a64, &b64, m, k, n);
        let a: Vec<T> = a64.iter().map(|x| T::from_f64(*x)).collect();
        let b: Vec<T> = b64.iter().map(|x| T::from_f64(*x)).collect();
        for micro in kernels::<T>() {
            // Pre-filled with junk: the product must overwrite C, not add to it.
            let mut c = vec![T::from_f64(9.0); m * n];
            let a_ref = row_major(&a, m, k);
            let b_ref = row_major(&b, k, n);
            let c_mut = MatMut {
                ptr: c.as_mut_ptr(),
                rows: m,
                cols: n,
                row_stride: n,
            };
            let blocks = blocks
                .unwrap_or_else(|| Blocks::for_cache::<T>(micro.nr, micro.kc_bytes, l2_bytes()));
            // SAFETY: A, B and C are live vectors of m·k, k·n and m·n elements, described
            // row-major with matching shapes, and C is a vector of its own; `micro` comes from
            // `Isa::available`, so this CPU runs it.
            unsafe { multiply_with(micro, blocks, a_ref, b_ref, c_mut, threads) };
            for (i, (got, want)) in c.iter().zip(&want).enumerate() {
                assert!(
                    (got.to_f64() - want).abs() <= tolerance * (k as f64).max(1.0),
                    "{m}x{k}x{n} on {threads} threads, mr {}, {blocks:?}: element {i} is {got:?}, want {want}",
                    micro.mr
                );
            }
        }
    }

    #[test]
    fn matches_the_textbook_product_on_ragged_shapes() {
        for (m, k, n) in [
            (1, 1, 1),
            (13, 7, 5),
            (29, 300, 33),
            (64, 513, 17),
            (3, 2, 70),
            (7, 40, 300),
            (100, 0, 9),
        ] {
            for threads in [1, 3] {
                check::<f64>(m, k, n, threads, 1e-14);
                check::<f32>(m, k, n, threads, 1e-6);
            }
        }
    }

    #[test]
    fn spans_several_panels_in_every_direction() {
        // k > kc and n > nc for every kernel, with this machine's blocking and with small
        // blocks that cut even these shapes into several panels with ragged last ones.
        let small = Blocks { kc: 5, nc: 64 };
        for blocks in [None, Some(small)] {
            check_blocked::<f64>(150, 600, 70, 2, 1e-14, blocks);
            check_blocked::<f32>(3, 600, 130, 1, 1e-6, blocks);
        }
        let wide = Blocks::for_cache::<f32>(32, KC_BYTES_AVX512, l2_bytes());
        check::<f32>(3, 5, wide.nc + 100, 1, 1e-6);
    }

    #[test]
    fn blocks_fill_half_the_l2_in_whole_micro_tiles() {
        let blocks = Blocks::for_cache::<f64>(16, KC_BYTES, 2 << 20);
        assert_eq!((blocks.kc, blocks.nc), (128, 1024));
        let blocks = Blocks::for_cache::<f32>(32, KC_BYTES, 2 << 20);
        assert_eq!((blocks.kc, blocks.nc), (256, 1024));
        let blocks = Blocks::for_cache::<f64>(16, KC_BYTES_AVX512, 2 << 20);
        assert_eq!((blocks.kc, blocks.nc), (256, 512));
        // A tiny cache still gets one whole micro-tile of columns.
        assert_eq!(Blocks::for_cache::<f64>(16, KC_BYTES, 4096).nc, 16);
    }

    #[test]
    fn reads_sysfs_cache_sizes() {
        assert_eq!(parse_cache_size("2048K"), Some(2 << 20));
        assert_eq!(parse_cache_size("1M"), Some(1 << 20));
        assert_eq!(parse_cache_size("512"), Some(512));
        for bad in ["", "K", "0K", "2048KiB", "-1K", "99999999999999999999K"] {
            assert_eq!(parse_cache_size(bad), None, "{bad:?}");
        }
        assert!(l2_bytes() > 0);
    }

    #[test]
    fn reads_transposed_inputs_through_their_strides() {
        let (m, k, n) = (9, 11, 21);
        let a = filled(m * k, 3);
        let b = filled(k * n, 4);
        let want = naive(&a, &b, m, k, n);
        // Store A column-major: element (i, p) at p*m + i.
        let a_t: Vec<f64> = (0..k * m).map(|x| a[(x % m) * k + x / m]).collect();
        let mut c = vec![0.0; m * n];
        let a_ref = MatRef {
            ptr: a_t.as_ptr(),
            rows: m,
            cols: k,
            row_stride: 1,
            col_stride: m as isize,
        };
        let b_ref = row_major(&b, k, n);
        // SAFETY: `a_t` holds A's m·k elements column-major (strides 1 and m), `b` B's k·n
        // row-major, `c` a vector of its own for the m·n result; `Isa::detect` names an
        // instruction set this CPU runs.
        unsafe {
            multiply(
                Isa::detect(),
                a_ref,
                b_ref,
                MatMut {
                    ptr: c.as_mut_ptr(),
                    rows: m,
                    cols: n,
                    row_stride: n,
                },
                2,
            )
        };
        for (got, want) in c.iter().zip(&want) {
            assert!((got - want).abs() < 1e-12);
        }
    }
}
