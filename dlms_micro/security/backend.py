# Block-cipher backends for the security layer: one AES-128 key per object.
#
# A backend object has
#   name                  "pure", "cryptolib", "cryptography", ...
#   set_key(key, off=0)   load key[off:off+16] (may allocate: once per key)
#   encrypt_block(buf, off)   AES-128 encrypt buf[off:off+16] in place
#   decrypt_block(buf, off)   the inverse (RFC 3394 key unwrap only; not hot)
#   wipe()                forget the key
# GCM (gcm.py) and key wrap (keywrap.py) are built on this; only the block
# cipher changes between boards.
#
# Selection: new() makes a backend of the selected kind. By default the first
# available in order of preference: whatever a port registered with
# register(..., first=True) (the CPython port: "cryptography"), then
# "cryptolib" (MicroPython's hardware-backed module, when importable), then
# "pure" (aes.py, always there). select("pure") forces one, select() goes back
# to automatic.

_order = []  # names, most preferred first (dict order is not kept on MicroPython)
_makers = {}
_gcm_makers = {}
_forced = None


def register(name, maker, first=False, gcm=None):
    # maker() returns a new backend object without a key. gcm: optionally a
    # maker of a whole-operation AES-GCM object with Gcm's API (gcm.new()
    # prefers it to Gcm over this backend).
    if name not in _makers:
        if first:
            _order.insert(0, name)
        else:
            _order.append(name)
    _makers[name] = maker
    if gcm is not None:
        _gcm_makers[name] = gcm


def names():
    # the available backends, most preferred first
    return list(_order)


def select(name=None):
    # Force backend `name` for every later new(); None: automatic again.
    global _forced
    if name is not None and name not in _makers:
        raise ValueError("no AES backend %r (have %s)" % (name, ", ".join(_order)))
    _forced = name


def selected():
    # the name new() uses now
    return _forced if _forced is not None else _order[0]


def new(name=None):
    # A new backend object: of kind `name`, else the selected one.
    if name is None:
        name = selected()
    maker = _makers.get(name)
    if maker is None:
        raise ValueError("no AES backend %r" % (name,))
    return maker()


def gcm_maker(name=None):
    # the whole-operation GCM maker registered with backend `name` (else the
    # selected one), or None
    return _gcm_makers.get(selected() if name is None else name)


# --- MicroPython's cryptolib (ESP32: ECB on the hardware AES engine)

_MODE_ECB = 1


class CryptolibAes:
    # cryptolib.aes(key, 1) in ECB mode. An aes object only ever encrypts or
    # only ever decrypts, so decryption gets its own object, made on demand.
    # encrypt(in_buf, out_buf) works in place on a whole buffer; a block at an
    # offset goes through a 16-byte scratch (a memoryview slice would
    # allocate).
    name = "cryptolib"

    def __init__(self, lib):
        self._lib = lib
        self._enc = None
        self._dec = None
        self._key = bytearray(16)
        self._blk = bytearray(16)

    def set_key(self, key, off=0):
        if len(key) - off < 16:
            raise ValueError("AES-128 key needs 16 bytes")
        k = self._key
        for i in range(16):
            k[i] = key[off + i]
        self._enc = self._lib.aes(k, _MODE_ECB)
        self._dec = None

    def encrypt_block(self, buf, off):
        if off == 0 and len(buf) == 16:
            self._enc.encrypt(buf, buf)
            return
        b = self._blk
        for i in range(16):
            b[i] = buf[off + i]
        self._enc.encrypt(b, b)
        for i in range(16):
            buf[off + i] = b[i]
            b[i] = 0

    def decrypt_block(self, buf, off):
        if self._dec is None:
            self._dec = self._lib.aes(self._key, _MODE_ECB)
        b = self._blk
        for i in range(16):
            b[i] = buf[off + i]
        self._dec.decrypt(b, b)
        for i in range(16):
            buf[off + i] = b[i]
            b[i] = 0

    def wipe(self):
        k = self._key
        for i in range(16):
            k[i] = 0
        self._enc = None
        self._dec = None


def _cryptolib():
    try:
        import cryptolib
    except ImportError:
        try:
            import ucryptolib as cryptolib
        except ImportError:
            return None
    return cryptolib


def _new_pure():
    from dlms_micro.security.aes import Aes  # loaded only when used

    return Aes()


_lib = _cryptolib()
if _lib is not None:

    def _new_cryptolib():
        return CryptolibAes(_lib)

    register("cryptolib", _new_cryptolib)
register("pure", _new_pure)
