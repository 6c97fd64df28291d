# Property tests for the A-XDR codec (CPython only): every type round-trips
# byte-exactly; random and mutated input raises nothing but DecodeError,
# finishes quickly and never allocates more than the input can justify.

import math
import time
import tracemalloc

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dlms_micro import axdr
from dlms_micro.axdr import (
    ARRAY, BIT_STRING, BOOLEAN, COMPACT_ARRAY, DATE, DATE_TIME, DONT_CARE, FLOAT32, FLOAT64,
    NULL_DATA, OCTET_STRING, STRUCTURE, TIME, UTF8_STRING, VISIBLE_STRING, BitString, Date,
    DateTime, Reader, Time,
)
from dlms_micro.errors import DecodeError, EncodeError

SETTINGS = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

INT_TYPES = {}  # tag -> (min, max)
for _t in range(34):
    _k = axdr._kind(_t)
    if _k in (axdr._K_SINT, axdr._K_UINT):
        _bits = 8 * axdr._SIZE[_t]
        if _k == axdr._K_SINT:
            INT_TYPES[_t] = (-(1 << (_bits - 1)), (1 << (_bits - 1)) - 1)
        else:
            INT_TYPES[_t] = (0, (1 << _bits) - 1)
INT_TAGS = sorted(INT_TYPES)
assert len(INT_TAGS) == 16  # 8 integer types, enum, bcd, 6 delta types


def tagged(tag, strategy):
    return strategy.map(lambda v: (tag, v))


def plain(tag):
    # strategy of the plain value of a simple type
    if tag in INT_TYPES:
        lo, hi = INT_TYPES[tag]
        return st.integers(lo, hi)
    if tag == BOOLEAN:
        return st.booleans()
    if tag == OCTET_STRING:
        return st.binary(max_size=300)
    if tag == VISIBLE_STRING:
        return st.text(st.characters(max_codepoint=127), max_size=40)
    if tag == UTF8_STRING:
        return st.text(max_size=40)
    if tag == BIT_STRING:
        return st.integers(0, 80).flatmap(
            lambda n: st.binary(min_size=(n + 7) // 8, max_size=(n + 7) // 8).map(lambda d: BitString(n, d)))
    if tag == FLOAT32:
        return st.floats(width=32, allow_nan=False)
    if tag == FLOAT64:
        return st.floats(allow_nan=False)
    byte = st.integers(0, 255)
    if tag == DATE_TIME:
        return st.builds(DateTime, st.integers(0, 0xFFFF), byte, byte, byte, byte, byte, byte, byte,
                         st.integers(-0x8000, 0x7FFF), byte)
    if tag == DATE:
        return st.builds(Date, st.integers(0, 0xFFFF), byte, byte, byte)
    if tag == TIME:
        return st.builds(Time, byte, byte, byte, byte)
    raise AssertionError(tag)


SIMPLE_TAGS = INT_TAGS + [BOOLEAN, OCTET_STRING, VISIBLE_STRING, UTF8_STRING, BIT_STRING, FLOAT32,
                          FLOAT64, DATE_TIME, DATE, TIME]

descriptions = st.recursive(
    st.sampled_from(SIMPLE_TAGS),
    lambda d: st.one_of(
        st.tuples(st.just(ARRAY), st.integers(1, 3), d),
        st.lists(d, min_size=1, max_size=3).map(lambda ds: (STRUCTURE, ds)),
    ),
    max_leaves=6,
)


def element(desc):
    if isinstance(desc, int):
        return plain(desc)
    if desc[0] == ARRAY:
        return st.lists(element(desc[2]), min_size=desc[1], max_size=desc[1])
    return st.tuples(*[element(d) for d in desc[1]]).map(list)


compact_arrays = descriptions.flatmap(
    lambda d: st.lists(element(d), max_size=4).map(lambda vs: (COMPACT_ARRAY, (d, vs))))

leaves = st.one_of(
    st.just((NULL_DATA, None)),
    st.just((DONT_CARE, None)),
    st.sampled_from(SIMPLE_TAGS).flatmap(lambda t: tagged(t, plain(t))),
    compact_arrays,
)

data_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        tagged(ARRAY, st.lists(children, max_size=6)),
        tagged(STRUCTURE, st.lists(children, max_size=6)),
    ),
    max_leaves=25,
)


