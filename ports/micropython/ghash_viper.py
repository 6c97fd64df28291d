# GHASH in viper for MicroPython boards with a native emitter (ESP32:
# compile with `mpy-cross -march=xtensawin` or freeze it). NOT portable: viper
# is a SyntaxError on builds without the native emitter (the wasm build in
# CI), so nothing in dlms_micro/ imports this; a board's boot code does:
#
#     try:
#         import ghash_viper
#         ghash_viper.install()   # True if it took over
#     except (ImportError, SyntaxError, ValueError):
#         pass
#
# UNTESTED ON HARDWARE. What is checked: it compiles for xtensawin with
# mpy-cross, and the same source, run as plain Python under CPython with
# ptr8/ptr16 as identities, equals the portable GHASH (tests/cpython/
# test_security_ghash_viper.py). install() also checks it against the portable
# GHASH on the board itself before it swaps it in, and leaves things as they
# are if the two differ.
#
# Same functions as dlms_micro.security.gcm._ghash4/_ghash8 (same tables and
# state layout, see gcm.py): z[0:8] the GHASH state as 16-bit limbs, z[8:15]
# scratch, n blocks from src[p:]. Every value stays below 2**24.

import micropython


@micropython.viper
def ghash4(t, z, src, p: int, n: int):
    N0 = ptr16(t[0])
    N1 = ptr16(t[1])
    N2 = ptr16(t[2])
    N3 = ptr16(t[3])
    N4 = ptr16(t[4])
    N5 = ptr16(t[5])
    N6 = ptr16(t[6])
    N7 = ptr16(t[7])
    zz = ptr16(z)
    s = ptr8(src)
    z0 = int(zz[0])
    z1 = int(zz[1])
    z2 = int(zz[2])
    z3 = int(zz[3])
    z4 = int(zz[4])
    z5 = int(zz[5])
    z6 = int(zz[6])
    z7 = int(zz[7])
    while n > 0:
        n -= 1
        zz[8] = z0 ^ ((int(s[p]) << 8) | int(s[p + 1]))
        zz[9] = z1 ^ ((int(s[p + 2]) << 8) | int(s[p + 3]))
        zz[10] = z2 ^ ((int(s[p + 4]) << 8) | int(s[p + 5]))
        zz[11] = z3 ^ ((int(s[p + 6]) << 8) | int(s[p + 7]))
        zz[12] = z4 ^ ((int(s[p + 8]) << 8) | int(s[p + 9]))
        zz[13] = z5 ^ ((int(s[p + 10]) << 8) | int(s[p + 11]))
        zz[14] = z6 ^ ((int(s[p + 12]) << 8) | int(s[p + 13]))
        v = z7 ^ ((int(s[p + 14]) << 8) | int(s[p + 15]))
        p += 16
        a = v >> 12
        b = ((v >> 8) & 15) | 16
        c = ((v >> 4) & 15) | 32
        d = (v & 15) | 48
        z0 = int(N0[a]) ^ int(N0[b]) ^ int(N0[c]) ^ int(N0[d])
        z1 = int(N1[a]) ^ int(N1[b]) ^ int(N1[c]) ^ int(N1[d])
        z2 = int(N2[a]) ^ int(N2[b]) ^ int(N2[c]) ^ int(N2[d])
        z3 = int(N3[a]) ^ int(N3[b]) ^ int(N3[c]) ^ int(N3[d])
        z4 = int(N4[a]) ^ int(N4[b]) ^ int(N4[c]) ^ int(N4[d])
        z5 = int(N5[a]) ^ int(N5[b]) ^ int(N5[c]) ^ int(N5[d])
        z6 = int(N6[a]) ^ int(N6[b]) ^ int(N6[c]) ^ int(N6[d])
        z7 = int(N7[a]) ^ int(N7[b]) ^ int(N7[c]) ^ int(N7[d])
        k = 14
        while k >= 8:
            v = int(zz[k])
            k -= 1
            a = v >> 12
            b = ((v >> 8) & 15) | 16
            c = ((v >> 4) & 15) | 32
            d = (v & 15) | 48
            r = (z7 << 8) ^ (z7 << 7) ^ (z7 << 6) ^ (z7 << 1)
            z7 = z6 ^ int(N7[a]) ^ int(N7[b]) ^ int(N7[c]) ^ int(N7[d])
            z6 = z5 ^ int(N6[a]) ^ int(N6[b]) ^ int(N6[c]) ^ int(N6[d])
            z5 = z4 ^ int(N5[a]) ^ int(N5[b]) ^ int(N5[c]) ^ int(N5[d])
            z4 = z3 ^ int(N4[a]) ^ int(N4[b]) ^ int(N4[c]) ^ int(N4[d])
            z3 = z2 ^ int(N3[a]) ^ int(N3[b]) ^ int(N3[c]) ^ int(N3[d])
            z2 = z1 ^ int(N2[a]) ^ int(N2[b]) ^ int(N2[c]) ^ int(N2[d])
            z1 = z0 ^ int(N1[a]) ^ int(N1[b]) ^ int(N1[c]) ^ int(N1[d]) ^ ((r & 255) << 8)
            z0 = (r >> 8) ^ int(N0[a]) ^ int(N0[b]) ^ int(N0[c]) ^ int(N0[d])
    zz[0] = z0
    zz[1] = z1
    zz[2] = z2
    zz[3] = z3
    zz[4] = z4
    zz[5] = z5
    zz[6] = z6
    zz[7] = z7


