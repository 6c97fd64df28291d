# Seed corpora for tools/fuzz.py from real client sessions: gurux-dlms and
# dlms-cosem (test peers, tests/interop/interop_peers.py) read, write and
# act on the fuzz demo meter (tests/fuzz/fuzz_session.py: fixed challenges,
# RAM storage) served here over TCP (wrapper and HDLC); every byte each
# client writes is recorded, and each target gets the pieces it parses:
#
#   python tools/fuzz_capture.py [OUT]      # default build/fuzz/seeds/<target>/
#
# then `python tools/fuzz.py merge TARGET build/fuzz/seeds/TARGET` keeps a
# minimized set in tests/fuzz/corpus/TARGET.

import hashlib
import importlib.util
import os
import socket
import sys
import threading
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# run as a script, tools/ is sys.path[0]: there `import micropython` would
# find tools/micropython/ and the core would take CPython for MicroPython
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]
sys.path.insert(0, os.path.join(REPO, "tests", "interop"))
# tools/fuzz.py (paths, prepare) by path
_spec = importlib.util.spec_from_file_location("fuzz", os.path.join(REPO, "tools", "fuzz.py"))
F = importlib.util.module_from_spec(_spec)
sys.modules["fuzz"] = F
_spec.loader.exec_module(F)

F.prepare()

import fuzz_demo_meter  # noqa: E402
import fuzz_session as FS  # noqa: E402

SESSIONS = []  # (kind, [client chunks], [server transmissions])


class Server:
    # One meter, a TCP listener per link kind; each connection a Session
    # whose client chunks and answers are recorded.
    def __init__(self):
        self.meter, _ = FS.make_meter(fuzz_demo_meter)
        self.lock = threading.Lock()
        self.socks = {}
        for kind in (FS.WRAPPER, FS.HDLC):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(8)
            self.socks[kind] = s
            threading.Thread(target=self._accept, args=(kind, s), daemon=True).start()
        self.wrapper_address = self.socks[FS.WRAPPER].getsockname()
        self.hdlc_address = self.socks[FS.HDLC].getsockname()

    def _accept(self, kind, ls):
        while True:
            c, _ = ls.accept()
            threading.Thread(target=self._serve, args=(kind, c), daemon=True).start()

    def _serve(self, kind, c):
        chunks = []
        with self.lock:
            sess = FS.Session(self.meter, fuzz_demo_meter, kind)
        sent = 0
        try:
            while not sess.closed:
                data = c.recv(4096)
                if not data:
                    break
                chunks.append(data)
                with self.lock:
                    sess.write(data, 0, len(data))
                    sess.wait(10)
                    out = sess.out[sent:]
                    sent = len(sess.out)
                for what, b in out:
                    if what == b"T":
                        c.sendall(b)
        except OSError:
            pass
        finally:
            with self.lock:
                sess.close()
            c.close()
            SESSIONS.append((kind, chunks, [b for w, b in sess.out if w == b"T"]))


def run_peers(meter):
    import logging

    import interop_peers as P
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    from gurux_dlms.objects import GXDLMSClock, GXDLMSData, GXDLMSProfileGeneric, GXDLMSRegister

    P.hes_counters(meter)
    for transport in (P.WRAPPER, P.HDLC_TCP):
        # public: clock, a register; reader (LLS): object list, profile by
        # range and entry, a list; management (HLS-GMAC, suite 0): reads, a
        # SET of the clock, an ACTION
        for sap in (16, 32, 1):
            p = P.GuruxPeer(meter, transport, sap=sap)
            try:
                p.connect()
                clk = GXDLMSClock("0.0.1.0.0.255")
                p.read(clk, 2)
                reg = GXDLMSRegister("1.0.1.8.0.255")
                if sap != 16:
                    p.read(reg, 3)
                    p.read(reg, 2)
                if sap == 32:
                    p.read_object_list()
                    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
                    p.read(pg, 3)
                    p.read_rows(pg, p.client.readRowsByEntry(pg, 1, 5))
                    import datetime

                    now = datetime.datetime(2026, 7, 1, 10, 0)
                    p.read_rows(pg, p.client.readRowsByRange(pg, now - datetime.timedelta(hours=2), now))
                    p.read_list([(reg, 2), (clk, 2)])
                if sap == 1:
                    p.read(GXDLMSData("0.0.43.1.0.255"), 2)
                    p.read(clk, 2)
                    p.write(clk, 2)
                    from gurux_dlms.enums import DataType

                    p.method(p.client.method(reg, 1, 0, DataType.INT8))
                p.release()
                p.disconnect()
            except Exception:  # noqa: BLE001 (a refusal still makes a seed)
                traceback.print_exc()
            finally:
                p.close()
        for sap in (16, 32, 1):
            p = P.CosemPeer(meter, transport, sap=sap)
            try:
                p.connect()
                p.associate()
                p.get(8, "0.0.1.0.0.255", 2)
                if sap != 16:
                    p.get(3, "1.0.1.8.0.255", 2)
                    p.get_rows("1.0.99.1.0.255")
                    p.get_many([(3, "1.0.1.8.0.255", 2), (8, "0.0.1.0.0.255", 2)])
                if sap == 1:
                    p.set(1, "0.0.96.1.0.255", 2, b"\x09\x04ABCD")
                    p.action(3, "1.0.1.8.0.255", 1, b"\x0f\x00")
                p.release()
            except Exception:  # noqa: BLE001
                traceback.print_exc()
            finally:
                p.close()


