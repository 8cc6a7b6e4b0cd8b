"""Stackless Python's tasklets, channels and scheduler on uthread's greenlets.

Code written for Stackless runs with ``import uthread.stackless as stackless``::

    import uthread.stackless as stackless

    def worker(ch):
        for item in ch:                  # receive until the channel is closed
            print("got", item)

    ch = stackless.channel()
    stackless.tasklet(worker)(ch)        # bind, set up and insert into the run queue
    stackless.tasklet(lambda: (ch.send(1), ch.send(2), ch.close()))()
    stackless.run()                      # run until only the main tasklet is left

Model (as Stackless): each OS thread has a scheduler with a circular run queue of tasklets whose
head is the running tasklet. ``schedule()`` moves the head to the back and runs the next one; a
tasklet that blocks on a channel leaves the queue until a partner comes; a tasklet that ends
leaves it for good. An exception other than ``TaskletExit`` that escapes a tasklet is raised in
the main tasklet. When the running tasklet would block and nothing else can run, the main
tasklet gets ``RuntimeError`` (a deadlock) instead of hanging.

Preemption: ``run(timeout=N)`` interrupts a tasklet that has run about N ticks (a tick is a loop
iteration or a Python function call) without yielding, removes it from the run queue and returns
it; ``run(timeslice=seconds)`` gives every tasklet up to that much time in turn. A native
interpreter hook counts the ticks and sets a flag; the switch happens at a safe point, never
inside an atomic section (``atomic()``, ``tasklet.set_atomic``).

Each tasklet is a greenlet whose parent is the thread's main tasklet's greenlet. Channels work
within one OS thread.
"""

import builtins
import sys
import threading
import weakref
from collections import deque

from uthread import _uthread
from uthread._uthread import GreenletExit, greenlet
from uthread._uthread import getcurrent as _current_greenlet

__all__ = [
    "TaskletExit",
    "atomic",
    "bomb",
    "channel",
    "get_channel_callback",
    "get_schedule_callback",
    "get_thread_info",
    "getcurrent",
    "getmain",
    "getruncount",
    "run",
    "schedule",
    "schedule_remove",
    "set_channel_callback",
    "set_schedule_callback",
    "switch_trap",
    "tasklet",
]


class TaskletExit(SystemExit):
    """Raised in a tasklet by :meth:`tasklet.kill`; a tasklet that ends with it ends quietly.
    As in Stackless it derives from ``SystemExit`` (so ``except Exception`` does not catch it)
    and is also a builtin: importing this module sets ``builtins.TaskletExit`` unless a
    ``TaskletExit`` is there already."""


if not hasattr(builtins, "TaskletExit"):
    builtins.TaskletExit = TaskletExit


class bomb:
    """An exception in transit: what ``channel.send_exception``/``send_throw`` carry."""

    __slots__ = ("type", "value", "traceback")

    def __init__(self, exc_type=None, exc_value=None, exc_tb=None):
        self.type, self.value, self.traceback = exc_type, exc_value, exc_tb

    def raise_(self):
        typ, val, tb = self.type, self.value, self.traceback
        if isinstance(typ, BaseException):
            exc = typ
        elif isinstance(val, BaseException):
            exc = val
        elif val is None:
            exc = typ()
        elif isinstance(val, tuple):
            exc = typ(*val)
        else:
            exc = typ(val)
        if tb is not None:
            exc = exc.with_traceback(tb)
        raise exc


# --- the per-thread scheduler ---------------------------------------------------------------------


class _RunQueue:
    """The circular run queue, as Stackless's chain: a doubly linked ring through the tasklets'
    ``_next``/``_prev`` links (None while a tasklet is not in the ring) whose head is the running
    tasklet (when it is scheduled). Every operation is O(1): insertion, removal from the middle,
    membership, and moving the head (which is how ``tasklet.run()`` and ``schedule()`` rotate it)."""

    __slots__ = ("head", "_n")

    def __init__(self, items=()):
        self.head = None
        self._n = 0
        for t in items:
            self.append(t)

    def __len__(self):
        return self._n

    def __bool__(self):
        return self._n > 0

    def __contains__(self, t):
        return t._next is not None

    def __iter__(self):
        t = self.head
        for _ in range(self._n):
            yield t
            t = t._next

    def __getitem__(self, i):
        if i != 0 or self.head is None:
            raise IndexError("only the head of the run queue can be indexed")
        return self.head

    def append(self, t):
        """Inserts ``t`` at the end: just before the head in the ring."""
        head = self.head
        if head is None:
            t._next = t._prev = t
            self.head = t
        else:
            self.insert_after(head._prev, t)
            return
        self._n += 1

    def insert_after(self, where, t):
        """Inserts ``t`` right after ``where`` (which is in the ring)."""
        nxt = where._next
        t._prev, t._next = where, nxt
        where._next = nxt._prev = t
        self._n += 1

    def appendleft(self, t):
        """Inserts ``t`` at the end and makes it the head (it runs next; the old head after it)."""
        self.append(t)
        self.head = t

    def popleft(self):
        t = self.head
        self.remove(t)
        return t

    def remove(self, t):
        if self._n == 1:
            self.head = None
        else:
            t._prev._next, t._next._prev = t._next, t._prev
            if self.head is t:
                self.head = t._next
        t._next = t._prev = None
        self._n -= 1

    def rotate_head_to_back(self):
        self.head = self.head._next

    def make_head(self, t):
        """Turns the ring so that ``t`` (which is in it) is the head; the order is kept."""
        self.head = t


