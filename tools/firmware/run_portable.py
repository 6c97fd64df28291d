"""Run the portable suite (tests/portable) on the unix firmware.

    python tools/firmware/run_portable.py [-k TEXT] [--heap 1m] [-v]

Each test module runs in its own build/firmware/unix32/micropython process
(32-bit, real GC), against the *frozen* dlms_micro and port code of the
firmware: the test modules themselves are compiled from source on the
target, so the heap is larger than a board's (--heap, default 1 MiB; the
wasm runner instead adds each module's code to a 100 KiB data heap). Every
top-level `def test_*` runs in source order with a collection between
tests. Last line: `firmware portable: N passed, N failed`; exit 1 if any
failed or none ran.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
UNIX = os.path.join(REPO, "build", "firmware", "unix32", "micropython")
TESTS = os.path.join(REPO, "tests", "portable")

# Tests that fail on the firmware for a reason still open (run, reported,
# not counted as failures): "module::test" -> why.
KNOWN = {
    "test_mp_port::test_mp_port_mode_e_heap_per_request":
        "32 B per mode E loop step on the unix firmware against the test's bound of 16 B"
        " (set on the wasm build): measured here, the port's transmit allocates nothing"
        " (loop.TxViews) and the UART test double's write() 32 B of its own bookkeeping",
    "test_mp_port::test_mp_port_board_definitions_build":
        "board.build() without wall_clock uses board._wall_clock, time.time() + EPOCH_2000:"
        " right on an ESP32 (int seconds since 2000), but the unix port's time.time() is a"
        " float since 1970, and the clock's arithmetic refuses a float (fw_main passes its"
        " own clock)",
}

# Runs on the target: import the module, run the named tests, one line each.
# The test folder comes first (its compiled meter fixtures, not the
# firmware's modules of the same name); it holds no dlms_micro, so the core
# and the port are the firmware's frozen ones.
DRIVER = """
import sys, gc
sys.path[:] = [%(tests)r, '.frozen']
import %(mod)s as M
for name in %(names)r:
    gc.collect()
    try:
        getattr(M, name)()
        print('@@PASS', name)
    except Exception as e:
        print('@@FAIL', name)
        sys.print_exception(e)
        print('@@END')
"""


def test_names(path):
    names = []
    with open(path) as f:
        for line in f:
            m = re.match(r"def\s+(test_\w*)\s*\(", line)
            if m:
                names.append(m.group(1))
    return names


def run_module(path, names, heap, timeout=300):
    mod = os.path.basename(path)[:-3]
    code = DRIVER % {"tests": TESTS, "mod": mod, "names": names}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run([UNIX, "-X", "heapsize=" + heap, "-c", code], cwd=tmp,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return [], [(mod, "timed out after %d s" % timeout)]
    passed, failed = [], []
    lines = proc.stdout.splitlines()
    i = 0
    while i < len(lines):
        ln = lines[i]
        if ln.startswith("@@PASS "):
            passed.append(ln[7:])
        elif ln.startswith("@@FAIL "):
            j = i + 1
            while j < len(lines) and lines[j] != "@@END":
                j += 1
            failed.append((ln[7:], "\n".join(lines[i + 1:j])))
            i = j
        i += 1
    done = len(passed) + len(failed)
    if done < len(names):
        failed.append(("%s (%d tests not run)" % (mod, len(names) - done),
                       (proc.stdout[-1500:] + proc.stderr[-1500:]).strip()))
    return passed, failed


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", dest="filter", action="append", default=[])
    ap.add_argument("--heap", default="1m")
    ap.add_argument("-v", dest="verbose", action="store_true")
    args = ap.parse_args(argv)
    if not os.path.isfile(UNIX):
        print("run_portable: no unix firmware: run make firmware", file=sys.stderr)
        return 1
    total_pass = 0
    total_fail = []
    known = []
    for f in sorted(os.listdir(TESTS)):
        if not (f.startswith("test_") and f.endswith(".py")):
            continue
        path = os.path.join(TESTS, f)
        names = [n for n in test_names(path)
                 if not args.filter or any(k in "%s::%s" % (f[:-3], n) for k in args.filter)]
        if not names:
            continue
        passed, failed = run_module(path, names, args.heap)
        total_pass += len(passed)
        for name, text in failed:
            key = "%s::%s" % (f[:-3], name)
            if key in KNOWN:
                known.append(key)
                print("known failure %s: %s" % (key, KNOWN[key]))
                continue
            total_fail.append(key)
            print("FAILED %s\n%s" % (key, text))
        if args.verbose:
            print("%-40s %3d passed %3d failed" % (f, len(passed), len(failed)))
    print("firmware portable: %d passed, %d failed, %d known failures" % (total_pass, len(total_fail), len(known)))
    return 1 if total_fail or not total_pass else 0


if __name__ == "__main__":
    sys.exit(main())
