"""uthread.stackless: Stackless Python's tasklets, scheduler and channels."""

import pytest

import uthread.stackless as stackless
from conftest import run_in_thread


@pytest.fixture(autouse=True)
def _clean_scheduler():
    """Every test starts and ends with only the main tasklet runnable."""
    assert stackless.getruncount() == 1
    yield
    assert stackless.getcurrent() is stackless.getmain()
    assert stackless.getruncount() == 1, "a test left tasklets in the run queue"


def test_main_tasklet():
    main = stackless.getmain()
    assert stackless.getcurrent() is main
    assert main.is_main and main.is_current and main.alive and main.scheduled
    assert not main.blocked and not main.paused


def test_tasklet_call_binds_sets_up_and_inserts():
    log = []
    t = stackless.tasklet(log.append)
    assert not t.alive and not t.scheduled
    assert t("x") is t
    assert t.alive and t.scheduled and not t.blocked
    assert stackless.getruncount() == 2
    assert log == []
    stackless.run()
    assert log == ["x"]
    assert not t.alive and not t.scheduled


def test_round_robin_order_with_schedule():
    log = []

    def worker(name, n):
        for i in range(n):
            log.append((name, i))
            stackless.schedule()

    stackless.tasklet(worker)("a", 3)
    stackless.tasklet(worker)("b", 2)
    stackless.run()
    assert log == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2)]


def test_getruncount_and_getcurrent_inside_tasklets():
    seen = []

    def body():
        seen.append((stackless.getcurrent() is t, stackless.getruncount()))

    t = stackless.tasklet(body)()
    stackless.tasklet(lambda: None)()
    stackless.run()
    assert seen == [(True, 3)]


def test_schedule_remove_and_insert():
    log = []

    def body():
        log.append("before")
        stackless.schedule_remove()
        log.append("after")

    t = stackless.tasklet(body)()
    stackless.run()
    assert log == ["before"]
    assert t.alive and t.paused and not t.scheduled
    t.insert()
    assert t.scheduled
    stackless.run()
    assert log == ["before", "after"]


def test_remove_takes_a_tasklet_out_of_the_queue():
    log = []
    t = stackless.tasklet(log.append)(1)
    t.remove()
    assert t.paused
    stackless.run()
    assert log == []
    t.insert()
    stackless.run()
    assert log == [1]


def test_run_and_switch_methods():
    log = []

    def body(tag):
        log.append(tag)

    t = stackless.tasklet(body)("run")
    t.run()  # runs now; the caller stays scheduled
    assert log == ["run"]
    u = stackless.tasklet(body)("switch")
    u.switch()
    assert log == ["run", "switch"]


def test_channel_send_receive_prefers_receiver_by_default():
    ch = stackless.channel()
    assert ch.preference == -1
    log = []

    def receiver():
        log.append(("got", ch.receive()))

    stackless.tasklet(receiver)()
    stackless.schedule()  # receiver blocks
    assert ch.balance == -1
    ch.send("hi")  # receiver runs at once
    log.append("sender continues")
    assert log == [("got", "hi"), "sender continues"]


def test_channel_preference_sender():
    ch = stackless.channel()
    ch.preference = 1
    log = []

    def receiver():
        log.append(("got", ch.receive()))

    stackless.tasklet(receiver)()
    stackless.schedule()
    ch.send("hi")
    log.append("sender continues")
    stackless.run()
    assert log == ["sender continues", ("got", "hi")]


def test_channel_sender_blocks_until_received():
    ch = stackless.channel()
    log = []

    def sender():
        ch.send(1)
        log.append("sent 1")
        ch.send(2)
        log.append("sent 2")

    stackless.tasklet(sender)()
    stackless.schedule()
    assert ch.balance == 1
    assert ch.queue is not None and ch.queue.blocked
    assert ch.receive() == 1
    assert ch.receive() == 2
    stackless.run()
    assert log == ["sent 1", "sent 2"]
    assert ch.balance == 0


