# A board's own small object table (the CPython demo's imports are not
# available on a board): logical device name, serial number, clock, active
# energy import/export registers, IEC HDLC setup, SAP assignment and
# Association LN, and with profile_rows > 0 a 15-minute load profile
# 1.0.99.1.0.255 (clock, energy import, export; profile_rows rows of 27 B in
# RAM, persisted through the storage). Public client (SAP 16) reads the
# name, the clock and the energy import register; reader (SAP 32, LLS) reads
# everything.

from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.cosem import base, clock, hdlc_setup
from dlms_micro.cosem.association_ln import ASSOCIATION_LN
from dlms_micro.cosem.clock import CLOCK
from dlms_micro.cosem.data import DATA
from dlms_micro.cosem.hdlc_setup import IEC_HDLC_SETUP
from dlms_micro.cosem.register import REGISTER
from dlms_micro.cosem.sap import SAP_ASSIGNMENT
from dlms_micro.meter import MECH_LLS, MECH_NONE, Meter, Role

OBIS_CLOCK = b"\x00\x00\x01\x00\x00\xff"
OBIS_ENERGY_IMPORT = b"\x01\x00\x01\x08\x00\xff"
OBIS_ENERGY_EXPORT = b"\x01\x00\x02\x08\x00\xff"
OBIS_HDLC_SETUP = b"\x00\x00\x16\x00\x00\xff"
OBIS_LOAD_PROFILE = b"\x01\x00\x63\x01\x00\xff"
LOAD_PROFILE_PERIOD = 900

# ESP32 time.time() counts from 2000-01-01; the core wants 1970-01-01.
EPOCH_2000 = 946684800


def _modes(n, default=0):
    return bytes(bytearray([default] * n))


def build_meter(wall_clock, ldn=b"DMI0000000000001", serial=b"00000001", password=b"12345678",
                logical=1, physical=17, profile_rows=0, storage=None):
    # The Meter, and the state slots of the two energy registers (the port
    # adds to them and saves them). storage: where the load profile keeps
    # its rows (None: RAM only).
    R = base.READ
    reading = asn.CONF_GET | asn.CONF_BLOCK_TRANSFER_WITH_GET | asn.CONF_SELECTIVE_ACCESS
    roles = (
        Role(16, MECH_NONE, b"", reading, "public"),
        Role(32, MECH_LLS, password, reading, "reader"),
    )
    state = []

    def slots(values):
        at = len(state)
        state.extend(values)
        return at

    def ro(ic):
        return (_modes(ic.attribute_count, R), _modes(ic.method_count))

    assoc = (b"\x01\x01\x01\x01\x01\x01\x00\x01\x01", _modes(4))  # attribute 7 (secret): no
    data_ro = ro(DATA)
    reg_ro = ro(REGISTER)
    s_import = slots([0])
    s_export = slots([0])
    dlu = axdr.DOUBLE_LONG_UNSIGNED
    table = (
        (15, 1, b"\x00\x00\x28\x00\x00\xff", ASSOCIATION_LN, -1, (assoc, assoc), None),
        (1, 0, b"\x00\x00\x2a\x00\x00\xff", DATA, -1, (data_ro, data_ro), (axdr.OCTET_STRING, 0, 16, ldn)),
        (1, 0, b"\x00\x00\x60\x01\x00\xff", DATA, -1, (None, data_ro), (axdr.OCTET_STRING, 0, 16, serial)),
        (8, 0, OBIS_CLOCK, CLOCK, slots(clock.initial_state()), (ro(CLOCK), ro(CLOCK)), None),
        (3, 0, OBIS_ENERGY_IMPORT, REGISTER, s_import, (reg_ro, reg_ro), (0, 30, dlu)),
        (3, 0, OBIS_ENERGY_EXPORT, REGISTER, s_export, (None, reg_ro), (0, 30, dlu)),
        (23, 1, OBIS_HDLC_SETUP, IEC_HDLC_SETUP, slots(hdlc_setup.initial_state(device_address=physical)),
         (None, ro(IEC_HDLC_SETUP)), None),
        (17, 0, b"\x00\x00\x29\x00\x00\xff", SAP_ASSIGNMENT, -1, (None, ro(SAP_ASSIGNMENT)), ((logical, ldn),)),
    )
    if profile_rows:
        from dlms_micro.cosem import profile

        dlu_w = profile.field_width(dlu)
        param = (
            (
                (8, OBIS_CLOCK, 2, 0, profile.CLOCK_WIDTH),
                (3, OBIS_ENERGY_IMPORT, 2, 0, dlu_w),
                (3, OBIS_ENERGY_EXPORT, 2, 0, dlu_w),
            ),
            LOAD_PROFILE_PERIOD,
            profile_rows,
        )
        # pages of 32 rows (864 B): few files on the board's filesystem
        ring = profile.ProfileBuffer(param, storage, "lp", 32) if storage is not None else profile.ProfileBuffer(param)
        pg = ro(profile.PROFILE_GENERIC)
        table += ((7, 1, OBIS_LOAD_PROFILE, profile.PROFILE_GENERIC, slots([ring]), (None, pg), param),)
    return Meter(table, roles, state, wall_clock), s_import, s_export
