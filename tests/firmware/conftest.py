# Firmware stage (`make test-firmware`, part of `make test`): the stack frozen
# into real MicroPython v1.27.0 builds (`make firmware`), read by the
# third-party clients gurux-dlms and dlms-cosem over real transports:
#   unix32  build/firmware/unix32/micropython -X heapsize=100k (32-bit, real
#           GC): the board's meter on the TCP wrapper and HDLC over TCP
#           (dlms_micro_mp.tcp, the code a board on Wi-Fi/Ethernet runs);
#   qemu    build/firmware/qemu/firmware.elf on a Cortex-M3 in QEMU: the
#           board's meter speaking HDLC on the emulated UART, a pseudo-terminal
#           read through pyserial.
# Collected only when DLMS_FIRMWARE_TESTS=1 (the Makefile sets it after
# building): a plain `pytest` run does not need the compilers. A firmware
# that is missing then fails the stage under CI=true and skips elsewhere.

import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FW = os.path.join(REPO, "build", "firmware")
UNIX = os.path.join(FW, "unix32", "micropython")
ELF = os.path.join(FW, "qemu", "firmware.elf")
TEST_TIME_LIMIT = 60

if os.environ.get("DLMS_FIRMWARE_TESTS") != "1" or sys.implementation.name != "cpython":
    collect_ignore_glob = ["*.py"]
else:
    sys.path.insert(0, os.path.join(REPO, "tests", "interop"))
    sys.path.insert(0, os.path.join(REPO, "tools", "firmware"))
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def need(path):
    if not os.path.isfile(path):
        msg = "%s missing: run make firmware" % os.path.relpath(path, REPO)
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class FirmwareMeter:
    # What tests/interop/interop_peers.py needs of a running meter.
    def __init__(self):
        self.wrapper_address = None
        self.hdlc_address = None
        self.pty_path = None
        self.ready = {}  # fields of the firmware's ready line
        self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def start_unix(*args):
    need(UNIX)
    m = FirmwareMeter()
    wport, hport = free_port(), free_port()
    cwd = tempfile.mkdtemp(prefix="dlms-fw-")
    m.proc = subprocess.Popen(
        [UNIX, "-X", "heapsize=100k", "-m", "fw_main", "--port", str(wport), "--hdlc-port", str(hport), "--quiet"]
        + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = m.proc.stdout.readline()
    if not line.startswith("dlms_micro: ready"):
        m.proc.kill()
        pytest.fail("the unix firmware did not start: %r %s" % (line, m.proc.stdout.read()))
    m.ready = dict(f.split("=", 1) for f in line.split()[2:])
    m.wrapper_address = ("127.0.0.1", wport)
    m.hdlc_address = ("127.0.0.1", hport)
    return m


@pytest.fixture(scope="session")
def unix_meter():
    m = start_unix()
    try:
        yield m
    finally:
        m.proc.kill()
        m.proc.wait(5)


@pytest.fixture(scope="session")
def unix_secure_meter():
    # The frozen secured meter (tools/firmware/secure.meter.json): SAP 1
    # HLS-GMAC with suite 0 through the unix port's cryptolib, demo keys.
    m = start_unix("--meter", "fw_secure_meter")
    try:
        yield m
    finally:
        m.proc.kill()
        m.proc.wait(5)


@pytest.fixture(scope="session")
def qemu_meter():
    need(ELF)
    from qemu import Qemu

    q = Qemu(ELF, pty=True, icount=False, timeout=20)
    q.start()
    try:
        q.start_command("import fw_main\nfw_main.qemu()")
        line = q.read_until(b"\n", 20)
        if b"ready" not in line:
            line += q.read_until(b"\n", 20)
        m = FirmwareMeter()
        m.ready = dict(f.split("=", 1) for f in line.decode().split() if "=" in f)
        # the test's own end of the line is closed: pyserial opens it again
        os.close(q._fd)
        q._fd = None
        m.pty_path = q.pty_path
        m.proc = q.proc
        time.sleep(0.2)
        yield m
    finally:
        q.stop()


class _Watchdog(Exception):
    pass


@pytest.fixture(autouse=True)
def watchdog():
    import signal

    def expired(signum, frame):
        raise _Watchdog("test still running after %d s: stopped by the firmware watchdog" % TEST_TIME_LIMIT)

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
