# Image transfer (class_id 18, version 0), Blue Book 4.4.6: a firmware (or
# other) image sent to the meter in blocks, verified, then activated.
#
#   attribute 2 image_block_size                  double-long-unsigned
#   attribute 3 image_transferred_blocks_status   bit-string, one bit per
#                                                 block of the image being
#                                                 transferred (bit 0: block 0,
#                                                 the first bit on the wire)
#   attribute 4 image_first_not_transferred_block_number
#                                                 double-long-unsigned (the
#                                                 number of blocks once all
#                                                 are in; 0 before initiate)
#   attribute 5 image_transfer_enabled            boolean (SET: boolean)
#   attribute 6 image_transfer_status             enum, the ST_* below
#   attribute 7 image_to_activate_info            array of 0 or 1 structure
#                                                 {size double-long-unsigned,
#                                                 identification octet-string,
#                                                 signature octet-string},
#                                                 filled by a successful
#                                                 verification
#   method 1 image_transfer_initiate (structure {image_identifier
#            octet-string, image_size double-long-unsigned})
#   method 2 image_block_transfer (structure {image_block_number
#            double-long-unsigned, image_block_value octet-string})
#   method 3 image_verify (integer(0))
#   method 4 image_activate (integer(0))
# Integers are accepted in any unsigned-compatible integer type (gurux sends
# double-long-unsigned; integer(0) may come as any integer or null-data).
#
# state: 1 slot, [slot] an ImageState(sink, block_size, ...) made at boot:
# the transfer's status, identifier, size and block bitmap, all preallocated
# for the largest image the sink takes (sink.capacity bytes), and the sink.
# param: None.
#
# THE SINK (the port's side, duck-typed): where the image's bytes go and
# what verification and activation mean on this device.
#   capacity                      largest image, bytes
#   begin(size, block_size)       a new image of size bytes is coming (erase,
#                                 truncate...); False: cannot take it
#   write(offset, buf, start, n)  store buf[start:start+n] at image offset
#                                 `offset`; False: storage failed. Blocks may
#                                 come in any order and more than once.
#   verify(size)                  True: the image is good; False: it is not;
#                                 None: still checking (call me again)
#   signature                     bytes shown in image_to_activate_info
#                                 (b"" when none)
#   activate(identifier)          True: activated; False: refused/failed;
#                                 None: in progress (call me again, or the
#                                 port reports the outcome with finish())
# StorageSink below keeps the blocks in the port's storage (get/put/delete
# of byte records: FileStorage, FlashStorage); ports/cpython has a file
# sink. A board with an OTA partition writes its own (write straight into
# the partition, activate = mark it for boot).
#
# VERIFICATION (manufacturer-specific in the Blue Book; here): the image's
# last 32 bytes are the SHA-256 of all the bytes before them. Sha256Trailer
# checks a stream of the image's bytes against it; a corrupted or missing
# block makes image_verify fail (status 4, verification failed). The
# trailer is the signature in image_to_activate_info.
#
# THE PROCESS and the results (action-result):
#   initiate: image_transfer_enabled FALSE, size 0 or larger than the
#     sink's capacity, identifier longer than max_id: OTHER_REASON; sink
#     refuses: HARDWARE_FAULT. Otherwise a new transfer: status 1, every
#     bit 0, first-not-transferred 0, nothing to activate. An initiate
#     always starts afresh; a transfer interrupted by a power cut resumes
#     without one (the state is persisted: read attribute 3 or 4 and send
#     the missing blocks).
#   block transfer: allowed in status 1, 3 and 4 (a block after a
#     verification goes back to status 1: verify again), else OTHER_REASON;
#     transfer disabled: OTHER_REASON; a block number >= the number of
#     blocks: DATA_BLOCK_NUMBER_INVALID; a value longer than
#     image_block_size, or of the wrong length for its place (every block
#     but the last is image_block_size bytes; the last one holds the rest,
#     and padding up to the block size is accepted and dropped): OTHER_REASON;
#     sink write fails: HARDWARE_FAULT. Blocks may come in any order, and a
#     block sent again overwrites the earlier copy.
#   verify: no transfer: OTHER_REASON; blocks missing or the check fails:
#     status 4, OTHER_REASON; sink still checking: status 2,
#     TEMPORARY_FAILURE; good: status 3, image_to_activate_info filled.
#   activate: no transfer: OTHER_REASON; not yet verified: verified first
#     (as image_verify, with its results); then the sink's activate: status
#     6 SUCCESS, status 7 OTHER_REASON, or status 5 TEMPORARY_FAILURE while
#     it runs.
#   Parameters of the wrong shape or type: TYPE_UNMATCHED.
# A pending verification or activation (status 2, 5) advances when the
# client invokes the method again and on tick(meter, obj) from the port's
# loop; finish(meter, obj, ok) lets the port report the outcome itself (e.g.
# after the reboot into a new firmware).
#
# PERSISTENCE (optional): ImageState(..., storage, key) restores its record
# at boot and writes it after every change (status, enabled flag, verified
# flag, identifier, size, bitmap: one fixed-size record, ~80 bytes + one bit
# per block). A block's data goes to the sink before its bit is persisted,
# so a power cut loses at most the bit of a block stored, which the client
# then sends again. A verification cut short (status 2) restarts as status
# 1; status 5 is kept for the port to finish().

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.errors import DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1

