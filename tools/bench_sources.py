# Allocation and CPU per poll of the sources (dlms_micro/source), for
# CPython and for MicroPython:
#
#   .venv/bin/python tools/bench_sources.py
#   node tools/micropython/runner.mjs --heap 256k --script tools/bench_sources.py
#
# Per steady-state poll (the source built, its first poll done):
#   MicroPython: gc.mem_alloc() growth with the GC disabled (every byte
#                allocated, garbage included); target 0 B.
#   CPython:     tracemalloc: peak bytes above the start over all polls.
# and the CPU time of one poll (the host's; an ESP32 at 240 MHz is roughly
# 18-24x slower than MicroPython's wasm build here: ../shared/MICROPYTHON.md).
# The register map is the Eastron SDM630 map of meters/sources/ (the
# MicroPython filesystem has no JSON files: the same rows are written here).

import gc
import sys

from benchkit import MP, measure as _measure

if not MP:
    import os
    import tracemalloc

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


from dlms_micro.source import iec21_readout, modbus_rtu, s0  # noqa: E402

N = 100

SDM630_ROWS = (
    ("voltage_l1", 0, "V", -1), ("voltage_l2", 2, "V", -1), ("voltage_l3", 4, "V", -1),
    ("current_l1", 6, "A", -3), ("current_l2", 8, "A", -3), ("current_l3", 10, "A", -3),
    ("power_l1", 12, "W", 0), ("power_l2", 14, "W", 0), ("power_l3", 16, "W", 0),
    ("power_total", 52, "W", 0), ("frequency", 70, "Hz", -2),
    ("energy_import", 72, "kWh", -3), ("energy_export", 74, "kWh", -3),
    ("reactive_energy_import", 76, "kvarh", -3), ("reactive_energy_export", 78, "kvarh", -3),
)


def measure(name, fn, n=N):
    _measure(name, fn, n, "poll", 46)


def bcc_message(block):
    body = block + b"\x03"
    c = 0
    for b in body:
        c ^= b
    return b"\x02" + body + bytes((c,))


def readout_poll(src, ident, msg, t):
    # one mode C poll of src at t: the identification, the data message
    src.poll(t)
    while src.next_event(t):
        pass
    src.feed(ident, 0, len(ident), t + 300)
    while src.next_event(t + 500):
        pass
    src.feed(msg, 0, len(msg), t + 900)
    while src.next_event(t + 900):
        pass


def bench_iec21():
    ident = b"/ABC5\\2METER01\r\n"
    block = (b"F.F(00000000)\r\nC.1.0(12345678)\r\n0.9.1(12:30:00)\r\n1.8.0(012345.678*kWh)\r\n"
             b"1.8.1(008000.000*kWh)\r\n1.8.2(004345.678*kWh)\r\n2.8.0(000001.200*kWh)\r\n"
             b"1.6.0(0001.234*kW)(26120712)\r\n32.7.0(230.1*V)\r\n31.7.0(5.123*A)\r\n!\r\n")
    msg = bcc_message(block)
    src = iec21_readout.Readout(["1.8.0", "1.8.1", "1.8.2", "2.8.0", "F.F", "C.1.0", "0.9.1", "1.6.0",
                                 "1.6.0[1]", "32.7.0", "31.7.0"], interval=10**8)
    clock = [0]

    def poll():
        t = clock[0]
        clock[0] = (t + 10000) & 0x3FFFFFFF
        readout_poll(src, ident, msg, t)

    poll()
    assert src.status == 0 and src.good_polls == 1
    measure("iec21 readout: mode C poll, %d-byte message" % len(msg), poll)


def modbus_reply(req, regs):
    body = bytearray((req[0], req[1], 2 * req[5]))
    start = (req[2] << 8) | req[3]
    for a in range(start, start + req[5]):
        v = regs[a]
        body.append(v >> 8)
        body.append(v & 0xFF)
    c = modbus_rtu.crc(body, 0, len(body))
    return bytes(body) + bytes((c & 0xFF, c >> 8))


def bench_modbus():
    import struct

    rows = []
    for name, addr, unit, scaler in SDM630_ROWS:
        rows.append({"name": name, "address": addr, "unit": unit, "scaler": scaler})
    regmap = {"defaults": {"function": 4, "type": "float32"}, "max_registers": 80, "max_gap": 40,
              "registers": rows}
    src = modbus_rtu.ModbusMaster([{"slave": 1, "map": regmap}], interval=10**8)
    regs = [0] * 80
    k = 0
    for name, addr, unit, scaler in SDM630_ROWS:
        b = struct.pack(">f", 230.1 + 1000.25 * k)
        regs[addr] = (b[0] << 8) | b[1]
        regs[addr + 1] = (b[2] << 8) | b[3]
        k += 1
    replies = []
    clock = [0]

    def poll():
        t = clock[0]
        clock[0] = (t + 10000) & 0x3FFFFFFF
        src.poll(t)
        while True:
            ev = src.next_event(t)
            if ev == 0:
                break
            if ev == 1 and not replies:
                replies.append(modbus_reply(src.tx_buf, regs))
        r = replies[0]
        src.feed(r, 0, len(r), t + 20)
        while src.next_event(t + 20):
            pass

    poll()
    assert src.status == 0 and src.good_polls == 1
    measure("modbus: SDM630 poll, 15 floats, %d-byte reply" % len(replies[0]), poll)


def bench_s0():
    src = s0.S0Input(constant=1000, persist_every=10**9)
    clock = [0]

    def pulse():
        t = clock[0]
        clock[0] = (t + 200) & 0x3FFFFFFF
        src.edge(1, t)
        src.edge(0, t + 50)
        src.tick(t + 100)

    measure("s0: one pulse (two edges) and a tick", pulse, 1000)


