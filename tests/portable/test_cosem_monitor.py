# Register monitor (class 21) and Limiter (class 71): thresholds crossed up
# and down run the right scripts of a real Script table; the limiter's
# over/under durations on a fake clock, its emergency profile, SETs and
# their refusals, and the scenario: a power threshold held longer than its
# duration trips the relay through the disconnector script.

from cosem_support import allocated, get_ok, make, put
from dlms_micro import axdr
from dlms_micro.cosem import base, disconnect, monitor, script
from dlms_micro.cosem.data import DATA
from dlms_micro.cosem.disconnect import DISCONNECT_CONTROL
from dlms_micro.cosem.monitor import LIMITER, REGISTER_MONITOR, LimiterState, MonitorState
from dlms_micro.cosem.register import REGISTER
from dlms_micro.cosem.script import SCRIPT_TABLE
from support import unhex
from test_cosem_disconnect import Relay

POWER = b"\x01\x00\x01\x07\x00\xff"  # active power +A, W
MARK = b"\x00\x00\x60\x01\x63\xff"
SCRIPTS = b"\x00\x00\x0a\x00\x01\xff"
DISCONNECTOR = b"\x00\x00\x0a\x00\x6a\xff"  # disconnector script table
DC_LN = b"\x00\x00\x60\x03\x0a\xff"
MON_LN = b"\x01\x00\x10\x01\x00\xff"
LIM_LN = b"\x00\x00\x11\x00\x00\xff"
RW = ((b"\x01\x03\x03\x03\x03\x03\x03\x03\x03\x01\x03", b""), None)
T0 = 1782900000
PARAM = (axdr.DOUBLE_LONG_UNSIGNED, 4)


def mark_scripts():
    # script k writes k into the MARK data object
    return tuple((k, (script.action(script.WRITE_ATTRIBUTE, 1, MARK, 2, axdr.UNSIGNED, k),)) for k in (1, 2, 3, 4))


def setup(mon=None, lim=None):
    if mon is None:
        mon = MonitorState(PARAM, (3, POWER, 2), (1000, 2000), (((SCRIPTS, 1), (SCRIPTS, 2)),
                                                                ((SCRIPTS, 3), (SCRIPTS, 4))))
    if lim is None:
        lim = LimiterState(PARAM, (3, POWER, 2), normal=5000, emergency=3000, min_over=60, min_under=120,
                           over_action=(DISCONNECTOR, 1), under_action=(DISCONNECTOR, 2), group_ids=(7,))
    table = (
        (3, 0, POWER, REGISTER, 0, RW, (0, 27)),
        (1, 0, MARK, DATA, 1, RW, (axdr.UNSIGNED,)),
        (9, 0, SCRIPTS, SCRIPT_TABLE, -1, RW, mark_scripts()),
        (9, 0, DISCONNECTOR, SCRIPT_TABLE, -1, RW, (
            (1, (script.action(script.EXECUTE_METHOD, 70, DC_LN, 1, axdr.INTEGER, 0),)),
            (2, (script.action(script.EXECUTE_METHOD, 70, DC_LN, 2, axdr.INTEGER, 0),)),
        )),
        (70, 0, DC_LN, DISCONNECT_CONTROL, 2, RW, None),
        (21, 0, MON_LN, REGISTER_MONITOR, 5, RW, PARAM),
        (71, 0, LIM_LN, LIMITER, 6, RW, PARAM),
    )
    st = [0, 0] + disconnect.initial_state(4) + [mon, lim]  # mode 4: remote reconnect closes
    ctx = make(table, st, size=256)
    relay = Relay()
    ctx.meter.relay = relay
    return ctx, table, relay


def power(ctx, w):
    ctx.meter.state[0] = w


def marked(ctx):
    # the script that ran last (0: none since the last call)
    st = ctx.meter.state
    m = st[1]
    st[1] = 0
    return m


# ------------------------------------------------------------ register monitor


