# A board's security material on its flash: the suite 0 keys, the system
# title and the invocation counters (dlms_micro.security.keys.KeyStore over
# the board's FlashStorage, so counters survive a power cut at any instant as
# on the host).
#
#   ks = keyring.open_keys(storage, defn, log)   # KeyStore, or None
#   keyring.attach(meters, ks)                    # meter.keys, random_bytes
#
# Where the keys come from: tools/provision.py writes them (generated with
# os.urandom or from a key file) into the board's storage directory over
# mpremote, as the records a KeyStore reads ("sec.keys") plus the system
# title ("sec.title"); Security setup's key_transfer replaces them later.
# Nothing here holds a default key: a board that was never provisioned has
# none, and refuses every ciphered association (the AARQ of the ciphered
# context gets the ACSE's application-context-name-not-supported) after one
# log line at boot. A record on flash that fails its CRC, its length or its
# format check (torn, corrupted, written by something else) is never used:
# the meter logs which one and refuses ciphered service the same way until
# the board is provisioned again (tools/provision.py --force). Log lines
# name records, never a key.

# The KeyStore's records (dlms_micro.security.keys STORE_*), named here so
# that a board without keys never imports the key store's code.
STORE_KEYS = "sec.keys"
STORE_TITLE = "sec.title"  # 8 bytes: the server system title
RECORDS = (STORE_KEYS, "sec.tx", "sec.rx", STORE_TITLE)
# a definition's security level of the ciphered association (compiled
# ROLES[i][5]: 1 authenticated, 2 encrypted, 3 both) -> security_policy
POLICY = (0, 0x24, 0x48, 0x6C)

# why open_keys() gave no key store (the board's status, for logs and tests)
NOT_NEEDED = "not needed"
NO_STORAGE = "no storage"
NOT_PROVISIONED = "not provisioned"
CORRUPT = "corrupt"
status = NOT_NEEDED


def level(defn):
    # The highest security level of the definition's associations (0: none
    # is ciphered, the board needs no keys).
    n = 0
    for r in defn.ROLES:
        if r[5] > n:
            n = r[5]
    return n


def needs_keys(defn):
    # Whether any association is ciphered or authenticates with HLS-GMAC
    # (mechanism 5): either needs the key store.
    for r in defn.ROLES:
        if r[5] or r[2] >= 5:
            return True
    return False


def provision(storage, system_title, ek, ak, kek, policy):
    # Write a device's keys and system title as the records a board reads
    # (tools/provision.py through a dict, fw_main into its data directory).
    # Counters already stored stay (a transmit counter is never reset).
    from dlms_micro.security import keys as _ks

    if len(system_title) != _ks.TITLE_SIZE:
        raise ValueError("the system title must be 8 bytes")
    storage.put(STORE_TITLE, bytes(system_title))
    ks = _ks.KeyStore(_Blank(storage), system_title, policy=policy)
    ks.store_keys(((_ks.KEY_EK, ek), (_ks.KEY_AK, ak), (_ks.KEY_KEK, kek)))


class _Blank:
    # The storage as a fresh KeyStore must see it for provision(): no key
    # record yet (so --force replaces one), counters as stored.
    def __init__(self, storage):
        self.s = storage

    def get(self, key):
        return None if key == STORE_KEYS else self.s.get(key)

    def put(self, key, value):
        self.s.put(key, value)


def open_keys(storage, defn, log=None):
    # The meter's KeyStore from the board's storage, or None when the
    # definition needs none or it cannot be trusted (see above; `status`
    # says why). log: one line when a needed key store is missing.
    global status
    if not needs_keys(defn):
        status = NOT_NEEDED
        return None
    if storage is None:
        return _refuse(log, NO_STORAGE, "no storage for keys and counters")
    damaged = getattr(storage, "damaged", None)
    if damaged is not None:
        for name in RECORDS:
            if damaged(name):
                return _refuse(log, CORRUPT, "stored %s is corrupt (CRC or length)" % name)
    if storage.get(STORE_KEYS) is None:
        return _refuse(log, NOT_PROVISIONED, "no keys provisioned (tools/provision.py)")
    title = storage.get(STORE_TITLE)
    if title is None:
        title = defn.SYSTEM_TITLE
    elif len(title) != 8:
        return _refuse(log, CORRUPT, "stored %s is not 8 bytes" % STORE_TITLE)
    from dlms_micro.security import keys as _ks

    try:
        ks = _ks.KeyStore(storage, title, policy=POLICY[level(defn)])
    except ValueError as e:  # the KeyStore's record checks; messages hold no key
        return _refuse(log, CORRUPT, str(e))
    if ks.ek is None or ks.ak is None:
        return _refuse(log, NOT_PROVISIONED, "stored %s holds no EK or AK" % STORE_KEYS)
    status = "ok"
    return ks


