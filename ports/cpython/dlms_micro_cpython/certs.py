# The certificate store of a simulated meter (meter.cert_store) for
# security suites 1 and 2: X.509 certificates checked with
# `cryptography.x509` against the trusted CA the key file names
# ("ca_certificate"), the Security setup methods 4-8 behind
# dlms_micro/cosem/security_setup12.py, and the client signing keys the
# imported certificates certify (HLS-ECDSA).
#
# What a certificate must be to be imported (else CertError, which the
# meter answers with other-reason and logs):
#   - X.509 DER, signed (ECDSA) by the trusted CA's key, issuer = the CA's
#     subject; no CA configured: nothing is imported
#   - valid now (not_before <= the meter's clock <= not_after)
#   - an EC public key on P-256 or P-384 (suite 1 / suite 2)
#   - subject common name = the certified party's system title in hex (16
#     hex digits, as the Green Book names DLMS devices)
#   - key usage digitalSignature (type 0, digital signature) or keyAgreement
#     (type 1, key agreement); a CA certificate is not imported
# The meter's own (server) certificate must certify the meter's current
# key of that type; a client's signing certificate makes its key one the
# meter accepts for HLS-ECDSA (removed with the certificate).
# Stored (atomically, like the keys) as "sec.certs": each certificate as a
# 2-byte length and its DER.

import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dlms_micro.cosem.security_setup12 import CertError
from dlms_micro.security import ecc
from dlms_micro_cpython.crypto_ecc import encode_public

STORE_CERTS = "sec.certs"
STORE_AGREEMENT = "sec.agree%d"
SERVER, CLIENT, CA, OTHER = 0, 1, 2, 3  # certificate_entity
SIGNING, AGREEMENT, TLS = 0, 1, 2  # certificate_type / key_pair_type


def load_ca(data):
    """A trusted CA certificate from PEM text or DER bytes."""
    if isinstance(data, str):
        data = data.encode()
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(bytes(data))
    except ValueError as e:
        raise ValueError("ca_certificate: not an X.509 certificate (%s)" % e) from None


def _curve_of(key):
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return None
    if isinstance(key.curve, ec.SECP256R1):
        return ecc.P256
    if isinstance(key.curve, ec.SECP384R1):
        return ecc.P384
    return None


def _title_of(cert):
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if len(cns) != 1:
        return None
    cn = cns[0].value
    try:
        t = bytes.fromhex(cn)
    except ValueError:
        return None
    return t if len(t) == 8 else None


def _type_of(cert):
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if ku.digital_signature and not ku.key_agreement:
        return SIGNING
    if ku.key_agreement and not ku.digital_signature:
        return AGREEMENT
    return None


def _is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


