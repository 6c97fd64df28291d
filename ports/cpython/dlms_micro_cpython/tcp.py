# asyncio TCP servers for a dlms_micro meter: the TCP wrapper (IEC 62056-47,
# default port 4059) and HDLC over TCP (default port 4060). Every TCP
# connection gets its own Channel (its own link and association), so several
# clients can be served at once; a per-connection timer polls the channel so
# that link timeouts fire.
#
#   srv = TcpServer(make_channel, "wrapper", "127.0.0.1", 4059, log=logger)
#   await srv.start()            # srv.port: the port bound (0 picks one)
#   ...
#   await srv.stop()             # closes the listener and every connection
#
# make_channel(kind) returns a new dlms_micro.server.Channel for kind
# "wrapper" or "hdlc-tcp" (HDLC over TCP).
#
# LIMITS (issue 18: 300 idle connections to a process limited to 256 files
# served no one and logged ~970 accept() tracebacks a second):
# - max_connections per server (default: 64, less when the process's file
#   limit is low): a connection beyond it is closed as soon as it is
#   accepted. One log line when the cap is reached and one when connections
#   are taken again, not one per refusal; likewise one line per episode when
#   accept() itself fails for want of file descriptors (EMFILE, ENFILE),
#   instead of asyncio's traceback per attempt.
# - idle_timeout (default 120 s, as the TCP-UDP setup's inactivity_time_out
#   counts it): a connection is closed when the meter has sent nothing on it
#   for that long, counted from accept, so a connection that never sends a
#   frame, a half-open one, and a client trickling one byte a second (bytes
#   that never make a request do not count) cannot hold a connection past it.
#   The HDLC inactivity timeout (after SNRM) still applies inside it.
# - per-connection buffers: the link's (sized by its max APDU / frame); a
#   client that does not read its answers makes the meter stop reading it
#   (asyncio flow control above WRITE_BUFFER_HIGH bytes), so its replies
#   cannot pile up in memory.

import asyncio
import errno
import logging

from dlms_micro_cpython.decode import summary as frame_summary
from dlms_micro_cpython.driver import POLL_INTERVAL, ChannelDriver

