#!/usr/bin/env bash
# Builds the uthread extension for every CPython 3.10–3.13 found and runs tests/python (pytest)
# against each, printing a per-version summary.
#
# Usage: ci/python.sh [3.X ...]     (default: every supported version found)
# Env:   CI=true            every one of 3.10, 3.11, 3.12, 3.13 must be present (else failure)
#        PYENV_ROOT         where to look (default ~/.pyenv; then PATH: ci/lib/python.sh)
#        PYTEST_ARGS        extra pytest arguments
#
# Each version gets target/venv-3.X-test with pytest and mypy (stubtest) at their ci/pins.txt
# versions; the extension is built with `maturin build --release` for that interpreter
# (ci/python-wheel.sh, which also builds the drop-in greenlet wheel) and both wheels are installed
# into the venv (a real install, as users get it). Exit status is non-zero if any build or test
# run fails, or, under CI=true, if a version is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/python.sh

requested_versions "$@"
declare -A RESULT
failed=0
for v in "${versions[@]}"; do
  pick_python "$v" || continue
  echo "=== CPython $v ($PY) ==="
  venv_for test "$PY"
  pip_pins "$VENV" pytest mypy
  log=$ROOT/target/pytest-$v.log
  # The uthread wheel and the drop-in greenlet wheel (ci/python-wheel.sh, as `make wheel`).
  if ! build_wheels "$PY" "$ROOT/target/wheels-$v-test"; then
    RESULT[$v]="build failed"
    failed=1
    continue
  fi
  install_wheels "$VENV" uthread greenlet
  set +e
  # shellcheck disable=SC2086
  (cd "$ROOT" && "$VENV/bin/python" -m pytest tests/python -q -p no:cacheprovider ${PYTEST_ARGS:-}) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  record_pytest "$v" "$status" "$log"
done

echo
print_results "uthread Python tests: summary"
exit $failed
