//! Memory for the CPU product: packing buffers that are kept and reused from one product to
//! the next, and large arrays that Linux is asked to back with huge pages.
//!
//! Reuse matters because a fresh buffer is a fresh `mmap`: page faults and zeroing in every
//! product until malloc's thresholds adapt. On the project's VM that made the first three timed
//! products at n = 1024 f32 (two threads) 9.4-10 ms instead of 8.2 ms; numpy keeps its buffers.

use super::kernel::Scalar;
use ndarray::{Array1, s};
use std::alloc::{Layout, alloc_zeroed, dealloc, handle_alloc_error};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::Mutex;

/// Bytes of one cache line, the alignment of every packing buffer.
const LINE: usize = 64;
/// Spare buffers kept at most; a product takes two per thread, and more spares than that would
/// only hold memory.
const SPARES_KEPT: usize = 16;

/// A zero-initialised, cache-line-aligned allocation.
struct Block {
    ptr: NonNull<u8>,
    bytes: usize,
}

// SAFETY: a Block owns its allocation outright; moving it between threads moves that ownership.
unsafe impl Send for Block {}

impl Block {
    fn layout(bytes: usize) -> Layout {
        Layout::from_size_align(bytes.max(1), LINE)
            .expect("packing buffers are far below isize::MAX")
    }

    fn zeroed(bytes: usize) -> Block {
        let layout = Block::layout(bytes);
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout));
        Block { ptr, bytes }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), Block::layout(self.bytes)) }
    }
}

/// Buffers given back by finished products, ready for the next one.
struct Spares {
    blocks: Vec<Block>,
}

impl Spares {
    const fn new() -> Spares {
        Spares { blocks: Vec::new() }
    }

    fn take(&mut self, bytes: usize) -> Option<Block> {
        let at = self.blocks.iter().position(|block| block.bytes == bytes)?;
        Some(self.blocks.swap_remove(at))
    }

    /// Keeps `block`, letting the oldest spare go when [`SPARES_KEPT`] are already kept: the
    /// newest match the sizes products use now.
    fn give(&mut self, block: Block) {
        if self.blocks.len() == SPARES_KEPT {
            self.blocks.remove(0);
        }
        self.blocks.push(block);
    }
}

static SPARES: Mutex<Spares> = Mutex::new(Spares::new());

/// A buffer of `len` elements for packed A or B slivers, starting on a cache line: a 64-byte
/// vector load that straddles two lines costs two (measured 80-88 vs 101-113 GFLOP/s for the
/// in-L1 AVX-512 kernel). Taken from the spares when one of the same size is there, and given
/// back when dropped.
pub(crate) struct PackBuffer<T> {
    block: Option<Block>,
    len: usize,
    element: PhantomData<T>,
}

