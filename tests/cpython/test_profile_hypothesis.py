# Profile generic (class 7) selective access against a model: range and
# entry descriptors of random shapes and values (wildcard and malformed
# date-times, from > to, columns that are no capture objects, entries past
# the end, wrong types, mutated bytes) on rings of random sizes. The handler
# never raises; it answers a standard data-access-result, or SUCCESS with a
# well-formed array whose rows are exactly the model's (a correct subset of
# the rows and columns present, oldest first, for mutated input).

import itertools
import sys
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from cosem_support import make  # noqa: E402

from dlms_micro import axdr  # noqa: E402
from dlms_micro.cosem import base, clock, profile  # noqa: E402
from dlms_micro.cosem.clock import CLOCK  # noqa: E402
from dlms_micro.cosem.profile import PROFILE_GENERIC, ProfileBuffer  # noqa: E402
from dlms_micro.cosem.register import REGISTER  # noqa: E402
from dlms_micro.meter import Meter, Role  # noqa: E402

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"
TEMP_LN = b"\x00\x00\x60\x09\x00\xff"
LP_LN = b"\x01\x00\x63\x01\x00\xff"
ACC = ((b"\x01" * 8, b"\x00" * 6), None)
COS = (
    (8, CLOCK_LN, 2, 0, profile.CLOCK_WIDTH),
    (3, ENERGY_LN, 2, 0, profile.field_width(axdr.DOUBLE_LONG_UNSIGNED)),
    (3, TEMP_LN, 2, 0, profile.field_width(axdr.LONG)),
)
NCOLS = len(COS)
NCLOCK = len(clock.initial_state())
E_SLOT = NCLOCK
T_SLOT = NCLOCK + 1
PB_SLOT = NCLOCK + 2
T0 = 1782900000  # 2026-07-01 10:00 UTC
RESULTS = {base.SUCCESS, base.TYPE_UNMATCHED, base.OTHER_REASON}
# integer tags and their (size, signed)
INTS = {15: (1, 1), 16: (2, 1), 5: (4, 1), 20: (8, 1), 17: (1, 0), 18: (2, 0), 6: (4, 0), 21: (8, 0), 22: (1, 0)}


class Wall:
    t = T0

    def __call__(self):
        return self.t


def build(entries, captures):
    # A meter whose profile captured (seconds after T0, energy, temperature)
    # rows; the context and the profile's entry.
    param = (COS, 900, entries)
    table = (
        (8, 0, CLOCK_LN, CLOCK, 0, ACC, None),
        (3, 0, ENERGY_LN, REGISTER, E_SLOT, ACC, (0, 30)),
        (3, 0, TEMP_LN, REGISTER, T_SLOT, ACC, (-1, 9, axdr.LONG)),
        (7, 1, LP_LN, PROFILE_GENERIC, PB_SLOT, ACC, param),
    )
    wall = Wall()
    ctx = make(table, clock.initial_state() + [0, 0, ProfileBuffer(param)], wall_clock=wall, size=8192)
    obj = table[3]
    for dt, energy, temp in captures:
        wall.t = T0 + dt
        ctx.meter.state[E_SLOT] = energy
        ctx.meter.state[T_SLOT] = temp
        profile.capture(ctx.meter, obj)
    return ctx, obj


def elements(out):
    # The rows of an encoded buffer: a list of tuples of element bytes.
    r = axdr.Reader(out)
    rows = []
    for _ in range(r.array()):
        n = r.structure()
        row = []
        for _ in range(n):
            p = r.pos
            r.skip()
            row.append(bytes(out[p:r.pos]))
        rows.append(tuple(row))
    assert r.pos == len(out), "trailing bytes after the array"
    return rows


def read(ctx, obj, selector, params):
    ctx.r.reset(params)
    ctx.pos = 0
    ctx.cursor = 0
    ctx.selector = selector
    res = PROFILE_GENERIC.get(ctx, obj, 2)
    assert ctx.cursor == 0  # an 8 KB buffer holds it all
    return res, bytes(ctx.buf[0:ctx.pos])


# ------------------------------------------------------------------ model


