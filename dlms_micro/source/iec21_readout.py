# IEC 62056-21 data readout, the client's side (the module reads the meter
# beside it over the optical head or a current-loop / RS-485 port), modes A,
# B and C. Protocol, not I/O: the port performs each line change when this
# machine asks for it.
#
#   module -> meter   300 Bd 7E1   / ? [device address] ! CR LF      request
#   meter  -> module  300 Bd 7E1   / X X X Z [\W] identification CR LF
#   mode C:
#   module -> meter   300 Bd 7E1   ACK 0 Z 0 CR LF   (readout at rate Z)
#   both switch to Z (mode B: right after the identification, no ACK)
#   meter  -> module  Z    7E1     STX data block ! CR LF ETX BCC
#
# The data block is lines of data sets `ID(value*unit)`; a line may hold one
# ID with several values `ID(v1*u1)(v2)` or several data sets. BCC: XOR of
# every byte after STX up to and including ETX (7-bit characters: parity is
# the UART's business; bit 7 of every received byte is dropped here).
#
# Sans-IO, like link.iec21:
#   src.feed(data, 0, len(data), now)          # every byte read from the line
#   while True:
#       ev = src.next_event(now)
#       if ev == EV_NONE: break
#       if ev == EV_SEND: write src.tx_buf[src.tx_start:src.tx_end]
#       elif ev == EV_BAUD: wait until every byte written is on the line,
#                           then set it to src.baud (7 data bits, even
#                           parity, 1 stop bit: src.data_bits, src.parity)
#       elif ev == EV_DONE: a poll ended: src.status (OK / STALE / NO_VALUE),
#                           src.error, the fields (see source/__init__.py)
#
# Fields: the data sets the module wants, named as in the readout ("1.8.0",
# "1-0:1.8.0*255", "F.F", "C.1.0", "0.9.1"), optionally with "[n]" for the
# n-th value of a line ("1.6.0[1]": the time stamp after a maximum demand).
# Identifiers are compared as OBIS codes (IEC 62056-6-1 reduced ID codes):
#   - letters in groups C and D: C = 96, F = 97, L = 98, P = 99;
#   - A missing: 0 for the abstract groups C = 96..99, else `medium` (1,
#     electricity); B missing: 0; E missing: 0; F missing: 255 ("*" or "&"
#     gives it: "1.8.0*12" is the billing period 12);
# so "1.8.0" = 1-0:1.8.0*255, "F.F" = 0-0:97.97.0*255, "C.1.0" =
# 0-0:96.1.0*255, and a field named in one form matches a line in another.
#
# Values: a decimal number (sign, digits, at most one point) becomes an int
# and a scaler (012345.678 -> 12345678, -3); the unit maps to the Blue Book
# enum with its prefix in the scaler (kWh -> Wh, scaler + 3). Any value also
# keeps its text (up to 32 characters), for serial numbers, times, dates.
# A poll's values are taken only from a message whose BCC is right; a field
# missing from it, with an unknown unit or an overlong value keeps its last
# good value and goes STALE with that error (never an invented value).
#
# Limits (IEC 62056-21 6.3): address up to 32 characters, identification up
# to 16 (escape sequences "\W" counted), data set address 16, value 32,
# unit 16.
# Timing (6.3.14): the meter answers within t_r max 1500 ms, characters of
# a message come at most t_a 1500 ms apart; both configurable.
#
# Nothing is allocated per byte or per poll (values of 10 digits and more
# are big ints on MicroPython and allocate); the request is built once.

from array import array

from dlms_micro.source import (
    E_BAUD,
    E_CHECK,
    E_FORMAT,
    E_MISSING,
    E_NONE,
    E_OVERLONG,
    E_TIMEOUT,
    E_UNIT,
    OK,
    STALE,
    UNIT_NONE,
    UNIT_TABLE,
    Source,
    unit_lookup,
)
from dlms_micro.ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


EV_NONE = const(0)
EV_SEND = const(1)
EV_BAUD = const(6)
EV_DONE = const(8)

