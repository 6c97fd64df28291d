# The board's clock across restarts and clock sets. The meter's time is the
# port's wall clock plus the Clock object's offset (dlms_micro.cosem.clock):
# on an ESP32 the wall clock is machine.RTC (time.time()), which keeps
# running across a soft reset and light sleep; on the unix firmware it is
# the host's clock. What a SET of the time (or shift_time, adjust_*) changes
# is the offset, and this service makes it last:
#   - the offset is stored (storage key "clock.offset", 5 bytes: sign and
#     4 bytes of seconds) when it changes and put back at boot, so the
#     time a head-end set survives a restart;
#   - a change is a clock adjustment: where the definition has an event
#     code object and event logs (the retrofits), events 4 (clock adjusted,
#     old time) and 5 (new time) are logged as the host simulator logs them;
#   - every periodic profile and Push setup resyncs to the new time's
#     period boundaries (profile.resync, push.resync), as on the host.
# A cold boot of an ESP32 starts its RTC at 2000-01-01: the wall clock is
# then below VALID_FROM and the board should sync it (ntptime on a board
# with a network, or a SET from the head-end) before it trusts the time;
# clock_valid() says which.
#
#   keeper = TimeKeeper(meter, storage, log)   # restores the offset
#   keeper(now)                                 # from the loop's service
#                                               # (board.Service), before the
#                                               # profiles tick

from dlms_micro.cosem import base, clock, profile, push
from dlms_micro.ticks import ticks_diff

KEY = "clock.offset"
EVENT_CLOCK_OLD = 4
EVENT_CLOCK_NEW = 5
VALID_FROM = 1735689600  # 2025-01-01: a wall clock before it was never set


class TimeKeeper:
    def __init__(self, meter, storage=None, log=None, tick_ms=1000):
        self.meter = meter
        self.storage = storage
        self.log = log
        self.tick_ms = tick_ms
        self._at = None
        self.adjustments = 0
        self.entry = None
        for e in meter.table:
            if e[base.E_CLASS] == 8 and e[base.E_SLOT] >= 0:
                self.entry = e
                break
        self.slot = self.entry[base.E_SLOT] if self.entry is not None else -1
        self.profiles = tuple(e for e in meter.table if e[base.E_CLASS] == 7 and e[base.E_SLOT] >= 0)
        self.pushes = tuple(e for e in meter.table if e[base.E_CLASS] == 40 and e[base.E_SLOT] >= 0)
        self.event_slot, self.event_logs = _events(meter)
        if self.slot >= 0 and storage is not None:
            b = storage.get(KEY)
            if b is not None and len(b) == 5:
                v = int.from_bytes(b[1:5], "big")
                self.meter.state[self.slot + clock.S_OFFSET] = -v if b[0] else v
        self.offset = self._offset()

    def _offset(self):
        return self.meter.state[self.slot + clock.S_OFFSET] if self.slot >= 0 else 0

    def __call__(self, now):
        if self.slot < 0:
            return
        if self._at is not None and ticks_diff(now, self._at) < self.tick_ms:
            return
        self._at = now
        new = self._offset()
        if new == self.offset:
            return
        self.adjusted(self.offset, new)

    def adjusted(self, old, new):
        # The clock moved from wall + old to wall + new (a client's SET).
        m = self.meter
        st = m.state
        i = self.slot + clock.S_OFFSET
        self.adjustments += 1
        if self.event_slot >= 0 and self.event_logs:
            st[i] = old
            self._event(EVENT_CLOCK_OLD)
            st[i] = new
            self._event(EVENT_CLOCK_NEW)
        self.offset = new
        utc = clock.now(m)
        for e in self.profiles:
            if e[base.E_PARAM][1]:  # periodic: rows stay on the new time's boundaries
                profile.resync(m, e, utc)
        for e in self.pushes:
            push.resync(m, e, utc)
        if self.storage is not None:
            v = -new if new < 0 else new
            self.storage.put(KEY, bytes((1 if new < 0 else 0, (v >> 24) & 0xFF, (v >> 16) & 0xFF, (v >> 8) & 0xFF,
                                         v & 0xFF)))
        log = getattr(m, "log", None) or self.log  # the meter's, as the port set it last
        if log is not None:
            log("dlms_micro: clock adjusted by %d s" % (new - old))

    def _event(self, code):
        self.meter.state[self.event_slot] = code
        for e in self.event_logs:
            profile.capture(self.meter, e)


def clock_valid(wall):
    # Whether the wall clock (UTC seconds since 1970) was ever set.
    return wall >= VALID_FROM


def _events(meter):
    # (slot of the event code object, event logs: profiles without a capture
    # period that capture it), as the host simulator and the sources find them
    code = None
    for e in meter.table:
        if e[base.E_CLASS] == 1 and e[base.E_LN] == b"\x00\x00\x60\x0b\x00\xff" and e[base.E_SLOT] >= 0:
            code = e
            break
    if code is None:
        return -1, ()
    logs = []
    for e in meter.table:
        if e[base.E_CLASS] == 7 and e[base.E_SLOT] >= 0 and e[base.E_PARAM][1] == 0:
            for co in e[base.E_PARAM][0]:
                if co[1] == code[base.E_LN]:
                    logs.append(e)
                    break
    return code[base.E_SLOT], tuple(logs)
