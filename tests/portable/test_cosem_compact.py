# Compact data (class 62): the template and the tag-less buffer of a clock
# and an energy register, what a nested value (structure, array, data_index)
# becomes, the template fixed by the first capture (a value of another type
# later fails the capture), both capture methods, reset, a failing capture
# object, the refusals, and what a capture allocates.

from cosem_support import act, allocated, get, get_ok, make, put
from dlms_micro import axdr
from dlms_micro.cosem import base, clock, common, compact, profile
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.compact import COMPACT_DATA, CompactBuffer
from dlms_micro.cosem.data import DATA
from dlms_micro.cosem.register import REGISTER
from support import unhex

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
IMPORT_LN = b"\x01\x00\x01\x08\x00\xff"
EXPORT_LN = b"\x01\x00\x02\x08\x00\xff"
ODD_LN = b"\x00\x00\x60\x0b\x00\xff"  # a Data object of any type
CD_LN = b"\x00\x00\x42\x00\x01\xff"  # 0.0.66.0.1.255
CLOCK_ACC = ((b"\x01" * 9, b"\x00" * 6), None)
REG_ACC = ((b"\x01\x01\x01", b"\x00"), None)
DATA_ACC = ((b"\x01\x03", b""), None)
CD_ACC = ((b"\x01" * 6, b"\x01\x01"), None)
DLU_WIDTH = profile.field_width(axdr.DOUBLE_LONG_UNSIGNED)
CAPTURE_OBJECTS = (
    (8, CLOCK_LN, 2, 0, profile.CLOCK_WIDTH),
    (3, IMPORT_LN, 2, 0, DLU_WIDTH),
    (3, EXPORT_LN, 2, 0, DLU_WIDTH),
)
T0 = 1782900000  # 2026-07-01 10:00:00 UTC
# the clock's octet-string(12) for T0, as its GET writes it
T0_DT = "0c07ea0701030a0000ff000000"
# slots: clock 0..9, import 10, export 11, odd 12, compact 13
IMPORT = 10
EXPORT = 11
ODD = 12


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


class Faulty(base.InterfaceClass):
    # a class whose get() fails with an unexpected exception
    class_id = 1
    attribute_count = 2

    def get(self, ctx, obj, attr):
        raise ValueError("broken handler")


def setup(cos=CAPTURE_OBJECTS, method=compact.CAPTURE_INVOKE, odd=b"\x00", extra=()):
    param = (cos, 7, method)
    t = (
        (8, 0, CLOCK_LN, CLOCK, 0, CLOCK_ACC, None),
        (3, 0, IMPORT_LN, REGISTER, IMPORT, REG_ACC, (0, 30)),
        (3, 0, EXPORT_LN, REGISTER, EXPORT, REG_ACC, (0, 30)),
        (1, 0, ODD_LN, DATA, ODD, DATA_ACC, None),
        (62, 0, CD_LN, COMPACT_DATA, 13, CD_ACC, param),
    ) + extra
    st = clock.initial_state() + [1000, 20, odd, CompactBuffer(param)]
    ctx = make(t, st, wall_clock=Wall(T0))
    lines = []
    ctx.meter.log = lines.append
    return ctx, t[4], lines


def as_compact_array(template, buf):
    # The compact-array a client makes of a template and one buffer: tag 19,
    # the description, the contents' length, the contents
    b = bytearray()
    b.append(axdr.COMPACT_ARRAY)
    b.extend(template)
    n = bytearray(5)
    b.extend(n[0 : axdr.put_length(n, 0, len(buf))])
    b.extend(buf)
    return bytes(b)


def octets(out):
    # the contents of an encoded octet-string
    r = axdr.Reader(out)
    n = r.octet_string()
    return bytes(out[r.mark : r.mark + n])


def test_capture_keeps_the_values_without_their_tags():
    ctx, obj, lines = setup()
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 5) == unhex("0905 0203 09 06 06")
    assert get_ok(ctx, obj, 2) == unhex("0915" + T0_DT + "000003e8 00000014")
    assert lines == []