def test_channel_iteration_stops_when_closed():
    ch = stackless.channel()
    got = []

    def consumer():
        for x in ch:
            got.append(x)

    def producer():
        for i in range(5):
            ch.send(i)
        ch.close()

    stackless.tasklet(consumer)()
    stackless.tasklet(producer)()
    stackless.run()
    assert got == [0, 1, 2, 3, 4]
    assert ch.closing and ch.closed
    with pytest.raises(ValueError):
        ch.receive()
    with pytest.raises(ValueError):
        ch.send(1)
    ch.open()
    assert not ch.closing


def test_channel_send_sequence_and_stopiteration():
    ch = stackless.channel()
    got = []

    def consumer():
        got.extend(ch)

    def producer():
        assert ch.send_sequence("abc") == 3
        ch.send_exception(StopIteration)

    stackless.tasklet(consumer)()
    stackless.tasklet(producer)()
    stackless.run()
    assert got == ["a", "b", "c"]


def test_send_exception_and_send_throw():
    ch = stackless.channel()
    caught = []

    def receiver():
        for _ in range(2):
            try:
                ch.receive()
            except ValueError as e:
                caught.append(("ValueError", e.args))
            except KeyError as e:
                caught.append(("KeyError", e.args))

    stackless.tasklet(receiver)()
    stackless.schedule()
    ch.send_exception(ValueError, 1, 2)
    ch.send_throw(KeyError("k"))
    stackless.run()
    assert caught == [("ValueError", (1, 2)), ("KeyError", ("k",))]


def test_deadlock_in_main_raises_instead_of_hanging():
    ch = stackless.channel()
    with pytest.raises(RuntimeError, match="Deadlock"):
        ch.receive()
    assert ch.balance == 0


def test_deadlock_when_last_tasklet_blocks_raises_in_main():
    ch = stackless.channel()
    other = stackless.channel()
    t = stackless.tasklet(other.receive)()  # will block forever
    with pytest.raises(RuntimeError, match="Deadlock"):
        ch.receive()  # main blocks, t runs and blocks too: main gets the error
    assert ch.balance == 0
    assert t.blocked
    t.kill()
    assert not t.alive and other.balance == 0


def test_kill_raises_tasklet_exit_and_runs_now():
    ch = stackless.channel()
    log = []

    def body():
        try:
            ch.receive()
        except stackless.TaskletExit:
            log.append("exit")
            raise

    t = stackless.tasklet(body)()
    stackless.schedule()
    assert t.blocked
    t.kill()
    assert log == ["exit"]
    assert not t.alive and not t.blocked and ch.balance == 0


def test_kill_unstarted_and_dead():
    log = []
    t = stackless.tasklet(log.append)(1)
    t.kill()
    assert not t.alive and not t.scheduled
    t.kill()  # dead: nothing happens
    stackless.run()
    assert log == []


def test_kill_pending_runs_when_scheduled():
    log = []

    def body():
        try:
            stackless.schedule_remove()
        except stackless.TaskletExit:
            log.append("exit")

    t = stackless.tasklet(body)()
    stackless.run()
    t.kill(pending=True)
    assert log == [] and t.scheduled
    stackless.run()
    assert log == ["exit"]


def test_throw_and_raise_exception():
    log = []

    def body():
        for _ in range(2):
            try:
                stackless.schedule_remove()
            except (KeyError, ValueError) as e:
                log.append(type(e).__name__)

    t = stackless.tasklet(body)()
    stackless.run()
    t.throw(KeyError)
    t.raise_exception(ValueError, "v")
    assert log == ["KeyError", "ValueError"]
    assert not t.alive


def test_uncaught_exception_goes_to_main():
    def body():
        raise ZeroDivisionError("boom")

    stackless.tasklet(body)()
    with pytest.raises(ZeroDivisionError, match="boom"):
        stackless.run()
    assert stackless.getruncount() == 1


def test_tasklet_exit_ends_quietly():
    def body():
        raise stackless.TaskletExit

    stackless.tasklet(body)()
    stackless.run()


