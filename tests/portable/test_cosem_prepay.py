# Prepayment: Account (111), Credit (112), Charge (113) and Token gateway
# (115). The scenario over simulated hours: consumption deducts credit, a
# low-credit warning, the relay opens when the credit runs out, a top-up
# token closes it in the control modes that allow it (else the customer's
# button does), a replayed token is refused. Plus the classes' attributes,
# methods and refusals.

from cosem_support import act, allocated, get_ok, make, put
from dlms_micro.cosem import base, clock, disconnect, prepay, token_gateway
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.disconnect import DISCONNECT_CONTROL
from dlms_micro.cosem.prepay import ACCOUNT, CHARGE, CREDIT
from dlms_micro.cosem.register import REGISTER
from dlms_micro.cosem.token_gateway import TOKEN_GATEWAY, TokenState, make_token
from support import unhex
from test_cosem_disconnect import Relay, Store

CLOCK_LN = b"\x00\x00\x01\x00\x00\xff"
ENERGY = b"\x01\x00\x01\x08\x00\xff"
DC_LN = b"\x00\x00\x60\x03\x0a\xff"
ACCOUNT_LN = b"\x00\x00\x13\x00\x00\xff"
TOKEN_CREDIT = b"\x00\x00\x13\x0a\x00\xff"
EMERGENCY_CREDIT = b"\x00\x00\x13\x0a\x01\xff"
CHARGE_LN = b"\x00\x00\x13\x14\x00\xff"
GATEWAY_LN = b"\x00\x00\x13\x28\x00\xff"
KEY = b"0123456789abcdef"
T0 = 1782900000  # 2026-07-01 10:00:00 UTC
ALL = ((b"\x01" * 19, b"\x01" * 5), None)
CLOCK_ACC = ((b"\x01" * 9, b"\x00" * 6), None)

# slots
S_ENERGY = 10
S_DC = 11
S_TOKEN = 14
S_EMERGENCY = 21
S_CHARGE = 28
S_ACCOUNT = 37
S_GATEWAY = 52


class Wall:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def setup(mode=5, credit=100, low=30, storage=None, emergency=0, account_storage=None):
    # 25 cents per kWh from a Wh register; `credit` cents of token credit
    table = (
        (8, 0, CLOCK_LN, CLOCK, 0, CLOCK_ACC, None),
        (3, 0, ENERGY, REGISTER, S_ENERGY, ALL, (0, 30)),
        (70, 0, DC_LN, DISCONNECT_CONTROL, S_DC, ALL, (0,)),
        (112, 0, TOKEN_CREDIT, CREDIT, S_TOKEN, ALL, (0, 0x88, None)),
        (112, 0, EMERGENCY_CREDIT, CREDIT, S_EMERGENCY, ALL, (2, 0xC0, None)),
        (113, 0, CHARGE_LN, CHARGE, S_CHARGE, ALL, (0, 1, (3, ENERGY, 2), -3, 0, b"\x01", 0x40, 100, 0)),
        (111, 0, ACCOUNT_LN, ACCOUNT, S_ACCOUNT, ALL, (
            (TOKEN_CREDIT, EMERGENCY_CREDIT), (CHARGE_LN,), DC_LN, (b"EUR", -2, 0),
            ((TOKEN_CREDIT, 100),), 0, 0)),
        (115, 0, GATEWAY_LN, TOKEN_GATEWAY, S_GATEWAY, ALL, (ACCOUNT_LN,)),
    )
    st = (clock.initial_state() + [0] + disconnect.initial_state(mode)
          + prepay.credit_state(credit, priority=1)
          + prepay.credit_state(emergency, prepay.SELECTABLE, priority=2)
          + prepay.charge_state(25)
          + prepay.account_state(low_credit_threshold=low, storage=account_storage, key="account")
          + [TokenState(KEY, storage, "tokens")])
    assert len(st) == S_GATEWAY + 1
    wall = Wall(T0)
    ctx = make(table, st, wall_clock=wall, size=256)
    relay = Relay()
    ctx.meter.relay = relay
    return ctx, table, relay, wall


def entry(t, cid):
    for e in t:
        if e[0] == cid:
            return e


def account(t):
    return entry(t, 111)


def available(ctx):
    return ctx.meter.state[S_ACCOUNT + prepay.A_AVAILABLE]


def bits(ctx):
    return ctx.meter.state[S_ACCOUNT + prepay.A_BITS]


