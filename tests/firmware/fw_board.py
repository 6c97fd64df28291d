# Start the unix firmware (build/firmware/unix32/micropython, 100 KiB heap)
# serving one shipped board definition with a flash-like data directory, its
# log in a file (a pipe nobody reads would stall it), for the board tests.

import os
import subprocess
import time

from conftest import UNIX, FirmwareMeter, free_port, need

# every shipped board file (board/boards/NAME.json): a board added there is
# tested like the others without being listed here
_BOARD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "board", "boards")
BOARDS = tuple(sorted(n[:-5] for n in os.listdir(_BOARD_DIR) if n.endswith(".json") and not n.endswith(".meter.json")))


def has_object(board, obis):
    # True if the board's meter definition (the board file's "meter") has an
    # object with this logical name
    import json

    with open(os.path.join(_BOARD_DIR, board + ".json"), encoding="utf-8") as f:
        meter = json.load(f)["meter"]
    with open(os.path.join(_BOARD_DIR, meter), encoding="utf-8") as f:
        return any(o.get("obis") == obis for o in json.load(f)["objects"])


class BoardMeter(FirmwareMeter):
    def __init__(self, board, data, workdir):
        super().__init__()
        self.board = board
        self.data = data
        self.workdir = workdir
        self.logfile = None

    def log_text(self):
        with open(self.logfile) as f:
            return f.read()

    def stop(self):
        if self.alive():
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(5)


def start_board(board, data, workdir, keys="demo", meter=None, heap="100k", quiet=False, extra=()):
    # Boot (or boot again: same data directory) and wait for the ready line.
    need(UNIX)
    m = meter or BoardMeter(board, data, workdir)
    wport, hport = free_port(), free_port()
    m.logfile = os.path.join(workdir, "fw-%s-%d.log" % (board, time.monotonic_ns()))
    args = [UNIX, "-X", "heapsize=" + heap, "-m", "fw_main", "--board", board, "--port", str(wport),
            "--hdlc-port", str(hport), "--data", data, "--keys", keys]
    if quiet:
        args.append("--quiet")
    args += list(extra)
    out = open(m.logfile, "w")
    m.proc = subprocess.Popen(args, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for line in m.log_text().splitlines():
            if line.startswith("dlms_micro: ready"):
                m.ready = dict(f.split("=", 1) for f in line.split()[2:])
                m.wrapper_address = ("127.0.0.1", wport)
                m.hdlc_address = ("127.0.0.1", hport)
                return m
        if m.proc.poll() is not None:
            break
        time.sleep(0.05)
    m.stop()
    raise AssertionError("the unix firmware did not start board %s:\n%s" % (board, m.log_text()))
