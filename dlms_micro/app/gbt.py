# General block transfer (GBT), DLMS UA 1000-2 (Green Book) 9.4.6.13: any
# xDLMS APDU, ciphered or not, travels split into general-block-transfer
# APDUs when the association negotiated the general-block-transfer
# conformance bit:
#
#   general-block-transfer [224] { block-control Unsigned8,
#       block-number Unsigned16, block-number-ack Unsigned16,
#       block-data OCTET STRING }
#   block-control: bit 7 last-block, bit 6 streaming, bits 5-0 window (how
#   many blocks the sender of this APDU is able to receive before it acks)
#
# Rules implemented here (the server side):
# - A request may come in GBT blocks, numbered from 1. Blocks are collected in
#   order; a block with streaming = 0 that is not the last asks for an
#   acknowledgement: a GBT APDU without data whose block-number-ack is the
#   last block received in sequence (a gap makes the client re-send from
#   the block after it). With streaming = 1 nothing is answered until the
#   window ends. The last block completes the request.
# - A response goes in GBT when the request came in GBT, or when the
#   channel decides so (see server.Channel: GBT negotiated without
#   block-transfer-with-get). Blocks are numbered from 1 and carry as
#   block-number-ack the number of the client's latest block. Up to the
#   client's window (from its last GBT APDU; 1 when its request came
#   whole) blocks are sent in a row, all but the last of the window with
#   streaming = 1, when the transport can send without being polled (the
#   wrapper; an HDLC secondary may not, so there every block waits for
#   the client's acknowledgement). The client acknowledges with
#   block-number-ack = the last block it received in sequence; the blocks
#   after it are sent again (lost-block recovery), then the next window.
# - Ciphered associations: the protected APDU is what is split (the channel
#   protects the whole response first; see server.Channel).
#
# Memory: one buffer of the channel's max PDU (allocated on first use) holds
# the request being collected, then the response: a response made whole
# (ciphered, or short) is copied in, a long attribute is streamed into it by
# cursor (xdlms.Services.gbt_more) as the blocks go out. Only the blocks the
# client has not acknowledged are kept, so the window actually used is
# limited to what fits in the buffer next to the next block being encoded.
# Block start offsets are kept in a preallocated 64-entry ring (the window
# is at most 63).

from dlms_micro import axdr

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


GENERAL_BLOCK_TRANSFER = const(0xE0)
LAST_BLOCK = const(0x80)
STREAMING = const(0x40)
WINDOW = const(0x3F)
HEADER = const(9)  # E0 block-control block-number(2) block-number-ack(2) length(<= 3)
MAX_BLOCK_NUMBER = const(0xFFFF)
# The window we announce: blocks of a request we take in a row (they are
# appended as they come, so any number would do; a gap discards the rest of
# the window until the client re-sends).
RX_WINDOW = const(8)

# take() results
TAKEN_SILENT = const(0)  # block taken, nothing to answer (streaming)
TAKEN_ACK = const(1)  # answer with ack()
TAKEN_COMPLETE = const(2)  # the request is whole in buf[0:rx_len]
TAKEN_TOO_LONG = const(3)  # the request does not fit the buffer: abandoned

_RING = const(63)  # block start offsets: ring index mask


