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
  - the firmware image sizes;
  - the battery board's awake time per GET and per day on an ESP32-C3 at
    160 MHz, derived from those instruction counts and a measured HLS-GMAC
    association (assumptions printed with it), and its sleep budget.
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
    r["unix"] = run_unix("import fw_bench; fw_bench.main(what='crc,get,wget,gc,profile,cipher,reserve')")
    with Qemu(ELF, timeout=300) as q:
        what = "crc,get,wget,gc,profile,cipher"
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
    if "ciphered_reserve_bytes" in u:
        # the received-counter reservation stored once per rx_reserve GETs
        # (the key store's record; a board's file storage allocates more)
        p("  and per %s ciphered GETs (one stored counter reservation)" % u["ciphered_reserve_window"],
          "%s B" % u["ciphered_reserve_bytes"])
    p("bytes allocated per profile row (%d rows, %d blocks)" % (u["profile_rows"], u["profile_blocks"]),
      "%s B" % u["profile_row_bytes"])
    p("longest GET of 1,000 with the GC on: unix x86 (wall clock)", "%s us" % u["get_worst_of_1000_us"])
    p("longest GET of 1,000 with the GC on: Cortex-M3 instructions", ins(q["get_worst_of_1000_us"]))
    p("full gc.collect() with the board meter in the heap: unix x86", "%s us" % u["gc_collect_us"])
    p("full gc.collect() with the board meter in the heap: Cortex-M3 instructions", ins(q["gc_collect_us"]))
    p("unix x86: us per plain GET / ciphered GET (cryptolib)", "%s / %s" % (u["get_us"], u["ciphered_get_us"]))

    p("Cortex-M3 instructions per plain GET", ins(q["get_us"]))
    p("  the same with the heap locked (all call frames on the C stack)", ins(q["get_locked_us"]))
    if "wget_us" in q:
        p("Cortex-M3 instructions per plain GET over the TCP wrapper: feed+next_event / exchange",
          "%s / %s" % (ins(q["wget_us"]), ins(q["wget_exchange_us"])))
        p("  the same with the heap locked (the figure the heap's layout does not move)",
          "%s / %s" % (ins(q["wget_locked_us"]), ins(q["wget_exchange_locked_us"])))
        p("bytes allocated per wrapper GET: feed+next_event / exchange (unix)",
          "%s B / %s B" % (u["wget_bytes"], u["wget_exchange_bytes"]))
    p("Cortex-M3 instructions per ciphered GET (%s)" % q.get("ciphered_get_backend", "?"),
      ins(q["ciphered_get_us"]))
    p("Cortex-M3 instructions per profile row", ins(q["profile_row_us"]))
    p("Cortex-M3 instructions per CRC-16 of a 128-byte frame (%s)" % q.get("crc_code", "?"), ins(q["crc128_us"]))
    s = r["sizes"]
    p("image: unix32 micropython", "{:,} B".format(s["unix32"]))
    if "qemu_flash" in s:
        p("image: qemu firmware.elf (flash: text+data / RAM: data+bss)",
          "{:,} B / {:,} B".format(s["qemu_flash"], s["qemu_ram"]))