def test_the_buffer_decodes_with_its_template_to_the_values_read_directly():
    ctx, obj, _ = setup()
    compact.capture(ctx.meter, obj)
    arr = as_compact_array(octets(get_ok(ctx, obj, 5)), octets(get_ok(ctx, obj, 2)))
    tag, rows, end = axdr.decode(arr)
    assert end == len(arr) and tag == axdr.COMPACT_ARRAY
    direct = []
    for e in ctx.meter.table[0:3]:
        direct.append(axdr.decode(get_ok(ctx, e, 2))[1])
    desc, rows = rows
    assert desc == (axdr.STRUCTURE, [axdr.OCTET_STRING, axdr.DOUBLE_LONG_UNSIGNED, axdr.DOUBLE_LONG_UNSIGNED])
    assert rows == [direct], (rows, direct)


def test_static_attributes():
    ctx, obj, _ = setup(method=compact.CAPTURE_ON_READ)
    assert get_ok(ctx, obj, 3) == unhex(
        "0103"
        "0204 120008 09060000010000ff 0f02 120000"
        "0204 120003 09060100010800ff 0f02 120000"
        "0204 120003 09060100020800ff 0f02 120000"
    )
    assert get_ok(ctx, obj, 4) == unhex("1107")
    assert get_ok(ctx, obj, 6) == unhex("1601")


def test_before_any_capture_the_buffer_is_empty_and_the_template_is_found_on_read():
    ctx, obj, _ = setup()
    assert get_ok(ctx, obj, 2) == unhex("0900")
    assert get_ok(ctx, obj, 5) == unhex("0905 0203 09 06 06")
    assert get_ok(ctx, obj, 2) == unhex("0900")  # reading the template captured nothing


def test_capture_method_invoke_keeps_the_buffer_until_the_next_capture():
    ctx, obj, _ = setup()
    assert act(ctx, obj, 2, "0f00") == (base.SUCCESS, b"")
    first = get_ok(ctx, obj, 2)
    ctx.meter.state[IMPORT] = 1234
    assert get_ok(ctx, obj, 2) == first
    assert act(ctx, obj, 2) == (base.SUCCESS, b"")
    assert get_ok(ctx, obj, 2) == unhex("0915" + T0_DT + "000004d2 00000014")


def test_capture_method_on_read_captures_at_every_read():
    ctx, obj, _ = setup(method=compact.CAPTURE_ON_READ)
    assert get_ok(ctx, obj, 2) == unhex("0915" + T0_DT + "000003e8 00000014")
    ctx.meter.state[EXPORT] = 21
    ctx.meter.wall_clock.t += 60
    assert get_ok(ctx, obj, 2) == unhex("0915" + T0_DT[0:14] + "0100ff000000" + "000003e8 00000015")


def test_reset_empties_the_buffer_and_keeps_the_template():
    ctx, obj, _ = setup()
    compact.capture(ctx.meter, obj)
    assert act(ctx, obj, 1, "1100") == (base.SUCCESS, b"")
    assert get_ok(ctx, obj, 2) == unhex("0900")
    assert get_ok(ctx, obj, 5) == unhex("0905 0203 09 06 06")


def test_a_structure_value_keeps_its_elements_contents_in_order():
    # {long-unsigned 5, visible-string "abc", array of 2 unsigned {1, 2}}
    value = unhex("0203 120005 0a03616263 0102 1101 1102")
    cos = ((1, ODD_LN, 2, 0, 20), (3, IMPORT_LN, 2, 0, DLU_WIDTH))
    ctx, obj, _ = setup(cos, odd=value)
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 5) == unhex("090b 0202 0203 12 0a 01000211 06")
    assert get_ok(ctx, obj, 2) == unhex("090c 0005 03616263 01 02 000003e8")
    arr = as_compact_array(octets(get_ok(ctx, obj, 5)), octets(get_ok(ctx, obj, 2)))
    assert axdr.decode(arr)[2] == len(arr)


def test_data_index_takes_one_element_of_a_structure():
    value = unhex("0203 120005 0a03616263 0102 1101 1102")
    ctx, obj, _ = setup(((1, ODD_LN, 2, 2, 20), (1, ODD_LN, 2, 3, 20)), odd=value)
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 5) == unhex("0907 0202 0a 01000211")
    assert get_ok(ctx, obj, 2) == unhex("0906 03616263 0102")


def test_data_index_past_the_elements_fails_the_capture():
    value = unhex("0202 1101 1102")
    ctx, obj, lines = setup(((1, ODD_LN, 2, 3, 20),), odd=value)
    assert not compact.capture(ctx.meter, obj)
    assert len(lines) == 1 and "0.0.66.0.1.255" in lines[0]