def test_atomic_context_manager_and_set_atomic():
    t = stackless.getcurrent()
    assert not t.atomic
    with stackless.atomic():
        assert t.atomic
        with stackless.atomic():
            assert t.atomic
        assert t.atomic
    assert not t.atomic
    assert t.set_atomic(True) is False
    assert t.set_atomic(False) is True


def test_errors_for_bad_operations():
    with pytest.raises(TypeError):
        stackless.tasklet(42)
    t = stackless.tasklet(lambda: None)
    with pytest.raises(RuntimeError):
        t.insert()  # not set up
    t()
    stackless.run()
    with pytest.raises(RuntimeError):
        t.insert()  # dead
    with pytest.raises(RuntimeError):
        stackless.getmain().remove()  # the running tasklet
    with pytest.raises(NotImplementedError):
        stackless.run(totaltimeout=5)
    with pytest.raises(ValueError):
        stackless.run(timeout=-1)


def test_run_only_from_main():
    errors = []

    def body():
        try:
            stackless.run()
        except RuntimeError as e:
            errors.append(str(e))

    stackless.tasklet(body)()
    stackless.run()
    assert errors and "main tasklet" in errors[0]


def test_each_thread_has_its_own_scheduler():
    stackless.tasklet(lambda: None)()  # queued here, must not run in the other thread

    def in_thread():
        log = []
        stackless.tasklet(log.append)("thread")
        count = stackless.getruncount()
        stackless.run()
        return log, count, stackless.getmain()

    log, count, other_main = run_in_thread(in_thread)
    assert log == ["thread"] and count == 2
    assert other_main is not stackless.getmain()
    assert stackless.getruncount() == 2
    stackless.run()


def test_subclassing_tasklet():
    class Named(stackless.tasklet):
        def __init__(self, func, name):
            super().__init__(func)
            self.name = name

    out = []
    Named(lambda: out.append(stackless.getcurrent().name), "n1")()
    stackless.run()
    assert out == ["n1"]


def test_many_tasklets_ping_pong_over_channels():
    n = 200
    chans = [stackless.channel() for _ in range(n + 1)]

    def relay(i):
        chans[i + 1].send(chans[i].receive() + 1)

    for i in range(n):
        stackless.tasklet(relay)(i)
    stackless.tasklet(chans[0].send)(0)
    assert chans[n].receive() == n
    stackless.run()


def test_channel_between_threads_is_refused_cleanly():
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.schedule()  # t blocks on ch in this thread
    assert ch.balance == -1

    def other_thread():
        try:
            ch.send(1)
        except RuntimeError as e:
            return str(e)

    assert "one OS thread" in run_in_thread(other_thread)
    assert ch.balance == -1 and t.blocked  # nothing changed
    ch.send("here")
    assert not t.alive


def test_run_of_a_scheduled_tasklet_runs_the_chain_from_it():
    """tasklets page, tasklet.run(): running a scheduled tasklet t1 "is not the only tasklet
    that ran": the next tasklets in the chain run too, until the caller is scheduled; running t2
    instead shows only t2 and t3, as the caller is before t1 in the chain."""
    log = []

    def make(name):
        return stackless.tasklet(log.append)(name)

    ts = [make("t1"), make("t2"), make("t3")]
    ts[0].run()
    assert log == ["t1", "t2", "t3"]
    log.clear()
    ts = [make("t1"), make("t2"), make("t3")]
    ts[1].run()
    assert log == ["t2", "t3"]  # t1 is after the caller in the chain
    stackless.run()
    assert log == ["t2", "t3", "t1"]


def test_run_of_a_removed_tasklet_runs_only_it():
    """tasklets page, tasklet.run(): a tasklet removed before it is run is inserted before the
    caller, so only it runs before the caller resumes."""
    log = []
    a = stackless.tasklet(log.append)("a")
    b = stackless.tasklet(log.append)("b")
    b.remove()
    b.run()
    assert log == ["b"]
    assert a.scheduled
    stackless.run()
    assert log == ["b", "a"]


