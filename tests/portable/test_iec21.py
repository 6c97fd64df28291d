# IEC 62056-21 mode E sign-on (link.iec21). Runs under pytest and under
# MicroPython.

from support import raises

from dlms_micro.link import iec21

REQ = b"/?!\r\n"
IDENT = b"/DMI5\\2DLMSMICRO\r\n"
ACK9600 = b"\x062" + b"5" + b"2\r\n"


class Port:
    # A stand-in for the port: records what the meter writes and the line
    # settings it is asked for, in order.
    def __init__(self, signon):
        self.s = signon
        self.log = []  # ("send", bytes) / ("line", baud, bits, parity, hdlc) / ("reset", ...)
        self.hdlc_bytes = b""

    def send(self, data, now, chunk=0):
        s = self.s
        step = chunk or len(data) or 1
        out = []
        for pos in range(0, len(data), step):
            piece = data[pos : pos + step]
            if s.hdlc:
                self.hdlc_bytes += piece
                s.touch(now)
            else:
                assert s.feed(piece, 0, len(piece), now) == len(piece)
            out += self.pump(now)
        return out

    def pump(self, now):
        s = self.s
        out = []
        while True:
            ev = s.next_event(now)
            if ev == iec21.EV_NONE:
                return out
            if ev == iec21.EV_SEND:
                item = ("send", bytes(s.tx_buf[s.tx_start : s.tx_end]))
            elif ev == iec21.EV_BAUD:
                item = ("line", s.baud, s.data_bits, s.parity, s.hdlc)
            else:
                assert ev == iec21.EV_RESET
                item = ("reset", s.baud, s.data_bits, s.parity, s.hdlc)
            self.log.append(item)
            out.append(item)


def signed_on(**kw):
    s = iec21.SignOn(**kw)
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    p.send(ACK9600, 1000)
    p.pump(1200)
    assert s.state == iec21.HDLC
    return s, p


def test_identification_message_exact_bytes():
    s = iec21.SignOn()
    p = Port(s)
    assert p.send(REQ, 0) == []  # nothing before the reaction time
    assert p.pump(199) == []
    assert p.pump(200) == [("send", b"/DMI5\\2DLMSMICRO\r\n")]
    assert s.state == iec21.AWAIT_ACK
    s = iec21.SignOn(manufacturer=b"ABC", identification=b"X1", max_baud_char=b"6")
    p = Port(s)
    p.send(REQ, 0)
    assert p.pump(300) == [("send", b"/ABC6\\2X1\r\n")]


def test_full_sign_on_without_address():
    s = iec21.SignOn()
    p = Port(s)
    assert (s.baud, s.data_bits, s.parity, s.hdlc) == (300, 7, "E", False)
    p.send(REQ, 0)
    assert p.pump(250) == [("send", IDENT)]
    # the acknowledgement: switch to 9600 Bd, still 7E1, at once
    assert p.send(ACK9600, 1000) == [("line", 9600, 7, "E", False)]
    # the switch confirm at the new rate after the reaction time, then 8N1
    assert p.pump(1100) == []
    assert p.pump(1200) == [("send", b"\x06252\r\n"), ("line", 9600, 8, "N", True)]
    assert s.state == iec21.HDLC and s.hdlc and s.signons == 1
    # from now on the bytes are the HDLC link's
    assert s.feed(b"\x7e\xa0", 0, 2, 1300) == 0


def test_full_sign_on_with_address():
    s = iec21.SignOn(address=b"12345678")
    p = Port(s)
    p.send(b"/?12345678!\r\n", 0)
    assert p.pump(200) == [("send", IDENT)]
    p.send(ACK9600, 900)
    assert p.pump(1100)[-1] == ("line", 9600, 8, "N", True)


def test_request_without_address_is_answered_by_an_addressed_meter():
    s = iec21.SignOn(address=b"12345678")
    p = Port(s)
    p.send(REQ, 0)
    assert p.pump(200) == [("send", IDENT)]


def test_other_device_address_gets_silence():
    for req in (b"/?87654321!\r\n", b"/?1234567!\r\n", b"/?123456789!\r\n"):
        s = iec21.SignOn(address=b"12345678")
        p = Port(s)
        p.send(req, 0)
        assert p.pump(5000) == []
        assert s.state == iec21.IDLE
    s = iec21.SignOn()  # no address: only requests without one
    p = Port(s)
    p.send(b"/?1!\r\n", 0)
    assert p.pump(5000) == [] and s.state == iec21.IDLE


