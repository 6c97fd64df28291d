# Clock (class 8): calendar arithmetic, local time with deviation and DST,
# wildcard DST rules, SET time, the adjusting methods.

from cosem_support import act, allocated, get, get_ok, make, put
from dlms_micro.cosem import base, clock
from dlms_micro.cosem.clock import CLOCK, civil_from_days, day_of_week, days_from_civil
from support import unhex

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
ACC = ((b"\x01\x03\x01\x03\x03\x03\x03\x01", b"\x01\x01\x01\x01\x01\x01"), None)

# UTC instants (seconds since 1970), from an independent calendar
EU_BEGIN_2026 = 1774746000  # 2026-03-29 01:00:00 UTC
EU_END_2026 = 1792890000  # 2026-10-25 01:00:00 UTC
US_BEGIN_2026 = 1772953200  # 2026-03-08 07:00:00 UTC (02:00 EST)
US_END_2026 = 1793512800  # 2026-11-01 06:00:00 UTC (02:00 EDT)
AU_BEGIN_2026 = 1791043200  # 2026-10-03 16:00:00 UTC (02:00 AEST, 4 Oct)
AU_END_2026 = 1775318400  # 2026-04-04 16:00:00 UTC (03:00 AEDT, 5 Oct)
JAN_15 = 1768446000  # 2026-01-15 03:00:00 UTC
JUN_15 = 1781492400  # 2026-06-15 03:00:00 UTC
NEW_YEAR_EVE = 1767223800  # 2025-12-31 23:30:00 UTC
T0 = 1782900449  # 2026-07-01 10:07:29 UTC


class Wall:
    # the port's clock, settable by the test
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def make_clock(t, param=None, **kw):
    wall = Wall(t)
    table = ((8, 0, CLOCK_LN, CLOCK, 0, ACC, param),)
    ctx = make(table, clock.initial_state(**kw), wall_clock=wall)
    return ctx, table[0], wall


def time_of(ctx, obj):
    return get_ok(ctx, obj, 2)


# ---------------------------------------------------------------- calendar


def test_day_numbers_of_known_dates():
    assert days_from_civil(1970, 1, 1) == 0
    assert days_from_civil(2000, 1, 1) == 10957
    assert days_from_civil(2024, 2, 29) == 19782
    assert days_from_civil(2026, 3, 29) == 20541
    assert days_from_civil(1969, 12, 31) == -1
    assert civil_from_days(0) == 19700101
    assert civil_from_days(10957) == 20000101
    assert civil_from_days(19782) == 20240229
    assert civil_from_days(-1) == 19691231
    assert day_of_week(0) == 4  # Thursday
    assert day_of_week(10957) == 6  # Saturday
    assert day_of_week(20541) == 7  # Sunday


def test_calendar_round_trip_and_continuity():
    # every day from 1900 to 2110 follows the previous one by one day
    z = days_from_civil(1900, 1, 1)
    end = days_from_civil(2110, 1, 1)
    prev = civil_from_days(z - 1)
    while z < end:
        ymd = civil_from_days(z)
        y, m, d = ymd // 10000, (ymd // 100) % 100, ymd % 100
        assert days_from_civil(y, m, d) == z
        py, pm, pd = prev // 10000, (prev // 100) % 100, prev % 100
        if d == 1:
            assert pd == clock.days_in_month(py, pm)
            assert (m == pm + 1 and y == py) or (m == 1 and pm == 12 and y == py + 1)
        else:
            assert y == py and m == pm and d == pd + 1
        prev = ymd
        z += 7 if d < 20 else 1  # skip through mid-month (keeps the test quick)
        if d < 20:
            prev = civil_from_days(z - 1)


def test_leap_years_and_month_ends():
    assert clock.is_leap(2000) and clock.is_leap(2024) and clock.is_leap(2400)
    assert not clock.is_leap(1900) and not clock.is_leap(2100) and not clock.is_leap(2026)
    assert clock.days_in_month(2024, 2) == 29
    assert clock.days_in_month(2100, 2) == 28
    assert clock.days_in_month(2026, 4) == 30
    assert clock.days_in_month(2026, 12) == 31
    assert days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28) == 1
    assert days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28) == 2


# ------------------------------------------------------------ reading time


