# A-XDR encoding of COSEM data (IEC 62056-6-2 "Data" CHOICE; Green Book
# "A-XDR encoding", IEC 61334-6). Runs on MicroPython 1.27 and CPython 3.11.
#
# Three layers, from fast to convenient:
#
# 1. Hot-path encoders. put_*(buf, off, ...) write an untagged field,
#    enc_*(buf, off, ...) write a tagged Data element; both write into the
#    caller's preallocated bytearray (or writable memoryview) at `off` and
#    return the new offset. They allocate nothing (measured on MicroPython
#    1.27, big ints included), range-check every value themselves
#    (MicroPython's struct silently wraps) and raise BufferFull (an
#    EncodeError) when the buffer is too small, EncodeError when a value does
#    not fit its type. A str given to a string encoder is encoded first
#    (allocates): keep hot-path strings as bytes.
#
# 2. Reader: one instance, reset() per message, reads in place. pos is the
#    read offset, end the window limit, mark the start of the last string
#    read (octet_string() returns the length and leaves the data at
#    buf[mark:mark+n] for the caller to use without copying). Typed readers
#    check the tag; lengths and element counts are checked against the input
#    left before anything is returned, so a count of 2**31 with 3 bytes of
#    input fails at once. Nothing but DecodeError escapes. Reading allocates
#    nothing except the values themselves: an int >= 2**30 (48 B on
#    MicroPython) or a float (32 B).
#
# 3. Generic layer for tools, tests and other non-hot paths (allocates):
#    encode(buf, off, tag, value) -> off, decode(buf, off=0, end=None) ->
#    (tag, value, new_off), encoded(tag, value) -> bytes. Value model:
#      null-data, dont-care            None
#      array, structure                list of (tag, value) pairs
#      boolean                         bool (decode: any non-zero byte is True)
#      bit-string                      BitString(nbits, data)
#      integer types, enum, bcd, delta int (bcd is Integer8 in the standard:
#                                      signed, -128..127)
#      octet-string                    bytes
#      visible-string                  str (ASCII only, else DecodeError)
#      utf8-string                     str
#      float32, float64                float (NaN payloads are not kept)
#      date-time, date, time           DateTime, Date, Time: raw field values,
#                                      "not specified" kept as the raw marker
#                                      (0xFF, year 0xFFFF, deviation -0x8000)
#      compact-array                   (description, list of element values)
#        description: a simple type tag (int), (ARRAY, count, description) or
#        (STRUCTURE, [description, ...]); element values are plain values
#        (no tags): a list for array/structure descriptions.
#    decode() followed by encode() reproduces the input byte for byte for
#    every canonical encoding; decode also accepts two non-canonical forms
#    (lengths in a longer form than needed, booleans other than 0x00/0x01),
#    which re-encode in canonical form.
#
# Nesting of arrays, structures and compact-array descriptions is bounded by
# MAX_DEPTH in every layer (decoder, encoder, skip), so hostile input cannot
# exhaust the interpreter's stack.

import struct

from dlms_micro.errors import DecodeError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Data CHOICE tags (IEC 62056-6-2 Table 2)
NULL_DATA = const(0)
ARRAY = const(1)
STRUCTURE = const(2)
BOOLEAN = const(3)
BIT_STRING = const(4)
DOUBLE_LONG = const(5)
DOUBLE_LONG_UNSIGNED = const(6)
OCTET_STRING = const(9)
VISIBLE_STRING = const(10)
UTF8_STRING = const(12)
BCD = const(13)
INTEGER = const(15)
LONG = const(16)
UNSIGNED = const(17)
LONG_UNSIGNED = const(18)
COMPACT_ARRAY = const(19)
LONG64 = const(20)
LONG64_UNSIGNED = const(21)
ENUM = const(22)
FLOAT32 = const(23)
FLOAT64 = const(24)
DATE_TIME = const(25)
DATE = const(26)
TIME = const(27)
DELTA_INTEGER = const(28)
DELTA_LONG = const(29)
DELTA_DOUBLE_LONG = const(30)
DELTA_UNSIGNED = const(31)
DELTA_LONG_UNSIGNED = const(32)
DELTA_DOUBLE_LONG_UNSIGNED = const(33)
DONT_CARE = const(255)

# Deepest nesting of arrays/structures (and compact-array descriptions).
MAX_DEPTH = const(16)

# Date and time field markers (Blue Book 4.1.6.1 "Date and time formats")
NOT_SPECIFIED = const(0xFF)  # any one-byte field, clock status included
YEAR_NOT_SPECIFIED = const(0xFFFF)
DEVIATION_NOT_SPECIFIED = const(-0x8000)  # 0x8000 as a signed long
DST_END = const(0xFD)  # month: daylight savings end
DST_BEGIN = const(0xFE)  # month: daylight savings begin
SECOND_LAST_DAY = const(0xFD)  # day of month
LAST_DAY = const(0xFE)  # day of month
# clock status bits
STATUS_INVALID_VALUE = const(0x01)
STATUS_DOUBTFUL_VALUE = const(0x02)
STATUS_DIFFERENT_CLOCK_BASE = const(0x04)
STATUS_INVALID_CLOCK_STATUS = const(0x08)
STATUS_DAYLIGHT_SAVING_ACTIVE = const(0x80)


class BufferFull(EncodeError):
    # The destination buffer is too small: the value is fine, retry it in a
    # bigger buffer or in the next block.
    pass


