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
    for opt in ("--host", "--port", "--hdlc-port", "--serial", "--baud", "--pty", "--data", "--keys", "--log-level"):
        assert opt in r.stdout
    # the demo-only keys and the system title rule are stated
    text = " ".join(r.stdout.split())
    for fact in ("000102030405060708090A0B0C0D0E0F", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF", "444D490000BC614E"):
        assert fact in text, fact


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
        # the demo keys are printed, and said to be demo-only
        assert "DEMO-ONLY keys" in text and "EK 000102030405060708090A0B0C0D0E0F" in text, text
        assert "system title 444D490000BC614E, policy 0x6C" in text, text
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


def _serve_once(args, tmp_path):
    # `dlms-micro serve` with every transport off: it prints what it would
    # serve and stops at once.
    return subprocess.run(
        _dlms_micro() + ["serve", "--port", "off", "--hdlc-port", "off", "--data", str(tmp_path / "d")] + args,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_cli_keys_file_replaces_the_demo_keys_and_is_never_printed(tmp_path):
    f = tmp_path / "keys.json"
    f.write_text('{"ek": "11111111111111111111111111111111", "ak": "22222222 22222222 22222222 22222222",'
                 ' "kek": "33:33:33:33:33:33:33:33:33:33:33:33:33:33:33:33", "system_title": "4142434400000001"}')
    r = _serve_once(["--keys", str(f)], tmp_path)
    assert "nothing to serve" in r.stderr
    assert "system title 4142434400000001" in r.stdout, r.stdout
    assert "keys from %s" % f in r.stdout
    assert "DEMO-ONLY" not in r.stdout
    for k in ("1111", "2222", "3333"):
        assert k not in r.stdout + r.stderr
    # the file's keys were stored: without --keys the meter keeps them
    r = _serve_once([], tmp_path)
    assert "keys stored in the data directory" in r.stdout, r.stdout
    assert "system title 444D490000BC614E" in r.stdout


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not JSON"),
        ('{"ek": "00", "ak": "00", "kek": "00"}', "ek: 16 bytes needed, 1 given"),
        ('{"ek": "000102030405060708090A0B0C0D0E0F", "ak": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"}', "kek is missing"),
        ('{"ek": "000102030405060708090A0B0C0D0E0F", "ak": "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF", "kek": "zz"}', "kek: not a hex string"),
        ('{"EK": "000102030405060708090A0B0C0D0E0F"}', "unknown member(s): EK"),
    ],
)
def test_cli_refuses_a_bad_key_file(tmp_path, content, message):
    f = tmp_path / "keys.json"
    f.write_text(content)
    r = _serve_once(["--keys", str(f)], tmp_path)
    assert r.returncode == 1
    assert "bad key file" in r.stderr and message in r.stderr, r.stderr
    assert "0001020304" not in r.stderr  # no key value in a message


def test_cli_refuses_a_corrupt_stored_key_record(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "sec.keys").write_bytes(b"\x01" + b"\x00" * 79)  # wrong CRC
    r = _serve_once([], tmp_path)
    assert r.returncode == 1
    assert "cannot load the security state" in r.stderr and "sec.keys" in r.stderr, r.stderr


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
    d.meter.roles[1].secret = b"new-pass"  # the reader's, changed through Association LN
    d.save()
    d2 = _demo(tmp_path)
    assert _value(d2, OBIS_ENERGY_IMPORT) == 123456
    assert _value(d2, OBIS_ENERGY_EXPORT) == 789
    assert _value(d2, OBIS_CLOCK) == -3600
    assert d2.meter.roles[1].secret == b"new-pass"
    d2.meter.roles[1].secret = b"12345678"  # back to the default: nothing stored
    d2.save()
    assert _demo(tmp_path).meter.roles[1].secret == b"12345678"
    assert not any(k.startswith("demo.lls-secret") for k in storage.FileStorage(str(tmp_path)).keys())


def test_demo_system_title_is_the_manufacturer_id_and_the_serial_number():
    from dlms_micro_cpython.demo import SERIAL_NUMBER, system_title_for

    assert system_title_for(SERIAL_NUMBER) == b"DMI\x00\x00\xbc\x61\x4e"  # 12345678 = 0xBC614E
    assert system_title_for(b"1099511627775") == b"DMI\xff\xff\xff\xff\xff"
    with pytest.raises(ValueError):
        system_title_for(b"1099511627776")  # more than 5 bytes


def test_demo_management_is_hls_gmac_ciphered_with_the_demo_keys(tmp_path):
    from dlms_micro.meter import MECH_HLS_GMAC
    from dlms_micro_cpython.demo import DEMO_AK, DEMO_EK, DEMO_KEK

    d = _demo(tmp_path)
    mgmt = d.meter.roles[2]
    assert (mgmt.client_sap, mgmt.mechanism, mgmt.ciphered) == (1, MECH_HLS_GMAC, True)
    assert [r.client_sap for r in d.meter.roles[:2]] == [16, 32] and not any(r.ciphered for r in d.meter.roles[:2])
    k = d.meter.keys
    assert (k.ek, k.ak, k.kek, k.policy) == (DEMO_EK, DEMO_AK, DEMO_KEK, 0x6C)
    assert d.uses_demo_keys and d.meter.random_bytes is os.urandom
    assert "0001020304" not in repr(k)


def test_demo_invocation_counters_survive_a_restart(tmp_path):
    from dlms_micro.security import keys as ks

    d = _demo(tmp_path)
    k = d.meter.keys
    first = [k.next_tx_ic() for _ in range(3)]
    assert k.accept_rx_ic(ks.KEY_EK, b"CLIENT01", 0, 41)
    d.save()
    k2 = _demo(tmp_path).meter.keys
    assert k2.next_tx_ic() > max(first)  # never a value handed out before
    assert not k2.check_rx_ic(ks.KEY_EK, b"CLIENT01", 0, 41)  # a replay stays one
    assert k2.check_rx_ic(ks.KEY_EK, b"CLIENT01", 0, 42)


def test_demo_keys_given_replace_stored_ones_and_reset_their_counters(tmp_path):
    from dlms_micro.security import keys as ks
    from dlms_micro_cpython.demo import DEMO_KEK, DemoMeter

    d = _demo(tmp_path)
    assert d.meter.keys.accept_rx_ic(ks.KEY_EK, b"CLIENT01", 0, 41)
    d.save()
    new = {"ek": b"\x11" * 16, "ak": b"\x22" * 16, "kek": DEMO_KEK, "system_title": None}
    d2 = DemoMeter(storage=storage.FileStorage(str(tmp_path)), seed=7, keys=new)
    k = d2.meter.keys
    assert (k.ek, k.ak, k.kek) == (b"\x11" * 16, b"\x22" * 16, DEMO_KEK) and not d2.uses_demo_keys
    assert k.check_rx_ic(ks.KEY_EK, b"CLIENT01", 0, 0)  # a new EK: its counters start over
    # and they stay without the file
    k3 = _demo(tmp_path).meter.keys
    assert (k3.ek, k3.ak) == (b"\x11" * 16, b"\x22" * 16)


def test_demo_without_storage_still_has_a_key_store():
    from dlms_micro_cpython.demo import DemoMeter

    d = DemoMeter(seed=1)
    assert d.meter.keys.next_tx_ic() == 1  # a new meter never sends counter 0


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
