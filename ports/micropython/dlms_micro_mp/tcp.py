# TCP listeners for the board's main loop: the TCP wrapper (IEC 62056-47,
# port 4059) and HDLC over TCP (port 4060), for a board on Wi-Fi or Ethernet
# and for the unix firmware (build/firmware/unix32/micropython). Each
# accepted connection gets its own Channel (link + association) from
# make_channel(); everything is non-blocking, so a TcpPort is one more port
# of dlms_micro_mp.loop.Loop:
#
#   srv = TcpPort("wrapper", "0.0.0.0", 4059, lambda: Channel(meter, WrapperServer()))
#   loop = Loop((srv, uart_port), idle=srv.idle)   # idle: wait in select.poll
#
# Steady state allocates nothing per request: one receive buffer shared by
# the connections (read one at a time), views of it made once per length
# read (kept in a dict of at most _VIEWS lengths, not a list of one slot per
# possible length: that was 2 KB in one block per port, which a fragmented
# heap sometimes no longer had), frames written through views made once
# (loop.TxViews).

import select
import socket
from errno import EAGAIN

from dlms_micro.server import EV_CLOSE, EV_NONE, EV_SEND
from dlms_micro_mp.loop import TxViews

_RD = select.POLLIN
_VIEWS = 24  # receive lengths whose views are kept (a session uses a few)


def _ticks_diff(a, b):
    d = (a - b) & 0x3FFFFFFF
    return d - 0x40000000 if d >= 0x20000000 else d


def _free():
    # free heap after a collection (MicroPython; CPython: unbounded)
    import gc

    if not hasattr(gc, "mem_free"):
        return 1 << 30
    gc.collect()
    return gc.mem_free()  # type: ignore[attr-defined]


class _Conn:
    def __init__(self, sock, channel, name):
        self.sock = sock
        self.channel = channel
        self.name = name
        self.tx = TxViews()
        self.closed = False
        # a wrapper Channel's exchange(): a whole message read in one piece
        # is served in one call (None: HDLC, a gateway's router)
        # (a wrapper link has source_wport: the test the Channel makes)
        ex = getattr(channel, "exchange", None)
        self.exchange = ex if ex is not None and hasattr(getattr(channel, "link", None), "source_wport") else None


