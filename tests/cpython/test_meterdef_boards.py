"""The boards' meters as definitions (board/boards/<name>.meter.json), the
IS 15959 preset, and the compiled modules committed as portable-test
fixtures.

Each board's definition compiles, and its table is the one the hand-written
ports/micropython/dlms_micro_mp/meter_table.py built before the definitions
replaced it (that module is gone; what it built is kept below as literal
data): the same objects, classes, versions, logical names, handlers, access
rights per association, parameters and initial values. Two differences are
the compiler's on purpose: it adds one Association LN per association
(0.0.40.0.1.255, 0.0.40.0.2.255, each visible to its own association, as
docs/meter-definition.md says), and the IEC HDLC setup holds the board's own
link parameters (the C3 board's 60 s inactivity timeout; the old table
always said 120 s).
"""

import json
import os
import sys

import pytest

from dlms_micro.meterdef import build
from dlms_micro_cpython.meterdef import load

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOARDS = os.path.join(REPO, "board", "boards")
PORTABLE = os.path.join(REPO, "tests", "portable")


def _tool(name):
    # tools/ stays off sys.path (tools/micropython/ would shadow a module)
    if name not in sys.modules:
        import importlib.util

        spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


compile_meters = _tool("compile_meters")

# ---------------------------------------------------------------- the old table
# meter_table.build_meter(wall_clock, ldn, serial, password, logical=1,
# physical=17, profile_rows=N) as it was: per entry (class, version, logical
# name, handler, access per role (public, reader), param, initial state
# values; a profile: ("ring", rows)).

ASSOC_ACC = (b"\x01\x01\x01\x01\x01\x01\x00\x01\x01", b"\x00\x00\x00\x00")
DATA_RO = (b"\x01\x01", b"")
CLOCK_RO = (b"\x01\x01\x01\x01\x01\x01\x01\x01\x01", b"\x00\x00\x00\x00\x00\x00")
REG_RO = (b"\x01\x01\x01", b"\x00")
HDLC_RO = (b"\x01\x01\x01\x01\x01\x01\x01\x01\x01", b"")
SAP_RO = (b"\x01\x01", b"\x00")
PG_RO = (b"\x01\x01\x01\x01\x01\x01\x01\x01", b"\x00\x00")
EU_DST_BEGIN = b"\xff\xff\x03\xfe\x07\x01\x00\x00\xff\x00\x00\xff"
EU_DST_END = b"\xff\xff\n\xfe\x07\x01\x00\x00\xff\x00\x00\xff"
CLOCK = b"\x00\x00\x01\x00\x00\xff"
IMPORT = b"\x01\x00\x01\x08\x00\xff"
EXPORT = b"\x01\x00\x02\x08\x00\xff"
ROLES = [(16, 0, b"", 0x001014, "public"), (32, 1, b"12345678", 0x001014, "reader")]


def old_table(ldn, serial, rows, inactivity=120):
    return [
        (15, 1, b"\x00\x00(\x00\x00\xff", "ASSOCIATION_LN", (ASSOC_ACC, ASSOC_ACC), None, None),
        (1, 0, b"\x00\x00*\x00\x00\xff", "DATA", (DATA_RO, DATA_RO), (9, 0, 16, ldn), None),
        (1, 0, b"\x00\x00`\x01\x00\xff", "DATA", (None, DATA_RO), (9, 0, 16, serial), None),
        (8, 0, CLOCK, "CLOCK", (CLOCK_RO, CLOCK_RO), None,
         (0, 0, 0, EU_DST_BEGIN, EU_DST_END, 60, False, None, None, None)),
        (3, 0, IMPORT, "REGISTER", (REG_RO, REG_RO), (0, 30, 6), (0,)),
        (3, 0, EXPORT, "REGISTER", (None, REG_RO), (0, 30, 6), (0,)),
        (23, 1, b"\x00\x00\x16\x00\x00\xff", "IEC_HDLC_SETUP", (None, HDLC_RO), None,
         (5, 1, 1, 128, 128, 25, inactivity, 17)),
        (17, 0, b"\x00\x00)\x00\x00\xff", "SAP_ASSIGNMENT", (None, SAP_RO), ((1, ldn),), None),
        (7, 1, b"\x01\x00c\x01\x00\xff", "PROFILE_GENERIC", (None, PG_RO),
         (((8, CLOCK, 2, 0, 15), (3, IMPORT, 2, 0, 6), (3, EXPORT, 2, 0, 6)), 900, rows), ("ring", rows)),
    ]


