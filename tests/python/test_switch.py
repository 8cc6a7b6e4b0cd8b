"""switch(): lazy start, greenlet's argument packing, values in both directions, the parent rule."""

import pytest

from uthread import getcurrent, greenlet


def echo_back():
    """Hands every value it receives back to its parent, forever."""
    value = getcurrent().parent.switch()
    while True:
        value = getcurrent().parent.switch(value)


def started_echo():
    g = greenlet(echo_back)
    assert g.switch() == ()
    return g


def test_lazy_start_runs_nothing_until_switched():
    ran = []
    g = greenlet(lambda: ran.append(1))
    assert ran == [] and not g and not g.dead
    g.switch()
    assert ran == [1] and g.dead


def test_interleaving():
    log = []

    def body():
        log.append("b1")
        getcurrent().parent.switch()
        log.append("b2")

    g = greenlet(body)
    log.append("m1")
    g.switch()
    log.append("m2")
    g.switch()
    log.append("m3")
    assert log == ["m1", "b1", "m2", "b2", "m3"]


@pytest.mark.parametrize(
    "args, kwargs, expected",
    [
        ((), {}, ()),
        ((1,), {}, 1),
        ((None,), {}, None),
        ((1, 2), {}, (1, 2)),
        (((1, 2),), {}, (1, 2)),
        (((1,),), {}, (1,)),
        ((), {"a": 1}, {"a": 1}),
        ((1,), {"a": 2}, ((1,), {"a": 2})),
        ((1, 2), {"a": 3, "b": 4}, ((1, 2), {"a": 3, "b": 4})),
    ],
)
def test_argument_packing(args, kwargs, expected):
    g = started_echo()
    assert g.switch(*args, **kwargs) == expected


def test_first_switch_passes_args_and_kwargs_to_run():
    def run(a, b=0, *rest, **kw):
        return a, b, rest, kw

    assert greenlet(run).switch(1, 2, 3, x=4) == (1, 2, (3,), {"x": 4})


def test_return_value_goes_to_parent_packed_as_one_value():
    assert greenlet(lambda: None).switch() is None
    assert greenlet(lambda: (1, 2)).switch() == (1, 2)
    assert greenlet(lambda: (1,)).switch() == (1,)
    assert greenlet(lambda: {"k": 1}).switch() == {"k": 1}


def test_switch_to_current_returns_arguments_at_once():
    me = getcurrent()
    assert me.switch() == ()
    assert me.switch(5) == 5
    assert me.switch(1, 2) == (1, 2)
    assert me.switch(x=1) == {"x": 1}

    def body():
        return getcurrent().switch("self")

    assert greenlet(body).switch() == "self"


def test_switch_to_dead_greenlet_goes_to_its_parent():
    g = greenlet(lambda: "done")
    assert g.switch() == "done"
    assert g.dead
    # The parent is the current greenlet: the switch comes straight back.
    assert g.switch(7) == 7
    assert g.switch() == ()


def test_finished_child_resumes_its_parent_not_the_switcher():
    main = getcurrent()
    log = []

    def parent_body():
        got = main.switch("parent suspended")
        log.append(("parent got", got))
        return "parent done"

    p = greenlet(parent_body)
    assert p.switch() == "parent suspended"
    child = greenlet(lambda: "child result", parent=p)
    assert child.switch() == "parent done"
    assert log == [("parent got", "child result")]
    assert child.dead and p.dead


def test_dead_parents_are_skipped():
    main = getcurrent()
    a = greenlet(lambda: None)
    a.switch()
    b = greenlet(lambda: "to main", parent=a)
    assert a.dead
    assert b.switch() == "to main"
    assert getcurrent() is main


def test_unstarted_parent_is_started_with_the_result():
    parent = greenlet(lambda x: ("parent ran with", x))
    child = greenlet(lambda: 42, parent=parent)
    assert child.switch() == ("parent ran with", 42)
    assert parent.dead


def test_unstarted_parent_with_wrong_signature_raises_in_switcher():
    parent = greenlet(lambda: None)  # takes no argument
    child = greenlet(lambda: 42, parent=parent)
    with pytest.raises(TypeError):
        child.switch()


def test_switch_to_unstarted_greenlet_without_run_raises_attribute_error():
    g = greenlet()
    with pytest.raises(AttributeError, match="run"):
        g.switch()
    assert not g.dead  # still not started


def test_switch_to_dead_greenlet_with_reparented_unstarted_parent():
    seen = []
    later = greenlet(lambda: seen.append("later"))
    g = greenlet(lambda: seen.append("g"))
    g.switch()
    g.parent = later
    assert g.switch() is None
    assert seen == ["g", "later"]


def test_subclass_with_run_method():
    class Worker(greenlet):
        def __init__(self, base):
            super().__init__()
            self.base = base

        def run(self, x):
            y = self.parent.switch(self.base + x)
            return y * 2

    w = Worker(10)
    assert w.switch(1) == 11
    assert w.switch(5) == 10
    assert w.dead


def test_run_lookup_may_start_the_greenlet_reentrantly():
    received = []

    class Tricky(greenlet):
        looked_up = 0

        def __getattribute__(self, name):
            if name == "run" and type(self).looked_up == 0:
                type(self).looked_up += 1
                received.append(("inner switch returned", self.switch("inner")))
            return greenlet.__getattribute__(self, name)

        def run(self, value):
            while True:
                received.append(value)
                value = self.parent.switch(value)

    t = Tricky()
    # The nested switch (from the lookup of `run`) starts it; the outer switch then becomes an
    # ordinary switch into the started greenlet.
    assert t.switch("outer") == "outer"
    assert received == ["inner", ("inner switch returned", "inner"), "outer"]


def test_many_greenlets_ping_pong():
    main = getcurrent()
    n = 1000

    def body(i):
        while True:
            i = main.switch(i + 1)

    gs = [greenlet(body) for _ in range(n)]
    values = [g.switch(i) for i, g in enumerate(gs)]
    assert values == list(range(1, n + 1))
    values = [g.switch(i * 10) for i, g in enumerate(gs)]
    assert values == [i * 10 + 1 for i in range(n)]


def test_nested_greenlets_return_through_parents():
    def inner():
        return "inner"

    def outer():
        r = greenlet(inner).switch()
        return "outer+" + r

    assert greenlet(outer).switch() == "outer+inner"


def test_generator_built_on_greenlets():
    class gen:
        def __init__(self, body):
            self.body = body

        def __iter__(self):
            main = getcurrent()

            def yield_(v):
                main_parent_holder[0].switch(v)

            main_parent_holder = [main]
            g = greenlet(lambda: self.body(yield_))
            while True:
                main_parent_holder[0] = getcurrent()
                v = g.switch()
                if g.dead:
                    return
                yield v

    def count(yield_):
        for i in range(3):
            yield_(i)

    assert list(gen(count)) == [0, 1, 2]


def test_switch_method_and_throw_method_signatures():
    g = greenlet(lambda: None)
    with pytest.raises(TypeError):
        g.throw(1, 2, 3, 4)
    with pytest.raises(TypeError):
        greenlet.switch(42)  # not a greenlet
