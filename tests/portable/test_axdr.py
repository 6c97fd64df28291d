# A-XDR codec: byte vectors for every COSEM data type, the three layers
# (enc_*/put_*, Reader, generic encode/decode), and hostile input.
# Portable: runs under pytest and under real MicroPython.

import sys

from support import raises, unhex

from dlms_micro import axdr
from dlms_micro.axdr import (
    ARRAY, BCD, BIT_STRING, BOOLEAN, COMPACT_ARRAY, DATE, DATE_TIME, DELTA_DOUBLE_LONG,
    DELTA_DOUBLE_LONG_UNSIGNED, DELTA_INTEGER, DELTA_LONG, DELTA_LONG_UNSIGNED, DELTA_UNSIGNED,
    DONT_CARE, DOUBLE_LONG, DOUBLE_LONG_UNSIGNED, ENUM, FLOAT32, FLOAT64, INTEGER, LONG, LONG64,
    LONG64_UNSIGNED, LONG_UNSIGNED, NULL_DATA, OCTET_STRING, STRUCTURE, TIME, UNSIGNED,
    UTF8_STRING, VISIBLE_STRING, BitString, BufferFull, Date, DateTime, Reader, Time,
)
from dlms_micro.errors import DecodeError, EncodeError

# Register value: structure {double-long-unsigned 12345, structure {scaler -2, unit 30 (Wh)}}
REGISTER = unhex("02 02 06 00 00 30 39 02 02 0f fe 16 1e")
LN = unhex("01 00 01 08 00 ff")


def hexs(b):
    return "".join("%02x" % x for x in b)


def enc(tag, value):
    return hexs(axdr.encoded(tag, value))


def test_tag_numbers_match_the_standard():
    tags = (NULL_DATA, ARRAY, STRUCTURE, BOOLEAN, BIT_STRING, DOUBLE_LONG, DOUBLE_LONG_UNSIGNED,
            OCTET_STRING, VISIBLE_STRING, UTF8_STRING, BCD, INTEGER, LONG, UNSIGNED, LONG_UNSIGNED,
            COMPACT_ARRAY, LONG64, LONG64_UNSIGNED, ENUM, FLOAT32, FLOAT64, DATE_TIME, DATE, TIME,
            DELTA_INTEGER, DELTA_LONG, DELTA_DOUBLE_LONG, DELTA_UNSIGNED, DELTA_LONG_UNSIGNED,
            DELTA_DOUBLE_LONG_UNSIGNED, DONT_CARE)
    assert tags == (0, 1, 2, 3, 4, 5, 6, 9, 10, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                    25, 26, 27, 28, 29, 30, 31, 32, 33, 255)
    assert axdr.tag_name(LONG_UNSIGNED) == "long-unsigned"
    assert axdr.tag_name(DONT_CARE) == "dont-care"
    assert axdr.tag_name(7) == "tag 7"


def test_length_short_and_long_forms():
    cases = ((0, "00"), (127, "7f"), (128, "8180"), (255, "81ff"), (256, "820100"),
             (0xFFFF, "82ffff"), (0x10000, "83010000"), (0xFFFFFF, "83ffffff"),
             (0x1000000, "8401000000"), (0xFFFFFFFF, "84ffffffff"))
    buf = bytearray(8)
    r = Reader()
    for n, h in cases:
        end = axdr.put_length(buf, 0, n)
        assert hexs(buf[:end]) == h
        r.reset(buf, 0, end)
        assert r.length() == n and r.pos == end


def test_length_rejects_malformed_forms():
    r = Reader()
    for h in ("80", "85 00 00 00 00 01", "ff", "82 01", "84 00 00 00", ""):
        e = raises(DecodeError, r.reset(unhex(h)).length)
        assert "offset 0" in str(e), str(e)
    assert raises(EncodeError, axdr.put_length, bytearray(8), 0, -1)
    assert raises(EncodeError, axdr.put_length, bytearray(8), 0, 1 << 32)


def test_long_length_forms_decode_too():
    # a length in a longer form than needed is accepted (re-encodes canonically)
    t, v, off = axdr.decode(unhex("09 82 00 02 aa bb"))
    assert (t, v, off) == (OCTET_STRING, unhex("aa bb"), 6)
    assert enc(t, v) == "0902aabb"


