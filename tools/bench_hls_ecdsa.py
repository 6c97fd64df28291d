# What an HLS-ECDSA association (mechanism 7, security suite 1, P-256)
# costs the meter: its part of pass 3/4, suite12.hls_reply(): verify the
# client's f(StoC) signature and sign f(CtoS). Everything else an
# association does (AARQ/AARE, AES-GCM of a few dozen bytes) is
# microseconds beside it. Also suite 2 (P-384) and the pieces alone.
#
#   python tools/bench_hls_ecdsa.py            CPython: pure code and `cryptography`
#   node tools/micropython/runner.mjs --no-cap --script tools/bench_hls_ecdsa.py
#   build/firmware/unix32/micropython tools/bench_hls_ecdsa.py   (frozen, real GC)
#   python tools/bench_hls_ecdsa.py --qemu [--full]  the same on the QEMU Cortex-M3
#                                              firmware (instructions; make firmware;
#                                              --full: each primitive and P-384 too),
#                                              then a whole HLS-ECDSA association of
#                                              gurux-dlms with the firmware's secured
#                                              meter over the emulated UART
#
# Certificates (security/x509.py, the board's X.509 reader): parsing one and
# checking it against the trusted CA (one ECDSA verification) as
# import_certificate does, with the heap a parsed certificate keeps; the
# certificates are tests/portable_ecc/cert_fixtures.py's. On the unix
# firmware (100 KiB heap, real GC), from the repository's root:
#   build/firmware/unix32/micropython -X heapsize=100k tools/bench_hls_ecdsa.py
#
# Lines: "<what>: <time> per call, <heap> B allocated" (heap on MicroPython:
# gc.mem_alloc() after minus before; in the wasm runner, which never
# collects inside a script, that is everything allocated, garbage included;
# on a firmware with a real GC only what is still in use or not yet
# collected).

import sys

try:
    import time

    _us = time.ticks_us
    _diff = time.ticks_diff
except AttributeError:  # CPython
    import time

    def _us():
        return int(time.perf_counter() * 1e6)

    def _diff(a, b):
        return a - b


try:
    import gc

    _alloc = gc.mem_alloc
except AttributeError:
    _alloc = None

ST_C = b"GURUXHES"
ST_S = b"DMI\x00\x00\xbc\x61\x4e"
STOC = bytes(range(32))
CTOS = bytes(range(100, 116))
SERVER_D = bytes(31) + b"\x2a"
SERVER_PUB = bytes.fromhex(
    "6780c5fc70275e2c7061a0e7877bb174deadeb9887027f3fa83654158ba7f50c"
    "3cba8c34bc35d20e81f730ac1c7bd6d661a942f90c6a9ca55c512f9e4a001266"
)
CLIENT_PUB = bytes.fromhex(
    "60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
    "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299"
)
F_STOC = bytes.fromhex(
    "334e2b10b449b26713082cc355915fd0f49684ff565f1975589a02edf11bbffb"
    "c83539804ac7fa11c8ea5510481b19b1a2ba62f13949e9a4e35bf05dbd274d7c"
)


def measure(label, fn, n=1):
    if _alloc is not None:
        gc.collect()
        a = _alloc()
    t = _us()
    for _ in range(n):
        fn()
    dt = _diff(_us(), t) / n
    heap = (_alloc() - a) // n if _alloc is not None else -1
    if dt >= 1000:
        tt = "%.1f ms" % (dt / 1000)
    else:
        tt = "%d us" % dt
    if heap >= 0:
        print("%s: %s per call, %d B allocated" % (label, tt, heap))
    else:
        print("%s: %s per call" % (label, tt))
    return dt


