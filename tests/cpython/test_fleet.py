# The fleet simulator's parts without a network (fleet.py, fleet_faults.py,
# fleet_cli.py): the documented key derivation, identities, the consumption
# model's consistency (registers, load profile, daily values), computed
# profile rows read through a Channel, bad input (one line, exit code 2),
# and the data directory lock. tests/interop/test_fleet_interop.py reads a
# fleet with gurux-dlms and dlms-cosem.

import hashlib
import hmac
import os
import subprocess
import sys
import time

import pytest

from dlms_micro_cpython import cli, fleet_faults
from dlms_micro_cpython.fleet import DEMO_MASTER, QUARTER, Fleet, fleet_keys, identity
from dlms_micro_cpython.fleet_cli import load_definition


@pytest.fixture(scope="module")
def compiled():
    return load_definition(None)


def test_keys_are_hmac_sha256_of_label_and_system_title_as_documented():
    title = bytes.fromhex("444D490000BC6151")
    k = fleet_keys(DEMO_MASTER, title)
    for name, label in (("ek", b"EK"), ("ak", b"AK"), ("kek", b"KEK")):
        want = hmac.new(DEMO_MASTER, b"dlms-micro fleet" + title + label, hashlib.sha256).digest()[:16]
        assert k[name] == want
    # a fixed vector for head-ends to check their own derivation against
    assert k["ek"].hex().upper() == "E881342AA605576218095AA2C535FC50"


def test_suite12_keys_follow_the_documented_kdf():
    from dlms_micro.security import ecc

    title = bytes.fromhex("444D490000BC6151")
    k = fleet_keys(DEMO_MASTER, title, (1, 2))
    assert k["ek"] == fleet_keys(DEMO_MASTER, title)["ek"]  # suite 0's do not change
    for s in (1, 2):
        curve = ecc.for_suite(s)
        h = int.from_bytes(hmac.new(DEMO_MASTER, b"dlms-micro fleet" + title + b"SIGN%d" % s,
                                    hashlib.sha512).digest(), "big")
        d = k["signing_keys"][s]
        assert d == (1 + h % (curve.n - 1)).to_bytes(curve.size, "big")
        assert len(ecc.public_key(curve, d)) == 2 * curve.size
    for name, label in (("suite2_ek", b"EK2"), ("suite2_ak", b"AK2")):
        assert k[name] == hmac.new(DEMO_MASTER, b"dlms-micro fleet" + title + label, hashlib.sha256).digest()
        assert len(k[name]) == 32
    other = fleet_keys(DEMO_MASTER, bytes.fromhex("444D490000BC6152"), (1,))
    assert other["signing_keys"][1] != k["signing_keys"][1]
    assert "suite2_ek" not in other  # suite 2 keys only where suite 2 is used
    # the public key a head-end gets from `fleet keys` is d's (checked with
    # `cryptography`), and a fixed vector for head-ends' own derivation
    from cryptography.hazmat.primitives.asymmetric import ec

    for s, cc in ((1, ec.SECP256R1()), (2, ec.SECP384R1())):
        d = k["signing_keys"][s]
        pub = ec.derive_private_key(int.from_bytes(d, "big"), cc).public_key().public_numbers()
        size = len(d)
        assert ecc.public_key(ecc.for_suite(s), d) == pub.x.to_bytes(size, "big") + pub.y.to_bytes(size, "big")
    assert ecc.public_key(ecc.P256, k["signing_keys"][1]).hex().upper()[:16] == "E923BD29016BF98E"


def test_identities_derive_from_the_index(compiled):
    a, b = identity(compiled, 0), identity(compiled, 4321)
    assert (a.serial_number, a.name, a.system_title, a.physical) == (
        b"12345678", b"DMI0000012345678", bytes.fromhex("444D490000BC614E"), 16)
    assert (b.serial_number, b.name, b.physical) == (b"12349999", b"DMI0000012349999", 4337)
    assert b.system_title == b"DMI" + (12349999).to_bytes(5, "big")


