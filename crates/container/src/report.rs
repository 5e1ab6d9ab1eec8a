//! Chapter 7's comparison on the cost ladder, written from the ladder's own rungs: a container
//! beside a process and, when chapter 6 ran on this boot, beside our VM — with what that VM
//! leaves out (a kernel to boot) said next to its number, and a published figure for a VM that
//! boots one.

use virtlab_core::cost::Ladder;
use virtlab_core::cost::compare::starts;

/// The container's rung against a process's and a VM's, in sentences chosen for the numbers.
/// A chapter's ladder holds only the kinds it asked for: the VM's rungs come from the ladder
/// chapter 6 saved on this boot when this one has none, and the sentence says when they were
/// measured.
pub fn ladder_compared(ladder: &Ladder) -> String {
    let mut with_vm = ladder.clone();
    if ladder.rungs_of("vm").is_empty()
        && let Ok(saved) = Ladder::saved()
    {
        with_vm
            .rungs
            .extend(saved.rungs.into_iter().filter(|r| r.kind == "vm"));
    }
    ladder_compared_with(&with_vm)
}

fn ladder_compared_with(ladder: &Ladder) -> String {
    let mut text = Vec::new();
    text.push(match starts(ladder, "container", "process") {
        Some(words) => format!("On the cost ladder, {words}"),
        None => "The ladder has no container rung beside a process rung at the same count.".into(),
    });
    if let (Some(container), Some(process)) = (ladder.cost("container"), ladder.cost("process")) {
        text.push(format!(
            "One more container held {} of memory, one more process {} (the slope over the \
             counts measured).",
            container.per_unit_text(),
            process.per_unit_text()
        ));
    }
    match starts(ladder, "vm", "container") {
        Some(vm) => text.push(format!(
            "Chapter 6's VM was measured on this boot too{}: {vm} That VM runs no kernel — its guest is \
             a few instructions that report at once — so its rung shows what making a virtual \
             CPU and its memory costs, not what booting a guest system costs; for scale, {}.",
            ladder
                .rungs_of("vm")
                .iter()
                .filter_map(|r| r.measured_at)
                .max()
                .map_or(String::new(), |t| format!(" (at {})", virtlab_core::units::utc(t))),
            virtlab_core::cost::compare::FIRECRACKER
        )),
        None => text.push(format!(
            "Chapter 6's VM is not on this boot's ladder (run chapter 6 first to see it beside \
             the container); for scale, {}.",
            virtlab_core::cost::compare::FIRECRACKER
        )),
    }
    text.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtlab_core::cost::Rung;

    fn rung(kind: &str, count: usize, ms: f64) -> Rung {
        Rung::made(kind, count, ms, 1048576.0)
    }

    #[test]
    fn the_container_is_set_beside_a_process_and_a_kernel_less_vm() {
        let ladder = Ladder {
            rungs: vec![
                rung("process", 1, 0.631),
                rung("container", 1, 3.55),
                rung("container", 4, 5.0),
                rung("vm", 1, 0.339),
            ],
            ..Ladder::default()
        };
        let text = ladder_compared_with(&ladder);
        for fact in [
            "On the cost ladder, with 1 of each alive at once, a container went from asking to running in 3.55 ms",
            "the container took 5.6× as long as the process",
            "a VM went from asking to running in 339.0 µs, a container in 3.55 ms: the VM took 10 % of the time of the container.",
            "One more container held 1.0 MiB of memory, one more process 1.0 MiB",
            "runs no kernel",
            "125 ms",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        let without_vm = Ladder {
            rungs: ladder.rungs[..3].to_vec(),
            ..ladder
        };
        assert!(ladder_compared_with(&without_vm).contains("not on this boot's ladder"));
    }
}
