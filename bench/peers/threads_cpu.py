"""The same Monte Carlo loop as virtlab's threads chapter, in Python threads: a fixed number of
samples split across T threads. Under the GIL only one thread runs Python at a time.

    python bench/peers/threads_cpu.py --threads 1,2,4 --samples 300000

Prints JSON: {"python": version, "times": [[threads, seconds], ...]} (median of 3 runs each).
Standard library only.
"""
import argparse
import json
import platform
import statistics
import threading
import time


def hits(seed, samples):
    state = (seed * 0x9E3779B97F4A7C15 | 1) & 0xFFFFFFFFFFFFFFFF
    mask = 0xFFFFFFFFFFFFFFFF
    inside = 0
    for _ in range(samples):
        pair = []
        for _ in range(2):
            state ^= state >> 12
            state ^= (state << 25) & mask
            state ^= state >> 27
            pair.append((((state * 0x2545F4914F6CDD1D) & mask) >> 11) / float(1 << 53))
        inside += pair[0] * pair[0] + pair[1] * pair[1] <= 1.0
    return inside


def timed(threads, samples):
    per = [samples // threads + (i < samples % threads) for i in range(threads)]
    workers = [threading.Thread(target=hits, args=(i + 1, n)) for i, n in enumerate(per)]
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", required=True, help="comma-separated thread counts")
    parser.add_argument("--samples", type=int, required=True)
    args = parser.parse_args()
    counts = [int(c) for c in args.threads.split(",")]
    times = [[t, statistics.median(timed(t, args.samples) for _ in range(3))] for t in counts]
    print(json.dumps({"python": platform.python_version(), "times": times}))


if __name__ == "__main__":
    main()
