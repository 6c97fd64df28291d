# REFERENCE ONLY: the demo meter's object table as it was written by hand
# before the demo became a meter definition (meters/demo.json). Tests check
# the definition against it (test_meterdef_demo.py), and tools/bench_demo_heap.py
# measures both under MicroPython. Nothing in the package uses it.
#
#   meter = build_meter(wall_clock, storage, image_state=...)
#   sizes: rows of each profile, {OBIS code: rows} (default PROFILE_ROWS)

from dlms_micro.meter import MECH_LLS

LOGICAL_ADDRESS = 1
PHYSICAL_ADDRESS = 17
PASSWORD = b"12345678"
# Push destination "host:port": the one a head-end sets (attribute 3) or
# `serve --push-to` gives; none at first
PUSH_DESTINATION = b""
STORE_KEY_PROFILE = "demo.profile.%s"  # a profile's rows (Profile generic persistence)

LDN = b"DMI0000000012345"  # logical device name: manufacturer flag + 13 characters
SERIAL_NUMBER = b"12345678"
FIRMWARE_VERSION = b"dlms_micro 0.1.0"

# Roles, in Meter.roles order (the object table's access tuples follow it).
R_PUBLIC, R_READER, R_MANAGEMENT = 0, 1, 2

# OBIS codes of the objects the simulation and persistence touch
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
IMAGE_CAPACITY = 1024 * 1024
IMAGE_BLOCK_SIZE = 200
OBIS_PROFILE_STATUS = bytes((0, 0, 96, 10, 1, 255))
OBIS_EVENT_CODE = bytes((0, 0, 96, 11, 0, 255))
OBIS_LOAD_PROFILE = bytes((1, 0, 99, 1, 0, 255))
OBIS_PQ_PROFILE = bytes((1, 0, 99, 2, 0, 255))
OBIS_DAILY_PROFILE = bytes((1, 0, 98, 1, 0, 255))
OBIS_EVENT_LOG = bytes((0, 0, 99, 98, 0, 255))
# the profiles the simulation ticks (the event log captures on events only)
PROFILES = (OBIS_LOAD_PROFILE, OBIS_PQ_PROFILE, OBIS_DAILY_PROFILE)
# rows each profile keeps
LOAD_PROFILE_ROWS = 96 * 62  # 62 days of 15-minute rows
PQ_PROFILE_ROWS = 288 * 14  # 14 days of 5-minute rows
DAILY_PROFILE_ROWS = 400
PUSH_PERIOD = 900
EVENT_LOG_ROWS = 500
PROFILE_ROWS = {
    OBIS_LOAD_PROFILE: LOAD_PROFILE_ROWS,
    OBIS_PQ_PROFILE: PQ_PROFILE_ROWS,
    OBIS_DAILY_PROFILE: DAILY_PROFILE_ROWS,
    OBIS_EVENT_LOG: EVENT_LOG_ROWS,
}


def _modes(n, *pairs, default=0):
    # n access-mode bytes, default everywhere except the (index, mode) pairs
    # (index 1-based: attribute or method id).
    b = bytearray([default] * n)
    for i, m in pairs:
        b[i - 1] = m
    return bytes(b)


