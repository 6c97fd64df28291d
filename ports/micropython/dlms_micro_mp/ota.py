# Image transfer (class 18) straight into the ESP32's next OTA app
# partition: the sink of dlms_micro.cosem.image.ImageState for a board whose
# partition table has two OTA slots (MicroPython's ESP32 "OTA" builds, e.g.
# ESP32_GENERIC-OTA). A board without them has no update path: give its
# ImageState a StorageSink without on_activate (activation is refused, status
# 7) or leave the object out.
#
#   sink = OtaSink()                       # the partition after the running one
#   state = ImageState(sink, 200, storage, "image.state")
#   confirm_boot(meter, image_obj)         # at boot, after the self-test
#
# The partition is a block device (esp32.Partition): 4096-byte sectors,
# readblocks/writeblocks with a byte offset (no erase), ioctl 4 (sector
# count), 5 (sector size), 6 (erase one sector). NOR flash only clears bits
# when written, so:
#   begin()   erases the sectors the image will use;
#   write()   writes a block where the flash is still erased; a block sent
#             again with the same bytes costs nothing; with other bytes (a
#             corrupted block sent again) the sector is read into the one
#             sector buffer, patched, erased and written back.
#   verify()  reads the image back sector by sector and checks the SHA-256
#             trailer (dlms_micro.cosem.image: the image is the firmware
#             file followed by its SHA-256; the bootloader ignores what
#             follows the app image).
#   activate() makes the partition the boot partition (set_boot, which also
#             checks that it holds a valid app image: OSError -> activation
#             failed) and answers "in progress" (status 5, the client gets
#             temporary-failure): the board's loop resets the chip once the
#             response is out (reboot_due()), and the new firmware calls
#             confirm_boot() after its self-test, which cancels the
#             bootloader's rollback and sets status 6 (the status record
#             persists in the ImageState's storage across the reset).
# RAM: one sector buffer (4 KB) made once; a block write allocates a few
# small views (48 B, 80 B when the block spans two sectors; measured).

from dlms_micro.cosem import image

_BLOCK_COUNT = 4
_BLOCK_SIZE = 5
_BLOCK_ERASE = 6


class OtaSink:
    def __init__(self, partition=None):
        if partition is None:
            import esp32

            partition = esp32.Partition(esp32.Partition.RUNNING).get_next_update()
        self.part = partition
        self.sector = partition.ioctl(_BLOCK_SIZE, 0)
        self.capacity = partition.ioctl(_BLOCK_COUNT, 0) * self.sector
        self.buf = bytearray(self.sector)
        self.mv = memoryview(self.buf)
        self.signature = b""
        self.reboot = False  # set_boot done: reset once the response is out

    def begin(self, size, block_size):
        if size > self.capacity:
            return False
        try:
            for s in range((size + self.sector - 1) // self.sector):
                self.part.ioctl(_BLOCK_ERASE, s)
        except OSError:
            return False
        self.signature = b""
        return True

    def write(self, offset, buf, start, n):
        src = memoryview(buf)
        try:
            while n > 0:
                s = offset // self.sector
                o = offset - s * self.sector
                k = self.sector - o
                if k > n:
                    k = n
                self._put(s, o, src, start, k)
                offset += k
                start += k
                n -= k
        except OSError:
            return False
        return True

    def _put(self, s, o, src, start, k):
        # k bytes of src at start into sector s at o
        part = self.part
        b = self.buf
        part.readblocks(s, self.mv[0:k], o)
        erased = True
        same = True
        for i in range(k):
            x = b[i]
            if x != 0xFF:
                erased = False
            if x != src[start + i]:
                same = False
        if same:
            return
        if erased:
            part.writeblocks(s, src[start : start + k], o)
            return
        # rewrite the sector with the new bytes
        part.readblocks(s, b, 0)
        for i in range(k):
            b[o + i] = src[start + i]
        part.ioctl(_BLOCK_ERASE, s)
        part.writeblocks(s, b, 0)

    def verify(self, size):
        self.signature = b""
        if size > self.capacity:
            return False
        chk = image.Sha256Trailer(size)
        left = size
        s = 0
        try:
            while left > 0:
                self.part.readblocks(s, self.buf, 0)
                k = self.sector if left > self.sector else left
                chk.feed(self.buf, 0, k)
                left -= k
                s += 1
        except OSError:
            return False
        if not chk.ok():
            return False
        self.signature = bytes(chk.trailer)
        return True

    def activate(self, identifier):
        try:
            self.part.set_boot()
        except OSError:
            return False  # not a valid app image
        self.reboot = True
        return None  # finished by the reset and confirm_boot()

    def reboot_due(self):
        # For the board's loop: True once activation asked for a reset
        # (reset after the pending response has been sent).
        return self.reboot


def confirm_boot(meter, obj, ok=True):
    # At boot, after the board's self-test: the new firmware is good (ok)
    # or not. Cancels the bootloader's rollback when good, and settles a
    # pending activation (status 6, or 7). True when one was pending.
    if ok:
        try:
            import esp32

            esp32.Partition.mark_app_valid_cancel_rollback()
        except (ImportError, AttributeError, OSError):
            pass  # not an ESP32, or no rollback support in the bootloader
    return image.finish(meter, obj, ok)
