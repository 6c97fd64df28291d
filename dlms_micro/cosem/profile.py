# Profile generic (class_id 7, version 1), Blue Book 4.3.6: a FIFO of rows,
# each row the values of a fixed list of capture objects at one instant.
#
#   attribute 2 buffer            array of structure (one per row; each
#                                 element encoded as its capture object's
#                                 attribute was when captured). Streamed
#                                 row by row with ctx.cursor; selective
#                                 access: 1 range_descriptor, 2
#                                 entry_descriptor
#   attribute 3 capture_objects   array of structure {class_id long-unsigned,
#                                 logical_name octet-string, attribute_index
#                                 integer, data_index long-unsigned}
#   attribute 4 capture_period    double-long-unsigned, seconds; writable
#                                 (when the access rights allow): a new
#                                 value resets the buffer (rows taken at
#                                 another period would mix in one profile;
#                                 gurux-dlms as a server resets on a SET of
#                                 capture_period, sort_method, sort_object
#                                 and profile_entries too), an equal one
#                                 changes nothing; another type:
#                                 TYPE_UNMATCHED. Kept in the ProfileBuffer
#                                 (and in the storage's header record)
#   attribute 5 sort_method       enum: 1 FIFO (the only one supported)
#   attribute 6 sort_object       capture object definition, all zero (FIFO)
#   attribute 7 entries_in_use    double-long-unsigned
#   attribute 8 profile_entries   double-long-unsigned (from param)
#   method 1 reset (integer(0))   empty the buffer
#   method 2 capture (integer(0)) take one row now
# Every other attribute is static here (SET: READ_WRITE_DENIED).
#
# param: (capture_objects, capture_period, profile_entries), constant data:
#   capture_objects  tuple of (class_id, logical_name (6 bytes),
#                    attribute_index, data_index, width) - width is the
#                    bytes the row keeps for that value: 1 length byte + the
#                    longest A-XDR encoding it may have, tag included
#                    (field_width() gives it for the usual types: 6 for a
#                    double-long-unsigned, 15 for a Clock time). data_index
#                    must be 0 (whole attribute); other values capture
#                    null-data.
#   capture_period   seconds (0: captured on request/event only), the value
#                    until a SET changes it
#   profile_entries  rows the ring holds
# CAPTURING. capture(meter, obj) takes a row (also ACTION capture);
# tick(meter, obj, utc) called by the port's loop captures at each multiple
# of capture_period.
# state: 1 slot, [slot] a ProfileBuffer(param[, storage, key, page_rows])
#   made at boot: the ring (one preallocated bytearray of profile_entries
#   fixed-size records), its counters, capture_period, and the selection of
#   a GET in progress. Its methods for a port: reset() and set_period(s)
#   (False: storage refused, nothing changed), defer() and flush() (bulk
#   backfill, below); save_errors counts failed page writes.
#
# RECORDS. A row is the capture objects' fields side by side; a field is
# [n][n bytes: the value's A-XDR encoding as its own get() wrote it], n = 0
# when the value could not be read (encoded as null-data). Row r of all rows
# ever captured since the last reset (its absolute number) sits at record
# r % profile_entries; rows total-count .. total-1 are present. A GET's
# continuation names absolute rows, so a capture that overwrites a row not
# yet sent ends the transfer with LONG_GET_ABORTED rather than sending rows
# the array header did not announce (one that only appends changes nothing);
# so does a reset (or new capture_period) since the first block, however
# many rows were captured after it.
#
# PERSISTENCE (optional): ProfileBuffer(param, storage, key, page_rows=0).
# The ring is stored in pages of page_rows records (default: as many as fit
# a 256-byte page record, at least 1), one storage record per page, so a
# capture rewrites only the page of the row it wrote:
#   key                 header: 0x01, epoch u32, capture_period u32, rows
#                       u32, record width u16, page_rows u16, CRC-16/X.25
#                       (19 bytes)
#   "%s.%d" % (key, p)  page p (records p*page_rows ..): 0x02, epoch u32,
#                       total u32 (rows captured when it was written), the
#                       page's records, CRC-16/X.25 (11 bytes + records)
# storage.put(key, value) must be atomic per record (the ports'
# FileStorage/FlashStorage are) and must copy value: it is given the
# ProfileBuffer's one preallocated page buffer (a bytearray, or a memoryview
# of it for a short last page), rewritten by the next capture.
# A reset (method 1, or a SET of capture_period) writes only the header,
# with epoch + 1: pages of an older epoch are ignored, so a power cut after
# that one put never brings old rows back, and one before it leaves the
# buffer as it was. Boot (load): total = the largest total among the valid
# pages of the header's epoch, entries_in_use = min(total, rows). A page
# that is missing, corrupt (length, CRC) or of another epoch costs only its
# rows, and so does a page that was not rewritten after a row was captured
# into it (a row a is kept only when a < its page's total): those rows stay
# counted in entries_in_use with every value null-data (a range
# descriptor never selects them), so the rows around them keep their
# entry numbers. A missing, corrupt or mismatched header (another rows /
# width / page_rows: a new table) starts an empty buffer in a new epoch above
# every page seen, and writes the header.
# A failing put during a capture is counted in save_errors and does not
# stop capturing (RAM stays right; the page is rewritten with the next row
# in it); during a reset or a SET it refuses the change (HARDWARE_FAULT).
# BULK BACKFILL: defer() suspends page writes; captures then only fill the
# ring; flush() writes every page holding a row captured since defer(), once
# each, and resumes. A power cut before flush() loses those rows only.
# WEAR: a capture writes one page record: 11 + page_rows * width bytes. The
# demo's 15-minute load profile (clock 15 + status 3 + 2 energies 6 = 30-byte
# records, 8 per page) writes 251 bytes per capture, 35,040 captures and
# 8.8 MB a year (FlashStorage adds 4 bytes a record, and LittleFS its
# metadata); rewriting the whole 5,952-row ring would write 178 KB a
# capture, 6.2 GB a year. Its 5-minute power-quality profile (29-byte
# records) writes 243 bytes per capture, 25.5 MB a year. The old one-record
# format (the whole ring under `key`) is not read: nothing was deployed
# with it. The header's capture_period (a SET's) overrides param's at boot.
# COST: one page buffer (11 + page_rows * width bytes) per stored profile; a
# capture allocates nothing more on MicroPython but the page's key string,
# once per page (storage.put's own costs aside); on CPython the page and
# its CRC add ~35 us to a capture (18 us without storage). Boot reads every
# page once (the demo's 744 pages: ~19 ms on CPython) and allocates a
# transient list of one int per page.
#
# COMPACT-ARRAY (not offered). Profile generic version 1 has no selector or
# attribute that returns the buffer as compact-array (data type 19): its
# selective access is range_descriptor and entry_descriptor only. The Blue
# Book's compact form of profile data is the Compact data interface class
# (class_id 62: compact_buffer octet-string, capture_objects, template_id,
# template_description, capture_method, methods reset and capture), whose
# template fixes array sizes in advance; a separate class, not built here.
#
# SELECTIVE ACCESS (first call, cursor 0; kept per channel in a Selection,
# ctx.selection, so several clients read the same profile at once):
#   range_descriptor structure {restricting_object (a capture object
#     definition, one of the capture objects), from_value, to_value,
#     selected_values (array of capture object definitions; empty: all)}:
#     rows whose restricting value v has from_value <= v <= to_value, their
#     columns in the order selected_values lists them (as gurux-dlms reads
#     them; a client asking in capture order gets capture order); a column
#     listed twice: OTHER_REASON.
#     Date-times (octet-string(12) or date-time) compare field by field
#     (year, month, day, hour, minute, second, hundredths; day of week,
#     deviation and status ignored); a field not specified (0xFF, year
#     0xFFFF) on either side is a wildcard. Integers compare as numbers.
#   entry_descriptor structure {from_entry double-long-unsigned, to_entry
#     double-long-unsigned (0: last), from_selected_value long-unsigned,
#     to_selected_value long-unsigned (0: last)}; entries and columns count
#     from 1, oldest row first; entries past the last are simply absent.
#   A parameter of the wrong shape or type: TYPE_UNMATCHED; a restricting
#   or selected object that is not a capture object, bounds of a type that
#   does not match, from > to: OTHER_REASON.

