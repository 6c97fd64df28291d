# Soak: many concurrent clients of all three demo associations against a
# real `dlms-micro serve` for minutes, printing requests, errors, p50/p99
# latency and the server's RSS over time, and the RSS slope at the end
# (issue 18, item 5). Loopback only; bounded in clients and time.
#
#   python tools/bench_soak.py                 # 102 clients, 10 minutes
#   python tools/bench_soak.py --minutes 30 --clients 150
#   python tools/bench_soak.py --quick         # 30 s
#
# Clients (one asyncio task each, TCP wrapper): a third public (SAP 16, no
# authentication: GET of the clock), a third reader (SAP 32, LLS: GETs of
# energy, clock, a profile's entries), a third management (SAP 1, HLS-GMAC
# with security suite 0: every request authenticated and encrypted, the
# f(StoC) computed with the demo keys). Each associates, makes requests with a
# think time, releases and associates again now and then. Management clients
# share 8 client system titles (the meter's table of receive counters); a
# title's requests go one at a time, so its counters reach the meter in order.

import argparse
import asyncio
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")  # the demo's demo-only keys
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
PASSWORD = b"12345678"
TITLES = [b"SOAKHE%02d" % i for i in range(8)]
IO_TIMEOUT = 20.0

CLOCK = bytes.fromhex("0008 0000010000FF 02 00")
ENERGY = bytes.fromhex("0003 0100010800FF 02 00")
PROFILE_ENTRIES = bytes.fromhex("0007 0100630100FF 07 00")
INITIATE = bytes.fromhex("01000000065F1F0400401E1D0400")  # conformance: get, set, action, sel. access, blocks


def wrap(src, apdu):
    return bytes((0, 1, 0, src, 0, 1)) + len(apdu).to_bytes(2, "big") + apdu


def gcm(key, iv, aad, pt):
    e = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    e.authenticate_additional_data(aad)
    ct = e.update(pt) + e.finalize()
    return ct, e.tag[:12]


def ungcm(key, iv, aad, ct, tag):
    d = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=12)).decryptor()
    d.authenticate_additional_data(aad)
    return d.update(ct) + d.finalize()


def alen(n):
    return bytes((n,)) if n < 0x80 else bytes((0x81, n)) if n < 0x100 else bytes((0x82, n >> 8, n & 0xFF))


def glo(tag, title, ic, apdu):
    ct, t = gcm(EK, title + ic.to_bytes(4, "big"), b"\x30" + AK, apdu)
    body = b"\x30" + ic.to_bytes(4, "big") + ct + t
    return bytes((tag,)) + alen(len(body)) + body


def unglo(data, server_title):
    p = 1
    n = data[p]
    p += 1
    if n == 0x81:
        p += 1
    elif n == 0x82:
        p += 2
    sc = data[p]
    ic = int.from_bytes(data[p + 1 : p + 5], "big")
    body = data[p + 5 :]
    return ic, ungcm(EK, server_title + data[p + 1 : p + 5], bytes((sc,)) + AK, body[:-12], body[-12:])


def aarq(mech, ctos=b"", title=b"", initiate=INITIATE, ciphered=False):
    ctx = bytes.fromhex("A109060760857405080103" if ciphered else "A109060760857405080101")
    body = ctx
    if title:
        body += bytes((0xA6, len(title) + 2, 4, len(title))) + title
    if mech:
        body += bytes.fromhex("8A0207808B07608574050802") + bytes((mech,))
        body += bytes((0xAC, len(ctos) + 2, 0x80, len(ctos))) + ctos
    body += bytes((0xBE, len(initiate) + 2, 4, len(initiate))) + initiate
    return bytes((0x60, len(body))) + body


def ber_find(data, tag):
    # the value of the first BER element `tag` at the top level of an AARE
    p = 2
    while p + 1 < len(data):
        t, n = data[p], data[p + 1]
        if t == tag:
            return data[p + 2 : p + 2 + n]
        p += 2 + n
    return None


class TitleLock:
    # one management title's counters: used in order, one request at a time
    def __init__(self, title):
        self.title = title
        self.ic = 1
        self.lock = asyncio.Lock()


class Stats:
    def __init__(self):
        self.requests = 0
        self.errors = 0
        self.assoc = 0
        self.lat = []  # seconds, this interval
        self.all_lat = []
        self.error_kinds = {}

    def ok(self, dt):
        self.requests += 1
        self.lat.append(dt)

    def err(self, what):
        self.errors += 1
        self.error_kinds[what] = self.error_kinds.get(what, 0) + 1


