//! What a process sees of the machine, taken the same way inside a container (the worker
//! prints it with `--probe`) and on the host, so a table can show what is private (pid,
//! hostname, root folder, mounts, network, processes) and what is shared (the kernel, its boot
//! id, the CPUs and memory it reports).

use serde::{Deserialize, Serialize};
use std::path::Path;
use virtlab_display::Table;

/// A row of the table: its label and how to read it from a probe.
type Fact = (&'static str, fn(&Probe) -> String);

/// One process's view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// "host" or the container's name.
    pub seen_from: String,
    /// Its pid as it sees it (1 inside a container).
    pub pid: u32,
    /// The same process's pid on the host, when it lives in a pid namespace.
    pub host_pid: Option<u32>,
    /// The hostname it sees.
    pub hostname: String,
    /// Names in the root folder, sorted.
    pub root: Vec<String>,
    /// Mounts it sees (/proc/self/mountinfo).
    pub mounts: usize,
    /// Processes listed in /proc.
    pub processes: usize,
    /// Network interfaces it sees (/proc/net/dev).
    pub interfaces: Vec<String>,
    /// Its user id as it sees it.
    pub uid: u32,
    /// The uid this uid is on the host (from /proc/self/uid_map).
    pub uid_outside: Option<u32>,
    /// The kernel release (shared by every container).
    pub kernel: String,
    /// The kernel's boot id (shared by every container).
    pub boot_id: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// The CPU quota visible at /sys/fs/cgroup, in words.
    pub cpu_quota: String,
    /// MemTotal from /proc/meminfo.
    pub memory_total_kib: u64,
    /// Trying to create a file in /usr (never tried on the host).
    pub write_usr: Option<String>,
    /// Its cgroups as it sees them, "controllers:path" per hierarchy (/proc/self/cgroup).
    /// Inside a container its cgroup namespace's root, the container's group, reads "/".
    pub cgroups: Vec<String>,
}

