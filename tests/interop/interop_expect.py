# What the demo meter holds, as a client should see it (independent of the
# meter's own code, so a mismatch shows up as a failure).

import time

ASSOCIATION = "0.0.40.0.0.255"
LDN = "0.0.42.0.0.255"
SERIAL = "0.0.96.1.0.255"
FIRMWARE = "1.0.0.2.0.255"
CLOCK = "0.0.1.0.0.255"
ENERGY_IMPORT = "1.0.1.8.0.255"
ENERGY_EXPORT = "1.0.2.8.0.255"
POWER = "1.0.1.7.0.255"
VOLTAGE = "1.0.32.7.0.255"
CURRENT = "1.0.31.7.0.255"
HDLC_SETUP = "0.0.22.0.0.255"
SAP_ASSIGNMENT = "0.0.41.0.0.255"
SECURITY_SETUP = "0.0.43.0.0.255"
INVOCATION_COUNTER = "0.0.43.1.0.255"
PUSH_SETUP = "0.0.25.9.0.255"
IMAGE_TRANSFER = "0.0.44.0.0.255"
COMPACT_DATA = "0.0.66.0.1.255"
# time of use, billing, supply control, prepayment (meters/demo.json)
TARIFF_OBJECTS = {
    "1.0.1.8.1.255": 3,
    "1.0.1.8.2.255": 3,
    "0.0.14.0.1.255": 6,
    "0.0.10.0.100.255": 9,
    "0.0.11.0.0.255": 11,
    "0.0.13.0.0.255": 20,
    "0.0.10.0.1.255": 9,
    "0.0.15.0.0.255": 22,
    "0.0.96.3.10.255": 70,
    "0.0.10.0.106.255": 9,
    "0.0.17.0.0.255": 71,
    "0.0.19.10.0.255": 112,
    "0.0.19.10.1.255": 112,
    "0.0.19.20.0.255": 113,
    "0.0.19.0.0.255": 111,
    "0.0.19.40.0.255": 115,
    # the voltage quality monitor and the script table its actions run
    "0.0.16.1.0.255": 21,
    "0.0.10.0.105.255": 9,
    # failed authentications since power-up (the auth guard's counter)
    "0.0.96.15.2.255": 1,
}
# one Association LN per association (0.0.40.0.N.255, N its position),
# each visible to its own association only
ASSOCIATION_OF_SAP = {16: "0.0.40.0.1.255", 32: "0.0.40.0.2.255", 1: "0.0.40.0.3.255"}
DEMAND = "1.0.1.4.0.255"
MAX_DEMAND = "1.0.1.6.0.255"
PROFILE_STATUS = "0.0.96.10.1.255"
EVENT_CODE = "0.0.96.11.0.255"
LOAD_PROFILE = "1.0.99.1.0.255"
PQ_PROFILE = "1.0.99.2.0.255"
DAILY_PROFILE = "1.0.98.1.0.255"
EVENT_LOG = "0.0.99.98.0.255"

CLASS = {
    ASSOCIATION: 15,
    LDN: 1,
    SERIAL: 1,
    FIRMWARE: 1,
    CLOCK: 8,
    ENERGY_IMPORT: 3,
    ENERGY_EXPORT: 3,
    POWER: 3,
    VOLTAGE: 3,
    CURRENT: 3,
    HDLC_SETUP: 23,
    SAP_ASSIGNMENT: 17,
    SECURITY_SETUP: 64,
    INVOCATION_COUNTER: 1,
    DEMAND: 5,
    PUSH_SETUP: 40,
    IMAGE_TRANSFER: 18,
    COMPACT_DATA: 62,
    MAX_DEMAND: 4,
    PROFILE_STATUS: 1,
    EVENT_CODE: 1,
    LOAD_PROFILE: 7,
    PQ_PROFILE: 7,
    DAILY_PROFILE: 7,
    EVENT_LOG: 7,
    **TARIFF_OBJECTS,
    **{ln: 15 for ln in ASSOCIATION_OF_SAP.values()},
}

# Profile generic capture objects: (class id, logical name, attribute,
# data index), in column order
CAPTURE_OBJECTS = {
    LOAD_PROFILE: [(8, CLOCK, 2, 0), (1, PROFILE_STATUS, 2, 0), (3, ENERGY_IMPORT, 2, 0), (3, ENERGY_EXPORT, 2, 0)],
    PQ_PROFILE: [(8, CLOCK, 2, 0), (3, VOLTAGE, 2, 0), (3, CURRENT, 2, 0), (3, POWER, 2, 0)],
    DAILY_PROFILE: [(8, CLOCK, 2, 0), (3, ENERGY_IMPORT, 2, 0), (3, ENERGY_EXPORT, 2, 0), (4, MAX_DEMAND, 2, 0)],
    EVENT_LOG: [(8, CLOCK, 2, 0), (1, EVENT_CODE, 2, 0)],
}
CAPTURE_PERIOD = {LOAD_PROFILE: 900, PQ_PROFILE: 300, DAILY_PROFILE: 86400, EVENT_LOG: 0}

# Security setup only in the management association; the invocation counter
# in every one (head-ends read it as the public client before associating)
PUBLIC_OBJECTS = {ASSOCIATION, LDN, CLOCK, INVOCATION_COUNTER, ASSOCIATION_OF_SAP[16]}
ALL_OBJECTS = set(CLASS) - set(ASSOCIATION_OF_SAP.values())
OBJECTS_BY_SAP = {16: PUBLIC_OBJECTS, 32: ALL_OBJECTS - {SECURITY_SETUP} | {ASSOCIATION_OF_SAP[32]},
                  1: ALL_OBJECTS | {ASSOCIATION_OF_SAP[1]}}
SAPS = (16, 32, 1)

LDN_VALUE = b"DMI0000000012345"
# the meter's system title: "DMI" and serial number 12345678 in 5 bytes
METER_TITLE = b"DMI\x00\x00\xbc\x61\x4e"
SECURITY_POLICY = 0x6C  # authenticated and encrypted requests and responses

# Register scaler and unit (Blue Book unit enum: 27 W, 30 Wh, 33 A, 35 V)
SCALER_UNIT = {
    ENERGY_IMPORT: (0, 30),
    ENERGY_EXPORT: (0, 30),
    POWER: (0, 27),
    VOLTAGE: (-1, 35),
    CURRENT: (-2, 33),
}


def plausible(obis, raw):
    # A register value (raw, before the scaler) the simulated load can give.
    if obis == VOLTAGE:
        return 2070 <= raw <= 2530  # 207.0 .. 253.0 V
    if obis == CURRENT:
        return 0 <= raw <= 2000  # 0 .. 20 A
    if obis == POWER:
        return 0 <= raw <= 5000
    return 0 <= raw < 2**32


def now_utc():
    return int(time.time())

# Profile generic profile_entries (rows each profile keeps)
PROFILE_ENTRIES = {LOAD_PROFILE: 96 * 62, PQ_PROFILE: 288 * 14, DAILY_PROFILE: 400, EVENT_LOG: 500}
