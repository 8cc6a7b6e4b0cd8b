#!/usr/bin/env bash
# Builds the _pystate_probe test extension (tests/pystate/probe.c + python/src/pystate.c, linked
# against target/debug/libcoro.so) for every CPython 3.10–3.13 found (ci/lib/python.sh: pyenv's,
# then PATH; versions not found are skipped, none found is a failure) and runs
# tests/pystate/test_pystate.py (plain unittest) with each. Prints a summary per version and, last,
# "N passed, M failed".
#
#   ci/pystate.sh                 all versions found
#   ci/pystate.sh 3.12            only these minor versions
#   PYSTATE_CC=clang ci/pystate.sh
#   PYSTATE_SANITIZE=1 ci/pystate.sh   also build with -fsanitize=undefined
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT" || exit 2
. ci/lib/python.sh   # find_python, PY_SUPPORTED
. ci/lib/cflags.sh   # CORO_PYEXT_CFLAGS
CC="${PYSTATE_CC:-cc}"
OUT="$ROOT/target/pystate"

if [ ! -f target/debug/libcoro.so ] || [ -n "$(find coro/src include -newer target/debug/libcoro.so -print -quit 2>/dev/null)" ]; then
    echo "== building libcoro (cargo build -p coro)"
    cargo build -p coro --quiet || { echo "cargo build failed"; echo "0 passed, 1 failed"; exit 1; }
fi

requested_versions "$@"
pythons=()
for v in "${versions[@]}"; do
    py=$(find_python "$v" || true)
    [ -n "$py" ] && pythons+=("$py")
done
if [ ${#pythons[@]} -eq 0 ]; then
    echo "no CPython ${versions[*]} found (under $PYENV_ROOT/versions or on PATH)"
    echo "0 passed, 1 failed"
    exit 1
fi

read -ra CFLAGS <<<"$CORO_PYEXT_CFLAGS"
CFLAGS+=(-O2 -g -fPIC)
if [ -n "${PYSTATE_SANITIZE:-}" ]; then CFLAGS+=(-fsanitize=undefined -fno-sanitize-recover=all); fi

total_pass=0
total_fail=0
summary=()
for py in "${pythons[@]}"; do
    ver="$("$py" -c 'import platform; print(platform.python_version())')"
    inc="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    suffix="$("$py" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
    dir="$OUT/$ver"
    mkdir -p "$dir"
    echo "== CPython $ver: building _pystate_probe"
    if ! "$CC" "${CFLAGS[@]}" -shared -I"$inc" -Iinclude -Ipython/src \
            tests/pystate/probe.c python/src/pystate.c \
            -Ltarget/debug -lcoro -Wl,-rpath,"$ROOT/target/debug" \
            -o "$dir/_pystate_probe$suffix" 2>"$dir/build.log"; then
        cat "$dir/build.log"
        summary+=("$ver: BUILD FAILED")
        total_fail=$((total_fail + 1))
        continue
    fi
    echo "== CPython $ver: running tests"
    log="$dir/test.log"
    PYTHONPATH="$dir" PYTHONFAULTHANDLER=1 timeout 900 "$py" -X dev tests/pystate/test_pystate.py 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    result="$(grep -E '^RESULT passed=[0-9]+ failed=[0-9]+ skipped=[0-9]+$' "$log" | tail -n 1)"
    if [ -z "$result" ]; then
        # The interpreter died mid-suite: run each test alone to find the culprit(s).
        echo "== CPython $ver: the suite did not finish (exit $rc); running each test alone"
        p=0; f=0
        for t in $(PYTHONPATH="$dir" "$py" tests/pystate/test_pystate.py --list); do
            if PYTHONPATH="$dir" timeout 300 "$py" -X dev tests/pystate/test_pystate.py "$t" >"$dir/one.log" 2>&1 \
                    && grep -qE '^RESULT passed=[01] failed=0 skipped=[01]$' "$dir/one.log"; then
                p=$((p + 1))
            else
                f=$((f + 1)); echo "FAILED (alone): $t"; tail -n 20 "$dir/one.log"
            fi
        done
        summary+=("$ver: $p passed, $f failed (suite crashed with exit $rc; counts from tests run one by one)")
        total_pass=$((total_pass + p)); total_fail=$((total_fail + f + 1))
        continue
    fi
    p="$(echo "$result" | sed -E 's/RESULT passed=([0-9]+) failed=([0-9]+) skipped=([0-9]+)/\1/')"
    f="$(echo "$result" | sed -E 's/RESULT passed=([0-9]+) failed=([0-9]+) skipped=([0-9]+)/\2/')"
    k="$(echo "$result" | sed -E 's/RESULT passed=([0-9]+) failed=([0-9]+) skipped=([0-9]+)/\3/')"
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    summary+=("$ver: $p passed, $f failed, $k skipped")
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
done

echo
echo "== summary"
for line in "${summary[@]}"; do echo "  $line"; done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
