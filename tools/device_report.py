#!/usr/bin/env python3
"""The device check's report (scripts/device-run.sh, phase 5): reads the
phases' raw results from LOGS and writes OUT/report.md (a table per phase,
torch beside every figure where it ran, fractions of the device's peak where
--peak-gflops / --peak-gbs are known) and OUT/report.json (the same numbers).
Standard library only: it runs wherever python3 does.

Usage: python3 device_report.py LOGS OUT [--peak-gflops X] [--peak-gbs X]
"""
import argparse
import glob
import json
import os
import re


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_tsv(path, n):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= n:
                    rows.append(parts[:n])
    except OSError:
        pass
    return rows


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join("" if c is None else str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def fmt(x, digits=2):
    if x is None:
        return "-"
    if isinstance(x, (int, float)):
        return f"{x:.{digits}f}"
    return str(x)


def tests_section(logs):
    rows = read_tsv(os.path.join(logs, "tests.tsv"), 4)
    res = {"suites": len(rows), "passed": 0, "failed": [], "validation_messages": 0, "rows": []}
    for name, rc, secs, msgs in rows:
        ok = rc == "0"
        res["passed"] += ok
        res["validation_messages"] += int(msgs or 0)
        r = {"name": name, "exit": int(rc), "seconds": int(secs), "validation_messages": int(msgs or 0)}
        if not ok:
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
            try:
                with open(os.path.join(logs, f"test-{safe}.log"), errors="replace") as f:
                    lines = [l.rstrip() for l in f if "Assertion" in l or "FAIL" in l or "CRASH" in l or "vulkan [" in l]
            except OSError:
                lines = []
            r["why"] = lines[:6]
            res["failed"].append(name)
        res["rows"].append(r)
    md = [f"{res['suites']} suites (clamped-capability reruns included): {res['passed']} passed, "
          f"{len(res['failed'])} failed; validation messages: {res['validation_messages']}."]
    if res["failed"]:
        md.append("")
        md.append(table(["suite", "exit", "s", "validation msgs", "first failures"],
                        [[r["name"], r["exit"], r["seconds"], r["validation_messages"], "<br>".join(x.replace("|", "\\|") for x in r.get("why", []))]
                         for r in res["rows"] if r["exit"] != 0]))
    slow = sorted(res["rows"], key=lambda r: -r["seconds"])[:5]
    if slow:
        md.append("")
        md.append("Slowest: " + ", ".join(f"{r['name']} {r['seconds']} s" for r in slow) + ".")
    return res, "\n".join(md)


def ops_section(logs, peak_gflops, peak_gflops_f16, peak_gbs):
    ops, partial = load(os.path.join(logs, "ops.out")), False
    if not ops:  # cut short: the library's own choices, timed first
        ops, partial = load(os.path.join(logs, "ops-auto.json")), True
    if not ops:
        return None, "No results."
    torch_ops = load(os.path.join(logs, "torch-ops.json")) or {"rows": []}
    tmap = {(r["shape"], r["dtype"]): r for r in torch_ops["rows"]}
    rows, md_rows = [], []
    for r in ops.get("results", []):
        t = tmap.get((r["shape"], r["dtype"])) if r["op"] == "matmul" else None
        row = dict(r)
        if t:
            row["torch_us"] = t["torch_us"]
            row["torch_gflops"] = t["gflops"]
            row["speed_vs_torch"] = t["torch_us"] / r["median_us"] if r["median_us"] else None
        peak = peak_gflops_f16 if r["dtype"] == "f16" and peak_gflops_f16 else peak_gflops
        if peak and r.get("gflops"):
            row["peak_fraction"] = r["gflops"] / peak
        if peak_gbs and r.get("gbs"):
            row["bandwidth_fraction"] = r["gbs"] / peak_gbs
        rows.append(row)
        rate = f"{r['gflops']:.1f} GFLOP/s" if r.get("gflops") else f"{r['gbs']:.1f} GB/s" if r.get("gbs") else "-"
        frac = row.get("peak_fraction", row.get("bandwidth_fraction"))
        md_rows.append([r["op"], r["variant"], r["shape"], r["dtype"], fmt(r["median_us"], 1), rate, fmt(frac, 3),
                        fmt(row.get("torch_us"), 1), fmt(row.get("speed_vs_torch"), 2)])
    head = f"Device: {ops.get('device', '?')}. GPU timestamps, median of {ops.get('repeat', '?')} after {ops.get('warmup', '?')} warm-up."
    if partial:
        head += " The library's own variant only: the run of every variant did not finish."
    md = [head, "", table(["op", "variant", "shape", "dtype", "µs", "rate", "of peak", "torch µs", "speed vs torch"], md_rows)]
    if not torch_ops["rows"]:
        md.append("\n(no torch figures: torch did not run here)")
    return {"device": ops.get("device"), "caps": ops.get("caps"), "rows": rows}, "\n".join(md)


# vkformer-bench model --config NAME -> tools/bench_hf_model.py's model and keys
TORCH_KEYS = {
    ("base", 1): ("vit-b16", "batch1_ms"), ("base", 8): ("vit-b16", "batch8_ms"),
    ("tiny", 1): ("vit-b16", "batch1_ms"),  # --quick: no torch twin; left empty below
    ("bert-base", 1): ("bert-base", "batch1_128_ms"),
    ("minilm-l6", 32): ("minilm-l6", "batch32_mixed_ms"),
    ("clip-b32", 1): ("clip-b32", "image_batch1_ms"), ("clip-b32", 8): ("clip-b32", "image_batch8_ms"),
    ("clip-b32", "text"): ("clip-b32", "text_100_labels_ms"),
}


def models_section(logs):
    torch = {k: load(os.path.join(logs, f"torch-{k}.json")) for k in ("fp32", "fp16", "fp16-compile")}
    rows, md_rows, gen_rows = [], [], []
    for path in sorted(glob.glob(os.path.join(logs, "model-*.json"))):
        cfg = os.path.basename(path)[6:-5]
        doc = load(path)
        if not doc:
            md_rows.append([cfg, "-", "-", "no results", "-", "-", "-", "-"])
            continue
        for r in doc.get("results", []):
            prec = r.get("precision")
            if "decode" in r:  # a causal LM; torch's figures are for a 128-token prompt
                same = cfg == "gpt2" and r["prompt_tokens"] == 128
                t = (torch.get(prec) or {}).get("gpt2", {}) if same else {}
                tc = (torch.get("fp16-compile") or {}).get("gpt2", {}) if same and prec == "fp16" else {}
                row = {"config": cfg, "precision": prec, "prefill_ms": r["prefill_ms"], "torch_prefill_ms": t.get("prefill_ms"),
                       "torch_compile_prefill_ms": tc.get("prefill_ms"), "decode": r["decode"]}
                rows.append(row)
                dec = {d["context"]: d for d in r["decode"]}
                for ctx in sorted(dec):
                    key = "decode128_tokens_per_s" if ctx <= 128 else "decode991_tokens_per_s"
                    gen_rows.append([cfg, prec, f"decode at {ctx}", fmt(dec[ctx]["tokens_per_s"], 1) + " tok/s",
                                     fmt(t.get(key), 1), fmt(tc.get(key), 1),
                                     fmt(dec[ctx]["tokens_per_s"] / t[key], 2) if t.get(key) else "-"])
                gen_rows.insert(len(gen_rows) - len(dec),
                                [cfg, prec, f"prefill {r['prompt_tokens']}", fmt(r["prefill_ms"], 2) + " ms", fmt(t.get("prefill_ms"), 2),
                                 fmt(tc.get("prefill_ms"), 2), fmt(t["prefill_ms"] / r["prefill_ms"], 2) if t.get("prefill_ms") else "-"])
                continue
            b = "text" if r.get("tower") == "text" else r.get("batch")
            key = TORCH_KEYS.get((cfg, b)) if cfg != "tiny" else None
            t = (torch.get(prec) or {}).get(key[0], {}).get(key[1]) if key else None
            tc = (torch.get("fp16-compile") or {}).get(key[0], {}).get(key[1]) if key and prec == "fp16" else None
            ms = r["latency_ms"]
            row = {"config": cfg, "precision": prec, "batch": b, "tokens": r.get("tokens"), "latency_ms": ms,
                   "gpu_ms": r.get("gpu_ms"), "host_ms": r.get("host_ms"), "torch_ms": t, "torch_compile_ms": tc}
            rows.append(row)
            what = f"{b} labels" if b == "text" else f"batch {b}" + (f", {r['tokens']} tokens" if r.get("tokens") else "")
            md_rows.append([cfg, prec, what, fmt(ms, 2), fmt(r.get("gpu_ms"), 2), fmt(t, 2), fmt(tc, 2),
                            fmt(t / ms, 2) if t else "-"])
    md = [table(["model", "precision", "input", "vkformer ms", "GPU ms", "torch eager ms", "torch.compile ms", "speed vs torch eager"],
                md_rows)]
    if gen_rows:
        md += ["", table(["model", "precision", "step", "vkformer", "torch eager", "torch.compile", "speed vs torch eager"], gen_rows)]
    if not any(torch.values()):
        md.append("\n(no torch figures: torch did not run here)")
    return {"rows": rows, "torch": torch}, "\n".join(md)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs")
    ap.add_argument("out")
    ap.add_argument("--peak-gflops", type=float, default=0, help="fp32 peak (and fp16 when --peak-gflops-f16 is not given)")
    ap.add_argument("--peak-gflops-f16", type=float, default=0)
    ap.add_argument("--peak-gbs", type=float, default=0)
    a = ap.parse_args()
    phases = [{"phase": p, "status": s, "seconds": int(sec), "limit": int(lim)}
              for p, s, sec, lim in read_tsv(os.path.join(a.logs, "phases.tsv"), 4)]
    info = load(os.path.join(a.logs, "info.json")) or []
    dev = info[0] if isinstance(info, list) and info else {}
    tests, tests_md = tests_section(a.logs)
    ops, ops_md = ops_section(a.logs, a.peak_gflops, a.peak_gflops_f16, a.peak_gbs)
    models, models_md = models_section(a.logs)
    report = {"device": dev, "phases": phases, "tests": tests, "ops": ops, "models": models}
    with open(os.path.join(a.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    name = dev.get("name", "no device found")
    md = [f"# vkformer device check: {name}", ""]
    if dev:
        md += [f"Driver: {dev.get('driver', '?')}. Capabilities: `{dev.get('line', '?')}`", ""]
    md += ["## Phases", "", table(["phase", "status", "s", "limit s"], [[p["phase"], p["status"], p["seconds"], p["limit"]] for p in phases]),
           "", "## Tests", "", tests_md, "", "## Ops (vkformer-bench ops)", "", ops_md, "",
           "## Models (vkformer-bench model; torch: tools/bench_hf_model.py on the same shapes)", "", models_md, ""]
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()
