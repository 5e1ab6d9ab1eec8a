//! One virtual machine made with KVM: open the device, create the VM, give it memory holding
//! the guest program and its tables, create one vCPU already in 64-bit mode, and run it exit by
//! exit. Every phase of the start is timed. Dropping the [`Vm`] closes every fd and unmaps the
//! guest memory.

use super::guest::{CODE_ADDRESS, Guest, REPORT_PORT};
use super::layout;
use super::vcpu::{Interrupter, Shared, install_kick_handler};
use super::{GuestExit, support};
use kvm_bindings::{KVM_MAX_CPUID_ENTRIES, kvm_segment, kvm_userspace_memory_region};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_core::error::ErrorKind;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// How long each phase of making a VM took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Startup {
    /// Opening the KVM device.
    pub open: Duration,
    /// `KVM_CREATE_VM`.
    pub create_vm: Duration,
    /// Mapping guest memory, writing tables and code into it, `KVM_SET_USER_MEMORY_REGION`.
    pub memory: Duration,
    /// `KVM_CREATE_VCPU`, its CPUID, special and general registers.
    pub vcpu: Duration,
}

/// Two of KVM's own counters for a vCPU, read from its statistics file descriptor
/// (`KVM_GET_STATS_FD`, Linux 5.14 and later): what the hypervisor did for this guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct VcpuCounts {
    /// Times the guest left for the hypervisor (`exits`).
    pub exits: u64,
    /// Guest instructions KVM carried out in its instruction emulator (`insn_emulation`)
    /// instead of letting the CPU run them.
    pub emulated_instructions: u64,
}

impl VcpuCounts {
    /// What happened between `earlier` and these counts.
    pub fn since(&self, earlier: &VcpuCounts) -> VcpuCounts {
        VcpuCounts {
            exits: self.exits.saturating_sub(earlier.exits),
            emulated_instructions: self
                .emulated_instructions
                .saturating_sub(earlier.emulated_instructions),
        }
    }
}

impl Startup {
    /// All phases together.
    pub fn total(&self) -> Duration {
        self.open + self.create_vm + self.memory + self.vcpu
    }
}

/// A virtual machine with one vCPU, loaded with a [`Guest`] and ready to run.
// Field order is drop order: the vCPU before the VM before the device, the memory last.
pub struct Vm {
    name: String,
    vcpu: VcpuFd,
    _vm: VmFd,
    _kvm: Kvm,
    memory: GuestMemoryMmap,
    memory_bytes: u64,
    startup: Startup,
    shared: Arc<Shared>,
    /// Set when the guest halted or shut down: it cannot run again.
    ended: Option<GuestExit>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("name", &self.name)
            .field("memory_bytes", &self.memory_bytes)
            .field("startup", &self.startup)
            .finish_non_exhaustive()
    }
}

impl Vm {
    /// Makes VM `name` with `memory_bytes` of guest memory (a multiple of 4 KiB, 64 KiB to
    /// 1 GiB) running `guest`, through `/dev/kvm` or `VIRTLAB_KVM_DEVICE`.
    pub fn new(name: &str, memory_bytes: u64, guest: &Guest) -> Result<Vm> {
        check_memory(memory_bytes)?;
        install_kick_handler()?;
        let device = support::device_path();

        let t = Instant::now();
        // std opens with O_CLOEXEC, so VM fds never leak into the worker processes we start.
        let file = support::open_device(&device)?;
        // SAFETY: we own this freshly opened fd and hand it to Kvm, which closes it on drop.
        let kvm = unsafe { Kvm::from_raw_fd(file.into_raw_fd()) };
        if kvm.get_api_version() != support::KVM_API_VERSION {
            return Err(support::not_kvm(&device));
        }
        let open = t.elapsed();

        let t = Instant::now();
        let vm = kvm.create_vm().map_err(|e| kvm_error("KVM_CREATE_VM", e))?;
        let create_vm = t.elapsed();

        let t = Instant::now();
        let memory = load(memory_bytes, guest)?;
        let host = memory
            .get_host_address(GuestAddress(0))
            .map_err(|e| Error::bug(format!("guest memory has no host address: {e}")))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            guest_phys_addr: 0,
            memory_size: memory_bytes,
            userspace_addr: host as u64,
            flags: 0,
        };
        // SAFETY: the region is the mapping `memory` owns; it outlives the VM (dropped last),
        // and nothing else uses it.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(|e| kvm_error("KVM_SET_USER_MEMORY_REGION", e))?;
        let memory_time = t.elapsed();

