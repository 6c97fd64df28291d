# Time of use: Register activation (class_id 6, version 0, Blue Book 4.3.5),
# Special days table (class_id 11, version 0, 4.5.6) and Activity calendar
# (class_id 20, version 0, 4.5.5).
#
# HOW A TARIFF SWITCHES. The Activity calendar's active day profile holds
# actions {start_time, script_logical_name, script_selector}; when the
# meter's local time passes a start time, the calendar executes that script
# (script.execute): usually the tariffication Script table 0.0.10.0.100.255,
# whose script n writes active_mask := "Tn" on a Register activation object.
# The metering code adds each energy increment with add_energy(meter, ra,
# delta), which adds it to every register of the active mask (e.g. the rate
# registers 1.0.1.8.1.255 .. 1.0.1.8.4.255).
#
# PERSISTENCE (optional, each state object: storage, key; script.Stored).
# What clients change (the passive calendar, the activation time, an
# activation; special days; masks, registers and the active mask; the
# scripts' own effects included) is written whole to storage.put(key, ...)
# at once and restored at boot. The tariff scripts change the active mask
# at each switch: a few small writes a day. After a restart the calendar's
# first tick runs the action in force anyway.
#
# ---------------------------------------------------- Register activation
#   attribute 2 register_assignment  array of structure {class_id
#                                    long-unsigned, logical_name octet-string}
#   attribute 3 mask_list            array of structure {mask_name
#                                    octet-string, index_list array of
#                                    unsigned (1-based indexes into
#                                    register_assignment)}
#   attribute 4 active_mask          octet-string, a mask_name
#   method 1 add_register (structure {class_id, logical_name})
#   method 2 add_mask (structure {mask_name, index_list}); a mask of the
#            same name is replaced
#   method 3 delete_mask (octet-string mask_name); not the active mask (the
#            energy would go to no register): OTHER_REASON
# Attributes 2 and 3 change through the methods only (SET:
# READ_WRITE_DENIED); SET active_mask names a mask of the list. A register
# must be a Register or Extended register of the table (class 3 or 4), not
# assigned yet; indexes must name assigned registers; names fit the room;
# the lists have room left: else OTHER_REASON. Wrong types: TYPE_UNMATCHED.
# param: (max_registers, max_masks, max_indexes, name_room)
# state: 1 slot, RegisterActivation(param, registers, masks, active[,
#   storage, key]) made at boot: registers ((class_id, ln), ...), masks
#   ((name, (index, ...)), ...).
# add_energy(meter, obj, delta) adds delta to the value (state[slot]) of
#   every register of the active mask; the slots are looked up once after
#   each change, then a call allocates nothing (beyond a value >= 2**30).
#
# ---------------------------------------------------- Special days table
#   attribute 2 entries   array of structure {index long-unsigned,
#                         specialday_date octet-string(5) date (wildcards:
#                         year 0xFFFF every year, day 0xFE last day of the
#                         month, day of week), day_id unsigned}
#   method 1 insert (an entry; one with the same index is replaced)
#   method 2 delete (long-unsigned index)
# Entries are kept in index order; SET entries replaces them all. A day_id
# must name a day profile of the active calendar of the Activity calendar
# that uses this table (when there is one); the date's fields must be in
# range; the table has room left; delete names an index held: else
# OTHER_REASON. A special day replaces the week profile's day for the days
# its date names; the first entry (lowest index) naming a day wins.
# param: (max_entries,)
# state: 1 slot, SpecialDays(param, entries[, storage, key]) made at boot:
#   entries ((index, date5, day_id), ...).
#
# ---------------------------------------------------- Activity calendar
#   attribute 2 / 6   calendar_name_active / _passive       octet-string
#   attribute 3 / 7   season_profile_active / _passive      array of structure
#                     {season_profile_name octet-string, season_start
#                     octet-string(12) date-time (year 0xFFFF: every year),
#                     week_name octet-string}
#   attribute 4 / 8   week_profile_table_active / _passive  array of structure
#                     {week_profile_name octet-string, monday .. sunday
#                     unsigned day_id}
#   attribute 5 / 9   day_profile_table_active / _passive   array of structure
#                     {day_id unsigned, day_schedule array of structure
#                     {start_time octet-string(4) time, script_logical_name
#                     octet-string, script_selector long-unsigned}}
#   attribute 10      activate_passive_calendar_time  octet-string(12)
#   method 1 activate_passive_calendar (integer(0))
# The active attributes are read-only (they change by activation); the
# passive ones and the activation time take SETs.
# CHECKS. Each SET of a passive attribute is checked on its own, in one pass
# into a scratch buffer that replaces the stored value only when all is
# well: seasons strictly in order of season_start (the Blue Book sorts them;
# two seasons starting at the same time overlap), month and day given
# (wildcards only for the year, day 0xFE / 0xFD last / second last day),
# start times of a day strictly increasing and fully given (hour, minute;
# second 0xFF counts as 0), day ids unique, each action's script an existing
# Script table and script identifier, the value fits its room. The
# references between the attributes (a season's week name in the week
# table, a week's day ids in the day table) are checked when the passive
# calendar is activated: a client writes the attributes one by one, seasons
# first (Gurux writes them in attribute order), so they may point forward
# until the set is complete. Activation of an inconsistent calendar is
# refused with OTHER_REASON (the method) or logged and dropped (the
# activation time); the active calendar stays. A bad value: OTHER_REASON; a
# wrong type or shape: TYPE_UNMATCHED.
# ACTIVATION copies the passive attributes to the active ones (the passive
# ones stay), runs the action in force in the new calendar at once, and
# clears activate_passive_calendar_time (to not specified: 0xFF fields,
# deviation 0x8000). An
# activation time must name one instant (no wildcards; its deviation, if
# given, is honoured, else the meter's local time) or leave date and time
# all 0xFF (never; kept as the not-specified form whatever its deviation).
# EVALUATION. The day profile of local day z is the special day's, if the
# special days table (param) has one for z naming a day id of the active
# day table, else the week profile's for the weekday of z, the week named
# by the season in force at the start of the day (the latest season_start
# at or before local midnight; before the first season of a year, the last
# one of the year before: seasons cycle). The action in force at local
# time t is the last one of t's day profile starting at or before t, or,
# before the first of them, the last action of the day before.
# TICKING. tick(meter, obj, utc) as in schedule.py: a tick with nothing due
# compares two ints and allocates nothing; otherwise the calendar executes
# each action whose start fell in (high-water mark, now], in order, then the
# action in force if that is not the one it ran last (first tick after boot,
# a clock set forward by more than a day or back by more than MAX_BACK, an
# activation, a change of special days). Within MAX_BACK back (the DST
# fallback hour) nothing runs again: the tariff of the later time stays
# until the clock passes the next start.
# param: (special_days_ln or None, name_room, season_room, week_room,
#   day_room): the bytes each stored attribute may take (its A-XDR encoding:
#   a season with 4-byte names takes 27 bytes, a week 19 + name, an action
#   19, a day profile 6 + its actions).
# state: 1 slot, Calendar(param, name, seasons, weeks, days[, storage,
#   key]) made at boot
#   (both calendars start with that content): seasons ((name, start12,
#   week_name), ...), weeks ((name, (d1, ..., d7)), ...), days ((day_id,
#   ((start4, script_ln, selector), ...)), ...).

