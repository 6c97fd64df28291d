# Single action schedule (class 22): firing at the execution times in the
# meter's local time, sparse ticks caught up once each, clock steps back and
# forth, DST, the SET checks, and a quiet tick that allocates nothing.

from cosem_support import allocated, get_ok, make, put
from dlms_micro import axdr
from dlms_micro.cosem import base, clock, schedule, script
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.schedule import SINGLE_ACTION_SCHEDULE, Schedule
from dlms_micro.cosem.script import EXECUTE_METHOD, SCRIPT_TABLE
from support import unhex
from tou_support import Store

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
COUNTER_LN = b"\x00\x00\x60\x01\x00\xff"
SCRIPTS_LN = b"\x00\x00\x0a\x00\x01\xff"
SAS_LN = b"\x00\x00\x0f\x00\x00\xff"
CLOCK_ACC = ((b"\x03\x03\x03\x03\x03\x03\x03\x03", b"\x01\x01\x01\x01\x01\x01"), None)
ACC = ((b"\x01\x03\x03\x03", b""), None)
# 2003-03-03 00:00 UTC, a Monday: times before 2004-01-10 are small ints on
# MicroPython (< 2**30), so that long simulated runs allocate nothing of
# their own in the wasm build, whose GC does not run during a test
DAY0 = 12114 * 86400
HOUR = 3600


class Counter(base.InterfaceClass):
    # A test object whose method 1 records the meter's time of each call.
    class_id = 1
    version = 0
    attribute_count = 2
    method_count = 1

    def action(self, ctx, obj, method):
        ctx.meter.state[obj[base.E_SLOT]].append(clock.now(ctx.meter))
        return base.SUCCESS


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def tm(h, m=0, s=0):
    return bytes((h, m, s, 0xFF))


def date(y=0xFFFF, m=0xFF, d=0xFF, dow=0xFF):
    return bytes((y >> 8, y & 0xFF, m, d, dow))


def setup(times, type_=5, time_zone=-60, dst=False, t=DAY0):
    scripts = ((1, (script.action(EXECUTE_METHOD, 1, COUNTER_LN, 1, axdr.INTEGER, 0),)),)
    table = (
        (8, 0, CLOCK_LN, CLOCK, 0, CLOCK_ACC, None),
        (1, 0, COUNTER_LN, Counter(), 10, ((b"\x01", b"\x01"), None), None),
        (9, 0, SCRIPTS_LN, SCRIPT_TABLE, -1, ((b"\x01\x01", b"\x01"), None), scripts),
        (22, 0, SAS_LN, SINGLE_ACTION_SCHEDULE, 11, ACC, (4,)),
    )
    sched = Schedule((4,), SCRIPTS_LN, 1, type_, times)
    state = clock.initial_state(time_zone=time_zone, dst_enabled=dst) + [[], sched]
    wall = Wall(t)
    ctx = make(table, state, wall_clock=wall)
    return ctx, table[3], wall


def run(ctx, sas, wall, until, step=60):
    # tick every `step` seconds up to `until` (UTC); the firing times
    m = ctx.meter
    while wall.t <= until:
        schedule.tick(m, sas, wall.t)
        wall.t += step
    return m.state[10]


def test_fires_daily_at_the_local_execution_time():
    ctx, sas, wall = setup(((tm(6, 30), date()),))
    fired = run(ctx, sas, wall, DAY0 + 3 * 86400)
    # 06:30 CET is 05:30 UTC, every day; the first tick (00:00 UTC) only notes the time
    assert fired == [DAY0 + 5 * HOUR + 1800 + k * 86400 for k in range(3)], fired


def test_sparse_ticks_catch_up_each_time_once_in_order():
    ctx, sas, wall = setup(((tm(8, 0), date()), (tm(7, 15), date()), (tm(7, 15), date())))
    m = ctx.meter
    schedule.tick(m, sas, DAY0)
    wall.t = DAY0 + 9 * HOUR
    assert schedule.tick(m, sas, wall.t)  # 07:00 .. 10:00 local passed: 07:15 and 08:00
    assert len(m.state[10]) == 2  # the two 07:15 entries name one instant: one run
    assert not schedule.tick(m, sas, wall.t)
    assert len(m.state[10]) == 2


def test_first_tick_after_boot_catches_nothing_up():
    ctx, sas, wall = setup(((tm(0, 1), date()),), t=DAY0 + 12 * HOUR)
    assert not schedule.tick(ctx.meter, sas, wall.t)
    assert ctx.meter.state[10] == []


