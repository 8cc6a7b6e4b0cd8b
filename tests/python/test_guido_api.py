"""Guido van Rossum's uthread API at module level: new, current, switch, kill, runnable, the
resume rule and its errors."""

import gc
import threading
import weakref

import pytest

import uthread
from conftest import run_in_thread


def test_new_does_not_run_until_switched_to():
    log = []
    u = uthread.new(log.append, "ran")
    assert log == []
    assert u.runnable
    assert u.switch() is None  # append returns None: the result comes back to the switcher
    assert log == ["ran"]
    assert not u.runnable


def test_new_passes_args_and_kwargs():
    u = uthread.new(lambda a, b=0: (a, b), 1, b=2)
    assert u.switch("ignored") == (1, 2)


def test_new_refuses_a_non_callable():
    with pytest.raises(TypeError):
        uthread.new(42)


def test_current_is_stable_and_per_thread():
    main = uthread.current()
    assert uthread.current() is main
    assert isinstance(main, uthread.UThread)
    other = run_in_thread(uthread.current)
    assert other is not main


def test_current_inside_a_uthread_is_that_uthread():
    box = []
    u = uthread.new(lambda: box.append(uthread.current()))
    u.switch()
    assert box == [u]


def test_switch_to_current_returns_the_value():
    assert uthread.current().switch("v") == "v"
    assert uthread.current().switch() is None


def test_values_travel_both_ways():
    main = uthread.current()

    def echo():
        v = None
        while True:
            v = main.switch(v if v is None else v * 2)

    u = uthread.new(echo)
    assert u.switch() is None  # started: switched back with None
    assert u.switch(3) == 6
    assert u.switch(5) == 10
    assert u.switch() is None  # switch() carries None, not greenlet's ()
    u.kill()


def test_return_resumes_the_most_recent_switcher_not_the_creator():
    main = uthread.current()
    log = []

    def child():
        log.append("child")
        main.switch("paused")  # whoever resumes us next gets our result
        return "child result"

    c = uthread.new(child)
    assert c.switch() == "paused"  # main started c

    def r_body():
        log.append(("r got", c.switch()))  # r is now c's most recent switcher
        return "r done"

    assert uthread.new(r_body).switch() == "r done"
    assert log == ["child", ("r got", "child result")]


def test_resume_rule_walks_the_chain_past_dead_resumers():
    """c's resumer b has died; b's resumer a is still waiting: c's result goes to a."""
    main = uthread.current()

    def a_body():
        b.switch()  # b.res = a; returns when main switches back into a
        b.kill()  # b.res = a again; b dies, its kill returns here
        got = main.switch("a waiting")  # resumed by the resume rule, with c's result
        return ("a got", got)

    def b_body():
        c.switch()  # c.res = b
        return "never"

    def c_body():
        main.switch("c paused")
        return "c result"

    a, b, c = uthread.new(a_body), uthread.new(b_body), uthread.new(c_body)
    assert a.switch() == "c paused"  # main -> a -> b -> c -> main
    assert a.switch() == "a waiting"  # a kills b and pauses
    assert not b.runnable and a.runnable and c.runnable
    # Resume c without recording a resumer (greenlet's own switch): when it returns, its
    # resumer b is dead, so b's resumer a gets the result.
    assert uthread.greenlet.switch(c) == ("a got", "c result")
    assert not a.runnable and not c.runnable


def test_resume_rule_loop_falls_back_to_main():
    """c kills its own resumer b (so b's resumer is c): the chain loops and main gets it."""

    def b_body():
        c.switch()

    def c_body():
        b.kill()
        return "c result"

    b, c = uthread.new(b_body), uthread.new(c_body)

    def a_body():
        b.switch()
        return "a: not reached before c's result"

    a = uthread.new(a_body)
    assert a.switch() == "c result"
    assert a.runnable  # still waiting in b.switch(); b is dead


