# Allocation and CPU benchmark of the dlms_micro core, for CPython and for
# MicroPython (tools/micropython/runner.mjs --script tools/bench_alloc.py).
#
# Prints, per operation: heap bytes allocated per call and CPU time per call.
#   MicroPython: gc.mem_alloc() growth with the GC disabled, i.e. every byte
#                allocated, garbage included (what costs GC pauses on a board).
#   CPython:     tracemalloc: peak bytes above the start per call (transient)
#                and bytes still held afterwards (retained).
# and the heap in use after importing the core and creating one HDLC link.
# Later issues add their hot paths here (ciphered GET, profile rows, ...).

import gc
import sys

from benchkit import MP, CipheringClient, ciphered_meter, client_frame, client_iframe, now_us
from benchkit import measure as _measure

if not MP:
    import os
    import tracemalloc

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

N = 200


def measure(name, fn, n=N):
    return _measure(name, fn, n)


def heap_used():
    gc.collect()
    if MP:
        return gc.mem_alloc()
    return tracemalloc.get_traced_memory()[0]


def main():
    print("dlms_micro allocation benchmark on %s %s" % (sys.implementation.name, sys.version.split()[0]))
    if not MP:
        tracemalloc.start()
    h0 = heap_used()
    # Import one module at a time to show what each costs in RAM when it is
    # loaded from the filesystem (.mpy); a frozen build keeps code in flash.
    prev = h0
    for name in (
        "dlms_micro.errors",
        "dlms_micro.crc16",
        "dlms_micro.ticks",
        "dlms_micro.obis",
        "dlms_micro.axdr",
        "dlms_micro.link.hdlc",
        "dlms_micro.link.wrapper",
        "dlms_micro.cosem.base",
        "dlms_micro.meter",
        "dlms_micro.app.association",
        "dlms_micro.app.xdlms",
        "dlms_micro.app.acse",
        "dlms_micro.server",
        "dlms_micro.cosem.common",
        "dlms_micro.cosem.register",
    ):
        __import__(name)
        h = heap_used()
        print("  import %-32s %8d B" % (name, h - prev))
        prev = h
    from dlms_micro import axdr, crc16  # noqa: F401
    from dlms_micro.link import hdlc, wrapper

    h1 = heap_used()
    link = hdlc.HdlcServer(max_info_tx=128, max_info_rx=128, max_apdu=1024)
    h2 = heap_used()
    if not MP:
        tracemalloc.stop()
    print("heap after importing the core                %8d B" % (h1 - h0))
    print("  + one HDLC link (128 B frames, 1 KB APDU)  %8d B" % (h2 - h1))

    # --- A-XDR: a load-profile row, structure{date-time, unsigned status,
    # double-long-unsigned import, double-long-unsigned export}
    out = bytearray(64)

    def encode_row():
        o = axdr.enc_structure(out, 0, 4)
        o = axdr.enc_date_time(out, o, 2026, 11, 24, 2, 10, 15, 0, 0, 60, 0)
        o = axdr.enc_unsigned(out, o, 8)
        o = axdr.enc_double_long_unsigned(out, o, 123456789)
        o = axdr.enc_double_long_unsigned(out, o, 4321)
        return o

    row_len = encode_row()
    row = bytes(out[:row_len])
    r = axdr.Reader(row)
    stamp = axdr.DateTime()

    def decode_row():
        r.reset(row, 0, row_len)
        r.structure()
        r.date_time(stamp)
        r.unsigned()
        r.double_long_unsigned()
        r.double_long_unsigned()

    measure("axdr encode profile row (%d B)" % row_len, encode_row)
    measure("axdr decode profile row in place", decode_row)

    # --- HDLC: one GET request I-frame in, one reply I-frame out, open link
    get_req = bytes.fromhex("c001c1000301000108 00ff0200".replace(" ", ""))
    reply = bytes.fromhex("c401c1000600003039")
    frames = []
    for k in range(8):
        frames.append(client_iframe(crc16, k, get_req))
    _connect(link, crc16)
    s = link.TX_APDU_START
    link.tx_apdu[s : s + len(reply)] = reply
    end = s + len(reply)
    state = [0]

    def hdlc_round():
        k = state[0]
        state[0] = (k + 1) & 7
        f = frames[k]
        link.feed(f, 0, len(f), k)
        while True:
            ev = link.next_event(k)
            if ev == 0:
                return
            if ev == 2:
                link.send_apdu(end)

    measure("hdlc I-frame in + reply frame out", hdlc_round)

    # --- wrapper: one request in, one reply out
    wl = wrapper.WrapperServer()
    wreq = bytes([0, 1, 0, 0x10, 0, 1, 0, len(get_req)]) + get_req
    ws = wl.TX_APDU_START
    wl.tx_apdu[ws : ws + len(reply)] = reply
    wend = ws + len(reply)

    def wrapper_round():
        wl.feed(wreq, 0, len(wreq), 0)
        while True:
            ev = wl.next_event(0)
            if ev == 0:
                return
            if ev == 2:
                wl.send_apdu(wend)

    measure("wrapper request in + reply out", wrapper_round)

    # --- a GET of a Register value on an open association, through the whole
    # channel: HDLC frame in -> ACSE/xDLMS -> Register -> reply frame out
    from dlms_micro import server
    from dlms_micro.cosem.register import REGISTER
    from dlms_micro.meter import Meter, Role

    rw = (b"\x01\x01\x01", b"\x01")
    table = ((3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, (rw,), (0, 30)),)
    meter = Meter(table, (Role(16),), [123456789])
    ch = server.Channel(meter, hdlc.HdlcServer(max_apdu=512))
    _pump(ch, client_frame(crc16, 0x93))
    aarq = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
    _pump(ch, client_iframe(crc16, 0, aarq))
    get3 = bytes.fromhex("c001c1000301000108 00ff0200".replace(" ", ""))
    gframes = []
    for k in range(8):
        gframes.append(client_iframe(crc16, k + 1, get3))
    gstate = [0]

    def channel_get():
        k = gstate[0]
        gstate[0] = (k + 1) & 7
        f = gframes[k]
        ch.feed(f, 0, len(f), 0)
        while ch.next_event(0):
            pass

    channel_get()
    assert ch.assoc.status == 2, "association not open"
    assert ch.tx_buf[ch.tx_end - 8] == 0x06, "GET did not return the value"
    measure("GET Register value: frame in, reply out", channel_get)

    # --- CRC over a full 128-byte frame (the per-frame checksum cost)
    blk = bytes(range(128))
    measure("crc16 over 128 B", lambda: crc16.fcs(blk, 0, 128))


