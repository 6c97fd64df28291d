# The Modbus RTU master (dlms_micro.source.modbus_rtu) against a real
# third-party Modbus RTU server: pymodbus (pinned in the dev extras) serving
# SDM630-like register images on a pseudo-terminal. The master is driven
# through the pty's other end, as a port drives it through a UART.
#
# Scenario: two meters with the shipped Eastron SDM630 map (float32 input
# registers) answer, a third slave address is not served, a map that reads past
# a meter's registers gets pymodbus's exception reply; then the line is cut
# (the server stopped): values keep their last good reading, STALE, with the
# timeout; the server comes back: the master recovers by itself.

import json
import os
import struct
import subprocess
import sys
import time
import tty

import pytest

from dlms_micro import source
from dlms_micro.source import modbus_rtu as mb

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import source_pty  # noqa: E402

pytest.importorskip("pymodbus")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
MAP = os.path.join(REPO, "meters", "sources", "eastron_sdm630.json")

METER_1 = {0: 230.1, 2: 231.5, 4: 229.8, 6: 5.123, 8: 4.5, 10: 0.25, 12: 1178.4, 14: 1040.2, 16: 57.5,
           52: 2276.1, 70: 50.02, 72: 12345.678, 74: 1.5, 76: 321.25, 78: 0.0}
METER_2 = {0: 239.9, 6: 0.5, 52: -850.5, 70: 49.98, 72: 98.125, 74: 4321.5}


def words(floats, n=100):
    regs = [0] * n
    for addr, value in floats.items():
        hi, lo = struct.unpack(">HH", struct.pack(">f", value))
        regs[addr], regs[addr + 1] = hi, lo
    return regs


class Bus:
    # The master's side of the pty, and the pymodbus process on the other.
    def __init__(self, tmp_path):
        self.fd, self.slave_fd = os.openpty()
        tty.setraw(self.fd)
        tty.setraw(self.slave_fd)
        self.path = os.ttyname(self.slave_fd)
        self.image = tmp_path / "image.json"
        self.image.write_text(json.dumps({"1": {"ir": words(METER_1), "hr": [0] * 20},
                                                "2": {"ir": words(METER_2)}}))
        self.proc = None
        self.sent = []

    def start(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "pymodbus_peer.py"), self.path,
                                      str(self.image)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self):
        self.stop()
        os.close(self.fd)
        os.close(self.slave_fd)

    def cycle(self, src, deadline_s=10.0):
        # Drive src until it reports the end of a poll cycle.
        source_pty.poll(src, self.fd, self.sent, deadline_s)


@pytest.fixture
def bus(tmp_path):
    b = Bus(tmp_path)
    b.start()
    yield b
    b.close()


def make_master():
    with open(MAP) as f:
        sdm630 = json.load(f)
    past = {"registers": [{"name": "beyond", "address": 150, "type": "float32"}]}
    m = mb.ModbusMaster([
        {"slave": 1, "map": sdm630, "name": "m1"},
        {"slave": 2, "map": sdm630, "name": "m2"},
        {"slave": 3, "map": sdm630, "name": "m3"},  # not served
        {"slave": 1, "map": past, "name": "m1x"},  # past meter 1's registers
    ], baud=9600, timeout=300, retries=1, frame_gap=30)
    log = []
    m.log = log.append
    return m, log


def wait_for_server(bus, m):
    # pymodbus needs a moment to open the pty: poll until meter 1 answers
    end = time.monotonic() + 20
    while time.monotonic() < end:
        bus.cycle(m)
        if m.dev_status[0] == source.OK:
            return
    raise AssertionError("pymodbus never answered: %r" % (bus.proc.stdout.read1() if bus.proc else b""))


def value(m, name):
    i = m.index(name)
    return m.values[i], m.scalers[i], m.units[i], m.field_status[i]


