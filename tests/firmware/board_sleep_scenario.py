# Run by the unix firmware (build/firmware/unix32/micropython) for
# tests/firmware/test_board_sleep.py, against the frozen stack:
#
#   micropython board_sleep_scenario.py PORTABLE_DIR WAKE [hang] [nodisc]
#
# The ESP32-C3 battery board (board/boards/esp32c3_battery.json) built by
# the frozen dlms_micro_mp.board with stand-ins for machine: UART, Pin, WDT
# and lightsleep on a virtual clock (tests/portable/mp_machine.py). The real
# Loop.run() serves it. The optical head's client does the IEC 62056-21
# wake-up of a battery device (NULs at 300 Bd for 2.2 s, 1.6 s pause), signs
# on, switches to 9600 Bd, opens HDLC, associates, reads the energy import
# and disconnects; bytes it sends while the chip sleeps are lost, and so is
# the character whose start bit wakes it (WAKE "pin"); with "nodisc" it
# never disconnects and the link's inactivity timeout ends the session. Profile captures and
# the watchdog's feeds are recorded; "hang" then hangs a pass of the loop.
# Prints "sleep_fw KEY VALUE" lines.

import sys

if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")
sys.path.append(sys.argv[1])
WAKE = sys.argv[2]
HANG = "hang" in sys.argv
NODISC = "nodisc" in sys.argv  # the client never disconnects: the link's inactivity ends it

import mp_machine  # noqa: E402

machine = mp_machine.install()
CLOCK = mp_machine.CLOCK

from hdlc_peer import LLC_REQ, LLC_RSP, Frame, disc, iframe, snrm  # noqa: E402


def out(key, value):
    print("sleep_fw %s %s" % (key, value))


def now_ms():
    return CLOCK.us // 1000


class WatchdogReset(Exception):
    pass


class Dog:
    # machine.WDT: the feeds' times; expired() is what the hardware checks
    made = []

    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.last = now_ms()
        self.feeds = 0
        self.max_gap = 0
        Dog.made.append(self)

    def feed(self):
        t = now_ms()
        if t - self.last > self.max_gap:
            self.max_gap = t - self.last
        self.last = t
        self.feeds += 1

    def expired(self):
        return now_ms() - self.last > self.timeout


# The optical head's line: (time ms, byte) sent by the client, each 300 Bd
# 7E1 character 33.3 ms long; a byte sent while the chip sleeps is lost.
class Line:
    def __init__(self):
        self.sched = []  # (t_ms, byte)
        self.lost = 0
        self.lost_bytes = bytearray()
        self.inflight = (-100, 1)  # the character on the line at the wake

    def send(self, t_ms, data, char_ms=33):
        for i in range(len(data)):
            self.sched.append((t_ms + i * char_ms, data[i]))

    def deliver(self, uart):
        t = now_ms()
        n = 0
        while n < len(self.sched) and self.sched[n][0] <= t:
            n += 1
        if n:
            uart.inject(bytes([b for _, b in self.sched[:n]]))
            self.sched = self.sched[n:]

    def drop_until(self, t_ms):
        # asleep until t_ms: what was sent meanwhile is lost, and the
        # character on the line at the wake with it
        n = 0
        while n < len(self.sched) and self.sched[n][0] <= t_ms:
            self.lost_bytes.append(self.sched[n][1])
            n += 1
        self.lost += n
        if n:
            self.inflight = self.sched[n - 1]
        self.sched = self.sched[n:]

    def next_at(self):
        return self.sched[0][0] if self.sched else None


LINE = Line()


class RxPin:
    # the IR head's RX as a pin: low inside a NUL's 9 low bit times
    def value(self):
        t = now_ms()
        for tb, b in [LINE.inflight] + LINE.sched[:2]:
            if tb <= t < tb + 30 and b == 0:
                return 0
            if tb > t:
                break
        return 1


SLEEPS = []  # (start ms, requested ms, slept ms)


