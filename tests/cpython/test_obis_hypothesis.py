# Property tests for OBIS codes (CPython only).

from hypothesis import given, settings
from hypothesis import strategies as st

from dlms_micro import obis
from dlms_micro.errors import DecodeError, EncodeError

SETTINGS = settings(max_examples=500, deadline=1000)


@SETTINGS
@given(st.binary(min_size=6, max_size=6))
def test_every_code_round_trips_through_text(code):
    text = obis.to_str(code)
    assert obis.parse(text) == code
    assert obis.normalize(text) == text
    a, b, c, d, e, f = obis.to_groups(code)
    assert obis.parse("%d.%d.%d.%d.%d.%d" % (a, b, c, d, e, f)) == code
    assert obis.from_groups(a, b, c, d, e, f) == code


@SETTINGS
@given(st.one_of(st.text(max_size=30), st.text(alphabet="0123456789-:.*& ", max_size=30)))
def test_any_text_parses_or_raises_decode_error(text):
    try:
        code = obis.parse(text)
    except DecodeError:
        return
    assert len(code) == 6
    assert obis.parse(obis.to_str(code)) == code


@SETTINGS
@given(st.lists(st.integers(-300, 300), min_size=6, max_size=6))
def test_from_groups_checks_every_group(groups):
    try:
        code = obis.from_groups(*groups)
    except EncodeError:
        assert not all(0 <= g <= 255 for g in groups)
        return
    assert list(code) == groups
