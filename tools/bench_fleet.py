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
#    request bytes sent N times in a row on one connection to each, the
#    whole server process's CPU time (user + system, /proc) per GET, and the
#    ratio; plain (a GET of the logical device name 0.0.42.0.0.255 by the
#    public client, SAP 16) and suite 0 ciphered (general-glo-ciphering
#    GETs of it by client SAP 1, the same keys and system titles on both
#    sides; the reference's association pre-established, see "THE
#    REFERENCE SERVER" below). Both servers' AARE and answers are decoded
#    (and the ciphered ones decrypted) by gurux's client and printed. The
#    fleet serves one meter for it. Beside them the FLOOR (see there): a
#    CPython server that sends canned answer bytes, what the interpreter
#    and the kernel cost before any DLMS work. The harness and the servers
#    run on one CPU (--cpu; see bench_cpu).
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
CLIENT_TITLE = b"GURUXHES"
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
    """CPU seconds of these processes (every thread): the scheduler's
    run time in ns from /proc/PID/task/TID/schedstat where it is there
    (tick-granular user + system from /proc/PID/stat, 10 ms, would need
    tens of thousands of GETs for a figure to 1 us)."""
    t = 0
    for pid in pids:
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
            ns = 0
            for tid in tasks:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    ns += int(f.read().split()[0])
            t += ns / 1e9
            continue
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except OSError:
            pass
    return t


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
#
# THE REFERENCE SERVER: gurux-dlms 1.0.203's GXDLMSServer, driven by its
# public API in its own process (GURUX_SERVER below). Out of the box it
# answers nothing right; each patch here makes it answer as its API says it
# should, and is listed with the frames in docs/compatibility.md ("gurux-dlms
# as a reference server"). They change none of its encoding or ciphering:
#  1. GXServerReply has only `reply`/`data`/`count`/`connectionInfo`
#     attributes, but handleRequest calls sr.setReply(...) and
#     sr.getConnectionInfo() (AttributeError, caught, then a second
#     TypeError `self.receivedData.size(0)` in its error path): a
#     subclass adds the accessors. Unpatched, nothing is sent back.
#     With setReply alone, getConnectionInfo fails the same way and the
#     error reply is `00 01 00 01 00 10 00 04 00 01 c1 01` (the first
#     probe's answer to the AARQ).
#  2. initialize() appends the whole item collection to the association
#     it makes when given none (TypeError "item is not of type
#     GXDLMSObject") and stops half-way: the harness gives it one (LN
#     association, objectList = the data object) so that it completes.
#  3. The LN GET handler calls self.notifyRead() (a method the class does
#     not define) and then onPostRead() with no argument: notifyRead is
#     given as a no-op and the on* hooks take *args. Unpatched, every GET
#     is answered `c4 01 c1 01 01` (data-access-result hardware-fault).
#  4. Ciphered (GXDLMSSecureServer): settings.cipher is None (the keys
#     set through getCiphering() are not the ones used), and the ciphered
#     AARE cannot be built (generateAARE calls GXByteBuffer.setUInt8()
#     without a value: TypeError; the AARE sent is
#     `61 00 ... a4 08 04 00 01 c1 01`, which no client parses). So the
#     harness sets settings.cipher to a GXCiphering with the meter's
#     system title and keys and opens the association PRE-ESTABLISHED
#     (settings.connected = DLMS, the client's system title as
#     sourceSystemTitle, HIGH_GMAC, negotiated GET | general-protection):
#     the GETs measured are general-glo-ciphering requests, answered
#     general-glo-ciphered, which gurux's client decrypts and checks.
#  5. GXDLMSChippering prints "Encryption is applied." and
#     "Authentication is applied." for every APDU it protects: the
#     module's print is replaced by a no-op, in the reference server and
#     here (its cost would otherwise count against gurux and flatter us).

