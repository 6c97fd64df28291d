# The demo meter's object table (demo_table.py, demo_control.py) is
# portable: real MicroPython 1.27 builds it whole (41 objects, every
# interface class of the demo) within an ESP32-sized budget, with
# board-sized profiles (tools/bench_demo_heap.py, also run by `make bench`).

import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_demo_table_builds_under_micropython():
    proc = subprocess.run(
        ["node", os.path.join(REPO, "tools", "micropython", "runner.mjs"), "--heap", "640k",
         "--package", os.path.join(REPO, "dlms_micro"),
         "--package", os.path.join(REPO, "ports", "cpython", "dlms_micro_cpython"),
         "--script", os.path.join(REPO, "tools", "bench_demo_heap.py")],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    m = re.search(r"micropython: full demo table, (\d+) objects, (\d+) interface classes: heap after boot (\d+) B",
                  proc.stdout)
    assert m, proc.stdout
    objects, classes, heap = (int(x) for x in m.groups())
    assert objects == 41 and classes >= 20
    # an upper bound (garbage included); well inside an ESP32's ~100 KB
    assert heap < 80000, heap
