#!/usr/bin/env bash
# The Python benchmark (`make bench`): uthread next to greenlet 3.5.6 in the same run.
#
# Builds the uthread wheel for the default Python (PYTHON, else python3) with ci/python-wheel.sh,
# installs it and the real greenlet (not the drop-in; version from ci/pins.txt) into
# target/venv-3.X-bench (ci/lib/python.sh), and runs bench/python/bench.py there. Arguments go to
# bench.py (--rounds, --iters, --alive COUNT, --quick).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. ci/lib/python.sh
wheel_venv bench "$(default_python)"
pip_pins "$VENV" greenlet
exec "$VENV/bin/python" bench/python/bench.py "$@"
