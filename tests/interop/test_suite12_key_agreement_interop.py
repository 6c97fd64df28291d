# Security setup key_agreement (method 3) for suite 1 with gurux-dlms as the
# head-end: the Ephemeral Unified Model (docs/security.md). The client's
# ephemeral key signed with its signing key goes in an ACTION on method 3
# (gurux's GXDLMSSecuritySetup.keyAgreement fails inside gurux,
# docs/compatibility.md, so the parameter is built here and sent with its
# generic method()); the meter answers its own signed ephemeral key; both
# derive the key with the SP 800-56A KDF. The agreed EK applies from the
# next association: gurux associates with it, the old EK is refused. A
# forged signature is refused (other-reason) and changes nothing.

import contextlib
import hashlib

import pytest
from interop_peers import WRAPPER, GuruxError
from test_suite12_interop import (  # noqa: F401
    CLIENT_D1,
    DEFINITION,
    KEYS,
    SERVER_D1,
    connect,
    gurux_peer,
    log,
    read_ldn_and_energy,
)

from dlms_micro.security import ecc, kdf
from dlms_micro_cpython import api

ST_C = b"GURUXHES"
ST_S = b"DMI\x00\x00\xbc\x61\x4e"
EPH_D = hashlib.sha256(b"the head-end's ephemeral key").digest()
OTHER_REASON = 250


def key_agreement(p, key_id, data):
    from gurux_dlms import GXArray, GXEnum, GXStructure
    from gurux_dlms.enums import DataType
    from gurux_dlms.objects import GXDLMSSecuritySetup

    st = GXStructure()
    st.append(GXEnum(key_id))
    st.append(data)
    arr = GXArray()
    arr.append(st)
    with contextlib.redirect_stdout(None):
        return p.method(p.client.method(GXDLMSSecuritySetup("0.0.43.0.0.255"), 3, arr, DataType.ARRAY)).value


@pytest.fixture
def meter():
    with api.serve(DEFINITION, keys=KEYS) as m:
        yield m


def test_agreed_unicast_key_serves_the_next_association(meter):
    q_u = ecc.public_key(ecc.P256, EPH_D)
    p = connect(gurux_peer(meter, WRAPPER, "ecdsa1"))
    try:
        reply = key_agreement(p, 0, q_u + ecc.sign_message(ecc.P256, CLIENT_D1, b"\x00", q_u))
    finally:
        p.close()
    assert len(reply) == 1 and reply[0][0] == 0
    data = bytes(reply[0][1])
    q_v, sig = data[:64], data[64:]
    assert ecc.verify_message(ecc.P256, ecc.public_key(ecc.P256, SERVER_D1), sig, b"\x00", q_v)
    z = ecc.ecdh(ecc.P256, EPH_D, q_v)
    ek = kdf.concat_kdf("sha256", z, 16, kdf.other_info(kdf.ALG_AES_GCM_128, ST_C, ST_S))
    assert ek != KEYS["ek"]
    p = gurux_peer(meter, WRAPPER, "ecdsa1")
    p.client.ciphering.blockCipherKey = ek
    connect(p)
    try:
        assert read_ldn_and_energy(p)[1] == 1234
    finally:
        p.close()
    p = gurux_peer(meter, WRAPPER, "ecdsa1")  # the old EK
    with pytest.raises(Exception):
        connect(p)
    p.close()


def test_forged_key_agreement_refused(meter, log):
    q_u = ecc.public_key(ecc.P256, EPH_D)
    forged = ecc.sign_message(ecc.P256, EPH_D, b"\x00", q_u)  # not the client's signing key
    p = connect(gurux_peer(meter, WRAPPER, "ecdsa1"))
    try:
        with pytest.raises(GuruxError) as ei:
            key_agreement(p, 0, q_u + forged)
        assert ei.value.code == OTHER_REASON
        bad = bytearray(q_u)
        bad[63] ^= 1  # not a point of the curve
        with pytest.raises(GuruxError):
            key_agreement(p, 0, bytes(bad) + ecc.sign_message(ecc.P256, CLIENT_D1, b"\x00", bytes(bad)))
        with pytest.raises(GuruxError):  # truncated key_ciphered_data
            key_agreement(p, 0, q_u + ecc.sign_message(ecc.P256, CLIENT_D1, b"\x00", q_u)[:-1])
        assert read_ldn_and_energy(p)[1] == 1234  # the association goes on
    finally:
        p.close()
    assert any("key_agreement refused: the signature of key id 0's ephemeral key does not verify" in line
               for line in log)
    assert any("key_agreement refused: P-256 public key is not a point of the curve" in line for line in log)
    assert any("key_agreement refused: key_ciphered_data of 127 bytes, 128 expected (P-256)" in line for line in log)
    p = connect(gurux_peer(meter, WRAPPER, "ecdsa1"))  # the keys did not change
    p.close()
