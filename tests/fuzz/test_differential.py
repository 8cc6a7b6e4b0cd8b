"""Differential fuzzing: random programs run on real greenlet 3.5.6 and on uthread must leave
identical traces (tests/fuzz/program.py says what a program is and what a trace holds).

Run by ci/fuzz.sh (CI: 2,000 examples; `make fuzz`: 100,000). FUZZ_EXAMPLES sets the count.
"""

from __future__ import annotations

import gc
import itertools
import os
import random
import sys

import greenlet
import uthread
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(__file__))
from program import run_program  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
COUNTS = {"examples": 0, "diverged": 0}

assert greenlet.__version__ == "3.5.6", greenlet.__version__
assert not hasattr(greenlet, "_uthread"), "the fuzz venv must hold the real greenlet"


def programs() -> st.SearchStrategy:
    @st.composite
    def build(draw: st.DrawFn) -> tuple:
        n = draw(st.integers(2, 4))
        index = st.integers(0, n - 1)
        target = st.one_of(st.sampled_from(["main", "self", "parent"]), index)
        small = st.one_of(st.integers(-3, 99), st.sampled_from(["a", "b", ""]))
        args = st.lists(small, max_size=3).map(tuple)
        kwargs = st.lists(st.tuples(st.sampled_from(["x", "y"]), small), max_size=2, unique_by=lambda kv: kv[0]).map(tuple)
        plain = st.one_of(
            st.tuples(st.just("switch"), target, args, kwargs),
            st.tuples(st.just("switch"), target, args, kwargs),
            st.tuples(st.just("switch"), target, args, st.just(())),
            st.tuples(st.just("throw"), target, st.sampled_from(["boom", "exit", "type"])),
            st.tuples(st.just("raise"), st.sampled_from(["r1", "r2"])),
            st.tuples(st.just("return"), small),
            st.tuples(st.just("set_parent"), index, st.one_of(target, st.just("none"))),
            st.tuples(st.just("drop"), index),
            st.tuples(st.just("self_cycle")),
        )
        op = st.one_of(
            plain,
            plain,
            plain,
            st.tuples(st.just("callback"), st.sampled_from(["map", "gen"]), plain),
            st.tuples(st.just("nested_except"), plain),
        )
        main_ops = tuple(draw(st.lists(op, min_size=1, max_size=10)))
        bodies = tuple(tuple(draw(st.lists(op, max_size=6))) for _ in range(n))
        return (n, main_ops, bodies)

    return build()


def check(program: tuple) -> None:
    COUNTS["examples"] += 1
    # The programs call gc.collect() often; with hypothesis' own objects set aside (an O(1) move
    # to the permanent generation and back) each collection only walks the program's objects.
    gc.freeze()
    try:
        expected = run_program(greenlet, program)
        actual = run_program(uthread, program)
    finally:
        gc.unfreeze()
    if actual != expected:
        COUNTS["diverged"] += 1
        lines = [f"program: {program!r}", "first difference:"]
        for i, (a, b) in enumerate(zip(expected, actual)):
            if a != b:
                lines += [f"  [{i}] greenlet: {a!r}", f"  [{i}] uthread:  {b!r}"]
                break
        else:
            lines.append(f"  lengths: greenlet {len(expected)}, uthread {len(actual)}")
        raise AssertionError("\n".join(lines))


# Hypothesis keeps a record of every example of one run (about 100 KB each here), so a long run
# is made of chunks of CHUNK examples, each a run of its own with its own seed.
CHUNK = 2000


def run_chunk(examples: int, chunk_seed: int) -> None:
    @seed(chunk_seed)
    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(programs())
    def fuzz(program: tuple) -> None:
        check(program)

    try:
        fuzz()
    except BaseException:
        print(f"\nfuzz: divergence in the chunk with seed {chunk_seed}", file=sys.__stderr__)
        raise


def test_uthread_and_greenlet_agree_on_random_programs() -> None:
    base = int(os.environ.get("FUZZ_SEED") or random.randrange(1 << 32))
    print(f"\nfuzz: seed {base}, {EXAMPLES} examples", file=sys.__stderr__)
    try:
        done = 0
        for i in itertools.count():
            if done >= EXAMPLES:
                break
            n = min(CHUNK, EXAMPLES - done)
            run_chunk(n, base * 1_000_003 + i)
            done += n
    finally:
        print(f"\nfuzz: {COUNTS['examples']} examples, {COUNTS['diverged']} diverged", file=sys.__stderr__)
