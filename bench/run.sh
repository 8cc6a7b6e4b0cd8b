#!/usr/bin/env bash
# `make bench`: every benchmark of the project in one run, printed as ONE table (bench/report.py).
#
#   1. coro-bench (Rust; C ABI and Rust API next to corosensei 0.3 and Boost.Context's
#      jump_fcontext), interleaved rounds, --json
#   2. bench/python/bench.py (uthread next to greenlet 3.5.6), interleaved rounds, --json
#   3. examples/c/scale.c: 1,000,000 C coroutines per mode, bytes per suspended coroutine
#   4. bench/depth.c: the round trip between two coroutines suspended 0 to 64 KiB deep, both modes
#   5. tests/scale/scale.py: 1,000,000 uthreads (default mode, copying mode) and greenlets
#   6. ci/budget.sh --report: instructions per switch round trip (callgrind), ours and the peers'
#   7. bench/python/gevent.sh: gevent workloads on our drop-in greenlet and on greenlet 3.5.6
#
# Each part's own report goes to target/bench/<part>.log; the merged table is printed at the end.
# Env: BENCH_ARGS (extra coro-bench arguments, e.g. --quick), PYBENCH_ARGS (bench.py arguments),
# DEPTH_ARGS (depth arguments), GEVENT_BENCH_ARGS (bench/python/gevent.sh arguments, e.g. --quick), SCALE_COUNT (default 1000000), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/cflags.sh # CORO_CFLAGS
out=$ROOT/target/bench
mkdir -p "$out"
rm -f "$out"/*.json
count=${SCALE_COUNT:-1000000}

echo "bench: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), kernel $(uname -r)" | tee "$out/meta.txt"
cargo build -q --release -p coro -p coro-bench

echo "bench: coro-bench (log: target/bench/rust.log)"
# shellcheck disable=SC2086
target/release/coro-bench ${BENCH_ARGS:-} --json "$out/rust.json" >"$out/rust.log" 2>&1 || echo "bench: coro-bench failed"

echo "bench: Python next to greenlet 3.5.6 (log: target/bench/python.log)"
# shellcheck disable=SC2086
bench/python/run.sh ${PYBENCH_ARGS:-} --no-alive --json "$out/python.json" >"$out/python.log" 2>&1 || echo "bench: Python bench failed"

echo "bench: C scale program, $count coroutines per mode (log: target/bench/c-scale.log)"
cc $CORO_CFLAGS -O2 -Iinclude examples/c/scale.c \
  -Ltarget/release -lcoro -Wl,-rpath,"$ROOT/target/release" -o "$out/scale"
"$out/scale" --count "$count" --json >"$out/c-scale.json" 2>"$out/c-scale.log" || echo "bench: C scale program failed"

echo "bench: switch round trip by stack depth, both modes (log: target/bench/depth.log)"
cc $CORO_CFLAGS -O2 -Iinclude bench/depth.c \
  -Ltarget/release -lcoro -Wl,-rpath,"$ROOT/target/release" -o "$out/depth"
# shellcheck disable=SC2086
"$out/depth" ${DEPTH_ARGS:-} --json >"$out/depth.json" 2>"$out/depth.log" || echo "bench: depth benchmark failed"

echo "bench: Python scale script, $count uthreads per mode (log: target/bench/py-scale.log)"
. ci/lib/python.sh # default_python, python_minor
venv=$ROOT/target/venv-$(python_minor "$(default_python)")-bench   # made by bench/python/run.sh: uthread + greenlet
"$venv/bin/python" tests/scale/scale.py --count "$count" --impl uthread-copying,greenlet,uthread --json \
  >"$out/py-scale.json" 2>"$out/py-scale.log" || echo "bench: Python scale script failed"

echo "bench: instructions per round trip under callgrind (log: target/bench/instructions.log)"
BUDGET_PYTHON=$venv/bin/python PEER_PYTHON=$venv/bin/python ci/budget.sh --report --json "$out/instructions.json" \
  >"$out/instructions.log" 2>&1 || echo "bench: instruction counts failed"

echo "bench: gevent workloads, our greenlet next to greenlet 3.5.6 (log: target/bench/gevent.log)"
# shellcheck disable=SC2086
bench/python/gevent.sh ${GEVENT_BENCH_ARGS:-} --json "$out/gevent.json" >"$out/gevent.log" 2>&1 || echo "bench: gevent workloads failed"

python3 bench/report.py "$out"
