# tools/provision.py against a stand-in board (tests/firmware/fake_mpremote.py:
# the mpremote command lines it runs, on a folder), then that folder's
# storage served by the real unix firmware with no keys of its own
# (fw_main --keys none): the provisioned keys are the ones in force, they
# never appear in the tool's output, a board with keys is refused without
# --force, and --force replaces them.

import json
import os
import subprocess
import sys

from conftest import REPO
from fw_board import start_board
from interop_peers import WRAPPER, GuruxPeer

TOOL = os.path.join(REPO, "tools", "provision.py")
FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_mpremote.py")
BOARD = "esp32c3_battery"
CLOCK = "0.0.1.0.0.255"


def provision(root, *args):
    env = dict(os.environ, FAKE_BOARD_ROOT=str(root))
    return subprocess.run([sys.executable, TOOL, "/dev/fake0", "--mpremote", FAKE] + list(args), env=env,
                          capture_output=True, text=True, timeout=60)


def keys_of(path):
    with open(path) as f:
        doc = json.load(f)
    return {k: bytes.fromhex(doc[k]) for k in ("ek", "ak", "kek", "system_title")}


def gurux_clock(m, keys):
    from gurux_dlms.objects import GXDLMSClock

    p = GuruxPeer(m, WRAPPER, sap=1, keys=keys)
    try:
        p.connect()
        v = p.read(GXDLMSClock(CLOCK), 2)
        p.release()
        p.disconnect()
        return v
    finally:
        p.close()


def test_provisioned_keys_are_the_boards_and_never_printed(tmp_path):
    import pytest

    root = tmp_path / "board"
    root.mkdir()
    saved = tmp_path / "meter1.json"
    r = provision(root, "--save", str(saved))
    assert r.returncode == 0, r.stdout + r.stderr
    assert oct(os.stat(saved).st_mode & 0o777) == "0o600"
    k = keys_of(saved)
    out = r.stdout + r.stderr + (root / "calls").read_text()
    for v in k.values():
        assert v.hex() not in out.lower() and v.hex().upper() not in out
    assert k["system_title"][:3] == b"DMI"
    assert sorted(os.listdir(root / "data")) == ["sec.keys", "sec.title"]
    m = start_board(BOARD, str(root / "data"), str(tmp_path), keys="none")
    try:
        assert m.ready["keys"] == "ok"
        assert gurux_clock(m, k) is not None
        with pytest.raises(Exception):  # the demo keys are not this board's
            gurux_clock(m, None)
    finally:
        m.stop()
    # a board with keys: refused, nothing written
    before = (root / "data" / "sec.keys").read_bytes()
    again = provision(root, "--save", str(tmp_path / "other.json"))
    assert again.returncode == 1 and "holds keys already" in again.stderr and "--force" in again.stderr
    assert (root / "data" / "sec.keys").read_bytes() == before
    assert not (tmp_path / "other.json").exists()
    # --force with a key file: its keys replace them
    newfile = tmp_path / "new.json"
    newfile.write_text(json.dumps({"ek": "11" * 16, "ak": "22" * 16, "kek": "33" * 16,
                                   "system_title": "444D490000000042"}))
    forced = provision(root, "--keys", str(newfile), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "11" * 16 not in forced.stdout + forced.stderr
    new = keys_of(newfile)
    m = start_board(BOARD, str(root / "data"), str(tmp_path), keys="none")
    try:
        assert gurux_clock(m, new) is not None
        with pytest.raises(Exception):
            gurux_clock(m, k)
    finally:
        m.stop()


def test_provision_refuses_what_it_cannot_do_safely(tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    r = provision(root)  # new keys without --save: they would be lost
    assert r.returncode == 1 and "--save" in r.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ek": "00" * 15, "ak": "22" * 16, "kek": "33" * 16}))
    r = provision(root, "--keys", str(bad))
    assert r.returncode == 1 and "ek: 16 bytes needed, 15 given" in r.stderr
    assert not (root / "data").exists()
    exists = tmp_path / "exists.json"
    exists.write_text("{}")
    r = provision(root, "--save", str(exists))
    assert r.returncode == 1 and "not overwriting" in r.stderr


def test_wifi_credentials_are_provisioned_like_the_keys(tmp_path):
    root = tmp_path / "board"
    root.mkdir()
    pw = tmp_path / "wifi.txt"
    pw.write_text("correct horse battery\n")
    r = provision(root, "--save", str(tmp_path / "k.json"), "--wifi-ssid", "meters", "--wifi-password-file", str(pw))
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr + (root / "calls").read_text()
    assert "correct horse" not in out
    sys.path.insert(0, os.path.join(REPO, "ports", "micropython"))
    from dlms_micro_mp import net
    from dlms_micro_mp.storage import FlashStorage

    assert net.wifi_credentials(FlashStorage(str(root / "data"))) == ("meters", "correct horse battery")
    r = provision(root, "--force", "--keys", str(tmp_path / "k.json"), "--wifi-ssid", "meters")
    assert r.returncode == 1 and "--wifi-password-file" in r.stderr
