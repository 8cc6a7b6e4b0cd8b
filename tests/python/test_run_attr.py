"""The run attribute: settable before the start, gone once started, main greenlets have none."""

import pytest

from uthread import getcurrent, greenlet


def test_run_from_constructor():
    f = lambda: None  # noqa: E731
    assert greenlet(f).run is f
    assert greenlet(run=f).run is f


def test_run_none():
    assert greenlet(run=None).run is None


def test_no_run():
    with pytest.raises(AttributeError, match="run"):
        greenlet().run


def test_set_before_start():
    g = greenlet(lambda: "old")
    g.run = lambda: "new"
    assert g.switch() == "new"


def test_delete_before_start():
    g = greenlet(lambda: None)
    del g.run
    with pytest.raises(AttributeError):
        g.run
    with pytest.raises(AttributeError):
        g.switch()


def test_not_readable_or_settable_after_start():
    def body():
        getcurrent().parent.switch()

    g = greenlet(body)
    g.switch()
    with pytest.raises(AttributeError):
        g.run
    with pytest.raises(AttributeError, match="run cannot be set after the start of the greenlet"):
        g.run = lambda: None
    assert not hasattr(g, "run")
    g.switch()
    with pytest.raises(AttributeError):
        g.run = lambda: None


def test_running_greenlet_has_no_run():
    assert greenlet(lambda: hasattr(getcurrent(), "run")).switch() is False


def test_main_greenlet_has_no_run():
    with pytest.raises(AttributeError, match="Main greenlets do not have a run attribute"):
        getcurrent().run
    with pytest.raises(AttributeError):
        getcurrent().run = lambda: None


def test_reinit_before_start_replaces_run():
    g = greenlet(lambda: 1)
    g.__init__(lambda: 2)
    assert g.switch() == 2
    with pytest.raises(AttributeError):
        g.__init__(lambda: 3)


def test_run_released_after_finish():
    import weakref

    class Callable:
        def __call__(self):
            return "called"

    c = Callable()
    ref = weakref.ref(c)
    g = greenlet(c)
    del c
    assert g.switch() == "called"
    assert ref() is None