_local = threading.local()

# Every thread's scheduler by thread id (for get_thread_info), and the tasklets that have started
# and not ended, in every thread (the ``uncollectables`` attribute).
_schedulers = weakref.WeakValueDictionary()
_started = weakref.WeakSet()

# Process-wide, as Stackless's: see set_channel_callback / set_schedule_callback.
_channel_callback = None
_schedule_callback = None


class _Scheduler:
    __slots__ = (
        "main",
        "current",
        "runnables",
        "thread_id",
        "thread",
        "preempt",
        "interrupted",
        "switch_trap",
        "schedlock",
        "__weakref__",
    )

    def __init__(self):
        self.thread_id = threading.get_ident()
        self.thread = weakref.ref(threading.current_thread())
        self.main = tasklet.__new__(tasklet)
        self.main._init_main(_current_greenlet(), self)
        self.current = self.main
        self.runnables = _RunQueue([self.main])  # head: the running tasklet (when it is scheduled)
        self.preempt = None  # None, or ("ticks", n) / ("time", seconds) while run() preempts
        self.interrupted = None
        self.switch_trap = 0  # switch_trap(): while non-zero, switching raises RuntimeError
        self.schedlock = False  # True while a channel or schedule callback runs
        _schedulers[self.thread_id] = self


def _sched():
    s = getattr(_local, "sched", None)
    if s is None:
        s = _local.sched = _Scheduler()
    return s


def _others_runnable(q, me):
    """True if the run queue ``q`` holds a tasklet other than ``me``: an operation of ``me``
    would then switch."""
    return len(q) > (1 if me in q else 0)


def _check_switch(s):
    """Raises ``RuntimeError`` if this thread may not switch tasklets now: under
    ``switch_trap()``, or inside a channel or schedule callback. Called before an operation
    that would switch changes anything, so a refused operation leaves everything as it was."""
    if s.schedlock:
        raise RuntimeError("Recursive scheduler call due to callbacks!")
    if s.switch_trap:
        raise RuntimeError("switch_trap")


_unraisable_args_type = None


def _write_unraisable(exc, msg, obj):
    """Reports ``exc`` through ``sys.unraisablehook`` (as C's PyErr_WriteUnraisable)."""
    global _unraisable_args_type
    if _unraisable_args_type is None:
        # sys.UnraisableHookArgs is not exposed by name: take its type from one report.
        got = []
        old, sys.unraisablehook = sys.unraisablehook, got.append

        class _Probe:
            def __del__(self):
                raise RuntimeError

        try:
            _Probe()
        finally:
            sys.unraisablehook = old
        _unraisable_args_type = type(got[0])
    sys.unraisablehook(_unraisable_args_type((type(exc), exc, exc.__traceback__, msg, obj)))


def _notify_schedule(s, prev, nxt):
    """Calls the schedule callback (if any) right before a switch from ``prev`` to ``nxt``,
    with ``prev`` still the current tasklet. Its exceptions are reported as unraisable and the
    switch goes on (Stackless: "Error in scheduling callback")."""
    cb = _schedule_callback
    if cb is None or prev is nxt:
        return
    s.schedlock = True
    try:
        cb(prev, nxt)
    except BaseException as e:  # noqa: BLE001 - reported, as Stackless does
        _write_unraisable(e, "Error in scheduling callback", cb)
    finally:
        s.schedlock = False


def _switch_to(s, target):
    """Makes ``target`` (at the head of the run queue, or being run for an exception) the
    running tasklet. Returns when the caller is resumed; raises what is thrown into it."""
    _notify_schedule(s, s.current, target)
    s.current = target
    if s.preempt is not None:
        _start_slice(s, target)
    g = target._greenlet
    if target._thrown is not None:
        exc, target._thrown = target._thrown, None
        return greenlet.throw(g, exc)
    return greenlet.switch(g)


def _resume_next(s, me):
    """``me`` has left the run queue (blocked, removed or ended); runs the new head. If nothing
    can run: the main tasklet gets a deadlock error (raised here if ``me`` is the main)."""
    if s.runnables:
        return _switch_to(s, s.runnables[0])
    if me is s.main:
        raise RuntimeError("Deadlock: the main tasklet would block and no other tasklet is runnable")
    # The main tasklet is blocked (or removed) and nothing else can run: wake it with the error.
    _unblock(s.main)
    s.runnables.append(s.main)
    s.main._thrown = RuntimeError(
        "Deadlock: tasklet %r is blocked and no other tasklet is runnable (the main tasklet was "
        "waiting)" % (me,)
    )
    return _switch_to(s, s.main)


def _turn_to(s, target, keep_caller):
    """Stackless's switch to ``target`` (runnable, not the caller): inserted at the end of the
    run queue (just before the caller in the ring) if it is not in it, the caller removed from
    the queue unless ``keep_caller``, then the ring turned so that ``target`` is the head and
    switched to. Returns when the caller runs again."""
    q = s.runnables
    me = s.current
    if keep_caller and me not in q:
        q.appendleft(me)
    if target not in q:
        q.append(target)
    if not keep_caller and me in q:
        q.remove(me)
    q.make_head(target)
    return _switch_to(s, target)


