# Prepayment: Account (class_id 111), Credit (class_id 112) and Charge
# (class_id 113), all version 0, Blue Book 4.6.2-4.6.4: credit bought in
# advance, deducted as energy is consumed, the supply opened through the
# Disconnect control when it runs out and closed again on top-up. Token
# gateway (class 115) is in token_gateway.py.
#
# WHAT IS IMPLEMENTED - a subset that makes the prepayment cycle real:
#
# CREDIT (112)
#   2 current_credit_amount    double-long (SET: no; methods below)
#   3 credit_type              enum (param): 0 token, 1 reserved,
#                              2 emergency, 3 time based, 4 consumption based
#   4 priority                 unsigned, 1 = used first (SET)
#   5 warning_threshold        double-long (SET; stored, not acted upon)
#   6 limit                    double-long (SET; stored, not enforced)
#   7 credit_configuration     bit-string(5) (param; not acted upon)
#   8 credit_status            enum: 0 enabled, 1 selectable, 2 selected/
#                              invoked, 3 in use, 4 exhausted
#   9 preset_credit_amount     double-long (SET)
#   10 credit_available_threshold double-long (SET; stored)
#   11 period                  octet-string(12) date-time (param)
#   method 1 update_amount (double-long)       amount += value
#   method 2 set_amount_to_value (double-long) amount := value
#   method 3 invoke_credit (enum)   a selectable credit (an emergency
#                              credit) becomes selected/invoked, i.e. usable;
#                              a credit that is not selectable: REFUSED
#   A credit is usable while enabled, invoked or in use with an amount > 0;
#   one that reaches 0 is exhausted and enabled again when credit comes back.
#
# CHARGE (113) - consumption based collection from one commodity register:
#   2 total_amount_paid        double-long
#   3 charge_type              enum (param)
#   4 priority                 unsigned (param)
#   5 unit_charge_active       structure {charge_per_unit_scaling structure
#                              {commodity_scale integer, price_scale integer},
#                              commodity structure {class_id long-unsigned,
#                              logical_name octet-string, attribute_index
#                              integer}, charge_table array of structure
#                              {index octet-string, charge_per_unit long}}:
#                              one charge table element (single rate)
#   6 unit_charge_passive      the same value (no passive unit charge)
#   7 unit_charge_activation_time  date-time, not specified
#   8 period                   double-long-unsigned (param)
#   9 charge_configuration     bit-string(2) (param)
#   10 last_collection_time    octet-string(12) date-time
#   11 last_collection_amount  double-long
#   12 total_amount_remaining  double-long
#   13 proportion              long-unsigned (param)
#   method 3 collect (integer(0))   collect now (deducted at the account's
#                              next tick)
#   method 4 update_total_amount_remaining (double-long)   += value
#   method 5 set_total_amount_remaining (double-long)      := value
#   methods 1 update_unit_charge, 2 activate_passive_unit_charge: not
#   implemented (READ_WRITE_DENIED); the unit charge is the param's.
#   Collection: the commodity's value (read through its own handler) has
#   risen by delta since the last collection; charge = delta x
#   charge_per_unit x 10^(commodity_scale + price_scale), the fraction
#   below one currency unit carried to the next collection (nothing lost).
#   A value that went down (register reset) charges nothing.
#
# ACCOUNT (111)
#   2 account_mode_and_status  structure {payment_mode enum (1 credit,
#                              2 prepayment), account_status enum (1 new,
#                              2 active, 3 closed)} (SET: the prepaid mode
#                              switch)
#   3 current_credit_in_use    unsigned: position of the credit in use in
#                              credit_reference_list, from 1 (0: none)
#   4 current_credit_status    bit-string(8): bit 0 in_credit, 1 low_credit,
#                              3 next_credit_selectable, 5 selectable_credit_
#                              in_use, 6 out_of_credit (2, 4, 7 stay 0)
#   5 available_credit         double-long: the positive amounts of the
#                              usable credits
#   6 amount_to_clear, 7 clearance_threshold, 8 aggregated_debt
#                              double-long (stored; 7 SET; no debt recovery)
#   9 credit_reference_list    array of octet-string (param)
#   10 charge_reference_list   array of octet-string (param)
#   11 credit_charge_configuration  array of structure {credit_reference,
#                              charge_reference octet-string, collection_
#                              configuration bit-string(3)}: every charge
#                              collects from every credit (built from param)
#   12 token_gateway_configuration  array of structure {credit_reference
#                              octet-string, token_proportion unsigned} (param)
#   13 account_activation_time, 14 account_closure_time  octet-string(12)
#   15 currency                structure {name utf8-string, scale integer,
#                              unit enum} (param)
#   16 low_credit_threshold    double-long (SET)
#   17 next_credit_available_threshold  double-long (SET; stored)
#   18 max_provision           long-unsigned (param)
#   19 max_provision_period    double-long-unsigned (param)
#   method 1 activate_account  new -> active (closed: REFUSED)
#   method 2 close_account     -> closed
#   method 3 reset_account     -> new; amount_to_clear, debt, times cleared
#
# THE CYCLE. tick(meter, account, utc) - the port's loop, after metering -
# collects every charge, deducts the amounts from the usable credits in
# priority order (when none is left the credit in use goes below 0: what
# was consumed before the relay opened is owed and the next top-up pays it
# first), then update() sets available_credit and the status bits and, for
# an active account in prepayment mode:
#   - available_credit <= 0 (out of credit): Disconnect control transition
#     g (local_disconnect, connected -> ready_for_reconnection);
#   - credit back (a top-up, update_amount, an invoked emergency credit):
#     transition h (local_reconnect) where the control mode has it (5, 6);
#     in the other modes the relay stays open, ready_for_reconnection, until
#     the customer presses the button (manual_reconnect, e). Only a
#     disconnection the account made is undone this way (not a remote or
#     limiter one).
#   - low_credit when available_credit <= low_credit_threshold.
# consume(meter, account, amount) deducts an amount directly (metering that
# prices consumption itself). Credit methods and a switch to credit mode
# take effect at the next tick (a token's top-up calls update() at once).
#
# param
#   Credit  (credit_type, credit_configuration, period): configuration an
#           int of 5 bits, bit 0 = 0x80; period 12 bytes or None
#   Charge  (charge_type, priority, commodity (class_id, logical_name,
#           attribute_index), commodity_scale, price_scale, index (bytes),
#           charge_configuration (int, bit 0 = 0x80), proportion, period)
#   Account (credits (logical names), charges (logical names),
#           disconnect control logical name or None, currency (name bytes,
#           scale, unit), token_gateway_configuration ((credit logical name,
#           proportion %), ...), max_provision, max_provision_period)
# state: credit_state(), charge_state(), account_state() give the slots.
#
# PERSISTENCE (optional): account_state(..., storage, key). save() writes
# the run-time values of the account, its credits and its charges as one
# record (8 bytes a value); restore() reads it back at boot. It is written
# at once by what changes credit on request - a token (token_gateway.py),
# the Credit methods, the Account's SETs and methods - but not by the
# ticks' deductions (a flash write per tick would wear it out): the port
# calls save() every so often (e.g. hourly) and, where it can, on a
# power-fail warning. A power cut loses at most the consumption charged
# since the last save (to the customer's benefit), never a top-up.
# Commodity values are kept as integers (a float register is truncated).
#
# NOT IMPLEMENTED (Blue Book 4.6): time based and payment event based
# collection, passive unit charges and their activation, charge tables of
# more than one element (tariff-indexed prices), debt recovery
# (amount_to_clear, clearance_threshold, aggregated_debt are stored only),
# credit_charge_configuration and credit limits / warning thresholds acting
# on collection, max_provision, the credit's period, preset amounts applied
# on reset.

