# Coverage-guided fuzzing of every parser and of the whole Channel with
# atheris (libFuzzer for CPython), each target with invariants beyond "does
# not raise" (InvariantViolation when one breaks):
#
#   python tools/fuzz.py prepare                 # build/fuzz/pkg: the demo meter compiled
#   python tools/fuzz.py run TARGET [-s SECONDS] [-n RUNS]   # one target (atheris)
#   python tools/fuzz.py all [-s SECONDS]        # every target in turn (make fuzz)
#   python tools/fuzz.py replay [TARGET...]      # the committed corpora, no atheris (make test)
#   python tools/fuzz.py merge TARGET DIR...     # minimize DIRs into tests/fuzz/corpus/TARGET
#   python tools/fuzz.py report                  # inputs, crashes, violations, coverage of the last runs
#   python tools/fuzz.py coverage TARGET [DIR]   # line coverage per module of a corpus (coverage.py)
#
# Corpora: tests/fuzz/corpus/<target>/ (committed, minimized, seeded from
# real gurux-dlms and dlms-cosem sessions by tools/fuzz_capture.py) and
# build/fuzz/corpus/<target>/ (what a run finds); crashes and invariant
# violations in build/fuzz/crashes/<target>/.
#
# Invariants (see each target): answers are well-formed frames / APDUs, the
# association state stays consistent, no stored value changes without an
# accepted SET/ACTION (and a refused SET/ACTION changes nothing), no key or
# protected value (LLS password, EK/AK/KEK, token key) appears in any output,
# a decoded A-XDR value encodes back to the same bytes.

import hashlib
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# run as a script, tools/ is sys.path[0]: there `import micropython` would
# find tools/micropython/ and the core would take CPython for MicroPython
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]
BUILD = os.path.join(REPO, "build", "fuzz")
PKG = os.path.join(BUILD, "pkg")
CORPUS = os.path.join(REPO, "tests", "fuzz", "corpus")
os.makedirs(PKG, exist_ok=True)  # on sys.path before prepare() writes the meter there
for p in (os.path.join(REPO, "ports", "cpython"), os.path.join(REPO, "tests", "fuzz"),
          os.path.join(REPO, "tests", "portable"), PKG, REPO):
    if p not in sys.path:
        sys.path.insert(0, p)

# board-sized profiles keep a fuzzed meter small and its state cheap to compare
PROFILE_ROWS = {"1.0.99.1.0.255": 48, "1.0.99.2.0.255": 24, "1.0.98.1.0.255": 8, "0.0.99.98.0.255": 20}


class InvariantViolation(AssertionError):
    pass


def check(cond, what):
    if not cond:
        raise InvariantViolation(what)


# ---------------------------------------------------------------- the meter


def prepare():
    # build/fuzz/pkg/fuzz_demo_meter.py: meters/demo.json compiled, small profiles
    from dlms_micro_cpython import meterdef
    from dlms_micro_cpython.meterdef.emit import module_text

    with open(os.path.join(REPO, "meters", "demo.json"), encoding="utf-8") as f:
        d = json.load(f)
    for o in d["objects"]:
        if o.get("obis") in PROFILE_ROWS:
            o["profile_entries"] = PROFILE_ROWS[o["obis"]]
    text = module_text(meterdef.compile_definition(d, "meters/demo.json"), "fuzz_demo_meter")
    os.makedirs(PKG, exist_ok=True)
    path = os.path.join(PKG, "fuzz_demo_meter.py")
    old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
    if old != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return path


_SKIP = frozenset(("scratch", "ctx", "r", "r2", "mv", "buf", "storage", "store", "sink", "probe", "entry", "bufs",
                   "tx_buf", "log"))


def fingerprint(state, skip_slots=()):
    # A digest of every stored value of a meter's state (objects' fields
    # recursively; scratch buffers and back references left out)
    h = hashlib.sha1()
    from fuzz_session import RamStorage

    def walk(x, depth):
        if depth > 6 or isinstance(x, RamStorage):  # the storage: checked by its puts
            return
        if x is None or isinstance(x, (bool, int, float, str)):
            h.update(repr(x).encode())
        elif isinstance(x, (bytes, bytearray, memoryview)):
            h.update(b"b%d:" % len(x))
            h.update(x)
        elif isinstance(x, (list, tuple)):
            h.update(b"[%d" % len(x))
            for y in x:
                walk(y, depth + 1)
        elif hasattr(x, "__dict__"):
            for k in sorted(vars(x)):
                if k not in _SKIP and not callable(getattr(x, k)):
                    h.update(k.encode())
                    walk(getattr(x, k), depth + 1)
        else:
            h.update(type(x).__name__.encode())

    for i, v in enumerate(state):
        if i not in skip_slots:
            walk(v, 0)
    return h.digest()


class Guarded:
    # An interface-class handler whose SET and ACTION are watched: a refused
    # one must change no stored value; an accepted one is counted.
    def __init__(self, inner, watch):
        self._inner = inner
        self._watch = watch

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def get(self, ctx, obj, attr):
        w = self._watch
        before = w.digest()
        r = self._inner.get(ctx, obj, attr)
        check(w.digest() == before, "a GET changed a stored value (class %d, attribute %d)" % (obj[0], attr))
        return r

    def set(self, ctx, obj, attr):
        return self._changes(self._inner.set, ctx, obj, attr, "SET")

    def action(self, ctx, obj, method):
        return self._changes(self._inner.action, ctx, obj, method, "ACTION")

    def _changes(self, fn, ctx, obj, n, what):
        w = self._watch
        before = w.digest()
        r = fn(ctx, obj, n)
        if r == 0:
            w.accepted += 1
        else:
            check(w.digest() == before, "a refused %s (result %d) changed a stored value (class %d, %d)"
                  % (what, r, obj[0], n))
        return r