def int_value(elem):
    t = elem[0]
    if t not in INTS:
        return None
    size, signed = INTS[t]
    return int.from_bytes(elem[1:1 + size], "big", signed=bool(signed))


def dt_value(elem):
    if elem[0] == axdr.OCTET_STRING and len(elem) == 14 and elem[1] == 12:
        return elem[2:]
    if elem[0] == axdr.DATE_TIME and len(elem) == 13:
        return elem[1:]
    return None


def dt_cmp(a, b):
    # year, then month, day, hour, minute, second, hundredths; a field left
    # unspecified on either side (0xFF, year 0xFFFF; a month above 12 or a
    # day above 31: the DST and last-day markers) matches anything
    ya = a[0] << 8 | a[1]
    yb = b[0] << 8 | b[1]
    if 0xFFFF not in (ya, yb) and ya != yb:
        return -1 if ya < yb else 1
    for k, top in ((2, 12), (3, 31), (5, 255), (6, 255), (7, 255), (8, 255)):
        x, y = a[k], b[k]
        if x == 0xFF or y == 0xFF or x > top or y > top:
            continue
        if x != y:
            return -1 if x < y else 1
    return 0


class Bad(Exception):
    pass


class Parser:
    # Reads the model's view of a parameter; raises Bad (TYPE_UNMATCHED).
    def __init__(self, b):
        self.b = b
        self.p = 0

    def take(self, n):
        if self.p + n > len(self.b):
            raise Bad
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def tag(self, want=None):
        t = self.take(1)[0]
        if want is not None and t != want:
            raise Bad
        return t

    def uint(self, tag, n):
        self.tag(tag)
        return int.from_bytes(self.take(n), "big")

    def definition(self):
        self.tag(axdr.STRUCTURE)
        if self.take(1)[0] != 4:
            raise Bad
        cid = self.uint(axdr.LONG_UNSIGNED, 2)
        self.tag(axdr.OCTET_STRING)
        if self.take(1)[0] != 6:
            raise Bad
        ln = self.take(6)
        attr = self.uint(axdr.INTEGER, 1)
        di = self.uint(axdr.LONG_UNSIGNED, 2)
        for i, co in enumerate(COS):
            if (co[0], co[1], co[2], co[3]) == (cid, ln, attr if attr < 128 else attr - 256, di):
                return i
        return -1

    def bound(self):
        t = self.tag()
        if t == axdr.OCTET_STRING:
            if self.take(1)[0] != 12:
                raise Bad
            return ("dt", self.take(12))
        if t == axdr.DATE_TIME:
            return ("dt", self.take(12))
        if t not in INTS:
            raise Bad
        size, signed = INTS[t]
        return ("int", int.from_bytes(self.take(size), "big", signed=bool(signed)))


def model(rows, selector, params):
    # (data-access-result, rows selected) for the rows present (full rows,
    # oldest first).
    pr = Parser(params)
    try:
        pr.tag(axdr.STRUCTURE)
        if pr.take(1)[0] != 4:
            return base.TYPE_UNMATCHED, None
        if selector == 1:
            rcol = pr.definition()
            lo = pr.bound()
            hi = pr.bound()
            pr.tag(axdr.ARRAY)
            n = pr.take(1)[0]
            if n >= 0x80:
                raise Bad  # (the generator never sends long counts)
            cols = []  # in the order asked; a column twice is refused
            for _ in range(n):
                c = pr.definition()
                if c < 0 or c in cols:
                    return base.OTHER_REASON, None
                cols.append(c)
            if rcol < 0 or lo[0] != hi[0]:
                return base.OTHER_REASON, None
            if lo[0] == "int" and lo[1] > hi[1]:
                return base.OTHER_REASON, None
            if lo[0] == "dt" and dt_cmp(lo[1], hi[1]) > 0:
                return base.OTHER_REASON, None
            cols = cols or list(range(NCOLS))
            picked = []
            for row in rows:
                e = row[rcol]
                if lo[0] == "int":
                    v = int_value(e)
                    ok = v is not None and lo[1] <= v <= hi[1]
                else:
                    v = dt_value(e)
                    ok = v is not None and dt_cmp(v, lo[1]) >= 0 and dt_cmp(v, hi[1]) <= 0
                if ok:
                    picked.append(row)
        elif selector == 2:
            fe = pr.uint(axdr.DOUBLE_LONG_UNSIGNED, 4)
            te = pr.uint(axdr.DOUBLE_LONG_UNSIGNED, 4)
            fs = pr.uint(axdr.LONG_UNSIGNED, 2)
            ts = pr.uint(axdr.LONG_UNSIGNED, 2)
            fe = fe or 1
            fs = fs or 1
            ts = ts or NCOLS
            if (te and fe > te) or fs > ts or ts > NCOLS:
                return base.OTHER_REASON, None
            picked = rows[fe - 1:te if te else len(rows)]
            cols = list(range(fs - 1, ts))
        else:
            return base.OTHER_REASON, None
    except Bad:
        return base.TYPE_UNMATCHED, None
    return base.SUCCESS, [tuple(row[c] for c in cols) for row in picked]


