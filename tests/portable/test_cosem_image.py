# Image transfer (class 18): initiate, blocks in and out of order, the block
# bitmap and first-not-transferred block, verification by the SHA-256
# trailer (a corrupted or missing block fails it), activation, the refusals
# (not initiated, disabled, oversized image or block, bad block number, wrong
# types), pending verification/activation, resume after a restart from the
# persisted state, and the allocation of a block transfer on MicroPython.

from cosem_support import allocated, get, get_ok, make, put
from dlms_micro import axdr
from dlms_micro.cosem import base, image
from dlms_micro.cosem.image import IMAGE_TRANSFER, ImageState, Sha256Trailer, StorageSink

LN = b"\x00\x00\x2c\x00\x00\xff"  # 0.0.44.0.0.255
ACC = ((b"\x01\x01\x01\x01\x03\x01\x01", b"\x01\x01\x01\x01"), None)
BS = 200  # block size


class RamSink:
    # The image in one preallocated bytearray; verify/activate answers can
    # be scripted (None: still running).
    def __init__(self, capacity=4000):
        self.capacity = capacity
        self.data = bytearray(capacity)
        self.signature = b""
        self.begun = 0
        self.verify_answers = []  # answers given before the real check
        self.activate_answers = []
        self.activated = []  # identifiers activated

    def begin(self, size, block_size):
        self.begun += 1
        return True

    def write(self, offset, buf, start, n):
        d = self.data
        for i in range(n):
            d[offset + i] = buf[start + i]
        return True

    def verify(self, size):
        if self.verify_answers:
            return self.verify_answers.pop(0)
        chk = Sha256Trailer(size)
        chk.feed(self.data, 0, size)
        ok = chk.ok()
        self.signature = bytes(chk.trailer) if ok else b""
        return ok

    def activate(self, identifier):
        if self.activate_answers:
            a = self.activate_answers.pop(0)
            if a is not None:
                return a
            return None
        self.activated.append(identifier)
        return True


class DictStorage:
    def __init__(self):
        self.d = {}

    def get(self, key):
        return self.d.get(key)

    def put(self, key, value):
        self.d[key] = bytes(value)

    def delete(self, key):
        self.d.pop(key, None)


def body(n, seed=7):
    # small ints only (a big-int generator allocates on every byte)
    b = bytearray(n)
    x = seed
    for i in range(n):
        x = (x * 75 + 74) % 65537
        b[i] = x & 0xFF
    return bytes(b)


def make_image(n):
    # n bytes: a body and its SHA-256 trailer
    return image.trailer_for(body(n - 32))


def setup(sink=None, storage=None, block_size=BS):
    sink = sink or RamSink()
    st = ImageState(sink, block_size, storage, "image")
    t = ((18, 0, LN, IMAGE_TRANSFER, 0, ACC, None),)
    ctx = make(t, [st])
    return ctx, t[0], st, sink


def call(ctx, obj, method, data=None):
    # ACTION with the raw A-XDR parameter bytes -> action-result
    ctx.r.reset(data if data is not None else b"")
    ctx.has_data = data is not None
    ctx.pos = 0
    ctx.cursor = 0
    return obj[base.E_IC].action(ctx, obj, method)


def initiate(ctx, obj, ident, size):
    return call(ctx, obj, 1, axdr.encoded(axdr.STRUCTURE, [(axdr.OCTET_STRING, ident), (axdr.DOUBLE_LONG_UNSIGNED, size)]))


def block_param(n, value):
    return axdr.encoded(axdr.STRUCTURE, [(axdr.DOUBLE_LONG_UNSIGNED, n), (axdr.OCTET_STRING, value)])


def send(ctx, obj, img, n, bs=BS):
    return call(ctx, obj, 2, block_param(n, img[n * bs : (n + 1) * bs]))


def verify(ctx, obj):
    return call(ctx, obj, 3, b"\x0f\x00")


def activate(ctx, obj):
    return call(ctx, obj, 4, b"\x0f\x00")


def status(ctx, obj):
    return get_ok(ctx, obj, 6)[1]


