# Property tests for the IEC 62056-21 mode E sign-on: random bytes and random
# timing never raise, never wedge it (a valid sign-on afterwards still works),
# and the chunking of a valid sign-on never changes what the meter does.

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlms_micro.link import iec21

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REQ = b"/?12345678!\r\n"
ACK = b"\x06252\r\n"
IDENT = b"/DMI5\\2DLMSMICRO\r\n"


def pump(s, now, out):
    for _ in range(10):  # never more than a few events in a row
        ev = s.next_event(now)
        if ev == iec21.EV_NONE:
            return
        if ev == iec21.EV_SEND:
            out.append(("send", bytes(s.tx_buf[s.tx_start : s.tx_end])))
        elif ev == iec21.EV_BAUD:
            out.append(("line", s.baud, s.data_bits, s.parity, s.hdlc))
        else:
            assert ev == iec21.EV_RESET
            assert (s.baud, s.data_bits, s.parity, s.hdlc) == (300, 7, "E", False)
            out.append(("reset",))
    raise AssertionError("next_event never returned EV_NONE")


def feed(s, data, now, out, chunks=()):
    pos = 0
    sizes = list(chunks) + [len(data)]
    for c in sizes:
        piece = data[pos : pos + c]
        if not piece:
            break
        pos += len(piece)
        was_hdlc = s.hdlc
        n = s.feed(piece, 0, len(piece), now)
        assert n == (0 if was_hdlc else len(piece))
        if was_hdlc:
            s.touch(now)  # the port gives them to the HDLC link
        pump(s, now, out)


def sign_on(s, t, out):
    # A complete, well-timed sign-on from an idle meter starting at time t.
    feed(s, REQ, t, out)
    pump(s, t + 250, out)
    feed(s, ACK, t + 1000, out)
    pump(s, t + 1300, out)


# Random bytes, and pieces of valid and invalid messages so that the deeper
# states (acknowledgement, switch, HDLC) are reached too.
PIECES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(
        [REQ, ACK, b"/?!\r\n", b"/?1!\r\n", b"\x06242\r\n", b"\x06262\r\n", b"\x06050\r\n",
         b"\x01B0\x03q", REQ[:5], ACK[:3], b"\x7e\xa0\x07\x03\x21\x93\x0f\x01\x7e"]
    ),
)


@FAST
@given(
    st.lists(st.tuples(PIECES, st.integers(min_value=0, max_value=5000)), max_size=12),
    st.booleans(),
)
def test_random_input_never_raises_or_wedges(pieces, close):
    s = iec21.SignOn(address=b"12345678")
    out = []
    t = 0
    for data, dt in pieces:
        t += dt
        feed(s, data, t, out)
        pump(s, t, out)
        assert s.state in (
            iec21.IDLE,
            iec21.REQUEST,
            iec21.IDENT_WAIT,
            iec21.AWAIT_ACK,
            iec21.SWITCH,
            iec21.CONFIRM_WAIT,
            iec21.CONFIRM_SENT,
            iec21.HDLC,
        )
    for kind in out:
        if kind[0] == "send":
            assert kind[1] in (IDENT, b"\x06" + kind[1][1:4] + b"\r\n")
    # Whatever happened, the meter returns to 300 Bd on its own (a closed
    # link or the timeouts), and then a valid sign-on works.
    if close:
        s.link_closed(t)
    t += 200000
    pump(s, t, out)
    assert s.state == iec21.IDLE and s.baud == 300 and not s.hdlc
    out = []
    sign_on(s, t + 10, out)
    assert out[0] == ("send", IDENT)
    assert out[-1] == ("line", 9600, 8, "N", True)


@FAST
@given(st.binary(max_size=80))
def test_garbage_then_valid_sign_on_at_once(garbage):
    # Garbage followed after a pause (t_a) by a valid request: answered.
    s = iec21.SignOn(address=b"12345678")
    out = []
    feed(s, garbage, 0, out)
    pump(s, 1, out)
    if s.state >= iec21.SWITCH:
        return  # the garbage happened to hold a whole sign-on
    out = []
    sign_on(s, 2000, out)
    assert out[0] == ("send", IDENT)
    assert out[-1] == ("line", 9600, 8, "N", True)


@FAST
@given(st.lists(st.integers(min_value=1, max_value=7), max_size=20))
def test_chunking_does_not_change_the_sign_on(chunks):
    ref = iec21.SignOn(address=b"12345678")
    out_ref = []
    sign_on(ref, 0, out_ref)
    s = iec21.SignOn(address=b"12345678")
    out = []
    feed(s, REQ, 0, out, chunks)
    pump(s, 250, out)
    feed(s, ACK, 1000, out, chunks)
    pump(s, 1300, out)
    assert out == out_ref
    assert out_ref == [
        ("send", IDENT),
        ("line", 9600, 7, "E", False),
        ("send", b"\x06252\r\n"),
        ("line", 9600, 8, "N", True),
    ]
