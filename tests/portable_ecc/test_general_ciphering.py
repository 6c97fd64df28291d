# general-ciphering (security.gcipher, APDU tag DD) through a channel: a
# ciphered association of security suite 1 (no authentication, every APDU
# authenticated and encrypted), GETs sent as general-ciphering with each
# kind of key-info (none, identified global unicast key, a key wrapped with
# the master key, keys agreed with the One-Pass Diffie-Hellman and the
# Static Unified Model on P-256), answered in the same form; and what is
# refused, each with the standard's answer and a log line. The client's side
# is built here with the same portable primitives (tests/cpython/
# test_general_ciphering_vectors.py checks the layout against `cryptography`).
# The signature bits of the security policy: unsigned requests refused,
# responses signed. Runs under pytest and MicroPython.

import sys

from dlms_micro import server
from dlms_micro.link import wrapper
from dlms_micro.meter import Meter, Role
from dlms_micro.security import ecc, gcipher, keywrap, signing, suite12
from dlms_micro.security import keys as ks
from dlms_micro.security.gcm import Gcm
from test_hls_ecdsa import CLIENT_D, CLIENT_PUB, SERVER_D, SERVER_PUB
from test_signed_requests import GET, GET_RESPONSE, ST_C, ST_S, TABLE, MemStorage, wsend

EK = bytes(range(0x00, 0x10))
AK = bytes(range(0xD0, 0xE0))
KEK = bytes(range(0x20, 0x30))
INITIATE = bytes.fromhex("01000000065F1F0400007E1F04B0")
# static key agreement keys: the meter's and the client's (small scalars;
# their public keys precomputed: the wasm runner collects no garbage in a test)
METER_KA_D = bytes(31) + b"\x07"
CLIENT_KA_D = bytes(31) + b"\x0b"
METER_KA_PUB = bytes.fromhex(
    "8e533b6fa0bf7b4625bb30667c01fb607ef9f8b8a80fef5b300628703187b2a3"
    "73eb1dbde03318366d069f83a6f5900053c73633cb041b21c55e1a86c1f400b4"
)
CLIENT_KA_PUB = bytes.fromhex(
    "3ed113b7883b4c590638379db0c21cda16742ed0255048bf433391d374bc21d1"
    "9099209accc4c8a224c843afa4f4c68a090d04da5e9889dae2f8eefce82a3740"
)
EPH_D = bytes(31) + b"\x05"  # the client's ephemeral key (one-pass)
EPH_PUB = bytes.fromhex(
    "51590b7a515140d2d784c85608668fdfef8c82fd1f5be52421554a0dc3d033ed"
    "e0c17da8904a727d8ae1bf36bf8a79260d012f00d4d80888d1d0bb44fda16da4"
)


def meter(policy=0x6C, rnd=None):
    m = Meter(TABLE, (Role(1, ciphered=True, security_suite=1, policy=policy),), [12345])
    m.keys = ks.KeyStore(MemStorage(), ST_S, ek=EK, ak=AK, kek=KEK, bk=bytes(range(0x40, 0x50)))
    m.signing = suite12.Signing(
        ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB),
        {ST_C: CLIENT_PUB},
        ecc.KeyPair(ecc.P256, METER_KA_D, METER_KA_PUB),
        {ST_C: CLIENT_KA_PUB},
    )
    m.random_bytes = rnd or (lambda n: bytes(range(1, n + 1)))
    return m


def exchange(ch, apdu):
    n = len(apdu)
    out = wsend(ch, bytes([0, 1, 0, 1, 0, 1, n >> 8, n & 0xFF]) + apdu)
    assert len(out) == 1
    return out[0][8:]


def glo(key, sc, ic, title, plain, tag_len=12):
    # glo-initiate-request of suite 1 (SC || IC || C || T)
    g = Gcm()
    g.set_key(key)
    iv = title + ic.to_bytes(4, "big")
    aad = bytes([sc]) + AK
    b = bytearray(plain)
    t = bytearray(12)
    g.encrypt(iv, 0, aad, 0, len(aad), b, 0, len(b), t, 0, 12)
    return bytes([sc]) + ic.to_bytes(4, "big") + bytes(b) + bytes(t)


