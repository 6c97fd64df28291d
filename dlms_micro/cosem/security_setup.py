# Security setup (class_id 64, version 1), Blue Book 4.4.7, for security
# suite 0, over the meter's key store (ctx.meter.keys, a
# dlms_micro.security.keys.KeyStore); and the invocation counter object
# 0-0:43.1.0.255 (a Data object whose value comes from the key store).
#
#   attribute 2 security_policy       enum, bit flags (v1): 2 authenticated
#               requests, 3 encrypted requests, 4 digitally signed requests,
#               5 authenticated responses, 6 encrypted responses, 7 digitally
#               signed responses. Shows the newest policy: a policy activated
#               by method 1 shows at once, and is enforced from the next
#               association (KeyStore.activate_pending).
#   attribute 3 security_suite        enum: the association's (0: AES-GCM-128, 1 and 2:
#               the ECDH-ECDSA suites, issue 17)
#   attribute 4 client_system_title   octet-string: the system title the
#               client of the association being served presented
#               (ctx.assoc.client_system_title, set by the security layer
#               from the AARQ); empty when it presented none
#   attribute 5 server_system_title   octet-string (8)
#   attribute 6 certificates          array of certificate_info: the port's
#               certificate store's (meter.cert_store), else empty
#               (security_setup12.py)
#   Every attribute is read-only (SET: READ_WRITE_DENIED).
#
#   method 1 security_activate (security_policy enum)
#     The policy may only get stronger: the new value must keep every bit of
#     the current (newest) one. SUCCESS when it is stored (equal to the
#     current one: SUCCESS, nothing stored). Not an enum: TYPE_UNMATCHED.
#     OTHER_REASON, nothing changes, when it would drop a bit, uses bits 0-1
#     or a digital signature (not in suite 0), or asks for protection the
#     keys cannot give (any protection bit without a global unicast key;
#     authentication without an authentication key). HARDWARE_FAULT when the
#     storage fails (nothing changes).
#   method 2 key_transfer (array of key_data ::= structure {key_id enum
#     (0 global unicast encryption key, 1 global broadcast encryption key,
#     2 authentication key, 3 master key KEK), key_wrapped octet-string})
#     Each key is unwrapped (RFC 3394, AES-128 key wrap) with the active KEK;
#     the keys apply from the next association (KeyStore.store_keys). All or
#     nothing: any refusal changes no key. In a security suite 2
#     association: suite 2's 32-byte EK, AK or KEK (not the broadcast key),
#     40 bytes each, wrapped with its 32-byte KEK (AES-256 key wrap), staged
#     in meter.suite2_keys (RAM) for the next association.
#       TYPE_UNMATCHED  the parameter is not such an array (a data type that
#                       does not match the method's declaration)
#       OTHER_REASON    a value the types allow but the meter cannot take:
#                       an empty array or more than 4 entries (checked
#                       before the entries are read), an undefined
#                       or repeated key id, key_wrapped not 24 bytes, no KEK
#                       configured, or a wrap whose integrity check fails.
#                       The standard lists no dedicated code for a failed
#                       unwrap; the types of the parameter were right, so
#                       it is not type-unmatched.
#       HARDWARE_FAULT  the storage failed (nothing changes)
#   methods 4..8 generate_key_pair, generate_certificate_request,
#     import_certificate, export_certificate, remove_certificate: security
#     suites 1 and 2, served by security_setup12.py over the port's
#     certificate store (meter.cert_store: CPython's or a board's, over
#     security/x509.py); without one (no suite 1 or 2 association)
#     refused with READ_WRITE_DENIED, as is method 3 key_agreement
#     (what the client also sees when the object_list grants no access to
#     them, which a table for suite 0 should say).
# Without a key store (ctx.meter.keys None) every attribute but 1 and every
# method answers OBJECT_UNAVAILABLE.
#
# param: None (the one security context of the meter's key store).
#
# INVOCATION COUNTER (0-0:43.1.0.255): InvocationCounter is a Data (class 1,
# version 0) handler whose value (attribute 2) is the meter's next transmit
# invocation counter, double-long-unsigned, read from the key store without
# advancing it; read-only. Head-ends read it (in a public association) before
# they associate with protection.

from dlms_micro import axdr
from dlms_micro.cosem import base
from dlms_micro.security import keys as ks

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 0

_WRAPPED_SIZE = const(24)  # RFC 3394 wrap of a 16-byte key
_WRAPPED_SIZE2 = const(40)  # of a 32-byte key (suite 2)
_PROTECTION = const(0x6C)  # authenticated / encrypted, requests or responses
_AUTHENTICATION = const(0x24)  # authenticated requests or responses


class SecuritySetup(base.InterfaceClass):
    class_id = 64
    version = 1
    attribute_count = 6
    method_count = 8
    slots = SLOTS

    def get(self, ctx, obj, attr):
        keys = ctx.meter.keys
        if keys is None:
            return base.OBJECT_UNAVAILABLE
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = axdr.enc_enum(buf, pos, keys.configured_policy | _role_policy(ctx))
        elif attr == 3:
            pos = axdr.enc_enum(buf, pos, _suite(ctx, keys))
        elif attr == 4:
            t = ctx.assoc.client_system_title
            pos = axdr.enc_octet_string(buf, pos, t if t is not None else b"")
        elif attr == 5:
            pos = axdr.enc_octet_string(buf, pos, keys.system_title)
        elif attr == 6:
            if ctx.meter.cert_store is not None:  # suites 1 and 2: the port's certificates
                from dlms_micro.cosem import security_setup12

                return security_setup12.put_certificates(ctx, ctx.meter.cert_store)
            pos = axdr.enc_array(buf, pos, 0)
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        if pos > ctx.limit:
            raise axdr.BufferFull("attribute ends at %d, past the limit %d" % (pos, ctx.limit))
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        return base.READ_WRITE_DENIED  # all read-only

    def action(self, ctx, obj, method):
        if method > 2:
            if ctx.meter.cert_store is None:
                return base.READ_WRITE_DENIED  # suites 1 and 2, with a certificate store
            from dlms_micro.cosem import security_setup12

            return security_setup12.action(ctx, method)
        keys = ctx.meter.keys
        if keys is None:
            return base.OBJECT_UNAVAILABLE
        if method == 1:
            return _security_activate(ctx, keys)
        return _key_transfer(ctx, keys)


