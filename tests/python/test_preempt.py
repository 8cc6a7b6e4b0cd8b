"""Preemption: stackless.run(timeout=N ticks) and run(timeslice=seconds), the native hook
(sys.monitoring on 3.12+, a C trace function before), atomic sections, and no state left
behind. No test depends on timing: every loop here ends because preemption happens."""

import sys

import pytest

import uthread
import uthread.stackless as stackless
from conftest import run_in_thread

_uthread = uthread._uthread


def hook_installed():
    """Whether any interpreter hook of ours is installed for this thread / process."""
    if sys.version_info >= (3, 12):
        return any(sys.monitoring.get_tool(i) == "uthread preemption" for i in range(6))
    return sys.gettrace() is not None or _uthread._preempt_state()[0]


@pytest.fixture(autouse=True)
def _no_hook_left_behind():
    assert not hook_installed()
    yield
    assert _uthread._preempt_state()[0] is False
    assert not hook_installed()
    assert stackless.getruncount() == 1


def spin(box):
    while True:
        box[0] += 1


def test_timeout_interrupts_a_tasklet_that_never_yields_and_returns_it():
    box = [0]
    t = stackless.tasklet(spin)(box)
    got = stackless.run(timeout=1000)
    assert got is t
    assert t.alive and not t.scheduled and t.paused  # removed from the run queue
    # About 1000 ticks: one per loop iteration (plus a few for the scheduler's own code).
    assert 300 <= box[0] <= 1000
    before = box[0]
    t.insert()
    assert stackless.run(timeout=1000) is t  # continues where it was interrupted
    assert box[0] > before
    t.kill()
    assert not t.alive


def test_timeout_returns_none_when_everything_finishes():
    log = []

    def short(n):
        for i in range(n):
            log.append(i)
            stackless.schedule()

    stackless.tasklet(short)(3)
    stackless.tasklet(short)(2)
    assert stackless.run(timeout=10_000) is None
    assert sorted(log) == [0, 0, 1, 1, 2]


def test_interrupt_loop_as_in_stackless_docs():
    """The classic Stackless pattern: re-insert the interrupted tasklet and run again."""
    totals = {"a": 0, "b": 0}

    def worker(name, n):
        for _ in range(n):
            totals[name] += 1

    stackless.tasklet(worker)("a", 20_000)
    stackless.tasklet(worker)("b", 20_000)
    interruptions = 0
    while stackless.getruncount() > 1:
        t = stackless.run(timeout=500)
        if t is not None:
            interruptions += 1
            t.insert()
    assert totals == {"a": 20_000, "b": 20_000}
    assert interruptions >= 20  # 40,000 iterations, 500 ticks per slice


def test_atomic_sections_are_never_preempted():
    state = {"phase": "start", "in_atomic_iterations": 0}

    def body():
        with stackless.atomic():
            state["phase"] = "atomic"
            for _ in range(50_000):  # 100x the budget
                state["in_atomic_iterations"] += 1
            state["phase"] = "after"
        while True:
            state["phase"] = "after"

    t = stackless.tasklet(body)()
    got = stackless.run(timeout=500)
    assert got is t
    assert state["in_atomic_iterations"] == 50_000
    assert state["phase"] == "after"
    t.kill()


def test_set_atomic_blocks_preemption_too():
    done = []

    def body():
        old = stackless.getcurrent().set_atomic(True)
        for _ in range(20_000):
            pass
        done.append(True)
        stackless.getcurrent().set_atomic(old)

    stackless.tasklet(body)()
    assert stackless.run(timeout=100) is None
    assert done == [True]


def test_main_tasklet_is_never_preempted_and_channels_still_work():
    ch = stackless.channel()
    out = []

    def producer():
        i = 0
        while i < 2000:
            ch.send(i)
            i += 1

    def consumer():
        total = 0
        for _ in range(2000):
            total += ch.receive()
        out.append(total)

    stackless.tasklet(producer)()
    stackless.tasklet(consumer)()
    while stackless.getruncount() > 1:
        t = stackless.run(timeout=50)
        if t is not None:
            t.insert()
    assert out == [sum(range(2000))]


def test_timeslice_round_robin_among_spinners():
    counters = [0, 0, 0]

    def spinner(i):
        while True:
            counters[i] += 1

    spinners = [stackless.tasklet(spinner)(i) for i in range(3)]

    def referee():
        # Without preemption this tasklet would never run again after the first spinner.
        while not all(counters):
            stackless.schedule()
        for t in spinners:
            t.kill()

    stackless.tasklet(referee)()
    assert stackless.run(timeslice=0.002) is None
    assert all(counters)
    assert not any(t.alive for t in spinners)


