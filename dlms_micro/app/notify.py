# DataNotification (Green Book: the DataNotification service, xDLMS APDU
# data-notification [15]): what a Push setup (cosem/push.py) sends, encoded
# into the caller's preallocated buffer.
#
#   0F  long-invoke-id-and-priority  Unsigned32: bits 0..23 invoke id, bit 28
#                                    self-descriptive, 29 processing option,
#                                    30 service class (0: unconfirmed), 31
#                                    priority (0: normal). Here: a 24-bit
#                                    counter per Notifier, every flag 0.
#       date-time                    OCTET STRING (SIZE(0|12)): 0C + the
#                                    meter's local time (clock.put_local_time:
#                                    deviation and clock status included), or
#                                    00 when there is no time
#       notification-body            Data: structure {one element per entry of
#                                    the push_object_list}
# Each element is the attribute's value as its own get() handler writes it
# (attribute 1: the logical name as octet-string), as profile.capture does,
# whatever the access rights of the associations (the meter reads its own
# values); an object that is not in the table, attribute_index 0 (the whole
# object) or negative, data_index other than 0, or a get() that refuses
# gives null-data. By the Blue Book's convention the first
# entry is the push setup's own logical name (attribute 1), which tells the
# receiver which push (and so which list) it is looking at.
#
# PROTECTION. When the meter has a key store (meter.keys) whose security
# policy asks for protected responses (authenticated 0x20 and/or encrypted
# 0x40), the APDU goes out as general-glo-ciphering (DB, 08 + the meter's
# system title, length, SC, IC, ciphertext, tag), suite 0 with the global
# unicast key and the key store's transmit invocation counter, at the level
# the policy asks (security/suite0.py, Suite0.protect in place). With
# meter.push_broadcast set, the global broadcast key (key_transfer key id 1)
# ciphers instead and SC carries the broadcast bit (0x40): one key for a
# push every receiver of a group can open (issue 17).
# GENERAL-CIPHERING. A Push setup whose params carry a protection
# (P_PROTECTION: (kind, security suite, recipient system title); a meter
# definition's push-setup "protection") goes out as general-ciphering
# instead (security/gcipher.notification): kind 1 identified key (the global
# unicast key, or the broadcast key with meter.push_broadcast), kind 2 the
# Static Unified Model with the recipient's key agreement public key
# (meter.signing's client_agreement_keys), at the level the meter's policy
# asks of responses (none: authenticated and encrypted). Building it
# allocates (the APDU, and one ECDH per recipient key, kept).
# SIGNED PUSHES. With meter.push_signed set and signing keys (meter.signing,
# security suites 1/2), the (protected or plain) DataNotification goes out
# inside general-signing (security/signing.py): transaction-id = the 4-byte
# invoke id, originator = the meter's system title, no recipient, signed
# with the meter's signing key. Signing allocates (big ints); the APDU must
# fit buf[start:limit] with ~100 bytes more.
#
#   n = Notifier(meter)                     once, at boot
#   end = n.encode(obj, buf, start, limit, utc)
#       -> the APDU is buf[n.start:end]; -1 when it cannot be built (too big
#       for buf[start:limit], no invocation counter left): a log line says
#       why and nothing is sent. Leave HEADER_ROOM bytes free from start
#       when the meter ciphers (the plaintext is written after them) and a
#       link header's worth before start (wrapper.push_frame needs 8).
# Steady state: nothing allocated by the encoder itself (the Context is made
# once, values are encoded in place); a value's get() or the clock may
# allocate what they always do (big ints of the time on MicroPython).

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.errors import DlmsError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


DATA_NOTIFICATION = const(0x0F)
HEADER_ROOM = const(18)  # suite0.HEADER_ROOM: before a ciphered plaintext
TRAILER = const(12)  # suite0.TRAILER: the tag after it
INVOKE_ID_MASK = const(0xFFFFFF)

# push object fields (cosem.push O_*)
_O_CLASS = const(0)
_O_LN = const(1)
_O_ATTR = const(2)
_O_DATA_INDEX = const(3)
_P_OBJECTS = const(0)
_P_PROTECTION = const(4)
GC_IDENTIFIED = const(1)
GC_AGREED = const(2)
_GC_ROOM = const(64)  # before the plaintext: general-ciphering's header

_clock = None
_s0 = None


