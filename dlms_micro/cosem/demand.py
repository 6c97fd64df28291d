# Demand register (class_id 5, version 0), Blue Book 4.3.4: the average
# power drawn over a demand period, computed from a cumulative energy
# register, and the maximum demand kept in an Extended register (class 4).
#
#   attribute 2 current_average_value  CHOICE: type from param (default
#                                      double-long-unsigned)
#   attribute 3 last_average_value     the same type
#   attribute 4 scaler_unit            structure {scaler integer, unit enum}
#   attribute 5 status                 CHOICE: type from param (default
#                                      unsigned); always 0 here
#   attribute 6 capture_time           octet-string(12) date-time: when
#                                      last_average_value was computed
#   attribute 7 start_time_current     octet-string(12) date-time: when the
#                                      running (sub-)period started
#                                      (both in the meter's local time, as
#                                      clock.enc_local_time writes them)
#   attribute 8 period                 double-long-unsigned, seconds
#   attribute 9 number_of_periods      long-unsigned
#   method 1 reset (integer(0))
#   method 2 next_period (integer(0))
# period and number_of_periods take SETs (access rights decide who); the
# other attributes are read-only (SET: READ_WRITE_DENIED).
#
# WHAT THE BLUE BOOK DEFINES, AND WHAT IS IMPLEMENTED. With E(a, b) the
# energy counted from a to b, T = period, N = number_of_periods:
#   last_average_value    = E over the last N closed periods / (N * T);
#                           "the energy of the current (not terminated)
#                           period is not considered"
#   current_average_value = the running demand: the energy accumulated
#                           since start / (N * T)
#   N = 1 is block demand, N > 1 sliding demand; period is the interval
#   between two updates of last_average_value, N * T the denominator.
#   next_period: ends the running period, copies current_average_value to
#   last_average_value, sets capture_time and start_time_current, starts
#   the next period. reset: ends the running period, both averages to their
#   default, capture_time and start_time_current := now.
# Implemented: the sub-periods of length T are aligned to the clock (UTC
# multiples of T, as profile.tick aligns captures: :00/:15/:30/:45 for
# 900 s). With E1..E(N-1) the energies of the N-1 sub-periods closed last
# and Ec that of the running one,
#   current_average_value = (E1 + .. + E(N-1) + Ec) / (N * T)
#   last_average_value    = (E1 + .. + EN) / (N * T), EN the sub-period
#                           just closed,
# so that at each boundary current_average_value becomes exactly the new
# last_average_value (next_period's "copy"), and it then restarts from the
# N-1 sub-periods kept, the running demand of the sliding window; with
# N = 1 it restarts from 0, the default value, as the Blue Book says. The
# denominator is always N * T, as the Blue Book writes it: the first
# windows after a reset or a start, and a sub-period cut short by
# next_period, count the time they did not cover as zero energy.
# Units: value = E * per * 10**(scaler_energy - scaler) / (N * T), with
# E in the energy register's raw units and per = 3600 (energy per hour, Wh
# to W, varh to var, VAh to VA; param may give another); floor division,
# integers only.
#
# SIDE EFFECTS (the Blue Book leaves them to the manufacturer): a SET that
# changes period or number_of_periods ends the running measurement: the
# window is emptied, current_average_value := 0, a new period starts now
# (start_time_current := now) and ends at the next multiple of the new
# period; last_average_value and capture_time stay (that period did end).
# A SET of the same value changes nothing. period 0 and number_of_periods 0
# or above the ring's size (param) get OTHER_REASON; another type
# TYPE_UNMATCHED.
#
# TIME. tick(meter, obj, utc) is called by the port's loop (every second or
# so, utc = clock.now(meter)). The first call starts a (partial) sub-period
# at utc. At each multiple of T it closes the sub-period: last_average_value,
# capture_time = the boundary, the maximum demand (below); returns True. The
# energy read at that tick (consumed since the tick before, i.e. within a
# second of the boundary) goes to the sub-period that closes. A loop that
# missed boundaries (a stall, the clock set forward) closes once, at the
# first boundary, with all the energy counted so far, then adds the skipped
# sub-periods as empty ones (only the first close can raise the maximum:
# the windows after it hold less energy). The clock set backwards before
# start_time_current: the running sub-period keeps its energy and restarts
# at the boundary before the new time (start_time_current moves back), so
# nothing is lost and no average goes negative; it then lasts longer than T
# (the demand of that window is overstated by the time set back).
#
# ENERGY. The energy register (class 3 or 4, named by param) is read from
# its state slot at each tick; a change adds value - previous to the running
# sub-period. An unsigned value that drops from the upper half of its range
# to the lower half wrapped (double-long-unsigned at 2**32: adds value +
# 2**32 - previous); any other drop (the register was reset or set lower)
# starts over from the new value and adds nothing. None (not set) is skipped.
#
# MAXIMUM DEMAND. param may name an Extended register (class 4, value in
# the demand register's units and scaler; register.py keeps value, status,
# capture_time as UTC seconds): when a sub-period closes and
# last_average_value exceeds its value (or it has none), the Extended
# register takes last_average_value and capture_time. Its reset (method 1)
# sets it to 0: the maximum starts over (the billing-period reset).
# update_max(meter, ext_obj, dr_obj) does the same for any pair.
#
# param: (scaler, unit, energy_class, energy_ln, max_periods[, max_ln[,
#         value_tag[, status_tag[, per]]]])
#   scaler, unit   of the averages (attribute 4), e.g. (0, 27) for W
#   energy_class   3 or 4; energy_ln 6 bytes: the cumulative energy register
#   max_periods    the ring's size: the largest number_of_periods accepted
#   max_ln         6 bytes of the Extended register fed with the maximum,
#                  or None
#   value_tag      A-XDR type of the averages (default double-long-unsigned)
#   status_tag     A-XDR type of status (default unsigned)
#   per            seconds per time unit of the energy (default 3600)
# state: SLOTS (17) from E_SLOT, made by initial_state(param, period, n):
#   [+0]  current_average_value  int      [+1]  last_average_value  int
#   [+2]  status int (0)                  [+3]  capture_time: UTC s or None
#   [+4]  start_time_current: UTC s or None
#   [+5]  period s                        [+6]  number_of_periods
#   [+7]  end: UTC s at which the running sub-period closes; None: not
#         started (the next tick starts it)
#   [+8]  energy register value at the last tick (None: not read yet)
#   [+9]  energy of the running sub-period (raw units)
#   [+10] energy of the N-1 sub-periods closed last
#   [+11] ring: list of max_periods energies of closed sub-periods
#   [+12] sub-periods closed since the last restart (the newest sits at
#         ring[(count - 1) % max_periods])
#   [+13] energy register's first state slot (-1: not found; None: not
#         looked up yet)   [+14] num, [+15] den: the unit conversion
#         (value = E * num // (den * N * T))   [+16] the energy value's
#         modulus (2**32 for double-long-unsigned; 0: signed, no wrap)
#
# USE. Table entry and state, e.g. 15-minute block demand of 1.0.1.8.0 (Wh)
# with its maximum in 1.0.1.6.0 (an Extended register, param (0, 27)):
#   p = (0, 27, 3, b"\x01\x00\x01\x08\x00\xff", 4, b"\x01\x00\x01\x06\x00\xff")
#   (5, 0, b"\x01\x00\x01\x04\x00\xff", demand.DEMAND_REGISTER, slot, acc, p)
#   state[slot:slot + demand.SLOTS] = demand.initial_state(p, 900, 1)
# and in the port's loop, once a second or so (any period works; a tick
# after a boundary closes it):
#   demand.tick(meter, entry, clock.now(meter))
#
# ALLOCATION (measured on MicroPython 1.27, tests/portable/test_cosem_demand
# .py): a tick between boundaries allocates 0 B, whether the energy moved or
# not, while the energy register stays below 2**30 (1 GWh in Wh); above it,
# its difference to the previous reading is a big-int operation: 32 B per
# tick that sees the energy move. Comparisons of the (big-int) times cost
# nothing. A close, once a period, ~128 B (the boundary times, > 2**30).
# The port's utc = clock.now(meter) is a big-int sum of its own (32 B).
# About 11 us per tick in the wasm build (~0.25 ms on an ESP32, estimated).