from dlms_micro import axdr
from dlms_micro.cosem import base, common, schedule, script
from dlms_micro.errors import EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1
DAY = const(86400)
# activate_passive_calendar_time "not specified" (never): every field 0xFF,
# deviation 0x8000
_NEVER = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"

# ======================================================== Register activation

_REG = const(8)  # register record: class_id (2), logical name (6)


class RegisterActivation(script.Stored):
    # The run-time part of one Register activation object; storage, key:
    # optional persistence (script.Stored).
    def __init__(self, param, registers=(), masks=(), active=b"", storage=None, key=None):
        self.max_regs, self.max_masks, self.max_idx, self.name_room = param
        self.regs = bytearray(self.max_regs * _REG)
        self.nregs = 0
        self.rec = 2 + self.name_room + self.max_idx  # name len, name, count, indexes
        self.masks = bytearray(self.max_masks * self.rec)
        self.nmasks = 0
        self.active = bytearray(self.name_room)
        self.nactive = 0
        self.slots = [0] * self.max_idx  # state slots of the active mask's registers
        self.nslots = -1  # -1: to be looked up
        for cid, ln in registers:
            self._add_reg(cid, ln, 0)
        for name, idx in masks:
            if not self._put_mask(name, 0, len(name), idx, 0, len(idx)):
                raise ValueError("mask %r does not fit or names no register" % (name,))
        if not self.set_active(active, 0, len(active)):
            raise ValueError("active mask %r not in the mask list" % (active,))
        self.persist(storage, key)

    def record(self):
        return bytes((self.nregs, self.nmasks, self.nactive)) + bytes(self.regs) + bytes(self.masks) + \
            bytes(self.active)

    def restore(self, rec):
        a = len(self.regs)
        b = len(self.masks)
        if len(rec) != 3 + a + b + len(self.active) or rec[0] > self.max_regs or rec[1] > self.max_masks or \
                rec[2] > self.name_room:
            return False
        self.nregs = rec[0]
        self.nmasks = rec[1]
        self.nactive = rec[2]
        self.regs[:] = rec[3 : 3 + a]
        self.masks[:] = rec[3 + a : 3 + a + b]
        self.active[:] = rec[3 + a + b :]
        self.nslots = -1
        return True

    def _add_reg(self, cid, b, p):
        if self.nregs >= self.max_regs:
            raise ValueError("more registers than max_registers")
        q = self.nregs * _REG
        self.regs[q] = cid >> 8
        self.regs[q + 1] = cid & 0xFF
        for i in range(6):
            self.regs[q + 2 + i] = b[p + i]
        self.nregs += 1
        self.nslots = -1

    def find_mask(self, b, p, n):
        # Record offset of the mask named b[p:p+n], or -1.
        m = self.masks
        for i in range(self.nmasks):
            q = i * self.rec
            if m[q] == n and _same(m, q + 1, b, p, n):
                return q
        return -1

    def _put_mask(self, name, p, n, idx, ip, k):
        # Add or replace the mask named name[p:p+n] with the k indexes
        # idx[ip:ip+k]. False when it does not fit or an index is bad.
        if n > self.name_room or k > self.max_idx:
            return False
        for i in range(k):
            if not 1 <= idx[ip + i] <= self.nregs:
                return False
        q = self.find_mask(name, p, n)
        if q < 0:
            if self.nmasks >= self.max_masks:
                return False
            q = self.nmasks * self.rec
            self.nmasks += 1
        m = self.masks
        m[q] = n
        for i in range(n):
            m[q + 1 + i] = name[p + i]
        c = q + 1 + self.name_room
        m[c] = k
        for i in range(k):
            m[c + 1 + i] = idx[ip + i]
        self.nslots = -1
        return True

    def set_active(self, b, p, n):
        if n and self.find_mask(b, p, n) < 0:
            return False
        for i in range(n):
            self.active[i] = b[p + i]
        self.nactive = n
        self.nslots = -1
        return True

    def resolve(self, meter):
        # Look up the state slots of the active mask's registers.
        self.nslots = 0
        q = self.find_mask(self.active, 0, self.nactive) if self.nactive else -1
        if q < 0:
            return
        m = self.masks
        c = q + 1 + self.name_room
        regs = self.regs
        for i in range(m[c]):
            r = (m[c + 1 + i] - 1) * _REG
            e = meter.find((regs[r] << 8) | regs[r + 1], regs, r + 2)
            if e is not None and e[base.E_SLOT] >= 0:
                self.slots[self.nslots] = e[base.E_SLOT]
                self.nslots += 1


