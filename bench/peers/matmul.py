"""The essay's matrix product as a benchmark peer: numpy on the CPU, CuPy (f64, f32) or
PyTorch (every type, and when CuPy is missing) on a GPU.

    python bench/peers/matmul.py --n 1024 --dtype f64 --device cpu --repeats 5

Like virtlab, each size is multiplied for a quarter of a second (at least once) to warm up, then
`repeats` times timed: a CPU left idle while the inputs were made runs its first tens of ms slow.
On the GPU the clock stops after a synchronize (the essay's CuPy figure did not), and only the product is
timed: the matrices are on the GPU before the clock starts, as in virtlab's compute time.
Prints JSON: {"peer": "...", "n": N, "dtype": "...", "ms": [...]}, or {"skipped": "why"}.
"""
import argparse
import json
import sys
import time

# virtlab's matmul::cpu::WARM_UP.
CPU_WARM_UP_S = 0.25


def cpu(n, dtype, repeats):
    import numpy as np

    rng = np.random.default_rng(1)
    a = rng.random((n, n)).astype(dtype)
    b = rng.random((n, n)).astype(dtype)
    warming = time.perf_counter()
    a @ b
    while time.perf_counter() - warming < CPU_WARM_UP_S:
        a @ b
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        runs.append((time.perf_counter() - started) * 1e3)
    return f"numpy {np.__version__}", runs


def gpu(n, dtype, repeats):
    try:
        import cupy as cp
    except ImportError:
        cp = None
    if cp is not None and dtype in ("f64", "f32"):
        types = {"f64": cp.float64, "f32": cp.float32}
        a = cp.random.random((n, n)).astype(types[dtype])
        b = cp.random.random((n, n)).astype(types[dtype])
        a @ b
        cp.cuda.Device().synchronize()
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            cp.cuda.Device().synchronize()
            runs.append((time.perf_counter() - started) * 1e3)
        return f"CuPy {cp.__version__}", runs
    import torch

    if not torch.cuda.is_available():
        raise LookupError("no CUDA GPU visible to PyTorch")
    types = {"f64": torch.float64, "f32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}
    torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    a = torch.rand((n, n), device="cuda", dtype=types[dtype])
    b = torch.rand((n, n), device="cuda", dtype=types[dtype])
    a @ b
    torch.cuda.synchronize()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        runs.append((time.perf_counter() - started) * 1e3)
    return f"PyTorch {torch.__version__}", runs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--dtype", choices=["f64", "f32", "tf32", "bf16"], default="f64")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    try:
        if args.device == "cpu":
            peer, runs = cpu(args.n, {"f64": "float64", "f32": "float32"}[args.dtype], args.repeats)
        else:
            peer, runs = gpu(args.n, args.dtype, args.repeats)
    except (ImportError, LookupError, KeyError) as e:
        print(json.dumps({"skipped": f"{type(e).__name__}: {e}"}))
        return 0
    print(json.dumps({"peer": peer, "n": args.n, "dtype": args.dtype, "ms": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
