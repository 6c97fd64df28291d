# general-ciphering (APDU DD) proven with a client built only from
# `cryptography` (OpenSSL): AES-GCM with a 12-byte tag, RFC 3394 key wrap,
# P-256 ECDH and ECDSA, the SP 800-56A concatenation KDF (ConcatKDFHash).
# The APDU bytes are assembled here by hand from the field layout of
# docs/security.md, not with dlms_micro's encoder, and the meter's answers
# are opened the same way. No client library at hand sends general-
# ciphering with key-info (docs/compatibility.md), so these are the vectors.

import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from dlms_micro import server
from dlms_micro.link import wrapper
from dlms_micro.meter import Meter, Role
from dlms_micro.security import ecc, suite12
from dlms_micro.security import keys as ks

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "portable_ecc"))
import test_general_ciphering as pt  # noqa: E402  (the meter and its keys)

ALG_AES_GCM_128 = bytes.fromhex("60857405080300")  # 2.16.756.5.8.3.0
ALG_AES_GCM_256 = bytes.fromhex("60857405080301")  # 2.16.756.5.8.3.1
TID = bytes.fromhex("0102030405060708")
CURVE = ec.SECP256R1()


def priv(d, curve=CURVE):
    return ec.derive_private_key(int.from_bytes(d, "big"), curve)


def point(pub, curve=CURVE):
    return ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + pub)


def raw(public_key):
    return public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)[1:]


def octets(b):
    assert len(b) < 0x100
    return (bytes([len(b)]) if len(b) < 0x80 else bytes([0x81, len(b)])) + b


def kdf(z, u, v, supp=b"", suite=1):
    if suite == 2:
        return ConcatKDFHash(hashes.SHA384(), 32, ALG_AES_GCM_256 + u + v + supp).derive(z)
    return ConcatKDFHash(hashes.SHA256(), 16, ALG_AES_GCM_128 + u + v + supp).derive(z)


def gcm_seal(key, iv, aad, plain):
    e = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    e.authenticate_additional_data(aad)
    c = e.update(plain) + e.finalize()
    return c + e.tag[0:12]


def gcm_open(key, iv, aad, ct, tag):
    d = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=12)).decryptor()
    d.authenticate_additional_data(aad)
    return d.update(ct) + d.finalize()


def build(key, key_info, ic=2, sc=0x31, originator=pt.ST_C, recipient=pt.ST_S, plain=pt.GET, ak=pt.AK):
    head = octets(TID) + octets(originator) + octets(recipient) + octets(b"") + octets(b"")
    iv = originator + ic.to_bytes(4, "big")
    aad = bytes([sc]) + ak + TID + originator + recipient
    content = bytes([sc]) + ic.to_bytes(4, "big") + gcm_seal(key, iv, aad, plain)
    return b"\xdd" + head + key_info + octets(content)


def parse(rsp):
    # the fields of a general-ciphering response (hand-parsed)
    assert rsp[0] == 0xDD
    p = 1
    f = []
    for _ in range(5):
        n = rsp[p]
        f.append(rsp[p + 1 : p + 1 + n])
        p += 1 + n
    ki_start = p
    if rsp[p] == 0:
        p += 1
    else:
        kind = rsp[p + 1]
        p += 2
        if kind == 0:
            p += 1
        elif kind == 1:
            p += 1
            p += 1 + rsp[p]
        else:
            for _ in range(2):
                n = rsp[p]
                if n == 0x81:
                    n = rsp[p + 1]
                    p += 1
                p += 1 + n
    key_info = rsp[ki_start:p]
    n = rsp[p]
    if n == 0x81:
        n = rsp[p + 1]
        p += 1
    content = rsp[p + 1 : p + 1 + n]
    assert p + 1 + n == len(rsp)
    return f, key_info, content


def open_response(rsp, key, sc=0x31, ak=pt.AK, meter=pt.ST_S, client=pt.ST_C):
    f, key_info, ct = parse(rsp)
    tid, orig, recip, dt, other = f
    assert tid == TID and orig == meter and recip == client and dt == b"" and other == b""
    assert ct[0] == sc
    iv = orig + ct[1:5]
    aad = bytes([sc]) + ak + tid + orig + recip
    return gcm_open(key, iv, aad, ct[5:-12], ct[-12:])


def test_identified_key():
    ch, lines = pt.channel()
    rsp = pt.exchange(ch, build(pt.EK, b"\x01\x00\x00"))
    assert parse(rsp)[1] == b"\x01\x00\x00"
    assert open_response(rsp, pt.EK) == pt.GET_RESPONSE
    assert lines == []


def test_wrapped_key():
    key = os.urandom(16)
    ch, lines = pt.channel(rnd=os.urandom)
    rsp = pt.exchange(ch, build(key, b"\x01\x01\x00" + octets(aes_key_wrap(pt.KEK, key))))
    ki = parse(rsp)[1]
    assert ki[0:3] == b"\x01\x01\x00" and ki[3] == 24
    rkey = aes_key_unwrap(pt.KEK, ki[4:])
    assert open_response(rsp, rkey) == pt.GET_RESPONSE
    assert lines == []