def _get(ch, apdu):
    # one wrapper request (client SAP 32) through a Channel; the response APDUs
    msg = bytes([0, 1, 0, 32, 0, 1]) + len(apdu).to_bytes(2, "big") + apdu
    ch.feed(msg, 0, len(msg), 0)
    out = []
    while True:
        ev = ch.next_event(0)
        if ev == 0:
            return out
        if ev == 1:
            out.append(bytes(ch.tx_buf[ch.tx_start + 8:ch.tx_end]))


AARQ_32 = bytes.fromhex("6036a1090607608574050801018a0207808b0760857405080201ac0a80083132333435363738"
                        "be10040e01000000065f1f0400401e5dffff")


def test_registers_profile_rows_and_daily_values_agree(compiled):
    f = Fleet(compiled, 50, seed=3)
    m = f.meter(7)
    lp = m.generated[0]
    daily = [g for g in m.generated if g.period == 86400][0]
    a = lp.total - 1  # the latest row
    row = lp.row(a)
    # the row's import energy (column 2: 05 06 u32) is the model's at its time
    off = lp.offs[2]
    assert row[off:off + 2] == b"\x05\x06"
    e_row = int.from_bytes(row[off + 2:off + 6], "big")
    assert e_row == int(m.model.energy(a * QUARTER))
    # the register now is at least that, and the day's row at 00:00 below it
    m.update()
    reg = [e for e in m._driven["simulation:energy-import"]][0]
    assert e_row <= m.meter.state[reg[4]] <= e_row + 20000
    d = daily.row(daily.total - 1)
    e_day = int.from_bytes(d[daily.offs[1] + 2:daily.offs[1] + 6], "big")
    assert e_day == int(m.model.energy((daily.total - 1) * 86400)) <= e_row
    # rows only grow, and come back the same
    values = [int.from_bytes(lp.row(k)[off + 2:off + 6], "big") for k in range(a - 500, a + 1)]
    assert values == sorted(values)
    assert [int.from_bytes(lp.row(k)[off + 2:off + 6], "big") for k in range(a - 500, a + 1)] == values
    # another meter, other numbers
    assert f.meter(8).generated[0].row(a) != row


def test_whole_load_profile_read_in_blocks_through_a_channel(compiled):
    f = Fleet(compiled, 3)
    m = f.meter(1)
    ch = m.make_channel("wrapper")
    assert _get(ch, AARQ_32)[0][0] == 0x61
    # GET the load profile's buffer with entry_descriptor: the last 96 rows
    lp = m.generated[0]
    n = lp.count
    sel = bytes([2, 2, 4, 6]) + (n - 95).to_bytes(4, "big") + b"\x06" + n.to_bytes(4, "big") + \
        bytes([0x12, 0, 1, 0x12, 0, 0])
    req = bytes.fromhex("c001c100070100630100ff0201") + sel  # attribute 2, selective access
    blocks = []
    r = _get(ch, req)
    while True:
        apdu = r[0]
        assert apdu[:2] == b"\xc4\x02", apdu.hex()
        blocks.append(apdu)
        if apdu[3]:
            break
        r = _get(ch, bytes([0xC0, 0x02, apdu[2]]) + apdu[4:8])
    data = b"".join(b[10:] if b[9] < 0x80 else b[10 + (b[9] & 0x7F):] for b in blocks)
    assert data[:2] == b"\x01\x60"  # array of 96
    assert data.count(b"\x02\x04\x09\x0c") == 96  # 96 rows, each starting with its clock
    assert len(f._rings) >= 1