class Watch:
    # the stored values of one meter: digest(), and how many SET/ACTIONs
    # were accepted
    def __init__(self, meter, skip_slots):
        self.meter = meter
        self.skip = skip_slots
        self.accepted = 0

    def digest(self):
        return fingerprint(self.meter.state, self.skip)


def watched_meter():
    # the fuzz demo meter, its handlers guarded, with its Watch
    import fuzz_demo_meter
    import fuzz_session
    from dlms_micro.cosem import base

    m, storage = fuzz_session.make_meter(fuzz_demo_meter)
    skip = set()
    for i, what in fuzz_demo_meter.DEVICES[0][4]:
        if what == "auth-failures":  # counted by the auth guard, not by a SET
            skip.add(m.table[i][base.E_SLOT])
    w = Watch(m, skip)
    m.handlers = tuple(Guarded(h, w) for h in m.handlers)
    del storage.puts[:]  # what building wrote
    return m, storage, w


class MeterPool:
    # Building the meter takes ~150 ms: one is reused while no SET/ACTION
    # was accepted (then nothing stored changed: the invariant checks it),
    # with a fresh key store (no counter seen) and failed-authentication
    # guard per input, and rebuilt after an accepted one or every 500 inputs.
    def __init__(self):
        self.item = None
        self.uses = 0

    def get(self):
        import fuzz_demo_meter
        import fuzz_session

        if self.item is None or self.item[2].accepted or self.uses >= 500:
            self.item = watched_meter()
            self.uses = 0
        self.uses += 1
        m, storage, w = self.item
        m.keys = fuzz_session.make_keys(fuzz_demo_meter, storage)
        m.auth_guard = None
        del storage.puts[:]
        return self.item


SECRETS = None


def secrets():
    # every protected value of the fuzz meter: keys, LLS passwords
    global SECRETS
    if SECRETS is None:
        import fuzz_demo_meter
        import fuzz_session

        s = [fuzz_session.EK, fuzz_session.AK, fuzz_session.KEK, fuzz_session.TOKEN_KEY]
        s += [r[3] for r in fuzz_demo_meter.ROLES if r[3]]
        SECRETS = tuple(s)
    return SECRETS


def no_secret_in(outputs, data):
    # no protected value in any output (unless the input itself holds it:
    # a client may write any bytes into an object and read them back)
    for sec in secrets():
        if sec in data:
            continue
        for o in outputs:
            check(sec not in o, "a protected value (%d bytes) appears in an output" % len(sec))


# ---------------------------------------------------------------- well-formed answers

RESPONSE_TAGS = frozenset((0x61, 0x63, 0xC4, 0xC5, 0xC7, 0xD8, 0xCC, 0xCD, 0xCF, 0xD4, 0xD5, 0xD7, 0xDB, 0xDC,
                           0xE0, 0x0E))


def hdlc_frames_ok(out, client_side=True):
    # every transmission: one or more whole HDLC frames, FCS and HCS right
    from dlms_micro import crc16

    for t in out:
        p = 0
        check(len(t) >= 9, "HDLC transmission shorter than a frame")
        while p < len(t):
            check(t[p] == 0x7E, "HDLC frame does not open with a flag")
            f = t[p + 1 :]
            check(len(f) >= 2 and f[0] & 0xF0 == 0xA0, "HDLC frame format type is not 3")
            n = ((f[0] & 0x07) << 8) | f[1]
            check(len(f) >= n + 1 and f[n] == 0x7E, "HDLC frame length disagrees with its closing flag")
            check(crc16.check(f, 0, n), "HDLC FCS wrong")
            p += n + 2


def wrapper_ok(out):
    for t in out:
        check(len(t) >= 9 and t[0:2] == b"\x00\x01", "wrapper header version is not 1")
        n = (t[6] << 8) | t[7]
        check(n == len(t) - 8, "wrapper length field %d for %d bytes" % (n, len(t) - 8))
        check(t[8] in RESPONSE_TAGS, "wrapper carries no response APDU (tag %02X)" % t[8])


# ---------------------------------------------------------------- targets


def t_axdr():
    from dlms_micro import axdr
    from dlms_micro.errors import DecodeError

    def one(data):
        try:
            tag, value, end = axdr.decode(data, 0, len(data))
        except DecodeError:
            return
        check(0 < end <= len(data), "decode ended outside its input")
        buf = bytearray(2 * end + 16)
        try:
            e2 = axdr.encode(buf, 0, tag, value)
        except Exception as e:  # noqa: BLE001
            raise InvariantViolation("a decoded value does not encode again: %r" % e)
        # the encoding is canonical (a boolean is 0 or 1): it decodes to the
        # same value and, boolean bytes aside, is the same length
        check(e2 <= end, "A-XDR encoding longer than what it decoded from")
        t2, v2, end2 = axdr.decode(buf, 0, e2)
        check(end2 == e2 and t2 == tag and repr(v2) == repr(value), "A-XDR round trip differs")

    return one