from dlms_micro import axdr
from dlms_micro.cosem import base, common, disconnect
from dlms_micro.errors import DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


REFUSED = base.TEMPORARY_FAILURE

# credit_status
ENABLED = const(0)
SELECTABLE = const(1)
INVOKED = const(2)
IN_USE = const(3)
EXHAUSTED = const(4)

# payment mode, account status
CREDIT_MODE = const(1)
PREPAYMENT_MODE = const(2)
NEW = const(1)
ACTIVE = const(2)
CLOSED = const(3)

# current_credit_status bits (bit 0 = most significant)
IN_CREDIT = const(0x80)
LOW_CREDIT = const(0x40)
NEXT_CREDIT_SELECTABLE = const(0x10)
SELECTABLE_CREDIT_IN_USE = const(0x04)
OUT_OF_CREDIT = const(0x02)

_MAX = 0x7FFFFFFF  # double-long
_NO_TIME = b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"

# Credit slots
C_AMOUNT = const(0)
C_STATUS = const(1)
C_WARNING = const(2)
C_LIMIT = const(3)
C_PRESET = const(4)
C_AVAILABLE = const(5)
C_PRIORITY = const(6)
CREDIT_SLOTS = 7

# Charge slots
H_PAID = const(0)
H_LAST_TIME = const(1)
H_LAST_AMOUNT = const(2)
H_REMAINING = const(3)
H_PRICE = const(4)
H_READING = const(5)
H_FRACTION = const(6)
H_PENDING = const(7)
H_PROBE = const(8)
CHARGE_SLOTS = 9

