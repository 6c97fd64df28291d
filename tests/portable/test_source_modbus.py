# Modbus RTU master (source.modbus_rtu). Runs under pytest and under
# MicroPython. CRC vectors: the Modbus over serial line specification V1.02
# (6.2.2: the frame 02 07 carries the CRC 41 12) and the read request
# "01 03 00 00 00 0A C5 CD" quoted in most Modbus documents.

import struct

from source_support import alloc, pump

from dlms_micro import source
from dlms_micro.source import modbus_rtu as mb
from support import raises

# The SDM630 map of meters/sources/eastron_sdm630.json, cut down (the JSON
# files are not on the MicroPython test filesystem)
SDM = {
    "defaults": {"function": 4, "type": "float32", "word_order": "big"},
    "max_registers": 80,
    "max_gap": 50,
    "registers": [
        {"name": "voltage_l1", "address": 0, "unit": "V", "scaler": -1},
        {"name": "current_l1", "address": 6, "unit": "A", "scaler": -3},
        {"name": "power_total", "address": 52, "unit": "W", "scaler": 0},
        {"name": "frequency", "address": 70, "unit": "Hz", "scaler": -2},
        {"name": "energy_import", "address": 72, "unit": "kWh", "scaler": -3},
        {"name": "energy_export", "address": 74, "unit": "kWh", "scaler": -3},
    ],
}


def with_crc(body):
    c = mb.crc(body, 0, len(body))
    return bytes(body) + bytes((c & 0xFF, c >> 8))


class Slave:
    # A register image answering read requests (test stand-in; the real
    # peer is pymodbus in tests/cpython/test_source_modbus_pymodbus.py).
    def __init__(self, address=1):
        self.address = address
        self.regs = {}

    def float32(self, addr, value, little=False):
        b = struct.pack(">f", value)
        hi = (b[0] << 8) | b[1]
        lo = (b[2] << 8) | b[3]
        self.regs[addr], self.regs[addr + 1] = (lo, hi) if little else (hi, lo)

    def answer(self, req):
        assert with_crc(req[:6]) == bytes(req)
        start = (req[2] << 8) | req[3]
        count = (req[4] << 8) | req[5]
        body = bytearray((req[0], req[1], 2 * count))
        for a in range(start, start + count):
            v = self.regs.get(a, 0)
            body.append(v >> 8)
            body.append(v & 0xFF)
        return with_crc(body)


def sdm_slave(address=1):
    s = Slave(address)
    s.float32(0, 230.1)
    s.float32(6, 5.123)
    s.float32(52, -1234.4)
    s.float32(70, 50.02)
    s.float32(72, 12345.678)
    s.float32(74, 1.5)
    return s


def master(devices=None, **kw):
    m = mb.ModbusMaster(devices or [{"slave": 1, "map": SDM}], **kw)
    log = []
    m.log = log.append
    return m, log


def exchange(m, slave, t, reply=None):
    # One request/reply at t (after the bus silence); returns the events
    # that followed the reply.
    out = pump(m, t)
    assert out and out[-1][0] == "send", out
    req = out[-1][1]
    ans = slave.answer(req) if reply is None else reply
    if ans:
        m.feed(ans, 0, len(ans), t + 20)
    return req, pump(m, t + 20)


def test_crc_vectors():
    assert with_crc(b"\x02\x07")[-2:] == b"\x41\x12"
    assert with_crc(b"\x01\x03\x00\x00\x00\x0a")[-2:] == b"\xc5\xcd"
    assert mb.crc(b"\x01\x03\x00\x00\x00\x0a\xc5\xcd", 0, 8) == 0


def test_silence_from_baud():
    assert mb.silence_ms(9600) == 6  # 4.01 ms, rounded up, plus a tick
    assert mb.silence_ms(2400) == 18
    assert mb.silence_ms(115200) == 3  # fixed 1.75 ms above 19200 Bd


def test_one_block_request_and_values():
    m, log = master()
    assert m.nblocks == 1
    req, out = exchange(m, sdm_slave(), 0)
    assert req == b"\x01\x04\x00\x00\x00\x4c" + with_crc(b"\x01\x04\x00\x00\x00\x4c")[-2:]
    assert out == [("done", source.OK, source.E_NONE)]
    want = {
        "voltage_l1": (2301, -1, 35),
        "current_l1": (5123, -3, 33),
        "power_total": (-1234, 0, 27),
        "frequency": (5002, -2, 44),
        "energy_import": (12345678, 0, 30),
        "energy_export": (1500, 0, 30),
    }
    for name in want:
        i = m.index(name)
        assert (m.values[i], m.scalers[i], m.units[i]) == want[name], name
        assert m.field_status[i] == source.OK and m.stamps[i] == 20
    assert m.good_polls == 1 and m.good_replies == 1 and m.dev_status[0] == source.OK
    assert log == []


