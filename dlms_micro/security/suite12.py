# Security suites 1 and 2 on the meter's side: the HLS mechanisms 6
# (HLS-SHA256) and 7 (HLS-ECDSA) of an association, and the signing
# material they use (Green Book 9.2.7.4, "HLS authentication mechanisms";
# the curves and hashes in ecc.py and sha2.py).
#
# HLS pass 3/4 (reply_to_HLS_authentication of Association LN). With
# StoC/CtoS the challenges of the AARE/AARQ and ST-C/ST-S the client and
# server system titles:
#   mechanism 6  client f(StoC) = SHA-256(HLS secret || ST-C || ST-S || StoC || CtoS)
#                server f(CtoS) = SHA-256(HLS secret || ST-S || ST-C || CtoS || StoC)
#   mechanism 7  client f(StoC) = ECDSA signature (r || s) of ST-C || ST-S || StoC || CtoS
#                       with the client's signing key, checked with its public key
#                server f(CtoS) = ECDSA signature of ST-S || ST-C || CtoS || StoC
#                       with the meter's signing key
# The curve and hash are the association's security suite's (1: P-256 and
# SHA-256, 2: P-384 and SHA-384).
#
# Refusals (the hook returns None; Association LN then drops the association
# and answers read-write-denied, and the server counts a failed
# authentication) carry a log line saying why: an f(StoC) of the wrong
# length, a wrong hash, a signature that does not verify, no public key for
# the client's system title, no signing key on the meter. No secret, private
# key or challenge is logged.

from dlms_micro.security import ecc, sha2

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


MECH_HLS_SHA256 = const(6)
MECH_HLS_ECDSA = const(7)
CHALLENGE_LEN = const(32)  # the meter's StoC for mechanisms 6 and 7


class Signing:
    # The meter's signing material for one security suite (1 or 2): its own
    # signing key pair (an ecc.KeyPair on the suite's curve) and the public
    # signing keys of the clients it accepts, by client system title (x || y).
    # A port sets it on the meter (meter.signing = Signing(...)); a
    # certificate store (ports) may fill client_keys from certificates it
    # checked.
    # general-ciphering with an agreed key (security/gcipher.py) also wants
    # the meter's static key agreement key pair (agreement_pair, same curve)
    # and the clients' static key agreement public keys, by system title.
    def __init__(self, key_pair, client_keys=None, agreement_pair=None, client_agreement_keys=None):
        self.key_pair = key_pair
        self.curve = key_pair.curve
        self.suite = key_pair.curve.suite
        self.client_keys = {}
        if client_keys:
            for title in client_keys:
                self.add_client_key(title, client_keys[title])
        if agreement_pair is not None and agreement_pair.curve is not self.curve:
            raise ecc.EccError("key agreement key on %s, signing key on %s" % (agreement_pair.curve.name, self.curve.name))
        self.agreement_pair = agreement_pair
        self.client_agreement_keys = {}
        if client_agreement_keys:
            for title in client_agreement_keys:
                self.add_client_agreement_key(title, client_agreement_keys[title])

    def add_client_key(self, title, public):
        # Accept the client with system title `title` (8 bytes) and signing
        # public key `public` (x || y, checked to be on the curve).
        if len(title) != 8:
            raise ecc.EccError("client system title of %d bytes, 8 expected" % len(title))
        ecc.check_public_key(self.curve, public)
        self.client_keys[bytes(title)] = bytes(public)

    def client_key(self, title):
        return self.client_keys.get(bytes(title))

    def add_client_agreement_key(self, title, public):
        # the static key agreement public key (x || y) of the client `title`
        if len(title) != 8:
            raise ecc.EccError("client system title of %d bytes, 8 expected" % len(title))
        ecc.check_public_key(self.curve, public)
        self.client_agreement_keys[bytes(title)] = bytes(public)

    def client_agreement_key(self, title):
        return self.client_agreement_keys.get(bytes(title))

    def __repr__(self):
        return "<Signing suite %d, %d client keys>" % (self.suite, len(self.client_keys))


