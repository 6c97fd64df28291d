"""Embed a simulated meter in your own program or test suite.

``serve()`` starts a simulated DLMS/COSEM meter (the demo meter, or any meter
definition) in a background thread and returns a :class:`MeterHandle`: where
it listens, how to associate with it, and methods to set and read its values,
move its clock, and see what clients wrote::

    from dlms_micro_cpython import serve

    with serve("my_meter.json", history=1) as meter:
        meter.set_value("1.0.1.8.0.255", 12345)
        host, port = meter.wrapper_address       # point the head-end here
        ...
        meter.advance(3600)                      # an hour of simulated time
        rows = meter.profile_rows("1.0.99.1.0.255")
        assert meter.written() == []             # no client wrote anything

The meter runs in its own thread and asyncio loop (a
:class:`~dlms_micro_cpython.service.ThreadedService`); every handle method
that touches the meter runs in that thread (``ThreadedService.call``), so the
handle may be used from any thread, while clients are connected.

Values are given and returned as plain Python values: integers, floats,
``bytes`` (octet-strings), ``str`` (visible-/utf8-strings), ``bool``, lists
(arrays), tuples (structures), and aware UTC ``datetime`` objects for the
Clock's time and the clock columns of profiles. Register values are the raw
integers on the wire: apply the register's scaler yourself.

``written()`` is fed by a hook of this module, not of the core: the handle
wraps the served meter's interface-class handlers (``Meter.handlers``) in
recording proxies, which log each SET and ACTION a client's association made
that its class accepted (result success), with the data as received. The
meter's own work (scripts run by schedules, captures), ``set_value`` and the
HLS authentication step of an association (Association LN method 1) are not
logged.
"""

import collections
import datetime
import logging
import os
import time

from dlms_micro import axdr
from dlms_micro.cosem import base
from dlms_micro.errors import DlmsError

__all__ = ["serve", "MeterHandle", "ClientSap", "Event", "Write", "AccessRefused"]

_UTC = datetime.timezone.utc
_WRITE_LOG_SIZE = 10000  # SETs/ACTIONs kept by written(), the oldest dropped first
_MECHANISM_NAMES = {0: "none", 1: "low", 5: "high-gmac", 6: "high-sha256", 7: "high-ecdsa"}
_POLICY_NAMES = {0: "none", 1: "authenticated", 2: "encrypted", 3: "authenticated-encrypted"}
_RESULT_NAMES = {
    1: "hardware-fault",
    2: "temporary-failure",
    3: "read-write-denied",
    4: "object-undefined",
    9: "object-class-inconsistent",
    11: "object-unavailable",
    12: "type-unmatched",
    13: "scope-of-access-violated",
    250: "other-reason",
}


class ClientSap(collections.namedtuple("ClientSap", "sap name authentication password security_policy")):
    """One association the meter offers (a client SAP).

    ``sap`` (int) the client SAP / wPort; ``name`` the definition's name for
    it ("public", "reader", "management"); ``authentication`` "none", "low"
    (LLS) or "high-gmac" (HLS mechanism 5); ``password`` the LLS password
    (bytes) or None; ``security_policy`` "none", "authenticated",
    "encrypted" or "authenticated-encrypted" (the ciphered LN context with
    security suite 0: use the handle's ``keys``).
    """

    __slots__ = ()


class Event(collections.namedtuple("Event", "time code log")):
    """A row of an event log: ``time`` (aware UTC datetime, or None when the
    row's time is not specified), ``code`` (int, e.g. 1 power down, 2 power
    up, 4/5 clock adjusted: the old/new time), ``log`` (the event log's OBIS
    code, "a.b.c.d.e.f")."""

    __slots__ = ()


class Write(collections.namedtuple("Write", "time client_sap service obis class_id index value data")):
    """A SET or ACTION a client made and the meter accepted.

    ``time`` the meter's time (aware UTC datetime); ``client_sap`` the
    association's client SAP; ``service`` "set" or "action"; ``obis``
    "a.b.c.d.e.f"; ``class_id``; ``index`` the attribute (SET) or method
    (ACTION); ``value`` the data decoded (None: an ACTION without
    parameters); ``data`` its A-XDR encoding as received (bytes).
    """

    __slots__ = ()