# ------------------------------------------------------------- strategies

capture = st.tuples(st.integers(0, 5 * 86400), st.one_of(st.integers(0, 1000), st.integers(0, 0xFFFFFFFF)),
                    st.one_of(st.integers(-100, 100), st.integers(-0x8000, 0x7FFF)))
captures = st.one_of(st.lists(capture, min_size=4, max_size=30), st.lists(capture, max_size=3))


def enc_def(cid, ln, attr, di):
    return b"\x02\x04\x12" + cid.to_bytes(2, "big") + b"\x09\x06" + ln + b"\x0f" + (attr & 0xFF).to_bytes(1, "big") \
        + b"\x12" + di.to_bytes(2, "big")


definitions = st.one_of(
    st.sampled_from([enc_def(*co[:4]) for co in COS]),
    st.builds(enc_def, st.sampled_from([1, 3, 8, 7]), st.sampled_from([CLOCK_LN, ENERGY_LN, TEMP_LN, b"\x01" * 6]),
              st.integers(-2, 4), st.integers(0, 2)),
)


@st.composite
def int_bounds(draw):
    tag = draw(st.sampled_from(sorted(INTS)))
    size, signed = INTS[tag]
    lo = -(1 << (8 * size - 1)) if signed else 0
    hi = (1 << (8 * size - 1)) - 1 if signed else (1 << (8 * size)) - 1
    v = draw(st.one_of(st.integers(max(lo, -120), min(hi, 1000)), st.integers(lo, hi)))
    return bytes((tag,)) + v.to_bytes(size, "big", signed=bool(signed))


def field(lo, hi):
    return st.one_of(st.integers(lo, hi), st.just(0xFF), st.integers(0, 0xFF))


@st.composite
def dt_bounds(draw):
    year = draw(st.one_of(st.just(2026), st.just(0xFFFF), st.integers(2025, 2027), st.integers(0, 0xFFFF)))
    b = bytearray(12)
    b[0:2] = year.to_bytes(2, "big")
    b[2] = draw(st.one_of(st.just(7), field(1, 12), st.sampled_from([0xFD, 0xFE])))
    b[3] = draw(st.one_of(field(1, 6), st.sampled_from([0xFD, 0xFE])))
    b[4] = draw(field(1, 7))
    b[5] = draw(field(0, 23))
    b[6] = draw(field(0, 59))
    b[7] = draw(field(0, 59))
    b[8] = draw(field(0, 99))
    b[9:11] = draw(st.sampled_from([b"\x80\x00", b"\x00\x00", b"\xff\xc4"]))
    b[11] = draw(st.sampled_from([0, 0xFF, 0x80]))
    form = draw(st.sampled_from(["os", "os", "dt", "dt", "short", "long"]))
    if form == "os":
        return b"\x09\x0c" + bytes(b)
    if form == "dt":
        return b"\x19" + bytes(b)
    if form == "short":
        return b"\x09\x0b" + bytes(b[:11])
    return b"\x09\x0d" + bytes(b) + b"\x00"


