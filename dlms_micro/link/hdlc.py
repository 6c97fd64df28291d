# HDLC server (secondary station) link, IEC 62056-46 / DLMS UA 1000-2 ch. 8:
# frame format type 3, normal response mode, no byte stuffing (the frame
# length field delimits frames).
#
# Sans-IO and allocation-free in the steady state. The port drives it:
#
#   n = link.feed(data, 0, len(data), now)     # bytes in (any chunking)
#   while True:
#       ev = link.next_event(now)
#       if ev == EV_NONE: break
#       if ev == EV_SEND:   write link.tx_buf[link.tx_start:link.tx_end]
#       elif ev == EV_APDU: the request is link.apdu_buf[link.apdu_start:
#                           link.apdu_end]; encode the reply into
#                           link.tx_apdu from link.TX_APDU_START and call
#                           link.send_apdu(end) (or send_apdu(-1): no reply)
#       elif ev == EV_CONNECTED / EV_DISCONNECTED: start / end associations
#
# `now` is a millisecond tick count wrapping at 2**30 (see ticks.py). A
# received single-frame APDU is handed over in place in the receive buffer and
# a reply that fits one frame is framed in place around the application's
# bytes; long replies are segmented in place too (the few bytes a frame header
# or trailer covers are saved and restored), so nothing is copied or
# allocated per request. Only segmented requests are copied (reassembly).

from dlms_micro import crc16
from dlms_micro.link import copy_in
from dlms_micro.ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Events returned by next_event()
EV_NONE = const(0)
EV_SEND = const(1)
EV_APDU = const(2)
EV_CONNECTED = const(3)
EV_DISCONNECTED = const(4)

# Link states
NDM = const(0)  # normal disconnected mode
NRM = const(1)  # normal response mode (connected)
FRMR_CONDITION = const(2)  # frame reject sent; only SNRM/DISC clear it

# Control field (ISO/IEC 13239), P/F bit cleared
_PF = const(0x10)
_SNRM = const(0x83)
_DISC = const(0x43)
_UA = const(0x63)
_DM = const(0x0F)
_FRMR = const(0x87)
_UI = const(0x03)
_RR = const(0x01)
_RNR = const(0x05)

# FRMR reason bits (third information octet)
FRMR_W = const(0x01)  # control field undefined or not implemented / sequence error
FRMR_X = const(0x02)  # information field not permitted with this command
FRMR_Y = const(0x04)  # information field longer than the negotiated maximum
FRMR_Z = const(0x08)  # invalid N(R)

_FLAG = const(0x7E)
# The reserved addresses (IEC 62056-46 6.4.2.2)
ALL_STATION_1 = const(0x7F)
ALL_STATION_2 = const(0x3FFF)

DEFAULT_MAX_INFO = const(128)
DEFAULT_WINDOW = const(1)
MAX_INFO_LIMIT = const(2030)
MAX_WINDOW = const(7)

# Room in tx_apdu before the application's APDU: the largest frame header
# (flag, format 2, client address 1, server address 4, control, HCS 2) = 11,
# then the LLC header E6 E7 00.
_HDR_ROOM = const(11)
TX_APDU_START = 14  # not const(): also a class attribute

_MIN_FRAME = const(7)
_TICKS_MASK = const(0x3FFFFFFF)  # dlms_micro.ticks: counters wrap at 2**30
_TICKS_HALF = const(0x20000000)  # format 2 + dest 1 + src 1 + control 1 + FCS 2