def test_one_pass_diffie_hellman():
    eph = ec.generate_private_key(CURVE)
    q = raw(eph.public_key())
    r, s = decode_dss_signature(priv(pt.CLIENT_D).sign(q, ec.ECDSA(hashes.SHA256())))
    sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    z = eph.exchange(ec.ECDH(), point(pt.METER_KA_PUB))
    key = kdf(z, pt.ST_C, pt.ST_S)
    ch, lines = pt.channel(rnd=os.urandom)
    rsp = pt.exchange(ch, build(key, b"\x01\x02\x01\x01\x81\x80" + q + sig))
    ki = parse(rsp)[1]
    assert ki[0:6] == b"\x01\x02\x01\x01\x81\x80"
    q_m, sig_m = ki[6:70], ki[70:134]
    priv(pt.SERVER_D).public_key().verify(
        encode_dss_signature(int.from_bytes(sig_m[0:32], "big"), int.from_bytes(sig_m[32:], "big")),
        q_m, ec.ECDSA(hashes.SHA256()))
    z2 = priv(pt.CLIENT_KA_D).exchange(ec.ECDH(), point(q_m))
    assert open_response(rsp, kdf(z2, pt.ST_S, pt.ST_C)) == pt.GET_RESPONSE
    assert lines == []


def test_static_unified_model():
    z = priv(pt.CLIENT_KA_D).exchange(ec.ECDH(), point(pt.METER_KA_PUB))
    ch, lines = pt.channel()
    rsp = pt.exchange(ch, build(kdf(z, pt.ST_C, pt.ST_S, TID), b"\x01\x02\x01\x02\x00"))
    assert parse(rsp)[1] == b"\x01\x02\x01\x02\x00"
    assert open_response(rsp, kdf(z, pt.ST_S, pt.ST_C, TID)) == pt.GET_RESPONSE
    assert lines == []


def test_ephemeral_key_signed_by_another_key_refused():
    eph = ec.generate_private_key(CURVE)
    q = raw(eph.public_key())
    r, s = decode_dss_signature(ec.generate_private_key(CURVE).sign(q, ec.ECDSA(hashes.SHA256())))
    z = eph.exchange(ec.ECDH(), point(pt.METER_KA_PUB))
    ch, lines = pt.channel()
    req = build(kdf(z, pt.ST_C, pt.ST_S), b"\x01\x02\x01\x01\x81\x80" + q + r.to_bytes(32, "big") + s.to_bytes(32, "big"))
    assert pt.exchange(ch, req) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: one-pass: the signature of the ephemeral key does not verify"]


def test_tampered_content_refused_and_association_goes_on():
    ch, lines = pt.channel()
    bad = bytearray(build(pt.EK, b"\x01\x00\x00"))
    bad[-3] ^= 1
    assert pt.exchange(ch, bytes(bad)) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: general-ciphering content does not authenticate (IC 2)"]
    assert open_response(pt.exchange(ch, build(pt.EK, b"\x01\x00\x00", ic=3)), pt.EK) == pt.GET_RESPONSE


# ------------------------------------------------------------ suite 2: P-384, AES-GCM-256, SHA-384

P384 = ec.SECP384R1()
EK2 = bytes(range(0x80, 0xA0))
AK2 = bytes(range(0xA0, 0xC0))
METER_SIGN2 = ec.generate_private_key(P384)
METER_KA2 = ec.generate_private_key(P384)
CLIENT_SIGN2 = ec.generate_private_key(P384)
CLIENT_KA2 = ec.generate_private_key(P384)


def d_of(k):
    return k.private_numbers().private_value.to_bytes(48, "big")


def channel2():
    m = Meter(pt.TABLE, (Role(1, ciphered=True, security_suite=2, policy=0x6C),), [12345])
    m.keys = ks.KeyStore(pt.MemStorage(), pt.ST_S, ek=pt.EK, ak=pt.AK, kek=pt.KEK)
    m.suite2_keys = suite12.Suite2Keys(m.keys, EK2, AK2)
    m.signing = suite12.Signing(
        ecc.KeyPair(ecc.P384, d_of(METER_SIGN2)), {pt.ST_C: raw(CLIENT_SIGN2.public_key())},
        ecc.KeyPair(ecc.P384, d_of(METER_KA2)), {pt.ST_C: raw(CLIENT_KA2.public_key())})
    m.random_bytes = os.urandom
    ch = server.Channel(m, wrapper.WrapperServer(max_apdu=1024))
    lines = []
    ch.set_log(lines.append)
    ini = gcm_seal(EK2, pt.ST_C + b"\x00\x00\x00\x01", b"\x32" + AK2, pt.INITIATE)
    ini = b"\x21" + octets(b"\x32\x00\x00\x00\x01" + ini)
    body = (bytes.fromhex("A109060760857405080103") + b"\xa6\x0a\x04\x08" + pt.ST_C
            + bytes([0xBE, len(ini) + 2, 0x04, len(ini)]) + ini)
    aare = pt.exchange(ch, bytes([0x60, len(body)]) + body)
    assert aare[0] == 0x61 and ch.assoc.status == 2, (aare, lines)
    return ch, lines


