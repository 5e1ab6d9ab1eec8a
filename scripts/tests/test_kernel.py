"""A real rust kernel, as JupyterLab drives it: interrupting a cell that started worker
processes leaves none of them behind."""
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from conftest import REPO

DEP = ':dep virtlab = { path = "../crates/virtlab", default-features = false }'
# A name no other test uses, so the workers found are this cell's.
CELL = 'virtlab::processes::run(&virtlab::work::Work::new("interrupted", 1000, 100)?, 3, Default::default())?'


def workers_named(prefix: str) -> list[int]:
    """Pids of live `virtlab worker --name <prefix>-N` processes (not zombies)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"worker" in argv and any(a.startswith(prefix.encode() + b"-") for a in argv) and state != "Z":
            pids.append(int(proc.name))
    return pids


def wait_for(condition, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()


def test_interrupting_a_cell_kills_the_workers_it_started(gallery):
    # The gallery's session built the crate in a kernel slot; this kernel reuses it.
    assert gallery, "the chapters must have rendered first"
    km, kc = start_new_kernel(kernel_name="rust", cwd=str(REPO / "notebooks"), startup_timeout=120)
    try:
        reply = kc.execute_interactive(DEP, timeout=600)
        assert reply["content"]["status"] == "ok", reply["content"]
        kc.execute(CELL)
        started = wait_for(lambda: len(workers_named("interrupted")) == 3, 120)
        assert started, "the cell should have started three workers"
        km.interrupt_kernel()
        left = wait_for(lambda: not workers_named("interrupted"), 10)
        assert left, f"workers left behind after the interrupt: {workers_named('interrupted')}"
        # The kernel still answers after the interrupt.
        reply = kc.execute_interactive("1 + 1", timeout=300)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