# Per-tag tables for tags 0..33 (dont-care 255 is handled in _kind).
# Kind letters: N null, A array, S structure, b boolean, x bit-string,
# i signed int, u unsigned int, o octet-string, v visible-string,
# 8 utf8-string, c compact-array, f float, D date-time, d date, t time,
# - not a tag.
_KIND = b"NASbxiu--ov-8i-iiuuciuuffDdtiiiuuu"
_K_NULL = const(78)  # N
_K_ARR = const(65)  # A
_K_STRUCT = const(83)  # S
_K_BOOL = const(98)  # b
_K_BITS = const(120)  # x
_K_SINT = const(105)  # i
_K_UINT = const(117)  # u
_K_OCT = const(111)  # o
_K_VIS = const(118)  # v
_K_UTF8 = const(56)  # 8
_K_COMPACT = const(99)  # c
_K_FLOAT = const(102)  # f
_K_DT = const(68)  # D
_K_DATE = const(100)  # d
_K_TIME = const(116)  # t
_K_BAD = const(45)  # -
# encoded size of fixed-size values (0 for the rest)
_SIZE = b"\x00\x00\x00\x01\x00\x04\x04\x00\x00\x00\x00\x00\x00\x01\x00\x01\x02\x01\x02\x00\x08\x08\x01\x04\x08\x0c\x05\x04\x01\x02\x04\x01\x02\x04"
# indexed by size: struct formats and value ranges (compared, not computed,
# so that checking a value >= 2**30 allocates nothing on MicroPython)
_FMT_U = (None, ">B", ">H", None, ">I", None, None, None, ">Q")
_FMT_S = (None, ">b", ">h", None, ">i", None, None, None, ">q")
_UMAX = (0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF, 0, 0, 0, 0xFFFFFFFFFFFFFFFF)
_SMAX = (0, 0x7F, 0x7FFF, 0, 0x7FFFFFFF, 0, 0, 0, 0x7FFFFFFFFFFFFFFF)
_SMIN = (0, -0x80, -0x8000, 0, -0x80000000, 0, 0, 0, -0x8000000000000000)
_NAMES = (
    "null-data", "array", "structure", "boolean", "bit-string", "double-long",
    "double-long-unsigned", "", "", "octet-string", "visible-string", "",
    "utf8-string", "bcd", "", "integer", "long", "unsigned", "long-unsigned",
    "compact-array", "long64", "long64-unsigned", "enum", "float32", "float64",
    "date-time", "date", "time", "delta-integer", "delta-long",
    "delta-double-long", "delta-unsigned", "delta-long-unsigned",
    "delta-double-long-unsigned",
)
_BYTES = (bytes, bytearray, memoryview)
_SEQ = (list, tuple)
_NUM = (int, float)


def _kind(tag):
    if 0 <= tag < 34:
        return _KIND[tag]
    return _K_NULL if tag == DONT_CARE else _K_BAD


def tag_name(tag):
    # The standard's name of a Data tag, for messages and tools.
    if 0 <= tag < 34 and _NAMES[tag]:
        return _NAMES[tag]
    if tag == DONT_CARE:
        return "dont-care"
    return "tag %d" % tag


# ---------------------------------------------------------------- encoders


def _room(buf, off, n):
    if off < 0 or off + n > len(buf):
        raise BufferFull("%d bytes do not fit at offset %d of a %d-byte buffer" % (n, off, len(buf)))


def length_at(buf, p, e):
    # The 1-3 byte A-XDR length of the security APDUs (n < 0x80, 0x81 n,
    # 0x82 n n) at buf[p:e]: (length, offset of what follows), or (-1, p)
    # when it is truncated or another form; the caller names the fault.
    if p < e:
        n = buf[p]
        if n < 0x80:
            return n, p + 1
        if n == 0x81 and p + 1 < e:
            return buf[p + 1], p + 2
        if n == 0x82 and p + 2 < e:
            return (buf[p + 1] << 8) | buf[p + 2], p + 3
    return -1, p


def put_length(buf, off, n):
    # A-XDR length: < 0x80 in one byte, else 0x80|k followed by k bytes.
    if 0 <= n < 0x80:
        _room(buf, off, 1)
        buf[off] = n
        return off + 1
    if n < 0 or n > 0xFFFFFFFF:
        raise EncodeError("length %d cannot be encoded" % n)
    k = 1 if n <= 0xFF else 2 if n <= 0xFFFF else 3 if n <= 0xFFFFFF else 4
    _room(buf, off, k + 1)
    buf[off] = 0x80 | k
    i = off + k
    while i > off:
        buf[i] = n & 0xFF
        n >>= 8
        i -= 1
    return off + k + 1


def put_u8(buf, off, v):
    if v >> 8:  # also catches negative values
        raise EncodeError("%d does not fit one byte" % v)
    _room(buf, off, 1)
    buf[off] = v
    return off + 1


def enc_header(buf, off, tag, n):
    # Tag followed by an A-XDR length (strings) or element count (containers).
    off = put_u8(buf, off, tag)
    return put_length(buf, off, n)


def enc_array(buf, off, count):
    return enc_header(buf, off, ARRAY, count)


def enc_structure(buf, off, count):
    return enc_header(buf, off, STRUCTURE, count)


def enc_null(buf, off):
    return put_u8(buf, off, NULL_DATA)


def enc_dont_care(buf, off):
    return put_u8(buf, off, DONT_CARE)


def enc_boolean(buf, off, v):
    _room(buf, off, 2)
    buf[off] = BOOLEAN
    buf[off + 1] = 1 if v else 0
    return off + 2