def _unblock(t):
    ch = t._blocked_on
    if ch is not None:
        t._blocked_on = None
        for i, (w, _) in enumerate(ch._waiters):
            if w is t:
                del ch._waiters[i]
                break
        ch._refresh()


# --- tasklet ----------------------------------------------------------------------------------------


class tasklet:
    """A micro-thread scheduled cooperatively by this thread's scheduler (Stackless's tasklet).

    ``tasklet(func)(*args, **kwargs)`` binds ``func``, sets up its arguments and inserts the
    tasklet at the end of the run queue; it runs when the scheduler reaches it."""

    # Links of the run queue's ring (see _RunQueue); None while not in it. Class defaults too,
    # so that a subclass whose __init__ does not call tasklet.__init__ still has them.
    _next = None
    _prev = None

    def __init__(self, func=None, args=None, kwargs=None):
        self._sched = None
        self._greenlet = None
        self._func = None
        self._args = None
        self._blocked_on = None
        self._thrown = None
        self._atomic = False
        self._block_trap = False
        self._ignore_nesting = False
        self._next = self._prev = None
        self._state = "new"  # new, bound, setup, started, dead
        self.tempval = None
        self.is_main = False
        if func is not None or args is not None or kwargs is not None:
            self.bind(func, args, kwargs)

    def _init_main(self, g, s):
        self.__init__()
        self._sched = s
        self._greenlet = g
        self._state = "started"
        self.is_main = True

    def bind(self, func=None, args=None, kwargs=None):
        """Binds ``func`` and, if given, its arguments (then the tasklet is set up, alive and
        paused, but not inserted). ``func=None`` with arguments keeps the function bound
        before; ``bind()`` with no arguments unbinds (the tasklet is then not alive). A tasklet
        that has started and not ended cannot be rebound (its frames cannot be restored), nor
        can the current or a scheduled one."""
        if func is not None and not callable(func):
            raise TypeError("tasklet function must be callable, got %r" % (func,))
        if self.is_main or self._state == "started":
            raise RuntimeError("cannot bind a tasklet that has started (it is not restorable)")
        if self.scheduled:
            raise RuntimeError("cannot bind a scheduled tasklet")
        has_args = args is not None or kwargs is not None
        if func is None and has_args:
            func = self._func
            if func is None:
                raise RuntimeError("the tasklet is not bound to a function: bind(func) first")
        self._func = func
        self._state = "bound" if func is not None else "new"
        self._args = None
        self._greenlet = None
        if has_args:
            self._prepare(tuple(args or ()), dict(kwargs or {}))
        return self

    def _prepare(self, args, kwargs):
        s = _sched()
        self._sched = s
        self._args = (args, kwargs)
        self._greenlet = greenlet(self._entry, parent=s.main._greenlet)
        self._state = "setup"

    def setup(self, *args, **kwargs):
        """Supplies the arguments and inserts the tasklet at the end of the run queue (as
        ``bind(None, args, kwargs)`` then ``insert()``); ``RuntimeError`` if it is alive."""
        if self.alive:
            raise RuntimeError("the tasklet is alive (already set up)")
        self.bind(None, args, kwargs)
        self.insert()
        return self

    __call__ = setup

    def _entry(self, *_ignored):
        s = self._sched
        self._state = "started"
        _started.add(self)
        func, (args, kwargs) = self._func, self._args
        self._args = None
        error = None
        try:
            func(*args, **kwargs)
        except (TaskletExit, GreenletExit):  # the tasklet ends quietly
            pass
        except BaseException as e:  # noqa: BLE001 - passed on to the main tasklet, as Stackless
            error = e
        self._state = "dead"
        self._func = None
        _started.discard(self)
        if s.runnables and s.runnables[0] is self:
            s.runnables.popleft()
        elif self in s.runnables:
            s.runnables.remove(self)
        if error is not None:
            # Raised in the main tasklet (which becomes runnable, at the head).
            main = s.main
            _unblock(main)
            if main in s.runnables:
                s.runnables.remove(main)
            s.runnables.appendleft(main)
            _notify_schedule(s, self, main)
            s.current = main
            if s.preempt is not None:
                _start_slice(s, main)
            self._greenlet.parent = main._greenlet
            raise error
        if s.runnables:
            nxt = s.runnables[0]
        else:
            main = s.main
            nxt = main
            s.runnables.append(main)
            if main._blocked_on is not None:
                _unblock(main)
                main._thrown = RuntimeError(
                    "Deadlock: the main tasklet is blocked and no other tasklet is runnable"
                )
        _notify_schedule(s, self, nxt)
        s.current = nxt
        if s.preempt is not None:
            _start_slice(s, nxt)
        if nxt._thrown is not None:
            exc, nxt._thrown = nxt._thrown, None
            self._greenlet.parent = nxt._greenlet
            raise exc
        # greenlet's parent rule delivers there as this greenlet ends (and starts it if it has
        # not started yet).
        self._greenlet.parent = nxt._greenlet
        return None

    # -- queue operations ------------------------------------------------------------------------

    def insert(self):
        """Inserts the tasklet at the end of the run queue (if it is not in it already)."""
        s = self._own_sched()
        if self._state == "dead":
            raise RuntimeError("cannot insert a dead tasklet")
        if self._state in ("new", "bound"):
            raise RuntimeError("cannot insert a tasklet that is not set up (call it with its arguments)")
        if self._blocked_on is not None:
            raise RuntimeError("cannot insert a blocked tasklet")
        if self not in s.runnables:
            s.runnables.append(self)
        return self

    def remove(self):
        """Removes the tasklet from the run queue (it is then paused). The running tasklet
        cannot be removed this way (use ``schedule_remove()``)."""
        s = self._own_sched()
        if self._blocked_on is not None:
            raise RuntimeError("cannot remove a blocked tasklet")
        if self is s.current:
            raise RuntimeError("cannot remove the running tasklet (use stackless.schedule_remove())")
        if self in s.runnables:
            s.runnables.remove(self)
        return self

    def run(self):
        """Runs this tasklet now. If it is not in the run queue it is inserted at the end
        (just before the caller in the ring); then the queue turns so that it is the head. The
        caller keeps its place, so every tasklet between this one and the caller runs before
        the caller does (Stackless's rule: running a scheduled tasklet runs the chain from it)."""
        return self._run_now(keep_caller=True)

    def switch(self):
        """As ``run()``, but the caller is paused (removed from the run queue)."""
        return self._run_now(keep_caller=False)

    def _run_now(self, keep_caller):
        s = self._own_sched()
        if self._state == "dead":
            raise RuntimeError("cannot run a dead tasklet")
        if self._state in ("new", "bound"):
            raise RuntimeError("cannot run a tasklet that is not set up")
        if self._blocked_on is not None:
            raise RuntimeError("cannot run a blocked tasklet")
        if self is s.current:
            return None
        _check_switch(s)
        _turn_to(s, self, keep_caller)
        return None

    # -- exceptions ------------------------------------------------------------------------------

    def kill(self, pending=False):
        """Raises ``TaskletExit`` in the tasklet and runs it now (``pending=True``: when the
        scheduler gets to it); a blocked tasklet is taken off its channel first. A tasklet that
        is set up but has not started just ends. A tasklet that is not alive (ended, or never
        set up) is left as it is: then kill() does nothing."""
        if not self.alive:
            return None
        if self._state == "setup":
            s = self._sched
            if s is not None and self in s.runnables:
                s.runnables.remove(self)
            self._state = "dead"
            self._func = self._args = None
            self._greenlet = None
            return None
        return self.throw(TaskletExit, pending=pending)

    def throw(self, exc=None, val=None, tb=None, pending=False):
        """Raises an exception in the tasklet (default ``TaskletExit``) where it waits, with
        ``raise``'s semantics for ``exc``, ``val`` and ``tb``. It runs now: inserted (if it is
        not in the run queue) just before the caller, then switched to; ``pending=True``: it is
        made runnable (inserted at the end) and the caller goes on. A blocked tasklet is taken
        off its channel first. Into a tasklet that is not alive: ``TaskletExit`` does nothing,
        any other exception is a ``RuntimeError`` in the caller."""
        if exc is None:
            exc = TaskletExit
        b = bomb(exc, val, tb)
        try:
            b.raise_()
        except BaseException as e:  # noqa: BLE001 - built to be thrown
            instance = e
        return self._throw(instance, pending)

    def raise_exception(self, exc_class, *args):
        """Raises ``exc_class(*args)`` in the tasklet and runs it now (as ``throw()``)."""
        if not (isinstance(exc_class, type) and issubclass(exc_class, BaseException)):
            raise TypeError("raise_exception() needs an exception class, got %r" % (exc_class,))
        return self._throw(exc_class(*args), False)

    def _throw(self, instance, pending):
        s = self._own_sched()
        if self is s.current:
            raise instance
        if not self.alive:
            if isinstance(instance, TaskletExit):
                return None
            raise RuntimeError("cannot throw %s into a tasklet that is not alive" % type(instance).__name__)
        if self._state != "started":
            # Set up, not started: it ends at once; the exception is raised in the caller (a
            # TaskletExit ends it quietly), as it never had a frame to catch it.
            self.kill()
            if isinstance(instance, TaskletExit):
                return None
            raise instance
        if not pending:
            _check_switch(s)
        _unblock(self)
        self._thrown = instance
        if pending:
            if self not in s.runnables:
                s.runnables.append(self)
            return None
        _turn_to(s, self, True)
        return None

    # -- atomic ----------------------------------------------------------------------------------

    def set_atomic(self, flag):
        """Sets whether the tasklet may be preempted (an atomic tasklet never is); returns the
        previous value."""
        old, self._atomic = self._atomic, bool(flag)
        return old

    @property
    def atomic(self):
        """True while the tasklet must not be preempted."""
        return self._atomic

    @property
    def block_trap(self):
        """When True, an operation that would block the tasklet on a channel raises
        ``RuntimeError`` instead (an operation that finds a partner waiting still works)."""
        return self._block_trap

    @block_trap.setter
    def block_trap(self, flag):
        self._block_trap = bool(flag)

    # -- state -----------------------------------------------------------------------------------

    def _own_sched(self):
        s = self._sched
        if s is None:
            s = _sched()
        if s.thread_id != threading.get_ident():
            raise RuntimeError("the tasklet belongs to another thread")
        return s

    @property
    def alive(self):
        """True from ``setup`` until the tasklet ends (or is killed)."""
        if self.is_main:
            return not self._greenlet.dead
        return self._state in ("setup", "started")

    @property
    def blocked(self):
        """True while the tasklet waits on a channel."""
        return self._blocked_on is not None

    @property
    def scheduled(self):
        """True while the tasklet is in the run queue or blocked on a channel."""
        s = self._sched
        return self._blocked_on is not None or (s is not None and self in s.runnables)

    @property
    def paused(self):
        """True when the tasklet is alive but neither in the run queue nor blocked."""
        return self.alive and not self.scheduled

    @property
    def next(self):
        """The next tasklet in the chain this one is linked into: the run queue (a ring: the
        only runnable tasklet is its own next) or, while blocked, its channel's queue of waiting
        tasklets (None after the last one). None when it is in neither."""
        ch = self._blocked_on
        if ch is not None:
            return ch._neighbour(self, 1)
        return self._next

    @property
    def prev(self):
        """The previous tasklet in the chain this one is linked into (see ``next``); in a
        channel's queue the first waiting tasklet has none."""
        ch = self._blocked_on
        if ch is not None:
            return ch._neighbour(self, -1)
        return self._prev

    @property
    def is_current(self):
        """True for the running tasklet of its thread."""
        s = self._sched
        return s is not None and s.current is self

    @property
    def thread_id(self):
        """Identifier of the OS thread the tasklet belongs to."""
        s = self._sched
        return s.thread_id if s is not None else threading.get_ident()

    @property
    def restorable(self):
        """Stackless can pickle tasklets; uthread cannot: always False."""
        return False

    def __repr__(self):
        if self.is_main:
            state = "main"
        else:
            state = self._state
        if self._blocked_on is not None:
            state += ", blocked"
        name = getattr(self._func, "__name__", None)
        return "<%s %s%s at 0x%x>" % (type(self).__name__, state, " " + name if name else "", id(self))


