# Property tests for the sources (dlms_micro/source): hostile bytes and
# timing never raise or wedge them, values come only from checked messages,
# chunking never changes a result, floats are rounded exactly, and S0
# counts exactly the pulses that are long enough.

import struct
import sys
from fractions import Fraction
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from source_support import data_message, pump  # noqa: E402

from dlms_micro import source  # noqa: E402
from dlms_micro.source import iec21_readout as r  # noqa: E402
from dlms_micro.source import modbus_rtu as mb  # noqa: E402
from dlms_micro.source import s0  # noqa: E402

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

IDENT = b"/ABC5\\2METER\r\n"
BLOCK = b"F.F(00)\r\nC.1.0(42)\r\n1.8.0(012345.678*kWh)\r\n2.8.0(000001.000*kWh)\r\n1.6.0(1.5*kW)(2612071215)\r\n!\r\n"
FIELDS = ["1.8.0", "2.8.0", "F.F", "C.1.0", "1.6.0", "1.6.0[1]"]


def good_poll(s, t):
    out = pump(s, t)
    s.feed(IDENT, 0, len(IDENT), t + 300)
    pump(s, t + 500, out)
    m = data_message(BLOCK)
    s.feed(m, 0, len(m), t + 900)
    pump(s, t + 900, out)
    return out


READOUT_PIECES = st.one_of(
    st.binary(max_size=60),
    st.sampled_from([IDENT, b"/ABC:X\r\n", b"/ABCEX\r\n", b"/ABC9X\r\n", b"/?!\r\n", b"\x02", b"\x03", b"!\r\n",
                     data_message(BLOCK), data_message(BLOCK)[:-1] + b"\x00", BLOCK, b"1.8.0(", b"*kWh)",
                     data_message(b"1.8.0(9*kWh)\r\n!\r\n")]),
)


@FAST
@given(st.lists(st.tuples(READOUT_PIECES, st.integers(min_value=0, max_value=4000)), max_size=15))
def test_readout_random_input_never_raises_or_wedges(pieces):
    s = r.Readout(FIELDS, retries=1, interval=10**8)
    t = 0
    for data, dt in pieces:
        t += dt
        s.feed(data, 0, len(data), t)
        pump(s, t)
        for i in range(len(FIELDS)):
            if s.field_status[i] == source.OK:
                # a value only ever comes from a whole, checked message
                assert s.numeric[i] == 1 or s.fields[i] == "1.6.0[1]"
    # let whatever runs finish, then a normal poll must work
    for k in range(40):
        pump(s, t + 500 * k)
    assert s.state == r.IDLE
    t += 40000
    s.poll(t)
    out = good_poll(s, t)
    assert ("done", source.OK, source.E_NONE) in out, out
    assert s.values[0] == 12345678 and s.values[1] == 1000


@FAST
@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30), st.booleans())
def test_readout_chunking_never_changes_the_result(sizes, echo):
    s = r.Readout(FIELDS)
    pump(s, 0)
    stream = (b"/?!\r\n" if echo else b"") + IDENT
    s.feed(stream, 0, len(stream), 300)
    pump(s, 500)
    m = data_message(BLOCK)
    pos = 0
    for n in sizes + [len(m)]:
        piece = m[pos : pos + n]
        pos += len(piece)
        s.feed(piece, 0, len(piece), 900)
    assert pump(s, 900) == [("done", source.OK, source.E_NONE)]
    assert list(s.values) == [12345678, 1000, 0, 42, 15, 2612071215]
    assert list(s.scalers) == [0, 0, 0, 0, 2, 0]  # 1.5 kW = 15 * 10**2 W


