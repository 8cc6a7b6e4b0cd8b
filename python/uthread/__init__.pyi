"""Type stubs for uthread: greenlet-compatible micro-threads (the native names are defined in
_uthread.pyi)."""

from uthread._uthread import (
    CLOCKS_PER_SEC as CLOCKS_PER_SEC,
    DEFAULT_STACK_SIZE as DEFAULT_STACK_SIZE,
    GREENLET_USE_CONTEXT_VARS as GREENLET_USE_CONTEXT_VARS,
    GREENLET_USE_GC as GREENLET_USE_GC,
    GREENLET_USE_STANDARD_THREADING as GREENLET_USE_STANDARD_THREADING,
    GREENLET_USE_TRACING as GREENLET_USE_TRACING,
    GreenletExit as GreenletExit,
    __version__ as __version__,
    enable_optional_cleanup as enable_optional_cleanup,
    error as error,
    get_clocks_used_doing_optional_cleanup as get_clocks_used_doing_optional_cleanup,
    get_pending_cleanup_count as get_pending_cleanup_count,
    get_total_main_greenlets as get_total_main_greenlets,
    getcurrent as getcurrent,
    gettrace as gettrace,
    greenlet as greenlet,
    settrace as settrace,
    stack_size as stack_size,
)

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

# Guido van Rossum's uthread API (uthread/_guido.py)
from uthread._guido import UThread as UThread, current as current, new as new
