# ACSE for the meter side (IEC 62056-5-3 / Green Book "COSEM application
# layer": AARQ/AARE, RLRQ/RLRE in BER) and the xDLMS Initiate PDUs carried in
# their user-information (A-XDR).
#
#   aarq = Aarq()                          once per channel
#   aarq.parse(buf, start, end)            fields: ints and (off, len) pairs
#   decide(outcome, aarq, ...)             what the standard requires
#   aare.from_outcome(outcome, ...); aare.encode(buf, off, end) -> new off
#
# Parsing is in place: nothing is copied out of the request; strings are
# offsets (-1: absent) and lengths into the parsed buffer. BER lengths take
# the short form or 0x81/0x82; a length that runs past its container, an
# indefinite length or a longer form is malformed. Only DecodeError escapes
# a parser, only EncodeError an encoder. Per request nothing is allocated
# except an exception on malformed input.

from dlms_micro.errors import DecodeError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# APDU tags
AARQ = const(0x60)
AARE = const(0x61)
RLRQ = const(0x62)
RLRE = const(0x63)
INITIATE_REQUEST = const(0x01)
INITIATE_RESPONSE = const(0x08)
CONFIRMED_SERVICE_ERROR = const(0x0E)
GLO_INITIATE_REQUEST = const(0x21)
GLO_INITIATE_RESPONSE = const(0x28)
DED_INITIATE_REQUEST = const(0x41)
DED_INITIATE_RESPONSE = const(0x48)
GENERAL_GLO_CIPHERING = const(0xDB)
GENERAL_DED_CIPHERING = const(0xDC)
GENERAL_CIPHERING = const(0xDD)
GENERAL_SIGNING = const(0xDF)

# application-context-name 2.16.756.5.8.1.x (values of Aarq.context)
CONTEXT_LN = const(1)
CONTEXT_SN = const(2)
CONTEXT_LN_CIPHERED = const(3)
CONTEXT_SN_CIPHERED = const(4)
UNRECOGNISED = const(-2)  # context or mechanism: an OID outside the DLMS arcs

# mechanism-name 2.16.756.5.8.2.x
MECH_NONE = const(0)
MECH_LLS = const(1)
MECH_HLS = const(2)  # manufacturer specific
MECH_HLS_MD5 = const(3)
MECH_HLS_SHA1 = const(4)
MECH_HLS_GMAC = const(5)
MECH_HLS_SHA256 = const(6)
MECH_HLS_ECDSA = const(7)

# AARE result and result-source-diagnostic
ACCEPTED = const(0)
REJECTED_PERMANENT = const(1)
REJECTED_TRANSIENT = const(2)
SOURCE_USER = const(1)  # acse-service-user [1]
SOURCE_PROVIDER = const(2)  # acse-service-provider [2]
DIAG_NULL = const(0)
DIAG_NO_REASON = const(1)
DIAG_CONTEXT_NOT_SUPPORTED = const(2)  # user; from the provider: no-common-acse-version
DIAG_MECHANISM_NOT_RECOGNISED = const(11)
DIAG_MECHANISM_REQUIRED = const(12)
DIAG_AUTHENTICATION_FAILURE = const(13)
DIAG_AUTHENTICATION_REQUIRED = const(14)
DIAG_NO_COMMON_ACSE_VERSION = const(2)

# ServiceError initiate [6] codes of a confirmed-service-error (0E 01 06 xx)
INIT_OTHER = const(0)
INIT_DLMS_VERSION_TOO_LOW = const(1)
INIT_INCOMPATIBLE_CONFORMANCE = const(2)
INIT_PDU_SIZE_TOO_SHORT = const(3)
INIT_REFUSED_BY_VDE = const(4)

# what an AARE/RLRE user-information holds (InitiateResponseOut.kind)
UI_NONE = const(0)
UI_INITIATE_RESPONSE = const(1)
UI_ERROR = const(2)  # confirmed-service-error

def diagnostic_name(d):
    # acse-service-user diagnostic by name, for log lines (error paths only)
    return _DIAG_NAMES.get(d, "diagnostic %d" % d)


def initiate_error_name(e):
    # xDLMS initiate error (ConfirmedServiceError initiate) by name; -1: none
    if e < 0:
        return "no initiate error"
    return _INIT_NAMES[e] if e < len(_INIT_NAMES) else "initiate error %d" % e


