# The demo meter's time of use, end of billing, limiter and prepayment
# (demo_control.py) driven by its simulation over simulated days: the rate
# registers against the tariff rules recomputed here from the load profile,
# the monthly maximum-demand reset, a limiter trip and its reconnection, a
# prepaid account running out of credit and a top-up token closing the relay.

import calendar
import datetime

from dlms_micro.cosem import disconnect, prepay, token_gateway
from dlms_micro_cpython import storage
from dlms_micro_cpython.demo import OBIS_ENERGY_IMPORT, OBIS_LOAD_PROFILE, OBIS_MAX_DEMAND, DemoMeter, entry
from dlms_micro_cpython.demo_control import (
    DEMO_TOKEN_KEY,
    OBIS_ACCOUNT,
    OBIS_DISCONNECT,
    OBIS_T1,
    OBIS_T2,
    OBIS_TOKEN_CREDIT,
    OBIS_TOKEN_GATEWAY,
)

from test_demo_metering import Host, rows, utc_of


def utc(y, mo, d, h=0, mi=0):
    return calendar.timegm((y, mo, d, h, mi, 0))


def value(d, ln, k=0):
    return d.meter.state[entry(d.meter, ln)[4] + k]


def rate_of(t):
    # The demo's tariff rules, independently: the rate of the quarter hour
    # starting at UTC t (the demo clock's local time is UTC).
    dt = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    if (dt.month, dt.day) in ((1, 1), (12, 25)) or dt.weekday() >= 5:
        return 2
    summer = (4, 1) <= (dt.month, dt.day) < (10, 1)
    lo, hi = (7, 23) if summer else (6, 22)
    return 1 if lo <= dt.hour < hi else 2


def check_rates(d):
    # T1 and T2 hold the load profile's energy of their quarter hours; only
    # the energy counted before the first row may sit in either
    lp = rows(d, OBIS_LOAD_PROFILE)
    want = {1: 0, 2: 0}
    for a, b in zip(lp, lp[1:]):
        want[rate_of(utc_of(a[0]))] += b[2] - a[2]
    t1, t2 = value(d, OBIS_T1), value(d, OBIS_T2)
    assert t1 + t2 == value(d, OBIS_ENERGY_IMPORT)
    before = lp[0][2] + (value(d, OBIS_ENERGY_IMPORT) - lp[-1][2])
    assert want[1] <= t1 <= want[1] + before and want[2] <= t2 <= want[2] + before, (want, t1, t2, before)
    return want


def test_a_week_across_the_season_change_fills_the_right_rate_registers(monkeypatch):
    # 2026-09-28 (Monday, summer rules) .. 2026-10-05: winter rules from
    # Thursday 1 October, the weekend off-peak
    host = Host(monkeypatch, wall=utc(2026, 10, 5))
    d = DemoMeter(wall_clock=host, seed=5, history=7)
    want = check_rates(d)
    assert want[1] > 0 and want[2] > 0
    # the rule change shows: Wednesday 22:30 is peak (summer), Thursday 22:30 off-peak (winter)
    assert rate_of(utc(2026, 9, 30, 22, 30)) == 1 and rate_of(utc(2026, 10, 1, 22, 30)) == 2


def test_christmas_is_off_peak_all_day(monkeypatch):
    host = Host(monkeypatch, wall=utc(2026, 12, 26))
    d = DemoMeter(wall_clock=host, seed=5, history=2)  # Thursday 24th and Friday 25th December
    check_rates(d)
    lp = rows(d, OBIS_LOAD_PROFILE)
    xmas = [b[2] - a[2] for a, b in zip(lp, lp[1:]) if utc(2026, 12, 25) <= utc_of(a[0]) < utc(2026, 12, 26)]
    assert len(xmas) == 96 and sum(xmas) > 0
    assert all(rate_of(t) == 2 for t in range(utc(2026, 12, 25), utc(2026, 12, 26), 900))