def run_hours(ctx, t, wall, hours, watts=1000, stop_when_open=False):
    # quarter-hour ticks; energy rises only while the relay is closed.
    # Returns the tick after which the relay opened (or None).
    m = ctx.meter
    dc = entry(t, 70)
    for q in range(hours * 4):
        if disconnect.connected(m, dc):
            m.state[S_ENERGY] += watts // 4
        wall.t += 900
        prepay.tick(m, account(t), clock.now(m))
        if stop_when_open and not disconnect.connected(m, dc):
            return q + 1
    return None


def enter(ctx, t, token):
    return act(ctx, entry(t, 115), 1, "09%02X" % len(token) + token.hex())[0]


def credit_run_out(mode):
    ctx, t, relay, wall = setup(mode)
    m = ctx.meter
    prepay.tick(m, account(t), clock.now(m))  # first reading of the register
    assert available(ctx) == 100 and bits(ctx) & prepay.IN_CREDIT
    # 1 kW at 25 cents/kWh: 100 cents last 4 hours (16 quarters)
    opened = run_hours(ctx, t, wall, 6, stop_when_open=True)
    assert opened == 16, opened
    assert relay.calls == [(0, False)]
    assert disconnect.control_state(m, entry(t, 70)) == disconnect.READY_FOR_RECONNECTION
    assert available(ctx) == 0
    assert bits(ctx) & prepay.OUT_OF_CREDIT and not bits(ctx) & prepay.IN_CREDIT
    assert get_ok(ctx, entry(t, 113), 2) == unhex("0500000064")  # 100 cents paid
    # no consumption while open: nothing more is charged
    run_hours(ctx, t, wall, 2)
    assert m.state[S_TOKEN] == 0
    return ctx, t, relay, wall


def test_scenario_credit_runs_out_and_a_token_closes_the_relay_in_mode_5():
    for mode in (5, 6):
        ctx, t, relay, wall = credit_run_out(mode)
        token = make_token(KEY, 1, 200)
        assert enter(ctx, t, token) == base.SUCCESS
        assert relay.calls == [(0, False), (0, True)]  # closed at once: transition h
        assert disconnect.connected(ctx.meter, entry(t, 70))
        assert available(ctx) == 200
        assert get_ok(ctx, entry(t, 115), 6) == unhex("0202 1603 0400")
        # the same token again: refused, nothing credited
        assert enter(ctx, t, token) == base.OTHER_REASON
        assert get_ok(ctx, entry(t, 115), 6) == unhex("0202 1606 0400")
        assert available(ctx) == 200
        # consumption goes on from the new credit
        run_hours(ctx, t, wall, 2)
        assert available(ctx) == 150


def test_scenario_top_up_in_modes_without_local_reconnection_waits_for_the_button():
    for mode in (1, 2, 3, 4):
        ctx, t, relay, wall = credit_run_out(mode)
        m = ctx.meter
        dc = entry(t, 70)
        assert enter(ctx, t, make_token(KEY, 7, 50)) == base.SUCCESS
        assert available(ctx) == 50
        assert relay.calls == [(0, False)]  # still open: no h in this mode
        assert disconnect.control_state(m, dc) == disconnect.READY_FOR_RECONNECTION
        prepay.tick(m, account(t), clock.now(m))
        assert relay.calls == [(0, False)]
        assert disconnect.manual_reconnect(m, dc)  # the customer's button: e
        assert relay.calls == [(0, False), (0, True)]
        run_hours(ctx, t, wall, 1)
        assert available(ctx) == 25


def test_button_while_out_of_credit_opens_again():
    ctx, t, relay, wall = credit_run_out(1)
    m = ctx.meter
    assert disconnect.manual_reconnect(m, entry(t, 70))
    prepay.tick(m, account(t), clock.now(m))
    assert relay.calls == [(0, False), (0, True), (0, False)]


def test_low_credit_warning_at_the_threshold():
    ctx, t, relay, wall = setup(credit=100, low=30)
    m = ctx.meter
    prepay.tick(m, account(t), clock.now(m))
    assert not bits(ctx) & prepay.LOW_CREDIT
    run_hours(ctx, t, wall, 2)  # 50 left
    assert available(ctx) == 50 and not bits(ctx) & prepay.LOW_CREDIT
    m.state[S_ENERGY] += 800  # 20 cents: 30 left, at the threshold
    prepay.tick(m, account(t), clock.now(m))
    assert available(ctx) == 30 and bits(ctx) & prepay.LOW_CREDIT
    assert get_ok(ctx, account(t), 4) == unhex("0408 D0")  # in credit, low, next selectable
    assert enter(ctx, t, make_token(KEY, 1, 100)) == base.SUCCESS
    assert not bits(ctx) & prepay.LOW_CREDIT


