# Data (class_id 1, version 0), Blue Book 4.3.1: one value of any type.
#
#   attribute 1 logical_name   (answered by the dispatcher)
#   attribute 2 value          CHOICE: the type given by param
#   no methods
#
# param (the value's type and bounds; see common.py for the value model):
#   None                 any type: state holds the complete encoded element
#                        (tag included), a SET may change the type
#   (tag,)               that A-XDR type, unbounded
#   (tag, hi)            numbers: value <= hi; strings: length <= hi;
#                        bit-string: exactly hi bits; array / structure /
#                        compact-array: encoded size <= hi
#   (tag, lo, hi)        value or length in lo..hi (bit-string: hi bits)
# state: 1 slot, state[slot] = the value. With slot -1 the value is the
# constant param[-1] of a 4-element param (tag, lo, hi, value): read-only.
#
# SET: another tag -> TYPE_UNMATCHED; outside the bounds -> OTHER_REASON.

from dlms_micro.cosem import base, common

SLOTS = 1


class Data(base.InterfaceClass):
    class_id = 1
    version = 0
    attribute_count = 2
    method_count = 0
    slots = SLOTS

    def get(self, ctx, obj, attr):
        if attr != 2:
            return base.READ_WRITE_DENIED
        p = obj[base.E_PARAM]
        slot = obj[base.E_SLOT]
        if slot >= 0:
            v = ctx.meter.state[slot]
        elif p is not None and len(p) > 3:
            v = p[3]
        else:
            return base.OBJECT_UNAVAILABLE  # neither a slot nor a constant
        if p is None:
            ctx.pos = common.encode_value(ctx.buf, ctx.pos, None, 0, v)
        else:
            n = len(p)  # _hi(p) or 0, inline
            ctx.pos = common.encode_value(ctx.buf, ctx.pos, p[0], (p[2] if n > 2 else p[1] if n == 2 else 0) or 0, v)
        if ctx.pos > ctx.limit:
            common.check_limit(ctx)  # raises
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        slot = obj[base.E_SLOT]
        if attr != 2 or slot < 0:
            return base.READ_WRITE_DENIED
        p = obj[base.E_PARAM]
        if p is None:
            return common.read_value(ctx, None, 0, None, None, ctx.meter.state, slot)
        hi = _hi(p)
        lo = p[1] if len(p) > 2 else None
        return common.read_value(ctx, p[0], hi or 0, lo, hi, ctx.meter.state, slot)


def _hi(p):
    # upper bound (bit count of a bit-string) of a (tag[, lo], hi[, value]) param
    n = len(p)
    return p[2] if n > 2 else p[1] if n == 2 else None


DATA = Data()
