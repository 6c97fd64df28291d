# gurux-dlms and dlms-cosem read the demo meter's Profile generic objects
# (class 7) over the TCP wrapper, HDLC over TCP and HDLC on a pseudo-terminal:
# the load profile 1.0.99.1.0.255 whole, by range (range_descriptor on the
# clock column) and by entry (entry_descriptor, with column selection), its
# other attributes as each client decodes them, the event log and the daily
# billing profile, refused selections, through small client PDUs (the buffer
# crosses many GET blocks) and 128-byte HDLC frames (an APDU spans several).
#
# The meter is this module's own: a demo meter with 2 days of history
# backfilled (~192 load-profile rows) in a fresh data directory. Every row a
# client reads is checked against the meter's own rows, read in the meter's
# thread (svc.call) and decoded with dlms_micro.axdr. The meter captures a
# new row at each quarter hour while the tests run, so a read is compared
# with the meter's selection before and after it: the client's rows must be
# the "after" rows' first ones, and at least as many as "before" held.
#
# Client support for selective access (see docs/compatibility.md):
#   gurux-dlms  readRowsByRange (date-times with not-specified fields via
#               GXDateTime.skip, selected columns), readRowsByEntry (entries;
#               columns as from_selected_value and a column COUNT, not the
#               last column's index: right only when the selection starts
#               at column 1)
#   dlms-cosem  RangeDescriptor with Python datetimes (no not-specified
#               fields; selected values and EntryDescriptor are not encoded
#               by it: interop_peers.cosem_range/cosem_entry add the bytes,
#               dlms-cosem sends them and reassembles the blocks)
# What no client can send (malformed descriptors, unknown selectors, a
# restricting object that is no capture object) goes as raw APDUs over the
# wrapper, inside an association gurux opened.

import datetime
import time

import pytest
from interop_expect import (
    CAPTURE_OBJECTS,
    CAPTURE_PERIOD,
    CLOCK,
    DAILY_PROFILE,
    ENERGY_IMPORT,
    EVENT_LOG,
    LOAD_PROFILE,
    POWER,
    PROFILE_ENTRIES,
    PROFILE_STATUS,
)
from interop_peers import (
    HDLC_PTY,
    HDLC_TCP,
    IO_TIMEOUT,
    TRANSPORTS,
    WRAPPER,
    CosemPeer,
    GuruxError,
    GuruxPeer,
    PeerPool,
    connected,
    cosem_entry,
    cosem_error_code,
    cosem_range,
    hdlc_frames,
)

from dlms_micro import axdr

HISTORY_DAYS = 2
UTC = datetime.timezone.utc
OTHER_REASON = 250
TYPE_UNMATCHED = 12
# client max PDU per transport: small ones so the ~5.4 KB buffer crosses
# 20 to 50 GET blocks; 1024 (the meter's) on the pty, where one block spans
# 8 or 9 HDLC frames of 128 bytes
GURUX_PDU = {WRAPPER: 128, HDLC_TCP: 256, HDLC_PTY: 1024}
COSEM_PDU = {WRAPPER: 128, HDLC_TCP: 256, HDLC_PTY: 1024}
# load-profile columns: (class id, logical name)
LP_COLUMNS = [(c[0], c[1]) for c in CAPTURE_OBJECTS[LOAD_PROFILE]]

all_transports = pytest.mark.parametrize("transport", TRANSPORTS)


@pytest.fixture(scope="module")
def lp_meter(tmp_path_factory):
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    store = FileStorage(str(tmp_path_factory.mktemp("profile-meter")))
    demo = DemoMeter(storage=store, seed=7, history=HISTORY_DAYS)
    with ThreadedService(demo, host="127.0.0.1", wrapper_port=0, hdlc_port=0, pty=True) as svc:
        yield svc


@pytest.fixture
def peers():
    pool = PeerPool()
    yield pool.keep
    pool.close_all()


# ------------------------------------------------------ the meter's own rows


def meter_rows(svc, obis):
    # The profile's rows, oldest first, each a list of decoded values (None
    # for a value captured as null-data), read from its ring in the meter's
    # thread: field [n][n bytes of A-XDR] at each column's offset.
    ln = bytes(int(x) for x in obis.split("."))

    def value(field):
        if not field[0]:
            return None
        v = axdr.decode(field, 1, 1 + field[0])[1]
        return bytes(v) if isinstance(v, (bytes, bytearray)) else v

    def snapshot():
        pb = svc.demo.profile_buffer(ln)
        records = []
        for a in range(pb.total - pb.count, pb.total):
            at = (a % pb.rows) * pb.width
            records.append(bytes(pb.data[at : at + pb.width]))
        return pb.offs, records

    offs, records = svc.call(snapshot)
    return [[value(rec[o:]) for o in offs] for rec in records]


def utc_of(octets):
    # a date-time octet-string (deviation 0 in the demo) -> aware datetime
    y = (octets[0] << 8) | octets[1]
    return datetime.datetime(y, octets[2], octets[3], octets[5], octets[6], octets[7], tzinfo=UTC)


def whole(rows):
    return rows


