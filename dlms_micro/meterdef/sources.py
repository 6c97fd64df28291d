# The sources of a compiled meter definition and their bindings to the
# objects: what a port needs to read the meter beside it and serve it.
#
#   from dlms_micro.meterdef import build, sources
#   meters = build.build_all(defn, wall_clock, storage)
#   srcs = sources.make(defn, storage)        # sans-IO sources (source/)
#   bind = sources.Bindings(defn, meters, srcs)
#   ... the port drives srcs[i] over its UART / GPIO (feed, next_event) ...
#   bind.update(now_ms, utc)                   # after a source's EV_DONE, and
#                                              # once a second: values to state
#
# defn.SOURCES (see dlms_micro_cpython/meterdef/sources.py for the layout)
# names each source; defn.DEVICES[d][4] (DRIVES) holds "source:NAME.FIELD"
# for every bound object. sources.info(defn, i) gives the port the line
# settings of source i: (name, kind, device, baud, parity).
#
# WHAT A BOUND OBJECT SERVES (never an invented value):
# - a field never read: null-data (the state slot holds None), in a GET
#   and in a profile row alike (a row cannot carry a refusal);
# - after a failed poll: the last good value (the source keeps it), and
#   an extended register's status (attribute 4) says STALE (1), its
#   capture_time (5) the time of that value; a field whose unit is not the
#   register's, or whose value does not fit the type, is not served either
#   (null-data until a good one comes) and counted in `refused`;
# - the value converted to the object's scaler: v * 10**(field scaler -
#   object scaler), truncated toward zero when the object is coarser.
# "source:NAME.status" (a data object without type; a Modbus meter of a
# bus: "source:NAME.DEVICE.status") holds the structure
#   {state enum (0 ok, 1 stale, 2 no value), last error enum (E_* of
#   dlms_micro.source), good polls, failed polls, timeouts, other errors,
#   age of the last good poll in s (0xFFFFFFFF: never)}.
# FAILURE AND RECOVERY of a source (for a Modbus bus: of each meter on it)
# logs the source's event code (event_failed / event_recovered) in the event
# logs (profiles with capture_period 0 capturing the object driven by
# "event-code") of the logical devices that bind it, and of the first one
# (the module's own); while it fails, profile_status(d) has the AMR status
# bit "data not valid" (0x04) for the interval's row.
#
# Allocation: update() allocates nothing for integer values below 2**30
# (no tuples, no bound methods kept per call); text fields (readout times,
# dates) allocate a bytes object when their text changes.

from dlms_micro.cosem import base
from dlms_micro.source import E_NONE, NO_VALUE, OK, STALE
from dlms_micro.ticks import ticks_diff

STATUS_DATA_NOT_VALID = 0x04  # AMR profile status bit (DLMS UA 1000-1 / IDIS)

# binding kinds
_K_VALUE = 0  # data / register value
_K_EXT = 1  # extended register: value, status, capture_time
_K_STATUS = 2  # the source's status structure
_K_TEXT = 3  # a data object of a string type: the field's text

_NEVER = 0xFFFFFFFF
_STATUS_LEN = 31  # 02 07, 2 enums (2 B), 5 double-long-unsigned (5 B)

_STRINGS = (9, 10, 12)  # octet-, visible-, utf8-string


def _fits(tag, v):
    # whether v is a value of the integer A-XDR type tag (other tags: True);
    # shifts, not wide constants (a frozen wide int is a heap big int)
    if tag == 17 or tag == 22:  # unsigned, enum
        return 0 <= v <= 255
    if tag == 18:  # long-unsigned
        return 0 <= v <= 65535
    if tag == 15:  # integer
        return -128 <= v <= 127
    if tag == 16:  # long
        return -32768 <= v <= 32767
    if tag == 6:  # double-long-unsigned
        return v >= 0 and (v >> 16) <= 0xFFFF
    if tag == 5:  # double-long
        return -0x8000 <= (v >> 16) <= 0x7FFF
    if tag == 21:  # long64-unsigned
        return v >= 0 and (v >> 48) <= 0xFFFF
    if tag == 20:  # long64
        return -0x8000 <= (v >> 48) <= 0x7FFF
    return True


def info(defn, i):
    s = defn.SOURCES[i]
    return s[0], s[1], s[2], s[3], s[4]


def make(defn, storage=None, index=None):
    # The sans-IO source objects of defn.SOURCES, in order (index: only that
    # one, as a list of one). storage: where an S0 count persists (key
    # "s0.NAME").
    out = []
    srcs = getattr(defn, "SOURCES", ())
    for i in range(len(srcs)):
        if index is not None and i != index:
            continue
        out.append(make_one(srcs[i], storage))
    return out


