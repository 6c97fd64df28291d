# The demo meter's metering: load, power-quality and daily billing profiles
# filled by the simulation, the standard event log, simulated time
# (accelerate, history backfill) and the profiles' persistence.

import datetime

import pytest

from dlms_micro import axdr
from dlms_micro_cpython import demo as demo_mod
from dlms_micro_cpython import storage
from dlms_micro_cpython.demo import (
    EVENT_CLOCK_NEW,
    EVENT_CLOCK_OLD,
    EVENT_POWER_DOWN,
    EVENT_POWER_UP,
    OBIS_CLOCK,
    OBIS_DAILY_PROFILE,
    OBIS_ENERGY_IMPORT,
    OBIS_EVENT_LOG,
    OBIS_LOAD_PROFILE,
    OBIS_PQ_PROFILE,
    STATUS_CLOCK_ADJUSTED,
    STATUS_POWER_DOWN,
    DemoMeter,
    entry,
)

T0 = 1_782_900_000  # 2026-07-01 10:00:00 UTC


class Host:
    # the host's clocks: wall (UTC s) and monotonic, moved by the test
    def __init__(self, monkeypatch, wall=T0):
        self.wall = wall
        self.mono = 5000.0
        monkeypatch.setattr(demo_mod.time, "monotonic", lambda: self.mono)

    def __call__(self):
        return int(self.wall)

    def run(self, d, seconds):
        # the service's 1-second update loop
        for _ in range(int(seconds)):
            self.mono += 1.0
            self.wall += 1.0
            d.update()


def rows(d, ln):
    # the profile's rows, oldest first, each a list of decoded values
    pb = d.profile_buffer(ln)
    out = []
    for a in range(pb.total - pb.count, pb.total):
        base = (a % pb.rows) * pb.width
        row = []
        for off in pb.offs:
            n = pb.data[base + off]
            if n == 0:
                row.append(None)
            else:
                t, v, end = axdr.decode(bytes(pb.data[base + off + 1 : base + off + 1 + n]))
                row.append(v)
        out.append(row)
    return out


def utc_of(octets):
    # a date-time octet-string (deviation 0 in the demo) -> UTC seconds
    y = (octets[0] << 8) | octets[1]
    dt = datetime.datetime(y, octets[2], octets[3], octets[5], octets[6], octets[7], tzinfo=datetime.timezone.utc)
    return int(dt.timestamp())


def test_history_backfills_every_profile_at_its_period(monkeypatch):
    host = Host(monkeypatch)
    d = DemoMeter(wall_clock=host, seed=3, history=2)
    lp = rows(d, OBIS_LOAD_PROFILE)
    assert len(lp) == 2 * 96
    times = [utc_of(r[0]) for r in lp]
    assert all(t % 900 == 0 for t in times)  # on the quarter hours
    assert [b - a for a, b in zip(times, times[1:])] == [900] * (len(times) - 1)
    assert times[-1] == T0  # the last quarter hour before (or at) now
    imports = [r[2] for r in lp]
    assert imports == sorted(imports) and imports[-1] > imports[0]  # energy only grows
    assert imports[-1] <= d.meter.state[entry(d.meter, OBIS_ENERGY_IMPORT)[4]]
    pq = rows(d, OBIS_PQ_PROFILE)
    assert len(pq) == 2 * 288
    assert all(2070 <= r[1] <= 2530 for r in pq)  # voltage in 0.1 V
    daily = rows(d, OBIS_DAILY_PROFILE)
    assert [utc_of(r[0]) % 86400 for r in daily] == [0, 0]  # at midnight
    # the load-profile row at midnight reads the billing row's energy
    by_time = {utc_of(r[0]): r[2] for r in lp}
    assert all(by_time[utc_of(r[0])] == r[1] for r in daily)


