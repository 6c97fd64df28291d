# OBIS codes (IEC 62056-6-1): six value groups A..F, each 0..255, carried
# in COSEM as the 6-byte logical name (an octet-string of size 6).
#
# Text forms accepted by parse():
#   "1-0:1.8.0*255"   A-B:C.D.E*F (also "&" instead of "*")
#   "1-0:1.8.0"       F defaults to 255
#   "1-0:1.8.0.255"   A-B:C.D.E.F
#   "1.0.1.8.0.255"   six dotted groups
# Surrounding blanks are ignored. Malformed text or a group above 255 raises
# DecodeError; to_str() writes the canonical "A-B:C.D.E*F".

from dlms_micro.errors import DecodeError, EncodeError

# separators between the groups that each accepted form uses
_FORMS = ("-:..*", "-:..&", "-:..", "-:...", ".....")


def parse(text):
    # "1-0:1.8.0*255" -> b"\x01\x00\x01\x08\x00\xff"
    if not isinstance(text, str):
        raise DecodeError("OBIS code must be text, got %r" % (text,))
    s = text.strip()
    groups = []
    seps = ""
    v = -1  # value of the group being read; -1 before its first digit
    for ch in s:
        if "0" <= ch <= "9":
            v = (0 if v < 0 else v) * 10 + ord(ch) - 48
            if v > 255:
                raise DecodeError("OBIS group above 255 in %r" % text)
        elif ch in "-:.*&":
            if v < 0:
                raise DecodeError("empty OBIS group before %r in %r" % (ch, text))
            groups.append(v)
            seps += ch
            v = -1
        else:
            raise DecodeError("unexpected character %r in OBIS code %r" % (ch, text))
    if v < 0:
        raise DecodeError("OBIS code %r is empty or ends in a separator" % text)
    groups.append(v)
    if seps not in _FORMS:
        raise DecodeError("%r is not an OBIS code (A-B:C.D.E*F)" % text)
    if len(groups) == 5:
        groups.append(255)
    return bytes(groups)


def from_groups(a, b, c, d, e, f=255):
    # six ints -> the 6-byte logical name
    for g in (a, b, c, d, e, f):
        if not isinstance(g, int) or not 0 <= g <= 255:
            raise EncodeError("OBIS group %r is not 0..255" % (g,))
    return bytes((a, b, c, d, e, f))


def to_groups(code, off=0):
    # 6 bytes (bytes, bytearray, memoryview) at off -> tuple of six ints
    if isinstance(code, str):
        raise DecodeError("OBIS code bytes expected, got text %r (use parse)" % code)
    if off < 0 or len(code) - off < 6:
        raise DecodeError("OBIS code needs 6 bytes at offset %d, %d left" % (off, len(code) - off))
    return (code[off], code[off + 1], code[off + 2], code[off + 3], code[off + 4], code[off + 5])


def to_str(code, off=0):
    # 6 bytes at off -> "A-B:C.D.E*F"
    return "%d-%d:%d.%d.%d*%d" % to_groups(code, off)


def normalize(text):
    # any accepted text form -> canonical text
    return to_str(parse(text))
