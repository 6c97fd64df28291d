# AES-128 block cipher (FIPS-197) and the block-cipher backends.
# Portable: runs under pytest and under real MicroPython.

from support import raises, unhex

from dlms_micro.security import backend

# FIPS-197 Appendix C.1 (AES-128)
C1_KEY = unhex("000102030405060708090a0b0c0d0e0f")
C1_PLAIN = unhex("00112233445566778899aabbccddeeff")
C1_CIPHER = unhex("69c4e0d86a7b0430d8cdb78070b4c55a")
# FIPS-197 Appendix A.1 (key expansion) and B (cipher example)
B_KEY = unhex("2b7e151628aed2a6abf7158809cf4f3c")
B_PLAIN = unhex("3243f6a8885a308d313198a2e0370734")
B_CIPHER = unhex("3925841d02dc09fbdc118597196a0b32")


def pure():
    return backend.new("pure")


def test_sbox_spot_values():
    from dlms_micro.security.aes import SBOX

    assert len(SBOX) == 256
    # FIPS-197 Figure 7
    assert SBOX[0x00] == 0x63 and SBOX[0x53] == 0xED and SBOX[0xFF] == 0x16
    assert SBOX[0x10] == 0xCA and SBOX[0xC9] == 0xDD
    assert len(set(SBOX)) == 256  # a permutation


def test_key_expansion_matches_fips197_appendix_a1():
    a = pure()
    a.set_key(B_KEY)
    assert bytes(a.ek[0:16]) == B_KEY
    # w[4] and the last round key w[40..43]
    assert bytes(a.ek[16:20]) == unhex("a0fafe17")
    assert bytes(a.ek[160:176]) == unhex("d014f9a8c9ee2589e13f0cc8b6630ca6")
    assert a.rk[0] == 0x2B7E and a.rk[87] == 0x0CA6


def test_encrypts_fips197_vectors():
    a = pure()
    a.set_key(C1_KEY)
    b = bytearray(C1_PLAIN)
    a.encrypt_block(b, 0)
    assert bytes(b) == C1_CIPHER
    a.set_key(B_KEY)
    b = bytearray(B_PLAIN)
    a.encrypt_block(b, 0)
    assert bytes(b) == B_CIPHER


def test_decrypts_fips197_vectors():
    a = pure()
    a.set_key(C1_KEY)
    b = bytearray(C1_CIPHER)
    a.decrypt_block(b, 0)
    assert bytes(b) == C1_PLAIN
    a.set_key(B_KEY)
    b = bytearray(B_CIPHER)
    a.decrypt_block(b, 0)
    assert bytes(b) == B_PLAIN


def test_block_at_an_offset_leaves_the_rest_alone():
    a = pure()
    a.set_key(C1_KEY)
    b = bytearray(b"\xee" * 5 + C1_PLAIN + b"\xdd" * 3)
    a.encrypt_block(b, 5)
    assert bytes(b) == b"\xee" * 5 + C1_CIPHER + b"\xdd" * 3
    a.decrypt_block(b, 5)
    assert bytes(b) == b"\xee" * 5 + C1_PLAIN + b"\xdd" * 3


def test_key_at_an_offset_and_rekeying():
    a = pure()
    a.set_key(b"xyz" + C1_KEY, 3)
    b = bytearray(C1_PLAIN)
    a.encrypt_block(b, 0)
    assert bytes(b) == C1_CIPHER
    a.set_key(B_KEY)  # a new key replaces the whole schedule
    b = bytearray(B_PLAIN)
    a.encrypt_block(b, 0)
    assert bytes(b) == B_CIPHER


def test_short_key_is_refused():
    raises(ValueError, pure().set_key, bytes(15))
    raises(ValueError, pure().set_key, bytes(16), 1)


def test_wipe_forgets_the_schedule():
    a = pure()
    a.set_key(C1_KEY)
    a.wipe()
    assert bytes(a.ek) == bytes(176) and max(a.rk) == 0


def test_every_available_backend_agrees():
    # "pure" everywhere; "cryptolib" on boards; "cryptography" when the
    # CPython port has been imported
    names = backend.names()
    assert "pure" in names
    for name in names:
        a = backend.new(name)
        assert a.name == name
        a.set_key(C1_KEY)
        b = bytearray(b"\x00" + C1_PLAIN)
        a.encrypt_block(b, 1)
        assert bytes(b[1:]) == C1_CIPHER, name
        a.decrypt_block(b, 1)
        assert bytes(b[1:]) == C1_PLAIN, name


def test_select_forces_a_backend_and_none_restores_automatic():
    auto = backend.selected()
    assert auto == backend.names()[0]
    try:
        backend.select("pure")
        assert backend.selected() == "pure"
        assert backend.new().name == "pure"
        raises(ValueError, backend.select, "no-such-backend")
        assert backend.selected() == "pure"
    finally:
        backend.select()
    assert backend.selected() == auto
    raises(ValueError, backend.new, "no-such-backend")


class FakeCryptolib:
    # MicroPython's cryptolib as the docs describe it: aes(key, mode), ECB is
    # mode 1, encrypt/decrypt(in_buf, out_buf) over whole 16-byte blocks, in
    # place allowed, and one object only ever encrypts or only ever decrypts.
    class aes:
        def __init__(self, key, mode):
            assert mode == 1 and len(key) == 16
            self._a = backend.new("pure")
            self._a.set_key(bytes(key))  # copied, as the C module does
            self._way = None

        def _run(self, way, src, dst):
            assert self._way in (None, way), "cryptolib: one direction per object"
            self._way = way
            assert len(src) % 16 == 0 and len(dst) == len(src)
            for o in range(0, len(src), 16):
                for i in range(16):
                    dst[o + i] = src[o + i]
                if way == "e":
                    self._a.encrypt_block(dst, o)
                else:
                    self._a.decrypt_block(dst, o)

        def encrypt(self, src, dst):
            self._run("e", src, dst)

        def decrypt(self, src, dst):
            self._run("d", src, dst)


def test_cryptolib_wrapper_in_place_at_offsets_and_both_ways():
    c = backend.CryptolibAes(FakeCryptolib)
    assert c.name == "cryptolib"
    c.set_key(b"?" + C1_KEY, 1)
    b = bytearray(C1_PLAIN)
    c.encrypt_block(b, 0)  # a whole 16-byte buffer goes straight through
    assert bytes(b) == C1_CIPHER
    b = bytearray(b"\x01\x02" + C1_PLAIN + b"\x03")
    c.encrypt_block(b, 2)
    assert bytes(b) == b"\x01\x02" + C1_CIPHER + b"\x03"
    c.decrypt_block(b, 2)  # its own decrypting object
    assert bytes(b) == b"\x01\x02" + C1_PLAIN + b"\x03"
    c.encrypt_block(b, 2)  # and encryption still works
    assert bytes(b) == b"\x01\x02" + C1_CIPHER + b"\x03"
    c.set_key(B_KEY)
    b = bytearray(B_CIPHER)
    c.decrypt_block(b, 0)
    assert bytes(b) == B_PLAIN
    c.wipe()
    assert bytes(c._key) == bytes(16)


def test_encrypt_block_allocates_nothing_on_micropython():
    try:
        import micropython  # noqa: F401
        import gc
    except ImportError:
        return
    a = pure()
    a.set_key(C1_KEY)
    b = bytearray(40)
    a.encrypt_block(b, 7)
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(10):
        a.encrypt_block(b, 7)
    used = gc.mem_alloc() - before
    gc.enable()
    assert used == 0, used
