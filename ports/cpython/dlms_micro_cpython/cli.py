# The dlms-micro command.
#
#   dlms-micro serve [--host 127.0.0.1] [--port 4059] [--hdlc-port 4060]
#                    [--serial DEVICE [--baud 9600]] [--pty]
#                    [--data DIR] [--keys FILE] [--log-level info]
#                    [--accelerate N] [--history DAYS] [--push-to HOST:PORT]
#                    [--prepaid]
#                    [--meter FILE [--name N] [--serial-number S] [--system-title HEX]
#                     [--source NAME=DEVICE ...]]
#   dlms-micro meter check|show|compile|import ...   meter definitions
#   dlms-micro token --id N --amount CENTS
#                    prints a demo top-up token for the Token gateway
#   dlms-micro listen [--host 127.0.0.1] [--port 4061] [--ek HEX --ak HEX]
#                    prints the DataNotifications pushed to it, decoded
#
# Serves the demo meter until Ctrl-C or SIGTERM; prints where it listens and
# which security suite 0 keys the management association (client SAP 1)
# uses: the demo-only keys (printed), or those of --keys FILE (never
# printed), or keys a key_transfer stored in the data directory.

import argparse
import asyncio
import logging
import signal
import sys

from dlms_micro_cpython import keyfile, storage


def _port(text):
    if text.lower() in ("off", "none", "-"):
        return None
    v = int(text)
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError("port must be 0..65535, or 'off'")
    return v


def _positive(least):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a number: %r" % text) from None
        if not v >= least or v != v or v == float("inf"):
            raise argparse.ArgumentTypeError("must be a number >= %g" % least)
        return v

    return parse


def _push_to(text):
    from dlms_micro_cpython.push import parse_destination

    if text in ("", "off", "none"):
        return ""
    try:
        parse_destination(text.encode())
    except (ValueError, UnicodeError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if len(text) > 64:
        raise argparse.ArgumentTypeError("at most 64 characters")
    return text


def _start_time(text):
    import datetime

    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError("not an ISO 8601 time: %r (e.g. 2026-01-01T00:00:00Z)" % text) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp())


