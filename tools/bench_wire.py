# What reading a load profile costs on the wire (CPython only; needs the dev
# dependencies gurux-dlms and dlms-cosem):
#
#   .venv/bin/python tools/bench_wire.py
#
# Two demo meters (ports/cpython, served by ThreadedService on loopback) with
# their clock held still: one holding exactly 96 load-profile rows (one day),
# one holding 192 (two days). Real clients read 96 rows from them: the first
# one's buffer whole, the second one's by a range_descriptor on the clock
# (the last 24 hours). Every byte goes through a counting TCP proxy between
# the client and the meter, so the figures are what crossed the transport:
# bytes each way, HDLC frames each way (I-frames and RR/others alike) or
# wrapper messages, and the GET responses (blocks) among them. Only the read
# is counted: the association, the capture objects and the release are not.
#
# Configuration: HDLC max information field 128 bytes both ways, window 1
# (the meter's IEC HDLC setup defaults; neither client negotiates other
# values), client max receive PDU 512 and 1024 (the meter's is 1024),
# client SAP 32 (LLS, plain APDUs) and SAP 1 (HLS-GMAC, every APDU
# authenticated and encrypted with suite 0) for gurux at PDU 1024.

import contextlib
import datetime
import io
import os
import socket
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))  # the client drivers

from interop_peers import HDLC_TCP, WRAPPER, CosemPeer, GuruxPeer, connected, cosem_range, hdlc_frames  # noqa: E402

LOAD_PROFILE = "1.0.99.1.0.255"
# The meters' (still) clock: 2026-11-30 00:22:30 UTC, half-way through a
# quarter hour, so that re-simulating its last second never crosses one.
T0 = 1795997700 + 450
ROWS = 96
# the range read: the last 24 hours (96 of the 192 rows)
LAST_DAY = (
    datetime.datetime.fromtimestamp(T0 - 86400, datetime.timezone.utc),
    datetime.datetime.fromtimestamp(T0, datetime.timezone.utc),
)


class CountingProxy:
    # A TCP proxy to target that appends every byte it forwards to .up
    # (client to meter) or .down (meter to client) before forwarding it.
    def __init__(self, target):
        self.target = target
        self.up = bytearray()
        self.down = bytearray()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.address = self.listener.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            meter = socket.create_connection(self.target)
            for s in (client, meter):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pump, args=(client, meter, self.up), daemon=True).start()
            threading.Thread(target=self._pump, args=(meter, client, self.down), daemon=True).start()

    @staticmethod
    def _pump(src, dst, log):
        while True:
            try:
                b = src.recv(65536)
            except OSError:
                b = b""
            if not b:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            log += b
            dst.sendall(b)

    def mark(self):
        return len(self.up), len(self.down)

    def close(self):
        self.listener.close()


class Meter:
    # A demo meter of `days` of history with a still clock, and a counting
    # proxy in front of each of its TCP ports; what the client drivers take
    # as a meter (wrapper_address, hdlc_address).
    def __init__(self, days):
        from dlms_micro_cpython.demo import DemoMeter
        from dlms_micro_cpython.service import ThreadedService
        from dlms_micro_cpython.storage import FileStorage

        self.dir = tempfile.TemporaryDirectory()
        demo = DemoMeter(storage=FileStorage(self.dir.name), wall_clock=lambda: T0, seed=1, history=days)
        self.rows = demo.profile_buffer(bytes((1, 0, 99, 1, 0, 255))).count
        self.svc = ThreadedService(demo, host="127.0.0.1", wrapper_port=0, hdlc_port=0).start()
        self.proxy = {WRAPPER: CountingProxy(self.svc.wrapper_address), HDLC_TCP: CountingProxy(self.svc.hdlc_address)}
        self.wrapper_address = self.proxy[WRAPPER].address
        self.hdlc_address = self.proxy[HDLC_TCP].address

    def stop(self):
        for p in self.proxy.values():
            p.close()
        self.svc.stop()
        self.dir.cleanup()


def wrapper_messages(stream):
    # the APDUs of the wrapper messages in a byte stream
    out = []
    i = 0
    while i + 8 <= len(stream):
        n = int.from_bytes(stream[i + 6 : i + 8], "big")
        out.append(bytes(stream[i + 8 : i + 8 + n]))
        i += 8 + n
    return out


