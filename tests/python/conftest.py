"""Shared helpers for the uthread test suite (pytest, run by ci/python.sh on CPython 3.10-3.13)."""

import gc
import threading
import time

import pytest

import uthread


@pytest.fixture(autouse=True)
def _no_tracer_left_behind():
    """Every test starts and ends with no greenlet trace function on this thread."""
    uthread.settrace(None)
    yield
    uthread.settrace(None)


def wait_until(predicate, timeout=10.0):
    """Polls until predicate() is true (sleeping lets the interpreter run pending calls)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def wait_for_cleanup(*mains, timeout=10.0):
    """Waits until exited threads are fully released: their OS threads have run their exit
    hooks (each given main greenlet reports dead) and the pending call that releases their
    greenlets has run. Returns the pending cleanup count (0 on success)."""
    wait_until(lambda: all(m.dead for m in mains), timeout)
    wait_until(lambda: uthread.get_pending_cleanup_count() == 0 and threading.active_count() == 1, timeout)
    gc.collect()
    # An OS thread that just exited may queue its state only now.
    wait_until(lambda: uthread.get_pending_cleanup_count() == 0, timeout)
    return uthread.get_pending_cleanup_count()


def run_in_thread(fn, *args):
    """Runs fn(*args) in a new thread and returns its result (re-raising its exception)."""
    box = {}

    def body():
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - handed back to the caller
            box["error"] = e

    t = threading.Thread(target=body)
    t.start()
    t.join(30)
    assert not t.is_alive(), "thread did not finish"
    if "error" in box:
        raise box["error"]
    return box.get("value")