def put_int(buf, off, tag, v):
    # Untagged integer of the size and signedness of `tag`.
    k = _kind(tag)
    if k != _K_SINT and k != _K_UINT:
        raise EncodeError("%s is not an integer type" % tag_name(tag))
    if not isinstance(v, int):
        raise EncodeError("%s needs an int, got %r" % (tag_name(tag), v))
    n = _SIZE[tag]
    s = k == _K_SINT
    if not (_SMIN[n] <= v <= _SMAX[n] if s else 0 <= v <= _UMAX[n]):
        raise EncodeError("%d out of range for %s" % (v, tag_name(tag)))
    _room(buf, off, n)
    if n == 1:
        buf[off] = v & 0xFF
    else:
        struct.pack_into(_FMT_S[n] if s else _FMT_U[n], buf, off, v)
    return off + n


def enc_int_in(buf, off, limit, tag, v):
    # enc_int in one call for the usual case: an integer-typed tag, an int v
    # in its range, and room for the element below limit (and in buf).
    # Returns the end, or -1 when any of that does not hold (nothing is
    # written): enc_int and the caller's limit check then answer as usual.
    if tag == DOUBLE_LONG_UNSIGNED and type(v) is int and 0 <= v <= 0x3FFFFFFF and 0 <= off <= limit - 5:
        # the commonest (an energy register), a small int: without struct
        if off + 5 > len(buf):
            return -1
        buf[off] = DOUBLE_LONG_UNSIGNED
        buf[off + 1] = v >> 24
        buf[off + 2] = (v >> 16) & 0xFF
        buf[off + 3] = (v >> 8) & 0xFF
        buf[off + 4] = v & 0xFF
        return off + 5
    if tag < 0 or tag > 33 or type(v) is not int:
        return -1
    k = _KIND[tag]
    n = _SIZE[tag]
    if (k != _K_UINT and k != _K_SINT) or off < 0 or off + 1 + n > limit or off + 1 + n > len(buf):
        return -1
    if k == _K_UINT:
        if v < 0 or v > _UMAX[n]:
            return -1
        buf[off] = tag
        struct.pack_into(_FMT_U[n], buf, off + 1, v)
    else:
        if v < _SMIN[n] or v > _SMAX[n]:
            return -1
        buf[off] = tag
        struct.pack_into(_FMT_S[n], buf, off + 1, v)
    return off + 1 + n


def enc_int(buf, off, tag, v):
    # Any integer-typed Data element: integer types, enum, bcd, delta types.
    _room(buf, off, 1)
    off2 = put_int(buf, off + 1, tag, v)
    buf[off] = tag
    return off2


def enc_integer(buf, off, v):
    return enc_int(buf, off, INTEGER, v)


def enc_long(buf, off, v):
    return enc_int(buf, off, LONG, v)


def enc_double_long(buf, off, v):
    return enc_int(buf, off, DOUBLE_LONG, v)


def enc_long64(buf, off, v):
    return enc_int(buf, off, LONG64, v)


def enc_unsigned(buf, off, v):
    return enc_int(buf, off, UNSIGNED, v)


def enc_long_unsigned(buf, off, v):
    return enc_int(buf, off, LONG_UNSIGNED, v)


def enc_double_long_unsigned(buf, off, v):
    return enc_int(buf, off, DOUBLE_LONG_UNSIGNED, v)


def enc_long64_unsigned(buf, off, v):
    return enc_int(buf, off, LONG64_UNSIGNED, v)


def enc_enum(buf, off, v):
    return enc_int(buf, off, ENUM, v)


def put_float(buf, off, tag, v):
    # Untagged float32 (tag FLOAT32) or float64 (any other tag).
    if not isinstance(v, _NUM):
        raise EncodeError("%s needs a number, got %r" % (tag_name(tag), v))
    n = 4 if tag == FLOAT32 else 8
    _room(buf, off, n)
    try:
        struct.pack_into(">f" if n == 4 else ">d", buf, off, v)
    except OverflowError:  # CPython: too large for float32
        raise EncodeError("%r out of range for %s" % (v, tag_name(tag)))
    # MicroPython packs an out-of-range value as infinity instead
    m = 0x80 if n == 4 else 0xF0
    if buf[off] & 0x7F == 0x7F and buf[off + 1] & m == m and v - v == 0:
        raise EncodeError("%r out of range for %s" % (v, tag_name(tag)))
    return off + n


def enc_float32(buf, off, v):
    _room(buf, off, 1)
    off2 = put_float(buf, off + 1, FLOAT32, v)
    buf[off] = FLOAT32
    return off2


def enc_float64(buf, off, v):
    _room(buf, off, 1)
    off2 = put_float(buf, off + 1, FLOAT64, v)
    buf[off] = FLOAT64
    return off2


def put_bytes(buf, off, src, start=0, end=None):
    # Copy src[start:end] to buf[off:] without making a slice.
    if end is None:
        end = len(src)
    if not 0 <= start <= end <= len(src):
        raise EncodeError("source range %d..%d outside %d bytes" % (start, end, len(src)))
    n = end - start
    _room(buf, off, n)
    if n == len(src):
        buf[off : off + n] = src
    else:
        for i in range(n):
            buf[off + i] = src[start + i]
    return off + n


def _enc_string(buf, off, tag, src, start, end):
    if isinstance(src, str):
        src = src.encode()  # allocates: keep hot-path strings as bytes
    if end is None:
        n = len(src)
        if start == 0 and n < 0x80 and 0 <= off and off + 2 + n <= len(buf):
            # the usual case (a whole short string) without the calls below
            buf[off] = tag
            buf[off + 1] = n
            buf[off + 2 : off + 2 + n] = src
            return off + 2 + n
        end = n
    if not 0 <= start <= end <= len(src):
        raise EncodeError("source range %d..%d outside %d bytes" % (start, end, len(src)))
    return put_bytes(buf, enc_header(buf, off, tag, end - start), src, start, end)