def make_one(s, storage=None):
    name, kind, _dev, baud, _par, interval, _evf, _evr, a = s
    if kind == "modbus-rtu":
        from dlms_micro.source.modbus_rtu import ModbusMaster

        devices = []
        for slave, dname, max_regs, max_gap, rows in a[3]:
            regs = []
            for rn, fn, addr, typ, order, scaler, unit in rows:
                regs.append({"name": rn, "function": fn, "address": addr, "type": typ, "word_order": order,
                             "scaler": scaler, "unit": unit})
            dv = {"slave": slave, "map": {"registers": regs, "max_registers": max_regs, "max_gap": max_gap}}
            if dname:
                dv["name"] = dname
            devices.append(dv)
        return ModbusMaster(devices, baud=_int(baud), interval=_int(interval), timeout=a[0], retries=a[1],
                            frame_gap=a[2])
    if kind == "iec21-readout":
        from dlms_micro.source.iec21_readout import Readout

        return Readout(list(a[0]), address=a[1], max_baud=_int(a[2]), initial_baud=_int(baud),
                       interval=_int(interval), retries=a[3], medium=a[4])
    if kind == "s0":
        from dlms_micro.source.s0 import S0Input

        return S0Input(constant=_int(a[0]), min_pulse=a[1], direction=a[2], name=a[3], storage=storage,
                       key="s0." + name, persist_every=_int(a[4]), persist_ms=_int(a[5]))
    raise ValueError("unknown source kind %r" % (kind,))


def _int(v):
    # a frozen constant above 0x1FFF is a big int: a small one instead
    if -0x2000 <= v <= 0x1FFF:
        return v
    return int.from_bytes(v.to_bytes(8, "big"), "big") if v > 0 else v


