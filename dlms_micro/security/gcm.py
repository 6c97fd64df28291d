# AES-GCM-128 (NIST SP 800-38D) over a block-cipher backend, as DLMS
# security suite 0 uses it: 96-bit IV (system title || invocation counter),
# tag truncated to 12 bytes (4..16 allowed), GMAC = GCM with an empty
# plaintext.
#
#   g = Gcm()                      # or Gcm(backend.new("pure"), tables=8)
#   g.set_key(key)                 # once per key: H = E(K, 0), GHASH tables
#   g.encrypt(iv, iv_off, aad, aad_s, aad_e, buf, s, e, tag, tag_off, 12)
#       buf[s:e] encrypted in place, tag written to tag[tag_off:tag_off+12]
#   g.decrypt(iv, iv_off, aad, aad_s, aad_e, buf, s, e, tag, tag_off, 12)
#       -> True: buf[s:e] decrypted in place; False: the tag is wrong and
#       buf is untouched (the tag is checked over the ciphertext first)
# The AAD is aad[aad_s:aad_e], optionally followed by aad2[aad2_s:aad2_e]
# (keywords): the two ranges are hashed as one string, so SC || AK || APDU
# needs no concatenation. The tag may lie in buf (e.g. right after e), but
# must not overlap buf[s:e] or the AAD. A short AAD (<= 32 bytes, one range)
# equal to the previous call's is not hashed again: the GHASH state after it
# is kept (suite 0's SC || AK repeats with every APDU of a key).
#
# Nothing here allocates per call on MicroPython (with the pure or cryptolib
# backend): scratch blocks are preallocated, every value is a small int.
#
# GHASH: the 128-bit values are eight 16-bit limbs (limb k = bytes 2k, 2k+1;
# GCM's reflected bit order: the first bit of a block is x^0). X * H is done
# 16 bits at a time, Horner's rule from the last limb (highest degrees):
#   Z = Z * x^16 + a_k * H
# Shifting by 16 bits moves limbs (free); the limb that falls off is folded
# back with x^128 = 1 + x + x^2 + x^7. a_k * H comes from precomputed tables
# of H multiples, per limb of the result:
#   tables=4 (default): one 64-entry table per limb, for the four nibbles
#            of a_k: 8 x 64 16-bit entries = 1 KB per key.
#   tables=8: two 256-entry tables per limb, for the high and the low byte
#            of a_k: 16 x 256 entries = 8 KB per key; GHASH 1.6x faster.
# Every intermediate stays below 2**30, so nothing allocates on MicroPython.

from array import array

from dlms_micro.security import backend as _backend


_ZERO16 = bytes(16)
_AAD_CACHE = 32  # longest AAD whose GHASH state is kept for the next call


def _zeros(n):
    # array('H') of n zeros (not array("H", bytes(2 * n)): on MicroPython 1.27
    # that takes twice the room)
    a = array("H", range(n))
    for i in range(n):
        a[i] = 0
    return a


def _times_x(v, o):
    # v[o:o+8] (limbs) *= x, in place
    carry = v[o + 7] & 1
    for k in range(o + 7, o, -1):
        v[k] = (v[k] >> 1) | ((v[k - 1] & 1) << 15)
    v[o] >>= 1
    if carry:
        v[o] ^= 0xE100  # x^128 = 1 + x + x^2 + x^7


def _multiples(h, nbits):
    # v[8i:8i+8] = H * x^i for i < nbits; h: the 16 bytes of H
    v = _zeros(8 * nbits)
    for k in range(8):
        v[k] = (h[2 * k] << 8) | h[2 * k + 1]
    for i in range(1, nbits):
        p = 8 * i
        for k in range(8):
            v[p + k] = v[p - 8 + k]
        _times_x(v, p)
    return v


def _fill(tabs, v, first, width, base):
    # For every limb k, tabs[k][base + n] = n * H * x^first for the `width`
    # bit values n (as a field element, n's top bit is x^0), by linearity:
    # n = bit j + smaller n.
    for j in range(width):
        bit = 1 << j
        p = 8 * (first + width - 1 - j)
        for k in range(8):
            t = tabs[k]
            x = v[p + k]
            for n in range(bit):
                t[base + bit + n] = t[base + n] ^ x


