# Link layer with real clients: HDLC SNRM/UA and DISC from gurux-dlms and
# dlms-cosem over HDLC-over-TCP and a pseudo-terminal, in every server
# address form; several TCP clients at once; a client that vanishes.

import socket

import pytest
from interop_peers import HDLC_PTY, HDLC_TCP, CosemPeer, GuruxPeer, TcpMedia

HDLC_TRANSPORTS = (HDLC_TCP, HDLC_PTY)


@pytest.mark.parametrize("transport", HDLC_TRANSPORTS)
@pytest.mark.parametrize("address_size", (1, 2, 4))
def test_gurux_snrm_ua_disc_in_every_server_address_form(meter, transport, address_size):
    p = GuruxPeer(meter, transport, sap=16, server_address_size=address_size)
    try:
        p.snrm()
        # Neither peer sends SNRM parameters: the defaults (128 bytes) hold.
        assert p.client.hdlcSettings.maxInfoTX == 128
        assert p.client.hdlcSettings.maxInfoRX == 128
        p.disconnect()
    except Exception:
        print(p.trace_text())
        raise
    finally:
        p.close()


@pytest.mark.parametrize("transport", HDLC_TRANSPORTS)
@pytest.mark.parametrize("extended", (False, True), ids=("2-byte", "4-byte"))
def test_cosem_hdlc_connect_disconnect(meter, transport, extended):
    p = CosemPeer(meter, transport, sap=16, extended_addressing=extended)
    try:
        p.connect()
        p.disconnect()
    finally:
        p.close()


def test_several_hdlc_tcp_clients_at_once(meter):
    peers = [GuruxPeer(meter, HDLC_TCP, sap=16) for _ in range(4)]
    try:
        for p in peers:
            p.snrm()
        for p in peers:
            p.disconnect()
    finally:
        for p in peers:
            p.close()


def test_meter_survives_a_client_that_vanishes(meter):
    # SNRM, then drop the TCP connection without DISC; then a new client.
    gone = GuruxPeer(meter, HDLC_TCP, sap=16)
    gone.snrm()
    gone.media.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    gone.close()  # RST
    p = GuruxPeer(meter, HDLC_TCP, sap=16)
    try:
        p.snrm()
        p.disconnect()
    finally:
        p.close()


def test_wrapper_accepts_and_closes_on_a_wrong_version(meter):
    # IEC 62056-47: a header with a version other than 1 cannot be trusted.
    m = TcpMedia(meter.wrapper_address)
    try:
        m.send(bytes.fromhex("0002 0010 0001 0001 00"))
        with pytest.raises(ConnectionError):
            import time

            deadline = time.monotonic() + 3
            while True:
                m.recv(deadline)
    finally:
        m.close()
