# Security suite 0 (AES-GCM-128) on the meter's side: unprotect a ciphered
# xDLMS request in place, protect the response in place, and the HLS
# mechanism 5 (GMAC) pass 3/4 functions. Green Book 9.2.7 (cryptographic
# protection), 9.5 (the glo-/ded-/general-glo-/general-ded-ciphering APDUs).
#
# Protected APDU (tag, A-XDR length of the rest, security header, content):
#   glo-/ded-X           tag  len  SC IC(4)  C  [T(12)]
#   general-glo/-ded     tag  08 system-title(8)  len  SC IC(4)  C  [T(12)]
# SC: 0x10 authentication, 0x20 encryption, 0x40 broadcast key, 0x80
# compression, low nibble the suite id (0). IV = the sender's system title
# || IC (big-endian); AAD = SC || AK when encrypted and authenticated, SC ||
# AK || plaintext when only authenticated (C is then the plaintext);
# encryption alone has no AAD and no tag.
#
# One Suite0 per channel. Per request, no allocation here (a counter >= 2**30
# costs the interpreter's big int, errors cost their exception); the
# ciphering is the Gcm's. Key bytes and plaintext never appear in a message.

import struct

from dlms_micro.errors import DlmsError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Security control byte
SC_AUTHENTICATION = const(0x10)
SC_ENCRYPTION = const(0x20)
SC_BROADCAST = const(0x40)
SC_COMPRESSION = const(0x80)
SC_SUITE = const(0x0F)
LEVEL_MASK = const(0x30)

TAG_LEN = const(12)  # authentication tag bytes (suite 0)
TITLE_LEN = const(8)  # system title bytes
KEY_LEN = const(16)
# Room protect() needs before the plaintext (header: at most 18 bytes, the
# general-glo form with a 3-byte length) and after it (the tag).
HEADER_ROOM = const(18)
GLO_HEADER_MAX = const(9)  # tag, length (1..3), SC, IC
TRAILER = const(12)
OVERHEAD = const(30)  # HEADER_ROOM + TRAILER: what ciphering adds at most

# Forms of a protected APDU (Suite0.form)
FORM_NONE = const(0)
FORM_GLO = const(1)
FORM_DED = const(2)
FORM_GENERAL_GLO = const(3)
FORM_GENERAL_DED = const(4)

# APDU tags (Green Book 9.5)
GLO_INITIATE_REQUEST = const(0x21)
GLO_INITIATE_RESPONSE = const(0x28)
GLO_CONFIRMED_SERVICE_ERROR = const(0x2E)
DED_INITIATE_REQUEST = const(0x41)
DED_INITIATE_RESPONSE = const(0x48)
DED_CONFIRMED_SERVICE_ERROR = const(0x4E)
GLO_GET_REQUEST = const(0xC8)
GLO_SET_REQUEST = const(0xC9)
GLO_ACTION_REQUEST = const(0xCB)
GLO_GET_RESPONSE = const(0xCC)
GLO_SET_RESPONSE = const(0xCD)
GLO_ACTION_RESPONSE = const(0xCF)
DED_GET_REQUEST = const(0xD0)
DED_SET_REQUEST = const(0xD1)
DED_ACTION_REQUEST = const(0xD3)
DED_GET_RESPONSE = const(0xD4)
DED_SET_RESPONSE = const(0xD5)
DED_ACTION_RESPONSE = const(0xD7)
GENERAL_GLO_CIPHERING = const(0xDB)
GENERAL_DED_CIPHERING = const(0xDC)

# Security Setup key ids (global_key_transfer): the invocation counter a
# received APDU is checked against
KEY_EK = const(0)  # global unicast encryption key
KEY_BK = const(1)  # global broadcast encryption key

# security_policy bits (Security Setup version 1), as keys.policy holds them
_POLICY_AUTHENTICATED_REQUEST = const(0x04)
_POLICY_ENCRYPTED_REQUEST = const(0x08)
_POLICY_AUTHENTICATED_RESPONSE = const(0x20)
_POLICY_ENCRYPTED_RESPONSE = const(0x40)

