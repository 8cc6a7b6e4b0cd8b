#!/usr/bin/env bash
# gdb, in batch mode, stops inside a coroutine three calls deep and checks that `bt` shows those
# frames, the coroutine's root, and then walks on into the coroutine that resumed it.
set -euo pipefail
cd "$(dirname "$0")/../.."
. ci/lib/cflags.sh # CORO_STRICT_CFLAGS
lib=$(cd "${CORO_LIB_DIR:-target/debug}" && pwd)
out=target/gdb
mkdir -p "$out"
cc $CORO_STRICT_CFLAGS -g -O1 -fno-omit-frame-pointer -Iinclude \
   tests/gdb/backtrace.c -L"$lib" -lcoro -Wl,-rpath,"$lib" -o "$out/backtrace"
bt=$(gdb -q -batch -nx -ex 'break level3' -ex run -ex bt --args "$out/backtrace" 2>&1)

# The frames that must appear, innermost first, in this order.
expected=(level3 level2 level1 entry coro_arch_trampoline resumer main)
rest=$(grep -E '^#[0-9]+' <<<"$bt")
pass=0 fail=0
for f in "${expected[@]}"; do
  line=$(grep -n -m1 -E "(^#[0-9]+ +| in )([A-Za-z0-9_]+::)*${f}( |\\()" <<<"$rest" | cut -d: -f1 || true)
  if [[ -n "$line" ]]; then
    rest=$(tail -n +"$((line + 1))" <<<"$rest")
    pass=$((pass + 1))
  else
    echo "FAIL: frame '$f' missing (or out of order) in:"; echo "$bt"
    fail=$((fail + 1))
    break
  fi
done
if grep -q "Backtrace stopped: previous frame inner\|corrupt stack" <<<"$bt"; then
  echo "FAIL: gdb reports a broken unwind:"; echo "$bt"; fail=$((fail + 1))
fi
[[ $fail -eq 0 ]] && grep -E '^#[0-9]+' <<<"$bt" | sed 's/^/  /'
echo "gdb backtrace: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
