# The meter-definition compiler: a JSON definition (docs/meter-definition.md)
# -> a Compiled object with the constants dlms_micro.meterdef.build reads
# (the same ones `meter compile` writes into a module for a board).
#
#   c = compile_definition(json.load(f), source="my_meter.json")
#   meter = build.build(c, wall_clock, storage)
#
# Every fault is collected with its place and raised together as
# DefinitionError (str(): one line each).

import importlib
import json
import os

from dlms_micro.cosem import base
from dlms_micro.cosem import profile as _profile
from dlms_micro.meter import MECH_HLS_GMAC, MECH_LLS, MECH_NONE
from dlms_micro.app.acse import MECH_HLS_ECDSA, MECH_HLS_SHA256
from dlms_micro.meterdef import build as _build
from dlms_micro.meterdef import state as _state
from dlms_micro_cpython.meterdef import classes as C
from dlms_micro_cpython.meterdef import values as V

FORMAT_NAME = "dlms-micro/1"
# modules that register more classes (tariffs, control, prepayment, pushes...)
CLASS_MODULES = ("dlms_micro_cpython.meterdef.classes_more",)

MECHANISMS = {"none": MECH_NONE, "low": MECH_LLS, "high-gmac": MECH_HLS_GMAC, "high-sha256": MECH_HLS_SHA256,
              "high-ecdsa": MECH_HLS_ECDSA}
POLICIES = {"none": 0, "authenticated": 1, "encrypted": 2, "authenticated-encrypted": 3}
# a security_policy given as a list: Security setup v1's bits by name (the
# names above may be listed too: their pairs of bits)
POLICY_BITS = {"authenticated-request": 0x04, "encrypted-request": 0x08, "digitally-signed-request": 0x10,
               "authenticated-response": 0x20, "encrypted-response": 0x40, "digitally-signed-response": 0x80}
LEVEL_BITS = (0, 0x24, 0x48, 0x6C)
_SIGNED = 0x90
HDLC_DEFAULTS = {"max_info_field_length": 128, "window_size": 1, "inactivity_timeout": 120,
                 "inter_octet_timeout": 25, "communication_speed": 9600}
COMMON_KEYS = ("class", "version", "obis", "description", "read", "write", "actions", "access", "drive", "persist",
               "constant")
TOP_KEYS = ("meter", "name", "serial_number", "manufacturer", "system_title", "logical_device", "physical_address",
            "hdlc", "description", "associations", "objects", "logical_devices", "sources", "simulation")
MODES = {"none": base.NO_ACCESS, "read": base.READ, "write": base.WRITE, "read-write": base.READ_WRITE}

OBIS_CURRENT_ASSOCIATION = bytes((0, 0, 40, 0, 0, 255))
OBIS_LDN = bytes((0, 0, 42, 0, 0, 255))
OBIS_SAP = bytes((0, 0, 41, 0, 0, 255))
OBIS_SECURITY_SETUP = bytes((0, 0, 43, 0, 0, 255))
OBIS_INVOCATION_COUNTER = bytes((0, 0, 43, 1, 0, 255))

_loaded = False


def _load_classes():
    global _loaded
    if not _loaded:
        for m in CLASS_MODULES:
            try:
                importlib.import_module(m)
            except ModuleNotFoundError as e:
                if e.name != m:
                    raise
        _loaded = True


class DefinitionError(ValueError):
    """A meter definition that does not compile: ``errors`` lists every
    fault, each named by its place (``objects[2] (register 1.0.1.8.0.255):
    scaler: ...``); ``source`` the file."""

    def __init__(self, errors, source=""):
        self.errors = list(errors)
        self.source = source
        head = "%s: " % source if source else ""
        super().__init__("\n".join(head + e for e in self.errors))


class Compiled:
    """A compiled meter definition: the constants dlms_micro.meterdef.build
    reads (NAME, SERIAL_NUMBER, SYSTEM_TITLE, LOGICAL_DEVICE,
    PHYSICAL_ADDRESS, HDLC, HANDLERS, ROLES, DEVICES...), plus what host
    tools show (objects, ram, source)."""

    FORMAT = _build.FORMAT

    def __init__(self):
        self.objects = []  # per device: [(entry index, description, class name)]
        self.source = ""
        self.ram = []  # per device: bytes of profile rings etc.


class Device:
    def __init__(self, ld, name, serial, system_title, objects, where):
        self.ld = ld
        self.name = name
        self.serial = serial
        self.system_title = system_title
        self.objects = objects
        self.where = where


