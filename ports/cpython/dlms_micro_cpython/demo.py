# The demo meter: a single-phase electricity meter whose load is simulated.
#
#   demo = DemoMeter(storage=FileStorage(dir))
#   ch = demo.make_channel("hdlc")        # or "wrapper": one per connection
#   demo.update()                         # every second: advance the simulation
#   demo.save()                           # now and then: persist energies, clock, counters
#   demo.power_down()                     # at shutdown: "power down" event, then save()
#
# HDLC server address: logical 1, physical 17 (wire 02 23; the link also
# answers the 1- and 4-byte forms). Wrapper: wPort 1.
# Associations: client SAP 16 public (no authentication, reads the clock, the
# logical device name, its own association and the invocation counter), 32
# reader (LLS, reads every metering object), 1 management (HLS mechanism 5,
# GMAC, in the ciphered LN context: every APDU authenticated and encrypted
# with security suite 0; all rights, Security setup included).
#
# SECURITY (suite 0). The meter's KeyStore (meter.keys) keeps the keys, the
# security policy and the invocation counters in the storage, so the
# counters, and keys changed by key_transfer, survive restarts. Keys: the
# demo keys below (public, demo-only: the Green Book's example EK and AK, and
# a made-up KEK), or those of DemoMeter(keys=...) (`--keys FILE`, see
# keyfile.py), which replace stored ones. Security policy 0x6C:
# authenticated and encrypted requests and responses. The meter's system
# title is the manufacturer id "DMI" followed by the serial number as a
# 5-byte big-endian integer (system_title_for): serial 12345678 gives
# 44 4D 49 00 00 BC 61 4E.
#
# METERING (Profile generic, class 7; rows persist in the storage):
#   1.0.99.1.0.255  load profile, every 15 minutes: clock, AMR profile status
#                   (0.0.96.10.1.255), active energy import, export (Wh)
#   1.0.99.2.0.255  load profile 2, power quality, every 5 minutes: clock,
#                   voltage, current, active power (instantaneous values)
#   1.0.98.1.0.255  daily billing values, at 00:00 UTC: clock, energy
#                   import, export, maximum demand
# FIRMWARE UPDATE: 0.0.44.0.0.255 Image transfer (class 18), management
# only: blocks go to a file in the data directory; the image ends with the
# SHA-256 of what precedes it (image_verify checks it); image_activate makes
# the image's identification the firmware version 1.0.0.2.0.255 (kept
# across restarts).
# COMPACT DATA: 0.0.66.0.1.255 (class 62) holds the clock and the energies
# without their tags (template 1: 02 03 09 06 06), captured with each
# load-profile row and by management's method capture.
# PUSH: 0.0.25.9.0.255 Push setup (class 40): a DataNotification of its
# logical name, the clock and the energies every 15 minutes (and on its
# method push) over TCP to push_destination ("host:port"; empty by default:
# no pushes until a head-end sets one, or `serve --push-to 127.0.0.1:4061`
# where `dlms-micro listen` prints them); protected by the security policy
# (general-glo-ciphering with the meter's keys). The service sends them.
# Demand: 1.0.1.4.0.255 Demand register (class 5) of import power over a
# 15-minute sliding window of three 5-minute sub-periods; its maximum goes
# to the Extended register 1.0.1.6.0.255 (value and time stamp; reset by
# management). Not persisted: both start over at a restart.
#   0.0.99.98.0.255 standard event log (captured on each event): clock,
#                   event code (0.0.96.11.0.255, the last event's code)
# Event codes (IDIS numbering): 1 power down, 2 power up, 4 clock adjusted
# (the old time), 5 clock adjusted (the new time). AMR profile status bits of
# a load-profile row: 0x80 power down in the interval, 0x20 clock adjusted,
# 0x02 clock invalid.
#
# SIMULATED TIME. accelerate=N runs the meter's clock N times as fast as the
# host's (the simulation integrates energy in steps of at most 60 simulated
# seconds, so profiles fill N times faster with the same data). history=DAYS
# backfills DAYS of simulated operation before now when the load profile is
# empty (first start): energy registers, profiles and events as if the meter
# had been running.

import math
import os
import random
import time

