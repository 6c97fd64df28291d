# Build the Meters of a compiled meter definition (docs/meter-definition.md).
#
#   import my_meter                      # made by `dlms-micro meter compile`
#   from dlms_micro.meterdef import build
#   meters = build.build_all(my_meter, wall_clock, storage)
#   meter = meters[0]                    # logical device of DEVICES[0]
#
# A COMPILED DEFINITION is any object with these attributes (the generated
# module has them as module constants; on CPython the JSON loader gives an
# object with the same ones). Every value is a constant: ints, bytes, str and
# tuples of them, so a frozen build keeps all of it in flash.
#   FORMAT            1
#   NAME, SERIAL_NUMBER, MANUFACTURER, SYSTEM_TITLE   bytes
#   LOGICAL_DEVICE, PHYSICAL_ADDRESS                  int
#   HDLC              (max_info, window, inactivity_s, inter_octet_ms, baud)
#   HANDLERS          ((module name, attribute name), ...): the interface-class
#                     handlers the tables' E_IC fields index
#   ROLES             ((name, client_sap, mechanism, password, conformance,
#                     policy[, suite[, bits]]), ...) in Meter.roles order;
#                     policy 0 none (the plain LN context), 1 authenticated,
#                     2 encrypted, 3 both (the ciphered LN context); bits:
#                     Security setup v1 security_policy where the definition
#                     named them (else the level's pair)
#   DEVICES           ((logical_device, name, TABLE, INITS, DRIVES), ...)
#     TABLE           the object table (cosem/base.py), E_IC a HANDLERS index
#     INITS           ((table index, args), ...): every object with state
#                     slots, in slot order; args the constants its class's
#                     state maker (state.py) takes
#     DRIVES          ((table index, what), ...): values driven at run time,
#                     what e.g. "simulation:energy-import", "source:bus.m1.x"
#   SOURCES           (optional) the metering sources a retrofit module reads
#                     (meterdef/sources.py): sources(defn, meters) makes them
#                     and their bindings to the objects
#
# RAM. The table, the access rights and every param stay where the module is
# (flash when frozen); a build allocates the handlers tuple, the Roles, the
# state list and what each object's state needs (a profile's ring, ...).

from dlms_micro.meter import Meter, Role
from dlms_micro.meterdef import state as _state

FORMAT = 1


class Env:
    # What the port gives the objects' state makers: the storage (None: RAM
    # only) and the hooks of objects whose state the port owns.
    storage = None
    # store keys are prefix + the object's OBIS code ("ld1.1.0.99.1.0.255")
    prefix = ""
    # image_state(entry, args) -> cosem.image.ImageState (None: 64 KB in RAM)
    image_state = None
    # push destination (bytes "host:port") every Push setup starts with,
    # when the definition gives none
    push_destination = b""
    # the Token gateway's key (secret: never in a definition), None: tokens
    # are refused
    token_key = None
    # Account objects start in prepayment mode when True
    prepaid = None

    def __init__(self, storage=None, **kw):
        self.storage = storage
        for k in kw:
            setattr(self, k, kw[k])


def handlers(defn):
    # The handler instances HANDLERS names, importing only their modules.
    import sys

    out = []
    for mod, name in defn.HANDLERS:
        __import__(mod)
        out.append(getattr(sys.modules[mod], name))
    return tuple(out)


# a definition's security_policy (none, authenticated, encrypted,
# authenticated-encrypted) as Security setup v1 bits
_POLICY_BITS = (0, 0x24, 0x48, 0x6C)


def policy_bits(r):
    # A ROLES entry's security_policy as Security setup v1 bits: its 8th
    # field where the definition named bits (signatures, one direction),
    # else its level's pair.
    return r[7] if len(r) > 7 else _POLICY_BITS[r[5]]


def roles(defn):
    # Fresh Role objects (a Role's secret changes at run time: one set per
    # Meter).
    out = []
    for r in defn.ROLES:
        # (name, sap, mechanism, secret, conformance, policy level[, security
        # suite[, policy bits]])
        out.append(Role(r[1], r[2], r[3], r[4], r[0], ciphered=bool(r[5]), security_suite=r[6] if len(r) > 6 else 0,
                        policy=policy_bits(r)))
    return tuple(out)


def build(defn, wall_clock=None, storage=None, device=0, env=None, hs=None):
    # The Meter of DEVICES[device]. env: an Env (default: Env(storage)).
    if defn.FORMAT != FORMAT:
        raise ValueError("compiled meter definition format %r, this build reads %d: compile it again"
                         % (defn.FORMAT, FORMAT))
    if env is None:
        env = Env(storage)
    elif storage is not None:
        env.storage = storage
    ld, _name, table, inits, _drives = defn.DEVICES[device]
    if hs is None:
        hs = handlers(defn)
    st = []
    for i, args in inits:
        e = table[i]
        if e[4] != len(st):
            raise ValueError("compiled definition: object %d's slot %d, expected %d" % (i, e[4], len(st)))
        for v in _state.make(e, args, env):
            if isinstance(v, int) and not -0x2000 <= v <= 0x1FFF:
                v = _small(v)
            st.append(v)
    m = Meter(table, roles(defn), st, wall_clock=wall_clock, logical_device=ld, handlers=hs)
    return m


def _small(v):
    # A frozen module keeps integers outside -0x2000..0x1FFF as big-int
    # objects, and arithmetic on a big int gives a big int (allocating each
    # time): a state value starts as a small int wherever it fits.
    if isinstance(v, bool):
        return v
    if v < 0:
        return -_small(-v)
    return int.from_bytes(v.to_bytes(8, "big"), "big")


def build_all(defn, wall_clock=None, storage=None, env=None):
    # One Meter per logical device, sharing the handlers.
    hs = handlers(defn)
    out = []
    for d in range(len(defn.DEVICES)):
        out.append(build(defn, wall_clock, storage, d, env, hs))
    return out


def find(meter, ln):
    # The entry with this logical name (6 bytes), or None.
    return meter.find_ln(ln, 0)


def driven(defn, device, what):
    # Table indices of the objects whose values `what` drives (e.g.
    # "simulation:energy-import"), in table order.
    out = []
    for i, w in defn.DEVICES[device][4]:
        if w == what:
            out.append(i)
    return out


def sources(defn, meters, storage=None, log=None):
    # The sans-IO sources of defn.SOURCES and their Bindings to the objects
    # of meters (build_all's list): (sources, bindings); ((), None) for a
    # definition without sources. meterdef/sources.py says how a port
    # drives them.
    if not getattr(defn, "SOURCES", ()):
        return (), None
    from dlms_micro.meterdef import sources as _sources

    srcs = _sources.make(defn, storage)
    return srcs, _sources.Bindings(defn, meters, srcs, log)
