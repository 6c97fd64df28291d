# Register monitor (class_id 21, version 0), Blue Book 4.5.6, and Limiter
# (class_id 71, version 0), Blue Book 4.5.9: watch one attribute of another
# object and run scripts when it crosses thresholds.
#
# Both read the monitored value through the monitored object's own get()
# handler (as a client's GET would, into a small scratch buffer) and compare
# it as a number: integer types, and float32/float64 (floats allocate).
# Thresholds carry the monitored value's type and scaler: the comparison is
# on the raw values, no scaling. An action runs script `script_selector` of
# the Script table `script_logical_name` through script.execute(); selector 0
# is the null script (nothing runs).
#
# value_definition ::= structure {class_id long-unsigned, logical_name
#   octet-string, attribute_index integer}
# action_item ::= structure {script_logical_name octet-string,
#   script_selector long-unsigned}
#
# REGISTER MONITOR
#   attribute 2 thresholds      array of CHOICE (param's value type), at
#                               most param's maximum
#   attribute 3 monitored_value value_definition
#   attribute 4 actions         array of action_set ::= structure {
#                               action_up action_item, action_down
#                               action_item}, at most the maximum
#   no methods
# tick_monitor(meter, obj) (the port's loop, or after metering updated the
# value): threshold i is crossed upwards when the value goes from <= to >
# thresholds[i] and downwards from > to <=; action_set i's action_up /
# action_down runs then (a threshold without an action_set runs nothing).
# The first evaluation after boot, or after a SET of thresholds or of
# monitored_value, only takes note of which side the value is on.
#
# LIMITER
#   attribute 2 monitored_value               value_definition
#   attribute 3 threshold_active              CHOICE (param's value type)
#   attribute 4 threshold_normal              CHOICE
#   attribute 5 threshold_emergency           CHOICE
#   attribute 6 min_over_threshold_duration   double-long-unsigned, seconds
#   attribute 7 min_under_threshold_duration  double-long-unsigned, seconds
#   attribute 8 emergency_profile             structure {emergency_profile_id
#                                             long-unsigned, emergency_
#                                             activation_time octet-string(12)
#                                             date-time, emergency_duration
#                                             double-long-unsigned seconds}
#   attribute 9 emergency_profile_group_id_list  array of long-unsigned, at
#                                             most param's maximum
#   attribute 10 emergency_profile_active     boolean (read only)
#   attribute 11 actions                      structure {action_over_threshold
#                                             action_item, action_under_
#                                             threshold action_item}
#   no methods
# tick_limiter(meter, obj, utc) (the port's loop, utc = clock.now()):
#   - the emergency profile is active while emergency_profile_id is in the
#     group id list and activation_time <= utc < activation_time +
#     duration; threshold_active follows: threshold_emergency while active,
#     threshold_normal otherwise (set at each change; a SET of
#     threshold_active holds until the next one, a SET of the threshold in
#     force applies at once);
#   - the value is over when > threshold_active. Over without a break for
#     min_over_threshold_duration: action_over_threshold runs, once; then
#     under (<=) without a break for min_under_threshold_duration:
#     action_under_threshold runs, once. The under action only follows an
#     over action (nothing runs at boot with the value under).
#   Durations count from the tick that first saw the change, so they are
#   as fine as the port's tick period.
#
# param (both): (value_tag, max) - the A-XDR type of the thresholds (the
#   monitored value's), and the most thresholds / action sets (Register
#   monitor) or group ids (Limiter) a SET may bring.
# state: 1 slot, a MonitorState / LimiterState made at boot with the
#   initial configuration; SETs change it (no persistence here: a port
#   that lets head-ends reconfigure these keeps them in its own storage).
#
# SET: a value of the wrong shape or type: TYPE_UNMATCHED; more items
#   than the maximum, a logical name not 6 bytes, a date-time that names
#   no instant: OTHER_REASON; nothing changes unless SUCCESS.
#
# ALLOCATION. A tick that changes nothing allocates nothing for an integer
# value (the comparisons with utc, a big int, do not allocate); a crossing
# costs the new deadline (32 B) and what the script does.

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.errors import DecodeError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1