def test_tasklet_exit_derives_from_system_exit_and_is_builtin():
    """stackless page, Exceptions: TaskletExit "is derived from SystemExit" and defined in the
    builtins."""
    import builtins

    assert issubclass(stackless.TaskletExit, SystemExit)
    assert not issubclass(stackless.TaskletExit, Exception)
    assert builtins.TaskletExit is stackless.TaskletExit


def test_throw_into_a_dead_tasklet():
    """tasklets page, tasklet.throw()/raise_exception(): on a tasklet that is not alive the
    method raises RuntimeError, except TaskletExit when the tasklet already ended; kill() of an
    ended tasklet does nothing."""
    t = stackless.tasklet(lambda: None)()
    stackless.run()
    assert not t.alive
    assert t.throw(stackless.TaskletExit) is None
    assert t.raise_exception(stackless.TaskletExit) is None
    assert t.kill() is None
    with pytest.raises(RuntimeError):
        t.throw(KeyError)
    with pytest.raises(RuntimeError):
        t.raise_exception(ValueError, "v")
    with pytest.raises(TypeError):
        t.raise_exception(42)


def test_bind_none_with_args_keeps_the_function():
    """tasklets page, tasklet.bind(): "func can be None when providing arguments, in which case
    a previous call to bind must have provided the function"; bind with args does not make it
    runnable (paused)."""
    log = []
    t = stackless.tasklet(log.append)
    t.bind(None, ("x",))
    assert t.alive and t.paused and not t.scheduled
    t.insert()
    stackless.run()
    assert log == ["x"]
    with pytest.raises(RuntimeError):
        stackless.tasklet().bind(None, ())


def test_send_to_a_waiting_receiver_puts_the_sender_at_the_end():
    """channels page, channel.send(): with a waiting receiver (default preference -1), "the
    receiver will be activated immediately, and the sender is put at the end of the runnables
    list": a tasklet queued before the send runs before the sender continues."""
    ch = stackless.channel()
    log = []

    def receiver():
        log.append(("got", ch.receive()))

    def sender():
        ch.send("v")
        log.append("sender continues")

    stackless.tasklet(receiver)()
    stackless.schedule()  # the receiver blocks
    stackless.tasklet(sender)()
    stackless.tasklet(log.append)("other")
    stackless.run()
    assert log == [("got", "v"), "other", "sender continues"]


# --- the rest of the Stackless API (stackless module, tasklets and channels pages) ---------------


def test_schedule_returns_the_current_tasklet_by_default_else_retval():
    """stackless page, schedule(retval=stackless.current) / schedule_remove(...): the call
    returns retval, whose default is the current tasklet."""
    main = stackless.getmain()
    assert stackless.schedule() is main  # nothing else runnable: no switch, still the default
    assert stackless.schedule("r") == "r"
    assert stackless.schedule(None) is None
    seen = []

    def body():
        me = stackless.getcurrent()
        seen.append(stackless.schedule() is me)
        seen.append(stackless.schedule(retval=7))

    stackless.tasklet(body)()
    stackless.run()
    assert seen == [True, 7]
    assert stackless.schedule_remove() is main  # main alone: returns at once
    assert stackless.schedule_remove(3) == 3
    assert main.tempval is None  # claimed


def test_schedule_remove_returns_the_tempval_set_before_reinsertion():
    """stackless page, schedule_remove(): tasklet.tempval holds the value to be returned (set to
    retval by the call); a custom primitive sets a new tempval before re-inserting the tasklet
    and schedule_remove() returns it (the page's wait_for_result/event_callback example)."""
    waiting = []
    got = []

    def wait_for_result():
        waiting.append(stackless.getcurrent())
        return stackless.schedule_remove()

    def worker():
        got.append(wait_for_result())

    stackless.tasklet(worker)()
    stackless.tasklet(worker)()
    stackless.run()
    assert len(waiting) == 2 and all(t.paused for t in waiting)
    assert all(t.tempval is t for t in waiting)  # retval's default, stored while waiting
    for i, t in enumerate(waiting):  # the event callback
        t.tempval = ("result", i)
        t.insert()
    stackless.run()
    assert got == [("result", 0), ("result", 1)]


