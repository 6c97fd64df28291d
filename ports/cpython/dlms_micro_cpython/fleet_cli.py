# `dlms-micro fleet`: serve a fleet of distinct simulated meters
# (fleet.py), and `dlms-micro fleet keys --index I`: one meter's keys.
#
#   dlms-micro fleet [--meter FILE] [--count N] [--first-index F] [--seed S]
#                    [--host H] [--port BASE|off] [--hdlc-port BASE|off]
#                    [--shared-hdlc-port P|off] [--data DIR] [--keys FILE]
#                    [--fault SPEC ...] [--faults FILE] [--workers K]
#                    [--max-connections N] [--idle-timeout S] [--log-level L]
#   dlms-micro fleet keys --index I [--meter FILE] [--keys FILE]
#   dlms-micro fleet fault --faults FILE add|remove|clear|list [SPEC ...]
#
# Bad input (a count or port that does not fit, a definition that does not
# compile, a fault that does not parse): one line on stderr, exit code 2.

import argparse
import json
import logging
import os
import signal
import sys

from dlms_micro_cpython import storage

DEFAULT_WRAPPER_BASE = 20000
DEFAULT_SHARED_HDLC = 4060


class BadInput(Exception):
    """One line for stderr; exit code 2."""


class CannotStart(Exception):
    """One line for stderr; exit code 1 (as serve: the data directory is
    another process's, a port is taken)."""


def _port(text):
    if text.lower() in ("off", "none", "-"):
        return None
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a port: %r" % text) from None
    if not 0 <= v <= 65535:
        raise argparse.ArgumentTypeError("a port is 0..65535, or 'off'")
    return v


def _int_at_least(least):
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("not a whole number: %r" % text) from None
        if v < least:
            raise argparse.ArgumentTypeError("must be %d or more" % least)
        return v

    return parse