def build_meter(wall_clock, storage=None, push_destination=PUSH_DESTINATION, prepaid=False, image_state=None,
                sizes=None):
    # storage: where the profiles keep their rows (None: in RAM only);
    # push_destination: "host:port" of the push listener (b"": no pushes);
    # prepaid: the account starts in prepayment mode (see demo_control.py);
    # image_state: the Image transfer's ImageState (None: a 64 KB one in
    # RAM); sizes: {profile OBIS code: rows} replacing PROFILE_ROWS entries
    from dlms_micro.app import association as asn
    from dlms_micro.cosem import base, clock, hdlc_setup, profile
    from dlms_micro.cosem.association_ln import ASSOCIATION_LN
    from dlms_micro.cosem.clock import CLOCK
    from dlms_micro.cosem.data import DATA
    from dlms_micro.cosem.hdlc_setup import IEC_HDLC_SETUP
    from dlms_micro.cosem.profile import PROFILE_GENERIC, ProfileBuffer
    from dlms_micro.cosem import demand
    from dlms_micro.cosem.register import EXTENDED_REGISTER
    from dlms_micro.cosem.push import PUSH_SETUP, PushState
    from dlms_micro.cosem.image import IMAGE_TRANSFER
    from dlms_micro.cosem.compact import CAPTURE_INVOKE, COMPACT_DATA, CompactBuffer
    import reference_demo_control as demo_control
    from dlms_micro.cosem.register import REGISTER
    from dlms_micro.cosem.sap import SAP_ASSIGNMENT
    from dlms_micro.cosem.security_setup import INVOCATION_COUNTER, SECURITY_SETUP
    from dlms_micro import axdr
    from dlms_micro.meter import MECH_HLS_GMAC, MECH_NONE, Meter, Role

    R, RW, W = base.READ, base.READ_WRITE, base.WRITE

    reading = (
        asn.CONF_GET
        | asn.CONF_BLOCK_TRANSFER_WITH_GET
        | asn.CONF_SELECTIVE_ACCESS
        | asn.CONF_MULTIPLE_REFERENCES
        | asn.CONF_GENERAL_BLOCK_TRANSFER
    )
    # The reader may try SET/ACTION (the access rights refuse them), as with
    # most companion standards' reading clients.
    roles = (
        Role(16, MECH_NONE, b"", reading, "public"),
        Role(32, MECH_LLS, PASSWORD, reading | asn.CONF_SET | asn.CONF_ACTION, "reader"),
        # HLS-GMAC in the ciphered context: suite 0 with the key store's keys
        Role(1, MECH_HLS_GMAC, b"", 0xFFFFFF, "management", ciphered=True),
    )

    state = []

    def slots(values):
        at = len(state)
        state.extend(values)
        return at

    def ro(ic):
        return (_modes(ic.attribute_count, default=R), _modes(ic.method_count))

    # Association LN: everyone reads it (the secret never); management
    # answers the HLS challenge (method 1). Its HLS-GMAC "secret" is the
    # authentication key, changed with Security setup key_transfer, so
    # neither attribute 7 nor change_HLS_secret is offered.
    assoc_ro = (_modes(9, (7, 0), default=R), _modes(4))
    assoc_mgmt = (_modes(9, (7, 0), default=R), _modes(4, (1, 1)))
    data_ro = ro(DATA)
    reg_ro = ro(REGISTER)
    reg_mgmt = (_modes(3, default=R), _modes(1, (1, 1)))
    clock_ro = ro(CLOCK)
    clock_mgmt = (_modes(9, (9, R), default=RW), _modes(6, default=1))
    hdlc_mgmt = (_modes(9, (1, R), default=RW), b"")
    sap_ro = ro(SAP_ASSIGNMENT)
    # Security setup: read every attribute; security_activate and
    # key_transfer (methods 3..8 belong to suites 1 and 2)
    security_mgmt = (_modes(6, default=R), _modes(8, (1, 1), (2, 1)))
    ic_ro = ro(INVOCATION_COUNTER)
    # profiles: read; management may also reset/capture and set capture_period
    pg_ro = ro(PROFILE_GENERIC)
    pg_mgmt = (_modes(8, (4, RW), default=R), _modes(2, (1, 1), (2, 1)))

    octets = axdr.OCTET_STRING
    dlu = axdr.DOUBLE_LONG_UNSIGNED
    lu = axdr.LONG_UNSIGNED
    rows_of = dict(PROFILE_ROWS)
    if sizes:
        rows_of.update(sizes)

    def pg(ln, capture_objects, period):
        # a Profile generic entry; its rows persist under the profile's OBIS code
        param = (capture_objects, period, rows_of[ln])
        key = STORE_KEY_PROFILE % ".".join(str(b) for b in ln)
        buf = ProfileBuffer(param, storage, key) if storage is not None else ProfileBuffer(param)
        return (7, 1, ln, PROFILE_GENERIC, slots([buf]), (None, pg_ro, pg_mgmt), param)

    fw = profile.field_width
    clock_col = (8, OBIS_CLOCK, 2, 0, profile.CLOCK_WIDTH)
    import_col = (3, OBIS_ENERGY_IMPORT, 2, 0, fw(dlu))
    export_col = (3, OBIS_ENERGY_EXPORT, 2, 0, fw(dlu))
    compact_param = ((clock_col, import_col, export_col), 1, CAPTURE_INVOKE)

    # demand: 5-minute sub-periods, a 15-minute sliding window (3 of them),
    # from the import energy; its maximum goes to the Extended register
    demand_param = (0, 27, 3, OBIS_ENERGY_IMPORT, 12, OBIS_MAX_DEMAND)
    demand_ro = ro(demand.DEMAND_REGISTER)
    demand_mgmt = (_modes(9, (8, RW), (9, RW), default=R), _modes(2, default=1))
    xreg_ro = ro(EXTENDED_REGISTER)
    xreg_mgmt = (_modes(5, default=R), _modes(1, (1, 1)))
    push_objects = ((40, OBIS_PUSH, 1, 0), (8, OBIS_CLOCK, 2, 0), (3, OBIS_ENERGY_IMPORT, 2, 0), (3, OBIS_ENERGY_EXPORT, 2, 0))
    push_param = (push_objects, PUSH_PERIOD, 64, 4)  # destination <= 64 B, <= 4 windows
    # Image transfer: management updates the firmware (1 MB at most, 200-byte
    # blocks, SHA-256 trailer); activation makes the image's identification
    # the firmware version (image_store.version_activator)
    image_mgmt = (_modes(7, (5, RW), default=R), _modes(4, default=1))
    if image_state is None:
        from dlms_micro.cosem import image

        image_state = image.ImageState(image.StorageSink(MemoryStorage(), 64 * 1024, IMAGE_BLOCK_SIZE), IMAGE_BLOCK_SIZE)
    push_ro = ro(PUSH_SETUP)
    push_mgmt = (_modes(7, (1, R), (2, R), default=RW), _modes(1, (1, 1)))
    push_state = PushState(push_param, destination=push_destination, retries=3, delay=30)

    # Register params: (scaler, unit, value type); units: 27 W, 30 Wh, 33 A, 35 V
    table = (
        (15, 1, bytes((0, 0, 40, 0, 0, 255)), ASSOCIATION_LN, -1, (assoc_ro, assoc_ro, assoc_mgmt), (-1, OBIS_SECURITY_SETUP)),
        (1, 0, bytes((0, 0, 42, 0, 0, 255)), DATA, -1, (data_ro, data_ro, data_ro), (octets, 0, 16, LDN)),
        (1, 0, bytes((0, 0, 96, 1, 0, 255)), DATA, -1, (None, data_ro, data_ro), (octets, 0, 16, SERIAL_NUMBER)),
        # the version: a value image_activate changes
        (1, 0, OBIS_FIRMWARE, DATA, slots([FIRMWARE_VERSION]), (None, data_ro, data_ro), (octets, 0, 32)),
        (18, 0, OBIS_IMAGE_TRANSFER, IMAGE_TRANSFER, slots([image_state]), (None, ro(IMAGE_TRANSFER), image_mgmt), None),
        (8, 0, OBIS_CLOCK, CLOCK, slots(clock.initial_state()), (clock_ro, clock_ro, clock_mgmt), None),
        (3, 0, OBIS_ENERGY_IMPORT, REGISTER, slots([0]), (None, reg_ro, reg_mgmt), (0, 30, dlu)),
        (3, 0, OBIS_ENERGY_EXPORT, REGISTER, slots([0]), (None, reg_ro, reg_mgmt), (0, 30, dlu)),
        (3, 0, OBIS_POWER, REGISTER, slots([0]), (None, reg_ro, reg_mgmt), (0, 27, dlu)),
        (3, 0, OBIS_VOLTAGE, REGISTER, slots([2300]), (None, reg_ro, reg_mgmt), (-1, 35, lu)),
        (5, 0, OBIS_DEMAND, demand.DEMAND_REGISTER, slots(demand.initial_state(demand_param, 300, 3)), (None, demand_ro, demand_mgmt), demand_param),
        (4, 0, OBIS_MAX_DEMAND, EXTENDED_REGISTER, slots([0, 0, None]), (None, xreg_ro, xreg_mgmt), (0, 27, dlu)),
        (3, 0, OBIS_CURRENT, REGISTER, slots([0]), (None, reg_ro, reg_mgmt), (-2, 33, lu)),
        (
            23,
            1,
            OBIS_HDLC_SETUP,
            IEC_HDLC_SETUP,
            slots(hdlc_setup.initial_state(device_address=PHYSICAL_ADDRESS)),
            (None, ro(IEC_HDLC_SETUP), hdlc_mgmt),
            None,
        ),
        (17, 0, bytes((0, 0, 41, 0, 0, 255)), SAP_ASSIGNMENT, -1, (None, sap_ro, sap_ro), ((LOGICAL_ADDRESS, LDN),)),
        (64, 1, OBIS_SECURITY_SETUP, SECURITY_SETUP, -1, (None, None, security_mgmt), None),
        # head-ends read it (often as the public client) before they associate
        (1, 0, OBIS_INVOCATION_COUNTER, INVOCATION_COUNTER, -1, (ic_ro, ic_ro, ic_ro), None),
        (1, 0, OBIS_PROFILE_STATUS, DATA, slots([0]), (None, data_ro, data_ro), (axdr.UNSIGNED,)),
        (1, 0, OBIS_EVENT_CODE, DATA, slots([0]), (None, data_ro, data_ro), (axdr.UNSIGNED,)),
        pg(
            OBIS_LOAD_PROFILE,
            (clock_col, (1, OBIS_PROFILE_STATUS, 2, 0, fw(axdr.UNSIGNED)), import_col, export_col),
            900,
        ),
        pg(
            OBIS_PQ_PROFILE,
            (clock_col, (3, OBIS_VOLTAGE, 2, 0, fw(lu)), (3, OBIS_CURRENT, 2, 0, fw(lu)), (3, OBIS_POWER, 2, 0, fw(dlu))),
            300,
        ),
        pg(OBIS_DAILY_PROFILE, (clock_col, import_col, export_col, (4, OBIS_MAX_DEMAND, 2, 0, fw(dlu))), 86400),
        (40, 0, OBIS_PUSH, PUSH_SETUP, slots([push_state]), (None, push_ro, push_mgmt), push_param),
        # the meter's readings without their tags (template 02 03 09 06 06),
        # captured with each load-profile row and by management's capture
        (62, 0, OBIS_COMPACT_DATA, COMPACT_DATA, slots([CompactBuffer(compact_param)]),
         (None, ro(COMPACT_DATA), (_modes(6, default=R), _modes(2, default=1))), compact_param),
        pg(OBIS_EVENT_LOG, (clock_col, (1, OBIS_EVENT_CODE, 2, 0, fw(axdr.UNSIGNED))), 0),
    )
    # time of use, end of billing, disconnect control, limiter, prepayment
    table += demo_control.objects(slots, _modes, ro, storage, OBIS_MAX_DEMAND, OBIS_POWER, OBIS_ENERGY_IMPORT, prepaid)
    return Meter(table, roles, state, wall_clock=wall_clock, logical_device=LOGICAL_ADDRESS)


def entry(meter, ln):
    for e in meter.table:
        if e[2] == ln:
            return e
    raise KeyError(ln)


class MemoryStorage:
    # The storage interface in RAM, for a demo meter without a data
    # directory (the key store needs one; nothing then survives a restart).
    def __init__(self):
        self._d = {}

    def get(self, key):
        return self._d.get(key)

    def put(self, key, value):
        self._d[key] = bytes(value)

    def delete(self, key):
        self._d.pop(key, None)
