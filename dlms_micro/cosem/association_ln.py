# Association LN (class_id 15, version 1), Blue Book 4.4.4: what an
# application association may see and do, and how it was set up.
#
#   attribute 2 object_list                 array of object_list_element
#   attribute 3 associated_partners_id      structure {client_SAP integer,
#                                           server_SAP long-unsigned}
#   attribute 4 application_context_name    context name (see NAME FORM)
#   attribute 5 xDLMS_context_info          structure {conformance
#               bit-string(24), max_receive_pdu_size long-unsigned,
#               max_send_pdu_size long-unsigned, dlms_version_number
#               unsigned, quality_of_service integer, cyphering_info
#               octet-string}
#   attribute 6 authentication_mechanism_name  mechanism name (NAME FORM)
#   attribute 7 secret                      octet-string (LLS password)
#   attribute 8 association_status          enum (0 non-associated,
#                                           1 association-pending,
#                                           2 associated)
#   attribute 9 security_setup_reference    octet-string (logical name)
#   method 1 reply_to_HLS_authentication (octet-string f(StoC))
#                                           -> octet-string f(CtoS)
#   method 2 change_HLS_secret (octet-string)
#   method 3 add_object (object_list_element)
#   method 4 remove_object (object_list_element)
#
# object_list_element ::= structure {class_id long-unsigned, version
#   unsigned, logical_name octet-string, access_rights structure {
#   attribute_access array of structure {attribute_id integer, access_mode
#   enum, access_selectors CHOICE {null-data, array of integer}},
#   method_access array of structure {method_id integer, access_mode enum}}}
# It lists every object of the table visible to the role (access entry not
# None), in table order, every attribute 1..attribute_count and method
# 1..method_count of its class with the role's mode (missing modes: no
# access), and the selectors ic.selectors(attr) reports. It is streamed:
# ctx.cursor is 1 + the table index of the next entry to encode (0: start /
# done), so one PDU-sized buffer serves any table.
#
# WHICH ASSOCIATION. param None (or role -1) describes the association being
# served (ctx.assoc, the object 0.0.40.0.0.255); param (role, ...) with a
# role index describes that association of Meter.roles (0.0.40.0.e.255):
# its objects and rights, its client SAP, its mechanism, the role's
# conformance, association_status associated only while the serving
# association is that role.
#
# param: None or (role, security_setup_ln, name_form)
#   security_setup_ln  6 bytes, or None: attribute 9 is 0.0.0.0.0.0
#   name_form          NAME_STRUCTURE (default) or NAME_OCTETS
#
# NAME FORM. application_context_name and authentication_mechanism_name are
# OBJECT IDENTIFIERs, 2.16.756.5.8.1.x / 2.16.756.5.8.2.x. The default is
# the Blue Book's structure form, structure {joint-iso-ctt unsigned 2,
# country unsigned 16, country-name long-unsigned 756, identified-
# organization unsigned 5, DLMS-UA unsigned 8, application-context /
# authentication-mechanism-name unsigned 1 / 2, id unsigned}, the form
# Gurux and dlms-cosem clients read as a value of these attributes;
# NAME_OCTETS gives the octet-string of the OID's BER contents
# (60 85 74 05 08 01 x), which Gurux also accepts.
#
# SECRETS are never read out: GET secret is READ_WRITE_DENIED whatever the
# access rights say, and cyphering_info is always an empty octet-string.
# SET secret (1..64 bytes) replaces the LLS password of the association the
# object describes: it is stored on the Role (meter.roles[i].secret, which
# the ACSE checks), so it holds for every channel of this meter from the
# next association on; a port that must keep it over a restart saves the
# Role's secret. Give every Meter its own Role objects.
# change_HLS_secret stores its octet-string (1..64 bytes) in the Role's
# hls_secret, for the HLS mechanisms (2 and up) only (else OTHER_REASON).
#
# HLS. reply_to_HLS_authentication calls the hook
#   meter.hls_verify(ctx, buf, start, end) -> f(CtoS) bytes, or None
# with the client's f(StoC) at buf[start:end]; ctx.assoc tells the
# association (mechanism, role, client SAP). On success the association
# becomes ASSOCIATED and f(CtoS) is returned; on failure it drops to
# NON_ASSOCIATED (the client must start a new one) and the result is
# READ_WRITE_DENIED. Without a hook: OTHER_REASON. Outside the pending
# state, or on another association's object: READ_WRITE_DENIED.
#
# The object table is static: add_object and remove_object are refused with
# READ_WRITE_DENIED (remove_object of an object that is not in the list:
# OBJECT_UNDEFINED); a parameter that is not an object_list_element gets
# TYPE_UNMATCHED.

