#!/usr/bin/env bash
# The CUDA checks, on a machine with an NVIDIA GPU: its driver (libcuda.so),
# Rust and the crates (reachable or cached), and the base model fetched
# (scripts/fetch-base-model.sh). Builds with `--features cuda`, runs the
# CUDA tests (the encoder's forward and backward passes on the GPU against
# the CPU, a short fit on the GPU whose bundle then scores on the CPU as
# training scored) and the GPU model benchmark, with PyTorch on the same GPU
# beside it when PYTHON is given, and writes every output to OUT. CI has no
# GPU and never runs it (docs/cuda.md).
#
# Usage: scripts/gpu-check.sh [OUT]   (default target/gpu-check)
# Env: PYTHON (a Python with bench/baselines/requirements.txt: the PyTorch
#      baseline), CUDA_COMPUTE_CAP (default: the GPU's, from nvidia-smi),
#      TOOLKIT_DIR (where the CUDA toolkit wheels go when nvcc is not on
#      PATH; scripts/cuda-toolkit.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/gpu-check}"
mkdir -p "$out"
start=$SECONDS
nvidia-smi | tee "$out/nvidia-smi.txt"
if ! command -v nvcc >/dev/null; then
  # shellcheck source=cuda-toolkit.sh
  source scripts/cuda-toolkit.sh
fi
cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d .)"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$cap}"
# Apart from the CPU build, so that neither rebuilds the other.
target=target/gpu
step() {
  local name="$1"
  shift
  echo "== $name: $*" | tee "$out/$name.txt"
  "$@" 2>&1 | tee -a "$out/$name.txt"
}
step build cargo build --release --target-dir "$target" -p train --features cuda --bin bench-model
step test-encoder cargo test --release --target-dir "$target" -p models --features cuda --test cuda
step test-fit cargo test --release --target-dir "$target" -p train --features cuda --test fit_export a_short_fit_on_cuda
bench=("$target/release/bench-model" --device cuda:0 --steps 20)
if [ -n "${PYTHON:-}" ]; then
  bench+=(--torch-python "$PYTHON")
fi
step bench-model "${bench[@]}"
echo "GPU check passed in $((SECONDS - start)) s (compute capability $CUDA_COMPUTE_CAP); outputs in $out" | tee "$out/summary.txt"