from dlms_micro import axdr, crc16
from dlms_micro.cosem import base, common
from dlms_micro.errors import DecodeError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1

# param fields
P_CAPTURE_OBJECTS = const(0)
P_CAPTURE_PERIOD = const(1)
P_ENTRIES = const(2)
# capture object fields
C_CLASS = const(0)
C_LN = const(1)
C_ATTR = const(2)
C_DATA_INDEX = const(3)
C_WIDTH = const(4)

SORT_FIFO = const(1)

_ZERO_LN = b"\x00\x00\x00\x00\x00\x00"
# offsets in a date-time of month, day, hour, minute, second, hundredths
_DT_FIELDS = b"\x02\x03\x05\x06\x07\x08"
# integer tags 0..22: byte size (0: not an integer), and signedness
_INT_SIZE = b"\x00\x00\x00\x00\x00\x04\x04\x00\x00\x00\x00\x00\x00\x01\x00\x01\x02\x01\x02\x00\x08\x08\x01"
_INT_SIGNED = b"\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\x00\x00\x00\x01\x00\x00"

# storage records (see PERSISTENCE)
_HEAD = const(1)
_PAGE = const(2)
_HEAD_SIZE = const(19)
_PAGE_EXTRA = const(11)  # page record bytes besides its records
_PAGE_TARGET = const(256)  # default page record size, at most

