"""Guido van Rossum's uthread API, on top of the greenlet layer.

``new(func, *args, **kwargs)`` makes a uthread poised to call ``func``; ``u.switch(value)`` runs
it; when ``func`` returns, the uthread that most recently switched into it is resumed with the
result (the *resume rule*), or, if that one cannot run any more, the one that most recently
switched into *it*, and so on down to the thread's main uthread.

How it maps onto greenlets: a uthread made by :func:`new` is a greenlet whose parent is the
thread's main greenlet while it runs, so parent chains never form cycles. Every switch into a
greenlet records the switcher (weakly: an abandoned pair of uthreads that switched into each
other must still be collectable) as that greenlet's *resumer*. Just before ``func``'s result or
exception leaves the uthread, the resume rule picks the target and the greenlet's parent is set
to it, so greenlet's own parent rule delivers the value (or raises the exception) there.
"""

import threading
import weakref

from uthread._uthread import GreenletExit, error, getcurrent, greenlet

__all__ = ["UThread", "new", "current"]

# Stored in a greenlet's __dict__: a weak reference to the greenlet that most recently switched
# into it (any greenlet: a plain one or the main greenlet can be switched into through the API).
_RESUMER = "_uthread_resumer"
# Stored in a plain greenlet's __dict__: the UThread that stands for it (see current()).
_ADOPTED = "_uthread_adopted"

_local = threading.local()


def _main_greenlet():
    """The main greenlet of the calling OS thread."""
    main = getattr(_local, "main", None)
    if main is None or main.dead:
        g = getcurrent()
        while g.parent is not None:
            g = g.parent
        main = _local.main = g
    return main


def _record_resumer(target, switcher):
    target.__dict__[_RESUMER] = weakref.ref(switcher)


def _resume_target(finishing):
    """The resume rule: the greenlet that most recently switched into ``finishing``, skipping
    those that can no longer run (dead, or ``finishing`` itself, which is about to end); a
    resumer chain that loops or ends falls back to the thread's main greenlet."""
    seen = {id(finishing)}
    g = finishing
    while True:
        ref = g.__dict__.get(_RESUMER)
        nxt = ref() if ref is not None else None
        if nxt is None or id(nxt) in seen:
            return _main_greenlet()
        if not nxt.dead:
            return nxt
        seen.add(id(nxt))
        g = nxt


class UThread:
    """A micro-thread of Guido van Rossum's uthread API (made by :func:`new`; the running one
    is :func:`current`). Only ``switch``, ``kill`` and ``runnable`` are part of the API."""

    __slots__ = ()

    def _greenlet(self):
        raise NotImplementedError

    def switch(self, value=None):
        """Pauses the calling uthread and resumes this one, whose pending ``switch()`` returns
        ``value`` (a uthread not started yet calls its function). Returns the value the caller
        is later resumed with. Switching to the running uthread returns ``value`` at once.
        Raises :class:`uthread.error` if this uthread is no longer runnable or belongs to
        another OS thread."""
        g = self._greenlet()
        me = getcurrent()
        if g is me:
            return value
        _check_switchable(g)
        _record_resumer(g, me)
        del me  # this frame stays on the caller's stack while it waits: no strong self-reference
        return greenlet.switch(g, value)

    def kill(self, exc=None):
        """Makes this uthread's pending ``switch()`` raise ``exc`` (default
        :class:`uthread.GreenletExit`) and runs it until it switches away or ends; returns the
        value the caller is resumed with (None when the uthread ends by ``GreenletExit``). A
        uthread not started yet ends without running. Killing the running uthread raises
        ``exc`` right here. Raises :class:`uthread.error` if it is no longer runnable."""
        g = self._greenlet()
        if exc is None:
            exc = GreenletExit
        me = getcurrent()
        if g is me:
            raise exc
        _check_switchable(g)
        if not g and not g.dead:
            # Never started: it ends unrun. greenlet's throw() into an unstarted greenlet ends
            # it at once and hands the exception to its parent: make that parent the caller.
            g.parent = me
            g.__dict__["_uthread_killed"] = True
            greenlet.throw(g, GreenletExit)
            return None
        g.__dict__["_uthread_killed"] = True
        _record_resumer(g, me)
        del me
        return greenlet.throw(g, exc)

    @property
    def runnable(self):
        """True while this uthread can be switched to: it has not finished (nor been killed or
        released with its thread)."""
        g = self._greenlet()
        return g is not None and not g.dead

    def __repr__(self):
        g = self._greenlet()
        state = "runnable" if g is not None and not g.dead else "finished"
        return "<%s %s at 0x%x>" % (type(self).__name__, state, id(self))


