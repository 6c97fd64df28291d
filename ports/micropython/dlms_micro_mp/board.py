# Build a running meter from a board definition (board/boards/<name>.json):
#
#   cfg = board.load("boards/esp32_devkitc_max3485.json")
#   app = board.build(cfg)          # opens the UARTs, pins, WDT, storage
#   app.loop.run()                  # or app.loop.step(time.ticks_ms())
#
#   board.start()                   # main.py: the board named in
#                                   # /dlms_board.json (tools/deploy.py writes
#                                   # it), from /boards/<name>.json, run forever
#
# The board file is the hardware: pins, baud rates, which channels exist
# ("rs485": half-duplex with a driver-enable pin; "ir": the optical port),
# the HDLC buffer size (hdlc.max_apdu). The meter is a meter definition
# (board/boards/<name>.meter.json, docs/meter-definition.md) compiled to a
# module of constants (`dlms-micro meter compile`, tools/compile_meters.py)
# that the firmware freezes or the board keeps in /lib; the board file names
# it: "meter_module": "<module>". Its identity, HDLC addresses and link
# parameters, associations and objects are the definition's. See
# board/README.md for the keys.

import json

import machine

from dlms_micro.link.hdlc import HdlcServer
from dlms_micro.meterdef import build as _meterdef
from dlms_micro.server import Channel
from dlms_micro.ticks import ticks_diff
from dlms_micro_mp.loop import Log, Loop, UartPort

# ESP32 time.time() counts from 2000-01-01; the core wants 1970-01-01.
EPOCH_2000 = 946684800

# The registers the port adds metered energy to (and keeps in the storage
# under "energy"): active energy import (+A) and export (-A).
OBIS_ENERGY_IMPORT = b"\x01\x00\x01\x08\x00\xff"
OBIS_ENERGY_EXPORT = b"\x01\x00\x02\x08\x00\xff"

# UART parity by name (machine.UART: None, 0 even, 1 odd)
_PARITY = {"none": None, "even": 0, "odd": 1}


def load(path):
    with open(path) as f:
        return json.load(f)


def open_uart(c):
    # machine.UART with the keywords the ESP32 port takes; timeout=0 so that
    # readinto() never blocks the loop.
    return machine.UART(
        c["uart"],
        baudrate=c.get("baud", 9600),
        bits=8,
        parity=_PARITY[c.get("parity", "none")],
        stop=1,
        tx=c["tx"],
        rx=c["rx"],
        timeout=0,
        rxbuf=c.get("rxbuf", 512),
    )


class App:
    # What build() made: the meter, its loop and ports, storage and figures.
    # energy_slots: the state slots of the energy import and export
    # registers (-1: the definition has none).
    def __init__(self, meter, loop, ports, storage, slots, log, definition=None):
        self.meter = meter
        self.loop = loop
        self.ports = ports
        self.storage = storage
        self.energy_slots = slots
        self.log = log
        self.definition = definition

    def hdlc_link(self, cfg):
        # A new HDLC link for one more channel of this meter (a TCP or
        # UART port the firmware adds itself).
        return hdlc_link(self.definition, cfg)


# Keys a board file had before the meter became a definition: the
# definition holds them now, and a board file that still gives them is
# refused rather than half obeyed.
_MOVED = ("ldn", "serial", "password", "load_profile_rows")
_MOVED_HDLC = ("logical", "physical", "max_info", "window", "inactivity_s", "inter_octet_ms")


def check(cfg):
    # Refuse a board file that still holds what its meter definition says.
    for k in _MOVED:
        if k in cfg:
            raise ValueError("board key %r: the meter definition's now (\"meter\": NAME.meter.json)" % k)
    for k in _MOVED_HDLC:
        if k in cfg.get("hdlc", {}):
            raise ValueError("board key hdlc.%s: the meter definition's now (logical_device, "
                             "physical_address, hdlc)" % k)