# --- module functions -------------------------------------------------------------------------------


def getcurrent():
    """Returns the running tasklet of this thread."""
    return _sched().current


def getmain():
    """Returns this thread's main tasklet."""
    return _sched().main


def getruncount():
    """Number of tasklets in the run queue, the running one included."""
    return len(_sched().runnables)


class _Current:
    """The default of ``schedule()``'s ``retval``: the current tasklet."""

    __slots__ = ()

    def __repr__(self):
        return "stackless.current"


_CURRENT = _Current()


def _claim_tempval(me):
    """What schedule()/schedule_remove() return once ``me`` runs again: its ``tempval`` (the
    ``retval`` they stored there, unless someone replaced it meanwhile), which is then reset to
    None. A ``bomb`` found there is raised."""
    value, me.tempval = me.tempval, None
    if isinstance(value, bomb):
        value.raise_()
    return value


def schedule(retval=_CURRENT):
    """Moves the running tasklet to the end of the run queue and runs the next one. Returns, when
    it is the running tasklet's turn again, its ``tempval``: ``retval`` (default: the current
    tasklet) unless another tasklet set ``tempval`` meanwhile."""
    s = _sched()
    me = s.current
    if retval is _CURRENT:
        retval = me
    q = s.runnables
    if _others_runnable(q, me):
        _check_switch(s)
    old, me.tempval = me.tempval, retval
    if q and q[0] is me:
        q.rotate_head_to_back()
    elif me not in q:
        q.append(me)
    nxt = q[0]
    if nxt is not me:
        try:
            _switch_to(s, nxt)
        except BaseException:
            me.tempval = old
            raise
    return _claim_tempval(me)


