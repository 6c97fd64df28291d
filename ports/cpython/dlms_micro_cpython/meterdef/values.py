# Names of the definition format: A-XDR types, units, conformance bits, OBIS
# strings, and typed values (docs/meter-definition.md, "Values").

import datetime
import re

from dlms_micro import axdr
from dlms_micro.app import association as asn

TYPES = {
    "null-data": axdr.NULL_DATA,
    "array": axdr.ARRAY,
    "structure": axdr.STRUCTURE,
    "boolean": axdr.BOOLEAN,
    "bit-string": axdr.BIT_STRING,
    "double-long": axdr.DOUBLE_LONG,
    "double-long-unsigned": axdr.DOUBLE_LONG_UNSIGNED,
    "octet-string": axdr.OCTET_STRING,
    "visible-string": axdr.VISIBLE_STRING,
    "utf8-string": 12,
    "bcd": axdr.BCD,
    "integer": axdr.INTEGER,
    "long": axdr.LONG,
    "unsigned": axdr.UNSIGNED,
    "long-unsigned": axdr.LONG_UNSIGNED,
    "long64": 20,
    "long64-unsigned": 21,
    "enum": axdr.ENUM,
    "float32": 23,
    "float64": 24,
    "date-time": axdr.DATE_TIME,
    "date": axdr.DATE,
    "time": axdr.TIME,
}
TYPE_NAMES = {v: k for k, v in TYPES.items()}

# integer ranges per type
RANGES = {
    axdr.INTEGER: (-128, 127),
    axdr.LONG: (-32768, 32767),
    axdr.UNSIGNED: (0, 255),
    axdr.LONG_UNSIGNED: (0, 65535),
    axdr.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    axdr.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1),
    20: (-(2**63), 2**63 - 1),
    21: (0, 2**64 - 1),
    axdr.ENUM: (0, 255),
    axdr.BCD: (-128, 127),
}
STRINGS = (axdr.OCTET_STRING, axdr.VISIBLE_STRING, 12, axdr.BIT_STRING)

# Blue Book unit enumeration (IEC 62056-6-2, 4.3.2 scaler_unit)
UNITS = {
    "a": 1, "mo": 2, "wk": 3, "d": 4, "h": 5, "min": 6, "s": 7, "°": 8, "°C": 9, "currency": 10,
    "m": 11, "m/s": 12, "m3": 13, "m3(corr)": 14, "m3/h": 15, "m3/h(corr)": 16, "m3/d": 17,
    "m3/d(corr)": 18, "l": 19, "kg": 20, "N": 21, "Nm": 22, "Pa": 23, "bar": 24, "J": 25,
    "J/h": 26, "W": 27, "VA": 28, "var": 29, "Wh": 30, "VAh": 31, "varh": 32, "A": 33, "C": 34,
    "V": 35, "V/m": 36, "F": 37, "Ω": 38, "Ωm2/m": 39, "Wb": 40, "T": 41, "A/m": 42, "H": 43,
    "Hz": 44, "1/(Wh)": 45, "1/(varh)": 46, "1/(VAh)": 47, "V2h": 48, "A2h": 49, "kg/s": 50,
    "S": 51, "K": 52, "1/(V2h)": 53, "1/(A2h)": 54, "1/m3": 55, "%": 56, "Ah": 57,
    "Wh/m3": 60, "J/m3": 61, "Mol%": 62, "g/m3": 63, "Pa s": 64, "J/kg": 65, "g/cm2": 66,
    "atm": 67, "dBm": 70, "dBuV": 71, "dB": 72, "other": 254, "count": 255,
}
UNIT_ALIASES = {"degC": 9, "ohm": 38, "Ohm": 38, "kvarh": None, "kWh": None}
UNIT_NAMES = {v: k for k, v in UNITS.items()}

