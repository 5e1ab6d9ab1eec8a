//! Chapter 6's conclusions written from its own run, never in advance: how a VM's start
//! compares with a process's on the cost ladder, and "what we saw" — the vCPU threads, the
//! start, an exit against a system call, the compute loop in each ring, steal time — each
//! sentence chosen for the numbers this run measured (a VM can come out faster or slower than a
//! process; an exit dearer or cheaper than a syscall).

use super::FIRECRACKER;
use super::cost::{ComputeCost, ExitCost, StartCost};
use super::probe::{OpCost, Steal};
use crate::kind::VmDetail;
use virtlab_core::cost::compare::as_long_as;
use virtlab_core::cost::{Ladder, duration_text};
use virtlab_core::executor::Run;
use virtlab_display::Table;

/// One VM's start against one process's, from the ladder's rungs at the smallest count both
/// were measured at, plus this run's phase table when there is one; a sentence for each.
pub fn start_compared(start: Option<&StartCost>, ladder: &Ladder) -> String {
    let mut text = Vec::new();
    if let Some(start) = start {
        let (first, typical) = (start.first.total_ms(), start.typical.total_ms());
        text.push(format!(
            "Making a VM and running it to its first line took {} for a typical VM here; the \
             process's first VM took {} ({}).",
            duration_text(typical),
            duration_text(first),
            if first > 1.1 * typical {
                "it paid for one-time set-up"
            } else {
                "no dearer than the rest this time"
            }
        ));
    }
    text.push(format!(
        "On the cost ladder, {}",
        virtlab_core::cost::compare::starts(ladder, "vm", "process").unwrap_or_else(|| {
            "no VM rung stands beside a process rung at the same count: no comparison with a \
             process here."
                .into()
        })
    ));
    text.push(format!(
        "Our guest has no kernel to boot and no devices: its first line comes a few \
         instructions in. A real guest boots an operating system first; for scale, \
         {FIRECRACKER}."
    ));
    text.join(" ")
}

/// The chapter's conclusions as question and answer, each answer computed from the results
/// passed in (a `None` says what was not measured and why).
pub fn what_we_saw(
    run: Option<&Run<VmDetail>>,
    start: Option<&StartCost>,
    ladder: &Ladder,
    exit: Option<&ExitCost>,
    compute: Option<&ComputeCost>,
    inside: &[OpCost],
    steal: &Steal,
) -> Table {
    let no_kvm = "not measured: this machine made no VMs (see the support table)";
    let mut t = Table::new(
        "What this run measured",
        ["question", "answer, from the numbers above"],
    );
    t.row([
        "Where did the VMs run?".to_string(),
        run.map_or(no_kvm.into(), vcpu_threads),
    ]);
    t.row([
        "What does making one cost?".to_string(),
        start_compared(start, ladder),
    ]);
    t.row([
        "What does touching fake hardware cost?".to_string(),
        exit.map_or(no_kvm.into(), |e| {
            format!(
                "A guest I/O exit's round trip took {:.0} ns, {} a getppid system call ({:.0} \
                 ns) and {:.0}× a function call.",
                e.guest_exit_ns,
                as_long_as(e.guest_exit_ns, e.syscall_ns),
                e.syscall_ns,
                e.guest_exit_ns / e.function_call_ns.max(1e-3)
            )
        }),
    ]);
    t.row([
        "Does code that touches nothing run at native speed?".to_string(),
        compute.map_or(no_kvm.into(), ComputeCost::summary),
    ]);
    let ns = |name: &str| inside.iter().find(|o| o.name == name).map(|o| o.ns);
    t.row([
        "What gives a VM away from inside?".to_string(),
        match (ns("cpuid"), ns("getppid system call")) {
            (Some(cpuid), Some(syscall)) => format!(
                "cpuid took {cpuid:.0} ns, {} a system call ({syscall:.0} ns).",
                as_long_as(cpuid, syscall)
            ),
            _ => "cpuid was not measured (not an x86-64 CPU).".into(),
        },
    ]);
    t.row([
        "Were the neighbours busy?".to_string(),
        format!(
            "{:.1} % of this machine's CPU time was stolen while the job ran on {} CPUs for \
             {:.1} s{}.",
            100.0 * steal.share(),
            steal.cpus,
            steal.wall.as_secs_f64(),
            if steal.steal_s > 0.0 {
                ": the host gave it to someone else"
            } else {
                ": none, this time"
            }
        ),
    ]);
    t.row(virtlab_core::load::quiet_row(
        ladder.busiest_load(),
        "the ladder's times to running read high",
    ));
    t
}

/// "3 VMs, each on its own thread of pid 4242 (3 thread ids)", from the units' pid and tid.
fn vcpu_threads(run: &Run<VmDetail>) -> String {
    let mut tids: Vec<u64> = run.units.iter().filter_map(|u| u.tid).collect();
    tids.sort_unstable();
    tids.dedup();
    let in_this_process = run
        .units
        .iter()
        .filter(|u| u.pid == Some(run.host_pid))
        .count();
    format!(
        "{} of {} VMs ran their vCPU on a thread of pid {} (the notebook's process), on {} \
         different thread ids: a VM is a thread and some memory of its monitor's process.",
        in_this_process,
        run.units.len(),
        run.host_pid,
        tids.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtlab_core::cost::Rung;

    fn rung(kind: &str, count: usize, ms: f64) -> Rung {
        Rung::made(kind, count, ms, 0.0)
    }

    #[test]
    fn the_start_is_set_beside_a_process_and_a_booting_microvm() {
        let ladder = |rungs| Ladder {
            machine: "m".into(),
            cpu: "c".into(),
            rungs,
        };
        let text = start_compared(
            None,
            &ladder(vec![rung("process", 1, 3.55), rung("vm", 1, 0.339)]),
        );
        assert!(
            text.contains("a process in 3.55 ms: the VM took 10 % of the time of the process."),
            "{text}"
        );
        assert!(
            text.contains("no kernel to boot") && text.contains("125 ms"),
            "{text}"
        );
        let text = start_compared(None, &ladder(vec![rung("process", 1, 1.0)]));
        assert!(text.contains("no comparison with a process"), "{text}");
    }
}
