# Disconnect control (class_id 70, version 0), Blue Book 4.5.8: the supply
# relay (breaker, valve) and the state machine that decides who may open
# and close it.
#
#   attribute 2 output_state    boolean: True = relay closed, supply on
#   attribute 3 control_state   enum: 0 disconnected, 1 connected,
#                               2 ready_for_reconnection
#   attribute 4 control_mode    enum 0..6 (SET: 0..6, else OTHER_REASON)
#   method 1 remote_disconnect (integer(0))
#   method 2 remote_reconnect (integer(0))
#
# TRANSITIONS (the Blue Book state diagram; D disconnected, C connected,
# R ready_for_reconnection):
#   a remote_reconnect   D -> C      e manual_reconnection  R -> C
#   b remote_disconnect  C -> D      f manual_disconnection C -> R
#   c remote_disconnect  R -> D      g local_disconnection  C -> R
#   d remote_reconnect   D -> R      h local_reconnection   R -> C
# and which of them each control_mode allows:
#   mode 0  none: the object is always connected
#   mode 1  b c d e f g        mode 4  a b c e g
#   mode 2  a b c e f g        mode 5  b c d e f g h
#   mode 3  b c d e g          mode 6  b c d e g h
# "manual" is the customer's button, "local" the meter's own functions
# (limiter, supervision, prepayment: see prepay.py).
#
# METHODS. A method whose request is already met changes nothing and
# succeeds (remote_disconnect when disconnected, remote_reconnect when
# connected, or when ready_for_reconnection in a mode without direct
# reconnection). One the control_mode forbids changes nothing and returns
# REFUSED: both methods in mode 0, and remote_reconnect from
# ready_for_reconnection in modes 2 and 4 (the diagram has no remote R -> C:
# the customer's e, or the head-end's c then a). The Blue Book names no
# action-result for this; REFUSED is temporary-failure (the object cannot
# do it in its present configuration; a SET of control_mode may allow it).
#
# THE PORT calls manual_reconnect() when the customer presses the button
# (manual_disconnect() for a button that also opens), and the meter's own
# functions call local_disconnect() / local_reconnect(). Each returns True
# when the transition happened.
#
# RELAY. The relay is the port's: meter.relay(index, closed) is called
# (when the meter has a `relay` attribute that is not None; set it on the
# instance) at every change of output_state, and by apply() at boot; index
# is param[0] (0 without param), closed is the new output_state. A
# MicroPython board: meter.relay = lambda i, on: RELAY_PINS[i].value(on).
#
# SET control_mode 0 (always connected) connects at once (relay closed).
#
# param: (relay_index,) or None.
# state: 3 slots (initial_state()): [slot] control_state, [slot+1]
#   control_mode, [slot+2] persistence: None, or (storage, key) - every
#   change is written at once as storage.put(key, bytes((control_state,
#   control_mode))), and restore() reads it back at boot, so that a meter
#   disconnected before a power cut stays disconnected after it.

from dlms_micro import axdr
from dlms_micro.cosem import base, common
from dlms_micro.errors import DecodeError

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


SLOTS = 3

DISCONNECTED = const(0)
CONNECTED = const(1)
READY_FOR_RECONNECTION = const(2)

# action-result of a method the control_mode forbids
REFUSED = base.TEMPORARY_FAILURE

# bit n: transition allowed in control_mode n (modes 0..6)
_A = const(0b0010100)  # 2, 4
_BC = const(0b1111110)  # 1..6
_D = const(0b1101010)  # 1, 3, 5, 6
_E = const(0b1111110)  # 1..6
_F = const(0b0100110)  # 1, 2, 5
_G = const(0b1111110)  # 1..6
_H = const(0b1100000)  # 5, 6


def initial_state(control_mode=1, control_state=CONNECTED, storage=None, key=None):
    # The 3 state slots of one Disconnect control (storage, key: optional
    # persistence, see above; restore() reads it).
    if control_mode == 0:
        control_state = CONNECTED
    return [control_state, control_mode, (storage, key) if storage is not None else None]


def control_state(meter, obj):
    return meter.state[obj[base.E_SLOT]]


def connected(meter, obj):
    # output_state: True when the relay is closed
    return meter.state[obj[base.E_SLOT]] == CONNECTED


def _index(obj):
    p = obj[base.E_PARAM]
    return p[0] if p else 0


def _drive(meter, obj, closed):
    relay = meter.relay
    if relay is not None:
        relay(_index(obj), closed)


def _save(meter, obj):
    st = meter.state
    s = obj[base.E_SLOT]
    per = st[s + 2]
    if per is not None:
        per[0].put(per[1], bytes((st[s], st[s + 1])))


