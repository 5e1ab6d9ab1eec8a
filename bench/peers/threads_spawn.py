"""The essay's threading demo as a benchmark peer: N threads that each record the line
"0: <name> pid <pid>", started and joined; reports spawn+join wall time per thread.

    python bench/peers/threads_spawn.py --threads 8 --repeats 5

Prints JSON: {"threads": N, "per_thread_ms": [...]} (one value per run). Standard library only.
"""
import argparse
import json
import os
import threading
import time


def worker(lines):
    lines.append(f"0: {threading.current_thread().name} pid {os.getpid()}")


def one_run(n):
    lines = []
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(lines,), name=f"thread-{i + 1}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(lines) == n
    return (time.perf_counter() - started) * 1e3 / n


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    one_run(args.threads)  # warm-up
    print(json.dumps({"threads": args.threads, "per_thread_ms": [one_run(args.threads) for _ in range(args.repeats)]}))


if __name__ == "__main__":
    main()