class ObjectContext:
    # What a class compiler sees of one object.
    def __init__(self, comp, dev, obj, where, class_id, ln, index_of):
        self.comp = comp
        self.dev = dev
        self.obj = obj
        self.where = where
        self.class_id = class_id
        self.ln = ln
        self._index_of = index_of  # ln -> (class id, obj dict)
        self.handler = None  # a class compiler may name another handler
        self.drive = obj.get("drive")
        self.constant = False
        self.ram = 0
        self.hdlc = comp.hdlc
        self.physical_address = comp.physical_address

    # --- reading keys
    def has(self, key):
        return key in self.obj

    def get(self, key, default=None):
        return self.obj.get(key, default)

    def err(self, key, msg):
        self.comp.error("%s: %s: %s" % (self.where, key, msg) if key else "%s: %s" % (self.where, msg))

    def int(self, key, default, lo, hi):
        v = self.obj.get(key, default)
        if v is None:
            self.err(key, "required (an integer %d..%d)" % (lo, hi))
            return None
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.err(key, "an integer %d..%d, not %r" % (lo, hi, v))
            return default if default is not None else lo
        return v

    def octets(self, key, default=b""):
        v = self.obj.get(key)
        if v is None:
            return default
        try:
            return V.octets(v, key)
        except V.Bad as e:
            self.err(key, str(e))
            return default

    def date_time(self, key, default):
        if key not in self.obj:
            return default
        try:
            return V.date_time(self.obj[key])
        except V.Bad as e:
            self.err(key, str(e))
            return default

    def type_tag(self, default=None):
        t = self.obj.get("type")
        if t is None:
            if default is None:
                self.err("type", "required (an A-XDR type name, e.g. \"double-long-unsigned\")")
                return 6
            return default
        try:
            return V.type_tag(t)
        except V.Bad as e:
            self.err("type", str(e))
            return default or 6

    def typed_value(self, tag, lo=None, hi=None, default=None):
        v = self.obj.get("value", default)
        try:
            return V.value(tag, v, lo, hi)
        except V.Bad as e:
            self.err("value", str(e))
            return default

    def value_of(self, key, tag, default=None):
        v = self.obj.get(key, default)
        try:
            return V.value(tag, v)
        except V.Bad as e:
            self.err(key, str(e))
            return default

    # --- references to other objects of the same logical device
    def ref(self, text, where):
        # "OBIS:attribute[:data_index]" (or {"obis", "attribute", "data_index"})
        # -> (class id, ln, attribute, data index), or None (error reported)
        if isinstance(text, dict):
            o, a, d = text.get("obis"), text.get("attribute", 2), text.get("data_index", 0)
        elif isinstance(text, str) and text.count(":") in (1, 2) and "-" not in text.split(":")[0]:
            parts = text.split(":")
            o = parts[0]
            try:
                a = int(parts[1])
                d = int(parts[2]) if len(parts) > 2 else 0
            except ValueError:
                self.err(where, "%r: the attribute and data index are numbers (\"OBIS:attribute\")" % text)
                return None
        else:
            self.err(where, "%r is not a reference (write \"1.0.1.8.0.255:2\": OBIS code and attribute)" % (text,))
            return None
        try:
            ln = V.obis(o)
        except V.Bad as e:
            self.err(where, str(e))
            return None
        got = self._index_of.get(ln)
        if got is None:
            self.err(where, "%s is not in the table" % V.obis_text(ln))
            return None
        cid = got[0]
        if not isinstance(a, int) or a < 1:
            self.err(where, "attribute %r: an attribute number 1 or more" % (a,))
            return None
        spec = C.CLASSES.get(cid)
        if spec is not None and a > len(spec.attributes):
            self.err(where, "%s (%s) has no attribute %d" % (V.obis_text(ln), spec.name, a))
            return None
        return cid, ln, a, d

    def target(self, ln):
        # (class id, object dict) of an object of the device, or None
        return self._index_of.get(ln)

    def width(self, ref, cid, ln, attr, where):
        # bytes a profile row keeps for the referenced attribute
        if isinstance(ref, dict) and "width" in ref:
            return ref["width"]
        w = C.FIXED_WIDTHS.get((cid, attr))
        if w is not None:
            return w
        obj = self._index_of[ln][1]
        if attr == 2 and cid in (1, 3, 4, 5) or (cid == 4 and attr == 4):
            key = "type" if attr == 2 else "status_type"
            t = obj.get(key, "unsigned" if attr == 4 else ("double-long-unsigned" if cid != 1 else None))
            if t is None and cid == 1 and obj.get("drive") == "invocation-counter":
                t = "double-long-unsigned"
            if t is None:
                self.err(where, "%s has no type: give the column's width ({\"obis\":..., \"attribute\":..., "
                                "\"width\": N})" % V.obis_text(ln))
                return 2
            tag = V.TYPES.get(t) if isinstance(t, str) else None
            if tag is None:
                return 2
            size = 0
            if tag in (9, 10, 12, 4):
                ml = obj.get("max_length")  # checked where the object compiles
                ml = ml if isinstance(ml, int) and not isinstance(ml, bool) else 0
                size = ml or len(V.octets(obj.get("value", ""))) if not isinstance(obj.get("value"), (int, float)) else 16
                size = max(size, 1)
            return _profile.field_width(tag, size)
        self.err(where, "the width of %s attribute %d is not known: give it ({\"obis\": ..., \"attribute\": %d, "
                        "\"width\": N}, N = 1 + the longest A-XDR encoding)" % (V.obis_text(ln), attr, attr))
        return 2

    def role_index(self, name, where):
        i = self.comp.role_names.get(name)
        if i is None:
            self.err(where, "unknown association %r (the definition has: %s)"
                     % (name, ", ".join(self.comp.role_names)))
            return -1
        return i

    def security_setup_ln(self):
        return OBIS_SECURITY_SETUP if OBIS_SECURITY_SETUP in self._index_of else None

    def sap_list(self):
        return tuple((d.ld, d.name) for d in self.comp.devices)


