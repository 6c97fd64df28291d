"""Write a board's security suite 0 keys and system title over mpremote.

    python tools/provision.py PORT --save keys/METER.json        # new keys (os.urandom)
    python tools/provision.py PORT --keys keys/METER.json        # keys from a key file
    python tools/provision.py PORT --keys FILE --force           # replace the board's keys
    python tools/provision.py PORT --keys FILE --force --wifi-ssid NET --wifi-password-file PWFILE

PORT is what `mpremote connect` takes (/dev/ttyUSB0, auto, u0...). The keys
go into the board's storage directory (--storage, default /data: the board
file's "storage") as the records the board's key store reads at boot
(dlms_micro_mp.keyring): "sec.keys" (EK, AK and KEK, the security policy,
CRC-checked) and "sec.title" (the server system title); a key file's
security suite 1/2 members too (signing_keys, client_signing_keys,
agreement_keys, client_agreement_keys, ca_certificate: "sec.sign1"/"sec.sign2",
"sec.clients1"/"sec.clients2", "sec.agree1"/"sec.agree2",
"sec.kaclients1"/"sec.kaclients2", "sec.ca", as dlms_micro_mp.certstore
reads them), and its token_key (the prepayment Token gateway's key:
"token.key", as dlms_micro_mp.apps reads it).

Generated keys (no --keys): EK, AK and KEK from os.urandom, the system title
the manufacturer id (--manufacturer, default DMI) and 5 random bytes; they
are written to the --save key file (mode 0600, never over an existing file)
first, as the head-end needs them, then to the board. A key file is JSON as
`dlms-micro serve --keys` reads it (ek, ak, kek, optional system_title).

Keys are never printed, never on a command line (mpremote copies them from
a private temporary folder, which is removed) and never in an error. A board
that holds keys already is refused unless --force: then its key record and
its receive counters (which belong to the old keys) are replaced; the
transmit invocation counter stays, as it must never repeat.
The board's meter reads the keys at its next boot (mpremote reset).
--wifi-ssid also writes the Wi-Fi credentials ("net.wifi", the password read
from a file) that a board with "network": {"kind": "wifi"} joins with
(dlms_micro_mp.net); they never go into a meter definition or board file.
"""

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for p in (REPO, os.path.join(REPO, "ports", "micropython"), os.path.join(REPO, "ports", "cpython")):
    if p not in sys.path:
        sys.path.insert(0, p)

POLICIES = {"authenticated": 0x24, "encrypted": 0x48, "authenticated-encrypted": 0x6C}


class ProvisionError(Exception):
    pass


