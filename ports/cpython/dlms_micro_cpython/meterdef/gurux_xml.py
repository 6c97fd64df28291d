# Gurux object collections -> meter definitions (docs/meter-definition.md,
# "dlms-micro/1"): `dlms-micro meter import FILE.xml -o FILE.json`.
#
#   definition, report = import_gurux("device.xml")   # or the XML text
#
# Reads the XML that gurux-dlms's GXDLMSObjectCollection.save writes (and
# GXDLMSDirector / the Gurux simulator keep: the same <Objects> element, at
# the root or inside a device file): one element per object, named after the
# Gurux class (<GXDLMSRegister>), with <LN>, <Access> (one digit per
# attribute: the access of the association the collection was read with),
# <MethodAccess>, and the class's attributes as child elements. The format
# was learnt by saving collections with gurux-dlms as a black box
# (tools/gurux_fixtures.py makes the test fixtures); no Gurux code is used or
# imported here.
#
# What cannot be mapped is reported per object in `report` (one line each,
# "OBIS (class): what and why"), never dropped silently: classes this stack
# does not implement, run-time values (a profile's rows, a clock's time),
# parameters the definition has no key for. Bad input (malformed XML, an
# element that is no Gurux class, a value that does not parse as its type)
# raises GuruxImportError naming the file, line, object and element.

import math
import re
import struct
import xml.parsers.expat

FORMAT = "dlms-micro/1"
DEFAULT_PASSWORD = "12345678"  # an LLS association whose secret the XML does not carry


class GuruxImportError(ValueError):
    pass


# ------------------------------------------------------------------ XML tree


class Node:
    # An element with the line it starts on (ElementTree keeps no lines).
    __slots__ = ("tag", "attrib", "text", "children", "line")

    def __init__(self, tag, attrib, line):
        self.tag = tag
        self.attrib = attrib
        self.text = ""
        self.children = []
        self.line = line

    def find(self, tag):
        for c in self.children:
            if c.tag == tag:
                return c
        return None

    def findall(self, tag):
        return [c for c in self.children if c.tag == tag]


def parse_xml(data, source="<xml>"):
    # bytes or str -> the root Node. No DTDs (so no entity expansion).
    p = xml.parsers.expat.ParserCreate()
    stack = []
    root = []

    def start(tag, attrib):
        n = Node(tag, attrib, p.CurrentLineNumber)
        if stack:
            stack[-1].children.append(n)
        else:
            root.append(n)
        stack.append(n)

    def end(tag):
        n = stack.pop()
        n.text = n.text.strip()

    def chars(s):
        if stack:
            stack[-1].text += s

    def doctype(*args):
        raise GuruxImportError("%s:%d: a DOCTYPE is not accepted in a Gurux object collection"
                               % (source, p.CurrentLineNumber))

    p.StartElementHandler = start
    p.EndElementHandler = end
    p.CharacterDataHandler = chars
    p.StartDoctypeDeclHandler = doctype
    try:
        p.Parse(data, True)
    except xml.parsers.expat.ExpatError as e:
        raise GuruxImportError("%s:%d: malformed XML (column %d): %s"
                               % (source, e.lineno, e.offset + 1, xml.parsers.expat.ErrorString(e.code))) from None
    return root[0]


# ------------------------------------------------------------ Gurux classes

# Gurux element name -> (class id, definition class name or None when this
# stack does not implement it, a human name)
GURUX_CLASSES = {
    "GXDLMSData": (1, "data", "Data"),
    "GXDLMSRegister": (3, "register", "Register"),
    "GXDLMSExtendedRegister": (4, "extended-register", "Extended register"),
    "GXDLMSDemandRegister": (5, "demand-register", "Demand register"),
    "GXDLMSRegisterActivation": (6, "register-activation", "Register activation"),
    "GXDLMSProfileGeneric": (7, "profile-generic", "Profile generic"),
    "GXDLMSClock": (8, "clock", "Clock"),
    "GXDLMSScriptTable": (9, "script-table", "Script table"),
    "GXDLMSSchedule": (10, None, "Schedule"),
    "GXDLMSSpecialDaysTable": (11, "special-days-table", "Special days table"),
    "GXDLMSAssociationShortName": (12, None, "Association SN"),
    "GXDLMSAssociationLogicalName": (15, "association-ln", "Association LN"),
    "GXDLMSSapAssignment": (17, "sap-assignment", "SAP assignment"),
    "GXDLMSImageTransfer": (18, "image-transfer", "Image transfer"),
    "GXDLMSIecLocalPortSetup": (19, "iec-local-port-setup", "IEC local port setup"),
    "GXDLMSIECLocalPortSetup": (19, "iec-local-port-setup", "IEC local port setup"),
    "GXDLMSActivityCalendar": (20, "activity-calendar", "Activity calendar"),
    "GXDLMSRegisterMonitor": (21, "register-monitor", "Register monitor"),
    "GXDLMSActionSchedule": (22, "single-action-schedule", "Single action schedule"),
    "GXDLMSIecHdlcSetup": (23, "iec-hdlc-setup", "IEC HDLC setup"),
    "GXDLMSHdlcSetup": (23, "iec-hdlc-setup", "IEC HDLC setup"),
    "GXDLMSIecTwistedPairSetup": (24, None, "IEC twisted pair setup"),
    "GXDLMSMBusSlavePortSetup": (25, None, "M-Bus slave port setup"),
    "GXDLMSUtilityTables": (26, None, "Utility tables"),
    "GXDLMSModemConfiguration": (27, None, "Modem configuration"),
    "GXDLMSAutoAnswer": (28, None, "Auto answer"),
    "GXDLMSAutoConnect": (29, None, "Auto connect"),
    "GXDLMSPushSetup": (40, "push-setup", "Push setup"),
    "GXDLMSTcpUdpSetup": (41, None, "TCP-UDP setup"),
    "GXDLMSIp4Setup": (42, None, "IPv4 setup"),
    "GXDLMSMacAddressSetup": (43, None, "MAC address setup"),
    "GXDLMSPppSetup": (44, None, "PPP setup"),
    "GXDLMSGprsSetup": (45, None, "GPRS modem setup"),
    "GXDLMSSmtpSetup": (46, None, "SMTP setup"),
    "GXDLMSGSMDiagnostic": (47, None, "GSM diagnostic"),
    "GXDLMSIp6Setup": (48, None, "IPv6 setup"),
    "GXDLMSLlcSscsSetup": (80, None, "LLC SSCS setup"),
    "GXDLMSRegisterTable": (61, None, "Register table"),
    "GXDLMSCompactData": (62, "compact-data", "Compact data"),
    "GXDLMSStatusMapping": (63, None, "Status mapping"),
    "GXDLMSSecuritySetup": (64, "security-setup", "Security setup"),
    "GXDLMSParameterMonitor": (65, None, "Parameter monitor"),
    "GXDLMSDisconnectControl": (70, "disconnect-control", "Disconnect control"),
    "GXDLMSLimiter": (71, "limiter", "Limiter"),
    "GXDLMSMBusClient": (72, None, "M-Bus client"),
    "GXDLMSMBusMasterPortSetup": (74, None, "M-Bus master port setup"),
    "GXDLMSPrimeNbOfdmPlcPhysicalLayerCounters": (81, None, "PRIME PLC physical layer counters"),
    "GXDLMSPrimeNbOfdmPlcMacSetup": (82, None, "PRIME PLC MAC setup"),
    "GXDLMSPrimeNbOfdmPlcMacFunctionalParameters": (83, None, "PRIME PLC MAC functional parameters"),
    "GXDLMSPrimeNbOfdmPlcMacCounters": (84, None, "PRIME PLC MAC counters"),
    "GXDLMSPrimeNbOfdmPlcMacNetworkAdministrationData": (85, None, "PRIME PLC MAC network administration data"),
    "GXDLMSPrimeNbOfdmPlcApplicationsIdentification": (86, None, "PRIME PLC applications identification"),
    "GXDLMSG3PlcMacLayerCounters": (90, None, "G3-PLC MAC layer counters"),
    "GXDLMSG3PlcMacSetup": (91, None, "G3-PLC MAC setup"),
    "GXDLMSG3Plc6LoWPan": (92, None, "G3-PLC 6LoWPAN adaptation layer setup"),
    "GXDLMSNtpSetup": (100, None, "NTP setup"),
    "GXDLMSAccount": (111, "account", "Account"),
    "GXDLMSCredit": (112, "credit", "Credit"),
    "GXDLMSCharge": (113, "charge", "Charge"),
    "GXDLMSToken": (115, "token-gateway", "Token gateway"),
    "GXDLMSTokenGateway": (115, "token-gateway", "Token gateway"),
    "GXDLMSFunctionControl": (122, None, "Function control"),
    "GXDLMSArrayManager": (123, None, "Array manager"),
    "GXDLMSCommunicationPortProtection": (124, None, "Communication port protection"),
    "GXDLMSLteMonitoring": (151, None, "LTE monitoring"),
    "GXDLMSGXDLMSLteMonitoring": (151, None, "LTE monitoring"),  # the name gurux-dlms 1.0.203 writes
}

