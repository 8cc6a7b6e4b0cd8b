"""The package: API surface, greenlet 3's instance layout (for C subclasses), subclassing,
pickling refusal, docstrings and stubs."""

import copy
import pathlib
import pickle
import struct
import weakref

import pytest

import uthread
from uthread import getcurrent, greenlet

PTR = struct.calcsize("P")


def test_instance_layout_matches_greenlet_h():
    # PyObject_HEAD, weakreflist, dict, pimpl.
    assert greenlet.__basicsize__ == 5 * PTR
    assert greenlet.__weakrefoffset__ == 2 * PTR
    assert greenlet.__dictoffset__ == 3 * PTR
    assert greenlet.__itemsize__ == 0


def test_type_is_subclassable_and_gc():
    import gc

    class Sub(greenlet):
        __slots__ = ("extra",)

    s = Sub(lambda: "sub")
    s.extra = 1
    s.other = 2
    assert gc.is_tracked(s)
    assert s.switch() == "sub"
    assert Sub.__basicsize__ > greenlet.__basicsize__


def test_weakrefs_and_dict():
    g = greenlet()
    r = weakref.ref(g)
    assert r() is g
    g.x = 1
    assert g.__dict__ == {"x": 1}
    g.__dict__ = {"y": 2}
    assert g.y == 2
    with pytest.raises(TypeError):
        g.__dict__ = 3
    with pytest.raises(TypeError):
        del g.__dict__


def test_cannot_pickle_or_copy():
    g = greenlet()
    with pytest.raises(TypeError, match="cannot serialize"):
        pickle.dumps(g)
    with pytest.raises(TypeError):
        copy.copy(g)
    with pytest.raises(TypeError):
        copy.deepcopy(g)


def test_abstract_subclass_refused():
    import abc

    class Base(greenlet, metaclass=abc.ABCMeta):
        @abc.abstractmethod
        def run(self):
            ...

    with pytest.raises(TypeError):
        Base()

    class Concrete(Base):
        def run(self):
            return "ok"

    assert Concrete().switch() == "ok"


def test_public_api():
    for name in ("greenlet", "getcurrent", "GreenletExit", "error", "settrace", "gettrace",
                 "stack_size", "get_pending_cleanup_count", "get_total_main_greenlets",
                 "__version__"):
        assert hasattr(uthread, name), name
    assert set(uthread.__all__) <= set(dir(uthread))
    assert isinstance(uthread.__version__, str) and uthread.__version__.count(".") == 2
    assert uthread.GREENLET_USE_GC and uthread.GREENLET_USE_TRACING
    assert uthread.GREENLET_USE_CONTEXT_VARS


def test_docstrings_on_public_names():
    for name in uthread.__all__:
        if name == "__version__":
            continue
        assert getattr(uthread, name).__doc__, name
    for attr in ("switch", "throw", "run", "parent", "gr_frame", "gr_context", "dead"):
        assert getattr(greenlet, attr).__doc__, attr
    assert uthread.__doc__


def test_stubs_and_marker_are_installed():
    pkg = pathlib.Path(uthread.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "__init__.pyi").read_text()
    for name in uthread.__all__:
        assert name in stub, name


def test_getcurrent_is_stable_and_typed():
    a, b = getcurrent(), getcurrent()
    assert a is b and type(a) is greenlet
    assert isinstance(greenlet(lambda: getcurrent()).switch(), greenlet)


def test_init_argument_errors():
    with pytest.raises(TypeError):
        greenlet(1, 2, 3)
    with pytest.raises(TypeError):
        greenlet(bogus=1)


def test_stubs_match_the_module():
    """mypy's stubtest: every name, signature and class in __init__.pyi and in _uthread.pyi (the
    native module, private names included; stubtest walks the package's submodules) matches the
    module."""
    import subprocess
    import sys

    pytest.importorskip("mypy")
    p = subprocess.run([sys.executable, "-m", "mypy.stubtest", "uthread"], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
