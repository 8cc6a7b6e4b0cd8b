#!/usr/bin/env bash
# gevent workloads (bench/python/gevent_bench.py) on uthread's drop-in greenlet next to the real
# greenlet 3.5.6, in the same run: two venvs holding gevent's published wheel (pinned in
# ci/pins.txt), one with our uthread + drop-in greenlet wheels and one with greenlet from PyPI.
# Rounds alternate between the two venvs; the JSON file gets one line per workload per round.
#
# Usage: bench/python/gevent.sh --json FILE [--rounds R] [--iters N]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. ci/lib/python.sh
json="" rounds=5 iters=20000
while [ $# -gt 0 ]; do
  case $1 in
    --json) json=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --iters) iters=$2; shift ;;
    --quick) rounds=2; iters=2000 ;;
    *) echo "usage: bench/python/gevent.sh --json FILE [--rounds R] [--iters N] [--quick]" >&2; exit 2 ;;
  esac
  shift
done
[ -n "$json" ] || { echo "bench/python/gevent.sh: --json FILE is required" >&2; exit 2; }
: >"$json"
py=$(default_python)
minor=$(python_minor "$py")
build_wheels "$py" "$ROOT/target/wheels-$minor-gevent-bench"
venv_for gevent-ours "$py"
ours=$VENV
# As ci/gevent.sh: our drop-in satisfies gevent's greenlet requirement in the same resolution.
pip_pins "$ours" gevent zope.event zope.interface -- --only-binary gevent "$WHEELS"/uthread-*.whl "$WHEELS"/greenlet-*.whl
install_wheels "$ours" uthread greenlet
venv_for gevent-peer "$py"
peer=$VENV
pip_pins "$peer" gevent greenlet zope.event zope.interface -- --only-binary gevent,greenlet
for r in $(seq "$rounds"); do
  echo "-- round $r of $rounds"
  "$ours/bin/python" bench/python/gevent_bench.py --iters "$iters" --json "$json"
  "$peer/bin/python" bench/python/gevent_bench.py --iters "$iters" --json "$json"
done