def test_exception_propagates_by_the_resume_rule():
    def boom():
        raise KeyError("x")

    u = uthread.new(boom)

    def middle():
        try:
            u.switch()
        except KeyError as e:
            return "caught %s" % e

    assert uthread.new(middle).switch() == "caught 'x'"


def test_exception_reaches_main_if_nothing_else():
    with pytest.raises(ZeroDivisionError):
        uthread.new(lambda: 1 / 0).switch()


def test_switch_to_finished_raises_error():
    u = uthread.new(lambda: None)
    u.switch()
    assert not u.runnable
    with pytest.raises(uthread.error):
        u.switch()
    with pytest.raises(uthread.error):
        u.kill()


def test_kill_raises_greenlet_exit_in_pending_switch():
    main = uthread.current()
    seen = []

    def body():
        try:
            main.switch()
        except uthread.GreenletExit as e:
            seen.append(type(e))
            raise

    u = uthread.new(body)
    u.switch()
    assert u.kill() is None
    assert seen == [uthread.GreenletExit]
    assert not u.runnable


def test_kill_with_custom_exception_runs_until_it_switches_away():
    main = uthread.current()

    class Stop(Exception):
        pass

    def body():
        msg = "waiting"
        while True:
            try:
                main.switch(msg)
            except Stop:
                msg = "caught Stop"  # refuses to die: switches away again

    u = uthread.new(body)
    assert u.switch() == "waiting"
    assert u.kill(Stop) == "caught Stop"
    assert u.runnable
    assert u.kill(Stop("again")) == "caught Stop"
    u.kill()  # GreenletExit is not caught by `except Stop`
    assert not u.runnable


def test_unhandled_kill_exception_propagates_to_killer():
    main = uthread.current()
    u = uthread.new(lambda: main.switch())
    u.switch()
    with pytest.raises(ValueError):
        u.kill(ValueError)
    assert not u.runnable


def test_kill_unstarted_ends_it_unrun():
    ran = []
    u = uthread.new(ran.append, 1)
    assert u.kill(ValueError) is None
    assert ran == []
    assert not u.runnable


def test_kill_current_raises_here():
    def body():
        try:
            uthread.current().kill(KeyError)
        except KeyError:
            return "raised here"

    assert uthread.new(body).switch() == "raised here"


def test_switch_to_other_threads_uthread_raises_error():
    main = uthread.current()
    made = run_in_thread(lambda: uthread.new(lambda: None))
    with pytest.raises(uthread.error):
        made.switch()
    with pytest.raises(uthread.error):
        run_in_thread(lambda: main.switch())


def test_other_thread_main_uthread_switch_is_refused():
    ready = threading.Event()
    done = threading.Event()
    box = {}

    def body():
        box["main"] = uthread.current()
        ready.set()
        done.wait(10)

    t = threading.Thread(target=body)
    t.start()
    ready.wait(10)
    try:
        with pytest.raises(uthread.error):
            box["main"].switch()
    finally:
        done.set()
        t.join()


def test_abandoned_pair_is_collected():
    """Two suspended uthreads that switched into each other hold each other only weakly."""
    main = uthread.current()
    cleaned = []

    def body(tag):
        try:
            main.switch()
        finally:
            cleaned.append(tag)

    a = uthread.new(body, "a")
    b = uthread.new(body, "b")
    a.switch()
    b.switch()
    ref = weakref.ref(a)
    del a, b
    gc.collect()
    assert ref() is None
    assert sorted(cleaned) == ["a", "b"]


def test_many_uthreads_round_robin():
    main = uthread.current()
    total = []

    def worker(i):
        for step in range(3):
            total.append((i, step))
            main.switch()

    us = [uthread.new(worker, i) for i in range(100)]
    while any(u.runnable for u in us):
        for u in us:
            if u.runnable:
                u.switch()
    assert len(total) == 300


def test_repr_mentions_state():
    u = uthread.new(lambda: None)
    assert "runnable" in repr(u)
    u.switch()
    assert "finished" in repr(u)
