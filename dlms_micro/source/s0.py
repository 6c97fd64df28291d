# S0 pulse input (IEC 62053-31): the pulse output of an energy meter, one
# pulse per 1/constant kWh, read on a GPIO (edges) or a hardware pulse
# counter. Sans-IO: the port hands over edges or counts with their time.
#
#   s0 = S0Input(constant=1000, storage=store, key="s0.imp")
#   s0.edge(level, now)   # every level change: 1 = pulse (contact closed)
#   s0.pulses(n, now)     # or: n pulses a hardware counter already filtered
#   s0.tick(now)          # from the main loop: periodic save, storm end
#   s0.flush(now)         # save now (brown-out warning, orderly stop)
#
# Debounce: a pulse counts when it ends, if it lasted at least min_pulse ms
# (IEC 62053-31 specifies pulses of 30 ms and more); a shorter one is a
# bounce. storm_limit bounces within storm_window ms make a bounce storm:
# counted (storms), logged once, the source STALE with E_BOUNCE until a
# whole window passes without a bounce. Pulses of full width are still
# counted during a storm (the status tells the reading is in doubt).
#
# Persistence: the count is saved through storage.put(key, 10 bytes) (the
# ports' storage: atomic per record) every persist_every pulses and, when
# pulses are unsaved, every persist_ms. A power cut therefore loses at most
# persist_every - 1 counted pulses plus the one in progress: at most
# persist_every pulses, i.e. persist_every / constant kWh (default 100
# pulses: 0.1 kWh at 1000 imp/kWh), never an added one. Flash wear: one
# record per persist_every pulses (10 kW at 1000 imp/kWh: 100 writes an
# hour at the default). Record: the pulse count (6 bytes, big-endian) and
# the meter constant (4 bytes); a record with another constant is
# converted (the energy carries over, rounded down). Storage calls happen
# inside edge()/pulses()/tick(): call them from the main loop, not an IRQ.
#
# Fields: "<name>" the energy (Wh; scaler chosen so that one pulse is a whole
# number of units when 1000 * 10**k / constant is exact for some k <= 6,
# else scaler 0 and Wh rounded down), "<name>_pulses" the count. name
# defaults to "energy_import" / "energy_export" after `direction`.
# A record that cannot be read (wrong size) leaves the count unknown:
# NO_VALUE / E_STORAGE until set_count(); a missing record is a first start
# from start_pulses.
#
# Nothing is allocated per pulse while the energy stays below 2**30 units
# (saving a record allocates in the storage).

from dlms_micro.source import E_BOUNCE, E_NONE, E_STORAGE, NO_VALUE, OK, STALE, Source
from dlms_micro.ticks import ticks_diff


