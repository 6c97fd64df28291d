# Real clients WRITE and ACT on the demo meter's tariff, supply-control and
# prepayment objects (issue 7; reading every attribute is covered by the
# every_attribute tests of test_gurux_interop / test_cosem_interop):
#   Disconnect control 0.0.96.3.10.255  remote_disconnect / remote_reconnect
#                       in modes 5, 4 and 0, control_mode SETs (7 refused)
#   Token gateway 0.0.19.40.0.255       enter a demo token after switching
#                       the Account 0.0.19.0.0.255 to prepayment; the Credit
#                       0.0.19.10.0.255 rises by its amount; a replayed and a
#                       forged token are refused, token_status says why
#   Activity calendar 0.0.13.0.0.255    the passive calendar written as
#                       gurux's object model, activated by the method and
#                       by activate_passive_calendar_time, read back as the
#                       active one; an inconsistent one is refused
#   Special days 0.0.11.0.0.255         insert / delete by method
#   Register activation 0.0.14.0.1.255  active_mask follows the calendar;
#                                       SET of active_mask; add_mask /
#                                       delete_mask
#   Script tables 0.0.10.0.100.255 / 0.0.10.0.106.255  execute: the tariff
#                                       switches, the relay opens
#   Limiter 0.0.17.0.0.255              threshold_normal, min_over_threshold_
#                                       duration SET and read back; an
#                                       emergency profile and its group list
#                                       switch threshold_active
#   Single action schedule 0.0.15.0.0.255  execution_time SET and read back
#   The prepayment cycle: credit set to 0 -> the account opens the relay;
#   a token closes it. And what clients changed survives a meter restart.
# gurux-dlms 1.0.203 is the management client (SAP 1, HLS-GMAC, suite 0)
# over the TCP wrapper and HDLC over TCP; dlms-cosem 25.1.0 sends the
# Disconnect control's methods, control_mode SETs and a token as raw ACTION
# / SET requests, refused for the reader (SAP 32, LLS) and carried out for
# management (general-glo-ciphering).
#
# The meter is this module's own demo meter (fresh data directory): the
# tests change its state, and each puts back what it touched as the demo
# configures it (Disconnect control mode 5 and connected, Account in credit
# mode, Limiter and schedule values), except the calendars (the last one
# written stays active) and the tokens: each id is accepted once and none
# more than 32 below the newest, so new_token() hands ids out in
# increasing order. The tests pass in any order.
# The demo's simulated customer presses the reconnect button a minute after
# the meter became ready_for_reconnection: every step here that reads that
# state runs well within the minute.
#
# RESULTS the meter gives (pinned here):
#   Disconnect control method forbidden by the mode (both in mode 0,
#     remote_reconnect from ready_for_reconnection in mode 4):
#     temporary-failure (2); control_mode 7: other-reason (250); control_mode
#     as integer: type-unmatched (12); an octet-string method parameter:
#     type-unmatched (any integer type or null-data is taken as integer(0))
#   token replayed / forged / of another format: other-reason, token_status
#     6 / 5 / 4; the reader (SAP 32) on any method or SET: read-write-denied
#   activate_passive_calendar of an inconsistent calendar (a week names a
#     day id the day table lacks): other-reason, the active one stays; by
#     activate_passive_calendar_time: dropped at that time (the time reads
#     all 0xFF again); a season start without month, seasons out of order:
#     other-reason at the SET
#   Special days insert naming no day profile of the active calendar,
#     delete of an index not held: other-reason
#   Limiter threshold of another type than the monitored value's:
#     type-unmatched; Single action schedule type 1 with two times:
#     other-reason; Script table execute of a script it lacks: other-reason
#     (script 0, the null script: success); add_mask naming an unassigned
#     register, delete_mask of a name not held: other-reason
#
# What each client needed (facts for docs/compatibility.md):
#   gurux-dlms  GXDLMSDisconnectControl.remoteDisconnect/remoteReconnect,
#               GXDLMSActivityCalendar (season/week/day profile objects;
#               activatePassiveCalendar; season starts as GXDateTime with
#               DateTimeSkips.YEAR), GXDLMSSpecialDaysTable.insert/delete
#               (GXDate with YEAR skipped), GXDLMSRegisterActivation,
#               GXDLMSLimiter (read a threshold before writing it: gurux
#               writes it with the type it last read), GXDLMSActionSchedule,
#               GXDLMSAccount, GXDLMSCredit.setAmountToValue and
#               GXDLMSCharge as they are; GXDLMSTokenGateway has no enter
#               method: client.method(gateway, 1, token, OCTET_STRING).
#               The cleared activate_passive_calendar_time (all 0xFF, the
#               deviation included, where 0x8000 is its "not specified")
#               reads in GXDLMSActivityCalendar.time as every field skipped
#               but a zone of +00:01.
#   dlms-cosem  DlmsClient.action / set with A-XDR data it builds
#               (IntegerData, EnumData, OctetStringData); action raises
#               ActionError naming the action-result on a refusal, set
#               returns the SET-Response (its result).

import datetime
import itertools
import time

import pytest
from interop_peers import (
    HDLC_TCP,
    SECURE_SAP,
    WRAPPER,
    CosemPeer,
    GuruxPeer,
    PeerPool,
    as_bytes,
    connected,
    gurux_code,
)

TRANSPORTS = (WRAPPER, HDLC_TCP)
all_transports = pytest.mark.parametrize("transport", TRANSPORTS)