P_TAG = const(0)
P_MAX = const(1)

_ZERO_LN = b"\x00\x00\x00\x00\x00\x00"
_NO_TIME = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"  # date-time not specified
_script = None


def run_action(meter, ln, selector):
    # Run script `selector` of the Script table `ln` (script.execute,
    # imported on first use); selector 0 runs nothing. True when it ran.
    global _script
    if selector == 0:
        return True
    if _script is None:
        from dlms_micro.cosem import script

        _script = script
    return _script.execute(meter, ln, selector)


class Probe:
    # Reads a numeric attribute of another object through its handler.

    def __init__(self, class_id=0, ln=_ZERO_LN, attr=2):
        self.class_id = class_id
        self.ln = bytearray(ln)
        self.attr = attr
        self.entry = None  # the monitored entry, found on first use
        self.ctx = None
        self.buf = bytearray(24)
        self.r = axdr.Reader()

    def point(self, class_id, buf, off, attr):
        # Monitor another attribute (its logical name at buf[off:off+6]).
        self.class_id = class_id
        for i in range(6):
            self.ln[i] = buf[off + i]
        self.attr = attr
        self.entry = None

    def read(self, meter):
        # The value as a number, or None when it cannot be read.
        e = self.entry
        if e is None:
            e = meter.find(self.class_id, self.ln, 0)
            if e is None:
                return None
            self.entry = e
        ctx = self.ctx
        if ctx is None:
            ctx = self.ctx = base.Context(meter)
        buf = self.buf
        try:
            if common.get_attribute(ctx, e, self.attr, buf, 0, len(buf)) != base.SUCCESS or ctx.cursor:
                return None
            r = self.r
            r.reset(buf, 0, ctx.pos)
            t = buf[0]
            if t == axdr.FLOAT32:
                return r.float32()
            if t == axdr.FLOAT64:
                return r.float64()
            return r.number()
        except (DecodeError, EncodeError):
            return None

    def encode(self, buf, pos):
        pos = axdr.enc_structure(buf, pos, 3)
        pos = axdr.enc_long_unsigned(buf, pos, self.class_id)
        pos = axdr.enc_octet_string(buf, pos, self.ln)
        return axdr.enc_integer(buf, pos, self.attr)

    def set(self, r):
        # SET of a value_definition at r: a data-access-result.
        if r.structure() != 3:
            return base.TYPE_UNMATCHED
        cid = r.long_unsigned()
        if r.octet_string() != 6:
            return base.OTHER_REASON
        p = r.mark
        attr = r.integer()
        self.point(cid, r.buf, p, attr)
        return base.SUCCESS


def _read_threshold(r, tag):
    # A threshold of type tag at r (a number); DecodeError otherwise.
    if tag == axdr.FLOAT32:
        return r.float32()
    if tag == axdr.FLOAT64:
        return r.float64()
    return r.int_of(tag)


def _enc_action(buf, pos, ln, sel):
    pos = axdr.enc_structure(buf, pos, 2)
    pos = axdr.enc_octet_string(buf, pos, ln)
    return axdr.enc_long_unsigned(buf, pos, sel)


def _read_action(r):
    # An action_item at r: the offset of its logical name and the selector;
    # -1 for a name not 6 bytes. DecodeError for the wrong shape.
    if r.structure() != 2:
        raise DecodeError("action_item")
    n = r.octet_string()
    p = r.mark
    sel = r.long_unsigned()
    return (p if n == 6 else -1), sel


def _copy_ln(dst, buf, p):
    for i in range(6):
        dst[i] = buf[p + i]


# ------------------------------------------------------------ register monitor


