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
# install() replaces dlms_micro.crc16's update() (which fcs(), put_fcs() and
# check(), and so the HDLC link, call) after checking on the board itself
# that it gives the same values as the portable code; otherwise it leaves
# the portable code in place. Same table (crc16.TABLE, an array of 16-bit
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


def install():
    portable = crc16.update
    sample = bytes(range(256)) + b"\x7e\xa0\x19\x03\x21\x10"
    for s, e in ((0, 0), (0, 9), (3, 131), (250, 262)):
        for init in (crc16.INIT, 0, 0x1234):
            if update(init, sample, s, e) != portable(init, sample, s, e):
                return False
    crc16.update = update
    return True
