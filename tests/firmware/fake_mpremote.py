#!/usr/bin/env python3
# A stand-in for mpremote in the provisioning tests: the "board" is the
# folder FAKE_BOARD_ROOT. `connect PORT exec CODE` runs CODE with its quoted
# absolute paths moved under that folder (CPython); `connect PORT fs cp SRC
# :DST` copies a file there. Every call is appended to FAKE_BOARD_ROOT/calls.

import os
import shutil
import subprocess
import sys

root = os.environ["FAKE_BOARD_ROOT"]
args = sys.argv[1:]
with open(os.path.join(root, "calls"), "a") as f:
    f.write(repr(args) + "\n")
if args[:1] != ["connect"] or len(args) < 3:
    sys.exit("fake mpremote: usage: connect PORT ...")
cmd = args[2:]
if cmd[0] == "exec":
    code = cmd[1].replace('"/', '"' + root + "/")
    sys.exit(subprocess.run([sys.executable, "-c", code]).returncode)
if cmd[:2] == ["fs", "cp"] and cmd[3].startswith(":"):
    shutil.copyfile(cmd[2], root + cmd[3][1:])
    sys.exit(0)
sys.exit("fake mpremote: not emulated: %r" % cmd)
