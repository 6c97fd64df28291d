# Every logical device of a gateway over the TCP wrapper and over HDLC over
# TCP (ports/micropython/dlms_micro_mp/gateway_tcp.py): a connection makes
# the Channel of the logical device its first message names (the wrapper
# header's destination wPort, the first HDLC frame's upper address), and
# only that one;
# a Channel that cannot be made drops the connection's bytes with one log
# line. Runs under pytest and real MicroPython.

import sys

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

from dlms_micro_mp import gateway_tcp  # noqa: E402
from hdlc_peer import snrm  # noqa: E402


class _Link:
    def __init__(self, ld):
        self.wports = (ld,)
        self.state = 1


class _Assoc:
    status = 1


class _Chan:
    # a Channel's interface: what it was fed, one reply per message
    def __init__(self, ld):
        self.link = _Link(ld)
        self.assoc = _Assoc()
        self.meter = None
        self.got = bytearray()
        self.tx_buf = bytearray(b"reply%d" % ld)
        self.tx_start = 0
        self.tx_end = 0
        self.pending = False
        self.closed = False
        self.log = None

    def feed(self, data, start, end, now):
        self.got += data[start:end]
        if len(self.got) >= 8 and len(self.got) == 8 + ((self.got[6] << 8) | self.got[7]):
            self.pending = True
        return end - start

    def next_event(self, now):
        if self.pending:
            self.pending = False
            self.tx_end = len(self.tx_buf)
            return 1
        return 0

    def set_log(self, fn):
        self.log = fn

    def close(self):
        self.closed = True


def _msg(dst, body):
    return bytes((0, 1, 0, 16, 0, dst, 0, len(body))) + body


class _Meter:
    def __init__(self, ld):
        self.logical_device = ld


def _conn(made, lines, fail=(), min_free=0, hdlc=False):
    def make(meter):
        ld = meter.logical_device
        if ld in fail:
            raise MemoryError
        c = _Chan(ld)
        c.meter = meter
        made.append(c)
        return c

    return gateway_tcp.BoundChannel((_Meter(1), _Meter(2), _Meter(3)), make, lines.append, min_free, hdlc)


def test_the_first_message_binds_the_connection_to_its_logical_device():
    made, lines = [], []
    c = _conn(made, lines)
    assert c.assoc.status == 0 and c.link.state == 0 and c.next_event(0) == 0
    m = _msg(3, b"\x60\x01\x00")
    assert c.feed(m, 0, 5, 0) == 5  # a header split across two reads
    assert made == []
    assert c.feed(m, 5, len(m), 0) == len(m) - 5
    assert len(made) == 1 and c.ld == 3 and bytes(made[0].got) == m  # the header too
    assert c.next_event(0) == 1 and bytes(c.tx_buf[c.tx_start:c.tx_end]) == b"reply3"
    assert c.assoc.status == 1
    m2 = _msg(2, b"\x01")  # another wPort later: the bound channel's link decides
    c.feed(m2, 0, len(m2), 0)
    assert len(made) == 1 and bytes(made[0].got).endswith(m2)
    c.close()
    assert made[0].closed and lines == []


def test_a_wport_no_device_has_gets_the_first_device():
    made, lines = [], []
    c = _conn(made, lines)
    m = _msg(9, b"\x01")
    c.feed(m, 0, len(m), 0)
    assert len(made) == 1 and bytes(made[0].tx_buf) == b"reply1"


def test_no_heap_for_the_channel_drops_the_connection_bytes_and_logs_once():
    made, lines = [], []
    c = _conn(made, lines, fail=(2,))
    m = _msg(2, b"\x60\x01\x00")
    assert c.feed(m, 0, len(m), 0) == len(m)
    assert c.feed(m, 0, len(m), 0) == len(m)
    assert made == [] and c.next_event(0) == 0 and c.dropped
    assert lines == ["wrapper: no heap for the channel of logical device 2 (MemoryError): the connection's "
                     "messages are dropped"]


def test_min_free_refuses_before_making_the_channel():
    import gc

    if not hasattr(gc, "mem_free"):
        return  # CPython: no heap figure (a port gives min_free=0 there; the MemoryError path above)
    made, lines = [], []
    c = _conn(made, lines, min_free=1 << 30)
    m = _msg(1, b"\x01")
    assert c.feed(m, 0, len(m), 0) == len(m)
    assert made == [] and lines[0].startswith("wrapper: no heap for the channel of logical device 1 (")


def test_hdlc_the_first_frame_upper_address_binds_the_connection():
    # the SNRM's destination address, 1, 2 or 4 bytes, split anywhere;
    # everything from its opening flag on reaches the bound channel
    for size, ld in ((1, 2), (2, 3), (4, 3), (4, 1)):
        for cut in range(1, 8):
            made, lines = [], []
            c = _conn(made, lines, hdlc=True)
            f = snrm(upper=ld, size=size)
            noise = b"\x00\x7e\x7e"  # bytes before a flag, repeated flags
            data = noise + f
            cut += len(noise)
            assert c.feed(data, 0, cut, 0) == cut
            if made:  # the address was whole within the first part
                assert cut >= len(noise) + 3 + size
            assert c.feed(data, cut, len(data), 0) == len(data) - cut
            assert len(made) == 1 and c.ld == ld, (size, ld, cut)
            assert bytes(made[0].got) == f
            assert lines == []


def test_hdlc_an_address_no_device_has_or_a_malformed_one():
    # all-station (0x7F): the first device, whose link does not answer it;
    # a 3-byte address is malformed: dropped, the next frame binds
    made, lines = [], []
    c = _conn(made, lines, hdlc=True)
    f = snrm(upper=0x7F, size=1)
    c.feed(f, 0, len(f), 0)
    assert made[0].meter.logical_device == 1 and bytes(made[0].got) == f
    made, lines = [], []
    c = _conn(made, lines, hdlc=True)
    bad = b"\x7e\xa0\x0a\x04\x04\x23\x03\x93\x00\x00\x7e"  # destination 02 02 11: 3 bytes
    good = snrm(upper=2, size=2)
    c.feed(bad + good, 0, len(bad) + len(good), 0)
    assert c.ld == 2 and bytes(made[0].got) == good


def test_hdlc_no_heap_logs_once_with_the_port_name():
    made, lines = [], []
    c = _conn(made, lines, fail=(3,), hdlc=True)
    f = snrm(upper=3, size=2)
    assert c.feed(f, 0, len(f), 0) == len(f)
    assert c.feed(f, 0, len(f), 0) == len(f)
    assert made == [] and lines == ["hdlc: no heap for the channel of logical device 3 (MemoryError): the "
                                    "connection's messages are dropped"]
