#!/usr/bin/env bash
# `make sanitize`: the tests under the sanitizers, each run must end with zero reports.
#
#   1. C suite (tests/c/) with -fsanitize=address,undefined   (ci/test-c.sh asan)
#   2. C suite with -fsanitize=thread, thread tests included  (ci/test-c.sh tsan)
#   3. Rust tests of `coro` and `coro-sys` built by nightly rustc with -Zsanitizer=address and
#      --cfg coro_sanitize="address" (the library itself instrumented; see coro/src/tools.rs)
#   4. The same with -Zsanitizer=thread, the standard library rebuilt with it (-Zbuild-std, the
#      rust-src component), thread tests included
#
# Usage: ci/sanitize.sh [c-asan|c-tsan|rust-asan|rust-tsan]...   (default: all four)
# Needs: cc with libasan/libubsan/libtsan (gcc), a nightly toolchain with rust-src (`make sanitize`
# installs both first, see deps-sanitize). Under CI=true a missing nightly is a failure;
# otherwise steps 3 and 4 are skipped with a note.
#
# Rust under ASan runs with detect_stack_use_after_return=0: when a coroutine finishes, ASan is
# told its stack is gone for good, and ASan then frees that stack's fake-stack frames, including
# the one of the (instrumented) switch hook that is still returning. Use-after-return detection
# therefore needs an uninstrumented libcoro, which is what the C runs use. LeakSanitizer is on,
# with one suppression (ci/lsan.supp: a test that leaks on purpose).
# Rust under TSan: every coroutine is a TSan fiber, and the instrumented switch hook hands its
# shadow-stack entry from the leaving fiber to the arriving one (TsanFibers::switch in
# coro/src/tools.rs). coro-sys's ENOMEM test is left out there (it says why).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(c-asan c-tsan rust-asan rust-tsan)

# rust_lane address|thread: `coro` and `coro-sys` tests built with the sanitizer, library included.
rust_lane() {
  local san=$1 short=${1:0:1}san build_std=() dir log tool
  local flags="-Zsanitizer=$san --cfg coro_sanitize=\"$san\""
  local host
  host=$(rustc +nightly -vV | sed -n 's/^host: //p')
  dir=$ROOT/target/sanitize-$short
  log=$ROOT/target/sanitize-rust-$short.log
  if [ "$san" = thread ]; then
    # TSan must see every access, the standard library's included (atomics, thread spawn).
    build_std=(-Zbuild-std)
    tool=ThreadSanitizer
  else
    tool="AddressSanitizer\|LeakSanitizer\|ASan is ignoring"
  fi
  # --target keeps build scripts and proc macros uninstrumented; coro-sys links the libcoro.so
  # of the same build.
  if RUSTFLAGS=$flags RUSTDOCFLAGS=$flags cargo +nightly build -q "${build_std[@]}" -p coro --target "$host" --target-dir "$dir" &&
    RUSTFLAGS=$flags RUSTDOCFLAGS=$flags CORO_LIB_DIR=$dir/$host/debug \
      ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=0:halt_on_error=1 \
      LSAN_OPTIONS=suppressions=$ROOT/ci/lsan.supp \
      TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      cargo +nightly test "${build_std[@]}" -p coro -p coro-sys --no-fail-fast --target "$host" --target-dir "$dir" >"$log" 2>&1; then
    RESULT[$step]=ok
  else
    RESULT[$step]=FAILED
    failed=1
    grep -E "^(test .*FAILED|SUMMARY|error)|ERROR: AddressSanitizer|WARNING: ThreadSanitizer" "$log" | head -n 40 || true
    echo "(full log: $log)"
  fi
  if grep -q "$tool" "$log"; then
    RESULT[$step]="FAILED (sanitizer report, see $log)"
    failed=1
  fi
  grep -E '^test result:' "$log" | awk -v s="$step" '{p += $4; f += $6} END {printf "%s: %d passed, %d failed\n", s, p, f}'
}

declare -A RESULT
failed=0
for step in "${steps[@]}"; do
  echo "=== sanitize: $step"
  case "$step" in
    c-asan | c-tsan)
      if ci/test-c.sh "${step#c-}"; then RESULT[$step]=ok; else RESULT[$step]=FAILED; failed=1; fi
      ;;
    rust-asan | rust-tsan)
      if ! cargo +nightly --version >/dev/null 2>&1; then
        if [ "${CI:-}" = "true" ]; then
          RESULT[$step]="FAILED (no nightly toolchain)"
          failed=1
        else
          RESULT[$step]="skipped (no nightly toolchain)"
        fi
        continue
      fi
      if [ "$step" = rust-tsan ]; then rust_lane thread; else rust_lane address; fi
      ;;
    *)
      echo "usage: ci/sanitize.sh [c-asan|c-tsan|rust-asan|rust-tsan]..." >&2
      exit 2
      ;;
  esac
done

echo "=== sanitize summary"
for step in "${steps[@]}"; do
  printf '  %-10s %s\n' "$step" "${RESULT[$step]:-}"
done
exit "$failed"
