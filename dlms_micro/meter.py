# A logical device: its static object table, its associations (roles) and
# the run-time state those objects keep. Built once at boot by the port (or
# the demo meter), shared by every channel that serves it.

from dlms_micro.cosem.base import E_CLASS, E_IC, E_LN

# Authentication mechanism ids (Green Book: mechanism-name 2.16.756.5.8.2.x)
MECH_NONE = 0
MECH_LLS = 1
MECH_HLS_GMAC = 5


class Role:
    # One association the meter offers: which client SAP may open it, with
    # which authentication, and which xDLMS services it grants.

    # HLS secret (mechanisms 2 and up), set by Association LN
    # change_HLS_secret; an instance attribute once changed.
    hls_secret = b""

    # Security suite of the association (0: AES-GCM-128; 1: ECDH-ECDSA-
    # AES-GCM-128-SHA-256; 2: ECDH-ECDSA-AES-GCM-256-SHA-384): the suite id
    # its protected APDUs carry, and the curve of HLS-ECDSA (mechanism 7).
    security_suite = 0
    # The association's own security_policy bits (Security setup v1: 0x04
    # authenticated and 0x08 encrypted requests, 0x20 / 0x40 responses),
    # required on top of the meter's key store policy.
    policy = 0

    def __init__(self, client_sap, mechanism=MECH_NONE, secret=b"", conformance=0, name="", ciphered=False,
                 security_suite=0, policy=0):
        self.client_sap = client_sap
        if security_suite:
            self.security_suite = security_suite
        if policy:
            self.policy = policy
        self.mechanism = mechanism
        # True: the association uses the ciphered LN context (suite 0
        # protection of the InitiateRequest/Response and of every APDU)
        self.ciphered = ciphered
        self.secret = secret  # LLS password (changeable through Association LN)
        # the xDLMS services this role grants (conformance bits); 0: all the
        # server implements (server.SERVER_CONFORMANCE)
        self.conformance = conformance
        self.name = name


