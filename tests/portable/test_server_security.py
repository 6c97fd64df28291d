# A ciphered management association through a whole channel: AARQ with a
# glo-initiate-request and HLS-GMAC (mechanism 5), the AARE's StoC and
# ciphered InitiateResponse, reply_to_HLS_authentication, ciphered GETs,
# replay and tampering refused. Green Book example keys, titles and
# challenges. Runs under pytest and MicroPython.

from dlms_micro import server
from dlms_micro.cosem.association_ln import ASSOCIATION_LN
from dlms_micro.cosem.register import REGISTER
from dlms_micro.link import wrapper
from dlms_micro.meter import MECH_HLS_GMAC, Meter, Role
from dlms_micro.security import keys as ks
from dlms_micro.security import suite0
from dlms_micro.security.gcm import Gcm
from dlms_micro.security.suite0 import Suite0
from keystore_support import MemStorage, tx_record
from support import unhex
from test_server import wsend
from test_security_suite0 import AK, CTOS, EK, F_CTOS, F_STOC, HLS_CLIENT_TITLE, SERVER_TITLE, STOC, FakeKeys

ALL9 = b"\x01\x01\x01\x01\x01\x01\x01\x01\x01"
TABLE = (
    (15, 1, b"\x00\x00\x28\x00\x00\xff", ASSOCIATION_LN, -1, ((ALL9, b"\x01\x01\x00\x00"),), None),
    (3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, ((b"\x01\x01\x01", b"\x01"),), (0, 30)),
)
INITIATE = unhex("01000000065F1F0400007E1F04B0")


def make_meter():
    storage = MemStorage({ks.STORE_TX: tx_record(0x01234566)})
    keys = ks.KeyStore(storage, SERVER_TITLE, ek=EK, ak=AK)
    m = Meter(TABLE, (Role(1, MECH_HLS_GMAC, ciphered=True),), [12345])
    m.keys = keys
    m.random_bytes = lambda n: STOC
    return m


class Client:
    # the head-end: protects its requests with its own Suite0 (title
    # 4D4D4D0000000001), opens the meter's responses with a Gcm
    def __init__(self, tx):
        self.keys = FakeKeys(title=HLS_CLIENT_TITLE, tx=tx)
        self.suite = Suite0(self.keys, Gcm(tables=4))
        self.gcm = Gcm(tables=4)
        self.gcm.set_key(EK)

    def protect(self, plain, form=suite0.FORM_GLO):
        out = bytearray(suite0.HEADER_ROOM + len(plain) + suite0.TRAILER)
        p = suite0.HEADER_ROOM
        out[p : p + len(plain)] = plain
        end = self.suite.protect(out, p, p + len(plain), len(out), 0x30, form)
        return bytes(out[self.suite.out_start : end])

    def open(self, apdu, title=SERVER_TITLE):
        # tag len SC IC C T (glo form, short length) -> plaintext
        b = bytearray(apdu)
        assert b[2] == 0x30
        iv = bytearray(title) + b[3:7]
        aad = bytearray([0x30]) + AK
        e = len(b) - 12
        assert self.gcm.decrypt(iv, 0, aad, 0, 17, b, 7, e, b, e)
        return bytes(b[7:e])


def aarq(initiate, title=HLS_CLIENT_TITLE):
    body = (
        unhex("A109060760857405080103")
        + bytes([0xA6, len(title) + 2, 0x04, len(title)]) + title
        + unhex("8A0207808B0760857405080205")
        + unhex("AC0A8008") + CTOS
        + bytes([0xBE, len(initiate) + 2, 0x04, len(initiate)]) + initiate
    )
    return bytes([0x60, len(body)]) + body


def wrap(apdu, src=1):
    n = len(apdu)
    return bytes([0, 1, 0, src, 0, 1, n >> 8, n & 0xFF]) + apdu


def exchange(ch, apdu):
    out = wsend(ch, wrap(apdu))
    assert len(out) == 1
    return out[0][8:]


