"""Tests of python/src/pystate.c through the _pystate_probe extension (see probe.c).

Plain unittest, so it runs on every CPython without installing anything:

    python test_pystate.py            run everything; last line "RESULT passed=N failed=M skipped=K"
    python test_pystate.py --list     print the test ids
    python test_pystate.py ID...      run only these (ids as printed by --list)
"""

import asyncio
import contextvars
import gc
import signal
import sys
import threading
import time
import traceback
import types
import unittest
import weakref

import _pystate_probe as P

PY = sys.version_info[:2]


def depth_now():
    """Number of Python frames on the current uthread's stack."""
    n = 0
    f = sys._getframe()
    while f is not None:
        n += 1
        f = f.f_back
    return n


def recurse(n):
    if n <= 0:
        return depth_now()
    return recurse(n - 1)


def recurse_forever(n=0):
    return recurse_forever(n + 1)


class Base(unittest.TestCase):
    def setUp(self):
        self.main = P.main()
        self.assertIs(P.current(), self.main)
        self.limit = sys.getrecursionlimit()

    def tearDown(self):
        sys.settrace(None)
        sys.setprofile(None)
        sys.setrecursionlimit(self.limit)
        self.assertIs(P.current(), self.main)


class TestSwitching(Base):
    def test_values_both_ways_many_switches(self):
        def worker(first):
            total = first
            while True:
                v = P.switch(self.main, total)
                if v is None:
                    return "done"
                total += v

        h = P.spawn(worker)
        self.assertEqual(P.switch(h, 1), 1)
        expected = 1
        for i in range(20000):
            expected += i
            self.assertEqual(P.switch(h, i), expected)
        self.assertEqual(P.switch(h, None), "done")
        self.assertTrue(h.dead)

    def test_objects_pass_by_identity(self):
        obj = object()
        h = P.spawn(lambda x: P.switch(self.main, x))
        self.assertIs(P.switch(h, obj), obj)
        self.assertIs(P.switch(h, obj), obj)
        self.assertTrue(h.dead)

    def test_current_inside_uthread(self):
        seen = []
        h = P.spawn(lambda _: seen.append(P.current()))
        P.switch(h)
        self.assertIs(seen[0], h)
        self.assertIs(P.current(), self.main)

    def test_nested_spawn_returns_to_parent(self):
        def outer(_):
            inner = P.spawn(lambda v: v * 2)
            got = P.switch(inner, 21)   # inner finishes: its value comes back here
            return ("outer", got)

        self.assertEqual(P.switch(P.spawn(outer)), ("outer", 42))

    def test_ring_of_uthreads(self):
        n = 50
        hs = []

        def node(i):
            def body(v):
                while True:
                    nxt = hs[(i + 1) % n] if v < 1000 else self.main
                    v = P.switch(nxt, v + 1)
            return body

        hs.extend(P.spawn(node(i)) for i in range(n))
        self.assertEqual(P.switch(hs[0], 0), 1001)
        for h in hs:  # finish them: the exception ends each one and comes back to main
            self.assertFalse(h.dead)
            with self.assertRaises(KeyError):
                P.throw(h, KeyError("stop"))
            self.assertTrue(h.dead)

    def test_switch_to_dead_is_an_error(self):
        h = P.spawn(lambda _: None)
        P.switch(h)
        with self.assertRaises(ValueError):
            P.switch(h)

    def test_status(self):
        h = P.spawn(lambda _: P.switch(self.main, "in"))
        self.assertEqual(h.status, 0)  # NEW
        seen = P.switch(h)
        self.assertEqual(seen, "in")
        self.assertEqual(h.status, 2)  # SUSPENDED
        self.assertEqual(self.main.status, 1)  # RUNNING (restored)
        P.switch(h)
        self.assertEqual(h.status, 3)  # FINISHED


class TestExceptions(Base):
    def test_exception_propagates_to_parent(self):
        def boom(_):
            raise ValueError("boom")

        with self.assertRaises(ValueError) as cm:
            P.switch(P.spawn(boom))
        self.assertEqual(str(cm.exception), "boom")

    def test_exception_after_switches(self):
        def worker(_):
            P.switch(self.main, 1)
            P.switch(self.main, 2)
            raise LookupError("late")

        h = P.spawn(worker)
        self.assertEqual(P.switch(h), 1)
        self.assertEqual(P.switch(h), 2)
        with self.assertRaises(LookupError):
            P.switch(h)
        self.assertTrue(h.dead)

    def test_throw_into_suspended(self):
        def worker(_):
            try:
                P.switch(self.main, "waiting")
            except KeyError as e:
                return ("caught", e.args[0], sys.exc_info()[0])
            return "not thrown"

        h = P.spawn(worker)
        self.assertEqual(P.switch(h), "waiting")
        self.assertEqual(P.throw(h, KeyError("k")), ("caught", "k", KeyError))

    def test_throw_into_new_goes_to_parent(self):
        called = []
        h = P.spawn(lambda _: called.append(1))
        with self.assertRaises(IndexError):
            P.throw(h, IndexError)
        self.assertTrue(h.dead)
        self.assertEqual(called, [])

    def test_traceback_through_uthread(self):
        def level3():
            raise RuntimeError("deep")

        def level2():
            level3()

        def level1(_):
            P.switch(self.main, "once")
            level2()

        h = P.spawn(level1)
        P.switch(h)
        try:
            P.switch(h)
        except RuntimeError as e:
            names = [fs.name for fs in traceback.extract_tb(e.__traceback__)]
            text = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        else:
            self.fail("no exception")
        self.assertEqual(names, ["test_traceback_through_uthread", "level1", "level2", "level3"])
        self.assertIn("raise RuntimeError(\"deep\")", text)

    def test_traceback_inside_uthread_stops_at_its_bottom(self):
        def inner():
            return traceback.extract_stack()

        def body(_):
            return [fs.name for fs in inner()]

        names = P.switch(P.spawn(body))
        # the stack of a uthread starts at its own callable (probe calls it from C)
        self.assertEqual(names, ["body", "inner"])

    def test_format_exc_inside_uthread(self):
        def body(_):
            try:
                {}["missing"]
            except KeyError:
                return traceback.format_exc()

        text = P.switch(P.spawn(body))
        self.assertIn("KeyError: 'missing'", text)
        self.assertIn("in body", text)

    def test_keyboardinterrupt_propagates(self):
        def body(_):
            P.switch(self.main, "ready")
            raise KeyboardInterrupt

        h = P.spawn(body)
        P.switch(h)
        with self.assertRaises(KeyboardInterrupt):
            P.switch(h)
        self.assertTrue(h.dead)

    def test_sigint_inside_uthread(self):
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            self.skipTest("SIGINT handler replaced")

        def body(_):
            P.switch(self.main, "ready")
            signal.raise_signal(signal.SIGINT)
            for _ in range(1000):  # the handler runs at the next eval break
                pass
            return "not interrupted"

        h = P.spawn(body)
        P.switch(h)
        with self.assertRaises(KeyboardInterrupt):
            P.switch(h)
        self.assertTrue(h.dead)

    def test_exception_context_does_not_leak_across_uthreads(self):
        # __context__ is taken from the exception being handled where the exception is raised:
        # a uthread handling nothing gives none, even if its parent is in an except block.
        def body(_):
            raise ValueError("fresh")

        def body2(_):
            try:
                raise ValueError("fresh")
            except ValueError as e:
                return e.__context__

        try:
            raise KeyError("main's")
        except KeyError:
            with self.assertRaises(ValueError) as cm:
                P.switch(P.spawn(body))
            self.assertIsNone(P.switch(P.spawn(body2)))
        self.assertIsNone(cm.exception.__context__)