SECURITY_SETUP = SecuritySetup()


def _role_policy(ctx):
    # the association's own policy bits (issue 17), 0 when it has none
    i = ctx.assoc.role
    roles = ctx.meter.roles
    return roles[i].policy if 0 <= i < len(roles) else 0


def _suite(ctx, keys):
    # the security suite of the association being served (per association,
    # issue 17), else the key store's
    i = ctx.assoc.role
    roles = ctx.meter.roles
    if 0 <= i < len(roles) and roles[i].security_suite:
        return roles[i].security_suite
    return keys.suite


def _security_activate(ctx, keys):
    r = ctx.r
    if not ctx.has_data or r.peek() != axdr.ENUM:
        return base.TYPE_UNMATCHED
    policy = r.enum()
    current = keys.configured_policy
    if policy == current:
        return base.SUCCESS
    if policy & current != current or not ks.valid_policy(policy, keys.suite):
        return base.OTHER_REASON  # weaker, reserved bits, or signatures
    if policy & _PROTECTION and not keys.has_key(ks.KEY_EK):
        return base.OTHER_REASON
    if policy & _AUTHENTICATION and not keys.has_key(ks.KEY_AK):
        return base.OTHER_REASON
    try:
        keys.store_policy(policy)
    except Exception:  # storage failure: nothing changed
        return base.HARDWARE_FAULT
    return base.SUCCESS


def _key_transfer(ctx, keys):
    # Read the whole parameter first, then check, unwrap every key, and only
    # then store: a refusal at any step changes nothing.
    r = ctx.r
    if not ctx.has_data or r.peek() != axdr.ARRAY:
        return base.TYPE_UNMATCHED
    n = r.array()
    if n == 0 or n > ks.KEY_COUNT:
        return base.OTHER_REASON
    items = []  # (key_id, offset of key_wrapped in r.buf, its length)
    for _ in range(n):
        if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.ENUM:
            return base.TYPE_UNMATCHED
        key_id = r.enum()
        if r.peek() != axdr.OCTET_STRING:
            return base.TYPE_UNMATCHED
        size = r.octet_string()
        items.append((key_id, r.mark, size))
    # a suite 2 association transfers suite 2's 32-byte keys (EK, AK, KEK),
    # wrapped with its 32-byte KEK (AES-256 key wrap: 40 bytes each)
    k2 = ctx.meter.suite2_keys if _suite(ctx, keys) == 2 else None
    size = _WRAPPED_SIZE2 if k2 is not None else _WRAPPED_SIZE
    seen = 0
    for it in items:
        if it[0] >= ks.KEY_COUNT or seen & (1 << it[0]) or it[2] != size or (k2 is not None and it[0] == 1):
            return base.OTHER_REASON
        seen |= 1 << it[0]
    kek = keys.kek if k2 is None else k2.kek
    if kek is None:
        return base.OTHER_REASON
    from dlms_micro.security import keywrap

    cipher = None
    if k2 is not None:
        from dlms_micro.security import aes256

        cipher = aes256.Aes256()
    buf = r.buf
    updates = []
    for it in items:
        p = it[1]
        try:
            key = keywrap.unwrap(kek, bytes(buf[p : p + size]), cipher)
        except Exception:  # a failed integrity check (or a malformed wrap)
            key = None
        if key is None or len(key) != size - 8:
            return base.OTHER_REASON
        updates.append((it[0], key))
    if k2 is not None:
        for kid, key in updates:  # RAM, from the next association (as agreed keys)
            k2.stage(kid, key)
        return base.SUCCESS
    try:
        keys.store_keys(updates)
    except Exception:  # storage failure: nothing changed
        return base.HARDWARE_FAULT
    return base.SUCCESS


class InvocationCounter(base.InterfaceClass):
    # Data (class 1, version 0) 0-0:43.1.0.255: value = the next transmit
    # invocation counter, double-long-unsigned, read-only.
    class_id = 1
    version = 0
    attribute_count = 2
    method_count = 0
    slots = 0

    def get(self, ctx, obj, attr):
        if attr != 2:
            return base.READ_WRITE_DENIED
        keys = ctx.meter.keys
        if keys is None:
            return base.OBJECT_UNAVAILABLE
        buf = ctx.buf
        pos = axdr.put_u8(buf, ctx.pos, axdr.DOUBLE_LONG_UNSIGNED)
        if pos + 4 > len(buf) or pos + 4 > ctx.limit:
            raise axdr.BufferFull("invocation counter past the limit %d" % ctx.limit)
        ctx.pos = keys.put_tx_ic(buf, pos)
        return base.SUCCESS


INVOCATION_COUNTER = InvocationCounter()