def test_emergency_credit_invoked_reconnects():
    ctx, t, relay, wall = credit_run_out(5)
    m = ctx.meter
    em = m.find(112, EMERGENCY_CREDIT, 0)
    assert act(ctx, em, 2, "0500000032")[0] == base.SUCCESS  # set_amount_to_value 50
    assert get_ok(ctx, em, 8) == unhex("1601")  # selectable: not used yet
    prepay.tick(m, account(t), clock.now(m))
    assert not disconnect.connected(m, entry(t, 70))
    assert act(ctx, em, 3, "1602")[0] == base.SUCCESS  # invoke_credit
    prepay.tick(m, account(t), clock.now(m))
    assert disconnect.connected(m, entry(t, 70))
    assert get_ok(ctx, em, 8) == unhex("1603")  # in use
    assert get_ok(ctx, account(t), 3) == unhex("1102")  # the second credit
    assert bits(ctx) & prepay.SELECTABLE_CREDIT_IN_USE
    assert act(ctx, em, 3, "1602")[0] == prepay.REFUSED  # not selectable any more


def test_credit_mode_never_disconnects():
    ctx, t, relay, wall = setup(credit=10)
    m = ctx.meter
    assert put(ctx, account(t), 2, "0202 1601 1602") == base.SUCCESS  # credit mode
    prepay.tick(m, account(t), clock.now(m))
    run_hours(ctx, t, wall, 4)
    assert relay.calls == []
    assert m.state[S_TOKEN] == 10 - 25 * 4  # owed
    # back to prepayment: out of credit opens it
    assert put(ctx, account(t), 2, "0202 1602 1602") == base.SUCCESS
    prepay.tick(m, account(t), clock.now(m))
    assert relay.calls == [(0, False)]
    # a top-up pays what is owed first
    assert enter(ctx, t, make_token(KEY, 1, 100)) == base.SUCCESS
    assert available(ctx) == 10 and disconnect.connected(m, entry(t, 70))


def test_a_remote_disconnection_is_not_undone_by_a_top_up():
    ctx, t, relay, wall = setup(5)
    m = ctx.meter
    dc = entry(t, 70)
    assert act(ctx, dc, 1)[0] == base.SUCCESS
    assert enter(ctx, t, make_token(KEY, 1, 100)) == base.SUCCESS
    assert disconnect.control_state(m, dc) == disconnect.DISCONNECTED


def test_charge_carries_fractions():
    ctx, t, relay, wall = setup(credit=1000)
    m = ctx.meter
    ch = entry(t, 113)
    prepay.tick(m, account(t), clock.now(m))
    for _ in range(3):
        m.state[S_ENERGY] += 10  # 0.25 cent each
        assert prepay.tick(m, account(t), clock.now(m)) == 0
    m.state[S_ENERGY] += 10
    assert prepay.tick(m, account(t), clock.now(m)) == 1
    assert available(ctx) == 999
    assert get_ok(ctx, ch, 11) == unhex("0500000001")
    # a register that went down charges nothing
    m.state[S_ENERGY] = 0
    assert prepay.tick(m, account(t), clock.now(m)) == 0


def test_charge_attributes_and_methods():
    ctx, t, relay, wall = setup()
    m = ctx.meter
    ch = entry(t, 113)
    uc = "0203 0202 0FFD 0F00 0203 120003 0906" + ENERGY.hex() + "0F02 0101 0202 090101 100019"
    assert get_ok(ctx, ch, 5) == unhex(uc)
    assert get_ok(ctx, ch, 6) == unhex(uc)
    assert get_ok(ctx, ch, 3) == unhex("1600")
    assert get_ok(ctx, ch, 4) == unhex("1101")
    assert get_ok(ctx, ch, 9) == unhex("0402 40")
    assert get_ok(ctx, ch, 13) == unhex("120064")
    assert get_ok(ctx, ch, 10) == unhex("090C FFFFFFFFFFFFFFFFFF8000FF")
    assert act(ctx, ch, 4, "0500000010")[0] == base.SUCCESS
    assert act(ctx, ch, 4, "0500000010")[0] == base.SUCCESS
    assert get_ok(ctx, ch, 12) == unhex("0500000020")
    assert act(ctx, ch, 5, "0500000005")[0] == base.SUCCESS
    assert get_ok(ctx, ch, 12) == unhex("0500000005")
    assert act(ctx, ch, 5, "0600000005")[0] == base.TYPE_UNMATCHED
    assert act(ctx, ch, 1, "0F00")[0] == base.READ_WRITE_DENIED  # update_unit_charge: not implemented
    # collect on request: deducted at the account's next tick
    assert act(ctx, ch, 3, "0F00")[0] == base.SUCCESS  # first reading
    m.state[S_ENERGY] += 4000
    wall.t += 60
    assert act(ctx, ch, 3, "0F00")[0] == base.SUCCESS
    assert get_ok(ctx, ch, 11) == unhex("0500000064")
    assert get_ok(ctx, ch, 10)[:2] == unhex("090C")
    assert get_ok(ctx, ch, 10) != unhex("090C FFFFFFFFFFFFFFFFFF8000FF")
    assert prepay.tick(m, account(t), clock.now(m)) == 100
    assert available(ctx) == 0


