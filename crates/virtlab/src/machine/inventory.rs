//! What the machine offers before we use it: CPUs, the share of them this process may use,
//! memory, virtualisation and the GPU (chapter 0).
//!
//! Core counts alone mislead in containers and VMs: CPU affinity, a cgroup CPU quota and a
//! cgroup memory limit can all grant less than the hardware has. Those are Linux observations
//! and read "not observable" elsewhere.

use serde::{Deserialize, Serialize};
use virtlab_core::limits;
pub use virtlab_core::limits::Limit;
#[cfg(test)]
use virtlab_core::machine::{available_memory, cpu_model};
use virtlab_core::machine::{brand_of, hypervisor, usable_cpus};
use virtlab_core::units;
use virtlab_display::{Html, Table};
use virtlab_gemm::gpu::{self, GpuStatus};

/// What this machine offers and what this process may use of it: chapter 0's table
/// ([`Machine::table`]), taken by [`Machine::detect`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// The operating system and its version, e.g. `Linux (Debian GNU/Linux 12)`.
    pub os: String,
    /// The CPU's model name as the OS gives it, e.g. `AMD EPYC 9654 96-Core Processor`.
    pub cpu_model: String,
    /// Hardware threads the OS sees: with two threads per core (SMT, Hyper-Threading) twice the
    /// physical cores.
    pub logical_cpus: usize,
    /// Physical cores, when the OS says; two hardware threads on one core share its arithmetic
    /// units.
    pub physical_cores: Option<usize>,
    /// CPUs the scheduler may run this process on.
    pub affinity_cpus: Limit<usize>,
    /// CPU time the cgroup grants, in CPUs (e.g. 1.5).
    pub cgroup_cpu_quota: Limit<f64>,
    /// What the standard library reports as usable parallelism: the number our executors use.
    pub usable_cpus: usize,
    /// The machine's RAM, in bytes (not the cgroup's limit: see `cgroup_memory_limit`).
    pub memory_total_bytes: u64,
    /// RAM new allocations can get now without swapping, in bytes.
    pub memory_available_bytes: u64,
    /// The most memory this process's cgroup may use (a container's memory limit), in bytes.
    pub cgroup_memory_limit: Limit<u64>,
    /// The hypervisor this runs under, e.g. `KVM` or `Hyper-V`; `None` when none is seen (bare
    /// metal, or a hypervisor that hides itself).
    pub hypervisor: Option<String>,
    /// Whether this machine can make virtual machines, and how guest code would run: e.g.
    /// "hardware-assisted KVM (AMD-V)", "KVM-PVM (paravirtualization, …): …", or why not.
    pub virtualization: String,
    /// The marker file that says this runs in a container, as seen, e.g. `/.dockerenv present
    /// (Docker's marker file)`: a file, not proof of who started the container. `None` when no
    /// marker is seen.
    pub container: Option<String>,
    /// The SIMD extensions the CPU has, e.g. `["sse4.2", "avx", "avx2", "fma", "avx512f"]`: the
    /// vector width sets the floating-point peak.
    pub simd: Vec<String>,
    /// Whether there is a CUDA GPU, and which.
    pub gpu: GpuStatus,
}

