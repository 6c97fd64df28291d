# Profile generic (class 7): capture into the fixed-size ring, reset,
# overwrite when full, the static attributes, the buffer streamed in blocks
# through the xDLMS services, entry and range selective access.

from cosem_support import act, allocated, get, get_ok, make
from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.app.xdlms import Services
from dlms_micro.cosem import base, clock, profile
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.profile import PROFILE_GENERIC, ProfileBuffer
from dlms_micro.cosem.register import REGISTER
from dlms_micro.meter import Meter, Role
from support import unhex

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"
LP_LN = b"\x01\x00\x63\x01\x00\xff"
CLOCK_ACC = ((b"\x01\x01\x01\x01\x01\x01\x01\x01", b"\x00\x00\x00\x00\x00\x00"), None)
REG_ACC = ((b"\x01\x01", b"\x00"), None)
LP_ACC = ((b"\x01\x01\x01\x01\x01\x01\x01", b"\x01\x01"), None)
CAPTURE_OBJECTS = (
    (8, CLOCK_LN, 2, 0, profile.CLOCK_WIDTH),
    (3, ENERGY_LN, 2, 0, profile.field_width(axdr.DOUBLE_LONG_UNSIGNED)),
)
T0 = 1782900000  # 2026-07-01 10:00:00 UTC
SEL_ALL = (
    asn.CONF_GET | asn.CONF_SELECTIVE_ACCESS | asn.CONF_BLOCK_TRANSFER_WITH_GET | asn.CONF_ACTION
)


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def table(entries):
    param = (CAPTURE_OBJECTS, 900, entries)
    return (
        (8, 0, CLOCK_LN, CLOCK, 0, CLOCK_ACC, None),
        (3, 0, ENERGY_LN, REGISTER, 10, REG_ACC, (0, 30)),
        (7, 1, LP_LN, PROFILE_GENERIC, 11, LP_ACC, param),
    ), param


def state(param):
    return clock.initial_state() + [1000, ProfileBuffer(param)]


def setup(entries=4, size=512):
    t, param = table(entries)
    wall = Wall(T0)
    ctx = make(t, state(param), wall_clock=wall, size=size)
    return ctx, t[2], wall


def fill(meter, obj, wall, n, step=900):
    # n captures, 15 minutes apart, energy 1000, 1001, ...
    for i in range(n):
        profile.capture(meter, obj)
        wall.t += step
        meter.state[10] += 1


def dt_hex(h, mi, day=1):
    # octet-string(12) of 2026-07-<day> h:mi:00 UTC as the Clock writes it
    b = bytearray(12)
    dow = 3 + (day - 1) % 7
    if dow > 7:
        dow -= 7
    axdr.put_date_time(b, 0, 2026, 7, day, dow, h, mi, 0, 0xFF, 0, 0)
    return "090C" + b.hex()


def row_hex(h, mi, energy):
    return "0202" + dt_hex(h, mi) + "06%08x" % energy


def test_static_attributes():
    ctx, obj, wall = setup()
    assert get_ok(ctx, obj, 3) == unhex(
        "0102 0204 120008 0906 0000010000ff 0f02 120000"
        " 0204 120003 0906 0100010800ff 0f02 120000")
    assert get_ok(ctx, obj, 4) == unhex("0600000384")
    assert get_ok(ctx, obj, 5) == unhex("1601")
    assert get_ok(ctx, obj, 6) == unhex("0204 120000 0906 000000000000 0f00 120000")
    assert get_ok(ctx, obj, 7) == unhex("0600000000")
    assert get_ok(ctx, obj, 8) == unhex("0600000004")
    assert get(ctx, obj, 9)[0] == base.READ_WRITE_DENIED
    assert PROFILE_GENERIC.selectors(2) == 6 and PROFILE_GENERIC.selectors(3) == 0