def _same(a, pa, b, pb, n):
    for i in range(n):
        if a[pa + i] != b[pb + i]:
            return False
    return True


def add_energy(meter, obj, delta):
    # Add delta to the value of every register of the active mask of the
    # Register activation entry obj.
    ra = meter.state[obj[base.E_SLOT]]
    if ra.nslots < 0:
        ra.resolve(meter)
    st = meter.state
    slots = ra.slots
    for i in range(ra.nslots):
        s = slots[i]
        st[s] += delta


class RegisterActivationClass(base.InterfaceClass):
    class_id = 6
    version = 0
    attribute_count = 4
    method_count = 3
    slots = SLOTS

    def get(self, ctx, obj, attr):
        ra = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            regs = ra.regs
            pos = axdr.enc_array(buf, pos, ra.nregs)
            for i in range(ra.nregs):
                q = i * _REG
                pos = axdr.enc_structure(buf, pos, 2)
                pos = axdr.enc_long_unsigned(buf, pos, (regs[q] << 8) | regs[q + 1])
                pos = axdr.enc_octet_string(buf, pos, regs, q + 2, q + _REG)
        elif attr == 3:
            m = ra.masks
            pos = axdr.enc_array(buf, pos, ra.nmasks)
            for i in range(ra.nmasks):
                q = i * ra.rec
                pos = axdr.enc_structure(buf, pos, 2)
                pos = axdr.enc_octet_string(buf, pos, m, q + 1, q + 1 + m[q])
                c = q + 1 + ra.name_room
                pos = axdr.enc_array(buf, pos, m[c])
                for k in range(m[c]):
                    pos = axdr.enc_unsigned(buf, pos, m[c + 1 + k])
        elif attr == 4:
            pos = axdr.enc_octet_string(buf, pos, ra.active, 0, ra.nactive)
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        if attr != 4:
            return base.READ_WRITE_DENIED
        r = ctx.r
        if r.peek() != axdr.OCTET_STRING:
            return base.TYPE_UNMATCHED
        n = r.octet_string()
        ra = ctx.meter.state[obj[base.E_SLOT]]
        if n > ra.name_room or not ra.set_active(r.buf, r.mark, n):
            return base.OTHER_REASON
        ra.save()
        return base.SUCCESS

    def action(self, ctx, obj, method):
        ra = ctx.meter.state[obj[base.E_SLOT]]
        r = ctx.r
        b = r.buf
        if not ctx.has_data:
            return base.TYPE_UNMATCHED if 1 <= method <= 3 else base.READ_WRITE_DENIED
        if method == 1:  # add_register
            if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.LONG_UNSIGNED:
                return base.TYPE_UNMATCHED
            cid = r.long_unsigned()
            if r.peek() != axdr.OCTET_STRING:
                return base.TYPE_UNMATCHED
            n = r.octet_string()
            p = r.mark
            if n != 6 or (cid != 3 and cid != 4) or ctx.meter.find(cid, b, p) is None:
                return base.OTHER_REASON
            if ra.nregs >= ra.max_regs:
                return base.OTHER_REASON
            for i in range(ra.nregs):
                q = i * _REG
                if ((ra.regs[q] << 8) | ra.regs[q + 1]) == cid and _same(ra.regs, q + 2, b, p, 6):
                    return base.OTHER_REASON  # assigned already
            ra._add_reg(cid, b, p)
            ra.save()
            return base.SUCCESS
        if method == 2:  # add_mask
            if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.OCTET_STRING:
                return base.TYPE_UNMATCHED
            n = r.octet_string()
            p = r.mark
            if r.peek() != axdr.ARRAY:
                return base.TYPE_UNMATCHED
            k = r.array()
            ip = r.pos
            for i in range(k):  # unsigned elements: 2 bytes each, values at ip + 1 + 2i
                if r.peek() != axdr.UNSIGNED:
                    return base.TYPE_UNMATCHED
                r.unsigned()
            if not _put_mask_strided(ra, b, p, n, ip, k):
                return base.OTHER_REASON
            ra.save()
            return base.SUCCESS
        if method == 3:  # delete_mask
            if r.peek() != axdr.OCTET_STRING:
                return base.TYPE_UNMATCHED
            n = r.octet_string()
            q = ra.find_mask(b, r.mark, n)
            if q < 0:
                return base.OTHER_REASON
            if n == ra.nactive and _same(b, r.mark, ra.active, 0, n):
                return base.OTHER_REASON  # the active mask: the energy would go nowhere
            m = ra.masks
            end = ra.nmasks * ra.rec
            for i in range(q, end - ra.rec):
                m[i] = m[i + ra.rec]
            ra.nmasks -= 1
            ra.nslots = -1
            ra.save()
            return base.SUCCESS
        return base.READ_WRITE_DENIED


def _put_mask_strided(ra, b, p, n, ip, k):
    # add_mask from a request: the indexes are tagged unsigned elements
    # (tag, value) at b[ip:]; gather them first (a mask holds few).
    if k > ra.max_idx:
        return False
    idx = bytearray(k)
    for i in range(k):
        idx[i] = b[ip + 1 + 2 * i]
    return ra._put_mask(b, p, n, idx, 0, k)


REGISTER_ACTIVATION = RegisterActivationClass()

# ======================================================== Special days table

_SD = const(8)  # entry record: index (2), date (5), day_id (1)


