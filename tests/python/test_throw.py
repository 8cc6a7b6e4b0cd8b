"""throw(typ=GreenletExit, val=None, tb=None): argument checking and where the exception goes."""

import sys

import pytest

from uthread import GreenletExit, getcurrent, greenlet


class Boom(Exception):
    pass


def catcher(kind):
    """Suspends; when something is thrown in, reports (class, str) to the parent."""

    def body():
        try:
            getcurrent().parent.switch("ready")
        except kind as e:
            return type(e), str(e), sys.exc_info()[0]
        return "not thrown"

    g = greenlet(body)
    assert g.switch() == "ready"
    return g


def test_throw_class():
    g = catcher(Boom)
    assert g.throw(Boom) == (Boom, "", Boom)


def test_throw_class_and_value():
    g = catcher(Boom)
    assert g.throw(Boom, "msg") == (Boom, "msg", Boom)


def test_throw_class_and_args_tuple():
    g = catcher(KeyError)
    assert g.throw(KeyError, ("k",))[0] is KeyError


def test_throw_instance():
    g = catcher(Boom)
    assert g.throw(Boom("inst")) == (Boom, "inst", Boom)


def test_throw_instance_with_none_value_is_accepted():
    g = catcher(Boom)
    assert g.throw(Boom("inst"), None) == (Boom, "inst", Boom)


def test_throw_with_traceback():
    try:
        raise Boom("tb")
    except Boom as e:
        tb = e.__traceback__

    def body():
        try:
            getcurrent().parent.switch()
        except Boom as e:
            frames = []
            t = e.__traceback__
            while t is not None:
                frames.append(t.tb_frame.f_code.co_name)
                t = t.tb_next
            return frames

    g = greenlet(body)
    g.switch()
    names = g.throw(Boom, Boom("tb"), tb)
    assert "body" in names and "test_throw_with_traceback" in names


def test_default_is_greenlet_exit_returned_as_value():
    def body():
        getcurrent().parent.switch()
        return "never"

    g = greenlet(body)
    g.switch()
    result = g.throw()
    assert isinstance(result, GreenletExit)
    assert g.dead


def test_throw_into_dead_greenlet_returns_greenlet_exit():
    g = greenlet(lambda: None)
    g.switch()
    assert isinstance(g.throw(), GreenletExit)
    assert isinstance(g.throw(GreenletExit("x")), GreenletExit)


def test_throw_other_exception_into_dead_greenlet_raises_in_parent():
    g = greenlet(lambda: None)
    g.switch()
    with pytest.raises(Boom):
        g.throw(Boom)


def test_uncaught_exception_goes_to_parent():
    def body():
        getcurrent().parent.switch()

    g = greenlet(body)
    g.switch()
    with pytest.raises(Boom, match="out"):
        g.throw(Boom("out"))
    assert g.dead


def test_throw_into_unstarted_greenlet_kills_it_without_running():
    ran = []
    g = greenlet(lambda: ran.append(1))
    with pytest.raises(Boom):
        g.throw(Boom)
    assert ran == [] and g.dead


def test_greenlet_exit_into_unstarted_greenlet_returns_it():
    g = greenlet(lambda: 1 / 0)
    assert isinstance(g.throw(), GreenletExit)
    assert g.dead


def test_throw_into_unstarted_greenlet_without_run():
    g = greenlet()
    with pytest.raises(AttributeError, match="run"):
        g.throw(Boom)


def test_throw_into_unstarted_chain_reaches_original_parent():
    main = getcurrent()

    def f1():
        try:
            main.switch("f1 waiting")
        except IndexError:
            return "f1 caught"
        return "f1 normal"

    g1 = greenlet(f1)
    g2 = greenlet(lambda: None, parent=g1)
    # Both unstarted: the exception kills g2, then g1 (started only to die), then reaches us.
    with pytest.raises(IndexError):
        g2.throw(IndexError)
    assert g1.dead and g2.dead

    g1 = greenlet(f1)
    g2 = greenlet(lambda: None, parent=g1)
    assert g1.switch() == "f1 waiting"
    assert g2.throw(IndexError) == "f1 caught"


def test_throw_into_current_greenlet_raises_immediately():
    with pytest.raises(Boom):
        getcurrent().throw(Boom)


def test_bad_traceback_argument():
    with pytest.raises(TypeError, match="third argument must be a traceback object"):
        getcurrent().throw(Boom, Boom(), "not a traceback")


def test_instance_with_separate_value():
    with pytest.raises(TypeError, match="instance exception may not have a separate value"):
        getcurrent().throw(Boom(), Boom())


def test_not_an_exception():
    with pytest.raises(TypeError, match="exceptions must be classes, or instances, not str"):
        getcurrent().throw("abc")
    with pytest.raises(TypeError, match="not int"):
        getcurrent().throw(3)


def test_class_whose_constructor_fails():
    class Picky(Exception):
        def __init__(self):
            raise ValueError("cannot build")

    g = catcher(Exception)
    # The exception raised while building the instance is what gets thrown.
    assert g.throw(Picky, "arg")[0] in (TypeError, ValueError)


def test_base_exception_subclasses_pass_through():
    class Stop(BaseException):
        pass

    g = catcher(Stop)
    assert g.throw(Stop)[0] is Stop


def test_throw_preserves_callers_pending_exception_state():
    g = catcher(Boom)
    try:
        raise KeyError("outer")
    except KeyError:
        g.throw(Boom)
        assert sys.exc_info()[0] is KeyError