from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.cosem import base, common

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 0

NAME_STRUCTURE = const(0)
NAME_OCTETS = const(1)

_MECH_HLS_FIRST = const(2)
_SECRET_MAX = const(64)
_NO_LN = b"\x00\x00\x00\x00\x00\x00"
_OID_PREFIX = b"\x60\x85\x74\x05\x08"  # 2.16.756.5.8


class AssociationLN(base.InterfaceClass):
    class_id = 15
    version = 1
    attribute_count = 9
    method_count = 4
    slots = SLOTS

    def get(self, ctx, obj, attr):
        ri = _role(ctx, obj)
        if attr == 2:
            if ri < 0:
                return base.OBJECT_UNAVAILABLE
            object_list(ctx, ri)
            return base.SUCCESS
        if attr == 7:
            return base.READ_WRITE_DENIED  # never leak the secret
        meter = ctx.meter
        a = ctx.assoc
        current = ri == a.role
        role = meter.roles[ri] if ri >= 0 else None
        buf = ctx.buf
        pos = ctx.pos
        if attr == 3:
            pos = axdr.enc_structure(buf, pos, 2)
            pos = axdr.enc_integer(buf, pos, a.client_sap if current else role.client_sap)
            pos = axdr.enc_long_unsigned(buf, pos, a.server_sap if current else meter.logical_device)
        elif attr == 4:
            pos = _name(buf, pos, _form(obj), 1, a.context if current else asn.CONTEXT_LN)
        elif attr == 5:
            if current:
                conf = a.conformance
                rx = a.server_max_pdu
                tx = a.client_max_pdu
                version = a.dlms_version
                qos = a.quality_of_service
            else:
                conf = role.conformance
                rx = tx = a.server_max_pdu
                version = 6
                qos = -1
            pos = axdr.enc_structure(buf, pos, 6)
            pos = axdr.enc_header(buf, pos, axdr.BIT_STRING, 24)
            if pos + 3 > len(buf):
                raise axdr.BufferFull("xDLMS_context_info")
            buf[pos] = (conf >> 16) & 0xFF
            buf[pos + 1] = (conf >> 8) & 0xFF
            buf[pos + 2] = conf & 0xFF
            pos = axdr.enc_long_unsigned(buf, pos + 3, rx)
            pos = axdr.enc_long_unsigned(buf, pos, tx)
            pos = axdr.enc_unsigned(buf, pos, version)
            pos = axdr.enc_integer(buf, pos, qos if qos >= 0 else 0)
            pos = axdr.enc_octet_string(buf, pos, b"")  # never the key
        elif attr == 6:
            pos = _name(buf, pos, _form(obj), 2, a.mechanism if current else role.mechanism)
        elif attr == 8:
            if current:
                v = a.status
            else:
                v = asn.NON_ASSOCIATED
            pos = axdr.enc_enum(buf, pos, v)
        elif attr == 9:
            p = obj[base.E_PARAM]
            ln = p[1] if p is not None and len(p) > 1 and p[1] is not None else _NO_LN
            pos = axdr.enc_octet_string(buf, pos, ln)
        else:
            return base.READ_WRITE_DENIED
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        if attr != 7:
            return base.READ_WRITE_DENIED
        ri = _role(ctx, obj)
        if ri < 0:
            return base.OBJECT_UNAVAILABLE
        r = ctx.r
        if r.peek() != axdr.OCTET_STRING:
            return base.TYPE_UNMATCHED
        n = r.octet_string()
        if n < 1 or n > _SECRET_MAX:
            return base.OTHER_REASON
        ctx.meter.roles[ri].secret = bytes(r.buf[r.mark : r.mark + n])
        return base.SUCCESS

    def action(self, ctx, obj, method):
        r = ctx.r
        ri = _role(ctx, obj)
        if method == 1 or method == 2:
            if not ctx.has_data or r.peek() != axdr.OCTET_STRING:
                return base.TYPE_UNMATCHED
            n = r.octet_string()
            start = r.mark
            if ri < 0:
                return base.OBJECT_UNAVAILABLE
            if method == 1:
                return _reply_to_hls(ctx, ri, r.buf, start, start + n)
            role = ctx.meter.roles[ri]
            if role.mechanism < _MECH_HLS_FIRST:
                return base.OTHER_REASON  # no HLS secret in this association
            if n < 1 or n > _SECRET_MAX:
                return base.OTHER_REASON
            role.hls_secret = bytes(r.buf[start : start + n])
            return base.SUCCESS
        if method == 3 or method == 4:
            class_id = _element(r, ctx.has_data)
            if class_id < 0:
                return base.TYPE_UNMATCHED
            if method == 4 and ri >= 0:
                e = ctx.meter.find(class_id, r.buf, r.mark)
                if e is None or e[base.E_ACCESS][ri] is None:
                    return base.OBJECT_UNDEFINED
            return base.READ_WRITE_DENIED  # the object table is static
        return base.READ_WRITE_DENIED


