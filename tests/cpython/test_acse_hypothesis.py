# Hostile and generated ACSE input: parsers raise DecodeError and nothing
# else, finish quickly, never allocate in proportion to a claimed length, and
# every offset they report lies inside the parsed window. Generated AARQs
# parse back to the fields they were built from; every AARE/RLRE we encode is
# well-formed BER whose lengths add up.

import sys
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

from test_acse import AARQ_CIPHERED, AARQ_HLS, GB_AARQ, GB_AARQ_LLS, METER_AARQ  # noqa: E402

from dlms_micro.app import acse  # noqa: E402
from dlms_micro.errors import DecodeError, EncodeError  # noqa: E402
from support import unhex  # noqa: E402

FAST = settings(max_examples=500, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
VALID = [unhex(h) for h in (GB_AARQ, GB_AARQ_LLS, AARQ_HLS, AARQ_CIPHERED, METER_AARQ % "46")]
RLRQS = [unhex(h) for h in ("62 00", "62 03 80 01 00", "62 15 80 01 00 BE 10 04 0E 01 00 00 00 06 5F 1F 04 00 00 7E 1F 04 B0")]


def offsets_inside(obj, start, end):
    for name in ("calling_ap_title", "called_ap_title", "calling_ae_qualifier", "auth_value", "ui"):
        off = getattr(obj, name, -1)
        if off >= 0:
            n = getattr(obj, {"auth_value": "auth_len", "ui": "ui_len"}.get(name, name + "_len"))
            assert start <= off and off + n <= end, (name, off, n)
    ini = obj.initiate
    if ini.dedicated_key >= 0:
        assert start <= ini.dedicated_key and ini.dedicated_key + ini.dedicated_key_len <= end


def parse_any(cls, data, start=0, end=None):
    end = len(data) if end is None else end
    obj = cls()
    try:
        assert obj.parse(data, start, end) == end
    except DecodeError as e:
        assert str(e)  # says what and where
        return None
    offsets_inside(obj, start, end)
    return obj


def decide_and_answer(a):
    # whatever parsed, deciding and answering works
    out = acse.decide(acse.Outcome(), a, 1, 1, b"12345678", 0x00501F, 500)
    assert out.result in (0, 1) and out.source in (1, 2)
    buf = bytearray(600)
    n = acse.Aare().from_outcome(out, 1, 500).encode(buf, 0)
    walk(bytes(buf[:n]))


def walk(data, start=0, end=None, depth=0):
    # strict test-side BER walk: every length fits its container exactly
    end = len(data) if end is None else end
    p = start
    while p < end:
        t = data[p]
        p += 1
        n = data[p]
        p += 1
        if n == 0x81:
            n = data[p]
            p += 1
        elif n == 0x82:
            n = data[p] << 8 | data[p + 1]
            p += 2
        else:
            assert n < 0x80
        assert p + n <= end
        if t & 0x20 and depth < 3 and t != 0xBE:
            walk(data, p, p + n, depth + 1)
        p += n
    assert p == end


@FAST
@given(st.binary(max_size=300))
def test_random_bytes(data):
    for cls in (acse.Aarq, acse.Rlrq, acse.InitiateRequest):
        parse_any(cls, data)
    a = parse_any(acse.Aarq, b"\x60" + data)
    if a is not None:
        decide_and_answer(a)


@FAST
@given(st.sampled_from(VALID + RLRQS), st.data())
def test_mutated_valid_apdus(base, data):
    buf = bytearray(base)
    for _ in range(data.draw(st.integers(min_value=1, max_value=5))):
        op = data.draw(st.sampled_from(("flip", "set", "insert", "delete", "truncate")))
        if not buf:
            break
        i = data.draw(st.integers(min_value=0, max_value=len(buf) - 1))
        if op == "flip":
            buf[i] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
        elif op == "set":
            buf[i] = data.draw(st.sampled_from((0x00, 0x7F, 0x80, 0x81, 0x82, 0x83, 0xFF, 0x1F)))
        elif op == "insert":
            buf.insert(i, data.draw(st.integers(min_value=0, max_value=255)))
        elif op == "delete":
            del buf[i]
        else:
            del buf[i:]
    pad = data.draw(st.integers(min_value=0, max_value=3))
    framed = bytes(pad) + bytes(buf) + bytes(pad)
    cls = acse.Rlrq if base[0] == acse.RLRQ else acse.Aarq
    obj = parse_any(cls, framed, pad, pad + len(buf))
    if obj is not None and cls is acse.Aarq:
        decide_and_answer(obj)


def tlv(tag, body, form):
    n = len(body)
    if form == 0 and n < 0x80:
        head = bytes((tag, n))
    elif form <= 1 and n < 0x100:
        head = bytes((tag, 0x81, n))
    else:
        head = bytes((tag, 0x82, n >> 8, n & 0xFF))
    return head + body


@st.composite
def aarqs(draw):
    form = st.integers(min_value=0, max_value=2)
    f = {}
    fields = []
    ctx = draw(st.integers(min_value=1, max_value=4))
    f["context"] = ctx
    fields.append(tlv(0xA1, tlv(0x06, b"\x60\x85\x74\x05\x08\x01" + bytes((ctx,)), draw(form)), draw(form)))
    if draw(st.booleans()):
        title = draw(st.binary(min_size=8, max_size=8))
        f["title"] = title
        fields.append(tlv(0xA6, tlv(0x04, title, draw(form)), draw(form)))
    if draw(st.booleans()):
        mech = draw(st.integers(min_value=0, max_value=7))
        f["mechanism"] = mech
        fields.append(tlv(0x8A, b"\x07\x80", draw(form)))
        fields.append(tlv(0x8B, b"\x60\x85\x74\x05\x08\x02" + bytes((mech,)), draw(form)))
    if draw(st.booleans()):
        value = draw(st.binary(max_size=70))
        f["auth"] = value
        fields.append(tlv(0xAC, tlv(0x80, value, draw(form)), draw(form)))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):  # fields we skip
        tag = draw(st.sampled_from((0xA3, 0xA4, 0xA5, 0xA8, 0xA9, 0x9D)))
        fields.append(tlv(tag, draw(st.binary(max_size=20)), draw(form)))
    key = draw(st.one_of(st.none(), st.binary(min_size=1, max_size=140)))
    allowed = draw(st.sampled_from((None, 0, 1)))
    qos = draw(st.one_of(st.none(), st.integers(min_value=-128, max_value=127)))
    version = draw(st.integers(min_value=0, max_value=255))
    conf = draw(st.integers(min_value=0, max_value=0xFFFFFF))
    pdu = draw(st.integers(min_value=0, max_value=0xFFFF))
    ini = b"\x01"
    ini += b"\x00" if key is None else b"\x01" + tlv(0, key, draw(form))[1:]
    ini += b"\x00" if allowed is None else bytes((1, allowed))
    ini += b"\x00" if qos is None else bytes((1, qos & 0xFF))
    ini += bytes((version, 0x5F, 0x1F, 4, 0)) + conf.to_bytes(3, "big") + pdu.to_bytes(2, "big")
    f["initiate"] = (key, 0 if allowed == 0 else 1, qos, version, conf, pdu)
    fields.append(tlv(0xBE, tlv(0x04, ini, draw(form)), draw(form)))
    order = draw(st.permutations(range(len(fields))))
    return tlv(0x60, b"".join(fields[i] for i in order), draw(form)), f