def test_monitor_first_tick_only_takes_note():
    ctx, t, _ = setup()
    power(ctx, 1500)
    assert monitor.tick_monitor(ctx.meter, t[5]) == 0
    assert marked(ctx) == 0


def test_monitor_crossings_run_up_and_down_actions():
    ctx, t, _ = setup()
    m = ctx.meter
    obj = t[5]
    power(ctx, 500)
    monitor.tick_monitor(m, obj)
    power(ctx, 1500)  # crosses 1000 up
    assert monitor.tick_monitor(m, obj) == 1 and marked(ctx) == 1
    assert monitor.tick_monitor(m, obj) == 0  # staying there: nothing
    power(ctx, 2500)  # crosses 2000 up
    assert monitor.tick_monitor(m, obj) == 1 and marked(ctx) == 3
    power(ctx, 2000)  # back to the threshold: down (not over any more)
    assert monitor.tick_monitor(m, obj) == 1 and marked(ctx) == 4
    power(ctx, 100)  # down through 1000
    assert monitor.tick_monitor(m, obj) == 1 and marked(ctx) == 2
    power(ctx, 3000)  # up through both at once: both up actions, in order
    assert monitor.tick_monitor(m, obj) == 2 and marked(ctx) == 3


def test_monitor_attributes():
    ctx, t, _ = setup()
    obj = t[5]
    assert get_ok(ctx, obj, 2) == unhex("0102 06000003E8 06000007D0")
    assert get_ok(ctx, obj, 3) == unhex("0203 120003 0906" + POWER.hex() + "0F02")
    s = SCRIPTS.hex()

    def item(k):
        return "0202 0906%s 1200%02X" % (s, k)

    assert get_ok(ctx, obj, 4) == unhex("0102 0202" + item(1) + item(2) + "0202" + item(3) + item(4))


def test_monitor_set_thresholds_and_actions():
    ctx, t, _ = setup()
    m = ctx.meter
    obj = t[5]
    assert put(ctx, obj, 2, "0101 0600000064") == base.SUCCESS
    assert get_ok(ctx, obj, 2) == unhex("0101 0600000064")
    act = "0202 0202 0906%s 120002 0202 0906%s 120001" % (SCRIPTS.hex(), SCRIPTS.hex())
    assert put(ctx, obj, 4, "0101" + act) == base.SUCCESS
    power(ctx, 50)
    monitor.tick_monitor(m, obj)  # first tick after a SET of thresholds: note only
    power(ctx, 150)
    assert monitor.tick_monitor(m, obj) == 1 and marked(ctx) == 2  # the new action_up
    # refusals change nothing
    assert put(ctx, obj, 2, "0105" + "0600000001" * 5) == base.OTHER_REASON  # over the maximum 4
    assert put(ctx, obj, 2, "0102 0600000001 1200") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 4, "0101 0202 0202 09050000000000 120001 0202 0906000000000000 120001") \
        == base.OTHER_REASON
    assert put(ctx, obj, 3, "0203 120003 0906" + POWER.hex()) == base.TYPE_UNMATCHED
    assert get_ok(ctx, obj, 2) == unhex("0101 0600000064")
    assert get_ok(ctx, obj, 4) == unhex("0101" + act)


def test_monitor_unreadable_value_runs_nothing():
    ctx, t, _ = setup(mon=MonitorState(PARAM, (3, b"\x01\x00\x63\x63\x63\xff", 2), (10,),
                                       (((SCRIPTS, 1), (SCRIPTS, 2)),)))
    for _ in range(3):
        assert monitor.tick_monitor(ctx.meter, t[5]) == 0
    assert marked(ctx) == 0


# ------------------------------------------------------------------- limiter


