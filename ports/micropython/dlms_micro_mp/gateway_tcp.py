# Every logical device of a gateway over the TCP wrapper, in the heap of an
# ESP32.
#
# A dlms_micro.router.Router over one Channel per logical device costs the
# channels of all of them on every connection: ~6.5 KB a device with suite
# 0 (wrapper buffers 1.3 KB, services 0.9 KB, GBT 0.5 KB, the ACSE objects
# 0.8 KB, the association 0.4 KB, the dedicated-key AES-GCM 2.2 KB), ~20 KB
# a connection for the Modbus gateway's three (measured on the unix
# firmware), which its heap does not hold beside the board's own. Even a
# Router whose channels are made at their first message costs ~2.5 KB more
# than one Channel (the Router, its per-device objects, the module).
#
# A head-end's TCP connection talks to one logical device: the wPort of its
# first message. BoundChannel reads that message's wrapper header, makes the
# Channel of that device, hands it the header and serves the connection with
# it: a connection costs one device's Channel, whichever device. Messages to
# another wPort later on the same connection go to that Channel, whose link
# answers them as a wrapper server answers a wPort it does not serve (it
# ignores them); a head-end opens one connection per logical device.
#
#   make = gateway_tcp.wrapper_factory(meters, max_apdu, log, min_free)
#   TcpPort("wrapper", host, 4059, make, ...)    # make() per connection
#
# A wPort no device has gets the first device's Channel (as the Router
# does). A Channel that cannot be made (less than min_free bytes of heap
# free, or a MemoryError) gets nothing: the connection's bytes are dropped
# with one log line ("wrapper: no heap for the channel of logical device 2
# (4096 B free)") and the head-end times out.


_HEADER = 8  # wrapper header: version, source wPort, destination wPort, length


class BoundChannel:
    # A Channel's interface over the Channel of one logical device, made at
    # the connection's first message. meters: one Meter per logical device
    # (.logical_device), the first the default; make(meter): its Channel.
    def __init__(self, meters, make, log=None, min_free=0):
        self.meters = meters
        self.meter = meters[0]
        self._new = make
        self.log = log
        self.min_free = min_free
        self.ch = None
        self.ld = None  # the logical device bound to
        # not bound yet: its own link and association, neither open
        self.status = 0
        self.state = 0
        self.link = self
        self.assoc = self
        self.tx_buf = None
        self.tx_start = 0
        self.tx_end = 0
        self.dropped = False
        self._hdr = bytearray(_HEADER)
        self._n = 0

    def _make(self, ld):
        meter = self.meters[0]
        for m in self.meters:
            if m.logical_device == ld:
                meter = m
                break
        if self.min_free:
            import gc

            gc.collect()
            free = gc.mem_free() if hasattr(gc, "mem_free") else self.min_free  # (CPython: none)
            if free < self.min_free:
                return self._refuse(ld, "%d B free" % free)
        try:
            ch = self._new(meter)
        except MemoryError:
            return self._refuse(ld, "MemoryError")
        if self.log is not None:
            ch.set_log(self.log)
        self.ch = ch
        self.ld = ld
        self.link = ch.link
        self.assoc = ch.assoc
        self.meter = ch.meter
        return True

    def _refuse(self, ld, why):
        self.dropped = True
        if self.log is not None:
            self.log("wrapper: no heap for the channel of logical device %d (%s): the connection's messages "
                     "are dropped" % (ld, why))
        return False

    def feed(self, data, start, end, now):
        ch = self.ch
        if ch is not None:
            return ch.feed(data, start, end, now)
        if self.dropped:
            return end - start
        i = start
        hdr = self._hdr
        while i < end and self._n < _HEADER:
            hdr[self._n] = data[i]
            self._n += 1
            i += 1
        if self._n < _HEADER:
            return end - start
        if not self._make((hdr[4] << 8) | hdr[5]):
            return end - start
        self.ch.feed(hdr, 0, _HEADER, now)  # a new link's buffer takes a header whole
        return (i - start) + self.ch.feed(data, i, end, now)

    def next_event(self, now):
        ch = self.ch
        if ch is None:
            return 0
        ev = ch.next_event(now)
        if ev:
            self.tx_buf = ch.tx_buf
            self.tx_start = ch.tx_start
            self.tx_end = ch.tx_end
        return ev

    def set_log(self, fn):
        self.log = fn
        if self.ch is not None:
            self.ch.set_log(fn)

    def close(self):
        if self.ch is not None:
            self.ch.close()


def wrapper_factory(meters, max_apdu, log=None, min_free=6 * 1024):
    # make() for a TcpPort: a BoundChannel over the logical devices of
    # meters (build_all's, one Meter per device, each .logical_device).
    from dlms_micro.link.wrapper import WrapperServer
    from dlms_micro.server import Channel

    def channel(meter):
        return Channel(meter, WrapperServer(wports=(meter.logical_device,), max_apdu=max_apdu))

    def make():
        return BoundChannel(meters, channel, log, min_free)

    return make
