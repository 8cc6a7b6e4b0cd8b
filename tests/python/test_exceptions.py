"""Exceptions: raising into the parent chain, sys.exc_info() per greenlet, tracebacks, chaining,
GreenletExit as a value."""

import sys
import traceback

import pytest

import uthread
from uthread import GreenletExit, getcurrent, greenlet


def test_greenlet_exit_is_base_exception():
    assert issubclass(GreenletExit, BaseException)
    assert not issubclass(GreenletExit, Exception)
    assert GreenletExit.__module__ == "uthread"
    assert uthread.error.__module__ == "uthread"


def test_exception_raised_in_parents_switch():
    def body():
        raise KeyError("from child")

    with pytest.raises(KeyError, match="from child"):
        greenlet(body).switch()


def test_exception_goes_to_parent_not_to_switcher():
    main = getcurrent()
    log = []

    def parent_body():
        try:
            main.switch("parent waiting")
        except ValueError as e:
            log.append(str(e))
        return "parent handled it"

    p = greenlet(parent_body)
    p.switch()
    child = greenlet(lambda: (_ for _ in ()).throw(ValueError("v")), parent=p)
    assert child.switch() == "parent handled it"
    assert log == ["v"]


def test_greenlet_exit_raised_by_run_is_a_value():
    def body():
        raise GreenletExit("value")

    result = greenlet(body).switch()
    assert isinstance(result, GreenletExit) and str(result) == "value"


def test_greenlet_exit_subclass_is_a_value_too():
    class Quit(GreenletExit):
        pass

    assert isinstance(greenlet(lambda: (_ for _ in ()).throw(Quit())).switch(), Quit)


def test_exc_info_is_per_greenlet():
    def other():
        return sys.exc_info()

    def body():
        try:
            raise ValueError("in body")
        except ValueError:
            before = sys.exc_info()
            assert greenlet(other).switch() == (None, None, None)
            assert sys.exc_info() == before
            getcurrent().parent.switch(sys.exc_info()[0])
            return sys.exc_info()[0]

    g = greenlet(body)
    try:
        raise KeyError("in main")
    except KeyError:
        assert g.switch() is ValueError
        assert sys.exc_info()[0] is KeyError
        assert g.switch() is ValueError
        assert sys.exc_info()[0] is KeyError


def test_exc_info_empty_in_new_greenlet_started_inside_except():
    try:
        raise KeyError
    except KeyError:
        assert greenlet(sys.exc_info).switch() == (None, None, None)


def test_traceback_contains_greenlet_frames():
    def deep():
        raise RuntimeError("deep")

    def body():
        deep()

    with pytest.raises(RuntimeError) as info:
        greenlet(body).switch()
    names = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "deep" in names and "body" in names


def test_exception_chaining_inside_greenlet():
    def body():
        try:
            raise KeyError("first")
        except KeyError:
            raise ValueError("second")

    with pytest.raises(ValueError) as info:
        greenlet(body).switch()
    assert isinstance(info.value.__context__, KeyError)


def test_exception_thrown_in_is_caught_with_correct_exc_info():
    def body():
        try:
            getcurrent().parent.switch()
        except KeyError:
            return sys.exc_info()[0], str(sys.exc_info()[1])

    g = greenlet(body)
    g.switch()
    assert g.throw(KeyError("k")) == (KeyError, "'k'")


def test_error_classes_on_type_and_module():
    assert greenlet.error is uthread.error
    assert greenlet.GreenletExit is GreenletExit
    assert greenlet.getcurrent is uthread.getcurrent
    assert greenlet.settrace is uthread.settrace and greenlet.gettrace is uthread.gettrace


def test_system_exit_propagates_through_greenlets():
    with pytest.raises(SystemExit):
        greenlet(lambda: sys.exit(3)).switch()


def test_exception_in_nested_chain():
    def level3():
        raise IndexError("three")

    def level2():
        return greenlet(level3).switch()

    def level1():
        try:
            greenlet(level2).switch()
        except IndexError as e:
            return "caught " + str(e)

    assert greenlet(level1).switch() == "caught three"