def enc_octet_string(buf, off, src, start=0, end=None):
    return _enc_string(buf, off, OCTET_STRING, src, start, end)


def enc_visible_string(buf, off, src, start=0, end=None):
    return _enc_string(buf, off, VISIBLE_STRING, src, start, end)


def enc_utf8_string(buf, off, src, start=0, end=None):
    return _enc_string(buf, off, UTF8_STRING, src, start, end)


def enc_bit_string(buf, off, nbits, src, start=0):
    # nbits bits, taken from (nbits + 7) // 8 bytes of src at start; the
    # first bit is the most significant bit of the first byte.
    off = enc_header(buf, off, BIT_STRING, nbits)
    return put_bytes(buf, off, src, start, start + ((nbits + 7) >> 3))


def put_date_time(buf, off, year, month, day, dow, hour, minute, second, hundredths, deviation, status):
    # The 12 bytes of a date-time (no tag). deviation: signed minutes,
    # -0x8000 (or 0x8000) = not specified.
    try:
        if deviation == 0x8000:
            deviation = -0x8000
        x = month | day | dow | hour | minute | second | hundredths | status
        if x >> 8 or year >> 16 or year < 0 or not -0x8000 <= deviation < 0x8000:
            raise EncodeError("date-time field out of range")
        _room(buf, off, 12)
        struct.pack_into(">HBBBBBBBhB", buf, off, year, month, day, dow, hour, minute, second, hundredths, deviation, status)
    except TypeError:
        raise EncodeError("date-time fields must be ints")
    return off + 12


def put_date(buf, off, year, month, day, dow):
    try:
        if (month | day | dow) >> 8 or year >> 16 or year < 0:
            raise EncodeError("date field out of range")
        _room(buf, off, 5)
        struct.pack_into(">HBBB", buf, off, year, month, day, dow)
    except TypeError:
        raise EncodeError("date fields must be ints")
    return off + 5


def put_time(buf, off, hour, minute, second, hundredths):
    try:
        if (hour | minute | second | hundredths) >> 8:
            raise EncodeError("time field out of range")
        _room(buf, off, 4)
        struct.pack_into(">BBBB", buf, off, hour, minute, second, hundredths)
    except TypeError:
        raise EncodeError("time fields must be ints")
    return off + 4


def _fixed_header(buf, off, tag, n):
    # date-time/date/time travel either with their own tag or, as in the
    # Clock interface class, as an octet-string of their size.
    if tag == OCTET_STRING:
        return enc_header(buf, off, OCTET_STRING, n)
    return put_u8(buf, off, tag)


def enc_date_time(buf, off, year, month, day, dow, hour, minute, second, hundredths, deviation, status):
    off = put_u8(buf, off, DATE_TIME)
    return put_date_time(buf, off, year, month, day, dow, hour, minute, second, hundredths, deviation, status)


def enc_date(buf, off, year, month, day, dow):
    return put_date(buf, put_u8(buf, off, DATE), year, month, day, dow)


def enc_time(buf, off, hour, minute, second, hundredths):
    return put_time(buf, put_u8(buf, off, TIME), hour, minute, second, hundredths)


# ------------------------------------------------------- date/time values


def _in(v, lo, hi):
    return lo <= v <= hi or v == NOT_SPECIFIED


def _date_ok(year, month, day, dow):
    return (
        0 <= year <= 0xFFFF
        and (_in(month, 1, 12) or month == DST_END or month == DST_BEGIN)
        and (_in(day, 1, 31) or day == SECOND_LAST_DAY or day == LAST_DAY)
        and _in(dow, 1, 7)
    )


def _time_ok(hour, minute, second, hundredths):
    return _in(hour, 0, 23) and _in(minute, 0, 59) and _in(second, 0, 59) and _in(hundredths, 0, 99)


class _Value:
    # equality and repr from fields()

    def __eq__(self, other):
        return type(other) is type(self) and self.fields() == other.fields()

    def __ne__(self, other):
        return not self.__eq__(other)

    def __repr__(self):
        return type(self).__name__ + repr(self.fields())


class DateTime(_Value):
    # date-time (12 bytes). Fields hold raw values; the defaults are all
    # "not specified". dow: 1 = Monday .. 7 = Sunday. deviation: minutes,
    # signed, as carried on the wire (-0x8000 = not specified).

    def __init__(self, year=YEAR_NOT_SPECIFIED, month=NOT_SPECIFIED, day=NOT_SPECIFIED,
                 dow=NOT_SPECIFIED, hour=NOT_SPECIFIED, minute=NOT_SPECIFIED,
                 second=NOT_SPECIFIED, hundredths=NOT_SPECIFIED,
                 deviation=DEVIATION_NOT_SPECIFIED, status=NOT_SPECIFIED):
        self.year = year
        self.month = month
        self.day = day
        self.dow = dow
        self.hour = hour
        self.minute = minute
        self.second = second
        self.hundredths = hundredths
        self.deviation = deviation
        self.status = status

    def read(self, r):
        # Fill from the 12 untagged bytes at the Reader's position.
        self.year = r.u16()
        self.month = r.u8()
        self.day = r.u8()
        self.dow = r.u8()
        self.hour = r.u8()
        self.minute = r.u8()
        self.second = r.u8()
        self.hundredths = r.u8()
        self.deviation = r.i16()
        self.status = r.u8()
        return self

    def put(self, buf, off):
        return put_date_time(buf, off, self.year, self.month, self.day, self.dow, self.hour, self.minute,
                             self.second, self.hundredths, self.deviation, self.status)

    def encode(self, buf, off, tag=DATE_TIME):
        # tag DATE_TIME, or OCTET_STRING for an octet-string(12)
        return self.put(buf, _fixed_header(buf, off, tag, 12))

    def valid(self):
        # Field ranges of the Blue Book (the codec itself accepts any byte).
        d = self.deviation
        return (_date_ok(self.year, self.month, self.day, self.dow)
                and _time_ok(self.hour, self.minute, self.second, self.hundredths)
                and (-720 <= d <= 720 or d == DEVIATION_NOT_SPECIFIED or d == 0x8000))

    def fields(self):
        return (self.year, self.month, self.day, self.dow, self.hour, self.minute, self.second,
                self.hundredths, self.deviation, self.status)