def _refuse(log, why, msg):
    global status
    status = why
    if log is not None:
        log("dlms_micro: %s: ciphered associations refused" % msg)
    return None


def attach(meters, ks):
    # One key store for every logical device of the board (a gateway's
    # devices share the module's system title and counters).
    if ks is None:
        return
    import os

    # HLS challenges need a true random source (the ESP32's hardware RNG);
    # a port without os.urandom (the qemu test board) serves no HLS.
    rnd = getattr(os, "urandom", None)
    for m in meters:
        m.keys = ks
        m.random_bytes = rnd


def read_key_file(path):
    # A key file as `dlms-micro serve --keys FILE` reads it (JSON, hex
    # strings "ek", "ak", "kek", optional "system_title"; other members are
    # the host's and ignored here) -> (ek, ak, kek, system_title or None).
    # ValueError names the member at fault, never a value.
    import json

    with open(path) as f:
        doc = json.load(f)
    out = []
    for name in ("ek", "ak", "kek", "system_title"):
        v = doc.get(name)
        if v is None:
            if name == "system_title":
                out.append(None)
                continue
            raise ValueError("key file: %s is missing" % name)
        out.append(_unhex(v, name, 8 if name == "system_title" else 16))
    return out[0], out[1], out[2], out[3]


def _unhex(text, name, size):
    import binascii

    try:
        b = binascii.unhexlify(text.replace(" ", "").replace(":", ""))
    except Exception:
        raise ValueError("key file: %s is not a hex string" % name)
    if len(b) != size:
        raise ValueError("key file: %s must be %d bytes" % (name, size))
    return bytes(b)


# ------------------------------------------------- security suites 1 and 2
#
# A definition with a suite 1 or 2 association (HLS-ECDSA, signing) needs
# more on the board's flash, all written by provisioning (provision_suite12
# below, from a key file's "signing_keys", "client_signing_keys" and
# "ca_certificate") or by the meter itself:
#   sec.sign1 / sec.sign2    the meter's signing private key (32 / 48 bytes;
#                            generate_key_pair replaces it)
#   sec.agree1 / sec.agree2  its key agreement private key (made on demand)
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


def provision_suite12(storage, suite, private=None, clients=None, ca_der=None):
    # Write a board's suite 1 or 2 material: its signing private key (None:
    # keep the stored one), the clients' public signing keys {title: x || y}
    # (None: keep), the trusted CA's certificate DER (checked; None: keep).
    from dlms_micro.security import ecc

    curve = ecc.for_suite(suite)
    if private is not None:
        ecc.KeyPair(curve, private)  # raises EccError for a bad scalar
        storage.put(STORE_SIGNING % suite, bytes(private))
    if clients is not None:
        rec = bytearray()
        for title in clients:
            pub = clients[title]
            if len(title) != 8:
                raise ValueError("client system title of %d bytes" % len(title))
            ecc.check_public_key(curve, pub)
            rec += bytes(title) + bytes(pub)
        storage.put(STORE_CLIENTS % suite, bytes(rec))
    if ca_der is not None:
        from dlms_micro.security import x509

        x509.load_ca(ca_der)
        storage.put(STORE_CA, bytes(ca_der))


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
    rec = storage.get(STORE_CLIENTS % suite) if storage is not None else None
    n = 8 + 2 * curve.size
    if rec is not None and len(rec) % n:
        _say(log, "stored %s is not whole entries: no client accepted" % (STORE_CLIENTS % suite))
        rec = None
    for p in range(0, len(rec) if rec else 0, n):
        try:
            sg.add_client_key(rec[p : p + 8], rec[p + 8 : p + n])
        except ecc.EccError as e:
            _say(log, "stored %s: %s" % (STORE_CLIENTS % suite, e))
    return sg


def _say(log, msg):
    if log is not None:
        log("dlms_micro: %s" % msg)


def attach_suite12(meters, storage, defn, log=None):
    # meter.signing (one suite12.Signing, or {suite: Signing} for both) and
    # meter.cert_store (CertStore) of a definition with suite 1 or 2
    # associations; nothing for one without.
    ss = suites(defn)
    if not ss:
        return
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
                e = self._entry(c)
                self._apply(e)
                self._entries.append(e)
            except Exception as e:  # X509Error, CertError, EccError: dropped, said once
                _say(log, "stored certificate dropped: %s" % e)

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
        except x509.X509Error as e:
            raise CertError(str(e))
        e = self._entry(c)  # the cheap checks first, the signature last
        try:
            x509.check(c, self.ca, clock.now(self.meter))
        except x509.X509Error as e:
            raise CertError(str(e))
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
