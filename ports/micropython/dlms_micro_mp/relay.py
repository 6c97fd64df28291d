# The supply relay a Disconnect control (class 70) drives, on GPIOs named by
# the board file:
#
#   "relay": {"kind": "monostable", "pin": 25, "active_low": false,
#             "feedback": 34, "feedback_active_low": false, "check_ms": 300}
#   "relay": {"kind": "latching", "close_pin": 32, "open_pin": 33,
#             "pulse_ms": 80, "feedback": 34, "check_ms": 300,
#             "button": 35, "button_active_low": true}
#
# or a list of them, one per relay_index of the definition's Disconnect
# control objects (index 0 first).
#
# monostable: one output held at the closed level while the supply is on
#   (the coil energised; active_low: the driver pulls the coil on with 0).
# latching (bistable): two coil outputs, each pulsed for pulse_ms to move
#   the contacts; both rest off, so a restart or a brown-out leaves the
#   contacts where they were. The pulse ends in service(), not by blocking.
# feedback (optional): an input wired to an auxiliary contact, read
#   check_ms after each switch; if it disagrees the switch failed: logged
#   ("relay 0: failed to open, feedback says closed"), counted in
#   Relay.failures, Relay.failed set until a later switch or check agrees.
# button (optional): the customer's reconnect button, an input polled each
#   loop step; held for BUTTON_MS it is one press (Relay.pressed()), which
#   board wiring turns into the Disconnect control's manual_reconnect
#   (ready_for_reconnection -> connected, the modes that allow it).
#   The Disconnect control's state stays what the head-end ordered (its
#   output_state is the order, the feedback the field's answer).
#
# The Disconnect control's state persists in the storage (every change, at
# once); at boot board.build restores it and drives the relay to it, so a
# supply opened before a restart stays open after it.

from dlms_micro.ticks import ticks_diff

try:
    from time import ticks_ms  # type: ignore[attr-defined]
except ImportError:  # CPython
    import time as _t

    def ticks_ms():
        return int(_t.monotonic() * 1000) & ((1 << 30) - 1)


BUTTON_MS = 50  # a press: the button held this long (contact bounce is shorter)


class Relay:
    def __init__(self, cfg, pin_class, log=None, index=0):
        kind = cfg.get("kind", "monostable")
        if kind not in ("monostable", "latching"):
            raise ValueError("relay %d: kind %r, not monostable or latching" % (index, kind))
        self.index = index
        self.kind = kind
        self.log = log
        self.low = 1 if cfg.get("active_low") else 0  # XOR: the level of "on"
        out = pin_class.OUT
        if kind == "monostable":
            self.pin = pin_class(cfg["pin"], out)
            self.coils = None
        else:
            # both coils off before either moves
            self.coils = (pin_class(cfg["open_pin"], out, value=self.low),
                          pin_class(cfg["close_pin"], out, value=self.low))
            self.pulse_ms = cfg.get("pulse_ms", 100)
        fb = cfg.get("feedback")
        self.feedback = None if fb is None else pin_class(fb, pin_class.IN)
        self.fb_low = 1 if cfg.get("feedback_active_low") else 0
        self.check_ms = cfg.get("check_ms", 300)
        b = cfg.get("button")
        self.button = None if b is None else pin_class(b, pin_class.IN)
        self.button_low = 1 if cfg.get("button_active_low") else 0
        self._down_at = None  # ticks the button went down, None: up
        self._press = False  # a press not yet taken
        self.closed = None  # what was last ordered (None: nothing yet)
        self.failed = False
        self.failures = 0
        self._pulse = None  # the coil pulsed, or None
        self._pulse_at = 0
        self._check_at = None

    def set(self, closed, now=None):
        # Drive the contacts to closed (True: supply on) or open.
        now = ticks_ms() if now is None else now
        self.closed = closed
        if self.coils is None:
            self.pin.value((1 if closed else 0) ^ self.low)
        else:
            if self._pulse is not None:
                self._pulse.value(self.low)
            coil = self.coils[1 if closed else 0]
            self.coils[0 if closed else 1].value(self.low)
            coil.value(1 ^ self.low)
            self._pulse = coil
            self._pulse_at = now
        if self.feedback is not None:
            self._check_at = now

    def sensed(self):
        # the feedback contact: True closed, False open, None: no feedback
        if self.feedback is None:
            return None
        return bool(self.feedback.value() ^ self.fb_low)

    def service(self, now):
        if self.button is not None:
            self._poll_button(now)
        if self._pulse is not None and ticks_diff(now, self._pulse_at) >= self.pulse_ms:
            self._pulse.value(self.low)
            self._pulse = None
        if self._check_at is not None and ticks_diff(now, self._check_at) >= self.check_ms:
            self._check_at = None
            got = self.sensed()
            if got != self.closed:
                self.failures += 1
                self.failed = True
                if self.log is not None:
                    self.log("relay %d: failed to %s, feedback says %s" % (
                        self.index, "close" if self.closed else "open", "closed" if got else "open"))
            elif self.failed:
                self.failed = False
                if self.log is not None:
                    self.log("relay %d: %s, feedback agrees" % (self.index, "closed" if got else "open"))

    def _poll_button(self, now):
        down = bool(self.button.value() ^ self.button_low)
        if not down:
            self._down_at = None
        elif self._down_at is None:
            self._down_at = now
        elif self._down_at is not False and ticks_diff(now, self._down_at) >= BUTTON_MS:
            self._down_at = False  # one press per push: released before the next
            self._press = True

    def pressed(self):
        # True once per press of the button
        p = self._press
        self._press = False
        return p

    def busy(self):
        # a pulse or a check is pending (the loop must not sleep long)
        return self._pulse is not None or self._check_at is not None


def make(cfg, pin_class, log=None):
    # The board file's "relay" (one or a list) as a tuple of Relay, () when
    # it has none.
    r = cfg.get("relay")
    if r is None:
        return ()
    if isinstance(r, dict):
        r = (r,)
    return tuple(Relay(c, pin_class, log, i) for i, c in enumerate(r))


def driver(relays, log=None):
    # meter.relay for the Disconnect control: (index, closed) -> the relay
    # of that index; an index the board has no relay for is logged.
    def drive(index, closed):
        if 0 <= index < len(relays):
            relays[index].set(closed)
        elif log is not None:
            log("relay %d: the board file names no such relay (%d configured)" % (index, len(relays)))

    return drive