class AccessRefused(ValueError):
    """The meter refused a read or write made through the handle; ``result``
    is the data-access-result (e.g. 3 read-write-denied, 12 type-unmatched)."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def serve(
    definition=None,
    *,
    host="127.0.0.1",
    wrapper_port=0,
    hdlc_port=0,
    pty=False,
    data_dir=None,
    keys=None,
    seed=None,
    accelerate=1,
    history=0,
    wall_clock=None,
    name=None,
    serial_number=None,
    system_title=None,
):
    """Start a simulated meter; return its :class:`MeterHandle` (a context
    manager: ``with serve() as meter:`` stops it at the end of the block).

    definition: a meter definition: a path (str or os.PathLike) to a JSON
    definition (docs/meter-definition.md) or a Gurux XML object collection,
    a dict (the JSON's contents), a compiled definition
    (``meterdef.load``/``compile_definition``), or None for the demo meter.
    host, wrapper_port, hdlc_port: where the TCP wrapper and HDLC over TCP
    listen; 0 lets the OS pick a free port, None disables that transport.
    pty: also serve HDLC on a new pseudo-terminal (``pty_path``).
    data_dir: a directory for the state that survives restarts (profiles,
    energies, invocation counters, keys); it is locked while served. None:
    nothing is kept (a fresh meter each time).
    keys: the security suite 0 keys, a dict ``{"ek", "ak", "kek": 16 bytes,
    "system_title": 8 bytes or None}`` or the path of a key file
    (``keyfile``); None: the public demo keys (or keys a key_transfer stored
    in data_dir).
    seed: the household load simulation's random seed (None: random).
    accelerate: the meter's clock and simulation run this many times as fast
    as real time. history: days of simulated operation backfilled before
    now on a first start (profiles and event log already filled).
    wall_clock: a function returning the host's UTC seconds (default
    ``time.time``); ``advance()`` moves the meter ahead of it.
    name, serial_number, system_title: the identity of the (top-level)
    logical device instead of the definition's (system_title: 16 hex digits
    or 8 bytes); not with a compiled definition.

    Raises ``meterdef.DefinitionError`` for a faulty definition,
    ``keyfile.KeyFileError`` for a bad key file, ``storage.DataDirLocked``
    when another process serves data_dir, OSError when a port is taken.
    """
    return MeterHandle(
        definition,
        host=host,
        wrapper_port=wrapper_port,
        hdlc_port=hdlc_port,
        pty=pty,
        data_dir=data_dir,
        keys=keys,
        seed=seed,
        accelerate=accelerate,
        history=history,
        wall_clock=wall_clock,
        name=name,
        serial_number=serial_number,
        system_title=system_title,
    )


def _compile(definition, name, serial_number, system_title):
    # -> (compiled, is_demo)
    from dlms_micro_cpython import demo, meterdef
    from dlms_micro_cpython.meterdef import compiler

    if isinstance(system_title, (bytes, bytearray)):
        system_title = bytes(system_title).hex()
    identity = {k: v for k, v in (("name", name), ("serial_number", serial_number),
                                  ("system_title", system_title)) if v is not None}
    if definition is None:
        if not identity:
            return demo.compiled(), True
        return meterdef.load(demo.DEFINITION, **identity), False
    if isinstance(definition, (str, os.PathLike)):
        return meterdef.load(os.fspath(definition), **identity), False
    if isinstance(definition, dict):
        d = compiler.override(definition, **identity) if identity else definition
        return meterdef.compile_definition(d, "<dict>"), False
    if identity:
        raise TypeError("name, serial_number and system_title need a definition file or dict, not a compiled one")
    return definition, False


class MeterHandle:
    """A served simulated meter (made by :func:`serve`).

    Attributes: ``wrapper_address`` and ``hdlc_address`` ((host, port) or
    None), ``pty_path`` (str or None), ``logical_address`` (the HDLC upper
    address and the wrapper wPort), ``physical_address`` (the HDLC lower
    address), ``clients`` (a tuple of :class:`ClientSap`), ``keys`` (the
    suite 0 keys in force: dict ek, ak, kek), ``system_title`` (bytes),
    ``uses_demo_keys``, ``data_dir``, ``definition`` (the compiled
    definition), ``service`` (the ThreadedService) and ``meter`` (the
    SimulatedMeter: touch it only through :meth:`call`).
    """

    def __init__(self, definition=None, *, host="127.0.0.1", wrapper_port=0, hdlc_port=0, pty=False, data_dir=None,
                 keys=None, seed=None, accelerate=1, history=0, wall_clock=None, name=None, serial_number=None,
                 system_title=None):
        from dlms_micro_cpython import keyfile, storage
        from dlms_micro_cpython.demo import DemoMeter
        from dlms_micro_cpython.service import ThreadedService
        from dlms_micro_cpython.simulator import SimulatedMeter

        compiled, is_demo = _compile(definition, name, serial_number, system_title)
        if isinstance(keys, (str, os.PathLike)):
            keys = keyfile.load(os.fspath(keys))
        elif keys is not None:
            keys = dict(keys)
            keys.setdefault("system_title", None)
        self.definition = compiled
        self._logger = logging.getLogger("dlms_micro")
        self._host_clock = wall_clock or time.time
        self._stopped = False
        self._store = storage.FileStorage(os.fspath(data_dir), lock=True) if data_dir is not None else None
        self.data_dir = self._store.directory if self._store is not None else None
        kw = dict(storage=self._store, wall_clock=self._wall_clock, seed=seed, keys=keys, accelerate=accelerate,
                  history=history, log=self._log)
        try:
            sim = DemoMeter(**kw) if is_demo else SimulatedMeter(compiled, **kw)
            self._writes = collections.deque(maxlen=_WRITE_LOG_SIZE)
            _record_writes(sim, self._writes)
            self.meter = sim
            self.service = ThreadedService(sim, host=host, wrapper_port=wrapper_port, hdlc_port=hdlc_port, pty=pty,
                                           logger=self._logger)
            self.service.start()
        except BaseException:
            if self._store is not None:
                self._store.unlock()
            raise
        self.logical_address = sim.logical_address
        self.physical_address = sim.physical_address
        self.clients = tuple(
            ClientSap(r[1], r[0], _MECHANISM_NAMES.get(r[2], str(r[2])), bytes(r[3]) if r[2] == 1 else None,
                      _POLICY_NAMES.get(r[5], str(r[5])))
            for r in compiled.ROLES  # (name, sap, mechanism, secret, conformance, policy[, suite])
        )

    # ------------------------------------------------------------ lifecycle

    def _wall_clock(self):
        return int(self._host_clock())  # advance() moves the simulator's own clock

    def _log(self, msg):
        self._logger.info("meter: %s", msg)

    def stop(self):
        """Stop serving: connections close, the meter logs its power-down
        event and saves its state (to data_dir), the data directory is
        unlocked. Stopping twice does nothing."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.service.stop()
        finally:
            if self._store is not None:
                self._store.unlock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "<MeterHandle %s wrapper=%r hdlc=%r%s>" % (
            self.definition.NAME.decode(errors="replace"), self.wrapper_address, self.hdlc_address,
            " stopped" if self._stopped else "")

    # ------------------------------------------------------------ addresses

    @property
    def wrapper_address(self):
        """(host, port) of the TCP wrapper (IEC 62056-47), or None."""
        return None if self._stopped else self.service.wrapper_address

    @property
    def hdlc_address(self):
        """(host, port) of HDLC over TCP, or None."""
        return None if self._stopped else self.service.hdlc_address

    @property
    def pty_path(self):
        """The pseudo-terminal serving HDLC (``pty=True``), or None."""
        return None if self._stopped else self.service.pty_path

    def client(self, which):
        """The :class:`ClientSap` of a client SAP number or association
        name; KeyError when the meter has none such."""
        for c in self.clients:
            if c.sap == which or c.name == which:
                return c
        raise KeyError(which)

    @property
    def keys(self):
        """The security suite 0 keys in force: ``{"ek", "ak", "kek"}``
        (bytes); the public demo keys unless others were given or a client's
        key_transfer changed them."""
        def get(sim):
            k = sim.meter.keys
            return {"ek": bytes(k.ek), "ak": bytes(k.ak), "kek": bytes(k.kek)}

        return self.call(get)

    @property
    def system_title(self):
        """The meter's system title (8 bytes)."""
        return self.call(lambda sim: bytes(sim.meter.keys.system_title))

    @property
    def uses_demo_keys(self):
        """Whether the keys in force are the public demo keys."""
        return self.call(lambda sim: sim.uses_demo_keys)

    # ------------------------------------------------------------ the meter's thread

    def call(self, fn, *args, timeout=10.0):
        """Run ``fn(meter, *args)`` in the meter's thread (meter: the
        SimulatedMeter) and return its result; for what the other methods
        do not offer."""
        if self._stopped:
            raise RuntimeError("the meter is stopped")
        return self.service.call(fn, self.meter, *args, timeout=timeout)

    def now(self):
        """The meter's time (aware UTC datetime): the host's clock, moved by
        ``advance()``, ``accelerate`` and clock SETs."""
        return self.call(lambda sim: datetime.datetime.fromtimestamp(sim.now(), _UTC))

    def value(self, obis, attribute=2):
        """Attribute ``attribute`` of the object ``obis`` ("a.b.c.d.e.f"),
        read as a client's GET would (no access rights apply), decoded (see
        the module's notes on values). KeyError for an unknown object,
        :class:`AccessRefused` when its class refuses the read or the
        attribute is a view of the association serving (Association LN,
        the client's system title): read those with a client."""
        return self.call(_read, obis, attribute)

    def set_value(self, obis, value, attribute=2, tag=None):
        """Write ``value`` to attribute ``attribute`` of ``obis`` as a
        client's SET would (the class's checks apply, no access rights),
        with the attribute's current type (``tag``: an A-XDR tag number to
        encode with instead, value then in the ``axdr`` value model). A
        datetime sets a date-time (the Clock's time: the clock adjusted
        events follow). Values the simulation drives are overwritten at its
        next step (every second); energies count on from the value set.
        Raises :class:`AccessRefused` when the class refuses it."""
        self.call(_write, obis, value, attribute, tag)

    def advance(self, seconds):
        """Move the meter's time ``seconds`` ahead and simulate them: the
        energies count, profiles capture their rows, schedules run, as if
        the time had passed (no clock adjusted event: the meter's clock is
        not set, time passes). Returns the meter's new time."""
        seconds = int(seconds)
        if seconds < 0:
            raise ValueError("advance() moves time forward only")
        return self.call(self._advance, seconds, timeout=60.0 + seconds / 1000.0)

    def _advance(self, sim, seconds):
        sim.advance(seconds)
        return datetime.datetime.fromtimestamp(sim.now(), _UTC)

    def profile_rows(self, obis):
        """The rows of the Profile generic ``obis`` (oldest first), each a
        tuple of its capture objects' values; clock columns as aware UTC
        datetimes."""
        return self.call(_profile_rows, obis)

    def events(self, obis=None):
        """The event log rows as :class:`Event` (time, code, log), oldest
        first: of the event log ``obis``, or (None) of every event log the
        simulation writes, merged by time."""
        return self.call(_events, obis)

    def written(self):
        """What clients wrote: a list of :class:`Write`, one per SET or
        ACTION a client's association made and the meter accepted, oldest
        first (the last 10000)."""
        return self.call(lambda sim: [_decoded_write(sim, w) for w in self._writes])


