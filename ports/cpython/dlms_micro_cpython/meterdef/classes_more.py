# Class compilers of the definition format for the interface classes beyond
# the core ones (classes.py): demand register, tariffs (register activation,
# script table, special days, activity calendar, single action schedule),
# monitors (register monitor, limiter), pushes and compact data, image
# transfer, supply control and prepayment. Each registers a ClassSpec: the
# Blue Book names of its attributes and methods, the attributes the `write`
# list may SET, the JSON keys it takes (under the Blue Book's attribute names
# where there is one) and compile(cx) -> (param, init args or None), the
# param each class module's header describes and the args its state maker
# (dlms_micro.meterdef.state) takes. docs/meter-definition.md, "Class
# parameters", lists the keys.
#
# Conventions of the keys:
#   "OBIS"              another object of the logical device (checked to be
#                       in the table, of the class the reference needs)
#   "OBIS:attribute"    an attribute of one (monitored values, push objects,
#                       capture objects, a charge's commodity)
#   "OBIS:selector"     a script: script table OBIS and script identifier
#                       (checked to be a script of that table; 0 the null
#                       script)
#   times               "HH:MM[:SS]" (a field "*": any), dates "YYYY-MM-DD"
#                       ("*" any; day "last" / "second-last"), date-times
#                       "YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM]" with the same
#                       wildcards; {"hex": ...} gives the raw octets
#   max_* / *_room      the room a client's SET may fill (counts / bytes of
#                       the attribute's A-XDR encoding)

from dlms_micro import axdr
from dlms_micro.cosem import profile as _profile
from dlms_micro_cpython.meterdef import classes as C
from dlms_micro_cpython.meterdef import values as V

ZERO_LN = bytes(6)


# ------------------------------------------------------------------ helpers


class _Bad(ValueError):
    pass


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _int_of(cx, where, v, lo, hi):
    # v an integer lo..hi, else an error at `where` (and lo)
    if not _is_int(v) or not lo <= v <= hi:
        cx.err(where, "an integer %d..%d, not %r" % (lo, hi, v))
        return lo
    return v


def _enum(cx, key, names, default, hi=255):
    # a name of `names` (name -> number) or the number
    v = cx.get(key, default)
    if isinstance(v, str) and v in names:
        return names[v]
    if _is_int(v) and 0 <= v <= hi:
        return v
    cx.err(key, "one of %s (or the number 0..%d), not %r" % (", ".join(names), hi, v))
    return names[default] if isinstance(default, str) else default


def _bool(cx, key, default):
    v = cx.get(key, default)
    if not isinstance(v, bool):
        cx.err(key, "true or false, not %r" % (v,))
        return default
    return v


def _list(cx, key, default=None):
    v = cx.get(key, default if default is not None else [])
    if not isinstance(v, list):
        cx.err(key, "a list")
        return []
    return v


def _octets(cx, where, v, maxlen=None):
    try:
        b = V.octets(v, where)
    except V.Bad as e:
        cx.err(where, str(e))
        return b""
    if maxlen is not None and len(b) > maxlen:
        cx.err(where, "%d bytes at most, %d given" % (maxlen, len(b)))
        return b[:maxlen]
    return b


def _obis(cx, where, text, classes=None, what="an object"):
    # "OBIS" of an object of the table (of one of `classes`) -> 6 bytes or None
    try:
        ln = V.obis(text)
    except V.Bad as e:
        cx.err(where, str(e))
        return None
    got = cx.target(ln)
    if got is None:
        cx.err(where, "%s is not in the table" % V.obis_text(ln))
        return None
    if classes is not None and got[0] not in classes:
        cx.err(where, "%s is a %s, not %s" % (V.obis_text(ln), _class_name(got[0]), what))
        return None
    return ln


def _class_name(cid):
    spec = C.CLASSES.get(cid)
    return spec.name if spec else "class %d" % cid


def _split_ref(cx, where, text, second):
    # "OBIS:n" -> (obis text, n) or None
    if isinstance(text, str) and text.count(":") == 1 and "-" not in text.split(":")[0]:
        o, n = text.split(":")
        try:
            return o, int(n)
        except ValueError:
            pass
    cx.err(where, "%r: write \"OBIS:%s\" (e.g. \"0.0.10.0.100.255:1\")" % (text, second))
    return None


def _scripts_of(cx, ln):
    # the script identifiers a Script table of the definition holds, or None
    # when they cannot be told (its own compiler reports its faults)
    got = cx.target(ln)
    if got is None or got[0] != 9:
        return None
    ids = set()
    scripts = got[1].get("scripts", [])
    if not isinstance(scripts, list):
        return None
    for s in scripts:
        if isinstance(s, dict) and _is_int(s.get("script_identifier")):
            ids.add(s["script_identifier"])
    return ids


def _script_ref(cx, where, v, allow_none=False):
    # "OBIS:selector" (or {"script_logical_name", "script_selector"}) of a
    # Script table -> (ln, selector); None / "" with allow_none: no script
    if allow_none and v in (None, ""):
        return ZERO_LN, 0
    if isinstance(v, dict):
        o, sel = v.get("script_logical_name"), v.get("script_selector", 0)
    else:
        r = _split_ref(cx, where, v, "selector")
        if r is None:
            return ZERO_LN, 0
        o, sel = r
    ln = _obis(cx, where, o, (9,), "a script table")
    if ln is None:
        return ZERO_LN, 0
    if not _is_int(sel) or not 0 <= sel <= 0xFFFF:
        cx.err(where, "script selector %r: an integer 0..65535" % (sel,))
        return ln, 0
    ids = _scripts_of(cx, ln)
    if sel and ids is not None and sel not in ids:
        cx.err(where, "%s has no script %d (it has: %s)" % (V.obis_text(ln), sel,
                                                           ", ".join(str(i) for i in sorted(ids)) or "none"))
    return ln, sel


def _value_ref(cx, where, v):
    # "OBIS:attribute" -> (class id, ln, attribute) or None
    r = cx.ref(v, where)
    if r is None:
        return None
    cid, ln, attr, di = r
    if di:
        cx.err(where, "a data index is not taken here (\"OBIS:attribute\")")
    return cid, ln, attr


def _value_tag(cx, ref, where):
    # The A-XDR type of a referenced value: the definition's "type", else that
    # of the referenced object's value.
    if cx.has("type"):
        return cx.type_tag()
    if ref is None:
        return axdr.DOUBLE_LONG_UNSIGNED
    cid, ln, attr = ref
    obj = cx.target(ln)[1]
    if attr == 2 and cid in (1, 3, 4) or (cid == 5 and attr in (2, 3)):
        t = obj.get("type")
        if t is None and cid != 1:
            return axdr.DOUBLE_LONG_UNSIGNED
        if t in V.TYPES:
            return V.TYPES[t]
    cx.err("type", "the type of %s attribute %d is not known: give it (\"type\": e.g. \"long-unsigned\")"
           % (V.obis_text(ln), attr))
    return axdr.DOUBLE_LONG_UNSIGNED


def _number(cx, where, tag, v):
    try:
        return V.value(tag, v)
    except V.Bad as e:
        cx.err(where, str(e))
        return 0


def _grants(cx, attr, mode_bit):
    # Does the definition give some association `mode_bit` (2: write) on
    # attribute `attr` (its number)? The `write` list with the class's
    # writable attributes, then the overrides.
    spec = C.CLASSES[cx.class_id]
    write = cx.get("write", [])
    granted = isinstance(write, list) and bool(write) and attr in spec.writable
    name = spec.attributes[attr - 1] if attr <= len(spec.attributes) else None
    acc = cx.get("access", {})
    if isinstance(acc, dict):
        for ov in acc.values():
            if not isinstance(ov, dict):
                continue
            for k, mode in (ov.get("attributes") or {}).items():
                if k in (attr, str(attr), name):
                    bits = {"none": 0, "read": 1, "write": 2, "read-write": 3}.get(mode, 0)
                    if bits & mode_bit:
                        return True
    return granted


