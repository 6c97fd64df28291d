# Push setup (class 40) and DataNotification: the attributes and the push
# method through a whole channel, the scheduler (windows, randomisation,
# retries, the clock-aligned schedule) on a fake clock, the notification
# byte for byte, plain and ciphered (opened again by our own suite 0), and
# the push framings (wrapper header, HDLC UI frames). Portable.

from cosem_support import allocated, put
from dlms_micro import axdr, server
from dlms_micro.app import notify
from dlms_micro.cosem import base, clock, push
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.push import PUSH_SETUP, PushState
from dlms_micro.cosem.register import REGISTER
from dlms_micro.link import hdlc, wrapper
from dlms_micro.meter import Meter, Role
from dlms_micro.security import keys as ks
from dlms_micro.security import suite0
from dlms_micro.security.gcm import Gcm
from dlms_micro.security.suite0 import Suite0
from hdlc_peer import Frame
from keystore_support import AK, EK, TITLE, MemStorage
from support import unhex
from test_server import AARQ_PUBLIC, wrap, wsend

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"
EXPORT_LN = b"\x01\x00\x02\x08\x00\xff"
PUSH_LN = b"\x00\x00\x19\x09\x00\xff"  # 0.0.25.9.0.255
OBJECTS = (
    (40, PUSH_LN, 1, 0),
    (8, CLOCK_LN, 2, 0),
    (3, ENERGY_LN, 2, 0),
    (3, EXPORT_LN, 2, 0),
)
PARAM = (OBJECTS, 900, 32, 2)
T0 = 1782900000  # 2026-07-01 10:00:00 UTC, a Wednesday
CLOCK_ACC = ((b"\x01\x01\x01\x01\x01\x01\x01\x01\x01", b"\x00\x00\x00\x00\x00\x00"),)
REG_ACC = ((b"\x01\x01", b"\x00"),)
PUSH_ACC = ((b"\x01\x01\x03\x03\x03\x03\x03", b"\x01"),)
GET_PUSH = "C001C1 0028 0000190900FF %02X 00"


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


class Log:
    def __init__(self):
        self.lines = []

    def __call__(self, msg):
        self.lines.append(msg)


def make_meter(objects=OBJECTS, period=900, protection=None, **kw):
    # protection: a general-ciphering push's (kind, suite, recipient)
    param = (objects, period, 32, 2) + ((protection,) if protection else ())
    table = (
        (8, 0, CLOCK_LN, CLOCK, 0, CLOCK_ACC, None),
        (3, 0, ENERGY_LN, REGISTER, 10, REG_ACC, (0, 30)),
        (3, 0, EXPORT_LN, REGISTER, 11, REG_ACC, (0, 30)),
        (40, 0, PUSH_LN, PUSH_SETUP, 12, PUSH_ACC, param),
    )
    state = clock.initial_state() + [12345, 678, PushState(param, **kw)]
    m = Meter(table, (Role(16),), state, wall_clock=Wall(T0))
    m.log = Log()
    return m, table[3]


def dt(h, mi, s=0):
    # the 12 bytes the clock writes for 2026-07-01 h:mi:s UTC
    b = bytearray(12)
    axdr.put_date_time(b, 0, 2026, 7, 1, 3, h, mi, s, 0xFF, 0, 0)
    return bytes(b)


def dt_hex(h, mi, s=0):
    return dt(h, mi, s).hex()


# ---------------------------------------------------------------- the class


def session():
    m, obj = make_meter()
    ch = server.Channel(m, wrapper.WrapperServer(max_apdu=512))
    out = wsend(ch, wrap(AARQ_PUBLIC))
    assert unhex("A203020100") in out[0], out  # accepted
    return m, obj, ch


def request(ch, apdu_hex):
    out = wsend(ch, wrap(apdu_hex))
    assert len(out) == 1
    return out[0][8:]


