"""Soak: uthread create -> switch -> finish, CYCLES times, with RSS sampled every 100,000 cycles.

Usage: python soak.py [CYCLES]      (default 1000000; at least 200000)

Each cycle creates a uthread, starts it (it switches back to its parent with a value), resumes it
so that it returns, and drops it; every 100th is instead dropped while suspended (killed with
GreenletExit), every 1000th has a keyword argument and raises an exception that the caller
catches. After each 100,000 cycles the RSS is printed; the first sample is the warm-up. Exit
status 1 if the RSS at the end exceeds the warm-up sample by more than 1% (or a value is wrong).
The last line is `soak: N passed, M failed` (one per checked sample).
"""

from __future__ import annotations

import gc
import os
import sys

from uthread import getcurrent, greenlet

SAMPLE_EVERY = 100_000


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE") // 1024


class Soaked(Exception):
    pass


def body(value: int, fail: bool = False) -> int:
    back = getcurrent().parent.switch(value + 1)
    if fail:
        raise Soaked(back)
    return back * 2


def main() -> int:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    if cycles < 2 * SAMPLE_EVERY:
        print(f"usage: soak.py [CYCLES >= {2 * SAMPLE_EVERY}]", file=sys.stderr)
        return 2
    print(f"soak (Python {sys.version.split()[0]}): {cycles} create -> switch -> finish cycles, RSS every {SAMPLE_EVERY}")
    print(f"  start: rss {rss_kib()} KiB")
    warm = -1
    passed = failed = 0
    for i in range(1, cycles + 1):
        v = i & 0xFFFF
        fail = i % 1000 == 0
        g = greenlet(body)
        got = g.switch(v, fail=True) if fail else g.switch(v)
        assert got == v + 1, (i, got)
        if i % 100 == 0 and not fail:
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
        if i % SAMPLE_EVERY == 0:
            gc.collect()
            rss = rss_kib()
            if warm < 0:
                warm = rss
                print(f"  {i:8d} cycles: rss {rss} KiB (warm-up sample)", flush=True)
            else:
                ok = rss <= warm + warm // 100
                passed += ok
                failed += not ok
                growth = 100.0 * (rss - warm) / warm
                mark = "" if ok else "  <-- more than 1%"
                print(f"  {i:8d} cycles: rss {rss} KiB ({growth:+.2f}% since warm-up){mark}", flush=True)
    print(f"soak: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
