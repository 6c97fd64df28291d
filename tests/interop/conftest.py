# Interop tests: real third-party DLMS clients (gurux-dlms, dlms-cosem) read
# the demo meter over real transports. CPython only.
#
# The meter runs in-process: a MeterService (the same code `dlms-micro serve`
# runs) in its own asyncio loop in a background thread, on OS-chosen loopback
# ports and a fresh pseudo-terminal, with its data directory under pytest's
# tmp dir. It is started once for the session and stopped at its end.
#
# No test can hang CI: every peer read has a deadline (interop_peers), and a
# per-test watchdog (SIGALRM) fails any test still running after
# TEST_TIME_LIMIT seconds.

import signal
import sys

import pytest

TEST_TIME_LIMIT = 60

if sys.implementation.name != "cpython":  # pragma: no cover
    collect_ignore_glob = ["*.py"]
else:
    # dlms-cosem logs every APDU through structlog to stdout at debug level;
    # keep its warnings only, so that a failure report stays readable.
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


@pytest.fixture(scope="session")
def meter(tmp_path_factory):
    from dlms_micro_cpython.demo import DemoMeter
    from dlms_micro_cpython.service import ThreadedService
    from dlms_micro_cpython.storage import FileStorage

    store = FileStorage(str(tmp_path_factory.mktemp("meter-data")))
    svc = ThreadedService(DemoMeter(storage=store, seed=1), host="127.0.0.1", wrapper_port=0, hdlc_port=0, pty=True)
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()


class _Watchdog(Exception):
    pass


@pytest.fixture(autouse=True)
def watchdog():
    def expired(signum, frame):
        raise _Watchdog("test still running after %d s: stopped by the interop watchdog" % TEST_TIME_LIMIT)

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, TEST_TIME_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
