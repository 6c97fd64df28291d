# CRC-16/X.25 in viper for MicroPython builds with a native emitter (frozen
# with mpy-cross -march=armv7m for a Cortex-M, xtensawin for an ESP32; see
# tools/manifest.py option viper). NOT portable: viper is a SyntaxError
# without the native emitter, so nothing in dlms_micro/ imports this; the
# port's start-up code does:
#
#     try:
#         import crc16_viper
#         crc16_viper.install()   # True if it took over
#     except (ImportError, SyntaxError, ValueError):
#         pass
#
# install() replaces dlms_micro.crc16's update(), check() and put_fcs() (what
# the HDLC link calls; fcs() goes through update()) after checking on the
# board itself that they give the same values as the portable code;
# otherwise it leaves the portable code in place. Same table (crc16.TABLE, an array of 16-bit
# values) and register convention (not inverted) as crc16.update().
# Measured on the QEMU Cortex-M3 (tools/firmware/bench_fw.py): a 128-byte
# frame ~1,900 instructions instead of ~104,000.

import micropython

from dlms_micro import crc16

_TABLE = crc16.TABLE


@micropython.viper
def update(crc: int, buf, start: int, end: int) -> int:
    t = ptr16(_TABLE)
    p = ptr8(buf)
    c = crc
    i = start
    while i < end:
        c = (c >> 8) ^ t[(c ^ p[i]) & 0xFF]
        i += 1
    return c


@micropython.viper
def check(buf, start: int, end: int) -> bool:
    # crc16.check: buf[start:end] ends with the right FCS
    return int(update(0xFFFF, buf, start, end)) == 0xF0B8


@micropython.viper
def put_fcs(buf, start: int, end: int) -> int:
    # crc16.put_fcs: the FCS of buf[start:end] written at buf[end], low byte
    # first; the offset after it
    c = int(update(0xFFFF, buf, start, end)) ^ 0xFFFF
    p = ptr8(buf)
    p[end] = c & 0xFF
    p[end + 1] = c >> 8
    return end + 2


def install():
    # Replace crc16's update(), check() and put_fcs() (what the HDLC link
    # calls) if they agree with the portable ones here; True if done.
    portable = crc16.update
    sample = bytes(range(256)) + b"\x7e\xa0\x19\x03\x21\x10"
    for s, e in ((0, 0), (0, 9), (3, 131), (250, 262)):
        for init in (crc16.INIT, 0, 0x1234):
            if update(init, sample, s, e) != portable(init, sample, s, e):
                return False
        if check(sample, s, e) != crc16.check(sample, s, e):
            return False
        a = bytearray(sample) + b"\x00\x00"
        b = bytearray(a)
        if put_fcs(a, s, e) != crc16.put_fcs(b, s, e) or a != b:
            return False
        if e - s > 2 and not check(a, s, e + 2):
            return False
    crc16.update = update
    crc16.check = check
    crc16.put_fcs = put_fcs
    return True
