# The CPython port: file storage (atomic, small interface), the channel
# driver, and the `dlms-micro serve` command as a user runs it (a subprocess
# that prints where it listens and stops cleanly on SIGTERM).

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from dlms_micro_cpython import storage
from dlms_micro_cpython.driver import ChannelDriver

# ------------------------------------------------------------------ storage


def test_storage_put_get_roundtrip(tmp_path):
    s = storage.FileStorage(str(tmp_path))
    assert s.get("ic.32") is None
    s.put("ic.32", b"\x00\x00\x00\x05")
    assert s.get("ic.32") == b"\x00\x00\x00\x05"
    s.put("ic.32", bytearray(b"\x00\x00\x00\x06"))
    assert s.get("ic.32") == b"\x00\x00\x00\x06"
    assert storage.FileStorage(str(tmp_path)).get("ic.32") == b"\x00\x00\x00\x06"
    assert s.keys() == ["ic.32"]
    s.delete("ic.32")
    assert s.get("ic.32") is None
    s.delete("ic.32")  # deleting what is not there is fine


def test_storage_empty_value(tmp_path):
    s = storage.FileStorage(str(tmp_path))
    s.put("k", b"")
    assert s.get("k") == b""


@pytest.mark.parametrize("key", ["", "../x", "a/b", ".hidden", "-x", "x.tmp", "é", "a" * 101, 5])
def test_storage_refuses_keys_that_are_not_plain_names(tmp_path, key):
    s = storage.FileStorage(str(tmp_path))
    with pytest.raises(ValueError):
        s.put(key, b"x")


def test_storage_write_is_atomic_when_interrupted(tmp_path, monkeypatch):
    # A crash between writing the temporary and renaming it leaves the old
    # value, and the temporary is cleaned up on the next start.
    s = storage.FileStorage(str(tmp_path))
    s.put("energy", b"old")

    def crash(src, dst):
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        s.put("energy", b"new value")
    monkeypatch.undo()
    assert s.get("energy") == b"old"
    s2 = storage.FileStorage(str(tmp_path))
    assert s2.get("energy") == b"old"
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_storage_default_dir_follows_xdg_state_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert storage.default_dir() == os.path.join(str(tmp_path), "dlms-micro")
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert storage.default_dir() == os.path.join(str(tmp_path), ".local", "state", "dlms-micro")


# ------------------------------------------------------------------- driver


class _FakeChannel:
    # feed() takes at most `room` bytes per call; each fed chunk is echoed as
    # one EV_SEND; EV_CLOSE when it sees b"!".
    def __init__(self, room=4):
        self.room = room
        self.pending = []
        self.tx_buf = b""
        self.tx_start = self.tx_end = 0
        self.closed = False

    def feed(self, data, start, end, now):
        n = min(self.room, end - start)
        if n:
            self.pending.append(bytes(data[start : start + n]))
        return n

    def next_event(self, now):
        if self.pending:
            chunk = self.pending.pop(0)
            if chunk == b"!":
                return 5
            self.tx_buf = chunk
            self.tx_start, self.tx_end = 0, len(chunk)
            return 1
        return 0

    def close(self):
        self.closed = True


def test_driver_feeds_everything_in_pieces_and_sends_each_event():
    out = []
    ch = _FakeChannel(room=3)
    d = ChannelDriver(ch, out.append, lambda: out.append("CLOSE"))
    d.data_received(b"abcdefgh")
    assert out == [b"abc", b"def", b"gh"]
    d.data_received(b"!")
    assert out[-1] == "CLOSE" and d.closed and ch.closed
    d.data_received(b"more")  # ignored once closed
    assert out[-1] == "CLOSE"


def test_driver_drops_bytes_a_full_link_cannot_take():
    logs = []
    ch = _FakeChannel(room=0)
    d = ChannelDriver(ch, lambda b: None, lambda: None, logs.append)
    d.data_received(b"abc")  # returns instead of spinning
    assert logs and "dropped" in logs[0]


# ---------------------------------------------------------------------- CLI


def _dlms_micro():
    exe = os.path.join(os.path.dirname(sys.executable), "dlms-micro")
    if os.path.exists(exe):
        return [exe]
    return [sys.executable, "-m", "dlms_micro_cpython.cli"]


