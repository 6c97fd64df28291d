# Entry point frozen into the firmware that `make firmware` builds
# (tools/firmware/build.py): a board's meter, built by dlms_micro_mp.board
# from its definition (dlms_board_def, compiled from board/boards/*.json),
# served on what the firmware has instead of the board's UARTs.
#
# unix port (build/firmware/unix32/micropython -X heapsize=100k -m fw_main ...):
#   --board NAME        a board of dlms_board_def (default: the first)
#   --host H            address to listen on (127.0.0.1)
#   --port N            TCP wrapper port (4059; "off": none)
#   --hdlc-port N       HDLC over TCP port (4060; "off": none)
#   --data DIR          flash-like storage directory (default: none, RAM only)
#   --meter MODULE      serve this frozen compiled meter definition instead of
#                       the board's (fw_secure_meter: + HLS-GMAC, suite 0,
#                       and HLS-ECDSA with security suite 1)
#   --keys K            the suite 0 keys of a ciphered association: "demo"
#                       (default, the keys of `make serve`), a key file (JSON
#                       as `dlms-micro serve --keys FILE`) or "none"; written
#                       into --data once, as tools/provision.py provisions a
#                       board (keys already there, from a key_transfer, win)
#   --quiet             no log lines
#   --boot-only         print the ready line (heap after boot) and exit
#   --heap-log          print the heap in use and free (after a collection)
#                       twice a second while serving
#   --pins DIR          machine.Pin stand-in for the board's relay: each output
#                       write appended to DIR/pins.log ("PIN LEVEL"); an input
#                       reads DIR/in<PIN> ("0"/"1") when that file exists, else
#                       the relay's feedback input reads the contacts (a
#                       latching relay's last coil pulsed, a monostable's coil)
#   --first-device      a gateway: logical device 1 only on both TCP ports
#                       (default: every logical device, a connection bound
#                       to the device its first message names:
#                       dlms_micro_mp.gateway_tcp; --all-devices, the old
#                       opt-in, is still accepted)
#   --load W            a constant load of W watts while the relay is closed:
#                       its energy added once a second (apps.add_energy: import
#                       register, the tariff's rate register; prepayment
#                       charges it)
# It prints "dlms_micro: ready wrapper=PORT hdlc=PORT heap_used=B heap_free=B"
# once listening, then serves until killed.
#
# qemu port (MPS2_AN385, bare metal): `import fw_main; fw_main.qemu()` at the
# REPL; the meter then speaks HDLC on the REPL UART (the only serial line)
# after printing "dlms_micro: ready hdlc heap_used=B heap_free=B".
# fw_main.qemu(meter_module="fw_secure_meter", seed=<32 bytes from the
# host>): the secured meter, HLS challenges from an HMAC_DRBG of that seed.

import gc
import sys

# The frozen modules before the current directory: run from a checkout, the
# firmware would otherwise compile dlms_micro/*.py from source into the heap.
if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

import dlms_board_def  # noqa: E402
from dlms_micro_mp import board as _board  # noqa: E402


def use_native():
    # The viper CRC where this firmware froze it as machine code (the qemu
    # build: Thumb-2); elsewhere the portable code stays. Returns its name.
    try:
        import crc16_viper
    except (ImportError, SyntaxError, ValueError):
        return "portable"
    return "viper" if crc16_viper.install() else "portable"


CRC = use_native()


# Demo-only keys (public: the Green Book's example keys, as the CPython demo
# meter's), for a meter definition with a ciphered association.
DEMO_EK = b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
DEMO_AK = b"\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf"
DEMO_KEK = b"\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf"


class RamStore:
    # get/put storage in RAM (a firmware run without --data)
    def __init__(self):
        self.d = {}

    def get(self, key):
        return self.d.get(key)

    def put(self, key, value):
        self.d[key] = bytes(value)

    def put_lazy(self, key, value):
        self.d[key] = bytes(value)

    def service(self, now):
        pass


