# The MicroPython port (ports/micropython/dlms_micro_mp) driven through its
# steppable main loop with a test double of `machine` (mp_machine): a
# head-end over RS-485 (SNRM/UA, AARQ/AARE, GET, DISC) with the
# driver-enable timing checked, noise on the IR port, a client that never
# disconnects, UART overruns, flash storage across power cuts, the IEC
# 62056-21 mode E sign-on on the IR port (300 Bd, baud switch, HDLC, back to
# 300 Bd), and the heap
# the loop allocates per request. Runs under pytest and real MicroPython.

import sys

import mp_machine

machine = mp_machine.install()
CLOCK = mp_machine.CLOCK

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

import esp32_devkitc_max3485_meter  # noqa: E402,F401
import mp_port_meter  # noqa: E402,F401
import mp_port_meter_lp  # noqa: E402,F401
from dlms_micro.app import association as asn
from dlms_micro.cosem import association_ln, clock, data, hdlc_setup, register, sap  # noqa: F401
from dlms_micro.cosem import push, security_setup  # noqa: F401  (the boards' management association, push)
from dlms_micro.cosem import disconnect, script, tariff  # noqa: F401  (the devkitc board's time of use and relay)
from dlms_micro_mp import apps, relay  # noqa: F401  (code: in flash on a board)
from dlms_micro.link import hdlc
from dlms_micro_mp import board, keyring, timekeeping  # noqa: F401
from dlms_micro_mp.loop import Log, Loop, UartPort
from dlms_micro_mp.storage import FlashStorage
from hdlc_peer import LLC_REQ, LLC_RSP, Frame, disc, iframe, snrm
from support import unhex

AARQ_PUBLIC = "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"
GET_IMPORT = "C001C1 0003 0100010800FF 0200"
TURNAROUND_US = 3000
DE_SETUP_US = 100

# the meter: tests/meters/mp_port.json compiled (tools/compile_meters.py)
# into mp_port_meter.py; mp_port_meter_lp.py adds an 8-row load profile
CFG = {
    "name": "test",
    "meter_module": "mp_port_meter",
    "hdlc": {"max_apdu": 512},
    "channels": [
        {"name": "rs485", "uart": 2, "tx": 17, "rx": 16, "de": 4, "baud": 9600,
         "turnaround_us": TURNAROUND_US, "de_setup_us": DE_SETUP_US},
        {"name": "ir", "uart": 1, "tx": 26, "rx": 27, "baud": 9600},
    ],
    "wdt_ms": 8000,
}


class Lines:
    # collects log lines instead of printing them
    def __init__(self):
        self.lines = []

    def __call__(self, msg):
        self.lines.append(msg)


def make_app():
    out = Lines()
    app = board.build(CFG, log=Log(out), sleep_us=CLOCK.sleep_us, wall_clock=lambda: 800000000)
    return app, out


def run(app, steps=3):
    for _ in range(steps):
        app.loop.step(CLOCK.ticks_ms())


class HeadEnd:
    # the client side of one port: HDLC frames in, frames out
    def __init__(self, app, port=0):
        self.app = app
        self.port = app.ports[port]
        self.uart = self.port.uart
        self.ns = 0
        self.nr = 0

    def send(self, data):
        self.uart.inject(data)
        run(self.app)
        out = self.uart.take()
        frames = []
        i = 0
        while i < len(out):
            n = (((out[i + 1] & 7) << 8) | out[i + 2]) + 2
            frames.append(Frame(out[i : i + n]))
            i += n
        return frames

    def request(self, apdu_hex):
        f = iframe(self.ns, self.nr, LLC_REQ + unhex(apdu_hex))
        self.ns = (self.ns + 1) & 7
        out = self.send(f)
        assert len(out) == 1 and out[0].is_i(), [x.kind() for x in out]
        self.nr = (out[0].ns + 1) & 7
        assert out[0].info[:3] == LLC_RSP
        return out[0].info[3:]


