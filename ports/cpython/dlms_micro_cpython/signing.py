# The signing material of security suites 1 and 2 for a simulated meter
# (meter.signing, dlms_micro.security.suite12.Signing): the meter's own
# signing key pair per suite and the public signing keys of the clients it
# accepts (HLS-ECDSA, mechanism 7).
#
# Where they come from:
#   - the key file (keyfile.parse): "signing_keys": {"1": 32-byte private
#     key, "2": 48-byte private key} and "client_signing_keys": {client
#     system title: x || y}, hex strings; "agreement_keys" and
#     "client_agreement_keys" likewise for the static key agreement keys of
#     general-ciphering with an agreed key;
#   - else the meter's storage: a key pair generated once from the port's
#     random source and kept as "sec.sign1" / "sec.sign2" (0600 in the data
#     directory, like sec.keys; not encrypted: see docs/security.md).
# The private key never leaves the KeyPair but to this storage; log lines,
# repr() and errors show at most the first bytes of the public key.

import os

from dlms_micro.security import ecc, suite12

STORE_SIGNING = "sec.sign%d"


def suites_of(compiled):
    # the security suites (1, 2) the definition's associations use
    return sorted({r[6] for r in compiled.ROLES if len(r) > 6 and r[6]})


def _key_pair(storage, suite, given, random_bytes):
    curve = ecc.for_suite(suite)
    if given is not None:
        return ecc.KeyPair(curve, given)
    key = STORE_SIGNING % suite
    d = storage.get(key) if storage is not None else None
    if d is not None and len(d) != curve.size:
        raise ValueError("stored %s is not a %s private key" % (key, curve.name))
    if d is None:
        d = ecc.new_private_key(curve, random_bytes)
        if storage is not None:
            storage.put(key, d)
    return ecc.KeyPair(curve, bytes(d))


def make_signing(storage, keys, compiled, random_bytes=os.urandom):
    """meter.signing for a compiled definition: None when no association
    uses suite 1 or 2; one suite12.Signing when one suite is used, a dict
    {suite: Signing} when both are."""
    suites = suites_of(compiled) if compiled is not None else []
    if not suites:
        return None
    keys = keys or {}
    given = keys.get("signing_keys") or {}
    clients = keys.get("client_signing_keys") or {}
    out = {}
    agree = keys.get("agreement_keys") or {}
    agree_clients = keys.get("client_agreement_keys") or {}
    for s in suites:
        sg = suite12.Signing(_key_pair(storage, s, given.get(s), random_bytes))
        if agree.get(s) is not None:
            sg.agreement_pair = ecc.KeyPair(sg.curve, agree[s])
        size = 2 * sg.curve.size
        for title, pub in clients.items():
            if len(pub) == size:
                sg.add_client_key(title, pub)
        for title, pub in agree_clients.items():
            if len(pub) == size:
                sg.add_client_agreement_key(title, pub)
        out[s] = sg
    return out[suites[0]] if len(out) == 1 else out


# Security suite 2's demo-only keys (AES-256), used when a definition has a
# suite 2 association and the key file gives none: public, like DEMO_EK.
DEMO_EK2 = bytes(range(32))
DEMO_AK2 = bytes(range(0xD0, 0xF0))
DEMO_KEK2 = bytes(range(0x60, 0x80))


def make_suite2_keys(store, keys, compiled):
    """meter.suite2_keys: None when no association uses suite 2; else the
    key file's "suite2_ek"/"suite2_ak" (32 bytes each) or the demo-only
    ones, over the meter's KeyStore `store`. The master key (KEK) of wrapped
    keys and key_transfer: "suite2_kek"; the demo-only one only where EK
    and AK are the demo-only ones too (a public KEK beside real keys would
    let anyone replace them); else none: wrapped keys refused."""
    if compiled is None or 2 not in suites_of(compiled):
        return None
    keys = keys or {}
    ek, ak, kek = keys.get("suite2_ek"), keys.get("suite2_ak"), keys.get("suite2_kek")
    if kek is None and ek is None and ak is None:
        kek = DEMO_KEK2
    return suite12.Suite2Keys(store, ek or DEMO_EK2, ak or DEMO_AK2, kek)
