"""Run the Cortex-M3 firmware (build/firmware/qemu/firmware.elf) in QEMU.

    with Qemu(elf) as q:                  # serial on stdin/stdout pipes
        print(q.exec("import fw_bench; fw_bench.main()"))
    with Qemu(elf, pty=True) as q:        # serial on a pseudo-terminal
        q.pty_path                        # for pyserial / a head-end

MPS2-AN385 machine, bare metal, the REPL UART as the only serial line.
`-icount shift=0`: every guest instruction advances virtual time by 1 ns,
so time.ticks_us() there counts thousands of instructions, the same on
every run and every host. exec() uses MicroPython's raw REPL (Ctrl-A, the
code, Ctrl-D; "OK", output, 0x04, error, 0x04).
"""

import os
import re
import select
import subprocess
import time


class QemuError(Exception):
    pass


class Qemu:
    def __init__(self, elf, pty=False, icount=True, timeout=30):
        self.elf = elf
        self.pty = pty
        self.icount = icount
        self.timeout = timeout
        self.proc = None
        self.pty_path = None
        self._fd = None  # where the serial line is read and written
        self._buf = b""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        cmd = ["qemu-system-arm", "-machine", "mps2-an385", "-display", "none", "-monitor", "none", "-semihosting",
               "-serial", "pty" if self.pty else "stdio", "-kernel", self.elf]
        if self.icount:
            cmd[1:1] = ["-icount", "shift=0"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        if self.pty:
            # "char device redirected to /dev/pts/N (label serial0)"
            line = self._read_line(self.proc.stdout.fileno(), 10)
            m = re.search(rb"(/dev/pts/\d+)", line)
            if not m:
                self.stop()
                raise QemuError("qemu gave no pty: %r" % line)
            self.pty_path = m.group(1).decode()
            self._fd = os.open(self.pty_path, os.O_RDWR | os.O_NOCTTY)
            import termios
            import tty

            tty.setraw(self._fd, termios.TCSANOW)
        else:
            self._fd = None
        return self

    def _read_line(self, fd, timeout):
        end = time.monotonic() + timeout
        data = b""
        while b"\n" not in data:
            left = end - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                break
            chunk = os.read(fd, 256)
            if not chunk:
                break
            data += chunk
        return data

    def write(self, data):
        if self._fd is not None:
            os.write(self._fd, data)
        else:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()

    def _rfd(self):
        return self._fd if self._fd is not None else self.proc.stdout.fileno()

    def read_until(self, marker, timeout=None):
        end = time.monotonic() + (timeout or self.timeout)
        fd = self._rfd()
        while marker not in self._buf:
            left = end - time.monotonic()
            if left <= 0:
                raise QemuError("timed out waiting for %r; got %r" % (marker, self._buf[-300:]))
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise QemuError("qemu ended; got %r" % self._buf[-300:])
                self._buf += chunk
        i = self._buf.index(marker) + len(marker)
        data, self._buf = self._buf[:i], self._buf[i:]
        return data

    def raw_repl(self):
        self.write(b"\r\x03\x03")
        time.sleep(0.05)
        self.write(b"\x01")
        self.read_until(b"raw REPL; CTRL-B to exit\r\n>")

    def exec(self, code, timeout=None):
        """Run code in the raw REPL; return its output; raise on an error."""
        self.raw_repl()
        data = code.encode() if isinstance(code, str) else code
        for i in range(0, len(data), 256):
            self.write(data[i:i + 256])
        self.write(b"\x04")
        self.read_until(b"OK", timeout)
        out = self.read_until(b"\x04", timeout)[:-1]
        err = self.read_until(b"\x04", timeout)[:-1]
        if err:
            raise QemuError("error on the target:\n%s" % err.decode(errors="replace"))
        return out.decode(errors="replace")

    def start_command(self, code):
        """Start code from the raw REPL that does not return (a meter's loop)."""
        self.raw_repl()
        self.write(code.encode() + b"\x04")
        self.read_until(b"OK")

    def stop(self):
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