def t_hdlc():
    from dlms_micro.link import hdlc

    def one(data):
        if len(data) < 2:
            return
        link = hdlc.HdlcServer(logical=1, physical=17, max_info_tx=128, max_info_rx=128, window_tx=1, window_rx=1,
                               max_apdu=512, inactivity_timeout=120000, inter_octet_timeout=25)
        now = 0
        out = []
        p = 1
        step = data[0] % 64 + 1
        while p < len(data):
            e = min(len(data), p + step)
            link.feed(data, p, e, now)
            p = e
            now += data[p - 1] % 40
            for _ in range(64):
                ev = link.next_event(now)
                if ev == 0:
                    break
                if ev == 1:
                    out.append(bytes(link.tx_buf[link.tx_start : link.tx_end]))
                elif ev == 2:  # an APDU: answer it with a short response
                    s = link.TX_APDU_START
                    link.tx_buf[s : s + 4] = b"\xC4\x01\xC1\x0D"
                    link.send_apdu(s + 4, s)
            else:
                raise InvariantViolation("next_event never returned EV_NONE")
        hdlc_frames_ok(out)

    return one


def t_wrapper():
    from dlms_micro.link import wrapper

    def one(data):
        link = wrapper.WrapperServer(wports=(1,), max_apdu=256)
        out = []
        p = 0
        step = (data[0] % 32 + 1) if data else 1
        while p < len(data):
            e = min(len(data), p + step)
            n = link.feed(data, p, e, 0)
            check(0 <= n <= e - p, "feed took more than offered")
            p = e if n == 0 else p + n
            for _ in range(64):
                ev = link.next_event(0)
                if ev == 0 or ev == 5:
                    break
                if ev == 1:
                    out.append(bytes(link.tx_buf[link.tx_start : link.tx_end]))
                elif ev == 2:
                    s = link.TX_APDU_START
                    link.tx_buf[s : s + 4] = b"\xC4\x01\xC1\x0D"
                    link.send_apdu(s + 4, s)
            else:
                raise InvariantViolation("next_event never returned EV_NONE")
            if ev == 5:
                break
        wrapper_ok(out)

    return one


def t_iec21():
    from dlms_micro.link import iec21

    def one(data):
        so = iec21.SignOn(b"DMI", b"DLMSMICRO", b"5", address=b"42")
        now = 0
        p = 0
        while p < len(data):
            step = data[p] % 16 + 1
            p += 1
            e = min(len(data), p + step)
            if so.hdlc:
                so.touch(now)
                if data[p - 1] & 0x40:
                    so.link_closed(now)
            else:
                n = so.feed(data, p, e, now)
                check(n == e - p or so.hdlc, "sign-on left bytes before HDLC")
            p = e
            now += (data[p - 1] if p <= len(data) else 0) * 8
            for _ in range(16):
                ev = so.next_event(now)
                if ev == iec21.EV_NONE:
                    break
                if ev == iec21.EV_SEND:
                    t = bytes(so.tx_buf[so.tx_start : so.tx_end])
                    check(t == b"/DMI5\\2DLMSMICRO\r\n" or (t[0] == 6 and t[-2:] == b"\r\n" and len(t) == 6),
                          "sign-on sent neither the identification nor a switch confirm: %r" % t)
                elif ev == iec21.EV_BAUD:
                    check(so.baud in (300, 600, 1200, 2400, 4800, 9600), "baud %d beyond the proposal" % so.baud)
            else:
                raise InvariantViolation("sign-on next_event never returned EV_NONE")

    return one


def t_acse():
    from dlms_micro.app import acse
    from dlms_micro.errors import DecodeError

    outcome = acse.Outcome()

    def one(data):
        for cls in (acse.Aarq, acse.Rlrq, acse.InitiateRequest):
            obj = cls()
            try:
                end = obj.parse(data, 0, len(data))
            except DecodeError:
                continue
            check(0 < end <= len(data), "%s parse ended outside its input" % cls.__name__)
            if cls is not acse.Aarq:
                continue
            for mech, secret in ((1, b"12345678"), (0, b""), (5, b"")):
                acse.decide(outcome, obj, 1, mech, secret, 0xFFFFFF, 1024)
                if outcome.accepted():
                    # accepted only with the role's mechanism and, for LLS,
                    # the right password (IEC 62056-5-3 COSEM-OPEN)
                    check((obj.mechanism if obj.mechanism >= 0 else 0) == mech, "accepted another mechanism")
                    check(obj.context == 1, "accepted another application context")
                    if mech == 1:
                        check(obj.auth_value >= 0 and bytes(data[obj.auth_value : obj.auth_value + obj.auth_len])
                              == secret, "LLS accepted without the password")
                    check(obj.initiate.valid, "accepted without a valid InitiateRequest")

    return one


def _services(role=2):
    import fuzz_demo_meter  # noqa: F401
    from dlms_micro.app import association as asn
    from dlms_micro.app.xdlms import Services

    m, _storage, w = watched_meter()
    a = asn.AssociationState()
    a.status = asn.ASSOCIATED
    a.role = role
    a.client_sap = m.roles[role].client_sap
    a.conformance = 0xFFFFFF & ~asn.CONF_GENERAL_PROTECTION
    a.client_max_pdu = 1024
    return m, a, Services(m, a, 1024), w


