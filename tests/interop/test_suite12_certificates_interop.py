# Security setup v1's certificate methods with gurux-dlms
# (GXDLMSSecuritySetup) on a suite 1 meter whose key file names a trusted
# CA: generate_certificate_request gives a PKCS #10 request for the meter's
# signing key (subject CN = its system title in hex), the CA's certificate
# for it is imported, listed in attribute 6, exported and removed; a
# client's certificate makes its key one the meter accepts for HLS-ECDSA
# (and removing it refuses that client again); certificates from another
# CA, expired ones, keys on another curve are refused (other-reason, a log
# line). The CA and certificates are made here with `cryptography`.
#
# gurux-dlms quirk: its GXx509Certificate cannot parse a certificate whose
# key usage extension is marked critical (TypeError in its parser), so the
# certificates here mark it non-critical (docs/compatibility.md).

import contextlib
import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from interop_peers import WRAPPER, GuruxError
from test_suite12_interop import DEFINITION, KEYS, connect, gurux_peer, log, read_ldn_and_energy  # noqa: F401

from dlms_micro.security import ecc
from dlms_micro_cpython import api

METER_TITLE = b"DMI\x00\x00\xbc\x61\x4e"
NEW_TITLE = b"NEWHES01"
NEW_D = hashlib.sha256(b"a head-end known by its certificate").digest()
NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)
OTHER_REASON = 250
OBJECT_UNAVAILABLE = 11


def make_ca(cn):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


CA_KEY, CA = make_ca("dlms_micro test CA")
OTHER_CA_KEY, OTHER_CA = make_ca("some other CA")


def issue(public_key, title, serial, ca_key=CA_KEY, ca=CA, before=NOW - DAY, after=NOW + 10 * DAY, signing=True):
    ku = x509.KeyUsage(signing, False, False, False, not signing, False, False, False, False)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, title.hex().upper())]))
            .issuer_name(ca.subject).public_key(public_key).serial_number(serial)
            .not_valid_before(before).not_valid_after(after)
            .add_extension(ku, critical=False)
            .sign(ca_key, hashes.SHA256())).public_bytes(serialization.Encoding.DER)


def client_public(d, curve=ec.SECP256R1()):
    return ec.derive_private_key(int.from_bytes(d, "big"), curve).public_key()


@pytest.fixture(scope="module")
def meter():
    keys = dict(KEYS, ca_certificate=CA.public_bytes(serialization.Encoding.PEM).decode())
    with api.serve(DEFINITION, keys=keys) as m:
        yield m


@contextlib.contextmanager
def session(meter, **kw):
    p = gurux_peer(meter, WRAPPER, "ecdsa1", **kw)
    try:
        connect(p)  # a refused one too: close() keeps its invocation counter
        yield p
    finally:
        p.close()


def security_setup():
    from gurux_dlms.objects import GXDLMSSecuritySetup

    return GXDLMSSecuritySetup("0.0.43.0.0.255")


def call(p, fn, *args):
    with contextlib.redirect_stdout(None):
        return p.method(fn(p.client, *args))


def import_der(p, der, raw=False):
    # through GXDLMSSecuritySetup.importCertificate, or (raw: certificates
    # gurux cannot parse, e.g. P-521) as an ACTION on method 6 with the DER
    # as an octet-string
    from gurux_dlms.asn import GXx509Certificate
    from gurux_dlms.enums import DataType

    ss = security_setup()
    if raw:
        with contextlib.redirect_stdout(None):
            return p.method(p.client.method(ss, 6, der, DataType.OCTET_STRING))
    return call(p, ss.importCertificate, GXx509Certificate(der))


def certificates(p):
    with contextlib.redirect_stdout(None):
        return p.read(security_setup(), 6)