other_bounds = st.sampled_from([b"\x03\x01", b"\x00", b"\x0a\x02AB", b"\x01\x00", b"\x1a\x07\xea\x07\x01\xff"])
bounds = st.one_of(int_bounds(), dt_bounds(), other_bounds)


@st.composite
def range_params(draw):
    # mostly a capture object with bounds of its own kind; anything else too
    sel = draw(st.lists(definitions, max_size=4))
    n = draw(st.sampled_from([4] * 9 + [3, 5]))
    col = draw(st.integers(-1, NCOLS - 1))
    if col < 0:
        restricting = draw(definitions)
        lo, hi = draw(bounds), draw(bounds)
    else:
        restricting = enc_def(*COS[col][:4])
        kind = dt_bounds() if col == 0 else int_bounds()
        lo = draw(st.one_of(kind, kind, kind, bounds))
        hi = draw(st.one_of(kind, kind, kind, bounds))
        if draw(st.booleans()):
            lo, hi = min(lo, hi), max(lo, hi)  # (often from <= to; not always)
    return b"\x02" + bytes((n,)) + restricting + lo + hi + b"\x01" + bytes((len(sel),)) + b"".join(sel)


small_or_any32 = st.one_of(st.integers(0, 40), st.integers(0, 0xFFFFFFFF))


@st.composite
def entry_params(draw):
    parts = [
        bytes((6,)) + draw(small_or_any32).to_bytes(4, "big"),
        bytes((6,)) + draw(small_or_any32).to_bytes(4, "big"),
        bytes((18,)) + draw(st.one_of(st.integers(0, 4), st.integers(0, 4), st.integers(0, 0xFFFF))).to_bytes(2, "big"),
        bytes((18,)) + draw(st.one_of(st.integers(0, 4), st.integers(0, 4), st.integers(0, 0xFFFF))).to_bytes(2, "big"),
    ]
    if draw(st.integers(0, 9)) == 0:  # a wrong type somewhere
        i = draw(st.integers(0, 3))
        parts[i] = draw(st.sampled_from([b"\x05\x00\x00\x00\x01", b"\x11\x01", b"\x12\x00\x01", b"\x00"]))
    n = draw(st.sampled_from([4] * 9 + [3]))
    return b"\x02" + bytes((n,)) + b"".join(parts)


@st.composite
def sensible_entry_params(draw):
    # an entry_descriptor a client would send
    fe = draw(st.integers(0, 14))
    te = draw(st.one_of(st.just(0), st.integers(fe, 16)))
    fs = draw(st.integers(0, NCOLS))
    ts = draw(st.one_of(st.just(0), st.integers(max(fs, 1), NCOLS)))
    return b"\x02\x04\x06" + fe.to_bytes(4, "big") + b"\x06" + te.to_bytes(4, "big") + b"\x12" \
        + fs.to_bytes(2, "big") + b"\x12" + ts.to_bytes(2, "big")


@st.composite
def sensible_range_params(draw):
    # a range_descriptor a client would send: by time or by value, from <= to
    col = draw(st.integers(0, NCOLS - 1))
    sel = draw(st.lists(st.sampled_from([enc_def(*co[:4]) for co in COS]), max_size=3))
    if col == 0:
        a = draw(st.integers(0, 5 * 86400))
        b = draw(st.integers(a, 5 * 86400 + 900))
        tag = draw(st.sampled_from([b"\x09\x0c", b"\x19"]))
        wild = draw(st.sampled_from([(), (6, 7, 8), (2, 3), (0, 1, 2, 3)]))  # (year: both bytes)

        def enc(t):
            v = bytearray(12)
            y, mo, d, h, mi, sec = divmod_time(T0 + t)
            axdr.put_date_time(v, 0, y, mo, d, 0xFF, h, mi, sec, 0, 0, 0)
            for i in wild:
                v[i] = 0xFF
            return tag + bytes(v)

        lo, hi = enc(a), enc(b)
    else:
        size_tag = draw(st.sampled_from([(18, 2), (6, 4), (16, 2), (5, 4), (21, 8)]))
        signed = size_tag[0] in (16, 5)
        a = draw(st.integers(-100 if signed else 0, 1000))
        b = draw(st.integers(a, 1100))
        lo = bytes((size_tag[0],)) + a.to_bytes(size_tag[1], "big", signed=signed)
        hi = bytes((size_tag[0],)) + b.to_bytes(size_tag[1], "big", signed=signed)
    return b"\x02\x04" + enc_def(*COS[col][:4]) + lo + hi + b"\x01" + bytes((len(sel),)) + b"".join(sel)


