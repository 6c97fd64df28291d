# general-signing (Green Book 9.5, xDLMS APDU [223], tag DF): an APDU (plain
# or ciphered) carried with the signature of its originator, for security
# suites 1 and 2.
#
#   DF  transaction-id            OCTET STRING
#       originator-system-title   OCTET STRING
#       recipient-system-title    OCTET STRING
#       date-time                 OCTET STRING (0 or 12 bytes)
#       other-information         OCTET STRING
#       content                   OCTET STRING  the APDU signed
#       signature                 OCTET STRING  r || s (64 / 96 bytes)
# Each OCTET STRING is A-XDR: a length (1 byte < 0x80, or 81 nn, 82 nnnn)
# and the bytes. The signature is ECDSA with the suite's curve and hash
# over every byte from the tag DF to the end of the content field.
#
# Not a hot path: parse() reads in place (offsets), build() writes into the
# caller's buffer; signing itself allocates (ecc.py).

from dlms_micro.app.acse import _put_len  # A-XDR lengths: the same 1-3 byte forms
from dlms_micro.axdr import length_at
from dlms_micro.errors import DlmsError
from dlms_micro.security import ecc

GENERAL_SIGNING = 0xDF
FIELDS = 7


class SigningError(DlmsError):
    pass


def _len(buf, p, e):
    # (length, offset of the bytes)
    n, q = length_at(buf, p, e)
    if n < 0:
        if p >= e:
            raise SigningError("general-signing truncated at offset %d" % p)
        raise SigningError("general-signing: bad length 0x%02x at offset %d" % (buf[p], p))
    return n, q


class Signed:
    # A parsed general-signing APDU: off[i], length[i] of field i (0
    # transaction-id .. 6 signature) in buf; signed_end: where the
    # signature field starts (the signed bytes are buf[start:signed_end]).
    def __init__(self):
        self.off = [0] * FIELDS
        self.length = [0] * FIELDS
        self.start = 0
        self.signed_end = 0
        self.buf = None

    def parse(self, buf, s, e):
        if e - s < 1 + FIELDS or buf[s] != GENERAL_SIGNING:
            raise SigningError("not a general-signing APDU")
        p = s + 1
        for i in range(FIELDS):
            if i == FIELDS - 1:
                self.signed_end = p
            n, q = _len(buf, p, e)
            if q + n > e:
                raise SigningError("general-signing field %d of %d bytes runs past the APDU" % (i, n))
            self.off[i] = q
            self.length[i] = n
            p = q + n
        if p != e:
            raise SigningError("%d stray bytes after the general-signing signature" % (e - p))
        self.buf = buf
        self.start = s
        return self

    def field(self, i):
        o = self.off[i]
        return bytes(self.buf[o : o + self.length[i]])

    def verify(self, curve, public):
        # True if the signature is the holder of `public`'s over the APDU
        sig = self.field(6)
        return ecc.verify_message(curve, public, sig, bytes(self.buf[self.start : self.signed_end]))


def _put(out, o, src):
    o = _put_len(out, o, len(src))
    for i in range(len(src)):
        out[o + i] = src[i]
    return o + len(src)


def size(fields_len, content_len, curve):
    # bytes of a general-signing APDU with these field lengths (upper bound)
    return 1 + 3 * FIELDS + fields_len + content_len + 2 * curve.size


def build(out, o, lim, key_pair, transaction_id, originator, recipient, date_time, other, content):
    # general-signing of `content` (bytes) signed with key_pair (ecc.KeyPair)
    # at out[o:lim]; returns the end.
    need = size(len(transaction_id) + len(originator) + len(recipient) + len(date_time) + len(other),
                len(content), key_pair.curve)
    if o + need > lim or o + need > len(out):
        raise SigningError("general-signing of %d bytes does not fit at offset %d" % (need, o))
    out[o] = GENERAL_SIGNING
    p = o + 1
    for f in (transaction_id, originator, recipient, date_time, other, content):
        p = _put(out, p, f)
    sig = key_pair.sign_message(bytes(out[o:p]))
    return _put(out, p, sig)