def meter_definition(cfg):
    # The compiled meter definition the board file names ("meter_module"):
    # a module of constants, frozen or in /lib.
    name = cfg.get("meter_module")
    if not name:
        raise ValueError("board %r names no meter_module (the compiled meter definition: "
                         "python tools/compile_meters.py BOARD.json -o DIR)" % cfg.get("name", "?"))
    import sys

    __import__(name)
    return sys.modules[name]


def hdlc_link(defn, cfg, logical=None):
    # The server side of HDLC with the definition's addresses and link
    # parameters; the board file gives the APDU buffer size (hdlc.max_apdu).
    # logical: another logical device of the definition (a gateway's).
    max_info, window, inactivity_s, inter_octet_ms, _baud = defn.HDLC
    return HdlcServer(
        logical=defn.LOGICAL_DEVICE if logical is None else logical,
        physical=defn.PHYSICAL_ADDRESS,
        max_info_tx=max_info,
        max_info_rx=max_info,
        window_tx=window,
        window_rx=window,
        max_apdu=cfg.get("hdlc", {}).get("max_apdu", 512),
        inactivity_timeout=inactivity_s * 1000,
        inter_octet_timeout=inter_octet_ms,
    )


def _channel(defn, cfg, meters, first):
    # a gateway's channel: a Router over every logical device (first: the
    # link already made for device 1)
    from dlms_micro_mp import sources as _src

    return _src.channel(defn, meters, lambda ld: first if ld == defn.LOGICAL_DEVICE else hdlc_link(defn, cfg, ld))


def slot_of(meter, ln):
    # The first state slot of the object with this logical name, -1 if the
    # meter has no such object (or it keeps no state).
    e = meter.find_ln(ln, 0)
    return -1 if e is None else e[4]


def _wall_clock():
    import time

    return time.time() + EPOCH_2000


