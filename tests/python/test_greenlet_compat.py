"""The drop-in `greenlet` distribution (python/greenlet-compat): its package re-exports uthread,
its `_greenlet` module has what greenlet's test suite uses, and its version satisfies greenlet 3
requirements. ci/python.sh installs it next to uthread."""

import importlib.metadata

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