def test_mp_port_rs485_session_with_driver_enable_timing():
    app, log = make_app()
    app.meter.state[app.energy_slots[0]] = 12345
    port = app.ports[0]
    de = port.de
    de.clear()
    he = HeadEnd(app)
    assert [f.kind() for f in he.send(snrm())] == ["UA"]
    aare = he.request(AARQ_PUBLIC)
    assert unhex("A203020100") in aare  # accepted
    assert he.request(GET_IMPORT) == unhex("C401C1 00 06 00003039")
    assert [f.kind() for f in he.send(disc())] == ["UA"]
    assert port.channel.assoc.status == asn.NON_ASSOCIATED
    # DE: one high pulse per frame, raised DE_SETUP_US before the first
    # byte went out and dropped the instant the last stop bit left
    changes = de.changes()
    writes = port.uart.write_times()
    assert len(writes) == 4 and len(changes) == 8
    for i in range(4):
        (t_up, up), (t_down, down) = changes[2 * i], changes[2 * i + 1]
        start, end = writes[i]
        assert up == 1 and down == 0
        assert start - t_up == DE_SETUP_US
        assert t_down == end
        if i:  # the turnaround: quiet line before each answer
            assert t_up - changes[2 * i - 1][0] >= TURNAROUND_US
    assert de.value() == 0
    assert app.loop.wdt.feeds > 0
    # DISC without RLRQ: the core says so, nothing else is logged
    assert log.lines == ["association released by the link"]


def test_mp_port_both_channels_serve_the_same_meter():
    app, log = make_app()
    app.meter.state[app.energy_slots[0]] = 7
    rs, ir = HeadEnd(app, 0), HeadEnd(app, 1)
    assert [f.kind() for f in rs.send(snrm())] == ["UA"]
    assert [f.kind() for f in ir.send(snrm())] == ["UA"]
    rs.request(AARQ_PUBLIC)
    ir.request(AARQ_PUBLIC)
    assert ir.request(GET_IMPORT) == unhex("C401C1 00 06 00000007")
    assert rs.request(GET_IMPORT) == unhex("C401C1 00 06 00000007")
    assert ir.port.uart.writes == 3 and ir.port.de is None


def test_mp_port_ir_noise_at_wrong_baud_is_ignored_and_logged_once():
    app, log = make_app()
    ir = HeadEnd(app, 1)
    noise = snrm() + iframe(0, 0, LLC_REQ + unhex(AARQ_PUBLIC))
    for _ in range(20):
        ir.uart.inject(noise, baudrate=300)  # a head-end still at 300 baud
        run(app, 2)
    assert ir.uart.take() == b""
    assert len(log.lines) <= 3, log.lines
    # the port still works at the right rate, and so does the other one
    assert [f.kind() for f in ir.send(snrm())] == ["UA"]
    assert [f.kind() for f in HeadEnd(app, 0).send(snrm())] == ["UA"]


def test_mp_port_client_that_never_disconnects_is_dropped_after_inactivity():
    app, log = make_app()
    he = HeadEnd(app)
    he.send(snrm())
    he.request(AARQ_PUBLIC)
    ch = he.port.channel
    assert ch.assoc.status == asn.ASSOCIATED
    CLOCK.advance_ms(4000)
    run(app, 1)
    assert ch.assoc.status == asn.ASSOCIATED
    CLOCK.advance_ms(1500)  # 5 s of silence: the link and association end
    run(app, 1)
    assert ch.link.state == hdlc.NDM
    assert ch.assoc.status == asn.NON_ASSOCIATED
    assert any("inactivity" in m for m in log.lines)
    # the next head-end gets a fresh link
    he.ns = he.nr = 0
    assert [f.kind() for f in he.send(snrm())] == ["UA"]


def test_mp_port_uart_overrun_and_none_reads_recover():
    app, log = make_app()
    he = HeadEnd(app)
    uart = he.uart
    uart.none_next = 5  # readinto() -> None although any() said bytes wait
    uart.inject(snrm())
    run(app, 3)
    # once the driver returns data again the SNRM is answered
    run(app, 5)
    assert [Frame(uart.take()).kind()] == ["UA"]
    # a flood longer than any frame: full reads, the link discards it
    uart.inject(b"\x7e\xa0" + bytes(range(256)) * 7)
    for _ in range(40):
        run(app, 1)
    uart.take()
    assert he.port.errors == 0
    he.ns = he.nr = 0
    assert [f.kind() for f in he.send(snrm())] == ["UA"]


class StuckChannel:
    # a channel whose link takes nothing, then raises: the port must drop
    # bytes and recover, logging each condition once
    def __init__(self):
        self.assoc = asn.AssociationState()
        self.fail = False
        self.closed = 0

    def set_log(self, fn):
        pass

    def feed(self, data, start, end, now):
        return 0

    def next_event(self, now):
        if self.fail:
            raise ValueError("bug")
        return 0

    def close(self):
        self.closed += 1


