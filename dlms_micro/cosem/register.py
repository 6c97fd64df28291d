# Register (class_id 3, version 0) and Extended register (class_id 4,
# version 0), Blue Book 4.3.2 / 4.3.3: a value with a scaler and unit.
#
# Register
#   attribute 2 value          CHOICE: type from param (default
#                              double-long-unsigned)
#   attribute 3 scaler_unit    structure {scaler integer, unit enum}
#   method 1 reset (integer(0))  value := 0
# Extended register: as Register, and
#   attribute 4 status         CHOICE: type from param (default unsigned)
#   attribute 5 capture_time   octet-string(12) date-time, the meter's local
#                              time (clock rules of the table's Clock object)
#   method 1 reset             value := 0, status := 0, capture_time := now
#
# param: (scaler, unit[, value_tag[, status_tag]]), scaler -128..127, unit
#   the Blue Book unit enum (27 W, 30 Wh, 32 varh, 33 A, 35 V, 255 count...).
# state: Register 1 slot: [slot] value.
#   Extended register 3 slots: [slot] value, [slot+1] status,
#   [slot+2] capture_time: UTC seconds (int) or None (not specified).
#   The metering code that updates value sets capture_time too.
# Value model: common.py (int for integer types, float, bytes...).
#
# scaler_unit and capture_time are static here (SET: READ_WRITE_DENIED);
# value and status take SETs of their own type (access rights decide who);
# a SET of an Extended register's value sets its capture_time to now.

from dlms_micro import axdr
from dlms_micro.cosem import base, common

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# cosem.base's entry fields, folded into the code on MicroPython (a module
# attribute costs two lookups per use)
_E_SLOT = const(4)
_E_PARAM = const(6)
_DLU = const(6)  # axdr.DOUBLE_LONG_UNSIGNED
if (base.E_SLOT, base.E_PARAM, axdr.DOUBLE_LONG_UNSIGNED, base.SUCCESS) != (_E_SLOT, _E_PARAM, _DLU, 0):
    raise ImportError("register: cosem.base entry layout changed")

REGISTER_SLOTS = 1
EXTENDED_REGISTER_SLOTS = 3

_clock = None


def _clk():
    # clock module, imported on first use so that a board with Registers
    # only does not load it
    global _clock
    if _clock is None:
        from dlms_micro.cosem import clock

        _clock = clock
    return _clock


class Register(base.InterfaceClass):
    class_id = 3
    version = 0
    attribute_count = 3
    method_count = 1
    slots = REGISTER_SLOTS

    def get(self, ctx, obj, attr):
        p = obj[_E_PARAM]
        if attr == 2:
            tag = p[2] if len(p) > 2 else _DLU
            v = ctx.meter.state[obj[_E_SLOT]]
            q = axdr.enc_int_in(ctx.buf, ctx.pos, ctx.limit, tag, v)
            if q >= 0:  # an integer value that fits: one call instead of ~8
                ctx.pos = q
                return 0  # SUCCESS
            ctx.pos = common.encode_value(ctx.buf, ctx.pos, tag, 0, v)
        elif attr == 3:
            buf = ctx.buf
            pos = axdr.enc_structure(buf, ctx.pos, 2)
            pos = axdr.enc_integer(buf, pos, p[0])
            ctx.pos = axdr.enc_enum(buf, pos, p[1])
        else:
            return self.get_more(ctx, obj, attr)
        common.check_limit(ctx)
        return base.SUCCESS

    def get_more(self, ctx, obj, attr):
        return base.READ_WRITE_DENIED

    def set(self, ctx, obj, attr):
        if attr != 2:
            return base.READ_WRITE_DENIED
        p = obj[base.E_PARAM]
        tag = p[2] if len(p) > 2 else axdr.DOUBLE_LONG_UNSIGNED
        return common.read_value(ctx, tag, 0, None, None, ctx.meter.state, obj[base.E_SLOT])

    def action(self, ctx, obj, method):
        if method != 1:
            return base.READ_WRITE_DENIED
        res = common.integer_param(ctx)
        if res:
            return res
        p = obj[base.E_PARAM]
        ctx.meter.state[obj[base.E_SLOT]] = common.zero_of(p[2] if len(p) > 2 else axdr.DOUBLE_LONG_UNSIGNED)
        return base.SUCCESS


class ExtendedRegister(Register):
    class_id = 4
    version = 0
    attribute_count = 5
    method_count = 1
    slots = EXTENDED_REGISTER_SLOTS

    def get_more(self, ctx, obj, attr):
        slot = obj[base.E_SLOT]
        state = ctx.meter.state
        if attr == 4:
            p = obj[base.E_PARAM]
            tag = p[3] if len(p) > 3 else axdr.UNSIGNED
            ctx.pos = common.encode_value(ctx.buf, ctx.pos, tag, 0, state[slot + 1])
        elif attr == 5:
            ctx.pos = _clk().enc_local_time(ctx.meter, state[slot + 2], ctx.buf, ctx.pos)
        else:
            return base.READ_WRITE_DENIED
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        slot = obj[base.E_SLOT]
        if attr == 2:
            res = Register.set(self, ctx, obj, attr)
            if res == base.SUCCESS:
                ctx.meter.state[slot + 2] = _clk().now(ctx.meter)
            return res
        if attr == 4:
            p = obj[base.E_PARAM]
            tag = p[3] if len(p) > 3 else axdr.UNSIGNED
            return common.read_value(ctx, tag, 0, None, None, ctx.meter.state, slot + 1)
        return base.READ_WRITE_DENIED

    def action(self, ctx, obj, method):
        res = Register.action(self, ctx, obj, method)
        if res == base.SUCCESS:
            p = obj[base.E_PARAM]
            slot = obj[base.E_SLOT]
            state = ctx.meter.state
            state[slot + 1] = common.zero_of(p[3] if len(p) > 3 else axdr.UNSIGNED)
            state[slot + 2] = _clk().now(ctx.meter)
        return res


REGISTER = Register()
EXTENDED_REGISTER = ExtendedRegister()
