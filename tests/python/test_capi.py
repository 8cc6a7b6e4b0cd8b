"""greenlet's C API (binary compatibility): the `greenlet._C_API` capsule, the instance layout, and the
greenlet.h the drop-in greenlet wheel installs.

tests/capi_ext/capi_probe.c is compiled here, at test time, against the installed header (the
copy pip puts in <prefix>/include/site/pythonX.Y/greenlet/, where greenlet's wheel puts it) with
-Wall -Wextra -Wpedantic -Werror, and calls every capsule entry through the header's macros,
the error cases included; it also defines `Sub`, a C subtype with fields after PyGreenlet.
"""

import gc
import os
import pathlib
import struct
import subprocess
import sys
import sysconfig
import threading
import weakref

import pytest

import uthread
from conftest import run_in_thread
from uthread import GreenletExit, getcurrent, greenlet

greenlet_pkg = pytest.importorskip("greenlet")

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROBE_SRC = ROOT / "tests" / "capi_ext" / "capi_probe.c"
PTR = struct.calcsize("P")


def site_include_dir():
    """Where pip installs a distribution's `headers` (greenlet's wheel puts greenlet.h there)."""
    return pathlib.Path(sysconfig.get_path("include", vars={"installed_base": sys.prefix})).parent / "site" / \
        ("python%d.%d" % sys.version_info[:2])


