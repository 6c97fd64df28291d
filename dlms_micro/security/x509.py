# X.509 certificates (RFC 5280) in DER for security suites 1 and 2 (Green
# Book 9.2.6, "Public key certificates and infrastructure"): the reader a
# board's Security setup needs to import a certificate without a TLS
# library, and the PKCS #10 request (RFC 2986) of generate_certificate_request.
#
#   cert = x509.parse(der)             raises X509Error (malformed DER: why, where)
#   x509.check(cert, ca, now)          raises X509Error (untrusted, expired,
#                                      wrong curve, point not on the curve,
#                                      signature not the CA's)
#   req = x509.certificate_request(key_pair, subject_cn)   PKCS #10 DER
#
# What parse() keeps of a certificate (the rest is only walked over):
#   der            the certificate (bytes; the only copy of the input)
#   serial         the serialNumber INTEGER's content octets
#   issuer, subject  the Names' DER (what Security setup's certificates
#                  attribute and certificate_identification carry)
#   subject_cn     the subject's commonName value (bytes) or None
#   not_before, not_after  UTC seconds since 1970-01-01
#   curve          ecc.P256 / ecc.P384 for an id-ecPublicKey on those curves,
#                  else None (another algorithm or curve: check() refuses)
#   public         x || y of an uncompressed point, None otherwise
#   key_usage      the KeyUsage extension's first octet (KU_*), -1 if absent
#   ca, path_len   basicConstraints (False / -1 if absent)
#   san            the subjectAltName extension's value (DER) or b""
#   sig_hash       "sha256" / "sha384" (ecdsa-with-SHA256/384), None for
#                  any other signatureAlgorithm
#   sig_r, sig_s   the signature's integers (content octets, no leading 0)
# The TBSCertificate is hashed in place (a memoryview of der), never copied.
#
# Strict DER: definite lengths in the fewest octets, single-octet tags,
# every element inside its parent, nothing after the certificate, INTEGERs
# in the fewest octets, a v3 certificate's extensions each once, and an
# unknown critical extension refused (RFC 5280 4.2). Every refusal is an
# X509Error whose message says what and where; it never holds key material
# (a certificate holds none that is secret).
#
# MicroPython: no allocation per input byte (TLVs are read as offsets), the
# copies are the few small fields above; the signature check is the
# expensive part (one ECDSA verification: ecc.py's cost).

from dlms_micro.errors import DlmsError
from dlms_micro.security import ecc, sha2


class X509Error(DlmsError):
    pass


# KeyUsage bits (RFC 5280 4.2.1.3), as they lie in the first content octet
KU_DIGITAL_SIGNATURE = 0x80
KU_KEY_AGREEMENT = 0x08
KU_KEY_CERT_SIGN = 0x04

# DER tags
_INTEGER = 0x02
_BIT_STRING = 0x03
_OCTET_STRING = 0x04
_NULL = 0x05
_OID = 0x06
_UTF8 = 0x0C
_PRINTABLE = 0x13
_IA5 = 0x16
_UTC_TIME = 0x17
_GEN_TIME = 0x18
_SEQUENCE = 0x30
_SET = 0x31
_BOOLEAN = 0x01

# object identifiers (content octets)
OID_EC_PUBLIC_KEY = b"\x2a\x86\x48\xce\x3d\x02\x01"  # 1.2.840.10045.2.1
OID_P256 = b"\x2a\x86\x48\xce\x3d\x03\x01\x07"  # 1.2.840.10045.3.1.7 prime256v1
OID_P384 = b"\x2b\x81\x04\x00\x22"  # 1.3.132.0.34 secp384r1
OID_ECDSA_SHA256 = b"\x2a\x86\x48\xce\x3d\x04\x03\x02"  # 1.2.840.10045.4.3.2
OID_ECDSA_SHA384 = b"\x2a\x86\x48\xce\x3d\x04\x03\x03"  # 1.2.840.10045.4.3.3
OID_CN = b"\x55\x04\x03"  # 2.5.4.3 commonName
_OID_KEY_USAGE = b"\x55\x1d\x0f"  # 2.5.29.15
_OID_SAN = b"\x55\x1d\x11"  # 2.5.29.17
_OID_BASIC = b"\x55\x1d\x13"  # 2.5.29.19
# non-critical extensions that may be ignored are; these critical ones are
# understood (anything else critical is refused)
_KNOWN = (_OID_KEY_USAGE, _OID_SAN, _OID_BASIC)


