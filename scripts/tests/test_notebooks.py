"""Every chapter runs headless in strict mode; a notebook that panics, errors or loses a plot fails."""
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

import notebooks
from conftest import CHAPTERS, REPO, TEST_GALLERY

FIXTURES = REPO / "scripts" / "tests" / "fixtures"


def notebook_with(cell) -> nbformat.NotebookNode:
    return new_notebook(cells=[cell])


def test_every_chapter_is_found():
    assert CHAPTERS, "no notebooks/NN-*.ipynb found"
    assert CHAPTERS[0].name == "00-your-machine.ipynb"


# The committed notebooks: the chapters and the broken ones the checker is tested on.
COMMITTED = CHAPTERS + sorted(FIXTURES.glob("*.ipynb"))
# Rewrites notebooks in the form Jupyter saves them (nbformat.write, as jupyter_server does).
NORMALISE = (
    ".venv/bin/python -c 'import nbformat, sys; "
    "[nbformat.write(nbformat.read(p, as_version=4), p) for p in sys.argv[1:]]' "
    "notebooks/*.ipynb scripts/tests/fixtures/*.ipynb"
)


@pytest.mark.parametrize("path", COMMITTED, ids=[p.name for p in COMMITTED])
def test_committed_notebook_is_in_the_form_jupyter_saves(path):
    """JupyterLab saves through nbformat.write: keys sorted, indent 1, UTF-8 unescaped, and a
    final newline (nbformat.writes has none; write adds it). A notebook committed in any other
    form shows as changes in `git diff` the first time someone saves it (every cell, when the
    keys are out of order)."""
    committed = path.read_bytes().decode("utf-8")
    saved = nbformat.writes(nbformat.read(path, as_version=4))
    if not saved.endswith("\n"):
        saved += "\n"
    if committed != saved:
        line = next(
            (n for n, (a, b) in enumerate(zip(committed.split("\n"), saved.split("\n")), 1) if a != b),
            min(committed.count("\n"), saved.count("\n")) + 1,
        )
        pytest.fail(
            f"{path.relative_to(REPO)} differs from what Jupyter writes when it saves it (nbformat's "
            f"sorted keys, indent 1, final newline) from line {line} on, so the first save in "
            f"JupyterLab would show as changes in git diff. Fix: from the repository root, run: "
            f"{NORMALISE}"
        )


@pytest.mark.parametrize("chapter", [c.stem for c in CHAPTERS])
def test_chapter_runs_strict_and_renders(gallery, chapter):
    result = gallery[chapter]
    assert result.ok, "\n".join(result.problems)
    assert (TEST_GALLERY / f"{chapter}.html").is_file()
    executed = nbformat.read(TEST_GALLERY / f"{chapter}.ipynb", as_version=4)
    assert all(notebooks.INJECTED_TAG not in c.metadata.get("tags", []) for c in executed.cells)
    counts = [c.execution_count for c in executed.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), "execution counts should read 1, 2, 3, ..."


@pytest.mark.parametrize(
    "fixture, expected",
    [
        ("panic", "error output"),
        ("thread-panic", "error output"),
        ("question-mark-error", "virtlab error: iterations cannot be 0"),
        ("compile-error", "error output"),
        ("missing-plot", "tagged 'plot' but shows no image"),
    ],
)
def test_broken_notebook_fails(fixture, expected):
    result = notebooks.execute(FIXTURES / f"{fixture}.ipynb")
    assert not result.ok
    assert any(expected in p for p in result.problems), result.problems


def test_failed_notebook_fails_the_run_and_writes_no_page(tmp_path):
    status = notebooks.main([str(tmp_path), str(FIXTURES / "panic.ipynb")])
    assert status == 1
    assert not (tmp_path / "panic.html").exists()
    assert not (tmp_path / "panic.ipynb").exists()
    index = (tmp_path / "index.html").read_text()
    assert "failed" in index and "boom in a cell" in index


def test_checker_flags_each_kind_of_failure_and_passes_clean_output():
    clean = new_code_cell("1 + 1", outputs=[new_output("execute_result", data={"text/plain": "2"}, execution_count=1)])
    assert notebooks.check_outputs(notebook_with(clean)) == []
    cases = {
        "error output": new_output("error", ename="Error", evalue="compile failed", traceback=[]),
        "failure text": new_output("stream", name="stderr", text="thread 'main' panicked at src/lib.rs:1:1:\nboom\n"),
    }
    for label, output in cases.items():
        problems = notebooks.check_outputs(notebook_with(new_code_cell("x", outputs=[output])))
        assert len(problems) == 1 and label in problems[0], problems
    shown_on_purpose = new_output("stream", name="stdout", text="virtlab error: 0 workers. Fix: ...\n")
    assert notebooks.check_outputs(notebook_with(new_code_cell("x", outputs=[shown_on_purpose]))) == []
    tagged = new_code_cell("plot()", metadata={"tags": ["plot"]}, outputs=[])
    assert "shows no image" in notebooks.check_outputs(notebook_with(tagged))[0]
    said_why = new_output("stream", name="stdout", text="Skipped: Open MPI's mpirun is not installed. Fix: apt-get install openmpi-bin\n")
    skipped = new_code_cell("plot()", metadata={"tags": ["plot"]}, outputs=[said_why])
    assert notebooks.check_outputs(notebook_with(skipped)) == []
    unsaid = new_output("stream", name="stdout", text="Skipped\n")
    assert "shows no image" in notebooks.check_outputs(notebook_with(new_code_cell("p()", metadata={"tags": ["plot"]}, outputs=[unsaid])))[0]


def test_strict_cell_goes_after_the_dep_cell_and_comes_out_again():
    nb = new_notebook(cells=[new_code_cell(":dep virtlab = { path = \"x\" }"), new_code_cell("1")])
    notebooks.inject_strict_mode(nb)
    assert nb.cells[1].source == notebooks.STRICT_CELL
    nb.cells[0].execution_count, nb.cells[1].execution_count, nb.cells[2].execution_count = 1, 2, 3
    notebooks.remove_injected(nb)
    assert [c.source for c in nb.cells] == [":dep virtlab = { path = \"x\" }", "1"]
    assert [c.execution_count for c in nb.cells] == [1, 2]


def test_a_notebook_run_and_saved_by_a_user_runs_again(gallery):
    """A notebook saved from Jupyter carries outputs and execution counts; it must still run."""
    executed = TEST_GALLERY / "02-threads.ipynb"
    assert gallery["02-threads"].ok
    assert any(c.get("outputs") for c in nbformat.read(executed, as_version=4).cells)
    # Beside the chapters, where a user's saved copy lives (its `:dep` path is relative to it).
    saved = REPO / "notebooks" / ".saved-02-threads.ipynb"
    saved.write_bytes(executed.read_bytes())
    try:
        result = notebooks.execute(saved)
    finally:
        saved.unlink()
    assert result.ok, "\n".join(result.problems)
