"""greenlet, drop-in: greenlet 3's API on uthread.

This ``greenlet`` package is uthread's greenlet-compatible distribution: every name re-exports the
``uthread`` extension (stackful coroutines on the coro engine), so code written for greenlet 3
runs unchanged::

    from greenlet import greenlet, getcurrent

``greenlet.__uthread__`` (uthread's version) tells it apart from the original greenlet. What
differs from greenlet is listed in uthread's docs/python.md ("Differences from greenlet").
"""

from uthread import __version__ as __uthread__

# The version of this distribution: a post-release of the greenlet version whose API it
# implements (see pyproject.toml); the build checks that both agree.
__version__ = "3.5.6.post100"

__all__ = [
    "__version__",
    "_C_API",
    "GreenletExit",
    "error",
    "getcurrent",
    "greenlet",
    "gettrace",
    "settrace",
]

from ._greenlet import GreenletExit, error
from ._greenlet import getcurrent, greenlet
from ._greenlet import gettrace, settrace

# The C API: the capsule `greenlet._C_API` that `PyGreenlet_Import()` of greenlet.h (installed
# with this package: greenlet/greenlet.h) fetches. See uthread's docs/greenlet-compat.md.
from ._greenlet import _C_API  # noqa: F401

# Undocumented constants that greenlet exports too.
from ._greenlet import GREENLET_USE_CONTEXT_VARS  # noqa: F401
from ._greenlet import GREENLET_USE_GC  # noqa: F401
from ._greenlet import GREENLET_USE_TRACING  # noqa: F401
from ._greenlet import CLOCKS_PER_SEC  # noqa: F401
from ._greenlet import enable_optional_cleanup  # noqa: F401
from ._greenlet import get_clocks_used_doing_optional_cleanup  # noqa: F401