# SecurityError codes. What the server answers (see ANSWERS below):
E_TAG = const(1)  # not a ciphered request this suite serves
E_MALFORMED = const(2)  # truncated header, bad length, nothing inside
E_TAG_LENGTH = const(3)  # authenticated, but shorter than the 12-byte tag
E_SECURITY_CONTROL = const(4)  # suite other than 0, compression, SC without A or E
E_SYSTEM_TITLE = const(5)  # no client system title, or not 8 bytes
E_NO_KEY = const(6)  # the key the APDU names is not there (global, broadcast, dedicated)
E_NOT_NEGOTIATED = const(7)  # ciphering not in this association's context
E_POLICY = const(8)  # less protection than the association requires
E_AUTHENTICATION = const(9)  # GMAC tag wrong (authentication only, HLS f(StoC))
E_DECRYPTION = const(10)  # authenticated decryption failed (tag wrong)
E_REPLAY = const(11)  # invocation counter below the lowest acceptable
E_COUNTER = const(12)  # counter fine but not recorded (store failed, no slot left)

# ANSWERS (how the server applies a SecurityError; the exception-response
# is sent unciphered, since the request could not be trusted or read):
#   xDLMS request in an association (GET/SET/ACTION family):
#     E_TAG                 exception-response D8 02 02 (service-unknown,
#                           service-not-supported), as for any unknown APDU
#     E_REPLAY              exception-response D8 01 06 + Unsigned32, the
#                           invocation-counter-error carrying the lowest
#                           acceptable counter (err.expected_ic)
#     E_COUNTER             exception-response D8 01 01 (operation-not-possible)
#     every other code      exception-response D8 01 05 (service-not-allowed,
#                           deciphering-error)
#   exception_response(out, o, err) writes these.
#   Outside an association the Channel answers as for plain requests (D8 01 01)
#   before calling unprotect().
#   glo-/ded-initiate-request (or general-glo) in an AARQ, any code: AARE
#     rejected-permanent, acse-service-user, no-reason-given, user-
#     information the unciphered confirmed-service-error initiateError /
#     application-reference / deciphering-error: 0E 01 00 06 (AARE_DECIPHERING_ERROR)
#   HLS f(StoC) (hls_verify) any code: the association drops and
#     reply_to_HLS_authentication answers read-write-denied (the hook returns
#     None).
AARE_DECIPHERING_ERROR = b"\x0e\x01\x00\x06"
EXCEPTION_RESPONSE = const(0xD8)
_STATE_SERVICE_NOT_ALLOWED = const(1)
_STATE_SERVICE_UNKNOWN = const(2)
_SERVICE_OPERATION_NOT_POSSIBLE = const(1)
_SERVICE_NOT_SUPPORTED = const(2)
_SERVICE_DECIPHERING_ERROR = const(5)
_SERVICE_INVOCATION_COUNTER_ERROR = const(6)

_IC_MAX = 0xFFFFFFFF
_CHALLENGE_MAX = const(64)


class SecurityError(DlmsError):
    # A protected APDU refused; code is one of the E_* above; expected_ic
    # the lowest acceptable invocation counter (E_REPLAY), else -1. The
    # message says what, never key bytes or plaintext.
    def __init__(self, code, msg, expected_ic=-1):
        super().__init__(msg)
        self.code = code
        self.expected_ic = expected_ic


def exception_response(out, o, err):
    # The unciphered exception-response answering SecurityError err, at
    # out[o:] (3 bytes, 7 for E_REPLAY); returns the end.
    code = err.code
    out[o] = EXCEPTION_RESPONSE
    if code == E_TAG:
        out[o + 1] = _STATE_SERVICE_UNKNOWN
        out[o + 2] = _SERVICE_NOT_SUPPORTED
        return o + 3
    out[o + 1] = _STATE_SERVICE_NOT_ALLOWED
    if code == E_REPLAY:
        out[o + 2] = _SERVICE_INVOCATION_COUNTER_ERROR
        ic = err.expected_ic
        if ic < 0 or ic > _IC_MAX:
            ic = 0
        struct.pack_into(">I", out, o + 3, ic)
        return o + 7
    out[o + 2] = _SERVICE_OPERATION_NOT_POSSIBLE if code == E_COUNTER else _SERVICE_DECIPHERING_ERROR
    return o + 3


def request_level(policy):
    # The SC bits (0x10, 0x20) a security_policy requires of requests.
    return (SC_AUTHENTICATION if policy & _POLICY_AUTHENTICATED_REQUEST else 0) | (
        SC_ENCRYPTION if policy & _POLICY_ENCRYPTED_REQUEST else 0
    )


