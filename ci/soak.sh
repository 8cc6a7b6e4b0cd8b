#!/usr/bin/env bash
# Soak: CYCLES create -> switch -> finish cycles with memory sampled 20 times (tests/soak/): after
# the warm-up the allocator's counters may not grow and the exact RSS may not grow by more than 1%
# (a one-time step in a single interval is told apart from growth; docs/reliability.md). The C
# part also runs its control, a leak of one coroutine per 10,000 cycles, which must fail.
#
# Usage: ci/soak.sh [CYCLES] [c|python]...   (default 1000000, both)
#   c       tests/soak/soak.c against libcoro.so from CORO_LIB_DIR (default target/release if
#           built, else target/debug)
#   python  tests/soak/soak.py with uthread built for SOAK_PYTHON (default 3.12) into
#           target/venv-3.X-soak (ci/lib/python.sh)
# Ends with `soak: N passed, M failed` over all samples checked.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/python.sh # one_python, wheel_venv
. ci/lib/cflags.sh # CORO_CFLAGS
CYCLES=${1:-1000000}
shift || true
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(c python)

passed=0
failed=0
tally() { # log
  local line p f
  line=$(grep -E '^soak: [0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1 || true)
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    return
  fi
  p=${line#soak: }
  p=${p%% passed*}
  f=${line#*passed, }
  f=${f%% failed}
  passed=$((passed + p))
  failed=$((failed + f))
}

mkdir -p target/soak
for part in "${parts[@]}"; do
  case "$part" in
    c)
      lib=${CORO_LIB_DIR:-}
      if [ -z "$lib" ]; then
        if [ -f target/release/libcoro.so ]; then lib=target/release; else lib=target/debug; fi
      fi
      lib=$(cd "$lib" && pwd)
      "${CC:-cc}" $CORO_CFLAGS -O2 -Iinclude \
        tests/soak/soak.c -L"$lib" -Wl,-rpath,"$lib" -lcoro -o target/soak/soak
      target/soak/soak "$CYCLES" | tee target/soak/c.log || true
      tally target/soak/c.log
      # The control: the same soak leaking one coroutine per 10,000 cycles must be caught.
      if SOAK_LEAK_EVERY=10000 target/soak/soak "$CYCLES" >target/soak/c-control.log; then
        echo "soak control (C): a coroutine leaked per 10,000 cycles was NOT caught" >&2
        cat target/soak/c-control.log >&2
        failed=$((failed + 1))
      else
        echo "soak control (C): a coroutine leaked per 10,000 cycles is caught:"
        grep -E '^  (heap|rss):' target/soak/c-control.log
        passed=$((passed + 1))
      fi
      ;;
    python)
      one_python "${SOAK_PYTHON:-3.12}"
      wheel_venv soak "$PY"
      venv=$VENV
      "$venv/bin/python" tests/soak/soak.py "$CYCLES" | tee target/soak/python.log || true
      tally target/soak/python.log
      ;;
    *)
      echo "usage: ci/soak.sh [CYCLES] [c|python]..." >&2
      exit 2
      ;;
  esac
done
echo "soak: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
