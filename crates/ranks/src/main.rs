//! `virtlab-ranks`: chapter 8's MPI program, started by mpirun across the cluster's nodes.
//! Each mode prints JSON lines on stdout that virtlab-cluster parses:
//! - `hello --iterations N --interval-ms M`: every rank's live line, with what MPI_Init cost;
//! - `hits --samples N --seed S`: a Monte Carlo hit count split over the ranks and reduced,
//!   the same for any rank count (each sample's point comes from its own index);
//! - `pingpong --sizes 8,64,… --rounds R`: ranks 0 and 1 bounce messages, one-way latency and
//!   bandwidth per size.
//!
//! Built with the `mpi` feature only (Open MPI and libclang at build time); without it, the
//! program says how to get it and exits non-zero.

mod args;
// Used by the MPI modes; its tests run in every build.
#[cfg(any(feature = "mpi", test))]
mod sample;

#[cfg(feature = "mpi")]
mod modes;

use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args::Mode::parse(&argv) {
        Ok(mode) => mode,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    run(mode)
}

#[cfg(feature = "mpi")]
fn run(mode: args::Mode) -> ExitCode {
    modes::run(mode)
}

#[cfg(not(feature = "mpi"))]
fn run(_: args::Mode) -> ExitCode {
    eprintln!(
        "virtlab error: virtlab-ranks was built without Open MPI. Fix: apt-get install openmpi-bin libopenmpi-dev libclang-dev, then scripts/setup"
    );
    ExitCode::FAILURE
}
