# TCP/UDP wrapper, IEC 62056-47 / DLMS UA 1000-2 ch. 7: every APDU travels
# behind an 8-byte header: version (0x0001), source wPort, destination wPort,
# APDU length, each 16 bits big-endian.
#
# Same sans-IO shape as link.hdlc.HdlcServer, so one server loop drives both:
#   link.feed(data, start, end, now) -> bytes taken
#   link.next_event(now) -> EV_NONE | EV_SEND | EV_APDU | EV_CLOSE
#   on EV_APDU: request in link.apdu_buf[link.apdu_start:link.apdu_end];
#     reply into link.tx_apdu from link.TX_APDU_START, then send_apdu(end)
#   on EV_SEND: write link.tx_buf[link.tx_start:link.tx_end]
#   on EV_CLOSE: the stream cannot be trusted any more (wrong version): the
#     port closes the TCP connection. A UDP port calls reset() before each
#     datagram so that a bad datagram cannot affect the next.
# The request is handed over in place and the reply header is written in
# place in front of it: nothing is allocated per request.

from dlms_micro.link import copy_in

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


EV_NONE = const(0)
EV_SEND = const(1)
EV_APDU = const(2)
EV_CLOSE = const(5)

VERSION = const(1)
HEADER_LEN = const(8)
TX_APDU_START = 8  # not const(): also a class attribute


