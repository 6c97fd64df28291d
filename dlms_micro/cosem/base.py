# The contract between the xDLMS services (dlms_micro.app) and the COSEM
# interface classes (dlms_micro.cosem.*), IEC 62056-6-2 (Blue Book).
#
# OBJECT TABLE. A meter's objects are one tuple of entries, static data that a
# frozen build keeps in flash. An entry is a tuple indexed by the E_* names:
#   (class_id, version, logical_name, ic, slot, access, param)
#   logical_name  6-byte bytes (OBIS)
#   ic            the interface-class handler (an instance of a subclass of
#                 InterfaceClass, shared by every object of that class)
#   slot          index of the object's first run-time value in Meter.state
#                 (a list preallocated at boot); -1 when it has none
#   access        one (attribute_modes, method_modes) pair per association
#                 role (Meter.roles order); attribute_modes[i] is the mode of
#                 attribute i+1 (NO_ACCESS, READ, WRITE, READ_WRITE),
#                 method_modes[i] that of method i+1 (0: no access, 1: access).
#                 None for a role: the object is not in that association.
#   param         per-object constants the class needs (e.g. a Register's
#                 (scaler, unit)), or None
#
# HANDLERS. The dispatcher checks existence, access rights and attribute /
# method ranges, and answers attribute 1 (logical_name) itself. It calls
#   ic.get(ctx, obj, attr)           -> data-access-result (0 = success)
#   ic.set(ctx, obj, attr)           -> data-access-result
#   ic.action(ctx, obj, method)      -> action-result
# with attr >= 2 / method >= 1. get() writes the attribute's A-XDR encoding
# at ctx.buf[ctx.pos:] (ctx.pos = axdr.enc_...(ctx.buf, ctx.pos, ...)),
# never past ctx.limit (axdr raises BufferFull, which the dispatcher turns
# into block transfer or an error). set() and action() read their data with
# ctx.r (an axdr.Reader positioned at the value / method parameters;
# ctx.has_data says whether an ACTION carried parameters). action() may write
# return data at ctx.pos like get(). A value of the wrong type gets
# TYPE_UNMATCHED; run-time state is read and written in ctx.meter.state.
# Selective access: ctx.selector is the access-selector (0: none) and ctx.r
# sits at its parameters during the first get() call (ctx.cursor == 0); a
# class keeps whatever it needs for continuations itself. The dispatcher only
# passes selectors the class lists in ic.selectors(attr) and refuses others.
#
# LONG ATTRIBUTES (object_list, profile buffers) are encoded in pieces: when
# ctx.cursor > 0 the dispatcher is asking for the continuation; the handler
# writes the items from ctx.cursor on, stops before the item that would not
# fit below ctx.limit, sets ctx.cursor to the next item (0 when it finished)
# and returns SUCCESS. Short attributes ignore the cursor and always write
# everything.
#
# No per-request objects: ctx is allocated once per channel and reused.

# data-access-result (Green Book, Get/Set-Response)
SUCCESS = 0
HARDWARE_FAULT = 1
TEMPORARY_FAILURE = 2
READ_WRITE_DENIED = 3
OBJECT_UNDEFINED = 4
OBJECT_CLASS_INCONSISTENT = 9
OBJECT_UNAVAILABLE = 11
TYPE_UNMATCHED = 12
SCOPE_OF_ACCESS_VIOLATED = 13
DATA_BLOCK_UNAVAILABLE = 14
LONG_GET_ABORTED = 15
NO_LONG_GET_IN_PROGRESS = 16
LONG_SET_ABORTED = 17
NO_LONG_SET_IN_PROGRESS = 18
DATA_BLOCK_NUMBER_INVALID = 19
OTHER_REASON = 250
# action-result uses the same numbers for the same meanings, and
LONG_ACTION_ABORTED = 15
NO_LONG_ACTION_IN_PROGRESS = 16

# Attribute access modes (Association LN attribute_access_item access_mode)
NO_ACCESS = 0
READ = 1
WRITE = 2
READ_WRITE = 3

# Entry fields
E_CLASS = 0
E_VERSION = 1
E_LN = 2
E_IC = 3
E_SLOT = 4
E_ACCESS = 5
E_PARAM = 6


class Context:
    # Per-channel request context, allocated once and reused.
    def __init__(self, meter):
        self.meter = meter
        self.assoc = None  # the association serving this request
        self.buf = None  # output buffer
        self.pos = 0
        self.limit = 0
        self.r = None  # axdr.Reader over the request
        self.has_data = False
        self.selector = 0
        self.cursor = 0
        # a Profile generic's selection for the buffer GET in progress on
        # this channel (cosem.profile.Selection, made on first use)
        self.selection = None


class InterfaceClass:
    # Base of every interface-class handler: refuses everything; subclasses
    # override what they implement.
    class_id = 0
    version = 0
    attribute_count = 1
    method_count = 0

    def get(self, ctx, obj, attr):
        return READ_WRITE_DENIED

    def set(self, ctx, obj, attr):
        return READ_WRITE_DENIED

    def action(self, ctx, obj, method):
        return READ_WRITE_DENIED

    def selectors(self, attr):
        # Bit mask of access selectors supported for attr (bit n: selector
        # n), as listed in the object_list's access_selectors. 0: none.
        return 0
