# The demo meter: a single-phase electricity meter whose load is simulated.
#
#   demo = DemoMeter(storage=FileStorage(dir))
#   ch = demo.make_channel("hdlc")        # or "wrapper": one per connection
#   demo.update()                         # every second: advance the simulation
#   demo.save()                           # at shutdown: persist the energies
#
# HDLC server address: logical 1, physical 17 (wire 02 23; the link also
# answers the 1- and 4-byte forms). Wrapper: wPort 1.
# Associations: client SAP 16 public (no authentication, reads the clock, the
# logical device name and its own association), 32 reader (LLS, reads every
# metering object), 1 management (LLS for now, all rights).

import math
import random
import time

from dlms_micro.link.hdlc import HdlcServer
from dlms_micro.link.wrapper import WrapperServer

LOGICAL_ADDRESS = 1
PHYSICAL_ADDRESS = 17
PASSWORD = b"12345678"
MAX_APDU = 1024

STORE_KEY_ENERGY = "demo.energy"  # import Wh, export Wh (8 bytes each, big-endian)


class LoadSimulator:
    # A household on one phase with a small PV array: the load follows the
    # time of day with random appliance switching; PV follows the sun. Import
    # power is what the house draws from the grid, export what it feeds in.
    def __init__(self, seed=None, pv_peak_w=1500.0):
        self.rng = random.Random(seed)
        self.pv_peak_w = pv_peak_w
        self.voltage = 230.0  # V
        self.current = 0.0  # A
        self.import_w = 0.0  # W
        self.export_w = 0.0  # W
        self.import_wh = 0.0  # Wh, accumulated
        self.export_wh = 0.0
        self._appliances = 0.0  # W of switched appliances
        self._last = None

    def _base_load(self, hour):
        # Night ~150 W, morning and evening peaks.
        return 150.0 + 350.0 * math.exp(-((hour - 7.5) ** 2) / 2.0) + 600.0 * math.exp(-((hour - 19.0) ** 2) / 4.0)

    def _pv(self, hour):
        if hour < 6.0 or hour > 20.0:
            return 0.0
        return self.pv_peak_w * math.sin(math.pi * (hour - 6.0) / 14.0) ** 2

    def step(self, wall_seconds, mono_seconds):
        # Advance to the given time; energies integrate the power held since
        # the previous step (at most 60 s counted, so a suspended host does
        # not produce a jump).
        if self._last is not None:
            dt = mono_seconds - self._last
            if dt > 0:
                dt = min(dt, 60.0)
                self.import_wh += self.import_w * dt / 3600.0
                self.export_wh += self.export_w * dt / 3600.0
        self._last = mono_seconds
        lt = time.localtime(wall_seconds)
        hour = lt.tm_hour + lt.tm_min / 60.0 + lt.tm_sec / 3600.0
        rng = self.rng
        # Appliances switch on and off now and then.
        if rng.random() < 0.05:
            self._appliances = rng.choice((0.0, 0.0, 60.0, 120.0, 800.0, 2000.0))
        load = self._base_load(hour) + self._appliances + rng.uniform(-20.0, 20.0)
        pv = self._pv(hour) * rng.uniform(0.85, 1.0)
        net = load - pv
        self.import_w = max(0.0, net)
        self.export_w = max(0.0, -net)
        # Voltage sags a little under import, rises under export.
        v = 230.0 + rng.uniform(-1.5, 1.5) - net / 1000.0
        self.voltage = max(207.0, min(253.0, v))
        self.current = abs(net) / (self.voltage * 0.95)


class DemoMeter:
    def __init__(self, storage=None, wall_clock=None, seed=None, log=None):
        self.storage = storage
        self.wall_clock = wall_clock or (lambda: int(time.time()))
        self.log = log
        self.sim = LoadSimulator(seed)
        self._restore_energy()
        self.meter = build_meter(self.wall_clock)
        self.meter.log = log
        self.update()

    # ------------------------------------------------------------ channels

    def make_link(self, kind):
        if kind == "hdlc":
            return HdlcServer(logical=LOGICAL_ADDRESS, physical=PHYSICAL_ADDRESS, max_apdu=MAX_APDU)
        if kind == "wrapper":
            return WrapperServer(wports=(LOGICAL_ADDRESS,), max_apdu=MAX_APDU)
        raise ValueError("unknown link kind %r" % (kind,))

    def make_channel(self, kind):
        try:
            from dlms_micro.server import Channel
        except ImportError:  # TEMPORARY: until the application layer lands
            return _LinkOnlyChannel(self.make_link(kind))
        return Channel(self.meter, self.make_link(kind))

    # ------------------------------------------------------------ simulation

    def update(self):
        self.sim.step(self.wall_clock(), time.monotonic())
        store_measurements(self.meter, self.sim)

    def _restore_energy(self):
        if self.storage is None:
            return
        b = self.storage.get(STORE_KEY_ENERGY)
        if b is not None and len(b) == 16:
            self.sim.import_wh = int.from_bytes(b[:8], "big") / 1000.0
            self.sim.export_wh = int.from_bytes(b[8:], "big") / 1000.0

    def save(self):
        if self.storage is None:
            return
        b = int(self.sim.import_wh * 1000).to_bytes(8, "big") + int(self.sim.export_wh * 1000).to_bytes(8, "big")
        self.storage.put(STORE_KEY_ENERGY, b)


class _LinkOnlyChannel:
    # TEMPORARY stand-in for dlms_micro.server.Channel while the application
    # layer is being written: the link runs, APDUs get no answer.
    def __init__(self, link):
        self.link = link
        self.tx_buf = link.tx_buf
        self.tx_start = self.tx_end = 0
        self.log = None

    def set_log(self, fn):
        self.log = self.link.log = fn

    def feed(self, data, start, end, now):
        return self.link.feed(data, start, end, now)

    def close(self):
        pass

    def next_event(self, now):
        while True:
            ev = self.link.next_event(now)
            if ev == 1:
                self.tx_buf = self.link.tx_buf
                self.tx_start = self.link.tx_start
                self.tx_end = self.link.tx_end
                return ev
            if ev == 2:
                self.link.send_apdu(-1)
            elif ev in (3, 4):
                continue
            else:
                return ev


# --------------------------------------------------------------- object table
# Filled in once the interface classes (dlms_micro.cosem.*) exist.


def build_meter(wall_clock):
    from dlms_micro.meter import Meter

    return Meter((), (), [], wall_clock=wall_clock, logical_device=LOGICAL_ADDRESS)


def store_measurements(meter, sim):
    pass
