# A board's material for security suites 1 and 2 (HLS-ECDSA, signing,
# certificates), loaded by dlms_micro_mp.keyring.attach_suite12 only for a
# definition with a suite 1 or 2 association. Such a definition needs more
# on the board's flash than the suite 0 keys, all written by provisioning
# (provision() below, from a key file's "signing_keys",
# "client_signing_keys" and "ca_certificate") or by the meter itself:
#   sec.sign1 / sec.sign2    the meter's signing private key (32 / 48 bytes;
#                            generate_key_pair replaces it)
#   sec.agree1 / sec.agree2  its key agreement private key (provisioned from
#                            "agreement_keys", else made on demand)
#   sec.kaclients1 / 2       the clients' key agreement public keys
#                            (general-ciphering's agreed keys, pushes to
#                            them), each as system title (8) || x || y
#   sec.clients1 / 2         the clients it accepts for HLS-ECDSA, each as
#                            system title (8) || x || y
#   sec.ca                   the trusted CA's certificate (DER)
#   sec.certs                imported certificates, each as a 2-byte length
#                            and its DER (the CPython port's record too)
# Private keys are stored as the suite 0 keys are: not encrypted, in records
# nothing reads back over DLMS (docs/security.md). A board without "sec.ca"
# refuses every certificate import, saying so; one whose sec.sign record is
# missing makes a key pair from its random source at boot (none: HLS-ECDSA
# and signing refused).

STORE_CA = "sec.ca"
STORE_CERTS = "sec.certs"
STORE_SIGNING = "sec.sign%d"
STORE_AGREEMENT = "sec.agree%d"
STORE_CLIENTS = "sec.clients%d"
STORE_AGREEMENT_CLIENTS = "sec.kaclients%d"
SERVER, CLIENT = 0, 1  # certificate_entity
SIGNING, AGREEMENT = 0, 1  # certificate_type / key_pair_type


def suites(defn):
    # the security suites (1, 2) the definition's associations use
    out = []
    for r in defn.ROLES:
        s = r[6] if len(r) > 6 else 0
        if s and s not in out:
            out.append(s)
    return out


def provision(storage, suite, private=None, clients=None, ca_der=None, agreement=None, agreement_clients=None):
    # Write a board's suite 1 or 2 material: its signing private key (None:
    # keep the stored one), the clients' public signing keys {title: x || y}
    # (None: keep), the trusted CA's certificate DER (checked; None: keep),
    # its key agreement private key and the clients' key agreement public
    # keys (the same forms; None: keep).
    from dlms_micro.security import ecc

    curve = ecc.for_suite(suite)
    for d, name in ((private, STORE_SIGNING), (agreement, STORE_AGREEMENT)):
        if d is not None:
            ecc.KeyPair(curve, d)  # raises EccError for a bad scalar
            storage.put(name % suite, bytes(d))
    for keys, name in ((clients, STORE_CLIENTS), (agreement_clients, STORE_AGREEMENT_CLIENTS)):
        if keys is not None:
            rec = bytearray()
            for title in keys:
                pub = keys[title]
                if len(title) != 8:
                    raise ValueError("client system title of %d bytes" % len(title))
                ecc.check_public_key(curve, pub)
                rec += bytes(title) + bytes(pub)
            storage.put(name % suite, bytes(rec))
    if ca_der is not None:
        from dlms_micro.security import x509

        x509.load_ca(ca_der)
        storage.put(STORE_CA, bytes(ca_der))