def sha256_f(secret, title_a, title_b, ch_a, ch_b):
    # SHA-256(secret || title_a || title_b || ch_a || ch_b): f(StoC) when a is
    # the client, f(CtoS) when a is the meter
    return sha2.digest("sha256", secret, title_a, title_b, ch_a, ch_b)


def _same(a, b):
    # constant-time equality of two byte strings of public lengths
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


class HlsError(Exception):
    pass


def hls_reply(mechanism, answer, secret, signing, client_title, server_title, stoc, ctos, suite=1):
    # Check the client's f(StoC) (answer, bytes) and return the meter's
    # f(CtoS); raise HlsError saying why it is refused.
    if client_title is None or len(client_title) != 8:
        raise HlsError("no client system title (calling-AP-title) for HLS mechanism %d" % mechanism)
    if mechanism == MECH_HLS_SHA256:
        if not secret:
            raise HlsError("HLS-SHA256 without an HLS secret")
        if len(answer) != 32:
            raise HlsError("HLS-SHA256 f(StoC) of %d bytes, 32 expected" % len(answer))
        if not _same(answer, sha256_f(secret, client_title, server_title, stoc, ctos)):
            raise HlsError("HLS-SHA256 f(StoC) does not match")
        return sha256_f(secret, server_title, client_title, ctos, stoc)
    if mechanism == MECH_HLS_ECDSA:
        if signing is None or not signing.key_pair.has_private():
            raise HlsError("HLS-ECDSA without a signing key on the meter")
        c = signing.curve
        if c.suite != suite:
            raise HlsError("HLS-ECDSA: the association's suite is %d, the meter's signing key is for suite %d"
                           % (suite, c.suite))
        if len(answer) != 2 * c.size:
            raise HlsError("HLS-ECDSA f(StoC) of %d bytes, %d expected (%s)" % (len(answer), 2 * c.size, c.name))
        pub = signing.client_key(client_title)
        if pub is None:
            raise HlsError("HLS-ECDSA: no public signing key for client system title %s" % _hex(client_title))
        if not ecc.verify_message(c, pub, answer, client_title, server_title, stoc, ctos):
            raise HlsError("HLS-ECDSA f(StoC) signature does not verify")
        return signing.key_pair.sign_message(server_title, client_title, ctos, stoc)
    raise HlsError("HLS mechanism %d not served here" % mechanism)


def _hex(b):
    return "".join(["%02X" % x for x in b])


class Suite2Keys:
    # The keys of security suite 2 (AES-GCM-256): the global unicast
    # encryption key and the authentication key, 32 bytes each, over the
    # meter's KeyStore for everything else (system title, security policy,
    # transmit and receive invocation counters: one transmit counter for all
    # the meter protects, so no IV repeats whichever key). Suite0 (with
    # key_len=32) reads it as it reads a KeyStore. The keys never appear in
    # repr() or messages. kek: the 32-byte master key (key encryption key)
    # of general-ciphering's wrapped-key and of key_transfer in a suite 2
    # association (AES-256 key wrap, RFC 3394), None: wrapped keys refused.
    def __init__(self, store, ek, ak, kek=None):
        if len(ek) != 32 or len(ak) != 32 or (kek is not None and len(kek) != 32):
            raise ValueError("suite 2 keys are 32 bytes")
        self._store = store
        self.ek = bytes(ek)
        self.ak = bytes(ak)
        self.kek = bytes(kek) if kek is not None else None
        self._pending = {}

    def stage(self, key_id, key):
        # a key agreed (Security setup key_agreement) or transferred
        # (key_transfer): EK (0), AK (2) or, transferred, the KEK (3), from
        # the next association on (activate())
        if (key_id != 0 and key_id != 2 and key_id != 3) or len(key) != 32:
            raise ValueError("suite 2: EK, AK or KEK of 32 bytes")
        self._pending[key_id] = bytes(key)

    def activate(self):
        # a new association: staged keys become the keys (RAM only: a restart
        # goes back to the configured ones)
        p = self._pending
        if 0 in p:
            self.ek = p[0]
        if 2 in p:
            self.ak = p[2]
        if 3 in p:
            self.kek = p[3]
        self._pending = {}

    def __getattr__(self, name):
        return getattr(self._store, name)

    def __repr__(self):
        return "<Suite2Keys>"
