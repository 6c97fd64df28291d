# Pushes from each shipped board definition on the real unix firmware: the
# management association (SAP 1, HLS-GMAC, suite 0) sets the Push setup's
# destination to a `dlms-micro listen` (the CPython port's push listener,
# given the demo keys) and calls its push method; the board's push sender
# (dlms_micro_mp.push, a non-blocking loop port) sends the DataNotification
# ciphered (general-glo-ciphering, the key store's transmit counter) over
# TCP, and the listener deciphers and decodes it.

import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import REPO, free_port
from fw_board import BOARDS, start_board
from interop_peers import DEMO_AK, DEMO_EK, HDLC_TCP, CosemPeer

PUSH = "0.0.25.9.0.255"


@pytest.fixture
def listener():
    import threading

    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "dlms-micro")
    proc = subprocess.Popen([exe, "listen", "--port", str(port), "--ek", DEMO_EK.hex(), "--ak", DEMO_AK.hex()],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    proc.lines = []
    threading.Thread(target=lambda: proc.lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield proc, port
    proc.terminate()
    proc.wait(5)


def _read_until(proc, text, seconds=10):
    # the listener's output once a line holds text (or the time is up)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not any(text in ln for ln in proc.lines):
        time.sleep(0.05)
    return "".join(proc.lines)


@pytest.mark.parametrize("board", BOARDS)
def test_board_pushes_a_ciphered_notification_that_listen_deciphers(board, listener, tmp_path):
    proc, port = listener
    m = start_board(board, str(tmp_path / "data"), str(tmp_path))
    try:
        dest = ("127.0.0.1:%d" % port).encode()
        p = CosemPeer(m, HDLC_TCP, sap=1)
        try:
            p.connect()
            p.associate()
            p.set(40, PUSH, 3, bytes([0x02, 0x03, 0x16, 0x00, 0x09, len(dest)]) + dest + b"\x16\x00")
            p.action(40, PUSH, 1, b"\x0f\x00")
            p.release()
        finally:
            p.disconnect()
            p.close()
        out = _read_until(proc, "push setup 0-0:25.9.0*255")
        print(out)
        # deciphered with the demo keys: the header, then the decoded body
        assert "general-glo-ciphering" in out and "push setup 0-0:25.9.0*255" in out, out + m.log_text()[-2000:]
        assert "date-time " in out
        assert "sent to 127.0.0.1:%d" % port in m.log_text()
    finally:
        m.stop()
