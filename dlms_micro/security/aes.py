# AES-128 block cipher in pure Python (FIPS-197), for boards without
# cryptolib and for the portable tests.
#
# Encryption is the hot path (GCM's CTR mode and tag): one 16-byte block is
# encrypted in place in a bytearray at an offset and allocates nothing on
# MicroPython. Every intermediate value stays below 2**30 (MicroPython's small
# int range): the state is eight 16-bit halves of the four columns, and one
# round of SubBytes + ShiftRows + MixColumns for one column is four lookups per
# half in four 256-entry tables of 16-bit values (the classic T-table split in
# two halves). Decryption (only RFC 3394 key unwrap needs it) works byte by
# byte and is neither fast nor allocation-free.
#
# Memory: the four 16-bit tables (2 KB) and the S-box are built once at
# import; a key schedule is 88 halves + 176 bytes per Aes instance.

from array import array

# --- tables (FIPS-197 5.1.1: S-box = affine map of the inverse in GF(2^8))


def _xtime(a):
    # a * x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1
    a <<= 1
    if a & 0x100:
        a ^= 0x11B
    return a


def _build_sbox():
    # Walk the powers of the generator 3 to get logs and antilogs, then
    # S(x) = affine(x^-1), S(0) = 0x63.
    exp = bytearray(256)
    log = bytearray(256)
    v = 1
    for i in range(255):
        exp[i] = v
        log[v] = i
        v ^= _xtime(v)  # v * 3
    sbox = bytearray(256)
    for x in range(256):
        b = exp[(255 - log[x]) % 255] if x else 0
        r = b ^ 0x63
        for k in range(1, 5):
            r ^= ((b << k) | (b >> (8 - k))) & 0xFF
        sbox[x] = r
    return bytes(sbox)


SBOX = _build_sbox()

# Column output as two halves: for s = S(a), a the byte from row 0..3 of the
# ShiftRows'd column, MixColumns contributes
#   row 0: high (2s, s)  low (s, 3s)      P and R
#   row 1: high (3s, 2s) low (s, s)       Q and U
#   row 2: high (s, 3s)  low (2s, s)      R and P
#   row 3: high (s, s)   low (3s, 2s)     U and Q
# (built from range: an array made from a bytes object takes twice its size
# in RAM on MicroPython 1.27)
_P = array("H", range(256))
_Q = array("H", range(256))
_R = array("H", range(256))
_U = array("H", range(256))


def _build_halves():
    for x in range(256):
        s = SBOX[x]
        s2 = _xtime(s)
        s3 = s2 ^ s
        _P[x] = (s2 << 8) | s
        _Q[x] = (s3 << 8) | s2
        _R[x] = (s << 8) | s3
        _U[x] = (s << 8) | s


_build_halves()

_RCON = b"\x01\x02\x04\x08\x10\x20\x40\x80\x1b\x36"


def expand_key(key, koff, ek, rk):
    # FIPS-197 5.2: the 44 words of the AES-128 schedule as 176 bytes into
    # ek (bytearray(176)), and as 88 big-endian 16-bit halves into rk
    # (array('H', 88)).
    for i in range(16):
        ek[i] = key[koff + i]
    S = SBOX
    for w in range(4, 44):
        p = 4 * w
        q = p - 4
        t0 = ek[q]
        t1 = ek[q + 1]
        t2 = ek[q + 2]
        t3 = ek[q + 3]
        if w & 3 == 0:
            # RotWord, SubWord, Rcon
            t0, t1, t2, t3 = S[t1] ^ _RCON[(w >> 2) - 1], S[t2], S[t3], S[t0]
        r = p - 16
        ek[p] = ek[r] ^ t0
        ek[p + 1] = ek[r + 1] ^ t1
        ek[p + 2] = ek[r + 2] ^ t2
        ek[p + 3] = ek[r + 3] ^ t3
    for j in range(88):
        rk[j] = (ek[2 * j] << 8) | ek[2 * j + 1]


