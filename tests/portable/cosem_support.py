# Helpers for the interface-class tests (test_cosem_*): a small meter, a
# request context, and calls that return the result code with the bytes
# written. Portable (pytest and MicroPython).

from dlms_micro import axdr
from dlms_micro.app import association as asn
from dlms_micro.cosem import base
from dlms_micro.meter import MECH_LLS, Meter, Role
from support import unhex


def roles():
    # a public client (16) and a reader with LLS (32)
    return (Role(16, conformance=0x00101D), Role(32, MECH_LLS, b"12345678", 0x00181F))


def make(table, state, wall_clock=None, size=512, role=0, meter_roles=None, handlers=None):
    # handlers: those of the Meter whose table this is (None: a table that
    # holds its handlers)
    meter = Meter(table, meter_roles or roles(), state, wall_clock, handlers=handlers)
    a = asn.AssociationState()
    a.status = asn.ASSOCIATED
    a.role = role
    a.client_sap = meter.roles[role].client_sap
    a.server_sap = 1
    a.mechanism = meter.roles[role].mechanism
    a.conformance = meter.roles[role].conformance
    a.client_max_pdu = 512
    a.server_max_pdu = 1024
    ctx = base.Context(meter)
    ctx.assoc = a
    ctx.buf = bytearray(size)
    ctx.limit = size
    ctx.r = axdr.Reader()
    return ctx


def get(ctx, obj, attr):
    # -> (data-access-result, bytes written)
    ctx.pos = 0
    ctx.cursor = 0
    ctx.selector = 0
    res = handler(ctx, obj).get(ctx, obj, attr)
    return res, bytes(ctx.buf[0 : ctx.pos])


def get_ok(ctx, obj, attr):
    res, out = get(ctx, obj, attr)
    assert res == base.SUCCESS, res
    assert ctx.cursor == 0
    return out


def put(ctx, obj, attr, data_hex):
    # SET with the A-XDR value data_hex -> data-access-result
    ctx.r.reset(unhex(data_hex))
    return handler(ctx, obj).set(ctx, obj, attr)


def act(ctx, obj, method, data_hex=None):
    # ACTION -> (action-result, return data written)
    data = unhex(data_hex) if data_hex is not None else b""
    ctx.r.reset(data)
    ctx.has_data = data_hex is not None
    ctx.pos = 0
    ctx.cursor = 0
    res = handler(ctx, obj).action(ctx, obj, method)
    return res, bytes(ctx.buf[0 : ctx.pos])


def allocated(fn):
    # Heap bytes fn() allocates under MicroPython (GC disabled: every
    # byte counts, garbage included); None on CPython.
    try:
        import micropython  # noqa: F401
    except ImportError:
        return None
    import gc

    fn()  # warm up (first-use allocations, lazily made attributes)
    gc.collect()
    gc.disable()
    try:
        a = gc.mem_alloc()
        fn()
        return gc.mem_alloc() - a
    finally:
        gc.enable()


def handler(ctx, obj):
    # the entry's interface-class handler: an index into meter.handlers in
    # a Meter's table, the handler itself in a table a test built
    ic = obj[base.E_IC]
    if isinstance(ic, int):
        return ctx.meter.handlers[ic]
    return ic