def test_tasklet_next_and_prev_in_the_run_queue():
    """tasklets page, tasklet.next/prev: "the next/previous tasklet in the chain that this
    tasklet is linked into", the scheduler's runnables (a ring: the example shows the last
    tasklet's next is the main tasklet); None when the tasklet is in no chain."""
    main = stackless.getmain()
    assert main.next is main and main.prev is main  # the only runnable tasklet
    a = stackless.tasklet(lambda: None)()
    b = stackless.tasklet(lambda: None)()
    assert (main.next, a.next, b.next) == (a, b, main)
    assert (main.prev, a.prev, b.prev) == (b, main, a)
    a.remove()
    assert a.next is None and a.prev is None  # paused: linked nowhere
    assert main.next is b and b.next is main
    a.insert()
    stackless.run()
    assert a.next is None and b.prev is None  # ended
    assert main.next is main


def test_tasklet_next_and_prev_of_blocked_tasklets_follow_the_channel_queue():
    """tasklets page: a tasklet not in the scheduler's chain "will be a channel the tasklet is
    blocked on"; channels page, channel.queue: the first blocked tasklet, and following .next
    walks the chain of blocked tasklets until None."""
    ch = stackless.channel()
    ts = [stackless.tasklet(ch.receive)() for _ in range(3)]
    stackless.run()
    assert ch.balance == -3
    chain = []
    t = ch.queue
    while t is not None:
        chain.append(t)
        t = t.next
    assert chain == ts
    assert ts[0].prev is None and ts[1].prev is ts[0] and ts[2].prev is ts[1]
    for i in range(3):
        ch.send(i)
    assert not any(t.alive for t in ts)


def test_block_trap_refuses_to_block_but_not_to_communicate():
    """tasklets page, tasklet.block_trap: setting it to True prevents the tasklet from being
    blocked on a channel; channels page, preference: with block_trap set, receiving from
    waiting senders works (it does not block)."""
    ch = stackless.channel()
    main = stackless.getmain()
    assert main.block_trap is False
    main.block_trap = True
    try:
        with pytest.raises(RuntimeError):
            ch.receive()
        with pytest.raises(RuntimeError):
            ch.send(1)
        assert ch.balance == 0 and main.scheduled and not main.blocked  # nothing changed
        for i in range(3):
            stackless.tasklet(ch.send)(i)
        stackless.schedule()  # the senders block
        total = 0
        while ch.balance > 0:
            total += ch.receive()  # a sender is waiting: no blocking
        assert total == 3
    finally:
        main.block_trap = False
    stackless.run()
    log = []

    def trapped():
        stackless.getcurrent().block_trap = True
        try:
            ch.receive()
        except RuntimeError:
            log.append("refused")

    stackless.tasklet(trapped)()
    stackless.run()
    assert log == ["refused"] and ch.balance == 0


def test_schedule_all_schedules_on_every_channel_action():
    """channels page, channel.schedule_all: set to 1 it overrides preference; any channel action
    results in the involved tasklets being scheduled to continue later (Stackless's source: the
    partner goes to the end of the run queue and the caller switches to the next runnable)."""
    log = []

    def run_case(schedule_all):
        ch = stackless.channel()
        ch.preference = 1  # prefer the sender: without schedule_all the sender goes on
        ch.schedule_all = schedule_all
        log.clear()

        def receiver():
            log.append(("got", ch.receive()))

        def sender():
            ch.send("v")  # a receiver is waiting: no blocking
            log.append("sender continues")

        stackless.tasklet(receiver)()
        stackless.schedule()  # the receiver blocks
        stackless.tasklet(sender)()
        stackless.tasklet(log.append)("other")
        stackless.run()
        return list(log)

    assert run_case(False) == ["sender continues", "other", ("got", "v")]
    # schedule_all: the sender schedules; "other" (queued before) runs, then the receiver
    # (queued at the end), then the sender.
    assert run_case(True) == ["other", ("got", "v"), "sender continues"]
    ch = stackless.channel()
    assert ch.schedule_all is False
    ch.schedule_all = 1
    assert ch.schedule_all is True
    with pytest.raises(TypeError):
        ch.schedule_all = "yes"