def test_header_installed_where_greenlets_wheel_puts_it():
    pkg_header = pathlib.Path(greenlet_pkg.__file__).with_name("greenlet.h")
    site_header = site_include_dir() / "greenlet" / "greenlet.h"
    assert pkg_header.is_file()
    assert site_header.is_file(), site_header
    assert pkg_header.read_bytes() == site_header.read_bytes()
    assert b"uthread" in pkg_header.read_bytes()  # ours, not greenlet's


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    out = tmp_path_factory.mktemp("capi") / ("_capi_probe" + sysconfig.get_config_var("EXT_SUFFIX"))
    cc = os.environ.get("CC", "cc")
    cmd = [cc, "-std=c11", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O1", "-fPIC", "-shared",
           # CPython's own headers are not -Wpedantic clean (Py_VISIT on 3.12): -isystem.
           "-isystem", sysconfig.get_path("include"), "-I" + str(site_include_dir()), str(PROBE_SRC), "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, "compiling the C API probe failed:\n%s\n%s" % (" ".join(cmd), r.stderr)
    import importlib.util

    spec = importlib.util.spec_from_file_location("_capi_probe", out)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_capsule_is_greenlets():
    import types

    cap = greenlet_pkg._C_API
    assert type(cap).__name__ == "PyCapsule"
    assert "greenlet._C_API" in repr(cap)
    assert greenlet_pkg._greenlet._C_API is cap is uthread._uthread._C_API
    assert isinstance(greenlet_pkg, types.ModuleType)


def test_table(probe):
    typ, err, exit_, n = probe.table()
    assert typ is greenlet and err is uthread.error and exit_ is GreenletExit
    assert n == 12


def test_layout(probe):
    size, weak, dict_, basicsize, weaklistoffset, dictoffset = probe.layout()
    assert (size, weak, dict_) == (PTR * 5, PTR * 2, PTR * 3)
    assert (basicsize, weaklistoffset, dictoffset) == (size, weak, dict_)
    assert greenlet.__basicsize__ == size
    assert greenlet.__weakrefoffset__ == weak
    assert greenlet.__dictoffset__ == dict_


def test_check(probe):
    assert probe.check(getcurrent())
    assert probe.check(probe.Sub())
    assert not probe.check(1)
    assert not probe.check(probe.NULL)


# ---- New ----------------------------------------------------------------------------------------

def test_new(probe):
    g = probe.new(lambda *a, **k: ("ran", a, k), probe.NULL)
    assert type(g) is greenlet and g.parent is getcurrent()
    assert not g and not g.dead
    assert g.switch(1, x=2) == ("ran", (1,), {"x": 2})
    assert sys.getrefcount(g) == 2


def test_new_without_run_and_with_parent(probe):
    parent = greenlet(lambda x: ("parent got", x))
    g = probe.new(probe.NULL, parent)
    assert g.parent is parent
    with pytest.raises(AttributeError):
        g.run
    g.run = lambda: 7
    # g's result starts its (unstarted) parent, whose result comes here.
    assert g.switch() == ("parent got", 7)


def test_new_errors(probe):
    with pytest.raises(TypeError, match="PyGreenlet_New: parent must be a greenlet, not int"):
        probe.new(lambda: None, 3)


# ---- GetCurrent -----------------------------------------------------------------------------------

def test_getcurrent(probe):
    main = getcurrent()
    assert probe.getcurrent() is main
    g = greenlet(lambda: probe.getcurrent())
    assert g.switch() is g
    refs = sys.getrefcount(main)
    for _ in range(100):
        probe.getcurrent()
    assert sys.getrefcount(main) == refs


# ---- Switch -----------------------------------------------------------------------------------

def test_switch_packing(probe):
    def echo(*a, **k):
        while True:
            a, k = (getcurrent().parent.switch((a, k)), {})

    g = greenlet(echo)
    assert probe.switch(g, (1, 2), {"k": 3}) == ((1, 2), {"k": 3})
    # A suspended greenlet gets greenlet's packing of what the switch carries.
    assert probe.switch(g, (5,), probe.NULL) == (5, {})
    assert probe.switch(g, probe.NULL, probe.NULL) == ((), {})
    assert probe.switch(g, (), {"a": 1}) == ({"a": 1}, {})
    assert probe.switch(g, (1, 2), {"a": 1}) == (((1, 2), {"a": 1}), {})
    # kwargs that are not a dict count as none (greenlet's rule).
    assert probe.switch(g, (6,), [1]) == (6, {})


def test_switch_result_refcount(probe):
    for _ in range(50):
        r = probe.switch(greenlet(object), probe.NULL, probe.NULL)
        assert sys.getrefcount(r) == 2


def test_switch_errors(probe):
    with pytest.raises(TypeError, match="PyGreenlet_Switch: the greenlet argument must be a greenlet, not str"):
        probe.switch("nope", probe.NULL, probe.NULL)
    with pytest.raises(TypeError, match="not NULL"):
        probe.switch(probe.NULL, probe.NULL, probe.NULL)
    with pytest.raises(TypeError, match="args must be a tuple or NULL, not list"):
        probe.switch(greenlet(lambda: None), [1], probe.NULL)


def test_switch_raises_what_the_greenlet_raises(probe):
    def boom():
        raise KeyError("k")

    with pytest.raises(KeyError):
        probe.switch(greenlet(boom), probe.NULL, probe.NULL)


def test_switch_to_another_threads_greenlet(probe):
    holder = {}

    def body():
        g = greenlet(lambda: getcurrent().parent.switch())
        g.switch()
        holder["g"] = g

    t = threading.Thread(target=body)
    t.start()
    t.join()
    with pytest.raises(uthread.error):
        probe.switch(holder["g"], probe.NULL, probe.NULL)
    with pytest.raises(uthread.error):
        probe.throw(holder["g"], ValueError, probe.NULL, probe.NULL)
    del holder["g"]
    gc.collect()


def test_switch_from_live_other_thread(probe):
    """A greenlet of a thread that is still running: greenlet.error, nothing changes."""
    ready, done = threading.Event(), threading.Event()
    holder = {}

    def body():
        g = greenlet(lambda: getcurrent().parent.switch())
        g.switch()
        holder["g"] = g
        ready.set()
        done.wait(10)
        g.throw()

    t = threading.Thread(target=body)
    t.start()
    assert ready.wait(10)
    try:
        with pytest.raises(uthread.error, match="different thread"):
            probe.switch(holder["g"], (1,), probe.NULL)
        assert probe.started(holder["g"]) == 1 and probe.active(holder["g"]) == 1
        assert probe.main(holder["g"]) == 0
    finally:
        done.set()
        t.join()
    del holder["g"]


def test_c_frame_suspended_between_switches(probe):
    def gen():
        getcurrent().parent.switch("one")
        getcurrent().parent.switch("two")

    g = greenlet(gen)
    c = greenlet(lambda: probe.switch_twice(g))
    assert c.switch() == "one"
    # c's C frame (probe_switch_twice) is suspended; g too. Resume g, then c's C frame.
    assert c.switch("to-c") == "two"


# ---- Throw -----------------------------------------------------------------------------------

def test_throw(probe):
    seen = []

    def body():
        try:
            getcurrent().parent.switch()
        except ValueError as e:
            seen.append(str(e))
            return "caught"

    g = greenlet(body)
    g.switch()
    assert probe.throw(g, ValueError, "msg", probe.NULL) == "caught"
    assert seen == ["msg"] and g.dead


def test_throw_instance_and_default_value(probe):
    g = greenlet(lambda: getcurrent().parent.switch())
    g.switch()
    exc = KeyError("inst")
    with pytest.raises(KeyError) as info:
        probe.throw(g, exc, probe.NULL, probe.NULL)
    assert info.value is exc
    g2 = greenlet(lambda: getcurrent().parent.switch())
    g2.switch()
    r = probe.throw(g2, GreenletExit, probe.NULL, probe.NULL)
    assert isinstance(r, GreenletExit) and g2.dead


def test_throw_errors(probe):
    g = getcurrent()
    with pytest.raises(TypeError, match="PyGreenlet_Throw: the greenlet argument must be a greenlet, not int"):
        probe.throw(5, ValueError, probe.NULL, probe.NULL)
    with pytest.raises(TypeError, match="exception type is NULL"):
        probe.throw(g, probe.NULL, probe.NULL, probe.NULL)
    with pytest.raises(TypeError, match="exceptions must be classes, or instances, not str"):
        probe.throw(g, "abc", probe.NULL, probe.NULL)
    with pytest.raises(TypeError, match="instance exception may not have a separate value"):
        probe.throw(g, Exception(), BaseException(), probe.NULL)
    with pytest.raises(TypeError, match="third argument must be a traceback object"):
        probe.throw(g, Exception, Exception(), object())


# ---- SetParent ---------------------------------------------------------------------------------

def test_setparent(probe):
    a = greenlet(lambda: "a")
    b = greenlet(lambda: getcurrent().parent)
    assert probe.setparent(b, a) == 0
    assert b.parent is a
    assert probe.get_parent(b) is a


def test_setparent_errors(probe):
    a = greenlet(lambda: None)
    with pytest.raises(TypeError, match="the greenlet argument must be a greenlet, not NULL"):
        probe.setparent(probe.NULL, a)
    with pytest.raises(TypeError, match="the new parent must be a greenlet, not NULL"):
        probe.setparent(a, probe.NULL)
    with pytest.raises(TypeError, match="the new parent must be a greenlet, not str"):
        probe.setparent(a, "x")
    with pytest.raises(ValueError, match="cyclic parent chain"):
        probe.setparent(a, a)
    with pytest.raises(AttributeError):
        probe.setparent(getcurrent(), a)
    other_main = run_in_thread(getcurrent)
    started = greenlet(lambda: getcurrent().parent.switch())
    started.switch()
    with pytest.raises(ValueError):
        probe.setparent(started, other_main)
    started.throw()


# ---- MAIN, STARTED, ACTIVE, GET_PARENT ---------------------------------------------------------

def test_flags(probe):
    main = getcurrent()
    assert (probe.main(main), probe.started(main), probe.active(main)) == (1, 1, 1)
    g = greenlet(lambda: getcurrent().parent.switch())
    assert (probe.main(g), probe.started(g), probe.active(g)) == (0, 0, 0)
    g.switch()
    assert (probe.main(g), probe.started(g), probe.active(g)) == (0, 1, 1)
    g.switch()
    assert (probe.main(g), probe.started(g), probe.active(g)) == (0, 1, 0)


@pytest.mark.parametrize("name", ["main", "started", "active", "get_parent", "get_parent_old_name"])
def test_flag_errors(probe, name):
    fn = getattr(probe, name)
    label = {"main": "MAIN", "started": "STARTED", "active": "ACTIVE"}.get(name, "GET_PARENT")
    with pytest.raises(TypeError, match="PyGreenlet_%s: the greenlet argument must be a greenlet, not list" % label):
        fn([])
    with pytest.raises(TypeError, match="not NULL"):
        fn(probe.NULL)


def test_get_parent(probe):
    main = getcurrent()
    # A main greenlet has no parent: NULL without an exception.
    assert probe.get_parent(main) is probe.NULL
    assert probe.get_parent_old_name(main) is probe.NULL
    g = greenlet(lambda: None)
    refs = sys.getrefcount(main)
    assert probe.get_parent(g) is main
    assert sys.getrefcount(main) == refs


# ---- A C subtype with fields after PyGreenlet ---------------------------------------------------

def test_c_subtype(probe):
    Sub = probe.Sub
    assert issubclass(Sub, greenlet) and Sub.__basicsize__ > greenlet.__basicsize__
    log = []

    def run(x):
        me = getcurrent()
        log.append(me.fields())
        me.bump()
        y = me.parent.switch(x * 2)
        log.append(me.bump())
        return y + 1

    s = Sub(run)
    s.payload = [1, 2, 3]
    s.extra = "in the instance dict"
    assert s.fields() == (0x0DDBA11, 0.5, "uthread-sub")
    assert s.switch(21) == 42
    assert s.switch(1) == 2
    assert s.dead
    assert log == [(0x0DDBA11, 0.5, "uthread-sub"), 2.0]
    assert s.fields() == (0x0DDBA11, 2.0, "uthread-sub")
    assert s.payload == [1, 2, 3] and s.extra == "in the instance dict"
    assert probe.started(s) == 1 and probe.active(s) == 0
    r = weakref.ref(s)
    del s
    assert r() is None


def test_c_subtype_through_the_c_api(probe):
    s = probe.Sub(lambda a, b: a + b)
    assert probe.switch(s, (2, 3), probe.NULL) == 5
    s2 = probe.Sub(lambda: getcurrent().parent.switch())
    assert probe.setparent(s2, getcurrent()) == 0
    probe.switch(s2, probe.NULL, probe.NULL)
    assert probe.active(s2) == 1
    assert isinstance(probe.throw(s2, GreenletExit, probe.NULL, probe.NULL), GreenletExit)


def test_c_subtype_python_subclass(probe):
    class PySub(probe.Sub):
        def __init__(self, run):
            super().__init__(run)
            self.attr = "py"

    p = PySub(lambda: getcurrent().fields())
    assert p.switch() == (0x0DDBA11, 0.5, "uthread-sub")
    assert p.attr == "py"


def test_c_subtype_collected_and_killed(probe):
    seen = []

    def run():
        try:
            getcurrent().parent.switch()
        except GreenletExit:
            seen.append(getcurrent().fields())
            raise

    for _ in range(20):
        s = probe.Sub(run)
        s.payload = [s.fields()]
        s.switch()
        del s
    gc.collect()
    # Each suspended one was killed when its last reference went (its subtype's dealloc ran
    # first, as Cython's does, and left the fields of PyGreenlet's part intact).
    assert len(seen) == 20 and all(f[0] == 0x0DDBA11 for f in seen)


def test_c_subtype_cycle_collected(probe):
    s = probe.Sub(lambda: None)
    s.payload = s
    r = weakref.ref(s)
    del s
    gc.collect()
    assert r() is None
