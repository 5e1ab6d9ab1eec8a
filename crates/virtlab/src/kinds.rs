//! The registry of kinds of worker: each kind declared once — its rung on the cost ladder, the
//! `virtlab` subcommand that runs it, the chapter feature that builds it, and how to make one.
//! `virtlab ladder-probe` makes its kind here and reports its place (the ladder's order: rows
//! and colours); `virtlab ladder --help` lists them from here, and the ladder checks the kinds
//! it is asked for against `virtlab ladder-probe --rungs`.

use crate::executor::AnyKind;
use crate::{Error, Result};

/// One kind of worker, as the lab knows it.
pub struct Entry {
    /// Its rung on the cost ladder: "task", "wasm", "thread", "process", "container", "vm",
    /// "rank".
    pub rung: &'static str,
    /// The `virtlab` subcommand that runs it.
    pub command: &'static str,
    /// The cargo feature (its chapter) that builds it into this crate.
    pub feature: &'static str,
    /// Makes one, ready to start units (or says why this build or machine cannot).
    pub make: fn() -> Result<Box<dyn AnyKind>>,
    /// Which of a job's [`Limits`] its units take, in words ("none" when it takes none).
    pub takes: &'static str,
    /// Makes one whose units are held to those limits, for a kind that takes any.
    pub limited: Option<MakeLimited>,
}

/// Makes a kind whose units are held to a job's limits.
pub type MakeLimited = fn(Limits) -> Result<Box<dyn AnyKind>>;

/// Limits a job asks for each unit; a kind applies those it takes ([`Entry::takes`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    /// CPUs' worth of time, e.g. 0.5.
    pub cpu: Option<f64>,
    /// Memory, bytes.
    pub memory_bytes: Option<u64>,
}

/// Every kind of worker, in ladder order.
pub const REGISTRY: &[Entry] = &[
    Entry {
        rung: "task",
        command: "tasks",
        feature: "tasks",
        make: || {
            #[cfg(feature = "tasks")]
            let made = boxed(crate::tasks::Tasks::new());
            #[cfg(not(feature = "tasks"))]
            let made = left_out("tasks");
            made
        },
        takes: "none",
        limited: None,
    },
    Entry {
        rung: "wasm",
        command: "wasm",
        feature: "langvm",
        make: || {
            #[cfg(feature = "langvm")]
            let made = boxed(crate::langvm::instance::WasmInstances::new());
            #[cfg(not(feature = "langvm"))]
            let made = left_out("langvm");
            made
        },
        takes: "none",
        limited: None,
    },
    Entry {
        rung: "thread",
        command: "threads",
        feature: "threads",
        make: || boxed(Ok(crate::threads::Threads::new())),
        takes: "none",
        limited: None,
    },
    Entry {
        rung: "process",
        command: "processes",
        feature: "processes",
        make: || boxed(crate::processes::Processes::new()),
        takes: "none",
        limited: None,
    },
    Entry {
        rung: "container",
        command: "container",
        feature: "container",
        make: || {
            #[cfg(all(feature = "container", target_os = "linux"))]
            let made = boxed(crate::container::kind::Containers::for_ladder());
            #[cfg(not(all(feature = "container", target_os = "linux")))]
            let made = left_out("container");
            made
        },
        takes: "CPU and memory (its cgroup)",
        limited: Some(|limits| {
            #[cfg(all(feature = "container", target_os = "linux"))]
            let made = boxed(crate::container::kind::Containers::limited_to(
                limits.cpu,
                limits.memory_bytes,
            ));
            #[cfg(not(all(feature = "container", target_os = "linux")))]
            let made = {
                let _ = limits;
                left_out("container")
            };
            made
        }),
    },
    Entry {
        rung: "vm",
        command: "vm",
        feature: "vm",
        make: || {
            #[cfg(all(feature = "vm", target_os = "linux", target_arch = "x86_64"))]
            let made = boxed(crate::vm::Vms::new(crate::vm::LADDER_MEMORY));
            #[cfg(not(all(feature = "vm", target_os = "linux", target_arch = "x86_64")))]
            let made = left_out("vm");
            made
        },
        takes: "memory (its guest RAM)",
        limited: Some(|limits| {
            #[cfg(all(feature = "vm", target_os = "linux", target_arch = "x86_64"))]
            let made = boxed(crate::vm::Vms::new(
                limits.memory_bytes.unwrap_or(crate::vm::LADDER_MEMORY),
            ));
            #[cfg(not(all(feature = "vm", target_os = "linux", target_arch = "x86_64")))]
            let made = {
                let _ = limits;
                left_out("vm")
            };
            made
        }),
    },
    Entry {
        rung: "rank",
        command: "mpi",
        feature: "cluster",
        make: || {
            #[cfg(all(feature = "cluster", target_os = "linux"))]
            let made = boxed(crate::cluster::kind::Ranks::for_ladder());
            #[cfg(not(all(feature = "cluster", target_os = "linux")))]
            let made = left_out("cluster");
            made
        },
        takes: "none (each node is its instance type)",
        limited: None,
    },
];

