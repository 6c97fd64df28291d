# Clock (class_id 8, version 0), Blue Book 4.5.1, and the calendar
# arithmetic the meter's local time needs.
#
#   attribute 2 time                        octet-string(12) date-time: local
#                                           time, deviation and clock status
#   attribute 3 time_zone                   long, minutes (-720..720)
#   attribute 4 status                      unsigned (clock status bits)
#   attribute 5 daylight_savings_begin      octet-string(12) date-time, with
#   attribute 6 daylight_savings_end        wildcards (a yearly rule)
#   attribute 7 daylight_savings_deviation  integer, minutes (-120..120)
#   attribute 8 daylight_savings_enabled    boolean
#   attribute 9 clock_base                  enum (static: from param)
#   method 1 adjust_to_quarter (integer(0))
#   method 2 adjust_to_measuring_period (integer(0))
#   method 3 adjust_to_minute (integer(0))
#   method 4 adjust_to_preset_time (integer(0))
#   method 5 preset_adjusting_time (structure {preset_time,
#            validity_interval_start, validity_interval_end}: octet-string(12))
#   method 6 shift_time (long, -900..900 seconds)
#
# TIME. The core never sets the host clock: the port's meter.wall_clock()
# gives UTC seconds since 1970 and the Clock keeps an offset in its state;
# the meter's time is wall_clock() + offset. SET time, shift_time and the
# adjust_* methods change the offset. The first Clock object in the table is
# the meter's clock: now(meter) and enc_local_time() (capture times, profile
# time stamps) use it.
#
# SIGNS. The Blue Book defines the deviation (date-time bytes 9-10) and
# time_zone as UTC minus local time: -60 for CET (UTC+1), -120 in summer.
# Some companion standards (India, Italy, Saudi Arabia) use local minus UTC;
# param flag FLAG_EAST_POSITIVE selects that. daylight_savings_deviation is
# the minutes the local time moves forward at DST begin (+60 in the EU).
#
# DST RULES. daylight_savings_begin/end are date-times whose unspecified
# fields are wildcards: year 0xFFFF = every year; day 0xFE / 0xFD = last /
# second last day of the month; with a day of week, day 0xFE/0xFD picks the
# last such weekday on or before that day (month 3, day 0xFE, dow 7 = last
# Sunday of March) and a day 1..31 picks the first such weekday on or after
# it (month 3, day 8, dow 7 = second Sunday of March). Hour/minute/second
# 0xFF count as 0. A rule with a deviation is in that fixed time (deviation
# 0: UTC); without one, begin is read in local standard time and end in
# local daylight time (the time the clock shows at that moment). DST spans
# the new year when begin falls after end (southern hemisphere). A rule that
# names no month, or a day the month lacks, never takes effect.
#
# SET time: a date-time with a deviation is taken as that local time; with
# deviation 0x8000 (not specified) as the meter's own local time, where the
# repeated hour at DST end is read per the clock status DST bit if the
# status is specified (else as daylight time) and the skipped hour at DST
# begin as standard time. It must name a real date and time (year, month,
# day, hour, minute, second; hundredths and day of week may be 0xFF, day of
# week is not checked). It clears the invalid and doubtful status bits.
# Out-of-range values: OTHER_REASON; a wrong data type: TYPE_UNMATCHED.
#
# INTEGERS. Seconds since 1970 exceed MicroPython's small ints (2**30), so
# each conversion between UTC seconds and a civil date costs a few big-int
# operations (32 B each, ~10 per GET of the time, bounded); the calendar
# itself works on day numbers and seconds of the day, small ints.

from dlms_micro import axdr
from dlms_micro.cosem import base, common

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# State slots, relative to the object's slot.
S_OFFSET = const(0)  # meter time - wall_clock(), seconds (int)
S_TIME_ZONE = const(1)  # attribute 3 value, minutes (int)
S_STATUS = const(2)  # clock status bits kept (int; the DST bit is computed)
S_DST_BEGIN = const(3)  # attribute 5: 12 bytes
S_DST_END = const(4)  # attribute 6: 12 bytes
S_DST_DEVIATION = const(5)  # attribute 7, minutes (int)
S_DST_ENABLED = const(6)  # attribute 8 (bool)
S_PRESET_TIME = const(7)  # preset_adjusting_time: UTC seconds or None
S_VALID_FROM = const(8)
S_VALID_TO = const(9)
SLOTS = 10

# param: None or (clock_base[, measuring_period_s[, flags]])
FLAG_EAST_POSITIVE = const(1)

