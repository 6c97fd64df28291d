"""Build real MicroPython firmware with dlms_micro frozen in (`make firmware`).

    python tools/firmware/build.py [--target unix32|qemu|all] [--board NAME] [-j N]

From MicroPython v1.27.0 source: the pinned, trimmed tarball beside the
clone (../shared/micropython/micropython-1.27.0-trimmed.tar.gz, sha256
checked, unpacked once into build/), or MICROPY_SRC=/path/to/a/clone of tag
v1.27.0 (with the lib/mbedtls submodule). Builds mpy-cross, then

    unix32  ports/unix, 32-bit (MICROPY_FORCE_32BIT=1, no ffi/btree): the
            object sizes of an ESP32; sockets, select, cryptolib
            -> build/firmware/unix32/micropython
    qemu    ports/qemu BOARD=MPS2_AN385 (Cortex-M3), 100 KiB heap, bare metal
            -> build/firmware/qemu/firmware.elf

each freezing, through the project's manifest (tools/manifest.py), every
dlms_micro layer, the port package dlms_micro_mp, the board definition
compiled to a Python module (dlms_board_def: NAMES, load(name)) and the entry
point tools/firmware/fw_main.py. The top-level manifest it writes
(build/firmware/TARGET/manifest.py) is the freeze recipe in README.md.

A missing compiler or source prints one line naming what to install.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(REPO, "build")
OUT = os.path.join(BUILD, "firmware")

TARBALL = "micropython-1.27.0-trimmed.tar.gz"
TARBALL_SHA256 = "cfc900bbf1cad7e98bd46c3034e3b28e6160a6bfbbd98380039be0064e644333"
SHARED = os.path.join(os.path.dirname(REPO), "shared", "micropython")
UNPACKED = os.path.join(BUILD, "micropython-1.27.0")  # holds micropython/

DEFAULT_BOARD = "esp32_devkitc_max3485"
BOARDS = os.path.join(REPO, "board", "boards")
# A board file names its meter definition and the module it compiles to
# ("meter_module"); tools/compile_meters.py writes those modules, which are
# frozen as top-level modules beside the board definitions.
TABLE = None  # one more table module (.py) to freeze, e.g. a user's own
ENTRY = os.path.join(HERE, "fw_main.py")
BENCH = os.path.join(HERE, "fw_bench.py")  # frozen too: its code costs no heap
SECURE = os.path.join(HERE, "secure.meter.json")  # fw_main --meter fw_secure_meter
DEMO = os.path.join(REPO, "ports", "cpython", "dlms_micro_cpython", "meters", "demo.json")
# The demo meter with board-sized profiles (2 days of load profile, 8 hours of
# power quality, a month of daily values, 50 events), frozen into the unix
# firmware only, for its heap-after-boot figure (tools/firmware/bench_fw.py).
DEMO_ROWS = {"1.0.99.1.0.255": 192, "1.0.99.2.0.255": 96, "1.0.98.1.0.255": 31, "0.0.99.98.0.255": 50}
QEMU_HEAP = 102400  # 100 KiB, an ESP32's free heap

UNIX_FLAGS = ["MICROPY_FORCE_32BIT=1", "MICROPY_PY_FFI=0", "MICROPY_PY_BTREE=0"]


# A board must boot with this much heap free (unix 32-bit firmware, 100 KiB
# heap, its keys provisioned): two TCP or UART channels (~7 KB each) and the
# requests they serve. A board file or definition that leaves less is
# refused at build time with its figures.
MIN_FREE_AFTER_BOOT = 24 * 1024


class BuildError(Exception):
    pass


def check_board_heap(image, names, min_free=MIN_FREE_AFTER_BOOT, heap="100k"):
    """Boot each board on the unix firmware image (fw_main --boot-only, demo
    keys in a scratch storage); BuildError naming every board that leaves
    less than min_free bytes free, with its figures. Returns {name: (used,
    free)}."""
    import tempfile

    figures = {}
    bad = []
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([image, "-X", "heapsize=" + heap, "-m", "fw_main", "--board", name, "--port", "off",
                                   "--hdlc-port", "off", "--data", os.path.join(tmp, "data"), "--quiet",
                                   "--boot-only"], cwd=tmp, capture_output=True, text=True, timeout=60)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("dlms_micro: ready")]
        if proc.returncode != 0 or not line:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            bad.append("board %s does not boot in a %s heap: %s" % (name, heap, " / ".join(tail)))
            continue
        f = dict(x.split("=", 1) for x in line[0].split()[2:])
        used, free = int(f["heap_used"]), int(f["heap_free"])
        figures[name] = (used, free)
        if free < min_free:
            bad.append("board %s: heap after boot %d B used, %d B free; a board needs %d B free (two channels "
                       "and their requests): refused" % (name, used, free, min_free))
    if bad:
        raise BuildError("\n".join(bad))
    return figures


def say(msg):
    print("firmware: " + msg, flush=True)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def find_source():
    """The MicroPython tree to build from (a folder holding py/, ports/)."""
    env = os.environ.get("MICROPY_SRC")
    if env:
        if not os.path.isfile(os.path.join(env, "py", "mpconfig.h")):
            raise BuildError("MICROPY_SRC=%s is not a MicroPython source tree" % env)
        return os.path.abspath(env)
    tree = os.path.join(UNPACKED, "micropython")
    stamp = os.path.join(UNPACKED, ".sha256")
    if os.path.isfile(stamp) and open(stamp).read().strip() == TARBALL_SHA256:
        return tree
    tarball = os.environ.get("MICROPY_TARBALL", os.path.join(SHARED, TARBALL))
    if not os.path.isfile(tarball):
        raise BuildError(
            "no MicroPython source: %s not found; set MICROPY_SRC to a clone of v1.27.0 "
            "(git clone --depth 1 -b v1.27.0 https://github.com/micropython/micropython "
            "&& git -C micropython submodule update --init --depth 1 lib/mbedtls)" % tarball)
    got = sha256(tarball)
    if got != TARBALL_SHA256:
        raise BuildError("%s: sha256 %s, expected %s; not building from it" % (tarball, got, TARBALL_SHA256))
    shutil.rmtree(UNPACKED, ignore_errors=True)
    os.makedirs(UNPACKED)
    say("unpacking %s" % os.path.relpath(tarball, REPO))
    with tarfile.open(tarball) as tf:
        try:
            tf.extractall(UNPACKED, filter="data")
        except TypeError:  # Python < 3.12 without extraction filters
            tf.extractall(UNPACKED)
    with open(stamp, "w") as f:
        f.write(TARBALL_SHA256 + "\n")
    return tree


def _ok(cmd):
    try:
        return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def check_tools(targets, run_qemu=False):
    """One line naming the Debian packages to install, or None."""
    need = []
    if run_qemu and "qemu" in targets and not shutil.which("qemu-system-arm"):
        need.append("qemu-system-arm")
    if not shutil.which("make"):
        need.append("make")
    if not shutil.which("gcc"):
        need.append("gcc")
    elif "unix32" in targets:
        probe = os.path.join(BUILD, "m32probe.c")
        os.makedirs(BUILD, exist_ok=True)
        with open(probe, "w") as f:
            f.write("#include <stdio.h>\nint main(void){return 0;}\n")
        if not _ok(["gcc", "-m32", probe, "-o", probe[:-2]]):
            need.append("gcc-multilib")
    if "qemu" in targets:
        if not shutil.which("arm-none-eabi-gcc"):
            need += ["gcc-arm-none-eabi", "libnewlib-arm-none-eabi"]
        elif not _ok(["sh", "-c", "echo '#include <string.h>' | arm-none-eabi-gcc -E -x c - "]):
            need.append("libnewlib-arm-none-eabi")
    if need:
        return "install %s (Debian: apt-get install -y %s)" % (" ".join(need), " ".join(need))
    return None


def _tool(name):
    # tools/NAME.py, loaded by path (tools/ is not a package)
    import importlib.util

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", name + ".py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


def board_names(folder):
    # the board files' names (NAME.json; not the NAME.meter.json beside them)
    return [os.path.basename(f)[:-5] for f in _tool("compile_meters").board_files(folder)]


def board_meters(dest):
    """Compile every board's meter definition into dest; the module paths."""
    cm = _tool("compile_meters")
    try:
        return cm.compile_all_boards(BOARDS, dest)
    except (cm.DefinitionError, cm.BoardError) as e:
        raise BuildError("a board's meter definition does not compile:\n%s" % e)


