"""CPU cost of one GET served in process, on CPython (issue 16's figure).

    .venv/bin/python tools/bench_get.py [--repeat N] [-n N]

A Channel of the demo meter (47 objects) is fed the same prebuilt request
frame again and again, as a socket would feed it, and every reply is taken
out: a plain GET of the energy register (1.0.1.8.0.255, reader association,
LLS) over the TCP wrapper and over HDLC, and a ciphered GET (suite 0,
glo-get-request, SC 0x30) of the same register on a one-register meter with
keys over HDLC, and the same as general-glo-ciphering over the TCP wrapper
(the request shape of tools/bench_fleet.py --cpu-only), each with a fresh
invocation counter (AES from the `cryptography` package, as the CPython
port uses it); and the two wrapper GETs again through Channel.exchange
(one call for a whole message, as the fleet and `serve` take one). Prints
the best of
--repeat runs of a timed loop, in microseconds per GET (best-of filters the
noise of a shared machine; the median is printed beside it). CPU time of
this process (time.process_time), not wall time.
"""

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (REPO, os.path.join(REPO, "ports", "cpython")):
    if p not in sys.path:
        sys.path.insert(0, p)

from benchkit import CipheringClient, ciphered_meter, client_frame, client_iframe  # noqa: E402
from dlms_micro import crc16  # noqa: E402
from dlms_micro.link import hdlc  # noqa: E402
from dlms_micro.server import Channel  # noqa: E402

GET_ENERGY = bytes.fromhex("c001c100030100010800ff0200")
AARQ_LLS = bytes.fromhex(
    "6036A109060760857405080101" "8A020780" "8B0760857405080201" "AC0A80083132333435363738"
    "BE10040E01000000065F1F0400007E1F0200")


def snrm():
    # client 0x20 (address byte 0x41), as the reader association wants
    return client_frame(crc16, 0x93, None, 0x41)


def iframe(k, apdu):
    return client_iframe(crc16, k, apdu, 0x41)


def wrapped(apdu):
    return bytes([0, 1, 0, 0x20, 0, 1, len(apdu) >> 8, len(apdu) & 0xFF]) + apdu


def pump(ch, f):
    ch.feed(f, 0, len(f), 0)
    while ch.next_event(0):
        pass


def timed(fn, n, repeat, ch, at, tag):
    # (best, median) us per call over `repeat` loops of n calls, after one
    # call whose reply must open with `tag` at tx_buf[tx_start + at]
    fn()
    if ch.tx_buf[ch.tx_start + at] != tag:
        raise RuntimeError("no response 0x%02X" % tag)
    runs = []
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        runs.append((time.process_time() - t0) * 1e6 / n)
    runs.sort()
    return runs[0], runs[len(runs) // 2]


def bench_plain(kind, n, repeat, exchange=False):
    # the demo meter's reader association on a "wrapper" or "hdlc" Channel
    from dlms_micro_cpython.demo import DemoMeter

    ch = DemoMeter(wall_clock=lambda: 1767225600, seed=1).make_channel(kind)
    if kind == "hdlc":
        pump(ch, snrm())
        pump(ch, iframe(0, AARQ_LLS))
        frames = [iframe(k, GET_ENERGY) for k in range(8)]
        at = 12  # flag, format, addresses, control, HCS, LLC
    else:
        pump(ch, wrapped(AARQ_LLS))
        frames = [wrapped(GET_ENERGY)] * 8
        at = 8  # the wrapper header
    if ch.assoc.status != 2:
        raise RuntimeError("LLS association not open")
    return timed(_getter(ch, frames, 1, 7, exchange), n, repeat, ch, at, 0xC4)


def _getter(ch, frames, first, mask, exchange=False):
    # a GET: the next frame (frames[k & mask]) in, the reply out (exchange:
    # through Channel.exchange, as the fleet and `serve` take a whole
    # wrapper message)
    state = [first]

    def get():
        f = frames[state[0] & mask]
        state[0] += 1
        ch.feed(f, 0, len(f), 0)
        while ch.next_event(0):
            pass

    def exchanged():
        f = frames[state[0] & mask]
        state[0] += 1
        if ch.exchange(f, len(f), 0) != 1:
            raise RuntimeError("Channel.exchange did not answer the GET")

    return exchanged if exchange else get


def bench_ciphered(n, repeat, kind="hdlc", exchange=False):
    # kind "hdlc": glo-get-request over HDLC; "wrapper": general-glo-
    # ciphering over the TCP wrapper (the fleet benchmark's request shape)
    import dlms_micro_cpython.crypto  # noqa: F401  (the CPython port's AES backend, as the simulator has it)
    from dlms_micro_cpython.simulator import MemoryStorage

    meter = ciphered_meter(MemoryStorage(), 32)
    if kind == "hdlc":
        ch = Channel(meter, hdlc.HdlcServer(max_apdu=512))
    else:
        from dlms_micro.link import wrapper

        ch = Channel(meter, wrapper.WrapperServer(wports=(1,), max_apdu=512))
    client = CipheringClient()
    protect = client.protect
    aarq = client.aarq()
    if kind == "hdlc":
        pump(ch, snrm())
        pump(ch, iframe(0, aarq))
        frames = [iframe(k + 1, protect(GET_ENERGY, k + 2)) for k in range(n * repeat + 1)]
        at, tag = 12, 0xCC  # glo-get-response
    else:
        pump(ch, wrapped(aarq))
        frames = [wrapped(protect(GET_ENERGY, k + 2, True)) for k in range(n * repeat + 1)]
        at, tag = 8, 0xDB  # general-glo-ciphering
    if ch.assoc.status != 2:
        raise RuntimeError("ciphered association not open")
    return timed(_getter(ch, frames, 0, -1, exchange), n, repeat, ch, at, tag)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=15, help="timed loops per figure (default 15)")
    ap.add_argument("-n", type=int, default=400, help="GETs per timed loop (default 400)")
    args = ap.parse_args(argv)
    print("GET served in process on %s %s (best / median of %d loops of %d)"
          % (sys.implementation.name, sys.version.split()[0], args.repeat, args.n))
    for label, fn, n in (
        ("plain GET, wrapper, demo meter", lambda n, r: bench_plain("wrapper", n, r), args.n),
        ("plain GET, HDLC, demo meter", lambda n, r: bench_plain("hdlc", n, r), args.n),
        ("ciphered GET (suite 0, cryptography), HDLC", bench_ciphered, max(1, args.n // 4)),
        ("ciphered GET (general-glo), wrapper", lambda n, r: bench_ciphered(n, r, "wrapper"), max(1, args.n // 4)),
        ("plain GET, wrapper, Channel.exchange", lambda n, r: bench_plain("wrapper", n, r, True), args.n),
        ("ciphered GET (general-glo), Channel.exchange", lambda n, r: bench_ciphered(n, r, "wrapper", True),
         max(1, args.n // 4)),
    ):
        best, median = fn(n, args.repeat)
        print("  %-44s %7.1f us  (median %.1f)" % (label, best, median))
    return 0


if __name__ == "__main__":
    sys.exit(main())
