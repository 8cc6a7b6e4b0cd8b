"""get_tstate_trash_delete_nesting(): the trash-can nesting depth is saved per uthread (3.10-3.12)."""

import sys

import pytest

import uthread
from uthread import _uthread

before_313 = pytest.mark.skipif(sys.version_info >= (3, 13), reason="3.13 has no trash-can nesting counter")


@before_313
def test_zero_outside_deallocation():
    assert _uthread.get_tstate_trash_delete_nesting() == 0


@before_313
def test_each_uthread_has_its_own_nesting():
    seen = {}

    def in_child():
        seen["child"] = _uthread.get_tstate_trash_delete_nesting()
        uthread.getcurrent().parent.switch()
        seen["child again"] = _uthread.get_tstate_trash_delete_nesting()

    child = uthread.greenlet(in_child)

    class Probe:
        def __del__(self):
            seen["in dealloc"] = _uthread.get_tstate_trash_delete_nesting()
            child.switch()  # runs with a fresh uthread state, comes back
            seen["after switch"] = _uthread.get_tstate_trash_delete_nesting()

    # a chain of tuples deeper than the trash can's unwind level, with the probe at the bottom
    t = (Probe(),)
    for _ in range(200):
        t = (t,)
    del t

    assert seen["in dealloc"] > 0
    assert seen["child"] == 0
    assert seen["after switch"] == seen["in dealloc"]
    assert _uthread.get_tstate_trash_delete_nesting() == 0
    child.switch()
    assert child.dead and seen["child again"] == 0


@pytest.mark.skipif(sys.version_info < (3, 13), reason="the counter exists before 3.13")
def test_absent_on_313_like_greenlet():
    assert not hasattr(_uthread, "get_tstate_trash_delete_nesting")