_DIAG_NAMES = {
    0: "null", 1: "no-reason-given", 2: "application-context-name-not-supported",
    11: "authentication-mechanism-name-not-recognised", 12: "authentication-mechanism-name-required",
    13: "authentication-failure", 14: "authentication-required",
}
_INIT_NAMES = ("other", "dlms-version-too-low", "incompatible-conformance", "pdu-size-too-short",
               "refused-by-the-VDE-handler")
UI_CIPHERED = const(3)  # bytes the security layer built

# RLRQ reasons; RLRE reasons (ISO 8650: the response's 1 is not-finished)
RELEASE_NORMAL = const(0)
RELEASE_URGENT = const(1)
RELEASE_NOT_FINISHED = const(1)
RELEASE_USER_DEFINED = const(30)

DLMS_VERSION = const(6)
VAA_NAME_LN = const(0x0007)
VAA_NAME_SN = const(0xFA00)
# client-max-receive-pdu-size: 0 means no limit; 1..11 are reserved (Green
# Book), so anything under 12 that is not 0 is refused as too short.
MIN_PDU = const(12)
NO_LIMIT_PDU = const(0xFFFF)

# HLS challenge length bounds (Green Book: 8 to 64 octets)
MIN_CHALLENGE = const(8)
MAX_CHALLENGE = const(64)

# 2.16.756.5.8 (DLMS UA) arcs as BER OID contents, minus the last arc
_OID_CONTEXT = b"\x60\x85\x74\x05\x08\x01"
_OID_MECHANISM = b"\x60\x85\x74\x05\x08\x02"
# AARE templates, each followed by one value byte
_T_CONTEXT = b"\xa1\x09\x06\x07\x60\x85\x74\x05\x08\x01"
_T_RESULT = b"\xa2\x03\x02\x01"
_T_DIAGNOSTIC = b"\x03\x02\x01"  # after A3 05 A1|A2
_T_MECHANISM = b"\x88\x02\x07\x80\x89\x07\x60\x85\x74\x05\x08\x02"
_T_CONFORMANCE = b"\x5f\x1f\x04\x00"


_pos = [0]  # scratch: where the contents start after _ber_len / _element


def _ber_len(buf, p, end, what):
    # Read a BER length at buf[p]; return it and leave its first content byte
    # in _pos[0]. The length must fit in the container ending at end.
    if p >= end:
        raise DecodeError("%s: length missing at offset %d" % (what, p))
    n = buf[p]
    p += 1
    if n > 0x7F:
        if n == 0x81:
            if p >= end:
                raise DecodeError("%s: length truncated at offset %d" % (what, p))
            n = buf[p]
            p += 1
        elif n == 0x82:
            if p + 1 >= end:
                raise DecodeError("%s: length truncated at offset %d" % (what, p))
            n = (buf[p] << 8) | buf[p + 1]
            p += 2
        else:
            raise DecodeError("%s: length form 0x%02x at offset %d not supported" % (what, n, p - 1))
    if n > end - p:
        raise DecodeError("%s: length %d at offset %d runs past its container (%d left)" % (what, n, p, end - p))
    _pos[0] = p
    return n


def _element(buf, p, end, tag, what):
    # The one element that a constructed field holds (A1 06 .., BE 04 ..):
    # check its tag, return its length, contents at _pos[0]; it must fill the
    # container exactly.
    if p >= end or buf[p] != tag:
        raise DecodeError("%s: expected tag 0x%02x at offset %d" % (what, tag, p))
    n = _ber_len(buf, p + 1, end, what)
    if _pos[0] + n != end:
        raise DecodeError("%s: %d stray bytes after its value" % (what, end - _pos[0] - n))
    return n


def _last_arc(buf, p, n, prefix):
    # last arc of a DLMS UA OID (prefix + one arc < 128), else UNRECOGNISED
    k = len(prefix)
    if n != k + 1 or buf[p + k] > 0x7F:
        return UNRECOGNISED
    for i in range(k):
        if buf[p + i] != prefix[i]:
            return UNRECOGNISED
    return buf[p + k]


