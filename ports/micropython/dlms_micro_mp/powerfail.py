# Energy registers across power cuts on a board (issue 18, item 1).
#
# The loop's service keeps the energy registers (App.energy_slots: import
# and export active energy) in the storage record "energy" (8 bytes,
# big-endian, the one board.build() restores at boot):
#   - when a value changes, put_lazy(): RAM now, flash at most every
#     FlashStorage.min_interval_ms (default 60 s: bounded flash wear). A
#     board that cannot see its supply drop loses at most what it counted in
#     the last min_interval_ms: THE BOUND. After a power cut the registers
#     read what was stored, which is never more than what was counted (never
#     a value ahead of the meter), and at most one interval's energy less.
#   - when the supply drops, at once: a board file's "power_fail" names the
#     GPIO of a supply monitor (a comparator on the unregulated input, a
#     supervisor's PFO/brown-out output) and the level it shows on a drop:
#         "power_fail": {"pin": 34, "level": 0, "pull": "up"}
#     The pin's edge interrupt only raises a flag (no allocation, no flash
#     write inside an interrupt); the next loop step (within a few ms)
#     writes every pending value with FlashStorage.service(force=True): one
#     record write, ~10-30 ms on the ESP32's LittleFS. With a hold-up
#     capacitor that covers it, nothing counted is lost beyond the write in
#     flight. The pin is also read at each step, so a missed edge still
#     saves. The flag clears when the supply comes back.
#
#   app = board.build(cfg, storage)
#   app.loop.service = powerfail.attach(cfg, app.meter, app.storage, app.energy_slots, app.loop.service)

KEY = "energy"


class EnergySaver:
    # sense: machine.Pin of the supply monitor or None; level: its value on
    # a drop; inner: the service it wraps (called after it)
    def __init__(self, meter, storage, slots, sense=None, level=0, inner=None):
        self.meter = meter
        self.storage = storage
        self.s_imp = slots[0]
        self.s_exp = slots[1]
        self.sense = sense
        self.level = level
        self.inner = inner
        self.rec = bytearray(8)
        self.failing = False  # set by the interrupt
        self.saved = False  # the drop's save is done
        self.saves = 0  # power-fail saves since boot
        self._fill(self.rec)
        self._last = bytearray(self.rec)
        if sense is not None and hasattr(sense, "irq"):
            trig = sense.IRQ_FALLING if level == 0 else sense.IRQ_RISING
            sense.irq(trigger=trig, handler=self._irq)

    def _irq(self, pin):
        self.failing = True

    def _fill(self, rec):
        # the record in place (no tuple per loop step: 0 B allocated while
        # the values stay below 2**30)
        # A register a source drives holds None until its first reading
        # (null-data): its half of the record stays as it was.
        st = self.meter.state
        v = st[self.s_imp] if self.s_imp >= 0 else 0
        if v is not None:
            _put32(rec, 0, v)
        v = st[self.s_exp] if self.s_exp >= 0 else 0
        if v is not None:
            _put32(rec, 4, v)

    def __call__(self, now):
        rec = self.rec
        self._fill(rec)
        if rec != self._last:
            self._last[:] = rec
            self.storage.put_lazy(KEY, rec)
        low = self.sense is not None and self.sense.value() == self.level
        if (self.failing or low) and not self.saved:
            self.storage.service(now, True)  # every pending value, now
            self.saved = True
            self.saves += 1
        else:
            self.storage.service(now)  # at most every min_interval_ms
            if self.saved and not low and not self.failing:
                self.saved = False  # the supply is back: the next drop saves again
        self.failing = False
        if self.inner is not None:
            self.inner(now)


def _put32(b, off, v):
    b[off] = (v >> 24) & 0xFF
    b[off + 1] = (v >> 16) & 0xFF
    b[off + 2] = (v >> 8) & 0xFF
    b[off + 3] = v & 0xFF


def attach(cfg, meter, storage, slots, inner=None, pin_factory=None):
    # The loop's service for a board file cfg: an EnergySaver around inner,
    # with the supply monitor of cfg["power_fail"] when there is one.
    if storage is None or (slots[0] < 0 and slots[1] < 0):
        return inner
    pf = cfg.get("power_fail")
    sense = None
    level = 0
    if pf:
        level = pf.get("level", 0)
        if pin_factory is None:
            import machine

            pin_factory = machine.Pin
        pull = pf.get("pull")
        if pull:
            sense = pin_factory(pf["pin"], pin_factory.IN, pin_factory.PULL_UP if pull == "up" else
                                pin_factory.PULL_DOWN)
        else:
            sense = pin_factory(pf["pin"], pin_factory.IN)
    return EnergySaver(meter, storage, slots, sense, level, inner)