def test_limiter_over_longer_than_its_duration_trips_the_relay():
    # the scenario: 6 kW against a 5 kW limit for 60 s opens the relay;
    # 2 minutes back under it closes it again (mode 4, remote reconnect)
    ctx, t, relay = setup()
    m = ctx.meter
    lim = t[6]
    dc = t[4]
    power(ctx, 4000)
    for s in range(0, 300, 10):
        assert monitor.tick_limiter(m, lim, T0 + s) == 0
    power(ctx, 6000)
    t1 = T0 + 300
    assert monitor.tick_limiter(m, lim, t1) == 0
    assert monitor.tick_limiter(m, lim, t1 + 59) == 0  # not yet
    assert disconnect.connected(m, dc)
    assert monitor.tick_limiter(m, lim, t1 + 60) == 1
    assert not disconnect.connected(m, dc)
    assert relay.calls == [(0, False)]
    assert monitor.tick_limiter(m, lim, t1 + 70) == 0  # once
    power(ctx, 1000)
    t2 = t1 + 100
    assert monitor.tick_limiter(m, lim, t2) == 0
    assert monitor.tick_limiter(m, lim, t2 + 119) == 0
    assert monitor.tick_limiter(m, lim, t2 + 120) == 2
    assert disconnect.connected(m, dc)
    assert relay.calls == [(0, False), (0, True)]


def test_limiter_short_peaks_do_not_trip():
    ctx, t, relay = setup()
    m = ctx.meter
    lim = t[6]
    for k in range(10):  # 50 s over, 10 s under, again and again
        power(ctx, 7000)
        assert monitor.tick_limiter(m, lim, T0 + 60 * k) == 0
        assert monitor.tick_limiter(m, lim, T0 + 60 * k + 50) == 0
        power(ctx, 100)
        assert monitor.tick_limiter(m, lim, T0 + 60 * k + 55) == 0
    assert relay.calls == []
    # the value at the threshold is not over it
    power(ctx, 5000)
    assert monitor.tick_limiter(m, lim, T0 + 1000) == 0
    assert monitor.tick_limiter(m, lim, T0 + 2000) == 0


def test_limiter_under_action_needs_an_over_first():
    ctx, t, _ = setup()
    power(ctx, 10)
    for s in range(0, 1000, 100):
        assert monitor.tick_limiter(ctx.meter, t[6], T0 + s) == 0


def dt(h, mi):
    b = bytearray(12)
    axdr.put_date_time(b, 0, 2026, 7, 1, 3, h, mi, 0, 0, 0, 0)  # deviation 0: UTC
    return bytes(b)


def test_limiter_emergency_profile_lowers_the_threshold():
    ctx, t, relay = setup()
    m = ctx.meter
    lim = t[6]
    assert monitor.emergency_profile(m, lim, 7, dt(10, 0), 3600)  # T0 is 10:00 UTC
    power(ctx, 4000)  # under normal 5000, over emergency 3000
    assert monitor.tick_limiter(m, lim, T0 - 100) == 0
    assert get_ok(ctx, lim, 10) == unhex("0300")
    assert get_ok(ctx, lim, 3) == unhex("0600001388")
    assert monitor.tick_limiter(m, lim, T0) == 0
    assert get_ok(ctx, lim, 10) == unhex("0301")
    assert get_ok(ctx, lim, 3) == unhex("0600000BB8")
    assert monitor.tick_limiter(m, lim, T0 + 60) == 1  # tripped
    # after the emergency the normal threshold is back: under it
    assert monitor.tick_limiter(m, lim, T0 + 3600) == 0
    assert get_ok(ctx, lim, 10) == unhex("0300")
    assert monitor.tick_limiter(m, lim, T0 + 3600 + 120) == 2
    assert relay.calls == [(0, False), (0, True)]


def test_limiter_emergency_profile_of_another_group_is_ignored():
    ctx, t, _ = setup()
    m = ctx.meter
    lim = t[6]
    assert monitor.emergency_profile(m, lim, 8, dt(10, 0), 3600)
    monitor.tick_limiter(m, lim, T0 + 10)
    assert get_ok(ctx, lim, 10) == unhex("0300")
    assert put(ctx, lim, 9, "0102 120007 120008") == base.SUCCESS
    monitor.tick_limiter(m, lim, T0 + 20)
    assert get_ok(ctx, lim, 10) == unhex("0301")


