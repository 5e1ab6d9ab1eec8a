//! "Which layer am I in?": what a program can see from inside of the layers it may run in — a
//! container (its namespaces against the host's initial ones, whether it is pid 1, the
//! runtime's marker files, its cgroup), a VM (the CPUID hypervisor bit and vendor, whether
//! `cpuid` costs more than a system call because it traps, steal time counted since boot) —
//! and the instance it was given (CPUs, memory). [`Evidence::here`] looks; [`Verdict::of`]
//! decides from the evidence alone, so a verdict is never written down in advance.

use serde::{Deserialize, Serialize};
use virtlab_core::limits::{self, Limit};

/// The inode numbers of the host's initial namespaces, fixed by the kernel
/// (include/linux/proc_ns.h: PROC_*_INIT_INO); the network and mount namespaces have none.
pub const INITIAL_NAMESPACES: [(&str, u64); 5] = [
    ("cgroup", 0xEFFF_FFFB),
    ("ipc", 0xEFFF_FFFF),
    ("uts", 0xEFFF_FFFE),
    ("user", 0xEFFF_FFFD),
    ("pid", 0xEFFF_FFFC),
];

/// `cpuid` taking this many times a system call's time is taken as a trap to a hypervisor: on
/// bare metal it costs about as much as a short system call, in a VM several times more.
pub const TRAP_FACTOR: f64 = 3.0;

/// Batches of 200 timed for each operation (the median is kept).
const BATCHES: usize = 200;

/// One namespace of this process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    pub kind: String,
    /// Its inode number (`/proc/self/ns/<kind>`).
    pub ours: u64,
    /// The host's initial one's, where the kernel fixes it.
    pub initial: Option<u64>,
}

/// What was seen from inside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Our pid as we see it.
    pub pid: u32,
    /// Pid 1's command (`/proc/1/comm`).
    pub pid1: Option<String>,
    pub namespaces: Vec<Namespace>,
    /// Pid 1's cgroups, as `/proc/1/cgroup` lists them.
    pub pid1_cgroups: Vec<String>,
    /// A container runtime's marker file.
    pub marker: Option<String>,
    /// The hypervisor CPUID names (leaf 1 ECX bit 31, vendor from leaf 0x40000000).
    pub hypervisor: Option<String>,
    /// Median ns of one `cpuid` (x86 only).
    pub cpuid_ns: Option<f64>,
    /// Median ns of one `getppid` system call.
    pub syscall_ns: f64,
    /// Steal counted since boot as a share of all CPU time (`/proc/stat`).
    pub steal_since_boot: Option<f64>,
    /// CPUs the scheduler lets us use.
    pub cpus_allowed: Limit<usize>,
    /// Our cgroup's CPU quota as visible here.
    pub cpu_quota: Limit<f64>,
    /// Our cgroup's memory limit as visible here.
    pub memory_limit: Limit<u64>,
    /// MemTotal of `/proc/meminfo`, bytes.
    pub memory_total: Option<u64>,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

impl Evidence {
    /// Looks around from this process. Nothing here fails: what cannot be seen is left empty.
    pub fn here() -> Evidence {
        let costs = virtlab_core::traps::instruction_costs(BATCHES).unwrap_or_default();
        let cost = |name: &str| costs.iter().find(|c| c.name.contains(name)).map(|c| c.ns);
        let namespaces = ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
            .into_iter()
            .filter_map(|kind| {
                let link = std::fs::read_link(format!("/proc/self/ns/{kind}")).ok()?;
                Some(Namespace {
                    kind: kind.into(),
                    ours: namespace_inode(&link.to_string_lossy())?,
                    initial: INITIAL_NAMESPACES
                        .iter()
                        .find(|(k, _)| *k == kind)
                        .map(|(_, ino)| *ino),
                })
            })
            .collect();
        let steal_since_boot = read("/proc/stat")
            .and_then(|t| virtlab_core::load::parse_stat(&t))
            .map(|t| t.steal as f64 / t.total.max(1) as f64);
        let memory_total = read("/proc/meminfo").and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .map(|kib| kib * 1024)
        });
        Evidence {
            pid: std::process::id(),
            pid1: read("/proc/1/comm").map(|c| c.trim().to_string()),
            namespaces,
            pid1_cgroups: read("/proc/1/cgroup")
                .map(|c| c.lines().map(str::to_string).collect())
                .unwrap_or_default(),
            marker: limits::container_marker(),
            hypervisor: virtlab_core::machine::hypervisor(),
            cpuid_ns: cost("cpuid"),
            syscall_ns: cost("getppid").unwrap_or(0.0),
            steal_since_boot,
            cpus_allowed: limits::affinity_cpus(),
            cpu_quota: limits::cgroup_cpu_quota(),
            memory_limit: limits::cgroup_memory_limit(),
            memory_total,
        }
    }
}

