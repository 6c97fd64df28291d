# REFERENCE ONLY: the demo meter's tariff, control and prepayment objects as
# written by hand before the demo became a meter definition (meters/demo.json);
# see reference_demo_table.py.
#
# TIME OF USE (two rates). The Activity calendar 0.0.13.0.0.255 runs the
# tariffication script table 0.0.10.0.100.255 (script 1: active_mask "T1",
# script 2: "T2") on the Register activation 0.0.14.0.1.255, so the import
# energy accumulates in 1.0.1.8.1.255 (T1, peak) or 1.0.1.8.2.255 (T2,
# off-peak):
#   summer (from 1 April)   Mon-Fri  T1 07:00-23:00, T2 otherwise
#   winter (from 1 October) Mon-Fri  T1 06:00-22:00, T2 otherwise
#   Saturday, Sunday and the special days 0.0.11.0.0.255 (1 January,
#   25 December): T2 all day
# Local time is the Clock's (UTC in the demo unless a client sets a time
# zone). Management may write the passive calendar and activate it.
#
# END OF BILLING. The Single action schedule 0.0.15.0.0.255 runs script 1 of
# 0.0.10.0.1.255 at 00:00 on the first of each month: it resets the maximum
# demand 1.0.1.6.0.255 (the monthly billing period starts over).
#
# SUPPLY CONTROL. Disconnect control 0.0.96.3.10.255, control mode 5 by
# default: remote_disconnect opens the relay; remote_reconnect makes it
# ready for reconnection and the customer closes it with the button (the
# simulated customer presses it a minute later, unless the prepaid account
# is out of credit); the prepayment account opens and closes it itself.
# Limiter 0.0.17.0.0.255 on the active power 1.0.1.7.0.255: over 6 kW
# (emergency 3 kW) for 60 s runs script 1 of the disconnector script table
# 0.0.10.0.106.255 (remote_disconnect), back under it for 120 s script 2
# (remote_reconnect). While the relay is open the house draws nothing and
# the PV feeds nothing in.
#
# PREPAYMENT. Account 0.0.19.0.0.255 in credit mode (post-paid) by default;
# SET of its attribute 2 (payment mode 2) or `serve --prepaid` switches to
# prepayment: consumption at 25 cents/kWh (Charge 0.0.19.20.0.255) is
# deducted from the token credit 0.0.19.10.0.255 (then the emergency credit
# 0.0.19.10.1.255 once invoked); low credit below 2 EUR; out of credit the
# relay opens, a top-up closes it. Top-up tokens go through the Token
# gateway 0.0.19.40.0.255 (method enter): the demo's token format with
# DEMO_TOKEN_KEY (`dlms-micro token --id N --amount CENTS` makes one); each
# token id is accepted once.

from dlms_micro import axdr
from dlms_micro.cosem import base, disconnect, monitor, prepay, schedule, script, tariff
from dlms_micro.cosem.disconnect import DISCONNECT_CONTROL
from dlms_micro.cosem.monitor import LIMITER, LimiterState
from dlms_micro.cosem.prepay import ACCOUNT, CHARGE, CREDIT
from dlms_micro.cosem.register import REGISTER
from dlms_micro.cosem.schedule import SINGLE_ACTION_SCHEDULE, Schedule
from dlms_micro.cosem.script import SCRIPT_TABLE
from dlms_micro.cosem.tariff import ACTIVITY_CALENDAR, REGISTER_ACTIVATION, SPECIAL_DAYS_TABLE, Calendar, RegisterActivation, SpecialDays
from dlms_micro.cosem.token_gateway import TOKEN_GATEWAY, TokenState

# Demo-only token key (public: never use it in a real meter)
DEMO_TOKEN_KEY = bytes.fromhex("544F4B454E2D44454D4F2D4F4E4C5921")  # "TOKEN-DEMO-ONLY!"