def test_master_reads_pymodbus_sdm630_meters(bus):
    m, log = make_master()
    wait_for_server(bus, m)
    # one request per meter: the whole map in one block of 80 registers
    assert b"\x01\x04\x00\x00\x00\x50" in [f[:6] for f in bus.sent]
    assert value(m, "m1.voltage_l1") == (2301, -1, 35, source.OK)
    assert value(m, "m1.voltage_l3") == (2298, -1, 35, source.OK)
    assert value(m, "m1.current_l1") == (5123, -3, 33, source.OK)
    assert value(m, "m1.power_total") == (2276, 0, 27, source.OK)
    assert value(m, "m1.frequency") == (5002, -2, 44, source.OK)
    assert value(m, "m1.energy_import") == (12345678, 0, 30, source.OK)
    assert value(m, "m1.energy_export") == (1500, 0, 30, source.OK)
    assert value(m, "m1.reactive_energy_import") == (321250, 0, 32, source.OK)
    assert value(m, "m2.power_total") == (-851, 0, 27, source.OK)  # -850.5 W: half away from zero
    assert value(m, "m2.energy_import") == (98125, 0, 30, source.OK)
    assert value(m, "m2.energy_export") == (4321500, 0, 30, source.OK)
    assert list(m.dev_status) == [source.OK, source.OK, source.NO_VALUE, source.NO_VALUE]
    # pymodbus answers for a slave it does not serve: exception 4
    assert m.dev_error[2] == source.E_EXCEPTION
    assert m.dev_error[3] == source.E_EXCEPTION and m.last_exception == 2
    assert m.field_status[m.index("m3.energy_import")] == source.NO_VALUE
    assert m.values[m.index("m3.energy_import")] == 0 and m.exceptions >= 1
    assert m.bad_crc == 0 and m.truncated == 0


def test_line_cut_keeps_last_values_stale_and_recovers(bus):
    m, log = make_master()
    wait_for_server(bus, m)
    good_at = m.dev_last_good[0]
    i = m.index("m1.energy_import")
    bus.stop()  # the line is cut
    before = len(log)
    bus.cycle(m)
    assert m.dev_status[0] == source.STALE and m.dev_error[0] == source.E_TIMEOUT
    assert m.values[i] == 12345678 and m.field_status[i] == source.STALE
    assert m.stamps[i] == m.dev_last_good[0] == good_at
    assert m.status == source.STALE
    # logged once per device and kind: meters 1, 2, 3 and meter 1's second
    # map (timeouts now instead of replies and exceptions)
    assert log[before:] == ["modbus: no reply"] * 4
    timeouts = m.timeouts
    bus.cycle(m)
    assert m.timeouts > timeouts
    assert len(log) == before + 4  # not per poll
    bus.start()  # reconnected
    wait_for_server(bus, m)
    assert m.dev_status[0] == source.OK and m.field_status[i] == source.OK
    assert m.stamps[i] != good_at
    assert log[before + 4 :].count("modbus: a slave answers again") == 2  # meters 1 and 2


def test_writes_reach_pymodbus_holding_registers(bus):
    hr = {"registers": [{"name": "period", "address": 2, "function": 3, "type": "uint16", "unit": "min"},
                        {"name": "setting", "address": 4, "function": 3, "type": "float32", "scaler": -1}]}
    m = mb.ModbusMaster([{"slave": 1, "map": hr}], timeout=300, retries=1, frame_gap=30)
    wait_for_server(bus, m)
    assert m.write(1, 2, [30])  # function 06
    bus.cycle(m)  # the write goes first, then the read
    assert m.write_state == mb.W_DONE
    assert m.write(1, 4, list(struct.unpack(">HH", struct.pack(">f", 2.5))))  # function 16
    bus.cycle(m)
    assert m.write_state == mb.W_DONE and m.writes == 2
    assert [f[:2] for f in bus.sent[-3:]] == [b"\x01\x10", b"\x01\x03", b"\x01\x03"]
    assert value(m, "period") == (30, 0, 6, source.OK)
    assert value(m, "setting") == (25, -1, 255, source.OK)
    assert m.write(1, 500, [1])  # past the registers: pymodbus's exception
    bus.cycle(m)
    assert m.write_state == mb.W_FAILED and m.write_error == source.E_EXCEPTION and m.write_exception == 2
