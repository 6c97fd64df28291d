# Security setup (class 64, version 1) for security suites 1 and 2: the
# certificates attribute and methods 4-8 (Blue Book 4.4.7), over the port's
# certificate store (ctx.meter.cert_store). Loaded by security_setup.py only
# when a method or attribute needs it.
#
#   attribute 6 certificates   array of certificate_info ::= structure {
#       certificate_entity enum (0 server, 1 client, 2 certification
#       authority, 3 other), certificate_type enum (0 digital signature,
#       1 key agreement, 2 TLS, 3 other), serial_number octet-string,
#       issuer octet-string, subject octet-string, subject_alt_name
#       octet-string }
#   method 4 generate_key_pair (key_pair_type enum: 0 digital signature,
#       1 key agreement, 2 TLS)
#   method 5 generate_certificate_request (key_pair_type enum)
#       -> octet-string: the PKCS #10 request (DER)
#   method 6 import_certificate (octet-string: an X.509 certificate, DER)
#   method 7 export_certificate (certificate_identification) -> octet-string
#   method 8 remove_certificate (certificate_identification)
#       certificate_identification ::= structure {
#         certificate_identification_type enum (0 by entity, 1 by serial),
#         certificate_identification_options CHOICE: by entity: structure {
#           certificate_entity enum, certificate_type enum, system_title
#           octet-string }; by serial: structure { serial_number
#           octet-string, issuer octet-string } }
#
# The store (duck-typed, a port object: dlms_micro_cpython.certs over
# `cryptography`, dlms_micro_mp.keyring.CertStore over security/x509.py on a
# board; none without suite 1/2 signing material: every method there
# answers read-write-denied):
#   infos() -> [(entity, type, serial, issuer, subject, subject_alt_name)]
#   generate_key_pair(key_type, suite)          raises CertError
#   certificate_request(key_type, suite) -> DER bytes  raises CertError
#     (suite: the security suite of the association calling, whose curve
#     the key pair is on)
#   import_certificate(der)                      raises CertError
#   export_by_entity(entity, key_type, title) -> DER or None
#   export_by_serial(serial, issuer) -> DER or None
#   remove_by_entity(...), remove_by_serial(...) -> True if removed
# A CertError (message: why) answers OTHER_REASON and the server's log gets
# the message: an untrusted or expired certificate, a wrong curve, a key
# type the meter does not have. Private keys never leave the store.

from dlms_micro import axdr
from dlms_micro.cosem import base
from dlms_micro.errors import DlmsError


class CertError(DlmsError):
    pass


def _log(ctx, msg):
    log = ctx.meter.log
    if log is not None:
        log("Security setup: %s" % msg)


def put_certificates(ctx, store):
    # attribute 6
    buf = ctx.buf
    infos = store.infos() if store is not None else ()
    pos = axdr.enc_array(buf, ctx.pos, len(infos))
    for entity, ktype, serial, issuer, subject, san in infos:
        pos = axdr.enc_structure(buf, pos, 6)
        pos = axdr.enc_enum(buf, pos, entity)
        pos = axdr.enc_enum(buf, pos, ktype)
        pos = axdr.enc_octet_string(buf, pos, serial)
        pos = axdr.enc_octet_string(buf, pos, issuer)
        pos = axdr.enc_octet_string(buf, pos, subject)
        pos = axdr.enc_octet_string(buf, pos, san)
        if pos > ctx.limit:
            raise axdr.BufferFull("certificates end at %d, past the limit %d" % (pos, ctx.limit))
    ctx.pos = pos
    return base.SUCCESS


def _octets(r):
    n = r.octet_string()
    return bytes(r.buf[r.mark : r.mark + n])