def make_meter(name=None, storage=None, wall_clock=None, meter_module=None, keys="demo", log=None, pin_class=None):
    # The board's meter (and the App board.build made) without its UARTs,
    # LED and watchdog: the firmware's ports stand in for them.
    # meter_module: another compiled meter definition (frozen) to build
    # instead of the one the board file names.
    # keys (a definition with a ciphered or HLS-GMAC association): "demo"
    # (the demo keys of `make serve`), a key file's path (JSON as
    # `dlms-micro serve --keys`), or "none". They are provisioned into the
    # storage as tools/provision.py provisions a board, unless it holds keys
    # already (a key_transfer's, or a corrupt record: refused, not replaced);
    # without storage they live in RAM.
    name = name or dlms_board_def.NAMES[0]
    cfg = dlms_board_def.load(name)
    cfg["channels"] = []
    cfg.pop("led", None)
    cfg.pop("network", None)  # the unix firmware's own TCP ports stand in for it
    if meter_module:
        cfg["meter_module"] = meter_module
    defn = _board.meter_definition(cfg)
    from dlms_micro_mp import keyring

    ks = False
    if keyring.needs_keys(defn):
        store = storage if storage is not None else RamStore()
        if keys != "none":
            _provision(store, defn, keys)
        ks = keyring.open_keys(store, defn, log) or False
    token_key = None
    if keys == "demo" and any(e[0] == 115 for e in defn.DEVICES[0][2]):
        # the demo Token gateway key (`dlms-micro token` makes tokens with it)
        demo_token_key = b"TOKEN-DEMO-ONLY!"
        # provisioned once, as the keys; without storage in RAM
        if storage is None:
            token_key = demo_token_key
        else:
            from dlms_micro_mp import apps

            if storage.get(apps.KEY_TOKEN) is None:
                storage.put(apps.KEY_TOKEN, demo_token_key)
    if pin_class is None and cfg.get("relay"):
        import machine

        if not hasattr(machine, "Pin"):  # the unix and qemu ports: the relay modelled
            pin_class = Dev.pins(None, cfg["relay"])
    app = _board.build(cfg, storage=storage, wdt=False, log=log or _quiet, wall_clock=wall_clock, definition=defn,
                       keys=ks, token_key=token_key, pin_class=pin_class)
    return app, cfg


def _provision(store, defn, keys):
    # the demo keys or a key file's, written once as provisioning writes them
    from dlms_micro.security import keys as ks
    from dlms_micro_mp import keyring

    damaged = getattr(store, "damaged", None)
    if store.get(ks.STORE_KEYS) is not None or (damaged is not None and damaged(ks.STORE_KEYS)):
        return
    if any(len(r) > 6 and r[6] for r in defn.ROLES):
        _provision_suite12(store, defn, keys)
    ek, ak, kek, title = DEMO_EK, DEMO_AK, DEMO_KEK, None
    if keys != "demo":
        ek, ak, kek, title = keyring.read_key_file(keys)
    keyring.provision(store, title or defn.SYSTEM_TITLE, ek, ak, kek, keyring.POLICY[keyring.level(defn)])


def _provision_suite12(store, defn, keys):
    # Suites 1 and 2: the meter's signing key, the clients' keys, the trusted
    # CA, from a key file or demo-only (public, like the keys above): the
    # signing key of the interop tests (SHA-256/384 of a phrase), the CA of
    # tests/portable_ecc/cert_fixtures.py (its private key is the SHA-256 of
    # "dlms_micro test CA": anyone can issue certificates under it) and no
    # client key: a head-end becomes known by importing its certificate
    # (Security setup import_certificate). Local constants: kept out of
    # this module's globals (the boards' heap after boot).
    from dlms_micro.security import sha2
    from dlms_micro_mp import certstore

    demo_ca = bytes.fromhex(
        "3082013f3081e5a003020102020101300a06082a8648ce3d040302301d311b301906035504030c12646c6d735f6d6963"
        "726f2074657374204341301e170d3235303130313030303030305a170d3430303130313030303030305a301d311b3019"
        "06035504030c12646c6d735f6d6963726f20746573742043413059301306072a8648ce3d020106082a8648ce3d030107"
        "034200048928dda9639107527ef2df1ef310ac3decd9c456032bdbfb489f8abb810dcdf8a462f43121a7a5c82234e2e3"
        "e002584c28d76386f3e13274aa81d0ea85121773a316301430120603551d130101ff040830060101ff020100300a0608"
        "2a8648ce3d04030203490030460221009039c9c28e46ce1e0dde557e0da971112aba156402e4f466d69469d555d59024"
        "022100cb95e3889b7dda6daf73211329d490bef07c1cba380d7f8ac3280dcfa7c3681b"
    )
    for s in certstore.suites(defn):
        if keys == "demo":
            d = sha2.digest("sha256" if s == 1 else "sha384", b"dlms_micro test meter suite %d" % s)
            certstore.provision(store, s, d, None, demo_ca)
        else:
            sk, clients, ca = certstore.read_key_file(keys)
            certstore.provision(store, s, sk.get(s), clients.get(s), ca)


