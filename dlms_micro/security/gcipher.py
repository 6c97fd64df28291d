# general-ciphering (xDLMS APDU [221], tag DD; Green Book 9.5 and
# 9.2.7.2.4) on the meter's side, and the digital-signature bits of the
# security policy (Security setup v1 bits 4 and 7). Not a hot path:
# parsing reads in place, building allocates (bytes), as general-signing.
#
#   DD  transaction-id            OCTET STRING
#       originator-system-title   OCTET STRING
#       recipient-system-title    OCTET STRING
#       date-time                 OCTET STRING (0 or 12 bytes)
#       other-information         OCTET STRING
#       key-info                  OPTIONAL: 00 absent, 01 then a CHOICE:
#         [0] identified-key  key-id ENUM (0 global unicast encryption key,
#                             1 global broadcast encryption key)
#         [1] wrapped-key     kek-id ENUM (0 master key), key-ciphered-data
#                             OCTET STRING (the key, RFC 3394 wrapped with
#                             the master key)
#         [2] agreed-key      key-parameters OCTET STRING (01 One-Pass
#                             Diffie-Hellman C(1e, 1s, ECC CDH), 02 Static
#                             Unified Model C(0e, 2s, ECC CDH)),
#                             key-ciphered-data OCTET STRING (one-pass: the
#                             originator's ephemeral public key x || y and its
#                             ECDSA signature r || s of that key with the
#                             originator's signing key; static unified: empty)
#       ciphered-content          OCTET STRING: SC || IC(4) || C || [T(12)]
# A-XDR: each OCTET STRING a length (1 byte < 0x80, or 81 nn, 82 nnnn) and
# the bytes; OPTIONAL a presence byte; CHOICE its tag byte; ENUM one byte.
#
# Ciphering (this implementation's reading of the Green Book; no published
# vector exists for it, see docs/security.md):
#   IV   = originator-system-title || IC
#   AAD  = SC || AK || transaction-id || originator-system-title ||
#          recipient-system-title || date-time || other-information (the
#          fields' contents, no lengths); authentication only: || plaintext
#   key  = identified: EK or BK; wrapped: the unwrapped key; agreed: the
#          SP 800-56A concatenation KDF (kdf.py, the suite's hash) of
#          Z with OtherInfo = AlgorithmID (AES-GCM-128 / -256) || ST-U || ST-V
#          [|| transaction-id for the static unified model, whose Z is the
#          same for every message], U the originator, V the recipient:
#            one-pass       Z = ECDH(V's static key agreement key, U's ephemeral)
#            static unified Z = ECDH(V's static key agreement key, U's static one)
# Key-info absent: the global unicast key, as identified-key 0.
#
# The meter answers in the same form: the request's transaction-id echoed,
# the meter as originator, the client as recipient, no date-time or other
# information, key-info of the same kind (identified: the unicast key;
# wrapped: a fresh random key wrapped with the master key; one-pass: a fresh
# ephemeral key of the meter signed with its signing key, agreed with the
# client's static key agreement key; static unified: the static keys, the
# roles U and V swapped), ciphered at the request's level or more (policy),
# the meter's next transmit invocation counter. Replay: the request's IC is
# checked and recorded as the association's other ciphered APDUs' (KeyStore
# receive counters of the global unicast key for the client title; of the
# broadcast key for key-id 1).
#
# Refusals (SecurityError, answered as suite0.exception_response says, with
# a log line): truncated or malformed fields and key-info, an unknown key-id
# or kek-id, a key that is not there, a wrapped key that does not unwrap, an
# unknown key agreement scheme, a point not on the curve, a bad signature on
# the ephemeral key, a recipient that is not the meter, an originator that is
# not the association's client, a replayed counter, too little protection.

from dlms_micro.axdr import length_at
from dlms_micro.errors import DlmsError
from dlms_micro.security import suite0 as _s0
from dlms_micro.security.suite0 import SecurityError

GENERAL_CIPHERING = 0xDD
GENERAL_SIGNING = 0xDF
KEY_INFO_NONE = -1
KEY_INFO_IDENTIFIED = 0
KEY_INFO_WRAPPED = 1
KEY_INFO_AGREED = 2
SCHEME_ONE_PASS = 1  # C(1e, 1s, ECC CDH)
SCHEME_STATIC_UNIFIED = 2  # C(0e, 2s, ECC CDH)

