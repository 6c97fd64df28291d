# Time of use: Register activation (class 6), Special days table (class
# 11), Activity calendar (class 20) switching tariffs through the
# tariffication script table into the rate registers; the checks of the
# passive calendar; the scenario: a simulated week across a season change,
# a DST change and a special day.

from cosem_support import act, allocated, get_ok, make, put
from dlms_micro import axdr, server
from dlms_micro.cosem import base, clock, script, tariff
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.register import REGISTER
from dlms_micro.cosem.script import SCRIPT_TABLE, WRITE_ATTRIBUTE
from dlms_micro.cosem.tariff import (ACTIVITY_CALENDAR, REGISTER_ACTIVATION, SPECIAL_DAYS_TABLE, Calendar,
                                     RegisterActivation, SpecialDays)
from dlms_micro.link import wrapper
from support import unhex
from tou_support import Store
from test_server import AARQ_PUBLIC, wrap, wsend

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
RA_LN = b"\x00\x00\x0e\x00\x01\xff"
TARIFF_LN = b"\x00\x00\x0a\x00\x64\xff"  # 0.0.10.0.100.255 tariffication script table
SD_LN = b"\x00\x00\x0b\x00\x00\xff"
CAL_LN = b"\x00\x00\x0d\x00\x00\xff"
CLOCK_ACC = ((b"\x03\x03\x03\x03\x03\x03\x03\x03", b"\x01\x01\x01\x01\x01\x01"), None)


def rate_ln(k):
    return bytes((1, 0, 1, 8, k, 255))


# 2003 dates keep the times below 2**30 (small ints on MicroPython): the
# long runs below then allocate nothing of their own in the wasm build,
# whose GC does not run during a test.
DAY = 86400
HOUR = 3600
MAR28 = 12139 * DAY  # 2003-03-28 00:00 UTC, a Friday
DST_BEGIN = 12141 * DAY + HOUR  # 2003-03-30 01:00 UTC: CET -> CEST


def tm(h, m=0):
    return bytes((h, m, 0, 0))


def start(m, d, y=0xFFFF):
    return bytes((y >> 8, y & 0xFF, m, d, 0xFF, 0, 0, 0, 0xFF, 0x80, 0x00, 0xFF))


SCRIPTS = tuple(
    (k, (script.action(WRITE_ATTRIBUTE, 6, RA_LN, 4, axdr.OCTET_STRING, b"T%d" % k),)) for k in range(1, 5)
)
SEASONS = ((b"SUM", start(4, 1), b"SW"), (b"WIN", start(10, 1), b"WW"))
WEEKS = ((b"WW", (1, 1, 1, 1, 1, 3, 3)), (b"SW", (2, 2, 2, 2, 2, 3, 3)))
DAYS = (
    (1, ((tm(0), TARIFF_LN, 1), (tm(6), TARIFF_LN, 2), (tm(17), TARIFF_LN, 3), (tm(21), TARIFF_LN, 1))),
    (2, ((tm(7), TARIFF_LN, 2), (tm(12), TARIFF_LN, 4), (tm(19), TARIFF_LN, 2), (tm(22), TARIFF_LN, 1))),
    (3, ((tm(0), TARIFF_LN, 1),)),
)
CAL_PARAM = (SD_LN, 16, 128, 64, 256)
RA_PARAM = (4, 4, 4, 4)
HOLIDAY = b"\x07\xd3\x04\x03\xff"  # 2003-04-03, a Thursday


