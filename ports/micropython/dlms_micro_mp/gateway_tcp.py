# Every logical device of a gateway over one TCP wrapper connection, in the
# heap of an ESP32.
#
# A dlms_micro.router.Router over one Channel per logical device costs the
# channels of all of them on every connection: ~6.5 KB a device with suite
# 0 (link buffers, services, GBT, the ACSE objects, the dedicated-key
# AES-GCM), ~20 KB a connection for the three devices of the Modbus gateway
# (measured on the unix firmware: tools/firmware/retrofit_heap.py --tcp).
# A head-end's connection talks to one logical device (its association's),
# seldom more. Here each device's Channel is made when the first wrapper
# message for its wPort arrives: a connection costs the channels it uses.
#
#   make = gateway_tcp.wrapper_factory(meters, max_apdu, log, min_free)
#   TcpPort("wrapper", host, 4059, make, ...)    # make() per connection
#
# A device whose Channel cannot be made (less than min_free bytes of heap
# free, or a MemoryError) gets nothing: the message is dropped with a log
# line ("logical device 2: no heap for its channel (4096 B free)"), the
# connection stays and its other devices answer; the head-end times out.

from dlms_micro.router import Router


class _Closed:
    # what a device not yet used shows the Router: no association, no link
    status = 0
    state = 0


_CLOSED = _Closed()


class _Idle:
    # The link of a device not yet used, as the Router reads it: its wPort.
    def __init__(self, ld):
        self.wports = (ld,)
        self.state = 0


class LazyChannel:
    # A Channel made at its first byte. make(): the Channel.
    def __init__(self, ld, meter, make, log=None, min_free=0):
        self.ld = ld
        self.meter = meter
        self._make = make
        self.log = log
        self.min_free = min_free
        self.ch = None
        self.link = _Idle(ld)
        self.assoc = _CLOSED
        self.tx_buf = None
        self.tx_start = 0
        self.tx_end = 0
        self.refused = 0  # messages dropped for want of heap

    def _create(self):
        free = _mem_free()
        if free is not None and free < self.min_free:
            self._refuse("%d B free" % free)
            return False
        try:
            ch = self._make()
        except MemoryError:
            self._refuse("MemoryError")
            return False
        if self.log is not None:
            ch.set_log(self.log)
        self.ch = ch
        self.link = ch.link
        self.assoc = ch.assoc
        return True

    def _refuse(self, why):
        self.refused += 1
        if self.log is not None and self.refused == 1:
            self.log("logical device %d: no heap for its channel (%s): its messages are dropped" % (self.ld, why))

    def feed(self, data, start, end, now):
        if self.ch is None and not self._create():
            return end - start  # dropped
        return self.ch.feed(data, start, end, now)

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


def _mem_free():
    try:
        import gc

        gc.collect()
        return gc.mem_free()  # type: ignore[attr-defined]
    except (ImportError, AttributeError):  # CPython
        return None


def wrapper_factory(meters, max_apdu, log=None, min_free=6 * 1024):
    # make() for a TcpPort: a Router over a LazyChannel per logical device
    # (meters: build_all's, one Meter per device, each .logical_device).
    from dlms_micro.link.wrapper import WrapperServer
    from dlms_micro.server import Channel

    def channel_of(meter):
        ld = meter.logical_device
        return lambda: Channel(meter, WrapperServer(wports=(ld,), max_apdu=max_apdu))

    def make():
        chans = []
        for m in meters:
            chans.append(LazyChannel(m.logical_device, m, channel_of(m), log, min_free))
        return Router(chans, True)

    return make