def test_a_value_of_another_type_than_the_template_fails_the_capture():
    cos = ((1, ODD_LN, 2, 0, 8), (3, IMPORT_LN, 2, 0, DLU_WIDTH))
    ctx, obj, lines = setup(cos, odd=unhex("120005"))
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 5) == unhex("0904 0202 12 06")
    ctx.meter.state[ODD] = b"\x00"  # the value is now null-data
    assert act(ctx, obj, 2) == (base.TEMPORARY_FAILURE, b"")
    assert get_ok(ctx, obj, 2) == unhex("0900")  # no stale values
    assert get_ok(ctx, obj, 5) == unhex("0904 0202 12 06")  # the template stays
    assert len(lines) == 1 and "template" in lines[0]
    ctx.meter.state[ODD] = unhex("120006")  # back to its type
    assert act(ctx, obj, 2) == (base.SUCCESS, b"")
    assert get_ok(ctx, obj, 2) == unhex("0906 0006 000003e8")
    assert ctx.meter.state[13].failures == 1


def test_an_array_of_another_size_than_the_template_fails_the_capture():
    ctx, obj, lines = setup(((1, ODD_LN, 2, 0, 20),), odd=unhex("0102 1101 1102"))
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 5) == unhex("0906 0201 01000211")
    ctx.meter.state[ODD] = unhex("0103 1101 1102 1103")
    assert not compact.capture(ctx.meter, obj)
    assert len(lines) == 1 and "template" in lines[0]
    ctx.meter.state[ODD] = unhex("0102 1107 1108")
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 2) == unhex("0902 0708")


def test_a_null_value_cannot_make_the_template():
    # null-data has no contents: a template naming it would fix a value as
    # always missing, so the capture waits for a value
    cos = ((1, ODD_LN, 2, 0, 8), (3, IMPORT_LN, 2, 0, DLU_WIDTH))
    ctx, obj, lines = setup(cos, odd=b"\x00")
    assert not compact.capture(ctx.meter, obj)
    assert get(ctx, obj, 5)[0] == base.TEMPORARY_FAILURE
    ctx.meter.state[ODD] = unhex("1101")
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 5) == unhex("0904 0202 11 06")
    assert get_ok(ctx, obj, 2) == unhex("0905 01 000003e8")


def test_values_that_cannot_be_described_fail_the_capture():
    # an empty array (no element type), an array of elements of two types
    for value in ("0100", "0102 1101 1201 00"):
        ctx, obj, lines = setup(((1, ODD_LN, 2, 0, 20),), odd=unhex(value))
        assert not compact.capture(ctx.meter, obj), value
        assert len(lines) == 1, value
        assert get_ok(ctx, obj, 2) == unhex("0900")


def test_strings_of_different_lengths_make_one_array_type():
    # their lengths are in the contents
    ctx, obj, _ = setup(((1, ODD_LN, 2, 0, 20),), odd=unhex("0102 0a0161 0a026263"))
    assert compact.capture(ctx.meter, obj)
    assert get_ok(ctx, obj, 5) == unhex("0906 0201 0100020a")
    assert get_ok(ctx, obj, 2) == unhex("0905 0161 026263")


def test_a_value_longer_than_its_width_fails_the_capture():
    ctx, obj, lines = setup(((1, ODD_LN, 2, 0, 4),), odd=unhex("0a0461626364"))
    assert not compact.capture(ctx.meter, obj)
    assert len(lines) == 1


def test_a_capture_object_whose_class_raises_is_logged_and_the_capture_fails():
    faulty = (1, 0, b"\x00\x00\x60\x0c\x00\xff", Faulty(), -1, ((b"\x01\x01", b""), None), None)
    cos = ((3, IMPORT_LN, 2, 0, DLU_WIDTH), (1, faulty[2], 2, 0, 6))
    ctx, obj, lines = setup(cos, extra=(faulty,))
    assert act(ctx, obj, 2) == (base.TEMPORARY_FAILURE, b"")
    assert len(lines) == 1 and "broken handler" in lines[0] and "0.0.66.0.1.255" in lines[0]
    assert get_ok(ctx, obj, 2) == unhex("0900")
    assert get(ctx, obj, 5)[0] == base.TEMPORARY_FAILURE  # no template without a capture