def test_credit_attributes_and_methods():
    ctx, t, relay, wall = setup(credit=100)
    c = entry(t, 112)
    assert get_ok(ctx, c, 2) == unhex("0500000064")
    assert get_ok(ctx, c, 3) == unhex("1600")
    assert get_ok(ctx, c, 4) == unhex("1101")
    assert get_ok(ctx, c, 7) == unhex("0405 88")
    assert get_ok(ctx, c, 8) == unhex("1600")
    assert get_ok(ctx, c, 11) == unhex("090C FFFFFFFFFFFFFFFFFF8000FF")
    assert act(ctx, c, 1, "05FFFFFFF6")[0] == base.SUCCESS  # update_amount -10
    assert get_ok(ctx, c, 2) == unhex("050000005A")
    assert act(ctx, c, 1, "057FFFFFFF")[0] == base.OTHER_REASON  # would overflow
    assert act(ctx, c, 1, "0600000001")[0] == base.TYPE_UNMATCHED
    assert act(ctx, c, 2, "0500000000")[0] == base.SUCCESS
    for attr, val in ((5, "0500000014"), (6, "05FFFFFF9C"), (9, "0500000032"), (10, "050000000A"), (4, "1103")):
        assert put(ctx, c, attr, val) == base.SUCCESS
        assert get_ok(ctx, c, attr) == unhex(val)
    assert put(ctx, c, 2, "0500000001") == base.READ_WRITE_DENIED
    assert put(ctx, c, 5, "0600000001") == base.TYPE_UNMATCHED


def test_account_attributes_and_methods():
    ctx, t, relay, wall = setup(credit=100)
    m = ctx.meter
    a = account(t)
    prepay.tick(m, a, clock.now(m))
    assert get_ok(ctx, a, 2) == unhex("0202 1602 1602")
    assert get_ok(ctx, a, 3) == unhex("1101")
    assert get_ok(ctx, a, 5) == unhex("0500000064")
    tc = "0906" + TOKEN_CREDIT.hex()
    ec = "0906" + EMERGENCY_CREDIT.hex()
    assert get_ok(ctx, a, 9) == unhex("0102" + tc + ec)
    assert get_ok(ctx, a, 10) == unhex("0101 0906" + CHARGE_LN.hex())
    assert get_ok(ctx, a, 11) == unhex("0102 0203%s0906%s040300 0203%s0906%s040300"
                                       % (tc, CHARGE_LN.hex(), ec, CHARGE_LN.hex()))
    assert get_ok(ctx, a, 12) == unhex("0101 0202" + tc + "1164")
    assert get_ok(ctx, a, 15) == unhex("0203 0C03455552 0FFE 1600")
    assert get_ok(ctx, a, 16) == unhex("050000001E")
    assert get_ok(ctx, a, 18) == unhex("120000")
    assert get_ok(ctx, a, 19) == unhex("0600000000")
    assert put(ctx, a, 16, "0500000028") == base.SUCCESS
    assert get_ok(ctx, a, 16) == unhex("0500000028")
    assert put(ctx, a, 2, "0202 1603 1602") == base.OTHER_REASON
    assert put(ctx, a, 2, "0202 1101 1602") == base.TYPE_UNMATCHED
    assert put(ctx, a, 5, "0500000001") == base.READ_WRITE_DENIED
    # close, refused activation, reset, activation
    assert act(ctx, a, 2, "0F00")[0] == base.SUCCESS
    assert get_ok(ctx, a, 2) == unhex("0202 1602 1603")
    assert get_ok(ctx, a, 14)[:2] == unhex("090C") and get_ok(ctx, a, 14)[2:4] == unhex("07EA")
    assert act(ctx, a, 1, "0F00")[0] == prepay.REFUSED
    assert enter(ctx, t, make_token(KEY, 1, 100)) == base.TEMPORARY_FAILURE  # closed account
    assert get_ok(ctx, entry(t, 115), 6) == unhex("0202 1607 0400")
    assert act(ctx, a, 3, "0F00")[0] == base.SUCCESS
    assert get_ok(ctx, a, 2) == unhex("0202 1602 1601")
    assert get_ok(ctx, a, 13) == unhex("090C FFFFFFFFFFFFFFFFFF8000FF")
    assert act(ctx, a, 1, "0F00")[0] == base.SUCCESS
    assert get_ok(ctx, a, 2) == unhex("0202 1602 1602")
    # the token refused while closed was not used up
    assert enter(ctx, t, make_token(KEY, 1, 100)) == base.SUCCESS


