# Malformed HDLC input, the same on CPython and on the firmware: a board's
# meter (its compiled meter definition) behind an HDLC Channel is fed a
# fixed, pseudo-random series of damaged frames (bits flipped, bytes cut,
# added or repeated, flags inserted, lengths wrong) between good ones; every
# answer is reduced to (length, CRC-16) per input. tests/firmware/ runs this
# under CPython and on the unix firmware and compares the lines; on the
# firmware it also checks that the heap in use after the whole series is
# what it was before (nothing leaked, nothing kept).
#
#   python tools/firmware/fw_fuzz.py METER_MODULE_DIR      (CPython)
#   micropython -X heapsize=100k fw_fuzz.py                 (firmware: frozen meter)
# Output: "fuzz I LEN CRC" per input, then "fuzz heap BEFORE AFTER".

import gc
import sys

if sys.implementation.name != "micropython":
    import os

    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[0:0] = [sys.argv[1], os.path.dirname(os.path.dirname(_here))]
elif ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

from dlms_micro import crc16  # noqa: E402
from dlms_micro.meterdef import build as mb  # noqa: E402
from dlms_micro.server import Channel  # noqa: E402

import esp32_devkitc_max3485_meter as defn  # noqa: E402

CASES = 400
CLIENT = 0x21  # SAP 16
GET = b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00"
AARQ = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F0200")


def frame(ctrl, info=b"", seg=0):
    body = bytearray([0, 0, 0x02, 0x23, CLIENT, ctrl])
    if info:
        body += b"\x00\x00\xe6\xe6\x00" + info
    n = len(body) + 2
    body[0] = 0xA0 | seg | (n >> 8)
    body[1] = n & 0xFF
    if info:
        c = crc16.fcs(body, 0, 6)
        body[6] = c & 0xFF
        body[7] = c >> 8
    c = crc16.fcs(body, 0, len(body))
    return b"\x7e" + bytes(body) + bytes([c & 0xFF, c >> 8]) + b"\x7e"


class Rand:
    # 16-bit xorshift: the same numbers on every interpreter, small ints only
    def __init__(self, seed):
        self.s = seed & 0xFFFF or 1

    def next(self, n):
        s = self.s
        s ^= (s << 7) & 0xFFFF
        s ^= s >> 9
        s ^= (s << 8) & 0xFFFF
        self.s = s
        return s % n


def damaged(r, f):
    b = bytearray(f)
    kind = r.next(7)
    if kind == 0:  # flip bits
        for _ in range(1 + r.next(3)):
            i = r.next(len(b))
            b[i] ^= 1 << r.next(8)
    elif kind == 1:  # cut the end
        b = b[: 1 + r.next(len(b) - 1)]
    elif kind == 2:  # bytes added inside
        i = r.next(len(b))
        b = b[:i] + bytes(r.next(256) for _ in range(1 + r.next(6))) + b[i:]
    elif kind == 3:  # a flag inside
        i = 1 + r.next(len(b) - 2)
        b[i] = 0x7E
    elif kind == 4:  # wrong length field
        b[2] = r.next(256)
    elif kind == 5:  # garbage only
        b = bytearray(r.next(256) for _ in range(1 + r.next(40)))
    else:  # the frame twice, the first cut
        b = b[: len(b) // 2] + b
    return bytes(b)


def cases():
    r = Rand(0x1D1D)
    good = [frame(0x93), frame(0x10, AARQ), frame(0x32, GET), frame(0x51), frame(0x53)]
    out = []
    k = 0
    for i in range(CASES):
        if r.next(4) == 0:
            # a good exchange in between: SNRM, AARQ, GET with fresh numbers
            out.append(frame(0x93))
            out.append(frame(0x10, AARQ))
            k = 1
            out.append(frame((k << 5) | 0x10 | (k << 1), GET))
        else:
            out.append(damaged(r, good[r.next(len(good))]))
    return out


def run():
    meter = mb.build(defn, lambda: 1767225600, None)
    import dlms_micro.link.hdlc as hdlc

    h = defn.HDLC
    ch = Channel(meter, hdlc.HdlcServer(logical=defn.LOGICAL_DEVICE, physical=defn.PHYSICAL_ADDRESS,
                                        max_info_tx=h[0], max_info_rx=h[0], max_apdu=512))
    inputs = cases()
    n = len(inputs)
    lens = [0] * n
    crcs = [0] * n
    # a first pass warms every path up (first-use allocations: views, caches)
    for rep in range(2):
        if rep == 1:
            ch.close()
            ch.link.disconnect()
            gc.collect()
            before = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
        now = 0
        for i in range(n):
            f = inputs[i]
            ch.feed(f, 0, len(f), now)
            total = 0
            c = 0xFFFF
            while True:
                ev = ch.next_event(now)
                if ev == 0:
                    break
                if ev == 1:
                    total += ch.tx_end - ch.tx_start
                    c = crc16.update(c, ch.tx_buf, ch.tx_start, ch.tx_end)
            # the inter-octet timeout drops what a cut frame left behind
            now += 1000
            ch.next_event(now)
            lens[i] = total
            crcs[i] = c
    gc.collect()
    after = gc.mem_alloc() if hasattr(gc, "mem_alloc") else 0
    for i in range(n):
        print("fuzz %d %d %04x" % (i, lens[i], crcs[i]))
    print("fuzz heap %d %d" % (before, after))


run()
