//! The cost ladder from a terminal: every kind of worker measured by one method, and the probe
//! each measurement runs in (a fresh process, started by the ladder itself).

use super::{print, print_json};
use virtlab::cost::{self, Ladder};
use virtlab::{Result, release};

/// `virtlab ladder`: measures `kinds` at `counts` (`rounds` fresh probe processes per count).
pub fn ladder(kinds: &[String], counts: &[usize], rounds: usize, json: bool) -> Result<()> {
    for kind in kinds {
        cost::check(kind, counts, rounds)?;
    }
    let mut ladder = Ladder::saved()?;
    for kind in kinds {
        ladder.measure(kind, counts, rounds)?;
    }
    print(&ladder, json, Ladder::table)
}

/// `virtlab ladder-probe`: one round, as JSON (run by `ladder`, not usually by hand).
pub fn probe(kind: &str, count: usize) -> Result<()> {
    release::die_with_parent();
    print_json(&cost::probe(kind, count)?)
}
