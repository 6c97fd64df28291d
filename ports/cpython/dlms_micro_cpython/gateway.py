# A meter definition with metering sources or several logical devices,
# served by the CPython port: a retrofit module (S0, optical readout) or a
# gateway (one logical device per upstream Modbus meter, beside the
# module's own logical device 1). `dlms-micro serve --meter FILE` uses it
# for such definitions; MeterService runs it like a SimulatedMeter.
#
#   gw = SourcedMeter(compiled, storage=FileStorage(dir),
#                     devices={"bus": "/dev/pts/7"})     # serve --source
#   ch = gw.make_channel("wrapper")   # routes by wPort / HDLC upper address
#   await gw.start_sources(logger)    # MeterService.start does it
#
# Each logical device is a SimulatedMeter (its clock, profiles, event log,
# what the definition makes it simulate); the sources' values reach the
# objects that name them (dlms_micro.meterdef.sources.Bindings) after every
# poll and once a second, before the profiles capture. The logical devices
# share one key store (one module, one security context: the first
# device's system title and invocation counter).

import logging

from dlms_micro.meterdef import build as mbuild
from dlms_micro.meterdef import sources as msources
from dlms_micro.router import Router
from dlms_micro_cpython.simulator import SimulatedMeter
from dlms_micro_cpython.source_runner import SourceRunner, ticks_ms


def needs_gateway(compiled):
    return bool(getattr(compiled, "SOURCES", ())) or len(compiled.DEVICES) > 1


class SourcedMeter:
    def __init__(self, compiled, storage=None, log=None, devices=None, **kw):
        # devices: {source name: serial device} overriding the definition's;
        # kw: SimulatedMeter's keywords (wall_clock, seed, keys, ...).
        names = [s[0] for s in getattr(compiled, "SOURCES", ())]
        for n in devices or {}:
            if n not in names:
                raise ValueError("--source %s: the definition has no source %r (it has: %s)"
                                 % (n, n, ", ".join(names) or "none"))
        self.compiled = compiled
        self.log = log
        self.sims = []
        for d in range(len(compiled.DEVICES)):
            self.sims.append(SimulatedMeter(compiled, storage=storage, log=log, device=d, **kw))
        first = self.sims[0]
        for s in self.sims[1:]:
            s.meter.keys = first.meter.keys
        self.meter = first.meter
        self.meters = [s.meter for s in self.sims]
        self.step_hooks = first.step_hooks
        self.logical_address = first.logical_address
        self.physical_address = first.physical_address
        self.sources, self.bindings = mbuild.sources(compiled, self.meters, storage, log)
        self.infos = []
        for i in range(len(self.sources)):
            name, kind, device, baud, parity = msources.info(compiled, i)
            self.infos.append((name, kind, (devices or {}).get(name, device), baud, parity))
        if self.bindings is not None:
            for d in range(len(self.sims)):
                self.sims[d].source_status = (lambda _d=d: self.bindings.profile_status(_d))
                self.sims[d].source_status_taken = (lambda _d=d: self.bindings.status_taken(_d))
            self.bind()
        self.runner = None

    # ------------------------------------------------------------ serving

    @property
    def uses_demo_keys(self):
        return self.sims[0].uses_demo_keys

    def sim(self, ld):
        # the SimulatedMeter of logical device ld
        for s in self.sims:
            if s.logical_address == ld:
                return s
        raise KeyError(ld)

    def make_channel(self, kind):
        if len(self.sims) == 1:
            return self.sims[0].make_channel(kind)
        return Router([s.make_channel(kind) for s in self.sims], kind == "wrapper")

    def bind(self):
        # the sources' values into the objects now
        if self.bindings is not None:
            self.bindings.update(ticks_ms(), self.sims[0].now())

    def update(self):
        self.bind()
        for s in self.sims:
            s.update()

    def save(self):
        now = ticks_ms()
        for src in self.sources:
            if hasattr(src, "flush"):
                src.flush(now)  # an S0 count not yet saved
        for s in self.sims:
            s.save()

    def power_down(self):
        try:
            for s in self.sims[1:]:
                s.log_event(1)
        finally:
            self.sims[0].power_down()
            for s in self.sims[1:]:
                s.save()
        for src in self.sources:
            if hasattr(src, "flush"):
                src.flush(ticks_ms())

    # ------------------------------------------------------------ sources

    async def start_sources(self, logger=None):
        logger = logger or logging.getLogger("dlms_micro")
        if not self.sources:
            return
        self.runner = SourceRunner(self.sources, self.infos, lambda i: self.bind(), logger)
        await self.runner.start()
        for name, kind, device, baud, parity in self.infos:
            if kind == "s0":
                logger.info("source %s: s0 (pulses through pulse(); a GPIO needs a board)", name)
            else:
                logger.info("source %s: %s on %s, %d Bd", name, kind, device, baud)

    async def stop_sources(self):
        if self.runner is not None:
            await self.runner.stop()
            self.runner = None

    def source(self, name):
        for i in range(len(self.infos)):
            if self.infos[i][0] == name:
                return self.sources[i]
        raise KeyError(name)