class Bindings:
    def __init__(self, defn, meters, srcs, log=None):
        # meters: the Meters of defn.DEVICES, in order; srcs: make(defn).
        self.defn = defn
        self.meters = meters
        self.srcs = srcs
        self.log = log
        self.refused = 0  # values not served: wrong unit, out of the type's range
        names = [s[0] for s in defn.SOURCES]
        # channels: a source, or one Modbus meter of a bus: (source, device)
        ch_src = []
        ch_dev = []
        for i in range(len(srcs)):
            s = srcs[i]
            nd = getattr(s, "ndevices", 0)
            if nd:
                for d in range(nd):
                    ch_src.append(i)
                    ch_dev.append(d)
            else:
                ch_src.append(i)
                ch_dev.append(-1)
        nch = len(ch_src)
        self._ch_src = bytearray(ch_src)
        self._ch_dev = [x for x in ch_dev]
        self._ch_failing = bytearray(nch)
        self._ch_good_ms = [0] * nch
        self._ch_good_utc = [-1] * nch
        # per meter: the channels it binds (bit set in a bytearray row)
        nm = len(meters)
        self._uses = bytearray(nm * nch)
        b_meter, b_slot, b_src, b_field, b_kind, b_scaler, b_unit, b_tag, b_ch = ([] for _ in range(9))
        for m in range(nm):
            table = defn.DEVICES[m][2]
            for ti, what in defn.DEVICES[m][4]:
                if not what.startswith("source:"):
                    continue
                rest = what[7:]
                p = rest.find(".")
                si = names.index(rest[:p])
                field = rest[p + 1:]
                src = srcs[si]
                e = table[ti]
                cid = e[base.E_CLASS]
                par = e[base.E_PARAM]
                dev = -1
                if field == "status" or field.endswith(".status") and src.index(field) < 0:
                    kind = _K_STATUS
                    f = -1
                    if field != "status":
                        dev = _device_of(src, field[:-7])
                else:
                    f = src.index(field)
                    if f < 0:
                        raise ValueError("source %s has no field %s" % (rest[:p], field))
                    if getattr(src, "ndevices", 0):
                        dev = _device_of_field(src, f)
                    if cid == 4:
                        kind = _K_EXT
                    elif cid == 1 and par is not None and par[0] in _STRINGS:
                        kind = _K_TEXT
                    else:
                        kind = _K_VALUE
                scaler = par[0] if cid in (3, 4) else 0
                unit = par[1] if cid in (3, 4) else 255
                tag = (par[2] if len(par) > 2 else 6) if cid in (3, 4) else (par[0] if par else 0)
                c = _channel(ch_src, ch_dev, si, dev)
                self._uses[m * nch + c] = 1
                if kind == _K_STATUS:
                    meters[m].state[e[base.E_SLOT]] = bytearray(_STATUS_LEN)
                b_meter.append(m)
                b_slot.append(e[base.E_SLOT])
                b_src.append(si)
                b_field.append(f)
                b_kind.append(kind)
                b_scaler.append(scaler)
                b_unit.append(unit)
                b_tag.append(tag)
                b_ch.append(c)
        for c in range(nch):
            self._uses[c] = 1  # the first logical device logs every source's events
        self.n = len(b_slot)
        self._meter = bytearray(b_meter)
        self._slot = b_slot
        self._src = bytearray(b_src)
        self._field = b_field
        self._kind = bytearray(b_kind)
        self._scaler = b_scaler
        self._unit = bytearray(b_unit)
        self._tag = bytearray(b_tag)
        self._ch = bytearray(b_ch)
        self._stamp = [0] * self.n  # the stamp of the value last written
        self._have = bytearray(self.n)  # 1: a value was written
        self.nch = nch
        # per meter: event code object and event logs; AMR status bits of
        # the interval running
        self._event_slot = [-1] * nm
        self._event_logs = []
        self._status = bytearray(nm)
        for m in range(nm):
            meter = meters[m]
            logs = []
            for ti, what in defn.DEVICES[m][4]:
                if what == "event-code":
                    ec = defn.DEVICES[m][2][ti]
                    self._event_slot[m] = ec[base.E_SLOT]
                    for e in meter.table:
                        if e[base.E_CLASS] == 7 and e[base.E_SLOT] >= 0 and e[base.E_PARAM][1] == 0:
                            for co in e[base.E_PARAM][0]:
                                if co[1] == ec[base.E_LN]:
                                    logs.append(e)
                                    break
                    break
            self._event_logs.append(tuple(logs))
        self._capture = None
        for m in range(nm):
            if self._event_logs[m]:
                from dlms_micro.cosem import profile

                self._capture = profile.capture
        self.events = 0  # events logged

    # ------------------------------------------------------------------ API

    def update(self, now, utc):
        # Copy what the sources hold into the meters' state; notice failures
        # and recoveries. now: ticks (ms) as the sources got; utc: seconds.
        utc = int(utc)
        srcs = self.srcs
        for c in range(self.nch):
            self._channel_update(c, srcs[self._ch_src[c]], now, utc)
        for b in range(self.n):
            self._bind(b, srcs[self._src[b]], now, utc)

    def profile_status(self, m):
        # AMR profile status bits of meter m for the interval running
        bits = self._status[m]
        if self.failing(m):
            bits |= STATUS_DATA_NOT_VALID
        return bits

    def status_taken(self, m):
        # meter m's status profile took its row: the next interval starts
        # clean (with the bit again if a source still fails)
        self._status[m] = 0

    def failing(self, m=-1):
        # True while a channel meter m binds (any, m = -1) fails
        nch = self.nch
        for c in range(nch):
            if self._ch_failing[c] and (m < 0 or self._uses[m * nch + c]):
                return True
        return False

    # ------------------------------------------------------------- internals

    def _channel_update(self, c, src, now, utc):
        d = self._ch_dev[c]
        if d >= 0:
            st = src.dev_status[d]
            err = src.dev_error[d]
            good = src.dev_last_good[d]
        else:
            st = src.status
            err = src.error
            good = src.last_good
        if st == OK and (self._ch_good_utc[c] < 0 or good != self._ch_good_ms[c]):
            self._ch_good_ms[c] = good
            self._ch_good_utc[c] = utc - ticks_diff(now, good) // 1000
        failing = 1 if (st != OK and err != E_NONE) else 0
        if failing != self._ch_failing[c]:
            self._ch_failing[c] = failing
            ev = self.defn.SOURCES[self._ch_src[c]][6 if failing else 7]
            nch = self.nch
            for m in range(len(self.meters)):
                if self._uses[m * nch + c]:
                    if failing:
                        self._status[m] |= STATUS_DATA_NOT_VALID
                    self._event(m, ev)

    def _event(self, m, code):
        s = self._event_slot[m]
        if s < 0:
            return
        meter = self.meters[m]
        meter.state[s] = code
        self.events += 1
        for e in self._event_logs[m]:
            self._capture(meter, e)

    def _bind(self, b, src, now, utc):
        meter = self.meters[self._meter[b]]
        st = meter.state
        slot = self._slot[b]
        kind = self._kind[b]
        if kind == _K_STATUS:
            self._status_struct(st[slot], self._ch[b], src, utc)
            return
        f = self._field[b]
        fs = src.field_status[f]
        if fs == NO_VALUE:
            if not self._have[b]:
                st[slot] = None
                if kind == _K_EXT:
                    st[slot + 1] = NO_VALUE
                    st[slot + 2] = None
            return
        stamp = src.stamps[f]
        if kind == _K_EXT:
            st[slot + 1] = fs  # OK / STALE: the value's standing
        if kind == _K_TEXT:
            if self._have[b] and stamp == self._stamp[b]:
                return
            if hasattr(src, "text") and not _same_text(src, f, st[slot]):
                st[slot] = src.text(f)  # a new text: allocated only then
            self._stamp[b] = stamp
            self._have[b] = 1
            return
        if not src.numeric[f]:
            self._refuse(b, slot, st, kind)
            return
        u = src.units[f]
        want = self._unit[b]
        if want != 255 and u != 255 and u != want:
            self._refuse(b, slot, st, kind)
            return
        v = src.values[f]
        k = src.scalers[f] - self._scaler[b]
        while k > 0:
            v *= 10
            k -= 1
        while k < 0:
            v = v // 10 if v >= 0 else -((-v) // 10)
            k += 1
        if not _fits(self._tag[b], v):
            self._refuse(b, slot, st, kind)
            return
        if self._tag[b] == 23 or self._tag[b] == 24:  # float32 / float64
            v = v * 1.0
        st[slot] = v
        self._stamp[b] = stamp
        self._have[b] = 1
        if kind == _K_EXT:
            st[slot + 2] = utc - ticks_diff(now, stamp) // 1000

    def _refuse(self, b, slot, st, kind):
        # not the register's quantity or not its type's: not served
        self.refused += 1
        self._have[b] = 0
        st[slot] = None
        if kind == _K_EXT:
            st[slot + 2] = None
        if self.log is not None:
            self.log("source value refused for %s (unit or range)" % self.defn.SOURCES[self._src[b]][0])

    def _status_struct(self, out, c, src, utc):
        d = self._ch_dev[c]
        if d >= 0:
            st = src.dev_status[d]
            err = src.dev_error[d]
        else:
            st = src.status
            err = src.error
        gu = self._ch_good_utc[c]
        out[0] = 2  # structure
        out[1] = 7
        out[2] = 22  # enum
        out[3] = st
        out[4] = 22
        out[5] = err
        if hasattr(src, "good_polls"):
            _u32(out, 6, src.good_polls)
            _u32(out, 11, src.failed_polls)
        else:  # S0: pulses are its readings
            _u32(out, 6, src.count)
            _u32(out, 11, 0)
        _u32(out, 16, getattr(src, "timeouts", 0))
        _u32(out, 21, _errors(src))
        _u32(out, 26, _NEVER if gu < 0 else utc - gu)