def schedule_remove(retval=_CURRENT):
    """Removes the running tasklet from the run queue and runs the next one; it runs again only
    when inserted (``insert()``) or run. Returns its ``tempval`` then: ``retval`` (default: the
    current tasklet) unless set meanwhile, which is how a custom blocking primitive passes a
    result (set ``tempval``, then ``insert()``). In the main tasklet with nothing else runnable
    it returns at once."""
    s = _sched()
    me = s.current
    if retval is _CURRENT:
        retval = me
    q = s.runnables
    if me is not s.main or _others_runnable(q, me):
        _check_switch(s)
    old, me.tempval = me.tempval, retval
    if me in q:
        q.remove(me)
    if not q and me is s.main:
        q.append(me)
        return _claim_tempval(me)
    try:
        _resume_next(s, me)
    except BaseException:
        me.tempval = old
        raise
    return _claim_tempval(me)


def switch_trap(delta=0):
    """Adds ``delta`` to this thread's switch trap level and returns the previous level. While
    the level is not zero, every operation that would switch tasklets (``schedule()``, a channel
    action that blocks or runs the partner, ``tasklet.run()``/``switch()``/``throw()``/``kill()``)
    raises ``RuntimeError`` instead and changes nothing; preemption waits."""
    s = _sched()
    old = s.switch_trap
    s.switch_trap = old + int(delta)
    return old


def set_channel_callback(callback):
    """Installs ``callback(channel, tasklet, sending, willblock)``, called at every send or
    receive before it acts (``sending``: a send; ``willblock``: the tasklet will block), for
    every thread; None removes it. Returns the previous callback (or None). An exception it
    raises comes out of the channel operation, which then has not acted. A channel operation
    or tasklet switch inside it raises ``RuntimeError``."""
    global _channel_callback
    if callback is not None and not callable(callback):
        raise TypeError("channel callback must be callable")
    old, _channel_callback = _channel_callback, callback
    return old


