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


# ------------------------------------------------------------- TCP limits


class _Meterish:
    # a served channel per connection: a public association on the wrapper
    def __init__(self):
        from dlms_micro.meter import Meter, Role

        self.meter = Meter((), (Role(16),), [])

    def make_channel(self, kind):
        from dlms_micro import server
        from dlms_micro.link import wrapper

        return server.Channel(self.meter, wrapper.WrapperServer(max_apdu=1024))


class _Served:
    # a TcpServer in a loop of its own thread; log lines collected
    def __init__(self, **kw):
        import logging
        import threading

        from dlms_micro_cpython.tcp import WRAPPER, TcpServer

        self.lines = []
        outer = self

        class _H(logging.Handler):
            def emit(self, record):
                outer.lines.append(record.getMessage())

        self.logger = logging.getLogger("test.port_hostile.%d" % id(self))
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(_H())
        self.loop = asyncio.new_event_loop()
        self.srv = TcpServer(_Meterish().make_channel, WRAPPER, "127.0.0.1", 0, self.logger, **kw)
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.srv.start())
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(5)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.srv.port), timeout=5)

    def count(self, text):
        return sum(1 for line in list(self.lines) if text in line)

    def close(self):
        asyncio.run_coroutine_threadsafe(self.srv.stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _closed_within(sock, seconds):
    # True when the peer closes (EOF or reset) within `seconds`
    sock.settimeout(seconds)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


AARQ_PUBLIC = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")


def _wrap(apdu, src=16, dst=1, length=None):
    n = len(apdu) if length is None else length
    return bytes([0, 1, 0, src, 0, dst, n >> 8, n & 0xFF]) + apdu


def test_tcp_connection_that_never_sends_is_closed_by_the_idle_timeout():
    s = _Served(idle_timeout=0.5)
    try:
        c = s.connect()
        t = time.monotonic()
        assert _closed_within(c, 5)
        assert 0.4 < time.monotonic() - t < 3
        c.close()
        assert s.count("nothing to answer") == 1
    finally:
        s.close()


def test_tcp_client_trickling_bytes_is_closed_by_the_idle_timeout():
    s = _Served(idle_timeout=0.6)
    try:
        c = s.connect()
        t = time.monotonic()
        closed = False
        # a wrapper header claiming 1000 bytes, then one byte every 0.1 s
        c.sendall(_wrap(b"", length=1000))
        while time.monotonic() - t < 4:
            try:
                c.sendall(b"\x00")
            except OSError:
                closed = True
                break
            if _closed_within(c, 0.1):
                closed = True
                break
        assert closed and time.monotonic() - t < 3
        c.close()
    finally:
        s.close()


def test_tcp_client_that_is_answered_keeps_its_connection():
    s = _Served(idle_timeout=0.6)
    try:
        c = s.connect()
        c.sendall(_wrap(AARQ_PUBLIC))
        assert c.recv(200)[8] == 0x61  # AARE
        for _ in range(6):  # 1.8 s of requests, each answered
            time.sleep(0.3)
            c.sendall(_wrap(bytes.fromhex("C001C1000100000100FF0200")))
            assert c.recv(200)[:2] == b"\x00\x01"
        c.close()
    finally:
        s.close()


def test_tcp_connections_beyond_the_cap_are_closed_and_logged_once():
    s = _Served(max_connections=2, idle_timeout=0)
    try:
        kept = [s.connect(), s.connect()]
        time.sleep(0.2)
        extra = [s.connect() for _ in range(5)]
        for c in extra:
            assert _closed_within(c, 3)
            c.close()
        assert s.count("the cap") == 1, s.lines
        for c in kept:  # still served
            c.sendall(_wrap(AARQ_PUBLIC))
            assert c.recv(200)[8] == 0x61
        kept.pop().close()
        time.sleep(0.3)
        assert s.count("below the connection cap again (5 connections refused") == 1, s.lines
        again = s.connect()
        again.sendall(_wrap(AARQ_PUBLIC))
        assert again.recv(200)[8] == 0x61
        again.close()
        kept[0].close()
    finally:
        s.close()


def test_tcp_oversized_wrapper_message_is_answered_pdu_too_long():
    s = _Served(idle_timeout=0)
    try:
        c = s.connect()
        c.sendall(_wrap(bytes(100), length=2000))  # over the 1024 the meter takes
        assert c.recv(100) == _wrap(b"\xd8\x01\x04", src=1, dst=16)
        c.sendall(bytes(1900) + _wrap(AARQ_PUBLIC))  # the rest skipped, then served
        assert c.recv(200)[8] == 0x61
        c.close()
    finally:
        s.close()


def test_cli_serve_out_of_file_descriptors_logs_once_not_per_accept(tmp_path):
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    proc = subprocess.Popen(
        _dlms_micro() + ["serve", "--port", "0", "--hdlc-port", "off", "--max-connections", "1000",
                         "--data", str(tmp_path / "d")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit,
    )
    clients = []
    try:
        port = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("listening: wrapper"):
                port = int(line.rsplit(":", 1)[1])
            if line.startswith("Ctrl-C"):
                break
        assert port, "not started"
        for _ in range(80):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=2))
            except OSError:
                break
        time.sleep(2.5)
        for c in clients:
            c.close()
        clients = []
        time.sleep(1.5)
        c = socket.create_connection(("127.0.0.1", port), timeout=5)  # served again
        c.sendall(_wrap(AARQ_PUBLIC))
        assert c.recv(200)[8] == 0x61
        c.close()
    finally:
        for c in clients:
            c.close()
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert err.count("cannot accept connections") == 1, err[-3000:]
    assert "Traceback" not in err and "out of system resource" not in err, err[-3000:]
    assert err.count("accepting connections again") == 1, err[-3000:]