def test_mp_port_full_link_buffer_drops_bytes_and_exceptions_do_not_wedge():
    out = Lines()
    uart = machine.UART(1, baudrate=9600, tx=1, rx=2)
    ch = StuckChannel()
    port = UartPort("x", uart, ch, rx_size=16, log=Log(out), sleep_us=CLOCK.sleep_us)
    loop = Loop((port,))
    uart.inject(bytes(40))
    for _ in range(5):
        loop.step(0)
    assert port.dropped == 40 and port.rx_bytes == 40
    assert out.lines == ["x: receive overrun, bytes dropped"]
    ch.fail = True
    for _ in range(5):
        loop.step(0)
    assert port.errors == 5 and ch.closed == 5
    assert len(out.lines) == 3  # the new message, and the repeat count with it
    ch.fail = False
    uart.inject(b"\x7e")
    assert loop.step(0)


def _store_dir(name):
    import os

    base = "/tmp" if sys.implementation.name != "micropython" else ""
    d = base + "/dlms_mp_test_" + name
    try:
        for f in os.listdir(d):
            os.remove(d + "/" + f)
    except OSError:
        pass
    return d


def test_mp_port_flash_storage_survives_a_power_cut_at_any_instant():
    store = FlashStorage(_store_dir("cut"))
    store.put("ic", b"\x00\x00\x00\x05")
    assert store.get("ic") == b"\x00\x00\x00\x05"
    p = store.directory + "/ic"
    # cut while writing the new record: a torn .new is ignored
    rec = bytearray(8)
    rec[0:2] = b"\x00\x04"
    rec[2:6] = b"\x00\x00\x00\x06"
    from dlms_micro import crc16

    crc16.put_fcs(rec, 0, 6)
    for cut in range(8):
        with open(p + ".new", "wb") as f:
            f.write(rec[:cut])
        assert FlashStorage(store.directory).get("ic") == b"\x00\x00\x00\x05"
    # cut after the record was complete, before the rename: the new value
    with open(p + ".new", "wb") as f:
        f.write(rec)
    assert FlashStorage(store.directory).get("ic") == b"\x00\x00\x00\x06"
    # a corrupt main file with no .new: None, not garbage
    store.put("x", b"abc")
    with open(store.directory + "/x", "wb") as f:
        f.write(b"\x00\x03abX\x00\x00")
    assert store.get("x") is None
    # unchanged values cost no write; lazy values at most once per interval
    store = FlashStorage(store.directory, min_interval_ms=1000)
    store.put("ic", b"\x00\x00\x00\x06")
    assert store.writes == 0
    store.put_lazy("energy", b"\x01")
    assert store.service(0) == 1
    store.put_lazy("energy", b"\x02")
    assert store.service(500) == 0 and store.get("energy") == b"\x02"
    assert store.service(1000) == 1 and FlashStorage(store.directory).get("energy") == b"\x02"


def test_mp_port_restores_energy_from_storage():
    store = FlashStorage(_store_dir("boot"))
    store.put("energy", b"\x00\x00\x01\x00\x00\x00\x00\x02")
    app = board.build(CFG, storage=store, log=Log(Lines()), sleep_us=CLOCK.sleep_us)
    assert app.meter.state[app.energy_slots[0]] == 256
    assert app.meter.state[app.energy_slots[1]] == 2


def test_mp_port_light_sleep_hook_only_without_association():
    cfg = dict(CFG)
    cfg["sleep"] = "light"
    cfg["idle_ms"] = 20
    app = board.build(cfg, wdt=False, log=Log(Lines()), sleep_us=CLOCK.sleep_us)
    before = mp_machine.SLEEPS[0]
    app.loop.idle(app.loop, 0)
    assert mp_machine.SLEEPS[0] == before + 1
    he = HeadEnd(app)
    he.send(snrm())
    he.request(AARQ_PUBLIC)
    assert app.loop.associated()
    app.loop.idle(app.loop, 0)
    assert mp_machine.SLEEPS[0] == before + 1  # no light sleep mid-session


# the first heap test's figure, for the next (the wasm runner collects no
# garbage inside a test: building that meter again would not fit beside the
# board's)
_HEAP = {}