def setup(t=MAR28, dst=True, special=((1, HOLIDAY, 3),), cal=None, store=None):
    ra_acc = ((b"\x01\x01\x01\x03", b"\x01\x01\x01"), None)
    table = (
        (8, 0, CLOCK_LN, CLOCK, 0, CLOCK_ACC, None),
        (3, 0, rate_ln(1), REGISTER, 10, ((b"\x01\x01", b"\x00"), None), (0, 30)),
        (3, 0, rate_ln(2), REGISTER, 11, ((b"\x01\x01", b"\x00"), None), (0, 30)),
        (3, 0, rate_ln(3), REGISTER, 12, ((b"\x01\x01", b"\x00"), None), (0, 30)),
        (3, 0, rate_ln(4), REGISTER, 13, ((b"\x01\x01", b"\x00"), None), (0, 30)),
        (6, 0, RA_LN, REGISTER_ACTIVATION, 14, ra_acc, RA_PARAM),
        (9, 0, TARIFF_LN, SCRIPT_TABLE, -1, ((b"\x01\x01", b"\x01"), None), SCRIPTS),
        (11, 0, SD_LN, SPECIAL_DAYS_TABLE, 15, ((b"\x01\x03", b"\x01\x01"), None), (8,)),
        (20, 0, CAL_LN, ACTIVITY_CALENDAR, 16,
         ((b"\x01\x01\x01\x01\x01\x03\x03\x03\x03\x03", b"\x01"), None), CAL_PARAM),
    )
    ra = RegisterActivation(RA_PARAM, [(3, rate_ln(k)) for k in range(1, 5)],
                            [(b"T%d" % k, bytes((k,))) for k in range(1, 5)], b"T1", store, "ra")
    if cal is None:
        cal = Calendar(CAL_PARAM, b"TOU1", SEASONS, WEEKS, DAYS, store, "cal")
    sd = SpecialDays((8,), special, store, "sd")
    state = clock.initial_state(time_zone=-60, dst_enabled=dst) + [0, 0, 0, 0, ra, sd, cal]
    wall = Wall(t)
    ctx = make(table, state, wall_clock=wall, size=1024)
    return ctx, table, wall


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def active(ctx):
    ra = ctx.meter.state[14]
    return bytes(ra.active[0 : ra.nactive])


def at(ctx, table, wall, t):
    wall.t = t
    tariff.tick(ctx.meter, table[8], t)
    return active(ctx)


# ------------------------------------------------------ Register activation


def test_register_activation_attributes():
    ctx, table, wall = setup()
    ra = table[5]
    regs = "".join("0202 120003 0906 01000108%02xFF" % k for k in range(1, 5))
    assert get_ok(ctx, ra, 2) == unhex("0104" + regs)
    masks = "".join("0202 0902 54%02x 0101 11%02x" % (0x30 + k, k) for k in range(1, 5))
    assert get_ok(ctx, ra, 3) == unhex("0104" + masks)
    assert get_ok(ctx, ra, 4) == unhex("0902 5431")


def test_add_energy_goes_to_the_active_mask():
    ctx, table, wall = setup()
    m = ctx.meter
    tariff.add_energy(m, table[5], 5)
    assert put(ctx, table[5], 4, "0902 5433") == base.SUCCESS
    tariff.add_energy(m, table[5], 7)
    tariff.add_energy(m, table[5], 1)
    assert m.state[10:14] == [5, 0, 8, 0]
    # a mask of two registers (in place of T2: room for 4 masks)
    assert act(ctx, table[5], 3, "0902 5432")[0] == base.SUCCESS
    assert act(ctx, table[5], 2, "0202 0902 5835 0102 1101 1104")[0] == base.SUCCESS
    assert put(ctx, table[5], 4, "0902 5835") == base.SUCCESS
    tariff.add_energy(m, table[5], 2)
    assert m.state[10:14] == [7, 0, 8, 2]


def test_register_activation_refusals():
    ctx, table, wall = setup()
    ra = table[5]
    assert put(ctx, ra, 4, "0902 5839") == base.OTHER_REASON  # no such mask
    assert put(ctx, ra, 4, "1101") == base.TYPE_UNMATCHED
    assert put(ctx, ra, 2, "0100") == base.READ_WRITE_DENIED
    assert act(ctx, ra, 2, "0202 0902 5835 0101 1105")[0] == base.OTHER_REASON  # index 5 not assigned
    assert act(ctx, ra, 2, "0202 0905 4142434445 0101 1101")[0] == base.OTHER_REASON  # name too long
    assert act(ctx, ra, 2, "0202 0902 5835 0101 1201")[0] == base.TYPE_UNMATCHED
    assert act(ctx, ra, 2, "0202 0902 5431 0105 1101 1101 1101 1101 1101")[0] == base.OTHER_REASON
    # the register list is full; a register must exist and be a Register
    assert act(ctx, ra, 1, "0202 120003 0906 0100010801FF")[0] == base.OTHER_REASON
    assert put(ctx, ra, 4, "0902 5432") == base.SUCCESS  # (the active mask cannot go)
    assert act(ctx, ra, 3, "0902 5431")[0] == base.SUCCESS
    assert act(ctx, ra, 3, "0902 5431")[0] == base.OTHER_REASON  # deleted already
    assert get_ok(ctx, ra, 3).startswith(unhex("0103 0202 0902 5432"))
    assert act(ctx, ra, 2, "0202 0902 5835 0101 1101")[0] == base.SUCCESS
    assert act(ctx, ra, 2, "0202 0902 5836 0101 1101")[0] == base.OTHER_REASON  # 4 masks already
    assert act(ctx, ra, 2)[0] == base.TYPE_UNMATCHED