def open_association():
    m = make_meter()
    ch = server.Channel(m, wrapper.WrapperServer(max_apdu=512))
    c = Client(tx=0)
    aare = exchange(ch, aarq(c.protect(INITIATE)))
    return m, ch, c, aare


def test_hls_aare_carries_title_challenge_and_ciphered_initiate_response():
    m, ch, c, aare = open_association()
    assert aare[0] == 0x61
    assert unhex("A109060760857405080103") in aare  # LN ciphered context
    assert unhex("A203020100") in aare  # accepted
    assert unhex("A305A10302010E") in aare  # authentication-required
    assert unhex("A40A0408") + SERVER_TITLE in aare  # responding-AP-title
    assert unhex("8B0760857405080205") in aare or unhex("890760857405080205") in aare
    assert unhex("AA0A8008") + STOC in aare  # StoC
    # user-information: glo-initiate-response, ciphered with IC 01234566
    i = aare.index(unhex("BE"))
    ui = aare[i + 4 :]
    assert ui[0] == 0x28 and ui[3:7] == unhex("01234566")
    plain = c.open(ui)
    assert plain[0] == 0x08 and plain[-2:] == unhex("0007")
    assert ch.assoc.status == 1  # pending until the client proves the key


def test_pending_association_grants_nothing_but_the_hls_reply():
    m, ch, c, aare = open_association()
    get = c.protect(unhex("C001C1000301000108" + "00FF0200"))
    assert exchange(ch, get) == unhex("D80101")


def test_hls_reply_then_ciphered_get():
    m, ch, c, aare = open_association()
    action = unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)
    c.keys.tx = 1  # f(StoC) carries IC 1: the same counter as this APDU
    rsp = exchange(ch, c.protect(action))
    assert rsp[0] == 0xCF and rsp[3:7] == unhex("01234568")
    plain = c.open(rsp)
    # success, return data: octet-string f(CtoS) with the meter's IC 01234567
    assert plain == unhex("C701C1000100 0911") + unhex(F_CTOS)
    assert ch.assoc.status == 2
    rsp = exchange(ch, c.protect(unhex("C001C1000301000108" + "00FF0200")))
    assert c.open(rsp) == unhex("C401C1000600003039")
    assert ch.assoc.client_system_title == HLS_CLIENT_TITLE


def test_replayed_request_is_refused_with_the_expected_counter():
    m, ch, c, aare = open_association()
    c.keys.tx = 1
    exchange(ch, c.protect(unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)))
    get = c.protect(unhex("C001C1000301000108" + "00FF0200"))
    assert exchange(ch, get)[0] == 0xCC
    again = exchange(ch, get)
    assert again[:3] == unhex("D80106")  # invocation-counter-error
    assert len(again) == 7


def test_tampered_request_is_refused_and_the_association_goes_on():
    m, ch, c, aare = open_association()
    c.keys.tx = 1
    exchange(ch, c.protect(unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)))
    bad = bytearray(c.protect(unhex("C001C1000301000108" + "00FF0200")))
    bad[10] ^= 1
    assert exchange(ch, bytes(bad)) == unhex("D80105")  # deciphering-error
    rsp = exchange(ch, c.protect(unhex("C001C1000301000108" + "00FF0200")))
    assert c.open(rsp) == unhex("C401C1000600003039")


def test_wrong_hls_reply_drops_the_association():
    m, ch, c, aare = open_association()
    wrong = bytearray(unhex(F_STOC))
    wrong[-1] ^= 1
    c.keys.tx = 1
    rsp = exchange(ch, c.protect(unhex("C301C1000F0000280000FF0101 0911") + bytes(wrong)))
    assert c.open(rsp) == unhex("C701C10300")  # read-write-denied
    assert ch.assoc.status == 0


def test_plain_initiate_with_wrong_title_length_is_refused():
    m = make_meter()
    ch = server.Channel(m, wrapper.WrapperServer(max_apdu=512))
    aare = exchange(ch, aarq(INITIATE, title=b"abcd"))
    assert unhex("A203020101") in aare
    assert aare.endswith(suite0.AARE_DECIPHERING_ERROR)