def _first_bit(buf, p, n, what):
    # bit 0 of a BER bit string's contents (unused-bits octet first)
    if n < 1 or buf[p] > 7:
        raise DecodeError("%s: malformed bit string at offset %d" % (what, p))
    if n == 1:
        return 0
    return 1 if buf[p + 1] & 0x80 else 0


def _skip_tag(buf, p, end, what):
    # offset after a tag, high-tag-number form included (at most 4 bytes)
    if buf[p] & 0x1F != 0x1F:
        return p + 1
    q = p + 1
    while q < end and q - p <= 4:
        if not buf[q] & 0x80:
            return q + 1
        q += 1
    raise DecodeError("%s: bad tag at offset %d" % (what, p))


class InitiateRequest:
    # xDLMS InitiateRequest (A-XDR): 01, dedicated-key OPTIONAL,
    # response-allowed DEFAULT TRUE, proposed-quality-of-service OPTIONAL,
    # proposed-dlms-version-number, proposed-conformance (5F 1F 04 00 xx xx
    # xx), client-max-receive-pdu-size. parse() also serves the security
    # layer once it has deciphered a glo-initiate-request.

    def __init__(self):
        self.clear()

    def clear(self):
        self.valid = 0  # 1 once a plain InitiateRequest has been parsed
        self.dedicated_key = -1  # offset, -1: absent
        self.dedicated_key_len = 0
        self.response_allowed = 1
        self.qos_present = 0
        self.qos = 0  # Integer8
        self.dlms_version = 0
        self.conformance = 0  # 24 bits, bit 0 of the standard = 1 << 23
        self.max_pdu = 0  # as sent: 0 = no limit

    def parse(self, buf, start, end):
        self.clear()
        w = "InitiateRequest"
        if end - start < 1 or buf[start] != INITIATE_REQUEST:
            raise DecodeError("%s: tag 0x01 expected at offset %d" % (w, start))
        p = start + 1
        # dedicated-key, response-allowed, proposed-quality-of-service: a
        # flag 0 (absent / default) or 1 (present) and the value
        for i in range(3):
            if end - p < 2:
                raise DecodeError("%s truncated at offset %d" % (w, p))
            f = buf[p]
            p += 1
            if f > 1:
                raise DecodeError("%s: optional flag %d at offset %d" % (w, f, p - 1))
            if not f:
                continue
            if i == 0:
                n = _ber_len(buf, p, end, w)
                self.dedicated_key = _pos[0]
                self.dedicated_key_len = n
                p = _pos[0] + n
                continue
            v = buf[p]
            p += 1
            if i == 1:
                self.response_allowed = 1 if v else 0
            else:
                self.qos = v - 256 if v > 127 else v
                self.qos_present = 1
        if end - p != 10:
            raise DecodeError("%s: %d bytes at offset %d, 10 needed for version, conformance, PDU size" % (w, end - p, p))
        self.dlms_version = buf[p]
        if buf[p + 1] != 0x5F or buf[p + 2] != 0x1F or buf[p + 3] != 4 or buf[p + 4] > 7:
            raise DecodeError("%s: proposed-conformance 5F 1F 04 00 expected at offset %d" % (w, p + 1))
        c = (buf[p + 5] << 16) | (buf[p + 6] << 8) | buf[p + 7]
        self.conformance = c & ~((1 << buf[p + 4]) - 1)
        self.max_pdu = (buf[p + 8] << 8) | buf[p + 9]
        self.valid = 1
        return end


def _user_info(obj, buf, p, n, w):
    # BE: association-information 04 holding one xDLMS APDU (w names the
    # APDU in messages); a plain
    # InitiateRequest is parsed into obj.initiate, any other APDU is only
    # located (the security layer reads protected ones)
    m = _element(buf, p, p + n, 0x04, "user-information")
    q = _pos[0]
    if m < 1:
        raise DecodeError("%s: empty user-information at offset %d" % (w, q))
    obj.ui_tag = buf[q]
    obj.ui = q
    obj.ui_len = m
    if buf[q] == INITIATE_REQUEST:
        obj.initiate.parse(buf, q, q + m)


