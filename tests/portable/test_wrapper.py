# TCP/UDP wrapper (IEC 62056-47). Runs under pytest and under MicroPython.

from dlms_micro.link import wrapper


def wpdu(apdu, src=0x10, dst=1, version=1, length=None):
    n = len(apdu) if length is None else length
    return bytes([version >> 8, version & 0xFF, src >> 8, src & 0xFF, dst >> 8, dst & 0xFF, n >> 8, n & 0xFF]) + apdu


class Driver:
    def __init__(self, link, reply):
        self.link = link
        self.reply = reply
        self.apdus = []
        self.sent = []
        self.closed = 0

    def send(self, data, chunk=0):
        link = self.link
        step = chunk or len(data) or 1
        for pos in range(0, len(data), step):
            piece = data[pos : pos + step]
            k = 0
            while k < len(piece):
                k += link.feed(piece, k, len(piece), 0)
                self.pump()
        self.pump()

    def pump(self):
        link = self.link
        while True:
            ev = link.next_event(0)
            if ev == wrapper.EV_NONE:
                return
            if ev == wrapper.EV_APDU:
                req = bytes(link.apdu_buf[link.apdu_start : link.apdu_end])
                self.apdus.append((link.source_wport, link.dest_wport, req))
                rsp = self.reply(req)
                if rsp is None:
                    link.send_apdu(-1)
                else:
                    s = link.TX_APDU_START
                    link.tx_apdu[s : s + len(rsp)] = rsp
                    link.send_apdu(s + len(rsp))
            elif ev == wrapper.EV_SEND:
                self.sent.append(bytes(link.tx_buf[link.tx_start : link.tx_end]))
            elif ev == wrapper.EV_CLOSE:
                self.closed += 1


def test_request_reply_swaps_wports():
    d = Driver(wrapper.WrapperServer(), lambda r: b"\xc4" + r)
    d.send(wpdu(b"\xc0\x01", src=0x10, dst=1))
    assert d.apdus == [(0x10, 1, b"\xc0\x01")]
    assert d.sent == [wpdu(b"\xc4\xc0\x01", src=1, dst=0x10)]


def test_green_book_style_header_bytes():
    d = Driver(wrapper.WrapperServer(), lambda r: b"\x61\x29")
    d.send(bytes.fromhex("0001001000010002" + "6000"))
    assert d.apdus[0][2] == b"\x60\x00"
    assert d.sent == [bytes.fromhex("00010001001000026129")]


def test_reassembly_one_byte_at_a_time_and_many_at_once():
    d = Driver(wrapper.WrapperServer(), lambda r: r)
    d.send(wpdu(b"abc") + wpdu(b"defg"), chunk=1)
    d.send(wpdu(b"x") + wpdu(b"yz") + wpdu(b"") + wpdu(bytes(300)))
    assert [a[2] for a in d.apdus] == [b"abc", b"defg", b"x", b"yz", b"", bytes(300)]
    assert len(d.sent) == 6


def test_wrong_version_closes_the_connection():
    link = wrapper.WrapperServer()
    d = Driver(link, lambda r: r)
    d.send(wpdu(b"abc", version=2))
    assert d.closed == 1 and d.apdus == [] and link.version_errors == 1
    assert "version" in link.last_error


def test_oversized_length_is_discarded_and_stream_stays_in_step():
    link = wrapper.WrapperServer(max_apdu=64)
    d = Driver(link, lambda r: r)
    d.send(wpdu(bytes(100)) + wpdu(b"ok"), chunk=7)
    assert link.oversized == 1
    assert [a[2] for a in d.apdus] == [b"ok"]


def test_oversized_message_is_answered_pdu_too_long_at_once():
    # issue 18: a message longer than the meter's maximum was dropped without
    # an answer; the client waited for its own timeout
    link = wrapper.WrapperServer(max_apdu=64)
    d = Driver(link, lambda r: r)
    d.send(wpdu(bytes(10), src=0x10, dst=1, length=1025))  # only its start has arrived
    assert d.sent == [wpdu(b"\xd8\x01\x04", src=1, dst=0x10)]
    assert "1025" in link.last_error and "pdu-too-long" in link.last_error
    d.send(bytes(1015) + wpdu(b"ok"))  # the rest is skipped, the next one served
    assert [a[2] for a in d.apdus] == [b"ok"]
    assert d.sent[1:] == [wpdu(b"ok", src=1, dst=0x10)]


def test_oversized_message_to_a_foreign_wport_is_not_answered():
    link = wrapper.WrapperServer(max_apdu=64, wports=(1,))
    d = Driver(link, lambda r: r)
    d.send(wpdu(bytes(100), dst=7))
    assert d.sent == [] and link.oversized == 1


def test_length_field_claiming_more_than_max_does_not_allocate_or_hang():
    link = wrapper.WrapperServer(max_apdu=64)
    d = Driver(link, lambda r: r)
    d.send(wpdu(b"", length=0xFFFF))
    assert link.oversized == 1 and d.apdus == []
    assert len(link.rx) == 72


def test_unknown_wport_is_ignored():
    link = wrapper.WrapperServer(wports=(1,))
    d = Driver(link, lambda r: r)
    lines = []
    link.log = lines.append
    d.send(wpdu(b"a", dst=5) + wpdu(b"b", dst=1))
    assert [a[2] for a in d.apdus] == [b"b"] and link.ignored == 1
    assert lines == ["wrapper: APDU for wPort 5, which is not this meter's (1), ignored"]


def test_no_reply_sends_nothing():
    d = Driver(wrapper.WrapperServer(), lambda r: None)
    d.send(wpdu(b"\x0e"))
    assert d.sent == [] and len(d.apdus) == 1


def test_reset_drops_a_partial_datagram():
    link = wrapper.WrapperServer()
    d = Driver(link, lambda r: r)
    d.send(wpdu(b"abcdef")[:10])
    link.reset()
    d.send(wpdu(b"g"))
    assert [a[2] for a in d.apdus] == [b"g"]


def test_steady_state_allocates_nothing_on_micropython():
    try:
        import micropython  # noqa: F401
        import gc
    except ImportError:
        return
    link = wrapper.WrapperServer()
    req = wpdu(b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00")
    n = len(req)
    s = link.TX_APDU_START

    def one():
        link.feed(req, 0, n, 0)
        while True:
            ev = link.next_event(0)
            if ev == 0:
                return
            if ev == 2:
                link.send_apdu(s + 9)

    one()
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(10):
        one()
    used = gc.mem_alloc() - a
    gc.enable()
    assert used == 0, used


def test_reply_may_start_after_room_left_for_a_header():
    link = wrapper.WrapperServer()
    req = wpdu(b"\x01")
    link.feed(req, 0, len(req), 0)
    assert link.next_event(0) == wrapper.EV_APDU
    s = link.TX_APDU_START + 18
    link.tx_apdu[s : s + 2] = b"ok"
    link.send_apdu(s + 2, s)
    assert link.next_event(0) == wrapper.EV_SEND
    assert bytes(link.tx_buf[link.tx_start : link.tx_end]) == wpdu(b"ok", src=1, dst=0x10)