def add_parser(sub):
    """Add `fleet` (and `fleet keys`) to the dlms-micro subcommands."""
    p = sub.add_parser(
        "fleet",
        help="serve a fleet of distinct simulated meters",
        description="Serve COUNT distinct simulated meters of one definition in one process (or --workers "
        "processes): meter i (from 0) has its own name, serial number, system title, suite 0 keys (derived "
        "from the master key of --keys), invocation counters, clock and consumption. Meter i's TCP wrapper "
        "is on port BASE + i (--port), its HDLC over TCP on --hdlc-port BASE + i, and every meter answers on "
        "the shared HDLC port (--shared-hdlc-port) at physical address 16 + i. docs/fleet.md says more.",
        epilog='Key file (--keys): JSON {"master": "<32 to 128 hex digits>"}; meter i\'s key K is '
        'HMAC-SHA256(master, "dlms-micro fleet" || system title || label)[:16], label "EK", "AK" or "KEK". '
        "Suite 1/2 signing keys and suite 2 keys: the same KDF (docs/fleet.md). "
        "Without --keys the demo-only master key 464C4545542D44454D4F2D4F4E4C5921 (public). Faults: "
        "KIND[=VALUE]@TARGET, KIND one of latency=MS, silent, drop=P, corrupt=P, refuse, wrong-ic, "
        "image-fail, drift=S_PER_HOUR, source-fail; TARGET an index, a-b, a list a,b,c, N%% or all.",
    )
    p.add_argument("--meter", metavar="FILE", help="meter definition (JSON) or Gurux object collection (XML) "
                   "(default: the demo meter's definition)")
    p.add_argument("--count", type=int, default=10, help="meters in the fleet (default 10)")
    p.add_argument("--first-index", type=int, default=0, metavar="F",
                   help="this process (or machine) serves meters F .. F + COUNT - 1; their ports are still "
                   "BASE + i - F, their identities and keys those of index i (default 0)")
    p.add_argument("--seed", type=int, default=0, help="the fleet's seed: consumption, clocks (default 0)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=DEFAULT_WRAPPER_BASE, metavar="BASE",
                   help="meter i's TCP wrapper on port BASE + i (default %d; off: none)" % DEFAULT_WRAPPER_BASE)
    p.add_argument("--hdlc-port", type=_port, default=None, metavar="BASE",
                   help="meter i's HDLC over TCP on port BASE + i (default off)")
    p.add_argument("--shared-hdlc-port", type=_port, default=DEFAULT_SHARED_HDLC, metavar="P",
                   help="one HDLC over TCP port for every meter, meter i at physical address 16 + i "
                   "(default %d; off: none)" % DEFAULT_SHARED_HDLC)
    p.add_argument("--data", metavar="DIR", help="the fleet's data directory, meter i's state in DIR/m<i> (default "
                   "%s; 'none': RAM only)" % default_data_dir())
    p.add_argument("--keys", metavar="FILE", help='the fleet\'s master key: JSON {"master": "<hex>"}, and for '
                   'suite 1/2 associations optionally "client_signing_keys" and "ca_certificate" as in serve\'s key '
                   'file')
    p.add_argument("--fault", action="append", default=[], metavar="SPEC",
                   help="a fault, KIND[=VALUE]@TARGET (may be repeated; see below)")
    p.add_argument("--faults", metavar="FILE", help='faults from a JSON file {"faults": [SPEC, ...]}, re-read '
                   "whenever it changes (faults at run time)")
    p.add_argument("--workers", type=int, default=1, metavar="K",
                   help="spread the meters over K processes (one per core); addresses do not change")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # "w/K/CONTROL": one worker of --workers K
    p.add_argument("--max-connections", type=_int_at_least(1), metavar="N",
                   help="TCP connections served at once by the fleet (default: from the file limit, at most 4096)")
    p.add_argument("--idle-timeout", type=float, default=120.0, metavar="S",
                   help="close a connection answered nothing for S seconds (default 120; 0: never)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    ks = p.add_subparsers(dest="fleet_command")
    k = ks.add_parser("keys", help="print one meter's identity and keys",
                      description="Print meter I's identity and keys (JSON) as the fleet derives them: suite 0 EK, AK, "
                                  "KEK and, when the definition has suite 1/2 associations, the meter's public "
                                  "signing key per suite (x || y) and suite 2's EK, AK.")
    k.add_argument("--index", type=_int_at_least(0), required=True, metavar="I")
    k.add_argument("--meter", metavar="FILE", dest="keys_meter", help="the fleet's definition (default: the demo's)")
    k.add_argument("--keys", metavar="FILE", dest="keys_file", help="the fleet's master key file")
    f = ks.add_parser("fault", help="change a running fleet's faults (its --faults file)",
                      description="Change the faults of a running fleet: edits the JSON file it watches "
                      "(--faults FILE of the fleet), which every process of the fleet re-reads within a "
                      "second. Prints the faults in force after the change.")
    f.add_argument("--faults", required=True, metavar="FILE", dest="faults_file",
                   help="the file the fleet was started with (--faults FILE)")
    f.add_argument("action", choices=("add", "remove", "clear", "list"))
    f.add_argument("specs", nargs="*", metavar="SPEC", help="KIND[=VALUE]@TARGET (add, remove)")
    return p


def default_data_dir():
    return storage.default_dir() + "-fleet"


def load_key_file(path):
    """A fleet key file: {"master": hex} and, for suite 1/2 associations,
    optionally "client_signing_keys" and "ca_certificate" as in a meter's
    key file (keyfile.py) -> {"master": bytes, "client_signing_keys":
    {title: x || y}, "ca_certificate": PEM, DER or None}; the demo-only
    master and nothing else without a file. BadInput."""
    from dlms_micro_cpython import keyfile
    from dlms_micro_cpython.fleet import DEMO_MASTER

    out = {"master": DEMO_MASTER, "client_signing_keys": {}, "ca_certificate": None}
    if not path:
        return out
    try:
        with open(path, "r", encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise BadInput("--keys %s: cannot read it: %s" % (path, e.strerror or e)) from None
    except ValueError as e:
        raise BadInput("--keys %s: not JSON: %s" % (path, e)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("master"), str) or \
            not set(doc) <= {"master", "client_signing_keys", "ca_certificate"}:
        raise BadInput('--keys %s: write {"master": "<32 to 128 hex digits>"} (and optionally '
                       '"client_signing_keys", "ca_certificate")' % path)
    try:
        m = bytes.fromhex(doc["master"].replace(" ", "").replace(":", ""))
    except ValueError:
        raise BadInput("--keys %s: master: not a hex string" % path) from None
    if not 16 <= len(m) <= 64:
        raise BadInput("--keys %s: master: 16 to 64 bytes needed, %d given" % (path, len(m)))
    out["master"] = m
    try:
        if "client_signing_keys" in doc:
            out["client_signing_keys"] = keyfile.client_public_keys(doc["client_signing_keys"])
        if "ca_certificate" in doc:
            out["ca_certificate"] = keyfile.ca_certificate(doc["ca_certificate"])
    except keyfile.KeyFileError as e:
        raise BadInput("--keys %s: %s" % (path, e)) from None
    return out


def load_master(path):
    """The master key of a fleet key file; BadInput."""
    return load_key_file(path)["master"]


def load_definition(path):
    """The compiled definition (the demo's when path is None); BadInput
    naming the first fault."""
    from dlms_micro_cpython import meterdef

    if path is None:
        from dlms_micro_cpython.demo import DEFINITION

        path = DEFINITION
    try:
        compiled = meterdef.load(path, [])
    except meterdef.DefinitionError as e:
        more = " (and %d more faults)" % (len(e.errors) - 1) if len(e.errors) > 1 else ""
        raise BadInput("%s does not define a meter: %s%s" % (path, e.errors[0] if e.errors else e, more)) from None
    except OSError as e:
        raise BadInput("--meter %s: cannot read it: %s" % (path, e.strerror or e)) from None
    if getattr(compiled, "SOURCES", None) or len(compiled.DEVICES) != 1:
        raise BadInput("%s: a fleet serves definitions of one logical device without metering sources" % path)
    return compiled


def check_addresses(args):
    """BadInput when the count or the ports do not fit."""
    from dlms_micro_cpython.fleet import max_count

    n = args.count
    if n < 1:
        raise BadInput("--count %d: a fleet has 1 meter or more" % n)
    if args.first_index < 0:
        raise BadInput("--first-index %d: indices count from 0" % args.first_index)
    if args.workers < 1:
        raise BadInput("--workers %d: 1 or more" % args.workers)
    if args.first_index + n > max_count():
        raise BadInput("--count %d from index %d: a fleet holds meters 0..%d (physical addresses 16 + i up to "
                       "0x3FFD)" % (n, args.first_index, max_count() - 1))
    ranges = []
    for opt, base in (("--port", args.port), ("--hdlc-port", args.hdlc_port)):
        if base is None:
            continue
        if base == 0:
            raise BadInput("%s 0: a fleet needs a fixed base port (meter i on BASE + i)" % opt)
        if base + n - 1 > 65535:
            raise BadInput("%s %d with --count %d: the last meter would be on port %d; ports end at 65535"
                           % (opt, base, n, base + n - 1))
        ranges.append((opt, base, base + n - 1))
    if args.shared_hdlc_port is not None:
        ranges.append(("--shared-hdlc-port", args.shared_hdlc_port, args.shared_hdlc_port))
    if not ranges:
        raise BadInput("every transport is off: give --port, --hdlc-port or --shared-hdlc-port")
    for a in range(len(ranges)):
        for b in range(a + 1, len(ranges)):
            (oa, la, ha), (ob, lb, hb) = ranges[a], ranges[b]
            if la <= hb and lb <= ha and not (la == 0 or lb == 0):
                raise BadInput("%s (ports %d-%d) and %s (ports %d-%d) overlap" % (oa, la, ha, ob, lb, hb))
    if args.workers > n:
        raise BadInput("--workers %d for %d meters: at most one worker per meter" % (args.workers, n))


def parse_faults(args, faults):
    from dlms_micro_cpython import fleet_faults

    for spec in args.fault:
        try:
            faults.add(fleet_faults.parse(spec))
        except ValueError as e:
            raise BadInput("--fault: %s" % e) from None
    if args.faults:
        if os.path.exists(args.faults):
            try:
                fleet_faults.load_file(args.faults)
            except ValueError as e:
                raise BadInput("--faults %s: %s" % (args.faults, e)) from None
        faults.watch(args.faults)


def run(args):
    """The `fleet` subcommand; its exit code."""
    try:
        if args.fleet_command == "keys":
            return keys_command(args)
        if args.fleet_command == "fault":
            return fault_command(args)
        return serve_fleet(args)
    except BadInput as e:
        print("dlms-micro fleet: %s" % e, file=sys.stderr)
        return 2
    except CannotStart as e:
        print("dlms-micro fleet: %s" % e, file=sys.stderr)
        return 1


def fault_command(args):
    """`fleet fault add|remove|clear|list SPEC...`: the watched faults file
    rewritten atomically (a fleet never reads half a file). The file is the
    control interface: the fleet's workers each watch it, so one write
    reaches every process, and it stays what the faults are after a
    restart."""
    from dlms_micro_cpython import fleet_faults

    path = args.faults_file
    if args.action in ("add", "remove") and not args.specs:
        raise BadInput("fault %s: give one or more SPEC (KIND[=VALUE]@TARGET)" % args.action)
    if args.action in ("clear", "list") and args.specs:
        raise BadInput("fault %s takes no SPEC" % args.action)
    specs = []
    if os.path.exists(path):
        try:
            specs = [f.spec for f in fleet_faults.load_file(path)]
        except ValueError as e:
            raise BadInput("--faults %s: %s" % (path, e)) from None
    for spec in args.specs:
        try:
            fleet_faults.parse(spec)
        except ValueError as e:
            raise BadInput("fault %s: %s" % (args.action, e)) from None
    if args.action == "add":
        specs += [x for x in args.specs if x not in specs]
    elif args.action == "remove":
        missing = [x for x in args.specs if x not in specs]
        if missing:
            raise BadInput("fault remove: not in force: %s (in force: %s)" % (
                ", ".join(missing), ", ".join(specs) or "none"))
        specs = [x for x in specs if x not in args.specs]
    elif args.action == "clear":
        specs = []
    if args.action != "list":
        tmp = "%s.%d.tmp" % (path, os.getpid())
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"faults": specs}, fh)
                fh.write("\n")
            os.replace(tmp, path)
        except OSError as e:
            raise BadInput("--faults %s: cannot write it: %s" % (path, e.strerror or e)) from None
    print("faults in force: %s" % (", ".join(specs) or "none"))
    return 0


