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

import asyncio
import logging

from dlms_micro_cpython.driver import POLL_INTERVAL, ChannelDriver

WRAPPER = "wrapper"
HDLC = "hdlc"


class _Connection(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.transport = None
        self.driver = None
        self.peer = "?"
        self._timer = None
        self._closing = False

    # asyncio.Protocol

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = "%s:%s" % (peer[0], peer[1])
        srv = self.server
        log = srv.logger
        name = "%s %s" % (srv.kind, self.peer)

        def core_log(msg, _name=name):
            log.info("%s: %s", _name, msg)

        ch = srv.make_channel("hdlc-tcp" if srv.kind == HDLC else WRAPPER)
        if hasattr(ch, "set_log"):
            ch.set_log(core_log)
        else:
            ch.log = core_log
        self.driver = ChannelDriver(ch, self._write, self._close_from_channel, core_log)
        srv.connections.add(self)
        log.info("%s: connected", name)
        self._schedule()

    def data_received(self, data):
        if _debug_on(self.server.logger):
            self.server.logger.debug("%s %s rx %s", self.server.kind, self.peer, data.hex())
        try:
            self.driver.data_received(data)
        except Exception:  # a bug in the core must not take the server down
            self.server.logger.exception("%s %s: error serving data; closing", self.server.kind, self.peer)
            self._abort()

    def connection_lost(self, exc):
        self._cancel_timer()
        if self.driver is not None:
            try:
                self.driver.connection_lost()
            except Exception:
                self.server.logger.exception("%s %s: error closing channel", self.server.kind, self.peer)
        self.server.connections.discard(self)
        self.server.logger.info("%s %s: disconnected", self.server.kind, self.peer)

    # driver callbacks

    def _write(self, data):
        if _debug_on(self.server.logger):
            self.server.logger.debug("%s %s tx %s", self.server.kind, self.peer, data.hex())
        if self.transport is not None and not self.transport.is_closing():
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


class TcpServer:
    def __init__(self, make_channel, kind, host="127.0.0.1", port=4059, logger=None):
        if kind not in (WRAPPER, HDLC):
            raise ValueError("kind must be 'wrapper' or 'hdlc'")
        self.make_channel = make_channel
        self.kind = kind
        self.host = host
        self.port = port
        self.logger = logger or logging.getLogger("dlms_micro.tcp")
        self.connections = set()
        self._server = None

    async def start(self):
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port, reuse_address=True)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        return self

    @property
    def address(self):
        return (self.host, self.port)

    async def stop(self):
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
