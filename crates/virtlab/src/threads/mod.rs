//! Chapter 2: one process, many threads. The thread as a kind of worker ([`Threads`], from the
//! core, run by the shared [`executor`](crate::executor)); CPU-bound scaling with std threads and
//! rayon against Amdahl's law ([`scaling`]); and the price of sharing one counter between
//! threads ([`sharing`]).
//!
//! ```
//! use virtlab::{executor::Options, threads, work::Work};
//!
//! let run = threads::run(&Work::new("thread", 2, 10)?, 3, Options::quiet())?;
//! assert_eq!(run.timeline.pids(), vec![std::process::id()]); // one process, three threads
//! # Ok::<(), virtlab::Error>(())
//! ```

pub use virtlab_core::threads::*;

#[cfg(feature = "threads")]
pub mod scaling;
#[cfg(feature = "threads")]
pub mod sharing;

#[cfg(feature = "threads")]
pub use scaling::{Scaling, scale};
#[cfg(feature = "threads")]
pub use sharing::SharingCosts;
