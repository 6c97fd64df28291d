# The security policy's signature bits against a real head-end: gurux-dlms's
# GXDLMSSecureClient (HLS-ECDSA, security suite 1, every APDU authenticated
# and encrypted) has no way to sign a request (docs/compatibility.md), so
# where the association's policy requires digitally signed requests (0x10)
# its ciphered GET is refused with exception-response D8 01 01 and a log
# line; where the policy requires signed responses (0x80) the meter's answer
# comes inside general-signing (DF), which gurux does not take. With the bits
# cleared again the same client reads. The meter side of signed requests and
# responses: tests/portable_ecc/test_general_ciphering.py.

import contextlib
import logging

import pytest
import test_suite12_interop as s12
from interop_peers import WRAPPER

from dlms_micro.security import ecc, signing
from dlms_micro_cpython import api

SAP = s12.SAP["ecdsa1"]


@pytest.fixture(scope="module")
def meter():
    with api.serve(s12.DEFINITION, keys=s12.KEYS) as m:
        yield m


@pytest.fixture
def log():
    h = s12.Log()
    lg = logging.getLogger("dlms_micro")
    lg.addHandler(h)
    old = lg.level
    lg.setLevel(logging.INFO)
    yield h.lines
    lg.removeHandler(h)
    lg.setLevel(old)


def set_policy_bits(meter, bits):
    # the association's own policy (Role.policy): authenticated-encrypted | bits
    def fn(sim):
        for r in sim.meter.roles:
            if r.client_sap == SAP:
                r.policy = 0x6C | bits
    meter.call(fn)


def read_energy(p):
    from gurux_dlms.objects import GXDLMSRegister

    with contextlib.redirect_stdout(None):
        return p.read(GXDLMSRegister("1.0.1.8.0.255"), 2)


def test_signed_requests_required_refuses_gurux(meter, log):
    set_policy_bits(meter, 0x10)
    p = s12.connect(s12.gurux_peer(meter, WRAPPER, "ecdsa1"))
    try:
        with pytest.raises(Exception):
            read_energy(p)
        assert any("unsigned request 0xc8 where the security policy requires digitally signed requests" in x
                   for x in log)
    finally:
        p.close()
        set_policy_bits(meter, 0)


def test_signed_responses_required_answers_general_signing(meter, log):
    set_policy_bits(meter, 0x80)
    p = s12.connect(s12.gurux_peer(meter, WRAPPER, "ecdsa1"))
    try:
        with pytest.raises(Exception):
            read_energy(p)  # gurux cannot take general-signing
        rx = [bytes.fromhex(h) for d, h in p.trace if d == "rx"]
        rsp = rx[-1][8:]  # the wrapper header off
        assert rsp[0] == 0xDF
        sg = signing.Signed().parse(rsp, 0, len(rsp))
        assert sg.field(2) == s12.GURUX_TITLE and sg.field(5)[0] == 0xCC  # glo-get-response inside
        assert sg.verify(ecc.P256, ecc.public_key(ecc.P256, s12.SERVER_D1))
    finally:
        p.close()
        set_policy_bits(meter, 0)


def test_without_signature_bits_gurux_reads(meter):
    p = s12.connect(s12.gurux_peer(meter, WRAPPER, "ecdsa1"))
    try:
        assert read_energy(p) == 1234
    finally:
        p.close()
