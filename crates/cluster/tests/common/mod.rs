//! Shared by the cluster's tests: the skip record (a test that cannot run here says why, in the
//! file `scripts/test` counts skips from), and the leftover check run after every exit path.

// Each test binary uses its own share of these helpers.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use virtlab_cluster::ClusterState;

/// Records that the calling test could not run here because of `reason`.
pub fn skip(reason: &str) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("an unnamed test");
    let binary = env!("CARGO_CRATE_NAME");
    eprintln!("virtlab test skipped: {binary}::{test}: {reason}");
    if let Some(path) = std::env::var_os("VIRTLAB_TEST_SKIPS") {
        let line = format!("{binary}\t{test}\t{reason}\n");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .expect("a skip that cannot be recorded would count as a pass");
    }
}

/// Whether we are root (a cluster needs it); records the skip when not.
pub fn need_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        skip("a cluster needs root (veths, bridge, cgroups)");
    }
    root
}

/// The namespaces (kind, inode) the cluster's holders have: what must be gone afterwards.
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
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
            found.push((kind.to_string(), link.display().to_string()));
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
    let octet = state.subnet.split('.').nth(2).unwrap();
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
        for group in virtlab_cluster::cgroup::cluster_groups(&tag) {
            left.push(format!("cgroup {}", group.display()));
        }
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
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

/// Whether Slurm can be tested here (root, Slurm, munge); records the skip when not.
pub fn need_slurm() -> bool {
    if !need_root() {
        return false;
    }
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let found = |p: &str| virtlab_cluster::slurm::find_program(p).is_some();
    if let Err(e) = virtlab_cluster::slurm::check_prerequisites(euid, found) {
        skip(&e.to_string());
        return false;
    }
    true
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
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            if stat
                .rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
            {
                continue;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            let ns = std::fs::read_link(entry.path().join("ns/pid"))
                .map(|l| l.display().to_string())
                .unwrap_or_default();
            if cmdline.contains(&needle) {
                left.push(format!("process {pid}: {cmdline}"));
            } else if is_slurm(comm.trim()) && pid_namespaces.contains(&ns) {
                left.push(format!("{} {pid} in {ns}", comm.trim()));
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
        .unwrap()
        .display()
        .to_string();
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
