"""Compile boards' meter definitions into the modules a firmware freezes.

    python tools/compile_meters.py BOARD.json [BOARD.json ...] -o DIR
    python tools/compile_meters.py --definition METER.json -o MODULE.py

A board file (board/boards/NAME.json) names its meter definition
("meter": "NAME.meter.json", beside the board file) and the module that
dlms_micro_mp.board imports to build the meter ("meter_module":
"NAME_meter"). For each board this writes DIR/<meter_module>.py: the
definition compiled to constants (the same text `dlms-micro meter compile`
writes), which the freeze step puts into the firmware or deploy copies to
the board's /lib. A file whose text would not change is not rewritten (the
firmware build does not rebuild for nothing).

From Python (tools/ is not a package; load this file by path or put tools/
on sys.path):

    compile_board_meter("board/boards/esp32c3_battery.json", "build/fw")
        -> "build/fw/esp32c3_battery_meter.py"
    compile_meter("meters/demo.json", "build/demo_meter.py")
    compile_all_boards("board/boards", "build/fw")   # every board's module

A definition with faults raises DefinitionError (one line per fault, each
naming its place); the command line prints them and exits with status 2.
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

try:
    from dlms_micro_cpython.meterdef import DefinitionError, load
    from dlms_micro_cpython.meterdef.emit import module_text
except ImportError:  # run from a checkout without the package installed
    sys.path[0:0] = [REPO, os.path.join(REPO, "ports", "cpython")]
    from dlms_micro_cpython.meterdef import DefinitionError, load
    from dlms_micro_cpython.meterdef.emit import module_text


class BoardError(ValueError):
    """A board file that names no usable meter definition."""


def source_name(path):
    # How the generated module's header names its definition: relative to
    # the repository when inside it, so the text is the same on every machine.
    full = os.path.abspath(path)
    rel = os.path.relpath(full, REPO)
    if rel.startswith(".."):
        return os.path.basename(full)
    return rel.replace(os.sep, "/")


def meter_text(definition_path):
    """The module text of a compiled meter definition (DefinitionError on faults)."""
    return module_text(load(definition_path), source_name(definition_path))


def _write_if_changed(path, text):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except OSError:
        pass
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def compile_meter(definition_path, module_path):
    """Compile one definition into module_path; returns module_path."""
    _write_if_changed(module_path, meter_text(definition_path))
    return module_path


def board_meter(board_json_path):
    """(definition path, module name) a board file names."""
    try:
        with open(board_json_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as e:
        raise BoardError("%s: cannot read the board file: %s" % (board_json_path, e)) from None
    meter = cfg.get("meter")
    module = cfg.get("meter_module")
    if not isinstance(meter, str) or not meter:
        raise BoardError("%s: \"meter\": the board's meter definition file (NAME.meter.json) is required"
                         % board_json_path)
    if not isinstance(module, str) or not module.isidentifier():
        raise BoardError("%s: \"meter_module\": the compiled definition's module name (a Python identifier) "
                         "is required, not %r" % (board_json_path, module))
    return os.path.join(os.path.dirname(os.path.abspath(board_json_path)), meter), module


def compile_board_meter(board_json_path, out_dir):
    """Compile the meter definition a board file names into
    out_dir/<meter_module>.py; returns that path."""
    definition, module = board_meter(board_json_path)
    os.makedirs(out_dir, exist_ok=True)
    return compile_meter(definition, os.path.join(out_dir, module + ".py"))


def board_files(boards_dir):
    """The board files of a folder (NAME.json; not the NAME.meter.json
    definitions beside them), sorted."""
    return sorted(os.path.join(boards_dir, f) for f in os.listdir(boards_dir)
                  if f.endswith(".json") and not f.endswith(".meter.json"))


def compile_all_boards(boards_dir, out_dir):
    """compile_board_meter for every board file of boards_dir; the paths
    written, in board order."""
    return [compile_board_meter(b, out_dir) for b in board_files(boards_dir)]


def main(argv=None):
    ap = argparse.ArgumentParser(description="Compile boards' meter definitions into modules to freeze.")
    ap.add_argument("boards", nargs="*", metavar="BOARD.json", help="board files (board/boards/NAME.json)")
    ap.add_argument("-o", "--out", required=True,
                    help="output folder for boards; the module file with --definition")
    ap.add_argument("--definition", metavar="METER.json", help="compile this definition instead of boards' ones")
    a = ap.parse_args(argv)
    if bool(a.boards) == bool(a.definition):
        ap.error("give board files or --definition, not both or neither")
    try:
        if a.definition:
            print(compile_meter(a.definition, a.out))
        else:
            for b in a.boards:
                print(compile_board_meter(b, a.out))
    except (DefinitionError, BoardError) as e:
        print(str(e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