# clock_base enum
BASE_NOT_DEFINED = const(0)
BASE_INTERNAL_CRYSTAL = const(1)
BASE_MAINS_50HZ = const(2)
BASE_MAINS_60HZ = const(3)
BASE_GPS = const(4)
BASE_RADIO_CONTROLLED = const(5)

_DAY = const(86400)
_DEV_NONE = const(-0x8000)
_ST_DST = const(0x80)
_ST_CLEARED_BY_SET = const(0x0B)  # invalid value, doubtful value, invalid status

# Yearly DST rules of the European Union: last Sunday of March / October at
# 01:00 UTC (deviation 0), right for every EU time zone.
EU_DST_BEGIN = b"\xff\xff\x03\xfe\x07\x01\x00\x00\xff\x00\x00\xff"
EU_DST_END = b"\xff\xff\x0a\xfe\x07\x01\x00\x00\xff\x00\x00\xff"
NOT_SPECIFIED = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"


def dst_rule(month, day, dow=0xFF, hour=0, minute=0, second=0, deviation=_DEV_NONE, year=0xFFFF):
    # 12-byte date-time for daylight_savings_begin/end, e.g. the US rules:
    # dst_rule(3, 8, 7, 2) and dst_rule(11, 1, 7, 2).
    b = bytearray(12)
    axdr.put_date_time(b, 0, year, month, day, dow, hour, minute, second, 0xFF, deviation, 0xFF)
    return bytes(b)


def initial_state(time_zone=0, dst_begin=EU_DST_BEGIN, dst_end=EU_DST_END, dst_deviation=60, dst_enabled=False,
                  status=0, offset=0):
    # The SLOTS values of a Clock, in slot order: state[s:s + SLOTS] = ...
    return [offset, time_zone, status, dst_begin, dst_end, dst_deviation, dst_enabled, None, None, None]


# ---------------------------------------------------------------- calendar


def is_leap(y):
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def days_in_month(y, m):
    if m == 2:
        return 29 if is_leap(y) else 28
    if m == 4 or m == 6 or m == 9 or m == 11:
        return 30
    return 31


def days_from_civil(y, m, d):
    # Days since 1970-01-01 of a proleptic Gregorian date. Counts years from
    # March, so that the leap day ends a year: a 400-year cycle has 146097
    # days, a March-based year 365 + its leap day.
    if m <= 2:
        y -= 1
        m += 9
    else:
        m -= 3
    cycle = y // 400
    yoc = y - cycle * 400  # year of the cycle, 0..399
    doy = (153 * m + 2) // 5 + d - 1  # day of the March-based year
    doc = yoc * 365 + yoc // 4 - yoc // 100 + doy  # day of the cycle
    return cycle * 146097 + doc - 719468  # 719468: 0000-03-01 .. 1970-01-01