def keys_command(args):
    from dlms_micro_cpython.fleet import fleet_keys, identity, max_count

    compiled = load_definition(args.keys_meter)
    master = load_master(args.keys_file)
    if args.index >= max_count():
        raise BadInput("--index %d: a fleet holds meters 0..%d" % (args.index, max_count() - 1))
    ident = identity(compiled, args.index)
    from dlms_micro.security import ecc
    from dlms_micro_cpython import signing

    k = fleet_keys(master, ident.system_title, signing.suites_of(compiled))
    out = {
        "index": args.index,
        "name": ident.name.decode("latin-1"),
        "serial_number": ident.serial_number.decode("latin-1"),
        "system_title": ident.system_title.hex().upper(),
        "physical_address": ident.physical,
        "ek": k["ek"].hex().upper(),
        "ak": k["ak"].hex().upper(),
        "kek": k["kek"].hex().upper(),
    }
    # suites 1/2: what a head-end checks the meter's f(CtoS) with (the
    # private keys stay in the fleet; the KDF gives them from the master)
    for s, d in sorted(k.get("signing_keys", {}).items()):
        out["signing_public_key_suite%d" % s] = ecc.public_key(ecc.for_suite(s), d).hex().upper()
    for name in ("suite2_ek", "suite2_ak"):
        if name in k:
            out[name] = k[name].hex().upper()
    print(json.dumps(out, indent=1))
    return 0


