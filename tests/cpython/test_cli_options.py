# The dlms-micro command's options for people: --version, python -m,
# --seed and --start, and one clear line (exit code 1, no traceback) for
# every --data that cannot hold the meter's state.

import os
import subprocess
import sys

from dlms_micro import __version__
from dlms_micro_cpython.cli import build_parser, main

OFF = ["--port", "off", "--hdlc-port", "off"]


def run(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "dlms_micro_cpython", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_version_and_python_dash_m():
    p = run("--version")
    assert p.returncode == 0 and p.stdout.strip() == "dlms-micro %s" % __version__


def test_start_and_seed_parse_and_reach_the_meter(tmp_path):
    args = build_parser().parse_args(["serve", "--seed", "7", "--start", "2026-01-01T00:00:00Z"])
    assert args.seed == 7 and args.start == 1767225600
    p = run("serve", "--data", str(tmp_path / "d"), *OFF, "--start", "2026-03-01T12:00:00+01:00", "--seed", "7")
    # nothing to serve: it says so and stops, after printing the start
    assert "the meter's clock started at 2026-03-01T11:00:00Z" in p.stdout, p.stdout + p.stderr
    assert run("serve", "--start", "yesterday").returncode == 2


def test_bad_data_directories_get_one_line_and_exit_code_1(tmp_path, capsys):
    f = tmp_path / "a-file"
    f.write_text("x")
    for bad, why in ((str(f), "it is a file, not a directory"),
                     (str(f / "below"), "a part of the path is a file"),
                     ("/proc/no-such/dir", "No such file or directory")):
        assert main(["serve", "--data", bad, *OFF]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot keep the meter's state in --data %s" % bad in err, err
        assert why in err and "Traceback" not in err


def test_an_unwritable_data_directory_is_refused_before_serving(tmp_path, capsys, monkeypatch):
    from dlms_micro_cpython import storage

    def refuse(self, key, value):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(storage.FileStorage, "put", refuse)
    assert main(["serve", "--data", str(tmp_path / "ro"), *OFF]) == 1
    assert "Permission denied" in capsys.readouterr().err
    assert os.path.isdir(tmp_path / "ro")
