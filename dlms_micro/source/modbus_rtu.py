# Modbus RTU master (the module reads energy meters on an RS-485 bus),
# functions 03 (read holding registers) and 04 (read input registers), with
# register maps as data (meters/sources/*.json).
#
#   request   slave  fn  start(2)  count(2)  CRC(2, low byte first)
#   reply     slave  fn  2*count  registers(2*count, big-endian)  CRC(2)
#   exception slave  fn|0x80  code  CRC(2)
# CRC-16/MODBUS: reflected polynomial 0xA001, initial 0xFFFF, no final XOR.
# Before each request the bus must have been silent for 3.5 characters (11
# bits each: 8 data, parity or a second stop bit, start, stop; a fixed
# 1.75 ms above 19200 Bd, Modbus over serial line V1.02 2.5.1.1); with ms
# ticks this waits one tick more than the rounded-up time. A reply ends when
# its expected length has arrived (5 bytes for an exception), or after
# `frame_gap` ms without a byte (then it is truncated or foreign).
#
# Sans-IO, like the links:
#   src.feed(data, 0, len(data), now)        # every byte read from the bus
#   while True:
#       ev = src.next_event(now)
#       if ev == EV_NONE: break
#       if ev == EV_SEND: write src.tx_buf[src.tx_start:src.tx_end]
#                         (RS-485: driver enabled for exactly these bytes)
#       elif ev == EV_DONE: a poll cycle over every device ended
#       elif ev == EV_WRITTEN: a write asked with write() ended: write_state
#
# devices: a list of dicts {"slave": 1..247, "map": REGISTER_MAP, "name":
# "m1"} (name optional: the fields of a named device are "m1.FIELD"). A
# register map (the JSON of meters/sources/, see load_map's checks):
#   {"registers": [{"name": "energy_import", "address": 72, "function": 4,
#     "type": "float32", "word_order": "big", "scaler": -2, "unit": "kWh"}],
#    "defaults": {...same keys...}, "max_registers": 80, "max_gap": 10}
# address: the protocol address (register number 30073 -> 72); function 4
# (input) or 3 (holding); type int16 uint16 int32 uint32 float32 float64;
# word_order "big" (high word first, the Modbus norm) or "little".
# Values: an integer register's raw value with scaler = the map's scaler;
# a float is rounded (half away from zero, exactly) to an integer count of
# 10**scaler units. The unit's prefix goes into the scaler (kWh -> Wh, +3):
# {"scaler": -2, "unit": "kWh"} serves 0.01 kWh steps as Wh with scaler 1.
# Registers are read in blocks: contiguous (gaps up to max_gap registers
# read and ignored), at most max_registers a request (Eastron: 80).
#
# Failures (logged once per device when they start or change kind, and
# once when the device answers again): a reply with a bad CRC, from another slave, with another
# function, truncated or of the wrong size, and a timeout are retried
# `retries` times; an exception reply too when its code is 5 or 6
# (acknowledge, busy), not otherwise. A block that still fails leaves its
# fields with their last good values, STALE with the error kind; a device
# whose first block timed out is skipped for the rest of the cycle.
# A NaN or infinite float leaves its field STALE with E_RANGE.
#
# Writes: write(slave, address, values) queues one write of holding
# registers (function 06 for one register, 16 for up to 123); it goes out
# before the next read request, with the same silence, timeout and retry
# rules; the reply must echo the address (and value or count). Its outcome:
# write_state (W_DONE / W_FAILED), write_error, write_exception.
#
# Allocation: none per poll for int16/uint16/float32 values below 2**30
# (wider values, int32/uint32 at or above 2**30 and float64 use big ints on
# MicroPython).

from array import array

from dlms_micro.source import (
    E_CHECK,
    E_EXCEPTION,
    E_FORMAT,
    E_NONE,
    E_PEER,
    E_RANGE,
    E_TIMEOUT,
    NO_VALUE,
    OK,
    STALE,
    Source,
    unit_of,
)
from dlms_micro.ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


EV_NONE = const(0)
EV_SEND = const(1)
EV_DONE = const(8)
EV_WRITTEN = const(9)