def test_add_register():
    t = (
        (3, 0, rate_ln(1), REGISTER, 0, ((b"\x01\x01", b"\x00"), None), (0, 30)),
        (3, 0, rate_ln(2), REGISTER, 1, ((b"\x01\x01", b"\x00"), None), (0, 30)),
        (1, 0, CLOCK_LN, REGISTER, 2, ((b"\x01\x01", b"\x00"), None), (0, 30)),
        (6, 0, RA_LN, REGISTER_ACTIVATION, 3, ((b"\x01\x01\x01\x03", b"\x01\x01\x01"), None), RA_PARAM),
    )
    ctx = make(t, [0, 0, 0, RegisterActivation(RA_PARAM)])
    ra = t[3]
    assert get_ok(ctx, ra, 2) == unhex("0100")
    assert act(ctx, ra, 1, "0202 120003 0906 0100010802FF")[0] == base.SUCCESS
    assert act(ctx, ra, 1, "0202 120003 0906 0100010802FF")[0] == base.OTHER_REASON  # twice
    assert act(ctx, ra, 1, "0202 120003 0906 0100010809FF")[0] == base.OTHER_REASON  # undefined
    assert act(ctx, ra, 1, "0202 120001 0906 0000010000FF")[0] == base.OTHER_REASON  # not a register
    assert act(ctx, ra, 1, "0202 120003 0905 0100010802")[0] == base.OTHER_REASON
    assert act(ctx, ra, 2, "0202 0901 41 0101 1101")[0] == base.SUCCESS
    assert put(ctx, ra, 4, "0901 41") == base.SUCCESS
    tariff.add_energy(ctx.meter, ra, 3)
    assert ctx.meter.state[0:3] == [0, 3, 0]


def test_add_energy_allocates_nothing_on_micropython():
    ctx, table, wall = setup()
    m = ctx.meter
    ra = table[5]

    def add():
        tariff.add_energy(m, ra, 1)

    n = allocated(add)
    assert n is None or n == 0, n


# ------------------------------------------------------ Special days table


def test_special_days_insert_delete_and_order():
    ctx, table, wall = setup()
    sd = table[7]
    assert get_ok(ctx, sd, 2) == unhex("0101 0203 120001 0905 07D30403FF 1103")
    assert act(ctx, sd, 1, "0203 120000 0905 FFFF0C19FF 1103")[0] == base.SUCCESS  # Christmas, every year
    assert act(ctx, sd, 1, "0203 120005 1A FFFF0101FF 1103")[0] == base.SUCCESS  # own date tag
    assert get_ok(ctx, sd, 2) == unhex(
        "0103 0203 120000 0905 FFFF0C19FF 1103 0203 120001 0905 07D30403FF 1103 0203 120005 0905 FFFF0101FF 1103")
    assert act(ctx, sd, 1, "0203 120001 0905 07D30404FF 1101")[0] == base.SUCCESS  # same index: replaced
    assert act(ctx, sd, 2, "120000")[0] == base.SUCCESS
    assert get_ok(ctx, sd, 2) == unhex("0102 0203 120001 0905 07D30404FF 1101 0203 120005 0905 FFFF0101FF 1103")