def serve_fleet(args):
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from dlms_micro_cpython import fleet_faults

    check_addresses(args)
    compiled = load_definition(args.meter)
    master = load_master(args.keys)
    logger = logging.getLogger("dlms_micro.fleet")
    faults = fleet_faults.Faults(args.seed, log=logger.warning)
    parse_faults(args, faults)
    if args.worker:
        return _run_worker(args, compiled, master, faults, logger)
    if args.workers > 1:
        from dlms_micro_cpython import fleet_workers

        store = _open_data(args)
        return fleet_workers.supervise(args, store, logger)
    store = _open_data(args)
    try:
        return _serve(args, compiled, master, faults, store, logger, args.first_index, args.count)
    except KeyboardInterrupt:
        return 0


def _open_data(args):
    if args.data is not None and args.data.lower() == "none":
        return None
    where = args.data or default_data_dir()
    try:
        store = storage.FileStorage(where, lock=True)
        store.put("dlms-micro.write-check", b"1")
        store.delete("dlms-micro.write-check")
        return store
    except storage.DataDirLocked as e:
        raise CannotStart(str(e)) from None
    except OSError as e:
        raise CannotStart("cannot keep the fleet's state in --data %s: %s" % (where, e.strerror or e)) from None


def _run_worker(args, compiled, master, faults, logger):
    # one worker of --workers K (started by fleet_workers.supervise)
    from dlms_micro_cpython.fleet_workers import slice_of

    w, k, _control = args.worker.split("/", 2)
    w, k = int(w), int(k)
    lo, hi = slice_of(args.first_index, args.count, w, k)
    store = None
    if args.data is not None and args.data.lower() != "none":
        store = storage.FileStorage(args.data)  # the supervisor holds the lock
    try:
        return _serve(args, compiled, master, faults, store, logger, lo, hi - lo, worker=w)
    except KeyboardInterrupt:
        return 0