# Account slots
A_MODE = const(0)
A_STATUS = const(1)
A_IN_USE = const(2)
A_BITS = const(3)
A_AVAILABLE = const(4)
A_TO_CLEAR = const(5)
A_CLEARANCE = const(6)
A_DEBT = const(7)
A_ACTIVATED = const(8)
A_CLOSED = const(9)
A_LOW = const(10)
A_NEXT = const(11)
A_TRIPPED = const(12)
A_ENTRIES = const(13)
A_STORE = const(14)
ACCOUNT_SLOTS = 15

# Charge param
P_CHARGE_TYPE = const(0)
P_PRIORITY = const(1)
P_COMMODITY = const(2)
P_COMMODITY_SCALE = const(3)
P_PRICE_SCALE = const(4)
P_INDEX = const(5)
P_CONFIGURATION = const(6)
P_PROPORTION = const(7)
P_PERIOD = const(8)
# Account param
P_CREDITS = const(0)
P_CHARGES = const(1)
P_DISCONNECT = const(2)
P_CURRENCY = const(3)
P_TOKEN_CONFIG = const(4)
P_MAX_PROVISION = const(5)
P_MAX_PROVISION_PERIOD = const(6)

_bits = bytearray(1)  # bit-string scratch


def credit_state(amount=0, status=ENABLED, priority=1, warning=0, limit=0, preset=0, available_threshold=0):
    return [amount, status, warning, limit, preset, available_threshold, priority]


def charge_state(charge_per_unit, paid=0, remaining=0):
    from dlms_micro.cosem.monitor import Probe

    return [paid, None, 0, remaining, charge_per_unit, None, 0, 0, Probe()]


def account_state(mode=PREPAYMENT_MODE, status=ACTIVE, low_credit_threshold=0, clearance_threshold=0,
                  next_credit_available_threshold=0, storage=None, key=None):
    # storage, key: optional persistence (see PERSISTENCE above)
    return [mode, status, 0, 0, 0, 0, clearance_threshold, 0, None, None, low_credit_threshold,
            next_credit_available_threshold, False, None, (storage, key) if storage is not None else None]


def _clk():
    from dlms_micro.cosem import clock

    return clock


def _enc_time(meter, buf, pos, utc):
    if utc is None:
        return axdr.enc_octet_string(buf, pos, _NO_TIME)
    return _clk().enc_local_time(meter, utc, buf, pos)


def _enc_bits(buf, pos, n, v):
    _bits[0] = v
    return axdr.enc_bit_string(buf, pos, n, _bits)


def _read_double_long(ctx):
    # The double-long parameter of a method, or None.
    try:
        return ctx.r.double_long()
    except DecodeError:
        return None


