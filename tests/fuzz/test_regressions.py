"""Programs that once made uthread and greenlet 3.5.6 diverge (found by test_differential.py),
plus hand-written ones for each op, replayed on both on every fuzz run. A new divergence found by
the fuzzer is added here (the shrunk program hypothesis prints) together with the fix."""

from __future__ import annotations

import os
import sys

import greenlet
import pytest
import uthread

sys.path.insert(0, os.path.dirname(__file__))
from program import run_program  # noqa: E402

PROGRAMS = {
    # Found by the fuzzer: a uthread that dies of GreenletExit (thrown into itself) hands the
    # exception instance up as its result; a NEW parent must then start with no arguments, as in
    # greenlet 3.5.6 (uthread passed the instance as one argument). Fixed in python/src/greenlet/.
    "greenlet_exit_result_starts_new_parent": (
        4,
        (("set_parent", 3, 0), ("switch", "main", (), ()), ("switch", "main", (), ()), ("switch", 3, (), ())),
        ((), (), (), (("throw", "self", "exit"),)),
    ),
    "greenlet_exit_result_starts_new_parent_set_from_a_uthread": (
        3,
        (("switch", 0, (), ()), ("switch", 2, (), ())),
        ((("set_parent", 2, 1), ("switch", "main", (), ()), ("switch", "main", (), ())), (), (("throw", "self", "exit"),)),
    ),
    # Found by the fuzzer after that fix: GreenletExit thrown into a DEAD uthread goes to its
    # parent as a value; a NEW parent starts with no arguments there too.
    "greenlet_exit_thrown_into_dead_starts_new_parent": (
        2,
        (("switch", 1, (), ()), ("set_parent", 1, 0), ("switch", "main", (), ()), ("throw", 1, "exit")),
        ((), ()),
    ),
    # The same GreenletExit result reaching a suspended parent: its switch returns the instance.
    "greenlet_exit_result_resumes_suspended_parent": (
        2,
        (("switch", 0, (), ()), ("set_parent", 1, 0), ("switch", 1, (), ())),
        ((("switch", "main", (), ()), ("switch", "main", (), ())), (("throw", "self", "exit"),)),
    ),
    # Hand-written: one of each kind of op.
    "switch_values_both_ways": (
        2,
        (("switch", 0, (1, 2), (("x", 3),)), ("switch", 0, (), ()), ("switch", 1, ("a",), ())),
        ((("switch", "main", (), (("y", 1),)), ("switch", "parent", (7,), ())), (("return", 5),)),
    ),
    "throw_into_new_and_suspended": (
        2,
        (("throw", 0, "boom"), ("switch", 1, (), ()), ("throw", 1, "exit"), ("throw", 1, "type")),
        ((), (("switch", "main", (), ()),)),
    ),
    "raise_goes_to_parent_set_at_run_time": (
        3,
        (("set_parent", 0, 1), ("switch", 1, (), ()), ("switch", 0, (), ())),
        ((("raise", "r1"),), (("switch", "main", (), ()), ("switch", "main", (), ())), ()),
    ),
    "parent_cycle_refused": (
        2,
        (("set_parent", 0, 1), ("set_parent", 1, 0), ("set_parent", 0, "none")),
        ((), ()),
    ),
    "drop_kills_suspended": (
        3,
        (("switch", 0, (), ()), ("switch", 1, (), ()), ("drop", 0), ("drop", 1), ("switch", 2, (), ())),
        ((("switch", "main", (), ()), ("return", 1)), (("switch", "main", (), ()),), (("drop", 2),)),
    ),
    "switch_from_callbacks": (
        2,
        (("callback", "map", ("switch", 0, (1,), ())), ("callback", "gen", ("switch", 0, (2,), ()))),
        ((("callback", "gen", ("switch", "main", (3,), ())), ("callback", "map", ("switch", "parent", (4,), ()))), ()),
    ),
    "exception_handled_across_a_switch": (
        2,
        (("nested_except", ("switch", 0, (), ())), ("nested_except", ("switch", 0, (), ()))),
        ((("nested_except", ("switch", "main", (), ())), ("nested_except", ("raise", "r2"))), ()),
    ),
    "throw_exit_into_main": (
        2,
        (("switch", 0, (), ()), ("switch", 0, (), ())),
        ((("throw", "main", "exit"), ("throw", "main", "boom")), ()),
    ),
}


@pytest.mark.parametrize("name", sorted(PROGRAMS))
def test_regression_program(name: str) -> None:
    program = PROGRAMS[name]
    assert run_program(uthread, program) == run_program(greenlet, program)


@pytest.mark.parametrize("mod", [greenlet, uthread], ids=["greenlet", "uthread"])
def test_greenlet_exit_switched_as_an_argument_starts_run_with_it(mod) -> None:
    # The other side of the fix above: a GreenletExit instance passed to switch() is an ordinary
    # argument and reaches run().
    exc = mod.GreenletExit("as an argument")
    assert mod.greenlet(lambda *a: a).switch(exc) == (exc,)
