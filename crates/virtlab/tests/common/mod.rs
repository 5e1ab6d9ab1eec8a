//! The one way a test says it could not run here (no KVM, no user namespaces, no cgroup
//! controller, not root): [`skip`] prints a recognisable line and records the skip, so
//! `scripts/test` counts it as skipped, not passed. cargo test captures a passing test's output
//! and has no "skipped" result of its own, so the record goes to a file: the one named by
//! [`SKIPS_VARIABLE`], one line per skip, `<test binary>\t<test>\t<reason>`.
//!
//! Shared by the integration tests (`mod common;`) and the crate's unit tests (lib.rs includes
//! this file as `test_common`).

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
    let binary = env!("CARGO_CRATE_NAME");
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