def by_range(lo, hi, columns=None):
    # rows whose clock is in [lo, hi] (aware datetimes, whole seconds);
    # columns: indexes kept (None: all)
    def select(rows):
        return [_cols(r, columns) for r in rows if lo <= utc_of(r[0]) <= hi]

    return select


def by_time_of_day(lo, hi):
    # rows whose clock's time of day (h, m, s) is in [lo, hi]: what a range
    # with year, month and day not specified selects
    def select(rows):
        return [r for r in rows if lo <= (r[0][5], r[0][6], r[0][7]) <= hi]

    return select


def by_entry(from_entry, to_entry=0, from_col=1, to_col=0):
    # entries from_entry..to_entry (0: the last), columns from_col..to_col
    # (0: the last), counted from 1
    def select(rows):
        end = to_entry or len(rows)
        cols = range(max(from_col, 1) - 1, to_col or (len(rows[0]) if rows else 0))
        return [[r[i] for i in cols] for r in rows[max(from_entry, 1) - 1 : end]]

    return select


def _cols(row, columns):
    return row if columns is None else [row[i] for i in columns]


def read_checked(svc, obis, selection, read):
    # read() through a client; its rows must be the meter's selection
    # (compared before and after the read: a capture may happen during it).
    before = selection(meter_rows(svc, obis))
    got = read()
    after = selection(meter_rows(svc, obis))
    assert len(before) <= len(got) <= len(after), (len(before), len(got), len(after))
    assert got == after[: len(got)], _first_difference(got, after)
    return got


def _first_difference(got, want):
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return "row %d: client %r, meter %r" % (i, a, b)
    return "lengths %d, %d" % (len(got), len(want))


