"""Collection: a suspended greenlet whose last reference goes gets GreenletExit thrown in (with the
current greenlet as its parent for the occasion); one that refuses to die is resurrected or leaked
as greenlet does; unstarted and dead greenlets are ordinary collectable objects."""

import gc
import sys
import weakref

import pytest

from uthread import GreenletExit, getcurrent, greenlet


def suspended(body_log, catch=True):
    def body():
        try:
            getcurrent().parent.switch()
        except GreenletExit as e:
            body_log.append(("exit", str(e), getcurrent().parent))
            if not catch:
                raise
        finally:
            body_log.append("finally")

    g = greenlet(body)
    g.switch()
    return g


def test_last_reference_kills_suspended_greenlet():
    log = []
    g = suspended(log)
    del g
    assert log[0][0] == "exit"
    assert "all references have vanished" in log[0][1]
    assert log[0][2] is getcurrent()
    assert log[1] == "finally"


def test_kill_parent_is_the_current_greenlet_even_if_parent_differs():
    log = []
    hub = greenlet(lambda: None)

    def body():
        try:
            getcurrent().parent.switch()
        except GreenletExit:
            log.append(getcurrent().parent)

    outer_main = getcurrent()
    g = greenlet(body, parent=hub)
    g.switch()
    del g
    assert log == [outer_main]
    assert not hub  # the hub never ran


def test_kill_inside_another_greenlet_returns_there():
    log = []

    def owner():
        g = suspended(log)
        del g
        return "owner continues"

    assert greenlet(owner).switch() == "owner continues"
    assert log[-1] == "finally"


def test_unstarted_and_dead_greenlets_are_freed_quietly():
    ran = []
    g = greenlet(lambda: ran.append(1))
    ref = weakref.ref(g)
    del g
    assert ref() is None and ran == []
    g = greenlet(lambda: None)
    g.switch()
    ref = weakref.ref(g)
    del g
    assert ref() is None


def test_exception_other_than_exit_is_unraisable(monkeypatch):
    events = []
    monkeypatch.setattr(sys, "unraisablehook", events.append)

    def body():
        try:
            getcurrent().parent.switch()
        except GreenletExit:
            raise KeyError("while dying") from None

    g = greenlet(body)
    g.switch()
    del g
    assert len(events) == 1
    assert isinstance(events[0].exc_value, KeyError)


def test_resurrection_keeps_object_alive_and_usable():
    saved = []

    def body():
        try:
            getcurrent().parent.switch()
        except GreenletExit:
            saved.append(getcurrent())  # resurrects itself
            getcurrent().parent.switch("resurrected and suspended")
        return "finished later"

    g = greenlet(body)
    g.switch()
    del g
    assert len(saved) == 1
    g = saved.pop()
    assert g and not g.dead
    assert g.switch() == "finished later"
    assert g.dead


def test_refusing_to_die_is_reported_and_leaked(capfd):
    def body():
        while True:
            try:
                getcurrent().parent.switch()
            except GreenletExit:
                pass  # refuses to die: switches away again

    g = greenlet(body)
    g.switch()
    ref = weakref.ref(g)
    del g
    err = capfd.readouterr().err
    assert "GreenletExit did not kill" in err
    assert ref() is not None  # leaked on purpose, as greenlet does
    leaked = ref()
    assert leaked and not leaked.dead


def test_pending_exception_of_deallocator_preserved():
    log = []
    try:
        raise KeyError("pending")
    except KeyError:
        g = suspended(log)
        del g
        assert sys.exc_info()[0] is KeyError
    assert log[-1] == "finally"


def test_cycle_through_dead_greenlet_is_collected():
    g = greenlet(lambda: None)
    g.switch()
    g.me = g
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None


def test_cycle_through_unstarted_greenlet_is_collected():
    class Holder(greenlet):
        pass

    g = Holder()
    g.me = g
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None
    assert not gc.garbage


def test_greenlet_returned_from_itself_is_collected():
    ref = weakref.ref(greenlet(getcurrent).switch())
    gc.collect()
    assert ref() is None


def test_suspended_greenlet_in_a_cycle_is_not_collected_by_gc():
    # As in greenlet: a suspended greenlet is never collected by the cyclic GC (its frames are
    # invisible to it, and killing it would run code in the middle of a collection). It dies
    # when the cycle is broken.
    log = []
    g = suspended(log)
    holder = [g]
    g.holder = holder
    ref = weakref.ref(g)
    del g, holder
    gc.collect()
    assert ref() is not None and log == []
    ref().holder = None
    assert ref() is None
    assert log[-1] == "finally"


def test_weakref_callback_on_kill():
    called = []
    log = []
    g = suspended(log)
    r = weakref.ref(g, lambda _: called.append(1))
    del g
    assert called == [1] and r() is None


def test_dealloc_of_greenlet_with_only_current_reference():
    seen = []

    def worker():
        value = getcurrent().parent.switch()
        del holder[0]  # now only the running greenlet itself refers to it
        try:
            getcurrent().parent.switch(value)
        finally:
            seen.append(getcurrent())

    holder = [greenlet(worker)]
    holder[0].switch()
    assert holder[0].switch(42) == 42
    assert seen and seen[0].dead


@pytest.mark.parametrize("n", [100])
def test_many_suspended_greenlets_collected(n):
    log = []
    gs = [suspended(log) for _ in range(n)]
    del gs
    assert log.count("finally") == n
