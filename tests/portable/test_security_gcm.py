# AES-GCM-128 (NIST SP 800-38D) over the block-cipher backends: published
# vectors, the DLMS suite 0 example, in-place ranges, tag checks, allocation.
# Portable: runs under pytest and under real MicroPython.

from support import raises, unhex

from dlms_micro.security import backend, gcm
from dlms_micro.security.gcm import Gcm

# "The Galois/Counter Mode of Operation" (McGrew, Viega), test cases 1-4
TC3_KEY = unhex("feffe9928665731c6d6a8f9467308308")
TC3_IV = unhex("cafebabefacedbaddecaf888")
TC3_PLAIN = unhex(
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
    "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255"
)
TC3_CIPHER = unhex(
    "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
    "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985"
)
TC3_TAG = unhex("4d5c2af327cd64a62cf35abd2ba6fab4")
TC4_AAD = unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
TC4_TAG = unhex("5bc94fbc3221a5db94fae95ae7121a47")

# DLMS Green Book, security suite 0 example: glo-get-request with SC 0x30
DLMS_EK = unhex("000102030405060708090A0B0C0D0E0F")
DLMS_AK = unhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DLMS_IV = unhex("4D4D4D0000BC614E 01234567")  # system title || invocation counter
DLMS_PLAIN = unhex("C0010000080000010000FF0200")
DLMS_APDU = unhex("C8 1E 30 01234567 411312FF935A47566827C467BC 7D825C3BE4A77C3FCC056B6B")


def pure(tables=4):
    return Gcm(backend.new("pure"), tables)


def every_gcm():
    # the portable Gcm with both table sizes over every backend, and the
    # backends' whole-operation GCMs
    out = [pure(4), pure(8)]
    for name in backend.names():
        if name != "pure":
            out.append(Gcm(backend.new(name)))
        if backend.gcm_maker(name) is not None:
            out.append(backend.gcm_maker(name)())
    return out


def seal(g, key, iv, aad, plain, tag_len=16):
    # -> ciphertext || tag, through the in-place API
    g.set_key(key)
    buf = bytearray(plain)
    tag = bytearray(tag_len)
    g.encrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, tag_len)
    return bytes(buf) + bytes(tag)


def open_(g, key, iv, aad, sealed, tag_len=16):
    # -> plaintext or None
    g.set_key(key)
    buf = bytearray(sealed[: len(sealed) - tag_len])
    if not g.decrypt(iv, 0, aad, 0, len(aad), buf, 0, len(buf), sealed, len(buf), tag_len):
        return None
    return bytes(buf)


def test_spec_case_1_empty_everything():
    for g in every_gcm():
        assert seal(g, bytes(16), bytes(12), b"", b"") == unhex("58e2fccefa7e3061367f1d57a4e7455a")


def test_spec_case_2_one_zero_block():
    want = unhex("0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf")
    for g in every_gcm():
        assert seal(g, bytes(16), bytes(12), b"", bytes(16)) == want
        assert open_(g, bytes(16), bytes(12), b"", want) == bytes(16)


def test_spec_case_3_four_blocks():
    for g in every_gcm():
        assert seal(g, TC3_KEY, TC3_IV, b"", TC3_PLAIN) == TC3_CIPHER + TC3_TAG
        assert open_(g, TC3_KEY, TC3_IV, b"", TC3_CIPHER + TC3_TAG) == TC3_PLAIN


def test_spec_case_4_partial_block_and_20_byte_aad():
    for g in every_gcm():
        sealed = seal(g, TC3_KEY, TC3_IV, TC4_AAD, TC3_PLAIN[:60])
        assert sealed == TC3_CIPHER[:60] + TC4_TAG
        assert open_(g, TC3_KEY, TC3_IV, TC4_AAD, sealed) == TC3_PLAIN[:60]