def test_blocks_split_by_gap_and_size():
    regs = [{"name": "a", "address": 0, "type": "uint16"}, {"name": "b", "address": 5, "type": "uint16"},
            {"name": "c", "address": 100, "type": "uint32"}, {"name": "d", "address": 3, "function": 3}]
    m, _ = master([{"slave": 7, "map": {"registers": regs, "max_gap": 4}}])
    assert [(m._b_fn[b], m._b_start[b], m._b_count[b]) for b in range(m.nblocks)] == [(3, 3, 1), (4, 0, 6), (4, 100, 2)]
    m, _ = master([{"slave": 7, "map": {"registers": regs, "max_gap": 4, "max_registers": 5}}])
    assert [(m._b_start[b], m._b_count[b]) for b in range(m.nblocks)] == [(3, 1), (0, 1), (5, 1), (100, 2)]


def test_integer_types_and_word_order():
    regs = [
        {"name": "i16", "address": 0, "type": "int16", "scaler": -1, "unit": "V"},
        {"name": "u16", "address": 1, "type": "uint16"},
        {"name": "i32", "address": 2, "type": "int32", "scaler": 1, "unit": "Wh"},
        {"name": "u32le", "address": 4, "type": "uint32", "word_order": "little", "unit": "kWh"},
        {"name": "f32le", "address": 6, "type": "float32", "word_order": "little", "scaler": -2},
        {"name": "f64", "address": 8, "type": "float64", "scaler": -3, "unit": "kWh"},
    ]
    m, _ = master([{"slave": 2, "map": {"registers": regs}}])
    s = Slave(2)
    s.regs.update({0: 0xFFF6, 1: 0xFFFF, 2: 0xFFFF, 3: 0xFFFE, 4: 0x5678, 5: 0x0012})
    s.float32(6, -3.14159, little=True)
    b = struct.pack(">d", 98765.4321)
    for q in range(4):
        s.regs[8 + q] = (b[2 * q] << 8) | b[2 * q + 1]
    exchange(m, s, 0)
    got = [(m.values[i], m.scalers[i], m.units[i]) for i in range(6)]
    assert got == [(-10, -1, 35), (65535, 0, 255), (-2, 1, 30), (0x125678, 3, 30), (-314, -2, 255), (98765432, 0, 30)]


def test_float_rounding_is_exact():
    # half away from zero on the exact binary value
    def f32(x, k):
        b = struct.pack(">f", x)
        hi = (b[0] << 8) | b[1]
        lo = (b[2] << 8) | b[3]
        e = (hi >> 7) & 0xFF
        m = ((hi & 0x7F) << 16) | lo
        return mb.scaled(hi >> 15, m | 0x800000 if e else m, (e - 150) if e else -149, k)

    assert f32(0.5, 0) == 1 and f32(-0.5, 0) == -1 and f32(1.5, 0) == 2 and f32(2.5, 0) == 3
    assert f32(0.25, 1) == 3  # 2.5 -> 3
    assert f32(1e-30, 3) == 0
    assert f32(16777215.0, 0) == 16777215
    assert f32(1e10, 0) == 10000000000 - 10000000000 % 1024  # exact float32 value
    assert f32(123.456, 3) == 123456
    assert mb.scaled(0, 1, 0, -2) == 0 and mb.scaled(0, 150, 0, -2) == 2  # 1.5 -> 2


def test_exception_reply_not_retried_unless_busy():
    m, log = master(retries=2)
    slave = sdm_slave()
    req, out = exchange(m, slave, 0, reply=with_crc(b"\x01\x84\x02"))
    assert out == [("done", source.NO_VALUE, source.E_EXCEPTION)]
    assert m.exceptions == 1 and m.last_exception == 2 and m.requests == 1
    assert log == ["modbus: exception reply"]
    # busy (6): tried again, then the real answer
    m, log = master(retries=2)
    req, out = exchange(m, slave, 0, reply=with_crc(b"\x01\x84\x06"))
    assert out == []
    req, out = exchange(m, slave, 100)
    assert out == [("done", source.OK, source.E_NONE)] and m.requests == 2
    assert log == ["modbus: exception reply", "modbus: a slave answers again"]