def test_clock_set_back_a_little_does_not_fire_again():
    ctx, sas, wall = setup(((tm(6, 30), date()),))
    m = ctx.meter
    run(ctx, sas, wall, DAY0 + 6 * HOUR)
    assert len(m.state[10]) == 1
    wall.t -= 30 * 60  # back over 06:30 local
    run(ctx, sas, wall, DAY0 + 7 * HOUR)
    assert len(m.state[10]) == 1


def test_clock_set_back_a_day_relives_the_day():
    ctx, sas, wall = setup(((tm(6, 30), date()),))
    m = ctx.meter
    run(ctx, sas, wall, DAY0 + 30 * HOUR)
    assert len(m.state[10]) == 2
    wall.t -= 86400
    run(ctx, sas, wall, DAY0 + 30 * HOUR)
    assert len(m.state[10]) == 3


def test_clock_set_forward_fires_each_entry_once():
    ctx, sas, wall = setup(((tm(6, 30), date()),))
    m = ctx.meter
    schedule.tick(m, sas, DAY0)
    schedule.tick(m, sas, DAY0 + 10 * 86400)  # ten days skipped
    assert len(m.state[10]) == 1


def test_dates_with_wildcards_weekdays_and_last_day():
    # Sundays 12:00, the last day of the month 23:00, 2003-03-05 01:00
    ctx, sas, wall = setup((
        (tm(12), date(dow=7)),
        (tm(23), date(d=0xFE)),
        (tm(1), date(2003, 3, 5)),
    ))
    fired = run(ctx, sas, wall, DAY0 + 31 * 86400, step=600)
    assert fired == [
        DAY0 + 2 * 86400 + 0 * HOUR,  # Wed 5 March 01:00 CET
        DAY0 + 6 * 86400 + 11 * HOUR,  # Sun 9 March 12:00 CET
        DAY0 + 13 * 86400 + 11 * HOUR,
        DAY0 + 20 * 86400 + 11 * HOUR,
        DAY0 + 27 * 86400 + 11 * HOUR,  # Sun 30 March: CET still (DST disabled)
        DAY0 + 28 * 86400 + 22 * HOUR,  # Mon 31 March 23:00
    ], fired


def test_hourly_wildcard():
    ctx, sas, wall = setup(((bytes((0xFF, 10, 0, 0xFF)), date()),), type_=3)
    fired = run(ctx, sas, wall, DAY0 + 5 * HOUR)
    assert fired == [DAY0 + k * HOUR + 600 for k in range(5)], fired


def test_dst_end_repeated_hour_fires_once_and_dst_begin_skipped_hour_is_caught_up():
    # EU rules: 2003-03-30 02:00 CET -> 03:00 CEST, 2003-10-26 03:00 CEST -> 02:00 CET
    spring = 12141 * 86400
    autumn = 12351 * 86400
    ctx, sas, wall = setup(((tm(2, 30), date()),), dst=True, t=spring - 6 * HOUR)
    fired = run(ctx, sas, wall, spring + 12 * HOUR)
    assert fired == [spring + 1 * HOUR], fired  # 02:30 never shows: run at 03:00 CEST = 01:00 UTC
    ctx, sas, wall = setup(((tm(2, 30), date()),), dst=True, t=autumn - 6 * HOUR)
    fired = run(ctx, sas, wall, autumn + 12 * HOUR)
    assert fired == [autumn + 30 * 60], fired  # 02:30 CEST = 00:30 UTC; 02:30 CET (01:30 UTC) not again


def test_attributes():
    ctx, sas, wall = setup(((tm(6, 30), date()), (tm(23), date(d=0xFE))))
    assert get_ok(ctx, sas, 2) == unhex("0202 0906 00000A0001FF 120001")
    assert get_ok(ctx, sas, 3) == unhex("1605")
    assert get_ok(ctx, sas, 4) == unhex("0102 0202 0904 061E00FF 0905 FFFFFFFFFF 0202 0904 170000FF 0905 FFFFFFFEFF")


