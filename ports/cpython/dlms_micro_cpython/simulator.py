# A simulated meter of any meter definition (docs/meter-definition.md): the
# CPython port serves it (`dlms-micro serve --meter FILE`), the demo meter is
# one (demo.py, meters/demo.json).
#
#   sim = SimulatedMeter(compiled, storage=FileStorage(dir))
#   ch = sim.make_channel("hdlc")        # or "wrapper": one per connection
#   sim.update()                         # every second: advance the simulation
#   sim.save()                           # now and then: persist what must survive
#   sim.power_down()                     # at shutdown: "power down" event, then save()
#
# WHAT THE SIMULATION DRIVES is named in the definition ("drive"):
#   simulation:energy-import / energy-export   registers (Wh) the household's
#                                              import / export power fills
#   simulation:power / voltage / current / frequency   instantaneous values,
#                                              scaled by the register's scaler
#   event-code       the last event's code (1 power down, 2 power up, 4/5
#                    clock adjusted old/new time: IDIS numbering); the event
#                    logs (profiles with capture_period 0 that capture it)
#                    take a row on each event
#   profile-status   the AMR profile status of the interval running (0x80
#                    power down, 0x20 clock adjusted); reset after the
#                    profiles that capture it took their row
#   firmware-version the version an Image transfer activation sets
# And every object ticks as its class says: profiles capture at their
# period, demand registers average, activity calendars switch tariffs
# (register activation: the import energy goes to the active rate
# registers), single action schedules run, limiters and register monitors
# watch their values, prepayment accounts charge, the disconnect control's
# customer presses the reconnect button a minute after the meter got ready.
#
# PERSISTENT (in the storage): the driven energy registers and the tariff
# rate registers (written at the end of every update() that changed one, so
# a value is durable before it can be served: an energy register never
# reads lower after a power cut than before it), the clock offset, changed
# LLS secrets, the key store's keys and counters, profile rows and every
# class's own stored state.

import math
import os
import random
import time

from dlms_micro.cosem import base, clock, compact, demand, disconnect, monitor, prepay, profile, push, schedule, tariff
from dlms_micro.link.hdlc import HdlcServer
from dlms_micro.link.wrapper import WrapperServer
from dlms_micro.meter import MECH_LLS
from dlms_micro.meterdef import build as mbuild

MAX_APDU = 1024
STEP = 60.0  # simulated seconds per simulation step, at most
MAX_GAP = 120.0  # host seconds between updates simulated, at most

# Event codes of the standard event log (IDIS numbering)
EVENT_POWER_DOWN = 1
EVENT_POWER_UP = 2
EVENT_CLOCK_OLD = 4  # clock adjusted: logged with the time before
EVENT_CLOCK_NEW = 5  # clock adjusted: logged with the time after
# failed authentications locked an association out (app/auth_guard.py);
# a code of this stack's own (above IDIS's standard event log codes)
EVENT_AUTH_LOCKOUT = 84
# AMR profile status bits (a load-profile row's status)
STATUS_CLOCK_INVALID = 0x02
STATUS_CLOCK_ADJUSTED = 0x20
STATUS_POWER_DOWN = 0x80

# Persistent state (storage keys); the key store keeps its own records
STORE_KEY_ENERGY = "sim.energy.%s"  # a driven energy register: 8 bytes big-endian, by OBIS
STORE_KEY_CLOCK = "sim.clock-offset"  # meter time - host time, s: 8 bytes signed
STORE_KEY_SECRET = "sim.lls-secret.%d"  # a role's LLS password, by client SAP

# Demo-only security material (public values: never use them in a real meter)
DEMO_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")  # Green Book example
DEMO_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")  # Green Book example
DEMO_KEK = bytes.fromhex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")  # made up for the demo
# Demo-only token key (public: never use it in a real meter)
DEMO_TOKEN_KEY = bytes.fromhex("544F4B454E2D44454D4F2D4F4E4C5921")  # "TOKEN-DEMO-ONLY!"
# security policy bits of a definition's security_policy (none, authenticated, encrypted, both)
POLICY_BITS = {0: 0, 1: 0x24, 2: 0x48, 3: 0x6C}
BUTTON_DELAY = 60  # s the simulated customer takes to press the reconnect button
IMAGE_CAPACITY = 1024 * 1024
IMAGE_BLOCK_SIZE = 200


