# The `cryptography` package for security suites 1 and 2 on CPython: ECDSA
# and ECDH on P-256/P-384 (installed with dlms_micro.security.ecc.use) and
# AES-GCM-256 (dlms_micro.security.aes256.register_gcm). Imported by
# dlms_micro_cpython.crypto, which installs the AES-128 backend.
#
# The portable pure-Python code stays the reference: the tests check both
# against each other and against published vectors.

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from dlms_micro.security import aes256, ecc

NAME = "cryptography"


def _curve(c):
    return ec.SECP256R1() if c.size == 32 else ec.SECP384R1()


def _private(c, d):
    return ec.derive_private_key(int.from_bytes(bytes(d), "big"), _curve(c))


def _public(c, pub):
    n = c.size
    return ec.EllipticCurvePublicNumbers(
        int.from_bytes(bytes(pub[:n]), "big"), int.from_bytes(bytes(pub[n:]), "big"), _curve(c)
    ).public_key()


def _prehashed(c, digest_len=0):
    # the digest's hash: the curve's own, or as long as the digest given (a
    # P-256 CA may sign a certificate with SHA-384, as the pure code allows)
    n = digest_len or c.size
    return ec.ECDSA(utils.Prehashed(hashes.SHA256() if n == 32 else hashes.SHA384()))


def encode_public(key, size):
    # x || y of a `cryptography` EC public key
    n = key.public_numbers()
    return n.x.to_bytes(size, "big") + n.y.to_bytes(size, "big")


class CryptographyEcc:
    # dlms_micro.security.ecc's backend interface over `cryptography`
    name = NAME

    def public_key(self, c, d):
        return encode_public(_private(c, d).public_key(), c.size)

    def sign(self, c, d, digest):
        der = _private(c, d).sign(bytes(digest), _prehashed(c))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(c.size, "big") + s.to_bytes(c.size, "big")

    def verify(self, c, pub, digest, sig):
        n = c.size
        r = int.from_bytes(bytes(sig[:n]), "big")
        s = int.from_bytes(bytes(sig[n:]), "big")
        if not (0 < r < c.n and 0 < s < c.n):
            return False
        try:
            _public(c, pub).verify(utils.encode_dss_signature(r, s), bytes(digest), _prehashed(c, len(digest)))
        except (InvalidSignature, ValueError):
            return False
        return True

    def ecdh(self, c, d, pub):
        return _private(c, d).exchange(ec.ECDH(), _public(c, pub))


def _gcm256():
    from dlms_micro_cpython.crypto import CryptographyGcm

    return CryptographyGcm(key_len=32)


def install():
    ecc.use(CryptographyEcc())
    aes256.register_gcm(_gcm256)
