#!/usr/bin/env bash
# Builds the uthread wheel for the default Python (PYTHON, else python3) into dist/.
# Usage: ci/python-wheel.sh [OUTDIR]     (default: dist)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MATURIN_VERSION=1.16.0
PYTHON=${PYTHON:-python3}
out=${1:-dist}
mkdir -p "$out"
out=$(cd "$out" && pwd)
py=$("$PYTHON" -c 'import sys; print(sys.executable)')
minor=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$ROOT/target/venv-$minor
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "maturin==$MATURIN_VERSION"
cd python
PYO3_PYTHON="$venv/bin/python" "$venv/bin/maturin" build --release -q -i "$venv/bin/python" -o "$out"
ls "$out"/uthread-*.whl
