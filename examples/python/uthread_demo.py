"""100,000 uthreads driven by a small event loop (uthread's Python demo, `make demo`).

Every uthread is a plain function whose state lives in its local variables: it loops, adds to
its running total, and sleeps a few ticks of a virtual clock between steps. ``sleep()`` parks
the calling uthread in the event loop's timer wheel and switches to the loop; the loop advances
the clock and switches back into each uthread whose wake-up tick came. There are no callbacks and
no state machines: all uthreads are suspended in the middle of their loops at once.

    python examples/python/uthread_demo.py [--count N] [--steps S]

Prints the number of uthreads, the switches made and switches per second, and checks every
uthread's result.
"""

import argparse
import time
from collections import deque

import uthread


class Loop:
    """A tiny event loop: a virtual clock, a timer wheel and a ready queue, run by the main
    uthread. ``switches`` counts every switch into and out of the uthreads."""

    def __init__(self):
        self.hub = uthread.getcurrent()
        self.now = 0
        self.timers = {}  # tick -> uthreads to wake then
        self.ready = deque()
        self.switches = 0

    def spawn(self, fn, *args):
        g = uthread.greenlet(lambda: fn(*args), parent=self.hub)
        self.ready.append(g)
        return g

    def sleep(self, ticks):
        """Called by a uthread: wake me ``ticks`` ticks from now."""
        self.timers.setdefault(self.now + ticks, []).append(uthread.getcurrent())
        self.hub.switch()

    def run(self):
        ready, timers = self.ready, self.timers
        while ready or timers:
            while ready:
                g = ready.popleft()
                g.switch()  # runs it until it sleeps (or finishes): two switches
                self.switches += 2
            if timers:
                self.now = min(timers)
                ready.extend(timers.pop(self.now))


def worker(loop, ident, steps, results):
    total = 0  # the uthread's state: plain local variables, kept across every sleep
    for step in range(steps):
        total += ident * step + 1
        loop.sleep(1 + (ident + step) % 3)
    results[ident] = total


def expected(ident, steps):
    return ident * steps * (steps - 1) // 2 + steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=100_000, help="uthreads (default 100,000)")
    ap.add_argument("--steps", type=int, default=10, help="sleeps per uthread (default 10)")
    a = ap.parse_args(argv)

    loop = Loop()
    results = [None] * a.count
    t0 = time.perf_counter()
    for ident in range(a.count):
        loop.spawn(worker, loop, ident, a.steps, results)
    # First pass: every uthread starts and goes to sleep, so all are alive and suspended at once.
    loop.run()
    elapsed = time.perf_counter() - t0

    bad = [i for i, r in enumerate(results) if r != expected(i, a.steps)]
    if bad:
        raise SystemExit("uthread demo: %d uthreads ended with a wrong result (first: %d)" % (len(bad), bad[0]))
    print("uthread demo: %s uthreads, %s steps each, all suspended at once on an event loop"
          % (format(a.count, ","), a.steps))
    print("  switches: %s in %.2f s = %s switches/s; every result checked"
          % (format(loop.switches, ","), elapsed, format(round(loop.switches / elapsed), ",")))
    return loop.switches


if __name__ == "__main__":
    main()