def build(cfg, storage=None, wdt=True, log=None, sleep_us=None, wall_clock=None, definition=None, keys=None,
          token_key=None, pin_class=None):
    # storage: a FlashStorage (or any get/put object), or None for none.
    # wdt: False for no watchdog (tests, a REPL session).
    # definition: the compiled meter definition (default: the module the
    # board file names).
    # keys: the meter's KeyStore; None: the one provisioned in storage
    # (dlms_micro_mp.keyring: none when the definition has no ciphered or
    # HLS-GMAC association; missing or corrupt: ciphered ones refused).
    # token_key: the Token gateway's key (16 bytes); None: the storage's
    # record "token.key" (provisioned as the keys are), else tokens refused.
    # pin_class: machine.Pin for the relay outputs and feedback (a stand-in).
    check(cfg)
    log = log if log is not None else Log()
    defn = definition if definition is not None else meter_definition(cfg)
    gateway = getattr(defn, "SOURCES", ()) or len(defn.DEVICES) > 1
    if gateway:
        # metering sources, or one logical device per upstream meter
        # (dlms_micro_mp.sources)
        meters = _meterdef.build_all(defn, wall_clock or _wall_clock, storage)
        meter = meters[0]
    else:
        env = None
        if token_key is not None or any(e[0] == 115 for e in defn.DEVICES[0][2]):
            # a Token gateway: its key (dlms_micro_mp.apps.env)
            from dlms_micro_mp import apps as _apps

            env = _apps.env(storage, token_key)
        meter = _meterdef.build(defn, wall_clock or _wall_clock, storage, env=env)
    if keys is None:
        from dlms_micro_mp import keyring

        if keyring.needs_keys(defn):
            keys = keyring.open_keys(storage, defn, log)
    if keys:
        from dlms_micro_mp import keyring

        keyring.attach(meters if gateway else (meter,), keys)
        keyring.attach_suite12(meters if gateway else (meter,), keys, defn, log)  # suites 1 and 2
    s_imp = slot_of(meter, OBIS_ENERGY_IMPORT)
    s_exp = slot_of(meter, OBIS_ENERGY_EXPORT)
    meter.log = log
    ports = []
    for c in cfg["channels"]:
        link = hdlc_link(defn, cfg)
        de = None
        if c.get("de") is not None:
            de = machine.Pin(c["de"], machine.Pin.OUT, value=0)
        kw = {
            "de": de,
            "turnaround_us": c.get("turnaround_us", 0),
            "de_setup_us": c.get("de_setup_us", 0),
            "rx_size": c.get("rx_chunk", 64),
            "log": log,
            "sleep_us": sleep_us,
        }
        if c.get("mode_e"):
            # IEC 62056-21 mode E: 300 Bd sign-on, then HDLC at the agreed rate
            from dlms_micro.link.iec21 import SignOn
            from dlms_micro_mp.optical import ModeEPort

            signon = SignOn(
                manufacturer=c.get("manufacturer", "DMI").encode(),
                identification=c.get("identification", "DLMSMICRO").encode(),
                max_baud_char=c.get("max_baud_char", "5").encode(),
                address=c.get("device_address", "").encode(),
            )
            ports.append(ModeEPort(c["name"], open_uart(c), _channel(defn, cfg, meters, link) if gateway
                                   else Channel(meter, link), signon, **kw))
        else:
            ports.append(UartPort(c["name"], open_uart(c), _channel(defn, cfg, meters, link) if gateway
                                  else Channel(meter, link), **kw))
    if cfg.get("network"):
        # Wi-Fi or Ethernet (dlms_micro_mp.net): joined without blocking the
        # UARTs; once up, the TCP wrapper and HDLC-over-TCP listeners and
        # the pushes (logical device 1)
        from dlms_micro_mp import net

        max_apdu = cfg.get("hdlc", {}).get("max_apdu", 512)
        if gateway and len(meters) > 1:
            # every logical device over the wrapper and over HDLC, a
            # connection bound to the device its first message names
            # (dlms_micro_mp.gateway_tcp)
            from dlms_micro_mp import gateway_tcp

            wrapper = gateway_tcp.wrapper_factory(meters, max_apdu, log)
            hdlc = gateway_tcp.hdlc_factory(meters, lambda ld: hdlc_link(defn, cfg, ld), log)
        else:
            from dlms_micro.link.wrapper import WrapperServer

            def wrapper():
                return Channel(meter, WrapperServer(max_apdu=max_apdu))

            def hdlc():
                return Channel(meter, hdlc_link(defn, cfg))
        link = net.board_link(cfg, meter, storage, log, wrapper, hdlc)
        if link is not None:
            ports.append(link)
    bindings = None
    if gateway:
        from dlms_micro_mp import sources as _src

        more, bindings = _src.attach(cfg, defn, meters, storage, log, sleep_us)
        ports.extend(more)
    dog = None
    if wdt and cfg.get("wdt_ms"):
        dog = machine.WDT(timeout=cfg["wdt_ms"])
    led = None
    if cfg.get("led") is not None:
        led = machine.Pin(cfg["led"], machine.Pin.OUT)
    loop = Loop(tuple(ports), wdt=dog, idle=idle_hook(cfg), led=led, led_on=0 if cfg.get("led_active_low") else 1)
    if storage is not None:
        _restore(meter, storage, s_imp, s_exp)
    apps = None
    if cfg.get("relay") or any(e[0] in (6, 20, 22, 70, 111) for e in meter.table):
        # disconnect control, time of use, prepayment (dlms_micro_mp.apps)
        from dlms_micro_mp import apps as _apps

        apps = _apps.wire(cfg, meter, storage, log, pin_class or machine.Pin)
    # the clock: a head-end's SET kept across restarts, events, resyncs
    from dlms_micro_mp.timekeeping import TimeKeeper

    loop.service = Service(meter, storage)
    loop.service.keeper = TimeKeeper(meter, storage, log)
    if apps is not None:
        loop.service = apps.ticker(loop.service)  # once a second, after the clock keeper and the profiles
    if bindings is not None:
        loop.service = _src.Service(meters, bindings, loop.service)
    # the energies kept across power cuts: written within the storage's
    # interval, at once when the board file's "power_fail" pin sees the
    # supply drop (powerfail.py says the bound)
    from dlms_micro_mp import powerfail

    loop.service = powerfail.attach(cfg, meter, storage, (s_imp, s_exp), loop.service)
    if cfg.get("sleep") == "light":
        # battery boards: light sleep between frames, woken by the optical
        # head, bounded by the next capture and the watchdog (power.py)
        from dlms_micro_mp import power

        loop.idle = power.from_board(cfg, loop.ports, meter, storage, dog, log, nap=_nap, sleep_us=sleep_us)
    app = App(meter, loop, tuple(ports), storage, (s_imp, s_exp), log, defn)
    if apps is not None:
        app.apps = apps  # dlms_micro_mp.apps.Apps: disconnect, time of use, prepayment
    app.meters = tuple(meters) if gateway else (meter,)  # every logical device's
    return app