class Compiler:
    def __init__(self, d, source=""):
        self.d = d
        self.source = source
        self.errors = []

    def error(self, msg):
        self.errors.append(msg)

    # ------------------------------------------------------------ top level
    def run(self):
        _load_classes()
        d = self.d
        if not isinstance(d, dict):
            raise DefinitionError(["a meter definition is a JSON object, not %s" % type(d).__name__], self.source)
        if d.get("meter") != FORMAT_NAME:
            self.error("meter: must be %r (the format and its version), not %r" % (FORMAT_NAME, d.get("meter")))
        for k in d:
            if k not in TOP_KEYS:
                self.error("%s: unknown key (known: %s)" % (k, ", ".join(TOP_KEYS)))
        name = self._text(d, "name", "", 16, required=True)
        serial = self._text(d, "serial_number", "", 32, required=True)
        manu = d.get("manufacturer", name[:3])
        if not (isinstance(manu, str) and len(manu) == 3 and manu.isascii()):
            self.error("manufacturer: 3 ASCII letters, not %r" % (manu,))
            manu = "XXX"
        self.manufacturer = manu.encode()
        self.logical_device = self._int(d, "logical_device", 1, 1, 0x3FFF)
        self.physical_address = self._int(d, "physical_address", 17, 0x10, 0x3FFD)
        self.hdlc = dict(HDLC_DEFAULTS)
        h = d.get("hdlc", {})
        if not isinstance(h, dict):
            self.error("hdlc: an object")
            h = {}
        for k, v in h.items():
            if k not in HDLC_DEFAULTS:
                self.error("hdlc.%s: unknown key (known: %s)" % (k, ", ".join(HDLC_DEFAULTS)))
            else:
                self.hdlc[k] = v
        self._roles(d.get("associations"))
        from dlms_micro_cpython.meterdef import sources as _sources

        self.sources_const, self.sources = _sources.compile_sources(
            self, d, os.path.dirname(os.path.abspath(self.source)) if self.source else "")
        self.devices = [Device(self.logical_device, name.encode(), serial.encode(),
                               self._system_title(d.get("system_title"), serial, "system_title"),
                               d.get("objects"), "objects")]
        extra = d.get("logical_devices", [])
        if not isinstance(extra, list):
            self.error("logical_devices: a list")
            extra = []
        for i, ldd in enumerate(extra):
            where = "logical_devices[%d]" % i
            if not isinstance(ldd, dict):
                self.error("%s: an object" % where)
                continue
            ld = ldd.get("logical_device")
            if isinstance(ld, bool) or not isinstance(ld, int) or not 2 <= ld <= 0x3FFF:
                self.error("%s.logical_device: an integer 2..16383 (1 is the top level's)" % where)
                ld = 2 + i
            n = self._text(ldd, "name", where + ".", 16, required=True)
            s = self._text(ldd, "serial_number", where + ".", 32, required=True)
            self.devices.append(Device(ld, n.encode(), s.encode(),
                                       self._system_title(ldd.get("system_title"), s, where + ".system_title"),
                                       ldd.get("objects"), where + ".objects"))
        seen = set()
        for dev in self.devices:
            if dev.ld in seen:
                self.error("logical device %d is defined twice" % dev.ld)
            seen.add(dev.ld)

        c = Compiled()
        c.source = self.source
        c.NAME = self.devices[0].name
        c.SERIAL_NUMBER = self.devices[0].serial
        c.MANUFACTURER = self.manufacturer
        c.SYSTEM_TITLE = self.devices[0].system_title
        c.LOGICAL_DEVICE = self.logical_device
        c.PHYSICAL_ADDRESS = self.physical_address
        h = self.hdlc
        c.HDLC = (h["max_info_field_length"], h["window_size"], h["inactivity_timeout"], h["inter_octet_timeout"],
                  h["communication_speed"])
        c.ROLES = tuple(self.roles)
        self.handlers = []
        devices = []
        for dev in self.devices:
            devices.append(self._device(dev, c))
        c.HANDLERS = tuple(self.handlers)
        c.DEVICES = tuple(devices)
        c.DESCRIPTION = d.get("description", "")
        c.SOURCES = self.sources_const
        if self.errors:
            raise DefinitionError(self.errors, self.source)
        return c

    def _text(self, d, key, prefix, maxlen, required=False):
        v = d.get(key)
        if v is None:
            if required:
                self.error("%s%s: required" % (prefix, key))
            return ""
        if isinstance(v, int) and not isinstance(v, bool) and key == "serial_number":
            v = str(v)
        if not isinstance(v, str) or not v or len(v.encode()) > maxlen:
            self.error("%s%s: a string of 1..%d characters, not %r" % (prefix, key, maxlen, v))
            return ""
        return v

    def _int(self, d, key, default, lo, hi):
        v = d.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            self.error("%s: an integer %d..%d, not %r" % (key, lo, hi, v))
            return default
        return v

    def _system_title(self, st, serial, where):
        if st is not None:
            try:
                b = bytes.fromhex(st) if isinstance(st, str) else None
            except ValueError:
                b = None
            if b is None or len(b) != 8:
                self.error("%s: 16 hex digits (8 bytes), not %r" % (where, st))
                return bytes(8)
            return b
        digits = "".join(ch for ch in serial if ch.isdigit())
        if not digits or int(digits) >= 1 << 40:
            if serial:
                self.error("%s: the serial number %r has no digits to derive the system title from (below 2**40);"
                           " give system_title (16 hex digits)" % (where, serial))
            return self.manufacturer + bytes(5)
        return self.manufacturer + int(digits).to_bytes(5, "big")

    def _roles(self, assocs):
        self.roles = []
        self.role_names = {}
        self.ciphered_roles = []
        if not isinstance(assocs, dict) or not assocs:
            self.error("associations: required, an object of association name -> {client_sap, authentication...}")
            return
        saps = {}
        for name, a in assocs.items():
            where = "associations.%s" % name
            if not isinstance(a, dict):
                self.error("%s: an object" % where)
                continue
            for k in a:
                if k not in ("client_sap", "authentication", "password", "security_policy", "conformance",
                             "description", "security_suite"):
                    self.error("%s.%s: unknown key" % (where, k))
            sap = a.get("client_sap")
            if isinstance(sap, bool) or not isinstance(sap, int) or not 1 <= sap <= 127:
                self.error("%s.client_sap: an integer 1..127, not %r" % (where, sap))
                sap = 0
            elif sap in saps:
                self.error("%s.client_sap: %d is also %s's" % (where, sap, saps[sap]))
            saps[sap] = name
            auth = a.get("authentication", "none")
            mech = MECHANISMS.get(auth)
            if mech is None:
                self.error("%s.authentication: one of %s, not %r" % (where, ", ".join(MECHANISMS), auth))
                mech = MECH_NONE
            pw = a.get("password")
            secret = b""
            if mech == MECH_LLS or mech == MECH_HLS_SHA256:
                # high-sha256: the password is the HLS secret
                if not isinstance(pw, str) or not 1 <= len(pw.encode()) <= 64:
                    self.error("%s.password: required with %s authentication, 1..64 characters" % (where, auth))
                else:
                    secret = pw.encode()
            elif pw is not None:
                self.error("%s.password: only low and high-sha256 authentication take a password" % where)
            suite = a.get("security_suite", 0)
            if suite not in (0, 1, 2) or isinstance(suite, bool):
                self.error("%s.security_suite: 0, 1 or 2, not %r" % (where, suite))
                suite = 0
            if mech == MECH_HLS_ECDSA and not suite:
                self.error("%s: high-ecdsa authentication needs security_suite 1 or 2" % where)
            level, pbits = self._policy(where, a.get("security_policy", "none"), suite)
            ciphered = level != 0
            conf = a.get("conformance")
            if conf is None:
                conf = V.READING if mech == MECH_NONE else (
                    V.READING | V.CONFORMANCE["set"] | V.CONFORMANCE["action"] if mech == MECH_LLS
                    else V.ALL_SERVICES)
            elif isinstance(conf, int) and not isinstance(conf, bool):
                if not 0 <= conf <= 0xFFFFFF:
                    self.error("%s.conformance: a 24-bit value" % where)
                    conf = 0
            elif isinstance(conf, list):
                bits = 0
                for n in conf:
                    b = V.CONFORMANCE.get(n)
                    if b is None:
                        self.error("%s.conformance: unknown service %r (known: %s)"
                                   % (where, n, ", ".join(V.CONFORMANCE)))
                    else:
                        bits |= b
                conf = bits
            else:
                self.error("%s.conformance: a list of service names or a 24-bit value" % where)
                conf = 0
            self.role_names[name] = len(self.roles)
            if ciphered or mech >= MECH_HLS_GMAC:
                self.ciphered_roles.append(len(self.roles))
            # the suite only where it is not 0 (definitions compiled before
            # suites 1 and 2 keep their form)
            role = (name, sap, mech, secret, conf, level)
            if pbits != LEVEL_BITS[level]:
                # v1 bits beyond the level's pairs (signatures, one direction
                # only): the 8-field form (build.roles)
                role += (suite, pbits)
            elif suite:
                role += (suite,)
            self.roles.append(role)

    def _policy(self, where, pol, suite):
        # An association's security_policy -> (level 0..3, Security setup v1
        # bits). A name gives its level's pair of bits; a list names bits.
        # The level (1: some authentication bit, 2: some encryption bit) is
        # what the ports' key store and listings read.
        if isinstance(pol, str):
            if pol in POLICIES:
                return POLICIES[pol], LEVEL_BITS[POLICIES[pol]]
        elif isinstance(pol, list):
            bits = 0
            for i, n in enumerate(pol):
                if isinstance(n, str) and n in POLICY_BITS:
                    bits |= POLICY_BITS[n]
                elif isinstance(n, str) and n in POLICIES:
                    bits |= LEVEL_BITS[POLICIES[n]]
                else:
                    self.error("%s.security_policy[%d]: one of %s (or %s), not %r"
                               % (where, i, ", ".join(POLICY_BITS), ", ".join(POLICIES), n))
            level = (1 if bits & 0x24 else 0) | (2 if bits & 0x48 else 0)
            if bits & _SIGNED and not suite:
                self.error("%s.security_policy: digitally signed requests or responses need security_suite 1 or 2"
                           % where)
            elif bits & _SIGNED and not level:
                self.error("%s.security_policy: digitally signed requests or responses are served in the "
                           "ciphered context: name an authenticated or encrypted bit too" % where)
            return level, bits
        self.error("%s.security_policy: one of %s, or a list of %s; not %r"
                   % (where, ", ".join(POLICIES), ", ".join(POLICY_BITS), pol))
        return 0, 0

    # ------------------------------------------------------------- a device
    def _device(self, dev, c):
        objs = dev.objects
        if not isinstance(objs, list):
            self.error("%s: required, a list of objects" % dev.where)
            objs = []
        nroles = len(self.roles)
        # first pass: class and logical name of each listed object
        listed = []
        index_of = {}
        for i, o in enumerate(objs):
            where = "%s[%d]" % (dev.where, i)
            if not isinstance(o, dict):
                self.error("%s: an object" % where)
                continue
            cls = o.get("class")
            cid = C.BY_NAME.get(cls) if isinstance(cls, str) else cls
            if isinstance(cid, bool) or not isinstance(cid, int) or cid not in C.CLASSES:
                self.error("%s: class %r is not one this stack implements (%s)"
                           % (where, cls, ", ".join(sorted(C.BY_NAME))))
                continue
            spec = C.CLASSES[cid]
            try:
                ln = V.obis(o.get("obis"))
            except V.Bad as e:
                self.error("%s (%s): obis: %s" % (where, spec.name, e))
                continue
            where = "%s (%s %s)" % (where, spec.name, V.obis_text(ln))
            ver = o.get("version", spec.version)
            if ver != spec.version:
                self.error("%s: version %r: this stack implements %s version %d" % (where, ver, spec.name,
                                                                                  spec.version))
            if ln in index_of:
                self.error("%s: duplicate OBIS code %s (also %s)" % (where, V.obis_text(ln), index_of[ln][2]))
                continue
            index_of[ln] = (cid, o, where)
            listed.append((cid, ln, o, where))
        # objects every meter needs, unless listed
        added = []
        first = dev is self.devices[0]
        everyone = list(self.roles[i][0] for i in range(nroles))
        if OBIS_CURRENT_ASSOCIATION not in index_of:
            # HLS associations answer the challenge (method 1); secrets are
            # changed through Security setup (HLS-GMAC) or not at all
            hls = [r[0] for r in self.roles if r[2] >= 2]
            added.append((15, OBIS_CURRENT_ASSOCIATION, {"class": "association-ln", "obis": "0.0.40.0.0.255",
                                                         "read": everyone,
                                                         "access": {n: {"methods": {"1": True}} for n in hls},
                                                         "description": "Current association"}))
        for ri in range(nroles):
            ln = bytes((0, 0, 40, 0, ri + 1, 255))
            if ln not in index_of:
                nm = self.roles[ri][0]
                added.append((15, ln, {"class": "association-ln", "obis": V.obis_text(ln), "association": nm,
                                       "read": [nm], "description": "Association %s" % nm}))
        if OBIS_LDN not in index_of:
            added.append((1, OBIS_LDN, {"class": "data", "obis": "0.0.42.0.0.255", "type": "octet-string",
                                        "value": {"hex": dev.name.hex()}, "read": everyone,
                                        "description": "COSEM logical device name"}))
        if first and OBIS_SAP not in index_of:
            # read by the authenticated associations (all, when none is)
            authed = [r[0] for r in self.roles if r[2] != MECH_NONE]
            added.append((17, OBIS_SAP, {"class": "sap-assignment", "obis": "0.0.41.0.0.255",
                                         "read": authed or everyone, "description": "SAP assignment"}))
        if self.ciphered_roles:
            cr = [self.roles[i][0] for i in self.ciphered_roles]
            if OBIS_SECURITY_SETUP not in index_of:
                added.append((64, OBIS_SECURITY_SETUP, {
                    "class": "security-setup", "obis": "0.0.43.0.0.255", "read": cr,
                    "access": {n: {"methods": {"3": False, "4": False, "5": False, "6": False, "7": False,
                                               "8": False}} for n in cr},
                    "actions": cr, "description": "Security setup"}))
            if OBIS_INVOCATION_COUNTER not in index_of:
                added.append((1, OBIS_INVOCATION_COUNTER, {"class": "data", "obis": "0.0.43.1.0.255",
                                                           "drive": "invocation-counter", "read": everyone,
                                                           "description": "Invocation counter"}))
        for cid, ln, o in added:
            index_of[ln] = (cid, o, "(added) %s" % V.obis_text(ln))
        # the association objects first, then the listed ones, then the rest
        order = [a for a in added if a[0] == 15] + [(cid, ln, o) for cid, ln, o, _w in listed] + \
                [a for a in added if a[0] != 15]
        wheres = {ln: w for _c, ln, _o, w in listed}
        table = []
        inits = []
        drives = []
        info = []
        ram = 0
        slot = 0
        for cid, ln, o in order:
            spec = C.CLASSES[cid]
            where = wheres.get(ln) or "(added %s %s)" % (spec.name, V.obis_text(ln))
            cx = ObjectContext(self, dev, o, where, cid, ln, index_of)
            for k in o:
                if k not in COMMON_KEYS and k not in spec.params:
                    cx.err(k, "unknown key for %s (it takes: %s)" % (spec.name, ", ".join(COMMON_KEYS + spec.params)))
            acc_lists = self._access_lists(cx, spec)
            if cx.drive is not None and not (isinstance(cx.drive, str) and (
                    cx.drive.startswith("simulation:") or cx.drive.startswith("source:")
                    or cx.drive in ("invocation-counter", "event-code", "profile-status", "firmware-version",
                                    "auth-failures"))):
                cx.err("drive", "\"simulation:NAME\", \"source:NAME.FIELD\", \"invocation-counter\", "
                                "\"event-code\", \"profile-status\", \"firmware-version\" or \"auth-failures\", "
                                "not %r" % (cx.drive,))
            if cx.drive == "invocation-counter" and cid != 1:
                cx.err("drive", "invocation-counter drives a data object only")
            # a value nobody writes and nothing drives is a constant
            if cid == 1 and cx.drive is None and "type" in o and not o.get("constant") is False:
                cx.constant = not any(m[0][1] & base.WRITE for m in acc_lists if m is not None and len(m[0]) > 1)
            param, args = spec.compile(cx)
            if isinstance(cx.drive, str) and cx.drive.startswith("source:"):
                from dlms_micro_cpython.meterdef import sources as _sources

                _sources.check_binding(cx, self.sources)
                if args and cid in (1, 3, 4):
                    args = (None,) + tuple(args[1:])  # no value until the source gives one
            handler = cx.handler or spec.handler
            if handler not in self.handlers:
                self.handlers.append(handler)
            hi = self.handlers.index(handler)
            if args is None:
                s = -1
            else:
                s = slot
                try:
                    n = len(_state.make((cid, spec.version, ln, hi, s, None, param), args, _build.Env()))
                except (ValueError, TypeError, IndexError, KeyError) as e:
                    cx.err(None, "its initial state is refused: %s" % e)
                    n = 0
                slot += n
                inits.append((len(table), args))
            if cx.drive is not None and cx.drive != "invocation-counter":
                drives.append((len(table), cx.drive))
            table.append((cid, spec.version, ln, hi, s, tuple(acc_lists), param))
            info.append((o.get("description") or describe(ln, cid), spec.name))
            ram += cx.ram
        c.objects.append(info)
        c.ram.append(ram)
        return (dev.ld, dev.name, tuple(table), tuple(inits), tuple(drives))

    def _access_lists(self, cx, spec):
        # one (attribute modes, method modes) pair per role, or None
        o = cx.obj
        handler_counts = _counts(spec)
        na, nm = handler_counts
        names = list(self.role_names)
        out = []

        def names_of(key, default):
            v = o.get(key, default)
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                cx.err(key, "a list of association names")
                return []
            for n in v:
                if n not in self.role_names:
                    cx.err(key, "unknown association %r (the definition has: %s)" % (n, ", ".join(names)))
            return v

        read = names_of("read", names)
        write = names_of("write", [])
        actions = names_of("actions", write)
        overrides = o.get("access", {})
        if not isinstance(overrides, dict):
            cx.err("access", "an object of association name -> {attributes, methods}")
            overrides = {}
        for n in overrides:
            if n not in self.role_names:
                cx.err("access", "unknown association %r (the definition has: %s)" % (n, ", ".join(names)))
        secret_attrs = (7,) if spec.class_id == 15 else ()
        for n in names:
            if n not in read and n not in write and n not in actions and n not in overrides:
                out.append(None)
                continue
            am = bytearray(na)
            mm = bytearray(nm)
            if n in read or n in write:
                for a in range(na):
                    am[a] = base.READ
            for a in secret_attrs:
                if a <= na:
                    am[a - 1] = base.NO_ACCESS
            if n in write:
                for a in spec.writable:
                    if a <= na:
                        am[a - 1] = base.READ_WRITE
            if n in actions:
                for m in range(nm):
                    mm[m] = 1
            ov = overrides.get(n, {})
            if not isinstance(ov, dict):
                cx.err("access.%s" % n, "an object {\"attributes\": {...}, \"methods\": {...}}")
                ov = {}
            for k in ov:
                if k not in ("attributes", "methods"):
                    cx.err("access.%s.%s" % (n, k), "unknown key (attributes, methods)")
            for a, mode in (ov.get("attributes") or {}).items():
                ai = _member(a, spec.attributes)
                if ai is None or ai > na:
                    cx.err("access.%s.attributes" % n, "%s has no attribute %r" % (spec.name, a))
                elif mode not in MODES:
                    cx.err("access.%s.attributes.%s" % (n, a), "one of %s" % ", ".join(MODES))
                else:
                    am[ai - 1] = MODES[mode]
            for m, allowed in (ov.get("methods") or {}).items():
                mi = _member(m, spec.methods)
                if mi is None or mi > nm:
                    cx.err("access.%s.methods" % n, "%s has no method %r" % (spec.name, m))
                elif not isinstance(allowed, bool):
                    cx.err("access.%s.methods.%s" % (n, m), "true or false")
                else:
                    mm[mi - 1] = 1 if allowed else 0
            out.append((bytes(am), bytes(mm)))
        return out


