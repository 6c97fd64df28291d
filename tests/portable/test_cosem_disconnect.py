# Disconnect control (class 70): every control mode's allowed and forbidden
# transitions (remote, manual, local) against the Blue Book table, the
# relay hook, persistence, and GET/SET/ACTION through a real Channel.

from cosem_support import act, allocated, get_ok, make, put
from dlms_micro import server
from dlms_micro.cosem import base, disconnect
from dlms_micro.cosem.disconnect import CONNECTED, DISCONNECT_CONTROL, DISCONNECTED, READY_FOR_RECONNECTION
from dlms_micro.link import wrapper
from support import unhex
from test_server import AARQ_PUBLIC, wrap, wsend

DC_LN = b"\x00\x00\x60\x03\x0a\xff"
DC_ACC = ((b"\x01\x01\x01\x03", b"\x01\x01"), (b"\x01\x01\x01\x03", b"\x01\x01"))

D = DISCONNECTED
C = CONNECTED
R = READY_FOR_RECONNECTION

# The Blue Book table: transitions each control_mode allows.
ALLOWED = {
    0: "",
    1: "bcdefg",
    2: "abcefg",
    3: "bcdeg",
    4: "abceg",
    5: "bcdefgh",
    6: "bcdegh",
}
# transition letter -> (trigger, from, to)
LETTERS = {
    "a": ("remote_reconnect", D, C),
    "b": ("remote_disconnect", C, D),
    "c": ("remote_disconnect", R, D),
    "d": ("remote_reconnect", D, R),
    "e": ("manual_reconnect", R, C),
    "f": ("manual_disconnect", C, R),
    "g": ("local_disconnect", C, R),
    "h": ("local_reconnect", R, C),
}


class Relay:
    def __init__(self):
        self.calls = []

    def __call__(self, index, closed):
        self.calls.append((index, closed))


class Store:
    def __init__(self):
        self.d = {}

    def get(self, k):
        return self.d.get(k)

    def put(self, k, v):
        self.d[k] = bytes(v)


def setup(mode=1, cs=CONNECTED, index=0, storage=None):
    table = ((70, 0, DC_LN, DISCONNECT_CONTROL, 0, DC_ACC, (index,)),)
    ctx = make(table, disconnect.initial_state(mode, cs, storage, "dc"))
    relay = Relay()
    ctx.meter.relay = relay
    return ctx, table[0], relay


def trigger(ctx, obj, name):
    # -> (state changed, action-result for the methods)
    m = ctx.meter
    before = disconnect.control_state(m, obj)
    if name == "remote_disconnect":
        res = act(ctx, obj, 1, "0F00")[0]
    elif name == "remote_reconnect":
        res = act(ctx, obj, 2, "0F00")[0]
    else:
        res = base.SUCCESS if getattr(disconnect, name)(m, obj) else None
    return disconnect.control_state(m, obj) != before, res


def expected(mode, name, frm):
    # the state the table says a trigger leads to from frm (frm: none)
    for letter in ALLOWED[mode]:
        t = LETTERS[letter]
        if t[0] == name and t[1] == frm:
            return t[2]
    return frm


TRIGGERS = ("remote_disconnect", "remote_reconnect", "manual_reconnect", "manual_disconnect", "local_disconnect",
            "local_reconnect")


def check_mode(mode):
    # every trigger from every state does what the table says; returns the
    # relay switchings seen
    ctx, obj, relay = setup(mode)
    st = ctx.meter.state
    n = 0
    for name in TRIGGERS:
        for frm in (D, C, R):
            if mode == 0 and frm != C:
                continue  # mode 0 is always connected
            st[0] = frm
            relay.calls = []
            trigger(ctx, obj, name)
            to = expected(mode, name, frm)
            assert st[0] == to, (mode, name, frm, st[0])
            if (frm == C) != (to == C):
                assert relay.calls == [(0, to == C)], (mode, name, frm)
                n += 1
            else:
                assert relay.calls == []
    # and every letter the mode allows is one of them
    for letter in ALLOWED[mode]:
        name, frm, to = LETTERS[letter]
        assert expected(mode, name, frm) == to
    return n


# relay switchings: the letters among a b e f g h each mode allows
def test_mode_0_transitions():
    assert check_mode(0) == 0


def test_mode_1_transitions():
    assert check_mode(1) == 4  # b e f g


def test_mode_2_transitions():
    assert check_mode(2) == 5  # a b e f g


def test_mode_3_transitions():
    assert check_mode(3) == 3  # b e g


def test_mode_4_transitions():
    assert check_mode(4) == 4  # a b e g


def test_mode_5_transitions():
    assert check_mode(5) == 5  # b e f g h


def test_mode_6_transitions():
    assert check_mode(6) == 4  # b e g h


def test_remote_methods_refused_in_mode_0():
    ctx, obj, relay = setup(0)
    assert act(ctx, obj, 1, "0F00")[0] == disconnect.REFUSED == base.TEMPORARY_FAILURE
    assert act(ctx, obj, 2, "0F00")[0] == disconnect.REFUSED
    assert disconnect.control_state(ctx.meter, obj) == C and relay.calls == []
    # nor any local or manual transition
    for fn in (disconnect.local_disconnect, disconnect.manual_disconnect):
        assert not fn(ctx.meter, obj)
    assert get_ok(ctx, obj, 2) == unhex("0301")


def test_remote_reconnect_from_ready_refused_without_its_transition():
    # modes 2 and 4 reconnect directly (a: D -> C) but have no remote R -> C
    for mode in (2, 4):
        ctx, obj, relay = setup(mode, R)
        assert act(ctx, obj, 2)[0] == disconnect.REFUSED
        assert disconnect.control_state(ctx.meter, obj) == R
        assert relay.calls == []
        # the head-end can still go through disconnected: c then a
        assert act(ctx, obj, 1)[0] == base.SUCCESS
        assert act(ctx, obj, 2)[0] == base.SUCCESS
        assert disconnect.control_state(ctx.meter, obj) == C
        assert relay.calls == [(0, True)]


