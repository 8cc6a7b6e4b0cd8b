"""Copying (shared-stack) mode: ``greenlet(run, parent, copying=True)``.

A copying greenlet runs on a C stack shared with the thread's other copying greenlets; the used
part is saved to the heap while another one occupies it. Everything a greenlet does must work
the same: values, exceptions, deep recursion, frames, kill/throw, garbage collection.
"""

import gc
import sys

import pytest

import uthread
from uthread import GreenletExit, getcurrent, greenlet


def test_copying_keyword_is_keyword_only_and_checked():
    g = greenlet(lambda: 1, None, copying=True)
    assert g.switch() == 1
    with pytest.raises(TypeError):
        greenlet(lambda: 1, None, True)  # not positional: greenlet's signature is unchanged
    g = greenlet(copying=None)  # None: the default mode
    g.run = lambda: 2
    assert g.switch() == 2


def test_values_and_locals_survive_many_switches():
    def counter(start):
        total = start
        while True:
            step = getcurrent().parent.switch(total)
            if step is None:
                return total
            total += step

    gs = [greenlet(counter, copying=True) for _ in range(20)]
    for i, g in enumerate(gs):
        assert g.switch(i) == i
    for rnd in range(1, 6):
        for i, g in enumerate(gs):
            assert g.switch(rnd) == i + rnd * (rnd + 1) // 2
    for i, g in enumerate(gs):
        assert g.switch(None) == i + 15
        assert g.dead


def recurse(n, payload, peer):
    """Recurses n Python levels (each level a C-level eval too), switches at the bottom."""
    local = [payload] * 8
    if n == 0:
        got = peer.switch(payload)
    else:
        got = recurse(n - 1, payload, peer)
    assert local == [payload] * 8
    return got


def test_deep_copying_greenlets_switch_to_each_other():
    # Each goes deep in turn while the other is shallow: both directions of the overlap rule.
    results = []

    def a_body():
        x = 0
        for rnd in range(6):
            if rnd % 2 == 0:
                x = recurse(150, x + 1, b)
            else:
                x = b.switch(x + 1)
        results.append(("a", x))
        return x

    def b_body(x):
        for rnd in range(6):
            if rnd % 2 == 1:
                x = recurse(120, x + 1, a)
            else:
                x = a.switch(x + 1)
        results.append(("b", x))
        return x

    a = greenlet(a_body, copying=True)
    b = greenlet(b_body, copying=True)
    final = a.switch()
    assert final == 12
    assert results == [("a", 12)]
    assert not b.dead
    b.throw(GreenletExit)
    assert b.dead


def test_exceptions_and_throw_cross_copying_greenlets():
    def raiser():
        getcurrent().parent.switch("ready")
        raise ValueError("from copying greenlet")

    g = greenlet(raiser, copying=True)
    assert g.switch() == "ready"
    with pytest.raises(ValueError, match="from copying greenlet"):
        g.switch()

    def catcher():
        try:
            getcurrent().parent.switch("waiting")
        except KeyError as e:
            return ("caught", e.args[0], sys.exc_info()[0] is KeyError)
        return None

    g = greenlet(catcher, copying=True)
    other = greenlet(lambda: getcurrent().parent.switch("other occupies"), copying=True)
    assert g.switch() == "waiting"
    assert other.switch() == "other occupies"  # g is saved to the heap now
    assert g.throw(KeyError, "k") == ("caught", "k", True)


def test_gr_frame_of_a_saved_copying_greenlet():
    def inner():
        getcurrent().parent.switch()

    def outer():
        inner()
        return "done"

    g = greenlet(outer, copying=True)
    g.switch()
    h = greenlet(lambda: getcurrent().parent.switch(), copying=True)
    h.switch()  # g is saved to the heap now
    frame = g.gr_frame
    assert frame.f_code.co_name == "inner"
    assert frame.f_back.f_code.co_name == "outer"
    assert frame.f_back.f_back is None
    assert g.switch() == "done"
    h.switch()