def test_schedule_all_on_receive_from_a_waiting_sender():
    """channels page, channel.schedule_all: a receive that finds a sender waiting (it would not
    block, and with the default preference the receiver would go on) schedules."""
    ch = stackless.channel()
    ch.schedule_all = True
    log = []
    stackless.tasklet(ch.send)("v")
    stackless.schedule()  # the sender blocks
    stackless.tasklet(log.append)("other")
    assert ch.receive() == "v"
    assert log == ["other"]  # the main tasklet was scheduled: "other" ran first
    stackless.run()


def test_channel_callback_sees_every_action():
    """stackless page, set_channel_callback(callable): every send or receive calls
    callable(channel, tasklet, sending, willblock) (the channel, the acting tasklet, whether it
    sends, whether it will block); None disables it; it returns the previous callback (source)."""
    calls = []

    def cb(channel, tasklet, sending, willblock):
        calls.append((channel, tasklet, bool(sending), bool(willblock)))

    ch = stackless.channel()
    assert stackless.set_channel_callback(cb) is None
    try:
        assert stackless.get_channel_callback() is cb
        t = stackless.tasklet(ch.receive)()
        stackless.schedule()  # t receives and blocks
        ch.send("x")  # main sends, a receiver waits
    finally:
        assert stackless.set_channel_callback(None) is cb
    main = stackless.getmain()
    assert calls == [(ch, t, False, True), (ch, main, True, False)]
    ch2 = stackless.channel()
    stackless.tasklet(ch2.send)(1)
    stackless.schedule()
    assert ch2.receive() == 1
    stackless.run()  # the sender, queued by the receive, ends
    assert len(calls) == 2  # removed: not called any more
    with pytest.raises(TypeError):
        stackless.set_channel_callback(42)


def test_channel_callback_exception_propagates_before_the_action():
    """stackless page, set_channel_callback: the callback runs before the action; Stackless's
    source leaves the callback's exception set. Kept choice: it comes out of send/receive, which
    then has not acted. A channel action inside the callback is refused (source: "Recursive
    channel call due to callbacks!")."""
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    stackless.schedule()

    def bad(channel, tasklet, sending, willblock):
        raise KeyError("cb")

    old = stackless.set_channel_callback(bad)
    try:
        with pytest.raises(KeyError):
            ch.send(1)
        assert ch.balance == -1 and t.blocked  # nothing happened
        inner = []

        def recursive(channel, tasklet, sending, willblock):
            try:
                stackless.channel().send(0)
            except RuntimeError as e:
                inner.append(str(e))

        stackless.set_channel_callback(recursive)
        ch.send(2)
        assert inner and "Recursive" in inner[0]
    finally:
        stackless.set_channel_callback(old)
    assert not t.alive


def test_schedule_callback_sees_every_switch():
    """stackless page, set_schedule_callback(callable): every scheduling event, explicit or
    implicit, calls callable(prev, next) (prev: the tasklet that was running, next: the one
    that runs now); source: it is called right before the switch, returns the previous
    callback, get_schedule_callback() returns the installed one."""
    calls = []
    current_in_cb = []

    def cb(prev, nxt):
        calls.append((prev, nxt))
        current_in_cb.append(stackless.getcurrent())

    main = stackless.getmain()
    ch = stackless.channel()
    assert stackless.get_schedule_callback() is None
    assert stackless.set_schedule_callback(cb) is None
    try:
        assert stackless.get_schedule_callback() is cb
        a = stackless.tasklet(ch.receive)()  # blocks: implicit switch back
        stackless.schedule()  # main -> a, then a blocks: a -> main
        ch.send(1)  # main -> a (the receiver is preferred), a ends: a -> main
        stackless.schedule()  # nothing else runnable: no switch, no call
    finally:
        assert stackless.set_schedule_callback(None) is cb
    assert calls == [(main, a), (a, main), (main, a), (a, main)]
    assert current_in_cb == [p for p, _ in calls]  # "right before the switch"
    with pytest.raises(TypeError):
        stackless.set_schedule_callback("not callable")


