# The meter-definition compiler (dlms_micro_cpython.meterdef): the format's
# example compiles to the expected table, the compiled module builds the
# same meter byte for byte as the JSON loaded directly, every fault is named
# by its place, and the CLI exits with 2 and writes nothing on a fault.

import copy
import json
import os
import types

import pytest

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.meterdef import build
from dlms_micro_cpython import meterdef
from dlms_micro_cpython.cli import main
from dlms_micro_cpython.meterdef import DefinitionError, compile_definition
from dlms_micro_cpython.meterdef.emit import module_text, wide_ints

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
EXAMPLE = os.path.join(ROOT, "docs", "examples", "small_meter.json")


def example():
    with open(EXAMPLE, encoding="utf-8") as f:
        return json.load(f)


def errors_of(d):
    with pytest.raises(DefinitionError) as ei:
        compile_definition(d, "m.json")
    return ei.value.errors


def as_module(c):
    mod = types.ModuleType("compiled_meter")
    exec(compile(module_text(c, "test"), "compiled_meter.py", "exec"), mod.__dict__)
    return mod


def every_attribute(meter):
    # {(ln, attr): encoded value} of every attribute every role can read
    ctx = base.Context(meter)
    ctx.r = axdr.Reader()
    out = {}
    buf = bytearray(4096)
    for e in meter.table:
        ic = meter.handlers[e[base.E_IC]]
        for attr in range(1, ic.attribute_count + 1):
            if e[0] == 15 and attr == 2:
                continue  # the object list needs an association (checked through the peers)
            try:
                res = common.get_attribute(ctx, e, attr, buf, 0, len(buf))
            except Exception as ex:  # noqa: BLE001
                res = repr(ex)
            out[(e[base.E_LN], attr)] = (res, bytes(buf[: ctx.pos]) if res == 0 else b"")
    return out


def fixed_clock():
    return 1767225600  # 2026-01-01 00:00 UTC


def test_the_example_compiles_to_the_objects_it_names_plus_the_ones_every_meter_needs():
    c = compile_definition(example())
    table = c.DEVICES[0][2]
    lns = ["%d.%d.%d.%d.%d.%d" % tuple(e[2]) for e in table]
    assert lns == [
        "0.0.40.0.0.255", "0.0.40.0.1.255", "0.0.40.0.2.255", "0.0.40.0.3.255",
        "0.0.1.0.0.255", "0.0.96.1.0.255", "1.0.1.8.0.255", "1.0.99.1.0.255",
        "0.0.42.0.0.255", "0.0.41.0.0.255", "0.0.43.0.0.255", "0.0.43.1.0.255",
    ]
    assert c.SYSTEM_TITLE == b"DMI" + (42).to_bytes(5, "big")
    assert [r[:4] for r in c.ROLES] == [("public", 16, 0, b""), ("reader", 32, 1, b"12345678"),
                                         ("management", 1, 5, b"")]
    reg = table[6]
    assert reg[0] == 3 and reg[6] == (0, 30, axdr.DOUBLE_LONG_UNSIGNED)
    assert reg[5][0] is None and reg[5][1] == (b"\x01\x01\x01", b"\x00")
    pg = table[7]
    assert pg[6] == (((8, bytes((0, 0, 1, 0, 0, 255)), 2, 0, 15), (3, bytes((1, 0, 1, 8, 0, 255)), 2, 0, 6)), 900, 96)
    # the serial number nobody writes is a constant of the table (no slot)
    serial = table[5]
    assert serial[4] == -1 and serial[6] == (axdr.OCTET_STRING, 0, 8, b"00000042")
    # the clock: management writes time, time zone and DST; methods too
    clk = table[4]
    assert clk[5][2][0] == bytes((1, 3, 3, 1, 3, 3, 3, 3, 1)) and clk[5][2][1] == b"\x01" * 6
    assert clk[5][0][0] == b"\x01" * 9 and clk[5][0][1] == b"\x00" * 6


def test_the_compiled_module_builds_the_same_meter_byte_for_byte():
    c = compile_definition(example())
    mod = as_module(c)
    a = build.build(c, fixed_clock)
    b = build.build(mod, fixed_clock)
    assert a.table == b.table
    assert [type(h) for h in a.handlers] == [type(h) for h in b.handlers]
    assert every_attribute(a) == every_attribute(b)
    assert len(a.state) == len(b.state)


