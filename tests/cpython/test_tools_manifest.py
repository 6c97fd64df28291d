"""tools/manifest.py run as MicroPython's build runs a manifest.

MicroPython's tools/manifestfile.py is not installable from PyPI, so this
runs the manifest with a stand-in for its documented commands: exec with the
manifest's folder as working directory, `options` from include()'s keyword
arguments with options.defaults(), and include/package/module/metadata
recording what they are given.
"""

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.path.join(REPO, "tools")


class Options:
    def __init__(self, **kw):
        self.__dict__.update(kw)

    def defaults(self, **kw):
        for k, v in kw.items():
            self.__dict__.setdefault(k, v)


def run_manifest(**kw):
    calls = {"include": [], "files": [], "metadata": {}}

    def package(package_path, files=None, base_path=".", opt=None):
        base = os.path.abspath(base_path)  # relative to the manifest's folder
        for f in files:
            calls["files"].append((os.path.join(base, package_path, f),
                                   package_path + "/" + f, opt))

    def module(module_path, base_path=".", opt=None):
        calls["files"].append((os.path.join(os.path.abspath(base_path), module_path),
                               module_path, opt))

    g = {
        "options": Options(**kw),
        "include": calls["include"].append,
        "package": package,
        "module": module,
        "metadata": lambda **m: calls["metadata"].update(m),
    }
    prev = os.getcwd()
    os.chdir(TOOLS)
    try:
        with open(os.path.join(TOOLS, "manifest.py")) as f:
            exec(f.read(), g)
    finally:
        os.chdir(prev)
    return calls


def test_manifest_default_freezes_every_module_the_port_and_the_port_manifest():
    calls = run_manifest()
    assert calls["include"] == ["$(PORT_DIR)/boards/manifest.py"]
    targets = sorted(t for _, t, _ in calls["files"])
    import sys
    pk = sys.modules["dlms_packages"]  # loaded by the manifest
    port = os.path.join(REPO, "ports", "micropython", "dlms_micro_mp")
    port_files = sorted("dlms_micro_mp/" + f for f in os.listdir(port) if f.endswith(".py"))
    assert "dlms_micro_mp/board.py" in port_files and "dlms_micro_mp/loop.py" in port_files
    core = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(REPO, "dlms_micro")):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        core += [os.path.relpath(os.path.join(dirpath, f), REPO).replace(os.sep, "/")
                 for f in filenames if f.endswith(".py")]
    assert set(m for n in pk.PACKAGES for m in pk.modules(n)) <= set(core)
    assert targets == sorted(core + port_files)
    calls["files"] = [f for f in calls["files"] if f[1].startswith("dlms_micro/")]
    for src, target, _ in calls["files"]:
        assert os.path.isfile(src), src
        assert os.path.normpath(src) == os.path.join(REPO, target)
    assert calls["metadata"]["version"] == pk.VERSION


def test_manifest_freezes_only_the_selected_layers_and_their_deps(tmp_path):
    table = tmp_path / "meter_table.py"
    table.write_text("OBJECTS = ()\n")
    entry = tmp_path / "fw_main.py"
    entry.write_text("import dlms_micro\n")
    calls = run_manifest(layers="hdlc, register", port_manifest=False, port=False,
                         table=str(table), modules=str(entry), opt=2)
    assert calls["include"] == []
    targets = [t for _, t, _ in calls["files"]]
    assert "dlms_micro/link/hdlc.py" in targets
    assert "dlms_micro/cosem/clock.py" in targets  # register needs it
    assert "dlms_micro/link/wrapper.py" not in targets
    assert not any("/security/" in t for t in targets)
    assert not any(t.startswith("dlms_micro_mp/") for t in targets)
    assert targets[-2:] == ["meter_table.py", "fw_main.py"]
    assert calls["files"][-2][0] == str(table)
    assert calls["files"][-1][0] == str(entry)
    assert {o for _, _, o in calls["files"]} == {2}


def test_manifest_unknown_layer_is_an_error():
    with pytest.raises(KeyError):
        run_manifest(layers="core,modbus")


def test_manifest_viper_freezes_the_viper_modules():
    calls = run_manifest(port_manifest=False, viper=True)
    for name in ("ghash_viper.py", "crc16_viper.py"):
        srcs = [s for s, t, _ in calls["files"] if t == name]
        assert srcs == [os.path.join(REPO, "ports", "micropython", name)]
        assert name not in [t for _, t, _ in run_manifest()["files"]]
