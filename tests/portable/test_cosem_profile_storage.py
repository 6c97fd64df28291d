# Profile generic (class 7) persistence and capture_period: the ring kept as
# one storage record per page plus a header with the reset epoch, a power cut
# between any two puts, corrupt and missing pages, resets that must not bring
# old rows back, bulk backfill with deferred writes, and SET capture_period.

from cosem_support import act, allocated, get_ok, make, put
from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.app.xdlms import Services
from dlms_micro.cosem import base, clock, profile
from dlms_micro.cosem.profile import PROFILE_GENERIC, ProfileBuffer
from dlms_micro.cosem.register import REGISTER
from dlms_micro.meter import Meter, Role
from support import unhex

ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"
LP_LN = b"\x01\x00\x63\x01\x00\xff"
REG_ACC = ((b"\x01\x01", b"\x00"), None)
LP_RO = ((b"\x01\x01\x01\x01\x01\x01\x01", b"\x01\x01"), None)
LP_RW = ((b"\x01\x01\x01\x03\x01\x01\x01", b"\x01\x01"), None)  # capture_period writable
COS = ((3, ENERGY_LN, 2, 0, profile.field_width(axdr.DOUBLE_LONG_UNSIGNED)),)
KEY = "lp"


class Store:
    # The storage interface with atomic puts that copy their value. After
    # `budget` puts the power is gone: later puts never reach it. fail=True:
    # every put raises (a broken flash).
    def __init__(self, budget=-1, d=None):
        self.d = dict(d) if d else {}
        self.budget = budget
        self.puts = 0
        self.fail = False

    def get(self, k):
        return self.d.get(k)

    def put(self, k, v):
        if self.fail:
            raise OSError(5)
        self.puts += 1
        if 0 <= self.budget < self.puts:
            return
        self.d[k] = bytes(v)


class Sink:
    # A storage whose put copies into a preallocated buffer (allocates
    # nothing), to measure what the profile itself allocates.
    def __init__(self):
        self.buf = bytearray(300)
        self.n = 0

    def get(self, k):
        return None

    def put(self, k, v):
        n = len(v)
        self.buf[0:n] = v
        self.n = n


def meter_with(pb, entries=5, period=900, acc=LP_RO):
    param = (COS, period, entries)
    t = (
        (3, 0, ENERGY_LN, REGISTER, 0, REG_ACC, (0, 30)),
        (7, 1, LP_LN, PROFILE_GENERIC, 1, acc, param),
    )
    return Meter(t, (Role(16),), [0, pb]), t[1]


def param_of(entries=5, period=900):
    return (COS, period, entries)


def cap(m, obj, value):
    m.state[0] = value
    profile.capture(m, obj)


def energies(pb):
    # the rows present, oldest first: the energy, or None for a null row
    out = []
    for a in range(pb.total - pb.count, pb.total):
        f = (a % pb.rows) * pb.width
        n = pb.data[f]
        if n == 0:
            out.append(None)
        else:
            r = axdr.Reader(pb.data, f + 1, f + 1 + n)
            out.append(r.double_long_unsigned())
    return out


def boot(st, entries=5, page_rows=2, period=900):
    return ProfileBuffer(param_of(entries, period), st, KEY, page_rows=page_rows)


def filled(st, values, entries=5):
    # a profile over st (2 records a page) that captured these energies
    pb = boot(st, entries)
    m, obj = meter_with(pb, entries)
    for v in values:
        cap(m, obj, v)
    return pb, m, obj


def test_pages_and_header_layout():
    st = Store()
    pb = boot(st, entries=5, page_rows=2)
    assert (pb.npages, pb.page_rows, pb.width) == (3, 2, 6)
    # first boot writes the header: format 1, epoch 0, period 900, rows 5,
    # width 6, 2 records a page, CRC
    h = st.d[KEY]
    assert h[0:17] == unhex("01 00000000 00000384 00000005 0006 0002") and len(h) == 19
    m, obj = meter_with(pb)
    cap(m, obj, 7)
    assert st.puts == 2 and sorted(st.d) == [KEY, "lp.0"]
    p0 = st.d["lp.0"]
    # format 2, epoch 0, total 1, two 6-byte records, CRC
    assert len(p0) == 11 + 12 and p0[0:9] == unhex("02 00000000 00000001")
    assert p0[9:15] == unhex("05 0600000007") and p0[15] == 0  # slot 1: empty
    for v in (8, 9, 10, 11):
        cap(m, obj, v)
    # row 4 is alone in the last, short page
    assert len(st.d["lp.2"]) == 11 + 6 and st.d["lp.2"][5:9] == unhex("00000005")
    assert st.puts == 6  # one page per capture


