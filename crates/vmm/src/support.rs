//! Can this machine make virtual machines, and how fast will they be? Looks at `/dev/kvm` (there?
//! may we open it?), the CPU's virtualization flag (`vmx` for Intel VT-x, `svm` for AMD-V) and
//! the KVM modules loaded. Three answers: hardware-assisted KVM (guest code runs on the CPU at
//! native speed), KVM-PVM (paravirtualization without the CPU's extensions: a guest kernel
//! written for PVM runs natively at the CPU's ring 3; a bare guest's ring-0 code, like ours,
//! goes through KVM's instruction emulator), or none, with what to do about it.
//!
//! `VIRTLAB_KVM_DEVICE` names another device file to use instead of `/dev/kvm` (tests point it
//! at a missing path to see the no-KVM answer).

use std::path::{Path, PathBuf};
use virtlab_core::Error;
use virtlab_core::Result;
use virtlab_display::{Html, Table};

/// The environment variable that overrides the KVM device path.
pub const DEVICE_VARIABLE: &str = "VIRTLAB_KVM_DEVICE";
const DEFAULT_DEVICE: &str = "/dev/kvm";
/// The only KVM API version there has ever been (`KVM_GET_API_VERSION`).
pub(crate) const KVM_API_VERSION: i32 = 12;

/// How guest code runs here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// KVM on the CPU's own virtualization extensions: guest code runs natively, and only
    /// touches of (fake) hardware leave the guest.
    Hardware(&'static str),
    /// KVM-PVM (Huang et al., SOSP 2023): paravirtualization for guests inside a VM that has
    /// no nested hardware support. A PVM-aware guest kernel runs natively at the CPU's ring 3,
    /// as do a guest's own ring-3 programs; a bare ring-0 guest such as ours is run by KVM's
    /// instruction emulator.
    SoftwarePvm,
    /// `/dev/kvm` works but neither a CPU flag nor PVM was seen: speed unknown.
    Unknown,
    /// No usable KVM: see [`Support::ready`] for why and what to do.
    Unavailable,
}

/// What was found about virtualization on this machine.
#[derive(Debug, Clone)]
pub struct Support {
    /// The device file used (`/dev/kvm`, or `VIRTLAB_KVM_DEVICE`).
    pub device: PathBuf,
    /// How guest code runs here.
    pub mode: Mode,
    /// `KVM_GET_API_VERSION` when the device could be opened.
    pub api_version: Option<i32>,
    /// The CPU's virtualization flag as this (possibly virtual) CPU reports it.
    pub cpu_flag: Option<&'static str>,
    /// KVM modules loaded in the kernel (`kvm`, `kvm_intel`, `kvm_amd`, `kvm_pvm`).
    pub modules: Vec<String>,
    /// The hypervisor this machine itself runs under, if any.
    pub hypervisor: Option<String>,
    problem: Option<Error>,
}

/// Looks at the device named by `VIRTLAB_KVM_DEVICE`, or `/dev/kvm`.
pub fn support() -> Support {
    detect(&device_path())
}

/// The KVM device to use: `VIRTLAB_KVM_DEVICE`, or `/dev/kvm`.
pub fn device_path() -> PathBuf {
    std::env::var_os(DEVICE_VARIABLE)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DEVICE))
}

/// Looks at `device` as the KVM device.
pub fn detect(device: &Path) -> Support {
    let cpu_flag = cpu_flag();
    let modules = loaded_modules();
    let (api_version, problem) = match open(device) {
        Ok(version) if version == KVM_API_VERSION => (Some(version), None),
        Ok(version) => (
            Some(version),
            Some(Error::unavailable(
                format!(
                    "{} speaks KVM API version {version}, not {KVM_API_VERSION}",
                    device.display()
                ),
                "use a Linux kernel with the standard KVM API (every kernel since 2.6.22)",
            )),
        ),
        Err(e) => (None, Some(e)),
    };
    let mode = if problem.is_some() {
        Mode::Unavailable
    } else if modules.iter().any(|m| m == "kvm_pvm") {
        Mode::SoftwarePvm
    } else {
        match cpu_flag {
            Some("vmx") => Mode::Hardware("Intel VT-x"),
            Some(_) => Mode::Hardware("AMD-V"),
            None => Mode::Unknown,
        }
    };
    Support {
        device: device.to_path_buf(),
        mode,
        api_version,
        cpu_flag,
        modules,
        hypervisor: virtlab_core::machine::hypervisor(),
        problem,
    }
}

