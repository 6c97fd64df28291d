# Data (class 1) and Register / Extended register (classes 3, 4): encodings
# of every value kind, SET type and bound checks, reset, allocation.

from cosem_support import allocated, act, get, get_ok, make, put
from dlms_micro import axdr
from dlms_micro.cosem import base, clock
from dlms_micro.cosem.data import DATA
from dlms_micro.cosem.register import EXTENDED_REGISTER, REGISTER
from support import raises, unhex

A = ((b"\x01\x03", b""), (b"\x01\x03", b""))
AR = ((b"\x01\x03\x01", b"\x01"), (b"\x01\x03\x01", b"\x01"))
AX = ((b"\x01\x03\x01\x01\x01", b"\x01"), None)


def ln(n):
    return bytes((0, 0, 96, 1, n, 255))


def data_table():
    return (
        (1, 0, ln(0), DATA, 0, A, (axdr.DOUBLE_LONG_UNSIGNED,)),
        (1, 0, ln(1), DATA, 1, A, (axdr.OCTET_STRING, 4)),
        (1, 0, ln(2), DATA, 2, A, (axdr.LONG, -100, 100)),
        (1, 0, ln(3), DATA, 3, A, (axdr.BOOLEAN,)),
        (1, 0, ln(4), DATA, 4, A, (axdr.FLOAT32,)),
        (1, 0, ln(5), DATA, 5, A, (axdr.BIT_STRING, 12)),
        (1, 0, ln(6), DATA, 6, A, (axdr.DATE_TIME,)),
        (1, 0, ln(7), DATA, 7, A, (axdr.STRUCTURE, 16)),
        (1, 0, ln(8), DATA, 8, A, None),
        (1, 0, ln(9), DATA, -1, A, (axdr.VISIBLE_STRING, None, None, b"LDN01")),
        (1, 0, ln(10), DATA, 9, A, (axdr.ENUM,)),
        (1, 0, ln(11), DATA, 10, A, (axdr.VISIBLE_STRING,)),
        (1, 0, ln(12), DATA, 11, A, (axdr.LONG64_UNSIGNED,)),
    )


def data_state():
    return [
        12345,
        b"AB",
        -2,
        True,
        1.5,
        b"\xa5\xf0",
        unhex("07EA 07 01 03 0A 07 1D FF 8000 00"),
        unhex("0202 1101 1102"),
        unhex("1200FF"),
        3,
        None,
        2**40 + 5,
    ]


def data_ctx():
    t = data_table()
    return make(t, data_state()), t


def test_data_get_each_value_kind():
    ctx, t = data_ctx()
    assert get_ok(ctx, t[0], 2) == unhex("06 00003039")
    assert get_ok(ctx, t[1], 2) == unhex("09 02 4142")
    assert get_ok(ctx, t[2], 2) == unhex("10 FFFE")
    assert get_ok(ctx, t[3], 2) == unhex("03 01")
    assert get_ok(ctx, t[4], 2) == unhex("17 3FC00000")
    assert get_ok(ctx, t[5], 2) == unhex("04 0C A5F0")
    assert get_ok(ctx, t[6], 2) == unhex("19 07EA 07 01 03 0A 07 1D FF 8000 00")
    assert get_ok(ctx, t[7], 2) == unhex("0202 1101 1102")
    assert get_ok(ctx, t[8], 2) == unhex("1200FF")
    assert get_ok(ctx, t[9], 2) == unhex("0A 05 4C444E3031")
    assert get_ok(ctx, t[10], 2) == unhex("16 03")
    assert get_ok(ctx, t[11], 2) == unhex("00")  # not set: null-data
    assert get_ok(ctx, t[12], 2) == unhex("15 0000010000000005")


