# CRC-16/X.25 (IEC 62056-46 HCS and FCS; ISO/IEC 13239): reflected polynomial
# 0x1021 (0x8408), initial value 0xFFFF, final XOR 0xFFFF, sent low byte first.
# The table (256 16-bit values) is an array built at import (528 B of heap):
# not a constant tuple, because a frozen firmware stores tuple integers
# outside -0x2000..0x1FFF as heap big ints, and `crc ^ TABLE[i]` would then
# allocate on every byte (../shared/micropython/README.md).

from array import array

INIT = 0xFFFF
# Running the register over data followed by its own FCS leaves this value.
GOOD_RESIDUE = 0xF0B8
POLY = 0x8408  # 0x1021 bit-reversed


def _build_table():
    t = array("H", range(256))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ POLY if c & 1 else c >> 1
        t[i] = c
    return t


TABLE = _build_table()


def update(crc, buf, start, end):
    # Advance a running (not yet inverted) CRC register over buf[start:end].
    t = TABLE
    for i in range(start, end):
        crc = (crc >> 8) ^ t[(crc ^ buf[i]) & 0xFF]
    return crc


try:
    # CPython's binascii has CRC-16/CCITT in C (MicroPython's has not): the
    # same CRC unreflected, so bytes and register are bit-reversed around it.
    from binascii import crc_hqx as _hqx
except ImportError:
    _hqx = None

if _hqx is not None:
    _REV = bytes(int("{:08b}".format(i)[::-1], 2) for i in range(256))  # each byte bit-reversed
    update_portable = update

    def _reversed(buf, start, end):
        # buf[start:end] with every byte bit-reversed (bytes or bytearray)
        b = buf[start:end]
        if type(b) is memoryview:
            b = bytes(b)
        return b.translate(_REV)

    def update(crc, buf, start, end):
        # update() through binascii.crc_hqx (~6x faster on CPython)
        r = _REV
        c = _hqx(_reversed(buf, start, end), (r[crc & 0xFF] << 8) | r[crc >> 8])
        return (r[c & 0xFF] << 8) | r[c >> 8]


def fcs(buf, start, end):
    # The 16-bit check value of buf[start:end], as transmitted (inverted).
    return update(INIT, buf, start, end) ^ 0xFFFF


def put_fcs(buf, start, end):
    # Write the check value of buf[start:end] at buf[end], low byte first;
    # return the offset after it.
    c = update(INIT, buf, start, end) ^ 0xFFFF
    buf[end] = c & 0xFF
    buf[end + 1] = c >> 8
    return end + 2


def check(buf, start, end):
    # True when buf[start:end] ends with the correct check value of what
    # precedes it.
    return update(INIT, buf, start, end) == GOOD_RESIDUE


if _hqx is not None:
    # fcs(), put_fcs() and check() in one call each on CPython (INIT 0xFFFF
    # is its own bit-reversal; check() compares the unreversed register)
    _GOOD_UNREVERSED = (_REV[GOOD_RESIDUE & 0xFF] << 8) | _REV[GOOD_RESIDUE >> 8]

    def fcs(buf, start, end):  # noqa: F811
        c = _hqx(_reversed(buf, start, end), 0xFFFF)
        return ((_REV[c & 0xFF] << 8) | _REV[c >> 8]) ^ 0xFFFF

    def put_fcs(buf, start, end):  # noqa: F811
        c = _hqx(_reversed(buf, start, end), 0xFFFF)
        buf[end] = _REV[c >> 8] ^ 0xFF
        buf[end + 1] = _REV[c & 0xFF] ^ 0xFF
        return end + 2

    def check(buf, start, end):  # noqa: F811
        return _hqx(_reversed(buf, start, end), 0xFFFF) == _GOOD_UNREVERSED