def get_channel_callback():
    """Returns the installed channel callback, or None."""
    return _channel_callback


def set_schedule_callback(callback):
    """Installs ``callback(prev, next)``, called right before every switch from tasklet
    ``prev`` to tasklet ``next`` (``getcurrent()`` is still ``prev``), whether by
    ``schedule()``, a channel, ``run()``, a tasklet's end or preemption, for every thread; None
    removes it. Returns the previous callback (or None). An exception it raises is reported
    through ``sys.unraisablehook`` and the switch goes on. A tasklet switch inside it raises
    ``RuntimeError``."""
    global _schedule_callback
    if callback is not None and not callable(callback):
        raise TypeError("schedule callback must be callable")
    old, _schedule_callback = _schedule_callback, callback
    return old


def get_schedule_callback():
    """Returns the installed schedule callback, or None."""
    return _schedule_callback


def _live_scheduler(thread_id):
    s = _schedulers.get(thread_id)
    if s is None:
        return None
    t = s.thread()
    if t is None or not t.is_alive():
        return None  # a thread that ended (its id may be reused)
    return s


def get_thread_info(thread_id=None):
    """Returns ``(main, current, runcount)`` for the thread with that id (default: this
    thread): its main tasklet, its current tasklet and its number of runnable tasklets. A thread
    that has not used tasklets yet gives ``(None, None, 0)``; an id that is no running thread's
    raises ``RuntimeError``."""
    if thread_id is None or thread_id == threading.get_ident():
        s = _sched()
    else:
        if thread_id not in sys._current_frames():
            raise RuntimeError("Thread id not found")
        s = _live_scheduler(thread_id)
        if s is None:
            return (None, None, 0)
    n = len(s.runnables)
    return (s.main, s.current if n else None, n)


def _threads():
    ids = list(sys._current_frames())
    main = threading.main_thread().ident
    if main in ids:
        ids.remove(main)
        ids.insert(0, main)
    return ids


_MODULE_ATTRIBUTES = {
    "current": lambda: _sched().current,
    "main": lambda: _sched().main,
    "runcount": lambda: len(_sched().runnables),
    "threads": _threads,
    "uncollectables": lambda: [t for t in list(_started) if t.alive],
}


def __getattr__(name):
    """Stackless's dynamic module attributes, per thread: ``current``, ``main``, ``runcount``
    (as getcurrent(), getmain(), getruncount()), ``threads`` (ids of the running threads, the
    main thread first) and ``uncollectables`` (tasklets, of every thread, that have started and
    not ended: their suspended stacks keep them alive until they end or are killed)."""
    get = _MODULE_ATTRIBUTES.get(name)
    if get is None:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    return get()


def __dir__():
    return sorted(set(globals()) | set(_MODULE_ATTRIBUTES))


class atomic:
    """Context manager: the running tasklet cannot be preempted inside the ``with`` block."""

    __slots__ = ("_old",)

    def __enter__(self):
        self._old = _sched().current.set_atomic(True)
        return self

    def __exit__(self, *exc):
        _sched().current.set_atomic(self._old)
        return False


# --- preemption ---------------------------------------------------------------------------------

#: Ticks between two looks at the clock (by the native hook) under ``run(timeslice=...)``.
TIMESLICE_CHECK_TICKS = 20


def _start_slice(s, t):
    _uthread._preempt_reset()


def _on_preempt():
    """Called by the native hook at a safe point (between two bytecodes, outside the hook's
    tracing guard) when the running tasklet's ticks are used up. Returns True if it switched."""
    s = getattr(_local, "sched", None)
    if s is None or s.preempt is None:
        return False
    if sys._getframe(1).f_code.co_filename == __file__:
        # Interrupted inside the scheduler itself (a channel operation, a tasklet's epilogue,
        # atomic()'s own bookkeeping): its data structures may be half updated. Not a safe
        # point; the next check comes after the next budget of ticks.
        return False
    me = s.current
    if me is s.main or me._atomic or me._blocked_on is not None or s.switch_trap or s.schedlock:
        return False
    try:
        if s.preempt[0] == "time":
            # The slice is over (the hook reads the clock). Round robin: to the back of the
            # queue, the next one runs.
            schedule()
            return True
        # run(timeout): the interrupted tasklet leaves the run queue and run() returns it.
        if me in s.runnables:
            s.runnables.remove(me)
        s.interrupted = me
        main = s.main
        if main in s.runnables:
            s.runnables.remove(main)
        s.runnables.appendleft(main)
        _switch_to(s, main)
    except BaseException as e:  # noqa: BLE001 - handed to the interrupted code, see below
        # Thrown into this tasklet (kill, throw) while it was switched away inside the hook: the
        # hook hands it to the interrupted code at its next instruction, not out of the hook.
        _uthread._preempt_defer(_raisable_class(e))
    return True


