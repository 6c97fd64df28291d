# The board's main loop: one meter served on several UART channels, without
# threads. Each UartPort polls its UART (any() + readinto() into a buffer
# allocated once), feeds the bytes to its sans-IO Channel and transmits what
# the channel answers; an RS-485 port raises its driver-enable pin before the
# first byte and drops it only after the last byte left the shift register
# (UART.flush(), then txdone()).
#
#   ports = (UartPort("rs485", uart2, channel_a, de=Pin(4, Pin.OUT)),
#            UartPort("ir", uart1, channel_b))
#   loop = Loop(ports, wdt=WDT(timeout=8000), idle=hook)
#   loop.run()                  # forever; or, steppable (tests, a caller's
#   busy = loop.step(now_ms)    # own scheduler): one pass over every port
#
# Bad input never stops the loop: noise and broken frames are the link's to
# discard (HDLC silence/FRMR); a UART overrun drops the bytes the link cannot
# take; an exception out of a channel is logged, the channel's association
# is dropped and the loop goes on. Each log message is printed once while it
# repeats (a noisy bus would otherwise flood the console).

import time

from dlms_micro.server import EV_CLOSE, EV_NONE, EV_SEND

try:
    _sleep_us = time.sleep_us  # type: ignore[attr-defined]
    _ticks_ms = time.ticks_ms  # type: ignore[attr-defined]
except AttributeError:  # CPython, with the test double of machine
    def _sleep_us(us):
        time.sleep(us / 1000000)

    def _ticks_ms():
        return int(time.monotonic() * 1000) & 0x3FFFFFFF

_TXDONE_SPINS = 100000  # bound on the wait for txdone() after flush()


class Log:
    # print() with repeats suppressed: a message equal to the previous one
    # is counted, not printed; the count shows with the next new message.
    def __init__(self, out=print):
        self.out = out
        self.last = None
        self.repeats = 0
        self.lines = 0  # messages printed

    def __call__(self, msg):
        if msg == self.last:
            self.repeats += 1
            return
        if self.repeats:
            self.out("(last message repeated %d times)" % self.repeats)
            self.repeats = 0
        self.last = msg
        self.lines += 1
        self.out(msg)


class TxViews:
    # Views buf[start:end] of the transmit buffers a channel hands out, made
    # once per (buffer, start, end) and reused: writing a frame then
    # allocates nothing (a fresh memoryview slice is 16 B a frame). Two
    # buffers are remembered (an HDLC link sends from its reply buffer and
    # from its control-frame buffer); a buffer's views are dropped when more
    # than `most` have been made (long replies of many lengths).
    def __init__(self, most=48):
        self.most = most
        self.bufs = [None, None]
        self.mvs = [None, None]
        self.views = [None, None]
        self.next = 0  # the slot a third buffer replaces

    def view(self, buf, start, end):
        bufs = self.bufs
        if bufs[0] is buf:
            i = 0
        elif bufs[1] is buf:
            i = 1
        else:
            i = self.next
            self.next = 1 - i
            bufs[i] = buf
            self.mvs[i] = memoryview(buf)
            self.views[i] = {}
        d = self.views[i]
        key = (start << 16) | end
        v = d.get(key)
        if v is None:
            if len(d) >= self.most:
                d.clear()
            v = d[key] = self.mvs[i][start:end]
        return v