class Aarq:
    # A parsed AARQ. Fields (offsets into the parsed buffer, -1: absent):
    #   protocol_version_ok  0 when protocol-version is present without version1
    #   context              last arc of application-context-name or UNRECOGNISED
    #   called_ap_title      A2's contents (len in called_ap_title_len)
    #   calling_ap_title     the client system title (A6 04 ..)
    #   calling_ae_qualifier A7's octet string (client certificate)
    #   acse_authentication  1 when sender-acse-requirements has authentication
    #   mechanism            -1 absent, 0..127 last arc, UNRECOGNISED
    #   auth_value, auth_len, auth_tag  calling-authentication-value: the LLS
    #                        password or the HLS CtoS; tag 0x80 = charstring
    #   ui, ui_len, ui_tag   the xDLMS APDU inside user-information
    #   initiate             InitiateRequest, valid when ui_tag is 0x01 (or
    #                        after the security layer parsed the deciphered one)

    def __init__(self):
        self.initiate = InitiateRequest()
        self.clear()

    def clear(self):
        self.buf = None
        self.start = 0
        self.end = 0
        self.protocol_version_ok = 1
        self.context = -1
        self.called_ap_title = -1
        self.called_ap_title_len = 0
        self.calling_ap_title = -1
        self.calling_ap_title_len = 0
        self.calling_ae_qualifier = -1
        self.calling_ae_qualifier_len = 0
        self.acse_authentication = 0
        self.mechanism = -1
        self.auth_value = -1
        self.auth_len = 0
        self.auth_tag = -1
        self.ui = -1
        self.ui_len = 0
        self.ui_tag = -1
        self.initiate.clear()

    def ciphered(self):
        # user-information holds a protected InitiateRequest
        t = self.ui_tag
        return (
            t == GLO_INITIATE_REQUEST
            or t == DED_INITIATE_REQUEST
            or t == GENERAL_GLO_CIPHERING
            or t == GENERAL_DED_CIPHERING
            or t == GENERAL_CIPHERING
            or t == GENERAL_SIGNING
        )

    def parse(self, buf, start, end):
        self.clear()
        w = "AARQ"
        if end - start < 2 or buf[start] != AARQ:
            raise DecodeError("AARQ: tag 0x60 expected at offset %d" % start)
        n = _ber_len(buf, start + 1, end, w)
        p = _pos[0]
        if p + n != end:
            raise DecodeError("AARQ: %d bytes after its end at offset %d" % (end - p - n, p + n))
        self.buf = buf
        self.start = start
        self.end = end
        while p < end:
            t = buf[p]
            q = _skip_tag(buf, p, end, w)
            n = _ber_len(buf, q, end, w)
            c = _pos[0]
            e = c + n
            if t == 0xA1:  # application-context-name
                m = _element(buf, c, e, 0x06, "AARQ application-context-name")
                self.context = _last_arc(buf, _pos[0], m, _OID_CONTEXT)
            elif t == 0xA6 or t == 0xA7 or t == 0xA2:
                # calling-AP-title, calling-AE-qualifier, called-AP-title
                m = _element(buf, c, e, buf[c] if c < e else 0x04, "AARQ title")
                if t == 0xA6:
                    self.calling_ap_title = _pos[0]
                    self.calling_ap_title_len = m
                elif t == 0xA7:
                    self.calling_ae_qualifier = _pos[0]
                    self.calling_ae_qualifier_len = m
                else:
                    self.called_ap_title = _pos[0]
                    self.called_ap_title_len = m
            elif t == 0x80:  # protocol-version
                self.protocol_version_ok = _first_bit(buf, c, n, "AARQ protocol-version")
            elif t == 0x8A:  # sender-acse-requirements
                self.acse_authentication = _first_bit(buf, c, n, "AARQ sender-acse-requirements")
            elif t == 0x8B:  # mechanism-name
                self.mechanism = _last_arc(buf, c, n, _OID_MECHANISM)
            elif t == 0xAC:  # calling-authentication-value
                if c >= e:
                    raise DecodeError("AARQ: empty calling-authentication-value at offset %d" % c)
                self.auth_tag = buf[c]
                self.auth_len = _element(buf, c, e, buf[c], "AARQ calling-authentication-value")
                self.auth_value = _pos[0]
            elif t == 0xBE:  # user-information
                _user_info(self, buf, c, n, w)
            # anything else (called-AE-*, invocation ids, implementation-
            # information, unknown fields) is skipped by its length
            p = e
        if self.context == -1:
            raise DecodeError("AARQ without application-context-name")
        return end


