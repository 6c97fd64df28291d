# Security suite 1's curve on MicroPython: the pure-Python P-256 code of
# dlms_micro.security.ecc against RFC 6979 A.2.5 and the NIST CAVP ECC CDH
# vector (COUNT 0), SHA-256 from hashlib and HMAC from sha2.
#
# Own directory, own heap: the WebAssembly MicroPython of the runner never
# collects garbage inside a test, and the big-int arithmetic of one P-256
# scalar multiplication leaves ~1 MB of garbage (a board's GC reclaims it as
# it goes; the live memory stays a few KB). `make test-micropython` runs
# this directory with --heap 3m (see the Makefile).

from dlms_micro.security import ecc, sha2

D = bytes.fromhex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
PUB = bytes.fromhex(
    "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
    "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
)
SIG = bytes.fromhex(
    "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
    "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"
)


def test_rfc6979_public_key():
    assert ecc.public_key(ecc.P256, D) == PUB


def test_rfc6979_signature_of_sample():
    # the pure code's deterministic nonce (RFC 6979): the very signature (a
    # native backend a port installed may sign with a random nonce)
    old = ecc.use(None)
    try:
        assert ecc.sign(ecc.P256, D, sha2.digest("sha256", b"sample")) == SIG
    finally:
        ecc.use(old)


def test_rfc6979_signature_verifies():
    assert ecc.verify(ecc.P256, PUB, sha2.digest("sha256", b"sample"), SIG)


def test_forged_signature_refused():
    bad = bytearray(SIG)
    bad[40] ^= 4
    assert not ecc.verify(ecc.P256, PUB, sha2.digest("sha256", b"sample"), bytes(bad))


def test_point_off_the_curve_refused():
    bad = bytearray(PUB)
    bad[63] ^= 1
    try:
        ecc.check_public_key(ecc.P256, bytes(bad))
    except ecc.EccError:
        return
    raise AssertionError("a point off the curve was taken")


def test_cavp_ecdh_count0():
    q = bytes.fromhex(
        "700c48f77f56584c5cc632ca65640db91b6bacce3a4df6b42ce7cc838833d287"
        "db71e509e3fd9b060ddb20ba5c51dcc5948d46fbf640dfe0441782cab85fa4ac"
    )
    d = bytes.fromhex("7d7dc5f71eb29ddaf80d6214632eeae03d9058af1fb6d22ed80badb62bc1a534")
    z = bytes.fromhex("46fc62106420ff012e54a434fbdd2d25ccc5852060561e68040dd7778997bd7b")
    assert ecc.ecdh(ecc.P256, d, q) == z


def test_hmac_sha256_rfc4231_case2():
    assert sha2.hmac_digest("sha256", b"Jefe", b"what do ya want for nothing?") == bytes.fromhex(
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_sha384_pure_fips180_abc():
    assert sha2.Sha384(b"abc").digest() == bytes.fromhex(
        "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
        "8086072ba1e7cc2358baeca134c825a7"
    )


def test_aes256_fips197_c3_and_back():
    from dlms_micro.security.aes256 import Aes256

    a = Aes256(bytes(range(32)))
    b = bytearray(bytes.fromhex("00112233445566778899aabbccddeeff"))
    a.encrypt_block(b, 0)
    assert bytes(b) == bytes.fromhex("8ea2b7ca516745bfeafc49904b496089")
    a.decrypt_block(b, 0)
    assert bytes(b) == bytes.fromhex("00112233445566778899aabbccddeeff")
