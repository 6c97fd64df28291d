# `pip install .` (no extras) into a fresh virtual environment is enough to
# serve: the installed dlms-micro serves the demo meter from another
# directory (the shipped definitions travel as package data), and a real
# client (gurux-dlms, from the test environment) associates with it. No
# test-only package is in that environment, so this also proves serving
# never imports one.

import os
import re
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean-install")
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), REPO],
                   check=True, timeout=300, capture_output=True)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    wheel = next(wheels.glob("dlms_micro-*.whl"))
    p = subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
                       timeout=600, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return venv, root


def test_the_installed_package_has_only_its_two_dependencies(installed):
    venv, _root = installed
    out = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"], capture_output=True, text=True,
                         timeout=120).stdout.lower()
    for test_only in ("gurux", "dlms-cosem", "pytest", "hypothesis"):
        assert test_only not in out, out
    assert "pyserial" in out and "cryptography" in out


def test_an_installed_dlms_micro_serves_the_demo_from_another_directory(installed):
    from interop_peers import WRAPPER, GuruxPeer

    venv, root = installed
    cwd = root / "elsewhere"
    cwd.mkdir()
    proc = subprocess.Popen([str(venv / "bin" / "dlms-micro"), "serve", "--port", "0", "--hdlc-port", "off",
                             "--data", str(root / "data")], cwd=str(cwd), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        deadline = time.monotonic() + 60
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line)
            m = re.search(r"listening: wrapper tcp 127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        assert port, "".join(seen)

        class Served:
            wrapper_address = ("127.0.0.1", port)

        p = GuruxPeer(Served(), WRAPPER, sap=16)
        try:
            p.connect()
            assert len(p.read_object_list()) >= 5
            p.release()
        finally:
            p.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
