# The CPython port's image store (ports/cpython/dlms_micro_cpython/
# image_store.py): the file sink (blocks in place, SHA-256 trailer, the
# active copy), the firmware-version activator and its restore, and the sink
# image_state() picks for each kind of storage.

import os

import pytest
from dlms_micro.cosem import image
from dlms_micro.cosem.data import DATA
from dlms_micro.meter import Meter, Role
from dlms_micro_cpython import image_store
from dlms_micro_cpython.storage import FileStorage

FW = bytes((1, 0, 0, 2, 0, 255))


class MemoryStorage:
    # the storage interface in RAM
    def __init__(self):
        self.d = {}

    def get(self, key):
        return self.d.get(key)

    def put(self, key, value):
        self.d[key] = bytes(value)

    def delete(self, key):
        self.d.pop(key, None)
ACC = ((b"\x01\x01", b""),)


def meter(slot=0, param=(9, 0, 16)):
    t = ((1, 0, FW, DATA, slot, ACC, param),)
    return Meter(t, (Role(16),), [b"old"])


def test_file_sink_writes_blocks_in_place_and_verifies(tmp_path):
    data = image.trailer_for(os.urandom(700))  # 732 bytes
    sink = image_store.FileImageSink(str(tmp_path), 4096)
    assert sink.begin(len(data), 200)
    assert os.path.getsize(sink.path) == len(data)
    for n in (3, 1, 0, 2):
        chunk = data[n * 200 : (n + 1) * 200]
        assert sink.write(n * 200, bytearray(b"xx" + chunk), 2, len(chunk))
    assert sink.verify(len(data)) and sink.signature == data[-32:]
    assert not sink.verify(len(data) + 1)  # not the size transferred
    with open(sink.path, "r+b") as f:
        f.seek(100)
        f.write(b"\x00")
    assert not sink.verify(len(data)) and sink.signature == b""
    assert sink.activate(b"id") is False  # no on_activate: refused
    assert not os.path.exists(sink.active_path)


def test_version_activator_sets_and_stores_the_version(tmp_path):
    m = meter()
    store = FileStorage(str(tmp_path))
    act = image_store.version_activator(m, FW, store)
    assert act(b"fw 2.0") is True
    assert m.state[0] == b"fw 2.0" and store.get(image_store.STORE_KEY_VERSION) == b"fw 2.0"
    assert act(b"x" * 17) is False  # longer than the object's bound (16)
    assert m.state[0] == b"fw 2.0"
    m2 = meter()
    assert image_store.restore_version(m2, FW, store) and m2.state[0] == b"fw 2.0"
    assert not image_store.restore_version(meter(), FW, MemoryStorage())


def test_version_activator_needs_a_data_object_with_a_slot():
    with pytest.raises(ValueError, match="constant"):
        image_store.version_activator(meter(slot=-1, param=(9, 0, 16, b"v")), FW)
    with pytest.raises(ValueError, match="no Data object"):
        image_store.version_activator(meter(), bytes(6))


def test_activation_copies_the_image_beside_the_transfer(tmp_path):
    data = image.trailer_for(b"new firmware" * 50)
    seen = []
    sink = image_store.FileImageSink(str(tmp_path), 4096, lambda ident: seen.append(ident) or True)
    sink.begin(len(data), 200)
    for off in range(0, len(data), 200):
        sink.write(off, data, off, min(200, len(data) - off))
    assert sink.verify(len(data)) and sink.activate(b"v2") and seen == [b"v2"]
    with open(sink.active_path, "rb") as f:
        assert f.read() == data


def test_image_state_picks_the_sink_for_the_storage(tmp_path):
    st = image_store.image_state(FileStorage(str(tmp_path)), None, 8192, 128)
    assert isinstance(st.sink, image_store.FileImageSink) and st.block_size == 128 and st.max_blocks == 64
    st = image_store.image_state(MemoryStorage(), None, 8192, 128)
    assert isinstance(st.sink, image.StorageSink)
    assert st.status == image.ST_NOT_INITIATED and st.sink.capacity == 8192