def _same_text(src, f, old):
    # whether the text of field f is old (bytes), compared in place
    n = src.text_len[f]
    if old is None or len(old) != n:
        return False
    t = src.texts
    base = 32 * f  # iec21_readout.MAX_VALUE bytes a field
    for i in range(n):
        if t[base + i] != old[i]:
            return False
    return True


def _u32(out, p, v):
    # a double-long-unsigned element at out[p:p+5], clamped
    out[p] = 6
    if v < 0:
        v = 0
    elif v > _NEVER:
        v = _NEVER
    out[p + 1] = (v >> 24) & 0xFF
    out[p + 2] = (v >> 16) & 0xFF
    out[p + 3] = (v >> 8) & 0xFF
    out[p + 4] = v & 0xFF


_ERROR_COUNTERS = ("bad_crc", "truncated", "bad_format", "wrong_slave", "wrong_function", "exceptions",
                   "bad_values", "bad_bcc", "bad_units", "overlong", "bad_baud", "bounces", "storage_errors")


def _errors(src):
    # the failures of any kind but timeouts a source counted
    e = 0
    for n in _ERROR_COUNTERS:
        e += getattr(src, n, 0)
    return e


def _channel(ch_src, ch_dev, si, dev):
    for c in range(len(ch_src)):
        if ch_src[c] == si and (ch_dev[c] == dev or ch_dev[c] == -1):
            return c
    return 0


def _device_of(src, name):
    # the index of the Modbus meter called name on the bus src
    nd = getattr(src, "ndevices", 0)
    for d in range(nd):
        a, b = src.device_fields(d)
        if a < b and src.fields[a].startswith(name + "."):
            return d
    return -1


def _device_of_field(src, f):
    for d in range(src.ndevices):
        a, b = src.device_fields(d)
        if a <= f < b:
            return d
    return -1


__all__ = ["Bindings", "make", "make_one", "info", "STALE", "STATUS_DATA_NOT_VALID"]
