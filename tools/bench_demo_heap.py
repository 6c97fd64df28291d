# The demo meter's whole object table built under MicroPython: what it
# allocates at boot, with board-sized profiles (the CPython demo keeps 62
# days of load profile; a board a couple of days). Run by `make bench`:
#
#   node tools/micropython/runner.mjs --heap 640k --package dlms_micro \
#        --package ports/cpython/dlms_micro_cpython --script tools/bench_demo_heap.py
#
# Every module the table uses is imported first: on a board that code is
# frozen in flash, so what is measured is the table's own run-time state
# (profile rings, calendars, key-less security objects, the tuples). The
# wasm build does not collect garbage inside one script, so the figure is
# everything allocated while building, garbage included: an upper bound.
# Also runs under CPython (tracemalloc), for comparison.

import gc
import sys

MP = sys.implementation.name == "micropython"
if not MP:
    import os
    import tracemalloc

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ports", "cpython"))

from dlms_micro.cosem import (  # noqa: F401  (code: frozen on a board)
    association_ln,
    base,
    clock,
    compact,
    data,
    demand,
    disconnect,
    hdlc_setup,
    image,
    monitor,
    prepay,
    profile,
    push,
    register,
    sap,
    schedule,
    script,
    security_setup,
    tariff,
    token_gateway,
)
from dlms_micro_cpython import demo_control, demo_table  # noqa: E402

# board-sized profiles: 2 days of load profile, 8 hours of power quality,
# a month of daily values, 50 events
SIZES = {
    demo_table.OBIS_LOAD_PROFILE: 192,
    demo_table.OBIS_PQ_PROFILE: 96,
    demo_table.OBIS_DAILY_PROFILE: 31,
    demo_table.OBIS_EVENT_LOG: 50,
}


def _modes_ro(ic):
    return (demo_table._modes(ic.attribute_count, default=base.READ), demo_table._modes(ic.method_count))


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


def control_objects():
    state = []

    def slots(values):
        at = len(state)
        state.extend(values)
        return at

    return demo_control.objects(slots, demo_table._modes, _modes_ro, None, demo_table.OBIS_MAX_DEMAND,
                                demo_table.OBIS_POWER, demo_table.OBIS_ENERGY_IMPORT), state


def main():
    used, m = allocated(lambda: demo_table.build_meter(lambda: 800000000, None, sizes=SIZES))
    rings = 0
    for e in m.table:
        if e[0] == 7:
            pb = m.state[e[4]]
            rings += len(pb.data)
    print("%s: full demo table, %d objects, %d interface classes: heap after boot %d B"
          " (profile rings %d B of it; %d rows)" % (sys.implementation.name, len(m.table),
                                                   len(set(e[0] for e in m.table)), used, rings,
                                                   sum(SIZES.values())))
    del m
    used, r = allocated(control_objects)
    print("%s:   of which the tariff, control and prepayment objects (%d): %d B"
          % (sys.implementation.name, len(r[0]), used))


main()
