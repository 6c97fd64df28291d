# The "sources" of a meter definition (docs/meter-definition.md, "Sources"):
# where a retrofit module's values come from, compiled to the SOURCES
# constant that dlms_micro.meterdef.sources builds the sources from, and the
# check of every "drive": "source:NAME.FIELD" against the source's fields,
# units and scalers.
#
#   "sources": {
#     "bus":  {"kind": "modbus-rtu", "device": "/dev/ttyUSB0", "baud": 9600,
#              "interval": 10, "devices": [{"name": "m1", "slave": 1,
#              "map": "eastron_sdm630"}]},
#     "head": {"kind": "iec21-readout", "device": "/dev/ttyUSB1",
#              "max_baud": 9600, "fields": ["1.8.0", "2.8.0", "C.1.0"]},
#     "s0":   {"kind": "s0", "device": "gpio4", "constant": 1000}}
#
# SOURCES = ((name, kind, device, baud, parity, interval_ms, event_failed,
#             event_recovered, args), ...), args per kind:
#   modbus-rtu     (timeout_ms, retries, frame_gap_ms, devices): devices
#                  ((slave, name, max_registers, max_gap, rows), ...), rows
#                  ((name, function, address, type, word_order, scaler,
#                  unit), ...) as in a register map
#   iec21-readout  (fields, address bytes, max_baud, retries, medium)
#   s0             (constant, min_pulse_ms, direction, field name,
#                  persist_every, persist_ms)

import json
import os

from dlms_micro import axdr
from dlms_micro.source import iec21_readout as _rd
from dlms_micro.source import modbus_rtu as _mb
from dlms_micro.source import s0 as _s0

KINDS = ("modbus-rtu", "iec21-readout", "s0")
COMMON = ("kind", "device", "baud", "parity", "interval", "event_failed", "event_recovered", "description")
KEYS = {
    "modbus-rtu": COMMON + ("timeout", "retries", "frame_gap", "slave", "map", "devices"),
    "iec21-readout": COMMON + ("fields", "address", "max_baud", "retries", "medium"),
    "s0": COMMON + ("constant", "min_pulse", "direction", "field", "persist_every", "persist_ms"),
}
# Event codes of a source's failure and recovery (the definition may give
# others): numbers the standard event log's IDIS codes leave free
EVENT_FAILED = 231
EVENT_RECOVERED = 232
STATUS_FIELD = "status"
MAPS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "meters", "sources")
# Integer A-XDR types a source value may fill, with their ranges
INT_RANGES = {
    axdr.INTEGER: (-128, 127), axdr.LONG: (-32768, 32767), axdr.DOUBLE_LONG: (-2**31, 2**31 - 1),
    axdr.LONG64: (-2**63, 2**63 - 1), axdr.UNSIGNED: (0, 255), axdr.LONG_UNSIGNED: (0, 65535),
    axdr.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1), axdr.LONG64_UNSIGNED: (0, 2**64 - 1),
}


class Source:
    # What the compiler knows of one source: its constant tuple, and a
    # sans-IO instance (made once, never driven) for its fields, scalers and
    # units (None for readout fields: they come with the readout).
    def __init__(self, name, const, instance, devices=()):
        self.name = name
        self.const = const
        self.instance = instance
        self.devices = devices  # modbus device names ("" for a lone slave)
        self.kind = const[1]


def _num(comp, where, v, lo, hi, default, integer=True):
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)) \
            or not lo <= v <= hi:
        comp.error("%s: %s %g..%g, not %r" % (where, "an integer" if integer else "a number", lo, hi, v))
        return default
    return v


