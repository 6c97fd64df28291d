# The demo meter: a single-phase electricity meter whose load is simulated.
# It is the meter definition meters/demo.json served by the generic
# simulator (simulator.py); this module names its objects and keeps what the
# demo adds: its keys (demo-only), its token key, and carrying the state of
# a data directory written by the older hand-written demo over.
#
#   demo = DemoMeter(storage=FileStorage(dir))
#   ch = demo.make_channel("hdlc")        # or "wrapper": one per connection
#   demo.update()                         # every second: advance the simulation
#   demo.save()                           # now and then: persist energies, clock, counters
#   demo.power_down()                     # at shutdown: "power down" event, then save()
#
# HDLC server address: logical 1, physical 17 (wire 02 23; the link also
# answers the 1- and 4-byte forms). Wrapper: wPort 1.
# Associations: client SAP 16 public (no authentication, reads the clock, the
# logical device name, its own association and the invocation counter), 32
# reader (LLS, reads every metering object), 1 management (HLS mechanism 5,
# GMAC, in the ciphered LN context: every APDU authenticated and encrypted
# with security suite 0; all rights, Security setup included).
#
# SECURITY (suite 0). The meter's KeyStore (meter.keys) keeps the keys, the
# security policy and the invocation counters in the storage, so the
# counters, and keys changed by key_transfer, survive restarts. Keys: the
# demo keys below (public, demo-only: the Green Book's example EK and AK, and
# a made-up KEK), or those of DemoMeter(keys=...) (`--keys FILE`, see
# keyfile.py), which replace stored ones. Security policy 0x6C:
# authenticated and encrypted requests and responses. The meter's system
# title is the manufacturer id "DMI" followed by the serial number as a
# 5-byte big-endian integer (system_title_for): serial 12345678 gives
# 44 4D 49 00 00 BC 61 4E.
#
# METERING (Profile generic, class 7; rows persist in the storage):
#   1.0.99.1.0.255  load profile, every 15 minutes: clock, AMR profile status
#                   (0.0.96.10.1.255), active energy import, export (Wh)
#   1.0.99.2.0.255  load profile 2, power quality, every 5 minutes: clock,
#                   voltage, current, active power (instantaneous values)
#   1.0.98.1.0.255  daily billing values, at 00:00 UTC: clock, energy
#                   import, export, maximum demand
# FIRMWARE UPDATE: 0.0.44.0.0.255 Image transfer (class 18), management
# only: blocks go to a file in the data directory; the image ends with the
# SHA-256 of what precedes it (image_verify checks it); image_activate makes
# the image's identification the firmware version 1.0.0.2.0.255 (kept
# across restarts).
# COMPACT DATA: 0.0.66.0.1.255 (class 62) holds the clock and the energies
# without their tags (template 1: 02 03 09 06 06), captured with each
# load-profile row and by management's method capture.
# PUSH: 0.0.25.9.0.255 Push setup (class 40): a DataNotification of its
# logical name, the clock and the energies every 15 minutes (and on its
# method push) over TCP to push_destination ("host:port"; empty by default:
# no pushes until a head-end sets one, or `serve --push-to 127.0.0.1:4061`
# where `dlms-micro listen` prints them); protected by the security policy
# (general-glo-ciphering with the meter's keys). The service sends them.
# Demand: 1.0.1.4.0.255 Demand register (class 5) of import power over a
# 15-minute sliding window of three 5-minute sub-periods; its maximum goes
# to the Extended register 1.0.1.6.0.255 (value and time stamp; reset by
# management). Not persisted: both start over at a restart.
#   0.0.99.98.0.255 standard event log (captured on each event): clock,
#                   event code (0.0.96.11.0.255, the last event's code)
# Event codes (IDIS numbering): 1 power down, 2 power up, 4 clock adjusted
# (the old time), 5 clock adjusted (the new time). AMR profile status bits of
# a load-profile row: 0x80 power down in the interval, 0x20 clock adjusted,
# 0x02 clock invalid.
#
# SIMULATED TIME. accelerate=N runs the meter's clock N times as fast as the
# host's (the simulation integrates energy in steps of at most 60 simulated
# seconds, so profiles fill N times faster with the same data). history=DAYS
# backfills DAYS of simulated operation before now when the load profile is
# empty (first start): energy registers, profiles and events as if the meter
# had been running.