def aarq():
    ini = glo(EK, 0x31, 1, ST_C, INITIATE)
    ini = bytes([0x21, len(ini)]) + ini
    body = (
        bytes.fromhex("A109060760857405080103")
        + bytes([0xA6, 10, 0x04, 8]) + ST_C
        + bytes([0xBE, len(ini) + 2, 0x04, len(ini)]) + ini
    )
    return bytes([0x60, len(body)]) + body


def channel(policy=0x6C, rnd=None):
    ch = server.Channel(meter(policy, rnd), wrapper.WrapperServer(max_apdu=1024))
    lines = []
    ch.set_log(lines.append)
    aare = exchange(ch, aarq())
    assert aare[0] == 0x61 and ch.assoc.status == 2, (aare, lines)
    return ch, lines


def request(key, ic=2, key_info=-1, key_id=0, kek_id=0, params=b"", key_data=b"", tid=b"\x00\x00\x00\x00\x00\x00\x00\x02",
            recipient=ST_S, originator=ST_C, sc=0x31, plain=GET):
    r = gcipher.General()
    r.tid = tid
    r.originator = originator
    r.recipient = recipient
    r.key_info = key_info
    r.key_id = key_id
    r.kek_id = kek_id
    r.params = params
    r.key_data = key_data
    r.content = gcipher.seal(Gcm(), key, sc, ic, originator, AK, r, plain)
    return r.encode()


def opened(rsp, key):
    # the response's fields and its plaintext, opened with key
    r = gcipher.General().parse(rsp, 0, len(rsp))
    ct = bytearray(r.content)
    g = Gcm()
    g.set_key(key)
    iv = r.originator + bytes(ct[1:5])
    aad = bytes([ct[0]]) + AK + r.aad_tail()
    e = len(ct) - 12
    assert ct[0] == 0x31
    assert g.decrypt(iv, 0, aad, 0, len(aad), ct, 5, e, ct, e, 12)
    return r, bytes(ct[5:e])


def answered_as(rsp, key, kind):
    r, plain = opened(rsp, key)
    assert plain == GET_RESPONSE
    assert r.tid == b"\x00\x00\x00\x00\x00\x00\x00\x02" and r.originator == ST_S and r.recipient == ST_C
    assert r.key_info == kind
    return r


def test_no_key_info_global_unicast_key():
    ch, lines = channel()
    answered_as(exchange(ch, request(EK)), EK, -1)
    assert lines == []


def test_identified_key_global_unicast():
    ch, lines = channel()
    r = answered_as(exchange(ch, request(EK, key_info=0, key_id=0)), EK, 0)
    assert r.key_id == 0 and lines == []


def test_replayed_counter_refused():
    ch, lines = channel()
    exchange(ch, request(EK, ic=5))
    rsp = exchange(ch, request(EK, ic=5))
    assert rsp == bytes.fromhex("D8010600000006")
    assert lines == ["general-ciphering refused: invocation counter 5 below the lowest acceptable 6"]


def test_unknown_key_id_refused():
    ch, lines = channel()
    assert exchange(ch, request(EK, key_info=0, key_id=2)) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: identified-key key-id 2 unknown"]


def test_wrapped_key():
    key = bytes(range(0x60, 0x70))
    ch, lines = channel()
    rsp = exchange(ch, request(key, key_info=1, key_data=keywrap.wrap(KEK, key)))
    r = gcipher.General().parse(rsp, 0, len(rsp))
    assert r.key_info == 1 and r.kek_id == 0
    rkey = keywrap.unwrap(KEK, r.key_data)
    assert rkey == bytes(range(1, 17))  # the meter's random source
    answered_as(rsp, rkey, 1)
    assert lines == []