def test_data_set_stores_a_value_of_its_type():
    ctx, t = data_ctx()
    st = ctx.meter.state
    assert put(ctx, t[0], 2, "06 00010000") == base.SUCCESS and st[0] == 65536
    assert put(ctx, t[1], 2, "09 04 01020304") == base.SUCCESS and st[1] == b"\x01\x02\x03\x04"
    assert put(ctx, t[2], 2, "10 FF9C") == base.SUCCESS and st[2] == -100
    assert put(ctx, t[3], 2, "03 00") == base.SUCCESS and st[3] is False
    assert put(ctx, t[4], 2, "17 C0200000") == base.SUCCESS and st[4] == -2.5
    assert put(ctx, t[5], 2, "04 0C 1230") == base.SUCCESS and st[5] == b"\x12\x30"
    assert put(ctx, t[6], 2, "19 07EB 01 01 04 00 00 00 00 FFC4 00") == base.SUCCESS
    assert st[6] == unhex("07EB 01 01 04 00 00 00 00 FFC4 00")
    assert put(ctx, t[7], 2, "0203 0F01 0F02 0F03") == base.SUCCESS and st[7] == unhex("0203 0F01 0F02 0F03")
    assert put(ctx, t[10], 2, "16 07") == base.SUCCESS and st[9] == 7
    assert put(ctx, t[11], 2, "0A 02 4F4B") == base.SUCCESS and st[10] == b"OK"
    assert get_ok(ctx, t[11], 2) == unhex("0A 02 4F4B")


def test_data_set_of_another_type_is_type_unmatched_and_changes_nothing():
    ctx, t = data_ctx()
    before = list(ctx.meter.state)
    assert put(ctx, t[0], 2, "12 0001") == base.TYPE_UNMATCHED  # long-unsigned for double-long-unsigned
    assert put(ctx, t[1], 2, "0A 01 41") == base.TYPE_UNMATCHED  # visible- for octet-string
    assert put(ctx, t[2], 2, "12 0005") == base.TYPE_UNMATCHED
    assert put(ctx, t[3], 2, "11 01") == base.TYPE_UNMATCHED
    assert put(ctx, t[4], 2, "18 3FF0000000000000") == base.TYPE_UNMATCHED  # float64 for float32
    assert put(ctx, t[5], 2, "04 10 1234") == base.TYPE_UNMATCHED  # 16 bits for 12
    assert put(ctx, t[6], 2, "09 0C 07EB 01 01 04 00 00 00 00 FFC4 00") == base.TYPE_UNMATCHED
    assert put(ctx, t[7], 2, "0101 0F01") == base.TYPE_UNMATCHED  # array for structure
    assert put(ctx, t[10], 2, "11 07") == base.TYPE_UNMATCHED
    assert ctx.meter.state == before


def test_data_set_outside_the_bounds_is_other_reason():
    ctx, t = data_ctx()
    before = list(ctx.meter.state)
    assert put(ctx, t[1], 2, "09 05 0102030405") == base.OTHER_REASON  # longer than 4
    assert put(ctx, t[2], 2, "10 0065") == base.OTHER_REASON  # 101 > 100
    assert put(ctx, t[2], 2, "10 FF9B") == base.OTHER_REASON  # -101 < -100
    assert put(ctx, t[4], 2, "17 7FC00000") == base.OTHER_REASON  # NaN
    assert put(ctx, t[11], 2, "0A 00") == base.SUCCESS  # unbounded
    before[10] = b""
    assert ctx.meter.state == before


def test_data_raw_bound_counts_encoded_bytes():
    ctx, t = data_ctx()
    # structure of 7 integers: 2 + 7 * 2 = 16 bytes (fits), 8 integers: 18
    assert put(ctx, t[7], 2, "0207 0F01 0F02 0F03 0F04 0F05 0F06 0F07") == base.SUCCESS
    assert put(ctx, t[7], 2, "0208 0F01 0F02 0F03 0F04 0F05 0F06 0F07 0F08") == base.OTHER_REASON
    assert ctx.meter.state[7] == unhex("0207 0F01 0F02 0F03 0F04 0F05 0F06 0F07")


def test_data_of_any_type_takes_any_element():
    ctx, t = data_ctx()
    assert put(ctx, t[8], 2, "0102 1101 1102") == base.SUCCESS
    assert get_ok(ctx, t[8], 2) == unhex("0102 1101 1102")
    assert put(ctx, t[8], 2, "09 03 414243") == base.SUCCESS
    assert get_ok(ctx, t[8], 2) == unhex("09 03 414243")