class MonitorState:
    # Run-time part of one Register monitor (its state slot).

    def __init__(self, param, monitored=None, thresholds=(), actions=()):
        # monitored: (class_id, logical_name, attribute_index); thresholds:
        # numbers; actions: ((up_ln, up_selector), (down_ln,
        # down_selector)) per threshold.
        m = param[P_MAX]
        if len(thresholds) > m or len(actions) > m:
            raise ValueError("more thresholds or actions than the maximum %d" % m)
        self.probe = Probe()
        if monitored is not None:
            self.probe.point(monitored[0], monitored[1], 0, monitored[2])
        self.thresholds = [0] * m
        self.n = len(thresholds)
        for i in range(self.n):
            self.thresholds[i] = thresholds[i]
        self.up_ln = [bytearray(6) for _ in range(m)]
        self.up_sel = [0] * m
        self.down_ln = [bytearray(6) for _ in range(m)]
        self.down_sel = [0] * m
        self.nactions = len(actions)
        for i in range(self.nactions):
            _copy_ln(self.up_ln[i], actions[i][0][0], 0)
            self.up_sel[i] = actions[i][0][1]
            _copy_ln(self.down_ln[i], actions[i][1][0], 0)
            self.down_sel[i] = actions[i][1][1]
        self.above = bytearray(m)
        self.primed = False


def tick_monitor(meter, obj):
    # Evaluate the monitored value; the number of actions run.
    ms = meter.state[obj[base.E_SLOT]]
    v = ms.probe.read(meter)
    if v is None:
        return 0
    above = ms.above
    th = ms.thresholds
    ran = 0
    for i in range(ms.n):
        a = 1 if v > th[i] else 0
        if a == above[i]:
            continue
        above[i] = a
        if not ms.primed or i >= ms.nactions:
            continue
        if a:
            run_action(meter, ms.up_ln[i], ms.up_sel[i])
        else:
            run_action(meter, ms.down_ln[i], ms.down_sel[i])
        ran += 1
    if not ms.primed:
        ms.primed = True
    return ran


class RegisterMonitor(base.InterfaceClass):
    class_id = 21
    version = 0
    attribute_count = 4
    method_count = 0
    slots = SLOTS

    def get(self, ctx, obj, attr):
        ms = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            tag = obj[base.E_PARAM][P_TAG]
            pos = axdr.enc_array(buf, pos, ms.n)
            for i in range(ms.n):
                pos = common.encode_value(buf, pos, tag, 0, ms.thresholds[i])
        elif attr == 3:
            pos = ms.probe.encode(buf, pos)
        elif attr == 4:
            pos = axdr.enc_array(buf, pos, ms.nactions)
            for i in range(ms.nactions):
                pos = axdr.enc_structure(buf, pos, 2)
                pos = _enc_action(buf, pos, ms.up_ln[i], ms.up_sel[i])
                pos = _enc_action(buf, pos, ms.down_ln[i], ms.down_sel[i])
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        ms = ctx.meter.state[obj[base.E_SLOT]]
        p = obj[base.E_PARAM]
        r = ctx.r
        try:
            if attr == 3:
                res = ms.probe.set(r)
                if res == base.SUCCESS:
                    ms.primed = False
                return res
            if attr != 2 and attr != 4:
                return base.READ_WRITE_DENIED
            start = r.pos
            n = r.array()
            if n > p[P_MAX]:
                return base.OTHER_REASON
            for store in (False, True):  # check everything, then store
                r.pos = start
                r.array()
                for i in range(n):
                    if attr == 2:
                        v = _read_threshold(r, p[P_TAG])
                        if store:
                            ms.thresholds[i] = v
                        continue
                    if r.structure() != 2:
                        return base.TYPE_UNMATCHED
                    up, up_sel = _read_action(r)
                    down, down_sel = _read_action(r)
                    if up < 0 or down < 0:
                        return base.OTHER_REASON
                    if store:
                        _copy_ln(ms.up_ln[i], r.buf, up)
                        ms.up_sel[i] = up_sel
                        _copy_ln(ms.down_ln[i], r.buf, down)
                        ms.down_sel[i] = down_sel
            if attr == 2:
                ms.n = n
                ms.primed = False
            else:
                ms.nactions = n
            return base.SUCCESS
        except DecodeError:
            return base.TYPE_UNMATCHED


