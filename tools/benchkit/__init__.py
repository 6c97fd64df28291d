# The measuring harness the benchmarks share (tools/bench_alloc.py,
# tools/bench_sources.py, tools/bench_get.py), for CPython and for
# MicroPython: measure(), a client's HDLC frames, and a ciphered meter with
# its head-end (ciphered_meter, CipheringClient). Under the Node.js
# runner it travels as a package (--package tools/benchkit); under CPython
# the benchmark's own folder, tools/, is on sys.path.
#
# measure(name, fn, n, unit) prints, per call of fn:
#   MicroPython: gc.mem_alloc() growth with the GC disabled, i.e. every byte
#                allocated, garbage included (what costs GC pauses on a
#                board), then the time per call with the GC on;
#   CPython:     the time per call, then tracemalloc's peak bytes above the
#                start over all calls (transient) and the bytes still held
#                afterwards per call (retained).

import gc
import sys

MP = sys.implementation.name == "micropython"

if MP:
    try:
        import jsclock  # registered by the Node.js runner: performance.now() in ms

        def now_us():
            return jsclock.now() * 1000.0

    except ImportError:
        import time

        def now_us():
            return time.ticks_us()

else:
    import time
    import tracemalloc

    def now_us():
        return time.perf_counter_ns() / 1000.0


def _time(fn, n):
    t0 = now_us()
    for _ in range(n):
        fn()
    return (now_us() - t0) / n


def measure(name, fn, n, unit="op", width=44):
    # returns (bytes, us) per call: MicroPython's bytes per call, CPython's
    # peak bytes over all calls
    fn()  # warm up: first-call effects are not steady state
    if MP:
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        for _ in range(n):
            fn()
        used = gc.mem_alloc() - a
        gc.enable()
        gc.collect()
        us = _time(fn, n)
        print("%-*s %8.1f B/%s %10.1f us/%s" % (width, name, used / n, unit, us, unit))
        return used / n, us
    us = _time(fn, n)
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        fn()
    cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print("%-*s %8d B peak %6d B retained/%s %8.2f us/%s"
          % (width, name, peak - base, (cur - base) // n, unit, us, unit))
    return peak - base, us


def client_frame(crc16, ctrl, apdu=None, client=0x21):
    # A client's HDLC frame to server 1/0x11 (address 02 23) from the
    # client address byte `client` (0x21: client 0x10; 0x41: client 0x20),
    # control byte ctrl; apdu, if any, goes after the LLC header. crc16 is
    # dlms_micro.crc16, passed in so a benchmark imports it when it wants to.
    body = bytearray([0, 0, 0x02, 0x23, client, ctrl])
    if apdu is not None:
        body += b"\x00\x00\xe6\xe6\x00" + apdu
    n = len(body) + 2
    body[0] = 0xA0 | (n >> 8)
    body[1] = n & 0xFF
    if apdu is not None:
        c = crc16.fcs(body, 0, 6)
        body[6] = c & 0xFF
        body[7] = c >> 8
    c = crc16.fcs(body, 0, len(body))
    return b"\x7e" + bytes(body) + bytes([c & 0xFF, c >> 8]) + b"\x7e"


def client_iframe(crc16, k, apdu, client=0x21):
    # the I-frame carrying apdu with N(S) = N(R) = k (mod 8), poll bit set
    k &= 7
    return client_frame(crc16, (k << 5) | 0x10 | (k << 1), apdu, client)


# A one-register meter with suite 0 keys and the head-end that talks to it
# (tools/bench_alloc.py, tools/bench_get.py): the energy register
# 1.0.1.8.0.255 = 123456789, one ciphered role; the client's requests
# authenticated and encrypted (SC 0x30) with the same keys.
CIPHER_EK = bytes(range(16))
CIPHER_AK = bytes(range(0xD0, 0xE0))
CIPHER_CLIENT_TITLE = b"MMM\x00\x00\x00\x00\x01"
CIPHER_METER_TITLE = b"MMM\x00\x00\xbc\x61\x4e"


def ciphered_meter(storage, sap):
    # the meter, its key store in storage, its ciphered role client SAP sap
    from dlms_micro.cosem.register import REGISTER
    from dlms_micro.meter import Meter, Role
    from dlms_micro.security import keys as ks

    rw = (b"\x01\x01\x01", b"\x01")
    table = ((3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, (rw,), (0, 30)),)
    meter = Meter(table, (Role(sap, ciphered=True),), [123456789])
    meter.keys = ks.KeyStore(storage, CIPHER_METER_TITLE, ek=CIPHER_EK, ak=CIPHER_AK)
    return meter


class CipheringClient:
    # the head-end's side: protect() a plain APDU with invocation counter ic
    # as glo-initiate-request / glo-get-request (or general-glo-ciphering);
    # aarq(): the ciphered AARQ (calling-AP-title, glo-initiate-request, IC 1)
    def __init__(self):
        from dlms_micro.security import gcm

        self.g = gcm.new()
        self.g.set_key(CIPHER_EK)
        self.aad = bytearray(b"\x30") + CIPHER_AK

    def protect(self, plain, ic, general=False):
        tag = 0x21 if plain[0] == 0x01 else 0xC8
        iv = bytearray(CIPHER_CLIENT_TITLE) + bytes([ic >> 24, (ic >> 16) & 255, (ic >> 8) & 255, ic & 255])
        b = bytearray(plain)
        t = bytearray(12)
        self.g.encrypt(iv, 0, self.aad, 0, 17, b, 0, len(b), t, 0)
        body = b"\x30" + iv[8:] + bytes(b) + bytes(t)
        if general:
            return b"\xdb\x08" + CIPHER_CLIENT_TITLE + bytes([len(body)]) + body
        return bytes([tag, len(body)]) + body

    def aarq(self):
        ui = self.protect(bytes.fromhex("01000000065F1F0400007E1F04B0"), 1)
        body = bytes.fromhex("A109060760857405080103") + b"\xa6\x0a\x04\x08" + CIPHER_CLIENT_TITLE
        body += bytes([0xBE, len(ui) + 2, 0x04, len(ui)]) + ui
        return bytes([0x60, len(body)]) + body
