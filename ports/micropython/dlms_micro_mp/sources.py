# The metering sources of a board (a retrofit module reads the meter beside
# it): the definition's "sources" (compiled into the meter module's SOURCES)
# get their hardware from the board file's "sources" object, by name:
#
#   "sources": {
#     "bus":  {"uart": 2, "tx": 17, "rx": 16, "de": 4, "de_setup_us": 100},
#     "head": {"uart": 1, "tx": 26, "rx": 27},           the IR head
#     "s0":   {"pin": 5, "pull": "up", "active_low": true}}
#
# A Modbus bus or a readout line is a UartSource: the UART polled by the
# main loop like a DLMS channel, the source's requests written with the
# RS-485 driver-enable timing of loop.UartPort (the same code: DE raised
# de_setup_us before the first byte, dropped once the last stop bit is out),
# EV_BAUD done with UART.init() once the output is out (IEC 62056-21 mode C:
# 300 Bd 7E1, then the agreed rate). An S0 input is a GPIO interrupt that
# only queues the edge's time and level in a ring allocated once; the loop
# hands the edges to the S0 state machine (debounce, count, persistence).
#
#   from dlms_micro_mp import sources
#   ports, bindings = sources.attach(cfg, defn, meters, storage, log)
#   loop = Loop(channel_ports + ports, ...)
#   loop.service = sources.Service(meters, bindings, loop.service)

from dlms_micro.meterdef import build as _build
from dlms_micro.meterdef import sources as _sources
from dlms_micro.ticks import ticks_diff
from dlms_micro_mp.loop import UartPort

try:
    import time

    _ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
except AttributeError:  # CPython, with the test double of machine
    def _ticks_ms():
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

_EV_NONE = 0
_EV_SEND = 1
_EV_BAUD = 6
_EV_DONE = 8
_PARITY = {"none": None, "even": 0, "odd": 1}


class _NoChannel:
    # UartPort wants a channel; a source port has none
    def set_log(self, fn):
        pass


class UartSource(UartPort):
    # A source (Modbus master, IEC 62056-21 readout) on a UART. on_done():
    # called when a poll ended (the bindings take the values).
    def __init__(self, name, uart, src, de=None, turnaround_us=0, de_setup_us=0, rx_size=64, log=None,
                 sleep_us=None, on_done=None):
        UartPort.__init__(self, name, uart, _NoChannel(), de, turnaround_us, de_setup_us, rx_size, log, sleep_us)
        self.src = src
        self.on_done = on_done
        self.polls = 0
        src.log = self.log

    def step(self, now):
        busy = False
        uart = self.uart
        src = self.src
        n = uart.any()
        if n:
            rx = self.rx
            if n > len(rx):
                n = len(rx)
            got = uart.readinto(rx, n)
            if got:
                self.rx_bytes += got
                src.feed(rx, 0, got, now)
                busy = True
        while True:
            ev = src.next_event(now)
            if ev == _EV_NONE:
                return busy
            busy = True
            if ev == _EV_SEND:
                self.transmit(src.tx_buf, src.tx_start, src.tx_end)
            elif ev == _EV_BAUD:
                uart.flush()  # the last byte out at the old rate
                bits = getattr(src, "data_bits", 8)
                uart.init(baudrate=src.baud, bits=bits, parity=0 if bits == 7 else None, stop=1)
            elif ev == _EV_DONE:
                self.polls += 1
                if self.on_done is not None:
                    self.on_done()


class S0Pin:
    # An S0 input on a GPIO: the interrupt queues (time, level) of each edge
    # in a ring of `ring` entries allocated once (a full ring drops edges,
    # counted); step() hands them to the S0 machine and ticks it.
    def __init__(self, name, pin, src, active_low=True, ring=64, ticks_ms=None, trigger=3):
        from array import array

        self.name = name
        self.pin = pin
        self.src = src
        self.active_low = active_low
        self._t = array("i", [0] * ring)
        self._lv = bytearray(ring)
        self._n = ring
        self._w = 0
        self._r = 0
        self.overflows = 0
        self._ticks = ticks_ms if ticks_ms is not None else _ticks_ms
        self.handler = self._irq  # the bound method, made once
        if hasattr(pin, "irq"):
            pin.irq(trigger=trigger, handler=self.handler)  # both edges

    def _irq(self, pin):
        # interrupt context: no allocation, no storage
        w = self._w
        nxt = w + 1
        if nxt == self._n:
            nxt = 0
        if nxt == self._r:
            self.overflows += 1
            return
        self._t[w] = self._ticks()
        self._lv[w] = self.pin.value()
        self._w = nxt

    def step(self, now):
        busy = False
        src = self.src
        low = self.active_low
        while self._r != self._w:
            r = self._r
            lv = self._lv[r]
            src.edge(1 - lv if low else lv, self._t[r])
            r += 1
            self._r = 0 if r == self._n else r
            busy = True
        src.tick(now)
        return busy


