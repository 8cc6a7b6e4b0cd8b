"""greenlet._greenlet, drop-in: the module greenlet's C extension provides, here uthread's.

Exactly the names greenlet 3.5.6's ``_greenlet`` has (``dir()``, dunders aside), each uthread's
object of that name: the API, the cleanup counters greenlet's test suite reads
(``get_pending_cleanup_count()``, ``get_total_main_greenlets()``), the optional-cleanup controls,
greenlet's test helpers ``UnswitchableGreenlet``, ``set_thread_local`` and (before CPython 3.13,
as in greenlet) ``get_tstate_trash_delete_nesting``, and the C API capsule ``_C_API``
(``greenlet.h``). uthread's own names (``stack_size``, ``DEFAULT_STACK_SIZE``, the ``_preempt_*``
hook of uthread.stackless) stay in ``uthread._uthread``. None of greenlet's are missing;
tests/python/test_greenlet_compat.py holds the list to this.
"""

import sys

from uthread import _uthread as _impl

# greenlet 3.5.6's `_greenlet` names, as its dir() lists them on CPython 3.10-3.12; on 3.13 it has
# no get_tstate_trash_delete_nesting (nor has uthread).
_GREENLET_NAMES = (
    "CLOCKS_PER_SEC",
    "GREENLET_USE_CONTEXT_VARS",
    "GREENLET_USE_GC",
    "GREENLET_USE_STANDARD_THREADING",
    "GREENLET_USE_TRACING",
    "GreenletExit",
    "UnswitchableGreenlet",
    "_C_API",
    "enable_optional_cleanup",
    "error",
    "get_clocks_used_doing_optional_cleanup",
    "get_pending_cleanup_count",
    "get_total_main_greenlets",
    "getcurrent",
    "gettrace",
    "greenlet",
    "set_thread_local",
    "settrace",
) + (("get_tstate_trash_delete_nesting",) if sys.version_info < (3, 13) else ())

globals().update({name: getattr(_impl, name) for name in _GREENLET_NAMES})
__uthread__ = _impl.__version__
del _impl, _GREENLET_NAMES, sys