DISCONNECT = "0.0.96.3.10.255"
TOKEN_GATEWAY = "0.0.19.40.0.255"
ACCOUNT = "0.0.19.0.0.255"
TOKEN_CREDIT = "0.0.19.10.0.255"
CHARGE = "0.0.19.20.0.255"
CALENDAR = "0.0.13.0.0.255"
SPECIAL_DAYS = "0.0.11.0.0.255"
REGISTER_ACTIVATION = "0.0.14.0.1.255"
TARIFF_SCRIPTS = "0.0.10.0.100.255"
DISCONNECTOR_SCRIPTS = "0.0.10.0.106.255"
LIMITER = "0.0.17.0.0.255"
END_OF_BILLING = "0.0.15.0.0.255"
READER_SAP = 32

# data-access-result / action-result
SUCCESS = 0
TEMPORARY_FAILURE = 2
READ_WRITE_DENIED = 3
TYPE_UNMATCHED = 12
OTHER_REASON = 250
# Disconnect control
DISCONNECTED, CONNECTED, READY = 0, 1, 2
DEMO_MODE = 5
# token_status_code
EXECUTION_OK, FORMAT_FAILURE, AUTHENTICATION_FAILURE, VALIDATION_FAILURE = 3, 4, 5, 6
# Account payment_mode / account_status
CREDIT_MODE, PREPAYMENT_MODE, ACTIVE = 1, 2, 2


_token_ids = itertools.count(100)


def new_token(amount):
    # (id, token): a demo top-up token with a fresh id. The meter accepts
    # each id once, and none more than 32 below the highest it accepted
    # (token_gateway.py): ids are handed out in increasing order.
    from dlms_micro.cosem.token_gateway import make_token
    from dlms_micro_cpython.demo_control import DEMO_TOKEN_KEY

    i = next(_token_ids)
    return i, make_token(DEMO_TOKEN_KEY, i, amount)


@pytest.fixture(scope="module")
def ctl_meter(tmp_path_factory):
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    store = FileStorage(str(tmp_path_factory.mktemp("control-meter")))
    svc = ThreadedService(DemoMeter(storage=store, seed=1), host="127.0.0.1", wrapper_port=0, hdlc_port=0)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


@pytest.fixture
def peers():
    pool = PeerPool()
    yield pool.keep
    pool.close_all()


def gurux(peers, svc, transport, sap=SECURE_SAP):
    return connected(peers(GuruxPeer(svc, transport, sap=sap)))


def end(p):
    p.release()
    p.disconnect()


def relay_closed(svc):
    # the relay as the meter's port last drove it (demo_control.Control)
    return svc.call(lambda: svc.service.demo.control.closed)


# ------------------------------------------------------- Disconnect control


def _dc_state(p, dc):
    # (output_state, control_state, control_mode) as gurux reads them
    return (p.read(dc, 2), int(p.read(dc, 3)), int(p.read(dc, 4)))


def _set_mode(p, dc, mode):
    dc.controlMode = mode
    return gurux_code(p.write, dc, 4)


@all_transports
def test_gurux_drives_the_disconnect_control_through_its_modes(ctl_meter, peers, transport):
    from gurux_dlms.objects import GXDLMSDisconnectControl

    p = gurux(peers, ctl_meter, transport)
    dc = GXDLMSDisconnectControl(DISCONNECT)
    assert _dc_state(p, dc) == (True, CONNECTED, DEMO_MODE)
    assert relay_closed(ctl_meter)
    # mode 5: remote_disconnect opens, remote_reconnect only makes it ready
    p.method(dc.remoteDisconnect(p.client))
    assert _dc_state(p, dc) == (False, DISCONNECTED, DEMO_MODE)
    assert not relay_closed(ctl_meter)
    p.method(dc.remoteDisconnect(p.client))  # already met: succeeds, no change
    assert _dc_state(p, dc) == (False, DISCONNECTED, DEMO_MODE)
    p.method(dc.remoteReconnect(p.client))
    assert _dc_state(p, dc) == (False, READY, DEMO_MODE)
    assert not relay_closed(ctl_meter)
    # mode 4: remote_reconnect closes from disconnected, not from ready
    assert _set_mode(p, dc, 4) == SUCCESS
    assert gurux_code(p.method, dc.remoteReconnect(p.client)) == TEMPORARY_FAILURE
    assert _dc_state(p, dc) == (False, READY, 4)
    p.method(dc.remoteDisconnect(p.client))
    assert _dc_state(p, dc) == (False, DISCONNECTED, 4)
    p.method(dc.remoteReconnect(p.client))
    assert _dc_state(p, dc) == (True, CONNECTED, 4)
    assert relay_closed(ctl_meter)
    # mode 0: always connected, both methods refused
    assert _set_mode(p, dc, 0) == SUCCESS
    assert gurux_code(p.method, dc.remoteDisconnect(p.client)) == TEMPORARY_FAILURE
    assert gurux_code(p.method, dc.remoteReconnect(p.client)) == TEMPORARY_FAILURE
    assert _dc_state(p, dc) == (True, CONNECTED, 0)
    # no mode 7
    assert _set_mode(p, dc, 7) == OTHER_REASON
    assert int(p.read(dc, 4)) == 0
    # back to the demo's mode
    assert _set_mode(p, dc, DEMO_MODE) == SUCCESS
    assert _dc_state(p, dc) == (True, CONNECTED, DEMO_MODE)
    end(p)


def test_gurux_mode_0_closes_an_open_relay(ctl_meter, peers):
    # SET control_mode 0 (always connected) connects at once
    from gurux_dlms.objects import GXDLMSDisconnectControl

    p = gurux(peers, ctl_meter, WRAPPER)
    dc = GXDLMSDisconnectControl(DISCONNECT)
    p.method(dc.remoteDisconnect(p.client))
    assert _dc_state(p, dc) == (False, DISCONNECTED, DEMO_MODE)
    assert _set_mode(p, dc, 0) == SUCCESS
    assert _dc_state(p, dc) == (True, CONNECTED, 0)
    assert relay_closed(ctl_meter)
    assert _set_mode(p, dc, DEMO_MODE) == SUCCESS
    end(p)