def build_parser():
    from dlms_micro import __version__

    p = argparse.ArgumentParser(prog="dlms-micro", description="dlms_micro DLMS/COSEM meter (CPython port)")
    p.add_argument("--version", action="version", version="dlms-micro %s" % __version__)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser(
        "serve",
        help="run the demo meter",
        description="Run the demo meter: TCP wrapper (IEC 62056-47), HDLC over TCP, and optionally HDLC "
        "on a serial port or a pseudo-terminal. HDLC server address: logical 1, physical 17. Client SAPs: "
        "16 public (no authentication), 32 reader (LLS, password 12345678), 1 management (HLS-GMAC, "
        "mechanism 5, with security suite 0: every APDU authenticated and encrypted).",
        epilog="Demo-only suite 0 keys (public; never use them in a real meter): block cipher key (EK) "
        "000102030405060708090A0B0C0D0E0F, authentication key (AK) D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF "
        "(the Green Book's example keys), master key (KEK) C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF. The meter's "
        "system title is 'DMI' and the serial number 12345678 as a 5-byte integer: 444D490000BC614E. "
        'Key file (--keys): JSON {"ek": "<32 hex digits>", "ak": "...", "kek": "...", '
        '"system_title": "<16 hex digits>" (optional)}.',
    )
    s.add_argument("--meter", metavar="FILE", help="serve this meter definition (JSON, docs/meter-definition.md) "
                   "or Gurux object collection (XML) instead of the demo meter")
    s.add_argument("--name", help="with --meter: the logical device name instead of the definition's")
    s.add_argument("--serial-number", help="with --meter: the serial number instead of the definition's")
    s.add_argument("--system-title", metavar="HEX", help="with --meter: the system title (16 hex digits) "
                   "instead of the definition's")
    s.add_argument("--source", action="append", default=[], metavar="NAME=DEVICE",
                   help="with --meter: read the definition's metering source NAME on this serial device instead "
                   "of the definition's (a USB adapter, a pseudo-terminal); may be repeated")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=_port, default=4059, help="TCP wrapper port (default 4059; 0: any free port; off: none)")
    s.add_argument("--hdlc-port", type=_port, default=4060, help="HDLC over TCP port (default 4060; 0: any; off: none)")
    s.add_argument("--serial", metavar="DEVICE", help="also serve HDLC on this serial port (pyserial)")
    s.add_argument("--baud", type=int, default=9600, help="serial baud rate (default 9600)")
    s.add_argument("--pty", action="store_true", help="also serve HDLC on a new pseudo-terminal (prints its path)")
    s.add_argument("--pty-link", metavar="PATH", help="with --pty: make PATH a symlink to the pseudo-terminal "
                   "(only where nothing is: an existing file or link is never replaced)")
    s.add_argument("--max-connections", type=int, metavar="N", help="TCP connections served at once per port; "
                   "more are closed at accept (default 64, less under a low file limit)")
    s.add_argument("--idle-timeout", type=_positive(0.0), default=120.0, metavar="S",
                   help="close a TCP connection the meter has answered nothing on for S seconds, counted from "
                   "accept (default 120; 0: never)")
    s.add_argument("--data", metavar="DIR", help="directory for persistent state (default %s)" % storage.default_dir())
    s.add_argument(
        "--keys",
        metavar="FILE",
        help="suite 0 keys from this JSON file instead of the demo keys; they replace keys stored in the "
        "data directory (see below)",
    )
    s.add_argument(
        "--accelerate",
        type=_positive(1.0),
        default=1.0,
        metavar="N",
        help="run the meter's clock and simulation N times as fast as real time, so profiles fill quickly "
        "(e.g. 900: a 15-minute load-profile row every second; default 1)",
    )
    s.add_argument(
        "--history",
        type=_positive(0.0),
        default=0.0,
        metavar="DAYS",
        help="on a first start (empty load profile), backfill DAYS of simulated operation before now: "
        "registers, load/power-quality/billing profiles and events (default 0)",
    )
    s.add_argument("--seed", type=int, metavar="N",
                   help="seed of the simulated household load (the same seed gives the same consumption; default: "
                   "random)")
    s.add_argument("--start", type=_start_time, metavar="TIME",
                   help="the meter's clock starts at TIME (ISO 8601, e.g. 2026-01-01T00:00:00Z) instead of now; it "
                   "runs on from there (with --history, the backfill ends there)")
    s.add_argument(
        "--prepaid",
        action="store_true",
        help="a new meter's account starts in prepayment mode (credit is deducted, the relay opens when it runs "
        "out; top up with `dlms-micro token`); else credit mode until a head-end switches it",
    )
    s.add_argument(
        "--push-to",
        type=_push_to,
        metavar="HOST:PORT",
        default="",
        help="send the push setup's DataNotifications (every 15 minutes of meter time, ciphered per the security "
        "policy) to this TCP address, e.g. 127.0.0.1:4061 where `dlms-micro listen` prints them (default: none "
        "until a head-end sets the destination)",
    )
    s.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="debug also logs every frame in hex (default info)",
    )
    from dlms_micro_cpython import push as push_port

    push_port.add_listen_parser(sub)
    from dlms_micro_cpython.meterdef import cli as meter_cli

    meter_cli.add_parser(sub)
    from dlms_micro_cpython import decode as decode_cmd

    decode_cmd.add_parser(sub)
    from dlms_micro_cpython import fleet_cli

    fleet_cli.add_parser(sub)
    t = sub.add_parser(
        "token",
        help="make a demo top-up token",
        description="Print a top-up token for the demo meter's Token gateway 0.0.19.40.0.255 (method 1 enter, "
        "an octet-string): the demo format (version 1, token id, amount in cents, HMAC-SHA256 under the "
        "demo-only token key, 8 bytes). Each token id is accepted once.",
    )
    t.add_argument("--id", type=int, required=True, help="token id, 1..4294967295 (unique per top-up)")
    t.add_argument("--amount", type=int, required=True, help="credit in cents, 1..2147483647")
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return serve(args)
    if args.command == "token":
        return token(args)
    if args.command == "meter":
        from dlms_micro_cpython.meterdef import cli as meter_cli

        return meter_cli.run(args)
    if args.command == "decode":
        from dlms_micro_cpython import decode as decode_cmd

        return decode_cmd.run(args)
    if args.command == "fleet":
        from dlms_micro_cpython import fleet_cli

        return fleet_cli.run(args)
    if args.command == "listen":
        from dlms_micro_cpython import push as push_port

        return push_port.run_listen(args)
    return 2


