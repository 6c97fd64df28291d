# Per-class compilers of the definition format: for each interface class its
# names (class, attributes, methods), the handler, the attributes writable by
# default, and compile(obj, cx) -> (param, init args or None). cx is the
# compiler's per-object context (compiler.ObjectContext): cx.get(key,
# default), cx.need(key), cx.err(...), cx.typed_value(), cx.ref(text), ...
#
# init args are what dlms_micro.meterdef.state.make takes for the class; None:
# the object has no state slots. register(spec) adds a class (more modules
# register theirs: see compiler.CLASS_MODULES).

from dlms_micro import axdr
from dlms_micro.cosem import clock as _clock
from dlms_micro.cosem import profile as _profile
from dlms_micro_cpython.meterdef import values as V

CLASSES = {}  # class id -> ClassSpec
BY_NAME = {}  # name -> class id


class ClassSpec:
    def __init__(self, class_id, version, name, handler, attributes, methods=(), writable=(), compile=None,
                 state_keys=(), params=()):
        self.class_id = class_id
        self.version = version
        self.name = name
        self.handler = handler  # (module, attribute)
        self.attributes = attributes  # names of attributes 1..n
        self.methods = methods  # names of methods 1..m
        self.writable = writable  # attribute ids writable by the `write` list
        self.compile = compile
        # the keys the class takes beyond the common ones (validation)
        self.params = tuple(params)

    def handler_instance(self):
        import importlib

        return getattr(importlib.import_module(self.handler[0]), self.handler[1])


def register(spec):
    CLASSES[spec.class_id] = spec
    BY_NAME[spec.name] = spec.class_id


# ---------------------------------------------------------------- Data (1)

VALUE_KEYS = ("type", "value", "min", "max", "min_length", "max_length")


def _bound(cx, key):
    # an optional integer bound (found by fuzzing: a string here raised
    # TypeError deep in the value check instead of naming the key)
    v = cx.get(key)
    if v is None or (isinstance(v, int) and not isinstance(v, bool)):
        return v
    cx.err(key, "an integer, not %r" % (v,))
    return None


def _bounds(cx, tag):
    if tag in V.RANGES:
        return _bound(cx, "min"), _bound(cx, "max")
    if tag in (axdr.OCTET_STRING, axdr.VISIBLE_STRING, 12):
        return _bound(cx, "min_length"), _bound(cx, "max_length")
    return None, None


def compile_data(cx):
    if cx.drive == "invocation-counter":
        cx.handler = ("dlms_micro.cosem.security_setup", "INVOCATION_COUNTER")
        return None, None
    if cx.get("type") is None:
        if cx.has("value"):
            raw = cx.octets("value")  # a complete encoded element, tag included
            return None, (raw,)
        return None, (None,)
    tag = cx.type_tag()
    lo, hi = _bounds(cx, tag)
    v = cx.typed_value(tag, lo, hi)
    if tag in V.STRINGS and hi is None and v is not None and not cx.constant:
        hi = max(len(v), 16) if tag != axdr.BIT_STRING else None
    if cx.constant:
        # read-only, nothing drives it: the value is part of the frozen table
        return (tag, 0 if lo is None else lo, hi if hi is not None else (len(v) if isinstance(v, bytes) else 0), v), None
    if tag == axdr.BIT_STRING:
        return (tag, len(v) * 8 if v else 0), (v,)
    if lo is None and hi is None:
        return (tag,), (v,)
    if lo is None:
        return (tag, hi), (v,)
    return (tag, lo, hi if hi is not None else V.RANGES.get(tag, (0, 0xFFFF))[1]), (v,)


register(ClassSpec(1, 0, "data", ("dlms_micro.cosem.data", "DATA"), ("logical_name", "value"), writable=(2,),
                   compile=compile_data, params=VALUE_KEYS))


# --------------------------------------------------- Register (3), Extended (4)

REGISTER_KEYS = VALUE_KEYS + ("scaler", "unit")


