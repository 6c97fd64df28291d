# Power cuts of the real process (issue 18, item 3): `dlms-micro serve` on a
# data directory, ciphered traffic from gurux-dlms (management SAP 1,
# HLS-GMAC, security suite 0, the demo keys) and accelerated profile
# captures, SIGKILL at a random instant, restart on the same directory, and
# after every restart:
#   - it starts;
#   - the server's invocation counters never repeat (every counter of every
#     protected response, AARE included, is recorded across all runs);
#   - no client invocation counter is accepted twice: an AARQ the meter
#     accepted before the cut, replayed as it was, is refused after it; a
#     client that steps its counter by the meter's rx_reserve (32) gets in
#     (docs/security.md: the reservation a cut leaves unused);
#   - the energy registers (import, export, both tariff rates) never read
#     lower than any value served before the cut;
#   - no profile row served before the cut is lost or changed (the last
#     row read, by entry, reads the same), entries in use never drop;
#   - no token id or credit is lost: the last token accepted before the
#     cut is refused after it, and the credit never reads lower than before
#     the cut by more than consumption charges meanwhile (CREDIT_SLACK, a
#     fifth of a token's amount);
#   - the keys: the management association (the demo keys) works after
#     every restart.
#
#   python tools/bench_power_cuts.py [--cuts 200] [--seed N]
#
# tests/cpython/test_power_cuts.py runs it with 50 cuts in make test.

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]  # tools/: `import micropython` would find tools/micropython/
sys.path.insert(0, os.path.join(REPO, "tests", "interop"))
sys.path.insert(0, os.path.join(REPO, "ports", "cpython"))

ENERGIES = ("1.0.1.8.0.255", "1.0.2.8.0.255", "1.0.1.8.1.255", "1.0.1.8.2.255")
LOAD_PROFILE = "1.0.99.1.0.255"
TOKEN_GATEWAY = "0.0.19.40.0.255"
TOKEN_CREDIT = "0.0.19.10.0.255"
TOKEN_AMOUNT = 1000  # credit units a token brings
CREDIT_SLACK = 200  # what consumption may charge between the last read before a cut and the first after it
RX_RESERVE = 32
GLO_RESPONSES = (0xCC, 0xCD, 0xCF, 0xD4, 0xD5, 0xD7)


class Violation(AssertionError):
    pass


class Meter:
    # what GuruxPeer needs of a meter: its wrapper address and the head-end's counters
    def __init__(self, address):
        self.wrapper_address = address


def _exe():
    exe = os.path.join(os.path.dirname(sys.executable), "dlms-micro")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "dlms_micro_cpython"]