        let t = Instant::now();
        let vcpu = vm
            .create_vcpu(0)
            .map_err(|e| kvm_error("KVM_CREATE_VCPU", e))?;
        // The guest sees the CPU features KVM can offer (long mode among them).
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| kvm_error("KVM_GET_SUPPORTED_CPUID", e))?;
        vcpu.set_cpuid2(&cpuid)
            .map_err(|e| kvm_error("KVM_SET_CPUID2", e))?;
        set_long_mode(&vcpu)?;
        let vcpu_time = t.elapsed();

        Ok(Vm {
            name: name.to_string(),
            vcpu,
            _vm: vm,
            _kvm: kvm,
            memory,
            memory_bytes,
            startup: Startup {
                open,
                create_vm,
                memory: memory_time,
                vcpu: vcpu_time,
            },
            shared: Arc::default(),
            ended: None,
        })
    }

    /// The VM's name, e.g. `vm-2`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The guest memory size.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
    }

    /// How long each phase of [`Vm::new`] took.
    pub fn startup(&self) -> Startup {
        self.startup
    }

    /// A handle that stops this VM's vCPU from another thread.
    pub fn interrupter(&self) -> Interrupter {
        Interrupter {
            shared: self.shared.clone(),
        }
    }

    /// Runs the guest on the calling thread until its next exit that matters: a report, a halt,
    /// a triple fault, an interrupt from outside. Exits of no interest are resumed here.
    pub fn run(&mut self) -> Result<GuestExit> {
        if let Some(ended) = &self.ended {
            return Err(Error::new(
                format!(
                    "{} cannot run again: the guest already ended ({ended})",
                    self.name
                ),
                "make a new VM",
            ));
        }
        let run_area = self.vcpu.get_kvm_run() as *mut _;
        self.shared.enter(run_area);
        let exit = self.run_until_exit();
        self.shared.leave();
        if let Ok(e @ (GuestExit::Halted | GuestExit::TripleFault | GuestExit::Other(_))) = &exit {
            self.ended = Some(e.clone());
        }
        exit
    }

    fn run_until_exit(&mut self) -> Result<GuestExit> {
        loop {
            if self.shared.stopped() {
                return Ok(GuestExit::Interrupted);
            }
            match self.vcpu.run() {
                Ok(VcpuExit::IoOut(REPORT_PORT, data)) => {
                    let mut value = [0u8; 4];
                    let n = data.len().min(4);
                    value[..n].copy_from_slice(&data[..n]);
                    return Ok(GuestExit::Report(u32::from_le_bytes(value)));
                }
                Ok(VcpuExit::Hlt) => return Ok(GuestExit::Halted),
                Ok(VcpuExit::Shutdown) => return Ok(GuestExit::TripleFault),
                Ok(VcpuExit::IoOut(port, _)) => {
                    return Ok(GuestExit::Other(format!("write to unknown port {port:#x}")));
                }
                Ok(VcpuExit::InternalError) => {
                    let suberror = self.internal_suberror();
                    return Ok(GuestExit::Other(format!(
                        "KVM internal error (suberror {suberror}): the hypervisor could not run an instruction"
                    )));
                }
                Ok(other) => return Ok(GuestExit::Other(format!("unexpected exit {other:?}"))),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    // A kick, or a stray signal. A stray one (or a late kick meant for an earlier
                    // VM on this thread) may have set immediate_exit: clear it and go on.
                    if !self.shared.stopped() {
                        self.vcpu.set_kvm_immediate_exit(0);
                    }
                }
                Err(e) => return Err(kvm_error("KVM_RUN", e)),
            }
        }
    }

    fn internal_suberror(&mut self) -> u32 {
        let run = self.vcpu.get_kvm_run();
        // SAFETY: the exit reason was KVM_EXIT_INTERNAL_ERROR, so `internal` is the union's
        // active field.
        unsafe { run.__bindgen_anon_1.internal.suberror }
    }

    /// The privilege level the vCPU is at now (0 for kernel mode, 3 for user mode): the low
    /// bits of its code segment selector, as KVM saved them at the last exit.
    pub fn ring(&self) -> Result<u8> {
        let sregs = self
            .vcpu
            .get_sregs()
            .map_err(|e| kvm_error("KVM_GET_SREGS", e))?;
        Ok((sregs.cs.selector & 3) as u8)
    }

    /// KVM's exit and emulation counters for this vCPU so far; `None` where the kernel offers
    /// no statistics file descriptor (before Linux 5.14) or names them otherwise.
    pub fn counts(&self) -> Option<VcpuCounts> {
        use std::os::fd::AsRawFd;
        // KVM_GET_STATS_FD is _IO(0xAE, 0xce); kvm-ioctls has no wrapper for it.
        const KVM_GET_STATS_FD: libc::c_ulong = 0xAECE;
        // SAFETY: an ioctl without an argument on the vCPU fd we own; it returns a new fd or -1.
        let fd = unsafe { libc::ioctl(self.vcpu.as_raw_fd(), KVM_GET_STATS_FD as _, 0) };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just returned to us and nothing else owns it.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        let named = read_stats(&file)?;
        let get = |name: &str| named.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        Some(VcpuCounts {
            exits: get("exits")?,
            emulated_instructions: get("insn_emulation")?,
        })
    }

    /// Bytes of guest memory the host has actually backed with pages so far (resident).
    pub fn resident_bytes(&self) -> u64 {
        let Ok(host) = self.memory.get_host_address(GuestAddress(0)) else {
            return 0;
        };
        let pages = self.memory_bytes.div_ceil(4096) as usize;
        let mut in_core = vec![0u8; pages];
        // SAFETY: `host` is the start of our mapping of `memory_bytes` (page-aligned, as mmap
        // returns it); `in_core` has one byte per page.
        let ok = unsafe {
            libc::mincore(
                host.cast(),
                self.memory_bytes as usize,
                in_core.as_mut_ptr(),
            )
        };
        if ok != 0 {
            return 0;
        }
        in_core.iter().filter(|b| *b & 1 != 0).count() as u64 * 4096
    }
}

