# The demo meter and the board meters, built from their compiled meter
# definitions, under real MicroPython 1.27 (tools/bench_demo_heap.py, also
# run by `make bench`): every one builds within an ESP32-sized budget, and
# the demo's compiled definition takes far less heap than the hand-written
# table it replaced (tests/cpython/reference_demo_table.py).

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_the_compiled_meters_build_under_micropython_in_less_heap_than_the_hand_written_table():
    prep = subprocess.run([sys.executable, os.path.join(REPO, "tools", "bench_demo_heap.py"), "--prepare"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    proc = subprocess.run(
        ["node", os.path.join(REPO, "tools", "micropython", "runner.mjs"), "--heap", "640k",
         "--package", os.path.join(REPO, "dlms_micro"),
         "--package", os.path.join(REPO, "build", "bench"),
         "--script", os.path.join(REPO, "tools", "bench_demo_heap.py")],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = dict((m.group(1), (int(m.group(2)), int(m.group(3)))) for m in re.finditer(
        r"micropython: (\S+) from its compiled definition, (\d+) objects, \d+ interface classes: heap after boot"
        r" (\d+) B", proc.stdout))
    assert set(got) == {"demo_board_meter", "esp32_devkitc_max3485_meter", "esp32_devkitc_prepaid_meter",
                        "esp32c3_battery_meter"}, proc.stdout
    m = re.search(r"micropython: demo, the hand-written table it replaces, (\d+) objects, \d+ interface classes: "
                  r"heap after boot (\d+) B", proc.stdout)
    assert m, proc.stdout
    hand = int(m.group(2))
    objects, heap = got["demo_board_meter"]
    assert objects >= int(m.group(1))  # every object of the hand-written table, and more
    # upper bounds (garbage included): well inside an ESP32's ~100 KB, and
    # under half the hand-written table's
    assert heap < 40000 and heap * 2 < hand, (heap, hand)
    # the mains meter: a two-day load profile, time of use and a disconnect
    # control (their code too: imported as it builds)
    for board, bound in (("esp32_devkitc_max3485_meter", 16000), ("esp32_devkitc_prepaid_meter", 12000),
                         ("esp32c3_battery_meter", 12000)):
        assert got[board][1] < bound, got
