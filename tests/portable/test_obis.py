# OBIS codes: text forms, the 6-byte logical name, and malformed text.
# Portable: runs under pytest and under real MicroPython.

from support import raises, unhex

from dlms_micro import obis
from dlms_micro.errors import DecodeError, EncodeError

ACTIVE_ENERGY_IMPORT = unhex("01 00 01 08 00 ff")


def test_parse_accepted_forms():
    for text in ("1-0:1.8.0*255", "1-0:1.8.0", "1-0:1.8.0&255", "1-0:1.8.0.255", "1.0.1.8.0.255",
                 "  1-0:1.8.0*255\n", "001-000:001.008.000*255"):
        assert obis.parse(text) == ACTIVE_ENERGY_IMPORT, text


def test_parse_clock_and_logical_device_name():
    assert obis.parse("0-0:1.0.0*255") == unhex("00 00 01 00 00 ff")
    assert obis.parse("0.0.42.0.0.255") == unhex("00 00 2a 00 00 ff")
    assert obis.parse("1-0:99.1.0*101") == unhex("01 00 63 01 00 65")


def test_format_is_canonical():
    assert obis.to_str(ACTIVE_ENERGY_IMPORT) == "1-0:1.8.0*255"
    assert obis.to_str(bytearray(b"\x00" * 6)) == "0-0:0.0.0*0"
    assert obis.to_str(memoryview(b"\x09\x06" + ACTIVE_ENERGY_IMPORT), 2) == "1-0:1.8.0*255"
    assert obis.normalize("1.0.1.8.0.255") == "1-0:1.8.0*255"
    assert obis.to_groups(ACTIVE_ENERGY_IMPORT) == (1, 0, 1, 8, 0, 255)


def test_groups_to_bytes():
    assert obis.from_groups(1, 0, 1, 8, 0) == ACTIVE_ENERGY_IMPORT
    assert obis.from_groups(1, 0, 1, 8, 0, 255) == ACTIVE_ENERGY_IMPORT
    assert raises(EncodeError, obis.from_groups, 1, 0, 256, 8, 0)
    assert raises(EncodeError, obis.from_groups, 1, 0, -1, 8, 0)
    assert raises(EncodeError, obis.from_groups, 1, 0, "1", 8, 0)


def test_one_two_and_three_digit_groups_round_trip():
    for g in (0, 1, 9, 10, 99, 100, 199, 200, 254, 255):
        code = bytes((g, 255 - g, g, g, 255 - g, g))
        assert obis.parse(obis.to_str(code)) == code


def test_malformed_text_is_rejected():
    for text in ("", "   ", "1-0:1.8", "1-0:1.8.0*", "1-0:1.8.0*255*1", "1-0:1.8.256*255",
                 "1-0:1.8.0*256", "1.0.1.8.0", "1.0.1.8.0.255.1", "1:0-1.8.0*255", "1-0:1..0*255",
                 "1-0:1.8.x*255", "1-0:1.8.-1*255", "1 -0:1.8.0*255", "1-0:1.8.0.0*255",
                 "99999999999999999999-0:1.8.0", "1.0.1.8.0*255"):
        e = raises(DecodeError, obis.parse, text)
        assert repr(text) in str(e), str(e)
    assert raises(DecodeError, obis.parse, b"1-0:1.8.0")


def test_group_above_255_says_so():
    e = raises(DecodeError, obis.parse, "1-0:1.8.300*255")
    assert "above 255" in str(e)


def test_short_bytes_are_rejected():
    assert raises(DecodeError, obis.to_str, b"\x01\x00\x01\x08\x00")
    assert raises(DecodeError, obis.to_str, ACTIVE_ENERGY_IMPORT, 1)
    assert raises(DecodeError, obis.to_str, "1-0:1.8.0*255")
