# Every logical device of a gateway over the TCP wrapper and over HDLC over
# TCP, in the heap of an ESP32.
#
# A dlms_micro.router.Router over one Channel per logical device costs the
# channels of all of them on every connection: ~5 KB a device with suite 0
# (wrapper buffers 1.3 KB, services 0.9 KB, GBT 0.5 KB, the ACSE objects
# 0.8 KB, the association 0.4 KB; the dedicated-key AES-GCM, 1.7 KB, only
# while an association has a dedicated key), ~15 KB a connection for the
# Modbus gateway's three (measured on the unix firmware), which its heap
# does not hold beside the board's own. Even a Router whose channels are
# made at their first message costs ~2.5 KB more than one Channel (the
# Router, its per-device objects, the module).
#
# A head-end's TCP connection talks to one logical device, the one its
# first message names: over the wrapper the destination wPort of the first
# message's header, over HDLC the upper (logical device) part of the
# destination address of the first frame (the SNRM, as a rule).
# BoundChannel reads that much, makes the Channel of that device, hands it
# the bytes read and serves the connection with it: a connection costs one
# device's Channel, whichever device. Messages to another device later on
# the same connection go to that Channel, whose link answers them as a
# wrapper server answers a wPort it does not serve, or an HDLC station a
# frame for another station (it ignores them); a head-end opens one
# connection per logical device.
#
#   make = gateway_tcp.wrapper_factory(meters, max_apdu, log, min_free)
#   TcpPort("wrapper", host, 4059, make, ...)    # make() per connection
#   make = gateway_tcp.hdlc_factory(meters, link_for, log, min_free)
#   TcpPort("hdlc", host, 4060, make, ...)       # link_for(ld): an HDLC link
#
# A device no meter is (a wPort or upper address no device has, the
# all-station address) gets the first device's Channel (as the Router
# does), whose link does not answer it. Bytes before the first frame's
# opening flag, and a first frame whose address is malformed (3 bytes, or
# no end within 4), are dropped as an HDLC link drops them. A Channel that
# cannot be made (less than min_free bytes of heap free beside what the
# largest Channel of the factory took so far, or a MemoryError)
# gets nothing: the connection's bytes are dropped with one log line
# ("wrapper: no heap for the channel of logical device 2 (4096 B free)")
# and the head-end times out.


_HEADER = 8  # wrapper header: version, source wPort, destination wPort, length
_HDLC_HEAD = 7  # HDLC frame opening: flag, format (2 bytes), destination address (1, 2 or 4)
_FLAG = 0x7E


class BoundChannel:
    # A Channel's interface over the Channel of one logical device, made at
    # the connection's first message. meters: one Meter per logical device
    # (.logical_device), the first the default; make(meter): its Channel.
    # hdlc: the first frame's destination address names the device, else
    # the first wrapper header's destination wPort.
    # cost: [bytes, count] shared by a factory's BoundChannels: the heap the
    # largest Channel took, not counting the first one made (which holds
    # the first use of modules, ~5 KB more), and how many were made (a
    # TcpPort weighs only the BoundChannel at accept).
    def __init__(self, meters, make, log=None, min_free=0, hdlc=False, cost=None):
        self.meters = meters
        self.meter = meters[0]
        self._new = make
        self.log = log
        self.min_free = min_free
        self._cost = cost if cost is not None else [0, 0]
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
        self.hdlc = hdlc
        self._hdr = bytearray(_HDLC_HEAD if hdlc else _HEADER)
        self._n = 0
        self._ld = -1  # HDLC: the upper address read

    def _make(self, ld):
        meter = self.meters[0]
        for m in self.meters:
            if m.logical_device == ld:
                meter = m
                break
        free = -1
        if self.min_free:
            import gc

            if hasattr(gc, "mem_free"):  # (CPython: no heap figure)
                gc.collect()
                free = gc.mem_free()
                want = self.min_free + self._cost[0]
                if free < want:
                    return self._refuse(ld, "%d B free, %d B wanted" % (free, want))
        try:
            ch = self._new(meter)
        except MemoryError:
            return self._refuse(ld, "MemoryError")
        cost = self._cost
        if free >= 0 and cost[1]:
            gc.collect()
            c = free - gc.mem_free()
            if c > cost[0]:
                cost[0] = c
        cost[1] += 1
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
            self.log("%s: no heap for the channel of logical device %d (%s): the connection's messages "
                     "are dropped" % ("hdlc" if self.hdlc else "wrapper", ld, why))
        return False

    def feed(self, data, start, end, now):
        ch = self.ch
        if ch is not None:
            return ch.feed(data, start, end, now)
        if self.dropped:
            return end - start
        hdr = self._hdr
        if self.hdlc:
            i = self._scan_hdlc(data, start, end)
            if self._ld < 0:
                return end - start
            ld = self._ld
        else:
            i = start
            while i < end and self._n < _HEADER:
                hdr[self._n] = data[i]
                self._n += 1
                i += 1
            if self._n < _HEADER:
                return end - start
            ld = (hdr[4] << 8) | hdr[5]
        if not self._make(ld):
            return end - start
        self.ch.feed(hdr, 0, self._n, now)  # a new link's buffer takes them whole
        return (i - start) + self.ch.feed(data, i, end, now)

    def _scan_hdlc(self, data, i, end):
        # Read the first frame's opening into _hdr: its flag, format field
        # and destination address (1, 2 or 4 bytes, the last one's bit 0
        # set). Bytes before a flag, and repeated flags, are skipped; a
        # malformed address drops what was read. Sets _ld (the upper
        # address) once the address is whole; returns the index after the
        # bytes taken.
        hdr = self._hdr
        while i < end:
            b = data[i]
            i += 1
            n = self._n
            if n == 0:
                if b == _FLAG:
                    hdr[0] = b
                    self._n = 1
                continue
            if n == 1 and b == _FLAG:
                continue  # flags between frames
            hdr[n] = b
            n += 1
            self._n = n
            if n > 3 and b & 1:
                k = n - 3  # address bytes
                if k == 1 or k == 2:
                    self._ld = hdr[3] >> 1
                    return i
                if k == 4:
                    self._ld = ((hdr[3] >> 1) << 7) | (hdr[4] >> 1)
                    return i
                self._n = 0  # 3 bytes: malformed
            elif n == _HDLC_HEAD:
                self._n = 0  # no end within 4 bytes: malformed
        return i

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

    cost = [0, 0]

    def make():
        return BoundChannel(meters, channel, log, min_free, False, cost)

    return make


def hdlc_factory(meters, link_for, log=None, min_free=6 * 1024):
    # make() for a TcpPort of HDLC over TCP: a BoundChannel over the
    # logical devices of meters; link_for(ld): a new HDLC link answering
    # upper address ld (board.hdlc_link(defn, cfg, ld)).
    from dlms_micro.server import Channel

    def channel(meter):
        return Channel(meter, link_for(meter.logical_device))

    cost = [0, 0]

    def make():
        return BoundChannel(meters, channel, log, min_free, True, cost)

    return make
