# The primitives of security suites 1 and 2 (CPython): the portable code
# (dlms_micro.security: sha2, ecc, aes256, kdf) against published vectors
# (RFC 6979 A.2.5/A.2.6, NIST CAVP ECC CDH, FIPS-197 C.3, the GCM
# specification's AES-256 cases, RFC 3394 4.6) and against the `cryptography`
# package with hypothesis; the CPython port's `cryptography` backend
# (dlms_micro_cpython.crypto_ecc) against the same vectors.

import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.keywrap import aes_key_wrap
from hypothesis import given, settings
from hypothesis import strategies as st

from dlms_micro.security import aes256, ecc, kdf, keywrap, sha2
from dlms_micro_cpython import crypto, crypto_ecc  # noqa: F401  (installs the backends)

SETTINGS = settings(max_examples=40, deadline=None)
NATIVE = crypto_ecc.CryptographyEcc()


@pytest.fixture(params=["pure", "cryptography"])
def backend(request):
    old = ecc.use(None if request.param == "pure" else NATIVE)
    yield request.param
    ecc.use(old)


def h(s):
    return bytes.fromhex(s.replace(" ", ""))


# RFC 6979 A.2.5 (P-256) and A.2.6 (P-384): key pairs and the signatures of
# "sample" with the suite's hash (deterministic nonce)
RFC6979 = [
    (
        ecc.P256,
        h("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"),
        h("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
          "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"),
        h("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
          "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"),
    ),
    (
        ecc.P384,
        h("6B9D3DAD2E1B8C1C05B19875B6659F4DE23C3B667BF297BA9AA47740787137D8"
          "96D5724E4C70A825F872C9EA60D2EDF5"),
        h("EC3A4E415B4E19A4568618029F427FA5DA9A8BC4AE92E02E06AAE5286B300C64"
          "DEF8F0EA9055866064A254515480BC13"
          "8015D9B72D7D57244EA8EF9AC0C621896708A59367F9DFB9F54CA84B3F1C9DB1"
          "288B231C3AE0D4FE7344FD2533264720"),
        h("94EDBB92A5ECB8AAD4736E56C691916B3F88140666CE9FA73D64C4EA95AD133C"
          "81A648152E44ACF96E36DD1E80FABE46"
          "99EF4AEB15F178CEA1FE40DB2603138F130E740A19624526203B6351D0A3A94F"
          "A329C145786E679E7B82C71A38628AC8"),
    ),
]


@pytest.mark.parametrize("curve,d,pub,sig", RFC6979, ids=["P-256", "P-384"])
def test_rfc6979_key_pair_and_signature_of_sample(curve, d, pub, sig, backend):
    digest = sha2.digest(curve.hash_name, b"sample")
    assert ecc.public_key(curve, d) == pub
    assert ecc.verify(curve, pub, digest, sig)
    if backend == "pure":  # RFC 6979's nonce: the very signature
        assert ecc.sign(curve, d, digest) == sig
    else:  # a random nonce: another signature, as valid
        assert ecc.verify(curve, pub, digest, ecc.sign(curve, d, digest))


# NIST CAVP ECC CDH primitive test vectors (KAS ECC CDH), COUNT = 0 of P-256
CDH_P256 = dict(
    qcavs=h("700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
            "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac"),
    d=h("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534"),
    qiut=h("ead218590119e8876b29146ff89ca61770c4edbbf97d38ce385ed281d8a6b230"
           "28af61281fd35e2fa7002523acc85a429cb06ee6648325389f59edfce1405141"),
    z=h("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b"),
)


def test_cavp_ecdh_p256(backend):
    v = CDH_P256
    assert ecc.public_key(ecc.P256, v["d"]) == v["qiut"]
    assert ecc.ecdh(ecc.P256, v["d"], v["qcavs"]) == v["z"]


def _crypto_key(curve, d):
    return ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1() if curve.size == 32 else ec.SECP384R1())


def _scalars(curve):
    return st.integers(1, curve.n - 1).map(lambda k: k.to_bytes(curve.size, "big"))


def _hash(curve):
    return hashes.SHA256() if curve.size == 32 else hashes.SHA384()


