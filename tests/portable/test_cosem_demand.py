# Demand register (class 5): sub-periods closed at clock-aligned boundaries,
# block and sliding demand over a known power profile (values worked out by
# hand below), the date-time attributes, reset / next_period, SET of period
# and number_of_periods, maximum demand in an Extended register (class 4),
# energy wrap-around, the clock moving, a GET through a real channel, and
# the bytes a tick allocates on MicroPython.

from cosem_support import act, allocated, get, get_ok, make, put
from dlms_micro import axdr, server
from dlms_micro.cosem import base, clock, common, demand
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.demand import DEMAND_REGISTER
from dlms_micro.cosem.register import EXTENDED_REGISTER, REGISTER
from dlms_micro.link import wrapper
from dlms_micro.meter import Meter, Role
from support import unhex
from test_cosem_profile import CLOCK_ACC, CLOCK_LN, ENERGY_LN, REG_ACC, T0, Wall, dt_hex
from test_server import AARQ_PUBLIC, wrap, wsend

DEMAND_LN = b"\x01\x00\x01\x04\x00\xff"
MAX_LN = b"\x01\x00\x01\x06\x00\xff"
DR_ACC = ((b"\x01\x01\x01\x01\x01\x01\x01\x03\x03", b"\x01\x01"), None)
XR_ACC = ((b"\x01\x01\x01\x01\x01", b"\x01"), None)
# slots: clock 0..9, energy 10, demand 11..27, maximum 28..30
E = 10
D = 11
X = 28
DR_PARAM = (0, 27, 3, ENERGY_LN, 4, MAX_LN)


def table(dr_param=DR_PARAM, energy_param=(0, 30)):
    return (
        (8, 0, CLOCK_LN, CLOCK, 0, CLOCK_ACC, None),
        (3, 0, ENERGY_LN, REGISTER, E, REG_ACC, energy_param),
        (5, 0, DEMAND_LN, DEMAND_REGISTER, D, DR_ACC, dr_param),
        (4, 0, MAX_LN, EXTENDED_REGISTER, X, XR_ACC, (0, 27)),
    )


def state(period=900, n=1, energy=5000, dr_param=DR_PARAM):
    return (clock.initial_state() + [energy] + demand.initial_state(dr_param, period, n)
            + [0, 0, None])


def setup(period=900, n=1, energy=5000, energy_param=(0, 30)):
    t = table(energy_param=energy_param)
    wall = Wall(T0)
    ctx = make(t, state(period, n, energy), wall_clock=wall)
    return ctx, t[2], t[3], wall


def run(ctx, obj, wall, minutes, w_per_min):
    # Advance minute by minute from wall.t, the energy growing by w_per_min
    # Wh each minute, ticking at every minute; how many sub-periods closed.
    m = ctx.meter
    closed = 0
    for _ in range(minutes):
        wall.t += 60
        m.state[E] += w_per_min
        if demand.tick(m, obj, wall.t):
            closed += 1
    return closed


def dr(ctx, k):
    return ctx.meter.state[D + k]


def u32(v):
    return unhex("06%08x" % v)


def test_table_is_consistent_and_static_attributes():
    ctx, obj, xobj, wall = setup(n=3)
    common.check_table(ctx.meter)
    assert DEMAND_REGISTER.class_id == 5 and DEMAND_REGISTER.version == 0
    assert get_ok(ctx, obj, 2) == u32(0)
    assert get_ok(ctx, obj, 3) == u32(0)
    assert get_ok(ctx, obj, 4) == unhex("0202 0F00 161B")
    assert get_ok(ctx, obj, 5) == unhex("1100")
    assert get_ok(ctx, obj, 6) == unhex("090C ffffffffffffffffff8000ff")
    assert get_ok(ctx, obj, 7) == unhex("090C ffffffffffffffffff8000ff")
    assert get_ok(ctx, obj, 8) == u32(900)
    assert get_ok(ctx, obj, 9) == unhex("120003")
    assert get(ctx, obj, 10)[0] == base.READ_WRITE_DENIED
    for a in (2, 3, 4, 5, 6, 7):
        assert put(ctx, obj, a, "0600000001") == base.READ_WRITE_DENIED


