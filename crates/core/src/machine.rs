//! Facts about the machine that any layer may need: the CPU's model, the CPUs this process may
//! use, memory available now, and the hypervisor under us. Chapter 0's full picture (the
//! `virtlab` facade's `Machine`) adds the GPU and KVM to these.

/// The CPU's model name, read alone (no GPU probe).
pub fn cpu_model() -> String {
    use sysinfo::{CpuRefreshKind, RefreshKind, System};
    brand_of(&System::new_with_specifics(
        RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()),
    ))
}

/// Memory available to new allocations now, read alone.
pub fn available_memory() -> u64 {
    use sysinfo::{MemoryRefreshKind, RefreshKind, System};
    System::new_with_specifics(
        RefreshKind::nothing().with_memory(MemoryRefreshKind::nothing().with_ram()),
    )
    .available_memory()
}

/// The CPU model sysinfo read, or "unknown".
pub fn brand_of(sys: &sysinfo::System) -> String {
    sys.cpus()
        .first()
        .map(|c| c.brand().trim().to_string())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Parallelism the standard library grants (affinity and cgroup quota included), at least 1.
pub fn usable_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The hypervisor's name from CPUID (x86), or from /sys/hypervisor on Linux.
pub fn hypervisor() -> Option<String> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::__cpuid;
        // CPUID leaf 1, ECX bit 31 is set by every mainstream hypervisor for its guests.
        if __cpuid(1).ecx & (1 << 31) != 0 {
            let leaf = __cpuid(0x4000_0000);
            let raw: Vec<u8> = [leaf.ebx, leaf.ecx, leaf.edx]
                .iter()
                .flat_map(|r| r.to_le_bytes())
                .collect();
            let vendor = String::from_utf8_lossy(&raw)
                .trim_matches(char::from(0))
                .trim()
                .to_string();
            return Some(hypervisor_name(&vendor));
        }
        None
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::fs::read_to_string("/sys/hypervisor/type")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

fn hypervisor_name(vendor: &str) -> String {
    let known = match vendor {
        "KVMKVMKVM" => "KVM",
        "Microsoft Hv" => "Hyper-V",
        "VMwareVMware" => "VMware",
        "XenVMMXenVMM" => "Xen",
        "TCGTCGTCGTCG" => "QEMU (emulated)",
        "VBoxVBoxVBox" => "VirtualBox",
        "ACRNACRNACRN" => "ACRN",
        "" => return "yes (vendor not given)".into(),
        other => return format!("yes ({other})"),
    };
    known.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypervisor_vendors_are_named() {
        assert_eq!(hypervisor_name("KVMKVMKVM"), "KVM");
        assert_eq!(hypervisor_name("Microsoft Hv"), "Hyper-V");
        assert_eq!(hypervisor_name("Odd"), "yes (Odd)");
    }
}
