"""pytest plugin: a simulated meter for each test of a head-end.

Installed with the package (entry point ``pytest11``), it offers two
fixtures:

``dlms_meter``
    A meter served on free loopback ports (TCP wrapper and HDLC over TCP),
    started for the test and stopped after it: a
    :class:`~dlms_micro_cpython.api.MeterHandle` (addresses, client SAPs,
    keys, ``set_value``, ``value``, ``advance``, ``events``,
    ``profile_rows``, ``written``). Which meter: the ``dlms_meter`` marker's
    arguments, which are :func:`~dlms_micro_cpython.api.serve`'s::

        @pytest.mark.dlms_meter(definition="meters/demo.json", history=1, pty=True)
        def test_reads_the_load_profile(dlms_meter):
            ...

    else the ini option ``dlms_meter_definition``, else the demo meter. A
    relative definition path is taken from the rootdir. Function-scoped
    unless the ini option ``dlms_meter_scope`` says otherwise ("module",
    "session", ...: one meter then serves every test of that scope, and the
    marker is read from the module, class or session).

``dlms_meter_factory``
    ``dlms_meter_factory(definition=..., **serve_kwargs)`` starts one more
    meter per call (same defaults), all stopped after the test: for tests of
    several meters.
"""

import os

import pytest

MARKER = "dlms_meter"
INI_DEFINITION = "dlms_meter_definition"
INI_SCOPE = "dlms_meter_scope"
_DEFAULT = object()


def pytest_addoption(parser):
    parser.addini(INI_DEFINITION, "meter definition the dlms_meter fixture serves (JSON or Gurux XML, relative to "
                  "the rootdir); default: the demo meter", default="")
    parser.addini(INI_SCOPE, "scope of the dlms_meter fixture: function (default), class, module, package or "
                  "session", default="function")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "dlms_meter(definition=None, **serve_kwargs): the meter the dlms_meter fixture serves "
        "(dlms_micro_cpython.api.serve's arguments: history=1, accelerate=900, pty=True, seed=1, keys=..., ...)",
    )


def _scope(fixture_name, config):
    scope = config.getini(INI_SCOPE) or "function"
    if scope not in ("function", "class", "module", "package", "session"):
        raise pytest.UsageError("%s = %r: function, class, module, package or session" % (INI_SCOPE, scope))
    return scope


def _start(config, definition=_DEFAULT, **kw):
    from dlms_micro_cpython.api import serve

    if definition is _DEFAULT:
        definition = config.getini(INI_DEFINITION) or None
    if isinstance(definition, (str, os.PathLike)):
        path = os.fspath(definition)
        if not os.path.isabs(path):
            path = os.path.join(str(config.rootpath), path)
        definition = path
    kw.setdefault("host", "127.0.0.1")
    kw.setdefault("wrapper_port", 0)
    kw.setdefault("hdlc_port", 0)
    return serve(definition, **kw)


@pytest.fixture(scope=_scope)
def dlms_meter(request):
    """A simulated meter served for the test (see the module's notes): a
    MeterHandle, configured by the ``dlms_meter`` marker."""
    marker = request.node.get_closest_marker(MARKER)
    args = marker.args if marker else ()
    kw = dict(marker.kwargs) if marker else {}
    if len(args) > 1:
        raise pytest.UsageError("@pytest.mark.dlms_meter takes one positional argument (the definition)")
    if args:
        kw["definition"] = args[0]
    meter = _start(request.config, **kw)
    try:
        yield meter
    finally:
        meter.stop()


@pytest.fixture
def dlms_meter_factory(request):
    """A function ``make(definition=..., **serve_kwargs)`` that serves one
    more meter per call (a MeterHandle each, on free ports); every meter it
    made is stopped after the test."""
    made = []

    def make(definition=_DEFAULT, **kw):
        meter = _start(request.config, definition, **kw)
        made.append(meter)
        return meter

    try:
        yield make
    finally:
        for meter in reversed(made):
            meter.stop()