/// The inode of a namespace link such as `pid:[4026531836]`.
pub fn namespace_inode(link: &str) -> Option<u64> {
    link.split_once(":[")?.1.strip_suffix(']')?.parse().ok()
}

/// One layer's verdict and the evidence for and against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    pub found: bool,
    /// What points to the layer.
    pub because: Vec<String>,
    /// What was looked at and did not.
    pub against: Vec<String>,
}

impl Layer {
    fn from(signs: Vec<(bool, String)>) -> Layer {
        let (because, against): (Vec<_>, Vec<_>) = signs.into_iter().partition(|(yes, _)| *yes);
        Layer {
            found: !because.is_empty(),
            because: because.into_iter().map(|(_, s)| s).collect(),
            against: against.into_iter().map(|(_, s)| s).collect(),
        }
    }
}

/// The verdict for every layer, from one [`Evidence`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub container: Layer,
    pub vm: Layer,
    /// The instance it was given, in words: CPUs and memory with the limits that set them.
    pub instance: String,
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
}

impl Verdict {
    /// Decides each layer from `e` alone.
    pub fn of(e: &Evidence) -> Verdict {
        let mut container = vec![(e.pid == 1, format!("this process is pid {}", e.pid))];
        for ns in &e.namespaces {
            if let Some(initial) = ns.initial {
                let own = ns.ours != initial;
                container.push((
                    own,
                    format!(
                        "{} namespace {} {} the host's initial {initial}",
                        ns.kind,
                        ns.ours,
                        if own { "is not" } else { "is" }
                    ),
                ));
            }
        }
        if !e.pid1_cgroups.is_empty() {
            // A host's pid 1 sits at the root of every hierarchy (or in systemd's init.scope);
            // a container's pid 1 deeper, unless a cgroup namespace makes its group read "/".
            let paths: Vec<&str> = e
                .pid1_cgroups
                .iter()
                .filter_map(|l| l.splitn(3, ':').nth(2))
                .collect();
            let deeper = paths.iter().any(|p| *p != "/" && *p != "/init.scope");
            let mut distinct = paths.clone();
            distinct.sort_unstable();
            distinct.dedup();
            container.push((
                deeper,
                format!("pid 1's cgroups (/proc/1/cgroup): {}", distinct.join(", ")),
            ));
        }
        container.push(match &e.marker {
            Some(marker) => (true, marker.clone()),
            None => (false, "no /.dockerenv or /run/.containerenv".into()),
        });
        let mut vm = vec![match &e.hypervisor {
            Some(name) => (
                true,
                format!(
                    "CPUID says a hypervisor is present: {name} (leaf 1 ECX bit 31, leaf 0x40000000)"
                ),
            ),
            None => (false, "CPUID's hypervisor bit is clear".into()),
        }];
        if let Some(cpuid) = e.cpuid_ns {
            let traps = cpuid > TRAP_FACTOR * e.syscall_ns;
            vm.push((
                traps,
                format!(
                    "cpuid {cpuid:.0} ns against {:.0} ns for a system call: {}",
                    e.syscall_ns,
                    if traps {
                        "it traps to a hypervisor"
                    } else {
                        "the CPU answers it"
                    }
                ),
            ));
        }
        if let Some(steal) = e.steal_since_boot {
            vm.push((
                steal > 0.0,
                format!(
                    "steal since boot {:.3}% of CPU time ({})",
                    100.0 * steal,
                    if steal > 0.0 {
                        "only a hypervisor takes it"
                    } else {
                        "none taken"
                    }
                ),
            ));
        }
        let cpus = e.cpus_allowed.describe(|n| format!("{n} CPUs allowed"));
        let quota = e.cpu_quota.describe(|q| format!("{q:.2} CPUs"));
        let memory = e.memory_total.map_or("not observable".into(), gib);
        let limit = e.memory_limit.describe(|b| gib(*b));
        Verdict {
            container: Layer::from(container),
            vm: Layer::from(vm),
            instance: format!("{cpus}, CPU quota {quota}; memory {memory}, cgroup limit {limit}"),
        }
    }
}

