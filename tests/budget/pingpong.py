"""N ping-pong round trips (main -> child -> main, a value each way) between two greenlets of
`uthread` or of greenlet, nothing else: ci/budget.sh counts this under callgrind at two values of N,
so the difference over the difference in N is the exact instruction cost of one round trip, the
interpreter's startup excluded.

Usage: python pingpong.py uthread|greenlet N
"""

import sys


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("uthread", "greenlet"):
        sys.exit("usage: pingpong.py uthread|greenlet N")
    impl, n = sys.argv[1], int(sys.argv[2])
    if impl == "uthread":
        import uthread as m
    else:
        import greenlet as m

        if hasattr(m, "__uthread__"):
            sys.exit("pingpong.py: `greenlet` here is uthread's drop-in, not greenlet from PyPI")
    main_g = m.getcurrent()

    def child(x):
        back = main_g.switch
        while True:
            x = back(x)

    g = m.greenlet(child)
    g.switch(0)
    go = g.switch
    total = 0
    for i in range(n):
        total += go(i)
    g.throw()
    assert g.dead and total == n * (n - 1) // 2, total
    print(f"{impl}: {n} round trips")


main()