class UartPort:
    # One physical channel: a machine.UART (opened with timeout=0), the
    # Channel that serves it, and for RS-485 the driver-enable pin (DE and
    # /RE tied: high = transmit). turnaround_us: quiet time between the end
    # of a request and the start of the answer (IEC 62056-46 and slow
    # converters on the head-end side need some); de_setup_us: time between
    # raising DE and the first byte (the transceiver's enable time).
    def __init__(self, name, uart, channel, de=None, turnaround_us=0, de_setup_us=0, rx_size=64,
                 log=None, sleep_us=None):
        self.name = name
        self.uart = uart
        self.channel = channel
        self.de = de
        self.turnaround_us = turnaround_us
        self.de_setup_us = de_setup_us
        self.rx = bytearray(rx_size)
        # rx[0:n] views, made once per n as first seen (at most rx_size of
        # 16 B): a link copies a whole buffer it is given without allocating,
        # while a part of one costs it 32 B per read
        self._views = [None] * (rx_size + 1)
        self.log = log if log is not None else Log()
        self.sleep_us = sleep_us if sleep_us is not None else _sleep_us
        self._tx = TxViews()
        self.rx_bytes = 0
        self.tx_frames = 0
        self.dropped = 0  # bytes lost to overrun
        self.errors = 0  # exceptions caught from the channel
        channel.set_log(self.log)
        if de is not None:
            de.value(0)

    def step(self, now):
        # Read what the UART holds, feed it, answer. Returns True if anything
        # moved (bytes in or frames out).
        busy = False
        uart = self.uart
        n = uart.any()
        if n:
            rx = self.rx
            if n > len(rx):
                n = len(rx)
            got = uart.readinto(rx, n)
            if got:  # None: nothing after all (timeout) or a driver hiccup
                self.rx_bytes += got
                self._feed(got, now)
                busy = True
        try:
            if self._drain(now):
                busy = True
        except Exception as e:  # a bug below must not wedge the meter
            self._fail(e)
        return busy

    def _feed(self, n, now):
        ch = self.channel
        rx = self._views[n]
        if rx is None:
            rx = self._views[n] = memoryview(self.rx)[0:n]
        k = 0
        try:
            while k < n:
                took = ch.feed(rx, k, n, now)
                if took <= 0:
                    # the link's receive buffer is full: answer what it has,
                    # then try again; if it still takes nothing, drop
                    self._drain(now)
                    took = ch.feed(rx, k, n, now)
                    if took <= 0:
                        self.dropped += n - k
                        self.log(self.name + ": receive overrun, bytes dropped")
                        return
                k += took
                self._drain(now)
        except Exception as e:
            self._fail(e)

    def _drain(self, now):
        ch = self.channel
        sent = False
        while True:
            ev = ch.next_event(now)
            if ev == EV_NONE:
                return sent
            if ev == EV_SEND:
                self.transmit(ch.tx_buf, ch.tx_start, ch.tx_end)
                sent = True
            elif ev == EV_CLOSE:
                ch.close()

    def transmit(self, buf, start, end):
        uart = self.uart
        de = self.de
        if self.turnaround_us:
            self.sleep_us(self.turnaround_us)
        if de is not None:
            de.value(1)
            if self.de_setup_us:
                self.sleep_us(self.de_setup_us)
        uart.write(self._tx.view(buf, start, end))
        if de is not None:
            # flush() returns when the TX FIFO is empty and the last stop bit
            # is out (ESP32: uart_wait_tx_done); txdone() double-checks
            uart.flush()
            spins = _TXDONE_SPINS
            while not uart.txdone() and spins:
                spins -= 1
            de.value(0)
        self.tx_frames += 1

    def _fail(self, e):
        self.errors += 1
        self.log(self.name + ": channel error " + type(e).__name__ + ", association dropped")
        try:
            self.channel.close()
        except Exception:
            pass
        if self.de is not None:
            self.de.value(0)


class Loop:
    # ports: UartPort-like objects (step(now) -> busy); wdt: machine.WDT or
    # None, fed every step, from here only (never from an interrupt: a pass
    # that hangs is not fed); idle: None or idle(loop, now) called by run()
    # after a step that moved nothing (sleep_ms(1), or on a battery board
    # dlms_micro_mp.power.Power: machine.lightsleep until the next work);
    # service: None or service(now) called every step (storage flush,
    # simulation, LED).
    # led: None or a machine.Pin, lit while a pass moves bytes (led_on: the
    # level that lights it; many boards' LEDs are active low).
    def __init__(self, ports, wdt=None, idle=None, service=None, ticks_ms=None, led=None, led_on=1):
        self.ports = ports
        self.wdt = wdt
        self.idle = idle
        self.service = service
        self.ticks_ms = ticks_ms if ticks_ms is not None else _ticks_ms
        self.led = led
        self.led_on = led_on
        self._lit = False
        self.steps = 0
        self.running = True
        if led is not None:
            led.value(1 - led_on)

    def step(self, now):
        busy = False
        for p in self.ports:
            if p.step(now):
                busy = True
        if self.service is not None:
            self.service(now)
        if self.led is not None and busy != self._lit:
            self._lit = busy
            self.led.value(self.led_on if busy else 1 - self.led_on)
        if self.wdt is not None:
            self.wdt.feed()
        self.steps += 1
        return busy

    def run(self):
        ticks = self.ticks_ms
        while self.running:
            now = ticks()
            if not self.step(now) and self.idle is not None:
                self.idle(self, now)

    def associated(self):
        # True while any channel has an open association (ports without a
        # channel, a metering source's, have none).
        for p in self.ports:
            assoc = getattr(getattr(p, "channel", None), "assoc", None)
            if assoc is not None and assoc.status != 0:
                return True
        return False