def test_capture_reads_each_capture_object():
    ctx, obj, wall = setup()
    assert get_ok(ctx, obj, 2) == unhex("0100")
    fill(ctx.meter, obj, wall, 2)
    assert get_ok(ctx, obj, 7) == unhex("0600000002")
    assert get_ok(ctx, obj, 2) == unhex("0102" + row_hex(10, 0, 1000) + row_hex(10, 15, 1001))


def test_capture_and_reset_methods():
    ctx, obj, wall = setup()
    assert act(ctx, obj, 2, "0F00") == (base.SUCCESS, b"")
    assert get_ok(ctx, obj, 7) == unhex("0600000001")
    assert act(ctx, obj, 1, "0F00") == (base.SUCCESS, b"")
    assert get_ok(ctx, obj, 7) == unhex("0600000000")
    assert get_ok(ctx, obj, 2) == unhex("0100")
    assert act(ctx, obj, 2, "0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, obj, 3, "0F00")[0] == base.READ_WRITE_DENIED


def test_ring_overwrites_the_oldest_row():
    ctx, obj, wall = setup(entries=3)
    fill(ctx.meter, obj, wall, 5)
    assert get_ok(ctx, obj, 7) == unhex("0600000003")
    assert get_ok(ctx, obj, 2) == unhex(
        "0103" + row_hex(10, 30, 1002) + row_hex(10, 45, 1003) + row_hex(11, 0, 1004))


def test_unreadable_capture_object_is_null():
    t, param = table(2)
    cos = ((3, b"\x01\x00\x02\x08\x00\xff", 2, 0, 6), (3, ENERGY_LN, 1, 0, 9))
    p = (cos, 0, 2)
    t = t[:2] + ((7, 1, LP_LN, PROFILE_GENERIC, 11, LP_ACC, p),)
    ctx = make(t, clock.initial_state() + [7, ProfileBuffer(p)])
    profile.capture(ctx.meter, t[2])
    # no such register: null-data; attribute 1 (the logical name) itself
    assert get_ok(ctx, t[2], 2) == unhex("0101 0202 00 0906 0100010800ff")


def test_entry_descriptor():
    ctx, obj, wall = setup(entries=10)
    fill(ctx.meter, obj, wall, 5)

    def sel(params):
        ctx.r.reset(unhex(params))
        ctx.pos = 0
        ctx.cursor = 0
        ctx.selector = 2
        res = PROFILE_GENERIC.get(ctx, obj, 2)
        return res, bytes(ctx.buf[0:ctx.pos])

    # rows 2..3, all columns
    assert sel("0204 0600000002 0600000003 120000 120000") == (
        0, unhex("0102" + row_hex(10, 15, 1001) + row_hex(10, 30, 1002)))
    # rows 4..last, the second column only
    assert sel("0204 0600000004 0600000000 120002 120002") == (0, unhex("0102 0201 06000003eb 0201 06000003ec"))
    # past the end: nothing; to beyond the end: up to the last
    assert sel("0204 0600000009 0600000000 120000 120000") == (0, unhex("0100"))
    assert sel("0204 0600000005 0600000063 120001 120001") == (0, unhex("0101 0201" + dt_hex(11, 0)))
    # refused: wrong shapes and types, from > to, columns out of range
    assert sel("0203 0600000001 0600000000 120000")[0] == base.TYPE_UNMATCHED
    assert sel("0204 1200 0600000000 120000 120000")[0] == base.TYPE_UNMATCHED
    assert sel("0204 0600000001")[0] == base.TYPE_UNMATCHED
    assert sel("0204 0600000003 0600000002 120000 120000")[0] == base.OTHER_REASON
    assert sel("0204 0600000001 0600000000 120001 120003")[0] == base.OTHER_REASON


CLOCK_DEF = "0204 120008 0906 0000010000ff 0f02 120000"
ENERGY_DEF = "0204 120003 0906 0100010800ff 0f02 120000"


def range_get(ctx, obj, params):
    ctx.r.reset(unhex(params))
    ctx.pos = 0
    ctx.cursor = 0
    ctx.selector = 1
    res = PROFILE_GENERIC.get(ctx, obj, 2)
    return res, bytes(ctx.buf[0:ctx.pos])


def test_range_descriptor_by_time():
    ctx, obj, wall = setup(entries=10)
    fill(ctx.meter, obj, wall, 6)  # 10:00 .. 11:15
    res, out = range_get(ctx, obj, "0204" + CLOCK_DEF + dt_hex(10, 15) + dt_hex(10, 45) + "0100")
    assert res == 0
    assert out == unhex("0103" + row_hex(10, 15, 1001) + row_hex(10, 30, 1002) + row_hex(10, 45, 1003))
    # selected_values: the energy only; bounds with the date-time tag
    res, out = range_get(ctx, obj, "0204" + CLOCK_DEF + "19" + dt_hex(11, 0)[4:] + "19" + dt_hex(23, 0)[4:]
                         + "0101" + ENERGY_DEF)
    assert (res, out) == (0, unhex("0102 0201 06000003ec 0201 06000003ed"))


def test_range_descriptor_with_wildcards():
    ctx, obj, wall = setup(entries=10)
    fill(ctx.meter, obj, wall, 6)
    # any day, from 10:30 (minutes, seconds, hundredths unspecified in "to")
    lo = "090C ffff ff ff ff 0a 1e 00 ff 8000 ff"
    hi = "090C ffff ff ff ff 0b ff ff ff 8000 ff"
    res, out = range_get(ctx, obj, "0204" + CLOCK_DEF + lo + hi + "0101" + ENERGY_DEF)
    assert (res, out) == (0, unhex("0104 0201 06000003ea 0201 06000003eb 0201 06000003ec 0201 06000003ed"))


def test_range_descriptor_by_value():
    ctx, obj, wall = setup(entries=10)
    fill(ctx.meter, obj, wall, 6)
    res, out = range_get(ctx, obj, "0204" + ENERGY_DEF + "1203eb" + "06000003ec" + "0101" + CLOCK_DEF)
    assert (res, out) == (0, unhex("0102 0201" + dt_hex(10, 45) + "0201" + dt_hex(11, 0)))


def test_range_descriptor_refusals():
    ctx, obj, wall = setup(entries=10)
    fill(ctx.meter, obj, wall, 2)
    other = "0204 120003 0906 0100020800ff 0f02 120000"
    assert range_get(ctx, obj, "0204" + other + "120000 120005 0100")[0] == base.OTHER_REASON
    assert range_get(ctx, obj, "0204" + ENERGY_DEF + "120005 120000 0100")[0] == base.OTHER_REASON
    assert range_get(ctx, obj, "0204" + ENERGY_DEF + "120000" + dt_hex(1, 0) + "0100")[0] == base.OTHER_REASON
    assert range_get(ctx, obj, "0204" + ENERGY_DEF + "120000 120005 0101" + other)[0] == base.OTHER_REASON
    assert range_get(ctx, obj, "0204" + ENERGY_DEF + "0300 120005 0100")[0] == base.TYPE_UNMATCHED
    assert range_get(ctx, obj, "0203" + ENERGY_DEF + "120000 120005")[0] == base.TYPE_UNMATCHED
    assert range_get(ctx, obj, "0204 0203 1200 1200 1200 1200 1205 0100")[0] == base.TYPE_UNMATCHED


def services(entries, client_pdu):
    t, param = table(entries)
    wall = Wall(T0)
    meter = Meter(t, (Role(16),), state(param), wall)
    a = asn.AssociationState()
    a.status = asn.ASSOCIATED
    a.role = 0
    a.conformance = SEL_ALL
    a.client_max_pdu = client_pdu
    return meter, t[2], wall, Services(meter, a, client_pdu)


def call(svc, req, out, pdu):
    end = svc.handle(req, 0, len(req), out, 8, 8 + pdu)
    return bytes(out[8:end])


def read_all(s, req, out, pdu):
    # GET with block transfer; the reassembled raw data
    raw = b""
    block = call(s, req, out, pdu)
    n = 1
    while True:
        assert block[0:3] == unhex("C402C1") and block[8] == 0, block[:12]
        assert len(block) <= pdu
        r = axdr.Reader(block, 9)
        size = r.length()
        raw += block[r.pos:r.pos + size]
        if block[3]:
            return raw, n
        block = call(s, unhex("C002C1 %08x" % n), out, pdu)
        n += 1


def test_get_buffer_in_blocks_through_the_services():
    m, obj, wall, s = services(40, 128)
    fill(m, obj, wall, 45)  # 5 overwritten
    out = bytearray(8 + 128)
    raw, blocks = read_all(s, unhex("C001C1 0007 0100630100ff 02 00"), out, 128)
    assert blocks >= 7
    r = axdr.Reader(raw)
    assert r.array() == 40
    for i in range(40):
        assert r.structure() == 2
        r.octet_string()
        assert r.double_long_unsigned() == 1005 + i
    assert r.pos == len(raw)


def test_get_buffer_with_entry_selector_in_blocks():
    m, obj, wall, s = services(40, 64)
    fill(m, obj, wall, 40)
    out = bytearray(8 + 64)
    req = unhex("C001C1 0007 0100630100ff 02 01 02 0204 0600000005 0600000024 120002 120000")
    raw, blocks = read_all(s, req, out, 64)
    r = axdr.Reader(raw)
    assert r.array() == 32
    for i in range(32):
        assert r.structure() == 1
        assert r.double_long_unsigned() == 1004 + i
    assert r.pos == len(raw)


def test_buffer_continuation_allocates_nothing_on_micropython():
    # the handler's part of a GET-next: rows from the cursor on, 0 B
    ctx, obj, wall = setup(entries=30, size=100)
    fill(ctx.meter, obj, wall, 30)
    res, out = get(ctx, obj, 2)
    assert res == 0 and ctx.cursor > 1
    cur = ctx.cursor

    def more():
        ctx.pos = 0
        ctx.cursor = cur
        PROFILE_GENERIC.get(ctx, obj, 2)

    used = allocated(more)
    assert used is None or used == 0, used


def test_get_next_blocks_through_the_services_allocate_little():
    # GET-next blocks of a profile through the dispatcher: the profile adds
    # nothing; the dispatcher's copy of each block costs one 16-byte
    # memoryview slice (of a view made once, in xdlms.py)
    m, obj, wall, s = services(30, 128)
    fill(m, obj, wall, 30)
    out = bytearray(8 + 128)
    first = unhex("C001C1 0007 0100630100ff 02 00")
    nexts = []
    for n in range(1, 4):
        nexts.append(unhex("C002C1 %08x" % n))

    def first_only():
        s.handle(first, 0, len(first), out, 8, 136)

    def go():
        s.handle(first, 0, len(first), out, 8, 136)
        for q in nexts:
            s.handle(q, 0, len(q), out, 8, 136)

    used = allocated(go)
    if used is not None:
        per_next = (used - allocated(first_only)) // 3
        assert per_next <= 16, per_next


def test_persistent_ring_survives_a_restart():
    # (pages, epochs, power cuts: test_cosem_profile_storage.py)
    class Store:
        def __init__(self):
            self.d = {}

        def get(self, k):
            return self.d.get(k)

        def put(self, k, v):
            self.d[k] = bytes(v)  # v is the profile's reused page buffer

    st = Store()
    t, param = table(3)
    wall = Wall(T0)
    meter = Meter(t, (Role(16),), clock.initial_state() + [1000, ProfileBuffer(param, st, "lp1")], wall)
    fill(meter, t[2], wall, 4)
    pb = ProfileBuffer(param, st, "lp1")
    assert (pb.total, pb.count) == (4, 3)
    assert pb.data == meter.state[11].data
    st.d["lp1"] = b"\x00" * 5  # a damaged header: a new, empty epoch
    assert ProfileBuffer(param, st, "lp1").count == 0


def test_thousand_rows_through_a_128_byte_pdu():
    # 1000 rows read in blocks of a 128-byte PDU: the dispatcher's block
    # buffer is PDU-sized, so the buffer is never built whole
    cos = ((3, ENERGY_LN, 2, 0, profile.field_width(axdr.DOUBLE_LONG_UNSIGNED)),)
    param = (cos, 900, 1000)
    t = (
        (3, 0, ENERGY_LN, REGISTER, 0, REG_ACC, (0, 30)),
        (7, 1, LP_LN, PROFILE_GENERIC, 1, LP_ACC, param),
    )
    meter = Meter(t, (Role(16),), [0, ProfileBuffer(param)])
    for i in range(1000):
        meter.state[0] = i
        profile.capture(meter, t[1])
    a = asn.AssociationState()
    a.status = asn.ASSOCIATED
    a.role = 0
    a.conformance = SEL_ALL
    a.client_max_pdu = 128
    s = Services(meter, a, 128)
    out = bytearray(8 + 128)
    raw = bytearray(8000)
    got = 0
    req = unhex("C001C1 0007 0100630100ff 02 00")
    n = 0
    while True:
        end = s.handle(req, 0, len(req), out, 8, 136)
        assert end - 8 <= 128 and out[8:11] == b"\xc4\x02\xc1" and out[16] == 0
        r = axdr.Reader(out, 17, end)
        size = r.length()
        raw[got:got + size] = out[r.pos:r.pos + size]
        got += size
        n += 1
        if out[11]:
            break
        req = unhex("C002C1 %08x" % n)
    assert n > 50
    r = axdr.Reader(raw, 0, got)
    assert r.array() == 1000
    for i in range(1000):
        assert r.structure() == 1
        assert r.double_long_unsigned() == i
    assert r.pos == got


def test_rows_overwritten_during_a_transfer_abort_it():
    ctx, obj, wall = setup(entries=6, size=50)
    fill(ctx.meter, obj, wall, 6)
    res, out = get(ctx, obj, 2)
    assert res == 0 and ctx.cursor == 3  # header + 2 rows
    cur = ctx.cursor
    profile.capture(ctx.meter, obj)  # the oldest row goes: rows shift
    ctx.pos = 0
    ctx.cursor = cur
    assert PROFILE_GENERIC.get(ctx, obj, 2) == base.SUCCESS  # row 3 is still there
    cur = ctx.cursor
    fill(ctx.meter, obj, wall, 5)
    ctx.pos = 0
    ctx.cursor = cur
    assert PROFILE_GENERIC.get(ctx, obj, 2) == base.LONG_GET_ABORTED


def test_reset_during_a_transfer_aborts_it_even_after_new_rows():
    # rows captured after a reset have the old absolute numbers: the
    # transfer must not go on with them
    ctx, obj, wall = setup(entries=6, size=50)
    fill(ctx.meter, obj, wall, 4)
    res, out = get(ctx, obj, 2)
    assert res == 0 and ctx.cursor == 3
    cur = ctx.cursor
    assert act(ctx, obj, 1, "0F00")[0] == base.SUCCESS
    fill(ctx.meter, obj, wall, 6)
    ctx.pos = 0
    ctx.cursor = cur
    assert PROFILE_GENERIC.get(ctx, obj, 2) == base.LONG_GET_ABORTED


def test_capture_of_a_register_allocates_nothing_on_micropython():
    cos = ((3, ENERGY_LN, 2, 0, 6),)
    param = (cos, 900, 8)
    t = (
        (3, 0, ENERGY_LN, REGISTER, 0, REG_ACC, (0, 30)),
        (7, 1, LP_LN, PROFILE_GENERIC, 1, LP_ACC, param),
    )
    meter = Meter(t, (Role(16),), [5, ProfileBuffer(param)])

    def cap():
        profile.capture(meter, t[1])

    used = allocated(cap)
    assert used is None or used == 0, used


def test_tick_captures_at_each_capture_period_boundary():
    ctx, obj, wall = setup(entries=10)
    m = ctx.meter
    t = T0 + 100  # 10:01:40
    assert not profile.tick(m, obj, t)  # first call: notes the period
    assert not profile.tick(m, obj, t + 700)  # 10:13:20
    wall.t = T0 + 900
    assert profile.tick(m, obj, T0 + 900)  # 10:15:00
    assert not profile.tick(m, obj, T0 + 901)
    assert not profile.tick(m, obj, None)
    assert get_ok(ctx, obj, 2) == unhex("0101" + row_hex(10, 15, 1000))


def test_two_clients_read_the_same_profile_at_once():
    # each channel keeps its own selection: a second client's GET (another
    # selection) between the blocks of the first does not disturb it
    m, obj, wall, s1 = services(40, 128)
    fill(m, obj, wall, 40)
    a2 = asn.AssociationState()
    a2.status = asn.ASSOCIATED
    a2.role = 0
    a2.conformance = SEL_ALL
    a2.client_max_pdu = 64
    s2 = Services(m, a2, 64)
    out1 = bytearray(8 + 128)
    out2 = bytearray(8 + 64)
    first = call(s1, unhex("C001C1 0007 0100630100ff 02 00"), out1, 128)
    assert first[3] == 0  # more blocks to come
    # the second client: rows 5..36, the energy column only, in blocks
    req = unhex("C001C1 0007 0100630100ff 02 01 02 0204 0600000005 0600000024 120002 120000")
    raw2, _ = read_all(s2, req, out2, 64)
    r = axdr.Reader(raw2)
    assert r.array() == 32 and r.structure() == 1 and r.double_long_unsigned() == 1004
    # the first client goes on where it was: all 40 rows, both columns
    rest, n = b"", 1
    block = first
    while True:
        rr = axdr.Reader(block, 9)
        size = rr.length()
        rest += block[rr.pos:rr.pos + size]
        if block[3]:
            break
        block = call(s1, unhex("C002C1 %08x" % n), out1, 128)
        n += 1
    r = axdr.Reader(rest)
    assert r.array() == 40
    for i in range(40):
        assert r.structure() == 2
        r.octet_string()
        assert r.double_long_unsigned() == 1000 + i
    assert r.pos == len(rest)


def test_range_columns_come_in_the_order_asked_and_not_twice():
    ctx, obj, wall = setup(entries=10)
    fill(ctx.meter, obj, wall, 3)
    res, out = range_get(ctx, obj, "0204" + CLOCK_DEF + dt_hex(10, 15) + dt_hex(10, 15) + "0102" + ENERGY_DEF + CLOCK_DEF)
    assert (res, out) == (0, unhex("0101 0202 06000003e9" + dt_hex(10, 15)))
    res, out = range_get(ctx, obj, "0204" + CLOCK_DEF + dt_hex(10, 15) + dt_hex(10, 15) + "0102" + ENERGY_DEF + ENERGY_DEF)
    assert res == base.OTHER_REASON


class Faulty(base.InterfaceClass):
    # a class whose get() fails with an unexpected exception
    class_id = 1
    attribute_count = 2

    def get(self, ctx, obj, attr):
        raise ValueError("broken handler")


def test_a_capture_object_whose_handler_fails_captures_null_and_logs():
    cos = ((1, b"\x00\x00\x60\x0b\x00\xff", 2, 0, 4), (3, ENERGY_LN, 2, 0, 6))
    p = (cos, 0, 2)
    t = ((1, 0, b"\x00\x00\x60\x0b\x00\xff", Faulty(), -1, ((b"\x01\x01", b""), None), None),
         (3, 0, ENERGY_LN, REGISTER, 0, REG_ACC, (0, 30)),
         (7, 1, LP_LN, PROFILE_GENERIC, 1, LP_ACC, p))
    ctx = make(t, [1000, ProfileBuffer(p)])
    lines = []
    ctx.meter.log = lines.append
    profile.capture(ctx.meter, t[2])
    assert get_ok(ctx, t[2], 2) == unhex("0101 0202 00 06000003e8")
    assert len(lines) == 1 and "0.0.96.11.0.255" in lines[0] and "broken handler" in lines[0]
