# SAP assignment (class_id 17, version 0), Blue Book 4.4.5: the logical
# devices of the physical device and their SAPs (server addresses).
#
#   attribute 2 SAP_assignment_list  array of structure {SAP long-unsigned,
#                                    logical_device_name octet-string}
#   method 1 connect_logical_device  (structure {SAP, logical_device_name})
#
# param: the list, a tuple of (sap, name) pairs, name bytes (e.g.
#   ((1, b"DMI0000000012345"),)). state: none (slot -1).
# The assignment is fixed in this meter: connect_logical_device succeeds
# when it asks for an assignment that already holds (nothing to change) and
# is refused with READ_WRITE_DENIED otherwise; a parameter that is not
# structure {long-unsigned, octet-string} gets TYPE_UNMATCHED. Give the
# method no access in the object table (the object_list then says so).

from dlms_micro import axdr
from dlms_micro.cosem import base, common

SLOTS = 0


class SapAssignment(base.InterfaceClass):
    class_id = 17
    version = 0
    attribute_count = 2
    method_count = 1
    slots = SLOTS

    def get(self, ctx, obj, attr):
        if attr != 2:
            return base.READ_WRITE_DENIED
        buf = ctx.buf
        items = obj[base.E_PARAM]
        pos = axdr.enc_array(buf, ctx.pos, len(items))
        for item in items:
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_long_unsigned(buf, pos, item[0])
            pos = axdr.enc_octet_string(buf, pos, item[1])
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def action(self, ctx, obj, method):
        if method != 1:
            return base.READ_WRITE_DENIED
        r = ctx.r
        if not ctx.has_data or r.peek() != axdr.STRUCTURE or r.structure() != 2:
            return base.TYPE_UNMATCHED
        if r.peek() != axdr.LONG_UNSIGNED:
            return base.TYPE_UNMATCHED
        sap = r.long_unsigned()
        if r.peek() != axdr.OCTET_STRING:
            return base.TYPE_UNMATCHED
        n = r.octet_string()
        buf = r.buf
        m = r.mark
        for item in obj[base.E_PARAM]:
            name = item[1]
            if item[0] == sap and len(name) == n:
                i = 0
                while i < n and name[i] == buf[m + i]:
                    i += 1
                if i == n:
                    return base.SUCCESS  # already so
        return base.READ_WRITE_DENIED


SAP_ASSIGNMENT = SapAssignment()