# image_transfer_status
ST_NOT_INITIATED = const(0)
ST_INITIATED = const(1)
ST_VERIFYING = const(2)
ST_VERIFIED = const(3)
ST_VERIFY_FAILED = const(4)
ST_ACTIVATING = const(5)
ST_ACTIVATED = const(6)
ST_ACTIVATE_FAILED = const(7)

MAX_ID = const(64)  # default longest image identifier, bytes
TRAILER = const(32)  # SHA-256 trailer at the end of every image

# persisted record: status, enabled, verified, identifier length, size (4),
# identifier (max_id bytes), bitmap
_H = const(8)


class ImageState:
    # The run-time part of one Image transfer object (its state slot).

    def __init__(self, sink, block_size=200, storage=None, key=None, max_id=MAX_ID, enabled=True):
        if block_size < 1:
            raise ValueError("block size must be 1 byte or more")
        self.sink = sink
        self.block_size = block_size
        self.max_blocks = (sink.capacity + block_size - 1) // block_size
        self.bitmap = bytearray((self.max_blocks + 7) >> 3)
        self.ident = bytearray(max_id)
        self.id_len = 0
        self.size = 0
        self.blocks = 0  # blocks of the image being transferred
        self.first = 0  # first block not transferred
        self.status = ST_NOT_INITIATED
        self.enabled = bool(enabled)
        self.verified = False
        self.storage = storage
        self.key = key
        self.rec = None  # the persisted record, built in place
        if storage is not None:
            self.rec = bytearray(_H + max_id + len(self.bitmap))
            self.load()

    def reset(self, size):
        # A new transfer of size bytes.
        bm = self.bitmap
        for i in range(len(bm)):
            bm[i] = 0
        self.size = size
        self.blocks = (size + self.block_size - 1) // self.block_size
        self.first = 0
        self.verified = False
        self.status = ST_INITIATED

    def has(self, n):
        return (self.bitmap[n >> 3] >> (7 - (n & 7))) & 1

    def mark(self, n):
        self.bitmap[n >> 3] |= 0x80 >> (n & 7)
        if n == self.first:
            f = n + 1
            while f < self.blocks and self.has(f):
                f += 1
            self.first = f

    def identifier(self):
        return bytes(self.ident[0 : self.id_len])

    def load(self):
        rec = self.storage.get(self.key)
        nid = len(self.ident)
        nbm = len(self.bitmap)
        if rec is None or len(rec) != _H + nid + nbm:
            return False
        size = (rec[4] << 24) | (rec[5] << 16) | (rec[6] << 8) | rec[7]
        if size > self.sink.capacity or rec[0] > ST_ACTIVATE_FAILED or rec[3] > nid:
            return False
        self.status = ST_INITIATED if rec[0] == ST_VERIFYING else rec[0]
        self.enabled = rec[1] != 0
        self.verified = rec[2] != 0
        self.id_len = rec[3]
        self.ident[0:nid] = rec[_H : _H + nid]
        self.bitmap[0:nbm] = rec[_H + nid :]
        self.size = size
        self.blocks = (size + self.block_size - 1) // self.block_size
        f = 0
        while f < self.blocks and self.has(f):
            f += 1
        self.first = f
        return True

    def save(self):
        if self.storage is None:
            return
        nid = len(self.ident)
        rec = self.rec
        rec[0] = self.status
        rec[1] = 1 if self.enabled else 0
        rec[2] = 1 if self.verified else 0
        rec[3] = self.id_len
        s = self.size
        rec[4] = (s >> 24) & 0xFF
        rec[5] = (s >> 16) & 0xFF
        rec[6] = (s >> 8) & 0xFF
        rec[7] = s & 0xFF
        rec[_H : _H + nid] = self.ident
        rec[_H + nid :] = self.bitmap
        self.storage.put(self.key, bytes(rec))


