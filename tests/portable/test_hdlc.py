# HDLC server link (IEC 62056-46): the behaviours a conformance test tool and
# a real head-end rely on. Runs under pytest and under MicroPython.

from dlms_micro import crc16
from dlms_micro.link import hdlc
from hdlc_peer import (
    LLC_REQ,
    LLC_RSP,
    Driver,
    Frame,
    disc,
    frame,
    iframe,
    rr,
    snrm,
    snrm_params,
)
from support import unhex

PUBLIC_SNRM = unhex("7EA00802232193BD647E")
PUBLIC_UA = unhex("7EA01F21022373E6C781801205019A06019A070400000001080400000001CCA27E")


def echo_reply(req):
    return b"R:" + req


def connect(link=None, reply=echo_reply, info=b"", **kw):
    link = link or hdlc.HdlcServer()
    d = Driver(link, reply)
    out = d.send(snrm(info, **kw))
    assert len(out) == 1 and Frame(out[0]).kind() == "UA"
    return d


def ua_params(f):
    info = f.info
    assert info[0] == 0x81 and info[1] == 0x80 and info[2] == len(info) - 3
    p = {}
    i = 3
    while i < len(info):
        n = info[i + 1]
        p[info[i]] = int.from_bytes(info[i + 2 : i + 2 + n], "big")
        i += 2 + n
    return p


# ---------------------------------------------------------------- checksums


def test_crc16_x25_check_value():
    assert crc16.fcs(b"123456789", 0, 9) == 0x906E


def test_public_example_frames_have_valid_hcs_and_fcs():
    f = Frame(PUBLIC_SNRM)
    assert f.kind() == "SNRM" and f.pf
    f = Frame(PUBLIC_UA)
    assert f.kind() == "UA" and len(f.info) == 21


# ---------------------------------------------------------------- SNRM / UA


def test_public_snrm_without_information_gets_ua_with_defaults():
    link = hdlc.HdlcServer()
    d = Driver(link)
    out = d.send(PUBLIC_SNRM)
    assert len(out) == 1
    f = Frame(out[0])
    assert f.kind() == "UA" and f.pf
    assert f.dest == 0x21 and f.src == b"\x02\x23"
    assert ua_params(f) == {5: 128, 6: 128, 7: 1, 8: 1}
    assert d.events == [hdlc.EV_CONNECTED]
    assert link.state == hdlc.NRM and link.client_address == 0x10


def test_ua_for_proposal_154_is_byte_exact_public_example():
    link = hdlc.HdlcServer(max_info_tx=154, max_info_rx=154)
    d = Driver(link)
    out = d.send(snrm(snrm_params(154, 154, 1, 1)))
    assert out == [PUBLIC_UA]


def test_snrm_negotiates_down_to_the_smaller_side():
    link = hdlc.HdlcServer(max_info_tx=512, max_info_rx=256, window_tx=3, window_rx=2)
    d = Driver(link)
    f = Frame(d.send(snrm(snrm_params(tx=1000, rx=300, wtx=7, wrx=2)))[0])
    # our tx limited by the client's rx (300); our rx by our own 256
    assert ua_params(f) == {5: 300, 6: 256, 7: 2, 8: 2}
    assert link.max_info_tx == 300 and link.max_info_rx == 256
    assert link.window_tx == 2 and link.window_rx == 2


def test_snrm_proposing_128_and_window_2_with_server_window_1():
    d = Driver(hdlc.HdlcServer())
    f = Frame(d.send(snrm(snrm_params(128, 128, 2, 2)))[0])
    assert ua_params(f) == {5: 128, 6: 128, 7: 1, 8: 1}


def test_snrm_proposing_128_and_window_2_with_server_window_7():
    d = Driver(hdlc.HdlcServer(window_tx=7, window_rx=7))
    f = Frame(d.send(snrm(snrm_params(128, 128, 2, 2)))[0])
    assert ua_params(f) == {5: 128, 6: 128, 7: 2, 8: 2}


def test_snrm_with_one_byte_parameter_values():
    d = Driver(hdlc.HdlcServer())
    info = b"\x81\x80\x0c\x05\x01\x40\x06\x01\x40\x07\x01\x01\x08\x01\x01"
    f = Frame(d.send(snrm(info))[0])
    assert ua_params(f) == {5: 64, 6: 64, 7: 1, 8: 1}


