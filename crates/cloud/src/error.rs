//! The lab's one error type (the core's): every failure says what went wrong and how to fix it.

pub use virtlab_core::error::{Error, ErrorKind, Result};
