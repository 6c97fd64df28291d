"""Heap after boot and free heap under load of each shipped board definition,
on the real unix firmware (`make firmware`: 32-bit, -X heapsize=100k, the
stack frozen, real GC).

    .venv/bin/python tools/firmware/board_heap.py [BOARD ...] [--seconds S]

Per board: fw_main boots it with a flash-like data directory and the demo
keys (the relay boards with the recording Pin stand-in, --pins) and prints
its heap after boot; then two head-ends (gurux-dlms) read every attribute
of every object of the management association's object list (HLS-GMAC,
suite 0), one over the TCP wrapper and one over HDLC over TCP, at the same
time, again and again for S seconds; the firmware prints the heap in use
and free after a collection twice a second (--heap-log), and the smallest
free figure seen while both sessions are open is "free under load". Then
the per-application heap of the board's meter
(tools/firmware/retrofit_heap.py --apps, in the firmware).
"""

import argparse
import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
UNIX = os.path.join(REPO, "build", "firmware", "unix32", "micropython")
HEAP = "100k"


def _peers():
    # the test suite's gurux-dlms session helper, loaded by path
    path = os.path.join(REPO, "tests", "interop", "interop_peers.py")
    spec = importlib.util.spec_from_file_location("interop_peers", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["interop_peers"] = mod
    spec.loader.exec_module(mod)
    return mod


def _free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Fw:
    # what interop_peers needs of a running meter
    def __init__(self):
        self.wrapper_address = None
        self.hdlc_address = None
        self.pty_path = None


def _boards():
    out = subprocess.run([UNIX, "-c", "import dlms_board_def as d\nprint(','.join(d.NAMES))"],
                         capture_output=True, text=True, cwd=tempfile.gettempdir(), timeout=60)
    return out.stdout.strip().split(",")


def _read_all(peers, fw, transport, until, errors):
    # one head-end: sessions reading every attribute, until the deadline
    try:
        while time.monotonic() < until:
            # a client system title per head-end: each has its own invocation counters
            p = peers.GuruxPeer(fw, transport, sap=1, title=b"GXLOAD-" + transport[:1].encode())
            try:
                p.connect()
                objs = p.read_object_list()
                for o in objs:
                    for a in range(2, o.getAttributeCount() + 1):
                        if o.objectType == 15 and a == 2:
                            continue  # the object list again
                        try:
                            p.read(o, a)
                        except Exception as e:  # noqa: BLE001 (an access denied is an answer, not a fault)
                            kind = type(e).__name__
                            if kind not in ("GuruxError", "ValueError", "GXDLMSExceptionResponse"):
                                raise
                            if kind == "GXDLMSExceptionResponse":
                                errors.append("%s: %s attribute %d: %s" % (transport, o.logicalName, a, e))
                p.release()
                p.disconnect()
            finally:
                p.close()
    except Exception as e:  # noqa: BLE001
        errors.append("%s: %r" % (transport, e))


def measure(board, seconds, peers, extra=()):
    with tempfile.TemporaryDirectory() as tmp:
        wport, hport = _free_port(), _free_port()
        log = os.path.join(tmp, "fw.log")
        args = [UNIX, "-X", "heapsize=" + HEAP, "-m", "fw_main", "--board", board, "--port", str(wport),
                "--hdlc-port", str(hport), "--data", os.path.join(tmp, "data"), "--keys", "demo", "--heap-log",
                "--pins", os.path.join(tmp, "pins")] + list(extra)
        with open(log, "w") as out:
            proc = subprocess.Popen(args, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
        try:
            ready = None
            deadline = time.monotonic() + 20
            while ready is None and time.monotonic() < deadline and proc.poll() is None:
                with open(log) as f:
                    for line in f:
                        if line.startswith("dlms_micro: ready"):
                            ready = dict(x.split("=", 1) for x in line.split()[2:])
                time.sleep(0.05)
            if ready is None:
                with open(log) as f:
                    return {"error": f.read()[-500:]}
            fw = _Fw()
            fw.wrapper_address = ("127.0.0.1", wport)
            fw.hdlc_address = ("127.0.0.1", hport)
            with open(log) as f:
                before = len(f.read().splitlines())
            errors = []
            until = time.monotonic() + seconds
            threads = [threading.Thread(target=_read_all, args=(peers, fw, t, until, errors))
                       for t in (peers.WRAPPER, peers.HDLC_TCP)]
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # gurux prints as it ciphers
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
            with open(log) as f:
                lines = f.read().splitlines()[before:]
            frees = [int(m.group(1)) for m in (re.match(r"dlms_micro: heap used=\d+ free=(\d+)", x) for x in lines)
                     if m]
            if errors:  # what the meter logged meanwhile
                errors.append("the firmware's log: " + " | ".join(x for x in lines if "heap used=" not in x)[-600:])
            return {"boot_used": int(ready["heap_used"]), "boot_free": int(ready["heap_free"]),
                    "load_free_min": min(frees) if frees else None, "samples": len(frees), "errors": errors}
        finally:
            proc.kill()
            proc.wait(5)


def apps(board):
    # the per-application heap (retrofit_heap.py --apps, in the firmware)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([UNIX, "-X", "heapsize=" + HEAP, os.path.join(HERE, "retrofit_heap.py"), "--apps", board],
                             capture_output=True, text=True, cwd=tmp, timeout=120)
    return (out.stdout + out.stderr).strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("boards", nargs="*")
    ap.add_argument("--seconds", type=float, default=4.0, help="load time per board (default 4)")
    a = ap.parse_args(argv)
    if not os.path.isfile(UNIX):
        print("board_heap: no unix firmware at %s: run make firmware" % os.path.relpath(UNIX, REPO), file=sys.stderr)
        return 1
    peers = _peers()
    print("board heap on the unix firmware (-X heapsize=%s; load: two ciphered sessions reading every attribute)"
          % HEAP)
    for b in a.boards or _boards():
        r = measure(b, a.seconds, peers)
        if "error" in r:
            print("  %-30s did not start: %s" % (b, r["error"]))
            continue
        print("  %-30s after boot %6d B used %6d B free; under load %s B free (min of %d samples)%s"
              % (b, r["boot_used"], r["boot_free"], r["load_free_min"], r["samples"],
                 "; errors: %s" % "; ".join(r["errors"]) if r["errors"] else ""))
        text = apps(b)
        if text:
            print("    " + text.replace("\n", "\n    "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
