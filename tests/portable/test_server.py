# A whole channel: link + ACSE + xDLMS, driven with the bytes a head-end
# sends, over HDLC and over the wrapper. Runs under pytest and MicroPython.

from dlms_micro import server
from dlms_micro.link import hdlc, wrapper
from dlms_micro.meter import MECH_LLS, Meter, Role
from hdlc_peer import LLC_REQ, LLC_RSP, Frame, disc, iframe, snrm
from support import unhex
from test_xdlms import ENERGY, TABLE

AARQ_PUBLIC = "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"
AARQ_LLS = (
    "6036A1090607608574050801018A0207808B0760857405080201AC0A80083132333435363738"
    "BE10040E01000000065F1F0400007E1F04B0"
)
AARQ_LLS_WRONG = AARQ_LLS.replace("3132333435363738", "3132333435363739")
GET_ENERGY = "C001C1" + ENERGY + "0200"


def meter():
    roles = (Role(16), Role(32, MECH_LLS, b"12345678"))
    return Meter(TABLE, roles, [12345, 7])


class HdlcSession:
    def __init__(self, client=16):
        self.ch = server.Channel(meter(), hdlc.HdlcServer(max_apdu=512))
        self.client = client
        self.ns = 0
        self.nr = 0

    def send(self, data):
        ch = self.ch
        out = []
        k = 0
        while k < len(data):
            k += ch.feed(data, k, len(data), 0)
            while True:
                ev = ch.next_event(0)
                if ev == server.EV_NONE:
                    break
                assert ev == server.EV_SEND
                out.append(bytes(ch.tx_buf[ch.tx_start : ch.tx_end]))
        return out

    def connect(self):
        assert Frame(self.send(snrm(client=self.client))[0]).kind() == "UA"

    def request(self, apdu_hex):
        f = iframe(self.ns, self.nr, LLC_REQ + unhex(apdu_hex), client=self.client)
        self.ns = (self.ns + 1) & 7
        out = [Frame(x) for x in self.send(f)]
        assert len(out) == 1 and out[0].is_i() and not out[0].seg
        self.nr = (out[0].ns + 1) & 7
        assert out[0].info[:3] == LLC_RSP
        return out[0].info[3:]


def test_public_association_get_and_release_over_hdlc():
    s = HdlcSession()
    s.connect()
    aare = s.request(AARQ_PUBLIC)
    # accepted, LN context, conformance = proposal 007E1F & what we implement
    assert aare == unhex(
        "6129A109060760857405080101A203020100A305A103020100"
        "BE10040E0800065F1F0400001E1D01F40007".replace("01F4", "0200")
    )
    assert s.request(GET_ENERGY) == unhex("C401C1 00 0600003039")
    assert s.request("6200") == unhex("630380 0100")
    # after release, requests are refused
    assert s.request(GET_ENERGY) == unhex("D8 01 01")


def test_request_before_association_is_refused():
    s = HdlcSession()
    s.connect()
    assert s.request(GET_ENERGY) == unhex("D8 01 01")


def test_lls_password_right_and_wrong():
    s = HdlcSession(client=32)
    s.connect()
    aare = s.request(AARQ_LLS_WRONG)
    assert aare[0] == 0x61
    # rejected-permanent, acse-service-user authentication-failure (13)
    assert unhex("A203020101") in aare and unhex("A305A10302010D") in aare
    assert s.request(GET_ENERGY) == unhex("D8 01 01")
    aare = s.request(AARQ_LLS)
    assert unhex("A203020100") in aare
    assert s.request(GET_ENERGY) == unhex("C401C1 00 0600003039")


def test_public_client_without_password_on_lls_role_is_rejected():
    s = HdlcSession(client=32)
    s.connect()
    aare = s.request(AARQ_PUBLIC)
    assert unhex("A203020101") in aare and unhex("A305A10302010C") in aare  # mechanism required


def test_unknown_client_sap_is_rejected():
    s = HdlcSession(client=0x55)
    s.connect()
    aare = s.request(AARQ_PUBLIC)
    assert unhex("A203020101") in aare


def test_second_aarq_is_refused_and_the_association_stays():
    s = HdlcSession()
    s.connect()
    s.request(AARQ_PUBLIC)
    aare = s.request(AARQ_PUBLIC)
    assert unhex("A203020101") in aare
    assert s.request(GET_ENERGY) == unhex("C401C1 00 0600003039")


def test_old_dlms_version_gets_confirmed_service_error():
    s = HdlcSession()
    s.connect()
    aare = s.request(AARQ_PUBLIC.replace("0000065F1F", "0000055F1F"))
    assert unhex("A203020101") in aare
    assert aare.endswith(unhex("BE06040 40E010601".replace(" ", "")))