def test_time_in_standard_and_summer_time_cet():
    ctx, c, wall = make_clock(EU_BEGIN_2026 - 1, time_zone=-60, dst_enabled=True)
    # 2026-03-29 01:59:59 CET, Sunday, deviation -60, status 0
    assert time_of(ctx, c) == unhex("090C 07EA 03 1D 07 01 3B 3B FF FFC4 00")
    wall.t = EU_BEGIN_2026
    # 03:00:00 CEST, deviation -120, daylight saving active
    assert time_of(ctx, c) == unhex("090C 07EA 03 1D 07 03 00 00 FF FF88 80")
    assert get_ok(ctx, c, 4) == unhex("11 80")
    wall.t = EU_END_2026 - 1
    # 2026-10-25 02:59:59 CEST
    assert time_of(ctx, c) == unhex("090C 07EA 0A 19 07 02 3B 3B FF FF88 80")
    wall.t = EU_END_2026
    # 02:00:00 CET again
    assert time_of(ctx, c) == unhex("090C 07EA 0A 19 07 02 00 00 FF FFC4 00")
    assert get_ok(ctx, c, 4) == unhex("11 00")


def test_dst_disabled_keeps_standard_time():
    ctx, c, wall = make_clock(EU_BEGIN_2026, time_zone=-60, dst_enabled=False)
    assert time_of(ctx, c) == unhex("090C 07EA 03 1D 07 02 00 00 FF FFC4 00")


def test_utc_meter_and_east_positive_deviation():
    ctx, c, wall = make_clock(T0)
    assert time_of(ctx, c) == unhex("090C 07EA 07 01 03 0A 07 1D FF 0000 00")
    # the companion-standard sign: deviation = local - UTC, +60 for CET
    ctx, c, wall = make_clock(T0, (1, 0, clock.FLAG_EAST_POSITIVE), time_zone=60, dst_enabled=False)
    assert time_of(ctx, c) == unhex("090C 07EA 07 01 03 0B 07 1D FF 003C 00")
    assert get_ok(ctx, c, 3) == unhex("10 003C")


def test_us_rules_in_local_time_without_deviation():
    # second Sunday of March at 02:00 standard, first Sunday of November at
    # 02:00 daylight time; EST = UTC-5: time_zone +300 (UTC - local)
    b = clock.dst_rule(3, 8, 7, 2)
    e = clock.dst_rule(11, 1, 7, 2)
    assert b == unhex("FFFF 03 08 07 02 00 00 FF 8000 FF")
    ctx, c, wall = make_clock(US_BEGIN_2026 - 1, time_zone=300, dst_begin=b, dst_end=e, dst_enabled=True)
    assert time_of(ctx, c) == unhex("090C 07EA 03 08 07 01 3B 3B FF 012C 00")
    wall.t = US_BEGIN_2026
    assert time_of(ctx, c) == unhex("090C 07EA 03 08 07 03 00 00 FF 00F0 80")
    wall.t = US_END_2026 - 1
    assert time_of(ctx, c) == unhex("090C 07EA 0B 01 07 01 3B 3B FF 00F0 80")
    wall.t = US_END_2026
    assert time_of(ctx, c) == unhex("090C 07EA 0B 01 07 01 00 00 FF 012C 00")


def test_southern_hemisphere_dst_spans_the_new_year():
    # Sydney: AEST UTC+10 (time_zone -600); first Sunday of October 02:00
    # standard to first Sunday of April 03:00 daylight
    b = clock.dst_rule(10, 1, 7, 2)
    e = clock.dst_rule(4, 1, 7, 3)
    ctx, c, wall = make_clock(JAN_15, time_zone=-600, dst_begin=b, dst_end=e, dst_enabled=True)
    e8 = ctx.meter
    assert clock.dst_active(e8, c, JAN_15)
    assert not clock.dst_active(e8, c, JUN_15)
    assert clock.dst_active(e8, c, AU_END_2026 - 1)
    assert not clock.dst_active(e8, c, AU_END_2026)
    assert not clock.dst_active(e8, c, AU_BEGIN_2026 - 1)
    assert clock.dst_active(e8, c, AU_BEGIN_2026)
    # 2026-01-15 14:00 AEDT (UTC+11): deviation -660
    assert time_of(ctx, c) == unhex("090C 07EA 01 0F 04 0E 00 00 FF FD6C 80")


