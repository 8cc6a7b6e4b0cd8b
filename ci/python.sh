#!/usr/bin/env bash
# Builds the uthread extension for every CPython 3.10–3.13 found under ~/.pyenv/versions and runs
# tests/python (pytest) against each, printing a per-version summary.
#
# Usage: ci/python.sh [3.X ...]     (default: every supported version found)
# Env:   CI=true            every one of 3.10, 3.11, 3.12, 3.13 must be present (else failure)
#        PYENV_ROOT         where to look (default ~/.pyenv)
#        PYTEST_ARGS        extra pytest arguments
#
# Each version gets target/venv-3.X with pinned pytest, maturin and mypy (stubtest) from PyPI; the extension is
# built with `maturin build --release` for that interpreter (ci/python-wheel.sh, which also builds the
# drop-in greenlet wheel) and both wheels are installed into the venv (a real install, as users get it). Exit status is non-zero if any build or test run fails, or,
# under CI=true, if a version is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

PYTEST_VERSION=8.4.2
MATURIN_VERSION=1.16.0
MYPY_VERSION=2.4.1   # stubtest: the .pyi stubs must match the module
SUPPORTED=(3.10 3.11 3.12 3.13)

versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=("${SUPPORTED[@]}")

. ci/lib/pythons.sh # find_python

declare -A RESULT
failed=0
for v in "${versions[@]}"; do
  pick_python "$v" || continue
  py=$PY
  echo "=== CPython $v ($py) ==="
  venv=$ROOT/target/venv-$v
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "pytest==$PYTEST_VERSION" "maturin==$MATURIN_VERSION" "mypy==$MYPY_VERSION"
  wheels=$ROOT/target/wheels-$v
  rm -rf "$wheels"
  log=$ROOT/target/pytest-$v.log
  # The uthread wheel and the drop-in greenlet wheel (ci/python-wheel.sh, as `make wheel`).
  if ! PYTHON=$py ci/python-wheel.sh "$wheels" >/dev/null; then
    RESULT[$v]="build failed"
    failed=1
    continue
  fi
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps \
    "$wheels"/uthread-*.whl "$wheels"/greenlet-*.whl
  set +e
  # shellcheck disable=SC2086
  (cd "$ROOT" && "$venv/bin/python" -m pytest tests/python -q -p no:cacheprovider ${PYTEST_ARGS:-}) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  record_pytest "$v" "$status" "$log"
done

echo
print_results "uthread Python tests: summary"
exit $failed
