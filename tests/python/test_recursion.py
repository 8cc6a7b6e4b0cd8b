"""Deep recursion inside a greenlet ends in a clean RecursionError, never a crash; the recursion
depth is per greenlet."""

import subprocess
import sys
import textwrap

import pytest

import uthread
from uthread import getcurrent, greenlet


def recurse(n):
    return recurse(n + 1)


def test_python_recursion_error_in_greenlet():
    with pytest.raises(RecursionError):
        greenlet(recurse).switch(0)


def test_recursion_error_caught_inside_greenlet_then_continues():
    def body():
        try:
            recurse(0)
        except RecursionError:
            pass
        return "survived"

    assert greenlet(body).switch() == "survived"


def test_recursion_through_c_calls():
    # Python -> C -> Python recursion uses the C stack for real.
    class Deep:
        def __repr__(self):
            return repr(Deep())

    def body():
        try:
            repr(Deep())
        except RecursionError:
            return "clean"

    assert greenlet(body).switch() == "clean"


def test_deep_but_allowed_recursion_works():
    limit = sys.getrecursionlimit()

    def depth(n):
        return n if n == 0 else 1 + depth(n - 1)

    assert greenlet(depth).switch(limit - 100) == limit - 100


def test_recursion_depth_is_per_greenlet():
    limit = sys.getrecursionlimit()

    def nest(n, at_bottom):
        if n == 0:
            return at_bottom()
        return nest(n - 1, at_bottom)

    # Suspend a greenlet deep in recursion, then recurse deeply in another one.
    def deep_then_wait():
        return nest(limit - 200, lambda: getcurrent().parent.switch("deep"))

    g = greenlet(deep_then_wait)
    assert g.switch() == "deep"
    assert greenlet(nest).switch(limit - 200, lambda: "other deep too") == "other deep too"
    g.switch()


def test_greenlets_started_deep_in_recursion_get_full_budget():
    limit = sys.getrecursionlimit()

    def nest(n):
        if n == 0:
            return greenlet(lambda: nest2(limit - 200)).switch()
        return nest(n - 1)

    def nest2(n):
        return 0 if n == 0 else nest2(n - 1)

    assert nest(limit - 200) == 0


def test_stack_size_setting():
    old = uthread.stack_size()
    assert old == uthread.DEFAULT_STACK_SIZE == 8 * 1024 * 1024
    try:
        assert uthread.stack_size(1024 * 1024) == old
        assert uthread.stack_size() == 1024 * 1024
        assert greenlet(lambda: "small stack").switch() == "small stack"
        assert uthread.stack_size(0) == 1024 * 1024
        assert uthread.stack_size() == uthread.DEFAULT_STACK_SIZE
        with pytest.raises(ValueError):
            uthread.stack_size(1)
        with pytest.raises(ValueError):
            uthread.stack_size(1 << 40)
        with pytest.raises((TypeError, OverflowError)):
            uthread.stack_size(-1)
    finally:
        uthread.stack_size(old)


def test_unbounded_recursion_with_high_limit_in_subprocess():
    # With the recursion limit raised far beyond what fits, a greenlet must still end with
    # RecursionError (3.12+ C recursion guard) or, at worst, the engine's named overflow abort,
    # never a silent segfault.
    code = textwrap.dedent(
        """
        import sys, uthread
        def f(n):
            return f(n + 1)
        sys.setrecursionlimit(20000)
        try:
            uthread.greenlet(f).switch(0)
        except RecursionError:
            print("RecursionError")
        """
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "RecursionError" in p.stdout
