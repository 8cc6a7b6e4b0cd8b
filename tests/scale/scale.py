"""A million uthreads: creates N, suspends them all, resumes each once, finishes them all, and
prints the peak RSS and the bytes each suspended uthread costs, for uthread's default mode (a C
stack of its own per uthread), uthread's copying mode (``greenlet(run, copying=True)``) and, when
it is installed, greenlet 3.5.6 itself (which always copies).

    python tests/scale/scale.py [--count N] [--impl uthread,uthread-copying,greenlet] [--json]

Each implementation runs in a child process of its own. Bytes per uthread = (RSS with all N
suspended - RSS before creating them) / N: the greenlet object, its engine coroutine and stack
(touched pages, or the saved image in copying mode), the Python frame of its ``run`` and the
allocator's overhead. Exits non-zero if any uthread saw a wrong value or a child failed.
"""

import argparse
import json
import os
import subprocess
import sys
import time

IMPLS = ("uthread", "uthread-copying", "greenlet")


def rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return -1


def child(impl, count):
    if impl == "greenlet":
        import greenlet as mod

        if getattr(mod, "__uthread__", False) or "post" in getattr(mod, "__version__", ""):
            raise SystemExit("scale.py: 'greenlet' is the uthread drop-in here, not greenlet itself")
        make = mod.greenlet
    else:
        import uthread as mod

        copying = impl == "uthread-copying"

        def make(run):
            return mod.greenlet(run, copying=copying)

    main = mod.getcurrent()

    def body(i):
        got = main.switch(i)  # suspended, all N at once
        i += got
        got = main.switch(i)  # resumed once, suspended again
        return i + got  # finished

    gs = []
    before = rss_kib("VmRSS:")
    t0 = time.perf_counter()
    bad = 0
    for i in range(count):
        g = make(body)
        bad += g.switch(i) != i
        gs.append(g)
    t1 = time.perf_counter()
    suspended = rss_kib("VmRSS:")
    for i, g in enumerate(gs):
        bad += g.switch(1) != i + 1
    t2 = time.perf_counter()
    for i, g in enumerate(gs):
        bad += g.switch(2) != i + 3
    gs.clear()
    t3 = time.perf_counter()
    out = {
        "impl": impl,
        "version": getattr(mod, "__version__", "?"),
        "count": count,
        "bytes_per_uthread": (suspended - before) * 1024.0 / count,
        "peak_rss_bytes": rss_kib("VmHWM:") * 1024,
        "create_start_ns": (t1 - t0) * 1e9 / count,
        "resume_ns": (t2 - t1) * 1e9 / count,
        "finish_ns": (t3 - t2) * 1e9 / count,
        "errors": bad,
    }
    print(json.dumps(out))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--impl", default=",".join(IMPLS), help="comma-separated subset of " + ", ".join(IMPLS))
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--child", metavar="IMPL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.count)
    failed = 0
    for impl in args.impl.split(","):
        if impl not in IMPLS:
            ap.error("unknown implementation %r" % impl)
        if impl == "greenlet":
            probe = subprocess.run([sys.executable, "-c", "import greenlet"], capture_output=True)
            if probe.returncode != 0:
                print("scale.py: greenlet is not installed; its row is left out", file=sys.stderr)
                continue
        r = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--child", impl, "--count", str(args.count)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0 or not r.stdout.strip():
            sys.stderr.write(r.stdout + r.stderr)
            print("scale.py: %s failed (exit %d)" % (impl, r.returncode), file=sys.stderr)
            failed = 1
            continue
        res = json.loads(r.stdout.strip().splitlines()[-1])
        if args.json:
            print(json.dumps(res))
        else:
            print(
                "%-16s %9d uthreads: %8.1f bytes each suspended, peak RSS %7.1f MiB; per uthread: "
                "create+start %.0f ns, resume %.0f ns, finish %.0f ns"
                % (
                    impl,
                    res["count"],
                    res["bytes_per_uthread"],
                    res["peak_rss_bytes"] / 2**20,
                    res["create_start_ns"],
                    res["resume_ns"],
                    res["finish_ns"],
                )
            )
        sys.stdout.flush()
    return failed


if __name__ == "__main__":
    sys.exit(main())