def _identification(r):
    # certificate_identification -> ("entity", entity, type, title) or
    # ("serial", serial, issuer); None: not that structure
    if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.ENUM:
        return None
    kind = r.enum()
    if r.peek() != axdr.STRUCTURE:
        return None
    n = r.structure()
    if kind == 0 and n == 3:
        if r.peek() != axdr.ENUM:
            return None
        entity = r.enum()
        if r.peek() != axdr.ENUM:
            return None
        ktype = r.enum()
        if r.peek() != axdr.OCTET_STRING:
            return None
        return ("entity", entity, ktype, _octets(r))
    if kind == 1 and n == 2:
        if r.peek() != axdr.OCTET_STRING:
            return None
        serial = _octets(r)
        if r.peek() != axdr.OCTET_STRING:
            return None
        return ("serial", serial, _octets(r))
    return None


def action(ctx, method):
    # methods 3..8
    if method == 3 and not ctx.meter.signing:
        return base.READ_WRITE_DENIED  # no suite 1 or 2 here
    if method == 3:
        try:
            return key_agreement(ctx)
        except DlmsError as ex:
            _log(ctx, "key_agreement refused: %s" % ex)
            return base.OTHER_REASON
    store = ctx.meter.cert_store
    if store is None or method < 4 or method > 8:
        return base.READ_WRITE_DENIED
    r = ctx.r
    if not ctx.has_data:
        return base.TYPE_UNMATCHED
    try:
        if method == 4 or method == 5:
            if r.peek() != axdr.ENUM:
                return base.TYPE_UNMATCHED
            ktype = r.enum()
            i = ctx.assoc.role
            roles = ctx.meter.roles
            suite = roles[i].security_suite if 0 <= i < len(roles) else 0
            if method == 4:
                store.generate_key_pair(ktype, suite)
                _log(ctx, "new key pair of type %d generated" % ktype)
                return base.SUCCESS
            der = store.certificate_request(ktype, suite)
            ctx.pos = axdr.enc_octet_string(ctx.buf, ctx.pos, der)
            if ctx.pos > ctx.limit:
                raise axdr.BufferFull("certificate request past the limit %d" % ctx.limit)
            return base.SUCCESS
        if method == 6:
            if r.peek() != axdr.OCTET_STRING:
                return base.TYPE_UNMATCHED
            store.import_certificate(_octets(r))
            _log(ctx, "certificate imported")
            return base.SUCCESS
        ident = _identification(r)
        if ident is None:
            return base.TYPE_UNMATCHED
        if method == 7:
            if ident[0] == "entity":
                der = store.export_by_entity(ident[1], ident[2], ident[3])
            else:
                der = store.export_by_serial(ident[1], ident[2])
            if der is None:
                return base.OBJECT_UNAVAILABLE
            ctx.pos = axdr.enc_octet_string(ctx.buf, ctx.pos, der)
            if ctx.pos > ctx.limit:
                raise axdr.BufferFull("certificate past the limit %d" % ctx.limit)
            return base.SUCCESS
        if ident[0] == "entity":
            done = store.remove_by_entity(ident[1], ident[2], ident[3])
        else:
            done = store.remove_by_serial(ident[1], ident[2])
        return base.SUCCESS if done else base.OBJECT_UNAVAILABLE
    except CertError as ex:
        _log(ctx, "method %d refused: %s" % (method, ex))
        return base.OTHER_REASON


# ------------------------------------------------------------ key agreement
#
# method 3 key_agreement (array of key_agreement_data ::= structure {key_id
# enum (0 global unicast encryption key, 1 broadcast key, 2 authentication
# key, 3 master key), key_ciphered_data octet-string}), the Ephemeral
# Unified Model C(2e, 0s, ECC CDH) of NIST SP 800-56A as the Green Book
# applies it:
#   client: key_ciphered_data = Q_eU (its ephemeral public key, x || y)
#           || its ECDSA signature of key_id (1 byte) || Q_eU
#   meter:  checks the signature with the client's public signing key (the
#           association's client system title), makes its own ephemeral key
#           pair and answers, per entry, key_id and Q_eV || its signature
#           of key_id || Q_eV
#   both:   Z = ECDH(own ephemeral private key, other's ephemeral public
#           key); the key = SP 800-56A concatenation KDF with the suite's
#           hash, OtherInfo = AlgorithmID (AES-GCM-128 for suite 1, -256 for
#           suite 2) || ST-C || ST-S, the suite's key length
# The agreed keys apply from the next association, like key_transfer's
# (suite 1: stored in the key store; suite 2: the suite 2 keys, in RAM) and the
# ephemeral private keys forgotten. Refusals (other-reason, a log line): no
# signing keys or random source, an unknown client, a bad signature, a point
# off the curve, a wrong length, a repeated or undefined key id.


