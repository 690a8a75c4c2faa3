#!/usr/bin/env bash
# Proves that the workspace builds with `--features cuda` on a machine
# without a GPU (docs/cuda.md):
# installs nvcc and the CUDA headers from PyPI into a local folder, then
# compiles candle's CUDA kernels for compute capability 9.0 (H100/H200)
# and builds every target of models, train and serve (libraries, binaries,
# tests, benches), linked: cudarc opens the CUDA libraries when the GPU is
# first used (vendor/candle-core/PATCHED.md), so linking needs neither
# the driver nor cuBLAS. Release profile, in the folder that
# scripts/gpu-pack.sh packs from.
#
# Usage: scripts/check-cuda-build.sh [TOOLKIT_DIR]   (default target/cuda-toolkit, about 270 MB)
# Env: CUDA_COMPUTE_CAP (default 90).
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLKIT_DIR="${1:-target/cuda-toolkit}"
# shellcheck source=cuda-toolkit.sh
source scripts/cuda-toolkit.sh
# No GPU to ask: the compute capability must be given.
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
target=target/cuda-check
features=models/cuda,train/cuda,serve/cuda
start=$SECONDS
cargo build --release --target-dir "$target" --all-targets -p models -p train -p serve --features "$features"
echo "CUDA build check passed in $((SECONDS - start)) s (every target built and linked; compute capability $CUDA_COMPUTE_CAP)"