def test_accelerated_time_fills_the_load_profile_a_row_a_second(monkeypatch):
    host = Host(monkeypatch)
    d = DemoMeter(wall_clock=host, seed=3, accelerate=900)
    assert rows(d, OBIS_LOAD_PROFILE) == []
    host.run(d, 10)  # 10 host seconds = 9000 meter seconds
    lp = rows(d, OBIS_LOAD_PROFILE)
    assert len(lp) == 10
    assert [utc_of(r[0]) for r in lp] == [T0 + 900 * i for i in range(1, 11)]
    assert abs(d.now() - (T0 + 9000)) <= 1
    assert len(rows(d, OBIS_PQ_PROFILE)) == 30


def test_events_power_up_down_and_clock_adjusted(monkeypatch, tmp_path):
    host = Host(monkeypatch)
    store = storage.FileStorage(str(tmp_path))
    d = DemoMeter(storage=store, wall_clock=host, seed=3)
    ev = rows(d, OBIS_EVENT_LOG)
    assert [r[1] for r in ev] == [EVENT_POWER_UP] and utc_of(ev[0][0]) == T0
    host.run(d, 100)
    # a client sets the clock an hour ahead (as Clock SET of time does)
    d.meter.state[entry(d.meter, OBIS_CLOCK)[4]] += 3600
    host.run(d, 1)
    ev = rows(d, OBIS_EVENT_LOG)
    assert [r[1] for r in ev[1:]] == [EVENT_CLOCK_OLD, EVENT_CLOCK_NEW]
    assert utc_of(ev[2][0]) - utc_of(ev[1][0]) == 3600
    host.run(d, 900)
    lp = rows(d, OBIS_LOAD_PROFILE)
    # the first row: the restart and the adjustment happened in its interval
    assert lp[0][1] == STATUS_POWER_DOWN | STATUS_CLOCK_ADJUSTED
    d.power_down()
    ev = rows(d, OBIS_EVENT_LOG)
    assert ev[-1][1] == EVENT_POWER_DOWN


def test_profiles_survive_a_restart_and_history_is_not_backfilled_twice(monkeypatch, tmp_path):
    host = Host(monkeypatch)
    d = DemoMeter(storage=storage.FileStorage(str(tmp_path)), wall_clock=host, seed=3, history=1)
    before = rows(d, OBIS_LOAD_PROFILE)
    assert len(before) == 96
    d.power_down()
    host.wall += 3600
    d2 = DemoMeter(storage=storage.FileStorage(str(tmp_path)), wall_clock=host, seed=3, history=1)
    assert rows(d2, OBIS_LOAD_PROFILE) == before
    assert [r[1] for r in rows(d2, OBIS_EVENT_LOG)][-3:] == [EVENT_POWER_UP, EVENT_POWER_DOWN, EVENT_POWER_UP]
    assert rows(d2, OBIS_DAILY_PROFILE) == rows(d, OBIS_DAILY_PROFILE)


def test_bad_simulation_parameters_are_refused():
    with pytest.raises(ValueError):
        DemoMeter(accelerate=0.5)
    with pytest.raises(ValueError):
        DemoMeter(history=-1)


def test_cli_refuses_bad_accelerate_and_history(capsys):
    from dlms_micro_cpython import cli

    for argv in (["serve", "--accelerate", "0"], ["serve", "--history", "-2"], ["serve", "--accelerate", "nan"]):
        with pytest.raises(SystemExit) as e:
            cli.build_parser().parse_args(argv)
        assert e.value.code == 2
    args = cli.build_parser().parse_args(["serve", "--accelerate", "900", "--history", "7"])
    assert (args.accelerate, args.history) == (900.0, 7.0)


