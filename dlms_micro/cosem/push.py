# Push setup (class_id 40, version 0), Blue Book 4.4.8: what the meter sends
# on its own initiative (a DataNotification, app/notify.py), where, when and
# how often it tries.
#
#   attribute 2 push_object_list      array of structure {class_id
#                                     long-unsigned, logical_name
#                                     octet-string, attribute_index integer,
#                                     data_index long-unsigned}. Static here
#                                     (from param; SET: READ_WRITE_DENIED).
#                                     By convention the first element is the
#                                     push setup itself, attribute 1, so that
#                                     the receiver knows which push (and so
#                                     which list) a notification carries.
#   attribute 3 send_destination_and_method
#                                     structure {transport_service enum,
#                                     destination octet-string, message enum}
#   attribute 4 communication_window  array of structure {start_time
#                                     octet-string(12), end_time
#                                     octet-string(12)} (date-times)
#   attribute 5 randomisation_start_interval  long-unsigned, seconds
#   attribute 6 number_of_retries     unsigned
#   attribute 7 repetition_delay      long-unsigned, seconds
#   method 1 push (integer(0))        trigger a push now (on demand)
# Attributes 3..7 take SETs of their own type into preallocated state: a
# destination longer than param's maximum, or more windows than its maximum,
# gets OTHER_REASON (nothing changes); a wrong type TYPE_UNMATCHED. Version 0
# (gurux-dlms 1.0.203 reads versions 0, 1 and 2 alike for attributes 1..7).
#
# param: (push_objects, period, destination_max, windows_max)
#   push_objects     tuple of (class_id, logical_name (6 bytes),
#                    attribute_index, data_index); data_index must be 0
#                    (whole attribute), other values push null-data
#   period           seconds between scheduled pushes, aligned to the clock
#                    (at each multiple of period of the meter's UTC time, as
#                    profile.tick captures); 0: no schedule of its own. The
#                    Blue Book's way is a Single action schedule (class 22)
#                    running a Script table script whose action is method 1
#                    (push) of this object (script.execute -> action ->
#                    trigger); the period is the simple alternative for a
#                    table without them.
#   destination_max  bytes kept for the destination ("host:port" for TCP)
#   windows_max      communication windows kept
# state: 1 slot, [slot] a PushState(param, ...) made at boot (the settings
#   and the sending state). Nothing is persisted: a restart brings back the
#   boot values.
#
# TRANSPORT (send_destination_and_method):
#   transport_service TCP (0): destination "host:port" (ASCII), sent as a
#     TCP wrapper frame (link.wrapper.push_frame) from the logical device's
#     wPort to the push client's wPort (102 by convention).
#   HDLC (5): destination empty or one byte, the client address (default
#     102); sent as HDLC UI frames (link.hdlc.ui_frames) on the serial line.
#   message: 0 A-XDR encoded xDLMS APDU (the only one built here).
#
# TRIGGERS and SENDING, sans-IO. A push is *pending* after
#   trigger(meter, obj)       on demand (method push) or on an alarm (the
#                             port's or the alarm's call);
#   due(meter, obj, utc)      also triggers when utc crosses a multiple of
#                             period (the first call after boot only notes
#                             the period it is in).
# The port asks due(meter, obj, utc) about once a second (utc: the meter's
# time, clock.now(meter)); True means "send the notification now": the port
# encodes it (notify.Notifier), sends it and reports sent(meter, obj) or
# failed(meter, obj, utc). A pending push waits for a communication window
# (none configured: any time; windows are compared in the meter's local
# time, field by field, a field not specified (0xFF, year 0xFFFF) matching
# anything, day of week ignored; months and days must be plain numbers or
# 0xFF, no DST or last-day markers; a window whose start is after its end spans
# the wrap, e.g. 22:00..02:00 every day). When it may first go, a random
# delay of 0..randomisation_start_interval seconds is drawn from
# meter.random_bytes (none: no delay). A failure retries repetition_delay
# seconds later, up to number_of_retries times, then the push is given up
# with a log line. A trigger while a push is pending changes nothing (the
# values are read when it is sent). A window that closes before the first
# attempt means a new random delay in the next one.
# Cost: due() allocates nothing while no push is pending (but for the big
# ints of utc on MicroPython); drawing the delay allocates random_bytes'
# result; the window check a few big ints (the local time).

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.errors import DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1