# the per-association Association LN objects the compiler adds
ADDED = [
    (15, 1, b"\x00\x00(\x00\x01\xff", "ASSOCIATION_LN", (ASSOC_ACC, None), (0, None), None),
    (15, 1, b"\x00\x00(\x00\x02\xff", "ASSOCIATION_LN", (None, ASSOC_ACC), (1, None), None),
]

# board -> (ldn, serial, rows, HDLC setup inactivity timeout)
BOARD_METERS = {
    "esp32_devkitc_max3485": (b"DMI0000000000001", b"00000001", 96, 120),  # 192 before time of use
    "esp32c3_battery": (b"DMI0000000000002", b"00000002", 96, 60),
}
SLOTS = {1: 1, 3: 1, 8: 10, 23: 8, 7: 1}


# What the boards added since the old table (issue 15): a third
# association, management (SAP 1, HLS-GMAC, suite 0), which reads
# everything, sets the clock and has the Security setup and invocation
# counter the compiler adds for it, and a Push setup (0.0.25.9.0.255).
# old_view() leaves them out, so the two associations the old table had are
# compared as they were.
MANAGEMENT_ONLY = (b"\x00\x00+\x00\x00\xff", b"\x00\x00+\x01\x00\xff", b"\x00\x00(\x00\x03\xff",
                   b"\x00\x00\x19\x09\x00\xff")
# RAM the Push setup's state takes (destination and window buffers)
PUSH_RAM = 84
# The applications the mains-meter board added after that (issue 15 item 5):
# two import rate registers, the register activation, the tariffication
# script table and the activity calendar of time of use, the disconnect
# control of the supply relay. old_view() leaves them out too; the RAM
# their state takes (the calendar's and the register activation's room).
APPLICATIONS = (b"\x01\x00\x01\x08\x01\xff", b"\x01\x00\x01\x08\x02\xff", b"\x00\x00\x0e\x00\x01\xff",
                b"\x00\x00\x0a\x00\x64\xff", b"\x00\x00\x0d\x00\x00\xff", b"\x00\x00\x60\x03\x0a\xff")
APP_RAM = {"esp32_devkitc_max3485": 640}


def old_view(c):
    got, m = table_of(c)
    out = []
    for cid, ver, ln, h, acc, param, st in got:
        if ln in MANAGEMENT_ONLY or ln in APPLICATIONS:
            continue
        if cid == 15 and param is not None:
            # the Association LN objects name the Security setup now
            param = None if param[0] == -1 else (param[0], None)
        out.append((cid, ver, ln, h, acc[:2], param, st))
    return out, m


def table_of(c):
    # the compiled table in the old one's terms, with each object's initial
    # state as the portable builder makes it
    m = build.build(c, lambda: 800000000)
    out = []
    for e in m.table:
        cid, ver, ln, hi, slot, acc, param = e
        if ln in MANAGEMENT_ONLY[3:]:
            continue  # the Push setup (its state is no tuple of values)
        st = None
        if slot >= 0 and ln in APPLICATIONS:
            st = ("application", cid)  # state objects, compared by their own tests
        elif slot >= 0:
            st = m.state[slot : slot + SLOTS[cid]]
            st = ("ring", st[0].rows) if cid == 7 else tuple(st)
        # the old table's param of the current association was None; the
        # compiled one says which association (-1: current) and no
        # Security setup
        if cid == 15 and param == (-1, None):
            param = None
        out.append((cid, ver, ln, c.HANDLERS[hi][1], acc, param, st))
    return out, m


