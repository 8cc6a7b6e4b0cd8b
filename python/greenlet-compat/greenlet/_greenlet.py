"""greenlet._greenlet, drop-in: the module greenlet's C extension provides, here uthread's.

Everything greenlet's ``_greenlet`` offers that uthread supports: the API, the cleanup counters
greenlet's test suite reads (``get_pending_cleanup_count()``, ``get_total_main_greenlets()``), the
optional-cleanup controls, and greenlet's test helpers ``UnswitchableGreenlet`` and
``set_thread_local``, and the C API capsule ``_C_API`` (``greenlet.h``). Not provided:
``get_tstate_trash_delete_nesting`` (see uthread's docs/python.md).
"""

from uthread import _uthread as _impl

# Every public name of uthread's extension module, under the same name.
globals().update({name: getattr(_impl, name) for name in dir(_impl) if not name.startswith("__")})
__uthread__ = _impl.__version__
del _impl
