# Pushes in the CPython port: the sender a meter service runs, and a small
# listener that prints what arrives (the `dlms-micro listen` command).
#
# SENDER. PushSender(meter) serves the meter's Push setup objects (class 40,
# dlms_micro/cosem/push.py). The service calls `await sender.poll()` about
# once a second; each push that is due (push.due: schedule, alarm or on
# demand, inside its window, after its random delay or repetition delay) is
# encoded (app/notify.Notifier, ciphered when the security policy asks),
# framed for the TCP wrapper (source wPort the meter's logical device,
# destination wPort 102) and sent on a background task: connect to the
# destination "host:port", write, close. The outcome goes back to the core
# (push.sent / push.failed: retries, then a log line and give up). poll()
# itself never waits for the network. Only transport_service TCP (0) is
# sent here; HDLC pushes (UI frames, link.hdlc.ui_frames) belong to a serial
# line's owner.
#
#   sender = PushSender(demo.meter, logger=logger)
#   ...each second: await sender.poll()
#   await sender.stop()          # waits for sends in flight (or cancels)
#
# LISTENER. PushListener(port=4061, ek=..., ak=...) accepts TCP connections
# carrying wrapper frames or HDLC frames (UI/I; segmented ones reassembled),
# deciphers general-glo-ciphering with the given keys through our own suite
# 0 (a receive counter per meter system title: replays refused) and
# general-ciphering (identified key, or the Static Unified Model's agreed key
# from agreement_key and meter_agreement_keys), decodes the
# DataNotification with the A-XDR generic decoder and hands the readable
# text to `out` (print by default): source, protection, invoke id, time
# stamp, and each value, named after the push setup (first element an
# octet-string(6)) or after the push object list when the first element is
# that list itself.

import argparse
import asyncio
import logging
import sys

from dlms_micro import axdr, crc16, obis
from dlms_micro.app import notify
from dlms_micro.cosem import base, clock, push
from dlms_micro.errors import DlmsError
from dlms_micro.link import wrapper

DEFAULT_LISTEN_PORT = 4061
CONNECT_TIMEOUT = 5.0


