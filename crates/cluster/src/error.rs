//! The lab's one error type (the core's): what went wrong, what to do about it, and of which
//! kind, so a caller can tell bad input from a missing facility.

pub use virtlab_core::error::{Error, ErrorKind, Result};