def test_capture_on_read_of_a_failing_object_refuses_the_get():
    faulty = (1, 0, b"\x00\x00\x60\x0c\x00\xff", Faulty(), -1, ((b"\x01\x01", b""), None), None)
    ctx, obj, lines = setup(((1, faulty[2], 2, 0, 6),), method=compact.CAPTURE_ON_READ, extra=(faulty,))
    assert get(ctx, obj, 2)[0] == base.TEMPORARY_FAILURE
    assert len(lines) == 1


def test_a_missing_capture_object_fails_the_capture():
    ctx, obj, lines = setup(((3, b"\x01\x00\x03\x08\x00\xff", 2, 0, DLU_WIDTH),))
    assert not compact.capture(ctx.meter, obj)
    assert len(lines) == 1 and "no such object" in lines[0]


def test_refusals():
    ctx, obj, _ = setup()
    for attr in (2, 3, 4, 5, 6):
        assert put(ctx, obj, attr, "1100") == base.READ_WRITE_DENIED
    assert get(ctx, obj, 7)[0] == base.READ_WRITE_DENIED
    assert act(ctx, obj, 1, "0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, obj, 2, "0a0161")[0] == base.TYPE_UNMATCHED
    assert act(ctx, obj, 3)[0] == base.READ_WRITE_DENIED
    assert get_ok(ctx, obj, 2) == unhex("0900")  # the refused capture took nothing


def test_the_entry_passes_the_table_check():
    ctx, obj, _ = setup()
    common.check_table(ctx.meter)


def test_a_capture_allocates_nothing_beyond_the_handlers_on_micropython():
    # registers and a Data structure: their get() allocates nothing, so
    # neither does the capture (the clock's own get() is left out: it
    # computes the local time)
    value = unhex("0203 120005 0a03616263 0102 1101 1102")
    cos = ((3, IMPORT_LN, 2, 0, DLU_WIDTH), (3, EXPORT_LN, 2, 0, DLU_WIDTH), (1, ODD_LN, 2, 0, 20))
    ctx, obj, _ = setup(cos, odd=value)
    m = ctx.meter

    def cap():
        compact.capture(m, obj)

    used = allocated(cap)
    assert used is None or used == 0, used
    cap()
    assert get_ok(ctx, obj, 2) == unhex("0910 000003e8 00000014 0005 03616263 01 02")



def test_a_capture_with_the_clock_allocates_only_what_the_clock_does():
    # the Clock's get() computes the local time (128 B on MicroPython here);
    # the capture adds nothing to it
    ctx, obj, _ = setup()
    m = ctx.meter
    clk = m.table[0]
    out = bytearray(16)
    cctx = base.Context(m)

    def clock_get():
        cctx.buf = out
        cctx.pos = 0
        cctx.limit = 16
        CLOCK.get(cctx, clk, 2)

    def cap():
        compact.capture(m, obj)

    used = allocated(cap)
    assert used is None or used == allocated(clock_get), (used, allocated(clock_get))


def test_a_get_of_the_buffer_allocates_nothing_on_micropython():
    ctx, obj, _ = setup()
    compact.capture(ctx.meter, obj)

    def rd():
        ctx.pos = 0
        COMPACT_DATA.get(ctx, obj, 2)

    used = allocated(rd)
    assert used is None or used == 0, used


def test_through_the_xdlms_services():
    # ACTION capture and GET of compact_buffer and template_description as a
    # client sends them (logical name 0.0.66.0.1.255, class 62)
    from dlms_micro.app import association as asn
    from dlms_micro.app.xdlms import Services

    ctx, obj, _ = setup()
    a = ctx.assoc
    a.conformance = asn.CONF_GET | asn.CONF_SET | asn.CONF_ACTION
    s = Services(ctx.meter, a, 512)
    out = bytearray(600)

    def call(req_hex):
        req = unhex(req_hex)
        end = s.handle(req, 0, len(req), out, 0, 512)
        return bytes(out[0:end])

    assert call("C301C1 003E 0000420001FF 02 01 0F00") == unhex("C701C1 00 00")
    assert call("C001C1 003E 0000420001FF 02 00") == unhex("C401C1 00 0915" + T0_DT + "000003e8 00000014")
    assert call("C001C1 003E 0000420001FF 05 00") == unhex("C401C1 00 0905 0203 09 06 06")
    # a SET: read-write-denied by the access rights
    assert call("C101C1 003E 0000420001FF 04 00 1101")[-1] == base.READ_WRITE_DENIED
