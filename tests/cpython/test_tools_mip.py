"""The mip package split (tools/dlms_packages.py, packages/*/package.json)."""

import json
import os
import posixpath
import subprocess
import sys
import tomllib

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
mip_json = _tool("mip_json")


def test_mip_every_module_is_in_exactly_one_package():
    owner = {}
    for name in pk.PACKAGES:
        for m in pk.modules(name):
            assert m not in owner, "%s is in %s and %s" % (m, owner[m], name)
            owner[m] = name
    on_disk = pk.all_modules_on_disk()
    assert sorted(owner) == on_disk, (
        "not in any package: %s; listed but missing: %s"
        % (sorted(set(on_disk) - set(owner)), sorted(set(owner) - set(on_disk))))


def test_mip_deps_are_known_and_acyclic_with_core_first():
    for name, (_, deps, _) in pk.PACKAGES.items():
        for d in deps:
            assert d in pk.PACKAGES
        order = pk.closure([name])
        assert order[-1] == name and order[0] == "core"


def test_mip_committed_package_json_is_up_to_date():
    assert mip_json.main(["--check"]) == 0


def test_mip_every_relative_url_resolves_to_an_existing_file():
    # mip joins a scheme-less URL to the package.json's folder
    for name in pk.PACKAGES:
        folder = "packages/" + name
        with open(os.path.join(REPO, folder, "package.json")) as f:
            data = json.load(f)
        assert data["version"] == pk.VERSION
        assert data["deps"] == []
        dests = [d for d, _ in data["urls"]]
        assert len(dests) == len(set(dests))
        want = []
        for each in pk.closure([name]):
            want.extend(pk.modules(each))
        assert dests == want
        for dest, url in data["urls"]:
            assert ":" not in url, url
            src = posixpath.normpath(posixpath.join(folder, url))
            assert src == dest
            assert os.path.isfile(os.path.join(REPO, src)), src


def test_mip_base_option_writes_absolute_urls_and_deps(tmp_path):
    out = os.path.join(REPO, "build", "test-mip-base")
    rc = subprocess.run([sys.executable, os.path.join(REPO, "tools", "mip_json.py"),
                         "--base", "github:ORG/REPO", "--out", out],
                        capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    with open(os.path.join(out, "security-setup", "package.json")) as f:
        data = json.load(f)
    assert data["urls"] == [["dlms_micro/cosem/security_setup.py",
                             "github:ORG/REPO/dlms_micro/cosem/security_setup.py"]]
    assert data["deps"] == [["github:ORG/REPO/build/test-mip-base/core", "HEAD"],
                            ["github:ORG/REPO/build/test-mip-base/security", "HEAD"]]


def test_the_version_has_one_source():
    # pyproject.toml takes it from dlms_micro/__init__.py; so do the mip
    # packages and the CLI's --version
    import dlms_micro

    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        project = tomllib.load(f)
    assert "version" not in project["project"] and project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "dlms_micro.__version__"}
    assert pk.VERSION == dlms_micro.__version__


class FakeBoardFs:
    """The part of mpremote's transport that its mip installer uses."""

    def __init__(self):
        self.files = {}
        self.dirs = set()

    def fs_exists(self, path):
        return path in self.dirs or path in self.files

    def fs_mkdir(self, path):
        self.dirs.add(path)

    def fs_writefile(self, path, data, progress_callback=None):
        self.files[path] = data


def test_mip_mpremote_installs_a_committed_package_from_the_clone(monkeypatch):
    # `mpremote mip install packages/register/package.json`, the board faked
    mip = pytest.importorskip("mpremote.mip")
    monkeypatch.chdir(REPO)
    board = FakeBoardFs()
    mip._install_package(board, "packages/register/package.json",
                         "https://micropython.org/pi/v2", "/lib", None, True)
    want = [m for n in pk.closure(["register"]) for m in pk.modules(n)]
    assert sorted(board.files) == sorted("/lib/" + m for m in want)
    with open(os.path.join(REPO, "dlms_micro", "cosem", "register.py"), "rb") as f:
        assert board.files["/lib/dlms_micro/cosem/register.py"] == f.read()
    assert "/lib/dlms_micro/link/hdlc.py" not in board.files