class Date(_Value):
    # date (5 bytes): year, month, day of month, day of week.

    def __init__(self, year=YEAR_NOT_SPECIFIED, month=NOT_SPECIFIED, day=NOT_SPECIFIED, dow=NOT_SPECIFIED):
        self.year = year
        self.month = month
        self.day = day
        self.dow = dow

    def read(self, r):
        self.year = r.u16()
        self.month = r.u8()
        self.day = r.u8()
        self.dow = r.u8()
        return self

    def put(self, buf, off):
        return put_date(buf, off, self.year, self.month, self.day, self.dow)

    def encode(self, buf, off, tag=DATE):
        return self.put(buf, _fixed_header(buf, off, tag, 5))

    def valid(self):
        return _date_ok(self.year, self.month, self.day, self.dow)

    def fields(self):
        return (self.year, self.month, self.day, self.dow)



class Time(_Value):
    # time (4 bytes): hour, minute, second, hundredths.

    def __init__(self, hour=NOT_SPECIFIED, minute=NOT_SPECIFIED, second=NOT_SPECIFIED, hundredths=NOT_SPECIFIED):
        self.hour = hour
        self.minute = minute
        self.second = second
        self.hundredths = hundredths

    def read(self, r):
        self.hour = r.u8()
        self.minute = r.u8()
        self.second = r.u8()
        self.hundredths = r.u8()
        return self

    def put(self, buf, off):
        return put_time(buf, off, self.hour, self.minute, self.second, self.hundredths)

    def encode(self, buf, off, tag=TIME):
        return self.put(buf, _fixed_header(buf, off, tag, 4))

    def valid(self):
        return _time_ok(self.hour, self.minute, self.second, self.hundredths)

    def fields(self):
        return (self.hour, self.minute, self.second, self.hundredths)



class BitString(_Value):
    # nbits bits in (nbits + 7) // 8 bytes; bit 0 is the most significant bit
    # of the first byte. Unused trailing bits are kept as given.

    def __init__(self, nbits, data=None):
        if not isinstance(nbits, int) or nbits < 0:
            raise EncodeError("bit-string length %r" % (nbits,))
        n = (nbits + 7) >> 3
        if data is None:
            data = bytes(n)
        elif len(data) != n:
            raise EncodeError("bit-string of %d bits needs %d bytes, got %d" % (nbits, n, len(data)))
        self.nbits = nbits
        self.data = bytes(data)

    @staticmethod
    def from_bits(bits):
        # BitString.from_bits("1011") or from an iterable of 0/1 or bools
        n = len(bits)
        data = bytearray((n + 7) >> 3)
        i = 0
        for b in bits:
            if b and b != "0":
                data[i >> 3] |= 0x80 >> (i & 7)
            i += 1
        return BitString(n, data)

    def bit(self, i):
        if not 0 <= i < self.nbits:
            raise IndexError("bit %d of %d" % (i, self.nbits))
        return (self.data[i >> 3] >> (7 - (i & 7))) & 1

    def __len__(self):
        return self.nbits

    def fields(self):
        return (self.nbits, self.data)


# ------------------------------------------------------------------ reader