# security_policy bits (Security setup v1)
POLICY_SIGNED_REQUEST = 0x10
POLICY_SIGNED_RESPONSE = 0x80

_TITLE = 8


def _err(code, msg):
    return SecurityError(code, msg)


def _len(buf, p, e, what):
    # (length, offset of the bytes) of the A-XDR length at buf[p:e]
    n, q = length_at(buf, p, e)
    if n < 0:
        if p >= e:
            raise _err(_s0.E_MALFORMED, "general-ciphering truncated in %s" % what)
        raise _err(_s0.E_MALFORMED, "general-ciphering: bad length 0x%02x in %s" % (buf[p], what))
    return n, q


def _octets(buf, p, e, what):
    n, q = _len(buf, p, e, what)
    if q + n > e:
        raise _err(_s0.E_MALFORMED, "general-ciphering: %s of %d bytes runs past the APDU" % (what, n))
    return bytes(buf[q : q + n]), q + n


def _put(parts, b):
    n = len(b)
    if n < 0x80:
        parts.append(bytes((n,)))
    elif n < 0x100:
        parts.append(bytes((0x81, n)))
    else:
        parts.append(bytes((0x82, n >> 8, n & 0xFF)))
    parts.append(bytes(b))


class General:
    # A general-ciphering APDU's fields (bytes). key_info: KEY_INFO_*;
    # key_id (identified), kek_id (wrapped), params (agreed), key_data
    # (wrapped, agreed). content: SC || IC || C || T.
    def __init__(self):
        self.tid = self.originator = self.recipient = self.date_time = self.other = b""
        self.key_info = KEY_INFO_NONE
        self.key_id = self.kek_id = -1
        self.params = self.key_data = self.content = b""

    def parse(self, buf, s, e):
        if e - s < 8 or buf[s] != GENERAL_CIPHERING:
            raise _err(_s0.E_MALFORMED, "not a general-ciphering APDU")
        p = s + 1
        self.tid, p = _octets(buf, p, e, "transaction-id")
        self.originator, p = _octets(buf, p, e, "originator-system-title")
        self.recipient, p = _octets(buf, p, e, "recipient-system-title")
        self.date_time, p = _octets(buf, p, e, "date-time")
        self.other, p = _octets(buf, p, e, "other-information")
        if p >= e:
            raise _err(_s0.E_MALFORMED, "general-ciphering truncated before key-info")
        present = buf[p]
        p += 1
        self.key_info = KEY_INFO_NONE
        if present == 1:
            if p + 2 > e:
                raise _err(_s0.E_MALFORMED, "key-info truncated")
            kind = buf[p]
            p += 1
            if kind == KEY_INFO_IDENTIFIED:
                self.key_id = buf[p]
                p += 1
            elif kind == KEY_INFO_WRAPPED:
                self.kek_id = buf[p]
                self.key_data, p = _octets(buf, p + 1, e, "wrapped-key key-ciphered-data")
            elif kind == KEY_INFO_AGREED:
                self.params, p = _octets(buf, p, e, "agreed-key key-parameters")
                self.key_data, p = _octets(buf, p, e, "agreed-key key-ciphered-data")
            else:
                raise _err(_s0.E_MALFORMED, "key-info choice %d undefined" % kind)
            self.key_info = kind
        elif present != 0:
            raise _err(_s0.E_MALFORMED, "key-info presence byte 0x%02x" % present)
        self.content, p = _octets(buf, p, e, "ciphered-content")
        if p != e:
            raise _err(_s0.E_MALFORMED, "%d stray bytes after the ciphered-content" % (e - p))
        return self

    def encode(self):
        parts = [bytes((GENERAL_CIPHERING,))]
        for f in (self.tid, self.originator, self.recipient, self.date_time, self.other):
            _put(parts, f)
        k = self.key_info
        if k == KEY_INFO_NONE:
            parts.append(b"\x00")
        elif k == KEY_INFO_IDENTIFIED:
            parts.append(bytes((1, k, self.key_id)))
        elif k == KEY_INFO_WRAPPED:
            parts.append(bytes((1, k, self.kek_id)))
            _put(parts, self.key_data)
        else:
            parts.append(bytes((1, k)))
            _put(parts, self.params)
            _put(parts, self.key_data)
        _put(parts, self.content)
        return b"".join(parts)

    def aad_tail(self):
        # what the AAD carries after SC || AK
        return self.tid + self.originator + self.recipient + self.date_time + self.other