def test_mp_port_heap_figures():
    # heap after boot (the board's table, two channels) and bytes allocated
    # by one loop step that answers a GET; MicroPython only
    if sys.implementation.name != "micropython":
        return
    import gc

    gc.collect()
    a0 = gc.mem_alloc()
    app, log = make_app()
    gc.collect()
    boot = gc.mem_alloc() - a0
    he = HeadEnd(app)
    he.send(snrm())
    he.request(AARQ_PUBLIC)
    frames = []
    for i in range(4):
        frames.append(iframe((he.ns + i) & 7, (he.nr + i) & 7, LLC_REQ + unhex(GET_IMPORT)))
    loop = app.loop
    uart = he.uart
    per = []
    for f in frames:
        uart.inject(f)
        now = CLOCK.ticks_ms()
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        loop.step(now)
        used = gc.mem_alloc() - a
        gc.enable()
        per.append(used)
        assert Frame(uart.take()).is_i()
    idle_a = gc.mem_alloc()
    gc.disable()
    loop.step(CLOCK.ticks_ms())
    idle = gc.mem_alloc() - idle_a
    gc.enable()
    print("heap: meter+2 channels after boot %d B, free %d B; loop step with a GET %s B; idle step %d B"
          % (boot, gc.mem_free(), per, idle))
    _HEAP["boot"] = boot
    assert idle == 0
    # the first answer makes the port's views and the meter's index of its
    # objects (Meter.find) once; then 16 B a request (the memoryview of the
    # frame handed to uart.write)
    assert max(per) < 256 and max(per[1:]) <= 16


def test_mp_port_heap_with_the_load_profile():
    # the devkitc board's meter, with its 96-row load profile (one day):
    # the ring is 96 x 27 B in one bytearray, and a capture allocates little.
    # Its own test: this runner collects no garbage inside one, and the board
    # with its applications does not fit beside the first test's.
    if sys.implementation.name != "micropython":
        return
    import gc

    from dlms_micro.cosem import profile  # its code: in flash on a board

    boot = _HEAP.get("boot")
    if boot is None:  # test_mp_port_heap_figures not run first
        gc.collect()
        a0 = gc.mem_alloc()
        app, log = make_app()
        gc.collect()
        boot = gc.mem_alloc() - a0
        del app, log
    cfg = dict(CFG)
    cfg["meter_module"] = "esp32_devkitc_max3485_meter"
    gc.collect()
    a0 = gc.mem_alloc()
    app2 = board.build(cfg, log=Log(Lines()), sleep_us=CLOCK.sleep_us, wall_clock=lambda: 800000000)
    gc.collect()
    boot_lp = gc.mem_alloc() - a0
    lp = app2.meter.find(7, b"\x01\x00\x63\x01\x00\xff", 0)
    profile.capture(app2.meter, lp)
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    profile.capture(app2.meter, lp)
    cap = gc.mem_alloc() - a
    gc.enable()
    print("heap: with a 96-row load profile after boot %d B (+%d B); a capture %d B" % (boot_lp, boot_lp - boot, cap))
    # + the board's time of use and disconnect control (issue 15 item 5):
    # this build measured +8.0 KB for them, the unix firmware 2.2 KB
    # (tools/firmware/retrofit_heap.py --apps esp32_devkitc_max3485)
    assert boot_lp - boot < 96 * 27 + 2048 + 8192


def test_mp_port_start_reads_the_selected_board_and_lights_the_led():
    import json

    d = _store_dir("start")
    try:
        import os

        os.mkdir(d)
    except OSError:
        pass
    cfg = dict(CFG)
    cfg["led"] = 8
    cfg["led_active_low"] = True
    with open(d + "/sel.json", "w") as f:
        json.dump({"board": "mine"}, f)
    with open(d + "/mine.json", "w") as f:
        json.dump(cfg, f)
    out = Lines()
    app = board.start(d + "/sel.json", d, run=False, storage=None, log=Log(out), sleep_us=CLOCK.sleep_us)
    assert out.lines[0].startswith("dlms_micro: board mine, 2 channels")
    led = app.loop.led
    assert led.value() == 1  # active low: off
    he = HeadEnd(app)
    he.uart.inject(snrm())
    app.loop.step(CLOCK.ticks_ms())
    assert led.value() == 0  # lit while bytes move
    app.loop.step(CLOCK.ticks_ms())
    assert led.value() == 1