class Reader:
    # In-place decoder over buf[start:end]. Create once, reset() per message.
    # All offsets (pos, end, mark, and those in error messages) index buf.

    def __init__(self, buf=b"", start=0, end=None):
        self.last_tag = 0
        self.reset(buf, start, end)

    def reset(self, buf, start=0, end=None):
        n = len(buf)
        if end is None:
            end = n
        if not 0 <= start <= end <= n:
            raise DecodeError("window %d..%d outside a %d-byte buffer" % (start, end, n))
        self.buf = buf
        self.pos = start
        self.end = end
        self.mark = start
        return self

    def _take(self, n, what):
        # Reserve n bytes, return their offset.
        p = self.pos
        if n > self.end - p:
            raise DecodeError("%s needs %d bytes at offset %d, %d left" % (what, n, p, self.end - p))
        self.pos = p + n
        return p

    # raw fields
    def u8(self):
        return self.buf[self._take(1, "byte")]

    def uint(self, n, signed=0):
        # n-byte big-endian integer; no allocation below 2**30
        p = self._take(n, "integer")
        b = self.buf
        v = b[p]
        if signed and v > 127:
            v -= 256
        if (n == 4 and (v > 0x3F or v < -0x40)) or (n == 8 and v != 0 and v != -1):
            # a big int anyway: struct makes it with fewer allocations
            return struct.unpack_from(_FMT_S[n] if signed else _FMT_U[n], b, p)[0]
        i = p + 1
        p += n
        while i < p:
            v = (v << 8) | b[i]
            i += 1
        return v

    def u16(self):
        return self.uint(2)

    def u32(self):
        return self.uint(4)

    def u64(self):
        return self.uint(8)

    def i8(self):
        return self.uint(1, 1)

    def i16(self):
        return self.uint(2, 1)

    def i32(self):
        return self.uint(4, 1)

    def i64(self):
        return self.uint(8, 1)

    def f32(self):
        return struct.unpack_from(">f", self.buf, self._take(4, "float32"))[0]

    def f64(self):
        return struct.unpack_from(">d", self.buf, self._take(8, "float64"))[0]

    def length(self):
        # A-XDR length (no check against the input left; see _sized)
        p = self.pos
        n = self.u8()
        if n < 0x80:
            return n
        if n == 0x80 or n > 0x84:
            raise DecodeError("malformed length byte 0x%02x at offset %d" % (n, p))
        if n - 0x80 > self.end - self.pos:
            raise DecodeError("length at offset %d truncated" % p)
        return self.uint(n - 0x80)

    def _sized(self, what, bits):
        # A length that must fit in the input left: bytes (or bits when
        # `bits`), or elements of at least one byte each.
        p = self.pos
        n = self.length()
        if ((n + 7) >> 3 if bits else n) > self.end - self.pos:
            raise DecodeError("%s length %d exceeds input at offset %d" % (what, n, p))
        return n

    # tags
    def tag(self):
        return self.buf[self._take(1, "tag")]

    def peek(self):
        # next tag without consuming it
        if self.pos >= self.end:
            raise DecodeError("tag needs 1 byte at offset %d, 0 left" % self.pos)
        return self.buf[self.pos]

    def expect(self, tag):
        p = self.pos
        t = self.tag()
        if t != tag:
            raise DecodeError("expected %s, got %s at offset %d" % (tag_name(tag), tag_name(t), p))

    # typed readers
    def null(self):
        self.expect(NULL_DATA)

    def boolean(self):
        self.expect(BOOLEAN)
        return self.u8() != 0

    def int_of(self, tag):
        # tagged integer of exactly this type (any integer-typed tag)
        self.expect(tag)
        k = _kind(tag)
        if k != _K_SINT and k != _K_UINT:
            raise DecodeError("%s is not an integer type" % tag_name(tag))
        return self.uint(_SIZE[tag], k == _K_SINT)

    def number(self):
        # tagged integer of any integer type; its tag is left in last_tag
        p = self.pos
        t = self.tag()
        k = _kind(t)
        if k != _K_SINT and k != _K_UINT:
            raise DecodeError("expected an integer type, got %s at offset %d" % (tag_name(t), p))
        self.last_tag = t
        return self.uint(_SIZE[t], k == _K_SINT)

    def integer(self):
        return self.int_of(INTEGER)

    def long(self):
        return self.int_of(LONG)

    def double_long(self):
        return self.int_of(DOUBLE_LONG)

    def long64(self):
        return self.int_of(LONG64)

    def unsigned(self):
        return self.int_of(UNSIGNED)

    def long_unsigned(self):
        return self.int_of(LONG_UNSIGNED)

    def double_long_unsigned(self):
        return self.int_of(DOUBLE_LONG_UNSIGNED)

    def long64_unsigned(self):
        return self.int_of(LONG64_UNSIGNED)

    def enum(self):
        return self.int_of(ENUM)

    def float32(self):
        self.expect(FLOAT32)
        return self.f32()

    def float64(self):
        self.expect(FLOAT64)
        return self.f64()

    def array(self):
        # element count (each element needs at least one byte of input)
        self.expect(ARRAY)
        return self._sized("array", 0)

    def structure(self):
        self.expect(STRUCTURE)
        return self._sized("structure", 0)

    def _string(self, tag):
        self.expect(tag)
        n = self._sized(_NAMES[tag], 0)
        self.mark = self.pos
        self.pos += n
        return n

    def octet_string(self):
        # length; the data is buf[mark:mark+length]
        return self._string(OCTET_STRING)

    def visible_string(self):
        return self._string(VISIBLE_STRING)

    def utf8_string(self):
        return self._string(UTF8_STRING)

    def bit_string(self):
        # number of bits; the (bits + 7) // 8 data bytes start at mark
        self.expect(BIT_STRING)
        n = self._sized("bit-string", 1)
        self.mark = self.pos
        self.pos += (n + 7) >> 3
        return n

    def _fixed(self, tag, n):
        # own tag, or an octet-string of exactly n bytes
        p = self.pos
        t = self.tag()
        if t == OCTET_STRING:
            if self.length() != n:
                raise DecodeError("octet-string at offset %d is not a %d-byte %s" % (p, n, tag_name(tag)))
        elif t != tag:
            raise DecodeError("expected %s, got %s at offset %d" % (tag_name(tag), tag_name(t), p))
        self.mark = self.pos

    def date_time(self, into=None):
        # date-time (or octet-string(12)) into a DateTime, reused if given
        self._fixed(DATE_TIME, 12)
        return (DateTime() if into is None else into).read(self)

    def date(self, into=None):
        self._fixed(DATE, 5)
        return (Date() if into is None else into).read(self)

    def time(self, into=None):
        self._fixed(TIME, 4)
        return (Time() if into is None else into).read(self)

    def skip(self, depth=0):
        # Skip one complete Data element without allocating; return its tag.
        # Compact-array contents are skipped by their length, unchecked.
        p = self.pos
        t = self.tag()
        k = _kind(t)
        if k == _K_ARR or k == _K_STRUCT:
            if depth >= MAX_DEPTH:
                raise DecodeError("nesting deeper than %d at offset %d" % (MAX_DEPTH, p))
            n = self._sized(_NAMES[t], 0)
            while n:
                self.skip(depth + 1)
                n -= 1
        elif k == _K_OCT or k == _K_VIS or k == _K_UTF8:
            n = self._sized(_NAMES[t], 0)  # (self.pos += self._sized() would
            self.pos += n  # add to the position before the length)
        elif k == _K_BITS:
            n = self._sized("bit-string", 1)
            self.pos += (n + 7) >> 3
        elif k == _K_COMPACT:
            self._skip_desc(depth + 1)
            n = self._sized("compact-array contents", 0)
            self.pos += n
        elif k == _K_BAD:
            raise DecodeError("unknown tag %d at offset %d" % (t, p))
        elif t < 34:
            self._take(_SIZE[t], _NAMES[t])
        return t

    def _skip_desc(self, depth):
        if depth > MAX_DEPTH:
            raise DecodeError("type description deeper than %d at offset %d" % (MAX_DEPTH, self.pos))
        p = self.pos
        t = self.tag()
        if t == ARRAY:
            self.u16()
            self._skip_desc(depth + 1)
        elif t == STRUCTURE:
            n = self._sized("structure description", 0)
            while n:
                self._skip_desc(depth + 1)
                n -= 1
        elif _kind(t) == _K_BAD or t == COMPACT_ARRAY:
            raise DecodeError("%s not allowed in a type description at offset %d" % (tag_name(t), p))


