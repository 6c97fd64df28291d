# Drive a source (dlms_micro/source) over a pseudo-terminal the way a port
# drives it over a UART: bytes read go to feed(), EV_SEND is written,
# EV_BAUD sets the line speed with termios once the output has drained.
# Shared by the pty tests of the sources.

import os
import select
import termios
import time

from dlms_micro.ticks import TICKS_MASK

EV_NONE, EV_SEND, EV_BAUD, EV_DONE = 0, 1, 6, 8
SPEED = {300: termios.B300, 600: termios.B600, 1200: termios.B1200, 2400: termios.B2400,
         4800: termios.B4800, 9600: termios.B9600, 19200: termios.B19200}


def ticks():
    return int(time.monotonic() * 1000) & TICKS_MASK


def speed(fd):
    return termios.tcgetattr(fd)[5]  # ospeed


def set_speed(fd, baud):
    attrs = termios.tcgetattr(fd)
    attrs[4] = attrs[5] = SPEED[baud]
    termios.tcsetattr(fd, termios.TCSADRAIN, attrs)


def poll(src, fd, sent, deadline_s):
    # One poll of src (its poll() is called first); frames written are
    # appended to sent. Returns when the source reports EV_DONE.
    src.poll(ticks())
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.002)
        if r:
            data = os.read(fd, 512)
            src.feed(data, 0, len(data), ticks())
        while True:
            ev = src.next_event(ticks())
            if ev == EV_NONE:
                break
            if ev == EV_SEND:
                frame = bytes(src.tx_buf[src.tx_start : src.tx_end])
                sent.append(frame)
                os.write(fd, frame)
            elif ev == EV_BAUD:
                termios.tcdrain(fd)
                set_speed(fd, src.baud)
            elif ev == EV_DONE:
                return
    raise AssertionError("no end of poll within %s s" % deadline_s)
