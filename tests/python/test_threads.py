"""Threads: one main greenlet per thread, no switching across threads, and the greenlets of an
exited thread released without running (pending cleanup) and without crashing."""

import gc
import threading
import weakref

import pytest

import uthread
from conftest import run_in_thread, wait_for_cleanup
from uthread import getcurrent, greenlet


def test_each_thread_has_its_own_main():
    main = getcurrent()
    other = run_in_thread(getcurrent)
    assert other is not main
    assert other.parent is None
    assert wait_for_cleanup(other) == 0
    assert other.dead and "(thread exited)" in repr(other)


def test_greenlets_work_in_many_threads():
    def work():
        log = []

        def body():
            log.append(1)
            getcurrent().parent.switch()
            log.append(3)

        g = greenlet(body)
        g.switch()
        log.append(2)
        g.switch()
        return log

    results = []
    threads = [threading.Thread(target=lambda: results.append(work())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [[1, 2, 3]] * 8


def test_switch_to_greenlet_of_another_thread_raises_error():
    ready, done = threading.Event(), threading.Event()
    box = {}

    def body():
        box["new"] = greenlet(lambda: None)
        s = greenlet(lambda: getcurrent().parent.switch())
        s.switch()
        box["suspended"] = s
        box["main"] = getcurrent()
        ready.set()
        done.wait(10)

    t = threading.Thread(target=body)
    t.start()
    ready.wait(10)
    try:
        for name in ("new", "suspended", "main"):
            with pytest.raises(uthread.error, match="Cannot switch to a different thread"):
                box[name].switch()
            with pytest.raises(uthread.error):
                box[name].throw(KeyError)
        assert issubclass(uthread.error, Exception)
    finally:
        done.set()
        t.join(10)
        box.clear()


def test_running_greenlet_of_another_thread_context_is_refused():
    ready, done = threading.Event(), threading.Event()
    box = {}

    def body():
        box["main"] = getcurrent()
        ready.set()
        done.wait(10)

    t = threading.Thread(target=body)
    t.start()
    ready.wait(10)
    try:
        with pytest.raises(ValueError, match="running in a different thread"):
            box["main"].gr_context
        with pytest.raises(ValueError, match="running in a different thread"):
            box["main"].gr_context = None
        assert box["main"].gr_frame is None
    finally:
        done.set()
        t.join(10)
        box.clear()


def test_greenlets_of_exited_thread_are_dead_and_unswitchable():
    def body():
        s = greenlet(lambda: getcurrent().parent.switch())
        s.switch()
        return s, getcurrent()

    s, m = run_in_thread(body)
    wait_for_cleanup(m)
    assert uthread.get_pending_cleanup_count() == 0
    with pytest.raises(uthread.error, match="which happens to have exited"):
        s.switch()
    with pytest.raises(uthread.error):
        s.throw(KeyError)
    assert s.dead and m.dead
    assert "thread exited" in repr(s)
    assert s.gr_frame is not None or s.gr_frame is None  # readable, whatever remains


def test_suspended_greenlet_of_exited_thread_is_released_without_running():
    log = []

    def body():
        def child():
            try:
                getcurrent().parent.switch()
            finally:
                log.append("ran")  # must never run: its thread is gone

        c = greenlet(child)
        c.switch()
        return weakref.ref(c), c, getcurrent()

    ref, c, m = run_in_thread(body)
    wait_for_cleanup(m)
    del m
    del c
    gc.collect()
    assert ref() is None
    assert log == []


def test_pending_cleanup_count_and_main_greenlet_count():
    from conftest import wait_until

    before = uthread.get_total_main_greenlets()
    run_in_thread(lambda: greenlet(lambda: None).switch())
    assert wait_for_cleanup() == 0
    assert wait_until(lambda: uthread.get_total_main_greenlets() == before)


def test_greenlet_dropped_in_another_thread_is_killed_in_its_own():
    log = []
    handed_over, released, finish = threading.Event(), threading.Event(), threading.Event()
    box = {}

    def owner():
        def child():
            try:
                getcurrent().parent.switch()
            except uthread.GreenletExit:
                log.append(("killed in", threading.get_ident()))

        c = greenlet(child)
        c.switch()
        box["c"] = c
        del c
        handed_over.set()
        released.wait(10)
        greenlet()  # entering the greenlet API runs the deferred kill here
        finish.wait(10)
        return threading.get_ident()

    result = {}
    t = threading.Thread(target=lambda: result.setdefault("tid", owner()))
    t.start()
    handed_over.wait(10)
    del box["c"]  # the last reference goes in this thread
    assert log == []  # cannot run here: deferred to its thread
    released.set()
    finish.set()
    t.join(10)
    assert log == [("killed in", result["tid"])]


def test_many_threads_with_suspended_greenlets():
    def body():
        gs = []
        for _ in range(50):
            g = greenlet(lambda: getcurrent().parent.switch())
            g.switch()
            gs.append(g)
        return len(gs)  # the suspended greenlets die with the thread's frame (killed in thread)

    threads = [threading.Thread(target=body) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert wait_for_cleanup() == 0


def test_dead_greenlet_of_other_thread_freed_here():
    g = run_in_thread(lambda: greenlet(lambda: None))
    ref = weakref.ref(g)
    del g
    gc.collect()
    assert ref() is None