def test_special_days_refusals():
    ctx, table, wall = setup()
    sd = table[7]
    assert act(ctx, sd, 1, "0203 120002 0905 FFFF0C19FF 1109")[0] == base.OTHER_REASON  # no day profile 9
    assert act(ctx, sd, 1, "0203 120002 0905 FFFF0D19FF 1103")[0] == base.OTHER_REASON  # month 13
    assert act(ctx, sd, 1, "0203 120002 0904 FFFF0C19 1103")[0] == base.TYPE_UNMATCHED
    assert act(ctx, sd, 1, "0202 120002 0905 FFFF0C19FF")[0] == base.TYPE_UNMATCHED
    assert act(ctx, sd, 2, "120007")[0] == base.OTHER_REASON  # no such index
    assert act(ctx, sd, 2, "1107")[0] == base.TYPE_UNMATCHED
    for i in range(7):
        assert act(ctx, sd, 1, "0203 1200%02x 0905 FFFF0C19FF 1103" % (10 + i))[0] == base.SUCCESS
    assert act(ctx, sd, 1, "0203 120020 0905 FFFF0C19FF 1103")[0] == base.OTHER_REASON  # full
    # SET entries: all or nothing
    bad = "0102 0203 120001 0905 FFFF0C19FF 1103 0203 120002 0905 FFFF0C19FF 1109"  # day id 9 in the 2nd
    assert put(ctx, sd, 2, bad) == base.OTHER_REASON
    assert len(get_ok(ctx, sd, 2)) == 2 + 8 * 14
    assert put(ctx, sd, 2, "0101 0203 120004 0905 FFFF0C1AFF 1101") == base.SUCCESS
    assert get_ok(ctx, sd, 2) == unhex("0101 0203 120004 0905 FFFF0C1AFF 1101")


# ------------------------------------------------------ Activity calendar


def test_calendar_switches_at_the_local_start_times():
    ctx, table, wall = setup(dst=False)
    # Friday 28 March 2003, winter workday, CET (UTC+1)
    assert at(ctx, table, wall, MAR28) == b"T1"  # 01:00 local: the 00:00 action (first tick runs it)
    assert at(ctx, table, wall, MAR28 + 4 * HOUR + 59 * 60) == b"T1"  # 05:59
    assert at(ctx, table, wall, MAR28 + 5 * HOUR) == b"T2"  # 06:00
    assert at(ctx, table, wall, MAR28 + 16 * HOUR) == b"T3"  # 17:00
    assert at(ctx, table, wall, MAR28 + 20 * HOUR) == b"T1"  # 21:00
    # Saturday: weekend profile
    assert at(ctx, table, wall, MAR28 + DAY + 12 * HOUR) == b"T1"


def test_season_change_and_previous_day_action():
    ctx, table, wall = setup(dst=False, t=MAR28 + 4 * DAY)  # Tue 1 April: summer
    assert at(ctx, table, wall, MAR28 + 4 * DAY) == b"T1"  # 01:00: Monday's (winter) 21:00 action holds
    assert at(ctx, table, wall, MAR28 + 4 * DAY + 6 * HOUR) == b"T2"  # 07:00 summer day
    assert at(ctx, table, wall, MAR28 + 4 * DAY + 11 * HOUR) == b"T4"  # 12:00
    assert at(ctx, table, wall, MAR28 + 4 * DAY + 16 * HOUR) == b"T4"  # 17:00: no peak in summer


def test_special_day_replaces_the_week_day():
    ctx, table, wall = setup(dst=False, t=MAR28 + 6 * DAY)  # Thu 3 April 01:00, holiday
    assert at(ctx, table, wall, MAR28 + 6 * DAY + 11 * HOUR) == b"T1"
    # without the special day it is a summer workday
    sd = table[7]
    assert act(ctx, sd, 2, "120001")[0] == base.SUCCESS
    assert at(ctx, table, wall, MAR28 + 6 * DAY + 11 * HOUR + 60) == b"T4"
    assert act(ctx, sd, 1, "0203 120001 0905 07D30403FF 1103")[0] == base.SUCCESS
    assert at(ctx, table, wall, MAR28 + 6 * DAY + 11 * HOUR + 120) == b"T1"


