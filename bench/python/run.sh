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
. ci/lib/pythons.sh
wheel_venv bench "${PYTHON:-python3}"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "greenlet==$GREENLET_VERSION"
exec "$VENV/bin/python" bench/python/bench.py "$@"