def test_exception_from_a_preempted_run_clears_the_hook():
    def bad():
        for _ in range(10_000):
            pass
        raise KeyError("bad")

    stackless.tasklet(bad)()
    with pytest.raises(KeyError):
        stackless.run(timeout=100_000)
    # the autouse fixture checks the hook is gone


def test_kill_an_interrupted_tasklet():
    log = []

    def body():
        try:
            while True:
                pass
        finally:
            log.append("cleanup")

    t = stackless.tasklet(body)()
    assert stackless.run(timeout=200) is t
    t.kill()
    assert log == ["cleanup"] and not t.alive


def test_preemption_in_another_thread():
    def in_thread():
        box = [0]
        t = stackless.tasklet(spin)(box)
        got = stackless.run(timeout=300)
        t.kill()
        return got is t, box[0] > 0, _uthread._preempt_state()[0]

    assert run_in_thread(in_thread) == (True, True, False)


def test_run_arguments_are_checked():
    with pytest.raises(ValueError):
        stackless.run(timeout=10, timeslice=0.1)
    with pytest.raises(ValueError):
        stackless.run(timeslice=0)
    with pytest.raises(ValueError):
        _uthread._preempt_arm(lambda: None, 0)
    with pytest.raises(TypeError):
        _uthread._preempt_arm(42, 10)


def test_arm_twice_is_refused_and_disarm_is_idempotent():
    _uthread._preempt_arm(lambda: False, 1_000_000)
    try:
        with pytest.raises(RuntimeError):
            _uthread._preempt_arm(lambda: False, 10)
    finally:
        _uthread._preempt_disarm()
    _uthread._preempt_disarm()


def test_deferred_exception_is_raised_in_the_interrupted_code():
    calls = []

    def handler():
        calls.append(1)
        _uthread._preempt_defer(LookupError)  # what the scheduler does with a kill/throw

    def loop():
        try:
            for _ in range(1000):
                pass
        except LookupError:
            return "caught in the interrupted code"
        return "not interrupted"

    _uthread._preempt_arm(handler, 50)
    try:
        result = loop()
    finally:
        _uthread._preempt_disarm()
    assert result == "caught in the interrupted code"
    assert calls == [1]
    with pytest.raises(TypeError):
        _uthread._preempt_defer(42)


def test_handler_is_not_reentered_while_it_runs():
    depth = []

    def handler():
        depth.append(len(depth))
        for _ in range(100):  # 100 ticks of its own, with a budget of 1
            pass
        return False

    _uthread._preempt_arm(handler, 1)
    try:
        for _ in range(3):
            pass
    finally:
        _uthread._preempt_disarm()
    assert depth and depth == list(range(len(depth)))  # called in sequence, never nested


def test_kill_an_interrupted_tasklet_after_run_returned_runs_its_handlers():
    """The tasklet is switched away inside the hook and the hook is gone: the exception is
    still raised in its code, where its except and finally clauses see it."""
    log = []

    class Poke(Exception):
        pass

    def body():
        while True:
            try:
                while True:
                    pass
            except Poke as e:
                log.append(("poked", e.args))
                stackless.schedule_remove()  # pause (back to the thrower)

    t = stackless.tasklet(body)()
    assert stackless.run(timeout=300) is t
    t.throw(Poke("x"))
    assert log == [("poked", ("x",))]
    assert t.alive and t.paused
    t.kill()
    assert not t.alive


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ uses sys.monitoring, not the trace function")
def test_refuses_when_a_tracer_is_set_before_312():
    def tracer(*a):
        return None

    sys.settrace(tracer)
    try:
        stackless.tasklet(lambda: None)()
        with pytest.raises(RuntimeError, match="tracer"):
            stackless.run(timeout=100)
    finally:
        sys.settrace(None)
    stackless.run()


def test_interrupted_tasklet_continues_under_plain_run_after_the_hook_is_gone():
    done = []

    def worker():
        total = 0
        for i in range(50_000):
            total += i
        done.append(total)

    t = stackless.tasklet(worker)()
    assert stackless.run(timeout=200) is t  # switched away inside the hook; run() disarms it
    assert not hook_installed()
    t.insert()
    assert stackless.run() is None  # resumes inside the old hook call, no preemption now
    assert done == [sum(range(50_000))]