class TcpPort:
    # name: for the log; make_channel(): a new Channel per connection;
    # max_conns: connections served at once (more are accepted and closed);
    # poller: a select.poll shared by several TcpPorts (idle() waits on all).
    # min_free: heap (bytes, after a collection) that must stay free once a
    # new connection's channel is made: a connection is served only while
    # the free heap is at least min_free plus what the largest channel of
    # this port took so far (measured at each accept: ~7 KB for one
    # logical device, link buffers, association and suite 0 context; a
    # gateway's router holds one per device). Below it a new connection
    # waits in the listen backlog up to wait_ms (2 s), so that a client that
    # has just gone is noticed and its channel freed, then is accepted and
    # closed with one log line: clients beyond what the heap holds never
    # starve the ones served or the UART channels. 0: no check.
    def __init__(self, name, host, port, make_channel, log=print, rx_size=512, max_conns=4,
                 poller=None, min_free=0):
        self.name = name
        self.make_channel = make_channel
        self.log = log
        self.max_conns = max_conns
        self.min_free = min_free
        self.channel_cost = 0  # heap the largest channel took (min_free set)
        self.wait_ms = 2000  # how long a connection waits for heap
        self._low_since = None
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(host, port)[0][-1])
        s.listen(max_conns)
        s.setblocking(False)
        self.listener = s
        self.port = port
        self.conns = []
        self.rx = bytearray(rx_size)
        self._views = {}  # length read -> memoryview of rx[0:length]
        self.poller = poller if poller is not None else select.poll()
        self.poller.register(s, _RD)
        self.accepted = 0
        self.errors = 0

    def step(self, now):
        # accept() only when the listener is readable: on a non-blocking
        # listener with nobody waiting it raises, and an exception allocates
        # (ipoll yields reused tuples: no allocation)
        # (served first: a connection whose client has gone is closed and
        # reaped before a new one is weighed against the free heap)
        waiting = False
        for obj, _ev in self.poller.ipoll(0):
            if obj is self.listener:
                waiting = True
        busy = False
        for c in self.conns:
            if self._serve(c, now):
                busy = True
        if busy:
            self._reap()
        if waiting and self._accept(now):
            busy = True
        return busy

    def idle(self, loop, now, ms=10):
        # Loop idle hook: sleep until a socket has something (or ms pass).
        self.poller.poll(ms)

    def _accept(self, now=0):
        # Short of heap, a waiting connection stays in the listen backlog for
        # up to wait_ms (a client that has just gone is noticed and its
        # channel freed meanwhile), then is accepted and closed.
        free = 0
        low = False
        if self.min_free:
            free = _free()
            low = free < self.min_free + self.channel_cost
            if low:
                if self._low_since is None:
                    self._low_since = now
                if _ticks_diff(now, self._low_since) < self.wait_ms:
                    return False
        self._low_since = None
        try:
            sock, addr = self.listener.accept()
        except OSError:
            return False  # EAGAIN: nobody waiting
        self.accepted += 1
        if len(self.conns) >= self.max_conns:
            sock.close()
            self.log(self.name + ": too many connections, one refused")
            return True
        if low:
            sock.close()
            self.log("%s: heap low (%d B free, %d B wanted), one connection refused"
                     % (self.name, free, self.min_free + self.channel_cost))
            return True
        sock.setblocking(False)
        try:
            ch = self.make_channel()
        except MemoryError:
            sock.close()
            self.log(self.name + ": no heap for a new connection, one refused")
            return True
        if self.min_free:
            cost = free - _free()
            if cost > self.channel_cost:
                self.channel_cost = cost
        name = "%s %d" % (self.name, self.accepted)
        ch.set_log(self.log)
        self.conns.append(_Conn(sock, ch, name))
        self.poller.register(sock, _RD)
        self.log(name + ": connected")
        return True

    def _serve(self, c, now):
        if c.closed:
            return True
        try:
            n = c.sock.readinto(self.rx)
        except OSError as e:
            if e.args[0] == EAGAIN:
                n = None
            else:
                n = 0
        busy = False
        try:
            if n == 0:  # end of stream or a reset
                self._close(c, "disconnected")
                return True
            if n:
                busy = True
                views = self._views
                if n in views:
                    v = views[n]
                else:
                    if len(views) >= _VIEWS:
                        views.clear()  # lengths of another kind of session: start again
                    v = views[n] = memoryview(self.rx)[0:n]
                ch = c.channel
                ex = c.exchange
                if ex is not None:
                    r = ex(v, n, now)  # -1: not one whole message to an idle link
                    if r >= 0:
                        if r == EV_SEND:
                            self._send(c, ch.tx_buf, ch.tx_start, ch.tx_end)
                            if ch._gbt_push:
                                self._drain(c, now)
                        return busy
                k = 0
                while k < n and not c.closed:
                    took = ch.feed(v, k, n, now)
                    self._drain(c, now)
                    if took <= 0:
                        self._close(c, "receive overrun")
                        return True
                    k += took
            elif self._drain(c, now):
                busy = True
        except Exception as e:  # a bug below must not take the meter down
            self.errors += 1
            self._close(c, "channel error " + type(e).__name__)
            return True
        return busy

    def _drain(self, c, now):
        ch = c.channel
        sent = False
        while not c.closed:
            ev = ch.next_event(now)
            if ev == EV_NONE:
                break
            if ev == EV_SEND:
                self._send(c, ch.tx_buf, ch.tx_start, ch.tx_end)
                sent = True
            elif ev == EV_CLOSE:
                self._close(c, "closed by the channel")
        return sent

    def _send(self, c, buf, start, end):
        mv = None
        while start < end:
            try:
                # the whole frame through a reused view; a rest after a
                # partial write (rare) through a new one
                k = c.sock.write(c.tx.view(buf, start, end) if mv is None else mv[start:end])
            except OSError as e:
                if e.args[0] != EAGAIN:
                    self._close(c, "send failed")
                    return
                k = None
            if k:
                start += k
                if start < end and mv is None:
                    mv = memoryview(buf)
            else:
                select.select([], [c.sock], [], 1)

    def _close(self, c, why):
        if c.closed:
            return
        c.closed = True
        try:
            c.channel.close()
        except Exception:
            pass
        try:
            self.poller.unregister(c.sock)
        except Exception:
            pass
        c.sock.close()
        self.log(c.name + ": " + why)

    def _reap(self):
        for i in range(len(self.conns) - 1, -1, -1):
            if self.conns[i].closed:
                self.conns.pop(i)

    def close(self):
        for c in self.conns:
            self._close(c, "server stopped")
        self.conns = []
        self.listener.close()