def counted(meter, transport, read):
    # read() through the meter's proxy: (rows read, figures of the read)
    proxy = meter.proxy[transport]
    u0, d0 = proxy.mark()
    rows = read()
    up, down = bytes(proxy.up[u0:]), bytes(proxy.down[d0:])
    if transport == WRAPPER:
        n_up, n_down = len(wrapper_messages(up)), len(wrapper_messages(down))
        blocks = n_down
    else:
        f_up, f_down = hdlc_frames(up), hdlc_frames(down)
        n_up, n_down = len(f_up), len(f_down)
        # a GET response: an I-frame (control bit 0 clear) that is not a
        # segment continuing an APDU (the frame before it had no segmentation bit)
        blocks = 0
        more = False
        for fmt, ctrl in f_down:
            if not ctrl & 1:
                if not more:
                    blocks += 1
                more = bool(fmt & 0x08)
    return rows, (len(up), len(down), n_up, n_down, blocks)


def session(meter, transport, peer, prepare):
    # Associate peer, let prepare(peer) return the read (a function), count
    # it, release: (rows read, figures of the read)
    try:
        connected(peer)
        rows, fig = counted(meter, transport, prepare(peer))
        peer.release()
        peer.disconnect()
    finally:
        peer.close()
    return len(rows), fig


def gurux_read(meter, transport, sap, pdu, by_range):
    from gurux_dlms.objects import GXDLMSProfileGeneric

    def prepare(p):
        pg = GXDLMSProfileGeneric(LOAD_PROFILE)
        p.read(pg, 3)  # gurux decodes the buffer with the capture objects
        packets = p.client.readRowsByRange(pg, *LAST_DAY) if by_range else p.client.read(pg, 2)
        return lambda: p.read_rows(pg, packets)

    # (gurux prints "Encryption is applied." and the like on stdout)
    with contextlib.redirect_stdout(io.StringIO()):
        return session(meter, transport, GuruxPeer(meter, transport, sap=sap, max_pdu=pdu), prepare)


def cosem_read(meter, transport, sap, pdu, by_range):
    access = cosem_range(*LAST_DAY) if by_range else None
    peer = CosemPeer(meter, transport, sap=sap, max_pdu=pdu)
    return session(meter, transport, peer, lambda p: lambda: p.get_rows(LOAD_PROFILE, access))


def main():
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    one, two = Meter(1), Meter(2)
    try:
        assert (one.rows, two.rows) == (ROWS, 2 * ROWS), (one.rows, two.rows)
        print("Load profile on the wire: %d rows (4 columns, 28 B a row as A-XDR), HDLC max info 128/128 window 1" % ROWS)
        print("%-10s %-8s %-5s %-4s %-6s %7s %7s %9s %9s %7s %7s" % (
            "client", "link", "SAP", "PDU", "read", "B up", "B down", "frames up", "frames dn", "blocks", "B/row"))
        cases = []
        for name, fn in (("gurux", gurux_read), ("dlms-cosem", cosem_read)):
            for transport in (WRAPPER, HDLC_TCP):
                for pdu in (512, 1024):
                    cases.append((name, fn, transport, 32, pdu))
        cases += [("gurux", gurux_read, t, 1, 1024) for t in (WRAPPER, HDLC_TCP)]
        for name, fn, transport, sap, pdu in cases:
            for by_range in (False, True):
                meter = two if by_range else one
                n, (b_up, b_down, f_up, f_down, blocks) = fn(meter, transport, sap, pdu, by_range)
                assert n == ROWS, (name, transport, pdu, by_range, n)
                print("%-10s %-8s %-5s %4d %-6s %7d %7d %9d %9d %7d %7.1f" % (
                    name, "wrapper" if transport == WRAPPER else "HDLC", sap, pdu, "range" if by_range else "whole",
                    b_up, b_down, f_up, f_down, blocks, (b_up + b_down) / ROWS))
        print("frames: HDLC frames (I, RR) or wrapper messages; blocks: GET responses (normal or datablock)")
    finally:
        one.stop()
        two.stop()


if __name__ == "__main__":
    main()
