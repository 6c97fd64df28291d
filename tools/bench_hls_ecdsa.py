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
# collected). general-ciphering (run_gcipher): the meter's cost of a request
# per kind of key-info (identified, wrapped, static unified, one-pass);
# --gcipher with --qemu runs it on the Cortex-M3 too, and run_gpush: a push
# protected by general-ciphering (identified key, static unified model).

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
EK = bytes(range(16))
AK = bytes(range(0xD0, 0xE0))
KEK = bytes(range(0x20, 0x30))
GET = b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00"
TID = b"\x00\x00\x00\x00\x00\x00\x00\x01"


def _d(label):
    from dlms_micro.security import sha2

    return sha2.digest("sha256", label)


class _Mem(dict):
    # the key store's storage, in RAM
    def put(self, key, value):
        self[key] = bytes(value)


def _meter():
    from dlms_micro.cosem.register import REGISTER
    from dlms_micro.meter import Meter, Role
    from dlms_micro.security import ecc, suite12
    from dlms_micro.security import keys as ks

    table = ((3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, ((b"\x01\x01\x01", b"\x01"),), (0, 30)),)
    m = Meter(table, (Role(1, ciphered=True, security_suite=1, policy=0x6C),), [12345])
    m.keys = ks.KeyStore(_Mem(), ST_S, ek=EK, ak=AK, kek=KEK)
    c = ecc.P256
    m.signing = suite12.Signing(
        ecc.KeyPair(c, _d(b"meter signing")), {ST_C: ecc.public_key(c, _d(b"client signing"))},
        ecc.KeyPair(c, _d(b"meter agreement")), {ST_C: ecc.public_key(c, _d(b"client agreement"))})
    n = [0]

    def rnd(k):
        n[0] += 1
        return _d(b"random %d" % n[0])[0:k]

    m.random_bytes = rnd
    return m


def _channel():
    from dlms_micro import server
    from dlms_micro.link import wrapper
    from dlms_micro.security import gcipher

    ch = server.Channel(_meter(), wrapper.WrapperServer(max_apdu=1024))
    g = gcipher.new_gcm(16)
    g.set_key(EK)
    ini = bytearray(b"\x01\x00\x00\x00\x06\x5f\x1f\x04\x00\x00\x7e\x1f\x04\xb0")
    tag = bytearray(12)
    g.encrypt(ST_C + b"\x00\x00\x00\x01", 0, b"\x31" + AK, 0, 17, ini, 0, len(ini), tag, 0, 12)
    ini = b"\x21" + bytes([5 + len(ini) + 12]) + b"\x31\x00\x00\x00\x01" + bytes(ini) + bytes(tag)
    body = (b"\xa1\x09\x06\x07\x60\x85\x74\x05\x08\x01\x03\xa6\x0a\x04\x08" + ST_C
            + bytes([0xBE, len(ini) + 2, 0x04, len(ini)]) + ini)
    _send(ch, bytes([0x60, len(body)]) + body)
    return ch


def _send(ch, apdu):
    from dlms_micro import server

    n = len(apdu)
    data = bytes([0, 1, 0, 1, 0, 1, n >> 8, n & 0xFF]) + apdu
    k = 0
    got = None
    while k < len(data):
        k += ch.feed(data, k, len(data), 0)
        while ch.next_event(0) != server.EV_NONE:
            got = bytes(ch.tx_buf[ch.tx_start + 8 : ch.tx_end])
    return got


def _requests(kind, count):
    # count general-ciphering requests of one kind, invocation counters 2...
    from dlms_micro.security import ecc, gcipher, keywrap

    c = ecc.P256
    out = []
    for i in range(count):
        r = gcipher.General()
        r.tid = TID
        r.originator = ST_C
        r.recipient = ST_S
        key = EK
        if kind == "identified":
            r.key_info = 0
            r.key_id = 0
        elif kind == "wrapped":
            key = _d(b"wrapped %d" % i)[0:16]
            r.key_info = 1
            r.kek_id = 0
            r.key_data = keywrap.wrap(KEK, key)
        else:
            r.key_info = 2
            meter_ka = ecc.public_key(c, _d(b"meter agreement"))
            if kind == "static":
                r.params = b"\x02"
                z = ecc.ecdh(c, _d(b"client agreement"), meter_ka)
            else:
                r.params = b"\x01"
                e = _d(b"ephemeral %d" % i)
                q = ecc.public_key(c, e)
                r.key_data = q + ecc.sign_message(c, _d(b"client signing"), q)
                z = ecc.ecdh(c, e, meter_ka)
            key = gcipher.derive(1, r.params[0], z, ST_C, ST_S, TID)
        r.content = gcipher.seal(gcipher.new_gcm(16), key, 0x31, 2 + i, ST_C, AK, r, GET)
        out.append(r.encode())
    return out


