"""gr_context: every greenlet has its own contextvars context."""

import contextvars
import gc
import sys

import pytest

from uthread import getcurrent, greenlet

VAR = contextvars.ContextVar("VAR", default="unset")


def test_new_greenlet_starts_with_empty_context():
    VAR.set("main value")
    assert greenlet(VAR.get).switch() == "unset"
    assert VAR.get() == "main value"


def test_values_are_per_greenlet():
    def body(name):
        VAR.set(name)
        getcurrent().parent.switch()
        return VAR.get()

    a, b = greenlet(body), greenlet(body)
    VAR.set("main")
    a.switch("a")
    b.switch("b")
    assert VAR.get() == "main"
    assert a.switch() == "a"
    assert b.switch() == "b"


def test_gr_context_none_before_any_use():
    g = greenlet(lambda: None)
    assert g.gr_context is None
    g.switch()
    assert g.gr_context is None


def test_context_set_before_start_is_used():
    ctx = contextvars.Context()
    ctx.run(VAR.set, "preset")
    g = greenlet(VAR.get)
    g.gr_context = ctx
    assert g.gr_context is ctx
    assert g.switch() == "preset"


def test_share_context_of_current_greenlet():
    VAR.set("shared")
    g = greenlet(lambda: VAR.set("changed by g"))
    g.gr_context = getcurrent().gr_context
    g.switch()
    assert VAR.get() == "changed by g"


def test_context_of_running_greenlet_is_the_live_one():
    def body():
        VAR.set(1)
        me = getcurrent()
        ctx = me.gr_context
        assert isinstance(ctx, contextvars.Context)
        assert ctx[VAR] == 1
        me.gr_context = None  # reset while running
        assert VAR.get() == "unset"
        VAR.set(2)
        new = me.gr_context
        getcurrent().parent.switch((ctx, new))
        me.gr_context = ctx  # switch back to the first one while running
        return VAR.get()

    g = greenlet(body)
    first, second = g.switch()
    assert g.gr_context is second
    assert first[VAR] == 1 and second[VAR] == 2
    assert g.switch() == 1


def test_context_of_finished_greenlet_remains():
    def body():
        VAR.set("kept")

    g = greenlet(body)
    g.switch()
    assert g.gr_context is not None
    assert g.gr_context[VAR] == "kept"


def test_set_context_of_suspended_greenlet():
    def body():
        getcurrent().parent.switch(VAR.get())
        return VAR.get()

    g = greenlet(body)
    assert g.switch() == "unset"
    ctx = contextvars.Context()
    ctx.run(VAR.set, "injected")
    g.gr_context = ctx
    assert g.switch() == "injected"


def test_context_run_inside_greenlet():
    def body():
        return contextvars.copy_context().run(lambda: (VAR.set("in run"), VAR.get())[1])

    assert greenlet(body).switch() == "in run"


def test_wrong_type_and_delete():
    g = greenlet()
    with pytest.raises(TypeError, match="contextvars.Context or None"):
        g.gr_context = {}
    with pytest.raises(AttributeError, match="can't delete context attribute"):
        del g.gr_context


def test_context_references_released():
    ctx = contextvars.Context()
    base = sys.getrefcount(ctx)
    g = greenlet(lambda: None)
    g.gr_context = ctx
    g.switch()
    del g
    gc.collect()
    assert sys.getrefcount(ctx) == base