def split_hdlc(stream):
    # the frames of an HDLC byte stream (flag to flag)
    out = []
    p = 0
    while True:
        s = stream.find(b"\x7e", p)
        if s < 0 or s + 3 > len(stream):
            return out
        n = ((stream[s + 1] & 7) << 8) | stream[s + 2]
        out.append(bytes(stream[s : s + n + 2]))
        p = s + n + 2


def split_wrapper(stream):
    out = []
    p = 0
    while p + 8 <= len(stream):
        n = (stream[p + 6] << 8) | stream[p + 7]
        out.append(bytes(stream[p : p + 8 + n]))
        p += 8 + n
    return out


def apdus(kind, stream):
    if kind == FS.WRAPPER:
        return [m[8:] for m in split_wrapper(stream)]
    out = []
    for f in split_hdlc(stream):
        # info after the header (format 2, dest, src, control, HCS)
        n = len(f)
        if n < 12:
            continue
        i = 3
        while i < n and not f[i] & 1:
            i += 1
        i += 1
        while i < n and not f[i] & 1:
            i += 1
        i += 1  # source address (1 byte)
        info = f[i + 3 : n - 3]
        if info[:3] in (b"\xe6\xe6\x00", b"\xe6\xe7\x00"):
            info = info[3:]
        if info:
            out.append(bytes(info))
    return out


def main(argv):
    out = argv[0] if argv else os.path.join(F.BUILD, "seeds")
    srv = Server()
    run_peers(srv)
    import time

    time.sleep(0.5)
    seeds = {t: set() for t in F.TARGETS}
    signon = b"/?!\r\n"
    ack = b"\x06252\r\n"
    for kind, chunks, answers in SESSIONS:
        stream = b"".join(chunks)
        seeds["channel"].add(FS.encode(kind, 10, chunks))
        if kind == FS.HDLC:
            seeds["channel"].add(FS.encode(FS.IEC21, 250, [signon, ack] + chunks))
            seeds["hdlc"].add(b"\x10" + stream)
            seeds["iec21"].add(b"\x04" + signon + b"\x04" + ack + b"\x0f" + stream[:16])
        else:
            seeds["wrapper"].add(b"\x1f" + stream)
        seeds["decode"].add(bytes((1 if kind == FS.HDLC else 2,)) + stream)
        seeds["decode"].add(b"\x05" + stream)
        for a in apdus(kind, stream) + apdus(kind, b"".join(answers)):
            if a[:1] in (b"\x60", b"\x62"):
                seeds["acse"].add(a)
            if a[:1] in (b"\xc0", b"\xc1", b"\xc3"):
                seeds["xdlms"].add(a)
            if a[:1] in (b"\xc8", b"\xc9", b"\xcb", b"\xdb"):
                seeds["ciphered"].add(b"\x00" + a)
                seeds["ciphered"].add(b"\x01" + a)
            if a[:1] == b"\xe0":
                seeds["gbt"].add(bytes((len(a),)) + a)
            if a[:1] == b"\xc4" and len(a) > 4:
                seeds["axdr"].add(a[4:])
    # general-block-transfer: a GET carried in one block, two blocks, an ack
    get = bytes.fromhex("C001C1000301000108 00FF0200".replace(" ", ""))
    for g in (b"\xe0\xc0\x00\x01\x00\x00" + bytes((len(get),)) + get,
              b"\xe0\x40\x00\x01\x00\x00\x05" + get[:5] + b"\xe0\xc0\x00\x02\x00\x00\x08" + get[5:],
              b"\xe0\x81\x00\x00\x00\x01\x00"):
        seeds["gbt"].add(bytes((len(g),)) + g)
        seeds["xdlms"].add(g)
    with open(os.path.join(REPO, "meters", "demo.json"), "rb") as f:
        seeds["meterdef"].add(f.read())
    fx = os.path.join(REPO, "tests", "fixtures", "gurux")
    for n in sorted(os.listdir(fx)) if os.path.isdir(fx) else ():
        if n.endswith(".xml"):
            with open(os.path.join(fx, n), "rb") as f:
                seeds["gurux_xml"].add(f.read())
    seeds["sources"].add(b"\x00" + b"\x0e/ABC5\\2METER\r\n" + b"\x20\x02F.F(00)\r\n1.8.0(012345.678*kWh)\r\n!\r\n\x03\x00")
    seeds["sources"].add(b"\x01\x09\x05\x03\x08\x00\x00\x01\x00\x00\x00")
    seeds["sources"].add(b"\x02" + bytes(range(0, 256, 7)))
    for t, items in seeds.items():
        d = os.path.join(out, t)
        os.makedirs(d, exist_ok=True)
        for x in items:
            with open(os.path.join(d, hashlib.sha1(x).hexdigest()), "wb") as f:
                f.write(x)
        print("%-10s %4d seeds" % (t, len(items)))
    print("%d sessions captured" % len(SESSIONS))


if __name__ == "__main__":
    main(sys.argv[1:])
