# Elliptic curves P-256 and P-384 (FIPS 186-4 D.1.2.3/D.1.2.4) for security
# suites 1 and 2 (Green Book 9.2.3): ECDSA signatures (FIPS 186-4 6.4, the
# nonce from RFC 6979 so no random source is needed to sign), ECDH shared
# secrets (NIST SP 800-56A 5.7.1.2: Z = x of d * Q) and key pairs.
#
# DLMS encodes a public key as x || y (64 / 96 bytes, no 04 prefix) and a
# signature as r || s (64 / 96 bytes); private keys are big-endian scalars
# of the curve's size. Every function takes and returns those byte strings.
#
#   pub = public_key(P256, d)                 d: 32 bytes
#   sig = sign(P256, d, digest)               digest: SHA-256 of the message
#   ok = verify(P256, pub, digest, sig)       False for any bad input
#   z = ecdh(P256, d, peer_pub)               raises EccError on a bad point
#   check_public_key(P256, pub)               raises EccError (not on the curve)
#
# BACKENDS. By default the pure-Python curve arithmetic below runs. A port
# or board with faster code (CPython's `cryptography`, a native module, a
# secure element) installs it with use(impl): impl has public_key, sign,
# verify and ecdh with the signatures above (curve: a Curve of this
# module); use(None) goes back to the pure code. Only what impl lacks (an
# attribute set to None) falls back to the pure code.
#
# THE PURE CODE IS NOT CONSTANT-TIME: its running time depends on the
# scalars (windowed double-and-add, big-int arithmetic whose cost depends on
# the values), so an attacker who can time many signatures or key agreements
# precisely may learn the private key. It is for boards without a hardware
# or native implementation and for tests; a board that signs where someone
# can measure it should install a native module. Field elements are
# arbitrary-precision ints (MicroPython: heap big ints, a few KB of garbage
# per point operation, which the GC reclaims; the live memory is small).

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms_micro.errors import DlmsError
from dlms_micro.security import sha2


class EccError(DlmsError):
    # a key or point that cannot be used (wrong length, not on the curve,
    # scalar out of range); the message never holds a private key
    pass


class Curve:
    # A short Weierstrass curve y^2 = x^3 - 3x + b over GF(p), of prime
    # order n (cofactor 1, so any point on it is in the group).
    def __init__(self, name, size, p, b, gx, gy, n, hash_name, suite):
        self.name = name
        self.size = size  # bytes of a coordinate, a scalar, r or s
        self.p = p
        self.b = b
        self.gx = gx
        self.gy = gy
        self.n = n
        self.hash_name = hash_name  # the suite's hash
        self.suite = suite  # the DLMS security suite using the curve

    def __repr__(self):
        return "<curve %s>" % self.name


def _int(hexs):
    return int(hexs, 16)