def _ln_text(ln):
    return "%d.%d.%d.%d.%d.%d" % tuple(ln)


class LoadSimulator:
    """A household on one phase with a small PV array: the load follows the
    time of day with random appliance switching; PV follows the sun. Import
    power is what the house draws from the grid, export what it feeds in
    (``import_w``, ``export_w``, ``voltage``, ``current``, ``frequency``).
    seed: the random generator's seed (None: random)."""

    def __init__(self, seed=None, pv_peak_w=1500.0):
        self.rng = random.Random(seed)
        self.pv_peak_w = pv_peak_w
        self.voltage = 230.0  # V
        self.current = 0.0  # A
        self.import_w = 0.0  # W
        self.export_w = 0.0  # W
        self.frequency = 50.0  # Hz
        self._appliances = 0.0  # W of switched appliances

    def _base_load(self, hour):
        # Night ~150 W, morning and evening peaks.
        return 150.0 + 350.0 * math.exp(-((hour - 7.5) ** 2) / 2.0) + 600.0 * math.exp(-((hour - 19.0) ** 2) / 4.0)

    def _pv(self, hour):
        if hour < 6.0 or hour > 20.0:
            return 0.0
        return self.pv_peak_w * math.sin(math.pi * (hour - 6.0) / 14.0) ** 2

    def step(self, local_hour):
        """New instantaneous values for this time of day (hours, float)."""
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
        self.frequency = 50.0 + rng.uniform(-0.05, 0.05)


class MemoryStorage:
    """The storage interface (get, put, delete of bytes by key) in RAM, for
    a meter without a data directory: nothing survives a restart."""

    def __init__(self):
        self._d = {}

    def get(self, key):
        """The stored bytes, or None."""
        return self._d.get(key)

    def put(self, key, value):
        """Keep a copy of value (bytes-like) under key."""
        self._d[key] = bytes(value)

    def delete(self, key):
        """Forget key (nothing when it is not there)."""
        self._d.pop(key, None)