def test_gurux_reader_may_read_but_not_drive_the_disconnect_control(ctl_meter, peers):
    from gurux_dlms.objects import GXDLMSDisconnectControl

    r = gurux(peers, ctl_meter, WRAPPER, sap=READER_SAP)
    dc = GXDLMSDisconnectControl(DISCONNECT)
    assert gurux_code(r.method, dc.remoteDisconnect(r.client)) == READ_WRITE_DENIED
    assert _set_mode(r, dc, 4) == READ_WRITE_DENIED
    assert _dc_state(r, dc) == (True, CONNECTED, DEMO_MODE)
    end(r)


# ------------------------------------------------------------ Token gateway


def _credit_and_paid(p, credit, charge):
    # Token credit current_credit_amount and the Charge's total_amount_paid
    # in one GET-with-list: the meter deducts what it charges in the same
    # tick, so their sum changes only by what is credited.
    v = p.read_list([(credit, 2), (charge, 2)])
    return int(v[0]), int(v[1])


def _enter(p, gateway, token):
    from gurux_dlms.enums import DataType

    # GXDLMSTokenGateway has no enter(): method 1, octet-string token
    return gurux_code(p.method, p.client.method(gateway, 1, token, DataType.OCTET_STRING))


def _token_status(p, gateway):
    p.read(gateway, 6)
    return int(gateway.statusCode)


@all_transports
def test_gurux_enters_a_token_and_the_credit_rises(ctl_meter, peers, transport):
    from gurux_dlms.objects import GXDLMSAccount, GXDLMSCharge, GXDLMSCredit, GXDLMSTokenGateway

    amount = 1234  # cents
    token_id, token = new_token(amount)
    p = gurux(peers, ctl_meter, transport)
    account = GXDLMSAccount(ACCOUNT)
    credit = GXDLMSCredit(TOKEN_CREDIT)
    charge = GXDLMSCharge(CHARGE)
    gateway = GXDLMSTokenGateway(TOKEN_GATEWAY)
    # the prepaid mode switch
    p.read(account, 2)
    assert (int(account.paymentMode), int(account.accountStatus)) == (CREDIT_MODE, ACTIVE)
    account.paymentMode = PREPAYMENT_MODE
    p.write(account, 2)
    p.read(account, 2)
    assert (int(account.paymentMode), int(account.accountStatus)) == (PREPAYMENT_MODE, ACTIVE)
    try:
        c0, paid0 = _credit_and_paid(p, credit, charge)
        assert _enter(p, gateway, token) == SUCCESS
        c1, paid1 = _credit_and_paid(p, credit, charge)
        assert c1 + paid1 == c0 + paid0 + amount, (c0, paid0, c1, paid1)
        assert _token_status(p, gateway) == EXECUTION_OK
        assert as_bytes(p.read(gateway, 2)) == token
        assert int(p.read(gateway, 5)) == 0  # delivered remotely
        p.read(gateway, 4)  # the demo format's description: id, amount
        assert [as_bytes(d) for d in gateway.descriptions] == [token_id.to_bytes(4, "big"), amount.to_bytes(4, "big")]
        # the account's available credit counts it
        assert int(p.read(account, 5)) >= c1 - 2
        # the same token again: refused (validation), nothing credited
        assert _enter(p, gateway, token) == OTHER_REASON
        assert _token_status(p, gateway) == VALIDATION_FAILURE
        # a forged one: the amount raised without the key
        forged = token[:5] + (amount * 100).to_bytes(4, "big") + token[9:]
        assert _enter(p, gateway, forged) == OTHER_REASON
        assert _token_status(p, gateway) == AUTHENTICATION_FAILURE
        # not a token of this format
        assert _enter(p, gateway, b"12345678901234567890") == OTHER_REASON
        assert _token_status(p, gateway) == FORMAT_FAILURE
        c2, paid2 = _credit_and_paid(p, credit, charge)
        assert c2 + paid2 == c1 + paid1, (c1, paid1, c2, paid2)
    finally:
        account.paymentMode = CREDIT_MODE  # the demo's post-paid default
        p.write(account, 2)
    end(p)


# ------------------------------------------------------- Activity calendar


def _every_year(month, day):
    # a season start, every year (year not specified), 00:00 local time
    from gurux_dlms import GXDateTime
    from gurux_dlms.enums import DateTimeSkips

    t = GXDateTime(datetime.datetime(2000, month, day, 0, 0, 0, tzinfo=datetime.timezone.utc))
    t.skip = DateTimeSkips.YEAR | DateTimeSkips.DAY_OF_WEEK | DateTimeSkips.MILLISECOND | DateTimeSkips.DEVITATION
    return t


def _at(hour, minute=0):
    # a day action's start time, hour:minute:00
    from gurux_dlms import GXTime
    from gurux_dlms.enums import DateTimeSkips

    t = GXTime(datetime.datetime(2000, 1, 1, hour, minute, 0, tzinfo=datetime.timezone.utc))
    t.skip |= DateTimeSkips.MILLISECOND
    return t


