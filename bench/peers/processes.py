"""The essay's multiprocessing demo as a benchmark peer: N workers that each send the line
"0: <name> pid <pid>" to the parent, started with the fork or the spawn start method.

    python bench/peers/processes.py --method fork --workers 8 --repeats 5

Prints JSON: per run, each worker's time from p.start() to its line reaching the parent (ms),
and the run's spawn+join wall time (ms). Standard library only.
"""
import argparse
import json
import multiprocessing as mp
import os
import time
from multiprocessing.connection import wait


def worker(conn, iterations):
    for i in range(iterations):
        conn.send_bytes(f"{i}: {mp.current_process().name} pid {os.getpid()}".encode())
    conn.close()


def one_run(ctx, workers, iterations):
    started = time.perf_counter()
    procs, conns, asked = [], [], {}
    for n in range(workers):
        reader, writer = ctx.Pipe(duplex=False)
        p = ctx.Process(target=worker, args=(writer, iterations), name=f"worker-{n + 1}")
        asked[reader] = time.perf_counter()
        p.start()
        writer.close()
        procs.append(p)
        conns.append(reader)
    first_line_ms = []
    pending = list(conns)
    while pending:
        for conn in wait(pending):
            conn.recv_bytes()
            first_line_ms.append((time.perf_counter() - asked[conn]) * 1e3)
            pending.remove(conn)
    for p in procs:
        p.join()
    return {"first_line_ms": first_line_ms, "wall_ms": (time.perf_counter() - started) * 1e3}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=["fork", "spawn", "forkserver"], required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ctx = mp.get_context(args.method)
    one_run(ctx, args.workers, 1)  # warm-up
    runs = [one_run(ctx, args.workers, 1) for _ in range(args.repeats)]
    print(json.dumps({"method": args.method, "workers": args.workers, "runs": runs}))


if __name__ == "__main__":
    main()