import os
import time  # noqa: F401  (tests move the host clock through demo.time)

from dlms_micro_cpython import simulator
from dlms_micro_cpython.simulator import (  # noqa: F401  (the demo's names, used by tests and tools)
    BUTTON_DELAY,
    DEMO_AK,
    DEMO_EK,
    DEMO_KEK,
    DEMO_TOKEN_KEY,
    EVENT_CLOCK_NEW,
    EVENT_CLOCK_OLD,
    EVENT_POWER_DOWN,
    EVENT_POWER_UP,
    IMAGE_BLOCK_SIZE,
    IMAGE_CAPACITY,
    MAX_APDU,
    MAX_GAP,
    STATUS_CLOCK_ADJUSTED,
    STATUS_CLOCK_INVALID,
    STATUS_POWER_DOWN,
    STEP,
    LoadSimulator,
    MemoryStorage,
    SimulatedMeter,
    make_key_store,
)

DEFINITION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "meters", "demo.json")

LOGICAL_ADDRESS = 1
PHYSICAL_ADDRESS = 17
PASSWORD = b"12345678"
PUSH_DESTINATION = b""
LDN = b"DMI0000000012345"  # logical device name: manufacturer flag + 13 characters
SERIAL_NUMBER = b"12345678"
FIRMWARE_VERSION = b"dlms_micro 0.1.0"
MANUFACTURER_ID = b"DMI"  # as in the logical device name
# authenticated + encrypted requests (0x04, 0x08) and responses (0x20, 0x40)
SECURITY_POLICY = 0x6C

# OBIS codes of the demo's objects (meters/demo.json)
OBIS_ENERGY_IMPORT = bytes((1, 0, 1, 8, 0, 255))
OBIS_ENERGY_EXPORT = bytes((1, 0, 2, 8, 0, 255))
OBIS_POWER = bytes((1, 0, 1, 7, 0, 255))
OBIS_VOLTAGE = bytes((1, 0, 32, 7, 0, 255))
OBIS_CURRENT = bytes((1, 0, 31, 7, 0, 255))
OBIS_CLOCK = bytes((0, 0, 1, 0, 0, 255))
OBIS_HDLC_SETUP = bytes((0, 0, 22, 0, 0, 255))
OBIS_SECURITY_SETUP = bytes((0, 0, 43, 0, 0, 255))
OBIS_INVOCATION_COUNTER = bytes((0, 0, 43, 1, 0, 255))
OBIS_DEMAND = bytes((1, 0, 1, 4, 0, 255))  # current average demand, import
OBIS_MAX_DEMAND = bytes((1, 0, 1, 6, 0, 255))  # maximum demand, import
OBIS_PUSH = bytes((0, 0, 25, 9, 0, 255))  # Push setup
OBIS_COMPACT_DATA = bytes((0, 0, 66, 0, 1, 255))  # Compact data: clock, energies, each quarter hour
OBIS_FIRMWARE = bytes((1, 0, 0, 2, 0, 255))  # active firmware identifier
OBIS_IMAGE_TRANSFER = bytes((0, 0, 44, 0, 0, 255))
OBIS_PROFILE_STATUS = bytes((0, 0, 96, 10, 1, 255))
OBIS_EVENT_CODE = bytes((0, 0, 96, 11, 0, 255))
OBIS_LOAD_PROFILE = bytes((1, 0, 99, 1, 0, 255))
OBIS_PQ_PROFILE = bytes((1, 0, 99, 2, 0, 255))
OBIS_DAILY_PROFILE = bytes((1, 0, 98, 1, 0, 255))
OBIS_EVENT_LOG = bytes((0, 0, 99, 98, 0, 255))
OBIS_VOLTAGE_MONITOR = bytes((0, 0, 16, 1, 0, 255))
PROFILES = (OBIS_LOAD_PROFILE, OBIS_PQ_PROFILE, OBIS_DAILY_PROFILE)

_compiled = None


def compiled():
    """meters/demo.json compiled (once per process)."""
    global _compiled
    if _compiled is None:
        from dlms_micro_cpython import meterdef

        _compiled = meterdef.load(DEFINITION)
    return _compiled


