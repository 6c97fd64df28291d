# SAP assignment (class 17), IEC HDLC setup (class 23) and IEC local port
# setup (class 19): encodings, validated writes, refusals.

from cosem_support import act, get, get_ok, make, put
from dlms_micro.cosem import base, hdlc_setup, local_port
from dlms_micro.cosem.hdlc_setup import IEC_HDLC_SETUP
from dlms_micro.cosem.local_port import IEC_LOCAL_PORT_SETUP
from dlms_micro.cosem.sap import SAP_ASSIGNMENT
from support import unhex

ALL = ((b"\x01\x03\x03\x03\x03\x03\x03\x03\x03", b"\x01"), None)
LDN = b"DMI0000000012345"
SAPS = ((1, LDN), (17, b"DMI_WATER_000001"))


def sap_ctx():
    t = ((17, 0, b"\x00\x00\x29\x00\x00\xff", SAP_ASSIGNMENT, -1, ALL, SAPS),)
    return make(t, []), t[0]


def test_sap_assignment_list():
    ctx, o = sap_ctx()
    assert get_ok(ctx, o, 2) == unhex(
        "0102"
        "0202 120001 0910 444D4930303030303030303132333435"
        "0202 120011 0910 444D495F57415445525F303030303031"
    )
    assert get(ctx, o, 3)[0] == base.READ_WRITE_DENIED
    assert put(ctx, o, 2, "0100") == base.READ_WRITE_DENIED
    s = SAP_ASSIGNMENT
    assert (s.class_id, s.version, s.attribute_count, s.method_count) == (17, 0, 2, 1)