class Rlrq:
    # A parsed RLRQ: reason (-1 absent) and, as in Aarq, ui/ui_len/ui_tag and
    # initiate (ciphered contexts send an InitiateRequest here).

    def __init__(self):
        self.initiate = InitiateRequest()
        self.clear()

    def clear(self):
        self.reason = -1
        self.ui = -1
        self.ui_len = 0
        self.ui_tag = -1
        self.initiate.clear()

    def parse(self, buf, start, end):
        self.clear()
        w = "RLRQ"
        if end - start < 2 or buf[start] != RLRQ:
            raise DecodeError("RLRQ: tag 0x62 expected at offset %d" % start)
        n = _ber_len(buf, start + 1, end, w)
        p = _pos[0]
        if p + n != end:
            raise DecodeError("RLRQ: %d bytes after its end at offset %d" % (end - p - n, p + n))
        while p < end:
            t = buf[p]
            q = _skip_tag(buf, p, end, w)
            n = _ber_len(buf, q, end, w)
            c = _pos[0]
            if t == 0x80:
                if n != 1:
                    raise DecodeError("RLRQ: reason of %d bytes at offset %d" % (n, c))
                self.reason = buf[c]
            elif t == 0xBE:
                _user_info(self, buf, c, n, w)
            p = c + n
        return end


class Outcome:
    # What decide() concluded, for Aare.from_outcome and the association.
    def __init__(self):
        self.clear()

    def clear(self):
        self.result = ACCEPTED
        self.source = SOURCE_USER
        self.diagnostic = DIAG_NULL
        self.error = -1  # initiate error code, -1: the InitiateRequest is fine
        self.conformance = 0  # negotiated
        self.client_max_pdu = 0  # what the client receives (0 sent -> 65535)
        self.tx_max_pdu = 0  # what this server may send: min(client, server)
        self.dlms_version = DLMS_VERSION
        self.hls = 0  # 1: accepted pending HLS pass 3/4 (send a StoC)
        self.respond = 1  # 0: response-allowed FALSE, send no AARE

    def accepted(self):
        return self.result == ACCEPTED


def _secret_matches(buf, p, n, secret):
    # LLS password compare without an early exit on the first difference;
    # an empty secret (a role left unconfigured) matches nothing
    if n != len(secret) or n == 0:
        return 0
    d = 0
    for i in range(n):
        d |= buf[p + i] ^ secret[i]
    return 1 if d == 0 else 0


# decide() applies, in this order (IEC 62056-5-3 COSEM-OPEN; ISO/IEC 8650-1
# diagnostic values):
#  - protocol-version present without version1: rejected-permanent,
#    acse-service-provider, no-common-acse-version
#  - application-context-name other than the role's (SN, a ciphered context
#    on a plain role or the reverse, a foreign OID): rejected-permanent,
#    acse-service-user, application-context-name-not-supported
#  - mechanism-name other than the role's: authentication-mechanism-name-
#    required when none was given, else -not-recognised
#  - LLS: password missing or different: authentication-failure; HLS: CtoS
#    missing or outside 8..64 bytes: authentication-failure
#  - the InitiateRequest refused (absent or still ciphered: other; DLMS
#    version < 6; proposed & supported conformance empty; client max PDU
#    1..11, which the Green Book reserves, 0 meaning no limit):
#    rejected-permanent, acse-service-user, no-reason-given
#  - HLS accepted: diagnostic authentication-required, association pending
#    until the client answers the StoC (the Green Book's HLS example AARE)
# The AARE always carries user-information (optional in ISO/IEC 15953 but
# mandatory in DLMS/COSEM, Green Book "Functional unit APDUs and their
# fields"): the confirmed-service-error when the InitiateRequest itself is
# refused, else the InitiateResponse, also when the ACSE rejects (as real
# meters answer a wrong LLS password; some send no user-information then).