def secure_meter(dest):
    """The firmware test's secured meter (HLS-GMAC, suite 0), compiled."""
    cm = _tool("compile_meters")
    out = os.path.join(dest, "fw_secure_meter.py")
    try:
        return cm.compile_meter(SECURE, out) or out
    except cm.DefinitionError as e:
        raise BuildError("%s does not compile:\n%s" % (os.path.relpath(SECURE, REPO), e))


def demo_meter(dest):
    """The demo meter definition with board-sized profiles, compiled."""
    cm = _tool("compile_meters")
    with open(DEMO) as f:
        defn = json.load(f)
    for o in defn["objects"]:
        if o.get("obis") in DEMO_ROWS:
            o["profile_entries"] = DEMO_ROWS[o["obis"]]
    src = os.path.join(dest, "fw_demo.meter.json")
    _write_if_changed(src, json.dumps(defn, indent=1, sort_keys=True))
    try:
        return cm.compile_meter(src, os.path.join(dest, "fw_demo_meter.py"))
    except cm.DefinitionError as e:
        raise BuildError("the demo meter with board-sized profiles does not compile:\n%s" % e)


def board_defs(first, dest):
    """Compile every board/boards/*.json into one module dlms_board_def.

    NAMES: the boards, `first` first (the firmware's default); load(name):
    that board's definition as a new dict. Each definition is built only
    when asked for (the module's constants stay in flash).
    """
    folder = BOARDS
    names = board_names(folder)
    if first not in names:
        raise BuildError("no board %r (boards: %s)" % (first, ", ".join(names)))
    names.remove(first)
    names.insert(0, first)
    lines = ["# Generated by tools/firmware/build.py from board/boards/*.json",
             "NAMES = %r" % (tuple(names),), ""]
    for i, name in enumerate(names):
        with open(os.path.join(folder, name + ".json")) as f:
            cfg = json.load(f)
        lines += ["", "def _b%d():" % i, "    return %r" % (cfg,), ""]
    lines += ["", "def load(name):",
              "    return globals()['_b%d' % NAMES.index(name)]()", ""]
    path = os.path.join(dest, "dlms_board_def.py")
    _write_if_changed(path, "\n".join(lines))
    return path


