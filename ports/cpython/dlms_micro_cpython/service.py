# Everything a running demo meter is: the meter, its transports and the
# simulation timer, started and stopped together in one asyncio loop.
#
#   svc = MeterService(demo, wrapper_port=4059, hdlc_port=4060, pty=True)
#   await svc.start()          # svc.endpoints: [(kind, where), ...]
#   await svc.stop()
#
# ThreadedService runs one in a background thread (tests, embedding):
#
#   with ThreadedService(demo, wrapper_port=0, hdlc_port=0) as svc:
#       svc.wrapper_address    # ("127.0.0.1", port)

import asyncio
import logging
import threading

from dlms_micro_cpython.serial_port import PtyLine, SerialLine
from dlms_micro_cpython.tcp import HDLC, IDLE_TIMEOUT, WRAPPER, TcpServer

UPDATE_INTERVAL = 1.0  # seconds between simulation steps
SAVE_INTERVAL = 60.0  # seconds between saves of the persistent state


class MeterService:
    """A served meter: its transports (TCP wrapper, HDLC over TCP, a serial
    line, a pseudo-terminal) and its simulation timer (``update()`` every
    second, ``save()`` every minute), started and stopped together in the
    running asyncio loop.

    demo: the meter (a SimulatedMeter or DemoMeter). wrapper_port,
    hdlc_port: None disables that server, 0 lets the OS pick a port.
    serial: a serial device for HDLC at baudrate; pty: HDLC on a new
    pseudo-terminal (pty_link: a symlink made to it); max_connections and
    idle_timeout: TCP limits per server. After ``start()``, ``endpoints``
    lists ``(kind, where)`` of every transport.
    """

    def __init__(
        self,
        demo,
        host="127.0.0.1",
        wrapper_port=4059,
        hdlc_port=4060,
        serial=None,
        baudrate=9600,
        pty=False,
        pty_link=None,
        logger=None,
        max_connections=None,
        idle_timeout=IDLE_TIMEOUT,
    ):
        # A port of None disables that server; 0 lets the OS pick one.
        self.demo = demo
        self.host = host
        self.wrapper_port = wrapper_port
        self.hdlc_port = hdlc_port
        self.serial = serial
        self.baudrate = baudrate
        self.pty = pty
        self.pty_link = pty_link
        # TCP limits per server (tcp.py LIMITS): None = from the file limit
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.logger = logger or logging.getLogger("dlms_micro")
        self.wrapper = None
        self.hdlc = None
        self.serial_line = None
        self.pty_line = None
        self.endpoints = []
        self._task = None
        self.push = None  # the PushSender, while started
        self._push_in_steps = False

    async def start(self):
        """Open every transport and start the simulation; returns self. A
        transport that cannot start (OSError) stops those already open."""
        make = self.demo.make_channel
        try:
            if self.wrapper_port is not None:
                self.wrapper = await TcpServer(make, WRAPPER, self.host, self.wrapper_port, self.logger,
                                               self.max_connections, self.idle_timeout).start()
                self.endpoints.append(("wrapper", "tcp %s:%d" % (self.host, self.wrapper.port)))
            if self.hdlc_port is not None:
                self.hdlc = await TcpServer(make, HDLC, self.host, self.hdlc_port, self.logger,
                                            self.max_connections, self.idle_timeout).start()
                self.endpoints.append(("hdlc", "tcp %s:%d" % (self.host, self.hdlc.port)))
            if self.serial:
                self.serial_line = await SerialLine(make, self.serial, self.baudrate, self.logger).start()
                self.endpoints.append(("hdlc", "serial %s %d baud" % (self.serial, self.baudrate)))
            if self.pty:
                self.pty_line = await PtyLine(make, self.logger, self.pty_link).start()
                self.endpoints.append(("hdlc", "pty %s" % self.pty_line.path))
        except BaseException:
            await self.stop()
            raise
        from dlms_micro_cpython.push import PushSender

        lines = [x for x in (self.serial_line, self.pty_line) if x is not None]
        self.push = PushSender(self.demo.meter, logger=self.logger, hdlc_lines=lines)
        # pushes are checked at every simulation step (each whole minute of
        # meter time included), so scheduled ones go on their boundaries
        self._push_in_steps = hasattr(self.demo, "step_hooks")
        if self._push_in_steps:
            self.demo.step_hooks.append(self.push.poll_now)
        self._task = asyncio.get_running_loop().create_task(self._simulate())
        if hasattr(self.demo, "start_sources"):
            # metering sources (gateway.py): their serial devices
            await self.demo.start_sources(self.logger)
        return self

    async def _simulate(self):
        loop = asyncio.get_running_loop()
        next_save = loop.time() + SAVE_INTERVAL
        while True:
            await asyncio.sleep(UPDATE_INTERVAL)
            try:
                self.demo.update()
                if not self._push_in_steps:
                    await self.push.poll()  # pushes due now go out on their own tasks
                if loop.time() >= next_save:
                    next_save = loop.time() + SAVE_INTERVAL
                    self.demo.save()
            except Exception:
                self.logger.exception("demo meter update failed")

    async def stop(self):
        """Stop the simulation and every transport, then power the meter
        down (its "power down" event, then its state saved)."""
        if self.push is not None:
            if self._push_in_steps and self.push.poll_now in self.demo.step_hooks:
                self.demo.step_hooks.remove(self.push.poll_now)
            await self.push.stop()
            self.push = None
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if hasattr(self.demo, "stop_sources"):
            try:
                await self.demo.stop_sources()
            except Exception:
                self.logger.exception("error stopping the sources")
        for part in (self.wrapper, self.hdlc, self.serial_line, self.pty_line):
            if part is not None:
                try:
                    await part.stop()
                except Exception:
                    self.logger.exception("error stopping %r", part)
        self.wrapper = self.hdlc = self.serial_line = self.pty_line = None
        try:
            self.demo.power_down()  # the "power down" event, then save()
        except Exception:
            self.logger.exception("could not save the meter's state")

    @property
    def wrapper_address(self):
        """(host, port) of the TCP wrapper server, or None."""
        return (self.host, self.wrapper.port) if self.wrapper else None

    @property
    def hdlc_address(self):
        """(host, port) of the HDLC over TCP server, or None."""
        return (self.host, self.hdlc.port) if self.hdlc else None

    @property
    def pty_path(self):
        """The path of the pseudo-terminal serving HDLC, or None."""
        return self.pty_line.path if self.pty_line else None


