# Script table (class 9) and the script executor: write attribute and
# execute method through the targets' own handlers, failing actions logged
# and skipped, nested scripts, the execute method, the scripts attribute.

from cosem_support import act, allocated, get_ok, make, put
from dlms_micro import axdr
from dlms_micro.cosem import base, script
from dlms_micro.cosem.data import DATA
from dlms_micro.cosem.register import REGISTER
from dlms_micro.cosem.script import EXECUTE_METHOD, SCRIPT_TABLE, WRITE_ATTRIBUTE
from support import unhex
from tou_support import Store

A = ((b"\x01\x03", b""), None)
AR = ((b"\x01\x03\x01", b"\x01"), None)
AS = ((b"\x01\x01", b"\x01"), None)

MODE_LN = b"\x00\x00\x60\x01\x00\xff"
NAME_LN = b"\x00\x00\x60\x01\x01\xff"
ENERGY_LN = b"\x01\x00\x01\x08\x00\xff"
TABLE_LN = b"\x00\x00\x0a\x00\x64\xff"
OTHER_LN = b"\x00\x00\x0a\x00\x01\xff"
MISSING_LN = b"\x00\x00\x60\x01\x09\xff"

SCRIPTS = (
    # 1: mode := 7, reset the energy register
    (1, (
        script.action(WRITE_ATTRIBUTE, 1, MODE_LN, 2, axdr.UNSIGNED, 7),
        script.action(EXECUTE_METHOD, 3, ENERGY_LN, 1, axdr.INTEGER, 0),
    )),
    # 2: an undefined object, a wrong type, then mode := 9
    (2, (
        script.action(WRITE_ATTRIBUTE, 1, MISSING_LN, 2, axdr.UNSIGNED, 1),
        script.action(WRITE_ATTRIBUTE, 1, MODE_LN, 2, axdr.LONG, 1),
        script.action(WRITE_ATTRIBUTE, 3, MODE_LN, 2, axdr.UNSIGNED, 1),  # wrong class
        script.action(WRITE_ATTRIBUTE, 1, MODE_LN, 1, axdr.UNSIGNED, 1),  # logical_name
        script.action(EXECUTE_METHOD, 1, MODE_LN, 1, axdr.INTEGER, 0),  # Data has no methods
        script.action(WRITE_ATTRIBUTE, 1, MODE_LN, 2, axdr.UNSIGNED, 9),
    )),
    # 3: name := "T2" and run script 1 of the other table
    (3, (
        script.action(WRITE_ATTRIBUTE, 1, NAME_LN, 2, axdr.OCTET_STRING, b"T2"),
        script.action(EXECUTE_METHOD, 9, OTHER_LN, 1, axdr.LONG_UNSIGNED, 1),
    )),
    # 4: calls itself
    (4, (script.action(EXECUTE_METHOD, 9, TABLE_LN, 1, axdr.LONG_UNSIGNED, 4),)),
)
OTHER = ((1, (script.action(WRITE_ATTRIBUTE, 1, MODE_LN, 2, axdr.UNSIGNED, 5),)),)


def setup():
    t = (
        (1, 0, MODE_LN, DATA, 0, A, (axdr.UNSIGNED,)),
        (1, 0, NAME_LN, DATA, 1, A, (axdr.OCTET_STRING, 8)),
        (3, 0, ENERGY_LN, REGISTER, 2, AR, (0, 30)),
        (9, 0, TABLE_LN, SCRIPT_TABLE, -1, AS, SCRIPTS),
        (9, 0, OTHER_LN, SCRIPT_TABLE, -1, AS, OTHER),
    )
    ctx = make(t, [0, b"T1", 1234], meter_roles=None)
    msgs = []
    ctx.meter.log = msgs.append
    return ctx, t, msgs


def test_execute_writes_attributes_and_calls_methods():
    ctx, t, msgs = setup()
    assert script.execute(ctx.meter, TABLE_LN, 1)
    assert ctx.meter.state[0] == 7
    assert ctx.meter.state[2] == 0
    assert msgs == []


def test_failing_actions_are_logged_and_the_rest_runs():
    ctx, t, msgs = setup()
    assert script.execute(ctx.meter, TABLE_LN, 2)
    assert ctx.meter.state[0] == 9
    assert len(msgs) == 5, msgs
    assert "0.0.96.1.9.255" in msgs[0] and "(4)" in msgs[0]  # object undefined
    assert "(12)" in msgs[1]  # type unmatched
    assert "(4)" in msgs[2]
    assert "(3)" in msgs[3] and "(3)" in msgs[4]  # read-write denied