def test_bad_crc_wrong_slave_wrong_function_are_retried_then_stale():
    m, log = master(retries=3)
    slave = sdm_slave()
    exchange(m, slave, 0)
    i = m.index("energy_import")
    good = slave.answer(b"\x01\x04\x00\x00\x00\x4c" + with_crc(b"\x01\x04\x00\x00\x00\x4c")[-2:])
    bad_crc = bytearray(good)
    bad_crc[10] ^= 0xFF
    other_slave = with_crc(b"\x02" + good[1:-2])
    other_fn = with_crc(b"\x01\x03" + good[2:-2])
    t = 10000
    for reply, errs in ((bad_crc, "bad_crc"), (other_slave, "wrong_slave"), (other_fn, "wrong_function")):
        _, out = exchange(m, slave, t, reply=reply)
        assert out == [], errs  # full length: judged at once, then retried
        t += 1000
    _, out = exchange(m, slave, t, reply=bytes(good[:9]))  # truncated: ends by the gap
    assert out == [] and pump(m, t + 20 + m.frame_gap) == []
    assert pump(m, t + 20 + m.frame_gap + 1) == [("done", source.STALE, source.E_FORMAT)]
    assert (m.bad_crc, m.wrong_slave, m.wrong_function, m.truncated) == (1, 1, 1, 1)
    assert m.values[i] == 12345678 and m.field_status[i] == source.STALE and m.stamps[i] == 20
    assert m.field_error[i] == source.E_FORMAT and m.dev_status[0] == source.STALE
    # one line per kind of failure: the wrong function is E_PEER like the
    # wrong slave before it
    assert log == ["modbus: bad CRC", "modbus: reply from another slave", "modbus: truncated reply"]


def test_timeout_retries_and_recovery():
    m, log = master(retries=1, timeout=500)
    out = pump(m, 0)
    assert out[0][0] == "send"
    limit = 8 * 2 + 500  # 8 characters at 9600 Bd (2 ms each, rounded up) + timeout
    assert pump(m, limit) == []
    out = pump(m, limit + 1)  # the bus has been silent long enough: retry
    assert out[0][0] == "send"
    t = limit + 1
    assert pump(m, t + limit + 1) == [("done", source.NO_VALUE, source.E_TIMEOUT)]
    assert m.timeouts == 2 and m.failed_polls == 1 and log == ["modbus: no reply"]
    m.poll(0)
    exchange(m, sdm_slave(), 5000)
    assert m.status == source.OK and log[-1] == "modbus: a slave answers again"


def test_request_waits_for_bus_silence():
    m, _ = master()
    m.feed(b"\x55", 0, 1, 100)  # another station talking
    assert m.garbage_bytes == 1
    assert pump(m, 100 + m.silence - 1) == []
    assert pump(m, 100 + m.silence)[0][0] == "send"


def test_several_slaves_one_dead():
    m, log = master([{"slave": 1, "map": SDM, "name": "m1"}, {"slave": 2, "map": SDM, "name": "m2"},
                     {"slave": 3, "map": SDM, "name": "m3"}], retries=0)
    assert m.fields[0] == "m1.voltage_l1" and m.device_fields(1) == (6, 12)
    s1 = sdm_slave(1)
    s3 = sdm_slave(3)
    s3.float32(72, 99.5)
    req, out = exchange(m, s1, 0)
    assert req[0] == 1 and out == []
    out = pump(m, 100)  # request to slave 2: nobody answers
    assert out[0][1][0] == 2
    out = pump(m, 100 + 600)  # no reply: slave 3 is asked at once
    req = out[-1][1]
    assert req[0] == 3
    ans = s3.answer(req)
    m.feed(ans, 0, len(ans), 720)
    assert pump(m, 720) == [("done", source.STALE, source.E_TIMEOUT)]
    assert list(m.dev_status) == [source.OK, source.NO_VALUE, source.OK]
    assert m.dev_error[1] == source.E_TIMEOUT
    assert m.values[m.index("m3.energy_import")] == 99500
    assert m.field_status[m.index("m2.energy_import")] == source.NO_VALUE


def test_nan_is_not_a_value():
    m, log = master()
    s = sdm_slave()
    exchange(m, s, 0)
    s.regs[72], s.regs[73] = 0x7FC0, 0  # NaN
    m.poll(0)
    exchange(m, s, 1000)
    i = m.index("energy_import")
    assert m.values[i] == 12345678 and m.field_status[i] == source.STALE and m.field_error[i] == source.E_RANGE
    assert m.field_status[m.index("energy_export")] == source.OK
    assert m.status == source.STALE and m.bad_values == 1


