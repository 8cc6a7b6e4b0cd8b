"""uthread: greenlet-compatible micro-threads for CPython.

A ``greenlet`` is a micro-thread: a function running on its own stack that is suspended and
resumed explicitly with :meth:`greenlet.switch`, all inside one OS thread. The API and the
semantics are greenlet 3's::

    from uthread import greenlet, getcurrent

    def consumer():
        while True:
            item = getcurrent().parent.switch()   # wait for the next item
            print("got", item)

    c = greenlet(consumer)
    c.switch()          # start it: runs until its first switch back
    c.switch("spam")    # prints "got spam"

Every greenlet runs on its own stack from the coro engine (8 MiB reserved, touched lazily; see
:func:`stack_size`), and its interpreter state (frames, recursion depth, ``sys.exc_info()``,
contextvars context) is saved and restored on every switch.
"""

from uthread._uthread import (
    CLOCKS_PER_SEC,
    DEFAULT_STACK_SIZE,
    GREENLET_USE_CONTEXT_VARS,
    GREENLET_USE_GC,
    GREENLET_USE_STANDARD_THREADING,
    GREENLET_USE_TRACING,
    GreenletExit,
    __version__,
    enable_optional_cleanup,
    error,
    get_clocks_used_doing_optional_cleanup,
    get_pending_cleanup_count,
    get_total_main_greenlets,
    getcurrent,
    gettrace,
    greenlet,
    settrace,
    stack_size,
)
from uthread._guido import UThread, current, new  # Guido van Rossum's uthread API (docs/python.md)

__all__ = [
    "__version__",
    "GreenletExit",
    "error",
    "getcurrent",
    "greenlet",
    "gettrace",
    "settrace",
    "stack_size",
    "get_pending_cleanup_count",
    "get_total_main_greenlets",
    "UThread",
    "current",
    "new",
]
