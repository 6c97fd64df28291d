# The metering sources of a meter definition driven over serial devices
# (pyserial: USB adapters, a pseudo-terminal in the tests), in the port's
# asyncio loop: a PC with an RS-485 adapter and an optical head is a
# retrofit module or a gateway.
#
#   runner = SourceRunner(sources, infos, on_done, logger)
#   await runner.start()          # one task: reads, feeds, sends, every 5 ms
#   ...
#   await runner.stop()
#
# sources: the sans-IO sources (dlms_micro.meterdef.sources.make); infos:
# (name, kind, device, baud, parity) of each (the definition's, with
# `serve --source NAME=DEVICE` applied); on_done(i): source i ended a poll.
# EV_SEND: the bytes are written (an RS-485 adapter switches its driver
# itself); EV_BAUD: the output drains (tcdrain), then the line takes the
# source's rate, data bits and parity (IEC 62056-21: 7E1).
# A device that cannot be opened, or fails (unplugged): logged once, tried
# again every REOPEN_S seconds; meanwhile the source runs on and its
# requests go nowhere, so it times out, goes STALE and recovers by itself
# once the device is back. S0 sources need a GPIO: on a PC they take pulses
# from pulse(i, n) (a test, a counter read elsewhere).

import asyncio
import logging
import time

from dlms_micro_cpython.driver import ticks_ms

EV_NONE = 0
EV_SEND = 1
EV_BAUD = 6
EV_DONE = 8
STEP_S = 0.005
REOPEN_S = 2.0
_PARITY = {"none": "N", "even": "E", "odd": "O"}


class SerialSource:
    # One source and its serial device.
    def __init__(self, name, src, device, baud, parity, logger):
        self.name = name
        self.src = src
        self.device = device
        self.baud = baud
        self.parity = parity
        self.logger = logger
        self.port = None
        self._next_open = 0.0
        self._open_failed = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.dropped = 0  # bytes the source sent while the device was away

    def open(self):
        import serial  # pyserial

        bits = 7 if getattr(self.src, "data_bits", 8) == 7 else 8
        parity = _PARITY.get(self.parity, "N")
        if bits == 7 and parity == "N":
            parity = "E"
        try:
            self.port = serial.Serial(self.device, self.src_baud(), bytesize=bits, parity=parity, stopbits=1,
                                      timeout=0, write_timeout=2)
        except (OSError, ValueError, serial.SerialException) as e:
            if not self._open_failed:
                self.logger.warning("source %s: cannot open %s: %s (tried again every %g s)", self.name,
                                    self.device, e, REOPEN_S)
            self._open_failed = True
            self.port = None
            self._next_open = time.monotonic() + REOPEN_S
            return False
        if self._open_failed:
            self.logger.info("source %s: %s open again", self.name, self.device)
        self._open_failed = False
        return True

    def src_baud(self):
        return getattr(self.src, "baud", self.baud) or self.baud

    def close(self):
        if self.port is not None:
            try:
                self.port.close()
            except Exception:  # noqa: BLE001 (closing a dead device)
                pass
            self.port = None

    def _lost(self, e):
        self.logger.warning("source %s: %s failed: %s (tried again every %g s)", self.name, self.device, e,
                            REOPEN_S)
        self._open_failed = True
        self.close()
        self._next_open = time.monotonic() + REOPEN_S

    def step(self, now):
        # Read, feed, act on the source's events; returns True when a poll
        # ended.
        import serial

        src = self.src
        if self.port is None and time.monotonic() >= self._next_open:
            self.open()
        port = self.port
        if port is not None:
            try:
                n = port.in_waiting
                data = port.read(n) if n else b""
            except (OSError, serial.SerialException) as e:
                self._lost(e)
                data = b""
            if data:
                self.bytes_in += len(data)
                src.feed(data, 0, len(data), now)
        done = False
        for _ in range(100):
            ev = src.next_event(now)
            if ev == EV_NONE:
                break
            if ev == EV_SEND:
                out = bytes(src.tx_buf[src.tx_start:src.tx_end])
                if self.port is None:
                    self.dropped += len(out)
                    continue
                try:
                    self.port.write(out)
                    self.bytes_out += len(out)
                except (OSError, serial.SerialException) as e:
                    self._lost(e)
            elif ev == EV_BAUD:
                if self.port is not None:
                    try:
                        self.port.flush()  # tcdrain: the last byte is on the line
                        self.port.baudrate = src.baud
                    except (OSError, ValueError, serial.SerialException) as e:
                        self._lost(e)
            elif ev == EV_DONE:
                done = True
        return done


class SourceRunner:
    def __init__(self, sources, infos, on_done=None, logger=None):
        self.logger = logger or logging.getLogger("dlms_micro.sources")
        self.sources = sources
        self.on_done = on_done
        self.lines = []
        for i in range(len(sources)):
            name, kind, device, baud, parity = infos[i]
            src = sources[i]
            if kind == "s0":
                self.lines.append(None)
                continue
            src.log = (lambda msg, _n=name: self.logger.warning("source %s: %s", _n, msg))
            self.lines.append(SerialSource(name, src, device, baud, parity, self.logger))
        self._task = None

    def pulse(self, i, n=1):
        # n pulses on S0 source i (counted by something else than a GPIO)
        self.sources[i].pulses(n, ticks_ms())

    async def start(self):
        for line in self.lines:
            if line is not None:
                line.open()
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def step(self):
        now = ticks_ms()
        for i in range(len(self.lines)):
            line = self.lines[i]
            if line is None:
                self.sources[i].tick(now)  # S0: periodic save, end of a bounce storm
                continue
            try:
                done = line.step(now)
            except Exception:  # noqa: BLE001 (a bug in one source must not stop the others)
                self.logger.exception("source %s failed", line.name)
                continue
            if done and self.on_done is not None:
                try:
                    self.on_done(i)
                except Exception:  # noqa: BLE001
                    self.logger.exception("binding the values of source %s failed", line.name)

    async def _run(self):
        while True:
            self.step()
            await asyncio.sleep(STEP_S)

    async def stop(self):
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for line in self.lines:
            if line is not None:
                line.close()