def decide(out, aarq, context, mechanism, secret, conformance, max_pdu):
    # Fill `out` (an Outcome) with the answer to a parsed AARQ for a role
    # configured with `context` and `mechanism` (and LLS `secret`), on a
    # server that implements `conformance` and receives up to `max_pdu`.
    # A ciphered InitiateRequest counts only once the security layer has
    # parsed its plaintext into aarq.initiate. No I/O, no allocation.
    out.clear()
    ini = aarq.initiate
    # xDLMS first: its verdict rides in user-information whatever the ACSE says
    if not ini.valid:
        out.error = INIT_OTHER
    else:
        out.respond = ini.response_allowed
        out.dlms_version = DLMS_VERSION
        out.conformance = ini.conformance & conformance
        n = ini.max_pdu
        if n == 0:
            n = NO_LIMIT_PDU
        out.client_max_pdu = n
        out.tx_max_pdu = n if n < max_pdu else max_pdu
        if ini.dlms_version < DLMS_VERSION:
            out.error = INIT_DLMS_VERSION_TOO_LOW
        elif out.conformance == 0:
            out.error = INIT_INCOMPATIBLE_CONFORMANCE
        elif n < MIN_PDU:
            out.error = INIT_PDU_SIZE_TOO_SHORT
    # ACSE, in the order the fields come: protocol version, context,
    # mechanism, authentication value
    r = REJECTED_PERMANENT
    if not aarq.protocol_version_ok:
        out.result = r
        out.source = SOURCE_PROVIDER
        out.diagnostic = DIAG_NO_COMMON_ACSE_VERSION
        return out
    if aarq.context != context:
        out.result = r
        out.diagnostic = DIAG_CONTEXT_NOT_SUPPORTED
        return out
    m = aarq.mechanism
    if m == -1:
        m = MECH_NONE
    if m != mechanism:
        out.result = r
        if m == MECH_NONE:
            out.diagnostic = DIAG_MECHANISM_REQUIRED
        else:
            out.diagnostic = DIAG_MECHANISM_NOT_RECOGNISED
        return out
    if m == MECH_LLS:
        if aarq.auth_value < 0 or not _secret_matches(aarq.buf, aarq.auth_value, aarq.auth_len, secret):
            out.result = r
            out.diagnostic = DIAG_AUTHENTICATION_FAILURE
            return out
    elif m >= MECH_HLS:
        if aarq.auth_value < 0 or not MIN_CHALLENGE <= aarq.auth_len <= MAX_CHALLENGE:
            out.result = r
            out.diagnostic = DIAG_AUTHENTICATION_FAILURE
            return out
    if out.error >= 0:
        out.result = r
        out.diagnostic = DIAG_NO_REASON
        return out
    if m >= MECH_HLS:
        out.hls = 1
        out.diagnostic = DIAG_AUTHENTICATION_REQUIRED
    return out


def _lenlen(n):
    return 1 if n < 0x80 else (2 if n < 0x100 else 3)


def _put_len(buf, o, n):
    if n < 0x80:
        buf[o] = n
        return o + 1
    if n < 0x100:
        buf[o] = 0x81
        buf[o + 1] = n
        return o + 2
    buf[o] = 0x82
    buf[o + 1] = n >> 8
    buf[o + 2] = n & 0xFF
    return o + 3


def _put(buf, o, src, s, n):
    for i in range(n):
        buf[o + i] = src[s + i]
    return o + n