def _header_bound(rq, key_len):
    # the most bytes a response to rq puts before its APDU: tag, the five
    # fields (originator and recipient 8 bytes), key-info, the content's
    # length, SC, IC
    k = rq.key_info
    if k == KEY_INFO_AGREED:
        ki = 2 + 2 + 3 + 4 * (32 if key_len == 16 else 48)  # x || y || r || s on P-256 (suite 1) / P-384
    elif k == KEY_INFO_WRAPPED:
        ki = 3 + 1 + key_len + 8
    else:
        ki = 3
    return 1 + 3 + len(rq.tid) + 2 * 9 + 2 + 3 + ki + 3 + 5


def other_info(suite, scheme, st_u, st_v, tid):
    # (hash name, key length, OtherInfo) of an agreed key (see the head)
    from dlms_micro.security import kdf

    h, kl, alg = kdf.for_suite(suite)
    supp = tid if scheme == SCHEME_STATIC_UNIFIED else b""
    return h, kl, kdf.other_info(alg, st_u, st_v, supp)


def derive(suite, scheme, z, st_u, st_v, tid):
    from dlms_micro.security import kdf

    h, kl, info = other_info(suite, scheme, st_u, st_v, tid)
    return kdf.concat_kdf(h, z, kl, info)


def new_gcm(key_len):
    if key_len == 32:
        from dlms_micro.security import aes256

        return aes256.new_gcm()
    from dlms_micro.security import gcm

    return gcm.new()


def seal(g, key, sc, ic, originator, ak, general, plain, tag_len=12):
    # ciphered-content (bytes) of plain under key: SC || IC || C || T,
    # IV = originator || IC, AAD = SC || AK || general.aad_tail(); key None:
    # g holds it already
    if key is not None:
        g.set_key(key)
    iv = bytes(originator) + ic.to_bytes(4, "big")
    aad = bytes((sc,)) + bytes(ak) + general.aad_tail()
    lv = sc & _s0.LEVEL_MASK
    buf = bytearray(plain)
    tag = bytearray(tag_len)
    if lv == _s0.LEVEL_MASK:
        g.encrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, tag_len)
    elif lv == _s0.SC_ENCRYPTION:
        g.encrypt(iv, 0, aad, 0, 0, buf, 0, len(buf), tag, 0, tag_len)
        tag = b""
    else:
        g.gmac(iv, 0, aad, 0, len(aad), tag, 0, tag_len, buf, 0, len(buf))
    return bytes((sc,)) + ic.to_bytes(4, "big") + bytes(buf) + bytes(tag)


def unseal(g, key, ak, general):
    # The plaintext of general.content (SC || IC || C || T) under key, or
    # None when it does not authenticate (or holds nothing): seal()'s
    # inverse, for a receiver (dlms-micro listen) and the tests.
    ct = general.content
    if len(ct) < 6:
        return None
    sc = ct[0]
    lv = sc & _s0.LEVEL_MASK
    tl = 12 if lv & _s0.SC_AUTHENTICATION else 0
    if not lv or len(ct) - 5 - tl < 1:
        return None
    g.set_key(key)
    iv = bytes(general.originator) + bytes(ct[1:5])
    aad = bytes((sc,)) + bytes(ak) + general.aad_tail()
    e = len(ct) - tl
    buf = bytearray(ct[5:e])
    tag = bytearray(ct[e:])
    if lv == _s0.LEVEL_MASK:
        ok = g.decrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, tl)
    elif lv == _s0.SC_ENCRYPTION:
        g.encrypt(iv, 0, aad, 0, 0, buf, 0, len(buf), bytearray(12), 0, 12)
        ok = True
    else:
        ok = g.gmac_ok(iv, 0, aad, 0, len(aad), tag, 0, tl, buf, 0, len(buf))
    return bytes(buf) if ok else None


