# The IEC 62056-21 readout client (dlms_micro.source.iec21_readout) reading
# a test meter over a pseudo-terminal, with the line speed changes done for
# real (termios on the pty) and the meter's timing (reaction time 200 ms).
#
# The meter answers with messages built from IEC 62056-21:2002 clause 6.3's
# formats and the mode C flow of 6.4.4 (see tests/portable/
# test_source_iec21.py for the list): request "/?!" or "/?ADDRESS!",
# identification "/ABC5\2METER01", acknowledgement "ACK 0 5 0", data message
# at 9600 Bd with "1.8.0(012345.678*kWh)"-style lines and the BCC.
# Scenario: a good readout; one with a wrong BCC (retried, then good);
# the meter unplugged (values kept, STALE, timeout, logged once); plugged
# back (recovers); a request for another device address is not answered.

import os
import select
import sys
import termios
import threading
import time
import tty
from pathlib import Path

from dlms_micro import source
from dlms_micro.source import iec21_readout as r

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "portable"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import source_pty  # noqa: E402
from source_pty import set_speed, speed  # noqa: E402
from source_support import data_message  # noqa: E402
IDENT = b"/ABC5\\2METER01\r\n"
BLOCK = (b"F.F(00000000)\r\nC.1.0(12345678)\r\n0.9.1(12:30:00)\r\n1.8.0(012345.678*kWh)\r\n"
         b"2.8.0(000001.200*kWh)\r\n1.6.0(0001.234*kW)(2612071215)\r\n32.7.0(230.1*V)\r\n!\r\n")


class ReadoutMeter(threading.Thread):
    # The meter's side: one readout per request, mode C.
    def __init__(self, fd, address=b"4711"):
        super().__init__(daemon=True)
        self.fd = fd
        self.address = address
        self.plugged = True
        self.corrupt = 0  # readouts still to send with a wrong BCC
        self.speeds = []  # line speed when each data message went out
        self.readouts = 0
        self.stop = False

    def read_line(self, deadline):
        buf = b""
        while time.monotonic() < deadline and not self.stop:
            r_, _, _ = select.select([self.fd], [], [], 0.01)
            if r_:
                c = os.read(self.fd, 1)
                buf += bytes((c[0] & 0x7F,))
                if buf.endswith(b"\r\n"):
                    return buf
        return None

    def run(self):
        while not self.stop:
            line = self.read_line(time.monotonic() + 0.5)
            if line is None or not self.plugged:
                continue
            if not (line.startswith(b"/?") and line.endswith(b"!\r\n")):
                continue
            addr = line[2:-3]
            if addr and addr.lstrip(b"0") != self.address.lstrip(b"0"):
                continue  # another meter's address: silence
            time.sleep(0.2)  # t_r min
            os.write(self.fd, IDENT)
            ack = self.read_line(time.monotonic() + 1.5)
            if ack != b"\x06050\r\n":
                continue
            time.sleep(0.25)  # the client switches after its ACK is out
            msg = bytearray(data_message(BLOCK))
            if self.corrupt:
                self.corrupt -= 1
                msg[-1] ^= 0x20
            self.speeds.append(speed(self.fd))
            os.write(self.fd, msg)
            self.readouts += 1


class Line:
    def __init__(self):
        self.fd, self.meter_fd = os.openpty()
        tty.setraw(self.fd)
        tty.setraw(self.meter_fd)
        set_speed(self.fd, 300)
        self.meter = ReadoutMeter(self.meter_fd)
        self.meter.start()
        self.sent = []

    def close(self):
        self.meter.stop = True
        self.meter.join(5)
        os.close(self.fd)
        os.close(self.meter_fd)

    def poll(self, src, deadline_s=15.0):
        # Drive src through one poll, as a port does over a UART.
        source_pty.poll(src, self.fd, self.sent, deadline_s)


def readout(**kw):
    s = r.Readout(["1.8.0", "2.8.0", "F.F", "C.1.0", "0.9.1", "1.6.0", "1.6.0[1]", "32.7.0"],
                  retry_pause=300, **kw)
    log = []
    s.log = log.append
    return s, log


def test_readout_over_a_pty_with_baud_change_bcc_retry_unplug_and_recovery():
    line = Line()
    try:
        s, log = readout(address=b"4711", retries=1)
        line.poll(s)
        assert s.status == source.OK, (s.error, s.last_error)
        assert line.sent[:2] == [b"/?4711!\r\n", b"\x06050\r\n"]
        assert line.meter.speeds == [termios.B9600]  # the port really switched
        assert speed(line.fd) == termios.B9600
        i = s.index("1.8.0")
        assert (s.values[i], s.scalers[i], s.units[i]) == (12345678, 0, 30)
        assert s.text(s.index("C.1.0")) == b"12345678" and s.text(s.index("0.9.1")) == b"12:30:00"
        assert s.values[s.index("32.7.0")] == 2301 and s.scalers[s.index("32.7.0")] == -1
        good_at = s.stamps[i]
        # a wrong BCC: discarded, the retry (from 300 Bd again) is good
        line.meter.corrupt = 1
        line.poll(s)
        assert s.status == source.OK and s.bad_bcc == 1 and line.meter.readouts == 3
        assert log == ["iec21 readout: wrong BCC, readout discarded", "source: recovered"]
        # unplugged: no answer to either attempt
        line.meter.plugged = False
        good_at = s.stamps[i]
        line.poll(s)
        assert s.status == source.STALE and s.error == source.E_TIMEOUT
        assert s.values[i] == 12345678 and s.field_status[i] == source.STALE and s.stamps[i] == good_at
        line.poll(s)
        assert log.count("iec21 readout: no answer") == 1
        # plugged back
        line.meter.plugged = True
        line.poll(s)
        assert s.status == source.OK and s.field_status[i] == source.OK and s.stamps[i] != good_at
        assert log[-1] == "source: recovered"
    finally:
        line.close()


def test_other_device_address_gets_no_answer():
    line = Line()
    try:
        s, log = readout(address=b"9999", retries=0, reply_timeout=800)
        line.poll(s)
        assert s.status == source.NO_VALUE and s.error == source.E_TIMEOUT
        assert line.meter.readouts == 0 and log == ["iec21 readout: no answer"]
    finally:
        line.close()
