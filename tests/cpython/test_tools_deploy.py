"""tools/deploy.py up to the point where a real board is needed."""

import os
import shlex
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


deploy = _tool("deploy")
freeze = _tool("freeze")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("deploy")
    board = root / "boardsrc"
    board.mkdir()
    (board / "main.py").write_text("print('meter')\n")
    (board / "boot.py").write_text("\n")
    out = root / "mpy"
    freeze.freeze(["wrapper"], str(out), board=str(board))
    defs = root / "boards"
    defs.mkdir()
    (defs / "esp32_devkitc.json").write_text("{}\n")
    (defs / "other.json").write_text("{}\n")
    return out, defs


def run(*args):
    return subprocess.run([sys.executable, os.path.join(REPO, "tools", "deploy.py")] + list(args),
                          capture_output=True, text=True, timeout=60)


def test_deploy_dry_run_prints_the_exact_mpremote_commands(built):
    out, defs = built
    proc = run("/dev/ttyUSB7", "--board", "esp32_devkitc", "--src", str(out),
               "--board-dir", str(defs), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    lines = [shlex.split(l) for l in proc.stdout.splitlines()]
    conn = ["mpremote", "connect", "/dev/ttyUSB7"]
    assert lines == [
        conn + ["fs", "cp", "-r", str(out / "lib"), ":"],
        conn + ["fs", "cp", str(out / "boot.py"), ":boot.py"],
        conn + ["fs", "cp", str(out / "main.py"), ":main.py"],
        conn + ["fs", "cp", "-r", str(defs), ":"],
        conn + ["exec", 'import json; f = open("dlms_board.json", "w"); '
                        'json.dump(dict(board="esp32_devkitc"), f); f.close()'],
        conn + ["reset"],
    ]


def test_deploy_config_exec_writes_the_board_name_as_json(tmp_path, built):
    # run the exec step's code under CPython: it must write valid JSON
    out, defs = built
    steps = deploy.plan("auto", "esp32_devkitc", str(out), str(defs))
    code = [s for s in steps if s[2] == "exec"][0][3]
    prev = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(code, {})
    finally:
        os.chdir(prev)
    import json
    assert json.loads((tmp_path / "dlms_board.json").read_text()) == {"board": "esp32_devkitc"}


def test_deploy_without_board_definitions_only_writes_the_name(built, tmp_path):
    out, _ = built
    steps = deploy.plan("u0", "proto-1", str(out), str(tmp_path / "none"))
    assert not any(":" == s[-1] and "boards" in s[-2] for s in steps)
    assert steps[-1] == ["connect", "u0", "reset"]


@pytest.mark.parametrize("board, src_ok, message", [
    ("nosuch", True, "no board definition nosuch.json"),
    ("bad name;", True, "board name must be"),
    ("esp32_devkitc", False, "not a tools/freeze.py output"),
])
def test_deploy_rejects_bad_input_before_any_command(built, tmp_path, board, src_ok, message):
    out, defs = built
    proc = run("/dev/ttyUSB7", "--board", board, "--src", str(out if src_ok else tmp_path),
               "--board-dir", str(defs), "--dry-run")
    assert proc.returncode == 1
    assert message in proc.stderr and proc.stdout == ""


def test_deploy_reports_a_missing_board_clearly(built):
    out, defs = built
    proc = run("/dev/ttyDLMS-NO-SUCH", "--board", "esp32_devkitc", "--src", str(out),
               "--board-dir", str(defs))
    assert proc.returncode == 1
    assert "no board connected at /dev/ttyDLMS-NO-SUCH" in proc.stderr
    assert "+ mpremote" not in proc.stdout  # nothing was attempted
