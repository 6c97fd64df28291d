# gurux-dlms reads a Compact data object (class 62, version 0) of a running
# meter: capture_objects, template_id, capture_method, template_description
# and compact_buffer, and its own compact-array decoder (the one it uses for
# data type 19 and for class 62's buffer: the template's type description,
# the buffer's length, the buffer) turns the buffer into the clock and the
# two energies, which match what gurux reads from those objects directly
# around the capture. Management (SAP 1, HLS-GMAC) invokes capture and
# reset; the reader (SAP 32) may read but not act. Over the TCP wrapper and
# HDLC over TCP.
#
# gurux-dlms 1.0.203 for Python has no GXDLMSCompactData class (its .NET and
# Java libraries have one): it reads the object as a generic GXDLMSObject of
# type 62 (ObjectType.COMPACT_DATA) and decodes the buffer with
# _GXCommon.getData on a compact-array built from the template and the
# buffer, which is what GXDLMSCompactData.GetValues does in .NET.
#
# The meter: the demo meter with two Compact data objects appended to its
# table before the service starts (what the demo table entry would add; see
# compact_entries below): 0.0.66.0.1.255 capturing on method capture, and
# 0.0.66.0.2.255 capturing at every read of compact_buffer.

import pytest
from interop_peers import HDLC_TCP, SECURE_SAP, WRAPPER, GuruxPeer, PeerPool, as_bytes, connected
from interop_peers import gurux_code as code

COMPACT_LN = "0.0.66.0.1.255"
ON_READ_LN = "0.0.66.0.2.255"
CLOCK_LN = "0.0.1.0.0.255"
IMPORT_LN = "1.0.1.8.0.255"
EXPORT_LN = "1.0.2.8.0.255"
TEMPLATE_ID = 1
TRANSPORTS = (WRAPPER, HDLC_TCP)
READ_WRITE_DENIED = 3
TYPE_UNMATCHED = 12


def _ln(text):
    return bytes(int(x) for x in text.split("."))


def compact_entries(m, modes):
    # The Compact data entries for meter m's table and their state, as the
    # demo table would declare them (modes: demo_table._modes).
    from dlms_micro import axdr
    from dlms_micro.cosem import base, profile
    from dlms_micro.cosem.compact import CAPTURE_ON_READ, COMPACT_DATA, CompactBuffer

    R = base.READ
    dlu = profile.field_width(axdr.DOUBLE_LONG_UNSIGNED)
    cos = (
        (8, _ln(CLOCK_LN), 2, 0, profile.CLOCK_WIDTH),
        (3, _ln(IMPORT_LN), 2, 0, dlu),
        (3, _ln(EXPORT_LN), 2, 0, dlu),
    )
    # everyone in the association reads; management also resets / captures
    cd_ro = (modes(6, default=R), modes(2))
    cd_mgmt = (modes(6, default=R), modes(2, default=1))
    out = []
    # (the demo table has COMPACT_LN, CAPTURE_INVOKE itself; this adds the
    # capture-on-read one)
    for ln, method in ((ON_READ_LN, CAPTURE_ON_READ),):
        param = (cos, TEMPLATE_ID, method)
        out.append(((62, 0, _ln(ln), COMPACT_DATA, len(m.state), (None, cd_ro, cd_mgmt), param), CompactBuffer(param)))
        m.state.append(out[-1][1])
    return [e for e, _ in out]


def make_compact_meter(storage):
    from dlms_micro.cosem import common
    from dlms_micro_cpython.demo import DemoMeter, _modes

    # a minute of the meter's time per second: the energies move between
    # two readings, from values that tell import and export apart
    demo = DemoMeter(storage=storage, seed=1, accelerate=60)
    m = demo.meter
    for e in m.table:
        if e[2] == _ln(IMPORT_LN):
            m.state[e[4]] = 1234567
        elif e[2] == _ln(EXPORT_LN):
            m.state[e[4]] = 4321
    m.extend(compact_entries(m, _modes))
    common.check_table(m)
    return demo


@pytest.fixture(scope="module")
def compact_meter(tmp_path_factory):
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    store = FileStorage(str(tmp_path_factory.mktemp("compact-meter")))
    svc = ThreadedService(make_compact_meter(store), host="127.0.0.1", wrapper_port=0, hdlc_port=0)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def peers():
    pool = PeerPool()
    yield pool.keep
    pool.close_all()


def session(peers, svc, transport, sap=SECURE_SAP):
    return connected(peers(GuruxPeer(svc, transport, sap=sap)))


def end(p):
    p.release()
    p.disconnect()


def compact_object(ln):
    # gurux's object for class 62 (a generic GXDLMSObject in its Python library)
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import ObjectType

    o = GXDLMSClient.createObject(ObjectType.COMPACT_DATA)
    o.logicalName = ln
    return o


def raw(p, obj, attr):
    # The attribute's value as gurux parses the reply (no object update: the
    # generic object has no attribute model)
    return p._block(p.client.read(obj, attr), p._reply()).value


