# gurux-dlms updates a meter's firmware through Image transfer (class 18):
# it reads image_block_size and image_transfer_enabled, initiates, sends a
# 4 KB image in 200-byte blocks (GXDLMSImageTransfer's own requests), checks
# the bitmap and the first not transferred block, verifies and activates;
# the firmware version string (1.0.0.2.0.255) then reads as the image's
# identification. A corrupted block makes image_verify fail (status 4) and
# activation is refused; out-of-range blocks and an oversized image are
# refused with their action-results; a transfer cut by a meter restart
# resumes from the persisted bitmap. Over the TCP wrapper and HDLC over TCP,
# as the management client (HLS-GMAC, suite 0: every block authenticated
# and encrypted).
#
# The meter: the demo meter, with its Image transfer object 0.0.44.0.0.255;
# its firmware version is a state slot that activation changes
# (image_store.version_activator), its image kept in a file of the data
# directory (image_store.FileImageSink).

import hashlib

import pytest
from interop_peers import HDLC_TCP, SECURE_SAP, WRAPPER, GuruxPeer, as_bytes
from interop_peers import gurux_code as code

IMAGE_LN = "0.0.44.0.0.255"
FIRMWARE_LN = "1.0.0.2.0.255"
BLOCK_SIZE = 200
CAPACITY = 1024 * 1024  # the demo meter's (demo.IMAGE_CAPACITY)
TRANSPORTS = (WRAPPER, HDLC_TCP)

# action-results
OTHER_REASON = 250
DATA_BLOCK_NUMBER_INVALID = 19
# image_transfer_status
INITIATED, VERIFIED, VERIFY_FAILED, ACTIVATED = 1, 3, 4, 6


def _ln(text):
    return bytes(int(x) for x in text.split("."))


def make_image_meter(storage, **kw):
    # The demo meter: its Image transfer object keeps the image in a file of
    # the data directory, and activation changes the firmware version.
    from dlms_micro_cpython.demo import DemoMeter

    return DemoMeter(storage=storage, seed=1, **kw)


def start_service(directory, counters=None):
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    store = FileStorage(directory)
    svc = ThreadedService(make_image_meter(store), host="127.0.0.1", wrapper_port=0, hdlc_port=0)
    if counters is not None:
        svc.hes_counters = counters  # the head-end's memory of the invocation counters
    svc.start()
    return svc


@pytest.fixture(scope="module")
def image_meter(tmp_path_factory):
    svc = start_service(str(tmp_path_factory.mktemp("image-meter")))
    try:
        yield svc
    finally:
        svc.stop()


