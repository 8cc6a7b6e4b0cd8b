"""How much C stack does a uthread need? (informational; not part of the pass/fail suite)

A uthread gets fresh recursion budgets (Python recursion limit and, on 3.12+, the C recursion
limit), so its C stack must hold what CPython lets one thread do on the main thread's 8 MiB stack.
This runs worst-case workloads that stop at those limits, each in a uthread with a given stack size
in a child process (an overflowing uthread aborts the process), and prints the smallest stack size
that survived, per workload.

    PYTHONPATH=target/pystate/<version> python tests/pystate/measure_stack.py
"""

import subprocess
import sys

SIZES_KIB = [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]

WORKLOADS = {
    # Python -> Python recursion up to the recursion limit (C stack per call only on 3.10)
    "py_recursion": """
def f(n):
    return f(n + 1)
try:
    f(0)
except RecursionError:
    pass
""",
    # C recursion (repr of nested lists) up to the C recursion limit (3.12+) / recursion limit
    "c_repr": """
x = []
for _ in range(100000):
    x = [x]
try:
    repr(x)
except RecursionError:
    pass
""",
    # C-accelerated JSON encoder on nested lists
    "json": """
import json
x = []
for _ in range(100000):
    x = [x]
try:
    json.dumps(x)
except RecursionError:
    pass
""",
    # Python -> C -> Python recursion (each level goes through the eval loop again)
    "py_c_py": """
def f(n):
    return sum(map(f, [n + 1]))
try:
    f(0)
except RecursionError:
    pass
""",
    # deallocation of a deep structure (the trashcan bounds it)
    "dealloc": """
x = None
for _ in range(1000000):
    x = (x,)
del x
""",
}

CHILD = r"""
import sys, _pystate_probe as P
code = sys.argv[1]
size = int(sys.argv[2])
def body(_):
    exec(code, {})
    return "ok"
print(P.switch(P.spawn(body, stack_size=size)))
"""


def survives(code, size):
    r = subprocess.run([sys.executable, "-c", CHILD, code, str(size)],
                       capture_output=True, text=True, timeout=300)
    return r.returncode == 0 and r.stdout.strip() == "ok"


def main():
    print("CPython %s: smallest uthread stack that survives each workload" % sys.version.split()[0])
    for name, code in WORKLOADS.items():
        found = None
        for kib in SIZES_KIB:
            if survives(code, kib * 1024):
                found = kib
                break
        print("  %-13s %s" % (name, "%d KiB" % found if found else "> %d KiB" % SIZES_KIB[-1]))


if __name__ == "__main__":
    main()