def t_xdlms():
    from dlms_micro.errors import DecodeError

    import fuzz_demo_meter
    import fuzz_session

    m, a, s, w = _services()
    base_digest = w.digest()
    out = bytearray(1100)

    def one(data):
        nonlocal base_digest
        m.keys = fuzz_session.make_keys(fuzz_demo_meter, fuzz_session.RamStorage())
        before = w.accepted
        try:
            end = s.handle(data, 0, len(data), out, 8, 1032)
        except DecodeError:
            end = 8
        check(8 <= end <= 1032, "response beyond the buffer")
        if end > 8:
            check(out[8] in RESPONSE_TAGS, "response tag %02X" % out[8])
        if w.accepted == before:
            check(w.digest() == base_digest, "a stored value changed without an accepted SET/ACTION")
        else:
            base_digest = w.digest()
        no_secret_in((bytes(out[8:end]),), data)
        check(a.status == 2, "the association state changed under xDLMS")

    return one


def t_ciphered():
    import fuzz_session
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    import dlms_micro_cpython.crypto  # noqa: F401  (the port's AES backend)
    from dlms_micro.errors import DecodeError
    from dlms_micro.security import gcm, suite0
    from dlms_micro.security import keys as ks
    from dlms_micro.security.suite0 import SecurityError

    buf = bytearray(4200)
    titles = (b"GURUXHES", b"COSEMHES")

    def one(data):
        # [0]: bit 0 the client title of the association; then the APDU
        if len(data) < 2:
            return
        store = fuzz_session.RamStorage()
        keys = ks.KeyStore(store, b"DMI\x00\x00\xbc\x61\x4e", ek=fuzz_session.EK, ak=fuzz_session.AK,
                           kek=fuzz_session.KEK, policy=0x6C)
        s = suite0.Suite0(keys, gcm.new(), gcm.new())
        s.set_client_title(titles[data[0] & 1], 0, 8)
        s.enabled = 1  # the association's context is the ciphered one
        apdu = bytes(data[1:])
        n = len(apdu)
        buf[0:n] = apdu
        try:
            s.unprotect(buf, 0, n)
        except (SecurityError, DecodeError):
            return
        # accepted: an independent AES-GCM (the `cryptography` package) must
        # agree that the tag is right and give the same plaintext
        c, ce = s.start, s.end
        check(s.level == 0x30, "accepted below the policy's level (SC 0x%02x)" % s.sc)
        check(s.form in (suite0.FORM_GLO, suite0.FORM_GENERAL_GLO), "dedicated-key APDU accepted without a key")
        iv = bytes(s._iv[:12])
        dec = Cipher(algorithms.AES(fuzz_session.EK), modes.GCM(iv, apdu[ce : ce + 12], min_tag_length=12)).decryptor()
        dec.authenticate_additional_data(bytes((s.sc,)) + fuzz_session.AK)
        try:
            pt = dec.update(apdu[c:ce]) + dec.finalize()
        except Exception:  # noqa: BLE001 (InvalidTag)
            raise InvariantViolation("suite 0 accepted an APDU whose tag does not verify")
        check(pt == bytes(buf[c:ce]), "suite 0 deciphered differently from AES-GCM")
        check(store.get is not None and keys.rx_ic(ks.KEY_EK, iv, 0) > s.ic, "an accepted counter is acceptable again")
        no_secret_in((pt,), data)

    return one


def t_gbt():
    from dlms_micro.app import gbt

    def one(data):
        g = gbt.Gbt(512)
        p = 0
        while p + 1 < len(data):
            n = data[p] % 64
            p += 1
            e = min(len(data), p + n)
            if g.parse(data, p, e):
                check(p + 7 <= g.data_start <= g.data_end == e, "GBT block data outside the APDU")
                try:
                    g.take(data)
                except Exception as ex:  # noqa: BLE001
                    from dlms_micro.errors import DlmsError

                    if not isinstance(ex, DlmsError):
                        raise
            p = e

    return one


def t_sources():
    from source_support import pump

    from dlms_micro import source
    from dlms_micro.source import iec21_readout as r
    from dlms_micro.source import modbus_rtu as mb
    from dlms_micro.source import s0

    MAP = {"registers": [
        {"name": "f", "address": 0, "type": "float32", "scaler": -2, "unit": "kWh"},
        {"name": "i", "address": 2, "type": "int32", "word_order": "little"},
        {"name": "u", "address": 4, "type": "uint16"},
    ]}
    FIELDS = ["1.8.0", "2.8.0", "F.F", "C.1.0", "1.6.0"]

    def one(data):
        if not data:
            return
        which = data[0] % 3
        body = data[1:]
        if which == 0:
            src = r.Readout(FIELDS, retries=1, interval=10**8)
        elif which == 1:
            src = mb.ModbusMaster([{"slave": 5, "map": MAP}], retries=1, interval=5000)
        else:
            c = s0.S0Input(1000, min_pulse=30, persist_every=10)
            t = 0
            level = 0
            for b in body:
                t += b & 0x3F
                level = (b >> 7) & 1
                c.edge(level, t)
                c.tick(t)
            n = c.pulses_total if hasattr(c, "pulses_total") else None
            check(n is None or n >= 0, "negative pulse count")
            return
        t = 0
        p = 0
        while p < len(body):
            n = body[p] % 40
            p += 1
            e = min(len(body), p + n)
            t += (body[p - 1] * 37) % 3000
            src.feed(body, p, e, t)
            p = e
            pump(src, t)
        for k in range(12):
            pump(src, t + 1000 * k)
        for i in range(len(src.field_status)):
            if src.field_status[i] == source.OK and which == 0:
                check(src.numeric[i] in (0, 1), "a readout value without a numeric flag")

    return one


