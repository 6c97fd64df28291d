# Drives one dlms_micro Channel from a byte transport: the port-side half of
# the sans-IO loop, shared by the TCP servers and the serial line.
#
#   drv = ChannelDriver(channel, write, close, log)
#   drv.data_received(data)     # bytes from the socket / serial line
#   drv.poll()                  # every ~100 ms, so link timeouts fire
#   drv.connection_lost()       # the transport went away
#
# write(bytes) sends; close() is called when the channel asks for the
# connection to be closed (EV_CLOSE); it returns False when the transport
# cannot be closed (a serial line) and the channel keeps serving.

import time

from dlms_micro.ticks import TICKS_MASK

EV_NONE = 0
EV_SEND = 1
EV_CLOSE = 5

POLL_INTERVAL = 0.1  # seconds between timer polls of a channel


def ticks_ms():
    return int(time.monotonic() * 1000) & TICKS_MASK


class ChannelDriver:
    def __init__(self, channel, write, close, log=None, clock=ticks_ms):
        self.channel = channel
        self._write = write
        self._close = close
        self._clock = clock
        self.log = log
        self.closed = False
        self.bytes_in = 0
        self.bytes_out = 0
        self._exchange = getattr(channel, "exchange", None)  # a dlms_micro Channel's

    def data_received(self, data):
        if self.closed:
            return
        self.bytes_in += len(data)
        ch = self.channel
        n = len(data)
        if self._exchange is not None:
            # one whole wrapper message to an idle link: in one call
            # (Channel.exchange; -1: not that case, nothing done)
            now = self._clock()
            r = self._exchange(data, n, now)
            if r >= 0:
                if r == EV_SEND:
                    out = bytes(ch.tx_buf[ch.tx_start : ch.tx_end])
                    self.bytes_out += len(out)
                    self._write(out)
                    if ch._gbt_push:
                        self._drain(now)
                return
        taken = 0
        stalled = 0
        while True:
            now = self._clock()
            got = ch.feed(data, taken, n, now)
            taken += got
            sent = self._drain(now)
            if self.closed or taken >= n:
                return
            stalled = stalled + 1 if got == 0 else 0
            if stalled and (not sent or stalled > 100):
                # The link's receive buffer is full and nothing moved: drop
                # the rest rather than spin (the link reports its own error).
                if self.log is not None:
                    self.log("driver: link took no bytes; %d bytes dropped" % (n - taken))
                return

    def poll(self):
        if not self.closed:
            self._drain(self._clock())

    def connection_lost(self):
        if not self.closed:
            self.closed = True
            self.channel.close()

    def _drain(self, now):
        ch = self.channel
        events = 0
        while True:
            ev = ch.next_event(now)
            if ev == EV_NONE:
                return events
            events += 1
            if ev == EV_SEND:
                out = bytes(ch.tx_buf[ch.tx_start : ch.tx_end])
                self.bytes_out += len(out)
                self._write(out)
            elif ev == EV_CLOSE:
                if self._close() is False:
                    continue
                self.closed = True
                self.channel.close()
                return events
            if events > 10000:
                # A core bug must not hang the port's event loop.
                if self.log is not None:
                    self.log("driver: channel produced no end of events; closing")
                self.closed = True
                self._close()
                return events
