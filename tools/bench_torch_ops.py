#!/usr/bin/env python3
"""torch's own matmul on the GEMM shapes `vkformer-bench ops --json` timed, so
each vkformer matmul figure has torch's beside it on the same device.

Reads the bench's JSON (a file, or - for standard input), takes every distinct
matmul shape ("MxKxN nt" or "nn": y[M,N] = x[M,K] @ W + b with W stored [N,K]
for nt, [K,N] for nn), and times torch.addmm on the same layout in each dtype
asked for: median of --runs after a warm-up, CUDA events on a GPU. Prints JSON:
{"device", "torch", "rows": [{"shape", "dtype", "torch_us", "gflops"}]}.

Usage: python3 tools/bench_torch_ops.py ops.json [--device cuda] [--dtypes fp16,fp32]
"""
import argparse
import json
import statistics
import sys

import torch


def time_us(fn, device, runs):
    for _ in range(3):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        times = []
        for _ in range(runs):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1e3)
        return statistics.median(times)
    import time
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("ops_json")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtypes", default="fp16,fp32")
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    with (sys.stdin if args.ops_json == "-" else open(args.ops_json)) as f:
        ops = json.load(f)
    device = torch.device(args.device)
    shapes = []
    for r in ops.get("results", []):
        if r.get("op") == "matmul" and r["shape"] not in shapes:
            shapes.append(r["shape"])
    rows = []
    for shape in shapes:
        dims, layout = shape.split()
        M, K, N = (int(x) for x in dims.split("x"))
        for name in args.dtypes.split(","):
            dt = torch.float16 if name == "fp16" else torch.float32
            x = torch.randn(M, K, device=device, dtype=dt)
            w = torch.randn((N, K) if layout == "nt" else (K, N), device=device, dtype=dt) * 0.05
            bias = torch.randn(N, device=device, dtype=dt)
            wt = w.t() if layout == "nt" else w
            us = time_us(lambda: torch.addmm(bias, x, wt), device, args.runs)
            rows.append({"shape": shape, "dtype": "f16" if name == "fp16" else "f32", "torch_us": us,
                         "gflops": 2.0 * M * N * K / (us * 1e-6) * 1e-9})
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    json.dump({"device": name, "torch": torch.__version__, "rows": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