# param fields
P_OBJECTS = const(0)
P_PERIOD = const(1)
P_DESTINATION_MAX = const(2)
P_WINDOWS_MAX = const(3)
# push object fields
O_CLASS = const(0)
O_LN = const(1)
O_ATTR = const(2)
O_DATA_INDEX = const(3)

# transport_service enum
TCP = const(0)
UDP = const(1)
FTP = const(2)
SMTP = const(3)
SMS = const(4)
HDLC = const(5)
MBUS = const(6)
ZIGBEE = const(7)
# message enum
MESSAGE_AXDR = const(0)
MESSAGE_XML = const(1)

PUSH_CLIENT = const(102)  # conventional push client SAP / wPort (0x66)

_WINDOW = const(24)  # start and end date-times, 12 bytes each
_ORDER = b"\x02\x03\x05\x06\x07"  # month, day, hour, minute, second
_clock = None  # the clock module, imported for the first window check


class PushState:
    # The run-time part of one Push setup object (its state slot).

    def __init__(self, param, service=TCP, destination=b"", message=MESSAGE_AXDR, randomisation=0, retries=0,
                 delay=0, windows=()):
        # windows: (start, end) pairs of 12-byte date-times
        self.dest = bytearray(param[P_DESTINATION_MAX])
        self.windows = bytearray(_WINDOW * param[P_WINDOWS_MAX])
        if len(destination) > len(self.dest) or len(windows) > param[P_WINDOWS_MAX]:
            raise ValueError("push setup: destination or windows larger than param allows")
        self.service = service
        self.message = message
        self.dest[0 : len(destination)] = destination
        self.dest_len = len(destination)
        for i in range(len(windows)):
            self.windows[i * _WINDOW : i * _WINDOW + 12] = windows[i][0]
            self.windows[i * _WINDOW + 12 : i * _WINDOW + _WINDOW] = windows[i][1]
        self.nwin = len(windows)
        self.randomisation = randomisation
        self.retries = retries
        self.delay = delay
        self.now = bytearray(12)  # the local time, for the window check
        # sending state
        self.pending = False
        self.attempts = 0  # failed attempts of the pending push
        self.next_at = None  # UTC of the next attempt; None: not drawn yet
        self.period_no = None  # due(): schedule period of the last call
        self.pushes = 0  # diagnostics: sent, given up
        self.given_up = 0

    def destination(self):
        # The destination as bytes (allocates: for the port's connect).
        return bytes(self.dest[0 : self.dest_len])


def state_of(meter, obj):
    return meter.state[obj[base.E_SLOT]]


def trigger(meter, obj):
    # Ask for a push (on demand, on an alarm). True when it is new.
    st = meter.state[obj[base.E_SLOT]]
    if st.pending:
        return False
    st.pending = True
    st.attempts = 0
    st.next_at = None
    return True


def _random_delay(meter, top):
    if top <= 0 or meter.random_bytes is None:
        return 0
    b = meter.random_bytes(3)
    return ((b[0] << 16) | (b[1] << 8) | b[2]) % (top + 1)


def resync(meter, obj, utc):
    # After the clock was set: the schedule period now running is the one of
    # utc (the jump itself triggers no scheduled push; the next boundary of
    # the new time does).
    st = meter.state[obj[base.E_SLOT]]
    period = obj[base.E_PARAM][P_PERIOD]
    if period and utc is not None:
        st.period_no = utc // period