def test_malformed_snrm_parameters_refused_with_dm():
    link = hdlc.HdlcServer()
    d = Driver(link)
    out = d.send(snrm(b"\x81\x80\x05\x05\x09\x01"))
    assert Frame(out[0]).kind() == "DM"
    assert link.state == hdlc.NDM and d.events == []


def test_new_snrm_while_connected_resets_the_link():
    d = connect()
    out = d.send(iframe(0, 0, LLC_REQ + b"\xc0\x01"))
    assert Frame(out[0]).ns == 0 and d.link._vr == 1
    out = d.send(snrm())
    assert Frame(out[0]).kind() == "UA"
    assert d.events == [hdlc.EV_CONNECTED, hdlc.EV_CONNECTED]
    out = d.send(iframe(0, 0, LLC_REQ + b"\xc0\x02"))
    f = Frame(out[0])
    assert f.is_i() and f.ns == 0 and f.nr == 1


def test_server_address_forms_one_two_and_four_bytes():
    for size, upper, lower in ((1, 1, 0), (2, 1, 0x11), (4, 1, 0x11)):
        d = Driver(hdlc.HdlcServer(logical=1, physical=0x11))
        out = d.send(snrm(upper=upper, lower=lower, size=size))
        f = Frame(out[0])
        assert f.kind() == "UA", size
        assert len(f.src) == size  # answered from the address as it was used


def test_four_byte_address_with_wide_physical_address():
    d = Driver(hdlc.HdlcServer(logical=1, physical=0x1234))
    f = Frame(d.send(snrm(upper=1, lower=0x1234, size=4))[0])
    assert f.kind() == "UA" and f.src == bytes([0, 2, 0x24 << 1, (0x34 << 1) | 1])


# ---------------------------------------------------------------- DISC


def test_disc_when_disconnected_answers_dm():
    d = Driver(hdlc.HdlcServer())
    assert Frame(d.send(disc())[0]).kind() == "DM"


def test_disc_when_connected_answers_ua_and_ends_the_link():
    d = connect()
    out = d.send(disc())
    assert Frame(out[0]).kind() == "UA" and Frame(out[0]).info == b""
    assert d.link.state == hdlc.NDM
    assert d.events[-1] == hdlc.EV_DISCONNECTED
    assert Frame(d.send(disc())[0]).kind() == "DM"


def test_i_frame_when_disconnected_answers_dm():
    d = Driver(hdlc.HdlcServer(), echo_reply)
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01"))
    assert Frame(out[0]).kind() == "DM" and d.apdus == []


# ---------------------------------------------------------------- I-frames


def test_request_and_reply_in_single_frames():
    d = connect()
    out = d.send(iframe(0, 0, LLC_REQ + b"\xc0\x01\xc1"))
    assert d.apdus == [b"\xc0\x01\xc1"]
    f = Frame(out[0])
    assert f.is_i() and f.pf and not f.seg
    assert f.ns == 0 and f.nr == 1
    assert f.info == LLC_RSP + b"R:\xc0\x01\xc1"
    out = d.send(iframe(1, 1, LLC_REQ + b"\x02"))
    f = Frame(out[0])
    assert f.ns == 1 and f.nr == 2 and f.info == LLC_RSP + b"R:\x02"


def test_sequence_numbers_wrap_modulo_8():
    d = connect()
    for k in range(20):
        out = d.send(iframe(k & 7, k & 7, LLC_REQ + bytes([k])))
        f = Frame(out[0])
        assert f.ns == k & 7 and f.nr == (k + 1) & 7
        # the receive buffer does not creep: only the closing flag is kept
        assert d.link._wpos <= len(iframe(0, 0, LLC_REQ + bytes([k]))) + 1
    assert len(d.apdus) == 20


def test_no_reply_is_acknowledged_with_rr():
    d = connect(reply=lambda req: None)
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01"))
    f = Frame(out[0])
    assert f.kind() == "RR" and f.nr == 1


def test_information_field_without_llc_is_dropped_and_acknowledged():
    d = connect()
    out = d.send(iframe(0, 0, b"\xc0\x01"))
    assert d.apdus == [] and Frame(out[0]).kind() == "RR"
    assert "LLC" in d.link.last_error


def test_rr_poll_with_nothing_to_send_answers_rr():
    d = connect()
    f = Frame(d.send(rr(0))[0])
    assert f.kind() == "RR" and f.nr == 0