def _ghash8(t, z, src, p, n):
    # z[0:8] = GHASH state, updated with n blocks from src[p:]; z[8:16] is
    # scratch; t = (H0..H7, L0..L7) the byte tables.
    H0, H1, H2, H3, H4, H5, H6, H7, L0, L1, L2, L3, L4, L5, L6, L7 = t
    z0 = z[0]
    z1 = z[1]
    z2 = z[2]
    z3 = z[3]
    z4 = z[4]
    z5 = z[5]
    z6 = z[6]
    z7 = z[7]
    while n:
        n -= 1
        # X = Z xor block, as limbs (the last one kept in a local)
        z[8] = z0 ^ ((src[p] << 8) | src[p + 1])
        z[9] = z1 ^ ((src[p + 2] << 8) | src[p + 3])
        z[10] = z2 ^ ((src[p + 4] << 8) | src[p + 5])
        z[11] = z3 ^ ((src[p + 6] << 8) | src[p + 7])
        z[12] = z4 ^ ((src[p + 8] << 8) | src[p + 9])
        z[13] = z5 ^ ((src[p + 10] << 8) | src[p + 11])
        z[14] = z6 ^ ((src[p + 12] << 8) | src[p + 13])
        v = z7 ^ ((src[p + 14] << 8) | src[p + 15])
        p += 16
        # Z = a_7 * H
        a = v >> 8
        b = v & 255
        z0 = H0[a] ^ L0[b]
        z1 = H1[a] ^ L1[b]
        z2 = H2[a] ^ L2[b]
        z3 = H3[a] ^ L3[b]
        z4 = H4[a] ^ L4[b]
        z5 = H5[a] ^ L5[b]
        z6 = H6[a] ^ L6[b]
        z7 = H7[a] ^ L7[b]
        # Z = Z * x^16 + a_k * H, k = 6..0
        for k in range(14, 7, -1):
            v = z[k]
            a = v >> 8
            b = v & 255
            # z7 * x^128 reduced: z7 * (1 + x + x^2 + x^7), 23 bits
            r = (z7 << 8) ^ (z7 << 7) ^ (z7 << 6) ^ (z7 << 1)
            z7 = z6 ^ H7[a] ^ L7[b]
            z6 = z5 ^ H6[a] ^ L6[b]
            z5 = z4 ^ H5[a] ^ L5[b]
            z4 = z3 ^ H4[a] ^ L4[b]
            z3 = z2 ^ H3[a] ^ L3[b]
            z2 = z1 ^ H2[a] ^ L2[b]
            z1 = z0 ^ H1[a] ^ L1[b] ^ ((r & 255) << 8)
            z0 = (r >> 8) ^ H0[a] ^ L0[b]
    z[0] = z0
    z[1] = z1
    z[2] = z2
    z[3] = z3
    z[4] = z4
    z[5] = z5
    z[6] = z6
    z[7] = z7