def test_get_every_attribute_through_a_channel():
    m, obj, ch = session()
    assert request(ch, GET_PUSH % 2) == unhex(
        "C401C1 00 0104"
        "0204 120028 09060000190900FF 0F01 120000"
        "0204 120008 09060000010000FF 0F02 120000"
        "0204 120003 09060100010800FF 0F02 120000"
        "0204 120003 09060100020800FF 0F02 120000"
    )
    assert request(ch, GET_PUSH % 3) == unhex("C401C1 00 0203 1600 0900 1600")
    assert request(ch, GET_PUSH % 4) == unhex("C401C1 00 0100")
    assert request(ch, GET_PUSH % 5) == unhex("C401C1 00 120000")
    assert request(ch, GET_PUSH % 6) == unhex("C401C1 00 1100")
    assert request(ch, GET_PUSH % 7) == unhex("C401C1 00 120000")


def test_set_attributes_through_a_channel():
    m, obj, ch = session()
    st = push.state_of(m, obj)
    dest = b"127.0.0.1:4061".hex()
    assert request(ch, "C101C1 0028 0000190900FF 03 00 0203 1600 09%02X%s 1600" % (len(dest) // 2, dest)) == unhex("C501C1 00")
    assert st.destination() == b"127.0.0.1:4061" and st.service == push.TCP
    windows = "0102 0202 090C%s 090C%s 0202 19%s 090C%s" % (dt_hex(22, 0), dt_hex(23, 0), dt_hex(1, 0), dt_hex(2, 0))
    assert request(ch, "C101C1 0028 0000190900FF 04 00 " + windows) == unhex("C501C1 00")
    assert st.nwin == 2
    assert request(ch, "C101C1 0028 0000190900FF 05 00 12003C") == unhex("C501C1 00")
    assert request(ch, "C101C1 0028 0000190900FF 06 00 1103") == unhex("C501C1 00")
    assert request(ch, "C101C1 0028 0000190900FF 07 00 12001E") == unhex("C501C1 00")
    assert (st.randomisation, st.retries, st.delay) == (60, 3, 30)
    # read back (a date-time tag in a SET comes back as octet-string(12))
    assert request(ch, GET_PUSH % 4) == unhex("C401C1 00 " + windows.replace(" 19", " 090C"))
    assert request(ch, GET_PUSH % 3) == unhex("C401C1 00 0203 1600 090E%s 1600" % dest)


def test_set_refusals_change_nothing():
    m, obj, ch = session()
    st = push.state_of(m, obj)
    long_dest = "41" * 33  # one byte past destination_max
    assert request(ch, "C101C1 0028 0000190900FF 03 00 0203 1600 0921%s 1600" % long_dest) == unhex("C501C1 FA")
    assert request(ch, "C101C1 0028 0000190900FF 03 00 0203 1100 0900 1600") == unhex("C501C1 0C")
    three = "0103" + ("0202 090C%s 090C%s" % (dt_hex(1, 0), dt_hex(2, 0))) * 3
    assert request(ch, "C101C1 0028 0000190900FF 04 00 " + three) == unhex("C501C1 FA")
    bad_hour = dt(1, 0)[:5] + b"\x18" + dt(1, 0)[6:]
    one_bad = "0101 0202 090C%s 090C%s" % (dt_hex(1, 0), bad_hour.hex())
    assert request(ch, "C101C1 0028 0000190900FF 04 00 " + one_bad) == unhex("C501C1 FA")
    assert request(ch, "C101C1 0028 0000190900FF 04 00 0101 0202 0903010203 090C" + dt_hex(1, 0)) == unhex("C501C1 0C")
    assert request(ch, "C101C1 0028 0000190900FF 05 00 1103") == unhex("C501C1 0C")
    assert st.dest_len == 0 and st.nwin == 0 and st.randomisation == 0
    # push_object_list is static (read-only in the access rights too)
    assert put(_ctx(m), obj, 2, "0100") == base.READ_WRITE_DENIED


def _ctx(m):
    ctx = base.Context(m)
    ctx.r = axdr.Reader()
    return ctx


def test_method_push_triggers_a_push():
    m, obj, ch = session()
    st = push.state_of(m, obj)
    assert not st.pending
    assert request(ch, "C301C1 0028 0000190900FF 01 01 0F00") == unhex("C701C1 0000")
    assert st.pending
    assert push.due(m, obj, T0)  # no windows, no randomisation: at once
    push.sent(m, obj)
    assert not st.pending and st.pushes == 1
    assert request(ch, "C301C1 0028 0000190900FF 01 01 0900") == unhex("C701C1 0C00")


def test_push_object_list_streams_through_a_small_pdu():
    m, obj = make_meter()
    ctx = _ctx(m)
    ctx.buf = bytearray(64)
    ctx.limit = 40
    ctx.pos = 0
    ctx.cursor = 0
    assert PUSH_SETUP.get(ctx, obj, 2) == base.SUCCESS
    first = bytes(ctx.buf[0 : ctx.pos])
    assert ctx.cursor == 3 and len(first) == 2 + 2 * 18
    ctx.pos = 0
    assert PUSH_SETUP.get(ctx, obj, 2) == base.SUCCESS and ctx.cursor == 0
    assert first + bytes(ctx.buf[0 : ctx.pos]) == unhex(
        "0104"
        "0204 120028 09060000190900FF 0F01 120000"
        "0204 120008 09060000010000FF 0F02 120000"
        "0204 120003 09060100010800FF 0F02 120000"
        "0204 120003 09060100020800FF 0F02 120000"
    )


# ---------------------------------------------------------------- scheduling


def test_schedule_triggers_at_each_period_boundary():
    m, obj = make_meter(period=900)
    assert not push.due(m, obj, T0 + 10)  # first call: notes the period
    assert not push.due(m, obj, T0 + 899)
    assert push.due(m, obj, T0 + 900)
    push.sent(m, obj)
    assert not push.due(m, obj, T0 + 901)
    assert not push.due(m, obj, T0 + 1799)
    assert push.due(m, obj, T0 + 1800)


def test_randomised_start_stays_within_the_interval():
    m, obj = make_meter(period=0, randomisation=60)
    seq = [b"\x00\x00\x00", b"\xff\xff\xff", b"\x00\x00\x3c", b"\x00\x00\x3d", b"\x12\x34\x56"]
    for rnd in seq:
        m.random_bytes = lambda n, rnd=rnd: rnd
        push.trigger(m, obj)
        delay = ((rnd[0] << 16) | (rnd[1] << 8) | rnd[2]) % 61
        assert 0 <= delay <= 60
        for t in range(delay):
            assert not push.due(m, obj, T0 + t), (rnd, t)
        assert push.due(m, obj, T0 + delay)
        assert push.state_of(m, obj).next_at == T0 + delay
        push.sent(m, obj)
    # no random source: no delay
    m.random_bytes = None
    push.trigger(m, obj)
    assert push.due(m, obj, T0)


def test_retries_with_repetition_delay_then_give_up():
    m, obj = make_meter(period=0, retries=2, delay=30)
    push.trigger(m, obj)
    assert push.due(m, obj, T0)
    assert push.failed(m, obj, T0)
    assert not push.due(m, obj, T0 + 29)
    assert push.due(m, obj, T0 + 30)
    assert push.failed(m, obj, T0 + 30)
    assert push.due(m, obj, T0 + 60)
    assert not push.failed(m, obj, T0 + 60)  # third failure: given up
    st = push.state_of(m, obj)
    assert not st.pending and st.given_up == 1
    assert not push.due(m, obj, T0 + 1000)
    assert m.log.lines == ["push: given up after 3 attempts"]
    # a trigger while pending changes nothing
    assert push.trigger(m, obj)
    assert not push.trigger(m, obj)


def test_communication_windows_with_wildcards_and_the_day_wrap():
    m, obj = make_meter(period=0)
    ctx = _ctx(m)
    every_day = bytes((0xFF, 0xFF, 0xFF, 0xFF, 0xFF))
    w1 = (every_day + b"\x16\x00\x00\xff\x80\x00\xff").hex()  # 22:00 any day
    w2 = (every_day + b"\x02\x00\x00\xff\x80\x00\xff").hex()  # .. 02:00
    w3 = dt_hex(12, 0)  # 2026-07-01 12:00 .. 12:30
    w4 = dt_hex(12, 30)
    assert put(ctx, obj, 4, "0102 0202 090C%s 090C%s 0202 090C%s 090C%s" % (w1, w2, w3, w4)) == base.SUCCESS
    assert not push.in_window(m, obj, T0)  # 10:00
    assert push.in_window(m, obj, T0 + 2 * 3600 + 60)  # 12:01
    assert not push.in_window(m, obj, T0 + 3 * 3600)  # 13:00
    assert push.in_window(m, obj, T0 + 12 * 3600 + 60)  # 22:01
    assert push.in_window(m, obj, T0 + 15 * 3600)  # 01:00 next day
    assert not push.in_window(m, obj, T0 + 17 * 3600)  # 03:00 next day
    # a pending push waits for the window, then draws its random start
    st = push.state_of(m, obj)
    st.randomisation = 100
    m.random_bytes = lambda n: b"\x00\x00\x05"
    push.trigger(m, obj)
    assert not push.due(m, obj, T0)
    assert st.next_at is None
    t = T0 + 2 * 3600  # 12:00
    assert not push.due(m, obj, t)
    assert st.next_at == t + 5
    assert push.due(m, obj, t + 5)


# ---------------------------------------------------------------- notification


def expected_plain(invoke_id):
    return unhex(
        "0F %08X 0C%s 0204 0906 0000190900FF 090C%s 0600003039 06000002A6"
        % (invoke_id, dt_hex(10, 0), dt_hex(10, 0))
    )


def test_notification_bytes():
    m, obj = make_meter()
    n = notify.Notifier(m)
    buf = bytearray(128)
    end = n.encode(obj, buf, 8, len(buf), clock.now(m))
    assert n.start == 8 and not n.protected
    assert bytes(buf[8:end]) == expected_plain(1)
    # the invoke id counts; no time: date-time of length 0
    end = n.encode(obj, buf, 8, len(buf))
    assert bytes(buf[8:end]) == unhex("0F 00000002 00 0204 0906 0000190900FF 090C%s 0600003039 06000002A6" % dt_hex(10, 0))
    # parsed back with the generic decoder
    tag, body, e = axdr.decode(buf, 8 + 6, end)
    assert e == end and tag == axdr.STRUCTURE and body[3] == (axdr.DOUBLE_LONG_UNSIGNED, 678)


def test_missing_object_and_data_index_push_null():
    # not in the table, a data index, the whole object (attribute 0), an
    # attribute its class refuses
    objs = OBJECTS[:2] + ((3, b"\x01\x00\x63\x08\x00\xff", 2, 0), (3, ENERGY_LN, 2, 1), (3, ENERGY_LN, 0, 0),
                          (3, ENERGY_LN, 9, 0))
    m, obj = make_meter(objects=objs)
    buf = bytearray(128)
    n = notify.Notifier(m)
    end = n.encode(obj, buf, 0, len(buf))
    assert bytes(buf[0:end]) == unhex("0F 00000001 00 0206 0906 0000190900FF 090C%s 00 00 00 00" % dt_hex(10, 0))


def test_a_value_that_needs_an_association_pushes_null():
    # Association LN attribute 3 (associated_partners_id) reads the
    # association of the request; a push has none
    from dlms_micro.cosem.association_ln import ASSOCIATION_LN

    assoc_ln = b"\x00\x00\x28\x00\x00\xff"
    objs = (OBJECTS[0], (15, assoc_ln, 3, 0), OBJECTS[2])
    param = (objs, 0, 32, 2)
    table = (
        (15, 1, assoc_ln, ASSOCIATION_LN, -1, ((b"\x01" * 9, b"\x00" * 4),), None),
        (3, 0, ENERGY_LN, REGISTER, 0, REG_ACC, (0, 30)),
        (40, 0, PUSH_LN, PUSH_SETUP, 1, PUSH_ACC, param),
    )
    m = Meter(table, (Role(16),), [12345, PushState(param)], wall_clock=Wall(T0))
    n = notify.Notifier(m)
    buf = bytearray(64)
    end = n.encode(table[2], buf, 0, len(buf))
    assert bytes(buf[0:end]) == unhex("0F 00000001 00 0203 0906 0000190900FF 00 0600003039")


def test_notification_too_big_is_refused_with_a_log_line():
    m, obj = make_meter()
    n = notify.Notifier(m)
    buf = bytearray(40)
    assert n.encode(obj, buf, 0, len(buf), T0) == -1
    assert m.log.lines == ["push: the notification does not fit its buffer, not sent"]
    buf = bytearray(4)
    assert n.encode(obj, buf, 0, len(buf), T0) == -1


def keyed_meter(policy=0x60, **kw):
    m, obj = make_meter(**kw)
    m.keys = ks.KeyStore(MemStorage(), TITLE, ek=EK, ak=AK, policy=policy)
    return m, obj


def open_with_suite0(apdu):
    # The receiver: its own key store (the meter's keys) and suite 0.
    rx = Suite0(ks.KeyStore(MemStorage(), b"HES\x00\x00\x00\x00\x01", ek=EK, ak=AK), Gcm(tables=4))
    rx.enabled = 1
    b = bytearray(apdu)
    rx.unprotect(b, 0, len(b), 0)
    return rx, bytes(b[rx.start : rx.end])


def test_ciphered_notification_opens_with_suite0():
    m, obj = keyed_meter()
    n = notify.Notifier(m)
    buf = bytearray(8 + notify.HEADER_ROOM + 128 + notify.TRAILER)
    end = n.encode(obj, buf, 8, len(buf), T0)
    apdu = bytes(buf[n.start : end])
    assert n.protected and n.start >= 8
    # DB, system title, length, SC 0x30 (authenticated + encrypted), IC 1
    assert apdu[0:10] == unhex("DB 08") + TITLE
    assert apdu[11:16] == unhex("30 00000001")
    assert apdu[10] == len(apdu) - 11
    rx, plain = open_with_suite0(apdu)
    assert plain == expected_plain(1)
    assert rx.sc == 0x30 and rx.ic == 1
    # the next one takes the next counter
    end = n.encode(obj, buf, 8, len(buf), T0)
    assert bytes(buf[n.start + 12 : n.start + 16]) == unhex("00000002")


def test_authenticated_only_policy_sends_plaintext_with_a_tag():
    m, obj = keyed_meter(policy=0x20)
    n = notify.Notifier(m)
    buf = bytearray(200)
    end = n.encode(obj, buf, 8, len(buf), T0)
    apdu = bytes(buf[n.start : end])
    assert apdu[11] == 0x10
    assert apdu[16 : end - n.start - 12] == expected_plain(1)
    rx, plain = open_with_suite0(apdu)
    assert plain == expected_plain(1)


def test_policy_without_response_protection_sends_plain():
    m, obj = keyed_meter(policy=0x0C)
    n = notify.Notifier(m)
    buf = bytearray(200)
    end = n.encode(obj, buf, 8, len(buf), T0)
    assert not n.protected and bytes(buf[8:end]) == expected_plain(1)


def test_notification_allocates_nothing_on_micropython():
    # The encoder itself allocates nothing; reading the clock (a value and
    # the time stamp) costs its usual big ints of UTC seconds.
    m, obj = make_meter(objects=(OBJECTS[0], OBJECTS[2], OBJECTS[3]))
    n = notify.Notifier(m)
    buf = bytearray(128)
    used = allocated(lambda: n.encode(obj, buf, 8, len(buf)))
    assert used is None or used == 0, used
    m, obj = make_meter()
    n = notify.Notifier(m)
    with_clock = allocated(lambda: n.encode(obj, buf, 8, len(buf)))
    timed = allocated(lambda: n.encode(obj, buf, 8, len(buf), T0))
    print("notification: %s B; with a clock value: %s B; and its time stamp: %s B" % (used, with_clock, timed))
    assert timed is None or timed <= 512, timed


# ---------------------------------------------------------------- framing


def test_wrapper_push_frame():
    m, obj = make_meter()
    n = notify.Notifier(m)
    buf = bytearray(128)
    end = n.encode(obj, buf, 8, len(buf), T0)
    h = wrapper.push_frame(buf, n.start, end, 1)
    assert h == 0
    assert bytes(buf[0:8]) == unhex("0001 0001 0066 %04X" % (end - 8))
    assert bytes(buf[8:end]) == expected_plain(1)
    try:
        wrapper.push_frame(buf, 4, end, 1)
        assert False
    except ValueError:
        pass


def test_hdlc_ui_frame():
    apdu = expected_plain(1)
    out = bytearray(200)
    end = hdlc.ui_frames(out, 0, apdu, 0, len(apdu), 1, 17)
    f = Frame(out[0:end])
    assert f.kind() == "UI" and f.ctrl == 0x13 and not f.seg
    assert f.dest == 0xCD and bytes(f.src) == unhex("0223")
    assert bytes(f.info) == unhex("E6E700") + apdu
    assert hdlc.ui_frames(out, 0, apdu, 0, len(apdu), 1, 17) == end
    assert hdlc.ui_frames(bytearray(end - 1), 0, apdu, 0, len(apdu), 1, 17) == -1


def test_hdlc_ui_frames_segment_a_long_notification():
    apdu = bytes(range(200)) * 1
    out = bytearray(400)
    end = hdlc.ui_frames(out, 0, apdu, 0, len(apdu), 1, 300, client=16, max_info=64)
    frames = []
    s = 0
    while s < end:
        n = (((out[s + 1] & 7) << 8) | out[s + 2]) + 2
        frames.append(Frame(out[s : s + n]))
        s += n
    assert s == end and len(frames) == 4
    assert [f.ctrl for f in frames] == [0x03, 0x03, 0x03, 0x13]
    assert [f.seg for f in frames] == [True, True, True, False]
    assert bytes(frames[0].src) == unhex("0002 0459")  # 4-byte form: physical 300
    info = b"".join(bytes(f.info) for f in frames)
    assert [len(f.info) for f in frames] == [64, 64, 64, 11]
    assert info == unhex("E6E700") + apdu


def test_a_script_pushes_as_a_single_action_schedule_would():
    # The Blue Book's way to schedule a push: a Single action schedule runs a
    # Script table script whose action is the push setup's method push
    from dlms_micro.cosem import script

    push_script = b"\x00\x00\x0a\x00\x6c\xff"  # 0.0.10.0.108.255 push script table
    m, obj = make_meter(period=0)
    scripts = ((1, (script.action(2, 40, PUSH_LN, 1, axdr.INTEGER, 0),)),)
    m.extend(((9, 0, push_script, script.SCRIPT_TABLE, -1, ((b"\x01\x01", b"\x01"),), scripts),))
    assert script.execute(m, push_script, 1)
    assert push.state_of(m, obj).pending and m.log.lines == []
    assert push.due(m, obj, T0)
