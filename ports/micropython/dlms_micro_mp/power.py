# Light sleep between frames and the watchdog, for a battery board (the
# board file's "sleep": "light"; board/README.md lists the keys).
#
#   pm = power.from_board(cfg, ports, meter, storage, wdt, log)
#   loop = Loop(ports, wdt=wdt, idle=pm)   # pm(loop, now) after an idle pass
#
# When no session is open and no byte is pending, the loop's idle hook puts
# the chip into machine.lightsleep(ms), ms bounded by the next scheduled work
# (the next load profile capture, the storage's next lazy write, a port's
# due_ms(now)), by the watchdog (the sleep plus the step after it stay
# inside its timeout) and, with sampled wake, by the poll period. It stays
# awake while a byte is pending, while any channel has an HDLC link up, an
# association open or an IEC 62056-21 sign-on under way (until the link's
# inactivity timeout ends it), and for linger_ms after the last byte.
#
# Waking on the optical head (what MicroPython v1.27.0's esp32 port offers:
# machine.lightsleep arms the timer, ext0/ext1 (RTC GPIOs, only on chips
# with them: ESP32, -S2, -S3), touch and ULP; ESP32-C3 has no ext0/ext1, and
# neither GPIO nor UART wake is reachable from Python there):
#   "pin"     the RX line's start bit wakes the chip: Pin(rx).irq(trigger=
#             Pin.WAKE_LOW, wake=machine.SLEEP), ext0 on an RTC GPIO (ESP32)
#   "sample"  a timer wake every poll_ms; the RX pin is read a few times and
#             a line at the wake level (an optical head sending NULs holds
#             it low 9 bit times of 10) keeps the chip awake (ESP32-C3)
# The UART is clock-gated in light sleep: bytes arriving while asleep are
# lost, and so is the character whose start bit woke the chip ("pin"). The
# IEC 62056-21 wake-up of battery devices covers it: the hand-held unit
# sends NULs at 300 Bd for 2.1-2.3 s, waits 1.5-1.7 s, then signs on; the
# NULs wake the meter (the sign-on counts them as noise), the "/?!" comes
# while it lingers. A head-end that signs on at once loses the "/" and
# retries (no identification within its timeout); a lost HDLC SNRM is
# retried by the client's link timeout the same way.
#
# The watchdog (machine.WDT) is fed by Loop.step and here just before a
# sleep, both from the main loop, never from an interrupt: a pass that
# hangs is not fed, and the chip resets. Its timeout must exceed the
# longest pass (tools/firmware/bench_fw.py prints the longest GET and
# association); the sleep is at most timeout - guard_ms.

import time

from dlms_micro.link.hdlc import NDM
from dlms_micro.link.iec21 import IDLE as SIGNON_IDLE
from dlms_micro.ticks import ticks_diff

WAKE_PIN = "pin"
WAKE_SAMPLE = "sample"

try:
    _ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
    _sleep_us = time.sleep_us  # type: ignore[attr-defined]
except AttributeError:  # CPython
    def _ticks_ms():
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

    def _sleep_us(us):
        time.sleep(us / 1000000)


def _nap_ms(ms):
    _sleep_us(ms * 1000)


def session_open(port):
    # True while this port must stay awake: an HDLC link up, an association
    # open, or an IEC 62056-21 sign-on past its idle state.
    ch = getattr(port, "channel", None)  # a metering source's port has none
    link = getattr(ch, "link", None)
    if link is not None and getattr(link, "state", NDM) != NDM:
        return True
    assoc = getattr(ch, "assoc", None)
    if assoc is not None and assoc.status != 0:
        return True
    so = getattr(port, "signon", None)
    return so is not None and so.state != SIGNON_IDLE


def pending(port):
    # Bytes waiting in the port's UART (a port without one: none).
    uart = getattr(port, "uart", None)
    return uart is not None and uart.any() > 0