def tou_calendar(name, selector, week_days=None):
    # A passive calendar in gurux's object model: a summer and a winter
    # season with a week each, two day profiles; every action runs script
    # `selector` of the tariffication script table, so the active mask is
    # known whatever day and hour the test runs at. week_days: the day ids
    # of both weeks (default: 1 Mon-Fri, 2 Sat-Sun).
    from gurux_dlms.objects import GXDLMSDayProfile, GXDLMSDayProfileAction, GXDLMSSeasonProfile, GXDLMSWeekProfile

    seasons = [
        GXDLMSSeasonProfile(b"SUMMER", _every_year(4, 1), b"WSUM"),
        GXDLMSSeasonProfile(b"WINTER", _every_year(10, 1), b"WWIN"),
    ]
    ids = week_days or (1, 1, 1, 1, 1, 2, 2)
    weeks = []
    for wn in (b"WSUM", b"WWIN"):
        w = GXDLMSWeekProfile()
        w.name = wn
        w.monday, w.tuesday, w.wednesday, w.thursday, w.friday, w.saturday, w.sunday = ids
        weeks.append(w)
    days = [
        GXDLMSDayProfile(1, [GXDLMSDayProfileAction(_at(h), TARIFF_SCRIPTS, selector) for h in (0, 6, 22)]),
        GXDLMSDayProfile(2, [GXDLMSDayProfileAction(_at(0), TARIFF_SCRIPTS, selector)]),
    ]
    return name, seasons, weeks, days


def write_passive(p, cal, calendar):
    name, seasons, weeks, days = calendar
    cal.calendarNamePassive = name
    cal.seasonProfilePassive = seasons
    cal.weekProfileTablePassive = weeks
    cal.dayProfileTablePassive = days
    for attr in (6, 7, 8, 9):
        p.write(cal, attr)


def _seasons(items):
    return [(as_bytes(s.name), s.start.value.month, s.start.value.day, s.start.value.hour, s.start.value.minute, as_bytes(s.weekName)) for s in items]


def _weeks(items):
    return [(as_bytes(w.name), (w.monday, w.tuesday, w.wednesday, w.thursday, w.friday, w.saturday, w.sunday)) for w in items]


def _days(items):
    return [
        (d.dayId, [(a.startTime.value.hour, a.startTime.value.minute, a.scriptLogicalName, int(a.scriptSelector)) for a in d.daySchedules])
        for d in items
    ]


def _as_written(calendar):
    name, seasons, weeks, days = calendar
    return name, _seasons(seasons), _weeks(weeks), _days(days)


def read_calendar(p, cal, active):
    # (name, seasons, weeks, days) of the active or the passive calendar as
    # gurux decodes them
    first = 2 if active else 6
    for attr in range(first, first + 4):
        p.read(cal, attr)
    if active:
        return cal.calendarNameActive, _seasons(cal.seasonProfileActive), _weeks(cal.weekProfileTableActive), _days(cal.dayProfileTableActive)
    return cal.calendarNamePassive, _seasons(cal.seasonProfilePassive), _weeks(cal.weekProfileTablePassive), _days(cal.dayProfileTablePassive)


def active_mask(p):
    from gurux_dlms.objects import GXDLMSRegisterActivation

    ra = GXDLMSRegisterActivation(REGISTER_ACTIVATION)
    return as_bytes(p.read(ra, 4))


NOT_SPECIFIED = b"\xff" * 9 + b"\x80\x00\xff"  # deviation 0x8000: not specified


@all_transports
def test_gurux_writes_the_passive_calendar_and_activates_it(ctl_meter, peers, transport):
    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSActivityCalendar

    p = gurux(peers, ctl_meter, transport)
    cal = GXDLMSActivityCalendar(CALENDAR)
    # calendar A, every action tariff 2, by the method
    a = tou_calendar("GX-A-" + transport, 2)
    write_passive(p, cal, a)
    assert read_calendar(p, cal, active=False) == _as_written(a)
    p.method(cal.activatePassiveCalendar(p.client))
    assert read_calendar(p, cal, active=True) == _as_written(a)
    assert active_mask(p) == b"T2"  # the action in force ran at once
    # calendar B, every action tariff 1, by activate_passive_calendar_time
    b = tou_calendar("GX-B-" + transport, 1, (2, 2, 1, 1, 1, 1, 2))
    write_passive(p, cal, b)
    assert read_calendar(p, cal, active=True) == _as_written(a)  # not yet
    when = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=3)
    cal.time = GXDateTime(when)
    p.write(cal, 10)
    p.read(cal, 10)
    assert cal.time.value == when, cal.time
    deadline = time.monotonic() + 10
    while p.read(cal, 2) is not None and cal.calendarNameActive != b[0]:
        assert time.monotonic() < deadline, "the activation time passed and nothing was activated"
        time.sleep(0.5)
    assert read_calendar(p, cal, active=True) == _as_written(b)
    assert active_mask(p) == b"T1"
    # cleared: every field 0xFF (the deviation too: gurux then shows a
    # date-time with a +00:01 zone; 0x8000 would be "not specified")
    assert bytes(p.read(cal, 10)) == NOT_SPECIFIED
    end(p)


