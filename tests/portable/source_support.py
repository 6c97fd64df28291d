# Helpers for the source tests (tests/portable/test_source_*.py); they run
# under pytest and under real MicroPython, like support.py.

from cosem_support import allocated


def bcc(data):
    # IEC 62056-21 block check: XOR of the bytes
    c = 0
    for b in data:
        c ^= b
    return c


def data_message(block):
    # STX block ETX BCC (the BCC covers block and ETX)
    body = block + b"\x03"
    return b"\x02" + body + bytes((bcc(body),))


def pump(src, now, out=None):
    # Drain a source's events into a list of tuples; fails on an endless run.
    if out is None:
        out = []
    for _ in range(20):
        ev = src.next_event(now)
        if ev == 0:
            return out
        if ev == 1:
            out.append(("send", bytes(src.tx_buf[src.tx_start : src.tx_end])))
        elif ev == 6:
            out.append(("baud", src.baud))
        elif ev == 8:
            out.append(("done", src.status, src.error))
        elif ev == 9:
            out.append(("written",))
        else:
            raise AssertionError("unknown event %r" % ev)
    raise AssertionError("next_event never returned EV_NONE")


def feed(src, data, now, chunk=0):
    step = chunk or len(data) or 1
    for pos in range(0, len(data), step):
        piece = data[pos : pos + step]
        assert src.feed(piece, 0, len(piece), now) == len(piece)


def alloc(fn):
    # Heap bytes fn() allocates on MicroPython (None on CPython); fn runs
    # at least once either way.
    fn()
    return allocated(fn)
