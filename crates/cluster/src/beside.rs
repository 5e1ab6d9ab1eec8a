//! The earlier rungs beside the ping-pong: what a function call, a system call and a VM exit
//! cost on this machine, measured in this run, drawn as level lines on the ping-pong's latency
//! axis so a message between machines sits on one scale with the rungs below it.
//!
//! They are chapter 6's own measurements, run by the `virtlab` program (`vm-inside`: a function
//! call and a `getppid` system call, no KVM needed; `vm-cost`: a guest's I/O exit and return,
//! where KVM is there) and read back as JSON, as the ladder's probe is: the chapters' crates
//! never depend on each other.

use crate::pingpong::PingpongReport;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use virtlab_core::release;
use virtlab_display::Figure;

/// Timed batches of chapter 6's operations (200 each; medians).
const BATCHES: &str = "201";
/// Guest exits timed (chapter 6 times 20 000; 2 000 keep this cell short).
const EXITS: &str = "2000";

/// The earlier rungs, measured now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rungs {
    /// A plain function call, native, in nanoseconds.
    pub function_call_ns: f64,
    /// A `getppid` system call, native, in nanoseconds.
    pub syscall_ns: f64,
    /// A guest's I/O exit to the VMM and back, in nanoseconds.
    pub vm_exit_ns: Option<f64>,
    /// Why the VM exit was not measured here (no KVM, say), with the fix.
    pub vm_exit_missing: Option<String>,
    /// The hypervisor this machine itself runs under (CPUID), if any: our VM is then nested
    /// in it, and each exit of ours also passes through it.
    #[serde(default)]
    pub nested_in: Option<String>,
}

/// One of chapter 6's timed operations, as `virtlab vm-inside --json` prints it.
#[derive(Deserialize)]
struct Operation {
    name: String,
    ns: f64,
}

#[derive(Deserialize)]
struct Inside {
    operations: Vec<Operation>,
}

#[derive(Deserialize)]
struct ExitCost {
    guest_exit_ns: f64,
}

#[derive(Deserialize)]
struct VmCost {
    exit: ExitCost,
}

impl Rungs {
    /// Measures the three now, in fresh `virtlab` processes; a VM exit this machine cannot
    /// take (no KVM) is said, not an error.
    pub fn measure() -> Result<Rungs> {
        // The shortest steal-time job vm-inside allows: its operations are what is read here.
        let inside: Inside = release::json(
            "chapter 6's operation costs",
            &[
                "vm-inside",
                "--batches",
                BATCHES,
                "--steal-ms",
                "100",
                "--json",
            ],
        )?;
        let op = |name: &str| {
            inside
                .operations
                .iter()
                .find(|o| o.name == name)
                .map(|o| o.ns)
                .ok_or_else(|| Error::bug(format!("virtlab vm-inside did not time a {name}")))
        };
        let exit = release::json::<VmCost>(
            "chapter 6's VM exit cost",
            &[
                "vm-cost",
                "--vms",
                "2",
                "--exits",
                EXITS,
                "--compute-ms",
                "10",
                "--json",
            ],
        );
        Ok(Rungs {
            function_call_ns: op("function call")?,
            syscall_ns: op("getppid system call")?,
            vm_exit_missing: exit
                .as_ref()
                .err()
                .map(|e| format!("{} (fix: {})", e.problem(), e.fix())),
            vm_exit_ns: exit.ok().map(|c| c.exit.guest_exit_ns),
            nested_in: virtlab_core::machine::hypervisor(),
        })
    }

    /// The rungs measured, as (name, µs), slowest first.
    fn levels(&self) -> Vec<(String, f64)> {
        let mut levels = vec![
            ("system call (getppid)".to_string(), self.syscall_ns / 1e3),
            ("function call".to_string(), self.function_call_ns / 1e3),
        ];
        if let Some(ns) = self.vm_exit_ns {
            let name = match &self.nested_in {
                Some(host) => format!("VM exit and return (KVM, nested in {host})"),
                None => "VM exit and return (KVM)".to_string(),
            };
            levels.insert(0, (name, ns / 1e3));
        }
        levels
    }
}

impl PingpongReport {
    /// [`PingpongReport::latency_plot`] with the earlier rungs as level lines on the same axis.
    pub fn latency_plot_beside(&self, rungs: &Rungs) -> Result<Figure> {
        let mut chart = self.latency_chart(
            "One way by message size, beside the earlier rungs",
            "µs (log)",
        );
        for (name, us) in rungs.levels() {
            chart = chart.reference(name, us);
        }
        if let Some(why) = &rungs.vm_exit_missing {
            chart = chart.note(format!("No VM exit here: {why}"));
        }
        Ok(chart.render()?)
    }
}