# write_state
W_NONE = const(0)  # no write asked yet
W_PENDING = const(1)  # queued or on the bus
W_DONE = const(2)  # the slave confirmed it
W_FAILED = const(3)  # see write_error (and write_exception)

# States
IDLE = const(0)
SILENCE = const(1)  # waiting for the bus to be quiet before a request
REPLY = const(2)  # request sent; receiving the reply

# Value types
T_INT16 = const(0)
T_UINT16 = const(1)
T_INT32 = const(2)
T_UINT32 = const(3)
T_FLOAT32 = const(4)
T_FLOAT64 = const(5)
TYPES = ("int16", "uint16", "int32", "uint32", "float32", "float64")
_WORDS = b"\x01\x01\x02\x02\x02\x04"

MAX_REGISTERS = const(125)  # Modbus limit for 03/04
RX_SIZE = const(256)


def _crc_table():
    t = array("H", range(256))
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        t[i] = c
    return t


CRC_TABLE = _crc_table()


def crc(buf, start, end):
    # CRC-16/MODBUS of buf[start:end]; sent low byte first.
    t = CRC_TABLE
    c = 0xFFFF
    for i in range(start, end):
        c = (c >> 8) ^ t[(c ^ buf[i]) & 0xFF]
    return c


def silence_ms(baud):
    # The 3.5-character inter-frame silence in whole ms ticks (see above).
    if baud > 19200:
        us = 1750
    else:
        us = (35 * 11 * 1000000 // 10 + baud - 1) // baud
    return (us + 999) // 1000 + 1


def scaled(neg, m, e2, k):
    # round(+-m * 2**e2 * 10**k), half away from zero, exactly. With
    # m < 2**24 (float32), 0 <= k <= 6 and a result below 2**30 only small
    # ints are used (no allocation on MicroPython).
    if m == 0:
        return 0
    n = -(e2 + k)
    if 0 <= k <= 6 and n >= 1 and m < 0x1000000:
        if n > 40:
            return 0
        p5 = 1
        for _ in range(k):  # 5**k in small ints (a constant tuple of
            p5 *= 5  # them would be frozen as big ints)
        hi = (m >> 12) * p5  # m = hi_part * 4096 + lo_part
        lo = (m & 0xFFF) * p5
        if n >= 13:
            r = (hi + (1 << (n - 13)) + (lo >> 12)) >> (n - 12)
        else:
            r = (hi << (12 - n)) + ((lo + (1 << (n - 1))) >> n)
    else:
        num = m * 10**k if k >= 0 else m
        den = 1 if k >= 0 else 10**-k
        if e2 >= 0:
            num <<= e2
        else:
            den <<= -e2
        r = (2 * num + den) // (2 * den)
    return -r if neg else r


def load_map(regmap):
    # Check a register map (a dict as read from JSON) and return its rows
    # as tuples (name, function, address, type, word_order_little, scaler,
    # unit_enum, unit_exp). ValueError names the row and the key.
    if not isinstance(regmap, dict) or not isinstance(regmap.get("registers"), list):
        raise ValueError("register map: 'registers' list missing")
    defaults = regmap.get("defaults", {})
    rows = []
    names = set()
    for pos, reg in enumerate(regmap["registers"]):
        where = "register map row %d" % pos

        def get(key, dflt=None):
            v = reg.get(key, defaults.get(key, dflt))
            if v is None:
                raise ValueError("%s: '%s' missing" % (where, key))
            return v

        name = get("name")
        if not isinstance(name, str) or not name or name in names:
            raise ValueError("%s: 'name' must be a unique non-empty string" % where)
        names.add(name)
        fn = get("function", 4)
        if fn not in (3, 4):
            raise ValueError("%s: 'function' must be 3 or 4" % where)
        addr = get("address")
        if not isinstance(addr, int) or not 0 <= addr <= 0xFFFF:
            raise ValueError("%s: 'address' must be 0..65535" % where)
        typ = get("type", "uint16")
        if typ not in TYPES:
            raise ValueError("%s: 'type' must be one of %s" % (where, ", ".join(TYPES)))
        t = TYPES.index(typ)
        if addr + _WORDS[t] > 0x10000:
            raise ValueError("%s: registers past 65535" % where)
        order = get("word_order", "big")
        if order not in ("big", "little"):
            raise ValueError("%s: 'word_order' must be big or little" % where)
        sc = get("scaler", 0)
        if not isinstance(sc, int) or not -9 <= sc <= 9:
            raise ValueError("%s: 'scaler' must be -9..9" % where)
        try:
            unit, exp = unit_of(get("unit", "count"))
        except ValueError:
            raise ValueError("%s: unknown 'unit'" % where)
        rows.append((name, fn, addr, t, order == "little", sc, unit, exp))
    return rows


class ModbusMaster(Source):
    def __init__(
        self,
        devices,
        baud=9600,
        interval=10000,
        timeout=500,
        retries=2,
        frame_gap=50,
    ):
        # interval: ms between poll cycle starts; timeout: ms from the end
        # of a request to the first byte of its reply; frame_gap: ms without
        # a byte that ends a reply early.
        names = []
        fld = []  # (device, function, address, type, little, k)
        blocks = []  # (device, slave, function, start, count)
        self.slaves = bytearray(len(devices))
        dev_first = []
        for d in range(len(devices)):
            dev = devices[d]
            slave = dev["slave"]
            if not 1 <= slave <= 247:
                raise ValueError("slave address must be 1..247")
            self.slaves[d] = slave
            prefix = dev.get("name", "")
            regmap = dev["map"]
            rows = load_map(regmap)
            max_regs = regmap.get("max_registers", MAX_REGISTERS)
            max_gap = regmap.get("max_gap", 0)
            if not 1 <= max_regs <= MAX_REGISTERS or not 0 <= max_gap <= MAX_REGISTERS:
                raise ValueError("max_registers must be 1..125, max_gap 0..125")
            dev_first.append(len(names))
            # Sort by function then address; cut blocks.
            rows = sorted(rows, key=lambda r: (r[1], r[2]))
            cur = None
            for r in rows:
                name, fn, addr, t, little, sc, unit, exp = r
                end = addr + _WORDS[t]
                if cur is not None and cur[2] == fn and addr - cur[4] <= max_gap and end - cur[3] <= max_regs:
                    if end > cur[4]:
                        cur[4] = end
                else:
                    if _WORDS[t] > max_regs:
                        raise ValueError("a register wider than max_registers")
                    cur = [d, slave, fn, addr, end]
                    blocks.append(cur)
                names.append(prefix + "." + name if prefix else name)
                fld.append((len(blocks) - 1, addr - cur[3], t, little, -sc, sc + exp, unit))
        dev_first.append(len(names))
        if len(set(names)) != len(names):
            raise ValueError("field names repeat: give each device its own name")
        self._init_slots(names)
        nf = len(names)
        nb = len(blocks)
        # Constant tables as small-int arrays
        self._b_dev = bytearray(nb)
        self._b_slave = bytearray(nb)
        self._b_fn = bytearray(nb)
        self._b_start = array("H", [0] * nb)
        self._b_count = bytearray(nb)
        self._b_first = array("H", [0] * (nb + 1))  # first field of each block
        for b in range(nb):
            dv, sl, fn, st, en = blocks[b]
            self._b_dev[b] = dv
            self._b_slave[b] = sl
            self._b_fn[b] = fn
            self._b_start[b] = st
            self._b_count[b] = en - st
        order = sorted(range(nf), key=lambda i: fld[i][0])
        # fields keep the map's order for their slots; _f_order lists them
        # block by block
        self._f_order = array("H", order)
        self._f_off = bytearray(nf)
        self._f_type = bytearray(nf)
        self._f_little = bytearray(nf)
        self._f_k = array("b", [0] * nf)
        for i in range(nf):
            blk, off, t, little, k, scl, unit = fld[i]
            self._f_off[i] = off
            self._f_type[i] = t
            self._f_little[i] = 1 if little else 0
            self._f_k[i] = k
            self.scalers[i] = scl
            self.units[i] = unit
        b = 0
        for j in range(nf):
            blk = fld[order[j]][0]
            while b <= blk:
                self._b_first[b] = j
                b += 1
        while b <= nb:
            self._b_first[b] = nf
            b += 1
        self._dev_first = array("H", dev_first)
        self.ndevices = len(devices)
        self.nblocks = nb
        self.baud = baud
        self.interval = interval
        self.timeout = timeout
        self.retries = retries
        self.frame_gap = frame_gap
        self.silence = silence_ms(baud)
        self._char_ms = (11000 + baud - 1) // baud if baud else 1
        # Per device status (a gateway serves one logical device per slave)
        self.dev_status = bytearray(len(devices))
        self.dev_error = bytearray(len(devices))
        self.dev_last_good = [0] * len(devices)
        for d in range(len(devices)):
            self.dev_status[d] = NO_VALUE
        self._dev_ok = bytearray(len(devices))  # this cycle: 1 good, 2 failed
        self._dev_logged = bytearray(len(devices))  # failure kind logged per device
        self._rtx = bytearray(8)  # read requests
        self._wtx = bytearray(9 + 2 * 123)  # the write request
        self.tx_buf = self._rtx
        self.tx_start = 0
        self.tx_end = 0
        self.rx = bytearray(RX_SIZE)
        self.rx_len = 0
        # Counters
        self.good_polls = 0  # cycles in which every block was read
        self.failed_polls = 0
        self.requests = 0
        self.good_replies = 0
        self.timeouts = 0
        self.bad_crc = 0
        self.exceptions = 0
        self.last_exception = 0  # the code of the last exception reply
        self.wrong_slave = 0
        self.wrong_function = 0
        self.truncated = 0
        self.bad_format = 0  # byte count not the one asked for
        self.bad_values = 0  # NaN / infinity
        self.garbage_bytes = 0  # bytes on the bus while not waiting a reply
        self.state = IDLE
        self._due = True
        self._poll_ref = 0
        self._block = 0
        self._tries = 0
        self._last_bus = 0
        self._t_ref = 0
        self._limit = 0
        self._done = False
        self._cycle_failed = False
        self._rx_started = False
        self._heard = False  # nothing on the bus yet: it is silent
        self.write_state = W_NONE
        self.write_error = E_NONE
        self.write_exception = 0
        self.writes = 0  # writes confirmed
        self._w_len = 0
        self._w_on_bus = False  # the request on the bus is the write
        self._w_resume = IDLE
        self._w_event = False
        self._w_tries = 0

    # ------------------------------------------------------------------ API

    def poll(self, now):
        # Start a cycle at the next next_event() (after the running one).
        self._due = True

    def write(self, slave, address, values):
        # Queue a write of values (ints 0..65535) to holding registers from
        # address on; False (nothing queued) while another write is pending
        # or when the arguments are out of range. Builds the request now.
        n = len(values)
        if self.write_state == W_PENDING or not 1 <= slave <= 247 or not 1 <= n <= 123:
            return False
        if address < 0 or address + n > 0x10000:
            return False
        for v in values:
            if not 0 <= v <= 0xFFFF:
                return False
        w = self._wtx
        w[0] = slave
        w[2] = address >> 8
        w[3] = address & 0xFF
        if n == 1:
            w[1] = 6
            w[4] = values[0] >> 8
            w[5] = values[0] & 0xFF
            k = 6
        else:
            w[1] = 16
            w[4] = 0
            w[5] = n
            w[6] = 2 * n
            k = 7
            for v in values:
                w[k] = v >> 8
                w[k + 1] = v & 0xFF
                k += 2
        c = crc(w, 0, k)
        w[k] = c & 0xFF
        w[k + 1] = c >> 8
        self._w_len = k + 2
        self._w_tries = 0
        self.write_state = W_PENDING
        self.write_error = E_NONE
        self.write_exception = 0
        return True

    def device_fields(self, d):
        # The slots of device d: range(first, end) as (first, end)
        return self._dev_first[d], self._dev_first[d + 1]

    def feed(self, data, start, end, now):
        # Every byte read from the bus; returns end - start.
        if end <= start:
            return 0
        self._heard = True
        if self.state != REPLY:
            self.garbage_bytes += end - start
            self._last_bus = now
            return end - start
        rx = self.rx
        n = self.rx_len
        i = start
        while i < end:
            if n < RX_SIZE:
                rx[n] = data[i]
                n += 1
            i += 1
        self.rx_len = n
        self._last_bus = now
        self._rx_started = True
        # complete?
        if self._w_on_bus:
            fn = self._wtx[1]
            want = 8
        else:
            fn = self._b_fn[self._block]
            want = 2 * self._b_count[self._block] + 5
        if n >= 5 and rx[1] == fn | 0x80:
            self._reply(now)
        elif n >= want and rx[1] == fn:
            self._reply(now)
        elif n >= RX_SIZE:
            self._reply(now)
        return end - start

    def next_event(self, now):
        if self._w_event:
            self._w_event = False
            return EV_WRITTEN
        if self._done:
            self._done = False
            return EV_DONE
        st = self.state
        if st == REPLY:
            if self._rx_started:
                if ticks_diff(now, self._last_bus) > self.frame_gap:
                    self._reply(now)
            elif ticks_diff(now, self._t_ref) > self._limit:
                if self._w_on_bus:
                    self._write_failed(E_TIMEOUT, now, True)
                else:
                    self._failed(E_TIMEOUT, "modbus: no reply", now)
            if self._w_event:
                self._w_event = False
                return EV_WRITTEN
            if self._done:
                self._done = False
                return EV_DONE
            st = self.state
        if (st == IDLE or st == SILENCE) and self.write_state == W_PENDING:
            if not self._heard or ticks_diff(now, self._last_bus) >= self.silence:
                return self._send_write(st, now)
            return EV_NONE
        if st == IDLE:
            if self.nblocks and (self._due or ticks_diff(now, self._poll_ref) >= self.interval):
                self._due = False
                self._poll_ref = now
                self._block = 0
                self._tries = 0
                self._cycle_failed = False
                for d in range(self.ndevices):
                    self._dev_ok[d] = 0
                self.state = SILENCE
                st = SILENCE
        if st == SILENCE:
            if not self._heard or ticks_diff(now, self._last_bus) >= self.silence:
                return self._send(now)
        return EV_NONE

    # ------------------------------------------------------------- internals

    def _send_write(self, resume, now):
        self._w_resume = resume
        self._w_on_bus = True
        self.tx_buf = self._wtx
        self.tx_start = 0
        self.tx_end = self._w_len
        self._on_bus(now, self._w_len)
        return EV_SEND

    def _on_bus(self, now, n):
        # A request of n bytes goes out now: wait for its reply.
        self.requests += 1
        self._heard = True
        self._last_bus = now
        self.rx_len = 0
        self._rx_started = False
        self.state = REPLY
        self._t_ref = now
        self._limit = n * self._char_ms + self.timeout

    def _send(self, now):
        b = self._block
        tx = self._rtx
        self.tx_buf = tx
        self._w_on_bus = False
        tx[0] = self._b_slave[b]
        tx[1] = self._b_fn[b]
        s = self._b_start[b]
        tx[2] = s >> 8
        tx[3] = s & 0xFF
        tx[4] = 0
        tx[5] = self._b_count[b]
        c = crc(tx, 0, 6)
        tx[6] = c & 0xFF
        tx[7] = c >> 8
        self.tx_start = 0
        self.tx_end = 8
        self._on_bus(now, 8)
        return EV_SEND

    def _reply(self, now):
        # A whole reply (or what came before the gap) is in rx[0:rx_len].
        if self._w_on_bus:
            self._write_reply(now)
            return
        rx = self.rx
        n = self.rx_len
        b = self._block
        fn = self._b_fn[b]
        want = 2 * self._b_count[b] + 5
        if n < 5 or (n < want and rx[1] != fn | 0x80):
            self.truncated += 1
            self._failed(E_FORMAT, "modbus: truncated reply", now)
            return
        if crc(rx, 0, n) != 0:  # over the CRC too: 0 when right
            self.bad_crc += 1
            self._failed(E_CHECK, "modbus: bad CRC", now)
            return
        if rx[0] != self._b_slave[b]:
            self.wrong_slave += 1
            self._failed(E_PEER, "modbus: reply from another slave", now)
            return
        if rx[1] == fn | 0x80:
            self.exceptions += 1
            code = rx[2]
            self.last_exception = code
            self._failed(E_EXCEPTION, "modbus: exception reply", now, code == 5 or code == 6)
            return
        if rx[1] != fn:
            self.wrong_function += 1
            self._failed(E_PEER, "modbus: reply with another function", now)
            return
        if n != want or rx[2] != want - 5:
            self.bad_format += 1
            self._failed(E_FORMAT, "modbus: reply of the wrong size", now)
            return
        self.good_replies += 1
        self._decode(b, now)
        self._next_block(now)

    def _write_reply(self, now):
        rx = self.rx
        n = self.rx_len
        w = self._wtx
        fn = w[1]
        if n < 5 or (n < 8 and rx[1] != fn | 0x80):
            self.truncated += 1
            self._write_failed(E_FORMAT, now, True)
        elif crc(rx, 0, n) != 0:
            self.bad_crc += 1
            self._write_failed(E_CHECK, now, True)
        elif rx[0] != w[0]:
            self.wrong_slave += 1
            self._write_failed(E_PEER, now, True)
        elif rx[1] == fn | 0x80:
            self.exceptions += 1
            self.last_exception = rx[2]
            self.write_exception = rx[2]
            self._write_failed(E_EXCEPTION, now, rx[2] == 5 or rx[2] == 6)
        elif rx[1] != fn:
            self.wrong_function += 1
            self._write_failed(E_PEER, now, True)
        elif n != 8 or rx[2] != w[2] or rx[3] != w[3] or rx[4] != w[4] or rx[5] != w[5]:
            self.bad_format += 1
            self._write_failed(E_FORMAT, now, True)
        else:
            self.writes += 1
            self.write_state = W_DONE
            self._write_end()

    def _write_failed(self, kind, now, retry):
        if kind == E_TIMEOUT:
            self.timeouts += 1
        self._w_tries += 1
        if retry and self._w_tries <= self.retries:
            self.state = self._w_resume
            self._w_on_bus = False  # write_state stays W_PENDING: sent again
            return
        self.write_state = W_FAILED
        self.write_error = kind
        if self.log is not None:
            self.log("modbus: write failed")
        self._write_end()

    def _write_end(self):
        self._w_on_bus = False
        self._w_event = True
        self._w_tries = 0
        self.state = self._w_resume

    def _decode(self, b, now):
        rx = self.rx
        order = self._f_order
        j = self._b_first[b]
        end = self._b_first[b + 1]
        while j < end:
            i = order[j]
            j += 1
            p = 3 + 2 * self._f_off[i]
            t = self._f_type[i]
            little = self._f_little[i]
            if t <= T_UINT16:
                v = (rx[p] << 8) | rx[p + 1]
                if t == T_INT16 and v >= 0x8000:
                    v -= 0x10000
            elif t == T_FLOAT64:
                v = self._float64(rx, p, little, self._f_k[i])
            else:
                if little:
                    hi = (rx[p + 2] << 8) | rx[p + 3]
                    lo = (rx[p] << 8) | rx[p + 1]
                else:
                    hi = (rx[p] << 8) | rx[p + 1]
                    lo = (rx[p + 2] << 8) | rx[p + 3]
                if t == T_FLOAT32:
                    e = (hi >> 7) & 0xFF
                    m = ((hi & 0x7F) << 16) | lo
                    if e == 0xFF:
                        v = None
                    elif e == 0:
                        v = scaled(hi >> 15, m, -149, self._f_k[i])
                    else:
                        v = scaled(hi >> 15, m | 0x800000, e - 150, self._f_k[i])
                elif t == T_INT32 and hi >= 0x8000:
                    v = (hi - 0x10000) * 0x10000 + lo
                else:
                    v = hi * 0x10000 + lo
            if v is None:
                self.bad_values += 1
                self._field_fail(i, E_RANGE)
                self._cycle_failed = True
                self._fail(E_RANGE, "modbus: a float register is not a number")
                continue
            self.values[i] = v
            self.field_status[i] = OK
            self.field_error[i] = E_NONE
            self.stamps[i] = now

    def _float64(self, rx, p, little, k):
        w = [0, 0, 0, 0]
        for q in range(4):
            w[3 - q if little else q] = (rx[p + 2 * q] << 8) | rx[p + 2 * q + 1]
        e = (w[0] >> 4) & 0x7FF
        m = ((w[0] & 0xF) << 48) | (w[1] << 32) | (w[2] << 16) | w[3]
        if e == 0x7FF:
            return None
        if e == 0:
            return scaled(w[0] >> 15, m, -1074, k)
        return scaled(w[0] >> 15, m | (1 << 52), e - 1075, k)

    def _failed(self, kind, msg, now, retry=True):
        if kind == E_TIMEOUT:
            self.timeouts += 1
        self._fail(kind, msg)
        self._tries += 1
        if retry and self._tries <= self.retries:
            self.state = SILENCE  # the same block again
            return
        # give up this block
        b = self._block
        d = self._b_dev[b]
        self._fail_block(b, kind)
        self._dev_ok[d] = 2
        self.dev_error[d] = kind
        self._cycle_failed = True
        if kind == E_TIMEOUT and (b == 0 or self._b_dev[b - 1] != d):
            # a device that does not answer its first block: skip the rest
            while b + 1 < self.nblocks and self._b_dev[b + 1] == d:
                b += 1
                self._fail_block(b, kind)
            self._block = b
        self._next_block(now)

    def _fail_block(self, b, kind):
        order = self._f_order
        for j in range(self._b_first[b], self._b_first[b + 1]):
            self._field_fail(order[j], kind)

    def _next_block(self, now):
        b = self._block
        d = self._b_dev[b]
        if self._dev_ok[d] == 0 and (b + 1 >= self.nblocks or self._b_dev[b + 1] != d):
            self._dev_ok[d] = 1  # its last block: every one of them was read
        if self._dev_ok[d] == 1 or (self._dev_ok[d] == 2 and (b + 1 >= self.nblocks or self._b_dev[b + 1] != d)):
            self._device_done(d, now)
        self._tries = 0
        if b + 1 < self.nblocks:
            self._block = b + 1
            self.state = SILENCE
            return
        self.state = IDLE
        self._done = True
        if self._cycle_failed:
            self.failed_polls += 1
            if self.status != STALE:
                fs = self.field_status
                for i in range(len(fs)):
                    if fs[i] != NO_VALUE:
                        self.status = STALE  # some values, none of them new
                        break
        else:
            self.good_polls += 1
            self._good(now)

    def _fail(self, kind, msg):
        # Source._fail, with the failure logged once per device and kind (a
        # bus with one dead meter and one refusing a register would
        # otherwise log both on every cycle).
        self.error = kind
        self.last_error = msg
        if self.status == OK:
            self.status = STALE
        d = self._b_dev[self._block]
        if self._dev_logged[d] != kind:
            self._dev_logged[d] = kind
            if self.log is not None:
                self.log(msg)

    def _device_done(self, d, now):
        if self._dev_ok[d] == 1 and not self._dev_range_failed(d):
            self.dev_status[d] = OK
            self.dev_error[d] = E_NONE
            self.dev_last_good[d] = now
            if self._dev_logged[d] != E_NONE:
                self._dev_logged[d] = E_NONE
                if self.log is not None:
                    self.log("modbus: a slave answers again")
        elif self.dev_status[d] == OK:
            self.dev_status[d] = STALE

    def _dev_range_failed(self, d):
        fs = self.field_status
        for i in range(self._dev_first[d], self._dev_first[d + 1]):
            if fs[i] != OK:
                return True
        return False