ASSOCIATION_LN = AssociationLN()


def _element(r, has_data):
    # Read an object_list_element parameter: its class id, with r.mark left
    # at its logical name; -1 when it is not one.
    if not has_data or r.peek() != axdr.STRUCTURE or r.structure() != 4:
        return -1
    if r.peek() != axdr.LONG_UNSIGNED:
        return -1
    class_id = r.long_unsigned()
    if r.peek() != axdr.UNSIGNED:
        return -1
    r.unsigned()
    if r.peek() != axdr.OCTET_STRING or r.octet_string() != 6:
        return -1
    if r.peek() != axdr.STRUCTURE:
        return -1
    r.skip()  # access_rights (leaves r.mark at the logical name)
    return class_id


def _reply_to_hls(ctx, ri, buf, start, end):
    a = ctx.assoc
    if ri != a.role or a.status != asn.ASSOCIATION_PENDING:
        return base.READ_WRITE_DENIED
    verify = ctx.meter.hls_verify
    if verify is None:
        return base.OTHER_REASON
    answer = verify(ctx, buf, start, end)
    if answer is None:
        a.status = asn.NON_ASSOCIATED
        return base.READ_WRITE_DENIED
    ctx.pos = axdr.enc_octet_string(ctx.buf, ctx.pos, answer)
    a.status = asn.ASSOCIATED
    return base.SUCCESS


def _role(ctx, obj):
    # the role index the object describes
    p = obj[base.E_PARAM]
    if p is not None and p[0] >= 0:
        return p[0]
    return ctx.assoc.role


def _form(obj):
    p = obj[base.E_PARAM]
    return p[2] if p is not None and len(p) > 2 else NAME_STRUCTURE


def _name(buf, pos, form, arc, last):
    # 2.16.756.5.8.arc.last in the chosen form
    if form == NAME_OCTETS:
        pos = axdr.enc_header(buf, pos, axdr.OCTET_STRING, 7)
        pos = axdr.put_bytes(buf, pos, _OID_PREFIX)
        pos = axdr.put_u8(buf, pos, arc)
        return axdr.put_u8(buf, pos, last)
    pos = axdr.enc_structure(buf, pos, 7)
    pos = axdr.enc_unsigned(buf, pos, 2)
    pos = axdr.enc_unsigned(buf, pos, 16)
    pos = axdr.enc_long_unsigned(buf, pos, 756)
    pos = axdr.enc_unsigned(buf, pos, 5)
    pos = axdr.enc_unsigned(buf, pos, 8)
    pos = axdr.enc_unsigned(buf, pos, arc)
    return axdr.enc_unsigned(buf, pos, last)