/// "How many times": `12 300×` or `1.4×`.
fn times(a: f64, b: f64) -> String {
    let r = a / b;
    if r >= 10.0 {
        format!("{:.0}×", r)
    } else {
        format!("{r:.1}×")
    }
}

/// Small messages: what the sentence compares with the rungs (larger ones are bandwidth).
const SMALL: usize = 4096;

/// Where a small message sits among the rungs, computed from this run: the fastest small
/// message each way (a message between machines costs at least this).
pub fn said(report: &PingpongReport, rungs: &Rungs) -> String {
    let small = || report.points.iter().filter(|p| p.bytes <= SMALL);
    let (Some(across), Some(near)) = (
        small().min_by(|a, b| a.two_nodes_us.total_cmp(&b.two_nodes_us)),
        small().min_by(|a, b| a.one_node_us.total_cmp(&b.one_node_us)),
    ) else {
        return format!(
            "The ping-pong measured no message of {} or less, so there is nothing to set beside \
             the rungs.",
            virtlab_core::units::bytes(SMALL as u64)
        );
    };
    let across_ns = across.two_nodes_us * 1e3;
    let exit = match (rungs.vm_exit_ns, &rungs.vm_exit_missing) {
        (Some(ns), _) => format!(
            "{} a VM exit and return ({:.1} µs{}), ",
            times(across_ns, ns),
            ns / 1e3,
            rungs
                .nested_in
                .as_ref()
                .map_or(String::new(), |host| format!(
                    "; nested: this machine is itself a {host} guest, so each exit also passes \
                 through {host}, and a VM on bare metal exits faster"
                ))
        ),
        (None, Some(why)) => format!("(a VM exit was not measured here: {why}) "),
        (None, None) => String::new(),
    };
    format!(
        "At best, a small message between two nodes ({} here) took {:.1} µs one way: {exit}{} a \
         system call ({:.0} ns) and {} a function call ({:.2} ns). On one node, through shared \
         memory, the best ({}) took {:.2} µs, {} a system call.",
        virtlab_core::units::bytes(across.bytes as u64),
        across.two_nodes_us,
        times(across_ns, rungs.syscall_ns),
        rungs.syscall_ns,
        times(across_ns, rungs.function_call_ns),
        rungs.function_call_ns,
        virtlab_core::units::bytes(near.bytes as u64),
        near.one_node_us,
        times(near.one_node_us * 1e3, rungs.syscall_ns),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> PingpongReport {
        // A large message is bandwidth, not what a message costs at least.
        PingpongReport::made(&[(8, 0.6, 300.0), (64, 0.7, 12.0), (1 << 20, 200.0, 1.0)])
    }

    fn rungs(vm_exit_ns: Option<f64>) -> Rungs {
        Rungs {
            function_call_ns: 0.6,
            syscall_ns: 60.0,
            vm_exit_missing: vm_exit_ns
                .is_none()
                .then(|| "/dev/kvm is missing (fix: load kvm)".into()),
            vm_exit_ns,
            nested_in: None,
        }
    }

    #[test]
    fn the_sentence_sets_the_message_against_each_rung_it_has() {
        let with = said(&report(), &rungs(Some(6000.0)));
        assert!(
            with.contains("two nodes (64 B here) took 12.0 µs"),
            "{with}"
        );
        assert!(
            with.contains("2.0× a VM exit and return (6.0 µs)"),
            "{with}"
        );
        assert!(with.contains("200× a system call (60 ns)"), "{with}");
        assert!(with.contains("20000× a function call"), "{with}");
        assert!(
            with.contains("the best (8 B) took 0.60 µs, 10× a system call"),
            "{with}"
        );
        let nested = Rungs {
            nested_in: Some("KVM".into()),
            ..rungs(Some(6000.0))
        };
        assert!(
            said(&report(), &nested)
                .contains("(6.0 µs; nested: this machine is itself a KVM guest"),
            "{}",
            said(&report(), &nested)
        );
        assert!(nested.levels()[0].0.contains("nested in KVM"));
        let without = said(&report(), &rungs(None));
        assert!(
            without.contains("not measured here: /dev/kvm is missing"),
            "{without}"
        );
    }

    #[test]
    fn the_chart_draws_the_rungs_it_has_and_says_the_one_it_lacks() {
        let with = report().latency_plot_beside(&rungs(Some(6000.0))).unwrap();
        assert!(with.svg().contains("VM exit") && with.svg().contains("system call"));
        let without = report().latency_plot_beside(&rungs(None)).unwrap();
        assert!(without.svg().contains("No VM exit here"));
        assert!(!without.svg().contains("VM exit and return"));
    }
}
