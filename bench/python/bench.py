"""uthread next to greenlet 3.5.6, measured in the same run.

Run by bench/python/run.sh (`make bench`), in a venv holding both the `uthread` wheel and the real
greenlet 3.5.6 from PyPI. Time benchmarks run in this process, interleaved: every round runs every
benchmark for both implementations, alternating which goes first, and the table shows the median
ns per operation over the rounds with the min-max spread. Memory is measured in fresh
subprocesses, one per implementation: RSS before and after making N greenlets that are all
suspended (started, each holding its state in a local variable) and alive at once.

    python bench.py [--rounds R] [--iters N] [--alive COUNT] [--quick]
"""

import argparse
import gc
import os
import platform
import statistics
import subprocess
import sys
import time

IMPLS = ("uthread", "greenlet")
# The Python extension's speed targets (ratio = uthread median / greenlet median).
TARGETS = {"ping-pong round trip": 0.5, "create + run to completion": 0.7}
# Counts tried, in order, when COUNT suspended greenlets cannot all be alive at once.
FALLBACK_COUNTS = (60_000, 30_000, 10_000)


def load(name):
    """The module of an implementation, checked to be the one meant (not the drop-in)."""
    if name == "uthread":
        import uthread as m
    else:
        import greenlet as m

        if hasattr(m, "__uthread__"):
            sys.exit("bench: `greenlet` is uthread's drop-in here; the bench venv needs greenlet from PyPI")
    return m


def version(m):
    return getattr(m, "__version__", "?")


# --- time benchmarks: each runs n operations and returns ns per operation ------------------------


def ping_pong(m, n):
    """main -> child -> main: one round trip is two switches carrying a value."""
    main = m.getcurrent()

    def child(x):
        back = main.switch
        while True:
            x = back(x)

    g = m.greenlet(child)
    g.switch(0)
    go = g.switch
    t0 = time.perf_counter_ns()
    for i in range(n):
        go(i)
    t1 = time.perf_counter_ns()
    g.throw()  # GreenletExit: it finishes
    assert g.dead
    return (t1 - t0) / n


def create_finish(m, n):
    """Create a greenlet, switch into it, its run returns at once (and it is released)."""
    green = m.greenlet

    def run():
        return None

    t0 = time.perf_counter_ns()
    for _ in range(n):
        green(run).switch()
    t1 = time.perf_counter_ns()
    return (t1 - t0) / n


def getcurrent(m, n):
    get = m.getcurrent
    t0 = time.perf_counter_ns()
    for _ in range(n):
        get()
    t1 = time.perf_counter_ns()
    return (t1 - t0) / n


class Poke(Exception):
    pass


def throw(m, n):
    """Throw an exception into a suspended greenlet, which catches it and switches back."""
    main = m.getcurrent()

    def child():
        back = main.switch
        while True:
            try:
                back()
            except Poke:
                pass

    g = m.greenlet(child)
    g.switch()
    t0 = time.perf_counter_ns()
    for _ in range(n):
        g.throw(Poke)
    t1 = time.perf_counter_ns()
    g.throw()
    assert g.dead
    return (t1 - t0) / n


BENCHES = (
    # name, function, share of --iters per round
    ("ping-pong round trip", ping_pong, 1.0),
    ("create + run to completion", create_finish, 0.25),
    ("getcurrent()", getcurrent, 2.0),
    ("throw", throw, 0.25),
)