def state_of(meter, obj):
    return meter.state[obj[base.E_SLOT]]


class ImageTransfer(base.InterfaceClass):
    class_id = 18
    version = 0
    attribute_count = 7
    method_count = 4
    slots = SLOTS

    def get(self, ctx, obj, attr):
        st = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = axdr.enc_double_long_unsigned(buf, pos, st.block_size)
        elif attr == 3:
            pos = axdr.enc_bit_string(buf, pos, st.blocks, st.bitmap)
        elif attr == 4:
            pos = axdr.enc_double_long_unsigned(buf, pos, st.first)
        elif attr == 5:
            pos = axdr.enc_boolean(buf, pos, st.enabled)
        elif attr == 6:
            pos = axdr.enc_enum(buf, pos, st.status)
        elif attr == 7:
            ready = st.verified and st.status != ST_NOT_INITIATED
            pos = axdr.enc_array(buf, pos, 1 if ready else 0)
            if ready:
                pos = axdr.enc_structure(buf, pos, 3)
                pos = axdr.enc_double_long_unsigned(buf, pos, st.size)
                pos = axdr.enc_octet_string(buf, pos, st.ident, 0, st.id_len)
                pos = axdr.enc_octet_string(buf, pos, getattr(st.sink, "signature", b"") or b"")
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        if attr != 5:
            return base.READ_WRITE_DENIED
        r = ctx.r
        if r.peek() != axdr.BOOLEAN:
            return base.TYPE_UNMATCHED
        st = ctx.meter.state[obj[base.E_SLOT]]
        st.enabled = r.boolean()
        st.save()
        return base.SUCCESS

    def action(self, ctx, obj, method):
        st = ctx.meter.state[obj[base.E_SLOT]]
        try:
            if method == 1:
                return _initiate(ctx, st)
            if method == 2:
                return _block(ctx, st)
            if method == 3 or method == 4:
                res = common.integer_param(ctx)
                if res:
                    return res
                if st.status == ST_NOT_INITIATED:
                    return base.OTHER_REASON
                if method == 3:
                    return _verify(st)
                return _activate(st)
        except DecodeError:
            return base.TYPE_UNMATCHED
        return base.READ_WRITE_DENIED


def _unsigned(r):
    # An integer parameter that must not be negative; -1 when it is.
    v = r.number()
    return v if v >= 0 else -1


def _initiate(ctx, st):
    r = ctx.r
    if not ctx.has_data or r.structure() != 2:
        return base.TYPE_UNMATCHED
    n = r.octet_string()
    p = r.mark
    size = _unsigned(r)
    if size < 0:
        return base.TYPE_UNMATCHED
    if not st.enabled or size == 0 or size > st.sink.capacity or n > len(st.ident):
        return base.OTHER_REASON
    if not st.sink.begin(size, st.block_size):
        return base.HARDWARE_FAULT
    b = r.buf
    ident = st.ident
    for i in range(n):
        ident[i] = b[p + i]
    st.id_len = n
    st.reset(size)
    st.save()
    return base.SUCCESS


def _block(ctx, st):
    # image_block_transfer: the hot path (allocates nothing itself).
    r = ctx.r
    if not ctx.has_data or r.structure() != 2:
        return base.TYPE_UNMATCHED
    num = _unsigned(r)
    if num < 0:
        return base.TYPE_UNMATCHED
    n = r.octet_string()
    s = st.status
    if not st.enabled or not (s == ST_INITIATED or s == ST_VERIFIED or s == ST_VERIFY_FAILED):
        return base.OTHER_REASON
    if num >= st.blocks:
        return base.DATA_BLOCK_NUMBER_INVALID
    bs = st.block_size
    off = num * bs
    keep = st.size - off  # bytes of the image from this block on
    if keep > bs:
        keep = bs
    if n > bs or n < keep:
        return base.OTHER_REASON
    if not st.sink.write(off, r.buf, r.mark, keep):
        return base.HARDWARE_FAULT
    st.mark(num)
    if s != ST_INITIATED or st.verified:
        st.status = ST_INITIATED
        st.verified = False
    st.save()
    return base.SUCCESS


def _settle(st, ok, running, done, failed):
    # Status and action-result from a sink's answer (None: still running).
    if ok is None:
        st.status = running
        res = base.TEMPORARY_FAILURE
    elif ok:
        st.status = done
        res = base.SUCCESS
    else:
        st.status = failed
        res = base.OTHER_REASON
    if running == ST_VERIFYING:
        st.verified = st.status == ST_VERIFIED
    st.save()
    return res