CONFORMANCE = {
    "general-protection": asn.CONF_GENERAL_PROTECTION,
    "general-block-transfer": asn.CONF_GENERAL_BLOCK_TRANSFER,
    "read": asn.CONF_READ,
    "write": asn.CONF_WRITE,
    "unconfirmed-write": asn.CONF_UNCONFIRMED_WRITE,
    "delta-value-encoding": asn.CONF_DELTA_VALUE_ENCODING,
    "attribute0-supported-with-set": asn.CONF_ATTRIBUTE0_SET,
    "priority-mgmt-supported": asn.CONF_PRIORITY_MGMT,
    "attribute0-supported-with-get": asn.CONF_ATTRIBUTE0_GET,
    "block-transfer-with-get-or-read": asn.CONF_BLOCK_TRANSFER_WITH_GET,
    "block-transfer-with-set-or-write": asn.CONF_BLOCK_TRANSFER_WITH_SET,
    "block-transfer-with-action": asn.CONF_BLOCK_TRANSFER_WITH_ACTION,
    "multiple-references": asn.CONF_MULTIPLE_REFERENCES,
    "information-report": asn.CONF_INFORMATION_REPORT,
    "data-notification": asn.CONF_DATA_NOTIFICATION,
    "access": asn.CONF_ACCESS,
    "parameterized-access": asn.CONF_PARAMETERIZED_ACCESS,
    "get": asn.CONF_GET,
    "set": asn.CONF_SET,
    "selective-access": asn.CONF_SELECTIVE_ACCESS,
    "event-notification": asn.CONF_EVENT_NOTIFICATION,
    "action": asn.CONF_ACTION,
}
READING = (
    asn.CONF_GET | asn.CONF_BLOCK_TRANSFER_WITH_GET | asn.CONF_SELECTIVE_ACCESS | asn.CONF_MULTIPLE_REFERENCES
    | asn.CONF_GENERAL_BLOCK_TRANSFER
)
ALL_SERVICES = 0xFFFFFF  # the server grants what it implements

_OBIS_RE = re.compile(r"^\s*(\d+)[.-](\d+)[.:](\d+)\.(\d+)\.(\d+)(?:[.*](\d+))?\s*$")


class Bad(ValueError):
    # A value that does not fit; the message says why (the caller adds where).
    pass


def obis(text):
    # "1.0.1.8.0.255", "1-0:1.8.0.255", "1-0:1.8.0*255", "1-0:1.8.0" -> 6 bytes
    if not isinstance(text, str):
        raise Bad("an OBIS code is a string like \"1.0.1.8.0.255\", not %r" % (text,))
    m = _OBIS_RE.match(text)
    if not m:
        raise Bad("%r is not an OBIS code (write it as \"1.0.1.8.0.255\")" % text)
    parts = [int(g) if g is not None else 255 for g in m.groups()]
    for p in parts:
        if p > 255:
            raise Bad("%r: each OBIS group is 0..255" % text)
    return bytes(parts)


def obis_text(ln):
    return "%d.%d.%d.%d.%d.%d" % tuple(ln)


def type_tag(name):
    if isinstance(name, int) and name in TYPE_NAMES:
        return name
    if not isinstance(name, str) or name not in TYPES:  # a list or object too (found by fuzzing)
        raise Bad("unknown type %r (one of: %s)" % (name, ", ".join(sorted(TYPES))))
    return TYPES[name]


def unit(u):
    if u is None:
        return 255
    if isinstance(u, int) and not isinstance(u, bool):
        if 0 <= u <= 255:
            return u
        raise Bad("unit %d is not 0..255" % u)
    if isinstance(u, str):
        if u in UNITS:
            return UNITS[u]
        if UNIT_ALIASES.get(u):
            return UNIT_ALIASES[u]
        if u in ("kWh", "kvarh", "kW", "kvar", "kVA", "kVAh"):
            raise Bad("unit %r: COSEM has no kilo units; write %r with scaler 3" % (u, u[1:]))
    raise Bad("unknown unit %r (e.g. Wh, varh, W, V, A, Hz, m3, count, or the enum number)" % (u,))


def octets(v, what="value"):
    # A string's characters (UTF-8) or {"hex": "..."} -> bytes
    if isinstance(v, str):
        return v.encode("utf-8")
    if isinstance(v, dict) and set(v) == {"hex"} and isinstance(v["hex"], str):
        try:
            return bytes.fromhex(v["hex"])
        except ValueError:
            raise Bad("%s: %r is not hex digits" % (what, v["hex"])) from None
    raise Bad("%s: a string, or {\"hex\": \"...\"}, not %r" % (what, v))


