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
