# The dlms-micro command.
#
#   dlms-micro serve [--host 127.0.0.1] [--port 4059] [--hdlc-port 4060]
#                    [--serial DEVICE [--baud 9600]] [--pty]
#                    [--data DIR] [--log-level info]
#
# Serves the demo meter until Ctrl-C or SIGTERM; prints where it listens.

import argparse
import asyncio
import logging
import signal
import sys

from dlms_micro_cpython import storage


def _port(text):
    if text.lower() in ("off", "none", "-"):
        return None
    v = int(text)
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError("port must be 0..65535, or 'off'")
    return v


def build_parser():
    p = argparse.ArgumentParser(prog="dlms-micro", description="dlms_micro DLMS/COSEM meter (CPython port)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "serve",
        help="run the demo meter",
        description="Run the demo meter: TCP wrapper (IEC 62056-47), HDLC over TCP, and optionally HDLC "
        "on a serial port or a pseudo-terminal. HDLC server address: logical 1, physical 17. Client SAPs: "
        "16 public (no authentication), 32 reader and 1 management (LLS, password 12345678).",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=_port, default=4059, help="TCP wrapper port (default 4059; 0: any free port; off: none)")
    s.add_argument("--hdlc-port", type=_port, default=4060, help="HDLC over TCP port (default 4060; 0: any; off: none)")
    s.add_argument("--serial", metavar="DEVICE", help="also serve HDLC on this serial port (pyserial)")
    s.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    s.add_argument("--pty", action="store_true", help="also serve HDLC on a new pseudo-terminal (prints its path)")
    s.add_argument("--pty-link", metavar="PATH", help="with --pty: make PATH a symlink to the pseudo-terminal")
    s.add_argument("--data", metavar="DIR", help="directory for persistent state (default %s)" % storage.default_dir())
    s.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="debug also logs every frame in hex (default info)",
    )
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    return 2


def serve(args):
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0


async def _serve(args):
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import MeterService

    logger = logging.getLogger("dlms_micro")
    store = storage.FileStorage(args.data)
    demo = DemoMeter(storage=store, log=lambda msg: logger.info("meter: %s", msg))
    svc = MeterService(
        demo,
        host=args.host,
        wrapper_port=args.port,
        hdlc_port=args.hdlc_port,
        serial=args.serial,
        baudrate=args.baud,
        pty=args.pty,
        pty_link=args.pty_link,
        logger=logger,
    )
    try:
        await svc.start()
    except OSError as e:
        print("dlms-micro: cannot start: %s" % e, file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not on this platform
            pass
    print("dlms-micro demo meter (HDLC logical 1 physical 17; wrapper wPort 1; data %s)" % store.directory, flush=True)
    for kind, where in svc.endpoints:
        print("listening: %s %s" % (kind, where), flush=True)
    if not svc.endpoints:
        print("dlms-micro: nothing to serve (every transport is off)", file=sys.stderr)
    else:
        print("Ctrl-C stops it.", flush=True)
        await stop.wait()
    await svc.stop()
    print("dlms-micro: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
