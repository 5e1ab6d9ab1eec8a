//! The cost ladder from a terminal: every kind of worker measured by one method, and the probe
//! each measurement runs in (a fresh process, started by the ladder itself).

use super::print_json;
use virtlab::cost::{self, Ladder};
use virtlab::{Result, kinds, release};

/// `virtlab ladder`: measures `kinds` at `counts` now (`rounds` fresh probe processes per
/// count) and prints what one more unit of each costs, then every point.
pub fn ladder(kinds: &[String], counts: &[usize], rounds: usize, json: bool) -> Result<()> {
    let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
    let ladder = Ladder::measured_anew(&kinds, counts, rounds)?;
    if json {
        return print_json(&ladder);
    }
    print!("{}\n{}", ladder.table(), ladder.points_table());
    Ok(())
}

/// `virtlab ladder-probe`: one round, as JSON (run by `ladder`, not usually by hand).
pub fn probe(kind: &str, count: usize) -> Result<()> {
    release::die_with_parent();
    print_json(&cost::probe(
        kind,
        kinds::place(kind)?,
        kinds::make(kind)?.as_mut(),
        count,
    )?)
}

/// `virtlab ladder-probe --rungs`: the rungs the registry knows, cheapest first, as JSON (how
/// the ladder checks the kinds it is asked for before measuring any).
pub fn rungs() -> Result<()> {
    print_json(&kinds::rungs())
}