def _move(meter, obj, to):
    # Enter state `to`; the relay follows when output_state changes.
    st = meter.state
    s = obj[base.E_SLOT]
    was = st[s] == CONNECTED
    st[s] = to
    _save(meter, obj)
    if was != (to == CONNECTED):
        _drive(meter, obj, to == CONNECTED)
        log = meter.log
        if log is not None:
            log("disconnect control: relay %d %s" % (_index(obj), "closed" if to == CONNECTED else "open"))


def _transition(meter, obj, frm, to, modes):
    # One lettered transition: True when it happened.
    st = meter.state
    s = obj[base.E_SLOT]
    if st[s] != frm or not (modes >> st[s + 1]) & 1:
        return False
    _move(meter, obj, to)
    return True


def manual_reconnect(meter, obj):
    # e: the customer's button, ready_for_reconnection -> connected
    return _transition(meter, obj, READY_FOR_RECONNECTION, CONNECTED, _E)


def manual_disconnect(meter, obj):
    # f: the customer's button, connected -> ready_for_reconnection
    return _transition(meter, obj, CONNECTED, READY_FOR_RECONNECTION, _F)


def local_disconnect(meter, obj):
    # g: the meter's own functions, connected -> ready_for_reconnection
    return _transition(meter, obj, CONNECTED, READY_FOR_RECONNECTION, _G)


def local_reconnect(meter, obj):
    # h: the meter's own functions, ready_for_reconnection -> connected
    return _transition(meter, obj, READY_FOR_RECONNECTION, CONNECTED, _H)


def remote_disconnect(meter, obj):
    # Method 1 (b, c): an action-result.
    st = meter.state
    s = obj[base.E_SLOT]
    mode = st[s + 1]
    if not (_BC >> mode) & 1:
        return REFUSED
    if st[s] != DISCONNECTED:
        _move(meter, obj, DISCONNECTED)
    return base.SUCCESS


def remote_reconnect(meter, obj):
    # Method 2 (a or d per mode): an action-result.
    st = meter.state
    s = obj[base.E_SLOT]
    mode = st[s + 1]
    cs = st[s]
    if (_A >> mode) & 1:
        if cs == DISCONNECTED:
            _move(meter, obj, CONNECTED)
        elif cs == READY_FOR_RECONNECTION:
            return REFUSED
        return base.SUCCESS
    if (_D >> mode) & 1:
        if cs == DISCONNECTED:
            _move(meter, obj, READY_FOR_RECONNECTION)
        return base.SUCCESS
    return REFUSED


def apply(meter, obj):
    # Drive the relay to the present output_state (the port calls it once
    # at boot, after restore()).
    _drive(meter, obj, meter.state[obj[base.E_SLOT]] == CONNECTED)


def restore(meter, obj):
    # Read the persisted control_state and control_mode back (boot); True
    # when a valid record was found. Does not drive the relay: apply().
    st = meter.state
    s = obj[base.E_SLOT]
    per = st[s + 2]
    if per is None:
        return False
    rec = per[0].get(per[1])
    if rec is None or len(rec) != 2 or rec[0] > 2 or rec[1] > 6:
        return False
    st[s] = CONNECTED if rec[1] == 0 else rec[0]
    st[s + 1] = rec[1]
    return True


class DisconnectControl(base.InterfaceClass):
    class_id = 70
    version = 0
    attribute_count = 4
    method_count = 2
    slots = SLOTS

    def get(self, ctx, obj, attr):
        st = ctx.meter.state
        s = obj[base.E_SLOT]
        if attr == 2:
            ctx.pos = axdr.enc_boolean(ctx.buf, ctx.pos, st[s] == CONNECTED)
        elif attr == 3:
            ctx.pos = axdr.enc_enum(ctx.buf, ctx.pos, st[s])
        elif attr == 4:
            ctx.pos = axdr.enc_enum(ctx.buf, ctx.pos, st[s + 1])
        else:
            return base.READ_WRITE_DENIED
        common.check_limit(ctx)
        return base.SUCCESS

    def set(self, ctx, obj, attr):
        if attr != 4:
            return base.READ_WRITE_DENIED
        try:
            if ctx.r.peek() != axdr.ENUM:
                return base.TYPE_UNMATCHED
            mode = ctx.r.enum()
        except DecodeError:
            return base.TYPE_UNMATCHED
        if mode > 6:
            return base.OTHER_REASON
        meter = ctx.meter
        s = obj[base.E_SLOT]
        meter.state[s + 1] = mode
        if mode == 0 and meter.state[s] != CONNECTED:
            _move(meter, obj, CONNECTED)
        else:
            _save(meter, obj)
        return base.SUCCESS

    def action(self, ctx, obj, method):
        if method != 1 and method != 2:
            return base.READ_WRITE_DENIED
        try:
            res = common.integer_param(ctx)
        except DecodeError:
            res = base.TYPE_UNMATCHED
        if res:
            return res
        if method == 1:
            return remote_disconnect(ctx.meter, obj)
        return remote_reconnect(ctx.meter, obj)


DISCONNECT_CONTROL = DisconnectControl()
