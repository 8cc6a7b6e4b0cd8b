"""settrace()/gettrace(): ('switch' | 'throw', (origin, target)) events."""

import sys

import pytest

import uthread
from uthread import getcurrent, greenlet


class Recorder:
    def __init__(self, fail=False):
        self.events = []
        self.fail = fail

    def __call__(self, event, args):
        self.events.append((event, args))
        if self.fail:
            raise RuntimeError("tracer failed")


def test_settrace_returns_previous_and_gettrace():
    assert uthread.gettrace() is None
    r1, r2 = Recorder(), Recorder()
    assert uthread.settrace(r1) is None
    assert uthread.gettrace() is r1
    assert uthread.settrace(r2) is r1
    assert uthread.settrace(None) is r2
    assert uthread.gettrace() is None


def test_switch_and_throw_events():
    main = getcurrent()
    r = Recorder()
    uthread.settrace(r)
    try:
        g1 = greenlet(lambda: None)
        g1.switch()
        g2 = greenlet(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            g2.switch()
    finally:
        uthread.settrace(None)
    assert r.events == [
        ("switch", (main, g1)),
        ("switch", (g1, main)),
        ("switch", (main, g2)),
        ("throw", (g2, main)),
    ]


def test_throw_event_for_throw_method():
    main = getcurrent()
    g = greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    r = Recorder()
    uthread.settrace(r)
    try:
        with pytest.raises(KeyError):
            g.throw(KeyError)
    finally:
        uthread.settrace(None)
    assert r.events == [("throw", (main, g)), ("throw", (g, main))]


def test_switch_to_self_is_traced():
    main = getcurrent()
    r = Recorder()
    uthread.settrace(r)
    try:
        main.switch(1)
    finally:
        uthread.settrace(None)
    assert r.events == [("switch", (main, main))]


def test_failing_tracer_is_removed_and_its_error_raised_in_target():
    main = getcurrent()
    seen = []

    def body():
        try:
            main.switch()
        except RuntimeError as e:
            seen.append(str(e))
            raise

    g = greenlet(body)
    g.switch()
    r = Recorder(fail=True)
    uthread.settrace(r)
    with pytest.raises(RuntimeError, match="tracer failed"):
        g.switch()
    assert uthread.gettrace() is None
    assert seen == ["tracer failed"]
    assert r.events == [("switch", (main, g))]


def test_tracer_is_per_thread():
    from conftest import run_in_thread

    r = Recorder()
    uthread.settrace(r)
    try:
        assert run_in_thread(uthread.gettrace) is None
        run_in_thread(lambda: greenlet(lambda: None).switch())
    finally:
        uthread.settrace(None)
    assert r.events == []


def test_python_profiler_sees_greenlet_frames():
    calls = []

    def profiler(frame, event, arg):
        if event == "call":
            calls.append(frame.f_code.co_name)

    def in_greenlet():
        return 1

    old = sys.getprofile()
    sys.setprofile(profiler)
    try:
        greenlet(in_greenlet).switch()
    finally:
        sys.setprofile(old)
    assert "in_greenlet" in calls


def test_sys_settrace_inside_greenlet_traces_lines():
    lines = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name == "traced":
            lines.append(event)
        return tracer

    def traced():
        x = 1
        getcurrent().parent.switch()
        return x + 1

    g = greenlet(traced)
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        g.switch()
        g.switch()
    finally:
        sys.settrace(old)
    assert "call" in lines and "line" in lines and "return" in lines
