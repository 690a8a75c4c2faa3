# Sourced by scripts/check-cuda-build.sh, scripts/gpu-pack.sh and
# scripts/gpu-check.sh: installs nvcc and the CUDA headers candle builds
# against from PyPI into TOOLKIT_DIR (default target/cuda-toolkit; skipped
# when already there) and exports what candle 0.11 and cudarc 0.19 need
# (docs/cuda.md). CUDA_COMPUTE_CAP is left to
# the caller. The binaries link against the CUDA runtime (candle-kernels'
# MoE kernels); cudarc opens the driver, cuBLAS, cuRAND and NVRTC when the
# GPU is first used (vendor/candle-core/PATCHED.md).

dir="${TOOLKIT_DIR:-target/cuda-toolkit}"
# CUDA 13.0, the version of the GPU machines' driver (580): candle's
# kernels are shipped as PTX, and a driver refuses PTX from a newer nvcc.
wheels=(nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-runtime==13.0.96
        nvidia-cuda-crt==13.0.88 nvidia-cuda-cccl==13.0.85)
# Reinstalled whenever the pins change (an older toolkit is not reused).
if [ "$(cat "$dir/wheels" 2>/dev/null)" != "${wheels[*]}" ]; then
  echo "installing ${wheels[*]} into $dir"
  rm -rf "$dir/nvidia" "$dir"/nvidia_*.dist-info
  python3 -m pip install --quiet --target "$dir" "${wheels[@]}"
  echo "${wheels[*]}" >"$dir/wheels"
fi
root="$(cd "$dir/nvidia/cu13" && pwd)"
export PATH="$root/bin:$PATH" CUDA_ROOT="$root" CUDA_PATH="$root" CUDA_HOME="$root"
# The wheel ships only the versioned runtime library; the linker asks for
# the plain name.
[ -e "$root/lib/libcudart.so" ] || ln -s libcudart.so.13 "$root/lib/libcudart.so"
export LIBRARY_PATH="$root/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
nvcc --version | tail -n 2
