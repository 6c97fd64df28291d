# Drives the two third-party DLMS client libraries against the demo meter,
# through their public APIs only (test-only peers; their code is not read or
# copied here):
#   GuruxPeer  gurux-dlms (GXDLMSClient builds requests and parses replies;
#              the byte transport is ours: a TCP socket or pyserial)
#   CosemPeer  dlms-cosem (DlmsClient with its TcpTransport / HdlcTransport)
# Every read has a deadline: a peer that waits for bytes that never come
# fails with TimeoutError instead of hanging the suite.
#
# Client SAP 1 (management) is HLS-GMAC (mechanism 5) with security suite 0,
# every APDU authenticated and encrypted: gurux-dlms through its
# GXDLMSSecureClient (glo-ciphering), dlms-cosem through DlmsClient's keys
# (general-glo-ciphering). Like a head-end, the test process remembers each
# client system title's invocation counter per meter (HesCounters) and starts
# the next association above it; or (ic_from_meter=True) reads the meter's
# invocation counter object 0.0.43.1.0.255 as the public client first.

import socket
import time

import serial  # pyserial

IO_TIMEOUT = 5.0  # seconds: any single reply
PASSWORD = b"12345678"
LOGICAL = 1
PHYSICAL = 17

# The demo meter's demo-only keys (ports/cpython/dlms_micro_cpython/demo.py)
DEMO_EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
DEMO_AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DEMO_KEK = bytes.fromhex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")
DEMO_KEYS = {"ek": DEMO_EK, "ak": DEMO_AK, "kek": DEMO_KEK}
METER_TITLE = b"DMI\x00\x00\xbc\x61\x4e"  # "DMI" + serial 12345678 in 5 bytes
GURUX_TITLE = b"GURUXHES"  # client system titles (8 bytes)
COSEM_TITLE = b"COSEMHES"
SECURE_SAP = 1
INVOCATION_COUNTER = "0.0.43.1.0.255"
SECURITY_SETUP = "0.0.43.0.0.255"


class HesCounters:
    # What a head-end keeps per meter and client system title: the next
    # invocation counter it may use, and the last one it saw from the meter.
    def __init__(self):
        self.client = {}  # title -> next counter to use
        self.meter = {}  # title -> last counter received from the meter

    def client_next(self, title):
        return self.client.get(title, 0)

    def note(self, title, client_next, meter_last):
        if client_next is not None and client_next > self.client.get(title, -1):
            self.client[title] = client_next
        if meter_last is not None and meter_last > self.meter.get(title, -1):
            self.meter[title] = meter_last


def hes_counters(meter):
    # The counters the test process keeps for one running meter.
    c = getattr(meter, "hes_counters", None)
    if c is None:
        c = HesCounters()
        meter.hes_counters = c
    return c

# Transports under test
WRAPPER = "wrapper"
HDLC_TCP = "hdlc-tcp"
HDLC_PTY = "hdlc-pty"
TRANSPORTS = (WRAPPER, HDLC_TCP, HDLC_PTY)


# ---------------------------------------------------------------- byte media