class SpecialDays(script.Stored):
    # The run-time part of one Special days table; storage, key: optional
    # persistence (script.Stored).
    def __init__(self, param, entries=(), storage=None, key=None):
        self.max = param[0]
        self.d = bytearray(self.max * _SD)
        self.n = 0
        for index, date, day_id in entries:
            if self.insert(index, date, 0, day_id) != base.SUCCESS:
                raise ValueError("special day %d does not fit or has a bad date" % index)
        self.persist(storage, key)

    def record(self):
        return bytes((self.n >> 8, self.n & 0xFF)) + bytes(self.d[0 : self.n * _SD])

    def restore(self, rec):
        n = script.u16(rec, 0) if len(rec) >= 2 else -1
        if n < 0 or n > self.max or len(rec) != 2 + n * _SD:
            return False
        self.d[0 : n * _SD] = rec[2:]
        self.n = n
        return True

    def find(self, index):
        # record offset of the entry with this index, or -1
        d = self.d
        for i in range(self.n):
            q = i * _SD
            if ((d[q] << 8) | d[q + 1]) == index:
                return q
        return -1

    def insert(self, index, b, p, day_id):
        if not schedule.date_ok(b, p, True):
            return base.OTHER_REASON
        d = self.d
        q = self.find(index)
        if q < 0:
            if self.n >= self.max:
                return base.OTHER_REASON
            # keep index order: shift the later entries up one record
            i = self.n
            while i > 0 and ((d[(i - 1) * _SD] << 8) | d[(i - 1) * _SD + 1]) > index:
                for k in range(_SD):
                    d[i * _SD + k] = d[(i - 1) * _SD + k]
                i -= 1
            q = i * _SD
            self.n += 1
        d[q] = index >> 8
        d[q + 1] = index & 0xFF
        for k in range(5):
            d[q + 2 + k] = b[p + k]
        d[q + 7] = day_id
        return base.SUCCESS

    def delete(self, index):
        q = self.find(index)
        if q < 0:
            return base.OTHER_REASON
        d = self.d
        end = self.n * _SD
        for i in range(q, end - _SD):
            d[i] = d[i + _SD]
        self.n -= 1
        return base.SUCCESS

    def day_id(self, z):
        # day id of the first entry naming local day z, or -1
        d = self.d
        for i in range(self.n):
            q = i * _SD
            if schedule.date_matches(d, q + 2, z):
                return d[q + 7]
        return -1


def _read_fixed(r, tag, n):
    # An n-byte date / time sent as octet-string(n) or with its own tag:
    # the offset of its bytes in r.buf, or -1 (the element is then skipped).
    t = r.peek()
    if t == axdr.OCTET_STRING:
        p = r.pos
        r.u8()
        if r.length() == n:
            return r._take(n, "date/time")
        r.pos = p
    elif t == tag:
        r.u8()
        return r._take(n, "date/time")
    r.skip()
    return -1


def _read_entry(r):
    # A spec_day_entry at r: (result, index, date offset, day_id).
    if r.peek() != axdr.STRUCTURE or r.structure() != 3 or r.peek() != axdr.LONG_UNSIGNED:
        return base.TYPE_UNMATCHED, 0, 0, 0
    index = r.long_unsigned()
    p = _read_fixed(r, axdr.DATE, 5)
    if p < 0 or r.peek() != axdr.UNSIGNED:
        return base.TYPE_UNMATCHED, 0, 0, 0
    return base.SUCCESS, index, p, r.unsigned()


def _calendar_of(meter, obj):
    # The Activity calendar entry using special days table obj, or None.
    ln = obj[base.E_LN]
    for e in meter.table:
        if e[base.E_CLASS] == 20:
            p = e[base.E_PARAM]
            if p[0] is not None and _same(p[0], 0, ln, 0, 6):
                return e
    return None


def _day_known(meter, cal_obj, day_id):
    if cal_obj is None:
        return True
    return _day_actions(meter.state[cal_obj[base.E_SLOT]], A_DAYS, day_id) >= 0


def _changed(meter, cal_obj):
    if cal_obj is not None:
        cal = meter.state[cal_obj[base.E_SLOT]]
        cal.cur_day = None
        cal.ticker.wake()


class SpecialDaysTable(base.InterfaceClass):
    class_id = 11
    version = 0
    attribute_count = 2
    method_count = 2
    slots = SLOTS

    def get(self, ctx, obj, attr):
        if attr != 2:
            return base.READ_WRITE_DENIED
        sd = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        d = sd.d
        pos = axdr.enc_array(buf, ctx.pos, sd.n)
        for i in range(sd.n):
            q = i * _SD
            pos = axdr.enc_structure(buf, pos, 3)
            pos = axdr.enc_long_unsigned(buf, pos, (d[q] << 8) | d[q + 1])
            pos = axdr.enc_octet_string(buf, pos, d, q + 2, q + 7)
            pos = axdr.enc_unsigned(buf, pos, d[q + 7])
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        # entries: all replaced, after every entry has been checked
        if attr != 2:
            return base.READ_WRITE_DENIED
        meter = ctx.meter
        sd = meter.state[obj[base.E_SLOT]]
        cal = _calendar_of(meter, obj)
        r = ctx.r
        if r.peek() != axdr.ARRAY:
            return base.TYPE_UNMATCHED
        n = r.array()
        start = r.pos
        if n > sd.max:
            return base.OTHER_REASON
        for i in range(n):
            res, index, p, day_id = _read_entry(r)
            if res:
                return res
            if not schedule.date_ok(r.buf, p, True) or not _day_known(meter, cal, day_id):
                return base.OTHER_REASON
        end = r.pos
        r.pos = start
        sd.n = 0
        for i in range(n):
            res, index, p, day_id = _read_entry(r)
            sd.insert(index, r.buf, p, day_id)
        r.pos = end
        sd.save()
        _changed(meter, cal)
        return base.SUCCESS

    def action(self, ctx, obj, method):
        meter = ctx.meter
        sd = meter.state[obj[base.E_SLOT]]
        r = ctx.r
        if method == 1:
            if not ctx.has_data:
                return base.TYPE_UNMATCHED
            res, index, p, day_id = _read_entry(r)
            if res:
                return res
            cal = _calendar_of(meter, obj)
            if not _day_known(meter, cal, day_id):
                return base.OTHER_REASON
            res = sd.insert(index, r.buf, p, day_id)
        elif method == 2:
            if not ctx.has_data or r.peek() != axdr.LONG_UNSIGNED:
                return base.TYPE_UNMATCHED
            res = sd.delete(r.long_unsigned())
            cal = _calendar_of(meter, obj)
        else:
            return base.READ_WRITE_DENIED
        if res == base.SUCCESS:
            sd.save()
            _changed(meter, cal)
        return res