def _map(comp, where, m, base_dir):
    # a register map: a name of meters/sources/ (or a path beside the
    # definition), or the map inline
    if isinstance(m, str):
        cands = [m, m + ".json"]
        paths = []
        for c in cands:
            paths.append(os.path.join(MAPS_DIR, c))
            if base_dir:
                paths.append(os.path.join(base_dir, c))
                paths.append(os.path.join(base_dir, "sources", c))
        for p in paths:
            if os.path.isfile(p):
                try:
                    with open(p, encoding="utf-8") as f:
                        return json.load(f)
                except (OSError, ValueError) as e:
                    comp.error("%s: map %r: cannot read it: %s" % (where, m, e))
                    return None
        comp.error("%s: map %r: no such register map (shipped: %s)" % (where, m, ", ".join(
            sorted(x[:-5] for x in os.listdir(MAPS_DIR) if x.endswith(".json")))))
        return None
    if not isinstance(m, dict):
        comp.error("%s: map: the name of a register map (meters/sources/) or a map object" % where)
        return None
    return m


def compile_sources(comp, d, base_dir=""):
    # -> (SOURCES constant, {name: Source}); faults go to comp.error
    src = d.get("sources", {})
    out = []
    known = {}
    if not isinstance(src, dict):
        comp.error("sources: an object of source name -> {kind, device, ...}")
        return (), {}
    for name in sorted(src):
        s = src[name]
        where = "sources.%s" % name
        if not isinstance(name, str) or not name or "." in name or ":" in name:
            comp.error("%s: a source name is a word without '.' or ':'" % where)
            continue
        if not isinstance(s, dict):
            comp.error("%s: an object {kind, device, ...}" % where)
            continue
        kind = s.get("kind")
        if kind not in KINDS:
            comp.error("%s.kind: one of %s, not %r" % (where, ", ".join(KINDS), kind))
            continue
        for k in s:
            if k not in KEYS[kind]:
                comp.error("%s.%s: unknown key for %s (it takes: %s)" % (where, k, kind, ", ".join(KEYS[kind])))
        device = s.get("device", "")
        if not isinstance(device, str):
            comp.error("%s.device: a string (a serial device, a UART or pin name)" % where)
            device = ""
        dflt_baud = {"modbus-rtu": 9600, "iec21-readout": 300, "s0": 0}[kind]
        baud = _num(comp, where + ".baud", s.get("baud"), 0 if kind == "s0" else 300, 115200, dflt_baud)
        parity = s.get("parity", {"modbus-rtu": "none", "iec21-readout": "even", "s0": "none"}[kind])
        if parity not in ("none", "even", "odd"):
            comp.error("%s.parity: none, even or odd, not %r" % (where, parity))
            parity = "none"
        dflt_iv = {"modbus-rtu": 10, "iec21-readout": 60, "s0": 1}[kind]
        interval = int(_num(comp, where + ".interval", s.get("interval"), 0.1, 86400, dflt_iv, False) * 1000)
        ev_f = _num(comp, where + ".event_failed", s.get("event_failed"), 1, 255, EVENT_FAILED)
        ev_r = _num(comp, where + ".event_recovered", s.get("event_recovered"), 1, 255, EVENT_RECOVERED)
        inst = None
        devnames = ()
        try:
            if kind == "modbus-rtu":
                args, inst, devnames = _modbus(comp, where, s, baud, interval, base_dir)
            elif kind == "iec21-readout":
                args, inst = _readout(comp, where, s, baud, interval)
            else:
                args, inst = _s0_args(comp, where, s, name)
        except ValueError as e:
            comp.error("%s: %s" % (where, e))
            continue
        if args is None:
            continue
        const = (name, kind, device, baud, parity, interval, ev_f, ev_r, args)
        out.append(const)
        known[name] = Source(name, const, inst, devnames)
    return tuple(out), known


