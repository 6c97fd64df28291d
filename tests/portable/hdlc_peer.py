# A minimal HDLC *client* for the tests: builds the frames a head-end sends
# and checks the frames the meter answers with. Written from IEC 62056-46,
# independently of dlms_micro.link.hdlc; only the CRC is shared, and that is
# pinned by its own check value and by public example frames.

from dlms_micro import crc16
from dlms_micro.link import hdlc

CLIENT = 0x10  # public client
LLC_REQ = b"\xe6\xe6\x00"
LLC_RSP = b"\xe6\xe7\x00"


def server_addr(upper, lower, size):
    # HDLC address bytes: 7 bits per byte, low bit set on the last byte.
    if size == 1:
        return bytes([(upper << 1) | 1])
    if size == 2:
        return bytes([upper << 1, (lower << 1) | 1])
    return bytes(
        [(upper >> 7) << 1, (upper & 0x7F) << 1, (lower >> 7) << 1, ((lower & 0x7F) << 1) | 1]
    )


def frame(ctrl, info=b"", upper=1, lower=0x11, size=2, client=CLIENT, seg=False, length_delta=0):
    dest = server_addr(upper, lower, size)
    hdr = bytearray(2) + dest + bytes([(client << 1) | 1, ctrl])
    body = bytearray(hdr)
    if info:
        body += b"\x00\x00" + info
    length = len(body) + 2 + length_delta
    body[0] = 0xA0 | (0x08 if seg else 0) | (length >> 8)
    body[1] = length & 0xFF
    if info:
        c = crc16.fcs(body, 0, len(hdr))
        body[len(hdr)] = c & 0xFF
        body[len(hdr) + 1] = c >> 8
    c = crc16.fcs(body, 0, len(body))
    return b"\x7e" + bytes(body) + bytes([c & 0xFF, c >> 8]) + b"\x7e"


def snrm(info=b"", **kw):
    return frame(0x93, info, **kw)


def snrm_params(tx=None, rx=None, wtx=None, wrx=None):
    p = b""
    for pid, v, n in ((5, tx, 2), (6, rx, 2), (7, wtx, 4), (8, wrx, 4)):
        if v is not None:
            p += bytes([pid, n]) + v.to_bytes(n, "big")
    return b"\x81\x80" + bytes([len(p)]) + p


def disc(**kw):
    return frame(0x53, **kw)


def rr(nr, **kw):
    return frame((nr << 5) | 0x11, **kw)


def iframe(ns, nr, info, pf=True, **kw):
    return frame((nr << 5) | (0x10 if pf else 0) | (ns << 1), info, **kw)


class Frame:
    # A parsed frame; raises AssertionError when it is malformed.
    def __init__(self, data):
        data = bytes(data)
        assert data[0] == 0x7E and data[-1] == 0x7E, "flags"
        body = data[1:-1]
        assert body[0] & 0xF0 == 0xA0, "frame type 3"
        self.seg = bool(body[0] & 0x08)
        self.length = ((body[0] & 7) << 8) | body[1]
        assert self.length == len(body), "length field"
        assert crc16.check(body, 0, len(body)), "FCS"
        i = 2
        j = i
        while not body[j] & 1:
            j += 1
        dest = body[i : j + 1]
        i = j + 1
        while not body[j] & 1 or j < i:
            j += 1
        self.src = body[i : j + 1]
        i = j + 1
        # frames from the meter go to a one-byte client address
        self.dest = dest[0] if len(dest) == 1 else dest
        self.ctrl = body[i]
        i += 1
        if i + 2 < len(body):
            assert crc16.check(body, 0, i + 2), "HCS"
            self.info = body[i + 2 : -2]
        else:
            self.info = b""
        self.pf = bool(self.ctrl & 0x10)
        self.nr = self.ctrl >> 5
        self.ns = (self.ctrl >> 1) & 7

    def is_i(self):
        return self.ctrl & 1 == 0

    def kind(self):
        c = self.ctrl
        if c & 1 == 0:
            return "I"
        if c & 3 == 1:
            return {1: "RR", 5: "RNR"}.get(c & 0x0F, "S?")
        return {0x83: "SNRM", 0x43: "DISC", 0x63: "UA", 0x0F: "DM", 0x87: "FRMR", 0x03: "UI"}.get(c & 0xEF, "U?")


class Driver:
    # Plays the port: feeds bytes, collects frames and events, and answers
    # each APDU with the reply the test gives (a function of the request).
    def __init__(self, link, reply=None):
        self.link = link
        self.reply = reply
        self.sent = []
        self.events = []
        self.apdus = []
        self.now = 0

    def send(self, data, chunk=0):
        link = self.link
        out = []
        pos = 0
        step = chunk or len(data)
        while pos < len(data):
            piece = data[pos : pos + step]
            k = 0
            while k < len(piece):
                k += link.feed(piece, k, len(piece), self.now)
                self._pump(out)
            pos += step
        self._pump(out)
        return out

    def tick(self, ms):
        self.now = (self.now + ms) & 0x3FFFFFFF
        out = []
        self._pump(out)
        return out

    def _pump(self, out):
        link = self.link
        while True:
            ev = link.next_event(self.now)
            if ev == hdlc.EV_NONE:
                return
            if ev == hdlc.EV_SEND:
                f = bytes(link.tx_buf[link.tx_start : link.tx_end])
                out.append(f)
                self.sent.append(f)
            elif ev == hdlc.EV_APDU:
                req = bytes(link.apdu_buf[link.apdu_start : link.apdu_end])
                self.apdus.append(req)
                rsp = self.reply(req) if self.reply else None
                if rsp is None:
                    link.send_apdu(-1)
                else:
                    s = link.TX_APDU_START
                    link.tx_apdu[s : s + len(rsp)] = rsp
                    link.send_apdu(s + len(rsp))
            else:
                self.events.append(ev)