def response_level(policy):
    # The SC bits a security_policy requires of responses.
    return (SC_AUTHENTICATION if policy & _POLICY_AUTHENTICATED_RESPONSE else 0) | (
        SC_ENCRYPTION if policy & _POLICY_ENCRYPTED_RESPONSE else 0
    )


def request_form(tag):
    # The form of a ciphered request tag (FORM_*), FORM_NONE for anything
    # this suite does not unprotect (plain APDUs, responses, general-
    # ciphering, general-signing).
    if tag == GLO_GET_REQUEST or tag == GLO_SET_REQUEST or tag == GLO_ACTION_REQUEST or tag == GLO_INITIATE_REQUEST:
        return FORM_GLO
    if tag == DED_GET_REQUEST or tag == DED_SET_REQUEST or tag == DED_ACTION_REQUEST or tag == DED_INITIATE_REQUEST:
        return FORM_DED
    if tag == GENERAL_GLO_CIPHERING:
        return FORM_GENERAL_GLO
    if tag == GENERAL_DED_CIPHERING:
        return FORM_GENERAL_DED
    return FORM_NONE


def ciphered_tag(plain, ded):
    # The service-specific glo- (ded=0) or ded- (ded=1) tag of a plain APDU
    # tag, 0 when it has none (exception-response, for one). LN services
    # C0..C7 add 0x08 / 0x10 (get-response C4 -> CC / D4), the Initiate
    # family adds 0x20 / 0x40 (initiate-response 08 -> 28 / 48,
    # confirmed-service-error 0E -> 2E / 4E).
    if plain == 0xC0 or plain == 0xC1 or plain == 0xC3 or plain == 0xC4 or plain == 0xC5 or plain == 0xC7:
        return plain + (0x10 if ded else 0x08)
    if plain == 0x01 or plain == 0x08 or plain == 0x0E:
        return plain + (0x40 if ded else 0x20)
    return 0


def _ic(buf, p):
    # the 4-byte big-endian counter at buf[p:]; from 2**30 on a big int on
    # MicroPython (two allocations this way round)
    return (((buf[p] << 8) | buf[p + 1]) << 16) | ((buf[p + 2] << 8) | buf[p + 3])


def _err(code, msg):
    return SecurityError(code, msg)