def parse_destination(dest):
    """A push destination, b"host:port" (IPv6 as "[::1]:4061") ->
    (host, port); ValueError."""
    text = bytes(dest).decode("ascii")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("push destination %r is not host:port" % text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class PushSender:
    """Sends a meter's pushes: each Push setup's DataNotification when its
    schedule, alarm or method push says so, over TCP (wrapper framing) to
    its destination, or as HDLC UI frames on the serial lines, protected as
    the security policy says. MeterService makes one and polls it."""

    def __init__(self, meter, objects=None, logger=None, max_pdu=1024, timeout=CONNECT_TIMEOUT,
                 dest_wport=wrapper.PUSH_WPORT, hdlc_lines=()):
        # objects: the Push setup entries to serve (default: every class 40
        # object of the table). hdlc_lines: the serial lines (serial_port's
        # SerialLine / PtyLine, anything with push_ui(apdu, client)) a push
        # whose transport service is HDLC goes out on, as UI frames.
        self.meter = meter
        if objects is None:
            objects = [e for e in meter.table if e[base.E_CLASS] == push.PUSH_SETUP.class_id]
        self.objects = list(objects)
        self.logger = logger or logging.getLogger("dlms_micro.push")
        self.timeout = timeout
        self.dest_wport = dest_wport
        self.hdlc_lines = list(hdlc_lines)
        self.notifier = notify.Notifier(meter)
        self.start = wrapper.HEADER_LEN
        self.buf = bytearray(self.start + notify.HEADER_ROOM + max_pdu + notify.TRAILER)
        self._tasks = {}  # object index -> the task sending its push
        self.sent = 0
        self.failures = 0

    def _now(self):
        return clock.now(self.meter)

    async def poll(self, utc=None):
        """Start the pushes that are due; returns how many were started."""
        return self.poll_now(utc)

    def poll_now(self, utc=None):
        """poll() for a caller inside the event loop that cannot await (the
        simulator's step hook: the push is encoded at once, with the
        meter's clock where the step left it, and sent on its own task)."""
        if utc is None:
            utc = self._now()
        started = 0
        for i, obj in enumerate(self.objects):
            t = self._tasks.get(i)
            if t is not None and not t.done():
                continue
            st = push.state_of(self.meter, obj)
            if st.service == push.TCP and st.dest_len == 0:
                continue  # no destination set: this push setup is not in use
            if not push.due(self.meter, obj, utc):
                continue
            if st.service == push.HDLC:
                self._push_hdlc(obj, st, utc)
                continue
            job = self._prepare(obj, utc)
            if job is None:
                self.failures += 1
                push.failed(self.meter, obj, utc)
                continue
            self._tasks[i] = asyncio.get_running_loop().create_task(self._send(obj, *job))
            started += 1
        return started

    def _push_hdlc(self, obj, st, utc):
        # An HDLC push: UI frames on every serial line at once (no
        # connection to make, nothing to wait for).
        name = obis.to_str(obj[base.E_LN])
        dest = st.destination()
        client = dest[0] if len(dest) == 1 else push.PUSH_CLIENT
        n = self.notifier
        end = n.encode(obj, self.buf, self.start, len(self.buf), utc)
        ok = False
        if end >= 0:
            apdu = bytes(self.buf[n.start:end])
            for line in self.hdlc_lines:
                if line.push_ui(apdu, client):
                    ok = True
        if ok:
            self.sent += 1
            push.sent(self.meter, obj)
            self.logger.info("push %s: %d bytes sent as HDLC UI frames to client %d", name, end - n.start, client)
        else:
            self.failures += 1
            again = push.failed(self.meter, obj, utc)
            self.logger.warning("push %s: no serial line took the HDLC push%s", name, "; will retry" if again else "")

    def _prepare(self, obj, utc):
        # (host, port, frame bytes), or None (logged) when it cannot be sent.
        st = push.state_of(self.meter, obj)
        name = obis.to_str(obj[base.E_LN])
        if st.service != push.TCP:
            self.logger.warning("push %s: transport service %d is not sent over TCP here", name, st.service)
            return None
        try:
            host, port = parse_destination(st.destination())
        except (ValueError, UnicodeError) as e:
            self.logger.warning("push %s: %s", name, e)
            return None
        n = self.notifier
        end = n.encode(obj, self.buf, self.start, len(self.buf), utc)
        if end < 0:
            return None  # the core logged why
        h = wrapper.push_frame(self.buf, n.start, end, self.meter.logical_device, self.dest_wport)
        return host, port, bytes(self.buf[h:end])

    async def _send(self, obj, host, port, frame):
        name = obis.to_str(obj[base.E_LN])
        try:
            _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), self.timeout)
            try:
                writer.write(frame)
                await asyncio.wait_for(writer.drain(), self.timeout)
            finally:
                writer.close()
                try:
                    await asyncio.wait_for(writer.wait_closed(), self.timeout)
                except (OSError, asyncio.TimeoutError):
                    pass
        except (OSError, asyncio.TimeoutError) as e:
            self.failures += 1
            again = push.failed(self.meter, obj, self._now())
            self.logger.warning("push %s to %s:%d failed (%s)%s", name, host, port, e or type(e).__name__,
                                "; will retry" if again else "")
            return False
        self.sent += 1
        push.sent(self.meter, obj)
        self.logger.info("push %s: %d bytes sent to %s:%d", name, len(frame), host, port)
        return True

    async def flush(self):
        """Wait for the sends in flight."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self, timeout=2.0):
        """Wait up to timeout seconds for the sends in flight, then cancel
        the rest."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
        self._tasks.clear()


# ------------------------------------------------------------------ decoding


class Notification:
    """A decoded DataNotification: invoke_id, priority_high, confirmed,
    date_time (12 bytes or None), body ((tag, value) as axdr.decode gives
    it), protection (how it was protected, or None)."""

    def __init__(self):
        self.invoke_id = 0
        self.priority_high = False
        self.confirmed = False
        self.date_time = None  # 12 bytes, or None
        self.body = None  # (tag, value) from axdr.decode
        self.protection = None  # e.g. "general-glo-ciphering SC 0x30 IC 5 system title ..."