def test_rnr_then_rr():
    d = connect()
    out = d.send(frame(0x15))  # RNR, N(R)=0, P
    assert Frame(out[0]).kind() == "RR"
    assert d.link._peer_busy
    d.send(rr(0))
    assert not d.link._peer_busy


# ---------------------------------------------------------------- segmentation


def test_long_reply_segmented_window_1():
    big = bytes(range(256)) * 2  # 512 bytes
    d = connect(reply=lambda req: big)
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01"))
    got = b""
    frames = []
    nr = 1
    while True:
        assert len(out) == 1
        f = Frame(out[0])
        frames.append(f)
        assert f.is_i() and f.pf and len(f.info) <= 128
        got += f.info
        if not f.seg:
            break
        out = d.send(rr((f.ns + 1) & 7))
    assert got == LLC_RSP + big
    assert [f.ns for f in frames] == [0, 1, 2, 3, 4]
    assert all(f.nr == nr for f in frames)
    assert [f.seg for f in frames] == [True] * 4 + [False]


def test_long_reply_segmented_window_3():
    big = bytes([i & 0xFF for i in range(700)])
    link = hdlc.HdlcServer(window_tx=3, window_rx=3, max_info_tx=128)
    d = Driver(link, lambda req: big)
    d.send(snrm(snrm_params(128, 128, 3, 3)))
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01"))
    assert len(out) == 3
    fs = [Frame(x) for x in out]
    assert [f.pf for f in fs] == [False, False, True]  # F on the window's last
    assert [f.ns for f in fs] == [0, 1, 2]
    out2 = d.send(rr(3))
    fs2 = [Frame(x) for x in out2]
    assert [f.ns for f in fs2] == [3, 4, 5]
    assert [f.seg for f in fs2] == [True, True, False]
    got = b"".join(f.info for f in fs + fs2)
    assert got == LLC_RSP + big
    # the next request acknowledges everything
    out3 = d.send(iframe(1, 6, LLC_REQ + b"\x02"))
    assert Frame(out3[0]).ns == 6


def test_segmented_request_window_1():
    d = connect()
    apdu = bytes(range(200)) + bytes(100)
    data = LLC_REQ + apdu
    out = d.send(iframe(0, 0, data[:128], seg=True))
    f = Frame(out[0])
    assert f.kind() == "RR" and f.nr == 1
    out = d.send(iframe(1, 0, data[128:256], seg=True))
    assert Frame(out[0]).kind() == "RR" and Frame(out[0]).nr == 2
    out = d.send(iframe(2, 0, data[256:]))
    assert d.apdus == [apdu]
    f = Frame(out[0])
    assert f.is_i() and f.nr == 3 and f.seg
    assert f.info == (LLC_RSP + b"R:" + apdu)[:128]


def test_segmented_request_window_2_only_polled_frames_answered():
    link = hdlc.HdlcServer(window_tx=2, window_rx=2)
    d = Driver(link, echo_reply)
    d.send(snrm(snrm_params(128, 128, 2, 2)))
    apdu = bytes([7]) * 400
    data = LLC_REQ + apdu
    chunks = [data[i : i + 128] for i in range(0, len(data), 128)]
    assert len(chunks) == 4
    out = d.send(iframe(0, 0, chunks[0], pf=False, seg=True))
    assert out == []
    out = d.send(iframe(1, 0, chunks[1], pf=True, seg=True))
    assert Frame(out[0]).kind() == "RR" and Frame(out[0]).nr == 2
    out = d.send(iframe(2, 0, chunks[2], pf=False, seg=True))
    assert out == []
    out = d.send(iframe(3, 0, chunks[3], pf=True))
    assert d.apdus == [apdu]
    # reply of 405 bytes: 4 frames in windows of 2
    fs = [Frame(x) for x in out]
    assert len(fs) == 2 and fs[0].nr == 4 and not fs[0].pf and fs[1].pf


def test_segmented_request_too_long_for_reassembly_is_dropped():
    link = hdlc.HdlcServer(max_apdu=200)
    d = Driver(link, echo_reply)
    d.send(snrm())
    data = LLC_REQ + bytes(300)
    d.send(iframe(0, 0, data[:128], seg=True))
    d.send(iframe(1, 0, data[128:256], seg=True))
    out = d.send(iframe(2, 0, data[256:]))
    assert d.apdus == [] and Frame(out[0]).kind() == "RR"
    # and the link still works
    out = d.send(iframe(3, 0, LLC_REQ + b"\x05"))
    assert d.apdus == [b"\x05"]


