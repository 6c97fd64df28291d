# The portable X.509 reader (dlms_micro/security/x509.py) against
# certificates made by `cryptography`: every field it keeps equals what
# cryptography reads, check() accepts what the trusted CA signed and is
# valid now, and refuses, saying why, an untrusted CA, an expired or
# not-yet-valid certificate, a wrong curve, a point not on the curve, a
# forged signature; truncated or mutated DER (hypothesis) is refused with
# X509Error and nothing else. The PKCS #10 request it writes is one
# cryptography reads and finds validly signed.

import datetime

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st
from x509_factory import CLIENT_TITLE, DAY, METER_TITLE, NOW, der, issue, key, make_ca, public_xy

from dlms_micro.security import ecc, x509

T_NOW = int(NOW.timestamp())
CA_KEY, CA = make_ca()
CA384_KEY, CA384 = make_ca("dlms_micro P-384 CA", ec.SECP384R1(), 200)
OTHER_KEY, OTHER = make_ca("another CA", seed=300)
CLIENT = key(seed=7)
CLIENT_CERT = issue(CLIENT.public_key(), CLIENT_TITLE, 4242, CA_KEY, CA, san="hes.example")
TRUSTED = x509.load_ca(der(CA))


def ts(dt):
    return int(dt.timestamp())


def refused(cert_der, ca=TRUSTED, now=T_NOW):
    with pytest.raises(x509.X509Error) as ei:
        x509.check(x509.parse(cert_der), ca, now)
    return str(ei.value)


@pytest.mark.parametrize("curve,ca,hash_", [
    (ec.SECP256R1(), "p256", hashes.SHA256()),
    (ec.SECP384R1(), "p256", hashes.SHA256()),
    (ec.SECP256R1(), "p384", hashes.SHA384()),
    (ec.SECP384R1(), "p384", hashes.SHA384()),
    (ec.SECP256R1(), "p256", hashes.SHA384()),
])
def test_fields_as_cryptography_reads_them_and_accepted(curve, ca, hash_):
    ca_key, ca_cert = (CA_KEY, CA) if ca == "p256" else (CA384_KEY, CA384)
    k = key(curve, 11)
    cert = issue(k.public_key(), CLIENT_TITLE, 0x80FF01, ca_key, ca_cert, hash_=hash_, san="m.example")
    c = x509.parse(der(cert))
    assert int.from_bytes(c.serial, "big") == cert.serial_number
    assert c.issuer == cert.issuer.public_bytes() and c.subject == cert.subject.public_bytes()
    assert c.not_before == ts(cert.not_valid_before_utc) and c.not_after == ts(cert.not_valid_after_utc)
    assert c.curve is (ecc.P256 if curve.key_size == 256 else ecc.P384)
    assert c.public == public_xy(k.public_key())
    assert c.key_usage == x509.KU_DIGITAL_SIGNATURE and not c.ca and c.version == 3
    assert c.san == cert.extensions.get_extension_for_class(cx509.SubjectAlternativeName).value.public_bytes()
    assert c.sig_hash == hash_.name and c.title() == CLIENT_TITLE
    assert bytes(c.tbs()) == cert.tbs_certificate_bytes
    x509.check(c, x509.load_ca(der(ca_cert)), T_NOW)


def test_ca_fields():
    assert TRUSTED.ca and TRUSTED.path_len == 0 and TRUSTED.key_usage == x509.KU_KEY_CERT_SIGN | 0x02
    assert TRUSTED.subject == TRUSTED.issuer == CA.subject.public_bytes()


def test_key_agreement_usage_and_a_meter_title():
    c = x509.parse(der(issue(key(seed=3).public_key(), METER_TITLE, 1, CA_KEY, CA, signing=False)))
    assert c.key_usage == x509.KU_KEY_AGREEMENT and c.title() == METER_TITLE
    x509.check(c, TRUSTED, T_NOW)


def test_generalized_time_after_2049():
    cert = issue(CLIENT.public_key(), CLIENT_TITLE, 5, CA_KEY, CA,
                 after=datetime.datetime(2051, 2, 28, 23, 59, 58, tzinfo=datetime.timezone.utc))
    c = x509.parse(der(cert))
    assert c.not_after == ts(cert.not_valid_after_utc)
    assert x509.time_text(c.not_after) == "2051-02-28 23:59:58 UTC"


def test_untrusted_ca():
    assert "untrusted CA" in refused(der(issue(CLIENT.public_key(), CLIENT_TITLE, 1, OTHER_KEY, OTHER)))


def test_same_name_other_key_is_a_forged_signature():
    impostor_key, _ = make_ca(seed=400)  # the trusted CA's name, another key
    assert "not the trusted CA's" in refused(der(issue(CLIENT.public_key(), CLIENT_TITLE, 1, impostor_key, CA)))


