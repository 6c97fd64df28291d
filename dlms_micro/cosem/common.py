# Helpers shared by the interface classes: typed values (the value of a Data
# or Register object, whose A-XDR type comes from the object's param), the
# checks on method parameters, and a few small encoders.
#
# Value model in Meter.state, per A-XDR type of the value:
#   integer types, enum, bcd, delta types   int
#   boolean                                 bool (or 0/1)
#   float32, float64                        float
#   octet-string, visible-string,
#   utf8-string                             bytes (a str is encoded first:
#                                           allocates, keep bytes)
#   bit-string                              bytes; the bit count comes from
#                                           the spec (else 8 per byte)
#   date-time, date, time (own tags)        bytes of 12 / 5 / 4: the raw
#                                           fields, no tag
#   null-data                               None
#   array, structure, compact-array, and
#   "any type" (tag None)                   bytes: the complete encoded Data
#                                           element, tag included
# None in a slot encodes as null-data whatever the type (value not set).
#
# SET rules: a value whose tag differs from the configured one gets
# TYPE_UNMATCHED; a value of the right type outside the configured bounds
# (number range, string length, encoded size) gets OTHER_REASON.

from dlms_micro import axdr
from dlms_micro.cosem import base

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# value kinds
K_BAD = const(0)
K_INT = const(1)
K_BOOL = const(2)
K_FLOAT = const(3)
K_STR = const(4)
K_BITS = const(5)
K_FIXED = const(6)
K_RAW = const(7)
K_NULL = const(8)

# kind of each tag 0..33 (see the table above)
_KINDS = b"\x08\x07\x07\x02\x05\x01\x01\x00\x00\x04\x04\x00\x04\x01\x00\x01\x01\x01\x01\x07\x01\x01\x01\x03\x03\x06\x06\x06\x01\x01\x01\x01\x01\x01"


def kind(tag):
    # Value kind of an A-XDR tag; K_RAW for None (any type).
    if tag is None:
        return K_RAW
    if 0 <= tag < 34:
        return _KINDS[tag]
    return K_BAD


def fixed_size(tag):
    # Size of a date-time / date / time value without its tag.
    return 12 if tag == axdr.DATE_TIME else 5 if tag == axdr.DATE else 4


def encode_value(buf, off, tag, nbits, v):
    # Write the value v of type `tag` (see the value model) at buf[off:];
    # nbits: bit count of a bit-string (0: 8 per byte). Allocates nothing
    # for ints, bools, floats and bytes.
    if v is None:
        return axdr.enc_null(buf, off)
    k = _KINDS[tag] if tag is not None and 0 <= tag < 34 else kind(tag)  # kind(tag), inline
    if k == K_INT:
        return axdr.enc_int(buf, off, tag, v)
    if k == K_STR:
        if tag == axdr.OCTET_STRING:
            return axdr.enc_octet_string(buf, off, v)
        if tag == axdr.VISIBLE_STRING:
            return axdr.enc_visible_string(buf, off, v)
        return axdr.enc_utf8_string(buf, off, v)
    if k == K_RAW:
        return axdr.put_bytes(buf, off, v)
    if k == K_BOOL:
        return axdr.enc_boolean(buf, off, v)
    if k == K_FLOAT:
        if tag == axdr.FLOAT32:
            return axdr.enc_float32(buf, off, v)
        return axdr.enc_float64(buf, off, v)
    if k == K_FIXED:
        off = axdr.put_u8(buf, off, tag)
        if len(v) != fixed_size(tag):
            raise axdr.EncodeError("%s value must be %d bytes" % (axdr.tag_name(tag), fixed_size(tag)))
        return axdr.put_bytes(buf, off, v)
    if k == K_BITS:
        if not nbits:
            nbits = len(v) << 3
        return axdr.enc_bit_string(buf, off, nbits, v)
    if k == K_NULL:
        return axdr.enc_null(buf, off)
    raise axdr.EncodeError("no value of type %r" % (tag,))


def _out(v, lo, hi):
    return (lo is not None and v < lo) or (hi is not None and v > hi)


def read_value(ctx, tag, nbits, lo, hi, state, slot):
    # SET: read a value of type `tag` at ctx.r and store it in state[slot].
    # lo/hi bound a number's value, a string's length, a raw element's
    # encoded size (None: unbounded); nbits: the exact bit count of a
    # bit-string (0: any multiple of 8). Returns a data-access-result and
    # changes nothing unless it is SUCCESS.
    r = ctx.r
    k = kind(tag)
    if k == K_RAW:
        start = r.pos
        t = r.skip()
        if tag is not None and t != tag:
            return base.TYPE_UNMATCHED
        if _out(r.pos - start, lo, hi):
            return base.OTHER_REASON
        state[slot] = bytes(r.buf[start : r.pos])
        return base.SUCCESS
    if r.peek() != tag:
        return base.TYPE_UNMATCHED
    if k == K_INT:
        v = r.int_of(tag)
    elif k == K_STR:
        n = r.octet_string() if tag == axdr.OCTET_STRING else r.visible_string() if tag == axdr.VISIBLE_STRING else r.utf8_string()
        if _out(n, lo, hi):
            return base.OTHER_REASON
        state[slot] = bytes(r.buf[r.mark : r.mark + n])
        return base.SUCCESS
    elif k == K_BOOL:
        v = r.boolean()
    elif k == K_FLOAT:
        v = r.float32() if tag == axdr.FLOAT32 else r.float64()
        if v != v:  # NaN
            return base.OTHER_REASON
    elif k == K_FIXED:
        r.u8()
        n = fixed_size(tag)
        p = r._take(n, axdr.tag_name(tag))
        state[slot] = bytes(r.buf[p : p + n])
        return base.SUCCESS
    elif k == K_BITS:
        n = r.bit_string()
        if (nbits and n != nbits) or (not nbits and n & 7):
            return base.TYPE_UNMATCHED
        state[slot] = bytes(r.buf[r.mark : r.mark + ((n + 7) >> 3)])
        return base.SUCCESS
    elif k == K_NULL:
        r.null()
        state[slot] = None
        return base.SUCCESS
    else:
        return base.TYPE_UNMATCHED
    if _out(v, lo, hi):
        return base.OTHER_REASON
    state[slot] = v
    return base.SUCCESS


