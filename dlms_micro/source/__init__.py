# Sources: where a retrofit module's values come from (the meter beside it).
#
#   iec21_readout  IEC 62056-21 readout client, modes A, B and C
#   modbus_rtu     Modbus RTU master with register maps as data
#   s0             S0 pulse input (IEC 62053-31) with a persisted count
#
# Each is a sans-IO state machine like the links: bytes or pulses and a
# millisecond tick (wrapping at 2**30, ticks.py) in; requests to send and
# parsed values with a status out. Sources know no COSEM objects: the meter
# wiring binds a source's fields to the state slots a definition names.
#
# Common shape of every source (the lead's binding relies on it):
#   src.fields            tuple of field names, in slot order
#   src.index(name)       slot of a field name, -1 if unknown
#   src.values[i]         last good value of slot i: an int (the reading is
#                         values[i] * 10**scalers[i] in units[i]); never
#                         written from a failed poll
#   src.scalers[i]        decimal exponent (signed, array 'b')
#   src.units[i]          Blue Book unit enum (bytearray; 255 = count / none)
#   src.field_status[i]   OK / STALE / NO_VALUE (bytearray)
#   src.field_error[i]    error kind of the last failure of that slot (E_*)
#   src.stamps[i]         tick of the last good value (valid unless NO_VALUE)
#   src.numeric[i]        1: values[i] is the number; 0: the field is text
#                         only (IEC 62056-21 times, dates: src.text(i))
#   src.status            the source as a whole: OK / STALE / NO_VALUE
#   src.last_good         tick of the last fully good poll
#   src.error             E_* of the last failure (E_NONE after a good poll)
#   src.last_error        its constant message (str) or None
#   src.log               optional callable(str): failures logged once when
#                         they start, and once on recovery (never per byte)
# Counters are plain attributes on each source (good_polls, timeouts, ...).

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Status of a value or of a source
OK = const(0)  # the last poll gave this value
STALE = const(1)  # the last poll failed: the value is the last good one (stamp)
NO_VALUE = const(2)  # never read: there is no value at all

# Error kinds
E_NONE = const(0)
E_TIMEOUT = const(1)  # no answer, or an answer that stopped half way
E_CHECK = const(2)  # bad BCC / CRC
E_FORMAT = const(3)  # malformed: missing brackets, truncated frame, bad count
E_EXCEPTION = const(4)  # Modbus exception response
E_PEER = const(5)  # answer from the wrong slave / with the wrong function
E_OVERLONG = const(6)  # a value, unit or address longer than the standard allows
E_UNIT = const(7)  # a unit this module does not know
E_BAUD = const(8)  # a baud rate character reserved or not usable
E_RANGE = const(9)  # not a number (NaN, infinity, text where a number is due)
E_MISSING = const(10)  # a good readout that does not contain the field
E_BOUNCE = const(11)  # S0: a bounce storm on the input
E_STORAGE = const(12)  # S0: the persisted count could not be read or written

ERROR_NAMES = (
    "none",
    "timeout",
    "check",
    "format",
    "exception",
    "peer",
    "overlong",
    "unit",
    "baud",
    "range",
    "missing",
    "bounce",
    "storage",
)

