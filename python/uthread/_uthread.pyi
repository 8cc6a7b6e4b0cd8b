"""Type stubs for uthread._uthread, the native module (python/src/lib.rs, preempt.rs): greenlet 3's
API on the coro engine. ``uthread`` (__init__.pyi) re-exports its public names; the rest are greenlet
``_greenlet``'s test support and uthread.stackless's preemption hook. Checked by mypy's stubtest
(tests/python/test_module.py)."""

import sys
from contextvars import Context
from types import FrameType, TracebackType
from typing import Any, Callable, Final, Literal, Protocol

from typing_extensions import disjoint_base

__all__ = [
    "greenlet",
    "UnswitchableGreenlet",
    "GreenletExit",
    "_C_API",
    "error",
    "getcurrent",
    "_preempt_tick",
    "_preempt_arm",
    "_preempt_disarm",
    "_preempt_reset",
    "_preempt_state",
    "_preempt_defer",
    "settrace",
    "gettrace",
    "get_pending_cleanup_count",
    "get_total_main_greenlets",
    "stack_size",
    "set_thread_local",
    "enable_optional_cleanup",
    "get_clocks_used_doing_optional_cleanup",
    "GREENLET_USE_GC",
    "GREENLET_USE_TRACING",
    "GREENLET_USE_CONTEXT_VARS",
    "GREENLET_USE_STANDARD_THREADING",
    "CLOCKS_PER_SEC",
    "DEFAULT_STACK_SIZE",
    "__version__",
]
if sys.version_info < (3, 13):
    __all__ += ["get_tstate_trash_delete_nesting"]

__version__: Final[str]

GREENLET_USE_GC: Final[bool]
GREENLET_USE_TRACING: Final[bool]
GREENLET_USE_CONTEXT_VARS: Final[bool]
GREENLET_USE_STANDARD_THREADING: Final[bool]
CLOCKS_PER_SEC: Final[int]
DEFAULT_STACK_SIZE: Final[int]

class GreenletExit(BaseException):
    """Raised in a greenlet to make it exit; returned (not raised) to the parent when it ends one."""

class error(Exception):
    """An invalid switch: to a greenlet of another thread, or one that can never run again."""

@disjoint_base
class greenlet:
    """A micro-thread: ``run`` executes on its own stack when the greenlet is first switched to."""

    getcurrent: Callable[[], greenlet]
    error: type[error]
    GreenletExit: type[GreenletExit]
    settrace: Callable[[_TraceFunc | None], _TraceFunc | None]
    gettrace: Callable[[], _TraceFunc | None]

    def __init__(
        self, run: Callable[..., Any] | None = None, parent: greenlet | None = None, *, copying: bool | None = None
    ) -> None:
        """Creates a greenlet (it does not run until switched to); ``parent`` defaults to the
        current greenlet. ``copying=True`` runs it in copying mode: on a stack shared with the
        thread's other copying greenlets, keeping only the used part (on the heap) while it is
        switched out (denser; see docs/stacks.md)."""
    def switch(self, *args: Any, **kwargs: Any) -> Any:
        """Suspends the current greenlet and runs this one; returns what the next switch back
        brings (``()``, the single argument, the tuple, the kwargs dict, or ``(args, kwargs)``)."""
    def throw(
        self,
        typ: type[BaseException] | BaseException = ...,
        val: object = None,
        tb: TracebackType | None = None,
        /,
    ) -> Any:
        """Switches to this greenlet and raises the exception (default ``GreenletExit``) in it."""
    @property
    def run(self) -> Callable[..., Any]:
        """The callable run at the start; only available (and settable) before the start."""
    @run.setter
    def run(self, value: Callable[..., Any] | None) -> None: ...
    @run.deleter
    def run(self) -> None: ...
    @property
    def parent(self) -> greenlet | None:
        """The greenlet that receives the result (or exception) when this one finishes;
        None for a thread's main greenlet."""
    @parent.setter
    def parent(self, value: greenlet) -> None: ...
    @property
    def dead(self) -> bool:
        """True once the greenlet has finished (or can never run again)."""
    @property
    def gr_frame(self) -> FrameType | None:
        """The innermost frame of a suspended greenlet; None while it runs, before it starts
        and after it ends."""
    @property
    def gr_context(self) -> Context | None:
        """The contextvars context the greenlet runs in (None until one is created or set)."""
    @gr_context.setter
    def gr_context(self, value: Context | None) -> None: ...
    @property
    def _stack_saved(self) -> int:
        """Bytes of stack a suspended greenlet of this thread is using (greenlet: bytes of C stack
        copied to the heap); 0 while it runs, before it starts and after it ends."""
    def __bool__(self) -> bool:
        """True while the greenlet is active: started and not dead."""
    def __getstate__(self) -> Any:
        """Greenlets cannot be pickled or copied: raises TypeError."""
    __dict__: dict[str, Any]

