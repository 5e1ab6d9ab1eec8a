"""Every example in the crate's docs runs as notebook cells in the real `rust` kernel.

A user pastes the crate docs' examples into cells. rustdoc's doc tests do not show that they
work there: a cell is compiled at evcxr's optimisation and runs on the kernel's own thread, so
an example can pass as a doc test and still kill the kernel (a stack overflow is a SIGSEGV that
takes every variable with it). Each example here runs the way the chapters do (strict mode, a
dead kernel or an error is a failure), in a kernel of its own, in build/doc-examples/ (where the
executed notebooks stay to look at).

An example that needs what this machine may lack (KVM, containers) is skipped, with the reason
the crate gives, when the crate's own check says it is missing.
"""
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import notebooks
from conftest import CHAPTERS, REPO

CRATES = REPO / "crates"
# A lower crate's examples name it (`virtlab_vmm::…`), since its doc tests cannot see the facade;
# a user writes the facade's path, which re-exports each crate's modules under the same names.
FACADE_PATHS = {
    "virtlab_core::": "virtlab::",
    "virtlab_display::": "virtlab::display::",
    "virtlab_gemm::": "virtlab::",
    "virtlab_vmm::": "virtlab::vm::",
    "virtlab_container::": "virtlab::container::",
    "virtlab_langvm::": "virtlab::langvm::",
}
OUT = REPO / "build" / "doc-examples"
FENCE = re.compile(r"^```(.*)$")
DOC_LINE = re.compile(r"^\s*//[/!] ?(.*)$")
# Fence attributes of examples a user would paste and run; others (ignore, text, compile_fail,
# should_panic) are not meant to run as they stand.
RUNNABLE = {"", "rust", "no_run"}
CANNOT_RUN = "virtlab doc example cannot run here: "
# The limits lib.rs's containers example asks for: a machine must allow them to run it.
CONTAINER_LIMITS = 'Limits::parse(Some("0.5"), Some("64MiB"), Some("64"))?'
# What an example may need that a machine may lack: the words that show it in the example, and
# a cell that prints CANNOT_RUN and the crate's reason when it is missing.
NEEDS = {
    "KVM": (
        re.compile(r"\bvm::|\bKINDS\b"),
        f'if let Err(e) = virtlab::vm::support().ready() {{ println!("{CANNOT_RUN}{{e}}"); }}',
    ),
    "containers": (
        re.compile(r"\bcontainer::|\bKINDS\b"),
        "use virtlab::container::{Limits, support::Support};\n"
        f"if let Err(e) = Support::detect().check(&{CONTAINER_LIMITS}) "
        f'{{ println!("{CANNOT_RUN}{{e}}"); }}',
    ),
}


@dataclass
class Example:
    path: Path
    line: int  # of the opening fence
    code: list[str]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(CRATES)}:{self.line}".replace("/src/", "/")

    def cell(self) -> str:
        """The example as a user pastes it into a cell: the lines the rendered docs show.
        rustdoc's hidden lines (`# ...`) are there for the doc test alone: the `Ok::<(), _>(())`
        its `?` needs, a `#[cfg]` block around code for one OS (a cell takes neither)."""
        lines = []
        for line in self.code:
            stripped = line.lstrip()
            if stripped == "#" or stripped.startswith("# "):
                continue
            lines.append(line.replace("##", "#", 1) if stripped.startswith("##") else line)
        cell = "\n".join(lines).strip("\n")
        for crate_path, facade_path in FACADE_PATHS.items():
            cell = cell.replace(crate_path, facade_path)
        return cell


def examples_in(path: Path) -> list[Example]:
    """The runnable examples in one source file's doc comments (`//!` and `///`)."""
    found, current, runnable = [], None, False
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        doc = DOC_LINE.match(text)
        assert doc or current is None, f"{path}:{current.line}: a ``` block left open in the docs"
        if not doc:
            continue
        fence = FENCE.match(doc.group(1).strip())
        if fence and current is None:
            current = Example(path, number, [])
            runnable = {a.strip() for a in fence.group(1).split(",")} <= RUNNABLE
        elif fence:
            if runnable:
                found.append(current)
            current = None
        elif current is not None:
            current.code.append(doc.group(1))
    return found


EXAMPLES = [e for path in sorted(CRATES.glob("*/src/**/*.rs")) for e in examples_in(path)]


def dep_cell() -> str:
    """The chapters' own `:dep` line, with its path made right for build/doc-examples/ and every
    chapter's feature on (an example may come from any chapter)."""
    cells = nbformat.read(CHAPTERS[0], as_version=4).cells
    dep = next(c.source for c in cells if c.cell_type == "code" and ":dep virtlab" in c.source)
    assert '"../crates/virtlab"' in dep, dep
    dep = re.sub(r', features = \[[^\]]*\]', "", dep)
    return dep.replace('"../crates/virtlab"', '"../../crates/virtlab"').replace(" }", ', features = ["chapters"] }')


def needs_of(example: Example) -> list[str]:
    return [need for need, (words, _) in NEEDS.items() if words.search(example.cell())]


def test_the_crate_docs_have_examples_to_run():
    names = [e.name for e in EXAMPLES]
    assert sum(n.startswith("virtlab/lib.rs:") for n in names) >= 8, names
    assert all(e.cell() for e in EXAMPLES), "an example with no code"


def test_a_doc_example_becomes_the_cell_a_user_pastes():
    code = ["# #[cfg(unix)] {", "let a = f()?;", "#", "## not hidden", "# }", "# Ok::<(), virtlab::Error>(())"]
    assert Example(Path("x.rs"), 1, code).cell() == "let a = f()?;\n# not hidden"


def run_cells(example: Example) -> tuple["notebooks.Result", list[str]]:
    """Runs `example` as a cell after the chapters' `:dep` cell (and a check cell for each
    thing it needs); returns the result and what the checks found missing."""
    OUT.mkdir(parents=True, exist_ok=True)
    checks = [NEEDS[need][1] for need in needs_of(example)]
    cells = [new_code_cell(dep_cell()), *map(new_code_cell, checks), new_code_cell(example.cell())]
    path = OUT / f"{example.name.replace('/', '-').replace('.rs:', '-')}.ipynb"
    kernel = {"name": "rust", "language": "rust", "display_name": "Rust"}
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernel}), path)
    result = notebooks.execute(path)
    missing = []
    if result.executed is not None:
        nbformat.write(result.executed, path)
        missing = [
            line.removeprefix(CANNOT_RUN)
            for cell in result.executed.cells
            for out in cell.get("outputs", [])
            if out.get("name") == "stdout"
            for line in out.text.splitlines()
            if line.startswith(CANNOT_RUN)
        ]
    return result, missing


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.name)
def test_doc_example_runs_in_a_notebook_cell(example: Example):
    result, missing = run_cells(example)
    if missing:
        pytest.skip("; ".join(missing))
    assert result.ok, f"{example.name}, as a cell:\n{example.cell()}\n\n" + "\n".join(result.problems)


def test_an_example_this_machine_cannot_run_is_found_out_with_the_crates_reason(monkeypatch):
    """The KVM check, with the kernel's KVM device pointed at a file that does not exist."""
    monkeypatch.setenv("VIRTLAB_KVM_DEVICE", "/nonexistent/virtlab-test-kvm")
    vm = next(e for e in EXAMPLES if needs_of(e) == ["KVM"] and "vm::kind::run" in e.cell())
    result, missing = run_cells(vm)
    assert missing and "/nonexistent/virtlab-test-kvm does not exist" in missing[0], missing
    assert not result.ok  # the example itself fails there: skipping it is right
