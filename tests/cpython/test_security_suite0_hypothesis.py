# Security suite 0 against hostile and generated input, checked with a
# second implementation (tests/cpython/suite0_peer.py, on `cryptography`):
#  - random bytes, mutated and truncated protected APDUs: SecurityError and
#    nothing else escapes; an authenticated APDU that was changed anywhere is
#    refused and moves no counter
#  - requests protected by the peer unprotect to their plaintext; responses
#    protected by suite0 unprotect at the peer, in the request's form, at the
#    level the request and the policy ask for

import sys
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))

import suite0_peer as peer  # noqa: E402
import test_security_suite0 as portable  # noqa: E402
from test_security_suite0 import AK, EK, GENERAL_GET, GLO_GET_10, GLO_GET_20, GLO_GET_30, ROOM, FakeKeys  # noqa: E402

from dlms_micro.security import suite0  # noqa: E402
from dlms_micro.security.suite0 import SecurityError, Suite0  # noqa: E402
from support import unhex  # noqa: E402

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = [unhex(h) for h in (GLO_GET_30, GLO_GET_20, GLO_GET_10)]
CLIENT = portable.GET_TITLE
SERVER = portable.SERVER_TITLE

REQUEST_TAGS = {0xC0: 0xC8, 0xC1: 0xC9, 0xC3: 0xCB, 0x01: 0x21}
DED_REQUEST_TAGS = {0xC0: 0xD0, 0xC1: 0xD1, 0xC3: 0xD3, 0x01: 0x41}
RESPONSE_OF = {0xC0: 0xC4, 0xC1: 0xC5, 0xC3: 0xC7, 0x01: 0x08}
POLICY_OF = {0x30: 0x0C, 0x20: 0x08, 0x10: 0x04}  # requests at least at this SC


def make_gcm():
    return portable.make_gcm()


def server(keys=None, title=True, ded_key=None):
    keys = keys or FakeKeys()
    s = Suite0(keys, make_gcm(), make_gcm())
    s.enabled = 1
    if title:
        s.set_client_title(CLIENT, 0, 8)
    if ded_key is not None:
        s.set_dedicated_key(ded_key, 0, 16)
    return s


def try_unprotect(s, data, start=0, end=None):
    # None when refused (SecurityError, and only that), else the plaintext
    buf = bytearray(data)
    end = len(buf) if end is None else end
    try:
        s.unprotect(buf, start, end)
    except SecurityError as e:
        assert str(e) and 1 <= e.code <= 12
        assert s.form == suite0.FORM_NONE
        return None
    assert start < s.start < s.end <= end
    return bytes(buf[s.start : s.end])


@FAST
@given(st.binary(max_size=80))
def test_random_bytes_only_raise_security_error(data):
    try_unprotect(server(), data)


@FAST
@given(st.sampled_from([0xC8, 0xC9, 0xCB, 0x21, 0xD0, 0xD1, 0xD3, 0x41, 0xDB, 0xDC]), st.binary(max_size=80))
def test_random_bodies_behind_ciphered_tags(tag, body):
    s = server(ded_key=bytes(range(16)))
    try_unprotect(s, bytes([tag]) + body)


@FAST
@given(st.sampled_from(VALID), st.data())
def test_mutated_apdus_are_refused_or_unchanged(good, data):
    bad = bytearray(good)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(bad) - 1))
        bad[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(bad)))
    bad = bytes(bad[:cut])
    s = server(FakeKeys(policy=POLICY_OF[good[2]]))
    pt = try_unprotect(s, bad)
    if pt is None:
        assert s.keys.rx_next == 0  # a refused APDU moves no counter
        return
    if good[2] & 0x10 and bytes(bad) != good:
        raise AssertionError("a changed authenticated APDU was accepted")


@FAST
@given(st.sampled_from(VALID), st.integers(0, 40), st.integers(0, 40))
def test_apdu_inside_a_larger_buffer(good, before, after):
    data = bytes([0xEE]) * before + good + bytes([0xEE]) * after
    s = server()
    assert try_unprotect(s, data, before, before + len(good)) == unhex(portable.GET_CLOCK)
    assert before < s.start and s.end <= before + len(good)


apdus = st.tuples(st.sampled_from(sorted(REQUEST_TAGS)), st.binary(min_size=0, max_size=300))
levels = st.sampled_from([0x10, 0x20, 0x30])
ics = st.integers(0, 0xFFFFFFFF)


@FAST
@given(apdus, levels, ics, st.booleans(), st.sampled_from([0, 0x20, 0x40, 0x60]), st.binary(min_size=1, max_size=400))
def test_round_trip_glo_and_general_glo(apdu, sc, ic, general, policy, response_body):
    first, rest = apdu
    plain = bytes([first]) + rest
    tag = 0xDB if general else REQUEST_TAGS[first]
    req = peer.protect(tag, sc, CLIENT, ic, EK, AK, plain, general)
    keys = FakeKeys(policy=policy)
    s = server(keys)
    assert try_unprotect(s, req) == plain
    assert s.ic == ic and s.sc == sc and s.apdu_tag == tag
    assert keys.rx_next == ic + 1
    # the response, in the request's form
    rsp = bytes([RESPONSE_OF[first]]) + response_body
    out = bytearray(ROOM + len(rsp) + 12 + 3)
    out[ROOM : ROOM + len(rsp)] = rsp
    end = s.protect(out, ROOM, ROOM + len(rsp), len(out))
    got = bytes(out[s.out_start : end])
    rtag, title, rsc, ric, pt = peer.unprotect(got, EK, AK, SERVER)
    assert rtag == (0xDB if general else suite0.ciphered_tag(rsp[0], 0))
    assert title == SERVER and ric == 0x01234567
    assert rsc == sc | suite0.response_level(policy)
    assert pt == rsp
    # replaying the request fails, and its error carries the counter to use
    if ic < 0xFFFFFFFF:
        buf = bytearray(req)
        try:
            s.unprotect(buf, 0, len(buf))
        except SecurityError as e:
            assert e.code == suite0.E_REPLAY and e.expected_ic == ic + 1
        else:
            raise AssertionError("replay accepted")