def test_spec_case_4_with_the_tag_truncated_to_12_bytes():
    for g in every_gcm():
        sealed = seal(g, TC3_KEY, TC3_IV, TC4_AAD, TC3_PLAIN[:60], 12)
        assert sealed == TC3_CIPHER[:60] + TC4_TAG[:12]
        assert open_(g, TC3_KEY, TC3_IV, TC4_AAD, sealed, 12) == TC3_PLAIN[:60]
        # every allowed length is a prefix of the full tag
        for n in (4, 8, 13, 16):
            assert seal(g, TC3_KEY, TC3_IV, TC4_AAD, b"", n) == seal(g, TC3_KEY, TC3_IV, TC4_AAD, b"")[:n]


def test_gmac_nist_cavs_aad_only():
    # gcmEncryptExtIV128.rsp, PTlen = 0, AADlen = 128, counts 0 and 1
    cases = (
        ("77be63708971c4e240d1cb79e8d77feb", "e0e00f19fed7ba0136a797f3",
         "7a43ec1d9c0a5a78a0b16533a6213cab", "209fcc8d3675ed938e9c7166709dd946"),
        ("7680c5d3ca6154758e510f4d25b98820", "f8f105f9c3df4965780321f8",
         "c94c410194c765e3dcc7964379758ed3", "94dca8edfcf90bb74b153c8d48a17930"),
    )
    for g in every_gcm():
        for key, iv, aad, tag in cases:
            key, iv, aad, tag = unhex(key), unhex(iv), unhex(aad), unhex(tag)
            g.set_key(key)
            out = bytearray(16)
            g.gmac(iv, 0, aad, 0, 16, out, 0, 16)
            assert bytes(out) == tag
            assert g.gmac_ok(iv, 0, aad, 0, 16, tag, 0, 16)
            assert g.gmac_ok(iv, 0, aad, 0, 16, tag, 0, 12)
            bad = bytearray(aad)
            bad[15] ^= 0x80
            assert not g.gmac_ok(iv, 0, bad, 0, 16, tag, 0, 16)


def test_dlms_suite0_example_glo_get_request():
    # AAD = SC || AK; the APDU = tag || length || SC || IC || ciphertext || tag
    aad = b"\x30" + DLMS_AK
    for g in every_gcm():
        g.set_key(DLMS_EK)
        apdu = bytearray(7 + len(DLMS_PLAIN) + 12)
        apdu[0:7] = unhex("C8 1E 30 01234567")
        apdu[7 : 7 + len(DLMS_PLAIN)] = DLMS_PLAIN
        e = 7 + len(DLMS_PLAIN)
        # IV from the APDU's own bytes: system title || the IC at offset 3
        iv = bytearray(DLMS_IV)
        g.encrypt(iv, 0, aad, 0, 17, apdu, 7, e, apdu, e, 12)
        assert bytes(apdu) == DLMS_APDU
        assert g.decrypt(iv, 0, aad, 0, 17, apdu, 7, e, apdu, e, 12)
        assert bytes(apdu[7:e]) == DLMS_PLAIN


def test_iv_and_ranges_at_offsets():
    g = pure()
    g.set_key(DLMS_EK)
    iv = b"--" + DLMS_IV
    aad = b"xyz\x30" + DLMS_AK + b"!!"
    buf = bytearray(b"\xaa" * 3 + DLMS_PLAIN + b"\xbb" * 16)
    e = 3 + len(DLMS_PLAIN)
    g.encrypt(iv, 2, aad, 3, 20, buf, 3, e, buf, e + 2, 12)
    assert bytes(buf[:3]) == b"\xaa" * 3 and bytes(buf[e : e + 2]) == b"\xbb\xbb"
    assert bytes(buf[3:e]) == DLMS_APDU[7:20] and bytes(buf[e + 2 : e + 14]) == DLMS_APDU[20:]
    assert bytes(buf[e + 14 :]) == b"\xbb\xbb"