def _persist(cx):
    p = cx.get("persist", True)
    if not isinstance(p, bool):
        cx.err("persist", "true or false")
        return 1
    return 1 if p else 0


def _room(cx, key, need, default_min, hi=0xFFFF):
    # a capacity: the key's value (at least `need`), default max(need, min)
    v = cx.get(key)
    if v is None:
        return max(need, default_min)
    if not _is_int(v) or not 0 <= v <= hi:
        cx.err(key, "an integer 0..%d, not %r" % (hi, v))
        return max(need, default_min)
    if v < need:
        cx.err(key, "%d is less than the initial content needs (%d)" % (v, need))
        return need
    return v


def _checked(fn):
    # A class compiler whose state is made once here, as a build will make
    # it: a fault the checks missed becomes an error naming the object (not a
    # crash of the build); args None then (the compiler has errors and
    # builds nothing).
    def compile(cx):
        from dlms_micro.meterdef import build, state

        n0 = len(cx.comp.errors)
        param, args = fn(cx)
        if args is None:
            return param, None
        spec = C.CLASSES[cx.class_id]
        try:
            state.make((cx.class_id, spec.version, cx.ln, 0, 0, None, param), args, build.Env())
        except Exception as e:  # noqa: BLE001 - whatever the class module refuses
            if len(cx.comp.errors) == n0:
                cx.err(None, "its initial state is refused: %s" % e)
            return param, None
        return param, args

    return compile


# ---- times and dates


def _field(text, lo, hi, wild, names=None):
    if text == "*":
        return wild
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise _Bad("%r is not a number" % text)
    n = int(text)
    if not lo <= n <= hi:
        raise _Bad("%d is not %d..%d" % (n, lo, hi))
    return n


def time4(v, hundredths=0):
    # "HH:MM[:SS[.hh]]" ("*" wildcards) or {"hex": 8 digits} -> 4 bytes
    if isinstance(v, dict):
        b = V.octets(v)
        if len(b) != 4:
            raise _Bad("a time is 4 bytes, %d given" % len(b))
        return b
    if not isinstance(v, str):
        raise _Bad("a time is \"HH:MM[:SS]\", not %r" % (v,))
    parts = v.split(":")
    if not 2 <= len(parts) <= 3:
        raise _Bad("%r is not a time \"HH:MM[:SS]\"" % v)
    hs = hundredths
    if len(parts) == 3 and "." in parts[2]:
        parts[2], h = parts[2].split(".", 1)
        hs = _field(h, 0, 99, 0xFF)
    try:
        h = _field(parts[0], 0, 23, 0xFF)
        m = _field(parts[1], 0, 59, 0xFF)
        s = _field(parts[2], 0, 59, 0xFF) if len(parts) == 3 else 0
    except _Bad as e:
        raise _Bad("time %r: %s" % (v, e)) from None
    return bytes((h, m, s, hs))


DAYS = {"last": 0xFE, "second-last": 0xFD}


def date5(v):
    # "YYYY-MM-DD" ("*" wildcards; day "last" / "second-last") or {"hex": 10
    # digits} -> 5 bytes (day of week not specified)
    if isinstance(v, dict):
        b = V.octets(v)
        if len(b) != 5:
            raise _Bad("a date is 5 bytes, %d given" % len(b))
        return b
    if not isinstance(v, str):
        raise _Bad("a date is \"YYYY-MM-DD\" (\"*\" for any), not %r" % (v,))
    parts = v.split("-")
    if len(parts) != 3:
        raise _Bad("%r is not a date \"YYYY-MM-DD\" (\"*\" for any field)" % v)
    try:
        y = _field(parts[0], 0, 0xFFFE, 0xFFFF)
        mo = _field(parts[1], 1, 12, 0xFF)
        d = _field(parts[2], 1, 31, 0xFF, DAYS)
    except _Bad as e:
        raise _Bad("date %r: %s" % (v, e)) from None
    return bytes((y >> 8, y & 0xFF, mo, d, 0xFF))


def date_time12(v):
    # "YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM|-HH:MM]" ("*" wildcards; hundredths and
    # clock status not specified, deviation not specified without a zone) or
    # {"hex": 24 digits} -> 12 bytes
    if isinstance(v, dict):
        b = V.octets(v)
        if len(b) != 12:
            raise _Bad("a date-time is 12 bytes, %d given" % len(b))
        return b
    if not isinstance(v, str) or "T" not in v:
        raise _Bad("a date-time is \"YYYY-MM-DDTHH:MM:SS\" (\"*\" for any field), not %r" % (v,))
    d, t = v.split("T", 1)
    dev = 0x8000
    if t.endswith("Z"):
        t = t[:-1]
        dev = 0
    elif len(t) > 6 and t[-6] in "+-" and t[-3] == ":":
        z = t[-6:]
        t = t[:-6]
        try:
            off = int(z[1:3]) * 60 + int(z[4:6])
        except ValueError:
            raise _Bad("%r: the zone is +HH:MM or -HH:MM" % v) from None
        if z[0] == "+":
            off = -off
        dev = off & 0xFFFF  # minutes local time is behind UTC
    return date5(d) + time4(t, 0xFF) + bytes((dev >> 8, dev & 0xFF, 0xFF))


def _parsed(cx, where, fn, v, default):
    try:
        return fn(v)
    except (_Bad, V.Bad) as e:
        cx.err(where, str(e))
        return default


# ---- A-XDR parameters (script actions)


def encoded_value(tag, v):
    # The A-XDR encoding (tag included) of a JSON value of type tag.
    x = V.value(tag, v)
    if tag == axdr.BIT_STRING:
        n = len(v) if isinstance(v, str) and set(v) <= set("01") else len(x) * 8
        return bytes((tag, n)) + x if n < 0x80 else bytes((tag, 0x81, n)) + x
    if tag in (axdr.DATE_TIME, axdr.DATE, axdr.TIME):
        return bytes((tag,)) + x
    if tag == axdr.NULL_DATA:
        return b"\x00"
    return axdr.encoded(tag, x)


# --------------------------------------------------------- Demand register (5)


def compile_demand(cx):
    s, u = C._scaler_unit(cx)
    tag = cx.type_tag(default=axdr.DOUBLE_LONG_UNSIGNED)
    if tag not in V.RANGES or tag == axdr.BCD:
        cx.err("type", "the averages are integers (e.g. double-long-unsigned)")
    st_tag = axdr.UNSIGNED
    if cx.has("status_type"):
        st_tag = V.TYPES.get(cx.get("status_type"))
        if st_tag is None or st_tag not in V.RANGES:
            cx.err("status_type", "an integer type name (e.g. unsigned), not %r" % (cx.get("status_type"),))
            st_tag = axdr.UNSIGNED
    period = cx.int("period", 900, 1, 2**32 - 1)
    n = cx.int("number_of_periods", 1, 1, 0xFFFF)
    maxp = cx.int("max_periods", max(n, 1), 1, 0xFFFF)
    if maxp < n:
        cx.err("max_periods", "%d is less than number_of_periods %d" % (maxp, n))
        maxp = n
    energy = cx.get("energy_register")
    ecid, eln = 3, ZERO_LN
    if energy is None:
        cx.err("energy_register", "required: the OBIS code of the cumulative energy register (class 3 or 4)")
    else:
        ln = _obis(cx, "energy_register", energy, (3, 4), "a register or extended register")
        if ln is not None:
            ecid, eln = cx.target(ln)[0], ln
    mx = None
    if cx.get("maximum_demand_register") is not None:
        mx = _obis(cx, "maximum_demand_register", cx.get("maximum_demand_register"), (4,),
                   "an extended register")
    per = cx.int("per", 3600, 1, 2**31 - 1)
    cx.ram += 8 * maxp + 100  # the ring and the slots
    param = [s, u, ecid, eln, maxp, mx, tag, st_tag, per]
    # the trailing defaults are left out (the class module's defaults)
    defaults = (None, axdr.DOUBLE_LONG_UNSIGNED, axdr.UNSIGNED, 3600)
    while len(param) > 5 and param[-1] == defaults[len(param) - 6]:
        param.pop()
    return (tuple(param), (period, n))


