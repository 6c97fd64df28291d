# A meter built from a compiled meter definition (a module of constants made
# by tools/compile_meters.py from board/boards/esp32c3_battery.meter.json and
# committed here as esp32c3_battery_meter.py): the portable builder
# (dlms_micro.meterdef.build) makes the same meter under MicroPython as under
# CPython, byte for byte: the object list the meter reader sees is the one
# CPython computed. tests/cpython/test_meterdef_boards.py checks the fixture
# is what the definition compiles to today.

import sys

import esp32c3_battery_meter as DEFN
from cosem_support import get_ok, make
from dlms_micro.cosem import base
from dlms_micro.meterdef import build
from support import unhex

CURRENT_ASSOCIATION = b"\x00\x00\x28\x00\x00\xff"
LOAD_PROFILE = b"\x01\x00\x63\x01\x00\xff"

# attribute 2 of 0.0.40.0.0.255 read by the meter reader (client SAP 32):
# array of 12 object_list_elements {class, version, logical name, access
# rights}, computed on CPython 3 (the last two: the invocation counter the
# compiler adds for the management association, and the Push setup; issue 15)
OBJECT_LIST_READER = unhex(
    "010C020412000F110109060000280000FF0202010902030F0116010002030F0216010002030F0316010002030F041601"
    "0002030F0516010002030F0616010002030F0716000002030F0816010002030F09160100010402020F01160002020F02"
    "160002020F03160002020F041600020412000F110109060000280002FF0202010902030F0116010002030F0216010002"
    "030F0316010002030F0416010002030F0516010002030F0616010002030F0716000002030F0816010002030F09160100"
    "010402020F01160002020F02160002020F03160002020F04160002041200011100090600002A0000FF0202010202030F"
    "0116010002030F0216010001000204120001110009060000600100FF0202010202030F0116010002030F021601000100"
    "0204120008110009060000010000FF0202010902030F0116010002030F0216010002030F0316010002030F0416010002"
    "030F0516010002030F0616010002030F0716010002030F0816010002030F09160100010602020F01160002020F021600"
    "02020F03160002020F04160002020F05160002020F0616000204120003110009060100010800FF0202010302030F0116"
    "010002030F0216010002030F03160100010102020F0116000204120003110009060100020800FF0202010302030F0116"
    "010002030F0216010002030F03160100010102020F0116000204120017110109060000160000FF0202010902030F0116"
    "010002030F0216010002030F0316010002030F0416010002030F0516010002030F0616010002030F0716010002030F08"
    "16010002030F0916010001000204120011110009060000290000FF0202010202030F0116010002030F02160100010102"
    "020F0116000204120007110109060100630100FF0202010802030F0116010002030F02160101020F010F0202030F0316"
    "010002030F0416010002030F0516010002030F0616010002030F0716010002030F08160100010202020F01160002020F"
    "0216000204120028110009060000190900FF0202010702030F0116010002030F0216010002030F0316010002030F0416"
    "010002030F0516010002030F0616010002030F07160100010102020F01160002041200011100090600002B0100FF0202"
    "010202030F0116010002030F021601000100"
)


def _meter():
    return build.build(DEFN, lambda: 800000000)


def test_meterdef_build_object_list_is_the_one_cpython_encodes():
    m = _meter()
    ctx = make(m.table, m.state, meter_roles=m.roles, handlers=m.handlers, size=1024, role=1)
    out = get_ok(ctx, m.find(15, CURRENT_ASSOCIATION, 0), 2)
    assert len(out) == len(OBJECT_LIST_READER)
    assert out == OBJECT_LIST_READER


def test_meterdef_build_public_client_sees_its_six_objects():
    m = _meter()
    ctx = make(m.table, m.state, meter_roles=m.roles, handlers=m.handlers, size=1024, role=0)
    out = get_ok(ctx, m.find(15, CURRENT_ASSOCIATION, 0), 2)
    assert out[0:2] == b"\x01\x06"  # array of 6
    for ln in ("0000280000FF", "0000280001FF", "00002A0000FF", "0000010000FF", "0100010800FF", "00002B0100FF"):
        assert unhex("09 06" + ln) in out, ln
    assert unhex("09 06 0100020800FF") not in out  # export: the reader's only


def test_meterdef_build_roles_state_and_values():
    m = _meter()
    assert [(r.client_sap, r.mechanism, r.secret, r.name) for r in m.roles] == [
        (16, 0, b"", "public"), (32, 1, b"12345678", "reader"), (1, 5, b"", "management")]
    assert m.logical_device == 1
    ctx = make(m.table, m.state, meter_roles=m.roles, handlers=m.handlers, size=256, role=1)
    # logical device name, a constant of the table
    assert get_ok(ctx, m.find(1, b"\x00\x00\x2a\x00\x00\xff", 0), 2) == b"\x09\x10" + DEFN.NAME
    # IEC HDLC setup: the board's link (60 s inactivity, device address 17)
    hdlc = m.find(23, b"\x00\x00\x16\x00\x00\xff", 0)
    assert get_ok(ctx, hdlc, 8) == unhex("12 003C")
    assert get_ok(ctx, hdlc, 9) == unhex("12 0011")
    # SAP assignment: logical device 1 is the board's name
    assert get_ok(ctx, m.find(17, b"\x00\x00\x29\x00\x00\xff", 0), 2) == unhex("01 01 02 02 12 0001 09 10") + DEFN.NAME
    # the load profile: 96 rows of clock, import, export, held in RAM
    lp = m.find(7, LOAD_PROFILE, 0)
    ring = m.state[lp[base.E_SLOT]]
    assert ring.rows == 96 and ring.width == 27 and ring.count == 0
    assert get_ok(ctx, lp, 8) == unhex("06 00000060")
    assert get_ok(ctx, lp, 4) == unhex("06 00000384")


def test_meterdef_build_heap():
    # what a build costs when the definition is frozen (here: the module is
    # already imported): the handlers, roles, state list, the clock's slots
    # and the 96 x 27 B profile ring; MicroPython only
    if sys.implementation.name != "micropython":
        return
    import gc

    build.handlers(DEFN)  # imports the class modules (code: flash on a board)
    gc.collect()
    a = gc.mem_alloc()
    m = _meter()
    gc.collect()
    used = gc.mem_alloc() - a
    print("heap: meter from the compiled esp32c3_battery definition %d B (profile ring %d B)"
          % (used, 96 * 27))
    assert m is not None and used < 96 * 27 + 2048