def check_load_rows(rows, columns=4):
    # What a load profile's rows must look like: 4 columns of the right
    # types, one row per quarter hour without gaps, captured within a
    # minute of it (the backfill steps a minute at a time), energy only
    # growing.
    assert rows, "no rows"
    for r in rows:
        assert len(r) == columns, r
    if columns != 4:
        return
    for r in rows:
        assert isinstance(r[0], bytes) and len(r[0]) == 12, r
        assert r[0][8] in (0, 0xFF) and r[0][9:11] == b"\x00\x00", r[0].hex()  # deviation 0 (UTC)
        assert isinstance(r[1], int) and 0 <= r[1] <= 255, r
        assert isinstance(r[2], int) and isinstance(r[3], int), r
    t = [int(utc_of(r[0]).timestamp()) for r in rows]
    assert all(x % 900 <= 60 for x in t), [x % 900 for x in t]
    assert [b // 900 - a // 900 for a, b in zip(t, t[1:])] == [1] * (len(t) - 1)
    for c in (2, 3):
        v = [r[c] for r in rows]
        assert v == sorted(v), c


def last_quarter(svc):
    # The clock of the newest load-profile row (aware datetime).
    return utc_of(meter_rows(svc, LOAD_PROFILE)[-1][0])


def count_rows(svc, obis):
    return len(meter_rows(svc, obis))


# ------------------------------------------------------------ gurux-dlms


def gurux(peers, svc, transport, sap=32, **kw):
    return connected(peers(GuruxPeer(svc, transport, sap=sap, **kw)))


def gurux_end(p):
    p.release()
    p.disconnect()


def gurux_profile(p, obis):
    # A GXDLMSProfileGeneric with its capture objects read (gurux decodes a
    # buffer with them).
    from gurux_dlms.objects import GXDLMSProfileGeneric

    pg = GXDLMSProfileGeneric(obis)
    p.read(pg, 3)
    return pg


def gurux_capture_objects(pg):
    # capture_objects as gurux decoded them: (class, "a.b.c.d.e.f", attribute, data index)
    return [(int(o.objectType), o.logicalName, c.attributeIndex, c.dataIndex) for o, c in pg.captureObjects]


def gurux_columns(pg, indexes):
    # (object, capture object) pairs of the given 0-based columns
    return [pg.captureObjects[i] for i in indexes]


def gurux_error(exc):
    for name in ("code", "errorCode"):
        v = getattr(exc, name, None)
        if v is not None:
            return int(v)
    return None


def gurux_time(dt, skip=None):
    from gurux_dlms import GXDateTime

    g = GXDateTime(dt)
    if skip is not None:
        g.skip = skip
    return g


def gurux_sent_apdus(p):
    # the APDUs gurux sent (wrapper: after the 8-byte header; HDLC: after
    # the LLC header E6 E6 00 of I-frames; RR and other frames left out)
    out = []
    for m in p.sent_apdus():
        if p.transport == WRAPPER:
            out.append(m[8:])
        else:
            i = m.find(b"\xe6\xe6\x00")
            if i > 0:
                out.append(m[i + 3 :])
    return out


def gurux_received(p):
    return b"".join(bytes.fromhex(h) for d, h in p.trace if d == "rx")


@all_transports
def test_gurux_reads_profile_attributes_and_the_whole_load_profile(lp_meter, peers, transport):
    p = gurux(peers, lp_meter, transport, max_pdu=GURUX_PDU[transport])
    pg = gurux_profile(p, LOAD_PROFILE)
    assert gurux_capture_objects(pg) == CAPTURE_OBJECTS[LOAD_PROFILE]
    p.read(pg, 4)
    p.read(pg, 8)
    p.read(pg, 7)
    assert pg.capturePeriod == CAPTURE_PERIOD[LOAD_PROFILE] == 900
    assert pg.profileEntries == PROFILE_ENTRIES[LOAD_PROFILE]
    n = count_rows(lp_meter, LOAD_PROFILE)
    assert n - 1 <= pg.entriesInUse <= n and n >= HISTORY_DAYS * 96 - 1
    p.trace.clear()
    rows = read_checked(lp_meter, LOAD_PROFILE, whole, lambda: p.read_rows(pg, p.client.read(pg, 2)))
    check_load_rows(rows)
    # as gurux decodes them: date-times, and the energies unscaled (scaler
    # 0, i.e. 1, never read here)
    assert len(pg.buffer) == len(rows)
    for mine, theirs in zip(rows, pg.buffer):
        assert theirs[0].value == utc_of(mine[0]), (theirs[0].value, mine[0].hex())
        assert list(theirs[1:]) == mine[1:]
    # the buffer came in many GET blocks (one GET-next each), and over HDLC
    # each 1024-byte APDU in several 128-byte frames
    nexts = [a for a in gurux_sent_apdus(p) if a[:2] == b"\xc0\x02"]
    size = GURUX_PDU[transport]
    assert len(nexts) >= len(rows) * 28 // size - 1, len(nexts)
    if transport != WRAPPER:
        frames = hdlc_frames(gurux_received(p))
        segmented = [f for f, _c in frames if f & 0x08]  # segmentation bit
        assert len(segmented) >= len(rows) * 28 // 128 - len(nexts) - 2, (len(frames), len(segmented))
    gurux_end(p)


@all_transports
def test_gurux_reads_the_load_profile_by_range(lp_meter, peers, transport):
    from gurux_dlms.enums import DateTimeSkips

    p = gurux(peers, lp_meter, transport, max_pdu=GURUX_PDU[transport])
    pg = gurux_profile(p, LOAD_PROFILE)
    # the last 24 hours
    hi = datetime.datetime.now(UTC).replace(microsecond=0)
    lo = hi - datetime.timedelta(hours=24)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi), lambda: p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi)))
    check_load_rows(rows)
    assert 95 <= len(rows) <= 97
    assert [t[0].value for t in pg.buffer] == [utc_of(r[0]) for r in rows]
    # a window between two captures: an empty array
    t = utc_of(meter_rows(lp_meter, LOAD_PROFILE)[50][0])
    lo, hi = t + datetime.timedelta(minutes=1), t + datetime.timedelta(minutes=10)
    assert p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi)) == []
    assert pg.buffer == []
    # year, month, day (and day of week, hundredths, deviation, status) not
    # specified: 10:00:00 .. 11:00:00 on every day
    skip = DateTimeSkips.YEAR | DateTimeSkips.MONTH | DateTimeSkips.DAY | DateTimeSkips.DAY_OF_WEEK
    skip |= DateTimeSkips.MILLISECOND | DateTimeSkips.DEVITATION | DateTimeSkips.STATUS
    day = datetime.datetime(2026, 1, 1, tzinfo=UTC)
    lo = gurux_time(day.replace(hour=10), skip)
    hi = gurux_time(day.replace(hour=11), skip)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_time_of_day((10, 0, 0), (11, 0, 0)), lambda: p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi)))
    assert len(rows) >= 4 * HISTORY_DAYS - 1, rows
    # the GET with the range: FFFF FF FF FF 0A 00 00 FF 8000 FF
    sent = [a for a in gurux_sent_apdus(p) if a[:2] == b"\xc0\x01"][-1]
    assert bytes.fromhex("090cffffffffff0a0000ff8000ff") in sent, sent.hex()
    # selected columns: clock and energy import
    lo = datetime.datetime.now(UTC).replace(microsecond=0) - datetime.timedelta(hours=6)
    hi = lo + datetime.timedelta(hours=7)
    cols = gurux_columns(pg, (0, 2))
    rows = read_checked(
        lp_meter, LOAD_PROFILE, by_range(lo, hi, (0, 2)), lambda: p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi, cols), cols)
    )
    assert 23 <= len(rows) <= 25 and all(len(r) == 2 for r in rows)
    assert [len(r) for r in pg.buffer] == [2] * len(rows)
    assert [r[1] for r in pg.buffer] == [r[1] for r in rows]
    gurux_end(p)


@all_transports
def test_gurux_reads_the_load_profile_by_entry(lp_meter, peers, transport):
    p = gurux(peers, lp_meter, transport, max_pdu=GURUX_PDU[transport])
    pg = gurux_profile(p, LOAD_PROFILE)
    # the 10 oldest rows (entries 1..10)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(1, 10), lambda: p.read_rows(pg, p.client.readRowsByEntry(pg, 1, 10)))
    assert len(rows) == 10
    check_load_rows(rows)
    # from entry 100 to the last (count 0: to_entry 0)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(100), lambda: p.read_rows(pg, p.client.readRowsByEntry(pg, 100, 0)))
    check_load_rows(rows)
    assert len(rows) >= HISTORY_DAYS * 96 - 100
    # columns 1..2 (clock, status): gurux sends from 1 "count" 2, which is
    # also the last column's index
    cols = gurux_columns(pg, (0, 1))
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(5, 7, 1, 2), lambda: p.read_rows(pg, p.client.readRowsByEntry(pg, 5, 3, cols), cols))
    assert [len(r) for r in rows] == [2, 2, 2]
    assert [t[0].value for t in pg.buffer] == [utc_of(r[0]) for r in rows]
    # entries past the last one: an empty array
    assert p.read_rows(pg, p.client.readRowsByEntry(pg, 100000, 5)) == []
    gurux_end(p)