def _mutate(base, data):
    # A copy of the JSON value base with the edits data describes (a few
    # bytes each: a path by indexes, then what to put there), so that the
    # fuzzer reaches the compiler with valid JSON of the definition's shape.
    import copy

    d = copy.deepcopy(base)
    p = 0
    n = len(data)

    def take():
        nonlocal p
        if p >= n:
            return 0
        p += 1
        return data[p - 1]

    leaves = (None, True, False, 0, -1, 1, 255, 65535, 2 ** 31, 2 ** 63, -2 ** 31, 1.5, "", "x", "1.0.1.8.0.255",
              "0.0.0.0.0.0", "255.255.255.255.255.255", "a.b.c.d.e.f", "reader", "management", "public", "Wh",
              "double-long-unsigned", "octet-string", [], {}, [1], ["1.0.1.8.0.255"], {"x": 1}, "00" * 20)
    while p < n:
        node = d
        parent, key = None, None
        for _ in range(take() % 5 + 1):
            if isinstance(node, dict) and node:
                k = sorted(node)[take() % len(node)]
            elif isinstance(node, list) and node:
                k = take() % len(node)
            else:
                break
            parent, key, node = node, k, node[k]
        if parent is None:
            continue
        op = take()
        if op < 24 and isinstance(parent, dict):
            del parent[key]
        elif op < 48:
            v = take()
            parent[key] = (v << 24 | take() << 16 | take() << 8 | take()) - (1 << 31)
        elif op < 64:
            k = take() % 16
            parent[key] = bytes(take() for _ in range(k)).decode("latin-1")
        else:
            parent[key] = copy.deepcopy(leaves[op % len(leaves)])
    return d


def t_meterdef():
    from dlms_micro_cpython import meterdef
    from dlms_micro_cpython.meterdef.compiler import DefinitionError

    # small definitions (one compiles in milliseconds): a board's, a
    # retrofit module's with its source, the demo's first objects
    bases = []
    for path in (("tests", "meters", "mp_port_lp.json"), ("meters", "s0_retrofit.json"), ("meters", "demo.json")):
        with open(os.path.join(REPO, *path), encoding="utf-8") as f:
            bases.append(json.load(f))
    bases[2]["objects"] = bases[2]["objects"][:12]

    def one(data):
        # "{...": a definition as JSON text; anything else: edits of one of
        # the bases (the first byte says which)
        if data[:1] == b"{":
            try:
                d = json.loads(data)
            except (ValueError, RecursionError):
                return
        elif data:
            d = _mutate(bases[data[0] % len(bases)], data[1:])
        else:
            return
        try:
            c = meterdef.compile_definition(d, "<fuzz>")
        except (DefinitionError, ValueError):
            return  # refused, saying where and why
        from dlms_micro.meterdef import build

        build.build(c, lambda: 1782900000, None, 0, build.Env(None, token_key=b"\x00" * 16))

    return one


def t_gurux_xml():
    from dlms_micro_cpython.meterdef import gurux_xml

    from dlms_micro_cpython import meterdef

    def one(data):
        try:
            d, _report = gurux_xml.import_gurux(bytes(data))
        except (ValueError, RecursionError):
            return
        # what the import made is what the compiler takes
        try:
            meterdef.compile_definition(d, "<gurux import>")
        except ValueError as e:
            raise InvariantViolation("an imported collection does not compile: %s" % e)

    return one


