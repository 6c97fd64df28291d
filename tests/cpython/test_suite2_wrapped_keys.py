# Security suite 2's master key (KEK, 32 bytes): AES-256 key wrap (RFC 3394
# with a 256-bit KEK) proven against RFC 3394's vector and `cryptography`;
# general-ciphering wrapped-key in a suite 2 association (the request's key
# wrapped by `cryptography`, the answer's key unwrapped by it); Security
# setup key_transfer of 32-byte keys in a suite 2 association; and what is
# refused (no suite 2 KEK, a wrap under another KEK, the broadcast key, a
# 24-byte wrap), each with the standard's answer and a log line.

import os
import sys

import pytest
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

from dlms_micro.cosem import base
from dlms_micro.cosem.security_setup import SECURITY_SETUP
from dlms_micro.meter import Role
from dlms_micro.security import aes256, keywrap, suite12
from dlms_micro.security import keys as ks

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "portable_ecc"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "portable"))
import cosem_support as cs  # noqa: E402
import test_general_ciphering_vectors as gv  # noqa: E402

import test_general_ciphering as pt  # noqa: E402

KEK2 = bytes(range(0x60, 0x80))

# RFC 3394 section 4.6: 256 bits of key data wrapped with a 256-bit KEK
RFC_KEK = bytes.fromhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
RFC_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
RFC_WRAPPED = bytes.fromhex("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")


def test_aes256_key_wrap_rfc3394_vector():
    assert keywrap.wrap(RFC_KEK, RFC_KEY, aes256.Aes256()) == RFC_WRAPPED
    assert keywrap.unwrap(RFC_KEK, RFC_WRAPPED, aes256.Aes256()) == RFC_KEY
    # RFC 3394 4.5: 192 bits of key data, 256-bit KEK
    assert keywrap.wrap(RFC_KEK, RFC_KEY[0:24], aes256.Aes256()).hex().upper() == (
        "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1")


def test_aes256_key_wrap_against_cryptography():
    for _ in range(20):
        kek, key = os.urandom(32), os.urandom(32)
        w = keywrap.wrap(kek, key, aes256.Aes256())
        assert w == aes_key_wrap(kek, key)
        assert keywrap.unwrap(kek, w, aes256.Aes256()) == key
        bad = bytearray(w)
        bad[5] ^= 1
        assert keywrap.unwrap(kek, bytes(bad), aes256.Aes256()) is None


def test_suite2_keys_kek_is_32_bytes_and_never_shown():
    store = ks.KeyStore(pt.MemStorage(), pt.ST_S, ek=pt.EK, ak=pt.AK, kek=pt.KEK)
    with pytest.raises(ValueError):
        suite12.Suite2Keys(store, gv.EK2, gv.AK2, pt.KEK)
    k2 = suite12.Suite2Keys(store, gv.EK2, gv.AK2, KEK2)
    assert k2.kek == KEK2 and KEK2.hex() not in repr(k2)
    # without one: none (never the suite 0 store's 16-byte KEK)
    assert suite12.Suite2Keys(store, gv.EK2, gv.AK2).kek is None


def channel2(kek=KEK2):
    ch, lines = gv.channel2()
    ch.meter.suite2_keys.kek = kek
    return ch, lines


def test_suite2_wrapped_key_general_ciphering():
    key = os.urandom(32)
    ch, lines = channel2()
    rq = gv.build(key, b"\x01\x01\x00" + gv.octets(aes_key_wrap(KEK2, key)), sc=0x32, ak=gv.AK2)
    rsp = pt.exchange(ch, rq)
    ki = gv.parse(rsp)[1]
    assert ki[0:3] == b"\x01\x01\x00" and ki[3] == 40  # a fresh 32-byte key, wrapped
    rkey = aes_key_unwrap(KEK2, ki[4:])
    assert gv.open_response(rsp, rkey, 0x32, gv.AK2) == pt.GET_RESPONSE
    assert rkey != key
    assert lines == []


def test_suite2_wrapped_key_without_a_kek_refused():
    key = os.urandom(32)
    ch, lines = channel2(kek=None)
    rq = gv.build(key, b"\x01\x01\x00" + gv.octets(aes_key_wrap(KEK2, key)), sc=0x32, ak=gv.AK2)
    assert pt.exchange(ch, rq)[0:2] == bytes.fromhex("D801")
    assert lines == ["general-ciphering refused: wrapped-key: no master key of 32 bytes"]


def test_suite2_wrapped_key_under_another_kek_refused():
    key = os.urandom(32)
    ch, lines = channel2()
    rq = gv.build(key, b"\x01\x01\x00" + gv.octets(aes_key_wrap(bytes(32), key)), sc=0x32, ak=gv.AK2)
    assert pt.exchange(ch, rq)[0:2] == bytes.fromhex("D801")
    assert lines == ["general-ciphering refused: wrapped key of 40 bytes does not unwrap under the master key"]
    # a suite 1 sized wrap (16-byte key under a 16-byte KEK) is no suite 2 key
    ch, lines = channel2()
    rq = gv.build(key, b"\x01\x01\x00" + gv.octets(aes_key_wrap(pt.KEK, pt.EK)), sc=0x32, ak=gv.AK2)
    assert pt.exchange(ch, rq)[0:2] == bytes.fromhex("D801")
    assert lines == ["general-ciphering refused: wrapped key of 24 bytes does not unwrap under the master key"]


