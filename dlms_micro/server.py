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

from dlms_micro.app import acse
from dlms_micro.app import association as asn
from dlms_micro.app.xdlms import Services
from dlms_micro.errors import DlmsError
from dlms_micro.link import hdlc

EV_NONE = 0
EV_SEND = 1
EV_CLOSE = 5

_LINK_HDLC = 1
_LINK_WRAPPER = 2

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
)


class Channel:
    def __init__(self, meter, link, max_pdu=None):
        self.meter = meter
        self.link = link
        self.kind = _LINK_HDLC if isinstance(link, hdlc.HdlcServer) else _LINK_WRAPPER
        cap = link.tx_apdu_end - link.TX_APDU_START
        if max_pdu is None or max_pdu > cap:
            max_pdu = cap
        self.max_pdu = max_pdu
        self.assoc = asn.AssociationState()
        self.services = Services(meter, self.assoc, max_pdu)
        self.aarq = acse.Aarq()
        self.rlrq = acse.Rlrq()
        self.outcome = acse.Outcome()
        self.aare = acse.Aare()
        self.tx_buf = link.tx_buf
        self.tx_start = 0
        self.tx_end = 0
        self.log = None
        self.requests = 0

    def _error(self, msg):
        if self.log is not None:
            self.log(msg)

    def set_log(self, fn):
        # One log function for the channel and everything under it.
        self.log = fn
        self.link.log = fn
        self.services.log = fn

    def feed(self, data, start, end, now):
        return self.link.feed(data, start, end, now)

    def close(self):
        # The transport went away: the association ends with it.
        self._release()

    def next_event(self, now):
        link = self.link
        while True:
            ev = link.next_event(now)
            if ev == EV_SEND:
                self.tx_buf = link.tx_buf
                self.tx_start = link.tx_start
                self.tx_end = link.tx_end
                return EV_SEND
            if ev == hdlc.EV_APDU:
                link.send_apdu(self._apdu())
            elif ev == hdlc.EV_CONNECTED or ev == hdlc.EV_DISCONNECTED:
                self._release()
            else:
                return ev  # EV_NONE, or the wrapper's EV_CLOSE

    def _release(self):
        if self.assoc.status != asn.NON_ASSOCIATED:
            self._error("association released by the link")
        self.services.abort_blocks()
        self.assoc.reset()

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
        link = self.link
        buf = link.apdu_buf
        s = link.apdu_start
        e = link.apdu_end
        out = link.tx_apdu
        o = link.TX_APDU_START
        lim = link.tx_apdu_end
        self.requests += 1
        try:
            if e > s and buf[s] == acse.AARQ:
                return self._aarq(buf, s, e, out, o, lim)
            if e > s and buf[s] == acse.RLRQ:
                return self._rlrq(buf, s, e, out, o, lim)
            if self.kind == _LINK_WRAPPER and link.source_wport != self.assoc.client_address and self.assoc.status:
                # A second client on the same stream: it has no association.
                self._error("request from a wPort without an association")
                return self.services._exception(out, o, 1, 1)
            return self.services.handle(buf, s, e, out, o, lim)
        except DlmsError as ex:
            self._error("request refused: %s" % ex)
        except Exception as ex:  # a bug must not take the meter off the line
            self._error("internal error serving a request: %r" % (ex,))
        self.services.abort_blocks()
        return self.services._exception(out, o, 2, 3)

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
        self._saps()
        sap = a.client_address
        i = meter.role_for(sap)
        role = meter.roles[i] if i >= 0 else None
        outcome = self.outcome
        conformance = SERVER_CONFORMANCE
        if role is not None and role.conformance:
            conformance &= role.conformance
        acse.decide(
            outcome,
            aarq,
            acse.CONTEXT_LN,
            role.mechanism if role is not None else acse.MECH_NONE,
            role.secret if role is not None else b"",
            conformance,
            self.max_pdu,
        )
        aare.from_outcome(outcome, acse.CONTEXT_LN, self.max_pdu)
        if role is None and outcome.accepted():
            # No association is configured for this client SAP.
            self._error("AARQ from client SAP %d: no association for it" % sap)
            aare.result = acse.REJECTED_PERMANENT
            aare.diagnostic = acse.DIAG_NO_REASON
        elif a.status != asn.NON_ASSOCIATED and outcome.accepted():
            # A second AARQ does not replace the association that is open.
            self._error("AARQ while an association is open: refused")
            aare.result = acse.REJECTED_PERMANENT
            aare.diagnostic = acse.DIAG_NO_REASON
        elif not outcome.accepted():
            self._error(
                "AARQ from client SAP %d rejected: diagnostic %d, initiate error %d"
                % (sap, outcome.diagnostic, outcome.error)
            )
        elif outcome.hls:
            # HLS needs the security layer (server challenge, GMAC check).
            self._error("AARQ for HLS: not available on this meter yet")
            aare.result = acse.REJECTED_PERMANENT
            aare.diagnostic = acse.DIAG_MECHANISM_NOT_RECOGNISED
        else:
            self.services.abort_blocks()
            a.status = asn.ASSOCIATED
            a.role = i
            a.client_sap = sap
            a.server_sap = a.server_address
            a.context = acse.CONTEXT_LN
            a.mechanism = role.mechanism
            a.conformance = outcome.conformance
            a.client_max_pdu = outcome.client_max_pdu
            a.server_max_pdu = self.max_pdu
            a.dlms_version = outcome.dlms_version
            a.quality_of_service = aarq.initiate.qos if aarq.initiate.qos_present else -1
        if not outcome.respond:
            return -1
        return aare.encode(out, o, lim)

    def _rlrq(self, buf, s, e, out, o, lim):
        try:
            self.rlrq.parse(buf, s, e)
        except DlmsError as ex:
            self._error("RLRQ malformed: %s" % ex)
        self.services.abort_blocks()
        self.assoc.reset()
        return acse.build_rlre(out, o, lim, acse.RELEASE_NORMAL)
