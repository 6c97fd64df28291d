# `dlms-micro decode`: a DLMS/COSEM trace as a readable tree.
#
# Input: hex (an argument, stdin or a file; blanks, colons and line breaks
# between digits are ignored), or a log written by `dlms-micro serve
# --log-level debug` (its "<kind> <peer> rx|tx <hex>" lines, put back into
# one byte stream per connection and direction). Output: the frames (HDLC
# frame format type 3, IEC 62056-46; TCP/UDP wrapper, IEC 62056-47), the
# APDUs in them (ACSE AARQ/AARE/RLRQ/RLRE, xDLMS GET/SET/ACTION in every form,
# general block transfer, DataNotification, exception-response, the
# glo-/ded-/general-glo-ciphering envelopes; Green Book ch. 9) and their A-XDR
# values (IEC 62056-6-2 Data), as indented text or (--json) the same tree as
# JSON. With --keys the suite 0 envelopes are deciphered (AES-GCM-128) and
# their authentication tags checked.
#
# LENIENT. Nothing here trusts its input: a truncated, garbled or wrongly
# keyed message is decoded as far as it goes, and the report says at which
# byte offset and why decoding stopped (Report.errors; the command exits 1).
# No exception leaves decode_bytes(), decode_log(), summary() or main().
#
# SECRETS. An LLS password (AARQ calling-authentication-value with mechanism
# low, the Association LN secret attribute 7, change_HLS_secret), a dedicated
# key and the keys of --keys are never printed: only their length.
#
#   rep = decode_bytes(data, keys=None)    -> Report (rep.roots, rep.errors)
#   rep = decode_log(text, keys=None)
#   print(render_text(rep)); json.dumps(to_json(rep))
#   summary(data, kind=None) -> one line, for the port's debug log

import json
import re
import struct
import sys

from dlms_micro import axdr
from dlms_micro.crc16 import fcs as _fcs

# ---------------------------------------------------------------- the tree


class Node:
    """One line of the decoded tree.

    ``name`` (the standard's name of the field), ``text`` (its value as read,
    None for a heading), ``offset`` (int: the byte offset in the input; str:
    where, for bytes put back together from segments or blocks), ``value``
    (what --json gives: int, str, bool, float, list or None), ``children``,
    and ``summary`` (frames and APDUs: one line).
    """

    def __init__(self, name, text=None, offset=None, value=None):
        self.name = name
        self.text = text
        self.offset = offset
        self.value = value
        self.children = []
        self.summary = None  # one-line description (frames and APDUs)
        self.tag = None  # Data nodes: the A-XDR tag

    def add(self, name, text=None, offset=None, value=None):
        n = Node(name, text, offset, value)
        self.children.append(n)
        return n

    def json(self):
        d = {"name": self.name}
        if self.text is not None:
            d["text"] = self.text
        if self.value is not None:
            d["value"] = self.value
        if self.offset is not None:
            d["offset"] = self.offset
        if self.summary:
            d["summary"] = self.summary
        if self.children:
            d["children"] = [c.json() for c in self.children]
        return d


class Stop(Exception):
    # Decoding of one message cannot go on: where (int offset or text) and why.
    def __init__(self, where, reason):
        Exception.__init__(self, reason)
        self.where = where
        self.reason = reason


class Report:
    """What decoding gave: ``roots`` (the top Nodes: frames, or APDUs) and
    ``errors`` ([(where, reason)]: where decoding stopped or found a fault;
    ``ok`` when there is none)."""

    def __init__(self):
        self.roots = []
        self.errors = []  # (where, reason)

    @property
    def ok(self):
        return not self.errors

    def error(self, where, reason, node=None):
        self.errors.append((where, reason))
        if node is not None:
            node.add("stopped", "%s: %s" % (where_text(where), reason))


def where_text(where):
    if isinstance(where, int):
        return "at byte %d" % where
    return "at %s" % where


class Cur:
    # A read position in buf[start:end]. base: the input offset of buf[0]
    # (int), or label (text) for bytes that are not contiguous in the input
    # (reassembled segments, blocks): offsets then read "byte N of <label>".

    def __init__(self, buf, start=0, end=None, base=0, label=None):
        self.buf = buf
        self.p = start
        self.end = len(buf) if end is None else end
        self.base = base
        self.label = label

    def at(self, p=None):
        p = self.p if p is None else p
        if self.label is not None:
            return "byte %d of %s" % (p, self.label)
        return self.base + p

    def left(self):
        return self.end - self.p

    def need(self, n, what):
        if self.p + n > self.end:
            raise Stop(self.at(), "truncated: %s needs %d byte%s, %d left" % (what, n, "" if n == 1 else "s",
                                                                              max(0, self.end - self.p)))

    def u8(self, what):
        self.need(1, what)
        self.p += 1
        return self.buf[self.p - 1]

    def take(self, n, what):
        self.need(n, what)
        self.p += n
        return bytes(self.buf[self.p - n:self.p])

    def uint(self, n, what):
        return int.from_bytes(self.take(n, what), "big")

    def sint(self, n, what):
        return int.from_bytes(self.take(n, what), "big", signed=True)

    def length(self, what):
        # A-XDR length: one byte < 0x80, or 0x8N and N bytes
        p = self.p
        b = self.u8(what)
        if b < 0x80:
            return b
        n = b & 0x7F
        if n == 0 or n > 4:
            raise Stop(self.at(p), "%s: bad length byte 0x%02X" % (what, b))
        return self.uint(n, what)

    def octets(self, what):
        n = self.length(what + " length")
        return self.take(n, what)


# ---------------------------------------------------------------- names

CLIENT_SAPS = {0: "no-station", 1: "management client", 16: "public client", 0x7F: "all-station"}

U_FRAMES = {0x83: "SNRM", 0x43: "DISC", 0x63: "UA", 0x0F: "DM", 0x87: "FRMR", 0x03: "UI"}
S_FRAMES = ("RR", "RNR", "REJ", "SREJ")
HDLC_PARAMS = {5: "max_info_field_length_transmit", 6: "max_info_field_length_receive",
               7: "window_size_transmit", 8: "window_size_receive"}

CONTEXTS = {1: "Logical_Name_Referencing_No_Ciphering", 2: "Short_Name_Referencing_No_Ciphering",
            3: "Logical_Name_Referencing_With_Ciphering", 4: "Short_Name_Referencing_With_Ciphering"}
CONTEXT_SHORT = {1: "LN", 2: "SN", 3: "LN-ciphered", 4: "SN-ciphered"}
MECHANISMS = {0: "lowest-level-security", 1: "low-level-security (LLS)", 2: "high-level-security (HLS)",
              3: "HLS-MD5", 4: "HLS-SHA1", 5: "HLS-GMAC", 6: "HLS-SHA256", 7: "HLS-ECDSA"}
MECH_SHORT = {0: "none", 1: "LLS", 2: "HLS", 3: "HLS-MD5", 4: "HLS-SHA1", 5: "HLS-GMAC", 6: "HLS-SHA256",
              7: "HLS-ECDSA"}
RESULTS = {0: "accepted", 1: "rejected-permanent", 2: "rejected-transient"}
DIAG_USER = {0: "null", 1: "no-reason-given", 2: "application-context-name-not-supported",
             3: "calling-AP-title-not-recognized", 4: "calling-AP-invocation-identifier-not-recognized",
             5: "calling-AE-qualifier-not-recognized", 6: "calling-AE-invocation-identifier-not-recognized",
             7: "called-AP-title-not-recognized", 8: "called-AP-invocation-identifier-not-recognized",
             9: "called-AE-qualifier-not-recognized", 10: "called-AE-invocation-identifier-not-recognized",
             11: "authentication-mechanism-name-not-recognised", 12: "authentication-mechanism-name-required",
             13: "authentication-failure", 14: "authentication-required"}
DIAG_PROVIDER = {0: "null", 1: "no-reason-given", 2: "no-common-acse-version"}
RLRQ_REASONS = {0: "normal", 1: "urgent", 30: "user-defined"}
RLRE_REASONS = {0: "normal", 1: "not-finished", 30: "user-defined"}

DATA_ACCESS_RESULTS = {0: "success", 1: "hardware-fault", 2: "temporary-failure", 3: "read-write-denied",
                       4: "object-undefined", 9: "object-class-inconsistent", 11: "object-unavailable",
                       12: "type-unmatched", 13: "scope-of-access-violated", 14: "data-block-unavailable",
                       15: "long-get-aborted", 16: "no-long-get-in-progress", 17: "long-set-aborted",
                       18: "no-long-set-in-progress", 19: "data-block-number-invalid", 250: "other-reason"}
ACTION_RESULTS = dict(DATA_ACCESS_RESULTS)
ACTION_RESULTS.update({15: "long-action-aborted", 16: "no-long-action-in-progress"})
for _k in (17, 18, 19):
    del ACTION_RESULTS[_k]
STATE_ERRORS = {1: "service-not-allowed", 2: "service-unknown"}
SERVICE_ERRORS = {1: "operation-not-possible", 2: "service-not-supported", 3: "other-reason", 4: "pdu-too-long",
                  5: "deciphering-error", 6: "invocation-counter-error"}
# ConfirmedServiceError: which service, then ServiceError CHOICE and value
CSE_SERVICES = {1: "initiateError", 2: "getStatus", 3: "getNameList", 4: "getVariableAttribute", 5: "read",
                6: "write", 7: "getDataSetAttribute", 8: "getTIAttribute", 9: "changeScope", 10: "start",
                11: "stop", 12: "resume", 13: "makeUsable", 14: "initiateLoad", 15: "loadSegment",
                16: "terminateLoad", 17: "initiateUpLoad", 18: "upLoadSegment", 19: "terminateUpLoad"}
SERVICE_ERROR_KINDS = {
    0: ("application-reference", {0: "other", 1: "time-elapsed", 2: "application-unreachable",
                                  3: "application-reference-invalid", 4: "application-context-unsupported",
                                  5: "provider-communication-error", 6: "deciphering-error"}),
    1: ("hardware-resource", {0: "other", 1: "memory-unavailable", 2: "processor-resource-unavailable",
                              3: "mass-storage-unavailable", 4: "other-resource-unavailable"}),
    2: ("vde-state-error", {0: "other", 1: "no-dlms-context", 2: "loading-data-set", 3: "status-nochange",
                            4: "status-inoperable"}),
    3: ("service", {0: "other", 1: "pdu-size", 2: "service-unsupported"}),
    4: ("definition", {0: "other", 1: "object-undefined", 2: "object-class-inconsistent",
                       3: "object-attribute-inconsistent"}),
    5: ("access", {0: "other", 1: "scope-of-access-violated", 2: "object-access-violated",
                   3: "hardware-fault", 4: "object-unavailable"}),
    6: ("initiate", {0: "other", 1: "dlms-version-too-low", 2: "incompatible-conformance",
                     3: "pdu-size-too-short", 4: "refused-by-the-VDE-Handler"}),
    7: ("load-data-set", {}), 8: ("change-scope", {}), 9: ("task", {}), 10: ("other", {}),
}

GET_FORMS = {1: "Normal", 2: "Next", 3: "With-List"}
GET_RESPONSE_FORMS = {1: "Normal", 2: "With-Datablock", 3: "With-List"}
SET_FORMS = {1: "Normal", 2: "With-First-Datablock", 3: "With-Datablock", 4: "With-List",
             5: "With-List-And-First-Datablock"}