def _member(key, names):
    # attribute/method id from "4" / 4 / "capture_period"
    if isinstance(key, int) and not isinstance(key, bool):
        return key if key >= 1 else None
    if isinstance(key, str):
        if key.isdigit():
            return int(key) or None
        if key in names:
            return names.index(key) + 1
    return None


_counts_cache = {}


def _counts(spec):
    k = spec.class_id
    if k not in _counts_cache:
        ic = spec.handler_instance()
        _counts_cache[k] = (ic.attribute_count, ic.method_count)
    return _counts_cache[k]


# a few well-known OBIS codes, for `meter show` (the definition's own
# descriptions win)
KNOWN = {
    (0, 0, 1, 0, 0, 255): "Clock",
    (0, 0, 40, 0, 0, 255): "Current association",
    (0, 0, 41, 0, 0, 255): "SAP assignment",
    (0, 0, 42, 0, 0, 255): "COSEM logical device name",
    (0, 0, 43, 0, 0, 255): "Security setup",
    (0, 0, 43, 1, 0, 255): "Invocation counter",
    (0, 0, 96, 1, 0, 255): "Serial number",
    (1, 0, 0, 2, 0, 255): "Active firmware identifier",
    (0, 0, 22, 0, 0, 255): "IEC HDLC setup",
    (0, 0, 20, 0, 0, 255): "IEC optical port setup",
    (1, 0, 1, 8, 0, 255): "Active energy import (+A)",
    (1, 0, 2, 8, 0, 255): "Active energy export (-A)",
    (1, 0, 3, 8, 0, 255): "Reactive energy import (+R)",
    (1, 0, 4, 8, 0, 255): "Reactive energy export (-R)",
    (1, 0, 1, 7, 0, 255): "Active power import",
    (1, 0, 32, 7, 0, 255): "Voltage L1",
    (1, 0, 31, 7, 0, 255): "Current L1",
    (1, 0, 14, 7, 0, 255): "Frequency",
    (1, 0, 99, 1, 0, 255): "Load profile 1",
    (1, 0, 99, 2, 0, 255): "Load profile 2",
    (1, 0, 98, 1, 0, 255): "Billing profile",
    (0, 0, 99, 98, 0, 255): "Standard event log",
    (0, 0, 96, 11, 0, 255): "Event code",
    (0, 0, 25, 9, 0, 255): "Push setup",
    (0, 0, 96, 3, 10, 255): "Disconnect control",
    (0, 0, 17, 0, 0, 255): "Limiter",
    (0, 0, 13, 0, 0, 255): "Activity calendar",
    (0, 0, 11, 0, 0, 255): "Special days table",
    (0, 0, 44, 0, 0, 255): "Image transfer",
}


