# IEC 62056-21 protocol mode E sign-on (the meter's side): the short ASCII
# exchange at 300 Bd over an optical port that opens an HDLC channel
# (IEC 62056-46) at a higher baud rate. Protocol, not I/O: the port performs
# each line change when this machine asks for it.
#
#   client -> meter   300 Bd 7E1   / ? [device address] ! CR LF       request
#   meter  -> client  300 Bd 7E1   / X X X Z \ 2 identification CR LF  identification
#   client -> meter   300 Bd 7E1   ACK 2 Z 2 CR LF                    ack / option select
#   meter  -> client  Z    7E1     ACK 2 Z 2 CR LF                    switch confirm
#   then both sides   Z    8N1     HDLC frames
#
# XXX: manufacturer id; Z: baud rate character (0..6 = 300..19200 Bd);
# "\2": the enhanced identification escape, 2 = binary mode (HDLC) available
# (IEC 62056-21 6.3.2 item 24; DLMS UA list of standard items). In the
# acknowledgement, V = "2" is the HDLC protocol procedure and Y = "2" the
# binary (HDLC) mode. Mode E (6.4.5): the baud rate switches at the same place
# as in mode C (after the acknowledgement); the switch confirm message has the
# structure of the acknowledgement and goes at the new rate, still 7E1; after
# it the line is 8N1.
#
# Sans-IO, as link.hdlc:
#   n = signon.feed(data, 0, len(data), now)  # all, or 0 once signon.hdlc:
#   if n < len(data):                         # bytes not taken belong to the
#       hdlc.feed(data, n, len(data), now)    # HDLC link (and count as activity)
#   while True:
#       ev = signon.next_event(now)
#       if ev == EV_NONE: break
#       if ev == EV_SEND:  write signon.tx_buf[signon.tx_start:signon.tx_end]
#       elif ev == EV_BAUD or ev == EV_RESET:
#           wait until the UART has sent every byte, then set the line to
#           signon.baud, signon.data_bits (7 or 8), signon.parity ("E" even,
#           "N" none), one stop bit. After the EV_BAUD with signon.hdlc True,
#           the line is the HDLC link's. EV_RESET (back to 300 Bd 7E1) also
#           means: drop the HDLC link (HdlcServer.disconnect()).
#   When the HDLC link ends (EV_DISCONNECTED), the port calls
#   signon.link_closed(now), after the UA has been written.
#
# `now`: millisecond ticks wrapping at 2**30 (ticks.py). Nothing is allocated
# per byte; the identification message is built once.
#
# Not implemented: modes A-D (data readout, programming mode, the break
# message's meaning in them): any request for them is refused by silence and
# the machine goes back to waiting for a request. Parity is not checked here:
# bit 7 of every received byte is dropped, so a port that receives the 7E1
# line as 8N1 works too.

from dlms_micro.ticks import ticks_diff

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# Events returned by next_event() (distinct from the HDLC and wrapper codes)
EV_NONE = const(0)
EV_SEND = const(1)
EV_BAUD = const(6)
EV_RESET = const(7)

# States
IDLE = const(0)  # 300 Bd: waiting for "/"
REQUEST = const(1)  # receiving a request message
IDENT_WAIT = const(2)  # request accepted; waiting the reaction time to answer
AWAIT_ACK = const(3)  # identification sent; waiting for the acknowledgement
SWITCH = const(4)  # acknowledgement accepted; the port is to switch baud rate
CONFIRM_WAIT = const(5)  # at the new rate, 7E1: waiting to send the confirm
CONFIRM_SENT = const(6)  # confirm written; the port is to switch to 8N1
HDLC = const(7)  # 8N1 at the agreed rate: the HDLC link owns the line

# Characters
_SLASH = const(0x2F)
_QUERY = const(0x3F)
_BANG = const(0x21)
_CR = const(0x0D)
_LF = const(0x0A)
_ACK = const(0x06)
_PROTOCOL_HDLC = const(0x32)  # V = "2": HDLC protocol procedure
_MODE_BINARY = const(0x32)  # Y = "2": binary mode (HDLC)