def hdlc_link(cfg):
    # An HDLC link as board.build makes one per UART channel: the meter
    # definition's addresses and link parameters, the board's buffer size.
    return _board.hdlc_link(_board.meter_definition(cfg), cfg)


def _quiet(msg):
    pass


def _heap():
    gc.collect()
    return gc.mem_alloc(), gc.mem_free()


# Heap that must stay free after a new TCP connection's channel is made
# (dlms_micro_mp.tcp): room for the requests of the connections open.
MIN_FREE = 6 * 1024


def _heap_log(inner, every_ms=500):
    # --heap-log: the heap in use and free after a collection, printed every
    # every_ms while the meter serves (the figures under load)
    import time

    at = [None]

    def service(now):
        inner(now)
        if at[0] is None or time.ticks_diff(now, at[0]) >= every_ms:
            at[0] = now
            used, free = _heap()
            print("dlms_micro: heap used=%d free=%d" % (used, free))

    return service


class Dev:
    # the unix firmware's stand-ins of --pins and --load (one name in this
    # module's globals: the gateway's heap is counted to the byte)
    @staticmethod
    def load(app, watts, inner):
        # --load: watts while the supply is on, counted once a second in whole
        # Wh (the fraction carried)
        import time

        from dlms_micro.cosem import disconnect
        from dlms_micro_mp import apps

        dcs = [e for e in app.meter.table if e[0] == 70]
        st = {"at": None, "mws": 0}

        def service(now):
            inner(now)
            if st["at"] is None:
                st["at"] = now
                return
            dt = time.ticks_diff(now, st["at"])
            if dt < 1000:
                return
            st["at"] = now
            if dcs and not disconnect.connected(app.meter, dcs[0]):
                return
            st["mws"] += watts * dt  # milliwatt-seconds: W * ms
            wh = st["mws"] // 3600000
            if wh:
                st["mws"] -= wh * 3600000
                apps.add_energy(app, wh)

        return service


    @staticmethod
    def pins(directory, relay_cfg):
        # --pins: a machine.Pin whose outputs are recorded in DIRECTORY/pins.log
        # and whose inputs read DIRECTORY/in<PIN>, else the relay model (the
        # board file's "relay": the feedback input follows the contacts);
        # DIRECTORY None: the model only
        import os

        r = relay_cfg[0] if isinstance(relay_cfg, list) else (relay_cfg or {})
        model = {"contacts": 1}  # closed at delivery
        log_path = None if directory is None else directory + "/pins.log"

        class FilePin:
            OUT = 1
            IN = 0
            PULL_UP = 2
            PULL_DOWN = 3
            IRQ_RISING = 1
            IRQ_FALLING = 2

            def __init__(self, pin, mode=None, pull=None, value=None):
                self.pin = pin
                self.level = 0
                if value is not None:
                    self.value(value)

            def value(self, v=None):
                if v is None:
                    try:
                        if directory is not None:
                            with open(directory + "/in%d" % self.pin) as f:
                                return 1 if f.read().strip() == "1" else 0
                    except OSError:
                        pass
                    if self.pin == r.get("feedback"):
                        return model["contacts"] ^ (1 if r.get("feedback_active_low") else 0)
                    if self.pin == r.get("button"):
                        return 1 if r.get("button_active_low") else 0  # not pressed
                    return self.level
                v = 1 if v else 0
                self.level = v
                on = v ^ (1 if r.get("active_low") else 0)
                if on and self.pin == r.get("close_pin"):
                    model["contacts"] = 1
                elif on and self.pin == r.get("open_pin"):
                    model["contacts"] = 0
                elif self.pin == r.get("pin"):
                    model["contacts"] = on
                if log_path is None:
                    return None
                with open(log_path, "a") as f:
                    f.write("%d %d\n" % (self.pin, v))
                return None

            def irq(self, *a, **kw):
                pass

        try:
            if directory is not None:
                os.mkdir(directory)
        except OSError:
            pass
        return FilePin


