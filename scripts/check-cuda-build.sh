#!/usr/bin/env bash
# Proves that the workspace compiles with `--features cuda` on a machine
# without a GPU (docs/cuda.md; ../shared/spec/cuda-build.md has the facts):
# installs nvcc and the CUDA headers and libraries from PyPI into a local
# folder, compiles candle's CUDA kernels and the project's libraries for
# compute capability 9.0 (H100/H200), then checks every target (tests,
# benches, binaries) without linking them: linking needs the driver's
# libcuda.so, which only a GPU machine has.
#
# Usage: scripts/check-cuda-build.sh [TOOLKIT_DIR]   (default target/cuda-toolkit, about 1.2 GB)
# Env: CUDA_COMPUTE_CAP (default 90), CUDARC_CUDA_VERSION (default 13040).
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
cargo build --target-dir "$target" --lib -p models -p train -p serve --features "$features"
cargo check --target-dir "$target" --all-targets -p models -p train -p serve --features "$features"
echo "CUDA build check passed in $((SECONDS - start)) s (libraries built, all targets checked; compute capability $CUDA_COMPUTE_CAP)"
