"""examples/python/uthread_demo.py (run by `make demo` with 100,000 uthreads) with 2,000."""

import pathlib
import re
import subprocess
import sys

DEMO = pathlib.Path(__file__).resolve().parents[2] / "examples" / "python" / "uthread_demo.py"


def test_demo_with_2000_uthreads():
    p = subprocess.run([sys.executable, str(DEMO), "--count", "2000", "--steps", "5"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "2,000 uthreads, 5 steps each" in p.stdout
    m = re.search(r"switches: ([\d,]+) in [\d.]+ s = ([\d,]+) switches/s", p.stdout)
    assert m, p.stdout
    # Each uthread is switched into once to start and once per wake-up (and back each time).
    assert int(m.group(1).replace(",", "")) == 2000 * (5 + 1) * 2
    assert int(m.group(2).replace(",", "")) > 0


def test_demo_in_process():
    sys.path.insert(0, str(DEMO.parent))
    try:
        import uthread_demo
    finally:
        sys.path.pop(0)
    assert uthread_demo.main(["--count", "300", "--steps", "3"]) == 300 * 4 * 2
