# Flash storage for the state a meter keeps across power cuts, with the same
# duck-typed interface as the CPython port's FileStorage:
#
#   store = FlashStorage("/data")
#   store.put("ic.32", b"\x00\x00\x00\x05")   # durable when it returns
#   store.get("ic.32")                         # -> bytes, or None
#   store.put_lazy("energy", b"...")           # RAM now, flash at most every
#   store.service(now)                         #   min_interval_ms (the loop)
#
# Record format: 2-byte big-endian length, the value, CRC-16/X.25 over both.
# A put writes the whole record to "<key>.new", then renames it over "<key>".
# A power cut at any instant leaves one of:
#   - "<key>.new" torn (bad CRC or length): ignored, "<key>" is the old value;
#   - "<key>.new" complete, rename not done: it is the newest good value;
#   - rename done: "<key>" is the new value.
# get() therefore prefers a valid "<key>.new" and falls back to "<key>".
# os.rename over an existing file is atomic on LittleFS (the ESP32 default);
# on FAT it fails, so the old file is removed first (the .new copy then
# carries the value across that window).

import os

from dlms_micro import crc16

_NEW = ".new"


class FlashStorage:
    def __init__(self, directory="/data", min_interval_ms=60000):
        self.directory = directory
        self.min_interval_ms = min_interval_ms
        self.writes = 0  # records written since boot (flash wear figure)
        self._lazy = {}  # key -> value waiting for service()
        self._lazy_at = None  # ticks of the last lazy flush
        try:
            os.mkdir(directory)
        except OSError:
            pass  # exists

    def _path(self, key):
        if not key or "/" in key or key.endswith(_NEW):
            raise ValueError("bad storage key")
        return self.directory + "/" + key

    def get(self, key):
        v = self._lazy.get(key)
        if v is not None:
            return v
        p = self._path(key)
        v = _read_record(p + _NEW)
        if v is not None:
            return v
        return _read_record(p)

    def put(self, key, value):
        # Durable on return; an unchanged value costs no flash write.
        self._lazy.pop(key, None)
        if self.get(key) == value:
            return
        p = self._path(key)
        rec = encode_record(value)
        with open(p + _NEW, "wb") as f:
            f.write(rec)
        try:
            os.rename(p + _NEW, p)
        except OSError:
            # FAT: no rename over an existing file
            _remove(p)
            os.rename(p + _NEW, p)
        self.writes += 1

    def put_lazy(self, key, value):
        # For values that may lose the last minutes on a power cut (energy
        # registers between saves): kept in RAM, written by service().
        self._lazy[key] = bytes(value)

    def service(self, now, force=False):
        # From the main loop with the ms tick: flush lazy values at most once
        # per min_interval_ms (bounded flash wear). Returns records written.
        if not self._lazy:
            return 0
        if not force and self._lazy_at is not None and _ticks_diff(now, self._lazy_at) < self.min_interval_ms:
            return 0
        self._lazy_at = now
        pending = self._lazy
        self._lazy = {}
        n = 0
        for key in pending:
            self.put(key, pending[key])
            n += 1
        return n

    def due_ms(self, now):
        # ms until service() writes the lazy values (None: none pending): a
        # battery board's light sleep ends by then (dlms_micro_mp.power)
        if not self._lazy:
            return None
        if self._lazy_at is None:
            return 0
        d = self.min_interval_ms - _ticks_diff(now, self._lazy_at)
        return d if d > 0 else 0

    def damaged(self, key):
        # Whether a record for key is on flash but none of its copies is
        # complete and intact (torn or corrupted): get() says None for it as
        # for a missing one, and a key store must tell the two apart.
        p = self._path(key)
        if self.get(key) is not None:
            return False
        return _exists(p) or _exists(p + _NEW)

    def delete(self, key):
        self._lazy.pop(key, None)
        p = self._path(key)
        _remove(p + _NEW)
        _remove(p)


def encode_record(value):
    # A value as stored: 2-byte big-endian length, the value, CRC-16/X.25
    # (tools/provision.py writes records in this form for the board).
    n = len(value)
    rec = bytearray(n + 4)
    rec[0] = n >> 8
    rec[1] = n & 0xFF
    rec[2 : 2 + n] = value
    crc16.put_fcs(rec, 0, 2 + n)
    return rec


def _exists(path):
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def _ticks_diff(a, b):
    d = (a - b) & 0x3FFFFFFF
    return d - 0x40000000 if d >= 0x20000000 else d


def _remove(p):
    try:
        os.remove(p)
    except OSError:
        pass


def _read_record(path):
    # The value of a complete record, or None (missing, torn, corrupt).
    try:
        with open(path, "rb") as f:
            rec = f.read()
    except OSError:
        return None
    if len(rec) < 4:
        return None
    n = (rec[0] << 8) | rec[1]
    if len(rec) != n + 4 or not crc16.check(rec, 0, n + 4):
        return None
    return bytes(rec[2 : 2 + n])