impl Machine {
    /// Observes this machine. Nothing here fails: what cannot be seen is reported as such.
    pub fn detect() -> Machine {
        use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};
        let sys = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing())
                .with_memory(MemoryRefreshKind::nothing().with_ram()),
        );
        let cpu_model = brand_of(&sys);
        let logical_cpus = sys.cpus().len().max(1);
        Machine {
            os: System::long_os_version().unwrap_or_else(|| std::env::consts::OS.into()),
            cpu_model,
            logical_cpus,
            physical_cores: System::physical_core_count(),
            affinity_cpus: limits::affinity_cpus(),
            cgroup_cpu_quota: limits::cgroup_cpu_quota(),
            usable_cpus: usable_cpus(),
            memory_total_bytes: sys.total_memory(),
            memory_available_bytes: sys.available_memory(),
            cgroup_memory_limit: limits::cgroup_memory_limit(),
            hypervisor: hypervisor(),
            virtualization: virtualization(),
            container: limits::container_marker(),
            simd: virtlab_gemm::isa::simd_features(),
            gpu: gpu::probe(),
        }
    }

    /// One row per fact, with why it matters: chapter 0's first table.
    pub fn table(&self) -> Table {
        let mut t = Table::new("Your machine", ["what", "value", "why it matters"]);
        t.row(["OS", &self.os, ""]);
        t.row(["CPU model", &self.cpu_model, ""]);
        t.row([
            "logical CPUs",
            &self.logical_cpus.to_string(),
            "hardware threads the OS sees",
        ]);
        let physical = self
            .physical_cores
            .map_or("unknown".into(), |n| n.to_string());
        t.row([
            "physical cores",
            &physical,
            "two hardware threads on one core share its FMA units",
        ]);
        t.row([
            "CPU affinity",
            &self.affinity_cpus.describe(|n| format!("{n} CPUs")),
            "CPUs this process may be scheduled on",
        ]);
        t.row([
            "cgroup CPU quota",
            &self.cgroup_cpu_quota.describe(|q| format!("{q:.2} CPUs")),
            "CPU time a container may use",
        ]);
        t.row([
            "usable CPUs",
            &self.usable_cpus.to_string(),
            "what the executors in this lab use",
        ]);
        t.row([
            "memory",
            &format!(
                "{} total, {} available",
                units::bytes(self.memory_total_bytes),
                units::bytes(self.memory_available_bytes)
            ),
            "",
        ]);
        t.row([
            "cgroup memory limit",
            &self.cgroup_memory_limit.describe(|b| units::bytes(*b)),
            "a container can have less than the machine",
        ]);
        t.row([
            "hypervisor",
            self.hypervisor
                .as_deref()
                .unwrap_or("none seen (bare metal, or hidden)"),
            "a VM's vCPUs are threads of the host",
        ]);
        t.row([
            "virtual machines (KVM)",
            &self.virtualization,
            "chapter 6 makes its own VMs here",
        ]);
        t.row([
            "container",
            self.container
                .as_deref()
                .unwrap_or("no marker file seen (/.dockerenv, /run/.containerenv)"),
            "",
        ]);
        let simd = if self.simd.is_empty() {
            "none beyond the baseline".into()
        } else {
            self.simd.join(" ")
        };
        t.row(["SIMD", &simd, "vector width sets the floating-point peak"]);
        t.row([
            "GPU",
            &self.gpu.summary(),
            "chapter 4 outsources matrix work to it",
        ]);
        t
    }

    /// [`Machine::table`] as HTML.
    pub fn to_html(&self) -> Html {
        self.table().to_html()
    }

    /// Shows [`Machine::table`] as the cell's output in a notebook.
    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

/// What chapter 6 would find: the KVM mode, or what is missing and how to get it.
fn virtualization() -> String {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    {
        let support = virtlab_vmm::support();
        match support.ready() {
            Ok(()) => support.label(),
            Err(e) => format!("none: {}", e.sentence()),
        }
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
    {
        "none: virtlab makes VMs with Linux's KVM on x86-64 only".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_is_consistent() {
        let m = Machine::detect();
        assert!(m.logical_cpus >= 1);
        assert!(m.usable_cpus >= 1 && m.usable_cpus <= m.logical_cpus);
        assert!(m.memory_total_bytes > 0);
        assert!(m.memory_available_bytes <= m.memory_total_bytes);
        if let Limit::Set(n) = m.affinity_cpus {
            // The standard library's answer already honours the affinity mask.
            assert!(
                m.usable_cpus <= n,
                "usable {} > affinity {n}",
                m.usable_cpus
            );
        }
        let text = m.table().to_string();
        for row in ["CPU model", "usable CPUs", "cgroup CPU quota", "GPU"] {
            assert!(text.contains(row), "{row} missing from\n{text}");
        }
    }

    #[test]
    fn the_single_field_readers_agree_with_detect() {
        let m = Machine::detect();
        assert_eq!(cpu_model(), m.cpu_model);
        assert!(available_memory() > 0 && available_memory() <= m.memory_total_bytes);
    }

    #[test]
    fn machine_serialises_to_json() {
        let json = serde_json::to_value(Machine::detect()).unwrap();
        assert!(json["usable_cpus"].as_u64().unwrap() >= 1);
        assert!(json["gpu"]["status"].is_string());
    }
}
