#!/usr/bin/env bash
# The CUDA checks, on a machine with an NVIDIA GPU and its driver: the
# CUDA tests (the encoder's forward and backward passes on the GPU against
# the CPU, a short fit on the GPU whose bundle then scores on the CPU as
# training scored) and the GPU model benchmark, with PyTorch on the same
# GPU beside it when PYTHON is given. Every output goes to OUT. CI has no
# GPU and never runs it (docs/cuda.md).
#
# Two ways to get the executables:
# - GPU_PACK unset: builds them here with `--features cuda` (needs Rust and
#   the crates, and the base model: scripts/fetch-base-model.sh);
# - GPU_PACK=ARCHIVE: takes them from scripts/gpu-pack.sh's archive, built
#   on another machine, for a GPU machine without a Rust toolchain. The
#   CUDA libraries are then the driver's and those of PYTHON's NVIDIA
#   wheels (PyTorch's), and the base model gets random weights.
#
# Usage: scripts/gpu-check.sh [OUT]   (default target/gpu-check)
# Env: GPU_PACK, PYTHON (a Python with PyTorch and transformers: the
#      PyTorch baseline; default python3 with GPU_PACK, none without),
#      CUDA_COMPUTE_CAP (default: the GPU's, from nvidia-smi), TOOLKIT_DIR
#      (scripts/cuda-toolkit.sh, when building and nvcc is not on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-target/gpu-check}"
mkdir -p "$out"
rm -f "$out/summary.txt"
start=$SECONDS
summary() {
  echo "GPU check $* after $((SECONDS - start)) s; outputs in $out" | tee "$out/summary.txt"
}
trap 'status=$?; [ -e "$out/summary.txt" ] || summary "stopped (exit $status) before its checks ran"' EXIT
# Runs a named step with its output in OUT/NAME.txt; returns its status.
step() {
  local name="$1"
  shift
  echo "== $name: $*" | tee "$out/$name.txt"
  "$@" 2>&1 | tee -a "$out/$name.txt"
}
nvidia-smi | tee "$out/nvidia-smi.txt"

# Folders of the shared libraries in PYTHON's NVIDIA wheels.
wheel_libraries() {
  "$PYTHON" - <<'PY'
import glob, os, nvidia
found = {os.path.dirname(p) for d in nvidia.__path__
         for p in glob.glob(os.path.join(d, "**", "lib*.so*"), recursive=True)}
print(":".join(sorted(found)))
PY
}

if [ -n "${GPU_PACK:-}" ]; then
  PYTHON="${PYTHON:-python3}"
  pack=target/gpu-prebuilt
  rm -rf "$pack"
  mkdir -p "$pack"
  # Python's tarfile, not tar: a GPU machine's image may lack xz.
  "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="tar")' \
    "$GPU_PACK" "$pack"
  tee "$out/built.txt" <"$pack/built"
  # fit_export reads the datasets config through the path it was built in.
  root="$(cat "$pack/build-root")"
  if [ ! -e "$root" ]; then
    mkdir -p "$(dirname "$root")"
    ln -sfn "$PWD" "$root"
  fi
  step weights "$PYTHON" bench/baselines/random_weights.py "$pack/model" || exit
  base_model="$pack/model"
  encoder_test=("$pack/bin/models-cuda")
  fit_test=("$pack/bin/train-fit_export" a_short_fit_on_cuda)
  bench_model="$pack/bin/bench-model"
else
  if command -v nvcc >/dev/null; then
    # candle-kernels links the CUDA runtime: the linker needs its folder.
    cuda="$(dirname "$(dirname "$(command -v nvcc)")")"
    export LIBRARY_PATH="$cuda/lib64:$cuda/lib:$cuda/targets/x86_64-linux/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  else
    # shellcheck source=cuda-toolkit.sh
    source scripts/cuda-toolkit.sh
  fi
  cap="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d .)"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-$cap}"
  # Apart from the CPU build, so that neither rebuilds the other.
  build=(--release --target-dir target/gpu)
  step build cargo build "${build[@]}" -p train --features cuda --bin bench-model || exit
  base_model=sentence-transformers/all-MiniLM-L6-v2
  encoder_test=(cargo test "${build[@]}" -p models --features cuda --test cuda)
  fit_test=(cargo test "${build[@]}" -p train --features cuda --test fit_export a_short_fit_on_cuda)
  bench_model=target/gpu/release/bench-model
fi

# The CUDA runtime, cuBLAS, cuRAND and NVRTC: PYTHON's NVIDIA wheels (with
# GPU_PACK, PyTorch's), else the system's CUDA.
if [ -n "${PYTHON:-}" ]; then
  libraries="$(wheel_libraries)"
  export LD_LIBRARY_PATH="$libraries${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# One failing check does not stop the others: a GPU machine is lent briefly.
failed=()
step test-encoder "${encoder_test[@]}" || failed+=(test-encoder)
step test-fit "${fit_test[@]}" || failed+=(test-fit)
bench=("$bench_model" --device cuda:0 --steps 20 --base-model "$base_model")
if [ -n "${PYTHON:-}" ]; then
  bench+=(--torch-python "$PYTHON")
fi
step bench-model "${bench[@]}" || failed+=(bench-model)
if [ ${#failed[@]} -gt 0 ]; then
  summary "FAILED (${failed[*]})"
  exit 1
fi
summary passed
