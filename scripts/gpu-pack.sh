#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs (the CUDA tests and bench-model,
# release, `--features cuda`) on a machine without a GPU, and packs the
# executables with the base model's config and tokenizer (not its 90 MB of
# weights: the check draws random ones, speed does not depend on them) into
# one archive small enough to carry to a GPU machine without a Rust
# toolchain. There, from the repository root, with the archive carried
# along (docs/cuda.md):
#
#   GPU_PACK=target/gpu-pack/gpu-pack.tar.xz PYTHON=python3 scripts/gpu-check.sh OUT
#
# The executables link without the driver: cudarc opens the CUDA libraries
# when the GPU is first used (vendor/candle-core/PATCHED.md).
#
# Usage: scripts/gpu-pack.sh   (writes target/gpu-pack/gpu-pack.tar.xz)
# Env: CUDA_COMPUTE_CAP (default 90: H100 / H200), TOOLKIT_DIR
#      (scripts/cuda-toolkit.sh), BASE_MODEL (a directory with config.json
#      and the tokenizer; default: scripts/fetch-base-model.sh's snapshot).
set -euo pipefail
cd "$(dirname "$0")/.."
# The snapshot hf-hub resolves (refs/main), as scripts/fetch-base-model.sh
# or a hub download leaves it.
repo="${HF_HOME:-$HOME/.cache/huggingface}/hub/models--sentence-transformers--all-MiniLM-L6-v2"
revision="$(cat "$repo/refs/main" 2>/dev/null || true)"
base="${BASE_MODEL:-$repo/snapshots/$revision}"
if [ ! -s "$base/config.json" ] || [ ! -s "$base/tokenizer.json" ]; then
  echo "no base model config and tokenizer at $base: run scripts/fetch-base-model.sh or set BASE_MODEL" >&2
  exit 1
fi
# shellcheck source=cuda-toolkit.sh
source scripts/cuda-toolkit.sh
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# The same packages and features as scripts/check-cuda-build.sh, so that
# the two share one build.
target=target/cuda-check
build=(--release --target-dir "$target" -p models -p train -p serve
       --features models/cuda,train/cuda,serve/cuda)
stage="$(mktemp -d)"
archive=target/gpu-pack/gpu-pack.tar.xz
trap 'rm -rf "$stage" "$archive.partial"' EXIT
mkdir -p "$stage/bin" "$stage/model"
cargo build "${build[@]}" --bin bench-model
cp "$target/release/bench-model" "$stage/bin/"
# Test executables are named by a hash: take them from cargo's messages.
cargo test "${build[@]}" --no-run --test cuda --test fit_export --message-format=json \
  | python3 -c '
import json, shutil, sys
stage = sys.argv[1]
for line in sys.stdin:
    msg = json.loads(line)
    target = msg.get("target", {})
    if msg.get("reason") == "compiler-artifact" and msg.get("executable") and "test" in target.get("kind", []):
        package = msg["package_id"].split("#")[0].rsplit("/", 1)[-1]
        shutil.copy(msg["executable"], stage + "/bin/" + package + "-" + target["name"])
' "$stage"
strip "$stage"/bin/*
for file in config.json tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json; do
  if [ -e "$base/$file" ]; then
    cp "$base/$file" "$stage/model/"
  fi
done
# fit_export reads the datasets config through the path it was built in.
pwd >"$stage/build-root"
{
  echo "commit $(git describe --always --dirty)"
  echo "compute capability $CUDA_COMPUTE_CAP"
  nvcc --version | tail -n 2
} >"$stage/built"
ls -l "$stage/bin"
mkdir -p "$(dirname "$archive")"
XZ_OPT="-6 -T0" tar -C "$stage" -cJf "$archive.partial" .
mv "$archive.partial" "$archive"
echo "packed $(du -h "$archive" | cut -f1): $archive ($(head -n 1 "$stage/built"))"