def decode_notification(apdu):
    """The DataNotification APDU (tag 0x0F) -> Notification; DlmsError
    when it is something else or malformed."""
    b = bytes(apdu)
    if len(b) < 6 or b[0] != notify.DATA_NOTIFICATION:
        raise axdr.DecodeError("not a data-notification (tag 0x%02X)" % (b[0] if b else -1))
    n = Notification()
    lid = int.from_bytes(b[1:5], "big")
    n.invoke_id = lid & notify.INVOKE_ID_MASK
    n.priority_high = bool(lid & 0x80000000)
    n.confirmed = bool(lid & 0x40000000)
    k = b[5]
    if k not in (0, 12) or len(b) < 6 + k:
        raise axdr.DecodeError("data-notification date-time of %d bytes" % k)
    n.date_time = b[6 : 6 + k] if k else None
    tag, value, end = axdr.decode(b, 6 + k)
    if end != len(b):
        raise axdr.DecodeError("%d bytes after the notification body" % (len(b) - end))
    n.body = (tag, value)
    return n


def format_date_time(b):
    """12 date-time bytes -> "2026-07-01 10:00:00 (deviation -60, status
    0x00)"."""
    y = (b[0] << 8) | b[1]

    def f(v, width, wild=0xFF):
        return "*" * width if v == wild else "%0*d" % (width, v)

    dev = int.from_bytes(b[9:11], "big", signed=True)
    text = "%s-%s-%s %s:%s:%s" % (f(y, 4, 0xFFFF), f(b[2], 2), f(b[3], 2), f(b[5], 2), f(b[6], 2), f(b[7], 2))
    if b[8] != 0xFF:
        text += ".%02d" % b[8]
    extra = []
    if dev != -0x8000:
        extra.append("deviation %d" % dev)
    if b[11] != 0xFF:
        extra.append("status 0x%02X" % b[11])
    return text + (" (%s)" % ", ".join(extra) if extra else "")


def format_value(tag, v):
    """An A-XDR value (tag and value as axdr.decode gives them) as one
    line of text."""
    if tag == axdr.NULL_DATA:
        return "null"
    if tag in (axdr.ARRAY, axdr.STRUCTURE):
        inner = ", ".join(format_value(t, x) for t, x in v)
        return ("[%s]" if tag == axdr.ARRAY else "{%s}") % inner
    if tag == axdr.OCTET_STRING:
        b = bytes(v)
        if len(b) == 12 and (b[2] <= 12 or b[2] >= 0xFD) and (b[5] < 24 or b[5] == 0xFF):
            return format_date_time(b)
        if b and all(32 <= c < 127 for c in b):
            return "%r" % b.decode("ascii")
        return b.hex().upper() if b else "''"
    if isinstance(v, axdr.DateTime):
        b = bytearray(12)
        v.put(b, 0)
        return format_date_time(b)
    return str(v)


def _object_list(tag, value):
    # The push object list when the first element is one: [(class, ln,
    # attr, data_index)], else None.
    if tag != axdr.ARRAY or not value:
        return None
    out = []
    for t, item in value:
        if t != axdr.STRUCTURE or len(item) != 4 or item[1][0] != axdr.OCTET_STRING or len(item[1][1]) != 6:
            return None
        out.append((item[0][1], bytes(item[1][1]), item[2][1], item[3][1]))
    return out


def describe(n, source=""):
    """Readable lines for a Notification (source: where it came from)."""
    lines = ["data-notification%s%s" % (" from " + source if source else "", ", " + n.protection if n.protection else "")]
    lines.append("  invoke id %d, %s priority, %s" % (n.invoke_id, "high" if n.priority_high else "normal",
                                                      "confirmed" if n.confirmed else "unconfirmed"))
    lines.append("  date-time %s" % (format_date_time(n.date_time) if n.date_time else "(none)"))
    tag, value = n.body
    if tag != axdr.STRUCTURE:
        lines.append("  body: %s" % format_value(tag, value))
        return lines
    names = [None] * len(value)
    if value:
        t0, v0 = value[0]
        if t0 == axdr.OCTET_STRING and len(v0) == 6:
            names[0] = "push setup"
            lines.append("  push setup %s" % obis.to_str(bytes(v0)))
        objs = _object_list(t0, v0)
        if objs is not None and len(objs) == len(value):
            for i, (cid, ln, attr, _di) in enumerate(objs):
                names[i] = "%s class %d attr %d" % (obis.to_str(ln), cid, attr)
    for i, (t, v) in enumerate(value):
        if i == 0 and names[0] == "push setup":
            continue
        label = names[i] or "[%d]" % i
        lines.append("  %s: %s" % (label, format_value(t, v)))
    return lines