def test_requests_already_met_succeed_without_change():
    for mode in range(1, 7):
        ctx, obj, relay = setup(mode, D)
        assert act(ctx, obj, 1)[0] == base.SUCCESS  # already disconnected
        assert disconnect.control_state(ctx.meter, obj) == D
        ctx, obj, relay = setup(mode, C)
        assert act(ctx, obj, 2)[0] == base.SUCCESS  # already connected
        assert disconnect.control_state(ctx.meter, obj) == C
        assert relay.calls == []
    for mode in (1, 3, 5, 6):
        ctx, obj, relay = setup(mode, R)
        assert act(ctx, obj, 2)[0] == base.SUCCESS  # ready stays ready
        assert disconnect.control_state(ctx.meter, obj) == R


def test_prepayment_style_cycle_in_mode_1():
    # remote disconnect, remote reconnect arms it, the customer closes it
    ctx, obj, relay = setup(1, C, index=3)
    assert act(ctx, obj, 1)[0] == base.SUCCESS
    assert get_ok(ctx, obj, 2) == unhex("0300")
    assert get_ok(ctx, obj, 3) == unhex("1600")
    assert act(ctx, obj, 2)[0] == base.SUCCESS
    assert get_ok(ctx, obj, 3) == unhex("1602")
    assert get_ok(ctx, obj, 2) == unhex("0300")  # ready: still open
    assert disconnect.manual_reconnect(ctx.meter, obj)
    assert get_ok(ctx, obj, 2) == unhex("0301")
    assert relay.calls == [(3, False), (3, True)]


def test_set_control_mode():
    ctx, obj, relay = setup(1, D)
    assert put(ctx, obj, 4, "1605") == base.SUCCESS
    assert get_ok(ctx, obj, 4) == unhex("1605")
    assert put(ctx, obj, 4, "1607") == base.OTHER_REASON
    assert put(ctx, obj, 4, "1105") == base.TYPE_UNMATCHED
    assert put(ctx, obj, 2, "0301") == base.READ_WRITE_DENIED
    assert put(ctx, obj, 3, "1601") == base.READ_WRITE_DENIED
    assert get_ok(ctx, obj, 4) == unhex("1605")
    assert relay.calls == []
    # mode 0 is always connected: setting it closes the relay
    assert put(ctx, obj, 4, "1600") == base.SUCCESS
    assert disconnect.control_state(ctx.meter, obj) == C
    assert relay.calls == [(0, True)]


def test_method_parameter_checked():
    ctx, obj, relay = setup(1)
    assert act(ctx, obj, 1, "0901AA")[0] == base.TYPE_UNMATCHED
    assert act(ctx, obj, 1, "00")[0] == base.SUCCESS  # null-data accepted
    assert act(ctx, obj, 3)[0] == base.READ_WRITE_DENIED


def test_state_persists_across_a_restart():
    store = Store()
    ctx, obj, relay = setup(3, C, storage=store)
    act(ctx, obj, 1)
    assert store.d["dc"] == bytes((D, 3))
    # power cut: the new boot reads the stored state and opens the relay
    ctx2, obj2, relay2 = setup(1, C, storage=store)
    assert disconnect.restore(ctx2.meter, obj2)
    disconnect.apply(ctx2.meter, obj2)
    assert disconnect.control_state(ctx2.meter, obj2) == D
    assert get_ok(ctx2, obj2, 4) == unhex("1603")
    assert relay2.calls == [(0, False)]
    # a damaged record is ignored
    store.d["dc"] = b"\x07\x01"
    ctx3, obj3, _ = setup(1, C, storage=store)
    assert not disconnect.restore(ctx3.meter, obj3)
    assert disconnect.control_state(ctx3.meter, obj3) == C


def test_no_relay_hook_is_fine():
    ctx, obj, relay = setup(1)
    ctx.meter.relay = None
    assert act(ctx, obj, 1)[0] == base.SUCCESS
    assert disconnect.control_state(ctx.meter, obj) == D


def test_get_set_action_through_a_channel():
    ctx, obj, relay = setup(1)
    meter = ctx.meter
    ch = server.Channel(meter, wrapper.WrapperServer())
    out = wsend(ch, wrap(AARQ_PUBLIC))
    assert unhex("A203020100") in out[0]
    ln = DC_LN.hex()

    def req(apdu):
        return wsend(ch, wrap(apdu))[0][8:]

    assert req("C001C1 0046" + ln + "0200") == unhex("C401C1 00 0301")
    assert req("C301C1 0046" + ln + "0101 0F00") == unhex("C701C1 00 00")
    assert req("C001C1 0046" + ln + "0300") == unhex("C401C1 00 1600")
    assert relay.calls == [(0, False)]
    assert req("C101C1 0046" + ln + "0400 1600") == unhex("C501C1 00")  # mode 0
    assert relay.calls == [(0, False), (0, True)]
    # mode 0 forbids the remote methods: temporary-failure
    assert req("C301C1 0046" + ln + "0101 0F00") == unhex("C701C1 02 00")
    assert req("C001C1 0046" + ln + "0200") == unhex("C401C1 00 0301")


def test_local_transitions_allocate_nothing_when_nothing_changes():
    ctx, obj, relay = setup(3, D)
    m = ctx.meter

    def idle():
        disconnect.local_disconnect(m, obj)
        disconnect.local_reconnect(m, obj)
        disconnect.manual_reconnect(m, obj)

    n = allocated(idle)
    assert n is None or n == 0, n
