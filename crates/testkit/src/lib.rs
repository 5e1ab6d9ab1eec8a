//! What every crate's tests share: a cache folder of their own ([`temp_cache`]), a scratch
//! folder removed when the test ends ([`TempDir`]), what is left of
//! the processes they started ([`is_alive`], [`children_of`], [`eventually`]), and the one way
//! a test says it could not run here (no KVM, no user namespaces, no cgroup controller, not
//! root): [`skip`] prints a recognisable line and records the skip, so
//! `scripts/test` counts it as skipped, not passed. cargo test captures a passing test's output
//! and has no "skipped" result of its own, so the record goes to a file: the one named by
//! [`SKIPS_VARIABLE`], one line per skip, `<test binary>\t<test>\t<reason>`.
//!
//! Every crate of the workspace uses it from its tests (a dev-dependency), unit and integration
//! tests alike.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::Write;

/// The variable naming the file where skips are recorded (`scripts/test` sets it).
pub const SKIPS_VARIABLE: &str = "VIRTLAB_TEST_SKIPS";

/// Records that the calling test could not run here because of `reason`; the test then returns.
/// The test's name is its thread's (cargo test names each test's thread after the test).
pub fn skip(reason: impl std::fmt::Display) {
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("an unnamed test");
    // One line per skip, whatever the reason's text holds.
    let reason = reason
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let binary = test_binary();
    eprintln!("virtlab test skipped: {binary}::{test}: {reason}");
    let Some(path) = std::env::var_os(SKIPS_VARIABLE) else {
        return;
    };
    // One write of a whole line in append mode, so tests skipping at once do not interleave.
    let line = format!("{binary}\t{test}\t{reason}\n");
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(line.as_bytes()));
    if let Err(e) = written {
        // A skip that cannot be recorded would be counted as a pass: fail the test instead.
        panic!(
            "cannot record this skip in {} ({SKIPS_VARIABLE}): {e}",
            std::path::Path::new(&path).display()
        );
    }
}

/// The running test binary's name without the hash cargo appends (`containers-1a2b…` →
/// `containers`), which names the crate or the integration test file.
fn test_binary() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "an unnamed test binary".into());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => stem,
    }
}

/// A folder of one test's own, removed when the test ends (passing or failing).
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// `virtlab-<name>-<this process's id>` in the system's temporary folder, made now.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("virtlab-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temporary folder should be writable");
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Points the cache at a fresh folder for the rest of this test process.
pub fn temp_cache() -> std::path::PathBuf {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        const PREFIX: &str = "virtlab-test-cache-";
        remove_folders_of_ended_runs(PREFIX);
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        // Tests run on several threads; the variable is set once, before any reader needs it.
        // SAFETY: set_var is unsafe because C code reading the environment (getenv) on another
        // thread at the same moment could see it half-written. OnceLock runs this once per test
        // process, and the readers of the variable are std's own (env::var, Command's spawn),
        // which take the same lock as set_var; no test calls C code that reads the environment.
        unsafe { std::env::set_var("VIRTLAB_CACHE_DIR", &dir) };
        dir
    })
    .clone()
}

/// A test process cannot clean up after itself at exit, so each one removes the folders
/// left by earlier test processes that have ended (no /proc entry for their pid).
fn remove_folders_of_ended_runs(prefix: &str) {
    // Without /proc no pid can be checked, so nothing is removed.
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix(prefix));
        if let Some(pid) = pid.filter(|p| p.parse::<u32>().is_ok())
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            // Best effort: a folder another process removes first is already gone.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` is alive: present and not a zombie (a dead child nobody reaped yet).
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The processes whose parent is `parent` (from /proc).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(parent)
            })
        })
        .collect()
}

/// Looks every 20 ms until `done` holds or `within` has passed (a bound on waiting for the
/// system to settle, not a timing assertion); whether it held.
pub fn eventually(within: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reaped_child_is_not() {
        assert!(is_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }

    #[test]
    fn a_child_is_found_under_its_parent_until_reaped() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        assert!(children_of(std::process::id()).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(eventually(std::time::Duration::from_secs(2), || {
            !children_of(std::process::id()).contains(&child.id())
        }));
    }

    #[test]
    fn folders_of_ended_test_runs_are_removed_and_live_ones_kept() {
        let prefix = "virtlab-cleanup-test-";
        let temp = std::env::temp_dir();
        // No Linux pid reaches u32::MAX (the kernel's limit is 2^22).
        let ended = temp.join(format!("{prefix}{}", u32::MAX));
        let live = temp.join(format!("{prefix}{}", std::process::id()));
        for dir in [&ended, &live] {
            std::fs::create_dir_all(dir.join("inner")).unwrap();
        }
        remove_folders_of_ended_runs(prefix);
        assert!(!ended.exists());
        assert!(live.exists());
        std::fs::remove_dir_all(&live).unwrap();
    }
}