def test_gurux_inconsistent_passive_calendar_is_not_activated(ctl_meter, peers):
    # Each attribute is fine on its own (the meter checks references only
    # at activation: gurux writes them one by one), but the weeks name day
    # 3, which the day table lacks.
    from gurux_dlms import GXDateTime
    from gurux_dlms.enums import DateTimeSkips
    from gurux_dlms.objects import GXDLMSActivityCalendar

    p = gurux(peers, ctl_meter, WRAPPER)
    cal = GXDLMSActivityCalendar(CALENDAR)
    before = read_calendar(p, cal, active=True)
    mask = active_mask(p)
    bad = tou_calendar("GX-BAD", 2, (1, 1, 1, 1, 1, 3, 3))
    write_passive(p, cal, bad)
    assert read_calendar(p, cal, active=False) == _as_written(bad)
    assert gurux_code(p.method, cal.activatePassiveCalendar(p.client)) == OTHER_REASON
    assert read_calendar(p, cal, active=True) == before
    # by the activation time: dropped when it comes, the active one stays
    cal.time = GXDateTime(datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=1))
    p.write(cal, 10)
    deadline = time.monotonic() + 10
    while bytes(p.read(cal, 10)) != NOT_SPECIFIED:
        assert time.monotonic() < deadline, "the activation time was never acted upon"
        time.sleep(0.5)
    assert read_calendar(p, cal, active=True) == before
    assert active_mask(p) == mask
    # a season start without a month is refused at the SET
    cal.seasonProfilePassive[1].start.skip |= DateTimeSkips.MONTH
    assert gurux_code(p.write, cal, 7) == OTHER_REASON
    # seasons out of order: refused
    cal.seasonProfilePassive = list(reversed(tou_calendar("x", 2)[1]))
    assert gurux_code(p.write, cal, 7) == OTHER_REASON
    p.read(cal, 7)
    assert _seasons(cal.seasonProfilePassive) == _as_written(bad)[1]
    end(p)


# --------------------------------------------- Special days, Register activation


def test_gurux_inserts_and_deletes_a_special_day(ctl_meter, peers):
    from gurux_dlms import GXDate
    from gurux_dlms.enums import DateTimeSkips
    from gurux_dlms.objects import GXDLMSSpecialDay, GXDLMSSpecialDaysTable

    p = gurux(peers, ctl_meter, WRAPPER)
    sd = GXDLMSSpecialDaysTable(SPECIAL_DAYS)

    def entries():
        p.read(sd, 2)
        return [(e.index, e.date.value.month, e.date.value.day, bool(e.date.skip & DateTimeSkips.YEAR), e.dayId) for e in sd.entries]

    before = entries()
    day = GXDLMSSpecialDay()
    day.index = 7
    day.date = GXDate(datetime.datetime(2000, 7, 4, tzinfo=datetime.timezone.utc))
    day.date.skip |= DateTimeSkips.YEAR | DateTimeSkips.DAY_OF_WEEK
    day.dayId = 2  # a day id of the active calendar (written above)
    p.method(sd.insert(p.client, day))
    after = entries()
    assert (7, 7, 4, True, 2) in after and len(after) == len(before) + 1, after
    assert [e[0] for e in after] == sorted(e[0] for e in after)  # kept in index order
    # a day id no day profile of the active calendar has: refused
    day.index, day.dayId = 8, 99
    assert gurux_code(p.method, sd.insert(p.client, day)) == OTHER_REASON
    day.index = 7
    p.method(sd.delete(p.client, day))
    assert entries() == before
    assert gurux_code(p.method, sd.delete(p.client, day)) == OTHER_REASON  # no index 7 now
    end(p)


def test_gurux_reads_and_sets_the_active_mask(ctl_meter, peers):
    from gurux_dlms.objects import GXDLMSRegisterActivation

    p = gurux(peers, ctl_meter, WRAPPER)
    ra = GXDLMSRegisterActivation(REGISTER_ACTIVATION)
    p.read(ra, 2)
    p.read(ra, 3)
    assert [(int(o.objectType), o.logicalName) for o in ra.registerAssignment] == [(3, "1.0.1.8.1.255"), (3, "1.0.1.8.2.255")]
    assert [(as_bytes(name), list(idx)) for name, idx in ra.maskList] == [(b"T1", [1]), (b"T2", [2])]
    was = as_bytes(p.read(ra, 4))
    assert was in (b"T1", b"T2")
    other = b"T2" if was == b"T1" else b"T1"
    ra.activeMask = other
    p.write(ra, 4)
    assert as_bytes(p.read(ra, 4)) == other
    ra.activeMask = b"T9"  # no such mask
    assert gurux_code(p.write, ra, 4) == OTHER_REASON
    ra.activeMask = was
    p.write(ra, 4)
    assert as_bytes(p.read(ra, 4)) == was
    end(p)


# ------------------------------------------------------------------ Limiter


@all_transports
def test_gurux_sets_the_limiter_thresholds(ctl_meter, peers, transport):
    from gurux_dlms.objects import GXDLMSLimiter

    p = gurux(peers, ctl_meter, transport)
    lim = GXDLMSLimiter(LIMITER)
    # the demo's: 6 kW normal, 3 kW emergency, 60 s over, 120 s under;
    # reading them first tells gurux the thresholds' type
    # (double-long-unsigned, the monitored power's), which it writes with
    assert [int(p.read(lim, a)) for a in (4, 5, 6, 7)] == [6000, 3000, 60, 120]
    try:
        lim.thresholdNormal = 7500
        p.write(lim, 4)
        lim.minOverThresholdDuration = 90
        p.write(lim, 6)
        assert int(p.read(lim, 4)) == 7500 and lim.thresholdNormal == 7500
        assert int(p.read(lim, 6)) == 90 and lim.minOverThresholdDuration == 90
        # the threshold in force is the normal one (no emergency): it
        # follows at once
        assert int(p.read(lim, 3)) == 7500
        assert p.read(lim, 10) is False  # emergency_profile_active
        # a threshold of another type than the monitored value's: refused
        from gurux_dlms.enums import DataType

        lim.setDataType(4, DataType.INT16)
        lim.thresholdNormal = 5000
        assert gurux_code(p.write, lim, 4) == TYPE_UNMATCHED
        lim.setDataType(4, DataType.UINT32)
        assert int(p.read(lim, 4)) == 7500
    finally:
        lim.thresholdNormal = 6000
        p.write(lim, 4)
        lim.minOverThresholdDuration = 60
        p.write(lim, 6)
    assert [int(p.read(lim, a)) for a in (3, 4, 6)] == [6000, 6000, 60]
    end(p)


