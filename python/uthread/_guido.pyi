"""Type stubs for uthread._guido: Guido van Rossum's uthread API (re-exported by uthread)."""

from typing import Any, Callable

__all__ = ["UThread", "new", "current"]

class UThread:
    """A micro-thread of Guido van Rossum's uthread API (made by :func:`new`; the running one is
    :func:`current`)."""

    def switch(self, value: Any = None) -> Any:
        """Pauses the calling uthread and resumes this one, whose pending ``switch()`` returns
        ``value``; returns the value the caller is later resumed with."""
    def kill(self, exc: type[BaseException] | BaseException | None = None) -> Any:
        """Makes this uthread's pending ``switch()`` raise ``exc`` (default ``GreenletExit``) and
        runs it until it switches away or ends."""
    @property
    def runnable(self) -> bool:
        """True while this uthread can be switched to."""

def new(func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> UThread:
    """Returns a new uthread poised to call ``func(*args, **kwargs)`` (not running yet)."""

def current() -> UThread:
    """Returns the running uthread (each OS thread has its own main uthread)."""
