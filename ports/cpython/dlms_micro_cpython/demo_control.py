# The demo meter's tariff, control and prepayment objects, by name: what
# meters/demo.json defines for them (time of use with two rates, end of
# billing, disconnect control, limiter, prepayment with a token gateway).
# See the "demo" sections of README.md for how they behave.

from dlms_micro_cpython.simulator import BUTTON_DELAY, DEMO_TOKEN_KEY  # noqa: F401

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
