# Script table (class_id 9, version 0), Blue Book 4.5.2, and the script
# executor other objects call (Single action schedule, Activity calendar,
# Register monitor, Limiter...).
#
#   attribute 2 scripts   array of script ::= structure {
#                           script_identifier long-unsigned,
#                           actions array of action_specification }
#                         action_specification ::= structure {
#                           service_id enum (1 write attribute,
#                                            2 execute specific method),
#                           class_id long-unsigned,
#                           logical_name octet-string,
#                           index integer (attribute / method number),
#                           parameter CHOICE (the value written, or the
#                                     method's data) }
#   method 1 execute (long-unsigned script_identifier)
#
# Script identifier 0 is reserved: executing it runs the null script (does
# nothing, succeeds). An identifier the table does not hold: OTHER_REASON;
# a parameter that is no integer: TYPE_UNMATCHED.
#
# param: the scripts, constant data:
#     ((script_identifier, actions), ...)
#     actions: ((service_id, class_id, logical_name (6 bytes), index,
#                parameter), ...)
#     parameter: the A-XDR encoding of the Data element, tag included
#                (bytes, e.g. b"\x09\x01\x01" octet-string 01, b"\x0f\x00"
#                integer 0), or None / b"" for no parameter (a method
#                called without data).
#   action() builds one for you from readable values.
# state: none for a static table (slot -1: SET of scripts is
#   READ_WRITE_DENIED; the manufacturer defines them, as for the tariff
#   scripts of 0.0.10.0.100.255). A writable table has 1 slot holding a
#   ScriptStore(room, param) made at boot: the encoding of the scripts in
#   `room` preallocated bytes, which a SET of scripts replaces whole. The SET
#   is checked action by action: every target must be an object of the
#   table with that class (an undefined object: OTHER_REASON), the index an
#   attribute 2.. / method 1.. of its class, service_id 1 or 2 (else
#   OTHER_REASON), the whole within the room (else OTHER_REASON), the shape
#   right (else TYPE_UNMATCHED); while a script runs, TEMPORARY_FAILURE.
#   With two scripts of one identifier, the first runs. ScriptStore(room,
#   param, storage, key) keeps the scripts a client set across restarts
#   (class Stored: restored at boot, written after each SET).
# EXECUTION (execute(meter, table_ln, script_id)). The actions run in order,
# each through its target object's own handler (ic.set for a write, ic.action
# for a method) with a Context whose reader sits at the stored parameter, as
# a client's SET/ACTION would, but without access rights: the meter acts on
# itself (ctx.assoc is None). The Blue Book describes a script as a list of
# actions carried out in turn; we found no rule there for an action that
# fails, nor for undoing the others. Here an action that fails (target not
# in the table, attribute 1 or an index out of the class's range, a refusal
# by the handler, an exception) is logged through meter.log when it is set
# and skipped, and the rest of the script still runs: one broken action (say
# a register deleted from a newer table) does not stop a tariff switch.
# Scripts may execute other scripts (an action calling a Script table's
# execute) down to MAX_DEPTH levels; deeper calls (a script that calls
# itself) are refused and logged. Running a script allocates nothing but
# what the target handlers allocate and the log messages of failures.

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.errors import EncodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 1  # used by a writable table only (E_SLOT -1: static)

# service_id of an action_specification
WRITE_ATTRIBUTE = const(1)
EXECUTE_METHOD = const(2)

# action fields
A_SERVICE = const(0)
A_CLASS = const(1)
A_LN = const(2)
A_INDEX = const(3)
A_PARAM = const(4)

MAX_DEPTH = const(4)  # nested script executions
SCRATCH = const(64)  # room for a method's return data (discarded)

_ctxs = []  # one Context per nesting depth, made on first use
_walkers = []  # and one Reader walking a ScriptStore's scripts
_depth = 0


def action(service_id, class_id, logical_name, index, tag=None, value=None):
    # An action tuple for param, its parameter encoded from (tag, value)
    # with axdr's generic encoder (allocates: call it when building tables).
    # tag None: no parameter.
    if tag is None:
        return (service_id, class_id, logical_name, index, None)
    return (service_id, class_id, logical_name, index, axdr.encoded(tag, value))


