# general-ciphering (APDU DD, security.gcipher) in a security suite 0
# association (HLS-GMAC, the Green Book's example keys of
# test_server_security): a GET under the identified global unicast key and
# under a key wrapped with the master key, answered in the same form; an
# agreed key refused (suites 1 and 2 only); a replayed counter refused with
# the lowest acceptable one. No curve arithmetic: runs in the main
# MicroPython run.

from dlms_micro.security import gcipher, keywrap
from dlms_micro.security.gcm import Gcm
from support import unhex
from test_security_suite0 import AK, EK, F_STOC, HLS_CLIENT_TITLE, SERVER_TITLE
from test_server_security import exchange, open_association

KEK = unhex("C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF")  # the meter has none: given below
GET = unhex("C001C1000301000108" + "00FF0200")
GET_RESPONSE = unhex("C401C1000600003039")


def associated():
    m, ch, c, aare = open_association()
    action = unhex("C301C1000F0000280000FF0101 0911") + unhex(F_STOC)
    c.keys.tx = 1
    exchange(ch, c.protect(action))
    assert ch.assoc.status == 2
    lines = []
    ch.set_log(lines.append)
    return m, ch, lines


def request(key, ic, key_info=-1, key_data=b""):
    r = gcipher.General()
    r.tid = b"\x07"
    r.originator = HLS_CLIENT_TITLE
    r.recipient = SERVER_TITLE
    r.key_info = key_info
    r.key_id = 0
    r.kek_id = 0
    r.params = b"\x02" if key_info == 2 else b""
    r.key_data = key_data
    r.content = gcipher.seal(Gcm(), key, 0x30, ic, HLS_CLIENT_TITLE, AK, r, GET)
    return r.encode()


def opened(rsp, key):
    r = gcipher.General().parse(rsp, 0, len(rsp))
    assert r.tid == b"\x07" and r.originator == SERVER_TITLE and r.recipient == HLS_CLIENT_TITLE
    ct = bytearray(r.content)
    assert ct[0] == 0x30
    g = Gcm()
    g.set_key(key)
    aad = bytes([0x30]) + AK + r.aad_tail()
    e = len(ct) - 12
    assert g.decrypt(r.originator + bytes(ct[1:5]), 0, aad, 0, len(aad), ct, 5, e, ct, e, 12)
    return r, bytes(ct[5:e])


def test_identified_key_in_suite0():
    m, ch, lines = associated()
    r, plain = opened(exchange(ch, request(EK, 2, key_info=0)), EK)
    assert plain == GET_RESPONSE and r.key_info == 0 and r.key_id == 0
    assert lines == []


def test_wrapped_key_in_suite0_and_replay():
    m, ch, lines = associated()
    m.random_bytes = lambda n: bytes(range(0x70, 0x70 + n))
    m.keys.store_keys([(3, KEK)])  # the master key (key_transfer's id 3), in force at once here
    m.keys.activate_pending()
    key = unhex("00112233445566778899AABBCCDDEEFF")
    rsp = exchange(ch, request(key, 2, key_info=1, key_data=keywrap.wrap(KEK, key)))
    r = gcipher.General().parse(rsp, 0, len(rsp))
    assert r.key_info == 1
    assert opened(rsp, keywrap.unwrap(KEK, r.key_data))[1] == GET_RESPONSE
    rsp = exchange(ch, request(key, 2, key_info=1, key_data=keywrap.wrap(KEK, key)))
    assert rsp == unhex("D80106" + "00000003")
    assert lines == ["general-ciphering refused: invocation counter 2 below the lowest acceptable 3"]


def test_agreed_key_refused_in_suite0():
    m, ch, lines = associated()
    assert exchange(ch, request(EK, 2, key_info=2)) == unhex("D80105")
    assert lines == ["general-ciphering refused: agreed-key in a security suite 0 association"]


def test_wrapped_key_answer_without_a_usable_random_source_refused():
    # the meter's source gives 8 bytes (its HLS challenge) where a 16-byte key is wanted
    m, ch, lines = associated()
    m.keys.store_keys([(3, KEK)])
    m.keys.activate_pending()
    key = unhex("00112233445566778899AABBCCDDEEFF")
    assert exchange(ch, request(key, 2, key_info=1, key_data=keywrap.wrap(KEK, key))) == unhex("D80105")
    assert lines == ["general-ciphering refused: wrapped-key: the random source gave no 16-byte key"]
