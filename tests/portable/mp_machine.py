# A test double of MicroPython's `machine` module, the parts the ESP32 port
# uses: UART (a byte pipe with baud-rate state and line timing), Pin (levels
# recorded with timestamps), WDT, lightsleep, and a controllable clock.
# Installed with install() as sys.modules['machine'] before the port is
# imported; works under CPython and MicroPython. Recording uses preallocated
# buffers so that allocation measurements count the port, not the double.

import sys


class Clock:
    # microseconds, kept below 2**30 (small ints on MicroPython)
    def __init__(self):
        self.us = 0

    def ticks_ms(self):
        return self.us // 1000

    def sleep_us(self, us):
        self.us += us

    def advance_ms(self, ms):
        self.us += ms * 1000


CLOCK = Clock()


class Pin:
    OUT = 1
    IN = 0
    PULL_UP = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.mode = mode
        self.level = 0 if value is None else value
        self.times = [0] * 64  # (time, level) of each change, a ring
        self.levels = [0] * 64
        self.n = 0

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0
        i = self.n & 63
        self.times[i] = CLOCK.us
        self.levels[i] = self.level
        self.n += 1
        return None

    def changes(self):
        return [(self.times[i & 63], self.levels[i & 63]) for i in range(max(0, self.n - 64), self.n)]

    def clear(self):
        self.n = 0


class UART:
    def __init__(self, id, baudrate=9600, bits=8, parity=None, stop=1, tx=None, rx=None, timeout=0, rxbuf=256,
                 txbuf=256):
        self.id = id
        self.tx_pin = tx
        self.rx_pin = rx
        self.inbuf = bytearray(2048)  # bytes from the head-end, not yet read
        self.in_r = 0
        self.in_w = 0
        self.out = bytearray(4096)  # bytes the port wrote
        self.out_n = 0
        self.w_start = [0] * 64  # per write: first byte on the line, last stop bit out
        self.w_end = [0] * 64
        self.w_len = [0] * 64
        self.writes = 0
        self.busy_until = 0
        self.none_next = 0  # readinto returns None this many times
        self.init(baudrate, bits, parity, stop)

    def init(self, baudrate=9600, bits=8, parity=None, stop=1, **kw):
        self.baudrate = baudrate
        self.bits = bits
        self.parity = parity
        self.stop = stop
        # (time, baud, bits, parity) of each line setting, the last 16
        if not hasattr(self, "lines"):
            self.lines = []
        self.lines.append((CLOCK.us, baudrate, bits, parity))
        if len(self.lines) > 16:
            self.lines.pop(0)

    def byte_us(self):
        return (1 + self.bits + (0 if self.parity is None else 1) + self.stop) * 1000000 // self.baudrate

    # --- the head-end's side
    def inject(self, data, baudrate=None):
        # bytes arriving on RX; sent at another baud rate they arrive garbled
        garble = baudrate is not None and baudrate != self.baudrate
        for b in data:
            if garble:
                b = (b * 7 + 0x35) & 0xFF
            self.inbuf[self.in_w % 2048] = b
            self.in_w += 1

    def take(self):
        # everything written since the last take()
        d = bytes(self.out[: self.out_n])
        self.out_n = 0
        return d

    # --- the machine.UART API
    def any(self):
        return self.in_w - self.in_r

    def readinto(self, buf, nbytes=None):
        if self.none_next:
            self.none_next -= 1
            return None
        n = self.in_w - self.in_r
        m = len(buf) if nbytes is None else nbytes
        if n > m:
            n = m
        if n == 0:
            return None
        for i in range(n):
            buf[i] = self.inbuf[(self.in_r + i) % 2048]
        self.in_r += n
        return n

    def write(self, data):
        n = len(data)
        w = self.out_n
        for i in range(n):
            self.out[w + i] = data[i]
        self.out_n = w + n
        start = CLOCK.us if CLOCK.us > self.busy_until else self.busy_until
        end = start + n * self.byte_us()
        self.busy_until = end
        i = self.writes & 63
        self.w_start[i] = start
        self.w_end[i] = end
        self.w_len[i] = n
        self.writes += 1
        return n

    def flush(self):
        if CLOCK.us < self.busy_until:
            CLOCK.us = self.busy_until

    def txdone(self):
        return CLOCK.us >= self.busy_until

    def write_times(self):
        return [(self.w_start[i & 63], self.w_end[i & 63]) for i in range(max(0, self.writes - 64), self.writes)]


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


SLEEPS = [0]


def lightsleep(ms=None):
    SLEEPS[0] += 1
    if ms:
        CLOCK.advance_ms(ms)


def install():
    # Make `import machine` return this module; returns it.
    mod = sys.modules[__name__]
    sys.modules["machine"] = mod
    return mod