def notification(meter, plain, suite_id, level, recipient=b"", agreed=False, broadcast=False, cache=None, g=None):
    # A DataNotification (plain: the APDU) the meter sends on its own
    # initiative, as a general-ciphering APDU (bytes): originator the meter,
    # recipient the destination's system title (b"": unknown),
    # transaction-id the transmit invocation counter (4 bytes, never
    # repeated), SC = level | suite_id. Key-info identified (the global
    # unicast key; broadcast: the global broadcast key) or, agreed, the
    # Static Unified Model C(0e, 2s) with the recipient's key agreement
    # public key (meter.signing's client_agreement_key): Z of the two
    # static keys, OtherInfo AlgorithmID || ST-meter || ST-recipient ||
    # transaction-id. cache: a list the caller keeps ([peer key, Z]: one
    # ECDH per recipient key). g: the caller's AES-GCM object for the
    # suite's key length (None: a new one). Raises SecurityError (a counter
    # exhausted: InvocationCounterError, a DlmsError).
    keys = meter.suite2_keys if suite_id == 2 else meter.keys
    if keys is None:
        raise _err(_s0.E_NO_KEY, "no security suite %d keys" % suite_id)
    key_len = 32 if suite_id == 2 else 16
    r = General()
    r.originator = bytes(keys.system_title)
    r.recipient = bytes(recipient)
    if agreed:
        if suite_id != 1 and suite_id != 2:
            raise _err(_s0.E_NO_KEY, "agreed key in security suite %d" % suite_id)
        sg = _sg_for(meter, suite_id)
        ka = getattr(sg, "agreement_pair", None) if sg is not None else None
        if ka is None or not ka.has_private():
            raise _err(_s0.E_NO_KEY, "no suite %d key agreement key of the meter" % suite_id)
        peer = sg.client_agreement_key(r.recipient)
        if peer is None:
            raise _err(_s0.E_NO_KEY, "no key agreement public key for the recipient %s" % _hex(r.recipient))
        if cache is not None and len(cache) == 2 and cache[0] == peer:
            z = cache[1]
        else:
            from dlms_micro.security import ecc

            try:
                z = ka.agree(peer)
            except ecc.EccError as ex:
                raise _err(_s0.E_NO_KEY, "agreed key: %s" % ex)
            if cache is not None:
                cache[:] = [peer, z]
        key = None
    else:
        kid = _s0.KEY_BK if broadcast else _s0.KEY_EK
        key = keys.ek if kid == _s0.KEY_EK else keys.key(_s0.KEY_BK)
        if key is None or len(key) != key_len:
            raise _err(_s0.E_NO_KEY, "no %s key of %d bytes" % ("broadcast" if broadcast else "global unicast",
                                                                  key_len))
        r.key_info = KEY_INFO_IDENTIFIED
        r.key_id = kid
    iv = bytearray(4)
    keys.put_next_tx_ic(iv, 0)
    r.tid = bytes(iv)
    ic = (iv[0] << 24) | (iv[1] << 16) | (iv[2] << 8) | iv[3]
    if agreed:
        r.key_info = KEY_INFO_AGREED
        r.params = bytes((SCHEME_STATIC_UNIFIED,))
        key = derive(suite_id, SCHEME_STATIC_UNIFIED, z, r.originator, r.recipient, r.tid)
    r.content = seal(g or new_gcm(key_len), key, (level & _s0.LEVEL_MASK) | suite_id, ic, r.originator, keys.ak, r,
                     plain)
    return r.encode()


def _sg_for(meter, suite):
    sg = meter.signing
    if isinstance(sg, dict):
        sg = sg.get(suite)
    if sg is not None and sg.suite != suite:
        return None
    return sg


