"""The CPython port of dlms_micro: asyncio TCP, pyserial, file storage, the
``dlms-micro`` command, and a simulated meter to embed in programs and tests
(``serve``, see :mod:`dlms_micro_cpython.api`)."""

from dlms_micro_cpython.api import AccessRefused, ClientSap, Event, MeterHandle, Write, serve  # noqa: F401

__all__ = ["serve", "MeterHandle", "ClientSap", "Event", "Write", "AccessRefused"]