def run(n=1, full=True):
    from dlms_micro.security import ecc, sha2, suite12

    sg = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB), {ST_C: CLIENT_PUB})
    digest = sha2.digest("sha256", ST_C, ST_S, STOC, CTOS)

    def assoc():
        suite12.hls_reply(7, F_STOC, b"", sg, ST_C, ST_S, STOC, CTOS, 1)

    name = ecc.backend_name()
    measure("HLS-ECDSA association, meter side, P-256 (%s)" % name, assoc, n)
    if not full:
        return
    measure("  ECDSA verify P-256 (%s)" % name, lambda: ecc.verify(ecc.P256, CLIENT_PUB, digest, F_STOC), n)
    measure("  ECDSA sign P-256 (%s)" % name, lambda: ecc.sign(ecc.P256, SERVER_D, digest), n)
    full_d = sha2.digest("sha256", b"a full-size scalar")
    measure("  ECDH P-256 (%s)" % name, lambda: ecc.ecdh(ecc.P256, full_d, CLIENT_PUB), n)
    d2 = sha2.digest("sha384", b"x")[0:47] + b"\x01"
    pub2 = ecc.public_key(ecc.P384, d2)
    dg2 = sha2.digest("sha384", b"m")
    sig2 = ecc.sign(ecc.P384, d2, dg2)
    measure("  ECDSA sign + verify P-384 (%s), suite 2's association" % name,
            lambda: ecc.verify(ecc.P384, pub2, dg2, ecc.sign(ecc.P384, d2, dg2)) or 1, n)
    measure("  HLS-SHA256 association, meter side", lambda: suite12.hls_reply(
        6, suite12.sha256_f(b"s", ST_C, ST_S, STOC, CTOS), b"s", None, ST_C, ST_S, STOC, CTOS, 1), n)


def certs(ca_der, client_der, now, n=1):
    # The certificate path of import_certificate on this interpreter.
    from dlms_micro.security import x509

    ca = x509.load_ca(ca_der)
    measure("certificate parse (X.509 DER, %d bytes)" % len(client_der), lambda: x509.parse(client_der), n)
    c = x509.parse(client_der)
    measure("certificate check against the trusted CA (P-256 ECDSA verification)", lambda: x509.check(c, ca, now), n)
    if _alloc is not None:
        gc.collect()
        a = _alloc()
        kept = x509.parse(client_der)
        gc.collect()
        print("  a parsed certificate (%d B DER) keeps %d B of heap; %d B free after a collection"
              % (len(kept.der), _alloc() - a, gc.mem_free()))


def fixtures_path():
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(here), "tests", "portable_ecc", "cert_fixtures.py")


NOW = 1796126400  # 2026-12-01 12:00 UTC: inside the fixtures' validity


QEMU_CODE = (
    "import sys\n"
    "sys.argv = ['bench']\n"
)


def qemu():
    # Run run() on the Cortex-M3 firmware: this file's source is sent to the
    # REPL (the dlms_micro modules are frozen in the firmware).
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "firmware"))
    from qemu import Qemu

    elf = os.path.join(os.path.dirname(here), "build", "firmware", "qemu", "firmware.elf")
    if not os.path.exists(elf):
        print("no QEMU firmware: make firmware")
        return 1
    with open(os.path.abspath(__file__)) as f:
        src = f.read()
    src = src.split("\nif __name__ ==")[0]  # definitions only
    with open(fixtures_path()) as f:
        fixtures = f.read()
    with Qemu(elf) as q:
        q.exec(src, 120)
        q.exec(fixtures, 60)
        out = q.exec("run(1, %s)" % ("True" if "--full" in sys.argv else "False"), 1200)
        out += q.exec("certs(CA, CLIENT, NOW)", 600)
    print("QEMU Cortex-M3 (MPS2-AN385, -icount shift=0: 1 virtual us = 1,000 instructions):")
    for line in out.splitlines():
        line = line.strip()
        if " per call" in line:
            label, rest = line.split(": ", 1)
            t = rest.split(" per call")[0]
            v = float(t.split()[0]) * (1000 if t.endswith("ms") else 1)
            print("%s: %.1f M instructions (%s virtual)%s" % (label, v / 1000, t, rest.split(" per call")[1]))
        elif line.startswith("a parsed certificate"):
            print("  " + line)
    return qemu_sessions(elf, Qemu)


