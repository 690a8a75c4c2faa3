#!/usr/bin/env python3
"""Median table of several `bench-model` runs: per shape and engine (the
`-avx512` columns: bf16 and int8 with AMX kept off, on CPUs with AMX) the
median sequences/s (batch 1: median p50 and p99 ms), and per run the ratio
of the best candle precision to the best peer, with the median ratio; for
the training shapes also candle f32 over PyTorch fp32 (the training target).

Usage: scripts/precision-bench-table.py RUN.txt [RUN.txt ...]
"""
import json
import statistics
import sys

ENGINES = ["candle-f32", "candle-bf16", "candle-int8", "candle-bf16-avx512", "candle-int8-avx512",
           "torch-fp32", "torch-bf16", "ort-fp32", "ort-int8"]


def runs(paths):
    for path in paths:
        rows = {}
        with open(path) as f:
            for line in f:
                if line.startswith('{"bench"'):
                    r = json.loads(line)
                    rows[(r["bench"], r["engine"])] = r
        yield path, rows


def main():
    all_runs = list(runs(sys.argv[1:]))
    shapes = list(dict.fromkeys(b for _, rows in all_runs for (b, _) in rows))
    engines = [e for e in ENGINES if any(e == eng for _, rows in all_runs for (_, eng) in rows)]
    print("| shape | " + " | ".join(engines) + " | best candle / best peer, median (runs) |")
    print("|---|" + "---:|" * len(engines) + "---|")
    for shape in shapes:
        cells = []
        for engine in engines:
            got = [rows[(shape, engine)] for _, rows in all_runs if (shape, engine) in rows]
            if not got:
                cells.append("")
            elif shape.startswith("infer_b1"):
                p50 = statistics.median(r["p50_ms"] for r in got)
                p99 = statistics.median(r["p99_ms"] for r in got)
                cells.append(f"{p50:.2f} / {p99:.2f} ms")
            else:
                cells.append(f"{statistics.median(r['seqs_per_s'] for r in got):.1f}")
        ratios = []
        for _, rows in all_runs:
            mine = [r for (b, e), r in rows.items() if b == shape and e.startswith("candle")]
            peers = [r for (b, e), r in rows.items() if b == shape and not e.startswith("candle")]
            if mine and peers:
                best = max(mine, key=lambda r: r["seqs_per_s"])
                peer = max(peers, key=lambda r: r["seqs_per_s"])
                ratios.append((best["seqs_per_s"] / peer["seqs_per_s"], best["engine"], peer["engine"]))
        summary = ", ".join(f"{r:.2f} ({c}/{p})" for r, c, p in ratios)
        median = statistics.median(r for r, _, _ in ratios) if ratios else float("nan")
        f32 = [rows[(shape, "candle-f32")]["seqs_per_s"] / rows[(shape, "torch-fp32")]["seqs_per_s"]
               for _, rows in all_runs if (shape, "candle-f32") in rows and (shape, "torch-fp32") in rows]
        if shape.startswith("train") and f32:
            runs_f32 = ", ".join(f"{r:.2f}" for r in f32)
            summary += f"; candle f32 / torch fp32: **{statistics.median(f32):.2f}x** ({runs_f32})"
        print(f"| {shape} | " + " | ".join(cells) + f" | **{median:.2f}x** ({summary}) |")


if __name__ == "__main__":
    main()
