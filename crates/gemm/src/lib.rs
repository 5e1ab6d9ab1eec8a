//! Chapter 4's machinery: our own CPU matrix-multiply kernel ([`matmul`]), cuBLAS through cudarc
//! on a GPU when one is there ([`gpu`] probes for it and never panics), and the FMA peak
//! ([`peak`]) that chapter 0 measures and chapter 4 holds every point against.

#![warn(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod gpu;
pub mod isa;
pub mod matmul;
pub mod peak;