def start(data, log):
    proc = subprocess.Popen(_exe() + ["serve", "--host", "127.0.0.1", "--port", "0", "--hdlc-port", "off",
                                      "--data", data, "--accelerate", "900", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"listening: wrapper tcp ([\d.]+):(\d+)", line)
        if m:
            threading.Thread(target=_drain, args=(proc.stdout, log), daemon=True).start()
            return proc, (m.group(1), int(m.group(2)))
    proc.kill()
    proc.wait()
    raise Violation("the meter did not start after a cut:\n" + "".join(lines[-20:]))


def _drain(f, log):
    for line in f:
        log.append(line)


def wrapper_messages(stream):
    out = []
    p = 0
    while p + 8 <= len(stream):
        n = (stream[p + 6] << 8) | stream[p + 7]
        out.append(stream[p + 8 : p + 8 + n])
        p += 8 + n
    return out


def server_counters(apdu):
    # the invocation counters of the meter's protected response(s) in apdu
    t = apdu[0] if apdu else 0
    if t in GLO_RESPONSES or t == 0xDB:
        p = 1
        if t == 0xDB:
            p = 2 + apdu[1]
        n = apdu[p]
        p += 1 if n < 0x80 else 1 + (n & 0x7F)
        return [int.from_bytes(apdu[p + 1 : p + 5], "big")]
    if t == 0x61:  # AARE: user-information holds a glo-initiate-response (0x28)
        i = apdu.find(b"\xbe")
        while i >= 0:
            if i + 6 < len(apdu) and apdu[i + 2] == 0x04 and apdu[i + 4] == 0x28:
                q = i + 5
                n = apdu[q]
                q += 1 if n < 0x80 else 1 + (n & 0x7F)
                return [int.from_bytes(apdu[q + 1 : q + 5], "big")]
            i = apdu.find(b"\xbe", i + 1)
    return []


def accepted_aare(apdu):
    return apdu[:1] == b"\x61" and b"\xa2\x03\x02\x01\x00" in apdu


class Run:
    def __init__(self, seed, log=print):
        self.rng = random.Random(seed)
        self.say = log
        self.server_ics = []
        self.energy_max = {ln: 0 for ln in ENERGIES}
        self.entries_max = 0
        self.last_row = None  # (entry, row)
        self.next_ic = 1  # the head-end's next client invocation counter
        self.token_id = 1000
        self.token_after = None  # the last token accepted
        self.last_credit = None  # the token credit last served (a token accepted since included)
        self.accepted_aarq = None  # raw wrapper message of an AARQ accepted before the cut
        self.cuts = 0
        self.refused_replays = 0
        self.checks = 0
        self.meter_log = []

    # -------------------------------------------------------- one session
    def peer(self, address, ic):
        import interop_peers as P

        m = Meter(address)
        p = P.GuruxPeer(m, P.WRAPPER, sap=1, invocation_counter=ic)
        return p

    def note_counters(self, p):
        rx = b"".join(bytes.fromhex(h) for d, h in p.trace if d == "rx")
        for apdu in wrapper_messages(rx):
            self.server_ics.extend(server_counters(apdu))
        self.next_ic = max(self.next_ic, p.client.ciphering.invocationCounter)

    def read_state(self, p, before_cut):
        # energies, profile entries and last row, credit + paid
        from gurux_dlms.objects import GXDLMSCredit, GXDLMSProfileGeneric, GXDLMSRegister

        vals = {}
        for ln in ENERGIES:
            vals[ln] = int(p.read(GXDLMSRegister(ln), 2))
        pg = GXDLMSProfileGeneric(LOAD_PROFILE)
        p.read(pg, 3)
        entries = int(p.read(pg, 7))
        row = None
        if entries:
            rows = p.read_rows(pg, p.client.readRowsByEntry(pg, entries, entries))
            row = (entries, [repr(v) for v in rows[0]]) if rows else None
        credit = int(p.read(GXDLMSCredit(TOKEN_CREDIT), 2))
        return vals, entries, row, credit, pg

    def check_after_restart(self, address):
        # the first association after a restart: a counter stepped by the
        # reservation a cut may leave unused
        if self.accepted_aarq is not None:
            self.replay_refused(address, self.accepted_aarq)
        p = self.peer(address, self.next_ic + RX_RESERVE)
        try:
            p.connect()
            vals, entries, row, credit, pg = self.read_state(p, False)
            for ln in ENERGIES:
                if vals[ln] < self.energy_max[ln]:
                    raise Violation("energy %s reads %d after cut %d, %d was served before it"
                                    % (ln, vals[ln], self.cuts, self.energy_max[ln]))
            if entries < self.entries_max:
                raise Violation("load profile: %d entries after cut %d, %d before" % (entries, self.cuts,
                                                                                       self.entries_max))
            if self.last_row is not None:
                e, want = self.last_row
                rows = p.read_rows(pg, p.client.readRowsByEntry(pg, e, e))
                got = [repr(v) for v in rows[0]] if rows else None
                if got != want:
                    raise Violation("load profile row %d changed or lost by cut %d: %r -> %r" % (e, self.cuts,
                                                                                                 want, got))
            if self.token_after is not None:
                token = self.token_after
                if self.enter_token(p, token) == 0:
                    raise Violation("token accepted again after cut %d (its id was lost)" % self.cuts)
            if self.last_credit is not None and credit < self.last_credit - CREDIT_SLACK:
                # the credit drops only by what consumption charges (the
                # accelerated load around a restart: less than CREDIT_SLACK);
                # a lost token would take TOKEN_AMOUNT
                raise Violation("credit %d after cut %d, %d before it" % (credit, self.cuts, self.last_credit))
            self.checks += 1
            p.release()
        finally:
            self.note_counters(p)
            p.close()

    def replay_refused(self, address, message):
        import socket

        s = socket.create_connection(address, timeout=5)
        try:
            s.sendall(message)
            head = b""
            while len(head) < 8:
                c = s.recv(8 - len(head))
                if not c:
                    raise Violation("no answer to a replayed AARQ")
                head += c
            n = (head[6] << 8) | head[7]
            body = b""
            while len(body) < n:
                c = s.recv(n - len(body))
                if not c:
                    break
                body += c
        finally:
            s.close()
        if accepted_aare(body):
            raise Violation("an AARQ accepted before cut %d was accepted again after it (client counter replay)"
                            % self.cuts)
        self.refused_replays += 1
        self.server_ics.extend(server_counters(body))

    def enter_token(self, p, token):
        from gurux_dlms.enums import DataType
        from gurux_dlms.objects import GXDLMSTokenGateway

        import interop_peers as P

        gw = GXDLMSTokenGateway(TOKEN_GATEWAY)
        try:
            p.method(p.client.method(gw, 1, token, DataType.OCTET_STRING))
            return 0
        except P.GuruxError as e:
            return e.code

    def traffic(self, address, stop):
        # ciphered sessions until the cut: reads, a token now and then
        from dlms_micro.cosem.token_gateway import make_token
        from dlms_micro_cpython.demo_control import DEMO_TOKEN_KEY

        import interop_peers as P

        while not stop.is_set():
            p = self.peer(address, self.next_ic)
            try:
                p.connect()
                tx = [bytes.fromhex(h) for d, h in p.trace if d == "tx"]
                aarq = next((m for m in tx if m[8:9] == b"\x60"), None)
                if aarq is not None:
                    self.accepted_aarq = aarq
                for _ in range(3):
                    vals, entries, row, credit, _pg = self.read_state(p, True)
                    for ln in ENERGIES:
                        self.energy_max[ln] = max(self.energy_max[ln], vals[ln])
                    self.entries_max = max(self.entries_max, entries)
                    if row is not None:
                        self.last_row = row
                    self.last_credit = credit
                    if self.rng.random() < 0.3:
                        self.token_id += 1
                        token = make_token(DEMO_TOKEN_KEY, self.token_id, TOKEN_AMOUNT)
                        if self.enter_token(p, token) == 0:
                            self.token_after = token
                            self.last_credit = credit + TOKEN_AMOUNT
                p.release()
            except (OSError, TimeoutError, P.GuruxError, ValueError, IndexError, KeyError):
                if not stop.is_set():
                    raise
                return
            except Exception:  # noqa: BLE001 (gurux raises plain Exceptions on a cut connection)
                if not stop.is_set():
                    raise
                return
            finally:
                self.note_counters(p)
                p.close()

    # -------------------------------------------------------- the run
    def run(self, cuts, data):
        proc, address = start(data, self.meter_log)
        try:
            while self.cuts < cuts:
                stop = threading.Event()
                delay = self.rng.uniform(0.2, 1.2)
                killer = threading.Timer(delay, lambda: (stop.set(), os.kill(proc.pid, signal.SIGKILL)))
                killer.start()
                try:
                    self.traffic(address, stop)
                finally:
                    killer.join()
                proc.wait()
                self.cuts += 1
                proc, address = start(data, self.meter_log)
                self.check_after_restart(address)
                dup = len(self.server_ics) - len(set(self.server_ics))
                if dup:
                    raise Violation("a server invocation counter was used twice (by cut %d)" % self.cuts)
        finally:
            proc.kill()
            proc.wait()
        return self


def main(argv=None):
    ap = argparse.ArgumentParser(description="power cuts of dlms-micro serve under ciphered load")
    ap.add_argument("--cuts", type=int, default=200)
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dlms-cuts-") as data:
        r = Run(seed)
        try:
            r.run(args.cuts, data)
        except Violation as e:
            print("VIOLATION (seed %d): %s" % (seed, e))
            return 1
    dt = time.monotonic() - t0
    print("%d cuts in %.0f s (seed %d): %d server counters, none repeated; %d AARQs accepted before a cut refused "
          "after it; %d restarts checked (energies never lower, profile rows kept, token ids kept)"
          % (r.cuts, dt, seed, len(r.server_ics), r.refused_replays, r.checks))
    print("energy max: %s; load-profile entries: %d; highest client counter used: %d"
          % (", ".join("%s=%d" % kv for kv in r.energy_max.items()), r.entries_max, r.next_ic))
    return 0


if __name__ == "__main__":
    sys.exit(main())
