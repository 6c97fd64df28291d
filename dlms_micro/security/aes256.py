# AES-256 (FIPS-197, 14 rounds) for security suite 2: the block-cipher
# backend "pure256" with the API of aes.Aes (set_key takes 32 bytes), built
# on aes.py's tables (the 16-bit T-table halves, all small ints: nothing
# allocates per block on MicroPython). AES-GCM-256 is gcm.Gcm over it
# (new_gcm()), the RFC 3394 key wrap with a 256-bit KEK keywrap.wrap/unwrap
# with cipher=Aes256().
#
# A port with a faster AES-256 (CPython: `cryptography`) registers a whole-
# operation GCM maker with register_gcm(); new_gcm() prefers it.

from array import array

from dlms_micro.security import aes as _aes
from dlms_micro.security import gcm as _gcm

KEY_LEN = 32
_ROUNDS = 14
_SCHED = 16 * (_ROUNDS + 1)  # 240 bytes


def expand_key(key, koff, ek, rk):
    # FIPS-197 5.2 with Nk = 8: 60 words as 240 bytes in ek, as 120 16-bit
    # halves in rk.
    for i in range(32):
        ek[i] = key[koff + i]
    S = _aes.SBOX
    rcon = _aes._RCON
    for w in range(8, 60):
        p = 4 * w
        q = p - 4
        t0 = ek[q]
        t1 = ek[q + 1]
        t2 = ek[q + 2]
        t3 = ek[q + 3]
        if w & 7 == 0:
            t0, t1, t2, t3 = S[t1] ^ rcon[(w >> 3) - 1], S[t2], S[t3], S[t0]
        elif w & 7 == 4:
            t0, t1, t2, t3 = S[t0], S[t1], S[t2], S[t3]
        r = p - 32
        ek[p] = ek[r] ^ t0
        ek[p + 1] = ek[r + 1] ^ t1
        ek[p + 2] = ek[r + 2] ^ t2
        ek[p + 3] = ek[r + 3] ^ t3
    for j in range(_SCHED // 2):
        rk[j] = (ek[2 * j] << 8) | ek[2 * j + 1]


def encrypt_block(ek, rk, buf, o, st):
    # Encrypt buf[o:o+16] in place; st: array('H', 8) scratch holding the
    # state as (high, low) halves of the four columns.
    P = _aes._P
    Q = _aes._Q
    R = _aes._R
    U = _aes._U
    for c in range(4):
        st[2 * c] = ((buf[o + 4 * c] << 8) | buf[o + 4 * c + 1]) ^ rk[2 * c]
        st[2 * c + 1] = ((buf[o + 4 * c + 2] << 8) | buf[o + 4 * c + 3]) ^ rk[2 * c + 1]
    for rnd in range(1, _ROUNDS):
        h0 = st[0]
        l0 = st[1]
        h1 = st[2]
        l1 = st[3]
        h2 = st[4]
        l2 = st[5]
        h3 = st[6]
        l3 = st[7]
        i = 8 * rnd
        a = h0 >> 8
        b = h1 & 255
        c = l2 >> 8
        d = l3 & 255
        st[0] = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i]
        st[1] = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 1]
        a = h1 >> 8
        b = h2 & 255
        c = l3 >> 8
        d = l0 & 255
        st[2] = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 2]
        st[3] = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 3]
        a = h2 >> 8
        b = h3 & 255
        c = l0 >> 8
        d = l1 & 255
        st[4] = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 4]
        st[5] = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 5]
        a = h3 >> 8
        b = h0 & 255
        c = l1 >> 8
        d = l2 & 255
        st[6] = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 6]
        st[7] = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 7]
    # last round: SubBytes, ShiftRows, AddRoundKey
    S = _aes.SBOX
    k = 16 * _ROUNDS
    for c in range(4):
        h = st[2 * ((c) & 3)] >> 8
        buf[o + 4 * c] = S[h] ^ ek[k + 4 * c]
        buf[o + 4 * c + 1] = S[st[2 * ((c + 1) & 3)] & 255] ^ ek[k + 4 * c + 1]
        buf[o + 4 * c + 2] = S[st[2 * ((c + 2) & 3) + 1] >> 8] ^ ek[k + 4 * c + 2]
        buf[o + 4 * c + 3] = S[st[2 * ((c + 3) & 3) + 1] & 255] ^ ek[k + 4 * c + 3]
    for j in range(8):
        st[j] = 0


class Aes256:
    # One AES-256 key, the backend API of aes.Aes.
    name = "pure256"

    def __init__(self, key=None):
        self.ek = bytearray(_SCHED)
        self.rk = array("H", range(_SCHED // 2))
        self._h = array("H", range(8))
        self._st = bytearray(16)
        if key is not None:
            self.set_key(key)

    def set_key(self, key, off=0):
        if len(key) - off < KEY_LEN:
            raise ValueError("AES-256 key needs 32 bytes")
        expand_key(key, off, self.ek, self.rk)

    def encrypt_block(self, buf, off):
        encrypt_block(self.ek, self.rk, buf, off, self._h)

    def decrypt_block(self, buf, off):
        _aes.decrypt_block(self.ek, buf, off, self._st, _ROUNDS)

    def wipe(self):
        ek = self.ek
        rk = self.rk
        for i in range(_SCHED):
            ek[i] = 0
        for i in range(_SCHED // 2):
            rk[i] = 0


_gcm_maker = None


def register_gcm(maker):
    # maker() -> an AES-GCM-256 object with gcm.Gcm's API (set_key: 32 bytes)
    global _gcm_maker
    _gcm_maker = maker


def new_gcm(tables=4, pure=False):
    # An AES-GCM-256 object: the registered one, else gcm.Gcm over Aes256.
    if _gcm_maker is not None and not pure:
        return _gcm_maker()
    return _gcm.Gcm(Aes256(), tables)
