"""The test helpers greenlet's `_greenlet` has and the drop-in re-exports: `UnswitchableGreenlet`
(switches into it fail as a refused engine switch does) and `set_thread_local`."""

import threading

import pytest

from uthread import _uthread, getcurrent, greenlet

Unswitchable = _uthread.UnswitchableGreenlet


def test_is_a_greenlet_subclass():
    assert issubclass(Unswitchable, greenlet)
    g = Unswitchable(lambda: 42)
    assert g.force_switch_error is False
    assert g.switch() == 42


def test_failed_first_switch_leaves_it_dead():
    ran = []
    g = Unswitchable(lambda: ran.append(1))
    g.force_switch_error = True
    with pytest.raises(SystemError, match="Failed to switch stacks into a greenlet for the first time."):
        g.switch("arg")
    assert ran == [] and g.dead and not g
    assert getcurrent() is not g


def test_failed_switch_into_suspended_changes_nothing():
    runs = []

    def body():
        runs.append(1)
        getcurrent().parent.switch()
        runs.append(2)
        return "done"

    g = Unswitchable(body)
    g.switch()
    g.force_switch_error = True
    with pytest.raises(SystemError, match="Failed to switch stacks into a running greenlet."):
        g.switch()
    with pytest.raises(SystemError):
        g.throw(ValueError)
    assert runs == [1] and g and not g.dead
    g.force_switch_error = False
    assert g.switch() == "done"
    assert runs == [1, 2] and g.dead


def test_force_switch_error_cannot_be_deleted():
    g = Unswitchable()
    with pytest.raises(AttributeError):
        del g.force_switch_error
    g.force_switch_error = 1
    assert g.force_switch_error is True


def test_set_thread_local_stores_in_the_thread_state():
    import gc
    import weakref

    class Value:
        pass

    refs = []

    def thread_body():
        v = Value()
        refs.append(weakref.ref(v))
        _uthread.set_thread_local("uthread_test_key", v)
        del v
        assert refs[0]() is not None  # held by this thread's state

    t = threading.Thread(target=thread_body)
    t.start()
    t.join()
    gc.collect()
    assert refs[0]() is None  # released with the thread's state

    v = Value()
    r = weakref.ref(v)
    _uthread.set_thread_local("uthread_test_key", v)
    del v
    assert r() is not None
    _uthread.set_thread_local("uthread_test_key", None)  # replaced: released
    assert r() is None
    with pytest.raises(TypeError):
        _uthread.set_thread_local([], 1)  # keys are dict keys