def test_schedule_callback_errors_are_reported_and_switching_goes_on(monkeypatch):
    """Stackless's source (scheduling.c): an exception in the schedule callback is written as
    unraisable ("Error in scheduling callback") and the switch happens anyway; a switch from
    inside the callback is refused ("Recursive scheduler call due to callbacks!"; Stackless
    aborts there, here it is a RuntimeError in the callback)."""
    reports = []
    monkeypatch.setattr("sys.unraisablehook", reports.append)
    inner = []

    def cb(prev, nxt):
        try:
            stackless.schedule()
        except RuntimeError as e:
            inner.append(str(e))
        raise ValueError("in callback")

    log = []
    old = stackless.set_schedule_callback(cb)
    try:
        stackless.tasklet(log.append)("ran")
        stackless.run()
    finally:
        stackless.set_schedule_callback(old)
    assert log == ["ran"]
    assert len(reports) == 2  # main -> t, t's end -> main
    assert isinstance(reports[0].exc_value, ValueError)
    assert reports[0].err_msg == "Error in scheduling callback"
    assert inner and all("Recursive" in m for m in inner)


def test_switch_trap_refuses_every_switch():
    """stackless page, switch_trap(change): modifies the switch trap level and returns its
    previous value; while the level is non-zero any tasklet switch, by a channel action or
    explicit, raises RuntimeError. Here the refused operation changes nothing."""
    ch = stackless.channel()
    log = []
    blocked = stackless.tasklet(stackless.channel().receive)()
    stackless.schedule()  # it starts and blocks
    t = stackless.tasklet(log.append)("t")
    assert stackless.switch_trap(1) == 0
    try:
        assert stackless.switch_trap(0) == 1
        with pytest.raises(RuntimeError):
            stackless.schedule()
        with pytest.raises(RuntimeError):
            t.run()
        with pytest.raises(RuntimeError):
            t.switch()
        with pytest.raises(RuntimeError):
            stackless.run()
        stackless.tasklet(ch.send)(1)
        with pytest.raises(RuntimeError):
            ch.receive()  # would block: a switch
        assert log == [] and t.scheduled and stackless.getruncount() == 3
        assert ch.balance == 0
        with pytest.raises(RuntimeError):
            stackless.schedule_remove()
        with pytest.raises(RuntimeError):
            blocked.kill()  # kill() runs the tasklet now: a switch
        assert stackless.getmain().scheduled and blocked.blocked
        assert blocked.kill(pending=True) is None  # no switch now: allowed
    finally:
        assert stackless.switch_trap(-1) == 1
    assert stackless.switch_trap() == 0
    stackless.run()
    assert log == ["t"] and ch.balance == 1 and not blocked.alive  # the pending kill ran
    assert ch.receive() == 1
    stackless.run()


def test_get_thread_info():
    """stackless page, get_thread_info(thread_id): a tuple of the thread's main tasklet,
    current tasklet and run count; Stackless's source raises RuntimeError("Thread id not
    found") for an id that is no thread's. A thread that has not used tasklets has no main
    tasklet yet: (None, None, 0)."""
    import threading

    main = stackless.getmain()
    me = threading.get_ident()
    assert stackless.get_thread_info(me) == (main, main, 1)
    assert stackless.get_thread_info() == (main, main, 1)
    seen = []

    def body():
        seen.append(stackless.get_thread_info(me))

    stackless.tasklet(body)()
    stackless.tasklet(lambda: None)()
    stackless.run()
    assert seen[0][0] is main and seen[0][1] is not main and seen[0][2] == 3

    ready, release = threading.Event(), threading.Event()
    other = {}

    def other_thread(use_tasklets):
        if use_tasklets:
            other["main"] = stackless.getmain()
            stackless.tasklet(lambda: None)()
        ready.set()
        release.wait(10)
        if use_tasklets:
            stackless.run()

    for use_tasklets in (False, True):
        ready.clear()
        release.clear()
        th = threading.Thread(target=other_thread, args=(use_tasklets,))
        th.start()
        try:
            assert ready.wait(10)
            info = stackless.get_thread_info(th.ident)
            if use_tasklets:
                assert info == (other["main"], other["main"], 2)
            else:
                assert info == (None, None, 0)
        finally:
            release.set()
            th.join(10)
    with pytest.raises(RuntimeError):
        stackless.get_thread_info(th.ident)  # ended
    assert th.ident not in stackless.threads