def civil_from_days(z):
    # Inverse of days_from_civil, packed as y * 10000 + m * 100 + d (a small
    # int, no tuple).
    z += 719468
    cycle = z // 146097
    doc = z - cycle * 146097
    yoc = (doc - doc // 1460 + doc // 36524 - doc // 146096) // 365
    doy = doc - (yoc * 365 + yoc // 4 - yoc // 100)
    mp = (5 * doy + 2) // 153  # March-based month, 0..11
    d = doy - (153 * mp + 2) // 5 + 1
    y = yoc + cycle * 400
    if mp < 10:
        m = mp + 3
    else:
        m = mp - 9
        y += 1
    return y * 10000 + m * 100 + d


def day_of_week(z):
    # 1 = Monday .. 7 = Sunday; 1970-01-01 was a Thursday.
    return (z + 3) % 7 + 1


# -------------------------------------------------------- local time rules


def meter_clock(meter):
    # The meter's clock: the first Clock object of the table, or None.
    for e in meter.table:
        if e[base.E_CLASS] == 8 and e[base.E_SLOT] >= 0:
            return e
    return None


def _sign(e):
    # +1 when the deviation is local minus UTC (FLAG_EAST_POSITIVE), else -1
    p = e[base.E_PARAM]
    if p is not None and len(p) > 2 and p[2] & FLAG_EAST_POSITIVE:
        return 1
    return -1


def _i16(buf, p):
    v = (buf[p] << 8) | buf[p + 1]
    return v - 0x10000 if v & 0x8000 else v


def _rule_utc(rule, y, std, dst, sign):
    # UTC seconds at which a DST rule (12 bytes) falls in year y, or None.
    # std: local standard time minus UTC in minutes; dst: minutes added to it
    # when the rule is read in daylight time.
    if rule is None or len(rule) != 12:
        return None
    ry = (rule[0] << 8) | rule[1]
    if ry != 0xFFFF:
        y = ry
    m = rule[2]
    if m < 1 or m > 12:
        return None
    d = rule[3]
    dim = days_in_month(y, m)
    back = True
    if d == 0xFE:
        d = dim
    elif d == 0xFD:
        d = dim - 1
    elif 1 <= d <= dim:
        back = False
    else:
        return None
    z = days_from_civil(y, m, d)
    dow = rule[4]
    if 1 <= dow <= 7:
        cur = day_of_week(z)
        if back:
            z -= (cur - dow) % 7
        else:
            z += (dow - cur) % 7
    h = rule[5]
    mi = rule[6]
    s = rule[7]
    sod = (0 if h == 0xFF else h) * 3600 + (0 if mi == 0xFF else mi) * 60 + (0 if s == 0xFF else s)
    dev = _i16(rule, 9)
    if dev != _DEV_NONE:
        off = sign * dev
    else:
        off = std + dst
    return z * _DAY + (sod - off * 60)


def _dst_active(st, s, std, sign, utc):
    # Is daylight saving time in force at utc (rules enabled or not)?
    z = (utc + std * 60) // _DAY  # day in local standard time
    y = civil_from_days(z) // 10000
    dst = st[s + S_DST_DEVIATION]
    b = _rule_utc(st[s + S_DST_BEGIN], y, std, 0, sign)
    if b is None:
        return False
    e = _rule_utc(st[s + S_DST_END], y, std, dst, sign)
    if e is None:
        return False
    if b < e:
        return b <= utc < e
    return utc >= b or utc < e


def _std(e, st, sign):
    # local standard time minus UTC, minutes
    return sign * st[e[base.E_SLOT] + S_TIME_ZONE]


def dst_active(meter, e, utc):
    # Whether the clock e shows daylight saving time at utc.
    st = meter.state
    s = e[base.E_SLOT]
    if not st[s + S_DST_ENABLED]:
        return False
    sign = _sign(e)
    return _dst_active(st, s, _std(e, st, sign), sign, utc)


def local_offset(meter, e, utc):
    # Local time minus UTC at utc, in minutes, DST included.
    st = meter.state
    s = e[base.E_SLOT]
    sign = _sign(e)
    std = sign * st[s + S_TIME_ZONE]
    if st[s + S_DST_ENABLED] and _dst_active(st, s, std, sign, utc):
        return std + st[s + S_DST_DEVIATION]
    return std


def now(meter, e=None):
    # The meter's time, UTC seconds (None without a wall clock). e: the
    # clock entry (default: meter_clock(meter)).
    wc = meter.wall_clock
    if wc is None:
        return None
    if e is None:
        e = meter_clock(meter)
    if e is None:
        return wc()
    return wc() + meter.state[e[base.E_SLOT] + S_OFFSET]


def put_local_time(meter, utc, buf, off, e=None):
    # The 12 date-time bytes of utc in the meter's local time, with its
    # deviation and clock status, at buf[off:]. utc None: every field not
    # specified. Without a Clock in the table: UTC, deviation 0, status 0.
    if utc is None:
        return axdr.put_bytes(buf, off, NOT_SPECIFIED)
    if e is None:
        e = meter_clock(meter)
    if e is None:
        offm = 0
        dev = 0
        status = 0
    else:
        st = meter.state
        s = e[base.E_SLOT]
        sign = _sign(e)
        std = sign * st[s + S_TIME_ZONE]
        status = st[s + S_STATUS] & 0x7F
        offm = std
        if st[s + S_DST_ENABLED] and _dst_active(st, s, std, sign, utc):
            offm = std + st[s + S_DST_DEVIATION]
            status |= _ST_DST
        dev = sign * offm
    local = utc + offm * 60
    z = local // _DAY
    sod = local % _DAY
    ymd = civil_from_days(z)
    return axdr.put_date_time(buf, off, ymd // 10000, (ymd // 100) % 100, ymd % 100, day_of_week(z),
                              sod // 3600, (sod // 60) % 60, sod % 60, 0xFF, dev, status)


def enc_local_time(meter, utc, buf, off, e=None):
    # put_local_time as an octet-string(12) Data element (the Clock's form).
    off = axdr.enc_header(buf, off, axdr.OCTET_STRING, 12)
    return put_local_time(meter, utc, buf, off, e)


def utc_of(meter, e, buf, p):
    # UTC seconds of the date-time at buf[p:p+12] (see SET time above), or
    # None when it does not name one instant. e: the clock whose rules
    # apply to a date-time without deviation (None: such a time is UTC).
    y = (buf[p] << 8) | buf[p + 1]
    m = buf[p + 2]
    d = buf[p + 3]
    h = buf[p + 5]
    mi = buf[p + 6]
    s = buf[p + 7]
    hs = buf[p + 8]
    dev = _i16(buf, p + 9)
    status = buf[p + 11]
    if not (1970 <= y <= 9999 and 1 <= m <= 12 and 1 <= d <= days_in_month(y, m)):
        return None
    if h > 23 or mi > 59 or s > 59 or (hs > 99 and hs != 0xFF):
        return None
    if dev != _DEV_NONE and not -720 <= dev <= 720:
        return None
    local = days_from_civil(y, m, d) * _DAY + (h * 3600 + mi * 60 + s)
    if e is None:
        return local if dev == _DEV_NONE else local + dev * 60
    sign = _sign(e)
    if dev != _DEV_NONE:
        return local - sign * dev * 60
    st = meter.state
    k = e[base.E_SLOT]
    std = sign * st[k + S_TIME_ZONE]
    u_std = local - std * 60
    if not st[k + S_DST_ENABLED]:
        return u_std
    u_dst = u_std - st[k + S_DST_DEVIATION] * 60
    std_ok = not _dst_active(st, k, std, sign, u_std)
    dst_ok = _dst_active(st, k, std, sign, u_dst)
    if std_ok and dst_ok:  # the repeated hour at DST end
        if status != 0xFF and not status & _ST_DST:
            return u_std
        return u_dst
    if dst_ok:
        return u_dst
    return u_std  # standard time, or the skipped hour at DST begin


def _rule_ok(buf, p):
    # field ranges of a daylight_savings_begin/end value (wildcards allowed)
    m = buf[p + 2]
    d = buf[p + 3]
    dow = buf[p + 4]
    h = buf[p + 5]
    mi = buf[p + 6]
    s = buf[p + 7]
    hs = buf[p + 8]
    dev = _i16(buf, p + 9)
    return (
        (1 <= m <= 12 or m == 0xFF)
        and (1 <= d <= 31 or d >= 0xFD)
        and (1 <= dow <= 7 or dow == 0xFF)
        and (h <= 23 or h == 0xFF)
        and (mi <= 59 or mi == 0xFF)
        and (s <= 59 or s == 0xFF)
        and (hs <= 99 or hs == 0xFF)
        and (-720 <= dev <= 720 or dev == _DEV_NONE)
    )


# ------------------------------------------------------------ the class


class Clock(base.InterfaceClass):
    class_id = 8
    version = 0
    attribute_count = 9
    method_count = 6
    slots = SLOTS

    def get(self, ctx, obj, attr):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            t = now(ctx.meter, obj)
            if t is None:  # no wall clock: not specified, invalid
                pos = axdr.enc_header(buf, pos, axdr.OCTET_STRING, 12)
                pos = axdr.put_bytes(buf, pos, NOT_SPECIFIED)
                buf[pos - 1] = axdr.STATUS_INVALID_VALUE
            else:
                pos = enc_local_time(ctx.meter, t, buf, pos, obj)
        elif attr == 3:
            pos = axdr.enc_long(buf, pos, st[s + S_TIME_ZONE])
        elif attr == 4:
            v = st[s + S_STATUS] & 0x7F
            t = now(ctx.meter, obj)
            if t is not None and dst_active(ctx.meter, obj, t):
                v |= _ST_DST
            pos = axdr.enc_unsigned(buf, pos, v)
        elif attr == 5 or attr == 6:
            v = st[s + (S_DST_BEGIN if attr == 5 else S_DST_END)]
            pos = axdr.enc_octet_string(buf, pos, NOT_SPECIFIED if v is None else v)
        elif attr == 7:
            pos = axdr.enc_integer(buf, pos, st[s + S_DST_DEVIATION])
        elif attr == 8:
            pos = axdr.enc_boolean(buf, pos, st[s + S_DST_ENABLED])
        elif attr == 9:
            p = obj[base.E_PARAM]
            pos = axdr.enc_enum(buf, pos, BASE_INTERNAL_CRYSTAL if p is None else p[0])
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        r = ctx.r
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        if attr == 2:
            p = common.read_date_time(r)
            if p < 0:
                return base.TYPE_UNMATCHED
            utc = utc_of(ctx.meter, obj, r.buf, p)
            if utc is None:
                return base.OTHER_REASON
            wc = ctx.meter.wall_clock
            if wc is None:
                return base.HARDWARE_FAULT
            st[s + S_OFFSET] = utc - wc()
            st[s + S_STATUS] &= ~_ST_CLEARED_BY_SET
            return base.SUCCESS
        if attr == 5 or attr == 6:
            p = common.read_date_time(r)
            if p < 0:
                return base.TYPE_UNMATCHED
            if not _rule_ok(r.buf, p):
                return base.OTHER_REASON
            st[s + (S_DST_BEGIN if attr == 5 else S_DST_END)] = bytes(r.buf[p : p + 12])
            return base.SUCCESS
        if attr == 8:
            if r.peek() != axdr.BOOLEAN:
                return base.TYPE_UNMATCHED
            st[s + S_DST_ENABLED] = r.boolean()
            return base.SUCCESS
        if attr == 3:
            return _set_int(r, axdr.LONG, -720, 720, st, s + S_TIME_ZONE)
        if attr == 4:
            res = _set_int(r, axdr.UNSIGNED, 0, 255, st, s + S_STATUS)
            st[s + S_STATUS] &= 0x7F  # the DST bit follows the rules
            return res
        if attr == 7:
            return _set_int(r, axdr.INTEGER, -120, 120, st, s + S_DST_DEVIATION)
        return base.READ_WRITE_DENIED  # clock_base: static

    def action(self, ctx, obj, method):
        meter = ctx.meter
        st = meter.state
        s = obj[base.E_SLOT]
        r = ctx.r
        if method == 5:  # preset_adjusting_time
            if not ctx.has_data or r.peek() != axdr.STRUCTURE or r.structure() != 3:
                return base.TYPE_UNMATCHED
            p1 = common.read_date_time(r)
            p2 = common.read_date_time(r)
            p3 = common.read_date_time(r)
            if p1 < 0 or p2 < 0 or p3 < 0:
                return base.TYPE_UNMATCHED
            t1 = utc_of(meter, obj, r.buf, p1)
            t2 = utc_of(meter, obj, r.buf, p2)
            t3 = utc_of(meter, obj, r.buf, p3)
            if t1 is None or t2 is None or t3 is None or t2 > t3:
                return base.OTHER_REASON
            st[s + S_PRESET_TIME] = t1
            st[s + S_VALID_FROM] = t2
            st[s + S_VALID_TO] = t3
            return base.SUCCESS
        if method == 6:  # shift_time
            if not ctx.has_data or common.kind(r.peek()) != common.K_INT:
                return base.TYPE_UNMATCHED
            n = r.number()
            if not -900 <= n <= 900:
                return base.OTHER_REASON
            if meter.wall_clock is None:
                return base.HARDWARE_FAULT
            st[s + S_OFFSET] += n
            return base.SUCCESS
        if method < 1 or method > 4:
            return base.READ_WRITE_DENIED
        res = common.integer_param(ctx)
        if res:
            return res
        t = now(meter, obj)
        if t is None:
            return base.HARDWARE_FAULT
        if method == 4:  # adjust_to_preset_time
            preset = st[s + S_PRESET_TIME]
            if preset is None or not st[s + S_VALID_FROM] <= t <= st[s + S_VALID_TO]:
                return base.OTHER_REASON
            st[s + S_OFFSET] += preset - t
            return base.SUCCESS
        if method == 1:
            q = 900
        elif method == 3:
            q = 60
        else:  # adjust_to_measuring_period
            p = obj[base.E_PARAM]
            q = p[1] if p is not None and len(p) > 1 else 0
            if q <= 0:
                return base.OTHER_REASON  # no measuring period configured
        # round the local time of day to the nearest multiple of q
        rem = ((t + local_offset(meter, obj, t) * 60) % _DAY) % q
        st[s + S_OFFSET] += -rem if rem * 2 < q else q - rem
        return base.SUCCESS


def _set_int(r, tag, lo, hi, st, slot):
    if r.peek() != tag:
        return base.TYPE_UNMATCHED
    v = r.int_of(tag)
    if not lo <= v <= hi:
        return base.OTHER_REASON
    st[slot] = v
    return base.SUCCESS


CLOCK = Clock()
