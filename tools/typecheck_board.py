"""Type-check the board-side code against the MicroPython ESP32 stubs.

    python tools/typecheck_board.py [PATH ...]

PATH defaults to ports/micropython/ and board/ (whichever hold .py files).
mypy runs with the stubs of micropython-esp32-stubs and
micropython-stdlib-stubs as its typeshed (custom_typeshed_dir), so the code
is checked against what an ESP32 firmware has, not CPython's library: wrong
machine.UART / Pin keywords, `uart.read()` that may be None, CPython-only
modules. dlms_micro/ itself is imported (so calls into it are checked) but
not reported on: its tests run it under real MicroPython.

The stubs are installed once into build/esp32-stubs with `pip install
--target` (never into .venv: they put `requests/`, `time.pyi`, `socket.pyi`
... at the top of site-packages, which shadows packages of a CPython
environment). The versions are pinned below; changing them reinstalls.
Errors mypy reports inside the stubs themselves (there are some) are
dropped; exit status 1 if any error is left in the checked code.
"""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUB_PINS = ("micropython-esp32-stubs==1.29.0.post1",
             "micropython-stdlib-stubs==1.29.0.post2")
STUBS = os.path.join(REPO, "build", "esp32-stubs")
CACHE = os.path.join(REPO, "build", "mypy-board-cache")
DEFAULT_PATHS = ("ports/micropython", "board")


def ensure_stubs():
    stamp = os.path.join(STUBS, ".pins")
    want = "\n".join(STUB_PINS) + "\n"
    try:
        with open(stamp) as f:
            if f.read() == want:
                return
    except OSError:
        pass
    print("typecheck-board: installing %s into %s" % (", ".join(STUB_PINS),
                                                      os.path.relpath(STUBS, REPO)))
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", "--no-deps", "--upgrade",
                           "--target", STUBS] + list(STUB_PINS))
    if proc.returncode != 0:
        sys.exit("typecheck-board: pip could not install the ESP32 stubs")
    with open(stamp, "w") as f:
        f.write(want)


def has_python(path):
    if os.path.isfile(path):
        return path.endswith(".py")
    for _, _, files in os.walk(path):
        if any(f.endswith(".py") for f in files):
            return True
    return False


def run_mypy(paths):
    env = dict(os.environ)
    env["MYPYPATH"] = os.pathsep.join([STUBS, REPO, os.path.join(REPO, "ports", "micropython")])
    cmd = [sys.executable, "-m", "mypy",
           "--custom-typeshed-dir", STUBS,
           "--follow-imports", "silent",
           # module names from the MYPYPATH bases only: an __init__.py in a
           # directory above the checkout (seen in /tmp) must not rename them
           "--explicit-package-bases",
           "--no-error-summary", "--show-error-codes",
           "--cache-dir", CACHE] + list(paths)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    stubs_prefix = os.path.relpath(STUBS, REPO) + os.sep
    kept = []
    for line in proc.stdout.splitlines():
        in_stubs = line.startswith(stubs_prefix) or line.startswith(STUBS + os.sep)
        if in_stubs:
            continue
        kept.append(line)
    errors = [l for l in kept if ": error:" in l]
    crashed = proc.returncode not in (0, 1) or (proc.returncode == 1 and not proc.stdout)
    return kept, errors, crashed, proc.stderr


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    paths = [p for p in (argv or DEFAULT_PATHS)
             if os.path.exists(os.path.join(REPO, p)) and has_python(os.path.join(REPO, p))]
    if not paths:
        print("typecheck-board: no board code to check (%s)" % ", ".join(argv or DEFAULT_PATHS))
        return 0
    ensure_stubs()
    kept, errors, crashed, stderr = run_mypy(paths)
    for line in kept:
        print(line)
    if crashed:
        print("typecheck-board: mypy failed:\n" + stderr, file=sys.stderr)
        return 2
    if errors:
        print("typecheck-board: %d error(s) in %s (ESP32 stubs)" % (len(errors), ", ".join(paths)))
        return 1
    print("typecheck-board: %s clean against the ESP32 stubs" % ", ".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