def profile_due_ms(meter, utc):
    # ms until the next load profile capture boundary (None: no profile
    # with a capture period, or no wall clock). At least 1,000: the meter's
    # time is whole seconds, so the boundary is passed after waking.
    if utc is None:
        return None
    best = None
    for e in meter.table:
        if e[0] != 7 or e[4] < 0:
            continue
        period = getattr(meter.state[e[4]], "period", 0)
        if not period:
            continue
        ms = ((utc // period + 1) * period - utc) * 1000
        if best is None or ms < best:
            best = ms
    return best


class Power:
    # The idle hook. sleep(ms): machine.lightsleep; rx_pin: the optical
    # head's RX as a machine.Pin (value() reads the line) or None; wake:
    # WAKE_PIN or WAKE_SAMPLE; wake_level: the RX level of a start bit (0).
    # meter, storage: the scheduled work to wake for; wdt, wdt_ms: the
    # watchdog and its timeout; nap(ms): the short wait when staying awake.
    def __init__(self, ports, sleep, rx_pin=None, wake=WAKE_SAMPLE, wake_level=0, meter=None, storage=None,
                 wdt=None, wdt_ms=0, guard_ms=2000, poll_ms=1000, linger_ms=4000, max_sleep_ms=60000,
                 min_sleep_ms=20, nap=None, ticks_ms=None, sleep_us=None, log=None, samples=3, sample_us=1500,
                 wake_reason=None, pin_wake=None):
        if wake not in (WAKE_PIN, WAKE_SAMPLE):
            raise ValueError("sleep wake %r: \"pin\" or \"sample\"" % (wake,))
        if wdt_ms and wdt_ms - guard_ms < min_sleep_ms:
            raise ValueError("wdt_ms %d leaves no sleep after its guard of %d ms" % (wdt_ms, guard_ms))
        self.ports = ports
        self.sleep = sleep
        self.rx_pin = rx_pin
        self.wake = wake
        self.wake_level = wake_level
        self.meter = meter
        self.storage = storage
        self.wdt = wdt
        self.wdt_ms = wdt_ms
        self.guard_ms = guard_ms
        self.poll_ms = poll_ms
        self.linger_ms = linger_ms
        self.max_sleep_ms = max_sleep_ms
        self.min_sleep_ms = min_sleep_ms
        self.nap = nap
        self.ticks_ms = ticks_ms  # None: the loop's
        self.sleep_us = sleep_us if sleep_us is not None else _sleep_us
        self.log = log
        self.samples = samples
        self.sample_us = sample_us
        # machine.wake_reason and machine.PIN_WAKE (ext0) where the port has
        # them and the wake is the pin's; else the sleep's length tells
        self.wake_reason = wake_reason if wake == WAKE_PIN and pin_wake is not None else None
        self.pin_wake = pin_wake
        self._rx = -1  # bytes received by all ports at the last look
        self._last_rx = None  # tick of the last byte (or line activity)
        # figures
        self.sleeps = 0
        self.slept_ms = 0
        self.wakes_on_line = 0  # wakes that found the optical head active
        self.failures = 0  # lightsleep calls that raised
        self.why = ""  # what the last decision was bounded by (a constant)
        if self.log is not None:
            self.log("power: light sleep, wake %s, poll %d ms, linger %d ms, watchdog %d ms"
                     % (wake, poll_ms, linger_ms, wdt_ms))

    def _received(self, now):
        n = 0
        for p in self.ports:
            n += getattr(p, "rx_bytes", 0)
        if n != self._rx:
            if self._rx >= 0:
                self._last_rx = now
            self._rx = n

    def _meter_utc(self):
        if self.meter is None:
            return None
        from dlms_micro.cosem import clock

        return clock.now(self.meter)

    def decide(self, now):
        # ms to sleep now, 0 to stay awake; self.why says what bounded it.
        self._received(now)
        for p in self.ports:
            if pending(p):
                self.why = "pending"
                return 0
            if session_open(p):
                self.why = "session"
                return 0
        if self._last_rx is not None and ticks_diff(now, self._last_rx) < self.linger_ms:
            self.why = "linger"
            return 0
        ms = self.max_sleep_ms
        why = "max"
        if self.wake == WAKE_SAMPLE and self.poll_ms < ms:
            ms, why = self.poll_ms, "poll"
        if self.wdt_ms and self.wdt_ms - self.guard_ms < ms:
            ms, why = self.wdt_ms - self.guard_ms, "watchdog"
        if self.meter is not None:
            d = profile_due_ms(self.meter, self._meter_utc())
            if d is not None and d < ms:
                ms, why = d, "profile"
        st = self.storage
        if st is not None and hasattr(st, "due_ms"):
            d = st.due_ms(now)
            if d is not None and d < ms:
                ms, why = d, "storage"
        for p in self.ports:
            if hasattr(p, "due_ms"):
                d = p.due_ms(now)
                if d is not None and d < ms:
                    ms, why = d, "port"
        if ms < self.min_sleep_ms:
            self.why = "due"
            return 0
        self.why = why
        return ms

    def line_active(self):
        # The RX line read samples times, sample_us apart: True if any read
        # is at the wake level (a start bit, a NUL's long low).
        pin = self.rx_pin
        if pin is None:
            return False
        for i in range(self.samples):
            if pin.value() == self.wake_level:
                return True
            if i + 1 < self.samples:
                self.sleep_us(self.sample_us)
        return False

    def __call__(self, loop, now):
        ms = self.decide(now)
        if not ms:
            if self.nap is not None:
                self.nap(1)
            return
        if self.wdt is not None:
            self.wdt.feed()
        ticks = self.ticks_ms or (loop.ticks_ms if loop is not None else _ticks_ms)
        t0 = ticks()
        try:
            self.sleep(ms)
        except Exception as e:  # a wake source the port refuses: stay up
            self.failures += 1
            if self.log is not None:
                self.log("power: light sleep failed (%s: %s), napping instead" % (type(e).__name__, e))
            if self.nap is not None:
                self.nap(1)
            return
        t1 = ticks()
        slept = ticks_diff(t1, t0)
        self.sleeps += 1
        self.slept_ms += slept
        # Woken by the RX start bit (the port says so, or the sleep ended
        # well before its time: the RTC timer's error stays far below an
        # eighth) or the line is busy now: listen.
        if self.wake_reason is not None:
            early = self.wake_reason() == self.pin_wake
        else:
            early = slept < ms - ms // 8 - 2
        if early or self.line_active():
            self.wakes_on_line += 1
            self._last_rx = t1


def from_board(cfg, ports, meter=None, storage=None, wdt=None, log=None, machine=None, sleep=None, nap=None,
               ticks_ms=None, sleep_us=None):
    # The Power of a board file with "sleep": "light": the IR channel's RX
    # pin (or "wake_pin") as the wake source, cfg["wake"] ("sample" unless
    # "pin"), "wake_level", "wake_samples", "wake_sample_us", "poll_ms",
    # "linger_ms", "max_sleep_ms", "wdt_ms", "wdt_guard_ms".
    if machine is None:
        import machine
    rx = cfg.get("wake_pin")
    if rx is None:
        for c in cfg.get("channels", ()):
            if c.get("kind") == "ir":
                rx = c.get("rx")
                break
    wake = cfg.get("wake", WAKE_SAMPLE)
    level = cfg.get("wake_level", 0)
    pin = None
    if rx is not None:
        pin = machine.Pin(rx)  # no mode: the UART keeps the pin
        if wake == WAKE_PIN:
            try:
                pin.irq(trigger=machine.Pin.WAKE_LOW if level == 0 else machine.Pin.WAKE_HIGH, wake=machine.SLEEP)
            except (AttributeError, ValueError) as e:  # no ext0 (ESP32-C3), not an RTC GPIO
                if log is not None:
                    log("power: GPIO %d cannot wake from light sleep (%s): sampled wake" % (rx, e))
                wake = WAKE_SAMPLE
    elif log is not None:
        log("power: no IR channel and no wake_pin: wakes by timer only")
    # A board with metering sources (S0 pulses on a GPIO interrupt, which
    # light sleep would miss) sleeps at most idle_ms, unless told otherwise.
    most = cfg.get("max_sleep_ms")
    if most is None:
        most = cfg.get("idle_ms", 20) if cfg.get("sources") else 60000
    if sleep is None:
        sleep = getattr(machine, "lightsleep", None)
        if sleep is None:  # a port without it (unix): the time passes awake
            if log is not None:
                log("power: no machine.lightsleep here: the idle time is spent in time.sleep_ms")
            sleep = nap if nap is not None else _nap_ms
    return Power(ports, sleep, rx_pin=pin, wake=wake, wake_level=level, meter=meter, storage=storage, wdt=wdt,
                 wdt_ms=cfg.get("wdt_ms", 0) if wdt else 0, guard_ms=cfg.get("wdt_guard_ms", 2000),
                 poll_ms=cfg.get("poll_ms", 1000), linger_ms=cfg.get("linger_ms", 4000), max_sleep_ms=most,
                 min_sleep_ms=min(20, most), nap=nap, ticks_ms=ticks_ms, sleep_us=sleep_us, log=log,
                 samples=cfg.get("wake_samples", 3), sample_us=cfg.get("wake_sample_us", 1500),
                 wake_reason=getattr(machine, "wake_reason", None), pin_wake=getattr(machine, "PIN_WAKE", None))