def test_default_page_size_stays_under_256_bytes():
    pb = ProfileBuffer(param_of(3840), Sink(), KEY)
    assert pb.page_rows == 40 and 11 + pb.page_rows * pb.width <= 256
    wide = ((3, ENERGY_LN, 2, 0, 300),)
    pb = ProfileBuffer((wide, 0, 4), Sink(), KEY)
    assert pb.page_rows == 1  # a record bigger than a page: one a page
    pb = ProfileBuffer(param_of(3), Sink(), KEY, page_rows=10)
    assert pb.page_rows == 3 and pb.npages == 1


def test_restart_restores_rows_and_counters():
    st = Store()
    pb, m, obj = filled(st, range(100, 108))  # 8 rows in a ring of 5
    pb2 = boot(st)
    assert (pb2.total, pb2.count, pb2.epoch) == (8, 5, 0)
    assert energies(pb2) == [103, 104, 105, 106, 107]
    assert pb2.data == pb.data
    # and it goes on where it stopped
    m2, obj2 = meter_with(pb2)
    cap(m2, obj2, 108)
    assert energies(boot(st)) == [104, 105, 106, 107, 108]


def scenario(st, script):
    # Run the script's ops on a profile over st; after each op, the RAM
    # state and the puts made so far.
    pb = boot(st)
    m, obj = meter_with(pb)
    states = [(st.puts, (pb.total, pb.count, energies(pb)))]
    for op in script:
        if op == "reset":
            pb.reset()
        elif op == "period":
            pb.set_period(pb.period + 60)
        else:
            cap(m, obj, op)
        states.append((st.puts, (pb.total, pb.count, energies(pb))))
    return states


SCRIPT = (100, 101, 102, 103, 104, 105, 106, "reset", 200, 201, 202, "period", 300, 301, "reset", "reset", 400)


def cuts(lo, hi):
    # Each op writes one record; a cut after any number of puts leaves, at
    # the next boot, exactly the state after the last op whose put was
    # made: no row lost, none from before a reset, none half written.
    # (Split over several tests: MicroPython's GC does not run inside one.)
    ref = scenario(Store(), SCRIPT)
    assert ref[-1][0] == 1 + len(SCRIPT)  # the first boot's header, one per op
    for budget in range(lo, hi):
        st = Store(budget)
        scenario(st, SCRIPT)
        pb = boot(Store(-1, st.d))
        got = (pb.total, pb.count, energies(pb))
        want = (0, 0, [])
        for puts, state in ref:
            if puts <= budget:
                want = state
        assert got == want, (budget, got, want)


def test_power_cut_between_any_two_puts_0_to_4():
    cuts(0, 5)


def test_power_cut_between_any_two_puts_5_to_9():
    cuts(5, 10)


def test_power_cut_between_any_two_puts_10_to_14():
    cuts(10, 15)


def test_power_cut_between_any_two_puts_15_to_18():
    cuts(15, 2 + len(SCRIPT))


def test_reset_then_cut_never_resurrects_rows():
    st = Store()
    pb, m, obj = filled(st, range(100, 105))
    assert act(make(m.table, m.state, handlers=m.handlers), obj, 1, "0F00") == (base.SUCCESS, b"")
    pb2 = boot(st)  # cut right after the reset's header
    assert (pb2.total, pb2.count, pb2.epoch) == (0, 0, 1)
    # one row of the new epoch, while pages of the old one (totals up to 5)
    # are still in storage
    m2, obj2 = meter_with(pb2)
    cap(m2, obj2, 900)
    pb3 = boot(st)
    assert (pb3.total, pb3.count, energies(pb3)) == (1, 1, [900])
    assert st.d["lp.1"][1:5] == unhex("00000000")  # an old page, ignored


def test_corrupt_or_missing_page_costs_only_its_rows():
    st = Store()
    pb, m, obj = filled(st, range(100, 107))  # rows 2..6; slots 2,3,4,0,1
    bad = bytearray(st.d["lp.1"])  # slots 2, 3: rows 2, 3
    bad[12] ^= 0x40
    st.d["lp.1"] = bytes(bad)
    pb2 = boot(st)
    assert (pb2.total, pb2.count) == (7, 5)
    assert energies(pb2) == [None, None, 104, 105, 106]
    # the GET answers the lost rows with null-data, the others as they were
    m2, obj2 = meter_with(pb2)
    ctx = make(m2.table, m2.state, handlers=m2.handlers)
    assert get_ok(ctx, obj2, 2) == unhex("0105 020100 020100 020106%08x 020106%08x 020106%08x" % (104, 105, 106))
    # a truncated page, a missing one
    st.d["lp.1"] = st.d["lp.1"][:-1]
    del st.d["lp.2"]
    assert energies(boot(st)) == [None, None, None, 105, 106]
    # the page of the newest rows gone: the total falls back to the newest
    # page left, and rows it never saw are null
    st2 = Store()
    pb, m, obj = filled(st2, range(100, 104))
    del st2.d["lp.1"]  # rows 2, 3
    pb3 = boot(st2)
    assert (pb3.total, pb3.count, energies(pb3)) == (2, 2, [100, 101])