def test_demand_and_maximum_demand_follow_the_simulated_load(monkeypatch):
    from dlms_micro.cosem import demand
    from dlms_micro_cpython.demo import OBIS_DEMAND, OBIS_MAX_DEMAND

    host = Host(monkeypatch)
    d = DemoMeter(wall_clock=host, seed=3, history=1)
    st = d.meter.state
    s = entry(d.meter, OBIS_DEMAND)[4]
    x = entry(d.meter, OBIS_MAX_DEMAND)[4]
    last = st[s + demand.S_LAST]
    assert 0 < last < 5000  # W, a household's 15-minute average
    assert st[s + demand.S_CAPTURE] % 300 == 0  # closed on a 5-minute boundary
    # the maximum: at least every average seen since, with its time stamp
    assert st[x] >= last and st[x + 2] is not None and st[x + 2] <= T0
    # cross-check the last 15-minute average against the load profile's energy
    lp = rows(d, OBIS_LOAD_PROFILE)
    if st[s + demand.S_CAPTURE] == utc_of(lp[-1][0]):
        assert abs(last - (lp[-1][2] - lp[-2][2]) * 4) <= 4  # Wh in 15 min * 4 = W
    # the daily billing row carries the maximum demand of the day so far
    daily = rows(d, OBIS_DAILY_PROFILE)
    assert daily and daily[-1][3] <= st[x]


def test_served_demo_pushes_to_the_listener_ciphered_every_period():
    # the service's PushSender with an accelerated demo meter: a
    # DataNotification every 15 meter minutes (one a second here) reaches a
    # listener, general-glo-ciphered under the demo keys, and opens there
    import asyncio

    from dlms_micro_cpython.demo import DEMO_AK, DEMO_EK
    from dlms_micro_cpython.push import PushListener
    from dlms_micro_cpython.service import MeterService

    async def run():
        got = []
        listener = await PushListener("127.0.0.1", 0, ek=DEMO_EK, ak=DEMO_AK, out=got.append).start()
        dest = ("127.0.0.1:%d" % listener.port).encode()
        svc = MeterService(DemoMeter(seed=3, accelerate=900, push_destination=dest), wrapper_port=None, hdlc_port=None)
        await svc.start()
        try:
            for _ in range(80):
                if len(listener.received) >= 2:
                    break
                await asyncio.sleep(0.1)
        finally:
            await svc.stop()
            await listener.stop()
        return listener.received, got

    received, printed = asyncio.run(run())
    assert len(received) >= 2, printed
    assert all(n.protection is not None for n in received)  # ciphered, opened with the keys
    assert "push setup 0-0:25.9.0*255" in printed[0]


def test_cli_push_to_is_checked():
    from dlms_micro_cpython import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve", "--push-to", "nohost"])
    assert cli.build_parser().parse_args(["serve", "--push-to", "127.0.0.1:4061"]).push_to == "127.0.0.1:4061"
    assert cli.build_parser().parse_args(["listen", "--port", "0"]).command == "listen"


def test_push_over_hdlc_goes_out_as_ui_frames_on_the_serial_line():
    # transport service HDLC (5): the DataNotification leaves on the pty as
    # UI frames to the push client 102, ciphered, and opens with the keys
    import os
    import select
    import tty

    from dlms_micro.cosem import push
    from dlms_micro_cpython.demo import DEMO_AK, DEMO_EK, OBIS_PUSH
    from dlms_micro_cpython.push import PushListener
    from dlms_micro_cpython.service import ThreadedService

    d = DemoMeter(seed=3)
    obj = entry(d.meter, OBIS_PUSH)
    with ThreadedService(d, wrapper_port=None, hdlc_port=None, pty=True) as svc:
        fd = os.open(svc.pty_path, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)

            def hdlc_push():
                st = push.state_of(d.meter, obj)
                st.service = push.HDLC
                push.trigger(d.meter, obj)

            svc.call(hdlc_push)
            data = b""
            while data.count(b"\x7e") < 2 and select.select([fd], [], [], 3.0)[0]:
                data += os.read(fd, 4096)
        finally:
            os.close(fd)
    assert data[:1] == b"\x7e" and data[1] & 0xF0 == 0xA0 and not data[1] & 0x08, data.hex()  # one frame
    n = ((data[1] & 7) << 8) | data[2]
    frame = data[1 : 1 + n]
    assert frame[2] == (102 << 1) | 1  # to the push client
    assert frame[5] == 0x13  # UI, final
    info = frame[8:-2]
    assert info[:3] == b"\xe6\xe7\x00"
    got = []
    n = PushListener(ek=DEMO_EK, ak=DEMO_AK, out=got.append).handle(info[3:], "pty")
    assert n is not None and n.protection is not None, got


