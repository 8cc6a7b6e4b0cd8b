#!/usr/bin/env bash
# The Python benchmark (`make bench`): uthread next to greenlet 3.5.6 in the same run.
#
# Builds the uthread wheel for the default Python (PYTHON, else python3) with ci/python-wheel.sh,
# installs it and greenlet 3.5.6 from PyPI (the real one, not the drop-in) into target/bench-venv-3.X,
# and runs bench/python/bench.py there. Arguments go to bench.py (--rounds, --iters, --alive COUNT,
# --quick).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
GREENLET_VERSION=3.5.6
PYTHON=${PYTHON:-python3}
py=$("$PYTHON" -c 'import sys; print(sys.executable)')
minor=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
wheels=$ROOT/target/bench-wheels-$minor
venv=$ROOT/target/bench-venv-$minor
rm -rf "$wheels"
PYTHON=$py ci/python-wheel.sh "$wheels" >/dev/null 2>&1 || PYTHON=$py ci/python-wheel.sh "$wheels"
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "greenlet==$GREENLET_VERSION"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheels"/uthread-*.whl
exec "$venv/bin/python" bench/python/bench.py "$@"