# Baud rate characters of modes C and E ("0".."6"); "7".."9" are reserved.
BAUD_RATES = (300, 600, 1200, 2400, 4800, 9600, 19200)

# Timing, IEC 62056-21 6.3.14 (ms)
T_R_MIN = const(200)  # reaction time, minimum
T_R_MIN_FAST = const(20)  # minimum when the 3rd letter of the id is lower case
T_R_MAX = const(1500)  # reaction time, maximum (the client's answer too)
T_A = const(1500)  # maximum time between two characters of a message
INACTIVITY = 120000  # t_t upper bound; here: no byte on the HDLC channel

MAX_ADDRESS = const(32)
MAX_IDENT = const(16)  # printable characters after XXXZ, "\2" included


def _tx_ms(n, baud):
    # Time to send n characters of 10 bits (start, 7 data, parity, stop /
    # start, 8 data, stop), rounded up.
    return (n * 10000 + baud - 1) // baud


class SignOn:
    def __init__(
        self,
        manufacturer=b"DMI",
        identification=b"DLMSMICRO",
        max_baud_char=b"5",
        address=b"",
        reaction_ms=-1,
        switch_confirm=True,
        inactivity_timeout=INACTIVITY,
        ignore_leading_zeros=True,
    ):
        # manufacturer: 3 letters; a lower-case 3rd letter announces a 20 ms
        # minimum reaction time. identification: up to 14 printable characters
        # (16 with the "\2"), no "/", "!" or "\". max_baud_char: the proposed rate,
        # b"0".."6"; the client may confirm it or any lower one.
        # address: the device address answered besides an empty one (up to
        # 32 characters; b"": answer only requests without an address);
        # ignore_leading_zeros: "/?0042!" and "/?42!" are the same address.
        # reaction_ms < 0: the standard's minimum for this manufacturer id.
        # switch_confirm: send ACK 2 Z 2 at the new rate (mode E, 6.4.5).
        if len(manufacturer) != 3:
            raise ValueError("manufacturer id must be 3 letters")
        for c in manufacturer:
            if not (0x41 <= c <= 0x5A or (0x61 <= c <= 0x7A)):
                raise ValueError("manufacturer id must be 3 letters")
        if len(identification) + 2 > MAX_IDENT:
            raise ValueError("identification longer than 14 characters")
        for c in identification:
            # no "\" either: it would start another escape sequence
            if c < 0x20 or c > 0x7E or c == _SLASH or c == _BANG or c == 0x5C:
                raise ValueError("identification: printable, no / ! or \\")
        if len(max_baud_char) != 1 or not (0x30 <= max_baud_char[0] <= 0x36):
            raise ValueError("max_baud_char must be b'0'..b'6'")
        if len(address) > MAX_ADDRESS:
            raise ValueError("device address longer than 32 characters")
        for c in address:
            if c < 0x20 or c > 0x7E or c == _BANG or c == _SLASH:
                raise ValueError("device address: printable, no / or !")
        self.address = bytes(address)
        self.ignore_leading_zeros = ignore_leading_zeros
        self.max_baud_char = max_baud_char[0]
        if reaction_ms < 0:
            reaction_ms = T_R_MIN_FAST if manufacturer[2] >= 0x61 else T_R_MIN
        self.reaction_ms = reaction_ms
        self.switch_confirm = switch_confirm
        self.inactivity_timeout = inactivity_timeout
        # Transmit buffer: the identification message, built once, then room
        # for the switch confirm message.
        n = 5 + 2 + len(identification) + 2
        tx = bytearray(n + 6)
        tx[0] = _SLASH
        tx[1:4] = manufacturer
        tx[4] = self.max_baud_char
        tx[5] = 0x5C  # "\"
        tx[6] = 0x32  # "2": binary mode (HDLC) available
        tx[7 : n - 2] = identification
        tx[n - 2] = _CR
        tx[n - 1] = _LF
        self._ident_len = n
        self.tx_buf = tx
        self.tx_start = 0
        self.tx_end = 0
        self._rx_addr = bytearray(MAX_ADDRESS)
        self._ack = bytearray(6)
        # What the port's line must be set to now (after the last EV_BAUD or
        # EV_RESET); hdlc: received bytes belong to the HDLC link.
        self.baud = 300
        self.data_bits = 7
        self.parity = "E"
        self.hdlc = False
        # Diagnostics; log messages are constant strings.
        self.log = None
        self.last_error = None
        self.signons = 0
        self.refused = 0
        self.timeouts = 0
        self.garbage_bytes = 0
        self._reset_event = False
        self._idle()
        self._last_rx = 0
        self._t_ref = 0
        self._ack_limit = 0

    # ------------------------------------------------------------------ API

    def feed(self, data, start, end, now):
        # Take data[start:end]; returns the number of bytes taken: all of
        # them, except in the HDLC state (0: give them to the HDLC link).
        st = self.state
        if st == HDLC:
            if end > start:
                self._t_ref = now  # activity on the HDLC channel
            return 0
        if (st == REQUEST or (st == AWAIT_ACK and self._pos)) and ticks_diff(now, self._last_rx) > T_A:
            self._timeout("iec21: message interrupted, back to idle")
        i = start
        while i < end:
            self._byte(data[i] & 0x7F, now)
            i += 1
        if end > start:
            self._last_rx = now
        return end - start

    def next_event(self, now):
        # Returns one EV_* code; call until EV_NONE.
        if self._reset_event:
            self._reset_event = False
            self.baud = 300
            self.data_bits = 7
            self.parity = "E"
            self.hdlc = False
            return EV_RESET
        st = self.state
        if st == IDENT_WAIT:
            dt = ticks_diff(now, self._last_rx)
            if dt > T_R_MAX:
                # The client has given up waiting (or the port was stalled).
                self._timeout("iec21: too late to answer the request")
            elif dt >= self.reaction_ms:
                self.tx_start = 0
                self.tx_end = self._ident_len
                self.state = AWAIT_ACK
                self._pos = 0
                # The acknowledgement may come up to t_r max after the last
                # character of the identification leaves the meter. (Times
                # are kept in the past: a negative ticks_diff allocates.)
                self._t_ref = now
                self._ack_limit = _tx_ms(self._ident_len, 300) + T_R_MAX
                return EV_SEND
        elif st == AWAIT_ACK:
            if self._pos:
                late = ticks_diff(now, self._last_rx) > T_A
            else:
                late = ticks_diff(now, self._t_ref) > self._ack_limit
            if late:
                self._timeout("iec21: no acknowledgement, back to idle")
        elif st == SWITCH:
            self.baud = BAUD_RATES[self._ack[2] - 0x30]
            if self.switch_confirm:
                self.state = CONFIRM_WAIT
                self._t_ref = now
            else:
                self._to_hdlc(now)
            self._line_changed = True
            return EV_BAUD
        elif st == CONFIRM_WAIT:
            dt = ticks_diff(now, self._t_ref)
            if dt > T_R_MAX:
                # The port was stalled past the client's wait: it has given
                # up on the confirmation, so no HDLC channel opens.
                self.timeouts += 1
                self._error("iec21: too late to confirm the baud rate, back to 300 Bd")
                self._back_to_300()
                return self.next_event(now)
            if dt >= self.reaction_ms:
                tx = self.tx_buf
                s = self._ident_len
                tx[s : s + 6] = self._ack
                self.tx_start = s
                self.tx_end = s + 6
                self.state = CONFIRM_SENT
                return EV_SEND
        elif st == CONFIRM_SENT:
            self._to_hdlc(now)
            return EV_BAUD
        elif st == HDLC:
            if ticks_diff(now, self._t_ref) > self.inactivity_timeout:
                self._error("iec21: inactivity, back to 300 Bd")
                self._back_to_300()
                return self.next_event(now)
        elif st == REQUEST:
            if ticks_diff(now, self._last_rx) > T_A:
                self._timeout("iec21: request interrupted, back to idle")
        return EV_NONE

    def touch(self, now):
        # Activity on the HDLC channel that did not pass through feed() (a
        # port that hands bytes straight to the HDLC link): restart the
        # inactivity timer.
        if self.state == HDLC:
            self._t_ref = now

    def link_closed(self, now):
        # The HDLC link was disconnected (DISC, or its own timeout): back to
        # 300 Bd and the sign-on (EV_RESET follows).
        if self.state >= SWITCH:
            self._back_to_300()

    def reset(self):
        # Forget any sign-on in progress; back to 300 Bd if the line changed.
        self._back_to_300()

    # ------------------------------------------------------------- internals

    def _idle(self):
        self.state = IDLE
        self._pos = 0
        self._addr_len = 0
        self._line_changed = False

    def _back_to_300(self):
        if self._line_changed:
            self._reset_event = True
        self._idle()

    def _to_hdlc(self, now):
        self.state = HDLC
        self.data_bits = 8
        self.parity = "N"
        self.hdlc = True
        self._t_ref = now
        self.signons += 1

    def _error(self, msg):
        self.last_error = msg
        if self.log is not None:
            self.log(msg)

    def _timeout(self, msg):
        self.timeouts += 1
        self._error(msg)
        self._idle()

    def _refuse(self, msg):
        self.refused += 1
        self._error(msg)
        self._idle()

    def _byte(self, c, now):
        st = self.state
        if c == _SLASH and st <= AWAIT_ACK:
            # A request starts (again): also the client's retry after a lost
            # identification.
            self.state = REQUEST
            self._pos = 0
            self._addr_len = 0
            return
        if st == REQUEST:
            self._request_byte(c)
        elif st == AWAIT_ACK:
            self._ack_byte(c)
        else:
            # IDLE: noise before "/"; IDENT_WAIT: noise while we are about to
            # answer; after the acknowledgement: bytes at the old rate.
            self.garbage_bytes += 1

    def _request_byte(self, c):
        p = self._pos
        if p == 0:
            if c == _QUERY:
                self._pos = 1
                return
            self._garbage()
            return
        if p == 1:  # device address characters, then "!"
            if c == _BANG:
                self._pos = 2
                return
            n = self._addr_len
            if n >= MAX_ADDRESS or c < 0x20 or c == 0x7F:
                self._garbage()
                return
            self._rx_addr[n] = c
            self._addr_len = n + 1
            return
        if p == 2:
            if c == _CR:
                self._pos = 3
                return
            self._garbage()
            return
        # p == 3
        if c != _LF:
            self._garbage()
            return
        if self._addressed():
            self.state = IDENT_WAIT
            self._pos = 0
        else:
            self._error("iec21: request for another device address")
            self._idle()

    def _addressed(self):
        # An empty address is everyone's; otherwise equal to ours, leading
        # zeros aside ("/?0042!" = "/?42!") when ignore_leading_zeros is set.
        n = self._addr_len
        if n == 0:
            return True
        a = self.address
        m = len(a)
        rx = self._rx_addr
        i = 0
        j = 0
        if self.ignore_leading_zeros:
            while i < n - 1 and rx[i] == 0x30:
                i += 1
            while j < m - 1 and a[j] == 0x30:
                j += 1
        if n - i != m - j:
            return False
        while i < n:
            if rx[i] != a[j]:
                return False
            i += 1
            j += 1
        return True

    def _garbage(self):
        self.garbage_bytes += 1
        self._error("iec21: malformed message, back to idle")
        self._idle()

    def _ack_byte(self, c):
        p = self._pos
        ack = self._ack
        if p == 0:
            if c == _ACK:
                ack[0] = c
                self._pos = 1
                return
            # A break (SOH B0 ETX), a NAK or noise: no sign-on.
            self._garbage()
            return
        ack[p] = c
        self._pos = p + 1
        if p == 4:
            if c != _CR:
                self._garbage()
            return
        if p < 4:
            return
        if c != _LF:
            self._garbage()
            return
        if ack[1] != _PROTOCOL_HDLC or ack[3] != _MODE_BINARY:
            self._refuse("iec21: acknowledgement is not HDLC mode E, refused")
            return
        z = ack[2]
        if z < 0x30 or z > self.max_baud_char:
            self._refuse("iec21: acknowledged baud rate not offered, refused")
            return
        self.state = SWITCH
