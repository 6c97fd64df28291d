# Every logical device of a gateway over one TCP wrapper connection
# (ports/micropython/dlms_micro_mp/gateway_tcp.py): a device's Channel is
# made at its first message, only that device's; one that cannot be made
# drops its messages with one log line while the others answer. Runs under
# pytest and real MicroPython.

import sys

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

from dlms_micro_mp import gateway_tcp  # noqa: E402


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


def _router(made, lines, fail=()):
    from dlms_micro.router import Router

    def maker(ld):
        def make():
            if ld in fail:
                raise MemoryError
            c = _Chan(ld)
            made.append(c)
            return c

        return make

    chans = [gateway_tcp.LazyChannel(ld, None, maker(ld), lines.append) for ld in (1, 2, 3)]
    return Router(chans, True)


def test_a_device_channel_is_made_at_its_first_message_only():
    made, lines = [], []
    r = _router(made, lines)
    assert made == [] and r.assoc.status == 0 and r.next_event(0) == 0
    m = _msg(3, b"\x60\x01\x00")
    assert r.feed(m, 0, len(m), 0) == len(m)
    assert len(made) == 1 and bytes(made[0].got) == m  # the header too
    assert r.next_event(0) == 1 and bytes(r.tx_buf[r.tx_start:r.tx_end]) == b"reply3"
    m2 = _msg(2, b"\x01")
    r.feed(m2, 0, len(m2), 0)
    assert len(made) == 2 and bytes(made[1].got) == m2
    r.close()
    assert made[0].closed and made[1].closed
    assert lines == []


def test_a_device_without_heap_drops_its_messages_and_logs_once():
    made, lines = [], []
    r = _router(made, lines, fail=(2,))
    m = _msg(2, b"\x60\x01\x00")
    assert r.feed(m, 0, len(m), 0) == len(m)
    assert r.feed(m, 0, len(m), 0) == len(m)
    assert made == [] and r.next_event(0) == 0
    assert lines == ["logical device 2: no heap for its channel (MemoryError): its messages are dropped"]
    m1 = _msg(1, b"\x01\x02")  # the others still answer
    r.feed(m1, 0, len(m1), 0)
    assert len(made) == 1 and r.next_event(0) == 1 and bytes(r.tx_buf[:r.tx_end]) == b"reply1"


def test_min_free_refuses_before_making_the_channel():
    import gc

    if not hasattr(gc, "mem_free"):
        return  # CPython: no heap figure to compare (the MemoryError path above)
    made, lines = [], []
    ch = gateway_tcp.LazyChannel(2, None, lambda: made.append(1), lines.append, min_free=1 << 30)
    assert ch.feed(b"\x00" * 8, 0, 8, 0) == 8
    assert made == [] and ch.refused == 1 and lines[0].startswith("logical device 2: no heap for its channel (")