# ---------------------------------------------------------------- retransmission


def test_repeated_poll_retransmits_the_lost_segment():
    big = bytes(300)
    d = connect(reply=lambda req: big)
    first = d.send(iframe(0, 0, LLC_REQ + b"\x01"))[0]
    second = d.send(rr(1))[0]
    # the client did not get `second`: it polls again with the same N(R)
    again = d.send(rr(1))
    assert again == [second]
    third = d.send(rr(2))[0]
    assert Frame(third).ns == 2 and not Frame(third).seg
    assert Frame(first).info + Frame(second).info + Frame(third).info == LLC_RSP + big


def test_repeated_i_frame_retransmits_reply_without_redelivering():
    d = connect()
    req = iframe(0, 0, LLC_REQ + b"\x42")
    first = d.send(req)
    again = d.send(req)
    assert again == first
    assert d.apdus == [b"\x42"]


def test_lost_reply_recovered_by_rr_with_old_nr():
    d = connect()
    first = d.send(iframe(0, 0, LLC_REQ + b"\x42"))
    # client never saw the I-frame: polls with N(R)=0 (still expects N(S)=0)
    again = d.send(rr(0))
    assert again == first


# ---------------------------------------------------------------- FRMR


def frmr_info(out):
    f = Frame(out[0])
    assert f.kind() == "FRMR", f.kind()
    return f.info


def test_unknown_control_field_gets_frmr_w():
    d = connect()
    info = frmr_info(d.send(frame(0x09 | 0x10)))  # REJ: not implemented
    assert info[0] == 0x19 and info[2] == hdlc.FRMR_W
    assert d.link.state == hdlc.FRMR_CONDITION


def test_invalid_nr_gets_frmr_z():
    d = connect()
    info = frmr_info(d.send(iframe(0, 3, LLC_REQ + b"\x01")))
    assert info[2] == hdlc.FRMR_Z
    assert d.apdus == []


def test_wrong_ns_gets_frmr():
    d = connect()
    info = frmr_info(d.send(iframe(2, 0, LLC_REQ + b"\x01")))
    assert info[2] == hdlc.FRMR_W and info[1] == 0  # V(R)=0, V(S)=0


def test_information_longer_than_negotiated_gets_frmr_y():
    link = hdlc.HdlcServer(max_info_rx=256)
    d = Driver(link, echo_reply)
    d.send(snrm(snrm_params(tx=64)))
    assert link.max_info_rx == 64
    info = frmr_info(d.send(iframe(0, 0, LLC_REQ + bytes(100))))
    assert info[2] == hdlc.FRMR_Y and d.apdus == []


def test_frame_larger_than_receive_buffer_gets_frmr_y():
    d = connect()
    out = d.send(iframe(0, 0, LLC_REQ + bytes(600)))
    assert frmr_info(out)[2] == hdlc.FRMR_Y


def test_information_field_on_rr_gets_frmr_x():
    d = connect()
    assert frmr_info(d.send(frame(0x11, b"\x01\x02")))[2] == hdlc.FRMR_X


def test_wrong_length_longer_than_frame_gets_frmr_after_inter_octet_timeout():
    d = connect()
    bad = frame(0x11 | (0 << 5), length_delta=3)  # RR claiming 3 bytes more
    assert d.send(bad) == []
    out = d.tick(30)
    assert frmr_info(out)[2] == hdlc.FRMR_W
    assert d.link.length_errors == 1


def test_wrong_length_shorter_than_frame_gets_frmr():
    d = connect()
    good = iframe(0, 0, LLC_REQ + b"\x01\x02\x03")
    # declare a length 2 bytes short; HCS recomputed so the header is valid
    body = bytearray(good[1:-1])
    length = len(body) - 2
    body[1] = length
    hlen = 2 + 2 + 1 + 1
    c = crc16.fcs(body, 0, hlen)
    body[hlen] = c & 0xFF
    body[hlen + 1] = c >> 8
    c = crc16.fcs(body, 0, len(body) - 2)
    body[-2] = c & 0xFF
    body[-1] = c >> 8
    out = d.send(b"\x7e" + bytes(body) + b"\x7e")
    assert frmr_info(out)[2] == hdlc.FRMR_W
    assert d.apdus == []