def test_connect_logical_device_is_refused_unless_already_so():
    ctx, o = sap_ctx()
    same = "0202 120001 0910 444D4930303030303030303132333435"
    assert act(ctx, o, 1, same) == (base.SUCCESS, b"")
    assert act(ctx, o, 1, "0202 120002 0910 444D4930303030303030303132333435") == (base.READ_WRITE_DENIED, b"")
    assert act(ctx, o, 1, "0202 120001 0903 444D49") == (base.READ_WRITE_DENIED, b"")
    assert act(ctx, o, 1, "0202 120000 0900")[0] == base.READ_WRITE_DENIED  # disconnect
    assert act(ctx, o, 1, "0202 1101 0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 1, "0202 120001 0A00")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 1, "0201 120001")[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 1)[0] == base.TYPE_UNMATCHED
    assert act(ctx, o, 2, same)[0] == base.READ_WRITE_DENIED


# ------------------------------------------------------------ HDLC setup

HDLC_LN = b"\x00\x00\x16\x00\x00\xff"


def hdlc_ctx(param=None):
    t = ((23, 1, HDLC_LN, IEC_HDLC_SETUP, 0, ALL, param),)
    return make(t, hdlc_setup.initial_state(device_address=0x11)), t[0]


def test_hdlc_setup_attributes():
    ctx, o = hdlc_ctx()
    assert get_ok(ctx, o, 2) == unhex("16 05")  # 9600 baud
    assert get_ok(ctx, o, 3) == unhex("11 01")
    assert get_ok(ctx, o, 4) == unhex("11 01")
    assert get_ok(ctx, o, 5) == unhex("12 0080")
    assert get_ok(ctx, o, 6) == unhex("12 0080")
    assert get_ok(ctx, o, 7) == unhex("12 0019")
    assert get_ok(ctx, o, 8) == unhex("12 0078")
    assert get_ok(ctx, o, 9) == unhex("12 0011")
    assert get(ctx, o, 10)[0] == base.READ_WRITE_DENIED
    h = IEC_HDLC_SETUP
    assert (h.class_id, h.version, h.attribute_count, h.method_count) == (23, 1, 9, 0)


def test_hdlc_setup_writes_are_validated_and_kept_for_the_next_link():
    ctx, o = hdlc_ctx()
    st = ctx.meter.state
    assert put(ctx, o, 2, "16 09") == base.SUCCESS  # 115200
    assert put(ctx, o, 3, "11 07") == base.SUCCESS
    assert put(ctx, o, 4, "11 04") == base.SUCCESS
    assert put(ctx, o, 5, "12 07EE") == base.SUCCESS  # 2030
    assert put(ctx, o, 6, "12 0020") == base.SUCCESS  # 32
    assert put(ctx, o, 7, "12 1770") == base.SUCCESS  # 6000 ms
    assert put(ctx, o, 8, "12 0000") == base.SUCCESS  # no inactivity time-out
    assert put(ctx, o, 9, "12 3FFD") == base.SUCCESS
    assert st == [9, 7, 4, 2030, 32, 6000, 0, 0x3FFD]
    assert hdlc_setup.link_parameters(ctx.meter, o) == (115200, 7, 4, 2030, 32, 6000, 0, 0x3FFD)
    out_of_range = (
        (2, "16 0A"), (3, "11 00"), (3, "11 08"), (4, "11 00"), (5, "12 001F"), (5, "12 07EF"),
        (6, "12 07EF"), (7, "12 0013"), (7, "12 1771"), (9, "12 000F"), (9, "12 3FFE"),
    )
    for attr, v in out_of_range:
        assert put(ctx, o, attr, v) == base.OTHER_REASON, (attr, v)
    wrong_type = ((2, "11 05"), (3, "12 0001"), (5, "06 00000080"), (8, "11 10"), (9, "0F 11"))
    for attr, v in wrong_type:
        assert put(ctx, o, attr, v) == base.TYPE_UNMATCHED, (attr, v)
    assert st == [9, 7, 4, 2030, 32, 6000, 0, 0x3FFD]


def test_hdlc_setup_port_speed_limit():
    ctx, o = hdlc_ctx((6,))  # the port goes up to 19200
    assert put(ctx, o, 2, "16 06") == base.SUCCESS
    assert put(ctx, o, 2, "16 07") == base.OTHER_REASON
    assert ctx.meter.state[0] == 6


# ------------------------------------------------------- local port setup


def port_ctx(param=None):
    t = ((19, 1, b"\x00\x00\x14\x00\x00\xff", IEC_LOCAL_PORT_SETUP, 0, ALL, param),)
    st = local_port.initial_state(device_addr=b"12345678", pass_p1=b"SECRET")
    return make(t, st), t[0]


def test_local_port_setup_attributes_and_hidden_passwords():
    ctx, o = port_ctx()
    assert get_ok(ctx, o, 2) == unhex("16 00")
    assert get_ok(ctx, o, 3) == unhex("16 00")  # 300 baud
    assert get_ok(ctx, o, 4) == unhex("16 05")  # 9600 baud
    assert get_ok(ctx, o, 5) == unhex("16 00")  # 20 ms
    assert get_ok(ctx, o, 6) == unhex("0908 3132333435363738")
    for attr in (7, 8, 9):
        assert get(ctx, o, attr) == (base.READ_WRITE_DENIED, b"")
    p = IEC_LOCAL_PORT_SETUP
    assert (p.class_id, p.version, p.attribute_count, p.method_count) == (19, 1, 9, 0)


def test_local_port_setup_writes():
    ctx, o = port_ctx((7,))
    st = ctx.meter.state
    assert put(ctx, o, 2, "16 01") == base.SUCCESS and st[0] == 1
    assert put(ctx, o, 4, "16 07") == base.SUCCESS and st[2] == 7
    assert put(ctx, o, 4, "16 08") == base.OTHER_REASON  # above the port's limit
    assert put(ctx, o, 5, "16 01") == base.SUCCESS and st[3] == 1
    assert put(ctx, o, 5, "16 02") == base.OTHER_REASON
    assert put(ctx, o, 2, "16 03") == base.OTHER_REASON
    assert put(ctx, o, 8, "0904 31323334") == base.SUCCESS and st[6] == b"1234"
    assert put(ctx, o, 9, "0921" + "41" * 33) == base.OTHER_REASON
    assert put(ctx, o, 6, "0A02 3132") == base.TYPE_UNMATCHED
    assert put(ctx, o, 3, "11 00") == base.TYPE_UNMATCHED
    assert put(ctx, o, 10, "16 00") == base.READ_WRITE_DENIED


# ------------------------------------------------------------ check_table


def test_check_table_accepts_a_consistent_table():
    from dlms_micro.cosem import clock, common
    from dlms_micro.cosem.clock import CLOCK
    from dlms_micro.cosem.register import EXTENDED_REGISTER

    acc = ((b"\x01\x01", b""), None)
    t = (
        (8, 0, b"\x00\x00\x01\x00\x00\xff", CLOCK, 0, acc, None),
        (4, 0, b"\x01\x00\x01\x06\x00\xff", EXTENDED_REGISTER, 10, acc, (0, 27)),
        (23, 1, HDLC_LN, IEC_HDLC_SETUP, 13, acc, None),
        (17, 0, b"\x00\x00\x29\x00\x00\xff", SAP_ASSIGNMENT, -1, acc, SAPS),
    )
    state = clock.initial_state() + [0, 0, None] + hdlc_setup.initial_state()
    ctx = make(t, state)
    common.check_table(ctx.meter)


def test_check_table_names_the_first_problem():
    from dlms_micro.cosem import common
    from dlms_micro.cosem.register import EXTENDED_REGISTER
    from support import raises

    acc = ((b"\x01\x01", b""), None)
    bad = (
        ((23, 0, HDLC_LN, IEC_HDLC_SETUP, -1, acc, None),),  # version 0 with a version 1 handler
        ((23, 1, HDLC_LN, IEC_HDLC_SETUP, -1, (acc[0],), None),),  # one access entry for two roles
        ((23, 1, HDLC_LN, IEC_HDLC_SETUP, 0, acc, None),),  # 8 slots, state has 4
        (
            (23, 1, HDLC_LN, IEC_HDLC_SETUP, -1, acc, None),
            (4, 0, b"\x01\x00\x01\x06\x00\xff", EXTENDED_REGISTER, 0, acc, (0, 27)),
            (4, 0, b"\x01\x00\x02\x06\x00\xff", EXTENDED_REGISTER, 2, acc, (0, 27)),  # overlaps
        ),
        ((17, 0, b"\x00\x00\x29\x00\x00\xff", SAP_ASSIGNMENT, -1, ((b"\x01\x01\x01", b""), None), SAPS),),
    )
    for t in bad:
        ctx = make(t, [0, 0, 0, 0])
        e = raises(ValueError, common.check_table, ctx.meter)
        assert str(e)
