# The firmware's own benchmark, frozen with it (tools/firmware/build.py) so
# that its code costs no heap: on the unix firmware
#   micropython -X heapsize=100k -c "import fw_bench; fw_bench.main()"
# and on the QEMU Cortex-M3 (raw REPL), where with -icount shift=0 one
# virtual microsecond is 1,000 instructions. Prints one line per figure:
#   fw_bench NAME VALUE UNIT
# Requests are prebuilt frames fed straight into a Channel of the board's
# meter (dlms_micro_mp.board via fw_main): the link, the association, the
# services and the object table, as a UART would drive them, without the
# transport's own cost. Per operation: bytes allocated with the GC off
# (every byte, garbage included) and the time taken.

import gc
import sys
import time

import fw_main  # noqa: F401  (puts the frozen modules first on sys.path)
from dlms_micro import crc16
from dlms_micro.server import Channel

_ticks_us = time.ticks_us
_ticks_diff = time.ticks_diff

PUBLIC = 0x21  # client SAP 16 (public) as an HDLC address byte
GET_ENERGY = b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00"  # register 1.0.1.8.0.255 value
AARQ_PUBLIC = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F0200")
# client SAP 32, LLS with the boards' password 12345678, client max PDU 512
AARQ_LLS = bytes.fromhex(
    "6036A109060760857405080101" "8A020780" "8B0760857405080201" "AC0A80083132333435363738"
    "BE10040E01000000065F1F0400007E1F0200")


def out(name, value, unit):
    print("fw_bench %s %s %s" % (name, value, unit))


def frame(ctrl, info, client=PUBLIC):
    # An HDLC frame to server 1/17 (02 23); info gets the LLC header.
    body = bytearray([0, 0, 0x02, 0x23, client, ctrl])
    if info:
        body += b"\x00\x00\xe6\xe6\x00" + info
    n = len(body) + 2
    body[0] = 0xA0 | (n >> 8)
    body[1] = n & 0xFF
    if info:
        c = crc16.fcs(body, 0, 6)
        body[6] = c & 0xFF
        body[7] = c >> 8
    c = crc16.fcs(body, 0, len(body))
    return b"\x7e" + bytes(body) + bytes([c & 0xFF, c >> 8]) + b"\x7e"


def iframe(k, apdu):
    k &= 7
    return frame((k << 5) | 0x10 | (k << 1), apdu)


def wrapped(apdu, sap):
    # a TCP wrapper message from client wPort sap to the logical device 1
    return bytes([0, 1, 0, sap, 0, 1, len(apdu) >> 8, len(apdu) & 0xFF]) + apdu


def pump(ch, f):
    ch.feed(f, 0, len(f), 0)
    while ch.next_event(0):
        pass


def measure(fn, n):
    # (bytes allocated per call, us per call), GC off while measuring
    fn()
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    t0 = _ticks_us()
    for _ in range(n):
        fn()
    t1 = _ticks_us()
    used = gc.mem_alloc() - a
    gc.enable()
    return used / n, _ticks_diff(t1, t0) / n


class HdlcGets:
    # An open public association on an HDLC Channel of the board's meter;
    # get() sends the next prebuilt GET of the energy register.
    def __init__(self, app, cfg):
        self.ch = ch = Channel(app.meter, fw_main.hdlc_link(cfg))
        pump(ch, frame(0x93, b""))  # SNRM
        pump(ch, iframe(0, AARQ_PUBLIC))
        if ch.assoc.status != 2:
            raise RuntimeError("association not open")
        self.frames = [iframe(k, GET_ENERGY) for k in range(8)]
        self.k = 1

    def get(self):
        f = self.frames[self.k & 7]
        self.k += 1
        ch = self.ch
        ch.feed(f, 0, len(f), 0)
        while ch.next_event(0):
            pass


def bench_crc(n=50):
    blk = bytes(range(128))
    used, us = measure(lambda: crc16.fcs(blk, 0, 128), n)
    out("crc_code", fw_main.CRC, "")
    out("crc128_bytes", "%.1f" % used, "B/op")
    out("crc128_us", "%.1f" % us, "us/op")


def bench_get(app, cfg, n=200):
    g = HdlcGets(app, cfg)
    g.get()
    ch = g.ch
    if ch.tx_buf[ch.tx_start + 12] != 0xC4:
        raise RuntimeError("no GET response")
    used, us = measure(g.get, n)
    out("get_bytes", "%.1f" % used, "B/op")
    out("get_us", "%.1f" % us, "us/op")
    # The same with the heap locked: a GET allocates nothing, and MicroPython
    # then puts every call frame on the C stack, while unlocked it takes the
    # frame of a function with more than 11 words of locals + stack from the
    # heap and frees it on return: the difference is what those cost.
    out("get_locked_us", "%.1f" % _locked_us(g.get, n), "us/op")
    return g