def test_garbage_collected_copying_greenlets_are_unwound():
    unwound = []

    def body(i):
        try:
            getcurrent().parent.switch(i)
        except GreenletExit:
            unwound.append(i)
            raise

    gs = [greenlet(body, copying=True) for _ in range(50)]
    for i, g in enumerate(gs):
        assert g.switch(i) == i
    del g
    gs.clear()
    gc.collect()
    assert sorted(unwound) == list(range(50))


def test_mixing_copying_and_own_stack_greenlets():
    def own_body():
        c = greenlet(lambda x: getcurrent().parent.switch(x * 2) + 1, copying=True)
        first = c.switch(5)  # 10: c is suspended, its parent is us
        return first, c.switch(100)  # 101: c finished into us

    own = greenlet(own_body, copying=False)
    assert own.switch() == (10, 101)

    def copying_body():
        o = greenlet(lambda: getcurrent().parent.switch("own") + "!")
        return o.switch(), o.switch("x")

    assert greenlet(copying_body, copying=True).switch() == ("own", "x!")


def test_many_copying_greenlets_use_little_stack():
    n = 2000
    gs = [greenlet(lambda: getcurrent().parent.switch() or 1, copying=True) for _ in range(n)]
    for g in gs:
        g.switch()
    saved = [g._stack_saved for g in gs]
    assert all(0 < s < 64 * 1024 for s in saved), (min(saved), max(saved))
    for g in gs:
        assert g.switch() == 1


def test_copying_greenlets_in_threads():
    import threading

    out = []

    def worker(k):
        def body(x):
            y = getcurrent().parent.switch(x + k)
            return y * 2

        gs = [greenlet(body, copying=True) for _ in range(100)]
        firsts = [g.switch(i) for i, g in enumerate(gs)]
        seconds = [g.switch(i) for i, g in enumerate(gs)]
        out.append((firsts == [i + k for i in range(100)], seconds == [2 * i for i in range(100)]))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert out == [(True, True)] * 4


def test_module_still_offers_greenlet_signature():
    # greenlet-compatible calls keep working unchanged.
    g = uthread.greenlet(run=lambda: "ok", parent=getcurrent())
    assert g.switch() == "ok"


def test_scale_script_with_100k_uthreads():
    """tests/scale/scale.py (1,000,000 in `make bench`) at 100,000: values right in both modes,
    and a suspended copying uthread costs less than one with a stack of its own."""
    import json
    import os
    import subprocess

    script = os.path.join(os.path.dirname(__file__), "..", "scale", "scale.py")
    r = subprocess.run(
        [sys.executable, script, "--count", "100000", "--impl", "uthread,uthread-copying", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = {row["impl"]: row for row in map(json.loads, r.stdout.split("\n")[:-1])}
    assert rows["uthread"]["errors"] == 0 and rows["uthread-copying"]["errors"] == 0
    assert rows["uthread-copying"]["bytes_per_uthread"] < rows["uthread"]["bytes_per_uthread"]


def test_frames_of_a_saved_copying_greenlet_through_c_calls():
    """On 3.12+ every eval entered from C has an entry frame on the C stack; a saved copying
    greenlet's chain must not lead into it (another greenlet's frames are at those addresses)."""
    main = getcurrent()

    def deep(n):
        if n == 0:
            return main.switch()
        return list(map(deep, [n - 1]))[0]  # each level enters the eval loop from C

    def flat(n):
        pad = [0] * 100
        return main.switch() if n == 0 else flat(n - 1) or pad[0]

    for k in range(3):
        g = greenlet(lambda: deep(6), copying=True)
        g.switch()
        h = greenlet(lambda: sorted([3, 2, 1], key=lambda v: flat(30 + k) if v == 2 else v), copying=True)
        h.switch()  # occupies the shared stack with a different C stack layout
        names = []
        f = g.gr_frame
        while f is not None:
            names.append(f.f_code.co_name)
            f = f.f_back
        assert names == ["deep"] * 7 + ["<lambda>"]
        assert g.switch(7) == 7  # the links are back: the chain unwinds normally
        h.switch(0)