REGISTER_MONITOR = RegisterMonitor()


# ------------------------------------------------------------------- limiter


class LimiterState:
    # Run-time part of one Limiter (its state slot).

    def __init__(self, param, monitored=None, normal=0, emergency=0, min_over=0, min_under=0,
                 over_action=(_ZERO_LN, 0), under_action=(_ZERO_LN, 0), group_ids=()):
        m = param[P_MAX]
        if len(group_ids) > m:
            raise ValueError("more group ids than the maximum %d" % m)
        self.probe = Probe()
        if monitored is not None:
            self.probe.point(monitored[0], monitored[1], 0, monitored[2])
        self.normal = normal
        self.emergency = emergency
        self.active = normal
        self.min_over = min_over
        self.min_under = min_under
        self.ep_id = 0
        self.ep_time = bytearray(_NO_TIME)
        self.ep_duration = 0
        self.ep_start = None  # UTC of emergency_activation_time (None: none)
        self.ep_end = None
        self.groups = [0] * m
        self.ngroups = len(group_ids)
        for i in range(self.ngroups):
            self.groups[i] = group_ids[i]
        self.em_active = False
        self.over_ln = bytearray(over_action[0])
        self.over_sel = over_action[1]
        self.under_ln = bytearray(under_action[0])
        self.under_sel = under_action[1]
        self.over = False  # the value was over threshold_active at the last tick
        self.tripped = False  # action_over ran and action_under has not since
        self.deadline = None  # UTC at which the pending action runs


def _in_group(ls):
    for i in range(ls.ngroups):
        if ls.groups[i] == ls.ep_id:
            return True
    return False


def _set_profile(meter, ls, pid, buf, p, duration):
    # emergency_profile := (pid, date-time at buf[p:p+12], duration); False
    # when the date-time names no instant (a not-specified one clears it).
    if buf[p] == 0xFF and buf[p + 1] == 0xFF and buf[p + 2] == 0xFF:
        start = None
    else:
        from dlms_micro.cosem import clock

        start = clock.utc_of(meter, clock.meter_clock(meter), buf, p)
        if start is None:
            return False
    ls.ep_id = pid
    for i in range(12):
        ls.ep_time[i] = buf[p + i]
    ls.ep_duration = duration
    ls.ep_start = start
    ls.ep_end = None if start is None else start + duration
    return True


def emergency_profile(meter, obj, pid, activation, duration):
    # Program the emergency profile (a port's or a test's shortcut for a SET
    # of attribute 8): activation is 12 date-time bytes. False when invalid.
    return _set_profile(meter, meter.state[obj[base.E_SLOT]], pid, activation, 0, duration)


def tick_limiter(meter, obj, utc):
    # Evaluate the limiter at utc: 1 when action_over_threshold ran, 2 when
    # action_under_threshold ran, 0 otherwise.
    if utc is None:
        return 0
    ls = meter.state[obj[base.E_SLOT]]
    start = ls.ep_start
    em = start is not None and start <= utc and utc < ls.ep_end and _in_group(ls)
    if em != ls.em_active:
        ls.em_active = em
        ls.active = ls.emergency if em else ls.normal
    v = ls.probe.read(meter)
    if v is None:
        return 0
    over = v > ls.active
    if over != ls.over:
        ls.over = over
        if over and not ls.tripped:
            ls.deadline = utc + ls.min_over
        elif not over and ls.tripped:
            ls.deadline = utc + ls.min_under
        else:
            ls.deadline = None
    d = ls.deadline
    if d is None or utc < d:
        return 0
    ls.deadline = None
    if over:
        ls.tripped = True
        run_action(meter, ls.over_ln, ls.over_sel)
        return 1
    ls.tripped = False
    run_action(meter, ls.under_ln, ls.under_sel)
    return 2