def _usable(st, s):
    c = st[s + C_STATUS]
    return (c == ENABLED or c == INVOKED or c == IN_USE) and st[s + C_AMOUNT] > 0


# --------------------------------------------------------------------- credit


class Credit(base.InterfaceClass):
    class_id = 112
    version = 0
    attribute_count = 11
    method_count = 3
    slots = CREDIT_SLOTS

    def get(self, ctx, obj, attr):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        p = obj[base.E_PARAM]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = axdr.enc_double_long(buf, pos, st[s + C_AMOUNT])
        elif attr == 3:
            pos = axdr.enc_enum(buf, pos, p[0])
        elif attr == 4:
            pos = axdr.enc_unsigned(buf, pos, st[s + C_PRIORITY])
        elif attr == 5:
            pos = axdr.enc_double_long(buf, pos, st[s + C_WARNING])
        elif attr == 6:
            pos = axdr.enc_double_long(buf, pos, st[s + C_LIMIT])
        elif attr == 7:
            pos = _enc_bits(buf, pos, 5, p[1])
        elif attr == 8:
            pos = axdr.enc_enum(buf, pos, st[s + C_STATUS])
        elif attr == 9:
            pos = axdr.enc_double_long(buf, pos, st[s + C_PRESET])
        elif attr == 10:
            pos = axdr.enc_double_long(buf, pos, st[s + C_AVAILABLE])
        elif attr == 11:
            pos = axdr.enc_octet_string(buf, pos, p[2] if p[2] is not None else _NO_TIME)
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        if attr == 4:
            return common.read_value(ctx, axdr.UNSIGNED, 0, None, None, st, s + C_PRIORITY)
        k = _CREDIT_SETS.get(attr)
        if k is None:
            return base.READ_WRITE_DENIED
        return common.read_value(ctx, axdr.DOUBLE_LONG, 0, None, None, st, s + k)

    def action(self, ctx, obj, method):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        if method == 3:
            try:
                ctx.r.number()
            except DecodeError:
                return base.TYPE_UNMATCHED
            if st[s + C_STATUS] != SELECTABLE:
                return REFUSED
            st[s + C_STATUS] = INVOKED
            save_owners(ctx.meter, obj)
            return base.SUCCESS
        if method != 1 and method != 2:
            return base.READ_WRITE_DENIED
        v = _read_double_long(ctx)
        if v is None:
            return base.TYPE_UNMATCHED
        if method == 1:
            v += st[s + C_AMOUNT]
            if not -_MAX - 1 <= v <= _MAX:
                return base.OTHER_REASON
        set_amount(ctx.meter, obj, v)
        save_owners(ctx.meter, obj)
        return base.SUCCESS


# writable double-long attributes -> slot
_CREDIT_SETS = {5: C_WARNING, 6: C_LIMIT, 9: C_PRESET, 10: C_AVAILABLE}


def set_amount(meter, credit, v):
    # current_credit_amount := v; an exhausted credit with credit again is
    # enabled.
    st = meter.state
    s = credit[base.E_SLOT]
    st[s + C_AMOUNT] = v
    if v > 0 and st[s + C_STATUS] == EXHAUSTED:
        st[s + C_STATUS] = ENABLED


def add_credit(meter, credit, amount):
    # A top-up of one credit (Token gateway, tests).
    set_amount(meter, credit, meter.state[credit[base.E_SLOT] + C_AMOUNT] + amount)


# --------------------------------------------------------------------- charge