def zero_of(tag):
    # The value a reset gives a register of this type.
    k = kind(tag)
    if k == K_FLOAT:
        return 0.0
    if k == K_BOOL:
        return False
    if k == K_STR or k == K_BITS:
        return b""
    return 0


def integer_param(ctx):
    # The parameter of the methods declared `data ::= integer(0)` (reset,
    # adjust_to_*): accepted when absent, null-data or any integer type (the
    # value is not checked: clients send 0). Anything else: TYPE_UNMATCHED.
    if not ctx.has_data:
        return base.SUCCESS
    r = ctx.r
    t = r.peek()
    if t == axdr.NULL_DATA:
        r.u8()
        return base.SUCCESS
    if kind(t) == K_INT:
        r.number()
        return base.SUCCESS
    return base.TYPE_UNMATCHED


def read_date_time(r):
    # A date-time sent as octet-string(12) (the Clock's form) or with its own
    # tag: returns the offset of its 12 bytes in r.buf, or -1 when the
    # element is something else (it is then skipped).
    t = r.peek()
    if t == axdr.OCTET_STRING:
        p = r.pos
        r.u8()
        if r.length() == 12:
            return r._take(12, "date-time")
        r.pos = p
    elif t == axdr.DATE_TIME:
        r.u8()
        return r._take(12, "date-time")
    r.skip()
    return -1


def check_limit(ctx):
    # A short attribute that ended past ctx.limit does not fit this PDU.
    if ctx.pos > ctx.limit:
        raise axdr.BufferFull("attribute ends at %d, past the limit %d" % (ctx.pos, ctx.limit))


def get_attribute(ctx, e, attr, buf, pos, limit):
    # The meter reading one of its own attributes (a capture, a push, a
    # monitor): attribute attr of entry e encoded at buf[pos:] through the
    # class's handler, as a client's GET is but without an association,
    # access rights or selective access; attribute 1 (logical_name) answered
    # here as the dispatcher does. Returns the data-access-result, ctx.pos
    # the end; ctx.cursor set: a long attribute that did not finish. The
    # handler's exceptions (EncodeError: past limit) are the caller's.
    ctx.buf = buf
    ctx.pos = pos
    ctx.limit = limit
    ctx.cursor = 0
    ctx.selector = 0
    if attr == 1:
        ctx.pos = axdr.enc_octet_string(buf, pos, e[base.E_LN])
        return base.SUCCESS
    return ctx.meter.handlers[e[base.E_IC]].get(ctx, e, attr)


def check_table(meter):
    # Boot-time sanity check of a meter's object table (allocates; call it
    # once, e.g. in tests or when a board starts): every entry's class id
    # and version are its handler's, it has one access entry per role with
    # modes for no more attributes / methods than its class has, and its
    # state slots (handler.slots of them from E_SLOT) lie inside
    # meter.state without overlapping another object's. Raises ValueError
    # naming the first problem.
    used = bytearray(len(meter.state))
    nroles = len(meter.roles)
    for e in meter.table:
        ic = meter.handlers[e[base.E_IC]]
        name = "%d/%s" % (e[base.E_CLASS], ".".join([str(b) for b in e[base.E_LN]]))
        if e[base.E_CLASS] != ic.class_id or e[base.E_VERSION] != ic.version:
            raise ValueError("%s: entry says class %d version %d, handler %d version %d"
                             % (name, e[base.E_CLASS], e[base.E_VERSION], ic.class_id, ic.version))
        if len(e[base.E_LN]) != 6:
            raise ValueError("%s: logical name is not 6 bytes" % name)
        acc = e[base.E_ACCESS]
        if len(acc) != nroles:
            raise ValueError("%s: %d access entries for %d roles" % (name, len(acc), nroles))
        for a in acc:
            if a is not None and (len(a[0]) > ic.attribute_count or len(a[1]) > ic.method_count):
                raise ValueError("%s: access modes for more attributes or methods than the class has" % name)
        n = getattr(ic, "slots", 0)
        s = e[base.E_SLOT]
        if s < 0 or not n:
            continue
        if s + n > len(used):
            raise ValueError("%s: slots %d..%d outside the %d-slot state" % (name, s, s + n - 1, len(used)))
        for i in range(s, s + n):
            if used[i]:
                raise ValueError("%s: slot %d already used by another object" % (name, i))
            used[i] = 1
