# A null-modem cable between two pseudo-terminals, for tests where both
# ends must be opened by path (the port's SourceRunner on one, a peer
# process such as pymodbus on the other): bytes written on either slave side
# come out on the other. `cut` drops everything (the line is cut); `noise`
# garbles the traffic towards `b` (the peer on `a` answers garbage).
#
#   br = PtyBridge(); br.start()
#   br.a, br.b        # the two device paths
#   br.cut = True     # unplug; False: plug back
#   br.close()

import os
import select
import threading
import tty


class PtyBridge(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self._ma, sa = os.openpty()
        self._mb, sb = os.openpty()
        for fd in (self._ma, sa, self._mb, sb):
            tty.setraw(fd)
        self.a = os.ttyname(sa)
        self.b = os.ttyname(sb)
        self._slaves = (sa, sb)  # kept open so the masters never see EOF
        self.cut = False
        self.noise = False
        self.stop = False
        self.to_a = 0
        self.to_b = 0

    def run(self):
        pair = {self._ma: self._mb, self._mb: self._ma}
        while not self.stop:
            try:
                r, _, _ = select.select([self._ma, self._mb], [], [], 0.02)
            except (OSError, ValueError):
                return
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if self.cut or not data:
                    continue
                dst = pair[fd]
                if dst == self._mb:
                    if self.noise:
                        data = bytes((b ^ 0x5A) for b in data)
                    self.to_b += len(data)
                else:
                    self.to_a += len(data)
                try:
                    os.write(dst, data)
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.join(2)
        for fd in (self._ma, self._mb) + self._slaves:
            try:
                os.close(fd)
            except OSError:
                pass
