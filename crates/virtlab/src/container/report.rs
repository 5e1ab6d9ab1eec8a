//! Chapter 7's comparison on the cost ladder, written from the ladder's own rungs: a container
//! beside a process and, when chapter 6 ran on this boot, beside our VM — with what that VM
//! leaves out (a kernel to boot) said next to its number, and a published figure for a VM that
//! boots one.

use crate::cost::{Ladder, Rung, duration_text};
use crate::vm::as_long_as;

/// The rungs of `kind` and of the container at the smallest count both were measured at.
fn beside<'a>(ladder: &'a Ladder, kind: &str) -> Option<(&'a Rung, &'a Rung)> {
    ladder
        .rungs_of("container")
        .into_iter()
        .filter_map(|c| Some((c, ladder.rung(kind, c.count)?)))
        .min_by_key(|(c, _)| c.count)
}

/// The container's rung against a process's and a VM's, in sentences chosen for the numbers.
pub fn ladder_compared(ladder: &Ladder) -> String {
    let mut text = Vec::new();
    match beside(ladder, "process") {
        Some((container, process)) => {
            let per_unit = |kind: &str| {
                ladder
                    .cost(kind)
                    .map_or("an unknown amount".into(), |c| c.per_unit_text())
            };
            text.push(format!(
                "With {} alive at once, a container went from asking to running in {}, a process \
                 in {}: the container took {} the process. One more container held {} of memory, \
                 one more process {} (the slope over the counts measured).",
                container.count,
                duration_text(container.asked_to_running_ms),
                duration_text(process.asked_to_running_ms),
                as_long_as(container.asked_to_running_ms, process.asked_to_running_ms),
                per_unit("container"),
                per_unit("process"),
            ))
        }
        None => text.push("The ladder has no container rung beside a process rung.".into()),
    }
    match beside(ladder, "vm") {
        Some((container, vm)) => text.push(format!(
            "Chapter 6's VM, measured on this boot, started in {}: {} the container. That VM \
             runs no kernel — its guest is a few instructions that report at once — so it \
             shows what making a virtual CPU and its memory costs, not what booting a guest \
             system costs; for scale, {}.",
            duration_text(vm.asked_to_running_ms),
            as_long_as(vm.asked_to_running_ms, container.asked_to_running_ms),
            crate::vm::FIRECRACKER
        )),
        None => text.push(format!(
            "Chapter 6's VM is not on this boot's ladder (run chapter 6 first to see it beside \
             the container); for scale, {}.",
            crate::vm::FIRECRACKER
        )),
    }
    text.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(kind: &str, count: usize, ms: f64) -> Rung {
        Rung {
            kind: kind.into(),
            count,
            asked_to_running_ms: ms,
            user_bytes_each: 1048576.0,
            kernel_bytes_each: 0.0,
            rounds: 3,
            measured_at: None,
            fresh: true,
        }
    }

    #[test]
    fn the_container_is_set_beside_a_process_and_a_kernel_less_vm() {
        let ladder = Ladder {
            machine: "m".into(),
            cpu: "c".into(),
            rungs: vec![
                rung("process", 1, 0.631),
                rung("container", 1, 3.55),
                rung("container", 4, 5.0),
                rung("vm", 1, 0.339),
            ],
        };
        let text = ladder_compared(&ladder);
        for fact in [
            "With 1 alive at once, a container went from asking to running in 3.55 ms",
            "the container took 5.6× as long as the process",
            "started in 339.0 µs: 10 % of the time of the container",
            "runs no kernel",
            "125 ms",
        ] {
            assert!(text.contains(fact), "missing '{fact}' in {text}");
        }
        let without_vm = Ladder {
            rungs: ladder.rungs[..3].to_vec(),
            ..ladder
        };
        assert!(ladder_compared(&without_vm).contains("not on this boot's ladder"));
    }
}
