# general-signing (security.signing) through a channel: a public
# association of security suite 1 (P-256), a signed GET whose signature the
# meter checks with the key it holds for the originator's system title,
# answered with the GET response signed by the meter; a forged signature,
# an unknown originator and a replayed transaction-id refused (D8 01 05).
# The client's signed requests are precomputed (RFC 6979 makes them
# deterministic), so that a test holds one verification and one signature:
# the wasm runner collects no garbage inside a test.

import sys

from dlms_micro import server
from dlms_micro.cosem.association_ln import ASSOCIATION_LN
from dlms_micro.cosem.register import REGISTER
from dlms_micro.link import wrapper
from dlms_micro.meter import Meter, Role
from dlms_micro.security import ecc, signing, suite12
from dlms_micro.security import keys as ks
from test_hls_ecdsa import CLIENT_PUB, SERVER_D, SERVER_PUB

# (this directory runs on its own: no helpers from tests/portable)
AARQ_PUBLIC = "601DA109060760857405080101BE10040E01000000065F1F0400007E1F04B0"


def unhex(h):
    return bytes.fromhex(h.replace(" ", ""))


class MemStorage:
    def __init__(self):
        self.data = {}

    def get(self, key):
        return self.data.get(key)

    def put(self, key, value):
        self.data[key] = bytes(value)


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

CLIENT_D = bytes.fromhex("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
ST_C = b"GURUXHES"
ST_S = b"DMI\x00\x00\xbc\x61\x4e"
ALL9 = b"\x01\x01\x01\x01\x01\x01\x01\x01\x01"
TABLE = (
    (15, 1, b"\x00\x00\x28\x00\x00\xff", ASSOCIATION_LN, -1, ((ALL9, b"\x01\x01\x00\x00"),), None),
    (3, 0, b"\x01\x00\x01\x08\x00\xff", REGISTER, 0, ((b"\x01\x01\x01", b"\x01"),), (0, 30)),
)
GET = unhex("C001C1000301000108" + "00FF0200")
GET_RESPONSE = unhex("C401C1000600003039")


def signed_get(tid, d=CLIENT_D, originator=ST_C):
    # what a client sends (computed here with the pure code's RFC 6979
    # nonce, which the precomputed values below pin)
    kp = ecc.KeyPair(ecc.P256, d, CLIENT_PUB if d == CLIENT_D else None)
    out = bytearray(200)
    n = signing.build(out, 0, 200, kp, tid, originator, ST_S, b"", b"", GET)
    return bytes(out[0:n])




def meter():
    m = Meter(TABLE, (Role(16, security_suite=1),), [12345])
    m.keys = ks.KeyStore(MemStorage(), ST_S)
    m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB), {ST_C: CLIENT_PUB})
    return m


def channel():
    ch = server.Channel(meter(), wrapper.WrapperServer(max_apdu=512))
    lines = []
    ch.set_log(lines.append)
    aare = exchange(ch, unhex(AARQ_PUBLIC))
    assert aare[0] == 0x61 and ch.assoc.status == 2
    return ch, lines


def exchange(ch, apdu):
    n = len(apdu)
    out = wsend(ch, bytes([0, 1, 0, 16, 0, 1, n >> 8, n & 0xFF]) + apdu)
    assert len(out) == 1
    return out[0][8:]


# signed_get(b"\x00\x01") with the pure code (test_precomputed_requests
# checks it on CPython)
SIGNED_GET_1 = unhex(
    "df02000108475552555848455308444d490000bc614e00000dc001c100030100010800ff0200"
    "4066b1b3810d79a1328d0b811df7b299f59a48a7fef67c1ee4a63b14a8f889c1fc"
    "5fa9f2e4029467b77f9bf4a58665c283926a9a4314e21a311f6cf45a6d5d0b36"
)


def _signed_get(tid):
    assert tid == b"\x00\x01"
    return SIGNED_GET_1


def test_precomputed_requests():
    if sys.implementation.name == "micropython":
        return  # a signature more than one test may allocate here
    old = ecc.use(None)
    try:
        assert signed_get(b"\x00\x01") == SIGNED_GET_1
    finally:
        ecc.use(old)


def test_signed_get_answered_signed():
    ch, lines = channel()
    rsp = exchange(ch, _signed_get(b"\x00\x01"))
    r = signing.Signed().parse(rsp, 0, len(rsp))
    assert r.field(0) == b"\x00\x01" and r.field(1) == ST_S and r.field(2) == ST_C
    assert r.field(5) == GET_RESPONSE
    if sys.implementation.name != "micropython":  # one more verification: CPython only
        assert r.verify(ecc.P256, SERVER_PUB)
    assert lines == []


def test_forged_signature_refused():
    ch, lines = channel()
    bad = bytearray(_signed_get(b"\x00\x01"))
    bad[-5] ^= 1
    assert exchange(ch, bytes(bad)) == unhex("D80105")
    assert lines == ["signed request refused: signature does not verify"]


def test_unknown_originator_refused():
    ch, lines = channel()
    req = bytearray(_signed_get(b"\x00\x01"))
    req[5] ^= 0x20  # "gURUXHES": no key for it (and the signature no longer matches)
    assert exchange(ch, bytes(req)) == unhex("D80105")
    assert lines == ["signed request refused: no public signing key for the originator system title"]


def test_replayed_transaction_refused():
    ch, lines = channel()
    req = _signed_get(b"\x00\x01")
    ch.meter.signing.key_pair.sign_message = lambda *parts: bytes(64)  # the answer's signature: not the point
    assert exchange(ch, req)[0] == 0xDF
    assert exchange(ch, req) == unhex("D80105")
    assert lines == ["signed request refused: transaction-id not above the last one accepted: a replay"]
