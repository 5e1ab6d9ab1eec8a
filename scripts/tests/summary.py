"""The count at the end of scripts/test: what passed, what failed, and what could not run here.

    python scripts/tests/summary.py --checks PASSED FAILED --cargo LOG STATUS [--cargo ...]
                                    --skips FILE --junit XML

A test that could not run on this machine (no KVM, no user namespaces, not root...) is a skip,
not a pass. cargo test has no such result: a Rust test that skips returns early, so cargo counts
it as passed, and records the skip (see crates/virtlab/tests/common/mod.rs) in FILE, one line
per skip: `<test binary>\\t<test>\\t<reason>`. Those are taken off cargo's passed count; cargo's
ignored tests and pytest's skipped ones (from its JUnit XML) count as skipped too.

Prints every skipped test with its reason, then `N passed, N failed, N skipped` alone on the
last line. Exit status 1 when anything failed; skips alone leave it 0.
"""
import argparse
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

RESULT = re.compile(r"^test result: .*?(\d+) passed; (\d+) failed; (\d+) ignored", re.MULTILINE)
IGNORED = re.compile(r"^test (\S+) \.\.\. ignored(?:, (.*))?$", re.MULTILINE)


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (test, reason)

    def add(self, other: "Tally") -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped

    def line(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {len(self.skipped)} skipped"


def cargo(log: str, status: int) -> Tally:
    """One cargo test run's counts, from its output and exit status. A run that failed with no
    failed test to show for it (it did not build, or a test binary died) is one failure."""
    results = RESULT.findall(log)
    passed = sum(int(p) for p, _, _ in results)
    failed = sum(int(f) for _, f, _ in results)
    if status != 0 and failed == 0:
        failed = 1
    ignored = [(test, reason or "marked #[ignore]") for test, reason in IGNORED.findall(log)]
    return Tally(passed, failed, ignored)


def cargo_skips(records: str) -> list[tuple[str, str]]:
    """The skips Rust tests recorded, as (binary::test, reason)."""
    skips = []
    for line in records.splitlines():
        binary, test, reason = (line.split("\t", 2) + ["", ""])[:3]
        if test:
            skips.append((f"{binary}::{test}", reason))
    return skips


def pytest(junit: Path) -> Tally:
    """pytest's counts from its JUnit XML; a file that is missing or unreadable is a failure."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return Tally(failed=1)
    tally = Tally()
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if (skip := case.find("skipped")) is not None:
            tally.skipped.append((name, skip.get("message", "")))
        elif case.find("failure") is not None or case.find("error") is not None:
            tally.failed += 1
        else:
            tally.passed += 1
    if not tally.passed + tally.failed + len(tally.skipped):
        tally.failed += 1  # pytest collected nothing: it did not run
    return tally


def summarise(checks: tuple[int, int], cargo_runs: list[tuple[str, int]], skip_records: str, junit: Path) -> Tally:
    total = Tally(*checks)
    for log, status in cargo_runs:
        total.add(cargo(log, status))
    skips = cargo_skips(skip_records)
    total.passed -= len(skips)  # cargo counted each of them as passed
    total.skipped += skips
    total.add(pytest(junit))
    return total


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", nargs=2, type=int, default=(0, 0), metavar=("PASSED", "FAILED"))
    parser.add_argument("--cargo", action="append", nargs=2, default=[], metavar=("LOG", "STATUS"))
    parser.add_argument("--skips", type=Path, required=True, metavar="FILE")
    parser.add_argument("--junit", type=Path, required=True, metavar="XML")
    args = parser.parse_args(argv)
    read = lambda p: p.read_text(errors="replace") if p.is_file() else ""  # noqa: E731
    runs = [(read(Path(log)), int(status)) for log, status in args.cargo]
    total = summarise(tuple(args.checks), runs, read(args.skips), args.junit)
    if total.skipped:
        print(f"skipped (could not run here), {len(total.skipped)}:")
        for test, reason in total.skipped:
            print(f"  {test}: {reason}")
    print(total.line())
    return 1 if total.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
