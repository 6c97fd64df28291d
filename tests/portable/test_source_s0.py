# S0 pulse input (source.s0). Runs under pytest and under MicroPython.

from source_support import alloc

from dlms_micro import source
from dlms_micro.source import s0
from support import raises


class Store:
    # The ports' storage interface (put / get), in memory, with a switch to
    # make writes fail like a full or broken flash.
    def __init__(self):
        self.data = {}
        self.fail = False
        self.puts = 0

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        if self.fail:
            raise OSError(28)
        self.data[key] = bytes(value)
        self.puts += 1


def pulse(inp, t, width=50):
    inp.edge(1, t)
    inp.edge(0, t + width)


def test_pulses_to_energy_with_the_meter_constant():
    inp = s0.S0Input(constant=1000)
    assert inp.fields == ("energy_import", "energy_import_pulses")
    assert (inp.scalers[0], inp.units[0], inp.units[1]) == (0, 30, 255)
    for k in range(5):
        pulse(inp, 1000 * k)
    assert inp.values[0] == 5 and inp.values[1] == 5 and inp.count == 5
    assert inp.field_status[0] == source.OK and inp.stamps[0] == 4050
    # 800 imp/kWh: 1.25 Wh a pulse, exact with scaler -2
    inp = s0.S0Input(constant=800, direction="export")
    assert inp.fields[0] == "energy_export" and inp.scalers[0] == -2
    inp.pulses(3, 10)
    assert inp.values[0] == 375  # 3.75 Wh
    # 3 imp/kWh: not a whole number of any unit; Wh rounded down
    inp = s0.S0Input(constant=3)
    inp.pulses(2, 0)
    assert inp.scalers[0] == 0 and inp.values[0] == 666
    # 10000 imp/kWh: 0.1 Wh
    inp = s0.S0Input(constant=10000)
    inp.pulses(7, 0)
    assert (inp.values[0], inp.scalers[0]) == (7, -1)


def test_short_pulses_are_bounces_not_energy():
    inp = s0.S0Input(constant=1000, min_pulse=30)
    inp.edge(1, 0)
    inp.edge(0, 29)  # too short
    inp.edge(1, 100)
    inp.edge(0, 130)  # exactly the minimum: counts
    inp.edge(0, 140)  # no change: ignored
    assert inp.count == 1 and inp.bounces == 1 and not inp.storm
    assert inp.status == source.OK


def test_bounce_storm_is_counted_logged_once_and_ends():
    inp = s0.S0Input(storm_limit=10, storm_window=1000)
    log = []
    inp.log = log.append
    pulse(inp, 0)
    for k in range(40):  # 40 bounces of 2 ms within 400 ms
        pulse(inp, 100 + 10 * k, width=2)
    assert inp.storm and inp.storms == 1 and inp.bounces == 40
    assert inp.status == source.STALE and inp.error == source.E_BOUNCE
    assert inp.field_status[0] == source.STALE and inp.field_error[0] == source.E_BOUNCE
    assert inp.count == 1  # not a single pulse invented
    assert log == ["s0: bounce storm on the input"]
    inp.tick(1000)
    assert inp.storm  # the last bounce was at 492
    inp.tick(1493)
    assert not inp.storm and inp.status == source.OK and inp.field_status[0] == source.OK
    assert log == ["s0: bounce storm on the input", "source: recovered"]
    pulse(inp, 2000)
    assert inp.count == 2


def test_count_persisted_every_n_pulses_and_after_a_time():
    st = Store()
    inp = s0.S0Input(storage=st, key="s0.a", persist_every=10, persist_ms=60000)
    for k in range(25):
        pulse(inp, 100 * k)
    assert st.puts == 2 and st.data["s0.a"] == b"\x00\x00\x00\x00\x00\x14\x00\x00\x03\xe8"
    inp.tick(1950 + 59999)  # pulse 20 (the last save) ended at 1950
    assert st.puts == 2
    inp.tick(1950 + 60000)
    assert st.puts == 3 and st.data["s0.a"][5] == 25
    inp.tick(200000)
    assert st.puts == 3  # nothing unsaved


def test_power_cut_loses_at_most_persist_every_pulses():
    for cut_after in range(1, 32, 2):
        st = Store()
        inp = s0.S0Input(storage=st, persist_every=10, persist_ms=10**8)
        for k in range(cut_after):
            pulse(inp, 100 * k)
        inp.edge(1, 100 * cut_after)  # a pulse in progress when the power goes
        # power cut: a new instance reads the storage
        again = s0.S0Input(storage=st, persist_every=10)
        lost = cut_after + 1 - again.count
        assert 0 <= lost <= 10, (cut_after, again.count)
        assert again.count <= cut_after
        assert again.status == source.OK


def test_flush_and_constant_change():
    st = Store()
    inp = s0.S0Input(constant=1000, storage=st, persist_every=1000)
    inp.pulses(1234, 0)
    inp.flush(10)
    again = s0.S0Input(constant=500, storage=st)  # the same energy, half the pulses
    assert again.count == 617 and again.values[0] == 1234


def test_unreadable_record_is_no_value_and_failed_save_is_shown():
    st = Store()
    st.data["s0"] = b"\x01\x02"
    inp = s0.S0Input(storage=st)
    assert inp.status == source.NO_VALUE and inp.error == source.E_STORAGE
    inp.pulses(5, 0)
    assert inp.field_status[0] == source.NO_VALUE  # relative to an unknown start
    inp.set_count(100000, 10)
    assert inp.status == source.OK and inp.values[0] == 100000 and st.data["s0"][3:6] == b"\x01\x86\xa0"
    st.fail = True
    log = []
    inp.log = log.append
    inp.persist_every = 1
    inp.pulses(1, 20)
    assert inp.storage_errors == 2 and inp.error == source.E_STORAGE and inp.status == source.STALE
    assert log == ["s0: the count could not be saved"]
    assert inp.values[0] == 100001  # the count itself is right
    st.fail = False
    inp.pulses(1, 30)
    assert inp.status == source.OK and st.data["s0"][5] == 0xA2


def test_first_start_from_the_installation_reading():
    st = Store()
    inp = s0.S0Input(storage=st, start_pulses=5000)
    assert inp.count == 5000 and inp.status == source.OK and inp.values[0] == 5000


def test_bad_parameters():
    raises(ValueError, s0.S0Input, 0)
    raises(ValueError, s0.S0Input, 1000, 30, "sideways")


def test_a_pulse_allocates_nothing():
    inp = s0.S0Input(constant=1000, persist_every=1000000)
    t = [0]

    def one():
        inp.edge(1, t[0])
        inp.edge(0, t[0] + 50)
        inp.edge(1, t[0] + 60)
        inp.edge(0, t[0] + 61)  # and a bounce
        inp.tick(t[0] + 100)
        t[0] += 200

    used = alloc(one)
    assert used is None or used == 0, used
