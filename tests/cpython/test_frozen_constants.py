"""No constant that a frozen firmware turns into heap objects on a hot path.

MicroPython's compiler folds a tuple of constants into one constant object,
and its freezer (tools/mpy-tool.py, v1.27) stores the integers of such a
tuple as small ints only between -0x2000 and 0x1FFF: wider ones become
big-int objects, and any arithmetic on them allocates (a CRC table in a
tuple made every frozen GET allocate 1,632 B). Tables of wider values live
in bytes/bytearray/array. This scans every module that a firmware freezes
(tools/manifest.py: dlms_micro and the port package) for such tuples; the
few left are listed below with why they are not on a request's path.
"""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMALL_LO, SMALL_HI = -0x2000, 0x1FFF

# (file, name bound to the tuple): why it costs nothing per request
ALLOWED = {
    # only compared with (put_int's range check): a comparison with a big
    # int does not allocate (measured on the frozen unix firmware: 0 B per
    # put_int of a double-long-unsigned and of a long)
    ("dlms_micro/axdr.py", "_UMAX"): "compared only",
    ("dlms_micro/axdr.py", "_SMAX"): "compared only",
    ("dlms_micro/axdr.py", "_SMIN"): "compared only",
    # the UART's rate when the HDLC setup object is configured, not per frame
    ("dlms_micro/cosem/hdlc_setup.py", "BAUD_RATES"): "configuration",
    ("dlms_micro/cosem/hdlc_setup.py", "_HI"): "SET range check (compared)",
    # once per optical sign-on
    ("dlms_micro/link/iec21.py", "BAUD_RATES"): "once per sign-on",
}


def _constant(node):
    if isinstance(node, ast.Tuple):
        return all(_constant(e) for e in node.elts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return isinstance(node.operand, ast.Constant)
    return isinstance(node, ast.Constant)


def _ints(node):
    if isinstance(node, ast.Tuple):
        for e in node.elts:
            yield from _ints(e)
    elif isinstance(node, ast.Constant) and type(node.value) is int:
        yield node.value
    elif isinstance(node, ast.UnaryOp) and type(node.operand.value) is int:
        yield -node.operand.value


def wide_constant_tuples(source):
    """[(line, bound name or None, wide ints)] of constant tuples in source."""
    tree = ast.parse(source)
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names[id(node.value)] = node.targets[0].id
    found = []
    seen = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Tuple) or not _constant(node) or id(node) in seen:
            continue
        for sub in ast.walk(node):
            seen.add(id(sub))
        wide = [v for v in _ints(node) if not SMALL_LO <= v <= SMALL_HI]
        if wide:
            found.append((node.lineno, names.get(id(node)), wide))
    return found


def frozen_sources():
    for top in ("dlms_micro", os.path.join("ports", "micropython")):
        for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, top)):
            dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
            for f in sorted(filenames):
                if f.endswith(".py"):
                    yield os.path.relpath(os.path.join(dirpath, f), REPO).replace(os.sep, "/")


def test_no_wide_integer_tuple_in_frozen_modules():
    bad = []
    for rel in frozen_sources():
        with open(os.path.join(REPO, rel)) as f:
            for line, name, wide in wide_constant_tuples(f.read()):
                if (rel, name) not in ALLOWED:
                    bad.append("%s:%d %s: %d ints outside -0x2000..0x1FFF (e.g. %s)"
                               % (rel, line, name, len(wide), hex(wide[0])))
    assert not bad, "frozen, these tuples hold heap big ints:\n" + "\n".join(bad)


# In the compiled meter definitions a firmware freezes (tools/compile_meters.py)
ALLOWED_IN_METERS = {
    # link parameters (the communication speed, 9600): read once, when the
    # HDLC link is made
    "HDLC": "read when the link is made",
    # conformance blocks (24-bit): copied into Role objects when the meter is
    # built and combined once per association (a frozen GET allocates 0 B:
    # tools/firmware/bench_fw.py)
    "ROLES": "read per association",
    # the definition's value sources (baud rates, poll periods in ms): read
    # when the port sets its sources up
    "SOURCES": "read when the sources are set up",
}


def test_no_wide_integer_tuple_in_the_compiled_meter_definitions(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("compile_meters", os.path.join(REPO, "tools", "compile_meters.py"))
    cm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cm)
    paths = cm.compile_all_boards(os.path.join(REPO, "board", "boards"), str(tmp_path))
    paths.append(cm.compile_meter(os.path.join(REPO, "tools", "firmware", "secure.meter.json"),
                                  str(tmp_path / "fw_secure_meter.py")))
    assert paths
    bad = []
    for path in paths:
        with open(path) as f:
            for line, name, wide in wide_constant_tuples(f.read()):
                if name not in ALLOWED_IN_METERS:
                    bad.append("%s:%d %s: %s" % (os.path.basename(path), line, name, [hex(v) for v in wide[:4]]))
    assert not bad, "frozen, these tuples hold heap big ints:\n" + "\n".join(bad)


def test_the_scan_finds_a_wide_table_and_passes_small_ones():
    src = "T = (0x0000, 0x1189, 0x2312)\nS = (1, -0x2000, 0x1FFF)\ndef f():\n    return x in (1, 0x8000)\n"
    found = wide_constant_tuples(src)
    assert [(line, name, wide) for line, name, wide in found] == [(1, "T", [0x2312]), (4, None, [0x8000])]


def test_crc_table_is_an_array_and_matches_the_polynomial():
    from array import array

    from dlms_micro import crc16

    assert isinstance(crc16.TABLE, array) and len(crc16.TABLE) == 256
    assert crc16.TABLE[1] == 0x1189 and crc16.TABLE[128] == 0x8408 and crc16.TABLE[255] == 0x0F78
    assert crc16.fcs(b"123456789", 0, 9) == 0x906E  # CRC-16/X.25 check value