WRAPPER = "wrapper"
HDLC = "hdlc"
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 120.0  # seconds without anything sent
WRITE_BUFFER_HIGH = 64 * 1024
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def default_max_connections(servers=2):
    """MAX_CONNECTIONS, or less when the process may open few files: half
    of what the limit leaves after 64 for the rest of the process, shared
    by the servers."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return MAX_CONNECTIONS
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return MAX_CONNECTIONS
    return max(1, min(MAX_CONNECTIONS, (soft - 64) // (2 * servers)))


# The receive buffer and flow control of this server; the connection cap's
# bookkeeping, shared with the fleet's loop (fleet_net.py).

RECV_BUFFER = 16 * 1024
_recv_buffer = bytearray(RECV_BUFFER)


class _BufferedConnection(asyncio.BufferedProtocol):
    """A connection that reads into one receive buffer shared by every
    connection of the thread (asyncio hands it to one connection at a
    time, and buffer_updated consumes it before returning) instead of
    asyncio's new 256 KiB bytes object per read. Measured as
    bench_fleet.py measures a server: a fresh process answering a fixed
    reply took 50-60 us of CPU per request with an asyncio Protocol,
    18-20 us with a BufferedProtocol (a bare epoll loop 13-20 us); in the
    fleet, whose allocator has long raised its mmap threshold, the two
    measured the same (44-50 us per plain GET). Subclasses define
    received(buf, n): the n bytes in buf[:n], valid until it returns. A
    client that does not read its answers makes the connection stop
    reading it (above WRITE_BUFFER_HIGH bytes waiting)."""

    transport = None

    def get_buffer(self, sizehint):
        return _recv_buffer

    def buffer_updated(self, nbytes):
        self.received(_recv_buffer, nbytes)

    def pause_writing(self):
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self):
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class _ConnectionCap:
    """The cap on connections at once: refused() when one is closed at
    accept for it, closed() when one ends; one log line per episode, not
    one per refusal. Needs logger, max_connections, connections and
    cap_name (the log lines' subject)."""

    refusals = 0  # connections closed at accept for the cap, since start
    _at_cap = 0  # refusals in the current episode (0: below the cap)

    def refused(self):
        """A connection was closed at accept for the cap (called by the
        connection): counted, logged once per episode."""
        self.refusals += 1
        if not self._at_cap:
            self.logger.warning(
                "%s: %d connections, the cap: further connections are closed at once until one ends",
                self.cap_name, self.max_connections)
        self._at_cap += 1

    def closed(self):
        """A connection ended (called by it): below the cap again."""
        if self._at_cap and len(self.connections) < self.max_connections:
            self.logger.warning("%s: below the connection cap again (%d connections refused meanwhile)",
                                self.cap_name, self._at_cap)
            self._at_cap = 0


class _Connection(_BufferedConnection):
    def __init__(self, server):
        self.server = server
        self.transport = None
        self.driver = None
        self.peer = "?"
        self._timer = None
        self._closing = False
        self._last_sent = 0.0  # loop time of accept, then of the last send
        self._refused = False

    # asyncio.Protocol

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = "%s:%s" % (peer[0], peer[1])
        srv = self.server
        log = srv.logger
        name = "%s %s" % (srv.kind, self.peer)
        srv.resource_ok()
        if len(srv.connections) >= srv.max_connections:
            # Over the cap: closed at once (srv logs the episode once).
            self._refused = True
            srv.refused()
            transport.abort()
            return
        self._last_sent = asyncio.get_running_loop().time()
        transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH)

        def core_log(msg, _name=name):
            log.info("%s: %s", _name, msg)

        try:
            ch = srv.make_channel("hdlc-tcp" if srv.kind == HDLC else WRAPPER)
        except OSError as e:
            # out of file descriptors or memory for a channel: closed at once,
            # said once per episode
            self._refused = True
            if e.errno in _RESOURCE_ERRNOS:
                srv.out_of_files(e)
            else:
                log.error("%s: cannot serve this connection: %s", name, e)
            transport.abort()
            return
        if hasattr(ch, "set_log"):
            ch.set_log(core_log)
        else:
            ch.log = core_log
        self.driver = ChannelDriver(ch, self._write, self._close_from_channel, core_log)
        srv.connections.add(self)
        log.info("%s: connected", name)
        self._schedule()

    def received(self, buf, n):
        data = bytes(buf[:n])
        if _debug_on(self.server.logger):
            self.server.logger.debug("%s %s rx %s (%s)", self.server.kind, self.peer, data.hex(),
                                     frame_summary(data, self.server.kind))
        try:
            self.driver.data_received(data)
        except Exception:  # a bug in the core must not take the server down
            self.server.logger.exception("%s %s: error serving data; closing", self.server.kind, self.peer)
            self._abort()

    def connection_lost(self, exc):
        if self._refused:
            return
        self._cancel_timer()
        if self.driver is not None:
            try:
                self.driver.connection_lost()
            except Exception:
                self.server.logger.exception("%s %s: error closing channel", self.server.kind, self.peer)
        self.server.connections.discard(self)
        self.server.closed()
        self.server.logger.info("%s %s: disconnected", self.server.kind, self.peer)

    # driver callbacks

    def _write(self, data):
        if _debug_on(self.server.logger):
            self.server.logger.debug("%s %s tx %s (%s)", self.server.kind, self.peer, data.hex(),
                                     frame_summary(data, self.server.kind))
        if self.transport is not None and not self.transport.is_closing():
            self._last_sent = asyncio.get_running_loop().time()
            self.transport.write(data)

    def _close_from_channel(self):
        self.server.logger.info("%s %s: closed by the channel", self.server.kind, self.peer)
        self._closing = True
        if self.transport is not None:
            self.transport.close()  # after what was written has been sent

    def _abort(self):
        self._closing = True
        if self.transport is not None:
            self.transport.abort()

    # timer

    def _schedule(self):
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(POLL_INTERVAL, self._tick)

    def _tick(self):
        self._timer = None
        if self._closing or self.driver is None or self.driver.closed:
            return
        try:
            self.driver.poll()
        except Exception:
            self.server.logger.exception("%s %s: error in timer poll; closing", self.server.kind, self.peer)
            self._abort()
            return
        srv = self.server
        idle = asyncio.get_running_loop().time() - self._last_sent
        if srv.idle_timeout and idle >= srv.idle_timeout and not self._closing:
            srv.logger.info("%s %s: nothing to answer for %.0f s since it connected or was last answered: closed",
                            srv.kind, self.peer, idle)
            self._abort()
            return
        if not self._closing:
            self._schedule()

    def _cancel_timer(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self):
        self._closing = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.close()


