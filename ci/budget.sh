#!/usr/bin/env bash
# Instructions per switch round trip, counted exactly by callgrind (valgrind's instruction counter),
# so the figures are repeatable on a noisy machine where times are not.
#
#   ci/budget.sh            count our rows and fail if one exceeds tests/budget/budgets.txt
#   ci/budget.sh --report   count our rows and the peers' and print them (make bench), never fail
#   --json F                also write one JSON object per row to F (bench/report.py reads it)
#
# Each row is a program running N round trips and nothing else; it runs at two values of N and the
# count difference over the N difference is one round trip's cost, startup and teardown excluded.
# Rows: the C ABI through libcoro.a and libcoro.so (tests/budget/roundtrip.c), the Rust API and the
# peers corosensei and Boost.Context (coro-bench --count), and the Python ping-pong of uthread and,
# with --report, of greenlet 3.5.6 (tests/budget/pingpong.py). BUDGET_PYTHON names the interpreter
# of a venv holding uthread (default: the 3.11 test venv ci/python.sh makes, target/venv-3.11-test);
# PEER_PYTHON one holding greenlet 3.5.6 from PyPI (default: bench/python/run.sh's 3.11 venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
report=0
json=""
while [ $# -gt 0 ]; do
  case $1 in
    --report) report=1 ;;
    --json) json=$2; shift ;;
    *) echo "usage: ci/budget.sh [--report] [--json FILE]" >&2; exit 2 ;;
  esac
  shift
done
out=$ROOT/target/budget
mkdir -p "$out"
[ -z "$json" ] || : >"$json"

cargo build -q --release -p coro -p coro-bench
. ci/lib/cflags.sh
read -ra cflags <<<"$CORO_CFLAGS -O2 -Iinclude"
cc "${cflags[@]}" tests/budget/roundtrip.c target/release/libcoro.a -lpthread -ldl -lm -o "$out/roundtrip-static"
cc "${cflags[@]}" tests/budget/roundtrip.c -Ltarget/release -lcoro -Wl,-rpath,"$ROOT/target/release" \
  -o "$out/roundtrip-shared"

# instructions N CMD...: what callgrind counts for CMD with N as its last argument.
instructions() {
  local n=$1 log
  shift
  log=$out/callgrind.log
  if ! PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" "$n" >"$log" 2>&1; then
    echo "ci/budget.sh: failed under callgrind: $* $n" >&2
    cat "$log" >&2
    return 1
  fi
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$log"
}

failed=0
declare -A BUDGET
while read -r row max; do
  case $row in ''|'#'*) continue ;; esac
  BUDGET[$row]=$max
done <tests/budget/budgets.txt

# row NAME LOW HIGH CMD...: counts CMD at N = LOW and HIGH, prints the per-round-trip figure and
# checks it against NAME's budget (a peer has none).
row() {
  local name=$1 lo=$2 hi=$3 a b per budget verdict
  shift 3
  a=$(instructions "$lo" "$@") || { failed=1; return; }
  b=$(instructions "$hi" "$@") || { failed=1; return; }
  per=$(( (b - a + (hi - lo) / 2) / (hi - lo) ))
  budget=${BUDGET[$name]:-}
  verdict=peer
  if [ -n "$budget" ]; then
    if [ "$per" -le "$budget" ]; then verdict="within $budget"; else verdict="OVER budget $budget"; failed=1; fi
  fi
  printf '  %-16s %8d instructions per round trip   %s\n' "$name" "$per" "$verdict"
  [ -z "$json" ] || printf '{"row": "%s", "instructions": %d, "budget": %s}\n' "$name" "$per" "${budget:-null}" >>"$json"
}

echo "switch round trip, instructions (callgrind; N = 1,000 and 21,000 round trips, difference / 20,000)"
row c-static 1000 21000 "$out/roundtrip-static"
row c-shared 1000 21000 "$out/roundtrip-shared"
row rust-api 1000 21000 target/release/coro-bench --count "coro (Rust API)"
if [ $report = 1 ]; then
  row corosensei 1000 21000 target/release/coro-bench --count "corosensei 0.3"
  if target/release/coro-bench --count "Boost.Context 1.74 jump_fcontext" 1 >/dev/null 2>&1; then
    row boost-context 1000 21000 target/release/coro-bench --count "Boost.Context 1.74 jump_fcontext"
  else
    echo "  boost-context    (left out: libboost-context-dev is not installed)"
  fi
fi

py=${BUDGET_PYTHON:-$ROOT/target/venv-3.11-test/bin/python}
if [ -x "$py" ]; then
  minor=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  row "python-$minor" 2000 12000 "$py" tests/budget/pingpong.py uthread
else
  echo "  python           (left out: no uthread venv at $py; make test-python makes it)"
  [ $report = 1 ] || failed=1
fi
peer=${PEER_PYTHON:-$ROOT/target/venv-3.11-bench/bin/python}
if [ $report = 1 ] && [ -x "$peer" ]; then
  row "greenlet-$("$peer" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" 2000 12000 \
    "$peer" tests/budget/pingpong.py greenlet
fi

[ $report = 1 ] && exit 0
[ $failed = 0 ] && echo "ci/budget.sh: every row within its budget"
exit $failed