OBIS_T1 = bytes((1, 0, 1, 8, 1, 255))
OBIS_T2 = bytes((1, 0, 1, 8, 2, 255))
OBIS_REGISTER_ACTIVATION = bytes((0, 0, 14, 0, 1, 255))
OBIS_TARIFF_SCRIPTS = bytes((0, 0, 10, 0, 100, 255))
OBIS_SPECIAL_DAYS = bytes((0, 0, 11, 0, 0, 255))
OBIS_CALENDAR = bytes((0, 0, 13, 0, 0, 255))
OBIS_BILLING_SCRIPTS = bytes((0, 0, 10, 0, 1, 255))
OBIS_END_OF_BILLING = bytes((0, 0, 15, 0, 0, 255))
OBIS_DISCONNECT = bytes((0, 0, 96, 3, 10, 255))
OBIS_DISCONNECTOR_SCRIPTS = bytes((0, 0, 10, 0, 106, 255))
OBIS_LIMITER = bytes((0, 0, 17, 0, 0, 255))
OBIS_ACCOUNT = bytes((0, 0, 19, 0, 0, 255))
OBIS_TOKEN_CREDIT = bytes((0, 0, 19, 10, 0, 255))
OBIS_EMERGENCY_CREDIT = bytes((0, 0, 19, 10, 1, 255))
OBIS_CHARGE = bytes((0, 0, 19, 20, 0, 255))
OBIS_TOKEN_GATEWAY = bytes((0, 0, 19, 40, 0, 255))

CONTROL_MODE = 5
LIMIT_W = 6000
EMERGENCY_LIMIT_W = 3000
PRICE_CENTS_PER_KWH = 25
LOW_CREDIT_CENTS = 200
FIRST_CREDIT_CENTS = 1000  # a new meter's token credit
EMERGENCY_CREDIT_CENTS = 500
BUTTON_DELAY = 60  # s the simulated customer takes to press the button


def _start(month, day):
    # a season start: every year, month-day 00:00, local time
    return bytes((0xFF, 0xFF, month, day, 0xFF, 0, 0, 0, 0xFF, 0x80, 0x00, 0xFF))


def _hm(h, m=0):
    return bytes((h, m, 0, 0))


SEASONS = ((b"SUMMER", _start(4, 1), b"SUM"), (b"WINTER", _start(10, 1), b"WIN"))
WEEKS = ((b"SUM", (1, 1, 1, 1, 1, 3, 3)), (b"WIN", (2, 2, 2, 2, 2, 3, 3)))
DAYS = (
    (1, ((_hm(0), OBIS_TARIFF_SCRIPTS, 2), (_hm(7), OBIS_TARIFF_SCRIPTS, 1), (_hm(23), OBIS_TARIFF_SCRIPTS, 2))),
    (2, ((_hm(0), OBIS_TARIFF_SCRIPTS, 2), (_hm(6), OBIS_TARIFF_SCRIPTS, 1), (_hm(22), OBIS_TARIFF_SCRIPTS, 2))),
    (3, ((_hm(0), OBIS_TARIFF_SCRIPTS, 2),)),
)
SPECIAL_DAYS = ((1, b"\xff\xff\x01\x01\xff", 3), (2, b"\xff\xff\x0c\x19\xff", 3))  # 1 Jan, 25 Dec