class TestExcInfo(Base):
    def test_exc_info_is_per_uthread(self):
        log = []

        def body(_):
            log.append(("A start", sys.exc_info()[0]))
            try:
                raise ValueError("A's")
            except ValueError:
                log.append(("A handling", sys.exc_info()[0]))
                P.switch(self.main, None)
                log.append(("A back", sys.exc_info()[0]))
                P.switch(self.main, None)
                log.append(("A again", sys.exc_info()[0]))
            log.append(("A after", sys.exc_info()[0]))

        try:
            raise KeyError("main's")
        except KeyError:
            h = P.spawn(body)          # spawned while main handles KeyError
            P.switch(h)
            log.append(("main 1", sys.exc_info()[0]))
        log.append(("main 2", sys.exc_info()[0]))
        P.switch(h)
        log.append(("main 3", sys.exc_info()[0]))
        try:
            raise TypeError
        except TypeError:
            P.switch(h)
            log.append(("main 4", sys.exc_info()[0]))
        self.assertEqual(log, [
            ("A start", None),
            ("A handling", ValueError),
            ("main 1", KeyError),
            ("main 2", None),
            ("A back", ValueError),
            ("main 3", None),
            ("A again", ValueError),
            ("A after", None),
            ("main 4", TypeError),
        ])

    def test_bare_raise_reraises_own_exception(self):
        def body(_):
            try:
                raise ValueError("mine")
            except ValueError:
                P.switch(self.main, None)
                raise

        h = P.spawn(body)
        P.switch(h)
        try:
            raise KeyError("other")
        except KeyError:
            with self.assertRaises(ValueError) as cm:
                P.switch(h)
        self.assertEqual(str(cm.exception), "mine")

    def test_exc_info_inside_generator_in_uthread(self):
        def gen():
            try:
                raise OSError("gen's")
            except OSError:
                yield sys.exc_info()[0]
                P.switch(self.main, sys.exc_info()[0])
                yield sys.exc_info()[0]
            yield sys.exc_info()[0]

        def body(_):
            g = gen()
            out = [next(g), sys.exc_info()[0]]
            out.append(next(g))
            out.append(next(g))
            return out

        h = P.spawn(body)
        self.assertIs(P.switch(h), OSError)   # switched out from inside the generator
        self.assertIsNone(sys.exc_info()[0])
        self.assertEqual(P.switch(h), [OSError, None, OSError, None])

    def test_many_uthreads_each_handling(self):
        hs = []
        n = 200

        def body(i):
            def f(_):
                try:
                    raise ValueError(i)
                except ValueError:
                    P.switch(self.main, None)
                    return sys.exc_info()[1].args[0]
            return f

        for i in range(n):
            h = P.spawn(body(i))
            P.switch(h)
            hs.append(h)
        gc.collect()
        self.assertEqual([P.switch(h) for h in reversed(hs)], list(reversed(range(n))))