def _deploy():
    # tools/deploy.py, loaded by path (tools/ is not a package)
    if "deploy" not in sys.modules:
        spec = importlib.util.spec_from_file_location("deploy", os.path.join(REPO, "tools", "deploy.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules["deploy"] = mod
        spec.loader.exec_module(mod)
    return sys.modules["deploy"]


def records(ek, ak, kek, title, policy):
    """The files to write into the board's storage: {name: bytes}, each in
    the board's record format (dlms_micro_mp.storage.encode_record)."""
    from dlms_micro_cpython.simulator import MemoryStorage
    from dlms_micro_mp import keyring
    from dlms_micro_mp.storage import encode_record

    store = MemoryStorage()
    keyring.provision(store, title, ek, ak, kek, policy)
    return {name: bytes(encode_record(store.get(name))) for name in ("sec.keys", "sec.title")}


def suite12_records(k):
    """A key file's security suite 1/2 members (signing_keys,
    client_signing_keys, ca_certificate; keyfile.parse's values) as the
    records a board's dlms_micro_mp.certstore reads: {name: bytes}, in the
    board's record format; {} when the key file has none."""
    from dlms_micro_cpython.simulator import MemoryStorage
    from dlms_micro_mp import certstore
    from dlms_micro_mp.storage import encode_record

    from dlms_micro.security import ecc, x509

    ca = k.get("ca_certificate")
    if isinstance(ca, str):  # PEM
        from cryptography.hazmat.primitives import serialization

        from dlms_micro_cpython import certs

        ca = certs.load_ca(ca).public_bytes(serialization.Encoding.DER)
    sk = k.get("signing_keys") or {}
    ak = k.get("agreement_keys") or {}
    store = MemoryStorage()
    names = []
    for suite in (1, 2):
        size = 2 * ecc.for_suite(suite).size
        clients = {t: p for t, p in (k.get("client_signing_keys") or {}).items() if len(p) == size}
        ka_clients = {t: p for t, p in (k.get("client_agreement_keys") or {}).items() if len(p) == size}
        if suite in sk or clients or suite in ak or ka_clients:
            try:
                certstore.provision(store, suite, sk.get(suite), clients or None, None, ak.get(suite),
                                    ka_clients or None)
            except (ValueError, ecc.EccError) as e:  # messages name no key
                raise ProvisionError("suite %d keys: %s" % (suite, e)) from None
            names += [n % suite for n in (certstore.STORE_SIGNING, certstore.STORE_CLIENTS,
                                          certstore.STORE_AGREEMENT, certstore.STORE_AGREEMENT_CLIENTS)]
    if ca is not None:
        try:
            certstore.provision(store, 1, None, None, ca)
        except x509.X509Error as e:
            raise ProvisionError("ca_certificate: %s" % e) from None
        names.append(certstore.STORE_CA)
    return {n: bytes(encode_record(store.get(n))) for n in names if store.get(n) is not None}


def token_records(k):
    """A key file's token_key (16 bytes) as the "token.key" record a
    board's dlms_micro_mp.apps reads (its Token gateway's key): {name:
    bytes}; {} when the key file has none."""
    from dlms_micro_mp import apps
    from dlms_micro_mp.storage import encode_record

    key = k.get("token_key")
    return {apps.KEY_TOKEN: bytes(encode_record(key))} if key is not None else {}


def wifi_file(ssid, password_file):
    """The net.wifi record (dlms_micro_mp.net) in the board's record format."""
    from dlms_micro_mp import net
    from dlms_micro_mp.storage import encode_record

    if not password_file:
        raise ProvisionError("--wifi-ssid needs --wifi-password-file")
    try:
        with open(password_file) as f:
            password = f.readline().rstrip("\r\n")
    except OSError as e:
        raise ProvisionError("cannot read %s: %s" % (password_file, e.strerror)) from None
    try:
        return bytes(encode_record(net.wifi_record(ssid, password)))
    except ValueError as e:
        raise ProvisionError("Wi-Fi: %s" % e) from None


def new_keys(manufacturer):
    if len(manufacturer) != 3 or not manufacturer.isalpha():
        raise ProvisionError("--manufacturer: three letters (the FLAG id), e.g. DMI")
    return (os.urandom(16), os.urandom(16), os.urandom(16), manufacturer.upper().encode() + os.urandom(5))


def save_key_file(path, ek, ak, kek, title):
    """Write a key file readable by its owner only; never over a file."""
    doc = {"ek": ek.hex().upper(), "ak": ak.hex().upper(), "kek": kek.hex().upper(),
           "system_title": title.hex().upper()}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ProvisionError("%s exists: not overwriting a key file" % path) from None
    except OSError as e:
        raise ProvisionError("cannot write %s: %s" % (path, e.strerror)) from None
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def read_key_file(path, whole=False):
    # (ek, ak, kek, system title); whole: keyfile.parse's dict
    from dlms_micro_cpython import keyfile

    try:
        with open(path) as f:
            k = keyfile.parse(f.read())
    except OSError as e:
        raise ProvisionError("cannot read %s: %s" % (path, e.strerror)) from None
    except keyfile.KeyFileError as e:
        raise ProvisionError("%s: %s" % (path, e)) from None
    if whole:
        return k
    return k["ek"], k["ak"], k["kek"], k.get("system_title")


class Mpremote:
    """The board over mpremote: one command per step, so a failure says which."""

    def __init__(self, tool, port, storage):
        self.tool = tool
        self.port = port
        self.storage = storage.rstrip("/") or "/"

    def run(self, *args, check=True):
        cmd = [self.tool, "connect", self.port] + list(args)
        print("+ " + shlex.join(["mpremote", "connect", self.port] + list(args)), flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if check and proc.returncode != 0:
            err = (proc.stderr or proc.stdout).strip()
            if "failed to access" in err or "no device found" in err:
                raise ProvisionError("no board connected at %s: %s" % (self.port, err))
            raise ProvisionError("mpremote failed (exit %d): %s" % (proc.returncode, err))
        return proc.stdout

    def path(self, name):
        return self.storage + "/" + name

    def has_keys(self):
        # a key record (whole or torn) in either of the storage's copies
        names = [self.path("sec.keys"), self.path("sec.keys.new")]
        code = ("import os\nn = 0\nfor p in %s:\n    try:\n        os.stat(p)\n        n += 1\n"
                "    except OSError:\n        pass\nprint('KEYS' if n else 'NONE')" % json.dumps(names))
        out = self.run("exec", code)
        if "KEYS" in out:
            return True
        if "NONE" in out:
            return False
        raise ProvisionError("unexpected answer from the board: %r" % out.strip()[:200])

    def write(self, files, force):
        # mkdir (may exist), copy each record as NAME.new, then rename it
        # over NAME (atomic on LittleFS; FlashStorage reads a whole NAME.new
        # first anyway, so a cut before the rename loses nothing)
        self.run("exec", "import os\ntry:\n    os.mkdir(%s)\nexcept OSError:\n    pass" % json.dumps(self.storage))
        drop = [self.path(n) for n in ("sec.rx", "sec.rx.new")] if force else []
        for local in sorted(files):
            self.run("fs", "cp", files[local], ":" + self.path(local) + ".new")
        moves = [[self.path(n) + ".new", self.path(n)] for n in sorted(files)]
        code = ("import os\nfor p in %s:\n    try:\n        os.remove(p)\n    except OSError:\n        pass\n"
                "for a, b in %s:\n    try:\n        os.remove(b)\n    except OSError:\n        pass\n"
                "    os.rename(a, b)\nprint('OK')" % (json.dumps(drop), json.dumps(moves)))
        if "OK" not in self.run("exec", code):
            raise ProvisionError("the board did not confirm the records")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", metavar="PORT", help="serial device, auto, or u0/a0/c3...")
    ap.add_argument("--keys", metavar="FILE", help="key file to provision (default: generate new keys)")
    ap.add_argument("--save", metavar="FILE", help="where the generated keys go (required without --keys)")
    ap.add_argument("--manufacturer", default="DMI", help="first 3 bytes of a generated system title")
    ap.add_argument("--policy", default="authenticated-encrypted", choices=sorted(POLICIES),
                    help="Security setup security_policy stored with the keys")
    ap.add_argument("--storage", default="/data", help="the board's storage directory (default /data)")
    ap.add_argument("--force", action="store_true", help="replace keys the board holds already")
    ap.add_argument("--mpremote", help="the mpremote executable (default: the dev extras')")
    ap.add_argument("--wifi-ssid", help="also write the Wi-Fi credentials (net.wifi) for this network")
    ap.add_argument("--wifi-password-file", metavar="FILE",
                    help="file holding the Wi-Fi password (first line); never given on the command line")
    args = ap.parse_args(argv)
    tmp = None
    try:
        if args.keys and args.save:
            raise ProvisionError("--save is for generated keys; the key file of --keys is the record")
        if not args.keys and not args.save:
            raise ProvisionError("new keys need --save FILE (the head-end needs them; they are never printed)")
        d = _deploy()
        if not args.mpremote:
            d.check_board(None, args.port)
        tool = args.mpremote or d.find_mpremote()
        if args.keys:
            ek, ak, kek, title = read_key_file(args.keys)
            if title is None:
                raise ProvisionError("%s has no system_title: a board needs its own" % args.keys)
        else:
            ek, ak, kek, title = new_keys(args.manufacturer)
        board = Mpremote(tool, args.port, args.storage)
        if board.has_keys() and not args.force:
            raise ProvisionError("the board holds keys already (%s/sec.keys); --force replaces them"
                                 % board.storage)
        files = records(ek, ak, kek, title, POLICIES[args.policy])
        if args.keys:  # suites 1 and 2: signing and key agreement keys, clients, the trusted CA; token key
            whole = read_key_file(args.keys, whole=True)
            files.update(suite12_records(whole))
            files.update(token_records(whole))
        if args.wifi_ssid:
            files["net.wifi"] = wifi_file(args.wifi_ssid, args.wifi_password_file)
        if args.save:
            save_key_file(args.save, ek, ak, kek, title)
        tmp = tempfile.mkdtemp(prefix="dlms-provision-")  # mode 0700
        paths = {}
        for name, data in files.items():
            p = os.path.join(tmp, name)
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths[name] = p
        board.write(paths, args.force)
    except ProvisionError as e:
        print("provision: %s" % e, file=sys.stderr)
        return 1
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    print("provision: keys and system title written to %s on %s%s; reset the board to use them"
          % (args.storage, args.port, " (key file %s)" % args.save if args.save else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