# States
IDLE = const(0)  # waiting for the next poll
IDENT = const(1)  # request sent; receiving the identification
ACK_WAIT = const(2)  # mode C: waiting the reaction time before the ACK
SWITCH = const(3)  # the line is to change its baud rate
DATA_WAIT = const(4)  # waiting for STX
DATA = const(5)  # inside the data message
BCC = const(6)  # ETX received; the next byte is the BCC
PAUSE = const(7)  # a failed attempt: letting the meter time out first
START = const(8)  # the line is back at the sign-on rate: send the request

# Parser positions inside the data block
_P_ID = const(0)  # data set address characters
_P_VALUE = const(1)  # inside "(" value
_P_UNIT = const(2)  # after "*" inside the brackets
_P_AFTER = const(3)  # after ")": "(" for another value, an address, or CR LF
_P_END = const(4)  # after "!": only CR LF up to ETX
_P_BAD = const(5)  # the rest of a malformed line is skipped

_STX = const(0x02)
_ETX = const(0x03)
_ACK = const(0x06)
_CR = const(0x0D)
_LF = const(0x0A)
_SLASH = const(0x2F)
_BANG = const(0x21)
_QUERY = const(0x3F)
_LPAR = const(0x28)
_RPAR = const(0x29)
_STAR = const(0x2A)

T_R_MAX = const(1500)
T_A = const(1500)
T_R_MIN = const(200)

MAX_ADDRESS = const(32)
MAX_IDENT = const(16)
MAX_ID = const(16)
MAX_VALUE = const(32)
MAX_UNIT = const(16)

# Mode C baud characters "0".."6"; mode B "A".."F". An array, not a tuple:
# a frozen firmware would keep 9600 and 19200 of a tuple as big ints, and
# the timing arithmetic on them would allocate on every poll.
BAUD_RATES = array("H", [300, 600, 1200, 2400, 4800, 9600, 19200])


def _tx_ms(n, baud):
    # n characters of 10 bits (start, 7 data, parity, stop), rounded up
    return (n * 10000 + baud - 1) // baud


def _letter(c):
    # OBIS letter codes of the reduced forms (IEC 62056-6-1): C F L P
    if c == 0x43:
        return 96
    if c == 0x46:
        return 97
    if c == 0x4C:
        return 98
    if c == 0x50:
        return 99
    return -1


def parse_id(buf, start, end, out, off, medium=1):
    # Data set address buf[start:end] -> 6 OBIS groups at out[off:off+6].
    # Accepts A-B:C.D.E*F with A-B:, .E and *F (or &F) optional, letters
    # C F L P in groups C and D. Returns False for anything else.
    return _parse_id(buf, start, end, out, off, medium, [0, 0, 0])


def _parse_id(buf, start, end, out, off, medium, g):
    # The worker of parse_id; `g` is scratch for groups C, D, E (the machine
    # passes its own list, so that parsing allocates nothing).
    a = -1
    b = -1
    n = 0  # groups C.D.E seen
    f = 255
    v = -1  # value of the group being read
    stage = 0  # 0: A-B: still possible, 1: in C.D.E, 2: after * (F)
    i = start
    while i <= end:
        c = buf[i] if i < end else 0
        if 0x30 <= c <= 0x39:
            v = (0 if v < 0 else v) * 10 + c - 0x30
            if v > 255:
                return False
        elif v == -1 and stage < 2 and n < 2 and _letter(c) >= 0:
            # a letter stands alone in its group
            if i + 1 < end and 0x30 <= buf[i + 1] <= 0x39:
                return False
            v = _letter(c)
        else:
            # a separator or the end
            if v < 0:
                return False
            if c == 0x2D:  # "-": A
                if stage != 0 or n or a >= 0:
                    return False
                a = v
            elif c == 0x3A:  # ":": B
                if stage != 0 or n or a < 0 or b >= 0:
                    return False
                b = v
                stage = 1
            elif c == 0x2E:  # ".": C or D
                if stage == 2 or n >= 2 or (a >= 0 and b < 0):
                    return False
                g[n] = v
                n += 1
                stage = 1
            elif c == 0x2A or c == 0x26 or c == 0:  # "*", "&", end
                if stage == 2:
                    if c != 0:
                        return False
                    f = v
                else:
                    if n == 0 or (a >= 0 and b < 0):
                        return False
                    g[n] = v
                    n += 1
                    stage = 2
            else:
                return False
            v = -1
        i += 1
    if n < 2:
        return False
    if n == 2:
        g[2] = 0
    if a < 0:
        a = 0 if 96 <= g[0] <= 99 else medium
        b = 0
    out[off] = a
    out[off + 1] = b
    out[off + 2] = g[0]
    out[off + 3] = g[1]
    out[off + 4] = g[2]
    out[off + 5] = f
    return True