/// A place the program ran, with what it saw and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Whereami {
    pub evidence: Evidence,
    pub verdict: Verdict,
}

impl Whereami {
    /// Looks and decides, here.
    pub fn here() -> Whereami {
        let evidence = Evidence::here();
        Whereami {
            verdict: Verdict::of(&evidence),
            evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare() -> Evidence {
        Evidence {
            pid: 4242,
            pid1: Some("systemd".into()),
            namespaces: INITIAL_NAMESPACES
                .iter()
                .map(|(kind, ino)| Namespace {
                    kind: kind.to_string(),
                    ours: *ino,
                    initial: Some(*ino),
                })
                .collect(),
            pid1_cgroups: vec!["0::/init.scope".into()],
            marker: None,
            hypervisor: None,
            cpuid_ns: Some(40.0),
            syscall_ns: 60.0,
            steal_since_boot: Some(0.0),
            cpus_allowed: Limit::Set(8),
            cpu_quota: Limit::Unlimited,
            memory_limit: Limit::Unlimited,
            memory_total: Some(16 << 30),
        }
    }

    #[test]
    fn bare_metal_on_the_host_finds_no_layer() {
        let v = Verdict::of(&bare());
        assert!(!v.container.found && !v.vm.found, "{v:?}");
        assert!(
            v.vm.against
                .iter()
                .any(|s| s.contains("the CPU answers it"))
        );
        assert!(v.instance.contains("8 CPUs allowed") && v.instance.contains("16.00 GiB"));
    }

    #[test]
    fn each_sign_alone_finds_its_layer() {
        let mut e = bare();
        e.namespaces[4].ours += 1000;
        let v = Verdict::of(&e);
        assert!(v.container.found && !v.vm.found);
        assert!(v.container.because[0].contains("pid namespace"), "{v:?}");

        let mut e = bare();
        e.pid = 1;
        assert!(Verdict::of(&e).container.found);

        let mut e = bare();
        e.pid1_cgroups = vec!["4:cpu,cpuacct:/docker/0123abcd".into()];
        let v = Verdict::of(&e);
        assert!(
            v.container.found && v.container.because[0].contains("/docker/0123abcd"),
            "{v:?}"
        );

        let mut e = bare();
        e.cpuid_ns = Some(1100.0);
        let v = Verdict::of(&e);
        assert!(v.vm.found && v.vm.because[0].contains("traps"), "{v:?}");

        let mut e = bare();
        e.hypervisor = Some("KVM".into());
        assert!(Verdict::of(&e).vm.because[0].contains("KVM"));

        let mut e = bare();
        e.steal_since_boot = Some(0.001);
        assert!(Verdict::of(&e).vm.found);
    }

    #[test]
    fn namespace_links_parse() {
        assert_eq!(namespace_inode("pid:[4026531836]"), Some(4026531836));
        assert_eq!(namespace_inode("pid:4026531836"), None);
        assert_eq!(INITIAL_NAMESPACES[4], ("pid", 4026531836));
    }

    #[test]
    fn here_sees_this_process() {
        let w = Whereami::here();
        assert_eq!(w.evidence.pid, std::process::id());
        assert!(w.evidence.syscall_ns > 0.0);
        assert!(w.evidence.namespaces.iter().any(|n| n.kind == "pid"));
        assert_eq!(w.verdict, Verdict::of(&w.evidence));
    }
}