def bits(ctx, obj):
    out = get_ok(ctx, obj, 3)
    _t, v, _e = axdr.decode(out)
    return "".join(str(v.bit(i)) for i in range(v.nbits))


def first(ctx, obj):
    return axdr.decode(get_ok(ctx, obj, 4))[1]


def info(ctx, obj):
    return axdr.decode(get_ok(ctx, obj, 7))[1]


def test_attributes_before_any_transfer():
    ctx, obj, st, sink = setup()
    assert get_ok(ctx, obj, 2) == b"\x06\x00\x00\x00\xc8"  # image_block_size 200
    assert get_ok(ctx, obj, 3) == b"\x04\x00"  # no blocks
    assert get_ok(ctx, obj, 4) == b"\x06\x00\x00\x00\x00"
    assert get_ok(ctx, obj, 5) == b"\x03\x01"  # enabled
    assert get_ok(ctx, obj, 6) == b"\x16\x00"  # not initiated
    assert get_ok(ctx, obj, 7) == b"\x01\x00"  # nothing to activate
    assert get(ctx, obj, 8)[0] == base.READ_WRITE_DENIED
    assert st.max_blocks == 20 and len(st.bitmap) == 3


def test_transfer_in_order_verifies_and_activates():
    ctx, obj, st, sink = setup()
    img = make_image(1010)  # 6 blocks, the last one 10 bytes
    assert initiate(ctx, obj, b"fw-2.0", len(img)) == base.SUCCESS
    assert status(ctx, obj) == image.ST_INITIATED and sink.begun == 1
    assert bits(ctx, obj) == "000000" and first(ctx, obj) == 0
    for n in range(6):
        assert send(ctx, obj, img, n) == base.SUCCESS
        assert first(ctx, obj) == n + 1
    assert bits(ctx, obj) == "111111"
    assert bytes(sink.data[0:1010]) == img
    assert info(ctx, obj) == []  # not verified yet
    assert verify(ctx, obj) == base.SUCCESS
    assert status(ctx, obj) == image.ST_VERIFIED
    sig = img[-32:]
    assert info(ctx, obj) == [(axdr.STRUCTURE, [(axdr.DOUBLE_LONG_UNSIGNED, 1010), (axdr.OCTET_STRING, b"fw-2.0"), (axdr.OCTET_STRING, sig)])]
    assert activate(ctx, obj) == base.SUCCESS
    assert status(ctx, obj) == image.ST_ACTIVATED
    assert sink.activated == [b"fw-2.0"]
    # after activation no more blocks until a new initiate
    assert send(ctx, obj, img, 0) == base.OTHER_REASON


def test_blocks_out_of_order_bitmap_and_first_not_transferred():
    ctx, obj, st, sink = setup()
    img = make_image(1200)  # 6 full blocks
    assert initiate(ctx, obj, b"x", len(img)) == base.SUCCESS
    for n in (3, 0, 5, 1):
        assert send(ctx, obj, img, n) == base.SUCCESS
    assert bits(ctx, obj) == "110101"
    assert first(ctx, obj) == 2
    assert verify(ctx, obj) == base.OTHER_REASON  # blocks 2 and 4 missing
    assert status(ctx, obj) == image.ST_VERIFY_FAILED
    assert send(ctx, obj, img, 4) == base.SUCCESS
    assert status(ctx, obj) == image.ST_INITIATED  # a block after a verify
    assert first(ctx, obj) == 2
    assert send(ctx, obj, img, 1) == base.SUCCESS  # sent twice: fine
    assert send(ctx, obj, img, 2) == base.SUCCESS
    assert first(ctx, obj) == 6 and bits(ctx, obj) == "111111"
    assert verify(ctx, obj) == base.SUCCESS


