# Certificates made with `cryptography` for the X.509 reader's tests
# (dlms_micro/security/x509.py) and its fuzz target: a test CA on P-256 and
# one on P-384, and end-entity certificates as a head-end's PKI would issue
# them (subject CN = a system title in hex, key usage, validity).

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

NOW = datetime.datetime(2026, 12, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
CLIENT_TITLE = b"GURUXHES"
METER_TITLE = b"DMI\x00\x00\xbc\x61\x4e"


def der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def key(curve=ec.SECP256R1(), seed=1):
    # a fixed private key (tests are reproducible)
    order = {"secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551}.get(curve.name, 2 ** 160)
    return ec.derive_private_key((seed * 0x9E3779B97F4A7C15 + 12345) % order, curve)


def name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn="dlms_micro test CA", curve=ec.SECP256R1(), seed=100, before=NOW - 365 * DAY,
            after=NOW + 3650 * DAY, hash_=None):
    k = key(curve, seed)
    h = hash_ or (hashes.SHA256() if curve.key_size == 256 else hashes.SHA384())
    cert = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(name(cn)).public_key(k.public_key())
            .serial_number(seed).not_valid_before(before).not_valid_after(after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(k, h))
    return k, cert


def issue(public_key, title, serial, ca_key, ca, before=NOW - DAY, after=NOW + 30 * DAY, signing=True,
          hash_=None, critical_ku=True, san=None, extra=None):
    ku = x509.KeyUsage(signing, False, False, False, not signing, False, False, False, False)
    b = (x509.CertificateBuilder().subject_name(name(title.hex().upper()))
         .issuer_name(ca.subject).public_key(public_key).serial_number(serial)
         .not_valid_before(before).not_valid_after(after)
         .add_extension(ku, critical=critical_ku))
    if san is not None:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    if extra is not None:
        b = b.add_extension(extra, critical=False)
    return b.sign(ca_key, hash_ or hashes.SHA256())


def public_xy(pub):
    n = pub.curve.key_size // 8
    nums = pub.public_numbers()
    return nums.x.to_bytes(n, "big") + nums.y.to_bytes(n, "big")


# ---------------------------------------------------------------- fixtures
# tests/portable_ecc/cert_fixtures.py (DER as hex, for MicroPython, which
# cannot make them) is this module's output:
#   python tests/cpython/x509_factory.py > tests/portable_ecc/cert_fixtures.py
# The keys are the suite 1 interop keys (tests/interop/test_suite12_interop.py)
# so that the firmware's HLS-ECDSA test can import the client's certificate.
# Regenerating signs everything again (new ECDSA nonces, new DER): the
# trusted CA's DER is also tools/firmware/fw_main.py's demo CA, to be
# updated with it.

import hashlib  # noqa: E402

SERVER_D1 = hashlib.sha256(b"dlms_micro test meter suite 1").digest()
CLIENT_D1 = hashlib.sha256(b"dlms_micro test head-end suite 1").digest()
OTHER_D1 = hashlib.sha256(b"an unknown head-end").digest()
OTHER_TITLE = b"OTHERHES"
FIX_FROM = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
FIX_TO = datetime.datetime(2036, 1, 1, tzinfo=datetime.timezone.utc)


def _d(d, curve=ec.SECP256R1()):
    return ec.derive_private_key(int.from_bytes(d, "big"), curve)


def portable_fixtures():
    ca_key = _d(hashlib.sha256(b"dlms_micro test CA").digest())
    ca = (x509.CertificateBuilder().subject_name(name("dlms_micro test CA")).issuer_name(name("dlms_micro test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(FIX_FROM)
          .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=datetime.timezone.utc))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    other_key, other = make_ca("another CA", seed=300, before=FIX_FROM, after=FIX_TO)
    client = _d(CLIENT_D1).public_key()

    def mk(pub, title, serial, **kw):
        kw.setdefault("before", FIX_FROM)
        kw.setdefault("after", FIX_TO)
        kw.setdefault("critical_ku", False)  # gurux cannot parse a critical one
        return der(issue(pub, title, serial, kw.pop("ca_key", ca_key), kw.pop("ca", ca), **kw))

    return [
        ("CA", "the trusted CA (P-256, self-signed, basicConstraints cA)", der(ca)),
        ("CLIENT", "GURUXHES's signing key (CLIENT_D1), serial 4242", mk(client, b"GURUXHES", 4242)),
        ("OTHER_CLIENT", "OTHERHES's signing key (OTHER_D1), serial 4244",
         mk(_d(OTHER_D1).public_key(), OTHER_TITLE, 4244)),
        ("SERVER", "the meter's signing key (SERVER_D1), serial 4243", mk(_d(SERVER_D1).public_key(), METER_TITLE, 4243)),
        ("EXPIRED", "GURUXHES, valid 2020-2021", mk(client, b"GURUXHES", 5, before=datetime.datetime(
            2020, 1, 1, tzinfo=datetime.timezone.utc), after=datetime.datetime(2021, 1, 1, tzinfo=datetime.timezone.utc))),
        ("UNTRUSTED", "GURUXHES, issued by another CA", mk(client, b"GURUXHES", 6, ca_key=other_key, ca=other)),
        ("P384", "GURUXHES with a P-384 key", mk(_d(CLIENT_D1[:24] * 2, ec.SECP384R1()).public_key(), b"GURUXHES", 7)),
        ("K256", "GURUXHES with a secp256k1 key", mk(key(ec.SECP256K1(), 5).public_key(), b"GURUXHES", 8)),
        ("AGREEMENT", "GURUXHES, key agreement usage", mk(client, b"GURUXHES", 9, signing=False)),
    ] + suite2_fixtures()


def suite2_fixtures():
    # a P-384 CA (ecdsa-with-SHA384) and a suite 2 client certificate under it
    ca_key = _d(hashlib.sha384(b"dlms_micro test CA suite 2").digest(), ec.SECP384R1())
    n = name("dlms_micro test CA suite 2")
    ca = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(ca_key.public_key())
          .serial_number(2).not_valid_before(FIX_FROM).not_valid_after(FIX_TO)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA384()))
    client = _d(hashlib.sha384(b"dlms_micro test head-end suite 2").digest(), ec.SECP384R1()).public_key()
    cert = issue(client, b"GURUXHES", 4245, ca_key, ca, before=FIX_FROM, after=FIX_TO, hash_=hashes.SHA384(),
                 critical_ku=False)
    return [("CA384", "a P-384 CA (self-signed, ecdsa-with-SHA384)", der(ca)),
            ("CLIENT384", "GURUXHES's suite 2 signing key under CA384, serial 4245", der(cert))]


def main():
    print("# X.509 certificates for the portable tests (DER), made with `cryptography` by")
    print("#   python tests/cpython/x509_factory.py > tests/portable_ecc/cert_fixtures.py")
    print("# (tests/cpython/test_x509_cryptography.py checks them with cryptography).")
    print()
    for n, what, d in portable_fixtures():
        print("# %s" % what)
        h = d.hex()
        print("%s = bytes.fromhex(" % n)
        for i in range(0, len(h), 96):
            print('    "%s"' % h[i:i + 96])
        print(")")


if __name__ == "__main__":
    main()