# ------------------------------------------------------------------ listener


class _Opener:
    # Deciphers protected notifications with our suite 0 and the given keys
    # (a receive counter per meter system title: replays are refused);
    # general-ciphering ones (DD) with the identified global unicast key or
    # the Static Unified Model's agreed key (the listener's key agreement
    # private key and the meters' public ones), replays refused by the last
    # invocation counter seen per meter.
    def __init__(self, ek=None, ak=None, agreement_key=None, meter_agreement_keys=None):
        import dlms_micro_cpython.crypto  # noqa: F401  (AES-GCM by `cryptography`)

        self.ek, self.ak = ek, ak
        self.agreement_key = agreement_key  # private scalar: 32 (P-256) or 48 bytes (P-384)
        self.meter_agreement_keys = dict(meter_agreement_keys or {})  # system title -> x || y
        self.last_ic = {}  # general-ciphering: system title -> last IC accepted
        self.suite = None
        if ek is not None and len(ek) == 16 and ak is not None:
            from dlms_micro.security import gcm
            from dlms_micro.security import keys as ks
            from dlms_micro.security.suite0 import Suite0
            from dlms_micro_cpython.demo import MemoryStorage

            store = ks.KeyStore(MemoryStorage(), b"LISTENER", ek=ek, ak=ak, rx_slots=64)
            self.suite = Suite0(store, gcm.new())
            self.suite.enabled = 1

    def open(self, apdu):
        # -> (plaintext bytes, description); DlmsError when it fails.
        if apdu[0] == 0xDD:
            return self._open_general(apdu)
        if self.suite is None:
            raise DlmsError("general-glo-ciphering needs --ek and --ak of 16 bytes")
        b = bytearray(apdu)
        s = self.suite
        s.unprotect(b, 0, len(b), 0)
        title = b[2:10].hex().upper() if s.form >= 3 else "?"
        return bytes(b[s.start : s.end]), "general-glo-ciphering SC 0x%02X IC %d system title %s" % (s.sc, s.ic, title)

    def _open_general(self, apdu):
        from dlms_micro.security import ecc, gcipher

        g = gcipher.General().parse(apdu, 0, len(apdu))
        if len(g.content) < 6:
            raise DlmsError("general-ciphering content of %d bytes" % len(g.content))
        sc = g.content[0]
        suite = sc & 0x0F
        key_len = 32 if suite == 2 else 16
        title = g.originator.hex().upper()
        if self.ak is None or len(self.ak) != key_len:
            raise DlmsError("security suite %d needs --ak of %d bytes" % (suite, key_len))
        if g.key_info in (gcipher.KEY_INFO_NONE, gcipher.KEY_INFO_IDENTIFIED) and g.key_id in (-1, 0):
            if self.ek is None or len(self.ek) != key_len:
                raise DlmsError("security suite %d needs --ek of %d bytes" % (suite, key_len))
            key, how = self.ek, "identified key (global unicast)"
        elif g.key_info == gcipher.KEY_INFO_AGREED and g.params == b"\x02" and suite in (1, 2):
            pub = self.meter_agreement_keys.get(g.originator)
            if self.agreement_key is None or pub is None:
                raise DlmsError("agreed key: needs --agreement-key and --meter-agreement-key %s=..." % title)
            curve = ecc.for_suite(suite)
            try:
                z = ecc.KeyPair(curve, self.agreement_key).agree(pub)
            except ecc.EccError as e:
                raise DlmsError("agreed key: %s" % e) from None
            key = gcipher.derive(suite, gcipher.SCHEME_STATIC_UNIFIED, z, g.originator, g.recipient, g.tid)
            how = "agreed key (static unified model)"
        else:
            raise DlmsError("general-ciphering key-info %d (key id %d, parameters %s) not opened here"
                            % (g.key_info, g.key_id, g.params.hex()))
        plain = gcipher.unseal(gcipher.new_gcm(key_len), key, self.ak, g)
        if plain is None:
            raise DlmsError("general-ciphering content does not authenticate (decryption failed)")
        ic = int.from_bytes(g.content[1:5], "big")
        if ic <= self.last_ic.get(g.originator, -1):
            raise DlmsError("general-ciphering IC %d replayed (last %d from %s)" % (ic, self.last_ic[g.originator], title))
        self.last_ic[g.originator] = ic
        return plain, "general-ciphering SC 0x%02X IC %d %s system title %s" % (sc, ic, how, title)


