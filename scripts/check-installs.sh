#!/usr/bin/env bash
# Each project alone in a fresh venv, with the repository's constraints: it installs without
# the other project's heavy dependencies, and its demo runs end to end.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python="${PYTHON:-python3}"

check() {  # project, then the distributions it must not pull in
  local project="$1"; shift
  local venv="$work/$project-venv"
  echo "== $project alone: fresh venv in $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -c "$root/constraints.txt" "$root/$project"
  local present
  present="$("$venv/bin/python" -m pip list --format=freeze | cut -d= -f1 | tr 'A-Z_' 'a-z-')"
  for unwanted in "$@"; do
    if grep -qx "$unwanted" <<<"$present"; then
      echo "FAIL: installing $project alone pulled in $unwanted" >&2; exit 1
    fi
  done
  echo "$project alone: $(du -sh "$venv" | cut -f1) on disk, none of: $*"
  (cd "$work" && "$venv/bin/$project" demo --out "$work/$project-demo")
}

check twitchgraph torch torchvision opencv-contrib-python-headless av triton
check twostream duckdb kuzu igraph leidenalg fa2 starlette uvicorn pyspark
echo "both projects install and run alone"