class TestRecursion(Base):
    def test_deep_recursion_near_limit_in_main_and_uthread(self):
        limit = sys.getrecursionlimit()
        target = limit - 60
        d = recurse(target - depth_now())
        self.assertGreaterEqual(d, target)

        def body(_):
            return recurse(target - depth_now())

        self.assertGreaterEqual(P.switch(P.spawn(body)), target)

    def test_recursion_counters_are_per_uthread(self):
        # main is deep when it starts a uthread: the uthread still has the full budget,
        # and main keeps its own depth across the switches.
        limit = sys.getrecursionlimit()
        target = limit - 60

        def body(_):
            r = recurse(target - depth_now())
            P.switch(self.main, r)
            return recurse(target - depth_now())

        def deep_in_main(n):
            if n > 0:
                return deep_in_main(n - 1)
            h = P.spawn(body)
            a = P.switch(h)
            b = P.switch(h)
            return a, b, recurse(target - depth_now())

        a, b, c = deep_in_main(limit // 2)
        self.assertGreaterEqual(a, target)
        self.assertGreaterEqual(b, target)
        self.assertGreaterEqual(c, target)

    def test_recursion_error_in_uthread_is_clean(self):
        def body(_):
            try:
                recurse_forever()
            except RecursionError:
                pass
            # the counters came back down: deep recursion still works
            r = recurse(sys.getrecursionlimit() - 60 - depth_now())
            recurse_forever()  # and again, this time escaping

        with self.assertRaises(RecursionError):
            P.switch(P.spawn(body))
        # main is unaffected
        self.assertGreaterEqual(recurse(self.limit - 60 - depth_now()), self.limit - 60)

    def test_recursion_error_in_main_with_suspended_uthreads(self):
        def body(_):
            P.switch(self.main, recurse(300))
            return "ok"

        hs = [P.spawn(body) for _ in range(3)]
        for h in hs:
            P.switch(h)
        with self.assertRaises(RecursionError):
            recurse_forever()
        self.assertEqual([P.switch(h) for h in hs], ["ok"] * 3)

    def test_switch_at_depth_both_sides(self):
        # suspended deep in recursion on both sides, many times
        def deep_switch(n, peer):
            if n == 0:
                for i in range(20):
                    P.switch(peer, i)
                return depth_now()
            return deep_switch(n - 1, peer)

        h = P.spawn(lambda _: deep_switch(400, self.main))
        got = []

        def main_side(n):
            if n == 0:
                v = P.switch(h)
                while not h.dead:
                    got.append(v)
                    v = P.switch(h)
                return v
            return main_side(n - 1)

        final = main_side(300)
        self.assertEqual(got, list(range(20)))
        self.assertGreaterEqual(final, 400)

    def test_depth_counters_restored_on_switch(self):
        # each side keeps its own count: a uthread suspended 600 deep does not eat main's budget,
        # and both still get a RecursionError just past the limit.
        limit = sys.getrecursionlimit()

        def check_budget(who):
            d = depth_now()
            recurse(limit - 60 - d)                  # fits
            try:
                recurse(limit + 50 - d)              # does not
            except RecursionError:
                return
            raise AssertionError("%s: no RecursionError past the limit" % who)

        def deep(n):
            if n:
                return deep(n - 1)
            P.switch(self.main, None)
            check_budget("uthread")
            return "ok"

        h = P.spawn(lambda _: deep(600))
        P.switch(h)
        check_budget("main")
        self.assertEqual(P.switch(h), "ok")
        check_budget("main again")

    def test_c_recursion_counters_restored_on_switch(self):
        # the counter behind C-level recursion (repr of nested lists): Python's recursion limit on
        # 3.10/3.11, the separate C recursion limit on 3.12/3.13
        c_limit = {(3, 10): 1000, (3, 11): 1000, (3, 12): 1500}.get(PY, 10000)
        if PY <= (3, 11):
            c_limit = sys.getrecursionlimit()

        class SwitchOnRepr:
            def __repr__(self):
                P.switch(P.main(), "inside repr")
                return "x"

        def nested(obj, n):
            for _ in range(n):
                obj = [obj]
            return obj

        def body(_):
            return repr(nested(SwitchOnRepr(), int(c_limit * 0.7)))

        h = P.spawn(body)
        self.assertEqual(P.switch(h), "inside repr")     # suspended deep inside repr
        self.assertTrue(repr(nested(None, int(c_limit * 0.5))).startswith("[[["))
        with self.assertRaises(RecursionError):
            repr(nested(None, c_limit + 100))
        n = int(c_limit * 0.7)
        self.assertEqual(P.switch(h), "[" * n + "x" + "]" * n)

    def test_c_recursion_budget_fits_a_small_stack(self):
        # 3.12+: with the budget derived from a 256 KiB stack, C recursion that would overflow
        # that stack with CPython's full limit ends in RecursionError
        if PY < (3, 12):
            self.skipTest("3.10/3.11 count C recursion against the Python recursion limit")
        import json

        def body(_):
            x = []
            for _ in range(20000):
                x = [x]
            out = []
            for fn in (repr, json.dumps, str):
                try:
                    fn(x)
                    out.append("no error")
                except RecursionError:
                    out.append("RecursionError")
            def f(n):
                return sum(map(f, [n + 1]))
            try:
                f(0)
            except RecursionError:
                out.append("RecursionError")
            del x
            return out

        h = P.spawn(body, stack_size=256 * 1024, fit_c_recursion=True)
        self.assertLess(h.c_recursion_budget, 1000)
        self.assertEqual(P.switch(h), ["RecursionError"] * 4)
        big = P.spawn(lambda _: None, stack_size=64 * 1024 * 1024, fit_c_recursion=True)
        self.assertEqual(big.c_recursion_budget, P.spawn(lambda _: None).c_recursion_budget)
        P.switch(big)

    def test_trash_nesting_is_per_uthread(self):
        # a uthread suspended inside nested deallocations must not make main's deallocations go
        # through the trashcan's deferred list (3.10-3.12 count that nesting separately)
        class Obj:
            pass

        class SwitchOnDel:
            def __del__(self):
                P.switch(P.main(), "in __del__")

        def nested(obj, n):
            for _ in range(n):
                obj = [obj]
            return obj

        def body(_):
            x = nested(SwitchOnDel(), 45)
            del x
            return "done"

        h = P.spawn(body)
        self.assertEqual(P.switch(h), "in __del__")
        o = Obj()
        r = weakref.ref(o)
        y = nested(o, 10)
        del o, y
        self.assertIsNone(r(), "deallocation was deferred: trashcan nesting leaked from a uthread")
        self.assertEqual(P.switch(h), "done")

    def test_setrecursionlimit_while_suspended(self):
        def body(_):
            recurse_then_wait(100)
            return "done"

        def recurse_then_wait(n):
            if n:
                return recurse_then_wait(n - 1)
            P.switch(self.main, depth_now())
            # the new limit applies here too, counted from this uthread's own depth
            try:
                recurse(sys.getrecursionlimit() - 60 - depth_now())
            except RecursionError:
                raise AssertionError("new limit not applied to the suspended uthread")
            with_budget = sys.getrecursionlimit() - depth_now()
            try:
                recurse(with_budget + 50)
            except RecursionError:
                return
            raise AssertionError("no RecursionError past the new limit")

        h = P.spawn(body)
        P.switch(h)
        sys.setrecursionlimit(self.limit + 500)
        self.assertEqual(P.switch(h), "done")

    def test_c_level_recursion_in_uthread(self):
        # nesting that recurses in C (repr of nested lists) must end in RecursionError, not a crash
        def body(_):
            x = []
            for _ in range(200000):
                x = [x]
            try:
                repr(x)
            except RecursionError:
                ok = True
            else:
                ok = False
            del x  # 200000-deep dealloc: the trashcan must cope inside a uthread
            return ok

        self.assertTrue(P.switch(P.spawn(body)))

    def test_trashcan_with_switch_inside_dealloc_chain(self):
        class Switcher:
            def __del__(self):
                P.switch(P.main(), "from __del__")

        def body(_):
            x = [Switcher()]
            for _ in range(100000):
                x = [x]
            del x
            return "freed"

        h = P.spawn(body)
        self.assertEqual(P.switch(h), "from __del__")
        junk = []
        for _ in range(20000):
            junk = [junk]
        del junk
        self.assertEqual(P.switch(h), "freed")


class TestContextVars(Base):
    def test_contextvars_are_per_uthread(self):
        var = contextvars.ContextVar("var", default="default")
        var.set("main")
        log = []

        def a(_):
            log.append(("a sees", var.get()))
            var.set("a")
            P.switch(self.main, None)
            log.append(("a still", var.get()))

        def b(_):
            log.append(("b sees", var.get()))
            var.set("b")

        ha, hb = P.spawn(a), P.spawn(b)
        P.switch(ha)
        log.append(("main", var.get()))
        P.switch(hb)
        log.append(("main", var.get()))
        P.switch(ha)
        log.append(("main", var.get()))
        self.assertEqual(log, [
            ("a sees", "default"), ("main", "main"), ("b sees", "default"), ("main", "main"),
            ("a still", "a"), ("main", "main"),
        ])

    def test_cache_invalidated_on_every_switch(self):
        var = contextvars.ContextVar("cached")

        def body(_):
            i = 0
            while True:
                var.set(("u", i))
                i = P.switch(self.main, var.get())

        h = P.spawn(body)
        for i in range(2000):
            var.set(("m", i))
            self.assertEqual(var.get(), ("m", i))
            self.assertEqual(P.switch(h, i + 1), ("u", i + 1) if i else ("u", 0))
            self.assertEqual(var.get(), ("m", i))

    def test_get_and_set_context_of_suspended(self):
        var = contextvars.ContextVar("v")

        def body(_):
            var.set(1)
            P.switch(self.main, None)
            return var.get("unset")

        h = P.spawn(body)
        P.switch(h)
        ctx = h.context
        self.assertIsInstance(ctx, contextvars.Context)
        self.assertEqual(ctx[var], 1)
        new = contextvars.Context()
        new.run(var.set, 99)
        h.context = new
        self.assertIs(h.context, new)
        self.assertEqual(P.switch(h), 99)

    def test_context_of_new_uthread(self):
        var = contextvars.ContextVar("v")
        var.set("main")
        h = P.spawn(lambda _: var.get("unset"))
        self.assertIsNone(h.context)
        h.context = contextvars.copy_context()
        self.assertEqual(P.switch(h), "main")
        h2 = P.spawn(lambda _: var.get("unset"))
        self.assertEqual(P.switch(h2), "unset")

    def test_set_context_of_running_uthread(self):
        var = contextvars.ContextVar("v")

        def body(_):
            me = P.current()
            ctx = contextvars.Context()
            ctx.run(var.set, "installed")
            me.context = ctx
            a = var.get("unset")
            me.context = None
            return a, var.get("unset")

        self.assertEqual(P.switch(P.spawn(body)), ("installed", "unset"))

    def test_context_of_main(self):
        var = contextvars.ContextVar("v")
        var.set("main value")
        self.assertEqual(self.main.context[var], "main value")  # main is running: the live one

        def body(_):
            ctx = self.main.context        # main is suspended: its saved context
            return ctx[var]

        self.assertEqual(P.switch(P.spawn(body)), "main value")

    def test_context_run_across_switches(self):
        var = contextvars.ContextVar("v", default=0)
        ctx = contextvars.copy_context()

        def inside():
            var.set(5)
            P.switch(self.main, var.get())
            return var.get()

        h = P.spawn(lambda _: ctx.run(inside))
        self.assertEqual(P.switch(h), 5)
        self.assertEqual(var.get(), 0)
        with self.assertRaises(RuntimeError):  # entered in the suspended uthread
            ctx.run(lambda: None)
        self.assertEqual(P.switch(h), 5)
        self.assertEqual(ctx[var], 5)

    def test_asyncio_context_in_uthread(self):
        var = contextvars.ContextVar("v", default="none")

        async def main_coro():
            var.set("task")
            await asyncio.sleep(0)
            return var.get()

        def body(_):
            return asyncio.run(main_coro())

        self.assertEqual(P.switch(P.spawn(body)), "task")
        self.assertEqual(var.get(), "none")


class TestTracing(Base):
    def test_settrace_in_main_sees_uthread_calls(self):
        calls = []

        def tracer(frame, event, arg):
            if event == "call":
                calls.append(frame.f_code.co_name)
            return None

        def traced_in_uthread():
            return 1

        def body(_):
            traced_in_uthread()
            P.switch(self.main, None)
            traced_in_uthread()

        h = P.spawn(body)
        sys.settrace(tracer)
        P.switch(h)
        P.switch(h)
        sys.settrace(None)
        self.assertIn("body", calls)
        self.assertEqual(calls.count("traced_in_uthread"), 2)

    def test_settrace_while_uthread_suspended(self):
        # tracing switched on and off while a uthread is suspended applies to it when it resumes
        calls = []

        def tracer(frame, event, arg):
            if event == "call":
                calls.append(frame.f_code.co_name)

        def probe_fn():
            return 5

        def body(_):
            probe_fn()                   # not traced
            P.switch(self.main, None)
            probe_fn()                   # traced: settrace happened while suspended
            P.switch(self.main, None)
            probe_fn()                   # not traced again

        h = P.spawn(body)
        P.switch(h)
        sys.settrace(tracer)
        P.switch(h)
        sys.settrace(None)
        P.switch(h)
        self.assertEqual(calls.count("probe_fn"), 1)

    def test_settrace_in_uthread_sees_main_calls(self):
        calls = []

        def tracer(frame, event, arg):
            if event == "call":
                calls.append(frame.f_code.co_name)

        def traced_in_main():
            return 2

        def body(_):
            sys.settrace(tracer)
            P.switch(self.main, None)
            sys.settrace(None)

        h = P.spawn(body)
        P.switch(h)
        traced_in_main()
        P.switch(h)
        traced_in_main()
        self.assertEqual(calls.count("traced_in_main"), 1)

    def test_line_tracing_inside_uthread(self):
        lines = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name == "lined":
                lines.append(event)
                return tracer
            return tracer

        def lined():
            a = 1
            P.switch(self.main, None)
            b = 2
            return a + b

        h = P.spawn(lambda _: lined())
        sys.settrace(tracer)
        P.switch(h)
        P.switch(h)
        sys.settrace(None)
        self.assertEqual(lines[0], "call")
        self.assertGreaterEqual(lines.count("line"), 4)
        self.assertEqual(lines[-1], "return")

    def test_setprofile_sees_uthread_calls(self):
        events = []

        def profiler(frame, event, arg):
            if event == "call":
                events.append(frame.f_code.co_name)
            elif event == "c_call":
                events.append("c:" + getattr(arg, "__name__", "?"))

        def profiled():
            return len([1, 2])

        def body(_):
            profiled()
            P.switch(self.main, None)
            profiled()

        h = P.spawn(body)
        sys.setprofile(profiler)
        P.switch(h)
        P.switch(h)
        sys.setprofile(None)
        self.assertEqual(events.count("profiled"), 2)
        self.assertGreaterEqual(events.count("c:len"), 2)

    def test_trace_function_that_switches(self):
        # a tracer that switches away (like a debugger waiting on an event loop): while it is
        # suspended, other uthreads run untraced; tracing resumes when it comes back.
        calls = []
        switcher = {}

        def tracer(frame, event, arg):
            if event == "call":
                calls.append(frame.f_code.co_name)
                if frame.f_code.co_name == "pause_here":
                    P.switch(switcher["main"], "paused in tracer")
            return None

        def pause_here():
            return "paused function ran"

        def untraced_while_paused():
            return 3

        def after_resume():
            return 4

        def body(_):
            sys.settrace(tracer)
            r = pause_here()
            after_resume()
            sys.settrace(None)
            return r

        switcher["main"] = self.main
        h = P.spawn(body)
        self.assertEqual(P.switch(h), "paused in tracer")
        untraced_while_paused()
        self.assertEqual(P.switch(h), "paused function ran")
        self.assertIn("pause_here", calls)
        self.assertIn("after_resume", calls)
        self.assertNotIn("untraced_while_paused", calls)


class TestFrames(Base):
    def test_frame_of_suspended_uthread(self):
        def waiter():
            P.switch(self.main, None)  # line checked below
            return "woke"

        def body(_):
            return waiter()

        h = P.spawn(body)
        self.assertIsNone(h.frame)         # NEW
        P.switch(h)
        f = h.frame
        self.assertIsInstance(f, types.FrameType)
        self.assertEqual(f.f_code.co_name, "waiter")
        self.assertEqual(f.f_lineno, waiter.__code__.co_firstlineno + 1)
        self.assertEqual(f.f_back.f_code.co_name, "body")
        self.assertIsNone(f.f_back.f_back)
        self.assertIs(h.frame, f)
        names = [fs.name for fs in traceback.extract_stack(f)]
        self.assertEqual(names, ["body", "waiter"])
        self.assertIsNone(self.main.frame)  # running
        self.assertEqual(P.switch(h), "woke")
        self.assertIsNone(h.frame)         # dead
        del f

    def test_frames_of_a_suspended_copying_uthread(self):
        # Copying mode: the uthread's C stack is on the heap while another copying uthread runs
        # at the same addresses. Its frame chain must not lead there (on 3.12+ the entry frames
        # of evals entered from C live on the C stack), and must be whole again when it resumes.
        main = self.main

        def deep(n):
            if n == 0:
                return P.switch(main, None)
            return list(map(deep, [n - 1]))[0]  # each level enters the eval loop from C

        def flat(n):
            pad = [0] * 100
            return P.switch(main, None) if n == 0 else flat(n - 1) or pad[0]

        for k in range(3):
            g = P.spawn(lambda _: deep(5), stack_size=256 * 1024, copying=True)
            P.switch(g)
            other = P.spawn(lambda _: sorted([3, 2, 1], key=lambda v: flat(20 + k) if v == 2 else v),
                            stack_size=256 * 1024, copying=True)
            P.switch(other)  # its different C frames now occupy the shared stack
            names = []
            f = g.frame
            while f is not None:
                names.append(f.f_code.co_name)
                f = f.f_back
            self.assertEqual(names, ["deep"] * 6 + ["<lambda>"])
            del f
            self.assertEqual(P.switch(g, "back"), "back")  # unwinds through the restored links
            self.assertEqual(P.switch(other, 0), [2, 1, 3])  # keys 3, 0, 1

    def test_frame_locals_of_suspended_uthread(self):
        def body(_):
            secret = {"k": 42}
            P.switch(self.main, None)
            return secret["k"]

        h = P.spawn(body)
        P.switch(h)
        self.assertEqual(h.frame.f_locals["secret"], {"k": 42})
        gc.collect()
        self.assertEqual(P.switch(h), 42)

    def test_getframe_chain_in_uthread_ends_at_its_bottom(self):
        def body(_):
            return depth_now()

        # body + depth_now
        self.assertEqual(P.switch(P.spawn(body)), 2)

    def test_frames_of_many_suspended_uthreads(self):
        def make(i):
            def f(_):
                P.switch(self.main, None)
            f.__name__ = f.__qualname__ = "u%d" % i
            f.__code__ = f.__code__.replace(co_name="u%d" % i)
            return f

        hs = [P.spawn(make(i)) for i in range(100)]
        for h in hs:
            P.switch(h)
        self.assertEqual([h.frame.f_code.co_name for h in hs], ["u%d" % i for i in range(100)])
        for h in hs:
            P.switch(h)

    def test_frame_at_depth(self):
        def rec(n):
            if n == 0:
                P.switch(self.main, None)
                return
            rec(n - 1)

        h = P.spawn(lambda _: rec(50))
        P.switch(h)
        f = h.frame
        n = 0
        while f is not None:
            n += 1
            f = f.f_back
        self.assertEqual(n, 51 + 1)  # 51 rec frames + the lambda
        P.switch(h)


class TestScale(Base):
    def test_thousands_alive(self):
        n = 5000
        hs = []

        def make(i):
            def body(v):
                local = [i] * 3
                v = P.switch(self.main, v + i)
                return sum(local) + v
            return body

        for i in range(n):
            h = P.spawn(make(i), stack_size=256 * 1024)
            self.assertEqual(P.switch(h, 1), 1 + i)
            hs.append(h)
        self.assertTrue(all(not h.dead for h in hs))
        gc.collect()
        for i, h in enumerate(hs):
            self.assertEqual(P.switch(h, 2), 3 * i + 2)
        self.assertTrue(all(h.dead for h in hs))

    @unittest.skipIf(sys.version_info < (3, 11), "3.10 has no frame data stack")
    def test_root_chunk_of_a_finished_uthread_is_reused(self):
        def body(v):
            return P.root_chunk()

        first = P.spawn(body, stack_size=64 * 1024)
        a = P.switch(first, 0)
        second = P.spawn(body, stack_size=64 * 1024)
        b = P.switch(second, 0)
        self.assertTrue(first.dead and second.dead)
        self.assertEqual(a, b, "the second uthread should get the first one's root chunk back")
        self.assertNotEqual(a, P.root_chunk(), "a uthread never shares the thread's own chunk")

    @unittest.skipIf(sys.version_info < (3, 11), "3.10 has no frame data stack")
    def test_live_uthreads_have_distinct_root_chunks(self):
        main = self.main

        def body(v):
            P.switch(main, P.root_chunk())
            return 0

        hs = [P.spawn(body, stack_size=64 * 1024) for _ in range(40)]  # more than the pool holds
        roots = [P.switch(h, 0) for h in hs]
        self.assertEqual(len(set(roots)), len(roots))
        for h in hs:
            P.switch(h)
        self.assertTrue(all(h.dead for h in hs))

    def test_deep_data_stack_then_pool_drained(self):
        # frames beyond the root chunk live in chunks CPython frees on return; only the root is
        # pooled, and draining the pool leaves later uthreads working
        def body(v):
            def inner(n):
                return inner(n - 1) + 1 if n else v
            return inner(400)

        for i in range(50):
            h = P.spawn(body, stack_size=1024 * 1024)
            self.assertEqual(P.switch(h, i), 400 + i)
            if i % 7 == 0:
                P.drain_pool()
        P.drain_pool()
        P.drain_pool()
        h = P.spawn(body, stack_size=1024 * 1024)
        self.assertEqual(P.switch(h, 1), 401)

    def test_abandoned_uthread_frames_released_when_unreferenced(self):
        main = self.main

        def body(v):
            def inner(n):
                return inner(n - 1) if n else P.switch(main, v)
            return inner(20)

        h = P.spawn(body, stack_size=256 * 1024)
        P.switch(h, 1)
        self.assertTrue(P.abandon(h))
        self.assertIsNone(h.frame)
        done = P.spawn(lambda v: v, stack_size=64 * 1024)
        P.switch(done, 0)
        self.assertEqual(h.status, done.status, "released: its state is FINISHED")
        with self.assertRaises(ValueError):
            P.abandon(h)  # dead now

    def test_abandoned_uthread_with_frame_object_is_leaked_not_freed(self):
        main = self.main

        def body(v):
            marker = "still readable"
            P.switch(main, v)
            return marker

        h = P.spawn(body, stack_size=256 * 1024)
        P.switch(h, 1)
        frame = h.frame
        released = P.abandon(h)
        if sys.version_info >= (3, 11):
            self.assertFalse(released, "a frame object points into its frames: must not free them")
        # (3.10: frames are objects; the C stack's reference is dropped and ours keeps it alive)
        # the frame object is still safe to use
        self.assertEqual(frame.f_code.co_name, "body")
        self.assertEqual(frame.f_locals["marker"], "still readable")
        self.assertGreater(frame.f_lineno, 0)

    def test_abandoned_uthread_inside_generator_is_leaked_not_freed(self):
        main = self.main

        def gen():
            yield P.switch(main, 1)

        def body(v):
            return next(gen())

        h = P.spawn(body, stack_size=256 * 1024)
        P.switch(h, 0)
        self.assertFalse(P.abandon(h), "a generator's frame links into its chain: must not free it")

    def test_no_memory_growth_when_uthreads_finish(self):
        # a finished uthread must give back its data-stack chunk (3.11+) and everything else
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * 4096

        def body(v):
            def inner(n):
                return inner(n - 1) if n else P.switch(self.main, v)
            return inner(30)

        def cycle(n):
            for i in range(n):
                h = P.spawn(body, stack_size=64 * 1024)
                P.switch(h, i)
                P.switch(h)

        cycle(2000)
        gc.collect()
        before = rss()
        cycle(20000)
        gc.collect()
        grown = rss() - before
        self.assertLess(grown, 16 * 1024 * 1024, "RSS grew by %d bytes" % grown)

    def test_create_and_finish_many(self):
        for i in range(20000):
            self.assertEqual(P.switch(P.spawn(lambda v: v + 1, stack_size=64 * 1024), i), i + 1)


class TestGeneratorsAndCoroutines(Base):
    def test_generator_advanced_by_several_uthreads(self):
        def gen():
            for i in range(6):
                yield i

        g = gen()

        def body(_):
            while True:
                try:
                    v = next(g)
                except StopIteration:
                    return "exhausted"
                P.switch(self.main, ("u", v))

        h = P.spawn(body)
        out = []
        for _ in range(3):
            out.append(P.switch(h))
            out.append(("m", next(g)))
        self.assertEqual(out, [("u", 0), ("m", 1), ("u", 2), ("m", 3), ("u", 4), ("m", 5)])
        self.assertEqual(P.switch(h), "exhausted")

    def test_switch_inside_generator_body(self):
        def gen():
            for i in range(3):
                got = P.switch(self.main, ("in gen", i))
                yield got

        def body(_):
            return list(gen())

        h = P.spawn(body)
        self.assertEqual(P.switch(h), ("in gen", 0))
        self.assertEqual(P.switch(h, "a"), ("in gen", 1))
        # the generator is running (in the suspended uthread): main cannot advance it
        self.assertEqual(P.switch(h, "b"), ("in gen", 2))
        self.assertEqual(P.switch(h, "c"), ["a", "b", "c"])

    def test_generator_running_in_suspended_uthread_is_busy(self):
        def gen():
            P.switch(self.main, None)
            yield 1

        g = gen()
        h = P.spawn(lambda _: next(g))
        P.switch(h)
        with self.assertRaises(ValueError):  # generator already executing
            next(g)
        self.assertEqual(P.switch(h), 1)

    def test_coroutine_driven_across_uthreads(self):
        class Yield:
            def __await__(self):
                return (yield "suspended")

        async def coro():
            a = await Yield()
            b = await Yield()
            P.switch(self.main, "switched inside coroutine")
            return a + b

        c = coro()
        h = P.spawn(lambda _: c.send(None))
        self.assertEqual(P.switch(h), "suspended")   # first send in the uthread
        self.assertEqual(c.send(1), "suspended")     # second in main
        h2 = P.spawn(lambda _: c.send(2))
        self.assertEqual(P.switch(h2), "switched inside coroutine")
        with self.assertRaises(StopIteration) as cm:
            P.switch(h2)
        self.assertEqual(cm.exception.value, 3)

    def test_asyncio_event_loops_in_uthreads(self):
        async def worker(tag):
            total = 0
            for i in range(5):
                await asyncio.sleep(0)
                total += i
            return tag, total

        def body(tag):
            def f(_):
                loop = asyncio.new_event_loop()
                try:
                    r = loop.run_until_complete(worker(tag))
                    P.switch(self.main, r)
                    return loop.run_until_complete(worker(tag + "2"))
                finally:
                    loop.close()
            return f

        h1, h2 = P.spawn(body("a")), P.spawn(body("b"))
        self.assertEqual(P.switch(h1), ("a", 10))
        self.assertEqual(P.switch(h2), ("b", 10))
        self.assertEqual(P.switch(h1), ("a2", 10))
        self.assertEqual(P.switch(h2), ("b2", 10))

    def test_async_generator_in_uthread(self):
        async def agen():
            for i in range(3):
                yield i

        async def consume():
            return [x async for x in agen()]

        def body(_):
            r = asyncio.run(consume())
            P.switch(self.main, "mid")
            return r

        h = P.spawn(body)
        self.assertEqual(P.switch(h), "mid")
        self.assertEqual(P.switch(h), [0, 1, 2])


class TestGC(Base):
    def test_gc_collect_while_suspended(self):
        class Node:
            pass

        def body(_):
            a, b = Node(), Node()
            a.other, b.other = b, a          # a cycle referenced only from this frame
            ref = weakref.ref(a)
            try:
                raise ValueError(a)          # and from the handled exception
            except ValueError:
                P.switch(self.main, None)
                gc.collect()
                P.switch(self.main, None)
                return ref() is a and sys.exc_info()[1].args[0] is a and a.other.other is a

        hs = [P.spawn(body) for _ in range(20)]
        for h in hs:
            P.switch(h)
        for _ in range(3):
            gc.collect()
        for h in hs:
            P.switch(h)
        gc.collect()
        self.assertEqual([P.switch(h) for h in hs], [True] * 20)

    def test_context_of_suspended_kept_alive_by_gc(self):
        var = contextvars.ContextVar("v")

        class Payload:
            pass

        def body(_):
            p = Payload()
            p.self = p
            var.set(p)
            P.switch(self.main, None)
            return var.get() is var.get().self

        h = P.spawn(body)
        P.switch(h)
        gc.collect()
        gc.collect()
        self.assertTrue(P.switch(h))

    def test_unstarted_handle_cycle_is_collected(self):
        class Box:
            pass

        box = Box()
        h = P.spawn(lambda _: box)
        box.h = h
        h.context = contextvars.Context()
        r = weakref.ref(box)
        del box, h
        gc.collect()
        self.assertIsNone(r())

    def test_cycle_through_context_of_new_handle_is_collected(self):
        var = contextvars.ContextVar("v")

        class Box:
            pass

        box = Box()
        h = P.spawn(lambda _: None)
        ctx = contextvars.Context()
        ctx.run(var.set, box)     # handle -> its context -> box -> handle
        box.h = h
        h.context = ctx
        r = weakref.ref(box)
        del box, h, ctx
        gc.collect()
        self.assertIsNone(r())

    def test_finished_handle_is_freed(self):
        h = P.spawn(lambda _: 1)
        before = sys.getrefcount(h)
        P.switch(h)
        self.assertTrue(h.dead)
        self.assertEqual(sys.getrefcount(h), before)  # the running self-reference is gone

        def body(_):
            P.switch(self.main, None)

        h2 = P.spawn(body)
        before = sys.getrefcount(h2)
        P.switch(h2)
        self.assertEqual(sys.getrefcount(h2), before + 1)  # held while suspended
        P.switch(h2)
        self.assertEqual(sys.getrefcount(h2), before)

    def test_finished_uthread_releases_its_context_and_exception(self):
        var = contextvars.ContextVar("v")

        class Obj(Exception):
            pass

        refs = []

        def body(_):
            o = Obj()
            refs.append(weakref.ref(o))
            var.set(o)
            try:
                raise o
            except Obj:
                P.switch(self.main, None)
            del o

        h = P.spawn(body)
        P.switch(h)
        self.assertIsNotNone(refs[0]())
        P.switch(h)
        gc.collect()
        self.assertIsNone(refs[0]())

    def test_suspended_frame_object_outlives_the_uthread(self):
        def body(_):
            x = "local value"
            P.switch(self.main, None)
            return x

        h = P.spawn(body)
        P.switch(h)
        f = h.frame
        P.switch(h)
        self.assertTrue(h.dead)
        self.assertEqual(f.f_code.co_name, "body")
        self.assertEqual(f.f_locals["x"], "local value")
        self.assertIsNone(f.f_back)
        self.assertIsInstance(f.f_lineno, int)

    def test_gc_from_inside_uthread(self):
        def body(_):
            garbage = []
            garbage.append(garbage)
            del garbage
            n = gc.collect()
            P.switch(self.main, n)
            return gc.collect()

        h = P.spawn(body)
        self.assertGreaterEqual(P.switch(h), 1)
        self.assertIsInstance(P.switch(h), int)


class TestThreads(Base):
    def test_uthreads_on_several_threads(self):
        errors = []
        results = {}

        def thread_main(tag):
            try:
                main = P.main()
                var = contextvars.ContextVar("t", default=None)

                def body(v):
                    total = 0
                    try:
                        raise KeyError(tag)
                    except KeyError:
                        while v is not None:
                            var.set((tag, v))
                            time.sleep(0)   # let the other thread run
                            total += v
                            assert sys.exc_info()[1].args[0] == tag
                            v = P.switch(main, var.get())
                    return total

                h = P.spawn(body)
                for i in range(300):
                    assert P.switch(h, i) == (tag, i)
                    assert sys.exc_info()[0] is None
                    assert var.get() is None
                results[tag] = P.switch(h, None)
            except BaseException as e:  # noqa
                errors.append((tag, repr(e), traceback.format_exc()))

        ts = [threading.Thread(target=thread_main, args=("t%d" % i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(results, {"t%d" % i: sum(range(300)) for i in range(4)})


    def test_inspect_uthreads_of_another_thread(self):
        var = contextvars.ContextVar("v")
        ready, done = threading.Event(), threading.Event()
        shared = {}

        def waiting_here():
            P.switch(shared["tmain"], None)

        def thread_main():
            shared["tmain"] = P.main()
            var.set("thread main's")
            h = P.spawn(lambda _: (var.set("thread uthread's"), waiting_here()))
            P.switch(h)
            shared["h"] = h
            ready.set()
            done.wait()          # releases the GIL: main thread inspects us meanwhile
            P.switch(h)

        t = threading.Thread(target=thread_main)
        t.start()
        ready.wait()
        try:
            self.assertEqual(shared["tmain"].context[var], "thread main's")   # running there
            self.assertEqual(shared["h"].context[var], "thread uthread's")    # suspended there
            self.assertEqual(shared["h"].frame.f_code.co_name, "waiting_here")
            self.assertNotIn(var, contextvars.copy_context())
        finally:
            done.set()
            t.join()
        self.assertTrue(shared["h"].dead)


class TestMisc(Base):
    def test_state_size_and_version(self):
        self.assertEqual(P.state_size() % 16, 0)
        self.assertEqual(P.compiled_version() >> 16, (sys.version_info[0] << 8) | sys.version_info[1])

    def test_with_statement_and_finally_across_switches(self):
        log = []

        class CM:
            def __enter__(self):
                log.append("enter")

            def __exit__(self, *exc):
                log.append(("exit", exc[0]))
                return True

        def body(_):
            with CM():
                try:
                    P.switch(self.main, None)
                    raise ZeroDivisionError
                finally:
                    log.append("finally")
            return "swallowed"

        h = P.spawn(body)
        P.switch(h)
        self.assertEqual(P.switch(h), "swallowed")
        self.assertEqual(log, ["enter", "finally", ("exit", ZeroDivisionError)])

    def test_trace_and_profile_left_unset(self):
        self.assertIsNone(sys.gettrace())
        self.assertIsNone(sys.getprofile())


def _all_tests():
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(sys.modules[__name__])

    def flat(s):
        for t in s:
            if isinstance(t, unittest.TestSuite):
                yield from flat(t)
            else:
                yield t

    return list(flat(suite))


def main(argv):
    tests = _all_tests()
    if argv[:1] == ["--list"]:
        for t in tests:
            print(t.id().split(".", 1)[1])
        return 0
    if argv:
        wanted = set(argv)
        tests = [t for t in tests if t.id().split(".", 1)[1] in wanted]
    print("CPython %s, uthread_pystate size %d bytes" % (sys.version.split()[0], P.state_size()))
    runner = unittest.TextTestRunner(verbosity=2, stream=sys.stdout)
    result = runner.run(unittest.TestSuite(tests))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - failed - len(result.skipped)
    gc.collect()
    print("RESULT passed=%d failed=%d skipped=%d" % (passed, failed, len(result.skipped)))
    sys.stdout.flush()
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