def _raisable_class(exc):
    """A class whose instantiation with no arguments gives ``exc`` back, or an equivalent
    instance: the interpreter's asynchronous exceptions are raised by class."""
    cls = type(exc)
    if not exc.args and not getattr(exc, "__dict__", None):
        try:
            if type(cls()) is cls:
                return cls  # e.g. TaskletExit from kill(): raised exactly as it is
        except Exception:  # noqa: BLE001 - falls back to the carrier below
            pass

    def new(carrier):
        return exc

    # A subclass named like the original, whose instantiation returns the original instance
    # (an instance of a base class: __init__ is then not called). Caught by the same except
    # clauses; on 3.12+ the raised exception is the original instance itself.
    return type(cls.__name__, (cls,), {"__new__": new, "__module__": cls.__module__, "__qualname__": cls.__qualname__})


def run(timeout=0, threadblock=False, soft=False, ignore_nesting=False, totaltimeout=0, timeslice=None):
    """Runs the scheduler until the main tasklet is the only runnable one; returns None.

    ``timeout=N`` (ticks): a tasklet that runs about N ticks (loop iterations and Python calls)
    without switching is interrupted, removed from the run queue and returned (re-``insert()``
    it to continue it later). ``timeslice=seconds``: every tasklet runs round-robin for up to
    that long before the next one's turn (nothing is returned early). Only the main tasklet can
    call run(). ``threadblock``, ``soft``, ``ignore_nesting`` and ``totaltimeout`` are
    Stackless's; only their defaults are supported."""
    if threadblock or soft or ignore_nesting or totaltimeout:
        raise NotImplementedError("run(): threadblock, soft, ignore_nesting and totaltimeout are not supported")
    s = _sched()
    if s.current is not s.main:
        raise RuntimeError("run() must be called from the main tasklet")
    if s.preempt is not None:
        raise RuntimeError("run() is already running")
    if timeout and timeslice:
        raise ValueError("give timeout or timeslice, not both")
    if timeout:
        if not isinstance(timeout, int) or timeout < 0:
            raise ValueError("timeout must be a positive number of ticks")
        _uthread._preempt_arm(_on_preempt, timeout)
        s.preempt = ("ticks", timeout)
    elif timeslice is not None:
        if not timeslice > 0:
            raise ValueError("timeslice must be a positive number of seconds")
        _uthread._preempt_arm(_on_preempt, TIMESLICE_CHECK_TICKS, float(timeslice))
        s.preempt = ("time", float(timeslice))
    s.interrupted = None
    try:
        main = s.main
        while len(s.runnables) > 1 or (s.runnables and s.runnables[0] is not main):
            schedule()
            if s.interrupted is not None:
                t, s.interrupted = s.interrupted, None
                return t
        return None
    finally:
        if s.preempt is not None:
            s.preempt = None
            _uthread._preempt_disarm()


# --- channel ----------------------------------------------------------------------------------------


class _ChannelClosed(ValueError):
    """receive() on a closed channel (iteration turns it into StopIteration)."""