class _TraceFunc(Protocol):
    def __call__(self, event: Literal["switch", "throw"], args: tuple[greenlet, greenlet], /) -> object: ...

def getcurrent() -> greenlet:
    """Returns the greenlet running on this thread (its main greenlet when no other runs)."""

def settrace(callback: _TraceFunc | None) -> _TraceFunc | None:
    """Sets this thread's switch trace function (None removes it); returns the previous one."""

def gettrace() -> _TraceFunc | None:
    """Returns this thread's switch trace function, or None."""

def stack_size(size: int | None = None) -> int:
    """Returns the stack size for greenlets started from now on; with ``size`` (0: the default
    of 8 MiB), sets it and returns the previous value."""

def get_pending_cleanup_count() -> int:
    """Number of exited threads whose greenlets still wait to be released."""

def get_total_main_greenlets() -> int:
    """Number of main greenlets alive (one per thread that used greenlets)."""

def enable_optional_cleanup(flag: bool) -> None:
    """Enables (the default) or disables greenlet's optional cleanup of main greenlets of exited
    threads that only frames which can never run again still refer to."""

def get_clocks_used_doing_optional_cleanup() -> int | None:
    """Processor time spent in the optional cleanup (1/CLOCKS_PER_SEC s units); None while it
    is disabled."""

# ---- test support, as in greenlet's ``_greenlet`` -------------------------------------------------

class UnswitchableGreenlet(greenlet):
    """A greenlet whose ``force_switch_error`` attribute, when true, makes every switch into it fail
    as a refused engine switch does: ``SystemError``, nothing runs, and a greenlet that could not
    be started is dead."""

    force_switch_error: bool

def set_thread_local(key: object, value: object) -> None:
    """Stores ``value`` under ``key`` in this thread's interpreter thread-state dictionary."""

if sys.version_info < (3, 13):
    def get_tstate_trash_delete_nesting() -> int:
        """The running uthread's trash-can nesting depth (0 outside deallocation chains)."""

# greenlet's C API (greenlet.h): the capsule ``greenlet._C_API`` (python/src/capi.rs).
_C_API: Final[object]

# ---- uthread.stackless's preemption hook (python/src/preempt.rs) --------------------------------

def _preempt_tick(*args: object) -> object:
    """The preemption hook's sys.monitoring callback (counts one tick)."""

def _preempt_arm(handler: Callable[[], object], ticks: int, timeslice: float = 0.0) -> None:
    """Arms preemption on this thread: ``handler`` is called at a safe point after ``ticks``
    ticks (and, with ``timeslice`` > 0, no sooner than that many seconds)."""

def _preempt_disarm() -> None:
    """Disarms this thread's preemption (nothing if it is not armed)."""

def _preempt_reset() -> None:
    """Restarts the tick count (and the timeslice) of this thread's preemption."""

def _preempt_defer(exc_class: type[BaseException]) -> None:
    """Records an exception class raised in the handler, to be raised later at a safe point."""

def _preempt_state() -> tuple[bool, int, bool]:
    """(armed, ticks left, pending) of this thread's preemption."""
