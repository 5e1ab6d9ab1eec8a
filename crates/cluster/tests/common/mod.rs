//! Shared by the cluster's tests: the skip record (a test that cannot run here says why, in the
//! file `scripts/test` counts skips from), and the leftover check run after every exit path.

use std::io::Write;
use std::path::Path;

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

/// What a cluster with run folder `dir` on subnet octet `octet` left behind: the folder, its
/// host veth, its cgroups, or any process still holding one of its namespaces.
pub fn leftovers(dir: &Path, octet: &str) -> Vec<String> {
    // Holders finish cleaning up a moment after their owner is gone.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut left = Vec::new();
        if dir.exists() {
            left.push(format!("run folder {}", dir.display()));
        }
        let link = format!("/sys/class/net/vlab{octet}");
        if Path::new(&link).exists() {
            left.push(link);
        }
        let owner = dir.file_name().unwrap().to_string_lossy();
        let owner = owner.split('-').next().unwrap();
        let tag = format!("virtlab-{owner}-c{octet}-");
        for group in virtlab_cluster::cgroup::cluster_groups(&tag) {
            left.push(format!("cgroup {}", group.display()));
        }
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let text = String::from_utf8_lossy(&cmdline);
            if text.contains(&*dir.to_string_lossy()) {
                left.push(format!(
                    "process {}: {text}",
                    entry.file_name().to_string_lossy()
                ));
            }
        }
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