def encrypt_block(ek, rk, buf, o):
    # Encrypt buf[o:o+16] in place under the schedule (ek, rk).
    P = _P
    Q = _Q
    R = _R
    U = _U
    # round 0: AddRoundKey; column c is (h_c, l_c) = rows (0,1), (2,3)
    h0 = ((buf[o] << 8) | buf[o + 1]) ^ rk[0]
    l0 = ((buf[o + 2] << 8) | buf[o + 3]) ^ rk[1]
    h1 = ((buf[o + 4] << 8) | buf[o + 5]) ^ rk[2]
    l1 = ((buf[o + 6] << 8) | buf[o + 7]) ^ rk[3]
    h2 = ((buf[o + 8] << 8) | buf[o + 9]) ^ rk[4]
    l2 = ((buf[o + 10] << 8) | buf[o + 11]) ^ rk[5]
    h3 = ((buf[o + 12] << 8) | buf[o + 13]) ^ rk[6]
    l3 = ((buf[o + 14] << 8) | buf[o + 15]) ^ rk[7]
    # rounds 1..8, two per pass: (h, l) -> (g, m) -> (h, l). Output column c
    # takes row r from input column c + r (ShiftRows).
    for i in range(8, 72, 16):
        a = h0 >> 8
        b = h1 & 255
        c = l2 >> 8
        d = l3 & 255
        g0 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i]
        m0 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 1]
        a = h1 >> 8
        b = h2 & 255
        c = l3 >> 8
        d = l0 & 255
        g1 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 2]
        m1 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 3]
        a = h2 >> 8
        b = h3 & 255
        c = l0 >> 8
        d = l1 & 255
        g2 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 4]
        m2 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 5]
        a = h3 >> 8
        b = h0 & 255
        c = l1 >> 8
        d = l2 & 255
        g3 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 6]
        m3 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 7]

        a = g0 >> 8
        b = g1 & 255
        c = m2 >> 8
        d = m3 & 255
        h0 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 8]
        l0 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 9]
        a = g1 >> 8
        b = g2 & 255
        c = m3 >> 8
        d = m0 & 255
        h1 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 10]
        l1 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 11]
        a = g2 >> 8
        b = g3 & 255
        c = m0 >> 8
        d = m1 & 255
        h2 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 12]
        l2 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 13]
        a = g3 >> 8
        b = g0 & 255
        c = m1 >> 8
        d = m2 & 255
        h3 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[i + 14]
        l3 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[i + 15]
    # round 9
    a = h0 >> 8
    b = h1 & 255
    c = l2 >> 8
    d = l3 & 255
    g0 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[72]
    m0 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[73]
    a = h1 >> 8
    b = h2 & 255
    c = l3 >> 8
    d = l0 & 255
    g1 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[74]
    m1 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[75]
    a = h2 >> 8
    b = h3 & 255
    c = l0 >> 8
    d = l1 & 255
    g2 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[76]
    m2 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[77]
    a = h3 >> 8
    b = h0 & 255
    c = l1 >> 8
    d = l2 & 255
    g3 = P[a] ^ Q[b] ^ R[c] ^ U[d] ^ rk[78]
    m3 = R[a] ^ U[b] ^ P[c] ^ Q[d] ^ rk[79]
    # round 10: SubBytes, ShiftRows, AddRoundKey (last 16 schedule bytes)
    S = SBOX
    buf[o] = S[g0 >> 8] ^ ek[160]
    buf[o + 1] = S[g1 & 255] ^ ek[161]
    buf[o + 2] = S[m2 >> 8] ^ ek[162]
    buf[o + 3] = S[m3 & 255] ^ ek[163]
    buf[o + 4] = S[g1 >> 8] ^ ek[164]
    buf[o + 5] = S[g2 & 255] ^ ek[165]
    buf[o + 6] = S[m3 >> 8] ^ ek[166]
    buf[o + 7] = S[m0 & 255] ^ ek[167]
    buf[o + 8] = S[g2 >> 8] ^ ek[168]
    buf[o + 9] = S[g3 & 255] ^ ek[169]
    buf[o + 10] = S[m0 >> 8] ^ ek[170]
    buf[o + 11] = S[m1 & 255] ^ ek[171]
    buf[o + 12] = S[g3 >> 8] ^ ek[172]
    buf[o + 13] = S[g0 & 255] ^ ek[173]
    buf[o + 14] = S[m1 >> 8] ^ ek[174]
    buf[o + 15] = S[m2 & 255] ^ ek[175]


# --- decryption (FIPS-197 5.3, the straightforward inverse cipher)

_inv = None  # inverse S-box and InvMixColumns products, built on first use


def _inverse_tables():
    global _inv
    if _inv is None:
        t = bytearray(256 * 5)
        for x in range(256):
            t[SBOX[x]] = x
            x2 = _xtime(x)
            x4 = _xtime(x2)
            x8 = _xtime(x4)
            t[256 + x] = x8 ^ x  # 9
            t[512 + x] = x8 ^ x2 ^ x  # 11
            t[768 + x] = x8 ^ x4 ^ x  # 13
            t[1024 + x] = x8 ^ x4 ^ x2  # 14
        _inv = t
    return _inv


def decrypt_block(ek, buf, o, st, rounds=10):
    # Decrypt buf[o:o+16] in place under the schedule ek; st: bytearray(16)
    # scratch. rounds 14: an AES-256 schedule (aes256.py).
    t = _inverse_tables()
    last = 16 * rounds
    for k in range(16):
        st[k] = buf[o + k] ^ ek[last + k]
    for rnd in range(rounds - 1, -1, -1):
        # InvShiftRows + InvSubBytes: row r of column c comes from c - r
        for c in range(4):
            for r in range(4):
                buf[o + 4 * c + r] = t[st[4 * ((c - r) & 3) + r]]
        p = 16 * rnd
        for k in range(16):
            st[k] = buf[o + k] ^ ek[p + k]
        if rnd:
            for c in range(0, 16, 4):
                a0 = st[c]
                a1 = st[c + 1]
                a2 = st[c + 2]
                a3 = st[c + 3]
                st[c] = t[1024 + a0] ^ t[512 + a1] ^ t[768 + a2] ^ t[256 + a3]
                st[c + 1] = t[256 + a0] ^ t[1024 + a1] ^ t[512 + a2] ^ t[768 + a3]
                st[c + 2] = t[768 + a0] ^ t[256 + a1] ^ t[1024 + a2] ^ t[512 + a3]
                st[c + 3] = t[512 + a0] ^ t[768 + a1] ^ t[256 + a2] ^ t[1024 + a3]
    for k in range(16):
        buf[o + k] = st[k]
        st[k] = 0


class Aes:
    # One AES-128 key: the block-cipher backend "pure" (see backend.py).
    name = "pure"

    def __init__(self, key=None):
        self.ek = bytearray(176)
        self.rk = array("H", range(88))
        self._st = bytearray(16)
        if key is not None:
            self.set_key(key)

    def set_key(self, key, off=0):
        if len(key) - off < 16:
            raise ValueError("AES-128 key needs 16 bytes")
        expand_key(key, off, self.ek, self.rk)

    def encrypt_block(self, buf, off):
        encrypt_block(self.ek, self.rk, buf, off)

    def decrypt_block(self, buf, off):
        decrypt_block(self.ek, buf, off, self._st)

    def wipe(self):
        # forget the key schedule
        ek = self.ek
        rk = self.rk
        for i in range(176):
            ek[i] = 0
        for i in range(88):
            rk[i] = 0
