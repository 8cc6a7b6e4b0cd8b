"""dead, __bool__ (active = started and not dead), and repr in each state."""

import re

from uthread import getcurrent, greenlet


def test_states_through_a_life():
    def body():
        assert getcurrent()
        assert not getcurrent().dead
        getcurrent().parent.switch()

    g = greenlet(body)
    assert not g and not g.dead  # new: not active, not dead
    g.switch()
    assert g and not g.dead  # suspended: active
    g.switch()
    assert not g and g.dead  # finished


def test_main_is_active_and_not_dead():
    main = getcurrent()
    assert main and not main.dead


def test_dead_after_exception():
    g = greenlet(lambda: 1 / 0)
    try:
        g.switch()
    except ZeroDivisionError:
        pass
    assert g.dead and not g


def test_dead_after_throw_into_unstarted():
    g = greenlet(lambda: None)
    g.throw()
    assert g.dead and not g


def test_bool_is_active_not_truthiness_of_anything_else():
    g = greenlet(lambda: getcurrent().parent.switch())
    assert bool(g) is False
    g.switch()
    assert bool(g) is True


def test_repr_states():
    main = getcurrent()
    assert re.fullmatch(r"<greenlet\.greenlet object at 0x[0-9a-f]+ \(otid=0x[0-9a-f]+\) current active started main>", repr(main))
    g = greenlet(lambda: getcurrent().parent.switch())
    assert re.fullmatch(r"<greenlet\.greenlet object at 0x[0-9a-f]+ \(otid=0x[0-9a-f]+\) pending>", repr(g))
    g.switch()
    assert repr(g).endswith(" suspended active started>")
    g.switch()
    assert repr(g).endswith(" dead>")

    class Sub(greenlet):
        pass

    assert "Sub object at" in repr(Sub())


def test_repr_of_running_greenlet_inside_it():
    def body():
        return repr(getcurrent())

    assert greenlet(body).switch().endswith(" current active started>")