def test_block_demand_closes_at_aligned_boundaries():
    ctx, obj, xobj, wall = setup()
    m = ctx.meter
    wall.t = T0 + 420  # 10:07:00
    assert not demand.tick(m, obj, wall.t)  # starts a partial sub-period
    assert dr(ctx, demand.S_START) == T0 + 420 and dr(ctx, demand.S_END) == T0 + 900
    # 1200 W = 20 Wh a minute; 10:08 .. 10:14: 7 minutes, 140 Wh
    assert run(ctx, obj, wall, 7, 20) == 0
    # running demand: 140 Wh over 900 s = 560 W
    assert get_ok(ctx, obj, 2) == u32(560)
    # 10:15: 160 Wh in the sub-period, closed at the boundary
    assert run(ctx, obj, wall, 1, 20) == 1
    assert get_ok(ctx, obj, 3) == u32(640)
    assert get_ok(ctx, obj, 2) == u32(0)  # block demand restarts from 0
    assert dr(ctx, demand.S_CAPTURE) == T0 + 900 and dr(ctx, demand.S_START) == T0 + 900
    # a whole sub-period of 1200 W: 1200 W; closes only at 10:30
    assert run(ctx, obj, wall, 14, 20) == 0
    assert run(ctx, obj, wall, 1, 20) == 1
    assert get_ok(ctx, obj, 3) == u32(1200)
    assert dr(ctx, demand.S_CAPTURE) == T0 + 1800
    # ticks between boundaries, or without a time, close nothing
    assert not demand.tick(m, obj, T0 + 1801)
    assert not demand.tick(m, obj, None)


def test_sliding_demand_over_three_sub_periods():
    # 15-minute sub-periods, number_of_periods 3: the denominator is 2700 s,
    # so a value is E Wh * 3600 / 2700 = E * 4 / 3 W. Power profile: 1200,
    # 2400, 600, 4800 W, i.e. 300, 600, 150, 1200 Wh per sub-period.
    ctx, obj, xobj, wall = setup(n=3)
    m = ctx.meter
    assert not demand.tick(m, obj, T0)  # 10:00:00, a whole first sub-period
    assert run(ctx, obj, wall, 15, 20) == 1  # 10:15
    assert get_ok(ctx, obj, 3) == u32(400)  # 300 * 4/3
    assert get_ok(ctx, obj, 2) == u32(400)  # window: 300 + 0 (+ running 0)
    assert run(ctx, obj, wall, 15, 40) == 1  # 10:30
    assert get_ok(ctx, obj, 3) == u32(1200)  # (300 + 600) * 4/3
    assert get_ok(ctx, obj, 2) == u32(1200)  # 300 + 600
    assert run(ctx, obj, wall, 15, 10) == 1  # 10:45
    assert get_ok(ctx, obj, 3) == u32(1400)  # (300 + 600 + 150) * 4/3
    assert get_ok(ctx, obj, 2) == u32(1000)  # (600 + 150) * 4/3
    assert run(ctx, obj, wall, 5, 80) == 0  # 10:50, 400 Wh so far
    assert get_ok(ctx, obj, 2) == u32(1533)  # (600 + 150 + 400) * 4/3, floor
    assert run(ctx, obj, wall, 10, 80) == 1  # 11:00
    assert get_ok(ctx, obj, 3) == u32(2600)  # (600 + 150 + 1200) * 4/3: 300 left
    assert get_ok(ctx, obj, 2) == u32(1800)  # (150 + 1200) * 4/3
    # the maximum followed every close: 400, 1200, 1400, 2600 at 11:00
    assert m.state[X] == 2600 and m.state[X + 2] == T0 + 3600
    assert get_ok(ctx, xobj, 2) == u32(2600)
    assert get_ok(ctx, xobj, 5) == unhex(dt_hex(11, 0))