def depth(tv):
    t, v = tv
    if t in (ARRAY, STRUCTURE):
        return 1 + max([depth(x) for x in v] or [0])
    return 0


def same(a, b):
    # value equality that treats NaN as equal to NaN (its payload may change)
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


@SETTINGS
@given(data_values)
def test_every_type_round_trips_byte_exactly(tv):
    assume(depth(tv) <= axdr.MAX_DEPTH)
    t, v = tv
    b = axdr.encoded(t, v)
    assert axdr.decode(b) == (t, v, len(b))
    assert axdr.encoded(*axdr.decode(b)[:2]) == b
    r = Reader(b)
    assert r.skip() == t and r.pos == len(b)
    # the generic encoder writes at an offset into a buffer of exactly the size needed
    buf = bytearray(len(b) + 3)
    assert axdr.encode(buf, 3, t, v) == len(buf) and bytes(buf[3:]) == b


@SETTINGS
@given(data_values, st.data())
def test_truncated_encodings_are_rejected(tv, data):
    assume(depth(tv) <= axdr.MAX_DEPTH)
    b = axdr.encoded(*tv)
    cut = data.draw(st.integers(0, len(b) - 1))
    try:
        axdr.decode(b[:cut])
    except DecodeError:
        pass
    else:
        raise AssertionError("prefix %d of %s decoded" % (cut, b.hex()))
    try:
        Reader(b, 0, cut).skip()
    except DecodeError:
        pass
    else:
        raise AssertionError("prefix %d of %s skipped" % (cut, b.hex()))


def check_decoder_on(data):
    # decode raises only DecodeError; what decodes re-encodes to a fixed point
    try:
        t, v, n = axdr.decode(data)
    except DecodeError:
        t = None
    try:
        skipped = Reader(data).skip()
    except DecodeError:
        skipped = None
    if t is None:
        return
    assert skipped == t
    assert 1 <= n <= len(data)
    b2 = axdr.encoded(t, v)
    t2, v2, n2 = axdr.decode(b2)
    assert t2 == t and n2 == len(b2) and same(v2, v)
    assert axdr.encoded(t2, v2) == b2
    assert len(b2) <= n  # canonical forms are never longer


@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_decode_error(data):
    check_decoder_on(data)


@SETTINGS
@given(data_values, st.data())
def test_mutated_encodings_raise_only_decode_error(tv, data):
    assume(depth(tv) <= axdr.MAX_DEPTH)
    b = bytearray(axdr.encoded(*tv))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["set", "insert", "delete"]))
        i = data.draw(st.integers(0, len(b)))
        if op == "insert":
            b[i:i] = bytes([data.draw(st.integers(0, 255))])
        elif i < len(b):
            if op == "set":
                b[i] = data.draw(st.integers(0, 255))
            else:
                del b[i]
    check_decoder_on(bytes(b))


READER_METHODS = ["tag", "peek", "length", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64",
                  "f32", "f64", "null", "boolean", "number", "integer", "long", "double_long",
                  "long64", "unsigned", "long_unsigned", "double_long_unsigned", "long64_unsigned",
                  "enum", "float32", "float64", "array", "structure", "octet_string",
                  "visible_string", "utf8_string", "bit_string", "date_time", "date", "time", "skip"]


@SETTINGS
@given(st.binary(max_size=40), st.sampled_from(READER_METHODS), st.integers(0, 5))
def test_reader_methods_raise_only_decode_error(data, name, start):
    start = min(start, len(data))
    r = Reader(data, start)
    try:
        getattr(r, name)()
    except DecodeError:
        return
    assert start <= r.pos <= len(data)
    assert start <= r.mark <= r.pos