def _scaler_unit(cx):
    s = cx.get("scaler", 0)
    if isinstance(s, bool) or not isinstance(s, int) or not -128 <= s <= 127:
        cx.err("scaler", "an integer -128..127, not %r" % (s,))
        s = 0
    try:
        u = V.unit(cx.get("unit"))
    except V.Bad as e:
        cx.err("unit", str(e))
        u = 255
    return s, u


def compile_register(cx):
    s, u = _scaler_unit(cx)
    tag = cx.type_tag(default=axdr.DOUBLE_LONG_UNSIGNED)
    v = cx.typed_value(tag, *_bounds(cx, tag), default=0)
    return (s, u, tag), (v,)


def compile_extended_register(cx):
    s, u = _scaler_unit(cx)
    tag = cx.type_tag(default=axdr.DOUBLE_LONG_UNSIGNED)
    v = cx.typed_value(tag, *_bounds(cx, tag), default=0)
    st_tag = V.TYPES.get(cx.get("status_type", "unsigned"))
    if st_tag is None:
        cx.err("status_type", "unknown type %r" % cx.get("status_type"))
        st_tag = axdr.UNSIGNED
    status = cx.get("status", 0)
    try:
        status = V.value(st_tag, status)
    except V.Bad as e:
        cx.err("status", str(e))
    return (s, u, tag, st_tag), (v, status)


register(ClassSpec(3, 0, "register", ("dlms_micro.cosem.register", "REGISTER"),
                   ("logical_name", "value", "scaler_unit"), ("reset",), writable=(2,),
                   compile=compile_register, params=REGISTER_KEYS))
register(ClassSpec(4, 0, "extended-register", ("dlms_micro.cosem.register", "EXTENDED_REGISTER"),
                   ("logical_name", "value", "scaler_unit", "status", "capture_time"), ("reset",), writable=(2,),
                   compile=compile_extended_register, params=REGISTER_KEYS + ("status", "status_type")))


# ------------------------------------------------------ Profile generic (7)


def compile_profile(cx):
    period = cx.int("capture_period", 0, 0, 2**32 - 1)
    entries = cx.int("profile_entries", None, 1, 1000000)
    cos = cx.get("capture_objects", [])
    if not isinstance(cos, list) or not cos:
        cx.err("capture_objects", "a non-empty list of \"OBIS:attribute\" references")
        cos = []
    cols = []
    for i, ref in enumerate(cos):
        r = cx.ref(ref, "capture_objects[%d]" % i)
        if r is None:
            continue
        cid, ln, attr, di = r
        w = cx.width(ref, cid, ln, attr, "capture_objects[%d]" % i)
        if di:
            cx.err("capture_objects[%d]" % i, "data_index must be 0 for a profile generic here (whole attribute)")
        cols.append((cid, ln, attr, di, w))
    sm = cx.get("sort_method", "fifo")
    if sm not in ("fifo", 1):
        cx.err("sort_method", "only \"fifo\" is supported")
    persist = 1 if cx.get("persist", True) else 0
    page_rows = cx.int("page_rows", 0, 0, 4096)
    if entries is None:
        entries = 1
    cx.ram += entries * sum(c[4] for c in cols)
    return (tuple(cols), period, entries), (persist, page_rows)


register(ClassSpec(7, 1, "profile-generic", ("dlms_micro.cosem.profile", "PROFILE_GENERIC"),
                   ("logical_name", "buffer", "capture_objects", "capture_period", "sort_method", "sort_object",
                    "entries_in_use", "profile_entries"), ("reset", "capture"), writable=(4,),
                   compile=compile_profile,
                   params=("capture_period", "profile_entries", "capture_objects", "sort_method", "page_rows")))


# ----------------------------------------------------------------- Clock (8)

CLOCK_BASES = {"not-defined": 0, "internal-crystal": 1, "mains-50hz": 2, "mains-60hz": 3, "gps": 4,
               "radio-controlled": 5}


