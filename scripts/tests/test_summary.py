"""scripts/test's count: a test that could not run here is a skip, listed with its reason, never
a pass; the last line is `N passed, N failed, N skipped`."""
import os
import subprocess
import sys

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts" / "tests"))
import summary  # noqa: E402

CARGO_LOG = """\
running 3 tests
test a ... ok
test b ... ignored, needs a GPU
test c ... ok

test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
"""
JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" tests="3">
<testcase classname="test_x" name="test_ran"/>
<testcase classname="test_x" name="test_broke"><failure message="boom"/></testcase>
<testcase classname="test_x" name="test_needs_kvm"><skipped message="no /dev/kvm"/></testcase>
</testsuite></testsuites>"""
# The VM tests of the CLI that need a working KVM device.
KVM_TESTS = {
    "vms_print_the_essays_lines_from_their_own_threads",
    "a_fault_in_a_vm_past_the_last_gets_a_clear_error",
    "a_triple_fault_is_reported_like_a_crash",
    "a_runaway_guest_is_stopped_at_the_timeout",
}


def test_cargo_counts_ignored_as_skipped_and_a_failed_run_without_results_as_a_failure():
    tally = summary.cargo(CARGO_LOG, 0)
    assert (tally.passed, tally.failed, tally.skipped) == (2, 0, [("b", "needs a GPU")])
    assert summary.cargo("error[E0425]: cannot find value `x`\n", 101).failed == 1
    assert summary.cargo(CARGO_LOG + "error: test failed (signal: 11, SIGSEGV)\n", 101).failed == 1


def test_recorded_skips_come_off_cargos_passed_and_pytests_skips_count(tmp_path):
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT)
    total = summary.summarise((2, 0), [(CARGO_LOG, 0)], "vm_cli\tc\tno KVM here\n", junit)
    assert total.line() == "4 passed, 1 failed, 3 skipped"
    assert ("vm_cli::c", "no KVM here") in total.skipped
    assert ("test_x::test_needs_kvm", "no /dev/kvm") in total.skipped
    assert summary.pytest(tmp_path / "missing.xml").failed == 1


def test_without_kvm_the_vm_tests_are_counted_as_skipped_not_passed(tmp_path):
    """The real VM tests, with the KVM device pointed at a file that does not exist."""
    skips = tmp_path / "skips"
    env = dict(os.environ, VIRTLAB_KVM_DEVICE="/nonexistent/virtlab-test-kvm", VIRTLAB_TEST_SKIPS=str(skips))
    run = subprocess.run(
        ["cargo", "test", "--workspace", "--no-default-features", "--features", "cli", "--test", "vm_cli"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    recorded = summary.cargo_skips(skips.read_text())
    assert {test.removeprefix("vm_cli::") for test, _ in recorded} == KVM_TESTS, recorded
    assert all("/nonexistent/virtlab-test-kvm does not exist" in why for _, why in recorded), recorded
    (log := tmp_path / "log").write_text(run.stdout)
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT.replace('<failure message="boom"/>', ""))
    script = REPO / "scripts" / "tests" / "summary.py"
    out = subprocess.run(
        [sys.executable, script, "--cargo", log, "0", "--skips", skips, "--junit", junit],
        capture_output=True, text=True,
    )
    cargo_passed = summary.cargo(run.stdout, 0).passed
    lines = out.stdout.splitlines()
    # pytest's part: two passed, one skipped; skips alone keep the exit status 0.
    kvm = len(KVM_TESTS)
    assert lines[-1] == f"{cargo_passed - kvm + 2} passed, 0 failed, {kvm + 1} skipped", out.stdout
    assert out.returncode == 0, out.stdout + out.stderr
    for test in KVM_TESTS:
        assert any(f"vm_cli::{test}: " in line for line in lines), out.stdout