@pytest.mark.parametrize("transport", (WRAPPER, HDLC_TCP))
def test_gurux_refused_selections_and_the_association_goes_on(lp_meter, peers, transport):
    p = gurux(peers, lp_meter, transport, max_pdu=GURUX_PDU[transport])
    pg = gurux_profile(p, LOAD_PROFILE)
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    # from after to: the meter refuses (other-reason)
    with pytest.raises(Exception) as ei:
        p.read_rows(pg, p.client.readRowsByRange(pg, now, now - datetime.timedelta(hours=1)))
    assert gurux_error(ei.value) == OTHER_REASON, repr(ei.value)
    # columns 3..4: gurux sends from_selected_value 3 and a count, 2, as
    # to_selected_value; from > to, so the meter refuses it (other-reason)
    cols = gurux_columns(pg, (2, 3))
    with pytest.raises(Exception) as ei:
        p.read_rows(pg, p.client.readRowsByEntry(pg, 1, 2, cols), cols)
    assert gurux_error(ei.value) == OTHER_REASON, repr(ei.value)
    sent = [a for a in gurux_sent_apdus(p) if a[:2] == b"\xc0\x01"][-1]
    assert bytes.fromhex("12000312 0002".replace(" ", "")) in sent, sent.hex()
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(1, 2), lambda: p.read_rows(pg, p.client.readRowsByEntry(pg, 1, 2)))
    assert len(rows) == 2
    gurux_end(p)


def test_gurux_range_after_reading_sort_object(lp_meter, peers):
    # gurux's readRowsByRange restricts on pg.sortObject when it is set, and
    # reading sort_object (attribute 6: all zero, no sort object, as FIFO
    # needs none) sets it to a class-0 object 0.0.0.0.0.0, which is no
    # capture object: the meter refuses (other-reason). Clearing it makes
    # gurux restrict on the first capture object, the clock, again.
    p = gurux(peers, lp_meter, WRAPPER)
    pg = gurux_profile(p, LOAD_PROFILE)
    p.read(pg, 5)
    p.read(pg, 6)
    assert int(pg.sortMethod) == 1 and pg.sortObject.logicalName == "0.0.0.0.0.0"
    hi = datetime.datetime.now(UTC).replace(microsecond=0)
    lo = hi - datetime.timedelta(hours=2)
    with pytest.raises(GuruxError) as ei:
        p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi))
    assert ei.value.code == OTHER_REASON
    pg.sortObject = None
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi), lambda: p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi)))
    assert 7 <= len(rows) <= 9
    gurux_end(p)


@pytest.mark.parametrize("transport", (WRAPPER, HDLC_PTY))
def test_gurux_ciphered_management_reads_the_load_profile(lp_meter, peers, transport):
    p = gurux(peers, lp_meter, transport, sap=1, max_pdu=256)
    pg = gurux_profile(p, LOAD_PROFILE)
    p.trace.clear()
    rows = read_checked(lp_meter, LOAD_PROFILE, whole, lambda: p.read_rows(pg, p.client.read(pg, 2)))
    check_load_rows(rows)
    hi = datetime.datetime.now(UTC).replace(microsecond=0)
    lo = hi - datetime.timedelta(hours=3)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi), lambda: p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi)))
    assert 11 <= len(rows) <= 13
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(3, 4), lambda: p.read_rows(pg, p.client.readRowsByEntry(pg, 3, 2)))
    assert len(rows) == 2
    # every request went ciphered (glo-get-request, C8)
    tags = {a[0] for a in gurux_sent_apdus(p)}
    assert tags == {0xC8}, tags
    gurux_end(p)


def test_gurux_reads_the_event_log_and_the_daily_billing_profile(lp_meter, peers):
    p = gurux(peers, lp_meter, WRAPPER, max_pdu=128)
    ev = gurux_profile(p, EVENT_LOG)
    assert gurux_capture_objects(ev) == CAPTURE_OBJECTS[EVENT_LOG]
    p.read(ev, 4)
    p.read(ev, 8)
    assert (ev.capturePeriod, ev.profileEntries) == (0, PROFILE_ENTRIES[EVENT_LOG])
    events = read_checked(lp_meter, EVENT_LOG, whole, lambda: p.read_rows(ev, p.client.read(ev, 2)))
    check_events(events)
    assert [t[0].value for t in ev.buffer] == [utc_of(r[0]) for r in events]
    daily = gurux_profile(p, DAILY_PROFILE)
    assert gurux_capture_objects(daily) == CAPTURE_OBJECTS[DAILY_PROFILE]
    p.read(daily, 4)
    assert daily.capturePeriod == CAPTURE_PERIOD[DAILY_PROFILE]
    rows = read_checked(lp_meter, DAILY_PROFILE, whole, lambda: p.read_rows(daily, p.client.read(daily, 2)))
    check_daily(lp_meter, rows)
    assert [list(t[1:]) for t in daily.buffer] == [r[1:] for r in rows]
    gurux_end(p)