def test_unknown_table_or_script_is_refused_and_logged():
    ctx, t, msgs = setup()
    assert not script.execute(ctx.meter, MISSING_LN, 1)
    assert not script.execute(ctx.meter, TABLE_LN, 77)
    assert len(msgs) == 2 and "77" in msgs[1]
    assert script.execute(ctx.meter, TABLE_LN, 0)  # the null script
    assert ctx.meter.state == [0, b"T1", 1234]


def test_script_runs_another_tables_script():
    ctx, t, msgs = setup()
    assert script.execute(ctx.meter, TABLE_LN, 3)
    assert ctx.meter.state[1] == b"T2"
    assert ctx.meter.state[0] == 5
    assert msgs == []


def test_recursion_is_bounded():
    ctx, t, msgs = setup()
    assert script.execute(ctx.meter, TABLE_LN, 4)
    assert any("too deep" in m for m in msgs), msgs
    assert script._depth == 0


def test_execute_method():
    ctx, t, msgs = setup()
    st = t[3]
    assert act(ctx, st, 1, "1200 01")[0] == base.SUCCESS
    assert ctx.meter.state[0] == 7
    assert act(ctx, st, 1, "1200 00")[0] == base.SUCCESS  # null script
    assert act(ctx, st, 1, "1200 63")[0] == base.OTHER_REASON
    assert act(ctx, st, 1, "0900")[0] == base.TYPE_UNMATCHED
    assert act(ctx, st, 1)[0] == base.TYPE_UNMATCHED
    assert act(ctx, st, 2, "1200 01")[0] == base.READ_WRITE_DENIED


def test_scripts_attribute():
    ctx, t, msgs = setup()
    out = get_ok(ctx, t[4], 2)
    assert out == unhex("0101 0202 120001 0101 0205 1601 120001 0906 0000600100FF 0F02 1105")
    assert ctx.r is not None
    out = get_ok(ctx, t[3], 2)
    assert out.startswith(unhex("0104 0202 120001 0102 0205 1601 120001"))


# ------------------------------------------------ a writable Script table

RW_LN = b"\x00\x00\x0a\x00\x02\xff"


def setup_rw(room=256, initial=SCRIPTS):
    t = (
        (1, 0, MODE_LN, DATA, 0, A, (axdr.UNSIGNED,)),
        (1, 0, NAME_LN, DATA, 1, A, (axdr.OCTET_STRING, 8)),
        (3, 0, ENERGY_LN, REGISTER, 2, AR, (0, 30)),
        (9, 0, TABLE_LN, SCRIPT_TABLE, -1, AS, SCRIPTS),
        (9, 0, OTHER_LN, SCRIPT_TABLE, -1, AS, OTHER),
        (9, 0, RW_LN, SCRIPT_TABLE, 3, ((b"\x01\x03", b"\x01"), None), SCRIPTS),
    )
    ctx = make(t, [0, b"T1", 1234, script.ScriptStore(room, initial)])
    msgs = []
    ctx.meter.log = msgs.append
    return ctx, t, msgs


def test_writable_table_runs_like_the_static_one():
    ctx, t, msgs = setup_rw()
    assert get_ok(ctx, t[5], 2) == get_ok(ctx, t[3], 2)
    assert script.execute(ctx.meter, RW_LN, 1)
    assert ctx.meter.state[0:3] == [7, b"T1", 0]
    assert script.execute(ctx.meter, RW_LN, 2)
    assert ctx.meter.state[0] == 9 and len(msgs) == 5
    assert "0.0.96.1.9.255" in msgs[0]
    assert not script.execute(ctx.meter, RW_LN, 9)
    assert act(ctx, t[5], 1, "1200 03")[0] == base.SUCCESS
    assert ctx.meter.state[0:2] == [5, b"T2"]
    assert act(ctx, t[5], 1, "1200 09")[0] == base.OTHER_REASON
    assert put(ctx, t[3], 2, "0100") == base.READ_WRITE_DENIED  # the static one


NEW = "0101 0202 120005 0101 0205 1601 120001 0906 0000600100FF 0F02 1103"