def date_time(v):
    # 12 raw date-time bytes from an ISO 8601 string, 24 hex digits, or None
    # (not specified)
    if v is None:
        return b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x80\x00\xff"
    if isinstance(v, dict):
        b = octets(v)
        if len(b) != 12:
            raise Bad("a date-time is 12 bytes, %d given" % len(b))
        return b
    if not isinstance(v, str):
        raise Bad("a date-time is an ISO 8601 string like \"2026-01-31T12:00:00Z\", not %r" % (v,))
    if re.fullmatch(r"[0-9A-Fa-f]{24}", v):
        return bytes.fromhex(v)
    try:
        t = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise Bad("%r is not an ISO 8601 date-time (e.g. \"2026-01-31T12:00:00Z\")" % v) from None
    if t.tzinfo is None:
        dev = 0x8000
    else:
        off = int(t.utcoffset().total_seconds() // 60)
        # the Blue Book's deviation: minutes local time is behind UTC
        dev = (-off) & 0xFFFF
    b = bytearray(12)
    b[0:2] = t.year.to_bytes(2, "big")
    b[2] = t.month
    b[3] = t.day
    b[4] = t.isoweekday()
    b[5] = t.hour
    b[6] = t.minute
    b[7] = t.second
    b[8] = t.microsecond // 10000
    b[9:11] = dev.to_bytes(2, "big")
    b[11] = 0
    return bytes(b)


def value(tag, v, lo=None, hi=None):
    # The state value (common.py's value model) of a JSON value for type tag.
    if v is None:
        return None
    if tag in RANGES:
        if isinstance(v, bool) or not isinstance(v, int):
            raise Bad("a %s value is an integer, not %r" % (TYPE_NAMES[tag], v))
        a, b = RANGES[tag]
        if not a <= v <= b:
            raise Bad("%d is out of range for %s (%d..%d)" % (v, TYPE_NAMES[tag], a, b))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise Bad("%d is outside min/max %s..%s" % (v, lo, hi))
        return v
    if tag == axdr.BOOLEAN:
        if not isinstance(v, bool):
            raise Bad("a boolean value is true or false, not %r" % (v,))
        return v
    if tag in (23, 24):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise Bad("a %s value is a number, not %r" % (TYPE_NAMES[tag], v))
        return float(v)
    if tag in (axdr.OCTET_STRING, axdr.VISIBLE_STRING, 12):
        b = octets(v)
        if tag == axdr.VISIBLE_STRING and any(c < 0x20 or c > 0x7E for c in b):
            raise Bad("a visible-string holds printable ASCII only")
        if hi is not None and len(b) > hi:
            raise Bad("%d bytes, more than max_length %d" % (len(b), hi))
        if lo is not None and len(b) < lo:
            raise Bad("%d bytes, less than min_length %d" % (len(b), lo))
        return b
    if tag == axdr.BIT_STRING:
        if isinstance(v, str) and re.fullmatch(r"[01]*", v):
            n = len(v)
            b = bytearray((n + 7) // 8)
            for i, c in enumerate(v):
                if c == "1":
                    b[i // 8] |= 0x80 >> (i % 8)
            return bytes(b)
        return octets(v)
    if tag == axdr.DATE_TIME:
        return date_time(v)
    if tag == axdr.DATE:
        b = octets(v) if isinstance(v, dict) else None
        if b is None or len(b) != 5:
            raise Bad("a date is {\"hex\": \"...\"} of 5 bytes")
        return b
    if tag == axdr.TIME:
        b = octets(v) if isinstance(v, dict) else None
        if b is None or len(b) != 4:
            raise Bad("a time is {\"hex\": \"...\"} of 4 bytes")
        return b
    if tag == axdr.NULL_DATA:
        raise Bad("null-data holds no value")
    raise Bad("values of type %s are not supported here; give the encoded element as {\"hex\": ...} with no type"
              % TYPE_NAMES.get(tag, tag))