def test_header_damaged_or_of_another_layout_starts_a_new_epoch():
    st = Store()
    pb, m, obj = filled(st, range(100, 104))
    pb.reset()
    cap(m, obj, 500)  # epoch 1
    h = bytearray(st.d[KEY])
    h[3] ^= 1
    st.d[KEY] = bytes(h)
    pb2 = boot(st)
    assert (pb2.count, pb2.epoch) == (0, 2)  # above every page seen
    assert st.d[KEY][1:5] == unhex("00000002")  # rewritten
    # a table with other rows: the old pages are not read as its own
    st2 = Store()
    filled(st2, (100,))
    pb3 = boot(st2, entries=6)
    assert (pb3.count, pb3.epoch) == (0, 1)


def test_bulk_backfill_then_flush_writes_each_page_once():
    st = Store()
    pb = ProfileBuffer(param_of(10), st, KEY, page_rows=3)
    m, obj = meter_with(pb, entries=10)
    cap(m, obj, 1)
    n0 = st.puts
    pb.defer()
    for v in range(2, 40):  # 38 rows: the ring goes round several times
        cap(m, obj, v)
    assert st.puts == n0  # nothing written while deferred
    assert pb.flush() == 4 and st.puts == n0 + 4  # every page, once
    assert pb.flush() == 0
    pb2 = ProfileBuffer(param_of(10), Store(-1, st.d), KEY, page_rows=3)
    assert (pb2.total, pb2.count, energies(pb2)) == (39, 10, list(range(30, 40)))
    # a short deferral writes only the pages it touched
    pb.defer()
    cap(m, obj, 40)  # row 39: slot 9, the last page
    cap(m, obj, 41)  # row 40: slot 0, page 0
    n1 = st.puts
    assert pb.flush() == 2 and st.puts == n1 + 2
    # per-capture writes again after flush
    cap(m, obj, 42)
    assert st.puts == n1 + 3


def test_flush_counts_pages_not_rows():
    # 4 rows into 4 pages of 3: the 2 pages they are in
    pb = ProfileBuffer(param_of(10), Store(), KEY, page_rows=3)
    m, obj = meter_with(pb, entries=10)
    pb.defer()
    for v in range(4):
        cap(m, obj, v)
    assert pb.flush() == 2
    # a deferral that wraps round into the page it started in: that page once
    st = Store()
    pb = ProfileBuffer(param_of(3), st, KEY)  # one page of 3 records
    m, obj = meter_with(pb, entries=3)
    cap(m, obj, 0)
    cap(m, obj, 1)
    pb.defer()
    cap(m, obj, 2)  # slot 2
    cap(m, obj, 3)  # slot 0
    n = st.puts
    assert pb.flush() == 1 and st.puts == n + 1
    assert energies(ProfileBuffer(param_of(3), Store(-1, st.d), KEY)) == [1, 2, 3]


def test_power_cut_during_flush_keeps_whole_rows_only():
    ref = Store()
    pb = ProfileBuffer(param_of(10), ref, KEY, page_rows=3)
    m, obj = meter_with(pb, entries=10)
    for v in range(0, 6):
        cap(m, obj, v)
    before = ref.puts
    pb.defer()
    for v in range(6, 14):  # rows 6..13: slots 6..9, 0..3 (pages 2, 3, 0, 1)
        cap(m, obj, v)
    pb.flush()
    flushed = ref.puts - before
    assert flushed == 4
    for k in range(flushed + 1):
        st = Store(before + k)
        pb = ProfileBuffer(param_of(10), st, KEY, page_rows=3)
        m, obj = meter_with(pb, entries=10)
        for v in range(0, 6):
            cap(m, obj, v)
        pb.defer()
        for v in range(6, 14):
            cap(m, obj, v)
        pb.flush()
        got = ProfileBuffer(param_of(10), Store(-1, st.d), KEY, page_rows=3)
        rows = energies(got)
        # every row present is the right one, at its own entry
        first = got.total - got.count
        for i in range(len(rows)):
            assert rows[i] is None or rows[i] == first + i, (k, rows)
        if k == 0:
            assert (got.total, rows) == (6, [0, 1, 2, 3, 4, 5])
        else:
            assert got.total == 14
        if k == flushed:
            assert rows == list(range(4, 14))