class Handler:
    # One per channel: serve(ch, buf, s, e, out, o, lim) answers a
    # general-ciphering request of the channel's association.
    def __init__(self):
        self.rq = General()
        self._gcm = None
        self._gcm_len = 0
        self._loaded = None  # the key in _gcm
        self._z = None  # the static unified model's shared secret, request to answer
        self._static = None  # (key agreement pair, client's static key, Z) of the last static exchange

    def _cipher(self, key_len, key):
        # this channel's Gcm holding key (loaded again only when it changed:
        # the unicast key of every identified-key request)
        if self._gcm is None or self._gcm_len != key_len:
            self._gcm = new_gcm(key_len)
            self._gcm_len = key_len
            self._loaded = None
        if self._loaded != key:
            self._gcm.set_key(key)
            self._loaded = bytes(key)
        return self._gcm

    def serve(self, ch, buf, s, e, out, o, lim):
        try:
            return self._serve(ch, buf, s, e, out, o, lim)
        except SecurityError as ex:
            ch._error("general-ciphering refused: %s" % ex)
            return _s0.exception_response(out, o, ex)
        except DlmsError as ex:
            ch._error("general-ciphering refused: %s" % ex)
            return _s0.exception_response(out, o, SecurityError(_s0.E_MALFORMED, str(ex)))
        finally:
            self._z = None

    def _key(self, ch, rq, suite_id, key_len):
        # the content key of request rq and the key id whose receive
        # counters its IC is checked against: (key, key id)
        meter = ch.meter
        keys = ch.suite.keys
        k = rq.key_info
        if k == KEY_INFO_NONE or k == KEY_INFO_IDENTIFIED:
            kid = 0 if k == KEY_INFO_NONE else rq.key_id
            if kid != _s0.KEY_EK and kid != _s0.KEY_BK:
                raise _err(_s0.E_NO_KEY, "identified-key key-id %d unknown" % kid)
            key = keys.ek if kid == _s0.KEY_EK else keys.key(_s0.KEY_BK)
            if key is None or len(key) != key_len:
                raise _err(_s0.E_NO_KEY, "identified-key %d: no such key of %d bytes" % (kid, key_len))
            return key, kid
        if k == KEY_INFO_WRAPPED:
            if rq.kek_id != 0:
                raise _err(_s0.E_NO_KEY, "wrapped-key kek-id %d unknown (0: master key)" % rq.kek_id)
            kek = keys.kek
            if kek is None or len(kek) != key_len:
                raise _err(_s0.E_NO_KEY, "wrapped-key: no master key of %d bytes" % key_len)
            from dlms_micro.security import keywrap

            c = None
            if key_len == 32:
                from dlms_micro.security import aes256

                c = aes256.Aes256()
            key = keywrap.unwrap(kek, rq.key_data, c)
            if key is None or len(key) != key_len:
                raise _err(_s0.E_DECRYPTION, "wrapped key of %d bytes does not unwrap under the master key"
                           % len(rq.key_data))
            return key, _s0.KEY_EK
        # agreed key
        if suite_id != 1 and suite_id != 2:
            raise _err(_s0.E_NO_KEY, "agreed-key in a security suite %d association" % suite_id)
        if len(rq.params) != 1 or (rq.params[0] != SCHEME_ONE_PASS and rq.params[0] != SCHEME_STATIC_UNIFIED):
            raise _err(_s0.E_NO_KEY, "agreed-key key-parameters %s: no such scheme" % _hex(rq.params))
        scheme = rq.params[0]
        sg = _sg_for(meter, suite_id)
        ka = getattr(sg, "agreement_pair", None) if sg is not None else None
        if ka is None or not ka.has_private():
            raise _err(_s0.E_NO_KEY, "agreed-key: the meter has no suite %d key agreement key" % suite_id)
        from dlms_micro.security import ecc

        c = ka.curve
        peer_static = sg.client_agreement_key(rq.originator)
        try:
            if scheme == SCHEME_ONE_PASS:
                if len(rq.key_data) != 4 * c.size:
                    raise _err(_s0.E_MALFORMED, "one-pass key-ciphered-data of %d bytes, %d expected (%s)"
                               % (len(rq.key_data), 4 * c.size, c.name))
                q_u = rq.key_data[0 : 2 * c.size]
                ecc.check_public_key(c, q_u)
                pub = sg.client_key(rq.originator)
                if pub is None:
                    raise _err(_s0.E_NO_KEY, "one-pass: no public signing key for the originator")
                if not ecc.verify_message(c, pub, rq.key_data[2 * c.size :], q_u):
                    raise _err(_s0.E_AUTHENTICATION, "one-pass: the signature of the ephemeral key does not verify")
                if peer_static is None:
                    # the response needs it (one-pass, the roles swapped)
                    raise _err(_s0.E_NO_KEY, "one-pass: no key agreement public key for the originator to answer")
                z = ka.agree(q_u)
            else:
                if rq.key_data:
                    raise _err(_s0.E_MALFORMED, "static unified model with %d bytes of key-ciphered-data"
                               % len(rq.key_data))
                if peer_static is None:
                    raise _err(_s0.E_NO_KEY, "static unified model: no key agreement public key for the originator")
                # Z of two static keys never changes: one ECDH per client key
                # (kept in RAM like the private key it comes from)
                st = self._static
                if st is not None and st[0] is ka and st[1] == peer_static:
                    z = st[2]
                else:
                    z = ka.agree(peer_static)
                    self._static = (ka, peer_static, z)
                self._z = z  # the answer's Z too
        except ecc.EccError as ex:
            raise _err(_s0.E_NO_KEY, "agreed-key: %s" % ex)
        return derive(suite_id, scheme, z, rq.originator, rq.recipient, rq.tid), _s0.KEY_EK

    def _serve(self, ch, buf, s, e, out, o, lim):
        a = ch.assoc
        suite = ch.suite
        if suite is None or not suite.enabled:
            raise _err(_s0.E_NOT_NEGOTIATED, "general-ciphering in an association without ciphering")
        keys = suite.keys
        suite_id = suite.suite_id
        key_len = suite.key_len
        rq = self.rq.parse(buf, s, e)
        mine = keys.system_title
        if rq.recipient != bytes(mine):
            raise _err(_s0.E_SYSTEM_TITLE, "recipient-system-title %s is not this meter's" % _hex(rq.recipient))
        if len(rq.originator) != _TITLE:
            raise _err(_s0.E_SYSTEM_TITLE, "originator-system-title of %d bytes, 8 expected" % len(rq.originator))
        if suite.has_client_title and rq.originator != bytes(suite.client_title):
            raise _err(_s0.E_SYSTEM_TITLE, "originator-system-title is not the association's client's")
        ct = rq.content
        if len(ct) < 6:
            raise _err(_s0.E_MALFORMED, "ciphered-content of %d bytes" % len(ct))
        sc = ct[0]
        if sc & _s0.SC_SUITE != suite_id:
            raise _err(_s0.E_SECURITY_CONTROL, "security suite %d, the association's is %d" % (sc & _s0.SC_SUITE, suite_id))
        if sc & (_s0.SC_COMPRESSION | _s0.SC_BROADCAST):
            raise _err(_s0.E_SECURITY_CONTROL, "SC 0x%02x: compression or broadcast bit" % sc)
        level = sc & _s0.LEVEL_MASK
        if not level:
            raise _err(_s0.E_SECURITY_CONTROL, "SC 0x%02x: neither authentication nor encryption" % sc)
        need = _s0.request_level(keys.policy | suite.role_policy)
        if level & need != need:
            raise _err(_s0.E_POLICY, "SC 0x%02x: the security policy requires 0x%02x" % (sc, need))
        tl = 12 if level & _s0.SC_AUTHENTICATION else 0
        if len(ct) - 5 - tl < 1:
            raise _err(_s0.E_TAG_LENGTH if tl else _s0.E_MALFORMED, "ciphered-content holds no APDU")
        iv = bytearray(rq.originator + ct[1:5])
        ic = ((ct[1] << 24) | (ct[2] << 16) | (ct[3] << 8) | ct[4])
        key, rx_id = self._key(ch, rq, suite_id, key_len)
        if not keys.check_rx_ic(rx_id, iv, 0, ic):
            suite._replay(ic, iv)
        g = self._cipher(key_len, key)
        aad = bytes((sc,)) + bytes(keys.ak) + rq.aad_tail()
        # the plaintext in place of the ciphertext in buf
        cs = e - len(ct) + 5
        ce = e - tl
        if level == _s0.LEVEL_MASK:
            ok = g.decrypt(iv, 0, aad, 0, len(aad), buf, cs, ce, buf, ce, tl)
        elif level == _s0.SC_ENCRYPTION:
            g.encrypt(iv, 0, aad, 0, 0, buf, cs, ce, bytearray(12), 0, 12)
            ok = True
        else:
            ok = g.gmac_ok(iv, 0, aad, 0, len(aad), buf, ce, tl, buf, cs, ce)
        if not ok:
            raise _err(_s0.E_DECRYPTION, "general-ciphering content does not authenticate (IC %d)" % ic)
        if not keys.accept_rx_ic(rx_id, iv, 0, ic, buf[cs] == 0xC1 or buf[cs] == 0xC3):
            suite._replay(ic, iv)
        # serve the plaintext after the room the response's header needs
        # (at most: its fields, key-info, the lengths, SC, IC), so that the
        # whole answer keeps to the client's max PDU
        room = _header_bound(rq, key_len)
        p = o + room
        end = lim - 12
        if o + a.client_max_pdu - 12 < end:
            end = o + a.client_max_pdu - 12
        if p >= end:
            raise _err(_s0.E_MALFORMED, "no room for the response")
        # the answer's key first: whatever refuses it refuses before the
        # request has any effect
        r, rkey = self._answer_key(ch, rq, suite_id, key_len)
        q = ch.services.handle(buf, cs, ce, out, p, end)
        if q < 0:
            return -1
        keys = suite.keys
        lv = (level | _s0.response_level(keys.policy | suite.role_policy)) & _s0.LEVEL_MASK
        iv = bytearray(12)
        keys.put_next_tx_ic(iv, 8)
        ic = (iv[8] << 24) | (iv[9] << 16) | (iv[10] << 8) | iv[11]
        r.content = seal(self._cipher(key_len, rkey), None, lv | suite_id, ic, r.originator, keys.ak, r,
                         bytes(out[p:q]))
        rsp = r.encode()
        n = len(rsp)
        if o + n > lim:
            raise _err(_s0.E_MALFORMED, "general-ciphering response of %d bytes does not fit" % n)
        out[o : o + n] = rsp
        ch._reply_start = o
        return o + n

    def _answer_key(self, ch, rq, suite_id, key_len):
        # the answer's fields but its content, and the key it is ciphered with
        meter = ch.meter
        suite = ch.suite
        keys = suite.keys
        r = General()
        r.tid = rq.tid
        r.originator = bytes(keys.system_title)
        r.recipient = rq.originator
        r.key_info = rq.key_info
        k = rq.key_info
        if k == KEY_INFO_NONE or k == KEY_INFO_IDENTIFIED:
            r.key_id = 0
            if k == KEY_INFO_IDENTIFIED:
                r.key_info = KEY_INFO_IDENTIFIED
            rkey = keys.ek
        elif k == KEY_INFO_WRAPPED:
            rnd = meter.random_bytes
            if rnd is None:
                raise _err(_s0.E_NO_KEY, "wrapped-key: no random source for the response's key")
            from dlms_micro.security import keywrap

            rkey = rnd(key_len)
            if rkey is None or len(rkey) != key_len:
                raise _err(_s0.E_NO_KEY, "wrapped-key: the random source gave no %d-byte key" % key_len)
            rkey = bytes(rkey)
            c = None
            if key_len == 32:
                from dlms_micro.security import aes256

                c = aes256.Aes256()
            r.kek_id = 0
            r.key_data = keywrap.wrap(keys.kek, rkey, c)
        else:
            from dlms_micro.security import ecc

            sg = _sg_for(meter, suite_id)
            ka = sg.agreement_pair
            scheme = rq.params[0]
            r.params = rq.params
            peer = sg.client_agreement_key(rq.originator)
            if scheme == SCHEME_ONE_PASS:
                rnd = meter.random_bytes
                if rnd is None:
                    raise _err(_s0.E_NO_KEY, "one-pass: no random source for the meter's ephemeral key")
                eph = ecc.KeyPair(ka.curve, ecc.new_private_key(ka.curve, rnd))
                z = eph.agree(peer)
                r.key_data = eph.public + sg.key_pair.sign_message(eph.public)
                eph.wipe()
            else:
                z = self._z
                self._z = None
            rkey = derive(suite_id, scheme, z, r.originator, r.recipient, r.tid)
        return r, rkey


