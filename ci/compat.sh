#!/usr/bin/env bash
# greenlet's own test suite against uthread's drop-in `greenlet`.
#
# For every CPython 3.10-3.13 found (ci/lib/python.sh): builds the uthread wheel and the
# drop-in greenlet wheel (ci/python-wheel.sh), creates a fresh venv, installs both with greenlet's
# pinned test dependencies, and runs the test modules of greenlet 3.5.6's source distribution
# (downloaded at test time with `pip download`, hash-checked; never committed) with pytest. The
# tests are copied into the installed package as `greenlet.tests`, the way greenlet runs them, so
# that `import greenlet` (and their relative imports) resolve to ours. greenlet's C and C++ test
# extensions are compiled against the greenlet.h our wheel installed. Skips: exactly the
# rows of tests/compat/SKIPPED.md (see skipped.py).
#
# Usage: ci/compat.sh [3.X ...] [-- PYTEST_ARGS...]
# Env:   CI=true     every one of 3.10, 3.11, 3.12, 3.13 must be present (else failure)
#        PYENV_ROOT  where to look (default ~/.pyenv)
#        COMPAT_WORK scratch directory (default target/compat)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/python.sh

GREENLET_VERSION=$(pin_version greenlet)
# greenlet's `test` extra (objgraph, psutil; setuptools only serves test_version, skipped) + pytest.
TEST_DEPS=(objgraph psutil pytest)
WORK=${COMPAT_WORK:-$ROOT/target/compat}   # COMPAT_WORK: another scratch directory (parallel runs)

versions=()
pytest_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; pytest_args=("$@"); break ;;
    *) versions+=("$1"); shift ;;
  esac
done
requested_versions ${versions[@]+"${versions[@]}"}
if [ ${#pytest_args[@]} -gt 0 ]; then export UTHREAD_COMPAT_PARTIAL=1; fi

# --- greenlet's sdist, once (cached in target/compat, checked against the pinned hash) ----------
dl_py=""
for v in "${PY_SUPPORTED[@]}"; do dl_py=$(find_python "$v" || true); [ -n "$dl_py" ] && break; done
[ -n "$dl_py" ] || { echo "ci/compat.sh: no CPython 3.10-3.13 found" >&2; exit 1; }
fetch_sdist "$dl_py" greenlet "$WORK"
tests_src=$SDIST_DIR/src/greenlet/tests
[ -f "$tests_src/__init__.py" ] || { echo "ci/compat.sh: no tests in $SDIST" >&2; exit 1; }

# build_test_extensions VENV GREENLET_SRC_DIR DEST_DIR BUILD_DIR
build_test_extensions() {
  local venv=$1 gsrc=$2 dest=$3 build=$4 header pyinc suffix
  header=$("$venv/bin/python" -c 'import sys, sysconfig, pathlib; print(pathlib.Path(sysconfig.get_path("include", vars={"installed_base": sys.prefix})).parent / "site" / ("python%d.%d" % sys.version_info[:2]) / "greenlet" / "greenlet.h")')
  pyinc=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("include"))')
  suffix=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
  [ -f "$header" ] || { echo "ci/compat.sh: the drop-in wheel installed no $header" >&2; return 1; }
  grep -q uthread "$header" || { echo "ci/compat.sh: $header is not uthread's" >&2; return 1; }
  rm -rf "$build"
  mkdir -p "$build/greenlet/tests"
  cp "$header" "$build/greenlet/greenlet.h"
  cp "$gsrc/greenlet_compiler_compat.hpp" "$build/greenlet/"
  cp "$gsrc/tests/_test_extension.c" "$gsrc/tests/_test_extension_cpp.cpp" "$build/greenlet/tests/"
  ${CC:-cc} -O2 -fPIC -shared -isystem "$pyinc" "$build/greenlet/tests/_test_extension.c" \
    -o "$dest/_test_extension$suffix" &&
  ${CXX:-c++} -O2 -fPIC -shared -std=c++11 -isystem "$pyinc" "$build/greenlet/tests/_test_extension_cpp.cpp" \
    -o "$dest/_test_extension_cpp$suffix"
}

declare -A RESULT
failed=0
start_all=$SECONDS
for v in "${versions[@]}"; do
  pick_python "$v" || continue
  py=$PY
  echo "=== greenlet $GREENLET_VERSION suite on CPython $v ($py) ==="
  start=$SECONDS
  if ! build_wheels "$py" "$WORK/wheels-$v"; then
    RESULT[$v]="wheel build failed"
    failed=1
    continue
  fi
  venv_at "$WORK/venv-$v" "$py"
  venv=$VENV
  pip_pins "$venv" "${TEST_DEPS[@]}" -- "$WHEELS"/uthread-*.whl "$WHEELS"/greenlet-*.whl
  pkg=$("$venv/bin/python" -c 'import greenlet, os; assert greenlet.__uthread__; print(os.path.dirname(greenlet.__file__))')
  cp -r "$tests_src" "$pkg/tests"
  # greenlet's C and C++ test extensions (test_extension_interface, test_cpp, ...), compiled the
  # way its setup.py does, but against OUR greenlet.h: the one the drop-in wheel installed into
  # <venv>/include/site/pythonX.Y/greenlet/ (as greenlet's wheel does). Their sources include
  # "../greenlet.h" and greenlet's own "../greenlet_compiler_compat.hpp" (compiler macros of its
  # test code, no ABI), so they are built in a directory laid out that way.
  if ! build_test_extensions "$venv" "$SDIST_DIR/src/greenlet" "$pkg/tests" "$WORK/ext-$v"; then
    RESULT[$v]="building greenlet's test extensions against our greenlet.h failed"
    failed=1
    continue
  fi
  log=$WORK/pytest-$v.log
  set +e
  # From an empty directory, so that nothing but the venv is importable.
  run_dir=$(mktemp -d)
  (cd "$run_dir" && PYTHONPATH=$ROOT/tests/compat PYTHONDONTWRITEBYTECODE=1 \
     "$venv/bin/python" -m pytest "$pkg/tests" -p skipped -p no:cacheprovider -q -rfEs \
     --durations=10 ${pytest_args[@]+"${pytest_args[@]}"}) 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  rm -rf "$run_dir"
  set -e
  record_pytest "$v" "$status" "$log" "($((SECONDS - start)) s) "
done

echo
print_results "greenlet $GREENLET_VERSION test suite against uthread: summary ($((SECONDS - start_all)) s)"
echo "  (skips: tests/compat/SKIPPED.md)"
exit $failed