# ------------------------------------------------------------ generic layer


def decode(buf, off=0, end=None):
    # -> (tag, value, new_off); see the value model at the top of the module
    r = Reader(buf, off, end)
    t = r.tag()
    v = _dec_body(r, t, 0)
    return t, v, r.pos


def _dec(r, depth):
    t = r.tag()
    return (t, _dec_body(r, t, depth))


def _dec_body(r, t, depth):
    p = r.pos
    k = _kind(t)
    if k == _K_SINT or k == _K_UINT:
        return r.uint(_SIZE[t], k == _K_SINT)
    if k == _K_NULL:
        return None
    if k == _K_ARR or k == _K_STRUCT:
        if depth >= MAX_DEPTH:
            raise DecodeError("nesting deeper than %d at offset %d" % (MAX_DEPTH, p - 1))
        n = r._sized(_NAMES[t], 0)
        out = []
        for _ in range(n):
            out.append(_dec(r, depth + 1))
        return out
    if k == _K_BOOL:
        return r.u8() != 0
    if k == _K_OCT or k == _K_VIS or k == _K_UTF8:
        n = r._sized(_NAMES[t], 0)
        q = r.pos
        r.pos = q + n
        b = bytes(r.buf[q : r.pos])
        if k == _K_OCT:
            return b
        if k == _K_VIS:
            for c in b:
                if c > 127:
                    raise DecodeError("visible-string byte 0x%02x is not ASCII at offset %d" % (c, p))
        try:
            return b.decode()
        except (UnicodeError, ValueError):
            raise DecodeError("utf8-string at offset %d is not valid UTF-8" % p)
    if k == _K_BITS:
        n = r._sized("bit-string", 1)
        q = r.pos
        r.pos += (n + 7) >> 3
        return BitString(n, r.buf[q : r.pos])
    if k == _K_FLOAT:
        return r.f32() if t == FLOAT32 else r.f64()
    if k == _K_DT:
        return DateTime().read(r)
    if k == _K_DATE:
        return Date().read(r)
    if k == _K_TIME:
        return Time().read(r)
    if k == _K_COMPACT:
        return _dec_compact(r, depth)
    raise DecodeError("unknown tag %d at offset %d" % (t, p - 1))


# Compact-array descriptions are restricted so that every element value
# consumes input: no null-data/dont-care leaves, no empty structures, no
# arrays of zero elements. Otherwise a few bytes could describe millions of
# empty values.


def _desc_leaf_ok(t):
    k = _kind(t)
    return not (k == _K_BAD or k == _K_NULL or k == _K_COMPACT or k == _K_ARR or k == _K_STRUCT)


def _width(desc):
    # minimum encoded size of one element
    if isinstance(desc, int):
        k = _kind(desc)
        return 1 if (k == _K_OCT or k == _K_VIS or k == _K_UTF8 or k == _K_BITS) else _SIZE[desc]
    if desc[0] == ARRAY:
        return desc[1] * _width(desc[2])
    w = 0
    for d in desc[1]:
        w += _width(d)
    return w


def _dec_desc(r, depth):
    p = r.pos
    if depth > MAX_DEPTH:
        raise DecodeError("type description deeper than %d at offset %d" % (MAX_DEPTH, p))
    t = r.tag()
    if t == ARRAY:
        n = r.u16()
        if not n:
            raise DecodeError("array of 0 elements in type description at offset %d" % p)
        return (ARRAY, n, _dec_desc(r, depth + 1))
    if t == STRUCTURE:
        n = r._sized("structure description", 0)
        if not n:
            raise DecodeError("empty structure in type description at offset %d" % p)
        return (STRUCTURE, [_dec_desc(r, depth + 1) for _ in range(n)])
    if not _desc_leaf_ok(t):
        raise DecodeError("%s not allowed in a type description at offset %d" % (tag_name(t), p))
    return t


def _dec_elem(r, desc, depth):
    if isinstance(desc, int):
        return _dec_body(r, desc, depth)
    if desc[0] == ARRAY:
        return [_dec_elem(r, desc[2], depth + 1) for _ in range(desc[1])]
    return [_dec_elem(r, d, depth + 1) for d in desc[1]]


def _dec_compact(r, depth):
    desc = _dec_desc(r, depth + 1)
    p = r.pos
    n = r._sized("compact-array contents", 0)
    end = r.pos + n
    w = _width(desc)
    if n and w > n:
        raise DecodeError("compact-array element needs %d bytes, contents at offset %d hold %d" % (w, p, n))
    out = []
    saved = r.end
    r.end = end
    while r.pos < end:
        out.append(_dec_elem(r, desc, depth + 1))
    r.end = saved
    return (desc, out)


def encode(buf, off, tag, value):
    # Tagged Data element from the generic value model; returns the new offset.
    return _enc(buf, off, tag, value, 0)