def collect(meter, charge, utc):
    # Collect what the commodity consumed since the last collection; the
    # amount (also added to the charge's pending amount, which the
    # account's tick deducts). The first call only reads the commodity.
    st = meter.state
    s = charge[base.E_SLOT]
    p = charge[base.E_PARAM]
    probe = st[s + H_PROBE]
    if probe.entry is None:
        c = p[P_COMMODITY]
        probe.point(c[0], c[1], 0, c[2])
    v = probe.read(meter)
    if v is None:
        return 0
    last = st[s + H_READING]
    st[s + H_READING] = v
    if last is None or v <= last:
        return 0
    scaled = (v - last) * st[s + H_PRICE] + st[s + H_FRACTION]
    k = p[P_COMMODITY_SCALE] + p[P_PRICE_SCALE]
    if k >= 0:
        amount = scaled * 10 ** k
        st[s + H_FRACTION] = 0
    else:
        d = 10 ** -k
        amount = scaled // d
        st[s + H_FRACTION] = scaled - amount * d
    if amount:
        st[s + H_PAID] += amount
        st[s + H_LAST_AMOUNT] = amount
        st[s + H_LAST_TIME] = utc
        st[s + H_PENDING] += amount
    return amount


class Charge(base.InterfaceClass):
    class_id = 113
    version = 0
    attribute_count = 13
    method_count = 5
    slots = CHARGE_SLOTS

    def get(self, ctx, obj, attr):
        meter = ctx.meter
        st = meter.state
        s = obj[base.E_SLOT]
        p = obj[base.E_PARAM]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = axdr.enc_double_long(buf, pos, st[s + H_PAID])
        elif attr == 3:
            pos = axdr.enc_enum(buf, pos, p[P_CHARGE_TYPE])
        elif attr == 4:
            pos = axdr.enc_unsigned(buf, pos, p[P_PRIORITY])
        elif attr == 5 or attr == 6:
            c = p[P_COMMODITY]
            pos = axdr.enc_structure(buf, pos, 3)
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_integer(buf, pos, p[P_COMMODITY_SCALE])
            pos = axdr.enc_integer(buf, pos, p[P_PRICE_SCALE])
            pos = axdr.enc_structure(buf, pos, 3)
            pos = axdr.enc_long_unsigned(buf, pos, c[0])
            pos = axdr.enc_octet_string(buf, pos, c[1])
            pos = axdr.enc_integer(buf, pos, c[2])
            pos = axdr.enc_array(buf, pos, 1)
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_octet_string(buf, pos, p[P_INDEX])
            pos = axdr.enc_long(buf, pos, st[s + H_PRICE])
        elif attr == 7:
            pos = axdr.enc_octet_string(buf, pos, _NO_TIME)
        elif attr == 8:
            pos = axdr.enc_double_long_unsigned(buf, pos, p[P_PERIOD])
        elif attr == 9:
            pos = _enc_bits(buf, pos, 2, p[P_CONFIGURATION])
        elif attr == 10:
            pos = _enc_time(meter, buf, pos, st[s + H_LAST_TIME])
        elif attr == 11:
            pos = axdr.enc_double_long(buf, pos, st[s + H_LAST_AMOUNT])
        elif attr == 12:
            pos = axdr.enc_double_long(buf, pos, st[s + H_REMAINING])
        elif attr == 13:
            pos = axdr.enc_long_unsigned(buf, pos, p[P_PROPORTION])
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def action(self, ctx, obj, method):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        if method == 3:
            try:
                res = common.integer_param(ctx)
            except DecodeError:
                res = base.TYPE_UNMATCHED
            if res == base.SUCCESS:
                collect(ctx.meter, obj, _clk().now(ctx.meter))
            return res
        if method != 4 and method != 5:
            return base.READ_WRITE_DENIED  # update_unit_charge, activate_passive: not implemented
        v = _read_double_long(ctx)
        if v is None:
            return base.TYPE_UNMATCHED
        if method == 4:
            v += st[s + H_REMAINING]
            if not -_MAX - 1 <= v <= _MAX:
                return base.OTHER_REASON
        st[s + H_REMAINING] = v
        return base.SUCCESS


# -------------------------------------------------------------------- account


def _entries(meter, account):
    # (credit entries, charge entries, disconnect entry), found once.
    st = meter.state
    s = account[base.E_SLOT]
    e = st[s + A_ENTRIES]
    if e is None:
        p = account[base.E_PARAM]
        dc = meter.find(70, p[P_DISCONNECT], 0) if p[P_DISCONNECT] is not None else None
        e = st[s + A_ENTRIES] = (_find_all(meter, 112, p[P_CREDITS]), _find_all(meter, 113, p[P_CHARGES]), dc)
    return e