def test_corrupted_block_fails_verification_and_activation():
    ctx, obj, st, sink = setup()
    img = make_image(1000)
    assert initiate(ctx, obj, b"fw", len(img)) == base.SUCCESS
    bad = bytearray(img)
    bad[450] ^= 0x01  # in block 2
    for n in range(5):
        assert send(ctx, obj, bad, n) == base.SUCCESS
    assert verify(ctx, obj) == base.OTHER_REASON
    assert status(ctx, obj) == image.ST_VERIFY_FAILED
    assert info(ctx, obj) == []
    # activation verifies first, and fails the same way; nothing activated
    assert activate(ctx, obj) == base.OTHER_REASON
    assert status(ctx, obj) == image.ST_VERIFY_FAILED and sink.activated == []
    # the good block sent again: verified, activated
    assert send(ctx, obj, img, 2) == base.SUCCESS
    assert activate(ctx, obj) == base.SUCCESS  # verification included
    assert status(ctx, obj) == image.ST_ACTIVATED and sink.activated == [b"fw"]


def test_corruption_in_the_sink_after_the_transfer_is_detected():
    ctx, obj, st, sink = setup()
    img = make_image(600)
    initiate(ctx, obj, b"fw", len(img))
    for n in range(3):
        send(ctx, obj, img, n)
    sink.data[599] ^= 0x80  # the trailer itself
    assert verify(ctx, obj) == base.OTHER_REASON
    sink.data[599] ^= 0x80
    assert verify(ctx, obj) == base.SUCCESS


def test_last_block_padded_to_the_block_size_is_accepted():
    ctx, obj, st, sink = setup()
    img = make_image(450)  # 3 blocks, the last one 50 bytes
    initiate(ctx, obj, b"fw", len(img))
    send(ctx, obj, img, 0)
    send(ctx, obj, img, 1)
    padded = img[400:] + bytes(150)
    assert call(ctx, obj, 2, block_param(2, padded)) == base.SUCCESS
    assert sink.data[450] == 0 and verify(ctx, obj) == base.SUCCESS


def test_refusals():
    ctx, obj, st, sink = setup()
    img = make_image(1000)
    # nothing initiated yet
    assert send(ctx, obj, img, 0) == base.OTHER_REASON
    assert verify(ctx, obj) == base.OTHER_REASON
    assert activate(ctx, obj) == base.OTHER_REASON
    # oversized image (capacity 4000), empty image, identifier too long
    assert initiate(ctx, obj, b"big", 4001) == base.OTHER_REASON
    assert initiate(ctx, obj, b"nil", 0) == base.OTHER_REASON
    assert initiate(ctx, obj, b"i" * 65, 100) == base.OTHER_REASON
    assert status(ctx, obj) == image.ST_NOT_INITIATED and sink.begun == 0
    assert initiate(ctx, obj, b"fw", 1000) == base.SUCCESS
    # block number past the last block (5 blocks: 0..4), negative
    assert send(ctx, obj, img, 5) == base.DATA_BLOCK_NUMBER_INVALID
    assert call(ctx, obj, 2, block_param(70000, b"x")) == base.DATA_BLOCK_NUMBER_INVALID
    neg = axdr.encoded(axdr.STRUCTURE, [(axdr.DOUBLE_LONG, -1), (axdr.OCTET_STRING, b"x")])
    assert call(ctx, obj, 2, neg) == base.TYPE_UNMATCHED
    # a value longer than the block size, a short block that is not the last
    assert call(ctx, obj, 2, block_param(0, img[0:201])) == base.OTHER_REASON
    assert call(ctx, obj, 2, block_param(0, img[0:199])) == base.OTHER_REASON
    # wrong shapes and types
    assert call(ctx, obj, 2, block_param(0, img[0:200])[0:5]) == base.TYPE_UNMATCHED  # truncated
    assert call(ctx, obj, 2, b"\x02\x01\x06\x00\x00\x00\x00") == base.TYPE_UNMATCHED
    assert call(ctx, obj, 2, b"\x09\x01\x00") == base.TYPE_UNMATCHED
    assert call(ctx, obj, 2) == base.TYPE_UNMATCHED
    assert call(ctx, obj, 1, axdr.encoded(axdr.STRUCTURE, [(axdr.VISIBLE_STRING, "fw"), (axdr.DOUBLE_LONG_UNSIGNED, 9)])) == base.TYPE_UNMATCHED
    assert call(ctx, obj, 3, b"\x09\x00") == base.TYPE_UNMATCHED
    assert call(ctx, obj, 5, b"\x0f\x00") == base.READ_WRITE_DENIED
    # nothing of that reached the bitmap
    assert bits(ctx, obj) == "00000" and first(ctx, obj) == 0
    # read-only attributes, a SET of the wrong type
    assert put(ctx, obj, 2, "06000000ff") == base.READ_WRITE_DENIED
    assert put(ctx, obj, 5, "1100") == base.TYPE_UNMATCHED


