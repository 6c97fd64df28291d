"""tools/freeze.py: .mpy outputs that real MicroPython loads."""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
def _tool(name):
    # tools/ stays off sys.path: tools/micropython/ would import as a
    # namespace package `micropython` and fool portable code under CPython
    if name not in sys.modules:
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(REPO, "tools", name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


pk = _tool("dlms_packages")
freeze = _tool("freeze")

SELECTION = ["hdlc", "security", "register"]


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    root = tmp_path_factory.mktemp("freeze")
    board = root / "board"
    board.mkdir()
    (board / "main.py").write_text("import meter_table\n")
    (board / "pins.py").write_text("UART_ID = 1\nDE_PIN = 4\n")
    table = root / "meter_table.py"
    table.write_text("OBJECTS = ((1, b'\\x00\\x00\\x2a\\x00\\x00\\xff'),)\n")
    out = root / "out"
    rows = freeze.freeze(SELECTION, str(out), table=str(table), board=str(board))
    return out, rows


def test_freeze_writes_every_selected_module_and_board_files(frozen):
    out, rows = frozen
    want = []
    for name in pk.closure(SELECTION):
        want += ["lib/" + m[:-3] + ".mpy" for m in pk.modules(name)]
    got = [r[1] for r in rows if r[0].startswith("dlms-micro-")]
    assert got == want
    assert not (out / "lib/dlms_micro/link/wrapper.mpy").exists()
    assert (out / "main.py").read_text() == "import meter_table\n"
    assert (out / "lib/pins.mpy").is_file() and (out / "lib/meter_table.mpy").is_file()
    for _, dest, py, mpy in rows:
        assert os.path.getsize(out / dest) == mpy
        if dest.endswith(".mpy"):
            head = (out / dest).read_bytes()[:2]
            assert head == b"M\x06", (dest, head)  # mpy format v6 (MicroPython >= 1.22)
            if dest.startswith("lib/dlms_micro/"):
                assert 0 < mpy < py


def test_freeze_report_prints_per_package_and_total(frozen, capsys):
    _, rows = frozen
    total_py, total_mpy = freeze.report(rows)
    text = capsys.readouterr().out
    assert "= dlms-micro-core" in text and "= dlms-micro-security" in text
    assert "total (%d files)" % len(rows) in text
    assert total_mpy == sum(r[3] for r in rows)


def test_freeze_refuses_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "precious.txt").write_text("x")
    with pytest.raises(freeze.FreezeError):
        freeze.freeze(["core"], str(tmp_path))
    assert (tmp_path / "precious.txt").exists()


def test_freeze_output_loads_under_micropython(frozen, tmp_path):
    # The runner stages a package folder that has an __init__.py (compiled
    # by the runner itself) and copies the other files as they are: so every
    # module but the package's __init__ is imported from tools/freeze.py's .mpy.
    if shutil.which("node") is None or not os.path.isdir(
            os.path.join(REPO, "tools", "micropython", "node_modules")):
        pytest.skip("Node.js or the MicroPython npm package missing (make bootstrap)")
    out, rows = frozen
    pkg = tmp_path / "dlms_micro"
    shutil.copytree(out / "lib" / "dlms_micro", pkg)
    for init in pkg.rglob("__init__.mpy"):
        rel = init.relative_to(pkg).with_suffix(".py")
        shutil.copyfile(os.path.join(REPO, "dlms_micro", rel), init.with_suffix(".py"))
        init.unlink()
    names = [m[:-3].replace("/", ".") for n in pk.closure(SELECTION) for m in pk.modules(n)]
    names = [n[:-len(".__init__")] if n.endswith(".__init__") else n for n in names]
    script = tmp_path / "load_all.py"
    script.write_text(
        "import sys\n"
        "for name in %r:\n"
        "    __import__(name)\n"
        "    f = getattr(sys.modules[name], '__file__', '')\n"
        "    assert name.endswith('dlms_micro') or name.endswith('__init__') or "
        "f.endswith('.mpy') or f.endswith('__init__.py'), (name, f)\n"
        "print('loaded', len(%r))\n" % (names, names))
    proc = subprocess.run(
        ["node", os.path.join(REPO, "tools", "micropython", "runner.mjs"),
         "--heap", "256k", "--package", str(pkg), "--script", str(script)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "loaded %d" % len(names) in proc.stdout


def test_freeze_ram_measure_reads_the_heap_kept_after_import():
    if shutil.which("node") is None or not os.path.isdir(
            os.path.join(REPO, "tools", "micropython", "node_modules")):
        pytest.skip("Node.js or the MicroPython npm package missing (make bootstrap)")
    core = freeze.measure_ram(["core"])
    with_hdlc = freeze.measure_ram(["hdlc"])
    assert core is not None and with_hdlc is not None
    # bytecode loaded into RAM at least; more modules keep more
    assert 10000 < core < with_hdlc
