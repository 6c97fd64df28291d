# The battery board's light sleep decision (ports/micropython/dlms_micro_mp/
# power.py) with stand-in ports, pins and clock: it sleeps only when idle,
# never with a byte pending or a session open, lingers after the last byte,
# sleeps no longer than the next profile capture, the storage's next write,
# the poll period or the watchdog allows, feeds the watchdog before it
# sleeps, and listens after a wake that found the optical head busy. Runs
# under pytest and real MicroPython.

import sys

try:
    import dlms_micro_mp  # noqa: F401
except ImportError:  # CPython from the repo: the port is not installed
    _here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    sys.path.append(_here + "/../../ports/micropython")

from dlms_micro.link.hdlc import NDM, NRM  # noqa: E402
from dlms_micro.link.iec21 import IDLE, REQUEST  # noqa: E402
from dlms_micro_mp import power  # noqa: E402
from dlms_micro_mp.storage import FlashStorage  # noqa: E402


class _Clock:
    def __init__(self):
        self.ms = 1000
        self.slept = []  # each sleep's requested ms
        self.wake_after = None  # the optical head wakes the chip after this many ms

    def ticks_ms(self):
        return self.ms

    def sleep(self, ms):
        self.slept.append(ms)
        if self.wake_after is not None and self.wake_after < ms:
            ms = self.wake_after
        self.ms += ms

    def sleep_us(self, us):
        self.ms += us // 1000


class _Uart:
    def __init__(self):
        self.n = 0

    def any(self):
        return self.n


class _Link:
    def __init__(self):
        self.state = NDM


class _Assoc:
    def __init__(self):
        self.status = 0


class _Channel:
    def __init__(self):
        self.link = _Link()
        self.assoc = _Assoc()


class _SignOn:
    def __init__(self):
        self.state = IDLE


class _Port:
    def __init__(self, signon=False):
        self.uart = _Uart()
        self.channel = _Channel()
        self.rx_bytes = 0
        if signon:
            self.signon = _SignOn()


class _Pin:
    def __init__(self, levels=()):
        self.levels = list(levels)  # read in turn; then idle (1)
        self.reads = 0

    def value(self):
        self.reads += 1
        return self.levels.pop(0) if self.levels else 1


class _Wdt:
    def __init__(self, clock):
        self.clock = clock
        self.fed_at = []

    def feed(self):
        self.fed_at.append(self.clock.ms)


def _power(port=None, **kw):
    c = _Clock()
    p = port or _Port(signon=True)
    kw.setdefault("ticks_ms", c.ticks_ms)
    kw.setdefault("sleep_us", c.sleep_us)
    pm = power.Power((p,), c.sleep, **kw)
    return pm, p, c


def test_power_idle_sleeps_the_poll_period():
    pm, p, c = _power(rx_pin=_Pin(), poll_ms=1000)
    assert pm.decide(c.ms) == 1000 and pm.why == "poll"
    pm(None, c.ms)
    assert c.slept == [1000] and pm.sleeps == 1 and pm.slept_ms == 1000
    assert pm.wakes_on_line == 0


def test_power_pin_wake_sleeps_until_the_watchdog_bound():
    pm, p, c = _power(wake=power.WAKE_PIN, wdt=_Wdt(None), wdt_ms=10000, guard_ms=2000)
    assert pm.decide(c.ms) == 8000 and pm.why == "watchdog"
    pm, p, c = _power(wake=power.WAKE_PIN, max_sleep_ms=30000)
    assert pm.decide(c.ms) == 30000 and pm.why == "max"


def test_power_stays_awake_with_a_byte_pending():
    pm, p, c = _power()
    p.uart.n = 1
    assert pm.decide(c.ms) == 0 and pm.why == "pending"
    naps = []
    pm.nap = naps.append
    pm(None, c.ms)
    assert c.slept == [] and naps == [1]


def test_power_stays_awake_through_a_session():
    pm, p, c = _power()
    p.signon.state = REQUEST  # a sign-on under way
    assert pm.decide(c.ms) == 0 and pm.why == "session"
    p.signon.state = IDLE
    p.channel.link.state = NRM  # the HDLC link up, no association yet
    assert pm.decide(c.ms) == 0 and pm.why == "session"
    p.channel.link.state = NDM
    p.channel.assoc.status = 1
    assert pm.decide(c.ms) == 0
    p.channel.assoc.status = 0
    assert pm.decide(c.ms) > 0


def test_power_lingers_after_the_last_byte():
    pm, p, c = _power(linger_ms=4000)
    assert pm.decide(c.ms) > 0  # first look: the counters' baseline
    p.rx_bytes += 5
    t = c.ms
    assert pm.decide(t) == 0 and pm.why == "linger"
    assert pm.decide(t + 3999) == 0
    assert pm.decide(t + 4000) > 0


