"""Figures from the real firmware builds (`make bench-firmware`, and --short
in the firmware stage of `make test`).

    python tools/firmware/bench_fw.py [--short] [--json FILE]

Runs build/firmware/unix32/micropython (32-bit, -X heapsize=100k, real GC)
and build/firmware/qemu/firmware.elf (Cortex-M3 in qemu-system-arm with
-icount shift=0: 1 virtual us = 1,000 instructions), both from
`make firmware`, and prints:
  - heap in use after boot, per board definition and for the demo table;
  - bytes allocated per plain GET, ciphered GET, profile row (frozen code);
  - the longest GET over a 1,000-GET session with the GC on, and one full
    collection's pause;
  - instructions per plain GET, ciphered GET, profile row and CRC of a
    128-byte frame on the Cortex-M3;
  - the firmware image sizes.
Each run of the target prints `fw_bench NAME VALUE UNIT` lines (fw_bench.py,
frozen into the firmware); this collects and tabulates them.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FW = os.path.join(REPO, "build", "firmware")
UNIX = os.path.join(FW, "unix32", "micropython")
ELF = os.path.join(FW, "qemu", "firmware.elf")
HEAP = "100k"

sys.path.insert(0, HERE)
from qemu import Qemu  # noqa: E402

# The demo meter (ports/cpython/.../meters/demo.json) with board-sized
# profiles, compiled and frozen into the unix firmware by build.py.
DEMO_SNIPPET = """
import gc
gc.collect()
from dlms_micro.meterdef import build as mb
import fw_demo_meter as d
m = mb.build(d, lambda: 800000000, None)
gc.collect()
print("fw_bench demo_objects %d -" % len(m.table))
print("fw_bench demo_heap_used %d B" % gc.mem_alloc())
print("fw_bench demo_heap_free %d B" % gc.mem_free())
"""


def parse(text):
    found = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "fw_bench":
            v = parts[2]
            try:
                v = float(v) if "." in v else int(v)
            except ValueError:
                pass
            found[parts[1]] = v
    return found


def run_unix(code, heap=HEAP, timeout=120):
    # From an empty folder: the firmware's frozen modules, not a checkout's.
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([UNIX, "-X", "heapsize=" + heap, "-c", code], cwd=tmp,
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError("unix firmware failed:\n%s%s" % (proc.stdout, proc.stderr))
    return parse(proc.stdout)


def boards():
    # the board definitions frozen into the firmware
    got = run_unix("import dlms_board_def as d\nprint('fw_bench names %s -' % ','.join(d.NAMES))")
    return got["names"].split(",")


def collect(short=False):
    r = {"unix": {}, "qemu": {}, "boards": {}, "sizes": {}}
    for name in boards():
        try:
            r["boards"][name] = run_unix("import fw_bench; fw_bench.boot_heap(%r)" % name)
        except RuntimeError as e:
            # e.g. a board whose sources need UARTs the unix port lacks
            r["boards"][name] = {"error": str(e).strip().splitlines()[-1]}
    r["demo"] = run_unix(DEMO_SNIPPET)
    r["unix"] = run_unix("import fw_bench; fw_bench.main()")
    with Qemu(ELF, timeout=300) as q:
        what = "crc,get,gc,profile,cipher"
        r["qemu"] = parse(q.exec("import fw_bench; fw_bench.main(what=%r)" % what, 300))
    r["sizes"]["unix32"] = os.path.getsize(UNIX)
    r["sizes"]["qemu_elf"] = os.path.getsize(ELF)
    try:
        out = subprocess.run(["arm-none-eabi-size", ELF], capture_output=True, text=True).stdout
        text, data, bss = out.splitlines()[1].split()[:3]
        r["sizes"]["qemu_flash"] = int(text) + int(data)
        r["sizes"]["qemu_ram"] = int(data) + int(bss)
    except (OSError, IndexError, ValueError):
        pass
    return r


def report(r, out=sys.stdout):
    u, q = r["unix"], r["qemu"]

    def p(label, value):
        print("  %-58s %s" % (label, value), file=out)

    def ins(v):  # virtual us -> instructions (-icount shift=0)
        return "{:,}".format(int(round(v * 1000)))

    print("firmware figures (MicroPython v1.27.0, stack frozen; unix 32-bit -X heapsize=%s;"
          " Cortex-M3 MPS2-AN385 in QEMU, -icount shift=0)" % HEAP, file=out)
    for name, b in r["boards"].items():
        if "error" in b:
            p("heap after boot, board %s" % name, "not built here: %s" % b["error"])
            continue
        p("heap after boot, board %s" % name, "%d B used, %d B free" % (b["boot_heap_used"], b["boot_heap_free"]))
    d = r["demo"]
    p("heap after boot, demo meter (%d objects, board-sized profiles)" % d["demo_objects"],
      "%d B used, %d B free" % (d["demo_heap_used"], d["demo_heap_free"]))
    p("bytes allocated per plain GET (HDLC frame in, reply out)", "%s B" % u["get_bytes"])
    p("bytes allocated per ciphered GET (%s)" % u.get("ciphered_get_backend", "?"), "%s B" % u["ciphered_get_bytes"])
    p("bytes allocated per profile row (%d rows, %d blocks)" % (u["profile_rows"], u["profile_blocks"]),
      "%s B" % u["profile_row_bytes"])
    p("longest GET of 1,000 with the GC on: unix x86 (wall clock)", "%s us" % u["get_worst_of_1000_us"])
    p("longest GET of 1,000 with the GC on: Cortex-M3 instructions", ins(q["get_worst_of_1000_us"]))
    p("full gc.collect() with the board meter in the heap: unix x86", "%s us" % u["gc_collect_us"])
    p("full gc.collect() with the board meter in the heap: Cortex-M3 instructions", ins(q["gc_collect_us"]))
    p("unix x86: us per plain GET / ciphered GET (cryptolib)", "%s / %s" % (u["get_us"], u["ciphered_get_us"]))

    p("Cortex-M3 instructions per plain GET", ins(q["get_us"]))
    p("  the same with the heap locked (all call frames on the C stack)", ins(q["get_locked_us"]))
    p("Cortex-M3 instructions per ciphered GET (%s)" % q.get("ciphered_get_backend", "?"),
      ins(q["ciphered_get_us"]))
    p("Cortex-M3 instructions per profile row", ins(q["profile_row_us"]))
    p("Cortex-M3 instructions per CRC-16 of a 128-byte frame (%s)" % q.get("crc_code", "?"), ins(q["crc128_us"]))
    s = r["sizes"]
    p("image: unix32 micropython", "{:,} B".format(s["unix32"]))
    if "qemu_flash" in s:
        p("image: qemu firmware.elf (flash: text+data / RAM: data+bss)",
          "{:,} B / {:,} B".format(s["qemu_flash"], s["qemu_ram"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--short", action="store_true", help="(same figures; for the test stage)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    for path, what in ((UNIX, "unix firmware"), (ELF, "qemu firmware")):
        if not os.path.isfile(path):
            print("bench_fw: no %s at %s: run make firmware" % (what, os.path.relpath(path, REPO)), file=sys.stderr)
            return 1
    r = collect(args.short)
    report(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