def test_clock_steps_back_and_forward():
    ctx, table, wall = setup(dst=False)
    assert at(ctx, table, wall, MAR28 + 16 * HOUR + 300) == b"T3"  # Fri 17:05
    # half an hour back (within MAX_BACK, like the DST fallback hour): the
    # later tariff stays, and 17:00 does not run again
    assert at(ctx, table, wall, MAR28 + 15 * HOUR + 35 * 60) == b"T3"
    assert at(ctx, table, wall, MAR28 + 16 * HOUR + 60) == b"T3"
    assert at(ctx, table, wall, MAR28 + 2 * HOUR) == b"T1"  # 14 hours back: 03:00's tariff
    assert at(ctx, table, wall, MAR28 + 4 * DAY + 12 * HOUR) == b"T4"  # days forward: Tue 13:00, summer
    assert at(ctx, table, wall, MAR28 + 4 * DAY + 12 * HOUR + 10) == b"T4"


def test_calendar_attributes():
    ctx, table, wall = setup()
    cal = table[8]
    assert get_ok(ctx, cal, 2) == unhex("0904 544F5531")
    assert get_ok(ctx, cal, 6) == unhex("0904 544F5531")
    seasons = "0102 0203 0903 53554D 090C FFFF0401FF000000FF8000FF 0902 5357" \
              " 0203 0903 57494E 090C FFFF0A01FF000000FF8000FF 0902 5757"
    assert get_ok(ctx, cal, 3) == unhex(seasons)
    assert get_ok(ctx, cal, 7) == unhex(seasons)
    assert get_ok(ctx, cal, 4) == unhex("0102 0208 0902 5757 1101 1101 1101 1101 1101 1103 1103"
                                        " 0208 0902 5357 1102 1102 1102 1102 1102 1103 1103")
    days = get_ok(ctx, cal, 5)
    assert days.startswith(unhex("0103 0202 1101 0104 0203 0904 00000000 0906 00000A0064FF 120001"))
    assert len(days) == 2 + 3 * 6 + 9 * 19
    assert get_ok(ctx, cal, 10) == unhex("090C FFFFFFFFFFFFFFFFFF8000FF")
    assert put(ctx, cal, 2, "0901 41") == base.READ_WRITE_DENIED  # active: read-only
    assert put(ctx, cal, 3, "0100") == base.READ_WRITE_DENIED


PASSIVE_DAYS = "0102 0202 1105 0102 0203 0904 00000000 0906 00000A0064FF 120003" \
               " 0203 0904 0C000000 0906 00000A0064FF 120004" \
               " 0202 1106 0101 0203 0904 00000000 0906 00000A0064FF 120002"
PASSIVE_WEEKS = "0101 0208 0901 41 1105 1105 1105 1105 1105 1106 1106"
PASSIVE_SEASONS = "0101 0203 0901 53 090C FFFF0101FF000000FF8000FF 0901 41"


def passive(ctx, cal):
    assert put(ctx, cal, 6, "0904 544F5532") == base.SUCCESS
    assert put(ctx, cal, 7, PASSIVE_SEASONS) == base.SUCCESS
    assert put(ctx, cal, 8, PASSIVE_WEEKS) == base.SUCCESS
    assert put(ctx, cal, 9, PASSIVE_DAYS) == base.SUCCESS


def test_activate_passive_calendar_by_method():
    ctx, table, wall = setup(dst=False)
    cal = table[8]
    assert at(ctx, table, wall, MAR28 + 12 * HOUR) == b"T2"  # Fri 13:00 winter workday
    passive(ctx, cal)
    assert at(ctx, table, wall, MAR28 + 12 * HOUR + 60) == b"T2"  # passive changes nothing yet
    assert act(ctx, cal, 1, "0F00")[0] == base.SUCCESS
    assert active(ctx) == b"T4"  # the new calendar's action in force ran at once
    assert get_ok(ctx, cal, 2) == unhex("0904 544F5532")
    assert get_ok(ctx, cal, 4) == unhex(PASSIVE_WEEKS)
    assert get_ok(ctx, cal, 8) == unhex(PASSIVE_WEEKS)  # the passive one stays
    assert at(ctx, table, wall, MAR28 + DAY + 12 * HOUR) == b"T2"  # Saturday: day 6