def test_register_map_checks():
    def bad(regmap):
        return str(raises(ValueError, mb.load_map, regmap))

    assert "registers" in bad({})
    assert "row 0" in bad({"registers": [{"address": 1}]})
    assert "function" in bad({"registers": [{"name": "a", "address": 1, "function": 2}]})
    assert "type" in bad({"registers": [{"name": "a", "address": 1, "type": "int64"}]})
    assert "unit" in bad({"registers": [{"name": "a", "address": 1, "unit": "parsec"}]})
    assert "unique" in bad({"registers": [{"name": "a", "address": 1}, {"name": "a", "address": 2}]})
    assert "past" in bad({"registers": [{"name": "a", "address": 65535, "type": "uint32"}]})
    raises(ValueError, mb.ModbusMaster, [{"slave": 0, "map": SDM}])
    raises(ValueError, mb.ModbusMaster, [{"slave": 1, "map": SDM}, {"slave": 2, "map": SDM}])  # names clash


def test_steady_state_poll_allocates_nothing():
    m, _ = master()
    slave = sdm_slave()
    req = b"\x01\x04\x00\x00\x00\x4c" + with_crc(b"\x01\x04\x00\x00\x00\x4c")[-2:]
    reply = slave.answer(req)
    state = [0]

    def poll():
        t = state[0]
        state[0] = t + 10000
        m.poll(t)
        while m.next_event(t):
            pass
        m.feed(reply, 0, len(reply), t + 20)
        while m.next_event(t + 20):
            pass

    used = alloc(poll)
    assert m.status == source.OK and m.good_polls >= 1
    assert used is None or used == 0, used


def test_write_single_and_multiple_registers():
    m, log = master(retries=1)
    slave = sdm_slave()
    exchange(m, slave, 0)
    # function 06: one register; the reply echoes the request
    assert m.write(1, 2, [60])
    assert not m.write(1, 2, [61])  # one write at a time
    out = pump(m, 100)
    req = bytes(m.tx_buf[m.tx_start : m.tx_end])
    assert out == [("send", req)] and req == with_crc(b"\x01\x06\x00\x02\x00\x3c")
    m.feed(req, 0, len(req), 120)
    assert pump(m, 120) == [("written",)]
    assert m.write_state == mb.W_DONE and m.writes == 1
    # function 16: two registers (a float), reply slave fn address count
    assert m.write(1, 0x0A, [0x4040, 0x0000])
    out = pump(m, 200)
    assert out[0][1] == with_crc(b"\x01\x10\x00\x0a\x00\x02\x04\x40\x40\x00\x00")
    ok = with_crc(b"\x01\x10\x00\x0a\x00\x02")
    m.feed(ok, 0, len(ok), 220)
    assert pump(m, 220) == [("written",)]
    assert m.write_state == mb.W_DONE and m.writes == 2
    # refused: illegal data address, not retried
    assert m.write(1, 0x9999, [1])
    pump(m, 300)
    exc = with_crc(b"\x01\x86\x02")
    m.feed(exc, 0, len(exc), 320)
    pump(m, 320)
    assert m.write_state == mb.W_FAILED and m.write_error == source.E_EXCEPTION and m.write_exception == 2
    assert log == ["modbus: write failed"]
    # a wrong echo is retried, then failed; the reads were never touched
    assert m.write(1, 3, [7])
    for t in (400, 500):
        pump(m, t)
        bad = with_crc(b"\x01\x06\x00\x03\x00\x08")
        m.feed(bad, 0, len(bad), t + 20)
        pump(m, t + 20)
    assert m.write_state == mb.W_FAILED and m.write_error == source.E_FORMAT and m.requests == 6
    assert m.status == source.OK
    assert not m.write(0, 1, [1]) and not m.write(1, 65535, [1, 2]) and not m.write(1, 1, [70000])


def test_write_goes_between_the_blocks_of_a_cycle():
    regs = [{"name": "a", "address": 0, "type": "uint16"}, {"name": "b", "address": 50, "type": "uint16"}]
    m, _ = master([{"slave": 1, "map": {"registers": regs}}])
    s = Slave(1)
    s.regs[0] = 11
    s.regs[50] = 22
    out = pump(m, 0)
    ans = s.answer(out[-1][1])
    assert m.write(1, 9, [5])
    m.feed(ans, 0, len(ans), 10)
    assert pump(m, 10) == []
    out = pump(m, 20)  # the write first
    assert out[0][1][1] == 6
    m.feed(out[0][1], 0, 8, 30)
    events = pump(m, 30)
    assert events == [("written",)] and m.write_state == mb.W_DONE
    out = pump(m, 40)  # then the second block
    assert out[0][1][:4] == b"\x01\x04\x00\x32"
    ans = s.answer(out[0][1])
    m.feed(ans, 0, len(ans), 50)
    assert pump(m, 50) == [("done", source.OK, source.E_NONE)]
    assert list(m.values) == [11, 22]
