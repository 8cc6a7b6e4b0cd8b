#!/usr/bin/env bash
# Runs the Python demo (`make demo`): builds the uthread wheel for the default Python (PYTHON, else
# python3) with ci/python-wheel.sh, installs it into target/demo-venv-3.X and runs
# examples/python/uthread_demo.py there. Arguments go to the demo (--count N, --steps S).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
py=$("$PYTHON" -c 'import sys; print(sys.executable)')
minor=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
wheels=$ROOT/target/demo-wheels-$minor
venv=$ROOT/target/demo-venv-$minor
rm -rf "$wheels"
PYTHON=$py ci/python-wheel.sh "$wheels" >/dev/null 2>&1 || PYTHON=$py ci/python-wheel.sh "$wheels"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/uthread-*.whl
exec "$venv/bin/python" examples/python/uthread_demo.py "$@"
