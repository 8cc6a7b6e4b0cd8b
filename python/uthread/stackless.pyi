"""Type stubs for uthread.stackless: Stackless Python's tasklets, channels and scheduler."""

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

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

TIMESLICE_CHECK_TICKS: int

# Dynamic module attributes (a module-level __getattr__), per thread.
current: tasklet
main: tasklet
runcount: int
threads: list[int]
uncollectables: list[tasklet]

class TaskletExit(SystemExit):
    """Raised in a tasklet by ``tasklet.kill()``; a tasklet that ends with it ends quietly.
    Derives from ``SystemExit``; also set as ``builtins.TaskletExit``."""

class bomb:
    """An exception in transit (what ``send_exception``/``send_throw`` carry)."""

    type: Any
    value: Any
    traceback: TracebackType | None
    def __init__(self, exc_type: Any = None, exc_value: Any = None, exc_tb: TracebackType | None = None) -> None: ...
    def raise_(self) -> None:
        """Raises the carried exception."""

class tasklet:
    """A micro-thread scheduled cooperatively by its thread's scheduler."""

    tempval: Any
    is_main: bool
    def __init__(
        self,
        func: Callable[..., Any] | None = None,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None: ...
    def bind(
        self,
        func: Callable[..., Any] | None = None,
        args: Iterable[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> tasklet:
        """Binds ``func`` (and, if given, its arguments)."""
    def setup(self, *args: Any, **kwargs: Any) -> tasklet:
        """Supplies the arguments and inserts the tasklet at the end of the run queue."""
    def __call__(self, *args: Any, **kwargs: Any) -> tasklet:
        """Same as ``setup``."""
    def insert(self) -> tasklet:
        """Inserts the tasklet at the end of the run queue."""
    def remove(self) -> tasklet:
        """Removes the tasklet from the run queue (it is then paused)."""
    def run(self) -> None:
        """Runs this tasklet now: the run queue turns to it; the caller keeps its place."""
    def switch(self) -> None:
        """Runs this tasklet at once; the caller is paused."""
    def kill(self, pending: bool = False) -> None:
        """Raises ``TaskletExit`` in the tasklet and runs it now (or, pending, when scheduled)."""
    def throw(
        self, exc: Any = None, val: Any = None, tb: TracebackType | None = None, pending: bool = False
    ) -> None:
        """Raises an exception in the tasklet where it waits."""
    def raise_exception(self, exc_class: type[BaseException], *args: Any) -> None:
        """Raises ``exc_class(*args)`` in the tasklet and runs it now."""
    def set_atomic(self, flag: bool) -> bool:
        """Sets whether the tasklet may be preempted; returns the previous value."""
    @property
    def atomic(self) -> bool:
        """True while the tasklet must not be preempted."""
    @property
    def block_trap(self) -> bool:
        """When True, an operation that would block the tasklet on a channel raises RuntimeError."""
    @block_trap.setter
    def block_trap(self, flag: bool) -> None: ...
    @property
    def next(self) -> tasklet | None:
        """The next tasklet in the run queue (a ring) or, while blocked, in the channel's queue."""
    @property
    def prev(self) -> tasklet | None:
        """The previous tasklet in the run queue (a ring) or, while blocked, in the channel's queue."""
    @property
    def alive(self) -> bool:
        """True from setup until the tasklet ends."""
    @property
    def blocked(self) -> bool:
        """True while the tasklet waits on a channel."""
    @property
    def scheduled(self) -> bool:
        """True while the tasklet is in the run queue or blocked on a channel."""
    @property
    def paused(self) -> bool:
        """True when the tasklet is alive but neither scheduled nor blocked."""
    @property
    def is_current(self) -> bool:
        """True for the running tasklet of its thread."""
    @property
    def thread_id(self) -> int:
        """Identifier of the OS thread the tasklet belongs to."""
    @property
    def restorable(self) -> bool:
        """Always False (tasklets cannot be pickled)."""

class channel:
    """A rendezvous point between tasklets of one OS thread."""

    closing: bool
    def __init__(self) -> None: ...
    @property
    def preference(self) -> int:
        """-1 prefer the receiver (default), 1 the sender, 0 neither; stored as the sign."""
    @preference.setter
    def preference(self, value: int) -> None: ...
    @property
    def schedule_all(self) -> bool:
        """When True, every send/receive that finds a partner schedules (overrides preference)."""
    @schedule_all.setter
    def schedule_all(self, value: int) -> None: ...
    @property
    def balance(self) -> int:
        """Senders waiting (positive) or receivers waiting (negative)."""
    @property
    def closed(self) -> bool:
        """True once the channel is closing and nobody waits on it."""
    @property
    def queue(self) -> tasklet | None:
        """The first tasklet waiting on the channel, or None."""
    def close(self) -> None:
        """Stops the channel from accepting new blocking operations."""
    def open(self) -> None:
        """Reopens a closing channel."""
    def send(self, value: Any) -> None:
        """Sends ``value`` to a receiver, blocking until one takes it."""
    def send_exception(self, exc_type: type[BaseException], *args: Any) -> None:
        """Makes a receiver raise ``exc_type(*args)``."""
    def send_throw(self, exc: Any, val: Any = None, tb: TracebackType | None = None) -> None:
        """Makes a receiver raise ``exc``."""
    def send_sequence(self, seq: Iterable[Any]) -> int:
        """Sends every item of ``seq``; returns how many were sent."""
    def receive(self) -> Any:
        """Receives a value, blocking until a sender brings one."""
    def __iter__(self) -> Iterator[Any]: ...
    def __next__(self) -> Any: ...

class atomic:
    """Context manager: the running tasklet cannot be preempted inside the block."""

    def __enter__(self) -> atomic: ...
    def __exit__(self, *exc: object) -> bool: ...

def getcurrent() -> tasklet:
    """Returns the running tasklet of this thread."""

def getmain() -> tasklet:
    """Returns this thread's main tasklet."""

def getruncount() -> int:
    """Number of tasklets in the run queue, the running one included."""

def schedule(retval: Any = ...) -> Any:
    """Moves the running tasklet to the end of the run queue and runs the next one; returns its
    tempval (``retval``, default the current tasklet, unless replaced meanwhile)."""

def schedule_remove(retval: Any = ...) -> Any:
    """Removes the running tasklet from the run queue and runs the next one; returns as
    ``schedule()``."""

def switch_trap(delta: int = 0) -> int:
    """Adds ``delta`` to this thread's switch trap level; returns the previous level."""

def set_channel_callback(
    callback: Callable[[channel, tasklet, bool, bool], object] | None,
) -> Callable[[channel, tasklet, bool, bool], object] | None:
    """Installs the channel callback (None removes it); returns the previous one."""

def get_channel_callback() -> Callable[[channel, tasklet, bool, bool], object] | None:
    """Returns the installed channel callback, or None."""

def set_schedule_callback(
    callback: Callable[[tasklet, tasklet], object] | None,
) -> Callable[[tasklet, tasklet], object] | None:
    """Installs the schedule callback (None removes it); returns the previous one."""

def get_schedule_callback() -> Callable[[tasklet, tasklet], object] | None:
    """Returns the installed schedule callback, or None."""

def get_thread_info(thread_id: int | None = None) -> tuple[tasklet | None, tasklet | None, int]:
    """``(main, current, runcount)`` of the thread with that id (default: this thread)."""

def run(
    timeout: int = 0,
    threadblock: bool = False,
    soft: bool = False,
    ignore_nesting: bool = False,
    totaltimeout: int = 0,
    timeslice: float | None = None,
) -> tasklet | None:
    """Runs the scheduler until the main tasklet is the only runnable one; with ``timeout``
    returns the interrupted tasklet."""