from dlms_micro import axdr
from dlms_micro.cosem import base, clock, common

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# param fields
P_SCALER = const(0)
P_UNIT = const(1)
P_ENERGY_CLASS = const(2)
P_ENERGY_LN = const(3)
P_MAX_PERIODS = const(4)
P_MAX_LN = const(5)
P_VALUE_TAG = const(6)
P_STATUS_TAG = const(7)
P_PER = const(8)

# state slots, relative to the object's slot
S_CURRENT = const(0)
S_LAST = const(1)
S_STATUS = const(2)
S_CAPTURE = const(3)
S_START = const(4)
S_PERIOD = const(5)
S_NPERIODS = const(6)
S_END = const(7)
S_ENERGY = const(8)
S_SUB = const(9)
S_WINDOW = const(10)
S_RING = const(11)
S_COUNT = const(12)
S_ESLOT = const(13)
S_NUM = const(14)
S_DEN = const(15)
S_MOD = const(16)
SLOTS = 17

_PER_HOUR = const(3600)
# Extended register slots (register.py)
_X_VALUE = const(0)
_X_TIME = const(2)


def initial_state(param, period=900, number_of_periods=1):
    # The SLOTS values of a Demand register, in slot order:
    # state[s:s + SLOTS] = initial_state(param, ...)
    return [0, 0, 0, None, None, period, number_of_periods, None, None, 0, 0,
            [0] * param[P_MAX_PERIODS], 0, None, 1, 1, 0]


