# Heap after boot of the retrofit board examples in the real frozen firmware
# (make firmware: MicroPython v1.27.0, unix port at 32 bits, the stack, the
# port and every board's compiled meter frozen):
#
#   build/firmware/unix32/micropython -X heapsize=100k tools/firmware/retrofit_heap.py [BOARD ...]
#
# Each board is built as dlms_micro_mp.board.build builds it on an ESP32:
# every logical device of its definition, the channels' HDLC links and
# buffers, the sources on their UART or GPIO and the bindings. The unix port
# has no machine.UART or Pin: fw_main's tiny stand-ins hold no buffers of
# their own (on the ESP32 the UART's ring buffer is the driver's, outside the
# MicroPython heap). Printed: bytes in use after gc.collect(), and free.
#
#   build/firmware/unix32/micropython -X heapsize=100k tools/firmware/retrofit_heap.py --apps BOARD
#
# The heap each application of BOARD's meter takes (disconnect control, time
# of use, prepayment): the modules it imports (frozen code stays in flash;
# their globals and class objects are heap), the state of its objects (the
# state makers of dlms_micro.meterdef.state, as the build runs them), and
# the board's wiring (dlms_micro_mp.apps, the relay driver).
# (tools/firmware/board_heap.py prints both, with the free heap under load.)
#
#   build/firmware/unix32/micropython -X heapsize=100k tools/firmware/retrofit_heap.py --channels [BOARD ...]
#
# The heap one TCP connection's Channel takes before any association, per
# logical device of BOARD's meter with the demo keys (suite 0): over the
# TCP wrapper and over HDLC over TCP, as fw_main makes them; and the
# AES-GCM object an association with a dedicated key adds for its lifetime.

import gc
import sys

if ".frozen" in sys.path:  # the frozen modules, not a checkout's sources
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")


import fw_main  # noqa: E402  (the frozen modules first; its stand-ins for machine.UART and Pin)

fw_main.idle_sources()

import dlms_board_def  # noqa: E402
from dlms_micro_mp import board  # noqa: E402

BOARDS = ("esp32c3_s0_retrofit", "esp32_devkitc_optical", "esp32_devkitc_modbus_gateway", "esp32c3_battery",
          "esp32_devkitc_max3485")
# the code a board uses, imported first: module objects are not the meter's
# state (frozen, their code stays in flash)
CODE = ("dlms_micro_mp.sources", "dlms_micro_mp.optical", "dlms_micro.meterdef.sources", "dlms_micro.router",
        "dlms_micro.source.s0", "dlms_micro.source.modbus_rtu", "dlms_micro.source.iec21_readout",
        "dlms_micro.link.iec21", "dlms_micro.cosem.profile", "dlms_micro.cosem.clock", "dlms_micro.cosem.register",
        "dlms_micro.cosem.data", "dlms_micro.cosem.hdlc_setup", "dlms_micro.cosem.association_ln",
        "dlms_micro.cosem.sap")


# application: (classes of its objects, modules it imports)
APPS = (
    ("disconnect control", (70,), ("dlms_micro.cosem.disconnect", "dlms_micro_mp.relay")),
    ("time of use", (6, 9, 11, 20, 22), ("dlms_micro.cosem.script", "dlms_micro.cosem.tariff",
                                          "dlms_micro.cosem.schedule")),
    ("prepayment", (111, 112, 113, 115), ("dlms_micro.cosem.prepay", "dlms_micro.cosem.token_gateway")),
)


def _alloc():
    gc.collect()
    return gc.mem_alloc()


def apps(name):
    # the heap of each application of the board's meter
    from dlms_micro.meterdef import build as mb
    from dlms_micro.meterdef import state as ms

    cfg = dlms_board_def.load(name)
    defn = board.meter_definition(cfg)
    _ld, _n, table, inits, _d = defn.DEVICES[0]
    env = mb.Env(None, token_key=bytes(16))
    keep = []
    total = 0
    for label, classes, mods in APPS:
        mine = [(i, args) for i, args in inits if table[i][0] in classes]
        if not mine:
            continue
        a = _alloc()
        for m in mods:
            __import__(m)
        code = _alloc() - a
        a = _alloc()
        for i, args in mine:
            keep.append(ms.make(table[i], args, env))
        state = _alloc() - a
        total += code + state
        print("%s: %s: %d objects, state %d B, modules %d B" % (name, label, len(mine), state, code))
    if not total:
        print("%s: none of the applications" % name)
        return
    a = _alloc()
    __import__("dlms_micro_mp.apps")
    code = _alloc() - a
    meter = mb.build(defn, lambda: 800000000, None, env=env)
    a = _alloc()
    from dlms_micro_mp import relay

    relays = relay.make(cfg, fw_main._IdleHw) if cfg.get("relay") else ()
    from dlms_micro_mp.apps import Apps

    w = Apps(meter, None, relays)
    wiring = _alloc() - a
    total += code + wiring
    print("%s: wiring (dlms_micro_mp.apps, %d relay): objects %d B, module %d B" % (name, len(relays), wiring, code))
    print("%s: the applications together: %d B" % (name, total))
    del keep, w, meter


def channels(name):
    # the heap a connection's Channel takes, per logical device
    from dlms_micro.link.wrapper import WrapperServer
    from dlms_micro.security import gcm
    from dlms_micro.server import Channel

    app, cfg = fw_main.make_meter(name, log=lambda m: None, wall_clock=lambda: 800000000)
    defn = board.meter_definition(cfg)
    max_apdu = cfg.get("hdlc", {}).get("max_apdu", 512)
    # one of each first: the modules' first use (interned names, caches)
    # is not a connection's cost
    Channel(app.meter, WrapperServer(max_apdu=max_apdu))
    Channel(app.meter, board.hdlc_link(defn, cfg))
    for meter in app.meters:
        ld = meter.logical_device
        for kind in ("wrapper", "hdlc"):
            a = _alloc()
            if kind == "wrapper":
                ch = Channel(meter, WrapperServer(wports=(ld,), max_apdu=max_apdu))
            else:
                ch = Channel(meter, board.hdlc_link(defn, cfg, ld))
            cost = _alloc() - a
            print("%s: logical device %d: a %s connection's channel %d B (%s)"
                  % (name, ld, kind, cost, "suite 0" if ch.suite is not None else "no keys"))
            del ch
    a = _alloc()
    g = gcm.new()
    print("%s: the AES-GCM of a dedicated key (while an association has one) %d B" % (name, _alloc() - a))
    del g, app


def main():
    for m in CODE:
        __import__(m)
    if "--channels" in sys.argv:
        for name in [a for a in sys.argv[1:] if not a.startswith("-")] or BOARDS:
            channels(name)
        return
    if "--apps" in sys.argv:
        for name in [a for a in sys.argv[1:] if not a.startswith("-")]:
            apps(name)
        return
    names = [a for a in sys.argv[1:] if not a.startswith("-")] or BOARDS
    for name in names:
        if name not in dlms_board_def.NAMES:
            print("%s: not in this firmware" % name)
            continue
        cfg = dlms_board_def.load(name)
        cfg.pop("led", None)
        defn = board.meter_definition(cfg)
        gc.collect()
        a = gc.mem_alloc()
        app = board.build(cfg, storage=None, wdt=False, log=lambda m: None, wall_clock=lambda: 800000000,
                          definition=defn)
        gc.collect()
        used = gc.mem_alloc() - a
        print("%s: heap after boot %d B (meter, %d ports, sources, bindings), %d B free of the 100 KiB heap"
              % (name, used, len(app.ports), gc.mem_free()))
        del app
        gc.collect()


main()
