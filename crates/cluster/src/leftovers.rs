//! What a cluster left behind after it ended: its run folder, host veth, cgroups, a process
//! still in one of its namespaces, Slurm's daemons and job steps. The tests check it after every
//! exit path (drop, error, panic, SIGKILL, `down`), and a reader can run the same check. Each
//! check waits up to 10 s for holders that are still cleaning up.

use crate::ClusterState;
use std::path::Path;
use virtlab_core::procfs;

/// The namespaces (kind, inode) the cluster's holders have: what must be gone afterwards. Take
/// it while the cluster is up (a holder already gone has none to list).
pub fn namespaces(state: &ClusterState) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pids = vec![(state.switch_pid, vec!["net"])];
    pids.extend(
        state
            .nodes
            .iter()
            .map(|n| (n.holder_pid, vec!["net", "uts", "mnt", "pid"])),
    );
    for (pid, kinds) in pids {
        for kind in kinds {
            if let Ok(link) = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")) {
                found.push((kind.to_string(), link.display().to_string()));
            }
        }
    }
    found
}

/// What a cluster left behind: its run folder, its host veth, its cgroups, a process still in
/// one of its namespaces (`namespaces`, taken while it was up), a process still in its
/// cgroups. Waits up to 10 s for holders that are still cleaning up. `folder_too`: whether the
/// run folder counts (after SIGKILL of the owner it waits for the next sweep).
pub fn leftovers(
    state: &ClusterState,
    namespaces: &[(String, String)],
    folder_too: bool,
) -> Vec<String> {
    let octet = state.subnet.split('.').nth(2).unwrap_or_default();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut left = Vec::new();
        if folder_too && state.dir.exists() {
            left.push(format!("run folder {}", state.dir.display()));
        }
        let link = format!("/sys/class/net/vlab{octet}");
        if Path::new(&link).exists() {
            left.push(link);
        }
        let tag = format!("virtlab-{}-c{octet}-", state.owner);
        for group in crate::cgroup::cluster_groups(&tag) {
            left.push(format!("cgroup {}", group.display()));
        }
        for pid in procfs::pids() {
            for (kind, inode) in namespaces {
                let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}"));
                if link.is_ok_and(|l| l.display().to_string() == *inode) {
                    left.push(format!("process {pid} in {kind} namespace {inode}"));
                }
            }
        }
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether a process name is Slurm's or munge's (slurmctld, slurmscriptd, slurmd, slurmstepd,
/// munged).
fn is_slurm(comm: &str) -> bool {
    [
        "slurmctld",
        "slurmscriptd",
        "slurmd",
        "slurmstepd",
        "munged",
    ]
    .contains(&comm)
}

/// Slurm's processes of the cluster whose run folder is `dir`, still running, and its folder:
/// every daemon and launcher names a file in `dir/slurm` on its command line; what they start
/// without one (slurmscriptd, the job steps' slurmstepd) is found by name in `pid_namespaces`
/// (the nodes' and the head's).
pub fn slurm_leftovers(dir: &Path, pid_namespaces: &[String]) -> Vec<String> {
    let needle = dir.join("slurm").display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut left = Vec::new();
        for pid in procfs::pids() {
            if !crate::rundir::alive(pid as i32) {
                continue;
            }
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let comm = procfs::name_of(pid).unwrap_or_default();
            let ns = procfs::pid_namespace_of(pid).unwrap_or_default();
            if cmdline.contains(&needle) {
                left.push(format!("process {pid}: {cmdline}"));
            } else if is_slurm(&comm) && pid_namespaces.contains(&ns) {
                left.push(format!("{comm} {pid} in {ns}"));
            }
        }
        if std::path::Path::new(&needle).exists() {
            left.push(format!("folder {needle}"));
        }
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The pid namespaces of a cluster's nodes and of its Slurm's head (from munged's process).
pub fn slurm_pid_namespaces(state: &ClusterState, daemon_pids: &[i32]) -> Vec<String> {
    let host = std::fs::read_link("/proc/self/ns/pid")
        .map(|l| l.display().to_string())
        .unwrap_or_default();
    state
        .nodes
        .iter()
        .map(|n| n.holder_pid)
        .chain(daemon_pids.iter().copied())
        .filter_map(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok())
        .map(|l| l.display().to_string())
        // The host's (a launcher's) is not the cluster's.
        .filter(|ns| *ns != host)
        .collect()
}
