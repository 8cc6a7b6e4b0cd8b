"""The parent attribute: default, setting, cycles, wrong types, main greenlets, other threads."""

import threading

import pytest

from conftest import run_in_thread
from uthread import getcurrent, greenlet


def test_default_parent_is_creator():
    main = getcurrent()
    g = greenlet()
    assert g.parent is main

    def body():
        return greenlet().parent

    h = greenlet(body)
    assert h.switch() is h


def test_parent_none_in_constructor_means_current():
    assert greenlet(parent=None).parent is getcurrent()


def test_parent_in_constructor():
    p = greenlet()
    assert greenlet(parent=p).parent is p
    assert greenlet(None, p).parent is p


def test_main_greenlet_has_no_parent():
    main = getcurrent()
    assert main.parent is None
    with pytest.raises(AttributeError, match="cannot set the parent of a main greenlet"):
        main.parent = greenlet()


def test_set_parent():
    a, b = greenlet(), greenlet()
    b.parent = a
    assert b.parent is a


def test_cycle_refused():
    a = greenlet()
    b = greenlet(parent=a)
    c = greenlet(parent=b)
    with pytest.raises(ValueError, match="cyclic parent chain"):
        a.parent = c
    with pytest.raises(ValueError, match="cyclic parent chain"):
        a.parent = a
    assert a.parent is getcurrent()


def test_delete_refused():
    g = greenlet()
    with pytest.raises(AttributeError, match="can't delete"):
        del g.parent


@pytest.mark.parametrize("value", [None, 1, "x", object()])
def test_wrong_type_refused(value):
    g = greenlet()
    with pytest.raises(TypeError):
        g.parent = value


def test_wrong_type_in_constructor():
    with pytest.raises(TypeError):
        greenlet(parent=42)


def test_reparent_running_greenlet():
    main = getcurrent()
    other = greenlet(lambda x: ("other got", x))

    def body():
        getcurrent().parent = other
        return "body result"

    assert greenlet(body).switch() == ("other got", "body result")
    assert getcurrent() is main


def test_parent_on_another_thread_refused_for_started_greenlet():
    foreign = run_in_thread(lambda: getcurrent())

    def body():
        getcurrent().parent.switch()

    g = greenlet(body)
    g.switch()
    with pytest.raises(ValueError):
        g.parent = foreign


def test_parent_of_another_live_thread_refused():
    ready, done = threading.Event(), threading.Event()
    box = {}

    def thread_body():
        box["g"] = greenlet(lambda: None)
        box["main"] = getcurrent()
        ready.set()
        done.wait(10)

    t = threading.Thread(target=thread_body)
    t.start()
    ready.wait(10)
    try:
        g = greenlet(lambda: getcurrent().parent.switch())
        g.switch()
        with pytest.raises(ValueError, match="parent cannot be on a different thread"):
            g.parent = box["main"]
        # An unstarted greenlet may move to another thread's lineage (it has no thread yet).
        h = greenlet()
        h.parent = box["main"]
        assert h.parent is box["main"]
    finally:
        done.set()
        t.join(10)
        box.clear()


def test_unstarted_greenlet_with_foreign_parent_cannot_be_switched_here():
    import uthread

    foreign_main = run_in_thread(getcurrent)
    h = greenlet(lambda: None)
    h.parent = foreign_main
    with pytest.raises(uthread.error):
        h.switch()
