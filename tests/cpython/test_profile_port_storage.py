# Profile generic persistence on the ports' own storages: the CPython port's
# FileStorage and the MicroPython port's FlashStorage (run here on CPython's
# filesystem) take the profile's reused page buffer (a bytearray, and a
# memoryview of it for a short last page), keep a copy, and give the ring
# back whole at the next boot; one record written per capture.

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "ports" / "micropython"))

from dlms_micro_cpython.storage import FileStorage  # noqa: E402
from dlms_micro_mp.storage import FlashStorage  # noqa: E402

from dlms_micro import axdr  # noqa: E402
from dlms_micro.cosem import profile  # noqa: E402
from dlms_micro.cosem.profile import PROFILE_GENERIC, ProfileBuffer  # noqa: E402
from dlms_micro.cosem.register import REGISTER  # noqa: E402
from dlms_micro.meter import Meter, Role  # noqa: E402

ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"
ACC = ((b"\x01\x01", b"\x00"), None)
PARAM = (((3, ENERGY_LN, 2, 0, profile.field_width(axdr.DOUBLE_LONG_UNSIGNED)),), 900, 10)
KEY = "demo.profile.1.0.99.1.0.255"


def energies(pb):
    out = []
    for a in range(pb.total - pb.count, pb.total):
        f = (a % pb.rows) * pb.width
        out.append(axdr.Reader(pb.data, f + 1, f + 1 + pb.data[f]).double_long_unsigned())
    return out


@pytest.mark.parametrize("kind", ["file", "flash"])
def test_ring_survives_a_restart_on_the_port_storage(tmp_path, kind):
    def store():
        return FileStorage(str(tmp_path)) if kind == "file" else FlashStorage(str(tmp_path))

    st = store()
    pb = ProfileBuffer(PARAM, st, KEY, page_rows=3)  # pages 3, 3, 3, 1
    assert pb.tail is not None
    table = (
        (3, 0, ENERGY_LN, REGISTER, 0, ACC, (0, 30)),
        (7, 1, b"\x01\x00\x63\x01\x00\xff", PROFILE_GENERIC, 1, ACC, PARAM),
    )
    m = Meter(table, (Role(16),), [0, pb])
    for v in range(13):
        m.state[0] = 1000 + v
        profile.capture(m, table[1])
    if kind == "flash":
        assert st.writes == 1 + 13  # the header, then one page a capture
    pb2 = ProfileBuffer(PARAM, store(), KEY, page_rows=3)
    assert (pb2.total, pb2.count, pb2.save_errors) == (13, 10, 0)
    assert energies(pb2) == list(range(1003, 1013))
    # the short last page went through the memoryview
    assert len(store().get(KEY + ".3")) == 11 + 6
    assert pb.reset()
    assert ProfileBuffer(PARAM, store(), KEY, page_rows=3).count == 0
    pb.defer()
    for v in range(4):
        m.state[0] = 2000 + v
        profile.capture(m, table[1])
    assert pb.flush() == 2
    assert energies(ProfileBuffer(PARAM, store(), KEY, page_rows=3)) == [2000, 2001, 2002, 2003]