# ------------------------------------------------------------- token gateway


def test_token_refusals():
    ctx, t, relay, wall = setup(credit=0)
    gw = entry(t, 115)
    good = make_token(KEY, 5, 100)
    assert enter(ctx, t, good[:-1]) == base.OTHER_REASON  # too short
    assert get_ok(ctx, gw, 6) == unhex("0202 1604 0400")
    assert get_ok(ctx, gw, 4) == unhex("0100")
    assert enter(ctx, t, b"\x02" + good[1:]) == base.OTHER_REASON  # unknown version
    assert get_ok(ctx, gw, 6) == unhex("0202 1604 0400")
    forged = make_token(b"another key 1234", 5, 100)
    assert enter(ctx, t, forged) == base.OTHER_REASON
    assert get_ok(ctx, gw, 6) == unhex("0202 1605 0400")
    tampered = bytearray(good)
    tampered[8] ^= 1  # the amount
    assert enter(ctx, t, bytes(tampered)) == base.OTHER_REASON
    assert get_ok(ctx, gw, 6) == unhex("0202 1605 0400")
    assert act(ctx, gw, 1, "0600000001")[0] == base.TYPE_UNMATCHED
    assert available(ctx) == 0
    assert enter(ctx, t, good) == base.SUCCESS
    assert available(ctx) == 100
    assert get_ok(ctx, gw, 2) == unhex("0911" + good.hex())
    assert get_ok(ctx, gw, 4) == unhex("0102 090400000005 090400000064")
    assert get_ok(ctx, gw, 5) == unhex("1600")
    assert get_ok(ctx, gw, 3)[2:4] == unhex("07EA")


def test_token_ids_out_of_order_within_the_window_once_each():
    ctx, t, relay, wall = setup(credit=0)
    assert enter(ctx, t, make_token(KEY, 40, 1)) == base.SUCCESS
    assert enter(ctx, t, make_token(KEY, 38, 1)) == base.SUCCESS  # older, unused: fine
    assert enter(ctx, t, make_token(KEY, 38, 1)) == base.OTHER_REASON  # replayed
    assert enter(ctx, t, make_token(KEY, 40, 1)) == base.OTHER_REASON
    assert enter(ctx, t, make_token(KEY, 8, 1)) == base.SUCCESS  # 32 below the newest
    assert enter(ctx, t, make_token(KEY, 7, 1)) == base.OTHER_REASON  # too old
    assert enter(ctx, t, make_token(KEY, 100, 1)) == base.SUCCESS  # a jump
    assert enter(ctx, t, make_token(KEY, 39, 1)) == base.OTHER_REASON  # now too old
    assert enter(ctx, t, make_token(KEY, 99, 1)) == base.SUCCESS
    assert available(ctx) == 5


def test_used_tokens_stay_used_after_a_restart():
    store = Store()
    ctx, t, relay, wall = setup(credit=0, storage=store)
    token = make_token(KEY, 3, 100)
    assert enter(ctx, t, token) == base.SUCCESS
    assert store.d["tokens"] == unhex("00000003 00000000")
    ctx2, t2, _, _ = setup(credit=0, storage=store)  # power cut, new boot
    assert enter(ctx2, t2, token) == base.OTHER_REASON
    assert enter(ctx2, t2, make_token(KEY, 2, 10)) == base.SUCCESS
    assert store.d["tokens"] == unhex("00000003 00000001")


