#!/usr/bin/env bash
# Re-resolve requirements.in into the exact requirements.lock that ./run installs with --no-deps.
# finn-plus is resolved without its own dependencies (its brevitas==0.13.0 pin cannot coexist with
# torch 2.13); requirements.in lists its real requirements instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
grep -v '^finn-plus' requirements.in > "$tmp/requirements.txt"
"$tmp/venv/bin/pip" install -q -r "$tmp/requirements.txt"
"$tmp/venv/bin/pip" install -q --no-deps "$(grep '^finn-plus' requirements.in)"
{
  echo "# Exact environment of pynqrepro (Python 3.11), installed with pip --no-deps by ./run."
  echo "# Generated from requirements.in by scripts/lock.sh; edit requirements.in, then re-lock."
  "$tmp/venv/bin/pip" freeze --all | grep -v '^pip==' | sed 's/+cpu$//'
} > requirements.lock
echo "wrote requirements.lock ($(grep -c '==' requirements.lock) pins)"