def lightsleep(ms=None):
    t0 = now_ms()
    end = t0 + ms
    if WAKE == "pin":
        nxt = LINE.next_at()
        if nxt is not None and nxt < end:
            end = nxt  # the start bit wakes the chip; that character is lost
    if Dog.made and end - Dog.made[0].last > Dog.made[0].timeout:
        raise WatchdogReset("asleep past the watchdog")
    LINE.drop_until(end)
    CLOCK.us = end * 1000
    SLEEPS.append((t0, ms, end - t0))


machine.WDT = Dog
machine.lightsleep = lightsleep
machine.SLEEP = 2
machine.Pin.WAKE_LOW = 4
machine.Pin.WAKE_HIGH = 5
IRQS = []


def _irq(self, handler=None, trigger=0, wake=0):
    IRQS.append((self.id, handler, trigger, wake))


machine.Pin.irq = _irq

import dlms_board_def  # noqa: E402
from dlms_micro_mp import board  # noqa: E402
from dlms_micro_mp.loop import Log  # noqa: E402

QUARTER = 1765000800  # a quarter hour (UTC seconds)
START = QUARTER - 120  # the meter's time at CLOCK 0: captures at 120 s, 1020 s


def wall_clock():
    return START + CLOCK.us // 1000000


cfg = dlms_board_def.load("esp32c3_battery")
cfg["wake"] = WAKE
LOG = []
app = board.build(cfg, log=Log(LOG.append), sleep_us=CLOCK.sleep_us, wall_clock=wall_clock, keys=False)
loop = app.loop
loop.ticks_ms = now_ms
pm = loop.idle
pm.nap = CLOCK.advance_ms  # awake, a pass and its nap take 1 ms
pm.rx_pin = RxPin()  # the pin power.py made reads the line, as this one
port = app.ports[0]
uart = port.uart
dog = Dog.made[0]
app.meter.state[app.energy_slots[0]] = 4242
slot = [e for e in app.meter.table if e[0] == 7][0][4]
pb = app.meter.state[slot]
out("wake", pm.wake)
out("irqs", len(IRQS))
out("irq_handlers", sum(1 for i in IRQS if i[1] is not None))

AARQ = bytes.fromhex("601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0")
GET = bytes.fromhex("C001C100030100010800FF0200")
IDENT = b"/DMI5\\2DLMSMICRO-C3\r\n"
ACK = b"\x06252\r\n"


class Client:
    # the head-end on the optical head, one step per loop pass
    def __init__(self):
        self.state = "wait"
        self.got = bytearray()
        self.sessions = 0
        self.value = None
        self.log = []
        self.ns = 0
        self.nr = 0
        self.retries = 0
        self.asked = 0

    def start(self, t_ms):
        # IEC 62056-21 wake-up: NULs for 2.2 s, 1.6 s of silence, sign-on
        LINE.send(t_ms, b"\x00" * 66)
        self.signon_at = t_ms + 66 * 33 + 1600
        LINE.send(self.signon_at, b"/?!\r\n")
        self.state = "ident"
        self.asked = self.signon_at

    def frames(self):
        fr = []
        g = self.got
        i = 0
        while i + 3 <= len(g) and g[i] == 0x7E:
            n = (((g[i + 1] & 7) << 8) | g[i + 2]) + 2
            if i + n > len(g):
                break
            fr.append(Frame(bytes(g[i:i + n])))
            i += n
        self.got = g[i:]
        return fr

    def send_frame(self, f):
        uart.inject(f)

    def step(self):
        self.got += uart.take()
        st = self.state
        t = now_ms()
        if st == "ident":
            if IDENT in self.got:
                self.got = bytearray()
                uart.flush()  # the identification's last bit
                uart.inject(ACK)
                self.state = "confirm"
            elif t - self.asked > 3000 and not LINE.sched:
                # no identification: the client signs on again
                self.retries += 1
                self.asked = t
                LINE.send(t, b"/?!\r\n")
        elif st == "confirm":
            if ACK in self.got and uart.baudrate == 9600 and uart.bits == 8:
                self.got = bytearray()
                self.send_frame(snrm())
                self.state = "ua"
        elif st == "ua":
            for f in self.frames():
                if f.kind() == "UA":
                    self.send_frame(iframe(0, 0, LLC_REQ + AARQ))
                    self.state = "aare"
        elif st == "aare":
            for f in self.frames():
                if f.is_i() and f.info[:3] == LLC_RSP:
                    self.send_frame(iframe(1, (f.ns + 1) & 7, LLC_REQ + GET))
                    self.state = "get"
        elif st == "get":
            for f in self.frames():
                if f.is_i() and f.info[:3] == LLC_RSP:
                    self.value = bytes(f.info[3:])
                    if NODISC:
                        self.sessions += 1
                        self.state = "done"
                        self.done_at = t
                    else:
                        self.send_frame(disc())
                        self.state = "disc"
        elif st == "disc":
            for f in self.frames():
                if f.kind() == "UA":
                    self.sessions += 1
                    self.state = "done"
                    self.done_at = t