SPECIAL_DAYS_TABLE = SpecialDaysTable()

# ======================================================== Activity calendar

# stored attributes: index = attribute - 2 (active 0..3, passive 4..7)
A_NAME = const(0)
A_SEASONS = const(1)
A_WEEKS = const(2)
A_DAYS = const(3)
PASSIVE = const(4)

_ACTION = const(19)  # an action's canonical encoding: 02 03 09 04 t4 09 06 ln6 12 sel2
_EMPTY_NAME = b"\x09\x00"
_EMPTY_ARRAY = b"\x01\x00"


class Calendar(script.Stored):
    # The run-time part of one Activity calendar; storage, key: optional
    # persistence of both calendars and the activation time (script.Stored).
    def __init__(self, param, name=b"", seasons=(), weeks=(), days=(), storage=None, key=None):
        rooms = (param[1], param[2], param[3], param[4])
        self.bufs = []
        self.lens = [0] * 8
        for i in range(8):
            self.bufs.append(bytearray(rooms[i & 3]))
        self.scratch = bytearray(max(rooms))
        self.mv = memoryview(self.scratch)
        self.act_time = bytearray(_NEVER)
        self.act_utc = None
        self.ticker = schedule.Ticker()
        self.cur_day = None  # the action run last: day whose profile held it
        self.cur_idx = -1  # and its index there
        self.ln = bytearray(6)  # the script of the action found by _action_at
        self.sel = 0
        self.f_day = 0  # what _action_at found
        self.f_idx = 0
        self.n_act = 0  # actions of the day profile _day_actions found
        self.n_day = 0  # what _next_start found
        self.n_sod = 0
        self.r = axdr.Reader()
        self.r2 = axdr.Reader()
        self.seen = bytearray(32)  # day ids met while checking a day table
        # boot content: encoded, checked like a SET (scripts unchecked: no
        # meter yet), both calendars alike
        vals = (_enc_name(name), _enc_seasons(seasons), _enc_weeks(weeks), _enc_days(days))
        for i in range(4):
            r = axdr.Reader(vals[i])
            n = _CHECKS[i](None, self, r)
            if n > rooms[i]:
                n = -base.OTHER_REASON
            if n < 0:
                raise ValueError("calendar attribute %d refused (%d)" % (i + 6, -n))
            for k in (i, i + PASSIVE):
                self.bufs[k][0:n] = self.scratch[0:n]
                self.lens[k] = n
        if not _consistent(self, 0):
            raise ValueError("calendar: a season names a missing week or a week a missing day id")
        self.persist(storage, key)

    def record(self):
        # 8 lengths (2 bytes each), activation time (12) and its UTC (6,
        # all 0xFF: none), then the 8 stored attributes
        rec = bytearray(34)
        for i in range(8):
            rec[2 * i] = self.lens[i] >> 8
            rec[2 * i + 1] = self.lens[i] & 0xFF
        rec[16:28] = self.act_time
        u = self.act_utc
        for i in range(6):
            rec[33 - i] = 0xFF if u is None else (u >> (8 * i)) & 0xFF
        for i in range(8):
            rec += self.bufs[i][0 : self.lens[i]]
        return bytes(rec)

    def restore(self, rec):
        if len(rec) < 34:
            return False
        total = 34
        for i in range(8):
            n = script.u16(rec, 2 * i)
            if n > len(self.bufs[i]):
                return False
            total += n
        if total != len(rec):
            return False
        p = 34
        for i in range(8):
            n = script.u16(rec, 2 * i)
            self.bufs[i][0:n] = rec[p : p + n]
            self.lens[i] = n
            p += n
        self.act_time[:] = rec[16:28]
        u = 0
        for i in range(28, 34):
            u = (u << 8) | rec[i]
        self.act_utc = None if u == 0xFFFFFFFFFFFF else u
        self.cur_day = None
        return True


def _enc_name(name):
    return axdr.encoded(axdr.OCTET_STRING, name)


def _enc_seasons(seasons):
    return axdr.encoded(axdr.ARRAY, [(axdr.STRUCTURE, [(axdr.OCTET_STRING, n), (axdr.OCTET_STRING, s),
                                                       (axdr.OCTET_STRING, w)]) for n, s, w in seasons])


def _enc_weeks(weeks):
    return axdr.encoded(axdr.ARRAY, [(axdr.STRUCTURE, [(axdr.OCTET_STRING, n)] + [(axdr.UNSIGNED, d) for d in ds])
                                     for n, ds in weeks])


def _enc_days(days):
    return axdr.encoded(axdr.ARRAY, [
        (axdr.STRUCTURE, [(axdr.UNSIGNED, i), (axdr.ARRAY, [
            (axdr.STRUCTURE, [(axdr.OCTET_STRING, t), (axdr.OCTET_STRING, ln), (axdr.LONG_UNSIGNED, sel)])
            for t, ln, sel in acts])])
        for i, acts in days])


# ---- checks of a passive attribute: read at r, write the canonical
# encoding into cal.scratch; the length, or -result when refused.


def _check_name(meter, cal, r):
    if r.peek() != axdr.OCTET_STRING:
        return -base.TYPE_UNMATCHED
    n = r.octet_string()
    return axdr.enc_octet_string(cal.scratch, 0, r.buf, r.mark, r.mark + n)