def make_image(size, seed):
    # a body and its SHA-256 trailer (the meter's verification)
    body = hashlib.sha256(seed).digest() * ((size - 32) // 32 + 1)
    body = body[: size - 32]
    return body + hashlib.sha256(body).digest()


def session(svc, transport, sap=SECURE_SAP):
    p = GuruxPeer(svc, transport, sap=sap)
    try:
        p.connect()
    except Exception:
        print(p.trace_text())
        raise
    return p


def end(p):
    try:
        p.release()
        p.disconnect()
    finally:
        p.close()


def objects():
    from gurux_dlms.objects import GXDLMSData, GXDLMSImageTransfer

    return GXDLMSImageTransfer(IMAGE_LN), GXDLMSData(FIRMWARE_LN)


def bitmap(p, it):
    v = p.read(it, 3)
    return str(v)


def status(p, it):
    return int(p.read(it, 6))


def blocks(p, it, img):
    # GXDLMSImageTransfer's block requests for the whole image, one list of
    # frames per block. They carry the invocation counter and the HDLC
    # sequence numbers of the moment they are made: send them all, in order,
    # right away.
    return it.imageBlockTransfer(p.client, img, None)


def block_request(p, it, n, value):
    # One image_block_transfer, made now (a few blocks, in any order)
    from dlms_micro import axdr
    from gurux_dlms import GXByteBuffer
    from gurux_dlms.enums import DataType

    raw = axdr.encoded(axdr.STRUCTURE, [(axdr.DOUBLE_LONG_UNSIGNED, n), (axdr.OCTET_STRING, value)])
    return p.client.method(it, 2, GXByteBuffer(raw), DataType.ARRAY)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gurux_updates_the_firmware_and_the_version_changes(image_meter, transport):
    p = session(image_meter, transport)
    it, fw = objects()
    ident = "dlms_micro 0.2.%s" % transport
    img = make_image(4096, ident.encode())
    try:
        # what a head-end reads first
        assert p.read(it, 2) == BLOCK_SIZE and it.imageBlockSize == BLOCK_SIZE
        assert p.read(it, 5) is True
        p.method(it.imageTransferInitiate(p.client, ident, len(img)))
        assert status(p, it) == INITIATED
        for n in range(3):
            p.method(block_request(p, it, n, img[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE]))
        assert p.read(it, 4) == 3
        assert bitmap(p, it) == "111" + "0" * 18
        packets = blocks(p, it, img)  # all of it again, the way gurux sends it
        assert len(packets) == 21  # 20 x 200 bytes + 96
        for pk in packets:
            p.method(pk)
        assert p.read(it, 4) == 21
        assert bitmap(p, it) == "1" * 21
        p.method(it.imageVerify(p.client))
        assert status(p, it) == VERIFIED
        p.read(it, 7)
        info = it.imageActivateInfo
        assert len(info) == 1
        assert info[0].size == len(img)
        assert as_bytes(info[0].identification) == ident.encode()
        assert as_bytes(info[0].signature) == img[-32:]
        p.method(it.imageActivate(p.client))
        assert status(p, it) == ACTIVATED
        assert as_bytes(p.read(fw, 2)) == ident.encode()
    except Exception:
        print(p.trace_text())
        raise
    end(p)
    # the activated image is the meter's file now
    import os

    directory = image_meter.service.demo.storage.directory
    with open(os.path.join(directory, "image.active"), "rb") as f:
        assert f.read() == img


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_corrupted_block_fails_verification_and_nothing_is_activated(image_meter, transport):
    p = session(image_meter, transport)
    it, fw = objects()
    p.read(it, 2)
    before = as_bytes(p.read(fw, 2))
    ident = "corrupt-%s" % transport
    img = make_image(1500, ident.encode())
    bad = bytearray(img)
    bad[777] ^= 0x20  # in block 3
    p.method(it.imageTransferInitiate(p.client, ident, len(img)))
    for pk in blocks(p, it, bytes(bad)):
        p.method(pk)
    assert p.read(it, 4) == 8  # every block arrived
    assert code(p.method, it.imageVerify(p.client)) == OTHER_REASON
    assert status(p, it) == VERIFY_FAILED
    p.read(it, 7)
    assert it.imageActivateInfo == []
    assert code(p.method, it.imageActivate(p.client)) == OTHER_REASON
    assert as_bytes(p.read(fw, 2)) == before
    # the good block 3 sent again: verified
    p.method(block_request(p, it, 3, img[600:800]))
    assert status(p, it) == INITIATED
    p.method(it.imageVerify(p.client))
    assert status(p, it) == VERIFIED
    end(p)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_blocks_and_an_oversized_image_are_refused(image_meter, transport):
    p = session(image_meter, transport)
    it, _fw = objects()
    p.read(it, 2)
    # larger than the meter takes
    assert code(p.method, it.imageTransferInitiate(p.client, "huge", CAPACITY + 1)) == OTHER_REASON
    img = make_image(600, b"small")
    p.method(it.imageTransferInitiate(p.client, "small", len(img)))
    # block 3 of a 3-block image
    assert code(p.method, block_request(p, it, 3, bytes(200))) == DATA_BLOCK_NUMBER_INVALID
    # a block longer than image_block_size
    assert code(p.method, block_request(p, it, 0, bytes(201))) == OTHER_REASON
    assert p.read(it, 4) == 0 and bitmap(p, it) == "000"
    # blocks out of order are fine
    for n in (2, 0, 1):
        p.method(block_request(p, it, n, img[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE]))
    p.method(it.imageVerify(p.client))
    assert status(p, it) == VERIFIED
    end(p)
    # the reader (LLS) may read the object but not invoke its methods
    r = session(image_meter, transport, sap=32)
    assert r.read(it, 6) == VERIFIED
    assert code(r.method, it.imageVerify(r.client)) != 0
    end(r)


def test_transfer_resumes_after_a_meter_restart(tmp_path):
    directory = str(tmp_path / "meter")
    svc = start_service(directory)
    counters = None
    it, fw = objects()
    img = make_image(2000, b"resume")
    try:
        p = session(svc, WRAPPER)
        p.read(it, 2)
        p.method(it.imageTransferInitiate(p.client, "resumed", len(img)))
        for n in (0, 1, 2, 5, 6):
            p.method(block_request(p, it, n, img[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE]))
        end(p)
        counters = svc.hes_counters
    finally:
        svc.stop()
    svc = start_service(directory, counters)
    try:
        p = session(svc, WRAPPER)
        assert status(p, it) == INITIATED
        assert p.read(it, 4) == 3
        assert bitmap(p, it) == "1110011000"
        for n in (9, 3, 8, 4, 7):
            p.method(block_request(p, it, n, img[n * BLOCK_SIZE : (n + 1) * BLOCK_SIZE]))
        p.method(it.imageActivate(p.client))  # verification included
        assert status(p, it) == ACTIVATED
        assert as_bytes(p.read(fw, 2)) == b"resumed"
        end(p)
        counters = svc.hes_counters
    finally:
        svc.stop()
    # the new version survives another restart
    svc = start_service(directory, counters)
    try:
        p = session(svc, WRAPPER, sap=32)
        assert as_bytes(p.read(fw, 2)) == b"resumed"
        end(p)
    finally:
        svc.stop()
