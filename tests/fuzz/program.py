"""Random greenlet programs, and an interpreter that runs one against a greenlet-like module.

A *program* is plain data (tuples, ints, strings), so hypothesis can generate and shrink it and a
regression test can spell it out:

    (n, main_ops, bodies)

``n`` uthreads ``g0 .. g{n-1}`` are created up front (``mod.greenlet(run_i)``, parent = main);
``bodies[i]`` is the list of ops that ``run_i`` performs; ``main_ops`` is what the main greenlet
performs. Every op runs at most once, so every program terminates. Ops:

    ("switch", target, args, kwargs)   target.switch(*args, **kwargs)
    ("throw", target, kind)            target.throw(...): kind "boom" (Boom(label)), "exit"
                                       (GreenletExit) or "type" (the class Boom, no instance)
    ("raise", label)                   raise Boom(label)            (ends the body)
    ("return", value)                  return value from run        (ends the body)
    ("set_parent", i, target)          g{i}.parent = target
    ("drop", i)                        forget g{i} (the interpreter's only reference), gc.collect()
    ("self_cycle",)                    the running uthread stores itself in its own __dict__
    ("callback", how, op)              op run from inside a callback: how is "map" (called by a
                                       C builtin) or "gen" (inside a generator frame)
    ("nested_except", op)              op run inside an `except` block handling Boom("outer"),
                                       then sys.exc_info() is recorded

Targets are "main", "self", "parent" or an index ``i`` (g{i}). Everything observable is appended to
a trace: what each switch or throw returned or raised, who is running, every uthread's ``dead``,
``bool()``, ``parent`` and whether ``gr_frame`` is set after each op of main, the weakref state of
dropped uthreads, and what the end of the program finds. Two implementations agree on a program when
their traces are equal.
"""

from __future__ import annotations

import gc
import sys
import weakref
from typing import Any


class Boom(Exception):
    """The only exception programs raise or throw; compared by its args."""


class _Gone(Exception):
    """A target that the program dropped: the op is skipped (recorded)."""


def describe(mod: Any, value: Any, gs: list, main: Any) -> Any:
    """A comparable picture of a value: greenlets by name, exceptions by kind and args."""
    if isinstance(value, BaseException):
        return ("exc", kind_of(mod, value), describe(mod, value.args, gs, main))
    if isinstance(value, tuple):
        return tuple(describe(mod, v, gs, main) for v in value)
    if isinstance(value, list):
        return ["list"] + [describe(mod, v, gs, main) for v in value]
    if isinstance(value, dict):
        return ("dict",) + tuple(sorted((k, describe(mod, v, gs, main)) for k, v in value.items()))
    if isinstance(value, mod.greenlet):
        return name_of(value, gs, main)
    if value is None or isinstance(value, (int, str)):
        return value
    return ("other", type(value).__name__)


def kind_of(mod: Any, exc: BaseException) -> str:
    """Exception kinds compared across implementations (messages of the module's own errors are
    not part of the contract, their types are)."""
    if isinstance(exc, mod.GreenletExit):
        return "GreenletExit"
    if isinstance(exc, mod.error):
        return "greenlet.error"
    return type(exc).__name__


def name_of(g: Any, gs: list, main: Any) -> str:
    if g is None:
        return "None"
    if g is main:
        return "main"
    for i, x in enumerate(gs):
        if x is g:
            return f"g{i}"
    return "unknown"