def _start_ok(b, p):
    # season_start: month and day given, the rest in range (year may be
    # 0xFFFF, hour/minute/second 0xFF count as 0)
    m = b[p + 2]
    d = b[p + 3]
    return 1 <= m <= 12 and (1 <= d <= 31 or d == 0xFE or d == 0xFD) and \
        (b[p + 5] <= 23 or b[p + 5] == 0xFF) and (b[p + 6] <= 59 or b[p + 6] == 0xFF) and \
        (b[p + 7] <= 59 or b[p + 7] == 0xFF)


def _f(b, p):
    # a time field, 0xFF as 0
    v = b[p]
    return 0 if v == 0xFF else v


def _start_key(b, p):
    # month, day, hour, minute, second of a season_start as one int (day
    # 0xFD/0xFE sort after every day number)
    d = b[p + 3]
    return ((((b[p + 2] * 256 + d) * 24 + _f(b, p + 5)) * 60 + _f(b, p + 6)) * 60) + _f(b, p + 7)


def _start_before(b, p, q):
    # Does season_start b[p:] come strictly before b[q:]? Years compare
    # when both give one.
    yp = (b[p] << 8) | b[p + 1]
    yq = (b[q] << 8) | b[q + 1]
    if yp != 0xFFFF and yq != 0xFFFF and yp != yq:
        return yp < yq
    return _start_key(b, p) < _start_key(b, q)


def _check_seasons(meter, cal, r):
    s = cal.scratch
    if r.peek() != axdr.ARRAY:
        return -base.TYPE_UNMATCHED
    n = r.array()
    try:
        pos = axdr.enc_array(s, 0, n)
        prev = -1
        for i in range(n):
            if r.peek() != axdr.STRUCTURE or r.structure() != 3 or r.peek() != axdr.OCTET_STRING:
                return -base.TYPE_UNMATCHED
            k = r.octet_string()
            pos = axdr.enc_structure(s, pos, 3)
            pos = axdr.enc_octet_string(s, pos, r.buf, r.mark, r.mark + k)
            p = common.read_date_time(r)
            if p < 0:
                return -base.TYPE_UNMATCHED
            if not _start_ok(r.buf, p):
                return -base.OTHER_REASON
            pos = axdr.enc_octet_string(s, pos, r.buf, p, p + 12)
            if prev >= 0 and not _start_before(s, prev, pos - 12):
                return -base.OTHER_REASON  # not in order, or overlapping
            prev = pos - 12
            if r.peek() != axdr.OCTET_STRING:
                return -base.TYPE_UNMATCHED
            k = r.octet_string()
            pos = axdr.enc_octet_string(s, pos, r.buf, r.mark, r.mark + k)
    except EncodeError:  # does not fit the room
        return -base.OTHER_REASON
    return pos


def _check_weeks(meter, cal, r):
    s = cal.scratch
    if r.peek() != axdr.ARRAY:
        return -base.TYPE_UNMATCHED
    n = r.array()
    try:
        pos = axdr.enc_array(s, 0, n)
        for i in range(n):
            if r.peek() != axdr.STRUCTURE or r.structure() != 8 or r.peek() != axdr.OCTET_STRING:
                return -base.TYPE_UNMATCHED
            k = r.octet_string()
            pos = axdr.enc_structure(s, pos, 8)
            pos = axdr.enc_octet_string(s, pos, r.buf, r.mark, r.mark + k)
            for d in range(7):
                if r.peek() != axdr.UNSIGNED:
                    return -base.TYPE_UNMATCHED
                pos = axdr.enc_unsigned(s, pos, r.unsigned())
    except EncodeError:
        return -base.OTHER_REASON
    return pos


def _check_days(meter, cal, r):
    s = cal.scratch
    seen = cal.seen
    for i in range(32):
        seen[i] = 0
    if r.peek() != axdr.ARRAY:
        return -base.TYPE_UNMATCHED
    n = r.array()
    try:
        pos = axdr.enc_array(s, 0, n)
        for i in range(n):
            if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.UNSIGNED:
                return -base.TYPE_UNMATCHED
            did = r.unsigned()
            if seen[did >> 3] & (1 << (did & 7)):
                return -base.OTHER_REASON  # day id twice
            seen[did >> 3] |= 1 << (did & 7)
            if r.peek() != axdr.ARRAY:
                return -base.TYPE_UNMATCHED
            k = r.array()
            pos = axdr.enc_structure(s, pos, 2)
            pos = axdr.enc_unsigned(s, pos, did)
            pos = axdr.enc_array(s, pos, k)
            prev = -1
            for j in range(k):
                if r.peek() != axdr.STRUCTURE or r.structure() != 3:
                    return -base.TYPE_UNMATCHED
                p = _read_fixed(r, axdr.TIME, 4)
                if p < 0 or r.peek() != axdr.OCTET_STRING:
                    return -base.TYPE_UNMATCHED
                b = r.buf
                if b[p] > 23 or b[p + 1] > 59 or (b[p + 2] > 59 and b[p + 2] != 0xFF):
                    return -base.OTHER_REASON
                t = b[p] * 3600 + b[p + 1] * 60 + _f(b, p + 2)
                if t <= prev:
                    return -base.OTHER_REASON  # start times not increasing
                prev = t
                pos = axdr.enc_structure(s, pos, 3)
                pos = axdr.enc_octet_string(s, pos, b, p, p + 4)
                if r.peek() != axdr.OCTET_STRING:
                    return -base.TYPE_UNMATCHED
                ln = r.octet_string()
                q = r.mark
                if r.peek() != axdr.LONG_UNSIGNED:
                    return -base.TYPE_UNMATCHED
                sel = r.long_unsigned()
                if ln != 6 or (meter is not None and not schedule.script_ok(meter, b, q, sel)):
                    return -base.OTHER_REASON  # no such script
                pos = axdr.enc_octet_string(s, pos, b, q, q + 6)
                pos = axdr.enc_long_unsigned(s, pos, sel)
    except EncodeError:
        return -base.OTHER_REASON
    return pos