class _Pb:
    def __init__(self, period):
        self.period = period


class _M:
    # a meter table's profiles (class 7, state slot 4th) and their periods
    def __init__(self, periods):
        self.table = ((1, b"", 0, 0, 0),) + tuple((7, b"", 0, 0, i + 1) for i in range(len(periods))) + (
            (7, b"", 0, 0, -1),)
        self.state = [0] + [_Pb(t) for t in periods]


def test_power_sleep_ends_at_the_next_profile_capture():
    pm, p, c = _power(wake=power.WAKE_PIN, max_sleep_ms=3600000)
    pm.meter = _M((900,))
    pm._meter_utc = lambda: 900 * 1000 + 895  # 5 s before a quarter hour
    assert pm.decide(c.ms) == 5000 and pm.why == "profile"
    pm._meter_utc = lambda: 900 * 1000 + 899
    assert pm.decide(c.ms) == 1000  # never below a second: the time is whole seconds


def test_power_profile_due_from_the_meter_table():
    assert power.profile_due_ms(_M((900, 60)), 125) == 55000  # the 60 s profile first
    assert power.profile_due_ms(_M((900, 60)), None) is None
    assert power.profile_due_ms(_M((900, 0)), 125) == 775000
    assert power.profile_due_ms(_M(()), 125) is None


def test_power_sleep_ends_at_the_storage_write():
    import os

    d = ("/tmp" if sys.implementation.name != "micropython" else "") + "/dlms_mp_power"
    try:
        for f in os.listdir(d):
            os.remove(d + "/" + f)
    except OSError:
        pass
    st = FlashStorage(d, min_interval_ms=60000)
    assert st.due_ms(0) is None
    st.put_lazy("energy", b"\x01")
    assert st.due_ms(0) == 0  # never written: at once
    st.service(100)
    st.put_lazy("energy", b"\x02")
    assert st.due_ms(100) == 60000 and st.due_ms(50100) == 10000 and st.due_ms(70000) == 0
    pm, p, c = _power(wake=power.WAKE_PIN, storage=st, max_sleep_ms=3600000)
    assert pm.decide(50100) == 10000 and pm.why == "storage"
    assert pm.decide(60090) == 0 and pm.why == "due"  # under min_sleep_ms: the write first


def test_power_feeds_the_watchdog_just_before_sleeping():
    c = _Clock()
    w = _Wdt(c)
    p = _Port()
    pm = power.Power((p,), c.sleep, wdt=w, wdt_ms=10000, ticks_ms=c.ticks_ms, sleep_us=c.sleep_us)
    pm(None, c.ms)
    assert w.fed_at == [1000] and c.slept == [1000]
    p.uart.n = 3
    pm(None, c.ms)  # awake: the loop feeds it, not the idle hook
    assert w.fed_at == [1000]


def test_power_early_wake_listens():
    pm, p, c = _power(wake=power.WAKE_PIN, max_sleep_ms=30000, linger_ms=4000)
    c.wake_after = 700  # the start bit of a NUL wakes the chip
    pm(None, c.ms)
    assert pm.wakes_on_line == 1 and c.ms == 1700
    assert pm.decide(c.ms) == 0 and pm.why == "linger"
    assert pm.decide(c.ms + 4000) > 0


def test_power_sampled_wake_listens_when_the_line_is_low():
    pin = _Pin([1, 0])  # the second read falls in a NUL's low
    pm, p, c = _power(rx_pin=pin, linger_ms=4000)
    pm(None, c.ms)
    assert pin.reads == 2 and pm.wakes_on_line == 1
    assert pm.decide(c.ms) == 0 and pm.why == "linger"
    quiet = _Pin()
    pm, p, c = _power(rx_pin=quiet, samples=3)
    pm(None, c.ms)
    assert quiet.reads == 3 and pm.wakes_on_line == 0 and pm.decide(c.ms) == 1000


def test_power_refuses_bad_settings():
    for kw in ({"wake": "uart"}, {"wdt_ms": 2000, "guard_ms": 2000}):
        try:
            _power(**kw)
        except ValueError:
            continue
        raise AssertionError("accepted %r" % (kw,))


class _Machine:
    # machine's Pin, SLEEP and lightsleep as from_board uses them
    SLEEP = 2

    class Pin:
        WAKE_LOW = 4
        WAKE_HIGH = 5
        fail = None  # the ValueError of a pin that cannot wake
        made = []

        def __init__(self, n):
            self.n = n
            self.irqs = []
            _Machine.Pin.made.append(self)

        def irq(self, trigger=0, wake=0):
            if _Machine.Pin.fail:
                raise ValueError(_Machine.Pin.fail)
            self.irqs.append((trigger, wake))

        def value(self):
            return 1

    def lightsleep(self, ms):
        pass