def bench_wget(app, n=200):
    # A plain GET of the energy register over the TCP wrapper (a board on
    # Wi-Fi or Ethernet: dlms_micro_mp.tcp.TcpPort), the public association:
    # through feed() + next_event(), and through Channel.exchange (one call
    # for a whole message, what TcpPort does).
    from dlms_micro.link.wrapper import WrapperServer

    ch = Channel(app.meter, WrapperServer(max_apdu=512))
    pump(ch, wrapped(AARQ_PUBLIC, 0x10))
    if ch.assoc.status != 2:
        raise RuntimeError("association not open")
    f = wrapped(GET_ENERGY, 0x10)
    k = len(f)

    def general():
        ch.feed(f, 0, k, 0)
        while ch.next_event(0):
            pass

    def exchanged():
        if ch.exchange(f, k, 0) != 1:
            raise RuntimeError("exchange did not answer")

    for name, fn in (("wget", general), ("wget_exchange", exchanged)):
        fn()
        if ch.tx_buf[ch.tx_start + 8] != 0xC4:
            raise RuntimeError("no GET response")
        used, us = measure(fn, n)
        out(name + "_bytes", "%.1f" % used, "B/op")
        out(name + "_us", "%.1f" % us, "us/op")
        out(name + "_locked_us", "%.1f" % _locked_us(fn, n), "us/op")


def _locked_us(fn, n):
    # us per call of fn with the heap locked: every call frame on the C
    # stack, so the figure does not depend on where the heap's free blocks
    # happen to lie (unlocked, a frame of more than 11 words is taken from
    # the heap, and finding the block costs more on a fragmented heap)
    import micropython

    micropython.heap_lock()
    try:
        t0 = _ticks_us()
        for _ in range(n):
            fn()
        t1 = _ticks_us()
    finally:
        micropython.heap_unlock()
    return _ticks_diff(t1, t0) / n


def bench_gc_pause(g, n=1000):
    # The longest GET of n in a row with the GC on (it runs when it must),
    # and a full collection with this meter in the heap.
    gc.collect()
    worst = 0
    for _ in range(n):
        t0 = _ticks_us()
        g.get()
        d = _ticks_diff(_ticks_us(), t0)
        if d > worst:
            worst = d
    t0 = _ticks_us()
    gc.collect()
    out("get_worst_of_%d_us" % n, worst, "us")
    out("gc_collect_us", _ticks_diff(_ticks_us(), t0), "us")


def bench_profile(app, rows=None, n=5):
    # The board's load profile filled, then its whole buffer read through a
    # wrapper Channel (SAP 32, LLS, PDU 512): GET + GET-next blocks.
    from dlms_micro.cosem import profile
    from dlms_micro.link.wrapper import WrapperServer

    meter = app.meter
    entries = app.loop.service.profiles
    if not entries:
        out("profile_rows", 0, "rows")
        return
    e = entries[0]
    clock = [1767225600]
    meter.wall_clock = lambda: clock[0]
    total = e[6][2] if rows is None else rows
    for i in range(total):
        clock[0] += 900
        profile.capture(meter, e)
    ch = Channel(meter, WrapperServer(max_apdu=1024))

    pump(ch, wrapped(AARQ_LLS, 0x20))
    if ch.assoc.status != 2:
        raise RuntimeError("LLS association not open")
    frames = [wrapped(b"\xc0\x01\xc1\x00\x07" + e[2] + b"\x02\x00", 0x20)]
    while True:
        pump(ch, frames[-1])
        b = ch.tx_buf
        o = ch.tx_start + 8
        if b[o] != 0xC4 or b[o + 1] != 2:
            raise RuntimeError("not a GET data block")
        if b[o + 3]:
            break
        k = len(frames)
        frames.append(wrapped(bytes([0xC0, 2, 0xC1, 0, 0, k >> 8, k & 0xFF]), 0x20))

    def read():
        for f in frames:
            pump(ch, f)

    used, us = measure(read, n)
    out("profile_rows", total, "rows")
    out("profile_blocks", len(frames), "blocks")
    out("profile_row_bytes", "%.2f" % (used / total), "B/row")
    out("profile_row_us", "%.1f" % (us / total), "us/row")