@SETTINGS
@given(st.sampled_from(INT_TAGS), st.integers(-(1 << 70), 1 << 70))
def test_hot_path_int_encoder_matches_generic_and_checks_range(tag, v):
    lo, hi = INT_TYPES[tag]
    buf = bytearray(9)
    if lo <= v <= hi:
        n = axdr.enc_int(buf, 0, tag, v)
        assert bytes(buf[:n]) == axdr.encoded(tag, v)
        assert Reader(buf, 0, n).int_of(tag) == v
    else:
        for fn in (lambda: axdr.enc_int(buf, 0, tag, v), lambda: axdr.encoded(tag, v)):
            try:
                fn()
            except axdr.BufferFull:
                raise AssertionError("range error reported as BufferFull")
            except EncodeError:
                pass
            else:
                raise AssertionError("%d encoded as %s" % (v, axdr.tag_name(tag)))


@SETTINGS
@given(st.integers(0, (1 << 32) - 1))
def test_length_round_trips_in_its_shortest_form(n):
    buf = bytearray(5)
    end = axdr.put_length(buf, 0, n)
    expect = 1 if n < 128 else 2 if n < 256 else 3 if n < 65536 else 4 if n < 1 << 24 else 5
    assert end == expect
    r = Reader(buf, 0, end)
    assert r.length() == n and r.pos == end


@SETTINGS
@given(st.binary(min_size=12, max_size=12), st.sampled_from([DATE_TIME, OCTET_STRING]))
def test_any_date_time_bytes_round_trip(raw, tag):
    b = (bytes([DATE_TIME]) if tag == DATE_TIME else b"\x09\x0c") + raw
    dt = Reader(b).date_time()
    buf = bytearray(len(b))
    assert dt.encode(buf, 0, tag) == len(b) and bytes(buf) == b


@SETTINGS
@given(st.binary(min_size=4, max_size=4))
def test_float32_bits_round_trip_except_nan_payloads(raw):
    t, v, _ = axdr.decode(bytes([FLOAT32]) + raw)
    b = axdr.encoded(t, v)
    if not math.isnan(v):
        assert b[1:] == raw


def measure(fn, *args):
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn(*args)
    except DecodeError:
        pass
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, elapsed


HOSTILE = [
    "01 84 7fffffff 00 00 00",          # array of 2**31 elements, 3 bytes
    "02 84 ffffffff 11 01",             # structure of 2**32-1
    "09 84 80000000 aabbcc",            # octet-string of 2 GiB
    "04 84 ffffffff ff",                # bit-string of 2**32-1 bits
    "0c 84 7fffffff 41",                # utf8-string
    "13 01 ffff 01 ffff 01 ffff 11 04 01020304",  # compact-array elements of 2**48 bytes
    "13 02 84 7fffffff 11 00",          # description structure of 2**31 elements
    "13 11 84 7fffffff 00",             # compact contents of 2 GiB
    "01 01" * 2000 + "00",              # nested 2000 deep
    "13" + "01 0001" * 2000 + "11 00",  # description nested 2000 deep
]


def test_hostile_headers_fail_fast_without_allocating():
    for h in HOSTILE:
        data = bytes.fromhex(h.replace(" ", ""))
        for fn in (axdr.decode, lambda d: Reader(d).skip()):
            peak, elapsed = measure(fn, data)
            assert peak < 64 * 1024, (h[:40], peak)
            assert elapsed < 0.5, (h[:40], elapsed)


@settings(max_examples=150, deadline=5000, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), data_values.map(lambda tv: axdr.encoded(*tv) if depth(tv) <= 16 else b"")))
def test_decoder_allocation_is_bounded_by_input_size(data):
    # Python objects cost a few hundred bytes per input byte at most; a
    # decoder that trusted a length field would allocate gigabytes.
    peak, _ = measure(axdr.decode, data)
    assert peak <= 16 * 1024 + 600 * len(data), (len(data), peak)