# ---------------------------------------------------------------- in the meter's thread


def _ln_text(ln):
    return "%d.%d.%d.%d.%d.%d" % tuple(ln)


def _result_text(res):
    return "%s (%d)" % (_RESULT_NAMES.get(res, "result"), res)


def _outside(e, attr, ex):
    # an attribute that only makes sense within a client's association
    return AccessRefused("%s attribute %d: not available outside a client's association (%r)"
                         % (_ln_text(e[base.E_LN]), attr, ex), base.OTHER_REASON)


def _clock_entry(sim):
    from dlms_micro.cosem import clock

    return clock.meter_clock(sim.meter)


def _datetime_of(sim, b, p=0):
    # 12 bytes of date-time -> aware UTC datetime, or None (not one instant)
    from dlms_micro.cosem import clock

    utc = clock.utc_of(sim.meter, _clock_entry(sim), b, p)
    return None if utc is None else datetime.datetime.fromtimestamp(utc, _UTC)


def _plain(sim, tag, v, is_time=False):
    # the axdr value model -> plain Python values
    if tag == axdr.ARRAY:
        return [_plain(sim, t, x) for t, x in v]
    if tag == axdr.STRUCTURE:
        return tuple(_plain(sim, t, x) for t, x in v)
    if tag == axdr.COMPACT_ARRAY:
        return v[1]
    if isinstance(v, axdr.DateTime):
        b = bytearray(12)
        v.put(b, 0)
        return _datetime_of(sim, b)
    if is_time and tag == axdr.OCTET_STRING and len(v) == 12:
        return _datetime_of(sim, v)
    return v