# ------------------------------------------------------ server.Channel hooks


def serve(ch, buf, s, e, out, o, lim):
    # The general-ciphering request at buf[s:e] of channel ch answered at
    # out[o:lim] (the channel's Handler made at its first one); the end.
    h = getattr(ch, "_gcipher", None)
    if h is None:
        h = ch._gcipher = Handler()
    return h.serve(ch, buf, s, e, out, o, lim)


def hook(ch, buf, s, e, out, o, lim, in_gbt):
    # server.Channel._request's one call, in an association with ciphering
    # when the request is general-ciphering or the association's suite is 1
    # or 2: the answer's end, or None to serve the request as usual. Applies
    # the security policy's signature bits: an unsigned request refused
    # (0x10), the answer to an unsigned one signed (0x80).
    t = buf[s]
    if getattr(ch, "_gc_busy", False):  # inside the signed-response call below
        return serve(ch, buf, s, e, out, o, lim) if t == GENERAL_CIPHERING else None
    if unsigned_refused(ch, buf, s, e):
        return ch.services._exception(out, o, 1, 1)
    if t == GENERAL_SIGNING or not signature_policy(ch) & POLICY_SIGNED_RESPONSE:
        return serve(ch, buf, s, e, out, o, lim) if t == GENERAL_CIPHERING else None
    ch._gc_busy = True
    try:
        q = serve(ch, buf, s, e, out, o, lim) if t == GENERAL_CIPHERING else ch._request(buf, s, e, out, o, lim, in_gbt)
    finally:
        ch._gc_busy = False
    return sign_response(ch, out, o, lim, q)