def _opt(p, i, default):
    return p[i] if len(p) > i and p[i] is not None else default


def _bind(meter, obj, st, s):
    # First use: find the energy register, work out the unit conversion.
    p = obj[base.E_PARAM]
    e = meter.find(p[P_ENERGY_CLASS], p[P_ENERGY_LN], 0)
    if e is None or e[base.E_SLOT] < 0:
        st[s + S_ESLOT] = -1
        return
    ep = e[base.E_PARAM]
    d = ep[0] - p[P_SCALER]
    per = _opt(p, P_PER, _PER_HOUR)
    if d >= 0:
        st[s + S_NUM] = per * 10 ** d
        st[s + S_DEN] = 1
    else:
        st[s + S_NUM] = per
        st[s + S_DEN] = 10 ** -d
    tag = ep[2] if len(ep) > 2 else axdr.DOUBLE_LONG_UNSIGNED
    if tag == axdr.DOUBLE_LONG_UNSIGNED:
        st[s + S_MOD] = 1 << 32
    elif tag == axdr.LONG_UNSIGNED:
        st[s + S_MOD] = 1 << 16
    elif tag == axdr.UNSIGNED:
        st[s + S_MOD] = 1 << 8
    elif tag == axdr.LONG64_UNSIGNED:
        st[s + S_MOD] = 1 << 64
    else:
        st[s + S_MOD] = 0
    st[s + S_ESLOT] = e[base.E_SLOT]


def _energy(meter, obj, st, s):
    # The energy register's value now, or None.
    es = st[s + S_ESLOT]
    if es is None:
        _bind(meter, obj, st, s)
        es = st[s + S_ESLOT]
    if es < 0:
        return None
    v = meter.state[es]
    if v is None or not isinstance(v, int):
        return None
    return v


def _average(st, s, energy):
    return energy * st[s + S_NUM] // (st[s + S_DEN] * st[s + S_NPERIODS] * st[s + S_PERIOD])


def _accumulate(meter, obj, st, s):
    # Add the energy counted since the last reading to the running
    # sub-period and update current_average_value.
    v = _energy(meter, obj, st, s)
    if v is None:
        return
    prev = st[s + S_ENERGY]
    if prev is None:
        st[s + S_ENERGY] = v
        return
    if v == prev:
        return
    d = v - prev
    if d < 0:
        mod = st[s + S_MOD]
        half = mod >> 1
        if mod and prev >= half and v < half:
            d += mod  # wrapped
        else:
            d = 0  # reset or set lower: start over from v
    st[s + S_ENERGY] = v
    if d:
        st[s + S_SUB] += d
        st[s + S_CURRENT] = _average(st, s, st[s + S_WINDOW] + st[s + S_SUB])