class Service:
    # The loop's periodic work for a meter with sources: once a second the
    # bindings copy the sources' values into the objects, the profile status
    # takes the sources' bits, the profiles of every logical device tick
    # (the status bits start over once a row took them); then the board's
    # own service (storage).
    def __init__(self, meters, bindings, base=None, tick_ms=1000):
        from dlms_micro.cosem import clock, profile

        self.meters = meters
        self.bindings = bindings
        self.base = base
        self.tick_ms = tick_ms
        self._at = None
        self._now = clock.now
        self._tick = profile.tick
        # per logical device: its profile-status slot, its profiles
        self.status_slots = []
        self.profiles = []
        defn = bindings.defn
        for d in range(len(meters)):
            slot = -1
            for i, what in defn.DEVICES[d][4]:
                if what == "profile-status":
                    slot = defn.DEVICES[d][2][i][4]
            self.status_slots.append(slot)
            # the periodic profiles (device 1's are also the board
            # service's: a second tick at the same time captures nothing)
            self.profiles.append(tuple(e for e in meters[d].table if e[0] == 7 and e[4] >= 0 and e[6][1]))

    def bind(self, now=None):
        if now is None:
            now = _ticks_ms()
        self.bindings.update(now, self._now(self.meters[0]))

    def __call__(self, now):
        if self._at is None or ticks_diff(now, self._at) >= self.tick_ms:
            self._at = now
            b = self.bindings
            self.bind(now)
            for d in range(len(self.meters)):
                s = self.status_slots[d]
                if s >= 0:
                    self.meters[d].state[s] = b.profile_status(d)
                m = self.meters[d]
                took = False
                if self.profiles[d]:
                    utc = self._now(m)
                    for e in self.profiles[d]:
                        if self._tick(m, e, utc):
                            took = True
                if took:
                    b.status_taken(d)
        if self.base is not None:
            self.base(now)


def attach(cfg, defn, meters, storage=None, log=None, sleep_us=None, open_uart=None):
    # The sources of defn over the board file's hardware (cfg["sources"]):
    # (ports for the loop, Bindings), or ((), None) without sources.
    srcs, bindings = _build.sources(defn, meters, storage, log)
    if bindings is None:
        return (), None
    import machine

    hw = cfg.get("sources", {})
    ports = []

    from dlms_micro.cosem import clock

    def bind():
        bindings.update(_ticks_ms(), clock.now(meters[0]))

    for i in range(len(srcs)):
        name, kind, _device, baud, parity = _sources.info(defn, i)
        h = hw.get(name)
        if h is None:
            raise ValueError("board %r: no hardware for source %r (board file \"sources\": {%r: {...}})"
                             % (cfg.get("name", "?"), name, name))
        src = srcs[i]
        if kind == "s0":
            pull = machine.Pin.PULL_UP if h.get("pull", "up") == "up" else None
            pin = machine.Pin(h["pin"], machine.Pin.IN, pull)
            both = getattr(machine.Pin, "IRQ_RISING", 1) | getattr(machine.Pin, "IRQ_FALLING", 2)
            ports.append(S0Pin(name, pin, src, h.get("active_low", True), h.get("ring", 64), trigger=both))
            continue
        bits = 7 if kind == "iec21-readout" else 8
        c = {"uart": h["uart"], "tx": h["tx"], "rx": h["rx"], "baud": baud, "rxbuf": h.get("rxbuf", 512)}
        uart = (open_uart or _open_uart)(c, bits, _PARITY.get(parity))
        de = None
        if h.get("de") is not None:
            de = machine.Pin(h["de"], machine.Pin.OUT, value=0)
        ports.append(UartSource(name, uart, src, de=de, turnaround_us=h.get("turnaround_us", 0),
                                de_setup_us=h.get("de_setup_us", 0), rx_size=h.get("rx_chunk", 64), log=log,
                                sleep_us=sleep_us, on_done=bind))
    return tuple(ports), bindings


def _open_uart(c, bits, parity):
    import machine

    return machine.UART(c["uart"], baudrate=c["baud"], bits=bits, parity=parity, stop=1, tx=c["tx"], rx=c["rx"],
                        timeout=0, rxbuf=c["rxbuf"])


def channel(defn, meters, link):
    # The Channel of one board channel: link(logical) makes the link of a
    # logical device; several devices: a Router over one Channel each
    from dlms_micro.server import Channel

    if len(meters) == 1:
        return Channel(meters[0], link(defn.DEVICES[0][0]))
    from dlms_micro.router import Router

    chans = []
    for d in range(len(meters)):
        chans.append(Channel(meters[d], link(defn.DEVICES[d][0])))
    return Router(chans, False)