def test_capture_time_and_start_time_are_local_date_times():
    ctx, obj, xobj, wall = setup()
    m = ctx.meter
    wall.t = T0 + 300
    demand.tick(m, obj, wall.t)
    assert get_ok(ctx, obj, 7) == unhex(dt_hex(10, 5))
    run(ctx, obj, wall, 10, 1)
    assert get_ok(ctx, obj, 6) == unhex(dt_hex(10, 15))
    assert get_ok(ctx, obj, 7) == unhex(dt_hex(10, 15))
    # in CET (time_zone -60: UTC minus local), the local time and deviation
    m.state[clock.S_TIME_ZONE] = -60
    b = bytearray(12)
    axdr.put_date_time(b, 0, 2026, 7, 1, 3, 11, 15, 0, 0xFF, -60, 0)
    assert get_ok(ctx, obj, 6) == unhex("090C") + bytes(b)


def test_reset_clears_both_averages_and_restarts_the_window():
    ctx, obj, xobj, wall = setup(n=3)
    m = ctx.meter
    demand.tick(m, obj, T0)
    run(ctx, obj, wall, 20, 20)  # 10:20: one sub-period closed, 100 Wh running
    assert dr(ctx, demand.S_LAST) == 400 and dr(ctx, demand.S_CURRENT) == 533
    wall.t = T0 + 1230  # 10:20:30
    assert act(ctx, obj, 1, "0F00") == (base.SUCCESS, b"")
    assert get_ok(ctx, obj, 2) == u32(0) and get_ok(ctx, obj, 3) == u32(0)
    assert dr(ctx, demand.S_CAPTURE) == T0 + 1230 and dr(ctx, demand.S_START) == T0 + 1230
    assert dr(ctx, demand.S_WINDOW) == 0
    # the old sub-period is forgotten: 10:30 closes 9.5 minutes of 20 Wh
    wall.t = T0 + 1200
    assert run(ctx, obj, wall, 10, 20) == 1
    assert dr(ctx, demand.S_LAST) == 200 * 4 // 3
    # without parameter, with null-data; refused with another type
    assert act(ctx, obj, 1)[0] == base.SUCCESS
    assert act(ctx, obj, 1, "00")[0] == base.SUCCESS
    assert act(ctx, obj, 1, "0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, obj, 3, "0F00")[0] == base.READ_WRITE_DENIED


def test_next_period_closes_the_running_period_now():
    ctx, obj, xobj, wall = setup()
    m = ctx.meter
    demand.tick(m, obj, T0)
    run(ctx, obj, wall, 6, 30)  # 10:06, 180 Wh: 720 W running
    assert dr(ctx, demand.S_CURRENT) == 720
    wall.t = T0 + 400  # 10:06:40
    m.state[E] += 5  # energy since the last tick counts too
    assert act(ctx, obj, 2, "0F00") == (base.SUCCESS, b"")
    assert get_ok(ctx, obj, 3) == u32(740)  # current copied: 185 Wh / 900 s
    assert get_ok(ctx, obj, 2) == u32(0)
    assert get_ok(ctx, obj, 6) == unhex("090C") + get_ok(ctx, obj, 7)[2:]
    assert dr(ctx, demand.S_CAPTURE) == T0 + 400 and dr(ctx, demand.S_START) == T0 + 400
    assert m.state[X] == 740 and m.state[X + 2] == T0 + 400
    # the next boundary stays on the clock's grid
    assert dr(ctx, demand.S_END) == T0 + 900
    wall.t = T0 + 360
    assert run(ctx, obj, wall, 9, 10) == 1  # 10:15: 90 Wh / 900 s
    assert dr(ctx, demand.S_LAST) == 360 and dr(ctx, demand.S_CAPTURE) == T0 + 900


def test_next_period_before_the_first_tick():
    ctx, obj, xobj, wall = setup()
    assert act(ctx, obj, 2)[0] == base.SUCCESS
    assert dr(ctx, demand.S_LAST) == 0 and dr(ctx, demand.S_CAPTURE) == T0
    assert dr(ctx, demand.S_END) == T0 + 900


def test_set_period_and_number_of_periods():
    ctx, obj, xobj, wall = setup(n=2)
    m = ctx.meter
    demand.tick(m, obj, T0)
    run(ctx, obj, wall, 20, 20)  # 10:20: 300 Wh closed, 100 running
    assert dr(ctx, demand.S_LAST) == 600 and dr(ctx, demand.S_CURRENT) == 800
    # wrong types, zero, more periods than the ring holds: refused, nothing moves
    assert put(ctx, obj, 8, "120384") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 8, "0500000384") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 8, "0600000000") == base.OTHER_REASON
    assert put(ctx, obj, 9, "0600000003") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 9, "11 03") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 9, "120000") == base.OTHER_REASON
    assert put(ctx, obj, 9, "120005") == base.OTHER_REASON  # ring of 4
    assert dr(ctx, demand.S_CURRENT) == 800 and get_ok(ctx, obj, 8) == u32(900)
    # the same value: nothing changes
    assert put(ctx, obj, 9, "120002") == base.SUCCESS
    assert dr(ctx, demand.S_CURRENT) == 800
    # a new period: the running measurement starts over now, aligned to 5 min
    assert put(ctx, obj, 8, "060000012c") == base.SUCCESS
    assert get_ok(ctx, obj, 8) == u32(300)
    assert dr(ctx, demand.S_CURRENT) == 0 and dr(ctx, demand.S_WINDOW) == 0
    assert dr(ctx, demand.S_LAST) == 600  # the last period did end
    assert dr(ctx, demand.S_START) == T0 + 1200 and dr(ctx, demand.S_END) == T0 + 1500
    assert run(ctx, obj, wall, 5, 20) == 1  # 10:25: 100 Wh / (2 * 300 s)
    assert dr(ctx, demand.S_LAST) == 600
    # a new number of periods starts over as well
    assert put(ctx, obj, 9, "120004") == base.SUCCESS
    assert get_ok(ctx, obj, 9) == unhex("120004")
    assert dr(ctx, demand.S_CURRENT) == 0 and dr(ctx, demand.S_START) == T0 + 1500
    assert run(ctx, obj, wall, 5, 20) == 1  # 10:30: 100 Wh / 1200 s
    assert dr(ctx, demand.S_LAST) == 300