def _find_all(meter, cid, lns):
    # (a loop, not a comprehension: a comprehension over `meter` would make
    # it a closure cell, allocated at every call of the enclosing function)
    out = []
    for ln in lns:
        e = meter.find(cid, ln, 0)
        if e is None:
            raise ValueError("account: a credit or charge reference is not in the table")
        out.append(e)
    return tuple(out)


def _next_credit(st, credits, skip):
    # The usable credit with the best (lowest) priority, or -1.
    best = -1
    bp = 0
    for i in range(len(credits)):
        if i == skip:
            continue
        s = credits[i][base.E_SLOT]
        if _usable(st, s) and (best < 0 or st[s + C_PRIORITY] < bp):
            best = i
            bp = st[s + C_PRIORITY]
    return best


def consume(meter, account, amount):
    # Deduct amount from the account's usable credits, best priority first;
    # what no credit covers takes the first credit of credit_reference_list
    # below 0 (owed: a top-up pays it first). Then update().
    st = meter.state
    credits = _entries(meter, account)[0]
    while amount > 0 and credits:
        i = _next_credit(st, credits, -1)
        if i < 0:
            st[credits[0][base.E_SLOT] + C_AMOUNT] -= amount
            break
        s = credits[i][base.E_SLOT]
        have = st[s + C_AMOUNT]
        if have > amount:
            st[s + C_AMOUNT] = have - amount
            break
        st[s + C_AMOUNT] = 0
        st[s + C_STATUS] = EXHAUSTED
        amount -= have
    update(meter, account)


def update(meter, account):
    # available_credit, the credit in use (the usable one of best priority),
    # the status bits, and the relay.
    st = meter.state
    a = account[base.E_SLOT]
    credits, charges, dc = _entries(meter, account)
    use = _next_credit(st, credits, -1)
    avail = 0
    selectable = False
    for i in range(len(credits)):
        s = credits[i][base.E_SLOT]
        c = st[s + C_STATUS]
        if c == SELECTABLE:
            selectable = True
        if _usable(st, s):
            avail += st[s + C_AMOUNT]
        if i == use:
            st[s + C_STATUS] = IN_USE
        elif c == IN_USE or (c == EXHAUSTED and st[s + C_AMOUNT] > 0):
            st[s + C_STATUS] = EXHAUSTED if st[s + C_AMOUNT] <= 0 else ENABLED
    st[a + A_IN_USE] = use + 1
    st[a + A_AVAILABLE] = avail
    bits = IN_CREDIT if avail > 0 else OUT_OF_CREDIT
    if avail <= st[a + A_LOW]:
        bits |= LOW_CREDIT
    if selectable:
        bits |= NEXT_CREDIT_SELECTABLE
    if use >= 0 and credits[use][base.E_PARAM][0] == 2:  # an emergency credit
        bits |= SELECTABLE_CREDIT_IN_USE
    st[a + A_BITS] = bits
    if dc is None:
        return
    if st[a + A_STATUS] == ACTIVE and st[a + A_MODE] == PREPAYMENT_MODE and avail <= 0:
        if disconnect.local_disconnect(meter, dc):
            st[a + A_TRIPPED] = True
            if meter.log is not None:
                meter.log("prepayment: out of credit, supply opened")
    elif st[a + A_TRIPPED]:
        cs = disconnect.control_state(meter, dc)
        if cs == disconnect.READY_FOR_RECONNECTION:
            if disconnect.local_reconnect(meter, dc):
                st[a + A_TRIPPED] = False
        else:  # closed by hand or changed remotely: no longer ours to undo
            st[a + A_TRIPPED] = False


