"""The essay's asyncio demo as a benchmark peer: N tasks that each sleep, gathered; reports the
wall time to spawn and complete them all and the memory each task held.

    python bench/peers/tasks.py --tasks 100000 --sleep-ms 1 --repeats 5

Memory is what tracemalloc counts as allocated while all tasks are parked (the Python-heap
analogue of virtlab's heap-in-use figure), from one extra run so the timed runs are not slowed.
Prints JSON: {"tasks": N, "wall_ms": [...], "bytes_each": B}. Standard library only.
"""
import argparse
import asyncio
import json
import time
import tracemalloc


async def one_run(n, sleep_s):
    before = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    tasks = [asyncio.create_task(asyncio.sleep(sleep_s)) for _ in range(n)]
    await asyncio.sleep(0)  # every task has started and is parked on its timer
    during = tracemalloc.get_traced_memory()[0]
    await asyncio.gather(*tasks)
    return (time.perf_counter() - started) * 1e3, (during - before) / n


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, required=True)
    parser.add_argument("--sleep-ms", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sleep_s = args.sleep_ms / 1e3
    asyncio.run(one_run(args.tasks, sleep_s))  # warm-up
    wall_ms = [asyncio.run(one_run(args.tasks, sleep_s))[0] for _ in range(args.repeats)]
    tracemalloc.start()
    _, bytes_each = asyncio.run(one_run(args.tasks, sleep_s))
    tracemalloc.stop()
    print(json.dumps({"tasks": args.tasks, "wall_ms": wall_ms, "bytes_each": bytes_each}))


if __name__ == "__main__":
    main()
