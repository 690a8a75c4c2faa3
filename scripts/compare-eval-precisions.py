#!/usr/bin/env python3
"""Compares two `train eval` folders (e.g. f32 and int8 runs of one bundle on
one file): scoring speed, session ranking and every account-verdict number.

Usage: scripts/compare-eval-precisions.py EVAL_A EVAL_B
"""
import json
import sys


def load(folder):
    with open(f"{folder}/metrics.json") as f:
        return json.load(f)


def differences(a, b, path=""):
    """Numeric leaves that differ between two JSON trees, with their paths."""
    if isinstance(a, dict):
        for key in a:
            if key in b:
                yield from differences(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            yield from differences(x, y, f"{path}[{i}]")
    elif isinstance(a, (int, float)) and not isinstance(a, bool) and a != b:
        yield path, a, b


def main():
    first, second = load(sys.argv[1]), load(sys.argv[2])
    for m, folder in ((first, sys.argv[1]), (second, sys.argv[2])):
        b = m["bundle"]
        print(f"{folder}: precision {b.get('precision')}, {m['sessions_per_second']:.1f} sessions/s; {b.get('kernels', '')}")
    for name in ("ranking", "account_verdicts"):
        diffs = list(differences(first[name], second[name], name))
        print(f"{name}: {len(diffs)} numbers differ")
        for path, x, y in diffs:
            print(f"  {path}: {x} -> {y}")


if __name__ == "__main__":
    main()