def run_times(mods, rounds, iters):
    samples = {(b, i): [] for b, _, _ in BENCHES for i in IMPLS}
    for _, fn, share in BENCHES:  # warm up
        for i in IMPLS:
            fn(mods[i], max(1, int(iters * share) // 10))
    for r in range(rounds):
        order = IMPLS if r % 2 == 0 else IMPLS[::-1]
        for name, fn, share in BENCHES:
            for i in order:
                gc.collect()
                samples[(name, i)].append(fn(mods[i], max(1, int(iters * share))))
    return samples


# --- the cost of preemption (uthread.stackless.run(timeout=/timeslice=)) ------------------------


def preemption_cost(m, rounds, iters):
    """The ping-pong round trip, and a bare loop iteration, with and without uthread's
    preemption hook armed (every loop iteration and Python call counted as a tick: the cost a
    program pays while stackless.run(timeout=...) or run(timeslice=...) runs). The budget is
    large, so what is measured is the counting, not switches. Interleaved rounds; returns
    {name: (plain samples, armed samples)}."""
    hook = m._uthread

    def bare_loop(_m, n):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            pass
        return (time.perf_counter_ns() - t0) / n

    def armed(fn):
        def run(mod, n):
            hook._preempt_arm(lambda: False, 1 << 40)
            try:
                return fn(mod, n)
            finally:
                hook._preempt_disarm()

        return run

    cases = (("ping-pong round trip", ping_pong), ("loop iteration (no switch)", bare_loop))
    out = {name: ([], []) for name, _ in cases}
    for r in range(rounds):
        for name, fn in cases:
            pair = (fn, armed(fn)) if r % 2 == 0 else (armed(fn), fn)
            for f in pair:
                gc.collect()
                value = f(m, iters)
                out[name][0 if f is fn else 1].append(value)
    return out


def report_preemption(m, rounds, iters):
    hook = "sys.monitoring JUMP+PY_START" if sys.version_info >= (3, 12) else "C trace function"
    print("Preemption cost: the hook armed (%s, ticks counted) against not armed, uthread only" % hook)
    head = "%-28s %-26s %-26s %7s" % ("ns per operation", "not armed (min-max)", "armed (min-max)", "ratio")
    print(head)
    print("-" * len(head))
    for name, (plain, armed) in preemption_cost(m, rounds, iters).items():
        print("%-28s %-26s %-26s %6.2fx" % (name, fmt_ns(plain), fmt_ns(armed),
                                            statistics.median(armed) / statistics.median(plain)))
    print()


# --- memory: RSS per suspended greenlet, in a fresh process ---------------------------------------


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def alive_child(impl, count):
    """Child process: prints the RSS growth per greenlet with `count` suspended ones alive."""
    m = load(impl)
    main = m.getcurrent()

    def body(i):
        state = [i, i * 2]  # its state lives in this frame's locals
        main.switch()
        return state

    warm = [m.greenlet(body) for _ in range(100)]
    for g in warm:
        g.switch(0)
    gc.collect()
    before = rss_bytes()
    alive = []
    for i in range(count):
        g = m.greenlet(body)
        g.switch(i)
        alive.append(g)
    gc.collect()
    after = rss_bytes()
    assert all(not g.dead for g in alive)
    print("%d %d" % (count, after - before))
    sys.stdout.flush()
    os._exit(0)  # do not spend time (or fail) tearing 100,000 greenlets down


def measure_alive(impl, count):
    p = subprocess.run([sys.executable, __file__, "--alive-child", impl, str(count)],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["exit status %d" % p.returncode])[-1]
        return None, last
    n, delta = map(int, p.stdout.split())
    return delta / n, None


# --- report ------------------------------------------------------------------------------------


def fmt_ns(xs):
    return "%8.1f (%.1f-%.1f)" % (statistics.median(xs), min(xs), max(xs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iters", type=int, default=200_000, help="round trips per round (others scale from it)")
    ap.add_argument("--alive", type=int, default=100_000, help="suspended greenlets alive for the RSS figure")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds, few iterations, 2,000 alive")
    ap.add_argument("--json", metavar="FILE", help="also write every timing row to FILE, one JSON object per line")
    ap.add_argument("--no-alive", action="store_true", help="skip the RSS figure (bench/report.py measures 1M)")
    ap.add_argument("--alive-child", nargs=2, metavar=("IMPL", "COUNT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.alive_child:
        alive_child(a.alive_child[0], int(a.alive_child[1]))
        return
    if a.quick:
        a.rounds, a.iters, a.alive = 3, 5_000, 2_000

    mods = {i: load(i) for i in IMPLS}
    print("Python: uthread %s next to greenlet %s on CPython %s (%s), one process, %d interleaved rounds"
          % (version(mods["uthread"]), version(mods["greenlet"]), platform.python_version(),
             platform.machine(), a.rounds))
    samples = run_times(mods, a.rounds, a.iters)
    head = "%-28s %-26s %-26s %7s  %s" % ("ns per operation", "uthread median (min-max)",
                                          "greenlet median (min-max)", "ratio", "target")
    print(head)
    print("-" * len(head))
    notes = []
    for name, _, _ in BENCHES:
        u, g = samples[(name, "uthread")], samples[(name, "greenlet")]
        ratio = statistics.median(u) / statistics.median(g)
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = "<= %.2fx: %s" % (target, "met" if ratio <= target else "NOT met")
        print("%-28s %-26s %-26s %6.2fx  %s" % (name, fmt_ns(u), fmt_ns(g), ratio, verdict))
        if name == "create + run to completion" and sys.version_info >= (3, 11) and ratio > target:
            notes.append("create + run to completion on CPython 3.11+: most of it, for both, is the interpreter's "
                         "data-stack chunk that every new greenlet mmaps and munmaps (docs/python.md, Performance)")

    for note in notes:
        print("  note: " + note)
    print()
    report_preemption(mods["uthread"], a.rounds, a.iters)
    if a.json:
        import json

        with open(a.json, "w") as f:
            for name, _, _ in BENCHES:
                for impl in IMPLS:
                    xs = samples[(name, impl)]
                    row = {"section": "python", "name": name, "impl": impl, "median": statistics.median(xs),
                           "min": min(xs), "max": max(xs), "rounds": a.rounds}
                    f.write(json.dumps(row) + "\n")
    if a.no_alive:
        return
    per = {}
    for impl in IMPLS:
        count, note = a.alive, None
        value, err = measure_alive(impl, count)
        if value is None:
            note = "%s: %s alive failed (%s)" % (impl, format(count, ","), err)
            for fallback in FALLBACK_COUNTS:
                if fallback >= a.alive:
                    continue
                count = fallback
                value, err = measure_alive(impl, count)
                if value is not None:
                    break
        per[impl] = (value, count, note)
    line = "RSS per suspended greenlet"
    for impl in IMPLS:
        value, count, note = per[impl]
        if value is None:
            line += "  %s: failed" % impl
        else:
            line += "  %s: %s bytes at %s alive" % (impl, format(round(value), ","), format(count, ","))
    print(line)
    if per["uthread"][0] and per["greenlet"][0]:
        print("  ratio uthread / greenlet: %.2fx" % (per["uthread"][0] / per["greenlet"][0]))
    for impl in IMPLS:
        if per[impl][2]:
            print("  note: " + per[impl][2] + "; measured at the largest count that worked")


if __name__ == "__main__":
    main()
