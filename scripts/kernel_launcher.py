"""Starts evcxr_jupyter with a persistent build folder that no other running kernel uses.

evcxr compiles every dependency in a fresh temporary folder per kernel unless EVCXR_TMPDIR
points somewhere lasting; then a second run reuses the compiled crates. Two kernels building
in one folder at once break each other, so each kernel takes the first free "slot" folder
under target/evcxr/, held by an exclusive lock for as long as the kernel process lives.

VIRTLAB_EVCXR_TMPDIR, when set, names the build folder to use instead (the benchmark uses it to
time a cold start); the caller is then responsible for not sharing it.

Usage (from kernel.json): kernel_launcher.py EVCXR_JUPYTER --control_file CONNECTION_FILE
        set-up only:      kernel_launcher.py --write-spec KERNEL_JSON EVCXR_JUPYTER
"""
import fcntl
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SLOTS = REPO / "target" / "evcxr"
MAX_SLOTS = 16
# A kernel that was just shut down may take a moment to release its slot; waiting that long
# for a warm folder beats compiling every dependency again in a new one.
REUSE_WAIT_S = 3.0


def try_slot(root: Path, n: int) -> tuple[Path, int] | None:
    fd = os.open(root / f"slot-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    folder = root / f"slot-{n}"
    folder.mkdir(exist_ok=True)
    return folder, fd


def take_free_slot(root: Path = SLOTS, max_slots: int = MAX_SLOTS, reuse_wait_s: float = REUSE_WAIT_S) -> tuple[Path, int]:
    """Returns (folder, lock fd) of a slot no live process holds, preferring one already built."""
    root.mkdir(parents=True, exist_ok=True)
    existing = sorted(n for n in range(max_slots) if (root / f"slot-{n}").is_dir())
    deadline = time.monotonic() + reuse_wait_s
    while existing:
        for n in existing:
            if slot := try_slot(root, n):
                return slot
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for n in range(max_slots):
        if slot := try_slot(root, n):
            return slot
    raise SystemExit(
        f"virtlab: all {max_slots} kernel build folders under {root} are in use. "
        "Fix: shut down kernels you no longer need, then start this one again."
    )


def write_spec(spec_path: str, evcxr: str) -> None:
    spec_file = Path(spec_path)
    spec = json.loads(spec_file.read_text())
    spec["argv"] = [sys.executable, str(Path(__file__).resolve()), evcxr, "--control_file", "{connection_file}"]
    tmp = spec_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(spec, indent=2))
    tmp.replace(spec_file)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--write-spec":
        write_spec(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    chosen = os.environ.get("VIRTLAB_EVCXR_TMPDIR")
    if chosen:
        folder = Path(chosen)
    else:
        folder, fd = take_free_slot()
        # The lock lives in the open file description: it passes to evcxr through exec and is
        # released by the kernel's death, however it dies.
        os.set_inheritable(fd, True)
    env = dict(os.environ, EVCXR_TMPDIR=str(folder))
    os.execvpe(sys.argv[1], sys.argv[1:], env)


if __name__ == "__main__":
    main()