def test_activate_passive_calendar_at_its_time():
    ctx, table, wall = setup(dst=False)
    cal = table[8]
    at(ctx, table, wall, MAR28 + 12 * HOUR)
    passive(ctx, cal)
    # activation Fri 28 March 2003 14:00 local, deviation not specified
    assert put(ctx, cal, 10, "090C 07D3031C05 0E000000 8000 FF") == base.SUCCESS
    assert get_ok(ctx, cal, 10) == unhex("090C 07D3031C05 0E000000 8000 FF")
    assert at(ctx, table, wall, MAR28 + 12 * HOUR + 59 * 60) == b"T2"
    assert at(ctx, table, wall, MAR28 + 13 * HOUR) == b"T4"
    assert get_ok(ctx, cal, 2) == unhex("0904 544F5532")
    assert get_ok(ctx, cal, 10) == unhex("090C FFFFFFFFFFFFFFFFFF8000FF")
    # wildcards other than all 0xFF name no instant
    assert put(ctx, cal, 10, "090C FFFF031C05 0E000000 8000 FF") == base.OTHER_REASON
    assert put(ctx, cal, 10, "090C FFFFFFFFFFFFFFFFFFFFFFFF") == base.SUCCESS
    assert put(ctx, cal, 10, "1100") == base.TYPE_UNMATCHED


def test_passive_calendar_refusals():
    ctx, table, wall = setup()
    cal = table[8]
    # seasons out of order, or two starting at the same time (overlapping)
    assert put(ctx, cal, 7, "0102 0203 0901 53 090C FFFF0A01FF000000FF8000FF 0901 41"
                            " 0203 0901 57 090C FFFF0401FF000000FF8000FF 0901 41") == base.OTHER_REASON
    assert put(ctx, cal, 7, "0102 0203 0901 53 090C FFFF0401FF000000FF8000FF 0901 41"
                            " 0203 0901 57 090C FFFF0401FF000000FF8000FF 0901 42") == base.OTHER_REASON
    # a season start without month
    assert put(ctx, cal, 7, "0101 0203 0901 53 090C FFFFFF01FF000000FF8000FF 0901 41") == base.OTHER_REASON
    assert put(ctx, cal, 7, "0101 0202 0901 53 090C FFFF0401FF000000FF8000FF") == base.TYPE_UNMATCHED
    # day ids twice, start times not increasing, bad time, undefined scripts
    act1 = "0203 0904 00000000 0906 00000A0064FF 120001"
    act2 = "0203 0904 06000000 0906 00000A0064FF 120002"
    assert put(ctx, cal, 9, "0102 0202 1101 0101" + act1 + " 0202 1101 0101" + act1) == base.OTHER_REASON
    assert put(ctx, cal, 9, "0101 0202 1101 0102" + act2 + act1) == base.OTHER_REASON
    assert put(ctx, cal, 9, "0101 0202 1101 0101 0203 0904 18000000 0906 00000A0064FF 120001") == base.OTHER_REASON
    assert put(ctx, cal, 9, "0101 0202 1101 0101 0203 0904 00000000 0906 00000A0065FF 120001") == base.OTHER_REASON
    assert put(ctx, cal, 9, "0101 0202 1101 0101 0203 0904 00000000 0906 00000A0064FF 120009") == base.OTHER_REASON
    assert put(ctx, cal, 9, "0101 0202 1101 0101 0203 0904 00000000 0905 00000A0064 120001") == base.OTHER_REASON
    assert put(ctx, cal, 9, "0101 0202 1101 0101 0203 0904 00000000 0906 00000A0064FF 110001") == base.TYPE_UNMATCHED
    assert put(ctx, cal, 8, "0101 0207 0901 41 1105 1105 1105 1105 1105 1106") == base.TYPE_UNMATCHED
    # too big for the room (64 bytes of weeks)
    w = " 0208 0901 41 1101 1101 1101 1101 1101 1101 1101"
    assert put(ctx, cal, 8, "0104" + w * 4) == base.OTHER_REASON
    # nothing was stored
    assert get_ok(ctx, cal, 7) == get_ok(ctx, cal, 3)
    assert get_ok(ctx, cal, 9) == get_ok(ctx, cal, 5)
    # cross references are checked at activation: a week naming a missing day id
    assert put(ctx, cal, 8, "0101 0208 0902 5757 1101 1101 1101 1101 1101 1104 1104") == base.SUCCESS
    assert act(ctx, cal, 1)[0] == base.OTHER_REASON
    # a season naming a missing week
    assert put(ctx, cal, 8, "0101 0208 0902 5757 1101 1101 1101 1101 1101 1103 1103") == base.SUCCESS
    assert act(ctx, cal, 1)[0] == base.OTHER_REASON  # SUM names SW, gone
    assert get_ok(ctx, cal, 4) != get_ok(ctx, cal, 8)  # the active calendar stayed
    assert put(ctx, cal, 7, "0101 0203 0901 53 090C FFFF0101FF000000FF8000FF 0902 5757") == base.SUCCESS
    assert act(ctx, cal, 1, "0F00")[0] == base.SUCCESS
    assert act(ctx, cal, 1, "0900")[0] == base.TYPE_UNMATCHED