def test_set_scripts_replaces_them():
    ctx, t, msgs = setup_rw()
    assert put(ctx, t[5], 2, NEW) == base.SUCCESS
    assert get_ok(ctx, t[5], 2) == unhex(NEW)
    assert not script.execute(ctx.meter, RW_LN, 1)  # gone
    assert script.execute(ctx.meter, RW_LN, 5)
    assert ctx.meter.state[0] == 3
    # an empty table
    assert put(ctx, t[5], 2, "0100") == base.SUCCESS
    assert get_ok(ctx, t[5], 2) == unhex("0100")


def test_set_scripts_refusals():
    ctx, t, msgs = setup_rw(room=40, initial=())
    rw = t[5]
    act_hex = "0205 1601 120001 0906 %s 0F02 1103"
    # undefined object, wrong class, logical name attribute, index out of range
    assert put(ctx, rw, 2, "0101 0202 120005 0101" + act_hex % "0000600109FF") == base.OTHER_REASON
    assert put(ctx, rw, 2, "0101 0202 120005 0101 0205 1601 120003 0906 0000600100FF 0F02 1103") == base.OTHER_REASON
    assert put(ctx, rw, 2, "0101 0202 120005 0101 0205 1601 120001 0906 0000600100FF 0F01 1103") == base.OTHER_REASON
    assert put(ctx, rw, 2, "0101 0202 120005 0101 0205 1602 120001 0906 0000600100FF 0F01 0F00") == base.OTHER_REASON
    assert put(ctx, rw, 2, "0101 0202 120005 0101 0205 1603 120001 0906 0000600100FF 0F02 1103") == base.OTHER_REASON
    assert put(ctx, rw, 2, "0101 0202 120005 0101 0205 1601 120001 0905 0000600100 0F02 1103") == base.OTHER_REASON
    # wrong shapes
    assert put(ctx, rw, 2, "0101 0202 110005 0101" + act_hex % "0000600100FF") == base.TYPE_UNMATCHED
    assert put(ctx, rw, 2, "0101 0202 120005 0101 0204 1601 120001 0906 0000600100FF 0F02") == base.TYPE_UNMATCHED
    assert put(ctx, rw, 2, "0101 0202 120005 0101 0205 1101 120001 0906 0000600100FF 0F02 1103") == base.TYPE_UNMATCHED
    # more than the room (40 bytes)
    assert put(ctx, rw, 2, "0102" + ("0202 120005 0101" + act_hex % "0000600100FF") * 2) == base.OTHER_REASON
    assert get_ok(ctx, rw, 2) == unhex("0100")  # nothing stored
    assert put(ctx, rw, 2, "0101 0202 120005 0101" + act_hex % "0000600100FF") == base.SUCCESS


def test_set_scripts_while_a_script_runs_is_refused():
    # script 1 of the writable table writes the table's own scripts
    rw_scripts = ((1, (script.action(WRITE_ATTRIBUTE, 9, RW_LN, 2, axdr.ARRAY, []),)),)
    t = (
        (9, 0, RW_LN, SCRIPT_TABLE, 0, ((b"\x01\x03", b"\x01"), None), rw_scripts),
    )
    ctx = make(t, [script.ScriptStore(64, rw_scripts)])
    msgs = []
    ctx.meter.log = msgs.append
    assert script.execute(ctx.meter, RW_LN, 1)
    assert len(msgs) == 1 and "(2)" in msgs[0], msgs  # temporary failure
    assert get_ok(ctx, t[0], 2) != unhex("0100")


def test_execute_allocates_nothing_on_micropython():
    # a static and a writable table's script 1: a SET and an ACTION each
    ctx, t, msgs = setup_rw()
    m = ctx.meter
    for ln in (TABLE_LN, RW_LN):
        n = allocated(lambda: script.execute(m, ln, 1))
        assert n is None or n == 0, (ln, n)


def test_set_scripts_survive_a_restart():
    store = Store()
    ctx, t, msgs = setup_rw()
    ctx.meter.state[3] = script.ScriptStore(256, SCRIPTS, store, "st")
    assert put(ctx, t[5], 2, NEW) == base.SUCCESS
    ctx, t, msgs = setup_rw()
    ctx.meter.state[3] = script.ScriptStore(256, SCRIPTS, store, "st")
    assert get_ok(ctx, t[5], 2) == unhex(NEW)
    assert script.execute(ctx.meter, RW_LN, 5) and ctx.meter.state[0] == 3