# --------------------------------------------------- Single action schedule


def _times(sas):
    from gurux_dlms.enums import DateTimeSkips as S

    out = []
    for t in sas.executionTime:
        v = t.value
        out.append(
            (
                None if t.skip & S.HOUR else v.hour,
                None if t.skip & S.MINUTE else v.minute,
                None if t.skip & S.MONTH else v.month,
                None if t.skip & S.DAY else v.day,
                bool(t.skip & S.YEAR),
            )
        )
    return out


def _monthly(day, hour, minute):
    # every month on `day`, hour:minute (year, month, weekday not specified)
    from gurux_dlms import GXDateTime
    from gurux_dlms.enums import DateTimeSkips as S

    t = GXDateTime(datetime.datetime(2000, 1, day, hour, minute, 0, tzinfo=datetime.timezone.utc))
    t.skip = S.YEAR | S.MONTH | S.DAY_OF_WEEK | S.MILLISECOND | S.DEVITATION
    return t


@all_transports
def test_gurux_sets_the_end_of_billing_execution_time(ctl_meter, peers, transport):
    from gurux_dlms.objects import GXDLMSActionSchedule

    p = gurux(peers, ctl_meter, transport)
    sas = GXDLMSActionSchedule(END_OF_BILLING)
    p.read(sas, 2)
    assert (sas.target.logicalName, int(sas.executedScriptSelector)) == ("0.0.10.0.1.255", 1)
    assert int(p.read(sas, 3)) == 1  # one execution time, wildcards allowed
    p.read(sas, 4)
    assert _times(sas) == [(0, 0, None, 1, True)]  # 00:00 on the first of every month
    try:
        sas.executionTime = [_monthly(2, 3, 30)]
        p.write(sas, 4)
        p.read(sas, 4)
        assert _times(sas) == [(3, 30, None, 2, True)]
        # type 1 holds one execution time
        sas.executionTime = [_monthly(2, 3, 30), _monthly(3, 3, 30)]
        assert gurux_code(p.write, sas, 4) == OTHER_REASON
        p.read(sas, 4)
        assert _times(sas) == [(3, 30, None, 2, True)]
    finally:
        sas.executionTime = [_monthly(1, 0, 0)]
        p.write(sas, 4)
    p.read(sas, 4)
    assert _times(sas) == [(0, 0, None, 1, True)]
    end(p)


# ------------------------------------------------------------- dlms-cosem


def cosem(peers, svc, transport, sap):
    return connected(peers(CosemPeer(svc, transport, sap=sap)))


def cosem_action(p, class_id, ln, method, data):
    # The action-result: 0, or the code dlms-cosem's ActionError names
    # ("Unsuccessful ActionRequest: TEMPORARY_FAILURE").
    from dlms_cosem.enumerations import ActionResultStatus

    try:
        p.action(class_id, ln, method, data)
    except Exception as e:
        if "ActionError" not in type(e).__name__:
            raise
        return int(ActionResultStatus[str(e).rsplit(" ", 1)[-1]])
    return SUCCESS


def cosem_dc(p):
    # (output_state, control_state, control_mode), A-XDR as received
    return tuple(p.get(70, DISCONNECT, a) for a in (2, 3, 4))


def _dc(output, state, mode):
    return (b"\x03" + bytes([output]), b"\x16" + bytes([state]), b"\x16" + bytes([mode]))


@all_transports
def test_dlms_cosem_reader_is_refused_and_management_drives_the_disconnect_control(ctl_meter, peers, transport):
    from dlms_cosem.dlms_data import EnumData, IntegerData, OctetStringData

    zero = IntegerData(0).to_bytes()
    r = cosem(peers, ctl_meter, transport, READER_SAP)
    assert cosem_action(r, 70, DISCONNECT, 1, zero) == READ_WRITE_DENIED
    assert cosem_action(r, 70, DISCONNECT, 2, zero) == READ_WRITE_DENIED
    assert int(r.set(70, DISCONNECT, 4, EnumData(4).to_bytes()).result) == READ_WRITE_DENIED
    assert cosem_dc(r) == _dc(1, CONNECTED, DEMO_MODE)  # but may read it
    r.release()
    r.disconnect()

    p = cosem(peers, ctl_meter, transport, SECURE_SAP)
    assert cosem_action(p, 70, DISCONNECT, 1, zero) == SUCCESS
    assert cosem_dc(p) == _dc(0, DISCONNECTED, DEMO_MODE)
    assert not relay_closed(ctl_meter)
    assert cosem_action(p, 70, DISCONNECT, 2, zero) == SUCCESS
    assert cosem_dc(p) == _dc(0, READY, DEMO_MODE)
    assert int(p.set(70, DISCONNECT, 4, EnumData(4).to_bytes()).result) == SUCCESS
    assert cosem_action(p, 70, DISCONNECT, 2, zero) == TEMPORARY_FAILURE  # no remote R -> C in mode 4
    assert cosem_action(p, 70, DISCONNECT, 1, zero) == SUCCESS
    assert cosem_action(p, 70, DISCONNECT, 2, zero) == SUCCESS
    assert cosem_dc(p) == _dc(1, CONNECTED, 4)
    assert relay_closed(ctl_meter)
    assert int(p.set(70, DISCONNECT, 4, EnumData(7).to_bytes()).result) == OTHER_REASON
    assert int(p.set(70, DISCONNECT, 4, IntegerData(5).to_bytes()).result) == TYPE_UNMATCHED  # an enum, not an integer
    assert int(p.set(70, DISCONNECT, 4, EnumData(DEMO_MODE).to_bytes()).result) == SUCCESS
    assert cosem_dc(p) == _dc(1, CONNECTED, DEMO_MODE)
    # the method's parameter is integer(0) (any integer type or null-data
    # passes): an octet-string is refused and nothing happens
    assert cosem_action(p, 70, DISCONNECT, 1, OctetStringData(b"\x00").to_bytes()) == TYPE_UNMATCHED
    assert cosem_dc(p) == _dc(1, CONNECTED, DEMO_MODE)
    p.release()
    p.disconnect()