_CHECKS = (_check_name, _check_seasons, _check_weeks, _check_days)


# ---- lookups in the stored (canonical) encodings


def _week_days(cal, which, b, p, n):
    # Offset in cal.bufs[which + A_WEEKS] of the Monday day_id (tag
    # included; day k at +2(k-1)) of the week named b[p:p+n], or -1.
    r = cal.r2
    w = cal.bufs[which + A_WEEKS]
    r.reset(w, 0, cal.lens[which + A_WEEKS])
    for i in range(r.array()):
        r.structure()
        k = r.octet_string()
        if k == n and _same(w, r.mark, b, p, n):
            return r.pos
        r.pos += 14
    return -1


def _day_actions(cal, which, day_id):
    # Offset of the first action of day profile day_id in the day table
    # `which` (A_DAYS or PASSIVE + A_DAYS) with the count in cal.n_act, or
    # -1.
    r = cal.r2
    r.reset(cal.bufs[which], 0, cal.lens[which])
    for i in range(r.array()):
        r.structure()
        did = r.unsigned()
        k = r.array()
        if did == day_id:
            cal.n_act = k
            return r.pos
        r.pos += k * _ACTION
    return -1


def _consistent(cal, which):
    # Every season's week exists, every week's day ids exist (calendar
    # which: 0 active, PASSIVE passive)?
    r = cal.r
    sb = cal.bufs[which + A_SEASONS]
    r.reset(sb, 0, cal.lens[which + A_SEASONS])
    for i in range(r.array()):
        r.structure()
        r.octet_string()
        r.octet_string()
        k = r.octet_string()
        if _week_days(cal, which, sb, r.mark, k) < 0:
            return False
    w = cal.bufs[which + A_WEEKS]
    r.reset(w, 0, cal.lens[which + A_WEEKS])
    for i in range(r.array()):
        r.structure()
        r.octet_string()
        for d in range(7):
            if _day_actions(cal, which + A_DAYS, r.unsigned()) < 0:
                return False
    return True


def _season_week(cal, y, z):
    # Offset (in the active season buffer) of the week name of the season
    # in force at the start of local day z of year y: (offset << 8) |
    # length, or -1. Day numbers and seconds of the day: small ints.
    c = schedule._clk()
    r = cal.r
    sb = cal.bufs[A_SEASONS]
    best = -1
    bz = 0
    bs = 0
    for back in range(2):  # this year's starts, then last year's
        yy = y - back
        r.reset(sb, 0, cal.lens[A_SEASONS])
        for i in range(r.array()):
            r.structure()
            r.octet_string()
            r.octet_string()
            p = r.mark
            k = r.octet_string()
            sy = (sb[p] << 8) | sb[p + 1]
            if sy == 0xFFFF:
                sy = yy
            m = sb[p + 2]
            d = sb[p + 3]
            if d == 0xFE:  # last day of the month
                d = c.days_in_month(sy, m)
            elif d == 0xFD:  # second last
                d = c.days_in_month(sy, m) - 1
            zs = c.days_from_civil(sy, m, d)
            ss = _f(sb, p + 5) * 3600 + _f(sb, p + 6) * 60 + _f(sb, p + 7)
            if (zs < z or (zs == z and ss == 0)) and (best < 0 or zs > bz or (zs == bz and ss > bs)):
                best = (r.mark << 8) | k
                bz = zs
                bs = ss
        if best >= 0:
            return best
    return -1


def _profile(meter, cal, sd, z):
    # Offset of the first action of local day z's day profile in the active
    # day table (count in cal.n_act), or -1.
    if sd is not None:
        did = sd.day_id(z)
        if did >= 0:
            p = _day_actions(cal, A_DAYS, did)
            if p >= 0:
                return p
    c = schedule._clk()
    y = c.civil_from_days(z) // 10000
    sw = _season_week(cal, y, z)
    if sw < 0:
        return -1
    sb = cal.bufs[A_SEASONS]
    wp = _week_days(cal, 0, sb, sw >> 8, sw & 0xFF)
    if wp < 0:
        return -1
    did = cal.bufs[A_WEEKS][wp + 2 * (c.day_of_week(z) - 1) + 1]
    return _day_actions(cal, A_DAYS, did)


def _start(d, q):
    # start time of the action at d[q:], seconds of the day
    return d[q + 4] * 3600 + d[q + 5] * 60 + _f(d, q + 6)


def _special(meter, obj):
    p = obj[base.E_PARAM][0]
    if p is None:
        return None
    e = meter.find(11, p, 0)
    return None if e is None else meter.state[e[base.E_SLOT]]


def _action_at(meter, cal, sd, z, sod):
    # Find the action in force at second sod of local day z: sets
    # cal.f_day, cal.f_idx, cal.ln, cal.sel; False when there is none.
    d = cal.bufs[A_DAYS]
    p = _profile(meter, cal, sd, z)
    idx = -1
    if p >= 0:
        for i in range(cal.n_act):
            if _start(d, p + i * _ACTION) <= sod:
                idx = i
    if idx < 0:
        z -= 1
        p = _profile(meter, cal, sd, z)
        if p < 0 or cal.n_act == 0:
            return False
        idx = cal.n_act - 1
    q = p + idx * _ACTION
    for i in range(6):
        cal.ln[i] = d[q + 10 + i]
    cal.sel = (d[q + 17] << 8) | d[q + 18]
    cal.f_day = z
    cal.f_idx = idx
    return True


