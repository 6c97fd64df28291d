# Security suites 1 and 2 on the real unix firmware (32-bit, the stack
# frozen, 100 KiB heap, real GC): the portable P-256 tests of
# tests/portable_ecc (RFC 6979 and CAVP vectors, HLS-ECDSA's pass 3/4, a
# signed GET through a channel, signed pushes) run there whole, the GC
# reclaiming the big ints the pure curve code leaves (the wasm runner
# cannot, and gives them a larger heap instead); the X.509 reader and the
# board's certificate store too, with a P-384 certificate check the wasm
# runner's heap cannot hold.

import os
import subprocess
import time

from conftest import REPO, UNIX, need

ECC_TESTS = os.path.join(REPO, "tests", "portable_ecc")
MODULES = ("test_ecc_p256", "test_hls_ecdsa", "test_signed_requests", "test_signed_push", "test_x509")
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
import test_x509
test_x509.check_suite2_certificate_under_its_p384_ca()  # P-384: too much garbage for the wasm runner
print("PASS test_x509 check_suite2_certificate_under_its_p384_ca")
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


# ------------------------------------------------ certificates and HLS-ECDSA
# The secured meter (tools/firmware/secure.meter.json, fw_main's demo-only
# suite 1 material: the meter's signing key, the trusted CA of
# tests/portable_ecc/cert_fixtures.py, no client key) with gurux-dlms: the
# head-end is unknown to the HLS-ECDSA association (SAP 2, suite 1, P-256)
# until the management association (SAP 1, HLS-GMAC) imports its
# certificate through Security setup (the board's X.509 reader checks it
# against the CA); then it associates, reads and releases; certificates
# that are expired, from another CA, on another curve or cut short are
# refused with other-reason. On the unix firmware over TCP and on the
# Cortex-M3 in QEMU over the emulated UART.

import contextlib  # noqa: E402
import hashlib  # noqa: E402
import importlib.util  # noqa: E402

import pytest  # noqa: E402
from conftest import ELF  # noqa: E402

SERVER_D1 = hashlib.sha256(b"dlms_micro test meter suite 1").digest()  # fw_main's demo key
CLIENT_D1 = hashlib.sha256(b"dlms_micro test head-end suite 1").digest()
ENERGY_IMPORT = "1.0.1.8.0.255"
SECURITY_SETUP = "0.0.43.0.0.255"
OTHER_REASON = 250


def _fixtures():
    spec = importlib.util.spec_from_file_location("cert_fixtures", os.path.join(ECC_TESTS, "cert_fixtures.py"))
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


FX = _fixtures()


def ecdsa_peer(meter, transport, client_d=CLIENT_D1):
    from gurux_dlms.ecdsa import GXPrivateKey, GXPublicKey
    from gurux_dlms.enums import Authentication
    from gurux_dlms.objects.enums import SecuritySuite
    from interop_peers import GuruxPeer

    from dlms_micro.security import ecc

    p = GuruxPeer(meter, transport, sap=2, auth="high-gmac")
    p.client.authentication = Authentication.HIGH_ECDSA
    p.client.ciphering.securitySuite = SecuritySuite.SUITE_1
    server_pub = GXPublicKey.fromRawBytes(b"\x04" + ecc.public_key(ecc.P256, SERVER_D1))
    with contextlib.redirect_stdout(None):  # gurux prints the private key it is given
        # (gurux checks the meter's f(CtoS) with the public half: see docs/compatibility.md)
        p.client.ciphering.signingKeyPair = (server_pub, GXPrivateKey.fromRawBytes(client_d))
    return p


def _security_setup():
    from gurux_dlms.objects import GXDLMSSecuritySetup

    return GXDLMSSecuritySetup(SECURITY_SETUP)


def management(meter, transport, fn):
    # fn(peer) inside an HLS-GMAC (SAP 1) association
    from test_unix_firmware import _gurux

    with contextlib.redirect_stdout(None):  # gurux prints what it applies
        return _gurux(meter, transport, 1, fn)


def import_certificate(p, der):
    # Security setup method 6 with the DER as an octet-string -> 0 or the
    # meter's refusal (action-result)
    from gurux_dlms.enums import DataType
    from interop_peers import GuruxError

    try:
        p.method(p.client.method(_security_setup(), 6, der, DataType.OCTET_STRING))
        return 0
    except GuruxError as e:
        return e.code