def token(args):
    from dlms_micro.cosem.token_gateway import make_token
    from dlms_micro_cpython.demo_control import DEMO_TOKEN_KEY

    try:
        t = make_token(DEMO_TOKEN_KEY, args.id, args.amount)
    except ValueError as e:
        print("dlms-micro token: %s" % e, file=sys.stderr)
        return 2
    print(t.hex().upper())
    return 0


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
    compiled = None
    if args.meter:
        from dlms_micro_cpython import meterdef

        report = []
        try:
            compiled = meterdef.load(args.meter, report, name=args.name, serial_number=args.serial_number,
                                     system_title=args.system_title)
        except meterdef.DefinitionError as e:
            print(str(e), file=sys.stderr)
            print("dlms-micro: %s does not define a meter; nothing served" % args.meter, file=sys.stderr)
            return 2
        for line in report:
            logger.warning("not imported from %s: %s", args.meter, line)
    elif args.name or args.serial_number or args.system_title or args.source:
        print("dlms-micro: --name, --serial-number, --system-title and --source need --meter FILE", file=sys.stderr)
        return 2
    source_devices = {}
    for text in args.source:
        name, eq, dev = text.partition("=")
        if not eq or not name or not dev:
            print("dlms-micro: --source %r: write NAME=DEVICE (e.g. bus=/dev/ttyUSB0)" % text, file=sys.stderr)
            return 2
        source_devices[name] = dev
    try:
        keys = keyfile.load(args.keys) if args.keys else None
    except keyfile.KeyFileError as e:
        print("dlms-micro: bad key file: %s" % e, file=sys.stderr)
        return 1
    try:
        # One process per data directory (storage.py): a second meter on it
        # would reuse the first one's invocation counters.
        store = storage.FileStorage(args.data, lock=True)
        # an unwritable directory would start a meter that cannot keep its
        # invocation counters: find out now
        store.put("dlms-micro.write-check", b"1")
        store.delete("dlms-micro.write-check")
    except storage.DataDirLocked as e:
        print("dlms-micro: %s" % e, file=sys.stderr)
        return 1
    except OSError as e:
        where = args.data or storage.default_dir()
        why = e.strerror or str(e)
        if isinstance(e, FileExistsError):
            why = "it is a file, not a directory"
        elif isinstance(e, NotADirectoryError):
            why = "a part of the path is a file, not a directory"
        print("dlms-micro: cannot keep the meter's state in --data %s: %s (give a directory this user can create "
              "and write)" % (where, why), file=sys.stderr)
        return 1
    wall_clock = None
    if args.start is not None:
        import time

        shift = args.start - int(time.time())

        def wall_clock():
            return int(time.time()) + shift

    try:
        from dlms_micro_cpython.gateway import SourcedMeter, needs_gateway

        if compiled is not None and needs_gateway(compiled):
            # metering sources, or one logical device per upstream meter
            demo = SourcedMeter(
                compiled,
                devices=source_devices,
                **_meter_options(args, store, wall_clock, keys, logger),
            )
        elif compiled is not None:
            from dlms_micro_cpython.simulator import SimulatedMeter

            if source_devices:
                print("dlms-micro: --source: %s has no sources" % args.meter, file=sys.stderr)
                return 2
            demo = SimulatedMeter(compiled, **_meter_options(args, store, wall_clock, keys, logger))
        else:
            demo = DemoMeter(**_meter_options(args, store, wall_clock, keys, logger))
    except ValueError as e:  # a stored key or counter record failed its checks
        if str(e).startswith("--source"):
            print("dlms-micro: %s" % e, file=sys.stderr)
            return 2
        print("dlms-micro: cannot load the security state in %s: %s" % (store.directory, e), file=sys.stderr)
        return 1
    svc = MeterService(
        demo,
        host=args.host,
        wrapper_port=args.port,
        hdlc_port=args.hdlc_port,
        serial=args.serial,
        baudrate=args.baud,
        pty=args.pty,
        pty_link=args.pty_link,
        max_connections=args.max_connections,
        idle_timeout=args.idle_timeout,
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
    what = "meter %s from %s" % (compiled.NAME.decode(errors="replace"), args.meter) if compiled else "demo meter"
    la = getattr(demo, "logical_address", 1)
    print("dlms-micro %s (HDLC logical %d physical %d; wrapper wPort %d; data %s)"
          % (what, la, getattr(demo, "physical_address", 17), la, store.directory), flush=True)
    print(_security_text(demo, args.keys), flush=True)
    if args.start is not None:
        import datetime

        print("the meter's clock started at %s" % datetime.datetime.fromtimestamp(
            args.start, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), flush=True)
    if args.accelerate != 1:
        print("simulated time runs %g times as fast as real time" % args.accelerate, flush=True)
    for kind, where in svc.endpoints:
        print("listening: %s %s" % (kind, where), flush=True)
    for name, kind, device, baud, _parity in getattr(demo, "infos", ()):
        print("source %s: %s on %s" % (name, kind, device if kind != "s0" else "(pulses: a board's GPIO)"),
              flush=True)
    for s in getattr(demo, "sims", ())[1:]:
        print("logical device %d (%s): HDLC upper address / wrapper wPort %d" % (
            s.logical_address, s.compiled.DEVICES[s.device][1].decode(errors="replace"),
            s.logical_address), flush=True)
    if not svc.endpoints:
        print("dlms-micro: nothing to serve (every transport is off)", file=sys.stderr)
    else:
        print("Ctrl-C stops it.", flush=True)
        await stop.wait()
    await svc.stop()
    print("dlms-micro: stopped", flush=True)
    return 0


def _security_text(demo, key_file):
    # What the management association (SAP 1) needs to know: the system
    # title and policy always; the keys only when they are the demo ones.
    from dlms_micro_cpython import simulator as d

    k = demo.meter.keys
    head = "security suite 0 (SAP 1, HLS-GMAC): system title %s, policy 0x%02X" % (k.system_title.hex().upper(), k.policy)
    if demo.uses_demo_keys:
        return "%s\n  DEMO-ONLY keys (public, never use them in a real meter): EK %s AK %s KEK %s" % (
            head,
            d.DEMO_EK.hex().upper(),
            d.DEMO_AK.hex().upper(),
            d.DEMO_KEK.hex().upper(),
        )
    if key_file:
        return "%s\n  keys from %s" % (head, key_file)
    return "%s\n  keys stored in the data directory (changed by key_transfer)" % head


def _meter_options(args, store, wall_clock, keys, logger):
    # what every served meter takes from the command line
    return dict(storage=store, seed=args.seed, wall_clock=wall_clock, log=lambda msg: logger.info("meter: %s", msg),
                keys=keys, accelerate=args.accelerate, history=args.history, push_destination=args.push_to.encode(),
                prepaid=args.prepaid)


if __name__ == "__main__":
    sys.exit(main())