def _next_start(meter, cal, sd, z, sod):
    # The first action start after second sod of local day z (that day or
    # the next): True with it in cal.n_day, cal.n_sod, else False.
    d = cal.bufs[A_DAYS]
    p = _profile(meter, cal, sd, z)
    if p >= 0:
        for i in range(cal.n_act):
            s = _start(d, p + i * _ACTION)
            if s > sod:
                cal.n_day = z
                cal.n_sod = s
                return True
    p = _profile(meter, cal, sd, z + 1)
    if p >= 0 and cal.n_act:
        cal.n_day = z + 1
        cal.n_sod = _start(d, p)
        return True
    return False


def _run(meter, cal):
    # execute the action _action_at found, unless it ran last
    if cal.f_day == cal.cur_day and cal.f_idx == cal.cur_idx:
        return False
    cal.cur_day = cal.f_day
    cal.cur_idx = cal.f_idx
    script.execute(meter, cal.ln, cal.sel)
    return True


def activate(meter, obj):
    # Copy the passive calendar to the active one; False (nothing changed)
    # when it is inconsistent.
    cal = meter.state[obj[base.E_SLOT]]
    if not _consistent(cal, PASSIVE):
        return False
    for i in range(4):
        n = cal.lens[i + PASSIVE]
        cal.bufs[i][0:n] = cal.bufs[i + PASSIVE][0:n]
        cal.lens[i] = n
    cal.cur_day = None
    _no_activation(cal)
    return True


def _no_activation(cal):
    # activate_passive_calendar_time := not specified (never), stored
    cal.act_time[0:12] = _NEVER
    cal.act_utc = None
    cal.ticker.wake()
    cal.save()


def tick(meter, obj, utc):
    # The port's periodic call (see TICKING). True when a script ran.
    if utc is None:
        return False
    cal = meter.state[obj[base.E_SLOT]]
    tk = cal.ticker
    if tk.quiet(utc):
        return False
    if cal.act_utc is not None and utc >= cal.act_utc:
        if not activate(meter, obj):
            if meter.log is not None:
                meter.log("activity calendar: passive calendar inconsistent, not activated")
            _no_activation(cal)
    sd = _special(meter, obj)
    cur = schedule.local_seconds(meter, utc)
    cz = cur // DAY  # local day and second of the day: small ints from here
    cs = cur % DAY
    hz = tk.hz
    d = 0 if hz is None else tk.since(cz, cs)  # seconds since the high-water mark
    ran = False
    if hz is not None and 0 < d <= DAY and cal.cur_day is not None:
        z = hz
        s = tk.hs
        while _next_start(meter, cal, sd, z, s):  # catch up the starts in (hw, now], in order
            z = cal.n_day
            s = cal.n_sod
            if (z - cz) * DAY + s - cs > 0:
                break
            if _action_at(meter, cal, sd, z, s):
                ran = _run(meter, cal) or ran
    if hz is None or d > 0 or d < -schedule.MAX_BACK or cal.cur_day is None:
        if _action_at(meter, cal, sd, cz, cs):
            ran = _run(meter, cal) or ran
        tk.mark(cz, cs)
    # the next look: the next start or the next quarter hour (local quarter
    # hours are UTC ones: time zones and DST move by whole quarters)
    wait = schedule.QUARTER - cs % schedule.QUARTER
    if _next_start(meter, cal, sd, tk.hz, tk.hs):
        n = (cal.n_day - cz) * DAY + cal.n_sod - cs
        if n < wait:
            wait = n
    tk.last = utc
    tk.due = utc + wait
    if cal.act_utc is not None and cal.act_utc < tk.due:
        tk.due = cal.act_utc
    return ran


class ActivityCalendar(base.InterfaceClass):
    class_id = 20
    version = 0
    attribute_count = 10
    method_count = 1
    slots = SLOTS

    def get(self, ctx, obj, attr):
        cal = ctx.meter.state[obj[base.E_SLOT]]
        if 2 <= attr <= 9:
            ctx.pos = axdr.put_bytes(ctx.buf, ctx.pos, cal.bufs[attr - 2], 0, cal.lens[attr - 2])
        elif attr == 10:
            ctx.pos = axdr.enc_octet_string(ctx.buf, ctx.pos, cal.act_time)
        else:
            return base.READ_WRITE_DENIED
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        meter = ctx.meter
        cal = meter.state[obj[base.E_SLOT]]
        r = ctx.r
        if 6 <= attr <= 9:
            i = attr - 6
            n = _CHECKS[i](meter, cal, r)
            if n < 0:
                return -n
            if n > len(cal.bufs[i + PASSIVE]):
                return base.OTHER_REASON  # fits the scratch, not the room
            cal.bufs[i + PASSIVE][0:n] = cal.mv[0:n]
            cal.lens[i + PASSIVE] = n
            cal.save()
            return base.SUCCESS
        if attr == 10:
            p = common.read_date_time(r)
            if p < 0:
                return base.TYPE_UNMATCHED
            b = r.buf
            if _same(b, p, _NEVER, 0, 9):
                _no_activation(cal)  # not specified: never (deviation 0x8000)
                return base.SUCCESS
            c = schedule._clk()
            utc = c.utc_of(meter, c.meter_clock(meter), b, p)
            if utc is None:
                return base.OTHER_REASON
            for i in range(12):
                cal.act_time[i] = b[p + i]
            cal.act_utc = utc
            cal.ticker.wake()
            cal.save()
            return base.SUCCESS
        return base.READ_WRITE_DENIED

    def action(self, ctx, obj, method):
        if method != 1:
            return base.READ_WRITE_DENIED
        res = common.integer_param(ctx)
        if res:
            return res
        meter = ctx.meter
        if not activate(meter, obj):
            return base.OTHER_REASON
        if meter.wall_clock is not None:
            tick(meter, obj, schedule._clk().now(meter))
        return base.SUCCESS


ACTIVITY_CALENDAR = ActivityCalendar()