def _pump(ch, f):
    ch.feed(f, 0, len(f), 0)
    while ch.next_event(0):
        pass


def _connect(link, crc16):
    f = client_frame(crc16, 0x93)
    link.feed(f, 0, len(f), 0)
    while link.next_event(0):
        pass



# --- security: AES-GCM-128 per available backend (dlms_micro.security) -------
# One GCM call over a 64-byte APDU with suite 0's 17-byte AAD (SC || AK) and a
# 12-byte tag: heap bytes per call and throughput. "pure/t4" is the portable
# Gcm with 1 KB GHASH tables (the default), "t8" with 8 KB; "whole" is a
# backend's own AES-GCM (the CPython port's cryptography AESGCM).


def bench_gcm():
    from dlms_micro.security import backend, gcm

    if not MP:
        try:
            import dlms_micro_cpython.crypto  # noqa: F401  (registers "cryptography")
        except ImportError:
            sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__))), "ports", "cpython"))
            try:
                import dlms_micro_cpython.crypto  # noqa: F401
            except ImportError:
                pass
    print("AES-GCM-128, 64 B APDU + 17 B AAD, 12 B tag; backends: %s" % ", ".join(backend.names()))
    kinds = []
    for name in backend.names():
        kinds.append(("%s/t4" % name, gcm.Gcm(backend.new(name), 4)))
        if name == "pure":
            kinds.append(("pure/t8", gcm.Gcm(backend.new(name), 8)))
        if backend.gcm_maker(name) is not None:
            kinds.append(("%s/whole" % name, backend.gcm_maker(name)()))
    iv = bytearray(b"MMM\x00\x00\xbcaN\x01\x23\x45\x67")
    aad = bytearray(b"\x30" + bytes(range(0xD0, 0xE0)))
    buf = bytearray(64 + 12)
    for label, g in kinds:
        g.set_key(bytes(range(16)))

        def enc():
            g.encrypt(iv, 0, aad, 0, 17, buf, 0, 64, buf, 64, 12)

        def dec():
            g.encrypt(iv, 0, aad, 0, 17, buf, 0, 64, buf, 64, 12)
            g.decrypt(iv, 0, aad, 0, 17, buf, 0, 64, buf, 64, 12)

        n = 20 if MP else 200
        measure("gcm %-18s encrypt 64 B" % label, enc, n)
        measure("gcm %-18s encrypt + decrypt 64 B" % label, dec, n)
        for _ in range(n):
            enc()
        t0 = now_us()
        for _ in range(n):
            enc()
        us = (now_us() - t0) / n
        print("gcm %-18s %10.0f B/s (encrypt, 64 B APDUs)" % (label, 64e6 / us))