CLIENT = Client()
CAPTURES = []  # ms of each profile capture
inner = loop.service
END = [1030 * 1000]


def service(now):
    LINE.deliver(uart)
    CLIENT.step()
    total = pb.total
    inner(now)
    if pb.total != total:
        CAPTURES.append(now_ms())
    if now_ms() >= END[0]:
        loop.running = False


loop.service = service
CLIENT.start(100437)  # the hand-held unit's wake-up, 100.4 s in: between two polls
loop.run()
out("sleeps", len(SLEEPS))
out("longest_sleep_ms", max(s[2] for s in SLEEPS))
out("asleep_ms", sum(s[2] for s in SLEEPS))
out("run_ms", now_ms())
w = [s for s in SLEEPS if s[0] < 100437]
out("sleeps_before_wakeup", len(w))
out("client_state", CLIENT.state)
out("sessions", CLIENT.sessions)
out("signon_retries", CLIENT.retries)
out("get_reply", CLIENT.value.hex() if CLIENT.value else "none")
out("lost_on_wake", LINE.lost)
out("lost_bytes", "".join("%02x" % b for b in LINE.lost_bytes))
out("garbage_bytes", port.signon.garbage_bytes)
out("signons", port.signon.signons)
if CLIENT.state == "done":
    inside = [s for s in SLEEPS if CLIENT.signon_at <= s[0] <= CLIENT.done_at]
    out("sleeps_in_session", len(inside))
    after = [s for s in SLEEPS if s[0] > CLIENT.done_at]
    out("first_sleep_after_session_ms", after[0][0] - CLIENT.done_at if after else -1)
out("captures_ms", ",".join(str(c) for c in CAPTURES))
out("profile_rows", pb.count)
out("wdt_timeout_ms", dog.timeout)
out("wdt_feeds", dog.feeds)
out("wdt_max_gap_ms", dog.max_gap)
out("wakes_on_line", pm.wakes_on_line)
out("line_baud_after", uart.baudrate)
bounded = {}
for s in SLEEPS:
    bounded[s[1]] = bounded.get(s[1], 0) + 1
out("sleep_lengths", ",".join("%d:%d" % (k, bounded[k]) for k in sorted(bounded)))

if HANG:
    # a pass of the loop that never ends: nothing feeds the watchdog, and
    # it resets the chip
    class Hang:
        channel = port.channel

        def step(self, now):
            while True:
                CLOCK.advance_ms(10)
                if dog.expired():
                    raise WatchdogReset("watchdog expired")

    feeds = dog.feeds
    loop.ports = loop.ports + (Hang(),)
    loop.running = True
    END[0] = now_ms() + 600000
    try:
        loop.run()
        out("hang", "returned")
    except WatchdogReset as e:
        out("hang", "reset")
        out("hang_feeds", dog.feeds - feeds)
        out("unfed_ms", now_ms() - dog.last)
out("log", "|".join(LOG).replace(" ", "_")[:600])
out("end", 1)