class Suite0:
    # keys: the meter's KeyStore (system_title, ek, ak, policy,
    # put_next_tx_ic, check_rx_ic, accept_rx_ic, accept_hls_ic, rx_ic).
    # gcm: a Gcm for the global unicast key; the channels of one meter may
    # share it (each Suite0 reloads it whenever keys.ek differs from what it
    # loaded). ded_gcm: this channel's own Gcm for dedicated keys, None: no
    # ded-ciphering; or new_ded: a function making one (gcm.new), called
    # when an association brings a dedicated key and dropped at its end
    # (reset): a channel whose associations bring none never holds it
    # (~1.7 KB on the unix firmware).
    #
    # Per association the Channel does:
    #   reset()                         association over: no title, no key
    #   enabled = 1                     the role's context is a ciphered one
    #   set_client_title(buf, off, n)   the AARQ's calling-AP-title
    #   set_dedicated_key(buf, off, n)  the InitiateRequest's dedicated-key
    #   durable = 1                     SET/ACTION counters stored at once
    #                                   (keys.accept_rx_ic durable=True)
    # Per request:
    #   unprotect(buf, s, e)            check and decipher in place; then
    #       start, end   the plaintext APDU, in buf
    #       apdu_tag     the protected request's tag (C8, DB, 21, ...)
    #       form         FORM_GLO / FORM_DED / FORM_GENERAL_GLO / FORM_GENERAL_DED
    #       sc, level    its security control byte, and SC & 0x30
    #       ic           its invocation counter
    #   end = protect(out, p, q, lim)   the plain response at out[p:q]
    #       ciphered in place in the request's form and at its level (or
    #       more, as keys.policy requires); the APDU is out[out_start:end].
    #       Needs HEADER_ROOM bytes before p, TRAILER after q (up to lim).

    def __init__(self, keys, gcm, ded_gcm=None, key_len=KEY_LEN, new_ded=None):
        # key_len 32: security suite 2 (AES-GCM-256: gcm and ded_gcm take
        # 32-byte keys, keys.ek/ak are 32 bytes, the AAD is SC || AK(32))
        self.key_len = key_len
        self._aad_n = 1 + key_len
        self.keys = keys
        self.gcm = gcm
        self.ded_gcm = ded_gcm
        self._new_ded = new_ded
        self._iv = bytearray(12)  # sender's system title || IC
        self._aad = bytearray(1 + key_len)  # SC || AK
        self._tag = bytearray(16)  # a received tag, or one thrown away
        self._loaded = bytearray(key_len)  # the global key this Suite0 put in gcm
        self._has_loaded = 0
        # keys.ek and keys.ak (bytes) as _global last loaded them, the AAD
        # scratch holding that AK; None: check and load again
        self._ek_seen = None
        self._ak_seen = None
        self.client_title = bytearray(8)  # valid when has_client_title
        self._cipher = None  # the Gcm the current request was checked with
        self._p = 0
        self.has_dedicated_key = 0
        # the suite id of the association's APDUs (SC's low nibble): 0, or 1
        # for security suite 1, which ciphers as suite 0 does (AES-GCM-128);
        # the server sets it per association
        self.suite_id = 0
        self.bcast_gcm = None  # a Gcm for the broadcast key (pushes), set by its owner
        # the association's own security_policy bits, on top of keys.policy
        # (the meter's, which security_activate strengthens): the server
        # sets it per association from its Role
        self.role_policy = 0
        self._bcast_loaded = None
        self.reset()

    def reset(self):
        # A new association: no client title, no dedicated key (wiped).
        if self.has_dedicated_key:
            self.ded_gcm.wipe()
        if self._new_ded is not None:
            self.ded_gcm = None  # made again for the next dedicated key
        self.enabled = 0
        self.durable = 0
        self.has_client_title = 0
        self.has_dedicated_key = 0
        self._ded_rx = 0  # lowest acceptable IC under the dedicated key
        self._clear_request()

    def _clear_request(self):
        self.start = 0
        self.end = 0
        self.apdu_tag = -1
        self.form = FORM_NONE
        self.sc = 0
        self.level = 0
        self.ic = 0
        self.out_start = 0
        self._cipher = None

    def set_client_title(self, buf, off, n):
        # The client's system title (the AARQ's calling-AP-title contents).
        if n != TITLE_LEN or off < 0 or off + n > len(buf):
            raise _err(E_SYSTEM_TITLE, "client system title of %d bytes, 8 expected" % n)
        t = self.client_title
        for i in range(TITLE_LEN):
            t[i] = buf[off + i]
        self.has_client_title = 1

    def set_dedicated_key(self, buf, off, n):
        # This association's dedicated key (InitiateRequest dedicated-key);
        # the first counter accepted under it may be any.
        if self.ded_gcm is None and self._new_ded is None:
            raise _err(E_NO_KEY, "no cipher for a dedicated key on this channel")
        if n != self.key_len or off < 0 or off + n > len(buf):
            raise _err(E_NO_KEY, "dedicated key of %d bytes, %d expected" % (n, self.key_len))
        if self.ded_gcm is None:
            try:
                self.ded_gcm = self._new_ded()
            except MemoryError:
                raise _err(E_NO_KEY, "no heap for the cipher of a dedicated key")
        self.ded_gcm.set_key(buf, off)
        self.has_dedicated_key = 1
        self._ded_rx = 0

    # ------------------------------------------------------------- keys

    def _global(self):
        # Load the global unicast key into gcm when it changed, AK into the
        # AAD scratch; returns the Gcm.
        keys = self.keys
        ek = keys.ek
        ak = keys.ak
        if ek is self._ek_seen and ak is self._ak_seen:
            return self.gcm  # the same (immutable) keys as last time: all done
        self._ak_seen = None
        kl = self.key_len
        if ek is None or len(ek) != kl or ak is None or len(ak) != kl:
            raise _err(E_NO_KEY, "no global encryption and authentication keys")
        if not self._has_loaded or self._loaded != ek:
            self.gcm.set_key(ek)
            self._loaded[:] = ek
            self._has_loaded = 1
        self._aad[1 : self._aad_n] = ak
        if type(ek) is bytes and type(ak) is bytes:
            self._ek_seen = ek
            self._ak_seen = ak
        return self.gcm

    def _broadcast(self):
        # the global broadcast key in bcast_gcm (reloaded when it changed),
        # AK into the AAD scratch
        bk = self.keys.key(KEY_BK)
        ak = self.keys.ak
        kl = self.key_len
        if bk is None or len(bk) != kl or ak is None or len(ak) != kl or self.bcast_gcm is None:
            raise _err(E_NO_KEY, "no global broadcast key")
        g = self.bcast_gcm
        if self._bcast_loaded != bk:
            g.set_key(bk)
            self._bcast_loaded = bytes(bk)
        self._aad[1 : self._aad_n] = ak
        self._ak_seen = None
        return g

    def _dedicated(self):
        if not self.has_dedicated_key:
            raise _err(E_NO_KEY, "ded-ciphered APDU without a dedicated key")
        ak = self.keys.ak
        if ak is None or len(ak) != self.key_len:
            raise _err(E_NO_KEY, "no authentication key")
        self._aad[1 : self._aad_n] = ak
        self._ak_seen = None
        return self.ded_gcm

    # -------------------------------------------------------- unprotect

    def _length(self, buf, p, e):
        # A-XDR length at buf[p:e]; leaves the offset after it in self._p
        if p >= e:
            raise _err(E_MALFORMED, "ciphered APDU truncated at its length, offset %d" % p)
        n = buf[p]
        if n < 0x80:
            self._p = p + 1
            return n
        if n == 0x81 and p + 1 < e:
            self._p = p + 2
            return buf[p + 1]
        if n == 0x82 and p + 2 < e:
            self._p = p + 3
            return (buf[p + 1] << 8) | buf[p + 2]
        raise _err(E_MALFORMED, "ciphered APDU: bad length 0x%02x at offset %d" % (n, p))

    def unprotect(self, buf, s, e, need=-1):
        # Check the protected request at buf[s:e] and decipher it in place.
        # need: the SC bits (0x10, 0x20) requests must carry; -1: as
        # keys.policy says. Raises SecurityError; on success sets start, end,
        # apdu_tag, form, sc, level, ic (see the class comment); on a
        # refusal they are cleared (no request to answer).
        try:
            self._unprotect(buf, s, e, need)
        except Exception:
            self._clear_request()
            raise

    def _unprotect(self, buf, s, e, need):
        # unprotect()'s work, written for speed (issue 16): the commonest
        # tags and lengths and the 8-byte title and counter copies inline,
        # attributes read once; the checks and their order as they were.
        if e - s < 2:
            raise _err(E_MALFORMED, "ciphered APDU of %d bytes" % (e - s))
        t = buf[s]
        if t == GLO_GET_REQUEST or t == GENERAL_GLO_CIPHERING:
            form = FORM_GLO if t == GLO_GET_REQUEST else FORM_GENERAL_GLO
        else:
            form = request_form(t)
            if form == FORM_NONE:
                raise _err(E_TAG, "APDU 0x%02x is not a ciphered request" % t)
        if not self.enabled:
            raise _err(E_NOT_NEGOTIATED, "ciphered APDU 0x%02x in an association without ciphering" % t)
        iv = self._iv
        p = s + 1
        if form >= FORM_GENERAL_GLO:
            n = buf[p]
            if n < 0x80:
                p += 1
            else:
                n = self._length(buf, p, e)
                p = self._p
            if n != TITLE_LEN or p + n > e:
                raise _err(E_SYSTEM_TITLE, "general-ciphering system title of %d bytes, 8 expected" % n)
            c = self.client_title
            if self.has_client_title:
                if (buf[p] != c[0] or buf[p + 1] != c[1] or buf[p + 2] != c[2] or buf[p + 3] != c[3]
                        or buf[p + 4] != c[4] or buf[p + 5] != c[5] or buf[p + 6] != c[6] or buf[p + 7] != c[7]):
                    raise _err(E_SYSTEM_TITLE, "general-ciphering system title is not the association's")
                iv[0:TITLE_LEN] = c
            else:
                for i in range(TITLE_LEN):
                    iv[i] = buf[p + i]
            p += TITLE_LEN
        elif not self.has_client_title:
            raise _err(E_SYSTEM_TITLE, "no client system title (calling-AP-title) for 0x%02x" % t)
        else:
            iv[0:TITLE_LEN] = self.client_title
        if p >= e:
            raise _err(E_MALFORMED, "ciphered APDU truncated at its length, offset %d" % p)
        n = buf[p]
        if n < 0x80:
            p += 1
        else:
            n = self._length(buf, p, e)
            p = self._p
        if p + n != e:
            raise _err(E_MALFORMED, "ciphered APDU: length %d, %d bytes follow at offset %d" % (n, e - p, p))
        if n < 5:
            raise _err(E_MALFORMED, "security header truncated: %d bytes at offset %d" % (n, p))
        sc = buf[p]
        if sc & SC_SUITE != self.suite_id:
            raise _err(E_SECURITY_CONTROL, "security suite %d, the association's is %d" % (sc & SC_SUITE, self.suite_id))
        if sc & SC_COMPRESSION:
            raise _err(E_SECURITY_CONTROL, "compression requested (SC 0x%02x)" % sc)
        if sc & SC_BROADCAST:
            raise _err(E_NO_KEY, "broadcast key requested (SC 0x%02x)" % sc)
        level = sc & LEVEL_MASK
        if not level:
            raise _err(E_SECURITY_CONTROL, "SC 0x%02x: neither authentication nor encryption" % sc)
        keys = self.keys
        if need < 0:
            pol = keys.policy | self.role_policy  # request_level(), inline
            need = (SC_AUTHENTICATION if pol & _POLICY_AUTHENTICATED_REQUEST else 0) | (
                SC_ENCRYPTION if pol & _POLICY_ENCRYPTED_REQUEST else 0)
        if (level & need) != need:
            raise _err(E_POLICY, "SC 0x%02x: the security policy requires 0x%02x" % (sc, need))
        b0 = buf[p + 1]
        b1 = buf[p + 2]
        b2 = buf[p + 3]
        b3 = buf[p + 4]
        iv[8] = b0
        iv[9] = b1
        iv[10] = b2
        iv[11] = b3
        # from 2**30 on a big int on MicroPython (two allocations this way round)
        ic = (((b0 << 8) | b1) << 16) | ((b2 << 8) | b3)
        c = p + 5
        ce = e
        if level & SC_AUTHENTICATION:
            if e - c < TAG_LEN:
                raise _err(E_TAG_LENGTH, "authentication tag of %d bytes, 12 expected" % (e - c))
            ce = e - TAG_LEN
        if ce <= c:
            raise _err(E_MALFORMED, "ciphered APDU 0x%02x holds no APDU" % t)
        ded = form == FORM_DED or form == FORM_GENERAL_DED
        if ded:
            g = self._dedicated()
            if ic < self._ded_rx:
                raise SecurityError(E_REPLAY, "invocation counter %d below the lowest acceptable %d" % (ic, self._ded_rx), self._ded_rx)
        else:
            g = self._global()
            # a counter that would be refused: no deciphering for it
            if not keys.check_rx_ic(KEY_EK, iv, 0, ic):
                self._replay(ic, iv)
        aad = self._aad
        aad[0] = sc
        if level == LEVEL_MASK:
            if not g.decrypt(iv, 0, aad, 0, self._aad_n, buf, c, ce, buf, ce, TAG_LEN):
                raise _err(E_DECRYPTION, "authenticated decryption of 0x%02x failed (IC %d)" % (t, ic))
        elif level == SC_ENCRYPTION:
            # no tag: deciphering is the counter-mode encryption itself
            g.encrypt(iv, 0, aad, 0, 0, buf, c, ce, self._tag, 0, TAG_LEN)
        elif not g.gmac_ok(iv, 0, aad, 0, self._aad_n, buf, ce, TAG_LEN, buf, c, ce):
            # authentication only: the tag covers SC || AK || plaintext
            raise _err(E_AUTHENTICATION, "authentication tag of 0x%02x wrong (IC %d)" % (t, ic))
        # the counter moves only for an APDU that authenticated
        if ded:
            self._ded_rx = ic + 1
        else:
            d = self.durable and (buf[c] == 0xC1 or buf[c] == 0xC3)  # SET, ACTION
            if not keys.accept_rx_ic(KEY_EK, iv, 0, ic, d):
                self._replay(ic, iv)
        self.start = c
        self.end = ce
        self.apdu_tag = t
        self.form = form
        self.sc = sc
        self.level = level
        self.ic = ic
        self.out_start = 0
        self._cipher = g

    def _replay(self, ic, iv):
        # A global-key counter refused for the client title iv[0:8]: a replay
        # (below the lowest acceptable), a full table of client titles, or a
        # store that failed.
        keys = self.keys
        if keys.rx_table_full(KEY_EK, iv, 0):
            # issue 18: the 9th title was refused as "could not be recorded"
            raise _err(
                E_COUNTER,
                "client system title %s refused: the table of client titles with invocation counters is full "
                "(%d titles; KeyStore rx_slots)" % (_hex8(iv), keys.rx_slots),
            )
        expected = keys.rx_ic(KEY_EK, iv, 0)
        if ic >= expected:
            # not below the lowest acceptable: the store could not keep it
            raise _err(E_COUNTER, "invocation counter %d could not be stored (storage failed)" % ic)
        raise SecurityError(E_REPLAY, "invocation counter %d below the lowest acceptable %d" % (ic, expected), expected)

    # ---------------------------------------------------------- protect

    def protect(self, out, p, q, lim, level=0, form=FORM_NONE, broadcast=0):
        # Cipher the plain APDU out[p:q] in place as the answer to the last
        # unprotected request, with the keys it was checked with (or in
        # `form` with the current keys, when given): header written before
        # p, tag after q. Level: the request's SC & 0x30, | what keys.policy
        # requires of responses, | level. Returns the end; the APDU starts at
        # self.out_start. In the glo/ded forms an APDU without a ciphered
        # form (exception-response) is left as it is (out_start = p, end q).
        # broadcast=1 (with a form): ciphered with the global broadcast key
        # (keys.key(KEY_BK), loaded into bcast_gcm, a Gcm the owner sets),
        # SC's broadcast bit 0x40 set (pushes to several receivers).
        if form == FORM_NONE:
            form = self.form
            g = self._cipher
            if form == FORM_NONE or g is None:
                raise _err(E_NOT_NEGOTIATED, "no protected request to answer")
        elif broadcast:
            g = self._broadcast()
        else:
            g = self._dedicated() if form == FORM_DED or form == FORM_GENERAL_DED else self._global()
        keys = self.keys
        pol = keys.policy | self.role_policy
        lv = self.level | level
        if pol & (_POLICY_AUTHENTICATED_RESPONSE | _POLICY_ENCRYPTED_RESPONSE):
            lv |= response_level(pol)
        lv &= LEVEL_MASK
        if not lv:
            raise _err(E_SECURITY_CONTROL, "no protection level for the response")
        if q <= p:
            raise EncodeError("protect: empty APDU at offset %d" % p)
        general = form >= FORM_GENERAL_GLO
        if general:
            ctag = GENERAL_GLO_CIPHERING if form == FORM_GENERAL_GLO else GENERAL_DED_CIPHERING
        else:
            ctag = out[p]
            if ctag == 0xC4 and form == FORM_GLO:
                ctag = GLO_GET_RESPONSE  # the commonest
            else:
                ctag = ciphered_tag(ctag, form == FORM_DED)
            if not ctag:
                self.out_start = p
                return q
        tl = TAG_LEN if lv & SC_AUTHENTICATION else 0
        n = 5 + q - p + tl
        if n > 0xFFFF:
            raise EncodeError("protect: APDU of %d bytes too long to cipher" % (q - p))
        ll = 1 if n < 0x80 else (2 if n < 0x100 else 3)
        hdr = 6 + ll + (9 if general else 0)
        start = p - hdr
        if start < 0:
            raise EncodeError("protect: %d bytes of header room needed before offset %d" % (HEADER_ROOM, p))
        if q + tl > lim or q + tl > len(out):
            raise EncodeError("protect: tag does not fit after offset %d (limit %d)" % (q, lim))
        title = keys.system_title
        iv = self._iv
        iv[0:TITLE_LEN] = title  # (8 bytes: the KeyStore checks it)
        keys.put_next_tx_ic(iv, 8)
        sc = lv | self.suite_id | (SC_BROADCAST if broadcast else 0)  # no compression
        aad = self._aad
        aad[0] = sc
        if lv == LEVEL_MASK:
            g.encrypt(iv, 0, aad, 0, self._aad_n, out, p, q, out, q, TAG_LEN)
        elif lv == SC_ENCRYPTION:
            g.encrypt(iv, 0, aad, 0, 0, out, p, q, self._tag, 0, TAG_LEN)
        else:
            # authentication only: GMAC over SC || AK || APDU
            g.gmac(iv, 0, aad, 0, self._aad_n, out, q, TAG_LEN, out, p, q)
        o = start
        out[o] = ctag
        o += 1
        if general:
            out[o] = TITLE_LEN
            o += 1
            out[o : o + TITLE_LEN] = title
            o += TITLE_LEN
        if ll == 1:
            out[o] = n
        elif ll == 2:
            out[o] = 0x81
            out[o + 1] = n
        else:
            out[o] = 0x82
            out[o + 1] = n >> 8
            out[o + 2] = n & 0xFF
        o += ll
        out[o] = sc
        out[o + 1] = iv[8]
        out[o + 2] = iv[9]
        out[o + 3] = iv[10]
        out[o + 4] = iv[11]
        self.out_start = start
        return q + tl

    # -------------------------------------------------- HLS mechanism 5

    def hls_verify(self, buf, s, e, stoc, ss, sn):
        # The client's f(StoC) at buf[s:e] (SC || IC || GMAC tag(12)) against
        # the server's challenge stoc[ss:ss+sn]: the tag is GMAC(SC || AK ||
        # StoC) under the global key, IV = client system title || IC.
        # Returns True or raises SecurityError; the IC is then recorded
        # (keys.accept_hls_ic).
        if e - s != 5 + TAG_LEN:
            raise _err(E_MALFORMED, "f(StoC) of %d bytes, 17 expected" % (e - s))
        if sn < 1 or sn > _CHALLENGE_MAX or ss < 0 or ss + sn > len(stoc):
            raise _err(E_MALFORMED, "server challenge of %d bytes, 1..64 expected" % sn)
        sc = buf[s]
        if sc & (SC_COMPRESSION | SC_BROADCAST) or sc & SC_SUITE != self.suite_id or not sc & SC_AUTHENTICATION:
            raise _err(E_SECURITY_CONTROL, "f(StoC) with SC 0x%02x" % sc)
        if not self.has_client_title:
            raise _err(E_SYSTEM_TITLE, "no client system title for HLS-GMAC")
        g = self._global()
        iv = self._iv
        c = self.client_title
        for i in range(TITLE_LEN):
            iv[i] = c[i]
        for i in range(4):
            iv[8 + i] = buf[s + 1 + i]
        ic = _ic(buf, s + 1)
        aad = self._aad
        aad[0] = sc
        if not g.gmac_ok(iv, 0, aad, 0, self._aad_n, buf, s + 5, TAG_LEN, stoc, ss, ss + sn):
            raise _err(E_AUTHENTICATION, "f(StoC) does not authenticate (IC %d)" % ic)
        if not self.keys.accept_hls_ic(KEY_EK, iv, 0, ic):
            self._replay(ic, iv)
        return True

    def hls_answer(self, ctos, cs, cn, out, o):
        # The server's f(CtoS) = SC(0x10) || IC || GMAC(SC || AK || CtoS),
        # IV = server system title || IC, written at out[o:o+17]; returns
        # the end.
        if cn < 1 or cn > _CHALLENGE_MAX or cs < 0 or cs + cn > len(ctos):
            raise _err(E_MALFORMED, "client challenge of %d bytes, 1..64 expected" % cn)
        if o < 0 or o + 5 + TAG_LEN > len(out):
            raise EncodeError("f(CtoS) does not fit at offset %d" % o)
        g = self._global()
        keys = self.keys
        title = keys.system_title
        iv = self._iv
        for i in range(TITLE_LEN):
            iv[i] = title[i]
        keys.put_next_tx_ic(iv, 8)
        sc = SC_AUTHENTICATION | self.suite_id
        aad = self._aad
        aad[0] = sc
        g.gmac(iv, 0, aad, 0, self._aad_n, out, o + 5, TAG_LEN, ctos, cs, cs + cn)
        out[o] = sc
        for i in range(4):
            out[o + 1 + i] = iv[8 + i]
        return o + 5 + TAG_LEN


def _hex8(b):
    # the 8-byte system title at b[0:8] in hex (error messages only)
    return "".join(["%02X" % b[i] for i in range(8)])
