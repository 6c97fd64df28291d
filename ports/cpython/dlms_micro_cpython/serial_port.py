# HDLC over a serial line for a dlms_micro meter, in the asyncio loop:
#
#   line = SerialLine(make_channel, device="/dev/ttyUSB0", baudrate=9600)
#   line = PtyLine(make_channel)        # a pseudo-terminal; line.path is the
#                                       # slave side a client opens
#   await line.start(); ...; await line.stop()
#
# One Channel serves the line for as long as it is open (a serial line is one
# link; the HDLC link itself handles SNRM/DISC and timeouts). Reads are
# non-blocking (add_reader on the file descriptor); writes that cannot go out
# at once are queued and flushed when the descriptor is writable.

import asyncio
import errno
import logging
import os
import tty

from dlms_micro_cpython.decode import summary as frame_summary
from dlms_micro_cpython.driver import POLL_INTERVAL, ChannelDriver

_READ_SIZE = 4096


class _FdLine:
    # A byte stream on a non-blocking file descriptor, pumped into a Channel.
    kind = "serial"

    def __init__(self, make_channel, logger=None):
        self.make_channel = make_channel
        self.logger = logger or logging.getLogger("dlms_micro.serial")
        self.driver = None
        self.path = None
        self._fd = -1
        self._pending = bytearray()
        self._writer_on = False
        self._timer = None
        self._loop = None

    # subclasses open / close the descriptor
    def _open(self):
        raise NotImplementedError

    def _close_fd(self):
        raise NotImplementedError

    def _read(self):
        return os.read(self._fd, _READ_SIZE)

    def _write_some(self, data):
        return os.write(self._fd, data)

    async def start(self):
        """Open the line and serve HDLC on it (one Channel for as long as
        it is open); returns self. ``path`` is then the device or the
        pseudo-terminal's slave path."""
        self._loop = asyncio.get_running_loop()
        self._open()
        name = "%s %s" % (self.kind, self.path)

        def core_log(msg, _name=name):
            self.logger.info("%s: %s", _name, msg)

        ch = self.make_channel("hdlc")
        if hasattr(ch, "set_log"):
            ch.set_log(core_log)
        else:
            ch.log = core_log
        self.driver = ChannelDriver(ch, self._write, self._close_from_channel, core_log)
        self._loop.add_reader(self._fd, self._on_readable)
        self._timer = self._loop.call_later(POLL_INTERVAL, self._tick)
        return self

    async def stop(self):
        """Stop serving and close the line (a pty's symlink removed when it
        is still the one this line made)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd >= 0:
            self._loop.remove_reader(self._fd)
            if self._writer_on:
                self._loop.remove_writer(self._fd)
                self._writer_on = False
            if self.driver is not None:
                self.driver.connection_lost()
            self._close_fd()
            self._fd = -1

    def _on_readable(self):
        try:
            data = self._read()
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:
                # pty: no process has the slave side open (any more)
                return self._idle_hangup()
            self.logger.error("%s %s: read error: %s", self.kind, self.path, e)
            return self._idle_hangup()
        if not data:
            return self._idle_hangup()
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("%s %s rx %s (%s)", self.kind, self.path, data.hex(), frame_summary(data, self.kind))
        try:
            self.driver.data_received(data)
        except Exception:
            self.logger.exception("%s %s: error serving data", self.kind, self.path)

    def _idle_hangup(self):
        # Nobody is on the other side; stop watching until the next tick so
        # an EIO/EOF does not spin the loop.
        self._loop.remove_reader(self._fd)
        self._loop.call_later(POLL_INTERVAL, self._rearm)

    def _rearm(self):
        if self._fd >= 0:
            self._loop.add_reader(self._fd, self._on_readable)

    def _write(self, data):
        if self.logger.isEnabledFor(logging.DEBUG):
            self.logger.debug("%s %s tx %s (%s)", self.kind, self.path, data.hex(), frame_summary(data, self.kind))
        if self._pending:
            self._pending += data
            return
        try:
            n = self._write_some(data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self.logger.error("%s %s: write error: %s", self.kind, self.path, e)
            return
        if n < len(data):
            self._pending += data[n:]
            if not self._writer_on:
                self._loop.add_writer(self._fd, self._on_writable)
                self._writer_on = True

    def _on_writable(self):
        try:
            n = self._write_some(bytes(self._pending))
        except BlockingIOError:
            return
        except OSError as e:
            self.logger.error("%s %s: write error: %s", self.kind, self.path, e)
            n = len(self._pending)
        del self._pending[:n]
        if not self._pending:
            self._loop.remove_writer(self._fd)
            self._writer_on = False

    def push_ui(self, apdu, client):
        """Send an unsolicited APDU (a DataNotification) as HDLC UI frames
        from this line's server address to `client`, in the link's
        negotiated (or default) frame size. False when the line is not
        open or the APDU does not fit."""
        from dlms_micro.link import hdlc

        if self._fd < 0 or self.driver is None:
            return False
        link = self.driver.channel.link
        out = bytearray(len(apdu) + 16 * (len(apdu) // 32 + 2))
        end = hdlc.ui_frames(out, 0, apdu, 0, len(apdu), link.logical, link.physical, client, link.max_info_tx)
        if end < 0:
            return False
        self._write(bytes(out[:end]))
        return True

    def _close_from_channel(self):
        # HDLC never asks for this; a line cannot be closed by the protocol.
        return False

    def _tick(self):
        self._timer = None
        try:
            self.driver.poll()
        except Exception:
            self.logger.exception("%s %s: error in timer poll", self.kind, self.path)
        if self._fd >= 0:
            self._timer = self._loop.call_later(POLL_INTERVAL, self._tick)


class SerialLine(_FdLine):
    """HDLC on a real serial port (RS-485 adapter, optical probe) through
    pyserial, 8N1 at baudrate. make_channel(kind) makes the meter's
    Channel (SimulatedMeter.make_channel)."""

    kind = "serial"

    def __init__(self, make_channel, device, baudrate=9600, logger=None):
        super().__init__(make_channel, logger)
        self.device = device
        self.baudrate = baudrate
        self._serial = None

    def _open(self):
        import serial  # pyserial

        self._serial = serial.Serial(self.device, self.baudrate, bytesize=8, parity="N", stopbits=1, timeout=0)
        self.path = self.device
        self._fd = self._serial.fileno()

    def _read(self):
        return self._serial.read(max(1, self._serial.in_waiting))

    def _close_fd(self):
        self._serial.close()
        self._serial = None


class PtyLine(_FdLine):
    """HDLC on a new pseudo-terminal: the meter serves the master side;
    ``path`` is the slave, which a client opens as if it were a serial port
    (raw mode). link_path: a symlink made to it, only where nothing is
    (PtyLinkError otherwise)."""

    kind = "pty"

    def __init__(self, make_channel, logger=None, link_path=None):
        super().__init__(make_channel, logger)
        self._slave = -1
        self.link_path = link_path  # optional stable symlink to the slave
        self._link_made = False  # whether this line made the symlink

    def _open(self):
        master, slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation, every byte passes as is.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._fd = master
        # Keep our own handle on the slave so a client closing it does not
        # hang up the master, and the next client can open it again.
        self._slave = slave
        self.path = os.ttyname(slave)
        if self.link_path:
            try:
                _make_link(self.path, self.link_path)
            except BaseException:
                os.close(master)
                os.close(slave)
                self._fd = self._slave = -1
                raise
            self._link_made = True

    def _close_fd(self):
        os.close(self._fd)
        os.close(self._slave)
        self._slave = -1
        if self._link_made:
            self._link_made = False
            _remove_link(self.path, self.link_path)


# THE --pty-link SYMLINK. The path is the user's, and the process may run with
# rights over files it must never touch (`--pty-link /etc/passwd` once deleted
# that file): the link is only ever created where nothing is (os.symlink fails
# on anything already there, with no window between a check and the act), or
# replaces a symlink this process made itself and that still points where it
# made it point. Anything else is refused with PtyLinkError. On stop the link
# is removed only when it is still the symlink this line made.
_links_made = {}  # path -> the pty path it points to, for links this process made


class PtyLinkError(OSError):
    """The --pty-link path holds something this process did not make."""


def _make_link(target, path):
    try:
        os.symlink(target, path)
    except FileExistsError:
        if not _ours(path):
            raise PtyLinkError(
                "--pty-link %s: something is already there (%s) that this process did not make; "
                "refusing to replace it (remove it yourself or choose another path)" % (path, _what_is(path))
            ) from None
        # Our own link from a line opened earlier: replace it atomically.
        tmp = "%s.%d.tmp" % (path, os.getpid())
        os.symlink(target, tmp)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    _links_made[path] = target


def _remove_link(target, path):
    # Remove path only when it is still the symlink this process made to
    # target; whatever replaced it since is left alone.
    if _links_made.get(path) != target:
        return
    del _links_made[path]
    try:
        if os.path.islink(path) and os.readlink(path) == target:
            os.unlink(path)
    except OSError:
        pass


def _ours(path):
    made = _links_made.get(path)
    try:
        return made is not None and os.path.islink(path) and os.readlink(path) == made
    except OSError:
        return False


def _what_is(path):
    if os.path.islink(path):
        return "a symlink"
    if os.path.isdir(path):
        return "a directory"
    return "a file"