C.register(C.ClassSpec(
    5, 0, "demand-register", ("dlms_micro.cosem.demand", "DEMAND_REGISTER"),
    ("logical_name", "current_average_value", "last_average_value", "scaler_unit", "status", "capture_time",
     "start_time_current", "period", "number_of_periods"),
    ("reset", "next_period"), writable=(8, 9), compile=_checked(compile_demand),
    params=("type", "status_type", "scaler", "unit", "period", "number_of_periods", "max_periods",
            "energy_register", "maximum_demand_register", "per")))


# ----------------------------------------------------- Register activation (6)


def compile_register_activation(cx):
    regs = []
    for i, o in enumerate(_list(cx, "register_assignment")):
        w = "register_assignment[%d]" % i
        ln = _obis(cx, w, o, (3, 4), "a register or extended register")
        if ln is None:
            continue
        if any(r[1] == ln for r in regs):
            cx.err(w, "%s is assigned twice" % V.obis_text(ln))
            continue
        regs.append((cx.target(ln)[0], ln))
    masks = []
    for i, m in enumerate(_list(cx, "mask_list")):
        w = "mask_list[%d]" % i
        if not isinstance(m, dict) or set(m) - {"mask_name", "index_list"} or "mask_name" not in m:
            cx.err(w, "an object {\"mask_name\": \"T1\", \"index_list\": [1, ...]}")
            continue
        name = _octets(cx, w + ".mask_name", m["mask_name"])
        idx = m.get("index_list", [])
        if not isinstance(idx, list):
            cx.err(w + ".index_list", "a list of register_assignment positions (from 1)")
            idx = []
        good = []
        for k, x in enumerate(idx):
            if not _is_int(x) or not 1 <= x <= len(regs):
                cx.err("%s.index_list[%d]" % (w, k), "%r is not a position 1..%d of register_assignment"
                       % (x, len(regs)))
            else:
                good.append(x)
        if any(n == name for n, _i in masks):
            cx.err(w + ".mask_name", "%r twice" % name.decode("latin-1"))
        masks.append((name, bytes(good)))
    active = _octets(cx, "active_mask", cx.get("active_mask")) if cx.has("active_mask") else (
        masks[0][0] if masks else b"")
    if masks and not any(n == active for n, _i in masks):
        cx.err("active_mask", "%r is not a mask_name of mask_list" % active.decode("latin-1"))
    elif not masks and active:
        cx.err("active_mask", "mask_list is empty")
    longest_idx = max([len(i) for _n, i in masks] or [1])
    longest_name = max([len(n) for n, _i in masks] + [len(active), 1])
    param = (_room(cx, "max_registers", len(regs), len(regs) or 1, 255),
             _room(cx, "max_masks", len(masks), len(masks) or 1, 255),
             _room(cx, "max_indexes", longest_idx, longest_idx, 255),
             _room(cx, "max_name_length", longest_name, longest_name, 255))
    return (param, (tuple(regs), tuple(masks), active, _persist(cx)))


C.register(C.ClassSpec(
    6, 0, "register-activation", ("dlms_micro.cosem.tariff", "REGISTER_ACTIVATION"),
    ("logical_name", "register_assignment", "mask_list", "active_mask"),
    ("add_register", "add_mask", "delete_mask"), writable=(4,), compile=_checked(compile_register_activation),
    params=("register_assignment", "mask_list", "active_mask", "max_registers", "max_masks", "max_indexes",
            "max_name_length")))


# ------------------------------------------------------------ Script table (9)

SERVICES = {"write-attribute": 1, "execute-method": 2}


def _action(cx, where, a):
    # {"service", "target": "OBIS:index", "type", "value"} -> param action
    if not isinstance(a, dict):
        cx.err(where, "an object {\"service\": \"write-attribute\"|\"execute-method\", \"target\": \"OBIS:index\", "
                      "\"type\": ..., \"value\": ...}")
        return None
    for k in a:
        if k not in ("service", "target", "type", "value"):
            cx.err("%s.%s" % (where, k), "unknown key (service, target, type, value)")
    sv = SERVICES.get(a.get("service"))
    if sv is None:
        cx.err(where + ".service", "\"write-attribute\" or \"execute-method\", not %r" % (a.get("service"),))
        return None
    r = _split_ref(cx, where + ".target", a.get("target"), "attribute" if sv == 1 else "method")
    if r is None:
        return None
    ln = _obis(cx, where + ".target", r[0])
    if ln is None:
        return None
    cid = cx.target(ln)[0]
    spec = C.CLASSES.get(cid)
    index = r[1]
    if sv == 1:
        top = len(spec.attributes) if spec else 255
        if not 2 <= index <= top:
            cx.err(where + ".target", "%s (%s) has no attribute %d that can be written (2..%d)"
                   % (V.obis_text(ln), _class_name(cid), index, top))
            return None
    else:
        top = len(spec.methods) if spec else 255
        if not 1 <= index <= top:
            cx.err(where + ".target", "%s (%s) has no method %d%s" % (
                V.obis_text(ln), _class_name(cid), index, " (it has 1..%d)" % top if top else " (it has none)"))
            return None
    if "type" in a:
        t = a["type"]
        if t is None:  # no parameter at all
            return (sv, cid, ln, index, None)
        try:
            tag = V.type_tag(t)
        except V.Bad as e:
            cx.err(where + ".type", str(e))
            return None
        if tag == axdr.NULL_DATA:
            return (sv, cid, ln, index, b"\x00")
        try:
            return (sv, cid, ln, index, encoded_value(tag, a.get("value")))
        except (V.Bad, axdr.EncodeError, ValueError) as e:
            cx.err(where + ".value", str(e))
            return None
    if "value" in a:
        # an encoded element, tag included
        return (sv, cid, ln, index, _octets(cx, where + ".value", a["value"]) or None)
    if sv == 1:
        cx.err(where, "the value written: \"type\" and \"value\"")
        return None
    return (sv, cid, ln, index, b"\x0f\x00")  # a method's usual data: integer(0)


