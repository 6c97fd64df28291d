# Property tests for the crypto core (CPython only): the portable AES-GCM and
# key wrap against the `cryptography` package, and the CPython port's
# cryptography backend against the portable code.

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms_micro.security import backend, gcm, keywrap
from dlms_micro.security.gcm import Gcm
from dlms_micro_cpython import crypto

SETTINGS = settings(max_examples=200, deadline=None)

keys = st.binary(min_size=16, max_size=16)
ivs = st.binary(min_size=12, max_size=12)
aads = st.binary(max_size=70)
plains = st.binary(max_size=100)
tag_lens = st.integers(4, 16)

PURE = {4: Gcm(backend.new("pure"), 4), 8: Gcm(backend.new("pure"), 8)}
OVER_CRYPTOGRAPHY = Gcm(crypto.CryptographyAes())
WHOLE = crypto.CryptographyGcm()


def reference(key, iv, aad, plain, tag_len):
    out = AESGCM(key).encrypt(iv, plain, aad)
    return out[: len(plain)], out[len(plain) : len(plain) + tag_len]


def seal(g, key, iv, aad, plain, tag_len, pad=3):
    # in place at offsets, the tag right behind the ciphertext
    g.set_key(key)
    buf = bytearray(b"\x5a" * pad + plain + bytes(tag_len) + b"\xa5")
    s = pad
    e = s + len(plain)
    g.encrypt(iv, 0, aad, 0, len(aad), buf, s, e, buf, e, tag_len)
    assert buf[:pad] == b"\x5a" * pad and buf[-1] == 0xA5
    return bytes(buf[s:e]), bytes(buf[e : e + tag_len])


@SETTINGS
@given(keys, ivs, aads, plains, tag_lens, st.sampled_from([4, 8]))
def test_portable_gcm_equals_cryptography(key, iv, aad, plain, tag_len, tables):
    g = PURE[tables]
    want = reference(key, iv, aad, plain, tag_len)
    assert seal(g, key, iv, aad, plain, tag_len) == want
    ct, tag = want
    buf = bytearray(ct)
    assert g.decrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, tag_len)
    assert bytes(buf) == plain


@SETTINGS
@given(keys, ivs, aads, plains, tag_lens)
def test_cryptography_backend_and_whole_gcm_equal_portable(key, iv, aad, plain, tag_len):
    want = seal(PURE[4], key, iv, aad, plain, tag_len)
    assert seal(OVER_CRYPTOGRAPHY, key, iv, aad, plain, tag_len) == want
    assert seal(WHOLE, key, iv, aad, plain, tag_len) == want
    ct, tag = want
    for g in (OVER_CRYPTOGRAPHY, WHOLE):
        buf = bytearray(ct)
        assert g.decrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, tag_len)
        assert bytes(buf) == plain


@SETTINGS
@given(keys, ivs, aads, plains, tag_lens, st.data())
def test_any_tampering_is_refused_and_the_buffer_kept(key, iv, aad, plain, tag_len, data):
    ct, tag = reference(key, iv, aad, plain, tag_len)
    where = data.draw(st.sampled_from(["ct", "tag", "aad", "iv"] if ct else ["tag", "aad", "iv"]))
    ct, tag, aad, iv = bytearray(ct), bytearray(tag), bytearray(aad), bytearray(iv)
    victim = {"ct": ct, "tag": tag, "aad": aad, "iv": iv}[where]
    if not victim:
        victim.append(0)  # an AAD byte that was not there
    else:
        i = data.draw(st.integers(0, len(victim) - 1))
        victim[i] ^= 1 << data.draw(st.integers(0, 7))
    for g in (PURE[4], PURE[8], WHOLE):
        g.set_key(key)
        buf = bytearray(ct)
        assert not g.decrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, tag_len)
        assert buf == ct


@SETTINGS
@given(keys, ivs, aads, plains, st.data())
def test_aad_in_two_ranges_equals_one(key, iv, aad, plain, data):
    cut = data.draw(st.integers(0, len(aad)))
    want = reference(key, iv, aad, plain, 16)
    for g in (PURE[4], PURE[8], WHOLE):
        g.set_key(key)
        buf = bytearray(plain)
        tag = bytearray(16)
        g.encrypt(iv, 0, aad, 0, cut, buf, 0, len(buf), tag, 0, 16,
                  aad2=aad, aad2_s=cut, aad2_e=len(aad))
        assert (bytes(buf), bytes(tag)) == want


@SETTINGS
@given(keys, ivs, st.lists(st.tuples(st.sampled_from([b"\x30", b"\x10", b"\x20"]), plains),
                           min_size=1, max_size=6))
def test_a_run_of_apdus_under_one_key_reuses_the_aad_correctly(key, iv, apdus):
    # suite 0: SC || AK as AAD, one set_key, many APDUs
    ak = bytes(range(0xD0, 0xE0))
    g = PURE[4]
    g.set_key(key)
    for sc, plain in apdus:
        aad = sc + ak
        buf = bytearray(plain)
        tag = bytearray(12)
        g.encrypt(iv, 0, aad, 0, 17, buf, 0, len(buf), tag, 0, 12)
        assert (bytes(buf), bytes(tag)) == reference(key, iv, aad, plain, 12)


@SETTINGS
@given(keys, st.integers(2, 5).flatmap(lambda n: st.binary(min_size=8 * n, max_size=8 * n)))
def test_keywrap_matches_cryptography_and_round_trips(kek, key):
    w = keywrap.wrap(kek, key)
    assert w == aes_key_wrap(kek, key)
    assert keywrap.unwrap(kek, w) == key
    assert keywrap.unwrap(kek, w, crypto.CryptographyAes()) == key
    assert keywrap.wrap(kek, key, backend.new("pure")) == w


@SETTINGS
@given(keys, keys, st.data())
def test_keywrap_tampering_or_wrong_kek_gives_none(kek, key, data):
    w = bytearray(keywrap.wrap(kek, key))
    if data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(w) - 1))
        w[i] ^= 1 << data.draw(st.integers(0, 7))
        assert keywrap.unwrap(kek, w) is None
    else:
        other = bytearray(kek)
        other[data.draw(st.integers(0, 15))] ^= 0x01
        assert keywrap.unwrap(bytes(other), w) is None


@SETTINGS
@given(keys, st.binary(min_size=16, max_size=16))
def test_cryptography_backend_block_equals_pure(key, block):
    want = Cipher(algorithms.AES(key), modes.ECB()).encryptor().update(block)
    for c in (crypto.CryptographyAes(), backend.new("pure")):
        c.set_key(key)
        b = bytearray(b"\x00" + block)
        c.encrypt_block(b, 1)
        assert bytes(b[1:]) == want
        c.decrypt_block(b, 1)
        assert bytes(b[1:]) == block


def test_the_port_registers_cryptography_first():
    assert backend.names()[0] == "cryptography"
    assert backend.selected() == "cryptography"
    assert isinstance(gcm.new(), crypto.CryptographyGcm)
    try:
        backend.select("pure")
        g = gcm.new()
        assert isinstance(g, Gcm) and g.cipher.name == "pure"
    finally:
        backend.select()