def test_compact_data_holds_the_last_load_profile_readings_without_tags(monkeypatch):
    from dlms_micro_cpython.demo import OBIS_COMPACT_DATA

    host = Host(monkeypatch)
    d = DemoMeter(wall_clock=host, seed=3, accelerate=900)
    host.run(d, 3)
    cb = d.meter.state[entry(d.meter, OBIS_COMPACT_DATA)[4]]
    assert bytes(cb.template[: cb.tn]) == bytes.fromhex("0203090606")
    last = rows(d, OBIS_LOAD_PROFILE)[-1]
    # clock (length + 12 bytes), import, export: the load profile's last row
    assert bytes(cb.data[: cb.n]) == bytes([12]) + last[0] + last[2].to_bytes(4, "big") + last[3].to_bytes(4, "big")


# ------------------------------------------------ time stamps on boundaries


def _row_times(d, ln):
    return [utc_of(r[0]) for r in rows(d, ln)]


def test_backfilled_rows_sit_on_their_capture_period_boundaries(monkeypatch):
    host = Host(monkeypatch, wall=T0 + 36)  # a start 36 s past the quarter hour
    d = DemoMeter(wall_clock=host, seed=4, history=1)
    for ln, period in ((OBIS_LOAD_PROFILE, 900), (OBIS_PQ_PROFILE, 300), (OBIS_DAILY_PROFILE, 86400)):
        times = _row_times(d, ln)
        assert times, ln
        assert all(t % period == 0 for t in times), (ln, [t % period for t in times][:5])


def test_accelerated_rows_and_scheduled_pushes_sit_on_their_boundaries(monkeypatch):
    from dlms_micro.cosem import clock
    from dlms_micro_cpython.push import PushSender

    host = Host(monkeypatch, wall=T0 + 23)
    d = DemoMeter(wall_clock=host, seed=5, accelerate=97, push_destination=b"127.0.0.1:9")
    sender = PushSender(d.meter)
    times = []

    def prepare(obj, utc):  # record when the push would go, and what its clock reads
        times.append((utc, clock.now(d.meter)))
        return None

    monkeypatch.setattr(sender, "_prepare", prepare)
    d.step_hooks.append(sender.poll_now)
    host.run(d, 120)  # over three hours of meter time
    lp = _row_times(d, OBIS_LOAD_PROFILE)
    assert len(lp) >= 12 and all(t % 900 == 0 for t in lp), [t % 900 for t in lp]
    first = {}
    for utc, now in times:
        assert utc == now  # the notification's clock is the step's time
        first.setdefault(utc // 900, utc)
    assert len(first) >= 12 and all(t % 900 == 0 for t in first.values()), sorted(first.values())


def test_a_clock_set_keeps_rows_on_the_new_time_boundaries(monkeypatch):
    from dlms_micro.cosem import clock

    host = Host(monkeypatch)
    d = DemoMeter(wall_clock=host, seed=6, accelerate=60)
    host.run(d, 40)
    ce = entry(d.meter, OBIS_CLOCK)
    d.meter.state[ce[4]] += 1337  # a client sets the clock 22 min 17 s ahead
    host.run(d, 60)
    rows_after = rows(d, OBIS_LOAD_PROFILE)
    assert all(utc_of(r[0]) % 900 == 0 for r in rows_after)
    # the row closing the interval the set fell in says the clock was adjusted
    adjusted = [r for r in rows_after if r[1] & STATUS_CLOCK_ADJUSTED]
    assert len(adjusted) == 1