def test_limiter_attributes_and_sets():
    ctx, t, _ = setup()
    lim = t[6]
    assert get_ok(ctx, lim, 2) == unhex("0203 120003 0906" + POWER.hex() + "0F02")
    assert get_ok(ctx, lim, 4) == unhex("0600001388")
    assert get_ok(ctx, lim, 5) == unhex("0600000BB8")
    assert get_ok(ctx, lim, 6) == unhex("060000003C")
    assert get_ok(ctx, lim, 7) == unhex("0600000078")
    assert get_ok(ctx, lim, 8) == unhex("0203 120000 090CFFFFFFFFFFFFFFFFFF8000FF 0600000000")
    assert get_ok(ctx, lim, 9) == unhex("0101 120007")
    d = DISCONNECTOR.hex()
    assert get_ok(ctx, lim, 11) == unhex("0202 0202 0906%s 120001 0202 0906%s 120002" % (d, d))
    assert put(ctx, lim, 4, "0600001770") == base.SUCCESS  # normal in force: active too
    assert get_ok(ctx, lim, 3) == unhex("0600001770")
    assert put(ctx, lim, 6, "060000001E") == base.SUCCESS
    assert put(ctx, lim, 8, "0203 120009 090C" + dt(12, 0).hex() + "0600000E10") == base.SUCCESS
    assert get_ok(ctx, lim, 8) == unhex("0203 120009 090C" + dt(12, 0).hex() + "0600000E10")
    s = SCRIPTS.hex()
    assert put(ctx, lim, 11, "0202 0202 0906%s 120003 0202 0906%s 120004" % (s, s)) == base.SUCCESS
    # refusals
    assert put(ctx, lim, 4, "1200FF") == base.TYPE_UNMATCHED
    assert put(ctx, lim, 8, "0203 120009 090C" + "07EA0D01FF0000000000000000"[:24] + "0600000E10") \
        == base.OTHER_REASON  # month 13
    assert put(ctx, lim, 9, "0105 120001 120002 120003 120004 120005") == base.OTHER_REASON
    assert put(ctx, lim, 11, "0202 0202 0905%s 120003 0202 0906%s 120004" % (s[:10], s)) == base.OTHER_REASON
    assert put(ctx, lim, 10, "0301") == base.READ_WRITE_DENIED
    assert get_ok(ctx, lim, 4) == unhex("0600001770")
    assert get_ok(ctx, lim, 6) == unhex("060000001E")
    assert get_ok(ctx, lim, 9) == unhex("0101 120007")
    # the new actions and duration are used
    power(ctx, 6500)
    monitor.tick_limiter(ctx.meter, lim, T0)
    assert monitor.tick_limiter(ctx.meter, lim, T0 + 30) == 1
    assert marked(ctx) == 3


def test_limiter_monitors_what_a_set_points_it_at():
    ctx, t, _ = setup()
    lim = t[6]
    # point it at the MARK data object (unsigned)
    assert put(ctx, lim, 2, "0203 120001 0906" + MARK.hex() + "0F02") == base.SUCCESS
    ctx.meter.state[1] = 200
    power(ctx, 99999)
    assert put(ctx, lim, 4, "0600000064") == base.SUCCESS  # 100
    assert put(ctx, lim, 6, "0600000000") == base.SUCCESS
    assert monitor.tick_limiter(ctx.meter, lim, T0) == 1


def test_ticks_that_change_nothing_allocate_nothing():
    ctx, t, _ = setup()
    m = ctx.meter
    lim = t[6]
    mon = t[5]
    power(ctx, 1500)
    utc = T0 + 5

    def idle():
        monitor.tick_limiter(m, lim, utc)
        monitor.tick_monitor(m, mon)

    n = allocated(idle)
    assert n is None or n == 0, n