def _log(meter, msg):
    if meter.log is not None:
        meter.log(msg)


def _ln(ln):
    return "%d.%d.%d.%d.%d.%d" % (ln[0], ln[1], ln[2], ln[3], ln[4], ln[5])


def _ln_at(b, p):
    return "%d.%d.%d.%d.%d.%d" % (b[p], b[p + 1], b[p + 2], b[p + 3], b[p + 4], b[p + 5])


def _context(meter, depth):
    while len(_ctxs) <= depth:
        c = base.Context(meter)
        c.r = axdr.Reader()
        c.buf = bytearray(SCRATCH)
        _ctxs.append(c)
        _walkers.append(axdr.Reader())
    c = _ctxs[depth]
    c.meter = meter
    return c


def find_script(obj, script_id):
    # The actions of script script_id in the param of Script table entry
    # obj (the static form), or None.
    for s in obj[base.E_PARAM]:
        if s[0] == script_id:
            return s[1]
    return None


def _seek(store, w, script_id):
    # Position reader w at the first action of script script_id of a
    # ScriptStore: the number of actions, or -1.
    w.reset(store.buf, 0, store.n)
    for i in range(w.array()):
        w.structure()
        sid = w.long_unsigned()
        k = w.array()
        if sid == script_id:
            return k
        for j in range(k):
            w.skip()
    return -1


def has_script(meter, obj, script_id):
    # Does Script table entry obj hold script script_id (0, the null
    # script, always)?
    if script_id == 0:
        return True
    slot = obj[base.E_SLOT]
    if slot < 0:
        return find_script(obj, script_id) is not None
    _context(meter, 0)
    return _seek(meter.state[slot], _walkers[0], script_id) >= 0


def execute(meter, table_ln, script_id):
    # Run script script_id of the Script table named table_ln (6 bytes,
    # found with meter.find(9, table_ln, 0)). True when the script ran
    # (whether or not each action succeeded: failures are logged); False
    # when there is no such table or script (logged), or when nested deeper
    # than MAX_DEPTH.
    obj = meter.find(9, table_ln, 0)
    if obj is None:
        _log(meter, "script: no script table %s" % _ln(table_ln))
        return False
    return run(meter, obj, script_id)


def run(meter, obj, script_id):
    # execute() for the Script table entry obj.
    global _depth
    if script_id == 0:
        return True  # the null script
    if _depth >= MAX_DEPTH:
        _log(meter, "script: %s script %d nested too deep" % (_ln(obj[base.E_LN]), script_id))
        return False
    ctx = _context(meter, _depth)
    slot = obj[base.E_SLOT]
    if slot < 0:
        acts = find_script(obj, script_id)
        k = -1 if acts is None else len(acts)
    else:
        store = meter.state[slot]
        w = _walkers[_depth]
        k = _seek(store, w, script_id)
    if k < 0:
        _log(meter, "script: %s has no script %d" % (_ln(obj[base.E_LN]), script_id))
        return False
    _depth += 1
    try:
        for i in range(k):
            if slot < 0:
                a = acts[i]
                p = a[A_PARAM]
                if p is None:
                    p = b""
                sv = a[A_SERVICE]
                cid = a[A_CLASS]
                lb = a[A_LN]
                lp = 0
                index = a[A_INDEX]
                ps = 0
                pe = len(p)
            else:
                w.structure()
                sv = w.enum()
                cid = w.long_unsigned()
                w.octet_string()
                lb = p = store.buf
                lp = w.mark
                index = w.integer()
                ps = w.pos
                w.skip()
                pe = w.pos
            res = _do(meter, ctx, sv, cid, lb, lp, index, p, ps, pe)
            if res != base.SUCCESS:
                _log(meter, "script: %s script %d: service %d on %d/%s index %d failed (%d)"
                     % (_ln(obj[base.E_LN]), script_id, sv, cid, _ln_at(lb, lp), index, res))
    finally:
        _depth -= 1
    return True