def parse_field(name, medium=1):
    # "1.8.0", "1-0:1.8.0*255", "1.6.0[1]" -> (6-byte OBIS, value index);
    # ValueError when malformed. For tables built at start-up (allocates).
    idx = 0
    if name.endswith("]"):
        p = name.find("[")
        if p < 0:
            raise ValueError("bad field name")
        idx = int(name[p + 1 : -1])
        name = name[:p]
        if idx < 0 or idx > 255:
            raise ValueError("bad field name")
    if name.count(".") == 5 and "-" not in name:  # six dotted groups
        groups = [int(x) for x in name.split(".")]
        for x in groups:
            if x < 0 or x > 255:
                raise ValueError("bad field name")
        return bytes(groups), idx
    raw = name.encode()
    out = bytearray(6)
    if not parse_id(raw, 0, len(raw), out, 0, medium):
        raise ValueError("bad field name")
    return bytes(out), idx


def parse_number(buf, start, end):
    # A decimal number buf[start:end] ("-012.50") -> (int, scaler), or None
    # when it is not one (text values: times, dates, hex flags).
    r = [0, 0]
    if not _number(buf, start, end, r):
        return None
    return r[0], r[1]


def _number(buf, start, end, r):
    # The worker of parse_number: the result goes to r[0], r[1] (no tuple).
    neg = False
    i = start
    if i < end and (buf[i] == 0x2D or buf[i] == 0x2B):
        neg = buf[i] == 0x2D
        i += 1
    v = 0
    digits = 0
    frac = -1
    while i < end:
        c = buf[i]
        if 0x30 <= c <= 0x39:
            v = v * 10 + c - 0x30
            digits += 1
            if frac >= 0:
                frac += 1
        elif c == 0x2E and frac < 0:
            frac = 0
        else:
            return False
        i += 1
    if digits == 0:
        return False
    r[0] = -v if neg else v
    r[1] = -frac if frac > 0 else 0
    return True


