# The fleet's TCP side: one port per meter (wrapper and/or HDLC over TCP,
# meter i on BASE + i - first_index) and one shared HDLC port routed by the
# HDLC server physical address of the first frame (meter i at 16 + i).
#
#   net = FleetNet(fleet, host, wrapper_base=4059, hdlc_base=None, shared_hdlc_port=4060)
#   net.start()              # binds; net.endpoints: [(kind, where), ...]
#   net.run()                # serves until net.request_stop() (a signal handler may call it)
#   # or: net.serve_in_thread(); ...; net.call(fn, *args); ...; net.stop()
#
# THE ENGINE: one epoll loop (select.epoll; selectors elsewhere) over
# non-blocking sockets, no asyncio. Measured by tools/bench_fleet.py
# --cpu-only, asyncio's transports, handles and callbacks cost 18-20 us of
# CPU per request on top of the meter's work; here a request is one
# epoll.poll, one recv_into into the thread's receive buffer, the core,
# and one send. Timers (latency faults, the sweep) are a heap; a socket
# pair wakes the loop for request_stop() and call() from other threads.
#
# LIMITS (a head-end may open thousands of connections at once): one cap
# for the whole fleet (max_connections; beyond it a connection is closed at
# accept, said once per episode), bounded memory per connection (the
# channel's link buffers; on the shared port at most ROUTE_BUFFER bytes
# wait for the first frame's address; answers the client does not take
# wait in a per-connection output buffer: above WRITE_BUFFER_HIGH bytes
# (with the answers a latency fault holds) the meter stops reading that
# client, above WRITE_BUFFER_MAX the connection is closed), no queue
# shared by connections, and an idle timeout counted from accept and from
# each answer. One timer for the whole fleet (every SWEEP_INTERVAL s) polls
# the links' timeouts, closes idle connections, saves the meters that
# changed (the disk writes in one thread, one save at a time) and re-reads
# a faults file. When accept() fails for want of file descriptors the
# listeners rest ACCEPT_PAUSE s (one log line per episode).
#
# Each connection serves one meter: a per-meter port's, or on the shared
# port the meter its first frame addresses (a frame to a physical address
# no meter has is dropped, as on a bus; a frame with no physical address,
# one byte of destination address, is for meter first_index only when the
# fleet has one meter).

import collections
import errno
import heapq
import logging
import select
import socket
import threading
import time

from dlms_micro.ticks import TICKS_MASK
from dlms_micro_cpython.tcp import _ConnectionCap

WRAPPER = "wrapper"
HDLC = "hdlc"
IDLE_TIMEOUT = 120.0
SWEEP_INTERVAL = 1.0
SAVE_INTERVAL = 60.0
UPDATE_INTERVAL = 1.0  # s: a meter's registers are brought up to date at most this often
WRITE_BUFFER_HIGH = 64 * 1024
WRITE_BUFFER_MAX = 256 * 1024
ROUTE_BUFFER = 2048
RECV_BUFFER = 16 * 1024
ACCEPT_PAUSE = 0.5
ACCEPT_BATCH = 64  # connections accepted per readiness of a listener
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_EV_NONE = 0
_EV_SEND = 1
_EV_CLOSE = 5
_monotonic = time.monotonic


def physical_of_frame(buf):
    """The HDLC destination's lower (physical) address of the first frame in
    buf: an int, -1 when the frame carries none (1-byte address), None
    when buf does not hold the address yet; (-2) when buf holds no frame
    start at all."""
    f = buf.find(b"\x7e")
    if f < 0:
        return -2
    a = f + 3  # flag, 2 bytes of frame format
    n = 0
    while True:
        if a + n >= len(buf):
            return None
        b = buf[a + n]
        n += 1
        if b & 1:
            break
        if n == 4:
            return -2
    if n == 1:
        return -1
    if n == 2:
        return buf[a + 1] >> 1
    if n == 4:
        return ((buf[a + 2] >> 1) << 7) | (buf[a + 3] >> 1)
    return -2


# events as epoll numbers them (the loop's own on other systems)
_IN = 0x001  # EPOLLIN
_OUT = 0x004  # EPOLLOUT
_HUP_ERR = 0x010 | 0x008  # EPOLLHUP | EPOLLERR (always reported by epoll)
_IN_ERR = _IN | _HUP_ERR