def system_title_for(serial_number, manufacturer=MANUFACTURER_ID):
    """The meter's system title: the 3-letter manufacturer id, then the
    (decimal) serial number as a 5-byte big-endian integer."""
    n = int(serial_number)
    if len(manufacturer) != 3 or not 0 <= n < 1 << 40:
        raise ValueError("a system title needs a 3-letter id and a serial number below 2**40")
    return bytes(manufacturer) + n.to_bytes(5, "big")


def entry(meter, ln):
    """The object table entry of logical name ln (6 bytes) in a Meter, or
    KeyError."""
    e = meter.find_ln(ln, 0)
    if e is None:
        raise KeyError(ln)
    return e


def _modes(n, *pairs, default=0):
    # n access-mode bytes, default everywhere except the (index, mode) pairs
    # (index 1-based: attribute or method id); for tests that add objects
    b = bytearray([default] * n)
    for i, m in pairs:
        b[i - 1] = m
    return bytes(b)


# Records of the older hand-written demo -> the definition's (the object's
# OBIS code); carried over once so that an old data directory keeps its
# profiles, tariffs, credit and, above all, its used token ids (a token
# accepted before must never be accepted again).
_OLD_RECORDS = (
    ("tou.ra", "0.0.14.0.1.255"),
    ("tou.sd", "0.0.11.0.0.255"),
    ("tou.cal", "0.0.13.0.0.255"),
    ("billing.sas", "0.0.15.0.0.255"),
    ("dc", "0.0.96.3.10.255"),
    ("prepay", "0.0.19.0.0.255"),
    ("tokens", "0.0.19.40.0.255"),
    ("demo.clock-offset", simulator.STORE_KEY_CLOCK),
)
_OLD_PROFILES = ("1.0.99.1.0.255", "1.0.99.2.0.255", "1.0.98.1.0.255", "0.0.99.98.0.255")


def migrate(storage, log=None):
    """Carry a data directory written by the older hand-written demo over
    (once: an old record is moved only when the new one does not exist);
    returns the number of records moved."""
    if storage is None:
        return 0
    moved = 0

    def move(old, new):
        nonlocal moved
        v = storage.get(old)
        if v is None:
            return False
        if storage.get(new) is None:
            storage.put(new, v)
            moved += 1
        storage.delete(old)
        return True

    for old, new in _OLD_RECORDS:
        move(old, new)
    for ln in _OLD_PROFILES:
        old = "demo.profile.%s" % ln
        if move(old, ln):
            p = 0
            while move("%s.%d" % (old, p), "%s.%d" % (ln, p)):
                p += 1
    b = storage.get("demo.energy")
    if b is not None and len(b) == 8:
        for i, ln in ((0, "1.0.1.8.0.255"), (1, "1.0.2.8.0.255")):
            key = simulator.STORE_KEY_ENERGY % ln
            if storage.get(key) is None:
                storage.put(key, int.from_bytes(b[4 * i : 4 * i + 4], "big").to_bytes(8, "big"))
        storage.delete("demo.energy")
        moved += 1
    for sap in (16, 32, 1):
        move("demo.lls-secret.%d" % sap, simulator.STORE_KEY_SECRET % sap)
    if moved and log:
        log("carried %d records of an older demo data directory over" % moved)
    return moved


class DemoMeter(SimulatedMeter):
    """The demo meter: meters/demo.json served by the simulator, with the
    demo token key, and a data directory of the older hand-written demo
    carried over. The arguments are SimulatedMeter's. keys: None (the demo
    keys, or keys stored by a key_transfer), or a dict ``{"ek", "ak",
    "kek": 16 bytes, "system_title": 8 bytes or None}`` (a key file,
    keyfile.load) that replaces the stored keys. A stored key record that
    fails its checks raises ValueError.
    """

    def __init__(self, storage=None, wall_clock=None, seed=None, log=None, keys=None, random_bytes=os.urandom,
                 accelerate=1, history=0, push_destination=PUSH_DESTINATION, prepaid=False):
        migrate(storage, log)
        super().__init__(compiled(), storage=storage, wall_clock=wall_clock, seed=seed, log=log, keys=keys,
                         random_bytes=random_bytes, accelerate=accelerate, history=history,
                         push_destination=push_destination, prepaid=prepaid, token_key=DEMO_TOKEN_KEY)

    @property
    def control(self):
        """The supply control (the relay as last driven: ``.closed``), as
        the hand-written demo's Control offered it."""
        return self