from dlms_micro.cosem import clock, compact, demand, profile
from dlms_micro.link.hdlc import HdlcServer
from dlms_micro.link.wrapper import WrapperServer
from dlms_micro.meter import MECH_LLS
from dlms_micro_cpython.demo_control import Control
from dlms_micro_cpython.demo_table import *  # noqa: F401,F403  (the object table and its names)
from dlms_micro_cpython.demo_table import _modes  # noqa: F401  (tests use it)
from dlms_micro_cpython.demo_table import (
    IMAGE_BLOCK_SIZE,
    IMAGE_CAPACITY,
    LOGICAL_ADDRESS,
    MemoryStorage,
    OBIS_CLOCK,
    OBIS_COMPACT_DATA,
    OBIS_FIRMWARE,
    PASSWORD,
    PUSH_DESTINATION,
    build_meter,
    entry,
)

MAX_APDU = 1024
STEP = 60.0  # simulated seconds per simulation step, at most
MAX_GAP = 120.0  # host seconds between updates simulated, at most

# Event codes of the standard event log (IDIS numbering)
EVENT_POWER_DOWN = 1
EVENT_POWER_UP = 2
EVENT_CLOCK_OLD = 4  # clock adjusted: logged with the time before
EVENT_CLOCK_NEW = 5  # clock adjusted: logged with the time after
# AMR profile status bits (a load-profile row's status)
STATUS_CLOCK_INVALID = 0x02
STATUS_CLOCK_ADJUSTED = 0x20
STATUS_POWER_DOWN = 0x80

# Persistent state (storage keys)
STORE_KEY_ENERGY = "demo.energy"  # import Wh, export Wh: 4 bytes each, big-endian
STORE_KEY_CLOCK = "demo.clock-offset"  # meter time - host time, s: 8 bytes signed
STORE_KEY_SECRET = "demo.lls-secret.%d"  # a role's LLS password, by client SAP
# (the key store keeps its own records: "sec.keys", "sec.tx", "sec.rx")

# Demo-only security material (public values: never use them in a real meter)
DEMO_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")  # Green Book example
DEMO_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")  # Green Book example
DEMO_KEK = bytes.fromhex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")  # made up for the demo
MANUFACTURER_ID = b"DMI"  # as in the logical device name
# authenticated + encrypted requests (0x04, 0x08) and responses (0x20, 0x40)
SECURITY_POLICY = 0x6C


def system_title_for(serial_number, manufacturer=MANUFACTURER_ID):
    # The meter's system title: the 3-letter manufacturer id, then the
    # (decimal) serial number as a 5-byte big-endian integer.
    n = int(serial_number)
    if len(manufacturer) != 3 or not 0 <= n < 1 << 40:
        raise ValueError("a system title needs a 3-letter id and a serial number below 2**40")
    return bytes(manufacturer) + n.to_bytes(5, "big")


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
        self._appliances = 0.0  # W of switched appliances

    def _base_load(self, hour):
        # Night ~150 W, morning and evening peaks.
        return 150.0 + 350.0 * math.exp(-((hour - 7.5) ** 2) / 2.0) + 600.0 * math.exp(-((hour - 19.0) ** 2) / 4.0)

    def _pv(self, hour):
        if hour < 6.0 or hour > 20.0:
            return 0.0
        return self.pv_peak_w * math.sin(math.pi * (hour - 6.0) / 14.0) ** 2

    def step(self, local_hour):
        # New instantaneous values for this time of day (hours, float).
        rng = self.rng
        if rng.random() < 0.05:  # an appliance switches now and then
            self._appliances = rng.choice((0.0, 0.0, 60.0, 120.0, 800.0, 2000.0))
        load = self._base_load(local_hour) + self._appliances + rng.uniform(-20.0, 20.0)
        pv = self._pv(local_hour) * rng.uniform(0.85, 1.0)
        net = load - pv
        self.import_w = max(0.0, net)
        self.export_w = max(0.0, -net)
        # Voltage sags a little under import and rises under export.
        v = 230.0 + rng.uniform(-1.5, 1.5) - net / 1000.0
        self.voltage = max(207.0, min(253.0, v))
        self.current = abs(net) / (self.voltage * 0.95)