def _do(meter, ctx, sv, cid, lb, lp, index, p, ps, pe):
    # Carry out one action (service sv on index of object cid / lb[lp:lp+6]
    # with the parameter p[ps:pe]); its data-access-result / action-result.
    target = meter.find(cid, lb, lp)
    if target is None:
        return base.OBJECT_UNDEFINED
    ic = meter.handlers[target[base.E_IC]]
    ctx.r.reset(p, ps, pe)
    ctx.has_data = pe > ps
    ctx.pos = 0
    ctx.limit = SCRATCH
    ctx.cursor = 0
    ctx.selector = 0
    ctx.assoc = None
    try:
        if sv == WRITE_ATTRIBUTE:
            if index < 2 or index > ic.attribute_count or not ctx.has_data:
                return base.READ_WRITE_DENIED
            return ic.set(ctx, target, index)
        if sv == EXECUTE_METHOD:
            if index < 1 or index > ic.method_count:
                return base.READ_WRITE_DENIED
            return ic.action(ctx, target, index)
    except Exception as e:  # noqa: BLE001 - a broken action must not stop the rest
        _log(meter, "script: %r" % (e,))
        return base.OTHER_REASON
    return base.OTHER_REASON  # unknown service_id


def enc_scripts(buf, pos, scripts):
    # The A-XDR encoding of scripts in the static form (param) at buf[pos:].
    pos = axdr.enc_array(buf, pos, len(scripts))
    for s in scripts:
        pos = axdr.enc_structure(buf, pos, 2)
        pos = axdr.enc_long_unsigned(buf, pos, s[0])
        acts = s[1]
        pos = axdr.enc_array(buf, pos, len(acts))
        for a in acts:
            pos = axdr.enc_structure(buf, pos, 5)
            pos = axdr.enc_enum(buf, pos, a[A_SERVICE])
            pos = axdr.enc_long_unsigned(buf, pos, a[A_CLASS])
            pos = axdr.enc_octet_string(buf, pos, a[A_LN])
            pos = axdr.enc_integer(buf, pos, a[A_INDEX])
            p = a[A_PARAM]
            if p:
                pos = axdr.put_bytes(buf, pos, p)
            else:
                pos = axdr.enc_null(buf, pos)
    return pos


class Stored:
    # Optional persistence of a state object (shared with schedule.py and
    # tariff.py): with a storage (the port's get(key) -> bytes or None,
    # put(key, bytes), put atomic), the object is restored from its record
    # at boot and written whole after each change a client (or a script)
    # makes. A record that does not fit the object's configuration (another
    # firmware's room) is ignored: the configured content stays.
    storage = None
    key = None

    def persist(self, storage, key):
        self.storage = storage
        self.key = key
        if storage is not None:
            rec = storage.get(key)
            if rec is not None:
                self.restore(rec)

    def save(self):
        if self.storage is not None:
            self.storage.put(self.key, self.record())


def u16(b, p):
    return (b[p] << 8) | b[p + 1]


class ScriptStore(Stored):
    # The run-time scripts of a writable Script table (its state slot): the
    # encoding of attribute 2 in `room` preallocated bytes, first that of
    # the static scripts given (normally the entry's param), or the stored
    # record (storage, key: see Stored).
    def __init__(self, room, scripts=(), storage=None, key=None):
        self.buf = bytearray(room)
        self.scratch = bytearray(room)
        self.n = enc_scripts(self.buf, 0, scripts)
        self.persist(storage, key)

    def record(self):
        return bytes((self.n >> 8, self.n & 0xFF)) + bytes(self.buf[0 : self.n])

    def restore(self, rec):
        n = u16(rec, 0) if len(rec) >= 2 else -1
        if n < 0 or len(rec) != 2 + n or n > len(self.buf):
            return False
        self.buf[0:n] = rec[2:]
        self.n = n
        return True