class _SelectorPoller:
    """select.epoll's calls over selectors (systems without epoll; a hang-up
    shows as readable there). Events 0: not watched."""

    def __init__(self):
        import selectors

        self._read = selectors.EVENT_READ
        self._write = selectors.EVENT_WRITE
        self._sel = selectors.DefaultSelector()
        self._ev = {}

    def register(self, fd, ev):
        self._ev[fd] = 0
        self.modify(fd, ev)

    def modify(self, fd, ev):
        old = self._ev[fd]
        mask = (self._read if ev & _IN else 0) | (self._write if ev & _OUT else 0)
        if old and mask:
            self._sel.modify(fd, mask)
        elif mask:
            self._sel.register(fd, mask)
        elif old:
            self._sel.unregister(fd)
        self._ev[fd] = mask

    def unregister(self, fd):
        self.modify(fd, 0)
        del self._ev[fd]

    def poll(self, timeout=-1):
        return [(key.fd, (_IN if mask & self._read else 0) | (_OUT if mask & self._write else 0))
                for key, mask in self._sel.select(None if timeout < 0 else timeout)]

    def close(self):
        self._sel.close()


if hasattr(select, "epoll"):
    assert (select.EPOLLIN, select.EPOLLOUT, select.EPOLLHUP | select.EPOLLERR) == (_IN, _OUT, _HUP_ERR)
    _poller = select.epoll
else:
    _poller = _SelectorPoller


