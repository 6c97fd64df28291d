# One client session through a whole Channel of a demo-like meter, the same
# under CPython and MicroPython (portable): the fuzz target of the channel
# (tools/fuzz.py channel) and the differential replay (every answer the
# MicroPython core gives equals CPython's byte for byte) both run it.
#
# Input (bytes):
#   [0]  link: 0 HDLC, 1 wrapper, 2 IEC 62056-21 mode E sign-on then HDLC
#   [1]  milliseconds / 10 between chunks (the time the line is quiet)
#   then chunks, each [n] and n bytes: what the client writes at once
# Output: a list of (what, bytes): b"T" a transmission of the channel or
# the sign-on, b"C" the channel closed the stream (wrapper), b"B" a baud
# rate change of the sign-on.
#
# The meter: a compiled definition (tools/fuzz.py prepare writes the demo's
# into build/fuzz/pkg/fuzz_demo_meter.py) with RAM storage, a fixed wall
# clock and fixed HLS challenges, and the demo's keys and secrets, so that a
# captured session replays exactly.

from dlms_micro import server
from dlms_micro.link import hdlc as _hdlc
from dlms_micro.link import iec21 as _iec21
from dlms_micro.link import wrapper as _wrapper
from dlms_micro.meterdef import build as _build
from dlms_micro.security import keys as _ks

WALL = 1782900000  # 2026-07-01 10:00:00 UTC
# the demo meter's demo-only keys (Green Book examples; KEK made up)
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
KEK = bytes.fromhex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")
TOKEN_KEY = bytes.fromhex("544F4B454E2D44454D4F2D4F4E4C5921")
# every HLS challenge the meter makes (StoC): fixed, so captures replay
STOC = bytes.fromhex("5A3C9E61B27D04F8C1163A7E9B2D5F08" "42E7A19C6D30B5F2187E4AC9D3065B1F")
POLICY_BITS = (0, 0x24, 0x48, 0x6C)

HDLC = 0
WRAPPER = 1
IEC21 = 2
MAX_APDU = 1024


class RamStorage:
    # get/put/delete like the ports' storages, counting puts by key
    def __init__(self):
        self.d = {}
        self.puts = []

    def get(self, key):
        return self.d.get(key)

    def put(self, key, value):
        self.d[key] = bytes(value)
        self.puts.append(key)

    def delete(self, key):
        if key in self.d:
            del self.d[key]


def _challenge(n):
    return STOC[:n]


def make_meter(defn, storage=None):
    # the meter of defn with RAM storage, the demo keys, fixed challenges
    if storage is None:
        storage = RamStorage()
    env = _build.Env(storage, token_key=TOKEN_KEY)
    m = _build.build(defn, lambda: WALL, storage, 0, env)
    m.keys = make_keys(defn, storage)
    m.random_bytes = _challenge
    return m, storage


def make_keys(defn, storage):
    # a key store with the demo keys and no counter seen yet
    strongest = 0
    for r in defn.ROLES:
        if r[5] > strongest:
            strongest = r[5]
    for k in ("sec.keys", "sec.tx", "sec.rx"):
        storage.delete(k)
    return _ks.KeyStore(storage, defn.SYSTEM_TITLE, ek=EK, ak=AK, kek=KEK, policy=POLICY_BITS[strongest or 3])


def make_link(defn, kind):
    if kind == WRAPPER:
        return _wrapper.WrapperServer(wports=(defn.LOGICAL_DEVICE,), max_apdu=MAX_APDU)
    max_info, window, inactivity_s, inter_octet_ms, _baud = defn.HDLC
    return _hdlc.HdlcServer(logical=defn.LOGICAL_DEVICE, physical=defn.PHYSICAL_ADDRESS, max_info_tx=max_info,
                            max_info_rx=max_info, window_tx=window, window_rx=window, max_apdu=MAX_APDU,
                            inactivity_timeout=inactivity_s * 1000, inter_octet_timeout=2000)


class Session:
    # A line or connection: the sign-on (IEC21), the channel, the time.
    def __init__(self, meter, defn, kind):
        self.kind = kind
        self.ch = server.Channel(meter, make_link(defn, kind))
        self.so = _iec21.SignOn(b"DMI", b"DLMSMICRO", b"5") if kind == IEC21 else None
        self.out = []
        self.closed = False
        self.now = 0
        self._up = False

    def _drain(self):
        now = self.now
        so = self.so
        if so is not None:
            while True:
                ev = so.next_event(now)
                if ev == _iec21.EV_NONE:
                    break
                if ev == _iec21.EV_SEND:
                    self.out.append((b"T", bytes(so.tx_buf[so.tx_start : so.tx_end])))
                else:
                    self.out.append((b"B", bytes((so.baud // 100 & 0xFF, so.data_bits))))
                    if ev == _iec21.EV_RESET:
                        self._up = False
                        self.ch.link.disconnect()
                        self.ch.close()
            if not so.hdlc:
                return
        ch = self.ch
        while True:
            ev = ch.next_event(now)
            if ev == server.EV_NONE:
                break
            if ev == server.EV_SEND:
                self.out.append((b"T", bytes(ch.tx_buf[ch.tx_start : ch.tx_end])))
            elif ev == server.EV_CLOSE:
                self.out.append((b"C", b""))
                self.closed = True
                break
        if so is not None:
            # the HDLC link's end hands the line back to the sign-on
            if ch.link.state != _hdlc.NDM:
                self._up = True
            elif self._up:
                self._up = False
                so.link_closed(now)
                self._drain()

    def write(self, data, start, end):
        # the client wrote data[start:end] at once
        so = self.so
        while start < end and not self.closed:
            if so is not None and not so.hdlc:
                start += so.feed(data, start, end, self.now)
                self._drain()
                if so is not None and not so.hdlc:
                    break
                continue
            if so is not None:
                so.touch(self.now)
            n = self.ch.feed(data, start, end, self.now)
            self._drain()
            if n <= 0:
                break  # the link takes no more now: the rest is lost
            start += n

    def wait(self, ms):
        self.now = (self.now + ms) & 0x3FFFFFFF
        self._drain()

    def close(self):
        self.ch.close()


def run(meter, defn, data):
    # The session `data` describes (see the top); returns the output list.
    if len(data) < 2:
        return []
    s = Session(meter, defn, data[0] % 3)
    dt = data[1] * 10
    p = 2
    n = len(data)
    while p < n and not s.closed:
        k = data[p]
        p += 1
        e = p + k
        if e > n:
            e = n
        s.write(data, p, e)
        p = e
        s.wait(dt)
    s.close()
    return s.out


def encode(kind, dt_ms, chunks):
    # The input of a session: chunks (bytes each), split to 255 bytes
    out = bytearray((kind, dt_ms // 10))
    for c in chunks:
        for i in range(0, len(c), 255):
            part = c[i : i + 255]
            out.append(len(part))
            out.extend(part)
    return bytes(out)
