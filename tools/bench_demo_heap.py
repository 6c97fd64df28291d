# Heap after boot of the demo meter and the board meters under MicroPython:
# the meters built from their compiled definitions (meters/demo.json,
# board/boards/*.meter.json through `dlms-micro meter compile`) against the
# hand-written demo table they replace (tests/cpython/reference_demo_table.py).
# The demo gets board-sized profiles (the CPython demo keeps 62 days of
# load profile; a board a couple of days). Run by `make bench`:
#
#   python tools/bench_demo_heap.py --prepare      # CPython: writes build/bench/
#   node tools/micropython/runner.mjs --heap 640k --package dlms_micro \
#        --package build/bench --script tools/bench_demo_heap.py
#
# Every module a meter uses is imported first: on a board that code is
# frozen in flash, so what is measured is the meter's own run-time state
# (profile rings, calendars, the tuples a hand-written table builds). A
# compiled definition loaded as .py here costs its constants' objects too;
# frozen, those stay in flash (the firmware build measures that). The wasm
# build does not collect garbage inside one script, so the figures are
# everything allocated while building, garbage included: upper bounds.
# Also runs under CPython (tracemalloc), for comparison.

import gc
import sys

MP = sys.implementation.name == "micropython"
if not MP:
    import os
    import tracemalloc

    REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    BENCH = os.path.join(REPO, "build", "bench")
    sys.path.insert(0, os.path.join(REPO, "ports", "cpython"))
    sys.path.insert(0, BENCH)
else:
    sys.path.append("/lib/bench")

# board-sized profiles: 2 days of load profile, 8 hours of power quality,
# a month of daily values, 50 events
SIZES = {"1.0.99.1.0.255": 192, "1.0.99.2.0.255": 96, "1.0.98.1.0.255": 31, "0.0.99.98.0.255": 50}


def prepare():
    # CPython: compile the definitions into build/bench/ and copy the
    # reference table there
    import json
    import shutil

    from dlms_micro_cpython import meterdef
    from dlms_micro_cpython.meterdef.emit import module_text

    os.makedirs(BENCH, exist_ok=True)
    with open(os.path.join(REPO, "meters", "demo.json"), encoding="utf-8") as f:
        d = json.load(f)
    for o in d["objects"]:
        if o.get("obis") in SIZES:
            o["profile_entries"] = SIZES[o["obis"]]
    out = [("demo_board_meter", meterdef.compile_definition(d, "meters/demo.json"))]
    bdir = os.path.join(REPO, "board", "boards")
    for name in sorted(os.listdir(bdir)):
        if name.endswith(".meter.json"):
            out.append((name[: -len(".meter.json")] + "_meter", meterdef.load(os.path.join(bdir, name))))
    for mod, c in out:
        with open(os.path.join(BENCH, mod + ".py"), "w", encoding="utf-8") as f:
            f.write(module_text(c, mod))
    for ref in ("reference_demo_table.py", "reference_demo_control.py"):
        shutil.copy(os.path.join(REPO, "tests", "cpython", ref), os.path.join(BENCH, ref))
    with open(os.path.join(BENCH, "__init__.py"), "w") as f:
        f.write("")
    with open(os.path.join(BENCH, "modules.txt"), "w") as f:
        f.write("\n".join(m for m, _c in out) + "\n")
    print("prepared %s: %s" % (BENCH, ", ".join(m for m, _c in out)))


def allocated(fn):
    if MP:
        gc.collect()
        a = gc.mem_alloc()
        r = fn()
        gc.collect()
        return gc.mem_alloc() - a, r
    tracemalloc.start()
    r = fn()
    used = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return used, r


def rings(m):
    n = 0
    for e in m.table:
        if e[0] == 7:
            n += len(m.state[e[4]].data)
    return n


def main():
    from dlms_micro.cosem import (  # noqa: F401  (code: frozen on a board)
        association_ln, base, clock, compact, data, demand, disconnect, hdlc_setup, image, monitor, prepay,
        profile, push, register, sap, schedule, script, security_setup, tariff, token_gateway)
    from dlms_micro.meterdef import build, state  # noqa: F401

    impl = sys.implementation.name
    clk = lambda: 800000000  # noqa: E731
    with open(("/lib/bench/" if MP else BENCH + "/") + "modules.txt") as f:
        mods = [x.strip() for x in f.read().split("\n") if x.strip()]
    for name in mods:
        mod = __import__(name)
        env = build.Env(None, token_key=b"\x00" * 16)
        used, m = allocated(lambda: build.build(mod, clk, None, 0, env))
        print("%s: %s from its compiled definition, %d objects, %d interface classes: heap after boot %d B"
              " (profile rings %d B of it)" % (impl, name, len(m.table), len(set(e[0] for e in m.table)), used,
                                               rings(m)))
        del m
    import reference_demo_table as ref

    sizes = {}
    for k in SIZES:
        sizes[bytes([int(x) for x in k.split(".")])] = SIZES[k]
    used, m = allocated(lambda: ref.build_meter(clk, None, sizes=sizes))
    print("%s: demo, the hand-written table it replaces, %d objects, %d interface classes: heap after boot %d B"
          " (profile rings %d B of it)" % (impl, len(m.table), len(set(e[0] for e in m.table)), used, rings(m)))


if not MP and "--prepare" in sys.argv:
    prepare()
else:
    main()