# what a selected bound is
_B_NONE = const(0)
_B_INT = const(1)
_B_DT = const(2)


def field_width(tag, size=0):
    # Field width for a value of A-XDR type `tag`; size: the bytes of a
    # string value (its maximum). Date-times count as octet-string(12).
    if tag == axdr.DATE_TIME:
        return 15
    if tag == axdr.OCTET_STRING or tag == axdr.VISIBLE_STRING or tag == axdr.UTF8_STRING:
        return 3 + size if size < 128 else 4 + size
    if 0 <= tag < len(_INT_SIZE) and _INT_SIZE[tag]:
        return 2 + _INT_SIZE[tag]
    if tag == axdr.BOOLEAN:
        return 3
    if tag == axdr.FLOAT32:
        return 6
    if tag == axdr.FLOAT64:
        return 10
    return 1 + size


CLOCK_WIDTH = const(15)  # a Clock time: octet-string(12) + the length byte


class ProfileBuffer:
    # The run-time part of one Profile generic object (its state slot).

    def __init__(self, param, storage=None, key=None, page_rows=0):
        cos = param[P_CAPTURE_OBJECTS]
        offs = []
        w = 0
        big = 1
        for co in cos:
            offs.append(w)
            w += co[C_WIDTH]
            if co[C_WIDTH] > big:
                big = co[C_WIDTH]
        self.offs = tuple(offs)
        self.width = w
        self.rows = param[P_ENTRIES]
        self.data = bytearray(w * self.rows)
        self.total = 0  # rows captured since the last reset
        self.count = 0  # rows present (entries_in_use)
        self.period = param[P_CAPTURE_PERIOD]  # capture_period (SET changes it)
        self.scratch = bytearray(big - 1 if big > 1 else 1)
        self.ctx = None  # capture's Context, made on the first capture
        self.period_no = None  # tick(): capture_period number of the last call
        # persistence
        self.storage = storage
        self.key = key
        self.epoch = 0  # reset generation; pages of another one are void
        self.deferred = False  # defer(): captures write no page until flush()
        self.saved = 0  # total when defer() was called
        self.save_errors = 0  # puts that failed during captures
        if page_rows <= 0:
            page_rows = (_PAGE_TARGET - _PAGE_EXTRA) // w if w else 1
        if page_rows < 1:
            page_rows = 1
        if page_rows > self.rows:
            page_rows = self.rows if self.rows else 1
        self.page_rows = page_rows
        self.npages = (self.rows + page_rows - 1) // page_rows
        self.page = None
        self.tail = None  # view of the page buffer the size of a short last page
        self._pkey = None  # key of page _pkey_no, made once per page change
        self._pkey_no = -1
        if storage is not None:
            self.page = bytearray(_PAGE_EXTRA + page_rows * w)
            last = self.rows - (self.npages - 1) * page_rows
            if last != page_rows:
                self.tail = memoryview(self.page)[0:_PAGE_EXTRA + last * w]
            self.load()

    def _page_key(self, p):
        if p != self._pkey_no:
            self._pkey = "%s.%d" % (self.key, p)
            self._pkey_no = p
        return self._pkey

    def _header(self, epoch, period):
        # The header record for this epoch and capture_period.
        h = bytearray(_HEAD_SIZE)
        h[0] = _HEAD
        _put_u32(h, 1, epoch)
        _put_u32(h, 5, period)
        _put_u32(h, 9, self.rows)
        h[13] = self.width >> 8
        h[14] = self.width & 0xFF
        h[15] = self.page_rows >> 8
        h[16] = self.page_rows & 0xFF
        crc16.put_fcs(h, 0, _HEAD_SIZE - 2)
        return h

    def load(self):
        # Restore the ring from storage (boot); see PERSISTENCE. True when
        # the header was valid (the buffer may still be empty).
        st = self.storage
        rows = self.rows
        width = self.width
        pr = self.page_rows
        h = st.get(self.key)
        epoch = -1
        if (h is not None and len(h) == _HEAD_SIZE and h[0] == _HEAD and crc16.check(h, 0, _HEAD_SIZE)
                and _u32(h, 9) == rows and ((h[13] << 8) | h[14]) == width and ((h[15] << 8) | h[16]) == pr):
            epoch = _u32(h, 1)
            self.period = _u32(h, 5)
        totals = [0] * self.npages  # each page's total; 0: none
        top = -1
        total = 0
        d = self.data
        for p in range(self.npages):
            rec = st.get(self._page_key(p))
            start = p * pr
            n = (rows - start if start + pr > rows else pr) * width
            if (rec is None or len(rec) != _PAGE_EXTRA + n or rec[0] != _PAGE
                    or not crc16.check(rec, 0, _PAGE_EXTRA + n)):
                continue
            ep = _u32(rec, 1)
            if ep > top:
                top = ep
            if ep != epoch:
                continue
            t = _u32(rec, 5)
            totals[p] = t
            if t > total:
                total = t
            d[start * width:start * width + n] = rec[9:9 + n]
        if epoch < 0:  # no usable header: empty, in a new epoch
            self.epoch = top + 1
            self.total = self.count = 0
            try:
                st.put(self.key, self._header(self.epoch, self.period))
            except Exception:
                self.save_errors += 1
            return False
        self.epoch = epoch
        count = total if total < rows else rows
        for a in range(total - count, total):
            slot = a % rows
            if a >= totals[slot // pr]:  # never stored: every value null
                f = slot * width
                for o in self.offs:
                    d[f + o] = 0
        self.total = total
        self.count = count
        return True

    def _write_page(self, p):
        # Store page p as it is in RAM, with the current epoch and total.
        pr = self.page_rows
        start = p * pr
        last = start + pr > self.rows
        n = ((self.rows - start) if last else pr) * self.width
        pg = self.page
        pg[0] = _PAGE
        _put_u32(pg, 1, self.epoch)
        _put_u32(pg, 5, self.total)
        d = self.data
        s = start * self.width
        t = crc16.TABLE
        crc = crc16.update(crc16.INIT, pg, 0, 9)
        for i in range(n):
            b = d[s + i]
            pg[9 + i] = b
            crc = (crc >> 8) ^ t[(crc ^ b) & 0xFF]
        crc ^= 0xFFFF
        pg[9 + n] = crc & 0xFF
        pg[10 + n] = crc >> 8
        self.storage.put(self._page_key(p), self.tail if last and self.tail is not None else pg)

    def save_row(self, a):
        # After capturing absolute row a: store its page (unless deferred).
        if self.storage is None or self.deferred:
            return
        try:
            self._write_page((a % self.rows) // self.page_rows)
        except Exception:  # storage failure: RAM stays right
            self.save_errors += 1

    def defer(self):
        # Suspend page writes (bulk backfill) until flush().
        if not self.deferred:
            self.deferred = True
            self.saved = self.total

    def flush(self):
        # Write every page holding a row captured since defer(), once each,
        # and resume writing per capture. Returns the pages written.
        if not self.deferred:
            return 0
        self.deferred = False
        if self.storage is None:
            return 0
        first = self.saved
        if first < self.total - self.count:
            first = self.total - self.count
        rows = self.rows
        pr = self.page_rows
        written = 0
        npages = self.npages
        p = 0
        if self.total - first >= rows:  # the ring went round: every page
            n = npages
        elif self.total == first:  # nothing new
            n = 0
        else:  # the pages from the first row's to the last row's, in ring order
            s0 = first % rows
            s1 = (self.total - 1) % rows
            p = s0 // pr
            n = s1 // pr - p + 1 if s1 >= s0 else npages - p + s1 // pr + 1
            if n > npages:  # wrapped into the first row's page again
                p = 0
                n = npages
        for _ in range(n):
            try:
                self._write_page(p)
                written += 1
            except Exception:
                self.save_errors += 1
            p += 1
            if p == npages:
                p = 0
        return written

    def _new_epoch(self, period):
        # Empty the buffer (reset, new capture_period): the header first;
        # False, and nothing changed, when storage refuses it.
        if self.storage is not None:
            try:
                self.storage.put(self.key, self._header(self.epoch + 1, period))
            except Exception:
                return False
        self.epoch += 1
        self.period = period
        self.total = 0
        self.count = 0
        self.saved = 0
        return True

    def reset(self):
        # Method 1: empty the buffer. False when storage refused it.
        return self._new_epoch(self.period)

    def set_period(self, period):
        # SET capture_period: a new value empties the buffer and restarts
        # tick()'s schedule. False when storage refused it.
        if period == self.period:
            return True
        if not self._new_epoch(period):
            return False
        self.period_no = None
        return True


def _u32(b, p):
    return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]


def _put_u32(b, p, v):
    b[p] = (v >> 24) & 0xFF
    b[p + 1] = (v >> 16) & 0xFF
    b[p + 2] = (v >> 8) & 0xFF
    b[p + 3] = v & 0xFF


class Selection:
    # The rows and columns one channel's GET of a buffer selected: kept in
    # the channel's Context (ctx.selection, made on its first buffer GET and
    # reused), so that GETs of the same profile by several clients at once
    # do not disturb each other. xDLMS has at most one long GET in progress
    # per association, and a GET-with-list never leaves one half done.
    def __init__(self, ncols):
        self.pb = None  # the ProfileBuffer selected from
        self.epoch = 0  # its epoch when the selection was made
        self.first = 0  # absolute number of the first row selected
        self.end = 0  # absolute number after the last one
        self.order = bytearray(ncols)  # the columns to send, in order
        self.ncols = 0  # how many
        self.rcol = -1  # range restricting column (-1: every row in first..end)
        self.kind = _B_NONE
        self.lo = 0
        self.hi = 0
        self.lo_dt = bytearray(12)
        self.hi_dt = bytearray(12)


def buffer_of(meter, obj):
    return meter.state[obj[base.E_SLOT]]


def capture(meter, obj):
    # Take one row now (the port calls it every capture_period, the ACTION
    # capture calls it on request): each capture object's attribute is read
    # through its own handler into its field; the oldest row goes when full.
    pb = meter.state[obj[base.E_SLOT]]
    cos = obj[base.E_PARAM][P_CAPTURE_OBJECTS]
    ctx = pb.ctx
    if ctx is None:
        ctx = pb.ctx = base.Context(meter)
    scratch = pb.scratch
    d = pb.data
    row = (pb.total % pb.rows) * pb.width
    offs = pb.offs
    for i in range(len(cos)):
        co = cos[i]
        room = co[C_WIDTH] - 1
        f = row + offs[i]
        n = 0
        e = meter.find(co[C_CLASS], co[C_LN], 0)
        if e is not None and co[C_DATA_INDEX] == 0:
            try:
                res = common.get_attribute(ctx, e, co[C_ATTR], scratch, 0, room)
                if res == base.SUCCESS and ctx.cursor == 0 and ctx.pos <= room:
                    n = ctx.pos
            except EncodeError:  # longer than its field
                n = 0
            except Exception as ex:  # a handler's fault: the row goes on, null
                n = 0
                if meter.log is not None:
                    meter.log("profile capture: %s attribute %d failed: %r" % (obis_text(co[C_LN]), co[C_ATTR], ex))
        d[f] = n
        f += 1
        for j in range(n):
            d[f + j] = scratch[j]
    pb.total += 1
    if pb.count < pb.rows:
        pb.count += 1
    pb.save_row(pb.total - 1)


def obis_text(ln):
    return "%d.%d.%d.%d.%d.%d" % (ln[0], ln[1], ln[2], ln[3], ln[4], ln[5])


def tick(meter, obj, utc):
    # The port's periodic call (e.g. once a second, utc: the meter's time,
    # clock.now()): captures a row when utc has crossed a multiple of
    # capture_period since the previous call, as a 15-minute load profile
    # captures at :00, :15, :30, :45. The first call after boot only takes
    # note of the period it is in. True when it captured. A few big-int
    # operations per call (utc > 2**30): ~64 B on MicroPython.
    pb = meter.state[obj[base.E_SLOT]]
    period = pb.period
    if not period or utc is None:
        return False
    k = utc // period
    last = pb.period_no
    pb.period_no = k
    if last is None or k == last:
        return False
    capture(meter, obj)
    return True


def resync(meter, obj, utc):
    # After the clock was set (or shifted): the capture period now running is
    # the one of utc, and the jump itself takes no row. Rows so stay on the
    # period boundaries of the meter's time; the interval the set fell in
    # carries the clock-adjusted status into its row at the next boundary (a
    # set backwards may repeat a boundary's time stamp: the later row is the
    # one with that status, as IDIS meters list them in capture order).
    pb = meter.state[obj[base.E_SLOT]]
    if pb.period and utc is not None:
        pb.period_no = utc // pb.period


def _int_at(d, p):
    # The integer Data element at d[p:] (tag included), or None.
    t = d[p]
    if t >= len(_INT_SIZE):
        return None
    n = _INT_SIZE[t]
    if not n:
        return None
    v = d[p + 1]
    if _INT_SIGNED[t] and v > 127:
        v -= 256
    for i in range(p + 2, p + 1 + n):
        v = (v << 8) | d[i]
    return v


def _dt_at(d, p, n):
    # Offset of the 12 date-time bytes of the Data element at d[p:] (n
    # bytes long), or -1.
    t = d[p]
    if t == axdr.OCTET_STRING and n == 14 and d[p + 1] == 12:
        return p + 2
    if t == axdr.DATE_TIME and n == 13:
        return p + 1
    return -1


def _dt_cmp(a, pa, b, pb):
    # Compare date-times a[pa:] and b[pb:], skipping fields either leaves
    # unspecified: -1, 0, 1.
    ya = (a[pa] << 8) | a[pa + 1]
    yb = (b[pb] << 8) | b[pb + 1]
    if ya != 0xFFFF and yb != 0xFFFF and ya != yb:
        return -1 if ya < yb else 1
    for k in _DT_FIELDS:
        x = a[pa + k]
        y = b[pb + k]
        if x == 0xFF or y == 0xFF:
            continue
        if k == 2 and (x > 12 or y > 12):  # DST begin/end markers
            continue
        if k == 3 and (x > 31 or y > 31):  # last / second last day
            continue
        if x != y:
            return -1 if x < y else 1
    return 0


def _matches(pb, sel, a):
    # Does absolute row a pass the range restriction?
    f = (a % pb.rows) * pb.width + pb.offs[sel.rcol]
    d = pb.data
    n = d[f]
    if n == 0:
        return False
    if sel.kind == _B_DT:
        p = _dt_at(d, f + 1, n)
        if p < 0:
            return False
        return _dt_cmp(d, p, sel.lo_dt, 0) >= 0 and _dt_cmp(d, p, sel.hi_dt, 0) <= 0
    v = _int_at(d, f + 1)
    if v is None:
        return False
    return sel.lo <= v <= sel.hi


def _column(r, cos):
    # Read a capture object definition; its column, -1 when it is no
    # capture object. DecodeError when it is malformed.
    if r.structure() != 4:
        raise DecodeError("capture object definition")
    cid = r.long_unsigned()
    if r.octet_string() != 6:
        raise DecodeError("logical name")
    p = r.mark
    b = r.buf
    attr = r.integer()
    di = r.long_unsigned()
    for i in range(len(cos)):
        co = cos[i]
        ln = co[C_LN]
        if (co[C_CLASS] == cid and co[C_ATTR] == attr and co[C_DATA_INDEX] == di and ln[0] == b[p]
                and ln[1] == b[p + 1] and ln[2] == b[p + 2] and ln[3] == b[p + 3] and ln[4] == b[p + 4]
                and ln[5] == b[p + 5]):
            return i
    return -1


def _bound(r, pb, hi):
    # Read a range bound into the Selection pb; its kind.
    t = r.peek()
    if t == axdr.OCTET_STRING or t == axdr.DATE_TIME:
        p = common.read_date_time(r)
        if p < 0:
            raise DecodeError("date-time bound")
        dst = pb.hi_dt if hi else pb.lo_dt
        b = r.buf
        for i in range(12):
            dst[i] = b[p + i]
        return _B_DT
    v = r.number()
    if hi:
        pb.hi = v
    else:
        pb.lo = v
    return _B_INT


def _select(ctx, obj, pb, sel):
    # Set the selection for a new GET of the buffer; a data-access-result.
    # Columns go out in the order selected_values lists them (entry
    # descriptor: from..to, ascending; none: capture order).
    cos = obj[base.E_PARAM][P_CAPTURE_OBJECTS]
    order = sel.order
    ncols = len(cos)
    lo_col = 0
    hi_col = ncols
    sel.pb = pb
    sel.epoch = pb.epoch
    sel.end = pb.total
    sel.first = pb.total - pb.count
    sel.rcol = -1
    s = ctx.selector
    if s:
        r = ctx.r
        try:
            if r.structure() != 4:
                return base.TYPE_UNMATCHED
            if s == 1:
                rcol = _column(r, cos)
                k1 = _bound(r, sel, 0)
                k2 = _bound(r, sel, 1)
                n = r.array()
                for i in range(n):
                    c = _column(r, cos)
                    if c < 0:
                        return base.OTHER_REASON  # no capture object
                    for j in range(i):
                        if order[j] == c:
                            return base.OTHER_REASON  # a column twice
                    order[i] = c  # (i < ncols: no column twice so far)
                if rcol < 0 or k1 != k2:
                    return base.OTHER_REASON
                if k1 == _B_INT and sel.lo > sel.hi:
                    return base.OTHER_REASON
                if k1 == _B_DT and _dt_cmp(sel.lo_dt, 0, sel.hi_dt, 0) > 0:
                    return base.OTHER_REASON
                sel.kind = k1
                sel.rcol = rcol
                if n:
                    sel.ncols = n
                    lo_col = -1  # columns already set
            elif s == 2:
                fe = r.double_long_unsigned()
                te = r.double_long_unsigned()
                fs = r.long_unsigned()
                ts = r.long_unsigned()
                if fe == 0:
                    fe = 1
                if fs == 0:
                    fs = 1
                if ts == 0:
                    ts = ncols
                if (te and fe > te) or fs > ts or ts > ncols:
                    return base.OTHER_REASON
                old = sel.first
                if fe - 1 < pb.count:
                    sel.first = old + fe - 1
                else:
                    sel.first = sel.end
                if te and te < pb.count:
                    sel.end = old + te
                lo_col = fs - 1
                hi_col = ts
            else:
                return base.OTHER_REASON
        except DecodeError:
            return base.TYPE_UNMATCHED
    if lo_col >= 0:
        for i in range(lo_col, hi_col):
            order[i - lo_col] = i
        sel.ncols = hi_col - lo_col
    return base.SUCCESS


def _selected(pb, sel):
    # rows the selection holds
    if sel.rcol < 0:
        return sel.end - sel.first
    n = 0
    for a in range(sel.first, sel.end):
        if _matches(pb, sel, a):
            n += 1
    return n


class ProfileGeneric(base.InterfaceClass):
    class_id = 7
    version = 1
    attribute_count = 8
    method_count = 2
    slots = SLOTS

    def selectors(self, attr):
        return 0b110 if attr == 2 else 0

    def get(self, ctx, obj, attr):
        if attr == 2:
            return self._buffer(ctx, obj, ctx.meter.state[obj[base.E_SLOT]])
        p = obj[base.E_PARAM]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 3:
            cos = p[P_CAPTURE_OBJECTS]
            pos = axdr.enc_array(buf, pos, len(cos))
            for co in cos:
                pos = _enc_definition(buf, pos, co[C_CLASS], co[C_LN], co[C_ATTR], co[C_DATA_INDEX])
        elif attr == 4:
            pos = axdr.enc_double_long_unsigned(buf, pos, ctx.meter.state[obj[base.E_SLOT]].period)
        elif attr == 5:
            pos = axdr.enc_enum(buf, pos, SORT_FIFO)
        elif attr == 6:
            pos = _enc_definition(buf, pos, 0, _ZERO_LN, 0, 0)
        elif attr == 7:
            pos = axdr.enc_double_long_unsigned(buf, pos, ctx.meter.state[obj[base.E_SLOT]].count)
        elif attr == 8:
            pos = axdr.enc_double_long_unsigned(buf, pos, p[P_ENTRIES])
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def _buffer(self, ctx, obj, pb):
        buf = ctx.buf
        pos = ctx.pos
        sel = ctx.selection
        if ctx.cursor == 0:
            ncols = len(pb.offs)
            if sel is None or len(sel.order) < ncols:
                sel = ctx.selection = Selection(ncols if ncols > 8 else 8)
            res = _select(ctx, obj, pb, sel)
            if res:
                sel.pb = None
                return res
            pos = axdr.enc_array(buf, pos, _selected(pb, sel))
            a = sel.first
        else:
            if sel is None or sel.pb is not pb:
                return base.LONG_GET_ABORTED  # no selection of this buffer here
            a = sel.first + ctx.cursor - 1
            if a < pb.total - pb.count or sel.end > pb.total or sel.epoch != pb.epoch:
                return base.LONG_GET_ABORTED  # rows gone since the header
        limit = ctx.limit
        if limit > len(buf):
            limit = len(buf)
        d = pb.data
        order = sel.order
        ncols = sel.ncols
        offs = pb.offs
        rows = pb.rows
        width = pb.width
        ranged = sel.rcol >= 0
        end = sel.end
        while a < end:
            if ranged and not _matches(pb, sel, a):
                a += 1
                continue
            row = (a % rows) * width
            size = 2
            for i in range(ncols):
                n = d[row + offs[order[i]]]
                size += n if n else 1
            if pos + size > limit:
                ctx.pos = pos
                ctx.cursor = a - sel.first + 1
                return base.SUCCESS
            pos = axdr.enc_structure(buf, pos, ncols)
            for i in range(ncols):
                f = row + offs[order[i]]
                n = d[f]
                if n == 0:
                    buf[pos] = axdr.NULL_DATA
                    pos += 1
                else:
                    f += 1
                    for j in range(n):
                        buf[pos + j] = d[f + j]
                    pos += n
            a += 1
        ctx.pos = pos
        ctx.cursor = 0
        sel.pb = None  # done: a continuation now has nothing to resume
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        # capture_period only (the dispatcher has checked access rights)
        if attr != 4:
            return base.READ_WRITE_DENIED
        r = ctx.r
        try:
            if r.peek() != axdr.DOUBLE_LONG_UNSIGNED:
                return base.TYPE_UNMATCHED
            v = r.double_long_unsigned()
        except DecodeError:
            return base.TYPE_UNMATCHED
        if not ctx.meter.state[obj[base.E_SLOT]].set_period(v):
            return base.HARDWARE_FAULT
        return base.SUCCESS

    def action(self, ctx, obj, method):
        if method != 1 and method != 2:
            return base.READ_WRITE_DENIED
        res = common.integer_param(ctx)
        if res:
            return res
        if method == 1:
            if not ctx.meter.state[obj[base.E_SLOT]].reset():
                return base.HARDWARE_FAULT
        else:
            capture(ctx.meter, obj)
        return base.SUCCESS


def _enc_definition(buf, pos, cid, ln, attr, di):
    pos = axdr.enc_structure(buf, pos, 4)
    pos = axdr.enc_long_unsigned(buf, pos, cid)
    pos = axdr.enc_octet_string(buf, pos, ln)
    pos = axdr.enc_integer(buf, pos, attr)
    return axdr.enc_long_unsigned(buf, pos, di)


PROFILE_GENERIC = ProfileGeneric()
