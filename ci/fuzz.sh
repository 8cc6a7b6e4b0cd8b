#!/usr/bin/env bash
# Differential fuzzing of uthread against real greenlet 3.5.6 (tests/fuzz/, hypothesis).
#
# Usage: ci/fuzz.sh [EXAMPLES]      (default 2000; `make fuzz` passes 100000)
# Env:   FUZZ_PYTHON   CPython minor version to use (default 3.12)
#        FUZZ_SEED     hypothesis seed (default: random; printed so a run can be repeated)
#
# Builds the uthread wheel for that interpreter into target/wheels-3.X-fuzz and installs it, with
# hypothesis, pytest and greenlet 3.5.6 from PyPI (ci/pins.txt), into target/venv-3.X-fuzz. Both
# implementations run in the same process: every generated program is interpreted once against
# the `greenlet` module and once against `uthread`, and the two traces must be equal.
# Ends with `fuzz: N examples, M diverged` (the sum over all processes); fails if M > 0 or fewer
# than EXAMPLES ran.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EXAMPLES=${1:-2000}
. ci/lib/python.sh
one_python "${FUZZ_PYTHON:-3.12}"

# uthread, and hypothesis, pytest and the real greenlet at their pins, in target/venv-3.X-fuzz.
wheel_venv fuzz "$PY"
venv=$VENV
pip_pins "$venv" hypothesis pytest greenlet

# The regression programs (every divergence ever found) first, then the random ones, split over
# FUZZ_JOBS processes (default: the number of CPUs), each with its own seed.
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/fuzz/test_regressions.py

JOBS=${FUZZ_JOBS:-$(nproc)}
# Each process runs at most PER_PROCESS examples (the fuzzing process grows by roughly 100 KB per
# example, so long runs are split into fresh processes); JOBS lanes run side by side.
PER_PROCESS=${FUZZ_PER_PROCESS:-10000}
per=$(((EXAMPLES + JOBS - 1) / JOBS))
seed=${FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
logs=$ROOT/target/fuzz-logs
rm -rf "$logs"
mkdir -p "$logs"
echo "fuzz: $EXAMPLES examples in $JOBS lanes of processes of at most $PER_PROCESS, seed $seed (FUZZ_SEED=$seed repeats this run)"
lane() { # lane number
  local j=$1 left=$per k=0 n
  while [ "$left" -gt 0 ]; do
    n=$((left < PER_PROCESS ? left : PER_PROCESS))
    FUZZ_EXAMPLES=$n FUZZ_SEED=$((seed + 1000 * j + k)) "$venv/bin/python" -m pytest -q -s -p no:cacheprovider \
      tests/fuzz/test_differential.py >"$logs/job$j-$k.log" 2>&1 || return 1
    left=$((left - n))
    k=$((k + 1))
  done
}
pids=()
for ((j = 0; j < JOBS; j++)); do
  lane "$j" &
  pids+=($!)
done
failed=0
for ((j = 0; j < JOBS; j++)); do
  if ! wait "${pids[$j]}"; then
    failed=1
    echo "--- fuzz lane $j failed:"
    tail -n 60 "$(ls -t "$logs"/job"$j"-*.log | head -n 1)"
  fi
done
examples=0
diverged=0
for log in "$logs"/job*.log; do
  line=$(grep -E '^fuzz: [0-9]+ examples, [0-9]+ diverged$' "$log" | tail -n 1 || true)
  if [ -z "$line" ]; then
    failed=1
    continue
  fi
  n=${line#fuzz: }
  examples=$((examples + ${n%% examples*}))
  d=${line#*examples, }
  diverged=$((diverged + ${d%% diverged}))
done
echo "fuzz: $examples examples, $diverged diverged"
if [ "$failed" -ne 0 ] || [ "$diverged" -ne 0 ] || [ "$examples" -lt "$EXAMPLES" ]; then
  echo "ci/fuzz.sh: FAILED (logs in $logs)" >&2
  exit 1
fi