class channel:
    """A rendezvous point between tasklets: ``send()`` blocks until a receiver takes the value,
    ``receive()`` until a sender brings one. ``balance`` counts waiting senders (positive) or
    receivers (negative). ``preference`` decides who runs on when a waiting partner is found:
    -1 (the default) the receiver, 1 the sender, 0 neither (the woken one is queued);
    ``schedule_all`` overrides it: both are queued and the next runnable tasklet runs."""

    def __init__(self):
        self._waiters = deque()  # (tasklet, value or bomb) for senders, (tasklet, None) receivers
        self._balance = 0
        self._preference = -1
        self._schedule_all = False
        self.closing = False

    @property
    def preference(self):
        """-1 (the default): prefer the receiver; 1: prefer the sender; 0: prefer neither. The
        preferred side of a send or receive that finds a partner waiting is the one that runs on
        at once. Any integer can be assigned; it is stored as its sign (-1, 0 or 1)."""
        return self._preference

    @preference.setter
    def preference(self, value):
        if not isinstance(value, int):
            raise TypeError("preference must be set to an integer")
        self._preference = (value > 0) - (value < 0)

    @property
    def schedule_all(self):
        """When True, overrides ``preference``: a send or receive that finds a partner waiting
        queues the partner at the end of the run queue and schedules (the caller goes to the
        end too, the next runnable tasklet runs). An integer or bool, stored as a bool."""
        return self._schedule_all

    @schedule_all.setter
    def schedule_all(self, value):
        if not isinstance(value, int):
            raise TypeError("schedule_all must be set to a bool or integer")
        self._schedule_all = bool(value)

    # balance/state

    @property
    def balance(self):
        """Number of senders waiting (positive) or receivers waiting (negative)."""
        return self._balance

    @property
    def closed(self):
        """True once the channel is closing and nobody waits on it."""
        return self.closing and self._balance == 0

    @property
    def queue(self):
        """The first tasklet waiting on the channel, or None."""
        return self._waiters[0][0] if self._waiters else None

    def _neighbour(self, t, step):
        """The tasklet ``step`` places from ``t`` in the queue of waiting tasklets, or None."""
        w = self._waiters
        for i, (x, _) in enumerate(w):
            if x is t:
                j = i + step
                return w[j][0] if 0 <= j < len(w) else None
        return None

    def _refresh(self):
        n = len(self._waiters)
        if self._balance > 0:
            self._balance = n
        elif self._balance < 0:
            self._balance = -n
        if n == 0:
            self._balance = 0

    def close(self):
        """Stops the channel from accepting new blocking operations: once nobody waits,
        ``closed`` is True, ``receive()`` raises ``ValueError`` and iteration stops. Senders
        already waiting still deliver; receivers already waiting can never get a value, so they
        are woken (queued) with that same ``ValueError`` (their ``for`` loop just ends)."""
        self.closing = True
        if self._balance < 0:
            s = _sched()
            while self._waiters:
                receiver, _ = self._waiters.popleft()
                receiver._blocked_on = None
                receiver.tempval = bomb(_ChannelClosed("receive() on a closed channel"))
                s.runnables.append(receiver)
            self._balance = 0

    def open(self):
        """Reopens a closing channel."""
        self.closing = False

    # operations

    def send(self, value):
        """Sends ``value`` to a receiver, blocking until one takes it."""
        return self._send(value)

    def send_exception(self, exc_type, *args):
        """Makes a receiver raise ``exc_type(*args)``."""
        return self._send(bomb(exc_type, args))

    def send_throw(self, exc, val=None, tb=None):
        """Makes a receiver raise ``exc`` (a class or an instance), as ``throw()`` would."""
        return self._send(bomb(exc, val, tb))

    def send_sequence(self, seq):
        """Sends every item of ``seq``; returns how many were sent."""
        n = 0
        for item in seq:
            self.send(item)
            n += 1
        return n

    def _notify(self, s, me, sending, willblock):
        """Calls the channel callback (if any) before the action; its exception propagates."""
        cb = _channel_callback
        if cb is None:
            return
        if s.schedlock:
            raise RuntimeError("Recursive channel call due to callbacks!")
        s.schedlock = True
        try:
            cb(self, me, sending, willblock)
        finally:
            s.schedlock = False

    def _send(self, value):
        s = _sched()
        me = s.current
        cando = self._balance < 0
        self._notify(s, me, True, not cando)
        if cando:
            self._check_thread(s)
            if self._schedule_all or self._preference < 0:
                _check_switch(s)
            receiver, _ = self._waiters.popleft()
            self._balance += 1
            receiver._blocked_on = None
            receiver.tempval = value
            self._wake(s, me, receiver, run_woken=self._preference < 0)
            return None
        self._check_block(me)
        if self.closing:
            raise ValueError("send() on a closed channel")
        self._block(s, me, +1, value)
        return None

    def receive(self):
        """Receives a value, blocking until a sender brings one."""
        s = _sched()
        me = s.current
        cando = self._balance > 0
        self._notify(s, me, False, not cando)
        if cando:
            self._check_thread(s)
            if self._schedule_all or self._preference > 0:
                _check_switch(s)
            sender, value = self._waiters.popleft()
            self._balance -= 1
            sender._blocked_on = None
            self._wake(s, me, sender, run_woken=self._preference > 0)
        else:
            self._check_block(me)
            if self.closing:
                raise _ChannelClosed("receive() on a closed channel")
            self._block(s, me, -1, None)
            value, me.tempval = me.tempval, None
        if isinstance(value, bomb):
            value.raise_()
        return value

    @staticmethod
    def _check_block(me):
        if me._block_trap:
            raise RuntimeError("this tasklet does not like to be blocked (block_trap is set)")

    def _check_thread(self, s):
        if self._waiters[0][0]._sched is not s:
            raise RuntimeError("channels work between tasklets of one OS thread")

    def _wake(self, s, me, woken, run_woken):
        """The partner ``woken`` found waiting becomes runnable. ``run_woken`` (it is the
        preferred side): it goes right after ``me`` and runs now, ``me`` is then at the end of
        the run queue (channels page: "the receiver will be activated immediately, and the
        sender is put at the end of the runnables list"). Otherwise it goes to the end and
        ``me`` goes on. ``schedule_all`` overrides: ``woken`` goes to the end, then ``me``
        schedules (goes to the end after it; the next runnable tasklet runs)."""
        q = s.runnables
        if self._schedule_all:
            if me not in q:
                q.appendleft(me)
            q.append(woken)
            q.make_head(me)
            q.rotate_head_to_back()
            _switch_to(s, q[0])
        elif run_woken:
            if me not in q:
                q.appendleft(me)
            q.insert_after(me, woken)
            q.make_head(woken)
            _switch_to(s, woken)
        else:
            q.append(woken)

    def _block(self, s, me, direction, value):
        q = s.runnables
        if me is not s.main or _others_runnable(q, me):
            _check_switch(s)  # (else: the main tasklet's deadlock error, no switch)
        self._waiters.append((me, value))
        self._balance += direction
        me._blocked_on = self
        if me in s.runnables:
            s.runnables.remove(me)
        try:
            _resume_next(s, me)
        except BaseException:
            # Killed, thrown into or deadlocked while waiting: leave the channel.
            if me._blocked_on is self:
                _unblock(me)
            if me not in s.runnables:
                s.runnables.appendleft(me)
            raise

    # iteration

    def __iter__(self):
        return self

    def __next__(self):
        """Receives the next value; stops when the channel is closed (or a StopIteration is
        sent)."""
        if self.closed:
            raise StopIteration
        try:
            return self.receive()
        except _ChannelClosed:
            raise StopIteration from None

    def __repr__(self):
        return "<%s balance=%d%s at 0x%x>" % (
            type(self).__name__,
            self._balance,
            " closing" if self.closing else "",
            id(self),
        )