def test_the_compiled_module_holds_constants_only():
    text = module_text(compile_definition(example()), "x")
    tree = compile(text, "m", "exec", flags=0x400, dont_inherit=True)  # ast
    import ast

    for node in ast.walk(tree):
        assert not isinstance(node, (ast.Call, ast.Name)) or (isinstance(node, ast.Name) and isinstance(
            node.ctx, ast.Store)), ast.dump(node)
    # integers a frozen build would keep as big-int objects: in the table
    # only cold ones (conformance); initial values (123456) are made small
    # ints by build (build._small)
    c = compile_definition(example())
    assert wide_ints(tuple(d[2] for d in c.DEVICES), set()) == set()
    assert all(v in {r[4] for r in c.ROLES} for v in wide_ints(c.ROLES, set()))
    assert build._small(123456) == 123456 and build._small(-70000) == -70000


def test_json_types_values_and_units():
    d = example()
    d["objects"].append({"class": "register", "obis": "1-0:32.7.0.255", "type": "long-unsigned", "value": 2301,
                         "scaler": -1, "unit": "V", "write": ["management"]})
    d["objects"].append({"class": "data", "obis": "0.0.96.1.1.255", "type": "visible-string",
                         "value": "ACME", "max_length": 16, "write": ["management"]})
    d["objects"].append({"class": "data", "obis": "0.0.96.1.2.255", "type": "octet-string",
                         "value": {"hex": "00FF"}})
    c = compile_definition(d)
    m = build.build(c, fixed_clock)
    got = every_attribute(m)
    assert got[(bytes((1, 0, 32, 7, 0, 255)), 2)] == (0, bytes((0x12, 0x08, 0xFD)))
    assert got[(bytes((1, 0, 32, 7, 0, 255)), 3)] == (0, bytes((0x02, 0x02, 0x0F, 0xFF, 0x16, 35)))
    assert got[(bytes((0, 0, 96, 1, 1, 255)), 2)] == (0, b"\x0a\x04ACME")
    assert got[(bytes((0, 0, 96, 1, 2, 255)), 2)] == (0, b"\x09\x02\x00\xff")
    # a written data object keeps its value in a slot, bounded by max_length
    e = m.find_ln(bytes((0, 0, 96, 1, 1, 255)), 0)
    assert e[4] >= 0 and e[6] == (axdr.VISIBLE_STRING, 16)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["objects"].append(dict(d["objects"][2])), "objects[4] (register 1.0.1.8.0.255): duplicate OBIS"),
    (lambda d: d["objects"][0].update({"class": "gsm-diagnostic"}), "objects[0]: class 'gsm-diagnostic'"),
    (lambda d: d["objects"][0].update({"version": 2}), "objects[0] (clock 0.0.1.0.0.255): version 2"),
    (lambda d: d["objects"][3]["capture_objects"].append("1.0.2.8.0.255:2"),
     "objects[3] (profile-generic 1.0.99.1.0.255): capture_objects[2]: 1.0.2.8.0.255 is not in the table"),
    (lambda d: d["objects"][1].update({"read": ["reader", "operator"]}),
     "objects[1] (data 0.0.96.1.0.255): read: unknown association 'operator'"),
    (lambda d: d["objects"][2].update({"value": -1}), "objects[2] (register 1.0.1.8.0.255): value: -1 is out of "
                                                       "range for double-long-unsigned"),
    (lambda d: d["objects"][2].update({"value": "12"}), "value: a double-long-unsigned value is an integer"),
    (lambda d: d["objects"][2].update({"unit": "kWh"}), "unit: unit 'kWh': COSEM has no kilo units"),
    (lambda d: d["objects"][2].update({"obis": "1.0.1.8"}), "objects[2] (register): obis: '1.0.1.8' is not"),
    (lambda d: d["objects"][3].update({"profile_entries": 0}), "profile_entries: an integer 1..1000000"),
    (lambda d: d["objects"][3].update({"capture_objects": ["0.0.1.0.0.255"]}),
     "capture_objects[0]: '0.0.1.0.0.255' is not a reference"),
    (lambda d: d["objects"][0].update({"colour": "red"}), "objects[0] (clock 0.0.1.0.0.255): colour: unknown key"),
    (lambda d: d["associations"]["reader"].pop("password"), "associations.reader.password: required"),
    (lambda d: d["associations"]["reader"].update({"client_sap": 16}), "associations.reader.client_sap: 16 is also"),
    (lambda d: d["associations"]["public"].update({"authentication": "high-md5"}),
     "associations.public.authentication: one of none, low, high-gmac"),
    (lambda d: d.update({"meter": "dlms-micro/2"}), "meter: must be 'dlms-micro/1'"),
    (lambda d: d.pop("name"), "name: required"),
])
def test_every_fault_is_named_by_its_place(change, expected):
    d = example()
    change(d)
    errs = errors_of(d)
    assert any(expected in e for e in errs), errs


