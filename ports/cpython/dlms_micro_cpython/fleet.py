# A fleet of simulated meters in one process (`dlms-micro fleet`): N
# distinct meters of one meter definition, built when first contacted,
# their constant tables shared, their profiles computed on demand.
#
#   fleet = Fleet(compiled, count=200, storage=FileStorage(dir, lock=True))
#   m = fleet.meter(42)                  # a FleetMeter (a SimulatedMeter)
#   ch = m.make_channel("wrapper")       # one per connection
#   fleet_keys(master, identity(compiled, 42).system_title)
#
# IDENTITY of meter i (i counts from 0; docs/fleet.md):
#   serial number   the definition's serial number + i, as many digits (a
#                   serial that is not a number: serial + "-" + i)
#   logical device  the definition's first 3 characters (the manufacturer id)
#   name            followed by the serial number, 13 digits ("DMI0000012345678")
#   system title    those 3 characters, then the serial as a 5-byte
#                   big-endian integer (a non-numeric serial: its CRC-32)
#   HDLC address    logical: the definition's; physical 16 + i
#   wPort           the definition's logical device (the port tells meters
#                   apart, or the physical address on the shared HDLC port)
# KEYS of meter i (suite 0), from a master key M (a 16..64-byte secret):
#   K(label) = HMAC-SHA256(M, b"dlms-micro fleet" || system title || label)[:16]
#   EK = K(b"EK"), AK = K(b"AK"), KEK = K(b"KEK")
# and where the definition has suite 1 or 2 associations (HLS-ECDSA):
#   signing key of suite s (1: P-256, 2: P-384), private scalar
#     d = 1 + (H mod (n - 1)), H = HMAC-SHA512(M, b"dlms-micro fleet" ||
#     system title || b"SIGN1" or b"SIGN2") as a big-endian integer, n the
#     curve's order; d as curve-size big-endian bytes
#   suite 2 EK, AK (32 bytes) = HMAC-SHA256(M, b"dlms-micro fleet" ||
#     system title || b"EK2" or b"AK2")
# so a head-end with M computes every meter's keys (fleet_keys below); the
# clients' public signing keys are the fleet key file's
# "client_signing_keys", the same for every meter.
#
# THE MODEL (what a meter measures: deterministic, from the fleet's seed and
# the index, the same numbers whenever they are read). Energy registers are
# E(k) at the quarter-hour boundary k (UTC seconds // 900 of the meter's
# time): a household's daily shape scaled per meter, each day's total varied
# per day, and a small per-quarter jitter, all monotonic; between
# boundaries E grows linearly. The load profile rows are E(k), the daily
# billing rows E at 00:00, the registers E(now): one function, so they
# agree. Power, voltage and current follow the quarter's energy with a
# per-minute jitter. Profiles whose rows the simulation would capture
# periodically are not stored: GeneratedProfile computes a row when it is
# read. Event logs are stored as in a single meter.
#
# PER METER STATE (kept, under DATA/m<index>/ when the fleet has a data
# directory): keys and invocation counters, the clock offset, LLS
# passwords, calendars, disconnect state, tokens, event log: whatever the
# single simulated meter keeps. Memory: ~60 KB a meter once built (the
# table, handlers and model tables are shared).

import hashlib
import hmac
import math
import os
import zlib

from dlms_micro import axdr
from dlms_micro.cosem import base, clock, profile
from dlms_micro.meterdef import build as mbuild
from dlms_micro_cpython import simulator
from dlms_micro_cpython.simulator import SimulatedMeter

FLEET_LABEL = b"dlms-micro fleet"
# Demo-only fleet master key (public: never for real meters)
DEMO_MASTER = bytes.fromhex("464C4545542D44454D4F2D4F4E4C5921")  # "FLEET-DEMO-ONLY!"
FIRST_PHYSICAL = 16  # meter i answers HDLC physical address 16 + i
MAX_PHYSICAL = 0x3FFD  # 14-bit addresses; 0x3FFE/0x3FFF: calling/all stations
LDN_OBIS = b"\x00\x00\x2a\x00\x00\xff"
SERIAL_OBIS = b"\x00\x00\x60\x01\x00\xff"
QUARTER = 900
DAY_QUARTERS = 96
WRITERS = 8  # threads writing meters' state side by side
# Received invocation counters are stored durably (an atomic file write:
# 2 fsyncs and a rename) once per RX_RESERVE protected requests of a client
# (dlms_micro/security/keys.py, "Persistence"); a single meter reserves 32.
# A fleet serves many clients on one disk: one write per 256 requests cut the
# CPU of a ciphered GET from ~190 to ~130 us (tools/bench_fleet.py). The
# price, only after a crash of the fleet mid-association (an orderly stop or
# release gives the reservation back): the meter wants the client's
# counters up to 255 above the last it accepted and says so
# (invocation-counter-error with the lowest value it takes).
RX_RESERVE = 256


def max_count(first_index=0):
    """How many meters a fleet starting at first_index can hold (physical
    addresses 16 + i up to 0x3FFD)."""
    return MAX_PHYSICAL - FIRST_PHYSICAL - first_index + 1


class Identity:
    """Meter i's identity: index, name (bytes), serial_number (bytes),
    system_title (8 bytes), physical (HDLC physical address)."""

    __slots__ = ("index", "name", "serial_number", "system_title", "physical")

    def __init__(self, index, name, serial_number, system_title, physical):
        self.index = index
        self.name = name
        self.serial_number = serial_number
        self.system_title = system_title
        self.physical = physical


