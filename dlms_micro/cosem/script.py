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
# param: the scripts, constant data (the table is static: SET of scripts is
#   READ_WRITE_DENIED; the manufacturer defines them, as for the tariff
#   scripts of 0.0.10.0.100.255):
#     ((script_identifier, actions), ...)
#     actions: ((service_id, class_id, logical_name (6 bytes), index,
#                parameter), ...)
#     parameter: the A-XDR encoding of the Data element, tag included
#                (bytes, e.g. b"\x09\x01\x01" octet-string 01, b"\x0f\x00"
#                integer 0), or None / b"" for no parameter (a method
#                called without data).
#   action() builds one for you from readable values.
# state: none (slot -1).
#
# EXECUTION (execute(meter, table_ln, script_id)). The actions run in order,
# each through its target object's own handler (ic.set for a write, ic.action
# for a method) with a Context whose reader sits at the stored parameter, as
# a client's SET/ACTION would, but without access rights: the meter acts on
# itself (ctx.assoc is None). The Blue Book defines a script as a list of
# actions and gives no rollback; here an action that fails (target not in
# the table, attribute 1 or an index out of the class's range, a refusal by
# the handler, an exception) is logged through meter.log when it is set and
# skipped, and the rest of the script still runs: one broken action (say a
# register deleted from a newer table) does not stop a tariff switch.
# Scripts may execute other scripts (an action calling a Script table's
# execute) down to MAX_DEPTH levels; deeper calls (a script that calls
# itself) are refused and logged. Running a script allocates nothing but
# what the target handlers allocate and the log messages of failures.

from dlms_micro import axdr
from dlms_micro.cosem import base, common

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 0

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


def _context(meter, depth):
    while len(_ctxs) <= depth:
        c = base.Context(meter)
        c.r = axdr.Reader()
        c.buf = bytearray(SCRATCH)
        _ctxs.append(c)
    c = _ctxs[depth]
    c.meter = meter
    return c


def find_script(obj, script_id):
    # The actions of script script_id of Script table entry obj, or None.
    for s in obj[base.E_PARAM]:
        if s[0] == script_id:
            return s[1]
    return None


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
    acts = find_script(obj, script_id)
    if acts is None:
        _log(meter, "script: %s has no script %d" % (_ln(obj[base.E_LN]), script_id))
        return False
    if _depth >= MAX_DEPTH:
        _log(meter, "script: %s script %d nested too deep" % (_ln(obj[base.E_LN]), script_id))
        return False
    ctx = _context(meter, _depth)
    _depth += 1
    try:
        for a in acts:
            res = _do(meter, ctx, a)
            if res != base.SUCCESS:
                _log(meter, "script: %s script %d: service %d on %d/%s index %d failed (%d)"
                     % (_ln(obj[base.E_LN]), script_id, a[A_SERVICE], a[A_CLASS], _ln(a[A_LN]),
                        a[A_INDEX], res))
    finally:
        _depth -= 1
    return True


def _do(meter, ctx, a):
    # Carry out one action; its data-access-result / action-result.
    target = meter.find(a[A_CLASS], a[A_LN], 0)
    if target is None:
        return base.OBJECT_UNDEFINED
    ic = target[base.E_IC]
    index = a[A_INDEX]
    p = a[A_PARAM]
    if p is None:
        p = b""
    ctx.r.reset(p)
    ctx.has_data = len(p) > 0
    ctx.pos = 0
    ctx.limit = SCRATCH
    ctx.cursor = 0
    ctx.selector = 0
    ctx.assoc = None
    try:
        if a[A_SERVICE] == WRITE_ATTRIBUTE:
            if index < 2 or index > ic.attribute_count or not ctx.has_data:
                return base.READ_WRITE_DENIED
            return ic.set(ctx, target, index)
        if a[A_SERVICE] == EXECUTE_METHOD:
            if index < 1 or index > ic.method_count:
                return base.READ_WRITE_DENIED
            return ic.action(ctx, target, index)
    except Exception as e:  # noqa: BLE001 - a broken action must not stop the rest
        _log(meter, "script: %r" % (e,))
        return base.OTHER_REASON
    return base.OTHER_REASON  # unknown service_id


class ScriptTable(base.InterfaceClass):
    class_id = 9
    version = 0
    attribute_count = 2
    method_count = 1
    slots = SLOTS

    def get(self, ctx, obj, attr):
        # scripts: short enough to be written whole (static, manufacturer
        # sized); the dispatcher turns BufferFull into block transfer
        if attr != 2:
            return base.READ_WRITE_DENIED
        buf = ctx.buf
        scripts = obj[base.E_PARAM]
        pos = axdr.enc_array(buf, ctx.pos, len(scripts))
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
        ctx.pos = pos
        common.check_limit(ctx)
        return base.SUCCESS

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
        if sid != 0 and find_script(obj, sid) is None:
            return base.OTHER_REASON
        if not run(ctx.meter, obj, sid):
            return base.TEMPORARY_FAILURE  # nested too deep
        return base.SUCCESS


SCRIPT_TABLE = ScriptTable()
