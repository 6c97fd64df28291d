# `dlms-micro meter ...`: compile, check, show and import meter definitions.
#
#   dlms-micro meter check FILE [--board NAME|FILE]   errors, RAM the objects need
#   dlms-micro meter show FILE                          OBIS, class, description, access
#   dlms-micro meter compile FILE -o MODULE.py          constants for a board to freeze
#   dlms-micro meter import FILE.xml -o FILE.json       a Gurux object collection
# Exit codes: 0 fine, 2 a fault in the input (each named on stderr).

import json
import os
import sys

from dlms_micro_cpython.meterdef import compiler as comp

# Heap a board's meter objects may take (state, profile rings, buffers), by
# board: what a frozen firmware leaves free on a 100 KiB ESP32 heap after the
# stack (~31 KB core + HDLC + security + classes, measured in the real 32-bit
# build), the link and PDU buffers and a working reserve for the GC.
DEFAULT_BOARD_BUDGET = 40 * 1024
BOARDS_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "board", "boards")


def add_parser(sub):
    m = sub.add_parser("meter", help="compile, check, show or import a meter definition",
                       description="Work with meter definitions (JSON, see docs/meter-definition.md).")
    ms = m.add_subparsers(dest="meter_command", required=True)
    c = ms.add_parser("check", help="check a definition; print what its objects need")
    c.add_argument("file", help="a meter definition (.json) or a Gurux object collection (.xml)")
    c.add_argument("--board", metavar="NAME", help="also check it fits this board's heap (a name in board/boards/ "
                                                   "or a board .json file)")
    s = ms.add_parser("show", help="list the objects: OBIS, class, description, access per association")
    s.add_argument("file")
    k = ms.add_parser("compile", help="write the module of constants a board freezes")
    k.add_argument("file")
    k.add_argument("-o", "--output", required=True, metavar="MODULE.py")
    i = ms.add_parser("import", help="turn a Gurux object collection (XML) into a definition")
    i.add_argument("file", help="an XML file saved by gurux-dlms, GXDLMSDirector or the Gurux simulator")
    i.add_argument("-o", "--output", required=True, metavar="FILE.json")
    i.add_argument("--name", help="logical device name (default: from 0.0.42.0.0.255 in the file)")
    i.add_argument("--serial-number", help="serial number (default: from 0.0.96.1.0.255 in the file)")


def run(args):
    cmd = args.meter_command
    try:
        if cmd == "import":
            return _import(args)
        report = []
        c = comp.load(args.file, report)
        for line in report:
            print("note: %s" % line, file=sys.stderr)
        if cmd == "check":
            return _check(c, args)
        if cmd == "show":
            print(show_text(c))
            return 0
        if cmd == "compile":
            from dlms_micro_cpython.meterdef.emit import module_text

            text = module_text(c, os.path.basename(args.file))
            tmp = args.output + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, args.output)
            print("%s: %d objects, %d handlers -> %s" % (args.file, sum(len(d[2]) for d in c.DEVICES),
                                                          len(c.HANDLERS), args.output))
            return 0
    except comp.DefinitionError as e:
        print(str(e), file=sys.stderr)
        print("dlms-micro meter %s: %d error%s, nothing written" % (cmd, len(e.errors), "" if len(e.errors) == 1
                                                                   else "s"), file=sys.stderr)
        return 2
    except OSError as e:
        print("dlms-micro meter %s: %s" % (cmd, e), file=sys.stderr)
        return 2
    return 2


def _import(args):
    from dlms_micro_cpython.meterdef import gurux_xml

    try:
        d, report = gurux_xml.import_gurux(args.file, name=args.name, serial_number=args.serial_number)
    except gurux_xml.GuruxImportError as e:
        print("%s: %s" % (args.file, e), file=sys.stderr)
        return 2
    except OSError as e:
        print("%s: cannot read it: %s" % (args.file, e.strerror or e), file=sys.stderr)
        return 2
    for line in report:
        print("not imported: %s" % line, file=sys.stderr)
    try:
        comp.compile_definition(d, args.file)
    except comp.DefinitionError as e:
        print(str(e), file=sys.stderr)
        print("dlms-micro meter import: the imported definition does not compile; nothing written", file=sys.stderr)
        return 2
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(d, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("%s: %d objects -> %s" % (args.file, len(d.get("objects", [])), args.output))
    return 0


def estimate_ram(c, device=0):
    # Bytes of heap the objects' state takes on a 32-bit MicroPython, an
    # estimate from what build allocates: the state list (4 B a slot),
    # profile rings (rows x record width), a page buffer per stored profile,
    # and ~48 B per state object.
    _ld, _name, table, inits, _drives = c.DEVICES[device]
    slots = 0
    objects = 0
    for i, _args in inits:
        objects += 1
    for e in table:
        if e[4] >= 0:
            slots += 1
    return 4 * slots + 48 * objects + c.ram[device] + 300 * len([e for e in table if e[0] == 7])


def _board_budget(name):
    path = name
    if not os.path.exists(path):
        path = os.path.join(BOARDS_DIR, name + ("" if name.endswith(".json") else ".json"))
    try:
        with open(path, encoding="utf-8") as f:
            b = json.load(f)
    except (OSError, ValueError) as e:
        raise comp.DefinitionError(["--board %s: cannot read the board file %s: %s" % (name, path, e)])
    return b.get("meter_heap_budget", DEFAULT_BOARD_BUDGET), b.get("name", name)


def _check(c, args):
    total = 0
    for d in range(len(c.DEVICES)):
        ld, name, table, _i, _dr = c.DEVICES[d]
        ram = estimate_ram(c, d)
        total += ram
        print("logical device %d %s: %d objects, state ~%d bytes of heap" % (ld, name.decode(errors="replace"),
                                                                               len(table), ram))
    if args.board:
        budget, bname = _board_budget(args.board)
        if total > budget:
            print("%s: the objects need ~%d bytes of heap, more than the %d the board %s leaves them "
                  "(shorten profile_entries or drop objects)" % (args.file, total, budget, bname), file=sys.stderr)
            return 2
        print("fits %s: ~%d of %d bytes" % (bname, total, budget))
    print("%s: ok" % args.file)
    return 0


def show_text(c):
    from dlms_micro_cpython.meterdef import values as V

    names = [r[0] for r in c.ROLES]
    out = []
    for d in range(len(c.DEVICES)):
        ld, name, table, _i, _dr = c.DEVICES[d]
        out.append("logical device %d: %s" % (ld, name.decode(errors="replace")))
        head = ["OBIS", "class", "description"] + names
        rows = []
        for e, (desc, cname) in zip(table, c.objects[d]):
            cells = [V.obis_text(e[2]), "%s (%d)" % (cname, e[0]), desc]
            for acc in e[5]:
                if acc is None:
                    cells.append("-")
                    continue
                am, mm = acc
                r = "R" if any(m & 1 for m in am[1:]) else ""
                w = "W" if any(m & 2 for m in am) else ""
                a = "A" if any(mm) else ""
                cells.append((r + w + a) or "ln")
            rows.append(cells)
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
        out.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
        for r in rows:
            out.append("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))
        out.append("")
    out.append("access: R read, W write, A methods, ln logical name only, - not visible")
    return "\n".join(out)