def tick(meter, account, utc):
    # The port's periodic call: collect every charge, deduct, update. The
    # amount deducted.
    st = meter.state
    total = 0
    for ch in _entries(meter, account)[1]:
        collect(meter, ch, utc)
        s = ch[base.E_SLOT]
        total += st[s + H_PENDING]
        st[s + H_PENDING] = 0
    if total and st[account[base.E_SLOT] + A_STATUS] == ACTIVE:
        consume(meter, account, total)
    else:
        update(meter, account)
    return total


def credits_of(meter, account):
    return _entries(meter, account)[0]


# ---------------------------------------------------------------- persistence

_ACCOUNT_SAVED = const(13)  # slots A_MODE .. A_TRIPPED
_CREDIT_SAVED = const(7)  # every Credit slot
_CHARGE_SAVED = const(8)  # H_PAID .. H_PENDING
_NONE = -0x8000000000000000  # a None slot in the record
_MAGIC = b"P1"


def _saved_slots(meter, account):
    # The state slots the record holds, in record order.
    credits, charges, dc = _entries(meter, account)
    s = account[base.E_SLOT]
    out = list(range(s, s + _ACCOUNT_SAVED))
    for c in credits:
        k = c[base.E_SLOT]
        out.extend(range(k, k + _CREDIT_SAVED))
    for c in charges:
        k = c[base.E_SLOT]
        out.extend(range(k, k + _CHARGE_SAVED))
    return out


def save(meter, account):
    # Write the account's, its credits' and its charges' run-time values to
    # the account's storage as one record (atomic when storage.put is).
    # True when written; a storage failure is logged and gives False.
    per = meter.state[account[base.E_SLOT] + A_STORE]
    if per is None:
        return False
    import struct

    st = meter.state
    idx = _saved_slots(meter, account)
    rec = bytearray(2 + 8 * len(idx))
    rec[0:2] = _MAGIC
    for k in range(len(idx)):
        v = st[idx[k]]
        struct.pack_into(">q", rec, 2 + 8 * k, _NONE if v is None else int(v))
    try:
        per[0].put(per[1], bytes(rec))
    except Exception as e:  # noqa: BLE001 - the port's storage may raise anything
        if meter.log is not None:
            meter.log("prepayment: saving the account failed: %r" % (e,))
        return False
    return True


def restore(meter, account):
    # Read the record back (boot, before the first tick); True when a valid
    # record of this configuration was found. Then update() sets the rest.
    st = meter.state
    per = st[account[base.E_SLOT] + A_STORE]
    if per is None:
        return False
    rec = per[0].get(per[1])
    idx = _saved_slots(meter, account)
    if rec is None or len(rec) != 2 + 8 * len(idx) or rec[0:2] != _MAGIC:
        return False
    import struct

    for k in range(len(idx)):
        v = struct.unpack_from(">q", rec, 2 + 8 * k)[0]
        st[idx[k]] = None if v == _NONE else v
    return True


def save_owners(meter, credit):
    # save() every Account whose credit_reference_list holds this credit.
    for e in meter.table:
        if e[base.E_CLASS] == 111 and credit[base.E_LN] in e[base.E_PARAM][P_CREDITS]:
            save(meter, e)


