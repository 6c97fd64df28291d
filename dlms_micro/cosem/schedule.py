# Single action schedule (class_id 22, version 0), Blue Book 4.5.7, and the
# local-time rules every time-driven object here shares (the Activity
# calendar in tariff.py uses them too).
#
#   attribute 2 executed_script  structure {script_logical_name
#                                octet-string, script_selector long-unsigned}
#   attribute 3 type             enum 1..5:
#                                  1 one execution_time, date wildcards allowed
#                                  2 n times, all the same time of day, no date
#                                    wildcards
#                                  3 n times, same time of day, wildcards
#                                  4 n times, times may differ, no wildcards
#                                  5 n times, times may differ, wildcards
#   attribute 4 execution_time   array of structure {time octet-string(4),
#                                date octet-string(5)}, the meter's local time
#   no methods
# All three take SETs (access rights decide who). The script must exist
# (a Script table in the meter holding that script identifier), the
# execution times must obey the type and fit the room: else OTHER_REASON; a
# wrong data type: TYPE_UNMATCHED. Changing the type checks the times held.
#
# param: (max_times,) the execution times the object has room for.
# state: 1 slot, a Schedule made at boot: Schedule(param, script_ln,
#   script_selector, type, times[, storage, key]), times a tuple of (time4,
#   date5) bytes; with a storage, what clients SET survives a restart.
#
# PATTERNS. time: hour, minute, second, hundredths; date: year (2 bytes),
# month, day of month, day of week. 0xFF (year 0xFFFF) is a wildcard: hour
# 0xFF every hour, minute 0xFF every minute; second 0xFF counts as 0 and
# hundredths are ignored (the schedule resolves whole seconds). Day 0xFE /
# 0xFD: last / second last day of the month; month 0xFD / 0xFE (DST
# end/begin) never match here.
#
# TICKING. tick(meter, obj, utc) is called by the port's loop every second
# or so with the meter's time (clock.now()). The object keeps the next UTC
# instant something can happen (the next execution, or at the latest the
# next multiple of 15 minutes, so that a DST change or a new time zone is
# seen at the quarter hour it happens on, where DST rules put it); a tick
# before that only compares two ints and allocates nothing. Otherwise the
# local time is computed and every execution time that fell in the local
# interval (high-water mark, now] fires its script once (its latest
# occurrence there), in time order: ticks may be sparse, an execution time is
# never skipped and never run twice.
# CLOCK CHANGES. The high-water mark is the latest local time already
# handled. The local time going back by up to MAX_BACK (2 h: the DST
# fallback hour, a small correction) keeps it: that stretch does not fire
# again. Going back further restarts from the new time (a clock corrected
# from a wrong date re-lives that interval and fires again). Going forward
# fires what the skipped interval held, each execution time once. The first
# tick after boot only takes note of the time (nothing is caught up).

from dlms_micro import axdr
from dlms_micro.cosem import base, common, script

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1
DAY = const(86400)
QUARTER = const(900)
MAX_BACK = const(7200)
CATCH_UP_DAYS = const(400)  # how far back a forward jump is searched

_clock = None


def _clk():
    global _clock
    if _clock is None:
        from dlms_micro.cosem import clock

        _clock = clock
    return _clock


# ------------------------------------------------------------ local time


def local_seconds(meter, utc):
    # The meter's local time at utc as seconds since 1970-01-01 00:00 local
    # (DST included). Without a Clock in the table: utc.
    c = _clk()
    e = c.meter_clock(meter)
    if e is None:
        return utc
    return utc + c.local_offset(meter, e, utc) * 60


