# Compact data (class_id 62, version 0), Blue Book 4.3.8: the values of a
# fixed list of capture objects taken at one instant, kept without their
# A-XDR tags (the contents of a compact-array element), with a template that
# tells a client their types. A head-end reads the template once per
# template_id, then only compact_buffer: a clock and two energies cost 21
# bytes instead of the 26 of the same values with their tags and the
# structure header (and far less than a Profile generic row with its array).
#
#   attribute 2 compact_buffer        octet-string: the captured values, each
#                                     encoded as its attribute is but without
#                                     its tag, side by side in capture order
#   attribute 3 capture_objects       array of structure {class_id
#                                     long-unsigned, logical_name
#                                     octet-string, attribute_index integer,
#                                     data_index long-unsigned}
#   attribute 4 template_id           unsigned (from param)
#   attribute 5 template_description  octet-string: the type description
#                                     (as in a compact-array's contents
#                                     description) of the buffer: structure
#                                     {one description per capture object}
#   attribute 6 capture_method        enum: 0 the buffer changes when method
#                                     capture is invoked, 1 it is captured
#                                     anew at every read of compact_buffer
#   method 1 reset (integer(0))       empty the buffer
#   method 2 capture (integer(0))     capture now
# Every attribute is static here (SET: READ_WRITE_DENIED): capture_objects,
# template_id and capture_method come from param. Not built: version 1,
# whose capture object definitions have a fifth element (gurux-dlms .NET
# expects five there, and models a restriction by date or by entry for
# capturing part of a Profile generic's buffer); its GXDLMSCompactData reports
# 0 as its highest supported version, and its Python library (1.0.203) has
# no class 62 model at all (it reads the object as a generic one and skips
# it in the object list: "Unknown object").
#
# ENCODING (the A-XDR compact-array contents rules, which Blue Book 4.3.8
# applies to compact_buffer). The description of a value is its tag; of a
# structure: 02, its element count (A-XDR length), the elements'
# descriptions; of an array: 01, its element count (2 bytes), ONE element
# description (every element must have it). A value's contents: the bytes
# after the tag for fixed-size types (4 for a double-long-unsigned, 12 for
# a date-time), the length and the bytes for octet-, visible- and
# utf8-strings and bit-strings (their A-XDR length is kept: the description
# cannot fix it), and for a structure or an array its
# elements' contents one after the other, with no header at all. data_index
# n > 0 selects element n of a structure / array attribute (as a Profile
# generic's capture object does); more than its elements: the capture fails.
# So the demo's clock (octet-string(12)) and two double-long-unsigned
# energies: template 02 03 09 06 06, buffer 0C + 12 date-time bytes + 4 + 4.
#
# THE TEMPLATE is fixed by the first capture that reads every value (or the
# first GET of template_description, which reads them without storing) and
# stays: a client keeps it per template_id. A later capture whose values do
# not fit it (an attribute that now reads as null-data, a string that became
# another type, an array of another size) fails: it is logged, and the
# buffer stays empty until a capture that fits. Not describable (the capture
# fails, logged): null-data (it has no contents: a template naming it
# would fix that value as always missing; this stack's own compact-array
# decoder refuses it in a description, and gurux-dlms 1.0.203 decodes
# 02 02 00 06 + 4 bytes into two rows of None), an empty array (no element
# type), an array whose elements differ in type, compact-array and
# dont-care. A capture object whose handler refuses, raises (logged) or
# writes more than its width fails the capture the same way (a compact
# buffer has no room for a marker of a missing value, unlike a Profile
# generic row's null-data).
#
# param: (capture_objects, template_id, capture_method)
#   capture_objects  tuple of (class_id, logical_name (6 bytes),
#                    attribute_index, data_index, width) as in profile.py:
#                    width = 1 + the longest A-XDR encoding of the attribute
#                    (tag included; profile.field_width gives it). The
#                    buffer is preallocated for the sum of the widths (its
#                    contents are never longer than the encodings).
#   template_id      0..255
#   capture_method   CAPTURE_INVOKE (0) or CAPTURE_ON_READ (1)
# state: 1 slot, [slot] a CompactBuffer(param) made at boot: the buffer and
#   its length, the template and its length, the scratch and the Context
#   captures use. Volatile: nothing is stored (a compact buffer is a
#   snapshot; after a restart the next capture fills it).
# capture(meter, obj) -> True when the buffer now holds a capture. The port
# calls it when the values should be taken (e.g. just before a push whose
# object list names the compact buffer); ACTION capture calls it too (a
# failed capture: TEMPORARY_FAILURE). With CAPTURE_ON_READ a GET of
# compact_buffer captures first (failed: TEMPORARY_FAILURE). A GET that does
# not fit the PDU is encoded again into the block buffer: with
# CAPTURE_ON_READ it captures again then, moments later.
# COST: a capture allocates nothing on MicroPython beyond what the capture
# objects' own get() handlers allocate (the values are read into the one
# scratch buffer, walked with one Reader and copied byte by byte): measured
# (MicroPython 1.27): two Registers 0 B, a Clock and two Registers 128 B
# (the Clock's get() itself); a GET of compact_buffer 0 B. Time per capture
# of a Clock and two Registers: 18 us on CPython, 325 us on MicroPython
# (wasm; two Registers: 95 us). RAM: the buffer (sum of the widths), the
# template (2 x that + 6), the scratch (the widest) and one Reader: for
# the demo's clock and two energies 27 + 60 + 15 bytes.

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.errors import DecodeError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1