# ------------------------------------------- security policy: signatures


def signature_policy(ch):
    # The signature bits (POLICY_SIGNED_*) the channel's association must
    # honour: those of the meter's and the association's security policy,
    # in an association of security suite 1 or 2 (suite 0 has no
    # signatures: Security setup refuses such a policy there).
    s = ch.suite
    if s is None or not s.enabled or ch.assoc.status != 2 or not s.suite_id:
        return 0
    return (s.keys.policy | s.role_policy) & (POLICY_SIGNED_REQUEST | POLICY_SIGNED_RESPONSE)


def unsigned_refused(ch, buf, s, e):
    # True (and a log line) when the request at buf[s:e] is not a
    # general-signing APDU and the security policy requires signed requests.
    if e <= s or buf[s] == GENERAL_SIGNING or not signature_policy(ch) & POLICY_SIGNED_REQUEST:
        return False
    ch._error("unsigned request 0x%02x where the security policy requires digitally signed requests" % buf[s])
    return True


def sign_response(ch, out, o, lim, q):
    # The response out[ch._reply_start:q] (to a request that was not signed)
    # sent inside general-signing, signed with the meter's key, when the
    # security policy requires signed responses; returns the end (q when
    # nothing changes, an exception-response when it cannot be signed).
    if q < 0 or not signature_policy(ch) & POLICY_SIGNED_RESPONSE:
        return q
    if ch.gbt.sending:
        # a block of a GBT response: its blocks are not signed one by one
        ch._error("signed response required by the security policy: not given for a GBT transfer")
        return q
    from dlms_micro.security import signing as _sg

    meter = ch.meter
    suite = ch.suite
    sg = _sg_for(meter, suite.suite_id)
    rs = ch._reply_start
    content = bytes(out[rs:q])
    if content[:1] == bytes((GENERAL_SIGNING,)):
        return q
    try:
        if sg is None or not sg.key_pair.has_private():
            raise _sg.SigningError("no suite %d signing key" % suite.suite_id)
        tid = bytearray(4)
        suite.keys.put_next_tx_ic(tid, 0)
        ct = ch.assoc.client_system_title or b""
        end = _sg.build(out, o, lim, sg.key_pair, bytes(tid), bytes(suite.keys.system_title), ct, b"", b"", content)
    except DlmsError as ex:
        ch._error("signed response required by the security policy not sent: %s" % ex)
        return ch.services._exception(out, o, 1, 1)
    ch._reply_start = o
    return end


def _hex(b):
    return "".join(["%02X" % x for x in b])
