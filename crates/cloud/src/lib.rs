//! virtlab-cloud: chapter 9's economics and serving machinery.
//!
//! Published prices as data ([`prices`]), the bill of a measured usage record ([`bill`]),
//! break-even and "coin play" ([`breakeven`]), a seeded request trace ([`trace`]) and elastic
//! serving with real processes and real cold starts ([`serve`]), whose instances speak the
//! request protocol of [`requests`]; one job description for every backend ([`job`]); noisy neighbours and overcommit ([`neighbours`]), and which layers a program runs in
//! ([`whereami`]).
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod bill;
pub mod breakeven;
pub mod error;
pub mod instance;
pub mod job;
pub mod neighbours;
pub mod prices;
pub mod requests;
pub mod serve;
pub mod trace;
pub mod whereami;
pub mod work;

#[cfg(test)]
mod test_support;

pub use error::{Error, ErrorKind, Result};
