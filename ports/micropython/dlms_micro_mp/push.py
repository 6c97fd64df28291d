# The board's push sender: each Push setup (class 40) of the meter sends its
# DataNotification (dlms_micro.app.notify, ciphered as the key store's
# security policy says) when its schedule, an alarm or its push method says
# so (dlms_micro.cosem.push), over TCP in a wrapper frame to its destination
# "host:port" (a board on Wi-Fi or Ethernet, the unix firmware). A port of
# dlms_micro_mp.loop.Loop: step(now) never blocks, so a push to a head-end
# that is slow or away never holds up RS-485 or the IR port. One push at a
# time; a connection not made within timeout_ms, or refused, counts as a
# failure and the Push setup's retries and repetition delay apply.
#
#   pp = PushPort(meter, log=log)          # every Push setup of the table
#   loop = Loop((..., pp))
#
# Transport service HDLC (UI frames on the serial lines) is not sent by
# this port (logged once per push).

import select
import socket

from dlms_micro import obis
from dlms_micro.app import notify
from dlms_micro.cosem import base, clock, push
from dlms_micro.link import wrapper

_IDLE = 0
_CONNECTING = 1
_SENDING = 2


class PushPort:
    def __init__(self, meter, log=print, max_pdu=512, timeout_ms=5000, check_ms=1000,
                 dest_wport=wrapper.PUSH_WPORT):
        self.meter = meter
        self.log = log
        self.objects = tuple(e for e in meter.table if e[base.E_CLASS] == push.PUSH_SETUP.class_id)
        self.notifier = notify.Notifier(meter)
        self.start = wrapper.HEADER_LEN
        self.buf = bytearray(self.start + notify.HEADER_ROOM + max_pdu + notify.TRAILER)
        self.timeout_ms = timeout_ms
        self.check_ms = check_ms
        self.dest_wport = dest_wport
        self.state = _IDLE
        self.sock = None
        self.obj = None
        self.frame = None  # (start, end) of the frame in buf
        self.at = None  # ticks of the last check / of the connect
        self.sent = 0
        self.failures = 0
        self.poller = select.poll()

    def step(self, now):
        if self.state == _IDLE:
            if self.at is not None and _diff(now, self.at) < self.check_ms:
                return False
            self.at = now
            return self._start_due(now)
        if _diff(now, self.at) > self.timeout_ms:
            return self._fail("no connection within %d ms" % self.timeout_ms)
        if self.state == _CONNECTING:
            ready = False
            for _obj, ev in self.poller.ipoll(0):
                if ev & (select.POLLERR | select.POLLHUP):
                    return self._fail("connection refused")
                if ev & select.POLLOUT:
                    ready = True
            if not ready:
                return False
            self.state = _SENDING
        return self._send()

    def _start_due(self, now):
        utc = clock.now(self.meter)
        for obj in self.objects:
            st = push.state_of(self.meter, obj)
            if st.service == push.TCP and st.dest_len == 0:
                continue  # no destination: this push setup is not in use
            if not push.due(self.meter, obj, utc):
                continue
            name = obis.to_str(obj[base.E_LN])
            if st.service != push.TCP:
                self.log("push %s: transport service %d is not sent by this board" % (name, st.service))
                push.failed(self.meter, obj, utc)
                continue
            try:
                host, port = _destination(st.destination())
            except ValueError as e:
                self.log("push %s: %s" % (name, e))
                push.failed(self.meter, obj, utc)
                continue
            n = self.notifier
            end = n.encode(obj, self.buf, self.start, len(self.buf), utc)
            if end < 0:
                push.failed(self.meter, obj, utc)  # the core logged why
                continue
            h = wrapper.push_frame(self.buf, n.start, end, self.meter.logical_device, self.dest_wport)
            self.obj = obj
            self.frame = [h, end, host, port]
            self.at = now
            try:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                self.sock = s
                try:
                    s.connect(socket.getaddrinfo(host, port)[0][-1])
                except OSError as e:
                    if e.args[0] not in (115, 119, 11):  # EINPROGRESS (Linux, lwIP), EAGAIN
                        raise
                self.poller.register(s, select.POLLOUT)
            except OSError as e:
                return self._fail("cannot connect to %s:%d (%s)" % (host, port, e))
            self.state = _CONNECTING
            return True
        return False

    def _send(self):
        h, end = self.frame[0], self.frame[1]
        try:
            n = self.sock.write(memoryview(self.buf)[h:end])
        except OSError as e:
            if e.args[0] == 11:  # EAGAIN: the socket is full, later
                return False
            return self._fail("send failed (%s)" % e)
        if n:
            h += n
            self.frame[0] = h
        if h < end:
            return True
        name = obis.to_str(self.obj[base.E_LN])
        self.log("push %s: sent to %s:%d" % (name, self.frame[2], self.frame[3]))
        push.sent(self.meter, self.obj)
        self.sent += 1
        self._close()
        return True

    def _fail(self, why):
        obj = self.obj
        self._close()
        self.failures += 1
        again = push.failed(self.meter, obj, clock.now(self.meter))
        self.log("push %s: %s%s" % (obis.to_str(obj[base.E_LN]), why, "; will retry" if again else ""))
        return True

    def _close(self):
        if self.sock is not None:
            try:
                self.poller.unregister(self.sock)
            except (OSError, ValueError, KeyError):
                pass
            self.sock.close()
        self.sock = None
        self.state = _IDLE
        self.obj = None


def _destination(dest):
    # b"host:port" -> (host, port); ValueError
    text = bytes(dest).decode()
    i = text.rfind(":")
    if i <= 0 or not text[i + 1 :].isdigit() or not 0 < int(text[i + 1 :]) < 65536:
        raise ValueError("push destination %r is not host:port" % text)
    return text[:i], int(text[i + 1 :])


def _diff(a, b):
    d = (a - b) & 0x3FFFFFFF
    return d - 0x40000000 if d >= 0x20000000 else d
