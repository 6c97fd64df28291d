# AES key wrap (RFC 3394) for Security Setup key_transfer.
# Portable: runs under pytest and under real MicroPython.

from support import raises, unhex

from dlms_micro.security import backend, keywrap

# RFC 3394 section 4.1: wrap 128 bits of key data with a 128-bit KEK
KEK = unhex("000102030405060708090A0B0C0D0E0F")
KEY = unhex("00112233445566778899AABBCCDDEEFF")
WRAPPED = unhex("1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5")


def test_rfc3394_4_1_wrap():
    assert keywrap.wrap(KEK, KEY) == WRAPPED


def test_rfc3394_4_1_unwrap():
    assert keywrap.unwrap(KEK, WRAPPED) == KEY
    assert keywrap.unwrap(bytearray(KEK), bytearray(WRAPPED)) == KEY


def test_every_flipped_bit_is_detected():
    for i in range(24):
        bad = bytearray(WRAPPED)
        bad[i] ^= 1 << (i % 8)
        assert keywrap.unwrap(KEK, bad) is None, i


def test_wrong_kek_is_detected():
    kek = bytearray(KEK)
    kek[15] ^= 1
    assert keywrap.unwrap(kek, WRAPPED) is None


def test_lengths_that_are_no_wrap_give_none():
    for n in (0, 8, 16, 23, 25, 31):
        assert keywrap.unwrap(KEK, bytes(n)) is None, n


def test_wrap_refuses_lengths_it_cannot_wrap():
    raises(ValueError, keywrap.wrap, KEK, bytes(8))
    raises(ValueError, keywrap.wrap, KEK, bytes(17))


def test_longer_key_data_round_trips():
    for n in (24, 32):
        data = bytes(range(n))
        w = keywrap.wrap(KEK, data)
        assert len(w) == n + 8
        assert keywrap.unwrap(KEK, w) == data
        bad = bytearray(w)
        bad[n] ^= 0x40
        assert keywrap.unwrap(KEK, bad) is None


def test_on_a_given_backend_object_and_every_backend():
    for name in backend.names():
        c = backend.new(name)
        assert keywrap.wrap(KEK, KEY, c) == WRAPPED, name
        assert keywrap.unwrap(KEK, WRAPPED, c) == KEY, name
        # the object is left keyed with the KEK, still usable
        blk = bytearray(16)
        c.encrypt_block(blk, 0)