def objects(slots, modes, ro, storage, obis_max_demand, obis_power, obis_import, prepaid=False):
    # The table entries (class, version, ln, ic, slot, access, param), with
    # their state made by slots(values) -> first slot. modes(n, (i, mode)...,
    # default=) -> access bytes; ro(ic) -> read-only access pair.
    R, RW = base.READ, base.READ_WRITE
    dlu = axdr.DOUBLE_LONG_UNSIGNED

    def access(ic, writable=(), methods=True):
        # reader: read; management: read, write `writable`, every method
        mgmt = (modes(ic.attribute_count, *((a, RW) for a in writable), default=R),
                modes(ic.method_count, default=1 if methods else 0))
        return (None, ro(ic), mgmt)

    def key(name):
        return name if storage is not None else None

    tou_scripts = tuple((k, (script.action(script.WRITE_ATTRIBUTE, 6, OBIS_REGISTER_ACTIVATION, 4, axdr.OCTET_STRING,
                                           b"T%d" % k),)) for k in (1, 2))
    billing_scripts = ((1, (script.action(script.EXECUTE_METHOD, 4, obis_max_demand, 1, axdr.INTEGER, 0),)),)
    disconnector_scripts = tuple((k, (script.action(script.EXECUTE_METHOD, 70, OBIS_DISCONNECT, k, axdr.INTEGER, 0),))
                                 for k in (1, 2))
    ra_param = (4, 4, 4, 8)
    ra = RegisterActivation(ra_param, [(3, OBIS_T1), (3, OBIS_T2)], [(b"T1", b"\x01"), (b"T2", b"\x02")], b"T1",
                            storage, key("tou.ra"))
    sd = SpecialDays((16,), SPECIAL_DAYS, storage, key("tou.sd"))
    cal_param = (OBIS_SPECIAL_DAYS, 16, 128, 64, 256)
    cal = Calendar(cal_param, b"DMI-TOU1", SEASONS, WEEKS, DAYS, storage, key("tou.cal"))
    # every month, day 1, 00:00 (type 1: one time, date wildcards)
    sas = Schedule((1,), OBIS_BILLING_SCRIPTS, 1, 1, ((b"\x00\x00\x00\x00", b"\xff\xff\xff\x01\xff"),), storage,
                   key("billing.sas"))
    limiter_param = (dlu, 4)
    lim = LimiterState(limiter_param, (3, obis_power, 2), normal=LIMIT_W, emergency=EMERGENCY_LIMIT_W, min_over=60,
                       min_under=120, over_action=(OBIS_DISCONNECTOR_SCRIPTS, 1),
                       under_action=(OBIS_DISCONNECTOR_SCRIPTS, 2))
    charge_param = (0, 1, (3, obis_import, 2), -3, 0, b"\x01", 0x40, 100, 0)  # cents per kWh from Wh
    account_param = ((OBIS_TOKEN_CREDIT, OBIS_EMERGENCY_CREDIT), (OBIS_CHARGE,), OBIS_DISCONNECT, (b"EUR", -2, 0),
                     ((OBIS_TOKEN_CREDIT, 100),), 0, 0)
    mode = prepay.PREPAYMENT_MODE if prepaid else prepay.CREDIT_MODE
    return (
        (3, 0, OBIS_T1, REGISTER, slots([0]), (None, ro(REGISTER), ro(REGISTER)), (0, 30, dlu)),
        (3, 0, OBIS_T2, REGISTER, slots([0]), (None, ro(REGISTER), ro(REGISTER)), (0, 30, dlu)),
        (6, 0, OBIS_REGISTER_ACTIVATION, REGISTER_ACTIVATION, slots([ra]), access(REGISTER_ACTIVATION, (4,)), ra_param),
        (9, 0, OBIS_TARIFF_SCRIPTS, SCRIPT_TABLE, -1, access(SCRIPT_TABLE), tou_scripts),
        (11, 0, OBIS_SPECIAL_DAYS, SPECIAL_DAYS_TABLE, slots([sd]), access(SPECIAL_DAYS_TABLE, (2,)), (16,)),
        (20, 0, OBIS_CALENDAR, ACTIVITY_CALENDAR, slots([cal]), access(ACTIVITY_CALENDAR, (6, 7, 8, 9, 10)), cal_param),
        (9, 0, OBIS_BILLING_SCRIPTS, SCRIPT_TABLE, -1, access(SCRIPT_TABLE), billing_scripts),
        (22, 0, OBIS_END_OF_BILLING, SINGLE_ACTION_SCHEDULE, slots([sas]), access(SINGLE_ACTION_SCHEDULE, (2, 3, 4)), (1,)),
        (70, 0, OBIS_DISCONNECT, DISCONNECT_CONTROL,
         slots(disconnect.initial_state(CONTROL_MODE, disconnect.CONNECTED, storage, key("dc"))),
         access(DISCONNECT_CONTROL, (4,)), (0,)),
        (9, 0, OBIS_DISCONNECTOR_SCRIPTS, SCRIPT_TABLE, -1, access(SCRIPT_TABLE), disconnector_scripts),
        (71, 0, OBIS_LIMITER, LIMITER, slots([lim]), access(LIMITER, (2, 3, 4, 5, 6, 7, 8, 9, 11)), limiter_param),
        (112, 0, OBIS_TOKEN_CREDIT, CREDIT, slots(prepay.credit_state(FIRST_CREDIT_CENTS, priority=1)),
         access(CREDIT, (4, 5, 6, 9, 10)), (0, 0x88, None)),
        (112, 0, OBIS_EMERGENCY_CREDIT, CREDIT,
         slots(prepay.credit_state(EMERGENCY_CREDIT_CENTS, prepay.SELECTABLE, priority=2)),
         access(CREDIT, (4, 5, 6, 9, 10)), (2, 0xC0, None)),
        (113, 0, OBIS_CHARGE, CHARGE, slots(prepay.charge_state(PRICE_CENTS_PER_KWH)), access(CHARGE), charge_param),
        (111, 0, OBIS_ACCOUNT, ACCOUNT,
         slots(prepay.account_state(mode, low_credit_threshold=LOW_CREDIT_CENTS, storage=storage, key=key("prepay"))),
         access(ACCOUNT, (2, 7, 16, 17)), account_param),
        (115, 0, OBIS_TOKEN_GATEWAY, TOKEN_GATEWAY, slots([TokenState(DEMO_TOKEN_KEY, storage, key("tokens"))]),
         access(TOKEN_GATEWAY), (OBIS_ACCOUNT,)),
    )