def _grow(fn, a, b, c):
    # Run an encoder into a scratch buffer big enough; -> bytes
    size = 64
    while True:
        buf = bytearray(size)
        try:
            n = fn(buf, 0, a, b, c)
            return bytes(buf[:n])
        except BufferFull:
            size *= 4


def encoded(tag, value):
    return _grow(_enc, tag, value, 0)


def _enc(buf, off, tag, v, depth):
    if not isinstance(tag, int) or _kind(tag) == _K_BAD:
        raise EncodeError("unknown tag %r" % (tag,))
    off = put_u8(buf, off, tag)
    return _enc_body(buf, off, tag, v, depth)


def _enc_body(buf, off, t, v, depth):
    k = _kind(t)
    if k == _K_SINT or k == _K_UINT:
        return put_int(buf, off, t, v)
    if k == _K_NULL:
        if v is not None:
            raise EncodeError("%s takes None, got %r" % (tag_name(t), v))
        return off
    if k == _K_ARR or k == _K_STRUCT:
        if depth >= MAX_DEPTH:
            raise EncodeError("nesting deeper than %d" % MAX_DEPTH)
        if not isinstance(v, _SEQ):
            raise EncodeError("%s needs a list of (tag, value), got %r" % (tag_name(t), v))
        off = put_length(buf, off, len(v))
        for item in v:
            if not isinstance(item, _SEQ) or len(item) != 2:
                raise EncodeError("%s element %r is not a (tag, value) pair" % (tag_name(t), item))
            off = _enc(buf, off, item[0], item[1], depth + 1)
        return off
    if k == _K_BOOL:
        if v is not True and v is not False and v != 0 and v != 1:
            raise EncodeError("boolean needs a bool, got %r" % (v,))
        return put_u8(buf, off, 1 if v else 0)
    if k == _K_OCT or k == _K_VIS or k == _K_UTF8:
        if isinstance(v, str) and k != _K_OCT:
            try:
                v = v.encode()
            except (UnicodeError, ValueError):
                raise EncodeError("%r cannot be encoded as UTF-8" % (v,))
        elif not isinstance(v, _BYTES):
            raise EncodeError("%s needs %s, got %r" % (tag_name(t), "bytes" if k == _K_OCT else "str", v))
        if k == _K_VIS:
            for c in v:
                if c > 127:
                    raise EncodeError("visible-string must be ASCII: %r" % (v,))
        off = put_length(buf, off, len(v))
        return put_bytes(buf, off, v)
    if k == _K_BITS:
        if not isinstance(v, BitString):
            raise EncodeError("bit-string needs a BitString, got %r" % (v,))
        off = put_length(buf, off, v.nbits)
        return put_bytes(buf, off, v.data)
    if k == _K_FLOAT:
        return put_float(buf, off, t, v)
    if k == _K_DT or k == _K_DATE or k == _K_TIME:
        cls = DateTime if k == _K_DT else Date if k == _K_DATE else Time
        if not isinstance(v, cls):
            raise EncodeError("%s needs a %s, got %r" % (tag_name(t), cls.__name__, v))
        return v.put(buf, off)
    # compact-array
    if not isinstance(v, _SEQ) or len(v) != 2 or not isinstance(v[1], _SEQ):
        raise EncodeError("compact-array needs (description, list of values), got %r" % (v,))
    desc = v[0]
    off = _enc_desc(buf, off, desc, depth + 1)
    body = _grow(_enc_elems, desc, v[1], depth)
    off = put_length(buf, off, len(body))
    return put_bytes(buf, off, body)


def _enc_desc(buf, off, desc, depth):
    if depth > MAX_DEPTH:
        raise EncodeError("type description deeper than %d" % MAX_DEPTH)
    if isinstance(desc, int):
        if not _desc_leaf_ok(desc):
            raise EncodeError("%s not allowed in a type description" % tag_name(desc))
        return put_u8(buf, off, desc)
    if isinstance(desc, _SEQ) and len(desc) == 3 and desc[0] == ARRAY and isinstance(desc[1], int) and 0 < desc[1] <= 0xFFFF:
        off = put_u8(buf, off, ARRAY)
        off = put_int(buf, off, LONG_UNSIGNED, desc[1])
        return _enc_desc(buf, off, desc[2], depth + 1)
    if isinstance(desc, _SEQ) and len(desc) == 2 and desc[0] == STRUCTURE and isinstance(desc[1], _SEQ) and desc[1]:
        off = put_u8(buf, off, STRUCTURE)
        off = put_length(buf, off, len(desc[1]))
        for d in desc[1]:
            off = _enc_desc(buf, off, d, depth + 1)
        return off
    raise EncodeError("bad type description %r" % (desc,))


def _enc_elems(buf, off, desc, values, depth):
    for v in values:
        off = _enc_elem(buf, off, desc, v, depth + 1)
    return off


def _enc_elem(buf, off, desc, v, depth):
    # desc is already checked by _enc_desc
    if isinstance(desc, int):
        return _enc_body(buf, off, desc, v, depth)
    if desc[0] == ARRAY:
        if not isinstance(v, _SEQ) or len(v) != desc[1]:
            raise EncodeError("compact-array element %r is not a list of %d values" % (v, desc[1]))
        for x in v:
            off = _enc_elem(buf, off, desc[2], x, depth + 1)
        return off
    ds = desc[1]
    if not isinstance(v, _SEQ) or len(v) != len(ds):
        raise EncodeError("compact-array element %r is not a list of %d values" % (v, len(ds)))
    for i in range(len(ds)):
        off = _enc_elem(buf, off, ds[i], v[i], depth + 1)
    return off
