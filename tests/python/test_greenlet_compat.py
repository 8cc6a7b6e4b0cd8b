"""The drop-in `greenlet` distribution (python/greenlet-compat): its package re-exports uthread,
its `_greenlet` module has what greenlet's test suite uses, and its version satisfies greenlet 3
requirements. ci/python.sh installs it next to uthread."""

import importlib.metadata
import sys

import pytest

import uthread

greenlet = pytest.importorskip("greenlet")


def test_it_is_ours():
    assert greenlet.__uthread__ == uthread.__version__
    assert greenlet._greenlet.__uthread__ == uthread.__version__


def test_api_is_uthreads():
    for name in ("greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace"):
        assert getattr(greenlet, name) is getattr(uthread, name), name
    assert set(greenlet.__all__) <= set(dir(greenlet))
    for name in ("GREENLET_USE_GC", "GREENLET_USE_TRACING", "GREENLET_USE_CONTEXT_VARS", "CLOCKS_PER_SEC",
                 "enable_optional_cleanup", "get_clocks_used_doing_optional_cleanup"):
        assert getattr(greenlet, name) == getattr(uthread, name), name


# greenlet 3.5.6's `greenlet._greenlet`, dunders aside: sorted(dir()) of the real module (pip install
# greenlet==3.5.6) on CPython 3.11; on 3.13 it lacks get_tstate_trash_delete_nesting.
GREENLET_356_NAMES = {
    "CLOCKS_PER_SEC", "GREENLET_USE_CONTEXT_VARS", "GREENLET_USE_GC", "GREENLET_USE_STANDARD_THREADING",
    "GREENLET_USE_TRACING", "GreenletExit", "UnswitchableGreenlet", "_C_API", "enable_optional_cleanup", "error",
    "get_clocks_used_doing_optional_cleanup", "get_pending_cleanup_count", "get_total_main_greenlets",
    "get_tstate_trash_delete_nesting", "getcurrent", "gettrace", "greenlet", "set_thread_local", "settrace",
}
if sys.version_info >= (3, 13):
    GREENLET_356_NAMES.discard("get_tstate_trash_delete_nesting")


def test_greenlet_private_module_has_greenlets_names_only():
    """No uthread-private name (stack_size, DEFAULT_STACK_SIZE, _preempt_*) leaks into
    greenlet._greenlet, and none of greenlet's is missing; each is uthread's object."""
    from greenlet import _greenlet
    import uthread._uthread as native

    names = {n for n in dir(_greenlet) if not n.startswith("__")}
    assert names == GREENLET_356_NAMES
    for name in names:
        assert getattr(_greenlet, name) is getattr(native, name), name
    assert not {n for n in dir(native) if not n.startswith("__")} <= names   # it does hold more


def test_greenlet_private_module():
    from greenlet import _greenlet

    assert _greenlet.get_pending_cleanup_count() == uthread.get_pending_cleanup_count()
    assert _greenlet.get_total_main_greenlets() == uthread.get_total_main_greenlets() >= 1
    assert _greenlet.greenlet is uthread.greenlet
    assert issubclass(_greenlet.UnswitchableGreenlet, greenlet.greenlet)
    assert callable(_greenlet.set_thread_local)
    assert _greenlet.GREENLET_USE_STANDARD_THREADING
    # Module attributes can be set (greenlet's shutdown tests do).
    _greenlet.uthread_test_attribute = 1
    del _greenlet.uthread_test_attribute


def test_works_as_greenlet():
    from greenlet import getcurrent
    from greenlet import greenlet as green

    def body(x):
        return getcurrent().parent.switch(x * 2) + 1

    g = green(body)
    assert g.switch(21) == 42
    assert g.switch(1) == 2 and g.dead


def test_version_satisfies_greenlet_3_requirements():
    from packaging.requirements import Requirement
    from packaging.version import Version

    dist = importlib.metadata.distribution("greenlet")
    v = Version(dist.version)
    assert str(v) == dist.version == greenlet.__version__
    assert v.release == (3, 5, 6) and v.is_postrelease and v.local is None
    for spec in (">=3", ">=3.0", ">=3.1.1", "~=3.5", ">=3,<4", "!=3.0.0", "==3.*"):
        assert v in Requirement("greenlet" + spec).specifier, spec
    major, minor, patch = (int(x) for x in uthread.__version__.split("."))
    assert v.post == major * 10000 + minor * 100 + patch
    assert "uthread==" + uthread.__version__ in dist.requires