def _debug_on(logger):
    return logger.isEnabledFor(logging.DEBUG)


class TcpServer(_ConnectionCap):
    """An asyncio TCP server of one kind, "wrapper" (IEC 62056-47) or
    "hdlc" (HDLC over TCP): each connection gets its own Channel from
    make_channel(kind) (SimulatedMeter.make_channel), polled so that link
    timeouts fire. port 0 picks a free one (``port`` is then the one
    bound). max_connections (None: default_max_connections()) and
    idle_timeout (seconds, 0: none) limit what clients can hold.
    """

    def __init__(self, make_channel, kind, host="127.0.0.1", port=4059, logger=None, max_connections=None,
                 idle_timeout=IDLE_TIMEOUT):
        # max_connections: None = default_max_connections(); idle_timeout:
        # seconds (0: none). See LIMITS above.
        if kind not in (WRAPPER, HDLC):
            raise ValueError("kind must be 'wrapper' or 'hdlc'")
        self.make_channel = make_channel
        self.kind = kind
        self.host = host
        self.port = port
        self.logger = logger or logging.getLogger("dlms_micro.tcp")
        self.connections = set()
        self.max_connections = default_max_connections() if max_connections is None else max_connections
        self.idle_timeout = idle_timeout
        self.cap_name = kind
        self._out_of_files = 0  # accept() failures in the current episode
        self._last_out_of_files = 0.0
        self._previous_handler = None
        self._server = None

    def resource_ok(self):
        """accept() worked: the end of an out-of-files episode, unless the
        connection was accepted before the last failure (asyncio tries up
        to 100 accepts per wake-up, and retries a second after a
        failure)."""
        if self._out_of_files and asyncio.get_running_loop().time() - self._last_out_of_files > 0.5:
            self.logger.warning("%s: accepting connections again (accept() failed %d times for want of file "
                                "descriptors)", self.kind, self._out_of_files)
            self._out_of_files = 0

    def out_of_files(self, exc):
        """accept() failed for want of file descriptors: logged once per
        episode."""
        if not self._out_of_files:
            self.logger.error("%s: cannot accept connections: %s (the process's file limit; lower "
                              "max_connections or raise `ulimit -n`); retrying every second, said once",
                              self.kind, exc)
        self._out_of_files += 1
        self._last_out_of_files = asyncio.get_running_loop().time()

    def _exception_handler(self, loop, context):
        # asyncio reports accept() failures here, one traceback each time;
        # those of our listening socket become one line per episode.
        exc = context.get("exception")
        sock = context.get("socket")
        if (isinstance(exc, OSError) and exc.errno in _RESOURCE_ERRNOS and sock is not None
                and self._server is not None and any(sock.fileno() == s.fileno() for s in self._server.sockets)):
            self.out_of_files(exc)
            return
        if self._stopped and isinstance(exc, ValueError) and "_start_serving" in repr(context.get("handle")):
            # asyncio's retry of accept() after an out-of-files pause fires
            # after stop() closed the listener: nothing is left to serve
            self.logger.debug("%s: accept retry after stop ignored", self.kind)
            return
        if self._previous_handler is not None:
            self._previous_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    async def start(self):
        """Listen; returns self (``port``: the port bound)."""
        loop = asyncio.get_running_loop()
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._exception_handler)
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port, reuse_address=True)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        return self

    @property
    def address(self):
        """(host, port) listened on."""
        return (self.host, self.port)

    _stopped = False

    async def stop(self):
        """Close the listener and every connection."""
        self._stopped = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        # Give the transports a moment to flush and report connection_lost.
        for _ in range(50):
            if not self.connections:
                break
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            conn._abort()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