def _tlv(b, p, end):
    # The DER element at b[p] inside b[:end] -> (tag, content start, content
    # end). X509Error if it does not fit or is not DER.
    if p + 2 > end:
        raise X509Error("truncated DER at byte %d" % p)
    tag = b[p]
    if tag & 0x1F == 0x1F:
        raise X509Error("multi-byte tag at byte %d" % p)
    n = b[p + 1]
    q = p + 2
    if n & 0x80:
        k = n & 0x7F
        if k == 0:
            raise X509Error("indefinite length at byte %d (not DER)" % p)
        if k > 3:
            raise X509Error("length of %d octets at byte %d" % (k, p))
        if q + k > end:
            raise X509Error("truncated DER at byte %d" % p)
        n = 0
        for i in range(k):
            n = (n << 8) | b[q + i]
        if n < 0x80 or b[q] == 0:
            raise X509Error("length not in the fewest octets at byte %d (not DER)" % p)
        q += k
    if n > end - q:
        raise X509Error("truncated DER at byte %d: %d content bytes, %d left" % (p, n, end - q))
    return tag, q, q + n


def _want(b, p, end, tag, what):
    # the element at b[p] must have tag `tag` -> (content start, end)
    t, s, e = _tlv(b, p, end)
    if t != tag:
        raise X509Error("%s: tag %02X at byte %d, %02X expected" % (what, t, p, tag))
    return s, e


def _integer(b, s, e, what):
    # an INTEGER's content octets, checked minimal
    if s == e:
        raise X509Error("%s: empty INTEGER" % what)
    if e - s > 1 and ((b[s] == 0 and b[s + 1] < 0x80) or (b[s] == 0xFF and b[s + 1] >= 0x80)):
        raise X509Error("%s: INTEGER not in the fewest octets" % what)


def _digits(b, p, n):
    v = 0
    for i in range(p, p + n):
        c = b[i] - 48
        if c < 0 or c > 9:
            raise X509Error("time: a non-digit at byte %d" % i)
        v = v * 10 + c
    return v