def test_frmr_condition_repeats_frmr_until_snrm_or_disc():
    d = connect()
    d.send(frame(0x19))
    assert frmr_info(d.send(rr(0)))[0] == 0x19
    assert frmr_info(d.send(iframe(0, 0, LLC_REQ + b"\x01"))) is not None
    assert d.apdus == []
    assert Frame(d.send(disc())[0]).kind() == "UA"
    assert d.link.state == hdlc.NDM


def test_frmr_condition_cleared_by_snrm():
    d = connect()
    d.send(frame(0x19))
    assert Frame(d.send(snrm())[0]).kind() == "UA"
    out = d.send(iframe(0, 0, LLC_REQ + b"\x07"))
    assert Frame(out[0]).is_i() and d.apdus == [b"\x07"]


# ---------------------------------------------------------------- input robustness


def test_one_byte_at_a_time():
    link = hdlc.HdlcServer()
    d = Driver(link, echo_reply)
    out = d.send(snrm(), chunk=1)
    assert Frame(out[0]).kind() == "UA"
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01\x02"), chunk=1)
    assert d.apdus == [b"\x01\x02"] and Frame(out[0]).is_i()


def test_several_frames_in_one_chunk():
    d = Driver(hdlc.HdlcServer(), echo_reply)
    data = snrm() + iframe(0, 0, LLC_REQ + b"\x01") + rr(1) + disc()
    out = d.send(data)
    kinds = [Frame(x).kind() for x in out]
    assert kinds == ["UA", "I", "RR", "UA"]
    assert d.events == [hdlc.EV_CONNECTED, hdlc.EV_DISCONNECTED]


def test_shared_flag_between_frames():
    d = Driver(hdlc.HdlcServer(), echo_reply)
    a = snrm()
    b = iframe(0, 0, LLC_REQ + b"\x01")
    out = d.send(a + b[1:])  # one flag closes a and opens b
    assert [Frame(x).kind() for x in out] == ["UA", "I"]


def test_garbage_between_frames_is_skipped():
    d = Driver(hdlc.HdlcServer(), echo_reply)
    junk = b"\x00\xff\x7e\x7e\x12\x34\x7e\xa0\x05\x7e\x55"
    out = d.send(junk + snrm() + b"\x01\x02\x03" + iframe(0, 0, LLC_REQ + b"\x09") + junk, chunk=5)
    assert [Frame(x).kind() for x in out] == ["UA", "I"]
    assert d.apdus == [b"\x09"]
    assert d.link.garbage_bytes > 0


def test_bad_fcs_dropped_and_counted():
    d = connect()
    f = bytearray(iframe(0, 0, LLC_REQ + b"\x01\x02"))
    f[-3] ^= 0xFF
    assert d.send(bytes(f)) == [] and d.tick(50) == []
    assert d.link.fcs_errors == 1 and d.apdus == []
    # the retry gets through
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01\x02"))
    assert Frame(out[0]).is_i()


def test_bad_hcs_dropped_and_counted():
    d = connect()
    f = bytearray(iframe(0, 0, LLC_REQ + b"\x01\x02"))
    f[8] ^= 0x01  # HCS low byte
    assert d.send(bytes(f)) == []
    d.tick(50)
    assert d.link.hcs_errors >= 1 and d.apdus == []


def test_frames_for_other_addresses_are_ignored():
    d = Driver(hdlc.HdlcServer(logical=1, physical=0x11), echo_reply)
    assert d.send(snrm(lower=0x12)) == []
    assert d.send(snrm(upper=2)) == []
    assert d.link.ignored_frames == 2 and d.link.state == hdlc.NDM


def test_own_echo_on_half_duplex_line_is_ignored():
    d = connect()
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01"))
    assert d.send(out[0]) == []  # the meter hears its own reply
    out2 = d.send(iframe(1, 1, LLC_REQ + b"\x02"))
    assert Frame(out2[0]).nr == 2 and d.apdus == [b"\x01", b"\x02"]


def test_echo_with_one_byte_server_address_is_ignored():
    link = hdlc.HdlcServer(logical=1)
    d = Driver(link, echo_reply)
    d.send(snrm(size=1, client=1))
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01", size=1, client=1))
    assert d.send(out[0]) == []
    assert d.apdus == [b"\x01"]


