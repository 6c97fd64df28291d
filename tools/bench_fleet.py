# Fleet benchmark (CPython; needs the dev dependency gurux-dlms, used to
# make request bytes and as the reference server):
#
#   .venv/bin/python tools/bench_fleet.py [--count 10000] [--clients 200] [--workers K]
#   .venv/bin/python tools/bench_fleet.py --cpu-only
#
# 1. COLLECTION: `dlms-micro fleet --count N` in its own process(es), its
#    TCP wrapper on one port per meter; C concurrent clients read every
#    meter once: associate (client SAP 32, LLS), 5 registers, the load
#    profile's last 24 hours (96 rows, a range on the clock, in GET
#    blocks), release. Prints the wall time, requests per second, server
#    CPU seconds, requests per second per core of server CPU, and the
#    server's RSS (all its processes) once every meter was read.
# 2. CPU PER GET against gurux-dlms's own server (GXDLMSServer, the same
#    process shape: one Python process, a TCP wrapper socket): the same
#    request bytes (a GET of the logical device name 0.0.42.0.0.255 by the
#    public client, SAP 16) sent N times in a row on one connection to each;
#    the whole server process's CPU time (user + system, /proc) per GET, and
#    the ratio. The fleet serves one meter for it.
#
# Request bytes come from gurux-dlms's client (GXDLMSClient); responses are
# parsed here only as far as the wrapper length and the GET block flags.

import argparse
import asyncio
import datetime
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LDN = "0.0.42.0.0.255"
REGISTERS = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.7.0.255", "1.0.32.7.0.255", "1.0.31.7.0.255")
LOAD_PROFILE = "1.0.99.1.0.255"
RLRQ = bytes.fromhex("6203800100")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def wrapped(sap, apdu):
    return bytes([0, 1, 0, sap, 0, 1]) + len(apdu).to_bytes(2, "big") + apdu


def requests_for_collection():
    """(aarq, [register GETs], profile range GET, release) as wrapper messages
    of client SAP 32 (LLS, password 12345678) to wPort 1."""
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSCaptureObject, GXDLMSClock, GXDLMSProfileGeneric, GXDLMSRegister

    c = GXDLMSClient(True, 32, 1, Authentication.LOW, b"12345678", InterfaceType.WRAPPER)
    aarq = bytes(c.aarqRequest()[0])
    gets = [bytes(c.read(GXDLMSRegister(ln), 2)[0]) for ln in REGISTERS]
    pg = GXDLMSProfileGeneric(LOAD_PROFILE)
    pg.captureObjects.append((GXDLMSClock("0.0.1.0.0.255"), GXDLMSCaptureObject(2, 0)))
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    rows = bytes(c.readRowsByRange(pg, now - datetime.timedelta(days=1), now)[0])
    return aarq, gets, rows, wrapped(32, RLRQ)


def plain_get_requests():
    """(aarq, GET of the logical device name) of the public client, SAP 16."""
    from gurux_dlms import GXDLMSClient
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSData

    c = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    return bytes(c.aarqRequest()[0]), bytes(c.read(GXDLMSData(LDN), 2)[0])


async def read_message(reader):
    head = await reader.readexactly(8)
    n = (head[6] << 8) | head[7]
    return await reader.readexactly(n)


async def exchange(reader, writer, req, sap=32):
    # one request; a GET answered in blocks is followed by GET-next until
    # the last block. Returns the number of requests sent.
    writer.write(req)
    sent = 1
    while True:
        apdu = await read_message(reader)
        if len(apdu) >= 8 and apdu[0] == 0xC4 and apdu[1] == 0x02 and apdu[3] == 0:
            block = apdu[4:8]
            writer.write(wrapped(sap, bytes([0xC0, 0x02, apdu[2]]) + block))
            sent += 1
            continue
        if apdu[:1] in (b"\xd8",) or (apdu[:1] == b"\xc4" and len(apdu) > 3 and apdu[3] != 0 and apdu[1] == 1):
            raise RuntimeError("refused: %s" % apdu.hex())
        return sent


async def collect(host, base, indices, clients, reqs):
    aarq, gets, rows, rlrq = reqs
    todo = iter(indices)
    done = [0, 0, 0]  # meters, requests, failures

    async def client():
        for i in todo:
            try:
                reader, writer = await asyncio.open_connection(host, base + i)
            except OSError:
                done[2] += 1
                continue
            try:
                n = await exchange(reader, writer, aarq)
                for g in gets:
                    n += await exchange(reader, writer, g)
                n += await exchange(reader, writer, rows)
                n += await exchange(reader, writer, rlrq)
                done[0] += 1
                done[1] += n
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as e:
                done[2] += 1
                if done[2] <= 3:
                    print("  meter %d: %r" % (i, e), flush=True)
            finally:
                writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def proc_cpu(pids):
    # user + system seconds of these processes
    t = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return t / CLK_TCK


