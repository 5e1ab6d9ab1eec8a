"""Runs virtlab notebooks headless in strict mode and renders them into a gallery.

    python scripts/notebooks.py OUT_DIR NOTEBOOK...

For each notebook: execute it with the `rust` kernel, fail it on any error output, any panic
or virtlab error text, or a cell tagged `plot` that shows no image; then write the executed
notebook and a self-contained HTML page into OUT_DIR, and an index.html linking them. Pages are
written whole or not at all. Exit status 1 when any notebook failed.
"""
import html
import queue
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError
from nbconvert import HTMLExporter

TEMPLATES = Path(__file__).resolve().parent / "templates"
STRICT_CELL = "virtlab::strict::install();"
INJECTED_TAG = "virtlab-strict-injected"
PLOT_TAG = "plot"
IMAGE_MIMES = ("image/png", "image/svg+xml")
# Text on stderr that means a cell went wrong even though the kernel called it a success: evcxr
# prints a caught panic's message, and a `?` error's Display, there. (A chapter that shows an
# error on purpose prints it to stdout.)
FAILURE_TEXT = re.compile(r"panicked at|virtlab error:|^Error:", re.MULTILINE)
# A cell whose facility is missing here says so on stdout, with the fix, instead of drawing
# (chapter 8's `Support::if_mpi` and kin): a plot cell that said it was skipped shows no image.
SKIPPED = re.compile(r"^Skipped: .+\. Fix: .+", re.MULTILINE)
CELL_TIMEOUT_S = 1800  # the first cell compiles every dependency on a cold build folder
# evcxr forwards stderr on its own thread, so a cell's last stderr line can arrive after the
# kernel reported the cell finished; keep listening until the cell has been quiet this long.
LATE_OUTPUT_QUIET_S = 0.15


class LateOutputClient(NotebookClient):
    """A NotebookClient that also keeps a cell's output arriving just after the cell went idle."""

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        await super()._async_poll_output_msg(parent_msg_id, cell, cell_index)
        while True:
            try:
                msg = await self.kc.iopub_channel.get_msg(timeout=LATE_OUTPUT_QUIET_S)
            except queue.Empty:
                return
            if msg["parent_header"].get("msg_id") == parent_msg_id and msg["msg_type"] == "stream":
                self.process_message(msg, cell, cell_index)


@dataclass
class Result:
    notebook: Path
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    executed: nbformat.NotebookNode | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def inject_strict_mode(nb: nbformat.NotebookNode) -> None:
    """Adds `virtlab::strict::install();` right after the cell that loads the crate."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and ":dep virtlab" in cell.source:
            strict = nbformat.v4.new_code_cell(STRICT_CELL, metadata={"tags": [INJECTED_TAG]})
            nb.cells.insert(i + 1, strict)
            return


def remove_injected(nb: nbformat.NotebookNode) -> None:
    """Drops the strict-mode cell and renumbers the rest, so readers see In [1], In [2], ..."""
    nb.cells = [c for c in nb.cells if INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    count = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.get("execution_count") is not None:
            count += 1
            cell.execution_count = count
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = count


def stdout_text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stdout")


def stderr_text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.text for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr")


def check_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """Problems an executed notebook shows in its outputs."""
    problems = []
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        first_line = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
        where = f"cell {number} ({first_line[:60]!r})"
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"{where}: error output: {out.ename}: {out.evalue}")
        stderr = stderr_text(cell)
        if match := FAILURE_TEXT.search(stderr):
            line = stderr[match.start():].splitlines()[0]
            problems.append(f"{where}: failure text in output: {line[:200]}")
        if PLOT_TAG in cell.get("metadata", {}).get("tags", []):
            shown = any(m in out.get("data", {}) for out in cell.get("outputs", []) for m in IMAGE_MIMES)
            if not shown and not SKIPPED.search(stdout_text(cell)):
                problems.append(f"{where}: tagged '{PLOT_TAG}' but shows no image")
    return problems


def execute(path: Path) -> Result:
    result = Result(path)
    nb = nbformat.read(path, as_version=4)
    inject_strict_mode(nb)
    client = LateOutputClient(
        nb,
        kernel_name="rust",
        timeout=CELL_TIMEOUT_S,
        startup_timeout=120,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    start = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as e:
        result.problems.append(f"a cell failed: {e.ename}: {e.evalue}"[:300])
    except DeadKernelError as e:
        result.problems.append(f"the kernel died: {e}")
    except TimeoutError as e:
        result.problems.append(f"a cell ran past {CELL_TIMEOUT_S} s: {e}")
    result.seconds = time.monotonic() - start
    result.problems += [p for p in check_outputs(nb) if p not in result.problems]
    remove_injected(nb)
    result.executed = nb
    return result


def write_whole(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def title_of(nb: nbformat.NotebookNode, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def first_png(nb: nbformat.NotebookNode) -> str | None:
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            png = out.get("data", {}).get("image/png")
            if png:
                return png.replace("\n", "")
    return None


def render_page(nb: nbformat.NotebookNode, out_dir: Path, stem: str) -> None:
    exporter = HTMLExporter(template_name="virtlab", extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb)
    write_whole(out_dir / f"{stem}.html", body)
    write_whole(out_dir / f"{stem}.ipynb", nbformat.writes(nb))


def render_index(results: list[Result], out_dir: Path) -> None:
    cards = []
    for r in results:
        stem = r.notebook.stem
        title = html.escape(title_of(r.executed, stem) if r.executed else stem)
        if r.ok:
            png = first_png(r.executed)
            thumb = f'<img alt="first plot of {title}" src="data:image/png;base64,{png}">' if png else ""
            cards.append(
                f'<li><a href="{stem}.html"><h2>{title}</h2>{thumb}</a>'
                f'<p><a href="{stem}.ipynb">notebook with outputs</a> · ran in {r.seconds:.0f} s</p></li>'
            )
        else:
            problems = "".join(f"<li>{html.escape(p)}</li>" for p in r.problems)
            cards.append(f'<li class="failed"><h2>{title}: failed</h2><ul>{problems}</ul></li>')
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>virtlab gallery</title>
<style>
body {{ font-family: sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }}
ul.chapters {{ list-style: none; padding: 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1.5em; }}
ul.chapters > li {{ border: 1px solid #ddd; border-radius: 6px; padding: 1em; }}
ul.chapters img {{ width: 100%; height: auto; }}
li.failed {{ border-color: #c00; color: #900; }}
a {{ color: #0060a0; text-decoration: none; }}
</style></head><body>
<h1>virtlab: how a computer shares its work</h1>
<p>Each chapter below was executed headless; its plots are embedded, so these pages open anywhere, offline too.</p>
<ul class="chapters">{''.join(cards)}</ul>
</body></html>
"""
    write_whole(out_dir / "index.html", page)


def render_gallery(out_dir: Path, notebooks: list[Path]) -> list[Result]:
    """Executes each notebook strictly; writes pages for those that pass and an index for all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for path in notebooks:
        print(f"==> running {path} ...", file=sys.stderr, flush=True)
        r = execute(path)
        if r.ok:
            render_page(r.executed, out_dir, path.stem)
            print(f"    ok in {r.seconds:.1f} s", file=sys.stderr)
        else:
            for p in r.problems:
                print(f"    FAILED: {p}", file=sys.stderr)
        results.append(r)
    render_index(results, out_dir)
    return results


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_dir = Path(argv[0])
    results = render_gallery(out_dir, [Path(a) for a in argv[1:]])
    failed = [r for r in results if not r.ok]
    print(f"==> gallery: {out_dir / 'index.html'} ({len(results) - len(failed)} of {len(results)} notebooks ok)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