def gurux_values(template, buffer):
    # gurux's own decoding of a compact buffer with its template: the
    # compact-array 19 + template + length of the buffer + buffer
    from gurux_dlms import GXByteBuffer
    from gurux_dlms.internal._GXCommon import _GXCommon
    from gurux_dlms.internal._GXDataInfo import _GXDataInfo

    bb = GXByteBuffer()
    bb.setUInt8(19)
    bb.set(template)
    _GXCommon.setObjectCount(len(buffer), bb)
    bb.set(buffer)
    rows = _GXCommon.getData(None, bb, _GXDataInfo())
    assert len(rows) == 1, rows  # one capture: one row
    return rows[0]


def direct(p):
    # clock time (its 12 bytes) and the energies, read from the objects
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister

    clock = GXDLMSClock(CLOCK_LN)
    raw_time = as_bytes(raw(p, clock, 2))
    return raw_time, int(raw(p, GXDLMSRegister(IMPORT_LN), 2)), int(raw(p, GXDLMSRegister(EXPORT_LN), 2))


def seconds(dt12):
    # a Clock time (octet-string(12)) as seconds, to compare two of them
    import datetime

    d = datetime.datetime((dt12[0] << 8) | dt12[1], dt12[2], dt12[3], dt12[5], dt12[6], dt12[7])
    return d.timestamp()


def check_between(values, before, after):
    # a captured (time, import, export) lies between two direct readings
    t, imp, exp = values
    assert imp >= 1234567 and exp >= 4321, values
    assert before[1] <= imp <= after[1], (before, values, after)
    assert before[2] <= exp <= after[2], (before, values, after)
    assert seconds(before[0]) <= seconds(t) <= seconds(after[0]), (before, values, after)


def as_row(row):
    # gurux's decoded row -> (clock bytes, import, export)
    return as_bytes(row[0]), int(row[1]), int(row[2])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gurux_reads_the_static_attributes(compact_meter, peers, transport):
    p = session(peers, compact_meter, transport, sap=32)
    o = compact_object(COMPACT_LN)
    cos = raw(p, o, 3)
    assert [(int(c[0]), as_bytes(c[1]), int(c[2]), int(c[3])) for c in cos] == [
        (8, _ln(CLOCK_LN), 2, 0),
        (3, _ln(IMPORT_LN), 2, 0),
        (3, _ln(EXPORT_LN), 2, 0),
    ]
    assert int(raw(p, o, 4)) == TEMPLATE_ID
    assert int(raw(p, o, 6)) == 0
    assert int(raw(p, compact_object(ON_READ_LN), 6)) == 1
    # structure of octet-string (the clock's date-time) and two
    # double-long-unsigned
    assert as_bytes(raw(p, o, 5)) == bytes((2, 3, 9, 6, 6))
    end(p)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_gurux_decodes_a_captured_buffer_to_the_values_it_reads_directly(compact_meter, peers, transport):
    from gurux_dlms.enums import DataType

    p = session(peers, compact_meter, transport)
    o = compact_object(COMPACT_LN)
    template = as_bytes(raw(p, o, 5))
    before = direct(p)
    p.method(p.client.method(o, 2, 0, DataType.INT8))
    after = direct(p)
    buffer = as_bytes(raw(p, o, 2))
    assert len(buffer) == 13 + 4 + 4
    values = as_row(gurux_values(template, buffer))
    check_between(values, before, after)
    # capture_method 0: the buffer keeps that capture
    assert as_bytes(raw(p, o, 2)) == buffer
    # reset empties it
    p.method(p.client.method(o, 1, 0, DataType.INT8))
    assert as_bytes(raw(p, o, 2)) == b""
    end(p)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_capture_on_read_gives_the_values_of_the_read(compact_meter, peers, transport):
    p = session(peers, compact_meter, transport, sap=32)
    o = compact_object(ON_READ_LN)
    template = as_bytes(raw(p, o, 5))
    for _ in range(2):
        before = direct(p)
        buffer = as_bytes(raw(p, o, 2))
        after = direct(p)
        check_between(as_row(gurux_values(template, buffer)), before, after)
    end(p)


def test_the_reader_may_not_capture_or_reset(compact_meter, peers):
    from gurux_dlms.enums import DataType

    p = session(peers, compact_meter, WRAPPER, sap=32)
    o = compact_object(COMPACT_LN)
    assert code(p.method, p.client.method(o, 2, 0, DataType.INT8)) == READ_WRITE_DENIED
    assert code(p.method, p.client.method(o, 1, 0, DataType.INT8)) == READ_WRITE_DENIED
    end(p)
    p = session(peers, compact_meter, WRAPPER)
    # a capture parameter that is no integer
    assert code(p.method, p.client.method(o, 2, b"x", DataType.OCTET_STRING)) == TYPE_UNMATCHED
    assert code(p.method, p.client.method(o, 2, 0, DataType.INT8)) == 0
    end(p)