def proc_rss(pids):
    kb = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        kb += int(line.split()[1])
        except OSError:
            pass
    return kb * 1024


def family(pid):
    # pid and its descendants
    out = [pid]
    k = 0
    while k < len(out):
        p = out[k]
        k += 1
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def start_fleet(count, base, workers, data, extra=()):
    cmd = [sys.executable, "-m", "dlms_micro_cpython", "fleet", "--count", str(count), "--port", str(base),
           "--shared-hdlc-port", "off", "--data", data, "--log-level", "warning", "--workers", str(workers)]
    cmd += list(extra)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    deadline = time.monotonic() + 300
    lines = []
    while time.monotonic() < deadline:
        line = p.stdout.readline()
        if not line:
            raise RuntimeError("the fleet stopped: %s" % "".join(lines[-10:]))
        lines.append(line)
        if "Ctrl-C stops it" in line:
            return p, lines
    raise RuntimeError("the fleet did not start in 300 s")


def stop(p):
    p.terminate()
    try:
        p.wait(120)
    except subprocess.TimeoutExpired:
        p.kill()


def free_base(count):
    from dlms_micro_cpython.fleet_net import free_base as free

    return free(count)


def bench_collection(args):
    base = free_base(args.count)
    reqs = requests_for_collection()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as data:
        t0 = time.monotonic()
        p, _lines = start_fleet(args.count, base, args.workers, data)
        pids = family(p.pid)
        started = time.monotonic() - t0
        rss0 = proc_rss(pids)
        print("fleet of %d meters (%d worker process%s) listening after %.1f s, RSS %.0f MB before any read"
              % (args.count, args.workers, "es" if args.workers > 1 else "", started, rss0 / 1e6), flush=True)
        try:
            for run in ("first read (meters built on contact)", "second read"):
                cpu0 = proc_cpu(pids)
                t = time.monotonic()
                done = asyncio.run(collect("127.0.0.1", base, range(args.count), args.clients, reqs))
                wall = time.monotonic() - t
                cpu = proc_cpu(pids) - cpu0
                rss = proc_rss(pids)
                print("%s: %d meters read, %d failed, %d requests (associate, 5 registers, 96 profile rows in "
                      "blocks, release) by %d clients in %.1f s: %.0f requests/s, server CPU %.1f s: %.0f requests/s "
                      "per core; RSS %.0f MB (%.1f KB a meter)" % (
                          run, done[0], done[2], done[1], args.clients, wall, done[1] / wall, cpu,
                          done[1] / cpu if cpu else 0, rss / 1e6, (rss - rss0) / max(1, args.count) / 1e3),
                      flush=True)
        finally:
            stop(p)


# ------------------------------------------------------------------ CPU per GET

GURUX_SERVER = r'''
import socket, sys
from gurux_dlms import GXDLMSServer, GXServerReply
from gurux_dlms.enums import InterfaceType, SourceDiagnostic, AccessMode, MethodAccessMode
from gurux_dlms.objects import GXDLMSData, GXDLMSAssociationLogicalName


class Server(GXDLMSServer):
    def onPreRead(self, args): pass
    def onPostRead(self, args): pass
    def onPreWrite(self, args): pass
    def onPostWrite(self, args): pass
    def onPreAction(self, args): pass
    def onPostAction(self, args): pass
    def onPreGet(self, args): pass
    def onPostGet(self, args): pass
    def isTarget(self, serverAddress, clientAddress): return True
    def onGetAttributeAccess(self, arg): return AccessMode.READ_WRITE
    def onGetMethodAccess(self, arg): return MethodAccessMode.ACCESS
    def onValidateAuthentication(self, authentication, password): return SourceDiagnostic.NONE
    def onFindObject(self, objectType, sn, ln): return None
    def onConnected(self, connectionInfo): pass
    def onDisconnected(self, connectionInfo): pass
    def onInvalidConnection(self, connectionInfo): pass


srv = Server(True, InterfaceType.WRAPPER)
d = GXDLMSData("0.0.42.0.0.255")
d.value = b"DMI0000012345678"

srv.items.append(d)
try:
    srv.initialize()
except TypeError:  # this gurux-dlms version appends a collection to a collection
    pass
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print(ls.getsockname()[1], flush=True)
while True:
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(4096)
        if not b:
            break
        sr = GXServerReply(b)
        srv.handleRequest(sr)
        if sr.reply:
            c.sendall(bytes(sr.reply))
    c.close()
    srv.reset()
'''


def ping_pong(port, aarq, get, n):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def rx():
        head = b""
        while len(head) < 8:
            b = s.recv(8 - len(head))
            if not b:
                raise ConnectionError("closed")
            head += b
        need = (head[6] << 8) | head[7]
        body = b""
        while len(body) < need:
            body += s.recv(need - len(body))
        return body

    s.sendall(aarq)
    aare = rx()
    if aare[:1] != b"\x61":
        raise RuntimeError("no AARE: %s" % aare.hex())
    for _ in range(50):  # warm up
        s.sendall(get)
        rx()
    return s, rx