def _modbus(comp, where, s, baud, interval, base_dir):
    timeout = _num(comp, where + ".timeout", s.get("timeout"), 10, 10000, 500)
    retries = _num(comp, where + ".retries", s.get("retries"), 0, 10, 2)
    gap = _num(comp, where + ".frame_gap", s.get("frame_gap"), 2, 1000, 50)
    devs = s.get("devices")
    if devs is None:
        if "slave" not in s or "map" not in s:
            comp.error("%s: give \"slave\" and \"map\" (one meter) or \"devices\": [{name, slave, map}, ...]" % where)
            return None, None, ()
        devs = [{"slave": s["slave"], "map": s["map"], "name": ""}]
    elif "slave" in s or "map" in s:
        comp.error("%s: \"slave\"/\"map\" or \"devices\", not both" % where)
        return None, None, ()
    if not isinstance(devs, list) or not devs:
        comp.error("%s.devices: a non-empty list of {name, slave, map}" % where)
        return None, None, ()
    consts = []
    dicts = []
    names = []
    for i, dv in enumerate(devs):
        w = "%s.devices[%d]" % (where, i)
        if not isinstance(dv, dict):
            comp.error("%s: an object {name, slave, map}" % w)
            return None, None, ()
        for k in dv:
            if k not in ("name", "slave", "map", "description"):
                comp.error("%s.%s: unknown key (name, slave, map)" % (w, k))
        nm = dv.get("name", "")
        if not isinstance(nm, str) or "." in nm or (len(devs) > 1 and not nm):
            comp.error("%s.name: a word without '.' (required when the bus has several meters)" % w)
            return None, None, ()
        slave = _num(comp, w + ".slave", dv.get("slave"), 1, 247, None)
        m = _map(comp, w, dv.get("map"), base_dir)
        if slave is None or m is None:
            return None, None, ()
        try:
            rows = _mb.load_map(m)
        except ValueError as e:
            comp.error("%s.map: %s" % (w, e))
            return None, None, ()
        crow = []
        for r in m["registers"]:
            dflt = m.get("defaults", {})

            def g(k, default, _r=r, _d=dflt):
                return _r.get(k, _d.get(k, default))

            crow.append((g("name", ""), g("function", 4), g("address", 0), g("type", "uint16"),
                         g("word_order", "big"), g("scaler", 0), g("unit", "count")))
        consts.append((slave, nm, m.get("max_registers", _mb.MAX_REGISTERS), m.get("max_gap", 0), tuple(crow)))
        dicts.append({"slave": slave, "map": m, "name": nm} if nm else {"slave": slave, "map": m})
        names.append(nm)
        del rows
    inst = _mb.ModbusMaster(dicts, baud=baud, interval=interval, timeout=timeout, retries=retries, frame_gap=gap)
    return (timeout, retries, gap, tuple(consts)), inst, tuple(names)


def _readout(comp, where, s, baud, interval):
    fields = s.get("fields")
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        comp.error("%s.fields: a non-empty list of data set names (\"1.8.0\", \"F.F\", \"1-0:2.8.0*255\")" % where)
        return None, None
    if STATUS_FIELD in fields:
        comp.error("%s.fields: %r is the source's own status" % (where, STATUS_FIELD))
    addr = s.get("address", "")
    if not isinstance(addr, str):
        comp.error("%s.address: the meter's device address, a string" % where)
        addr = ""
    max_baud = _num(comp, where + ".max_baud", s.get("max_baud"), 300, 19200, 9600)
    retries = _num(comp, where + ".retries", s.get("retries"), 0, 10, 2)
    medium = _num(comp, where + ".medium", s.get("medium"), 0, 15, 1)
    for v, k in ((baud, "baud"), (max_baud, "max_baud")):
        if v not in (300, 600, 1200, 2400, 4800, 9600, 19200):
            comp.error("%s.%s: one of IEC 62056-21's rates 300..19200, not %r" % (where, k, v))
            return None, None
    inst = _rd.Readout(list(fields), address=addr.encode(), max_baud=max_baud, initial_baud=baud,
                       interval=interval, retries=retries, medium=medium)
    return (tuple(fields), addr.encode(), max_baud, retries, medium), inst