def test_integer_types_encode_big_endian():
    cases = (
        (INTEGER, -1, "0fff"), (INTEGER, 127, "0f7f"), (INTEGER, -128, "0f80"),
        (LONG, -2, "10fffe"), (LONG, 0x1234, "101234"),
        (DOUBLE_LONG, -2147483648, "0580000000"), (DOUBLE_LONG, 2147483647, "057fffffff"),
        (LONG64, -1, "14ffffffffffffffff"), (LONG64, -(1 << 63), "148000000000000000"),
        (UNSIGNED, 255, "11ff"), (LONG_UNSIGNED, 65535, "12ffff"),
        (DOUBLE_LONG_UNSIGNED, 12345678, "0600bc614e"),
        (DOUBLE_LONG_UNSIGNED, 0xFFFFFFFF, "06ffffffff"),
        (LONG64_UNSIGNED, (1 << 64) - 1, "15ffffffffffffffff"),
        (LONG64_UNSIGNED, 1 << 40, "150000010000000000"),
        (ENUM, 30, "161e"), (BCD, 0x12, "0d12"), (BCD, -1, "0dff"),
        (DELTA_INTEGER, -3, "1cfd"), (DELTA_LONG, -300, "1dfed4"),
        (DELTA_DOUBLE_LONG, -70000, "1efffeee90"), (DELTA_UNSIGNED, 200, "1fc8"),
        (DELTA_LONG_UNSIGNED, 40000, "209c40"), (DELTA_DOUBLE_LONG_UNSIGNED, 4000000000, "21ee6b2800"),
    )
    buf = bytearray(16)
    r = Reader()
    for tag, v, h in cases:
        assert enc(tag, v) == h, (tag, v)
        end = axdr.enc_int(buf, 0, tag, v)
        assert hexs(buf[:end]) == h
        assert axdr.decode(unhex(h)) == (tag, v, len(h) // 2)
        assert r.reset(unhex(h)).int_of(tag) == v
        assert r.reset(unhex(h)).number() == v and r.last_tag == tag


def test_named_hot_path_encoders_and_readers():
    buf = bytearray(16)
    r = Reader()
    pairs = (
        (axdr.enc_integer, r.integer, -5), (axdr.enc_long, r.long, -500),
        (axdr.enc_double_long, r.double_long, -5000000), (axdr.enc_long64, r.long64, -(1 << 40)),
        (axdr.enc_unsigned, r.unsigned, 200), (axdr.enc_long_unsigned, r.long_unsigned, 60000),
        (axdr.enc_double_long_unsigned, r.double_long_unsigned, 3000000000),
        (axdr.enc_long64_unsigned, r.long64_unsigned, 1 << 63), (axdr.enc_enum, r.enum, 255),
    )
    for write, read, v in pairs:
        end = write(buf, 0, v)
        r.reset(buf, 0, end)
        assert read() == v and r.pos == end


def test_integer_range_is_checked_by_the_encoder():
    buf = bytearray(16)
    bad = ((UNSIGNED, 256), (UNSIGNED, -1), (INTEGER, 128), (INTEGER, -129), (LONG, 32768),
           (LONG_UNSIGNED, 65536), (DOUBLE_LONG, 1 << 31), (DOUBLE_LONG_UNSIGNED, 1 << 32),
           (DOUBLE_LONG_UNSIGNED, -1), (LONG64, 1 << 63), (LONG64_UNSIGNED, 1 << 64),
           (ENUM, 256), (BCD, 128), (DELTA_UNSIGNED, -1))
    for tag, v in bad:
        e = raises(EncodeError, axdr.enc_int, buf, 0, tag, v)
        assert not isinstance(e, BufferFull)
        assert raises(EncodeError, axdr.encoded, tag, v)
    assert raises(EncodeError, axdr.enc_int, buf, 0, OCTET_STRING, 1)
    assert raises(EncodeError, axdr.enc_unsigned, buf, 0, 1.5)


def test_buffer_too_small_raises_buffer_full():
    small = bytearray(3)
    calls = (
        (axdr.enc_double_long_unsigned, (small, 0, 1)), (axdr.enc_long, (small, 2, 1)),
        (axdr.enc_octet_string, (small, 0, LN)), (axdr.enc_null, (small, 3)),
        (axdr.enc_boolean, (small, 2, True)), (axdr.enc_structure, (small, 3, 2)),
        (axdr.enc_float32, (small, 0, 1.0)), (axdr.put_length, (small, 1, 300)),
        (axdr.enc_date_time, (small, 0, 2024, 1, 1, 1, 0, 0, 0, 0, 0, 0)),
        (axdr.enc_date, (small, 0, 2024, 1, 1, 1)), (axdr.enc_time, (small, 0, 1, 2, 3, 4)),
        (axdr.encode, (small, 0, STRUCTURE, [(UNSIGNED, 1), (UNSIGNED, 2)])),
        (axdr.enc_int, (small, -1, UNSIGNED, 1)),
    )
    for fn, args in calls:
        e = raises(BufferFull, fn, *args)
        assert isinstance(e, EncodeError)


def test_register_value_hot_path_round_trip():
    buf = bytearray(32)
    off = axdr.enc_structure(buf, 0, 2)
    off = axdr.enc_double_long_unsigned(buf, off, 12345)
    off = axdr.enc_structure(buf, off, 2)
    off = axdr.enc_integer(buf, off, -2)
    off = axdr.enc_enum(buf, off, 30)
    assert bytes(buf[:off]) == REGISTER
    r = Reader(REGISTER)
    assert r.structure() == 2
    assert r.double_long_unsigned() == 12345
    assert r.structure() == 2
    assert r.integer() == -2
    assert r.enum() == 30
    assert r.pos == r.end == len(REGISTER)


def test_register_value_generic_round_trip():
    value = [(DOUBLE_LONG_UNSIGNED, 12345), (STRUCTURE, [(INTEGER, -2), (ENUM, 30)])]
    assert axdr.decode(REGISTER) == (STRUCTURE, value, len(REGISTER))
    assert axdr.encoded(STRUCTURE, value) == REGISTER
    buf = bytearray(20)
    assert axdr.encode(buf, 3, STRUCTURE, value) == 3 + len(REGISTER)
    assert bytes(buf[3:16]) == REGISTER


def test_reader_window_and_offsets():
    data = b"\xee\xee" + REGISTER + b"\xee"
    r = Reader(data, 2, 2 + len(REGISTER))
    assert r.peek() == STRUCTURE
    assert r.skip() == STRUCTURE and r.pos == r.end
    e = raises(DecodeError, r.tag)
    assert "offset 15" in str(e)
    assert raises(DecodeError, r.reset, data, 3, 2)
    assert raises(DecodeError, r.reset, data, 0, 99)
    t, v, off = axdr.decode(data, 2)
    assert t == STRUCTURE and off == 15


def test_reader_wrong_tag_names_both_types_and_offset():
    r = Reader(REGISTER)
    r.structure()
    e = raises(DecodeError, r.long_unsigned)
    assert str(e) == "expected long-unsigned, got double-long-unsigned at offset 2", str(e)


def test_octet_string_is_read_in_place():
    data = unhex("09 06") + LN
    r = Reader(data)
    assert r.octet_string() == 6
    assert r.mark == 2 and r.pos == 8
    assert bytes(data[r.mark:r.mark + 6]) == LN
    buf = bytearray(10)
    assert axdr.enc_octet_string(buf, 0, LN) == 8
    assert bytes(buf[:8]) == data
    # a part of a bigger source, no slice made by the caller
    src = b"xx" + LN + b"yy"
    buf = bytearray(10)
    assert axdr.enc_octet_string(buf, 1, src, 2, 8) == 9
    assert bytes(buf[1:9]) == data
    assert raises(EncodeError, axdr.enc_octet_string, buf, 0, src, 4, 2)
    assert raises(EncodeError, axdr.enc_octet_string, buf, 0, src, 0, 11)
    assert enc(OCTET_STRING, b"") == "0900"
    assert enc(OCTET_STRING, bytearray(200))[:6] == "0981c8"


def test_strings():
    assert enc(VISIBLE_STRING, "ABC") == "0a03414243"
    assert axdr.decode(unhex("0a03414243")) == (VISIBLE_STRING, "ABC", 5)
    assert enc(UTF8_STRING, "\u00e9") == "0c02c3a9"
    assert axdr.decode(unhex("0c02c3a9")) == (UTF8_STRING, "\u00e9", 4)
    buf = bytearray(8)
    assert axdr.enc_visible_string(buf, 0, b"AB") == 4 and bytes(buf[:4]) == unhex("0a024142")
    assert axdr.enc_utf8_string(buf, 0, "\u00e9") == 4 and bytes(buf[:4]) == unhex("0c02c3a9")
    r = Reader(unhex("0a03414243"))
    assert r.visible_string() == 3 and r.mark == 2
    r = Reader(unhex("0c02c3a9"))
    assert r.utf8_string() == 2 and r.mark == 2
    assert raises(DecodeError, axdr.decode, unhex("0a02 41 c3"))  # not ASCII
    assert raises(DecodeError, axdr.decode, unhex("0c02 c3 28"))  # not UTF-8
    assert raises(EncodeError, axdr.encoded, VISIBLE_STRING, "\u00e9")
    assert raises(EncodeError, axdr.encoded, OCTET_STRING, "text")
    assert raises(EncodeError, axdr.encoded, UTF8_STRING, 5)


def test_boolean_null_and_dont_care():
    assert enc(BOOLEAN, True) == "0301" and enc(BOOLEAN, False) == "0300"
    assert axdr.decode(unhex("0301")) == (BOOLEAN, True, 2)
    assert axdr.decode(unhex("03ff")) == (BOOLEAN, True, 2)  # any non-zero is TRUE
    assert raises(EncodeError, axdr.encoded, BOOLEAN, 2)
    assert enc(NULL_DATA, None) == "00" and enc(DONT_CARE, None) == "ff"
    assert axdr.decode(unhex("00")) == (NULL_DATA, None, 1)
    assert axdr.decode(unhex("ff")) == (DONT_CARE, None, 1)
    assert raises(EncodeError, axdr.encoded, NULL_DATA, 0)
    buf = bytearray(4)
    assert axdr.enc_boolean(buf, 0, 1) == 2 and axdr.enc_null(buf, 2) == 3 and axdr.enc_dont_care(buf, 3) == 4
    assert bytes(buf) == unhex("030100ff")
    r = Reader(buf)
    assert r.boolean() is True
    r.null()
    assert r.skip() == DONT_CARE


def test_bit_string():
    bs = BitString.from_bits("10110011101")
    assert bs.nbits == 11 and bs.data == unhex("b3 a0")
    assert bs.bit(0) == 1 and bs.bit(1) == 0 and bs.bit(10) == 1 and len(bs) == 11
    assert enc(BIT_STRING, bs) == "040bb3a0"
    assert axdr.decode(unhex("040bb3a0")) == (BIT_STRING, bs, 4)
    # unused trailing bits are kept as received
    t, v, _ = axdr.decode(unhex("040bb3a7"))
    assert v.data == unhex("b3a7") and enc(t, v) == "040bb3a7"
    assert enc(BIT_STRING, BitString(0)) == "0400"
    buf = bytearray(8)
    assert axdr.enc_bit_string(buf, 0, 11, b"\xff\xb3\xa0", 1) == 4
    assert bytes(buf[:4]) == unhex("040bb3a0")
    r = Reader(buf, 0, 4)
    assert r.bit_string() == 11 and r.mark == 2 and r.pos == 4
    assert raises(EncodeError, BitString, 9, b"\x00")
    assert raises(DecodeError, axdr.decode, unhex("0411 ff"))  # 17 bits need 3 bytes


def test_floats():
    assert enc(FLOAT32, 1.5) == "173fc00000"
    assert enc(FLOAT64, -0.25) == "18bfd0000000000000"
    assert axdr.decode(unhex("173fc00000")) == (FLOAT32, 1.5, 5)
    assert axdr.decode(unhex("18bfd0000000000000")) == (FLOAT64, -0.25, 9)
    assert enc(FLOAT32, 2) == "1740000000"
    buf = bytearray(9)
    r = Reader(buf)
    assert axdr.enc_float32(buf, 0, -2.0) == 5
    assert r.float32() == -2.0
    assert axdr.enc_float64(buf, 0, 0.5) == 9
    assert r.reset(buf).float64() == 0.5
    assert raises(EncodeError, axdr.encoded, FLOAT32, 1e39)
    assert raises(EncodeError, axdr.encoded, FLOAT32, "1.0")
    assert enc(FLOAT32, float("inf")) == "177f800000"


def test_date_time_fields_and_markers():
    # 2024-03-31 (Sunday) 02:00:00.00, deviation -60 min, daylight saving active
    h = "19 07e8 03 1f 07 02 00 00 00 ffc4 80"
    dt = DateTime(2024, 3, 31, 7, 2, 0, 0, 0, -60, axdr.STATUS_DAYLIGHT_SAVING_ACTIVE)
    assert enc(DATE_TIME, dt) == hexs(unhex(h))
    assert axdr.decode(unhex(h)) == (DATE_TIME, dt, 13)
    assert dt.valid()
    buf = bytearray(13)
    assert axdr.enc_date_time(buf, 0, 2024, 3, 31, 7, 2, 0, 0, 0, -60, 0x80) == 13
    assert bytes(buf) == unhex(h)
    # everything "not specified"
    ns = unhex("19 ffff ff ff ff ff ff ff ff 8000 ff")
    t, v, _ = axdr.decode(ns)
    assert v == DateTime() and v.year == axdr.YEAR_NOT_SPECIFIED
    assert v.deviation == axdr.DEVIATION_NOT_SPECIFIED and v.status == axdr.NOT_SPECIFIED
    assert v.valid() and axdr.encoded(t, v) == ns
    # 0x8000 is accepted as the not-specified deviation too
    assert axdr.enc_date_time(buf, 0, 0xFFFF, 255, 255, 255, 255, 255, 255, 255, 0x8000, 255) == 13
    assert bytes(buf) == ns
    # daylight-savings months and last days
    dst = DateTime(0xFFFF, axdr.DST_BEGIN, axdr.LAST_DAY, 7, 2, 0, 0, 0, 0x8000, 0)
    assert dst.valid() and axdr.decode(axdr.encoded(DATE_TIME, dst))[1].month == 0xFE
    assert not DateTime(2024, 13, 1).valid()
    assert not DateTime(2024, 1, 1, 8).valid()
    assert not DateTime(2024, 1, 1, 1, 24).valid()
    assert not DateTime(2024, 1, 1, 1, 0, 0, 0, 0, 721).valid()
    assert DateTime(2024, 1, 1, 1, 0, 0, 0, 0, -720).valid()
    assert raises(EncodeError, axdr.enc_date_time, buf, 0, 2024, 256, 1, 1, 0, 0, 0, 0, 0, 0)
    assert raises(EncodeError, axdr.enc_date_time, buf, 0, 70000, 1, 1, 1, 0, 0, 0, 0, 0, 0)
    assert raises(EncodeError, axdr.enc_date_time, buf, 0, 2024, 1, 1, 1, 0, 0, 0, 0, -40000, 0)
    assert raises(EncodeError, axdr.enc_date_time, buf, 0, 2024, 1, 1, 1, 0, 0, 0, 0, 0, 1.5)
    assert raises(EncodeError, axdr.encoded, DATE_TIME, b"\x00" * 12)


def test_date_time_as_octet_string_in_the_clock():
    # Clock attribute 2 carries date-time as an octet-string(12)
    h = "09 0c 07e8 0c 18 02 17 3b 3b 63 0000 00"
    dt = DateTime(2024, 12, 24, 2, 23, 59, 59, 99, 0, 0)
    buf = bytearray(14)
    assert dt.encode(buf, 0, OCTET_STRING) == 14 and bytes(buf) == unhex(h)
    r = Reader(unhex(h))
    into = DateTime()
    assert r.date_time(into) is into and into == dt and r.pos == 14 and r.mark == 2
    assert r.reset(unhex("19") + unhex(h)[2:]).date_time() == dt
    e = raises(DecodeError, r.reset(unhex("09 0b") + bytes(11)).date_time)
    assert "offset 0" in str(e)
    assert raises(DecodeError, r.reset(unhex("1a") + bytes(12)).date_time)


def test_date_and_time():
    d = Date(2024, 2, 29, 4)
    assert enc(DATE, d) == "1a07e8021d04"
    assert axdr.decode(unhex("1a07e8021d04")) == (DATE, d, 6)
    assert Date().fields() == (0xFFFF, 255, 255, 255) and Date(2024, 0xFD, 0xFD).valid()
    t = Time(23, 59, 58, 99)
    assert enc(TIME, t) == "1b173b3a63"
    assert axdr.decode(unhex("1b173b3a63")) == (TIME, t, 5)
    assert Time().valid() and not Time(12, 60).valid() and not Time(1, 2, 3, 100).valid()
    buf = bytearray(6)
    assert axdr.enc_date(buf, 0, 2024, 2, 29, 4) == 6 and bytes(buf) == unhex("1a07e8021d04")
    assert Reader(buf).date() == d
    assert axdr.enc_time(buf, 0, 23, 59, 58, 99) == 5
    assert Reader(buf).time(Time()) == t
    assert d != Date(2024, 2, 29, 5) and t != d
    assert t.encode(buf, 0, OCTET_STRING) == 6 and bytes(buf) == unhex("0904173b3a63")
    assert raises(EncodeError, axdr.enc_time, buf, 0, -1, 0, 0, 0)


def test_arrays_of_structures():
    v = [(STRUCTURE, [(OCTET_STRING, LN), (LONG_UNSIGNED, 3)]),
         (STRUCTURE, [(OCTET_STRING, b""), (LONG_UNSIGNED, 1)])]
    h = "0102 0202 0906 0100010800ff 120003 0202 0900 120001"
    assert enc(ARRAY, v) == hexs(unhex(h))
    assert axdr.decode(unhex(h)) == (ARRAY, v, len(unhex(h)))
    assert enc(ARRAY, []) == "0100"
    big = [(UNSIGNED, i & 0xFF) for i in range(300)]
    b = axdr.encoded(ARRAY, big)
    assert b[:4] == unhex("01 82 01 2c")
    assert axdr.decode(b) == (ARRAY, big, len(b))
    r = Reader(b)
    assert r.array() == 300
    assert raises(EncodeError, axdr.encoded, STRUCTURE, [(UNSIGNED,)])
    assert raises(EncodeError, axdr.encoded, STRUCTURE, 5)
    assert raises(EncodeError, axdr.encoded, 7, None)
    assert raises(EncodeError, axdr.encoded, "x", None)


def test_compact_array_of_simple_type():
    # compact-array, description long-unsigned, contents 6 bytes: 1, 2, 3
    h = "13 12 06 0001 0002 0003"
    v = (LONG_UNSIGNED, [1, 2, 3])
    assert axdr.decode(unhex(h)) == (COMPACT_ARRAY, v, 9)
    assert enc(COMPACT_ARRAY, v) == hexs(unhex(h))
    assert enc(COMPACT_ARRAY, (UNSIGNED, [])) == "131100"


def test_compact_array_of_structures_and_arrays():
    # structure {long-unsigned, octet-string}: strings keep their length, no tags
    h = "13 02 02 12 09  08  0005 02 aabb  0006 00"
    v = ((STRUCTURE, [LONG_UNSIGNED, OCTET_STRING]), [[5, unhex("aabb")], [6, b""]])
    assert axdr.decode(unhex(h)) == (COMPACT_ARRAY, v, len(unhex(h)))
    assert enc(COMPACT_ARRAY, v) == hexs(unhex(h))
    # array description: count long-unsigned, then the element description
    h = "13 01 0002 11  04 01 02 03 04"
    v = ((ARRAY, 2, UNSIGNED), [[1, 2], [3, 4]])
    assert axdr.decode(unhex(h)) == (COMPACT_ARRAY, v, 10)
    assert enc(COMPACT_ARRAY, v) == hexs(unhex(h))
    # date-time elements are 12 bytes each, without tag
    dt = DateTime(2024, 1, 2, 2, 3, 4, 5, 6, 60, 0)
    b = axdr.encoded(COMPACT_ARRAY, (DATE_TIME, [dt, dt]))
    assert b[:3] == unhex("13 19 18") and len(b) == 27
    assert axdr.decode(b)[1] == (DATE_TIME, [dt, dt])


def test_compact_array_rejects_bad_descriptions_and_contents():
    bad = (
        "13 00 00",            # null-data has zero width
        "13 ff 00",            # dont-care too
        "13 02 00 00",         # empty structure
        "13 01 0000 11 00",    # array of zero elements
        "13 13 11 00",         # compact-array inside a description
        "13 07 00",            # unknown tag
        "13 01 ffff 01 ffff 11 03 010203",  # element width 2**32 > 3 content bytes
        "13 12 03 000100",     # contents end inside an element
        "13 12 84 7fffffff 00",  # contents length beyond the input
    )
    for h in bad:
        assert raises(DecodeError, axdr.decode, unhex(h)), h
    for v in ((NULL_DATA, [None]), ((ARRAY, 0, UNSIGNED), []), ((STRUCTURE, []), []),
              (UNSIGNED, [256]), ((ARRAY, 2, UNSIGNED), [[1]]), ((STRUCTURE, [UNSIGNED]), [[1, 2]]),
              (COMPACT_ARRAY, []), (UNSIGNED, 5), ((9, 9, 9), [])):
        assert raises(EncodeError, axdr.encoded, COMPACT_ARRAY, v)


def _check_prefixes(s, cuts=None):
    # s decodes and skips whole; every cut-off prefix of it is rejected
    r = Reader()
    t, v, n = axdr.decode(s)
    assert n == len(s) and axdr.encoded(t, v) == s
    assert r.reset(s).skip() == t and r.pos == len(s)
    for i in cuts or range(len(s)):
        assert raises(DecodeError, axdr.decode, s[:i])
        assert raises(DecodeError, r.reset(s, 0, i).skip)


# (one test per sample: MicroPython's GC only runs between tests here, and
# every rejected prefix costs an exception)
def test_every_prefix_of_a_structure_is_rejected():
    _check_prefixes(REGISTER)
    _check_prefixes(unhex("0906") + LN)


def test_every_prefix_of_a_date_time_is_rejected():
    _check_prefixes(unhex("19 07e8 03 1f 07 02 00 00 00 ffc4 80"))


def test_every_prefix_of_a_compact_array_is_rejected():
    _check_prefixes(unhex("13 02 02 12 09 08 0005 02 aabb 0006 00"))


def test_every_prefix_of_bit_string_and_float_is_rejected():
    _check_prefixes(unhex("040bb3a0"))
    _check_prefixes(unhex("18bfd0000000000000"))


def test_prefixes_of_long_form_lengths_are_rejected():
    _check_prefixes(unhex("0a81c8") + b"x" * 200, (0, 1, 2, 3, 4, 202))
    s = axdr.encoded(ARRAY, [(UNSIGNED, 1)] * 130)
    _check_prefixes(s, (0, 1, 2, 3, 4, 5, len(s) - 1))


def test_huge_counts_fail_before_allocating():
    # each claims far more than the input holds
    for h in ("01 84 7fffffff 00 00", "02 84 ffffffff 11", "09 84 80000000 aa", "04 84 ffffffff ff",
              "0a 83 ffffff 41", "0c 82 ffff", "13 11 84 7fffffff 01"):
        e = raises(DecodeError, axdr.decode, unhex(h))
        assert "exceeds input" in str(e), str(e)
        assert raises(DecodeError, Reader(unhex(h)).skip)
    e = raises(DecodeError, Reader(unhex("01 84 7fffffff 00 00")).array)
    assert str(e) == "array length 2147483647 exceeds input at offset 1", str(e)


def test_nesting_depth_is_bounded():
    ok = b"\x01\x01" * (axdr.MAX_DEPTH - 1) + b"\x01\x00"  # MAX_DEPTH arrays
    assert axdr.decode(ok)[2] == len(ok)
    assert Reader(ok).skip() == ARRAY
    deep = b"\x02\x01" * 5000 + b"\x00"
    assert "nesting" in str(raises(DecodeError, axdr.decode, deep))
    assert "nesting" in str(raises(DecodeError, Reader(deep).skip))
    v = []
    for _ in range(axdr.MAX_DEPTH + 1):
        v = [(ARRAY, v)]
    assert raises(EncodeError, axdr.encoded, ARRAY, v)
    cyclic = []
    cyclic.append((STRUCTURE, cyclic))
    assert raises(EncodeError, axdr.encoded, STRUCTURE, cyclic)
    desc = b"\x01\x00\x01" * 40 + b"\x11"
    assert raises(DecodeError, axdr.decode, b"\x13" + desc + b"\x00")
    assert raises(DecodeError, Reader(b"\x13" + desc + b"\x00").skip)


def test_unknown_tags_are_rejected():
    for t in (7, 8, 11, 14, 34, 100, 254):
        e = raises(DecodeError, axdr.decode, bytes((t, 0, 0, 0, 0)))
        assert "offset 0" in str(e)
        assert raises(DecodeError, Reader(bytes((t, 0))).skip)
    e = raises(DecodeError, axdr.decode, unhex("02 02 11 05 08"))
    assert str(e) == "unknown tag 8 at offset 4", str(e)


def test_number_rejects_non_integers():
    r = Reader(unhex("0901aa"))
    assert "offset 0" in str(raises(DecodeError, r.number))
    assert raises(DecodeError, Reader(unhex("0901aa")).int_of, OCTET_STRING)


def test_round_trip_of_a_mixed_sample():
    value = [
        (NULL_DATA, None), (BOOLEAN, False), (BIT_STRING, BitString.from_bits([1, 0, 1])),
        (DOUBLE_LONG, -7), (DOUBLE_LONG_UNSIGNED, 7), (OCTET_STRING, LN), (VISIBLE_STRING, "meter"),
        (UTF8_STRING, "z\u00e4hler"), (BCD, 0x42), (INTEGER, 1), (LONG, 2), (UNSIGNED, 3),
        (LONG_UNSIGNED, 4), (COMPACT_ARRAY, (UNSIGNED, [1, 2])), (LONG64, -5), (LONG64_UNSIGNED, 6),
        (ENUM, 7), (FLOAT32, 0.5), (FLOAT64, 0.125), (DATE_TIME, DateTime(2000, 1, 1)),
        (DATE, Date(1999)), (TIME, Time(1, 2)), (DELTA_INTEGER, -1), (DELTA_LONG, -2),
        (DELTA_DOUBLE_LONG, -3), (DELTA_UNSIGNED, 1), (DELTA_LONG_UNSIGNED, 2),
        (DELTA_DOUBLE_LONG_UNSIGNED, 3), (DONT_CARE, None), (ARRAY, []),
    ]
    b = axdr.encoded(STRUCTURE, value)
    assert axdr.decode(b) == (STRUCTURE, value, len(b))
    assert axdr.encoded(STRUCTURE, axdr.decode(b)[1]) == b
    r = Reader(b)
    assert r.skip() == STRUCTURE and r.pos == len(b)


def _allocated(fn):
    import gc

    fn()  # warm up
    gc.collect()
    gc.disable()
    try:
        a = gc.mem_alloc()
        fn()
        return gc.mem_alloc() - a
    finally:
        gc.enable()


def test_hot_path_allocates_nothing_on_micropython():
    if sys.implementation.name != "micropython":
        return
    buf = bytearray(64)
    r = Reader()
    dt = DateTime()
    src = unhex("09 0c 07e8 0c 18 02 17 3b 3b 63 0000 00")

    def enc_register():
        off = axdr.enc_structure(buf, 0, 2)
        off = axdr.enc_double_long_unsigned(buf, off, 12345)
        off = axdr.enc_structure(buf, off, 2)
        off = axdr.enc_integer(buf, off, -2)
        off = axdr.enc_enum(buf, off, 30)
        off = axdr.enc_octet_string(buf, off, LN)
        off = axdr.enc_octet_string(buf, off, src, 2, 8)
        off = axdr.enc_date_time(buf, off, 2024, 3, 31, 7, 2, 0, 0, 0, -60, 0x80)
        off = dt.encode(buf, off, OCTET_STRING)

    def dec_register():
        r.reset(REGISTER)
        r.structure()
        r.double_long_unsigned()
        r.structure()
        r.integer()
        r.enum()
        r.reset(src)
        r.date_time(dt)
        r.reset(REGISTER)
        r.skip()

    assert _allocated(enc_register) == 0
    assert _allocated(dec_register) == 0


def test_enc_int_in_matches_enc_int_or_declines():
    # enc_int_in (the one-call form Register.get uses) writes exactly what
    # enc_int writes when the value is an int in range and the element ends
    # by the limit; otherwise it returns -1 and writes nothing.
    tags = (INTEGER, LONG, DOUBLE_LONG, LONG64, UNSIGNED, LONG_UNSIGNED, DOUBLE_LONG_UNSIGNED,
            LONG64_UNSIGNED, ENUM, OCTET_STRING, 99)
    values = (0, -1, 255, 65536, -32769, 0x3FFFFFFF, 0x40000000, 0xFFFFFFFF, 0x100000000,
              -0x80000001, True, 1.5)
    zero = bytes(16)
    a = bytearray(16)
    b = bytearray(16)
    for tag in tags:
        for v in values:
            for off, limit in ((0, 16), (7, 16), (2, 6)):
                a[0:16] = zero
                b[0:16] = zero
                q = axdr.enc_int_in(a, off, limit, tag, v)
                try:
                    want = axdr.enc_int(b, off, tag, v)
                except EncodeError:
                    want = -1
                if q < 0:
                    assert a == zero, (tag, v, off)  # nothing written
                    assert want < 0 or want > limit or type(v) is not int, (tag, v, off, limit)
                else:
                    assert q == want and a == b and q <= limit, (tag, v, off, limit)