class _Entry:
    def __init__(self, cert, der, entity, ktype, title, curve):
        self.cert = cert
        self.der = der
        self.entity = entity
        self.type = ktype
        self.title = title
        self.curve = curve

    def serial(self):
        n = self.cert.serial_number
        return n.to_bytes(max(1, (n.bit_length() + 8) // 8), "big")

    def san(self):
        try:
            return self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.public_bytes()
        except x509.ExtensionNotFound:
            return b""


class CertStore:
    """meter.cert_store: see the module comment. meter: the dlms_micro
    Meter (its signing material and key store); storage: the meter's;
    ca: the trusted CA certificate (x509) or None; clock: UTC seconds;
    random_bytes: for new key pairs."""

    def __init__(self, meter, storage, ca, clock, random_bytes, log=None):
        self.meter = meter
        self.storage = storage
        self.ca = ca
        self.clock = clock
        self.random_bytes = random_bytes
        self.log = log
        self.agreement = {}  # suite -> ecc.KeyPair (key agreement)
        self._entries = []
        rec = storage.get(STORE_CERTS) if storage is not None else None
        p = 0
        while rec and p + 2 <= len(rec):
            n = int.from_bytes(rec[p : p + 2], "big")
            der = bytes(rec[p + 2 : p + 2 + n])
            p += 2 + n
            try:
                self._entries.append(self._check(der, stored=True))
            except CertError as e:  # expired since, CA changed...: dropped, said once
                if log is not None:
                    log("stored certificate dropped: %s" % e)
        for e in self._entries:
            self._apply(e)
        # the meter's key agreement key per suite, for general-ciphering with
        # an agreed key (dlms_micro.security.gcipher): the key file's, else
        # the stored one (generate_key_pair type 1)
        for suite, sg in self._signings().items():
            if sg.agreement_pair is not None:
                self.agreement[suite] = sg.agreement_pair
            else:
                sg.agreement_pair = self._own_key(suite, AGREEMENT)

    # ------------------------------------------------------------ keys

    def _signings(self):
        s = self.meter.signing
        if s is None:
            return {}
        return s if isinstance(s, dict) else {s.suite: s}

    def _own_key(self, suite, ktype, make=False):
        if ktype == SIGNING:
            sg = self._signings().get(suite)
            return sg.key_pair if sg is not None else None
        kp = self.agreement.get(suite)
        if kp is None:
            d = self.storage.get(STORE_AGREEMENT % suite) if self.storage is not None else None
            if d is None and not make:
                return None
            curve = ecc.for_suite(suite)
            kp = ecc.KeyPair(curve, d if d is not None else ecc.new_private_key(curve, self.random_bytes))
            if d is None and self.storage is not None:
                self.storage.put(STORE_AGREEMENT % suite, kp.export_private("key store"))
            self.agreement[suite] = kp
            sg = self._signings().get(suite)
            if sg is not None:
                sg.agreement_pair = kp
        return kp

    def generate_key_pair(self, ktype, suite):
        # a new key pair of type ktype on the curve of `suite` (the calling
        # association's)
        if ktype not in (SIGNING, AGREEMENT):
            raise CertError("key pair type %d: only digital signature (0) and key agreement (1)" % ktype)
        sg = self._signings().get(suite)
        if sg is None:
            raise CertError("no signing material for security suite %d" % suite)
        curve = ecc.for_suite(suite)
        kp = ecc.KeyPair(curve, ecc.new_private_key(curve, self.random_bytes))
        if self.storage is not None:
            self.storage.put((STORE_AGREEMENT if ktype == AGREEMENT else "sec.sign%d") % suite,
                             kp.export_private("key store"))
        if ktype == SIGNING:
            sg.key_pair.wipe()
            sg.key_pair = kp
        else:
            self.agreement[suite] = kp
            sg.agreement_pair = kp
        # the meter's certificates of the old key certify nothing now
        self._entries = [e for e in self._entries
                         if not (e.entity == SERVER and e.type == ktype and e.curve is curve)]
        self._save()

    def certificate_request(self, ktype, suite):
        # PKCS #10 for the meter's key of type ktype on the curve of `suite`
        if ktype not in (SIGNING, AGREEMENT):
            raise CertError("key pair type %d: only digital signature (0) and key agreement (1)" % ktype)
        if suite not in self._signings():
            raise CertError("no signing material for security suite %d" % suite)
        kp = self._own_key(suite, ktype, make=True)
        if kp is None:
            raise CertError("no key pair of type %d" % ktype)
        key = ec.derive_private_key(int.from_bytes(kp.export_private("key store"), "big"),
                                    ec.SECP256R1() if suite == 1 else ec.SECP384R1())
        title = self.meter.keys.system_title
        csr = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, title.hex().upper())]))
               .sign(key, hashes.SHA256() if suite == 1 else hashes.SHA384()))
        return csr.public_bytes(serialization.Encoding.DER)

    # ------------------------------------------------------------ import

    def _check(self, der, stored=False):
        try:
            cert = x509.load_der_x509_certificate(bytes(der))
        except ValueError:
            raise CertError("not an X.509 certificate (DER)") from None
        if self.ca is None:
            raise CertError("no trusted CA configured (key file ca_certificate)")
        if _is_ca(cert):
            raise CertError("a CA certificate: the trusted CA comes from the key file")
        if cert.issuer != self.ca.subject:
            raise CertError("issuer %s is not the trusted CA" % cert.issuer.rfc4514_string())
        try:
            ca_key = self.ca.public_key()
            ca_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        except (InvalidSignature, TypeError, ValueError):
            raise CertError("signature is not the trusted CA's") from None
        now = datetime.datetime.fromtimestamp(self.clock(), datetime.timezone.utc)
        if now < cert.not_valid_before_utc:
            raise CertError("not valid before %s" % cert.not_valid_before_utc.isoformat())
        if now > cert.not_valid_after_utc:
            raise CertError("expired on %s" % cert.not_valid_after_utc.isoformat())
        pub = cert.public_key()
        curve = _curve_of(pub)
        if curve is None:
            raise CertError("public key is not an EC key on P-256 or P-384")
        title = _title_of(cert)
        if title is None:
            raise CertError("subject common name is not a system title in hex")
        ktype = _type_of(cert)
        if ktype is None:
            raise CertError("key usage is neither digitalSignature nor keyAgreement")
        if curve.suite not in self._signings():
            raise CertError("%s key: the meter has no security suite %d association" % (curve.name, curve.suite))
        entity = SERVER if title == self.meter.keys.system_title else CLIENT
        if entity == SERVER:
            own = self._own_key(curve.suite, ktype)
            if own is None or own.public != encode_public(pub, curve.size):
                raise CertError("certifies another key than the meter's")
        return _Entry(cert, bytes(der), entity, ktype, title, curve)

    def _apply(self, e):
        if e.entity == CLIENT and e.type == SIGNING:
            self._signings()[e.curve.suite].add_client_key(e.title, encode_public(e.cert.public_key(), e.curve.size))
        elif e.entity == CLIENT and e.type == AGREEMENT:
            # a client's key agreement key (general-ciphering, agreed keys)
            self._signings()[e.curve.suite].add_client_agreement_key(
                e.title, encode_public(e.cert.public_key(), e.curve.size))

    def import_certificate(self, der):
        e = self._check(der)
        self._entries = [x for x in self._entries
                         if not (x.entity == e.entity and x.type == e.type and x.title == e.title
                                 and x.curve is e.curve)]
        self._entries.append(e)
        self._apply(e)
        self._save()

    def _save(self):
        if self.storage is None:
            return
        rec = b"".join(len(e.der).to_bytes(2, "big") + e.der for e in self._entries)
        self.storage.put(STORE_CERTS, rec)

    # ------------------------------------------------------------ the rest

    def infos(self):
        return [(e.entity, e.type, e.serial(), e.cert.issuer.public_bytes(), e.cert.subject.public_bytes(), e.san())
                for e in self._entries]

    def _by_entity(self, entity, ktype, title):
        return [e for e in self._entries if e.entity == entity and e.type == ktype and e.title == bytes(title)]

    def _by_serial(self, serial, issuer):
        n = int.from_bytes(bytes(serial), "big")
        return [e for e in self._entries if e.cert.serial_number == n and e.cert.issuer.public_bytes() == bytes(issuer)]

    def export_by_entity(self, entity, ktype, title):
        found = self._by_entity(entity, ktype, title)
        return found[0].der if found else None

    def export_by_serial(self, serial, issuer):
        found = self._by_serial(serial, issuer)
        return found[0].der if found else None

    def _remove(self, found):
        for e in found:
            self._entries.remove(e)
            if e.entity == CLIENT and e.type == SIGNING:
                self._signings()[e.curve.suite].client_keys.pop(e.title, None)
        if found:
            self._save()
        return bool(found)

    def remove_by_entity(self, entity, ktype, title):
        return self._remove(self._by_entity(entity, ktype, title))

    def remove_by_serial(self, serial, issuer):
        return self._remove(self._by_serial(serial, issuer))

    def __repr__(self):
        return "<CertStore %d certificates>" % len(self._entries)


def make_cert_store(meter, storage, keys, clock, random_bytes, log=None):
    """meter.cert_store: None when the meter has no suite 1/2 signing
    material; else a CertStore trusting the key file's ca_certificate (none:
    every import is refused, saying so)."""
    if not meter.signing:
        return None
    ca = (keys or {}).get("ca_certificate")
    return CertStore(meter, storage, load_ca(ca) if ca is not None else None, clock, random_bytes, log)
