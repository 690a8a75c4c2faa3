#!/usr/bin/env bash
# Sessionization at scale: raw logs of 1M and 20M requests written by
# `datasets scaled-log` (Parquet), sessionized by the in-memory sessionizer,
# the DataFusion engine (--memory-limit-mb 2048, 2 threads) and DuckDB
# running the same SQL (scripts/duckdb_sessionize.py, memory_limit 2 GB,
# 2 threads), one after the other; wall time and peak RSS of each.
# Needs: a datasets binary built with --features datafusion, and a Python
# with duckdb (DUCKDB_PYTHON, default python3).
# Usage: scripts/bench-sessionize-scale.sh [REQUESTS...] > bench/sessionize-scale-DATE.txt
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1000000 20000000)
py=${DUCKDB_PYTHON:-python3}
bin=target/release/datasets
cargo build --release -q -p datasets --features datafusion
source scripts/bench-common.sh
bench_start
echo "duckdb: $($py -c 'import duckdb; print(duckdb.__version__)')"
timed() { # name requests command...
  local name=$1 n=$2; shift 2
  if /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out.txt" 2>&1; then
    read -r secs kib < "$work/time"
    awk -v name="$name" -v n="$n" -v s="$secs" -v k="$kib" \
      'BEGIN { printf "%-10s %9d requests: %8.1f s  %9.0f requests/s  peak %6.0f MiB\n", name, n, s, n/s, k/1024 }'
  else
    echo "$name $n requests: FAILED: $(tail -3 "$work/out.txt" | tr '\n' ' ')"
  fi
  tail -2 "$work/out.txt" | sed 's/^/    /'
}
available_kib=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
for n in "${sizes[@]}"; do
  raw="$work/raw-$n.parquet"
  $bin scaled-log --requests "$n" -o "$raw" | tail -1
  echo "raw log: $(du -m "$raw" | cut -f1) MiB"
  # The in-memory sessionizer holds every request: about 1 KiB each on
  # this data (bench/sessionize-2026-12-03-amd.txt); skip where that
  # would not fit in the memory available.
  if (( n * 1100 / 1024 < available_kib * 8 / 10 )); then
    timed in-memory "$n" $bin sessionize "$raw" -o "$work/mem.parquet"
  else
    echo "in-memory  $n requests: skipped: needs about $(( n * 1100 / 1024 / 1024 )) MiB, $(( available_kib / 1024 )) MiB available"
  fi
  rm -f "$work/mem.parquet"
  mkdir -p "$work/df-spill" "$work/duck-spill"
  timed datafusion "$n" $bin sessionize --engine datafusion --memory-limit-mb 2048 --threads 2 \
    --spill-dir "$work/df-spill" "$raw" -o "$work/df.parquet"
  rm -rf "$work/df.parquet" "$work/df-spill"
  timed duckdb "$n" "$py" scripts/duckdb_sessionize.py "$raw" "$work/duck.parquet" \
    --memory-limit-mb 2048 --threads 2 --temp-dir "$work/duck-spill"
  rm -rf "$work/duck.parquet" "$work/duck-spill" "$raw"
done
