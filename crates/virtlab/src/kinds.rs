//! The registry of kinds of worker: for each rung of the cost ladder, the kind that runs it,
//! built only when its chapter's feature is on. `virtlab ladder-probe` makes its kind here.

use crate::executor::Kind;
use crate::{Error, Result, cost};

/// The kind of worker on the ladder's rung `rung`, ready to start units.
pub fn make(rung: &str) -> Result<Box<dyn Kind>> {
    match rung {
        "process" => Ok(Box::new(crate::processes::Processes::new()?)),
        "thread" => Ok(Box::new(crate::threads::Threads::new())),
        #[cfg(feature = "tasks")]
        "task" => Ok(Box::new(crate::tasks::Tasks::new()?)),
        #[cfg(feature = "langvm")]
        "wasm" => Ok(Box::new(crate::langvm::instance::WasmInstances::new()?)),
        #[cfg(all(feature = "container", target_os = "linux"))]
        "container" => Ok(Box::new(crate::container::kind::Containers::for_ladder()?)),
        #[cfg(all(feature = "vm", target_os = "linux", target_arch = "x86_64"))]
        "vm" => Ok(Box::new(crate::vm::Vms::new(crate::vm::LADDER_MEMORY)?)),
        #[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
        "vm" => Err(Error::unavailable(
            "virtual machines here need KVM on Linux x86-64",
            "measure the VM rung on a Linux x86-64 machine with /dev/kvm",
        )),
        known if cost::KINDS.contains(&known) => Err(Error::unavailable(
            format!("this build of virtlab leaves out the '{known}' kind of worker"),
            "build with its chapter's feature (the `virtlab` program has every chapter)",
        )),
        other => Err(Error::invalid(
            "the kind of worker",
            format!("'{other}'"),
            format!("choose one of {}", cost::KINDS.join(", ")),
        )),
    }
}
