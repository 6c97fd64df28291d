"""Copy a frozen build to a MicroPython board with mpremote, name the board, reset.

    python tools/freeze.py core hdlc security register --extra ports/micropython/dlms_micro_mp
    python tools/deploy.py /dev/ttyUSB0 --board NAME            # copy, configure, reset
    python tools/deploy.py /dev/ttyUSB0 --board NAME --dry-run  # print the commands only

PORT is what `mpremote connect` takes: a serial device (/dev/ttyUSB0, COM3),
"auto" (the first USB serial port), or a shortcut such as u0/a0/c3.

What it does, one mpremote command each (so a failure says which step):
  1. fs cp -r SRC/lib :          the .mpy files (lands in /lib, on sys.path)
  2. fs cp SRC/FILE :FILE        each file at the top of SRC (boot.py, main.py)
  3. fs cp -r BOARD_DIR :        the board definitions (board/boards/*.json) when
                                 NAME has one there; lands in /boards
  4. exec "..."                  writes /dlms_board.json = {"board": "NAME"},
                                 the selected board for the boot code to read
  5. reset                       hard reset: boot.py/main.py start the meter

SRC is the output of tools/freeze.py (default build/mpy). mpremote comes from
the dev extras (pinned in pyproject.toml). --dry-run needs no board and no
mpremote; without it, a missing board is reported before anything is copied.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "dlms_board.json"
MARKER = ".dlms-freeze"  # written by tools/freeze.py
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,48}$")


class DeployError(Exception):
    pass


def shown(path):
    """A path as short as it can be said from here (relative below the cwd)."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def plan(port, board, src, board_dir):
    """The mpremote argument lists, in order (without the executable)."""
    if not NAME_RE.match(board):
        raise DeployError("board name must be letters, digits, '_', '-', '.': %r" % board)
    if not os.path.isdir(src) or not os.path.exists(os.path.join(src, MARKER)):
        raise DeployError("%s is not a tools/freeze.py output; run "
                          "python tools/freeze.py first" % src)
    if not os.path.isdir(os.path.join(src, "lib")):
        raise DeployError("%s has no lib/ folder" % src)
    conn = ["connect", port]
    src = shown(src)
    board_dir = shown(board_dir)
    steps = [conn + ["fs", "cp", "-r", os.path.join(src, "lib"), ":"]]
    for entry in sorted(os.listdir(src)):
        path = os.path.join(src, entry)
        if entry != "lib" and entry != MARKER and os.path.isfile(path):
            steps.append(conn + ["fs", "cp", path, ":" + entry])
    definitions = sorted(f[:-5] for f in os.listdir(board_dir)
                         if f.endswith(".json")) if os.path.isdir(board_dir) else []
    if definitions:
        if board not in definitions:
            raise DeployError("no board definition %s.json in %s (there: %s)"
                              % (board, board_dir, ", ".join(definitions)))
        steps.append(conn + ["fs", "cp", "-r", board_dir.rstrip("/" + os.sep), ":"])
    # double quotes only, so the printed command needs no escaped quotes
    steps.append(conn + ["exec", 'import json; f = open("%s", "w"); '
                         'json.dump(dict(board="%s"), f); f.close()' % (CONFIG, board)])
    steps.append(conn + ["reset"])
    return steps


def find_mpremote():
    here = os.path.join(os.path.dirname(sys.executable), "mpremote")
    if os.access(here, os.X_OK):
        return here
    found = shutil.which("mpremote")
    if found:
        return found
    raise DeployError("mpremote not found: pip install -e '.[dev]' "
                      "(or pip install mpremote)")


def check_board(tool, port):
    """Fail clearly, before copying anything, when no board can be there."""
    if port == "auto" and tool:
        out = subprocess.run([tool, "connect", "list"], capture_output=True,
                             text=True, timeout=30).stdout
        if not out.strip():
            raise DeployError("no board connected: mpremote finds no serial port "
                              "(plug the board in, or name the PORT)")
        return
    if port.startswith("/dev/") and not os.path.exists(port):
        raise DeployError("no board connected at %s (no such serial device; "
                          "`mpremote connect list` shows the ports)" % port)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", metavar="PORT", help="serial device, auto, or u0/a0/c3...")
    ap.add_argument("--board", required=True,
                    help="board name (board/boards/NAME.json when there)")
    ap.add_argument("--src", default=os.path.join(REPO, "build", "mpy"),
                    help="tools/freeze.py output (default build/mpy)")
    ap.add_argument("--board-dir", default=os.path.join(REPO, "board", "boards"),
                    help="folder of board definitions (default board/boards)")
    ap.add_argument("--dry-run", action="store_true",
                    help="print the mpremote commands and exit")
    args = ap.parse_args(argv)
    try:
        steps = plan(args.port, args.board, args.src, args.board_dir)
        if args.dry_run:
            for step in steps:
                print(shlex.join(["mpremote"] + step))
            return 0
        check_board(None, args.port)  # a missing device, before needing mpremote
        tool = find_mpremote()
        check_board(tool, args.port)
        for step in steps:
            print("+ " + shlex.join(["mpremote"] + step), flush=True)
            proc = subprocess.run([tool] + step, capture_output=True, text=True)
            sys.stdout.write(proc.stdout)
            if proc.returncode != 0:
                err = (proc.stderr or proc.stdout).strip()
                if "failed to access" in err or "no device found" in err:
                    raise DeployError("no board connected at %s: %s" % (args.port, err))
                raise DeployError("mpremote failed (exit %d): %s" % (proc.returncode, err))
    except DeployError as e:
        print("deploy: %s" % e, file=sys.stderr)
        return 1
    print("deploy: done; board %s reset" % args.board)
    return 0


if __name__ == "__main__":
    sys.exit(main())