def test_broadcast_ui_is_delivered_but_never_answered():
    d = connect(reply=lambda req: b"should not be sent")
    out = d.send(frame(0x13, LLC_REQ + b"\x0e\x01", lower=0x7F))
    assert out == [] and d.apdus == [b"\x0e\x01"]


def test_client_address_must_be_one_byte():
    d = Driver(hdlc.HdlcServer())
    f = bytearray(snrm())
    # rebuild with a two-byte source address
    body = bytearray(b"\xa0\x09\x02\x23\x20\x21\x93")
    c = crc16.fcs(body, 0, len(body))
    data = b"\x7e" + bytes(body) + bytes([c & 0xFF, c >> 8]) + b"\x7e"
    assert d.send(data) == []
    assert d.link.state == hdlc.NDM


def test_frame_from_another_client_while_connected_gets_dm():
    d = connect()
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01", client=0x20))
    assert Frame(out[0]).kind() == "DM" and d.apdus == []
    assert d.link.state == hdlc.NRM


# ---------------------------------------------------------------- timeouts


def test_inactivity_timeout_disconnects():
    link = hdlc.HdlcServer(inactivity_timeout=1000)
    d = Driver(link, echo_reply)
    d.send(snrm())
    d.tick(999)
    assert link.state == hdlc.NRM
    d.tick(2)
    assert link.state == hdlc.NDM and d.events[-1] == hdlc.EV_DISCONNECTED
    assert Frame(d.send(iframe(0, 0, LLC_REQ + b"\x01"))[0]).kind() == "DM"


def test_inactivity_timer_restarts_on_each_frame_and_survives_tick_wrap():
    link = hdlc.HdlcServer(inactivity_timeout=1000)
    d = Driver(link, echo_reply)
    d.now = 0x3FFFFF00  # just before the tick counter wraps
    d.send(snrm())
    for _ in range(5):
        d.tick(600)
        d.send(rr(0))
    assert link.state == hdlc.NRM and d.now < 0x1000


def test_partial_frame_dropped_after_inter_octet_timeout():
    d = connect()
    part = iframe(0, 0, LLC_REQ + b"\x01")[:8]
    assert d.send(part) == []
    d.tick(30)
    assert d.link._wpos == 0
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01"))
    assert d.apdus == [b"\x01"] and Frame(out[0]).is_i()


def test_idle_line_after_a_frame_is_not_an_incomplete_frame():
    d = connect()
    d.link.last_error = None
    d.tick(30)
    d.tick(1000)
    assert d.link.garbage_bytes == 0 and d.link.last_error is None
    # a closing flag long past does not open the next frame (issue 18):
    # the next one comes with its own opening flag
    out = d.send(iframe(0, 0, LLC_REQ + b"\x01"))
    assert d.apdus == [b"\x01"] and Frame(out[0]).is_i()


# ---------------------------------------------------------------- allocation