def remove_client_certificate(p):
    from gurux_dlms.objects.enums import CertificateEntity, CertificateType

    ss = _security_setup()
    p.method(ss.removeCertificateByEntity(p.client, CertificateEntity.CLIENT, CertificateType.DIGITAL_SIGNATURE,
                                          b"GURUXHES"))


def associate_and_read(meter, transport):
    from gurux_dlms.objects import GXDLMSRegister

    p = ecdsa_peer(meter, transport)
    try:
        with contextlib.redirect_stdout(None):
            p.connect()
            reg = GXDLMSRegister(ENERGY_IMPORT)
            p.read(reg, 3)
            value = p.read(reg, 2)
            p.release()
        assert any(b"\x31\x00\x00" in m for m in p.sent_apdus())  # SC 0x31: A+E, suite 1
        return value
    except Exception:
        print(p.trace_text())
        raise
    finally:
        p.close()


def refused_association(meter, transport):
    p = ecdsa_peer(meter, transport)
    try:
        with contextlib.redirect_stdout(None), pytest.raises(Exception):
            p.connect()
    finally:
        p.close()


def test_hls_ecdsa_after_a_certificate_import_on_the_unix_firmware(unix_secure_meter):
    from interop_peers import HDLC_TCP, WRAPPER

    refused_association(unix_secure_meter, WRAPPER)  # the head-end is not known yet
    assert management(unix_secure_meter, WRAPPER, lambda p: import_certificate(p, FX.CLIENT)) == 0
    infos = management(unix_secure_meter, HDLC_TCP, lambda p: p.read(_security_setup(), 6))
    assert [(i[0], i[1], bytes(i[2])) for i in infos] == [(1, 0, b"\x10\x92")]  # client, signing, 4242
    for transport in (WRAPPER, HDLC_TCP):
        assert associate_and_read(unix_secure_meter, transport) == 0
    management(unix_secure_meter, WRAPPER, remove_client_certificate)
    refused_association(unix_secure_meter, HDLC_TCP)  # unknown again
    assert unix_secure_meter.alive()


def test_bad_certificates_refused_on_the_unix_firmware(unix_secure_meter):
    from interop_peers import WRAPPER

    got = management(unix_secure_meter, WRAPPER, lambda p: [import_certificate(p, d) for d in (
        FX.EXPIRED, FX.UNTRUSTED, FX.K256, FX.CLIENT[:200], FX.CA)])
    assert got == [OTHER_REASON] * 5
    assert management(unix_secure_meter, WRAPPER, lambda p: p.read(_security_setup(), 6)) in (None, [])
    assert unix_secure_meter.alive()


def test_hls_ecdsa_after_a_certificate_import_on_the_qemu_firmware(monkeypatch):
    # The Cortex-M3 in QEMU (no icount: real speed), the secured meter on the
    # emulated UART; its HLS challenges from an HMAC_DRBG seeded with the
    # host's os.urandom. The pure P-256 code there takes seconds per
    # signature check: gurux's reply timeout is raised to 120 s.
    import interop_peers
    from interop_peers import HDLC_PTY
    from qemu import Qemu

    from conftest import FirmwareMeter, need

    need(ELF)
    monkeypatch.setattr(interop_peers, "IO_TIMEOUT", 120.0)
    q = Qemu(ELF, pty=True, icount=False, timeout=30)
    q.start()
    try:
        q.start_command("import fw_main\nfw_main.qemu(meter_module='fw_secure_meter', seed=%r)" % os.urandom(32))
        line = q.read_until(b"\n", 60)
        if b"ready" not in line:
            line += q.read_until(b"\n", 60)
        assert b"ready" in line, line
        m = FirmwareMeter()
        os.close(q._fd)  # pyserial opens the line again
        q._fd = None
        m.pty_path = q.pty_path
        m.proc = q.proc
        t0 = time.monotonic()
        assert management(m, HDLC_PTY, lambda p: import_certificate(p, FX.CLIENT)) == 0
        t1 = time.monotonic()
        assert associate_and_read(m, HDLC_PTY) == 0
        t2 = time.monotonic()
        print("QEMU Cortex-M3 (no icount): certificate import session %.1f s, HLS-ECDSA association + 2 GETs "
              "+ release %.1f s (wall)" % (t1 - t0, t2 - t1))
    finally:
        q.stop()