@FAST
@given(aarqs())
def test_generated_aarqs_parse_back(case):
    data, f = case
    a = parse_any(acse.Aarq, data)
    assert a is not None
    assert a.context == f["context"]
    if "title" in f:
        assert data[a.calling_ap_title : a.calling_ap_title + 8] == f["title"]
    else:
        assert a.calling_ap_title == -1
    assert a.mechanism == f.get("mechanism", -1)
    assert a.acse_authentication == (1 if "mechanism" in f else 0)
    if "auth" in f:
        assert data[a.auth_value : a.auth_value + a.auth_len] == f["auth"] and a.auth_tag == 0x80
    key, allowed, qos, version, conf, pdu = f["initiate"]
    ini = a.initiate
    assert ini.valid
    if key is None:
        assert ini.dedicated_key == -1
    else:
        assert data[ini.dedicated_key : ini.dedicated_key + ini.dedicated_key_len] == key
    assert ini.response_allowed == allowed
    assert (ini.qos if ini.qos_present else None) == qos
    assert (ini.dlms_version, ini.conformance, ini.max_pdu) == (version, conf, pdu)
    decide_and_answer(a)


@FAST
@given(
    st.integers(min_value=0, max_value=2),
    st.integers(min_value=1, max_value=2),
    st.integers(min_value=0, max_value=127),
    st.one_of(st.none(), st.binary(max_size=300)),
    st.integers(min_value=-1, max_value=7),
    st.one_of(st.none(), st.binary(max_size=300)),
    st.sampled_from((acse.UI_NONE, acse.UI_INITIATE_RESPONSE, acse.UI_ERROR, acse.UI_CIPHERED)),
    st.binary(min_size=1, max_size=600),
    st.integers(min_value=0, max_value=40),
)
def test_encoded_aares_are_well_formed(result, source, diag, title, mech, stoc, kind, ciph, off):
    aare = acse.Aare()
    aare.result, aare.source, aare.diagnostic, aare.mechanism = result, source, diag, mech
    if title is not None:
        aare.ap_title, aare.ap_title_len = title, len(title)
    if stoc is not None:
        aare.stoc, aare.stoc_len = stoc, len(stoc)
    ini = aare.initiate
    ini.kind = kind
    ini.conformance = 0x00101D
    ini.max_pdu = 512
    ini.ciphered, ini.ciphered_len = ciph, len(ciph)
    buf = bytearray(2000)
    n = aare.encode(buf, off)
    walk(bytes(buf[off:n]))
    assert buf[:off] == bytes(off) and buf[off] == acse.AARE
    # one byte short anywhere fails cleanly and writes nothing past the limit
    small = bytearray(n - 1)
    try:
        aare.encode(small, off)
        raise AssertionError("fitted in a buffer one byte short")
    except EncodeError:
        pass
    m = acse.build_rlre(buf, 0, None, result, ini)
    walk(bytes(buf[:m]))


@given(st.integers(min_value=0x80, max_value=0xFFFF))
@settings(max_examples=50, deadline=1000)
def test_claimed_lengths_do_not_allocate(n):
    # A huge claimed length on a short input fails at once; parsing never
    # allocates in proportion to what a length says
    data = bytes((0x60, 0x82, n >> 8, n & 0xFF)) + unhex("A1 09 06 07 60 85 74 05 08 01 01")
    tracemalloc.start()
    try:
        for cls in (acse.Aarq, acse.Rlrq):
            try:
                cls().parse(data, 0, len(data))
            except DecodeError:
                pass
        ini = bytes((1, 1, 0x82, n >> 8, n & 0xFF, 0))
        try:
            acse.InitiateRequest().parse(ini, 0, len(ini))
        except DecodeError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8192, peak


def test_deep_or_long_input_finishes_quickly():
    # 20,000 tiny unknown fields: one pass, linear time
    body = b"\x9d\x00" * 20000
    data = tlv(0x60, unhex("A1 09 06 07 60 85 74 05 08 01 01") + body[: 0xFFFF - 11 - (0xFFFF - 11) % 2], 2)
    a = acse.Aarq()
    assert a.parse(data, 0, len(data)) == len(data)