class WrapperServer:
    TX_APDU_START = TX_APDU_START

    def __init__(self, wports=(1,), max_apdu=1024):
        # wports: the server wPorts (logical devices) this meter answers.
        self.wports = wports
        self.max_apdu = max_apdu
        self.rx = bytearray(HEADER_LEN + max_apdu)
        self.tx_apdu = bytearray(HEADER_LEN + max_apdu)
        self.tx_apdu_end = HEADER_LEN + max_apdu  # the reply may not pass this
        self.tx_buf = self.tx_apdu
        self.tx_start = 0
        self.tx_end = 0
        self.apdu_buf = self.rx
        self.apdu_start = 0
        self.apdu_end = 0
        self.source_wport = 0  # the client's wPort of the last request
        self.dest_wport = 0  # the logical device it addressed
        self.log = None
        self.last_error = None
        self.apdus_ok = 0
        self.version_errors = 0
        self.oversized = 0
        self.ignored = 0
        self.reset()

    def reset(self):
        self._rpos = 0
        self._wpos = 0
        self._skip = 0
        self._await_reply = False
        self._send = False
        self._close = False

    def _error(self, msg):
        self.last_error = msg
        if self.log is not None:
            self.log(msg)

    def feed(self, data, start, end, now):
        rx = self.rx
        w = self._wpos
        if self._rpos == w and not self._await_reply:
            self._rpos = w = 0
        if start == 0 and end == len(data) and end <= len(rx) - w:
            rx[w : w + end] = data  # a whole buffer that fits (the usual case), without a call
            self._wpos = w + end
            return end
        n = copy_in(rx, w, data, start, end)
        self._wpos = w + n
        return n

    def next_event(self, now):
        if self._close:
            self._close = False
            return EV_CLOSE
        if self._send:
            self._send = False
            return EV_SEND
        self._await_reply = False  # an unanswered request needs no acknowledgement
        if self._rpos == self._wpos and not self._skip:
            self._rpos = self._wpos = 0  # nothing to parse (as _parse and _compact would leave it)
            return EV_NONE
        while self._parse():
            if self._close:
                self._close = False
                return EV_CLOSE
            if self._send:  # the link's own answer (an oversized APDU)
                self._send = False
                return EV_SEND
            if self._await_reply:
                return EV_APDU
        return EV_NONE

    def send_more(self, end, start=TX_APDU_START):
        # One more APDU for the request already answered (the streamed
        # blocks of a general-block-transfer window): sent as a reply is.
        self._await_reply = True
        self.send_apdu(end, start)

    def send_apdu(self, end, start=TX_APDU_START):
        # The reply is tx_apdu[start:end] (start >= TX_APDU_START); end < 0:
        # no reply.
        if not self._await_reply:
            return
        self._await_reply = False
        if end < 0:
            return
        if end > len(self.tx_apdu) or start < HEADER_LEN or end < start:
            self._error("wrapper: reply outside the transmit buffer, dropped")
            return
        b = self.tx_apdu
        n = end - start
        h = start - HEADER_LEN
        b[h] = 0
        b[h + 1] = VERSION
        b[h + 2] = self.dest_wport >> 8  # source: the logical device that answers
        b[h + 3] = self.dest_wport & 0xFF
        b[h + 4] = self.source_wport >> 8
        b[h + 5] = self.source_wport & 0xFF
        b[h + 6] = n >> 8
        b[h + 7] = n & 0xFF
        self.tx_buf = b
        self.tx_start = h
        self.tx_end = end
        self._send = True

    def _parse(self):
        # Take at most one wrapper frame; True when anything was consumed.
        buf = self.rx
        r = self._rpos
        w = self._wpos
        if self._skip:
            k = self._skip
            if k > w - r:
                k = w - r
            self._skip -= k
            self._rpos = r + k
            return k > 0
        if w - r < HEADER_LEN:
            self._compact(r, w)
            return False
        version = (buf[r] << 8) | buf[r + 1]
        if version != VERSION:
            self.version_errors += 1
            self._error("wrapper: wrong version, connection closed")
            self._rpos = self._wpos = 0
            self._close = True
            return True
        src = (buf[r + 2] << 8) | buf[r + 3]
        dst = (buf[r + 4] << 8) | buf[r + 5]
        n = (buf[r + 6] << 8) | buf[r + 7]
        if n > self.max_apdu:
            # Too long to take: discard exactly that many bytes, keep in
            # step, and answer at once (issue 18: the client used to wait for
            # its own timeout) with the xDLMS ExceptionResponse state-error
            # service-not-allowed, service-error pdu-too-long (Green Book
            # ExceptionResponse; the APDU cannot be read, so no service-
            # specific answer is possible). A message to a wPort that is not
            # ours is discarded silently, as any such message is.
            self.oversized += 1
            self._error("wrapper: APDU of %d bytes, longer than the %d this meter takes: discarded, "
                        "answered pdu-too-long" % (n, self.max_apdu))
            self._rpos = r + HEADER_LEN
            self._skip = n
            if dst in self.wports:
                self.source_wport = src
                self.dest_wport = dst
                b = self.tx_apdu
                b[HEADER_LEN] = 0xD8  # exception-response
                b[HEADER_LEN + 1] = 1  # service-not-allowed
                b[HEADER_LEN + 2] = 4  # pdu-too-long
                self._await_reply = True
                self.send_apdu(HEADER_LEN + 3)
            return True
        if w - r < HEADER_LEN + n:
            self._compact(r, w)
            return False
        self._rpos = r + HEADER_LEN + n
        if dst not in self.wports:
            self.ignored += 1
            self._error("wrapper: APDU for wPort %d, which is not this meter's (%s), ignored"
                        % (dst, ", ".join([str(p) for p in self.wports])))
            return True
        self.apdus_ok += 1
        self.source_wport = src
        self.dest_wport = dst
        self.apdu_buf = buf
        self.apdu_start = r + HEADER_LEN
        self.apdu_end = r + HEADER_LEN + n
        self._await_reply = True
        return True

    def _compact(self, r, w):
        # The buffer holds exactly one largest frame: a partial frame that
        # does not start at the front is moved there (only after pipelined
        # requests; a lone request always starts at 0).
        if r:
            buf = self.rx
            for i in range(w - r):
                buf[i] = buf[r + i]
            self._rpos = 0
            self._wpos = w - r


# PUSH. What the meter sends without a request (a DataNotification from a
# Push setup) goes out with the same header: source wPort the logical
# device, destination wPort the push client's (102, 0x66, by convention; the
# wPort gurux-dlms and most head-ends listen on for pushes).
PUSH_WPORT = const(102)


def push_frame(buf, start, end, source_wport, dest_wport=PUSH_WPORT):
    # Frame the APDU buf[start:end] in place: the 8-byte header goes at
    # buf[start-8:start]. Returns the frame's start (the frame is
    # buf[start-8:end]). Allocates nothing.
    h = start - HEADER_LEN
    n = end - start
    if h < 0 or n < 0 or n > 0xFFFF or end > len(buf):
        raise ValueError("wrapper push: no room for the header, or a bad APDU range")
    buf[h] = 0
    buf[h + 1] = VERSION
    buf[h + 2] = source_wport >> 8
    buf[h + 3] = source_wport & 0xFF
    buf[h + 4] = dest_wport >> 8
    buf[h + 5] = dest_wport & 0xFF
    buf[h + 6] = n >> 8
    buf[h + 7] = n & 0xFF
    return h