class HdlcServer:
    TX_APDU_START = TX_APDU_START

    def __init__(
        self,
        logical=1,
        physical=0x11,
        max_info_tx=DEFAULT_MAX_INFO,
        max_info_rx=DEFAULT_MAX_INFO,
        window_tx=DEFAULT_WINDOW,
        window_rx=DEFAULT_WINDOW,
        max_apdu=1024,
        inactivity_timeout=120000,
        inter_octet_timeout=25,
    ):
        # logical: the upper HDLC address (logical device) this link answers;
        # physical: the lower HDLC address (the meter on the bus).
        for v in (max_info_tx, max_info_rx):
            if v < 32 or v > MAX_INFO_LIMIT:
                raise ValueError("max information field must be 32..2030")
        for v in (window_tx, window_rx):
            if v < 1 or v > MAX_WINDOW:
                raise ValueError("window size must be 1..7")
        self.logical = logical
        self.physical = physical
        self.cfg_max_info_tx = max_info_tx
        self.cfg_max_info_rx = max_info_rx
        self.cfg_window_tx = window_tx
        self.cfg_window_rx = window_rx
        self.inactivity_timeout = inactivity_timeout
        self.inter_octet_timeout = inter_octet_timeout
        # Receive buffer: two of the largest frames the meter accepts, so a
        # frame plus the start of the next always fit.
        self.rx = bytearray(2 * (max_info_rx + 16))
        self._rpos = 0
        self._wpos = 0
        self._skip = 0  # bytes of an oversized frame still to discard
        self._skip_reply = 0  # 1: answer FRMR(Y) once the oversized frame is gone
        self._last_rx = 0
        self._last_frame = 0
        # Reassembly of segmented requests
        self.apdu_in = bytearray(max_apdu)
        self._reasm = 0
        self._reasm_drop = False
        # Transmit: the application's APDU lives in tx_apdu from TX_APDU_START
        self.tx_apdu = bytearray(TX_APDU_START + max_apdu + 3)
        self.tx_apdu_end = TX_APDU_START + max_apdu  # the reply may not pass this
        self._ctl = bytearray(40)  # control frames (UA, RR, DM, FRMR)
        self._ctl_len = 0
        self._save = bytearray(_HDR_ROOM + 3)
        self._restore_at = -1  # header start of the in-place frame last sent
        self._restore_end = 0
        self._seg_off = [0] * 8  # info start of the frame sent with N(S) = i
        self._out_next = -1
        self._out_first = -1  # where the reply being sent starts (its LLC header)
        self._out_end = 0
        self._out_ui = False
        self._win = 0
        # The frame being answered: its client address and our address as it
        # was used (1, 2 or 4 bytes).
        self._addr = bytearray(4)
        self._addr_len = 0
        self._peer = 0  # client address byte of the frame being answered
        self._client = 0  # client address byte of the connection
        # The connected client's address (the 7-bit value), or None. A plain
        # attribute kept by _reset_link and _snrm, not a property: a class
        # with a property makes MicroPython look every attribute store up in
        # the class first (~1,000 Cortex-M3 instructions each).
        self.client_address = None
        # What the application reads / writes
        self.apdu_buf = self.rx
        self.apdu_start = 0
        self.apdu_end = 0
        self.apdu_ui = False
        self.tx_buf = self._ctl
        self.tx_start = 0
        self.tx_end = 0
        # Diagnostics for the port's log; messages are constant strings.
        self.log = None
        self.last_error = None
        self.frames_ok = 0
        self.hcs_errors = 0
        self.fcs_errors = 0
        self.length_errors = 0
        self.garbage_bytes = 0
        self.ignored_frames = 0
        self.frmr_sent = 0
        self._last_tx_len = 0
        self._last_tx_fcs = -1
        self._reset_link(NDM)
        self._event = EV_NONE
        self._await_reply = False
        self._req_pf = 0

    # ------------------------------------------------------------------ API

    def feed(self, data, start, end, now):
        # Take bytes data[start:end]; returns how many were taken (fewer only
        # when the receive buffer is full: call next_event() and feed the
        # rest). Whole buffers are copied without allocating.
        rx = self.rx
        w = self._wpos
        r = self._rpos
        if r == w - 1 and rx[r] == _FLAG and _TICKS_HALF > (now - self._last_rx) & _TICKS_MASK >= self.inter_octet_timeout:
            # A lone flag that arrived longer than the inter-octet timeout
            # ago (a closing flag long past, or an opening one whose frame
            # never came) does not open the next frame: that one brings its
            # own opening flag (ISO/IEC 13239 frame structure; issue 18).
            self._rpos = r = w
        if not self._await_reply:
            if r == w:
                self._rpos = w = 0
            elif r == w - 1 and rx[r] == _FLAG:
                # Only the last frame's closing flag is left (it may open the
                # next frame): keep it, at the front.
                rx[0] = _FLAG
                self._rpos = 0
                w = 1
        if start == 0 and end == len(data) and end <= len(rx) - w and end:
            # a whole buffer that fits (the usual case), without a call
            rx[w : w + end] = data
            self._wpos = w + end
            self._last_rx = now
            return end
        n = copy_in(rx, w, data, start, end)
        if n:
            self._wpos = w + n
            self._last_rx = now
        return n

    def next_event(self, now):
        # Advance the link; returns one EV_* code. Call until EV_NONE.
        while True:
            if self._restore_at >= 0:
                self._restore()
            ev = self._event
            if ev:
                self._event = EV_NONE
                return ev
            if self._ctl_len:
                self._emit(self._ctl, 0, self._ctl_len)
                self._ctl_len = 0
                return EV_SEND
            if self._await_reply:
                # The application did not answer: acknowledge the frame.
                self.send_apdu(-1)
                continue
            if self._out_next >= 0 and self._win > 0:
                p = self._out_next
                if (p == self._out_first and self._out_end - p <= self.max_info_tx and self._addr_len == 2
                        and not self._out_ui):
                    self._one_frame(self.tx_apdu, p)  # the usual reply
                else:
                    self._send_segment()
                return EV_SEND
            r = self._rpos
            w = self._wpos
            if w - r == 1 and self.rx[r] == _FLAG and w < len(self.rx) and not self._skip:
                pass  # only the last frame's closing flag: nothing to parse (_parse would do nothing)
            elif self._fast(now) or self._parse(now):
                continue
            self._timeouts(now)
            if self._event or self._ctl_len:
                continue
            return EV_NONE

    def send_apdu(self, end, start=TX_APDU_START):
        # The application's reply is tx_apdu[start:end] (start >= TX_APDU_START,
        # e.g. after room left for a security header); end < 0: no reply.
        if not self._await_reply:
            return
        self._await_reply = False
        if self._out_ui:
            if end < 0 or not self._req_pf:
                return  # unconfirmed, or a broadcast: never answered
            if end - start + 3 > self.max_info_tx:
                self._error("hdlc: UI reply longer than one frame, dropped")
                return
        elif end < 0:
            if self._req_pf and self.state == NRM:
                self._rr()
            return
        buf = self.tx_apdu
        if end > len(buf) - 3 or start < TX_APDU_START or end < start:
            self._error("hdlc: reply outside the transmit buffer, dropped")
            if self._req_pf and self.state == NRM and not self._out_ui:
                self._rr()
            return
        buf[start - 3] = 0xE6
        buf[start - 2] = 0xE7
        buf[start - 1] = 0x00
        self._out_next = start - 3
        self._out_first = start - 3
        self._out_end = end
        self._win = 1 if self._out_ui else self.window_tx

    def disconnect(self):
        # Drop the link locally (e.g. the port lost the line). No frame is sent.
        self._reset_link(NDM)

    # ------------------------------------------------------- receive parsing

    def _error(self, msg):
        self.last_error = msg
        if self.log is not None:
            self.log(msg)

    def _header(self, r, w):
        # Parse the frame header at rx[r] (the opening flag). Returns 0: need
        # more bytes, -1: not a frame header (drop the flag), 1: parsed into
        # self._h_* (length, address length, control, client, ours).
        buf = self.rx
        f = r + 1
        if w - r < 3:
            return 0
        b0 = buf[f]
        if (b0 & 0xF0) != 0xA0:
            return -1
        length = ((b0 & 7) << 8) | buf[f + 1]
        # the usual forms inline: destination of 1 or 2 bytes, source of 1
        if f + 4 < w and buf[f + 2] & 1:
            dlen = 1
        elif f + 5 < w and buf[f + 3] & 1 and not buf[f + 2] & 1:
            dlen = 2
        else:
            dlen = self._addr_field(f + 2, w)
            if dlen <= 0:
                return dlen
        if f + 2 + dlen < w and buf[f + 2 + dlen] & 1:
            slen = 1
        else:
            slen = self._addr_field(f + 2 + dlen, w)
            if slen <= 0:
                return slen
        h = 3 + dlen + slen  # format, destination, source, control
        if length < h + 2 or length == h + 3:
            return -1
        if f + h > w:
            return 0
        if length > h + 2:
            if f + h + 2 > w:
                return 0
            if not crc16.check(buf, f, f + h + 2):
                self.hcs_errors += 1
                self._error("hdlc: bad HCS, frame dropped")
                return -1
        self._h_len = length
        self._h_dlen = dlen
        self._h_hlen = h
        self._h_ctrl = buf[f + h - 1]
        self._h_src = buf[f + 2 + dlen]
        self._h_seg = b0 & 0x08
        # Client addresses are one byte; a frame from a longer source address
        # is a server's (another meter's, or our own echo on a half-duplex
        # line) and is not for us.
        self._h_mine = self._addressed(f + 2, dlen) if slen == 1 else 0
        return 1

    def _addr_field(self, i, w):
        # Length of the HDLC address field at rx[i]: 1, 2 or 4; 0 when more
        # bytes are needed, -1 when malformed.
        buf = self.rx
        n = 0
        while True:
            if i + n >= w:
                return 0
            b = buf[i + n]
            n += 1
            if b & 1:
                return -1 if n == 3 else n
            if n == 4:
                return -1

    def _addressed(self, a, dlen):
        # 0: another station's frame; 1: ours; 2: broadcast (all stations).
        buf = self.rx
        if dlen == 1:
            upper = buf[a] >> 1
            lower = -1
            all_st = ALL_STATION_1
        elif dlen == 2:
            upper = buf[a] >> 1
            lower = buf[a + 1] >> 1
            all_st = ALL_STATION_1
        else:
            upper = ((buf[a] >> 1) << 7) | (buf[a + 1] >> 1)
            lower = ((buf[a + 2] >> 1) << 7) | (buf[a + 3] >> 1)
            all_st = ALL_STATION_2
        if upper != self.logical and upper != all_st:
            return 0
        if lower == all_st or upper == all_st:
            return 2
        if lower >= 0 and lower != self.physical:
            return 0
        return 1

    def _parse(self, now):
        # Take at most one frame from the receive buffer; True if anything
        # changed (bytes consumed or a reply queued), False if it needs more.
        buf = self.rx
        r = self._rpos
        w = self._wpos
        if self._skip:
            k = self._skip
            if k > w - r:
                k = w - r
            self._skip -= k
            self._rpos = r = r + k
            if not self._skip and self._skip_reply:
                self._skip_reply = 0
                self._refuse(self._h_ctrl, FRMR_Y)
            return k > 0
        # Hunt for the opening flag; skip repeated flags.
        start = r
        while r < w and buf[r] != _FLAG:
            r += 1
        self.garbage_bytes += r - start
        while r + 1 < w and buf[r + 1] == _FLAG:
            r += 1
        self._rpos = r
        if r >= w:
            self._rpos = self._wpos = 0
            return r != start
        st = self._header(r, w)
        if st == 0:
            return self._make_room(r, w, 0) or r != start
        if st < 0:
            self.garbage_bytes += 1
            self._rpos = r + 1
            return True
        f = r + 1
        length = self._h_len
        mine = self._h_mine
        if length + 2 > len(buf):
            # Larger than anything we accept: discard it as it streams in.
            self._skip = length + 1
            self._skip_reply = 0
            if mine == 1:
                self._load_addr(f)
                self._skip_reply = 1
                self._error("hdlc: frame longer than the receive buffer, discarded")
            return True
        if f + length >= w:
            # not before its closing flag (ISO/IEC 13239: a frame ends with a
            # flag; issue 18: frames were acted on before it arrived)
            return self._make_room(r, w, length + 2) or r != start
        if not crc16.check(buf, f, f + length):
            p = self._salvage(f, w)
            if p < 0 and length > self._h_hlen + 2 and (f + length >= w or buf[f + length] != _FLAG):
                # An HCS-checked header, but perhaps the frame is longer than
                # its length field says: wait for a closing flag that makes the
                # FCS good (or for the inter-octet timeout).
                if w < len(buf) and ticks_diff(now, self._last_rx) < self.inter_octet_timeout:
                    return self._make_room(r, w, len(buf)) or r != start
            return self._bad_frame(f, p)
        if buf[f + length] != _FLAG:
            # A good FCS but no closing flag after it: not a frame.
            self.garbage_bytes += length
            self._rpos = f + length
            self._error("hdlc: frame not closed by a flag, dropped")
            return True
        self._rpos = f + length  # the closing flag may open the next frame
        if (
            length == self._last_tx_len
            and buf[f + length - 2] | (buf[f + length - 1] << 8) == self._last_tx_fcs
            and buf[f + 2] == self._peer
        ):
            # Our own transmission echoed by a half-duplex line
            return True
        if not mine:
            self.ignored_frames += 1
            return True
        self.frames_ok += 1
        self._last_frame = now
        self._frame(f, length)
        return True

    def _fast(self, now):
        # The usual request in fewer steps than _parse + _frame + _iframe:
        # one whole I-frame in the receive buffer from the connected client,
        # to our 2-byte address, unsegmented, in sequence, opening with the
        # LLC header E6 E6 00, both check sequences good. It is delivered as
        # _iframe delivers it; anything else (nothing changed here) returns
        # False and goes through _parse, which checks and answers it fully.
        b = self.rx
        f = self._rpos + 1
        if f < self._wpos and b[f] == _FLAG:
            f += 1  # the last frame's closing flag, then this one's opening flag
        if self._skip or self._wpos - f < 14 or b[f - 1] != _FLAG or b[f] & 0xF8 != 0xA0 or b[f + 2] & 1:
            return False
        n = ((b[f] & 7) << 8) | b[f + 1]  # frame length
        if n < 13 or f + n >= self._wpos or b[f + n] != _FLAG or n - 10 > self.max_info_rx:
            return False
        if (b[f + 2] >> 1 != self.logical or b[f + 3] != (self.physical << 1) | 1 or b[f + 4] != self._client
                or self.state != NRM or self.logical == ALL_STATION_1 or self.physical == ALL_STATION_1):
            return False
        c = b[f + 5]  # control: an I-frame, N(S) = V(R), N(R) valid
        if c & 1 or (c >> 1) & 7 != self._vr or ((c >> 5) - self._va) & 7 > (self._vs - self._va) & 7:
            return False
        if b[f + 8] != 0xE6 or b[f + 9] != 0xE6 or b[f + 10] or self._reasm or self._reasm_drop:
            return False
        if not crc16.check(b, f, f + 8) or not crc16.check(b, f, f + n):
            return False  # _parse counts and logs it
        self._rpos = f + n
        self.frames_ok += 1
        self._last_frame = now
        a = self._addr
        a[0] = b[f + 2]
        a[1] = b[f + 3]
        self._addr_len = 2
        self._peer = b[f + 4]
        self._va = c >> 5
        self._out_next = -1  # a new request ends any reply still unsent
        self._win = 0
        self._vr = (self._vr + 1) & 7
        # _deliver(b, f + 11, f + n - 2, c & _PF, False), inline
        self.apdu_buf = b
        self.apdu_start = f + 11
        self.apdu_end = f + n - 2
        self.apdu_ui = False
        self._out_ui = False
        self._req_pf = c & _PF
        self._await_reply = True
        self._event = EV_APDU
        return True

    def _make_room(self, r, w, need):
        # An incomplete frame at r needs `need` bytes; if they would not fit
        # behind r, move it to the front (a rare path: after garbage or when
        # several frames arrived at once). Returns False: nothing to do yet.
        buf = self.rx
        if r and (w == len(buf) or r + need > len(buf)):
            n = w - r
            for i in range(n):
                buf[i] = buf[r + i]
            self._rpos = 0
            self._wpos = n
        return False

    def _salvage(self, f, w):
        # Find a closing flag before which the bytes since f form a frame with
        # a valid FCS: evidence that the length field was wrong. -1: none.
        buf = self.rx
        tab = crc16.TABLE
        crc = crc16.INIT
        good = crc16.GOOD_RESIDUE
        for i in range(f, w):
            b = buf[i]
            if b == _FLAG and crc == good and i - f >= _MIN_FRAME:
                return i
            crc = (crc >> 8) ^ tab[(crc ^ b) & 0xFF]
        return -1

    def _bad_frame(self, f, p):
        if p >= 0:
            # A well-formed frame whose length field does not match it.
            self.length_errors += 1
            self._rpos = p
            self._error("hdlc: frame length field wrong")
            if self._h_mine == 1:
                self._load_addr(f)
                self._refuse(self._h_ctrl, FRMR_W)
            return True
        self.fcs_errors += 1
        self._error("hdlc: bad FCS, frame dropped")
        if self._h_len > self._h_hlen + 2:
            self._rpos = f + self._h_len  # header was HCS-checked: skip it
        else:
            self._rpos = f  # unverified header: resynchronise after the flag
        return True

    def _timeouts(self, now):
        r = self._rpos
        w = self._wpos
        if w - r == 1 and self.rx[r] == _FLAG:
            pass  # only the last frame's closing flag: it may open the next one
        elif w > r and ticks_diff(now, self._last_rx) >= self.inter_octet_timeout:
            # A partial frame that stopped arriving: was it short of its length?
            if self.rx[r] == _FLAG and self._header(r, w) == 1:
                p = self._salvage(r + 1, w)
                if p >= 0:
                    self._bad_frame(r + 1, p)
                    return
            self.garbage_bytes += w - r
            self._error("hdlc: incomplete frame timed out, dropped")
            self._rpos = self._wpos = 0
        if self.state != NDM and self.inactivity_timeout:
            # ticks_diff(now, last) >= timeout, inline (every idle pass):
            # a masked difference of TICKS_HALF or more is negative
            d = (now - self._last_frame) & _TICKS_MASK
            if _TICKS_HALF > d >= self.inactivity_timeout:
                self._error("hdlc: inactivity timeout, link disconnected")
                self._reset_link(NDM)
                self._event = EV_DISCONNECTED

    # ------------------------------------------------------- state machine

    def _reset_link(self, state):
        self.state = state
        if state == NDM:
            self.client_address = None
        self._vs = 0
        self._vr = 0
        self._va = 0
        self._reasm = 0
        self._reasm_drop = False
        self._out_next = -1
        self._win = 0
        self._peer_busy = False
        self._frmr_info0 = 0
        self._frmr_flags = 0
        self.max_info_tx = DEFAULT_MAX_INFO
        self.max_info_rx = DEFAULT_MAX_INFO
        self.window_tx = DEFAULT_WINDOW
        self.window_rx = DEFAULT_WINDOW
        self._await_reply = False

    def _load_addr(self, f):
        # Remember who sent the frame at f and how it addressed us.
        buf = self.rx
        n = self._h_dlen
        for i in range(n):
            self._addr[i] = buf[f + 2 + i]
        self._addr_len = n
        self._peer = self._h_src

    def _frame(self, f, length):
        ctrl = self._h_ctrl
        pf = ctrl & _PF
        h = self._h_hlen
        i0 = f + h + 2
        i1 = f + length - 2
        if i1 < i0:
            i0 = i1 = f + h
        mine = self._h_mine
        if ctrl & 1 == 0 or (ctrl & 3) == 1:
            cmd = -1
        else:
            cmd = ctrl & 0xEF
        if mine == 2:
            # Broadcast: accepted only as UI, never answered.
            if cmd == _UI and i1 > i0:
                self._deliver_ui(i0, i1, 0)
            return
        self._load_addr(f)
        src = self._h_src
        if cmd == _SNRM:
            self._snrm(pf, i0, i1)
            return
        if cmd == _UI:
            if i1 > i0:
                self._deliver_ui(i0, i1, pf)
            return
        if self.state == NDM or src != self._client:
            # Not connected (with this client): DM to anything but SNRM / UI.
            if pf or cmd == _DISC:
                self._dm()
            return
        if cmd == _DISC:
            if i1 > i0:
                self._reject(ctrl, FRMR_X)
                return
            self._reset_link(NDM)
            self._event = EV_DISCONNECTED
            self._u_frame(_UA | _PF)
            return
        if self.state == FRMR_CONDITION:
            if pf:
                self._send_frmr()
            return
        if ctrl & 1 == 0:
            self._iframe(ctrl, pf, i0, i1)
        elif cmd < 0 and ((ctrl & 0x0F) == _RR or (ctrl & 0x0F) == _RNR):
            if i1 > i0:
                self._reject(ctrl, FRMR_X)
                return
            self._sframe(ctrl, pf)
        else:
            self._reject(ctrl, FRMR_W)

    def _nr_valid(self, nr):
        va = self._va
        return ((nr - va) & 7) <= ((self._vs - va) & 7)

    def _iframe(self, ctrl, pf, i0, i1):
        ns = (ctrl >> 1) & 7
        nr = ctrl >> 5
        va = self._va
        if ((nr - va) & 7) > ((self._vs - va) & 7):  # _nr_valid(nr), inline
            self._reject(ctrl, FRMR_Z)
            return
        if ns != self._vr:
            if ns == ((self._vr - 1) & 7) and pf:
                # The previous frame again: our answer to it was lost.
                self._va = nr
                if self._va != self._vs:
                    self._go_back()
                else:
                    self._rr()
                return
            self._reject(ctrl, FRMR_W)
            return
        if i1 - i0 > self.max_info_rx:
            self._reject(ctrl, FRMR_Y)
            return
        self._va = nr
        self._out_next = -1  # a new request ends any reply still unsent
        self._win = 0
        self._vr = (self._vr + 1) & 7
        if self._h_seg or self._reasm or self._reasm_drop or not _llc_request(self.rx, i0, i1):
            self._take_info(i0, i1, self._h_seg, pf)
            return
        # The usual case, a whole APDU in one frame, without one more call
        # (a call of a function with many locals costs MicroPython a heap
        # allocation for its frame)
        self._deliver(self.rx, i0 + 3, i1, pf, False)

    def _take_info(self, i0, i1, seg, pf):
        buf = self.rx
        if self._reasm == 0 and not self._reasm_drop:
            if not _llc_request(buf, i0, i1):
                self._error("hdlc: information field without LLC header E6 E6 00, dropped")
                self._reasm_drop = bool(seg)
                if pf:
                    self._rr()
                return
            i0 += 3
            if not seg:
                self._deliver(buf, i0, i1, pf, False)
                return
        n = i1 - i0
        if not self._reasm_drop:
            if self._reasm + n > len(self.apdu_in):
                self._error("hdlc: segmented APDU longer than the reassembly buffer, dropped")
                self._reasm_drop = True
                self._reasm = 0
            else:
                self.apdu_in[self._reasm : self._reasm + n] = memoryview(buf)[i0:i1]
                self._reasm += n
        if seg:
            if pf:
                self._rr()
            return
        if self._reasm_drop:
            self._reasm_drop = False
            if pf:
                self._rr()
            return
        n = self._reasm
        self._reasm = 0
        self._deliver(self.apdu_in, 0, n, pf, False)

    def _deliver(self, buf, start, end, pf, ui):
        self.apdu_buf = buf
        self.apdu_start = start
        self.apdu_end = end
        self.apdu_ui = ui
        self._out_ui = ui
        self._req_pf = pf
        self._await_reply = True
        self._event = EV_APDU

    def _deliver_ui(self, i0, i1, pf):
        # Unnumbered information (e.g. an unconfirmed service). The reply, if
        # any, goes back in one UI frame, and only to a poll (pf); broadcasts
        # are never answered.
        buf = self.rx
        if not _llc_request(buf, i0, i1):
            self._error("hdlc: UI frame without LLC header, dropped")
            return
        if self._out_next >= 0 or self._va != self._vs:
            self._error("hdlc: UI frame while a reply is outstanding, dropped")
            return
        self._deliver(buf, i0 + 3, i1, pf, True)

    def _sframe(self, ctrl, pf):
        nr = ctrl >> 5
        if not self._nr_valid(nr):
            self._reject(ctrl, FRMR_Z)
            return
        self._va = nr
        self._peer_busy = (ctrl & 0x0F) == _RNR
        if not pf:
            return
        if self._peer_busy:
            self._rr()
        elif self._va != self._vs:
            self._go_back()  # the client is missing frames we sent
        elif self._out_next >= 0:
            self._win = self.window_tx  # next window of a long reply
        else:
            self._rr()

    def _go_back(self):
        # Retransmit every unacknowledged frame from N(S) = V(A).
        self._vs = self._va
        self._out_next = self._seg_off[self._va]
        self._win = self.window_tx

    def _snrm(self, pf, i0, i1):
        tx = self.cfg_max_info_tx
        rx = self.cfg_max_info_rx
        wtx = self.cfg_window_tx
        wrx = self.cfg_window_rx
        # Defaults when the client proposes nothing (IEC 62056-46 6.4.4.4.3.2)
        ptx = prx = DEFAULT_MAX_INFO
        pwtx = pwrx = DEFAULT_WINDOW
        buf = self.rx
        if i1 > i0:
            ok = i1 - i0 >= 3 and buf[i0] == 0x81 and buf[i0 + 1] == 0x80 and buf[i0 + 2] == i1 - i0 - 3
            i = i0 + 3
            while ok and i < i1:
                if i + 2 > i1:
                    ok = False
                    break
                pid = buf[i]
                n = buf[i + 1]
                i += 2
                if n < 1 or n > 4 or i + n > i1:
                    ok = False
                    break
                v = 0
                for k in range(n):
                    v = (v << 8) | buf[i + k]
                i += n
                if v == 0:
                    ok = False
                elif pid == 5:  # the client's max info field transmit = ours receive
                    ptx = v
                elif pid == 6:
                    prx = v
                elif pid == 7:
                    pwtx = v
                elif pid == 8:
                    pwrx = v
            if not ok:
                self._error("hdlc: malformed SNRM parameters, refused with DM")
                self._dm()
                return
        was = self.state
        self._reset_link(NRM)
        self.max_info_tx = min(tx, prx)
        self.max_info_rx = min(rx, ptx)
        self.window_tx = min(wtx, pwrx)
        self.window_rx = min(wrx, pwtx)
        self._client = self._peer
        self.client_address = self._client >> 1
        if was != NDM:
            self._error("hdlc: SNRM on an open link, link reset")
        self._event = EV_CONNECTED
        # UA with the agreed parameters, from our point of view (tx = ours)
        b = self._ctl
        p = self._head(b, 0, _UA | _PF, 1)
        q = p
        b[q] = 0x81
        b[q + 1] = 0x80
        q += 3
        q = self._param(b, q, 5, self.max_info_tx, 1 if self.max_info_tx < 256 else 2)
        q = self._param(b, q, 6, self.max_info_rx, 1 if self.max_info_rx < 256 else 2)
        q = self._param(b, q, 7, self.window_tx, 4)
        q = self._param(b, q, 8, self.window_rx, 4)
        b[p + 2] = q - p - 3
        self._finish_ctl(b, q)

    def _param(self, b, q, pid, v, n):
        b[q] = pid
        b[q + 1] = n
        q += 2
        for k in range(n - 1, -1, -1):
            b[q + k] = v & 0xFF
            v >>= 8
        return q + n

    # ------------------------------------------------------------- transmit

    def _head(self, b, s, ctrl, info):
        # Write flag, format (length patched later), addresses and control at
        # b[s]; with info, leave room for the HCS. Returns the info offset.
        b[s] = _FLAG
        b[s + 3] = self._peer
        n = self._addr_len
        a = self._addr
        for i in range(n):
            b[s + 4 + i] = a[i]
        b[s + 4 + n] = ctrl
        return s + 5 + n + (2 if info else 0)

    def _finish(self, b, s, end, seg):
        # Patch the format field, HCS (when there is information), FCS and
        # the closing flag of the frame at b[s]. Returns the end offset.
        hl = 5 + self._addr_len  # flag .. control
        length = end + 2 - s - 1
        b[s + 1] = 0xA0 | (0x08 if seg else 0) | (length >> 8)
        b[s + 2] = length & 0xFF
        if end > s + hl:
            crc16.put_fcs(b, s + 1, s + hl)
        end = crc16.put_fcs(b, s + 1, end)
        b[end] = _FLAG
        self._last_tx_len = length
        self._last_tx_fcs = b[end - 2] | (b[end - 1] << 8)
        return end + 1

    def _finish_ctl(self, b, end):
        self._ctl_len = self._finish(b, 0, end, 0)

    def _u_frame(self, ctrl):
        b = self._ctl
        self._finish_ctl(b, self._head(b, 0, ctrl, 0))

    def _dm(self):
        self._u_frame(_DM | _PF)

    def _rr(self):
        self._u_frame((self._vr << 5) | _PF | _RR)

    def _refuse(self, ctrl, flags):
        # FRMR to the connected client; DM to anyone we have no link with.
        if self.state == NDM or self._peer != self._client:
            self._dm()
        else:
            self._reject(ctrl, flags)

    def _reject(self, ctrl, flags):
        self.frmr_sent += 1
        self._error("hdlc: frame rejected (FRMR)")
        self.state = FRMR_CONDITION
        self._out_next = -1
        self._win = 0
        self._reasm = 0
        self._frmr_info0 = ctrl
        self._frmr_flags = flags
        self._send_frmr()

    def _send_frmr(self):
        b = self._ctl
        p = self._head(b, 0, _FRMR | _PF, 1)
        b[p] = self._frmr_info0
        b[p + 1] = (self._vr << 5) | (self._vs << 1)
        b[p + 2] = self._frmr_flags
        self._finish_ctl(b, p + 3)

    def _emit(self, buf, start, end):
        self.tx_buf = buf
        self.tx_start = start
        self.tx_end = end

    def _send_segment(self):
        # Frame the next segment of the reply in place inside tx_apdu.
        b = self.tx_apdu
        p = self._out_next
        n = self._out_end - p
        if n > self.max_info_tx:
            n = self.max_info_tx
        e = p + n
        last = e == self._out_end
        self._win -= 1
        hl = 7 + self._addr_len
        s = p - hl
        if last and p == self._out_first:
            # The whole reply in one frame: its header goes into the room
            # before the reply and FCS + flag after its end, so no byte of
            # the reply is covered (a resent frame is framed again the same).
            self._restore_at = -1
        else:
            sv = self._save
            for i in range(hl):
                sv[i] = b[s + i]
            for i in range(3):
                sv[hl + i] = b[e + i]
            self._restore_at = s
            self._restore_end = e
        if self._out_ui:
            ctrl = _UI | _PF
            self._win = 0
        else:
            ns = self._vs
            self._seg_off[ns] = p
            final = last or self._win == 0
            ctrl = (self._vr << 5) | (_PF if final else 0) | (ns << 1)
            self._vs = (ns + 1) & 7
            if final:
                self._win = 0
        self._head(b, s, ctrl, 1)
        end = self._finish(b, s, e, not last)
        self._out_next = -1 if last else e
        self._emit(b, s, end)

    def _one_frame(self, b, p):
        # _send_segment for the usual reply (next_event checks it is): one
        # I-frame to a 2-byte address,
        # framed around b[p:_out_end] (header in the room before it, FCS and
        # flag after it) with the same bytes as the general code, in fewer
        # calls.
        s = p - 9
        e = self._out_end
        ns = self._vs
        self._win = 0
        self._restore_at = -1
        self._seg_off[ns] = p
        self._vs = (ns + 1) & 7
        n = e + 1 - s  # the frame length field: format .. FCS
        b[s] = _FLAG
        b[s + 1] = 0xA0 | (n >> 8)
        b[s + 2] = n & 0xFF
        b[s + 3] = self._peer
        b[s + 4] = self._addr[0]
        b[s + 5] = self._addr[1]
        b[s + 6] = (self._vr << 5) | _PF | (ns << 1)
        crc16.put_fcs(b, s + 1, s + 7)
        e = crc16.put_fcs(b, s + 1, e)
        b[e] = _FLAG
        self._last_tx_len = n
        self._last_tx_fcs = b[e - 2] | (b[e - 1] << 8)
        self._out_next = -1
        self.tx_buf = b
        self.tx_start = s
        self.tx_end = e + 1

    def _restore(self):
        # Put back the application bytes a sent in-place frame covered.
        b = self.tx_apdu
        s = self._restore_at
        e = self._restore_end
        hl = 7 + self._addr_len
        sv = self._save
        for i in range(hl):
            b[s + i] = sv[i]
        for i in range(3):
            b[e + i] = sv[hl + i]
        self._restore_at = -1