def test_server_certificate_from_the_meters_request(meter):
    from gurux_dlms.objects.enums import CertificateEntity, CertificateType

    ss = security_setup()
    with session(meter) as p:
        csr = x509.load_der_x509_csr(bytes(call(p, ss.generateCertificate, CertificateType.DIGITAL_SIGNATURE).value))
        assert csr.is_signature_valid
        assert csr.subject.rfc4514_string() == "CN=" + METER_TITLE.hex().upper()
        server_key = meter.meter.meter.signing[1].key_pair.public  # (handle, simulator, Meter)
        assert csr.public_key().public_numbers().x.to_bytes(32, "big") == server_key[:32]
        der = issue(csr.public_key(), METER_TITLE, 4242)
        import_der(p, der)
        infos = certificates(p)
        assert [(i[0], i[1], bytes(i[2])) for i in infos] == [(0, 0, (4242).to_bytes(2, "big"))]
        assert bytes(infos[0][3]) == CA.subject.public_bytes()
        got = call(p, ss.exportCertificateByEntity, CertificateEntity.SERVER, CertificateType.DIGITAL_SIGNATURE,
                   METER_TITLE)
        assert bytes(got.value) == der
        call(p, ss.removeCertificateByEntity, CertificateEntity.SERVER, CertificateType.DIGITAL_SIGNATURE,
             METER_TITLE)
        assert not certificates(p)  # an empty array (gurux: None)
        with pytest.raises(GuruxError) as ei:
            call(p, ss.exportCertificateByEntity, CertificateEntity.SERVER, CertificateType.DIGITAL_SIGNATURE,
                 METER_TITLE)
        assert ei.value.code == OBJECT_UNAVAILABLE


def test_client_certificate_admits_its_key_for_hls_ecdsa(meter):
    from gurux_dlms.objects.enums import CertificateEntity, CertificateType

    with pytest.raises(Exception):  # not known yet
        with session(meter, title=NEW_TITLE, client_d=NEW_D):
            pass
    with session(meter) as p:
        import_der(p, issue(client_public(NEW_D), NEW_TITLE, 5151))
    with session(meter, title=NEW_TITLE, client_d=NEW_D) as p:
        assert read_ldn_and_energy(p)[1] == 1234
        call(p, security_setup().removeCertificateByEntity, CertificateEntity.CLIENT,
             CertificateType.DIGITAL_SIGNATURE, NEW_TITLE)
    with pytest.raises(Exception):  # removed with its certificate
        with session(meter, title=NEW_TITLE, client_d=NEW_D):
            pass


@pytest.mark.parametrize(
    "what,der,why",
    [
        ("another CA", lambda: issue(client_public(NEW_D), NEW_TITLE, 1, OTHER_CA_KEY, OTHER_CA),
         "is not the trusted CA"),
        ("a forged issuer name", lambda: issue(client_public(NEW_D), NEW_TITLE, 2, OTHER_CA_KEY, CA),
         "signature is not the trusted CA's"),
        ("expired", lambda: issue(client_public(NEW_D), NEW_TITLE, 3, after=NOW - DAY, before=NOW - 3 * DAY),
         "expired on"),
        ("not yet valid", lambda: issue(client_public(NEW_D), NEW_TITLE, 4, before=NOW + DAY), "not valid before"),
        ("P-521", lambda: issue(client_public(NEW_D, ec.SECP521R1()), NEW_TITLE, 5),
         "not an EC key on P-256 or P-384"),
        ("a CN that is no system title", lambda: issue(client_public(NEW_D), b"short", 6),
         "common name is not a system title"),
        ("the meter's title on another key", lambda: issue(client_public(NEW_D), METER_TITLE, 7),
         "certifies another key than the meter's"),
    ],
)
def test_bad_certificates_refused(meter, log, what, der, why):
    with session(meter) as p:
        with pytest.raises(GuruxError) as ei:
            import_der(p, der(), raw=True)  # gurux checks some itself before sending
        assert ei.value.code == OTHER_REASON
        assert not certificates(p)  # an empty array (gurux: None)
    assert any("import_certificate" not in line and why in line for line in log), log