class Notifier:
    def __init__(self, meter):
        self.meter = meter
        self.ctx = base.Context(meter)
        self.invoke_id = 0  # of the last notification
        self.start = 0  # where the last APDU starts
        self.suite = None  # Suite0 for protected pushes, made on first use
        self.protected = False  # whether the last APDU was ciphered
        self._gc_cache = []  # general-ciphering, agreed key: [peer key, Z]
        self._gc_gcm = None  # and its AES-GCM (key length, object), made once

    def _log(self, msg):
        if self.meter.log is not None:
            self.meter.log(msg)

    def _level(self):
        # SC level bits the policy asks of what the meter sends; 0: plain
        global _s0
        keys = self.meter.keys
        if keys is None:
            return 0
        if _s0 is None:
            from dlms_micro.security import suite0 as _s0
        return _s0.response_level(keys.policy)

    def encode(self, obj, buf, start, limit, utc=None):
        # The DataNotification of push setup obj at buf[start:limit] (see
        # the header). Returns the end, or -1.
        if limit > len(buf):
            limit = len(buf)
        prm = obj[base.E_PARAM]
        if len(prm) > _P_PROTECTION and prm[_P_PROTECTION]:
            return self._general(obj, prm[_P_PROTECTION], buf, start, limit, utc)
        level = self._level()
        p = start + HEADER_ROOM if level else start
        lim = limit - TRAILER if level else limit
        try:
            q = self.plain(obj, buf, p, lim, utc)
            self.protected = bool(level)
            if not level:
                self.start = start
                return self._signed(buf, start, q, limit)
            s = self._suite()
            end = s.protect(buf, p, q, limit, level, _s0.FORM_GENERAL_GLO,
                            1 if getattr(self.meter, "push_broadcast", 0) else 0)
            self.start = s.out_start
            return self._signed(buf, start, end, limit)
        except EncodeError:
            self._log("push: the notification does not fit its buffer, not sent")
        except DlmsError:  # no transmit invocation counter, no keys
            self._log("push: the notification could not be protected, not sent")
        return -1

    def _general(self, obj, prot, buf, start, limit, utc):
        # the notification as general-ciphering (see the head); the end or -1
        kind, suite_id, recipient = prot
        m = self.meter
        p = start + _GC_ROOM
        try:
            q = self.plain(obj, buf, p, limit - TRAILER, utc)
            from dlms_micro.security import gcipher

            kl = 32 if suite_id == 2 else 16
            g = self._gc_gcm
            if g is None or g[0] != kl:
                g = self._gc_gcm = (kl, gcipher.new_gcm(kl))
            apdu = gcipher.notification(m, bytes(buf[p:q]), suite_id, self._level() or 0x30, recipient,
                                        kind == GC_AGREED, bool(getattr(m, "push_broadcast", 0)), self._gc_cache,
                                        g[1])
            n = len(apdu)
            if start + n > limit:
                raise axdr.BufferFull("general-ciphering notification")
            buf[start : start + n] = apdu
            self.start = start
            self.protected = True
            return self._signed(buf, start, start + n, limit)
        except EncodeError:
            self._log("push: the notification does not fit its buffer, not sent")
        except DlmsError as ex:
            self._log("push: general-ciphering refused, not sent: %s" % ex)
        return -1

    def _signed(self, buf, start, end, limit):
        # the APDU at buf[self.start:end] inside general-signing, when the
        # meter signs its pushes
        m = self.meter
        sg = m.signing
        if not getattr(m, "push_signed", 0) or not sg:
            return end
        if isinstance(sg, dict):  # one per suite: the strongest
            sg = sg[max(sg)]
        from dlms_micro.security import signing

        content = bytes(buf[self.start : end])
        n = self.invoke_id
        tid = bytes([0, n >> 16, (n >> 8) & 0xFF, n & 0xFF])
        try:
            q = signing.build(buf, start, limit, sg.key_pair, tid, m.keys.system_title, b"", b"", b"", content)
        except DlmsError as ex:
            self._log("push: not signed, not sent: %s" % ex)
            return -1
        self.start = start
        return q

    def _suite(self):
        s = self.suite
        if s is None:
            from dlms_micro.security import gcm

            m = self.meter
            if getattr(m, "_gcm", None) is None:
                m._gcm = gcm.new()  # the global-key cipher the channels share
            s = self.suite = _s0.Suite0(m.keys, m._gcm)
            if getattr(m, "push_broadcast", 0):
                s.bcast_gcm = gcm.new()  # its own: the broadcast key stays loaded
        return s

    def plain(self, obj, buf, pos, limit, utc=None):
        # The unprotected DataNotification at buf[pos:limit]; returns the end.
        # Raises EncodeError (BufferFull) when it does not fit.
        n = (self.invoke_id + 1) & INVOKE_ID_MASK
        self.invoke_id = n
        if pos + 7 > limit:
            raise axdr.BufferFull("no room for the notification header")
        buf[pos] = DATA_NOTIFICATION
        buf[pos + 1] = 0
        buf[pos + 2] = n >> 16
        buf[pos + 3] = (n >> 8) & 0xFF
        buf[pos + 4] = n & 0xFF
        pos += 5
        if utc is None:
            buf[pos] = 0
            pos += 1
        else:
            global _clock
            if _clock is None:
                from dlms_micro.cosem import clock as _clock
            if pos + 13 > limit:
                raise axdr.BufferFull("no room for the notification time")
            buf[pos] = 12
            pos = _clock.put_local_time(self.meter, utc, buf, pos + 1)
        objs = obj[base.E_PARAM][_P_OBJECTS]
        pos = axdr.enc_structure(buf, pos, len(objs))
        meter = self.meter
        ctx = self.ctx
        for o in objs:
            e = meter.find(o[_O_CLASS], o[_O_LN], 0)
            if pos >= limit:
                raise axdr.BufferFull("notification body")
            a = o[_O_ATTR]
            if e is not None and o[_O_DATA_INDEX] == 0 and a >= 1:
                try:
                    res = common.get_attribute(ctx, e, a, buf, pos, limit)
                except EncodeError:
                    raise
                except Exception:  # a class that needs an association (ctx.assoc is None)
                    res = base.OTHER_REASON
                if res == base.SUCCESS:
                    if ctx.cursor or ctx.pos > limit:
                        raise axdr.BufferFull("a value longer than the notification's room")
                    pos = ctx.pos
                    continue
            buf[pos] = axdr.NULL_DATA
            pos += 1
        if pos > limit:
            raise axdr.BufferFull("notification body")
        return pos