def bench_ciphered_get(n=30, reserve=False):
    # A GET on an open ciphered association (suite 0, SC 0x30: glo-get-request
    # in, glo-get-response out), on a one-register meter with keys (as in
    # tools/bench_alloc.py); the AES backend is the first this firmware has
    # (cryptolib on the unix port, pure Python on the Cortex-M3).
    from dlms_micro.cosem.register import REGISTER
    from dlms_micro.link import hdlc
    from dlms_micro.meter import Meter, Role
    from dlms_micro.security import backend
    from dlms_micro.security import gcm as gcm_mod
    from dlms_micro.security import keys as ks

    try:  # the viper GHASH where the firmware froze it as machine code
        import ghash_viper

        ghash = "viper" if ghash_viper.install() else "portable"
    except (ImportError, SyntaxError, ValueError):
        ghash = "portable"
    ek = bytes(range(16))
    ak = bytes(range(0xD0, 0xE0))
    ctitle = b"MMM\x00\x00\x00\x00\x01"

    class Mem:
        def __init__(self):
            self.d = {}

        def get(self, key):
            return self.d.get(key)

        def put(self, key, value):
            self.d[key] = bytes(value)

    keys = ks.KeyStore(Mem(), b"MMM\x00\x00\xbc\x61\x4e", ek=ek, ak=ak)
    rw = (b"\x01\x01\x01", b"\x01")
    table = ((3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, (rw,), (0, 30)),)
    meter = Meter(table, (Role(16, ciphered=True),), [123456789])
    meter.keys = keys
    ch = Channel(meter, hdlc.HdlcServer(max_apdu=512))
    g = gcm_mod.new()
    g.set_key(ek)
    aad = bytearray(b"\x30") + ak

    def protect(plain, ic):
        tag = 0x21 if plain[0] == 0x01 else 0xC8
        iv = bytearray(ctitle) + bytes([ic >> 24, (ic >> 16) & 255, (ic >> 8) & 255, ic & 255])
        b = bytearray(plain)
        t = bytearray(12)
        g.encrypt(iv, 0, aad, 0, 17, b, 0, len(b), t, 0)
        body = b"\x30" + iv[8:] + bytes(b) + bytes(t)
        return bytes([tag, len(body)]) + body

    ui = protect(bytes.fromhex("01000000065F1F0400007E1F04B0"), 1)
    body = bytes.fromhex("A109060760857405080103") + b"\xa6\x0a\x04\x08" + ctitle
    body += bytes([0xBE, len(ui) + 2, 0x04, len(ui)]) + ui
    pump(ch, frame(0x93, b""))
    pump(ch, iframe(0, bytes([0x60, len(body)]) + body))
    if ch.assoc.status != 2:
        raise RuntimeError("ciphered association not open")
    # reserve: then as many GETs again as the key store reserves received
    # counters for (keys.rx_reserve): a window that holds exactly one stored
    # reservation (an atomic storage write of the counter record)
    more = keys.rx_reserve if reserve else 0
    frames = [iframe(k + 1, protect(GET_ENERGY, k + 2)) for k in range(n + 1 + more)]
    state = [0]

    def get():
        f = frames[state[0]]
        state[0] += 1
        ch.feed(f, 0, len(f), 0)
        while ch.next_event(0):
            pass

    used, us = measure(get, n)
    if ch.tx_buf[ch.tx_start + 12] != 0xCC:
        raise RuntimeError("no glo-get-response")
    out("ciphered_get_backend", backend.names()[0] + "+" + ghash + "-ghash", "")
    out("ciphered_get_bytes", "%.1f" % used, "B/op")
    out("ciphered_get_us", "%.1f" % us, "us/op")
    if more:
        # measure() took n + 1 of the frames; the next `more` GETs hold one
        # reservation write wherever they start
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        for _ in range(more):
            get()
        used = gc.mem_alloc() - a
        gc.enable()
        out("ciphered_reserve_window", more, "GETs")
        out("ciphered_reserve_bytes", used, "B")


def boot_heap(name=None):
    # Heap in use once the board's meter is built (every module it imports is
    # frozen: what remains is its run-time state), after a collection.
    import dlms_board_def

    if dlms_board_def.load(name or dlms_board_def.NAMES[0]).get("sources") and \
            not hasattr(__import__("machine"), "UART"):
        fw_main.idle_sources()  # the retrofits' UART and GPIO: idle stand-ins here
    app, cfg = fw_main.make_meter(name, wall_clock=lambda: 1767225600)
    gc.collect()
    out("boot_heap_used", gc.mem_alloc(), "B")
    out("boot_heap_free", gc.mem_free(), "B")
    return app, cfg


def main(name=None, what="crc,get,wget,gc,profile,cipher"):
    out("platform", sys.platform, "")
    app, cfg = boot_heap(name)
    if "crc" in what:
        bench_crc()
    g = None
    if "get" in what.split(","):
        g = bench_get(app, cfg)
    if "wget" in what.split(","):
        bench_wget(app)
    if "gc" in what and g is not None:
        bench_gc_pause(g)
    g = None
    if "profile" in what:
        bench_profile(app)
    if "cipher" in what:
        bench_ciphered_get(reserve="reserve" in what)
    out("done", 1, "")