def test_disabled_transfer_refuses_initiate_and_blocks():
    ctx, obj, st, sink = setup()
    img = make_image(400)
    assert initiate(ctx, obj, b"fw", len(img)) == base.SUCCESS
    assert put(ctx, obj, 5, "0300") == base.SUCCESS
    assert get_ok(ctx, obj, 5) == b"\x03\x00"
    assert send(ctx, obj, img, 0) == base.OTHER_REASON
    assert initiate(ctx, obj, b"fw", len(img)) == base.OTHER_REASON
    assert put(ctx, obj, 5, "0301") == base.SUCCESS
    assert send(ctx, obj, img, 0) == base.SUCCESS


def test_initiate_again_starts_afresh():
    ctx, obj, st, sink = setup()
    img = make_image(1000)
    initiate(ctx, obj, b"one", len(img))
    send(ctx, obj, img, 0)
    send(ctx, obj, img, 1)
    assert initiate(ctx, obj, b"two", 400) == base.SUCCESS
    assert bits(ctx, obj) == "00" and first(ctx, obj) == 0 and sink.begun == 2


def test_pending_verification_and_activation():
    ctx, obj, st, sink = setup()
    img = make_image(400)
    initiate(ctx, obj, b"fw", len(img))
    send(ctx, obj, img, 0)
    send(ctx, obj, img, 1)
    sink.verify_answers = [None, None]
    assert verify(ctx, obj) == base.TEMPORARY_FAILURE
    assert status(ctx, obj) == image.ST_VERIFYING
    assert verify(ctx, obj) == base.TEMPORARY_FAILURE  # asked again: still running
    assert image.tick(ctx.meter, obj)  # the loop's call: the real check
    assert status(ctx, obj) == image.ST_VERIFIED
    sink.activate_answers = [None]
    assert activate(ctx, obj) == base.TEMPORARY_FAILURE
    assert status(ctx, obj) == image.ST_ACTIVATING
    assert verify(ctx, obj) == base.TEMPORARY_FAILURE  # activation running
    assert send(ctx, obj, img, 0) == base.OTHER_REASON
    assert image.finish(ctx.meter, obj, True)
    assert status(ctx, obj) == image.ST_ACTIVATED
    assert not image.finish(ctx.meter, obj, True)
    assert not image.tick(ctx.meter, obj)
    # an activation the port reports as failed
    sink.activate_answers = [None, False]
    assert activate(ctx, obj) == base.TEMPORARY_FAILURE
    assert image.tick(ctx.meter, obj)
    assert status(ctx, obj) == image.ST_ACTIVATE_FAILED


def test_resume_after_restart_from_the_persisted_state():
    store = DictStorage()
    activated = []

    def on_activate(ident):
        activated.append(ident)
        return True

    sink = StorageSink(store, 4000, BS, "img", on_activate)
    ctx, obj, st, _ = setup(sink, store)
    img = make_image(1000)
    assert initiate(ctx, obj, b"fw-3", len(img)) == base.SUCCESS
    for n in (0, 1, 3):
        assert send(ctx, obj, img, n) == base.SUCCESS
    assert store.get("img.3") == img[600:800]
    # power cut: a new state and sink over the same storage
    sink2 = StorageSink(store, 4000, BS, "img", on_activate)
    ctx2, obj2, st2, _ = setup(sink2, store)
    assert status(ctx2, obj2) == image.ST_INITIATED
    assert bits(ctx2, obj2) == "11010" and first(ctx2, obj2) == 2
    assert st2.identifier() == b"fw-3" and st2.size == 1000
    for n in (2, 4):
        assert send(ctx2, obj2, img, n) == base.SUCCESS
    assert verify(ctx2, obj2) == base.SUCCESS
    assert info(ctx2, obj2)[0][1][2] == (axdr.OCTET_STRING, img[-32:])
    assert activate(ctx2, obj2) == base.SUCCESS and activated == [b"fw-3"]
    # and the activated status survives another restart
    ctx3, obj3, st3, _ = setup(StorageSink(store, 4000, BS), store)
    assert status(ctx3, obj3) == image.ST_ACTIVATED
    # a new initiate drops the old blocks
    assert initiate(ctx3, obj3, b"fw-4", 300) == base.SUCCESS
    assert store.get("img.3") is None


