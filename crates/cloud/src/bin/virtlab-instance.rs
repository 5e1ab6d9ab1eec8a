//! `virtlab-instance`: one serving instance as a plain process.
//!
//! Says `ready` on stdout once started, then answers each request line `<samples> <seed>` on
//! stdin with `<hits> <work_ns>` (the Monte Carlo hit count and the time the work took). It
//! exits when stdin closes, so an instance never outlives the front that owns its pipe.

use std::io::{BufRead, Write};
use virtlab_cloud::work::monte_carlo_hits;

fn parse(line: &str) -> Option<(u64, u64)> {
    let mut words = line.split_whitespace();
    let samples = words.next()?.parse().ok()?;
    let seed = words.next()?.parse().ok()?;
    words.next().is_none().then_some((samples, seed))
}

fn main() {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if writeln!(out, "ready").and_then(|_| out.flush()).is_err() {
        return;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        let Some((samples, seed)) = parse(&line) else {
            eprintln!(
                "virtlab error: virtlab-instance got the request line {line:?}. Fix: send `<samples> <seed>`, two whole numbers"
            );
            std::process::exit(2);
        };
        let start = std::time::Instant::now();
        let hits = monte_carlo_hits(samples, seed);
        let work_ns = start.elapsed().as_nanos();
        if writeln!(out, "{hits} {work_ns}")
            .and_then(|_| out.flush())
            .is_err()
        {
            return;
        }
    }
}