class SimulatedMeter:
    """A simulated meter of any meter definition: its Meter (``.meter``),
    its transports' channels, and the simulation that drives the values the
    definition marks "drive" and ticks every object as its class says.

    compiled: a compiled definition (``meterdef.load``); device: which of
    its logical devices (0: the first). storage: FileStorage (None: RAM
    only). wall_clock: UTC seconds (default time.time). seed: the load
    simulation's seed. log: fn(message) for what the meter reports. keys:
    None (the demo keys, or keys stored by a key_transfer), or a dict
    ``{"ek", "ak", "kek": 16 bytes, "system_title": 8 bytes or None}`` (a
    key file, keyfile.load) that replaces the stored keys; a stored key
    record that fails its checks raises ValueError. accelerate: the clock
    runs N times as fast; history: days backfilled on a first start;
    push_destination: where Push setups send when the definition names
    none; prepaid: Account objects start in prepayment mode; token_key:
    the Token gateway's key (a key file's "token_key" wins).

    Not thread-safe: one thread (the service's loop) calls update(),
    save() and the channels.
    """

    def __init__(self, compiled, storage=None, wall_clock=None, seed=None, log=None, keys=None,
                 random_bytes=os.urandom, accelerate=1, history=0, push_destination=b"", prepaid=False,
                 token_key=DEMO_TOKEN_KEY, device=0):
        if not accelerate >= 1:
            raise ValueError("accelerate must be 1 or more")
        if not history >= 0:
            raise ValueError("history must be 0 days or more")
        self.compiled = compiled
        self.device = device
        self.storage = storage
        self.wall_clock = wall_clock or (lambda: int(time.time()))
        self.accelerate = accelerate
        self._pinned = None  # meter wall time while simulating a step (UTC s)
        self._base = (self.wall_clock(), time.monotonic())  # for accelerate
        self.log = log
        self.sim = LoadSimulator(seed)
        self.logical_address = compiled.DEVICES[device][0]
        self.physical_address = compiled.PHYSICAL_ADDRESS
        from dlms_micro_cpython import image_store

        store = storage if storage is not None else MemoryStorage()
        self._image_states = []

        def image_state(entry, args):
            # args: (block_size, capacity, ...) as dlms_micro.meterdef.state says
            st = image_store.image_state(store, None, args[1] if len(args) > 1 else IMAGE_CAPACITY,
                                         args[0] if args else IMAGE_BLOCK_SIZE)
            self._image_states.append(st)
            return st

        if keys and keys.get("token_key"):
            token_key = keys["token_key"]
        env = mbuild.Env(storage, image_state=image_state, push_destination=push_destination, token_key=token_key,
                         prepaid=prepaid, prefix="" if device == 0 else "ld%d." % self.logical_address)
        m = self.meter = mbuild.build(compiled, self._clock, storage, device, env)
        m.log = log
        m.keys = make_key_store(store, keys, compiled)
        m.random_bytes = random_bytes
        self._make_signing(store, keys, compiled, random_bytes)
        # what the definition drives
        self._driven = {}
        for i, what in compiled.DEVICES[device][4]:
            self._driven.setdefault(what, []).append(m.table[i])
        fw = self._driven.get("firmware-version")
        if fw:
            for st in self._image_states:
                st.sink.on_activate = image_store.version_activator(m, fw[0][base.E_LN], storage)
            image_store.restore_version(m, fw[0][base.E_LN], storage)
        self._clock_entry = clock.meter_clock(m)
        # failed authentications: counted (in the "auth-failures" object
        # when the definition has one), a lock-out after 3 in a row, an event
        from dlms_micro.app.auth_guard import AuthGuard

        af = self._driven.get("auth-failures")
        m.auth_guard = AuthGuard(len(m.roles), state=m.state, total_slot=af[0][base.E_SLOT] if af else -1,
                                 event=self.log_event, event_code=EVENT_AUTH_LOCKOUT)
        self._energies = self._driven.get("simulation:energy-import", []) + \
            self._driven.get("simulation:energy-export", [])
        code = self._driven.get("event-code", [])
        self._event_code = code[0] if code else None
        status = self._driven.get("profile-status", [])
        self._status_entry = status[0] if status else None
        # objects by class, in table order
        by = {}
        for e in m.table:
            by.setdefault(e[base.E_CLASS], []).append(e)
        self._by_class = by
        self.profiles = []  # ticked at their period
        self.event_logs = []  # captured on each event
        for e in by.get(7, ()):
            cols = e[base.E_PARAM][0]
            if e[base.E_PARAM][1] == 0 and self._event_code is not None and \
                    any(c[1] == self._event_code[base.E_LN] for c in cols):
                self.event_logs.append(e)
            else:
                self.profiles.append(e)
        self._status_profiles = set()
        if self._status_entry is not None:
            for e in self.profiles:
                if any(c[1] == self._status_entry[base.E_LN] for c in e[base.E_PARAM][0]):
                    self._status_profiles.add(id(e))
        # the rate registers the register activations fill count energy too
        for e in self._rate_registers():
            if all(x is not e for x in self._energies):
                self._energies.append(e)
        self._persisted = {}  # storage key -> bytes last written (energies)
        self._energy_fault = False  # the last energy write failed (logged once)
        self._dc = by.get(70, [None])[0]
        self.closed = True  # the relay, as Meter.relay last set it
        self._ready_since = None
        m.relay = self._relay
        if self._dc is not None:
            disconnect.restore(m, self._dc)
            disconnect.apply(m, self._dc)
        for a in by.get(111, ()):
            prepay.restore(m, a)
        # step_hooks: fn(utc) called after each simulation step with the
        # meter's time, the wall clock pinned to the step's end (the service
        # starts due pushes there, so a push carries its boundary's time)
        self.step_hooks = []
        # the metering sources' AMR status bits (gateway.py): source_status()
        # -> bits ORed into the interval's status; source_status_taken()
        # once the status profiles took their row
        self.source_status = None
        self.source_status_taken = None
        self._carry = {}  # Wh not yet counted per energy register (registers hold whole units)
        self._last = None  # time.monotonic() of the last update
        self.restore()
        self._clock_offset = m.state[self._clock_entry[base.E_SLOT]] if self._clock_entry else 0
        if history and self.profiles and profile.buffer_of(m, self.profiles[0]).count == 0:
            self.backfill(history)
        elif history and self.log:
            self.log("--history ignored: the profiles already hold rows (the data directory is not new)")
        self.log_event(EVENT_POWER_UP)
        self._status |= STATUS_POWER_DOWN  # this interval had an outage (the restart)
        self.update()

    def entry(self, ln):
        """The table entry with this logical name (6 bytes or
        "a.b.c.d.e.f"), or KeyError."""
        if isinstance(ln, str):
            ln = bytes(int(x) for x in ln.split("."))
        e = self.meter.find_ln(ln, 0)
        if e is None:
            raise KeyError(_ln_text(ln))
        return e

    # ------------------------------------------------------------ time

    def _clock(self):
        # The meter's wall clock (Meter.wall_clock): the host's clock, N
        # times as fast with accelerate=N, or the simulated instant while a
        # simulation step runs.
        if self._pinned is not None:
            return self._pinned
        if self.accelerate == 1:
            return self.wall_clock() + self._advanced
        w, mono = self._base
        return w + self._advanced + int((time.monotonic() - mono) * self.accelerate)

    _advanced = 0  # seconds advance() moved the meter ahead of its wall clock

    def advance(self, seconds):
        """Move the meter's time ``seconds`` ahead and simulate them, as if
        the time had passed: energies count, profiles capture their rows,
        schedules and pushes run (no clock-adjusted event: the clock is not
        set, time passes). The meter's wall clock stays that far ahead.
        Returns the meter's new time (UTC seconds)."""
        seconds = int(seconds)
        if seconds < 0:
            raise ValueError("advance() moves time forward only")
        self.update()  # the simulation up to now
        start = float(self._clock())
        buffers = [profile.buffer_of(self.meter, e) for e in self.profiles + self.event_logs]
        for pb in buffers:
            pb.defer()  # one write per page at the end, not one per row
        try:
            self._simulate(start, start + seconds)
        finally:
            for pb in buffers:
                pb.flush()
            self._advanced += seconds
        return self.now()

    def now(self):
        """The meter's time (UTC seconds), its clock's offset included."""
        if self._clock_entry is None:
            return self._clock()
        return clock.now(self.meter)

    # ------------------------------------------------------------ channels

    def _make_signing(self, store, keys, compiled, random_bytes):
        # suites 1 and 2 (HLS-ECDSA): the meter's signing key pairs, suite 2
        # keys, certificate store (a fleet meter derives its own)
        from dlms_micro_cpython import signing

        m = self.meter
        m.signing = signing.make_signing(store, keys, compiled, random_bytes)
        m.suite2_keys = signing.make_suite2_keys(m.keys, keys, compiled)
        if m.signing:
            from dlms_micro_cpython import certs

            m.cert_store = certs.make_cert_store(m, store, keys, self._clock, random_bytes, self.log)

    def make_link(self, kind):
        """A new link layer for one connection or line: "wrapper",
        "hdlc" (a serial line) or "hdlc-tcp" (HDLC over TCP: no inter-octet
        timeout to speak of), with the HDLC setup object's parameters."""
        if kind == "wrapper":
            return WrapperServer(wports=(self.logical_address,), max_apdu=MAX_APDU)
        if kind not in ("hdlc", "hdlc-tcp"):
            raise ValueError("unknown link kind %r" % (kind,))
        from dlms_micro.cosem import hdlc_setup

        setup = self._by_class.get(23)
        if setup:
            # The IEC HDLC setup object holds the configured parameters; a
            # change takes effect on the next connection.
            _baud, wtx, wrx, mitx, mirx, inter_octet, inactivity, device = hdlc_setup.link_parameters(
                self.meter, setup[0])
        else:
            mitx, wtx, inactivity, inter_octet, _baud = self.compiled.HDLC
            mirx, wrx, device = mitx, wtx, self.physical_address
        if kind == "hdlc-tcp":
            # TCP may deliver one frame in pieces far apart: no inter-octet
            # timeout worth the name there.
            inter_octet = max(inter_octet, 2000)
        return HdlcServer(
            logical=self.logical_address,
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
        """Whether the active keys are the public demo keys."""
        k = self.meter.keys
        return k.ek == DEMO_EK and k.ak == DEMO_AK and k.kek == DEMO_KEK

    def make_channel(self, kind):
        """A dlms_micro.server.Channel (link, association, services) for one
        connection or line of this kind (see make_link)."""
        from dlms_micro.server import Channel

        return Channel(self.meter, self.make_link(kind))

    # ------------------------------------------------------------ simulation

    def update(self):
        """Advance the simulation to now: integrate the power held since
        the last update in steps of at most STEP simulated seconds, drawing
        new instantaneous values and ticking the objects after each. A gap
        longer than MAX_GAP (a suspended host) is skipped, not simulated."""
        mono = time.monotonic()
        if self._last is None:
            self._last = mono
            self._step(self._clock(), 0.0)
            return
        elapsed = min(max(mono - self._last, 0.0), MAX_GAP) * self.accelerate
        self._last = mono
        end = self._clock()
        self._simulate(end - elapsed, end)
        # An energy register never reads lower after a restart than any
        # value served before it: a value this step counted is on disk
        # before control goes back to the loop that serves requests.
        self.save_energies()

    def _simulate(self, start, end):
        # Simulate the meter from wall time start to end (floats, UTC s), in
        # steps that end on every whole minute of the meter's time (its
        # clock's offset included): profiles then capture, and scheduled
        # pushes go, exactly on their period boundaries (every capture period
        # here is a whole number of minutes), whatever the update rhythm or
        # acceleration.
        t = start
        st = self.meter.state
        cs = self._clock_entry[base.E_SLOT] if self._clock_entry is not None else -1
        try:
            while True:
                nxt = min(t + STEP, end)
                off = st[cs] if cs >= 0 else 0
                minute = (int(t) + off) // 60 * 60 + 60 - off  # the next whole minute, wall time
                if t < minute < nxt:
                    nxt = minute
                dt = nxt - t
                if dt <= 0.0:
                    break
                t = nxt
                self._pinned = int(t)
                self._step(self._pinned, dt)
        finally:
            self._pinned = None

    def _add_energy(self, entries, wh_float, key, tariff_too):
        # add wh_float Wh to each register (in its scaled unit), keeping the
        # fraction not yet counted; tariff_too: to the rate register in
        # force as well (a fleet meter's model sets its registers and sends
        # only the tariff its energy this way)
        st = self.meter.state
        for e in entries:
            scaler = e[base.E_PARAM][0] if e[base.E_PARAM] else 0
            units = wh_float / (10.0 ** scaler)
            k = (key, e[base.E_LN])
            carry = self._carry.get(k, 0.0) + units
            whole = int(carry)
            self._carry[k] = carry - whole
            if whole:
                s = e[base.E_SLOT]
                st[s] = (st[s] + whole) & 0xFFFFFFFF
        if tariff_too:
            k = ("tariff", b"")
            carry = self._carry.get(k, 0.0) + wh_float
            whole = int(carry)
            self._carry[k] = carry - whole
            if whole:
                for ra in self._by_class.get(6, ()):
                    tariff.add_energy(self.meter, ra, whole)  # to the rate register in force

    def _set_scaled(self, what, physical):
        for e in self._driven.get(what, ()):
            p = e[base.E_PARAM]
            scaler = p[0] if p else 0
            self.meter.state[e[base.E_SLOT]] = int(round(physical / (10.0 ** scaler)))

    def _step(self, wall, dt):
        # One step ending at meter wall time `wall`: count the energy of the
        # power held for dt seconds, notice a clock adjustment, draw new
        # instantaneous values, tick the objects.
        m = self.meter
        st = m.state
        sim = self.sim
        self._add_energy(self._driven.get("simulation:energy-import", ()), sim.import_w * dt / 3600.0, "i", True)
        self._add_energy(self._driven.get("simulation:energy-export", ()), sim.export_w * dt / 3600.0, "e", False)
        offset = 0
        if self._clock_entry is not None:
            cs = self._clock_entry[base.E_SLOT]
            offset = st[cs]
            if offset != self._clock_offset:  # a client set or shifted the clock
                new = offset
                st[cs] = self._clock_offset
                self.log_event(EVENT_CLOCK_OLD)
                st[cs] = new
                self.log_event(EVENT_CLOCK_NEW)
                self._clock_offset = new
                self._status |= STATUS_CLOCK_ADJUSTED
                # rows and scheduled pushes stay on the boundaries of the new
                # time (profile.resync says why)
                for e in self.profiles:
                    profile.resync(m, e, wall + new)
                for e in self._by_class.get(40, ()):
                    push.resync(m, e, wall + new)
        lt = time.localtime(wall + offset)
        sim.step(lt.tm_hour + lt.tm_min / 60.0 + lt.tm_sec / 3600.0)
        if not self.connected():  # the relay is open: no supply
            sim.import_w = sim.export_w = sim.current = 0.0
        self._set_scaled("simulation:power", sim.import_w)
        self._set_scaled("simulation:voltage", sim.voltage)
        self._set_scaled("simulation:current", sim.current)
        self._set_scaled("simulation:frequency", sim.frequency)
        self._tick(wall + offset)
        for hook in self.step_hooks:
            try:
                hook(wall + offset)
            except Exception as e:  # noqa: BLE001 (a hook's fault must not stop the meter)
                if self.log:
                    self.log("step hook %r failed: %r" % (hook, e))

    def _tick(self, utc):
        m = self.meter
        st = m.state
        by = self._by_class
        for e in by.get(5, ()):
            demand.tick(m, e, utc)
        for e in by.get(20, ()):
            tariff.tick(m, e, utc)
        for e in by.get(22, ()):
            schedule.tick(m, e, utc)
        for e in by.get(71, ()):
            monitor.tick_limiter(m, e, utc)
        for e in by.get(21, ()):
            monitor.tick_monitor(m, e)
        for e in by.get(111, ()):
            prepay.tick(m, e, utc)
        self._customer(utc)
        captured_status = False
        for obj in self.profiles:
            if id(obj) in self._status_profiles:
                st[self._status_entry[base.E_SLOT]] = self._status | (
                    self.source_status() if self.source_status is not None else 0)
                if profile.tick(m, obj, utc):
                    captured_status = True
            else:
                profile.tick(m, obj, utc)
        if captured_status:
            self._status = 0  # the rows took the interval's status
            if self.source_status_taken is not None:
                self.source_status_taken()
            for e in by.get(62, ()):
                if e[base.E_PARAM][2] == compact.CAPTURE_INVOKE:
                    compact.capture(m, e)

    # ------------------------------------------------------------ supply control

    def _relay(self, index, closed):
        self.closed = closed

    def connected(self):
        """Whether the supply is connected (the Disconnect control's state;
        True without one)."""
        if self._dc is None:
            return True
        return disconnect.connected(self.meter, self._dc)

    def _customer(self, utc):
        # the simulated customer presses the reconnect button a minute after
        # the meter became ready for reconnection, unless out of credit
        m = self.meter
        if self._dc is None:
            return
        if disconnect.control_state(m, self._dc) != disconnect.READY_FOR_RECONNECTION:
            self._ready_since = None
            return
        if self._ready_since is None:
            self._ready_since = utc
            return
        out_of_credit = False
        for acc in self._by_class.get(111, ()):
            a = acc[base.E_SLOT]
            if m.state[a + prepay.A_MODE] == prepay.PREPAYMENT_MODE and m.state[a + prepay.A_AVAILABLE] <= 0:
                out_of_credit = True
        if utc - self._ready_since >= BUTTON_DELAY and not out_of_credit:
            disconnect.manual_reconnect(m, self._dc)
            self._ready_since = None

    def backfill(self, days):
        """Simulate `days` days before now (the meter's first start): the
        registers, profiles and events fill as if it had been running."""
        end = float(self._clock())
        buffers = [profile.buffer_of(self.meter, e) for e in self.profiles + self.event_logs]
        for pb in buffers:
            pb.defer()  # one write per page at the end, not one per row
        t0 = time.monotonic()
        try:
            start = end - days * 86400.0
            # the profiles take note of the period the history starts in, so
            # every boundary in it gets its row (DAYS days of 15-minute rows
            # are 96 x DAYS rows)
            off = self.meter.state[self._clock_entry[base.E_SLOT]] if self._clock_entry is not None else 0
            for e in self.profiles:
                profile.tick(self.meter, e, int(start) + off)
            t = start
            day = 86400.0
            while t < end:
                nxt = min(end, t + day)
                self._simulate(t, nxt)
                t = nxt
                if self.log and time.monotonic() - t0 > 2.0 and int((t - start) / day) % 7 == 0 and t < end:
                    self.log("backfilling: %d of %g days" % (int((t - start) / day), days))
        finally:
            for pb in buffers:
                pb.flush()
        if self.log and self.profiles:
            self.log("backfilled %g days: %d rows in %s" % (days, profile.buffer_of(self.meter, self.profiles[0]).count,
                                                           _ln_text(self.profiles[0][base.E_LN])))

    # ------------------------------------------------------------ events

    _status = 0  # AMR profile status of the load-profile interval running

    def log_event(self, code):
        """Record an event in the event logs (clock, event code)."""
        m = self.meter
        if self._event_code is None:
            return
        m.state[self._event_code[base.E_SLOT]] = code
        for e in self.event_logs:
            profile.capture(m, e)

    def power_down(self):
        """At shutdown: the "power down" event, then the persistent
        state."""
        try:
            self.log_event(EVENT_POWER_DOWN)
        finally:
            self.save()

    def profile_buffer(self, ln):
        """The stored rows (cosem.profile.ProfileBuffer) of Profile generic
        ln."""
        return profile.buffer_of(self.meter, self.entry(ln))

    # ------------------------------------------------------------ persistence

    def restore(self):
        """Load the persistent state (energies, clock offset, changed LLS
        passwords) from the storage; done at construction."""
        if self.storage is None:
            return
        st = self.meter.state
        for e in self._energies:
            key = STORE_KEY_ENERGY % _ln_text(e[base.E_LN])
            b = self.storage.get(key)
            if b is not None and len(b) == 8:
                st[e[base.E_SLOT]] = int.from_bytes(b, "big")
                self._persisted[key] = bytes(b)
        b = self.storage.get(STORE_KEY_CLOCK)
        if b is not None and len(b) == 8 and self._clock_entry is not None:
            st[self._clock_entry[base.E_SLOT]] = int.from_bytes(b, "big", signed=True)
        for role in self.meter.roles:
            b = self.storage.get(STORE_KEY_SECRET % role.client_sap)
            if b and role.mechanism == MECH_LLS:
                role.secret = b

    def _rate_registers(self):
        # the registers the Register activation objects assign (class 6)
        m = self.meter
        out = []
        for ra_e in self._by_class.get(6, ()):
            ra = m.state[ra_e[base.E_SLOT]]
            for i in range(ra.nregs):
                r = i * tariff._REG  # a register record: class id (2), logical name (6)
                e = m.find((ra.regs[r] << 8) | ra.regs[r + 1], ra.regs, r + 2)
                if e is not None and e[base.E_SLOT] >= 0 and e[base.E_CLASS] in (3, 4):
                    out.append(e)
        return out

    def save_energies(self):
        """Write the energy registers (driven and tariff rate registers)
        whose value changed since they were last written: one atomic put
        each. update() calls it at its end, so no energy value is served
        before it is durable. A storage that fails (a full disk, no file
        descriptor left) is logged once, not per update, and every update
        tries again; meanwhile a served value may be ahead of the stored one."""
        if self.storage is None:
            return
        st = self.meter.state
        done = self._persisted
        for e in self._energies:
            key = STORE_KEY_ENERGY % _ln_text(e[base.E_LN])
            value = int(st[e[base.E_SLOT]]).to_bytes(8, "big")
            if done.get(key) != value:
                try:
                    self.storage.put(key, value)
                except OSError as err:
                    if not self._energy_fault and self.log:
                        self.log("could not store the energy registers (%s): trying again at every update" % err)
                    self._energy_fault = True
                    return
                done[key] = value
        if self._energy_fault:
            self._energy_fault = False
            if self.log:
                self.log("energy registers stored again")

    def save(self):
        """Write the persistent state that changed (energies, clock offset,
        LLS passwords, receive invocation counters, prepaid credit)."""
        if self.storage is None:
            return
        st = self.meter.state
        self.save_energies()
        if self._clock_entry is not None:
            self._put(STORE_KEY_CLOCK, int(st[self._clock_entry[base.E_SLOT]]).to_bytes(8, "big", signed=True))
        defined = {r[1]: r[3] for r in self.compiled.ROLES}
        for role in self.meter.roles:
            key = STORE_KEY_SECRET % role.client_sap
            if role.mechanism == MECH_LLS and bytes(role.secret) != defined.get(role.client_sap):
                self._put(key, bytes(role.secret))  # changed through Association LN
            elif self.storage.get(key) is not None:
                self.storage.delete(key)
        self.meter.keys.sync_rx()  # receive counters moved since the last store
        for a in self._by_class.get(111, ()):
            prepay.save(self.meter, a)  # the prepaid account's credit

    def _put(self, key, value):
        if self.storage.get(key) != value:  # no disk write for an unchanged value
            self.storage.put(key, value)


def make_key_store(storage, keys=None, compiled=None, system_title=None):
    """The meter's KeyStore: demo keys by default (a stored record, written
    by key_transfer, overrides them); keys (a key file's dict) replace both.
    The system title: the key file's, else system_title, else the
    definition's."""
    from dlms_micro.security import keys as ks

    import dlms_micro_cpython.crypto  # noqa: F401  (AES-GCM by `cryptography`)

    title = keys.get("system_title") if keys else None
    if not title:
        title = system_title or compiled.SYSTEM_TITLE
    # the weakest policy of the ciphered associations: the meter's (one per
    # meter, what security_activate strengthens); each association requires
    # its own on top (Role.policy, issue 17);
    # none ciphered: authenticated and encrypted, for when one is activated
    weakest = min([r[5] for r in compiled.ROLES if r[5]] or [3]) if compiled is not None else 3
    policy = POLICY_BITS[weakest]
    for r in compiled.ROLES if compiled is not None else ():
        if len(r) > 7 and r[5]:  # an association that named fewer bits than its level's pair
            policy &= r[7]
    store = ks.KeyStore(storage, title, ek=DEMO_EK, ak=DEMO_AK, kek=DEMO_KEK, policy=policy)
    if keys:
        # The file's keys become the meter's: stored (a key whose value
        # changes starts its receive counters over) and active at once.
        updates = [(i, keys[n]) for i, n in ((ks.KEY_EK, "ek"), (ks.KEY_AK, "ak"), (ks.KEY_KEK, "kek"))
                   if store.key(i) != keys[n]]
        if updates:
            store.store_keys(updates)
            store.activate_pending()
    return store