def compile_clock(cx):
    tz = cx.int("time_zone", 0, -720, 720)
    dev = cx.int("daylight_savings_deviation", 60, -120, 120)
    enabled = cx.get("daylight_savings_enabled", False)
    if not isinstance(enabled, bool):
        cx.err("daylight_savings_enabled", "true or false")
        enabled = False
    begin = cx.date_time("daylight_savings_begin", _clock.EU_DST_BEGIN)
    end = cx.date_time("daylight_savings_end", _clock.EU_DST_END)
    base = cx.get("clock_base", "internal-crystal")
    if base in CLOCK_BASES:
        base = CLOCK_BASES[base]
    elif not (isinstance(base, int) and 0 <= base <= 5):
        cx.err("clock_base", "one of %s" % ", ".join(CLOCK_BASES))
        base = 1
    flags = _clock.FLAG_EAST_POSITIVE if cx.get("deviation_east_positive", False) else 0
    param = (base, 0, flags) if (base != 1 or flags) else None
    status = cx.int("status", 0, 0, 255)
    return param, (tz, begin, end, dev, 1 if enabled else 0, status)


register(ClassSpec(8, 0, "clock", ("dlms_micro.cosem.clock", "CLOCK"),
                   ("logical_name", "time", "time_zone", "status", "daylight_savings_begin",
                    "daylight_savings_end", "daylight_savings_deviation", "daylight_savings_enabled",
                    "clock_base"),
                   ("adjust_to_quarter", "adjust_to_measuring_period", "adjust_to_minute",
                    "adjust_to_preset_time", "preset_adjusting_time", "shift_time"),
                   writable=(2, 3, 5, 6, 7, 8), compile=compile_clock,
                   params=("time_zone", "daylight_savings_begin", "daylight_savings_end",
                           "daylight_savings_deviation", "daylight_savings_enabled", "clock_base", "status",
                           "deviation_east_positive")))


# ------------------------------------------------------- Association LN (15)


def compile_association(cx):
    # param (role, security_setup_ln): role -1 the current association
    role = cx.get("association")
    if role is None:
        idx = -1
    else:
        idx = cx.role_index(role, "association")
    return (idx, cx.security_setup_ln()), None


register(ClassSpec(15, 1, "association-ln", ("dlms_micro.cosem.association_ln", "ASSOCIATION_LN"),
                   ("logical_name", "object_list", "associated_partners_id", "application_context_name",
                    "xDLMS_context_info", "authentication_mechanism_name", "secret", "association_status",
                    "security_setup_reference"),
                   ("reply_to_HLS_authentication", "change_HLS_secret", "add_object", "remove_object"),
                   writable=(), compile=compile_association, params=("association",)))


# -------------------------------------------------------- SAP assignment (17)


def compile_sap(cx):
    return cx.sap_list(), None


register(ClassSpec(17, 0, "sap-assignment", ("dlms_micro.cosem.sap", "SAP_ASSIGNMENT"),
                   ("logical_name", "SAP_assignment_list"), ("connect_logical_device",), compile=compile_sap))


# -------------------------------------------- IEC local port setup (19)

BAUDS = {300: 0, 600: 1, 1200: 2, 2400: 3, 4800: 4, 9600: 5, 19200: 6, 38400: 7, 57600: 8, 115200: 9}


def _baud(cx, key, default):
    b = cx.get(key, default)
    if b in BAUDS:
        return BAUDS[b]
    cx.err(key, "a baud rate (%s)" % ", ".join(str(k) for k in BAUDS))
    return BAUDS[default]