class _Connection(asyncio.Protocol):
    def __init__(self, listener):
        self.listener = listener
        self.buf = bytearray()
        self.segments = bytearray()
        self.peer = "?"

    def connection_made(self, transport):
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = "%s:%s" % (peer[0], peer[1])

    def data_received(self, data):
        self.buf += data
        while self.buf and self._take():
            pass

    def _take(self):
        # One frame from the front of buf; False when more bytes are needed.
        b = self.buf
        if b[0] == 0x7E:
            return self._hdlc()
        if len(b) < 2:
            return False
        if b[0] == 0 and b[1] == wrapper.VERSION:
            if len(b) < wrapper.HEADER_LEN:
                return False
            n = (b[6] << 8) | b[7]
            if len(b) < wrapper.HEADER_LEN + n:
                return False
            src = (b[2] << 8) | b[3]
            dst = (b[4] << 8) | b[5]
            apdu = bytes(b[8 : 8 + n])
            del b[: 8 + n]
            self.listener.handle(apdu, "%s (wrapper wPort %d -> %d)" % (self.peer, src, dst))
            return True
        del b[0]  # not the start of a frame
        return True

    def _hdlc(self):
        b = self.buf
        if len(b) < 3:
            return False
        if b[1] & 0xF0 != 0xA0:
            del b[0]
            return True
        length = ((b[1] & 7) << 8) | b[2]
        if len(b) < length + 2:
            return False
        frame = bytes(b[1 : length + 1])
        del b[: length + 2]
        if not crc16.check(frame, 0, len(frame)):
            self.listener.out("hdlc frame from %s with a bad FCS, ignored" % self.peer)
            return True
        i = 2
        while i < len(frame) and not frame[i] & 1:  # destination address
            i += 1
        dest = frame[i] >> 1
        i += 1
        j = i
        while j < len(frame) and not frame[j] & 1:  # source address
            j += 1
        src = frame[i : j + 1].hex().upper()
        i = j + 1
        if i + 3 > len(frame) - 2:
            return True  # no information field
        info = frame[i + 3 : -2]
        if not self.segments and info[:3] in (b"\xe6\xe7\x00", b"\xe6\xe6\x00"):
            info = info[3:]
        self.segments += info
        if frame[0] & 0x08:
            return True  # more segments follow
        apdu = bytes(self.segments)
        self.segments = bytearray()
        self.listener.handle(apdu, "%s (hdlc %s -> client %d)" % (self.peer, src, dest))
        return True


class PushListener:
    """A head-end's push receiver (`dlms-micro listen`): a TCP server that
    takes DataNotifications (wrapper or HDLC framing), deciphers protected
    ones with ek and ak, keeps them in ``received`` and writes each,
    described, with out(text). General-ciphering ones (DD): ek and ak of
    16 bytes (suites 0 and 1) or 32 (suite 2) for an identified key;
    agreement_key (the listener's static key agreement private key) and
    meter_agreement_keys ({meter system title: its public key x || y})
    for the Static Unified Model."""

    def __init__(self, host="127.0.0.1", port=DEFAULT_LISTEN_PORT, ek=None, ak=None, out=print, logger=None,
                 agreement_key=None, meter_agreement_keys=None):
        self.host = host
        self.port = port
        self.out = out
        self.logger = logger or logging.getLogger("dlms_micro.listen")
        keyed = (ek is not None and ak is not None) or agreement_key is not None
        self.opener = _Opener(ek, ak, agreement_key, meter_agreement_keys) if keyed else None
        self.received = []  # every Notification decoded (tests, embedding)
        self._server = None

    async def start(self):
        """Listen; returns self (``port``: the port bound)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self):
        """Close the server."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def handle(self, apdu, source):
        """One APDU received from source: deciphered, decoded, kept and
        written out; the Notification, or None (the reason written out)."""
        protection = None
        try:
            if apdu and (apdu[0] == 0xDB or apdu[0] == 0xDD):
                if self.opener is None:
                    self.out("ciphered notification from %s (no keys given: --ek, --ak, --agreement-key): %s"
                             % (source, apdu.hex().upper()))
                    return None
                apdu, protection = self.opener.open(apdu)
            n = decode_notification(apdu)
        except DlmsError as e:
            self.out("from %s: cannot read %s...: %s" % (source, bytes(apdu[:16]).hex().upper(), e))
            return None
        n.protection = protection
        self.received.append(n)
        self.out("\n".join(describe(n, source)))
        return n