# The class versions this stack implements (docs/meter-definition.md)
VERSIONS = {1: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 1, 8: 0, 9: 0, 11: 0, 15: 1, 17: 0, 18: 0, 19: 1, 20: 0, 21: 0,
            22: 0, 23: 1, 40: 0, 62: 0, 64: 1, 70: 0, 71: 0, 111: 0, 112: 0, 113: 0, 115: 0}

# A-XDR type tag -> definition type name
TYPE_NAMES = {
    0: "null-data", 1: "array", 2: "structure", 3: "boolean", 4: "bit-string", 5: "double-long",
    6: "double-long-unsigned", 9: "octet-string", 10: "visible-string", 12: "utf8-string", 13: "bcd",
    15: "integer", 16: "long", 17: "unsigned", 18: "long-unsigned", 20: "long64", 21: "long64-unsigned",
    22: "enum", 23: "float32", 24: "float64", 25: "date-time", 26: "date", 27: "time",
}
INT_RANGES = {
    5: (-(2**31), 2**31 - 1), 6: (0, 2**32 - 1), 13: (-128, 127), 15: (-128, 127), 16: (-32768, 32767),
    17: (0, 255), 18: (0, 65535), 20: (-(2**63), 2**63 - 1), 21: (0, 2**64 - 1), 22: (0, 255),
}
INT_SIZES = {5: 4, 6: 4, 13: 1, 15: 1, 16: 2, 17: 1, 18: 2, 20: 8, 21: 8, 22: 1}

# Blue Book units the definition names (docs/meter-definition.md, "Values");
# any other unit is written as its enum number
UNIT_NAMES = {4: "d", 5: "h", 6: "min", 7: "s", 9: "°C", 13: "m3", 19: "l", 25: "J", 27: "W", 28: "VA", 29: "var",
              30: "Wh", 31: "VAh", 32: "varh", 33: "A", 35: "V", 44: "Hz", 52: "K", 56: "%", 255: "count"}

# Gurux AccessMode digits -> definition attribute modes (4..6: the same,
# with authenticated requests: the association's security policy says that)
ACCESS_MODES = {"0": "none", "1": "read", "2": "write", "3": "read-write", "4": "read", "5": "write",
                "6": "read-write"}
BAUDS = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
MECHANISMS = {0: "none", 1: "low", 5: "high-gmac"}
ROLE_NAMES = {"none": "public", "low": "reader", "high-gmac": "management"}

LDN = "0.0.42.0.0.255"
SERIAL = "0.0.96.1.0.255"
INVOCATION_COUNTER = "0.0.43.1.0.255"
CURRENT_ASSOCIATION = "0.0.40.0.0.255"


# ------------------------------------------------------------- one object


class ObjectReader:
    # The element of one object: typed reads of its children, errors that
    # name the place, report lines that name the object.
    def __init__(self, node, index, source, report):
        self.node = node
        self.index = index
        self.source = source
        self._report = report
        self.ln = None
        cls = GURUX_CLASSES.get(node.tag)
        self.class_id, self.name, self.title = cls if cls else (None, None, node.tag)
        ln = node.find("LN")
        if ln is None or not ln.text:
            raise self.error(ln or node, "no <LN> (logical name)")
        self.ln = self.obis(ln, ln.text)

    def where(self, node):
        what = "objects[%d] %s" % (self.index, self.node.tag)
        if self.ln:
            what += " " + self.ln
        if node is not self.node:
            what += ": <%s>" % node.tag
        return "%s:%d: %s" % (self.source, node.line, what)

    def error(self, node, msg):
        return GuruxImportError("%s: %s" % (self.where(node), msg))

    def report(self, msg):
        self._report.append("%s (%s): %s" % (self.ln, self.title, msg))

    def obis(self, node, text):
        parts = text.strip().split(".")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            nums = []
        if len(nums) != 6 or any(not 0 <= n <= 255 for n in nums):
            raise self.error(node, "%r is not a logical name (six numbers 0..255 separated by dots)" % text)
        return ".".join(str(n) for n in nums)

    # children by tag
    def child(self, tag):
        return self.node.find(tag)

    def text(self, tag, parent=None):
        n = (parent or self.node).find(tag)
        return n.text if n is not None else None

    def int(self, tag, lo=None, hi=None, parent=None, default=None):
        n = (parent or self.node).find(tag)
        if n is None or n.text == "":
            return default
        return self.int_of(n, n.text, lo, hi)

    def int_of(self, node, text, lo=None, hi=None):
        try:
            v = int(text)
        except ValueError:
            raise self.error(node, "%r is not an integer" % text) from None
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(node, "%d is out of range %s..%s" % (v, lo, hi))
        return v

    def bool(self, tag):
        n = self.child(tag)
        if n is None or n.text == "":
            return None
        t = n.text.lower()
        if t in ("1", "true"):
            return True
        if t in ("0", "false"):
            return False
        raise self.error(n, "%r is not a boolean (0/1, true/false)" % n.text)

    def hex_octets(self, node):
        try:
            return bytes.fromhex(node.text)
        except ValueError:
            raise self.error(node, "%r is not hex octets (e.g. \"01 02 AB\")" % node.text) from None

    def ref_ln(self, node):
        # an <LN> child as an OBIS string, None when empty
        n = node.find("LN")
        if n is None or not n.text:
            return None
        return self.obis(n, n.text)

    def value(self, node):
        # A <... Type="N">text</...> element -> (type tag, JSON value), the
        # value as the definition writes it. Type missing: (None, None).
        t = node.attrib.get("Type")
        if t is None:
            if node.text or node.children:
                raise self.error(node, "a value without its Type attribute")
            return None, None
        tag = self.int_of(node, t, 0, 255)
        if tag not in TYPE_NAMES:
            raise self.error(node, "unknown data type %d" % tag)
        return tag, self.json_value(node, tag)

    def json_value(self, node, tag):
        text = node.text
        if tag in (1, 2):
            return {"hex": self.encode(node, tag).hex().upper()}
        if tag == 0:
            return None
        if tag in INT_RANGES:
            lo, hi = INT_RANGES[tag]
            try:
                v = int(text)
            except ValueError:
                raise self.error(node, "%r is not a %s value" % (text, TYPE_NAMES[tag])) from None
            if not lo <= v <= hi:
                raise self.error(node, "%d is out of range for %s (%d..%d)" % (v, TYPE_NAMES[tag], lo, hi))
            return v
        if tag == 3:
            if text.lower() in ("1", "true"):
                return True
            if text.lower() in ("0", "false"):
                return False
            raise self.error(node, "%r is not a boolean value" % text)
        if tag in (23, 24):
            try:
                return float(text)
            except ValueError:
                raise self.error(node, "%r is not a %s value" % (text, TYPE_NAMES[tag])) from None
        if tag == 9:
            if node.attrib.get("UIType") in ("10", "12"):  # octets Gurux shows as text
                return text
            return octets_json(self.hex_octets(node))
        if tag in (10, 12):
            return text
        if tag == 4:
            if not re.fullmatch(r"[01]*", text):
                raise self.error(node, "%r is not a bit-string (digits 0 and 1)" % text)
            return text
        if tag == 25:
            return gurux_date_time(text, lambda m: self.error(node, m)).hex().upper()
        if tag == 26:
            return {"hex": gurux_date_time(text, lambda m: self.error(node, m))[:5].hex().upper()}
        if tag == 27:
            return {"hex": time_of_day(gurux_date_time(text, lambda m: self.error(node, m))).hex().upper()}
        raise self.error(node, "data type %s is not supported" % TYPE_NAMES[tag])

    def encode(self, node, tag):
        # The A-XDR encoding (tag included) of a typed value element; arrays
        # and structures from their <Item Type="N"> children.
        out = bytearray((tag,))
        if tag in (1, 2):
            items = node.findall("Item")
            out += length(len(items))
            for it in items:
                t = it.attrib.get("Type")
                it_tag = 0 if t is None else self.int_of(it, t, 0, 255)
                if it_tag not in TYPE_NAMES:
                    raise self.error(it, "unknown data type %d" % it_tag)
                out += self.encode(it, it_tag)
            return bytes(out)
        if tag == 0:
            return bytes(out)
        v = self.json_value(node, tag)
        if tag in INT_RANGES:
            out += v.to_bytes(INT_SIZES[tag], "big", signed=INT_RANGES[tag][0] < 0)
        elif tag == 3:
            out.append(1 if v else 0)
        elif tag == 23:
            out += struct.pack(">f", v)
        elif tag == 24:
            out += struct.pack(">d", v)
        elif tag in (9, 10, 12):
            b = bytes.fromhex(v["hex"]) if isinstance(v, dict) else v.encode("utf-8")
            out += length(len(b)) + b
        elif tag == 4:
            b = bytearray((len(v) + 7) // 8)
            for i, c in enumerate(v):
                if c == "1":
                    b[i // 8] |= 0x80 >> (i % 8)
            out += length(len(v)) + b
        elif tag == 25:
            out += bytes.fromhex(v)
        else:  # date, time
            out += bytes.fromhex(v["hex"])
        return bytes(out)


def octets_json(b):
    # octets as the definition writes them: printable ones as their
    # characters (the same octets), others as {"hex": ...}
    if b and all(0x20 <= c < 0x7F for c in b):
        return b.decode("ascii")
    return {"hex": b.hex().upper()}


def length(n):
    # A-XDR length: one byte below 128, else 0x8N and N bytes
    if n < 0x80:
        return bytes((n,))
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(b),)) + b