@all_transports
def test_dlms_cosem_enters_a_token_once(ctl_meter, peers, transport):
    from dlms_cosem.dlms_data import OctetStringData

    _id, token = new_token(500)
    r = cosem(peers, ctl_meter, transport, READER_SAP)
    assert cosem_action(r, 115, TOKEN_GATEWAY, 1, OctetStringData(token).to_bytes()) == READ_WRITE_DENIED
    r.release()
    r.disconnect()
    p = cosem(peers, ctl_meter, transport, SECURE_SAP)
    assert cosem_action(p, 115, TOKEN_GATEWAY, 1, OctetStringData(token).to_bytes()) == SUCCESS
    assert p.get(115, TOKEN_GATEWAY, 6) == b"\x02\x02\x16" + bytes([EXECUTION_OK]) + b"\x04\x00"
    assert cosem_action(p, 115, TOKEN_GATEWAY, 1, OctetStringData(token).to_bytes()) == OTHER_REASON
    assert p.get(115, TOKEN_GATEWAY, 6) == b"\x02\x02\x16" + bytes([VALIDATION_FAILURE]) + b"\x04\x00"
    p.release()
    p.disconnect()


# ---------------------------------------------- the prepayment cycle, end to end


def _wait(p, read, want, what, limit=6.0):
    # read() until it gives want (the meter's 1 s tick acts on its own)
    deadline = time.monotonic() + limit
    while True:
        got = read()
        if got == want:
            return got
        assert time.monotonic() < deadline, "%s: still %r, want %r" % (what, got, want)
        time.sleep(0.3)


def test_gurux_prepaid_credit_runs_out_and_a_token_closes_the_relay(ctl_meter, peers):
    # Prepayment mode, the token credit set to 0 by its method: at the next
    # tick the account opens the relay (Disconnect control transition g,
    # ready_for_reconnection); the emergency credit is not invoked, so the
    # customer's button does nothing. A token then closes it at once
    # (transition h, mode 5).
    from gurux_dlms.objects import GXDLMSAccount, GXDLMSCredit, GXDLMSDisconnectControl, GXDLMSTokenGateway

    p = gurux(peers, ctl_meter, WRAPPER)
    account = GXDLMSAccount(ACCOUNT)
    credit = GXDLMSCredit(TOKEN_CREDIT)
    dc = GXDLMSDisconnectControl(DISCONNECT)
    gateway = GXDLMSTokenGateway(TOKEN_GATEWAY)
    assert _dc_state(p, dc) == (True, CONNECTED, DEMO_MODE)
    account.paymentMode, account.accountStatus = PREPAYMENT_MODE, ACTIVE
    p.write(account, 2)
    try:
        p.method(credit.setAmountToValue(p.client, 0))
        _wait(p, lambda: int(p.read(dc, 3)), READY, "control_state after the credit ran out")
        assert p.read(dc, 2) is False and not relay_closed(ctl_meter)
        assert int(p.read(account, 5)) <= 0  # available_credit
        assert _enter(p, gateway, new_token(700)[1]) == SUCCESS
        assert _dc_state(p, dc) == (True, CONNECTED, DEMO_MODE)
        assert relay_closed(ctl_meter)
        assert 0 < int(p.read(account, 5)) <= 700
    finally:
        account.paymentMode = CREDIT_MODE
        p.write(account, 2)
        p.method(credit.setAmountToValue(p.client, 1000))
    end(p)


# ----------------------------------------------------------- across a restart


def test_what_clients_changed_survives_a_meter_restart(tmp_path, peers):
    # A relay opened remotely stays open, an activated calendar stays
    # active, a special day stays, and a token entered before the restart
    # is refused after it (its credit kept).
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage
    from gurux_dlms import GXDate
    from gurux_dlms.enums import DateTimeSkips
    from gurux_dlms.objects import (
        GXDLMSActivityCalendar,
        GXDLMSCredit,
        GXDLMSDisconnectControl,
        GXDLMSSpecialDay,
        GXDLMSSpecialDaysTable,
        GXDLMSTokenGateway,
    )

    def start(counters=None):
        svc = ThreadedService(DemoMeter(storage=FileStorage(str(tmp_path)), seed=1), host="127.0.0.1", wrapper_port=0, hdlc_port=0)
        if counters is not None:
            svc.hes_counters = counters  # the head-end's invocation counters
        return svc.start()

    _id, token = new_token(250)
    calendar = tou_calendar("GX-KEPT", 1)
    dc = GXDLMSDisconnectControl(DISCONNECT)
    cal = GXDLMSActivityCalendar(CALENDAR)
    sd = GXDLMSSpecialDaysTable(SPECIAL_DAYS)
    credit = GXDLMSCredit(TOKEN_CREDIT)
    gateway = GXDLMSTokenGateway(TOKEN_GATEWAY)
    svc = start()
    try:
        p = gurux(peers, svc, WRAPPER)
        p.method(dc.remoteDisconnect(p.client))
        write_passive(p, cal, calendar)
        p.method(cal.activatePassiveCalendar(p.client))
        day = GXDLMSSpecialDay()
        day.index, day.dayId = 9, 1
        day.date = GXDate(datetime.datetime(2000, 5, 1, tzinfo=datetime.timezone.utc))
        day.date.skip |= DateTimeSkips.YEAR | DateTimeSkips.DAY_OF_WEEK
        p.method(sd.insert(p.client, day))
        assert _enter(p, gateway, token) == SUCCESS
        credit_before = int(p.read(credit, 2))
        end(p)
        counters = svc.hes_counters
    finally:
        svc.stop()
    svc = start(counters)
    try:
        assert not relay_closed(svc)
        p = gurux(peers, svc, WRAPPER)
        assert _dc_state(p, dc) == (False, DISCONNECTED, DEMO_MODE)
        assert read_calendar(p, cal, active=True) == _as_written(calendar)
        assert active_mask(p) == b"T1"
        p.read(sd, 2)
        assert [(e.index, e.date.value.month, e.date.value.day, e.dayId) for e in sd.entries if e.index == 9] == [(9, 5, 1, 1)]
        assert _enter(p, gateway, token) == OTHER_REASON
        assert _token_status(p, gateway) == VALIDATION_FAILURE
        assert credit_before - 2 <= int(p.read(credit, 2)) <= credit_before
        end(p)
    finally:
        svc.stop()