def _answered(label, ch, reqs):
    def fn():
        rsp = _send(ch, reqs.pop(0))
        if rsp is None or rsp[0] != 0xDD:
            raise RuntimeError("%s: refused: %r" % (label, rsp))

    return fn


def run_gcipher(n=1):
    # general-ciphering (APDU DD, suite 1, P-256) through a Channel, per
    # kind of key-info: a GET deciphered, served and answered in the same
    # form (the client's requests built before the clock starts)
    from dlms_micro.security import ecc

    name = ecc.backend_name()
    for kind, what in (("identified", "identified key (AES-GCM only)"), ("wrapped", "wrapped key"),
                       ("static", "static unified model, P-256, a client's first request (one ECDH)"),
                       ("one-pass", "one-pass Diffie-Hellman, P-256")):
        reqs = _requests(kind, n + 1 if kind == "static" else n)
        ch = _channel()
        k = 1 if kind == "static" else n
        measure("general-ciphering, %s (%s)" % (what, name), _answered(what, ch, reqs), k)
        if kind == "static":
            measure("general-ciphering, static unified model, the next requests (Z kept) (%s)" % name,
                    _answered(what, ch, reqs), n)


def run_gpush(n=1):
    # A Push setup's DataNotification protected by general-ciphering
    # (app/notify.Notifier, suite 1): the identified key; the static unified
    # model with the head-end's key agreement key, its first push (one
    # ECDH) and the next ones (Z kept)
    from dlms_micro.app import notify
    from dlms_micro.cosem.push import PUSH_SETUP, PushState
    from dlms_micro.cosem.register import REGISTER
    from dlms_micro.meter import Meter, Role
    from dlms_micro.security import ecc

    name = ecc.backend_name()
    keyed = _meter()
    push_ln = b"\x00\x00\x19\x09\x00\xff"
    buf = bytearray(300)
    for kind, what in ((notify.GC_IDENTIFIED, "identified key"), (notify.GC_AGREED, "static unified model, P-256")):
        param = (((40, push_ln, 1, 0), (3, b"\x01\x00\x01\x08\x00\xff", 2, 0)), 0, 32, 2, (kind, 1, ST_C))
        table = ((3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, ((b"\x01\x01\x01", b"\x01"),), (0, 30)),
                 (40, 0, push_ln, PUSH_SETUP, 1, ((b"\x01" * 7, b"\x01"),), param))
        m = Meter(table, (Role(1, ciphered=True, security_suite=1, policy=0x6C),), [12345, PushState(param)])
        m.keys = keyed.keys
        m.signing = keyed.signing
        nf = notify.Notifier(m)

        def fn():
            if nf.encode(table[1], buf, 8, len(buf)) < 0:
                raise RuntimeError("general-ciphering push refused")

        if kind == notify.GC_AGREED:
            measure("general-ciphering push, %s, the first (one ECDH) (%s)" % (what, name), fn, 1)
            measure("general-ciphering push, %s, the next ones (Z kept) (%s)" % (what, name), fn, n)
        else:
            fn()  # warm-up: first-use imports and the AES-GCM object
            measure("general-ciphering push, %s (%s)" % (what, name), fn, n)


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
        if "--gcipher" in sys.argv:
            out += "\n" + q.exec("run_gcipher(1)", 2400)
            out += "\n" + q.exec("run_gpush(1)", 1200)
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
        run_gcipher(3)
        run_gpush(3)
        try:
            from dlms_micro_cpython import crypto  # noqa: F401  (installs the cryptography backend)

            run(20, full=False)
            certs(fx.CA, fx.CLIENT, NOW, 20)
            run_gcipher(20)
            run_gpush(20)
        finally:
            pass
    else:
        sys.path.insert(0, "tests/portable_ecc")
        import cert_fixtures as fx

        run(1)
        certs(fx.CA, fx.CLIENT, NOW)
        run_gcipher(1)
        run_gpush(1)