@SETTINGS
@given(st.data(), st.binary(max_size=200))
def test_pure_ecdsa_against_cryptography(data, msg):
    curve = data.draw(st.sampled_from([ecc.P256, ecc.P384]))
    d = data.draw(_scalars(curve))
    old = ecc.use(None)
    try:
        key = _crypto_key(curve, d)
        pub = crypto_ecc.encode_public(key.public_key(), curve.size)
        assert ecc.public_key(curve, d) == pub
        digest = sha2.digest(curve.hash_name, msg)
        sig = ecc.sign(curve, d, digest)
        n = curve.size
        key.public_key().verify(
            utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big")),
            msg,
            ec.ECDSA(_hash(curve)),
        )
        r, s = utils.decode_dss_signature(key.sign(msg, ec.ECDSA(_hash(curve))))
        theirs = r.to_bytes(n, "big") + s.to_bytes(n, "big")
        assert ecc.verify(curve, pub, digest, theirs)
        assert ecc.verify_message(curve, pub, theirs, msg)
        bad = bytearray(theirs)
        bad[data.draw(st.integers(0, 2 * n - 1))] ^= 1 << data.draw(st.integers(0, 7))
        assert not ecc.verify(curve, pub, digest, bytes(bad))
        assert not ecc.verify(curve, pub, sha2.digest(curve.hash_name, msg + b"x"), theirs)
    finally:
        ecc.use(old)


@SETTINGS
@given(st.data())
def test_pure_ecdh_against_cryptography(data):
    curve = data.draw(st.sampled_from([ecc.P256, ecc.P384]))
    d1 = data.draw(_scalars(curve))
    d2 = data.draw(_scalars(curve))
    k1 = _crypto_key(curve, d1)
    k2 = _crypto_key(curve, d2)
    pub2 = crypto_ecc.encode_public(k2.public_key(), curve.size)
    old = ecc.use(None)
    try:
        assert ecc.ecdh(curve, d1, pub2) == k1.exchange(ec.ECDH(), k2.public_key())
    finally:
        ecc.use(old)


def _off_curve(curve, pub):
    b = bytearray(pub)
    b[-1] ^= 1
    return bytes(b)


@pytest.mark.parametrize("curve", [ecc.P256, ecc.P384], ids=["P-256", "P-384"])
def test_bad_points_and_signatures_refused(curve, backend):
    d = bytes(curve.size - 1) + b"\x07"
    pub = ecc.public_key(curve, d)
    digest = sha2.digest(curve.hash_name, b"m")
    sig = ecc.sign(curve, d, digest)
    n = curve.size
    assert ecc.verify(curve, pub, digest, sig)
    off = _off_curve(curve, pub)
    with pytest.raises(ecc.EccError):
        ecc.check_public_key(curve, off)
    with pytest.raises(ecc.EccError):
        ecc.ecdh(curve, d, off)
    with pytest.raises(ecc.EccError):
        ecc.ecdh(curve, d, pub[:-1])  # truncated
    with pytest.raises(ecc.EccError):  # x = p: outside the field
        ecc.check_public_key(curve, curve.p.to_bytes(n, "big") + pub[n:])
    assert not ecc.verify(curve, off, digest, sig)
    assert not ecc.verify(curve, pub, digest, sig[:-1])
    assert not ecc.verify(curve, pub, digest, bytes(n) + sig[n:])  # r = 0
    assert not ecc.verify(curve, pub, digest, sig[:n] + curve.n.to_bytes(n, "big"))  # s = n
    # (r, n - s) is a valid signature too (ECDSA malleability); a forged r is not
    other = ecc.P384 if curve is ecc.P256 else ecc.P256
    assert not ecc.verify(other, ecc.public_key(other, bytes(other.size - 1) + b"\x07"), digest, sig)
    for bad in (bytes(n), curve.n.to_bytes(n, "big"), b"\x01"):
        with pytest.raises(ecc.EccError):
            ecc.public_key(curve, bad)


def test_key_pair_hides_its_private_key():
    d = RFC6979[0][1]
    kp = ecc.KeyPair(ecc.P256, d)
    assert kp.public == RFC6979[0][2]
    text = repr(kp) + str(kp)
    assert d.hex() not in text.lower() and d.hex().upper() not in text
    assert not any(getattr(kp, a, None) == d for a in dir(kp) if not a.startswith("_KeyPair"))
    with pytest.raises(ecc.EccError):
        kp.export_private("log")
    digest = sha2.digest("sha256", b"x")
    assert ecc.verify(ecc.P256, kp.public, digest, kp.sign(digest))
    kp.wipe()
    assert not kp.has_private()