# param fields
P_CAPTURE_OBJECTS = const(0)
P_TEMPLATE_ID = const(1)
P_CAPTURE_METHOD = const(2)
# capture object fields (as profile.py's)
C_CLASS = const(0)
C_LN = const(1)
C_ATTR = const(2)
C_DATA_INDEX = const(3)
C_WIDTH = const(4)

CAPTURE_INVOKE = const(0)
CAPTURE_ON_READ = const(1)


class CompactBuffer:
    # The run-time part of one Compact data object (its state slot).

    def __init__(self, param):
        cos = param[P_CAPTURE_OBJECTS]
        total = 0
        big = 1
        for co in cos:
            w = co[C_WIDTH]
            total += w
            if w > big:
                big = w
        self.data = bytearray(total if total else 1)
        self.n = 0  # bytes of compact_buffer (0: empty)
        # a description is at most its value's encoding, + 1 byte per array
        # (its count takes 2 bytes where a short encoding has 1); + the
        # top structure's header
        self.template = bytearray(2 * total + 6)
        self.tn = 0  # bytes of template_description (0: not known yet)
        self.scratch = bytearray(big)
        self.r = axdr.Reader()
        self.ctx = None  # capture's Context, made on the first capture
        self.failures = 0  # captures that failed
        # walk positions (attributes, not return tuples: nothing allocated)
        self.dp = 0  # next byte of data
        self.tp = 0  # next byte of template
        self.store = True  # copy the contents (False: template only)
        self.check = False  # compare with the template instead of writing it
        self.lim = 0  # template bytes a check may compare with

    def reset(self):
        self.n = 0

    def buffer(self):
        # compact_buffer's bytes (a view; allocates)
        return memoryview(self.data)[0:self.n]

    def description(self):
        return memoryview(self.template)[0:self.tn]

    def _t(self, b):
        # Write (or, when checking, compare) one template byte.
        tp = self.tp
        if tp >= len(self.template):
            return False
        if self.check:
            if tp >= self.lim or self.template[tp] != b:
                return False
        else:
            self.template[tp] = b
        self.tp = tp + 1
        return True

    def _walk(self, depth):
        # The Data element at self.r: its description to the template, its
        # contents to data. False when it cannot be described or does not
        # fit the template.
        r = self.r
        src = r.buf
        p = r.pos
        t = r.tag()
        if not self._t(t):
            return False
        if t == axdr.ARRAY or t == axdr.STRUCTURE:
            if depth >= axdr.MAX_DEPTH:
                return False
            n = r.length()
            if t == axdr.STRUCTURE:
                for i in range(p + 1, r.pos):  # the count, as encoded
                    if not self._t(src[i]):
                        return False
            elif n == 0 or not self._t(n >> 8) or not self._t(n & 0xFF):
                return False  # an empty array has no element type to describe
            first = self.tp
            check = self.check
            for i in range(n):
                if t == axdr.ARRAY and i:
                    # every element has the first one's description
                    self.tp = first
                    self.check = True
                if not self._walk(depth + 1):
                    self.check = check
                    return False
            self.check = check
            return True
        if t == axdr.NULL_DATA or t == axdr.COMPACT_ARRAY or t == axdr.DONT_CARE:
            return False  # no contents to read back (see THE TEMPLATE)
        r.pos = p
        r.skip()
        if self.store:
            d = self.data
            dp = self.dp
            e = r.pos
            if dp + e - p - 1 > len(d):
                return False
            for i in range(p + 1, e):
                d[dp] = src[i]
                dp += 1
            self.dp = dp
        return True


def _fail(meter, obj, cb, why, co):
    # A failed capture: counted, logged (allocates; failures only)
    cb.failures += 1
    if meter.log is not None:
        ln = obj[base.E_LN]
        meter.log("compact data %d.%d.%d.%d.%d.%d: capture failed: %s (class %d attribute %d)"
                  % (ln[0], ln[1], ln[2], ln[3], ln[4], ln[5], why, co[C_CLASS], co[C_ATTR]))
    return False