class Account(base.InterfaceClass):
    class_id = 111
    version = 0
    attribute_count = 19
    method_count = 3
    slots = ACCOUNT_SLOTS

    def get(self, ctx, obj, attr):
        meter = ctx.meter
        st = meter.state
        s = obj[base.E_SLOT]
        p = obj[base.E_PARAM]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_enum(buf, pos, st[s + A_MODE])
            pos = axdr.enc_enum(buf, pos, st[s + A_STATUS])
        elif attr == 3:
            pos = axdr.enc_unsigned(buf, pos, st[s + A_IN_USE])
        elif attr == 4:
            pos = _enc_bits(buf, pos, 8, st[s + A_BITS])
        elif 5 <= attr <= 8:
            pos = axdr.enc_double_long(buf, pos, st[s + A_AVAILABLE + attr - 5])
        elif attr == 9 or attr == 10:
            lns = p[P_CREDITS] if attr == 9 else p[P_CHARGES]
            pos = axdr.enc_array(buf, pos, len(lns))
            for ln in lns:
                pos = axdr.enc_octet_string(buf, pos, ln)
        elif attr == 11:
            pos = axdr.enc_array(buf, pos, len(p[P_CREDITS]) * len(p[P_CHARGES]))
            for cr in p[P_CREDITS]:
                for ch in p[P_CHARGES]:
                    pos = axdr.enc_structure(buf, pos, 3)
                    pos = axdr.enc_octet_string(buf, pos, cr)
                    pos = axdr.enc_octet_string(buf, pos, ch)
                    pos = _enc_bits(buf, pos, 3, 0)
        elif attr == 12:
            tg = p[P_TOKEN_CONFIG]
            pos = axdr.enc_array(buf, pos, len(tg))
            for item in tg:
                pos = axdr.enc_structure(buf, pos, 2)
                pos = axdr.enc_octet_string(buf, pos, item[0])
                pos = axdr.enc_unsigned(buf, pos, item[1])
        elif attr == 13 or attr == 14:
            pos = _enc_time(meter, buf, pos, st[s + A_ACTIVATED + attr - 13])
        elif attr == 15:
            c = p[P_CURRENCY]
            pos = axdr.enc_structure(buf, pos, 3)
            pos = axdr.enc_utf8_string(buf, pos, c[0])
            pos = axdr.enc_integer(buf, pos, c[1])
            pos = axdr.enc_enum(buf, pos, c[2])
        elif attr == 16 or attr == 17:
            pos = axdr.enc_double_long(buf, pos, st[s + A_LOW + attr - 16])
        elif attr == 18:
            pos = axdr.enc_long_unsigned(buf, pos, p[P_MAX_PROVISION])
        elif attr == 19:
            pos = axdr.enc_double_long_unsigned(buf, pos, p[P_MAX_PROVISION_PERIOD])
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        if attr == 7:
            res = common.read_value(ctx, axdr.DOUBLE_LONG, 0, None, None, st, s + A_CLEARANCE)
        elif attr == 16 or attr == 17:
            res = common.read_value(ctx, axdr.DOUBLE_LONG, 0, None, None, st, s + A_LOW + attr - 16)
        elif attr == 2:
            res = self._set_mode(ctx, st, s)
        else:
            return base.READ_WRITE_DENIED
        if res == base.SUCCESS:
            save(ctx.meter, obj)
        return res

    def _set_mode(self, ctx, st, s):
        r = ctx.r
        try:
            if r.structure() != 2:
                return base.TYPE_UNMATCHED
            mode = r.enum()
            status = r.enum()
        except DecodeError:
            return base.TYPE_UNMATCHED
        if not (CREDIT_MODE <= mode <= PREPAYMENT_MODE and NEW <= status <= CLOSED):
            return base.OTHER_REASON
        st[s + A_MODE] = mode
        st[s + A_STATUS] = status
        return base.SUCCESS

    def action(self, ctx, obj, method):
        if not 1 <= method <= 3:
            return base.READ_WRITE_DENIED
        try:
            res = common.integer_param(ctx)
        except DecodeError:
            res = base.TYPE_UNMATCHED
        if res:
            return res
        meter = ctx.meter
        st = meter.state
        s = obj[base.E_SLOT]
        now = _clk().now(meter)
        if method == 1:
            if st[s + A_STATUS] == CLOSED:
                return REFUSED
            if st[s + A_STATUS] == NEW:
                st[s + A_STATUS] = ACTIVE
                st[s + A_ACTIVATED] = now
        elif method == 2:
            if st[s + A_STATUS] != CLOSED:
                st[s + A_STATUS] = CLOSED
                st[s + A_CLOSED] = now
        else:
            st[s + A_STATUS] = NEW
            for k in (A_TO_CLEAR, A_DEBT):
                st[s + k] = 0
            st[s + A_ACTIVATED] = None
            st[s + A_CLOSED] = None
        save(meter, obj)
        return base.SUCCESS


CREDIT = Credit()
CHARGE = Charge()
ACCOUNT = Account()