class InitiateResponseOut:
    # The xDLMS part of an AARE or RLRE user-information: kind UI_NONE,
    # UI_INITIATE_RESPONSE (08, negotiated-quality-of-service OPTIONAL,
    # version, 5F 1F 04 00 conformance, server-max-receive-pdu-size,
    # vaa-name), UI_ERROR (0E 01 06 error) or UI_CIPHERED (ciphered[start:
    # start+length], bytes the security layer built, copied as they are).

    def __init__(self):
        self.clear()

    def clear(self):
        self.kind = UI_NONE
        self.qos = -1  # negotiated-quality-of-service 0..127, < 0: absent
        self.dlms_version = DLMS_VERSION
        self.conformance = 0
        self.max_pdu = 0  # server-max-receive-pdu-size
        self.vaa_name = VAA_NAME_LN
        self.error = INIT_OTHER
        self.ciphered = None
        self.ciphered_start = 0
        self.ciphered_len = 0

    def _inner(self):
        k = self.kind
        if k == UI_INITIATE_RESPONSE:
            return 14 if self.qos < 0 else 15
        if k == UI_ERROR:
            return 4
        if k == UI_CIPHERED:
            return self.ciphered_len
        return 0

    def size(self):
        # bytes of the whole BE field, 0 when there is none
        n = self._inner()
        if self.kind == UI_NONE:
            return 0
        m = 1 + _lenlen(n) + n
        return 1 + _lenlen(m) + m

    def put(self, buf, o):
        k = self.kind
        if k == UI_NONE:
            return o
        n = self._inner()
        buf[o] = 0xBE
        o = _put_len(buf, o + 1, 1 + _lenlen(n) + n)
        buf[o] = 0x04
        o = _put_len(buf, o + 1, n)
        if k == UI_CIPHERED:
            return _put(buf, o, self.ciphered, self.ciphered_start, n)
        if k == UI_ERROR:
            buf[o] = CONFIRMED_SERVICE_ERROR
            buf[o + 1] = 1  # initiateError
            buf[o + 2] = 6  # ServiceError: initiate
            buf[o + 3] = self.error
            return o + 4
        buf[o] = INITIATE_RESPONSE
        o += 1
        if self.qos < 0:
            buf[o] = 0
            o += 1
        else:
            buf[o] = 1
            buf[o + 1] = self.qos & 0xFF
            o += 2
        c = self.conformance
        v = self.max_pdu
        a = self.vaa_name
        buf[o] = self.dlms_version
        buf[o + 1 : o + 5] = _T_CONFORMANCE
        buf[o + 5] = (c >> 16) & 0xFF
        buf[o + 6] = (c >> 8) & 0xFF
        buf[o + 7] = c & 0xFF
        buf[o + 8] = v >> 8
        buf[o + 9] = v & 0xFF
        buf[o + 10] = a >> 8
        buf[o + 11] = a & 0xFF
        return o + 12

    def check(self):
        k = self.kind
        if k == UI_INITIATE_RESPONSE:
            if not (self.qos <= 127 and 0 <= self.dlms_version <= 255 and 0 <= self.conformance <= 0xFFFFFF):
                raise EncodeError("InitiateResponse: qos, version or conformance out of range")
            if not (0 <= self.max_pdu <= 0xFFFF and 0 <= self.vaa_name <= 0xFFFF):
                raise EncodeError("InitiateResponse: PDU size or vaa-name out of range")
        elif k == UI_ERROR:
            if not 0 <= self.error <= 127:
                raise EncodeError("confirmed-service-error: code %d out of range" % self.error)
        elif k == UI_CIPHERED:
            if self.ciphered is None or self.ciphered_len < 1:
                raise EncodeError("ciphered InitiateResponse: no bytes given")
            _check_span(self.ciphered, self.ciphered_start, self.ciphered_len, "ciphered InitiateResponse")


def _room(buf, o, end, n, what):
    if end is None:
        end = len(buf)
    if o < 0 or o + n > end:
        raise EncodeError("%s of %d bytes does not fit at offset %d (limit %d)" % (what, n, o, end))