/// Every single-value counter in a KVM statistics file, by name. The file is a header (six
/// u32: flags, name size, count, id offset, descriptors' offset, data's offset), descriptors
/// (flags u32, exponent i16, size u16, offset u32, bucket size u32, then the name) and data
/// (u64 values). See the kernel's Documentation/virt/kvm/api.rst, KVM_GET_STATS_FD.
fn read_stats(file: &std::fs::File) -> Option<Vec<(String, u64)>> {
    use std::os::unix::fs::FileExt;
    let u32_at = |bytes: &[u8], at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let mut header = [0u8; 24];
    file.read_exact_at(&mut header, 0).ok()?;
    let (name_size, count) = (u32_at(&header, 4)?, u32_at(&header, 8)?);
    let (descriptors_at, data_at) = (u32_at(&header, 16)?, u32_at(&header, 20)?);
    let descriptor_size = 16 + name_size;
    // A sanity bound: a kernel lists a few dozen counters.
    if count > 4096 || name_size > 4096 {
        return None;
    }
    let mut descriptors = vec![0u8; descriptor_size * count];
    file.read_exact_at(&mut descriptors, descriptors_at as u64)
        .ok()?;
    let mut named = Vec::new();
    for d in descriptors.chunks_exact(descriptor_size) {
        let size = u16::from_le_bytes([d[6], d[7]]);
        if size != 1 {
            continue; // a histogram, not one value
        }
        let offset = u32_at(d, 8)?;
        let name = &d[16..];
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let name = String::from_utf8_lossy(&name[..end]);
        let mut value = [0u8; 8];
        file.read_exact_at(&mut value, (data_at + offset) as u64)
            .ok()?;
        named.push((name.into_owned(), u64::from_le_bytes(value)));
    }
    Some(named)
}