def test_leading_zeros_of_the_address_are_ignored():
    for ours, theirs in ((b"42", b"0042"), (b"0042", b"42"), (b"0", b"000"), (b"007", b"7")):
        s = iec21.SignOn(address=ours)
        p = Port(s)
        p.send(b"/?" + theirs + b"!\r\n", 0)
        assert p.pump(200) == [("send", IDENT)], (ours, theirs)
    for ours, theirs in ((b"42", b"0420"), (b"42", b"0"), (b"0", b"00A")):
        s = iec21.SignOn(address=ours)
        p = Port(s)
        p.send(b"/?" + theirs + b"!\r\n", 0)
        assert p.pump(200) == [], (ours, theirs)
    s = iec21.SignOn(address=b"42", ignore_leading_zeros=False)
    p = Port(s)
    p.send(b"/?042!\r\n", 0)
    assert p.pump(200) == []


def test_address_of_32_characters_and_too_long():
    a = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ 12345"
    s = iec21.SignOn(address=a)
    p = Port(s)
    p.send(b"/?" + a + b"!\r\n", 0)
    assert p.pump(200) == [("send", IDENT)]
    s = iec21.SignOn(address=a)
    p = Port(s)
    p.send(b"/?" + a + b"6!\r\n", 0)
    assert p.pump(5000) == [] and s.state == iec21.IDLE
    raises(ValueError, iec21.SignOn, b"DMI", b"X", b"5", a + b"6")


def test_noise_before_the_request_is_skipped():
    s = iec21.SignOn()
    p = Port(s)
    p.send(b"\x00\xff?!\r\nabc\x06252\r\n" + REQ, 0)
    assert p.pump(200) == [("send", IDENT)]
    assert s.garbage_bytes > 0


def test_bit_7_is_dropped_so_7e1_read_as_8n1_works():
    # "/?!" CR LF with the even parity bit set where it belongs
    def par(c):
        n = 0
        for k in range(7):
            n += (c >> k) & 1
        return c | 0x80 if n & 1 else c

    s = iec21.SignOn()
    p = Port(s)
    p.send(bytes(par(c) for c in REQ), 0)
    assert p.pump(200) == [("send", IDENT)]


def test_byte_at_a_time_sign_on():
    s = iec21.SignOn(address=b"42")
    p = Port(s)
    t = 0
    for c in b"/?42!\r\n":
        t += 34
        p.send(bytes([c]), t)
    assert p.pump(t + 200) == [("send", IDENT)]
    t += 1000
    for c in ACK9600:
        t += 34
        p.send(bytes([c]), t)
    assert p.log[-1] == ("line", 9600, 7, "E", False)
    p.pump(t + 200)
    assert s.state == iec21.HDLC


def test_halfway_request_times_out_to_idle():
    s = iec21.SignOn()
    p = Port(s)
    p.send(b"/?", 0)
    assert s.state == iec21.REQUEST
    assert p.pump(1500) == [] and s.state == iec21.REQUEST
    assert p.pump(1501) == [] and s.state == iec21.IDLE
    assert s.timeouts == 1
    # the rest of the old request, late, is not a request
    p.send(b"!\r\n", 1600)
    assert p.pump(3000) == []


def test_late_rest_of_request_is_not_joined_without_next_event():
    s = iec21.SignOn()
    p = Port(s)
    assert s.feed(b"/?", 0, 2, 0) == 2
    assert s.feed(b"!\r\n", 0, 3, 2000) == 3  # 2 s gap: the first part expired
    assert s.state == iec21.IDLE
    assert p.pump(3000) == []


def test_no_acknowledgement_times_out_to_idle():
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    # 18 characters at 300 Bd take 600 ms; then t_r max 1500 ms
    assert p.pump(200 + 600 + 1500) == [] and s.state == iec21.AWAIT_ACK
    assert p.pump(200 + 600 + 1501) == [] and s.state == iec21.IDLE
    assert s.timeouts == 1
    p.send(ACK9600, 2400)  # too late
    assert p.pump(5000) == [] and s.baud == 300


def test_halfway_acknowledgement_times_out():
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    p.send(b"\x0625", 1000)
    assert p.pump(2500) == [] and s.state == iec21.AWAIT_ACK
    assert p.pump(2501) == [] and s.state == iec21.IDLE