def t_decode():
    from dlms_micro_cpython import decode

    keys = {"ek": bytes.fromhex("000102030405060708090A0B0C0D0E0F"),
            "ak": bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")}

    def one(data):
        kind = (None, "hdlc", "wrapper")[data[0] % 3] if data else None
        rep = decode.decode_bytes(bytes(data[1:]), keys=keys if data and data[0] & 4 else None, kind=kind)
        decode.render_text(rep)
        decode.to_json(rep)
        text = data.decode("latin-1")
        if decode.is_log(text):
            decode.render_text(decode.decode_log(text))

    return one


def t_channel():
    import fuzz_demo_meter
    import fuzz_session
    from dlms_micro.app import association as asn

    pool = MeterPool()

    def one(data):
        m, storage, w = pool.get()
        before = w.digest()
        s = fuzz_session.Session(m, fuzz_demo_meter, data[0] % 3 if data else 0)
        dt = (data[1] * 10) if len(data) > 1 else 0
        p = 2
        while p < len(data) and not s.closed:
            k = data[p]
            p += 1
            e = min(len(data), p + k)
            s.write(data, p, e)
            p = e
            s.wait(dt)
            a = s.ch.assoc
            check(a.status in (asn.NON_ASSOCIATED, asn.ASSOCIATION_PENDING, asn.ASSOCIATED), "association status %r"
                  % a.status)
            if a.status != asn.NON_ASSOCIATED:
                check(0 <= a.role < len(m.roles) and m.roles[a.role].client_sap == a.client_sap,
                      "associated without a role of the client's SAP")
            if a.status == asn.ASSOCIATED and m.roles[a.role].mechanism == 5:
                check(a.ctos_len >= 8, "HLS association without a client challenge")
        s.close()
        check(s.ch.assoc.status == asn.NON_ASSOCIATED, "an association outlived its transport")
        if w.accepted == 0:
            check(w.digest() == before, "a stored value changed without an accepted SET/ACTION")
        sent = [o for k, o in s.out if k == b"T"]
        no_secret_in(sent, data)
        if s.kind == fuzz_session.WRAPPER:
            wrapper_ok(sent)
        elif s.kind == fuzz_session.HDLC:
            hdlc_frames_ok(sent)
        else:
            hdlc_frames_ok([o for o in sent if o[:1] == b"\x7e"])
        for key in storage.puts:
            check(w.accepted > 0 or key.startswith("sec.") or key.startswith("ic"),
                  "storage written (%s) without an accepted SET/ACTION" % key)

    return one


def t_x509():
    # The board's X.509 reader (dlms_micro/security/x509.py) and certificate
    # store (dlms_micro_mp.certstore) on any bytes, the trusted CA and
    # certificates of tests/portable_ecc/cert_fixtures.py as seeds.
    # Invariants: only X509Error (parse, check) or CertError (the store's
    # import) is raised; a parsed certificate's fields lie inside its DER
    # and parse the same again; a certificate check() accepts carries a
    # signature `cryptography` verifies with the CA's key over the same
    # TBSCertificate bytes (no forged certificate accepted), and the store
    # then knows it (infos, export) and, for a client signing certificate,
    # its key.
    import importlib.util

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from dlms_micro.cosem.security_setup12 import CertError
    from dlms_micro.meter import Meter
    from dlms_micro.security import ecc, suite12, x509
    from dlms_micro_cpython import crypto  # noqa: F401  (cryptography behind ecc.py: fast checks)

    sys.path.insert(0, os.path.join(REPO, "ports", "micropython"))
    try:
        from dlms_micro_mp import certstore
    finally:
        sys.path.remove(os.path.join(REPO, "ports", "micropython"))
    spec = importlib.util.spec_from_file_location("cert_fixtures", os.path.join(REPO, "tests", "portable_ecc",
                                                                                "cert_fixtures.py"))
    fx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fx)
    ca = x509.load_ca(fx.CA)
    ca_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + ca.public)
    now = 1796126400  # 2026-12-01, inside the fixtures' validity
    server_d = hashlib.sha256(b"dlms_micro test meter suite 1").digest()

    class Keys:
        system_title = b"DMI\x00\x00\xbc\x61\x4e"

    class Mem(dict):
        def put(self, k, v):
            self[k] = bytes(v)

    def one(data):
        data = bytes(data)
        try:
            c = x509.parse(data)
        except x509.X509Error:
            c = None
        if c is not None:
            check(c.der == data and 0 < c.tbs_start < c.tbs_end <= len(data), "TBSCertificate outside the DER")
            check(c.issuer[:1] == b"\x30" and c.subject[:1] == b"\x30" and len(c.serial) > 0, "Name or serial")
            check(c.public is None or (c.curve is not None and len(c.public) == 2 * c.curve.size), "public key")
            again = x509.parse(c.der)
            check((again.serial, again.not_before, again.not_after, again.public) ==
                  (c.serial, c.not_before, c.not_after, c.public), "parsed differently twice")
            try:
                x509.check(c, ca, now)
                ok = True
            except x509.X509Error:
                ok = False
            if ok:
                h = hashes.SHA256() if c.sig_hash == "sha256" else hashes.SHA384()
                sig = encode_dss_signature(int.from_bytes(c.sig_r, "big"), int.from_bytes(c.sig_s, "big"))
                try:
                    ca_key.verify(sig, bytes(c.tbs()), ec.ECDSA(h))
                except InvalidSignature:
                    raise InvariantViolation("accepted a certificate whose signature cryptography refuses")
        m = Meter((), (), [], wall_clock=lambda: now)
        m.keys = Keys()
        m.random_bytes = None
        m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, server_d))
        st = Mem()
        certstore.provision(st, 1, None, None, fx.CA)
        store = certstore.CertStore(m, st)
        try:
            store.import_certificate(data)
        except CertError:
            check(store.infos() == [] and certstore.STORE_CERTS not in st, "a refused import changed the store")
            return
        check(c is not None, "the store took what the reader refuses")
        info = store.infos()
        check(len(info) == 1 and store.export_by_serial(info[0][2], info[0][3]) == data, "imported, not kept")
        t = c.title()
        if info[0][0] == certstore.CLIENT and info[0][1] == certstore.SIGNING:
            check(m.signing.client_key(t) == c.public, "a client's signing certificate, its key not accepted")

    return one