def read_key_file(path):
    # A key file's suite 1/2 members (as `dlms-micro serve --keys FILE`):
    # "signing_keys" {"1": hex, "2": hex}, "client_signing_keys" {title in
    # hex: x || y in hex}, "ca_certificate" (PEM text or DER in hex) ->
    # ({suite: private key}, {suite: {title: public}}, CA DER or None).
    # ValueError names the member at fault, never a value.
    import binascii
    import json

    from dlms_micro_mp.keyring import _unhex

    with open(path) as f:
        doc = json.load(f)
    sk = {}
    for k, v in (doc.get("signing_keys") or {}).items():
        if k not in ("1", "2"):
            raise ValueError("key file: signing_keys.%s: suites 1 and 2 only" % k)
        sk[int(k)] = _unhex(v, "signing_keys." + k, 32 if k == "1" else 48)
    clients = {}
    for t, v in (doc.get("client_signing_keys") or {}).items():
        title = _unhex(t, "client_signing_keys title", 8)
        n = len(v.replace(" ", "").replace(":", "")) // 2
        if n not in (64, 96):
            raise ValueError("key file: client_signing_keys.%s must be 64 or 96 bytes" % t)
        clients.setdefault(1 if n == 64 else 2, {})[title] = _unhex(v, "client_signing_keys." + t, n)
    ca = doc.get("ca_certificate")
    if ca is not None:
        if "-----BEGIN" in ca:
            body = ca.split("-----")[2]
            try:
                ca = binascii.a2b_base64("".join(body.split()))
            except Exception:
                raise ValueError("key file: ca_certificate is not PEM")
        else:
            ca = _unhex(ca, "ca_certificate", len(ca.replace(" ", "").replace(":", "")) // 2)
    return sk, clients, ca


def _signing(storage, suite, random_bytes, log):
    from dlms_micro.security import ecc, suite12

    curve = ecc.for_suite(suite)
    d = storage.get(STORE_SIGNING % suite) if storage is not None else None
    try:
        if d is None:
            if random_bytes is None:
                _say(log, "no %s signing key and no random source: suite %d refused" % (curve.name, suite))
                return None
            d = ecc.new_private_key(curve, random_bytes)
            if storage is not None:
                storage.put(STORE_SIGNING % suite, d)
            _say(log, "new %s signing key pair made (suite %d)" % (curve.name, suite))
        sg = suite12.Signing(ecc.KeyPair(curve, bytes(d)))
    except ecc.EccError as e:
        _say(log, "stored %s: %s" % (STORE_SIGNING % suite, e))
        return None
    _clients(storage, STORE_CLIENTS % suite, curve, sg.add_client_key, log)
    # the key agreement material (general-ciphering's agreed keys)
    d = storage.get(STORE_AGREEMENT % suite) if storage is not None else None
    if d is not None:
        try:
            sg.agreement_pair = ecc.KeyPair(curve, bytes(d))
        except ecc.EccError as e:
            _say(log, "stored %s: %s" % (STORE_AGREEMENT % suite, e))
    _clients(storage, STORE_AGREEMENT_CLIENTS % suite, curve, sg.add_client_agreement_key, log)
    return sg


def _clients(storage, name, curve, add, log):
    # the record `name` (title || x || y, ...) given to add(title, public)
    from dlms_micro.security import ecc

    rec = storage.get(name) if storage is not None else None
    n = 8 + 2 * curve.size
    if rec is not None and len(rec) % n:
        _say(log, "stored %s is not whole entries: no client accepted" % name)
        rec = None
    for p in range(0, len(rec) if rec else 0, n):
        try:
            add(rec[p : p + 8], rec[p + 8 : p + n])
        except ecc.EccError as e:
            _say(log, "stored %s: %s" % (name, e))


def _say(log, msg):
    if log is not None:
        log("dlms_micro: %s" % msg)


def attach(meters, ks, defn, log=None):
    # meter.signing (one suite12.Signing, or {suite: Signing} for both) and
    # meter.cert_store (CertStore) of a definition with suite 1 or 2
    # associations, from the storage of the key store ks (where
    # provisioning wrote them beside the suite 0 keys).
    ss = suites(defn)
    storage = ks.storage
    rnd = meters[0].random_bytes if meters else None
    found = {}
    for s in ss:
        sg = _signing(storage, s, rnd, log)
        if sg is not None:
            found[s] = sg
    if not found:
        return
    sg = found if len(found) > 1 else found[ss[0]] if ss[0] in found else found[ss[-1]]
    for m in meters:
        m.signing = sg
        m.cert_store = CertStore(m, storage, log)


class HmacDrbg:
    # A random source (random_bytes(n) -> n bytes) for a board without a
    # hardware one, seeded from outside: NIST SP 800-90A HMAC_DRBG with
    # SHA-256 (no prediction resistance, no reseed; one instance's output
    # is as good as its seed's entropy: 32 bytes of a real source). The
    # QEMU test firmware has no RNG; its host sends it os.urandom(32) at
    # start (fw_main.qemu(seed=...)). Never seed it with a constant.
    def __init__(self, seed):
        if len(seed) < 32:
            raise ValueError("an HMAC_DRBG seed of %d bytes: 32 or more needed" % len(seed))
        self._k = bytes(32)
        self._v = b"\x01" * 32
        self._update(bytes(seed))

    def _update(self, data):
        from dlms_micro.security import sha2

        h = sha2.hmac_digest
        self._k = h("sha256", self._k, self._v, b"\x00", data)
        self._v = h("sha256", self._k, self._v)
        if data:
            self._k = h("sha256", self._k, self._v, b"\x01", data)
            self._v = h("sha256", self._k, self._v)

    def __call__(self, n):
        from dlms_micro.security import sha2

        out = bytearray()
        while len(out) < n:
            self._v = sha2.hmac_digest("sha256", self._k, self._v)
            out += self._v
        self._update(b"")
        return bytes(out[0:n])

    def __repr__(self):
        return "<HmacDrbg>"


class _Entry:
    # an imported certificate: the parsed Certificate and what it is for
    def __init__(self, cert, entity, ktype):
        self.cert = cert
        self.entity = entity
        self.type = ktype


class CertStore:
    # meter.cert_store on a board (the interface security_setup12.py
    # documents): certificates read and checked by dlms_micro.security.x509
    # against the trusted CA in "sec.ca", kept in "sec.certs". What a
    # certificate must be to be imported (else CertError: other-reason and
    # a log line): X.509 DER issued and signed (ECDSA) by the trusted CA,
    # valid at the meter's clock (the CA too), an EC key on P-256 or P-384
    # of a suite the meter serves, on its curve, subject common name = a
    # system title in hex, key usage digitalSignature or keyAgreement (one
    # of them), not a CA. The meter's own certificate (its system title)
    # must certify its current key of that type; a client's signing
    # certificate makes its key one HLS-ECDSA accepts (until removed).
    # Stored certificates are parsed again at boot, not verified again (the
    # flash record is checked): one that no longer parses or whose issuer
    # is not the trusted CA's subject is dropped, with a log line.

    def __init__(self, meter, storage, log=None):
        from dlms_micro.security import x509

        self.meter = meter
        self.storage = storage
        self.log = log
        self.agreement = {}  # suite -> ecc.KeyPair
        self.ca = None
        der = storage.get(STORE_CA) if storage is not None else None
        if der is not None:
            try:
                self.ca = x509.load_ca(der)
            except x509.X509Error as e:
                _say(log, "stored %s refused: %s" % (STORE_CA, e))
        self._entries = []
        rec = storage.get(STORE_CERTS) if storage is not None else None
        p = 0
        while rec and p + 2 <= len(rec):
            n = (rec[p] << 8) | rec[p + 1]
            der = rec[p + 2 : p + 2 + n]
            p += 2 + n
            try:
                c = x509.parse(der)
                if self.ca is None or c.issuer != self.ca.subject:
                    raise x509.X509Error("not the trusted CA's")
                ent = self._entry(c)
                self._apply(ent)
                self._entries.append(ent)
            except Exception as ex:  # X509Error, CertError, EccError: dropped, said once
                _say(log, "stored certificate dropped: %s" % ex)

    # ---------------------------------------------------------- keys

    def _signings(self):
        s = self.meter.signing
        if s is None:
            return {}
        return s if isinstance(s, dict) else {s.suite: s}

    def _suite_ok(self, suite):
        from dlms_micro.cosem.security_setup12 import CertError

        if suite not in self._signings():
            raise CertError("no signing material for security suite %d" % suite)

    def _own_key(self, suite, ktype, make=False):
        from dlms_micro.security import ecc

        if ktype == SIGNING:
            sg = self._signings().get(suite)
            return sg.key_pair if sg is not None else None
        kp = self.agreement.get(suite)
        if kp is None:
            sg = self._signings().get(suite)
            kp = getattr(sg, "agreement_pair", None)  # provisioned, read at boot
            if kp is not None:
                self.agreement[suite] = kp
                return kp
            d = self.storage.get(STORE_AGREEMENT % suite) if self.storage is not None else None
            if d is None:
                if not make:
                    return None
                d = self._new_key(suite)
                if self.storage is not None:
                    self.storage.put(STORE_AGREEMENT % suite, d)
            kp = self.agreement[suite] = ecc.KeyPair(ecc.for_suite(suite), bytes(d))
        return kp

    def _new_key(self, suite):
        from dlms_micro.cosem.security_setup12 import CertError
        from dlms_micro.security import ecc

        rnd = self.meter.random_bytes
        if rnd is None:
            raise CertError("no random source for a new key pair")
        return ecc.new_private_key(ecc.for_suite(suite), rnd)

    @staticmethod
    def _key_type(ktype):
        from dlms_micro.cosem.security_setup12 import CertError

        if ktype != SIGNING and ktype != AGREEMENT:
            raise CertError("key pair type %d: only digital signature (0) and key agreement (1)" % ktype)

    def generate_key_pair(self, ktype, suite):
        from dlms_micro.security import ecc

        self._key_type(ktype)
        self._suite_ok(suite)
        curve = ecc.for_suite(suite)
        d = self._new_key(suite)
        kp = ecc.KeyPair(curve, d)
        if self.storage is not None:
            self.storage.put((STORE_SIGNING if ktype == SIGNING else STORE_AGREEMENT) % suite, d)
        if ktype == SIGNING:
            sg = self._signings()[suite]
            sg.key_pair.wipe()
            sg.key_pair = kp
        else:
            old = self.agreement.get(suite)
            if old is not None:
                old.wipe()
            self.agreement[suite] = kp
            sg = self._signings().get(suite)
            if sg is not None:
                sg.agreement_pair = kp  # general-ciphering agrees with the new key
        # the meter's certificates of the old key certify nothing now
        keep = []
        for e in self._entries:
            if not (e.entity == SERVER and e.type == ktype and e.cert.curve is curve):
                keep.append(e)
        self._entries = keep
        self._save()

    def certificate_request(self, ktype, suite):
        from dlms_micro.security import x509

        self._key_type(ktype)
        self._suite_ok(suite)
        kp = self._own_key(suite, ktype, make=True)
        title = self.meter.keys.system_title
        return x509.certificate_request(kp, bytes(title).hex().upper().encode())

    # ---------------------------------------------------------- import

    def _entry(self, c):
        # what certificate c is for -> _Entry; CertError when it is none of
        # the meter's business (the signature is not looked at here)
        from dlms_micro.cosem.security_setup12 import CertError

        if c.ca:
            raise CertError("a CA certificate: the trusted CA comes from provisioning")
        title = c.title()
        if title is None:
            raise CertError("subject common name is not a system title in hex")
        ku = c.key_usage
        if ku < 0:
            raise CertError("no key usage")
        sig = ku & 0x80
        agr = ku & 0x08
        if sig and not agr:
            ktype = SIGNING
        elif agr and not sig:
            ktype = AGREEMENT
        else:
            raise CertError("key usage is neither digitalSignature nor keyAgreement alone")
        if c.curve is None or c.curve.suite not in self._signings():
            raise CertError("wrong curve: the meter serves no security suite of this key")
        entity = SERVER if title == bytes(self.meter.keys.system_title) else CLIENT
        if entity == SERVER:
            own = self._own_key(c.curve.suite, ktype)
            if own is None or own.public != c.public:
                raise CertError("certifies another key than the meter's")
        return _Entry(c, entity, ktype)

    def _apply(self, e):
        if e.entity == CLIENT and e.type == SIGNING:
            self._signings()[e.cert.curve.suite].add_client_key(e.cert.title(), e.cert.public)

    def import_certificate(self, der):
        from dlms_micro.cosem import clock
        from dlms_micro.cosem.security_setup12 import CertError
        from dlms_micro.security import x509

        if self.ca is None:
            raise CertError("no trusted CA provisioned (%s)" % STORE_CA)
        try:
            c = x509.parse(der)
        except x509.X509Error as ex:
            raise CertError(str(ex))
        e = self._entry(c)  # the cheap checks first, the signature last
        try:
            x509.check(c, self.ca, clock.now(self.meter))
        except x509.X509Error as ex:
            raise CertError(str(ex))
        keep = []
        for x in self._entries:
            if not (x.entity == e.entity and x.type == e.type and x.cert.title() == c.title()
                    and x.cert.curve is c.curve):
                keep.append(x)
        keep.append(e)
        self._entries = keep
        self._apply(e)
        self._save()

    def _save(self):
        if self.storage is None:
            return
        rec = bytearray()
        for e in self._entries:
            n = len(e.cert.der)
            rec += bytes((n >> 8, n & 0xFF))
            rec += e.cert.der
        self.storage.put(STORE_CERTS, bytes(rec))

    # ---------------------------------------------------------- the rest

    def infos(self):
        out = []
        for e in self._entries:
            c = e.cert
            out.append((e.entity, e.type, c.serial, c.issuer, c.subject, c.san))
        return out

    def _by_entity(self, entity, ktype, title):
        t = bytes(title)
        return [e for e in self._entries if e.entity == entity and e.type == ktype and e.cert.title() == t]

    def _by_serial(self, serial, issuer):
        n = int.from_bytes(bytes(serial), "big")
        iss = bytes(issuer)
        return [e for e in self._entries if int.from_bytes(e.cert.serial, "big") == n and e.cert.issuer == iss]

    def export_by_entity(self, entity, ktype, title):
        found = self._by_entity(entity, ktype, title)
        return found[0].cert.der if found else None

    def export_by_serial(self, serial, issuer):
        found = self._by_serial(serial, issuer)
        return found[0].cert.der if found else None

    def _remove(self, found):
        for e in found:
            self._entries.remove(e)
            if e.entity == CLIENT and e.type == SIGNING:
                self._signings()[e.cert.curve.suite].client_keys.pop(e.cert.title(), None)
        if found:
            self._save()
        return len(found) > 0

    def remove_by_entity(self, entity, ktype, title):
        return self._remove(self._by_entity(entity, ktype, title))

    def remove_by_serial(self, serial, issuer):
        return self._remove(self._by_serial(serial, issuer))

    def __repr__(self):
        return "<CertStore %d certificates>" % len(self._entries)
