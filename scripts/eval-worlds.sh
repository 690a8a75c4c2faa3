#!/usr/bin/env bash
# Account verdicts of the main job's bundle on the default test and
# validation splits and on the shifted world's test split, one `train eval`
# each (f32, no baseline), with the machine and commit they ran on.
# Usage: scripts/eval-worlds.sh > bench/eval-....txt
# Needs the main job's bundle (models/distill-guard-minilm) and data/shift
# (cargo run --release -p datasets -- build --config datasets/config/shift.toml --out data/shift).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p train >&2
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (dirty)')"
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
for world in default/test default/validation shift/test; do
  out="artifacts/eval-worlds/${world/\//-}"
  cmd="target/release/train eval --data data/$world.jsonl --out $out --no-baseline --precision f32"
  echo
  echo "## $world: $cmd"
  $cmd
done