def _attribute(sim, e, attr):
    # -> (tag, value) of attribute attr of entry e, as the meter encodes it
    from dlms_micro.cosem import common

    size = 1024
    while True:
        ctx = base.Context(sim.meter)
        buf = bytearray(size)
        try:
            res = common.get_attribute(ctx, e, attr, buf, 0, size)
        except axdr.BufferFull:
            res, ctx.cursor = 0, 1
        except Exception as ex:  # e.g. Association LN's view of the association serving
            raise _outside(e, attr, ex) from None
        if res:
            raise AccessRefused("%s attribute %d: the meter refused the read: %s"
                                % (_ln_text(e[base.E_LN]), attr, _result_text(res)), res)
        if not ctx.cursor:
            tag, v, _ = axdr.decode(buf, 0, ctx.pos)
            return tag, v
        size *= 4


def _entry(sim, obis):
    if isinstance(obis, (bytes, bytearray)):
        obis = _ln_text(obis)
    return sim.entry(obis)


def _read(sim, obis, attribute):
    e = _entry(sim, obis)
    tag, v = _attribute(sim, e, attribute)
    return _plain(sim, tag, v, is_time=e[base.E_CLASS] == 8 and attribute == 2)


def _encode(sim, e, attribute, value, tag):
    if tag is not None:
        return axdr.encoded(tag, value)
    cur_tag, _cur = _attribute(sim, e, attribute)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            raise ValueError("a naive datetime: give one with a time zone (e.g. datetime.timezone.utc)")
        u = value.astimezone(_UTC)
        dt = axdr.DateTime(u.year, u.month, u.day, u.isoweekday(), u.hour, u.minute, u.second,
                           u.microsecond // 10000, 0, 0xFF)
        b = bytearray(14)
        n = dt.encode(b, 0, axdr.DATE_TIME if cur_tag == axdr.DATE_TIME else axdr.OCTET_STRING)
        return bytes(b[:n])
    try:
        return axdr.encoded(cur_tag, _like(cur_tag, _cur, value))
    except DlmsError as ex:
        raise TypeError("%s attribute %d holds a %s: %s" % (_ln_text(e[base.E_LN]), attribute,
                                                            axdr.tag_name(cur_tag), ex)) from None


def _like(tag, cur, value):
    # a plain value -> the axdr value model, typed as the current value
    # (cur) is: structures element by element, arrays like their first
    # element
    if tag == axdr.STRUCTURE and isinstance(value, (list, tuple)):
        if len(value) != len(cur):
            raise TypeError("a structure of %d elements, not %d" % (len(cur), len(value)))
        return [(t, _like(t, c, v)) for (t, c), v in zip(cur, value)]
    if tag == axdr.ARRAY and isinstance(value, (list, tuple)):
        if value and not cur:
            raise TypeError("the array is empty now: give tag= and the axdr value model")
        return [(cur[0][0], _like(cur[0][0], cur[0][1], v)) for v in value]
    if isinstance(value, str) and tag == axdr.OCTET_STRING:
        return value.encode()
    return value


def _write(sim, obis, value, attribute, tag):
    e = _entry(sim, obis)
    data = _encode(sim, e, attribute, value, tag)
    ctx = base.Context(sim.meter)
    ctx.r = axdr.Reader(data)
    ctx.has_data = True
    ctx.buf = bytearray(64)
    ctx.limit = len(ctx.buf)
    if attribute == 1:
        res = base.READ_WRITE_DENIED
    else:
        try:
            res = sim.meter.handlers[e[base.E_IC]].set(ctx, e, attribute)
        except Exception as ex:
            raise _outside(e, attribute, ex) from None
    if res:
        raise AccessRefused("%s attribute %d: the meter refused the value %r: %s"
                            % (_ln_text(e[base.E_LN]), attribute, value, _result_text(res)), res)


def _profile_rows(sim, obis):
    from dlms_micro.cosem import profile

    e = _entry(sim, obis)
    if e[base.E_CLASS] != 7:
        raise ValueError("%s is not a Profile generic" % _ln_text(e[base.E_LN]))
    cols = e[base.E_PARAM][profile.P_CAPTURE_OBJECTS]
    times = [c[profile.C_CLASS] == 8 and c[profile.C_ATTR] == 2 for c in cols]
    _tag, rows = _attribute(sim, e, 2)
    out = []
    for _t, row in rows:
        out.append(tuple(_plain(sim, t, v, times[i] if i < len(times) else False) for i, (t, v) in enumerate(row)))
    return out


def _events(sim, obis):
    from dlms_micro.cosem import profile

    logs = [_entry(sim, obis)] if obis is not None else list(sim.event_logs)
    out = []
    for e in logs:
        cols = e[base.E_PARAM][profile.P_CAPTURE_OBJECTS]
        ti = ci = -1
        for i, c in enumerate(cols):
            if c[profile.C_CLASS] == 8 and c[profile.C_ATTR] == 2 and ti < 0:
                ti = i
            elif ci < 0:
                ci = i
        name = _ln_text(e[base.E_LN])
        for row in _profile_rows(sim, e[base.E_LN]):
            out.append(Event(row[ti] if ti >= 0 else None, row[ci] if ci >= 0 else None, name))
    if obis is None and len(logs) > 1:
        far = datetime.datetime.min.replace(tzinfo=_UTC)
        out.sort(key=lambda ev: ev.time or far)
    return out


# ---------------------------------------------------------------- the written() hook


class _WriteLog:
    # The recording proxies' shared state: the log, and how deep in a
    # handler call the meter is (a client's ACTION that runs a script makes
    # nested SETs/ACTIONs: only the client's own is logged).
    def __init__(self, sim, log):
        self.sim = sim
        self.log = log
        self.depth = 0


class _RecordingHandler:
    # An interface-class handler that logs the SETs and ACTIONs a client's
    # association (ctx.assoc set) made and the class accepted; everything
    # else goes to the wrapped handler.
    def __init__(self, inner, state):
        self._inner = inner
        self._state = state

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def set(self, ctx, obj, attr):
        return self._served("set", self._inner.set, ctx, obj, attr)

    def action(self, ctx, obj, method):
        return self._served("action", self._inner.action, ctx, obj, method)

    def _served(self, service, fn, ctx, obj, index):
        st = self._state
        # HLS pass 3 (Association LN reply_to_HLS_authentication) is the
        # association being established, not a write
        outer = st.depth == 0 and ctx.assoc is not None and not (service == "action" and index == 1 and
                                                                 obj[base.E_CLASS] == 15)
        data = None
        if outer:
            data = _data_at(ctx) if service == "set" or ctx.has_data else b""
            sap = ctx.assoc.client_sap
            t = st.sim.now()  # before: a SET of the clock moves it
        st.depth += 1
        try:
            res = fn(ctx, obj, index)
        finally:
            st.depth -= 1
        if outer and res == base.SUCCESS:
            st.log.append((t, sap, service, bytes(obj[base.E_LN]), obj[base.E_CLASS], index, data))
        return res


def _data_at(ctx):
    # the A-XDR Data element at the request reader's position, as bytes
    r = ctx.r
    try:
        w = axdr.Reader(r.buf, r.pos, r.end)
        w.skip()
        return bytes(r.buf[r.pos:w.pos])
    except Exception:  # a malformed value: the class refuses it anyway
        return bytes(r.buf[r.pos:r.end])


def _record_writes(sim, log):
    m = sim.meter
    state = _WriteLog(sim, log)
    m.handlers = tuple(_RecordingHandler(h, state) for h in m.handlers)


def _decoded_write(sim, w):
    utc, sap, service, ln, class_id, index, data = w
    value = None
    if data:
        try:
            tag, v, _ = axdr.decode(data)
            value = _plain(sim, tag, v, is_time=class_id == 8 and service == "set" and index == 2)
        except Exception:
            value = None
    return Write(datetime.datetime.fromtimestamp(utc, _UTC), sap, service, _ln_text(ln), class_id, index, value,
                 data or b"")