def compile_local_port(cx):
    modes = {"iec-62056-21": 0, "hdlc": 1, "not-specified": 2}
    mode = cx.get("default_mode", "iec-62056-21")
    if mode not in modes:
        cx.err("default_mode", "one of %s" % ", ".join(modes))
        mode = "iec-62056-21"
    rt = cx.get("response_time", 20)
    if rt not in (20, 200):
        cx.err("response_time", "20 or 200 (ms)")
        rt = 20
    s = []
    for k in ("device_address", "pass_p1", "pass_p2", "pass_w5"):
        v = cx.get(k, "")
        try:
            b = V.octets(v, k)
        except V.Bad as e:
            cx.err(k, str(e))
            b = b""
        if len(b) > 32:
            cx.err(k, "32 bytes at most")
            b = b[:32]
        s.append(b)
    args = (modes[mode], _baud(cx, "default_baud", 300), _baud(cx, "proposed_baud", 9600), 0 if rt == 20 else 1,
            s[0], s[1], s[2], s[3])
    return (_baud(cx, "max_baud", 9600),), args


register(ClassSpec(19, 1, "iec-local-port-setup", ("dlms_micro.cosem.local_port", "IEC_LOCAL_PORT_SETUP"),
                   ("logical_name", "default_mode", "default_baud", "prop_baud", "response_time", "device_addr",
                    "pass_p1", "pass_p2", "pass_w5"), writable=(2, 3, 4, 5, 6, 7, 8, 9),
                   compile=compile_local_port,
                   params=("default_mode", "default_baud", "proposed_baud", "response_time", "device_address",
                           "pass_p1", "pass_p2", "pass_w5", "max_baud")))


# ------------------------------------------------- IEC HDLC setup (23)


def compile_hdlc_setup(cx):
    h = cx.hdlc
    speed = cx.get("communication_speed", h["communication_speed"])
    if speed not in BAUDS:
        cx.err("communication_speed", "a baud rate (%s)" % ", ".join(str(k) for k in BAUDS))
        speed = 9600
    win = cx.int("window_size", h["window_size"], 1, 7)
    mi = cx.int("max_info_field_length", h["max_info_field_length"], 32, 2030)
    args = (BAUDS[speed], win, win, mi, mi, cx.int("inter_octet_timeout", h["inter_octet_timeout"], 20, 6000),
            cx.int("inactivity_timeout", h["inactivity_timeout"], 0, 0xFFFF), cx.physical_address)
    return None, args


register(ClassSpec(23, 1, "iec-hdlc-setup", ("dlms_micro.cosem.hdlc_setup", "IEC_HDLC_SETUP"),
                   ("logical_name", "comm_speed", "window_size_transmit", "window_size_receive",
                    "max_info_field_length_transmit", "max_info_field_length_receive",
                    "inter_octet_time_out", "inactivity_time_out", "device_address"),
                   writable=(2, 3, 4, 5, 6, 7, 8), compile=compile_hdlc_setup,
                   params=("communication_speed", "window_size", "max_info_field_length", "inter_octet_timeout",
                           "inactivity_timeout")))


# ------------------------------------------------------- Security setup (64)


def compile_security_setup(cx):
    return None, None


register(ClassSpec(64, 1, "security-setup", ("dlms_micro.cosem.security_setup", "SECURITY_SETUP"),
                   ("logical_name", "security_policy", "security_suite", "client_system_title",
                    "server_system_title", "certificates"),
                   ("security_activate", "key_transfer", "key_agreement", "generate_key_pair",
                    "generate_certificate_request", "import_certificate", "export_certificate",
                    "remove_certificate"),
                   compile=compile_security_setup))

# Widths of capture-object values that are not a typed value of the object
# itself: (class id, attribute) -> bytes a profile row keeps
FIXED_WIDTHS = {
    (8, 2): _profile.CLOCK_WIDTH,
    (4, 5): _profile.CLOCK_WIDTH,  # capture_time
    (5, 6): _profile.CLOCK_WIDTH,  # capture_time
    (5, 7): _profile.CLOCK_WIDTH,  # start_time_current
    (3, 3): 7,  # scaler_unit: structure {integer, enum}
    (4, 3): 7,
    (5, 4): 7,
}