@micropython.viper
def ghash8(t, z, src, p: int, n: int):
    H0 = ptr16(t[0])
    H1 = ptr16(t[1])
    H2 = ptr16(t[2])
    H3 = ptr16(t[3])
    H4 = ptr16(t[4])
    H5 = ptr16(t[5])
    H6 = ptr16(t[6])
    H7 = ptr16(t[7])
    L0 = ptr16(t[8])
    L1 = ptr16(t[9])
    L2 = ptr16(t[10])
    L3 = ptr16(t[11])
    L4 = ptr16(t[12])
    L5 = ptr16(t[13])
    L6 = ptr16(t[14])
    L7 = ptr16(t[15])
    zz = ptr16(z)
    s = ptr8(src)
    z0 = int(zz[0])
    z1 = int(zz[1])
    z2 = int(zz[2])
    z3 = int(zz[3])
    z4 = int(zz[4])
    z5 = int(zz[5])
    z6 = int(zz[6])
    z7 = int(zz[7])
    while n > 0:
        n -= 1
        zz[8] = z0 ^ ((int(s[p]) << 8) | int(s[p + 1]))
        zz[9] = z1 ^ ((int(s[p + 2]) << 8) | int(s[p + 3]))
        zz[10] = z2 ^ ((int(s[p + 4]) << 8) | int(s[p + 5]))
        zz[11] = z3 ^ ((int(s[p + 6]) << 8) | int(s[p + 7]))
        zz[12] = z4 ^ ((int(s[p + 8]) << 8) | int(s[p + 9]))
        zz[13] = z5 ^ ((int(s[p + 10]) << 8) | int(s[p + 11]))
        zz[14] = z6 ^ ((int(s[p + 12]) << 8) | int(s[p + 13]))
        v = z7 ^ ((int(s[p + 14]) << 8) | int(s[p + 15]))
        p += 16
        a = v >> 8
        b = v & 255
        z0 = int(H0[a]) ^ int(L0[b])
        z1 = int(H1[a]) ^ int(L1[b])
        z2 = int(H2[a]) ^ int(L2[b])
        z3 = int(H3[a]) ^ int(L3[b])
        z4 = int(H4[a]) ^ int(L4[b])
        z5 = int(H5[a]) ^ int(L5[b])
        z6 = int(H6[a]) ^ int(L6[b])
        z7 = int(H7[a]) ^ int(L7[b])
        k = 14
        while k >= 8:
            v = int(zz[k])
            k -= 1
            a = v >> 8
            b = v & 255
            r = (z7 << 8) ^ (z7 << 7) ^ (z7 << 6) ^ (z7 << 1)
            z7 = z6 ^ int(H7[a]) ^ int(L7[b])
            z6 = z5 ^ int(H6[a]) ^ int(L6[b])
            z5 = z4 ^ int(H5[a]) ^ int(L5[b])
            z4 = z3 ^ int(H4[a]) ^ int(L4[b])
            z3 = z2 ^ int(H3[a]) ^ int(L3[b])
            z2 = z1 ^ int(H2[a]) ^ int(L2[b])
            z1 = z0 ^ int(H1[a]) ^ int(L1[b]) ^ ((r & 255) << 8)
            z0 = (r >> 8) ^ int(H0[a]) ^ int(L0[b])
    zz[0] = z0
    zz[1] = z1
    zz[2] = z2
    zz[3] = z3
    zz[4] = z4
    zz[5] = z5
    zz[6] = z6
    zz[7] = z7


def agrees(gcm, tables, fn):
    # True if fn gives the portable GHASH's state for a fixed key and data
    # (three runs of 1, 2 and 3 blocks, chained).
    from dlms_micro.security import backend

    g = gcm.Gcm(backend.new("pure"), tables)
    g.set_key(b"dlms_micro ghash")
    ref = gcm._ghash4 if tables == 4 else gcm._ghash8
    data = bytes((i * 37 + 11) & 255 for i in range(96))
    z1 = gcm._zeros(16)
    z2 = gcm._zeros(16)
    p = 0
    for n in (1, 2, 3):
        ref(g._t, z1, data, p, n)
        fn(g._t, z2, data, p, n)
        p += 16 * n
        for k in range(8):
            if z1[k] != z2[k]:
                return False
    return max(z1[0:8]) != 0


def install():
    # Use the viper GHASH in Gcm objects made from now on, if it agrees with
    # the portable one on this board. Returns True if it was installed.
    from dlms_micro.security import gcm

    if not (agrees(gcm, 4, ghash4) and agrees(gcm, 8, ghash8)):
        return False
    gcm.use_ghash(4, ghash4)
    gcm.use_ghash(8, ghash8)
    return True
