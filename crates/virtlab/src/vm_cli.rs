//! Chapter 6's subcommands of the `virtlab` command: VMs side by side, what a VM costs, and the
//! price of being virtual seen from inside this machine.

use clap::Subcommand;
use std::time::Duration;
use virtlab::vm::{self, fleet, probe};
use virtlab::work::Work;
use virtlab::{Error, Result};

#[derive(Subcommand)]
pub enum VmCommand {
    /// Chapter 6: run the essay's loop in N virtual machines (KVM), one vCPU each; prints
    /// "0: vm-1 vcpu 0 (host tid 4242)" lines as the guests report.
    Vm {
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        vms: usize,
        /// Iterations per guest.
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        iterations: u32,
        /// Pause between iterations, in milliseconds (the host pauses; the guest waits in its exit).
        #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
        interval_ms: u64,
        /// Guest memory per VM (e.g. 2MiB, 512KiB; 64 KiB to 1 GiB).
        #[arg(long, default_value = "2MiB")]
        guest_memory: String,
        /// Make VM V (1-based) triple-fault at iteration --fault-at, to see it reported.
        #[arg(
            long,
            value_name = "V",
            requires = "fault_at",
            allow_negative_numbers = true
        )]
        fault_vm: Option<usize>,
        #[arg(
            long,
            value_name = "I",
            requires = "fault_vm",
            allow_negative_numbers = true
        )]
        fault_at: Option<u32>,
        /// Make VM V (1-based) loop forever after its first line (pair it with --deadline-ms).
        #[arg(long, value_name = "V", allow_negative_numbers = true)]
        runaway_vm: Option<usize>,
        /// Stop VMs still running this long after the start.
        #[arg(long, value_name = "MS", allow_negative_numbers = true)]
        deadline_ms: Option<u64>,
        /// Print the VMs, timeline and process snapshot as JSON instead of lines.
        #[arg(long)]
        json: bool,
        /// Skip the process snapshot (for timing runs).
        #[arg(long)]
        no_tree: bool,
    },
    /// Chapter 6: what a VM costs: start phase by phase, guest exit vs syscall, guest vs native loop.
    VmCost {
        /// VMs to start one after another (the first is shown apart).
        #[arg(long, default_value_t = 8, allow_negative_numbers = true)]
        vms: usize,
        /// Guest exits to time.
        #[arg(long, default_value_t = 20_000, allow_negative_numbers = true)]
        exits: u32,
        /// Size the compute loop to take about this long, in and out of the guest.
        #[arg(long, default_value_t = 200, allow_negative_numbers = true)]
        compute_ms: u64,
        #[arg(long)]
        json: bool,
    },
    /// Chapter 6: the price of being virtual from inside this machine: cpuid vs a syscall vs
    /// rdtsc, and steal time during a CPU-bound job. Needs no KVM.
    VmInside {
        /// Timed batches of 200 operations each.
        #[arg(long, default_value_t = 201, allow_negative_numbers = true)]
        batches: usize,
        /// How long the CPU-bound job runs while steal time is counted (ms).
        #[arg(long, default_value_t = 2000, allow_negative_numbers = true)]
        steal_ms: u64,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: VmCommand) -> Result<()> {
    match command {
        VmCommand::Vm {
            vms,
            iterations,
            interval_ms,
            guest_memory,
            fault_vm,
            fault_at,
            runaway_vm,
            deadline_ms,
            json,
            no_tree,
        } => {
            let deadline = match deadline_ms {
                Some(0) => {
                    return Err(Error::invalid(
                        "--deadline-ms",
                        0,
                        "give a deadline of at least 1 ms, or leave it out",
                    ));
                }
                ms => ms.map(Duration::from_millis),
            };
            let options = fleet::Options {
                memory_bytes: vm::layout::parse_memory(&guest_memory)?,
                echo: !json,
                snapshot: !no_tree,
                fault: fault_vm.zip(fault_at),
                runaway: runaway_vm,
                deadline,
            };
            let run = fleet::run(&Work::new("vm", iterations, interval_ms)?, vms, options)?;
            if json {
                println!("{}", to_json(&run)?);
            } else {
                print!("{}", run.table());
            }
            Ok(())
        }
        VmCommand::VmCost {
            vms,
            exits,
            compute_ms,
            json,
        } => {
            let costs = vm::cost::Costs::measure(vms, exits, compute_ms)?;
            if json {
                println!("{}", to_json(&costs)?);
            } else {
                println!("{}", vm::support().table());
                for table in costs.tables() {
                    println!("{table}");
                }
            }
            Ok(())
        }
        VmCommand::VmInside {
            batches,
            steal_ms,
            json,
        } => {
            let support = vm::support();
            let costs = probe::instruction_costs(batches)?;
            let steal = probe::steal_during_job(steal_ms)?;
            if json {
                let all = serde_json::json!({
                    "mode": support.label(),
                    "hypervisor": support.hypervisor,
                    "operations": costs,
                    "steal": steal,
                });
                println!("{}", to_json(&all)?);
            } else {
                for table in [support.table(), probe::cost_table(&costs), steal.table()] {
                    println!("{table}");
                }
            }
            Ok(())
        }
    }
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map_err(|e| Error::new(format!("JSON output failed: {e}"), "report this as a bug"))
}