# --------------------------------------------------- scripts run by a client


def test_gurux_executes_the_tariff_and_disconnector_scripts(ctl_meter, peers):
    # A head-end switches the tariff, or the relay, by running the script
    # the calendar or the limiter would run.
    from gurux_dlms.objects import GXDLMSDisconnectControl, GXDLMSScriptTable

    p = gurux(peers, ctl_meter, WRAPPER)
    tariff = GXDLMSScriptTable(TARIFF_SCRIPTS)
    disconnector = GXDLMSScriptTable(DISCONNECTOR_SCRIPTS)
    dc = GXDLMSDisconnectControl(DISCONNECT)
    was = active_mask(p)
    try:
        p.method(tariff.execute(p.client, 1))
        assert active_mask(p) == b"T1"
        p.method(tariff.execute(p.client, 2))
        assert active_mask(p) == b"T2"
        p.method(tariff.execute(p.client, 0))  # the null script
        assert active_mask(p) == b"T2"
        assert gurux_code(p.method, tariff.execute(p.client, 3)) == OTHER_REASON  # no script 3
        p.method(disconnector.execute(p.client, 1))  # remote_disconnect
        assert _dc_state(p, dc) == (False, DISCONNECTED, DEMO_MODE)
        p.method(disconnector.execute(p.client, 2))  # remote_reconnect: ready (mode 5)
        assert _dc_state(p, dc) == (False, READY, DEMO_MODE)
    finally:
        _set_mode(p, dc, 0)  # connects
        _set_mode(p, dc, DEMO_MODE)
        p.method(tariff.execute(p.client, int(was[1:])))
    assert _dc_state(p, dc) == (True, CONNECTED, DEMO_MODE)
    # the reader may not run them
    r = gurux(peers, ctl_meter, WRAPPER, sap=READER_SAP)
    assert gurux_code(r.method, disconnector.execute(r.client, 1)) == READ_WRITE_DENIED
    assert _dc_state(r, dc) == (True, CONNECTED, DEMO_MODE)
    end(r)
    end(p)


def test_gurux_adds_and_deletes_a_register_activation_mask(ctl_meter, peers):
    from gurux_dlms.objects import GXDLMSRegisterActivation

    p = gurux(peers, ctl_meter, WRAPPER)
    ra = GXDLMSRegisterActivation(REGISTER_ACTIVATION)

    def masks():
        p.read(ra, 3)
        return [(as_bytes(name), list(idx)) for name, idx in ra.maskList]

    assert masks() == [(b"T1", [1]), (b"T2", [2])]
    p.method(ra.addMask(p.client, b"BOTH", [1, 2]))
    assert masks() == [(b"T1", [1]), (b"T2", [2]), (b"BOTH", [1, 2])]
    assert gurux_code(p.method, ra.addMask(p.client, b"T3", [3])) == OTHER_REASON  # no register 3
    p.method(ra.removeMask(p.client, b"BOTH"))
    assert masks() == [(b"T1", [1]), (b"T2", [2])]
    assert gurux_code(p.method, ra.removeMask(p.client, b"BOTH")) == OTHER_REASON
    end(p)


def test_gurux_sets_an_emergency_profile_and_the_limiter_follows_it(ctl_meter, peers):
    # Emergency profile 5 for 30 s from now, group 5 in the list: the
    # threshold in force becomes the emergency one at the next tick; the
    # group list emptied, the normal one again.
    from gurux_dlms import GXDateTime
    from gurux_dlms.objects import GXDLMSLimiter

    p = gurux(peers, ctl_meter, WRAPPER)
    lim = GXDLMSLimiter(LIMITER)
    for a in (8, 9):
        p.read(lim, a)
    assert int(p.read(lim, 3)) == 6000
    try:
        lim.emergencyProfile.id = 5
        lim.emergencyProfile.activationTime = GXDateTime(datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0))
        lim.emergencyProfile.duration = 30
        p.write(lim, 8)
        lim.emergencyProfileGroupIDs = [5]
        p.write(lim, 9)
        p.read(lim, 8)
        assert (lim.emergencyProfile.id, lim.emergencyProfile.duration) == (5, 30)
        assert list(p.read(lim, 9)) == [5]
        _wait(p, lambda: p.read(lim, 10), True, "emergency_profile_active")
        assert int(p.read(lim, 3)) == 3000
    finally:
        lim.emergencyProfileGroupIDs = []
        p.write(lim, 9)
    _wait(p, lambda: p.read(lim, 10), False, "emergency_profile_active after the group list was emptied")
    assert int(p.read(lim, 3)) == 6000
    end(p)