def test_maximum_demand_is_kept_until_the_extended_register_is_reset():
    ctx, obj, xobj, wall = setup()
    m = ctx.meter
    demand.tick(m, obj, T0)
    run(ctx, obj, wall, 15, 40)  # 10:15: 2400 W
    assert (m.state[X], m.state[X + 2]) == (2400, T0 + 900)
    run(ctx, obj, wall, 15, 10)  # 10:30: 600 W, lower: the maximum stays
    assert dr(ctx, demand.S_LAST) == 600
    assert (m.state[X], m.state[X + 2]) == (2400, T0 + 900)
    # billing-period reset: the maximum starts over
    assert act(ctx, xobj, 1, "0F00")[0] == base.SUCCESS
    assert m.state[X] == 0 and m.state[X + 2] == T0 + 1800
    run(ctx, obj, wall, 15, 10)  # 10:45: 600 W
    assert (m.state[X], m.state[X + 2]) == (600, T0 + 2700)
    # update_max on any pair: only a larger value is taken
    m.state[D + demand.S_LAST] = 700
    m.state[D + demand.S_CAPTURE] = T0 + 5000
    assert demand.update_max(m, xobj, obj)
    assert (m.state[X], m.state[X + 2]) == (700, T0 + 5000)
    assert not demand.update_max(m, xobj, obj)
    m.state[X] = None  # no value yet: taken
    assert demand.update_max(m, xobj, obj) and m.state[X] == 700


def test_energy_register_wrapping_at_2_32():
    ctx, obj, xobj, wall = setup(energy=(1 << 32) - 100)
    m = ctx.meter
    demand.tick(m, obj, T0)
    for i in range(15):  # 20 Wh a minute across the wrap
        wall.t += 60
        m.state[E] = (m.state[E] + 20) & 0xFFFFFFFF
        demand.tick(m, obj, wall.t)
    assert m.state[E] == 200
    assert dr(ctx, demand.S_LAST) == 1200