def test_set_execution_time_and_type_checks():
    ctx, sas, wall = setup(((tm(6, 30), date()),), type_=1)
    one = "0202 0904 07000000 0905 FFFFFFFFFF"
    assert put(ctx, sas, 4, "0101" + one) == base.SUCCESS
    assert get_ok(ctx, sas, 4) == unhex("0101" + one)
    # type 1 holds one time only
    assert put(ctx, sas, 4, "0102" + one + one) == base.OTHER_REASON
    assert get_ok(ctx, sas, 4) == unhex("0101" + one)
    assert put(ctx, sas, 3, "1604") == base.OTHER_REASON  # type 4: no date wildcards
    assert put(ctx, sas, 3, "1605") == base.SUCCESS
    full = "0202 0904 08000000 0905 07D3030AFF"
    assert put(ctx, sas, 4, "0102" + one + full) == base.SUCCESS
    assert put(ctx, sas, 3, "1602") == base.OTHER_REASON  # type 2: the same time of day
    # out of range fields, too many, wrong shapes
    assert put(ctx, sas, 4, "0101 0202 0904 18000000 0905 FFFFFFFFFF") == base.OTHER_REASON
    assert put(ctx, sas, 4, "0101 0202 0904 07000000 0905 FFFF0DFFFF") == base.OTHER_REASON
    assert put(ctx, sas, 4, "0105" + one * 5) == base.OTHER_REASON
    assert put(ctx, sas, 4, "0101 0202 0903 070000 0905 FFFFFFFFFF") == base.TYPE_UNMATCHED
    assert put(ctx, sas, 4, "0201" + one) == base.TYPE_UNMATCHED
    assert put(ctx, sas, 3, "1606") == base.OTHER_REASON
    assert put(ctx, sas, 3, "1101") == base.TYPE_UNMATCHED
    assert get_ok(ctx, sas, 4) == unhex("0102" + one + full)


def test_set_executed_script_must_exist():
    ctx, sas, wall = setup(((tm(6, 30), date()),))
    assert put(ctx, sas, 2, "0202 0906 00000A0001FF 120000") == base.SUCCESS
    assert put(ctx, sas, 2, "0202 0906 00000A0001FF 120002") == base.OTHER_REASON  # no script 2
    assert put(ctx, sas, 2, "0202 0906 00000A0002FF 120001") == base.OTHER_REASON  # no such table
    assert put(ctx, sas, 2, "0202 0905 00000A0001 120001") == base.OTHER_REASON
    assert put(ctx, sas, 2, "0202 0906 00000A0001FF 110001") == base.TYPE_UNMATCHED
    assert put(ctx, sas, 2, "0202 0906 00000A0001FF 120001") == base.SUCCESS
    assert get_ok(ctx, sas, 2) == unhex("0202 0906 00000A0001FF 120001")


def test_new_times_take_effect_at_once():
    ctx, sas, wall = setup(((tm(6, 30), date()),))
    m = ctx.meter
    run(ctx, sas, wall, DAY0 + HOUR)  # 02:00 local; next look at 06:30 at the latest quarter
    assert put(ctx, sas, 4, "0101 0202 0904 02010000 0905 FFFFFFFFFF") == base.SUCCESS
    run(ctx, sas, wall, DAY0 + HOUR + 120)
    assert m.state[10] == [DAY0 + HOUR + 60], m.state[10]


def test_quiet_tick_allocates_nothing_on_micropython():
    ctx, sas, wall = setup(((tm(6, 30), date()),))
    m = ctx.meter
    schedule.tick(m, sas, DAY0)
    t = DAY0 + 60

    def quiet():
        schedule.tick(m, sas, t)

    n = allocated(quiet)
    if n is not None:
        assert n == 0, n
    assert m.state[10] == []


def test_set_attributes_survive_a_restart():
    store = Store()
    one = "0202 0904 07000000 0905 FFFFFFFFFF"

    def boot():
        ctx, sas, wall = setup(((tm(6, 30), date()),), type_=1)
        ctx.meter.state[11] = Schedule((4,), SCRIPTS_LN, 1, 1, ((tm(6, 30), date()),), store, "sas")
        return ctx, sas

    ctx, sas = boot()
    assert put(ctx, sas, 3, "1605") == base.SUCCESS
    assert put(ctx, sas, 4, "0102" + one + one) == base.SUCCESS
    assert put(ctx, sas, 2, "0202 0906 00000A0001FF 120000") == base.SUCCESS
    ctx, sas = boot()
    assert get_ok(ctx, sas, 2) == unhex("0202 0906 00000A0001FF 120000")
    assert get_ok(ctx, sas, 3) == unhex("1605")
    assert get_ok(ctx, sas, 4) == unhex("0102" + one + one)
    store.d["sas"] = store.d["sas"][:-1]  # does not fit: ignored
    ctx, sas = boot()
    assert get_ok(ctx, sas, 3) == unhex("1601")
