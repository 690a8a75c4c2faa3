# Sourced by scripts/check-cuda-build.sh and scripts/gpu-check.sh: installs
# nvcc and the CUDA headers and libraries candle builds against from PyPI
# into TOOLKIT_DIR (default target/cuda-toolkit, about 1.2 GB; skipped when
# already there) and exports what candle 0.11 and cudarc 0.19 need
# (docs/cuda.md, ../shared/spec/cuda-build.md). CUDA_COMPUTE_CAP is left to
# the caller.
dir="${TOOLKIT_DIR:-target/cuda-toolkit}"
# The versions this was checked with (CUDA 13.5).
wheels=(nvidia-cuda-nvcc==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cuda-crt==13.5.37
        nvidia-cuda-cccl==13.3.5.0.6 nvidia-cublas==13.10.0.20 nvidia-curand==10.4.5.25)
if [ ! -x "$dir/nvidia/cu13/bin/nvcc" ]; then
  echo "installing ${wheels[*]} into $dir"
  python3 -m pip install --quiet --target "$dir" "${wheels[@]}"
fi
root="$(cd "$dir/nvidia/cu13" && pwd)"
export PATH="$root/bin:$PATH" CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root"
# cudarc 0.19 refuses the toolkit's own 13.5; 13.4 is the newest it knows.
export CUDARC_CUDA_VERSION="${CUDARC_CUDA_VERSION:-13040}"
nvcc --version | tail -n 2
