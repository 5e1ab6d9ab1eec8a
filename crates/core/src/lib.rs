//! The spine of virtlab: the one [`Work`](work::Work) every kind of worker runs, the one
//! [executor] every kind implements (with the first kinds: [processes] and
//! [threads]), the timeline and the process explorer that show any kind the same way, the cost
//! ladder every kind takes its rung on, and the errors, units and stored results every chapter
//! shares.
//!
//! The notebooks and the `virtlab` program use the facade crate `virtlab`, which re-exports these
//! modules under the same names; the crates of the heavy parts (the GEMM kernel, the VMM, the
//! containers, the language VMs) build their kinds of worker on this crate and never on each
//! other.
//!
//! ```
//! use virtlab_core::work::Work;
//! let work = Work::new("errand", 3, 10)?;
//! assert_eq!(work.iterations(), 3);
//! # Ok::<(), virtlab_core::Error>(())
//! ```

#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod cost;
pub mod error;
pub mod executor;
pub mod hits;
pub mod limits;
pub mod load;
pub mod machine;
pub mod memory;
pub mod observer;
pub mod outcome;
pub mod processes;
pub mod procfs;
pub mod protocol;
pub mod release;
pub mod stats;
pub mod store;
pub mod strict;
pub mod threads;
pub mod timeline;
pub mod traps;
pub mod units;
pub mod work;

pub use error::{Error, Result};