# ------------------------------------------------------------------ CLI


def _hex_of(sizes, msg):
    # an argparse type: hex digits of one of `sizes` bytes
    def parse(text):
        try:
            k = bytes.fromhex(text)
        except ValueError:
            k = b""
        if len(k) not in sizes:
            raise argparse.ArgumentTypeError(msg)
        return k

    return parse


_key = _hex_of((16, 32), "a key is 32 hex digits (64: security suite 2)")
_private_key = _hex_of((32, 48), "a key agreement private key is 64 hex digits (P-256) or 96 (P-384)")


def _meter_key(text):
    title, _, key = text.partition("=")
    try:
        t, k = bytes.fromhex(title), bytes.fromhex(key)
    except ValueError:
        t = k = b""
    if len(t) != 8 or len(k) not in (64, 96):
        raise argparse.ArgumentTypeError("TITLE=KEY: the meter's system title (16 hex digits) = its key agreement "
                                         "public key x || y (128 or 192 hex digits)")
    return t, k


def add_listen_parser(subparsers):
    """Add the `listen` command to the dlms-micro argument parser."""
    p = subparsers.add_parser(
        "listen",
        help="print the push notifications that arrive",
        description="Listen for DataNotifications (pushes) over TCP: wrapper frames or HDLC frames; print "
        "each one decoded. Ciphered ones (general-glo-ciphering, suite 0; general-ciphering) are opened with --ek "
        "and --ak, agreed keys with --agreement-key and --meter-agreement-key.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0: all)")
    p.add_argument("--port", type=int, default=DEFAULT_LISTEN_PORT, help="TCP port (default %d)" % DEFAULT_LISTEN_PORT)
    p.add_argument("--ek", type=_key, help="block cipher key, 32 hex digits (64: security suite 2)")
    p.add_argument("--ak", type=_key, help="authentication key, 32 hex digits (64: security suite 2)")
    p.add_argument("--agreement-key", type=_private_key, metavar="HEX",
                   help="this head-end's static key agreement private key (general-ciphering, agreed key)")
    p.add_argument("--meter-agreement-key", type=_meter_key, action="append", default=[], metavar="TITLE=KEY",
                   help="a meter's key agreement public key (x || y) by its system title; repeatable")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return p


def run_listen(args):
    """`dlms-micro listen` with its parsed arguments: print the pushes that
    arrive until Ctrl-C; the exit code."""
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if (args.ek is None) != (args.ak is None):
        print("dlms-micro listen: give both --ek and --ak, or neither", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_listen(args))
    except KeyboardInterrupt:
        return 0


async def _listen(args):
    listener = PushListener(args.host, args.port, args.ek, args.ak, out=lambda s: print(s, flush=True),
                            agreement_key=args.agreement_key, meter_agreement_keys=dict(args.meter_agreement_key))
    try:
        await listener.start()
    except OSError as e:
        print("dlms-micro listen: cannot listen: %s" % e, file=sys.stderr)
        return 1
    print("dlms-micro: listening for pushes on tcp %s:%d%s" % (args.host, listener.port,
                                                                 " (deciphering with the given keys)" if args.ek or args.agreement_key else ""),
          flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await listener.stop()
    return 0
