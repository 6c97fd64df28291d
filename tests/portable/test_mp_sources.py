# The ESP32 port's metering sources (dlms_micro_mp.sources) through the
# board's steppable loop with the test double of `machine`: the Modbus
# gateway board example (two SDM630 on RS-485, each a logical device, DLMS
# routed by the HDLC upper address), its driver-enable timing, a cut bus
# (last good values kept, STALE, the event in logical device 1's event log,
# data not valid) and its recovery; the S0 retrofit (edges queued by the
# GPIO interrupt, counted in the loop); the optical retrofit (IEC 62056-21
# mode C on the IR head UART: 300 Bd 7E1, the ACK, 9600 Bd). Runs under pytest and real
# MicroPython.

import struct
import sys

import mp_machine

machine = mp_machine.install()
CLOCK = mp_machine.CLOCK

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

import mp_gateway_meter  # noqa: E402
import optical_retrofit_meter  # noqa: E402
import s0_retrofit_meter  # noqa: E402
from dlms_micro import source  # noqa: E402
from dlms_micro.cosem import profile  # noqa: E402
from dlms_micro.cosem import push, security_setup  # noqa: E402,F401  (the retrofits' management and push)
from dlms_micro_mp import keyring, timekeeping  # noqa: E402,F401
from dlms_micro.source import modbus_rtu  # noqa: E402
from dlms_micro_mp import board  # noqa: E402
from dlms_micro_mp.loop import Log  # noqa: E402
from dlms_micro_mp.sources import S0Pin, UartSource  # noqa: E402
from hdlc_peer import LLC_REQ, LLC_RSP, Frame, iframe, snrm  # noqa: E402
from source_support import data_message  # noqa: E402
from support import unhex  # noqa: E402

AARQ_PUBLIC = "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"
GET_IMPORT_EXT = "C001C1 0004 0100010800FF 0200"
DE_SETUP_US = 20

GATEWAY = {
    "name": "gateway test",
    "hdlc": {"max_apdu": 512},
    "channels": [{"name": "dlms", "uart": 1, "tx": 26, "rx": 27, "baud": 9600}],
    "sources": {"bus": {"uart": 2, "tx": 17, "rx": 16, "de": 4, "de_setup_us": DE_SETUP_US}},
}
S0 = {
    "name": "s0 test",
    "hdlc": {"max_apdu": 256},
    "channels": [{"name": "dlms", "uart": 1, "tx": 21, "rx": 20, "baud": 9600}],
    "sources": {"s0": {"pin": 5}},
}
OPTICAL = {
    "name": "optical test",
    "hdlc": {"max_apdu": 256},
    "channels": [{"name": "dlms", "uart": 2, "tx": 17, "rx": 16, "baud": 9600}],
    "sources": {"head": {"uart": 1, "tx": 26, "rx": 27}},
}
READOUT = (b"F.F(00000000)\r\nC.1.0(12345678)\r\n1.8.0(012345.678*kWh)\r\n2.8.0(000001.200*kWh)\r\n"
           b"1.6.0(0001.234*kW)(2612071215)\r\n32.7.0(230.1*V)\r\n!\r\n")
METERS = {1: ((0, 230.1), (6, 5.123), (52, 2276.1), (70, 50.02), (72, 12345.678), (74, 1.5)),
          2: ((0, 239.9), (72, 98.125), (74, 4321.5))}


class Lines:
    def __init__(self):
        self.lines = []

    def __call__(self, msg):
        self.lines.append(msg)


def build(cfg, defn):
    out = Lines()
    app = board.build(cfg, log=Log(out), sleep_us=CLOCK.sleep_us, wall_clock=lambda: 800000000, definition=defn)
    return app, out


def run(app, steps=3):
    for _ in range(steps):
        app.loop.step(CLOCK.ticks_ms())


def port_of(app, cls):
    for p in app.ports:
        if isinstance(p, cls):
            return p
    raise AssertionError("no %s" % cls)