def _suite_signing(ctx):
    m = ctx.meter
    i = ctx.assoc.role
    suite = m.roles[i].security_suite if 0 <= i < len(m.roles) else 0
    sg = m.signing
    if isinstance(sg, dict):
        sg = sg.get(suite)
    if not suite or sg is None or sg.suite != suite:
        raise CertError("the association has no security suite 1 or 2 signing keys")
    return suite, sg


def key_agreement(ctx):
    from dlms_micro.security import ecc, kdf

    m = ctx.meter
    r = ctx.r
    if not ctx.has_data or r.peek() != axdr.ARRAY:
        return base.TYPE_UNMATCHED
    suite, sg = _suite_signing(ctx)
    if m.random_bytes is None or m.keys is None:
        raise CertError("no random source or key store")
    title = ctx.assoc.client_system_title
    pub = sg.client_key(title) if title else None
    if pub is None:
        raise CertError("no public signing key for the client system title")
    c = sg.curve
    n = r.array()
    if n < 1 or n > 4:
        raise CertError("%d entries, 1..4 expected" % n)
    items = []
    seen = 0
    for _ in range(n):
        if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.ENUM:
            return base.TYPE_UNMATCHED
        kid = r.enum()
        if r.peek() != axdr.OCTET_STRING:
            return base.TYPE_UNMATCHED
        data = _octets(r)
        if kid > 3 or seen & (1 << kid):
            raise CertError("key id %d undefined or repeated" % kid)
        seen |= 1 << kid
        if len(data) != 4 * c.size:
            raise CertError("key_ciphered_data of %d bytes, %d expected (%s)" % (len(data), 4 * c.size, c.name))
        items.append((kid, data))
    hash_name, key_len, alg = kdf.for_suite(suite)
    info = kdf.other_info(alg, title, m.keys.system_title)
    out = []
    updates = []
    for kid, data in items:
        q_u = data[0 : 2 * c.size]
        ecc.check_public_key(c, q_u)
        if not ecc.verify_message(c, pub, data[2 * c.size :], bytes([kid]), q_u):
            raise CertError("the signature of key id %d's ephemeral key does not verify" % kid)
        eph = ecc.KeyPair(c, ecc.new_private_key(c, m.random_bytes))
        z = eph.agree(q_u)
        updates.append((kid, kdf.concat_kdf(hash_name, z, key_len, info)))
        out.append((kid, eph.public + sg.key_pair.sign_message(bytes([kid]), eph.public)))
        eph.wipe()
    if suite == 2:
        k2 = m.suite2_keys
        if k2 is None:
            raise CertError("no suite 2 keys to replace")
        for kid, key in updates:
            if kid != 0 and kid != 2:
                raise CertError("suite 2 agrees the unicast encryption and authentication keys only")
        for kid, key in updates:
            k2.stage(kid, key)
    else:
        try:
            m.keys.store_keys(updates)
        except ValueError as ex:
            raise CertError(str(ex))
        except Exception:  # storage failure: nothing changed
            return base.HARDWARE_FAULT
    buf = ctx.buf
    pos = axdr.enc_array(buf, ctx.pos, len(out))
    for kid, data in out:
        pos = axdr.enc_structure(buf, pos, 2)
        pos = axdr.enc_enum(buf, pos, kid)
        pos = axdr.enc_octet_string(buf, pos, data)
    if pos > ctx.limit:
        raise axdr.BufferFull("key agreement answer past the limit %d" % ctx.limit)
    ctx.pos = pos
    _log(ctx, "%d key(s) agreed (suite %d)" % (len(out), suite))
    return base.SUCCESS
