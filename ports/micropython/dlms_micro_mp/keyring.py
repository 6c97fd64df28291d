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


# Security suites 1 and 2 (HLS-ECDSA, signing, certificates): their flash
# records and certificate store are dlms_micro_mp.certstore's, imported
# only by a definition with a suite 1 or 2 association (a board without
# one keeps that code out of its heap).


def attach_suite12(meters, ks, defn, log=None):
    # meter.signing and meter.cert_store of a definition with suite 1 or 2
    # associations (dlms_micro_mp.certstore.attach); nothing for one without.
    if ks is None:
        return
    for r in defn.ROLES:
        if len(r) > 6 and r[6]:
            from dlms_micro_mp import certstore

            certstore.attach(meters, ks, defn, log)
            return