impl Probe {
    /// Looks around from this process. `host_pid` is given inside a container; only then is
    /// writing into /usr tried (on the host, as root, it would succeed for real).
    pub fn here(seen_from: &str, host_pid: Option<u32>) -> Probe {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mut root: Vec<String> = std::fs::read_dir("/")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        root.sort();
        let processes = std::fs::read_dir("/proc").map_or(0, |d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        });
        let interfaces = read("/proc/net/dev")
            .lines()
            .skip(2)
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim().to_string()))
            .collect();
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        Probe {
            seen_from: seen_from.into(),
            pid: std::process::id(),
            host_pid,
            hostname: read("/proc/sys/kernel/hostname").trim().into(),
            root,
            mounts: read("/proc/self/mountinfo").lines().count(),
            processes,
            interfaces,
            uid,
            uid_outside: outside_uid(&read("/proc/self/uid_map"), uid),
            kernel: read("/proc/sys/kernel/osrelease").trim().into(),
            boot_id: read("/proc/sys/kernel/random/boot_id").trim().into(),
            cpus: virtlab_core::machine::usable_cpus(),
            cpu_quota: cpu_quota_seen(),
            memory_total_kib: read("/proc/meminfo")
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or(0),
            write_usr: host_pid.map(|_| try_write("/usr/virtlab-probe")),
            cgroups: read("/proc/self/cgroup")
                .lines()
                .filter_map(|l| l.split_once(':').map(|(_, rest)| rest.to_string()))
                .collect(),
        }
    }

    /// One column per view: the host's and each container's, a row per fact.
    pub fn table(probes: &[Probe]) -> Table {
        let mut header = vec!["fact".to_string()];
        header.extend(probes.iter().map(|p| p.seen_from.clone()));
        let mut t = Table::new("What each one sees: private rooms, shared kitchen", header);
        for (fact, value) in FACTS {
            let mut row = vec![fact.to_string()];
            row.extend(probes.iter().map(value));
            t.row(row);
        }
        t
    }

    /// Which facts every container saw as the host (`views[0]`) did, which none did, and
    /// which some did, written from the values in [`Probe::table`] (the write test left out:
    /// the host does not try it).
    pub fn compared(views: &[Probe]) -> String {
        let Some((host, containers)) = views.split_first() else {
            return "Nothing was probed.".into();
        };
        if containers.is_empty() {
            return "No container reported a probe: nothing to compare with the host.".into();
        }
        let (mut same, mut different, mut mixed) = (Vec::new(), Vec::new(), Vec::new());
        for (fact, value) in &FACTS[..FACTS.len() - 1] {
            let host_value = value(host);
            match containers.iter().filter(|c| value(c) == host_value).count() {
                n if n == containers.len() => same.push(*fact),
                0 => different.push(*fact),
                n => mixed.push(format!("{fact} ({n} of {})", containers.len())),
            }
        }
        let list = |facts: &[&str]| {
            if facts.is_empty() {
                "nothing".to_string()
            } else {
                facts.join(", ")
            }
        };
        let all = match containers.len() {
            1 => "the container".to_string(),
            n => format!("all {n} containers"),
        };
        let mut text = format!(
            "As the host saw it, in {all}: {}. Different from the host in {all}: {}.",
            list(&same),
            list(&different)
        );
        if !mixed.is_empty() {
            text += &format!(" The same in some only: {}.", mixed.join(", "));
        }
        text
    }

    /// Whose powers a container's root has, from the user ids seen inside and outside.
    pub fn user_ids(views: &[Probe]) -> String {
        let mut seen: Vec<(u32, Option<u32>)> = views
            .iter()
            .filter(|p| p.host_pid.is_some())
            .map(|p| (p.uid, p.uid_outside))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        match seen.as_slice() {
            [] => "No container reported its user ids.".into(),
            [(inside, Some(outside))] if inside == outside => format!(
                "Every container's user {inside} is user {outside} outside: its user namespace \
                 maps the id to itself.{}",
                if *inside == 0 {
                    " This runs as root, so root inside is root outside, with root's powers over \
                     whatever its namespaces and mounts let it reach; started by a normal user, \
                     root inside would map to that user's id, with only that user's powers."
                } else {
                    ""
                }
            ),
            [(inside, Some(outside))] => format!(
                "Every container's user {inside} is user {outside} outside: inside it may act \
                 as {}, outside it has only user {outside}'s powers.",
                if *inside == 0 { "root" } else { "that user" }
            ),
            _ => format!(
                "The containers' user ids (inside → outside) differ: {}.",
                seen.iter()
                    .map(|(i, o)| format!("{i} → {}", o.map_or("?".into(), |o| o.to_string())))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The table's rows, in order; the last is the write test, which only containers try.
const FACTS: [Fact; 15] = [
    ("pid", |p| p.pid.to_string()),
    ("pid on the host", |p| {
        p.host_pid.unwrap_or(p.pid).to_string()
    }),
    ("hostname", |p| p.hostname.clone()),
    ("root folder", |p| p.root.join(" ")),
    ("mounts", |p| p.mounts.to_string()),
    ("processes visible", |p| p.processes.to_string()),
    ("network interfaces", |p| p.interfaces.join(" ")),
    ("user id (inside → outside)", |p| {
        format!(
            "{} → {}",
            p.uid,
            p.uid_outside.map_or("?".into(), |u| u.to_string())
        )
    }),
    ("kernel release", |p| p.kernel.clone()),
    ("boot id", |p| p.boot_id.clone()),
    ("CPUs usable", |p| p.cpus.to_string()),
    ("CPU quota visible", |p| p.cpu_quota.clone()),
    ("memory reported", |p| {
        virtlab_core::units::bytes(p.memory_total_kib * 1024)
    }),
    ("cgroup it sees itself in", |p| cgroup_seen(&p.cgroups)),
    ("create /usr/virtlab-probe", |p| {
        p.write_usr.clone().unwrap_or_else(|| "not tried".into())
    }),
];

/// Maps `uid` through uid_map lines "inside outside count".
fn outside_uid(map: &str, uid: u32) -> Option<u32> {
    map.lines().find_map(|line| {
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (inside, outside, count) = (*n.first()?, *n.get(1)?, *n.get(2)?);
        let uid = u64::from(uid);
        (uid >= inside && uid < inside + count).then(|| (outside + uid - inside) as u32)
    })
}

/// One path when every hierarchy says the same (inside a container: "/", its own group seen
/// through its cgroup namespace), else "controllers:path" for each.
fn cgroup_seen(lines: &[String]) -> String {
    let paths: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.split_once(':').map(|(_, path)| path))
        .collect();
    match paths.first() {
        Some(first) if paths.iter().all(|p| p == first) => (*first).to_string(),
        Some(_) => lines.join(" "),
        None => "not visible".into(),
    }
}

fn cpu_quota_seen() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    if let Some(max) = read("/sys/fs/cgroup/cpu.max") {
        return format!("cpu.max {}", max.trim());
    }
    match read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") {
        Some(q) if q.trim() == "-1" => "none".into(),
        Some(q) => format!("{} µs per 100 ms", q.trim()),
        None => "not visible (no /sys/fs/cgroup)".into(),
    }
}