def test_data_constant_is_read_only():
    ctx, t = data_ctx()
    assert put(ctx, t[9], 2, "0A 01 41") == base.READ_WRITE_DENIED
    assert get_ok(ctx, t[9], 2) == unhex("0A 05 4C444E3031")


def test_data_other_attributes_are_denied():
    ctx, t = data_ctx()
    assert get(ctx, t[0], 3)[0] == base.READ_WRITE_DENIED
    assert put(ctx, t[0], 3, "06 00000001") == base.READ_WRITE_DENIED
    assert DATA.class_id == 1 and DATA.version == 0 and DATA.attribute_count == 2 and DATA.method_count == 0


def test_data_get_past_the_limit_raises_buffer_full():
    ctx, t = data_ctx()
    ctx.limit = 3
    raises(axdr.BufferFull, get, ctx, t[0], 2)
    ctx.buf = bytearray(2)
    ctx.limit = 2
    raises(axdr.BufferFull, get, ctx, t[0], 2)


# ---------------------------------------------------------------- Register

T0 = 1782900449  # 2026-07-01 10:07:29 UTC, a Wednesday


def reg_table():
    return (
        (3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, AR, (0, 30)),  # Wh
        (3, 0, b"\x01\x00\x20\x07\x00\xff", REGISTER, 1, AR, (-1, 35, axdr.LONG_UNSIGNED)),  # V
        (3, 0, b"\x01\x00\x1f\x07\x00\xff", REGISTER, 2, AR, (-2, 33, axdr.FLOAT32)),  # A
        (4, 0, b"\x01\x00\x01\x06\x00\xff", EXTENDED_REGISTER, 3, AX, (1, 27, axdr.DOUBLE_LONG)),  # W
        (8, 0, b"\x00\x00\x01\x00\x00\xff", clock.CLOCK, 6, ((b"\x01", b""), None), None),
    )


def reg_ctx(offset=0):
    t = reg_table()
    st = [123456, 2301, 1.25, -40, 0x21, T0 - 60] + clock.initial_state(time_zone=-60, dst_enabled=True, offset=offset)
    return make(t, st, wall_clock=lambda: T0), t


def test_register_value_and_scaler_unit():
    ctx, t = reg_ctx()
    assert get_ok(ctx, t[0], 2) == unhex("06 0001E240")
    assert get_ok(ctx, t[0], 3) == unhex("0202 0F00 161E")
    assert get_ok(ctx, t[1], 2) == unhex("12 08FD")
    assert get_ok(ctx, t[1], 3) == unhex("0202 0FFF 1623")
    assert get_ok(ctx, t[2], 2) == unhex("17 3FA00000")
    assert get_ok(ctx, t[2], 3) == unhex("0202 0FFE 1621")
    assert get(ctx, t[0], 4)[0] == base.READ_WRITE_DENIED
    assert (REGISTER.class_id, REGISTER.version, REGISTER.attribute_count, REGISTER.method_count) == (3, 0, 3, 1)


def test_register_big_value():
    ctx, t = reg_ctx()
    ctx.meter.state[0] = 0xFFFFFFFF
    assert get_ok(ctx, t[0], 2) == unhex("06 FFFFFFFF")
    ctx.meter.state[0] = 0x100000000
    raises(axdr.EncodeError, get, ctx, t[0], 2)


def test_register_reset_sets_zero_of_the_value_type():
    ctx, t = reg_ctx()
    st = ctx.meter.state
    assert act(ctx, t[0], 1, "0F00") == (base.SUCCESS, b"")
    assert st[0] == 0
    assert act(ctx, t[2], 1) == (base.SUCCESS, b"")  # no parameter: accepted
    assert get_ok(ctx, t[2], 2) == unhex("17 00000000")
    st[1] = 5
    assert act(ctx, t[1], 1, "0900") == (base.TYPE_UNMATCHED, b"")
    assert st[1] == 5
    assert act(ctx, t[1], 2, "0F00")[0] == base.READ_WRITE_DENIED


