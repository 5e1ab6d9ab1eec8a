//! Chapter 6's subcommands of the `virtlab` command: VMs side by side, what a VM costs, and the
//! price of being virtual seen from inside this machine.

use super::print_json;
use super::workers::RunArgs;
use clap::Subcommand;
use virtlab::Result;
use virtlab::vm::{self, probe};

#[derive(Subcommand)]
pub enum VmCommand {
    /// Chapter 6: run the essay's loop in N virtual machines (KVM), one vCPU each on its own
    /// host thread; prints "0: vm-1 vcpu 0 (host tid 4242)" lines as the guests report.
    /// --fault-unit V --fault-at I makes VM V triple-fault.
    Vm {
        #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
        vms: usize,
        /// Guest memory per VM (e.g. 2MiB, 512KiB; 64 KiB to 1 GiB).
        #[arg(long, default_value = "2MiB")]
        guest_memory: String,
        #[command(flatten)]
        run: RunArgs,
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
            guest_memory,
            run,
        } => {
            let mut kind = vm::Vms::new(vm::layout::parse_memory(&guest_memory)?)?;
            super::workers::run_kind(&mut kind, "vm", vms, &run)
        }
        VmCommand::VmCost {
            vms,
            exits,
            compute_ms,
            json,
        } => {
            let costs = vm::cost::Costs::measure(vms, exits, compute_ms)?;
            if json {
                print_json(&costs)?;
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
                print_json(&all)?;
            } else {
                for table in [support.table(), probe::cost_table(&costs), steal.table()] {
                    println!("{table}");
                }
            }
            Ok(())
        }
    }
}