main()
bench_gcm()


# --- a ciphered GET through the whole channel (suite 0: glo-get-request with
# SC 0x30 in, glo-get-response out) on an open ciphered association ----------


class _MemStorage:
    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = bytes(value)


def bench_ciphered_get():
    from dlms_micro import crc16, server
    from dlms_micro.link import hdlc

    meter = ciphered_meter(_MemStorage(), 16)
    keys = meter.keys
    ch = server.Channel(meter, hdlc.HdlcServer(max_apdu=512))
    client = CipheringClient()
    g = client.g
    protect = client.protect  # what the head-end sends: glo-initiate-request / glo-get-request
    _pump(ch, client_frame(crc16, 0x93))
    _pump(ch, client_iframe(crc16, 0, client.aarq()))
    assert ch.assoc.status == 2, "ciphered association not open"
    get3 = bytes.fromhex("c001c100030100010800ff0200")
    # each request needs a fresh invocation counter: prebuilt. Twice the key
    # store's received-counter reservation: the average holds exactly two
    # stored reservations (a record written once per rx_reserve GETs)
    n = 2 * keys.rx_reserve
    frames = []
    for k in range(2 * n + 2):
        frames.append(client_iframe(crc16, k + 1, protect(get3, k + 2)))
    state = [0]

    def ciphered_get():
        k = state[0]
        state[0] = k + 1
        f = frames[k]
        ch.feed(f, 0, len(f), 0)
        while ch.next_event(0):
            pass

    ciphered_get()
    assert ch.tx_buf[ch.tx_start + 12] == 0xCC, "no glo-get-response"
    measure("ciphered GET (SC 0x30, %s): frame in/out" % type(g).__name__, ciphered_get, n)
    print("  (averaged over %d GETs: a received-counter reservation is stored once per %d; between them a "
          "ciphered GET allocates nothing on the firmware, tools/firmware/bench_fw.py)" % (n, keys.rx_reserve))


bench_ciphered_get()


# --- Profile generic: serving load-profile rows ------------------------------
# A load profile as the demo meter's (clock, AMR status, energy import,
# export: 28 bytes a row as sent) holding 192 rows (two days of 15-minute
# rows), read through a wrapper Channel by a GET and GET-next blocks with a
# client max PDU of 512 (~18 rows a block): the whole buffer, a range
# descriptor on the clock (the second day: 96 rows) and an entry descriptor
# (entries 97..192). Per read (the GET and every GET-next, frames in and
# replies out) and per row served: heap bytes (MicroPython: allocated with
# the GC off, garbage included; CPython: tracemalloc peak) and CPU time.
# Measured on MicroPython: 16 B per block (the xDLMS layer's memoryview
# slice copying each block out), nothing per row. The range costs ~3x the
# CPU a row: the array header's count is a first pass over every row in
# the ring, and rows outside the range are tested as well.

PROFILE_T0 = 1795305600  # 2026-11-22 00:00:00 UTC: the first row
PROFILE_ROWS = 192


