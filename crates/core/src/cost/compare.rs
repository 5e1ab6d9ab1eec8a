//! Starts compared in words, from the cost ladder's rungs: chapters 6 (a VM beside a process)
//! and 7 (a container beside a process and a VM) say how one kind's start compared with
//! another's in this run, whichever way it came out, at the smallest and the largest count both
//! were measured at (a noisy machine can rank them differently at the two ends).

use crate::cost::{Ladder, duration_text};

/// Published, not measured here, for scale beside our kernel-less guest: Firecracker's
/// SPECIFICATION.md bounds a microVM's guest boot (a Linux kernel up to its init) at 125 ms and
/// its monitor's start at about 12 ms.
pub const FIRECRACKER: &str = "Firecracker's published specification (SPECIFICATION.md in its \
                               repository): a microVM boots a Linux guest in at most 125 ms, its \
                               monitor starting in about 12 ms";

/// Firecracker's published guest boot bound, ms (in [`FIRECRACKER`]).
pub const FIRECRACKER_BOOT_MS: f64 = 125.0;

/// Firecracker's published monitor start, ms (in [`FIRECRACKER`]).
pub const FIRECRACKER_VMM_MS: f64 = 12.0;

/// How long `a` took beside `b`, in words for a sentence: "2.3× as long as", "12× as long as",
/// "about as long as" (within 10 %), "40 % of the time of".
pub fn as_long_as(a: f64, b: f64) -> String {
    let times = a / b;
    if (0.9..=1.1).contains(&times) {
        "about as long as".into()
    } else if times >= 10.0 {
        format!("{times:.0}× as long as")
    } else if times > 1.0 {
        format!("{times:.1}× as long as")
    } else {
        format!("{:.0} % of the time of", 100.0 * times)
    }
}

/// `kind`'s start from asking to running against `other`'s on `ladder`, at the smallest and
/// the largest count both were measured at, to follow a comma: "with 1 of each alive at once, a VM went from asking
/// to running in 708.0 µs, a process in 631.0 µs: the VM took 1.1× as long as the process; with
/// 16 of each, …". `None` when no count has both.
pub fn starts(ladder: &Ladder, kind: &str, other: &str) -> Option<String> {
    let mut counts: Vec<usize> = ladder
        .rungs_of(kind)
        .into_iter()
        .map(|r| r.count)
        .filter(|&n| ladder.rung(other, n).is_some())
        .collect();
    counts.sort_unstable();
    counts.dedup();
    let (first, last) = (*counts.first()?, *counts.last()?);
    let at = |n: usize| {
        let (a, b) = (ladder.rung(kind, n)?, ladder.rung(other, n)?);
        Some((
            duration_text(a.asked_to_running_ms),
            duration_text(b.asked_to_running_ms),
            as_long_as(a.asked_to_running_ms, b.asked_to_running_ms),
        ))
    };
    let (name, other_name) = (shown(kind), shown(other));
    let (a, b, how) = at(first)?;
    let mut text = format!(
        "with {first} of each alive at once, a {name} went from asking to running in {a}, a \
         {other_name} in {b}: the {name} took {how} the {other_name}"
    );
    if last != first {
        let (a, b, how) = at(last)?;
        text += &format!("; with {last} of each, {a} against {b}: {how} the {other_name}");
    }
    Some(text + ".")
}

/// A ladder kind as prose names it.
fn shown(kind: &str) -> &str {
    match kind {
        "vm" => "VM",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cost::Rung;

    #[test]
    fn the_published_figures_are_the_ones_the_sentence_states() {
        assert!(FIRECRACKER.contains(&format!("at most {FIRECRACKER_BOOT_MS} ms")));
        assert!(FIRECRACKER.contains(&format!("about {FIRECRACKER_VMM_MS} ms")));
    }

    fn rung(kind: &str, count: usize, ms: f64) -> Rung {
        Rung::made(kind, count, ms, 0.0)
    }

    #[test]
    fn starts_are_compared_at_both_ends_whichever_way_they_came_out() {
        let ladder = Ladder {
            rungs: vec![
                rung("process", 1, 0.631),
                rung("process", 16, 2.0),
                rung("vm", 1, 0.708),
                rung("vm", 4, 9.0),
                rung("vm", 16, 1.0),
            ],
            ..Ladder::default()
        };
        let text = starts(&ladder, "vm", "process").unwrap();
        assert_eq!(
            text,
            "with 1 of each alive at once, a VM went from asking to running in 708.0 µs, a \
             process in 631.0 µs: the VM took 1.1× as long as the process; with 16 of each, \
             1.00 ms against 2.00 ms: 50 % of the time of the process."
        );
        assert_eq!(starts(&ladder, "vm", "container"), None);
        assert_eq!(as_long_as(1.05, 1.0), "about as long as");
        assert_eq!(as_long_as(35.0, 1.0), "35× as long as");
    }
}
