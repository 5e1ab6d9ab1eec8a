"""scripts/bench's command line: --only runs the named sections and refuses names it does not know."""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "scripts" / "bench.py"


def bench(*args):
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300)


def test_an_unknown_section_is_refused_naming_the_ones_that_exist():
    result = bench("--only", "matmul,gpus")
    assert result.returncode != 0
    assert "unknown section(s) gpus" in result.stderr
    assert "processes,threads,scaling,tasks,containers,langvm,matmul,gpu,vm,cluster,cloud,notebooks" in result.stderr


def test_only_writes_a_report_of_just_that_section(tmp_path):
    result = bench("--only", "tasks", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["rows"], "the tasks section measured nothing"
    assert all("task" in row["what"] for row in report["rows"]), [row["what"] for row in report["rows"]]
    assert (tmp_path / "report.md").is_file()