def _write_if_changed(path, text):
    if os.path.isfile(path) and open(path).read() == text:
        return
    with open(path, "w") as f:
        f.write(text)


def manifest_text(target, modules):
    # The freeze recipe: include the project's manifest with the options a
    # board's own manifest would give it.
    opts = ["port_manifest=False"]
    if TABLE:
        opts.append("table=%r" % os.path.abspath(TABLE))
    if target == "qemu":
        opts.append("viper=True")  # GHASH in viper, frozen as Thumb-2 code
    opts.append("modules=%r" % ",".join(modules))
    text = ('# Generated by tools/firmware/build.py (%s)\n'
            'include(%r,\n        %s)\n'
            % (target, os.path.join(REPO, "tools", "manifest.py"), ",\n        ".join(opts)))
    return text


def _install(src, dest):
    # copy, then rename over: a running firmware keeps its old file
    shutil.copyfile(src, dest + ".new")
    os.chmod(dest + ".new", 0o755)
    os.replace(dest + ".new", dest)


def run(cmd, log):
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise BuildError("%s failed (log %s):\n%s" % (" ".join(cmd[:4]), os.path.relpath(log, REPO), tail))


def build(targets, board, jobs):
    missing = check_tools(targets)
    if missing:
        raise BuildError(missing)
    src = find_source()
    os.makedirs(OUT, exist_ok=True)
    j = "-j%d" % jobs
    t0 = time.time()
    run(["make", "-C", os.path.join(src, "mpy-cross"), j], os.path.join(OUT, "mpy-cross.log"))
    say("mpy-cross built (%.0f s)" % (time.time() - t0))
    results = {}
    for target in targets:
        dest = os.path.join(OUT, target)
        os.makedirs(dest, exist_ok=True)
        modules = [board_defs(board, dest)] + board_meters(dest) + [secure_meter(dest), ENTRY, BENCH]
        if target == "unix32":
            modules.append(demo_meter(dest))
        manifest = os.path.join(dest, "manifest.py")
        _write_if_changed(manifest, manifest_text(target, modules))
        t0 = time.time()
        if target == "unix32":
            objdir = os.path.join(dest, "obj")
            run(["make", "-C", os.path.join(src, "ports", "unix"), j, "BUILD=" + objdir,
                 ] + UNIX_FLAGS
                + ["FROZEN_MANIFEST=" + manifest], os.path.join(dest, "build.log"))
            image = os.path.join(dest, "micropython")
            built = os.path.join(objdir, "micropython")
            figures = check_board_heap(built, board_names(BOARDS))
            _install(built, image)
            for name in sorted(figures):
                say("%s: heap after boot %d B used, %d B free" % (name, figures[name][0], figures[name][1]))
        else:
            objdir = os.path.join(dest, "obj")
            run(["make", "-C", os.path.join(src, "ports", "qemu"), j, "BOARD=MPS2_AN385",
                 "BUILD=" + objdir, "MICROPY_HEAP_SIZE=%d" % QEMU_HEAP,
                 "FROZEN_MANIFEST=" + manifest], os.path.join(dest, "build.log"))
            image = os.path.join(dest, "firmware.elf")
            _install(os.path.join(objdir, "firmware.elf"), image)
        results[target] = (image, time.time() - t0)
        say("%s: %s (%.0f s)" % (target, os.path.relpath(image, REPO), time.time() - t0))
    with open(os.path.join(OUT, "board.txt"), "w") as f:
        f.write(board + "\n")
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default="all", choices=("all", "unix32", "qemu"))
    ap.add_argument("--board", default=os.environ.get("BOARD") or DEFAULT_BOARD)
    ap.add_argument("-j", dest="jobs", type=int, default=2)
    ap.add_argument("--check-tools", action="store_true",
                    help="only check the compilers (and qemu-system-arm); exit 1 naming what is missing")
    args = ap.parse_args(argv)
    targets = ["unix32", "qemu"] if args.target == "all" else [args.target]
    if args.check_tools:
        missing = check_tools(targets, run_qemu=True)
        if missing:
            print("firmware: " + missing, file=sys.stderr)
            return 1
        return 0
    try:
        build(targets, args.board, args.jobs)
    except BuildError as e:
        print("firmware: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
