# The MicroPython port's OTA sink (ports/micropython/dlms_micro_mp/ota.py)
# under Image transfer, on a test double of esp32.Partition with NOR flash
# rules (a write only clears bits, erase sets a sector to 0xFF): blocks in
# any order across sector boundaries, a corrupted block sent again with the
# right bytes (the sector is rewritten), verification, activation through
# set_boot and the reset, confirm_boot after the restart, an invalid app
# image refused by set_boot. Runs under pytest and real MicroPython.

import sys

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

from cosem_support import make
from dlms_micro import axdr
from dlms_micro.cosem import base, image
from dlms_micro.cosem.image import IMAGE_TRANSFER, ImageState
from dlms_micro_mp.ota import OtaSink, confirm_boot

LN = b"\x00\x00\x2c\x00\x00\xff"
ACC = ((b"\x01\x01\x01\x01\x03\x01\x01", b"\x01\x01\x01\x01"), None)
SECTOR = 256
BS = 200


class Partition:
    # esp32.Partition's block-device part, NOR semantics, small sectors
    def __init__(self, sectors=12, valid=True):
        self.flash = bytearray(b"\xff" * (sectors * SECTOR))
        self.sectors = sectors
        self.valid = valid
        self.booted = False
        self.erases = 0

    def ioctl(self, op, arg):
        if op == 4:
            return self.sectors
        if op == 5:
            return SECTOR
        if op == 6:
            p = arg * SECTOR
            for i in range(SECTOR):
                self.flash[p + i] = 0xFF
            self.erases += 1
            return 0
        return None

    def readblocks(self, n, buf, off=0):
        p = n * SECTOR + off
        for i in range(len(buf)):
            buf[i] = self.flash[p + i]

    def writeblocks(self, n, buf, off=0):
        p = n * SECTOR + off
        for i in range(len(buf)):
            self.flash[p + i] &= buf[i]

    def set_boot(self):
        if not self.valid:
            raise OSError(22)
        self.booted = True


class DictStorage:
    def __init__(self):
        self.d = {}

    def get(self, key):
        return self.d.get(key)

    def put(self, key, value):
        self.d[key] = bytes(value)

    def delete(self, key):
        self.d.pop(key, None)


def body(n):
    b = bytearray(n)
    x = 3
    for i in range(n):
        x = (x * 75 + 74) % 65537
        b[i] = x & 0xFF
    return bytes(b)


def setup(part, store):
    sink = OtaSink(part)
    st = ImageState(sink, BS, store, "image")
    t = ((18, 0, LN, IMAGE_TRANSFER, 0, ACC, None),)
    return make(t, [st]), t[0], st, sink


def call(ctx, obj, method, data):
    ctx.r.reset(data)
    ctx.has_data = True
    ctx.pos = 0
    return IMAGE_TRANSFER.action(ctx, obj, method)


def send(ctx, obj, img, n):
    v = img[n * BS : (n + 1) * BS]
    return call(ctx, obj, 2, axdr.encoded(axdr.STRUCTURE, [(axdr.DOUBLE_LONG_UNSIGNED, n), (axdr.OCTET_STRING, v)]))


def initiate(ctx, obj, size):
    return call(ctx, obj, 1, axdr.encoded(axdr.STRUCTURE, [(axdr.OCTET_STRING, b"fw-ota"), (axdr.DOUBLE_LONG_UNSIGNED, size)]))


def test_blocks_into_the_partition_verify_and_activate_through_a_reset():
    part = Partition()
    store = DictStorage()
    ctx, obj, st, sink = setup(part, store)
    assert sink.capacity == 12 * SECTOR and st.max_blocks == 16
    img = image.trailer_for(body(1000))  # 1032 bytes: 6 blocks over 5 sectors
    assert initiate(ctx, obj, len(img)) == base.SUCCESS
    assert part.erases == 5
    for n in (5, 2, 0, 4, 1, 3):
        assert send(ctx, obj, img, n) == base.SUCCESS
    assert bytes(part.flash[0:1032]) == img
    assert call(ctx, obj, 3, b"\x0f\x00") == base.SUCCESS
    assert sink.signature == img[-32:]
    # activation: set_boot, then "in progress" until the reset
    assert call(ctx, obj, 4, b"\x0f\x00") == base.TEMPORARY_FAILURE
    assert part.booted and sink.reboot_due()
    assert st.status == image.ST_ACTIVATING
    # after the reset: the new firmware, its self-test passed
    ctx2, obj2, st2, sink2 = setup(part, store)
    assert st2.status == image.ST_ACTIVATING and not sink2.reboot_due()
    assert confirm_boot(ctx2.meter, obj2)
    assert st2.status == image.ST_ACTIVATED
    assert not confirm_boot(ctx2.meter, obj2)


def test_a_corrupted_block_sent_again_rewrites_its_sector():
    part = Partition()
    ctx, obj, st, sink = setup(part, None)
    img = image.trailer_for(body(568))  # 600 bytes, 3 blocks
    initiate(ctx, obj, len(img))
    bad = bytearray(img)
    bad[230] ^= 0xFF  # block 1, in sector 0 (block 1 spans sectors 0 and 1)
    for n in range(3):
        assert send(ctx, obj, bad, n) == base.SUCCESS
    assert call(ctx, obj, 3, b"\x0f\x00") == base.OTHER_REASON
    assert st.status == image.ST_VERIFY_FAILED
    erases = part.erases
    assert send(ctx, obj, img, 1) == base.SUCCESS  # right bytes this time
    assert part.erases == erases + 1  # sector 0 patched; sector 1 unchanged
    assert bytes(part.flash[0:600]) == img
    assert send(ctx, obj, img, 1) == base.SUCCESS  # the same again: no erase
    assert part.erases == erases + 1
    assert call(ctx, obj, 3, b"\x0f\x00") == base.SUCCESS


def test_set_boot_refusing_the_image_fails_activation():
    part = Partition(valid=False)
    ctx, obj, st, sink = setup(part, None)
    img = image.trailer_for(body(368))
    initiate(ctx, obj, len(img))
    send(ctx, obj, img, 0)
    send(ctx, obj, img, 1)
    assert call(ctx, obj, 4, b"\x0f\x00") == base.OTHER_REASON
    assert st.status == image.ST_ACTIVATE_FAILED and not sink.reboot_due()


def test_an_image_larger_than_the_partition_is_refused():
    ctx, obj, st, sink = setup(Partition(sectors=4), None)
    assert initiate(ctx, obj, 4 * SECTOR + 1) == base.OTHER_REASON
    assert initiate(ctx, obj, 4 * SECTOR) == base.SUCCESS