def compile_script_table(cx):
    scripts = []
    ids = set()
    for i, s in enumerate(_list(cx, "scripts")):
        w = "scripts[%d]" % i
        if not isinstance(s, dict) or set(s) - {"script_identifier", "actions"}:
            cx.err(w, "an object {\"script_identifier\": N, \"actions\": [...]}")
            continue
        sid = _int_of(cx, w + ".script_identifier", s.get("script_identifier"), 1, 0xFFFF)
        if sid in ids:
            cx.err(w + ".script_identifier", "%d twice" % sid)
        ids.add(sid)
        acts = s.get("actions", [])
        if not isinstance(acts, list):
            cx.err(w + ".actions", "a list of actions")
            acts = []
        out = []
        for k, a in enumerate(acts):
            x = _action(cx, "%s.actions[%d]" % (w, k), a)
            if x is not None:
                out.append(x)
        scripts.append((sid, tuple(out)))
    param = tuple(scripts)
    if not _grants(cx, 2, 2):
        if cx.has("scripts_room"):
            cx.err("scripts_room", "only for a table clients may write (scripts in the write list or access)")
        return param, None
    from dlms_micro.cosem import script

    need = len(_enc_scripts(script, param))
    room = _room(cx, "scripts_room", need, max(2 * need, 256))
    cx.ram += 2 * room  # the scripts and the scratch a SET checks into
    return (param, (room, _persist(cx)))


def _enc_scripts(script, scripts):
    buf = bytearray(64 + sum(32 + sum(16 + len(a[4] or b"") for a in acts) for _i, acts in scripts))
    return bytes(buf[: script.enc_scripts(buf, 0, scripts)])


C.register(C.ClassSpec(
    9, 0, "script-table", ("dlms_micro.cosem.script", "SCRIPT_TABLE"), ("logical_name", "scripts"), ("execute",),
    writable=(2,), compile=_checked(compile_script_table), params=("scripts", "scripts_room")))


# ------------------------------------------------------ Special days table (11)


def _special_days(cx):
    out = []
    seen = set()
    for i, e in enumerate(_list(cx, "entries")):
        w = "entries[%d]" % i
        if not isinstance(e, dict) or set(e) - {"index", "specialday_date", "day_id"}:
            cx.err(w, "an object {\"index\": N, \"specialday_date\": \"*-12-25\", \"day_id\": N}")
            continue
        idx = _int_of(cx, w + ".index", e.get("index"), 0, 0xFFFF)
        if idx in seen:
            cx.err(w + ".index", "%d twice" % idx)
        seen.add(idx)
        d = _parsed(cx, w + ".specialday_date", date5, e.get("specialday_date"), b"\xff\xff\xff\xff\xff")
        day = _int_of(cx, w + ".day_id", e.get("day_id"), 0, 255)
        out.append((idx, d, day))
    return out


def compile_special_days(cx):
    entries = _special_days(cx)
    param = (_room(cx, "max_entries", len(entries), 16, 0xFFFF),)
    cx.ram += 8 * param[0]
    return (param, (tuple(entries), _persist(cx)))


C.register(C.ClassSpec(
    11, 0, "special-days-table", ("dlms_micro.cosem.tariff", "SPECIAL_DAYS_TABLE"), ("logical_name", "entries"),
    ("insert", "delete"), writable=(2,), compile=_checked(compile_special_days), params=("entries", "max_entries")))


# --------------------------------------------------------- Image transfer (18)


