# Energy registers across power cuts (issue 18, item 1): a simulated meter
# writes every energy value an update counted before control goes back to the
# loop that serves requests, so after a cut (no save(), no power_down()) no
# register reads lower than a value a client could have been served.

from dlms_micro_cpython import demo as demo_mod
from dlms_micro_cpython import storage
from dlms_micro_cpython.demo import DemoMeter, entry

T0 = 1_782_936_000  # 2026-07-01 20:00:00 UTC: an evening of import
ENERGIES = (
    b"\x01\x00\x01\x08\x00\xff",  # import
    b"\x01\x00\x02\x08\x00\xff",  # export
    b"\x01\x00\x01\x08\x01\xff",  # import, rate 1 (register activation)
    b"\x01\x00\x01\x08\x02\xff",  # import, rate 2
)


class Host:
    def __init__(self, monkeypatch):
        self.wall = T0
        self.mono = 5000.0
        monkeypatch.setattr(demo_mod.time, "monotonic", lambda: self.mono)

    def __call__(self):
        return int(self.wall)

    def tick(self, seconds=1.0):
        self.mono += seconds
        self.wall += seconds


def served(d):
    return [d.meter.state[entry(d.meter, ln)[4]] for ln in ENERGIES]


def test_energy_registers_never_read_lower_after_a_power_cut(monkeypatch, tmp_path):
    host = Host(monkeypatch)
    d = DemoMeter(storage=storage.FileStorage(str(tmp_path)), wall_clock=host, seed=5, accelerate=600)
    highest = served(d)
    cuts = 0
    for i in range(40):
        host.tick()
        d.update()
        now = served(d)
        highest = [max(a, b) for a, b in zip(highest, now)]
        if i % 4 == 3:
            # power cut: the process dies here, nothing saved on the way out
            d = DemoMeter(storage=storage.FileStorage(str(tmp_path)), wall_clock=host, seed=5, accelerate=600)
            cuts += 1
            after = served(d)
            assert all(a >= h for a, h in zip(after, highest)), (after, highest)
    assert cuts == 10
    assert highest[0] > 0 and highest[2] + highest[3] > 0  # energy and a rate register counted


def test_update_writes_a_changed_energy_before_it_returns(monkeypatch, tmp_path):
    host = Host(monkeypatch)
    store = storage.FileStorage(str(tmp_path))
    d = DemoMeter(storage=store, wall_clock=host, seed=5, accelerate=600)
    puts = []
    real_put = store.put
    store.put = lambda k, v: (puts.append(k), real_put(k, v))
    host.tick()
    d.update()
    stored = int.from_bytes(store.get("sim.energy.1.0.1.8.0.255"), "big")
    assert stored == served(d)[0] > 0
    assert "sim.energy.1.0.1.8.0.255" in puts
    # an update that counted nothing writes nothing
    puts.clear()
    d.update()  # no time passed
    assert not [k for k in puts if k.startswith("sim.energy.")]


def test_a_failing_storage_is_logged_once_and_the_energy_stored_when_it_works_again(monkeypatch, tmp_path):
    host = Host(monkeypatch)
    store = storage.FileStorage(str(tmp_path))
    log = []
    d = DemoMeter(storage=store, wall_clock=host, seed=5, accelerate=600, log=log.append)
    real_put = store.put
    failing = [True]

    def put(k, v):
        if failing[0]:
            raise OSError(24, "Too many open files")
        real_put(k, v)

    store.put = put
    for _ in range(3):
        host.tick()
        d.update()  # no exception out of update(): the service would log a traceback a second
    assert sum("could not store the energy registers" in x for x in log) == 1
    failing[0] = False
    host.tick()
    d.update()
    assert "energy registers stored again" in log
    assert int.from_bytes(store.get("sim.energy.1.0.1.8.0.255"), "big") == served(d)[0] > 0
