#!/usr/bin/env bash
# Read throughput of the sessions formats: `datasets validate` (parse,
# validate, count) over the default train split as JSONL, gzip JSONL and
# Parquet, three runs each, with peak memory. Prints the CPU and commit.
# Usage: scripts/bench-parquet-read.sh [sessions.jsonl] > bench/parquet-read-DATE.txt
set -euo pipefail
cd "$(dirname "$0")/.."
input=${1:-data/default/train.jsonl}
source scripts/bench-common.sh
bench_start
tmp=$work
cargo build --release -q -p datasets
bin=target/release/datasets
cp "$input" "$tmp/s.jsonl"
gzip -c "$tmp/s.jsonl" > "$tmp/s.jsonl.gz"
$bin convert "$tmp/s.jsonl" -o "$tmp/s.parquet" > /dev/null
sessions=$(wc -l < "$tmp/s.jsonl")
echo "input: $input, $sessions sessions"
for f in s.jsonl s.jsonl.gz s.parquet; do
  size=$(stat -c %s "$tmp/$f")
  for run in 1 2 3; do
    /usr/bin/time -f "%e %M" -o "$tmp/time" $bin validate --policy strict "$tmp/$f" > /dev/null
    read -r secs kib < "$tmp/time"
    awk -v f="$f" -v r="$run" -v s="$secs" -v k="$kib" -v n="$sessions" -v b="$size" \
      'BEGIN { printf "%-11s %5.1f MB  run %d: %6.2f s  %8.0f sessions/s  peak %4.0f MiB\n", f, b/1e6, r, s, n/s, k/1024 }'
  done
done
