# Security suites 1 and 2 on the real unix firmware (32-bit, the stack
# frozen, 100 KiB heap, real GC): the portable P-256 tests of
# tests/portable_ecc (RFC 6979 and CAVP vectors, HLS-ECDSA's pass 3/4, a
# signed GET through a channel, signed pushes) run there whole, the GC
# reclaiming the big ints the pure curve code leaves (the wasm runner
# cannot, and gives them a larger heap instead).

import os
import subprocess

from conftest import REPO, UNIX, need

ECC_TESTS = os.path.join(REPO, "tests", "portable_ecc")
MODULES = ("test_ecc_p256", "test_hls_ecdsa", "test_signed_requests", "test_signed_push")
RUNNER = """
import gc, sys
sys.path.insert(0, %r)
failed = 0
for modname in %r:
    mod = __import__(modname)
    for name in sorted(dir(mod)):
        if name.startswith("test_"):
            gc.collect()
            try:
                getattr(mod, name)()
                print("PASS", modname, name)
            except Exception as ex:
                failed += 1
                print("FAIL", modname, name, repr(ex))
print("failed", failed)
"""


def test_portable_ecc_suite_on_the_unix_firmware(tmp_path):
    need(UNIX)
    script = tmp_path / "run_ecc.py"
    script.write_text(RUNNER % (ECC_TESTS, MODULES))
    out = subprocess.run([UNIX, "-X", "heapsize=100k", str(script)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[-1] == "failed 0", out.stdout
    assert sum(1 for x in lines if x.startswith("PASS")) >= 20