impl<T: Scalar> PackBuffer<T> {
    pub(crate) fn new(len: usize) -> Self {
        let bytes = len * size_of::<T>();
        let spare = SPARES.lock().ok().and_then(|mut spares| spares.take(bytes));
        PackBuffer {
            block: Some(spare.unwrap_or_else(|| Block::zeroed(bytes))),
            len,
            element: PhantomData,
        }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [T] {
        let block = self.block.as_ref().expect("present until dropped");
        // SAFETY: the block holds `len` elements' bytes, aligned to 64 (≥ T's alignment), all
        // initialised (zeroed at allocation, floats since); `Scalar` is sealed to f32 and f64,
        // for which every bit pattern is a value, so another type's old floats are fine too; and
        // `&mut self` makes this the only view of them.
        unsafe { std::slice::from_raw_parts_mut(block.ptr.as_ptr().cast::<T>(), self.len) }
    }
}

impl<T> Drop for PackBuffer<T> {
    fn drop(&mut self) {
        if let (Some(block), Ok(mut spares)) = (self.block.take(), SPARES.lock()) {
            spares.give(block);
        }
    }
}

/// Bytes of a huge page, and the size from which an array is put on them (as numpy does).
const HUGE_PAGE: usize = 2 << 20;
const HUGE_FROM: usize = 4 << 20;

/// `len` uninitialised elements that Linux is asked to back with 2 MiB pages before they are
/// first touched, starting on a 2 MiB boundary when they take 4 MiB or more.
///
/// A fresh 32 MiB result otherwise takes ~8000 page faults, measured at ~15% of a 2048² product
/// on the project's VM. The boundary matters too: malloc's mapping of a 64 MiB array starts
/// anywhere, and the pieces before the first and after the last 2 MiB boundary (~2 MiB together)
/// stay on 4 KiB pages, ~510 faults in every product at n = 4096 f32, where numpy's arrays
/// happened to start on a boundary and took ~33. Starting on one ran our products 1-3% faster
/// (AMD EPYC Zen 5, AVX-512, n = 2048-4096, interleaved pairs). The up to 2 MiB of room before
/// the array is never touched, so it takes address space only.
pub(crate) fn huge_page_array<T>(len: usize) -> Array1<MaybeUninit<T>> {
    let bytes = len * size_of::<T>();
    let room = if cfg!(target_os = "linux") && bytes >= HUGE_FROM {
        HUGE_PAGE / size_of::<T>().max(1)
    } else {
        0
    };
    let mut storage: Vec<MaybeUninit<T>> = Vec::with_capacity(len + room);
    // SAFETY: MaybeUninit elements need no initialisation.
    unsafe { storage.set_len(len + room) };
    let address = storage.as_ptr() as usize;
    let skip = if room > 0 {
        (address.next_multiple_of(HUGE_PAGE) - address) / size_of::<T>()
    } else {
        0
    };
    #[cfg(target_os = "linux")]
    if room > 0 {
        // SAFETY: the range lies inside `storage` (up to the end of its last page, which is
        // the allocation's too); MADV_HUGEPAGE changes only how it is backed. A refusal (THP
        // disabled) leaves ordinary pages, which is fine.
        unsafe {
            libc::madvise(
                (address + skip * size_of::<T>()) as *mut libc::c_void,
                bytes,
                libc::MADV_HUGEPAGE,
            )
        };
    }
    Array1::from_vec(storage).slice_move(s![skip..skip + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_buffers_start_on_a_cache_line() {
        for len in [1, 7, 1000, 1 << 20] {
            let mut buffer = PackBuffer::<f64>::new(len);
            let slice = buffer.as_mut_slice();
            assert_eq!(slice.len(), len);
            assert_eq!(slice.as_ptr() as usize % LINE, 0, "len {len}");
        }
    }

    #[test]
    fn a_buffer_given_back_is_taken_again_by_size_and_the_oldest_go_first() {
        let mut spares = Spares::new();
        let first = Block::zeroed(4096);
        let address = first.ptr;
        spares.give(first);
        assert!(spares.take(2048).is_none());
        let again = spares.take(4096).expect("the spare of that size");
        assert_eq!(again.ptr, address);
        spares.give(again);
        for _ in 0..SPARES_KEPT {
            spares.give(Block::zeroed(64));
        }
        assert_eq!(spares.blocks.len(), SPARES_KEPT);
        assert!(spares.take(4096).is_none(), "the oldest spare went first");
    }

    #[test]
    fn large_arrays_start_on_a_huge_page_and_small_ones_are_just_the_length() {
        for len in [0, 1, 1000, (HUGE_FROM / 8) - 1] {
            assert_eq!(huge_page_array::<f64>(len).len(), len);
        }
        for len in [HUGE_FROM / 8, 3 << 20, 9 << 20] {
            let array = huge_page_array::<f64>(len);
            assert_eq!(array.len(), len);
            if cfg!(target_os = "linux") {
                assert!(
                    (array.as_ptr() as usize).is_multiple_of(HUGE_PAGE),
                    "len {len}"
                );
            }
        }
        let f32s = huge_page_array::<f32>(HUGE_FROM / 4);
        assert!(!cfg!(target_os = "linux") || (f32s.as_ptr() as usize).is_multiple_of(HUGE_PAGE));
    }
}
