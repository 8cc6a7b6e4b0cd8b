"""Merges the machine-readable output of every `make bench` part into ONE table.

    python3 bench/report.py DIR

DIR holds what bench/run.sh wrote: rust.json (coro-bench --json), python.json (bench/python/bench.py
--json), c-scale.json (examples/c/scale.c --json), depth.json (bench/depth.c --json), py-scale.json
(tests/scale/scale.py --json), gevent.json (bench/python/gevent.sh), instructions.json (ci/budget.sh --report --json), and meta.txt (one line describing the machine). Missing parts are reported as such, not invented.
Every timed row is the median of interleaved rounds, with the spread [min - max] across rounds;
memory rows are one measurement each at 1,000,000 coroutines.
"""

import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return None


def fmt_ns(x):
    if x < 100:
        return "%.2f" % x
    if x < 10_000:
        return "%.0f" % x
    return "%.1fk" % (x / 1000)


def fmt_bytes(x):
    return "{:,}".format(round(x))


# Which peer each counted row of ci/budget.sh is compared with.
INSTRUCTION_PEERS = {"c-static": "corosensei", "c-shared": "corosensei", "rust-api": "corosensei"}


def print_instructions(counted):
    """The callgrind table: instructions per switch round trip, with budgets and peer ratios."""
    print()
    if not counted:
        print("instructions per switch round trip: missing (ci/budget.sh --report did not run)")
        return
    by = {r["row"]: r for r in counted}
    print("instructions per switch round trip (callgrind, exact; budget = make test's limit)")
    for r in counted:
        peer = INSTRUCTION_PEERS.get(r["row"])
        if r["row"].startswith("python-"):
            peer = next((k for k in by if k.startswith("greenlet-")), None)
        ratio = ""
        if peer in by and by[peer]["instructions"]:
            ratio = "%.2fx %s" % (r["instructions"] / by[peer]["instructions"], peer)
        budget = "budget %d" % r["budget"] if r.get("budget") else "peer"
        print("  %-16s %8d   %-12s %s" % (r["row"], r["instructions"], budget, ratio))


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
    rust = load(os.path.join(d, "rust.json"))
    py = load(os.path.join(d, "python.json"))
    cscale = load(os.path.join(d, "c-scale.json"))
    pyscale = load(os.path.join(d, "py-scale.json"))
    meta = ""
    try:
        with open(os.path.join(d, "meta.txt")) as f:
            meta = f.read().strip()
    except OSError:
        pass

    rows = []  # (row, ours, spread, peer, peer value, ratio, target, verdict)
    missing = []

    def ratio_row(label, ours, peer_name, peer, target=None, absolute=None):
        ratio = ours["median"] / peer["median"] if peer else None
        verdict = ""
        if target is not None and ratio is not None:
            verdict = "<= %.2fx: %s" % (target, "met" if ratio <= target else "NOT met")
        if absolute is not None:
            verdict = "<= %d ns: %s" % (absolute, "met" if ours["median"] <= absolute else "NOT met")
        rows.append((
            label,
            fmt_ns(ours["median"]) + " ns",
            "[%s - %s]" % (fmt_ns(ours["min"]), fmt_ns(ours["max"])),
            peer_name,
            (fmt_ns(peer["median"]) + " ns") if peer else "-",
            ("%.3fx" % ratio if ratio < 0.1 else "%.2fx" % ratio) if ratio is not None else "-",
            verdict,
        ))

    if rust:
        by = {(r["section"], r["name"]): r for r in rust}
        sw = lambda n: by.get(("switch", n))  # noqa: E731
        life = lambda n: by.get(("life", n))  # noqa: E731
        boost = next((r for (s, n), r in by.items() if s == "switch" and n.startswith("Boost")), None)
        if sw("coro (C ABI)"):
            ratio_row("C switch round trip", sw("coro (C ABI)"), "corosensei 0.3", sw("corosensei 0.3"), target=0.8)
            if boost:
                ratio_row("C switch round trip", sw("coro (C ABI)"), boost["name"], boost)
            else:
                missing.append("Boost.Context row: libboost-context-dev not installed")
        if sw("coro (C ABI, copying mode)"):
            ratio_row("C switch round trip, copying mode", sw("coro (C ABI, copying mode)"), "corosensei 0.3",
                      sw("corosensei 0.3"))
        if sw("coro (Rust API)"):
            ratio_row("Rust API switch round trip", sw("coro (Rust API)"), "corosensei 0.3", sw("corosensei 0.3"))
        if life("coro (C ABI)"):
            ratio_row("C create + finish + destroy (pooled)", life("coro (C ABI)"), "corosensei 0.3 (default stack)",
                      life("corosensei 0.3"), absolute=100)
        if life("coro (C ABI, copying mode)"):
            ratio_row("C create + finish + destroy, copying", life("coro (C ABI, copying mode)"),
                      "corosensei 0.3 (default stack)", life("corosensei 0.3"))
    else:
        missing.append("Rust/C timings (coro-bench) did not run")

    targets = {"ping-pong round trip": 0.5}
    if py:
        by = {(r["name"], r["impl"]): r for r in py}
        for name in ("ping-pong round trip", "create + run to completion", "getcurrent()", "throw"):
            u, g = by.get((name, "uthread")), by.get((name, "greenlet"))
            if u and g:
                ratio_row("Python " + name, u, "greenlet 3.5.6", g, target=targets.get(name))
    else:
        missing.append("Python timings (bench/python/bench.py) did not run")

    depth = load(os.path.join(d, "depth.json"))
    if depth:
        by = {(r["mode"], r["depth"]): r for r in depth}
        for (mode, dep), r in sorted(by.items(), key=lambda kv: kv[0][1]):
            own = by.get(("default", dep))
            if mode == "copying" and own:
                ratio_row("C copying <-> copying round trip, %s B deep" % format(dep, ","), r,
                          "own stacks, same depth", own)
    else:
        missing.append("stack depth benchmark (bench/depth.c) did not run")

    mem = []  # (row, bytes, count, peer, peer bytes, ratio, verdict)
    if cscale:
        limit = {"default": 8192, "copying": 1024}
        for r in cscale:
            ok = r["bytes_per_coroutine"] <= limit[r["mode"]]
            mem.append(("C bytes per suspended coroutine, %s mode" % r["mode"], r["bytes_per_coroutine"], r["count"],
                        "target", float(limit[r["mode"]]),
                        "<= %s: %s" % (fmt_bytes(limit[r["mode"]]), "met" if ok else "NOT met")))
    else:
        missing.append("C scale program (examples/c/scale.c) did not run")
    if pyscale:
        by = {r["impl"]: r for r in pyscale}
        g = by.get("greenlet")
        for impl, label in (("uthread-copying", "copying mode"), ("uthread", "default mode")):
            u = by.get(impl)
            if not u:
                continue
            verdict = ""
            if g and impl == "uthread-copying":
                verdict = "<= greenlet: %s" % ("met" if u["bytes_per_uthread"] <= g["bytes_per_uthread"] else "NOT met")
            mem.append(("Python bytes per suspended uthread, " + label, u["bytes_per_uthread"], u["count"],
                        "greenlet 3.5.6" if g else "-", g["bytes_per_uthread"] if g else None, verdict))
    else:
        missing.append("Python scale script (tests/scale/scale.py) did not run")

    gev = load(os.path.join(d, "gevent.json"))
    if gev:
        for name in dict.fromkeys(r["name"] for r in gev):
            def stats(impl):
                xs = sorted(r["ns"] for r in gev if r["name"] == name and r["impl"] == impl)
                if not xs:
                    return None
                return {"median": xs[len(xs) // 2], "min": xs[0], "max": xs[-1]}
            ours, peer = stats("uthread"), stats("greenlet")
            if ours:
                ratio_row(name + " (our greenlet)", ours, "greenlet 3.5.6", peer)
    else:
        missing.append("gevent workloads (bench/python/gevent.sh) did not run")

    print()
    print("make bench: one table, every row measured in this run" + ((" (" + meta + ")") if meta else ""))
    head = ("row", "ours (median)", "spread [min - max]", "peer", "peer (median)", "ratio", "target")
    table = [head] + rows
    for label, value, count, peer, peer_value, verdict in mem:
        ratio = "%.2fx" % (value / peer_value) if peer_value else "-"
        table.append((label + " (at %s)" % format(count, ","), fmt_bytes(value) + " B", "one measurement", peer,
                      (fmt_bytes(peer_value) + " B") if peer_value else "-", ratio, verdict))
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for n, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    for m in missing:
        print("  missing: " + m)
    print("(timed rows: median of interleaved rounds, spread = fastest and slowest round; ratio = ours / peer)")
    print_instructions(load(os.path.join(d, "instructions.json")))
    return 1 if (not rust or not py or not cscale or not pyscale) else 0


if __name__ == "__main__":
    sys.exit(main())