def due(meter, obj, utc):
    # Should the port send this push now? (See TRIGGERS above.)
    if utc is None:
        return False
    st = meter.state[obj[base.E_SLOT]]
    period = obj[base.E_PARAM][P_PERIOD]
    if period:
        k = utc // period
        last = st.period_no
        st.period_no = k
        if last is not None and k != last:
            trigger(meter, obj)
    if not st.pending:
        return False
    if st.nwin and not in_window(meter, obj, utc):
        if st.attempts == 0:
            st.next_at = None  # a new random start in the next window
        return False
    if st.next_at is None:
        st.next_at = utc + _random_delay(meter, st.randomisation)
    return utc >= st.next_at


def sent(meter, obj):
    # The port sent the notification.
    st = meter.state[obj[base.E_SLOT]]
    st.pending = False
    st.attempts = 0
    st.next_at = None
    st.pushes += 1


def failed(meter, obj, utc):
    # The port could not send it: retry after repetition_delay, or give up
    # after number_of_retries retries. True when it will try again.
    st = meter.state[obj[base.E_SLOT]]
    st.attempts += 1
    if st.attempts > st.retries:
        st.pending = False
        st.next_at = None
        st.given_up += 1
        if meter.log is not None:
            meter.log("push: given up after %d attempts" % st.attempts)
        return False
    st.next_at = utc + st.delay
    return True


def _field_order(a, pa, b, pb):
    # Order of date-times a[pa:] and b[pb:] over year, month, day, hour,
    # minute, second: -1, 0, 1; a field either leaves unspecified is skipped.
    x = (a[pa] << 8) | a[pa + 1]
    y = (b[pb] << 8) | b[pb + 1]
    if x != y and x != 0xFFFF and y != 0xFFFF:
        return -1 if x < y else 1
    for k in _ORDER:
        x = a[pa + k]
        y = b[pb + k]
        if x != y and x != 0xFF and y != 0xFF:
            return -1 if x < y else 1
    return 0


def in_window(meter, obj, utc):
    # Is utc inside one of the communication windows (none: always)?
    st = meter.state[obj[base.E_SLOT]]
    if not st.nwin:
        return True
    global _clock
    if _clock is None:
        from dlms_micro.cosem import clock as _clock
    now = st.now
    _clock.put_local_time(meter, utc, now, 0)
    w = st.windows
    for i in range(st.nwin):
        s = i * _WINDOW
        e = s + 12
        after_start = _field_order(now, 0, w, s) >= 0
        before_end = _field_order(now, 0, w, e) <= 0
        if _field_order(w, s, w, e) <= 0:
            if after_start and before_end:
                return True
        elif after_start or before_end:
            return True
    return False


def _dt_ok(b, p):
    # A date-time a window may hold: month, day, hour, minute, second in
    # range or not specified (0xFF).
    m = b[p + 2]
    d = b[p + 3]
    return ((m == 0xFF or 1 <= m <= 12) and (d == 0xFF or 1 <= d <= 31) and (b[p + 5] < 24 or b[p + 5] == 0xFF)
            and (b[p + 6] < 60 or b[p + 6] == 0xFF) and (b[p + 7] < 60 or b[p + 7] == 0xFF))