def t_gcipher():
    # The general-ciphering APDU parser (dlms_micro/security/gcipher.py,
    # General.parse) on any bytes. Invariants: only SecurityError is raised;
    # what it accepts lies inside the input, encodes again to an APDU that
    # parses to the same fields, and that encoding is never longer than the
    # input (a length may come in a longer form, never a shorter one).
    from dlms_micro.security import gcipher
    from dlms_micro.security.suite0 import SecurityError

    fields = ("tid", "originator", "recipient", "date_time", "other", "key_info", "key_id", "kek_id", "params",
              "key_data", "content")

    def one(data):
        g = gcipher.General()
        try:
            g.parse(data, 0, len(data))
        except SecurityError:
            return
        enc = g.encode()
        check(len(enc) <= len(data), "general-ciphering re-encoded longer than its input")
        again = gcipher.General().parse(enc, 0, len(enc))
        for f in fields:
            check(getattr(again, f) == getattr(g, f), "general-ciphering field %s not kept through encode" % f)

    return one


TARGETS = {
    "axdr": t_axdr,
    "hdlc": t_hdlc,
    "wrapper": t_wrapper,
    "iec21": t_iec21,
    "acse": t_acse,
    "xdlms": t_xdlms,
    "ciphered": t_ciphered,
    "gbt": t_gbt,
    "sources": t_sources,
    "meterdef": t_meterdef,
    "gurux_xml": t_gurux_xml,
    "decode": t_decode,
    "channel": t_channel,
    "x509": t_x509,
    "gcipher": t_gcipher,
}


# ---------------------------------------------------------------- commands


def corpus_files(target, extra=()):
    out = []
    for d in (os.path.join(CORPUS, target),) + tuple(extra):
        if os.path.isdir(d):
            for n in sorted(os.listdir(d)):
                p = os.path.join(d, n)
                if os.path.isfile(p):
                    out.append(p)
    return out


def replay(targets):
    prepare()
    total = 0
    for t in targets:
        one = TARGETS[t]()
        files = corpus_files(t)
        t0 = time.monotonic()
        for p in files:
            with open(p, "rb") as f:
                data = f.read()
            try:
                one(data)
            except Exception as e:
                print("%s: %s: %s: %s" % (t, os.path.relpath(p, REPO), type(e).__name__, e))
                raise
        total += len(files)
        print("replay %-10s %4d inputs in %.1f s" % (t, len(files), time.monotonic() - t0))
    return total


def run(target, seconds, runs, extra_args=(), committed_only=False):
    # committed_only: start from the committed corpus alone and keep
    # nothing found (a quick check, as the tests run it)
    import atheris

    # the meter is compiled in another process: nothing of dlms_micro may be
    # imported here before instrument_imports() (a module imported earlier
    # would give libFuzzer no coverage to follow)
    meter = os.path.join(PKG, "fuzz_demo_meter.py")
    if not os.path.exists(meter) or os.path.getmtime(meter) < os.path.getmtime(os.path.join(REPO, "meters",
                                                                                           "demo.json")):
        subprocess.check_call([sys.executable, os.path.abspath(__file__), "prepare"], stdout=subprocess.DEVNULL)
    work = os.path.join(BUILD, "corpus", target)
    crashes = os.path.join(BUILD, "crashes", target)
    os.makedirs(work, exist_ok=True)
    os.makedirs(crashes, exist_ok=True)
    with atheris.instrument_imports(include=["dlms_micro", "dlms_micro_cpython", "dlms_micro_mp", "fuzz_session"]):
        import dlms_micro  # noqa: F401
        import dlms_micro.app.acse  # noqa: F401
        import dlms_micro.app.gbt  # noqa: F401
        import dlms_micro.app.xdlms  # noqa: F401
        import dlms_micro.axdr  # noqa: F401
        import dlms_micro.link.hdlc  # noqa: F401
        import dlms_micro.link.iec21  # noqa: F401
        import dlms_micro.link.wrapper  # noqa: F401
        import dlms_micro.security.suite0  # noqa: F401
        import dlms_micro.server  # noqa: F401
        import fuzz_session  # noqa: F401
        one = TARGETS[target]()
    me = sys.argv[0]
    if any(a.startswith("-merge=") for a in extra_args):
        # libFuzzer's merge runs argv[0] again in child processes: an
        # executable that comes back here
        me = os.path.join(BUILD, "run_" + target)
        with open(me, "w") as f:
            f.write("#!/bin/sh\nexec '%s' '%s' run %s -s 0 -- \"$@\"\n" % (sys.executable, os.path.abspath(__file__),
                                                                      target))
        os.chmod(me, 0o755)
    argv = [me, "-artifact_prefix=" + crashes + "/", "-print_final_stats=1", "-rss_limit_mb=3072",
            "-timeout=20", "-max_len=4096"]
    if seconds:
        argv.append("-max_total_time=%d" % seconds)
    if runs:
        argv.append("-runs=%d" % runs)
    argv += list(extra_args)
    seeds = [os.path.join(CORPUS, target)] if os.path.isdir(os.path.join(CORPUS, target)) else []
    if committed_only:
        # libFuzzer writes what it finds into the first directory: a scratch
        # one, emptied first, never the committed corpus
        work = os.path.join(BUILD, "scratch", target)
        if os.path.isdir(work):
            for n in os.listdir(work):
                os.unlink(os.path.join(work, n))
        os.makedirs(work, exist_ok=True)
    argv += [work] + seeds
    atheris.Setup(argv, one)
    atheris.Fuzz()


