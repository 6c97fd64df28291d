# One communication channel of a meter: a link (HDLC or the TCP/UDP
# wrapper) wired to an application association and the xDLMS services.
# Sans-IO like the links it wraps; a port runs one Channel per physical line
# or TCP connection:
#
#   ch = Channel(meter, link)
#   taken = ch.feed(data, start, end, now)
#   while True:
#       ev = ch.next_event(now)
#       if ev == EV_NONE: break
#       if ev == EV_SEND: write ch.tx_buf[ch.tx_start:ch.tx_end]
#       if ev == EV_CLOSE: close the connection (wrapper: unusable stream)
#   ch.close()   when the transport goes away
#
# APDUs are handled inside next_event(): AARQ/RLRQ by ACSE, the rest by the
# xDLMS services, each response encoded in place into the link's buffer.
#
# General block transfer (app.gbt): general-block-transfer APDUs are collected
# into the request they carry (which may be ciphered), and a response goes
# in GBT blocks when the request came in GBT, or when the association
# negotiated GBT but not block-transfer-with-get (the client then has no
# other way to take a long response). Otherwise long GET responses keep to
# GET datablocks, which every client that proposes both understands. On the
# wrapper a window of blocks is sent in a row (next_event() hands out one
# block per EV_SEND); HDLC sends one block per client acknowledgement.

from dlms_micro.app import acse
from dlms_micro.app import association as asn
from dlms_micro.app import auth_guard as _ag
from dlms_micro.app import gbt as _gbt
from dlms_micro.app import xdlms as _xd
from dlms_micro.app.xdlms import Services
from dlms_micro.errors import DlmsError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Security suite 0 is loaded only for a meter that has keys (meter.keys), so
# a board without security does not import the crypto modules.
_s0 = None

# Events: the links' numbers (link.hdlc / link.wrapper use the same), so
# that a board with one link type does not load the other's module. const():
# folded into the code on MicroPython (no global lookup per use).
EV_NONE = const(0)
EV_SEND = const(1)
EV_APDU = const(2)
EV_CONNECTED = const(3)  # HDLC: link (re)established
EV_DISCONNECTED = const(4)  # HDLC: DISC or inactivity
EV_CLOSE = const(5)  # wrapper: the stream cannot be trusted any more

_LINK_HDLC = const(1)
_LINK_WRAPPER = const(2)
_GENERAL_SIGNING = const(0xDF)
_PENDING = const(1)  # asn.ASSOCIATION_PENDING, folded
_ASSOCIATED = const(2)  # asn.ASSOCIATED, folded
if asn.ASSOCIATED != _ASSOCIATED or asn.ASSOCIATION_PENDING != _PENDING:
    raise ImportError("server: association state numbers changed")
# suite0.HEADER_ROOM and TRAILER, folded (suite0 is imported late); the
# Channel checks them when it loads suite0
_HEADER_ROOM = const(18)
_TRAILER = const(12)

# What this server implements (offered in the InitiateResponse, intersected
# with what the client proposes and what the role grants).
SERVER_CONFORMANCE = (
    asn.CONF_GET
    | asn.CONF_SET
    | asn.CONF_ACTION
    | asn.CONF_SELECTIVE_ACCESS
    | asn.CONF_MULTIPLE_REFERENCES
    | asn.CONF_BLOCK_TRANSFER_WITH_GET
    | asn.CONF_BLOCK_TRANSFER_WITH_SET
    | asn.CONF_BLOCK_TRANSFER_WITH_ACTION
    | asn.CONF_GENERAL_BLOCK_TRANSFER
)
_CONF_GBT = asn.CONF_GENERAL_BLOCK_TRANSFER
_CONF_BT_GET = asn.CONF_BLOCK_TRANSFER_WITH_GET


def _shared_gcm(keys, gcm):
    # The global-key AES-GCM of a key store: one for all the meters that
    # share it (a gateway's logical devices: dlms_micro_mp.keyring.attach),
    # ~1.7 KB less per device; each Suite0 loads the store's EK into it
    # when it changed. A store that takes no attribute: one per meter.
    g = getattr(keys, "_gcm", None)
    if g is None:
        g = gcm.new()
        try:
            keys._gcm = g
        except AttributeError:
            pass
    return g


