"""Soak: uthread create -> switch -> finish, CYCLES times, with memory sampled 20 times.

Usage: python soak.py [CYCLES]      (default 1000000; at least 200000)
       SOAK_LEAK_EVERY=N python soak.py [CYCLES]   (control: keep every Nth uthread suspended)

Each cycle creates a uthread, starts it (it switches back to its parent with a value), resumes it
so that it returns, and drops it; every 100th is instead dropped while suspended (killed with
GreenletExit), every 1000th has a keyword argument and raises an exception that the caller
catches.

Every CYCLES/20 cycles (after a gc.collect()) it samples exact figures: the resident set from
/proc/self/smaps_rollup (a page-table walk; /proc/self/statm is the kernel's per-CPU
approximation and moves in 64 KiB steps on its own), the live Python objects
(sys.getallocatedblocks()) and the bytes C malloc has handed out (glibc's mallinfo2). The verdict
is judge() below, the same rules as tests/soak/soak.c; docs/reliability.md explains them. The last
line is `soak: N passed, M failed` (one per check: objects, malloc, rss).
"""

from __future__ import annotations

import ctypes
import gc
import os
import sys
from array import array

from uthread import getcurrent, greenlet

SAMPLES = 20  # memory samples over the run
WARMUP = 2  # the first samples, while pools, caches and the allocators fill up
BLOCKS_SLACK = 64  # live objects the interpreter's own caches may still vary by
MALLOC_SLACK = 64 * 1024  # bytes glibc may vary by (CPython's arenas come and go by mmap)


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


_libc = ctypes.CDLL(None)
_libc.mallinfo2.restype = _Mallinfo2


class Samples:
    """The samples, in arrays allocated up front: recording one creates no Python object, so the
    object count measures the soak and not its own bookkeeping."""

    def __init__(self) -> None:
        self.n = 0
        self.rss_kib = array("q", [0] * SAMPLES)
        self.blocks = array("q", [0] * SAMPLES)
        self.malloc_bytes = array("q", [0] * SAMPLES)

    def record(self) -> None:
        self.blocks[self.n] = sys.getallocatedblocks()
        self.malloc_bytes[self.n] = malloc_bytes()
        self.rss_kib[self.n] = rss_kib()
        self.n += 1


def rss_kib() -> int:
    """Exact resident set in KiB: the `Rss:` line of /proc/self/smaps_rollup."""
    with open("/proc/self/smaps_rollup", "rb") as f:
        data = f.read()
    return int(data.split(b"Rss:", 1)[1].split()[0])


def malloc_bytes() -> int:
    """Bytes C malloc has handed out and not got back (every arena, and its direct mmaps)."""
    mi = _libc.mallinfo2()
    return mi.uordblks + mi.hblkhd


def judge(samples: Samples) -> int:
    """The verdict over the samples after the warm-up, against the last warm-up sample.

    - objects and malloc: may never exceed the reference by more than their slack (the
      interpreter's free lists and small caches move a little; a per-cycle leak does not fit).
    - rss: growth is a rise above the reference by more than 1% spread over two or more sample
      intervals; a rise confined to one interval is a one-time step (a page faulted in late) and
      passes, reported, unless it exceeds 10%.
    """
    ref = WARMUP - 1
    passed = failed = 0
    for label, series, slack in (("objects", samples.blocks, BLOCKS_SLACK),
                                 ("malloc", samples.malloc_bytes, MALLOC_SLACK)):
        most = max(series[WARMUP:samples.n]) - series[ref]
        ok = most <= slack
        print(f"  {label}: {most:+d} at most after warm-up (limit +{slack}){'' if ok else '  <-- grows'}")
        passed += ok
        failed += not ok
    rss = samples.rss_kib[:samples.n]
    rises = sum(rss[k] > rss[k - 1] for k in range(WARMUP, len(rss)))
    growth = 100.0 * (max(rss[WARMUP:]) - rss[ref]) / rss[ref]
    ok = growth <= 10.0 and (growth <= 1.0 or rises <= 1)
    note = "  <-- grows" if not ok else " (a one-time step, not growth)" if growth > 1.0 else ""
    print(f"  rss: {growth:+.2f}% at most after warm-up, {rss[-1] - rss[ref]:+d} KiB at the end, "
          f"rising in {rises} of {len(rss) - WARMUP} intervals{note}")
    passed += ok
    failed += not ok
    print(f"soak: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


class Soaked(Exception):
    pass


def body(value: int, fail: bool = False) -> int:
    back = getcurrent().parent.switch(value + 1)
    if fail:
        raise Soaked(back)
    return back * 2


def main() -> int:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    leak_every = int(os.environ.get("SOAK_LEAK_EVERY", "0"))
    if cycles < 200_000:
        print("usage: soak.py [CYCLES >= 200000]", file=sys.stderr)
        return 2
    every = cycles // SAMPLES
    control = " (control: keeping a uthread per SOAK_LEAK_EVERY)" if leak_every > 0 else ""
    print(f"soak (Python {sys.version.split()[0]}): {cycles} create -> switch -> finish cycles, "
          f"memory every {every}{control}")
    print(f"  start: rss {rss_kib()} KiB, objects {sys.getallocatedblocks()}, malloc {malloc_bytes()} bytes")
    for _ in range(1000):  # the measuring code's own caches fill before the first sample
        rss_kib()
        malloc_bytes()
    kept = []
    samples = Samples()
    for i in range(1, cycles + 1):
        v = i & 0xFFFF
        fail = i % 1000 == 0
        g = greenlet(body)
        got = g.switch(v, fail=True) if fail else g.switch(v)
        assert got == v + 1, (i, got)
        if leak_every > 0 and i % leak_every == 0:
            kept.append(g)  # the control: suspended and never let go
        elif i % 100 == 0 and not fail:
            del g  # suspended: killed by GreenletExit when the last reference goes
        elif fail:
            try:
                g.switch(v)
                raise AssertionError("no exception")
            except Soaked as e:
                assert e.args == (v,)
            assert g.dead
        else:
            assert g.switch(v) == 2 * v
            assert g.dead
        if i % every == 0 and samples.n < SAMPLES:
            gc.collect()
            samples.record()
            k = samples.n - 1
            warm = " (warm-up)" if samples.n <= WARMUP else ""
            print(f"  {i:8d} cycles: rss {samples.rss_kib[k]} KiB, objects {samples.blocks[k]}, "
                  f"malloc {samples.malloc_bytes[k]} bytes{warm}", flush=True)
    if samples.n < SAMPLES:
        print(f"soak: only {samples.n} of {SAMPLES} samples", file=sys.stderr)
        return 1
    return judge(samples)


if __name__ == "__main__":
    sys.exit(main())