def test_credit_survives_a_restart():
    store = Store()
    ctx, t, relay, wall = setup(credit=100, account_storage=store)
    m = ctx.meter
    assert not prepay.restore(m, account(t))  # nothing stored yet
    prepay.tick(m, account(t), clock.now(m))
    run_hours(ctx, t, wall, 1)  # 25 cents used: not saved by the ticks
    assert prepay.save(m, account(t))  # the port's periodic save
    assert enter(ctx, t, make_token(KEY, 1, 500)) == base.SUCCESS  # saved at once
    assert act(ctx, m.find(112, EMERGENCY_CREDIT, 0), 2, "0500000032")[0] == base.SUCCESS
    before = list(m.state[S_ACCOUNT:S_ACCOUNT + 13])
    # power cut: a new boot with the configured initial values
    ctx2, t2, relay2, wall2 = setup(credit=100, account_storage=store)
    m2 = ctx2.meter
    assert prepay.restore(m2, account(t2))
    assert m2.state[S_TOKEN] == 575 and m2.state[S_EMERGENCY] == 50
    assert m2.state[S_ACCOUNT:S_ACCOUNT + 13] == before
    assert m2.state[S_CHARGE + prepay.H_READING] == 1000  # the register's last reading
    assert m2.state[S_CHARGE + prepay.H_PAID] == 25
    prepay.update(m2, account(t2))
    assert available(ctx2) == 575
    # a record of another configuration is ignored
    store.d["account"] = store.d["account"][:-8]
    ctx3, t3, _, _ = setup(credit=100, account_storage=store)
    assert not prepay.restore(ctx3.meter, account(t3))
    assert ctx3.meter.state[S_TOKEN] == 100


def test_storage_failure_refuses_the_token_and_credits_nothing():
    class Broken(Store):
        def put(self, k, v):
            raise OSError(28)

    ctx, t, relay, wall = setup(credit=0, storage=Broken())
    assert enter(ctx, t, make_token(KEY, 1, 100)) == base.HARDWARE_FAULT
    assert available(ctx) == 0
    assert get_ok(ctx, entry(t, 115), 6) == unhex("0202 1607 0400")


def test_an_idle_tick_allocates_nothing():
    ctx, t, relay, wall = setup(credit=100)
    m = ctx.meter
    a = account(t)
    utc = clock.now(m)
    prepay.tick(m, a, utc)

    def idle():
        prepay.tick(m, a, utc)

    n = allocated(idle)
    assert n is None or n == 0, n


def test_token_format():
    tok = make_token(KEY, 0x01020304, 0x0A0B0C0D)
    assert len(tok) == 17 and tok[:9] == unhex("01 01020304 0A0B0C0D")
    # HMAC-SHA256 itself: RFC 4231 test case 2
    mac = token_gateway.hmac_sha256(b"Jefe", b"what do ya want for nothing?")
    assert mac == unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")


def test_account_storage_failure_is_logged_and_the_credit_kept():
    class Broken(Store):
        def put(self, k, v):
            raise OSError(5)

    ctx, t, relay, wall = setup(credit=0, account_storage=Broken())
    lines = []
    ctx.meter.log = lines.append
    assert enter(ctx, t, make_token(KEY, 1, 100)) == base.SUCCESS
    assert available(ctx) == 100
    assert not prepay.save(ctx.meter, account(t))
    assert any("saving the account failed" in x for x in lines)


def test_token_entered_through_a_channel():
    from dlms_micro import server
    from dlms_micro.link import wrapper
    from test_server import AARQ_PUBLIC, wrap, wsend

    ctx, t, relay, wall = credit_run_out(6)
    ch = server.Channel(ctx.meter, wrapper.WrapperServer())
    assert unhex("A203020100") in wsend(ch, wrap(AARQ_PUBLIC))[0]
    token = make_token(KEY, 9, 300)
    req = "C301C1 0073" + GATEWAY_LN.hex() + "0101 0911" + token.hex()
    assert wsend(ch, wrap(req))[0][8:] == unhex("C701C1 00 00")
    assert relay.calls == [(0, False), (0, True)]
    assert wsend(ch, wrap(req))[0][8:] == unhex("C701C1 FA 00")  # replayed: other-reason
    get = "C001C1 006F" + ACCOUNT_LN.hex() + "0500"
    assert wsend(ch, wrap(get))[0][8:] == unhex("C401C1 00 050000012C")