def test_expired_and_not_yet_valid():
    old = issue(CLIENT.public_key(), CLIENT_TITLE, 1, CA_KEY, CA, before=NOW - 20 * DAY, after=NOW - DAY)
    assert "expired on" in refused(der(old))
    new = issue(CLIENT.public_key(), CLIENT_TITLE, 1, CA_KEY, CA, before=NOW + DAY, after=NOW + 20 * DAY)
    assert "not valid before" in refused(der(new))
    long = issue(CLIENT.public_key(), CLIENT_TITLE, 1, CA_KEY, CA, after=NOW + 5000 * DAY)
    assert "trusted CA expired" in refused(der(long), now=ts(NOW + 4000 * DAY))


@pytest.mark.parametrize("curve", [ec.SECP256K1(), ec.SECP521R1(), ec.SECP224R1()])
def test_wrong_curve(curve):
    assert "wrong curve" in refused(der(issue(key(curve, 5).public_key(), CLIENT_TITLE, 1, CA_KEY, CA)))


def test_point_not_on_the_curve():
    d = bytearray(der(CLIENT_CERT))
    pub = public_xy(CLIENT.public_key())
    i = bytes(d).index(pub)
    d[i + 63] ^= 1  # y changed: no point of P-256
    assert "point not on the curve" in refused(bytes(d))


def test_forged_signature_and_tampered_tbs():
    d = bytearray(der(CLIENT_CERT))
    d[bytes(d).index(b"hes.example")] ^= 0x20  # the SAN inside the signed part
    assert "not the trusted CA's" in refused(bytes(d))
    d = bytearray(der(CLIENT_CERT))
    d[-3] ^= 1  # s
    assert "not the trusted CA's" in refused(bytes(d))


def test_not_ecdsa_signed():
    from cryptography.hazmat.primitives.asymmetric import ed25519

    k = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32))
    name = CA.subject
    cert = (cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(CLIENT.public_key())
            .serial_number(9).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY).sign(k, None))
    assert "ecdsa-with-SHA256" in refused(der(cert))


def test_unknown_critical_extension_refused():
    from cryptography.x509 import OCSPNoCheck

    b = (cx509.CertificateBuilder().subject_name(CA.subject).issuer_name(CA.subject).public_key(CLIENT.public_key())
         .serial_number(9).not_valid_before(NOW - DAY).not_valid_after(NOW + DAY)
         .add_extension(OCSPNoCheck(), critical=True)).sign(CA_KEY, hashes.SHA256())
    with pytest.raises(x509.X509Error, match="unknown critical extension"):
        x509.parse(der(b))


def test_load_ca_refuses_an_end_entity():
    with pytest.raises(x509.X509Error, match="not a CA"):
        x509.load_ca(der(CLIENT_CERT))


def test_every_truncation_refused():
    d = der(CLIENT_CERT)
    for n in range(len(d)):
        with pytest.raises(x509.X509Error):
            x509.parse(d[:n])
    with pytest.raises(x509.X509Error, match="after the certificate"):
        x509.parse(d + b"\x00")


def test_non_der_lengths_refused():
    d = der(CLIENT_CERT)
    n = len(d) - 4  # 30 82 HH LL: as 30 83 00 HH LL
    with pytest.raises(x509.X509Error, match="fewest octets"):
        x509.parse(b"\x30\x83\x00" + d[2:4] + d[4:])
    with pytest.raises(x509.X509Error, match="indefinite"):
        x509.parse(b"\x30\x80" + d[4:] + b"\x00\x00")
    assert n > 0


@pytest.mark.parametrize("suite", [1, 2])
def test_certificate_request_read_by_cryptography(suite):
    c = ecc.for_suite(suite)
    kp = ecc.KeyPair(c, bytes(c.size - 1) + b"\x07")
    req = x509.certificate_request(kp, METER_TITLE.hex().upper().encode())
    csr = cx509.load_der_x509_csr(req)
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=" + METER_TITLE.hex().upper()
    assert public_xy(csr.public_key()) == kp.public
    assert csr.signature_hash_algorithm.name == c.hash_name
    assert csr.public_bytes(serialization.Encoding.DER) == req


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=4), st.integers(0, 2))
def test_mutated_der_refused_or_read_as_cryptography_reads_it(pos, junk, how):
    d = der(CLIENT_CERT)
    pos %= len(d)
    if how == 0:
        m = d[:pos] + junk + d[pos + len(junk):]
    elif how == 1:
        m = d[:pos] + junk + d[pos:]
    else:
        m = d[:pos] + d[pos + len(junk):]
    try:
        c = x509.parse(m)
    except x509.X509Error:
        return
    try:
        ok = x509.check(c, TRUSTED, T_NOW) or True
    except x509.X509Error:
        ok = False
    if ok:  # accepted: it is the certificate the CA signed, byte for byte
        assert m == d
    try:
        theirs = cx509.load_der_x509_certificate(m)
    except ValueError:
        return
    assert int.from_bytes(c.serial, "big", signed=True) == theirs.serial_number
    assert c.not_after == ts(theirs.not_valid_after_utc)