# --- The battery board's awake time (dlms_micro_mp/power.py) -------------
# A whole HLS-GMAC + suite 0 association on the battery board's meter with
# the demo keys (SNRM, AARQ with glo-initiate, reply_to_HLS with f(StoC),
# DISC), run on the target: the longest thing a battery board's loop does,
# which its watchdog must outlast.
HLS_SNIPPET = r"""
import fw_bench as fb
import fw_main
from dlms_micro.security import gcm as gcm_mod
from dlms_micro.server import Channel

app, cfg = fw_main.make_meter("esp32c3_battery", wall_clock=lambda: 1767225600)
meter = app.meter
if meter.random_bytes is None:
    # the QEMU board has no os.urandom (no HLS served there): a fixed
    # challenge for the benchmark, the same work as a random one
    meter.random_bytes = lambda n: bytes(range(0x40, 0x40 + n))
AK = fw_main.DEMO_AK
CT = b"MMM\x00\x00\x00\x00\x01"
MGMT = 0x03  # client SAP 1
g = gcm_mod.new()
g.set_key(fw_main.DEMO_EK)
AAD = bytearray(b"\x30") + AK
IC = [0]
ch = Channel(meter, fw_main.hdlc_link(cfg))


def protect(plain, ic):
    iv = CT + ic.to_bytes(4, "big")
    b = bytearray(plain)
    t = bytearray(12)
    g.encrypt(iv, 0, AAD, 0, 17, b, 0, len(b), t, 0)
    body = b"\x30" + iv[8:] + bytes(b) + bytes(t)
    return bytes([0x21 if plain[0] == 1 else plain[0] + 8, len(body)]) + body


def f_stoc(stoc, ic):
    iv = CT + ic.to_bytes(4, "big")
    aad = bytearray(b"\x10") + AK + stoc
    t = bytearray(12)
    g.encrypt(iv, 0, aad, 0, len(aad), bytearray(0), 0, 0, t, 0)
    return b"\x10" + ic.to_bytes(4, "big") + bytes(t)


def iframe(ns, nr, apdu):
    return fb.frame((nr << 5) | 0x10 | (ns << 1), apdu, client=MGMT)


def hls_association():
    IC[0] += 2
    ic = IC[0]
    ui = protect(bytes.fromhex("01000000065F1F0400007E1F04B0"), ic)
    body = (bytes.fromhex("A109060760857405080103") + b"\xa6\x0a\x04\x08" + CT
            + bytes.fromhex("8A0207808B0760857405080205") + b"\xac\x0a\x80\x08" + b"12345678"
            + bytes([0xBE, len(ui) + 2, 0x04, len(ui)]) + ui)
    fb.pump(ch, fb.frame(0x93, b"", client=MGMT))
    fb.pump(ch, iframe(0, 0, bytes([0x60, len(body)]) + body))
    aare = bytes(ch.tx_buf[ch.tx_start:ch.tx_end])
    i = aare.find(b"\xaa")
    stoc = aare[i + 4:i + 4 + aare[i + 3]]
    if ch.assoc.status != 1:
        raise RuntimeError("HLS association not pending: %r" % aare)
    act = bytes.fromhex("C301C1000F0000280000FF01010911") + f_stoc(stoc, ic + 1)
    fb.pump(ch, iframe(1, 1, protect(act, ic + 1)))
    if ch.assoc.status != 2:
        raise RuntimeError("HLS association not open")
    fb.pump(ch, fb.frame(0x53, b"", client=MGMT))


used, us = fb.measure(hls_association, 3)
fb.out("hls_association_us", "%.1f" % us, "us/op")
fb.out("hls_association_bytes", "%.1f" % used, "B/op")
"""

# Assumptions of the ESP32-C3 figures (stated with them): its RV32IMC core at
# 160 MHz runs the MicroPython VM in about the Cortex-M3's instruction count
# at 1 instruction per cycle (cache misses on flash add: a lower bound);
# light-sleep wake-up latency <= 1 ms (Espressif's ESP32-C3 book); 25 mA
# awake with the radio off (third-party measurements: 20-27 mA at 160 MHz);
# 130 uA in light sleep (datasheet typical; a dev module measures ~350 uA).
C3_MHZ = 160
C3_WAKE_MS = 1.0
C3_AWAKE_MA = 25.0
C3_SLEEP_UA = 130.0
GET_LINE_BYTES = 28 + 22  # GET request and response HDLC frames (energy register)
ROW_LINE_BYTES = 34  # a profile row on the line with its share of block and frame overhead
BATTERY_BOARD = os.path.join(REPO, "board", "boards", "esp32c3_battery.json")


def collect_sleep():
    with Qemu(ELF, timeout=300) as q:
        return parse(q.exec(HLS_SNIPPET, 300))


