# SHA-256 and SHA-384 (FIPS 180-4) and HMAC (RFC 2104) for security suites
# 1 and 2 (Green Book 9.2.3: suite 1 hashes with SHA-256, suite 2 with
# SHA-384; HLS mechanism 6 is SHA-256).
#
#   h = new("sha256"); h.update(b); h.digest()      # or "sha384"
#   digest("sha384", data) -> bytes
#   hmac_digest("sha256", key, data) -> bytes
#
# hashlib serves whatever it has (CPython: both; MicroPython: sha256 only,
# the ESP32 in hardware). SHA-384 has a pure-Python fallback, Sha384 below:
# 64-bit words are big ints on MicroPython, so it allocates per block (a
# few KB); it runs a few times per signed APDU or association, never per
# byte on the hot path.

try:
    import hashlib as _hashlib
except ImportError:  # a board built without it
    _hashlib = None

DIGEST_SIZE = {"sha256": 32, "sha384": 48}
BLOCK_SIZE = {"sha256": 64, "sha384": 128}

_M64 = 0xFFFFFFFFFFFFFFFF

# FIPS 180-4 4.2.3: the first 64 bits of the fractional parts of the cube
# roots of the first 80 primes, as bytes (frozen code keeps wide tuple ints
# as heap big ints: see DESIGN.md)
_K512 = bytes.fromhex(
    "428a2f98d728ae227137449123ef65cdb5c0fbcfec4d3b2fe9b5dba58189dbbc"
    "3956c25bf348b53859f111f1b605d019923f82a4af194f9bab1c5ed5da6d8118"
    "d807aa98a303024212835b0145706fbe243185be4ee4b28c550c7dc3d5ffb4e2"
    "72be5d74f27b896f80deb1fe3b1696b19bdc06a725c71235c19bf174cf692694"
    "e49b69c19ef14ad2efbe4786384f25e30fc19dc68b8cd5b5240ca1cc77ac9c65"
    "2de92c6f592b02754a7484aa6ea6e4835cb0a9dcbd41fbd476f988da831153b5"
    "983e5152ee66dfaba831c66d2db43210b00327c898fb213fbf597fc7beef0ee4"
    "c6e00bf33da88fc2d5a79147930aa72506ca6351e003826f142929670a0e6e70"
    "27b70a8546d22ffc2e1b21385c26c9264d2c6dfc5ac42aed53380d139d95b3df"
    "650a73548baf63de766a0abb3c77b2a881c2c92e47edaee692722c851482353b"
    "a2bfe8a14cf10364a81a664bbc423001c24b8b70d0f89791c76c51a30654be30"
    "d192e819d6ef5218d69906245565a910f40e35855771202a106aa07032bbd1b8"
    "19a4c116b8d2d0c81e376c085141ab532748774cdf8eeb9934b0bcb5e19b48a8"
    "391c0cb3c5c95a634ed8aa4ae3418acb5b9cca4f7763e373682e6ff3d6b2b8a3"
    "748f82ee5defb2fc78a5636f43172f6084c87814a1f0ab728cc702081a6439ec"
    "90befffa23631e28a4506cebde82bde9bef9a3f7b2c67915c67178f2e372532b"
    "ca273eceea26619cd186b8c721c0c207eada7dd6cde0eb1ef57d4f7fee6ed178"
    "06f067aa72176fba0a637dc5a2c898a6113f9804bef90dae1b710b35131c471b"
    "28db77f523047d8432caab7b40c724933c9ebe0a15c9bebc431d67c49c100d4c"
    "4cc5d4becb3e42b6597f299cfc657e2a5fcb6fab3ad6faec6c44198c4a475817"
)
# FIPS 180-4 5.3.4: SHA-384's initial hash value
_H384 = bytes.fromhex(
    "cbbb9d5dc1059ed8629a292a367cd5079159015a3070dd17152fecd8f70e5939"
    "67332667ffc00b318eb44a8768581511db0c2e0d64f98fa747b5481dbefa4fa4"
)


def _w64(b, i):
    return int.from_bytes(b[8 * i : 8 * i + 8], "big")


def _rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & _M64


