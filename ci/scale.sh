#!/usr/bin/env bash
# The C scale program (examples/c/scale.c) with 100,000 coroutines per mode: every coroutine must
# see exactly its values, and a suspended coroutine must cost at most 8 KiB in the default mode and
# 1 KiB in copying mode (docs/performance.md). `make bench` runs the same program with 1,000,000.
# (The Python script tests/scale/scale.py runs at 100,000 in tests/python/test_copying.py.)
#
# Usage: ci/scale.sh [COUNT]     Env: CORO_LIB_DIR (default target/debug), CC.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/cflags.sh # CORO_CFLAGS
count=${1:-100000}
lib=${CORO_LIB_DIR:-$ROOT/target/debug}
out=$ROOT/target/scale
mkdir -p "$out"
"${CC:-cc}" $CORO_CFLAGS -O2 -I"$ROOT/include" \
  examples/c/scale.c -L"$lib" -lcoro -Wl,-rpath,"$lib" -o "$out/scale"
"$out/scale" --count "$count" --json | tee "$out/scale.json"
python3 - "$out/scale.json" <<'PY'
import json, sys
limits = {"default": 8192, "copying": 1024}
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = len(rows) == 2
for r in rows:
    good = r["errors"] == 0 and r["bytes_per_coroutine"] <= limits[r["mode"]]
    print("scale: %-8s %.0f bytes per suspended coroutine (limit %d), %d wrong values: %s"
          % (r["mode"], r["bytes_per_coroutine"], limits[r["mode"]], r["errors"], "ok" if good else "FAIL"))
    ok = ok and good
sys.exit(0 if ok else 1)
PY