def test_maximum_demand_starts_over_on_the_first_of_the_month(monkeypatch):
    host = Host(monkeypatch, wall=utc(2026, 11, 1, 12))
    d = DemoMeter(wall_clock=host, seed=5, history=3)
    # the end-of-billing schedule reset it at 00:00: its time stamp is after that
    assert value(d, OBIS_MAX_DEMAND, 2) >= utc(2026, 11, 1)
    assert value(d, OBIS_MAX_DEMAND) > 0


def test_the_limiter_trips_the_relay_and_the_customer_closes_it_after_reconnection(monkeypatch):
    host = Host(monkeypatch)
    d = DemoMeter(wall_clock=host, seed=5)
    dc = entry(d.meter, OBIS_DISCONNECT)
    real_step = d.sim.step
    heavy = [True]

    def step(hour):
        real_step(hour)
        if heavy[0]:
            d.sim.import_w, d.sim.export_w = 7000.0, 0.0  # a 7 kW load against the 6 kW limit

    monkeypatch.setattr(d.sim, "step", step)
    host.run(d, 58)
    assert disconnect.connected(d.meter, dc)  # not yet 60 s over
    host.run(d, 4)
    assert not disconnect.connected(d.meter, dc) and not d.control.closed
    assert disconnect.control_state(d.meter, dc) == disconnect.DISCONNECTED
    energy = value(d, OBIS_ENERGY_IMPORT)
    heavy[0] = False
    host.run(d, 100)
    assert value(d, OBIS_ENERGY_IMPORT) <= energy + 1  # no supply while open
    host.run(d, 25)  # 120 s under the limit: remote_reconnect -> ready for reconnection
    assert disconnect.control_state(d.meter, dc) == disconnect.READY_FOR_RECONNECTION
    host.run(d, 62)  # the customer's button
    assert disconnect.connected(d.meter, dc) and d.control.closed


def test_prepaid_credit_runs_out_and_a_token_closes_the_relay(monkeypatch, tmp_path):
    host = Host(monkeypatch)
    store = storage.FileStorage(str(tmp_path))
    d = DemoMeter(storage=store, wall_clock=host, seed=5, prepaid=True, accelerate=60)
    m = d.meter
    dc = entry(m, OBIS_DISCONNECT)
    acct = entry(m, OBIS_ACCOUNT)[4]
    m.state[entry(m, OBIS_TOKEN_CREDIT)[4]] = 5  # 5 cents left: 0.2 kWh at 25 cents/kWh
    opened = None
    for s in range(600):  # up to 10 simulated hours
        host.run(d, 1)
        if not disconnect.connected(m, dc):
            opened = s
            break
    assert opened is not None
    assert m.state[acct + prepay.A_AVAILABLE] <= 0
    assert disconnect.control_state(m, dc) == disconnect.READY_FOR_RECONNECTION
    host.run(d, 5)  # the customer presses the button in vain: no credit
    assert not disconnect.connected(m, dc)
    # a top-up token through the Token gateway (what ACTION enter does)
    gw = entry(m, OBIS_TOKEN_GATEWAY)
    tok = token_gateway.make_token(DEMO_TOKEN_KEY, 77, 500)
    assert token_gateway.enter(m, gw, tok, 0, len(tok)) == token_gateway.EXECUTION_OK
    assert disconnect.connected(m, dc)  # mode 5: the account closes it itself
    assert m.state[acct + prepay.A_AVAILABLE] > 0
    # the same token again: refused; the credit stays as it was
    before = m.state[acct + prepay.A_AVAILABLE]
    assert token_gateway.enter(m, gw, tok, 0, len(tok)) == token_gateway.VALIDATION_FAILURE
    assert m.state[acct + prepay.A_AVAILABLE] == before
    d.power_down()
    # after a restart: the credit, the used token and the relay state stay
    d2 = DemoMeter(storage=storage.FileStorage(str(tmp_path)), wall_clock=host, seed=5)
    m2 = d2.meter
    assert m2.state[entry(m2, OBIS_ACCOUNT)[4] + prepay.A_MODE] == prepay.PREPAYMENT_MODE
    assert token_gateway.enter(m2, entry(m2, OBIS_TOKEN_GATEWAY), tok, 0, len(tok)) == token_gateway.VALIDATION_FAILURE
    assert disconnect.connected(m2, entry(m2, OBIS_DISCONNECT))
