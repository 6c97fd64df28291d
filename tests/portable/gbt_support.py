# Helpers of the GBT tests (test_gbt*.py): general-block-transfer APDUs built
# and read by hand, and a client that takes a streamed response.

from dlms_micro import axdr
from dlms_micro.app import gbt


def block(bc, bn, bna, data=b""):
    n = len(data)
    head = bytes([0xE0, bc, bn >> 8, bn & 0xFF, bna >> 8, bna & 0xFF])
    if n < 128:
        return head + bytes([n]) + data
    return head + bytes([0x82, n >> 8, n & 0xFF]) + data


def fields(apdu):
    # (block-control, block-number, block-number-ack, block-data)
    assert apdu[0] == 0xE0
    r = axdr.Reader(apdu, 6)
    n = r.length()
    assert r.pos + n == len(apdu)
    return apdu[1], (apdu[2] << 8) | apdu[3], (apdu[4] << 8) | apdu[5], bytes(apdu[r.pos :])


def collect(s, first, window, lose=None, client_bn=1):
    # Take a GBT response that the meter streams in windows; acknowledge at
    # each window's end. lose: a block number dropped once on the way.
    raw = {}
    last = None
    out = first
    windows = []
    while True:
        got = []
        for apdu in out:
            assert len(apdu) <= 128
            bc, bn, bna, data = fields(apdu)
            assert bc & gbt.WINDOW >= 1 and bna == client_bn
            if bn == lose:
                lose = None
                got.append(-bn)
                continue
            got.append(bn)
            raw[bn] = data
            if bc & gbt.LAST_BLOCK:
                last = bn
        windows.append(got)
        # the last APDU of a window asks for the ack
        assert not fields(out[-1])[0] & gbt.STREAMING
        for apdu in out[:-1]:
            assert fields(apdu)[0] & gbt.STREAMING
        if last is not None and len(raw) == last:
            break
        ack = 0
        while ack + 1 in raw:
            ack += 1
        client_bn += 1
        out = s.send(block(window, client_bn, ack))
    return b"".join(raw[i] for i in range(1, last + 1)), windows