def qemu_sessions(elf, Qemu):
    # gurux-dlms against the secured meter (fw_secure_meter) on the
    # Cortex-M3, -icount shift=0: session 1 (management, HLS-GMAC) imports
    # the head-end's certificate, session 2 associates with HLS-ECDSA
    # (suite 1, P-256), reads the energy register twice and releases. The
    # firmware adds up the meter's busy time per session (feed and
    # next_event of its channel: every instruction it spends on the
    # session); the wall time is the host's, QEMU emulating.
    import importlib.util
    import os
    import termios
    import tty

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, os.path.join(root, "tests", "interop"))
    spec = importlib.util.spec_from_file_location("fw_suite12", os.path.join(root, "tests", "firmware",
                                                                               "test_fw_suite12.py"))
    try:
        import interop_peers

        interop_peers.IO_TIMEOUT = 300.0  # emulated, pure P-256: seconds per reply
        sys.path.insert(0, os.path.join(root, "tests", "firmware"))
        os.environ["DLMS_FIRMWARE_TESTS"] = "1"
        t = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(t)
    except ImportError as e:
        print("no gurux-dlms session (%s): run from the repository's .venv" % e)
        return 1

    class Meter:
        pty_path = None

    q = Qemu(elf, pty=True, icount=True, timeout=60)
    q.start()
    try:
        q.start_command("import fw_main\nr = fw_main.qemu(meter_module='fw_secure_meter', seed=%r, "
                        "until_release=2)\nprint('sessions', r)" % os.urandom(32))
        line = q.read_until(b"ready", 120) + q.read_until(b"\n", 30)
        m = Meter()
        m.pty_path = q.pty_path
        os.close(q._fd)
        q._fd = None
        import contextlib
        import io

        from gurux_dlms.objects import GXDLMSRegister

        with contextlib.redirect_stdout(io.StringIO()):  # gurux prints what it applies, keys too
            w0 = time.perf_counter()
            ok = t.management(m, "hdlc-pty", lambda p: t.import_certificate(p, t.FX.CLIENT))
            w1 = time.perf_counter()
            p = t.ecdsa_peer(m, "hdlc-pty")
            try:
                p.connect()
                w2 = time.perf_counter()
                reg = GXDLMSRegister("1.0.1.8.0.255")
                p.read(reg, 3)
                p.read(reg, 2)
                p.release()
                w3 = time.perf_counter()
            finally:
                p.close()
        q._fd = os.open(q.pty_path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(q._fd, termios.TCSANOW)
        out = q.read_until(b"\x04", 120).decode(errors="replace")
    finally:
        q.stop()
    sessions = [ln for ln in out.splitlines() if ln.startswith("sessions")]
    if ok != 0 or not sessions:
        print("the sessions failed: import %r, firmware said %r" % (ok, out[-300:]))
        return 1
    busy, used, free = eval(sessions[0].split(" ", 1)[1])  # (busy_us per session, heap used, free)
    print("QEMU Cortex-M3, gurux-dlms over the emulated UART, the secured meter (100 KiB heap):")
    print("  certificate import session (SNRM, HLS-GMAC AARQ/AARE + pass 3/4, import_certificate, RLRQ): "
          "%.1f M instructions in the meter, %.2f s wall" % (busy[0] / 1000, w1 - w0))
    print("  HLS-ECDSA session, suite 1 P-256 (SNRM, AARQ/AARE, pass 3/4, 2 GETs, RLRQ): "
          "%.1f M instructions in the meter, %.2f s wall (association %.2f s, GETs + release %.2f s)"
          % (busy[1] / 1000, w3 - w1, w2 - w1, w3 - w2))
    print("  heap after the sessions: %d B used, %d B free" % (used, free))
    return 0


if __name__ == "__main__":
    if "--qemu" in sys.argv:
        sys.exit(qemu())
    if sys.implementation.name == "cpython":
        sys.path.insert(0, ".")
        sys.path.insert(0, "tests/portable_ecc")
        import cert_fixtures as fx
        from dlms_micro.security import ecc

        old = ecc.use(None)
        run(3)
        certs(fx.CA, fx.CLIENT, NOW, 3)
        try:
            from dlms_micro_cpython import crypto  # noqa: F401  (installs the cryptography backend)

            run(20, full=False)
            certs(fx.CA, fx.CLIENT, NOW, 20)
        finally:
            pass
    else:
        sys.path.insert(0, "tests/portable_ecc")
        import cert_fixtures as fx

        run(1)
        certs(fx.CA, fx.CLIENT, NOW)