def date_matches(d, p, z):
    # Does the date pattern at d[p:p+5] name local day z (days since 1970)?
    c = _clk()
    ymd = c.civil_from_days(z)
    y = ymd // 10000
    m = (ymd // 100) % 100
    dd = ymd % 100
    py = (d[p] << 8) | d[p + 1]
    if py != 0xFFFF and py != y:
        return False
    pm = d[p + 2]
    if pm != 0xFF and pm != m:
        return False
    pd = d[p + 3]
    if pd == 0xFE:
        if dd != c.days_in_month(y, m):
            return False
    elif pd == 0xFD:
        if dd != c.days_in_month(y, m) - 1:
            return False
    elif pd != 0xFF and pd != dd:
        return False
    w = d[p + 4]
    return w == 0xFF or w == c.day_of_week(z)


def date_ok(d, p, wild):
    # Field ranges of a date pattern; wild False: no wildcard allowed.
    y = (d[p] << 8) | d[p + 1]
    m = d[p + 2]
    dd = d[p + 3]
    w = d[p + 4]
    if not wild:
        return y != 0xFFFF and 1 <= m <= 12 and 1 <= dd <= 31 and (1 <= w <= 7 or w == 0xFF)
    return (1 <= m <= 12 or m == 0xFF) and (1 <= dd <= 31 or dd >= 0xFD) and (1 <= w <= 7 or w == 0xFF)


def time_ok(d, p):
    # Field ranges of a time pattern (wildcards allowed).
    h = d[p]
    m = d[p + 1]
    s = d[p + 2]
    hs = d[p + 3]
    return (h <= 23 or h == 0xFF) and (m <= 59 or m == 0xFF) and (s <= 59 or s == 0xFF) and (hs <= 99 or hs == 0xFF)


def next_sod(d, p, x):
    # The first second of the day after x (-1: from midnight on) that the
    # time pattern at d[p:p+4] names, or -1.
    hp = d[p]
    mp = d[p + 1]
    s = d[p + 2]
    if s == 0xFF:
        s = 0
    if hp == 0xFF:
        h = x // 3600 if x >= 0 else 0
        hend = 23
    else:
        h = hp
        hend = hp
    while h <= hend:
        if mp == 0xFF:
            b = h * 3600 + s
            m = 0 if b > x else (x - b) // 60 + 1
            if m <= 59:
                return b + 60 * m
        else:
            v = h * 3600 + mp * 60 + s
            if v > x:
                return v
        h += 1
    return -1


def prev_sod(d, p, x):
    # The last second of the day at or before x that the time pattern at
    # d[p:p+4] names, or -1.
    hp = d[p]
    mp = d[p + 1]
    s = d[p + 2]
    if s == 0xFF:
        s = 0
    if hp == 0xFF:
        h = x // 3600
        hend = 0
    else:
        h = hp
        hend = hp
    while h >= hend:
        if mp == 0xFF:
            b = h * 3600 + s
            if b <= x:
                m = (x - b) // 60
                return b + 60 * (m if m < 59 else 59)
        else:
            v = h * 3600 + mp * 60 + s
            if v <= x:
                return v
        h -= 1
    return -1


NONE = const(-0x20000000)  # no occurrence (a small int below any offset used)


def latest(d, tp, dp, lz, ls, hz, hs):
    # The latest local time in (lo, hi] named by the time pattern at d[tp:]
    # and the date pattern at d[dp:], where lo is second ls of local day lz
    # and hi second hs of day hz: as seconds from the start of day hz (<= 0
    # unless on day hz), or NONE. Searches CATCH_UP_DAYS days back at most.
    # Day numbers and seconds of the day keep every value a small int.
    z = hz
    x = hs
    zlo = lz if lz >= hz - CATCH_UP_DAYS else hz - CATCH_UP_DAYS
    while z >= zlo:
        if date_matches(d, dp, z):
            sod = prev_sod(d, tp, x)
            if sod >= 0:
                if z > lz or sod > ls:
                    return (z - hz) * DAY + sod
                return NONE
        z -= 1
        x = DAY - 1
    return NONE


def earliest(d, tp, dp, lz, ls, hz, hs):
    # The earliest local time in (lo, hi] the patterns name, as seconds
    # from the start of day lz, or NONE (for short intervals: it walks the
    # days from lz to hz).
    z = lz
    x = ls
    while z <= hz:
        if date_matches(d, dp, z):
            sod = next_sod(d, tp, x)
            if sod >= 0:
                if z < hz or sod <= hs:
                    return (z - lz) * DAY + sod
                return NONE
        z += 1
        x = -1
    return NONE


class Ticker:
    # The time-keeping part of a time-driven object's state.
    def __init__(self):
        self.last = None  # utc of the last tick
        self.due = None  # utc before which a tick has nothing to do
        self.hz = None  # local high-water mark: day (None before the first tick)
        self.hs = 0  # and second of the day

    def quiet(self, utc):
        # True when the tick at utc has nothing to do (no allocation).
        last = self.last
        due = self.due
        if last is None or due is None or utc < last or utc >= due:
            return False
        self.last = utc
        return True

    def wake(self):
        # Something changed (a SET, an activation): the next tick looks.
        self.due = None

    def mark(self, z, s):
        self.hz = z
        self.hs = s

    def since(self, z, s):
        # seconds from the high-water mark to second s of local day z
        return (z - self.hz) * DAY + s - self.hs


def script_ok(meter, d, p, selector):
    # Is there a Script table named d[p:p+6] holding script `selector`?
    e = meter.find(9, d, p)
    return e is not None and script.has_script(meter, e, selector)


# ------------------------------------------------------------ the class

_TIME_REC = const(9)  # time (4) + date (5)


class Schedule(script.Stored):
    # The run-time part of one Single action schedule (its state slot);
    # storage, key: optional persistence of the attributes (script.Stored).
    def __init__(self, param, script_ln=b"\x00\x00\x00\x00\x00\x00", script_selector=0, type_=1, times=(),
                 storage=None, key=None):
        self.max = param[0]
        self.script = bytearray(script_ln)
        self.selector = script_selector
        self.type = type_
        self.times = bytearray(self.max * _TIME_REC)
        self.count = 0
        self.occ = [0] * self.max  # latest occurrences found by a tick
        self.ticker = Ticker()
        if len(times) > self.max:
            raise ValueError("more execution times than max_times")
        for i in range(len(times)):
            t, dt = times[i]
            self.times[i * _TIME_REC : i * _TIME_REC + 4] = t
            self.times[i * _TIME_REC + 4 : i * _TIME_REC + 9] = dt
        self.count = len(times)
        if not _times_ok(self.times, self.count, type_):
            raise ValueError("execution times do not obey type %d" % type_)
        self.persist(storage, key)

    def record(self):
        # script (6), selector (2), type, count, the execution times
        n = self.count * _TIME_REC
        return bytes(self.script) + bytes((self.selector >> 8, self.selector & 0xFF, self.type, self.count)) + \
            bytes(self.times[0:n])

    def restore(self, rec):
        if len(rec) < 10:
            return False
        n = rec[9]
        if n > self.max or len(rec) != 10 + n * _TIME_REC or not _times_ok(rec[10:], n, rec[8]):
            return False
        self.script[0:6] = rec[0:6]
        self.selector = script.u16(rec, 6)
        self.type = rec[8]
        self.count = n
        self.times[0 : n * _TIME_REC] = rec[10:]
        return True


def _times_ok(d, n, type_):
    # Do n execution time records obey the schedule type?
    if type_ < 1 or type_ > 5 or (type_ == 1 and n > 1):
        return False
    wild = type_ == 1 or type_ == 3 or type_ == 5
    for i in range(n):
        p = i * _TIME_REC
        if not time_ok(d, p) or not date_ok(d, p + 4, wild):
            return False
        if type_ == 2 or type_ == 3:  # every time of day the same as the first
            for k in range(4):
                if d[p + k] != d[k]:
                    return False
    return True


def tick(meter, obj, utc):
    # The port's periodic call (see TICKING). True when a script ran.
    if utc is None:
        return False
    sc = meter.state[obj[base.E_SLOT]]
    tk = sc.ticker
    if tk.quiet(utc):
        return False
    cur = local_seconds(meter, utc)
    cz = cur // DAY  # local day and second of the day: small ints from here
    cs = cur % DAY
    fired = False
    if tk.hz is None:
        tk.mark(cz, cs)
    else:
        dt = tk.since(cz, cs)
        if dt < -MAX_BACK:
            tk.mark(cz, cs)
        elif dt > 0:
            fired = _fire(meter, sc, tk.hz, tk.hs, cz, cs)
            tk.mark(cz, cs)
    # the next look: the next execution or the next quarter hour (local
    # quarter hours are UTC ones: time zones and DST move by whole quarters)
    wait = QUARTER - cs % QUARTER
    ahead = -tk.since(cz, cs)  # >= 0: the high-water mark ahead of now (DST fallback)
    ez = tk.hz + (tk.hs + QUARTER) // DAY
    es = (tk.hs + QUARTER) % DAY
    d = sc.times
    for i in range(sc.count):
        p = i * _TIME_REC
        t = earliest(d, p, p + 4, tk.hz, tk.hs, ez, es)
        if t != NONE:
            t = t - tk.hs + ahead  # from now
            if t < wait:
                wait = t
    tk.last = utc
    tk.due = utc + wait
    return fired


def _fire(meter, sc, lz, ls, hz, hs):
    # Run the script once for each execution time that fell in (second ls
    # of day lz, second hs of day hz], in time order.
    d = sc.times
    occ = sc.occ
    n = sc.count
    for i in range(n):
        p = i * _TIME_REC
        occ[i] = latest(d, p, p + 4, lz, ls, hz, hs)
    fired = False
    while True:
        k = -1
        for i in range(n):
            if occ[i] != NONE and (k < 0 or occ[i] < occ[k]):
                k = i
        if k < 0:
            return fired
        t = occ[k]
        for i in range(n):  # execution times naming the same instant run once
            if occ[i] == t:
                occ[i] = NONE
        script.execute(meter, sc.script, sc.selector)
        fired = True


class SingleActionSchedule(base.InterfaceClass):
    class_id = 22
    version = 0
    attribute_count = 4
    method_count = 0
    slots = SLOTS

    def get(self, ctx, obj, attr):
        sc = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_octet_string(buf, pos, sc.script)
            pos = axdr.enc_long_unsigned(buf, pos, sc.selector)
        elif attr == 3:
            pos = axdr.enc_enum(buf, pos, sc.type)
        elif attr == 4:
            d = sc.times
            pos = axdr.enc_array(buf, pos, sc.count)
            for i in range(sc.count):
                p = i * _TIME_REC
                pos = axdr.enc_structure(buf, pos, 2)
                pos = axdr.enc_octet_string(buf, pos, d, p, p + 4)
                pos = axdr.enc_octet_string(buf, pos, d, p + 4, p + 9)
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        meter = ctx.meter
        sc = meter.state[obj[base.E_SLOT]]
        r = ctx.r
        if attr == 2:
            if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.OCTET_STRING:
                return base.TYPE_UNMATCHED
            n = r.octet_string()
            p = r.mark
            if r.peek() != axdr.LONG_UNSIGNED:
                return base.TYPE_UNMATCHED
            sel = r.long_unsigned()
            if n != 6 or not script_ok(meter, r.buf, p, sel):
                return base.OTHER_REASON
            b = r.buf
            for i in range(6):
                sc.script[i] = b[p + i]
            sc.selector = sel
            sc.save()
            return base.SUCCESS
        if attr == 3:
            if r.peek() != axdr.ENUM:
                return base.TYPE_UNMATCHED
            t = r.enum()
            if not _times_ok(sc.times, sc.count, t):
                return base.OTHER_REASON
            sc.type = t
            sc.ticker.wake()
            sc.save()
            return base.SUCCESS
        if attr == 4:
            return _set_times(r, sc)
        return base.READ_WRITE_DENIED


def _set_times(r, sc):
    # execution_time: checked in one pass, stored in a second one
    if r.peek() != axdr.ARRAY:
        return base.TYPE_UNMATCHED
    start = r.pos
    n = r.array()
    if n > sc.max:
        return base.OTHER_REASON
    b = r.buf
    for i in range(n):
        if r.peek() != axdr.STRUCTURE or r.structure() != 2:
            return base.TYPE_UNMATCHED
        if r.peek() != axdr.OCTET_STRING or r.octet_string() != 4:
            return base.TYPE_UNMATCHED
        tp = r.mark
        if r.peek() != axdr.OCTET_STRING or r.octet_string() != 5:
            return base.TYPE_UNMATCHED
        dp = r.mark
        if not time_ok(b, tp) or not date_ok(b, dp, True):
            return base.OTHER_REASON
    # the type rules, on a copy made in place: store, then check, restore
    # the old times when they fail
    end = r.pos
    r.pos = start
    r.array()
    old = bytes(sc.times[0 : sc.count * _TIME_REC])
    d = sc.times
    for i in range(n):
        r.structure()
        r.octet_string()
        p = r.mark
        q = i * _TIME_REC
        for k in range(4):
            d[q + k] = b[p + k]
        r.octet_string()
        p = r.mark
        for k in range(5):
            d[q + 4 + k] = b[p + k]
    r.pos = end
    if not _times_ok(d, n, sc.type):
        d[0 : len(old)] = old
        return base.OTHER_REASON
    sc.count = n
    sc.ticker.wake()
    sc.save()
    return base.SUCCESS


SINGLE_ACTION_SCHEDULE = SingleActionSchedule()