def test_mp_port_board_definitions_build():
    # the board files in board/boards/ (CPython: the repo; MicroPython: not
    # staged, so nothing to check there)
    import json

    try:
        import os

        here = __file__.rsplit("/", 1)[0]
        d = here + "/../../board/boards"
        names = [n for n in os.listdir(d) if n.endswith(".json") and not n.endswith(".meter.json")]
    except (OSError, AttributeError):
        return
    assert "esp32_devkitc_max3485.json" in names and "esp32c3_battery.json" in names
    for n in names:
        with open(d + "/" + n) as f:
            cfg = json.load(f)
        app = board.build(cfg, log=Log(Lines()), sleep_us=CLOCK.sleep_us)
        kinds = [c["kind"] for c in cfg["channels"]]
        for c, p in zip(cfg["channels"], app.ports):
            assert p.uart.baudrate == c["baud"] and p.uart.tx_pin == c["tx"] and p.uart.rx_pin == c["rx"]
            assert (p.de is not None) == (c["kind"] == "rs485")
        assert app.loop.wdt.timeout == cfg["wdt_ms"]
        c0 = cfg["channels"][0]
        if c0.get("mode_e"):
            he = sign_on(app, b"/DMI5\\2" + c0["identification"].encode() + b"\r\n")
        else:
            he = HeadEnd(app, 0)
        assert [f.kind() for f in he.send(snrm())] == ["UA"], n
        assert "rs485" in kinds or "ir" in kinds


CFG_MODE_E = {
    "name": "mode-e",
    "meter_module": "mp_port_meter",
    "hdlc": {"max_apdu": 512},
    "channels": [{"name": "ir", "kind": "ir", "uart": 1, "tx": 26, "rx": 27, "baud": 300, "mode_e": True,
                  "manufacturer": "DMI", "identification": "DLMSMICRO", "max_baud_char": "5"}],
}
IDENT = b"/DMI5\\2DLMSMICRO\r\n"
ACK_9600 = b"\x06252\r\n"  # ACK, V=2 (HDLC), Z=5 (9600 Bd), Y=2 (binary)


def mode_e_app():
    out = Lines()
    app = board.build(CFG_MODE_E, log=Log(out), sleep_us=CLOCK.sleep_us)
    return app, out


def sign_on(app, ident=IDENT):
    # 300 Bd 7E1 request and identification, acknowledgement, switch to
    # 9600 Bd with the confirm, then 8N1: returns the IR head-end
    he = HeadEnd(app, 0)
    uart = he.uart
    assert (uart.baudrate, uart.bits, uart.parity) == (300, 7, 0)
    uart.inject(b"/?!\r\n")
    run(app, 1)
    assert uart.take() == b""  # not before the reaction time
    CLOCK.advance_ms(210)
    run(app, 1)
    assert uart.take() == ident
    uart.flush()  # the identification takes ~0.7 s at 300 Bd
    uart.inject(ACK_9600)
    run(app, 1)
    assert (uart.baudrate, uart.bits, uart.parity) == (9600, 7, 0)
    CLOCK.advance_ms(210)
    run(app, 2)
    assert uart.take() == ACK_9600  # the switch confirm, at the new rate
    assert (uart.baudrate, uart.bits, uart.parity) == (9600, 8, None)
    return he


def test_mp_port_mode_e_sign_on_hdlc_session_and_back_to_300_baud():
    app, log = mode_e_app()
    app.meter.state[app.energy_slots[0]] = 99
    he = sign_on(app)
    uart = he.uart
    assert [f.kind() for f in he.send(snrm())] == ["UA"]
    he.request(AARQ_PUBLIC)
    assert he.request(GET_IMPORT) == unhex("C401C1 00 06 00000063")
    assert [f.kind() for f in he.send(disc())] == ["UA"]
    # back to 300 Bd 7E1, and only after the UA's last bit left the UART
    t, baud, bits, parity = uart.lines[-1]
    assert (baud, bits, parity) == (300, 7, 0)
    assert t >= uart.write_times()[-1][1]
    assert he.port.channel.assoc.status == asn.NON_ASSOCIATED
    # and a second sign-on works the same
    he = sign_on(app)
    assert [f.kind() for f in he.send(snrm())] == ["UA"]
    assert he.port.signon.signons == 2


def test_mp_port_mode_e_noise_at_the_wrong_baud_then_sign_on():
    app, log = mode_e_app()
    uart = app.ports[0].uart
    for _ in range(30):  # a head-end that talks HDLC at 9600 to a 300 Bd line
        uart.inject(snrm() + b"/?!\r\n", baudrate=9600)
        run(app, 1)
        CLOCK.advance_ms(300)
        run(app, 1)
    assert uart.take() == b""
    assert len(log.lines) <= 4, log.lines
    he = sign_on(app)
    assert [f.kind() for f in he.send(snrm())] == ["UA"]