def test_module_attributes_current_main_runcount_threads():
    """stackless page, Attributes: current (the currently executing tasklet of this thread),
    main (this thread's main tasklet), runcount (the number of runnable tasklets, at least 1 as
    the caller is included), threads (all thread ids, the main thread's first); per thread and
    always up to date."""
    import threading

    main = stackless.getmain()
    assert stackless.current is main and stackless.main is main and stackless.runcount == 1
    assert stackless.threads[0] == threading.main_thread().ident
    assert threading.get_ident() in stackless.threads
    seen = []

    def body():
        seen.append((stackless.current, stackless.main, stackless.runcount))

    t = stackless.tasklet(body)()
    assert stackless.runcount == 2
    stackless.run()
    assert seen == [(t, main, 2)]

    def other():
        return stackless.current, stackless.main, stackless.runcount

    c, m, n = run_in_thread(other)
    assert c is m and m is not main and n == 1
    with pytest.raises(AttributeError):
        stackless.no_such_attribute  # noqa: B018
    assert {"current", "main", "runcount", "threads"} <= set(dir(stackless))


def test_uncollectables_lists_started_unfinished_tasklets():
    """stackless page, uncollectables: the tasklets with a non-trivial C stack, which might
    need to be killed to free memory; here every tasklet that has started and not ended (its
    greenlet keeps a suspended stack)."""
    ch = stackless.channel()
    t = stackless.tasklet(ch.receive)()
    u = stackless.tasklet(ch.receive)()  # set up, not started
    assert t not in stackless.uncollectables
    t.run()  # starts and blocks; u runs too (the chain) and blocks
    assert t in stackless.uncollectables and u in stackless.uncollectables
    t.kill()
    assert t not in stackless.uncollectables and u in stackless.uncollectables
    u.kill()
    assert u not in stackless.uncollectables


def test_preference_is_stored_as_its_sign():
    """Stackless's source (channelobject.c, the preference setter): an integer other than -1, 0,
    1 is stored as its sign; a non-integer is a TypeError."""
    ch = stackless.channel()
    assert ch.preference == -1
    for value, stored in ((5, 1), (-7, -1), (0, 0), (1, 1), (True, 1)):
        ch.preference = value
        assert ch.preference == stored
    with pytest.raises(TypeError):
        ch.preference = 0.5
    ch.preference = 42  # acts as 1: the sender is preferred
    log = []
    stackless.tasklet(lambda: log.append(("got", ch.receive())))()
    stackless.schedule()
    ch.send("v")
    log.append("sender went on")
    stackless.run()
    assert log == ["sender went on", ("got", "v")]


def test_switch_trap_defers_preemption():
    """stackless module source (interrupt_timeout_return): under switch_trap no involuntary
    switch is made; the interrupt waits until the trap is lifted."""
    box = [0, False]

    def spin():
        stackless.switch_trap(1)
        try:
            for _ in range(20000):
                box[0] += 1
        finally:
            stackless.switch_trap(-1)
        box[1] = True
        while True:
            box[0] += 1

    t = stackless.tasklet(spin)()
    assert stackless.run(timeout=500) is t
    assert box[1] is True and box[0] > 20000  # not interrupted inside the trapped loop
    t.kill()
