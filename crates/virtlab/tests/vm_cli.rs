//! Chapter 6's subcommands as a user runs them: real VMs where KVM works here, and the no-KVM
//! path by pointing `VIRTLAB_KVM_DEVICE` at a file that does not exist.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::process::{Command, Output};

use virtlab_testkit as common;

/// Runs `virtlab` with `args` (words split at spaces), with `VIRTLAB_KVM_DEVICE` set to
/// `device` when given.
fn virtlab(args: &str, device: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_virtlab"));
    command
        .args(args.split_whitespace())
        .stdin(std::process::Stdio::null());
    if let Some(device) = device {
        command.env("VIRTLAB_KVM_DEVICE", device);
    }
    command.output().expect("the virtlab binary should start")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether KVM works here; when it does not, the calling test is skipped with the reason.
fn kvm_usable() -> bool {
    virtlab::vm::support().ready().map_err(common::skip).is_ok()
}

#[test]
fn vms_print_the_essays_lines_from_their_own_threads() {
    if !kvm_usable() {
        return;
    }
    let out = virtlab("vm --vms 2 --iterations 2 --interval-ms 10", None);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for line in ["0: vm-1 vcpu 0 (host tid ", "1: vm-2 vcpu 0 (host tid "] {
        assert!(stdout.contains(line), "missing {line:?}:\n{stdout}");
    }
    assert_eq!(stdout.matches("completed").count(), 2, "{stdout}");

    let out = virtlab("vm --vms 2 --interval-ms 1 --json", None);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["kind"], "vm");
    assert_eq!(json["units"].as_array().unwrap().len(), 2);
    assert!(json["timeline"]["events"].as_array().unwrap().len() >= 2 * 5);
}

#[test]
fn a_triple_fault_is_reported_like_a_crash() {
    if !kvm_usable() {
        return;
    }
    let out = virtlab(
        "vm --vms 3 --interval-ms 10 --fault-unit 2 --fault-at 1",
        None,
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("vm-2 crashed: triple fault at iteration 1"),
        "{stderr}"
    );
    // The guest faults in place of its report: iteration 0 is its last line.
    let stdout = text(&out.stdout);
    assert!(stdout.contains("0: vm-2 vcpu 0"), "{stdout}");
    assert!(!stdout.contains("1: vm-2 vcpu 0"), "{stdout}");
}

#[test]
fn a_runaway_guest_is_stopped_at_the_timeout() {
    if !kvm_usable() {
        return;
    }
    let out = virtlab(
        "vm --vms 2 --interval-ms 10 --runaway 1 --timeout-ms 300",
        None,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("timed out: still running 300 ms"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("completed").count(), 1, "{stdout}");
}

#[test]
fn without_kvm_the_vm_commands_say_how_to_fix_it_and_the_inside_view_still_works() {
    let missing = Some("/nonexistent/virtlab-test-kvm");
    for args in ["vm", "vm-cost"] {
        let out = virtlab(args, missing);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            stderr.contains("virtlab error: /nonexistent/virtlab-test-kvm does not exist"),
            "{stderr}"
        );
        assert!(stderr.contains("Fix: enable virtualization"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    let out = virtlab("vm-inside --batches 3 --steal-ms 100", missing);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for expected in ["no usable KVM", "getppid system call", "stolen"] {
        assert!(stdout.contains(expected), "missing {expected:?}:\n{stdout}");
    }
}

#[test]
fn bad_values_get_a_clear_error() {
    let cases = [
        ("vm --vms 0", "the number of VMs cannot be 0"),
        ("vm --guest-memory 3TiB", "guest memory cannot be \"3TiB\""),
        ("vm --guest-memory 1000", "between 65536 and"),
        ("vm --runaway 0", "the unit to run away cannot be 0"),
        ("vm --timeout-ms 0", "--timeout-ms cannot be 0"),
        ("vm --iterations 0", "iterations cannot be 0"),
        ("vm-cost --vms 1", "VMs cannot be 1"),
        ("vm-cost --exits 3", "exits cannot be 3"),
        ("vm-inside --batches 0", "batches cannot be 0"),
        ("vm-inside --steal-ms 5", "duration (ms) cannot be 5"),
    ];
    for (args, expected) in cases {
        refused_with(args, expected);
    }
}

/// The unit to fault is checked against the VMs the run starts, after KVM itself.
#[test]
fn a_fault_in_a_vm_past_the_last_gets_a_clear_error() {
    if !kvm_usable() {
        return;
    }
    refused_with(
        "vm --fault-unit 9 --fault-at 1",
        "unit to fault cannot be 9",
    );
}

fn refused_with(args: &str, expected: &str) {
    let out = virtlab(args, None);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(stderr.contains("Fix:"), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
}