class PushSetup(base.InterfaceClass):
    class_id = 40
    version = 0
    attribute_count = 7
    method_count = 1
    slots = SLOTS

    def get(self, ctx, obj, attr):
        if attr == 2:
            return self._objects(ctx, obj[base.E_PARAM][P_OBJECTS])
        st = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 3:
            pos = axdr.enc_structure(buf, pos, 3)
            pos = axdr.enc_enum(buf, pos, st.service)
            pos = axdr.enc_octet_string(buf, pos, st.dest, 0, st.dest_len)
            pos = axdr.enc_enum(buf, pos, st.message)
        elif attr == 4:
            pos = axdr.enc_array(buf, pos, st.nwin)
            w = st.windows
            for i in range(2 * st.nwin):
                if not i & 1:
                    pos = axdr.enc_structure(buf, pos, 2)
                pos = axdr.enc_octet_string(buf, pos, w, 12 * i, 12 * i + 12)
        elif attr == 5:
            pos = axdr.enc_long_unsigned(buf, pos, st.randomisation)
        elif attr == 6:
            pos = axdr.enc_unsigned(buf, pos, st.retries)
        elif attr == 7:
            pos = axdr.enc_long_unsigned(buf, pos, st.delay)
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def _objects(self, ctx, objs):
        # push_object_list, item by item (ctx.cursor: next item + 1)
        buf = ctx.buf
        pos = ctx.pos
        i = 0
        if ctx.cursor == 0:
            pos = axdr.enc_array(buf, pos, len(objs))
        else:
            i = ctx.cursor - 1
        limit = ctx.limit
        if limit > len(buf):
            limit = len(buf)
        while i < len(objs):
            o = objs[i]
            # structure(4) + long-unsigned + octet-string(6) + integer + long-unsigned
            if pos + 18 > limit:
                ctx.pos = pos
                ctx.cursor = i + 1
                return base.SUCCESS
            buf[pos] = axdr.STRUCTURE
            buf[pos + 1] = 4
            p = axdr.enc_long_unsigned(buf, pos + 2, o[O_CLASS])
            p = axdr.enc_octet_string(buf, p, o[O_LN])
            p = axdr.enc_integer(buf, p, o[O_ATTR])
            pos = axdr.enc_long_unsigned(buf, p, o[O_DATA_INDEX])
            i += 1
        ctx.pos = pos
        ctx.cursor = 0
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        st = ctx.meter.state[obj[base.E_SLOT]]
        r = ctx.r
        try:
            if attr == 3:
                return _set_destination(r, st)
            if attr == 4:
                return _set_windows(r, st)
            if attr == 5 or attr == 7:
                if r.peek() != axdr.LONG_UNSIGNED:
                    return base.TYPE_UNMATCHED
                if attr == 5:
                    st.randomisation = r.long_unsigned()
                else:
                    st.delay = r.long_unsigned()
                return base.SUCCESS
            if attr == 6:
                if r.peek() != axdr.UNSIGNED:
                    return base.TYPE_UNMATCHED
                st.retries = r.unsigned()
                return base.SUCCESS
        except DecodeError:
            return base.TYPE_UNMATCHED
        return base.READ_WRITE_DENIED

    def action(self, ctx, obj, method):
        if method != 1:
            return base.READ_WRITE_DENIED
        res = common.integer_param(ctx)
        if res:
            return res
        trigger(ctx.meter, obj)
        return base.SUCCESS


def _set_destination(r, st):
    if r.peek() != axdr.STRUCTURE or r.structure() != 3 or r.peek() != axdr.ENUM:
        return base.TYPE_UNMATCHED
    service = r.enum()
    if r.peek() != axdr.OCTET_STRING:
        return base.TYPE_UNMATCHED
    n = r.octet_string()
    p = r.mark
    if r.peek() != axdr.ENUM:
        return base.TYPE_UNMATCHED
    message = r.enum()
    if n > len(st.dest):
        return base.OTHER_REASON
    b = r.buf
    d = st.dest
    for i in range(n):
        d[i] = b[p + i]
    st.dest_len = n
    st.service = service
    st.message = message
    return base.SUCCESS


def _set_windows(r, st):
    # Checked whole first, then copied: a refused SET changes nothing.
    if r.peek() != axdr.ARRAY:
        return base.TYPE_UNMATCHED
    n = r.array()
    if n * _WINDOW > len(st.windows):
        return base.OTHER_REASON
    mark = r.pos
    w = st.windows
    for copy in range(2):
        r.pos = mark
        for i in range(n):
            if r.structure() != 2:
                return base.TYPE_UNMATCHED
            for k in range(2):
                p = common.read_date_time(r)
                if p < 0:
                    return base.TYPE_UNMATCHED
                b = r.buf
                if not copy:
                    if not _dt_ok(b, p):
                        return base.OTHER_REASON
                    continue
                q = i * _WINDOW + 12 * k
                for j in range(12):
                    w[q + j] = b[p + j]
    st.nwin = n
    return base.SUCCESS


PUSH_SETUP = PushSetup()