def test_new_year_in_local_time():
    ctx, c, wall = make_clock(NEW_YEAR_EVE, time_zone=-60, dst_enabled=True)
    # 2025-12-31 23:30 UTC is 2026-01-01 00:30 CET, a Thursday
    assert time_of(ctx, c) == unhex("090C 07EA 01 01 04 00 1E 00 FF FFC4 00")


def test_rule_with_second_last_day_and_weekday():
    # day 0xFD with a weekday: that weekday on or before the second last day
    # (October 2026: 30th is a Friday; Sunday on or before it: the 25th)
    rule = clock.dst_rule(10, 0xFD, 7, 1, deviation=0)
    assert clock._rule_utc(rule, 2026, 60, 0, -1) == EU_END_2026
    # day 0xFE without weekday: the last day, 31 October
    rule = clock.dst_rule(10, 0xFE, 0xFF, 1, deviation=0)
    assert clock._rule_utc(rule, 2026, 60, 0, -1) == EU_END_2026 + 6 * 86400
    # a fixed year applies to that year only; a day the month lacks never
    rule = clock.dst_rule(2, 29, year=2026)
    assert clock._rule_utc(rule, 2026, 0, 0, -1) is None
    rule = clock.dst_rule(2, 29)
    assert clock._rule_utc(rule, 2028, 0, 0, -1) == days_from_civil(2028, 2, 29) * 86400
    assert clock._rule_utc(clock.NOT_SPECIFIED, 2026, 0, 0, -1) is None


def test_other_attributes():
    ctx, c, wall = make_clock(T0, (3, 900), time_zone=-60, dst_enabled=True, status=0x02)
    assert get_ok(ctx, c, 3) == unhex("10 FFC4")
    assert get_ok(ctx, c, 4) == unhex("11 82")  # doubtful + DST
    assert get_ok(ctx, c, 5) == unhex("090C FFFF 03 FE 07 01 00 00 FF 0000 FF")
    assert get_ok(ctx, c, 6) == unhex("090C FFFF 0A FE 07 01 00 00 FF 0000 FF")
    assert get_ok(ctx, c, 7) == unhex("0F 3C")
    assert get_ok(ctx, c, 8) == unhex("03 01")
    assert get_ok(ctx, c, 9) == unhex("16 03")  # mains 60 Hz
    assert get(ctx, c, 10)[0] == base.READ_WRITE_DENIED
    assert (CLOCK.class_id, CLOCK.version, CLOCK.attribute_count, CLOCK.method_count) == (8, 0, 9, 6)
    ctx, c, wall = make_clock(T0)
    assert get_ok(ctx, c, 9) == unhex("16 01")  # default: internal crystal


def test_without_a_wall_clock_the_time_is_invalid():
    table = ((8, 0, CLOCK_LN, CLOCK, 0, ACC, None),)
    ctx = make(table, clock.initial_state())
    assert get_ok(ctx, table[0], 2) == unhex("090C FFFF FF FF FF FF FF FF FF 8000 01")
    assert put(ctx, table[0], 2, "090C 07EA 07 01 FF 0A 07 1D 00 0000 00") == base.HARDWARE_FAULT
    assert act(ctx, table[0], 3, "0F00")[0] == base.HARDWARE_FAULT


# ------------------------------------------------------------ setting time


def test_set_time_with_deviation():
    ctx, c, wall = make_clock(T0, time_zone=-60, dst_enabled=True)
    # 2026-07-01 10:07:29 UTC written as 12:07:29 with deviation -120
    assert put(ctx, c, 2, "090C 07EA 07 01 03 0C 07 1D 00 FF88 80") == base.SUCCESS
    assert ctx.meter.state[clock.S_OFFSET] == 0
    # written in another zone: 05:07:29 at UTC-5 (deviation +300) = 10:07:29 UTC
    assert put(ctx, c, 2, "090C 07EA 07 01 FF 05 07 1D FF 012C 00") == base.SUCCESS
    assert ctx.meter.state[clock.S_OFFSET] == 0
    # one hour ahead, written in UTC
    assert put(ctx, c, 2, "090C 07EA 07 01 FF 0B 07 1D FF 0000 00") == base.SUCCESS
    assert ctx.meter.state[clock.S_OFFSET] == 3600
    assert time_of(ctx, c) == unhex("090C 07EA 07 01 03 0D 07 1D FF FF88 80")
    wall.t += 10  # the port's clock runs on, the meter's with it
    assert time_of(ctx, c) == unhex("090C 07EA 07 01 03 0D 07 27 FF FF88 80")