def test_two_aad_ranges_hash_as_one_string():
    # SC || AK in one buffer, the APDU in another (authentication only)
    g = pure(8)
    g.set_key(TC3_KEY)
    whole = b"\x10" + DLMS_AK + TC3_PLAIN[:45]
    t1 = bytearray(16)
    g.gmac(TC3_IV, 0, whole, 0, len(whole), t1, 0, 16)
    for cut in (0, 1, 16, 17, 32, 33, len(whole)):
        t2 = bytearray(16)
        g.gmac(TC3_IV, 0, whole, 0, cut, t2, 0, 16, aad2=whole, aad2_s=cut, aad2_e=len(whole))
        assert t2 == t1, cut
        assert g.gmac_ok(TC3_IV, 0, whole, 0, cut, t1, 0, 16, aad2=whole, aad2_s=cut,
                         aad2_e=len(whole))
    # with a plaintext too, against the spec's case 4 (AAD split 7 + 13)
    buf = bytearray(TC3_PLAIN[:60])
    tag = bytearray(16)
    g.encrypt(TC3_IV, 0, TC4_AAD, 0, 7, buf, 0, 60, tag, 0, 16, TC4_AAD, 7, 20)
    assert bytes(buf) == TC3_CIPHER[:60] and bytes(tag) == TC4_TAG


def test_a_wrong_tag_is_refused_and_leaves_the_buffer_alone():
    g = pure()
    sealed = seal(g, TC3_KEY, TC3_IV, TC4_AAD, TC3_PLAIN[:60], 12)
    cipher = sealed[:60]
    # one flipped bit anywhere: ciphertext, tag, AAD, IV; or another key
    for i in range(72):
        bad = bytearray(sealed)
        bad[i] ^= 1 << (i & 7)
        buf = bytearray(bad[:60])
        assert not g.decrypt(TC3_IV, 0, TC4_AAD, 0, 20, buf, 0, 60, bad, 60, 12), i
        assert buf == bad[:60]
    buf = bytearray(cipher)
    aad = bytearray(TC4_AAD)
    aad[19] ^= 1
    assert not g.decrypt(TC3_IV, 0, aad, 0, 20, buf, 0, 60, sealed, 60, 12)
    iv = bytearray(TC3_IV)
    iv[11] ^= 1
    assert not g.decrypt(iv, 0, TC4_AAD, 0, 20, buf, 0, 60, sealed, 60, 12)
    g.set_key(DLMS_EK)
    assert not g.decrypt(TC3_IV, 0, TC4_AAD, 0, 20, buf, 0, 60, sealed, 60, 12)
    assert bytes(buf) == cipher
    # a shorter claimed tag is checked over its own length only
    g.set_key(TC3_KEY)
    assert g.decrypt(TC3_IV, 0, TC4_AAD, 0, 20, buf, 0, 60, sealed, 60, 8)
    assert bytes(buf) == TC3_PLAIN[:60]


def test_the_repeated_aad_shortcut_notices_every_change():
    # the GHASH state after a short AAD is reused when the same AAD comes
    # again; a different SC byte, AK, length or key must not reuse it
    aads = (b"\x30" + DLMS_AK, b"\x30" + DLMS_AK, b"\x10" + DLMS_AK, b"\x30" + DLMS_AK[:15] + b"\x00",
            b"\x30" + DLMS_AK[:15], b"", b"\x30" + DLMS_AK, TC4_AAD + TC4_AAD[:12], b"\x30" + DLMS_AK)
    g = pure()
    ref = pure()
    for key in (DLMS_EK, TC3_KEY):
        g.set_key(key)  # once: the shortcut lives between calls with one key
        for aad in aads:
            buf = bytearray(DLMS_PLAIN)
            tag = bytearray(12)
            g.encrypt(DLMS_IV, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, 12)
            want = seal(ref, key, DLMS_IV, aad, DLMS_PLAIN, 12)  # set_key: no shortcut
            assert bytes(buf) + bytes(tag) == want
            assert g.decrypt(DLMS_IV, 0, aad, 0, len(aad), buf, 0, len(buf), tag, 0, 12)
            assert bytes(buf) == DLMS_PLAIN