class Meter:
    # HLS hook for Association LN reply_to_HLS_authentication (the security
    # layer sets it on the instance, meter.hls_verify = fn, so that it is
    # not bound): hls_verify(ctx, buf, start, end) checks the client's
    # f(StoC) at buf[start:end] for the association ctx.assoc and returns
    # the server's f(CtoS) (bytes), or None when the check fails.
    hls_verify = None

    # The meter's security material and invocation counters (a
    # dlms_micro.security.keys.KeyStore, set by the port on the instance);
    # None: the meter offers no protection (Security setup and the
    # invocation counter object answer object-unavailable).
    keys = None

    # Failed authentications counted and locked out (a dlms_micro.app.
    # auth_guard.AuthGuard, set on the instance; the first Channel makes a
    # default one when none is set).
    auth_guard = None

    # Signing material of security suites 1 and 2 (a dlms_micro.security.
    # suite12.Signing: the meter's signing key pair and the clients' public
    # keys), set by the port on the instance; None: HLS-ECDSA is refused.
    signing = None

    # Certificates of security suites 1 and 2 (Security setup attribute 6,
    # methods 4-8; see dlms_micro/cosem/security_setup12.py), a port object
    # set on the instance; None: those methods are refused.
    cert_store = None

    # Security suite 2's keys (a dlms_micro.security.suite12.Suite2Keys: EK
    # and AK of 32 bytes, the counters of `keys`), set by the port on the
    # instance; None: suite 2 associations are refused.
    suite2_keys = None

    # The port's source of random bytes (os.urandom), for HLS challenges;
    # set on the instance. None: HLS associations are refused.
    random_bytes = None

    # The port's relay driver for Disconnect control (cosem/disconnect.py):
    # relay(index, closed) sets output `index` (the object's param[0]); set
    # on the instance. None: no relay (the state is kept all the same).
    relay = None

    def __init__(self, table, roles, state, wall_clock=None, logical_device=1, handlers=None):
        # table: tuple of object entries (cosem.base); roles: tuple of Role;
        # state: the preallocated list of run-time values; wall_clock: the
        # port's function returning UTC seconds since 1970-01-01 (int);
        # handlers: the interface-class handlers the entries' E_IC indices
        # name (a compiled meter definition's table is constant data and
        # carries indices). None: the entries hold the handlers themselves
        # (tables built in code, e.g. tests); they are indexed here, which
        # copies each entry once.
        if handlers is None:
            table, handlers = index_handlers(table)
        self.table = table
        self.handlers = handlers
        self._index = None  # find()'s index of table (see _make_index), made on first use
        self._indexed = None  # the table it was made for
        self.roles = roles
        self.state = state
        self.wall_clock = wall_clock
        self.logical_device = logical_device
        self.log = None

    def extend(self, entries):
        # Append entries that hold their handlers (built in code) to the
        # table, indexing the handlers as __init__ does.
        extra, hs = index_handlers(entries)
        handlers = list(self.handlers)
        out = []
        for e in extra:
            ic = hs[e[E_IC]]
            i = 0
            while i < len(handlers) and handlers[i] is not ic:
                i += 1
            if i == len(handlers):
                handlers.append(ic)
            out.append(e[:E_IC] + (i,) + e[E_IC + 1:])
        self.table = tuple(self.table) + tuple(out)
        self.handlers = tuple(handlers)

    def role_for(self, client_sap):
        # Index of the role a client SAP associates as, or -1.
        roles = self.roles
        for i in range(len(roles)):
            if roles[i].client_sap == client_sap:
                return i
        return -1

    def find(self, class_id, buf, off):
        # The entry with this class id and the logical name at buf[off:off+6]
        # (compared in place), or None; the first in table order when there
        # are several. Through the index of C.D.E (not a scan of the table),
        # made at the first look-up of each table.
        if self._indexed is not self.table:
            self._make_index()
        if self._index is None:  # no heap for the index: scan the table
            e = self.table
        else:
            e = self._index.get((buf[off + 2] << 16) | (buf[off + 3] << 8) | buf[off + 4])
            if e is None:
                return None
            if type(e) is not list:
                ln = e[E_LN]
                if e[E_CLASS] == class_id and ln[0] == buf[off] and ln[1] == buf[off + 1] and ln[5] == buf[off + 5]:
                    return e
                return None
        for x in e:
            if x[E_CLASS] == class_id and _same_ln(x[E_LN], buf, off):
                return x
        return None

    def _make_index(self):
        # find()'s index: a dict from the logical name's C, D and E bytes (a
        # small int) to the entry with them, or to the list of entries (in
        # table order) when several share them. Made once per table, at its
        # first look-up, when the meter is serving (a few hundred bytes of
        # heap for a board's table; ~750 B for the gateway's three tables);
        # without the heap for it, find() scans the table as before.
        self._indexed = self.table
        self._index = None
        try:
            self._index = _index_of(self.table)
        except MemoryError:
            pass

    def find_ln(self, buf, off):
        # The first entry with this logical name, whatever its class.
        for e in self.table:
            if _same_ln(e[E_LN], buf, off):
                return e
        return None


def _index_of(table):
    # Meter._make_index's dict
    idx = {}
    for e in table:
        ln = e[E_LN]
        if len(ln) != 6:
            continue  # no such logical name can be asked for
        k = (ln[2] << 16) | (ln[3] << 8) | ln[4]
        had = idx.get(k)
        if had is None:
            idx[k] = e
        elif type(had) is list:
            had.append(e)
        else:
            idx[k] = [had, e]
    return idx


def index_handlers(table):
    # (table, handlers) with every entry's handler replaced by its index in
    # handlers. Entries that appear several times in table (shared rows)
    # stay shared.
    handlers = []
    done = {}
    out = []
    for e in table:
        k = id(e)
        n = done.get(k)
        if n is None:
            ic = e[E_IC]
            if isinstance(ic, int):
                raise ValueError("entry %r names handler %d but no handlers were given" % (e[E_LN], ic))
            i = 0
            while i < len(handlers) and handlers[i] is not ic:
                i += 1
            if i == len(handlers):
                handlers.append(ic)
            n = e[:E_IC] + (i,) + e[E_IC + 1:]
            done[k] = n
        out.append(n)
    return tuple(out), tuple(handlers)


def _same_ln(ln, buf, off):
    return (
        ln[0] == buf[off]
        and ln[1] == buf[off + 1]
        and ln[2] == buf[off + 2]
        and ln[3] == buf[off + 3]
        and ln[4] == buf[off + 4]
        and ln[5] == buf[off + 5]
    )