def _set_scripts(meter, store, r):
    # SET scripts: every action checked and encoded into the scratch buffer,
    # which replaces the scripts only when all is well.
    s = store.scratch
    b = r.buf
    if r.peek() != axdr.ARRAY:
        return base.TYPE_UNMATCHED
    n = r.array()
    try:
        pos = axdr.enc_array(s, 0, n)
        for i in range(n):
            if r.peek() != axdr.STRUCTURE or r.structure() != 2 or r.peek() != axdr.LONG_UNSIGNED:
                return base.TYPE_UNMATCHED
            pos = axdr.enc_structure(s, pos, 2)
            pos = axdr.enc_long_unsigned(s, pos, r.long_unsigned())
            if r.peek() != axdr.ARRAY:
                return base.TYPE_UNMATCHED
            k = r.array()
            pos = axdr.enc_array(s, pos, k)
            for j in range(k):
                if r.peek() != axdr.STRUCTURE or r.structure() != 5 or r.peek() != axdr.ENUM:
                    return base.TYPE_UNMATCHED
                sv = r.enum()
                if r.peek() != axdr.LONG_UNSIGNED:
                    return base.TYPE_UNMATCHED
                cid = r.long_unsigned()
                if r.peek() != axdr.OCTET_STRING:
                    return base.TYPE_UNMATCHED
                ln = r.octet_string()
                lp = r.mark
                if r.peek() != axdr.INTEGER:
                    return base.TYPE_UNMATCHED
                index = r.integer()
                ps = r.pos
                r.skip()
                # the target must exist with that class, the index in its range
                e = meter.find(cid, b, lp) if ln == 6 else None
                if e is None:
                    return base.OTHER_REASON
                ic = meter.handlers[e[base.E_IC]]
                if sv == WRITE_ATTRIBUTE:
                    ok = 2 <= index <= ic.attribute_count
                else:
                    ok = sv == EXECUTE_METHOD and 1 <= index <= ic.method_count
                if not ok:
                    return base.OTHER_REASON
                pos = axdr.enc_structure(s, pos, 5)
                pos = axdr.enc_enum(s, pos, sv)
                pos = axdr.enc_long_unsigned(s, pos, cid)
                pos = axdr.enc_octet_string(s, pos, b, lp, lp + 6)
                pos = axdr.enc_integer(s, pos, index)
                pos = axdr.put_bytes(s, pos, b, ps, r.pos)
    except EncodeError:  # more than the room
        return base.OTHER_REASON
    store.buf[0:pos] = memoryview(s)[0:pos]
    store.n = pos
    store.save()
    return base.SUCCESS


class ScriptTable(base.InterfaceClass):
    class_id = 9
    version = 0
    attribute_count = 2
    method_count = 1
    slots = SLOTS

    def get(self, ctx, obj, attr):
        # scripts: written whole (the dispatcher turns BufferFull into
        # block transfer)
        if attr != 2:
            return base.READ_WRITE_DENIED
        slot = obj[base.E_SLOT]
        if slot < 0:
            ctx.pos = enc_scripts(ctx.buf, ctx.pos, obj[base.E_PARAM])
        else:
            store = ctx.meter.state[slot]
            ctx.pos = axdr.put_bytes(ctx.buf, ctx.pos, store.buf, 0, store.n)
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        slot = obj[base.E_SLOT]
        if attr != 2 or slot < 0:
            return base.READ_WRITE_DENIED  # a static table
        if _depth:
            return base.TEMPORARY_FAILURE  # a script is running: not under its feet
        return _set_scripts(ctx.meter, ctx.meter.state[slot], ctx.r)

    def action(self, ctx, obj, method):
        if method != 1:
            return base.READ_WRITE_DENIED
        if not ctx.has_data:
            return base.TYPE_UNMATCHED
        r = ctx.r
        t = r.peek()
        if t != axdr.LONG_UNSIGNED and t != axdr.UNSIGNED and t != axdr.DOUBLE_LONG_UNSIGNED:
            return base.TYPE_UNMATCHED
        sid = r.number()
        if not has_script(ctx.meter, obj, sid):
            return base.OTHER_REASON
        if not run(ctx.meter, obj, sid):
            return base.TEMPORARY_FAILURE  # nested too deep
        return base.SUCCESS


SCRIPT_TABLE = ScriptTable()