def _profile_meter():
    from dlms_micro import axdr
    from dlms_micro.cosem import clock, profile
    from dlms_micro.cosem.clock import CLOCK
    from dlms_micro.cosem.data import DATA
    from dlms_micro.cosem.profile import PROFILE_GENERIC, ProfileBuffer
    from dlms_micro.cosem.register import REGISTER
    from dlms_micro.meter import Meter, Role

    def ro(ic):
        return ((bytes([1]) * ic.attribute_count, bytes(ic.method_count)),)

    ln_clock = b"\x00\x00\x01\x00\x00\xff"
    ln_status = b"\x00\x00\x60\x0a\x01\xff"
    ln_import = b"\x01\x00\x01\x08\x00\xff"
    ln_export = b"\x01\x00\x02\x08\x00\xff"
    fw = profile.field_width
    dlu = axdr.DOUBLE_LONG_UNSIGNED
    cos = (
        (8, ln_clock, 2, 0, profile.CLOCK_WIDTH),
        (1, ln_status, 2, 0, fw(axdr.UNSIGNED)),
        (3, ln_import, 2, 0, fw(dlu)),
        (3, ln_export, 2, 0, fw(dlu)),
    )
    param = (cos, 900, PROFILE_ROWS)
    state = clock.initial_state() + [0, 0, 0, ProfileBuffer(param)]
    s = len(state) - 4  # status, import, export, profile
    table = (
        (8, 0, ln_clock, CLOCK, 0, ro(CLOCK), None),
        (1, 0, ln_status, DATA, s, ro(DATA), (axdr.UNSIGNED,)),
        (3, 0, ln_import, REGISTER, s + 1, ro(REGISTER), (0, 30, dlu)),
        (3, 0, ln_export, REGISTER, s + 2, ro(REGISTER), (0, 30, dlu)),
        (7, 1, b"\x01\x00\x63\x01\x00\xff", PROFILE_GENERIC, s + 3, ro(PROFILE_GENERIC), param),
    )
    now = [PROFILE_T0]
    meter = Meter(table, (Role(16),), state, wall_clock=lambda: now[0])
    for i in range(PROFILE_ROWS):
        now[0] = PROFILE_T0 + 900 * i
        state[s + 1] += 150 + (i * 37) % 200
        state[s + 2] += (i * 11) % 50
        profile.capture(meter, table[4])
    return meter


def _wrapped(apdu):
    # a wrapper message from client wPort 16 to the meter's wPort 1
    return bytes([0, 1, 0, 0x10, 0, 1, len(apdu) >> 8, len(apdu) & 0xFF]) + apdu


def bench_profile():
    from dlms_micro import server
    from dlms_micro.link import wrapper

    meter = _profile_meter()
    ch = server.Channel(meter, wrapper.WrapperServer(max_apdu=1024))
    # AARQ, client SAP 16 (no authentication), client max PDU 512
    _pump(ch, _wrapped(bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F0200")))
    assert ch.assoc.status == 2, "association not open"
    get = bytes.fromhex("c001c1000701006301 00ff02".replace(" ", ""))
    clock_def = bytes.fromhex("020412000809060000010000ff0f02120000")
    day2 = bytes.fromhex("090c07ea0b17ff000000ff8000ff")  # 2026-11-23 00:00:00
    day3 = bytes.fromhex("090c07ea0b18ff000000ff8000ff")  # 2026-11-24 00:00:00
    cases = (
        ("whole buffer", get + b"\x00", PROFILE_ROWS),
        ("range (clock: the 2nd day)", get + b"\x01\x01\x02\x04" + clock_def + day2 + day3 + b"\x01\x00", 96),
        ("entry (97..192)", get + bytes.fromhex("0102020406000000610600000000120001120000"), 96),
    )
    print("Profile generic: %d-row load profile, GET + GET-next blocks through a wrapper Channel, client PDU 512" % PROFILE_ROWS)
    for label, request, rows in cases:
        frames = [_wrapped(request)]
        # one GET-next per further block: as many as a first read needs
        data = bytearray()
        while True:
            f = frames[-1]
            ch.feed(f, 0, len(f), 0)
            while ch.next_event(0):
                pass
            b = ch.tx_buf
            o = ch.tx_start + 8
            assert b[o] == 0xC4 and b[o + 1] == 2 and b[o + 8] == 0, "not a GET data block"
            n = b[o + 9]
            p = o + 10
            if n & 0x80:
                k = n & 0x7F
                n = int.from_bytes(b[p : p + k], "big")
                p += k
            data += b[p : p + n]
            if b[o + 3]:  # the last block
                break
            k = len(frames)
            frames.append(_wrapped(bytes([0xC0, 2, 0xC1, 0, 0, k >> 8, k & 0xFF])))
        # an array of `rows` structures, 28 bytes each
        assert data[0] == 1 and len(data) == rows * 28 + (2 if rows < 128 else 3), (label, len(data))

        def read():
            _pump_all(ch, frames)

        used, us = measure("profile %-27s %3d blk" % (label, len(frames)), read, 20 if MP else 200)
        if MP:
            print(
                "  per row served (%3d rows)               %8.2f B/row %9.2f us/row  (%.0f B/block)"
                % (rows, used / rows, us / rows, used / len(frames))
            )
        else:
            print("  per row served (%3d rows)                                    %8.2f us/row" % (rows, us / rows))


def _pump_all(ch, frames):
    for f in frames:
        ch.feed(f, 0, len(f), 0)
        while ch.next_event(0):
            pass


bench_profile()