class Service:
    # The loop's periodic work: the storage's lazy writes, and once a second
    # the metering ticks (the load profile captures at each multiple of its
    # capture period). tick_ms: how often the meter's time is looked at.
    def __init__(self, meter, storage, tick_ms=1000):
        self.meter = meter
        self.storage = storage
        self.tick_ms = tick_ms
        self.profiles = tuple(e for e in meter.table if e[0] == 7 and e[4] >= 0)
        self._at = None
        self.keeper = None  # timekeeping.TimeKeeper: looks at the clock offset first
        if self.profiles:
            from dlms_micro.cosem import clock, profile

            self.now = clock.now
            self.tick = profile.tick

    def __call__(self, now):
        if self.storage is not None:
            self.storage.service(now)
        if self.keeper is not None:
            self.keeper(now)
        if not self.profiles:
            return
        if self._at is not None and ticks_diff(now, self._at) < self.tick_ms:
            return
        self._at = now
        utc = self.now(self.meter)
        for e in self.profiles:
            self.tick(self.meter, e, utc)


def _restore(meter, storage, s_imp, s_exp):
    b = storage.get("energy")
    if b is not None and len(b) == 8:
        if s_imp >= 0:
            meter.state[s_imp] = int.from_bytes(b[0:4], "big")
        if s_exp >= 0:
            meter.state[s_exp] = int.from_bytes(b[4:8], "big")


def idle_hook(cfg):
    # What the loop does when a pass moved nothing: a short time.sleep_ms
    # (idle_ms), which lets the RTOS idle task run. "sleep": "light" (battery
    # boards) replaces it in build() with dlms_micro_mp.power's light sleep.
    ms = cfg.get("idle_ms", 1)

    def nap(loop, now):
        _nap(ms)

    return nap


def _nap(ms):
    import time

    if hasattr(time, "sleep_ms"):
        time.sleep_ms(ms)  # type: ignore[attr-defined]
    else:
        time.sleep(ms / 1000)


SELECTED = "/dlms_board.json"  # {"board": NAME}, written by tools/deploy.py
BOARDS = "/boards"


def start(selected=SELECTED, boards=BOARDS, run=True, **kw):
    # Load the selected board's definition, build the meter with flash
    # storage, report the heap, run the loop (run=False: return the App).
    from dlms_micro_mp.storage import FlashStorage

    name = load(selected)["board"]
    cfg = load(boards + "/" + name + ".json")
    if "storage" not in kw:
        kw["storage"] = FlashStorage(cfg.get("storage", "/data"))
    app = build(cfg, **kw)
    try:
        import gc

        gc.collect()
        app.log("dlms_micro: board %s, %d channels, heap free %d B" % (name, len(app.ports), gc.mem_free()))
    except AttributeError:  # CPython: no gc.mem_free
        app.log("dlms_micro: board %s, %d channels" % (name, len(app.ports)))
    if run:
        app.loop.run()
    return app
