# xDLMS services with logical-name referencing (IEC 62056-5-3 / Green Book
# ch. 9): GET, SET and ACTION in their normal, with-list and block-transfer
# forms, and the exception-response. One Services instance per channel; it
# decodes the request in place and encodes the response straight into the
# link's transmit buffer.
#
# A response that does not fit the client's max PDU goes in blocks: the
# attribute is encoded into the block buffer (long attributes in pieces,
# resumed with ctx.cursor) and handed out block by block on GET-Request-Next.
#
# General block transfer (Green Book 9.4.6.13, dlms_micro.app.gbt) sits
# above this layer: the channel sets Services.gbt before handle() when the
# response will travel in GBT blocks. Then the response may use the whole
# output buffer (the GBT blocks, not the APDU, must fit the client's max
# PDU), and with GBT_STREAM a long attribute is not refused or put into
# GET datablocks: handle() returns the first piece of a get-response-normal
# and leaves the attribute open; gbt_more() encodes the following pieces,
# resumed by cursor as for GET-Request-Next.

from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.cosem import base
from dlms_micro.errors import DecodeError, EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# APDU tags
GET_REQUEST = const(0xC0)
SET_REQUEST = const(0xC1)
ACTION_REQUEST = const(0xC3)
GET_RESPONSE = const(0xC4)
SET_RESPONSE = const(0xC5)
ACTION_RESPONSE = const(0xC7)
EXCEPTION_RESPONSE = const(0xD8)
CONFIRMED_SERVICE_ERROR = const(0x0E)

# exception-response (Green Book 9.5): state-error, then service-error
STATE_SERVICE_NOT_ALLOWED = const(1)
STATE_SERVICE_UNKNOWN = const(2)
SERVICE_OPERATION_NOT_POSSIBLE = const(1)
SERVICE_NOT_SUPPORTED = const(2)
SERVICE_OTHER_REASON = const(3)
SERVICE_PDU_TOO_LONG = const(4)

# block transfer in progress (AssociationState.block_kind)
_BLOCK_NONE = const(0)
_BLOCK_GET = const(1)
_BLOCK_SET = const(2)
_BLOCK_ACTION = const(3)
_BLOCK_GBT = const(4)  # a get-response-normal streamed through GBT

# Services.gbt: how the response of the request being served travels
GBT_OFF = const(0)  # as one APDU or in service-specific blocks
GBT_WHOLE = const(1)  # in GBT blocks, made whole first (a ciphered response)
GBT_STREAM = const(2)  # in GBT blocks, a long attribute streamed by cursor

# What each service needs negotiated
_CONF_GET = asn.CONF_GET
_CONF_SET = asn.CONF_SET
_CONF_ACTION = asn.CONF_ACTION
_CONF_LIST = asn.CONF_MULTIPLE_REFERENCES

_GET_HEADER = const(12)  # C4 02 iip last block-number(4) 00 length(<=4)

# cosem.base's entry fields and codes that get_normal uses, folded into the
# code on MicroPython (a module attribute costs two lookups per use)
_E_LN = const(2)
_E_IC = const(3)
_E_ACCESS = const(5)
_READ = const(1)
if (base.E_LN, base.E_IC, base.E_ACCESS, base.READ, base.SUCCESS) != (_E_LN, _E_IC, _E_ACCESS, _READ, 0):
    raise ImportError("xdlms: cosem.base entry layout changed")


