#!/usr/bin/env bash
# The full HTTP fuzz run of `serve`: DG_FUZZ_CASES generated requests
# (default 100000; the test suite runs 1500) against the real server on
# loopback, asserting no 5xx, a JSON error body on every 4xx and no panic in
# the server log (tests/tests/serve_http.rs,
# fuzzed_requests_never_get_a_5xx_and_every_4xx_is_a_json_error).
#
# Usage: scripts/fuzz-serve.sh [CASES] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export DG_FUZZ_CASES="${1:-100000}" DG_FUZZ_SEED="${2:-7}"
lscpu | grep 'Model name' || true
git rev-parse --short HEAD
time cargo test --release -p e2e --test serve_http -- --exact \
  fuzzed_requests_never_get_a_5xx_and_every_4xx_is_a_json_error --nocapture