def _s0_args(comp, where, s, name):
    constant = _num(comp, where + ".constant", s.get("constant"), 1, 1000000, None)
    if constant is None:
        comp.error("%s.constant: required, the meter constant in imp/kWh" % where)
        return None, None
    min_pulse = _num(comp, where + ".min_pulse", s.get("min_pulse"), 1, 10000, 30)
    direction = s.get("direction", "import")
    if direction not in ("import", "export"):
        comp.error("%s.direction: import or export" % where)
        direction = "import"
    field = s.get("field", "energy_" + direction)
    if not isinstance(field, str) or not field or field == STATUS_FIELD:
        comp.error("%s.field: the energy field's name" % where)
        field = "energy_" + direction
    every = _num(comp, where + ".persist_every", s.get("persist_every"), 1, 100000, 100)
    pms = int(_num(comp, where + ".persist_ms", s.get("persist_ms"), 1000, 86400000, 900000))
    inst = _s0.S0Input(constant=constant, min_pulse=min_pulse, direction=direction, name=field,
                       persist_every=every, persist_ms=pms)
    return (constant, min_pulse, direction, field, every, pms), inst


def split_drive(drive):
    # "source:NAME.FIELD" -> (NAME, FIELD); FIELD may hold dots ("m1.x", "1.8.0")
    rest = drive[len("source:"):]
    p = rest.find(".")
    if p <= 0 or p == len(rest) - 1:
        return None, None
    return rest[:p], rest[p + 1:]


def check_binding(cx, known):
    # A "source:NAME.FIELD" drive on the object of cx: the source and field
    # exist; the class takes a value; the units agree and the scalers are
    # compatible (a field whose value cannot fill the type is refused here
    # where it can be known).
    name, field = split_drive(cx.drive)
    if name is None:
        cx.err("drive", "\"source:NAME.FIELD\", not %r" % (cx.drive,))
        return
    src = known.get(name)
    if src is None:
        cx.err("drive", "no source %r (the definition's sources: %s)" % (name, ", ".join(sorted(known)) or "none"))
        return
    cid = cx.class_id
    status = field == STATUS_FIELD or (src.kind == "modbus-rtu" and field.endswith("." + STATUS_FIELD)
                                       and field[:-len(STATUS_FIELD) - 1] in src.devices)
    if status:
        if cid != 1 or cx.has("type") or cx.has("value"):
            cx.err("drive", "%s is the source's state and counters: a data object without type or value "
                            "(a structure)" % cx.drive)
        return
    inst = src.instance
    f = inst.index(field)
    if f < 0:
        shown = list(inst.fields)
        if len(shown) > 12:
            shown = shown[:12] + ["..."]
        cx.err("drive", "source %r has no field %r (its fields: %s, and %s)" % (name, field, ", ".join(shown),
                                                                            STATUS_FIELD))
        return
    if cid not in (1, 3, 4):
        cx.err("drive", "a source's value drives a data, register or extended-register object, not class %d" % cid)
        return
    if cid == 1:
        t = cx.get("type")
        if t is None:
            cx.err("type", "required for a source's value (e.g. double-long-unsigned, or octet-string for a text)")
        return
    # registers: the unit must be the field's (scalers may differ: converted)
    fu = inst.units[f]
    if src.kind == "iec21-readout":
        return  # scaler and unit come with each readout: checked then
    try:
        from dlms_micro_cpython.meterdef import values as V

        ru = V.unit(cx.get("unit"))
    except Exception:  # noqa: BLE001 (the register's own check reports it)
        return
    if fu != 255 and ru != fu:
        cx.err("unit", "the register's unit (%d) is not the one of %s (%d: %s)"
               % (ru, cx.drive, fu, _unit_name(fu)))


def _unit_name(u):
    from dlms_micro.source import UNIT_TABLE

    for row in UNIT_TABLE:
        if row[1] == u and row[2] == 0:
            return row[0].decode()
    return "enum %d" % u