GURUX_SERVER = r'''
import socket, sys
from gurux_dlms import GXCiphering, GXDLMSServer, GXServerReply, ConnectionState
from gurux_dlms.enums import (AccessMode, Authentication, Conformance, InterfaceType, MethodAccessMode, Security,
                              SourceDiagnostic)
from gurux_dlms.objects import GXDLMSAssociationLogicalName, GXDLMSData
from gurux_dlms.secure import GXDLMSSecureServer

sys.modules["gurux_dlms.GXDLMSChippering"].print = lambda *a, **k: None  # patch 5


class Reply(GXServerReply):  # patch 1
    def setReply(self, value): self.reply = value
    def getReply(self): return self.reply
    def getConnectionInfo(self): return self.connectionInfo
    def setConnectionInfo(self, value): self.connectionInfo = value
    def getData(self): return self.data
    def setData(self, value): self.data = value
    def getCount(self): return self.count
    def setCount(self, value): self.count = value


class Hooks:
    def onPreRead(self, *args): pass  # patch 3: called with no argument
    def onPostRead(self, *args): pass
    def notifyRead(self, *args): pass
    def onPreWrite(self, *args): pass
    def onPostWrite(self, *args): pass
    def onPreAction(self, *args): pass
    def onPostAction(self, *args): pass
    def onPreGet(self, *args): pass
    def onPostGet(self, *args): pass
    def isTarget(self, serverAddress, clientAddress): return True
    def onGetAttributeAccess(self, arg): return AccessMode.READ_WRITE
    def onGetMethodAccess(self, arg): return MethodAccessMode.ACCESS
    def onValidateAuthentication(self, authentication, password): return SourceDiagnostic.NONE
    def onFindObject(self, objectType, sn, ln): return None
    def onConnected(self, connectionInfo): pass
    def onDisconnected(self, connectionInfo): pass
    def onInvalidConnection(self, connectionInfo): pass


class PlainServer(Hooks, GXDLMSServer): pass
class SecureServer(Hooks, GXDLMSSecureServer): pass


mode = sys.argv[1]
d = GXDLMSData("0.0.42.0.0.255")
d.value = b"DMI0000012345678"
assoc = GXDLMSAssociationLogicalName()  # patch 2
assoc.objectList.append(d)
if mode == "plain":
    srv = PlainServer(True, InterfaceType.WRAPPER)
else:
    title, client_title, ek, ak = (bytes.fromhex(x) for x in sys.argv[2:6])
    assoc.authenticationMechanismName.mechanismId = Authentication.HIGH_GMAC
    srv = SecureServer(assoc, InterfaceType.WRAPPER)
srv.items.append(d)
srv.items.append(assoc)
srv.initialize()


def pre_establish():  # patch 4
    cipher = GXCiphering(title)
    cipher.security = Security.AUTHENTICATION_ENCRYPTION
    cipher.blockCipherKey = ek
    cipher.authenticationKey = ak
    s = srv.settings
    s.cipher = cipher
    s.sourceSystemTitle = client_title
    s.authentication = Authentication.HIGH_GMAC
    s.negotiatedConformance = Conformance.GET | Conformance.GENERAL_PROTECTION
    s.connected = ConnectionState.DLMS


ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print(ls.getsockname()[1], flush=True)
while True:
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode != "plain":
        pre_establish()
    while True:
        b = c.recv(4096)
        if not b:
            break
        sr = Reply(b)
        srv.handleRequest(sr)
        if sr.reply:
            c.sendall(bytes(sr.reply))
    c.close()
    srv.reset()
'''


# THE FLOOR: what any CPython server of the fleet's shape costs per request
# before it does any DLMS work: one process, an epoll loop over a
# non-blocking socket, a recv_into and a send of bytes made once (the
# fleet's own answer, so that the kernel moves as many bytes). The ratio
# targets are against gurux; this row says how much of that budget the
# interpreter and the kernel take whatever the server does.
FLOOR_SERVER = r'''
import select, socket, sys
answer = bytes.fromhex(sys.argv[1])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(1)
print(ls.getsockname()[1], flush=True)
buf = bytearray(16384)
while True:
    c, _ = ls.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    c.setblocking(False)
    ep = select.epoll()
    ep.register(c.fileno(), select.EPOLLIN)
    open_ = True
    while open_:
        for fd, ev in ep.poll(-1):
            try:
                n = c.recv_into(buf)
            except BlockingIOError:
                continue
            if n == 0:
                open_ = False
                break
            c.send(answer)
    ep.close()
    c.close()
'''