def test_set_time_with_own_date_time_tag():
    ctx, c, wall = make_clock(T0)
    assert put(ctx, c, 2, "19 07EA 07 01 FF 0A 08 1D FF 0000 00") == base.SUCCESS
    assert ctx.meter.state[clock.S_OFFSET] == 60


def test_set_time_without_deviation_uses_the_local_rules():
    ctx, c, wall = make_clock(T0, time_zone=-60, dst_enabled=True)
    st = ctx.meter.state
    # summer: 12:07:29 local = 10:07:29 UTC
    assert put(ctx, c, 2, "090C 07EA 07 01 FF 0C 07 1D FF 8000 FF") == base.SUCCESS
    assert st[clock.S_OFFSET] == 0
    # winter: 2026-01-15 04:00 local = 03:00 UTC
    assert put(ctx, c, 2, "090C 07EA 01 0F FF 04 00 00 FF 8000 FF") == base.SUCCESS
    assert st[clock.S_OFFSET] == JAN_15 - T0
    # the repeated hour at DST end, 02:30 on 25 October: daylight time
    # unless the status says standard time
    assert put(ctx, c, 2, "090C 07EA 0A 19 FF 02 1E 00 FF 8000 FF") == base.SUCCESS
    assert st[clock.S_OFFSET] == EU_END_2026 - 1800 - T0
    assert put(ctx, c, 2, "090C 07EA 0A 19 FF 02 1E 00 FF 8000 80") == base.SUCCESS
    assert st[clock.S_OFFSET] == EU_END_2026 - 1800 - T0
    assert put(ctx, c, 2, "090C 07EA 0A 19 FF 02 1E 00 FF 8000 00") == base.SUCCESS
    assert st[clock.S_OFFSET] == EU_END_2026 + 1800 - T0
    # the skipped hour at DST begin, 02:30 on 29 March: read as standard time
    assert put(ctx, c, 2, "090C 07EA 03 1D FF 02 1E 00 FF 8000 FF") == base.SUCCESS
    assert st[clock.S_OFFSET] == EU_BEGIN_2026 + 1800 - T0
    assert time_of(ctx, c) == unhex("090C 07EA 03 1D 07 03 1E 00 FF FF88 80")


def test_set_time_clears_invalid_and_doubtful():
    ctx, c, wall = make_clock(T0, status=0x0F)
    assert put(ctx, c, 2, "090C 07EA 07 01 FF 0A 07 1D FF 0000 FF") == base.SUCCESS
    assert get_ok(ctx, c, 4) == unhex("11 04")


def test_set_time_refuses_incomplete_or_impossible_dates():
    ctx, c, wall = make_clock(T0)
    st = ctx.meter.state
    bad = (
        "090C FFFF 07 01 FF 0A 07 1D FF 0000 00",  # year not specified
        "090C 07EA FF 01 FF 0A 07 1D FF 0000 00",  # month not specified
        "090C 07EA 02 1D FF 0A 07 1D FF 0000 00",  # 29 February 2026
        "090C 07EA 04 1F FF 0A 07 1D FF 0000 00",  # 31 April
        "090C 07EA 07 FE FF 0A 07 1D FF 0000 00",  # last day: a wildcard
        "090C 07EA 07 01 FF 18 07 1D FF 0000 00",  # hour 24
        "090C 07EA 07 01 FF 0A FF 1D FF 0000 00",  # minute not specified
        "090C 07EA 07 01 FF 0A 07 3C FF 0000 00",  # second 60
        "090C 07EA 07 01 FF 0A 07 1D 64 0000 00",  # hundredths 100
        "090C 07EA 07 01 FF 0A 07 1D FF 02D1 00",  # deviation 721
    )
    for h in bad:
        assert put(ctx, c, 2, h) == base.OTHER_REASON, h
    assert put(ctx, c, 2, "090C 07E8 02 1D FF 0A 07 1D FF 0000 00") == base.SUCCESS  # 29 Feb 2024
    assert st[clock.S_OFFSET] == 1709201249 - T0
    assert put(ctx, c, 2, "090B 07EA 07 01 FF 0A 07 1D FF 0000") == base.TYPE_UNMATCHED
    assert put(ctx, c, 2, "0A0C 07EA 07 01 FF 0A 07 1D FF 0000 00") == base.TYPE_UNMATCHED
    assert put(ctx, c, 2, "06 6A3E5A61") == base.TYPE_UNMATCHED