# ------------------------------------------------------------ hashes


@SETTINGS
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_pure_sha384_against_hashlib(parts):
    p = sha2.Sha384()
    for x in parts:
        p.update(x)
    assert p.digest() == hashlib.sha384(b"".join(parts)).digest()


def test_sha384_fips180_examples():
    assert sha2.Sha384(b"abc").digest() == h(
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        "8086072ba1e7cc2358baeca134c825a7"
    )
    assert sha2.digest("sha256", b"abc") == h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


@SETTINGS
@given(st.binary(max_size=200), st.binary(max_size=100), st.sampled_from(["sha256", "sha384"]))
def test_hmac_against_stdlib(key, msg, name):
    assert sha2.hmac_digest(name, key, msg) == hmac.new(key, msg, name).digest()


# ------------------------------------------------------------ AES-256


def test_aes256_fips197_c3():
    a = aes256.Aes256(bytes(range(32)))
    b = bytearray(h("00112233445566778899aabbccddeeff"))
    a.encrypt_block(b, 0)
    assert bytes(b) == h("8ea2b7ca516745bfeafc49904b496089")
    a.decrypt_block(b, 0)
    assert bytes(b) == h("00112233445566778899aabbccddeeff")


@pytest.mark.parametrize("pure", [True, False])
def test_gcm256_specification_cases_13_14(pure):
    # McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13
    # and 14 (256-bit zero key, zero IV)
    g = aes256.new_gcm(pure=pure)
    g.set_key(bytes(32))
    tag = bytearray(16)
    g.encrypt(bytes(12), 0, b"", 0, 0, bytearray(), 0, 0, tag, 0, 16)
    assert bytes(tag) == h("530f8afbc74536b9a963b4f1c4cb738b")
    buf = bytearray(16)
    g.encrypt(bytes(12), 0, b"", 0, 0, buf, 0, 16, tag, 0, 16)
    assert bytes(buf) == h("cea7403d4d606b6e074ec5d3baf39d18")
    assert bytes(tag) == h("d0d1c8a799996bf0265b98b5d48ab919")


@SETTINGS
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=12, max_size=12), st.binary(max_size=60),
       st.binary(max_size=80))
def test_pure_gcm256_against_cryptography(key, iv, aad, plain):
    ref = AESGCM(key).encrypt(iv, plain, aad)
    g = aes256.new_gcm(pure=True)
    g.set_key(key)
    buf = bytearray(plain)
    tag = bytearray(12)
    g.encrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, 12)
    assert bytes(buf) == ref[: len(plain)] and bytes(tag) == ref[len(plain) : len(plain) + 12]
    assert g.decrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, 12)
    assert bytes(buf) == plain


def test_keywrap_256_rfc3394_4_6():
    kek = h("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
    key = h("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
    want = h("28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21")
    assert keywrap.wrap(kek, key, cipher=aes256.Aes256()) == want
    assert keywrap.unwrap(kek, want, cipher=aes256.Aes256()) == key
    assert keywrap.unwrap(kek, want[:-1] + b"\x00", cipher=aes256.Aes256()) is None


@SETTINGS
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=32).filter(lambda k: len(k) % 8 == 0))
def test_keywrap_256_against_cryptography(kek, key):
    assert keywrap.wrap(kek, key, cipher=aes256.Aes256()) == aes_key_wrap(kek, key)


# ------------------------------------------------------------ KDF


@SETTINGS
@given(st.binary(min_size=32, max_size=48), st.binary(min_size=8, max_size=8), st.binary(min_size=8, max_size=8),
       st.sampled_from([1, 2]))
def test_concat_kdf_against_cryptography(z, u, v, suite):
    name, n, alg = kdf.for_suite(suite)
    info = kdf.other_info(alg, u, v)
    ref = ConcatKDFHash(hashes.SHA256() if suite == 1 else hashes.SHA384(), n, info).derive(z)
    assert kdf.concat_kdf(name, z, n, info) == ref
    assert kdf.concat_kdf(name, z, 80, info) == ConcatKDFHash(
        hashes.SHA256() if suite == 1 else hashes.SHA384(), 80, info
    ).derive(z)
