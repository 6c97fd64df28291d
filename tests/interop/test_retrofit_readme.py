# The README's "Retrofit a meter" commands run as written: the definition
# is checked; the gateway and the optical retrofit are served with
# `dlms-micro serve --meter ... --source NAME=DEVICE` (the device a
# pseudo-terminal with pymodbus or the IEC 62056-21 test meter behind it,
# the TCP ports the OS's), and gurux-dlms / dlms-cosem read the values
# through them; the board commands compile, freeze and deploy (--dry-run).

import json
import os
import re
import shlex
import subprocess
import sys
import time
import tty
import types

import pytest
from interop_peers import WRAPPER, CosemPeer, GuruxPeer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cpython"))
sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))

from pty_bridge import PtyBridge  # noqa: E402

pytest.importorskip("pymodbus")


def commands():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    sec = text[text.index("## Retrofit a meter"):]
    sec = sec[:sec.index("\n## ", 5)]
    out = []
    for block in re.findall(r"```sh\n(.*?)```", sec, re.S):
        out += [line for line in block.split("\n") if line.strip()]
    return out


CMDS = commands()


def argv(line):
    words = shlex.split(line)
    if words[0] == "dlms-micro":
        return [sys.executable, "-m", "dlms_micro_cpython"] + words[1:]
    if words[0] == ".venv/bin/python":
        return [sys.executable] + words[1:]
    raise AssertionError("unexpected command in the README: %s" % line)


def test_the_section_has_the_three_examples():
    text = " ".join(CMDS)
    assert "meters/modbus_gateway.json --source bus=" in text
    assert "meters/optical_retrofit.json --source head=" in text
    assert "--board esp32c3_s0_retrofit" in text
    for name in ("s0_retrofit", "optical_retrofit", "modbus_gateway"):
        assert os.path.isfile(os.path.join(ROOT, "meters", name + ".json"))


def test_meter_check():
    for line in CMDS:
        if " meter check " in line:
            p = subprocess.run(argv(line), cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert p.returncode == 0 and ": ok" in p.stdout, (p.stdout, p.stderr)


def serve(line, device, tmp_path):
    # the README's serve line with DEVICE for the source, OS-chosen ports
    # and a data directory of its own
    words = argv(line)
    words = [re.sub(r"=/dev/tty\w+$", "=" + device, w) for w in words]
    words += ["--port", "0", "--hdlc-port", "0", "--data", str(tmp_path / "data")]
    p = subprocess.Popen(words, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    addr = None
    end = time.monotonic() + 30
    seen = []
    while time.monotonic() < end:
        ln = p.stdout.readline()
        if not ln:
            break
        seen.append(ln)
        m = re.match(r"listening: wrapper tcp ([\d.]+):(\d+)", ln)
        if m:
            addr = (m.group(1), int(m.group(2)))
        if ln.startswith("Ctrl-C"):
            break
    assert addr, "".join(seen)
    return p, types.SimpleNamespace(wrapper_address=addr)


def stop(p):
    p.terminate()
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


def poll_until(fn, limit=30):
    end = time.monotonic() + limit
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last is not None:
                return last
        except Exception as e:  # noqa: BLE001 (the meter not read yet)
            last = e
        time.sleep(0.5)
    raise AssertionError("no value in time: %r" % (last,))


def test_serve_the_gateway_on_a_pty_and_read_logical_device_2(tmp_path):
    from gurux_dlms.objects import GXDLMSExtendedRegister
    from test_source_modbus_pymodbus import METER_1, METER_2, words

    line = [c for c in CMDS if "modbus_gateway.json --source" in c][0]
    bus = PtyBridge()
    bus.start()
    image = tmp_path / "image.json"
    image.write_text(json.dumps({"1": {"ir": words(METER_1)}, "2": {"ir": words(METER_2)}}))
    peer = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "cpython", "pymodbus_peer.py"), bus.a,
                             str(image)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p, meter = serve(line, bus.b, tmp_path)
    try:
        def read():
            g = GuruxPeer(meter, WRAPPER, sap=32, logical=2)
            try:
                g.connect()
                r = GXDLMSExtendedRegister("1.0.1.8.0.255")
                v = g.read(r, 2)
                g.read(r, 3)
                g.release()
                return (v, int(r.unit)) if v is not None else None
            finally:
                g.close()

        assert poll_until(read) == (12345678, 30)
    finally:
        stop(p)
        peer.kill()
        peer.wait(10)
        bus.close()


def test_serve_the_optical_retrofit_on_a_pty_and_read_it(tmp_path):
    from test_source_iec21_pty import ReadoutMeter

    line = [c for c in CMDS if "optical_retrofit.json --source" in c][0]
    head = PtyBridge()
    head.start()
    fd = os.open(head.a, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    m = ReadoutMeter(fd, address=b"")
    m.start()
    p, meter = serve(line, head.b, tmp_path)
    try:
        def read():
            c = CosemPeer(meter, WRAPPER, sap=32, logical=1)
            c.connect()
            c.associate()
            try:
                v = c.get(4, "1.0.1.8.0.255", 2)
                return v if v != b"\x00" else None
            finally:
                c.release()
                c.disconnect()

        assert poll_until(read, 40) == b"\x06" + (12345678).to_bytes(4, "big")
    finally:
        stop(p)
        m.stop = True
        m.join(3)
        os.close(fd)
        head.close()


def test_the_board_commands(tmp_path):
    board_lines = [c for c in CMDS if "meter compile" in c or "freeze.py" in c or "deploy.py" in c]
    assert len(board_lines) == 3
    out = str(tmp_path / "mpy")
    for line in board_lines:
        words = [w.replace("build/", str(tmp_path) + "/") for w in argv(line)]
        if "freeze.py" in line:
            words += ["--out", out]
        if "deploy.py" in line:
            words += ["--src", out, "--dry-run"]
        p = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, (line, p.stdout, p.stderr)
    assert os.path.isfile(os.path.join(out, "lib", "s0_retrofit_meter.mpy"))
    assert os.path.isfile(os.path.join(out, "lib", "dlms_micro_mp", "sources.mpy"))
    assert 'board="esp32c3_s0_retrofit"' in p.stdout