def _llc_request(buf, i0, i1):
    # buf[i0:i1] opens with the LLC header of a request, E6 E6 00
    return i1 - i0 >= 3 and buf[i0] == 0xE6 and buf[i0 + 1] == 0xE6 and buf[i0 + 2] == 0


# PUSH (IEC 62056-46: unnumbered information). What the meter sends without
# being asked (a DataNotification from a Push setup) goes out in UI frames,
# outside any connection: to the push client's address (one byte, 102 by
# convention), from the meter's server address (2-byte form when both parts
# are below 128, else 4-byte), LLC header E6 E7 00 in front of the APDU. An
# APDU longer than max_info (LLC included) is segmented: every frame but the
# last has the segmentation bit in its format field and control 0x03; the
# last has control 0x13 (UI with the final bit).
_LLC_RESPONSE = b"\xe6\xe7\x00"
PUSH_CLIENT = const(102)


def ui_frames(out, o, apdu, start, end, logical, physical, client=PUSH_CLIENT, max_info=DEFAULT_MAX_INFO):
    # Write the UI frame(s) carrying apdu[start:end] at out[o:]; returns the
    # end of the last frame, or -1 when out has no room for them (nothing
    # meaningful written then). Allocates nothing.
    if max_info < 32 or max_info > MAX_INFO_LIMIT:
        raise ValueError("max information field must be 32..2030")
    long_addr = logical > 127 or physical > 127
    hl = 11 if long_addr else 9  # flag, format 2, client 1, server 2|4, control, HCS 2
    p = start
    first = 1
    while True:
        n = end - p
        room = max_info - 3 * first
        if n > room:
            n = room
        last = p + n == end
        if o + hl + 3 * first + n + 3 > len(out):
            return -1
        s = o
        out[s] = _FLAG
        out[s + 3] = (client << 1) | 1
        if long_addr:
            out[s + 4] = (logical >> 7) << 1
            out[s + 5] = (logical & 0x7F) << 1
            out[s + 6] = (physical >> 7) << 1
            out[s + 7] = ((physical & 0x7F) << 1) | 1
        else:
            out[s + 4] = logical << 1
            out[s + 5] = (physical << 1) | 1
        q = s + hl - 3
        out[q] = (_UI | _PF) if last else _UI
        hcs = q + 1
        q += 3
        if first:
            for i in range(3):
                out[q + i] = _LLC_RESPONSE[i]
            q += 3
        for i in range(n):
            out[q + i] = apdu[p + i]
        q += n
        length = q + 2 - s - 1
        out[s + 1] = 0xA0 | (0 if last else 0x08) | (length >> 8)
        out[s + 2] = length & 0xFF
        crc16.put_fcs(out, s + 1, hcs)
        q = crc16.put_fcs(out, s + 1, q)
        out[q] = _FLAG
        o = q + 1
        p += n
        first = 0
        if last:
            return o