class FleetConnection:
    """One TCP connection to one meter of the fleet (a non-blocking socket
    of net's loop)."""

    def __init__(self, net, sock, kind, index, peer):
        self.net = net
        self.sock = sock
        self.fd = sock.fileno()
        self.kind = kind
        self.index = index  # None on the shared port until routed
        self.meter = None
        self.ch = None
        self.peer = "%s:%s" % (peer[0], peer[1]) if peer else "?"
        self.last_sent = time.monotonic()
        self.closing = False
        self.closed = False
        self.out = None  # bytes the socket did not take yet (a bytearray)
        self.held = 0  # bytes of answers a latency fault holds
        self.reading = True
        self._pending = None  # shared port: bytes before the first frame's address
        self.wrapper = None  # the channel, when a wrapper's (on_event's short way)

    def start(self):
        if self.index is not None:
            return self._bind(self.index)
        self._pending = bytearray()
        return True

    def _bind(self, i):
        net = self.net
        try:
            meter = net.fleet.meter(i)
            ch = meter.make_channel("hdlc-tcp" if self.kind == HDLC else WRAPPER)
        except Exception as e:  # noqa: BLE001 (a meter that cannot be built serves nobody)
            if isinstance(e, OSError) and e.errno in _RESOURCE_ERRNOS:
                net.logger.error("meter %d: cannot serve a connection: %s", i, e)
            else:
                net.logger.exception("meter %d: cannot serve a connection", i)
            self._abort()
            return False
        self.index = i
        self.meter = meter
        log = net.logger
        name = "meter %d %s %s" % (i, self.kind, self.peer)

        def core_log(msg, _name=name):
            log.info("%s: %s", _name, msg)

        ch.set_log(core_log)
        self.ch = ch
        if self.kind == WRAPPER:
            self.wrapper = ch
        net.touched.add(i)
        log.debug("%s: connected", name)
        return True

    def on_event(self, ev):
        # the loop's handler: readable (or hung up / in error), writable
        if ev & _OUT:
            self._flush()
            if self.closed:
                return
        if not self.reading:
            if ev & _HUP_ERR:  # hung up while its answers wait: nobody to send them to
                self._abort()
            return
        if ev & _IN_ERR:
            buf = self.net.rbuf  # the loop's: consumed before the next read
            try:
                n = self.sock.recv_into(buf)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.net.logger.debug("meter %s %s: %s", self.index, self.peer, e)
                self._abort()
                return
            if n == 0:
                self._close_now()
                return
            ch = self.wrapper
            if ch is not None and self.out is None:
                # the usual request: one whole wrapper message to a meter
                # with no fault in force and up to date, served by
                # Channel.exchange in one call (received() otherwise)
                faults = self.net.fleet.faults
                mono = _monotonic()
                if (faults is None or not faults._by_kind) and mono - self.meter.last_update < UPDATE_INTERVAL:
                    now = int(mono * 1000) & TICKS_MASK
                    try:
                        r = ch.exchange(buf, n, now)
                        if r == _EV_SEND:
                            self.last_sent = mono
                            self._send_now(ch.tx_buf[ch.tx_start:ch.tx_end])
                            if ch._gbt_push and not self.closing:
                                self._drain(now)
                    except Exception:  # noqa: BLE001 (as received())
                        self.net.logger.exception("meter %d %s: error serving data; closing", self.index, self.peer)
                        self._abort()
                        return
                    if r >= 0:
                        return
            self.received(buf, n)

    def received(self, data, n):
        # data[:n]: what was read (the shared receive buffer)
        ch = self.ch
        if ch is None:
            if self._pending is None or not self._route(data, n):
                return
            data = bytes(self._pending)
            n = len(data)
            self._pending = None
            ch = self.ch
        net = self.net
        faults = net.fleet.faults
        meter = self.meter
        ic = -1
        if faults is not None and faults.any():
            i = self.index
            f = faults.active("silent", i)
            if f is not None:
                faults.note(i, f, "%d bytes from %s not answered" % (n, self.peer))
                return
            if faults.active("wrong-ic", i) is not None and meter.meter.keys is not None:
                ic = meter.meter.keys.tx_ic
        mono = time.monotonic()
        if mono - meter.last_update >= UPDATE_INTERVAL:
            meter.last_update = mono
            try:
                meter.update()
            except Exception:  # noqa: BLE001
                net.logger.exception("meter %d: update failed", self.index)
            net.touched.add(self.index)
        now = int(mono * 1000) & TICKS_MASK
        taken = 0
        try:
            while True:
                got = ch.feed(data, taken, n, now)
                taken += got
                self._drain(now)
                if self.closing or taken >= n:
                    break
                if got == 0:
                    net.logger.info("meter %d %s: link took no bytes; %d bytes dropped", self.index, self.peer,
                                    n - taken)
                    break
        except Exception:  # noqa: BLE001 (a bug in the core must not take the fleet down)
            net.logger.exception("meter %d %s: error serving data; closing", self.index, self.peer)
            self._abort()
        if ic >= 0:
            keys = meter.meter.keys
            if keys.tx_ic != ic:
                keys._tx_hi = ic >> 16
                keys._tx_lo = ic & 0xFFFF
                faults.note(self.index, faults.active("wrong-ic", self.index),
                            "invocation counter %d sent again" % ic)

    def _route(self, data, n):
        # shared port: find the meter the first frame is for
        p = self._pending
        p += memoryview(data)[:n]
        net = self.net
        while True:
            phys = physical_of_frame(p)
            if phys is None:
                if len(p) > ROUTE_BUFFER:
                    del p[:]
                return False
            if phys == -2:
                del p[:]  # no frame start: noise
                return False
            if phys == -1 and net.fleet.count == 1:
                i = net.fleet.first_index
            else:
                i = phys - 16 if phys >= 0 else -1
            if i in net.indices:
                return self._bind(i)
            net.logger.info("shared hdlc %s: a frame for physical address %s: no meter of this fleet; dropped",
                            self.peer, phys if phys >= 0 else "(none)")
            # drop up to the next frame start after this one
            f = p.find(b"\x7e")
            nxt = p.find(b"\x7e", f + 1)
            while nxt >= 0 and nxt + 1 < len(p) and p[nxt + 1] == 0x7E:
                nxt += 1
            if nxt < 0 or nxt + 1 >= len(p):
                del p[:]
                return False
            del p[:nxt + 1]
            if p[:1] != b"\x7e":
                p[0:0] = b"\x7e"

    def _drain(self, now):
        ch = self.ch
        events = 0
        while True:
            ev = ch.next_event(now)
            if ev == _EV_NONE:
                return
            if ev == _EV_SEND:
                self._send(ch.tx_buf[ch.tx_start:ch.tx_end])
            elif ev == _EV_CLOSE:
                self.net.logger.info("meter %d %s: closed by the channel", self.index, self.peer)
                self.closing = True
                self._close()
                return
            events += 1
            if events > 10000:
                self.net.logger.error("meter %d %s: channel produced no end of events; closing", self.index,
                                      self.peer)
                self._abort()
                return

    def _send(self, out):
        net = self.net
        faults = net.fleet.faults
        if faults is not None and faults.any():
            i = self.index
            f = faults.active("drop", i)
            if f is not None and faults.chance(f.value):
                faults.note(i, f, "answer of %d bytes dropped" % len(out))
                return
            f = faults.active("corrupt", i)
            if f is not None and faults.chance(f.value):
                b = bytearray(out)
                k = len(b) // 2
                b[k] ^= 0x5A
                out = bytes(b)
                faults.note(i, f, "answer byte %d corrupted" % k)
            f = faults.active("latency", i)
            if f is not None and f.value > 0:
                faults.note(i, f, "answer of %d bytes delayed %g ms" % (len(out), f.value))
                out = bytes(out)
                self.held += len(out)
                self._check_output()
                net.call_later(f.value / 1000.0, self._write_held, out)
                return
        self._write(out)

    def _write_held(self, out):
        self.held -= len(out)
        self._write(out)
        self._check_output()

    def _write(self, out):
        if self.closing:
            return
        self.last_sent = time.monotonic()
        if self.out is not None:
            self.out += out
            self._check_output()
            return
        self._send_now(out)

    def _send_now(self, out):
        # out to the socket, nothing waiting before it; what it does not take waits
        try:
            k = self.sock.send(out)
        except (BlockingIOError, InterruptedError):
            k = 0
        except OSError as e:
            self.net.logger.info("meter %s %s: %s; closed", self.index, self.peer, e)
            self._abort()
            return
        if k < len(out):
            self.out = bytearray(memoryview(out)[k:])
            self._check_output()

    def _flush(self):
        out = self.out
        if out:
            try:
                k = self.sock.send(out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                self.net.logger.info("meter %s %s: %s; closed", self.index, self.peer, e)
                self._abort()
                return
            del out[:k]
        if not out:
            self.out = None
            if self.closing:
                self._close_now()
                return
        self._check_output()

    def _check_output(self):
        # what the loop waits for: answers waiting (out) -> writable; too
        # many waiting (out + held above WRITE_BUFFER_HIGH) -> stop reading
        if self.closed:
            return
        waiting = (len(self.out) if self.out is not None else 0) + self.held
        if waiting > WRITE_BUFFER_MAX:
            self.net.logger.warning("meter %s %s: %d bytes of answers not taken by the client: closed",
                                    self.index, self.peer, waiting)
            self._abort()
            return
        reading = waiting <= WRITE_BUFFER_HIGH and not self.closing
        ev = (_IN if reading else 0) | (_OUT if self.out is not None else 0)
        if reading != self.reading or ev != self._ev:
            self.reading = reading
            self._ev = ev
            self.net.modify(self.fd, ev)

    _ev = 0  # set by the loop at register

    def _close(self):
        # close once the answers waiting are sent
        self.closing = True
        if self.out is None:
            self._close_now()
        else:
            self._check_output()

    def _abort(self):
        self.closing = True
        self._close_now()

    def _close_now(self):
        if self.closed:
            return
        self.closing = True
        self.closed = True
        net = self.net
        net.forget(self)
        try:
            self.sock.close()
        except OSError:
            pass
        self.out = None
        self.wrapper = None
        if self.ch is not None:
            try:
                self.ch.close()
            except Exception:  # noqa: BLE001
                net.logger.exception("meter %d %s: error closing the channel", self.index, self.peer)
            self.ch = None

    def poll(self, mono):
        # the fleet's sweep: link timeouts, idle timeout
        if self.closing:
            return
        if self.ch is not None:
            try:
                self._drain(int(mono * 1000) & TICKS_MASK)
            except Exception:  # noqa: BLE001
                self.net.logger.exception("meter %s %s: error in timer poll; closing", self.index, self.peer)
                self._abort()
                return
        idle = self.net.idle_timeout
        if idle and mono - self.last_sent >= idle and not self.closing:
            self.net.logger.info("meter %s %s: nothing answered for %.0f s: closed", self.index, self.peer,
                                 mono - self.last_sent)
            self._abort()


class FleetNet(_ConnectionCap):
    """The fleet's TCP servers in one loop. indices: the meters this
    process serves (default: the whole fleet). wrapper_base / hdlc_base:
    meter i's port is base + i - fleet.first_index (None: none);
    shared_hdlc_port: one HDLC port for every meter (None: none; 0: one
    the system picks, then in shared_port). max_connections: for the
    whole fleet (default from the file limit)."""

    def __init__(self, fleet, host="127.0.0.1", wrapper_base=None, hdlc_base=None, shared_hdlc_port=None,
                 indices=None, max_connections=None, idle_timeout=IDLE_TIMEOUT, logger=None):
        self.fleet = fleet
        self.host = host
        self.wrapper_base = wrapper_base
        self.hdlc_base = hdlc_base
        self.shared_hdlc_port = shared_hdlc_port
        self.indices = indices if indices is not None else fleet.indices()
        self.idle_timeout = idle_timeout
        self.logger = logger or logging.getLogger("dlms_micro.fleet")
        listeners = len(self.indices) * ((wrapper_base is not None) + (hdlc_base is not None)) + \
            (shared_hdlc_port is not None)
        self.max_connections = max_connections if max_connections is not None else \
            default_max_connections(listeners)
        self.connections = set()
        self.touched = set()  # meters served since the last save
        self.endpoints = []
        self.shared_port = None
        self.cap_name = "fleet"
        self.rbuf = bytearray(RECV_BUFFER)  # every read of the loop, one at a time
        self._poll = None
        self._handlers = {}  # fd -> handler(events)
        self._listeners = []  # (socket, kind, index)
        self._timers = []  # heap of (deadline, seq, fn, args)
        self._seq = 0
        self._calls = collections.deque()  # (fn, args, done, result) from other threads
        self._wake_r = self._wake_w = None
        self._stopping = False
        self._thread = None
        self._running = False
        self._accept_failing = False
        self._saver = None  # a one-thread executor for the state writes
        self._saving = None  # the state write in progress (a Future)
        self._next_save = 0.0

    # ---- setting up

    def start(self):
        """Bind every listening socket (OSError when one cannot be)."""
        first = self.fleet.first_index
        self._poll = _poller()
        try:
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._add(self._wake_r.fileno(), _IN, self._woken)
            for kind, base in ((WRAPPER, self.wrapper_base), (HDLC, self.hdlc_base)):
                if base is None:
                    continue
                for i in self.indices:
                    self._listen(kind, i, base + i - first, 64)
                lo, hi = self.indices[0], self.indices[-1]
                self.endpoints.append((kind, "tcp %s:%d-%d (meter %d on port %d + i - %d)" % (
                    self.host, base + lo - first, base + hi - first, lo, base, first)))
            if self.shared_hdlc_port is not None:
                s = self._listen(HDLC, None, self.shared_hdlc_port, 1024)
                self.shared_port = s.getsockname()[1]
                self.endpoints.append(("hdlc", "tcp %s:%d shared (meter i at physical address 16 + i)" % (
                    self.host, self.shared_port)))
        except BaseException:
            self._close_all()
            raise
        self._next_save = time.monotonic() + SAVE_INTERVAL
        self.call_later(SWEEP_INTERVAL, self._sweep)
        return self

    def _listen(self, kind, index, port, backlog):
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((self.host, port))
            s.listen(backlog)
            s.setblocking(False)
        except BaseException:
            s.close()
            raise
        self._listeners.append((s, kind, index))
        self._add(s.fileno(), _IN, lambda ev, s=s, kind=kind, index=index: self._accept(s, kind, index))
        return s

    def _add(self, fd, ev, handler):
        self._handlers[fd] = handler
        self._poll.register(fd, ev)

    def add_reader(self, sock, handler):
        """handler() whenever sock is readable, in the loop (fleet_workers'
        hand-over link)."""
        self._add(sock.fileno(), _IN, lambda ev: handler())

    def remove_reader(self, sock):
        self._remove(sock.fileno())

    def _remove(self, fd):
        if self._handlers.pop(fd, None) is not None:
            try:
                self._poll.unregister(fd)
            except (OSError, ValueError, KeyError):
                pass

    def modify(self, fd, ev):
        try:
            self._poll.modify(fd, ev)
        except (OSError, ValueError, KeyError):
            pass

    def port_of(self, kind, i):
        """The TCP port of meter i's wrapper or HDLC server (per meter)."""
        base = self.wrapper_base if kind == WRAPPER else self.hdlc_base
        return base + i - self.fleet.first_index

    # ---- connections

    def _accept(self, listener, kind, index):
        for _ in range(ACCEPT_BATCH):
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in _RESOURCE_ERRNOS:
                    self._accept_failed(e)
                    return
                if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                self.logger.error("%s: accept: %s", self.cap_name, e)
                return
            if self._accept_failing:
                self._accept_failing = False
                self.logger.warning("%s: accepting connections again", self.cap_name)
            self.adopt(sock, kind, index, peer)

    def _accept_failed(self, e):
        # out of file descriptors: the listeners rest (a readable listener
        # would otherwise wake the loop at once, again and again)
        if not self._accept_failing:
            self._accept_failing = True
            self.logger.error("%s: cannot accept connections: %s (retrying every %g s)", self.cap_name, e,
                              ACCEPT_PAUSE)
        for s, _kind, _index in self._listeners:
            self.modify(s.fileno(), 0)
        self.call_later(ACCEPT_PAUSE, self._resume_accepting)

    def _resume_accepting(self):
        for s, _kind, _index in self._listeners:
            self.modify(s.fileno(), _IN)

    def adopt(self, sock, kind, index, peer=None):
        """Serve an accepted socket: meter index's, or on the shared port
        (index None) the one its first frame addresses. Returns the
        connection, None when the cap closed it."""
        if len(self.connections) >= self.max_connections:
            sock.close()
            self.refused()
            return None
        sock.setblocking(False)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio did: answers go at once
        except OSError:
            pass
        if peer is None:
            try:
                peer = sock.getpeername()
            except OSError:
                peer = None
        conn = FleetConnection(self, sock, kind, index, peer)
        self.connections.add(conn)
        conn._ev = _IN
        self._add(conn.fd, _IN, conn.on_event)
        conn.start()
        return conn

    def forget(self, conn):
        # a connection's socket is about to close
        self._remove(conn.fd)
        if conn in self.connections:
            self.connections.discard(conn)
            self.closed()

    # ---- the loop

    def call_later(self, delay, fn, *args):
        """fn(*args) in the loop after delay seconds."""
        self._seq += 1
        heapq.heappush(self._timers, (time.monotonic() + delay, self._seq, fn, args))

    def run(self):
        """Serve until request_stop(); then close every connection and
        listener and wait for the state write in progress."""
        self._running = True
        poll = self._poll.poll
        handlers = self._handlers
        timers = self._timers
        monotonic = time.monotonic
        log = self.logger
        try:
            while not self._stopping:
                timeout = -1
                if timers:
                    timeout = max(0.0, timers[0][0] - monotonic())
                try:
                    events = poll(timeout)
                except InterruptedError:
                    continue
                for fd, ev in events:
                    h = handlers.get(fd)
                    if h is not None:
                        try:
                            h(ev)
                        except Exception:  # noqa: BLE001 (one connection's bug must not stop the fleet)
                            log.exception("%s: error serving a socket", self.cap_name)
                if timers:
                    now = monotonic()
                    while timers and timers[0][0] <= now:
                        _, _, fn, args = heapq.heappop(timers)
                        try:
                            fn(*args)
                        except Exception:  # noqa: BLE001
                            log.exception("%s: error in a timer", self.cap_name)
        finally:
            self._running = False
            self._shut_down()

    def request_stop(self):
        """Make run() return (from a signal handler or another thread)."""
        self._stopping = True
        self._wake()

    def _wake(self):
        w = self._wake_w
        if w is not None:
            try:
                w.send(b"\0")
            except OSError:
                pass  # full: the loop is awake anyway

    def _woken(self, ev):
        try:
            while self._wake_r.recv(512):
                pass
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return
        while self._calls:
            fn, args, done, box = self._calls.popleft()
            try:
                box.append(fn(*args))
            except BaseException as e:  # noqa: BLE001 (handed to the caller)
                box.append(e)
                box.append(None)
            done.set()

    def serve_in_thread(self):
        """run() in a daemon thread (tests, embedding); stop() ends it."""
        self._thread = threading.Thread(target=self.run, name="dlms-micro fleet", daemon=True)
        self._thread.start()
        return self._thread

    def call(self, fn, *args, timeout=10.0):
        """fn(*args) in the loop's thread (serve_in_thread); its result."""
        done = threading.Event()
        box = []
        self._calls.append((fn, args, done, box))
        self._wake()
        if not done.wait(timeout):
            raise TimeoutError("the fleet's loop did not run the call")
        if len(box) == 2:
            raise box[0]
        return box[0]

    def stop(self, timeout=30.0):
        """Stop serving and wait (the thread of serve_in_thread); closes
        everything when run() never ran."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        elif not self._running:
            self._shut_down()

    def _sweep(self):
        mono = time.monotonic()
        for conn in list(self.connections):
            conn.poll(mono)
        faults = self.fleet.faults
        if faults is not None:
            try:
                faults.poll()
            except Exception:  # noqa: BLE001
                self.logger.exception("fleet: reading the faults file failed")
        if mono >= self._next_save:
            self._next_save = mono + SAVE_INTERVAL
            self.save_touched()
        self.call_later(SWEEP_INTERVAL, self._sweep)

    def save_touched(self):
        # the meters served since the last save: their state to RAM here,
        # the disk writes in a thread (the loop keeps serving); one save at
        # a time (a slow disk skips rounds, never piles them up)
        if self._saving is not None and not self._saving.done():
            return
        touched, self.touched = self.touched, set()
        blobs = self.fleet.snapshots(touched)
        if blobs:
            if self._saver is None:
                from concurrent.futures import ThreadPoolExecutor

                self._saver = ThreadPoolExecutor(1, thread_name_prefix="dlms-micro fleet save")
            self._saving = self._saver.submit(self.fleet.write_all, blobs)

    def _shut_down(self):
        # listeners first, then the connections (their answers waiting are
        # given up to 0.5 s), then the save in progress
        for s, _kind, _index in self._listeners:
            self._remove(s.fileno())
            s.close()
        self._listeners = []
        deadline = time.monotonic() + 0.5
        for conn in list(self.connections):
            conn._close()
        while self.connections and time.monotonic() < deadline and self._poll is not None:
            for fd, ev in self._poll.poll(0.05):
                h = self._handlers.get(fd)
                if h is not None and fd != self._wake_r.fileno():
                    try:
                        h(ev)
                    except Exception:  # noqa: BLE001
                        self.logger.exception("%s: error closing a connection", self.cap_name)
        for conn in list(self.connections):
            conn._abort()
        if self._saving is not None:
            try:
                self._saving.result()
            except Exception:  # noqa: BLE001
                self.logger.exception("fleet: writing the meters' state failed")
            self._saving = None
        if self._saver is not None:
            self._saver.shutdown()
            self._saver = None
        self._close_all()

    def _close_all(self):
        for s, _kind, _index in self._listeners:
            s.close()
        self._listeners = []
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._wake_r = self._wake_w = None
        if self._poll is not None:
            self._poll.close()
            self._poll = None
        self._handlers.clear()


def default_max_connections(listeners):
    """Connections the fleet serves at once: what the file limit leaves
    after the listening sockets and 64 for the rest, at most 4096."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 256
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 4096
    return max(1, min(4096, soft - listeners - 64))


def raise_file_limit(need):
    """Raise the soft file limit towards need (up to the hard limit);
    returns the soft limit now."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < need:
            new = need if hard == resource.RLIM_INFINITY else min(need, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return -1


def free_base(count, host="127.0.0.1", start=20000, stop=32768):
    """A base port with count ports free after it (checked by binding
    them), for tests and benchmarks: below the usual ephemeral range
    (32768..) when a window is free there, else anywhere from 1024;
    RuntimeError when there is none."""
    import socket

    bases = list(range(start, stop - count, 97)) + list(range(1024, 65536 - count, 997))
    for base in bases:
        socks = []
        try:
            for i in range(count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, base + i))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no window of %d free ports" % count)