# Unit names as meters print them -> (Blue Book unit enum, decimal exponent
# to add to the scaler). Matched case-sensitively first, then without case
# for the "var" family (kvarh, kVArh, kVarh). 255: no unit / count.
UNIT_TABLE = (
    (b"Wh", 30, 0),
    (b"kWh", 30, 3),
    (b"MWh", 30, 6),
    (b"GWh", 30, 9),
    (b"varh", 32, 0),
    (b"kvarh", 32, 3),
    (b"Mvarh", 32, 6),
    (b"VAh", 31, 0),
    (b"kVAh", 31, 3),
    (b"MVAh", 31, 6),
    (b"W", 27, 0),
    (b"kW", 27, 3),
    (b"MW", 27, 6),
    (b"var", 29, 0),
    (b"kvar", 29, 3),
    (b"Mvar", 29, 6),
    (b"VA", 28, 0),
    (b"kVA", 28, 3),
    (b"MVA", 28, 6),
    (b"V", 35, 0),
    (b"mV", 35, -3),
    (b"kV", 35, 3),
    (b"A", 33, 0),
    (b"mA", 33, -3),
    (b"kA", 33, 3),
    (b"Hz", 44, 0),
    (b"m3", 13, 0),
    (b"l", 19, 0),
    (b"J", 25, 0),
    (b"kJ", 25, 3),
    (b"MJ", 25, 6),
    (b"GJ", 25, 9),
    (b"K", 52, 0),
    (b"s", 7, 0),
    (b"min", 6, 0),
    (b"h", 5, 0),
    (b"d", 4, 0),
    (b"%", 56, 0),
    (b"Ah", 57, 0),
    (b"kg", 20, 0),
    (b"bar", 24, 0),
    (b"Pa", 23, 0),
    (b"deg", 8, 0),
    (b"degC", 9, 0),
    (b"count", 255, 0),
)
UNIT_NONE = const(255)


def _lower(c):
    return c + 32 if 0x41 <= c <= 0x5A else c


def unit_lookup(buf, start, end):
    # The UNIT_TABLE row index for the unit name buf[start:end], or -1.
    # Allocates nothing: compares in place.
    n = end - start
    if n <= 0:
        return -1
    fold = False
    while True:
        for row in range(len(UNIT_TABLE)):
            name = UNIT_TABLE[row][0]
            if len(name) != n:
                continue
            i = 0
            while i < n:
                a = buf[start + i]
                b = name[i]
                if fold:
                    a = _lower(a)
                    b = _lower(b)
                if a != b:
                    break
                i += 1
            if i == n and (not fold or UNIT_TABLE[row][1] in (29, 32, 28, 31)):
                return row
        if fold:
            return -1
        fold = True


def unit_of(name):
    # (unit enum, exponent) of a unit name given as str or bytes; for tables
    # built at start-up (allocates). Raises ValueError for an unknown unit.
    if isinstance(name, str):
        name = name.encode()
    row = unit_lookup(name, 0, len(name))
    if row < 0:
        raise ValueError("unknown unit")
    return UNIT_TABLE[row][1], UNIT_TABLE[row][2]


class Source:
    # The value slots and the status every source shares. Subclasses call
    # _init_slots(names) once and the _good/_fail helpers on each poll.

    def _init_slots(self, names):
        from array import array

        n = len(names)
        self.fields = tuple(names)
        self.values = [0] * n
        self.scalers = array("b", [0] * n)
        self.units = bytearray(n)
        for i in range(n):
            self.units[i] = UNIT_NONE
        self.field_status = bytearray(n)
        self.field_error = bytearray(n)
        for i in range(n):
            self.field_status[i] = NO_VALUE
        self.stamps = [0] * n
        self.numeric = bytearray(b"\x01" * n)
        self.status = NO_VALUE
        self.last_good = 0
        self.error = E_NONE
        self.last_error = None
        self.log = None
        self._logged = E_NONE  # the failure kind already logged

    def index(self, name):
        f = self.fields
        for i in range(len(f)):
            if f[i] == name:
                return i
        return -1

    def _fail(self, kind, msg):
        # A poll (or part of one) failed: the source goes stale, keeps its
        # values, and the failure is logged when it starts or changes kind.
        self.error = kind
        self.last_error = msg
        if self.status == OK:
            self.status = STALE
        if kind != self._logged:
            self._logged = kind
            if self.log is not None:
                self.log(msg)

    def _field_fail(self, i, kind):
        self.field_error[i] = kind
        if self.field_status[i] == OK:
            self.field_status[i] = STALE

    def _good(self, now):
        # A whole poll succeeded.
        self.status = OK
        self.last_good = now
        self.error = E_NONE
        if self._logged != E_NONE:
            self._logged = E_NONE
            if self.log is not None:
                self.log("source: recovered")