@FAST
@given(apdus, levels, ics, st.booleans(), st.binary(min_size=16, max_size=16))
def test_round_trip_dedicated(apdu, sc, ic, general, dkey):
    first, rest = apdu
    plain = bytes([first]) + rest
    tag = 0xDC if general else DED_REQUEST_TAGS[first]
    req = peer.protect(tag, sc, CLIENT, ic, dkey, AK, plain, general)
    s = server(ded_key=dkey)
    assert try_unprotect(s, req) == plain
    assert s.keys.rx_next == 0  # not the global key's counter
    rsp = bytes([RESPONSE_OF[first]]) + rest
    out = bytearray(ROOM + len(rsp) + 12)
    out[ROOM : ROOM + len(rsp)] = rsp
    end = s.protect(out, ROOM, ROOM + len(rsp), len(out))
    rtag, _, rsc, _, pt = peer.unprotect(bytes(out[s.out_start : end]), dkey, AK, SERVER)
    assert rtag == (0xDC if general else suite0.ciphered_tag(rsp[0], 1))
    assert rsc == sc and pt == rsp
    # the global key does not open it
    assert try_unprotect(server(), req) is None


@FAST
@given(apdus, st.sampled_from([0x10, 0x30]), ics, st.booleans(), st.data())
def test_tampering_with_an_authenticated_request_is_detected(apdu, sc, ic, general, data):
    first, rest = apdu
    plain = bytes([first]) + rest
    tag = 0xDB if general else REQUEST_TAGS[first]
    req = bytearray(peer.protect(tag, sc, CLIENT, ic, EK, AK, plain, general))
    # change one bit from the system title (general) or SC on: title, SC,
    # IC, content or tag
    first_byte = 2 if general else len(req) - len(plain) - 12 - 5
    i = data.draw(st.integers(first_byte, len(req) - 1))
    req[i] ^= 1 << data.draw(st.integers(0, 7))
    # the policy requires the request's level: without it, clearing the
    # authentication bit would make any APDU a valid encryption-only one
    s = server(FakeKeys(policy=0x0C if sc == 0x30 else 0x04), title=not general)
    assert try_unprotect(s, req) is None
    assert s.keys.rx_next == 0


@FAST
@given(ics, st.binary(min_size=8, max_size=64), st.binary(min_size=8, max_size=64))
def test_hls_gmac_round_trip(ic, stoc, ctos):
    # the client's f(StoC), as the peer computes it, and the meter's f(CtoS)
    iv = CLIENT + ic.to_bytes(4, "big")
    f = b"\x10" + ic.to_bytes(4, "big") + peer.gcm_encrypt(EK, iv, b"\x10" + AK + stoc, b"")[1]
    s = server()
    assert s.hls_verify(bytearray(f), 0, 17, stoc, 0, len(stoc))
    out = bytearray(17)
    assert s.hls_answer(ctos, 0, len(ctos), out, 0) == 17
    iv = SERVER + bytes(out[1:5])
    assert out[0] == 0x10 and bytes(out[1:5]) == (0x01234567).to_bytes(4, "big")
    assert bytes(out[5:]) == peer.gcm_encrypt(EK, iv, b"\x10" + AK + ctos, b"")[1]


@FAST
@given(st.binary(max_size=20), st.binary(max_size=70))
def test_hls_verify_hostile(f, stoc):
    s = server()
    try:
        assert s.hls_verify(bytearray(f), 0, len(f), stoc, 0, len(stoc))
    except SecurityError as e:
        assert e.code in (suite0.E_MALFORMED, suite0.E_SECURITY_CONTROL, suite0.E_AUTHENTICATION)
    else:
        raise AssertionError("random f(StoC) accepted")


def test_general_glo_vector_against_the_peer():
    tag, title, sc, ic, pt = peer.unprotect(unhex(GENERAL_GET), EK, AK)
    assert (tag, title, sc, ic) == (0xDB, portable.HLS_CLIENT_TITLE, 0x30, 2)
    assert pt == unhex(portable.GET_CLOCK)


def test_portable_vectors_against_the_peer():
    # the pinned vectors hold for an independent implementation too
    for h, sc in ((GLO_GET_30, 0x30), (GLO_GET_20, 0x20), (GLO_GET_10, 0x10)):
        assert peer.protect(0xC8, sc, CLIENT, 0x01234567, EK, AK, unhex(portable.GET_CLOCK)) == unhex(h)
    for h, sc in ((portable.GLO_RESPONSE_30, 0x30), (portable.GLO_RESPONSE_20, 0x20), (portable.GLO_RESPONSE_10, 0x10)):
        assert peer.protect(0xCC, sc, SERVER, 0x01234567, EK, AK, unhex(portable.GET_RESPONSE)) == unhex(h)


def test_unprotect_and_protect_allocate_nothing_lasting():
    import tracemalloc

    s = server()
    data = unhex(GLO_GET_30)
    buf = bytearray(64)
    out = bytearray(64)
    rsp = unhex(portable.GET_RESPONSE)

    def one():
        buf[0:32] = data
        s.keys.rx_next = 0
        s.unprotect(buf, 0, 32)
        out[ROOM : ROOM + 9] = rsp
        return s.protect(out, ROOM, ROOM + 9, 64)

    one()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(50):
        one()
    cur = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert cur - base < 512, cur - base