def test_all_faults_are_reported_together():
    d = example()
    d["objects"][2]["value"] = -1
    d["objects"][1]["read"] = ["nobody"]
    assert len(errors_of(d)) == 2


def test_an_imported_gurux_style_class_id_works_like_its_name():
    d = example()
    d["objects"][2]["class"] = 3
    a = compile_definition(example())
    b = compile_definition(d)
    assert a.DEVICES == b.DEVICES


def test_a_gateway_definition_gives_one_meter_per_logical_device():
    d = example()
    d["logical_devices"] = [{"logical_device": 2, "name": "DMI0000000000043", "serial_number": "43",
                             "objects": [{"class": "register", "obis": "1.0.1.8.0.255", "value": 7, "unit": "Wh"}]}]
    c = compile_definition(d)
    meters = build.build_all(c, fixed_clock)
    assert [m.logical_device for m in meters] == [1, 2]
    sap = meters[0].find_ln(bytes((0, 0, 41, 0, 0, 255)), 0)
    assert sap[6] == ((1, b"DMI0000000000042"), (2, b"DMI0000000000043"))
    assert meters[1].find_ln(bytes((0, 0, 41, 0, 0, 255)), 0) is None  # only logical device 1 lists them
    assert meters[1].state[meters[1].find_ln(bytes((1, 0, 1, 8, 0, 255)), 0)[4]] == 7


# ------------------------------------------------------------------- CLI


def write(tmp_path, d, name="m.json"):
    p = tmp_path / name
    p.write_text(json.dumps(d))
    return str(p)


def test_cli_compile_writes_a_module_and_check_and_show_describe_it(tmp_path, capsys):
    src = write(tmp_path, example())
    out = str(tmp_path / "meter_mod.py")
    assert main(["meter", "compile", src, "-o", out]) == 0
    text = open(out).read()
    assert text.startswith("# Generated by `dlms-micro meter compile`")
    assert main(["meter", "check", src, "--board", "esp32c3_battery"]) == 0
    assert main(["meter", "show", src]) == 0
    shown = capsys.readouterr().out
    assert "1.0.99.1.0.255  profile-generic (7)" in shown and "Load profile 1" in shown


def test_cli_refuses_a_bad_definition_with_exit_code_2_and_writes_nothing(tmp_path, capsys):
    d = example()
    d["objects"][3]["capture_objects"].append("9.9.9.9.9.9:2")
    src = write(tmp_path, d)
    out = tmp_path / "never.py"
    assert main(["meter", "compile", src, "-o", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "9.9.9.9.9.9 is not in the table" in err and "nothing written" in err
    bad = tmp_path / "broken.json"
    bad.write_text("{\"meter\": ")
    assert main(["meter", "check", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["meter", "check", str(tmp_path / "missing.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_cli_check_refuses_a_profile_too_large_for_the_board(tmp_path, capsys):
    d = example()
    d["objects"][3]["profile_entries"] = 96 * 400
    src = write(tmp_path, d)
    assert main(["meter", "check", src, "--board", "esp32c3_battery"]) == 2
    assert "more than the" in capsys.readouterr().err
    assert main(["meter", "check", src]) == 0  # without a board: fine on a PC


def test_serve_refuses_a_bad_definition_with_exit_code_2(tmp_path, capsys):
    d = copy.deepcopy(example())
    d["objects"][0]["class"] = "no-such-class"
    src = write(tmp_path, d)
    assert main(["serve", "--meter", src, "--data", str(tmp_path / "data"), "--port", "off",
                 "--hdlc-port", "off"]) == 2
    assert "no-such-class" in capsys.readouterr().err


def test_the_readme_example_checks_and_its_simulation_drives_the_register(tmp_path, capsys):
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    part = text[text.index("## Define your meter"):]
    start = part.index("```json\n") + len("```json\n")
    d = json.loads(part[start : part.index("```", start)].replace("\n   ", "\n"))
    src = write(tmp_path, d, "my_meter.json")
    assert main(["meter", "check", src, "--board", "esp32c3_battery"]) == 0
    from dlms_micro_cpython.simulator import SimulatedMeter

    now = [1767225600]
    sim = SimulatedMeter(meterdef.load(src), wall_clock=lambda: now[0], seed=1, history=1)
    reg = sim.entry("1.0.1.8.0.255")
    assert sim.meter.state[reg[base.E_SLOT]] > 123456  # a day of household import
    assert sim.profile_buffer("1.0.99.1.0.255").count == 96