# ------------------------------------------------------------ bound path
# The shipped retrofit definitions (meters/s0_retrofit.json,
# optical_retrofit.json, modbus_gateway.json) compiled into build/bench_sources/
# by --prepare (CPython), then built as a board builds them: every logical
# device, the sources and their bindings. Per steady-state poll: the
# source's poll with canned answers, then Bindings.update() (the values into
# the objects, status structures, events): heap and CPU. And the heap after
# boot of each (upper bounds under MicroPython's wasm build: no GC inside a
# script, garbage included; the code is frozen on a board).
RETROFITS = ("s0_retrofit", "optical_retrofit", "modbus_gateway")


def prepare():
    from dlms_micro_cpython import meterdef
    from dlms_micro_cpython.meterdef.emit import module_text

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(repo, "build", "bench_sources")
    os.makedirs(out, exist_ok=True)
    for name in RETROFITS:
        c = meterdef.load(os.path.join(repo, "meters", name + ".json"))
        with open(os.path.join(out, name + "_meter.py"), "w", encoding="utf-8") as f:
            f.write(module_text(c, "meters/%s.json" % name))
    with open(os.path.join(out, "__init__.py"), "w") as f:
        f.write("")
    print("prepared %s: %s" % (out, ", ".join(RETROFITS)))


def _boot(name):
    from dlms_micro.meterdef import build

    mod = __import__(name + "_meter")
    clk = lambda: 800000000  # noqa: E731

    def boot():
        meters = build.build_all(mod, clk, None)
        srcs, bind = build.sources(mod, meters)
        return meters, srcs, bind

    if MP:
        gc.collect()
        a = gc.mem_alloc()
        r = boot()
        gc.collect()
        used = gc.mem_alloc() - a
    else:
        tracemalloc.start()
        r = boot()
        used = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
    meters, srcs, bind = r
    print("%-46s heap after boot %6d B (%d logical devices, %d bindings)" % (name, used, len(meters), bind.n))
    return r


def bench_bound():
    from dlms_micro.cosem import (  # noqa: F401  (code: frozen on a board)
        association_ln, clock, data, hdlc_setup, profile, register, sap)

    try:
        __import__("s0_retrofit_meter")
    except ImportError:
        print("bound path: run tools/bench_sources.py --prepare first (build/bench_sources/)")
        return
    # S0: a pulse, then the bindings
    meters, srcs, bind = _boot("s0_retrofit")
    src = srcs[0]
    clock = [0]

    def s0_pulse():
        t = clock[0]
        clock[0] = (t + 200) & 0x3FFFFFFF
        src.edge(1, t)
        src.edge(0, t + 50)
        src.tick(t + 100)
        bind.update(t + 100, 800000000 + (t >> 10))

    measure("bound s0: a pulse + Bindings.update (%d)" % bind.n, s0_pulse, 1000)
    del meters, srcs, bind
    # optical readout: a mode C poll, then the bindings
    meters, srcs, bind = _boot("optical_retrofit")
    src = srcs[0]
    ident = b"/ABC5\\2METER01\r\n"
    block = (b"F.F(00000000)\r\nC.1.0(12345678)\r\n1.8.0(012345.678*kWh)\r\n2.8.0(000001.200*kWh)\r\n"
             b"1.6.0(0001.234*kW)(26120712)\r\n32.7.0(230.1*V)\r\n!\r\n")
    msg = bcc_message(block)

    def readout():
        t = clock[0]
        clock[0] = (t + 70000) & 0x3FFFFFFF
        readout_poll(src, ident, msg, t)
        bind.update(t + 900, 800000000 + (t >> 10))

    readout()
    assert src.status == 0
    measure("bound readout: mode C poll + Bindings.update (%d)" % bind.n, readout)
    del meters, srcs, bind
    # the gateway: both SDM630 on the bus, then the bindings of 3 devices
    import struct

    meters, srcs, bind = _boot("modbus_gateway")
    src = srcs[0]
    regs = [0] * 80
    k = 0
    for name, addr, unit, scaler in SDM630_ROWS:
        b = struct.pack(">f", 230.1 + 1000.25 * k)
        regs[addr] = (b[0] << 8) | b[1]
        regs[addr + 1] = (b[2] << 8) | b[3]
        k += 1
    replies = {}

    def cycle():
        t = clock[0]
        clock[0] = (t + 20000) & 0x3FFFFFFF
        src.poll(t)
        for i in range(2):
            tt = t + 100 * i
            while True:
                ev = src.next_event(tt)
                if ev == 0:
                    break
                if ev == 1:
                    sl = src.tx_buf[0]
                    if sl not in replies:
                        replies[sl] = modbus_reply(src.tx_buf, regs)
                    r = replies[sl]
            src.feed(r, 0, len(r), tt + 20)
            while src.next_event(tt + 20):
                pass
        bind.update(t + 300, 800000000 + (t >> 10))

    cycle()
    assert src.good_polls == 1, (src.error, list(src.dev_status))
    measure("bound gateway: 2 x SDM630 + Bindings.update (%d)" % bind.n, cycle)


def main():
    print("dlms_micro sources benchmark on %s %s" % (sys.implementation.name, sys.version.split()[0]))
    if not MP:
        tracemalloc.start()
    gc.collect()
    bench_iec21()
    bench_modbus()
    bench_s0()
    if not MP:
        tracemalloc.stop()
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ports",
                                        "cpython"))
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build",
                                        "bench_sources"))
    else:
        sys.path.append("/lib/bench_sources")
    bench_bound()


if not MP and "--prepare" in sys.argv:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ports", "cpython"))
    prepare()
else:
    main()