class S0Input(Source):
    def __init__(
        self,
        constant=1000,
        min_pulse=30,
        direction="import",
        name=None,
        storage=None,
        key="s0",
        persist_every=100,
        persist_ms=900000,
        storm_limit=10,
        storm_window=1000,
        start_pulses=0,
    ):
        if not isinstance(constant, int) or not 1 <= constant <= 1000000:
            raise ValueError("meter constant must be 1..1000000 imp/kWh")
        if direction not in ("import", "export"):
            raise ValueError("direction must be import or export")
        if persist_every < 1 or storm_limit < 1:
            raise ValueError("persist_every and storm_limit must be 1 or more")
        if name is None:
            name = "energy_" + direction
        self._init_slots((name, name + "_pulses"))
        self.constant = constant
        self.direction = direction
        self.min_pulse = min_pulse
        self.storage = storage
        self.key = key
        self.persist_every = persist_every
        self.persist_ms = persist_ms
        self.storm_limit = storm_limit
        self.storm_window = storm_window
        # energy units per pulse as num / den, the scaler -k
        k = 0
        while k < 6 and (1000 * 10**k) % constant:
            k += 1
        if (1000 * 10**k) % constant:
            k = 0
        self._num = 1000 * 10**k
        self._den = constant
        g = _gcd(self._num, self._den)
        self._num //= g
        self._den //= g
        self.scalers[0] = -k
        self.units[0] = 30  # Wh
        self.units[1] = 255  # count
        self.count = start_pulses
        # Counters
        self.bounces = 0
        self.storms = 0
        self.saves = 0
        self.storage_errors = 0
        self.storm = False
        self._level = 0
        self._t_on = 0
        self._burst = 0  # bounces in the current window
        self._burst_ref = 0
        self._last_bounce = 0
        self._unsaved = 0
        self._save_ref = 0
        self._rec = bytearray(10)
        self._load(start_pulses)
        self._update(0)

    # ------------------------------------------------------------------ API

    def edge(self, level, now):
        # A level change of the input (1: pulse active).
        level = 1 if level else 0
        if level == self._level:
            return
        self._level = level
        if level:
            self._t_on = now
            return
        if ticks_diff(now, self._t_on) >= self.min_pulse:
            self._count(1, now)
        else:
            self._bounce(now)

    def pulses(self, n, now):
        # n pulses counted (and filtered) by hardware.
        if n > 0:
            self._count(n, now)

    def tick(self, now):
        if self.storm and ticks_diff(now, self._last_bounce) > self.storm_window:
            self.storm = False
            self._burst = 0
            if self.field_status[0] != NO_VALUE:
                self._good(now)
                self.field_status[0] = OK
                self.field_status[1] = OK
                self.field_error[0] = E_NONE
                self.field_error[1] = E_NONE
        if self._unsaved and ticks_diff(now, self._save_ref) >= self.persist_ms:
            self._save(now)

    def flush(self, now):
        if self._unsaved:
            self._save(now)

    def set_count(self, pulses, now):
        # Set the count (an installation reading, a repaired record); saved
        # at once.
        self.count = pulses
        self._update(now)
        self._good(now)
        self._save(now)

    # ------------------------------------------------------------- internals

    def _count(self, n, now):
        self.count += n
        self._unsaved += n
        self._update(now)
        if self._unsaved >= self.persist_every:
            self._save(now)

    def _update(self, now):
        self.values[0] = self.count * self._num // self._den
        self.values[1] = self.count
        if self.status == NO_VALUE and self.error == E_STORAGE:
            return  # the count is relative to an unknown start
        st = STALE if self.storm else OK
        self.field_status[0] = st
        self.field_status[1] = st
        self.stamps[0] = now
        self.stamps[1] = now
        if self.status == NO_VALUE:
            self.status = st

    def _bounce(self, now):
        self.bounces += 1
        self._last_bounce = now
        if ticks_diff(now, self._burst_ref) > self.storm_window:
            self._burst_ref = now
            self._burst = 0
        self._burst += 1
        if self._burst >= self.storm_limit and not self.storm:
            self.storm = True
            self.storms += 1
            self._fail(E_BOUNCE, "s0: bounce storm on the input")
            for i in range(2):
                self._field_fail(i, E_BOUNCE)

    def _load(self, start):
        st = self.storage
        if st is None:
            return
        try:
            rec = st.get(self.key)
        except OSError:
            rec = b""
        if rec is None:
            return  # first start
        if len(rec) != 10:
            self.storage_errors += 1
            self._fail(E_STORAGE, "s0: stored count unreadable")
            self.status = NO_VALUE
            return
        c = 0
        for i in range(6):
            c = (c << 8) | rec[i]
        k = 0
        for i in range(6, 10):
            k = (k << 8) | rec[i]
        if k != self.constant and k:
            c = c * self.constant // k
        self.count = c

    def _save(self, now):
        self._save_ref = now
        st = self.storage
        if st is None:
            self._unsaved = 0
            return
        r = self._rec
        c = self.count
        for i in range(5, -1, -1):
            r[i] = c & 0xFF
            c >>= 8
        k = self.constant
        for i in range(9, 5, -1):
            r[i] = k & 0xFF
            k >>= 8
        try:
            st.put(self.key, r)
        except OSError:
            self.storage_errors += 1
            self._fail(E_STORAGE, "s0: the count could not be saved")
            return
        self.saves += 1
        self._unsaved = 0
        if self.error == E_STORAGE and self.status != NO_VALUE:
            self._good(now)


def _gcd(a, b):
    while b:
        a, b = b, a % b
    return a