def test_client_may_repeat_the_request():
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    p.send(REQ, 3000)
    assert p.pump(3200) == [("send", IDENT)]
    p.send(ACK9600, 4000)
    p.pump(4200)
    assert s.state == iec21.HDLC


def test_lower_baud_rate_is_accepted_higher_refused():
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    assert p.send(b"\x06232\r\n", 1000) == [("line", 2400, 7, "E", False)]
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    assert p.send(b"\x06262\r\n", 1000) == []
    assert s.state == iec21.IDLE and s.refused == 1 and s.baud == 300
    assert p.pump(9000) == []


def test_mode_c_or_programming_acknowledgement_is_refused():
    for ack in (b"\x06050\r\n", b"\x06051\r\n", b"\x06252\r", b"\x06152\r\n", b"\x06250\r\n", b"\x06259\r\n"):
        s = iec21.SignOn()
        p = Port(s)
        p.send(REQ, 0)
        p.pump(200)
        p.send(ack, 1000)
        assert p.pump(1000) == [] and p.pump(9000) == []
        assert s.state == iec21.IDLE and s.baud == 300
    # and a sign-on afterwards works
    p.send(REQ, 10000)
    assert p.pump(10200) == [("send", IDENT)]


def test_break_or_garbage_after_identification():
    for junk in (b"\x01B0\x03q", b"\x15", b"xyz"):
        s = iec21.SignOn()
        p = Port(s)
        p.send(REQ, 0)
        p.pump(200)
        p.send(junk, 1000)
        assert s.state == iec21.IDLE
        p.send(ACK9600, 1100)
        assert p.pump(2000) == [] and s.baud == 300


def test_without_switch_confirm():
    s = iec21.SignOn(switch_confirm=False)
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    assert p.send(b"\x06242\r\n", 1000) == [("line", 4800, 8, "N", True)]
    assert s.state == iec21.HDLC


def test_lower_case_third_letter_means_20_ms_reaction():
    s = iec21.SignOn(manufacturer=b"DMi")
    p = Port(s)
    p.send(REQ, 0)
    assert p.pump(19) == []
    assert p.pump(20) == [("send", b"/DMi5\\2DLMSMICRO\r\n")]


def test_link_closed_returns_to_300():
    s, p = signed_on()
    s.link_closed(5000)
    assert p.pump(5000) == [("reset", 300, 7, "E", False)]
    assert s.state == iec21.IDLE and not s.hdlc
    assert p.pump(6000) == []  # only once
    s.link_closed(6000)  # already idle: nothing
    assert p.pump(6000) == []
    p.send(REQ, 7000)
    assert p.pump(7200) == [("send", IDENT)]


def test_inactivity_returns_to_300():
    s, p = signed_on()
    p.send(b"\x7e\xa0\x07", 10000)  # HDLC traffic keeps it open
    assert p.pump(10000 + 120000) == []
    assert p.pump(10000 + 120001) == [("reset", 300, 7, "E", False)]
    assert s.state == iec21.IDLE


def test_bytes_fed_in_hdlc_state_are_not_taken_but_count_as_activity():
    s, p = signed_on()
    for k in range(1, 5):
        assert s.feed(b"\x7e", 0, 1, k * 100000) == 0
        assert p.pump(k * 100000) == []
    assert s.feed(b"\x7e", 0, 0, 500000) == 0  # nothing fed: no activity
    assert p.pump(520001) == [("reset", 300, 7, "E", False)]


def test_link_closed_during_switch_resets_the_line():
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    p.send(ACK9600, 1000)
    assert s.state == iec21.CONFIRM_WAIT and s.baud == 9600
    s.link_closed(1050)
    assert p.pump(1050) == [("reset", 300, 7, "E", False)]


def test_bytes_between_acknowledgement_and_hdlc_are_dropped():
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    p.pump(200)
    p.send(ACK9600 + b"\x7e\xa0", 1000)
    p.pump(1200)
    assert s.state == iec21.HDLC and p.hdlc_bytes == b""


def test_request_not_answered_after_reaction_time_max():
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, 0)
    assert p.pump(1501) == [] and s.state == iec21.IDLE
    assert s.timeouts == 1
    p.send(REQ, 2000)
    assert p.pump(3500) == [("send", IDENT)]


def test_ticks_wrap():
    t0 = (1 << 30) - 100
    s = iec21.SignOn()
    p = Port(s)
    p.send(REQ, t0)
    assert p.pump((t0 + 199) & ((1 << 30) - 1)) == []
    assert p.pump((t0 + 200) & ((1 << 30) - 1)) == [("send", IDENT)]