def test_tiny_client_pdu_gets_pdu_size_too_short():
    s = HdlcSession()
    s.connect()
    aare = s.request(AARQ_PUBLIC.replace("04B0", "0005"))
    assert aare.endswith(unhex("0E010603"))


def test_malformed_aarq_is_rejected_not_crashed():
    s = HdlcSession()
    s.connect()
    aare = s.request("6005A1030601")
    assert aare[0] == 0x61 and unhex("A203020101") in aare
    assert s.request(AARQ_PUBLIC)[0] == 0x61


def test_link_disconnect_ends_the_association():
    s = HdlcSession()
    s.connect()
    s.request(AARQ_PUBLIC)
    assert Frame(s.send(disc())[0]).kind() == "UA"
    s.ns = s.nr = 0
    s.connect()
    assert s.request(GET_ENERGY) == unhex("D8 01 01")


def wrap(apdu_hex, src=16, dst=1):
    apdu = unhex(apdu_hex)
    n = len(apdu)
    return bytes([0, 1, 0, src, 0, dst, n >> 8, n & 0xFF]) + apdu


def wsend(ch, data):
    out = []
    k = 0
    while k < len(data):
        k += ch.feed(data, k, len(data), 0)
        while True:
            ev = ch.next_event(0)
            if ev == server.EV_NONE:
                break
            out.append(bytes(ch.tx_buf[ch.tx_start : ch.tx_end]))
    return out


def test_association_and_get_over_the_wrapper():
    ch = server.Channel(meter(), wrapper.WrapperServer())
    out = wsend(ch, wrap(AARQ_PUBLIC))
    assert out[0][:6] == unhex("000100010010") and unhex("A203020100") in out[0]
    out = wsend(ch, wrap(GET_ENERGY))
    assert out == [unhex("00010001001000") + bytes([9]) + unhex("C401C1000600003039")]
    out = wsend(ch, wrap("6200"))
    assert out[0][8:] == unhex("6303800100")


def test_wrapper_client_wport_selects_the_role():
    ch = server.Channel(meter(), wrapper.WrapperServer())
    out = wsend(ch, wrap(AARQ_LLS, src=32))
    assert unhex("A203020100") in out[0]
    assert ch.assoc.role == 1 and ch.assoc.client_sap == 32


def test_client_max_pdu_0_means_no_limit_and_65535_is_accepted():
    for pdu in ("0000", "FFFF"):
        s = HdlcSession()
        s.connect()
        aare = s.request(AARQ_PUBLIC.replace("04B0", pdu))
        assert unhex("A203020100") in aare
        assert s.ch.assoc.client_max_pdu == 0xFFFF
        assert s.request(GET_ENERGY) == unhex("C401C1 00 0600003039")


def test_client_vanishing_mid_block_transfer_leaves_no_trace():
    s = HdlcSession()
    s.connect()
    s.request(AARQ_PUBLIC.replace("04B0", "0040"))  # 64-byte client PDU
    first = s.request("C001C1 0007 0100630100ff 0200")
    assert first[:4] == unhex("C402C1 00")  # a block transfer is under way
    # the client is gone: the link is set up again by another client
    s.ns = s.nr = 0
    s.connect()
    assert s.ch.assoc.block_kind == 0
    s.request(AARQ_PUBLIC)
    assert s.request("C002C1 00000001") == unhex("C402C1 01 00000000 01 10")
    assert s.request(GET_ENERGY) == unhex("C401C1 00 0600003039")


def test_several_channels_are_independent():
    m = meter()
    a = server.Channel(m, wrapper.WrapperServer())
    b = server.Channel(m, wrapper.WrapperServer())
    wsend(a, wrap(AARQ_PUBLIC))
    assert wsend(b, wrap(GET_ENERGY))[0][8:] == unhex("D80101")
    assert wsend(a, wrap(GET_ENERGY))[0][8:] == unhex("C401C1000600003039")
    a.close()
    assert a.assoc.status == 0


def test_server_event_numbers_match_both_links():
    assert server.EV_NONE == hdlc.EV_NONE == wrapper.EV_NONE
    assert server.EV_SEND == hdlc.EV_SEND == wrapper.EV_SEND
    assert server.EV_APDU == hdlc.EV_APDU == wrapper.EV_APDU
    assert server.EV_CONNECTED == hdlc.EV_CONNECTED
    assert server.EV_DISCONNECTED == hdlc.EV_DISCONNECTED
    assert server.EV_CLOSE == wrapper.EV_CLOSE