def reply(slave, count):
    # an SDM630-like reply of `count` input registers from address 0
    regs = bytearray(2 * count)
    for addr, v in METERS[slave]:
        regs[2 * addr: 2 * addr + 4] = struct.pack(">f", v)
    f = bytearray(bytes((slave, 4, 2 * count)) + regs)
    c = modbus_rtu.crc(f, 0, len(f))
    f.append(c & 0xFF)
    f.append(c >> 8)
    return bytes(f)


def serve_bus(app, bus, answer=True, cycles=1):
    # answer each request the master puts on the bus, for `cycles` cycles
    uart = bus.uart
    for _ in range(cycles * 2 + 2):
        CLOCK.advance_ms(20)
        run(app, 2)
        req = uart.take()
        if not req:
            continue
        assert len(req) == 8 and req[1] == 4, req
        if answer:
            uart.inject(reply(req[0], req[5]))
            CLOCK.advance_ms(5)
            run(app, 2)


def hdlc(app, data):
    dl = app.ports[0]  # the DLMS channel
    dl.uart.inject(data)
    run(app)
    out = dl.uart.take()
    frames = []
    i = 0
    while i < len(out):
        n = (((out[i + 1] & 7) << 8) | out[i + 2]) + 2
        frames.append(Frame(out[i: i + n]))
        i += n
    return frames


# The gateway is built once, as a board builds it at boot (the tests below
# run in order on it: read, then cut and recover); each test's own
# allocations, garbage included, must fit the MicroPython suite's heap.
GW = build(GATEWAY, mp_gateway_meter)


def test_mp_gateway_reads_the_bus_and_serves_each_meter_by_its_upper_address():
    app, log = GW
    bus = port_of(app, UartSource)
    bus.de.clear()
    serve_bus(app, bus)
    src = bus.src
    assert list(src.dev_status) == [source.OK, source.OK]
    # DE raised de_setup_us before each request's first byte, dropped at its end
    changes = bus.de.changes()
    writes = bus.uart.write_times()
    assert len(writes) == 2 and len(changes) == 4
    for i in range(2):
        assert writes[i][0] - changes[2 * i][0] == DE_SETUP_US and changes[2 * i + 1][0] == writes[i][1]
    CLOCK.advance_ms(1100)
    run(app)  # the service binds the values once a second
    meters = app.loop.service.meters
    e = meters[1].find_ln(b"\x01\x00\x01\x08\x00\xff", 0)
    assert meters[1].state[e[4]] == 12345678 and meters[1].state[e[4] + 1] == source.OK
    e = meters[2].find_ln(b"\x01\x00\x02\x08\x00\xff", 0)
    assert meters[2].state[e[4]] == 4321500
    # DLMS to logical device 3 (HDLC upper address 3) on the same line
    fr = hdlc(app, snrm(upper=3))
    assert [f.kind() for f in fr] == ["UA"]
    out = hdlc(app, iframe(0, 0, LLC_REQ + unhex(AARQ_PUBLIC), upper=3))
    assert out[0].is_i() and unhex("A203020100") in out[0].info
    out = hdlc(app, iframe(1, 1, LLC_REQ + unhex(GET_IMPORT_EXT), upper=3))
    assert out[0].info[:3] == LLC_RSP and out[0].info[3:] == unhex("C401C1 00 06 00017F4D")  # 98125 Wh