class ThreadedService:
    """A MeterService in its own thread and asyncio loop, for tests and
    embedding::

        with ThreadedService(meter, wrapper_port=0, hdlc_port=0) as svc:
            svc.wrapper_address    # ("127.0.0.1", port)

    The keyword arguments are MeterService's; so are the attributes it does
    not have itself (wrapper_address, hdlc_address, pty_path, endpoints).
    Once started, touch the meter only through ``call()``.
    """

    def __init__(self, demo, **kw):
        self.service = MeterService(demo, **kw)
        self.loop = None
        self._thread = None
        self._started = threading.Event()
        self._error = None

    def start(self, timeout=10.0):
        """Start the thread and wait until the transports listen; returns
        self. Raises what MeterService.start raised, or RuntimeError when it
        took more than timeout seconds."""
        self._thread = threading.Thread(target=self._run, name="dlms-micro-meter", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise RuntimeError("meter service did not start in %.0f s" % timeout)
        if self._error is not None:
            raise self._error
        return self

    def _run(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.service.start())
        except BaseException as e:
            self._error = e
            self._started.set()
            self.loop.close()
            return
        self._started.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.service.stop())
            self.loop.close()

    def call(self, fn, *args, timeout=5.0):
        """Run ``fn(*args)`` in the meter's thread and return its result
        (its exception is raised here); waits at most timeout seconds."""
        async def run():
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    def stop(self, timeout=10.0):
        """Stop the loop (MeterService.stop runs in it: the meter powers
        down) and wait up to timeout seconds for the thread to end."""
        if self.loop is not None and self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __getattr__(self, name):
        return getattr(self.service, name)