class TcpMedia:
    def __init__(self, address, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(address, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout

    def send(self, data):
        self.sock.sendall(bytes(data))

    def recv(self, deadline):
        # Some bytes, or TimeoutError once the deadline has passed.
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply from the meter in time")
        self.sock.settimeout(left)
        try:
            b = self.sock.recv(4096)
        except socket.timeout:
            raise TimeoutError("no reply from the meter in time") from None
        if not b:
            raise ConnectionError("the meter closed the connection")
        return b

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class SerialMedia:
    # HDLC on a serial line (here the meter's pseudo-terminal) via pyserial.
    def __init__(self, path, baudrate=9600, timeout=IO_TIMEOUT):
        self.port = serial.Serial(path, baudrate, timeout=0.05, write_timeout=timeout)
        self.port.reset_input_buffer()
        self.timeout = timeout

    def send(self, data):
        self.port.write(bytes(data))
        self.port.flush()

    def recv(self, deadline):
        while True:
            b = self.port.read(max(1, self.port.in_waiting))
            if b:
                return b
            if time.monotonic() >= deadline:
                raise TimeoutError("no reply from the meter in time")

    def close(self):
        self.port.close()


def open_media(meter, transport):
    if transport == HDLC_PTY:
        return SerialMedia(meter.pty_path)
    if transport == HDLC_TCP:
        return TcpMedia(meter.hdlc_address)
    return TcpMedia(meter.wrapper_address)


# ---------------------------------------------------------------- gurux-dlms


def as_bytes(v):
    # An octet-string value as gurux hands it over (bytes, bytearray, str for
    # printable contents, or a GXByteBuffer) -> bytes.
    if isinstance(v, str):
        return v.encode("latin-1")
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    arr = getattr(v, "array", None)
    if arr is not None:
        return bytes(arr[: getattr(v, "size", len(arr))])
    return bytes(v)


def _auth_of(sap):
    # the demo meter's associations: 16 public, 1 HLS-GMAC, others LLS
    return "none" if sap == 16 else "high-gmac" if sap == SECURE_SAP else "low"


class GuruxError(Exception):
    def __init__(self, code, msg=""):
        super().__init__("gurux: error %s %s" % (code, msg))
        self.code = code


class GuruxPeer:
    # A gurux-dlms client session. Raises on any refusal; .trace keeps
    # (direction, hex) of every message for failure reports. SAP 1: HLS-GMAC
    # and suite 0 with keys (default: the demo keys) and client system title
    # title; invocation_counter: the first one to use (default: one above
    # what this process used last with this meter and title).
    def __init__(
        self,
        meter,
        transport,
        sap=16,
        password=None,
        max_pdu=None,
        server_address_size=None,
        wrong=False,
        keys=None,
        title=GURUX_TITLE,
        invocation_counter=None,
        ic_from_meter=False,
        auth=None,
        logical=LOGICAL,
    ):
        # auth: "none", "low" or "high-gmac" (default: by the demo's SAPs);
        # logical: the server's logical device (HDLC upper address, wPort)
        from gurux_dlms import GXDLMSClient
        from gurux_dlms.enums import Authentication, InterfaceType, Security
        from gurux_dlms.secure import GXDLMSSecureClient

        self.transport = transport
        self.meter = meter
        self.sap = sap
        self.title = title
        auth_kind = auth or _auth_of(sap)
        self.secure = auth_kind == "high-gmac"
        hdlc = transport != WRAPPER
        if auth_kind == "none":
            auth, pw = Authentication.NONE, None
        elif self.secure:
            auth, pw = Authentication.HIGH_GMAC, None
        else:
            auth, pw = Authentication.LOW, (password if password is not None else PASSWORD)
        if hdlc:
            if server_address_size == 1:
                server = logical
            else:
                server = GXDLMSClient.getServerAddress(logical, PHYSICAL, server_address_size or 0)
        else:
            server = logical
        kind = InterfaceType.HDLC if hdlc else InterfaceType.WRAPPER
        if self.secure:
            if ic_from_meter:
                # start above the meter's next counter
                invocation_counter = read_invocation_counter_gurux(meter, transport) + 1
            elif invocation_counter is None:
                invocation_counter = max(1, hes_counters(meter).client_next(title))
            c = GXDLMSSecureClient(True, sap, server, auth, None, kind)
            keys = keys or DEMO_KEYS
            c.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
            c.ciphering.systemTitle = title
            c.ciphering.blockCipherKey = keys["ek"]
            c.ciphering.authenticationKey = keys["ak"]
            c.ciphering.invocationCounter = invocation_counter  # the next one it uses
        else:
            c = GXDLMSClient(True, sap, server, auth, pw, kind)
        if hdlc and server_address_size:
            c.serverAddressSize = server_address_size
        if max_pdu is not None:
            c.maxReceivePDUSize = max_pdu
        self.client = c
        self.media = open_media(meter, transport)
        self.trace = []
        self.objects = None

    # transport of one request / one reply
    def _packet(self, data, reply):
        from gurux_dlms import GXByteBuffer, GXReplyData

        notify = GXReplyData()
        rd = GXByteBuffer()
        if data:
            self.trace.append(("tx", bytes(data).hex()))
            self.media.send(data)
        deadline = time.monotonic() + IO_TIMEOUT
        while not self.client.getData(rd, reply, notify):
            if notify.data.size != 0 and not notify.isMoreData():
                notify.clear()
            chunk = self.media.recv(deadline)
            self.trace.append(("rx", chunk.hex()))
            rd.set(chunk)
        if reply.error != 0:
            raise GuruxError(reply.error)

    def _block(self, packets, reply):
        if isinstance(packets, (bytes, bytearray)):
            packets = [packets]
        flat = []
        for p in packets:  # readList gives a list of messages, each a list of frames
            if isinstance(p, (list, tuple)):
                flat.extend(p)
            else:
                flat.append(p)
        for p in flat:
            reply.clear()
            self._packet(p, reply)
            while reply.isMoreData():
                if reply.isStreaming():
                    data = None
                else:
                    data = self.client.receiverReady(reply)
                self._packet(data, reply)
        return reply

    def _reply(self):
        from gurux_dlms import GXReplyData

        return GXReplyData()

    # session
    def snrm(self):
        data = self.client.snrmRequest()
        if data:
            reply = self._reply()
            self._packet(data, reply)
            self.client.parseUAResponse(reply.data)

    def associate(self):
        if self.transport != WRAPPER:
            self.snrm()
        reply = self._block(self.client.aarqRequest(), self._reply())
        self.client.parseAareResponse(reply.data)
        if self.client.isAuthenticationRequired:
            # HLS pass 3/4: reply_to_HLS_authentication with f(StoC),
            # check the meter's f(CtoS)
            reply = self._block(self.client.getApplicationAssociationRequest(), self._reply())
            self.client.parseApplicationAssociationResponse(reply.data)

    def connect(self):
        self.associate()
        return self

    def sent_apdus(self):
        # The raw messages sent so far, as on the wire (hex -> bytes)
        return [bytes.fromhex(h) for d, h in self.trace if d == "tx"]

    def read_object_list(self):
        reply = self._block(self.client.getObjectsRequest(), self._reply())
        self.objects = self.client.parseObjects(reply.data, True)
        return self.objects

    def read(self, obj, attr):
        # The value as received (gurux's parse), after updating obj with it.
        reply = self._block(self.client.read(obj, attr), self._reply())
        self.client.updateValue(obj, attr, reply.value)
        return reply.value

    def write(self, obj, attr):
        self._block(self.client.write(obj, attr), self._reply())

    def read_rows(self, pg, packets, columns=None):
        # A Profile generic buffer read (packets: client.read(pg, 2),
        # readRowsByRange or readRowsByEntry): the rows as received
        # (octet-strings as bytes). pg.buffer then holds the rows as gurux
        # decodes them; columns: the selected (object, capture object)
        # pairs the request named, which gurux needs to decode them.
        reply = self._block(packets, self._reply())
        rows = reply.value or []
        raw = [[bytes(v) if isinstance(v, (bytes, bytearray)) else v for v in row] for row in rows]
        self.client.updateValue(pg, 2, rows, columns)
        return raw

    def read_list(self, pairs):
        reply = self._block(self.client.readList(pairs), self._reply())
        values = reply.value
        self.client.updateValues(pairs, values)
        return values

    def method(self, packets):
        return self._block(packets, self._reply())

    def release(self):
        reply = self._reply()
        try:
            for p in self.client.releaseRequest() or ():
                self._packet(p, reply)
        finally:
            self.remember_counters()

    def disconnect(self):
        self.remember_counters()
        data = self.client.disconnectRequest()
        if data and self.transport != WRAPPER:
            self._packet(data, self._reply())

    def remember_counters(self):
        # what a head-end stores after talking to the meter
        if self.secure:
            hes_counters(self.meter).note(self.title, self.client.ciphering.invocationCounter, None)

    def close(self):
        self.remember_counters()
        self.media.close()

    def trace_text(self):
        return "\n".join("%s %s" % t for t in self.trace[-40:])


# ---------------------------------------------------------------- dlms-cosem


def _cosem_io_classes():
    from dlms_cosem.io import BlockingTcpIO, HdlcTransport, SerialIO

    class LengthFramedHdlcTransport(HdlcTransport):
        # dlms-cosem's HdlcConnection takes the first 7E after the opening
        # flag as the end of the frame and, when that does not parse, asks
        # for more data, searching further on each retry. Its stock reader
        # (bytes up to the next 7E) copes with a 7E inside a frame (an
        # I-frame with N(S)=7, N(R)=3 and P/F set has control field 7E; an
        # HCS or data byte can be 7E) but hangs when the byte before the
        # closing flag is 7E (an FCS ending in 7E, ~1 frame in 256). This
        # reader takes exactly one frame by its length field, and after a
        # frame with k inner 7E bytes answers the next k reads with nothing,
        # so the connection's retries step past each false end flag.
        def recv_frame(self):
            io = self.io
            owed = getattr(self, "_empty_reads_owed", 0)
            if owed:
                self._empty_reads_owed = owed - 1
                return b""
            deadline = time.monotonic() + IO_TIMEOUT

            def take(n):
                got = bytearray()
                while len(got) < n:
                    b = io.recv(n - len(got))
                    if b:
                        got += b
                    elif time.monotonic() > deadline:
                        raise TimeoutError("dlms-cosem: no HDLC frame from the meter in time")
                return bytes(got)

            while take(1) != b"\x7e":
                pass
            f0 = take(1)
            while f0 == b"\x7e":  # a repeated or shared flag
                f0 = take(1)
            f1 = take(1)
            length = ((f0[0] & 0x07) << 8) | f1[0]
            # the rest of the frame after the format field, and the closing flag
            frame = b"\x7e" + f0 + f1 + take(length - 2 + 1)
            self._empty_reads_owed = frame.count(b"\x7e", 1, len(frame) - 1)
            return frame

    return BlockingTcpIO, SerialIO, HdlcTransport, LengthFramedHdlcTransport


class CosemPeer:
    # A dlms-cosem client session. SAP 1: HLS-GMAC and suite 0 (see
    # GuruxPeer); .sent keeps every APDU the client handed its transport (the
    # ciphered bytes, before HDLC or wrapper framing).
    def __init__(
        self,
        meter,
        transport,
        sap=16,
        password=None,
        max_pdu=65535,
        extended_addressing=False,
        stock_hdlc_reader=False,
        keys=None,
        title=COSEM_TITLE,
        invocation_counter=None,
        ic_from_meter=False,
        auth=None,
        logical=LOGICAL,
    ):
        import dlms_cosem.io as cio
        from dlms_cosem import security
        from dlms_cosem.client import DlmsClient

        BlockingTcpIO, SerialIO, HdlcTransport, Fixed = _cosem_io_classes()
        t = int(IO_TIMEOUT)
        if transport == WRAPPER:
            host, port = meter.wrapper_address
            tr = cio.TcpTransport(client_logical_address=sap, server_logical_address=logical, io=BlockingTcpIO(host=host, port=port, timeout=t), timeout=t)
        else:
            if transport == HDLC_PTY:
                io = SerialIO(port_name=meter.pty_path, baud_rate=9600, timeout=t)
            else:
                host, port = meter.hdlc_address
                io = BlockingTcpIO(host=host, port=port, timeout=t)
            cls = HdlcTransport if stock_hdlc_reader else Fixed
            tr = cls(
                client_logical_address=sap,
                server_logical_address=logical,
                server_physical_address=PHYSICAL,
                extended_addressing=extended_addressing,
                io=io,
                timeout=t,
            )
        self.meter = meter
        self.title = title
        auth_kind = auth or _auth_of(sap)
        self.secure = auth_kind == "high-gmac"
        self.transport_kind = transport
        self.transport = tr
        self.sent = []
        send = tr.send_request

        def recording_send(telegram):
            self.sent.append(bytes(telegram))
            return send(telegram)

        tr.send_request = recording_send
        if auth_kind == "none":
            auth = security.NoSecurityAuthentication()
        elif self.secure:
            auth = security.HighLevelSecurityGmacAuthentication(challenge_length=32)
        else:
            auth = security.LowLevelSecurityAuthentication(secret=password if password is not None else PASSWORD)
        if self.secure:
            keys = keys or DEMO_KEYS
            hes = hes_counters(meter)
            meter_last = hes.meter.get(title, -1)
            if ic_from_meter:
                # the meter's next counter: start above it, and expect it
                ic = read_invocation_counter_cosem(meter, transport)
                invocation_counter, meter_last = ic + 1, ic - 1
            elif invocation_counter is None:
                invocation_counter = hes.client_next(title)
            # dlms-cosem wants every counter from the meter strictly above
            # meter_initial_invocation_counter (-1: any, 0 included)
            self.client = DlmsClient(
                transport=tr,
                authentication=auth,
                encryption_key=keys["ek"],
                authentication_key=keys["ak"],
                client_system_title=title,
                client_initial_invocation_counter=invocation_counter,
                meter_initial_invocation_counter=meter_last,
                max_pdu_size=max_pdu,
                timeout=t,
            )
        else:
            self.client = DlmsClient(transport=tr, authentication=auth, max_pdu_size=max_pdu, timeout=t)

    def connect(self):
        self.client.connect()
        return self

    def replay(self, telegram):
        # Hand an APDU to the transport again, as sent before (framed anew:
        # the HDLC sequence numbers stay right); the meter's raw answer.
        return self.transport.send_request(telegram)

    def associate(self):
        return self.client.associate()

    def get(self, interface, obis, attr):
        from dlms_cosem import cosem, enumerations

        return self.client.get(
            cosem.CosemAttribute(interface=enumerations.CosemInterface(interface), instance=cosem.Obis.from_string(obis), attribute=attr)
        )

    def get_rows(self, obis, access=None, attr=2):
        # A Profile generic buffer (or any array of structures) read with an
        # optional access descriptor (cosem_range / cosem_entry): the rows
        # as dlms-cosem parses them (octet-strings as bytes).
        from dlms_cosem import cosem, enumerations
        from dlms_cosem.utils import parse_as_dlms_data

        data = self.client.get(
            cosem.CosemAttribute(interface=enumerations.CosemInterface(7), instance=cosem.Obis.from_string(obis), attribute=attr),
            access_descriptor=access,
        )
        return [[bytes(v) if isinstance(v, (bytes, bytearray)) else v for v in row] for row in parse_as_dlms_data(data)]

    def set(self, interface, obis, attr, data):
        from dlms_cosem import cosem, enumerations

        return self.client.set(
            cosem.CosemAttribute(interface=enumerations.CosemInterface(interface), instance=cosem.Obis.from_string(obis), attribute=attr),
            data,
        )

    def action(self, interface, obis, method, data):
        from dlms_cosem import cosem, enumerations

        return self.client.action(
            cosem.CosemMethod(interface=enumerations.CosemInterface(interface), instance=cosem.Obis.from_string(obis), method=method),
            data,
        )

    def get_many(self, items):
        # items: (interface, obis, attr)
        from dlms_cosem import cosem, enumerations

        return self.client.get_many(
            [
                cosem.CosemAttributeWithSelection(
                    attribute=cosem.CosemAttribute(interface=enumerations.CosemInterface(i), instance=cosem.Obis.from_string(o), attribute=a),
                    access_selection=None,
                )
                for (i, o, a) in items
            ]
        )

    def release(self):
        try:
            return self.client.release_association()
        finally:
            self.remember_counters()

    def disconnect(self):
        self.remember_counters()
        self.client.disconnect()

    def remember_counters(self):
        # what a head-end stores after talking to the meter
        if self.secure:
            conn = self.client.dlms_connection
            hes_counters(self.meter).note(self.title, conn.client_invocation_counter, conn.meter_invocation_counter)

    def close(self):
        self.remember_counters()
        try:
            self.client.disconnect()
        except Exception:
            pass


# ------------------------------------------------- the invocation counter


def read_invocation_counter_gurux(meter, transport):
    # What a head-end does before it associates: read the meter's invocation
    # counter 0.0.43.1.0.255 as the public client (gurux-dlms).
    from gurux_dlms.objects import GXDLMSData

    p = GuruxPeer(meter, transport, sap=16)
    try:
        p.connect()
        o = GXDLMSData(INVOCATION_COUNTER)
        v = p.read(o, 2)
        p.release()
        p.disconnect()
        return int(v)
    finally:
        p.close()


def read_invocation_counter_cosem(meter, transport):
    # The same with dlms-cosem.
    from dlms_cosem.utils import parse_as_dlms_data

    p = CosemPeer(meter, transport, sap=16)
    try:
        p.connect()
        p.associate()
        v = parse_as_dlms_data(p.get(1, INVOCATION_COUNTER, 2))
        p.release()
        p.disconnect()
        return int(v[0] if isinstance(v, list) else v)
    finally:
        p.close()


# ------------------------------------------------------------ sessions


class PeerPool:
    # The peers a test opened, closed at its end whatever happened.
    def __init__(self):
        self.peers = []

    def keep(self, peer):
        self.peers.append(peer)
        return peer

    def close_all(self):
        while self.peers:
            try:
                self.peers.pop().close()
            except Exception:
                pass


def connected(peer):
    # peer, associated (a GuruxPeer: its trace printed if that fails; a
    # CosemPeer: connect() and associate())
    try:
        peer.connect()
        if isinstance(peer, CosemPeer):
            peer.associate()
    except Exception:
        if isinstance(peer, GuruxPeer):
            print(peer.trace_text())
        raise
    return peer


def hdlc_frames(stream):
    # The HDLC frames in a byte stream as it crossed the line: (format
    # field, control field) of each, found by the frame format's length.
    out = []
    i = 0
    while i + 2 < len(stream):
        if stream[i] != 0x7E or stream[i + 1] == 0x7E:
            i += 1
            continue
        n = ((stream[i + 1] & 0x07) << 8) | stream[i + 2]
        j = i + 3
        for _ in range(2):  # destination and source address: bit 0 ends each
            while j < len(stream) and not stream[j] & 1:
                j += 1
            j += 1
        out.append((stream[i + 1], stream[j] if j < len(stream) else None))
        i += n + 1  # onto the closing flag, which may open the next frame
    return out


# ------------------------------------------ Profile generic selective access


def cosem_error_code(exc):
    # The data-access-result in a dlms-cosem DataResultError ("... GET
    # request: <DataAccessResult.OTHER_REASON: 250>"), or None.
    import re

    m = re.search(r"DataAccessResult\.\w+: (\d+)", str(exc))
    return int(m.group(1)) if m else None


def _definition(class_id, obis, attr=2, data_index=0):
    # a capture object definition, A-XDR
    ln = bytes(int(x) for x in obis.split("."))
    return b"\x02\x04\x12" + class_id.to_bytes(2, "big") + b"\x09\x06" + ln + b"\x0f" + bytes([attr & 0xFF]) + b"\x12" + data_index.to_bytes(2, "big")


def cosem_range(from_dt, to_dt, columns=(), restricting=(8, "0.0.1.0.0.255")):
    # dlms-cosem's RangeDescriptor (restricting object: the clock). Its own
    # to_bytes() cannot encode selected values (NotImplementedError): with
    # columns ((class_id, obis) of capture objects), the selected values are
    # appended here; dlms-cosem still sends and reassembles the GET.
    from dlms_cosem import cosem, enumerations
    from dlms_cosem.cosem.capture_object import CaptureObject
    from dlms_cosem.cosem.selective_access import RangeDescriptor

    class WithColumns(RangeDescriptor):
        def to_bytes(self):
            b = bytearray(RangeDescriptor.to_bytes(self))
            if columns:
                del b[-2:]  # the empty array dlms-cosem wrote
                b += bytes([0x01, len(columns)])
                for cid, obis in columns:
                    b += _definition(cid, obis)
            return bytes(b)

    obj = CaptureObject(
        cosem_attribute=cosem.CosemAttribute(
            interface=enumerations.CosemInterface(restricting[0]), instance=cosem.Obis.from_string(restricting[1]), attribute=2
        )
    )
    return WithColumns(restricting_object=obj, from_value=from_dt, to_value=to_dt)


def cosem_entry(from_entry, to_entry=0, from_column=1, to_column=0):
    # dlms-cosem's EntryDescriptor, whose to_bytes() it does not implement
    # (NotImplementedError): encoded here as entry_descriptor {from_entry,
    # to_entry double-long-unsigned, from_selected_value, to_selected_value
    # long-unsigned}.
    from dlms_cosem.cosem.selective_access import EntryDescriptor

    class Encoded(EntryDescriptor):
        def to_bytes(self):
            return (
                b"\x02\x02\x04\x06"
                + self.from_entry.to_bytes(4, "big")
                + b"\x06"
                + self.to_entry.to_bytes(4, "big")
                + b"\x12"
                + self.from_selected_value.to_bytes(2, "big")
                + b"\x12"
                + self.to_selected_value.to_bytes(2, "big")
            )

    return Encoded(from_entry=from_entry, to_entry=to_entry, from_selected_value=from_column, to_selected_value=to_column)


def gurux_code(fn, *args):
    # Call a GuruxPeer request (p.method, p.write, p.read with its
    # arguments): 0 when it succeeded, else the result code the meter
    # answered with (data-access-result or action-result).
    try:
        fn(*args)
    except GuruxError as e:
        return int(e.code)
    return 0
