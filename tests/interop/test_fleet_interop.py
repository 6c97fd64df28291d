# A fleet of 200 simulated meters (dlms-micro fleet: fleet.py, fleet_net.py)
# read by gurux-dlms and dlms-cosem on both addressing schemes: meter i's
# own TCP wrapper port (BASE + i) and the shared HDLC port (physical address
# 16 + i; the 4-byte address form from meter 110 on: physical 126 and 127
# are the calling and all-station addresses of the 2-byte form).
# Identities (logical device name, serial number, system title) and suite 0
# keys (HMAC-SHA256 of the master key) are each meter's own; faults put in
# force at run time are seen by the clients and logged with the meter's
# index.

import datetime
import time

import pytest

import interop_peers as ip
from interop_peers import HDLC_TCP, WRAPPER, CosemPeer, GuruxPeer, as_bytes, cosem_range

COUNT = 200
SAMPLE = (0, 1, 109, 111, 112, 150, 199)  # 109: the last in the 2-byte address form (physical 125)
LDN = "0.0.42.0.0.255"
SERIAL = "0.0.96.1.0.255"
SECURITY_SETUP = "0.0.43.0.0.255"
ENERGY_IMPORT = "1.0.1.8.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
DAILY = "1.0.98.1.0.255"
CLOCK = "0.0.1.0.0.255"


class FleetUnderTest:
    # The fleet in its own loop thread (FleetNet.serve_in_thread); .logs keeps its lines.
    # compiled (default: the demo's), count and more Fleet arguments (keys)
    # for other fleets (test_fleet_suite12_interop.py).
    def __init__(self, data_dir, compiled=None, count=COUNT, **fleet_args):
        from dlms_micro_cpython.fleet import Fleet
        from dlms_micro_cpython.fleet_cli import load_definition
        from dlms_micro_cpython.fleet_faults import Faults
        from dlms_micro_cpython.fleet_net import FleetNet
        from dlms_micro_cpython.storage import FileStorage

        self.logs = []
        self.addresses = {}  # the peers keep their invocation counters per meter there
        self.store = FileStorage(str(data_dir), lock=True)
        self.faults = Faults(7, log=self.logs.append)
        self.fleet = Fleet(compiled or load_definition(None), count, storage=self.store, seed=7, faults=self.faults,
                           log=self.logs.append, **fleet_args)
        from dlms_micro_cpython.fleet_net import free_base

        self.base = free_base(count)
        self.net = FleetNet(self.fleet, "127.0.0.1", wrapper_base=self.base, shared_hdlc_port=0, idle_timeout=30)
        self.net.start()
        self.net.serve_in_thread()

    def call(self, fn, *args):
        # fn(*args) in the fleet's loop thread
        return self.net.call(fn, *args)

    def address(self, i):
        a = self.addresses.get(i)
        if a is None:
            a = self.addresses[i] = MeterAddress(self, i)
        return a

    def stop(self):
        self.net.stop()
        self.fleet.power_down()
        self.store.unlock()


class MeterAddress:
    # what the interop peers take: where meter i answers
    def __init__(self, fut, i):
        self.index = i
        self.wrapper_address = ("127.0.0.1", fut.base + i)
        self.hdlc_address = ("127.0.0.1", fut.net.shared_port)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fut = FleetUnderTest(tmp_path_factory.mktemp("fleet-data"))
    try:
        yield fut
    finally:
        fut.stop()


@pytest.fixture
def at_physical(monkeypatch):
    # the peers address the server's physical address ip.PHYSICAL
    def set_for(i):
        monkeypatch.setattr(ip, "PHYSICAL", 16 + i)

    return set_for


def _gurux(fleet, i, transport, at_physical, sap=1, keys=None):
    at_physical(i)
    return GuruxPeer(fleet.address(i), transport, sap=sap, keys=keys or fleet.fleet.keys(i),
                     server_address_size=4 if 16 + i > 125 else None)


def _cosem(fleet, i, transport, at_physical, sap=1, keys=None):
    at_physical(i)
    return CosemPeer(fleet.address(i), transport, sap=sap, keys=keys or fleet.fleet.keys(i),
                     extended_addressing=16 + i > 125)


@pytest.mark.parametrize("transport", [WRAPPER, HDLC_TCP])
def test_gurux_reads_distinct_identities_with_each_meters_keys(fleet, transport, at_physical):
    from gurux_dlms.objects import GXDLMSData, GXDLMSSecuritySetup

    from dlms_micro_cpython.fleet import identity

    seen = set()
    for i in SAMPLE:
        want = identity(fleet.fleet.compiled, i)
        p = _gurux(fleet, i, transport, at_physical)
        try:
            p.associate()
            name = as_bytes(p.read(GXDLMSData(LDN), 2))
            serial = as_bytes(p.read(GXDLMSData(SERIAL), 2))
            title = as_bytes(p.read(GXDLMSSecuritySetup(SECURITY_SETUP), 5))
            p.release()
        finally:
            p.close()
        assert (name, serial, title) == (want.name, want.serial_number, want.system_title), i
        seen.add(title)
    assert len(seen) == len(SAMPLE)


