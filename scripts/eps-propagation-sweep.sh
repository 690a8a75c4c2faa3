#!/usr/bin/env bash
# Propagation against DBSCAN eps on the main job's bundle and test split:
# for each eps, `train eval` (no baseline), then per-campaign account
# detection, benign cost, clustering agreement, and how much of the
# clusters that propagated accounts came from is extraction traffic.
#
# Usage: scripts/eps-propagation-sweep.sh [EPS ...]
#   EPS: a radius, or `suggested` for the k-distance suggestion (the
#   default run); default: suggested 0.30 0.35 0.40 0.45
# Needs the main job's outputs (models/distill-guard-minilm, data/default).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp -d)
[ $# -gt 0 ] || set -- suggested 0.30 0.35 0.40 0.45
for e in "$@"; do
    eps_flag=()
    [ "$e" = suggested ] || eps_flag=(--eps "$e")
    echo "== ./target/release/train eval --no-baseline ${eps_flag[*]}"
    ./target/release/train eval --no-baseline "${eps_flag[@]}" --out "$out/eval-$e" 2>&1 |
      grep -E "low-and-slow|benign accounts|DBSCAN"
    python3 - "$out/eval-$e" data/default/test.jsonl <<'PY'
import collections, json, sys
folder, data = sys.argv[1], sys.argv[2]
truth = {}
for line in open(data):
    s = json.loads(line)
    truth[s["session_id"]] = s.get("campaign_id") or "benign"
m = json.load(open(f"{folder}/metrics.json"))
# Low-and-slow as the report counts it (LOW_AND_SLOW_REQUESTS in
# train/src/report/detection.rs).
for c in m["detection"]["campaigns"]:
    if c["median_requests_per_account"] <= 5:
        print(f"{c['group']}: {c['accounts']} accounts, {c['flagged_by_sessions']} by sessions, {c['flagged_after_propagation']} after propagation")
b = m["detection"]["benign_total"]
q = m["clustering"]["quality_extraction"]
print(f"benign accounts flagged {b['flagged_by_sessions']} -> {b['flagged_after_propagation']}; "
      f"extraction ARI {q['adjusted_rand_index']:.4f}, homogeneity {q['homogeneity']:.4f}, completeness {q['completeness']:.4f}")
members = collections.defaultdict(collections.Counter)
for line in open(f"{folder}/scores.jsonl"):
    r = json.loads(line)
    members[r["cluster_id"]][truth[r["session_id"]] != "benign"] += 1
sources = {json.loads(l)["coordinated_cluster"] for l in open(f"{folder}/accounts.jsonl") if json.loads(l)["propagated"]}
n = sum(sum(members[c].values()) for c in sources)
ext = sum(members[c][True] for c in sources)
print(f"propagated from {len(sources)} clusters; extraction share of their sessions {ext / n if n else float('nan'):.3f}")
PY
done