def _ghash4(t, z, src, p, n):
    # As _ghash8 with t = (N0..N7): N_k[16i + n] = limb k of n * H * x^(4i),
    # i = the nibble's place in a 16-bit limb.
    N0, N1, N2, N3, N4, N5, N6, N7 = t
    z0 = z[0]
    z1 = z[1]
    z2 = z[2]
    z3 = z[3]
    z4 = z[4]
    z5 = z[5]
    z6 = z[6]
    z7 = z[7]
    while n:
        n -= 1
        z[8] = z0 ^ ((src[p] << 8) | src[p + 1])
        z[9] = z1 ^ ((src[p + 2] << 8) | src[p + 3])
        z[10] = z2 ^ ((src[p + 4] << 8) | src[p + 5])
        z[11] = z3 ^ ((src[p + 6] << 8) | src[p + 7])
        z[12] = z4 ^ ((src[p + 8] << 8) | src[p + 9])
        z[13] = z5 ^ ((src[p + 10] << 8) | src[p + 11])
        z[14] = z6 ^ ((src[p + 12] << 8) | src[p + 13])
        v = z7 ^ ((src[p + 14] << 8) | src[p + 15])
        p += 16
        a = v >> 12
        b = ((v >> 8) & 15) | 16
        c = ((v >> 4) & 15) | 32
        d = (v & 15) | 48
        z0 = N0[a] ^ N0[b] ^ N0[c] ^ N0[d]
        z1 = N1[a] ^ N1[b] ^ N1[c] ^ N1[d]
        z2 = N2[a] ^ N2[b] ^ N2[c] ^ N2[d]
        z3 = N3[a] ^ N3[b] ^ N3[c] ^ N3[d]
        z4 = N4[a] ^ N4[b] ^ N4[c] ^ N4[d]
        z5 = N5[a] ^ N5[b] ^ N5[c] ^ N5[d]
        z6 = N6[a] ^ N6[b] ^ N6[c] ^ N6[d]
        z7 = N7[a] ^ N7[b] ^ N7[c] ^ N7[d]
        for k in range(14, 7, -1):
            v = z[k]
            a = v >> 12
            b = ((v >> 8) & 15) | 16
            c = ((v >> 4) & 15) | 32
            d = (v & 15) | 48
            r = (z7 << 8) ^ (z7 << 7) ^ (z7 << 6) ^ (z7 << 1)
            z7 = z6 ^ N7[a] ^ N7[b] ^ N7[c] ^ N7[d]
            z6 = z5 ^ N6[a] ^ N6[b] ^ N6[c] ^ N6[d]
            z5 = z4 ^ N5[a] ^ N5[b] ^ N5[c] ^ N5[d]
            z4 = z3 ^ N4[a] ^ N4[b] ^ N4[c] ^ N4[d]
            z3 = z2 ^ N3[a] ^ N3[b] ^ N3[c] ^ N3[d]
            z2 = z1 ^ N2[a] ^ N2[b] ^ N2[c] ^ N2[d]
            z1 = z0 ^ N1[a] ^ N1[b] ^ N1[c] ^ N1[d] ^ ((r & 255) << 8)
            z0 = (r >> 8) ^ N0[a] ^ N0[b] ^ N0[c] ^ N0[d]
    z[0] = z0
    z[1] = z1
    z[2] = z2
    z[3] = z3
    z[4] = z4
    z[5] = z5
    z[6] = z6
    z[7] = z7


# The GHASH functions new Gcm objects use: (t, z, src, p, n) as above. A
# board may put faster ones here (use_ghash), e.g. viper code for the ESP32,
# which must give the same results on the same tables.
_GHASH = {4: _ghash4, 8: _ghash8}


def use_ghash(tables, fn=None):
    # GHASH for `tables` (4 or 8) in Gcm objects made from now on; None: the
    # portable one. Returns the one it replaces.
    old = _GHASH[tables]
    _GHASH[tables] = fn if fn is not None else (_ghash4 if tables == 4 else _ghash8)
    return old


def new(name=None, tables=4):
    # An AES-GCM object for backend `name` (else the selected one): the
    # backend's whole-operation implementation if it registered one, else Gcm
    # over a new backend object.
    fast = _backend.gcm_maker(name)
    if fast is not None:
        return fast()
    return Gcm(_backend.new(name), tables)