def run_all(seconds, targets, log_dir=None):
    failed = []
    for t in targets:
        cmd = [sys.executable, os.path.abspath(__file__), "run", t, "-s", str(seconds)]
        print("== fuzz %s for %d s" % (t, seconds), flush=True)
        if log_dir:
            os.makedirs(log_dir, exist_ok=True)
            with open(os.path.join(log_dir, t + ".log"), "w") as f:
                rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
        else:
            rc = subprocess.call(cmd, cwd=REPO)
        if rc:
            failed.append(t)
    if log_dir:
        report(log_dir)
    if failed:
        print("fuzz: failed:", " ".join(failed))
        return 1
    return 0


def report(log_dir):
    # per target: inputs run, crashes and invariant violations (artifacts),
    # the last coverage figure (libFuzzer "cov:" edges, "ft:" features)
    import re

    total = 0
    print("%-10s %12s %8s %10s %8s %8s" % ("target", "inputs", "crashes", "violations", "cov", "ft"))
    for t in sorted(TARGETS):
        path = os.path.join(log_dir, t + ".log")
        if not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            text = f.read()
        runs = sum(int(x) for x in re.findall(r"stat::number_of_executed_units: (\d+)", text))
        cov = re.findall(r" cov: (\d+) ft: (\d+)", text)
        viol = len(re.findall(r"^InvariantViolation: ", text, re.M))
        crashes = len(re.findall(r"Test unit written to ", text)) - viol
        total += runs
        print("%-10s %12d %8d %10d %8s %8s" % (t, runs, crashes, viol, cov[-1][0] if cov else "-",
                                              cov[-1][1] if cov else "-"))
    print("%-10s %12d" % ("total", total))


def merge(target, dirs):
    # libFuzzer's -merge=1: the smallest set of inputs with the same coverage
    dest = os.path.join(CORPUS, target)
    tmp = dest + ".new"
    os.makedirs(tmp, exist_ok=True)
    cmd = [sys.executable, os.path.abspath(__file__), "run", target, "-s", "0", "--", "-merge=1", tmp]
    cmd += [d for d in dirs] + ([dest] if os.path.isdir(dest) else [])
    # the "run" command appends work dirs; -merge takes the first dir as output
    subprocess.check_call(cmd, cwd=REPO)
    if not os.listdir(tmp):
        raise SystemExit("merge of %s kept no input: %s left as it was" % (target, dest))
    if os.path.isdir(dest):
        for n in os.listdir(dest):
            os.unlink(os.path.join(dest, n))
    os.makedirs(dest, exist_ok=True)
    for n in os.listdir(tmp):
        os.replace(os.path.join(tmp, n), os.path.join(dest, n))
    os.rmdir(tmp)
    print("%s: %d inputs" % (target, len(os.listdir(dest))))


def coverage_of(target, dirs):
    import coverage

    prepare()
    cov = coverage.Coverage(source=["dlms_micro", "dlms_micro_cpython"], data_file=None)
    cov.start()
    one = TARGETS[target]()
    n = 0
    for p in corpus_files(target, tuple(dirs)):
        with open(p, "rb") as f:
            try:
                one(f.read())
            except Exception:  # noqa: BLE001 (a finding is reported by the run, not here)
                pass
        n += 1
    cov.stop()
    rows = []
    for f in cov.get_data().measured_files():
        _, stmts, _, missing, _ = cov.analysis2(f)
        if stmts and len(missing) < len(stmts):
            rows.append((os.path.relpath(f, REPO), len(stmts), len(stmts) - len(missing)))
    rows.sort()
    print("coverage %s: %d inputs" % (target, n))
    for f, s, c in rows:
        print("  %-60s %5d/%-5d %5.1f%%" % (f, c, s, 100.0 * c / s))
    return rows


def main(argv):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare")
    r = sub.add_parser("run")
    r.add_argument("target", choices=sorted(TARGETS))
    r.add_argument("-s", "--seconds", type=int, default=60)
    r.add_argument("-n", "--runs", type=int, default=0)
    r.add_argument("--committed-only", action="store_true", help="the committed corpus only; keep nothing found")
    a = sub.add_parser("all")
    a.add_argument("-s", "--seconds", type=int, default=60)
    a.add_argument("--logs", default=os.path.join(BUILD, "logs"), help="one log per target (tools/fuzz.py report)")
    a.add_argument("targets", nargs="*")
    rp = sub.add_parser("replay")
    rp.add_argument("targets", nargs="*")
    m = sub.add_parser("merge")
    m.add_argument("target", choices=sorted(TARGETS))
    m.add_argument("dirs", nargs="+")
    rep = sub.add_parser("report")
    rep.add_argument("--logs", default=os.path.join(BUILD, "logs"))
    c = sub.add_parser("coverage")
    c.add_argument("target", choices=sorted(TARGETS))
    c.add_argument("dirs", nargs="*")
    # run: what follows "--" goes to libFuzzer (e.g. -seed=1, -merge=1 DIR)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        print(prepare())
    elif args.cmd == "run":
        run(args.target, args.seconds, args.runs, extra, args.committed_only)
    elif args.cmd == "all":
        return run_all(args.seconds, args.targets or sorted(TARGETS), args.logs)
    elif args.cmd == "replay":
        replay(args.targets or sorted(TARGETS))
    elif args.cmd == "merge":
        merge(args.target, args.dirs)
    elif args.cmd == "report":
        report(args.logs)
    elif args.cmd == "coverage":
        coverage_of(args.target, args.dirs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
