# AES key wrap (RFC 3394), as DLMS Security Setup key_transfer uses it: a
# 16-byte key wrapped with the 16-byte KEK (master key) is 24 bytes. Not a hot
# path; small allocations are fine here.
#
#   wrap(kek, key) -> bytes            len(key) a multiple of 8, >= 16
#   unwrap(kek, wrapped) -> bytes | None
# unwrap returns None when the data is not a valid wrap under this KEK (wrong
# integrity check value, or a length that is no wrap): never the bad key
# material. Both take an optional backend object (cipher=) to run on; without
# it they make one with backend.new() and wipe it afterwards.

from dlms_micro.security import backend as _backend

_ICV = b"\xa6\xa6\xa6\xa6\xa6\xa6\xa6\xa6"  # RFC 3394 2.2.3.1 default IV


def _cipher_for(kek, cipher):
    if cipher is None:
        cipher = _backend.new()
    cipher.set_key(kek)
    return cipher


def _xor_t(b, t):
    # b[4:8] ^= t (t < 2**32, big-endian, in A's last bytes)
    b[7] ^= t & 255
    b[6] ^= (t >> 8) & 255
    b[5] ^= (t >> 16) & 255
    b[4] ^= (t >> 24) & 255


def wrap(kek, key, cipher=None):
    # RFC 3394 2.2.1, index-based form: A = ICV; for j in 0..5, i in 1..n:
    # B = AES(K, A | R[i]); A = MSB64(B) ^ t, t = n*j + i; R[i] = LSB64(B).
    m = len(key)
    if m < 16 or m & 7:
        raise ValueError("key wrap needs a multiple of 8 bytes, at least 16")
    n = m >> 3
    own = cipher is None
    c = _cipher_for(kek, cipher)
    r = bytearray(8 + m)  # A || R[1..n]
    r[0:8] = _ICV
    r[8:] = key
    b = bytearray(16)
    for j in range(6):
        for i in range(1, n + 1):
            p = 8 * i
            for k in range(8):
                b[k] = r[k]
                b[8 + k] = r[p + k]
            c.encrypt_block(b, 0)
            _xor_t(b, n * j + i)
            for k in range(8):
                r[k] = b[k]
                r[p + k] = b[8 + k]
    _clear(b)
    if own:
        c.wipe()
    out = bytes(r)
    _clear(r)
    return out


def unwrap(kek, wrapped, cipher=None):
    # RFC 3394 2.2.2: the inverse, then the integrity check A == ICV.
    m = len(wrapped)
    if m < 24 or m & 7:
        return None
    n = (m >> 3) - 1
    own = cipher is None
    c = _cipher_for(kek, cipher)
    r = bytearray(wrapped)
    b = bytearray(16)
    for j in range(5, -1, -1):
        for i in range(n, 0, -1):
            p = 8 * i
            for k in range(8):
                b[k] = r[k]
                b[8 + k] = r[p + k]
            _xor_t(b, n * j + i)
            c.decrypt_block(b, 0)
            for k in range(8):
                r[k] = b[k]
                r[p + k] = b[8 + k]
    _clear(b)
    if own:
        c.wipe()
    bad = 0
    for k in range(8):
        bad |= r[k] ^ 0xA6
    if bad:
        _clear(r)
        return None
    out = bytes(r[8:])
    _clear(r)
    return out


def _clear(b):
    for i in range(len(b)):
        b[i] = 0
