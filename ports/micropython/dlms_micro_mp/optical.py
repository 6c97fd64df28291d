# The optical (IR) port with the IEC 62056-21 mode E sign-on in front of
# HDLC: the line idles at 300 Bd 7E1; a head-end's "/?!" gets the
# identification, its acknowledgement switches the line to the agreed rate
# (switch confirm at the new rate, then 8N1) and the HDLC link takes over;
# when that link ends (DISC, inactivity) or the sign-on's own inactivity
# timer fires, the line goes back to 300 Bd 7E1. Every line change waits
# until the UART has sent its last byte (flush/txdone), so the UA of a DISC
# or the switch confirm is never cut off.
#
#   port = ModeEPort("ir", uart, channel, SignOn(b"DMI", b"DLMSMICRO", b"5"))
#   loop = Loop((rs485_port, port)); loop.step(now)

from dlms_micro.link.hdlc import NDM
from dlms_micro.link.iec21 import EV_BAUD, EV_NONE, EV_RESET, EV_SEND
from dlms_micro_mp.loop import UartPort

_PARITY = {"E": 0, "O": 1, "N": None}


class ModeEPort(UartPort):
    def __init__(self, name, uart, channel, signon, **kw):
        UartPort.__init__(self, name, uart, channel, **kw)
        self.signon = signon
        signon.log = self.log
        self._link_up = False  # the HDLC link reached NRM after the sign-on
        self.line_changes = 0
        self._set_line()  # 300 Bd 7E1

    def step(self, now):
        busy = False
        so = self.signon
        uart = self.uart
        n = uart.any()
        if n:
            rx = self.rx
            if n > len(rx):
                n = len(rx)
            got = uart.readinto(rx, n)
            if got:
                self.rx_bytes += got
                busy = True
                if so.hdlc:
                    so.touch(now)
                    self._feed(got, now)
                else:
                    so.feed(rx, 0, got, now)
        try:
            if self._signon_events(now):
                busy = True
            if so.hdlc:
                if self._drain(now):
                    busy = True
                self._watch_link(now)
        except Exception as e:
            self._fail(e)
            so.reset()
            self._signon_events(now)
        return busy

    def _signon_events(self, now):
        so = self.signon
        moved = False
        while True:
            ev = so.next_event(now)
            if ev == EV_NONE:
                return moved
            moved = True
            if ev == EV_SEND:
                self.transmit(so.tx_buf, so.tx_start, so.tx_end)
            elif ev == EV_BAUD or ev == EV_RESET:
                if ev == EV_RESET:
                    self._drop_link()
                self._set_line()

    def _watch_link(self, now):
        # The HDLC link's end hands the line back to the sign-on.
        up = self.channel.link.state != NDM
        if up:
            self._link_up = True
        elif self._link_up:
            self._link_up = False
            self.signon.link_closed(now)
            self._signon_events(now)

    def _drop_link(self):
        self._link_up = False
        ch = self.channel
        ch.link.disconnect()
        ch.close()

    def _set_line(self):
        # Wait for the last byte at the old rate, then change the line.
        uart = self.uart
        uart.flush()
        spins = 100000
        while not uart.txdone() and spins:
            spins -= 1
        so = self.signon
        uart.init(baudrate=so.baud, bits=so.data_bits, parity=_PARITY[so.parity], stop=1)
        self.line_changes += 1