def test_wrapped_key_that_does_not_unwrap_refused():
    key = bytes(range(0x60, 0x70))
    ch, lines = channel()
    bad = bytearray(keywrap.wrap(KEK, key))
    bad[3] ^= 1
    assert exchange(ch, request(key, key_info=1, key_data=bytes(bad))) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: wrapped key of 24 bytes does not unwrap under the master key"]


def test_unknown_kek_id_refused():
    ch, lines = channel()
    assert exchange(ch, request(EK, key_info=1, kek_id=1, key_data=bytes(24))) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: wrapped-key kek-id 1 unknown (0: master key)"]


def test_truncated_key_info_refused():
    ch, lines = channel()
    req = request(EK)
    # key-info present, agreed-key, then the APDU ends
    cut = req[0 : req.index(b"\x00", 1 + 9 + 9 + 9 + 1 + 1)] + b"\x01\x02\x01"
    assert exchange(ch, cut) == bytes.fromhex("D80105")
    assert len(lines) == 1 and lines[0].startswith("general-ciphering refused: ")
    assert "truncated" in lines[0] or "runs past" in lines[0]


def test_wrong_recipient_refused():
    ch, lines = channel()
    assert exchange(ch, request(EK, recipient=b"DMI\x00\x00\x00\x00\x01")) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: recipient-system-title 444D490000000001 is not this meter's"]


def test_static_unified_model():
    ch, lines = channel()
    tid = b"\x00\x00\x00\x00\x00\x00\x00\x02"
    z = ecc.KeyPair(ecc.P256, CLIENT_KA_D, CLIENT_KA_PUB).agree(METER_KA_PUB)
    key = gcipher.derive(1, 2, z, ST_C, ST_S, tid)
    rsp = exchange(ch, request(key, key_info=2, params=b"\x02", tid=tid))
    rkey = gcipher.derive(1, 2, z, ST_S, ST_C, tid)  # the roles swapped
    r = answered_as(rsp, rkey, 2)
    assert r.params == b"\x02" and r.key_data == b""
    assert lines == []


def test_unknown_scheme_refused():
    ch, lines = channel()
    assert exchange(ch, request(EK, key_info=2, params=b"\x03")) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: agreed-key key-parameters 03: no such scheme"]


# the one-pass request's key-ciphered-data: EPH_PUB || the client's
# signature of EPH_PUB (RFC 6979, pinned by test_one_pass_precomputed)
EPH_SIG = bytes.fromhex(
    "88241b20ccf07e17d65df8b26aa9153d4a5bf4183eccba5679c33b4c944fda6b"
    "a33deb069afc5e89dc7ceaca5b903ee54d99a7490f5d0d55444e5b559dda2486"
)


def test_one_pass_point_off_the_curve_refused():
    ch, lines = channel()
    off = bytearray(EPH_PUB)
    off[63] ^= 1
    rsp = exchange(ch, request(EK, key_info=2, params=b"\x01", key_data=bytes(off) + bytes(64)))
    assert rsp == bytes.fromhex("D80105")
    assert len(lines) == 1 and lines[0].startswith("general-ciphering refused: agreed-key: ")
    assert "curve" in lines[0]


def test_one_pass_bad_signature_refused():
    ch, lines = channel()
    rsp = exchange(ch, request(EK, key_info=2, params=b"\x01", key_data=EPH_PUB + bytes(32) + b"\x01" * 32))
    assert rsp == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: one-pass: the signature of the ephemeral key does not verify"]


# ------------------------------------------------------- signature policy


def test_policy_signed_requests_refuses_unsigned():
    ch, lines = channel(policy=0x6C | 0x10)
    assert exchange(ch, request(EK)) == bytes.fromhex("D80101")
    assert lines == ["unsigned request 0xdd where the security policy requires digitally signed requests"]


