"""Chapter 2's Monte Carlo π on CPython: the essay's own VM running the Python peer's `hits`
(bench/peers/threads_cpu.py), the same xorshift64* arithmetic as virtlab's Rust.

    python3 hits.py PEERS_DIR SEED SAMPLES REPEATS

Prints "version V", then one line per repeat, "hits nanoseconds", timed by Python's own clock.
"""
import platform
import sys
import time

sys.path.insert(0, sys.argv[1])
from threads_cpu import hits  # noqa: E402

print("version", platform.python_implementation(), platform.python_version(), flush=True)
seed, samples, repeats = (int(a) for a in sys.argv[2:5])
for _ in range(repeats):
    started = time.perf_counter_ns()
    found = hits(seed, samples)
    print(found, time.perf_counter_ns() - started, flush=True)
