#!/usr/bin/env bash
# C test suite of libcoro (tests/c/). Usage: ci/test-c.sh [plain|asan|tsan|valgrind]...
# (default: plain asan valgrind)
#
# Expects the library built by `cargo build -p coro` (CORO_LIB_DIR, default target/debug, must hold
# libcoro.so). Binaries and logs go to target/c-tests/<mode>/. Ends with
# `c-tests: N passed, M failed` summed over every test binary of every mode run; exits 1 if any
# test (or binary) failed.
#
#   plain     cc, -O2, linked against libcoro.so (rpath)
#   asan      -fsanitize=address,undefined, ASAN_OPTIONS=detect_leaks=1
#   tsan      -fsanitize=thread, every test binary (TSAN_OPTIONS=halt_on_error=1); the library
#             announces each switch to TSan's fiber API (coro/src/tools.rs)
#   valgrind  the plain binaries under memcheck (fork-based tests and RSS checks are skipped:
#             CORO_TEST_VALGRIND=1)
#   aarch64   cross-built with aarch64-linux-gnu-gcc, -O2, against the aarch64 libcoro.so (built by
#             `cargo build -p coro --target aarch64-unknown-linux-gnu`, CORO_AARCH64_LIB_DIR), run
#             under qemu-aarch64 with Debian's aarch64 sysroot (ci/test-aarch64.sh does all this)
#
# Environment: CC (default cc), CORO_LIB_DIR, CORO_TEST_TIMEOUT (seconds per binary, default 600;
# valgrind gets 3x), EXTRA_CFLAGS.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)