def divmod_time(t):
    # UTC seconds -> (year, month, day, hour, minute, second), July 2026
    days, rest = divmod(t - 1782864000, 86400)  # 2026-07-01 00:00 UTC
    return 2026, 7, 1 + days, rest // 3600, rest // 60 % 60, rest % 60


# ------------------------------------------------------------------ tests


def check(entries, caps, selector, params):
    ctx, obj = build(entries, caps)
    res, full = read(ctx, obj, 0, b"")
    assert res == base.SUCCESS
    rows = elements(full)
    assert len(rows) == min(entries, len(caps))
    res, out = read(ctx, obj, selector, params)
    want_res, want_rows = model(rows, selector, params)
    assert res == want_res, (res, want_res, params.hex())
    event("data-access-result %d" % res)
    if res == base.SUCCESS:
        got = elements(out)
        assert got == want_rows, params.hex()
        event("rows selected: %s" % ("none" if not got else "all" if len(got) == len(rows) else "some"))


@FAST
@given(st.integers(1, 12), captures, st.one_of(sensible_range_params(), range_params()))
def test_range_descriptor_matches_the_model(entries, caps, params):
    check(entries, caps, 1, params)


@FAST
@given(st.integers(1, 12), captures, st.one_of(sensible_entry_params(), entry_params()))
def test_entry_descriptor_matches_the_model(entries, caps, params):
    check(entries, caps, 2, params)


@FAST
@given(st.integers(1, 12), captures, st.integers(3, 255), st.one_of(entry_params(), range_params()))
def test_other_selectors_are_refused(entries, caps, selector, params):
    # (the dispatcher passes only listed selectors; the handler refuses the
    # rest by itself too)
    check(entries, caps, selector, params)


def subset_of(rows, out_rows):
    # out_rows are rows (in order, none twice) projected on one column list
    # (columns in any order: a range descriptor sends them as asked)
    for k in range(1, NCOLS + 1):
        for cols in itertools.permutations(range(NCOLS), k):
            proj = [tuple(r[c] for c in cols) for r in rows]
            i = 0
            for o in out_rows:
                while i < len(proj) and proj[i] != o:
                    i += 1
                if i == len(proj):
                    break
                i += 1
            else:
                return True
    return False


@FAST
@given(st.integers(1, 12), captures, st.sampled_from([1, 2]), st.one_of(entry_params(), range_params()),
       st.lists(st.tuples(st.sampled_from(["cut", "set", "insert"]), st.integers(0, 200), st.integers(0, 255)),
                min_size=1, max_size=3))
def test_mutated_parameters_never_raise(entries, caps, selector, params, mutations):
    b = bytearray(params)
    for kind, at, v in mutations:
        at = at % (len(b) + 1)
        if kind == "cut":
            del b[at:]
        elif kind == "set" and at < len(b):
            b[at] = v
        else:
            b.insert(at, v)
    ctx, obj = build(entries, caps)
    rows = elements(read(ctx, obj, 0, b"")[1])
    res, out = read(ctx, obj, selector, bytes(b))
    assert res in RESULTS, res
    if res == base.SUCCESS:
        assert subset_of(rows, elements(out)), bytes(b).hex()


@FAST
@given(st.binary(max_size=80), st.sampled_from([1, 2]))
def test_random_bytes_never_raise(data, selector):
    ctx, obj = build(4, [(900 * i, i, -i) for i in range(6)])
    rows = elements(read(ctx, obj, 0, b"")[1])
    res, out = read(ctx, obj, selector, data)
    assert res in RESULTS, res
    if res == base.SUCCESS:
        assert subset_of(rows, elements(out)), data.hex()