def board_cfg(name):
    with open(os.path.join(BOARDS, name + ".json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", sorted(BOARD_METERS))
def test_board_names_its_meter_definition_and_module(name):
    cfg = board_cfg(name)
    assert cfg["meter"] == name + ".meter.json"
    assert cfg["meter_module"] == name + "_meter"
    # what the definition says is not said twice
    for k in ("ldn", "serial", "password", "load_profile_rows"):
        assert k not in cfg
    assert set(cfg["hdlc"]) == {"max_apdu"}


@pytest.mark.parametrize("name", sorted(BOARD_METERS))
def test_board_meter_definition_builds_the_old_hand_written_table(name):
    ldn, serial, rows, inactivity = BOARD_METERS[name]
    c = load(os.path.join(BOARDS, name + ".meter.json"))
    got, m = old_view(c)
    old = old_table(ldn, serial, rows, inactivity)
    assert got == old[:1] + ADDED + old[1:]
    assert [(r.client_sap, r.mechanism, r.secret, r.conformance, r.name) for r in m.roles][:2] == ROLES
    assert (m.roles[2].client_sap, m.roles[2].mechanism, m.roles[2].name) == (1, 5, "management")
    assert (c.NAME, c.SERIAL_NUMBER, c.LOGICAL_DEVICE, c.PHYSICAL_ADDRESS) == (ldn, serial, 1, 17)
    assert c.HDLC == (128, 1, inactivity, 25, 9600)
    # the profile keeps its rows in the storage in pages of 32 rows
    assert c.DEVICES[0][3][-2][1] == (1, 32)  # (the last: the Push setup's)


def test_board_meter_ram_is_the_profile_ring():
    for name, (_l, _s, rows, _i) in BOARD_METERS.items():
        c = load(os.path.join(BOARDS, name + ".meter.json"))
        assert c.ram == [rows * 27 + PUSH_RAM + APP_RAM.get(name, 0)]


# -------------------------------------------------------------- the fixtures
# compiled modules committed under tests/portable/ -> the definition they
# were compiled from
FIXTURES = {
    "mp_port_meter.py": os.path.join(REPO, "tests", "meters", "mp_port.json"),
    "mp_port_meter_lp.py": os.path.join(REPO, "tests", "meters", "mp_port_lp.json"),
    "esp32_devkitc_max3485_meter.py": os.path.join(BOARDS, "esp32_devkitc_max3485.json"),
    "esp32c3_battery_meter.py": os.path.join(BOARDS, "esp32c3_battery.json"),
    "esp32_devkitc_prepaid_meter.py": os.path.join(BOARDS, "esp32_devkitc_prepaid.json"),
    # the retrofit examples (issue 14): their meters are under meters/
    "s0_retrofit_meter.py": os.path.join(BOARDS, "esp32c3_s0_retrofit.json"),
    "optical_retrofit_meter.py": os.path.join(BOARDS, "esp32_devkitc_optical.json"),
    "modbus_gateway_meter.py": os.path.join(BOARDS, "esp32_devkitc_modbus_gateway.json"),
    "mp_gateway_meter.py": os.path.join(REPO, "tests", "meters", "mp_gateway.json"),
}


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_compiled_fixture_is_up_to_date(fixture):
    src = FIXTURES[fixture]
    if src.endswith(".meter.json") or not src.startswith(BOARDS):
        want = compile_meters.meter_text(src)
    else:
        definition, module = compile_meters.board_meter(src)
        assert module + ".py" == fixture
        want = compile_meters.meter_text(definition)
    with open(os.path.join(PORTABLE, fixture)) as f:
        have = f.read()
    assert have == want, ("tests/portable/%s is stale: python tools/compile_meters.py %s -o %s"
                          % (fixture, os.path.relpath(src, REPO),
                             "tests/portable" if src.startswith(BOARDS) else "tests/portable/" + fixture))


def test_compiled_module_builds_the_same_meter_as_the_json():
    # the frozen path (a module of constants) and the CPython path (JSON
    # loaded) build the same table and state
    sys.path.insert(0, PORTABLE)
    try:
        import esp32_devkitc_max3485_meter as mod
    finally:
        sys.path.remove(PORTABLE)
    a, _ = table_of(mod)
    b, _ = table_of(load(os.path.join(BOARDS, "esp32_devkitc_max3485.meter.json")))
    assert a == b


def test_compile_board_meter_writes_the_module_the_board_names(tmp_path):
    out = compile_meters.compile_board_meter(os.path.join(BOARDS, "esp32c3_battery.json"), str(tmp_path))
    assert out == str(tmp_path / "esp32c3_battery_meter.py")
    with open(out) as f:
        text = f.read()
    assert "from board/boards/esp32c3_battery.meter.json" in text.splitlines()[0]
    ns = {}
    exec(compile(text, out, "exec"), ns)
    assert ns["NAME"] == b"DMI0000000000002" and ns["FORMAT"] == build.FORMAT
    # not rewritten when nothing changed (the firmware build sees no change)
    before = os.stat(out).st_mtime_ns
    os.utime(out, ns=(before - 10**9, before - 10**9))
    compile_meters.compile_board_meter(os.path.join(BOARDS, "esp32c3_battery.json"), str(tmp_path))
    assert os.stat(out).st_mtime_ns == before - 10**9


def test_compile_all_boards_skips_the_definitions(tmp_path):
    paths = compile_meters.compile_all_boards(BOARDS, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["esp32_devkitc_max3485_meter.py", "modbus_gateway_meter.py",
                                                    "optical_retrofit_meter.py", "esp32_devkitc_prepaid_meter.py",
                                                    "esp32c3_battery_meter.py", "s0_retrofit_meter.py"]


def test_compile_meters_command_line(tmp_path, capsys):
    board = os.path.join(BOARDS, "esp32_devkitc_max3485.json")
    assert compile_meters.main([board, "-o", str(tmp_path)]) == 0
    assert (tmp_path / "esp32_devkitc_max3485_meter.py").is_file()
    # a board file without a definition, a definition with a fault: exit 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "channels": []}))
    assert compile_meters.main([str(bad), "-o", str(tmp_path)]) == 2
    assert "\"meter\"" in capsys.readouterr().err
    broken = tmp_path / "broken.meter.json"
    broken.write_text(json.dumps({"meter": "dlms-micro/1", "name": "DMI1", "serial_number": "1",
                                  "associations": {"public": {"client_sap": 16}},
                                  "objects": [{"class": "register", "obis": "1.0.1.8.0.255", "read": ["nobody"]}]}))
    assert compile_meters.main(["--definition", str(broken), "-o", str(tmp_path / "x.py")]) == 2
    err = capsys.readouterr().err
    assert "objects[0]" in err and "nobody" in err
    assert not (tmp_path / "x.py").exists()


# ------------------------------------------------------ the IS 15959 preset
PRESET = os.path.join(REPO, "meters", "is15959_single_phase.json")


def _ln(text):
    return bytes(int(x) for x in text.split("."))


def test_is15959_preset_compiles_with_the_standard_objects():
    c = load(PRESET)
    table = c.DEVICES[0][2]
    cls = {e[2]: e[0] for e in table}
    want = {
        # instantaneous parameters
        "1.0.12.7.0.255": 3, "1.0.11.7.0.255": 3, "1.0.91.7.0.255": 3, "1.0.13.7.0.255": 3,
        "1.0.14.7.0.255": 3, "1.0.9.7.0.255": 3, "1.0.1.7.0.255": 3, "1.0.1.8.0.255": 3, "1.0.9.8.0.255": 3,
        "1.0.1.6.0.255": 4, "0.0.94.91.14.255": 3, "0.0.94.91.0.255": 1, "0.0.0.1.0.255": 1,
        "0.0.96.2.0.255": 1,
        # profiles and their scaler profiles
        "1.0.94.91.0.255": 7, "1.0.94.91.3.255": 7, "1.0.98.1.0.255": 7, "1.0.94.91.6.255": 7,
        "1.0.99.1.0.255": 7, "1.0.94.91.4.255": 7, "1.0.99.2.0.255": 7, "1.0.94.91.5.255": 7,
        # name plate
        "0.0.96.1.0.255": 1, "0.0.96.1.1.255": 1, "1.0.0.2.0.255": 1, "0.0.94.91.9.255": 1,
        "0.0.94.91.11.255": 1, "0.0.94.91.12.255": 1, "0.0.96.1.4.255": 1,
        "0.0.1.0.0.255": 8,
    }
    for i in range(7):
        want["0.0.99.98.%d.255" % i] = 7
        want["0.0.96.11.%d.255" % i] = 1
    for ln, cid in want.items():
        assert cls.get(_ln(ln)) == cid, ln
    # the maximum demand keeps its capture time, which the profiles capture
    inst = [e for e in table if e[2] == _ln("1.0.94.91.0.255")][0]
    assert (4, _ln("1.0.1.6.0.255"), 5, 0, 15) in inst[6][0]
    # each event log captures the clock and its own event code object
    for i in range(7):
        log = [e for e in table if e[2] == _ln("0.0.99.98.%d.255" % i)][0]
        cols = [(col[1], col[2]) for col in log[6][0]]
        assert cols[:2] == [(_ln("0.0.1.0.0.255"), 2), (_ln("0.0.96.11.%d.255" % i), 2)]
        assert log[6][1] == 0  # captured on events, not periodically
    # the scaler profiles capture scaler_unit (attribute 3) of what their
    # profile captures
    for prof, scaler in (("1.0.94.91.0.255", "1.0.94.91.3.255"), ("1.0.99.1.0.255", "1.0.94.91.4.255"),
                         ("1.0.99.2.0.255", "1.0.94.91.5.255"), ("1.0.98.1.0.255", "1.0.94.91.6.255")):
        p = [e for e in table if e[2] == _ln(prof)][0]
        s = [e for e in table if e[2] == _ln(scaler)][0]
        registers = {col[1] for col in p[6][0] if col[0] in (3, 4) and col[2] == 2}
        assert {col[1] for col in s[6][0]} == registers and {col[2] for col in s[6][0]} == {3}, scaler


def test_is15959_preset_associations_pc_mr_us():
    c = load(PRESET)
    assert [(r[0], r[1], r[2], r[5]) for r in c.ROLES] == [("PC", 16, 0, 0), ("MR", 32, 1, 0), ("US", 48, 5, 3)]
    table = c.DEVICES[0][2]
    # the public client sees the clock and what every meter adds, nothing
    # of the metering data
    pc = sorted("%d.%d.%d.%d.%d.%d" % tuple(e[2]) for e in table if e[5][0] is not None)
    assert pc == ["0.0.1.0.0.255", "0.0.40.0.0.255", "0.0.40.0.1.255", "0.0.42.0.0.255", "0.0.43.1.0.255"]
    # the ciphered US association brings Security setup and the invocation counter
    assert {_ln("0.0.43.0.0.255"), _ln("0.0.43.1.0.255")} <= {e[2] for e in table}
    # US sets the clock; MR reads it only
    clock = [e for e in table if e[0] == 8][0]
    assert clock[5][2][0][1] == 3 and clock[5][1][0][1] == 1


def test_is15959_preset_simulated_rows_and_values():
    from dlms_micro.cosem import profile
    from dlms_micro_cpython.simulator import SimulatedMeter

    c = load(PRESET)
    wall = [1767225600 + 30]
    sim = SimulatedMeter(c, wall_clock=lambda: wall[0], seed=1)
    for _ in range(2):
        wall[0] += 60
        sim.update()
    m = sim.meter
    # one current row in the instantaneous and scaler profiles; the power
    # up the simulator logs in the power failure log
    for ln in ("1.0.94.91.0.255", "1.0.94.91.3.255", "1.0.94.91.7.255", "0.0.99.98.2.255"):
        assert profile.buffer_of(m, sim.entry(ln)).count == 1, ln
    assert profile.buffer_of(m, sim.entry("1.0.98.1.0.255")).count == 0  # captured by US only
    volts = m.state[sim.entry("1.0.12.7.0.255")[4]]
    assert 20000 < volts < 26000  # 200.00 .. 260.00 V
