# The fleet's TCP side: one port per meter (wrapper and/or HDLC over TCP,
# meter i on BASE + i - first_index) and one shared HDLC port routed by the
# HDLC server physical address of the first frame (meter i at 16 + i).
#
#   net = FleetNet(fleet, host, wrapper_base=4059, hdlc_base=None, shared_hdlc_port=4060)
#   await net.start()        # net.endpoints: [(kind, where), ...]
#   await net.stop()
#
# LIMITS (a head-end may open thousands of connections at once): one cap
# for the whole fleet (max_connections; beyond it a connection is closed at
# accept, said once per episode), bounded memory per connection (the
# channel's link buffers; on the shared port at most ROUTE_BUFFER bytes
# wait for the first frame's address), no queue of replies (a client that
# does not read makes the meter stop reading it), and an idle timeout
# counted from accept and from each answer. One timer for the whole fleet
# (every SWEEP_INTERVAL s) polls the links' timeouts, closes idle
# connections, saves the meters that changed and re-reads a faults file.
#
# Each connection serves one meter: a per-meter port's, or on the shared
# port the meter its first frame addresses (a frame to a physical address
# no meter has is dropped, as on a bus; a frame with no physical address,
# one byte of destination address, is for meter first_index only when the
# fleet has one meter).

import asyncio
import errno
import functools
import logging
import time

from dlms_micro.ticks import TICKS_MASK
from dlms_micro_cpython.tcp import _BufferedConnection, _ConnectionCap

WRAPPER = "wrapper"
HDLC = "hdlc"
IDLE_TIMEOUT = 120.0
SWEEP_INTERVAL = 1.0
SAVE_INTERVAL = 60.0
UPDATE_INTERVAL = 1.0  # s: a meter's registers are brought up to date at most this often
WRITE_BUFFER_HIGH = 64 * 1024
ROUTE_BUFFER = 2048
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_EV_NONE = 0
_EV_SEND = 1
_EV_CLOSE = 5


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


class FleetConnection(_BufferedConnection):
    """One TCP connection to one meter of the fleet."""

    def __init__(self, net, kind, index):
        self.net = net
        self.kind = kind
        self.index = index  # None on the shared port until routed
        self.transport = None
        self.meter = None
        self.ch = None
        self.peer = "?"
        self.last_sent = 0.0
        self.closing = False
        self.refused = False
        self._pending = None  # shared port: bytes before the first frame's address

    def connection_made(self, transport):
        net = self.net
        self.transport = transport
        if len(net.connections) >= net.max_connections:
            self.refused = True
            net.refused()
            transport.abort()
            return
        net.connections.add(self)
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = "%s:%s" % (peer[0], peer[1])
        self.last_sent = time.monotonic()
        if self.index is not None:
            self._bind(self.index)
        else:
            self._pending = bytearray()

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
        net.touched.add(i)
        log.debug("%s: connected", name)
        return True

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
                self.transport.close()
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
                asyncio.get_running_loop().call_later(f.value / 1000.0, self._write, out)
                return
        self._write(out)

    def _write(self, out):
        t = self.transport
        if t is not None and not t.is_closing():
            self.last_sent = time.monotonic()
            t.write(out)

    def connection_lost(self, exc):
        if self.refused:
            return
        net = self.net
        net.connections.discard(self)
        net.closed()
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

    def _abort(self):
        self.closing = True
        if self.transport is not None:
            self.transport.abort()


class FleetNet(_ConnectionCap):
    """The fleet's TCP servers. indices: the meters this process serves
    (default: the whole fleet). wrapper_base / hdlc_base: meter i's port
    is base + i - fleet.first_index (None: none); shared_hdlc_port: one
    HDLC port for every meter (None: none). max_connections: for the
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
        self.servers = []
        self.endpoints = []
        self.shared_port = None
        self.cap_name = "fleet"
        self._task = None
        self._saving = None  # the state write in progress (a Future)

    async def start(self):
        loop = asyncio.get_running_loop()
        first = self.fleet.first_index
        try:
            for kind, base in ((WRAPPER, self.wrapper_base), (HDLC, self.hdlc_base)):
                if base is None:
                    continue
                for i in self.indices:
                    srv = await loop.create_server(functools.partial(FleetConnection, self, kind, i), self.host,
                                                   base + i - first, reuse_address=True)
                    self.servers.append(srv)
                lo, hi = self.indices[0], self.indices[-1]
                self.endpoints.append((kind, "tcp %s:%d-%d (meter %d on port %d + i - %d)" % (
                    self.host, base + lo - first, base + hi - first, lo, base, first)))
            if self.shared_hdlc_port is not None:
                srv = await loop.create_server(functools.partial(FleetConnection, self, HDLC, None), self.host,
                                               self.shared_hdlc_port, reuse_address=True)
                self.servers.append(srv)
                self.shared_port = srv.sockets[0].getsockname()[1]
                self.endpoints.append(("hdlc", "tcp %s:%d shared (meter i at physical address 16 + i)" % (
                    self.host, self.shared_port)))
        except BaseException:
            await self.stop()
            raise
        self._task = loop.create_task(self._sweep())
        return self

    def port_of(self, kind, i):
        """The TCP port of meter i's wrapper or HDLC server (per meter)."""
        base = self.wrapper_base if kind == WRAPPER else self.hdlc_base
        return base + i - self.fleet.first_index

    async def _sweep(self):
        next_save = time.monotonic() + SAVE_INTERVAL
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            mono = time.monotonic()
            for conn in list(self.connections):
                conn.poll(mono)
            faults = self.fleet.faults
            if faults is not None:
                try:
                    faults.poll()
                except Exception:  # noqa: BLE001
                    self.logger.exception("fleet: reading the faults file failed")
            if mono >= next_save:
                next_save = mono + SAVE_INTERVAL
                self.save_touched()

    def save_touched(self):
        # the meters served since the last save: their state to RAM here,
        # the disk writes in a thread (the loop keeps serving); one save at
        # a time (a slow disk skips rounds, never piles them up)
        if self._saving is not None and not self._saving.done():
            return
        touched, self.touched = self.touched, set()
        blobs = self.fleet.snapshots(touched)
        if blobs:
            self._saving = asyncio.get_running_loop().run_in_executor(None, self.fleet.write_all, blobs)

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for srv in self.servers:
            srv.close()
        for conn in list(self.connections):
            conn.closing = True
            if conn.transport is not None:
                conn.transport.close()
        for _ in range(50):
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn._abort()
        for srv in self.servers:
            await srv.wait_closed()
        self.servers = []
        if self._saving is not None:
            await self._saving


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