def test_power_from_board_wake_sources():
    cfg = {"channels": [{"name": "ir", "kind": "ir", "rx": 20}], "sleep": "light", "wake": "pin", "wdt_ms": 10000}
    lines = []
    m = _Machine()
    _Machine.Pin.made = []
    pm = power.from_board(cfg, (), wdt=_Wdt(None), log=lines.append, machine=m)
    pin = _Machine.Pin.made[0]
    assert pin.n == 20 and pin.irqs == [(_Machine.Pin.WAKE_LOW, _Machine.SLEEP)]
    assert pm.wake == power.WAKE_PIN and pm.wdt_ms == 10000 and pm.rx_pin is pin
    # ESP32-C3 (no ext0) or a pin that is no RTC GPIO: sampled, said once
    _Machine.Pin.fail = "invalid pin for wake"
    try:
        pm = power.from_board(cfg, (), log=lines.append, machine=m)
    finally:
        _Machine.Pin.fail = None
    assert pm.wake == power.WAKE_SAMPLE and pm.wdt_ms == 0
    assert [x for x in lines if "cannot wake" in x]


def test_power_from_board_without_lightsleep_naps():
    # the unix firmware's machine has no lightsleep: built all the same, the
    # idle time spent in the nap it is given, and said
    class _NoSleep:
        Pin = _Machine.Pin

    lines = []
    naps = []
    cfg = {"channels": [{"name": "ir", "kind": "ir", "rx": 20}], "sleep": "light"}
    pm = power.from_board(cfg, (), log=lines.append, machine=_NoSleep(), nap=naps.append)
    pm(None, 0)
    assert naps == [1000] and [x for x in lines if "no machine.lightsleep" in x]


def test_power_board_with_sources_sleeps_at_most_idle_ms():
    # an S0 retrofit counts pulses by a GPIO interrupt that light sleep
    # would miss: its sleeps stay as short as its idle_ms
    cfg = {"channels": [{"name": "ir", "kind": "ir", "rx": 20}], "sleep": "light", "idle_ms": 20,
           "sources": {"s0": {"pin": 5}}}
    c = _Clock()
    pm = power.from_board(cfg, (_Port(),), machine=_Machine(), sleep=c.sleep, ticks_ms=c.ticks_ms,
                          sleep_us=c.sleep_us)
    assert pm.decide(c.ms) == 20 and pm.why == "max"
    cfg["max_sleep_ms"] = 500
    pm = power.from_board(cfg, (_Port(),), machine=_Machine(), sleep=c.sleep, ticks_ms=c.ticks_ms,
                          sleep_us=c.sleep_us)
    assert pm.decide(c.ms) == 500


def test_power_ports_without_a_channel():
    # a metering source's port (S0 pin, Modbus UART) has no channel: it
    # keeps the board awake only with bytes pending in its UART
    class _Source:
        def __init__(self):
            self.uart = _Uart()

    src = _Source()
    c = _Clock()
    pm = power.Power((_Port(), src, object()), c.sleep, ticks_ms=c.ticks_ms, sleep_us=c.sleep_us)
    assert pm.decide(c.ms) == 1000
    src.uart.n = 2
    assert pm.decide(c.ms) == 0 and pm.why == "pending"



def test_power_sleep_that_raises_is_logged_and_the_loop_goes_on():
    # e.g. esp_sleep_enable_*_wakeup() failed: the board naps instead
    def broken(ms):
        raise RuntimeError("wakeup failed")

    lines = []
    naps = []
    c = _Clock()
    pm = power.Power((_Port(),), broken, ticks_ms=c.ticks_ms, sleep_us=c.sleep_us, log=lines.append,
                     nap=naps.append)
    pm(None, c.ms)
    pm(None, c.ms)
    assert pm.failures == 2 and pm.sleeps == 0 and naps == [1, 1]
    assert [x for x in lines if "light sleep failed (RuntimeError" in x]


def test_power_early_wake_is_the_ports_wake_reason_where_it_has_one():
    # machine.wake_reason() == machine.PIN_WAKE: the start bit woke it, even
    # when the timer would have ended the sleep at that moment too; a timer
    # wake a little short (the RTC clock's error) is not taken for one
    reason = [4]  # TIMER_WAKE
    pm, p, c = _power(wake=power.WAKE_PIN, max_sleep_ms=30000, wake_reason=lambda: reason[0], pin_wake=2)
    c.wake_after = 29990
    pm(None, c.ms)
    assert pm.wakes_on_line == 0
    reason[0] = 2
    pm(None, c.ms)
    assert pm.wakes_on_line == 1 and pm.why != "linger" and pm.decide(c.ms) == 0 and pm.why == "linger"
    # without a wake reason: 10 ms short of 30 s is the timer's error
    pm, p, c = _power(wake=power.WAKE_PIN, max_sleep_ms=30000)
    c.wake_after = 29990
    pm(None, c.ms)
    assert pm.wakes_on_line == 0