def report_sleep(r, out=sys.stdout):
    # Awake time per GET and per day on the ESP32-C3 battery board, from the
    # Cortex-M3 instruction counts (1 virtual us = 1,000 instructions).
    q, z = r["qemu"], r["sleep"]
    with open(BATTERY_BOARD) as f:
        cfg = json.load(f)
    baud = 9600  # the rate the sign-on agrees ("max_baud_char" 5)

    def ms(v_us):  # Cortex-M3 virtual us -> ms on the C3 at C3_MHZ
        return v_us * 1000 / C3_MHZ / 1000

    def line_ms(nbytes, bd=baud, bits=10):
        return nbytes * bits * 1000 / bd

    def p(label, value):
        print("  %-58s %s" % (label, value), file=out)

    print("battery board (esp32c3_battery) awake time, ESP32-C3 at %d MHz: Cortex-M3 instructions at 1 per"
          " cycle, wake-up %.0f ms, %.0f mA awake, %.0f uA asleep (assumed)" % (C3_MHZ, C3_WAKE_MS, C3_AWAKE_MA,
                                                                                C3_SLEEP_UA), file=out)
    get_cpu = ms(q["get_us"])
    p("awake time per GET on an ESP32-C3 at 160 MHz: CPU", "%.2f ms (%s instructions)"
      % (get_cpu, "{:,}".format(int(q["get_us"] * 1000))))
    p("  with its %d B on the line at %d Bd (awake to receive them)" % (GET_LINE_BYTES, baud),
      "%.1f ms" % (get_cpu + line_ms(GET_LINE_BYTES)))
    p("awake time per ciphered GET: CPU (%s)" % q.get("ciphered_get_backend", "?"), "%.2f ms"
      % ms(q["ciphered_get_us"]))
    hls = z["hls_association_us"]
    p("HLS-GMAC + suite 0 association (SNRM..DISC): CPU", "%.2f ms (%s instructions)"
      % (ms(hls), "{:,}".format(int(hls * 1000))))
    longest = max(hls, q["ciphered_get_us"], q["get_worst_of_1000_us"], q["gc_collect_us"])
    wdt = cfg.get("wdt_ms", 0)
    p("longest measured operation vs the watchdog (%d ms)" % wdt, "%.1f ms: %dx margin"
      % (ms(longest), wdt / ms(longest) if longest else 0))
    # one daily read by the management association: wake-up, sign-on,
    # association, 96 profile rows, 5 registers, DISC, then the linger
    rows, regs = 96, 5
    cpu = ms(hls) + regs * ms(q["ciphered_get_us"]) + rows * ms(q["profile_row_us"])
    wake_up = 2200 + 1600  # IEC 62056-21 wake-up NULs and pause: awake once woken
    sign_on = line_ms(5 + 21 + 6 + 6, 300)  # "/?!", identification, ACK, confirm at 300 Bd 7E1
    session = line_ms(rows * ROW_LINE_BYTES + regs * GET_LINE_BYTES + 4 * 40)
    read = wake_up + sign_on + session + cpu + cfg.get("linger_ms", 4000)
    p("one daily read (%d rows + %d registers, HLS-GMAC): CPU" % (rows, regs), "%.0f ms" % cpu)
    p("  awake in all (wake-up %.1f s, sign-on %.1f s, line %.1f s, linger %.1f s)"
      % (wake_up / 1000, sign_on / 1000, session / 1000, cfg.get("linger_ms", 4000) / 1000), "%.1f s/day" % (read / 1000))
    # idle: a timer wake every poll_ms (sampled RX) or per watchdog bound
    # and profile capture (pin wake), each costing the wake-up latency and
    # the RX samples
    samples = cfg.get("wake_samples", 3)
    per_poll = C3_WAKE_MS + (samples - 1) * cfg.get("wake_sample_us", 1500) / 1000
    polls = 86400000 / cfg.get("poll_ms", 1000)
    pin_wakes = 86400000 / (wdt - cfg.get("wdt_guard_ms", 2000)) + 96 if wdt else 96
    for wake, n in (("sample", polls), ("pin", pin_wakes)):
        idle = n * (per_poll if wake == "sample" else C3_WAKE_MS)
        awake_s = (idle + read) / 1000
        mah = (awake_s * C3_AWAKE_MA + (86400 - awake_s) * C3_SLEEP_UA / 1000) / 3600
        p("sleep budget, wake \"%s\"%s: %d wakes/day" % (wake, " (this board)" if wake == cfg.get("wake") else "", n),
          "%.0f s awake/day, %.2f mAh/day, %.0f uA average" % (awake_s, mah, mah * 1000 / 24))


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
    r["sleep"] = collect_sleep()
    report_sleep(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