def _arg(argv, key, default):
    if key in argv:
        return argv[argv.index(key) + 1]
    return default


def unix(argv=None):
    import time

    from dlms_micro.link.wrapper import WrapperServer
    from dlms_micro.server import Channel
    from dlms_micro_mp.loop import Log, Loop
    from dlms_micro_mp.tcp import TcpPort

    argv = sys.argv if argv is None else argv
    name = _arg(argv, "--board", None)
    host = _arg(argv, "--host", "127.0.0.1")
    wport = _arg(argv, "--port", "4059")
    hport = _arg(argv, "--hdlc-port", "4060")
    data = _arg(argv, "--data", None)
    module = _arg(argv, "--meter", None)
    keys = _arg(argv, "--keys", "demo")
    log = _quiet if "--quiet" in argv else Log()
    storage = None
    if data:
        from dlms_micro_mp.storage import FlashStorage

        storage = FlashStorage(data)
    board_cfg = dlms_board_def.load(name or dlms_board_def.NAMES[0])
    if board_cfg.get("sources"):
        idle_sources()
    pins = _arg(argv, "--pins", None)
    pin_class = None
    if pins:
        pin_class = Dev.pins(pins, board_cfg.get("relay"))
    del board_cfg  # (not kept while serving)
    try:
        app, cfg = make_meter(name, storage, wall_clock=lambda: int(time.time()), meter_module=module, keys=keys,
                              log=log, pin_class=pin_class)
    except (OSError, ValueError) as e:  # a key file that cannot be read or is not one
        print("dlms_micro: --keys %s: %s" % (keys, e))
        sys.exit(2)
    meter = app.meter
    meter.log = log
    max_apdu = cfg.get("hdlc", {}).get("max_apdu", 512)
    import select

    poller = select.poll()
    ports = []
    # A gateway (several logical devices): every device over the TCP
    # wrapper and over HDLC over TCP, a connection bound to the device its
    # first message names (dlms_micro_mp.gateway_tcp; a Router over all
    # three channels made at once, ~15 KB a connection, does not fit
    # beside the board's own). --first-device: logical device 1 only.

    def wrapper_channel():
        return Channel(meter, WrapperServer(max_apdu=max_apdu))

    def hdlc_channel():
        return Channel(meter, hdlc_link(cfg))

    if len(app.meters) > 1 and "--first-device" not in argv:
        factory = []  # made at the first connection: the boot's heap stays as it was

        def _bound(i):
            if not factory:
                from dlms_micro_mp import gateway_tcp

                defn = _board.meter_definition(cfg)
                factory.append(gateway_tcp.wrapper_factory(app.meters, max_apdu, log, MIN_FREE))
                factory.append(gateway_tcp.hdlc_factory(app.meters, lambda ld: _board.hdlc_link(defn, cfg, ld),
                                                        log, MIN_FREE))
            return factory[i]()

        def wrapper_channel():
            return _bound(0)

        def hdlc_channel():
            return _bound(1)

    if wport != "off":
        ports.append(TcpPort("wrapper", host, int(wport), wrapper_channel, log=log, poller=poller, min_free=MIN_FREE))
    if hport != "off":
        ports.append(TcpPort("hdlc", host, int(hport), hdlc_channel, log=log, poller=poller, min_free=MIN_FREE))
    if any(e[0] == 40 for e in meter.table):
        # Push setups: DataNotifications over TCP to the destination the
        # management association sets (dlms_micro_mp.push)
        from dlms_micro_mp.push import PushPort

        ports.append(PushPort(meter, log=log))
    idle = None
    for p in ports:
        if idle is None and hasattr(p, "idle"):
            idle = p.idle
    service = app.loop.service
    load = _arg(argv, "--load", None)
    if load:
        service = Dev.load(app, int(load), service)
    if "--heap-log" in argv:
        service = _heap_log(service)
    loop = Loop(tuple(ports), idle=idle, service=service)
    used, free = _heap()
    from dlms_micro_mp import keyring

    print("dlms_micro: ready board=%s wrapper=%s hdlc=%s heap_used=%d heap_free=%d keys=%s"
          % (name or dlms_board_def.NAMES[0], wport, hport, used, free, keyring.status.replace(" ", "-")))
    if "--boot-only" in argv:
        return  # the build's heap check: the figures, then exit
    loop.run()


