# Failed authentications counted and locked out (issue 18, app.auth_guard):
# wrong LLS passwords and failed HLS replies, per client SAP and per line,
# answered with the standard AARE rejection while locked out; the counter in
# a state slot, an event per lock-out. Runs under pytest and MicroPython.

from cosem_support import allocated
from dlms_micro import server
from dlms_micro.app.auth_guard import AuthGuard, LineGuard
from dlms_micro.link import wrapper
from dlms_micro.meter import MECH_LLS, Meter, Role
from support import unhex
from test_server import AARQ_LLS, AARQ_LLS_WRONG, wrap
from test_xdlms import TABLE

ACCEPTED = unhex("A203020100")
REJECTED_PERMANENT = unhex("A203020101")
REJECTED_TRANSIENT = unhex("A203020102")
AUTHENTICATION_FAILURE = unhex("A305A10302010D")  # acse-service-user 13


def make_meter(guard=None):
    roles = (Role(16), Role(32, MECH_LLS, b"12345678"), Role(33, MECH_LLS, b"87654321"))
    m = Meter(TABLE, roles, [12345, 7, 0, 0])
    if guard is not None:
        m.auth_guard = guard
    return m


def send(ch, apdu_hex, now, src=32):
    data = wrap(apdu_hex, src=src)
    out = []
    k = 0
    while k < len(data):
        k += ch.feed(data, k, len(data), now)
        while True:
            ev = ch.next_event(now)
            if ev == server.EV_NONE:
                break
            out.append(bytes(ch.tx_buf[ch.tx_start : ch.tx_end]))
    assert len(out) == 1
    return out[0][8:]


def release(ch, now, src=32):
    assert send(ch, "6200", now, src)[0] == 0x63


def test_wrong_lls_password_locks_the_sap_out_after_k_failures():
    m = make_meter()
    ch = server.Channel(m, wrapper.WrapperServer())
    for _ in range(2):
        aare = send(ch, AARQ_LLS_WRONG, 1000)
        assert REJECTED_PERMANENT in aare and AUTHENTICATION_FAILURE in aare
    aare = send(ch, AARQ_LLS_WRONG, 1000)  # the third: lock-out starts
    assert REJECTED_PERMANENT in aare
    # locked out: even the right password gets the standard rejection
    aare = send(ch, AARQ_LLS, 2000)
    assert REJECTED_TRANSIENT in aare and AUTHENTICATION_FAILURE in aare
    assert ch.assoc.status == 0
    assert m.auth_guard.failures[1] == 3 and m.auth_guard.total == 3
    assert ch.auth_failures == 3


def test_lockout_is_per_client_sap_on_other_lines():
    m = make_meter()
    attacker = server.Channel(m, wrapper.WrapperServer())
    for _ in range(3):
        send(attacker, AARQ_LLS_WRONG, 0)
    # the same SAP on another connection is locked out as well
    other = server.Channel(m, wrapper.WrapperServer())
    assert REJECTED_TRANSIENT in send(other, AARQ_LLS, 10)
    # another SAP on another connection is not
    assert ACCEPTED in send(other, AARQ_LLS.replace("3132333435363738", "3837363534333231"), 10, src=33)


def test_lockout_ends_after_its_time_and_doubles_on_the_next():
    m = make_meter(AuthGuard(3, max_failures=2, lockout_ms=1000, max_lockout_ms=3000))
    ch = server.Channel(m, wrapper.WrapperServer())
    for _ in range(2):
        send(ch, AARQ_LLS_WRONG, 0)
    assert REJECTED_TRANSIENT in send(ch, AARQ_LLS, 999)
    assert REJECTED_PERMANENT in send(ch, AARQ_LLS_WRONG, 1000)  # over: tried again
    send(ch, AARQ_LLS_WRONG, 1000)  # second lock-out: 2000 ms
    assert REJECTED_TRANSIENT in send(ch, AARQ_LLS, 2999)
    assert ACCEPTED in send(ch, AARQ_LLS, 3000)
    g = m.auth_guard
    assert g.lockout_for(0) == 1000 and g.lockout_for(1) == 2000 and g.lockout_for(5) == 3000


def test_success_clears_the_run_of_failures():
    m = make_meter()
    ch = server.Channel(m, wrapper.WrapperServer())
    for _ in range(2):
        send(ch, AARQ_LLS_WRONG, 0)
    assert ACCEPTED in send(ch, AARQ_LLS, 0)
    release(ch, 0)
    for _ in range(2):
        assert REJECTED_PERMANENT in send(ch, AARQ_LLS_WRONG, 0)
    assert ACCEPTED in send(ch, AARQ_LLS, 0)  # not locked: the run restarted
    assert m.auth_guard.failures[1] == 4  # the counter itself keeps counting