def check_events(rows):
    # clock, event code (IDIS: 1 power down, 2 power up, 4/5 clock adjusted);
    # the meter started once, its power-up is logged
    assert rows and all(len(r) == 2 and len(r[0]) == 12 for r in rows)
    assert all(r[1] in (1, 2, 4, 5) for r in rows), rows
    assert 2 in [r[1] for r in rows]
    t = [utc_of(r[0]) for r in rows]
    assert t == sorted(t)


def check_daily(svc, rows):
    # one row per midnight (UTC), the energies (columns 2 and 3) the load
    # profile holds then; the columns the capture objects list
    ncols = len(CAPTURE_OBJECTS[DAILY_PROFILE])
    assert len(rows) >= HISTORY_DAYS - 1 and all(len(r) == ncols for r in rows)
    lp = {r[0]: r for r in meter_rows(svc, LOAD_PROFILE)}
    for r in rows:
        t = utc_of(r[0])
        assert (t.hour, t.minute) == (0, 0), t
        assert lp[r[0]][2:4] == r[1:3], (r, lp[r[0]])
        assert all(isinstance(v, int) and v >= 0 for v in r[1:]), r


# ------------------------------------------------------------ dlms-cosem


def cosem(peers, svc, transport, sap=32, **kw):
    return connected(peers(CosemPeer(svc, transport, sap=sap, **kw)))


def cosem_end(p):
    p.release()
    p.disconnect()


def cosem_capture_objects(p, obis):
    # capture_objects as dlms-cosem parses them: (class, "a.b.c.d.e.f", attribute, data index)
    from dlms_cosem.utils import parse_as_dlms_data

    return [(c[0], "%d.%d.%d.%d.%d.%d" % tuple(c[1]), c[2], c[3]) for c in parse_as_dlms_data(p.get(7, obis, 3))]


def cosem_decoded(rows, obis, period):
    # the rows as dlms-cosem's ProfileGenericBufferParser decodes them
    from dlms_cosem import cosem as c
    from dlms_cosem import enumerations
    from dlms_cosem.parsers import ProfileGenericBufferParser

    attrs = [
        c.CosemAttribute(interface=enumerations.CosemInterface(cid), instance=c.Obis.from_string(ln), attribute=a)
        for cid, ln, a, _di in CAPTURE_OBJECTS[obis]
    ]
    return ProfileGenericBufferParser(capture_objects=attrs, capture_period=period).parse_entries(rows)


@all_transports
def test_dlms_cosem_reads_profile_attributes_and_the_whole_load_profile(lp_meter, peers, transport):
    from dlms_cosem.utils import parse_as_dlms_data

    p = cosem(peers, lp_meter, transport, max_pdu=COSEM_PDU[transport])
    assert cosem_capture_objects(p, LOAD_PROFILE) == CAPTURE_OBJECTS[LOAD_PROFILE]
    period, in_use, entries = (parse_as_dlms_data(p.get(7, LOAD_PROFILE, a)) for a in (4, 7, 8))
    assert period == CAPTURE_PERIOD[LOAD_PROFILE] and entries == PROFILE_ENTRIES[LOAD_PROFILE]
    n = count_rows(lp_meter, LOAD_PROFILE)
    assert n - 1 <= in_use <= n
    sent = len(p.sent)
    rows = read_checked(lp_meter, LOAD_PROFILE, whole, lambda: p.get_rows(LOAD_PROFILE))
    check_load_rows(rows)
    # one GET and a GET-next per further block
    assert len(p.sent) - sent >= len(rows) * 28 // COSEM_PDU[transport] - 1, len(p.sent) - sent
    decoded = cosem_decoded(rows, LOAD_PROFILE, 15)
    # naive datetimes for deviation 0 (see docs/compatibility.md)
    assert [d[0].value.replace(tzinfo=UTC) for d in decoded] == [utc_of(r[0]) for r in rows]
    assert [[v.value for v in d[1:]] for d in decoded] == [r[1:] for r in rows]
    cosem_end(p)


