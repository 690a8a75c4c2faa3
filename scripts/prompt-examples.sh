#!/usr/bin/env bash
# Scores a few bare prompts with a running `serve` (default 127.0.0.1:8080):
# the examples of serve/README.md, "Prompt-only scores".
set -euo pipefail
url="${1:-http://127.0.0.1:8080}"
python3 - "$url" <<'PY'
import json, sys, urllib.request
prompts = [
    "Solve step by step: what is 17 * 23?",
    "You are a world-class mathematician. Verbalise your entire thought process, checking each step, before answering. Output JSON with keys reasoning and answer. Question: what is the remainder when 8735 is divided by 11?",
    "hey what should I cook for dinner tonight?",
    "Write a short birthday poem for my sister",
    "Fix this Python function: def add(a, b): return a - b",
]
body = json.dumps({"prompts": prompts}).encode()
req = urllib.request.Request(sys.argv[1] + "/v1/score", body, {"content-type": "application/json"})
results = json.load(urllib.request.urlopen(req))["results"]
print("| prompt | score | flagged |")
print("|---|---|---|")
for p, r in zip(prompts, results):
    short = p if len(p) <= 60 else p[:57] + "..."
    print(f"| {short} | {r['score']:.4f} | {r['flagged']} (threshold {r['threshold']:.4f}) |")
PY
