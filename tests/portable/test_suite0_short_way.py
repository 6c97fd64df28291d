# The suite 0 short way (issue 16): ciphered requests handed straight from
# Channel._serve_apdu to _ciphered, Suite0.unprotect's inline common cases,
# and the global keys checked by identity while unchanged, give the answers
# of the general way. Runs under pytest and MicroPython.

from dlms_micro.security import suite0
from dlms_micro.security.gcm import Gcm
from dlms_micro.security.suite0 import SecurityError, Suite0
from support import unhex
from test_security_suite0 import AK, EK, F_STOC, GET_TITLE, FakeKeys
from test_server_security import SERVER_TITLE, Client, exchange, open_association

GET = unhex("C001C1000301000108" + "00FF0200")
VALUE = unhex("C401C1000600003039")


def associated():
    m, ch, c, aare = open_association()
    c.keys.tx = 1
    exchange(ch, c.protect(unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)))
    assert ch.assoc.status == 2
    return ch, c


def test_general_glo_get_is_answered_in_the_general_glo_form():
    ch, c = associated()
    rsp = exchange(ch, c.protect(GET, suite0.FORM_GENERAL_GLO))
    assert rsp[0] == 0xDB and rsp[1] == 8 and rsp[2:10] == SERVER_TITLE
    assert c.open(b"\xdb" + rsp[10:]) == VALUE  # length SC IC C T as in the glo form
    rsp = exchange(ch, c.protect(GET))  # and the glo form still answers glo
    assert rsp[0] == 0xCC and c.open(rsp) == VALUE


def test_general_glo_replay_and_foreign_title_are_refused_and_the_association_goes_on():
    ch, c = associated()
    get = c.protect(GET, suite0.FORM_GENERAL_GLO)
    assert exchange(ch, get)[0] == 0xDB
    again = exchange(ch, get)
    assert again[:3] == unhex("D80106") and len(again) == 7  # invocation-counter-error
    other = Client(tx=500)
    other.keys.system_title = b"OTHERTTL"
    assert exchange(ch, other.protect(GET, suite0.FORM_GENERAL_GLO)) == unhex("D80105")
    rsp = exchange(ch, c.protect(GET))
    assert c.open(rsp) == VALUE


def pair():
    # the meter's Suite0 (FakeKeys, client title GET_TITLE) and a client's
    server = Suite0(FakeKeys(), Gcm(tables=4))
    server.enabled = 1
    server.set_client_title(GET_TITLE, 0, 8)
    client = Suite0(FakeKeys(title=GET_TITLE, tx=100), Gcm(tables=4))
    return server, client


def request(client):
    out = bytearray(suite0.HEADER_ROOM + len(GET) + suite0.TRAILER)
    p = suite0.HEADER_ROOM
    out[p : p + len(GET)] = GET
    end = client.protect(out, p, p + len(GET), len(out), 0x30, suite0.FORM_GLO)
    return bytearray(out[client.out_start : end])


def served(server, req):
    # the code of the refusal, or 0 when req deciphers to GET
    try:
        server.unprotect(req, 0, len(req))
    except SecurityError as e:
        assert server.form == suite0.FORM_NONE and server.start == 0 and server.level == 0  # nothing to answer
        return e.code
    assert bytes(req[server.start : server.end]) == GET
    return 0


def test_new_global_keys_are_taken_at_once():
    server, client = pair()
    assert served(server, request(client)) == 0
    ek2 = bytes([b ^ 0x5A for b in EK])
    server.keys.ek = ek2  # a key transfer: a new bytes object
    assert served(server, request(client)) == suite0.E_DECRYPTION
    client.keys.ek = ek2
    assert served(server, request(client)) == 0
    ak2 = bytes([b ^ 0xA5 for b in AK])
    server.keys.ak = ak2
    assert served(server, request(client)) == suite0.E_DECRYPTION
    client.keys.ak = ak2
    assert served(server, request(client)) == 0
    server.keys.ek = None
    assert served(server, request(client)) == suite0.E_NO_KEY


def test_a_key_changed_in_place_is_noticed():
    # a bytearray key is compared on every request, not trusted by identity
    server, client = pair()
    server.keys.ek = bytearray(EK)
    assert served(server, request(client)) == 0
    server.keys.ek[0] ^= 1
    assert served(server, request(client)) == suite0.E_DECRYPTION
    client.keys.ek = bytes(server.keys.ek)
    assert served(server, request(client)) == 0