def test_mp_gateway_cut_bus_keeps_values_logs_the_event_and_recovers():
    app, log = GW
    bus = port_of(app, UartSource)
    CLOCK.advance_ms(10000)
    serve_bus(app, bus)
    CLOCK.advance_ms(1100)
    run(app)
    svc = app.loop.service
    meters = svc.meters
    # the bus is cut: no answers for a whole cycle (timeouts and retries)
    CLOCK.advance_ms(10000)
    for _ in range(40):
        serve_bus(app, bus, answer=False)
        CLOCK.advance_ms(100)
    assert bus.src.dev_status[0] == source.STALE and bus.src.dev_error[0] == source.E_TIMEOUT
    CLOCK.advance_ms(1100)
    run(app)
    e = meters[1].find_ln(b"\x01\x00\x01\x08\x00\xff", 0)
    assert meters[1].state[e[4]] == 12345678 and meters[1].state[e[4] + 1] == source.STALE
    log1 = profile.buffer_of(meters[0], meters[0].find_ln(b"\x00\x00\x63\x62\x00\xff", 0))
    assert log1.count == 2  # m1 and m2 failed: event 231 each
    assert svc.bindings.profile_status(1) & 0x04
    status = meters[0].state[meters[0].find_ln(b"\x00\x00\x60\x05\x01\xff", 0)[4]]
    assert status[3] == source.STALE and status[5] == source.E_TIMEOUT
    # back: the next cycle answers, the event of the recovery
    CLOCK.advance_ms(10000)
    serve_bus(app, bus, cycles=2)
    CLOCK.advance_ms(1100)
    run(app)
    assert bus.src.dev_status[0] == source.OK
    assert meters[1].state[e[4] + 1] == source.OK and log1.count == 4


def test_mp_s0_edges_from_the_interrupt_are_counted_in_the_loop():
    app, log = build(S0, s0_retrofit_meter)
    s0 = port_of(app, S0Pin)
    s0._ticks = CLOCK.ticks_ms  # the double's clock
    pin = s0.pin
    for _ in range(5):  # 5 pulses of 40 ms (active low)
        pin.level = 0
        s0.handler(pin)
        CLOCK.advance_ms(40)
        pin.level = 1
        s0.handler(pin)
        CLOCK.advance_ms(60)
    pin.level = 0  # a 5 ms bounce: not a pulse
    s0.handler(pin)
    CLOCK.advance_ms(5)
    pin.level = 1
    s0.handler(pin)
    CLOCK.advance_ms(1100)
    run(app)
    m = app.meter
    assert s0.src.count == 5 and s0.src.bounces == 1
    assert m.state[m.find_ln(b"\x01\x00\x01\x08\x00\xff", 0)[4]] == 5  # 1000 imp/kWh: 1 Wh each
    # a full ring drops edges, counted, never invents a pulse
    for _ in range(200):
        s0.handler(pin)
    assert s0.overflows > 0


def test_mp_optical_head_reads_in_mode_c_with_the_baud_change():
    app, log = build(OPTICAL, optical_retrofit_meter)
    head = port_of(app, UartSource)
    uart = head.uart
    assert uart.lines[-1][1:] == (300, 7, 0)  # 300 Bd 7E1
    run(app)
    assert uart.take() == b"/?!\r\n"
    CLOCK.advance_ms(200)
    uart.inject(b"/ABC5\\2METER01\r\n")
    run(app)
    CLOCK.advance_ms(300)  # the reaction time before the ACK
    run(app)
    assert uart.take() == b"\x06050\r\n"
    run(app)
    assert uart.lines[-1][1:] == (9600, 7, 0)  # after the ACK went out
    uart.inject(data_message(READOUT))
    CLOCK.advance_ms(200)
    run(app)
    assert head.src.status == source.OK and head.polls == 1
    CLOCK.advance_ms(1100)
    run(app)
    m = app.meter
    e = m.find_ln(b"\x01\x00\x01\x08\x00\xff", 0)
    assert m.state[e[4]] == 12345678 and m.state[e[4] + 1] == source.OK
    assert m.state[m.find_ln(b"\x01\x00\x20\x07\x00\xff", 0)[4]] == 2301
    assert m.state[m.find_ln(b"\x00\x00\x60\x01\x01\xff", 0)[4]] == b"12345678"
    assert m.state[m.find_ln(b"\x01\x00\x01\x06\x00\xff", 0)[4]] == 1234  # 1.234 kW
