"""gr_frame and inspection of suspended greenlets (frames, f_back, inspect, traceback)."""

import inspect
import sys
import traceback

from uthread import getcurrent, greenlet


def test_gr_frame_of_suspended_greenlet():
    def inner():
        getcurrent().parent.switch(sys._getframe(0))

    def outer():
        inner()
        return "done"

    g = greenlet(outer)
    assert g.gr_frame is None  # not started
    frame = g.switch()
    assert g.gr_frame is frame
    assert frame.f_code.co_name == "inner"
    assert frame.f_back.f_code.co_name == "outer"
    assert frame.f_back.f_back is None  # a greenlet's stack starts with its run
    assert g.switch() == "done"
    assert g.gr_frame is None  # dead


def test_gr_frame_of_running_greenlet_is_none():
    assert getcurrent().gr_frame is None
    assert greenlet(lambda: getcurrent().gr_frame).switch() is None


def test_main_greenlet_frame_while_suspended():
    main = getcurrent()

    def body():
        return main.gr_frame

    frame = greenlet(body).switch()
    assert frame is not None
    assert frame.f_code.co_name == "test_main_greenlet_frame_while_suspended"


def test_first_frame_has_no_back():
    def body():
        return sys._getframe(0).f_back

    assert greenlet(body).switch() is None


def test_frame_survives_other_switches():
    def outer():
        inner(sys._getframe(0))

    def inner(f):
        getcurrent().parent.switch(f)

    g = greenlet(outer)
    f = g.switch()
    # Run something else on other stacks in between.
    for _ in range(3):
        greenlet(lambda: sum(range(100))).switch()
    assert f.f_code.co_name == "outer"
    assert f.f_back is None
    assert g.gr_frame.f_back is f


def test_inspect_locals_of_suspended_greenlet():
    def body(a):
        b = a * 2
        getcurrent().parent.switch()
        return b

    g = greenlet(body)
    g.switch(21)
    frame = g.gr_frame
    assert frame.f_locals["a"] == 21 and frame.f_locals["b"] == 42
    info = inspect.getframeinfo(frame)
    assert info.function == "body"
    stack = [fi.function for fi in inspect.getouterframes(frame)]
    assert stack == ["body"]
    assert g.switch() == 42


def test_traceback_format_stack_of_suspended_greenlet():
    def level2():
        getcurrent().parent.switch()

    def level1():
        level2()

    g = greenlet(level1)
    g.switch()
    text = "".join(traceback.format_stack(g.gr_frame))
    assert "level1" in text and "level2" in text
    assert text.index("level1") < text.index("level2")


def test_frame_inside_greenlet_sees_only_its_own_stack():
    def body():
        return [f.function for f in inspect.stack()]

    names = greenlet(body).switch()
    assert names[0] == "body"
    assert "test_frame_inside_greenlet_sees_only_its_own_stack" not in names


def test_gr_frame_of_nested_c_calls():
    # Python -> C (map/sorted key) -> Python frames, suspended in the middle.
    def key(x):
        getcurrent().parent.switch(sys._getframe(0))
        return x

    def body():
        return sorted([2, 1], key=key)

    g = greenlet(body)
    f = g.switch()
    assert f.f_code.co_name == "key"
    assert f.f_back.f_code.co_name == "body"
    g.switch()
    assert g.switch() == [1, 2]