def cpu_per_get(pid, port, aarq, get, n):
    s, rx = ping_pong(port, aarq, get, n)
    first = None
    c0 = proc_cpu([pid])
    t0 = time.monotonic()
    for _ in range(n):
        s.sendall(get)
        r = rx()
        if first is None:
            first = r
    wall = time.monotonic() - t0
    cpu = proc_cpu([pid]) - c0
    s.close()
    return cpu / n, wall / n, first


def ciphered_cpu_per_get(pid, port, keys, n):
    # SAP 1 (HLS-GMAC, suite 0, every APDU authenticated and encrypted):
    # gurux-dlms's client associates, then makes n glo-get-requests (each
    # its own invocation counter) sent in a row; the server process's CPU
    # per GET. The client's ciphering runs in this process, not counted.
    sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
    import interop_peers as ip
    from gurux_dlms.objects import GXDLMSData

    class Address:
        wrapper_address = ("127.0.0.1", port)

    peer = ip.GuruxPeer(Address(), ip.WRAPPER, sap=1, keys=keys)
    peer.associate()
    obj = GXDLMSData(LDN)
    reqs = [bytes(peer.client.read(obj, 2)[0]) for _ in range(n + 50)]
    s = peer.media.sock

    def rx():
        head = b""
        while len(head) < 8:
            head += s.recv(8 - len(head))
        need = (head[6] << 8) | head[7]
        body = b""
        while len(body) < need:
            body += s.recv(need - len(body))
        return body

    for q in reqs[:50]:
        s.sendall(q)
        rx()
    c0 = proc_cpu([pid])
    t0 = time.monotonic()
    for q in reqs[50:]:
        s.sendall(q)
        r = rx()
        if r[:1] == b"\xd8" or r[:1] == b"\xc4":
            raise RuntimeError("not a ciphered answer: %s" % r.hex())
    wall = time.monotonic() - t0
    cpu = proc_cpu([pid]) - c0
    peer.media.close()
    return cpu / n, wall / n


def bench_cpu(args):
    aarq, get = plain_get_requests()
    n = args.gets
    g = subprocess.Popen([sys.executable, "-c", GURUX_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    g_cpu = g_wall = 0.0
    g_reply = b""
    g_error = None
    try:
        gport = int(g.stdout.readline())
        g_cpu, g_wall, g_reply = cpu_per_get(g.pid, gport, aarq, get, n)
    except (OSError, ValueError, RuntimeError) as e:
        g_error = e
    finally:
        g.kill()
        _out, err = g.communicate()
    if g_error is not None:
        last = [line for line in err.splitlines() if line.strip()][-1:] or [repr(g_error)]
        g_error = "%r; the server said: %s" % (g_error, last[0])
    base = free_base(1)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as data:
        p, _lines = start_fleet(1, base, 1, data)
        try:
            m_cpu, m_wall, m_reply = cpu_per_get(p.pid, base, aarq, get, n)
            from dlms_micro_cpython.fleet import DEMO_MASTER, fleet_keys, identity
            from dlms_micro_cpython.fleet_cli import load_definition

            keys = fleet_keys(DEMO_MASTER, identity(load_definition(None), 0).system_title)
            c_cpu, c_wall = ciphered_cpu_per_get(p.pid, base, keys, n)
        finally:
            stop(p)
    print("plain GET (%s attribute 2, SAP 16, TCP wrapper), %d in a row on one connection, whole server process CPU:"
          % (LDN, n))
    if g_error is None:
        print("  gurux-dlms GXDLMSServer %7.1f us/GET (round trip %6.1f us)   reply %s" % (
            g_cpu * 1e6, g_wall * 1e6, g_reply.hex()))
    else:
        print("  gurux-dlms GXDLMSServer: no figure, it answered nothing (%s)" % g_error)
    print("  dlms-micro fleet        %7.1f us/GET (round trip %6.1f us)   reply %s" % (m_cpu * 1e6, m_wall * 1e6,
                                                                                  m_reply.hex()))
    if g_cpu:
        print("  ratio %.3f x gurux (target <= 0.15)" % (m_cpu / g_cpu))
    print("suite 0 ciphered GET (glo-get-request, SAP 1 HLS-GMAC, authenticated and encrypted), %d in a row:" % n)
    print("  dlms-micro fleet        %7.1f us/GET (round trip %6.1f us)" % (c_cpu * 1e6, c_wall * 1e6))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--gets", type=int, default=5000)
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--collection-only", action="store_true")
    args = ap.parse_args()
    if not args.collection_only:
        bench_cpu(args)
    if not args.cpu_only:
        bench_collection(args)


if __name__ == "__main__":
    main()