class Control:
    # Ticks the objects above from the simulation (every step, with the
    # meter's time), routes the import energy into the active rate, and
    # says whether the supply is on.
    def __init__(self, meter, find):
        self.meter = meter
        self.ra = find(OBIS_REGISTER_ACTIVATION)
        self.cal = find(OBIS_CALENDAR)
        self.sas = find(OBIS_END_OF_BILLING)
        self.dc = find(OBIS_DISCONNECT)
        self.lim = find(OBIS_LIMITER)
        self.account = find(OBIS_ACCOUNT)
        self.closed = True  # the relay, as Meter.relay last set it
        self._ready_since = None
        meter.relay = self._relay
        disconnect.restore(meter, self.dc)
        disconnect.apply(meter, self.dc)
        prepay.restore(meter, self.account)

    def _relay(self, index, closed):
        self.closed = closed

    def connected(self):
        return disconnect.connected(self.meter, self.dc)

    def add_import(self, wh):
        tariff.add_energy(self.meter, self.ra, wh)

    def tick(self, utc):
        m = self.meter
        tariff.tick(m, self.cal, utc)
        schedule.tick(m, self.sas, utc)
        monitor.tick_limiter(m, self.lim, utc)
        prepay.tick(m, self.account, utc)
        self._customer(utc)

    def _customer(self, utc):
        # the simulated customer presses the reconnect button a minute after
        # the meter became ready for reconnection, unless out of credit
        m = self.meter
        if disconnect.control_state(m, self.dc) != disconnect.READY_FOR_RECONNECTION:
            self._ready_since = None
            return
        if self._ready_since is None:
            self._ready_since = utc
            return
        a = self.account[base.E_SLOT]
        prepaid = m.state[a + prepay.A_MODE] == prepay.PREPAYMENT_MODE
        if utc - self._ready_since >= BUTTON_DELAY and not (prepaid and m.state[a + prepay.A_AVAILABLE] <= 0):
            disconnect.manual_reconnect(m, self.dc)
            self._ready_since = None

    def save(self):
        prepay.save(self.meter, self.account)