class Gcm:
    def __init__(self, cipher=None, tables=4):
        # cipher: a backend object (backend.new() when None); tables: 8 or 4
        # (GHASH table size, see above).
        if tables not in (8, 4):
            raise ValueError("tables must be 8 or 4")
        self.cipher = cipher if cipher is not None else _backend.new()
        self.tables = tables
        if tables == 8:
            self._t = tuple(_zeros(256) for _ in range(16))
            self._ghash = _GHASH[8]
        else:
            self._t = tuple(_zeros(64) for _ in range(8))
            self._ghash = _GHASH[4]
        self._z = _zeros(16)  # GHASH state (8 limbs) + scratch
        self._ctr = bytearray(16)  # counter block
        self._ks = bytearray(16)  # key stream / E(K, J0)
        self._blk = bytearray(16)  # partial GHASH block; length block
        self._fill_n = 0  # bytes waiting in _blk
        # the last short AAD and the GHASH state after it (suite 0 hashes the
        # same SC || AK with every APDU)
        self._aad = bytearray(_AAD_CACHE)
        self._aad_n = -1  # no AAD cached
        self._aad_z = _zeros(8)
        self.has_key = False

    # ------------------------------------------------------------ keys

    def set_key(self, key, off=0):
        # Load key[off:off+16]; computes H and the GHASH tables (the only
        # allocation-heavy step: a few ms here, tens of ms on an ESP32).
        self.has_key = False
        self._forget_aad()
        self.cipher.set_key(key, off)
        h = self._ks
        h[0:16] = _ZERO16
        self.cipher.encrypt_block(h, 0)  # H = E(K, 0^128)
        v = _multiples(h, 16)
        t = self._t
        if self.tables == 8:
            _fill(t[0:8], v, 0, 8, 0)  # H_k: a_k's high byte
            _fill(t[8:16], v, 8, 8, 0)  # L_k: its low byte
        else:
            for i in range(4):
                _fill(t, v, 4 * i, 4, 16 * i)  # nibble i of a_k
        for i in range(len(v)):
            v[i] = 0
        for i in range(16):
            h[i] = 0
        self.has_key = True

    def wipe(self):
        # Forget the key: backend key schedule and the GHASH tables.
        self._forget_aad()
        self.cipher.wipe()
        for tab in self._t:
            for i in range(len(tab)):
                tab[i] = 0
        self.has_key = False

    # ------------------------------------------------------------ GHASH

    def _absorb(self, src, s, e):
        # Hash src[s:e] as the continuation of the current string.
        if s >= e:
            return
        blk = self._blk
        f = self._fill_n
        if f:
            while f < 16 and s < e:
                blk[f] = src[s]
                f += 1
                s += 1
            if f < 16:
                self._fill_n = f
                return
            self._ghash(self._t, self._z, blk, 0, 1)
            f = 0
        n = (e - s) >> 4
        if n:
            self._ghash(self._t, self._z, src, s, n)
            s += n << 4
        while s < e:
            blk[f] = src[s]
            f += 1
            s += 1
        self._fill_n = f

    def _hash_aad(self, aad, s, e, aad2, s2, e2):
        # GHASH the AAD (aad[s:e] || aad2[s2:e2]) and pad. A short one-range
        # AAD equal to the last one (compared in constant time: it holds AK)
        # restores the state saved after it instead of hashing again.
        n = e - s
        if (aad2 is not None and s2 < e2) or n > _AAD_CACHE:
            self._absorb(aad, s, e)
            if aad2 is not None:
                self._absorb(aad2, s2, e2)
            self._pad()
            return
        c = self._aad
        z = self._z
        cz = self._aad_z
        if n == self._aad_n:
            diff = 0
            for i in range(n):
                diff |= c[i] ^ aad[s + i]
            if not diff:
                for k in range(8):
                    z[k] = cz[k]
                return
        self._absorb(aad, s, e)
        self._pad()
        for i in range(n):
            c[i] = aad[s + i]
        for k in range(8):
            cz[k] = z[k]
        self._aad_n = n

    def _forget_aad(self):
        c = self._aad
        for i in range(_AAD_CACHE):
            c[i] = 0
        cz = self._aad_z
        for k in range(8):
            cz[k] = 0
        self._aad_n = -1

    def _pad(self):
        # End of a string: hash the partial block, zero-padded.
        f = self._fill_n
        if f:
            blk = self._blk
            while f < 16:
                blk[f] = 0
                f += 1
            self._ghash(self._t, self._z, blk, 0, 1)
            self._fill_n = 0

    def _start(self, iv, iv_off):
        if not self.has_key:
            raise ValueError("Gcm without a key")
        z = self._z
        for k in range(8):
            z[k] = 0
        self._fill_n = 0
        # J0 = IV || 0^31 || 1; the key stream starts at inc32(J0)
        c = self._ctr
        for i in range(12):
            c[i] = iv[iv_off + i]
        c[12] = 0
        c[13] = 0
        c[14] = 0
        c[15] = 1

    def _tag(self, alen, clen):
        # Finish GHASH with the lengths block, then _ks = E(K, J0) xor S.
        # Leaves the counter at inc32(J0).
        blk = self._blk
        alen <<= 3
        clen <<= 3
        blk[0:16] = _ZERO16
        blk[4] = (alen >> 24) & 255
        blk[5] = (alen >> 16) & 255
        blk[6] = (alen >> 8) & 255
        blk[7] = alen & 255
        blk[12] = (clen >> 24) & 255
        blk[13] = (clen >> 16) & 255
        blk[14] = (clen >> 8) & 255
        blk[15] = clen & 255
        self._ghash(self._t, self._z, blk, 0, 1)
        ks = self._ks
        c = self._ctr
        ks[0:16] = c
        self.cipher.encrypt_block(ks, 0)
        z = self._z
        for k in range(8):
            v = z[k]
            ks[2 * k] ^= v >> 8
            ks[2 * k + 1] ^= v & 255
            z[k] = 0
        c[15] = 2

    def _ctr_xor(self, buf, s, e):
        # buf[s:e] ^= key stream from the counter block (already inc32(J0)).
        c = self._ctr
        ks = self._ks
        enc = self.cipher
        while s < e:
            ks[0:16] = c
            enc.encrypt_block(ks, 0)
            n = e - s
            if n > 16:
                n = 16
            for i in range(n):
                buf[s + i] ^= ks[i]
            s += n
            # inc32: the last 4 bytes count modulo 2^32
            i = 15
            while i >= 12:
                v = (c[i] + 1) & 255
                c[i] = v
                if v:
                    break
                i -= 1
        ks[0:16] = _ZERO16

    # ------------------------------------------------------------ API

    def encrypt(self, iv, iv_off, aad, aad_s, aad_e, buf, s, e, tag, tag_off, tag_len=12,
                aad2=None, aad2_s=0, aad2_e=0):
        # Encrypt buf[s:e] in place; write the tag_len-byte tag at tag[tag_off:].
        if tag_len < 4 or tag_len > 16 or s > e or aad_s > aad_e or aad2_s > aad2_e:
            raise ValueError("bad GCM range or tag length")
        self._start(iv, iv_off)
        self._hash_aad(aad, aad_s, aad_e, aad2, aad2_s, aad2_e)
        c = self._ctr
        c[15] = 2
        self._ctr_xor(buf, s, e)
        self._absorb(buf, s, e)
        self._pad()
        c[12] = 0
        c[13] = 0
        c[14] = 0
        c[15] = 1
        self._tag(aad_e - aad_s + aad2_e - aad2_s, e - s)
        ks = self._ks
        for i in range(tag_len):
            tag[tag_off + i] = ks[i]
        ks[0:16] = _ZERO16

    def decrypt(self, iv, iv_off, aad, aad_s, aad_e, buf, s, e, tag, tag_off, tag_len=12,
                aad2=None, aad2_s=0, aad2_e=0):
        # Check the tag over aad and the ciphertext buf[s:e] (constant time);
        # only if it matches, decrypt buf[s:e] in place and return True.
        if tag_len < 4 or tag_len > 16 or s > e or aad_s > aad_e or aad2_s > aad2_e:
            raise ValueError("bad GCM range or tag length")
        self._start(iv, iv_off)
        self._hash_aad(aad, aad_s, aad_e, aad2, aad2_s, aad2_e)
        self._absorb(buf, s, e)
        self._pad()
        self._tag(aad_e - aad_s + aad2_e - aad2_s, e - s)
        ks = self._ks
        diff = 0
        for i in range(tag_len):
            diff |= ks[i] ^ tag[tag_off + i]
        ks[0:16] = _ZERO16
        if diff:
            return False
        self._ctr_xor(buf, s, e)
        return True

    def gmac(self, iv, iv_off, aad, aad_s, aad_e, tag, tag_off, tag_len=12,
             aad2=None, aad2_s=0, aad2_e=0):
        # GMAC: the tag over the AAD alone (encrypt with no plaintext).
        self.encrypt(iv, iv_off, aad, aad_s, aad_e, tag, 0, 0, tag, tag_off, tag_len,
                     aad2, aad2_s, aad2_e)

    def gmac_ok(self, iv, iv_off, aad, aad_s, aad_e, tag, tag_off, tag_len=12,
                aad2=None, aad2_s=0, aad2_e=0):
        # True if tag[tag_off:tag_off+tag_len] is the GMAC of the AAD.
        return self.decrypt(iv, iv_off, aad, aad_s, aad_e, tag, 0, 0, tag, tag_off, tag_len,
                            aad2, aad2_s, aad2_e)
