# A gateway served by the CPython port reads real meters beside it, and
# real head-ends read it: pymodbus serves two SDM630-like register images on
# a Modbus RTU bus (a pseudo-terminal), the IEC 62056-21 test meter answers
# mode C readouts on another; the module's SourceRunner reads both through
# pyserial (serve --source NAME=DEVICE points the definition at the ptys).
# gurux-dlms and dlms-cosem then read each upstream meter's logical device
# over the wrapper (by wPort), HDLC over TCP and HDLC on the module's serial
# line (a pty; by upper address): the
# values scaled, with their units; the load profile captures them; a slave
# that never answered reads null-data; cutting the lines gives the source
# status, the event in the event log and the data-not-valid bit, never an
# invented value; putting them back recovers.

import copy
import json
import os
import subprocess
import sys
import time
import tty

import pytest
from interop_peers import HDLC_PTY, HDLC_TCP, WRAPPER, CosemPeer, GuruxPeer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cpython"))
sys.path.insert(0, os.path.join(ROOT, "tests", "portable"))

from pty_bridge import PtyBridge  # noqa: E402

pytest.importorskip("pymodbus")

GATEWAY = os.path.join(ROOT, "meters", "modbus_gateway.json")
EV_FAILED, EV_RECOVERED = 231, 232