@FAST
@given(st.integers(min_value=0, max_value=len(data_message(BLOCK)) - 2), st.integers(min_value=1, max_value=127))
def test_readout_any_corrupted_byte_never_changes_a_value(pos, flip):
    s = r.Readout(FIELDS, retries=0)
    good_poll(s, 0)
    before = list(s.values), bytes(s.texts)
    m = bytearray(data_message(BLOCK.replace(b"012345.678", b"099999.999")))
    m[pos + 1] ^= flip  # any byte after STX, BCC included
    s.poll(0)
    pump(s, 60000)
    s.feed(IDENT, 0, len(IDENT), 60300)
    pump(s, 60500)
    s.feed(bytes(m), 0, len(m), 60900)
    for k in range(5):
        pump(s, 60900 + 1000 * k)
    # one flipped bit in 7-bit characters always changes the XOR: the BCC
    # catches it (or the message is cut); nothing from it is taken
    assert (list(s.values), bytes(s.texts)) == before


def exact_round(x, k):
    v = Fraction(x) * Fraction(10) ** k
    n = abs(v)
    q = int(n + Fraction(1, 2))  # half away from zero
    return -q if v < 0 else q


@FAST
@given(st.integers(min_value=0, max_value=0xFFFFFFFF), st.integers(min_value=-4, max_value=6))
def test_float32_scaling_is_exact(bits, k):
    x = struct.unpack(">f", bits.to_bytes(4, "big"))[0]
    e = (bits >> 23) & 0xFF
    if e == 0xFF:
        return
    m = bits & 0x7FFFFF
    got = mb.scaled(bits >> 31, m | 0x800000 if e else m, (e - 150) if e else -149, k)
    assert got == exact_round(x, k)


MAP = {"registers": [
    {"name": "f", "address": 0, "type": "float32", "scaler": -2, "unit": "kWh"},
    {"name": "i", "address": 2, "type": "int32", "word_order": "little"},
    {"name": "u", "address": 4, "type": "uint16"},
    {"name": "d", "address": 5, "type": "float64", "scaler": -1},
]}


def reply_for(req, regs):
    body = bytearray((req[0], req[1], 2 * req[5]))
    start = (req[2] << 8) | req[3]
    for a in range(start, start + req[5]):
        body += regs[a].to_bytes(2, "big")
    c = mb.crc(body, 0, len(body))
    return bytes(body) + bytes((c & 0xFF, c >> 8))


REGS = list(struct.unpack(">HH", struct.pack(">f", 1234.5678))) + [0x5678, 0xFFFF, 7] + \
    list(struct.unpack(">HHHH", struct.pack(">d", -0.25)))


@FAST
@given(st.lists(st.tuples(st.binary(max_size=30), st.integers(min_value=0, max_value=800)), max_size=15))
def test_modbus_random_bytes_never_raise_or_wedge(pieces):
    m = mb.ModbusMaster([{"slave": 5, "map": MAP}], retries=1, interval=5000)
    assert m.write(5, 1, [1, 2])
    t = 0
    for data, dt in pieces:
        t += dt
        m.feed(data, 0, len(data), t)
        pump(m, t)
    for k in range(10):
        pump(m, t + 1000 * k)
    assert m.write_state in (mb.W_DONE, mb.W_FAILED)
    t += 20000
    m.poll(t)
    out = pump(m, t)
    req = out[-1][1]
    ans = reply_for(req, REGS)
    m.feed(ans, 0, len(ans), t + 10)
    assert pump(m, t + 10) == [("done", source.OK, source.E_NONE)]
    assert m.values[1] == -0x10000 + 0x5678  # little word order: 0xFFFF5678
    assert m.values[0] == 123457 and m.values[2] == 7 and m.values[3] == -3  # -2.5 -> -3


