# File storage for the state a meter must keep across restarts (invocation
# counters, stored values): one file per key in a data directory, written
# atomically (temporary file, fsync, os.replace, fsync of the directory), so a
# power cut at any instant leaves either the old value or the new one, never a
# torn file.
#
#   store = FileStorage("/var/lib/meter")      # or FileStorage() for the default
#   store.put("ic.32", b"\x00\x00\x00\x05")
#   store.get("ic.32")                          # -> b"\x00\x00\x00\x05", or None
#   FileStorage(path, lock=True)                # a serving process: see below
#
# The interface is deliberately small (bytes by key) so the MicroPython port's
# flash storage can offer the same one.
#
# ONE PROCESS PER DATA DIRECTORY. Two meters on one directory would hand out
# the same transmit invocation counters under the same key and system title:
# AES-GCM nonce reuse, which gives away the authentication key (NIST SP
# 800-38D 8.3: an IV is never used twice under one key). A process that
# serves a meter takes the directory with store.lock() first: an exclusive
# fcntl.flock on LOCK_NAME in it, holding the PID; a second process gets
# DataDirLocked naming the holder. The kernel drops the lock when the holder
# exits, however it exits (a power cut of the process included), so a stale
# lock file never keeps a meter from starting.

import os
import re

_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_TMP_SUFFIX = ".tmp"
LOCK_NAME = ".dlms-micro.lock"  # starts with '.': never a storage key


class DataDirLocked(OSError):
    """Another process serves a meter from this data directory: ``pid``
    (int, or None when it could not be read) holds it."""

    def __init__(self, directory, pid):
        self.directory = directory
        self.pid = pid  # the holder's PID, or None when it could not be read
        who = "process %d" % pid if pid else "another process (PID not known yet)"
        super().__init__(
            "data directory %s is in use by %s; two meters on one directory would reuse invocation counters "
            "(stop that one, or give this one another --data DIR)" % (directory, who)
        )


def default_dir():
    """The default data directory: $XDG_STATE_HOME/dlms-micro, else
    ~/.local/state/dlms-micro."""
    base = os.environ.get("XDG_STATE_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "dlms-micro")


class FileStorage:
    """The meter's persistent state, one file per key in a directory (made
    if missing), each written atomically: a power cut leaves the old value
    or the new one, never a torn file. Keys are 1..100 of [A-Za-z0-9_.-].

    directory: None for ``default_dir()``. lock: take the directory for
    this process first (``lock()``); a meter that serves must, so that two
    processes never reuse invocation counters.
    """

    def __init__(self, directory=None, lock=False):
        # lock: take the directory for this process first (see lock()), so
        # that the clean-up of temporaries never touches another meter's
        # write in flight.
        self.directory = os.path.abspath(directory or default_dir())
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._lock_fd = -1
        if lock:
            self.lock()
        self._clean_temporaries()

    def lock(self):
        """Take the directory for this process (an exclusive flock on
        LOCK_NAME holding the PID): returns self, raises DataDirLocked when
        another process holds it. Held until unlock() or the process
        ends, however it ends."""
        if self._lock_fd >= 0:
            return self
        try:
            import fcntl
        except ImportError:  # no flock on this platform (Windows): unguarded
            return self
        path = os.path.join(self.directory, LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirLocked(self.directory, pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, b"%d\n" % os.getpid())
        self._lock_fd = fd
        return self

    def unlock(self):
        """Give the directory back (nothing when not locked)."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

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
        """The stored bytes, or None when the key was never written."""
        try:
            with open(self._path(key), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def put(self, key, value):
        """Store value (bytes-like) under key; when this returns, the value
        is on disk (written to a temporary, fsynced, renamed)."""
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
        """Remove key (nothing when it does not exist)."""
        try:
            os.unlink(self._path(key))
        except FileNotFoundError:
            return
        self._sync_dir()

    def keys(self):
        """Every stored key, sorted."""
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


def _read_pid(fd):
    try:
        text = os.pread(fd, 32, 0)
        return int(text.strip() or b"0") or None
    except (OSError, ValueError):
        return None
