# `dlms-micro fleet --workers K`: one fleet spread over K processes (one per
# core), its addresses unchanged.
#
# The supervisor (the process started) holds the data directory's lock and
# starts K workers (`fleet ... --worker w/K`, the same options). Worker w
# serves meters first + count*w//K .. first + count*(w+1)//K - 1: their
# per-meter ports (BASE + i - first) and their state (DATA/m<i>). The shared
# HDLC port stays with the supervisor: it accepts a connection, peeks at its
# first frame's physical address without taking the bytes, and hands the
# socket to the worker of that meter (SCM_RIGHTS over a Unix socket), which
# reads the frame as if it had accepted the connection itself.
#
# The same slices spread a fleet over machines: machine m of M runs
# `--first-index m*N/M --count N/M`; meter i keeps its identity, keys and
# physical address, and its ports are BASE + i - first on its machine.

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from dlms_micro_cpython.fleet_net import HDLC, ROUTE_BUFFER, physical_of_frame

READY = "fleet worker ready"
ROUTE_TIMEOUT = 10.0  # s a shared-port connection may take to send its first frame's address
MAX_ROUTING = 1024  # shared-port connections waiting for their first frame at once; more are closed


def slice_of(first, count, w, k):
    """Meters (lo, hi) of worker w of k: lo .. hi - 1."""
    return first + count * w // k, first + count * (w + 1) // k