@FAST
@given(st.integers(min_value=0, max_value=8 * (5 + 2 * 9) - 1), st.lists(st.integers(min_value=1, max_value=9), max_size=6))
def test_modbus_bit_flip_or_chunking(bit, sizes):
    m = mb.ModbusMaster([{"slave": 5, "map": MAP}], retries=0)
    out = pump(m, 0)
    ans = reply_for(out[-1][1], REGS)
    # chunked: the same values
    pos = 0
    for n in sizes + [len(ans)]:
        piece = ans[pos : pos + n]
        pos += len(piece)
        m.feed(piece, 0, len(piece), 10)
    assert pump(m, 10) == [("done", source.OK, source.E_NONE)]
    good = list(m.values)
    # one flipped bit: the CRC catches every single-bit error
    bad = bytearray(ans)
    bad[bit // 8] ^= 1 << (bit % 8)
    m.poll(0)
    out = pump(m, 1000)
    m.feed(bad, 0, len(bad), 1010)
    pump(m, 1010)
    pump(m, 1100)
    assert list(m.values) == good
    assert m.status == source.STALE and m.field_status[0] == source.STALE


@FAST
@given(st.lists(st.tuples(st.integers(min_value=1, max_value=80), st.integers(min_value=1, max_value=80)),
                max_size=60), st.integers(min_value=1, max_value=50))
def test_s0_counts_exactly_the_long_enough_pulses(shape, min_pulse):
    inp = s0.S0Input(min_pulse=min_pulse, storm_limit=5, storm_window=100)
    t = 0
    want = 0
    short = 0
    for on, off in shape:
        inp.edge(1, t)
        inp.edge(0, t + on)
        if on >= min_pulse:
            want += 1
        else:
            short += 1
        t += on + off
        inp.tick(t)
    assert inp.count == want and inp.bounces == short
    assert inp.values[0] == want
    inp.tick(t + 1000)
    assert not inp.storm and inp.status == source.OK


G = st.integers(min_value=0, max_value=255)


@FAST
@given(G, G, G, G, G, G, st.sampled_from(["*", "&"]))
def test_readout_ids_parse_back_to_their_obis_groups(a, b, c, d, e, f, star):
    out = bytearray(6)
    full = ("%d-%d:%d.%d.%d%s%d" % (a, b, c, d, e, star, f)).encode()
    assert r.parse_id(full, 0, len(full), out, 0) and tuple(out) == (a, b, c, d, e, f)
    short = ("%d.%d.%d" % (c, d, e)).encode()
    assert r.parse_id(short, 0, len(short), out, 0, medium=7)
    assert tuple(out) == ((0 if 96 <= c <= 99 else 7), 0, c, d, e, 255)
    assert r.parse_field("%d.%d.%d.%d.%d.%d" % (a, b, c, d, e, f)) == (bytes((a, b, c, d, e, f)), 0)


@FAST
@given(st.binary(max_size=20))
def test_readout_id_parser_never_raises(data):
    out = bytearray(6)
    ok = r.parse_id(data, 0, len(data), out, 0)
    if ok:
        # whatever it accepts is made of digits, separators and C F L P
        assert all(ch in b"0123456789-:.*&CFLP" for ch in data)


class _Store:
    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = bytes(value)


@FAST
@given(st.lists(st.tuples(st.sampled_from(["pulse", "hw", "tick", "cut"]), st.integers(min_value=1, max_value=500)),
                max_size=80), st.integers(min_value=1, max_value=20))
def test_s0_power_cuts_lose_at_most_persist_every_pulses_and_never_add(ops, every):
    store = _Store()
    inp = s0.S0Input(storage=store, persist_every=every, persist_ms=1000)
    true_count = 0
    t = 0
    for op, n in ops:
        t += n
        if op == "pulse":
            inp.edge(1, t)
            inp.edge(0, t + 40)
            true_count += 1
        elif op == "hw":
            inp.pulses(n % 7, t)
            true_count += n % 7
        elif op == "tick":
            inp.tick(t)
        else:
            inp = s0.S0Input(storage=store, persist_every=every, persist_ms=1000)
            assert true_count - every < inp.count <= true_count
            true_count = inp.count  # what was lost is lost
        assert inp.count == true_count
