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