/// The registry's entry for `rung`, or the error that lists the rungs there are.
pub fn entry(rung: &str) -> Result<&'static Entry> {
    REGISTRY.iter().find(|e| e.rung == rung).ok_or_else(|| {
        Error::invalid(
            "the kind of worker",
            format!("'{rung}'"),
            format!("choose one of {}", rungs().join(", ")),
        )
    })
}

/// The place of `rung` on the ladder, cheapest first.
pub fn place(rung: &str) -> Result<usize> {
    let entry = entry(rung)?;
    Ok(REGISTRY
        .iter()
        .position(|e| std::ptr::eq(e, entry))
        .expect("an entry of the registry"))
}

/// The kind of worker on the ladder's rung `rung`, ready to start units.
pub fn make(rung: &str) -> Result<Box<dyn AnyKind>> {
    (entry(rung)?.make)()
}

/// The kind on `rung` with its units held to `limits` where it takes them ([`Entry::takes`]),
/// made as [`make`] makes it where it takes none.
pub fn make_limited(rung: &str, limits: Limits) -> Result<Box<dyn AnyKind>> {
    let entry = entry(rung)?;
    match entry.limited {
        Some(limited) => limited(limits),
        None => (entry.make)(),
    }
}

/// Every rung, in ladder order.
pub fn rungs() -> Vec<&'static str> {
    REGISTRY.iter().map(|e| e.rung).collect()
}

fn boxed<K: AnyKind + 'static>(made: Result<K>) -> Result<Box<dyn AnyKind>> {
    Ok(Box::new(made?))
}

/// A kind this build leaves out: which feature (or platform) it needs.
#[allow(dead_code, reason = "used only by builds that leave a chapter out")]
fn left_out(feature: &str) -> Result<Box<dyn AnyKind>> {
    Err(Error::unavailable(
        format!(
            "this build of virtlab leaves out the chapter feature '{feature}' (or this platform \
             cannot run it: VMs need KVM on Linux x86-64, containers and MPI ranks Linux)"
        ),
        format!(
            "use the `virtlab` program (every chapter), or add \"{feature}\" to the features of \
             the notebook's :dep line"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rungs_place_is_its_row_in_the_registry() {
        assert_eq!(place("task").unwrap(), 0);
        assert_eq!(place("process").unwrap(), 3);
        assert!(place("vm-ish").is_err());
    }

    #[test]
    fn an_unknown_kind_lists_the_known_ones() {
        let err = entry("vm-ish").err().unwrap();
        assert!(err.fix().contains("task, wasm, thread, process"), "{err}");
    }

    #[test]
    fn the_kinds_every_build_has_are_made_and_checked_the_same_way() {
        let threads = make("thread").unwrap();
        assert_eq!(threads.name(), "thread");
        let err = threads.check(0).unwrap_err();
        assert!(
            err.problem().contains("number of threads cannot be 0"),
            "{err}"
        );
    }
}