@all_transports
def test_dlms_cosem_reads_the_load_profile_by_range(lp_meter, peers, transport):
    p = cosem(peers, lp_meter, transport, max_pdu=COSEM_PDU[transport])
    hi = datetime.datetime.now(UTC).replace(microsecond=0)
    lo = hi - datetime.timedelta(hours=24)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi), lambda: p.get_rows(LOAD_PROFILE, cosem_range(lo, hi)))
    check_load_rows(rows)
    assert 95 <= len(rows) <= 97
    # naive datetimes go with deviation "not specified"; the meter ignores
    # the deviation of a bound either way
    rows2 = p.get_rows(LOAD_PROFILE, cosem_range(lo.replace(tzinfo=None), hi.replace(tzinfo=None)))
    assert rows2[: len(rows)] == rows
    # a window between two captures: empty
    t = utc_of(meter_rows(lp_meter, LOAD_PROFILE)[70][0])
    assert p.get_rows(LOAD_PROFILE, cosem_range(t + datetime.timedelta(seconds=61), t + datetime.timedelta(minutes=14))) == []
    # selected values: clock and energy export (columns 1 and 4)
    lo = hi - datetime.timedelta(hours=5)
    sel = cosem_range(lo, hi, columns=[LP_COLUMNS[0], LP_COLUMNS[3]])
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi, (0, 3)), lambda: p.get_rows(LOAD_PROFILE, sel))
    assert 19 <= len(rows) <= 21 and all(len(r) == 2 for r in rows)
    # out of capture order: export, status, clock, in that order
    sel = cosem_range(lo, hi, columns=[LP_COLUMNS[3], LP_COLUMNS[1], LP_COLUMNS[0]])
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi, (3, 1, 0)), lambda: p.get_rows(LOAD_PROFILE, sel))
    assert all(len(r) == 3 and len(r[2]) == 12 for r in rows)
    cosem_end(p)


@all_transports
def test_dlms_cosem_reads_the_load_profile_by_entry(lp_meter, peers, transport):
    p = cosem(peers, lp_meter, transport, max_pdu=COSEM_PDU[transport])
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(1, 10), lambda: p.get_rows(LOAD_PROFILE, cosem_entry(1, 10)))
    assert len(rows) == 10
    check_load_rows(rows)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(150), lambda: p.get_rows(LOAD_PROFILE, cosem_entry(150)))
    check_load_rows(rows)
    # columns 3..4 (the energies) of entries 20..29
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(20, 29, 3, 4), lambda: p.get_rows(LOAD_PROFILE, cosem_entry(20, 29, 3, 4)))
    assert [len(r) for r in rows] == [2] * 10
    # column 2 to the last (to_selected_value 0)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(1, 3, 2, 0), lambda: p.get_rows(LOAD_PROFILE, cosem_entry(1, 3, 2, 0)))
    assert [len(r) for r in rows] == [3] * 3
    # past the last entry: empty
    assert p.get_rows(LOAD_PROFILE, cosem_entry(100000, 100010)) == []
    cosem_end(p)


@pytest.mark.parametrize("transport", (WRAPPER, HDLC_TCP))
def test_dlms_cosem_refused_selections_and_the_association_goes_on(lp_meter, peers, transport):
    from dlms_cosem.client import DataResultError

    p = cosem(peers, lp_meter, transport, max_pdu=COSEM_PDU[transport])
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    for bad in (
        cosem_range(now, now - datetime.timedelta(hours=1)),  # from after to
        cosem_entry(10, 5),  # from_entry after to_entry
        cosem_entry(1, 5, 3, 2),  # from column after to column
        cosem_entry(1, 5, 1, 5),  # a 5th column of 4
        cosem_range(now - datetime.timedelta(hours=1), now, columns=[(3, POWER)]),  # no capture object
        cosem_range(now - datetime.timedelta(hours=1), now, restricting=(3, POWER)),
    ):
        with pytest.raises(DataResultError) as ei:
            p.get_rows(LOAD_PROFILE, bad)
        assert cosem_error_code(ei.value) == OTHER_REASON, (bad, ei.value)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(1, 2), lambda: p.get_rows(LOAD_PROFILE, cosem_entry(1, 2)))
    assert len(rows) == 2
    cosem_end(p)


@pytest.mark.parametrize("transport", (WRAPPER, HDLC_TCP))
def test_dlms_cosem_ciphered_management_reads_the_load_profile(lp_meter, peers, transport):
    p = cosem(peers, lp_meter, transport, sap=1, max_pdu=256)
    sent = len(p.sent)
    rows = read_checked(lp_meter, LOAD_PROFILE, whole, lambda: p.get_rows(LOAD_PROFILE))
    check_load_rows(rows)
    hi = datetime.datetime.now(UTC).replace(microsecond=0)
    lo = hi - datetime.timedelta(hours=3)
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi), lambda: p.get_rows(LOAD_PROFILE, cosem_range(lo, hi)))
    assert 11 <= len(rows) <= 13
    rows = read_checked(lp_meter, LOAD_PROFILE, by_entry(3, 4), lambda: p.get_rows(LOAD_PROFILE, cosem_entry(3, 4)))
    assert len(rows) == 2
    # general-glo-ciphering (DB) for every GET and GET-next
    assert {a[0] for a in p.sent[sent:]} == {0xDB}
    cosem_end(p)