def definition():
    # the shipped gateway, faster polls for the test, a third Modbus meter
    # that is not on the bus, and an optical readout meter (logical device 4)
    with open(GATEWAY) as f:
        d = json.load(f)
    bus = d["sources"]["bus"]
    bus["interval"] = 1
    bus["devices"].append({"name": "m3", "slave": 3, "map": "eastron_sdm630"})
    d["sources"]["head"] = {"kind": "iec21-readout", "device": "/dev/ttyUSB1", "baud": 300, "max_baud": 9600,
                            "interval": 2, "retries": 0, "fields": ["1.8.0", "2.8.0", "32.7.0", "C.1.0"]}
    d["objects"].append({"class": "data", "obis": "0.0.96.5.3.255", "drive": "source:head.status"})
    m3 = copy.deepcopy(d["logical_devices"][1])
    m3.update(logical_device=5, name="EAS0000000000003", serial_number="10000003")
    for o in m3["objects"]:
        if "drive" in o and o["drive"].startswith("source:bus.m2"):
            o["drive"] = o["drive"].replace("bus.m2", "bus.m3")
    d["logical_devices"].append(m3)
    d["logical_devices"].append({
        "logical_device": 4, "name": "ABC0000012345678", "serial_number": "12345678", "objects": [
            {"class": "clock", "obis": "0.0.1.0.0.255"},
            {"class": "register", "obis": "1.0.1.8.0.255", "scaler": 0, "unit": "Wh", "drive": "source:head.1.8.0"},
            {"class": "register", "obis": "1.0.2.8.0.255", "scaler": 0, "unit": "Wh", "drive": "source:head.2.8.0"},
            {"class": "register", "obis": "1.0.32.7.0.255", "type": "long-unsigned", "scaler": -1, "unit": "V",
             "drive": "source:head.32.7.0"},
            {"class": "data", "obis": "0.0.96.1.0.255", "type": "octet-string", "drive": "source:head.C.1.0"},
        ]})
    return d


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    from dlms_micro_cpython.gateway import SourcedMeter
    from dlms_micro_cpython.meterdef import compile_definition
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage
    from test_source_iec21_pty import ReadoutMeter
    from test_source_modbus_pymodbus import METER_1, METER_2, words

    tmp = tmp_path_factory.mktemp("gateway")
    bus, head = PtyBridge(), PtyBridge()
    bus.start()
    head.start()
    image = tmp / "image.json"
    image.write_text(json.dumps({"1": {"ir": words(METER_1)}, "2": {"ir": words(METER_2)}}))
    peer = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "cpython", "pymodbus_peer.py"), bus.a,
                             str(image)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meter_fd = os.open(head.a, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(meter_fd)
    optical = ReadoutMeter(meter_fd, address=b"")
    optical.start()
    compiled = compile_definition(definition(), GATEWAY)
    gw = SourcedMeter(compiled, storage=FileStorage(str(tmp / "data")), devices={"bus": bus.b, "head": head.b},
                      seed=2)
    svc = ThreadedService(gw, host="127.0.0.1", wrapper_port=0, hdlc_port=0, pty=True)
    svc.start()
    try:
        def bound():
            # both sources read, and their values in the objects (the
            # bindings run at the end of each poll cycle and every second)
            v = []
            for ld in (2, 3, 4):
                sim = gw.sim(ld)
                v.append(sim.meter.state[sim.entry("1.0.1.8.0.255")[4]])
            return None not in v

        end = time.monotonic() + 40
        while time.monotonic() < end and not svc.call(bound):
            time.sleep(0.2)
        yield gw, svc, bus, head
    finally:
        svc.stop()
        optical.stop = True
        peer.kill()
        peer.wait(10)
        optical.join(3)
        os.close(meter_fd)
        bus.close()
        head.close()


def gurux_read(svc, transport, ld, obj_cls, obis, attrs):
    g = GuruxPeer(svc, transport, sap=32, logical=ld)
    try:
        g.connect()
        obj = obj_cls(obis)
        out = [g.read(obj, a) for a in attrs]
        g.release()
        return obj, out
    finally:
        g.close()


def cosem_session(svc, transport, ld):
    p = CosemPeer(svc, transport, sap=32, logical=ld)
    p.connect()
    p.associate()
    return p


def cosem_close(p):
    try:
        p.release()
    finally:
        p.disconnect()


@pytest.mark.parametrize("transport", [WRAPPER, HDLC_TCP, HDLC_PTY])
def test_gurux_reads_each_upstream_meter_by_its_logical_device(gateway, transport):
    from gurux_dlms.objects import GXDLMSData, GXDLMSExtendedRegister, GXDLMSRegister

    gw, svc, _bus, _head = gateway
    e, (v, _su) = gurux_read(svc, transport, 2, GXDLMSExtendedRegister, "1.0.1.8.0.255", (2, 3))
    assert (v, e.scaler, int(e.unit)) == (12345678, 1.0, 30)  # 12345.678 kWh = 12345678 Wh
    r, (v, _su) = gurux_read(svc, transport, 2, GXDLMSRegister, "1.0.32.7.0.255", (2, 3))
    assert (v, r.scaler, int(r.unit)) == (2301, 0.1, 35)  # 230.1 V
    r, (v, _su) = gurux_read(svc, transport, 3, GXDLMSRegister, "1.0.16.7.0.255", (2, 3))
    assert (v, int(r.unit)) == (-851, 27)  # -850.5 W, rounded half away from zero
    # the optical meter (IEC 62056-21 readout) as logical device 4
    r, (v, _su) = gurux_read(svc, transport, 4, GXDLMSRegister, "1.0.1.8.0.255", (2, 3))
    assert (v, r.scaler, int(r.unit)) == (12345678, 1.0, 30)
    r, (v, _su) = gurux_read(svc, transport, 4, GXDLMSRegister, "1.0.32.7.0.255", (2, 3))
    assert (v, r.scaler) == (2301, 0.1)
    d, (sn,) = gurux_read(svc, transport, 4, GXDLMSData, "0.0.96.1.0.255", (2,))
    assert bytes(sn) if not isinstance(sn, str) else sn.encode() == b"12345678"
    # a meter of the definition that is not on the bus: never read, null-data
    r, (v, _su) = gurux_read(svc, transport, 5, GXDLMSExtendedRegister, "1.0.1.8.0.255", (2, 3))
    assert v is None
    r, (v, _su) = gurux_read(svc, transport, 5, GXDLMSRegister, "1.0.16.7.0.255", (2, 3))
    assert v is None


@pytest.mark.parametrize("transport", [WRAPPER, HDLC_TCP])
def test_dlms_cosem_reads_the_values_and_the_profile_captures_them(gateway, transport):
    from dlms_micro.cosem import profile

    gw, svc, _bus, _head = gateway
    p = cosem_session(svc, transport, 3)
    try:
        assert p.get(4, "1.0.1.8.0.255", 2) == b"\x06" + (98125).to_bytes(4, "big")  # 98.125 kWh
        assert p.get(4, "1.0.1.8.0.255", 3) == b"\x02\x02\x0f\x00\x16\x1e"  # scaler 0, Wh
        assert p.get(4, "1.0.1.8.0.255", 4) == b"\x11\x00"  # the value's status: OK
        assert p.get(3, "1.0.14.7.0.255", 2) == b"\x12" + (4998).to_bytes(2, "big")  # 49.98 Hz
        assert p.get(3, "1.0.14.7.0.255", 3) == b"\x02\x02\x0f\xfe\x16\x2c"
        sim = gw.sim(3)
        svc.call(lambda: profile.capture(sim.meter, sim.entry("1.0.99.1.0.255")))
        rows = p.get_rows("1.0.99.1.0.255")
        assert rows[-1][2:] == [98125, 4321500, -851]
    finally:
        cosem_close(p)


def _status(raw):
    # the source status structure: state, error, good, failed, timeouts,
    # other errors, age
    assert raw[:2] == b"\x02\x07"
    return raw[3], raw[5], [int.from_bytes(raw[7 + 5 * i: 11 + 5 * i], "big") for i in range(5)]


def test_cut_lines_give_status_event_and_no_invented_value_then_recover(gateway):
    gw, svc, bus, head = gateway
    bus.cut = True
    head.cut = True
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if svc.call(lambda: (gw.source("bus").dev_status[0], gw.source("head").status)) == (1, 1):
                break
            time.sleep(0.2)
        time.sleep(1.5)  # the end of the cycle, and the bindings' update
        p = cosem_session(svc, WRAPPER, 1)
        try:
            st, err, counters = _status(p.get(1, "0.0.96.5.1.255", 2))
            assert (st, err) == (1, 1) and counters[2] >= 1  # STALE, timeout
            st, err, _c = _status(p.get(1, "0.0.96.5.3.255", 2))
            assert (st, err) == (1, 1)
            codes = [r[1] for r in p.get_rows("0.0.99.98.0.255")]
            assert codes.count(EV_FAILED) >= 3  # m1, m2 and the optical head (m3 never answered)
        finally:
            cosem_close(p)
        p = cosem_session(svc, HDLC_TCP, 2)
        try:
            # the last good value, never a zero; its status STALE
            assert p.get(4, "1.0.1.8.0.255", 2) == b"\x06" + (12345678).to_bytes(4, "big")
            assert p.get(4, "1.0.1.8.0.255", 4) == b"\x11\x01"
            from dlms_micro.cosem import profile

            sim = gw.sim(2)
            svc.call(lambda: sim._tick(sim.now()))  # noqa: SLF001
            bits = svc.call(lambda: gw.bindings.profile_status(1))
            assert bits & 0x04  # data not valid for the interval
            svc.call(lambda: profile.capture(sim.meter, sim.entry("1.0.99.1.0.255")))
            row = p.get_rows("1.0.99.1.0.255")[-1]
            assert row[1] & 0x04 and row[2] == 12345678  # data not valid; the last good energy
        finally:
            cosem_close(p)
    finally:
        bus.cut = False
        head.cut = False
    end = time.monotonic() + 30
    while time.monotonic() < end:
        if svc.call(lambda: (gw.source("bus").dev_status[0], gw.source("head").status)) == (0, 0):
            break
        time.sleep(0.2)
    time.sleep(1.5)  # the end of the cycle, and the bindings' update
    p = cosem_session(svc, WRAPPER, 1)
    try:
        st, err, _c = _status(p.get(1, "0.0.96.5.1.255", 2))
        assert (st, err) == (0, 0)
        codes = [r[1] for r in p.get_rows("0.0.99.98.0.255")]
        assert codes.count(EV_RECOVERED) >= 2
    finally:
        cosem_close(p)
    p = cosem_session(svc, WRAPPER, 2)
    try:
        assert p.get(4, "1.0.1.8.0.255", 4) == b"\x11\x00"
    finally:
        cosem_close(p)


def test_garbage_answers_are_counted_and_never_served(gateway):
    gw, svc, bus, _head = gateway
    src = gw.source("bus")
    before = svc.call(lambda: src.bad_crc + src.truncated + src.wrong_slave + src.wrong_function + src.bad_format)
    bus.noise = True
    try:
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if svc.call(lambda: src.dev_status[0]) == 1:
                break
            time.sleep(0.2)
        assert svc.call(lambda: src.dev_error[0]) in (2, 3, 5)  # check, format or peer: never a timeout
        time.sleep(1.5)  # the end of the cycle, and the bindings' update
        p = cosem_session(svc, WRAPPER, 2)
        try:
            assert p.get(4, "1.0.1.8.0.255", 2) == b"\x06" + (12345678).to_bytes(4, "big")
            assert p.get(4, "1.0.1.8.0.255", 4) == b"\x11\x01"
        finally:
            cosem_close(p)
        p = cosem_session(svc, WRAPPER, 1)
        try:
            _st, _err, counters = _status(p.get(1, "0.0.96.5.1.255", 2))
            assert counters[3] > before  # the other errors counted
        finally:
            cosem_close(p)
    finally:
        bus.noise = False
    end = time.monotonic() + 30
    while time.monotonic() < end and svc.call(lambda: src.dev_status[0]) != 0:
        time.sleep(0.2)
    assert svc.call(lambda: src.dev_status[0]) == 0