def _fixtures():
    import importlib.util
    import os

    p = os.path.join(os.path.dirname(__file__), "..", "portable_ecc", "cert_fixtures.py")
    spec = importlib.util.spec_from_file_location("cert_fixtures", p)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


FIX = _fixtures()
FIX_NAMES = ["CLIENT", "OTHER_CLIENT", "SERVER", "EXPIRED", "UNTRUSTED", "P384", "K256", "AGREEMENT"]


def test_portable_fixtures_are_what_cryptography_reads():
    ca = cx509.load_der_x509_certificate(FIX.CA)
    for n in FIX_NAMES:
        theirs = cx509.load_der_x509_certificate(getattr(FIX, n))
        ours = x509.parse(getattr(FIX, n))
        assert int.from_bytes(ours.serial, "big") == theirs.serial_number
        assert ours.subject == theirs.subject.public_bytes()
        if n != "UNTRUSTED":
            theirs.verify_directly_issued_by(ca)


class Keys:
    system_title = METER_TITLE


class Mem(dict):
    # a storage double (get is dict's)
    def put(self, k, v):
        self[k] = bytes(v)


def board_meter(random_bytes=None):
    # dlms_micro_mp.certstore (loaded from the port, which is not installed
    # here) and a suite 1 Meter as a board's boot leaves it
    import sys

    from dlms_micro.meter import Meter
    from dlms_micro.security import suite12
    from x509_factory import SERVER_D1

    sys.path.insert(0, "ports/micropython")
    try:
        from dlms_micro_mp import certstore
    finally:
        sys.path.remove("ports/micropython")
    m = Meter((), (), [], wall_clock=lambda: T_NOW)
    m.keys = Keys()
    m.random_bytes = random_bytes
    m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D1))
    return certstore, m


@pytest.mark.parametrize("name", FIX_NAMES)
def test_board_store_decides_as_the_cpython_store(name):
    # the same certificate, the same meter: the board's store (x509.py) and
    # the CPython port's (cryptography) accept or refuse it alike
    from dlms_micro.cosem.security_setup12 import CertError
    from dlms_micro_cpython import certs
    from x509_factory import SERVER_D1

    outcome = []
    for port in ("board", "cpython"):
        certstore, m = board_meter()
        st = Mem()
        if port == "board":
            certstore.provision(st, 1, SERVER_D1, {}, FIX.CA)
            store = certstore.CertStore(m, st)
        else:
            store = certs.CertStore(m, st, certs.load_ca(FIX.CA), lambda: T_NOW, None)
        try:
            store.import_certificate(getattr(FIX, name))
            outcome.append((True, store.infos()[0][:5], m.signing.client_keys))
        except CertError:
            outcome.append((False,))
    assert outcome[0] == outcome[1]
    assert outcome[0][0] == (name in ("CLIENT", "OTHER_CLIENT", "SERVER", "AGREEMENT"))


def test_board_store_key_pair_and_request_read_by_cryptography():
    # generate_key_pair then generate_certificate_request on a board's store:
    # a PKCS #10 request cryptography verifies, for the new key, subject
    # the meter's system title; the old key's server certificate dropped
    import os

    from x509_factory import SERVER_D1

    certstore, m = board_meter(os.urandom)
    st = Mem()
    certstore.provision(st, 1, SERVER_D1, {}, FIX.CA)
    store = certstore.CertStore(m, st)
    store.import_certificate(FIX.SERVER)
    old = m.signing.key_pair.public
    store.generate_key_pair(0, 1)
    assert m.signing.key_pair.public != old and store.infos() == []
    assert st["sec.sign1"] != SERVER_D1 and len(st["sec.sign1"]) == 32
    for ktype in (0, 1):
        csr = cx509.load_der_x509_csr(store.certificate_request(ktype, 1))
        assert csr.is_signature_valid
        assert csr.subject.rfc4514_string() == "CN=" + METER_TITLE.hex().upper()
        want = m.signing.key_pair.public if ktype == 0 else store.agreement[1].public
        assert public_xy(csr.public_key()) == want
    assert "sec.agree1" in st