def test_dlms_cosem_reads_the_event_log_and_the_daily_billing_profile(lp_meter, peers):
    from dlms_cosem.utils import parse_as_dlms_data

    p = cosem(peers, lp_meter, WRAPPER, max_pdu=128)
    assert cosem_capture_objects(p, EVENT_LOG) == CAPTURE_OBJECTS[EVENT_LOG]
    assert parse_as_dlms_data(p.get(7, EVENT_LOG, 8)) == PROFILE_ENTRIES[EVENT_LOG]
    events = read_checked(lp_meter, EVENT_LOG, whole, lambda: p.get_rows(EVENT_LOG))
    check_events(events)
    decoded = cosem_decoded(events, EVENT_LOG, 0)
    assert [d[0].value.replace(tzinfo=UTC) for d in decoded] == [utc_of(r[0]) for r in events]
    assert cosem_capture_objects(p, DAILY_PROFILE) == CAPTURE_OBJECTS[DAILY_PROFILE]
    rows = read_checked(lp_meter, DAILY_PROFILE, whole, lambda: p.get_rows(DAILY_PROFILE))
    check_daily(lp_meter, rows)
    # the daily rows by range: the last two days' midnights
    hi = datetime.datetime.now(UTC).replace(microsecond=0)
    lo = hi - datetime.timedelta(days=2)
    got = read_checked(lp_meter, DAILY_PROFILE, by_range(lo, hi), lambda: p.get_rows(DAILY_PROFILE, cosem_range(lo, hi)))
    assert 1 <= len(got) <= 2
    cosem_end(p)


# ------------------------------------------- raw APDUs over the wrapper


def raw_get(p, selector, params, obis=LOAD_PROFILE, attr=2, client=32):
    # A GET-Request-Normal for obis/attr with selective access (selector,
    # params: A-XDR bytes; selector None: none) sent on the wrapper socket
    # of gurux's open association; the meter's answer (APDU).
    ln = bytes(int(x) for x in obis.split("."))
    apdu = b"\xc0\x01\xc1\x00\x07" + ln + bytes([attr])
    apdu += b"\x00" if selector is None else bytes([1, selector]) + params
    p.media.send(bytes([0, 1, 0, client, 0, 1]) + len(apdu).to_bytes(2, "big") + apdu)
    deadline = time.monotonic() + IO_TIMEOUT
    got = b""
    while len(got) < 8 or len(got) < 8 + int.from_bytes(got[6:8], "big"):
        got += p.media.recv(deadline)
    return got[8:]


def _dt(dt):
    return b"\x09\x0c" + dt.year.to_bytes(2, "big") + bytes([dt.month, dt.day, 0xFF, dt.hour, dt.minute, dt.second, 0, 0x80, 0, 0xFF])


def _definition(cid, obis, attr=2):
    return b"\x02\x04\x12" + cid.to_bytes(2, "big") + b"\x09\x06" + bytes(int(x) for x in obis.split(".")) + b"\x0f" + bytes([attr]) + b"\x12\x00\x00"


def _entries(fe, te, fc, tc):
    return b"\x02\x04\x06" + fe.to_bytes(4, "big") + b"\x06" + te.to_bytes(4, "big") + b"\x12" + fc.to_bytes(2, "big") + b"\x12" + tc.to_bytes(2, "big")


REFUSED = b"\xc4\x01\xc1\x01"  # get-response-normal, data-access-result


def test_raw_selections_no_client_sends(lp_meter, peers):
    p = gurux(peers, lp_meter, WRAPPER)
    now = datetime.datetime.now(UTC).replace(microsecond=0)
    lo, hi = _dt(now - datetime.timedelta(hours=1)), _dt(now)
    clock = _definition(8, CLOCK)
    cases = [
        # (what, selector, parameters, data-access-result)
        ("selector 3 (none such)", 3, b"\x02\x00", OTHER_REASON),
        ("range: bounds of two types", 1, b"\x02\x04" + clock + lo + b"\x06\x00\x00\x00\x01" + b"\x01\x00", OTHER_REASON),
        ("range: restricting object a status column attribute 3", 1, b"\x02\x04" + _definition(1, PROFILE_STATUS, 3) + lo + hi + b"\x01\x00", OTHER_REASON),
        ("range: a structure of 3", 1, b"\x02\x03" + clock + lo + hi, TYPE_UNMATCHED),
        ("range: restricting object not a structure", 1, b"\x02\x04\x12\x00\x08" + lo + hi + b"\x01\x00", TYPE_UNMATCHED),
        ("range: selected values not an array", 1, b"\x02\x04" + clock + lo + hi + b"\x00", TYPE_UNMATCHED),
        ("entry: from_entry as long-unsigned", 2, b"\x02\x04\x12\x00\x01\x06\x00\x00\x00\x02\x12\x00\x01\x12\x00\x00", TYPE_UNMATCHED),
        ("entry: columns 0..9", 2, _entries(1, 2, 0, 9), OTHER_REASON),
        ("selective access on capture_period", 2, _entries(1, 2, 0, 0), OTHER_REASON),
    ]
    problems = []
    for what, sel, params, want in cases:
        attr = 4 if "capture_period" in what else 2
        got = raw_get(p, sel, params, attr=attr)
        if got != REFUSED + bytes([want]):
            problems.append("%s: %s (want %s%02x)" % (what, got.hex(), REFUSED.hex(), want))
    # entries and ranges that select nothing: an empty array
    empty = [
        ("entries past the last", 2, _entries(100000, 0, 1, 0)),
        ("range in 2020", 1, b"\x02\x04" + clock + _dt(datetime.datetime(2020, 1, 1)) + _dt(datetime.datetime(2020, 2, 1)) + b"\x01\x00"),
        ("range: integer bounds on the energy column", 1, b"\x02\x04" + _definition(3, ENERGY_IMPORT) + b"\x06\xff\xff\xff\xf0\x06\xff\xff\xff\xff\x01\x00"),
    ]
    for what, sel, params in empty:
        got = raw_get(p, sel, params)
        if got != b"\xc4\x01\xc1\x00\x01\x00":
            problems.append("%s: %s (want an empty array)" % (what, got.hex()))
    # an integer range on the energy column selects by energy: rows whose
    # import is within [lo, hi]
    rows = meter_rows(lp_meter, LOAD_PROFILE)
    lo_e, hi_e = rows[20][2], rows[40][2]
    got = raw_get(p, 1, b"\x02\x04" + _definition(3, ENERGY_IMPORT) + b"\x06" + lo_e.to_bytes(4, "big") + b"\x06" + hi_e.to_bytes(4, "big") + b"\x01\x01" + _definition(3, ENERGY_IMPORT))
    want = [r[2] for r in rows if lo_e <= r[2] <= hi_e]
    assert got[:4] == b"\xc4\x01\xc1\x00", got.hex()
    _t, value, _end = axdr.decode(got, 4)
    assert [r[1][0][1] for r in value] == want, (value, want)  # (tag, [(tag, value)]) each
    assert not problems, "\n".join(problems)
    # the association still serves
    pg = gurux_profile(p, LOAD_PROFILE)
    assert len(p.read_rows(pg, p.client.readRowsByEntry(pg, 1, 1))) == 1
    gurux_end(p)