class Conn:
    def __init__(self, reader, writer, src):
        self.r = reader
        self.w = writer
        self.src = src

    async def call(self, apdu):
        self.w.write(wrap(self.src, apdu))
        await self.w.drain()
        head = await asyncio.wait_for(self.r.readexactly(8), IO_TIMEOUT)
        n = (head[6] << 8) | head[7]
        return await asyncio.wait_for(self.r.readexactly(n), IO_TIMEOUT)

    def close(self):
        self.w.close()


async def client(kind, n, addr, stats, stop_at, titles, think):
    rng = random.Random(n)
    sap = {"public": 16, "reader": 32, "management": 1}[kind]
    while time.monotonic() < stop_at:
        conn = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*addr), IO_TIMEOUT)
            conn = Conn(reader, writer, sap)
            tl = titles[n % len(titles)] if kind == "management" else None
            server_title = None
            if kind == "public":
                aare = await conn.call(aarq(0))
            elif kind == "reader":
                aare = await conn.call(aarq(1, PASSWORD))
            else:
                ctos = rng.randbytes(16)
                async with tl.lock:
                    ic = tl.ic
                    tl.ic += 1
                    aare = await conn.call(aarq(5, ctos, tl.title, glo(0x21, tl.title, ic, INITIATE), True))
                    if bytes.fromhex("A203020100") not in aare:
                        raise RuntimeError("AARE rejected")
                    server_title = ber_find(aare, 0xA4)[2:]
                    stoc = ber_find(aare, 0xAA)[2:]
                    ic = tl.ic
                    tl.ic += 1
                    f = b"\x10" + ic.to_bytes(4, "big") + gcm(EK, tl.title + ic.to_bytes(4, "big"), b"\x10" + AK + stoc,
                                                               b"")[1]
                    act = bytes.fromhex("C301C1000F0000280000FF0101") + b"\x09" + bytes((len(f),)) + f
                    ic = tl.ic
                    tl.ic += 1
                    rsp = await conn.call(glo(0xCB, tl.title, ic, act))
                    _, pt = unglo(rsp, server_title)
                    if pt[:4] != bytes.fromhex("C701C100"):
                        raise RuntimeError("HLS reply refused")
            if bytes.fromhex("A203020100") not in aare:
                raise RuntimeError("AARE rejected")
            stats.assoc += 1
            for _ in range(rng.randint(10, 40)):
                if time.monotonic() >= stop_at:
                    break
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))
                if kind == "public":
                    req = b"\xC0\x01\xC1" + CLOCK
                else:
                    req = b"\xC0\x01\xC1" + rng.choice((CLOCK, ENERGY, ENERGY, PROFILE_ENTRIES))
                t0 = time.monotonic()
                if kind == "management":
                    async with tl.lock:
                        ic = tl.ic
                        tl.ic += 1
                        rsp = await conn.call(glo(0xC8, tl.title, ic, req))
                    _, rsp = unglo(rsp, server_title)
                else:
                    rsp = await conn.call(req)
                dt = time.monotonic() - t0
                if rsp[:2] == b"\xC4\x01" and rsp[3] == 0:
                    stats.ok(dt)
                else:
                    stats.err("GET refused %s" % rsp[:6].hex())
            await conn.call(bytes.fromhex("6200"))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError, ValueError,
                TypeError, IndexError) as e:
            stats.err("%s %s: %s" % (kind, type(e).__name__, str(e)[:60]))
            await asyncio.sleep(1.0)
        finally:
            if conn is not None:
                conn.close()


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def slope_kb_per_min(samples):
    # least squares over (seconds, KB)
    if len(samples) < 3:
        return 0.0
    xs = [s for s, _ in samples]
    ys = [k for _, k in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 60.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else 0.0


def pct(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


async def soak(args, addr, pid):
    stats = Stats()
    titles = [TitleLock(t) for t in TITLES]
    start = time.monotonic()
    stop_at = start + args.seconds
    kinds = ("public", "reader", "management")
    tasks = [asyncio.create_task(client(kinds[i % 3], i, addr, stats, stop_at, titles, args.think))
             for i in range(args.clients)]
    samples = []
    last_req = 0
    print("%8s %9s %7s %7s %9s %9s %9s" % ("t (s)", "requests", "req/s", "errors", "p50 ms", "p99 ms", "RSS KB"),
          flush=True)
    while time.monotonic() < stop_at:
        await asyncio.sleep(min(args.interval, max(0.1, stop_at - time.monotonic())))
        t = time.monotonic() - start
        kb = rss_kb(pid)
        if kb is not None:
            samples.append((t, kb))
        lat = stats.lat
        stats.lat = []
        stats.all_lat.extend(lat)
        print("%8.0f %9d %7.1f %7d %9.1f %9.1f %9s" % (t, stats.requests, (stats.requests - last_req) / args.interval,
                                                       stats.errors, 1000 * pct(lat, 0.5), 1000 * pct(lat, 0.99),
                                                       kb), flush=True)
        last_req = stats.requests
    await asyncio.gather(*tasks, return_exceptions=True)
    stats.all_lat.extend(stats.lat)
    return stats, samples


def start_server(args, data):
    cmd = [os.path.join(os.path.dirname(sys.executable), "dlms-micro"), "serve", "--host", "127.0.0.1", "--port", "0",
           "--hdlc-port", "off", "--data", data, "--max-connections", str(args.clients + 16), "--log-level", "warning"]
    if not os.path.exists(cmd[0]):
        cmd[0:1] = [sys.executable, "-m", "dlms_micro_cpython"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening: wrapper tcp ([\d.]+):(\d+)", line)
        if m:
            return proc, (m.group(1), int(m.group(2)))
    proc.kill()
    raise SystemExit("bench_soak: the meter did not start")


def main(argv=None):
    ap = argparse.ArgumentParser(description="soak the demo meter with many concurrent clients")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--quick", action="store_true", help="30 seconds")
    ap.add_argument("--clients", type=int, default=102, help="concurrent clients, a third of each association")
    ap.add_argument("--think", type=float, default=1.0, help="seconds between a client's requests (mean)")
    ap.add_argument("--interval", type=float, default=None, help="seconds between report lines")
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds before the RSS slope counts (default: two thirds of the run)")
    args = ap.parse_args(argv)
    if not 3 <= args.clients <= 1000:
        ap.error("--clients: 3..1000")
    if not 0 < args.minutes <= 24 * 60:
        ap.error("--minutes: up to a day")
    args.seconds = 30.0 if args.quick else 60.0 * args.minutes
    if args.interval is None:
        args.interval = 5.0 if args.quick else 30.0
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.clients + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.clients + 256), hard))
    with tempfile.TemporaryDirectory(prefix="dlms-soak-") as data:
        proc, addr = start_server(args, data)
        print("soak: %d clients (public, reader LLS, management HLS-GMAC suite 0) for %.0f s against %s:%d, "
              "server PID %d" % (args.clients, args.seconds, addr[0], addr[1], proc.pid), flush=True)
        try:
            stats, samples = asyncio.run(soak(args, addr, proc.pid))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    lat = stats.all_lat
    print("total: %d requests, %d errors, %d associations, p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
        stats.requests, stats.errors, stats.assoc, 1000 * pct(lat, 0.5), 1000 * pct(lat, 0.99),
        1000 * max(lat) if lat else float("nan")))
    for k, v in sorted(stats.error_kinds.items(), key=lambda kv: -kv[1])[:8]:
        print("  error: %d x %s" % (v, k))
    # the allocator's arenas grow while the connections' buffers reach their
    # high-water mark (6 to 18 minutes here, longer on a busy host; Python
    # objects do not grow, tracemalloc shows): the slope that counts is the
    # one after the warm-up (--warmup, default the last third of the run)
    warm = args.warmup if args.warmup is not None else 2 * args.seconds / 3
    later = [s for s in samples if s[0] >= warm]
    slope = slope_kb_per_min(later)
    first = later[0][1] if later else 0
    lastkb = later[-1][1] if later else 0
    flat = abs(slope) * 60 < 0.05 * max(first, 1)  # under 5 % of the RSS per hour
    print("RSS: %s KB at the start, %s KB after the warm-up (%.0f s), %s KB at the end; slope after the warm-up "
          "%.1f KB/min (%.1f MB/h; whole run %.1f KB/min): %s" % (
              samples[0][1] if samples else 0, first, warm, lastkb, slope, slope * 60 / 1024,
              slope_kb_per_min(samples), "flat" if flat else "NOT FLAT"))
    return 0 if flat and stats.requests and stats.errors <= stats.requests // 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
