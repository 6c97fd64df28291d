# general-ciphering through the CPython port (`dlms_micro_cpython.api.serve`,
# the key file's "agreement_keys" and "client_agreement_keys"): gurux-dlms's
# GXDLMSSecureClient opens an HLS-ECDSA association of security suite 1 over
# the wrapper (it cannot send general-ciphering itself: docs/compatibility.md);
# on that connection general-ciphering requests built with `cryptography`
# (tests/cpython/test_general_ciphering_vectors.py) with the Static Unified
# Model, the One-Pass Diffie-Hellman and the identified global unicast key are
# answered in the same form, and a request agreed with a key the meter does not
# know is refused. A client's key agreement key may come from its certificate
# (Security setup import_certificate, a CA the key file trusts) instead.

import importlib.util
import os
import time

import test_suite12_interop as s12
from cryptography.hazmat.primitives.asymmetric import ec
from interop_peers import GURUX_TITLE, METER_TITLE, WRAPPER

from dlms_micro_cpython import api

_spec = importlib.util.spec_from_file_location(
    "gc_vectors", os.path.join(os.path.dirname(__file__), "..", "cpython", "test_general_ciphering_vectors.py"))
v = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v)

METER_KA = ec.generate_private_key(ec.SECP256R1())
CLIENT_KA = ec.generate_private_key(ec.SECP256R1())
KEYS = dict(s12.KEYS,
            agreement_keys={1: METER_KA.private_numbers().private_value.to_bytes(32, "big")},
            client_agreement_keys={GURUX_TITLE: v.raw(CLIENT_KA.public_key())})


def exchange(p, apdu):
    # one wrapper message on gurux's connection (client SAP 1 -> logical device 1)
    n = len(apdu)
    p.media.send(bytes([0, 1, 0, s12.SAP["ecdsa1"], 0, 1, n >> 8, n & 0xFF]) + apdu)
    deadline = time.monotonic() + 10
    got = b""
    while len(got) < 8 or len(got) < 8 + int.from_bytes(got[6:8], "big"):
        got += p.media.recv(deadline)
    return got[8:]


def test_agreed_and_identified_keys_through_the_port():
    with api.serve(s12.DEFINITION, keys=KEYS) as m:
        p = s12.connect(s12.gurux_peer(m, WRAPPER, "ecdsa1"))
        try:
            ic = p.client.ciphering.invocationCounter
            ak = s12.DEMO_KEYS["ak"]
            kw = dict(originator=GURUX_TITLE, recipient=METER_TITLE, ak=ak)
            ow = dict(ak=ak, meter=METER_TITLE, client=GURUX_TITLE)
            # static unified model
            z = CLIENT_KA.exchange(ec.ECDH(), METER_KA.public_key())
            rsp = exchange(p, v.build(v.kdf(z, GURUX_TITLE, METER_TITLE, v.TID), b"\x01\x02\x01\x02\x00", ic, **kw))
            assert v.open_response(rsp, v.kdf(z, METER_TITLE, GURUX_TITLE, v.TID), **ow)[0] == 0xC4
            # one-pass Diffie-Hellman: the client's ephemeral key signed with its signing key
            eph = ec.generate_private_key(ec.SECP256R1())
            q = v.raw(eph.public_key())
            r, s = v.decode_dss_signature(v.priv(s12.CLIENT_D1).sign(q, v.ec.ECDSA(v.hashes.SHA256())))
            ki = b"\x01\x02\x01\x01\x81\x80" + q + r.to_bytes(32, "big") + s.to_bytes(32, "big")
            key = v.kdf(eph.exchange(ec.ECDH(), METER_KA.public_key()), GURUX_TITLE, METER_TITLE)
            rsp = exchange(p, v.build(key, ki, ic + 1, **kw))
            q_m = v.parse(rsp)[1][6:70]
            z2 = CLIENT_KA.exchange(ec.ECDH(), v.point(q_m))
            assert v.open_response(rsp, v.kdf(z2, METER_TITLE, GURUX_TITLE), **ow)[0] == 0xC4
            # the identified global unicast key
            rsp = exchange(p, v.build(s12.DEMO_KEYS["ek"], b"\x01\x00\x00", ic + 2, **kw))
            assert v.open_response(rsp, s12.DEMO_KEYS["ek"], **ow)[0] == 0xC4
            # a static key the meter does not know: the key does not match, refused
            other = ec.generate_private_key(ec.SECP256R1())
            z3 = other.exchange(ec.ECDH(), METER_KA.public_key())
            rsp = exchange(p, v.build(v.kdf(z3, GURUX_TITLE, METER_TITLE, v.TID), b"\x01\x02\x01\x02\x00", ic + 3, **kw))
            assert rsp == bytes.fromhex("D80105")
        finally:
            p.close()


def test_client_key_agreement_key_from_its_certificate():
    import test_suite12_certificates_interop as certs
    from cryptography.hazmat.primitives import serialization

    keys = dict(s12.KEYS, agreement_keys=KEYS["agreement_keys"],
                ca_certificate=certs.CA.public_bytes(serialization.Encoding.PEM).decode())
    with api.serve(s12.DEFINITION, keys=keys) as m:
        p = s12.connect(s12.gurux_peer(m, WRAPPER, "ecdsa1"))
        try:
            kw = dict(originator=GURUX_TITLE, recipient=METER_TITLE, ak=s12.DEMO_KEYS["ak"])
            z = CLIENT_KA.exchange(ec.ECDH(), METER_KA.public_key())
            req = v.build(v.kdf(z, GURUX_TITLE, METER_TITLE, v.TID), b"\x01\x02\x01\x02\x00",
                          p.client.ciphering.invocationCounter, **kw)
            assert exchange(p, req) == bytes.fromhex("D80105")  # no key agreement key for the client yet
            certs.import_der(p, certs.issue(CLIENT_KA.public_key(), GURUX_TITLE, 4242, signing=False))
            req = v.build(v.kdf(z, GURUX_TITLE, METER_TITLE, v.TID), b"\x01\x02\x01\x02\x00",
                          p.client.ciphering.invocationCounter, **kw)
            rsp = exchange(p, req)
            assert v.open_response(rsp, v.kdf(z, METER_TITLE, GURUX_TITLE, v.TID), ak=s12.DEMO_KEYS["ak"],
                                   meter=METER_TITLE, client=GURUX_TITLE)[0] == 0xC4
        finally:
            p.close()