impl Support {
    /// `Ok` when virtual machines can be made here; otherwise what is missing and the fix.
    pub fn ready(&self) -> Result<()> {
        match &self.problem {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The mode in a few words, to print beside every number measured in a VM.
    pub fn label(&self) -> String {
        match &self.mode {
            Mode::Hardware(what) => format!("hardware-assisted KVM ({what})"),
            Mode::SoftwarePvm => "KVM-PVM (paravirtualization, no VT-x/AMD-V): a PVM-aware guest \
                                  kernel runs natively in ring 3; a bare ring-0 guest like ours \
                                  goes through KVM's instruction emulator"
                .into(),
            Mode::Unknown => "KVM of an unknown kind (no vmx/svm flag, no PVM)".into(),
            Mode::Unavailable => "no usable KVM".into(),
        }
    }

    /// The findings as a table.
    pub fn table(&self) -> Table {
        let mut t = Table::new("Virtualization on this machine", ["what", "value"]);
        t.row(["mode", &self.label()]);
        let device = match (&self.api_version, &self.problem) {
            (Some(v), None) => format!("{} (API version {v})", self.device.display()),
            (_, Some(e)) => format!("{}: {}", self.device.display(), e.problem()),
            (None, None) => self.device.display().to_string(),
        };
        t.row(["KVM device", &device]);
        t.row([
            "CPU virtualization flag",
            &match self.cpu_flag {
                Some(flag) => format!("{flag} (hardware extensions visible)"),
                None => "none: no vmx (Intel) or svm (AMD) flag".into(),
            },
        ]);
        t.row([
            "KVM modules loaded",
            &if self.modules.is_empty() {
                "none".into()
            } else {
                self.modules.join(", ")
            },
        ]);
        t.row([
            "we ourselves run under",
            self.hypervisor.as_deref().unwrap_or("no hypervisor seen"),
        ]);
        if let Some(e) = &self.problem {
            t.row(["fix", e.fix()]);
        }
        t
    }

    /// The table as HTML.
    pub fn to_html(&self) -> Html {
        self.table().to_html()
    }

    /// Shows the table inline in a notebook.
    pub fn evcxr_display(&self) {
        self.to_html().evcxr_display();
    }
}

/// Opens the device read-write (what KVM needs) and asks for its API version.
#[cfg(target_os = "linux")]
fn open(device: &Path) -> Result<i32> {
    let file = open_device(device)?;
    use std::os::fd::AsRawFd;
    // KVM_GET_API_VERSION is _IO(0xAE, 0x00).
    const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
    // SAFETY: an ioctl without an argument on an fd we own; a non-KVM file answers -1.
    let version = unsafe { libc::ioctl(file.as_raw_fd(), KVM_GET_API_VERSION as _, 0) };
    if version < 0 {
        return Err(not_kvm(device));
    }
    Ok(version)
}

/// The error for a device file that does not answer KVM's ioctls.
#[cfg(target_os = "linux")]
pub(crate) fn not_kvm(device: &Path) -> Error {
    Error::unavailable(
        format!(
            "{} is not a KVM device (KVM_GET_API_VERSION failed)",
            device.display()
        ),
        format!("unset {DEVICE_VARIABLE} or point it at /dev/kvm"),
    )
}

/// Opens the KVM device read-write, close-on-exec; a failure says what to do about it.
#[cfg(target_os = "linux")]
pub(crate) fn open_device(device: &Path) -> Result<std::fs::File> {
    use std::io::ErrorKind;
    let shown = device.display();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Error::unavailable(
                format!("{shown} does not exist, so this machine offers no KVM"),
                "enable virtualization (Intel VT-x or AMD-V, often called SVM) in the firmware \
                 settings and load the module (`sudo modprobe kvm_intel` or `kvm_amd`); inside a \
                 cloud VM, pick an instance type with nested virtualization; in a container, \
                 start it with `--device /dev/kvm`",
            ));
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            return Err(Error::unavailable(
                format!("{shown} exists but this user may not open it"),
                "add yourself to the kvm group (`sudo usermod -aG kvm $USER`), then log out and \
                 in again",
            ));
        }
        Err(e) => return Err(Error::io(format!("opening {shown}"), e)),
    };
    Ok(file)
}

#[cfg(not(target_os = "linux"))]
fn open(_device: &Path) -> Result<i32> {
    Err(Error::unavailable(
        "KVM is Linux's hypervisor API, and this is not Linux",
        "run this chapter on Linux (a laptop or a cloud VM with nested virtualization); the \
         inside-view measurements still work here",
    ))
}

/// `vmx` or `svm` from /proc/cpuinfo's flags.
fn cpu_flag() -> Option<&'static str> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    flag_in(flags)
}

fn flag_in(flags: &str) -> Option<&'static str> {
    ["vmx", "svm"]
        .into_iter()
        .find(|flag| flags.split_whitespace().any(|w| w == *flag))
}

fn loaded_modules() -> Vec<String> {
    ["kvm", "kvm_intel", "kvm_amd", "kvm_pvm"]
        .into_iter()
        .filter(|m| Path::new("/sys/module").join(m).exists())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_says_what_to_do() {
        let support = detect(Path::new("/nonexistent/kvm"));
        assert_eq!(support.mode, Mode::Unavailable);
        let e = support.ready().unwrap_err();
        assert!(e.problem().contains("does not exist"), "{e}");
        assert!(e.fix().contains("firmware"), "{e}");
        assert!(support.table().to_string().contains("fix"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_file_that_is_not_kvm_is_named() {
        let support = detect(Path::new("/dev/null"));
        assert_eq!(support.mode, Mode::Unavailable);
        assert!(
            support
                .ready()
                .unwrap_err()
                .problem()
                .contains("not a KVM device")
        );
    }

    #[test]
    fn cpu_flags_are_read_as_words() {
        assert_eq!(flag_in("flags : fpu vmx sse"), Some("vmx"));
        assert_eq!(flag_in("flags : fpu svm"), Some("svm"));
        assert_eq!(flag_in("flags : fpu svmx vmxx"), None);
    }
}