class Readout(Source):
    def __init__(
        self,
        fields,
        address=b"",
        max_baud=9600,
        initial_baud=300,
        interval=60000,
        retries=2,
        reply_timeout=T_R_MAX,
        char_timeout=T_A,
        ack_delay=T_R_MIN,
        retry_pause=1600,
        medium=1,
    ):
        # fields: names of the data sets to keep (see the header); address:
        # the meter's device address for "/?ADDRESS!" (b"": none); max_baud:
        # the highest rate accepted in mode C (the ACK asks for the lower of
        # it and the meter's offer); interval: ms between poll starts;
        # retries: further attempts after a failed one, each after
        # retry_pause ms (the meter drops a broken exchange after t_a).
        if len(address) > MAX_ADDRESS:
            raise ValueError("device address longer than 32 characters")
        for c in address:
            if c < 0x20 or c > 0x7E or c == _BANG or c == _SLASH or c == _QUERY:
                raise ValueError("device address: printable, no / ? !")
        ok = 0
        for b in BAUD_RATES:  # (no `in` on a MicroPython array)
            ok += (b == max_baud) + (b == initial_baud)
        if ok != 2:
            raise ValueError("baud rate not one of IEC 62056-21's")
        n = len(fields)
        self._init_slots(fields)
        want = bytearray(7 * n)
        for i in range(n):
            code, idx = parse_field(fields[i], medium)
            want[7 * i : 7 * i + 6] = code
            want[7 * i + 6] = idx
            for k in range(i):
                if want[7 * k : 7 * k + 7] == want[7 * i : 7 * i + 7]:
                    raise ValueError("two fields name the same data set")
        self._want = want
        self.medium = medium
        self.max_baud = max_baud
        self.initial_baud = initial_baud
        self.interval = interval
        self.retries = retries
        self.reply_timeout = reply_timeout
        self.char_timeout = char_timeout
        self.ack_delay = ack_delay
        self.retry_pause = retry_pause
        # Value text of each field (MAX_VALUE bytes a slot) and its length
        self.texts = bytearray(MAX_VALUE * n)
        self.text_len = bytearray(n)
        self.numeric = bytearray(n)  # 1: values[i] holds the number (none yet)
        # The readout being received: pending slots, committed on a good BCC
        self._p_val = [0] * n
        self._p_scl = bytearray(n)  # scaler + 128
        self._p_unit = bytearray(n)
        self._p_seen = bytearray(n)  # 0: not in this message, 1: good, 2: bad
        self._p_err = bytearray(n)
        self._p_num = bytearray(n)
        self._p_text = bytearray(MAX_VALUE * n)
        self._p_tlen = bytearray(n)
        # Request, then ACK: built once
        tx = bytearray(5 + MAX_ADDRESS + 6)
        tx[0] = _SLASH
        tx[1] = _QUERY
        k = 2
        for c in address:
            tx[k] = c
            k += 1
        tx[k] = _BANG
        tx[k + 1] = _CR
        tx[k + 2] = _LF
        self._req_len = k + 3
        self.tx_buf = tx
        self.tx_start = 0
        self.tx_end = 0
        # Line settings the port applies on EV_BAUD
        self.baud = initial_baud
        self.data_bits = 7
        self.parity = "E"
        # The meter's identification (last one received)
        self.manufacturer = bytearray(3)
        self.ident = bytearray(MAX_IDENT)
        self.ident_len = 0
        self.baud_char = 0
        self.mode = 0  # 0x41 / 0x42 / 0x43: mode A / B / C of the last sign-on
        # Parser buffers
        self._id = bytearray(MAX_ID)
        self._val = bytearray(MAX_VALUE)
        self._unit = bytearray(MAX_UNIT)
        self._obis = bytearray(6)
        self._g = [0, 0, 0]
        self._r = [0, 0]
        # Counters
        self.good_polls = 0
        self.failed_polls = 0
        self.attempts = 0
        self.timeouts = 0
        self.bad_bcc = 0
        self.bad_format = 0  # malformed identification or data sets
        self.bad_units = 0
        self.overlong = 0
        self.bad_baud = 0
        self.garbage_bytes = 0
        self.datasets = 0  # data sets parsed (wanted or not)
        self.state = IDLE
        self._tries = 0
        self._poll_ref = 0
        self._due = True  # the first poll starts at once
        self._t_ref = 0
        self._limit = 0
        self._last_rx = 0
        self._done = False
        self._fail_kind = E_NONE
        self._fail_msg = None
        self._ack_char = 0
        self._rx_started = False
        self._pos = 0
        self._bcc = 0
        self._reset_parse()

    # ------------------------------------------------------------------ API

    def poll(self, now):
        # Start a poll at the next next_event() (after the running one).
        self._due = True

    def text(self, i):
        # The value text of field i as bytes (allocates; texts/text_len are
        # the allocation-free form).
        return bytes(self.texts[MAX_VALUE * i : MAX_VALUE * i + self.text_len[i]])

    def feed(self, data, start, end, now):
        # Take every byte read from the line; returns end - start.
        st = self.state
        if (st == IDENT or st == DATA or st == BCC) and self._rx_started:
            if ticks_diff(now, self._last_rx) > self.char_timeout:
                self._attempt_failed(E_TIMEOUT, "iec21 readout: message interrupted", now)
                st = self.state
        i = start
        while i < end:
            c = data[i] & 0x7F
            i += 1
            if st == IDENT:
                self._ident_byte(c, now)
            elif st == DATA_WAIT:
                if c == _STX:
                    self.state = DATA
                    self._bcc = 0
                    self._reset_parse()
                else:
                    self.garbage_bytes += 1
            elif st == DATA:
                self._bcc ^= c
                self._data_byte(c)
                if self._fail_kind != E_NONE:
                    self._attempt_failed(self._fail_kind, self._fail_msg, now)
            elif st == BCC:
                self._end_message(c, now)
            else:
                self.garbage_bytes += 1
            st = self.state
        if end > start:
            self._last_rx = now
            self._rx_started = True
        return end - start

    def next_event(self, now):
        st = self.state
        if self._done:
            self._done = False
            return EV_DONE
        if st == IDLE:
            if self._due or ticks_diff(now, self._poll_ref) >= self.interval:
                self._due = False
                self._poll_ref = now
                self._tries = 0
                return self._start_attempt(now)
        elif st == PAUSE:
            if ticks_diff(now, self._t_ref) >= self.retry_pause:
                return self._start_attempt(now)
        elif st == START:
            return self._start_attempt(now)
        elif st == ACK_WAIT:
            if ticks_diff(now, self._t_ref) >= self.ack_delay:
                tx = self.tx_buf
                s = self._req_len
                tx[s] = _ACK
                tx[s + 1] = 0x30  # "0": normal protocol procedure
                tx[s + 2] = self._ack_char
                tx[s + 3] = 0x30  # "0": data readout
                tx[s + 4] = _CR
                tx[s + 5] = _LF
                self.tx_start = s
                self.tx_end = s + 6
                self.state = SWITCH
                return EV_SEND
        elif st == SWITCH:
            self.baud = BAUD_RATES[self._ack_char - 0x30] if self.mode == 0x43 else self.baud
            self._wait_data(now, 6 if self.mode == 0x43 else 0)
            return EV_BAUD
        elif st == IDENT or st == DATA_WAIT or st == DATA or st == BCC:
            if self._rx_started and st != DATA_WAIT:
                late = ticks_diff(now, self._last_rx) > self.char_timeout
            else:
                late = ticks_diff(now, self._t_ref) > self._limit
            if late:
                self._attempt_failed(E_TIMEOUT, "iec21 readout: no answer", now)
                if self._done:
                    self._done = False
                    return EV_DONE
        return EV_NONE

    # ------------------------------------------------------------- internals

    def _start_attempt(self, now):
        if self.baud != self.initial_baud:
            # back to the sign-on rate first; the request follows at the next
            # call
            self.baud = self.initial_baud
            self.state = START
            return EV_BAUD
        self.attempts += 1
        self.tx_start = 0
        self.tx_end = self._req_len
        self.state = IDENT
        self._pos = 0
        self.ident_len = 0
        self._rx_started = False
        self._t_ref = now
        self._limit = _tx_ms(self._req_len, self.baud) + self.reply_timeout
        return EV_SEND

    def _wait_data(self, now, sent):
        self.state = DATA_WAIT
        self._rx_started = False
        self._t_ref = now
        self._limit = _tx_ms(sent, self.baud) + self.reply_timeout

    def _attempt_failed(self, kind, msg, now):
        self._fail_kind = E_NONE
        if kind == E_TIMEOUT:
            self.timeouts += 1
        self._tries += 1
        self._fail(kind, msg)
        if self._tries > self.retries:
            self.failed_polls += 1
            self.state = IDLE
            self._done = True
            for i in range(len(self.fields)):
                self._field_fail(i, kind)
        else:
            self.state = PAUSE
            self._t_ref = now
        # after a failed attempt the line goes back to the sign-on rate
        # (a PAUSE / IDLE start asks the port with EV_BAUD first)

    def _ident_byte(self, c, now):
        p = self._pos
        if p == 0:
            if c == _SLASH:
                self._pos = 1
            else:
                self.garbage_bytes += 1
            return
        if p == -1:  # skipping the echo of our own request
            if c == _LF:
                self._pos = 0
            return
        if p == 1 and c == _QUERY:
            self._pos = -1  # an optical head echoed "/?...": skip that line
            return
        if p <= 3:
            if not (0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A):
                self._bad_ident(now)
                return
            self.manufacturer[p - 1] = c
            self._pos = p + 1
            return
        if p == 4:
            if c < 0x20 or c > 0x7E or c == _SLASH or c == _BANG:
                self._bad_ident(now)
                return
            self.baud_char = c
            self._pos = 5
            return
        if p == 5:  # identification characters up to CR
            if c == _CR:
                self._pos = 6
                return
            if c < 0x20 or c > 0x7E or c == _SLASH or c == _BANG:
                self._bad_ident(now)
                return
            n = self.ident_len
            if n >= MAX_IDENT:
                self.overlong += 1
                self._attempt_failed(E_OVERLONG, "iec21 readout: identification too long", now)
                return
            self.ident[n] = c
            self.ident_len = n + 1
            return
        # p == 6
        if c != _LF:
            self._bad_ident(now)
            return
        self._identified(now)

    def _bad_ident(self, now):
        self.bad_format += 1
        self._attempt_failed(E_FORMAT, "iec21 readout: malformed identification", now)

    def _identified(self, now):
        z = self.baud_char
        if 0x30 <= z <= 0x39:  # mode C
            if z > 0x36:
                self.bad_baud += 1
                self._attempt_failed(E_BAUD, "iec21 readout: reserved baud rate character", now)
                return
            self.mode = 0x43
            mine = 0x30
            while mine < 0x36 and BAUD_RATES[mine - 0x30] < self.max_baud:
                mine += 1
            self._ack_char = z if z < mine else mine
            self.state = ACK_WAIT
            self._t_ref = now
        elif 0x41 <= z <= 0x49:  # mode B
            if z > 0x46 or BAUD_RATES[z - 0x40] > self.max_baud:
                self.bad_baud += 1
                self._attempt_failed(E_BAUD, "iec21 readout: mode B rate not usable", now)
                return
            self.mode = 0x42
            self.baud = BAUD_RATES[z - 0x40]
            self.state = SWITCH
        else:  # mode A: the data follow at this rate
            self.mode = 0x41
            self._wait_data(now, 0)

    # --- the data block

    def _reset_parse(self):
        self._ps = _P_ID
        self._id_len = 0
        self._val_len = 0
        self._unit_len = 0
        self._vidx = 0
        self._line_bad = False
        self._ended = False
        p = self._p_seen
        for i in range(len(p)):
            p[i] = 0

    def _data_byte(self, c):
        ps = self._ps
        if c == _ETX:
            if not self._ended:
                self.bad_format += 1
                self._fail_kind = E_FORMAT
                self._fail_msg = "iec21 readout: data block without its end line"
                return
            self.state = BCC
            return
        if c == _CR or c == _LF:
            if ps == _P_VALUE or ps == _P_UNIT or (ps == _P_ID and self._id_len):
                # a line cut inside brackets, or an address without any
                self._bad_line(E_FORMAT)
            if ps != _P_END:
                self._ps = _P_ID
            self._id_len = 0
            self._vidx = 0
            return
        if ps == _P_END or ps == _P_BAD:
            return
        if ps == _P_ID or ps == _P_AFTER:
            if c == _LPAR:
                if ps == _P_ID and self._id_len == 0:
                    self._bad_line(E_FORMAT)  # a value without an address
                    return
                self._ps = _P_VALUE
                self._val_len = 0
                self._unit_len = 0
                return
            if c == _BANG and ps == _P_ID and self._id_len == 0:
                self._ps = _P_END
                self._ended = True
                return
            if c == _RPAR or c == _SLASH or c == _BANG or c < 0x20:
                self._bad_line(E_FORMAT)
                return
            if ps == _P_AFTER:  # the next data set on the same line
                self._ps = _P_ID
                self._id_len = 0
                self._vidx = 0
            n = self._id_len
            if n >= MAX_ID:
                self.overlong += 1
                self._bad_line(E_OVERLONG)
                return
            self._id[n] = c
            self._id_len = n + 1
            return
        # inside brackets
        if c == _RPAR:
            self._dataset()
            self._vidx += 1
            self._ps = _P_AFTER
            return
        if c == _LPAR or c < 0x20:
            self._bad_line(E_FORMAT)
            return
        if ps == _P_VALUE:
            if c == _STAR:
                self._ps = _P_UNIT
                return
            n = self._val_len
            if n >= MAX_VALUE:
                self.overlong += 1
                self._bad_line(E_OVERLONG)
                return
            self._val[n] = c
            self._val_len = n + 1
            return
        n = self._unit_len
        if n >= MAX_UNIT:
            self.overlong += 1
            self._bad_line(E_OVERLONG)
            return
        self._unit[n] = c
        self._unit_len = n + 1

    def _bad_line(self, kind):
        # The rest of this line is skipped; a wanted field it names is marked.
        if kind == E_FORMAT:
            self.bad_format += 1
        k = self._slot()
        if k >= 0 and self._p_seen[k] == 0:
            self._p_seen[k] = 2
            self._p_err[k] = kind
        self._ps = _P_BAD

    def _slot(self):
        # The wanted field of the current address and value index, or -1.
        if self._id_len == 0:
            return -1
        o = self._obis
        if not _parse_id(self._id, 0, self._id_len, o, 0, self.medium, self._g):
            return -1
        w = self._want
        vi = self._vidx
        for k in range(len(self.fields)):
            b = 7 * k
            if (
                w[b + 6] == vi
                and w[b + 2] == o[2]
                and w[b + 3] == o[3]
                and w[b + 4] == o[4]
                and w[b] == o[0]
                and w[b + 1] == o[1]
                and w[b + 5] == o[5]
            ):
                return k
        return -1

    def _dataset(self):
        self.datasets += 1
        k = self._slot()
        if k < 0:
            return
        unit = UNIT_NONE
        exp = 0
        if self._unit_len:
            row = unit_lookup(self._unit, 0, self._unit_len)
            if row < 0:
                self.bad_units += 1
                self._p_seen[k] = 2
                self._p_err[k] = E_UNIT
                return
            unit = UNIT_TABLE[row][1]
            exp = UNIT_TABLE[row][2]
        n = self._val_len
        t = self._p_text
        v = self._val
        b = MAX_VALUE * k
        for j in range(n):
            t[b + j] = v[j]
        self._p_tlen[k] = n
        self._p_num[k] = 0
        self._p_unit[k] = unit
        self._p_scl[k] = 128
        r = self._r
        if _number(v, 0, n, r):
            s = r[1] + exp
            if -128 <= s <= 127:
                self._p_val[k] = r[0]
                self._p_scl[k] = s + 128
                self._p_num[k] = 1
        self._p_seen[k] = 1

    def _end_message(self, c, now):
        if c != self._bcc:
            self.bad_bcc += 1
            self._attempt_failed(E_CHECK, "iec21 readout: wrong BCC, readout discarded", now)
            return
        # A good message: commit the fields it carried.
        worst = E_NONE
        for k in range(len(self.fields)):
            seen = self._p_seen[k]
            if seen == 1:
                self.values[k] = self._p_val[k]
                self.scalers[k] = self._p_scl[k] - 128
                self.units[k] = self._p_unit[k]
                self.numeric[k] = self._p_num[k]
                n = self._p_tlen[k]
                b = MAX_VALUE * k
                t = self.texts
                pt = self._p_text
                for j in range(b, b + n):
                    t[j] = pt[j]
                self.text_len[k] = n
                self.field_status[k] = OK
                self.field_error[k] = E_NONE
                self.stamps[k] = now
            else:
                kind = self._p_err[k] if seen == 2 else E_MISSING
                self._field_fail(k, kind)
                if worst == E_NONE:
                    worst = kind
        self.good_polls += 1
        self.state = IDLE
        self._done = True
        if worst == E_NONE:
            self._good(now)
        else:
            self._fail(worst, "iec21 readout: a field is missing or unreadable")
            self.status = STALE