def identity(compiled, i):
    """Meter i's Identity in a fleet of this compiled definition."""
    base_serial = compiled.SERIAL_NUMBER.decode("latin-1")
    man = compiled.NAME[:3]
    if base_serial.isdigit():
        n = int(base_serial) + i
        serial = str(n).zfill(len(base_serial)).encode()
        name = man + b"%013d" % n
        title = man + (n % (1 << 40)).to_bytes(5, "big")
    else:
        serial = ("%s-%d" % (base_serial, i)).encode("latin-1")
        name = man + serial
        title = man + zlib.crc32(serial).to_bytes(5, "big")
    return Identity(i, name[:32], serial[:32], title, FIRST_PHYSICAL + i)


def _kdf(master, system_title, label, digest=hashlib.sha256):
    return hmac.new(master, FLEET_LABEL + bytes(system_title) + label, digest).digest()


def fleet_keys(master, system_title, suites=()):
    """Keys of the meter with this system title: {"ek", "ak", "kek": 16
    bytes, "system_title"}; with suites (of 1, 2: the definition's, see
    signing.suites_of) also "signing_keys" {suite: private key} and, for
    suite 2, "suite2_ek", "suite2_ak" (32 bytes); see KEYS above."""
    title = bytes(system_title)
    out = {"system_title": title}
    for name, label in (("ek", b"EK"), ("ak", b"AK"), ("kek", b"KEK")):
        out[name] = _kdf(master, title, label)[:16]
    if suites:
        from dlms_micro.security import ecc

        sk = out["signing_keys"] = {}
        for s in suites:
            curve = ecc.for_suite(s)
            h = int.from_bytes(_kdf(master, title, b"SIGN%d" % s, hashlib.sha512), "big")
            sk[s] = (1 + h % (curve.n - 1)).to_bytes(curve.size, "big")
        if 2 in suites:
            out["suite2_ek"] = _kdf(master, title, b"EK2")
            out["suite2_ak"] = _kdf(master, title, b"AK2")
    return out


def meter_seed(seed, i):
    """Meter i's 64-bit seed from the fleet's seed."""
    return int.from_bytes(hashlib.sha256(b"dlms-micro fleet seed %d %d" % (seed, i)).digest()[:8], "big")