def test_a_meters_keys_do_not_open_another(fleet, at_physical):
    # meter 3's keys on meter 4: the HLS association fails
    p = _gurux(fleet, 4, WRAPPER, at_physical, keys=fleet.fleet.keys(3))
    try:
        with pytest.raises(Exception):
            p.associate()
    finally:
        p.close()


def test_keys_command_prints_the_fleets_keys(fleet, capsys):
    from dlms_micro_cpython import cli

    assert cli.main(["fleet", "keys", "--index", "150"]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    k = fleet.fleet.keys(150)
    assert bytes.fromhex(doc["ek"]) == k["ek"] and bytes.fromhex(doc["ak"]) == k["ak"]
    assert doc["physical_address"] == 166 and bytes.fromhex(doc["system_title"]) == k["system_title"]


@pytest.mark.parametrize("transport", [WRAPPER, HDLC_TCP])
def test_cosem_reads_the_days_profile_consistent_with_the_registers(fleet, transport, at_physical):
    energies = {}
    for i in (2, 130):
        p = _cosem(fleet, i, transport, at_physical)
        p.connect()
        try:
            p.associate()
            now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
            rows = p.get_rows(LOAD_PROFILE, cosem_range(now - datetime.timedelta(days=1), now))
            reg = p.get(3, ENERGY_IMPORT, 2)
            daily = p.get_rows(DAILY, cosem_range(now - datetime.timedelta(days=3), now))
            p.release()
        finally:
            p.close()
        assert 95 <= len(rows) <= 97, len(rows)
        imports = [r[2] for r in rows]
        assert imports == sorted(imports)  # a register only grows
        from dlms_cosem.utils import parse_as_dlms_data

        value = parse_as_dlms_data(reg) if isinstance(reg, (bytes, bytearray)) else reg
        assert imports[-1] <= value <= imports[-1] + 20000
        assert len(daily) >= 2 and all(d[1] <= imports[-1] for d in daily)
        # the rows again: the same numbers (computed, not stored)
        energies[i] = imports
    assert energies[2] != energies[130]


def _wait_log(fleet, text, since, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [line for line in fleet.logs[since:] if text in line]
        if hits:
            return hits
        time.sleep(0.05)
    raise AssertionError("no log line with %r; last lines: %s" % (text, fleet.logs[-5:]))


def _fault(fleet, spec):
    from dlms_micro_cpython.fleet_faults import parse

    f = parse(spec)
    fleet.call(fleet.faults.add, f)
    return f


def _clear_faults(fleet):
    def clear():
        fleet.faults.cli.clear()
        fleet.faults._index()

    fleet.call(clear)


def _fault_seen(fleet, at_physical, spec, transport, error, logged):
    # the fault on its meter: gurux's association fails with error, and the
    # fleet logs it with the meter's index
    i = int(spec.partition("@")[2])
    n = len(fleet.logs)
    _fault(fleet, spec)
    p = _gurux(fleet, i, transport, at_physical, sap=16)
    try:
        with pytest.raises(error):
            p.associate()
    finally:
        p.close()
    hits = _wait_log(fleet, "meter %d: fault %s: " % (i, spec), n)
    assert any(logged in line for line in hits), hits


def test_faults_seen_by_the_clients_and_logged_with_the_index(fleet, at_physical, monkeypatch):
    monkeypatch.setattr(ip, "IO_TIMEOUT", 1.5)
    try:
        _fault_seen(fleet, at_physical, "silent@10", WRAPPER, TimeoutError, "bytes from")
        _fault_seen(fleet, at_physical, "refuse@11", HDLC_TCP, Exception, "association refused")
        # latency
        _fault(fleet, "latency=400@12")
        p = _gurux(fleet, 12, WRAPPER, at_physical, sap=16)
        t0 = time.monotonic()
        p.associate()
        assert time.monotonic() - t0 >= 0.4
        p.release()
        p.close()
        # corrupted answers: gurux does not take them
        _fault_seen(fleet, at_physical, "corrupt=1@13", HDLC_TCP, Exception, "answer byte")
        # a repeated invocation counter: dlms-cosem refuses the second answer
        n = len(fleet.logs)
        _fault(fleet, "wrong-ic@14")
        p = _cosem(fleet, 14, WRAPPER, at_physical)
        p.connect()
        with pytest.raises(Exception):
            p.associate()
            p.get(3, ENERGY_IMPORT, 2)
            p.get(3, ENERGY_IMPORT, 2)
        p.close()
        assert _wait_log(fleet, "meter 14: fault wrong-ic@14: invocation counter", n)
        # meters not named answer as before
        p = _gurux(fleet, 15, WRAPPER, at_physical, sap=16)
        p.associate()
        p.release()
        p.close()
    finally:
        _clear_faults(fleet)


def test_drift_source_failure_and_dropped_answers(fleet, at_physical, monkeypatch):
    from gurux_dlms.objects import GXDLMSClock, GXDLMSRegister

    monkeypatch.setattr(ip, "IO_TIMEOUT", 1.5)
    try:
        # the clock drifts an hour per hour (a second a second) ahead
        _fault(fleet, "drift=3600@16")
        p = _gurux(fleet, 16, WRAPPER, at_physical)
        p.associate()
        clk = GXDLMSClock(CLOCK)
        p.read(clk, 2)
        t0, m0 = clk.time.value.timestamp(), time.monotonic()
        time.sleep(2.5)
        p.read(clk, 2)
        gained = (clk.time.value.timestamp() - t0) - (time.monotonic() - m0)
        p.release()
        p.close()
        assert gained >= 1.0, gained
        # the metering source fails: the voltage reads 0
        _fault(fleet, "source-fail@18")
        p = _gurux(fleet, 18, HDLC_TCP, at_physical)
        p.associate()
        assert p.read(GXDLMSRegister("1.0.32.7.0.255"), 2) == 0
        p.release()
        p.close()
        # every answer dropped
        _fault_seen(fleet, at_physical, "drop=1@19", WRAPPER, TimeoutError, "dropped")
    finally:
        _clear_faults(fleet)


def test_per_meter_hdlc_port(tmp_path, at_physical):
    # --hdlc-port BASE: meter i's HDLC over TCP on BASE + i, physical 16 + i
    from dlms_micro_cpython.fleet import Fleet
    from dlms_micro_cpython.fleet_cli import load_definition
    from dlms_micro_cpython.fleet_net import FleetNet, free_base

    f = Fleet(load_definition(None), 20)
    net = FleetNet(f, "127.0.0.1", hdlc_base=free_base(20))
    net.start()
    net.serve_in_thread()
    try:
        class Address:
            hdlc_address = ("127.0.0.1", net.port_of(HDLC_TCP, 13))

        at_physical(13)
        p = GuruxPeer(Address(), HDLC_TCP, sap=1, keys=f.keys(13))
        p.associate()
        p.release()
        p.close()
    finally:
        net.stop()


def test_faults_file_at_run_time_and_fraction(fleet, tmp_path, at_physical, monkeypatch):
    import json

    monkeypatch.setattr(ip, "IO_TIMEOUT", 1.5)
    path = tmp_path / "faults.json"
    path.write_text(json.dumps({"faults": ["silent@20%"]}))
    fleet.call(fleet.faults.watch, str(path))
    try:
        silent = [i for i in range(COUNT) if fleet.faults.active("silent", i)]
        assert 20 <= len(silent) <= 60  # about a fifth, the same ones every time
        p = _gurux(fleet, silent[0], WRAPPER, at_physical, sap=16)
        with pytest.raises(TimeoutError):
            p.associate()
        p.close()
        path.write_text(json.dumps({"faults": []}))
        time.sleep(0.01)
        fleet.call(fleet.faults.poll)
        p = _gurux(fleet, silent[0], WRAPPER, at_physical, sap=16)
        p.associate()
        p.release()
        p.close()
    finally:
        fleet.call(setattr, fleet.faults, "file", None)


def test_workers_keep_the_addresses(tmp_path, at_physical):
    # --workers 2: meters 0..49 in one process, 50..99 in the other; the
    # per-meter ports and the shared HDLC port (the supervisor hands each
    # connection to the worker of the meter its first frame addresses)
    import subprocess
    import sys

    from dlms_micro_cpython.fleet import DEMO_MASTER, fleet_keys, identity
    from dlms_micro_cpython.fleet_cli import load_definition
    from dlms_micro_cpython.fleet_net import free_base

    base = free_base(100)
    p = subprocess.Popen([sys.executable, "-m", "dlms_micro_cpython", "fleet", "--count", "100", "--port", str(base),
                          "--shared-hdlc-port", "0", "--workers", "2", "--data", str(tmp_path)],
                         stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or ("Ctrl-C" not in lines[-1] and lines[-1]):
            lines.append(p.stdout.readline())
        shared = int([x for x in lines if "shared" in x][0].split(":")[2].split()[0])
        compiled = load_definition(None)

        class Address:
            pass

        for i in (7, 93):
            a = Address()
            a.wrapper_address = ("127.0.0.1", base + i)
            a.hdlc_address = ("127.0.0.1", shared)
            for transport in (WRAPPER, HDLC_TCP):
                at_physical(i)
                title = identity(compiled, i).system_title
                g = GuruxPeer(a, transport, sap=1, keys=fleet_keys(DEMO_MASTER, title))
                try:
                    g.associate()
                    from gurux_dlms.objects import GXDLMSSecuritySetup

                    assert as_bytes(g.read(GXDLMSSecuritySetup(SECURITY_SETUP), 5)) == title
                    g.release()
                finally:
                    g.close()
    finally:
        p.terminate()
        assert p.wait(60) == 0