def _time(b, p, end, what):
    # UTCTime YYMMDDHHMMSSZ or GeneralizedTime YYYYMMDDHHMMSSZ -> (UTC
    # seconds since 1970, next position)
    from dlms_micro.cosem import clock

    t, s, e = _tlv(b, p, end)
    if t == _UTC_TIME and e - s == 13:
        y = _digits(b, s, 2)
        y += 1900 if y >= 50 else 2000  # RFC 5280 4.1.2.5.1
        s += 2
    elif t == _GEN_TIME and e - s == 15:
        y = _digits(b, s, 4)
        s += 4
    else:
        raise X509Error("%s: not a UTCTime or GeneralizedTime in seconds with Z at byte %d" % (what, p))
    if b[e - 1] != 0x5A:  # "Z"
        raise X509Error("%s: not in UTC (no Z)" % what)
    mo = _digits(b, s, 2)
    d = _digits(b, s + 2, 2)
    h = _digits(b, s + 4, 2)
    mi = _digits(b, s + 6, 2)
    sec = _digits(b, s + 8, 2)
    if mo < 1 or mo > 12 or d < 1 or d > clock.days_in_month(y, mo) or h > 23 or mi > 59 or sec > 59:
        raise X509Error("%s: no such date or time" % what)
    return ((clock.days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec, e


def time_text(t):
    # UTC seconds -> "YYYY-MM-DD hh:mm:ss" (for refusals)
    from dlms_micro.cosem import clock

    z = t // 86400
    r = t - z * 86400
    ymd = clock.civil_from_days(z)
    return "%04d-%02d-%02d %02d:%02d:%02d UTC" % (ymd // 10000, ymd // 100 % 100, ymd % 100, r // 3600,
                                                  r // 60 % 60, r % 60)


def _sig_alg(b, p, end, what):
    # AlgorithmIdentifier -> (hash name or None, next position); ECDSA's
    # has no parameters (RFC 5758 3.2)
    s, e = _want(b, p, end, _SEQUENCE, what)
    os_, oe = _want(b, s, e, _OID, what)
    oid = b[os_:oe]
    if oid == OID_ECDSA_SHA256:
        h = "sha256"
    elif oid == OID_ECDSA_SHA384:
        h = "sha384"
    else:
        return None, e  # another algorithm: check() refuses it
    if oe != e:
        raise X509Error("%s: parameters after ecdsa-with-SHA" % what)
    return h, e


def _common_name(b, s, e):
    # the commonName of a Name (content s..e) or None (none, or several)
    cn = None
    p = s
    while p < e:
        rs, re_ = _want(b, p, e, _SET, "Name")
        q = rs
        while q < re_:
            as_, ae = _want(b, q, re_, _SEQUENCE, "Name attribute")
            os_, oe = _want(b, as_, ae, _OID, "Name attribute type")
            t, vs, ve = _tlv(b, oe, ae)
            if ve != ae:
                raise X509Error("Name attribute: bytes after the value")
            if b[os_:oe] == OID_CN:
                if cn is not None or t not in (_UTF8, _PRINTABLE, _IA5):
                    return None
                cn = b[vs:ve]
            q = ae
        p = re_
    return cn


class Certificate:
    def __repr__(self):
        return "<Certificate serial %s %s>" % (self.serial.hex(), self.curve.name if self.curve else "?")

    def title(self):
        # the subject's system title: a commonName of 16 hex digits (the
        # Green Book names DLMS devices so), else None
        cn = self.subject_cn
        if cn is None or len(cn) != 16:
            return None
        try:
            return bytes.fromhex(cn.decode())
        except (ValueError, UnicodeError):
            return None

    def tbs(self):
        # the signed part, without a copy
        return memoryview(self.der)[self.tbs_start : self.tbs_end]


def parse(der):
    # A certificate's fields (see the module comment); X509Error if der is no
    # DER X.509 certificate.
    c = Certificate()
    b = c.der = bytes(der)
    end = len(b)
    s, e = _want(b, 0, end, _SEQUENCE, "Certificate")
    if e != end:
        raise X509Error("%d bytes after the certificate" % (end - e))
    ts, te = _want(b, s, e, _SEQUENCE, "TBSCertificate")
    c.tbs_start = s
    c.tbs_end = te
    # version [0] EXPLICIT INTEGER DEFAULT v1
    p = ts
    c.version = 1
    t, vs, ve = _tlv(b, p, te)
    if t == 0xA0:
        is_, ie = _want(b, vs, ve, _INTEGER, "version")
        if ie != ve or ie - is_ != 1 or b[is_] > 2:
            raise X509Error("version: not v1, v2 or v3")
        c.version = b[is_] + 1
        p = ve
    ss, se = _want(b, p, te, _INTEGER, "serialNumber")
    _integer(b, ss, se, "serialNumber")
    c.serial = b[ss:se]
    inner, p = _sig_alg(b, se, te, "TBSCertificate signature")
    alg_start = se
    inner_alg = b[alg_start:p]
    _want(b, p, te, _SEQUENCE, "issuer")
    t, ns, ne = _tlv(b, p, te)
    c.issuer = b[p:ne]
    _common_name(b, ns, ne)  # walked: a malformed Name is refused
    vs, ve = _want(b, ne, te, _SEQUENCE, "validity")
    c.not_before, q = _time(b, vs, ve, "notBefore")
    c.not_after, q = _time(b, q, ve, "notAfter")
    if q != ve:
        raise X509Error("validity: bytes after notAfter")
    t, ns, se2 = _tlv(b, ve, te)
    if t != _SEQUENCE:
        raise X509Error("subject: tag %02X, SEQUENCE expected" % t)
    c.subject = b[ve:se2]
    c.subject_cn = _common_name(b, ns, se2)
    p = _key_info(c, b, se2, te)
    # issuerUniqueID [1], subjectUniqueID [2], extensions [3]
    c.key_usage = -1
    c.ca = False
    c.path_len = -1
    c.san = b""
    last = 0
    while p < te:
        t, xs, xe = _tlv(b, p, te)
        if t == 0x81 or t == 0x82 or t == 0xA1 or t == 0xA2:
            if c.version < 2 or t & 0x1F <= last:
                raise X509Error("unique identifier [%d] out of place" % (t & 0x1F))
        elif t == 0xA3:
            if c.version < 3 or last >= 3:
                raise X509Error("extensions in a v%d certificate or twice" % c.version)
            _extensions(c, b, xs, xe)
        else:
            raise X509Error("TBSCertificate: unexpected tag %02X at byte %d" % (t, p))
        last = t & 0x1F
        p = xe
    # signatureAlgorithm (the same as the TBSCertificate's) and signatureValue
    c.sig_hash, p = _sig_alg(b, te, e, "signatureAlgorithm")
    if b[te:p] != inner_alg:
        raise X509Error("signatureAlgorithm differs from the TBSCertificate's signature")
    bs, be = _want(b, p, e, _BIT_STRING, "signatureValue")
    if be != e:
        raise X509Error("bytes after signatureValue")
    if bs == be or b[bs] != 0:
        raise X509Error("signatureValue: unused bits")
    c.sig_r = c.sig_s = b""
    if c.sig_hash is not None:
        qs, qe = _want(b, bs + 1, be, _SEQUENCE, "ECDSA signature")
        if qe != be:
            raise X509Error("ECDSA signature: bytes after the SEQUENCE")
        rs, re_ = _want(b, qs, qe, _INTEGER, "ECDSA signature r")
        ss, se = _want(b, re_, qe, _INTEGER, "ECDSA signature s")
        if se != qe:
            raise X509Error("ECDSA signature: bytes after s")
        c.sig_r = _positive(b, rs, re_, "ECDSA signature r")
        c.sig_s = _positive(b, ss, se, "ECDSA signature s")
    if inner is None:
        c.sig_hash = None
    return c


def _positive(b, s, e, what):
    _integer(b, s, e, what)
    if b[s] >= 0x80:
        raise X509Error("%s: negative" % what)
    if b[s] == 0:
        s += 1
    return b[s:e]


def _key_info(c, b, p, end):
    # subjectPublicKeyInfo -> c.curve, c.public; the next position
    s, e = _want(b, p, end, _SEQUENCE, "subjectPublicKeyInfo")
    as_, ae = _want(b, s, e, _SEQUENCE, "subjectPublicKeyInfo algorithm")
    os_, oe = _want(b, as_, ae, _OID, "subjectPublicKeyInfo algorithm")
    c.curve = None
    c.public = None
    if b[os_:oe] == OID_EC_PUBLIC_KEY:
        t, cs, ce = _tlv(b, oe, ae)
        if t == _OID and ce == ae:
            oid = b[cs:ce]
            if oid == OID_P256:
                c.curve = ecc.P256
            elif oid == OID_P384:
                c.curve = ecc.P384
    bs, be = _want(b, ae, e, _BIT_STRING, "subjectPublicKey")
    if be != e:
        raise X509Error("subjectPublicKeyInfo: bytes after the key")
    if bs == be or b[bs] != 0:
        raise X509Error("subjectPublicKey: unused bits")
    cv = c.curve
    if cv is not None and be - bs == 2 + 2 * cv.size and b[bs + 1] == 4:
        c.public = b[bs + 2 : be]  # uncompressed point 04 || x || y
    return e


def _extensions(c, b, s, e):
    ls, le = _want(b, s, e, _SEQUENCE, "Extensions")
    if le != e:
        raise X509Error("extensions: bytes after the SEQUENCE")
    if ls == le:
        raise X509Error("extensions: empty (RFC 5280: SIZE (1..MAX))")
    seen = []
    p = ls
    while p < le:
        xs, xe = _want(b, p, le, _SEQUENCE, "Extension")
        os_, oe = _want(b, xs, xe, _OID, "extnID")
        oid = b[os_:oe]
        if oid in seen:
            raise X509Error("extension %s twice" % oid.hex())
        seen.append(oid)
        critical = False
        t, vs, ve = _tlv(b, oe, xe)
        if t == _BOOLEAN:
            if ve - vs != 1 or b[vs] != 0xFF:
                raise X509Error("extension critical flag: not DER TRUE")
            critical = True
            t, vs, ve = _tlv(b, ve, xe)
        if t != _OCTET_STRING or ve != xe:
            raise X509Error("extnValue: not an OCTET STRING ending the Extension")
        if oid == _OID_KEY_USAGE:
            ks, ke = _want(b, vs, ve, _BIT_STRING, "keyUsage")
            if ke != ve or ke - ks < 2 or ke - ks > 3 or b[ks] > 7:
                raise X509Error("keyUsage: not a BIT STRING of 1..9 bits")
            c.key_usage = b[ks + 1]
        elif oid == _OID_BASIC:
            bs, be = _want(b, vs, ve, _SEQUENCE, "basicConstraints")
            if be != ve:
                raise X509Error("basicConstraints: bytes after the SEQUENCE")
            q = bs
            if q < be and b[q] == _BOOLEAN:
                fs, fe = _want(b, q, be, _BOOLEAN, "basicConstraints cA")
                if fe - fs != 1 or b[fs] != 0xFF:
                    raise X509Error("basicConstraints cA: not DER TRUE")
                c.ca = True
                q = fe
            if q < be:
                is_, ie = _want(b, q, be, _INTEGER, "basicConstraints pathLenConstraint")
                _integer(b, is_, ie, "pathLenConstraint")
                if ie != be or ie - is_ > 2 or b[is_] >= 0x80:
                    raise X509Error("basicConstraints pathLenConstraint: not a small positive INTEGER")
                c.path_len = int.from_bytes(b[is_:ie], "big")
        elif oid == _OID_SAN:
            _want(b, vs, ve, _SEQUENCE, "subjectAltName")
            c.san = b[vs:ve]
        elif critical:
            raise X509Error("unknown critical extension %s" % oid.hex())
        p = xe


def _fixed(v, n):
    # an integer's content octets (no leading 0) -> n bytes, None if longer
    if len(v) > n:
        return None
    return bytes(n - len(v)) + v


def check(cert, ca, now):
    # Refuse (X509Error, saying why) a certificate the meter must not accept:
    # not issued by the trusted CA `ca` (a parsed Certificate), not valid at
    # `now` (UTC seconds; the CA must be too), no P-256/P-384 public key on
    # its curve, or a signature that is not the CA's. The cheap checks come
    # first; the ECDSA verification last.
    if ca is None:
        raise X509Error("no trusted CA")
    if cert.issuer != ca.subject:
        raise X509Error("untrusted CA: the issuer is not the trusted CA's subject")
    if ca.curve is None or ca.public is None:
        raise X509Error("the trusted CA's key is no P-256 or P-384 key")
    if cert.sig_hash is None:
        raise X509Error("signatureAlgorithm is not ecdsa-with-SHA256 or ecdsa-with-SHA384")
    if now is None:
        raise X509Error("no meter clock to check the validity against")
    for x, who in ((cert, "certificate"), (ca, "trusted CA")):
        if now < x.not_before:
            raise X509Error("%s not valid before %s" % (who, time_text(x.not_before)))
        if now > x.not_after:
            raise X509Error("%s expired on %s" % (who, time_text(x.not_after)))
    if cert.curve is None:
        raise X509Error("wrong curve: the public key is no id-ecPublicKey on P-256 or P-384")
    if cert.public is None:
        raise X509Error("%s public key is not an uncompressed point" % cert.curve.name)
    try:
        ecc.check_public_key(cert.curve, cert.public)
    except ecc.EccError:
        raise X509Error("%s public key: point not on the curve" % cert.curve.name)
    n = ca.curve.size
    r = _fixed(cert.sig_r, n)
    s = _fixed(cert.sig_s, n)
    digest = sha2.digest(cert.sig_hash, cert.tbs())
    if r is None or s is None or not ecc.verify(ca.curve, ca.public, digest, r + s):
        raise X509Error("the signature is not the trusted CA's")


def load_ca(der, now=None):
    # The trusted CA's certificate (DER), checked to be usable as one: an EC
    # key on P-256/P-384 on its curve, basicConstraints cA, keyCertSign if it
    # says its key usage. Raises X509Error.
    ca = parse(der)
    if ca.curve is None or ca.public is None:
        raise X509Error("trusted CA: no P-256 or P-384 public key")
    try:
        ecc.check_public_key(ca.curve, ca.public)
    except ecc.EccError:
        raise X509Error("trusted CA: public key not on the curve")
    if not ca.ca or (ca.key_usage >= 0 and not ca.key_usage & KU_KEY_CERT_SIGN):
        raise X509Error("trusted CA: not a CA certificate (basicConstraints cA, keyCertSign)")
    return ca


# ------------------------------------------------------------ DER out


def _len(n):
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    return bytes((0x82, n >> 8, n & 0xFF))


def der(tag, *parts):
    # a DER element of the concatenated parts
    body = b"".join(parts)
    return bytes((tag,)) + _len(len(body)) + body


def _der_uint(v):
    # an unsigned big-endian integer's octets as a DER INTEGER
    i = 0
    while i < len(v) - 1 and v[i] == 0:
        i += 1
    v = v[i:]
    if v[0] >= 0x80:
        v = b"\x00" + v
    return der(_INTEGER, v)


def name_cn(text):
    # a Name of one commonName (UTF8String)
    return der(_SEQUENCE, der(_SET, der(_SEQUENCE, der(_OID, OID_CN), der(_UTF8, text))))


def key_info(curve, public):
    # subjectPublicKeyInfo of an EC public key x || y
    oid = OID_P256 if curve is ecc.P256 else OID_P384
    return der(_SEQUENCE, der(_SEQUENCE, der(_OID, OID_EC_PUBLIC_KEY), der(_OID, oid)),
               der(_BIT_STRING, b"\x00\x04", public))


def ecdsa_sig(curve, sig):
    # r || s -> the DER Ecdsa-Sig-Value
    n = curve.size
    return der(_SEQUENCE, _der_uint(sig[0:n]), _der_uint(sig[n : 2 * n]))


def certificate_request(key_pair, subject_cn):
    # PKCS #10 CertificationRequest (RFC 2986) for key_pair's public key,
    # subject CN = subject_cn (bytes: the system title in hex), no
    # attributes, signed with key_pair (ecdsa-with-SHA256 on P-256, -SHA384
    # on P-384).
    c = key_pair.curve
    info = der(_SEQUENCE, der(_INTEGER, b"\x00"), name_cn(subject_cn), key_info(c, key_pair.public), b"\xa0\x00")
    alg = der(_SEQUENCE, der(_OID, OID_ECDSA_SHA256 if c is ecc.P256 else OID_ECDSA_SHA384))
    sig = key_pair.sign(sha2.digest(c.hash_name, info))
    return der(_SEQUENCE, info, alg, der(_BIT_STRING, b"\x00", ecdsa_sig(c, sig)))