def _serve(args, compiled, master, faults, store, logger, lo, n, worker=None):
    from dlms_micro_cpython.fleet import Fleet
    from dlms_micro_cpython.fleet_net import FleetNet, raise_file_limit

    kf = load_key_file(args.keys)
    fleet = Fleet(compiled, args.count, args.first_index, storage=store, master=master, seed=args.seed,
                  faults=faults, log=lambda msg: logger.info("%s", msg),
                  client_signing_keys=kf["client_signing_keys"], ca_certificate=kf["ca_certificate"])
    per_meter = (args.port is not None) + (args.hdlc_port is not None)
    raise_file_limit(n * per_meter + 1024)
    shared = args.shared_hdlc_port
    if worker is not None:
        shared = None  # the supervisor routes the shared port (fleet_workers)
    net = FleetNet(fleet, args.host, args.port, args.hdlc_port, shared, indices=range(lo, lo + n),
                   max_connections=args.max_connections, idle_timeout=args.idle_timeout, logger=logger)
    try:
        net.start()
    except OSError as e:
        print("dlms-micro fleet: cannot start: %s" % e, file=sys.stderr)
        return 1
    if worker is not None:
        from dlms_micro_cpython import fleet_workers

        fleet_workers.worker_started(net, args, worker)
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, lambda _sig, _frame: net.request_stop())
        except (ValueError, OSError):
            pass  # not the main thread: the caller stops it
    if worker is None:
        name = compiled.NAME.decode(errors="replace")
        print("dlms-micro fleet: %d meters of %s (definition %s), indices %d..%d, data %s" % (
            n, name, args.meter or "the demo's", lo, lo + n - 1, store.directory if store else "RAM only"),
            flush=True)
        print("keys: meter i's own, HMAC-SHA256 of the %s master key (`dlms-micro fleet keys --index I` prints "
              "them)" % ("--keys" if args.keys else "DEMO-ONLY (public)"), flush=True)
        for kind, where in net.endpoints:
            print("listening: %s %s" % (kind, where), flush=True)
        print("Ctrl-C stops it.", flush=True)
    net.run()  # until SIGINT / SIGTERM
    fleet.power_down()
    if worker is None:
        print("dlms-micro fleet: stopped", flush=True)
    return 0