class Services:
    def __init__(self, meter, assoc, max_pdu=1024):
        self.meter = meter
        self.assoc = assoc
        self.ctx = base.Context(meter)
        self.ctx.assoc = assoc
        self.r = axdr.Reader()
        self.ctx.r = self.r
        self.max_pdu = max_pdu
        # Block buffer: a long response being handed out, or a long request
        # being collected.
        self.block = bytearray(max_pdu)
        self._block_mv = memoryview(self.block)  # made once: a slice costs 16 B, not 32
        # Views of the block buffer that GET data blocks are copied from,
        # made once per block size (_copy_block): {offset: view}
        self._views = None
        self._views_n = 0
        self._sel_pos = 0
        self._blen = 0  # bytes in the block buffer
        self._bpos = 0  # bytes already sent from it
        self.gbt = GBT_OFF
        self.log = None
        # GET-with-list in blocks: a copy of the request's descriptors not yet
        # served (made once, on the first list that needs it), where the
        # next one starts, and how many are left
        self._list = None
        self._list_pos = 0
        self._list_end = 0
        self._list_left = 0
        self._list_mode = 0
        self._list_error = 0

    def _error(self, msg):
        if self.log is not None:
            self.log(msg)

    def abort_blocks(self):
        a = self.assoc
        a.block_kind = _BLOCK_NONE
        a.block_obj = None
        a.block_number = 0
        a.block_cursor = 0
        self._blen = 0
        self._bpos = 0
        self._list_mode = 0
        self._list_left = 0

    # ----------------------------------------------------------------- entry

    def handle(self, req, start, end, out, out_start, out_end):
        # Serve one xDLMS request in req[start:end]; write the response at
        # out[out_start:] and return its end (-1: no response).
        a = self.assoc
        if end - start < 3:
            return self._exception(out, out_start, STATE_SERVICE_UNKNOWN, SERVICE_OTHER_REASON)
        tag = req[start]
        if tag != GET_REQUEST and tag != SET_REQUEST and tag != ACTION_REQUEST:
            self._error("xdlms: unknown or unsupported APDU 0x%02x" % tag)
            return self._exception(out, out_start, STATE_SERVICE_UNKNOWN, SERVICE_NOT_SUPPORTED)
        if a.status != asn.ASSOCIATED and not (a.status == asn.ASSOCIATION_PENDING and self._hls_reply(req, start, end)):
            # Pending (HLS): only reply_to_HLS_authentication may pass.
            self._error("xdlms: request outside an association")
            return self._exception(out, out_start, STATE_SERVICE_NOT_ALLOWED, SERVICE_OPERATION_NOT_POSSIBLE)
        if end - start > self.max_pdu:
            return self._exception(out, out_start, STATE_SERVICE_NOT_ALLOWED, SERVICE_PDU_TOO_LONG)
        # The response may not exceed the client's max receive PDU (in GBT
        # only its blocks are bound by it).
        limit = out_end
        if not self.gbt and out_start + a.client_max_pdu < out_end:
            limit = out_start + a.client_max_pdu
        r = self.r
        r.reset(req, start + 2, end)
        kind = req[start + 1]
        try:
            # The with-list forms need multiple-references in the negotiated
            # conformance block (Green Book 9.4.6.1, conformance bit 9), as
            # each service needs its own bit: GET kind 3, SET kinds 4 and 5,
            # ACTION kinds 3 and 5.
            if tag == GET_REQUEST:
                if not a.conformance & _CONF_GET or (kind == 3 and not a.conformance & _CONF_LIST):
                    return self._not_negotiated(out, out_start)
                return self._get(kind, out, out_start, limit)
            if tag == SET_REQUEST:
                if not a.conformance & _CONF_SET or ((kind == 4 or kind == 5) and not a.conformance & _CONF_LIST):
                    return self._not_negotiated(out, out_start)
                return self._set(kind, out, out_start, limit)
            if not a.conformance & _CONF_ACTION or ((kind == 3 or kind == 5) and not a.conformance & _CONF_LIST):
                return self._not_negotiated(out, out_start)
            return self._action(kind, out, out_start, limit)
        except DecodeError as e:
            return self._malformed(e, out, out_start)

    def _malformed(self, e, out, o):
        # handle()'s answer to a request that does not decode
        self._error("xdlms: malformed request: %s" % e)
        self.abort_blocks()
        return self._exception(out, o, STATE_SERVICE_UNKNOWN, SERVICE_OTHER_REASON)

    def get_normal(self, req, s, out, o, limit):
        # The commonest request in fewer steps: req[s:s+13] is a
        # GET-Request-Normal of one attribute without selective access,
        # C0 01 iip class(2) ln(6) attr 00, in an open association (the
        # channel checked that, and that the response goes as one APDU, not
        # in GBT). The object comes from the meter's index, the rights are
        # checked as _lookup checks them, and the response is encoded at
        # out[o:limit] exactly as handle() would. Returns -2, having done
        # nothing, when it is not that plain case (no such object or right,
        # GET not negotiated...): handle() then serves and answers it.
        a = self.assoc
        attr = req[s + 11]
        obj = self.meter.find((req[s + 3] << 8) | req[s + 4], req, s + 5)
        if obj is None or attr < 1 or attr > 127 or not a.conformance & _CONF_GET or self.max_pdu < 13:
            return -2
        modes = obj[_E_ACCESS][a.role]
        if modes is None:
            return -2
        modes = modes[0]
        if attr > len(modes) or not modes[attr - 1] & _READ:
            return -2
        ic = self.meter.handlers[obj[_E_IC]]
        if attr > ic.attribute_count:
            return -2
        self.abort_blocks()
        if o + a.client_max_pdu < limit:
            limit = o + a.client_max_pdu
        out[o] = GET_RESPONSE
        out[o + 1] = 1
        out[o + 2] = req[s + 2]
        out[o + 3] = 0  # data
        ctx = self.ctx
        ctx.selector = 0
        ctx.cursor = 0
        ctx.buf = out
        ctx.pos = o + 4
        ctx.limit = limit
        try:
            if attr == 1:
                ctx.pos = axdr.enc_octet_string(out, o + 4, obj[_E_LN])
                res = 0
            else:
                res = ic.get(ctx, obj, attr)
        except EncodeError:
            res = -1  # does not fit: go in blocks
        except DecodeError as e:
            return self._malformed(e, out, o)
        if res == 0 and ctx.cursor == 0:
            return ctx.pos
        try:
            return self._get_rest(obj, attr, req[s + 2], res, out, o, limit)
        except DecodeError as e:
            return self._malformed(e, out, o)

    def _hls_reply(self, req, s, e):
        # ACTION-Request-Normal for Association LN (class 15) method 1,
        # reply_to_HLS_authentication: C3 01 iip 000F <ln 6> 01 ...
        return e - s >= 13 and req[s] == ACTION_REQUEST and req[s + 1] == 1 and req[s + 3] == 0 and req[s + 4] == 15 and req[s + 11] == 1

    def _exception(self, out, o, state, service):
        out[o] = EXCEPTION_RESPONSE
        out[o + 1] = state
        out[o + 2] = service
        return o + 3

    def _not_negotiated(self, out, o):
        self._error("xdlms: service not negotiated in this association")
        return self._exception(out, o, STATE_SERVICE_NOT_ALLOWED, SERVICE_NOT_SUPPORTED)

    # ----------------------------------------------------- attribute access

    def _lookup(self, write, method):
        # Read a cosem-attribute/method-descriptor; returns the entry and
        # leaves the attribute/method id in self._id, or returns None with
        # the refusal in self._refusal.
        r = self.r
        class_id = r.u16()
        p = r._take(6, "instance-id")
        self._id = r.i8()
        meter = self.meter
        obj = meter.find(class_id, r.buf, p)
        if obj is None:
            other = meter.find_ln(r.buf, p)
            self._refusal = base.OBJECT_CLASS_INCONSISTENT if other is not None else base.READ_WRITE_DENIED
            return None
        acc = obj[base.E_ACCESS][self.assoc.role]
        if acc is None:
            self._refusal = base.READ_WRITE_DENIED  # not in this association
            return None
        i = self._id
        if method:
            modes = acc[1]
            if i < 1 or i > len(modes) or i > self.ctx.meter.handlers[obj[base.E_IC]].method_count or not modes[i - 1]:
                self._refusal = base.READ_WRITE_DENIED
                return None
        else:
            modes = acc[0]
            need = base.WRITE if write else base.READ
            if i < 1 or i > len(modes) or i > self.ctx.meter.handlers[obj[base.E_IC]].attribute_count or not modes[i - 1] & need:
                self._refusal = base.READ_WRITE_DENIED
                return None
        return obj

    def _selection(self, obj, attr):
        # Read the optional access-selection; True when it is acceptable.
        # Sets ctx.selector and skips the parameters, remembering where they
        # are for the handler (see _get_attr).
        r = self.r
        ctx = self.ctx
        ctx.selector = 0
        if not r.u8():
            return True
        sel = r.u8()
        ctx.selector = sel
        self._sel_pos = r.pos
        r.skip()
        if not self.assoc.conformance & asn.CONF_SELECTIVE_ACCESS:
            return False
        if sel > 31 or obj is None or not self.ctx.meter.handlers[obj[base.E_IC]].selectors(attr) & (1 << sel):
            return False
        return True

    def _get_attr(self, obj, attr, buf, pos, limit):
        # Encode the attribute at buf[pos:]; returns the data-access-result.
        # ctx.pos is left at the end of what was written.
        ctx = self.ctx
        ctx.buf = buf
        ctx.pos = pos
        ctx.limit = limit
        if attr == 1:
            ctx.pos = axdr.enc_octet_string(buf, pos, obj[base.E_LN])
            return base.SUCCESS
        if ctx.selector and ctx.cursor == 0:
            # The handler reads the selector's parameters from r.
            r = self.r
            after = r.pos
            r.pos = self._sel_pos
            res = ctx.meter.handlers[obj[base.E_IC]].get(ctx, obj, attr)
            r.pos = after
            return res
        return ctx.meter.handlers[obj[base.E_IC]].get(ctx, obj, attr)

    # ------------------------------------------------------------------ GET

    def _get(self, kind, out, o, limit):
        r = self.r
        iip = r.u8()
        if kind == 1:  # get-request-normal
            self.abort_blocks()
            obj = self._lookup(False, False)
            attr = self._id
            ok = self._selection(obj, attr)
            out[o] = GET_RESPONSE
            out[o + 1] = 1
            out[o + 2] = iip
            if obj is None:
                return self._dar(out, o + 3, self._refusal)
            if not ok:
                return self._dar(out, o + 3, base.OTHER_REASON)
            out[o + 3] = 0  # data
            self.ctx.cursor = 0
            try:
                res = self._get_attr(obj, attr, out, o + 4, limit)
            except EncodeError:
                res = -1  # does not fit: go in blocks
            if res == base.SUCCESS and self.ctx.cursor == 0:
                return self.ctx.pos
            return self._get_rest(obj, attr, iip, res, out, o, limit)
        if kind == 2:  # get-request-next
            n = r.u32()
            return self._next_get_block(n, iip, out, o, limit)
        if kind == 3:  # get-request-with-list
            self.abort_blocks()
            return self._get_list(iip, out, o, limit)
        raise DecodeError("unknown get-request choice %d" % kind)

    def _get_rest(self, obj, attr, iip, res, out, o, limit):
        # A get-request-normal whose attribute did not come out whole in
        # the response at out[o:] (res -1: it did not fit; SUCCESS with a
        # cursor: a long attribute; > 0: a refusal)
        if res == base.SUCCESS and self.gbt == GBT_STREAM:
            # The rest follows through gbt_more(), in GBT blocks.
            a = self.assoc
            a.block_kind = _BLOCK_GBT
            a.block_obj = obj
            a.block_attr = attr
            a.block_cursor = self.ctx.cursor
            a.block_invoke = iip
            return self.ctx.pos
        if res > 0:
            return self._dar(out, o + 3, res)
        return self._start_get_blocks(obj, attr, iip, out, o, limit)

    def gbt_pending(self):
        # True while a response streamed through GBT has more to come.
        return self.assoc.block_kind == _BLOCK_GBT

    def gbt_more(self, buf, pos, limit):
        # Encode the next piece of the attribute streamed through GBT at
        # buf[pos:limit]; returns the new end (pos: not even one item fits),
        # or -1 when the attribute failed (the transfer is abandoned).
        a = self.assoc
        if a.block_kind != _BLOCK_GBT:
            return pos
        ctx = self.ctx
        ctx.cursor = a.block_cursor
        try:
            res = self._get_attr(a.block_obj, a.block_attr, buf, pos, limit)
        except EncodeError:
            return pos
        if res:
            self._error("xdlms: long attribute failed in GBT (data-access-result %d)" % res)
            self.abort_blocks()
            return -1
        if ctx.cursor == 0:
            self.abort_blocks()  # finished
        else:
            a.block_cursor = ctx.cursor
        return ctx.pos

    def _dar(self, out, p, code):
        out[p] = 1  # data-access-result
        out[p + 1] = code
        return p + 2

    def _fill_block_buffer(self):
        # Encode (more of) the block-transfer attribute into the block buffer.
        a = self.assoc
        ctx = self.ctx
        ctx.cursor = a.block_cursor
        try:
            res = self._get_attr(a.block_obj, a.block_attr, self.block, 0, len(self.block))
        except EncodeError:
            self._error("xdlms: attribute larger than the block buffer")
            return base.OTHER_REASON
        if res:
            return res
        self._blen = ctx.pos
        self._bpos = 0
        a.block_cursor = ctx.cursor
        return 0

    def _start_get_blocks(self, obj, attr, iip, out, o, limit):
        a = self.assoc
        a.block_kind = _BLOCK_GET
        a.block_obj = obj
        a.block_attr = attr
        a.block_cursor = 0
        a.block_number = 0
        a.block_invoke = iip
        if not a.conformance & asn.CONF_BLOCK_TRANSFER_WITH_GET:
            self.abort_blocks()
            out[o + 3] = 1
            out[o + 4] = base.OTHER_REASON
            self._error("xdlms: response too long and block transfer not negotiated")
            return o + 5
        res = self._fill_block_buffer()
        if res:
            self.abort_blocks()
            return self._dar(out, o + 3, res)
        return self._emit_get_block(iip, out, o, limit)

    def _emit_get_block(self, iip, out, o, limit):
        a = self.assoc
        room = limit - o - _GET_HEADER
        if room < 1:
            self.abort_blocks()
            return self._exception(out, o, STATE_SERVICE_NOT_ALLOWED, SERVICE_PDU_TOO_LONG)
        # Gather up to `room` bytes: the rest of the buffer, refilled from
        # the attribute's continuation while it has one.
        n = self._blen - self._bpos
        if n < room and self._list_mode and (a.block_cursor or self._list_left):
            # GET-with-list: move the unsent tail to the front, then more
            # results behind it (the long item under way, the items left)
            b = self.block
            for i in range(n):
                b[i] = b[self._bpos + i]
            self._bpos = 0
            r = self.r
            if self._list_left:  # else only the long last item is left
                r.reset(self._list, self._list_pos, self._list_end)
            m = self._fill_list(b, n)
            if self._list_left:
                self._list_pos = r.pos
            if m < 0:
                self.abort_blocks()
                return self._block_dar(iip, out, o, self._list_error)
            self._blen = m
            n = m
        elif n < room and a.block_cursor:
            # Move the unsent tail to the front and append the continuation.
            b = self.block
            for i in range(n):
                b[i] = b[self._bpos + i]
            self._blen = n
            self._bpos = 0
            ctx = self.ctx
            ctx.cursor = a.block_cursor
            try:
                res = self._get_attr(a.block_obj, a.block_attr, b, n, len(b))
            except EncodeError:
                # Not even the next item fits behind the tail: send the tail
                # now and continue the attribute in the next block.
                res = -1 if n else base.OTHER_REASON
            if res > 0:
                self.abort_blocks()
                return self._block_dar(iip, out, o, res)
            if res == 0:
                self._blen = ctx.pos
                a.block_cursor = ctx.cursor
                n = self._blen
        if n > room:
            n = room
        a.block_number += 1
        last = self._bpos + n == self._blen and not a.block_cursor and not self._list_left
        out[o] = GET_RESPONSE
        out[o + 1] = 2
        out[o + 2] = iip
        out[o + 3] = 1 if last else 0
        p = axdr.put_int(out, o + 4, axdr.DOUBLE_LONG_UNSIGNED, a.block_number)
        out[p] = 0  # raw-data
        p = axdr.put_length(out, p + 1, n)
        s = self._bpos
        self._copy_block(out, p, s, n, last)
        self._bpos = s + n
        if last:
            self.abort_blocks()
        return p + n

    def _copy_block(self, out, p, s, n, last):
        # out[p:p+n] = block[s:s+n] without allocating once a transfer runs:
        # the blocks of a transfer have one size (the room of a response)
        # and start at multiples of it, so their views of the block buffer
        # are made on first use and kept (a slice of a memoryview costs 16 B
        # each time). The last, shorter block is copied with its start's
        # full-size view: the bytes past its end land after the response,
        # in room the response may use anyway (a byte loop costs ~1,500
        # Cortex-M3 instructions a byte).
        if n != self._views_n and not last:
            self._views = {}
            self._views_n = n
        m = self._views_n
        if n > m or s + m > len(self.block) or p + m > len(out):
            b = self.block  # no full-size view fits here: byte by byte
            for i in range(n):
                out[p + i] = b[s + i]
            return
        v = self._views.get(s)
        if v is None:
            v = self._views[s] = self._block_mv[s : s + m]
        out[p : p + m] = v

    def _block_dar(self, iip, out, o, code):
        out[o] = GET_RESPONSE
        out[o + 1] = 2
        out[o + 2] = iip
        out[o + 3] = 1  # last block
        p = axdr.put_int(out, o + 4, axdr.DOUBLE_LONG_UNSIGNED, self.assoc.block_number)
        return self._dar(out, p, code)

    def _next_get_block(self, n, iip, out, o, limit):
        a = self.assoc
        if a.block_kind != _BLOCK_GET:
            return self._block_dar(iip, out, o, base.NO_LONG_GET_IN_PROGRESS)
        if n != a.block_number:
            self._error("xdlms: get-request-next for block %d, sent %d" % (n, a.block_number))
            self.abort_blocks()
            a.block_number = n  # echoed in the refusal
            res = self._block_dar(iip, out, o, base.LONG_GET_ABORTED)
            a.block_number = 0
            return res
        return self._emit_get_block(iip, out, o, limit)

    def _get_list(self, iip, out, o, limit):
        # get-response-with-list: the results go into the block buffer
        # first, so that a list too long for one reply goes in blocks as a
        # whole (GET-Request-Next, as for a plain GET). An item that does not
        # fit what is left of the block buffer, or a long attribute (one
        # with a cursor), no longer gets other-reason (issue 18): it is
        # continued block by block, and the items after it are served from a
        # copy of the rest of the request once it is done (_fill_list).
        r = self.r
        a = self.assoc
        count = r.length()
        b = self.block
        self._list_left = count
        self._list_mode = 1
        p = self._fill_list(b, axdr.put_length(b, 0, count))
        if p < 0:
            self.abort_blocks()
            return self._exception(out, o, STATE_SERVICE_NOT_ALLOWED, SERVICE_OTHER_REASON)
        whole = not self._list_left and not a.block_cursor
        if whole and o + 3 + p <= limit:
            self._list_mode = 0
            out[o] = GET_RESPONSE
            out[o + 1] = 3
            out[o + 2] = iip
            out[o + 3 : o + 3 + p] = self._block_mv[0:p]
            return o + 3 + p
        if not a.conformance & asn.CONF_BLOCK_TRANSFER_WITH_GET:
            self._error("xdlms: GET-with-list response too long and block transfer not negotiated")
            self.abort_blocks()
            return self._exception(out, o, STATE_SERVICE_NOT_ALLOWED, SERVICE_PDU_TOO_LONG)
        if self._list_left:
            # keep the descriptors not yet served: the request buffer is the
            # link's and the next request (GET-Request-Next) overwrites it
            n = r.end - r.pos
            if self._list is None:
                self._list = bytearray(self.max_pdu)
            lst = self._list
            src = r.buf
            q = r.pos
            for i in range(n):
                lst[i] = src[q + i]
            self._list_pos = 0
            self._list_end = n
        a.block_kind = _BLOCK_GET
        a.block_number = 0
        a.block_invoke = iip
        self._blen = p
        self._bpos = 0
        return self._emit_get_block(iip, out, o, limit)

    def _fill_list(self, b, n):
        # Encode GET-with-list results into b from n on, as far as they fit:
        # first the rest of the long item under way (assoc.block_cursor),
        # then the items left (self._list_left, descriptors read by self.r).
        # Returns the new end; -1 when a long item failed midway (its start
        # is already out: the code is in self._list_error).
        a = self.assoc
        ctx = self.ctx
        r = self.r
        cap = len(b)
        while True:
            if a.block_cursor:
                ctx.cursor = a.block_cursor
                try:
                    res = self._get_attr(a.block_obj, a.block_attr, b, n, cap)
                except EncodeError:
                    if n:
                        return n  # send what is there first
                    res = base.OTHER_REASON
                    self._error("xdlms: an item of a long attribute is larger than the block buffer")
                if res:
                    self._list_error = res
                    return -1
                moved = ctx.pos != n
                n = ctx.pos
                a.block_cursor = ctx.cursor
                if a.block_cursor and not moved:
                    return n
                continue
            if not self._list_left:
                return n
            item = r.pos
            obj = self._lookup(False, False)
            attr = self._id
            ok = self._selection(obj, attr)
            if n + 2 > cap:
                r.pos = item  # read again once the buffer has room
                return n
            if obj is None or not ok:
                self._list_left -= 1
                n = self._dar(b, n, self._refusal if obj is None else base.OTHER_REASON)
                continue
            b[n] = 0  # data
            ctx.cursor = 0
            try:
                res = self._get_attr(obj, attr, b, n + 1, cap)
            except EncodeError:
                if n:
                    r.pos = item
                    return n
                # not even alone in the empty buffer: it cannot be sent
                self._error("xdlms: attribute larger than the block buffer")
                res = base.OTHER_REASON
            self._list_left -= 1
            if res:
                n = self._dar(b, n, res)
                continue
            n = ctx.pos
            if ctx.cursor:
                a.block_obj = obj
                a.block_attr = attr
                a.block_cursor = ctx.cursor

    # ------------------------------------------------------------------ SET

    def _set_value(self, obj, attr):
        # r is at the value; returns the data-access-result.
        ctx = self.ctx
        if attr == 1:
            return base.READ_WRITE_DENIED
        return ctx.meter.handlers[obj[base.E_IC]].set(ctx, obj, attr)

    def _set(self, kind, out, o, limit):
        r = self.r
        a = self.assoc
        iip = r.u8()
        out[o] = SET_RESPONSE
        out[o + 2] = iip
        if kind == 1:  # set-request-normal
            self.abort_blocks()
            obj = self._lookup(True, False)
            attr = self._id
            ok = self._selection(obj, attr)
            out[o + 1] = 1
            if obj is None:
                out[o + 3] = self._refusal
            elif not ok:
                out[o + 3] = base.OTHER_REASON
            else:
                out[o + 3] = self._set_value(obj, attr)
            return o + 4
        if kind == 2 or kind == 3:  # with-first-datablock / with-datablock
            if kind == 2:
                self.abort_blocks()
                obj = self._lookup(True, False)
                attr = self._id
                ok = self._selection(obj, attr)
                if obj is None or not ok:
                    out[o + 1] = 3  # set-response-last-datablock
                    out[o + 3] = self._refusal if obj is None else base.OTHER_REASON
                    return axdr.put_int(out, o + 4, axdr.DOUBLE_LONG_UNSIGNED, 1)
                if not a.conformance & asn.CONF_BLOCK_TRANSFER_WITH_SET:
                    return self._not_negotiated(out, o)
                a.block_kind = _BLOCK_SET
                a.block_obj = obj
                a.block_attr = attr
                a.block_number = 0
                self._blen = 0
            elif a.block_kind != _BLOCK_SET:
                r.u8()
                out[o + 1] = 3
                out[o + 3] = base.NO_LONG_SET_IN_PROGRESS
                return axdr.put_int(out, o + 4, axdr.DOUBLE_LONG_UNSIGNED, r.u32())
            res = self._take_block(_BLOCK_SET)
            if res < 0:  # more blocks to come
                out[o + 1] = 2  # set-response-datablock
                return axdr.put_int(out, o + 3, axdr.DOUBLE_LONG_UNSIGNED, a.block_number)
            number = a.block_number
            if res == 0:
                r.reset(self.block, 0, self._blen)
                res = self._set_value(a.block_obj, a.block_attr)
            self.abort_blocks()
            out[o + 1] = 3
            out[o + 3] = res
            return axdr.put_int(out, o + 4, axdr.DOUBLE_LONG_UNSIGNED, number)
        if kind == 4:  # set-request-with-list
            self.abort_blocks()
            return self._set_list(iip, out, o, limit)
        raise DecodeError("unknown set-request choice %d" % kind)

    def _take_block(self, kind):
        # DataBlock-SA {last-block, block-number, raw-data} at r: append the
        # raw data to the block buffer. Returns -1: more to come, 0: last
        # block taken, >0: a data-access-result ending the transfer.
        r = self.r
        a = self.assoc
        last = r.u8()
        n = r.u32()
        if n != a.block_number + 1:
            self._error("xdlms: datablock %d out of order (expected %d)" % (n, a.block_number + 1))
            a.block_number = n  # echoed in the refusal
            return base.DATA_BLOCK_NUMBER_INVALID
        a.block_number = n
        size = r.length()  # raw-data: an octet string without its tag
        s = r.pos
        if size > r.end - s:
            raise DecodeError("raw-data length %d exceeds the APDU at offset %d" % (size, s))
        r.pos = s + size
        if self._blen + size > len(self.block):
            self._error("xdlms: long request larger than the block buffer")
            return base.OTHER_REASON
        self.block[self._blen : self._blen + size] = memoryview(r.buf)[s : s + size]
        self._blen += size
        return 0 if last else -1

    def _set_list(self, iip, out, o, limit):
        # Descriptors first, then the values in the same order: walk both in
        # step (no list of objects is built).
        r = self.r
        count = r.length()
        desc = r.pos
        for _ in range(count):
            r._take(9, "cosem-attribute-descriptor")
            if r.u8():
                r.u8()
                r.skip()
        if r.length() != count:
            raise DecodeError("set-request-with-list: value count differs from descriptor count")
        values = r.pos
        if o + 4 + count > limit:
            return self._exception(out, o, STATE_SERVICE_NOT_ALLOWED, SERVICE_PDU_TOO_LONG)
        out[o] = SET_RESPONSE
        out[o + 1] = 5
        out[o + 2] = iip
        p = axdr.put_length(out, o + 3, count)
        for _ in range(count):
            r.pos = desc
            obj = self._lookup(True, False)
            attr = self._id
            ok = self._selection(obj, attr)
            desc = r.pos
            r.pos = values
            if obj is None:
                res = self._refusal
            elif not ok:
                res = base.OTHER_REASON
            else:
                res = self._set_value(obj, attr)
            r.pos = values
            r.skip()
            values = r.pos
            out[p] = res
            p += 1
        return p

    # --------------------------------------------------------------- ACTION

    def _action(self, kind, out, o, limit):
        r = self.r
        a = self.assoc
        iip = r.u8()
        if kind == 1:  # action-request-normal
            self.abort_blocks()
            obj = self._lookup(False, True)
            method = self._id
            has = r.u8()
            if obj is None:
                return self._action_result(out, o, iip, self._refusal)
            return self._invoke(obj, method, has, iip, out, o, limit)
        if kind == 4 or kind == 6:  # with-first-pblock / with-pblock
            if kind == 4:
                self.abort_blocks()
                obj = self._lookup(False, True)
                if obj is None:
                    return self._action_result(out, o, iip, self._refusal)
                if not a.conformance & asn.CONF_BLOCK_TRANSFER_WITH_ACTION:
                    return self._not_negotiated(out, o)
                a.block_kind = _BLOCK_ACTION
                a.block_obj = obj
                a.block_attr = self._id
                a.block_number = 0
                self._blen = 0
            elif a.block_kind != _BLOCK_ACTION:
                return self._action_result(out, o, iip, base.NO_LONG_ACTION_IN_PROGRESS)
            res = self._take_block(_BLOCK_ACTION)
            if res < 0:
                out[o] = ACTION_RESPONSE
                out[o + 1] = 4  # action-response-next-pblock
                out[o + 2] = iip
                return axdr.put_int(out, o + 3, axdr.DOUBLE_LONG_UNSIGNED, a.block_number)
            obj = a.block_obj
            method = a.block_attr
            n = self._blen
            self.abort_blocks()
            if res:
                return self._action_result(out, o, iip, res)
            r.reset(self.block, 0, n)
            return self._invoke(obj, method, 1, iip, out, o, limit)
        raise DecodeError("unknown action-request choice %d" % kind)

    def _invoke(self, obj, method, has, iip, out, o, limit):
        ctx = self.ctx
        ctx.has_data = bool(has)
        ctx.buf = out
        ctx.pos = o + 6  # after C7 01 iip result 01 00 (return data)
        ctx.limit = limit
        ctx.cursor = 0
        try:
            res = ctx.meter.handlers[obj[base.E_IC]].action(ctx, obj, method)
        except EncodeError:
            res = base.OTHER_REASON
        if res or ctx.pos == o + 6:
            return self._action_result(out, o, iip, res)
        out[o] = ACTION_RESPONSE
        out[o + 1] = 1
        out[o + 2] = iip
        out[o + 3] = 0  # success
        out[o + 4] = 1  # return-parameters present
        out[o + 5] = 0  # Get-Data-Result: data
        return ctx.pos

    def _action_result(self, out, o, iip, res):
        # action-response-normal without return parameters: C7 01 iip res 00
        out[o] = ACTION_RESPONSE
        out[o + 1] = 1
        out[o + 2] = iip
        out[o + 3] = res
        out[o + 4] = 0
        return o + 5