class _IdleHw:
    # machine.UART and machine.Pin for a board's sources on the unix port,
    # which has neither: a UART that never receives, a pin that never moves.
    # The meter boots and serves; its source values stay null-data (never
    # read), as on a board whose meter is not yet wired.
    OUT = 1
    IN = 0
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, *a, **kw):
        pass

    def init(self, *a, **kw):
        pass

    def value(self, v=None):
        return 0

    def irq(self, *a, **kw):
        pass

    def any(self):
        return 0

    def readinto(self, buf, n=None):
        return None

    def write(self, b):
        return len(b)

    def flush(self):
        pass

    def txdone(self):
        return True


def idle_sources():
    # a machine module with the unix port's members plus _IdleHw as UART and Pin
    import machine

    class M:
        pass

    m = M()
    for k in dir(machine):
        if not k.startswith("__"):
            setattr(m, k, getattr(machine, k))
    m.UART = m.Pin = _IdleHw
    sys.modules["machine"] = m
    _board.machine = m


class StdioUart:
    # The REPL UART as a machine.UART for dlms_micro_mp.loop.UartPort (the
    # qemu port has no UART class): any() polls stdin, readinto() takes what
    # was polled, write() goes to stdout unbuffered.
    def __init__(self):
        import select

        self.inp = sys.stdin.buffer
        self.out = sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(sys.stdin, select.POLLIN)

    def any(self):
        return 1 if self.poller.poll(0) else 0

    def readinto(self, buf, n):
        return self.inp.readinto(buf, 1)

    def write(self, data):
        return self.out.write(data)

    def flush(self):
        pass

    def txdone(self):
        return True


def qemu(name=None, meter_module=None, seed=None, until_release=False):
    # meter_module: as make_meter's (fw_secure_meter: the secured meter);
    # seed: 32+ bytes from the host's os.urandom for the meter's random
    # source (this machine has no RNG: without a seed no HLS challenge can be
    # made, and HLS associations are refused); until_release N: return once
    # N associations have been made and released (benchmarks), with the
    # meter's busy time in each (virtual microseconds; -icount shift=0:
    # thousands of instructions) and the heap: ([busy], used, free).
    import micropython

    from dlms_micro.server import Channel
    from dlms_micro_mp.loop import Loop, UartPort

    app, cfg = make_meter(name, None, wall_clock=_virtual_clock(), meter_module=meter_module)
    if seed is not None:
        from dlms_micro_mp import certstore

        rnd = certstore.HmacDrbg(seed)
        for m in app.meters:
            if m.random_bytes is None:
                m.random_bytes = rnd
    port = UartPort("uart", StdioUart(), Channel(app.meter, hdlc_link(cfg)), rx_size=1, log=_quiet)
    loop = Loop((port,), service=app.loop.service)
    micropython.kbd_intr(-1)  # 0x03 is data on this line
    used, free = _heap()
    print("dlms_micro: ready hdlc heap_used=%d heap_free=%d" % (used, free))
    if not until_release:
        loop.run()
    import time

    ch = port.channel
    busy = [0]

    def timed(fn):
        def call(*a):
            t = time.ticks_us()
            r = fn(*a)
            busy[0] += time.ticks_diff(time.ticks_us(), t)
            return r

        return call

    ch.feed = timed(ch.feed)
    ch.next_event = timed(ch.next_event)
    seen = False
    per = []  # busy time of each association, from the end of the one before
    while len(per) < until_release:
        loop.step(time.ticks_ms())
        if loop.associated():
            seen = True
        elif seen:
            seen = False
            per.append(busy[0] - sum(per))
    time.sleep_ms(200)  # the last frames out, the line quiet
    used, free = _heap()
    micropython.kbd_intr(3)
    return per, used, free


def _virtual_clock(start=1767225600):  # 2026-01-01 00:00 UTC
    import time

    t0 = time.ticks_ms()

    def now():
        return start + time.ticks_diff(time.ticks_ms(), t0) // 1000

    return now


if __name__ == "__main__":
    unix()