/// Checks a guest memory size before anything is mapped.
pub(crate) fn check_memory(bytes: u64) -> Result<u64> {
    virtlab_core::error::check_range(
        "the guest memory (bytes)",
        bytes,
        layout::MIN_MEMORY,
        layout::MAX_MEMORY,
    )?;
    if !bytes.is_multiple_of(4096) {
        return Err(Error::invalid(
            "the guest memory (bytes)",
            bytes,
            "use a multiple of 4 KiB, e.g. 2MiB",
        ));
    }
    Ok(bytes)
}

/// Maps guest memory and writes the GDT, page tables and program into it.
fn load(memory_bytes: u64, guest: &Guest) -> Result<GuestMemoryMmap> {
    let memory = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), memory_bytes as usize)])
        .map_err(|e| {
            Error::of(
                ErrorKind::Refused,
                format!(
                    "could not map {} of guest memory: {e}",
                    virtlab_core::units::bytes(memory_bytes)
                ),
                "choose less guest memory",
            )
        })?;
    let write = |address: u64, bytes: &[u8]| {
        memory
            .write_slice(bytes, GuestAddress(address))
            .map_err(|e| Error::bug(format!("writing guest memory at {address:#x}: {e}")))
    };
    let gdt: Vec<u8> = layout::gdt().iter().flat_map(|e| e.to_le_bytes()).collect();
    write(layout::GDT_ADDRESS, &gdt)?;
    for (address, entries) in layout::page_tables(memory_bytes) {
        let bytes: Vec<u8> = entries.iter().flat_map(|e| e.to_le_bytes()).collect();
        write(address, &bytes)?;
    }
    if CODE_ADDRESS + guest.code().len() as u64 > memory_bytes {
        return Err(Error::new(
            "the guest program does not fit in the guest memory",
            "give the VM more memory",
        ));
    }
    write(CODE_ADDRESS, guest.code())?;
    Ok(memory)
}

/// Puts the vCPU straight into 64-bit long mode with paging on, at the program's first byte.
fn set_long_mode(vcpu: &VcpuFd) -> Result<()> {
    let mut sregs = vcpu
        .get_sregs()
        .map_err(|e| kvm_error("KVM_GET_SREGS", e))?;
    let code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: layout::CODE_SELECTOR,
        type_: 11, // execute/read, accessed
        present: 1,
        dpl: 0,
        db: 0, // must be 0 when l = 1
        s: 1,
        l: 1, // 64-bit code
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    let data = kvm_segment {
        selector: layout::DATA_SELECTOR,
        type_: 3, // read/write, accessed
        db: 1,
        l: 0,
        ..code
    };
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.gdt.base = layout::GDT_ADDRESS;
    sregs.gdt.limit = (layout::gdt().len() * 8 - 1) as u16;
    // No interrupt table: any exception becomes a double, then a triple fault (a shutdown).
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr3 = layout::PML4_ADDRESS;
    sregs.cr4 = layout::CR4_PAE;
    sregs.cr0 = layout::CR0_PE
        | layout::CR0_MP
        | layout::CR0_ET
        | layout::CR0_NE
        | layout::CR0_WP
        | layout::CR0_AM
        | layout::CR0_PG;
    sregs.efer = layout::EFER_LME | layout::EFER_LMA;
    vcpu.set_sregs(&sregs)
        .map_err(|e| kvm_error("KVM_SET_SREGS", e))?;

    let mut regs = vcpu.get_regs().map_err(|e| kvm_error("KVM_GET_REGS", e))?;
    regs.rip = CODE_ADDRESS;
    regs.rsp = layout::STACK_TOP;
    regs.rflags = 0x2; // bit 1 is always set
    vcpu.set_regs(&regs)
        .map_err(|e| kvm_error("KVM_SET_REGS", e))
}

fn kvm_error(action: &str, e: kvm_ioctls::Error) -> Error {
    Error::errno(
        format!("{action} failed"),
        e.errno(),
        "add yourself to the kvm group (`sudo usermod -aG kvm $USER`) and log in again",
        "check `dmesg` for KVM messages; the chapter's support table tells what KVM offers here",
    )
    .caused_by(e)
}