def test_mp_port_mode_e_client_that_never_disconnects_returns_the_line_to_300():
    app, log = mode_e_app()
    he = sign_on(app)
    he.send(snrm())
    he.request(AARQ_PUBLIC)
    CLOCK.advance_ms(6000)  # beyond the HDLC inactivity timeout (5 s)
    run(app, 2)
    uart = he.uart
    assert (uart.baudrate, uart.bits, uart.parity) == (300, 7, 0)
    assert he.port.channel.assoc.status == asn.NON_ASSOCIATED
    # signed on, but no SNRM ever: the sign-on's own timer (set short here)
    he.port.signon.inactivity_timeout = 3000
    sign_on(app)
    CLOCK.advance_ms(3500)
    run(app, 2)
    assert (uart.baudrate, uart.bits, uart.parity) == (300, 7, 0)
    assert sign_on(app).port.signon.signons == 3


def test_mp_port_mode_e_heap_per_request():
    # bytes one loop step allocates answering a GET on the IR port after the
    # sign-on; MicroPython only
    if sys.implementation.name != "micropython":
        return
    import gc

    app, log = mode_e_app()
    he = sign_on(app)
    he.send(snrm())
    he.request(AARQ_PUBLIC)
    frames = []
    for i in range(3):
        frames.append(iframe((he.ns + i) & 7, (he.nr + i) & 7, LLC_REQ + unhex(GET_IMPORT)))
    per = []
    for f in frames:
        he.uart.inject(f)
        now = CLOCK.ticks_ms()
        gc.collect()
        gc.disable()
        a = gc.mem_alloc()
        app.loop.step(now)
        used = gc.mem_alloc() - a
        gc.enable()
        per.append(used)
        assert Frame(he.uart.take()).is_i()
    print("heap: IR (mode E, then HDLC) loop step with a GET %s B" % per)
    # the first GET also makes the meter's object index (Meter.find)
    assert max(per) < 256 and max(per[1:]) <= 16


# The load profile's capture and its restore after a restart are two tests,
# one board built in each: the MicroPython runner frees nothing inside a test,
# and two boards in one had almost no heap to spare (a small change to the
# core's code tipped it over). The capture leaves its store and row here for
# the restart, which runs next in source order (alone, it captures first).
_LP_RUN = {}


def test_mp_port_load_profile_captures_on_the_quarter_hour():
    cfg = dict(CFG)
    cfg["meter_module"] = "mp_port_meter_lp"
    wall = [(800000000 // 900) * 900 + 898]  # 2 s before a quarter hour
    store = FlashStorage(_store_dir("lp"))
    app = board.build(cfg, storage=store, log=Log(Lines()), sleep_us=CLOCK.sleep_us, wall_clock=lambda: wall[0])
    lp = app.meter.find(7, b"\x01\x00\x63\x01\x00\xff", 0)
    ring = app.meter.state[lp[4]]
    app.meter.state[app.energy_slots[0]] = 1234
    for _ in range(4):  # the loop looks at the clock once a second
        app.loop.step(CLOCK.ticks_ms())
        CLOCK.advance_ms(1000)
        wall[0] += 1
    assert ring.count == 1
    app.loop.step(CLOCK.ticks_ms())
    assert ring.count == 1  # once per quarter hour
    # the row: clock (octet-string 12), import 1234, export 0
    row = ring.data[0 : ring.width]
    assert row[0] == 14 and row[1] == 9 and row[2] == 12
    assert bytes(row[15:21]) == b"\x05\x06\x00\x00\x04\xd2"  # [length 5] double-long-unsigned 1234
    _LP_RUN["cfg"] = cfg
    _LP_RUN["directory"] = store.directory
    _LP_RUN["wall"] = wall[0]
    _LP_RUN["row"] = bytes(row)


def test_mp_port_load_profile_survives_a_restart():
    if not _LP_RUN:
        test_mp_port_load_profile_captures_on_the_quarter_hour()
    row = _LP_RUN["row"]
    app2 = board.build(_LP_RUN["cfg"], storage=FlashStorage(_LP_RUN["directory"]), log=Log(Lines()),
                       sleep_us=CLOCK.sleep_us, wall_clock=lambda: _LP_RUN["wall"])
    ring2 = app2.meter.state[app2.meter.find(7, b"\x01\x00\x63\x01\x00\xff", 0)[4]]
    assert ring2.count == 1 and bytes(ring2.data[0 : len(row)]) == row
    _LP_RUN.clear()