def start_floor(answer):
    """The floor server (FLOOR_SERVER) answering every read with answer:
    (Popen, port)."""
    f = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, answer.hex()], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    return f, int(f.stdout.readline())


def start_gurux(*argv):
    """The reference server in its own process: (Popen, port)."""
    g = subprocess.Popen([sys.executable, "-c", GURUX_SERVER] + list(argv), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    return g, int(g.stdout.readline())


def stop_gurux(g):
    """Stop it; the last line it printed on stderr (a traceback's end), or ''."""
    g.kill()
    _out, err = g.communicate()
    return ([line for line in err.splitlines() if line.strip()][-1:] or [""])[0]


def recv_message(s):
    head = b""
    while len(head) < 8:
        b = s.recv(8 - len(head))
        if not b:
            raise ConnectionError("closed")
        head += b
    need = (head[6] << 8) | head[7]
    body = b""
    while len(body) < need:
        b = s.recv(need - len(body))
        if not b:
            raise ConnectionError("closed")
        body += b
    return head + body


def run_gets(pid, s, reqs, warm=50):
    """Send reqs one after the other on socket s (the first `warm` not
    measured): (server CPU s per GET, round trip s per GET, first measured
    reply as wrapper bytes)."""
    for q in reqs[:warm]:
        s.sendall(q)
        recv_message(s)
    first = None
    c0 = proc_cpu([pid])
    t0 = time.monotonic()
    for q in reqs[warm:]:
        s.sendall(q)
        r = recv_message(s)
        if first is None:
            first = r
    n = len(reqs) - warm
    wall = time.monotonic() - t0
    return (proc_cpu([pid]) - c0) / n, wall / n, first


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def gurux_value(client, reply):
    """The value gurux's client decodes from a wrapper reply (it also
    decrypts and checks a ciphered one)."""
    from gurux_dlms import GXByteBuffer, GXReplyData

    rd = GXReplyData()
    client.getData(GXByteBuffer(reply), rd)
    return rd.value


def plain_cpu(pid, port, n):
    """The public client (SAP 16, no security) associates and GETs the
    logical device name n times; the AARE and the first GET's answer are
    decoded by gurux's client. (cpu, wall, reply, value)."""
    s, get, c = plain_session(port)
    try:
        cpu, wall, reply = run_gets(pid, s, [get] * (n + 50))
    finally:
        s.close()
    return cpu, wall, reply, gurux_value(c, reply)


def ciphered_requests(title, keys, n, first_ic):
    """n general-glo-ciphering GETs of the logical device name by client
    SAP 1 (client system title GURUXHES, suite 0, authenticated and
    encrypted), invocation counters first_ic.., made by gurux's
    GXDLMSSecureClient; and that client (to decrypt the answers)."""
    from gurux_dlms import ConnectionState
    from gurux_dlms.enums import Authentication, Conformance, InterfaceType, Security
    from gurux_dlms.objects import GXDLMSData
    from gurux_dlms.secure import GXDLMSSecureClient

    sys.modules["gurux_dlms.GXDLMSChippering"].print = lambda *a, **k: None  # patch 5
    c = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, InterfaceType.WRAPPER)
    c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    c.ciphering.systemTitle = CLIENT_TITLE
    c.ciphering.blockCipherKey = keys["ek"]
    c.ciphering.authenticationKey = keys["ak"]
    c.ciphering.invocationCounter = first_ic
    c.settings.sourceSystemTitle = title
    c.settings.negotiatedConformance = Conformance.GET | Conformance.GENERAL_PROTECTION
    c.settings.connected = ConnectionState.DLMS
    obj = GXDLMSData(LDN)
    return [bytes(c.read(obj, 2)[0]) for _ in range(n)], c