CC=${CC:-cc}
LIB_DIR=${CORO_LIB_DIR:-target/debug}
case "$LIB_DIR" in
  /*) ;;
  *) LIB_DIR="$ROOT/$LIB_DIR" ;;
esac
OUT="$ROOT/target/c-tests"
TIMEOUT=${CORO_TEST_TIMEOUT:-600}

A64_LIB_DIR=${CORO_AARCH64_LIB_DIR:-$ROOT/target/aarch64-unknown-linux-gnu/debug}
A64_SYSROOT=/usr/aarch64-linux-gnu

if [[ ! -f "$LIB_DIR/libcoro.so" ]]; then
  echo "ci/test-c.sh: $LIB_DIR/libcoro.so not found (run: cargo build -p coro)" >&2
  exit 2
fi

modes=("$@")
if [[ ${#modes[@]} -eq 0 ]]; then
  modes=(plain asan valgrind)
fi
for m in "${modes[@]}"; do
  case "$m" in
    plain | asan | tsan | valgrind | aarch64) ;;
    *)
      echo "usage: ci/test-c.sh [plain|asan|tsan|valgrind|aarch64]..." >&2
      exit 2
      ;;
  esac
done

. "$ROOT/ci/lib/cflags.sh"
read -ra BASE_CFLAGS <<<"$CORO_CFLAGS"
BASE_CFLAGS+=(-g -I"$ROOT/include" -I"$ROOT/tests/c")
# shellcheck disable=SC2206
EXTRA=(${EXTRA_CFLAGS:-})
LDFLAGS=(-L"$LIB_DIR" -Wl,-rpath,"$LIB_DIR" -lcoro -pthread -lm)

mapfile -t TESTS < <(ls tests/c/test_*.c | sort)
mapfile -t SHARED < <(ls tests/c/*.c | grep -v '/test_[^/]*\.c$' || true)
if [[ ${#TESTS[@]} -eq 0 ]]; then
  echo "ci/test-c.sh: no tests/c/test_*.c" >&2
  exit 2
fi

total_passed=0
total_failed=0
failed_bins=()

# build MODE -> compiles every test into $OUT/MODE/
build() {
  local mode=$1 flags=() cc=$CC ldflags=("${LDFLAGS[@]}")
  case "$mode" in
    plain) flags=(-O2) ;;
    aarch64)
      flags=(-O2)
      cc=aarch64-linux-gnu-gcc
      ldflags=(-L"$A64_LIB_DIR" -Wl,-rpath,"$A64_LIB_DIR" -lcoro -pthread -lm)
      ;;
    asan) flags=(-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all) ;;
    tsan) flags=(-O1 -fsanitize=thread -fno-omit-frame-pointer) ;;
  esac
  mkdir -p "$OUT/$mode"
  local t name
  for t in "${TESTS[@]}"; do
    name=$(basename "$t" .c)
    echo "  cc [$mode] $t"
    "$cc" "${BASE_CFLAGS[@]}" "${flags[@]}" "${EXTRA[@]}" -o "$OUT/$mode/$name" "$t" "${SHARED[@]}" "${ldflags[@]}"
  done
}

# run MODE BIN_DIR -> runs every binary, adds its `N passed, M failed` line to the totals
run_mode() {
  local mode=$1 bindir=$2 t name log rc summary p f
  local -a cmd env_vars
  for t in "${TESTS[@]}"; do
    name=$(basename "$t" .c)
    log="$OUT/$mode/$name.log"
    env_vars=(CORO_TEST_VERBOSE=1)
    local tmo=$TIMEOUT
    case "$mode" in
      plain) cmd=("$bindir/$name") ;;
      aarch64)
        cmd=(qemu-aarch64 -L "$A64_SYSROOT" "$bindir/$name")
        env_vars+=(CORO_TEST_QEMU=1)
        ;;
      asan)
        cmd=("$bindir/$name")
        env_vars+=("ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
          "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}")
        ;;
      tsan)
        cmd=("$bindir/$name")
        # libcoro is not instrumented: TSan cannot see its internal locks (Rust futex mutexes),
        # so the allocator calls it makes are ignored (called_from_lib); every access made by the
        # instrumented tests is checked, across threads and across coroutine switches.
        env_vars+=(CORO_TEST_TSAN=1 CORO_TEST_NO_RSS=1
          "TSAN_OPTIONS=halt_on_error=1:exitcode=66:suppressions=$ROOT/tests/c/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}")
        ;;
      valgrind)
        cmd=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
          "$bindir/$name")
        env_vars+=(CORO_TEST_VALGRIND=1)
        tmo=$((TIMEOUT * 3))
        ;;
    esac
    echo "== [$mode] $name"
    set +e
    env "${env_vars[@]}" timeout "$tmo" "${cmd[@]}" >"$log" 2>&1
    rc=$?
    set -e
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    if [[ -n "$summary" ]]; then
      p=${summary%% passed*}
      f=${summary#*, }
      f=${f%% failed}
    else
      p=0
      f=1 # the binary died before its summary: count it as one failure
    fi
    if [[ $rc -ne 0 && $f -eq 0 ]]; then
      f=1 # e.g. valgrind/ASan errors (exit 99/1) after all tests passed, or a crash at exit
    fi
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    grep -E '^(FAIL|SKIP) ' "$log" || true
    if [[ $rc -ne 0 || $f -ne 0 ]]; then
      failed_bins+=("$mode/$name (exit $rc)")
      echo "-- [$mode] $name failed (exit $rc); last lines of $log:"
      tail -n 40 "$log" | sed 's/^/   | /'
    fi
    echo "   ${summary:-no summary line} (exit $rc)"
  done
}

built_plain=0
for m in "${modes[@]}"; do
  case "$m" in
    plain)
      build plain
      built_plain=1
      run_mode plain "$OUT/plain"
      ;;
    asan)
      build asan
      run_mode asan "$OUT/asan"
      ;;
    tsan)
      build tsan
      run_mode tsan "$OUT/tsan"
      ;;
    aarch64)
      if [[ ! -f "$A64_LIB_DIR/libcoro.so" ]]; then
        echo "ci/test-c.sh: $A64_LIB_DIR/libcoro.so not found (ci/test-aarch64.sh builds it)" >&2
        exit 2
      fi
      build aarch64
      run_mode aarch64 "$OUT/aarch64"
      ;;
    valgrind)
      if ! command -v valgrind >/dev/null 2>&1; then
        echo "ci/test-c.sh: valgrind not installed" >&2
        total_failed=$((total_failed + 1))
        failed_bins+=("valgrind (not installed)")
        continue
      fi
      if [[ $built_plain -eq 0 ]]; then
        build plain
        built_plain=1
      fi
      mkdir -p "$OUT/valgrind"
      run_mode valgrind "$OUT/plain"
      ;;
  esac
done

if [[ ${#failed_bins[@]} -gt 0 ]]; then
  echo "failed: ${failed_bins[*]}"
fi
echo "c-tests: $total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 && ${#failed_bins[@]} -eq 0 ]]