def test_set_configuration_attributes():
    ctx, c, wall = make_clock(T0, time_zone=-60, dst_enabled=True)
    st = ctx.meter.state
    assert put(ctx, c, 3, "10 FF88") == base.SUCCESS and st[clock.S_TIME_ZONE] == -120
    # the UTC time is kept, the local time follows the zone: EET summer
    assert time_of(ctx, c) == unhex("090C 07EA 07 01 03 0D 07 1D FF FF4C 80")
    assert put(ctx, c, 3, "10 FD2F") == base.OTHER_REASON  # -721
    assert put(ctx, c, 3, "0F 10") == base.TYPE_UNMATCHED
    assert put(ctx, c, 7, "0F 1E") == base.SUCCESS and st[clock.S_DST_DEVIATION] == 30
    assert put(ctx, c, 7, "0F 79") == base.OTHER_REASON  # 121
    assert put(ctx, c, 8, "03 00") == base.SUCCESS and st[clock.S_DST_ENABLED] is False
    assert put(ctx, c, 8, "11 00") == base.TYPE_UNMATCHED
    assert put(ctx, c, 4, "11 83") == base.SUCCESS and st[clock.S_STATUS] == 0x03
    assert put(ctx, c, 9, "16 02") == base.READ_WRITE_DENIED
    us = "090C FFFF 03 08 07 02 00 00 FF 8000 FF"
    assert put(ctx, c, 5, us) == base.SUCCESS and st[clock.S_DST_BEGIN] == unhex(us)[2:]
    assert put(ctx, c, 6, "19 FFFF 0B 01 07 02 00 00 FF 8000 FF") == base.SUCCESS
    assert st[clock.S_DST_END] == unhex("FFFF 0B 01 07 02 00 00 FF 8000 FF")
    assert put(ctx, c, 5, "090C FFFF 0D 08 07 02 00 00 FF 8000 FF") == base.OTHER_REASON  # month 13
    assert put(ctx, c, 5, "090C FFFF 03 08 08 02 00 00 FF 8000 FF") == base.OTHER_REASON  # weekday 8
    assert put(ctx, c, 5, "090C FFFF 03 20 07 02 00 00 FF 8000 FF") == base.OTHER_REASON  # day 32
    assert put(ctx, c, 5, "0905 FFFF 03 08 07") == base.TYPE_UNMATCHED
    assert st[clock.S_DST_BEGIN] == unhex(us)[2:]


# ------------------------------------------------------------ methods


def test_adjust_to_quarter_minute_and_measuring_period():
    ctx, c, wall = make_clock(T0, (1, 600), time_zone=-60)  # 11:07:29 CET
    st = ctx.meter.state
    assert act(ctx, c, 1, "0F00") == (base.SUCCESS, b"")  # nearest quarter: 11:00:00
    assert st[clock.S_OFFSET] == -449
    assert time_of(ctx, c)[7:11] == unhex("0B 00 00 FF")
    st[clock.S_OFFSET] = 31  # 11:08:00
    assert act(ctx, c, 1, "0F00")[0] == base.SUCCESS  # 07:30 past: up to 11:15
    assert st[clock.S_OFFSET] == 31 + 420
    st[clock.S_OFFSET] = 0
    assert act(ctx, c, 3, "0F00")[0] == base.SUCCESS  # 11:07:29 -> 11:07:00
    assert st[clock.S_OFFSET] == -29
    st[clock.S_OFFSET] = 1  # 11:07:30 -> 11:08:00
    assert act(ctx, c, 3)[0] == base.SUCCESS
    assert st[clock.S_OFFSET] == 31
    st[clock.S_OFFSET] = 0
    assert act(ctx, c, 2, "0F00")[0] == base.SUCCESS  # 10-minute periods: 11:10
    assert st[clock.S_OFFSET] == 151
    assert act(ctx, c, 1, "0900")[0] == base.TYPE_UNMATCHED