class DemoMeter:
    # The meter's run-time values live in meter.state (what clients read and
    # reset); the simulation adds energy to them and sets the instantaneous
    # values. Persistent: the energies, the clock offset, the LLS secrets,
    # and the key store's keys and counters.
    # keys: None (the demo keys, or keys stored by a key_transfer), or a dict
    # {"ek", "ak", "kek": 16 bytes, "system_title": 8 bytes or None} (a key
    # file, keyfile.load) that replaces the stored keys. A stored key record
    # that fails its checks raises ValueError.
    def __init__(
        self,
        storage=None,
        wall_clock=None,
        seed=None,
        log=None,
        keys=None,
        random_bytes=os.urandom,
        accelerate=1,
        history=0,
        push_destination=PUSH_DESTINATION,
        prepaid=False,
    ):
        if not accelerate >= 1:
            raise ValueError("accelerate must be 1 or more")
        if not history >= 0:
            raise ValueError("history must be 0 days or more")
        self.storage = storage
        self.wall_clock = wall_clock or (lambda: int(time.time()))
        self.accelerate = accelerate
        self._pinned = None  # meter wall time while simulating a step (UTC s)
        self._base = (self.wall_clock(), time.monotonic())  # for accelerate
        self.log = log
        self.sim = LoadSimulator(seed)
        from dlms_micro_cpython import image_store

        image_state = image_store.image_state(storage if storage is not None else MemoryStorage(), None, IMAGE_CAPACITY, IMAGE_BLOCK_SIZE)
        self.meter = build_meter(self._clock, storage, push_destination, prepaid, image_state)
        # image_activate makes the image's identification the firmware version
        image_state.sink.on_activate = image_store.version_activator(self.meter, OBIS_FIRMWARE, storage)
        image_store.restore_version(self.meter, OBIS_FIRMWARE, storage)
        self.meter.log = log
        self.meter.keys = make_key_store(storage if storage is not None else MemoryStorage(), keys)
        self.meter.random_bytes = random_bytes
        m = self.meter
        self._slot = {
            ln: entry(m, ln)[4]
            for ln in (OBIS_ENERGY_IMPORT, OBIS_ENERGY_EXPORT, OBIS_POWER, OBIS_VOLTAGE, OBIS_CURRENT, OBIS_CLOCK, OBIS_EVENT_CODE, OBIS_PROFILE_STATUS)
        }
        self.profiles = tuple(entry(m, ln) for ln in PROFILES)  # ticked in this order
        self._demand = entry(m, OBIS_DEMAND)
        self._compact = entry(m, OBIS_COMPACT_DATA)
        self.control = Control(m, lambda ln: entry(m, ln))  # drives meter.relay too
        self._carry_import = 0.0  # Wh not yet counted (registers hold whole Wh)
        self._carry_export = 0.0
        self._last = None  # time.monotonic() of the last update
        self.restore()
        self._clock_offset = self.meter.state[self._slot[OBIS_CLOCK]]
        if history and self.profile_buffer(OBIS_LOAD_PROFILE).count == 0:
            self.backfill(history)
        self.log_event(EVENT_POWER_UP)
        self._status |= STATUS_POWER_DOWN  # this interval had an outage (the restart)
        self.update()

    # ------------------------------------------------------------ time

    def _clock(self):
        # The meter's wall clock (Meter.wall_clock): the host's clock, N
        # times as fast with accelerate=N, or the simulated instant while a
        # simulation step runs.
        if self._pinned is not None:
            return self._pinned
        if self.accelerate == 1:
            return self.wall_clock()
        w, mono = self._base
        return w + int((time.monotonic() - mono) * self.accelerate)

    def now(self):
        # the meter's time (UTC seconds), its clock's offset included
        return clock.now(self.meter)

    # ------------------------------------------------------------ channels

    def make_link(self, kind):
        if kind == "wrapper":
            return WrapperServer(wports=(LOGICAL_ADDRESS,), max_apdu=MAX_APDU)
        if kind not in ("hdlc", "hdlc-tcp"):
            raise ValueError("unknown link kind %r" % (kind,))
        from dlms_micro.cosem import hdlc_setup

        # The IEC HDLC setup object holds the configured parameters; a change
        # takes effect on the next connection.
        _baud, wtx, wrx, mitx, mirx, inter_octet, inactivity, device = hdlc_setup.link_parameters(self.meter, entry(self.meter, OBIS_HDLC_SETUP))
        if kind == "hdlc-tcp":
            # TCP may deliver one frame in pieces far apart: no inter-octet
            # timeout worth the name there.
            inter_octet = max(inter_octet, 2000)
        return HdlcServer(
            logical=LOGICAL_ADDRESS,
            physical=device,
            max_info_tx=mitx,
            max_info_rx=mirx,
            window_tx=wtx,
            window_rx=wrx,
            max_apdu=MAX_APDU,
            inactivity_timeout=inactivity * 1000,
            inter_octet_timeout=inter_octet,
        )

    @property
    def uses_demo_keys(self):
        # whether the active keys are the public demo keys
        k = self.meter.keys
        return k.ek == DEMO_EK and k.ak == DEMO_AK and k.kek == DEMO_KEK

    def make_channel(self, kind):
        from dlms_micro.server import Channel

        return Channel(self.meter, self.make_link(kind))

    # ------------------------------------------------------------ simulation

    def update(self):
        # Advance the simulation to now: integrate the power held since the
        # last update in steps of at most STEP simulated seconds, drawing new
        # instantaneous values and ticking the profiles after each. A gap
        # longer than MAX_GAP (a suspended host) is skipped, not simulated.
        mono = time.monotonic()
        if self._last is None:
            self._last = mono
            self._step(self._clock(), 0.0)
            return
        elapsed = min(max(mono - self._last, 0.0), MAX_GAP) * self.accelerate
        self._last = mono
        end = self._clock()
        self._simulate(end - elapsed, end)

    def _simulate(self, start, end):
        # Simulate the meter from wall time start to end (floats, UTC s).
        t = start
        try:
            while True:
                dt = min(STEP, end - t)
                if dt <= 0.0:
                    break
                t += dt
                self._pinned = int(t)
                self._step(self._pinned, dt)
        finally:
            self._pinned = None

    def _step(self, wall, dt):
        # One step ending at meter wall time `wall`: count the energy of the
        # power held for dt seconds, notice a clock adjustment, draw new
        # instantaneous values, tick the profiles.
        st = self.meter.state
        sl = self._slot
        sim = self.sim
        self._carry_import += sim.import_w * dt / 3600.0
        self._carry_export += sim.export_w * dt / 3600.0
        whole = int(self._carry_import)
        if whole:
            self._carry_import -= whole
            st[sl[OBIS_ENERGY_IMPORT]] = (st[sl[OBIS_ENERGY_IMPORT]] + whole) & 0xFFFFFFFF
            self.control.add_import(whole)  # and to the rate register in force
        whole = int(self._carry_export)
        if whole:
            self._carry_export -= whole
            st[sl[OBIS_ENERGY_EXPORT]] = (st[sl[OBIS_ENERGY_EXPORT]] + whole) & 0xFFFFFFFF
        offset = st[sl[OBIS_CLOCK]]
        if offset != self._clock_offset:  # a client set or shifted the clock
            new = offset
            st[sl[OBIS_CLOCK]] = self._clock_offset
            self.log_event(EVENT_CLOCK_OLD)
            st[sl[OBIS_CLOCK]] = new
            self.log_event(EVENT_CLOCK_NEW)
            self._clock_offset = new
            self._status |= STATUS_CLOCK_ADJUSTED
        lt = time.localtime(wall + offset)
        sim.step(lt.tm_hour + lt.tm_min / 60.0 + lt.tm_sec / 3600.0)
        if not self.control.connected():  # the relay is open: no supply
            sim.import_w = sim.export_w = sim.current = 0.0
        st[sl[OBIS_POWER]] = int(round(sim.import_w))
        st[sl[OBIS_VOLTAGE]] = int(round(sim.voltage * 10))
        st[sl[OBIS_CURRENT]] = int(round(sim.current * 100))
        self._tick(wall + offset)

    def _tick(self, utc):
        m = self.meter
        st = m.state
        demand.tick(m, self._demand, utc)
        self.control.tick(utc)
        for obj in self.profiles:
            if obj[2] == OBIS_LOAD_PROFILE:
                st[self._slot[OBIS_PROFILE_STATUS]] = self._status
                if profile.tick(m, obj, utc):
                    self._status = 0  # the row took the interval's status
                    compact.capture(m, self._compact)
            else:
                profile.tick(m, obj, utc)

    def backfill(self, days):
        # Simulate `days` days before now (the meter's first start): the
        # registers, profiles and events fill as if it had been running.
        end = float(self._clock())
        buffers = [self.profile_buffer(ln) for ln in PROFILES + (OBIS_EVENT_LOG,)]
        for pb in buffers:
            pb.defer()  # one write per page at the end, not one per row
        try:
            self._simulate(end - days * 86400.0, end)
        finally:
            for pb in buffers:
                pb.flush()
        if self.log:
            self.log("backfilled %g days: %d load-profile rows" % (days, self.profile_buffer(OBIS_LOAD_PROFILE).count))

    # ------------------------------------------------------------ events

    _status = 0  # AMR profile status of the load-profile interval running

    def log_event(self, code):
        # Record an event in the standard event log (clock, event code).
        m = self.meter
        m.state[self._slot[OBIS_EVENT_CODE]] = code
        profile.capture(m, entry(m, OBIS_EVENT_LOG))

    def power_down(self):
        # At shutdown: the "power down" event, then the persistent state.
        try:
            self.log_event(EVENT_POWER_DOWN)
        finally:
            self.save()

    def profile_buffer(self, ln):
        return profile.buffer_of(self.meter, entry(self.meter, ln))

    # ------------------------------------------------------------ persistence

    def restore(self):
        if self.storage is None:
            return
        st = self.meter.state
        sl = self._slot
        b = self.storage.get(STORE_KEY_ENERGY)
        if b is not None and len(b) == 8:
            st[sl[OBIS_ENERGY_IMPORT]] = int.from_bytes(b[:4], "big")
            st[sl[OBIS_ENERGY_EXPORT]] = int.from_bytes(b[4:], "big")
        b = self.storage.get(STORE_KEY_CLOCK)
        if b is not None and len(b) == 8:
            st[sl[OBIS_CLOCK]] = int.from_bytes(b, "big", signed=True)
        for role in self.meter.roles:
            b = self.storage.get(STORE_KEY_SECRET % role.client_sap)
            if b and role.mechanism == MECH_LLS:
                role.secret = b

    def save(self):
        if self.storage is None:
            return
        st = self.meter.state
        sl = self._slot
        energy = st[sl[OBIS_ENERGY_IMPORT]].to_bytes(4, "big") + st[sl[OBIS_ENERGY_EXPORT]].to_bytes(4, "big")
        self._put(STORE_KEY_ENERGY, energy)
        self._put(STORE_KEY_CLOCK, int(st[sl[OBIS_CLOCK]]).to_bytes(8, "big", signed=True))
        for role in self.meter.roles:
            key = STORE_KEY_SECRET % role.client_sap
            if role.mechanism == MECH_LLS and bytes(role.secret) != PASSWORD:
                self._put(key, bytes(role.secret))  # changed through Association LN
            elif self.storage.get(key) is not None:
                self.storage.delete(key)
        self.meter.keys.sync_rx()  # receive counters moved since the last store
        self.control.save()  # the prepaid account's credit

    def _put(self, key, value):
        if self.storage.get(key) != value:  # no disk write for an unchanged value
            self.storage.put(key, value)


def make_key_store(storage, keys=None):
    # The meter's KeyStore: demo keys by default (a stored record, written by
    # key_transfer, overrides them); keys (a key file's dict) replace both.
    from dlms_micro.security import keys as ks

    import dlms_micro_cpython.crypto  # noqa: F401  (AES-GCM by `cryptography`)

    title = keys.get("system_title") if keys else None
    store = ks.KeyStore(
        storage,
        title or system_title_for(SERIAL_NUMBER),
        ek=DEMO_EK,
        ak=DEMO_AK,
        kek=DEMO_KEK,
        policy=SECURITY_POLICY,
    )
    if keys:
        # The file's keys become the meter's: stored (a key whose value
        # changes starts its receive counters over) and active at once.
        updates = [(i, keys[n]) for i, n in ((ks.KEY_EK, "ek"), (ks.KEY_AK, "ak"), (ks.KEY_KEK, "kek")) if store.key(i) != keys[n]]
        if updates:
            store.store_keys(updates)
            store.activate_pending()
    return store