# --------------------------------------- two associations, one profile


def test_a_second_association_reading_the_same_profile_leaves_a_block_transfer_whole(lp_meter, peers):
    # The selection of a buffer GET is kept per channel: another
    # association's GET of the same profile between two blocks of the first
    # changes nothing in it (gurux would not notice: it takes an array
    # shorter than its header announced without complaint).
    from gurux_dlms import GXReplyData

    a = gurux(peers, lp_meter, WRAPPER, max_pdu=128)
    b = gurux(peers, lp_meter, HDLC_TCP)
    pa = gurux_profile(a, LOAD_PROFILE)
    pb = gurux_profile(b, LOAD_PROFILE)
    before = meter_rows(lp_meter, LOAD_PROFILE)
    reply = GXReplyData()
    a._packet(a.client.read(pa, 2)[0], reply)  # the first block of the whole buffer
    assert reply.isMoreData()
    # another association reads entries 5..7, columns 1..2, in between
    cols = gurux_columns(pb, (0, 1))
    got = read_checked(lp_meter, LOAD_PROFILE, by_entry(5, 7, 1, 2), lambda: b.read_rows(pb, b.client.readRowsByEntry(pb, 5, 3, cols), cols))
    assert len(got) == 3
    while reply.isMoreData():
        a._packet(a.client.receiverReady(reply), reply)
    rows = [[bytes(v) if isinstance(v, (bytes, bytearray)) else v for v in r] for r in reply.value]
    after = meter_rows(lp_meter, LOAD_PROFILE)
    assert len(before) <= len(rows) <= len(after), (len(before), len(rows))
    assert rows == after[: len(rows)]


def test_gurux_selected_columns_out_of_capture_order(lp_meter, peers):
    # gurux-dlms decodes range-selected columns in the order its request
    # listed them (its reference server sends them so): the meter does too.
    p = gurux(peers, lp_meter, WRAPPER)
    pg = gurux_profile(p, LOAD_PROFILE)
    hi = datetime.datetime.now(UTC).replace(microsecond=0)
    lo = hi - datetime.timedelta(hours=2)
    cols = gurux_columns(pg, (2, 0))  # energy import, then the clock
    rows = read_checked(lp_meter, LOAD_PROFILE, by_range(lo, hi, (2, 0)), lambda: p.read_rows(pg, p.client.readRowsByRange(pg, lo, hi, cols), cols))
    assert [r[1].value for r in pg.buffer] == [utc_of(r[1]) for r in rows]
    gurux_end(p)


# ------------------------------------------------ the wire bench, kept honest


def test_bench_wire_counts_a_whole_read_of_96_rows():
    # tools/bench_wire.py's figures for one case: gurux reads the 96 rows of
    # a one-day meter whole over the wrapper at PDU 1024: 3 GET blocks, one
    # request message per block, the rows' 2690 bytes plus a few per block.
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "bench_wire.py")
    spec = importlib.util.spec_from_file_location("bench_wire", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    meter = bench.Meter(1)
    try:
        assert meter.rows == bench.ROWS == 96
        n, (b_up, b_down, n_up, n_down, blocks) = bench.gurux_read(meter, WRAPPER, 32, 1024, False)
        assert n == 96
        assert (n_up, n_down, blocks) == (3, 3, 3)
        assert 96 * 28 + 2 < b_down < 96 * 28 + 2 + 3 * 30, b_down
        assert b_up == 8 + 13 + 2 * (8 + 7)  # GET-Request-Normal, then two GET-next
    finally:
        meter.stop()