def capture(meter, obj, store=True):
    # Take the capture objects' values now into the buffer (store=False:
    # only find the template, the buffer unchanged). True when it worked;
    # otherwise the buffer is empty (store) and the failure logged.
    cb = meter.state[obj[base.E_SLOT]]
    cos = obj[base.E_PARAM][P_CAPTURE_OBJECTS]
    ctx = cb.ctx
    if ctx is None:
        ctx = cb.ctx = base.Context(meter)
    if store:
        cb.n = 0
    cb.store = store
    cb.check = cb.tn > 0
    cb.lim = cb.tn if cb.tn else len(cb.template)
    cb.dp = 0
    # the header: structure, one element per capture object (a stored
    # template has the same one: the same param wrote it)
    cb.template[0] = axdr.STRUCTURE
    cb.tp = axdr.put_length(cb.template, 1, len(cos))
    scratch = cb.scratch
    r = cb.r
    for co in cos:
        e = meter.find(co[C_CLASS], co[C_LN], 0)
        if e is None:
            return _fail(meter, obj, cb, "no such object", co)
        room = co[C_WIDTH] - 1
        try:
            res = common.get_attribute(ctx, e, co[C_ATTR], scratch, 0, room)
        except EncodeError:
            return _fail(meter, obj, cb, "longer than its width", co)
        except Exception as ex:  # a handler's fault
            return _fail(meter, obj, cb, "get raised %r" % (ex,), co)
        if res != base.SUCCESS or ctx.cursor != 0 or ctx.pos > room:
            return _fail(meter, obj, cb, "get result %d" % res, co)
        ok = True
        try:
            r.reset(scratch, 0, ctx.pos)
            di = co[C_DATA_INDEX]
            if di:
                # element di of a structure / array
                t = r.tag()
                if (t != axdr.ARRAY and t != axdr.STRUCTURE) or di > r.length():
                    ok = False
                else:
                    for i in range(di - 1):
                        r.skip()
            if ok:
                ok = cb._walk(0)
        except DecodeError:
            ok = False
        if not ok:
            return _fail(meter, obj, cb, "value does not fit the template" if cb.check else "value not describable", co)
    if cb.check and cb.tp != cb.tn:
        return _fail(meter, obj, cb, "value does not fit the template", cos[-1])
    if not cb.check:
        cb.tn = cb.tp
    if store:
        cb.n = cb.dp
    return True


class CompactData(base.InterfaceClass):
    class_id = 62
    version = 0
    attribute_count = 6
    method_count = 2
    slots = SLOTS

    def get(self, ctx, obj, attr):
        p = obj[base.E_PARAM]
        cb = ctx.meter.state[obj[base.E_SLOT]]
        buf = ctx.buf
        pos = ctx.pos
        if attr == 2:
            if p[P_CAPTURE_METHOD] == CAPTURE_ON_READ and not capture(ctx.meter, obj):
                return base.TEMPORARY_FAILURE
            pos = axdr.enc_octet_string(buf, pos, cb.data, 0, cb.n)
        elif attr == 3:
            cos = p[P_CAPTURE_OBJECTS]
            pos = axdr.enc_array(buf, pos, len(cos))
            for co in cos:
                pos = axdr.enc_structure(buf, pos, 4)
                pos = axdr.enc_long_unsigned(buf, pos, co[C_CLASS])
                pos = axdr.enc_octet_string(buf, pos, co[C_LN])
                pos = axdr.enc_integer(buf, pos, co[C_ATTR])
                pos = axdr.enc_long_unsigned(buf, pos, co[C_DATA_INDEX])
        elif attr == 4:
            pos = axdr.enc_unsigned(buf, pos, p[P_TEMPLATE_ID])
        elif attr == 5:
            if cb.tn == 0 and not capture(ctx.meter, obj, False):
                return base.TEMPORARY_FAILURE
            pos = axdr.enc_octet_string(buf, pos, cb.template, 0, cb.tn)
        elif attr == 6:
            pos = axdr.enc_enum(buf, pos, p[P_CAPTURE_METHOD])
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def action(self, ctx, obj, method):
        if method != 1 and method != 2:
            return base.READ_WRITE_DENIED
        res = common.integer_param(ctx)
        if res:
            return res
        if method == 1:
            ctx.meter.state[obj[base.E_SLOT]].reset()
        elif not capture(ctx.meter, obj):
            return base.TEMPORARY_FAILURE
        return base.SUCCESS


COMPACT_DATA = CompactData()