def test_energy_register_reset_is_no_demand():
    ctx, obj, xobj, wall = setup(energy=1000)
    m = ctx.meter
    demand.tick(m, obj, T0)
    run(ctx, obj, wall, 5, 20)  # 100 Wh
    m.state[E] = 0  # register reset: not a wrap
    run(ctx, obj, wall, 10, 20)  # 200 Wh more, read from 20 Wh on
    # 100 + 180 Wh over 900 s: the 20 Wh before the first reading after the
    # reset are lost, and no wrap's 2**32 Wh appear
    assert dr(ctx, demand.S_LAST) == 1120


def test_long_unsigned_energy_wraps_at_2_16():
    ctx, obj, xobj, wall = setup(energy=65500, energy_param=(0, 30, axdr.LONG_UNSIGNED))
    m = ctx.meter
    demand.tick(m, obj, T0)
    for i in range(15):
        wall.t += 60
        m.state[E] = (m.state[E] + 20) & 0xFFFF
        demand.tick(m, obj, wall.t)
    assert dr(ctx, demand.S_LAST) == 1200


def test_clock_set_backwards_loses_nothing_and_goes_negative_nowhere():
    ctx, obj, xobj, wall = setup()
    m = ctx.meter
    demand.tick(m, obj, T0)
    run(ctx, obj, wall, 10, 20)  # 10:10, 200 Wh
    wall.t = T0 - 1000  # 09:43:20
    m.state[E] += 20
    assert not demand.tick(m, obj, wall.t)
    assert dr(ctx, demand.S_START) == T0 - 1800 and dr(ctx, demand.S_END) == T0 - 900
    assert dr(ctx, demand.S_CURRENT) == 880  # 220 Wh kept
    # 09:45 closes the sub-period with its energy; nothing negative anywhere
    assert run(ctx, obj, wall, 2, 20) == 1
    assert dr(ctx, demand.S_LAST) == 1040 and dr(ctx, demand.S_CURRENT) == 0
    for k in range(10):
        wall.t -= 7 * 60  # stepping backwards, the energy still rising
        m.state[E] += 3
        demand.tick(m, obj, wall.t)
        assert dr(ctx, demand.S_CURRENT) >= 0 and dr(ctx, demand.S_LAST) >= 0
        assert dr(ctx, demand.S_START) <= wall.t < dr(ctx, demand.S_END)


def test_skipped_boundaries_close_once_and_count_empty_sub_periods():
    ctx, obj, xobj, wall = setup(n=3)
    m = ctx.meter
    demand.tick(m, obj, T0)
    run(ctx, obj, wall, 15, 60)  # 10:15: 900 Wh
    run(ctx, obj, wall, 5, 60)  # 10:20: 300 Wh running
    wall.t = T0 + 2820  # 10:47: the loop stalled for 27 minutes
    m.state[E] += 60
    assert demand.tick(m, obj, wall.t)
    # closed once at 10:30 with the 360 Wh counted: (900 + 360) * 4/3 =
    # 1680, the maximum, stamped 10:30; 10:30-10:45 then passed empty, so
    # the window at 10:45 holds 900, 360, 0 Wh: 1680 again, stamped 10:45
    assert m.state[X] == 1680 and m.state[X + 2] == T0 + 1800
    assert dr(ctx, demand.S_LAST) == 1680
    assert dr(ctx, demand.S_CAPTURE) == T0 + 2700 and dr(ctx, demand.S_START) == T0 + 2700
    assert dr(ctx, demand.S_CURRENT) == 480  # (360 + 0) * 4/3
    assert dr(ctx, demand.S_END) == T0 + 3600
    # a stall longer than the window empties it
    wall.t = T0 + 9000
    assert demand.tick(m, obj, wall.t)
    assert dr(ctx, demand.S_LAST) == 0 and dr(ctx, demand.S_CURRENT) == 0