def test_provision_writes_a_key_files_suite1_material(tmp_path):
    # tools/provision.py with a key file naming the meter's signing key, a
    # client's public key and the trusted CA (PEM): the board's storage then
    # holds the records dlms_micro_mp.certstore reads, and a certificate
    # store over them accepts the CA's client certificate
    import json
    import sys

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import serialization
    from test_provision import provision

    from dlms_micro.security import ecc

    pem = cx509.load_der_x509_certificate(FX.CA).public_bytes(serialization.Encoding.PEM).decode()
    kf = tmp_path / "meter.json"
    kf.write_text(json.dumps({"ek": "11" * 16, "ak": "22" * 16, "kek": "33" * 16, "system_title": "444D490000BC614E",
                              "signing_keys": {"1": SERVER_D1.hex()},
                              "client_signing_keys": {b"OTHERHES".hex(): ecc.public_key(ecc.P256, CLIENT_D1).hex()},
                              "ca_certificate": pem}))
    root = tmp_path / "board"
    root.mkdir()
    r = provision(root, "--keys", str(kf))
    assert r.returncode == 0, r.stdout + r.stderr
    assert SERVER_D1.hex() not in (r.stdout + r.stderr + (root / "calls").read_text()).lower()
    assert sorted(os.listdir(root / "data")) == ["sec.ca", "sec.clients1", "sec.keys", "sec.sign1", "sec.title"]
    sys.path.insert(0, os.path.join(REPO, "ports", "micropython"))
    try:
        from dlms_micro_mp import certstore
        from dlms_micro_mp.storage import FlashStorage
    finally:
        sys.path.remove(os.path.join(REPO, "ports", "micropython"))
    st = FlashStorage(str(root / "data"))
    assert st.get("sec.sign1") == SERVER_D1 and st.get("sec.ca") == FX.CA
    assert st.get("sec.clients1") == b"OTHERHES" + ecc.public_key(ecc.P256, CLIENT_D1)
    # what the board's boot makes of them (certstore.attach over the key store's storage)
    from dlms_micro.meter import Meter, Role

    class Ks:
        storage = st
        system_title = bytes.fromhex("444D490000BC614E")

    class Defn:
        ROLES = ((0, 2, 7, b"", 0, 3, 1),)

    m = Meter((), (Role(2, 7, security_suite=1),), [], wall_clock=lambda: 1796126400)
    m.keys = Ks()
    certstore.attach((m,), Ks(), Defn())
    assert m.signing.key_pair.public == ecc.public_key(ecc.P256, SERVER_D1)
    assert m.signing.client_key(b"OTHERHES") == ecc.public_key(ecc.P256, CLIENT_D1)
    m.cert_store.import_certificate(FX.CLIENT)
    assert m.signing.client_key(b"GURUXHES") is not None


def test_key_file_suite1_material_and_a_certificate_request_on_the_unix_firmware(tmp_path):
    # fw_main --keys FILE with the suite 1 members (dlms_micro_mp.certstore
    # reads them on MicroPython: PEM through binascii): the client named in
    # client_signing_keys associates with HLS-ECDSA at once, no certificate
    # needed; generate_certificate_request (in that suite 1 association)
    # answers a PKCS #10 request for the key file's signing key that
    # cryptography verifies
    import json

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import serialization
    from gurux_dlms.enums import DataType
    from interop_peers import WRAPPER

    from conftest import start_unix
    from dlms_micro.security import ecc

    pem = cx509.load_der_x509_certificate(FX.CA).public_bytes(serialization.Encoding.PEM).decode()
    kf = tmp_path / "keys.json"
    kf.write_text(json.dumps({"ek": "000102030405060708090A0B0C0D0E0F", "ak": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF",
                              "kek": "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF",
                              "signing_keys": {"1": SERVER_D1.hex()},
                              "client_signing_keys": {b"GURUXHES".hex(): ecc.public_key(ecc.P256, CLIENT_D1).hex()},
                              "ca_certificate": pem}))
    m = start_unix("--meter", "fw_secure_meter", "--keys", str(kf))
    try:
        assert associate_and_read(m, WRAPPER) == 0
        # in the suite 1 association: the request is for that suite's key
        p = ecdsa_peer(m, WRAPPER)
        try:
            with contextlib.redirect_stdout(None):
                p.connect()
                req = p.method(p.client.method(_security_setup(), 5, 0, DataType.ENUM))
                p.release()
        finally:
            p.close()
        csr = cx509.load_der_x509_csr(bytes(req.value))
        assert csr.is_signature_valid and csr.subject.rfc4514_string() == "CN=444D490000BC614E"
        nums = csr.public_key().public_numbers()
        assert nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big") == ecc.public_key(ecc.P256, SERVER_D1)
        assert m.alive()
    finally:
        m.proc.kill()
        m.proc.wait(5)