class Channel:
    def __init__(self, meter, link, max_pdu=None):
        self.meter = meter
        self.link = link
        self.kind = _LINK_WRAPPER if hasattr(link, "source_wport") else _LINK_HDLC
        cap = link.tx_apdu_end - link.TX_APDU_START
        if max_pdu is None or max_pdu > cap:
            max_pdu = cap
        self.max_pdu = max_pdu
        self.assoc = asn.AssociationState()
        self.services = Services(meter, self.assoc, max_pdu)
        # GBT: sized like the link's transmit room, which bounds a response
        # handed to it whole (GBT lifts the client's max PDU from the APDU).
        self.gbt = _gbt.Gbt(cap)
        self._gbt_push = False  # a streamed GBT block is due (wrapper)
        self.aarq = acse.Aarq()
        self.rlrq = acse.Rlrq()
        self.outcome = acse.Outcome()
        self.aare = acse.Aare()
        self.tx_buf = link.tx_buf
        self.tx_start = 0
        self.tx_end = 0
        self.log = None
        self.requests = 0
        self._reply_start = 0
        self._now = 0  # the time of the event being served (ticks, ms)
        # Failed authentications (app.auth_guard): the meter's guard counts
        # per role (client SAP), ours per connection or line.
        if meter.auth_guard is None:
            meter.auth_guard = _ag.AuthGuard(len(meter.roles))
        self.line_guard = _ag.LineGuard(meter.auth_guard)
        # failed authentications on this connection or line (line_guard's
        # count, copied by _auth_failed: a plain attribute, as a property in
        # the class would make MicroPython look every attribute store of a
        # Channel up in the class first)
        self.auth_failures = 0
        # Suite 0 (AES-GCM) for a meter with keys: the global-key cipher is
        # shared by the meter's channels, the dedicated-key one is ours, for
        # the associations that bring a dedicated key.
        self.suite = None
        self._signed_rq = None  # security.signing.Signed, made for the first general-signing
        self._last_tid = None  # transaction-id of the last signed request accepted
        self._suite01 = None  # suites 0 and 1 (AES-GCM-128)
        self._suite2 = None  # suite 2 (AES-GCM-256), made for its first association
        if meter.keys is not None:
            global _s0
            if _s0 is None:
                from dlms_micro.security import suite0 as _s0

                if _s0.HEADER_ROOM != _HEADER_ROOM or _s0.TRAILER != _TRAILER:
                    raise ImportError("server: suite0's header room or trailer changed")
            from dlms_micro.security import gcm

            if getattr(meter, "_gcm", None) is None:
                meter._gcm = _shared_gcm(meter.keys, gcm)
            # (the dedicated-key Gcm made only for an association that brings one)
            self.suite = self._suite01 = _s0.Suite0(meter.keys, meter._gcm, new_ded=gcm.new)
            self.assoc.security = self.suite
            self._scratch = bytearray(_s0.HEADER_ROOM + 32 + _s0.TRAILER)
            if meter.hls_verify is None:
                meter.hls_verify = _hls_verify

    def _error(self, msg):
        if self.log is not None:
            self.log(msg)

    def set_log(self, fn):
        # One log function for the channel and everything under it.
        self.log = fn
        self.link.log = fn
        self.services.log = fn
        self.gbt.log = fn

    def feed(self, data, start, end, now):
        return self.link.feed(data, start, end, now)

    def close(self):
        # The transport went away: the association ends with it.
        self._release()

    def next_event(self, now):
        link = self.link
        self._now = now
        if self._gbt_push:
            # The block sent last (EV_SEND) is out: the next one of the window.
            self._push_gbt_block()
        while True:
            ev = link.next_event(now)
            if ev == EV_SEND:
                self.tx_buf = link.tx_buf
                self.tx_start = link.tx_start
                self.tx_end = link.tx_end
                return EV_SEND
            if ev == EV_APDU:
                self._reply_start = link.TX_APDU_START
                # (_apdu's own work is for a pending HLS association only)
                end = self._apdu() if self.assoc.status == _PENDING else self._serve_apdu()
                link.send_apdu(end, self._reply_start)
            elif ev == EV_CONNECTED or ev == EV_DISCONNECTED:
                self._release()
            else:
                return ev  # EV_NONE, or the wrapper's EV_CLOSE

    def exchange(self, data, n, now):
        # data[0:n] as one whole wrapper message to an idle wrapper link,
        # served in one call: what feed() and the next_event() calls up to
        # the reply would do, in fewer steps (issue 16: a fleet's cost per
        # request). Returns EV_SEND, the reply in tx_buf[tx_start:tx_end]
        # (when self._gbt_push is then set, next_event() calls hand out the
        # rest of a GBT window, as after any EV_SEND); EV_NONE, served with
        # no reply; or -1 having done nothing, when it is not that case
        # (another link, bytes buffered, a partial or several messages, a
        # header the link would refuse or ignore): feed() and next_event()
        # then take it.
        # (few locals, so that MicroPython keeps the call's frame on the C
        # stack: a frame of more than 11 words is taken from the heap, which
        # cost more than the steps this saves)
        link = self.link
        if (
            self.kind != _LINK_WRAPPER
            or n < 9
            or link._wpos
            or link._skip
            or link._await_reply
            or link._send
            or link._close
            or self._gbt_push
            or data[0]
            or data[1] != 1
            or ((data[6] << 8) | data[7]) != n - 8
            or n - 8 > link.max_apdu
            or ((data[4] << 8) | data[5]) not in link.wports
        ):
            return -1
        self._now = now
        if n == len(data):
            link.rx[0:n] = data
        else:
            link.rx[0:n] = memoryview(data)[0:n]
        link.apdus_ok += 1
        link.source_wport = (data[2] << 8) | data[3]
        link.dest_wport = (data[4] << 8) | data[5]
        link.apdu_buf = link.rx
        link.apdu_start = 8
        link.apdu_end = n
        link._await_reply = True
        self._reply_start = link.TX_APDU_START
        link.send_apdu(self._apdu() if self.assoc.status == _PENDING else self._serve_apdu(), self._reply_start)
        link._await_reply = False
        if not link._send:
            return EV_NONE
        link._send = False
        self.tx_buf = link.tx_buf
        self.tx_start = link.tx_start
        self.tx_end = link.tx_end
        return EV_SEND

    def _release(self):
        if self.assoc.status != asn.NON_ASSOCIATED:
            self._error("association released by the link")
        self._end_association()

    def _end_association(self):
        self._last_tid = None
        self.services.abort_blocks()
        self.gbt.reset()
        self._gbt_push = False
        self.assoc.reset()
        if self.suite is not None:
            self.suite.reset()
            self.assoc.security = self.suite
            self.meter.keys.sync_rx()

    def _saps(self):
        # The client and server SAPs of the request: the HDLC addresses or
        # the wrapper's wPorts.
        a = self.assoc
        link = self.link
        if self.kind == _LINK_HDLC:
            a.link_kind = _LINK_HDLC
            a.client_address = link.client_address or 0
            a.server_address = link.logical
        else:
            a.link_kind = _LINK_WRAPPER
            a.client_address = link.source_wport
            a.server_address = link.dest_wport

    def _apdu(self):
        # One APDU served; an HLS association pending before it and dropped
        # by it (not by a release) failed its f(StoC): counted as a failed
        # authentication, as a wrong LLS password is.
        a = self.assoc
        pending = a.status == asn.ASSOCIATION_PENDING
        role = a.role
        q = self._serve_apdu()
        if pending:
            link = self.link
            if a.status == asn.ASSOCIATED:
                self._auth_ok(role)
            elif a.status == asn.NON_ASSOCIATED and link.apdu_buf[link.apdu_start] != acse.RLRQ:
                self._auth_failed(role, a.client_sap, "HLS f(StoC) did not verify")
        return q

    def _auth_ok(self, role):
        self.meter.auth_guard.succeeded(role)
        self.line_guard.succeeded()

    def _auth_failed(self, role, sap, what):
        g = self.meter.auth_guard
        now = self._now
        sap_locked = g.failed(role, now)
        line_locked = self.line_guard.failed(now)
        self.auth_failures = self.line_guard.failures
        self._error(
            "failed authentication from client SAP %d: %s (%d for this SAP, %d on this line)"
            % (sap, what, g.failures[role], self.line_guard.failures)
        )
        if sap_locked:
            self._error("client SAP %d locked out for %d s" % (sap, g.locked(role, now) // 1000))
        if line_locked:
            self._error("this line refuses associations for %d s" % (self.line_guard.locked(now) // 1000))

    def _locked_out(self, i):
        # ms left of a lock-out of role i or of this line, 0 when none
        left = self.meter.auth_guard.locked(i, self._now)
        line = self.line_guard.locked(self._now)
        return left if left > line else line

    def _serve_apdu(self):
        link = self.link
        buf = link.apdu_buf
        s = link.apdu_start
        e = link.apdu_end
        out = link.tx_apdu
        o = link.TX_APDU_START
        lim = link.tx_apdu_end
        self.requests += 1
        try:
            if e - s == 13 and buf[s] == 0xC0 and buf[s + 1] == 1 and not buf[s + 12] and self._short_way(0):
                # The commonest request, served in fewer steps (Services.
                # get_normal); -2: not its plain case, served below.
                q = self.services.get_normal(buf, s, out, o, lim)
                if q != -2:
                    self._gbt_push = False
                    return q
            t = buf[s] if e > s else -1
            if (t == 0xDB or t == 0xC8 or t == 0xDC or t == 0xD0) and self._short_way(1):
                # A ciphered GET (glo-, ded-) or general-glo/-ded-ciphering
                # APDU where _request would do nothing but _ciphered: the
                # same answer in fewer steps (issue 16).
                self._gbt_push = False
                return self._ciphered(buf, s, e, out, o, lim)
            if e > s and buf[s] == acse.AARQ:
                return self._aarq(buf, s, e, out, o, lim)
            if e > s and buf[s] == acse.RLRQ:
                return self._rlrq(buf, s, e, out, o, lim)
            if self.kind == _LINK_WRAPPER and link.source_wport != self.assoc.client_address and self.assoc.status:
                # A second client on the same stream: it has no association.
                self._error("request from a wPort without an association")
                return self.services._exception(out, o, 1, 1)
            self._gbt_push = False
            if e > s and buf[s] == _gbt.GENERAL_BLOCK_TRANSFER:
                return self._gbt_apdu(buf, s, e, out, o, lim)
            self._gbt_abandon()
            return self._request(buf, s, e, out, o, lim, False)
        except DlmsError as ex:
            self._error("request refused: %s" % ex)
        except Exception as ex:  # a bug must not take the meter off the line
            self._error("internal error serving a request: %r" % (ex,))
        self.services.abort_blocks()
        self.services.gbt = _xd.GBT_OFF
        self.gbt.reset()
        return self.services._exception(out, o, 2, 3)

    def _short_way(self, ciphered):
        # True when a request would go the short way through _serve_apdu and
        # _request with nothing else done: an open association on this
        # wPort, no GBT transfer to abandon, the response as one APDU (not
        # in GBT blocks). ciphered=0, a plain GET-Request-Normal (to
        # Services.handle): no ciphering in force (whose security policy may
        # refuse plain requests); ciphered=1, a glo-/ded-/general-ciphering
        # APDU (to _ciphered): ciphering in force, suite 0 (suites 1 and 2
        # go through security.gcipher's hook first).
        a = self.assoc
        g = self.gbt
        c = a.conformance
        su = self.suite
        return (
            a.status == _ASSOCIATED
            and ((su is not None and su.enabled and not su.suite_id) if ciphered else (su is None or not su.enabled))
            and not (g.receiving or g.sending or g.client_block or g.rx_n)
            and not (c & _CONF_GBT and not c & _CONF_BT_GET)
            and (self.kind != _LINK_WRAPPER or self.link.source_wport == a.client_address)
        )

    def _request(self, buf, s, e, out, o, lim, in_gbt):
        # One whole xDLMS request (in_gbt: collected from GBT blocks): serve
        # it, the response as one APDU or in GBT blocks.
        a = self.assoc
        sv = self.services
        if a.status == asn.ASSOCIATED and self.suite is not None and e > s and (buf[s] == 0xDD or self.suite.suite_id):
            # general-ciphering, and the signature bits of the security policy (suites 1/2): security.gcipher
            from dlms_micro.security import gcipher

            q = gcipher.hook(self, buf, s, e, out, o, lim, in_gbt)
            if q is not None:
                return q
        if e > s and buf[s] == _GENERAL_SIGNING and a.status == asn.ASSOCIATED:
            return self._signed(buf, s, e, out, o, lim)
        ciphered = self.suite is not None and e > s and _s0.request_form(buf[s])
        mode = _xd.GBT_OFF
        if a.conformance & _CONF_GBT and (in_gbt or not a.conformance & _CONF_BT_GET):
            # A ciphered response is protected whole before it is split.
            mode = _xd.GBT_WHOLE if ciphered else _xd.GBT_STREAM
        sv.gbt = mode
        if ciphered:
            q = self._ciphered(buf, s, e, out, o, lim)
        elif a.status and self._plain_refused():
            self._error("unprotected request where the security policy wants protection")
            q = sv._exception(out, o, 1, 1)
        else:
            q = sv.handle(buf, s, e, out, o, lim)
        sv.gbt = _xd.GBT_OFF
        if q < 0 or not mode:
            return q
        start = self._reply_start
        if not in_gbt and not sv.gbt_pending() and q - start <= a.client_max_pdu:
            return q  # short enough to go whole
        # Blocks of the client's max PDU, at most what the link carries.
        size = a.client_max_pdu
        if size > lim - o:
            size = lim - o
        g = self.gbt
        g.start(out, start, q, sv if sv.gbt_pending() else None, size - _gbt.HEADER, self.kind == _LINK_WRAPPER)
        return self._gbt_block(out, o)

    # ------------------------------------------------- general-signing

    def _signed(self, buf, s, e, out, o, lim):
        # A general-signing request (suites 1 and 2, security.signing): the
        # client's signature checked with the key the meter holds for the
        # originator system title (the association's client), its
        # transaction-id above the last one accepted in the association
        # (a replayed signed APDU is refused), then its content served as
        # any request (ciphered or plain) and the response signed with the
        # meter's key in the same form. Refusals: exception-response D8 01 05
        # and a log line.
        from dlms_micro.security import signing as _sg

        a = self.assoc
        meter = self.meter
        role = meter.roles[a.role]
        sgm = meter.signing
        if isinstance(sgm, dict):
            sgm = sgm.get(role.security_suite)
        sv = self.services
        try:
            if sgm is None or meter.keys is None or role.security_suite != sgm.suite:
                raise _sg.SigningError("general-signing in an association without suite 1 or 2 signing keys")
            rq = self._signed_rq
            if rq is None:
                rq = self._signed_rq = _sg.Signed()
            rq.parse(buf, s, e)
            orig = rq.field(1)
            ct = a.client_system_title
            if ct and orig != ct:
                raise _sg.SigningError("originator system title is not the association's client's")
            pub = sgm.client_key(orig)
            if pub is None:
                raise _sg.SigningError("no public signing key for the originator system title")
            if not rq.verify(sgm.curve, pub):
                raise _sg.SigningError("signature does not verify")
            tid = rq.field(0)
            last = self._last_tid
            if last is not None and int.from_bytes(tid, "big") <= int.from_bytes(last, "big"):
                raise _sg.SigningError("transaction-id not above the last one accepted: a replay")
        except DlmsError as ex:
            self._error("signed request refused: %s" % ex)
            return sv._exception(out, o, 1, 5)
        self._last_tid = tid
        c = rq.off[5]
        ce = c + rq.length[5]
        p = o + 48  # room for the general-signing header of the response
        end = lim - 3 - 2 * sgm.curve.size
        if ce <= c:
            return sv._exception(out, o, 2, 3)
        if self.suite is not None and _s0.request_form(buf[c]):
            q = self._ciphered(buf, c, ce, out, p, end)
            rs = self._reply_start
        elif self.suite is not None and buf[c] == 0xDD:  # general-ciphering inside: security.gcipher
            from dlms_micro.security import gcipher

            q = gcipher.serve(self, buf, c, ce, out, p, end)
            rs = self._reply_start
        elif self._plain_refused():
            self._error("signed unprotected request where the security policy wants protection")
            return sv._exception(out, o, 1, 1)
        else:
            q = sv.handle(buf, c, ce, out, p, end)
            rs = p
        if q < 0:
            return -1
        content = bytes(out[rs:q])
        self._reply_start = o
        try:
            return _sg.build(out, o, lim, sgm.key_pair, tid, meter.keys.system_title, orig, b"", b"", content)
        except DlmsError as ex:
            self._error("signed response not sent: %s" % ex)
            return sv._exception(out, o, 1, 1)

    # ---------------------------------------------- general block transfer

    def _gbt_abandon(self):
        # A new request ends any GBT transfer under way.
        g = self.gbt
        if g.receiving or (g.sending and not g.finished):
            self._error("gbt: new request while a GBT transfer is under way: transfer abandoned")
            self.services.abort_blocks()
        g.reset()

    def _gbt_block(self, out, o):
        # The next block of the GBT response at out[o:]; a refusal when the
        # response failed midway.
        q = self.gbt.block(out, o)
        if q < 0:
            self.services.abort_blocks()
            return self.services._exception(out, o, 1, 1)
        self._reply_start = o
        self._gbt_push = self.gbt.streams
        return q

    def _push_gbt_block(self):
        # The next block of a window, sent without a request (wrapper).
        self._gbt_push = False
        link = self.link
        o = link.TX_APDU_START
        q = self._gbt_block(link.tx_apdu, o)
        # The wrapper sends only replies; a streamed block is one more
        # reply to the same request.
        link.send_more(q, o)

    def _gbt_apdu(self, buf, s, e, out, o, lim):
        # A general-block-transfer APDU from the client: a block of a request,
        # or the acknowledgement of blocks of our response.
        a = self.assoc
        g = self.gbt
        sv = self.services
        if a.status == asn.NON_ASSOCIATED or not a.conformance & _CONF_GBT:
            self._error("gbt: general-block-transfer APDU in an association that did not negotiate it")
            return sv._exception(out, o, 1, 2)
        if not g.parse(buf, s, e):
            self._error("gbt: malformed general-block-transfer APDU")
            self._gbt_abandon()
            return sv._exception(out, o, 2, 3)
        empty = g.data_end == g.data_start
        if g.sending and empty:
            r = g.on_ack(g.bn, g.bna, g.bc)
            if r < 0:
                sv.abort_blocks()
                return sv._exception(out, o, 1, 1)
            if r == 0:
                return -1
            return self._gbt_block(out, o)
        if g.sending:
            self._gbt_abandon()  # a new request in GBT
        if not g.receiving and (empty or g.bn != 1):
            self._error("gbt: block %d with no GBT transfer under way" % g.bn)
            return sv._exception(out, o, 1, 1)
        res = g.take(buf)
        if res == _gbt.TAKEN_SILENT:
            return -1
        if res == _gbt.TAKEN_ACK:
            return g.ack(out, o)
        if res == _gbt.TAKEN_TOO_LONG:
            return sv._exception(out, o, 1, 4)
        sv.abort_blocks()
        return self._request(g.buf, 0, g.rx_len, out, o, lim, True)

    # ------------------------------------------------------------- ACSE

    def _aarq(self, buf, s, e, out, o, lim):
        a = self.assoc
        meter = self.meter
        aarq = self.aarq
        aare = self.aare
        aare.reset()
        try:
            aarq.parse(buf, s, e)
        except DlmsError as ex:
            self._error("AARQ malformed: %s" % ex)
            aare.result = acse.REJECTED_PERMANENT
            aare.diagnostic = acse.DIAG_NO_REASON
            aare.initiate.kind = acse.UI_ERROR
            aare.initiate.error = acse.INIT_OTHER
            return aare.encode(out, o, lim)
        is_open = a.status != asn.NON_ASSOCIATED
        if not is_open:
            self._saps()
        sap = a.client_address
        i = meter.role_for(sap)
        role = meter.roles[i] if i >= 0 else None
        suite = self.suite
        if not is_open and suite is not None:
            # the suite object of the association's security suite
            suite = self._suite_for(role)
            self.suite = suite if suite is not None else self._suite01
            a.security = self.suite
        ciphered = role is not None and role.ciphered and suite is not None
        context = acse.CONTEXT_LN_CIPHERED if ciphered else acse.CONTEXT_LN
        secure_ok = True
        if not is_open and suite is not None:
            # A new association: keys changed under the last one apply now.
            meter.keys.activate_pending()
            suite.reset()
            suite.suite_id = role.security_suite if role is not None else 0
            suite.role_policy = role.policy if role is not None else 0
            if ciphered and aarq.context != context:
                # An AARQ that does not propose the ciphered context to a
                # ciphered association: the ACSE refuses it with application-
                # context-name-not-supported (decide(); IEC 62056-5-3 COSEM-
                # OPEN, ISO/IEC 8650-1), before any security check of a context
                # it does not use (issue 18: without a calling-AP-title it got
                # deciphering-error).
                pass
            elif ciphered or (role is not None and role.mechanism >= acse.MECH_HLS_GMAC):
                secure_ok = self._secure_aarq(aarq, role)
                suite.enabled = 1 if ciphered else 0
        outcome = self.outcome
        conformance = SERVER_CONFORMANCE
        if role is not None and role.conformance:
            conformance &= role.conformance
        acse.decide(
            outcome,
            aarq,
            context,
            role.mechanism if role is not None else acse.MECH_NONE,
            role.secret if role is not None else b"",
            conformance,
            self.max_pdu,
        )
        aare.from_outcome(outcome, context, self.max_pdu)
        accepted = False
        locked = self._locked_out(i) if role is not None and not is_open else 0
        if role is None and outcome.accepted():
            # No association is configured for this client SAP.
            self._error("AARQ from client SAP %d: no association for it" % sap)
            aare.result = acse.REJECTED_PERMANENT
            aare.diagnostic = acse.DIAG_NO_REASON
        elif is_open:
            # A second AARQ does not replace the association that is open.
            self._error("AARQ while an association is open: refused")
            aare.result = acse.REJECTED_PERMANENT
            aare.diagnostic = acse.DIAG_NO_REASON
            if outcome.error < 0:
                aare.initiate.kind = acse.UI_ERROR
                aare.initiate.error = acse.INIT_OTHER
            return aare.encode(out, o, lim)
        elif locked:
            # Locked out after failed authentications (app.auth_guard): the
            # standard AARE rejection, whatever the AARQ carries (its
            # password is not looked at). rejected-transient: try later.
            self._error("AARQ from client SAP %d refused: locked out for %d s more after failed authentications"
                        % (sap, (locked + 999) // 1000))
            aare.result = acse.REJECTED_TRANSIENT
            aare.source = acse.SOURCE_USER
            aare.diagnostic = acse.DIAG_AUTHENTICATION_FAILURE
        elif not secure_ok:
            self._refuse_aarq_security(aare)
            return aare.encode(out, o, lim)
        elif not outcome.accepted():
            self._error(
                "AARQ from client SAP %d rejected: %s (diagnostic %d), %s"
                % (sap, acse.diagnostic_name(outcome.diagnostic), outcome.diagnostic,
                   acse.initiate_error_name(outcome.error))
            )
            if outcome.diagnostic == acse.DIAG_AUTHENTICATION_FAILURE:
                self._auth_failed(i, sap, "wrong or missing authentication value")
        elif outcome.hls and not self._start_hls(aarq, aare, role):
            aare.result = acse.REJECTED_PERMANENT
            aare.diagnostic = acse.DIAG_MECHANISM_NOT_RECOGNISED
        else:
            accepted = True
            if not outcome.hls:
                self._auth_ok(i)
        if accepted:
            self.services.abort_blocks()
            a.status = asn.ASSOCIATION_PENDING if outcome.hls else asn.ASSOCIATED
            a.role = i
            a.client_sap = sap
            a.server_sap = a.server_address
            a.context = context
            a.mechanism = role.mechanism
            a.conformance = outcome.conformance
            a.client_max_pdu = outcome.client_max_pdu
            a.server_max_pdu = self.max_pdu
            a.dlms_version = outcome.dlms_version
            a.quality_of_service = aarq.initiate.qos if aarq.initiate.qos_present else -1
            if suite is not None:
                # SET/ACTION counters are stored at once unless HLS keeps
                # the association pending first
                suite.durable = 0 if outcome.hls else 1
        if ciphered:
            self._secure_aare(aare, aarq.ciphered())
        elif suite is not None and role is not None and role.mechanism > acse.MECH_HLS_GMAC:
            self._secure_aare(aare, False)  # HLS 6/7: the server system title
        if not outcome.respond:
            return -1
        return aare.encode(out, o, lim)

    def _suite_for(self, role):
        # Suites 0 and 1 cipher with AES-GCM-128 and the meter's KeyStore
        # (the suite id is set per association); suite 2 with AES-GCM-256 and
        # the 32-byte keys of meter.suite2_keys (security.suite12.Suite2Keys).
        # None: suite 2 without such keys.
        if role is None or role.security_suite != 2:
            return self._suite01
        if self._suite2 is None:
            keys2 = self.meter.suite2_keys
            if keys2 is None:
                self._error("AARQ for a security suite 2 association: this meter has no suite 2 keys")
                return None
            from dlms_micro.security import aes256

            if getattr(self.meter, "_gcm256", None) is None:
                self.meter._gcm256 = aes256.new_gcm()
            self._suite2 = _s0.Suite0(keys2, self.meter._gcm256, key_len=32, new_ded=aes256.new_gcm)
        self._suite2.keys.activate()  # keys agreed under the last association apply now
        return self._suite2

    def _start_hls(self, aarq, aare, role):
        # HLS pass 2: keep the client's challenge, answer ours (StoC).
        a = self.assoc
        rnd = self.meter.random_bytes
        mech = role.mechanism
        if mech < acse.MECH_HLS_GMAC or mech > acse.MECH_HLS_ECDSA or self.suite is None or rnd is None:
            self._error("AARQ for an HLS mechanism this meter cannot serve")
            return False
        if mech == acse.MECH_HLS_ECDSA and not self.meter.signing:
            self._error("AARQ for HLS-ECDSA: this meter has no signing key")
            return False
        n = aarq.auth_len
        for k in range(n):
            a.ctos[k] = aarq.buf[aarq.auth_value + k]
        a.ctos_len = n
        c = rnd(16 if mech == acse.MECH_HLS_GMAC else 32)
        m = len(c)
        if m < acse.MIN_CHALLENGE or m > acse.MAX_CHALLENGE:
            self._error("the port's random source gave a challenge of %d bytes" % m)
            return False
        for k in range(m):
            a.stoc[k] = c[k]
        a.stoc_len = m
        aare.mechanism = role.mechanism
        aare.stoc = a.stoc
        aare.stoc_start = 0
        aare.stoc_len = m
        return True

    def _rlrq(self, buf, s, e, out, o, lim):
        r = self.rlrq
        try:
            r.parse(buf, s, e)
        except DlmsError as ex:
            self._error("RLRQ malformed: %s" % ex)
        initiate = None
        suite = self.suite
        if (self.assoc.status == asn.ASSOCIATED and suite is not None and suite.enabled and r.ui >= 0
                and _s0.request_form(r.ui_tag)):
            # A protected release (Green Book, COSEM-RELEASE with ciphering):
            # the RLRQ's protected InitiateRequest is checked as an AARQ's
            # (keys, suite, counter), and the RLRE carries the InitiateResponse
            # protected in the same form. One that fails its checks releases
            # nothing: RLRE not-finished, the association goes on.
            try:
                suite.unprotect(buf, r.ui, r.ui + r.ui_len)
                r.initiate.parse(buf, suite.start, suite.end)
                initiate = self._release_response()
            except DlmsError as ex:
                self._error("protected RLRQ refused, the association goes on: %s" % ex)
                return acse.build_rlre(out, o, lim, acse.RELEASE_NOT_FINISHED)
        self._end_association()
        return acse.build_rlre(out, o, lim, acse.RELEASE_NORMAL, initiate)

    def _release_response(self):
        # The InitiateResponse of the association, protected as the RLRQ's
        # InitiateRequest was (an InitiateResponseOut for build_rlre).
        a = self.assoc
        ini = self.aare.initiate
        ini.clear()
        ini.kind = acse.UI_INITIATE_RESPONSE
        ini.dlms_version = a.dlms_version
        ini.conformance = a.conformance
        ini.max_pdu = self.max_pdu
        b = self._scratch
        room = _s0.HEADER_ROOM
        q = ini.put(b, room - 4)  # BE len 04 len, then the InitiateResponse
        q = self.suite.protect(b, room, q, len(b))
        ini.kind = acse.UI_CIPHERED
        ini.ciphered = b
        ini.ciphered_start = self.suite.out_start
        ini.ciphered_len = q - self.suite.out_start
        return ini

    # ------------------------------------------------------------ suite 0

    def _plain_refused(self):
        # A plain xDLMS request in a ciphered association whose security
        # policy requires protected requests.
        return (
            self.suite is not None
            and self.suite.enabled
            and _s0.request_level(self.meter.keys.policy | self.suite.role_policy)
            and self.assoc.status == asn.ASSOCIATED
        )

    def _ciphered(self, buf, s, e, out, o, lim):
        # A protected xDLMS request: check and decipher it in place, serve the
        # plaintext, protect the response in the request's form.
        a = self.assoc
        suite = self.suite
        if a.status == asn.NON_ASSOCIATED:
            self._error("ciphered request outside an association")
            return self.services._exception(out, o, 1, 1)
        try:
            suite.unprotect(buf, s, e)
        except _s0.SecurityError as ex:
            self._error("ciphered request refused: %s" % ex)
            return _s0.exception_response(out, o, ex)
        p = o + _HEADER_ROOM
        sv = self.services
        # The response, once ciphered, must still fit the client's max PDU
        # (in GBT: the buffer; the blocks are cut to the client's PDU).
        end = lim - _TRAILER
        gbt = sv.gbt
        if not gbt and o + a.client_max_pdu - _TRAILER < end:
            end = o + a.client_max_pdu - _TRAILER
        s = suite.start
        se = suite.end
        q = -2
        if se - s == 13 and buf[s] == 0xC0 and buf[s + 1] == 1 and not buf[s + 12] and not gbt and a.status == _ASSOCIATED:
            q = sv.get_normal(buf, s, out, p, end)  # the commonest request, as in _serve_apdu
        if q == -2:
            q = sv.handle(buf, s, se, out, p, end)
        if q < 0:
            return -1
        q = suite.protect(out, p, q, lim)
        self._reply_start = suite.out_start
        return q

    def _secure_aarq(self, aarq, role):
        # The ciphered context's part of an AARQ: the client system title,
        # the protected InitiateRequest (deciphered into aarq.initiate) and a
        # dedicated key. Returns False when it must be refused.
        suite = self.suite
        suite.enabled = 1
        try:
            if aarq.calling_ap_title < 0:
                raise _s0.SecurityError(_s0.E_SYSTEM_TITLE, "AARQ without calling-AP-title")
            suite.set_client_title(aarq.buf, aarq.calling_ap_title, aarq.calling_ap_title_len)
            if aarq.ciphered():
                suite.unprotect(aarq.buf, aarq.ui, aarq.ui + aarq.ui_len)
                aarq.initiate.parse(aarq.buf, suite.start, suite.end)
            elif role.ciphered and _s0.request_level(self.meter.keys.policy | role.policy):
                # A plain InitiateRequest in the ciphered context where the
                # security policy requires protected requests (Green Book,
                # security policy of the ciphered context; the DLMS UA test
                # plan's security suite 0 group): refused as any InitiateRequest that fails its
                # security checks, with the unciphered AARE (rejected-
                # permanent, confirmed-service-error deciphering-error).
                # Issue 18: it was accepted and answered unprotected.
                raise _s0.SecurityError(
                    _s0.E_POLICY,
                    "plain InitiateRequest in the ciphered context; the security policy 0x%02X requires "
                    "protected requests" % (self.meter.keys.policy | role.policy),
                )
            ini = aarq.initiate
            if ini.valid and ini.dedicated_key >= 0:
                suite.set_dedicated_key(aarq.buf, ini.dedicated_key, ini.dedicated_key_len)
        except DlmsError as ex:
            self._error("AARQ security refused: %s" % ex)
            return False
        self.assoc.client_system_title = bytes(suite.client_title)
        return True

    def _secure_aare(self, aare, ciphered_request):
        # The server system title, and the InitiateResponse ciphered in the
        # form the request used.
        keys = self.meter.keys
        aare.ap_title = keys.system_title
        aare.ap_title_start = 0
        aare.ap_title_len = len(keys.system_title)
        if not ciphered_request:
            return
        ini = aare.initiate
        b = self._scratch
        room = _s0.HEADER_ROOM
        q = ini.put(b, room - 4)  # BE len 04 len, then the InitiateResponse
        q = self.suite.protect(b, room, q, len(b))
        ini.kind = acse.UI_CIPHERED
        ini.ciphered = b
        ini.ciphered_start = self.suite.out_start
        ini.ciphered_len = q - self.suite.out_start

    def _refuse_aarq_security(self, aare):
        aare.result = acse.REJECTED_PERMANENT
        aare.source = acse.SOURCE_USER
        aare.diagnostic = acse.DIAG_NO_REASON
        ini = aare.initiate
        ini.kind = acse.UI_CIPHERED
        ini.ciphered = _s0.AARE_DECIPHERING_ERROR
        ini.ciphered_start = 0
        ini.ciphered_len = 4


def _hls_verify(ctx, buf, start, end):
    # meter.hls_verify for HLS-GMAC (Association LN reply_to_HLS_
    # authentication): check the client's f(StoC), answer f(CtoS).
    a = ctx.assoc
    suite = a.security
    if a.mechanism != acse.MECH_HLS_GMAC:
        return _hls_verify_12(ctx, buf, start, end)
    try:
        suite.hls_verify(buf, start, end, a.stoc, 0, a.stoc_len)
        out = bytearray(17)
        suite.hls_answer(a.ctos, 0, a.ctos_len, out, 0)
    except DlmsError as ex:
        log = ctx.meter.log
        if log is not None:
            log("HLS reply refused: %s" % ex)
        return None
    return bytes(out)


def _hls_verify_12(ctx, buf, start, end):
    # HLS-SHA256 (6) and HLS-ECDSA (7): security.suite12 checks f(StoC)
    # and makes f(CtoS); loaded only for an association that uses them.
    from dlms_micro.security import suite12

    a = ctx.assoc
    meter = ctx.meter
    role = meter.roles[a.role]
    signing = meter.signing
    if isinstance(signing, dict):  # one Signing per suite
        signing = signing.get(role.security_suite)
    try:
        return suite12.hls_reply(
            a.mechanism, bytes(buf[start:end]), role.hls_secret or role.secret, signing, a.client_system_title,
            meter.keys.system_title, bytes(a.stoc[0 : a.stoc_len]), bytes(a.ctos[0 : a.ctos_len]),
            role.security_suite,
        )
    except Exception as ex:  # HlsError, EccError: refused, the reason logged
        log = meter.log
        if log is not None:
            log("HLS reply refused: %s" % ex)
    return None