@pytest.mark.parametrize("argv, words", [
    (["--count", "0"], "--count 0"),
    (["--count", "20000"], "a fleet holds meters 0..16365"),
    (["--port", "60000", "--count", "10000"], "ports end at 65535"),
    (["--port", "20000", "--hdlc-port", "20005", "--count", "10"], "overlap"),
    (["--port", "off", "--shared-hdlc-port", "off"], "every transport is off"),
    (["--fault", "latency=fast@3"], "is not a number"),
    (["--fault", "silent"], "KIND[=VALUE]@TARGET"),
    (["--fault", "drop=2@1"], "a probability 0..1"),
    (["--fault", "meltdown@1"], "unknown kind"),
    (["--workers", "0"], "--workers 0"),
])
def test_bad_input_one_line_exit_2(capsys, argv, words):
    assert cli.main(["fleet"] + argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err


def test_a_definition_that_does_not_compile(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text('{"meter": "dlms-micro/1", "name": "X"}')
    assert cli.main(["fleet", "--meter", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not define a meter" in err[0]


def test_fault_specs():
    f = fleet_faults.parse("latency=250@10-12,40")
    assert (f.kind, f.value, f.indices) == ("latency", 250.0, {10, 11, 12, 40})
    assert fleet_faults.parse("silent@5%").fraction == 0.05
    faults = fleet_faults.Faults(seed=1)
    faults.add(fleet_faults.parse("refuse@30%"))
    picked = [i for i in range(1000) if faults.active("refuse", i)]
    assert 250 < len(picked) < 350
    again = fleet_faults.Faults(seed=1)
    again.add(fleet_faults.parse("refuse@30%"))
    assert picked == [i for i in range(1000) if again.active("refuse", i)]  # the same meters every time
    assert faults.active("silent", 3) is None


def test_the_fleet_holds_its_data_directory(tmp_path):
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "dlms_micro_cpython", "fleet", "--count", "3", "--port", "off",
           "--shared-hdlc-port", "0", "--data", str(tmp_path)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        assert any("listening: hdlc" in x for x in lines), lines
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert second.returncode == 1 and "is in use by process %d" % p.pid in second.stderr
    finally:
        p.terminate()
        p.wait(30)


def _read_blocks(ch, req, between=None):
    # a GET answered in blocks: the data of every block; between() runs
    # after the first block (another meter's read using the shared ring)
    r = _get(ch, req)
    data = b""
    while True:
        apdu = r[0]
        if apdu[:2] == b"\xc4\x01":
            return apdu[4:]
        assert apdu[:2] == b"\xc4\x02", apdu.hex()
        data += apdu[10:] if apdu[9] < 0x80 else apdu[10 + (apdu[9] & 0x7F):]
        if apdu[3]:
            return data
        if between is not None:
            between()
            between = None
        r = _get(ch, bytes([0xC0, 0x02, apdu[2]]) + apdu[4:8])


def test_a_range_with_a_wildcard_year_reads_right_while_others_use_the_ring(compiled):
    # a year left unspecified: rows matched one by one (no bisection); the
    # rows still come right when another meter's read fills the shared ring
    # between two blocks
    import datetime

    f = Fleet(compiled, 3)
    a, b = f.meter(0), f.meter(1)
    cha, chb = a.make_channel("wrapper"), b.make_channel("wrapper")
    assert _get(cha, AARQ_32)[0][0] == 0x61 and _get(chb, AARQ_32)[0][0] == 0x61
    day = datetime.datetime.fromtimestamp(a.now(), datetime.timezone.utc) - datetime.timedelta(days=1)

    def bound(h, m):
        return bytes([0x09, 12, 0xFF, 0xFF, day.month, day.day, 0xFF, h, m, 0, 0xFF, 0x80, 0, 0xFF])

    req = bytes.fromhex("c001c100070100630100ff020101") + bytes.fromhex(
        "0204020412000809060000010000ff0f02120000") + bound(0, 0) + bound(23, 59) + b"\x01\x00"
    whole = bytes.fromhex("c001c100070100630100ff0200")
    data = _read_blocks(cha, req, between=lambda: _read_blocks(chb, whole))
    assert data[:2] == b"\x01\x60"  # the 96 rows of that day
    lp = a.generated[0]
    k0 = int(datetime.datetime(day.year, day.month, day.day, tzinfo=datetime.timezone.utc).timestamp()) // QUARTER
    want = b""
    for k in range(k0, k0 + 96):
        rec = lp.row(k)
        want += b"\x02\x04" + b"".join(rec[o + 1:o + 1 + rec[o]] for o in lp.offs)
    assert data[2:] == want


def test_image_fail_fault_fails_verification_and_is_logged(compiled):
    logs = []
    faults = fleet_faults.Faults(seed=0, log=logs.append)
    f = Fleet(compiled, 5, faults=faults)
    m = f.meter(2)
    sinks = [st.sink for st in m._image_states]
    assert sinks
    faults.add(fleet_faults.parse("image-fail@2"))
    assert sinks[0].verify(10) is False
    assert logs and logs[-1].startswith("meter 2: fault image-fail@2: image verification failed")


def test_one_connection_cap_for_the_whole_fleet(compiled):
    # two meters' ports, a cap of 2 for the fleet: the third connection is
    # closed at accept, and said once
    import logging
    import socket

    from dlms_micro_cpython.fleet_net import FleetNet, free_base

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("test-fleet-cap")
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    f = Fleet(compiled, 2)
    base = free_base(2)
    net = FleetNet(f, "127.0.0.1", wrapper_base=base, max_connections=2, logger=logger)
    net.start()
    net.serve_in_thread()
    socks = []
    try:
        for port in (base, base + 1, base + 1):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            socks.append(s)
            time.sleep(0.2)
        socks[2].settimeout(5)
        try:
            assert socks[2].recv(10) == b""  # closed by the meter
        except ConnectionResetError:
            pass
        s = socks[0]
        s.sendall(bytes([0, 1, 0, 32, 0, 1, 0, len(AARQ_32)]) + AARQ_32)
        assert s.recv(100)[8] == 0x61  # the others are served
        assert sum("the cap" in r for r in records) == 1
    finally:
        for s in socks:
            s.close()
        net.stop()


def test_the_rate_register_in_force_gets_the_models_energy(compiled):
    # _ModelLoad.step sends the energy since the last step to the tariff's
    # rate register in force through the simulator's carry (whole Wh, the
    # fraction kept): after steps over two hours the registers of the active
    # mask grew by the model's energy, to within one Wh.
    from dlms_micro.cosem import base

    f = Fleet(compiled, 1, seed=5, wall_clock=lambda: 1_700_000_000)
    fm = f.meter(0)
    ra = fm.meter.state[fm._by_class[6][0][base.E_SLOT]]
    ra.resolve(fm.meter)
    slots = ra.slots[:ra.nslots]
    assert slots, "the demo's register activation has an active mask"
    before = [fm.meter.state[s] for s in slots]
    t0 = 1_700_000_000
    e0 = e1 = None
    for k in range(0, 2 * 3600 + 1, 60):
        fm._pinned = t0 + k
        fm.sim.step(0)
        t = fm._pinned + fm._clock_offset
        e1 = fm.model.energy(t)
        if e0 is None:
            e0 = e1
    fm._pinned = None
    grown = [fm.meter.state[s] - b for s, b in zip(slots, before)]
    assert e1 - e0 > 100  # a household uses some energy in two hours
    for g in grown:
        assert abs(g - (e1 - e0)) <= 1


def test_fleet_fault_command_changes_the_watched_file(tmp_path, capsys):
    # `dlms-micro fleet fault` rewrites the --faults file; a running fleet's
    # Faults.poll() (every second) takes each change, even two within the
    # file system's timestamp granularity (a new inode each time)
    path = str(tmp_path / "faults.json")
    faults = fleet_faults.Faults(1)
    faults.watch(path)

    def run(*argv):
        return cli.main(["fleet", "fault", "--faults", path] + list(argv))

    assert run("add", "silent@3", "latency=50@all") == 0
    faults.poll()
    assert faults.active("silent", 3) is not None and faults.active("latency", 7).value == 50
    assert run("remove", "silent@3") == 0
    faults.poll()
    assert faults.active("silent", 3) is None and faults.active("latency", 7) is not None
    assert "faults in force: latency=50@all" in capsys.readouterr().out
    # bad input: one line, exit code 2, the file unchanged
    assert run("add", "silent@x") == 2
    assert run("remove", "drop=0.5@1") == 2
    assert run("add") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "not in force: drop=0.5@1" in err
    assert fleet_faults.load_file(path)[0].spec == "latency=50@all"
    assert run("clear") == 0
    faults.poll()
    assert not faults.any()


# The fleet's loop (fleet_net.FleetNet): bounded answers waiting per
# connection, thousands of connections at once, clean stop.

GET_LDN_16 = bytes.fromhex("c001c1000100002a0000ff0200")  # GET 0.0.42.0.0.255 attribute 2
AARQ_16 = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400001e1dffff")


def _wrapped(sap, apdu):
    return bytes([0, 1, 0, sap, 0, 1, 0, len(apdu)]) + apdu


def test_answers_a_client_does_not_take_are_bounded(compiled):
    # a socket that takes nothing: the answers wait in the connection's
    # output buffer; above WRITE_BUFFER_HIGH the meter stops reading that
    # client (the loop waits for it to be writable only); once the socket
    # takes them again everything is sent and reading resumes
    from dlms_micro_cpython import fleet_net

    class Blocked:
        taking = False
        sent = 0

        def fileno(self):
            return 99

        def send(self, b):
            if not self.taking:
                raise BlockingIOError
            self.sent += len(b)
            return len(b)

        def close(self):
            pass

    f = Fleet(compiled, 1)
    net = fleet_net.FleetNet(f, "127.0.0.1", wrapper_base=1)
    waits = []
    net.modify = lambda fd, ev: waits.append(ev)
    sock = Blocked()
    conn = fleet_net.FleetConnection(net, sock, fleet_net.WRAPPER, 0, ("127.0.0.1", 1))
    assert conn.start()
    req = _wrapped(16, AARQ_16)
    buf = bytearray(req)
    conn.received(buf, len(buf))
    assert conn.out is not None and waits[-1] == fleet_net._IN | fleet_net._OUT
    get = _wrapped(16, GET_LDN_16)
    batch = bytearray(get * 400)  # 400 GETs in one read
    reads = 0
    while conn.reading:
        conn.received(batch, len(batch))
        reads += 1
        assert reads < 100
    assert fleet_net.WRITE_BUFFER_HIGH < len(conn.out) <= fleet_net.WRITE_BUFFER_HIGH + 400 * 64
    assert waits[-1] == fleet_net._OUT  # writable only: no more reading of this client
    assert not conn.closed
    sock.taking = True
    n = len(conn.out)
    conn.on_event(fleet_net._OUT)
    assert conn.out is None and sock.sent == n and conn.reading and waits[-1] == fleet_net._IN


@pytest.fixture(params=["epoll", "selectors"])
def poller(request, monkeypatch):
    # the loop on epoll, and on the selectors stand-in of systems without it
    from dlms_micro_cpython import fleet_net

    if request.param == "selectors":
        monkeypatch.setattr(fleet_net, "_poller", fleet_net._SelectorPoller)
    return request.param


def test_thousands_of_connections_at_once_keep_the_others_served(compiled, poller):
    # 1500 connections opened at once to one meter's port and kept open,
    # the shared HDLC port too: a new client is answered at once; above
    # the fleet's cap a connection is closed at accept; stop() closes all
    import logging
    import socket

    from dlms_micro_cpython.fleet_net import FleetNet, free_base

    f = Fleet(compiled, 2)
    base = free_base(2)
    net = FleetNet(f, "127.0.0.1", wrapper_base=base, shared_hdlc_port=0, max_connections=1600,
                   logger=logging.getLogger("test-fleet-many"))
    net.start()
    net.serve_in_thread()
    socks = []
    try:
        for k in range(1500):
            socks.append(socket.create_connection(("127.0.0.1", base if k % 3 else net.shared_port), timeout=10))
        for _ in range(100):
            if net.call(len, net.connections) == 1500:
                break
            time.sleep(0.05)
        assert net.call(len, net.connections) == 1500
        s = socket.create_connection(("127.0.0.1", base + 1), timeout=5)
        socks.append(s)
        s.sendall(_wrapped(16, AARQ_16))
        assert s.recv(100)[8] == 0x61
        s.sendall(_wrapped(16, GET_LDN_16))
        assert s.recv(100)[8:11] == bytes([0xC4, 0x01, 0xC1])
        extra = [socket.create_connection(("127.0.0.1", base), timeout=5) for _ in range(110)]
        socks += extra
        time.sleep(0.3)
        assert net.call(len, net.connections) == 1600
        assert net.refusals == 11  # 1500 + 1 + 110 - 1600
    finally:
        net.stop()
        for s in socks:
            s.close()
    assert not net.connections and net._poll is None


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_fleet_with_its_state_saved(tmp_path, sig):
    # dlms-micro fleet in its own process: a meter read, then SIGINT or
    # SIGTERM: exit code 0, "stopped", the meter's state on disk
    import signal
    import socket

    from dlms_micro_cpython.fleet_net import free_base

    base = free_base(3)
    cmd = [sys.executable, "-m", "dlms_micro_cpython", "fleet", "--count", "3", "--port", str(base),
           "--shared-hdlc-port", "off", "--data", str(tmp_path)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or ("Ctrl-C" not in lines[-1] and lines[-1]):
            lines.append(p.stdout.readline())
        before = sorted(os.listdir(tmp_path))
        s = socket.create_connection(("127.0.0.1", base + 2), timeout=10)
        s.sendall(_wrapped(16, AARQ_16))
        assert s.recv(100)[8] == 0x61
        p.send_signal(getattr(signal, sig))
        out, err = p.communicate(timeout=60)
        s.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "dlms-micro fleet: stopped" in out
    assert "m2" not in before
    assert os.path.getsize(os.path.join(tmp_path, "m2", "fleet.state")) > 0


class _FakeSock:
    # one message per recv_into; sends recorded
    def __init__(self):
        self.inbox = []
        self.sent = []

    def fileno(self):
        return 98

    def recv_into(self, buf):
        m = self.inbox.pop(0)
        buf[: len(m)] = m
        return len(m)

    def send(self, b):
        self.sent.append(bytes(b))
        return len(b)

    def close(self):
        pass


def test_the_short_way_through_channel_exchange_sends_what_the_general_way_sends(compiled):
    # FleetConnection serves a whole wrapper message through Channel.exchange
    # (on_event) where it can; a twin fleet fed the same messages the general
    # way (received) must send the same bytes: a plain GET, a GBT window of
    # three blocks (the first sent by exchange, the rest by next_event), its
    # acknowledgement, and two messages in one read (exchange declines)
    from dlms_micro_cpython import fleet_net

    # public client; proposes GBT and not block-transfer-with-get, max PDU 128
    aarq_gbt = bytes.fromhex("601da109060760857405080101be10040e01000000065f1f0400206e1f0080")
    get_ol = bytes.fromhex("c001c1000f0000280000ff0200")  # the association's object list: long
    gbt_get = bytes([0xE0, 0x83, 0, 1, 0, 0, len(get_ol)]) + get_ol  # window 3, block 1
    ack = bytes([0xE0, 0x03, 0, 2, 0, 3, 0])  # window 3, block 2, blocks 1..3 taken
    messages = [_wrapped(16, aarq_gbt), _wrapped(16, GET_LDN_16), _wrapped(16, gbt_get), _wrapped(16, ack),
                _wrapped(16, GET_LDN_16) * 2]
    sent = []
    for short in (True, False):
        f = Fleet(compiled, 1, wall_clock=lambda: 1767225600)
        net = fleet_net.FleetNet(f, "127.0.0.1", wrapper_base=1)
        net.modify = lambda fd, ev: None
        sock = _FakeSock()
        conn = fleet_net.FleetConnection(net, sock, fleet_net.WRAPPER, 0, ("127.0.0.1", 1))
        assert conn.start()
        f.meter(0).last_update = float("inf") if short else 0.0  # up to date / the general way
        took = []
        ch = conn.wrapper
        ex = ch.exchange
        ch.exchange = lambda d, n, now: took.append(ex(d, n, now)) or took[-1]
        out = []
        for m in messages:
            sock.sent = []
            if short:
                sock.inbox.append(m)
                conn.on_event(fleet_net._IN)
            else:
                buf = bytearray(m)
                conn.received(buf, len(buf))
            out.append(sock.sent)
        assert took == ([1, 1, 1, 1, -1] if short else [])  # served by exchange but the two-in-one read
        sent.append(out)
        net._close_all()
    short_out, general_out = sent
    assert short_out == general_out
    assert b"\xa2\x03\x02\x01\x00" in short_out[0][0]  # associated
    assert short_out[1][0][8:10] == b"\xc4\x01"
    assert [s[8] for s in short_out[2]] == [0xE0] * 3  # a window of three: one from exchange, two from next_event
    assert short_out[3] and all(s[8] == 0xE0 for s in short_out[3])  # the next window after the ack
    assert len(short_out[4]) == 2