def describe(ln, cid):
    t = KNOWN.get(tuple(ln))
    if t:
        return t
    if tuple(ln[:2]) == (0, 0) and ln[2] == 40:
        return "Association %d" % ln[4]
    spec = C.CLASSES.get(cid)
    return spec.name if spec else "class %d" % cid


def compile_definition(d, source=""):
    """A meter definition (a dict, as the JSON reads) -> Compiled; raises
    DefinitionError listing every fault. source: the file, for messages."""
    c = Compiler(d, source)
    try:
        return c.run()
    except (TypeError, AttributeError, KeyError, IndexError) as e:
        # A value of the wrong JSON type where the checks do not look yet
        # (the meterdef fuzz target finds these: an object or a list where a
        # name or a number belongs): a refusal with the faults found so far,
        # never a traceback.
        raise DefinitionError(c.errors + ["a value of the wrong JSON type (%s: %s): check the definition "
                                          "against docs/meter-definition.md" % (type(e).__name__, e)],
                              source) from None


def read(path, report=None):
    # A definition file as a dict: JSON, or a Gurux XML object collection
    # (imported; what could not be mapped is appended to report).
    if str(path).lower().endswith(".xml"):
        from dlms_micro_cpython.meterdef import gurux_xml

        try:
            d, rep = gurux_xml.import_gurux(str(path))
        except gurux_xml.GuruxImportError as e:
            raise DefinitionError([str(e)], str(path)) from None
        except OSError as e:
            raise DefinitionError(["cannot read it: %s" % (e.strerror or e)], str(path)) from None
        if report is not None:
            report.extend(rep)
        return d
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as e:
        raise DefinitionError(["cannot read it: %s" % (e.strerror or e)], str(path)) from None
    except ValueError as e:
        raise DefinitionError(["not valid JSON: %s" % e], str(path)) from None


def override(d, name=None, serial_number=None, system_title=None):
    # The identity of the top-level logical device replaced (serve's
    # --name, --serial-number, --system-title).
    d = dict(d)
    if name is not None:
        d["name"] = name
    if serial_number is not None:
        d["serial_number"] = serial_number
    if system_title is not None:
        d["system_title"] = system_title
    return d


def load(path, report=None, **overrides):
    """A definition file: JSON (or Gurux XML, imported first) -> Compiled.
    report: a list that receives what a Gurux import could not map.
    overrides: name, serial_number, system_title (16 hex digits) instead of
    the file's. Raises DefinitionError (its place named) for any fault."""
    d = read(path, report)
    if overrides:
        d = override(d, **overrides)
    return compile_definition(d, str(path))