def compile_image(cx):
    bs = cx.int("image_block_size", 200, 1, 0xFFFF)
    cap = cx.int("max_image_size", 64 * 1024, 1, 2**31 - 1)
    mid = cx.int("max_identifier_length", 64, 1, 255)
    en = _bool(cx, "image_transfer_enabled", True)
    cx.ram += (cap // bs + 8) // 8 + mid + 64  # the block bitmap, the identifier (blocks: the port's sink)
    return (None, (bs, cap, mid, 1 if en else 0, _persist(cx)))


C.register(C.ClassSpec(
    18, 0, "image-transfer", ("dlms_micro.cosem.image", "IMAGE_TRANSFER"),
    ("logical_name", "image_block_size", "image_transferred_blocks_status",
     "image_first_not_transferred_block_number", "image_transfer_enabled", "image_transfer_status",
     "image_to_activate_info"),
    ("image_transfer_initiate", "image_block_transfer", "image_verify", "image_activate"), writable=(5,),
    compile=_checked(compile_image),
    params=("image_block_size", "image_transfer_enabled", "max_image_size", "max_identifier_length")))


# ------------------------------------------------------ Activity calendar (20)

CALENDAR_PARTS = ("calendar_name", "season_profile", "week_profile_table", "day_profile_table")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _calendar_part(cx, base, default):
    # base, base_active, base_passive: both calendars start with one content
    keys = [k for k in (base, base + "_active", base + "_passive") if cx.has(k)]
    if not keys:
        return base, default
    v = cx.get(keys[0])
    for k in keys[1:]:
        if cx.get(k) != v:
            cx.err(k, "differs from %s: the active and passive calendars start with the same content (give "
                      "%s once)" % (keys[0], base))
    return keys[0], v


def compile_calendar(cx):
    k, name = _calendar_part(cx, "calendar_name", "")
    name = _octets(cx, k, name)
    k, seasons_in = _calendar_part(cx, "season_profile", [])
    seasons = []
    if not isinstance(seasons_in, list):
        cx.err(k, "a list of seasons")
        seasons_in = []
    for i, s in enumerate(seasons_in):
        w = "%s[%d]" % (k, i)
        if not isinstance(s, dict) or set(s) != {"season_profile_name", "season_start", "week_name"}:
            cx.err(w, "an object {\"season_profile_name\": ..., \"season_start\": \"*-04-01T00:00:00\", "
                      "\"week_name\": ...}")
            continue
        seasons.append((_octets(cx, w + ".season_profile_name", s["season_profile_name"]),
                        _parsed(cx, w + ".season_start", date_time12, s["season_start"], bytes(12)),
                        _octets(cx, w + ".week_name", s["week_name"])))
    k, weeks_in = _calendar_part(cx, "week_profile_table", [])
    weeks = []
    if not isinstance(weeks_in, list):
        cx.err(k, "a list of week profiles")
        weeks_in = []
    for i, wk in enumerate(weeks_in):
        w = "%s[%d]" % (k, i)
        if not isinstance(wk, dict) or set(wk) != {"week_profile_name"} | set(WEEKDAYS):
            cx.err(w, "an object {\"week_profile_name\": ..., \"monday\": day_id, ..., \"sunday\": day_id}")
            continue
        weeks.append((_octets(cx, w + ".week_profile_name", wk["week_profile_name"]),
                      tuple(_int_of(cx, "%s.%s" % (w, d), wk[d], 0, 255) for d in WEEKDAYS)))
    k, days_in = _calendar_part(cx, "day_profile_table", [])
    days = []
    if not isinstance(days_in, list):
        cx.err(k, "a list of day profiles")
        days_in = []
    for i, dp in enumerate(days_in):
        w = "%s[%d]" % (k, i)
        if not isinstance(dp, dict) or set(dp) != {"day_id", "day_schedule"} or not isinstance(
                dp["day_schedule"], list):
            cx.err(w, "an object {\"day_id\": N, \"day_schedule\": [{\"start_time\": \"07:00\", "
                      "\"script_logical_name\": ..., \"script_selector\": N}, ...]}")
            continue
        acts = []
        for j, a in enumerate(dp["day_schedule"]):
            wa = "%s.day_schedule[%d]" % (w, j)
            if not isinstance(a, dict) or set(a) != {"start_time", "script_logical_name", "script_selector"}:
                cx.err(wa, "an object {\"start_time\": \"07:00\", \"script_logical_name\": \"0.0.10.0.100.255\", "
                           "\"script_selector\": 1}")
                continue
            ln, sel = _script_ref(cx, wa, a)
            acts.append((_parsed(cx, wa + ".start_time", time4, a["start_time"], bytes(4)), ln, sel))
        days.append((_int_of(cx, w + ".day_id", dp["day_id"], 0, 255), tuple(acts)))
    # the references between the parts (checked again at each activation)
    week_names = set(n for n, _d in weeks)
    day_ids = set(i for i, _a in days)
    for i, s in enumerate(seasons):
        if s[2] not in week_names:
            cx.err("season_profile[%d].week_name" % i, "%r is not a week_profile_name of week_profile_table"
                   % s[2].decode("latin-1"))
    for i, wk in enumerate(weeks):
        for d, day in zip(WEEKDAYS, wk[1]):
            if day not in day_ids:
                cx.err("week_profile_table[%d].%s" % (i, d), "day_id %d is not in day_profile_table" % day)
    sd = cx.get("special_days_table")
    sd_ln = None
    if sd is not None:
        sd_ln = _obis(cx, "special_days_table", sd, (11,), "a special days table")
    else:
        sd_ln = _only_special_days(cx)
    if sd_ln is not None:
        obj = cx.target(sd_ln)[1]
        for i, e in enumerate(obj.get("entries", []) if isinstance(obj.get("entries"), list) else []):
            if isinstance(e, dict) and _is_int(e.get("day_id")) and e["day_id"] not in day_ids:
                cx.err("special_days_table", "%s entries[%d] names day_id %d, which is not in day_profile_table"
                       % (V.obis_text(sd_ln), i, e["day_id"]))
    from dlms_micro.cosem import tariff

    sizes = (len(tariff._enc_name(name)), len(tariff._enc_seasons(seasons)), len(tariff._enc_weeks(weeks)),
             len(tariff._enc_days(days)))
    param = (sd_ln,
             _room(cx, "calendar_name_room", sizes[0], 18),
             _room(cx, "season_profile_room", sizes[1], max(2 * sizes[1], 64)),
             _room(cx, "week_profile_table_room", sizes[2], max(2 * sizes[2], 64)),
             _room(cx, "day_profile_table_room", sizes[3], max(2 * sizes[3], 128)))
    cx.ram += 2 * sum(param[1:]) + max(param[1:])  # active and passive, the scratch
    _calendar_checks(cx, param, (tariff._enc_name(name), tariff._enc_seasons(seasons), tariff._enc_weeks(weeks),
                                 tariff._enc_days(days)))
    return (param, (name, tuple(seasons), tuple(weeks), tuple(days), _persist(cx)))


CALENDAR_RULES = (
    "",
    "seasons strictly in season_start order, month and day given (wildcards: the year only; day \"last\" / "
    "\"second-last\")",
    "day ids 0..255",
    "start times of a day strictly increasing, hour and minute given; day ids unique",
)


def _calendar_checks(cx, param, encoded):
    # each part as the calendar checks a client's SET of it (script
    # references aside: they were checked above)
    from dlms_micro.cosem import tariff

    cal = tariff.Calendar((None, 4, 4, 4, 4))
    cal.scratch = bytearray(max(param[1:]) + 64)
    for i, enc in enumerate(encoded):
        n = tariff._CHECKS[i](None, cal, axdr.Reader(enc))
        if n < 0:
            cx.err(CALENDAR_PARTS[i], "refused by the calendar's checks (%s)" % (CALENDAR_RULES[i] or "a name"))
        elif n > param[1 + i]:
            cx.err(CALENDAR_PARTS[i] + "_room", "%d bytes needed, %d given" % (n, param[1 + i]))


def _only_special_days(cx):
    # the device's one Special days table, when it has exactly one
    found = []
    for o in cx.dev.objects if isinstance(cx.dev.objects, list) else []:
        if isinstance(o, dict) and o.get("class") in ("special-days-table", 11):
            try:
                found.append(V.obis(o.get("obis")))
            except V.Bad:
                pass
    return found[0] if len(found) == 1 and cx.target(found[0]) is not None else None


C.register(C.ClassSpec(
    20, 0, "activity-calendar", ("dlms_micro.cosem.tariff", "ACTIVITY_CALENDAR"),
    ("logical_name", "calendar_name_active", "season_profile_active", "week_profile_table_active",
     "day_profile_table_active", "calendar_name_passive", "season_profile_passive", "week_profile_table_passive",
     "day_profile_table_passive", "activate_passive_calendar_time"),
    ("activate_passive_calendar",), writable=(6, 7, 8, 9, 10), compile=_checked(compile_calendar),
    params=tuple(p + s for p in CALENDAR_PARTS for s in ("", "_active", "_passive"))
    + ("special_days_table", "calendar_name_room", "season_profile_room", "week_profile_table_room",
       "day_profile_table_room")))


# ------------------------------------------------------- Register monitor (21)


def _monitored(cx):
    # monitored_value "OBIS:attribute" and the thresholds' type (the
    # definition's "type", else the monitored value's) -> (ref or None, tag)
    ref = None
    if cx.get("monitored_value") is None:
        cx.err("monitored_value", "required: \"OBIS:attribute\" of the value watched")
    else:
        ref = _value_ref(cx, "monitored_value", cx.get("monitored_value"))
    tag = _value_tag(cx, ref, "monitored_value")
    if tag not in V.RANGES and tag not in (23, 24):
        cx.err("type", "thresholds are numbers: an integer or float type, not %s" % V.TYPE_NAMES.get(tag, tag))
        tag = axdr.DOUBLE_LONG_UNSIGNED
    return ref, tag


def compile_register_monitor(cx):
    ref, tag = _monitored(cx)
    ths = tuple(_number(cx, "thresholds[%d]" % i, tag, t) for i, t in enumerate(_list(cx, "thresholds")))
    # Blue Book attribute 4 is "actions", but "actions" is the common key of
    # the associations that may call methods: the action sets go under
    # "action_sets"
    acts = []
    for i, a in enumerate(_list(cx, "action_sets")):
        w = "action_sets[%d]" % i
        if not isinstance(a, dict) or set(a) - {"action_up", "action_down"}:
            cx.err(w, "an object {\"action_up\": \"OBIS:selector\", \"action_down\": \"OBIS:selector\"}")
            continue
        acts.append((_script_ref(cx, w + ".action_up", a.get("action_up"), True),
                     _script_ref(cx, w + ".action_down", a.get("action_down"), True)))
    if len(acts) > len(ths):
        cx.err("action_sets", "%d action sets for %d thresholds" % (len(acts), len(ths)))
    m = _room(cx, "max_thresholds", max(len(ths), len(acts)), max(len(ths), len(acts), 4), 255)
    return ((tag, m), (ref, ths, tuple(acts)))


C.register(C.ClassSpec(
    21, 0, "register-monitor", ("dlms_micro.cosem.monitor", "REGISTER_MONITOR"),
    ("logical_name", "thresholds", "monitored_value", "actions"), writable=(2, 3, 4),
    compile=_checked(compile_register_monitor),
    params=("monitored_value", "thresholds", "action_sets", "type", "max_thresholds")))


# ------------------------------------------------- Single action schedule (22)


def compile_schedule(cx):
    if cx.get("executed_script") is None:
        cx.err("executed_script", "required: \"OBIS:selector\" of the script run")
        ln, sel = ZERO_LN, 0
    else:
        ln, sel = _script_ref(cx, "executed_script", cx.get("executed_script"))
    typ = cx.int("type", 1, 1, 5)
    times = []
    for i, t in enumerate(_list(cx, "execution_time")):
        w = "execution_time[%d]" % i
        if not isinstance(t, dict) or set(t) != {"time", "date"}:
            cx.err(w, "an object {\"time\": \"00:00:00\", \"date\": \"*-*-01\"}")
            continue
        times.append((_parsed(cx, w + ".time", time4, t["time"], bytes(4)),
                      _parsed(cx, w + ".date", date5, t["date"], b"\xff" * 5)))
    param = (_room(cx, "max_execution_times", len(times), max(len(times), 1), 255),)
    cx.ram += 13 * param[0]
    raw = cx.get("execution_time", [])
    if isinstance(raw, list) and len(times) == len(raw):
        from dlms_micro.cosem import schedule

        d = b"".join(t + dt for t, dt in times)
        if not schedule._times_ok(d, len(times), typ):
            cx.err("execution_time", "the times do not obey type %d (1: one time, date wildcards; 2/3: one time of "
                                     "day; 2/4: no wildcards)" % typ)
    return (param, (ln, sel, typ, tuple(times), _persist(cx)))


C.register(C.ClassSpec(
    22, 0, "single-action-schedule", ("dlms_micro.cosem.schedule", "SINGLE_ACTION_SCHEDULE"),
    ("logical_name", "executed_script", "type", "execution_time"), writable=(2, 3, 4), compile=_checked(compile_schedule),
    params=("executed_script", "type", "execution_time", "max_execution_times")))


# ------------------------------------------------------------- Push setup (40)

TRANSPORTS = {"tcp": 0, "udp": 1, "ftp": 2, "smtp": 3, "sms": 4, "hdlc": 5}
MESSAGES = {"a-xdr": 0}


def compile_push(cx):
    objs = []
    for i, r in enumerate(_list(cx, "push_object_list")):
        x = cx.ref(r, "push_object_list[%d]" % i)
        if x is None:
            continue
        if x[3]:
            cx.err("push_object_list[%d]" % i, "data_index must be 0 (whole attributes only)")
        objs.append((x[0], x[1], x[2], 0))
    sdm = cx.get("send_destination_and_method", {})
    service, dest, message = 0, None, 0
    if not isinstance(sdm, dict) or set(sdm) - {"transport_service", "destination", "message"}:
        cx.err("send_destination_and_method", "an object {\"transport_service\": \"tcp\", \"destination\": "
                                              "\"host:port\", \"message\": \"a-xdr\"}")
    else:
        t = sdm.get("transport_service", "tcp")
        service = TRANSPORTS.get(t, t)
        if service not in (0, 5):
            cx.err("send_destination_and_method.transport_service", "\"tcp\" or \"hdlc\" (the transports this "
                                                                    "stack sends on), not %r" % (t,))
            service = 0
        msg = sdm.get("message", "a-xdr")
        message = MESSAGES.get(msg, msg)
        if message != 0:
            cx.err("send_destination_and_method.message", "\"a-xdr\" (0), the only message built")
            message = 0
        if sdm.get("destination") is not None:
            dest = _octets(cx, "send_destination_and_method.destination", sdm["destination"])
    windows = []
    for i, w in enumerate(_list(cx, "communication_window")):
        wh = "communication_window[%d]" % i
        if not isinstance(w, dict) or set(w) != {"start_time", "end_time"}:
            cx.err(wh, "an object {\"start_time\": \"*-*-*T22:00:00\", \"end_time\": \"*-*-*T02:00:00\"}")
            continue
        windows.append((_parsed(cx, wh + ".start_time", date_time12, w["start_time"], bytes(12)),
                        _parsed(cx, wh + ".end_time", date_time12, w["end_time"], bytes(12))))
    rnd = cx.int("randomisation_start_interval", 0, 0, 0xFFFF)
    retries = cx.int("number_of_retries", 0, 0, 255)
    delay = cx.int("repetition_delay", 0, 0, 0xFFFF)
    period = cx.int("period", 0, 0, 2**31 - 1)
    dmax = _room(cx, "max_destination_length", len(dest or b""), 64, 255)
    wmax = _room(cx, "max_windows", len(windows), max(len(windows), 4), 255)
    param = (tuple(objs), period, dmax, wmax)
    prot = _push_protection(cx)
    if prot is not None:
        param += (prot,)
    cx.ram += dmax + 24 * wmax + 12
    return (param, (service, dest, message, rnd, retries, delay, tuple(windows)))


GENERAL_CIPHERING_KEYS = {"identified": 1, "agreed": 2}  # app/notify.GC_*


def _push_protection(cx):
    # "protection": {"general_ciphering": "identified" | "agreed",
    # "security_suite": 0..2, "recipient_system_title": 16 hex digits} ->
    # (kind, suite, recipient) for notify.Notifier, or None (the meter's
    # policy: general-glo-ciphering or plain)
    pr = cx.get("protection")
    if pr is None:
        return None
    keys = ("general_ciphering", "security_suite", "recipient_system_title")
    if not isinstance(pr, dict) or set(pr) - set(keys):
        cx.err("protection", "an object {\"general_ciphering\": \"identified\" or \"agreed\", "
                             "\"security_suite\": 0..2, \"recipient_system_title\": \"16 hex digits\"}")
        return None
    gc = pr.get("general_ciphering")
    kind = GENERAL_CIPHERING_KEYS.get(gc) if isinstance(gc, str) else None
    if kind is None:
        cx.err("protection.general_ciphering", "\"identified\" or \"agreed\", not %r"
               % (pr.get("general_ciphering"),))
        return None
    suite = pr.get("security_suite", 0)
    if not _is_int(suite) or suite not in (0, 1, 2):
        cx.err("protection.security_suite", "0, 1 or 2, not %r" % (suite,))
        return None
    served = {r[6] for r in cx.comp.roles if len(r) > 6}
    if suite and suite not in served:
        cx.err("protection.security_suite", "%d: no association of the definition uses suite %d (its keys)"
               % (suite, suite))
    title = pr.get("recipient_system_title")
    recipient = b""
    if title is not None:
        recipient = _octets(cx, "protection.recipient_system_title", {"hex": title} if isinstance(title, str)
                            else title)
        if len(recipient) != 8:
            cx.err("protection.recipient_system_title", "8 bytes (16 hex digits), not %d" % len(recipient))
    if kind == 2:
        if not suite:
            cx.err("protection.security_suite", "an agreed key needs security suite 1 or 2")
        if title is None:
            cx.err("protection.recipient_system_title", "required with an agreed key (whose key agreement key "
                                                        "the key file gives)")
    return (kind, suite, recipient)


C.register(C.ClassSpec(
    40, 0, "push-setup", ("dlms_micro.cosem.push", "PUSH_SETUP"),
    ("logical_name", "push_object_list", "send_destination_and_method", "communication_window",
     "randomisation_start_interval", "number_of_retries", "repetition_delay"),
    ("push",), writable=(3, 4, 5, 6, 7), compile=_checked(compile_push),
    params=("push_object_list", "send_destination_and_method", "communication_window",
            "randomisation_start_interval", "number_of_retries", "repetition_delay", "period",
            "max_destination_length", "max_windows", "protection")))


# ----------------------------------------------------------- Compact data (62)

CAPTURE_METHODS = {"invoke": 0, "on-read": 1}


def compile_compact(cx):
    cos = cx.get("capture_objects", [])
    if not isinstance(cos, list) or not cos:
        cx.err("capture_objects", "a non-empty list of \"OBIS:attribute[:data_index]\" references")
        cos = []
    cols = []
    for i, ref in enumerate(cos):
        w = "capture_objects[%d]" % i
        r = cx.ref(ref, w)
        if r is None:
            continue
        cid, ln, attr, di = r
        cols.append((cid, ln, attr, di, cx.width(ref, cid, ln, attr, w)))
    tid = cx.int("template_id", 0, 0, 255)
    cm = _enum(cx, "capture_method", CAPTURE_METHODS, "invoke", 1)
    cx.ram += 3 * sum(c[4] for c in cols) + 6
    return ((tuple(cols), tid, cm), ())


C.register(C.ClassSpec(
    62, 0, "compact-data", ("dlms_micro.cosem.compact", "COMPACT_DATA"),
    ("logical_name", "compact_buffer", "capture_objects", "template_id", "template_description", "capture_method"),
    ("reset", "capture"), writable=(), compile=_checked(compile_compact),
    params=("capture_objects", "template_id", "capture_method")))


# ----------------------------------------------------- Disconnect control (70)

CONTROL_STATES = {"disconnected": 0, "connected": 1, "ready-for-reconnection": 2}


def compile_disconnect(cx):
    mode = cx.int("control_mode", 1, 0, 6)
    st = _enum(cx, "control_state", CONTROL_STATES, "connected", 2)
    if mode == 0 and st != 1:
        cx.err("control_state", "control_mode 0 is always connected")
    relay = cx.int("relay_index", 0, 0, 255)
    return ((relay,), (mode, st, _persist(cx)))


C.register(C.ClassSpec(
    70, 0, "disconnect-control", ("dlms_micro.cosem.disconnect", "DISCONNECT_CONTROL"),
    ("logical_name", "output_state", "control_state", "control_mode"), ("remote_disconnect", "remote_reconnect"),
    writable=(4,), compile=_checked(compile_disconnect), params=("control_mode", "control_state", "relay_index")))


# ---------------------------------------------------------------- Limiter (71)


def compile_limiter(cx):
    ref, tag = _monitored(cx)
    normal = _number(cx, "threshold_normal", tag, cx.get("threshold_normal", 0))
    emergency = _number(cx, "threshold_emergency", tag, cx.get("threshold_emergency", 0))
    over = cx.int("min_over_threshold_duration", 0, 0, 2**32 - 1)
    under = cx.int("min_under_threshold_duration", 0, 0, 2**32 - 1)
    groups = tuple(_int_of(cx, "emergency_profile_group_id_list[%d]" % i, g, 0, 0xFFFF)
                   for i, g in enumerate(_list(cx, "emergency_profile_group_id_list")))
    # attribute 11 "actions" {action_over_threshold, action_under_threshold}:
    # its two items are keys of their own ("actions" is the common key of the
    # associations that may call methods)
    oa = _script_ref(cx, "action_over_threshold", cx.get("action_over_threshold"), True)
    ua = _script_ref(cx, "action_under_threshold", cx.get("action_under_threshold"), True)
    m = _room(cx, "max_group_ids", len(groups), max(len(groups), 4), 255)
    return ((tag, m), (ref, normal, emergency, over, under, oa, ua, groups))


C.register(C.ClassSpec(
    71, 0, "limiter", ("dlms_micro.cosem.monitor", "LIMITER"),
    ("logical_name", "monitored_value", "threshold_active", "threshold_normal", "threshold_emergency",
     "min_over_threshold_duration", "min_under_threshold_duration", "emergency_profile",
     "emergency_profile_group_id_list", "emergency_profile_active", "actions"),
    writable=(2, 3, 4, 5, 6, 7, 8, 9, 11), compile=_checked(compile_limiter),
    params=("monitored_value", "type", "threshold_normal", "threshold_emergency", "min_over_threshold_duration",
            "min_under_threshold_duration", "emergency_profile_group_id_list", "action_over_threshold",
            "action_under_threshold", "max_group_ids")))


# ---------------------------------------------------------------- Account (111)

PAYMENT_MODES = {"credit": 1, "prepayment": 2}
ACCOUNT_STATUS = {"new": 1, "active": 2, "closed": 3}
CURRENCY_UNITS = {"time": 0, "consumption": 1, "monetary": 2}


def compile_account(cx):
    ms = cx.get("account_mode_and_status", {})
    mode, status = 1, 2
    if not isinstance(ms, dict) or set(ms) - {"payment_mode", "account_status"}:
        cx.err("account_mode_and_status", "an object {\"payment_mode\": \"credit\"|\"prepayment\", "
                                          "\"account_status\": \"new\"|\"active\"|\"closed\"}")
    else:
        pm = ms.get("payment_mode", "credit")
        mode = PAYMENT_MODES.get(pm)
        if mode is None:
            cx.err("account_mode_and_status.payment_mode", "\"credit\" or \"prepayment\", not %r" % (pm,))
            mode = 1
        a = ms.get("account_status", "active")
        status = ACCOUNT_STATUS.get(a)
        if status is None:
            cx.err("account_mode_and_status.account_status", "\"new\", \"active\" or \"closed\", not %r" % (a,))
            status = 2
    credits = tuple(x for x in (_obis(cx, "credit_reference_list[%d]" % i, o, (112,), "a credit")
                                for i, o in enumerate(_list(cx, "credit_reference_list"))) if x is not None)
    charges = tuple(x for x in (_obis(cx, "charge_reference_list[%d]" % i, o, (113,), "a charge")
                                for i, o in enumerate(_list(cx, "charge_reference_list"))) if x is not None)
    if not credits:
        cx.err("credit_reference_list", "at least one credit (OBIS codes of Credit objects)")
    dc = None
    if cx.get("disconnect_control") is not None:
        dc = _obis(cx, "disconnect_control", cx.get("disconnect_control"), (70,), "a disconnect control")
    cur = cx.get("currency", {})
    currency = (b"", 0, 2)
    if not isinstance(cur, dict) or set(cur) - {"currency_name", "currency_scale", "currency_unit"}:
        cx.err("currency", "an object {\"currency_name\": \"EUR\", \"currency_scale\": -2, \"currency_unit\": "
                           "\"monetary\"}")
    else:
        u = cur.get("currency_unit", "monetary")
        u = CURRENCY_UNITS.get(u, u)
        currency = (_octets(cx, "currency.currency_name", cur.get("currency_name", "")),
                    _int_of(cx, "currency.currency_scale", cur.get("currency_scale", 0), -128, 127),
                    _int_of(cx, "currency.currency_unit", u, 0, 255))
    tg = []
    for i, t in enumerate(_list(cx, "token_gateway_configuration")):
        w = "token_gateway_configuration[%d]" % i
        if not isinstance(t, dict) or set(t) != {"credit_reference", "token_proportion"}:
            cx.err(w, "an object {\"credit_reference\": \"OBIS\", \"token_proportion\": percent}")
            continue
        ln = _obis(cx, w + ".credit_reference", t["credit_reference"], (112,), "a credit")
        if ln is not None and ln not in credits:
            cx.err(w + ".credit_reference", "%s is not in credit_reference_list" % V.obis_text(ln))
        tg.append((ln or ZERO_LN, _int_of(cx, w + ".token_proportion", t["token_proportion"], 0, 100)))
    if tg and sum(p for _l, p in tg) != 100:
        cx.err("token_gateway_configuration", "the token proportions add up to %d%%, not 100%%"
               % sum(p for _l, p in tg))
    low = cx.int("low_credit_threshold", 0, -(2**31), 2**31 - 1)
    clear = cx.int("clearance_threshold", 0, -(2**31), 2**31 - 1)
    nxt = cx.int("next_credit_available_threshold", 0, -(2**31), 2**31 - 1)
    param = (credits, charges, dc, currency, tuple(tg), cx.int("max_provision", 0, 0, 0xFFFF),
             cx.int("max_provision_period", 0, 0, 2**32 - 1))
    return (param, (mode, status, low, clear, nxt, _persist(cx)))


C.register(C.ClassSpec(
    111, 0, "account", ("dlms_micro.cosem.prepay", "ACCOUNT"),
    ("logical_name", "account_mode_and_status", "current_credit_in_use", "current_credit_status",
     "available_credit", "amount_to_clear", "clearance_threshold", "aggregated_debt", "credit_reference_list",
     "charge_reference_list", "credit_charge_configuration", "token_gateway_configuration",
     "account_activation_time", "account_closure_time", "currency", "low_credit_threshold",
     "next_credit_available_threshold", "max_provision", "max_provision_period"),
    ("activate_account", "close_account", "reset_account"), writable=(2, 7, 16, 17), compile=_checked(compile_account),
    params=("account_mode_and_status", "credit_reference_list", "charge_reference_list", "disconnect_control",
            "currency", "token_gateway_configuration", "low_credit_threshold", "clearance_threshold",
            "next_credit_available_threshold", "max_provision", "max_provision_period")))


# ----------------------------------------------------------------- Credit (112)

CREDIT_TYPES = {"token": 0, "reserved": 1, "emergency": 2, "time-based": 3, "consumption-based": 4}
CREDIT_STATUS = {"enabled": 0, "selectable": 1, "invoked": 2, "in-use": 3, "exhausted": 4}


def _bits(cx, key, n):
    # a bit-string of n bits ("10001", bit 0 first) -> its int (bit 0 = 0x80)
    v = cx.get(key, "0" * n)
    if isinstance(v, str) and len(v) == n and set(v) <= set("01"):
        x = 0
        for i, c in enumerate(v):
            if c == "1":
                x |= 0x80 >> i
        return x
    cx.err(key, "a bit-string of %d bits, bit 0 first (e.g. %r), not %r" % (n, "1" + "0" * (n - 1), v))
    return 0


def compile_credit(cx):
    dl = (-(2**31), 2**31 - 1)
    ct = _enum(cx, "credit_type", CREDIT_TYPES, "token", 4)
    conf = _bits(cx, "credit_configuration", 5)
    period = None
    if cx.get("period") is not None:
        period = _parsed(cx, "period", date_time12, cx.get("period"), None)
    args = (cx.int("current_credit_amount", 0, *dl), _enum(cx, "credit_status", CREDIT_STATUS, "enabled", 4),
            cx.int("priority", 1, 1, 255), cx.int("warning_threshold", 0, *dl), cx.int("limit", 0, *dl),
            cx.int("preset_credit_amount", 0, *dl), cx.int("credit_available_threshold", 0, *dl))
    return ((ct, conf, period), args)


C.register(C.ClassSpec(
    112, 0, "credit", ("dlms_micro.cosem.prepay", "CREDIT"),
    ("logical_name", "current_credit_amount", "credit_type", "priority", "warning_threshold", "limit",
     "credit_configuration", "credit_status", "preset_credit_amount", "credit_available_threshold", "period"),
    ("update_amount", "set_amount_to_value", "invoke_credit"), writable=(4, 5, 6, 9, 10), compile=_checked(compile_credit),
    params=("current_credit_amount", "credit_type", "priority", "warning_threshold", "limit",
            "credit_configuration", "credit_status", "preset_credit_amount", "credit_available_threshold",
            "period")))


# ----------------------------------------------------------------- Charge (113)

CHARGE_TYPES = {"consumption-based-collection": 0, "time-based-collection": 1,
                "payment-event-based-collection": 2}


def compile_charge(cx):
    ct = _enum(cx, "charge_type", CHARGE_TYPES, "consumption-based-collection", 2)
    if ct != 0:
        cx.err("charge_type", "only consumption-based-collection is implemented")
    uc = cx.get("unit_charge_active")
    commodity, cs, ps, index, price = (3, ZERO_LN, 2), 0, 0, b"", 0
    keys = {"commodity", "commodity_scale", "price_scale", "charge_table"}
    if not isinstance(uc, dict) or set(uc) != keys:
        cx.err("unit_charge_active", "required, an object {\"commodity\": \"OBIS:attribute\", \"commodity_scale\": "
                                     "N, \"price_scale\": N, \"charge_table\": [{\"index\": ..., "
                                     "\"charge_per_unit\": N}]}")
    else:
        ref = _value_ref(cx, "unit_charge_active.commodity", uc["commodity"])
        if ref is not None:
            commodity = ref
        cs = _int_of(cx, "unit_charge_active.commodity_scale", uc["commodity_scale"], -128, 127)
        ps = _int_of(cx, "unit_charge_active.price_scale", uc["price_scale"], -128, 127)
        tb = uc["charge_table"]
        if not isinstance(tb, list) or len(tb) != 1 or not isinstance(tb[0], dict) or set(tb[0]) != {
                "index", "charge_per_unit"}:
            cx.err("unit_charge_active.charge_table", "one element {\"index\": {\"hex\": \"01\"}, "
                                                      "\"charge_per_unit\": N} (one rate: tariff-indexed prices "
                                                      "are not implemented)")
        else:
            index = _octets(cx, "unit_charge_active.charge_table[0].index", tb[0]["index"])
            price = _int_of(cx, "unit_charge_active.charge_table[0].charge_per_unit", tb[0]["charge_per_unit"],
                            -32768, 32767)
    dl = (-(2**31), 2**31 - 1)
    param = (ct, cx.int("priority", 1, 0, 255), commodity, cs, ps, index, _bits(cx, "charge_configuration", 2),
             cx.int("proportion", 100, 0, 0xFFFF), cx.int("period", 0, 0, 2**32 - 1))
    return (param, (price, cx.int("total_amount_paid", 0, *dl), cx.int("total_amount_remaining", 0, *dl)))


C.register(C.ClassSpec(
    113, 0, "charge", ("dlms_micro.cosem.prepay", "CHARGE"),
    ("logical_name", "total_amount_paid", "charge_type", "priority", "unit_charge_active", "unit_charge_passive",
     "unit_charge_activation_time", "period", "charge_configuration", "last_collection_time",
     "last_collection_amount", "total_amount_remaining", "proportion"),
    ("update_unit_charge", "activate_passive_unit_charge", "collect", "update_total_amount_remaining",
     "set_total_amount_remaining"), writable=(), compile=_checked(compile_charge),
    params=("charge_type", "priority", "unit_charge_active", "charge_configuration", "proportion", "period",
            "total_amount_paid", "total_amount_remaining")))


# ---------------------------------------------------------- Token gateway (115)


def compile_token_gateway(cx):
    acc = cx.get("account")
    ln = None
    if acc is None:
        cx.err("account", "required: the OBIS code of the Account the tokens credit")
    else:
        ln = _obis(cx, "account", acc, (111,), "an account")
    return ((ln or ZERO_LN,), (_persist(cx),))


C.register(C.ClassSpec(
    115, 0, "token-gateway", ("dlms_micro.cosem.token_gateway", "TOKEN_GATEWAY"),
    ("logical_name", "token", "token_time", "token_description", "token_delivery_method", "token_status"),
    ("enter",), writable=(), compile=_checked(compile_token_gateway), params=("account",)))


# capture-object widths of these classes' attributes (profile rows, compact
# data): (class id, attribute) -> bytes
C.FIXED_WIDTHS.update({
    (5, 8): _profile.field_width(axdr.DOUBLE_LONG_UNSIGNED),
    (5, 9): _profile.field_width(axdr.LONG_UNSIGNED),
    (70, 2): _profile.field_width(axdr.BOOLEAN),
    (70, 3): _profile.field_width(axdr.ENUM),
    (70, 4): _profile.field_width(axdr.ENUM),
    (112, 2): _profile.field_width(axdr.DOUBLE_LONG),
    (111, 5): _profile.field_width(axdr.DOUBLE_LONG),
    (113, 2): _profile.field_width(axdr.DOUBLE_LONG),
    (18, 6): _profile.field_width(axdr.ENUM),
})
