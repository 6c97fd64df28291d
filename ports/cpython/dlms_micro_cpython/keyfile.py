# The key file of `dlms-micro serve --keys FILE`: the meter's security suite 0
# keys (and optionally its system title) as JSON with hex strings.
#
#   {
#     "ek":  "000102030405060708090A0B0C0D0E0F",   global unicast encryption key
#     "ak":  "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",   authentication key
#     "kek": "...32 hex digits...",                master key (key_transfer)
#     "system_title": "444D4900 00BC614E"          optional, 8 bytes
#     "signing_keys": {"1": "...64 hex digits...",    optional: the meter's
#                      "2": "...96 hex digits..."},   ECDSA private keys, suites 1/2
#     "client_signing_keys": {"4755525558484553": "...x || y, 128 or 192 hex..."}
#                                                  optional: clients' public keys
#     "agreement_keys": {"1": ...}, "client_agreement_keys": {...}
#                                                  optional: the same for the static
#                                                  key agreement keys (general-ciphering)
#     "suite2_ek": "...64 hex digits...",          optional: security suite 2's
#     "suite2_ak": "...64 hex digits...",          AES-256 EK and AK
#     "suite2_kek": "...64 hex digits...",         optional: suite 2's master key
#                                                  (wrapped keys, key_transfer)
#     "token_key": "...32 hex digits...",          optional: the prepayment Token
#                                                  gateway's key (tokens)
#     "ca_certificate": "-----BEGIN CERTIFICATE-----..."  optional: the CA
#                        (PEM text, or the DER in hex) whose certificates
#                        Security setup import_certificate accepts
#   }
#
# The keys are stored in the meter's data directory (DemoMeter(keys=...)),
# so they stay when the meter next starts without the file; the system
# title applies only while the file is given.
#
# ek, ak and kek are required (16 bytes each); hex digits may be upper or
# lower case, with spaces or colons between bytes. Any other member is an
# error (a typo must not silently leave a demo key in place).

import json

KEY_NAMES = ("ek", "ak", "kek")
_OPTIONAL = ("system_title", "signing_keys", "client_signing_keys", "agreement_keys", "client_agreement_keys",
             "suite2_ek", "suite2_ak", "suite2_kek", "token_key", "ca_certificate")


class KeyFileError(ValueError):
    """A key file that cannot be read or is not a valid one; the message
    names the fault, never a key's value."""


def _hex(text, name, size):
    if not isinstance(text, str):
        raise KeyFileError("%s: a hex string is needed" % name)
    digits = text.replace(" ", "").replace(":", "")
    try:
        b = bytes.fromhex(digits)
    except ValueError:
        raise KeyFileError("%s: not a hex string" % name) from None
    if len(b) != size:
        raise KeyFileError("%s: %d bytes needed, %d given" % (name, size, len(b)))
    return b


def client_public_keys(ck, member="client_signing_keys"):
    """A key file's "client_signing_keys" (also the fleet key file's) or
    "client_agreement_keys" member -> {title: x || y}; KeyFileError."""
    if not isinstance(ck, dict):
        raise KeyFileError("%s: an object of client system title -> public key" % member)
    pubs = {}
    for title, v in ck.items():
        name = "%s.%s" % (member, title)
        pub = _hex(v, name, 64) if isinstance(v, str) and len(v.replace(" ", "").replace(":", "")) == 128 \
            else _hex(v, name, 96)
        pubs[_hex(title, name + " (title)", 8)] = pub
    return pubs


def ca_certificate(ca):
    """A key file's "ca_certificate" member: the PEM text, or the DER
    bytes; KeyFileError."""
    if not isinstance(ca, str):
        raise KeyFileError("ca_certificate: PEM text or the DER in hex")
    if "-----BEGIN" in ca:
        return ca
    try:
        return bytes.fromhex(ca.replace(" ", "").replace(":", ""))
    except ValueError:
        raise KeyFileError("ca_certificate: PEM text or the DER in hex") from None


def parse(text):
    """A key file's contents (JSON text) -> ``{"ek": bytes, "ak": bytes,
    "kek": bytes, "system_title": bytes or None}``; KeyFileError for a
    missing or unknown member or a value of the wrong size."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise KeyFileError("not JSON: %s" % e) from None
    if not isinstance(doc, dict):
        raise KeyFileError("a JSON object is needed")
    unknown = sorted(set(doc) - set(KEY_NAMES) - set(_OPTIONAL))
    if unknown:
        raise KeyFileError("unknown member(s): %s" % ", ".join(unknown))
    out = {}
    for name in KEY_NAMES:
        if name not in doc:
            raise KeyFileError("%s is missing" % name)
        out[name] = _hex(doc[name], name, 16)
    t = doc.get("system_title")
    out["system_title"] = _hex(t, "system_title", 8) if t is not None else None
    for own, clients in (("signing_keys", "client_signing_keys"), ("agreement_keys", "client_agreement_keys")):
        sk = doc.get(own)
        if sk is not None:
            if not isinstance(sk, dict) or not set(sk) <= {"1", "2"}:
                raise KeyFileError('%s: an object with members "1" and/or "2"' % own)
            out[own] = {int(s): _hex(v, "%s.%s" % (own, s), 32 if s == "1" else 48) for s, v in sk.items()}
        ck = doc.get(clients)
        if ck is not None:
            out[clients] = client_public_keys(ck, clients)
    for name in ("suite2_ek", "suite2_ak", "suite2_kek"):
        if doc.get(name) is not None:
            out[name] = _hex(doc[name], name, 32)
    if doc.get("token_key") is not None:
        out["token_key"] = _hex(doc["token_key"], "token_key", 16)
    ca = doc.get("ca_certificate")
    if ca is not None:
        out["ca_certificate"] = ca_certificate(ca)
    return out


def load(path):
    """The key file at path, parsed (see parse()); KeyFileError names the
    file and the fault."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise KeyFileError("cannot read %s: %s" % (path, e.strerror or e)) from None
    try:
        return parse(text)
    except KeyFileError as e:
        raise KeyFileError("%s: %s" % (path, e)) from None