def test_disabled_flag_and_a_cut_verification_persist():
    store = DictStorage()
    sink = RamSink()
    ctx, obj, st, _ = setup(sink, store)
    img = make_image(200)
    initiate(ctx, obj, b"fw", len(img))
    send(ctx, obj, img, 0)
    sink.verify_answers = [None]
    assert verify(ctx, obj) == base.TEMPORARY_FAILURE
    put(ctx, obj, 5, "0300")
    ctx2, obj2, st2, _ = setup(sink, store)
    assert status(ctx2, obj2) == image.ST_INITIATED  # verification restarts
    assert get_ok(ctx2, obj2, 5) == b"\x03\x00"
    # a record of another size (another configuration) is ignored
    ctx3, obj3, st3, _ = setup(RamSink(8000), store)
    assert status(ctx3, obj3) == image.ST_NOT_INITIATED


def test_storage_sink_without_an_update_path_refuses_activation():
    store = DictStorage()
    ctx, obj, st, sink = setup(StorageSink(store, 4000, BS), store)
    img = make_image(300)
    initiate(ctx, obj, b"fw", len(img))
    send(ctx, obj, img, 0)
    send(ctx, obj, img, 1)
    assert activate(ctx, obj) == base.OTHER_REASON
    assert status(ctx, obj) == image.ST_ACTIVATE_FAILED
    assert info(ctx, obj) != []  # verified all the same
    # a block size the sink was not made for
    ctx2, obj2, st2, _ = setup(StorageSink(DictStorage(), 4000, 100), None)
    assert initiate(ctx2, obj2, b"fw", 300) == base.HARDWARE_FAULT


def test_sha256_trailer_in_any_chunking():
    img = make_image(300)
    for step in (1, 7, 32, 150, 268, 269, 300):
        chk = Sha256Trailer(len(img))
        p = 0
        while p < len(img):
            chk.feed(img, p, min(p + step, len(img)))
            p += step
        assert chk.ok(), step
    short = Sha256Trailer(len(img))
    short.feed(img, 0, 299)
    assert not short.ok()
    tiny = Sha256Trailer(10)
    tiny.feed(b"0123456789")
    assert not tiny.ok()


def test_bitmap_of_many_blocks_goes_through_the_bit_string():
    ctx, obj, st, sink = setup(RamSink(4000), None, 16)  # 250 blocks
    img = make_image(4000)
    initiate(ctx, obj, b"fw", len(img))
    for n in range(0, 250, 3):
        send(ctx, obj, img, n, 16)
    b = bits(ctx, obj)
    assert len(b) == 250
    for n in range(250):
        assert b[n] == ("1" if n % 3 == 0 else "0"), n
    assert first(ctx, obj) == 1


def test_block_transfer_allocates_nothing_on_micropython():
    # the class's part of an image_block_transfer with a RAM sink (the sink
    # copies byte by byte; no persistence): 0 B
    ctx, obj, st, sink = setup()
    img = make_image(1000)
    initiate(ctx, obj, b"fw", len(img))
    req = block_param(3, img[600:800])
    r = ctx.r

    def one():
        r.reset(req)
        ctx.has_data = True
        IMAGE_TRANSFER.action(ctx, obj, 2)

    used = allocated(one)
    assert used is None or used == 0, used
    one()
    assert st.has(3) and bytes(sink.data[600:800]) == img[600:800]