def _next_end(st, s, t):
    period = st[s + S_PERIOD]
    return (t // period + 1) * period


def _restart(meter, obj, st, s, t):
    # Empty the window and start a new sub-period at t (None: at the next
    # tick).
    st[s + S_SUB] = 0
    st[s + S_WINDOW] = 0
    st[s + S_COUNT] = 0
    ring = st[s + S_RING]
    for i in range(len(ring)):
        ring[i] = 0
    st[s + S_CURRENT] = 0
    st[s + S_ENERGY] = _energy(meter, obj, st, s)
    st[s + S_START] = t
    st[s + S_END] = None if t is None else _next_end(st, s, t)


def _push(st, s, e):
    # Close a sub-period of energy e: into the ring; the window's new sum.
    # Returns the energy of the N sub-periods up to it.
    ring = st[s + S_RING]
    size = len(ring)
    n = st[s + S_NPERIODS]
    total = st[s + S_WINDOW] + e
    count = st[s + S_COUNT]
    ring[count % size] = e
    count += 1
    st[s + S_COUNT] = count
    w = 0
    for i in range(1, n):
        w += ring[(count - i) % size]
    st[s + S_WINDOW] = w
    return total


def _close(meter, obj, st, s, t):
    # End the running sub-period at t (a boundary, or now for next_period).
    total = _push(st, s, st[s + S_SUB])
    st[s + S_SUB] = 0
    st[s + S_LAST] = _average(st, s, total)
    st[s + S_CAPTURE] = t
    st[s + S_START] = t
    st[s + S_CURRENT] = _average(st, s, st[s + S_WINDOW])
    ln = _opt(obj[base.E_PARAM], P_MAX_LN, None)
    if ln is not None:
        x = meter.find(4, ln, 0)
        if x is not None:
            _take_max(meter.state, x[base.E_SLOT], st[s + S_LAST], t)


def _take_max(state, xs, v, t):
    cur = state[xs + _X_VALUE]
    if cur is None or v > cur:
        state[xs + _X_VALUE] = v
        state[xs + _X_TIME] = t
        return True
    return False


def update_max(meter, ext_obj, dr_obj):
    # The Extended register ext_obj takes the demand register dr_obj's
    # last_average_value and capture_time when that exceeds its value (or
    # it has none). True when it did.
    st = meter.state
    s = dr_obj[base.E_SLOT]
    return _take_max(st, ext_obj[base.E_SLOT], st[s + S_LAST], st[s + S_CAPTURE])


def tick(meter, obj, utc):
    # The port's periodic call (see TIME above); True when a sub-period
    # closed.
    if utc is None:
        return False
    st = meter.state
    s = obj[base.E_SLOT]
    end = st[s + S_END]
    if end is None:
        _restart(meter, obj, st, s, utc)
        return False
    _accumulate(meter, obj, st, s)
    if utc < end:
        if utc < st[s + S_START]:  # the clock was set back
            period = st[s + S_PERIOD]
            st[s + S_START] = utc - utc % period
            st[s + S_END] = st[s + S_START] + period
        return False
    period = st[s + S_PERIOD]
    _close(meter, obj, st, s, end)
    skipped = (utc - end) // period
    if skipped:
        n = st[s + S_NPERIODS]
        total = 0
        for _ in range(skipped if skipped < n else n):
            total = _push(st, s, 0)
        end += skipped * period
        st[s + S_LAST] = _average(st, s, total)
        st[s + S_CAPTURE] = end
        st[s + S_START] = end
        st[s + S_CURRENT] = _average(st, s, st[s + S_WINDOW])
    st[s + S_END] = end + period
    return True


class DemandRegister(base.InterfaceClass):
    class_id = 5
    version = 0
    attribute_count = 9
    method_count = 2
    slots = SLOTS

    def get(self, ctx, obj, attr):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        p = obj[base.E_PARAM]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2 or attr == 3:
            v = st[s + (S_CURRENT if attr == 2 else S_LAST)]
            pos = common.encode_value(buf, pos, _opt(p, P_VALUE_TAG, axdr.DOUBLE_LONG_UNSIGNED), 0, v)
        elif attr == 4:
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_integer(buf, pos, p[P_SCALER])
            pos = axdr.enc_enum(buf, pos, p[P_UNIT])
        elif attr == 5:
            pos = common.encode_value(buf, pos, _opt(p, P_STATUS_TAG, axdr.UNSIGNED), 0, st[s + S_STATUS])
        elif attr == 6 or attr == 7:
            pos = clock.enc_local_time(ctx.meter, st[s + (S_CAPTURE if attr == 6 else S_START)], buf, pos)
        elif attr == 8:
            pos = axdr.enc_double_long_unsigned(buf, pos, st[s + S_PERIOD])
        elif attr == 9:
            pos = axdr.enc_long_unsigned(buf, pos, st[s + S_NPERIODS])
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        r = ctx.r
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        if attr == 8:
            if r.peek() != axdr.DOUBLE_LONG_UNSIGNED:
                return base.TYPE_UNMATCHED
            v = r.double_long_unsigned()
            if v == 0:
                return base.OTHER_REASON
            slot = S_PERIOD
        elif attr == 9:
            if r.peek() != axdr.LONG_UNSIGNED:
                return base.TYPE_UNMATCHED
            v = r.long_unsigned()
            if v == 0 or v > obj[base.E_PARAM][P_MAX_PERIODS]:
                return base.OTHER_REASON
            slot = S_NPERIODS
        else:
            return base.READ_WRITE_DENIED
        if st[s + slot] != v:
            st[s + slot] = v
            _restart(ctx.meter, obj, st, s, clock.now(ctx.meter))
        return base.SUCCESS

    def action(self, ctx, obj, method):
        if method != 1 and method != 2:
            return base.READ_WRITE_DENIED
        res = common.integer_param(ctx)
        if res:
            return res
        meter = ctx.meter
        st = meter.state
        s = obj[base.E_SLOT]
        t = clock.now(meter)
        if method == 1:  # reset
            _restart(meter, obj, st, s, t)
            st[s + S_LAST] = 0
            st[s + S_CAPTURE] = t
            return base.SUCCESS
        # next_period
        if st[s + S_END] is None:
            _restart(meter, obj, st, s, t)
        else:
            _accumulate(meter, obj, st, s)
        _close(meter, obj, st, s, t)
        st[s + S_END] = None if t is None else _next_end(st, s, t)
        return base.SUCCESS


DEMAND_REGISTER = DemandRegister()