def test_inconsistent_calendar_at_activation_time_is_logged_and_dropped():
    ctx, table, wall = setup(dst=False)
    cal = table[8]
    msgs = []
    ctx.meter.log = msgs.append
    at(ctx, table, wall, MAR28 + 12 * HOUR)
    assert put(ctx, cal, 8, "0101 0208 0902 5757 1101 1101 1101 1101 1101 1104 1104") == base.SUCCESS
    assert put(ctx, cal, 10, "090C 07D3031C05 0E000000 8000 FF") == base.SUCCESS
    assert at(ctx, table, wall, MAR28 + 13 * HOUR + 60) == b"T2"
    assert len(msgs) == 1 and "not activated" in msgs[0]
    assert get_ok(ctx, cal, 10) == unhex("090C FFFFFFFFFFFFFFFFFF8000FF")


def test_calendar_through_a_channel():
    ctx, table, wall = setup()
    ch = server.Channel(ctx.meter, wrapper.WrapperServer())
    out = wsend(ch, wrap(AARQ_PUBLIC))
    assert unhex("A203020100") in out[0]
    ln = CAL_LN.hex()

    def req(apdu):
        return wsend(ch, wrap(apdu))[0][8:]

    assert req("C001C1 0014" + ln + "0200") == unhex("C401C1 00 0904 544F5531")
    assert req("C101C1 0014" + ln + "0600 0904 544F5532") == unhex("C501C1 00")
    assert req("C001C1 0014" + ln + "0600") == unhex("C401C1 00 0904 544F5532")
    assert req("C101C1 0014" + ln + "0700 0101 0203 0901 53 090C FFFFFF01FF000000FF8000FF 0901 41") == \
        unhex("C501C1 FA")
    assert req("C301C1 0014" + ln + "0101 0F00") == unhex("C701C1 00 00")
    assert req("C001C1 0014" + ln + "0200") == unhex("C401C1 00 0904 544F5532")


def test_quiet_calendar_tick_allocates_nothing_on_micropython():
    # a 2026 time (a big int on MicroPython): the quiet tick only compares
    t0 = 20605 * DAY  # 2026-06-01
    ctx, table, wall = setup(t=t0)
    m = ctx.meter
    cal = table[8]
    tariff.tick(m, cal, t0)
    t = t0 + 5

    def quiet():
        tariff.tick(m, cal, t)

    n = allocated(quiet)
    assert n is None or n == 0, n
    assert active(ctx) == b"T1"


