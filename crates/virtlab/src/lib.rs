//! virtlab: see how a computer shares its work — processes, threads, tasks and the GPU —
//! measured live, in Rust notebooks run by the evcxr Jupyter kernel.
//!
//! One module per idea. The notebooks under `notebooks/` and the `virtlab` command both call
//! these functions; a cell stays short because the logic lives here.
//!
//! Chapter 0 (your machine): [`machine`], [`gpu`], [`peak`]. Chapter 4 (the GPU): [`matmul`].
//! Shared base: [`display`] (inline output), [`plot`] (charts), [`error`], [`store`] (saved
//! measurements), [`strict`] (headless test runs), [`units`].

#[cfg(target_os = "linux")]
pub mod container;
pub mod cost;
pub mod display;
pub mod error;
pub mod executor;
pub mod gpu;
pub mod machine;
pub mod matmul;
pub mod memory;
pub mod observer;
pub mod outcome;
pub mod peak;
pub mod plot;
pub mod processes;
pub mod release;
pub mod store;
pub mod strict;
pub mod tasks;
pub mod threads;
pub mod timeline;
pub mod units;
pub mod work;

pub use error::{Error, Result};