def test_adjust_to_measuring_period_needs_a_period():
    ctx, c, wall = make_clock(T0)
    assert act(ctx, c, 2, "0F00") == (base.OTHER_REASON, b"")
    assert ctx.meter.state[clock.S_OFFSET] == 0


def test_shift_time():
    ctx, c, wall = make_clock(T0)
    st = ctx.meter.state
    assert act(ctx, c, 6, "10 0384") == (base.SUCCESS, b"")  # +900
    assert act(ctx, c, 6, "10 FF9C") == (base.SUCCESS, b"")  # -100
    assert st[clock.S_OFFSET] == 800
    assert act(ctx, c, 6, "10 0385")[0] == base.OTHER_REASON  # 901
    assert act(ctx, c, 6, "10 FC7B")[0] == base.OTHER_REASON  # -901
    assert act(ctx, c, 6, "09 00")[0] == base.TYPE_UNMATCHED
    assert act(ctx, c, 6)[0] == base.TYPE_UNMATCHED
    assert st[clock.S_OFFSET] == 800


def test_preset_and_adjust_to_preset_time():
    ctx, c, wall = make_clock(T0)
    st = ctx.meter.state
    assert act(ctx, c, 4, "0F00") == (base.OTHER_REASON, b"")  # nothing preset
    preset = (
        "0203"
        "090C 07EA 07 01 FF 0C 00 00 FF 0000 00"  # preset 12:00
        "090C 07EA 07 01 FF 0A 00 00 FF 0000 00"  # valid from 10:00
        "090C 07EA 07 01 FF 0A 0F 00 FF 0000 00"  # to 10:15
    )
    assert act(ctx, c, 5, preset) == (base.SUCCESS, b"")
    noon = T0 - 7 * 60 - 29 + 2 * 3600
    assert st[clock.S_PRESET_TIME] == noon
    assert act(ctx, c, 4, "0F00") == (base.SUCCESS, b"")
    assert st[clock.S_OFFSET] == noon - T0
    # now 12:00: outside the validity interval
    assert act(ctx, c, 4, "0F00")[0] == base.OTHER_REASON
    assert st[clock.S_OFFSET] == noon - T0
    wrong_order = (
        "0203"
        "090C 07EA 07 01 FF 0C 00 00 FF 0000 00"
        "090C 07EA 07 01 FF 0B 00 00 FF 0000 00"
        "090C 07EA 07 01 FF 0A 00 00 FF 0000 00"
    )
    assert act(ctx, c, 5, wrong_order)[0] == base.OTHER_REASON
    assert act(ctx, c, 5, "0202 090C 07EA 07 01 FF 0C 00 00 FF 0000 00 0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, c, 5, "0203 0900 0900 0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, c, 7, "0F00")[0] == base.READ_WRITE_DENIED


def test_enc_local_time_helper_for_other_classes():
    ctx, c, wall = make_clock(T0, time_zone=-60, dst_enabled=True)
    buf = bytearray(14)
    assert clock.enc_local_time(ctx.meter, EU_BEGIN_2026, buf, 0) == 14
    assert bytes(buf) == unhex("090C 07EA 03 1D 07 03 00 00 FF FF88 80")
    assert clock.now(ctx.meter) == T0
    assert clock.local_offset(ctx.meter, c, JAN_15) == 60
    assert clock.local_offset(ctx.meter, c, T0) == 120
    assert clock.utc_of(ctx.meter, c, unhex("07EA 03 1D 07 03 00 00 FF FF88 80"), 0) == EU_BEGIN_2026
    assert clock.utc_of(ctx.meter, None, unhex("07EA 03 1D 07 01 00 00 FF 8000 FF"), 0) == EU_BEGIN_2026
    assert clock.put_local_time(ctx.meter, None, buf, 0) == 12
    assert bytes(buf[:12]) == clock.NOT_SPECIFIED


def test_reading_the_time_allocates_a_bounded_amount():
    # UTC seconds are big ints on MicroPython: a few 32-byte results, never
    # a growing amount
    ctx, c, wall = make_clock(EU_BEGIN_2026, time_zone=-60, dst_enabled=True)

    def read():
        ctx.pos = 0
        CLOCK.get(ctx, c, 2)

    used = allocated(read)
    if used is None:
        return
    assert used <= 640, used