class Interpreter:
    """Runs one program against ``mod`` (the ``greenlet`` module, or ``uthread``)."""

    def __init__(self, mod: Any, program: tuple) -> None:
        self.mod = mod
        self.n, self.main_ops, self.bodies = program
        self.trace: list = []
        self.gs: list = []
        self.weak: list = []
        self.main: Any = None

    # -- helpers ------------------------------------------------------------------------------
    def rec(self, *event: Any) -> None:
        self.trace.append(event)

    def d(self, value: Any) -> Any:
        return describe(self.mod, value, self.gs, self.main)

    def who(self) -> str:
        return name_of(self.mod.getcurrent(), self.gs, self.main)

    def resolve(self, target: Any) -> Any:
        if target == "main":
            return self.main
        if target == "self":
            return self.mod.getcurrent()
        if target == "parent":
            return self.mod.getcurrent().parent
        g = self.gs[target]
        if g is None:
            raise _Gone(target)
        return g

    def snapshot(self) -> tuple:
        out = []
        for i, g in enumerate(self.gs):
            if g is None:
                out.append((f"g{i}", "dropped", self.weak[i]() is None))
            else:
                out.append((f"g{i}", g.dead, bool(g), name_of(g.parent, self.gs, self.main), g.gr_frame is None))
        return tuple(out)

    # -- ops ----------------------------------------------------------------------------------
    def run_ops(self, ops: tuple) -> Any:
        """Runs ops in order; returns ("return", value) if one of them ended the body."""
        for op in ops:
            ended = self.op(op)
            if ended is not None:
                return ended
        return None

    def op(self, op: tuple) -> Any:
        me = self.who()
        kind = op[0]
        try:
            if kind == "switch":
                _, target, args, kwargs = op
                t = self.resolve(target)
                result = t.switch(*args, **dict(kwargs))
                self.rec(me, "switch-got", self.who(), self.d(result))
            elif kind == "throw":
                _, target, how = op
                t = self.resolve(target)
                if how == "boom":
                    result = t.throw(Boom(f"thrown-by-{me}"))
                elif how == "exit":
                    result = t.throw(self.mod.GreenletExit(f"exit-by-{me}"))
                else:
                    result = t.throw(Boom)
                self.rec(me, "throw-got", self.who(), self.d(result))
            elif kind == "raise":
                self.rec(me, "raise", op[1])
                raise Boom(op[1])
            elif kind == "return":
                self.rec(me, "return", op[1])
                return ("return", op[1])
            elif kind == "set_parent":
                _, i, target = op
                g = self.gs[i]
                if g is None:
                    raise _Gone(i)
                p = None if target == "none" else self.resolve(target)
                g.parent = p
                self.rec(me, "set_parent", i, name_of(g.parent, self.gs, self.main))
            elif kind == "drop":
                i = op[1]
                self.gs[i] = None
                gc.collect()
                self.rec(me, "dropped", i, self.weak[i]() is None, self.who())
            elif kind == "self_cycle":
                g = self.mod.getcurrent()
                if g is not self.main:
                    g.cycle = g
                self.rec(me, "self_cycle")
            elif kind == "callback":
                _, how, inner = op
                box: list = []
                if how == "map":
                    box.extend(map(lambda _: self.op(inner), [None]))
                else:

                    def gen() -> Any:
                        yield self.op(inner)

                    box.extend(gen())
                self.rec(me, "callback-done", self.who())
                if box and box[0] is not None:
                    return box[0]
            elif kind == "nested_except":
                try:
                    raise Boom("outer")
                except Boom:
                    ended = self.op(op[1])
                    self.rec(me, "exc_info", self.who(), self.d(sys.exc_info()[1]))
                    if ended is not None:
                        return ended
                self.rec(me, "exc_info_after", self.d(sys.exc_info()[1]))
            else:  # pragma: no cover - generator bug
                raise AssertionError(op)
        except _Gone as e:
            self.rec(me, "gone", kind, e.args[0])
        except self.mod.GreenletExit as e:
            # Being killed (or thrown GreenletExit): record and let it end this uthread.
            self.rec(me, "caught", self.who(), self.d(e))
            raise
        except Boom as e:
            if kind == "raise":
                raise
            self.rec(me, "caught", self.who(), self.d(e))
        except (self.mod.error, ValueError, TypeError, AttributeError) as e:
            self.rec(me, "refused", kind, self.who(), kind_of(self.mod, e))
        return None

    def make_run(self, i: int) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            self.rec(f"g{i}", "start", self.d(args), self.d(kwargs))
            ended = self.run_ops(self.bodies[i])
            if ended is not None:
                return ended[1]
            self.rec(f"g{i}", "end")
            return f"g{i}-end"

        return run

    # -- the program ----------------------------------------------------------------------------
    def run(self) -> list:
        mod = self.mod
        self.main = mod.getcurrent()
        self.gs = [mod.greenlet(self.make_run(i)) for i in range(self.n)]
        self.weak = [weakref.ref(g) for g in self.gs]
        for op in self.main_ops:
            try:
                ended = self.op(op)
            except Boom as e:  # a "raise" op in main
                self.rec("main", "raised", self.d(e))
                ended = None
            except mod.GreenletExit as e:  # thrown into main: main cannot die
                self.rec("main", "exit-escaped", self.d(e))
                ended = None
            if ended is not None:
                self.rec("main", "return-ignored")
            self.rec("main", "state", self.who(), self.snapshot())
        # The end: drop everything; suspended uthreads are killed by the collector.
        self.rec("end", self.snapshot())
        alive = [(i, self.weak[i]) for i in range(self.n)]
        self.gs = [None] * self.n
        gc.collect()
        self.rec("end-collected", tuple((i, w() is None) for i, w in alive), self.who())
        return self.trace


def run_program(mod: Any, program: tuple) -> list:
    """The trace of ``program`` on ``mod``; never leaves a uthread of it behind."""
    interp = Interpreter(mod, program)
    try:
        return list(interp.run())
    finally:
        # Uthreads still suspended here are unreachable for the collector (a `self_cycle`, or two
        # suspended frames holding each other): kill them one by one, each handing its end to
        # main, so that they do not pile up over thousands of programs. Not part of the trace.
        main = mod.getcurrent()
        for w in interp.weak:
            g = w()
            if g is None:
                continue
            g.__dict__.pop("cycle", None)
            if g:
                try:
                    g.parent = main
                    g.throw()
                except BaseException:  # noqa: BLE001 - whatever it does while dying
                    pass
        g = None
        interp.gs = []
        interp.main = None
        gc.collect()