def test_bad_configuration_is_rejected():
    raises(ValueError, iec21.SignOn, b"DM")
    raises(ValueError, iec21.SignOn, b"D1I")
    raises(ValueError, iec21.SignOn, b"DMI", b"ABCDEFGHIJKLMNO")  # 15 + "\2"
    raises(ValueError, iec21.SignOn, b"DMI", b"A/B")
    raises(ValueError, iec21.SignOn, b"DMI", b"A\\B")
    raises(ValueError, iec21.SignOn, b"DMI", b"AB", b"7")
    iec21.SignOn(b"DMI", b"ABCDEFGHIJKLMN")  # 14 + "\2" = 16


def test_steady_state_allocates_nothing_on_micropython():
    try:
        import micropython  # noqa: F401
        import gc
    except ImportError:
        return
    if not hasattr(gc, "mem_alloc"):
        return  # CPython with a folder named micropython on sys.path
    s = iec21.SignOn(address=b"12345678")
    req = b"/?12345678!\r\n"
    other = b"/?87654321!\r\n"
    ack = b"\x06252\r\n"
    noise = b"\x00\x55\xaa\xff garbage"

    def one(t):
        s.feed(noise, 0, len(noise), t)
        s.feed(other, 0, len(other), t)
        s.feed(req, 0, len(req), t)
        while s.next_event(t + 200):
            pass
        s.feed(ack, 0, len(ack), t + 1000)
        while s.next_event(t + 1000):
            pass
        while s.next_event(t + 1300):
            pass
        s.touch(t + 1400)
        s.link_closed(t + 1500)
        while s.next_event(t + 1500):
            pass
        for i in range(len(req)):
            s.feed(req, i, i + 1, t + 2000)
        s.next_event(t + 5000)  # timeouts to idle
        s.next_event(t + 9000)

    one(0)  # warm up
    assert s.signons == 1
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for k in range(1, 20):
        one(k * 10000)
    used = gc.mem_alloc() - a
    gc.enable()
    assert s.signons == 20
    assert used == 0, used


def test_sign_on_then_hdlc_session_then_back_to_300():
    # The whole optical-port path as a port drives it: the sign-on first,
    # bytes it does not take go to the HDLC link, and the link's end takes
    # the line back to 300 Bd for the next sign-on.
    from dlms_micro.link import hdlc
    from hdlc_peer import Frame, disc, snrm

    s = iec21.SignOn()
    link = hdlc.HdlcServer()
    wire = []  # what the meter writes, with the line settings it used

    def line():
        return (s.baud, s.data_bits, s.parity)

    def rx(data, now):
        n = s.feed(data, 0, len(data), now)
        if n < len(data):
            k = n
            while k < len(data):
                k += link.feed(data, k, len(data), now)
                run(now)
        run(now)

    def run(now):
        while True:
            ev = s.next_event(now)
            if ev == iec21.EV_NONE:
                break
            if ev == iec21.EV_SEND:
                wire.append((line(), bytes(s.tx_buf[s.tx_start : s.tx_end])))
            elif ev == iec21.EV_RESET:
                link.disconnect()
        while True:
            ev = link.next_event(now)
            if ev == hdlc.EV_NONE:
                break
            if ev == hdlc.EV_SEND:
                wire.append((line(), bytes(link.tx_buf[link.tx_start : link.tx_end])))
            elif ev == hdlc.EV_DISCONNECTED:
                s.link_closed(now)
        if s.next_event(now) == iec21.EV_RESET:  # after the link closed
            link.disconnect()

    rx(REQ, 0)
    run(250)
    rx(ACK9600, 1000)
    run(1300)
    assert s.hdlc
    rx(snrm(), 1500)
    rx(disc(), 2000)
    assert not s.hdlc and line() == (300, 7, "E")
    assert wire[0] == ((300, 7, "E"), IDENT)
    assert wire[1] == ((9600, 7, "E"), b"\x06252\r\n")
    assert wire[2][0] == (9600, 8, "N") and Frame(wire[2][1]).kind() == "UA"
    assert wire[3][0] == (9600, 8, "N") and Frame(wire[3][1]).kind() == "UA"
    # and the next sign-on works
    rx(REQ, 3000)
    run(3300)
    assert wire[4] == ((300, 7, "E"), IDENT)