def _check_switchable(g):
    if g is None or g.dead:
        raise error("cannot switch to a uthread that is no longer runnable")
    # An unstarted greenlet belongs to the thread of its parent chain; greenlet itself refuses
    # a switch into another thread's started greenlet.
    owner = g.__dict__.get("_uthread_thread")
    if owner is not None and owner != threading.get_ident():
        raise error("cannot switch to a uthread of another OS thread")


class _Spawned(UThread, greenlet):
    """A uthread made by :func:`new`: a greenlet running ``func(*args, **kwargs)``."""

    __slots__ = ()

    def __init__(self, func, args, kwargs):
        # The body refers to the uthread weakly: a suspended greenlet is invisible to the cyclic
        # GC, so a strong reference from its own stack would keep it alive forever.
        greenlet.__init__(self, _body(weakref.ref(self), func, args, kwargs), _main_greenlet())
        self.__dict__["_uthread_thread"] = threading.get_ident()

    def _greenlet(self):
        return self

    def _retarget(self):
        target = _resume_target(self)
        while True:
            try:
                self.parent = target
                return
            except ValueError:
                # A plain greenlet whose parent chain contains this uthread: skip it.
                target = _resume_target(target) if target is not _main_greenlet() else None
                if target is None:
                    return

    # greenlet's switch/throw stay reachable as greenlet.switch(u, ...) for code that mixes APIs;
    # on a UThread, switch() is Guido's (one value, None by default).
    switch = UThread.switch


def _body(me, func, args, kwargs):
    """The greenlet ``run`` of a uthread ``me()`` (a weak reference): calls ``func`` and applies
    the resume rule to its result or exception. While the uthread runs it is the thread's current
    greenlet, so ``me()`` is alive whenever this looks."""

    def run(*_ignored):
        try:
            result = func(*args, **kwargs)
        except GreenletExit:
            u = me()
            if u is None or not u.__dict__.get("_uthread_killed"):
                # Thrown in by greenlet itself (the uthread was collected while suspended):
                # greenlet has already chosen where it goes.
                raise
            u._retarget()
            return None
        except BaseException:
            me()._retarget()
            raise
        me()._retarget()
        return result

    return run


class _Adopted(UThread):
    """A UThread standing for a greenlet not made by :func:`new` (a thread's main greenlet, or
    a plain greenlet running Guido-API code). It refers to the greenlet weakly; the greenlet
    keeps it alive, so ``current()`` returns the same object every time."""

    __slots__ = ("_ref", "__weakref__")

    def __init__(self, g):
        self._ref = weakref.ref(g)

    def _greenlet(self):
        return self._ref()


def new(func, /, *args, **kwargs):
    """Returns a new uthread poised to call ``func(*args, **kwargs)``; it does not run until
    switched to. When ``func`` returns, the uthread that most recently switched into it is
    resumed with the result (if that one is no longer runnable, the one that most recently
    switched into it, and so on; finally the thread's main uthread); an exception that escapes
    ``func`` is raised there by the same rule."""
    if not callable(func):
        raise TypeError("uthread.new() needs a callable, got %r" % (func,))
    return _Spawned(func, args, kwargs)


def current():
    """Returns the running uthread (each OS thread has its own main uthread)."""
    g = getcurrent()
    if isinstance(g, UThread):
        return g
    adopted = g.__dict__.get(_ADOPTED)
    if adopted is None:
        adopted = g.__dict__[_ADOPTED] = _Adopted(g)
    return adopted