def test_lockout_holds_across_the_tick_wrap():
    m = make_meter(AuthGuard(3, max_failures=1, lockout_ms=5000))
    ch = server.Channel(m, wrapper.WrapperServer())
    near_wrap = (1 << 30) - 1000
    send(ch, AARQ_LLS_WRONG, near_wrap)
    assert REJECTED_TRANSIENT in send(ch, AARQ_LLS, 3000)  # 4000 ms later, after the wrap
    assert ACCEPTED in send(ch, AARQ_LLS, 4000)


def test_line_lockout_stops_cycling_client_saps_on_one_connection():
    g = AuthGuard(3, max_failures=3)
    m = make_meter(g)
    ch = server.Channel(m, wrapper.WrapperServer())
    send(ch, AARQ_LLS_WRONG, 0, src=32)
    send(ch, AARQ_LLS_WRONG, 0, src=33)
    send(ch, AARQ_LLS_WRONG, 0, src=32)  # 3 on this line, 2 and 1 per SAP
    assert g.locked(1, 0) == 0 and g.locked(2, 0) == 0
    assert REJECTED_TRANSIENT in send(ch, AARQ_LLS.replace("3132333435363738", "3837363534333231"), 0, src=33)
    fresh = server.Channel(m, wrapper.WrapperServer())
    assert ACCEPTED in send(fresh, AARQ_LLS, 0)


def test_failure_counter_in_a_state_slot_and_an_event_per_lockout():
    events = []
    m = make_meter()
    m.auth_guard = AuthGuard(3, max_failures=2, state=m.state, total_slot=2, role_slots=(-1, 3, -1),
                             event=events.append, event_code=45)
    log = []
    ch = server.Channel(m, wrapper.WrapperServer())
    ch.set_log(log.append)
    send(ch, AARQ_LLS_WRONG, 0)
    assert m.state[2] == 1 and m.state[3] == 1 and events == []
    send(ch, AARQ_LLS_WRONG, 0)
    assert m.state[2] == 2 and events == [45]
    text = " ".join(log)
    assert "failed authentication from client SAP 32" in text and "locked out for 60 s" in text, log
    send(ch, AARQ_LLS, 0)  # refused while locked: not a failure, no event
    assert m.state[2] == 2 and events == [45]
    assert "locked out for 60 s more" in " ".join(log)


def test_guard_failure_and_check_allocate_nothing():
    g = AuthGuard(4, max_failures=1000000)
    line = LineGuard(g)
    g.failed(1, 0)
    line.failed(0)

    def step():
        g.locked(1, 5)
        g.failed(1, 5)
        line.locked(5)
        line.failed(5)
        g.succeeded(1)

    n = allocated(step)
    assert n is None or n == 0, n


def test_guard_refuses_a_lockout_longer_than_the_ticks_can_measure():
    for kw in ({"max_failures": 0}, {"lockout_ms": 0}, {"lockout_ms": 10, "max_lockout_ms": 5},
               {"max_lockout_ms": 1 << 29}):
        try:
            AuthGuard(1, **kw)
        except ValueError:
            continue
        raise AssertionError(kw)


def test_failure_count_is_read_through_a_data_object():
    # the counter a head-end reads: a Data object (class 1) on the guard's
    # slot, e.g. in the event counter group 0.0.96.15.x.255
    from dlms_micro import axdr
    from dlms_micro.cosem.data import DATA

    counter = (1, 0, b"\x00\x00\x60\x0f\x09\xff", DATA, 2, ((b"\x01\x01", b""), (b"\x01\x01", b""), None),
               (axdr.DOUBLE_LONG_UNSIGNED,))
    roles = (Role(16), Role(32, MECH_LLS, b"12345678"))
    m = Meter(TABLE + (counter,), roles, [12345, 7, 0])
    m.auth_guard = AuthGuard(2, state=m.state, total_slot=2)
    ch = server.Channel(m, wrapper.WrapperServer())
    send(ch, AARQ_LLS_WRONG, 0)
    send(ch, AARQ_LLS_WRONG, 0)
    public = server.Channel(m, wrapper.WrapperServer())
    assert ACCEPTED in send(public, "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0", 0, src=16)
    assert send(public, "C001C1 0001 0000600f09ff 0200", 0, src=16) == unhex("C401C1 00 0600000002")


def test_steady_get_through_a_guarded_channel_allocates_nothing():
    m = make_meter()
    ch = server.Channel(m, wrapper.WrapperServer())
    assert ACCEPTED in send(ch, AARQ_LLS, 0)
    req = wrap("C001C1 0001 0100010800ff 0200", src=32)
    n = len(req)

    def get():
        ch.feed(req, 0, n, 5)
        while ch.next_event(5) != server.EV_NONE:
            pass

    used = allocated(get)
    assert used is None or used == 0, used