def test_demand_in_kilowatts_from_an_energy_register_in_tenths_of_wh():
    # energy scaler -1 (0.1 Wh), demand scaler 3 (kW): value = E * 3600 /
    # 10**4 / 900 for block demand
    p = (3, 27, 3, ENERGY_LN, 1, None)
    t = table(dr_param=p, energy_param=(-1, 30))
    wall = Wall(T0)
    ctx = make(t, state(energy=0, dr_param=p), wall_clock=wall)
    obj = t[2]
    demand.tick(ctx.meter, obj, T0)
    run(ctx, obj, wall, 15, 5000000)  # 500 kWh a minute: 30 MW
    assert dr(ctx, demand.S_LAST) == 30000
    assert ctx.meter.state[X] == 0 and ctx.meter.state[X + 2] is None  # no maximum named


def test_without_energy_register_or_clock():
    p = (0, 27, 3, b"\x01\x00\x02\x08\x00\xff", 2)
    t = table(dr_param=p)
    ctx = make(t, state(dr_param=p))
    obj = t[2]
    assert not demand.tick(ctx.meter, obj, T0)
    assert not demand.tick(ctx.meter, obj, T0 + 300)
    assert demand.tick(ctx.meter, obj, T0 + 900)
    assert dr(ctx, demand.S_LAST) == 0
    # no wall clock: reset and next_period still work, times not specified
    assert act(ctx, obj, 1)[0] == base.SUCCESS
    assert get_ok(ctx, obj, 6) == unhex("090C ffffffffffffffffff8000ff")
    assert act(ctx, obj, 2)[0] == base.SUCCESS
    assert put(ctx, obj, 8, "060000012c") == base.SUCCESS
    assert dr(ctx, demand.S_END) is None


def test_get_through_a_channel():
    t = table()
    wall = Wall(T0)
    m = Meter(t, (Role(16),), state(n=3), wall)
    demand.tick(m, t[2], T0)
    m.state[E] += 300
    wall.t += 900
    assert demand.tick(m, t[2], wall.t)
    ch = server.Channel(m, wrapper.WrapperServer())
    out = wsend(ch, wrap(AARQ_PUBLIC))
    assert unhex("A203020100") in out[0]

    def get_attr(ln, cid, attr):
        req = "C001C1 %04x %s %02x 00" % (cid, ln.hex(), attr)
        return wsend(ch, wrap(req))[0][8:]

    assert get_attr(DEMAND_LN, 5, 3) == unhex("C401C1 00") + u32(400)
    assert get_attr(DEMAND_LN, 5, 2) == unhex("C401C1 00") + u32(400)
    assert get_attr(DEMAND_LN, 5, 6) == unhex("C401C1 00") + unhex(dt_hex(10, 15))
    assert get_attr(DEMAND_LN, 5, 9) == unhex("C401C1 00 120003")
    assert get_attr(MAX_LN, 4, 2) == unhex("C401C1 00") + u32(400)
    # class 5 with the logical name of the Extended register: no such object
    assert get_attr(MAX_LN, 5, 2)[:4] == unhex("C401C1 01")


def test_a_steady_state_tick_allocates_little_on_micropython():
    # The times (and the big energies) are made beforehand: a time is above
    # 2**30, so the test's own t + 1 would cost 32 B on MicroPython.
    times = [T0 + 1 + i for i in range(8)]
    k = [0]

    def ticks(m, obj, energies):
        def go():
            k[0] += 1
            if energies is not None:
                m.state[E] = energies[k[0]]
            demand.tick(m, obj, times[k[0]])
        return go

    # nothing changed since the last tick / the energy moved / an energy
    # register above 2**30 (1 GWh in Wh): its difference costs one big int
    for first, energies, budget in ((5000, None, 0), (5000, [5000 + i for i in range(8)], 0),
                                    ((1 << 31), [(1 << 31) + i for i in range(8)], 32)):
        ctx, obj, xobj, wall = setup(n=3, energy=first)
        m = ctx.meter
        demand.tick(m, obj, T0)
        k[0] = 0
        used = allocated(ticks(m, obj, energies))
        assert used is None or used <= budget, used
        assert m.state[D + demand.S_END] == T0 + 900  # no close in between
    # a close, once a period: a few big-int times
    used = allocated(lambda: demand.tick(m, obj, T0 + 900) or demand.tick(m, obj, T0 + 1800))
    assert used is None or used <= 256, used
