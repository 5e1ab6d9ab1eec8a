"""The essay's asyncio demo as a benchmark peer: N tasks that each sleep, gathered; reports the
wall time to spawn and complete them all and the resident memory each task held.

    python bench/peers/tasks.py --tasks 100000 --sleep-ms 1 --repeats 5

Prints JSON: {"tasks": N, "runs": [{"wall_ms": ..., "bytes_each": ...}, ...]}. Standard library only.
"""
import argparse
import asyncio
import json
import os
import time


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def one_run(n, sleep_s):
    before = resident_bytes()
    started = time.perf_counter()
    tasks = [asyncio.create_task(asyncio.sleep(sleep_s)) for _ in range(n)]
    await asyncio.sleep(0)  # every task has started and is parked on its timer
    during = resident_bytes()
    await asyncio.gather(*tasks)
    return {"wall_ms": (time.perf_counter() - started) * 1e3, "bytes_each": (during - before) / n}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--sleep-ms", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(one_run(args.tasks, args.sleep_ms / 1e3))  # warm-up
    runs = [asyncio.run(one_run(args.tasks, args.sleep_ms / 1e3)) for _ in range(args.repeats)]
    print(json.dumps({"tasks": args.tasks, "runs": runs}))


if __name__ == "__main__":
    main()
