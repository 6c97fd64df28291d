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
# so a head-end with M computes every meter's keys (fleet_keys below).
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
from time import monotonic as _monotonic

from dlms_micro import axdr
from dlms_micro.cosem import base, profile
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
ROW_CACHE_S = 0.5


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


def fleet_keys(master, system_title):
    """Suite 0 keys of the meter with this system title: {"ek", "ak", "kek":
    16 bytes, "system_title"}; see KEYS above."""
    out = {"system_title": bytes(system_title)}
    for name, label in (("ek", b"EK"), ("ak", b"AK"), ("kek", b"KEK")):
        out[name] = hmac.new(master, FLEET_LABEL + bytes(system_title) + label, hashlib.sha256).digest()[:16]
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

    __slots__ = ("seed", "scale", "e0_import", "e0_export", "v0", "ci", "ce", "jitter", "day_var")

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
        which = 0x5A5A if export else 0xA5A5
        g0 = self._g(d, which, total)
        g1 = self._g(d + 1, which, total)
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
                             policy=simulator.POLICY_BITS[strongest or 3])
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
        faults = self.fleet.faults
        if faults is not None and hasattr(self, "generated"):
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
        super().save()
        for e in self.event_logs:
            pb = profile.buffer_of(self.meter, e)
            pb.flush()
            pb.defer()
        if hasattr(self.storage, "flush"):
            self.storage.flush()

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
            whole = int(imp) - int(last)
            if whole:
                from dlms_micro.cosem import tariff

                for ra in fm._by_class.get(6, ()):
                    tariff.add_energy(fm.meter, ra, whole)


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
        self.data = _RowView(self)
        cos = obj[base.E_PARAM][profile.P_CAPTURE_OBJECTS]
        self.clock_col = -1
        for c, co in enumerate(cos):
            if co[profile.C_CLASS] == 8 and co[profile.C_ATTR] == 2:
                self.clock_col = c
                break
        self._row_no = None
        self._row = bytearray(self.width)
        self._rec = None

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
        """Row a's record (a bytearray of width bytes: each field its
        length byte and the A-XDR value), computed once per row read."""
        if a == self._row_no:
            return self._rec
        sim = self.sim
        m = sim.meter
        st = m.state
        t = a * self.period  # meter time
        offset = sim._clock_offset
        saved = list(st)  # the live values come back after the capture
        pinned = sim._pinned
        try:
            sim._pinned = t - offset
            sim._set_from_model(t - offset, offset)
            status = sim._status_entry
            if status is not None:
                st[status[base.E_SLOT]] = sim._fault_status()
            self._capture(m)
        finally:
            st[:] = saved
            sim._pinned = pinned
        self._row_no = a
        self._rec = bytes(self._row)
        return self._rec

    def _capture(self, meter):
        # profile.capture's work into self._row (one record)
        from dlms_micro.cosem import common
        from dlms_micro.errors import EncodeError

        cos = self.obj[base.E_PARAM][profile.P_CAPTURE_OBJECTS]
        ctx = self.ctx
        if ctx is None:
            ctx = self.ctx = base.Context(meter)
        scratch = self.scratch
        d = self._row
        for i, co in enumerate(cos):
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

    def absolute(self, r):
        """The absolute row number held at ring record r now."""
        total = self.total
        first = total - self.count
        return first + (r - first) % self.rows


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
    """Profile generic for fleet meters: a range on the clock of a
    GeneratedProfile is found by bisection (rows are in time order) instead
    of computing every row of the ring; the rest is ProfileGeneric's."""

    def _buffer(self, ctx, obj, pb):
        if ctx.cursor or not isinstance(pb, GeneratedProfile) or ctx.selector != 1:
            return super()._buffer(ctx, obj, pb)
        sel = ctx.selection
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
        n = profile._selected(pb, sel)
        ctx.pos = axdr.enc_array(ctx.buf, ctx.pos, n)
        if n == 0:
            ctx.cursor = 0
            sel.pb = None
            return base.SUCCESS
        ctx.cursor = 1  # the rows from sel.first, as a continuation sends them
        return super()._buffer(ctx, obj, pb)

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