class Sha384:
    # SHA-384 in pure Python: SHA-512's compression with its own initial
    # value, the output cut to 48 bytes.
    digest_size = 48
    block_size = 128

    def __init__(self, data=None):
        self._h = [_w64(_H384, i) for i in range(8)]
        self._buf = bytearray(128)
        self._n = 0  # bytes in _buf
        self._len = 0  # message bytes so far
        if data is not None:
            self.update(data)

    def _block(self, b, p):
        w = [int.from_bytes(b[p + 8 * i : p + 8 * i + 8], "big") for i in range(16)]
        for t in range(16, 80):
            x = w[t - 15]
            y = w[t - 2]
            s0 = _rotr(x, 1) ^ _rotr(x, 8) ^ (x >> 7)
            s1 = _rotr(y, 19) ^ _rotr(y, 61) ^ (y >> 6)
            w.append((w[t - 16] + s0 + w[t - 7] + s1) & _M64)
        h = self._h
        a, b_, c, d, e, f, g, hh = h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]
        for t in range(80):
            s1 = _rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41)
            ch = (e & f) ^ ((e ^ _M64) & g)
            t1 = (hh + s1 + ch + _w64(_K512, t) + w[t]) & _M64
            s0 = _rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)
            maj = (a & b_) ^ (a & c) ^ (b_ & c)
            hh = g
            g = f
            f = e
            e = (d + t1) & _M64
            d = c
            c = b_
            b_ = a
            a = (t1 + s0 + maj) & _M64
        h[0] = (h[0] + a) & _M64
        h[1] = (h[1] + b_) & _M64
        h[2] = (h[2] + c) & _M64
        h[3] = (h[3] + d) & _M64
        h[4] = (h[4] + e) & _M64
        h[5] = (h[5] + f) & _M64
        h[6] = (h[6] + g) & _M64
        h[7] = (h[7] + hh) & _M64

    def update(self, data):
        buf = self._buf
        n = self._n
        self._len += len(data)
        i = 0
        m = len(data)
        while i < m:
            if n == 0 and m - i >= 128:
                self._block(data, i)
                i += 128
                continue
            buf[n] = data[i]
            n += 1
            i += 1
            if n == 128:
                self._block(buf, 0)
                n = 0
        self._n = n
        return self

    def copy(self):
        c = Sha384()
        c._h = list(self._h)
        c._buf[:] = self._buf
        c._n = self._n
        c._len = self._len
        return c

    def digest(self):
        c = self.copy()
        bits = c._len * 8
        pad = bytearray(1)
        pad[0] = 0x80
        c.update(pad)
        z = (112 - c._n) % 128
        c.update(bytes(z))
        c.update(bits.to_bytes(16, "big"))
        out = bytearray(48)
        for i in range(6):
            out[8 * i : 8 * i + 8] = c._h[i].to_bytes(8, "big")
        return bytes(out)


def _has(name):
    return _hashlib is not None and hasattr(_hashlib, name)


def new(name, data=None):
    # A hash object ("sha256" or "sha384") with update() and digest().
    if name == "sha256":
        if not _has("sha256"):
            raise ValueError("no SHA-256 on this interpreter")
        h = _hashlib.sha256()
    elif name == "sha384":
        h = _hashlib.sha384() if _has("sha384") else Sha384()
    else:
        raise ValueError("no hash %r" % (name,))
    if data is not None:
        h.update(data)
    return h


def digest(name, *parts):
    # The hash of the parts, concatenated.
    h = new(name)
    for p in parts:
        h.update(p)
    return h.digest()


def hmac_digest(name, key, *parts):
    # HMAC (RFC 2104) with hash `name` over the parts, concatenated.
    bs = BLOCK_SIZE[name]
    if len(key) > bs:
        key = digest(name, key)
    k = bytearray(bs)
    k[0 : len(key)] = key
    ipad = bytearray(bs)
    for i in range(bs):
        ipad[i] = k[i] ^ 0x36
        k[i] ^= 0x5C  # k becomes opad
    inner = new(name, ipad)
    for p in parts:
        inner.update(p)
    out = digest(name, k, inner.digest())
    for i in range(bs):
        k[i] = 0
        ipad[i] = 0
    return out