def test_empty_plaintext_and_empty_aad():
    g = pure()
    g.set_key(TC3_KEY)
    tag = bytearray(12)
    buf = bytearray(4)
    g.encrypt(TC3_IV, 0, b"", 0, 0, buf, 2, 2, tag, 0, 12)
    assert bytes(tag) == seal(pure(), TC3_KEY, TC3_IV, b"", b"")[:12]
    assert buf == bytearray(4)
    assert g.decrypt(TC3_IV, 0, b"", 0, 0, buf, 2, 2, tag, 0, 12)


def test_misuse_is_refused():
    g = pure()
    buf = bytearray(16)
    tag = bytearray(16)
    raises(ValueError, g.encrypt, TC3_IV, 0, b"", 0, 0, buf, 0, 16, tag, 0, 12)  # no key
    g.set_key(TC3_KEY)
    raises(ValueError, g.encrypt, TC3_IV, 0, b"", 0, 0, buf, 0, 16, tag, 0, 3)
    raises(ValueError, g.encrypt, TC3_IV, 0, b"", 0, 0, buf, 0, 16, tag, 0, 17)
    raises(ValueError, g.encrypt, TC3_IV, 0, b"", 0, 0, buf, 9, 8, tag, 0, 12)
    raises(ValueError, g.decrypt, TC3_IV, 0, b"", 2, 1, buf, 0, 16, tag, 0, 12)
    raises(ValueError, Gcm, backend.new("pure"), 6)
    raises(ValueError, g.set_key, bytes(15))


def test_wipe_forgets_the_key():
    g = pure()
    g.set_key(TC3_KEY)
    g.wipe()
    assert not g.has_key
    raises(ValueError, g.encrypt, TC3_IV, 0, b"", 0, 0, bytearray(1), 0, 1, bytearray(12), 0, 12)
    g.set_key(TC3_KEY)
    assert seal(g, TC3_KEY, TC3_IV, b"", TC3_PLAIN) == TC3_CIPHER + TC3_TAG


def test_new_gives_a_working_gcm_for_the_selected_backend():
    g = gcm.new()
    assert seal(g, TC3_KEY, TC3_IV, TC4_AAD, TC3_PLAIN[:60]) == TC3_CIPHER[:60] + TC4_TAG
    g = gcm.new("pure", tables=8)
    assert g.tables == 8 and g.cipher.name == "pure"
    assert seal(g, TC3_KEY, TC3_IV, TC4_AAD, TC3_PLAIN[:60]) == TC3_CIPHER[:60] + TC4_TAG


def _allocated(fn):
    import gc

    fn()
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(4):
        fn()
    used = gc.mem_alloc() - before
    gc.enable()
    return used


def test_gcm_calls_allocate_nothing_on_micropython():
    try:
        import micropython  # noqa: F401
    except ImportError:
        return
    aad = bytearray(b"\x30" + DLMS_AK)
    aad2 = bytearray(TC4_AAD)
    iv = bytearray(DLMS_IV)
    buf = bytearray(64)
    tag = bytearray(12)
    for tables in (4, 8):
        g = pure(tables)
        g.set_key(DLMS_EK)

        def enc():
            g.encrypt(iv, 0, aad, 0, 17, buf, 3, 50, buf, 50, 12)

        def dec():
            g.encrypt(iv, 0, aad, 0, 17, buf, 3, 50, buf, 50, 12)
            assert g.decrypt(iv, 0, aad, 0, 17, buf, 3, 50, buf, 50, 12)

        def auth_only():
            # SC || AK then the APDU as a second AAD range; a new AAD each time
            g.gmac(iv, 0, aad, 0, 17, tag, 0, 12, aad2=aad2, aad2_s=0, aad2_e=20)
            assert g.gmac_ok(iv, 0, aad, 0, 17, tag, 0, 12, aad2=aad2, aad2_s=0, aad2_e=20)
            aad[0] ^= 0x20

        for fn in (enc, dec, auth_only):
            used = _allocated(fn)
            assert used == 0, (tables, used)
