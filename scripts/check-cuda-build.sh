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
dir="${1:-target/cuda-toolkit}"
# The versions this was checked with (CUDA 13.5).
wheels=(nvidia-cuda-nvcc==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cuda-crt==13.5.37
        nvidia-cuda-cccl==13.3.5.0.6 nvidia-cublas==13.10.0.20 nvidia-curand==10.4.5.25)
if [ ! -x "$dir/nvidia/cu13/bin/nvcc" ]; then
  echo "installing ${wheels[*]} into $dir"
  python3 -m pip install --quiet --target "$dir" "${wheels[@]}"
fi
root="$(cd "$dir/nvidia/cu13" && pwd)"
export PATH="$root/bin:$PATH" CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root"
# No GPU to ask: the compute capability must be given.
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# cudarc 0.19 refuses the toolkit's own 13.5; 13.4 is the newest it knows.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13040}"
nvcc --version | tail -n 2
target=target/cuda-check
features=models/cuda,train/cuda,serve/cuda
start=$SECONDS
cargo build --target-dir "$target" --lib -p models -p train -p serve --features "$features"
cargo check --target-dir "$target" --all-targets -p models -p train -p serve --features "$features"
echo "CUDA build check passed in $((SECONDS - start)) s (libraries built, all targets checked; compute capability $CUDA_COMPUTE_CAP)"