def test_steady_state_request_reply_allocates_nothing_on_micropython():
    try:
        import micropython  # noqa: F401
        import gc
    except ImportError:
        return  # CPython: measured by tools/bench_alloc.py with tracemalloc
    link = hdlc.HdlcServer()
    d = Driver(link, None)
    d.send(snrm())
    req = iframe(0, 0, LLC_REQ + b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00")
    reply = b"\xc4\x01\xc1\x00\x06\x00\x00\x30\x39"
    s = link.TX_APDU_START
    link.tx_apdu[s : s + len(reply)] = reply
    n = len(req)
    seq = [iframe(k & 7, k & 7, LLC_REQ + b"\xc0\x01\xc1\x00\x03\x01\x00\x01\x08\x00\xff\x02\x00") for k in range(8)]

    def one(frm, now):
        link.feed(frm, 0, n, now)
        while True:
            ev = link.next_event(now)
            if ev == 0:
                return
            if ev == 2:
                link.send_apdu(s + 9)

    one(seq[0], 1)  # warm up
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for k in range(1, 40):
        one(seq[k & 7], k + 1)
    used = gc.mem_alloc() - a
    gc.enable()
    assert used == 0, used


def test_reply_may_start_after_room_left_for_a_header():
    link = hdlc.HdlcServer()
    d = Driver(link)
    d.send(snrm())
    link.feed(iframe(0, 0, LLC_REQ + b"\x01"), 0, len(iframe(0, 0, LLC_REQ + b"\x01")), 0)
    assert link.next_event(0) == hdlc.EV_APDU
    s = link.TX_APDU_START + 18
    link.tx_apdu[s : s + 3] = b"abc"
    link.send_apdu(s + 3, s)
    assert link.next_event(0) == hdlc.EV_SEND
    f = Frame(link.tx_buf[link.tx_start : link.tx_end])
    assert f.info == LLC_RSP + b"abc"


def test_ticks_diff_is_signed_across_the_wrap_and_allocates_nothing():
    from dlms_micro.ticks import ticks_diff

    assert ticks_diff(5, 0x3FFFFFFF) == 6
    assert ticks_diff(0x3FFFFFFF, 5) == -6
    assert ticks_diff(100, 300) == -200
    try:
        import gc

        import micropython  # noqa: F401
    except ImportError:
        return
    if not hasattr(gc, "mem_alloc"):
        return
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for i in range(20):
        ticks_diff(i, 1000)
    used = gc.mem_alloc() - a
    gc.enable()
    assert used == 0, used


class _GeneralOnly(hdlc.HdlcServer):
    # The link without its short ways (the usual I-frame taken by _fast,
    # the one-frame reply by _one_frame): every frame through _parse, every
    # reply through _send_segment.
    def _fast(self, now):
        return False

    def _one_frame(self, b, p):
        self._send_segment()


def _link_state(link):
    return (link.state, link.client_address, link._vs, link._vr, link._va, link.frames_ok, link.hcs_errors,
            link.fcs_errors, link.length_errors, link.garbage_bytes, link.ignored_frames, link.frmr_sent)


def test_short_ways_answer_as_the_general_path():
    # The same byte stream into a link with its short ways and one without:
    # the same frames out, APDUs, events, counters and sequence numbers,
    # over good requests, repeats, sequence and address errors, damaged
    # check sequences, segmentation, UI, RR, pipelined, chunked, long
    # replies, and a disconnect.
    get = LLC_REQ + unhex("C001C100030100010800FF0200")

    def reply(req):
        return b"R:" + req if req[-1] != 0x01 else bytes(300)  # a long reply for the last

    def bad_fcs(f):
        return f[:-3] + bytes([f[-3] ^ 1]) + f[-2:]

    def bad_hcs(f):
        return f[:9] + bytes([f[9] ^ 1]) + f[10:]

    steps = [
        (snrm(), 0),
        (iframe(0, 0, get), 0),
        (iframe(1, 1, get), 0),
        (iframe(1, 1, get), 0),  # the previous frame again
        (iframe(3, 2, get), 0),  # out of sequence: FRMR
        (snrm(), 0),
        (iframe(0, 0, get), 5),  # in pieces
        (iframe(1, 1, get) + iframe(2, 2, get), 0),  # two in one feed
        (b"\x00\x01" + iframe(3, 3, get), 0),  # garbage before it
        (bad_fcs(iframe(4, 4, get)), 0),
        (bad_hcs(iframe(4, 4, get)), 0),
        (iframe(4, 4, get, size=1), 0),
        (iframe(5, 5, get, size=4), 0),
        (iframe(6, 6, get, lower=0x12), 0),  # another meter
        (iframe(6, 6, get, upper=0x7F), 0),  # broadcast
        (iframe(6, 6, get, client=0x20), 0),  # another client
        (iframe(6, 6, unhex("C001C1")), 0),  # no LLC header
        (iframe(7, 7, get, pf=False), 0),
        (iframe(0, 0, get, seg=True) + iframe(1, 1, unhex("0200")), 0),
        (frame(0x13, get), 0),  # UI
        (rr(2), 0),
        (iframe(2, 2, get[:-1] + b"\x01"), 0),  # a reply in segments
        (rr(3), 0),
        (rr(4), 0),
        (iframe(3, 5, get), 0),
        (iframe(4, 5, get + bytes(200)), 0),  # longer than the information field
        (disc(), 0),
        (iframe(0, 0, get), 0),  # not connected: DM
    ]
    a = Driver(hdlc.HdlcServer(), reply)
    b = Driver(_GeneralOnly(), reply)
    for data, chunk in steps:
        out_a = a.send(data, chunk)
        out_b = b.send(data, chunk)
        assert out_a == out_b, (data, out_a, out_b)
        assert a.apdus == b.apdus and a.events == b.events, data
        assert _link_state(a.link) == _link_state(b.link), (data, _link_state(a.link), _link_state(b.link))
    assert a.link.frames_ok > 10 and len(a.apdus) > 6