SET_RESPONSE_FORMS = {1: "Normal", 2: "Datablock", 3: "Last-Datablock", 4: "Last-Datablock-With-List",
                      5: "With-List"}
ACTION_FORMS = {1: "Normal", 2: "Next-Pblock", 3: "With-List", 4: "With-First-Pblock",
                5: "With-List-And-First-Pblock", 6: "With-Pblock"}
ACTION_RESPONSE_FORMS = {1: "Normal", 2: "With-Pblock", 3: "With-List", 4: "Next-Pblock"}

# ciphered APDU tag -> (form, plain tag, plain name, sent by the client?)
_CIPHERED = {}
for _pre, _base in (("glo", 0x20), ("ded", 0x40)):
    _CIPHERED[_base + 0x01] = (_pre, 0x01, "InitiateRequest", True)
    _CIPHERED[_base + 0x08] = (_pre, 0x08, "InitiateResponse", False)
    _CIPHERED[_base + 0x0E] = (_pre, 0x0E, "ConfirmedServiceError", False)
for _pre, _base in (("glo", 0xC8), ("ded", 0xD0)):
    for _i, (_name, _req) in enumerate((("GET-Request", True), ("SET-Request", True),
                                        ("EventNotificationRequest", False), ("ACTION-Request", True),
                                        ("GET-Response", False), ("SET-Response", False), (None, None),
                                        ("ACTION-Response", False))):
        if _name:
            _CIPHERED[_base + _i] = (_pre, 0xC0 + _i, _name, _req)

APDU_NAMES = {0x60: "AARQ", 0x61: "AARE", 0x62: "RLRQ", 0x63: "RLRE", 0x01: "InitiateRequest",
              0x08: "InitiateResponse", 0x0E: "ConfirmedServiceError", 0x0F: "DataNotification",
              0xC0: "GET-Request", 0xC1: "SET-Request", 0xC2: "EventNotificationRequest", 0xC3: "ACTION-Request",
              0xC4: "GET-Response", 0xC5: "SET-Response", 0xC7: "ACTION-Response", 0xD8: "exception-response",
              0xDB: "general-glo-ciphering", 0xDC: "general-ded-ciphering", 0xDD: "general-ciphering",
              0xDF: "general-signing", 0xE0: "general-block-transfer",
              0x05: "readRequest", 0x06: "writeRequest", 0x0C: "readResponse", 0x0D: "writeResponse",
              0x16: "unconfirmedWriteRequest", 0x18: "informationReportRequest"}

_CLASSES = None


def class_spec(class_id):
    # The interface class's names from the meter definition tables (None
    # when the class is not there).
    global _CLASSES
    if _CLASSES is None:
        try:
            from dlms_micro_cpython.meterdef import classes

            try:
                import dlms_micro_cpython.meterdef.classes_more  # noqa: F401  (registers the rest)
            except ImportError:
                pass
            _CLASSES = classes.CLASSES
        except Exception:  # the names are a help, never a reason to fail
            _CLASSES = {}
    return _CLASSES.get(class_id)


def class_name(class_id):
    s = class_spec(class_id)
    return s.name if s is not None else "class %d" % class_id


def member_name(class_id, index, methods=False):
    if index == 0 and not methods:
        return "all attributes"
    s = class_spec(class_id)
    names = () if s is None else (s.methods if methods else s.attributes)
    if 1 <= index <= len(names):
        return names[index - 1]
    if index < 0:
        return "manufacturer-specific"
    return "method %d" % index if methods else "attribute %d" % index


def obis_text(ln):
    return ".".join(str(b) for b in ln)


def unit_name(u):
    try:
        from dlms_micro_cpython.meterdef.values import UNIT_NAMES
    except Exception:
        UNIT_NAMES = {}
    return UNIT_NAMES.get(u, "unit %d" % u)


def conformance_names(bits):
    try:
        from dlms_micro_cpython.meterdef.values import CONFORMANCE
    except Exception:
        CONFORMANCE = {}
    return [name for name, mask in sorted(CONFORMANCE.items(), key=lambda kv: -kv[1]) if bits & mask]


def printable(b):
    return "".join(chr(c) if 32 <= c < 127 else "." for c in b)


def hexs(b):
    return bytes(b).hex().upper()


# ------------------------------------------------------------ date and time


def _f(v, width, wild=0xFF):
    return "*" * width if v == wild else "%0*d" % (width, v)


