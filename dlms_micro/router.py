# One link endpoint (a TCP connection, a serial line) serving several
# logical devices: a gateway's management device and one per upstream meter.
# A Router has a Channel's interface (feed, next_event, tx_buf/tx_start/
# tx_end, close, set_log, assoc) over one Channel per logical device, each
# with its own link, Meter and association.
#
#   chans = [Channel(meter_d, WrapperServer(wports=(ld_d,))) for each device]
#   ch = Router(chans, wrapper=True)     # or HDLC links (logical=ld_d)
#
# Wrapper (IEC 62056-47): each message goes whole to the channel of its
# destination wPort (a message to a wPort no device has goes to the first
# channel, whose link ignores it or closes a stream with a wrong version).
# HDLC: every byte goes to every channel's link: each answers the frames of
# its own upper address (the logical device), as stations on a multi-drop
# line do, and ignores the others. Allocates nothing per byte or message.


class Router:
    def __init__(self, channels, wrapper):
        self.channels = channels
        self.wrapper = wrapper
        self.tx_buf = None
        self.tx_start = 0
        self.tx_end = 0
        self.log = None
        self._lds = []
        for ch in channels:
            link = ch.link
            self._lds.append(link.wports[0] if wrapper else link.logical)
        n = len(channels)
        self._ahead = [0] * n  # HDLC: bytes a link took beyond the others
        self._took = [0] * n
        self._hdr = bytearray(8)  # wrapper: the header being read
        self._hlen = 0
        self._hsent = 0
        self._left = 0
        self._target = None

    @property
    def assoc(self):
        # the first open association (a battery board does not sleep then)
        for ch in self.channels:
            if ch.assoc.status:
                return ch.assoc
        return self.channels[0].assoc

    @property
    def link(self):
        # the HDLC link that is up (an IEC 62056-21 mode E port watches it),
        # else the first device's
        for ch in self.channels:
            if ch.link.state:
                return ch.link
        return self.channels[0].link

    @property
    def meter(self):
        return self.channels[0].meter

    def set_log(self, fn):
        self.log = fn
        for ch in self.channels:
            ch.set_log(fn)

    def close(self):
        for ch in self.channels:
            ch.close()

    def channel_for(self, ld):
        for i in range(len(self._lds)):
            if self._lds[i] == ld:
                return self.channels[i]
        return None

    def feed(self, data, start, end, now):
        if self.wrapper:
            return self._feed_wrapper(data, start, end, now)
        # HDLC: every link takes the bytes; one whose buffer filled first
        # takes the rest when the caller feeds it again
        n = end - start
        least = n
        chans = self.channels
        ahead = self._ahead
        took = self._took
        for i in range(len(chans)):
            a = ahead[i]
            if a >= n:
                took[i] = n
                ahead[i] = a - n
            else:
                took[i] = a + chans[i].feed(data, start + a, end, now)
                ahead[i] = 0
            if took[i] < least:
                least = took[i]
        for i in range(len(chans)):
            ahead[i] += took[i] - least
        return least

    def _feed_wrapper(self, data, start, end, now):
        i = start
        hdr = self._hdr
        while i < end:
            if self._hlen < 8:
                hdr[self._hlen] = data[i]
                self._hlen += 1
                i += 1
                if self._hlen == 8:
                    dst = (hdr[4] << 8) | hdr[5]
                    t = self.channel_for(dst)
                    self._target = t if t is not None else self.channels[0]
                    self._hsent = 0
                    self._left = (hdr[6] << 8) | hdr[7]
                    if not self._send_header(now):
                        return i - start
                    if self._left == 0:
                        self._hlen = 0
                continue
            if self._hsent < 8 and not self._send_header(now):
                return i - start
            m = end - i
            if m > self._left:
                m = self._left
            took = self._target.feed(data, i, i + m, now)
            i += took
            self._left -= took
            if self._left == 0:
                self._hlen = 0
            if took < m:
                return i - start
        if self._hlen == 8 and self._hsent == 8 and self._left == 0:
            self._hlen = 0
        return i - start

    def _send_header(self, now):
        # the header read so far goes to the target; False when its buffer
        # is full (the caller drains and feeds again)
        self._hsent += self._target.feed(self._hdr, self._hsent, 8, now)
        return self._hsent == 8

    def next_event(self, now):
        chans = self.channels
        if self.wrapper and self._hlen == 8 and self._hsent < 8:
            self._send_header(now)  # a full buffer has room again
        for i in range(len(chans)):
            ch = chans[i]
            ev = ch.next_event(now)
            if ev:
                self.tx_buf = ch.tx_buf
                self.tx_start = ch.tx_start
                self.tx_end = ch.tx_end
                return ev
        return 0