class Limiter(base.InterfaceClass):
    class_id = 71
    version = 0
    attribute_count = 11
    method_count = 0
    slots = SLOTS

    def get(self, ctx, obj, attr):
        ls = ctx.meter.state[obj[base.E_SLOT]]
        tag = obj[base.E_PARAM][P_TAG]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = ls.probe.encode(buf, pos)
        elif attr == 3:
            pos = common.encode_value(buf, pos, tag, 0, ls.active)
        elif attr == 4:
            pos = common.encode_value(buf, pos, tag, 0, ls.normal)
        elif attr == 5:
            pos = common.encode_value(buf, pos, tag, 0, ls.emergency)
        elif attr == 6:
            pos = axdr.enc_double_long_unsigned(buf, pos, ls.min_over)
        elif attr == 7:
            pos = axdr.enc_double_long_unsigned(buf, pos, ls.min_under)
        elif attr == 8:
            pos = axdr.enc_structure(buf, pos, 3)
            pos = axdr.enc_long_unsigned(buf, pos, ls.ep_id)
            pos = axdr.enc_octet_string(buf, pos, ls.ep_time)
            pos = axdr.enc_double_long_unsigned(buf, pos, ls.ep_duration)
        elif attr == 9:
            pos = axdr.enc_array(buf, pos, ls.ngroups)
            for i in range(ls.ngroups):
                pos = axdr.enc_long_unsigned(buf, pos, ls.groups[i])
        elif attr == 10:
            pos = axdr.enc_boolean(buf, pos, ls.em_active)
        elif attr == 11:
            pos = axdr.enc_structure(buf, pos, 2)
            pos = _enc_action(buf, pos, ls.over_ln, ls.over_sel)
            pos = _enc_action(buf, pos, ls.under_ln, ls.under_sel)
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        ls = ctx.meter.state[obj[base.E_SLOT]]
        p = obj[base.E_PARAM]
        r = ctx.r
        try:
            if attr == 2:
                return ls.probe.set(r)
            if 3 <= attr <= 5:
                v = _read_threshold(r, p[P_TAG])
                if attr == 3:
                    ls.active = v
                elif attr == 4:
                    ls.normal = v
                    if not ls.em_active:
                        ls.active = v
                else:
                    ls.emergency = v
                    if ls.em_active:
                        ls.active = v
            elif attr == 6:
                ls.min_over = r.double_long_unsigned()
            elif attr == 7:
                ls.min_under = r.double_long_unsigned()
            elif attr == 8:
                if r.structure() != 3:
                    return base.TYPE_UNMATCHED
                pid = r.long_unsigned()
                q = common.read_date_time(r)
                if q < 0:
                    return base.TYPE_UNMATCHED
                duration = r.double_long_unsigned()
                if not _set_profile(ctx.meter, ls, pid, r.buf, q, duration):
                    return base.OTHER_REASON
            elif attr == 9:
                start = r.pos
                n = r.array()
                if n > p[P_MAX]:
                    return base.OTHER_REASON
                for _ in range(n):
                    r.long_unsigned()
                r.pos = start
                r.array()
                for i in range(n):
                    ls.groups[i] = r.long_unsigned()
                ls.ngroups = n
            elif attr == 11:
                if r.structure() != 2:
                    return base.TYPE_UNMATCHED
                o, osel = _read_action(r)
                u, usel = _read_action(r)
                if o < 0 or u < 0:
                    return base.OTHER_REASON
                _copy_ln(ls.over_ln, r.buf, o)
                ls.over_sel = osel
                _copy_ln(ls.under_ln, r.buf, u)
                ls.under_sel = usel
            else:
                return base.READ_WRITE_DENIED
            return base.SUCCESS
        except DecodeError:
            return base.TYPE_UNMATCHED


LIMITER = Limiter()
