#!/usr/bin/env bash
# gevent's published wheel, compiled modules and all, on uthread's drop-in greenlet
# (binary compatibility: greenlet.h and the _C_API capsule).
#
# For the default Python (PYTHON, else python3): builds the uthread wheel and the drop-in greenlet
# wheel (ci/python-wheel.sh), makes a fresh venv, installs them with gevent's manylinux wheel
# from PyPI (pinned; --only-binary, so gevent's Cython modules are the ones gevent published,
# compiled against greenlet 3's greenlet.h, not rebuilt against ours), checks that gevent runs
# compiled (no PURE_PYTHON) with those modules loaded and its Greenlet a C subtype of our type,
# then runs a chosen set of gevent's own test modules with gevent's test runner. The tests come
# from gevent's source distribution, downloaded at test time with `pip download` (hash-checked,
# cached in target/gevent/, never committed), and replace the installed gevent/tests.
#
# Usage: ci/gevent.sh [TEST_MODULE.py ...]     (default: the list below)
# Env:   PYTHON   the interpreter (default python3); GEVENT_WORK scratch directory (target/gevent)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. ci/lib/python.sh

GEVENT_VERSION=$(pin_version gevent)
# gevent's dependencies (ci/pins.txt; its wheel asks for greenlet>=3.2.2: ours is 3.5.6.postN).
DEPS=(zope.event zope.interface)
WORK=${GEVENT_WORK:-$ROOT/target/gevent}   # GEVENT_WORK: another scratch directory (parallel runs)

# gevent's compiled modules that use greenlet's C API (they import greenlet._C_API, and
# _gevent_cgreenlet subclasses the greenlet type in C); all must be loaded and compiled.
COMPILED=(gevent._gevent_cgreenlet gevent._gevent_c_greenlet_primitives gevent._gevent_c_hub_primitives
          gevent._gevent_c_waiter gevent._gevent_c_abstract_linkable gevent._gevent_clocal
          gevent._gevent_cqueue)

# gevent's test modules run here: greenlets, the hub, queues, events, locals, locks, pools,
# sockets and servers, threads, monkey patching. Left out: tests that need the network (the
# runner is given -u-network too), and test__subprocess.py, whose
# test_run_with_shell_timeout_and_capture_output fails on these machines with greenlet 3.5.6
# itself (a `sleep 3` child outlives its 0.1 s timeout: the sandbox, not the greenlet).
TESTS=(
  test__greenlet.py test__GreenletExit.py test__greenletset.py test__greenness.py
  test__real_greenlet.py test__exc_info.py test__contextvars.py test__systemerror.py test__destroy.py
  test__hub.py test__hub_join.py test__hub_join_timeout.py test__sleep0.py test__api.py
  test__api_timeout.py test__timeout.py test__joinall.py test__iwait.py test__order.py test___ident.py
  test__queue.py test__event.py test__local.py
  test__lock.py test__semaphore.py test__threading.py test__threading_2.py test__thread.py test__threadpool.py
  test__pool.py
  test__socket.py test__socketpair.py test__socket_close.py test__socket_timeout.py
  test__socket_send_memoryview.py test__select.py test__selectors.py test__server.py test__pywsgi.py
  test__example_echoserver.py
  test__monkey.py test__monkey_queue.py test__monkey_select.py test__monkey_selectors.py
  test__monkey_multiple_imports.py test__monkey_logging.py
  test__util.py test__refcount.py test__memleak.py test__all__.py
)
[ $# -eq 0 ] || TESTS=("$@")

py=$(default_python)
minor=$(python_minor "$py")
echo "=== gevent $GEVENT_VERSION (published wheel) on uthread's greenlet, CPython $minor ($py) ==="
start=$SECONDS

# --- gevent's sdist, for its tests (cached, checked against the pinned hash) ----------------------
fetch_sdist "$py" gevent "$WORK"
tests_src=$SDIST_DIR/src/gevent/tests
[ -f "$tests_src/known_failures.py" ] || { echo "ci/gevent.sh: no tests in $SDIST" >&2; exit 1; }

# --- the venv: our two wheels + gevent's published wheel ------------------------------------------
build_wheels "$py" "$WORK/wheels-$minor"
venv_at "$WORK/venv-$minor" "$py"
venv=$VENV
# One resolution: the greenlet requirement of gevent is met by our wheel, never by PyPI's greenlet.
pip_pins "$venv" gevent "${DEPS[@]}" -- --only-binary gevent "$WHEELS"/uthread-*.whl "$WHEELS"/greenlet-*.whl

unset PURE_PYTHON GEVENT_PURE_PYTHON
"$venv/bin/python" - "${COMPILED[@]}" <<'EOF'
import importlib, importlib.machinery, sys

import greenlet
assert getattr(greenlet, "__uthread__", None), "greenlet is not uthread's drop-in: %s" % greenlet.__file__
import gevent, gevent.greenlet, gevent.queue, gevent.local, gevent.event, gevent.lock, gevent.pool
import gevent.monkey, gevent.socket

for name in sys.argv[1:]:
    mod = importlib.import_module(name)
    path = getattr(mod, "__file__", "") or ""
    assert path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), "%s is not compiled: %s" % (name, path)
    assert name in sys.modules

from gevent._gevent_cgreenlet import Greenlet as CGreenlet
assert gevent.Greenlet is CGreenlet, gevent.Greenlet
assert issubclass(CGreenlet, greenlet.greenlet) and CGreenlet.__base__ is greenlet.greenlet
assert CGreenlet.__basicsize__ > greenlet.greenlet.__basicsize__ == 5 * 8
# The public names are the compiled classes.
assert gevent.queue.Queue is sys.modules["gevent._gevent_cqueue"].Queue
assert gevent.local.local is sys.modules["gevent._gevent_clocal"].local

def work(i):
    gevent.sleep(0.001 * (i % 3))
    return i * i

jobs = [gevent.spawn(work, i) for i in range(100)]
gevent.joinall(jobs, raise_error=True)
assert [j.value for j in jobs] == [i * i for i in range(100)]
assert type(jobs[0]) is CGreenlet
print("gevent %s compiled (%s loaded), Greenlet %s (basicsize %d) subclasses %s: ok"
      % (gevent.__version__, len(sys.argv) - 1, CGreenlet, CGreenlet.__basicsize__, greenlet.greenlet))
EOF

# --- gevent's own tests, from the sdist -----------------------------------------------------------
pkg=$("$venv/bin/python" -c 'import gevent, os; print(os.path.dirname(gevent.__file__))')
rm -rf "$pkg/tests"
cp -r "$tests_src" "$pkg/tests"
log=$WORK/gevent-tests-$minor.log
run_dir=$(mktemp -d)
set +e
# gevent's runner: each group of modules in a child process; --second-chance reruns a failed
# module once (gevent's answer to its timing-sensitive tests on a loaded machine).
(cd "$run_dir" && "$venv/bin/python" -m gevent.tests -u-network --second-chance -j 2 "${TESTS[@]}") 2>&1 |
  tee "$log"
status=${PIPESTATUS[0]}
set -e
rm -rf "$run_dir"
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^Ran [0-9]+ tests.* in [0-9]+ files' | tail -1)
echo
echo "=== gevent $GEVENT_VERSION on uthread: ${#TESTS[@]} test modules, $((SECONDS - start)) s ==="
echo "  ${summary:-no summary (see $log)}"
if [ "$status" -ne 0 ]; then
  echo "  FAILED (gevent test runner exit $status)"
  exit 1
fi
echo "  ok"