class Aare:
    # An AARE to encode; reset() once per association attempt, set fields,
    # encode(). Fields: context, result, source, diagnostic; optional
    # responding-AP-title (ap_title[ap_title_start:+ap_title_len], the server
    # system title); for HLS mechanism (>= 0: 88 + 89) and the StoC
    # (stoc[stoc_start:+stoc_len], in AA as a charstring); initiate: the
    # user-information (InitiateResponseOut).

    def __init__(self):
        self.initiate = InitiateResponseOut()
        self.reset()

    def reset(self):
        self.context = CONTEXT_LN
        self.result = ACCEPTED
        self.source = SOURCE_USER
        self.diagnostic = DIAG_NULL
        self.ap_title = None
        self.ap_title_start = 0
        self.ap_title_len = 0
        self.mechanism = -1
        self.stoc = None
        self.stoc_start = 0
        self.stoc_len = 0
        self.initiate.clear()

    def from_outcome(self, out, context, max_pdu, vaa_name=VAA_NAME_LN):
        # result, diagnostic and user-information as decide() concluded: the
        # InitiateResponse whenever the InitiateRequest itself is acceptable
        # (also when the ACSE rejects), else the confirmed-service-error.
        self.context = context
        self.result = out.result
        self.source = out.source
        self.diagnostic = out.diagnostic
        ini = self.initiate
        if out.error >= 0:
            ini.kind = UI_ERROR
            ini.error = out.error
        else:
            ini.kind = UI_INITIATE_RESPONSE
            ini.dlms_version = out.dlms_version
            ini.conformance = out.conformance
            ini.max_pdu = max_pdu
            ini.vaa_name = vaa_name
        return self

    def _size(self):
        n = 11 + 5 + 7  # A1, A2, A3
        if self.ap_title is not None:
            m = self.ap_title_len
            n += 1 + _lenlen(m + 1 + _lenlen(m)) + 1 + _lenlen(m) + m
        if self.mechanism >= 0:
            n += 4 + 9
        if self.stoc is not None:
            m = self.stoc_len
            n += 1 + _lenlen(m + 1 + _lenlen(m)) + 1 + _lenlen(m) + m
        return n + self.initiate.size()

    def encode(self, buf, off, end=None):
        w = "AARE"
        if not (0 <= self.result <= 127 and 0 <= self.diagnostic <= 127 and 0 <= self.context <= 127):
            raise EncodeError("AARE: result, diagnostic or context out of range")
        if self.source != SOURCE_USER and self.source != SOURCE_PROVIDER:
            raise EncodeError("AARE: result-source %d is neither user (1) nor provider (2)" % self.source)
        if not -1 <= self.mechanism <= 127:
            raise EncodeError("AARE: mechanism %d out of range" % self.mechanism)
        _check_span(self.ap_title, self.ap_title_start, self.ap_title_len, "AARE responding-AP-title")
        _check_span(self.stoc, self.stoc_start, self.stoc_len, "AARE StoC")
        self.initiate.check()
        n = self._size()
        _room(buf, off, end, 1 + _lenlen(n) + n, w)
        buf[off] = AARE
        o = _put_len(buf, off + 1, n)
        buf[o : o + 10] = _T_CONTEXT
        buf[o + 10] = self.context
        buf[o + 11 : o + 15] = _T_RESULT
        buf[o + 15] = self.result
        buf[o + 16] = 0xA3
        buf[o + 17] = 5
        buf[o + 18] = 0xA0 | self.source
        buf[o + 19 : o + 22] = _T_DIAGNOSTIC
        buf[o + 22] = self.diagnostic
        o += 23
        if self.ap_title is not None:
            o = _put_wrapped(buf, o, 0xA4, 0x04, self.ap_title, self.ap_title_start, self.ap_title_len)
        if self.mechanism >= 0:
            buf[o : o + 12] = _T_MECHANISM
            buf[o + 12] = self.mechanism
            o += 13
        if self.stoc is not None:
            o = _put_wrapped(buf, o, 0xAA, 0x80, self.stoc, self.stoc_start, self.stoc_len)
        return self.initiate.put(buf, o)


def _check_span(src, s, n, what):
    if src is not None and (s < 0 or n < 0 or n > 0xFF00 or s + n > len(src)):
        raise EncodeError("%s: range %d+%d outside its buffer" % (what, s, n))


def _put_wrapped(buf, o, outer, inner, src, s, n):
    # outer { inner { src[s:s+n] } }
    buf[o] = outer
    o = _put_len(buf, o + 1, 1 + _lenlen(n) + n)
    buf[o] = inner
    o = _put_len(buf, o + 1, n)
    return _put(buf, o, src, s, n)


def build_rlre(buf, off, end=None, reason=RELEASE_NORMAL, initiate=None):
    # RLRE: 63 len [80 01 reason] [BE .. user-information]; reason -1 leaves
    # it out, initiate (an InitiateResponseOut) adds the user-information.
    n = 0
    if reason >= 0:
        if reason > 127:
            raise EncodeError("RLRE: reason %d out of range" % reason)
        n = 3
    if initiate is not None:
        initiate.check()
        n += initiate.size()
    _room(buf, off, end, 1 + _lenlen(n) + n, "RLRE")
    buf[off] = RLRE
    o = _put_len(buf, off + 1, n)
    if reason >= 0:
        buf[o] = 0x80
        buf[o + 1] = 1
        buf[o + 2] = reason
        o += 3
    if initiate is not None:
        o = initiate.put(buf, o)
    return o