def worker_argv(args, data, w, k, control):
    """The command line of worker w of k."""
    argv = [sys.executable, "-m", "dlms_micro_cpython", "fleet", "--count", str(args.count),
            "--first-index", str(args.first_index), "--seed", str(args.seed), "--host", args.host,
            "--port", _p(args.port), "--hdlc-port", _p(args.hdlc_port), "--shared-hdlc-port", "off",
            "--data", data, "--idle-timeout", str(args.idle_timeout), "--log-level", args.log_level,
            "--worker", "%d/%d/%s" % (w, k, control)]
    if args.meter:
        argv += ["--meter", args.meter]
    if args.keys:
        argv += ["--keys", args.keys]
    for f in args.fault:
        argv += ["--fault", f]
    if args.faults:
        argv += ["--faults", args.faults]
    if args.max_connections:
        argv += ["--max-connections", str(max(1, args.max_connections // k))]
    return argv


def _p(port):
    return "off" if port is None else str(port)


def supervise(args, store, logger):
    """Run the workers until SIGINT / SIGTERM; the exit code."""
    try:
        return asyncio.run(_supervise(args, store, logger))
    except KeyboardInterrupt:
        return 0


async def _supervise(args, store, logger):
    k = args.workers
    data = store.directory if store is not None else "none"
    tmp = tempfile.mkdtemp(prefix="dlms-micro-fleet-")
    procs = []
    controls = []
    loop = asyncio.get_running_loop()
    listener = None
    try:
        for w in range(k):
            path = os.path.join(tmp, "w%d" % w)
            srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            srv.bind(path)
            srv.listen(1)
            controls.append(srv)
            procs.append(subprocess.Popen(worker_argv(args, data, w, k, path), stdout=subprocess.PIPE, text=True))
        for w, p in enumerate(procs):
            line = await loop.run_in_executor(None, p.stdout.readline)
            if READY not in line:
                print("dlms-micro fleet: worker %d did not start (see its messages above)" % w, file=sys.stderr)
                return 1
        links = []
        for srv in controls:
            srv.settimeout(30)
            conn, _ = srv.accept()
            conn.setblocking(True)
            links.append(conn)
        shared = None
        if args.shared_hdlc_port is not None:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((args.host, args.shared_hdlc_port))
            listener.listen(1024)
            listener.setblocking(False)
            shared = listener.getsockname()[1]
            loop.create_task(_accept_shared(loop, listener, args, links, logger))
        print("dlms-micro fleet: %d meters of %s, indices %d..%d, in %d workers (PIDs %s), data %s" % (
            args.count, args.meter or "the demo's definition", args.first_index, args.first_index + args.count - 1,
            k, " ".join(str(p.pid) for p in procs), data), flush=True)
        for w in range(k):
            lo, hi = slice_of(args.first_index, args.count, w, k)
            for kind, base in (("wrapper", args.port), ("hdlc", args.hdlc_port)):
                if base is not None:
                    print("listening: %s tcp %s:%d-%d (worker %d: meters %d..%d)" % (
                        kind, args.host, base + lo - args.first_index, base + hi - 1 - args.first_index, w, lo,
                        hi - 1), flush=True)
        if shared is not None:
            print("listening: hdlc tcp %s:%d shared (meter i at physical address 16 + i)" % (args.host, shared),
                  flush=True)
        print("Ctrl-C stops it.", flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass

        async def watch():
            while all(p.poll() is None for p in procs):
                await asyncio.sleep(0.5)
            logger.error("fleet: a worker ended; stopping")
            stop.set()

        loop.create_task(watch())
        await stop.wait()
    finally:
        if listener is not None:
            listener.close()
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                await loop.run_in_executor(None, p.wait, 120)
            except subprocess.TimeoutExpired:
                p.kill()
        for srv in controls:
            srv.close()
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    print("dlms-micro fleet: stopped", flush=True)
    return 0


async def _accept_shared(loop, listener, args, links, logger):
    routing = set()
    refused = 0
    while True:
        try:
            conn, _peer = await loop.sock_accept(listener)
        except OSError as e:
            logger.error("fleet: shared hdlc port: %s", e)
            await asyncio.sleep(1.0)
            continue
        if len(routing) >= MAX_ROUTING:
            conn.close()
            if not refused:
                logger.warning("fleet: shared hdlc port: %d connections wait for a first frame: further ones "
                               "are closed at once until fewer wait", MAX_ROUTING)
            refused += 1
            continue
        refused = 0
        task = loop.create_task(_route(loop, conn, args, links, logger))
        routing.add(task)
        task.add_done_callback(routing.discard)


async def _route(loop, conn, args, links, logger):
    # peek until the first frame's address is there, then hand the socket
    # to the worker of that meter
    deadline = time.monotonic() + ROUTE_TIMEOUT
    k = len(links)
    try:
        while True:
            try:
                head = conn.recv(ROUTE_BUFFER, socket.MSG_PEEK)
            except BlockingIOError:
                head = None
            if head == b"":
                return  # closed before it said anything
            phys = physical_of_frame(bytearray(head)) if head else None
            if phys is not None and phys != -2:
                i = args.first_index if (phys == -1 and args.count == 1) else phys - 16
                if not args.first_index <= i < args.first_index + args.count:
                    logger.info("shared hdlc: a first frame for physical address %s: no meter of this fleet; "
                                "closed", phys if phys >= 0 else "(none)")
                    return
                w = next(w for w in range(k) if i < slice_of(args.first_index, args.count, w, k)[1])
                socket.send_fds(links[w], [i.to_bytes(4, "big")], [conn.fileno()])
                return
            if time.monotonic() > deadline or (head and len(head) >= ROUTE_BUFFER):
                return
            await asyncio.sleep(0.01)
    except OSError as e:
        logger.info("shared hdlc: %s", e)
    finally:
        conn.close()  # the worker has its own descriptor of the socket


def worker_started(net, args, w):
    """In worker w: say so to the supervisor and take the shared-port
    connections it hands over (into net's loop)."""
    path = args.worker.split("/", 2)[2]
    link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    link.connect(path)
    print(READY, flush=True)
    link.setblocking(False)

    def adopt():
        try:
            msg, fds, _flags, _addr = socket.recv_fds(link, 16, 4)
        except BlockingIOError:
            return
        except OSError:
            net.remove_reader(link)
            return
        if not msg and not fds:
            net.remove_reader(link)  # the supervisor is gone
            return
        for fd in fds:
            net.adopt(socket.socket(fileno=fd), HDLC, None)

    net.add_reader(link, adopt)
    net.control_link = link