class _RowView:
    # data[(a % rows) * width + off] of a GeneratedProfile; the record read
    # last is kept for ROW_CACHE_S seconds (a GET reads a row byte by byte)
    __slots__ = ("g", "width", "r", "t", "rec")

    def __init__(self, g):
        self.g = g
        self.width = g.width
        self.r = -1
        self.t = 0.0
        self.rec = None

    def __getitem__(self, i):
        r, off = divmod(i, self.width)
        if r == self.r and _monotonic() - self.t < ROW_CACHE_S:
            return self.rec[off]
        g = self.g
        self.rec = g.row(g.absolute(r))
        self.r = r
        self.t = _monotonic()
        return self.rec[off]

    def __setitem__(self, i, v):
        pass

    def __len__(self):
        return self.width * self.g.rows


class MeterStorage:
    """A fleet meter's storage (get, put, delete of bytes by key) in its own
    directory under the fleet's, made on the first write. Security records
    ("sec.*": keys and invocation counters) are written at once (atomically,
    as FileStorage does: counters must survive a power cut); the others are
    kept in RAM until flush() (the fleet saves the meters that changed every
    minute, and at shutdown); records of the computed profiles (ignored:
    their OBIS codes) are not kept at all."""

    DURABLE = ("sec.",)

    def __init__(self, directory, ignored=()):
        self.directory = directory
        self.ignored = tuple(ignored)
        self._fs = None
        # whether it held records before this process (the image sink makes
        # the directory at build: a meter new to it has nothing to read)
        self._exists = os.path.isdir(directory)
        self._dirty = {}  # key -> bytes, or None: deleted

    def _is_ignored(self, key):
        return key.startswith(self.ignored) if self.ignored else False

    def _files(self):
        if self._fs is None:
            from dlms_micro_cpython.storage import FileStorage

            self._fs = FileStorage(self.directory)
        return self._fs

    def get(self, key):
        if key in self._dirty:
            return self._dirty[key]
        if self._is_ignored(key):
            return None
        if self._fs is None and not self._exists:
            return None
        return self._files().get(key)

    def put(self, key, value):
        if self._is_ignored(key):
            return
        if key.startswith(self.DURABLE):
            self._files().put(key, value)
            self._dirty.pop(key, None)
        else:
            self._dirty[key] = bytes(value)

    def delete(self, key):
        if key.startswith(self.DURABLE):
            self._files().delete(key)
            self._dirty.pop(key, None)
        elif self.get(key) is not None:
            self._dirty[key] = None

    def flush(self):
        """Write what put() kept in RAM."""
        dirty, self._dirty = self._dirty, {}
        for key, value in dirty.items():
            if value is None:
                self._files().delete(key)
            else:
                self._files().put(key, value)


class Fleet:
    """count meters of one compiled definition (its first logical device),
    meter i = first_index + 0 .. count - 1. storage: the fleet's
    FileStorage (its directory locked) or None (RAM only); meter i keeps
    its state in the subdirectory "m<i>". master: the key master (default:
    the demo-only DEMO_MASTER). seed: the fleet's seed. faults: a
    fleet_faults.Faults or None. log: fn(message)."""

    def __init__(self, compiled, count, first_index=0, storage=None, master=DEMO_MASTER, seed=0, wall_clock=None,
                 faults=None, log=None):
        if count < 1 or first_index < 0 or first_index + count > max_count():
            raise ValueError("a fleet holds 1..%d meters (physical addresses 16 + i up to 0x3FFD); %d from index %d "
                             "do not fit" % (max_count(), count, first_index))
        self.compiled = compiled
        self.table = compiled.DEVICES[0][2]
        self.count = count
        self.first_index = first_index
        self.storage = storage
        self.master = master
        self.seed = seed
        self.wall_clock = wall_clock
        self.faults = faults
        self.log = log
        self.meters = {}
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
        return fleet_keys(self.master, identity(self.compiled, i).system_title)

    def save(self):
        """Persist every built meter's state."""
        for m in list(self.meters.values()):
            try:
                m.save()
            except Exception as e:  # noqa: BLE001 (one meter's fault stops no other)
                if self.log:
                    self.log("meter %d: could not save its state: %r" % (m.index, e))

    def power_down(self):
        for m in list(self.meters.values()):
            try:
                m.power_down()
            except Exception as e:  # noqa: BLE001
                if self.log:
                    self.log("meter %d: could not save its state: %r" % (m.index, e))