_DATE_WORDS = {"BEGIN": 0xFE, "END": 0xFD}  # month: daylight savings begin / end
_DAY_WORDS = {"LASTDAY": 0xFE, "LASTDAY2": 0xFD}
_ZONE = re.compile(r"^(.*?)(Z|([+-])-?(\d{1,2}):(\d{2}))$")


def gurux_date_time(text, error):
    # Gurux's text of a COSEM date-time ("01/31/2026 12:00:00Z",
    # "03/LASTDAY/* 01:00:00", "*/*/* *:*:*", " 07:00:00") -> its 12 bytes:
    # fields not written are "not specified" (0xFF, deviation 0x8000), as
    # are the day of week and the clock status, which Gurux does not write.
    # The zone: "Z" deviation 0; "+01:00" deviation -60; "-01:00" (written
    # "--1:00" by gurux-dlms) deviation +60, as the bytes gurux reads give.
    b = bytearray(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff")
    s = text.strip()
    if not s:
        return bytes(b)
    m = _ZONE.match(s)
    if m:
        s = m.group(1).strip()
        if m.group(2) == "Z":
            dev = 0
        else:
            dev = int(m.group(4)) * 60 + int(m.group(5))
            if m.group(3) == "+":
                dev = -dev
        b[9:11] = (dev & 0xFFFF).to_bytes(2, "big")
    for part in s.split():
        if "/" in part or ("-" in part and ":" not in part):
            _date_part(part, b, error)
        elif ":" in part:
            _time_part(part, b, error)
        else:
            raise error("%r is not a Gurux date-time (MM/DD/YYYY HH:MM:SS)" % text)
    return bytes(b)


def _field(tok, lo, hi, words, error, what):
    if tok == "*" or tok == "":
        return 0xFF
    if tok in words:
        return words[tok]
    try:
        v = int(tok)
    except ValueError:
        raise error("%r is not a %s" % (tok, what)) from None
    if not lo <= v <= hi:
        raise error("%s %d is out of range %d..%d" % (what, v, lo, hi))
    return v


def _date_part(part, b, error):
    if "-" in part and "/" not in part:  # ISO order YYYY-MM-DD
        fields = part.split("-")
        if len(fields) != 3:
            raise error("%r is not a date" % part)
        year, month, day = fields
    else:
        fields = part.split("/")
        if len(fields) == 2:
            fields.append("*")
        if len(fields) != 3:
            raise error("%r is not a Gurux date (MM/DD/YYYY)" % part)
        month, day, year = fields
    b[2] = _field(month, 1, 12, _DATE_WORDS, error, "month")
    b[3] = _field(day, 1, 31, _DAY_WORDS, error, "day")
    if year == "*":
        b[0:2] = b"\xff\xff"
    else:
        y = _field(year, 0, 9999, {}, error, "year")
        if len(year) <= 2:
            y += 2000
        b[0:2] = y.to_bytes(2, "big")


def _time_part(part, b, error):
    fields = part.split(":")
    if len(fields) < 2 or len(fields) > 4:
        raise error("%r is not a time (HH:MM:SS)" % part)
    if "." in fields[-1]:
        sec, frac = fields[-1].split(".", 1)
        fields[-1:] = [sec, frac]
    b[5] = _field(fields[0], 0, 23, {}, error, "hour")
    b[6] = _field(fields[1], 0, 59, {}, error, "minute")
    b[7] = _field(fields[2], 0, 59, {}, error, "second") if len(fields) > 2 else 0xFF
    if len(fields) > 3 and fields[3] != "*":
        digits = fields[3][:2].ljust(2, "0")
        b[8] = _field(digits, 0, 99, {}, error, "hundredths")


# ---------------------------------------------------------- class mappers
#
# Each takes the ObjectReader and the definition object (a dict already
# holding class, obis, access) and adds the class's parameters; what it
# cannot map it reports. Elements a mapper does not look at are reported by
# import_gurux (unless listed in RUN_TIME, the values a meter makes itself).

RUN_TIME = {
    3: (), 4: ("CaptureTime",), 5: ("LastAverageValue", "CaptureTime", "StartTimeCurrent"),
    7: ("Buffer", "EntriesInUse"), 8: ("Time",),
    18: ("ImageTransferredBlocksStatus", "ImageFirstNotTransferredBlockNumber", "ImageTransferStatus",
         "ImageActivateInfo"),
    70: ("OutputState",), 71: ("Active",),
    113: ("LastCollectionTime", "LastCollectionAmount"),
    111: ("CurrentCreditInUse", "CurrentCreditStatus", "AvailableCredit", "AmountToClear",
          "AggregatedDebt", "AccountActivationTime", "AccountClosureTime"),
    115: ("Token", "Time", "Status", "Data"),
}


def _typed(r, obj, node, what="value", type_key="type"):
    # a typed value element -> obj[type_key], obj[what]
    if node is None:
        return
    tag, v = r.value(node)
    if tag is None:
        return
    if tag in (1, 2):
        raise r.error(node, "a %s value cannot be a %s here" % (TYPE_NAMES[tag], what))
    obj[type_key] = TYPE_NAMES[tag]
    if tag != 0:
        obj[what] = v


def map_data(r, obj):
    n = r.child("Value")
    if n is None:
        return
    tag, v = r.value(n)
    if tag is None or tag == 0:
        return
    if tag in (1, 2):
        # the encoded element, as the definition takes a value it has no type name for
        obj["value"] = v
        return
    obj["type"] = TYPE_NAMES[tag]
    obj["value"] = v


def scaler_unit(r, obj, scaler_tag="Scaler", unit_tag="Unit"):
    n = r.child(scaler_tag)
    if n is not None and n.text:
        try:
            f = float(n.text)
        except ValueError:
            raise r.error(n, "%r is not a number (Gurux writes the scaler as its factor, 10^scaler)" % n.text) from None
        if f <= 0 or not math.isfinite(f):
            raise r.error(n, "%r is not a factor 10^scaler" % n.text)
        s = int(round(math.log10(f)))
        if abs(10.0 ** s - f) > 1e-9 * f or not -128 <= s <= 127:
            raise r.error(n, "%r is not a power of ten (Gurux writes the scaler as 10^scaler)" % n.text)
        obj["scaler"] = s
    u = r.int(unit_tag, 0, 255)
    if u is not None:
        obj["unit"] = UNIT_NAMES.get(u, u)


def map_register(r, obj):
    _typed(r, obj, r.child("Value"))
    scaler_unit(r, obj)


def map_extended_register(r, obj):
    map_register(r, obj)
    _typed(r, obj, r.child("Status"), "status", "status_type")


def map_demand_register(r, obj):
    n = r.child("CurrentAverageValue")
    if n is not None and n.attrib.get("Type"):
        tag, _v = r.value(n)
        if tag not in (None, 0):
            obj["type"] = TYPE_NAMES[tag]
    n = r.child("Status")
    if n is not None and n.attrib.get("Type"):
        tag, _v = r.value(n)
        if tag not in (None, 0):
            obj["status_type"] = TYPE_NAMES[tag]
    scaler_unit(r, obj)
    p = r.int("Period", 0, 2**32 - 1)
    if p is not None:
        obj["period"] = p
    k = r.int("NumberOfPeriods", 1, 65535)
    if k is not None:
        obj["number_of_periods"] = k
    # what it averages is not in the XML: by the OBIS convention, the time
    # integral (D = 8) of the same quantity (C) and rate (E)
    g = [int(x) for x in r.ln.split(".")]
    energy = "%d.%d.%d.8.%d.%d" % (g[0], g[1], g[2], g[4], g[5])
    if r.lns.get(energy) in (3, 4):
        obj["energy_register"] = energy
        r.report("energy_register %s: the register it averages is not in the XML: taken by the OBIS code "
                 "(the same quantity's time integral), check it" % energy)
    else:
        r.report("energy_register: the register it averages is not in the XML, nor %s" % energy)


def capture_ref(r, item, attr_tag="Attribute", index_tag="Data"):
    ln = r.ref_ln(item)
    if ln is None:
        raise r.error(item, "an object reference without its <LN>")
    a = r.int(attr_tag, 0, 127, parent=item, default=0)
    d = r.int(index_tag, 0, 65535, parent=item, default=0)
    return "%s:%d:%d" % (ln, a, d) if d else "%s:%d" % (ln, a)


def map_profile(r, obj):
    co = r.child("CaptureObjects")
    if co is not None:
        obj["capture_objects"] = [capture_ref(r, it) for it in co.findall("Item")]
    p = r.int("CapturePeriod", 0, 2**32 - 1)
    if p is not None:
        obj["capture_period"] = p
    e = r.int("ProfileEntries", 0, 2**32 - 1)
    if e is not None:
        if e == 0:
            r.report("profile_entries 0 in the XML: left to the definition's default")
        else:
            obj["profile_entries"] = e
    sm = r.int("SortMethod", 0, 255)
    if sm not in (None, 1):
        r.report("sort_method %d is not FIFO (1), the only one this stack keeps: imported as FIFO" % sm)
    so = r.child("SortObject")
    if so is not None and r.ref_ln(so) not in (None, "0.0.0.0.0.0"):
        r.report("sort_object %s not imported (FIFO profiles have none)" % r.ref_ln(so))
    buf = r.child("Buffer")
    if buf is not None and buf.children:
        r.report("buffer: %d rows not imported (the meter captures its own)" % len(buf.children))


def map_clock(r, obj):
    tz = r.int("TimeZone", -720, 720)
    if tz is not None:
        obj["time_zone"] = tz
    st = r.int("Status", 0, 255)
    if st is not None:
        obj["status"] = st
    for tag, key in (("Begin", "daylight_savings_begin"), ("End", "daylight_savings_end")):
        n = r.child(tag)
        if n is not None and n.text:
            b = gurux_date_time(n.text, lambda m, n=n: r.error(n, m))
            obj[key] = b.hex().upper()
            if b[3] in (0xFD, 0xFE):
                # "last Sunday of March" and "last day of March" are the same text there
                r.report("%s %s: Gurux writes no day of week: imported as the last day of the month (%s); "
                         "the last Sunday is %s" % (key, n.text, obj[key], (b[:4] + b"\x07" + b[5:]).hex().upper()))
    d = r.int("Deviation", -120, 120)
    if d is not None:
        obj["daylight_savings_deviation"] = d
    en = r.bool("Enabled")
    if en is not None:
        obj["daylight_savings_enabled"] = en
    cb = r.int("ClockBase", 0, 5)
    if cb is not None:
        obj["clock_base"] = cb
    t = r.text("Time")
    if t and t.strip("*/: "):
        r.report("time %s not imported (the meter keeps its own clock)" % t)


def map_hdlc_setup(r, obj):
    sp = r.int("Speed", 0, len(BAUDS) - 1)
    if sp is not None:
        obj["communication_speed"] = BAUDS[sp]
    for tx, rx, key, lo, hi in (("WindowSizeTx", "WindowSizeRx", "window_size", 1, 7),
                                ("MaximumInfoLengthTx", "MaximumInfoLengthRx", "max_info_field_length", 32, 2030)):
        a, b = r.int(tx, 0, 65535), r.int(rx, 0, 65535)
        vals = [v for v in (a, b) if v is not None]
        if not vals:
            continue
        v = min(vals)
        if a is not None and b is not None and a != b:
            r.report("%s: transmit %d and receive %d differ; this stack has one value: %d" % (key, a, b, v))
        if not lo <= v <= hi:
            r.report("%s %d is outside %d..%d: not imported" % (key, v, lo, hi))
        else:
            obj[key] = v
    t = r.int("InterCharachterTimeout", 0, 65535)
    if t is not None:
        obj["inter_octet_timeout"] = t
    t = r.int("InactivityTimeout", 0, 65535)
    if t is not None:
        obj["inactivity_timeout"] = t
    da = r.int("DeviceAddress", 0, 0x3FFF)
    if da is not None:
        obj["_device_address"] = da  # becomes the top-level physical_address


def map_local_port(r, obj):
    modes = {0: "iec-62056-21", 1: "hdlc", 2: "not-specified"}
    m = r.int("DefaultMode", 0, 2)
    if m is not None:
        obj["default_mode"] = modes[m]
    for tag, key in (("DefaultBaudrate", "default_baud"), ("ProposedBaudrate", "proposed_baud")):
        b = r.int(tag, 0, len(BAUDS) - 1)
        if b is not None:
            obj[key] = BAUDS[b]
    rt = r.int("ResponseTime", 0, 1)
    if rt is not None:
        obj["response_time"] = 20 if rt == 0 else 200
    for tag, key in (("DeviceAddress", "device_address"), ("Password1", "pass_p1"), ("Password2", "pass_p2"),
                     ("Password5", "pass_w5")):
        t = r.text(tag)
        if t:
            obj[key] = t


def map_disconnect(r, obj):
    m = r.int("ControlMode", 0, 6)
    if m is not None:
        obj["control_mode"] = m
    cs = r.int("ControlState", 0, 2)
    if cs is not None:
        obj["control_state"] = cs


def map_image_transfer(r, obj):
    bs = r.int("ImageBlockSize", 1, 2**32 - 1)
    if bs is not None:
        obj["image_block_size"] = bs
    en = r.bool("ImageTransferEnabled")
    if en is not None:
        obj["image_transfer_enabled"] = en


def hexed(b):
    return {"hex": b.hex().upper()}


def octets_of(r, node):
    # octets as Gurux writes them (hex pairs) -> the definition's value
    return octets_json(r.hex_octets(node)) if node is not None and node.text else ""


def when(r, node, start=0, end=12):
    # a Gurux date-time text -> {"hex": bytes start..end of its 12}; a time
    # of day alone (5..9) as time_of_day makes it
    b = gurux_date_time(node.text if node is not None else "", lambda m: r.error(node, m))
    return hexed(time_of_day(b) if (start, end) == (5, 9) else b[start:end])


def time_of_day(b):
    # The 4 time bytes of a date-time Gurux wrote: Gurux writes no
    # hundredths; a time of day with its seconds given has 0 of them (as
    # meters write a day profile's start times), else they are not specified.
    t = bytearray(b[5:9])
    if t[2] != 0xFF and t[3] == 0xFF:
        t[3] = 0
    return bytes(t)


def typed_parameter(r, node, act, declared=None):
    # a script action's parameter: "type" and "value", or the encoded
    # element as "value" (arrays, structures). declared: the action's
    # <ParameterDataType>, the type the script writes (Gurux's Type
    # attribute may be the one it guessed from the value: double-long for
    # any integer)
    if node is None or node.attrib.get("Type") is None:
        return
    tag, v = r.value(node)
    if declared not in (None, tag) and declared in TYPE_NAMES and declared not in (0, 1, 2):
        saved = node.attrib["Type"]
        node.attrib["Type"] = str(declared)
        try:
            tag, v = r.value(node)
        finally:
            node.attrib["Type"] = saved
    if tag in (1, 2):
        act["value"] = v
    elif tag is not None:
        act["type"] = TYPE_NAMES[tag]
        if tag != 0:
            act["value"] = v


def map_script_table(r, obj):
    scripts = []
    sc = r.child("Scripts")
    for s in (sc.findall("Script") if sc is not None else ()):
        actions = []
        acts = s.find("Actions")
        for a in (acts.findall("Action") if acts is not None else ()):
            kind = r.int("Type", 0, 2, parent=a)
            if kind == 0:  # Gurux's "nothing"
                r.report("script %s: an action of type 0 (nothing) left out" % r.text("ID", s))
                continue
            ln = r.ref_ln(a)
            if ln is None:
                raise r.error(a, "a script action without its <LN>")
            act = {"service": "write-attribute" if kind == 1 else "execute-method",
                   "target": "%s:%d" % (ln, r.int("Index", 0, 255, parent=a, default=0))}
            typed_parameter(r, a.find("Parameter"), act, r.int("ParameterDataType", 0, 255, parent=a))
            actions.append(act)
        scripts.append({"script_identifier": r.int("ID", 0, 65535, parent=s), "actions": actions})
    obj["scripts"] = scripts


def map_special_days(r, obj):
    entries = []
    es = r.child("Entries")
    for e in (es.findall("Entry") if es is not None else ()):
        entries.append({"index": r.int("Index", 0, 65535, parent=e),
                        "specialday_date": when(r, e.find("Date") or e, 0, 5),
                        "day_id": r.int("DayId", 0, 255, parent=e)})
    obj["entries"] = entries


def map_register_activation(r, obj):
    ra = r.child("RegisterAssignment")
    obj["register_assignment"] = [r.ref_ln(it) for it in (ra.findall("Item") if ra is not None else ())]
    masks = []
    ml = r.child("MaskList")
    for it in (ml.findall("Item") if ml is not None else ()):
        idx = it.find("Index")
        masks.append({"mask_name": octets_of(r, it.find("Mask")),
                      "index_list": list(r.hex_octets(idx)) if idx is not None else []})
    obj["mask_list"] = masks
    am = r.child("ActiveMask")
    if am is not None and am.text:
        obj["active_mask"] = octets_of(r, am)


def map_single_action_schedule(r, obj):
    # the object's own <LN> comes first; the script table's is the second
    lns = r.node.findall("LN")
    if len(lns) > 1 and lns[1].text:
        obj["executed_script"] = "%s:%d" % (r.obis(lns[1], lns[1].text),
                                            r.int("ExecutedScriptSelector", 0, 65535, default=0))
    t = r.int("Type", 1, 5)
    if t is not None:
        obj["type"] = t
    et = r.child("ExecutionTime")
    obj["execution_time"] = [{"time": when(r, n, 5, 9), "date": when(r, n, 0, 5)}
                             for n in (et.children if et is not None else ())]


def _script_ref(r, node, sel_tag="ScriptSelector"):
    # "OBIS:selector" of a script, None for none
    if node is None:
        return None
    ln = r.ref_ln(node)
    if ln is None or ln == "0.0.0.0.0.0":
        return None
    return "%s:%d" % (ln, r.int(sel_tag, 0, 65535, parent=node, default=0))


def map_push_setup(r, obj):
    ol = r.child("ObjectList")
    if ol is not None:
        obj["push_object_list"] = [capture_ref(r, it, "AI", "DI") for it in ol.findall("Item")]
    sdm = {}
    sv = r.int("Service", 0, 255)
    if sv is not None:
        sdm["transport_service"] = {0: "tcp", 5: "hdlc"}.get(sv, sv)
    dest = r.text("Destination")
    if dest:
        sdm["destination"] = dest
    msg = r.int("Message", 0, 255)
    if msg not in (None, 0):
        r.report("message type %d not imported (A-XDR, the one this stack builds)" % msg)
    if sdm:
        obj["send_destination_and_method"] = sdm
    for tag, key in (("RandomisationStartInterval", "randomisation_start_interval"),
                     ("NumberOfRetries", "number_of_retries")):
        v = r.int(tag, 0, 65535)
        if v is not None:
            obj[key] = v
    rd = r.child("RepetitionDelay")
    if rd is not None and rd.text:
        obj["repetition_delay"] = r.int_of(rd, rd.text, 0, 65535)
    elif rd is not None and rd.children:
        r.report("repetition_delay as min/exponent/max (push setup version 2) not imported")
    cw = r.child("CommunicationWindow")
    if cw is not None and cw.children:
        r.report("communication_window (%d windows) not imported" % len(cw.children))
    r.report("period: how often it pushes is not in the XML (none: it pushes when its push method is invoked)")


def _threshold(r, obj, node, key):
    if node is None or not node.attrib.get("Type"):
        return
    tag, v = r.value(node)
    if tag in (None, 0):
        return
    if tag in (1, 2) or tag not in INT_RANGES and tag not in (23, 24):
        raise r.error(node, "a threshold is a number, not a %s" % TYPE_NAMES[tag])
    obj[key] = v
    obj.setdefault("type", TYPE_NAMES[tag])


def map_limiter(r, obj):
    mv = r.child("MonitoredValue")
    if mv is not None and r.ref_ln(mv):
        obj["monitored_value"] = "%s:%d" % (r.ref_ln(mv), r.int("Index", 0, 255, parent=mv, default=2))
    _threshold(r, obj, r.child("ThresholdNormal"), "threshold_normal")
    _threshold(r, obj, r.child("ThresholdEmergency"), "threshold_emergency")
    active = {}
    _threshold(r, active, r.child("ThresholdActive"), "threshold_active")
    if active.get("threshold_active") not in (None, obj.get("threshold_normal")):
        r.report("threshold_active %s not imported: the limiter starts on threshold_normal" % active["threshold_active"])
    for tag, key in (("MinOverThresholdDuration", "min_over_threshold_duration"),
                     ("MinUnderThresholdDuration", "min_under_threshold_duration")):
        v = r.int(tag, 0, 2**32 - 1)
        if v is not None:
            obj[key] = v
    ids = r.child("EmergencyProfileGroupIDs")
    if ids is not None and ids.children:
        obj["emergency_profile_group_id_list"] = [r.int_of(c, c.text, 0, 65535) for c in ids.children]
    for tag, key in (("ActionOverThreshold", "action_over_threshold"),
                     ("ActionUnderThreshold", "action_under_threshold")):
        ref = _script_ref(r, r.child(tag))
        if ref:
            obj[key] = ref
    ep = r.child("EmergencyProfile")
    if ep is not None and r.int("Duration", 0, 2**32 - 1, parent=ep, default=0):
        r.report("emergency_profile not imported (a run-time setting)")


def map_register_monitor(r, obj):
    th = r.child("Thresholds")
    if th is not None:
        obj["thresholds"] = []
        for i, n in enumerate(th.children):
            got = {}
            _threshold(r, got, n, "v")
            if "v" in got:
                obj["thresholds"].append(got["v"])
                obj.setdefault("type", got["type"])
    mv = r.child("MonitoredValue")
    if mv is not None and r.ref_ln(mv):
        obj["monitored_value"] = "%s:%d" % (r.ref_ln(mv), r.int("Index", 0, 255, parent=mv, default=2))
    acts = r.child("Actions")
    if acts is not None:
        obj["action_sets"] = [{"action_up": _script_ref(r, it.find("Up"), "Selector"),
                           "action_down": _script_ref(r, it.find("Down"), "Selector")}
                          for it in acts.findall("Item")]


def _calendar(r, suffix):
    # one calendar (Active or Passive) -> {part: content}
    out = {}
    name = r.child("CalendarName" + suffix)
    out["calendar_name"] = name.text if name is not None else ""
    sp = r.child("SeasonProfile" + suffix)
    out["season_profile"] = [
        {"season_profile_name": octets_of(r, it.find("Name")), "season_start": when(r, it.find("Start") or it),
         "week_name": octets_of(r, it.find("WeekName"))}
        for it in (sp.findall("Item") if sp is not None else ())]
    wp = r.child("WeekProfileTable" + suffix)
    weeks = []
    for it in (wp.findall("Item") if wp is not None else ()):
        w = {"week_profile_name": octets_of(r, it.find("Name"))}
        for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
            w[d.lower()] = r.int(d, 0, 255, parent=it, default=0)
        weeks.append(w)
    out["week_profile_table"] = weeks
    dp = r.child("DayProfileTable" + suffix)
    days = []
    for it in (dp.findall("Item") if dp is not None else ()):
        an = it.find("Actions")
        acts = []
        for a in (an.findall("Action") if an is not None else ()):
            acts.append({"start_time": when(r, a.find("Start") or a, 5, 9), "script_logical_name": r.ref_ln(a),
                         "script_selector": r.int("Selector", 0, 65535, parent=a, default=0)})
        days.append({"day_id": r.int("DayId", 0, 255, parent=it), "day_schedule": acts})
    out["day_profile_table"] = days
    return out


def map_activity_calendar(r, obj):
    # both calendars start with one content here: the active one's
    active = _calendar(r, "Active")
    passive = _calendar(r, "Passive")
    obj.update(active)
    differ = [k for k in active if passive[k] != active[k] and passive[k] not in ("", [])]
    if differ:
        r.report("the passive calendar (%s) differs from the active one: not imported (it starts as the active "
                 "one)" % ", ".join(differ))
    t = r.text("Time")
    if t and t.strip("*/: "):
        r.report("activate_passive_calendar_time %s not imported" % t)


def _ints(r, obj, pairs, lo=-(2**31), hi=2**32 - 1):
    for tag, key in pairs:
        v = r.int(tag, lo, hi)
        if v is not None:
            obj[key] = v


def bit_string(value, n):
    # Gurux writes an n-bit bit-string as an integer with bit 0 in its
    # lowest bit (the demo's credit "11000" reads as 3)
    return "".join("1" if value >> i & 1 else "0" for i in range(n))


CREDIT_STATUS = ("enabled", "selectable", "invoked", "in-use", "exhausted")


def map_credit(r, obj):
    _ints(r, obj, (("CurrentCreditAmount", "current_credit_amount"), ("Type", "credit_type"),
                   ("Priority", "priority"), ("WarningThreshold", "warning_threshold"), ("Limit", "limit"),
                   ("PresetCreditAmount", "preset_credit_amount"),
                   ("CreditAvailableThreshold", "credit_available_threshold")))
    cc = r.int("CreditConfiguration", 0, 31)
    if cc is not None:
        obj["credit_configuration"] = bit_string(cc, 5)
    st = r.int("Status", 0, 4)
    if st is not None:
        obj["credit_status"] = CREDIT_STATUS[st]
    p = r.child("Period")
    if p is not None and p.text.strip("*/: "):
        obj["period"] = when(r, p)


def map_charge(r, obj):
    _ints(r, obj, (("ChargeType", "charge_type"), ("Priority", "priority"), ("Period", "period"),
                   ("Proportion", "proportion"), ("TotalAmountPaid", "total_amount_paid"),
                   ("TotalAmountRemaining", "total_amount_remaining")))
    cc = r.int("ChargeConfiguration", 0, 3)
    if cc is not None:
        obj["charge_configuration"] = bit_string(cc, 2)
    uc = r.child("UnitChargeActive")
    if uc is None or not uc.children:
        r.report("unit_charge_active (what it charges, at which price) is not in the XML")
    else:
        r.report("unit_charge_active not imported")


PAYMENT_MODES = {1: "credit", 2: "prepayment"}
ACCOUNT_STATUS = {1: "new", 2: "active", 3: "closed"}


def map_account(r, obj):
    ms = {}
    pm = r.int("PaymentMode", 1, 2)
    if pm is not None:
        ms["payment_mode"] = PAYMENT_MODES[pm]
    st = r.int("AccountStatus", 1, 3)
    if st is not None:
        ms["account_status"] = ACCOUNT_STATUS[st]
    if ms:
        obj["account_mode_and_status"] = ms
    _ints(r, obj, (("ClearanceThreshold", "clearance_threshold"), ("LowCreditThreshold", "low_credit_threshold"),
                   ("NextCreditAvailableThreshold", "next_credit_available_threshold"),
                   ("MaxProvision", "max_provision"), ("MaxProvisionPeriod", "max_provision_period")))
    cur = {}
    if r.text("CurrencyName"):
        cur["currency_name"] = r.text("CurrencyName")
    for tag, key, lo, hi in (("CurrencyScale", "currency_scale", -128, 127), ("CurrencyUnit", "currency_unit", 0, 255)):
        v = r.int(tag, lo, hi)
        if v is not None:
            cur[key] = v
    if cur:
        obj["currency"] = cur
    for tag, key in (("CreditReferences", "credit_reference_list"), ("ChargeReferences", "charge_reference_list")):
        n = r.child(tag)
        if n is not None:
            obj[key] = [r.obis(it.find("Name"), it.find("Name").text) for it in n.findall("Item")
                        if it.find("Name") is not None and it.find("Name").text]
    tg = r.child("TokenGatewayConfigurations")
    if tg is not None and tg.children:
        obj["token_gateway_configuration"] = [
            {"credit_reference": r.obis(it.find("Credit"), it.find("Credit").text),
             "token_proportion": r.int("Token", 0, 100, parent=it, default=0)}
            for it in tg.findall("Item") if it.find("Credit") is not None]
    cc = r.child("CreditChargeConfigurations")
    if cc is not None and cc.children:
        r.report("credit_charge_configuration not imported (the meter links every credit to every charge)")


def map_token_gateway(r, obj):
    accounts = [ln for ln, cid in r.lns.items() if cid == 111]
    if len(accounts) == 1:
        obj["account"] = accounts[0]
        r.report("account %s: the account the tokens credit is not in the XML: the collection's one account"
                 % accounts[0])
    else:
        r.report("account: the account the tokens credit is not in the XML (%d accounts)" % len(accounts))


# class id -> (mapper, the element names it reads)
MAPPERS = {
    1: (map_data, ("Value",)),
    3: (map_register, ("Value", "Scaler", "Unit")),
    4: (map_extended_register, ("Value", "Scaler", "Unit", "Status")),
    5: (map_demand_register, ("CurrentAverageValue", "Status", "Scaler", "Unit", "Period", "NumberOfPeriods")),
    6: (map_register_activation, ("RegisterAssignment", "MaskList", "ActiveMask")),
    7: (map_profile, ("CaptureObjects", "CapturePeriod", "ProfileEntries", "SortMethod", "SortObject")),
    8: (map_clock, ("TimeZone", "Status", "Begin", "End", "Deviation", "Enabled", "ClockBase")),
    9: (map_script_table, ("Scripts",)),
    11: (map_special_days, ("Entries",)),
    18: (map_image_transfer, ("ImageBlockSize", "ImageTransferEnabled")),
    19: (map_local_port, ("DefaultMode", "DefaultBaudrate", "ProposedBaudrate", "ResponseTime", "DeviceAddress",
                          "Password1", "Password2", "Password5")),
    20: (map_activity_calendar, tuple(p + s for s in ("Active", "Passive") for p in (
        "CalendarName", "SeasonProfile", "WeekProfileTable", "DayProfileTable")) + ("Time",)),
    21: (map_register_monitor, ("Thresholds", "MonitoredValue", "Actions")),
    22: (map_single_action_schedule, ("ObjectType", "ExecutedScriptSelector", "Type", "ExecutionTime")),
    23: (map_hdlc_setup, ("Speed", "WindowSizeTx", "WindowSizeRx", "MaximumInfoLengthTx", "MaximumInfoLengthRx",
                          "InterCharachterTimeout", "InactivityTimeout", "DeviceAddress")),
    40: (map_push_setup, ("ObjectList", "Destination", "RandomisationStartInterval", "NumberOfRetries",
                          "RepetitionDelay", "Service", "Message", "CommunicationWindow")),
    70: (map_disconnect, ("ControlMode", "ControlState")),
    71: (map_limiter, ("MonitoredValue", "ThresholdActive", "ThresholdNormal", "ThresholdEmergency",
                       "MinOverThresholdDuration", "MinUnderThresholdDuration", "ActionOverThreshold",
                       "ActionUnderThreshold", "EmergencyProfile", "EmergencyProfileGroupIDs")),
    111: (map_account, ("PaymentMode", "AccountStatus", "ClearanceThreshold", "CurrencyScale", "CurrencyUnit", "LowCreditThreshold",
                        "NextCreditAvailableThreshold", "MaxProvision", "MaxProvisionPeriod", "CurrencyName",
                        "CreditReferences", "ChargeReferences", "CreditChargeConfigurations",
                        "TokenGatewayConfigurations")),
    112: (map_credit, ("CurrentCreditAmount", "Status", "Type", "Priority", "WarningThreshold", "Limit", "CreditConfiguration",
                       "PresetCreditAmount", "CreditAvailableThreshold", "Period")),
    113: (map_charge, ("ChargeType", "Priority", "Period", "ChargeConfiguration", "Proportion", "TotalAmountPaid",
                       "TotalAmountRemaining",
                       "UnitChargeActive", "UnitChargePassive", "UnitChargeActivationTime")),
    115: (map_token_gateway, ()),
}
# the keys every definition object takes
COMMON_KEYS = ("class", "version", "obis", "description", "read", "write", "actions", "access", "drive", "persist")
COMMON = ("LN", "Version", "Description", "Access", "MethodAccess", "Access3", "MethodAccess3", "SN")


# ---------------------------------------------------------- access rights


def compiler_classes():
    # The definition compiler's classes {class id: spec (names, writable
    # attributes, the parameter keys it takes)}, every class module loaded;
    # None without the compiler.
    try:
        from dlms_micro_cpython.meterdef import classes, compiler
    except ImportError:
        return None
    load = getattr(compiler, "_load_classes", None)
    if load is not None:
        load()
    return getattr(classes, "CLASSES", None)


def class_spec(class_id):
    specs = compiler_classes()
    return specs.get(class_id) if specs else None


def fit_to_compiler(r, obj, report, first):
    # Keep what the definition compiler takes: an object of a class it does
    # not know is not imported (its other report lines, report[first:], go:
    # the one line says it all), a parameter it has no key for is dropped;
    # both reported. -> False when the object is left out.
    specs = compiler_classes()
    if specs is None:
        return True
    spec = specs.get(r.class_id)
    if spec is None:
        del report[first:]
        r.report("the definition compiler does not take class %s yet: object not imported" % r.name)
        return False
    params = getattr(spec, "params", None)
    if params is None:
        return True
    for k in list(obj):
        if k not in COMMON_KEYS and k not in params:
            r.report("%s not imported: the compiler's %s has no such key" % (k, r.name))
            del obj[k]
    return True


def map_access(r, obj, association):
    # Gurux's <Access> / <MethodAccess> digits (the association the
    # collection was read with) -> read / actions / access overrides.
    spec = class_spec(r.class_id)
    writable = getattr(spec, "writable", None)
    n = r.child("Access")
    digits = n.text if n is not None else ""
    if n is None and r.child("Access3") is not None:
        r.report("<Access3> (association version 3 access) not imported: read access only")
    if not re.fullmatch(r"[0-6]*", digits):
        raise r.error(n, "%r: access is one digit 0..6 per attribute" % digits)
    obj["read"] = [association]
    n_attrs = len(getattr(spec, "attributes", ())) if spec is not None else len(digits)
    if len(digits) > n_attrs:
        extra = [str(i) for i in range(n_attrs + 1, len(digits) + 1) if digits[i - 1] != "0"]
        if extra:
            r.report("access to attributes %s not imported: this stack's %s has %d attributes"
                     % (", ".join(extra), r.name, n_attrs))
        digits = digits[:n_attrs]
    attrs = {}
    for i, d in enumerate(digits, 1):
        mode = ACCESS_MODES[d]
        if i == 1:
            if mode in ("none", "write"):
                r.report("logical_name access %s: the logical name is always readable" % mode)
            continue
        if writable is not None and "write" in mode and i not in writable:
            r.report("attribute %d is %s in the XML; this stack does not write it: read" % (i, mode))
            mode = "read" if mode == "read-write" else "none"
        if mode != "read":
            attrs[str(i)] = mode
    m = r.child("MethodAccess")
    mdigits = m.text if m is not None else ""
    if not re.fullmatch(r"[0-2]*", mdigits):
        raise r.error(m, "%r: method access is one digit 0..2 per method" % mdigits)
    methods = [d != "0" for d in mdigits]
    n_methods = len(getattr(spec, "methods", ())) if spec is not None else len(methods)
    if len(methods) > n_methods:
        if any(methods[n_methods:]):
            r.report("methods %s accessible in the XML: this stack's class has %d methods"
                     % (", ".join(str(i + 1) for i in range(n_methods, len(methods)) if methods[i]), n_methods))
        methods = methods[:n_methods]
    over = {}
    if methods and all(methods) and len(methods) == n_methods:
        obj["actions"] = [association]
    elif any(methods):
        over["methods"] = {str(i): True for i, ok in enumerate(methods, 1) if ok}
    if attrs:
        over["attributes"] = attrs
    if over:
        obj["access"] = {association: over}


# ------------------------------------------------------------- the import


def _source(path_or_text):
    # -> (bytes or str to parse, name for messages)
    if isinstance(path_or_text, (bytes, bytearray)):
        return bytes(path_or_text), "<xml>"
    s = str(path_or_text)
    if s.lstrip().startswith("<"):
        return s, "<xml>"
    try:
        with open(s, "rb") as f:
            return f.read(), s
    except OSError as e:
        raise GuruxImportError("%s: cannot read: %s" % (s, e.strerror or e)) from None


def find_objects(root):
    # the <Objects> element: the root (GXDLMSObjectCollection.save) or
    # inside a device file (GXDLMSDirector)
    if root.tag == "Objects":
        return root
    stack = list(root.children)
    while stack:
        n = stack.pop(0)
        if n.tag == "Objects":
            return n
        stack.extend(n.children)
    return None


def association_of(nodes, source, report):
    # The association the collection was read with: the current
    # Association LN's client SAP and mechanism, the Security setup's
    # policy. -> (name, association dict)
    assoc = None
    policy = None
    for i, n in enumerate(nodes):
        if n.tag == "GXDLMSAssociationLogicalName":
            r = ObjectReader(n, i, source, [])
            if r.ln == CURRENT_ASSOCIATION or (assoc is None and r.int("AssociationStatus", 0, 2) == 2):
                assoc = r
        elif n.tag == "GXDLMSSecuritySetup":
            r = ObjectReader(n, i, source, [])
            p = r.int("SecurityPolicy", 0, 255)
            if p:
                v = r.int("Version", 0, 255, default=0)
                if v == 0:
                    auth, enc = p in (1, 3), p in (2, 3)
                else:  # version 1: bits 2/5 authenticated, 3/6 encrypted (request/response)
                    auth, enc = bool(p & 0x24), bool(p & 0x48)
                policy = {(True, True): "authenticated-encrypted", (True, False): "authenticated",
                          (False, True): "encrypted"}.get((auth, enc))
    sap, mech, secret, ciphered = None, None, "", False
    if assoc is not None:
        sap = assoc.int("ClientSAP", 1, 127)
        amn = assoc.child("AuthenticationMechanismName")
        if amn is not None:
            mech = assoc.int("MechanismId", 0, 7, parent=amn)
        acn = assoc.child("ApplicationContextName")
        if acn is not None:
            ciphered = assoc.int("ContextId", 0, 255, parent=acn, default=1) in (3, 4)
        sn = assoc.child("Secret")
        if sn is not None and sn.text:
            try:  # octets, as Gurux writes them ("41 42 43")
                secret = bytes.fromhex(sn.text).decode("ascii")
            except ValueError:
                secret = sn.text
    if sap is None:
        report.append("associations: the XML names no client SAP (no current Association LN): the objects' access "
                      "is given to \"reader\" (SAP 32, LLS, password %s)" % DEFAULT_PASSWORD)
        sap, mech = 32, 1
    auth = MECHANISMS.get(mech if mech is not None else 0)
    if auth is None:
        report.append("associations: authentication mechanism %d is not implemented here: the association "
                      "uses high-gmac" % mech)
        auth = "high-gmac"
    a = {"client_sap": sap, "authentication": auth}
    if auth == "low":
        if secret and secret.isprintable() and len(secret) <= 64:
            a["password"] = secret
        else:
            a["password"] = DEFAULT_PASSWORD
            report.append("associations: the LLS password is not in the XML: set to %s, change it"
                          % DEFAULT_PASSWORD)
    if ciphered or policy:
        a["security_policy"] = policy or "authenticated-encrypted"
    name = ROLE_NAMES[auth] if not (auth == "none" and sap != 16) else "public%d" % sap
    return name, a


# objects the meter adds, which references may name
ADDED = (CURRENT_ASSOCIATION, LDN, INVOCATION_COUNTER, "0.0.41.0.0.255", "0.0.43.0.0.255")
REF_LISTS = ("capture_objects", "push_object_list")


def drop_dangling(objs, report):
    # References (capture objects, push objects) to objects not imported are
    # left out, and reported; a profile left with no capture objects too.
    while True:
        present = set(ADDED) | {o["obis"] for o in objs}
        kept = []
        for o in objs:
            for key in REF_LISTS:
                refs = o.get(key)
                if refs is None:
                    continue
                ok = [ref for ref in refs if ref.split(":")[0] in present]
                for ref in refs:
                    if ref not in ok:
                        report.append("%s (%s): %s %s left out: that object is not imported"
                                      % (o["obis"], o["class"], key, ref))
                o[key] = ok
            if o["class"] == "profile-generic" and "capture_objects" in o and not o["capture_objects"]:
                report.append("%s (profile-generic): no capture object left: object not imported" % o["obis"])
                continue
            kept.append(o)
        if len(kept) == len(objs):
            return kept
        objs = kept


_OBJECT_ERROR = re.compile(r"^objects\[(\d+)\]")


def settle(definition, report):
    # With the definition compiler at hand: an object it refuses (a
    # parameter it needs that Gurux does not carry, a value out of its
    # range) is left out, the compiler's words reported, until the rest
    # compiles. Errors of no object stay for the caller's compile to raise.
    try:
        from dlms_micro_cpython.meterdef import compiler
    except ImportError:
        return definition
    for _ in range(len(definition["objects"]) + 1):
        try:
            compiler.compile_definition(definition, "import")
            return definition
        except compiler.DefinitionError as e:
            bad = {}
            for msg in e.errors:
                m = _OBJECT_ERROR.match(msg)
                if m:
                    bad.setdefault(int(m.group(1)), msg)
            if not bad:
                return definition
        objs = definition["objects"]
        for i in sorted(bad):
            if i < len(objs):
                o = objs[i]
                report.append("%s (%s): not imported: the compiler refuses it: %s"
                              % (o.get("obis"), o.get("class"), bad[i].split(": ", 1)[-1]))
        definition["objects"] = drop_dangling([o for i, o in enumerate(objs) if i not in bad], report)
    return definition


def import_gurux(path_or_text, name=None, serial_number=None):
    # A Gurux object collection (a file name, or the XML as str/bytes) ->
    # (definition dict in the "dlms-micro/1" format, report lines).
    data, source = _source(path_or_text)
    root = parse_xml(data, source)
    objects = find_objects(root)
    if objects is None:
        raise GuruxImportError("%s:%d: no <Objects> element: not a Gurux object collection" % (source, root.line))
    report = []
    nodes = objects.children
    for i, n in enumerate(nodes):
        if n.tag not in GURUX_CLASSES:
            # a serializer's generic element with the class as its type:
            # <GXDLMSObject xsi:type="GXDLMSRegister">
            for k, v in n.attrib.items():
                if (k == "type" or k.endswith(":type")) and v.split(":")[-1] in GURUX_CLASSES:
                    n.tag = v.split(":")[-1]
        if n.tag not in GURUX_CLASSES:
            raise GuruxImportError("%s:%d: objects[%d]: <%s> is not a Gurux COSEM class" % (source, n.line, i, n.tag))
    role, assoc = association_of(nodes, source, report)
    associations = {role: assoc}
    if assoc["client_sap"] != 16:
        # head-ends read the invocation counter (and the logical device
        # name) as the public client first
        associations = {"public": {"client_sap": 16, "authentication": "none"}}
        associations[role] = assoc
    lns = {}  # every object of the XML: OBIS -> class id
    for i, n in enumerate(nodes):
        ln = n.find("LN")
        if ln is not None and ln.text:
            lns.setdefault(ln.text.strip(), GURUX_CLASSES[n.tag][0])
    out = []
    seen = {}
    values = {}
    physical = None
    for i, n in enumerate(nodes):
        r = ObjectReader(n, i, source, report)
        r.lns = lns
        first = len(report)  # this object's report lines start here
        if r.ln in seen:
            raise r.error(n, "logical name %s again (first at line %d)" % (r.ln, seen[r.ln]))
        seen[r.ln] = n.line
        if r.class_id == 1 and r.ln in (LDN, SERIAL):
            v = r.child("Value")
            if v is not None:
                tag, val = r.value(v)
                if tag in (9, 10, 12):
                    values[r.ln] = bytes.fromhex(val["hex"]).decode("latin-1") if isinstance(val, dict) else val
        if r.name is None:
            r.report("class %d is not implemented by this stack: object not imported" % r.class_id)
            continue
        if r.class_id in (15, 17, 64):
            r.report("not imported: the meter adds its own (one Association LN per association, SAP assignment, "
                     "Security setup)")
            continue
        if r.ln == LDN:
            r.report("not imported: the meter adds the logical device name from \"name\"")
            continue
        if r.class_id == 1 and r.ln == INVOCATION_COUNTER:
            obj = {"class": "data", "obis": r.ln, "drive": "invocation-counter"}
            map_access(r, obj, role)
            obj.pop("access", None)
            out.append(obj)
            continue
        if r.class_id not in MAPPERS:
            r.report("%s: its parameters are not in gurux's XML: object not imported" % r.title)
            continue
        if r.class_id == 23 and r.child("WindowSizeTx") is None and r.child("Mode") is not None:
            # gurux-dlms saves IEC twisted pair setup (24) under this name
            r.title = "IEC twisted pair setup"
            r.report("class 24 is not implemented by this stack: object not imported")
            continue
        obj = {"class": r.name, "obis": r.ln}
        d = r.text("Description")
        if d:
            obj["description"] = d
        v = r.int("Version", 0, 255)
        if v is not None and v != VERSIONS.get(r.class_id, v):
            r.report("version %d in the XML; this stack implements version %d: imported as that"
                     % (v, VERSIONS[r.class_id]))
        mapper, reads = MAPPERS[r.class_id]
        mapper(r, obj)
        physical = obj.pop("_device_address", physical)
        ignored = set(COMMON) | set(reads) | set(RUN_TIME.get(r.class_id, ()))
        for c in n.children:
            if c.tag in ignored:
                continue
            if c.text or c.children:
                r.report("<%s> not imported (no definition key for it)" % c.tag)
        for tag in RUN_TIME.get(r.class_id, ()):
            c = r.child(tag)
            if c is not None and r.class_id not in (7, 8) and (c.text.strip("*/: 0") or c.children):
                r.report("%s: a run-time value, not imported" % tag)
        map_access(r, obj, role)
        if fit_to_compiler(r, obj, report, first):
            out.append(obj)
    out = drop_dangling(out, report)
    if name is None:
        name = values.get(LDN)
        if not name:
            name = "DMI" + (serial_number or values.get(SERIAL) or "1").rjust(13, "0")[-13:]
            report.append("name: no logical device name (%s) in the XML: %s" % (LDN, name))
    if serial_number is None:
        serial_number = values.get(SERIAL)
        if not serial_number:
            digits = re.sub(r"\D", "", name)[-8:]
            serial_number = digits or "00000001"
            report.append("serial_number: no serial number (%s) in the XML: %s" % (SERIAL, serial_number))
    definition = {"meter": FORMAT, "name": name, "serial_number": serial_number}
    if physical is not None and 16 <= physical <= 0x3FFD:
        definition["physical_address"] = physical
    definition["description"] = "imported from the Gurux object collection %s" % source
    definition["associations"] = associations
    definition["objects"] = out
    return settle(definition, report), report


def run_import(src, out_path, name=None, serial_number=None, err=None):
    # `dlms-micro meter import SRC -o OUT`: the JSON to out_path (None:
    # stdout), the report and errors to err; -> exit code (0, or 2 for bad
    # input: nothing written).
    import json
    import sys

    err = err or sys.stderr
    try:
        definition, report = import_gurux(src, name=name, serial_number=serial_number)
    except GuruxImportError as e:
        err.write("error: %s\n" % e)
        return 2
    for line in report:
        err.write("note: %s\n" % line)
    text = json.dumps(definition, indent=1, ensure_ascii=False) + "\n"
    if out_path is None:
        sys.stdout.write(text)
    else:
        with open(out_path, "w", encoding="utf-8") as f:
            f.write(text)
    return 0
