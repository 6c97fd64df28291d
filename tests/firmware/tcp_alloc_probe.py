# Run on the unix firmware by test_unix_firmware.py: the board's meter
# behind dlms_micro_mp.tcp.TcpPort on a real loopback socket, a client in
# the same process; prints the bytes TcpPort.step() allocates per
# steady-state GET, for HDLC over TCP and for the wrapper, and whether the
# connection goes through Channel.exchange:
#   tcp_alloc hdlc BYTES
#   tcp_alloc wrapper BYTES
#   tcp_exchange hdlc|wrapper 0|1
import sys

if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

import gc  # noqa: E402
import socket  # noqa: E402
import time  # noqa: E402

import fw_bench as B  # noqa: E402
import fw_main  # noqa: E402
from dlms_micro.link.wrapper import WrapperServer  # noqa: E402
from dlms_micro.server import Channel  # noqa: E402
from dlms_micro_mp.tcp import TcpPort  # noqa: E402

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 14090
app, cfg = fw_main.make_meter()


def probe(kind, port_no, make, opening, gets):
    port = TcpPort(kind, "127.0.0.1", port_no, make, log=lambda m: None)
    cl = socket.socket()
    cl.connect(socket.getaddrinfo("127.0.0.1", port_no)[0][-1])
    cl.settimeout(2)
    used = [0]

    def xfer(f):
        cl.write(f)
        for _ in range(2):
            a = gc.mem_alloc()
            port.step(0)
            used[0] += gc.mem_alloc() - a
            time.sleep_ms(1)
        return cl.recv(1024)

    for f in opening:
        xfer(f)
    for k in range(5):
        xfer(gets[k % len(gets)])
    gc.collect()
    gc.disable()
    used[0] = 0
    n = 20
    for k in range(n):
        r = xfer(gets[(k + 5) % len(gets)])
    gc.enable()
    assert b"\xc4\x01" in r, r
    print("tcp_alloc %s %.1f" % (kind, used[0] / n))
    # a wrapper connection is served through Channel.exchange, HDLC is not
    print("tcp_exchange %s %d" % (kind, port.conns[0].exchange is not None))
    cl.close()
    port.close()


probe("hdlc", PORT, lambda: Channel(app.meter, fw_main.hdlc_link(cfg)),
      [B.frame(0x93, b""), B.iframe(0, B.AARQ_PUBLIC)], [B.iframe(k + 1, B.GET_ENERGY) for k in range(8)])
probe("wrapper", PORT + 1, lambda: Channel(app.meter, WrapperServer(max_apdu=512)),
      [B.wrapped(B.AARQ_PUBLIC, 0x10)], [B.wrapped(B.GET_ENERGY, 0x10)])