# the one-pass request's key: KDF(ECDH(EPH_D, METER_KA_PUB)), OtherInfo
# AES-GCM-128's id || ST-C || ST-S (test_one_pass_key_precomputed)
ONE_PASS_KEY = bytes.fromhex("6e74df81456f2bc0550ea2d3c2d6fcd2")
TID = b"\x00\x00\x00\x00\x00\x00\x00\x02"


def test_one_pass_key_precomputed():
    if sys.implementation.name == "micropython":
        return  # one more ECDH: CPython only
    z = ecc.ecdh(ecc.P256, EPH_D, METER_KA_PUB)
    assert gcipher.derive(1, 1, z, ST_C, ST_S, TID) == ONE_PASS_KEY
    assert ecc.verify_message(ecc.P256, CLIENT_PUB, EPH_SIG, EPH_PUB)


def test_one_pass_diffie_hellman():
    # the meter's ephemeral key from a random source giving a small scalar
    # (3): its key pair and ECDH cost little, so that the test fits the
    # wasm runner's heap (no garbage collected inside a test)
    ch, lines = channel(rnd=lambda n: bytes(n - 1) + b"\x03")
    rsp = exchange(ch, request(ONE_PASS_KEY, key_info=2, params=b"\x01", key_data=EPH_PUB + EPH_SIG))
    r = gcipher.General().parse(rsp, 0, len(rsp))
    assert r.key_info == 2 and r.params == b"\x01" and len(r.key_data) == 128
    assert r.tid == TID and r.originator == ST_S and r.recipient == ST_C
    assert lines == []
    if sys.implementation.name == "micropython":
        return  # opening it costs one ECDH and one verification more: CPython
    q = r.key_data[0:64]
    assert ecc.verify_message(ecc.P256, SERVER_PUB, r.key_data[64:], q)
    z = ecc.ecdh(ecc.P256, CLIENT_KA_D, q)
    answered_as(rsp, gcipher.derive(1, 1, z, ST_S, ST_C, TID), 2)


def test_policy_signed_responses():
    ch, lines = channel(policy=0x6C | 0x80)
    rsp = exchange(ch, request(EK))
    s = signing.Signed().parse(rsp, 0, len(rsp))
    assert s.field(1) == ST_S and s.field(2) == ST_C and len(s.field(0)) == 4
    answered_as(s.field(5), EK, -1)
    assert lines == []
    if sys.implementation.name != "micropython":  # one more verification: CPython only
        assert s.verify(ecc.P256, SERVER_PUB)


# general-signing (transaction-id 0001) of request(EK), signed by the client
# (RFC 6979 with the pure code: test_signed_request_precomputed)
SIGNED_REQUEST = bytes.fromhex(
    "df02000108475552555848455308444d490000bc614e00003edd0800000000000000020847555255584845"
    "5308444d490000bc614e0000001e3100000002af81129fff64f549bb3f6fc7105b42e93efedebd7b6735c8"
    "214043129218730398c70001d95a4818c179de86de272516bb89bb0751b71596340eb283b00e59f3c49c32"
    "1f54492176391d125e9f2087d6887d791caf003f3466a0"
)


def test_signed_request_precomputed():
    if sys.implementation.name == "micropython":
        return  # a signature: CPython only
    old = ecc.use(None)
    try:
        kp = ecc.KeyPair(ecc.P256, CLIENT_D, CLIENT_PUB)
        out = bytearray(400)
        n = signing.build(out, 0, 400, kp, b"\x00\x01", ST_C, ST_S, b"", b"", request(EK))
        assert bytes(out[0:n]) == SIGNED_REQUEST
    finally:
        ecc.use(old)


def test_policy_signed_requests_serves_signed():
    ch, lines = channel(policy=0x6C | 0x10)
    rsp = exchange(ch, SIGNED_REQUEST)
    s = signing.Signed().parse(rsp, 0, len(rsp))
    assert s.field(0) == b"\x00\x01" and s.field(1) == ST_S and s.field(2) == ST_C
    answered_as(s.field(5), EK, -1)
    assert lines == []