class Gbt:
    def __init__(self, size):
        self.size = size
        self.buf = None  # bytearray(size), made on first use
        self.mv = None
        self.starts = [0] * (_RING + 1)
        self.log = None
        self.reset()

    def _error(self, msg):
        if self.log is not None:
            self.log(msg)

    def ready(self):
        # The buffer, made once on first use.
        if self.buf is None:
            self.buf = bytearray(self.size)
            self.mv = memoryview(self.buf)

    def reset(self):
        # Drop any transfer in either direction.
        self.receiving = False
        self.rx_n = 0  # last request block taken in sequence
        self.rx_len = 0
        self.client_window = 1
        self.client_block = 0  # number of the client's latest GBT APDU
        self.sending = False  # a response is under way (or sent, finished)
        self.finished = False  # its last block was sent
        self.streams = False  # the next block may follow at once (no ack awaited)
        self.tx_next = 1  # block to send next
        self.tx_sent = 0  # highest block sent
        self.tx_acked = 0  # highest block the client acknowledged
        self.win = 1
        self.can_stream = False
        self.bsize = 1
        self.s0 = 0  # stream offset of buf[0]
        self.blen = 0  # stream bytes in buf
        self.more = None  # services with a long attribute to continue, or None

    # ------------------------------------------------------------- parsing

    def parse(self, buf, s, e):
        # Read a GBT APDU at buf[s:e] into bc / bn / bna / data_start /
        # data_end; False when malformed (block-data must end the APDU).
        if e - s < 7 or buf[s] != GENERAL_BLOCK_TRANSFER:
            return False
        self.bc = buf[s + 1]
        self.bn = (buf[s + 2] << 8) | buf[s + 3]
        self.bna = (buf[s + 4] << 8) | buf[s + 5]
        p = s + 6
        n = buf[p]
        p += 1
        if n & 0x80:
            k = n & 0x7F
            if k < 1 or k > 2 or p + k > e:
                return False
            n = 0
            for _ in range(k):
                n = (n << 8) | buf[p]
                p += 1
        if p + n != e:
            return False
        self.data_start = p
        self.data_end = e
        return True

    # ------------------------------------------------------ receiving

    def take(self, buf):
        # Take the parsed request block (its data in buf). Returns a TAKEN_*.
        bn = self.bn
        bc = self.bc
        self.client_block = bn
        w = bc & WINDOW
        self.client_window = w if w else 1
        if bn == 1 or not self.receiving:
            self.ready()
            self.receiving = True
            self.rx_n = 0
            self.rx_len = 0
        if bn == self.rx_n + 1:
            n = self.data_end - self.data_start
            if self.rx_len + n > self.size:
                self._error("gbt: request longer than the buffer (%d bytes), abandoned" % (self.rx_len + n))
                self.receiving = False
                return TAKEN_TOO_LONG
            s = self.data_start
            self.buf[self.rx_len : self.rx_len + n] = memoryview(buf)[s : s + n]
            self.rx_len += n
            self.rx_n = bn
            if bc & LAST_BLOCK:
                self.receiving = False
                return TAKEN_COMPLETE
        elif bn > self.rx_n:
            self._error("gbt: request block %d out of sequence (expected %d)" % (bn, self.rx_n + 1))
        if bc & STREAMING:
            return TAKEN_SILENT
        return TAKEN_ACK

    def ack(self, out, o):
        # GBT APDU acknowledging the request blocks taken in sequence so far.
        return self._put(out, o, RX_WINDOW, 0, self.rx_n, 0)

    def _put(self, out, o, bc, bn, bna, n):
        out[o] = GENERAL_BLOCK_TRANSFER
        out[o + 1] = bc
        out[o + 2] = bn >> 8
        out[o + 3] = bn & 0xFF
        out[o + 4] = bna >> 8
        out[o + 5] = bna & 0xFF
        return axdr.put_length(out, o + 6, n)

    # ---------------------------------------------------------- sending

    def start(self, src, s, e, more, block_size, can_stream):
        # Send src[s:e] (the whole response, or its first piece when more
        # is the Services streaming the rest) in blocks of block_size bytes.
        self.ready()
        n = e - s
        self.buf[0:n] = memoryview(src)[s:e]
        self.s0 = 0
        self.blen = n
        self.more = more
        self.bsize = block_size
        self.sending = True
        self.finished = False
        self.tx_next = 1
        self.tx_sent = 0
        self.tx_acked = 0
        self.starts[1] = 0
        self.can_stream = can_stream
        self._set_window(self.client_window)
        self.streams = False

    def _set_window(self, w):
        # The window: the client's, if the transport can stream, bounded by
        # what the buffer keeps unacknowledged beside the block being made.
        if not self.can_stream or w < 1:
            w = 1
        room = self.size // self.bsize - 1
        if w > room:
            w = room if room > 0 else 1
        self.win = w

    def on_ack(self, bn, bna, window):
        # A client GBT APDU without data during a response: it acknowledges
        # block bna (the blocks after it are sent again) and sets its window.
        # Returns 1: send the next block, 0: nothing left to send, -1: bna
        # names a block never sent (the transfer is abandoned).
        self.client_block = bn
        if bna > self.tx_sent or bna < self.tx_acked:
            self._error("gbt: acknowledgement of block %d, sent %d..%d: transfer abandoned" % (bna, self.tx_acked, self.tx_sent))
            self.reset()
            return -1
        if bna < self.tx_sent:
            self._error("gbt: blocks %d..%d lost, sent again" % (bna + 1, self.tx_sent))
        self.tx_acked = bna
        self.tx_next = bna + 1
        self._set_window(window & WINDOW)
        if self.finished and bna == self.tx_sent:
            self.reset()  # all acknowledged
            return 0
        return 1

    def _fill(self, want):
        # Make the stream bytes up to offset want present in buf (as far as
        # the attribute goes); returns False when it failed.
        if want <= self.s0 + self.blen or self.more is None:
            return True
        buf = self.buf
        keep = self.starts[(self.tx_acked + 1) & _RING]  # first unacknowledged byte
        drop = keep - self.s0
        if drop > 0:
            # Move the unacknowledged bytes to the front.
            n = self.blen - drop
            for i in range(n):
                buf[i] = buf[drop + i]
            self.s0 = keep
            self.blen = n
        while self.s0 + self.blen < want and self.more is not None:
            p = self.more.gbt_more(buf, self.blen, self.size)
            if p < 0:
                self.more = None
                return False
            if p == self.blen:
                break  # the next item does not fit: a shorter block
            self.blen = p
            if not self.more.gbt_pending():
                self.more = None
        return True

    def block(self, out, o):
        # Write the next block at out[o:]; returns its end, or -1 when the
        # transfer failed (abandoned; the caller answers with a refusal).
        # Afterwards self.streams says whether the next block follows now.
        k = self.tx_next
        if k > MAX_BLOCK_NUMBER:
            self._error("gbt: response longer than 65535 blocks, abandoned")
            self.reset()
            return -1
        start = self.starts[k & _RING]
        if k <= self.tx_sent:
            # Sent before and lost: the same bytes again.
            end = self.starts[(k + 1) & _RING]
            last = k == self.tx_sent and self.finished
        else:
            if not self._fill(start + self.bsize):
                self._error("gbt: response abandoned at block %d" % k)
                self.reset()
                return -1
            avail = self.s0 + self.blen
            end = start + self.bsize
            if end > avail:
                end = avail
            if end == start and self.more is not None:
                self._error("gbt: an item of the response does not fit the buffer, abandoned")
                self.reset()
                return -1
            last = end == avail and self.more is None
            self.starts[(k + 1) & _RING] = end
        n = end - start
        streams = not last and k - self.tx_acked < self.win
        bc = self.win | (LAST_BLOCK if last else 0) | (STREAMING if streams else 0)
        p = self._put(out, o, bc, k, self.client_block, n)
        s = start - self.s0
        out[p : p + n] = self.mv[s : s + n]
        if k > self.tx_sent:
            self.tx_sent = k
        self.tx_next = k + 1
        self.streams = streams
        if last:
            # Kept until the client's next request, so that lost blocks can
            # still be sent again.
            self.finished = True
        return p + n
