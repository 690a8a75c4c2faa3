#!/usr/bin/env bash
# Executes notebooks/eval-report.ipynb headless against an evaluation
# folder (default artifacts/eval, the main job's), in a virtual environment
# with notebooks/requirements.txt (created on first use, from PyPI).
#
# Usage: scripts/run-notebook.sh [EVAL_DIR] [--inplace]
#   --inplace  store the outputs in the committed notebook (after the main
#              job); without it the executed copy goes to
#              $NOTEBOOK_OUT (default: a temporary directory) and the
#              committed notebook is left untouched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
eval_dir=$(realpath "${1:-$root/artifacts/eval}")
venv="${NOTEBOOK_VENV:-$root/.venv-notebook}"
if ! "$venv/bin/python" -c "import nbconvert, pandas, matplotlib, ipykernel" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$root/notebooks/requirements.txt"
fi
[ -f "$eval_dir/metrics.json" ] || { echo "no evaluation in $eval_dir (run the main job or train eval first)" >&2; exit 1; }
cd "$root/notebooks"
if [ "${2:-}" = "--inplace" ]; then
  target=(--inplace)
else
  out="${NOTEBOOK_OUT:-$(mktemp -d)}"
  target=(--output-dir "$out")
fi
EVAL_DIR="$eval_dir" "$venv/bin/python" -m nbconvert --to notebook --execute \
  --ExecutePreprocessor.timeout=300 --ExecutePreprocessor.kernel_name=python3 \
  "${target[@]}" eval-report.ipynb
echo "notebook executed against $eval_dir"