def test_register_set_value_is_type_checked_scaler_unit_is_static():
    ctx, t = reg_ctx()
    st = ctx.meter.state
    assert put(ctx, t[1], 2, "12 0900") == base.SUCCESS and st[1] == 0x900
    assert put(ctx, t[1], 2, "06 00000900") == base.TYPE_UNMATCHED
    assert put(ctx, t[1], 3, "0202 0F00 1623") == base.READ_WRITE_DENIED


def test_extended_register_attributes():
    ctx, t = reg_ctx()
    x = t[3]
    assert get_ok(ctx, x, 2) == unhex("05 FFFFFFD8")
    assert get_ok(ctx, x, 3) == unhex("0202 0F01 161B")
    assert get_ok(ctx, x, 4) == unhex("11 21")
    # captured one minute earlier, local summer time (CEST, deviation -120)
    assert get_ok(ctx, x, 5) == unhex("090C 07EA 07 01 03 0C 06 1D FF FF88 80")
    ctx.meter.state[5] = None
    assert get_ok(ctx, x, 5) == unhex("090C FFFF FF FF FF FF FF FF FF 8000 FF")
    assert (EXTENDED_REGISTER.class_id, EXTENDED_REGISTER.version) == (4, 0)
    assert (EXTENDED_REGISTER.attribute_count, EXTENDED_REGISTER.method_count) == (5, 1)


def test_extended_register_reset_captures_now():
    ctx, t = reg_ctx(offset=30)  # the meter's clock runs 30 s ahead of the port's
    st = ctx.meter.state
    assert act(ctx, t[3], 1, "0F00") == (base.SUCCESS, b"")
    assert st[3] == 0 and st[4] == 0 and st[5] == T0 + 30
    assert get_ok(ctx, t[3], 5) == unhex("090C 07EA 07 01 03 0C 07 3B FF FF88 80")


def test_extended_register_set_value_updates_capture_time():
    ctx, t = reg_ctx()
    st = ctx.meter.state
    assert put(ctx, t[3], 2, "05 00000064") == base.SUCCESS
    assert st[3] == 100 and st[5] == T0
    assert put(ctx, t[3], 2, "06 00000064") == base.TYPE_UNMATCHED
    assert put(ctx, t[3], 4, "11 05") == base.SUCCESS and st[4] == 5
    assert put(ctx, t[3], 5, "090C 07EA 07 01 03 0C 06 1D FF FF88 80") == base.READ_WRITE_DENIED


def test_extended_register_without_a_clock_uses_utc():
    t = ((4, 0, b"\x01\x00\x01\x06\x00\xff", EXTENDED_REGISTER, 0, AX, (1, 27, axdr.DOUBLE_LONG)),)
    ctx = make(t, [0, 0, T0], wall_clock=lambda: T0)
    assert get_ok(ctx, t[0], 5) == unhex("090C 07EA 07 01 03 0A 07 1D FF 0000 00")


def test_register_get_value_allocates_nothing():
    ctx, t = reg_ctx()
    obj = t[0]

    def one():
        ctx.pos = 0
        REGISTER.get(ctx, obj, 2)

    used = allocated(one)
    if used is None:
        return  # CPython
    assert used == 0, used
    ctx.meter.state[0] = 3000000000  # a big int already in the slot
    assert allocated(one) == 0
    big = t[1]

    def scaler_unit():
        ctx.pos = 0
        REGISTER.get(ctx, big, 3)

    assert allocated(scaler_unit) == 0


def test_data_get_allocates_nothing():
    ctx, t = data_ctx()
    objs = (t[0], t[1], t[3], t[7])

    def some():
        for o in objs:
            ctx.pos = 0
            DATA.get(ctx, o, 2)

    used = allocated(some)
    if used is None:
        return
    assert used == 0, used


def test_allocation_probe_sees_allocations():
    # the probe used above counts bytes under MicroPython
    used = allocated(lambda: bytearray(16))
    if used is None:
        return
    assert used > 0