def _u(seed, k):
    # a deterministic uniform value in [0, 1) for (seed, k): splitmix64
    z = (seed + (k + 1) * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return ((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0)


def _base_load(hour):
    # W: night ~150 W, morning and evening peaks (the single meter's curve)
    return 150.0 + 350.0 * math.exp(-((hour - 7.5) ** 2) / 2.0) + 600.0 * math.exp(-((hour - 19.0) ** 2) / 4.0)


def _pv(hour, peak):
    if hour < 6.0 or hour > 20.0:
        return 0.0
    return peak * math.sin(math.pi * (hour - 6.0) / 14.0) ** 2


PV_CLASSES = (0.0, 600.0, 1200.0, 1800.0, 2400.0, 3000.0)  # W peak: shared shape tables
_SHAPES = {}


def _shape(pv_peak):
    # (import cumulative Wh by quarter of the day (97 values), export the
    # same): the mean day of a household with this PV peak; shared.
    s = _SHAPES.get(pv_peak)
    if s is None:
        ci = [0.0]
        ce = [0.0]
        for j in range(DAY_QUARTERS):
            h = (j + 0.5) / 4.0
            net = _base_load(h) - _pv(h, pv_peak)
            ci.append(ci[-1] + max(0.0, net) / 4.0)
            ce.append(ce[-1] + max(0.0, -net) / 4.0)
        imin = min(ci[j + 1] - ci[j] for j in range(DAY_QUARTERS))
        s = _SHAPES[pv_peak] = (tuple(ci), tuple(ce), imin)
    return s


class ConsumptionModel:
    """The deterministic measurements of one meter (see THE MODEL):
    energies in Wh at any time, power (W), voltage (V), current (A),
    frequency (Hz). seed: the meter's seed."""

    __slots__ = ("seed", "scale", "e0_import", "e0_export", "v0", "ci", "ce", "jitter", "day_var", "_day")

    def __init__(self, seed):
        self.seed = seed
        self.scale = 0.5 + 1.5 * _u(seed, -1)
        self.e0_import = int(1e6 + 4e7 * _u(seed, -2))
        self.e0_export = int(1e5 * _u(seed, -3)) if _u(seed, -4) < 0.5 else 0
        pv = PV_CLASSES[int(_u(seed, -4) * 2 * len(PV_CLASSES)) % len(PV_CLASSES)] if self.e0_export else 0.0
        self.ci, self.ce, imin = _shape(pv)
        self.v0 = 226.0 + 8.0 * _u(seed, -5)
        self.jitter = 0.4 * imin * self.scale  # Wh, below the smallest quarter: monotonic
        self.day_var = 0.3  # a day's total varies by +-30 %
        self._day = (None, 0.0, 0.0, 0.0, 0.0)  # (day, g(d), g(d+1) import, export): rows come day by day

    def energy(self, t, export=False):
        """Wh registered at meter time t (UTC seconds, float or int)."""
        k, rem = divmod(t, QUARTER)
        a = self._at(int(k), export)
        if rem:
            b = self._at(int(k) + 1, export)
            return a + (b - a) * rem / QUARTER
        return a

    def _at(self, k, export):
        # E(k): whole days at their own totals (a telescoping sum keeps
        # this O(1): day d's extra is g(d+1) - g(d)), then the quarter's
        # share of day d, then the jitter
        d, j = divmod(k, DAY_QUARTERS)
        c = self.ce if export else self.ci
        total = c[DAY_QUARTERS]
        if not total:
            return float(self.e0_export if export else self.e0_import)
        day = self._day
        if day[0] != d:
            ti = self.ci[DAY_QUARTERS]
            te = self.ce[DAY_QUARTERS]
            day = self._day = (d, self._g(d, 0xA5A5, ti), self._g(d + 1, 0xA5A5, ti), self._g(d, 0x5A5A, te),
                               self._g(d + 1, 0x5A5A, te))
        g0, g1 = (day[3], day[4]) if export else (day[1], day[2])
        e = d * total + g0 + c[j] * (total + g1 - g0) / total
        e *= self.scale
        if not export:
            e += self.jitter * _u(self.seed ^ 0x3C3C, k)
            return self.e0_import + e
        return self.e0_export + e

    def _g(self, d, which, total):
        # where day d starts, beyond d mean days: in [0, day_var * total), so
        # day d's total is total + g(d + 1) - g(d), within +-day_var
        return self.day_var * total * _u(self.seed ^ which, d)

    def power(self, t):
        """(import W, export W) at meter time t."""
        k = int(t // QUARTER)
        wi = (self._at(k + 1, False) - self._at(k, False)) * 4.0
        we = (self._at(k + 1, True) - self._at(k, True)) * 4.0
        f = 1.0 + 0.04 * (_u(self.seed ^ 0x7777, int(t // 60)) - 0.5)
        return wi * f, we * f

    def instantaneous(self, t):
        """(import W, export W, voltage V, current A, frequency Hz) at t."""
        wi, we = self.power(t)
        m = int(t // 60)
        v = self.v0 + 3.0 * (_u(self.seed ^ 0x1111, m) - 0.5) - (wi - we) / 1000.0
        v = max(207.0, min(253.0, v))
        return wi, we, v, abs(wi - we) / (v * 0.95), 50.0 + 0.1 * (_u(self.seed ^ 0x2222, m) - 0.5)


class _Definition:
    # One meter's view of the fleet's compiled definition: its identity and
    # its table (the shared one with the logical device name, serial number
    # and SAP assignment entries replaced), the rest the shared constants.
    def __init__(self, compiled, ident, table, inits):
        self._compiled = compiled
        self.NAME = ident.name
        self.SERIAL_NUMBER = ident.serial_number
        self.SYSTEM_TITLE = ident.system_title
        self.PHYSICAL_ADDRESS = ident.physical
        d = compiled.DEVICES[0]
        self.DEVICES = ((d[0], ident.name, table, inits, d[4]),)

    def __getattr__(self, name):
        return getattr(self._compiled, name)


def _with_value(e, value):
    # a constant Data entry (param (tag, lo, hi, value)) with another value
    p = e[base.E_PARAM]
    return e[: base.E_PARAM] + ((p[0], p[1], max(p[2], len(value)), value),) + e[base.E_PARAM + 1:]


def meter_table(table, ident):
    """The shared table with meter ident's name and serial number (a new
    tuple of the same entries but those)."""
    out = []
    for e in table:
        ln = e[base.E_LN]
        p = e[base.E_PARAM]
        if e[base.E_CLASS] == 1 and e[base.E_SLOT] < 0 and isinstance(p, tuple) and len(p) == 4:
            if ln == LDN_OBIS:
                e = _with_value(e, ident.name)
            elif ln == SERIAL_OBIS:
                e = _with_value(e, ident.serial_number)
        elif e[base.E_CLASS] == 17 and isinstance(p, tuple):
            e = e[: base.E_PARAM] + (tuple((sap, ident.name) for sap, _n in p),) + e[base.E_PARAM + 1:]
        out.append(e)
    return tuple(out)


class FleetMeter(SimulatedMeter):
    """Meter ``index`` of a Fleet: a SimulatedMeter whose measurements come
    from its ConsumptionModel (no integration step by step: ``update()``
    sets the registers to the model's values now) and whose periodic
    profiles are GeneratedProfile buffers. ``faults`` (fleet_faults) may
    change what it measures (clock drift, source failure)."""

    def __init__(self, fleet, index, storage):
        self.fleet = fleet
        self.index = index
        self.ident = identity(fleet.compiled, index)
        self.model = ConsumptionModel(meter_seed(fleet.seed, index))
        defn = _Definition(fleet.compiled, self.ident, meter_table(fleet.table, self.ident), fleet.inits)
        log = fleet.meter_log(index)
        super().__init__(defn, storage=storage, wall_clock=fleet.wall_clock, seed=self.model.seed, log=log,
                         push_destination=b"", prepaid=False)
        m = self.meter
        # the derived keys are the key store's defaults (nothing written: a
        # key a head-end transfers is stored and wins, as in any meter)
        from dlms_micro.security import keys as ks

        k = fleet_keys(fleet.master, self.ident.system_title)
        strongest = max([r[5] for r in defn.ROLES] + [0])
        m.keys = ks.KeyStore(storage, self.ident.system_title, ek=k["ek"], ak=k["ak"], kek=k["kek"],
                             policy=simulator.POLICY_BITS[strongest or 3], rx_reserve=RX_RESERVE)
        if getattr(m, "suite2_keys", None) is not None:  # suite 2's keys ride on the key store's counters
            from dlms_micro_cpython import signing

            m.suite2_keys = signing.make_suite2_keys(m.keys, self._signing_keys, defn)
        m.handlers = fleet.handlers  # FleetProfileGeneric reads generated buffers fast
        self.source_status = self._fault_status
        setup = self._by_class.get(23)
        if setup:  # the IEC HDLC setup object's device address
            m.state[setup[0][base.E_SLOT] + 7] = self.ident.physical
        self.generated = []
        for e in self.profiles:
            pb = m.state[e[base.E_SLOT]]
            g = GeneratedProfile(self, e, pb)
            m.state[e[base.E_SLOT]] = g
            self.generated.append(g)
        self.profiles = []  # nothing ticks them: their rows are computed
        self._energies = []  # the model's: nothing to save or restore
        self._hook_faults()
        self.sim = _ModelLoad(self)  # SimulatedMeter._step's load: the model's values
        if self._clock_entry is not None and storage is not None and storage.get(simulator.STORE_KEY_CLOCK) is None:
            # a new meter's clock is a little off, as a fleet's are
            off = int(round(40.0 * _u(self.model.seed, -6) - 20.0))
            m.state[self._clock_entry[base.E_SLOT]] = off
            self._clock_offset = off
        self.last_update = 0.0
        self.update()  # the model's values now, the clock as restored

    def _make_signing(self, store, keys, compiled, random_bytes):
        # SimulatedMeter's, with the meter's derived signing keys (see KEYS
        # above) and the fleet's client signing keys: nothing generated or
        # stored, the same keys after every restart
        from dlms_micro_cpython import signing

        suites = signing.suites_of(compiled)
        if suites:
            fleet = self.fleet
            keys = fleet_keys(fleet.master, self.ident.system_title, suites)
            keys["client_signing_keys"] = fleet.client_signing_keys
            keys["ca_certificate"] = fleet.ca_certificate
        else:
            keys = None
        self._signing_keys = keys
        super()._make_signing(store, keys, compiled, random_bytes)

    def _hook_faults(self):
        # faults that act inside the meter: refused associations (the
        # failed-authentication guard's lock-out answer), image verification
        guard = self.meter.auth_guard
        locked = guard.locked
        index = self.index
        fleet = self.fleet

        def locked_or_refused(role, now):
            faults = fleet.faults
            f = faults.active("refuse", index) if faults is not None else None
            if f is not None:
                faults.note(index, f, "association refused")
                return 60000
            return locked(role, now)

        guard.locked = locked_or_refused
        for st in self._image_states:
            verify = st.sink.verify

            def verify_or_fail(size, _verify=verify):
                faults = fleet.faults
                f = faults.active("image-fail", index) if faults is not None else None
                if f is not None:
                    faults.note(index, f, "image verification failed")
                    return False
                return _verify(size)

            st.sink.verify = verify_or_fail

    def make_link(self, kind):
        link = super().make_link(kind)
        if kind != "wrapper" and not self._by_class.get(23):
            link.physical = self.ident.physical
        return link

    def update(self):
        """Bring the registers to the meter's time now (the model's values)
        and tick the objects (SimulatedMeter._step with the model in place
        of the step-by-step load simulation)."""
        if not hasattr(self, "generated"):
            return  # SimulatedMeter.__init__'s call: FleetMeter's comes once the model is in place
        faults = self.fleet.faults
        if faults is not None:
            faults.drift_clock(self)
        wall = self._clock()
        self._pinned = wall
        try:
            self._step(wall, 0.0)
        finally:
            self._pinned = None

    def _set_from_model(self, wall, offset):
        # the driven registers at meter time wall + offset; returns the
        # instantaneous (import W, export W, V, A, Hz)
        t = wall + offset
        mod = self.model
        st = self.meter.state
        failed = self.fleet.faults.source_failed(self.index) if self.fleet.faults else False
        for what, export in (("simulation:energy-import", False), ("simulation:energy-export", True)):
            for e in self._driven.get(what, ()):
                p = e[base.E_PARAM]
                scaler = p[0] if p else 0
                st[e[base.E_SLOT]] = int(mod.energy(t, export) / (10.0 ** scaler)) & 0xFFFFFFFF
        wi, we, v, a, f = mod.instantaneous(t)
        if failed or not self.connected():
            wi = we = a = 0.0
        if failed:
            v = 0.0
        self._set_scaled("simulation:power", wi)
        self._set_scaled("simulation:voltage", v)
        self._set_scaled("simulation:current", a)
        self._set_scaled("simulation:frequency", f)
        return wi, we, v, a, f

    def save(self):
        """The single meter's persistent state, and the event log rows
        captured since the last save."""
        self.save_records()
        if hasattr(self.storage, "flush"):
            self.storage.flush()

    def save_records(self):
        """save() without the disk write: the records are in the storage's
        RAM (MeterStorage.snapshot() takes them)."""
        super().save()
        for e in self.event_logs:
            pb = profile.buffer_of(self.meter, e)
            pb.flush()
            pb.defer()

    def _fault_status(self):
        # AMR status bits a source failure fault sets (0x04: data not valid)
        faults = self.fleet.faults
        return 0x04 if faults is not None and faults.source_failed(self.index) else 0

    def backfill(self, days):
        pass  # the generated profiles hold the past already


class _ModelLoad:
    # What SimulatedMeter._step takes from its LoadSimulator, from the
    # model: step() sets the registers to the model's values at the step's
    # meter time and sends the energy since the last step to the rate
    # register in force.
    def __init__(self, fm):
        self.fm = fm
        self.import_w = self.export_w = self.current = 0.0
        self.voltage = 230.0
        self.frequency = 50.0
        self.last_import = None

    def step(self, local_hour):
        fm = self.fm
        t = fm._pinned + fm._clock_offset
        self.import_w, self.export_w, self.voltage, self.current, self.frequency = fm._set_from_model(
            fm._pinned, fm._clock_offset)
        imp = fm.model.energy(t)
        last = self.last_import
        self.last_import = imp
        if last is not None and imp > last:
            fm._add_energy((), imp - last, "model", True)  # to the tariff: the simulator's carry


# how a computed profile's column is made (GeneratedProfile._make_plan)
_COL_LIVE = 0  # the object's value now (not driven by the model)
_COL_CLOCK = 1
_COL_STATUS = 2
_COL_IMPORT = 3
_COL_EXPORT = 4
_COL_POWER = 5  # 5..9: instantaneous (import W, export W, V, A, Hz)
_SIGNED_TAGS = (5, 15, 16, 20)  # double-long, integer, long, long64
_DRIVEN_COLUMNS = {
    "profile-status": _COL_STATUS,
    "simulation:energy-import": _COL_IMPORT,
    "simulation:energy-export": _COL_EXPORT,
    "simulation:power": _COL_POWER,
    "simulation:voltage": _COL_POWER + 2,
    "simulation:current": _COL_POWER + 3,
    "simulation:frequency": _COL_POWER + 4,
}


class GeneratedProfile:
    """A ProfileBuffer-compatible buffer of a Profile generic whose rows are
    computed from the meter's model when read (cosem/profile.py reads
    ``data[(a % rows) * width + offs[c]]``: ``data`` computes row a). Row a
    (absolute) is the capture at meter time a * period. total follows the
    meter's clock; reset() and set_period() are kept (in RAM)."""

    def __init__(self, sim, obj, pb):
        self.sim = sim
        self.obj = obj
        self.offs = pb.offs
        self.width = pb.width
        self.rows = pb.rows
        self.period = pb.period or QUARTER
        self.scratch = pb.scratch
        self.ctx = None
        self.period_no = None
        self.epoch = 0
        self.storage = None
        self.key = None
        self.deferred = False
        self.save_errors = 0
        self.page_rows = pb.page_rows
        self.npages = pb.npages
        self.reset_at = 0  # rows before it are gone (method reset)
        # the ring the encoder reads: the fleet's, shared by every meter's
        # profile of this shape; fill() puts rows into it
        self.data = sim.fleet.ring(self.rows, self.width)
        cos = obj[base.E_PARAM][profile.P_CAPTURE_OBJECTS]
        self.clock_col = -1
        for c, co in enumerate(cos):
            if co[profile.C_CLASS] == 8 and co[profile.C_ATTR] == 2:
                self.clock_col = c
                break
        self._row_no = None
        self._row = bytearray(self.width)
        self._rec = None
        self._plan = None
        self._clock_day = None
        self._min_row = None

    # the ProfileBuffer interface

    @property
    def total(self):
        """Rows captured up to the meter's time now."""
        if not self.period:
            return self.reset_at
        return self.sim.now() // self.period + 1

    @total.setter
    def total(self, v):
        pass  # a capture (ACTION capture) takes no row: rows are the model's

    @property
    def count(self):
        t = self.total
        n = t - self.reset_at
        if n > self.rows:
            n = self.rows
        return n if n > 0 else 0

    @count.setter
    def count(self, v):
        pass

    def save_row(self, a):
        pass

    def defer(self):
        pass

    def flush(self):
        pass

    def load(self):
        pass

    def reset(self):
        self.reset_at = self.total
        self.epoch += 1
        return True

    def set_period(self, period):
        if period != self.period:
            self.period = period
            self.reset_at = self.total
            self.epoch += 1
        return True

    # rows

    def row(self, a):
        """Row a's record (bytes, width long: each field its length byte and
        the A-XDR value) as the capture at meter time a * period would have
        written it: the clock and the values the model drives computed for
        that time, other columns their live values."""
        if a == self._row_no:
            return self._rec
        if self._plan is None:
            self._plan = self._make_plan()
        sim = self.sim
        m = sim.meter
        t = a * self.period  # meter time
        mod = sim.model
        d = self._row
        offs = self.offs
        inst = None
        for c, kind, arg, tag, n in self._plan:
            f = offs[c]
            if kind == _COL_CLOCK:
                self._clock_field(m, t, d, f, arg)
                continue
            if kind == _COL_LIVE:
                self._capture_column(m, c)
                continue
            if kind == _COL_STATUS:
                v = sim._fault_status()
            elif kind == _COL_IMPORT or kind == _COL_EXPORT:
                v = int(mod.energy(t, kind == _COL_EXPORT) / arg) & 0xFFFFFFFF
            else:
                if inst is None:
                    inst = mod.instantaneous(t)
                    if sim.fleet.faults is not None and sim.fleet.faults.source_failed(sim.index):
                        inst = (0.0, 0.0, 0.0, 0.0, inst[4])
                v = int(round(inst[kind - _COL_POWER] / arg))
            try:
                d[f + 2:f + 1 + n] = v.to_bytes(n - 1, "big", signed=tag in _SIGNED_TAGS)
                d[f + 1] = tag
                d[f] = n
            except OverflowError:  # out of the type's range: null, as a capture would write
                d[f] = 0
        self._row_no = a
        self._rec = bytes(d)
        return self._rec

    def _clock_field(self, m, t, d, f, e):
        # the Clock's value at meter time t, as a capture writes it; on UTC
        # time without daylight saving, within a day only the time of day
        # changes (the field is this column's alone in the record)
        day, sod = divmod(t, 86400)
        st = m.state
        s = e[base.E_SLOT]
        if self._clock_day != day or st[s + clock.S_DST_ENABLED] or st[s + clock.S_TIME_ZONE]:
            d[f] = 14
            clock.enc_local_time(m, t, d, f + 1, e)
            self._clock_day = day
            return
        d[f + 8] = sod // 3600
        d[f + 9] = (sod // 60) % 60
        d[f + 10] = sod % 60

    def _make_plan(self):
        # how each column is computed: (column, kind, argument, tag, field length)
        sim = self.sim
        m = sim.meter
        what_of = {}
        for what, entries in sim._driven.items():
            for e in entries:
                what_of[bytes(e[base.E_LN])] = (what, e)
        self._capture_all(m)  # a probe: each column's type as a capture writes it
        d = self._row
        plan = []
        cos = self.obj[base.E_PARAM][profile.P_CAPTURE_OBJECTS]
        for c, co in enumerate(cos):
            f = self.offs[c]
            n = d[f]
            tag = d[f + 1] if n else 0
            kind = _COL_LIVE
            arg = None
            if co[profile.C_CLASS] == 8 and co[profile.C_ATTR] == 2 and n == 14:
                kind = _COL_CLOCK
                arg = sim._clock_entry
            elif co[profile.C_ATTR] == 2 and n and 0 < tag < len(profile._INT_SIZE) and profile._INT_SIZE[tag]:
                what, e = what_of.get(bytes(co[profile.C_LN]), (None, None))
                k = _DRIVEN_COLUMNS.get(what)
                if k is not None:
                    kind = k
                    p = e[base.E_PARAM]
                    arg = 10.0 ** (p[0] if p and k != _COL_STATUS else 0)
            plan.append((c, kind, arg, tag, n))
        return tuple(plan)

    def _capture_all(self, meter):
        for c in range(len(self.offs)):
            self._capture_column(meter, c)

    def _capture_column(self, meter, i):
        # profile.capture's work for column i into self._row (live value)
        from dlms_micro.cosem import common
        from dlms_micro.errors import EncodeError

        co = self.obj[base.E_PARAM][profile.P_CAPTURE_OBJECTS][i]
        ctx = self.ctx
        if ctx is None:
            ctx = self.ctx = base.Context(meter)
        scratch = self.scratch
        d = self._row
        room = co[profile.C_WIDTH] - 1
        f = self.offs[i]
        n = 0
        e = meter.find(co[profile.C_CLASS], co[profile.C_LN], 0)
        if e is not None and co[profile.C_DATA_INDEX] == 0:
            try:
                res = common.get_attribute(ctx, e, co[profile.C_ATTR], scratch, 0, room)
                if res == base.SUCCESS and ctx.cursor == 0 and ctx.pos <= room:
                    n = ctx.pos
            except EncodeError:
                n = 0
        d[f] = n
        d[f + 1: f + 1 + n] = scratch[:n]

    def fill(self, a0, a1):
        """Put rows a0 .. a1 - 1 at their places in the ring."""
        d = self.data
        w = self.width
        rows = self.rows
        for a in range(a0, a1):
            r = (a % rows) * w
            d[r:r + w] = self.row(a)

    def min_row_size(self):
        """The fewest bytes a row of this profile takes encoded."""
        if self._min_row is None:
            if self._plan is None:
                self._plan = self._make_plan()
            self._min_row = 2 + sum(1 if kind == _COL_LIVE else n for _c, kind, _a, _t, n in self._plan)
        return self._min_row


def _prefix_bound(b):
    # Whether date-time bound b (12 bytes) leaves unspecified only a tail of
    # (year, month, day, hour, minute, second, hundredths): then comparing
    # rows with it (profile._dt_cmp) is monotonic in time.
    fields = (((b[0] << 8) | b[1]) == 0xFFFF, b[2] == 0xFF or b[2] > 12, b[3] == 0xFF or b[3] > 31,
              b[5] == 0xFF, b[6] == 0xFF, b[7] == 0xFF, b[8] == 0xFF)
    seen = False
    for wild in fields:
        if wild:
            seen = True
        elif seen:
            return False
    return True


class FleetProfileGeneric(profile.ProfileGeneric):
    """Profile generic for fleet meters. A GeneratedProfile's rows are
    computed into the fleet's shared ring (one bytearray per profile shape,
    the event loop serves one block at a time) just before each block is
    encoded: the rows the block can hold, at most. A range on the clock is
    found by bisection (rows are in time order) instead of computing every
    row of the ring. Encoding is ProfileGeneric's."""

    def _buffer(self, ctx, obj, pb):
        if not isinstance(pb, GeneratedProfile):
            return super()._buffer(ctx, obj, pb)
        sel = ctx.selection
        if ctx.cursor:
            if sel is not None and sel.pb is pb:
                self._fill(ctx, pb, sel, sel.first + ctx.cursor - 1)
            return super()._buffer(ctx, obj, pb)
        ncols = len(pb.offs)
        if sel is None or len(sel.order) < ncols:
            sel = ctx.selection = profile.Selection(ncols if ncols > 8 else 8)
        res = profile._select(ctx, obj, pb, sel)
        if res:
            sel.pb = None
            return res
        if (sel.rcol >= 0 and sel.rcol == pb.clock_col and sel.kind == profile._B_DT
                and _prefix_bound(sel.lo_dt) and _prefix_bound(sel.hi_dt)):
            sel.first = self._bisect(pb, sel, sel.first, sel.end, sel.lo_dt, 0)
            sel.end = self._bisect(pb, sel, sel.first, sel.end, sel.hi_dt, 1)
            sel.rcol = -1
        if sel.rcol >= 0:
            pb.fill(sel.first, sel.end)  # a range matched row by row: every row
        n = profile._selected(pb, sel)
        ctx.pos = axdr.enc_array(ctx.buf, ctx.pos, n)
        if n == 0:
            ctx.cursor = 0
            sel.pb = None
            return base.SUCCESS
        ctx.cursor = 1  # the rows from sel.first, as a continuation sends them
        if sel.rcol < 0:
            self._fill(ctx, pb, sel, sel.first)
        return super()._buffer(ctx, obj, pb)

    @staticmethod
    def _fill(ctx, pb, sel, a):
        # rows a.. into the ring: as many as the room left could hold
        if sel.rcol >= 0:
            pb.fill(a, sel.end)  # matched row by row: every row left (others may have used the ring since)
            return
        limit = ctx.limit if ctx.limit < len(ctx.buf) else len(ctx.buf)
        k = (limit - ctx.pos) // pb.min_row_size() + 1
        end = a + k if a + k < sel.end else sel.end
        pb.fill(a, end)

    @staticmethod
    def _bisect(pb, sel, lo, hi, bound, after):
        # the first row in lo..hi whose clock is >= bound (after=0) or >
        # bound (after=1)
        off = pb.offs[pb.clock_col]
        while lo < hi:
            mid = (lo + hi) // 2
            rec = pb.row(mid)
            n = rec[off]
            p = profile._dt_at(rec, off + 1, n) if n else -1
            c = profile._dt_cmp(rec, p, bound, 0) if p >= 0 else -1
            if c > 0 or (c == 0 and not after):
                hi = mid
            else:
                lo = mid + 1
        return lo


class MeterStorage:
    """A fleet meter's storage (get, put, delete of bytes by key) in its own
    directory under the fleet's, made on the first write. Security records
    ("sec.*": keys and invocation counters) are files written at once
    (atomically, as FileStorage does: counters must survive a power cut);
    the others are kept in RAM and written together, as one record
    STATE_KEY, by snapshot() + write() (the fleet saves the meters that
    changed every minute, off its event loop, and at shutdown). Records of
    the computed profiles (ignored: their OBIS codes) are not kept."""

    DURABLE = ("sec.",)
    STATE_KEY = "fleet.state"

    def __init__(self, directory, ignored=()):
        self.directory = directory
        self.ignored = tuple(ignored)
        self._fs = None
        # whether it held records before this process (the image sink makes
        # the directory at build: a meter new to it has nothing to read)
        self._exists = os.path.isdir(directory)
        self._records = None  # key -> bytes, loaded on first use
        self.changed = False

    def _files(self):
        if self._fs is None:
            from dlms_micro_cpython.storage import FileStorage

            self._fs = FileStorage(self.directory)
        return self._fs

    def _load(self):
        recs = self._records = {}
        if not self._exists:
            return recs
        blob = self._files().get(self.STATE_KEY)
        p = 0
        try:
            while blob and p < len(blob):
                n = blob[p]
                key = blob[p + 1:p + 1 + n].decode("ascii")
                p += 1 + n
                m = int.from_bytes(blob[p:p + 4], "big")
                if p + 4 + m > len(blob):
                    raise ValueError("truncated")
                recs[key] = blob[p + 4:p + 4 + m]
                p += 4 + m
        except (ValueError, UnicodeError):
            recs.clear()  # FileStorage writes atomically: only a foreign file gets here
        return recs

    def get(self, key):
        if key.startswith(self.DURABLE):
            if self._fs is None and not self._exists:
                return None
            return self._files().get(key)
        if self.ignored and key.startswith(self.ignored):
            return None
        recs = self._records
        if recs is None:
            recs = self._load()
        return recs.get(key)

    def put(self, key, value):
        if key.startswith(self.DURABLE):
            self._files().put(key, value)
            return
        if self.ignored and key.startswith(self.ignored):
            return
        recs = self._records
        if recs is None:
            recs = self._load()
        recs[key] = bytes(value)
        self.changed = True

    def delete(self, key):
        if key.startswith(self.DURABLE):
            self._files().delete(key)
            return
        recs = self._records
        if recs is None:
            recs = self._load()
        if recs.pop(key, None) is not None:
            self.changed = True

    def snapshot(self):
        """The records changed since the last snapshot as one blob (bytes),
        or None when nothing changed."""
        if not self.changed:
            return None
        self.changed = False
        out = bytearray()
        for key, value in self._records.items():
            k = key.encode("ascii")
            out.append(len(k))
            out += k
            out += len(value).to_bytes(4, "big")
            out += value
        return bytes(out)

    def write(self, blob):
        """Store a snapshot (any thread; one write per meter at a time)."""
        if blob is not None:
            self._files().put(self.STATE_KEY, blob)

    def flush(self):
        self.write(self.snapshot())


class Fleet:
    """count meters of one compiled definition (its first logical device),
    meter i = first_index + 0 .. count - 1. storage: the fleet's
    FileStorage (its directory locked) or None (RAM only); meter i keeps
    its state in the subdirectory "m<i>". master: the key master (default:
    the demo-only DEMO_MASTER). seed: the fleet's seed. faults: a
    fleet_faults.Faults or None. log: fn(message). client_signing_keys
    ({client system title: x || y}) and ca_certificate: for suite 1/2
    associations, as in a meter's key file (keyfile.py), every meter's."""

    def __init__(self, compiled, count, first_index=0, storage=None, master=DEMO_MASTER, seed=0, wall_clock=None,
                 faults=None, log=None, client_signing_keys=None, ca_certificate=None):
        if count < 1 or first_index < 0 or first_index + count > max_count():
            raise ValueError("a fleet holds 1..%d meters (physical addresses 16 + i up to 0x3FFD); %d from index %d "
                             "do not fit" % (max_count(), count, first_index))
        self.compiled = compiled
        self.table = compiled.DEVICES[0][2]
        self.count = count
        self.first_index = first_index
        self.storage = storage
        self.master = master
        self.client_signing_keys = dict(client_signing_keys or {})
        self.ca_certificate = ca_certificate
        self.seed = seed
        self.wall_clock = wall_clock
        self.faults = faults
        self.log = log
        self.meters = {}
        self._rings = {}
        hs = list(mbuild.handlers(compiled))
        for k, h in enumerate(hs):
            if type(h) is profile.ProfileGeneric:
                hs[k] = FleetProfileGeneric()
        self.handlers = tuple(hs)
        # the store keys of the profiles a fleet meter computes (those the
        # simulation would capture periodically)
        computed = [i for i, e in enumerate(self.table)
                    if e[base.E_CLASS] == 7 and e[base.E_PARAM][profile.P_CAPTURE_PERIOD]]
        self.computed = tuple(profile.obis_text(self.table[i][base.E_LN]) for i in computed)
        # ... built without storage (persist 0): nothing to load or write
        self.inits = tuple((i, (0,) + tuple(args[1:]) if i in computed else args)
                           for i, args in compiled.DEVICES[0][3])

    def ring(self, rows, width):
        """The shared ring of computed profile rows of this shape."""
        r = self._rings.get((rows, width))
        if r is None:
            r = self._rings[(rows, width)] = bytearray(rows * width)
        return r

    def __contains__(self, i):
        return self.first_index <= i < self.first_index + self.count

    def indices(self):
        return range(self.first_index, self.first_index + self.count)

    def meter(self, i):
        """Meter i (built on first use)."""
        m = self.meters.get(i)
        if m is None:
            if i not in self:
                raise KeyError("meter %d is not in this fleet" % i)
            if self.storage is not None:
                store = MeterStorage(os.path.join(self.storage.directory, "m%d" % i), self.computed)
            else:
                store = simulator.MemoryStorage()
            m = self.meters[i] = FleetMeter(self, i, store)
        return m

    def meter_log(self, i):
        log = self.log
        if log is None:
            return None

        def meter_log(msg, _i=i):
            log("meter %d: %s" % (_i, msg))

        return meter_log

    def identity(self, i):
        return identity(self.compiled, i)

    def keys(self, i):
        from dlms_micro_cpython import signing

        return fleet_keys(self.master, identity(self.compiled, i).system_title, signing.suites_of(self.compiled))

    def snapshots(self, indices):
        """(meter, snapshot) of these built meters, their state saved to RAM
        (the event loop's part of a save; write_all() does the rest)."""
        out = []
        for i in indices:
            m = self.meters.get(i)
            if m is None:
                continue
            try:
                m.save_records()
                if hasattr(m.storage, "snapshot"):
                    out.append((m, m.storage.snapshot()))
            except Exception as e:  # noqa: BLE001 (one meter's fault stops no other)
                if self.log:
                    self.log("meter %d: could not save its state: %r" % (i, e))
        return out

    def save(self):
        """Persist every built meter's state."""
        self.write_all(self.snapshots(list(self.meters)))

    def power_down(self):
        """Every built meter's "power down" event, then its state saved
        (the disk writes side by side)."""
        blobs = []
        for m in list(self.meters.values()):
            try:
                m.log_event(simulator.EVENT_POWER_DOWN)
                m.save_records()
                if hasattr(m.storage, "snapshot"):
                    blobs.append((m, m.storage.snapshot()))
            except Exception as e:  # noqa: BLE001
                if self.log:
                    self.log("meter %d: could not save its state: %r" % (m.index, e))
        self.write_all(blobs)

    def write_all(self, blobs):
        """Write (meter, snapshot) pairs, WRITERS at a time (any thread)."""
        from concurrent.futures import ThreadPoolExecutor

        def write(pair):
            m, blob = pair
            try:
                m.storage.write(blob)
            except OSError as e:
                if self.log:
                    self.log("meter %d: could not save its state: %s" % (m.index, e))

        todo = [p for p in blobs if p[1] is not None]
        if todo:
            with ThreadPoolExecutor(WRITERS) as ex:
                list(ex.map(write, todo))