def fleet_association(port, keys):
    """Meter 0 of the fleet, client SAP 1: gurux's client associates
    (HLS-GMAC, invocation counters from 1); the open socket."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
    import interop_peers as ip

    class Address:
        wrapper_address = ("127.0.0.1", port)

    peer = ip.GuruxPeer(Address(), ip.WRAPPER, sap=1, keys=keys, title=CLIENT_TITLE, invocation_counter=1)
    peer.associate()
    return peer.media.sock


def plain_session(port):
    """The public client (SAP 16, no security) associated (its AARE parsed
    by gurux's client): (socket, GET request, client)."""
    from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
    from gurux_dlms.enums import Authentication, InterfaceType
    from gurux_dlms.objects import GXDLMSData

    c = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    aarq, get = bytes(c.aarqRequest()[0]), bytes(c.read(GXDLMSData(LDN), 2)[0])
    s = connect(port)
    s.sendall(aarq)
    aare = recv_message(s)
    rd = GXReplyData()
    c.getData(GXByteBuffer(aare), rd)
    c.parseAareResponse(rd.data)  # raises on a refusal or a malformed AARE
    return s, get, c


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def in_turn(sessions, rounds):
    """sessions: {name: (pid, socket, requests)}, every list as long; the
    requests split in `rounds` slices, sent slice by slice to each server in
    turn (the first 50 not measured), so that the machine's load changes
    weigh on all servers alike. {name: ([CPU s per GET of each round],
    [round trip s per GET of each round], first measured reply)}."""
    out = {}
    for name, (pid, sock, reqs) in sessions.items():
        for q in reqs[:50]:
            sock.sendall(q)
            recv_message(sock)
        out[name] = ([], [], None)
    n = len(next(iter(sessions.values()))[2]) - 50
    step = max(1, n // rounds)
    for k in range(50, 50 + n, step):
        for name, (pid, sock, reqs) in sessions.items():
            cpu, wall, first = run_gets(pid, sock, reqs[k:k + step], warm=0)
            cpus, walls, reply = out[name]
            cpus.append(cpu)
            walls.append(wall)
            if reply is None:
                out[name] = (cpus, walls, first)
    return out


def report(label, n, rounds, rows, target):
    print(label % n)
    for name, ((cpus, walls, reply), value) in rows:
        print("  %-24s %7.1f us/GET best, %7.1f median of %d rounds (round trip %6.1f us)   reply %s -> %r" % (
            name, min(cpus) * 1e6, median(cpus) * 1e6, rounds, median(walls) * 1e6, reply.hex(), value))
    (_, ((g, _, _), _)), (_, ((m, _, _), _)) = rows
    print("  ratio %.3f x gurux best to best, %.3f median to median (target <= %s)" % (
        min(m) / min(g), median(m) / median(g), target))


def bench_cpu(args):
    # On one CPU (--cpu), the harness and every server it starts: a request's
    # round trip is then a switch between two processes on that CPU, the same
    # for every server. Unpinned, each wake-up of an idle CPU is charged to
    # the process it wakes (on this project's 2-vCPU machines: 0-40 us a
    # request, varying from round to round; a bare echo server measured
    # 10 us pinned, 50 us not), which says more about the machine than about
    # the servers. The collection benchmark runs unpinned.
    pin = None
    if args.cpu != "all" and hasattr(os, "sched_setaffinity"):
        was = os.sched_getaffinity(0)
        cpu = max(was) if args.cpu == "last" else int(args.cpu)
        os.sched_setaffinity(0, {cpu})
        pin = (cpu, was)
        print("CPU per GET: the harness and the servers on CPU %d (--cpu all: unpinned)" % cpu)
    try:
        _bench_cpu(args)
    finally:
        if pin is not None:
            os.sched_setaffinity(0, pin[1])


def _bench_cpu(args):
    from dlms_micro_cpython.fleet import DEMO_MASTER, fleet_keys, identity
    from dlms_micro_cpython.fleet_cli import load_definition

    n = args.gets
    title = identity(load_definition(None), 0).system_title
    keys = fleet_keys(DEMO_MASTER, title)
    # the same request bytes to both servers
    creqs, cclient = ciphered_requests(title, keys, n + 50, 1000)
    _, fclient = ciphered_requests(title, keys, 0, 1000)  # a fresh client to decrypt the fleet's answers
    base = free_base(1)
    started = []
    socks = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as data:
        try:
            gp, gport = start_gurux("plain")
            started.append(gp)
            gc, gcport = start_gurux("ciphered", title.hex(), CLIENT_TITLE.hex(), keys["ek"].hex(), keys["ak"].hex())
            started.append(gc)
            p, _lines = start_fleet(1, base, 1, data)
            try:
                gs, get, gcli = plain_session(gport)
                socks.append(gs)
                fs, _get, fcli = plain_session(base)
                socks.append(fs)
                fs.sendall(get)
                answer = recv_message(fs)  # the fleet's answer, for the floor server to send
                fl, flport = start_floor(answer)
                started.append(fl)
                ls = connect(flport)
                socks.append(ls)
                plain = in_turn({"gurux": (gp.pid, gs, [get] * (n + 50)), "fleet": (p.pid, fs, [get] * (n + 50)),
                                 "floor": (fl.pid, ls, [get] * (n + 50))}, args.rounds)
                gcs = connect(gcport)
                socks.append(gcs)
                fcs = fleet_association(base, keys)
                socks.append(fcs)
                ciph = in_turn({"gurux": (gc.pid, gcs, creqs), "fleet": (p.pid, fcs, creqs)}, args.rounds)
            except (OSError, ValueError, RuntimeError) as e:
                said = [stop_gurux(g) for g in started]
                started.clear()
                raise SystemExit("a server failed: %r; gurux-dlms's reference servers said: %s" % (e, said))
            finally:
                for s in socks:
                    s.close()
                stop(p)
        finally:
            for g in started:
                stop_gurux(g)
    values = {
        "gurux plain": gurux_value(gcli, plain["gurux"][2]), "fleet plain": gurux_value(fcli, plain["fleet"][2]),
        "gurux ciphered": gurux_value(cclient, ciph["gurux"][2]), "fleet ciphered": gurux_value(fclient, ciph["fleet"][2])}
    for name, value in values.items():
        if bytes(value) != b"DMI0000012345678":  # a server that answers wrong has no figure
            raise SystemExit("%s answered %r, not the logical device name" % (name, value))
    report("plain GET (%s attribute 2, SAP 16, TCP wrapper), %%d in a row on one connection, in rounds taken in turn, "
           "whole server process CPU:" % LDN, n, args.rounds,
           [("gurux-dlms GXDLMSServer", (plain["gurux"], values["gurux plain"])),
            ("dlms-micro fleet", (plain["fleet"], values["fleet plain"]))], "0.15")
    (fcpus, _w, _r), (gcpus, _w, _r) = plain["floor"], plain["gurux"]
    print("  floor (FLOOR_SERVER: CPython, an epoll loop sending the fleet's answer bytes, no DLMS work): "
          "%.1f us/GET best, %.1f median = %.3f x gurux best to best, %.3f median to median" % (
              min(fcpus) * 1e6, median(fcpus) * 1e6, min(fcpus) / min(gcpus), median(fcpus) / median(gcpus)))
    report("suite 0 ciphered GET (general-glo-ciphering, SAP 1 HLS-GMAC, authenticated and encrypted, the same "
           "bytes to both), %d in a row, in rounds taken in turn:", n, args.rounds,
           [("gurux-dlms SecureServer", (ciph["gurux"], values["gurux ciphered"])),
            ("dlms-micro fleet", (ciph["fleet"], values["fleet ciphered"]))], "0.02")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--gets", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=10, help="slices of --gets taken in turn by the servers")
    ap.add_argument("--cpu", default="last", help="CPU the CPU-per-GET figures run on: a number, 'last' (default) "
                    "or 'all' (unpinned)")
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--collection-only", action="store_true")
    args = ap.parse_args()
    if not args.collection_only:
        bench_cpu(args)
    if not args.cpu_only:
        bench_collection(args)


if __name__ == "__main__":
    main()
