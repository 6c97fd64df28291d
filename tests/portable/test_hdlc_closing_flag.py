# HDLC framing under unlucky timing (issue 18, DLMS UA test plan HDLC
# group; ISO/IEC 13239 frame structure): a frame is acted on only once its
# closing flag has arrived, and a closing flag long past (the inter-octet
# timeout expired) does not open the next frame. Runs under pytest and
# MicroPython.

from dlms_micro.link import hdlc
from hdlc_peer import LLC_REQ, Driver, Frame, iframe, snrm


def connect():
    d = Driver(hdlc.HdlcServer(), lambda req: b"R:" + req)
    out = d.send(snrm())
    assert len(out) == 1 and Frame(out[0]).kind() == "UA"
    return d


def test_frame_is_not_acted_on_before_its_closing_flag():
    d = connect()
    f = iframe(0, 0, LLC_REQ + b"\x01")
    assert d.send(f[:-1]) == []  # everything but the closing flag
    assert d.apdus == []
    out = d.send(f[-1:])
    assert d.apdus == [b"\x01"] and Frame(out[0]).is_i()


def test_frame_without_its_closing_flag_is_dropped_at_the_inter_octet_timeout():
    d = connect()
    f = iframe(0, 0, LLC_REQ + b"\x01")
    d.send(f[:-1])
    d.tick(30)
    assert d.send(b"") == [] and d.apdus == []
    assert d.link._wpos == 0
    out = d.send(f)  # sent again, whole
    assert d.apdus == [b"\x01"] and Frame(out[0]).is_i()


def test_good_fcs_followed_by_something_else_than_a_flag_is_not_a_frame():
    d = connect()
    f = iframe(0, 0, LLC_REQ + b"\x01")
    d.send(f[:-1] + b"\x55")
    assert d.apdus == []
    assert "not closed by a flag" in d.link.last_error


def test_closing_flag_long_past_does_not_open_the_next_frame():
    d = connect()
    d.tick(30)  # past the inter-octet timeout (25 ms)
    f = iframe(0, 0, LLC_REQ + b"\x01")
    assert d.send(f[1:]) == []  # flagless: no opening flag of its own
    assert d.apdus == []


def test_closing_flag_just_received_still_opens_the_next_frame():
    # back-to-back frames sharing one flag (ISO/IEC 13239 allows it)
    d = connect()
    d.tick(10)
    f = iframe(0, 0, LLC_REQ + b"\x01")
    out = d.send(f[1:])
    assert d.apdus == [b"\x01"] and Frame(out[0]).is_i()
