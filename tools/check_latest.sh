#!/usr/bin/env bash
# Drift check: the NEWEST versions that pyproject.toml's ranges allow, in a fresh virtual environment. Prints the
# packages whose version differs from constraints.txt, then runs the fast suite with them:
#
#     bash tools/check_latest.sh           # a temporary environment, removed afterwards
#     bash tools/check_latest.sh VENV      # ... created at VENV (a new path) and kept, e.g. to re-pin from it
#
# The first install downloads PyTorch and the rest (several GB; pip's cache keeps them), the suite takes ~15
# minutes on 2 cores. Then either widen the pins, from the environment where the suite passed:
#     VENV/bin/python tools/constraints.py freeze > constraints.txt
# or fix what broke (or narrow the range in pyproject.toml). The exit status is the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -gt 0 ]]; then
    venv=$1
    [[ ! -e $venv ]] || { echo "check_latest: $venv exists; give a new path" >&2; exit 2; }
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    venv=$work/venv
fi
python3 -m venv "$venv"
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]"  # no constraints: the newest allowed
echo "== versions that differ from constraints.txt (pinned -> newest allowed)"
python tools/constraints.py diff constraints.txt || true
echo "== the fast suite with them"
python -m pytest
