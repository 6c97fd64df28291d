# File storage for the state a meter must keep across restarts (invocation
# counters, stored values): one file per key in a data directory, written
# atomically (temporary file, fsync, os.replace, fsync of the directory), so a
# power cut at any instant leaves either the old value or the new one, never a
# torn file.
#
#   store = FileStorage("/var/lib/meter")      # or FileStorage() for the default
#   store.put("ic.32", b"\x00\x00\x00\x05")
#   store.get("ic.32")                          # -> b"\x00\x00\x00\x05", or None
#
# The interface is deliberately small (bytes by key) so the MicroPython port's
# flash storage can offer the same one.

import os
import re

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_TMP_SUFFIX = ".tmp"


def default_dir():
    # $XDG_STATE_HOME/dlms-micro, else ~/.local/state/dlms-micro
    base = os.environ.get("XDG_STATE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "dlms-micro")


class FileStorage:
    def __init__(self, directory=None):
        self.directory = os.path.abspath(directory or default_dir())
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._clean_temporaries()

    def _path(self, key):
        if not isinstance(key, str) or not _KEY.match(key) or key.endswith(_TMP_SUFFIX):
            raise ValueError("storage key must be 1..100 of [A-Za-z0-9_.-], not starting with '.' or '-': %r" % (key,))
        return os.path.join(self.directory, key)

    def _clean_temporaries(self):
        # A temporary left by a crash mid-write is never a value: remove it.
        for name in os.listdir(self.directory):
            if name.endswith(_TMP_SUFFIX):
                try:
                    os.unlink(os.path.join(self.directory, name))
                except OSError:
                    pass

    def get(self, key):
        # The stored bytes, or None when the key was never written.
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put(self, key, value):
        # Store value (bytes-like) under key; when this returns, the value is
        # on disk.
        path = self._path(key)
        tmp = path + _TMP_SUFFIX
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(value)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        os.close(fd)
        os.replace(tmp, path)
        self._sync_dir()

    def delete(self, key):
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            return
        self._sync_dir()

    def keys(self):
        return sorted(n for n in os.listdir(self.directory) if _KEY.match(n) and not n.endswith(_TMP_SUFFIX))

    def _sync_dir(self):
        # Make the rename itself durable (POSIX); not possible on Windows.
        try:
            dfd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass
        finally:
            os.close(dfd)