def sig384(key, data):
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA384())))
    return r.to_bytes(48, "big") + s.to_bytes(48, "big")


def test_suite2_identified_key():
    ch, lines = channel2()
    rsp = pt.exchange(ch, build(EK2, b"\x01\x00\x00", sc=0x32, ak=AK2))
    assert open_response(rsp, EK2, 0x32, AK2) == pt.GET_RESPONSE
    assert lines == []


def test_suite2_static_unified_model():
    z = CLIENT_KA2.exchange(ec.ECDH(), METER_KA2.public_key())
    ch, lines = channel2()
    rsp = pt.exchange(ch, build(kdf(z, pt.ST_C, pt.ST_S, TID, 2), b"\x01\x02\x01\x02\x00", sc=0x32, ak=AK2))
    assert open_response(rsp, kdf(z, pt.ST_S, pt.ST_C, TID, 2), 0x32, AK2) == pt.GET_RESPONSE
    assert lines == []


def test_suite2_one_pass_diffie_hellman():
    eph = ec.generate_private_key(P384)
    q = raw(eph.public_key())
    z = eph.exchange(ec.ECDH(), METER_KA2.public_key())
    ch, lines = channel2()
    ki = b"\x01\x02\x01\x01\x81\xc0" + q + sig384(CLIENT_SIGN2, q)
    rsp = pt.exchange(ch, build(kdf(z, pt.ST_C, pt.ST_S, suite=2), ki, sc=0x32, ak=AK2))
    rki = parse(rsp)[1]
    assert rki[0:6] == b"\x01\x02\x01\x01\x81\xc0"
    q_m, sig_m = rki[6:102], rki[102:198]
    METER_SIGN2.public_key().verify(
        encode_dss_signature(int.from_bytes(sig_m[0:48], "big"), int.from_bytes(sig_m[48:], "big")),
        q_m, ec.ECDSA(hashes.SHA384()))
    z2 = CLIENT_KA2.exchange(ec.ECDH(), point(q_m, P384))
    assert open_response(rsp, kdf(z2, pt.ST_S, pt.ST_C, suite=2), 0x32, AK2) == pt.GET_RESPONSE
    assert lines == []


def test_suite2_p256_point_refused():
    # a P-256 ephemeral key (and signature) where P-384 is expected: the wrong curve
    ch, lines = channel2()
    eph = ec.generate_private_key(CURVE)
    q = raw(eph.public_key())
    ki = b"\x01\x02\x01\x01\x81\x80" + q + bytes(64)
    assert pt.exchange(ch, build(EK2, ki, sc=0x32, ak=AK2)) == bytes.fromhex("D80105")
    assert lines == ["general-ciphering refused: one-pass key-ciphered-data of 128 bytes, 192 expected (P-384)"]


# ------------------------------------------------------------ hostile input

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SEEDS = []


def _seeds():
    if not _SEEDS:
        z = priv(pt.CLIENT_KA_D).exchange(ec.ECDH(), point(pt.METER_KA_PUB))
        _SEEDS.extend([
            build(pt.EK, b"\x01\x00\x00"),
            build(pt.KEK, b"\x01\x01\x00" + octets(aes_key_wrap(pt.KEK, pt.KEK))),
            build(kdf(z, pt.ST_C, pt.ST_S, TID), b"\x01\x02\x01\x02\x00"),
            build(pt.EK, b"\x01\x02\x01\x01\x81\x80" + pt.EPH_PUB + pt.EPH_SIG),
        ])
    return _SEEDS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 3), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4),
       st.integers(0, 400))
def test_mutated_requests_get_the_protocols_answer(seed, flips, cut):
    # bytes changed and the APDU cut anywhere: the answer is an
    # exception-response or general-ciphering, never an internal error, a
    # log line for each refusal, the association goes on
    req = bytearray(_seeds()[seed])
    for i, b in flips:
        req[1 + i % (len(req) - 1)] = b  # the tag stays DD
    req = bytes(req[0 : max(1, min(cut, len(req)))]) if cut < len(req) else bytes(req)
    ch, lines = pt.channel()
    rsp = pt.exchange(ch, req)
    assert rsp[0] in (0xDD, 0xD8), rsp.hex()
    if rsp[0] == 0xD8:
        assert rsp[1:3] in (b"\x01\x05", b"\x01\x06", b"\x01\x01", b"\x02\x02"), rsp.hex()
        assert len(lines) == 1 and "internal error" not in lines[0], lines
    assert ch.assoc.status == 2
    assert not any(pt.KEK.hex() in x.lower() or pt.EK.hex() in x.lower() for x in lines)
