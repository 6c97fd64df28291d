# The CPython port under hostile and unlucky conditions (issue 18): what a
# user's mistake or a second process must not be able to do (delete a file
# through --pty-link, share a data directory), and the limits of the TCP
# servers (connection cap, inactivity from accept, oversized wrapper frames).

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest

from dlms_micro_cpython import storage
from dlms_micro_cpython.serial_port import PtyLine, PtyLinkError


def _dlms_micro():
    exe = os.path.join(os.path.dirname(sys.executable), "dlms-micro")
    if os.path.exists(exe):
        return [exe]
    return [sys.executable, "-m", "dlms_micro_cpython.cli"]


class _NullChannel:
    # enough of a Channel for a line that is opened and closed
    def __init__(self, kind):
        self.link = None

    def feed(self, data, start, end, now):
        return end - start

    def next_event(self, now):
        return 0

    def close(self):
        pass


def _run(coro):
    return asyncio.run(coro)


# ------------------------------------------------------------ --pty-link


def test_pty_link_refuses_to_replace_a_regular_file_and_leaves_it(tmp_path):
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")

    async def go():
        line = PtyLine(_NullChannel, link_path=str(victim))
        with pytest.raises(PtyLinkError) as e:
            await line.start()
        assert "refusing to replace" in str(e.value) and "a file" in str(e.value)
        await line.stop()  # nothing opened: stopping unlinks nothing either

    _run(go())
    assert victim.read_text() == "root:x:0:0\n"


def test_pty_link_refuses_a_symlink_this_process_did_not_make(tmp_path):
    other = tmp_path / "link"
    os.symlink("/dev/null", str(other))

    async def go():
        with pytest.raises(PtyLinkError):
            await PtyLine(_NullChannel, link_path=str(other)).start()

    _run(go())
    assert os.readlink(str(other)) == "/dev/null"


def test_pty_link_is_made_and_removed_on_stop_when_ours(tmp_path):
    link = tmp_path / "meter-tty"

    async def go():
        line = await PtyLine(_NullChannel, link_path=str(link)).start()
        assert os.readlink(str(link)) == line.path
        await line.stop()

    _run(go())
    assert not os.path.lexists(str(link))


def test_pty_link_stop_never_unlinks_what_replaced_the_link(tmp_path):
    link = tmp_path / "meter-tty"

    async def go():
        line = await PtyLine(_NullChannel, link_path=str(link)).start()
        os.unlink(str(link))
        link.write_text("someone else's file")
        await line.stop()

    _run(go())
    assert link.read_text() == "someone else's file"


def test_pty_link_replaces_a_link_this_process_made(tmp_path):
    link = tmp_path / "meter-tty"

    async def go():
        first = await PtyLine(_NullChannel, link_path=str(link)).start()
        second = await PtyLine(_NullChannel, link_path=str(link)).start()
        assert os.readlink(str(link)) == second.path
        await first.stop()  # no longer its link: left alone
        assert os.readlink(str(link)) == second.path
        await second.stop()

    _run(go())
    assert not os.path.lexists(str(link))


def test_cli_serve_refuses_a_pty_link_over_an_existing_file(tmp_path):
    victim = tmp_path / "precious"
    victim.write_text("keep me")
    r = subprocess.run(
        _dlms_micro() + ["serve", "--port", "off", "--hdlc-port", "off", "--pty", "--pty-link", str(victim),
                         "--data", str(tmp_path / "d")],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 1, r.stderr
    assert "cannot start" in r.stderr and "refusing to replace" in r.stderr, r.stderr
    assert victim.read_text() == "keep me"


# ------------------------------------------------------- data directory


def test_data_directory_lock_refuses_a_second_holder_naming_the_pid(tmp_path):
    first = storage.FileStorage(str(tmp_path), lock=True)
    with pytest.raises(storage.DataDirLocked) as e:
        storage.FileStorage(str(tmp_path), lock=True)
    assert e.value.pid == os.getpid()
    assert "process %d" % os.getpid() in str(e.value)
    first.unlock()
    storage.FileStorage(str(tmp_path), lock=True).unlock()  # free again


def test_data_directory_lock_file_is_not_a_storage_key(tmp_path):
    s = storage.FileStorage(str(tmp_path), lock=True)
    s.put("a", b"1")
    assert s.keys() == ["a"]
    s.unlock()


def test_data_directory_second_lock_does_not_clean_the_holders_temporaries(tmp_path):
    first = storage.FileStorage(str(tmp_path), lock=True)
    inflight = tmp_path / "sec.tx.tmp"
    inflight.write_bytes(b"x")
    with pytest.raises(storage.DataDirLocked):
        storage.FileStorage(str(tmp_path), lock=True)
    assert inflight.exists()
    first.unlock()


def test_cli_second_meter_on_one_data_directory_exits_naming_the_holder(tmp_path):
    d = str(tmp_path / "d")
    holder = subprocess.Popen(
        _dlms_micro() + ["serve", "--port", "0", "--hdlc-port", "off", "--data", d],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = holder.stdout.readline()
            if not line or line.startswith("Ctrl-C"):
                break
        r = subprocess.run(
            _dlms_micro() + ["serve", "--port", "0", "--hdlc-port", "off", "--data", d],
            capture_output=True, text=True, timeout=30,
        )
        assert r.returncode == 1
        assert "in use by process %d" % holder.pid in r.stderr, r.stderr
        assert "listening" not in r.stdout
    finally:
        holder.terminate()
        holder.wait(15)