def date_text(y, mo, d, dow):
    t = "%s-%s-%s" % (_f(y, 4, 0xFFFF), _f(mo, 2), _f(d, 2))
    if mo in (0xFD, 0xFE):
        t += " (%s)" % ("DST end" if mo == 0xFD else "DST begin")
    if d in (0xFD, 0xFE):
        t += " (%s day of the month)" % ("second last" if d == 0xFD else "last")
    if dow != 0xFF:
        t += " (%s)" % (("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[dow - 1] if 1 <= dow <= 7 else "dow %d" % dow)
    return t


def time_text(h, mi, s, hs):
    t = "%s:%s:%s" % (_f(h, 2), _f(mi, 2), _f(s, 2))
    if hs != 0xFF:
        t += ".%02d" % hs
    return t


CLOCK_STATUS = ((0x01, "invalid-value"), (0x02, "doubtful-value"), (0x04, "different-clock-base"),
                (0x08, "invalid-clock-status"), (0x80, "daylight-saving-active"))


def date_time_text(b):
    # 12 bytes -> ISO 8601 text ("*" for fields not specified), then the
    # deviation (Blue Book sign: UTC minus local time) and clock status.
    y = (b[0] << 8) | b[1]
    dev = int.from_bytes(b[9:11], "big", signed=True)
    t = date_text(y, b[2], b[3], 0xFF) + "T" + time_text(b[5], b[6], b[7], b[8])
    if dev == -0x8000:
        extra = ["deviation not specified"]
    else:
        off = -dev
        t += "%s%02d:%02d" % ("+" if off >= 0 else "-", abs(off) // 60, abs(off) % 60)
        extra = []
    if b[4] != 0xFF:
        extra.append(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[b[4] - 1] if 1 <= b[4] <= 7 else "dow %d" % b[4])
    st = b[11]
    if st != 0xFF:
        names = [n for m, n in CLOCK_STATUS if st & m]
        extra.append("status 0x%02X%s" % (st, " " + ",".join(names) if names else " ok"))
    return t + (" (%s)" % ", ".join(extra) if extra else "")


def looks_like_date_time(b):
    if len(b) != 12:
        return False
    dev = int.from_bytes(b[9:11], "big", signed=True)
    return ((1 <= b[2] <= 12 or b[2] >= 0xFD) and (1 <= b[3] <= 31 or b[3] >= 0xFD)
            and (1 <= b[4] <= 7 or b[4] == 0xFF) and (b[5] < 24 or b[5] == 0xFF)
            and (b[6] < 60 or b[6] == 0xFF) and (b[7] < 60 or b[7] == 0xFF)
            and (b[8] < 100 or b[8] == 0xFF) and (-720 <= dev <= 720 or dev == -0x8000))


# ------------------------------------------------------------------ A-XDR

MAX_DEPTH = 32
_INT_SIZES = {axdr.DOUBLE_LONG: (4, True), axdr.DOUBLE_LONG_UNSIGNED: (4, False), axdr.INTEGER: (1, True),
              axdr.LONG: (2, True), axdr.UNSIGNED: (1, False), axdr.LONG_UNSIGNED: (2, False),
              axdr.LONG64: (8, True), axdr.LONG64_UNSIGNED: (8, False), axdr.ENUM: (1, False),
              axdr.BCD: (1, True), axdr.DELTA_INTEGER: (1, True), axdr.DELTA_LONG: (2, True),
              axdr.DELTA_DOUBLE_LONG: (4, True), axdr.DELTA_UNSIGNED: (1, False),
              axdr.DELTA_LONG_UNSIGNED: (2, False), axdr.DELTA_DOUBLE_LONG_UNSIGNED: (4, False)}


def data(cur, parent, label=None, secret=False, depth=0):
    # One tagged A-XDR Data element at cur -> its node (added to parent as
    # it is read, so a truncated value keeps what came before).
    off = cur.at()
    tag = cur.u8("Data type tag")
    return _data_body(cur, parent, label, tag, off, secret, depth)


def _data_body(cur, parent, label, tag, off, secret, depth):
    if depth > MAX_DEPTH:
        raise Stop(off, "values nested deeper than %d" % MAX_DEPTH)
    name = axdr.tag_name(tag)
    if name.startswith("tag "):
        raise Stop(off, "unknown A-XDR Data type tag %d (0x%02X)" % (tag, tag))
    n = parent.add(label or name, None, off)
    if label:
        n.text = name
    n.tag = tag
    _value(cur, n, tag, name, secret, depth, tagged=True)
    return n


def _set(n, name, text, value):
    if n.name == name:
        n.text = text
    else:
        n.text = name + text if text.startswith("[") else "%s %s" % (name, text)
    n.value = value


def value_summary(n):
    # a Data node's text, short enough for a one-line summary
    t = n.text or n.name
    if " = date-time " in t:
        return "date-time " + t.split(" = date-time ", 1)[1]
    return t if len(t) <= 72 else t[:69] + "..."


def _value(cur, n, tag, name, secret, depth, tagged, desc=None):
    # The value of type tag at cur into node n (compact-array elements come
    # untagged, with desc their description).
    if tag in (axdr.ARRAY, axdr.STRUCTURE):
        if tagged:
            count = cur.length(name + " element count")
        else:
            count = desc[1] if tag == axdr.ARRAY else len(desc[1])
        _set(n, name, "[%d]" % count, None)
        for i in range(count):
            if tagged:
                data(cur, n, None, secret, depth + 1)
            else:
                sub = desc[2] if tag == axdr.ARRAY else desc[1][i]
                _untagged(cur, n, sub, secret, depth + 1)
        _annotate(n)
    elif tag in (axdr.NULL_DATA, axdr.DONT_CARE):
        _set(n, name, "", None)
        n.text = n.text or None
    elif tag == axdr.BOOLEAN:
        v = cur.u8("boolean")
        _set(n, name, "true" if v else "false", bool(v))
    elif tag in _INT_SIZES:
        size, signed = _INT_SIZES[tag]
        v = cur.sint(size, name) if signed else cur.uint(size, name)
        _set(n, name, str(v), v)
    elif tag == axdr.BIT_STRING:
        nbits = cur.length("bit-string length")
        b = cur.take((nbits + 7) // 8, "bit-string of %d bits" % nbits)
        bits = "".join("1" if b[i >> 3] & (0x80 >> (i & 7)) else "0" for i in range(min(nbits, 256)))
        _set(n, name, "%d bits %s%s" % (nbits, bits, "..." if nbits > 256 else ""), bits)
    elif tag in (axdr.OCTET_STRING, axdr.VISIBLE_STRING, axdr.UTF8_STRING):
        ln = cur.length(name + " length")
        b = cur.take(ln, "%s of %d bytes" % (name, ln))
        if secret:
            _set(n, name, "%d bytes (secret, not shown)" % ln, None)
        elif tag == axdr.OCTET_STRING:
            t = "[%d] %s" % (ln, hexs(b))
            if ln:
                t += ' "%s"' % printable(b)
            if looks_like_date_time(b):
                t += " = date-time %s" % date_time_text(b)
            _set(n, name, t, hexs(b))
        else:
            s = b.decode("utf-8" if tag == axdr.UTF8_STRING else "latin-1", "replace")
            _set(n, name, json.dumps(s, ensure_ascii=False), s)
    elif tag == axdr.FLOAT32:
        v = struct.unpack(">f", cur.take(4, name))[0]
        _set(n, name, repr(v), v if v == v and abs(v) != float("inf") else repr(v))
    elif tag == axdr.FLOAT64:
        v = struct.unpack(">d", cur.take(8, name))[0]
        _set(n, name, repr(v), v if v == v and abs(v) != float("inf") else repr(v))
    elif tag == axdr.DATE_TIME:
        b = cur.take(12, name)
        _set(n, name, date_time_text(b), date_time_text(b))
    elif tag == axdr.DATE:
        b = cur.take(5, name)
        t = date_text((b[0] << 8) | b[1], b[2], b[3], b[4])
        _set(n, name, t, t)
    elif tag == axdr.TIME:
        b = cur.take(4, name)
        t = time_text(b[0], b[1], b[2], b[3])
        _set(n, name, t, t)
    elif tag == axdr.COMPACT_ARRAY:
        _compact(cur, n, secret, depth)
    else:
        raise Stop(cur.at(), "A-XDR type %s (tag %d) cannot be decoded here" % (name, tag))


def _description(cur, depth):
    # TypeDescription (compact-array): tag, (ARRAY, count, desc), (STRUCTURE, [desc...])
    off = cur.at()
    if depth > MAX_DEPTH:
        raise Stop(off, "compact-array description nested deeper than %d" % MAX_DEPTH)
    t = cur.u8("type description")
    if t == axdr.ARRAY:
        count = cur.uint(2, "array description count")
        return (t, count, _description(cur, depth + 1))
    if t == axdr.STRUCTURE:
        count = cur.length("structure description count")
        return (t, [_description(cur, depth + 1) for _ in range(count)])
    if axdr.tag_name(t).startswith("tag ") or t == axdr.COMPACT_ARRAY:
        raise Stop(off, "bad type %d in a compact-array description" % t)
    return (t,)


def _desc_text(d):
    if d[0] == axdr.ARRAY:
        return "array[%d] of %s" % (d[1], _desc_text(d[2]))
    if d[0] == axdr.STRUCTURE:
        return "structure{%s}" % ", ".join(_desc_text(x) for x in d[1])
    return axdr.tag_name(d[0])


def _untagged(cur, parent, desc, secret, depth):
    if depth > MAX_DEPTH:
        raise Stop(cur.at(), "values nested deeper than %d" % MAX_DEPTH)
    name = axdr.tag_name(desc[0])
    n = parent.add(name, None, cur.at())
    n.tag = desc[0]
    _value(cur, n, desc[0], name, secret, depth, tagged=False, desc=desc)
    return n


def _compact(cur, n, secret, depth):
    d = _description(cur, depth)
    n.add("contents-description", _desc_text(d))
    ln = cur.length("compact-array contents length")
    cur.need(ln, "compact-array contents of %d bytes" % ln)
    end = cur.p + ln
    sub = Cur(cur.buf, cur.p, end, cur.base, cur.label)
    rows = n.add("array-contents", "%d bytes" % ln, cur.at())
    k = 0
    while sub.p < end:
        _untagged(sub, rows, d, secret, depth + 1)
        k += 1
    cur.p = end
    _set(n, "compact-array", "%d element%s of %s" % (k, "" if k == 1 else "s", _desc_text(d)), None)


def _annotate(n):
    # Names for well-known value shapes: scaler_unit {integer, enum}, and
    # object references {class-id, [version,] logical-name, [attribute]}.
    c = n.children
    if n.tag != axdr.STRUCTURE or not c:
        return
    if len(c) == 2 and c[0].tag == axdr.INTEGER and c[1].tag == axdr.ENUM:
        n.text += " scaler_unit: 10^%d %s" % (c[0].value, unit_name(c[1].value))
        c[1].text += " (%s)" % unit_name(c[1].value)
        return
    if len(c) >= 3 and c[0].tag == axdr.LONG_UNSIGNED:
        ln_i = 1 if c[1].tag == axdr.OCTET_STRING else 2 if c[1].tag == axdr.UNSIGNED else -1
        if ln_i < 0 or len(c) <= ln_i or c[ln_i].tag != axdr.OCTET_STRING or not isinstance(c[ln_i].value, str) \
                or len(c[ln_i].value) != 12:
            return
        cid = c[0].value
        ln = obis_text(bytes.fromhex(c[ln_i].value))
        t = "%s %s" % (class_name(cid), ln)
        if ln_i == 1 and len(c) >= 3 and c[2].tag == axdr.INTEGER:
            t += " attribute %d (%s)" % (c[2].value, member_name(cid, c[2].value))
        n.text += " = " + t
        c[0].text += " (%s)" % class_name(cid)


# ------------------------------------------------------------------ session


class Session:
    # What one connection's earlier APDUs tell about the later ones: system
    # titles (for the ciphering IV), the dedicated key, the mechanism (LLS
    # passwords are masked), the requests waiting for their responses, and
    # the pieces of APDUs that travel in segments or blocks (per direction).

    def __init__(self, keys=None, client_title=None, server_title=None):
        self.keys = keys  # {"ek", "ak"} or None
        self.client_title = client_title
        self.server_title = server_title or (keys or {}).get("system_title")
        self.dedicated_key = None
        self.mechanism = None
        self.pending = {}  # invoke id -> (kind, [(class, ln, attr)])
        self.pieces = {}  # (direction, what) -> [bytes, ...]
        self.problems = []  # (where, reason) found without stopping (a wrong FCS)


def _iip(cur, parent):
    off = cur.at()
    b = cur.u8("invoke-id-and-priority")
    parent.add("invoke-id-and-priority", "0x%02X: invoke-id %d, %s, %s priority" % (
        b, b & 0x0F, "confirmed" if b & 0x40 else "unconfirmed", "high" if b & 0x80 else "normal"), off, b)
    return b & 0x0F


def _reference(cid, ln, idx, methods=False):
    return "%d/%s/%d (%s)" % (cid, obis_text(ln), idx, member_name(cid, idx, methods))


def _descriptor(cur, parent, methods=False):
    # Cosem-Attribute-Descriptor / Cosem-Method-Descriptor
    what = "cosem-method-descriptor" if methods else "cosem-attribute-descriptor"
    n = parent.add(what, None, cur.at())
    cid = cur.uint(2, "class-id")
    n.add("class-id", "%d (%s)" % (cid, class_name(cid)), n.offset, cid)
    off = cur.at()
    ln = cur.take(6, "instance-id")
    n.add("instance-id", obis_text(ln), off, obis_text(ln))
    off = cur.at()
    idx = cur.sint(1, "method-id" if methods else "attribute-id")
    n.add("method-id" if methods else "attribute-id", "%d (%s)" % (idx, member_name(cid, idx, methods)), off, idx)
    n.text = _reference(cid, ln, idx, methods)
    return (cid, ln, idx)


RANGE_FIELDS = ("restricting_object", "from_value", "to_value", "selected_values")
ENTRY_FIELDS = ("from_entry", "to_entry", "from_selected_value", "to_selected_value")


def _selection(cur, parent, ref):
    # access-selection OPTIONAL: selector, then the parameters (Data)
    off = cur.at()
    present = cur.u8("access-selection presence")
    if not present:
        return None
    n = parent.add("access-selection", None, off)
    sel = cur.u8("access-selector")
    profile = ref is not None and ref[0] == 7 and ref[2] == 2
    kind = {1: "range_descriptor", 2: "entry_descriptor"}.get(sel) if profile else None
    n.add("access-selector", "%d%s" % (sel, " (%s)" % kind if kind else ""), None, sel)
    v = data(cur, n, "access-parameters")
    n.text = kind or "selector %d" % sel
    fields = RANGE_FIELDS if kind == "range_descriptor" else ENTRY_FIELDS if kind == "entry_descriptor" else None
    if fields and v.tag == axdr.STRUCTURE:
        for name, c in zip(fields, v.children):
            c.text = c.name + (c.text if (c.text or "").startswith("[") else " " + (c.text or ""))
            c.name = name
        v.text += " = " + kind
    return sel


def _get_data_result(cur, parent, label="result", secret=False):
    off = cur.at()
    choice = cur.u8("Get-Data-Result choice")
    if choice == 0:
        return value_summary(data(cur, parent, label, secret))
    if choice == 1:
        r = cur.u8("data-access-result")
        name = DATA_ACCESS_RESULTS.get(r, "data-access-result %d" % r)
        parent.add(label, "data-access-result %s" % name, off, name)
        return name
    raise Stop(off, "Get-Data-Result: choice %d is neither data (0) nor data-access-result (1)" % choice)


def _access_result(cur, parent, label="result", names=DATA_ACCESS_RESULTS):
    off = cur.at()
    r = cur.u8(label)
    name = names.get(r, "%s %d" % (label, r))
    parent.add(label, name, off, name)
    return name


def _block_number(cur, parent, size=4, label="block-number"):
    off = cur.at()
    v = cur.uint(size, label)
    parent.add(label, str(v), off, v)
    return v


def _last_block(cur, parent):
    off = cur.at()
    v = cur.u8("last-block")
    parent.add("last-block", "true" if v else "false", off, bool(v))
    return bool(v)


def _count(cur, parent, what):
    off = cur.at()
    k = cur.length(what)
    parent.add(what, str(k), off, k)
    return k


def _raw_data(cur, parent, label="raw-data"):
    off = cur.at()
    raw = cur.octets(label)
    parent.add(label, "%d bytes %s" % (len(raw), hexs(raw[:32]) + ("..." if len(raw) > 32 else "")), off,
               hexs(raw))
    return raw


def _collect(sess, direction, what, raw, first, last, node, decode_whole, label, unit="block"):
    # Pieces of a long APDU or value: kept until the last arrives, then the
    # whole decoded under node.
    key = (direction, what)
    if first or key not in sess.pieces:
        sess.pieces[key] = []
    sess.pieces[key].append(raw)
    if not last:
        return
    parts = sess.pieces.pop(key)
    whole = b"".join(parts)
    n = node.add("reassembled", "%s from %d %s%s, %d bytes" % (label, len(parts), unit, "" if len(parts) == 1 else "s",
                                                               len(whole)))
    return decode_whole(Cur(whole, label="the %s reassembled from %d %s%s" % (
        label, len(parts), unit, "" if len(parts) == 1 else "s")), n)


def _is_secret(ref, methods):
    # Association LN: secret (attribute 7), change_HLS_secret (method 2)
    return ref is not None and ref[0] == 15 and ref[2] == (2 if methods else 7)


# ------------------------------------------------------------ xDLMS services


def _form(cur, n, forms, base):
    off = cur.at()
    choice = cur.u8(base + " choice")
    if choice not in forms:
        raise Stop(off, "%s: unknown choice %d" % (base, choice))
    name = "%s-%s" % (base, forms[choice])
    n.name = name
    return choice, name


def _get_request(cur, n, sess, d):
    choice, name = _form(cur, n, GET_FORMS, "GET-Request")
    iid = _iip(cur, n)
    if choice == 1:
        ref = _descriptor(cur, n)
        sel = _selection(cur, n, ref)
        sess.pending[iid] = ("get", [ref])
        return "%s %s%s" % (name, _reference(*ref), " selector %d" % sel if sel else "")
    if choice == 2:
        return "%s block %d" % (name, _block_number(cur, n))
    k = _count(cur, n, "attribute-descriptor-list count")
    refs = []
    for i in range(k):
        item = n.add("item %d" % (i + 1))
        refs.append(_descriptor(cur, item))
        _selection(cur, item, refs[-1])
        item.text = _reference(*refs[-1])
    sess.pending[iid] = ("get-list", refs)
    return "%s %s" % (name, ", ".join(_reference(*r) for r in refs))


def _get_response(cur, n, sess, d):
    choice, name = _form(cur, n, GET_RESPONSE_FORMS, "GET-Response")
    iid = _iip(cur, n)
    kind, refs = sess.pending.get(iid, ("get", []))
    if refs and choice != 2:
        n.add("request", ", ".join(_reference(*r) for r in refs))
    if choice == 1:
        sess.pending.pop(iid, None)
        res = _get_data_result(cur, n, secret=len(refs) == 1 and _is_secret(refs[0], False))
        return "%s %s%s" % (name, _reference(*refs[0]) + " = " if len(refs) == 1 else "", res)
    if choice == 3:
        sess.pending.pop(iid, None)
        k = _count(cur, n, "result count")
        res = [_get_data_result(cur, n, "result %d" % (i + 1)) for i in range(k)]
        return "%s %d results" % (name, len(res))
    blk = n.add("result", "DataBlock-G", cur.at())
    last = _last_block(cur, blk)
    number = _block_number(cur, blk)
    off = cur.at()
    c = cur.u8("DataBlock-G result choice")
    if c == 1:
        _access_result(cur, blk, "data-access-result")
        sess.pending.pop(iid, None)
        return "%s block %d %s" % (name, number, blk.children[-1].text)
    if c != 0:
        raise Stop(off, "DataBlock-G result: choice %d is neither raw-data (0) nor data-access-result (1)" % c)
    raw = _raw_data(cur, blk)

    def whole(wc, parent):
        if kind == "get-list":
            k = _count(wc, parent, "result count")
            for i in range(k):
                _get_data_result(wc, parent, "result %d" % (i + 1))
            s = "%d results" % k
        else:
            s = value_summary(data(wc, parent, "value"))
        if wc.left():
            raise Stop(wc.at(), "%d bytes after the value" % wc.left())
        return s

    if last:
        sess.pending.pop(iid, None)
    s = _collect(sess, d, "get", raw, number == 1, last, n, whole, "value")
    return "%s block %d%s, %d bytes%s" % (name, number, " (last)" if last else "", len(raw), ": " + s if s else "")


def _set_request(cur, n, sess, d):
    choice, name = _form(cur, n, SET_FORMS, "SET-Request")
    _iip(cur, n)
    refs = []
    if choice in (1, 2):
        refs.append(_descriptor(cur, n))
        _selection(cur, n, refs[0])
    elif choice in (4, 5):
        k = _count(cur, n, "attribute-descriptor-list count")
        for i in range(k):
            item = n.add("item %d" % (i + 1))
            refs.append(_descriptor(cur, item))
            _selection(cur, item, refs[-1])
            item.text = _reference(*refs[-1])
    secret = any(_is_secret(r, False) for r in refs)
    what = ", ".join(_reference(*r) for r in refs)
    if choice == 1:
        data(cur, n, "value", secret)
        return "%s %s" % (name, what)
    if choice == 4:
        _values(cur, n, "value", secret)
        return "%s %s" % (name, what)
    return _sa_blocks(cur, n, sess, d, "set", choice in (2, 5), choice == 5, secret, "value", name, what)


def _values(cur, parent, label, secret):
    # SEQUENCE OF Data: count, then the values
    k = _count(cur, parent, label + "-list count")
    for i in range(k):
        data(cur, parent, "%s %d" % (label, i + 1), secret)


def _sa_blocks(cur, n, sess, d, key, first, is_list, secret, label, name, what):
    # DataBlock-SA of a SET or ACTION request (the value or parameters in
    # blocks); the whole decoded when the last block arrives.
    blk = n.add("datablock", "DataBlock-SA", cur.at())
    last = _last_block(cur, blk)
    number = _block_number(cur, blk)
    raw = _raw_data(cur, blk)
    if first:
        sess.pending[(key, d)] = (is_list, secret)
    is_list, secret = sess.pending.get((key, d), (False, False))
    if secret:
        blk.children[-1].text = "%d bytes (secret, not shown)" % len(raw)
        blk.children[-1].value = None

    def whole(wc, parent):
        if is_list:
            _values(wc, parent, label, secret)
        else:
            data(wc, parent, label, secret)

    _collect(sess, d, key, raw, first, last, n, whole, label)
    return "%s %sblock %d%s" % (name, what + " " if what else "", number, " (last)" if last else "")


def _set_response(cur, n, sess, d):
    choice, name = _form(cur, n, SET_RESPONSE_FORMS, "SET-Response")
    _iip(cur, n)
    if choice in (1, 3):
        r = _access_result(cur, n)
        if choice == 3:
            _block_number(cur, n)
        return "%s %s" % (name, r)
    if choice == 2:
        return "%s block %d" % (name, _block_number(cur, n))
    k = _count(cur, n, "result count")
    res = [_access_result(cur, n, "result %d" % (i + 1)) for i in range(k)]
    if choice == 4:
        _block_number(cur, n)
    return "%s %s" % (name, ", ".join(res))


def _action_request(cur, n, sess, d):
    choice, name = _form(cur, n, ACTION_FORMS, "ACTION-Request")
    _iip(cur, n)
    if choice == 2:
        return "%s block %d" % (name, _block_number(cur, n))
    refs = []
    if choice in (1, 4):
        refs.append(_descriptor(cur, n, True))
    elif choice in (3, 5):
        k = _count(cur, n, "cosem-method-descriptor-list count")
        for i in range(k):
            item = n.add("item %d" % (i + 1))
            refs.append(_descriptor(cur, item, True))
            item.text = _reference(*refs[-1], methods=True)
    secret = any(_is_secret(r, True) for r in refs)
    what = ", ".join(_reference(*r, methods=True) for r in refs)
    if choice == 1:
        off = cur.at()
        if cur.u8("method-invocation-parameters presence"):
            data(cur, n, "method-invocation-parameters", secret)
        else:
            n.add("method-invocation-parameters", "absent", off)
        return "%s %s" % (name, what)
    if choice == 3:
        _values(cur, n, "method-invocation-parameters", secret)
        return "%s %s" % (name, what)
    return _sa_blocks(cur, n, sess, d, "action", choice in (4, 5), choice == 5, secret,
                      "method-invocation-parameters", name, what)


def _action_result(cur, parent, label="result"):
    # Action-Response-With-Optional-Data
    r = _access_result(cur, parent, label, ACTION_RESULTS)
    off = cur.at()
    if cur.u8("return-parameters presence"):
        _get_data_result(cur, parent, "return-parameters")
    else:
        parent.add("return-parameters", "absent", off)
    return r


def _action_response(cur, n, sess, d):
    choice, name = _form(cur, n, ACTION_RESPONSE_FORMS, "ACTION-Response")
    _iip(cur, n)
    if choice == 1:
        return "%s %s" % (name, _action_result(cur, n))
    if choice == 4:
        return "%s block %d" % (name, _block_number(cur, n))
    if choice == 3:
        k = _count(cur, n, "result count")
        res = []
        for i in range(k):
            item = n.add("item %d" % (i + 1))
            res.append(_action_result(cur, item))
        return "%s %s" % (name, ", ".join(res))
    blk = n.add("pblock", "DataBlock-SA", cur.at())
    last = _last_block(cur, blk)
    number = _block_number(cur, blk)
    raw = _raw_data(cur, blk)

    def whole(wc, parent):
        _action_result(wc, parent)

    _collect(sess, d, "action-response", raw, number == 1, last, n, whole, "response")
    return "%s block %d%s" % (name, number, " (last)" if last else "")


def _event_notification(cur, n, sess, d):
    off = cur.at()
    if cur.u8("time presence"):
        t = cur.octets("time")
        n.add("time", date_time_text(t) if len(t) == 12 else hexs(t), off)
    ref = _descriptor(cur, n)
    data(cur, n, "attribute-value")
    return "EventNotificationRequest %s" % _reference(*ref)


def _data_notification(cur, n, sess, d):
    off = cur.at()
    lid = cur.uint(4, "long-invoke-id-and-priority")
    n.add("long-invoke-id-and-priority", "0x%08X: invoke-id %d, %s, %s priority%s%s" % (
        lid, lid & 0xFFFFFF, "confirmed" if lid & 0x40000000 else "unconfirmed",
        "high" if lid & 0x80000000 else "normal", ", self-descriptive" if lid & 0x10000000 else "",
        ", break on error" if lid & 0x20000000 else ""), off, lid)
    off = cur.at()
    t = cur.octets("date-time")
    n.add("date-time", date_time_text(t) if len(t) == 12 else ("absent" if not t else hexs(t)), off)
    body = data(cur, n, "notification-body")
    body_text = value_summary(body)
    c = body.children
    if body.tag == axdr.STRUCTURE and c and c[0].tag == axdr.OCTET_STRING and isinstance(c[0].value, str) \
            and len(c[0].value) == 12:
        c[0].text += " = push setup %s" % obis_text(bytes.fromhex(c[0].value))
    return "DataNotification invoke-id %d, %s" % (lid & 0xFFFFFF, body_text)


def _exception_response(cur, n, sess, d):
    off = cur.at()
    s = cur.u8("state-error")
    n.add("state-error", STATE_ERRORS.get(s, str(s)), off, s)
    off = cur.at()
    e = cur.u8("service-error")
    n.add("service-error", SERVICE_ERRORS.get(e, str(e)), off, e)
    t = "exception-response %s, %s" % (STATE_ERRORS.get(s, str(s)), SERVICE_ERRORS.get(e, str(e)))
    if e == 6:
        off = cur.at()
        ic = cur.uint(4, "invocation-counter")
        n.add("invocation-counter", "%d (the lowest the server accepts)" % ic, off, ic)
        t += " %d" % ic
    return t


def _gbt(cur, n, sess, d):
    off = cur.at()
    bc = cur.u8("block-control")
    last, streaming, window = bool(bc & 0x80), bool(bc & 0x40), bc & 0x3F
    n.add("block-control", "0x%02X: last-block %s, streaming %s, window %d" % (
        bc, "true" if last else "false", "true" if streaming else "false", window), off, bc)
    number = _block_number(cur, n, 2)
    ack = _block_number(cur, n, 2, "block-number-ack")
    raw = _raw_data(cur, n, "block-data")
    inner = None
    if raw:
        def whole(wc, parent):
            return apdus(wc, parent, sess, d)

        inner = _collect(sess, d, "gbt", raw, number == 1, last, n, whole, "APDU")
    return "general-block-transfer block %d ack %d%s%s, %d bytes%s" % (
        number, ack, " (last)" if last else "", " streaming" if streaming else "", len(raw),
        ": " + inner if inner else "")


# ------------------------------------------------------------------ ACSE

AARQ_FIELDS = {0x80: "protocol-version", 0xA1: "application-context-name", 0xA2: "called-AP-title",
               0xA3: "called-AE-qualifier", 0xA4: "called-AP-invocation-identifier",
               0xA5: "called-AE-invocation-identifier", 0xA6: "calling-AP-title", 0xA7: "calling-AE-qualifier",
               0xA8: "calling-AP-invocation-identifier", 0xA9: "calling-AE-invocation-identifier",
               0x8A: "sender-acse-requirements", 0x8B: "mechanism-name", 0xAC: "calling-authentication-value",
               0xBD: "implementation-information", 0xBE: "user-information"}
AARE_FIELDS = {0x80: "protocol-version", 0xA1: "application-context-name", 0xA2: "result",
               0xA3: "result-source-diagnostic", 0xA4: "responding-AP-title", 0xA5: "responding-AE-qualifier",
               0xA6: "responding-AP-invocation-identifier", 0xA7: "responding-AE-invocation-identifier",
               0x88: "responder-acse-requirements", 0x89: "mechanism-name",
               0xAA: "responding-authentication-value", 0xBD: "implementation-information",
               0xBE: "user-information"}
RELEASE_FIELDS = {0x80: "reason", 0xBE: "user-information"}
_DLMS_OID = b"\x60\x85\x74\x05\x08"  # 2.16.756.5.8 (DLMS UA)


def _ber_len(cur, what):
    p = cur.p
    b = cur.u8(what + " length")
    if b < 0x80:
        return b
    if b == 0x80 or b > 0x84:
        raise Stop(cur.at(p), "%s: BER length byte 0x%02X not supported" % (what, b))
    return cur.uint(b & 0x7F, what + " length")


def _ber(cur, what):
    # (tag, offset of the tag, sub-cursor over the contents)
    off = cur.at()
    tag = cur.u8(what + " tag")
    if tag & 0x1F == 0x1F:
        tag = (tag << 8) | cur.u8(what + " tag")
    n = _ber_len(cur, what)
    cur.need(n, "%s contents of %d bytes" % (what, n))
    sub = Cur(cur.buf, cur.p, cur.p + n, cur.base, cur.label)
    cur.p += n
    return tag, off, sub


def oid_text(b):
    if not b:
        return ""
    arcs = [min(b[0] // 40, 2), b[0] - 40 * min(b[0] // 40, 2)]
    v = 0
    for c in b[1:]:
        v = (v << 7) | (c & 0x7F)
        if not c & 0x80:
            arcs.append(v)
            v = 0
    return ".".join(str(a) for a in arcs)


def _oid(sub, node, names, short):
    b = sub.take(sub.left(), "object identifier")
    arc = b[-1] if len(b) == len(_DLMS_OID) + 2 and b.startswith(_DLMS_OID) else None
    name = names.get(arc, "unknown") if arc is not None else "not a DLMS UA identifier"
    node.text = "%s %s" % (oid_text(b), name)
    node.value = arc
    return arc, short.get(arc, "?") if arc is not None else "?"


def _acse_field(tag, sub, node, sess, d, info):
    # One AARQ/AARE/RLRQ/RLRE component; info collects what the summary needs.
    if tag == 0xA1:
        t, _o, inner = _ber(sub, "application-context-name")
        info["context"] = _oid(inner, node, CONTEXTS, CONTEXT_SHORT)[1]
    elif tag in (0x8B, 0x89):
        arc, short = _oid(sub, node, MECHANISMS, MECH_SHORT)
        sess.mechanism = arc
        info["mechanism"] = short
    elif tag in ((0xA4,) if info.get("aare") else (0xA2, 0xA6)):
        t, _o, inner = _ber(sub, "AP-title")
        title = inner.take(inner.left(), "AP-title")
        node.text = '%s "%s" (%d bytes)' % (hexs(title), printable(title), len(title))
        node.value = hexs(title)
        if tag == 0xA6:
            sess.client_title = title
        elif tag == 0xA4 and d != "client":
            sess.server_title = title
    elif tag in (0x8A, 0x88):
        b = sub.take(sub.left(), "acse-requirements")
        auth = len(b) >= 2 and bool(b[1] & 0x80)
        node.text = "authentication %s" % ("requested" if auth else "not requested")
        node.value = auth
    elif tag in (0xAC, 0xAA):
        t, _o, inner = _ber(sub, "authentication-value")
        b = inner.take(inner.left(), "authentication-value")
        kind = "charstring" if t == 0x80 else "bitstring" if t == 0x81 else "choice 0x%02X" % t
        if sess.mechanism is None or sess.mechanism <= 1:
            node.text = "%s, %d bytes (password, not shown)" % (kind, len(b))
        else:
            node.text = "%s, %d bytes: %s (%s challenge)" % (kind, len(b), hexs(b),
                                                              "CtoS" if tag == 0xAC else "StoC")
            node.value = hexs(b)
    elif tag == 0xBE:
        t, _o, inner = _ber(sub, "user-information")
        if t != 0x04:
            raise Stop(_o, "user-information: an OCTET STRING (0x04) expected, tag 0x%02X" % t)
        node.text = "%d bytes" % inner.left()
        info["user"] = apdus(inner, node, sess, d)
    elif tag == 0x80 and info.get("release"):
        v = int.from_bytes(sub.take(sub.left(), "reason"), "big")
        names = RLRQ_REASONS if info["release"] == "RLRQ" else RLRE_REASONS
        node.text = "%d (%s)" % (v, names.get(v, "?"))
        node.value = v
        info["reason"] = names.get(v, str(v))
    else:
        b = sub.take(sub.left(), "contents")
        node.text = hexs(b)
        node.value = hexs(b)


def _aare_result(tag, sub, node, info):
    if tag == 0xA2:
        _t, _o, inner = _ber(sub, "result")
        v = int.from_bytes(inner.take(inner.left(), "result"), "big")
        node.text = "%d (%s)" % (v, RESULTS.get(v, "?"))
        node.value = v
        info["result"] = RESULTS.get(v, str(v))
        return True
    if tag == 0xA3:
        t, _o, inner = _ber(sub, "result-source-diagnostic")
        src = "acse-service-user" if t == 0xA1 else "acse-service-provider" if t == 0xA2 else "0x%02X" % t
        _t2, _o2, inner2 = _ber(inner, "diagnostic")
        v = int.from_bytes(inner2.take(inner2.left(), "diagnostic"), "big")
        name = (DIAG_USER if t == 0xA1 else DIAG_PROVIDER).get(v, "?")
        node.text = "%s: %d (%s)" % (src, v, name)
        node.value = v
        info["diagnostic"] = name
        return True
    return False


def _acse(cur, n, sess, d, tag):
    kind = APDU_NAMES[tag]
    fields = AARQ_FIELDS if tag == 0x60 else AARE_FIELDS if tag == 0x61 else RELEASE_FIELDS
    length = _ber_len(cur, kind)
    cur.need(length, "%s of %d bytes" % (kind, length))
    body = Cur(cur.buf, cur.p, cur.p + length, cur.base, cur.label)
    cur.p += length
    info = {"release": kind if tag in (0x62, 0x63) else None, "aare": tag == 0x61}
    if tag == 0x60:
        sess.mechanism = None
    while body.left():
        t, off, sub = _ber(body, kind + " component")
        node = n.add(fields.get(t, "component 0x%02X" % t), None, off)
        if tag == 0x61 and _aare_result(t, sub, node, info):
            continue
        _acse_field(t, sub, node, sess, d, info)
    s = kind
    if info.get("context"):
        s += " " + info["context"]
    if info.get("mechanism"):
        s += " " + info["mechanism"]
    if info.get("result"):
        s += " " + info["result"]
        if info.get("diagnostic") not in (None, "null"):
            s += " (%s)" % info["diagnostic"]
    if info.get("reason"):
        s += " reason " + info["reason"]
    if info.get("user"):
        s += ", " + info["user"]
    return s


def _conformance(cur, n):
    off = cur.at()
    head = cur.take(4, "conformance header")
    if head != b"\x5f\x1f\x04\x00":
        raise Stop(off, "conformance: 5F 1F 04 00 expected, found %s" % hexs(head))
    bits = cur.uint(3, "conformance bits")
    names = conformance_names(bits)
    c = n.add("conformance", "0x%06X: %s" % (bits, ", ".join(names) or "none"), off, names)
    for name in names:
        c.add(name)
    return bits


def _initiate_request(cur, n, sess, d):
    off = cur.at()
    if cur.u8("dedicated-key presence"):
        key = cur.octets("dedicated-key")
        n.add("dedicated-key", "%d bytes (not shown)" % len(key), off)
        sess.dedicated_key = key
    else:
        n.add("dedicated-key", "absent", off)
    off = cur.at()
    if cur.u8("response-allowed presence"):
        v = cur.u8("response-allowed")
        n.add("response-allowed", "true" if v else "false", off, bool(v))
    else:
        n.add("response-allowed", "true (default)", off, True)
    off = cur.at()
    if cur.u8("proposed-quality-of-service presence"):
        n.add("proposed-quality-of-service", str(cur.u8("proposed-quality-of-service")), off)
    off = cur.at()
    v = cur.u8("proposed-dlms-version-number")
    n.add("proposed-dlms-version-number", str(v), off, v)
    _conformance(cur, n)
    off = cur.at()
    pdu = cur.uint(2, "client-max-receive-pdu-size")
    n.add("client-max-receive-pdu-size", str(pdu), off, pdu)
    return "InitiateRequest dlms %d, max PDU %d" % (v, pdu)


def _initiate_response(cur, n, sess, d):
    off = cur.at()
    if cur.u8("negotiated-quality-of-service presence"):
        n.add("negotiated-quality-of-service", str(cur.u8("negotiated-quality-of-service")), off)
    off = cur.at()
    v = cur.u8("negotiated-dlms-version-number")
    n.add("negotiated-dlms-version-number", str(v), off, v)
    _conformance(cur, n)
    off = cur.at()
    pdu = cur.uint(2, "server-max-receive-pdu-size")
    n.add("server-max-receive-pdu-size", str(pdu), off, pdu)
    off = cur.at()
    vaa = cur.uint(2, "vaa-name")
    n.add("vaa-name", "0x%04X%s" % (vaa, {7: " (LN)", 0xFA00: " (SN)"}.get(vaa, "")), off, vaa)
    return "InitiateResponse dlms %d, max PDU %d" % (v, pdu)


def _confirmed_service_error(cur, n, sess, d):
    off = cur.at()
    s = cur.u8("ConfirmedServiceError choice")
    n.add("service", CSE_SERVICES.get(s, str(s)), off, s)
    off = cur.at()
    k = cur.u8("ServiceError choice")
    kind, values = SERVICE_ERROR_KINDS.get(k, ("choice %d" % k, {}))
    v = cur.u8("ServiceError value")
    n.add(kind, values.get(v, str(v)), off, v)
    return "ConfirmedServiceError %s %s %s" % (CSE_SERVICES.get(s, str(s)), kind, values.get(v, str(v)))


# ------------------------------------------------------------- ciphering

SC_BITS = ((0x10, "authentication"), (0x20, "encryption"), (0x40, "broadcast key"), (0x80, "compression"))


def _cipher_backend():
    from dlms_micro.security import gcm

    try:
        import dlms_micro_cpython.crypto  # noqa: F401  (registers the `cryptography` backend)
    except ImportError:  # the portable backend still works
        pass
    return gcm.new()


def _ciphered(cur, n, sess, d, tag):
    general = tag in (0xDB, 0xDC)
    if general:
        form, plain = ("general-glo" if tag == 0xDB else "general-ded"), None
        off = cur.at()
        title = cur.octets("system-title")
        n.add("system-title", '%s "%s"' % (hexs(title), printable(title)), off, hexs(title))
        if d == "client":
            sess.client_title = title
        elif d == "server":
            sess.server_title = title
    else:
        form, plain, plain_name, sent_by_client = _CIPHERED[tag]
        n.add("protects", "%s (0x%02X)" % (plain_name, plain))
        d = "client" if sent_by_client else "server"
        title = None
    off = cur.at()
    ln = cur.length("ciphered-content length")
    c0 = cur.p
    end = c0 + ln
    if ln < 5:
        raise Stop(off, "ciphered content of %d bytes: the security header alone takes 5" % ln)
    short = end > cur.end  # truncated: the header is still shown
    off = cur.at()
    sc = cur.u8("security-control")
    bits = [name for mask, name in SC_BITS if sc & mask]
    n.add("security-control", "0x%02X: %s, suite %d" % (sc, " + ".join(bits) or "no protection", sc & 0x0F), off, sc)
    off = cur.at()
    ic = cur.uint(4, "invocation-counter")
    n.add("invocation-counter", str(ic), off, ic)
    auth = bool(sc & 0x10)
    cs = cur.p
    if short:
        n.add("ciphered-information and tag", "%d of %d bytes %s" % (cur.end - cs, end - cs,
                                                                     hexs(cur.buf[cs:cur.end])), cur.at(cs))
        raise Stop(cur.at(cur.end), "ciphered APDU truncated: %d bytes of ciphered content announced, %d there" % (
            ln, cur.end - c0))
    ce = end - 12 if auth else end
    if ce < cs:
        raise Stop(cur.at(), "authenticated, but %d bytes are left for the 12-byte tag" % (end - cs))
    n.add("ciphered-information" if sc & 0x20 else "information (authenticated only)",
          "%d bytes %s%s" % (ce - cs, hexs(cur.buf[cs:min(ce, cs + 32)]), "..." if ce - cs > 32 else ""), cur.at(cs),
          hexs(cur.buf[cs:ce]))
    if auth:
        n.add("authentication-tag", hexs(cur.buf[ce:end]), cur.at(ce), hexs(cur.buf[ce:end]))
    cur.p = end
    head = "%s-ciphering" % form if general else "%s-%s" % (form, APDU_NAMES.get(plain, "0x%02X" % plain))
    head += " SC 0x%02X IC %d" % (sc, ic)
    if sess.keys is None:
        n.add("deciphered", "no keys given (--keys FILE)")
        return head
    if sc & 0x0F:
        n.add("deciphered", "security suite %d: only suite 0 is deciphered" % (sc & 0x0F))
        return head
    if sc & 0xC0:
        n.add("deciphered", "not done: %s" % ("compression" if sc & 0x80 else "the broadcast key is not in the key file"))
        return head
    if not sc & 0x30:
        data_cur = Cur(cur.buf, cs, ce, cur.base, cur.label)
        inner = apdus(data_cur, n.add("content"), sess, d)
        return head + ": " + inner
    ded = form.endswith("ded")
    key = sess.dedicated_key if ded else sess.keys.get("ek")
    if key is None:
        raise Stop(off, "cannot decipher: no dedicated key (it travels in a ciphered AARQ's InitiateRequest)")
    if title is None:
        title = sess.client_title if d == "client" else sess.server_title if d == "server" else None
    if title is None or len(title) != 8:
        who = {"client": "client", "server": "server"}.get(d, "sender")
        raise Stop(off, "cannot decipher: the %s's system title is not known (no AARQ/AARE before it; give "
                        "--%s-title)" % (who, "server" if d == "server" else "client"))
    iv = bytes(title) + ic.to_bytes(4, "big")
    g = _cipher_backend()
    g.set_key(key)
    aad = bytes([sc]) + sess.keys.get("ak", b"")
    buf = bytearray(cur.buf)
    tag_buf = bytearray(cur.buf[ce:end]) if auth else bytearray(12)
    if sc & 0x30 == 0x30:
        ok = g.decrypt(iv, 0, aad, 0, len(aad), buf, cs, ce, tag_buf, 0, 12)
    elif sc & 0x20:
        g.encrypt(iv, 0, aad, 0, 0, buf, cs, ce, tag_buf, 0, 12)  # counter mode: the same both ways
        ok = None
    else:
        ok = g.gmac_ok(iv, 0, aad, 0, len(aad), tag_buf, 0, 12, buf, cs, ce)
    g.wipe()
    if ok is False:
        n.add("authentication-tag check", "FAILED")
        raise Stop(cur.at(ce), "the authentication tag does not verify: wrong key (%s), wrong system title or altered "
                               "bytes; the ciphered information is not shown deciphered" % ("dedicated key" if ded
                                                                                          else "EK/AK"))
    n.add("authentication-tag check", "ok" if ok else "none (encryption only: nothing to check)", None,
          bool(ok) if ok is not None else None)
    inner_cur = Cur(buf, cs, ce, cur.base, cur.label)
    inner = apdus(inner_cur, n.add("deciphered", "%d bytes" % (ce - cs), cur.at(cs)), sess, d)
    return head + ": " + inner


# --------------------------------------------------------------- dispatch

_SERVICES = {0x01: _initiate_request, 0x08: _initiate_response, 0x0E: _confirmed_service_error,
             0x0F: _data_notification, 0xC0: _get_request, 0xC1: _set_request, 0xC2: _event_notification,
             0xC3: _action_request, 0xC4: _get_response, 0xC5: _set_response, 0xC7: _action_response,
             0xD8: _exception_response, 0xE0: _gbt}
_FROM_CLIENT = (0x60, 0x62, 0x01, 0xC0, 0xC1, 0xC3)
_FROM_SERVER = (0x61, 0x63, 0x08, 0x0E, 0x0F, 0xC2, 0xC4, 0xC5, 0xC7, 0xD8)


def apdu(cur, parent, sess, d=None):
    # One APDU at cur -> its summary; the node is added to parent.
    off = cur.at()
    tag = cur.u8("APDU tag")
    if tag in _CIPHERED:
        name = "%s-%s" % (_CIPHERED[tag][0], _CIPHERED[tag][2])
    else:
        name = APDU_NAMES.get(tag, "unknown APDU 0x%02X" % tag)
    n = parent.add(name, None, off)
    if d is None:
        d = "client" if tag in _FROM_CLIENT else "server" if tag in _FROM_SERVER else None
    try:
        if tag in (0x60, 0x61, 0x62, 0x63):
            s = _acse(cur, n, sess, d, tag)
        elif tag in _SERVICES:
            s = _SERVICES[tag](cur, n, sess, d)
        elif tag in _CIPHERED or tag in (0xDB, 0xDC):
            s = _ciphered(cur, n, sess, d, tag)
        elif tag in (0xDD, 0xDF):
            n.text = "not decoded: suites 1 and 2 (key agreement, signatures) are not supported"
            s = name
            cur.p = cur.end
        elif tag in (0x05, 0x06, 0x0C, 0x0D, 0x16, 0x18):
            n.text = "not decoded: short-name referencing (this stack serves logical names)"
            s = name
            cur.p = cur.end
        else:
            raise Stop(off, "unknown APDU tag 0x%02X" % tag)
    except Stop:
        n.summary = n.name + " (incomplete)"
        raise
    n.summary = s
    return s


def apdus(cur, parent, sess, d=None):
    # The APDU(s) filling cur (one normally; bare hex may hold several).
    out = [apdu(cur, parent, sess, d)]
    while cur.left() > 0 and len(out) < 10000:
        out.append(apdu(cur, parent, sess, d))
    return "; ".join(out)


# ------------------------------------------------------------------ HDLC


def _address(cur, what):
    # an HDLC address field: bytes until one with the low (extension) bit set
    off = cur.at()
    b = []
    while True:
        b.append(cur.u8(what))
        if b[-1] & 1:
            return b
        if len(b) == 4:
            raise Stop(off, "%s: no end of address within 4 bytes" % what)


def _server_address(b):
    v = [x >> 1 for x in b]
    if len(b) == 1:
        upper, lower = v[0], None
    elif len(b) == 2:
        upper, lower = v
    elif len(b) == 4:
        upper, lower = (v[0] << 7) | v[1], (v[2] << 7) | v[3]
    else:
        return "%d bytes (not a valid server address size: 1, 2 or 4)" % len(b), "?"
    t = "server, upper (logical) %d%s" % (upper, " all-station" if upper in (0x7F, 0x3FFF) else "")
    short = "%d" % upper
    if lower is not None:
        t += ", lower (physical) %d" % lower
        short += "/%d" % lower
    return t + ", %d byte%s" % (len(b), "" if len(b) == 1 else "s"), short


def _client_address(b):
    if len(b) != 1:
        return "%d bytes (a client address is 1 byte)" % len(b), "?"
    v = b[0] >> 1
    return "client SAP %d%s, 1 byte" % (v, " (%s)" % CLIENT_SAPS[v] if v in CLIENT_SAPS else ""), str(v)


def control_text(c):
    pf = (c >> 4) & 1
    if not c & 1:
        return "I", "I-frame N(S)=%d N(R)=%d P/F=%d" % ((c >> 1) & 7, (c >> 5) & 7, pf), \
            "I N(S)=%d N(R)=%d%s" % ((c >> 1) & 7, (c >> 5) & 7, " P/F" if pf else "")
    if c & 3 == 1:
        name = S_FRAMES[(c >> 2) & 3]
        return name, "%s N(R)=%d P/F=%d" % (name, (c >> 5) & 7, pf), "%s N(R)=%d%s" % (name, (c >> 5) & 7,
                                                                                    " P/F" if pf else "")
    name = U_FRAMES.get(c & ~0x10 & 0xFF, "unknown U-frame 0x%02X" % (c & ~0x10 & 0xFF))
    return name, "%s P/F=%d" % (name, pf), name + (" P/F" if pf else "")


def _hdlc_parameters(cur, n):
    off = cur.at()
    fmt = cur.take(2, "parameter format")
    if fmt != b"\x81\x80":
        raise Stop(off, "HDLC parameters: format 81 80 expected, found %s" % hexs(fmt))
    ln = cur.u8("parameter group length")
    cur.need(ln, "parameter group of %d bytes" % ln)
    g = Cur(cur.buf, cur.p, cur.p + ln, cur.base, cur.label)
    cur.p += ln
    out = []
    while g.left():
        off = g.at()
        pid = g.u8("parameter id")
        pl = g.u8("parameter length")
        v = g.uint(pl, "parameter value")
        name = HDLC_PARAMS.get(pid, "parameter %d" % pid)
        n.add(name, str(v), off, v)
        out.append("%s %d" % (name.replace("max_info_field_length_", "max info ").replace("window_size_", "window "), v))
    return ", ".join(out)


def _hdlc_frame(cur, root, sess, d):
    start = cur.p
    n = root.add("HDLC frame", None, cur.at())
    n.summary = "HDLC frame (incomplete)"
    if cur.u8("opening flag") != 0x7E:
        raise Stop(cur.at(start), "an HDLC frame starts with the flag 7E")
    off = cur.at()
    fmt = cur.uint(2, "frame format")
    ftype, seg, length = fmt >> 12, (fmt >> 11) & 1, fmt & 0x7FF
    n.add("format", "0x%04X: %s, segmentation %d, length %d" % (
        fmt, "type 3" if ftype == 0xA else "type nibble 0x%X (not type 3)" % ftype, seg, length), off, fmt)
    if ftype != 0xA:
        raise Stop(off, "frame format type %d: only type 3 (0xA) is an HDLC frame of IEC 62056-46" % ftype)
    close = start + 1 + length
    truncated = close >= cur.end
    fc = Cur(cur.buf, cur.p, min(close, cur.end), cur.base, cur.label)
    if length < 7:
        raise Stop(off, "frame length %d: at least 7 (format, addresses, control, FCS)" % length)
    off_d = fc.at()
    dst = _address(fc, "destination address")
    off_s = fc.at()
    src = _address(fc, "source address")
    off_c = fc.at()
    ctrl = fc.u8("control")
    kind, ctext, cshort = control_text(ctrl)
    body = close - 2 - fc.p  # HCS + information, or nothing
    if d is None:
        llc = None
        if body > 5 and fc.p + 5 <= fc.end:
            llc = bytes(cur.buf[fc.p + 2:fc.p + 4])
        if len(dst) > 1 and len(src) == 1 or kind in ("SNRM", "DISC") or llc == b"\xe6\xe6":
            d = "client"
        elif len(src) > 1 and len(dst) == 1 or kind in ("UA", "DM", "FRMR") or llc == b"\xe6\xe7":
            d = "server"
    if d == "server":
        (st, ss), (dt, ds) = _server_address(src), _client_address(dst)
    else:
        (dt, ds), (st, ss) = _server_address(dst), _client_address(src)
    n.add("destination address", "%s (%s)" % (hexs(dst), dt), off_d)
    n.add("source address", "%s (%s)" % (hexs(src), st), off_s)
    n.add("control", "0x%02X: %s" % (ctrl, ctext), off_c, ctrl)
    arrow = "%s -> %s" % (ss, ds)
    n.summary = "%s %s" % (cshort, arrow)
    n.text = "%s%s, %d bytes" % (ctext, ", segment" if seg else "", length + 2)
    info = None
    if body > 0:
        off = fc.at()
        if body < 2:
            raise Stop(off, "%d byte between the control field and the FCS" % body)
        got = fc.uint(2, "HCS")
        hcs = got >> 8 | (got & 0xFF) << 8
        want = _fcs(cur.buf, start + 1, fc.p - 2)
        n.add("HCS", "0x%04X %s" % (hcs, "ok" if hcs == want else "WRONG (computed 0x%04X)" % want), off, hcs == want)
        if hcs != want:
            sess.problems.append((off, "HCS 0x%04X wrong, 0x%04X computed over the header" % (hcs, want)))
        info = (fc.p, close - 2)
    if truncated:
        if info:
            fc.end = min(fc.end, close - 2)
            info = (fc.p, fc.end)
        raise_later = Stop(cur.at(cur.end), "frame truncated: its length field says %d bytes, %d are there" % (
            length + 2, cur.end - start))
    else:
        raise_later = None
        off = cur.at(close - 2)
        got = int.from_bytes(cur.buf[close - 2:close], "little")
        want = _fcs(cur.buf, start + 1, close - 2)
        n.add("FCS", "0x%04X %s" % (got, "ok" if got == want else "WRONG (computed 0x%04X)" % want), off, got == want)
        if got != want:
            sess.problems.append((off, "FCS 0x%04X wrong, 0x%04X computed over the frame" % (got, want)))
        if cur.buf[close] != 0x7E:
            sess.problems.append((cur.at(close), "no closing flag after the frame (0x%02X)" % cur.buf[close]))
        cur.p = close + 1
    if info and info[1] > info[0]:
        ic = Cur(cur.buf, info[0], info[1], cur.base, cur.label)
        inode = n.add("information", "%d bytes" % (info[1] - info[0]), ic.at())
        try:
            s = _hdlc_info(ic, inode, sess, d, kind, seg, raise_later is not None)
        except Stop as x:
            if raise_later is None:
                raise
            # the frame's own truncation is the reason; what the part held is shown
            inode.add("stopped", "%s: %s" % (where_text(x.where), x.reason))
            s = None
        if s:
            n.summary += ": " + s
    if raise_later is not None:
        raise raise_later
    return n


def _hdlc_info(ic, inode, sess, d, kind, seg, truncated):
    if kind in ("SNRM", "UA"):
        return _hdlc_parameters(ic, inode)
    if kind == "FRMR":
        b = ic.take(ic.left(), "FRMR information")
        t = "rejected control 0x%02X" % b[0] if b else ""
        if len(b) >= 3:
            reasons = [name for bit, name in ((1, "W: control field undefined"), (2, "X: information not permitted"),
                                              (4, "Y: information field too long"), (8, "Z: invalid N(R)"))
                       if b[2] & bit]
            t += ", V(S)=%d V(R)=%d, %s" % ((b[1] >> 1) & 7, (b[1] >> 5) & 7, "; ".join(reasons) or "no reason bit")
        inode.text = t
        return "FRMR " + t
    if kind not in ("I", "UI"):
        inode.text = hexs(ic.take(ic.left(), "information"))
        return None
    key = (d, "hdlc")
    first = key not in sess.pieces
    if first:
        off = ic.at()
        llc = ic.take(3, "LLC header") if ic.left() >= 3 else b""
        if llc in (b"\xe6\xe6\x00", b"\xe6\xe7\x00"):
            inode.add("LLC", "%s (%s)" % (hexs(llc), "request" if llc[1] == 0xE6 else "response"), off)
        else:
            ic.p = ic.p - len(llc)
            inode.add("LLC", "none (the information does not start with E6 E6 00 / E6 E7 00)", off)
    if seg or not first:
        part = bytes(ic.buf[ic.p:ic.end])
        inode.add("segment", "%d bytes%s" % (len(part), ", more follow" if seg else ", the last"), ic.at())
        ic.p = ic.end
        if truncated:
            return "segment (truncated)"

        def whole(wc, parent):
            return apdus(wc, parent, sess, d)

        s = _collect(sess, d, "hdlc", part, first, not seg, inode, whole, "APDU", "segment")
        return s or "segment %d bytes" % len(part)
    return apdus(ic, inode, sess, d)


# ---------------------------------------------------------------- wrapper


def _wrapper(cur, root, sess, d):
    start = cur.p
    n = root.add("wrapper", None, cur.at())
    n.summary = "wrapper (incomplete)"
    off = cur.at()
    version = cur.uint(2, "wrapper version")
    n.add("version", str(version), off, version)
    off = cur.at()
    src = cur.uint(2, "source wPort")
    n.add("source wPort", str(src), off, src)
    off = cur.at()
    dst = cur.uint(2, "destination wPort")
    n.add("destination wPort", str(dst), off, dst)
    off = cur.at()
    ln = cur.uint(2, "length")
    n.add("length", str(ln), off, ln)
    n.text = "wPort %d -> %d, %d bytes" % (src, dst, ln)
    n.summary = "wPort %d->%d" % (src, dst)
    if version != 1:
        raise Stop(cur.at(start), "wrapper version %d: only version 1 exists" % version)
    end = cur.p + ln
    ac = Cur(cur.buf, cur.p, min(end, cur.end), cur.base, cur.label)
    cur.p = min(end, cur.end)
    if ln:
        try:
            n.summary += ": " + apdus(ac, n, sess, d)
        except Stop:
            if end > cur.end:  # the truncation says more than the APDU's error
                raise Stop(cur.at(cur.end), "wrapper truncated: its length field says %d bytes of APDU, %d are "
                                            "there" % (ln, cur.end - start - 8))
            raise
    if end > cur.end:
        raise Stop(cur.at(cur.end), "wrapper truncated: %d bytes of APDU announced, %d there" % (ln, cur.end - start - 8))
    return n


# ----------------------------------------------------------------- streams


def split(buf, kind):
    # Where the frames of a byte stream are: [(what, start, end)], what
    # "frame" or "garbage" (bytes that cannot start a frame); the last frame
    # may be incomplete (it runs to the end of buf).
    out = []
    n = len(buf)
    p = 0
    if kind == "apdu":
        return [("frame", 0, n)] if n else []
    while p < n:
        if kind == "wrapper":
            if n - p < 8:
                out.append(("frame", p, n))
                break
            e = p + 8 + int.from_bytes(buf[p + 6:p + 8], "big")
            out.append(("frame", p, min(e, n)))
            p = e
            continue
        if buf[p] != 0x7E:
            q = buf.find(b"\x7e", p)
            q = n if q < 0 else q
            out.append(("garbage", p, q))
            p = q
            continue
        if p + 1 < n and buf[p + 1] == 0x7E:
            p += 1
            continue
        if p + 1 >= n:
            break
        if p + 3 > n or buf[p + 1] >> 4 != 0xA:
            q = buf.find(b"\x7e", p + 1)
            if p + 3 > n:
                out.append(("frame", p, n))
                break
            q = n if q < 0 else q
            out.append(("garbage", p, q))
            p = q
            continue
        close = p + 1 + (((buf[p + 1] & 7) << 8) | buf[p + 2])
        if close >= n:
            out.append(("frame", p, n))
            break
        out.append(("frame", p, close + 1))
        p = close
    return out


def detect(buf):
    if buf[:1] == b"\x7e":
        return "hdlc"
    if len(buf) >= 8 and buf[:2] == b"\x00\x01":
        return "wrapper"
    return "apdu"


def _unit(buf, what, s, e, kind, root, sess, rep, d=None, base=0, label=None):
    # Decode one frame (or the bare APDUs) buf[s:e]; never raises.
    cur = Cur(buf, s, e, base, label)
    before = len(root.children)
    try:
        if what == "garbage":
            g = root.add("garbage", "%d bytes %s" % (e - s, hexs(buf[s:min(e, s + 32)]) + ("..." if e - s > 32 else "")),
                         cur.at())
            g.summary = "%d bytes that are not a frame" % (e - s)
            rep.error(cur.at(), "%d bytes that do not start an HDLC frame (no flag 7E, or a format other than type 3)"
                      % (e - s), g)
        elif kind == "hdlc":
            _hdlc_frame(cur, root, sess, d)
        elif kind == "wrapper":
            _wrapper(cur, root, sess, d)
        else:
            apdus(cur, root, sess, d)
    except Stop as x:
        rep.error(x.where, x.reason, root.children[-1] if len(root.children) > before else root)
    except RecursionError:
        rep.error(cur.at(), "nesting too deep to decode", root.children[-1] if len(root.children) > before else None)
    except Exception as x:  # a decoder bug: said, never a traceback
        rep.error(cur.at(), "decoder error: %s: %s" % (type(x).__name__, x),
                  root.children[-1] if len(root.children) > before else None)
    for where, reason in sess.problems:
        rep.errors.append((where, reason))
        if len(root.children) > before:
            root.children[-1].add("problem", "%s: %s" % (where_text(where), reason))
    del sess.problems[:]


def decode_bytes(data, keys=None, kind=None, client_title=None, server_title=None):
    """Decode the frames (or bare APDUs) in ``data`` into a Report; never raises.

    kind: "hdlc", "wrapper", "apdu" or None (told by the first bytes). keys:
    {"ek": 16 bytes, "ak": 16 bytes} (keyfile.parse gives it) to decipher
    suite 0 APDUs; client_title / server_title: 8-byte system titles for a
    trace without the AARQ / AARE that give them.
    """
    rep = Report()
    root = Node("trace")
    rep.roots = root.children
    try:
        buf = bytes(data)
        if not buf:
            rep.error(0, "no bytes to decode")
            return rep
        kind = kind or detect(buf)
        sess = Session(keys, client_title, server_title)
        for what, s, e in split(buf, kind):
            _unit(buf, what, s, e, kind, root, sess, rep)
        if not rep.roots and not rep.errors:
            rep.error(0, "no frame in the input (flags only)")
    except Exception as x:
        rep.error(None, "decoder error: %s: %s" % (type(x).__name__, x))
    return rep


# one line of `dlms-micro serve --log-level debug`: "<kind> <peer> rx|tx <hex>"
_LOG_LINE = re.compile(r"(?:^|\s)(\S+) (\S+) (rx|tx) ([0-9a-fA-F]+)(?=\s|$)")


def is_log(text):
    return any(_LOG_LINE.search(line) for line in text.splitlines()[:2000])


def decode_log(text, keys=None, client_title=None, server_title=None):
    """Decode a `dlms-micro serve --log-level debug` log into a Report.

    Each connection's rx and tx bytes are put back together, and the frames
    decoded in the order they were completed, one session per connection
    (system titles, requests and blocks carry over); each frame sits under a
    "line N" node naming the connection and direction. Never raises.
    """
    rep = Report()
    root = Node("trace")
    rep.roots = root.children
    try:
        streams = {}  # (kind, peer, dir) -> [bytearray, [(end, line no)]]
        for no, line in enumerate(text.splitlines(), 1):
            m = _LOG_LINE.search(line)
            if not m or len(m.group(4)) % 2:
                continue
            kind, peer, direction, hx = m.groups()
            st = streams.setdefault((kind, peer, direction), [bytearray(), []])
            st[0] += bytes.fromhex(hx)
            st[1].append((len(st[0]), no))
        if not streams:
            rep.error(None, "no '<kind> <peer> rx|tx <hex>' lines in the log")
            return rep
        units = []
        for (kind, peer, direction), (buf, marks) in streams.items():
            link = "wrapper" if kind == "wrapper" else "hdlc" if kind in ("hdlc", "serial") else detect(bytes(buf))
            for what, s, e in split(bytes(buf), link):
                no = next((ln for end, ln in marks if end >= e), marks[-1][1])
                units.append((no, (kind, peer), direction, link, what, s, e, bytes(buf)))
        units.sort(key=lambda u: u[0])
        sessions = {}
        for no, conn, direction, link, what, s, e, buf in units:
            sess = sessions.get(conn)
            if sess is None:
                sess = sessions[conn] = Session(keys, client_title, server_title)
            d = "client" if direction == "rx" else "server"
            head = root.add("line %d" % no, "%s %s %s (%s)" % (conn[0], conn[1], direction,
                                                                "client -> meter" if d == "client" else "meter -> client"))
            label = "the %s stream of %s %s" % (direction, conn[0], conn[1])
            _unit(buf, what, s, e, link, head, sess, rep, d, label=label)
            head.summary = "; ".join(c.summary or c.name for c in head.children)
    except Exception as x:
        rep.error(None, "decoder error: %s: %s" % (type(x).__name__, x))
    return rep


def summary(data, kind=None):
    """One line for the bytes of one read or write (the port's debug log).

    kind: "wrapper", "hdlc" or "serial" (HDLC), None: told by the bytes. A
    read may hold part of an HDLC frame: said as such. Never raises.
    """
    try:
        if kind not in (None, "wrapper", "apdu"):
            kind = "hdlc"
        buf = bytes(data)
        if kind == "hdlc" and buf[:1] != b"\x7e":
            return "part of a frame, %d bytes" % len(buf)
        rep = decode_bytes(buf, kind=kind)
        s = "; ".join(n.summary or n.name for n in rep.roots)
        if rep.errors:
            where, reason = rep.errors[0]
            if kind == "hdlc" and reason.startswith("frame truncated"):
                return s + " [the frame goes on in the next read: %s]" % reason.split(": ", 1)[1]
            s += " [%s: %s]" % (where_text(where), reason) if where is not None else " [%s]" % reason
        return s
    except Exception as x:  # pragma: no cover - summary() must not break logging
        return "no summary: %s" % x


# ----------------------------------------------------------------- output


def render_text(rep):
    """The Report as indented text, then a "stopped ..." line per error."""
    lines = []

    def walk(n, depth):
        if n.text is None or n.text == "":
            t = n.name
        else:
            t = "%s%s%s" % (n.name, "" if n.text.startswith("[") else ": ", n.text)
        if depth == 0 and isinstance(n.offset, int):
            t = "@%d %s" % (n.offset, t)
        lines.append("  " * depth + t)
        for c in n.children:
            walk(c, depth + 1)

    for n in rep.roots:
        walk(n, 0)
    for where, reason in rep.errors:
        lines.append("stopped %s: %s" % (where_text(where), reason) if where is not None else "stopped: %s" % reason)
    return "\n".join(lines)


def to_json(rep):
    """The Report as JSON-ready data: {"ok", "frames": [node...], "errors"}."""
    return {"ok": rep.ok, "frames": [n.json() for n in rep.roots],
            "errors": [{"offset": w if isinstance(w, int) else None, "where": where_text(w) if w is not None else None,
                        "reason": r} for w, r in rep.errors]}


# -------------------------------------------------------------------- CLI

USAGE_EPILOG = (
    "Input: hex digits (blanks, colons and line breaks between them are ignored) as arguments, from --file, or "
    "on stdin; or a log of `dlms-micro serve --log-level debug` (its rx/tx lines are put back together per "
    "connection). The first bytes tell HDLC (7E), the TCP wrapper (00 01) or a bare APDU; --as overrides. "
    "Key file (--keys): the JSON of `dlms-micro serve --keys` ({\"ek\": \"<32 hex digits>\", \"ak\": ..., "
    "\"kek\": ... (may be left out here), \"system_title\": the meter's, optional}). Exit code 0 when everything "
    "decoded, 1 when the input is truncated, garbled, or does not decipher (the output says where and why), 2 "
    "for a bad command line or key file.")


def add_parser(subparsers):
    d = subparsers.add_parser(
        "decode", help="decode a DLMS trace (hex or a debug log) into frames, APDUs and values",
        description="Decode HDLC frames, TCP wrapper messages and the xDLMS/ACSE APDUs in them, with their "
        "A-XDR values as an indented tree (OBIS codes, class, attribute and unit names); with --keys, "
        "decipher suite 0 (AES-GCM) glo-, ded- and general-glo-ciphered APDUs and check their tags.",
        epilog=USAGE_EPILOG)
    d.add_argument("hex", nargs="*", help="hex digits; none: read --file or stdin")
    d.add_argument("-f", "--file", metavar="FILE", help="read the hex or the debug log from FILE ('-': stdin)")
    d.add_argument("--keys", metavar="FILE", help="suite 0 keys (JSON) to decipher ciphered APDUs")
    d.add_argument("--client-title", metavar="HEX", help="the client's system title (16 hex digits) when the "
                   "trace has no AARQ that gives it")
    d.add_argument("--server-title", metavar="HEX", help="the meter's system title when the trace has no AARE "
                   "that gives it (default: the key file's system_title)")
    d.add_argument("--as", dest="kind", choices=("hdlc", "wrapper", "apdu"), help="what the bytes are "
                   "(default: from the first bytes)")
    d.add_argument("--json", action="store_true", help="print the tree as JSON")
    return d


class UsageError(Exception):
    pass


class BadInput(UsageError):
    # the input itself is not hex: exit code 1, as for any bad input
    pass


def parse_hex(text):
    # hex digits with blanks, colons, commas, dashes or 0x prefixes between
    # bytes -> bytes; UsageError names the first character that is not hex.
    t = re.sub(r"0[xX](?=[0-9a-fA-F])", "", text)
    digits = []
    for i, ch in enumerate(t):
        if ch in "0123456789abcdefABCDEF":
            digits.append(ch)
        elif ch not in " \t\r\n:,-;":
            raise BadInput("not hex: %r at character %d" % (ch, i + 1))
    if len(digits) % 2:
        raise BadInput("an odd number of hex digits (%d)" % len(digits))
    return bytes.fromhex("".join(digits))


def _read(path):
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e.strerror or e)) from None


def load_keys(path):
    # keyfile's format; kek may be left out (deciphering does not use it)
    from dlms_micro_cpython import keyfile

    text = _read(path)
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and "kek" not in doc:
            doc["kek"] = "00" * 16  # the master key plays no part in deciphering
            text = json.dumps(doc)
    except ValueError:
        pass
    try:
        return keyfile.parse(text)
    except keyfile.KeyFileError as e:
        raise UsageError("%s: %s" % (path, e)) from None


def _title(text, what):
    if text is None:
        return None
    try:
        b = parse_hex(text)
    except UsageError as e:
        raise UsageError("%s: %s" % (what, e)) from None
    if len(b) != 8:
        raise UsageError("%s: 8 bytes (16 hex digits) needed, %d given" % (what, len(b)))
    return b


def run(args, out=None, err=None):
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        keys = load_keys(args.keys) if args.keys else None
        ct = _title(args.client_title, "--client-title")
        st = _title(args.server_title, "--server-title")
        if args.hex:
            text = " ".join(args.hex)
        elif args.file and args.file != "-":
            text = _read(args.file)
        else:
            stdin = getattr(sys.stdin, "buffer", None)
            text = stdin.read().decode("utf-8", "replace") if stdin is not None else sys.stdin.read()
        if is_log(text):
            rep = decode_log(text, keys, ct, st)
        else:
            rep = decode_bytes(parse_hex(text), keys, args.kind, ct, st)
    except UsageError as e:
        print("dlms-micro decode: %s" % e, file=err)
        return 1 if isinstance(e, BadInput) else 2
    except Exception as e:  # never a traceback
        print("dlms-micro decode: internal error: %s: %s" % (type(e).__name__, e), file=err)
        return 1
    try:
        if args.json:
            print(json.dumps(to_json(rep), indent=2, ensure_ascii=False), file=out)
        else:
            print(render_text(rep), file=out)
        out.flush()
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        try:
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 0 if rep.ok else 1
    except Exception as e:
        print("dlms-micro decode: internal error: %s: %s" % (type(e).__name__, e), file=err)
        return 1
    return 0 if rep.ok else 1


def main(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog="dlms-micro")
    add_parser(p.add_subparsers(dest="command", required=True))
    return run(p.parse_args(["decode"] + list(argv if argv is not None else sys.argv[1:])))
