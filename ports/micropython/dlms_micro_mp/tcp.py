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
# the connections (read one at a time), views of it made once per length,
# frames written through views made once (loop.TxViews).

import select
import socket
from errno import EAGAIN

from dlms_micro.server import EV_CLOSE, EV_NONE, EV_SEND
from dlms_micro_mp.loop import TxViews

_RD = select.POLLIN


class _Conn:
    def __init__(self, sock, channel, name):
        self.sock = sock
        self.channel = channel
        self.name = name
        self.tx = TxViews()
        self.closed = False


class TcpPort:
    # name: for the log; make_channel(): a new Channel per connection;
    # max_conns: connections served at once (more are accepted and closed);
    # poller: a select.poll shared by several TcpPorts (idle() waits on all).
    def __init__(self, name, host, port, make_channel, log=print, rx_size=512, max_conns=4,
                 poller=None):
        self.name = name
        self.make_channel = make_channel
        self.log = log
        self.max_conns = max_conns
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(host, port)[0][-1])
        s.listen(max_conns)
        s.setblocking(False)
        self.listener = s
        self.port = port
        self.conns = []
        self.rx = bytearray(rx_size)
        self._views = [None] * (rx_size + 1)
        self.poller = poller if poller is not None else select.poll()
        self.poller.register(s, _RD)
        self.accepted = 0
        self.errors = 0

    def step(self, now):
        # accept() only when the listener is readable: on a non-blocking
        # listener with nobody waiting it raises, and an exception allocates
        # (ipoll yields reused tuples: no allocation)
        waiting = False
        for obj, _ev in self.poller.ipoll(0):
            if obj is self.listener:
                waiting = True
        busy = self._accept() if waiting else False
        for c in self.conns:
            if self._serve(c, now):
                busy = True
        if busy:
            self._reap()
        return busy

    def idle(self, loop, now, ms=10):
        # Loop idle hook: sleep until a socket has something (or ms pass).
        self.poller.poll(ms)

    def _accept(self):
        try:
            sock, addr = self.listener.accept()
        except OSError:
            return False  # EAGAIN: nobody waiting
        self.accepted += 1
        if len(self.conns) >= self.max_conns:
            sock.close()
            self.log(self.name + ": too many connections, one refused")
            return True
        sock.setblocking(False)
        ch = self.make_channel()
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
                v = self._views[n]
                if v is None:
                    v = self._views[n] = memoryview(self.rx)[0:n]
                k = 0
                ch = c.channel
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