fn try_write(path: &str) -> String {
    match std::fs::write(path, "x") {
        Ok(()) => {
            let _ = std::fs::remove_file(Path::new(path));
            "written".into()
        }
        Err(e) => format!("refused: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_map_lines_translate_ids() {
        assert_eq!(outside_uid("0 1000 1\n", 0), Some(1000));
        assert_eq!(outside_uid("0 0 4294967295\n", 42), Some(42));
        assert_eq!(outside_uid("0 1000 1\n", 5), None);
    }

    #[test]
    fn the_host_probe_sees_this_process_and_one_kernel() {
        let p = Probe::here("host", None);
        assert_eq!(p.pid, std::process::id());
        assert!(p.processes >= 1 && p.mounts >= 1);
        assert_eq!(p.write_usr, None);
        let t = Probe::table(&[p.clone(), p]);
        assert_eq!(t.rows().len(), 15);
    }

    #[test]
    fn the_comparison_and_the_user_ids_are_read_from_the_views() {
        let host = Probe::here("host", None);
        let mut inside = Probe {
            seen_from: "c-1".into(),
            pid: 1,
            host_pid: Some(4242),
            hostname: "c-1".into(),
            uid: 0,
            uid_outside: Some(0),
            ..host.clone()
        };
        let text = Probe::compared(&[host.clone(), inside.clone()]);
        assert!(text.contains("in the container: root folder"), "{text}");
        assert!(text.contains("kernel release, boot id"), "{text}");
        assert!(
            text.contains(
                "Different from the host in the container: pid, pid on the host, hostname"
            ),
            "{text}"
        );
        assert!(
            Probe::user_ids(&[host.clone(), inside.clone()])
                .contains("root inside is root outside")
        );
        inside.uid_outside = Some(1000);
        let text = Probe::user_ids(&[host.clone(), inside.clone()]);
        assert!(text.contains("user 0 is user 1000 outside"), "{text}");
        assert!(!text.contains("root outside"), "{text}");
        let mut other = inside.clone();
        other.kernel = "another".into();
        let text = Probe::compared(&[host, inside, other]);
        assert!(text.contains("kernel release (1 of 2)"), "{text}");
    }

    #[test]
    fn one_cgroup_path_is_shown_once() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(cgroup_seen(&lines(&["memory:/", "pids:/"])), "/");
        assert_eq!(
            cgroup_seen(&lines(&["memory:/a", "pids:/"])),
            "memory:/a pids:/"
        );
        assert_eq!(cgroup_seen(&[]), "not visible");
    }
}