def test_cli_help_lists_the_serve_options():
    r = subprocess.run(_dlms_micro() + ["serve", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    for opt in ("--host", "--port", "--hdlc-port", "--serial", "--baud", "--pty", "--data", "--log-level"):
        assert opt in r.stdout


def test_cli_serve_prints_where_it_listens_answers_and_stops_on_sigterm(tmp_path):
    proc = subprocess.Popen(
        _dlms_micro() + ["serve", "--port", "0", "--hdlc-port", "0", "--pty", "--data", str(tmp_path / "d"), "--log-level", "debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        wrapper = re.search(r"listening: wrapper tcp 127\.0\.0\.1:(\d+)", text)
        hdlc = re.search(r"listening: hdlc tcp 127\.0\.0\.1:(\d+)", text)
        pty = re.search(r"listening: hdlc pty (\S+)", text)
        assert wrapper and hdlc and pty, text
        assert os.path.exists(pty.group(1))
        # SNRM (client 16, server 1/17) -> UA over HDLC over TCP
        with socket.create_connection(("127.0.0.1", int(hdlc.group(1))), timeout=5) as s:
            s.sendall(bytes.fromhex("7ea00802232193bd647e"))
            ua = s.recv(100)
        assert ua[:7] == bytes.fromhex("7ea01f21022373"), ua.hex()  # UA, F set
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        assert "stopped" in out
        # the debug log shows the frames in hex
        assert "rx 7ea00802232193bd647e" in err
        assert os.path.isdir(tmp_path / "d")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_reports_a_port_in_use(tmp_path):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    try:
        r = subprocess.run(
            _dlms_micro() + ["serve", "--port", str(port), "--hdlc-port", "off", "--data", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        busy.close()
    assert r.returncode == 1
    assert "cannot start" in r.stderr


# --------------------------------------------------------------- demo meter


def _demo(tmp_path, clock=None):
    from dlms_micro_cpython.demo import DemoMeter

    return DemoMeter(storage=storage.FileStorage(str(tmp_path)), wall_clock=clock, seed=7)


def _value(demo, obis):
    from dlms_micro_cpython.demo import entry

    return demo.meter.state[entry(demo.meter, bytes(obis))[4]]


def test_demo_energy_accumulates_from_the_simulated_power(tmp_path, monkeypatch):
    from dlms_micro_cpython import demo as demo_mod

    t = [1000.0]
    monkeypatch.setattr(demo_mod.time, "monotonic", lambda: t[0])
    d = _demo(tmp_path, clock=lambda: 1_700_000_000)  # 2023-11-14 22:13 UTC
    total = 0.0
    for _ in range(600):  # ten minutes in 1 s steps
        total += d.sim.import_w / 3600.0
        t[0] += 1.0
        d.update()
        v = _value(d, (1, 0, 32, 7, 0, 255))
        assert 2070 <= v <= 2530
        assert 0 <= _value(d, (1, 0, 31, 7, 0, 255)) <= 2000
    assert abs(_value(d, (1, 0, 1, 8, 0, 255)) - total) <= 1.0


def test_demo_state_survives_a_restart(tmp_path):
    from dlms_micro_cpython.demo import OBIS_CLOCK, OBIS_ENERGY_EXPORT, OBIS_ENERGY_IMPORT, entry

    d = _demo(tmp_path)
    st = d.meter.state
    st[entry(d.meter, OBIS_ENERGY_IMPORT)[4]] = 123456
    st[entry(d.meter, OBIS_ENERGY_EXPORT)[4]] = 789
    st[entry(d.meter, OBIS_CLOCK)[4]] = -3600  # the clock was set an hour back
    d.meter.roles[2].secret = b"new-pass"  # changed through Association LN
    d.save()
    d2 = _demo(tmp_path)
    assert _value(d2, OBIS_ENERGY_IMPORT) == 123456
    assert _value(d2, OBIS_ENERGY_EXPORT) == 789
    assert _value(d2, OBIS_CLOCK) == -3600
    assert d2.meter.roles[2].secret == b"new-pass"
    assert d2.meter.roles[1].secret == b"12345678"


def test_demo_answers_every_hdlc_address_form_and_the_wrapper(tmp_path):
    d = _demo(tmp_path)
    link = d.make_link("hdlc")
    assert (link.logical, link.physical) == (1, 17)
    assert d.make_link("hdlc-tcp").inter_octet_timeout >= 1000
    assert d.make_link("wrapper").wports == (1,)
    with pytest.raises(ValueError):
        d.make_link("udp")


def test_serial_line_serves_hdlc_through_pyserial(tmp_path):
    # --serial DEVICE: here the device is one end of a pseudo-terminal pair and
    # the test plays the client on the other end.
    import tty

    from dlms_micro_cpython.service import ThreadedService

    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    try:
        with ThreadedService(_demo(tmp_path), wrapper_port=None, hdlc_port=None, serial=path, baudrate=9600) as svc:
            assert svc.serial_line is not None
            os.write(master, bytes.fromhex("7ea00802232193bd647e"))  # SNRM
            got = b""
            deadline = time.monotonic() + 5
            while not (len(got) > 2 and got.endswith(b"\x7e")) and time.monotonic() < deadline:
                import select

                if select.select([master], [], [], 0.1)[0]:
                    got += os.read(master, 256)
            assert got[:7] == bytes.fromhex("7ea01f21022373"), got.hex()  # UA
    finally:
        os.close(master)
        os.close(slave)