def test_failing_storage_keeps_capturing_and_refuses_resets():
    st = Store()
    pb = boot(st)
    m, obj = meter_with(pb)
    cap(m, obj, 100)
    st.fail = True
    cap(m, obj, 101)
    assert pb.count == 2 and pb.save_errors == 1
    ctx = make(m.table, m.state, handlers=m.handlers)
    assert act(ctx, obj, 1, "0F00")[0] == base.HARDWARE_FAULT
    assert pb.count == 2 and pb.epoch == 0
    st.fail = False
    cap(m, obj, 102)  # rewrites page 1 (rows 2 and 3's slot)
    assert energies(boot(st)) == [100, None, 102]


def test_capture_with_persistence_allocates_nothing_on_micropython():
    # within one page (the page's key is made once per page): the page is
    # built in the one preallocated buffer; the storage's own costs aside
    sink = Sink()
    pb = ProfileBuffer(param_of(64), sink, KEY, page_rows=8)
    m, obj = meter_with(pb, entries=64)
    cap(m, obj, 1)

    def one():
        profile.capture(m, obj)

    used = allocated(one)  # warm-up + measured: rows 1 and 2, page 0
    assert used is None or used == 0, used
    assert sink.n == 11 + 8 * 6


def set_ctx(pb, acc=LP_RW):
    m, obj = meter_with(pb, acc=acc)
    return make(m.table, m.state, handlers=m.handlers), obj, m


def test_set_capture_period():
    st = Store()
    pb = boot(st)
    ctx, obj, m = set_ctx(pb)
    cap(m, obj, 100)
    cap(m, obj, 101)
    assert get_ok(ctx, obj, 4) == unhex("0600000384")
    # the same value: nothing changes
    assert put(ctx, obj, 4, "0600000384") == base.SUCCESS and pb.count == 2
    # a new one: stored, the buffer reset, persisted in the header
    assert put(ctx, obj, 4, "060000012C") == base.SUCCESS
    assert get_ok(ctx, obj, 4) == unhex("060000012C")
    assert get_ok(ctx, obj, 7) == unhex("0600000000")
    assert st.d[KEY][5:9] == unhex("0000012C")
    pb2 = boot(st)
    assert (pb2.period, pb2.count) == (300, 0)
    # refused: other types, truncated, other attributes
    assert put(ctx, obj, 4, "1203E8") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 4, "050000012C") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 4, "060000") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 4, "") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 8, "0600000009") == base.READ_WRITE_DENIED
    assert put(ctx, obj, 3, "0100") == base.READ_WRITE_DENIED
    assert pb.period == 300
    st.fail = True
    assert put(ctx, obj, 4, "0600000E10") == base.HARDWARE_FAULT and pb.period == 300


def test_tick_follows_the_new_capture_period():
    pb = ProfileBuffer(param_of(10, 900))
    ctx, obj, m = set_ctx(pb)
    t0 = 1782900000  # a multiple of 900 and of 300
    assert not profile.tick(m, obj, t0 + 1)
    assert put(ctx, obj, 4, "060000012C") == base.SUCCESS  # 5 minutes
    assert not profile.tick(m, obj, t0 + 2)  # notes the period again
    assert profile.tick(m, obj, t0 + 300)
    assert profile.tick(m, obj, t0 + 600)
    assert pb.count == 2
    assert put(ctx, obj, 4, "0600000000") == base.SUCCESS  # no automatic capture
    assert not profile.tick(m, obj, t0 + 900) and not profile.tick(m, obj, t0 + 5000)


def test_set_capture_period_through_the_services_needs_write_access():
    for acc, want in ((LP_RO, base.READ_WRITE_DENIED), (LP_RW, base.SUCCESS)):
        pb = ProfileBuffer(param_of(5))
        m, obj = meter_with(pb, acc=acc)
        a = asn.AssociationState()
        a.status = asn.ASSOCIATED
        a.role = 0
        a.conformance = asn.CONF_GET | asn.CONF_SET
        a.client_max_pdu = 256
        s = Services(m, a, 256)
        out = bytearray(8 + 256)
        req = unhex("C101C1 0007 0100630100ff 04 00 060000012C")
        end = s.handle(req, 0, len(req), out, 8, 8 + 256)
        assert bytes(out[8:end]) == unhex("C501C1") + bytes((want,))
        assert pb.period == (300 if want == base.SUCCESS else 900)
