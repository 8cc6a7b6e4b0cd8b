"""greenlet's optional cleanup: when an exited thread's greenlets are released, a main greenlet
that only a frame which can never run again refers to (the `getcurrent().parent.switch()` of a
greenlet of that thread that was still suspended, dropped by another thread before it exited) is
freed; `enable_optional_cleanup(False)`
turns it off, and `get_clocks_used_doing_optional_cleanup()` reports its cost (None while off).
Run in fresh interpreters: a main greenlet left behind on purpose stays for the process's life."""

import subprocess
import sys

import uthread

SCENARIO = r"""
import gc, sys, threading, time, weakref
import uthread
from uthread import getcurrent, greenlet

uthread.enable_optional_cleanup(ENABLED)
keep, mains = [], []
ready, go = threading.Event(), threading.Event()

def body():
    getcurrent().parent.switch()   # suspended here for good; this frame refers to the main

def thread_main():
    g = greenlet(body)
    g.switch()
    keep.append(g)
    mains.append(weakref.ref(getcurrent()))
    del g
    ready.set()
    go.wait(10)   # then exits without calling the greenlet API again

before = uthread.get_total_main_greenlets()
t = threading.Thread(target=thread_main)
t.start()
ready.wait(10)
keep.clear()   # dropped on another thread: handed to its thread, released when it exits
go.set()
t.join()
del t
deadline = time.monotonic() + 10
while (uthread.get_pending_cleanup_count() or uthread.get_total_main_greenlets() > before) \
        and time.monotonic() < deadline:
    time.sleep(0.01)
gc.collect()
print(uthread.get_total_main_greenlets() - before, mains[0]() is None,
      uthread.get_clocks_used_doing_optional_cleanup())
"""


def run(enabled):
    code = SCENARIO.replace("ENABLED", repr(enabled))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    extra, freed, clocks = p.stdout.split()
    return int(extra), freed == "True", clocks


def test_main_greenlet_of_exited_thread_is_freed():
    extra, freed, clocks = run(True)
    assert (extra, freed) == (0, True)
    assert int(clocks) >= 0


def test_disabled_cleanup_leaves_it():
    extra, freed, clocks = run(False)
    assert (extra, freed) == (1, False)
    assert clocks == "None"


def test_enable_keeps_the_count_and_disable_reports_none():
    uthread.enable_optional_cleanup(True)
    used = uthread.get_clocks_used_doing_optional_cleanup()
    assert isinstance(used, int) and used >= 0
    uthread.enable_optional_cleanup(True)
    assert uthread.get_clocks_used_doing_optional_cleanup() == used
    try:
        uthread.enable_optional_cleanup(False)
        assert uthread.get_clocks_used_doing_optional_cleanup() is None
    finally:
        uthread.enable_optional_cleanup(True)
    assert uthread.get_clocks_used_doing_optional_cleanup() == 0
    assert uthread.CLOCKS_PER_SEC == 1_000_000