def _settle_verify(st, ok):
    return _settle(st, ok, ST_VERIFYING, ST_VERIFIED, ST_VERIFY_FAILED)


def _settle_activate(st, ok):
    return _settle(st, ok, ST_ACTIVATING, ST_ACTIVATED, ST_ACTIVATE_FAILED)


def _verify(st):
    if st.status == ST_ACTIVATING:
        return base.TEMPORARY_FAILURE
    if st.first < st.blocks:
        return _settle_verify(st, False)  # blocks missing
    return _settle_verify(st, st.sink.verify(st.size))


def _activate(st):
    if st.status != ST_ACTIVATING and not st.verified:
        res = _verify(st)
        if res:
            return res
    return _settle_activate(st, st.sink.activate(st.identifier()))


def tick(meter, obj):
    # From the port's loop: advance a pending verification or activation
    # (status 2 or 5) by calling the sink again. True when one settled.
    st = meter.state[obj[base.E_SLOT]]
    if st.status == ST_VERIFYING:
        _verify(st)
        return st.status != ST_VERIFYING
    if st.status == ST_ACTIVATING:
        _settle_activate(st, st.sink.activate(st.identifier()))
        return st.status != ST_ACTIVATING
    return False


def finish(meter, obj, ok):
    # The port reports the outcome of a pending activation itself (e.g. the
    # new firmware, after its self-test, reports True). Only in status 5.
    st = meter.state[obj[base.E_SLOT]]
    if st.status != ST_ACTIVATING:
        return False
    _settle_activate(st, bool(ok))
    return True


class Sha256Trailer:
    # Checks an image against its trailer: feed() the image's bytes in
    # order (any chunking), then ok(). The first size-32 bytes are hashed,
    # the last 32 are the expected SHA-256.
    def __init__(self, size):
        import hashlib

        self.h = hashlib.sha256()
        self.body = size - TRAILER
        self.seen = 0
        self.trailer = bytearray(TRAILER)

    def feed(self, data, start=0, end=None):
        if end is None:
            end = len(data)
        mv = memoryview(data)
        body = self.body
        p = self.seen
        if p < body:
            k = end - start
            if k > body - p:
                k = body - p
            self.h.update(mv[start : start + k])
            start += k
            p += k
        t = self.trailer
        while start < end and p < body + TRAILER:
            t[p - body] = data[start]
            start += 1
            p += 1
        self.seen = p

    def ok(self):
        if self.body < 0 or self.seen != self.body + TRAILER:
            return False
        return self.h.digest() == bytes(self.trailer)


def trailer_for(image_body):
    # The image a sender makes: body + SHA-256(body). Tools and tests.
    import hashlib

    return bytes(image_body) + hashlib.sha256(image_body).digest()


class StorageSink:
    # Image blocks as records of the port's storage (get/put/delete): block
    # n under "<prefix>.<n>", so any storage the port has (a data directory,
    # LittleFS on the ESP32) holds an image in pieces of block_size bytes
    # (the ImageState's block size), and a transfer resumes after a restart.
    # Verification: the SHA-256 trailer. Activation: on_activate(identifier)
    # (True/False/None as the sink's activate), or refused (False) when the
    # port has no update path to hand over to.
    def __init__(self, storage, capacity, block_size, prefix="img", on_activate=None):
        self.storage = storage
        self.capacity = capacity
        self.block_size = block_size
        self.prefix = prefix
        self.on_activate = on_activate
        self.signature = b""

    def _key(self, n):
        return "%s.%d" % (self.prefix, n)

    def begin(self, size, block_size):
        if block_size != self.block_size:
            return False
        # drop every block of an earlier image (which ones exist is not
        # known after a restart)
        for n in range((self.capacity + block_size - 1) // block_size):
            self.storage.delete(self._key(n))
        self.signature = b""
        return True

    def write(self, offset, buf, start, n):
        self.storage.put(self._key(offset // self.block_size), bytes(buf[start : start + n]))
        return True

    def verify(self, size):
        self.signature = b""
        chk = Sha256Trailer(size)
        for n in range((size + self.block_size - 1) // self.block_size):
            rec = self.storage.get(self._key(n))
            if rec is None:
                return False
            chk.feed(rec)
        if not chk.ok():
            return False
        self.signature = bytes(chk.trailer)
        return True

    def activate(self, identifier):
        if self.on_activate is None:
            return False
        return self.on_activate(identifier)


IMAGE_TRANSFER = ImageTransfer()