# ------------------------------------------------------- key_transfer (suite 2)

SS = (64, 1, b"\x00\x00\x2b\x00\x00\xff", SECURITY_SETUP, -1, (
    (b"\x01\x01\x01\x01\x01\x01", b"\x01\x01\x01\x01\x01\x01\x01\x01"),), None)


def setup2(kek=KEK2):
    ctx = cs.make((SS,), [], meter_roles=(Role(1, ciphered=True, security_suite=2, policy=0x6C),))
    ctx.meter.keys = ks.KeyStore(pt.MemStorage(), pt.ST_S, ek=pt.EK, ak=pt.AK, kek=pt.KEK)
    ctx.meter.suite2_keys = suite12.Suite2Keys(ctx.meter.keys, gv.EK2, gv.AK2, kek)
    return ctx


def key_data(*items):
    h = "01%02X" % len(items)
    for kid, wrapped in items:
        h += "0202 16%02X 09%02X %s" % (kid, len(wrapped), wrapped.hex())
    return h


def test_suite2_key_transfer_stages_32_byte_keys():
    ctx = setup2()
    new_ek, new_ak, new_kek = os.urandom(32), os.urandom(32), os.urandom(32)
    p = key_data((0, aes_key_wrap(KEK2, new_ek)), (2, aes_key_wrap(KEK2, new_ak)), (3, aes_key_wrap(KEK2, new_kek)))
    assert cs.act(ctx, SS, 2, p) == (base.SUCCESS, b"")
    k2 = ctx.meter.suite2_keys
    assert (k2.ek, k2.ak, k2.kek) == (gv.EK2, gv.AK2, KEK2)  # from the next association on
    k2.activate()
    assert (k2.ek, k2.ak, k2.kek) == (new_ek, new_ak, new_kek)
    # the suite 0 keys did not change
    assert (ctx.meter.keys.ek, ctx.meter.keys.kek) == (pt.EK, pt.KEK)


@pytest.mark.parametrize("items", [
    ((0, "ok"), (1, "ok")),       # the broadcast key: not in suite 2
    ((0, "other"),),              # wrapped under another KEK
    ((0, "short"),),              # a 16-byte key wrapped (24 bytes)
    ((0, "ok"), (0, "ok")),       # repeated key id
])
def test_suite2_key_transfer_refused_changes_nothing(items):
    ctx = setup2()
    wraps = {"ok": aes_key_wrap(KEK2, os.urandom(32)), "other": aes_key_wrap(bytes(32), os.urandom(32)),
             "short": aes_key_wrap(pt.KEK, pt.EK)}
    assert cs.act(ctx, SS, 2, key_data(*[(k, wraps[w]) for k, w in items]))[0] == base.OTHER_REASON
    k2 = ctx.meter.suite2_keys
    k2.activate()
    assert (k2.ek, k2.ak, k2.kek) == (gv.EK2, gv.AK2, KEK2)


def test_suite2_key_transfer_without_a_kek_refused():
    ctx = setup2(kek=None)
    assert cs.act(ctx, SS, 2, key_data((0, aes_key_wrap(KEK2, os.urandom(32)))))[0] == base.OTHER_REASON


def test_key_file_suite2_kek(tmp_path):
    from dlms_micro_cpython import keyfile, signing

    k = keyfile.parse('{"ek": "%s", "ak": "%s", "kek": "%s", "suite2_kek": "%s"}'
                      % ("00" * 16, "11" * 16, "22" * 16, KEK2.hex()))
    assert k["suite2_kek"] == KEK2
    with pytest.raises(keyfile.KeyFileError) as ei:
        keyfile.parse('{"ek": "%s", "ak": "%s", "kek": "%s", "suite2_kek": "%s"}'
                      % ("00" * 16, "11" * 16, "22" * 16, "33" * 16))
    assert "suite2_kek: 32 bytes needed, 16 given" in str(ei.value)
    assert "33" * 16 not in str(ei.value)

    class C:
        ROLES = (("x", 1, 5, b"", 0, 3, 2),)

    store = ks.KeyStore(pt.MemStorage(), pt.ST_S, ek=pt.EK, ak=pt.AK, kek=pt.KEK)
    assert signing.make_suite2_keys(store, k, C).kek == KEK2
    # demo-only KEK only beside the demo-only EK and AK
    assert signing.make_suite2_keys(store, {}, C).kek == signing.DEMO_KEK2
    assert signing.make_suite2_keys(store, {"suite2_ek": os.urandom(32)}, C).kek is None