# --------------------------------------------------- deferred writes (flush)


class CopyStore:
    def __init__(self):
        self.d = {}
        self.keys = []

    def get(self, k):
        return self.d.get(k)

    def put(self, k, v):
        self.d[k] = bytes(v)
        self.keys.append(k)


def energy_profile(rows):
    # (param, table) of a profile of one energy column, the register in slot 0
    param = ((COS[1],), 900, rows)
    return param, (
        (3, 0, ENERGY_LN, REGISTER, 0, ACC, (0, 30)),
        (7, 1, LP_LN, PROFILE_GENERIC, 1, ACC, param),
    )


@FAST
@given(st.integers(1, 9), st.integers(0, 10), st.integers(0, 12), st.integers(0, 25), st.booleans())
def test_flush_writes_each_touched_page_once_and_boots_back_to_ram(rows, page_rows, before, during, reset):
    # whatever the ring size, page size and counts, flush() writes the pages
    # of the rows captured since defer() (all pages once the ring went
    # round), each once, and a boot restores exactly the RAM ring
    param, table = energy_profile(rows)
    sto = CopyStore()
    pb = ProfileBuffer(param, sto, "lp", page_rows=page_rows)
    m = Meter(table, (Role(16),), [0, pb])
    for v in range(before):
        m.state[0] = v
        profile.capture(m, table[1])
    pb.defer()
    if reset:
        assert pb.reset()
    start = pb.total
    for v in range(during):
        m.state[0] = 1000 + v
        profile.capture(m, table[1])
    sto.keys = []
    n = pb.flush()
    first = max(start, pb.total - pb.count)
    want = {"lp.%d" % ((a % rows) // pb.page_rows) for a in range(first, pb.total)}
    assert n == len(sto.keys) == len(set(sto.keys)) == len(want)
    assert set(sto.keys) == want
    again = ProfileBuffer(param, sto, "lp", page_rows=page_rows)
    assert (again.total, again.count, again.epoch) == (pb.total, pb.count, pb.epoch)
    for a in range(pb.total - pb.count, pb.total):
        f = (a % rows) * pb.width
        assert again.data[f:f + pb.width] == pb.data[f:f + pb.width]


def ring_rows(pb):
    # (total, count, [record bytes, oldest first]) of a ProfileBuffer
    out = []
    for a in range(pb.total - pb.count, pb.total):
        f = (a % pb.rows) * pb.width
        out.append(bytes(pb.data[f:f + pb.width]))
    return pb.total, pb.count, out


ops = st.lists(st.one_of(st.integers(0, 1000), st.sampled_from(["reset", "period", "defer", "flush", "crash"])),
               max_size=40)


@FAST
@given(st.integers(1, 9), st.integers(0, 10), ops)
def test_a_crash_after_any_op_boots_into_the_last_durable_state(rows, page_rows, script):
    # Random captures, resets, capture_period changes, deferrals and
    # flushes, with crashes (RAM lost, reboot from storage) anywhere: the
    # boot gives back exactly the last state the storage was brought to -
    # after each op when not deferred, after a flush, and a reset or new
    # period at once even while deferred - never a row of an older epoch.
    param, table = energy_profile(rows)
    sto = CopyStore()

    def boot():
        pb = ProfileBuffer(param, sto, "lp", page_rows=page_rows)
        return pb, Meter(table, (Role(16),), [0, pb])

    pb, m = boot()
    durable = (pb.epoch, pb.period) + ring_rows(pb)
    for op in script:
        if op == "crash":
            pb, m = boot()
            assert (pb.epoch, pb.period) + ring_rows(pb) == durable
            continue
        if op == "reset":
            assert pb.reset()
        elif op == "period":
            assert pb.set_period(pb.period + 60)
        elif op == "defer":
            pb.defer()
        elif op == "flush":
            pb.flush()
        else:
            m.state[0] = op
            profile.capture(m, table[1])
        if not pb.deferred:
            durable = (pb.epoch, pb.period) + ring_rows(pb)
        elif op in ("reset", "period"):
            durable = (pb.epoch, pb.period, 0, 0, [])
