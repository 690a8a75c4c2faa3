#!/usr/bin/env bash
# Throughput and peak memory of the in-memory sessionizer on a raw request
# log: the default dataset's sessions flattened back into one request per
# line (the raw-log contract of docs/data-format.md), as JSONL and Parquet,
# three runs each. Prints the CPU and commit.
# Usage: scripts/bench-sessionize.sh > bench/sessionize-DATE.txt
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh
bench_start
tmp=$work
cargo build --release -q -p datasets
bin=target/release/datasets
cat data/default/{train,validation,test}.jsonl | python3 -c '
import json, sys
for line in sys.stdin:
    s = json.loads(line)
    for e in s["events"]:
        r = dict(e, account_id=s["account_id"])
        if s.get("account"):
            r["account"] = s["account"]
        print(json.dumps(r))
' > "$tmp/raw.jsonl"
$bin convert --raw-log "$tmp/raw.jsonl" -o "$tmp/raw.parquet" > /dev/null
requests=$(wc -l < "$tmp/raw.jsonl")
echo "input: the default dataset's three splits flattened, $requests requests"
for f in raw.jsonl raw.parquet; do
  for run in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$tmp/time" \
      $bin sessionize "$tmp/$f" -o "$tmp/sessions.jsonl" > /dev/null
    read -r secs kib < "$tmp/time"
    awk -v f="$f" -v r="$run" -v s="$secs" -v k="$kib" -v n="$requests" \
      'BEGIN { printf "in-memory  %-11s run %d: %6.2f s  %8.0f requests/s  peak %5.0f MiB\n", f, r, s, n/s, k/1024 }'
  done
done
echo "sessions written: $(wc -l < "$tmp/sessions.jsonl")"