def test_client_changes_survive_a_restart():
    store = Store()
    ctx, table, wall = setup(dst=False, store=store)
    cal, sd, ra = table[8], table[7], table[5]
    passive(ctx, cal)
    assert put(ctx, cal, 10, "090C 07D3031C05 0E000000 8000 FF") == base.SUCCESS
    assert act(ctx, sd, 1, "0203 120007 0905 FFFF0C19FF 1103")[0] == base.SUCCESS
    assert act(ctx, ra, 3, "0902 5434")[0] == base.SUCCESS
    assert act(ctx, ra, 2, "0202 0902 5835 0102 1101 1104")[0] == base.SUCCESS
    assert put(ctx, ra, 4, "0902 5835") == base.SUCCESS
    before = [get_ok(ctx, cal, a) for a in range(2, 11)] + [get_ok(ctx, sd, 2)] + \
        [get_ok(ctx, ra, a) for a in (2, 3, 4)]
    ctx2, table2, wall2 = setup(dst=False, store=store)  # the restart
    cal2, sd2, ra2 = table2[8], table2[7], table2[5]
    after = [get_ok(ctx2, cal2, a) for a in range(2, 11)] + [get_ok(ctx2, sd2, 2)] + \
        [get_ok(ctx2, ra2, a) for a in (2, 3, 4)]
    assert after == before
    tariff.add_energy(ctx2.meter, ra2, 3)
    assert ctx2.meter.state[10:14] == [3, 0, 0, 3]
    # the activation time restored: the passive calendar activates at 14:00
    # (its 12:00 action, script 4, finds no mask T4 any more: logged)
    at(ctx2, table2, wall2, MAR28 + 13 * HOUR)
    assert get_ok(ctx2, cal2, 2) == unhex("0904 544F5532")
    ctx3, table3, wall3 = setup(dst=False, store=store)
    assert get_ok(ctx3, table3[8], 2) == unhex("0904 544F5532")
    assert get_ok(ctx3, table3[8], 10) == unhex("090C FFFFFFFFFFFFFFFFFF8000FF")
    # a record that does not fit is ignored: the configured content stays
    store.d["cal"] = b"\x00\x01"
    store.d["sd"] = b"\x00\x09"
    store.d["ra"] = b""
    ctx4, table4, wall4 = setup(dst=False, store=store)
    assert get_ok(ctx4, table4[8], 2) == unhex("0904 544F5531")
    assert get_ok(ctx4, table4[7], 2) == unhex("0101 0203 120001 0905 07D30403FF 1103")
    assert get_ok(ctx4, table4[5], 4) == unhex("0902 5431")


# ------------------------------------------------------ the scenario


# the calendar above, written out again for expected_tariff: day id ->
# ((start hour, rate), ...)
PROFILES = (
    None,
    ((0, 1), (6, 2), (17, 3), (21, 1)),
    ((7, 2), (12, 4), (19, 2), (22, 1)),
    ((0, 1),),
)


def day_id(z):
    md = clock.civil_from_days(z) % 10000
    if md == 403:  # the holiday
        return 3
    if (z + 3) % 7 >= 5:  # Saturday, Sunday
        return 3
    return 2 if 401 <= md < 1001 else 1


def expected_tariff(utc):
    # The tariff at utc, worked out on its own (and allocating nothing on
    # MicroPython): CET/CEST from the EU rule for 2003, the season by
    # date, the holiday, the profile's last start at or before the time,
    # else the day before's last action.
    local = utc + (2 if utc >= DST_BEGIN else 1) * HOUR
    z = local // DAY
    sod = local % DAY
    acts = PROFILES[day_id(z)]
    rate = 0
    for k in range(len(acts)):
        if acts[k][0] * HOUR <= sod:
            rate = acts[k][1]
    if rate == 0:
        acts = PROFILES[day_id(z - 1)]
        rate = acts[len(acts) - 1][1]
    return rate


def test_scenario_a_week_across_a_season_change_dst_and_a_special_day():
    # Fri 28 March 00:00 UTC .. Fri 4 April 2003: DST begins on Sunday 30
    # March, summer starts on Tuesday 1 April, Thursday 3 April is a
    # holiday. A tick and an energy increment every 5 minutes; the energy of
    # each step goes to the tariff in force at that step.
    ctx, table, wall = setup(t=MAR28)
    m = ctx.meter
    cal = table[8]
    ra = table[5]
    want = [0, 0, 0, 0]
    t = MAR28
    step = 300
    i = 0
    while t < MAR28 + 7 * DAY:
        wall.t = t
        tariff.tick(m, cal, t)
        delta = 1 + (i * 7) % 13
        tariff.add_energy(m, ra, delta)
        want[expected_tariff(t) - 1] += delta
        t += step
        i += 1
    assert m.state[10:14] == want, (m.state[10:14], want)
    assert all(want)  # every rate got energy


def test_the_active_mask_cannot_be_deleted():
    ctx, table, wall = setup()
    ra = table[5]
    assert act(ctx, ra, 3, "0902 5431")[0] == base.OTHER_REASON  # T1 is active
    assert act(ctx, ra, 3, "0902 5432")[0] == base.SUCCESS
    assert put(ctx, ra, 4, "0902 5432") == base.OTHER_REASON  # gone
    tariff.add_energy(ctx.meter, ra, 3)
    assert ctx.meter.state[10] == 3  # still counted in T1
