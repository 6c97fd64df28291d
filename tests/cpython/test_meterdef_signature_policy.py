# A meter definition naming the security policy's bits per association
# (Security setup v1: authenticated / encrypted / digitally signed, requests
# and responses): compiled into the roles' policy, the errors named by
# place, and a meter built from the definition serving as a meter built
# with Role(policy=...) does (tests/portable_ecc/test_general_ciphering.py):
# an unsigned request refused D8 01 01, a signed one served, responses
# signed where the policy says so.

import copy
import sys

import pytest

from dlms_micro import server
from dlms_micro.link import wrapper
from dlms_micro.meterdef import build
from dlms_micro.security import ecc, signing, suite12
from dlms_micro.security import keys as ks
from dlms_micro_cpython.meterdef import DefinitionError, compile_definition

sys.path.insert(0, "tests/portable_ecc")
import test_general_ciphering as gc  # noqa: E402
from test_hls_ecdsa import CLIENT_PUB, SERVER_D, SERVER_PUB  # noqa: E402

SIGNED_IN = ["authenticated-encrypted", "digitally-signed-request"]
SIGNED_OUT = ["authenticated-request", "encrypted-request", "authenticated-response", "encrypted-response",
              "digitally-signed-response"]


def definition(policy):
    return {
        "meter": "dlms-micro/1",
        "name": "DMI0000012345678", "serial_number": "12345678",
        "associations": {
            "public": {"client_sap": 16},
            "signed": {"client_sap": 1, "security_suite": 1, "security_policy": policy},
        },
        "objects": [
            {"class": "register", "obis": "1.0.1.8.0.255", "type": "double-long-unsigned", "value": 12345,
             "unit": "Wh"},
        ],
    }


def test_policy_bits_compiled_into_roles():
    c = compile_definition(definition(SIGNED_IN))
    public, signed = build.roles(c)
    assert (signed.policy, signed.ciphered, signed.security_suite) == (0x6C | 0x10, True, 1)
    assert public.policy == 0 and not public.ciphered
    # the level (what listings and key stores read) and the bits
    assert c.ROLES[1][5:] == (3, 1, 0x7C)
    assert build.roles(compile_definition(definition(SIGNED_OUT)))[1].policy == 0xEC
    # one direction only: level 1 (an authentication bit), its own bits
    c = compile_definition(definition(["authenticated-request", "digitally-signed-request"]))
    assert c.ROLES[1][5:] == (1, 1, 0x14) and build.roles(c)[1].policy == 0x14
    # the names alone keep the form definitions had before
    c = compile_definition(definition("authenticated-encrypted"))
    assert c.ROLES[1][5:] == (3, 1) and build.roles(c)[1].policy == 0x6C
    c = compile_definition(definition(["authenticated-encrypted"]))
    assert c.ROLES[1][5:] == (3, 1)
    # a conformance given as a list changes nothing of the policy's form
    d = definition(SIGNED_IN)
    d["associations"]["public"]["conformance"] = ["get", "selective-access"]
    d["associations"]["signed"]["conformance"] = ["get", "action"]
    c = compile_definition(d)
    assert c.ROLES[0][5:] == (0,) and c.ROLES[1][5:] == (3, 1, 0x7C)


@pytest.mark.parametrize(
    "change,fault",
    [
        ({"security_policy": ["authenticated", "signed"]},
         "associations.signed.security_policy[1]: one of authenticated-request"),
        ({"security_policy": [3]}, "associations.signed.security_policy[0]: one of"),
        ({"security_policy": 0x7C}, "associations.signed.security_policy: one of none, authenticated"),
        ({"security_policy": ["digitally-signed-request"]},
         "associations.signed.security_policy: digitally signed requests or responses are served in the ciphered "
         "context"),
        ({"security_policy": SIGNED_IN, "security_suite": 0},
         "associations.signed.security_policy: digitally signed requests or responses need security_suite 1 or 2"),
    ],
)
def test_bad_policies_named_by_place(change, fault):
    d = definition(SIGNED_IN)
    d["associations"]["signed"].update(change)
    with pytest.raises(DefinitionError) as ei:
        compile_definition(d)
    assert fault in str(ei.value)


def test_simulator_key_store_policy_keeps_to_the_named_bits():
    # the key store's policy (the weakest association's) never asks more
    # than an association named: here authenticated requests only
    from dlms_micro_cpython import simulator

    c = compile_definition(definition(["authenticated-request", "digitally-signed-request"]))
    assert simulator.make_key_store(gc.MemStorage(), compiled=c).policy == 0x04
    c = compile_definition(definition(SIGNED_IN))
    assert simulator.make_key_store(gc.MemStorage(), compiled=c).policy == 0x6C


def channel(policy):
    # the compiled definition's meter, given the keys and signing material
    # of test_general_ciphering's meter (the same ones Role(policy=...) gets)
    c = compile_definition(definition(policy))
    m = build.build(c)
    m.keys = ks.KeyStore(gc.MemStorage(), gc.ST_S, ek=gc.EK, ak=gc.AK, kek=gc.KEK)
    m.signing = suite12.Signing(ecc.KeyPair(ecc.P256, SERVER_D, SERVER_PUB), {gc.ST_C: CLIENT_PUB})
    m.random_bytes = lambda n: bytes(range(1, n + 1))
    ch = server.Channel(m, wrapper.WrapperServer(max_apdu=1024))
    lines = []
    ch.set_log(lines.append)
    aare = gc.exchange(ch, gc.aarq())
    assert aare[0] == 0x61 and ch.assoc.status == 2, (aare, lines)
    return ch, lines


def test_definition_unsigned_request_refused():
    ch, lines = channel(SIGNED_IN)
    assert gc.exchange(ch, gc.request(gc.EK)) == bytes.fromhex("D80101")
    assert lines == ["unsigned request 0xdd where the security policy requires digitally signed requests"]


def test_definition_signed_request_served():
    ch, lines = channel(SIGNED_IN)
    rsp = gc.exchange(ch, gc.SIGNED_REQUEST)
    s = signing.Signed().parse(rsp, 0, len(rsp))
    assert s.field(0) == b"\x00\x01" and s.field(1) == gc.ST_S and s.field(2) == gc.ST_C
    gc.answered_as(s.field(5), gc.EK, -1)
    assert lines == []


def test_definition_responses_signed():
    ch, lines = channel(SIGNED_OUT)
    rsp = gc.exchange(ch, gc.request(gc.EK))
    s = signing.Signed().parse(rsp, 0, len(rsp))
    assert s.field(1) == gc.ST_S and s.field(2) == gc.ST_C and len(s.field(0)) == 4
    gc.answered_as(s.field(5), gc.EK, -1)
    assert s.verify(ecc.P256, SERVER_PUB)
    assert lines == []


def test_definition_without_signature_bits_serves_unsigned():
    ch, lines = channel("authenticated-encrypted")
    gc.answered_as(gc.exchange(ch, gc.request(gc.EK)), gc.EK, -1)
    assert lines == []


def test_definition_module_round_trip():
    # `meter compile` writes the 8-field roles into the module a board freezes
    from dlms_micro_cpython.meterdef import emit

    c = compile_definition(copy.deepcopy(definition(SIGNED_IN)))
    ns = {}
    exec(compile(emit.module_text(c), "m.py", "exec"), ns)
    assert ns["ROLES"][1][5:] == (3, 1, 0x7C)