P256 = Curve(
    "P-256",
    32,
    _int("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"),
    _int("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"),
    _int("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
    _int("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
    _int("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    "sha256",
    1,
)
P384 = Curve(
    "P-384",
    48,
    _int("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffe"
         "ffffffff0000000000000000ffffffff"),
    _int("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875a"
         "c656398d8a2ed19d2a85c8edd3ec2aef"),
    _int("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a38"
         "5502f25dbf55296c3a545e3872760ab7"),
    _int("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c0"
         "0a60b1ce1d7e819d7a431d7c90ea0e5f"),
    _int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf"
         "581a0db248b0a77aecec196accc52973"),
    "sha384",
    2,
)

_WINDOW = const(4)  # bits per step of the scalar multiplication


def for_suite(suite):
    # the curve of security suite 1 or 2
    if suite == 1:
        return P256
    if suite == 2:
        return P384
    raise EccError("security suite %d has no curve" % suite)


# ------------------------------------------------------ field and points
# Jacobian coordinates (X, Y, Z) for x = X / Z^2, y = Y / Z^3; Z = 0 is the
# point at infinity.


def _inv(a, m):
    # a^-1 mod m (m prime), by Fermat
    return pow(a, m - 2, m)


def _double(c, X, Y, Z):
    # dbl-2001-b (a = -3)
    if not Z or not Y:
        return 0, 1, 0
    p = c.p
    delta = Z * Z % p
    gamma = Y * Y % p
    beta = X * gamma % p
    alpha = 3 * (X - delta) * (X + delta) % p
    X3 = (alpha * alpha - 8 * beta) % p
    Z3 = ((Y + Z) * (Y + Z) - gamma - delta) % p
    Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
    return X3, Y3, Z3


def _add(c, X1, Y1, Z1, X2, Y2, Z2):
    # add-2007-bl
    if not Z1:
        return X2, Y2, Z2
    if not Z2:
        return X1, Y1, Z1
    p = c.p
    z1z1 = Z1 * Z1 % p
    z2z2 = Z2 * Z2 % p
    u1 = X1 * z2z2 % p
    u2 = X2 * z1z1 % p
    s1 = Y1 * Z2 * z2z2 % p
    s2 = Y2 * Z1 * z1z1 % p
    h = (u2 - u1) % p
    r = (s2 - s1) % p
    if not h:
        if not r:
            return _double(c, X1, Y1, Z1)
        return 0, 1, 0
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    X3 = (r * r - hhh - 2 * v) % p
    Y3 = (r * (v - X3) - s1 * hhh) % p
    Z3 = Z1 * Z2 * h % p
    return X3, Y3, Z3


def _affine(c, X, Y, Z):
    if not Z:
        return None
    p = c.p
    zi = _inv(Z, p)
    zi2 = zi * zi % p
    return X * zi2 % p, Y * zi2 * zi % p


def _table(c, x, y):
    # [0P, 1P, ..., 15P] in Jacobian coordinates
    t = [(0, 1, 0), (x, y, 1)]
    for i in range(2, 1 << _WINDOW):
        a = t[i - 1]
        t.append(_add(c, a[0], a[1], a[2], x, y, 1))
    return t


def _mul(c, k, x, y):
    # k * (x, y), fixed 4-bit windows from the top (not constant-time)
    t = _table(c, x, y)
    X, Y, Z = 0, 1, 0
    nbits = 8 * c.size
    for i in range(nbits - _WINDOW, -1, -_WINDOW):
        for _ in range(_WINDOW):
            X, Y, Z = _double(c, X, Y, Z)
        w = (k >> i) & 15
        if w:
            e = t[w]
            X, Y, Z = _add(c, X, Y, Z, e[0], e[1], e[2])
    return X, Y, Z


def _mul2(c, k1, k2, x, y):
    # k1 * G + k2 * (x, y), interleaved (Shamir's trick, 4-bit windows)
    tg = _table(c, c.gx, c.gy)
    tq = _table(c, x, y)
    X, Y, Z = 0, 1, 0
    for i in range(8 * c.size - _WINDOW, -1, -_WINDOW):
        for _ in range(_WINDOW):
            X, Y, Z = _double(c, X, Y, Z)
        w = (k1 >> i) & 15
        if w:
            e = tg[w]
            X, Y, Z = _add(c, X, Y, Z, e[0], e[1], e[2])
        w = (k2 >> i) & 15
        if w:
            e = tq[w]
            X, Y, Z = _add(c, X, Y, Z, e[0], e[1], e[2])
    return X, Y, Z


def on_curve(c, x, y):
    # 0 <= x, y < p and y^2 = x^3 - 3x + b
    p = c.p
    if x < 0 or y < 0 or x >= p or y >= p:
        return False
    return (y * y - (x * x * x - 3 * x + c.b)) % p == 0


# ------------------------------------------------------ encodings


def _b2i(b):
    return int.from_bytes(bytes(b), "big")


def _i2b(v, n):
    return v.to_bytes(n, "big")


def _point(c, pub):
    # x || y -> (x, y), checked to be a point of the curve
    n = c.size
    if pub is None or len(pub) != 2 * n:
        raise EccError("%s public key of %d bytes, %d expected" % (c.name, 0 if pub is None else len(pub), 2 * n))
    x = _b2i(pub[0:n])
    y = _b2i(pub[n : 2 * n])
    if not on_curve(c, x, y):
        raise EccError("%s public key is not a point of the curve" % c.name)
    return x, y


def check_public_key(c, pub):
    # Raise EccError unless pub (x || y) is a point of curve c (NIST SP
    # 800-56A 5.6.2.3.3 full validation; with cofactor 1 a point on the
    # curve other than infinity, which x || y cannot encode, is valid).
    _point(c, pub)


def _scalar(c, d):
    if d is None or len(d) != c.size:
        raise EccError("%s private key of the wrong length" % c.name)
    k = _b2i(d)
    if k < 1 or k >= c.n:
        raise EccError("%s private key out of range" % c.name)
    return k


def _digest_int(c, digest):
    # FIPS 186-4 6.4: the leftmost bits of the digest, as many as n has
    e = _b2i(digest)
    extra = 8 * len(digest) - 8 * c.size
    if extra > 0:
        e >>= extra
    return e


# ------------------------------------------------------ pure operations


def _pure_public_key(c, d):
    X, Y, Z = _mul(c, _scalar(c, d), c.gx, c.gy)
    x, y = _affine(c, X, Y, Z)
    return _i2b(x, c.size) + _i2b(y, c.size)


def rfc6979_nonce(c, k, digest, extra=b""):
    # RFC 6979 3.2: the deterministic nonce for private scalar k and the
    # message digest, HMAC with the curve's hash; extra (3.6, additional
    # data) may mix in fresh random bytes.
    h = c.hash_name
    n = c.n
    size = c.size
    x = _i2b(k, size)
    hb = _i2b(_digest_int(c, digest) % n, size)
    hl = sha2.DIGEST_SIZE[h]
    V = b"\x01" * hl
    K = b"\x00" * hl
    K = sha2.hmac_digest(h, K, V, b"\x00", x, hb, extra)
    V = sha2.hmac_digest(h, K, V)
    K = sha2.hmac_digest(h, K, V, b"\x01", x, hb, extra)
    V = sha2.hmac_digest(h, K, V)
    while True:
        t = b""
        while len(t) < size:
            V = sha2.hmac_digest(h, K, V)
            t += V
        kk = _digest_int(c, t[0:size] if len(t) > size else t)
        if 1 <= kk < n:
            return kk
        K = sha2.hmac_digest(h, K, V, b"\x00")
        V = sha2.hmac_digest(h, K, V)


def _pure_sign(c, d, digest, extra=b""):
    k = _scalar(c, d)
    n = c.n
    e = _digest_int(c, digest)
    while True:
        kk = rfc6979_nonce(c, k, digest, extra)
        X, Y, Z = _mul(c, kk, c.gx, c.gy)
        r = _affine(c, X, Y, Z)[0] % n
        if r:
            s = _inv(kk, n) * (e + r * k) % n
            if s:
                return _i2b(r, c.size) + _i2b(s, c.size)
        extra = extra + b"\x00"  # practically never: another nonce


def _pure_verify(c, pub, digest, sig):
    n = c.n
    size = c.size
    if sig is None or len(sig) != 2 * size:
        return False
    try:
        x, y = _point(c, pub)
    except EccError:
        return False
    r = _b2i(sig[0:size])
    s = _b2i(sig[size:])
    if r < 1 or r >= n or s < 1 or s >= n:
        return False
    w = _inv(s, n)
    e = _digest_int(c, digest)
    X, Y, Z = _mul2(c, e * w % n, r * w % n, x, y)
    a = _affine(c, X, Y, Z)
    if a is None:
        return False
    return a[0] % n == r


def _pure_ecdh(c, d, pub):
    x, y = _point(c, pub)
    X, Y, Z = _mul(c, _scalar(c, d), x, y)
    a = _affine(c, X, Y, Z)
    if a is None:
        raise EccError("%s shared secret is the point at infinity" % c.name)
    return _i2b(a[0], c.size)


# ------------------------------------------------------ the backend hook

_impl = None


def use(impl=None):
    # Install a faster implementation (see BACKENDS above); None: pure.
    # Returns the one it replaces.
    global _impl
    old = _impl
    _impl = impl
    return old


def backend_name():
    return getattr(_impl, "name", "native") if _impl is not None else "pure"


def _fn(name):
    f = getattr(_impl, name, None) if _impl is not None else None
    return f


def public_key(c, d):
    # x || y of private key d (bytes of the curve's size)
    f = _fn("public_key")
    if f is not None:
        _scalar(c, d)
        return f(c, d)
    return _pure_public_key(c, d)


def sign(c, d, digest):
    # ECDSA signature r || s of a message digest (the curve's hash of it)
    f = _fn("sign")
    if f is not None:
        _scalar(c, d)
        return f(c, d, digest)
    return _pure_sign(c, d, digest)


def verify(c, pub, digest, sig):
    # True if sig (r || s) signs digest under pub (x || y); False for a bad
    # signature, a key that is no point of the curve, or wrong lengths.
    f = _fn("verify")
    if f is not None:
        if sig is None or len(sig) != 2 * c.size:
            return False
        try:
            _point(c, pub)
        except EccError:
            return False
        return bool(f(c, pub, digest, sig))
    return _pure_verify(c, pub, digest, sig)


def ecdh(c, d, pub):
    # Z: the x coordinate of d * pub (the peer's public key, checked first)
    _point(c, pub)
    f = _fn("ecdh")
    if f is not None:
        _scalar(c, d)
        return f(c, d, pub)
    return _pure_ecdh(c, d, pub)


def sign_message(c, d, *parts):
    # sign the curve's hash of the concatenated parts
    return sign(c, d, sha2.digest(c.hash_name, *parts))


def verify_message(c, pub, sig, *parts):
    return verify(c, pub, sha2.digest(c.hash_name, *parts), sig)


def new_private_key(c, random_bytes):
    # A private key from the port's random source (random_bytes(n) -> n
    # bytes): FIPS 186-4 B.4.2, candidates until one lies in [1, n-1].
    for _ in range(64):
        d = random_bytes(c.size)
        if d is None or len(d) != c.size:
            raise EccError("the random source gave no %d bytes" % c.size)
        k = _b2i(d)
        if 1 <= k < c.n:
            return bytes(d)
    raise EccError("the random source gives no usable private key")


class KeyPair:
    # A signing or key agreement key pair. The private key is kept out of
    # sight: repr() and str() never show it, and there is no attribute that
    # returns it; the pair signs (sign) and agrees (agree) with it. wipe()
    # forgets it.
    def __init__(self, curve, private, public=None):
        _scalar(curve, private)
        self.curve = curve
        self.__d = bytearray(private)
        self.public = bytes(public) if public is not None else public_key(curve, bytes(private))

    def __repr__(self):
        return "<KeyPair %s public %s...>" % (self.curve.name, self.public[0:4].hex())

    __str__ = __repr__

    def sign(self, digest):
        return sign(self.curve, bytes(self.__d), digest)

    def sign_message(self, *parts):
        return sign_message(self.curve, bytes(self.__d), *parts)

    def agree(self, peer_public):
        return ecdh(self.curve, bytes(self.__d), peer_public)

    def has_private(self):
        d = self.__d
        for i in range(len(d)):
            if d[i]:
                return True
        return False

    def wipe(self):
        d = self.__d
        for i in range(len(d)):
            d[i] = 0

    def export_private(self, why):
        # The private scalar, for the key store only (why: a string saying
        # so, to make every use visible in a review).
        if why != "key store":
            raise EccError("private keys are only handed to the key store")
        return bytes(self.__d)
