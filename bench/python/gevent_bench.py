"""What a gevent user feels: four gevent workloads, timed on whichever greenlet this venv holds.

bench/python/gevent.sh runs this in two venvs, gevent's published wheel on uthread's drop-in
greenlet and on the real greenlet 3.5.6, alternating rounds between them, and bench/report.py
puts the two side by side. Each workload runs N operations and reports ns per operation:

  queue ping-pong   two greenlets hand an item back and forth through two gevent.queue.Queue
  event flip        two greenlets wake each other through two gevent.event.Event
  spawn + join 100  gevent.spawn of 100 greenlets that return at once, then gevent.joinall
  sleep(0) spin     two greenlets each loop on gevent.sleep(0) (a trip through the hub)

Usage: python gevent_bench.py --iters N --json FILE   (one JSON object per workload)
"""

import argparse
import json
import sys
import time

import gevent
import gevent.event
import gevent.queue
import greenlet


def queue_ping_pong(n):
    ping, pong = gevent.queue.Queue(), gevent.queue.Queue()

    def echo():
        for _ in range(n):
            pong.put(ping.get())

    g = gevent.spawn(echo)
    t0 = time.perf_counter_ns()
    for i in range(n):
        ping.put(i)
        assert pong.get() == i
    t1 = time.perf_counter_ns()
    g.join()
    return (t1 - t0) / n


def event_flip(n):
    a, b = gevent.event.Event(), gevent.event.Event()

    def other():
        for _ in range(n):
            a.wait()
            a.clear()
            b.set()

    g = gevent.spawn(other)
    t0 = time.perf_counter_ns()
    for _ in range(n):
        a.set()
        b.wait()
        b.clear()
    t1 = time.perf_counter_ns()
    g.join()
    return (t1 - t0) / n


def spawn_join_100(n):
    rounds = max(1, n // 100)
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        gs = [gevent.spawn(int, i) for i in range(100)]
        gevent.joinall(gs)
        assert gs[-1].value == 99
    t1 = time.perf_counter_ns()
    return (t1 - t0) / rounds


def sleep0_spin(n):
    half = n // 2
    counts = [0, 0]

    def spin(k):
        for _ in range(half):
            counts[k] += 1
            gevent.sleep(0)

    t0 = time.perf_counter_ns()
    gevent.joinall([gevent.spawn(spin, 0), gevent.spawn(spin, 1)])
    t1 = time.perf_counter_ns()
    assert counts == [half, half], counts
    return (t1 - t0) / (2 * half)


WORKLOADS = (
    ("gevent queue ping-pong", queue_ping_pong),
    ("gevent event flip", event_flip),
    ("gevent spawn + join 100", spawn_join_100),
    ("gevent sleep(0) spin", sleep0_spin),
)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20000)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    impl = "uthread" if hasattr(greenlet, "__uthread__") else "greenlet"
    with open(args.json, "a") as out:
        for name, fn in WORKLOADS:
            fn(max(100, args.iters // 20))  # warm-up
            ns = fn(args.iters)
            out.write(json.dumps({"impl": impl, "greenlet": greenlet.__version__, "name": name, "ns": ns}) + "\n")
            print("%-26s %-8s %10.0f ns" % (name, impl, ns))


if __name__ == "__main__":
    sys.exit(main())