# ------------------------------------------------------------ object_list


def _count_size(n):
    # encoded size of an array header of n elements
    return 2 if n < 0x80 else 3 if n <= 0xFF else 4


def _selector_size(mask):
    if not mask:
        return 1  # null-data
    n = 0
    while mask:
        n += mask & 1
        mask >>= 1
    return 2 + 2 * n


def element_size(e, acc, ic):
    # Encoded size of the object_list_element of entry e with the access
    # pair acc; ic: its handler (meter.handlers[e[E_IC]]).
    na = ic.attribute_count
    nm = ic.method_count
    # structure(4) + class_id + version + logical_name + access_rights(2)
    size = 2 + 3 + 2 + 8 + 2 + _count_size(na) + _count_size(nm) + 6 * nm
    a = 1
    while a <= na:
        size += 6 + _selector_size(ic.selectors(a))
        a += 1
    return size


def put_element(buf, pos, e, acc, ic):
    # Write the object_list_element of entry e with the access pair acc;
    # ic: its handler.
    na = ic.attribute_count
    nm = ic.method_count
    pos = axdr.enc_structure(buf, pos, 4)
    pos = axdr.enc_long_unsigned(buf, pos, e[base.E_CLASS])
    pos = axdr.enc_unsigned(buf, pos, e[base.E_VERSION])
    pos = axdr.enc_octet_string(buf, pos, e[base.E_LN])
    pos = axdr.enc_structure(buf, pos, 2)
    modes = acc[0]
    nmodes = len(modes)
    pos = axdr.enc_array(buf, pos, na)
    a = 1
    while a <= na:
        pos = axdr.enc_structure(buf, pos, 3)
        pos = axdr.enc_integer(buf, pos, a)
        pos = axdr.enc_enum(buf, pos, modes[a - 1] if a <= nmodes else base.NO_ACCESS)
        mask = ic.selectors(a)
        if mask:
            n = 0
            m = mask
            while m:
                n += m & 1
                m >>= 1
            pos = axdr.enc_array(buf, pos, n)
            s = 0
            while mask:
                if mask & 1:
                    pos = axdr.enc_integer(buf, pos, s)
                mask >>= 1
                s += 1
        else:
            pos = axdr.enc_null(buf, pos)
        a += 1
    modes = acc[1]
    nmodes = len(modes)
    pos = axdr.enc_array(buf, pos, nm)
    a = 1
    while a <= nm:
        pos = axdr.enc_structure(buf, pos, 2)
        pos = axdr.enc_integer(buf, pos, a)
        pos = axdr.enc_enum(buf, pos, modes[a - 1] if a <= nmodes else 0)
        a += 1
    return pos


def object_list(ctx, ri):
    # Encode object_list (or its continuation, ctx.cursor > 0) for role ri
    # at ctx.pos, never past ctx.limit; see the cursor rule above.
    table = ctx.meter.table
    handlers = ctx.meter.handlers
    n = len(table)
    buf = ctx.buf
    limit = ctx.limit
    pos = ctx.pos
    cur = ctx.cursor
    if cur == 0:
        count = 0
        for e in table:
            if e[base.E_ACCESS][ri] is not None:
                count += 1
        if pos + _count_size(count) > limit:
            raise axdr.BufferFull("object_list header past the limit")
        pos = axdr.enc_array(buf, pos, count)
        i = 0
    else:
        i = cur - 1
    start = pos
    while i < n:
        e = table[i]
        acc = e[base.E_ACCESS][ri]
        if acc is not None:
            ic = handlers[e[base.E_IC]]
            if pos + element_size(e, acc, ic) > limit:
                if cur and pos == start:  # a continuation that cannot move
                    raise axdr.BufferFull("object_list element larger than the buffer")
                break
            pos = put_element(buf, pos, e, acc, ic)
        i += 1
    ctx.pos = pos
    ctx.cursor = i + 1 if i < n else 0
