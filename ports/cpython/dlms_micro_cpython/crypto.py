# The `cryptography` package as dlms_micro's AES backend on CPython.
#
# Importing this module registers the backend "cryptography" as the preferred
# one (security.backend.new() and security.gcm.new() then use it); the
# portable "pure" backend stays selectable with backend.select("pure").
#   CryptographyAes: the block-cipher backend (AES-128 ECB per key)
#   CryptographyGcm: a whole-operation AES-GCM with the API of
#                    dlms_micro.security.gcm.Gcm (AESGCM for encryption, the
#                    GCM decryptor with a truncated tag for decryption)
# CPython allocates anyway; these are about speed and a second opinion in the
# tests, not about the heap.

from hmac import compare_digest

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from dlms_micro.security import backend

NAME = "cryptography"


class CryptographyAes:
    name = NAME

    def __init__(self):
        self._enc = None
        self._dec = None

    def set_key(self, key, off=0):
        if len(key) - off < 16:
            raise ValueError("AES-128 key needs 16 bytes")
        cipher = Cipher(algorithms.AES(bytes(key[off : off + 16])), modes.ECB())
        self._enc = cipher.encryptor()
        self._dec = cipher.decryptor()

    def encrypt_block(self, buf, off):
        buf[off : off + 16] = self._enc.update(bytes(buf[off : off + 16]))

    def decrypt_block(self, buf, off):
        buf[off : off + 16] = self._dec.update(bytes(buf[off : off + 16]))

    def wipe(self):
        self._enc = None
        self._dec = None


class CryptographyGcm:
    # Same calls and results as gcm.Gcm (see there).
    tables = 0

    def __init__(self, key_len=16):
        # key_len 32: AES-GCM-256 (security suite 2)
        self.key_len = key_len
        self._key = None
        self._aead = None
        self.has_key = False

    def set_key(self, key, off=0):
        n = self.key_len
        if len(key) - off < n:
            raise ValueError("AES-%d key needs %d bytes" % (8 * n, n))
        self._key = bytes(key[off : off + n])
        self._aead = AESGCM(self._key)
        self.has_key = True

    def wipe(self):
        self._key = None
        self._aead = None
        self.has_key = False

    def encrypt(self, iv, iv_off, aad, aad_s, aad_e, buf, s, e, tag, tag_off, tag_len=12,
                aad2=None, aad2_s=0, aad2_e=0):
        # (the per-request path: checks and conversions inline, issue 16)
        if tag_len < 4 or tag_len > 16 or s > e or aad_s > aad_e or aad2_s > aad2_e:
            raise ValueError("bad GCM range or tag length")
        aead = self._aead
        if aead is None:
            raise ValueError("Gcm without a key")
        a = aad[aad_s:aad_e]  # slices (copies) go to AESGCM as they are
        if aad2 is not None:
            a = bytes(a) + bytes(aad2[aad2_s:aad2_e])
        out = aead.encrypt(iv[iv_off : iv_off + 12], buf[s:e], a)
        n = e - s
        if n:
            buf[s:e] = out[:n]
        tag[tag_off : tag_off + tag_len] = out[n : n + tag_len]

    def decrypt(self, iv, iv_off, aad, aad_s, aad_e, buf, s, e, tag, tag_off, tag_len=12,
                aad2=None, aad2_s=0, aad2_e=0):
        # With the key's one AESGCM object, no Cipher context per call
        # (building a GCM decryptor took ~40 us, an AESGCM call ~2.5 us).
        # AESGCM only checks whole 16-byte tags, DLMS sends 12, so: GCM
        # encryption XORs its input with the IV's keystream, which turns
        # the ciphertext into the plaintext; encrypting that plaintext
        # gives the ciphertext back with its full tag, whose first tag_len
        # bytes are compared (in constant time) with the tag received.
        # buf is changed only when the tag is right.
        if tag_len < 4 or tag_len > 16 or s > e or aad_s > aad_e or aad2_s > aad2_e:
            raise ValueError("bad GCM range or tag length")
        aead = self._aead
        if aead is None:
            raise ValueError("Gcm without a key")
        nonce = iv[iv_off : iv_off + 12]
        a = aad[aad_s:aad_e]  # slices (copies) go to AESGCM as they are
        if aad2 is not None:
            a = bytes(a) + bytes(aad2[aad2_s:aad2_e])
        n = e - s
        if n:
            plain = aead.encrypt(nonce, buf[s:e], None)[:n]
            full = aead.encrypt(nonce, plain, a)
        else:
            plain = b""
            full = aead.encrypt(nonce, b"", a)
        if not compare_digest(full[n : n + tag_len], tag[tag_off : tag_off + tag_len]):
            return False
        if n:
            buf[s:e] = plain
        return True

    def gmac(self, iv, iv_off, aad, aad_s, aad_e, tag, tag_off, tag_len=12,
             aad2=None, aad2_s=0, aad2_e=0):
        self.encrypt(iv, iv_off, aad, aad_s, aad_e, tag, 0, 0, tag, tag_off, tag_len,
                     aad2, aad2_s, aad2_e)

    def gmac_ok(self, iv, iv_off, aad, aad_s, aad_e, tag, tag_off, tag_len=12,
                aad2=None, aad2_s=0, aad2_e=0):
        return self.decrypt(iv, iv_off, aad, aad_s, aad_e, tag, 0, 0, tag, tag_off, tag_len,
                            aad2, aad2_s, aad2_e)


def install(first=True):
    # Register "cryptography" (done on import); first: make it the default.
    backend.register(NAME, CryptographyAes, first=first, gcm=CryptographyGcm)
    from dlms_micro_cpython import crypto_ecc  # suites 1 and 2: ECDSA, ECDH, GCM-256

    crypto_ecc.install()


install()
